"""`lorakit train` --log / --progress through the real entry point: a chatty fake `swift` for the
plumbing, the real ms-swift on a pseudo-terminal for the bar."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_real_progress import run_on_a_pty

# Prints like ms-swift (a log dict on stdout, a tqdm frame and a traceback on stderr), exits $1.
CHATTY = """#!/usr/bin/env python3
import os, sys
print("run sh: `python sft.py`", flush=True)
sys.stderr.write("\\rTrain:  50%|#####     | 1/2 [00:01<00:01,  1.00s/it]"); sys.stderr.flush()
print("{'loss': '1.5', 'global_step/max_steps': '1/2', 'remaining_time': '1s'}", flush=True)
if os.environ.get("CHATTY_CODE", "0") != "0":
    sys.stderr.write("Traceback (most recent call last):\\n  File \\"sft.py\\", line 1\\nValueError: bad batch\\n")
sys.exit(int(os.environ.get("CHATTY_CODE", "0")))
"""


def chatty_env(tmp_path, code: int) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "swift").write_text(CHATTY)
    (bin_dir / "swift").chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", CHATTY_CODE=str(code))


def lorakit(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "lorakit", *args], env=env, cwd=cwd,
                          capture_output=True, timeout=120)


def test_off_a_tty_the_output_passes_through_untouched(tmp_path):
    result = lorakit(["train", "-p", "single"], chatty_env(tmp_path, 0), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (b"run sh: `python sft.py`\n"
                             b"{'loss': '1.5', 'global_step/max_steps': '1/2', 'remaining_time': '1s'}\n")
    assert b"\rTrain:  50%|#####     | 1/2 [00:01<00:01,  1.00s/it]" in result.stderr


def test_log_gets_the_output_and_a_failure_shows_the_exit_code_and_last_lines(tmp_path):
    log = tmp_path / "run.log"
    result = lorakit(["train", "-p", "single", "--log", str(log)], chatty_env(tmp_path, 3), tmp_path)
    assert result.returncode == 3
    assert result.stdout == b""
    assert b"{'loss': '1.5'" in log.read_bytes() and b"ValueError: bad batch" in log.read_bytes()
    err = result.stderr.decode().splitlines()
    tail = err[err.index("lorakit: swift exited with code 3"):]
    assert tail[:3] == ["lorakit: swift exited with code 3", f"lorakit: all of ms-swift's output is in {log}",
                        "lorakit: last 5 lines of the output:"]
    # stdout and stderr come through two pipes: lines of one stream keep their order, but how
    # the two interleave depends on thread scheduling, as it would in a terminal
    traceback = ["  Traceback (most recent call last):", '    File "sft.py", line 1', "  ValueError: bad batch"]
    assert [line for line in tail[3:] if line in traceback] == traceback
    index = tmp_path / "output" / "lorakit-runs.jsonl"
    assert tail[-1] == f"lorakit: run failed (exit code 3); recorded in {index}"  # no checkpoint: no resume line
    assert sorted(tail[3:-1]) == sorted(["  run sh: `python sft.py`",
                                        "  {'loss': '1.5', 'global_step/max_steps': '1/2', 'remaining_time': '1s'}",
                                        *traceback])


def test_log_with_dry_run_is_refused(tmp_path):
    result = lorakit(["train", "-p", "single", "--dry-run", "--log", "x.log"], chatty_env(tmp_path, 0), tmp_path)
    assert result.returncode == 2
    assert b"lorakit: error: --log names where a launch writes ms-swift's output" in result.stderr
    assert not (tmp_path / "x.log").exists()


def test_an_unwritable_log_stops_before_launching(tmp_path):
    env = chatty_env(tmp_path, 0)
    result = lorakit(["train", "-p", "single", "--log", str(tmp_path / "no" / "such" / "dir.log")], env, tmp_path)
    assert result.returncode == 2
    assert b"--log " in result.stderr and b"cannot write it: No such file or directory" in result.stderr
    assert b"run sh:" not in result.stdout


def test_on_a_tty_the_bar_shows_the_step(tmp_path):
    rc, shown = run_on_a_pty([sys.executable, "-m", "lorakit", "train", "-p", "single"], 120,
                             env=chatty_env(tmp_path, 0), cwd=tmp_path)
    assert rc == 0, shown
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown).replace("\r", "\n")
    bars = [line for line in plain.splitlines() if line.startswith("swift sft ")]
    assert bars and "1/2" in bars[-1] and "loss 1.5" in bars[-1], bars
    assert "{'loss': '1.5'" in plain  # the child's own line, above the bar


@pytest.mark.real
def test_real_train_on_a_tty_reaches_2_of_2(tmp_path):
    from test_real_swift import swift_env, user_preset
    from lorakit.tiny import make_tiny_dataset, make_tiny_model, tiny_swift_args

    tiny = (make_tiny_model(tmp_path / "tiny-random-chatml"), make_tiny_dataset(tmp_path / "data.jsonl", n=16),
            tiny_swift_args())
    preset = user_preset(tmp_path / "mine.yaml", "single", tiny, tmp_path / "out")
    log = tmp_path / "run.log"
    rc, shown = run_on_a_pty([sys.executable, "-m", "lorakit", "train", "-p", str(preset), "--log", str(log)],
                             900, env=swift_env(), cwd=tmp_path)
    assert rc == 0, shown[-3000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown).replace("\r", "\n")
    bars = [line for line in plain.splitlines() if line.startswith("swift sft ")]
    assert bars and re.search(r"\b2/2\b", bars[-1]), bars[-3:]
    assert "'global_step/max_steps': '2/2'" in log.read_text()  # ms-swift's output went to the log
    assert "[INFO:swift]" not in plain  # ...and not to the terminal
