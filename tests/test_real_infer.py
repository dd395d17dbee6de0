"""The real ms-swift on CPU, through lorakit: `lorakit infer --adapters RUN --infer-backend pt`
generates tokens from a 2-step SFT checkpoint, and `lorakit deploy` with the pt backend answers one
OpenAI-style chat request on 127.0.0.1 and leaves no process behind after Ctrl-C (SIGINT).
If ms-swift is missing these FAIL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from test_real_rlhf import TINY, lorakit, only, swift_env

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    from lorakit.tiny import make_tiny_dataset, make_tiny_model

    root = tmp_path_factory.mktemp("real_infer")
    model = make_tiny_model(root / "tiny-random-chatml")
    make_tiny_dataset(root / "sft.jsonl", n=8)
    (root / "sft.yaml").write_text(yaml.safe_dump({"extends": "single", "args": TINY}))
    lorakit(["train", "-p", "sft.yaml", "--model", str(model), "--dataset", "sft.jsonl", "--output-dir", "out",
             "--no-progress", "--", "--model_type", "qwen2", "--template", "qwen", "--check_model", "false",
             "--max_steps", "2"], root)
    return root, model


def test_infer_generates_tokens_from_the_run(sft_run):
    root, _ = sft_run
    run = only("out/v0-*", root)
    result = lorakit(["infer", "--adapters", str(run), "--infer-backend", "pt", "--", "--val_dataset", "sft.jsonl#2",
                      "--max_new_tokens", "4", "--temperature", "0", "--result_path", "result.jsonl"], root)
    assert f"lorakit: picked {run}/checkpoint-2: run {run.name}, last checkpoint (step 2 of 2" in result.stderr
    answers = [json.loads(line) for line in (root / "result.jsonl").read_text().splitlines()]
    assert len(answers) == 2 and all(a["response"] for a in answers)
    assert "'num_generated_tokens': 8" in result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, body: dict | None = None, timeout: float = 5.0) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as answer:
        return json.loads(answer.read())


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def test_deploy_answers_a_chat_request_and_ctrl_c_leaves_nothing(sft_run):
    root, _ = sft_run
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "lorakit", "deploy", "--adapters", "out", "--infer-backend",
                               "pt", "--port", str(port)], cwd=root, env=swift_env(root / "home"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        models = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                models = request(f"{base}/v1/models")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(1)
        assert models is not None, server.stdout.read()[-3000:] if server.poll() is not None else "no answer"
        name = models["data"][0]["id"]
        answer = request(f"{base}/v1/chat/completions", {"model": name, "max_tokens": 4, "temperature": 0,
                                                        "messages": [{"role": "user", "content": "Say hello."}]},
                         timeout=120)
        assert answer["choices"][0]["message"]["role"] == "assistant"
        assert answer["usage"]["completion_tokens"] >= 1
        assert processes_mentioning(f"--port {port}")  # the server tree is there...
    finally:
        server.send_signal(signal.SIGINT)
        try:
            out, _ = server.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            server.kill()
            out, _ = server.communicate()
    assert server.returncode == 128 + signal.SIGINT, out[-3000:]
    # ...and after Ctrl-C none of it: lorakit's keeper waited for the whole tree
    assert processes_mentioning(f"--port {port}") == []
    from lorakit.cli.deploy import port_free

    assert port_free("127.0.0.1", port)  # nothing listens there any more
