"""GRPO server mode as one paired launch, with a fake `swift` (written here) on PATH: `swift rollout`
serves /health/ (or dies, or never answers), `swift rlhf` records what it saw and exits or hangs.
The rollout's argv/env, the health wait, teardown when either side dies, Ctrl-C, no orphans; and
ms-swift's own parser takes the rendered rollout command (3.x and 4.x)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, swift3_python
from lorakit.paired import dry_text, rollout_job
from lorakit.render import render
from test_rlhf import job

FAKE = textwrap.dedent(r'''
    #!PYTHON
    """Fake swift: rollout serves GET /health/ per FAKE_ROLLOUT (serve | die:N | silent), rlhf records
    whether the health endpoint answered and then acts per FAKE_RLHF (exit:N | hang)."""
    import http.server, json, os, sys, time, urllib.request
    out = os.environ["FAKE_DIR"]
    command, argv = sys.argv[1], sys.argv[1:]
    with open(os.path.join(out, command + ".pid"), "w") as f:
        f.write(str(os.getpid()))
    env = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE")}
    record = {"argv": argv, "env": env}
    if command == "rollout":
        mode = os.environ.get("FAKE_ROLLOUT", "serve")
        print("rollout: loading the model", flush=True)
        if mode.startswith("die:"):
            print("rollout: CUDA out of memory", file=sys.stderr, flush=True)
            sys.exit(int(mode[4:]))
        if mode == "silent":
            time.sleep(60)
            sys.exit(0)
        port = int(argv[argv.index("--port") + 1])

        class Health(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200 if self.path == "/health/" else 404)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", port), Health)
        server.timeout = 0.2
        deadline = time.time() + 60
        while time.time() < deadline:
            server.handle_request()
        sys.exit(0)
    url = "http://127.0.0.1:%s/health/" % argv[argv.index("--vllm_server_port") + 1]
    try:
        record["health"] = urllib.request.urlopen(url, timeout=2).status
    except Exception as exc:
        record["health"] = repr(exc)
    with open(os.path.join(out, "rlhf.json"), "w") as f:
        json.dump(record, f)
    mode = os.environ.get("FAKE_RLHF", "exit:0")
    if mode == "hang":
        time.sleep(60)
    sys.exit(int(mode.split(":")[1]) if mode.startswith("exit:") else 0)
''').lstrip()


@pytest.fixture
def fake(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    swift = bin_dir / "swift"
    swift.write_text(FAKE.replace("#!PYTHON", "#!" + sys.executable))
    swift.chmod(0o755)
    return tmp_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(root: Path, *, rollout: str = "serve", rlhf: str = "exit:0", extra: tuple = ()) -> subprocess.Popen:
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE")},
           "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}", "FAKE_DIR": str(root),
           "FAKE_ROLLOUT": rollout, "FAKE_RLHF": rlhf}
    (root / "port").write_text(str(port))
    return subprocess.Popen([sys.executable, "-m", "lorakit", "rlhf", "-p", "grpo_server", "--gpus", "1,2",
                             "--set", f"vllm_server_port={port}", "--output-dir", str(root / "out"), *extra],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"


def pid_of(root: Path, command: str) -> int:
    return int((root / f"{command}.pid").read_text())


def wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def test_rollout_first_then_the_trainer_then_both_gone(fake):
    proc = start(fake)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    seen = json.loads((fake / "rlhf.json").read_text())
    assert seen["health"] == 200  # the trainer started after the rollout answered
    assert seen["env"] == {"CUDA_VISIBLE_DEVICES": "1,2", "NPROC_PER_NODE": "2"}
    assert not alive(pid_of(fake, "rollout"))  # stopped once the trainer was done
    port = (fake / "port").read_text()
    assert f"lorakit: http://127.0.0.1:{port}/health/ answers: starting swift rlhf" in err


def index(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "out" / "lorakit-runs.jsonl").read_text().splitlines()]


def test_the_paired_launch_is_recorded_like_any_rlhf_run(fake):
    """One record per launch (lorakit runs, --from): the trainer's command, its end in the index."""
    proc = start(fake)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    running, finished = index(fake)
    assert (running["status"], finished["status"], finished["exit_code"]) == ("running", "finished", 0)
    record = yaml.safe_load(Path(running["record"]).read_text())
    seen = json.loads((fake / "rlhf.json").read_text())
    assert ["swift", *seen["argv"]] == record["command"]["argv"]
    assert record["command"]["env"] == {"CUDA_VISIBLE_DEVICES": "1,2", "NPROC_PER_NODE": "2"}
    assert f"lorakit: run record: {running['record']}" in err.splitlines()
    # the replay is the paired launch again: rollout_gpus is in the record, the header says rlhf
    text = Path(running["record"]).read_text()
    assert text.splitlines()[0] == "# What lorakit launched. Relaunch it with: lorakit rlhf --from THIS_FILE"
    assert record["preset"]["args"]["rollout_gpus"] == "0"
    env = {**os.environ, "PATH": f"{fake / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    again = subprocess.run([sys.executable, "-m", "lorakit", "rlhf", "--from", running["record"], "--dry-run"],
                           cwd=fake, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1:3] == ["CUDA_VISIBLE_DEVICES=0 \\", "swift rollout \\"]


def test_an_interrupted_paired_launch_is_recorded_as_interrupted(fake):
    proc = start(fake, rlhf="hang")
    wait_for(fake / "rlhf.json")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert [(e["status"], e.get("exit_code")) for e in index(fake)] == [("running", None), ("interrupted", 130)]


def test_the_trainers_code_passes_through(fake):
    proc = start(fake, rlhf="exit:3")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert "lorakit: swift rlhf exited with code 3: stopping swift rollout" in err
    assert not alive(pid_of(fake, "rollout"))


def test_a_rollout_that_dies_first_shows_its_last_lines_and_no_trainer_starts(fake):
    proc = start(fake, rollout="die:7")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 7, err
    port = (fake / "port").read_text()
    head = f"lorakit: swift rollout exited with code 7 before http://127.0.0.1:{port}/health/ answered; its last lines:"
    said = err[err.index(head) + len(head):].splitlines()[1:3]
    # its stdout and stderr are two pipes: the order between them is the order they were read in
    assert sorted(said) == ["  | rollout: CUDA out of memory", "  | rollout: loading the model"]
    assert not (fake / "rlhf.pid").exists()


def test_a_rollout_that_never_answers_is_stopped_after_the_wait(fake):
    proc = start(fake, rollout="silent", extra=("--rollout-wait", "3"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    port = (fake / "port").read_text()
    assert (f"lorakit: error: swift rollout did not answer http://127.0.0.1:{port}/health/ within 3 s "
            "(stopped it); its last lines:\n  | rollout: loading the model") in err
    assert not alive(pid_of(fake, "rollout")) and not (fake / "rlhf.pid").exists()


def test_the_rollout_dying_while_training_stops_the_trainer(fake):
    proc = start(fake, rlhf="hang")
    wait_for(fake / "rlhf.json")
    trainer = pid_of(fake, "rlhf")
    os.kill(pid_of(fake, "rollout"), signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGKILL, err
    assert f"lorakit: swift rollout exited with code {128 + signal.SIGKILL} while training" in err
    assert not alive(trainer)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_both(fake, sig):
    proc = start(fake, rlhf="hang")
    wait_for(fake / "rlhf.json")
    pids = pid_of(fake, "rollout"), pid_of(fake, "rlhf")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert [alive(p) for p in pids] == [False, False]


# ---- rendering -----------------------------------------------------------------------------------

def test_rollout_half_renders_exactly():
    command = render(rollout_job(job("grpo_server")))
    assert command.env == {"CUDA_VISIBLE_DEVICES": "0"}
    assert command.argv == ["swift", "rollout", "--model", "Qwen/Qwen3-8B", "--torch_dtype", "bfloat16",
                            "--host", "127.0.0.1", "--port", "8000"]


def test_several_rollout_gpus_get_data_parallel_and_vllm_flags_carry():
    j = job("grpo_server", "rollout_gpus=0,1", "launch.gpus=2,3", "vllm_gpu_memory_utilization=0.9",
            "vllm_enable_lora=true", "vllm_max_lora_rank=16")
    command = render(rollout_job(j))
    assert command.env == {"CUDA_VISIBLE_DEVICES": "0,1"}
    assert command.argv[6:] == ["--vllm_gpu_memory_utilization", "0.9", "--vllm_enable_lora", "true",
                                "--vllm_max_lora_rank", "16", "--host", "127.0.0.1", "--port", "8000",
                                "--vllm_data_parallel_size", "2"]


def test_dry_run_text_is_one_pasteable_script(fake):
    j = job("grpo_server")
    text = dry_text(render(rollout_job(j)), render(j), "http://127.0.0.1:8000/health/")
    done = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = text.splitlines()
    assert lines[6] == "    --port 8000 &"
    assert lines[7] == "until curl -sf http://127.0.0.1:8000/health/ >/dev/null; do sleep 2; done"


@pytest.mark.parametrize("major", [4, 3])
def test_ms_swift_parses_the_rollout_command(major):
    python = sys.executable if major == 4 else swift3_python()
    argv = render(rollout_job(job("grpo_server", "rollout_gpus=0,1", "launch.gpus=2,3", major=major))).argv[2:]
    out = subprocess.run([python, str(REPO / "scripts" / "swift_parse_check.py"), "rollout", "--batch"],
                         input=json.dumps([argv]), capture_output=True, text=True, timeout=600, cwd=REPO / "scripts")
    assert out.returncode == 0, out.stderr[-2000:]
    [answer] = json.loads(out.stdout)
    assert (answer["exit"], answer["remaining"]) == (0, [])
    assert answer["values"]["port"] == 8000 and answer["values"]["vllm_data_parallel_size"] == 2


def test_a_taken_rollout_port_is_refused_before_anything_starts(fake):
    """swift rollout moves a taken port elsewhere without a word (DeployArguments find_free_port): the
    trainer and the health wait would have talked to whatever held it."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "PATH": f"{fake / 'bin'}{os.pathsep}{os.environ['PATH']}", "FAKE_DIR": str(fake)}
        result = subprocess.run([sys.executable, "-m", "lorakit", "rlhf", "-p", "grpo_server", "--gpus", "1,2",
                                 "--set", f"vllm_server_port={port}", "--output-dir", str(fake / "out")],
                                cwd=fake, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: vllm_server_port {port} on 127.0.0.1 is taken: swift rollout would move to another port "
        f"without saying so (DeployArguments find_free_port), and the trainer would talk to whatever holds {port}",
        "  hint: stop what listens there (an earlier swift rollout?), or --set vllm_server_port=ANOTHER"]
    assert not (fake / "rollout.pid").exists()  # nothing was started


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_health_wait_stops_the_rollout_and_starts_no_trainer(fake, sig):
    proc = start(fake, rollout="silent")
    wait_for(fake / "rollout.pid")
    rollout = pid_of(fake, "rollout")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert not alive(rollout) and not (fake / "rlhf.pid").exists()


def test_sigterm_twice_while_training_still_stops_both(fake):
    proc = start(fake, rlhf="hang")
    wait_for(fake / "rlhf.json")
    pids = pid_of(fake, "rollout"), pid_of(fake, "rlhf")
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert [alive(p) for p in pids] == [False, False]


def test_log_is_refused_for_the_paired_launch(fake):
    """--log went nowhere: the paired launch never read it."""
    env = {**os.environ, "PATH": f"{fake / 'bin'}{os.pathsep}{os.environ['PATH']}", "FAKE_DIR": str(fake)}
    result = subprocess.run([sys.executable, "-m", "lorakit", "rlhf", "-p", "grpo_server", "--gpus", "1,2",
                             "--log", str(fake / "run.log")], cwd=fake, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-2:] == [
        "lorakit: error: --log is not taken by GRPO server mode's paired launch (swift rollout and swift rlhf both "
        "write to the terminal)",
        "  hint: drop --log and redirect instead: lorakit rlhf ... > run.log 2>&1"]
    assert not (fake / "rollout.pid").exists()
