"""`lorakit deploy`: NAME=PATH adapters, the largest LoRA rank for vLLM, the port checked free, and the
launch supervised (the fake swift: the exit code passes through)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from conftest import FAKES, REPO, swift3_python
from test_infer import argv_of, checkpoint, run_in

PARSE = REPO / "scripts" / "swift_parse_check.py"


def test_default_host_is_this_machine(tmp_path):
    ckpt = checkpoint(tmp_path)
    result = run_in(tmp_path, ["deploy", "--adapters", "output", "--dry-run"])
    assert result.code == 0, result.stderr
    assert argv_of(result.stdout) == ["swift", "deploy", "--host", "127.0.0.1", "--port", "8000",
                                      "--adapters", str(ckpt)]


def test_named_adapters_and_the_largest_rank(tmp_path):
    a = checkpoint(tmp_path, rank=16)
    b = checkpoint(tmp_path, run="v1-20260102-120000", rank=64)
    result = run_in(tmp_path, ["deploy", "--adapters", f"sft={a}", "--adapters", f"dpo={b.parent}",
                               "--infer-backend", "vllm", "--port", "9001", "--host", "0.0.0.0", "--dry-run"])
    assert result.code == 0, result.stderr
    assert argv_of(result.stdout) == ["swift", "deploy", "--host", "0.0.0.0", "--port", "9001", "--adapters",
                                      f"sft={a}", f"dpo={b}", "--infer_backend", "vllm", "--vllm_max_lora_rank", "64"]


@pytest.mark.parametrize("value", ["a=b=c", "=output", "name="])
def test_a_name_needs_one_equals_sign(tmp_path, value):
    result = run_in(tmp_path, ["deploy", "--adapters", value, "--dry-run"])
    assert result.code == 2
    assert result.stderr.startswith(f"lorakit: error: --adapters {value!r}: ms-swift reads NAME=PATH with one '='")


def test_a_taken_port_is_refused_before_ms_swift_starts(tmp_path):
    checkpoint(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_in(tmp_path, ["deploy", "--adapters", "output", "--port", str(port)])
    assert result.code == 1
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: port {port} on 127.0.0.1 is taken: ms-swift would move to another free port without "
        f"saying so (DeployArguments find_free_port), and clients would talk to whatever holds {port}",
        "  hint: stop what listens there, or pass another --port"]


def test_launch_passes_the_exit_code_through(tmp_path):
    ckpt = checkpoint(tmp_path)
    record = tmp_path / "record.json"
    env = {"PATH": f"{FAKES}:{sys.executable.rsplit('/', 1)[0]}:/usr/bin:/bin", "FAKE_SWIFT_RECORD": str(record),
           "FAKE_SWIFT_MODE": "exit:3"}
    with socket.socket() as probe:  # a port free now (port 0 is refused: ms-swift would pick a random one)
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    done = subprocess.run([sys.executable, "-m", "lorakit", "deploy", "--adapters", "output", "--port", port],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert json.loads(record.read_text())["argv"][1:] == ["deploy", "--host", "127.0.0.1", "--port", port,
                                                          "--adapters", str(ckpt)]


@pytest.mark.parametrize("major", [4, 3])
def test_ms_swift_parses_rendered_deploy_commands(tmp_path, major):
    python = sys.executable if major == 4 else swift3_python()
    a = checkpoint(tmp_path, rank=32)
    result = run_in(tmp_path, ["deploy", "--adapters", f"sft={a}", "--infer-backend", "vllm", "--swift-version",
                               str(major), "--dry-run"])
    assert result.code == 0, result.stderr
    out = subprocess.run([python, str(PARSE), "deploy", "--batch"], input=json.dumps([argv_of(result.stdout)[2:]]),
                         capture_output=True, text=True, timeout=600, cwd=REPO / "scripts")
    assert out.returncode == 0, out.stderr[-2000:]
    [answer] = json.loads(out.stdout)
    assert (answer["exit"], answer["remaining"]) == (0, [])
    assert answer["values"]["adapters"] == [f"sft={a}"] and answer["values"]["vllm_max_lora_rank"] == 32


# ---- hostile inputs (each was accepted before) ---------------------------------------------------

@pytest.mark.parametrize("argv, shown", [(["--port", "0"], "0"), (["--port", "70000"], "70000"),
                                         (["--port", "-1"], "-1"), (["--set", "port=abc"], "'abc'")])
def test_a_port_out_of_range_is_refused_on_dry_run_too(tmp_path, argv, shown):
    """find_free_port(0) picks a random port, 70000 and -1 are no port: the dry-run printed them."""
    checkpoint(tmp_path)
    result = run_in(tmp_path, ["deploy", "--adapters", "output", *argv, "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: port {shown} is not a TCP port a server can listen on: 1 to 65535",
        "  hint: pass --port 8000 (or another free port)"]


def test_one_name_twice_is_refused(tmp_path):
    """deploy_args.py keeps NAME=PATH in a dict: the second path replaced the first without a word."""
    checkpoint(tmp_path)
    checkpoint(tmp_path, run="v1-20260102-120000")
    result = run_in(tmp_path, ["deploy", "--adapters", "a=output/v0-20260101-120000", "--adapters",
                               "a=output/v1-20260102-120000", "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        "lorakit: error: --adapters names 'a' twice (output/v0-20260101-120000 and output/v1-20260102-120000): "
        "ms-swift keeps one path per name (deploy_args.py adapter_mapping), so the first would not be served",
        "  hint: give each adapter its own name, e.g. --adapters sft=PATH --adapters dpo=PATH2"]


def test_adapters_of_two_bases_are_refused(tmp_path):
    checkpoint(tmp_path)
    checkpoint(tmp_path, run="v1-20260102-120000", model="Qwen/Qwen2.5-0.5B-Instruct")
    result = run_in(tmp_path, ["deploy", "--adapters", "a=output/v0-20260101-120000", "--adapters",
                               "b=output/v1-20260102-120000", "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: --adapters come from two base models: output/v0-20260101-120000 was trained on "
        f"{tmp_path}, output/v1-20260102-120000 on Qwen/Qwen2.5-0.5B-Instruct (their args.json); ms-swift loads "
        "them all onto the first's base",
        "  hint: pass adapters of one base together; serve the other base in its own lorakit deploy on another --port"]


@pytest.mark.parametrize("host", ["null", "a: b", "[::1]"])
def test_host_is_rendered_as_typed(tmp_path, host):
    """--host went through a --set YAML value: 'null' dropped the flag (ms-swift then listens on
    0.0.0.0, every interface), 'a: b' became the mapping '{"a": "b"}'."""
    ckpt = checkpoint(tmp_path)
    result = run_in(tmp_path, ["deploy", "--adapters", "output", "--host", host, "--dry-run"])
    assert result.code == 0, result.stderr
    assert argv_of(result.stdout) == ["swift", "deploy", "--host", host, "--port", "8000", "--adapters", str(ckpt)]


def test_an_empty_host_is_refused(tmp_path):
    checkpoint(tmp_path)
    result = run_in(tmp_path, ["deploy", "--adapters", "output", "--host", "", "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        "lorakit: error: --host '' is no address",
        "  hint: pass --host 127.0.0.1 (this machine) or 0.0.0.0 (every interface)"]
