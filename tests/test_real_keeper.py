"""The real thing: SIGKILL to `lorakit train` in the middle of a real 2-rank DDP run on CPU
(torchrun and two workers, each worker in a session of its own) leaves nothing of the run
running 10 s later. Before the keeper, this run trained on to its last step, detached.
If ms-swift is missing this FAILS (see test_real_swift.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_launch import proc_table
from test_real_swift import swift_env, tiny, user_preset  # noqa: F401 (tiny: fixture)

pytestmark = pytest.mark.real

# ~25 steps/s on 2 loaded cores (ms-swift 4.6.0, the tiny model, no grad accumulation): a run
# that was not stopped would go on for about a minute.
STEPS = 1500
GONE_WITHIN = 10.0
STARTED = "'global_step/max_steps': '1/"  # ms-swift's log dict of the first optimizer step


def descendants(root: int) -> dict:
    """(pid, start time) -> command line, for every process under root now."""
    table, found, stack = proc_table(), {}, [root]
    while stack:
        parent = stack.pop()
        for pid, (ppid, start, _) in table.items():
            if ppid == parent and (pid, start) not in found:
                try:
                    found[(pid, start)] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:150]
                except OSError:
                    found[(pid, start)] = b"?"
                stack.append(pid)
    return found


def running(keys) -> list:
    table = proc_table()
    return sorted(pid for pid, start in keys
                  if pid in table and table[pid][1] == start and table[pid][2] not in "ZX")


def test_sigkill_to_lorakit_stops_a_real_two_rank_run(tiny, tmp_path):
    preset = user_preset(tmp_path / "ddp.yaml", "ddp", tiny, tmp_path / "out")
    out = tmp_path / "lorakit.out"
    # Output to a file, not a pipe: a worker that outlived lorakit must not die of a broken
    # pipe instead, or the test would pass without the keeper.
    with open(out, "wb") as sink:
        cli = subprocess.Popen(
            [sys.executable, "-m", "lorakit", "train", "-p", str(preset), "--gpus", "0,1", "--nproc", "2",
             "--", "--use_cpu", "true", "--max_steps", str(STEPS), "--logging_steps", "1",
             "--gradient_accumulation_steps", "1", "--save_steps", str(STEPS)],
            cwd=tmp_path, env=swift_env(), stdout=sink, stderr=subprocess.STDOUT)
    tree: dict = {}
    try:
        deadline = time.monotonic() + 300
        while STARTED not in out.read_text(errors="replace"):
            assert cli.poll() is None, f"lorakit exited with {cli.returncode}:\n{out.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"training did not start:\n{out.read_text()[-4000:]}"
            time.sleep(0.2)
        tree = descendants(cli.pid)
        run = [cmd for cmd in tree.values() if b"lorakit/keeper.py" not in cmd]
        assert len(run) >= 4, tree  # swift, torchrun, two workers (and lorakit's keeper)
        assert cli.poll() is None, "the run ended before it could be killed: raise STEPS"
        cli.kill()
        killed = time.monotonic()
        while running(tree):
            assert time.monotonic() - killed < GONE_WITHIN, (
                f"still running {GONE_WITHIN} s after SIGKILL to lorakit: "
                f"{[tree[k] for k in tree if k[0] in running(tree)]}")
            time.sleep(0.1)
        print(f"{len(tree)} processes ({len(run)} of the run, not the keeper) gone "
              f"{time.monotonic() - killed:.1f} s after SIGKILL to lorakit")
    finally:
        cli.kill()
        cli.wait()
        for pid in running(tree):  # what a failing run left behind
            os.kill(pid, signal.SIGKILL)
