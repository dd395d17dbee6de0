"""The keeper (lorakit/keeper.py) against the fake `swift`: whatever kills lorakit, nothing it
started outlives it by more than a few seconds; and the tree logic it runs (grace, reaping,
stranded processes), each held to a test that fails when that part is broken.

"lorakit" is a driver process running launch.run (test_launch.py's harness), or the real CLI.
Every run's processes are found by walking /proc under lorakit before it is killed, keyed by
start time, so a reused pid is never mistaken for a survivor.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_launch import (FAKE_SWIFT, FAKES, SRC, alive, descendants, launch, launcher,  # noqa: F401
                         ppid, proc_table, running, wait_all_gone, wait_for)

GONE_WITHIN = 10.0  # the promise: seconds from lorakit's death until nothing of the run runs


def logged(log: Path, prefix: str, timeout: float = 20.0) -> float:
    """Wait for the fake's "WHO SIGNAME MONOTONIC" line starting with prefix; its time."""
    deadline = time.monotonic() + timeout
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        for line in lines:
            if line.startswith(prefix + " "):
                return float(line.rsplit(" ", 1)[1])
        assert time.monotonic() < deadline, f"no {prefix!r} in the signal log within {timeout} s: {lines}"
        time.sleep(0.02)


def all_gone(tree: set) -> float:
    """wait_all_gone for GONE_WITHIN; on failure, the test kills the survivors itself."""
    try:
        return wait_all_gone(tree, GONE_WITHIN)
    finally:
        for pid in running(tree):
            os.kill(pid, signal.SIGKILL)


def snapshot(run) -> set:
    """Every process of the run, once the fake says it is all up; sanity-checked."""
    run.wait_ready()
    tree = descendants(run.driver.pid)
    pids = {pid for pid, _ in tree}
    assert {run.child_pid(), run.grandchild_pid()} <= pids, (tree, run.child_pid(), run.grandchild_pid())
    return tree


# --- lorakit dies -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [
    "spawn",  # the real wrapper's shape: dies on SIGTERM, the worker in its own session
    "hang",  # wrapper and worker ignore SIGTERM: only SIGKILL, LEFT_GRACE later, stops them
    "stubborn",  # as hang, and the worker was orphaned in a session of its own at once
])
def test_sigkill_to_lorakit_stops_the_whole_run(launcher, mode):
    run = launcher(mode, grace=30.0)  # far longer than the promise: lorakit's death overrides it
    tree = snapshot(run)
    run.driver.kill()
    took = all_gone(tree)
    print(f"{mode}: all {len(tree)} processes gone {took:.1f} s after SIGKILL to lorakit")


def test_sigkill_to_lorakit_during_the_grace_stops_the_run(launcher):
    run = launcher("stubborn", grace=60.0)
    tree = snapshot(run)
    run.signal(signal.SIGTERM)  # the grace starts: 60 s, as far as lorakit knew
    logged(run.log, "wrapper SIGTERM")
    run.driver.kill()
    all_gone(tree)


@pytest.mark.parametrize("log", [False, True], ids=["inherited-output", "piped-output"])
def test_sigkill_to_the_lorakit_cli_stops_the_run(tmp_path, log):
    ready, gc = tmp_path / "ready", tmp_path / "gc.pid"
    env = dict(os.environ, PATH=f"{FAKES}{os.pathsep}{os.environ['PATH']}", FAKE_SWIFT_MODE="spawn",
               FAKE_SWIFT_READY=str(ready), FAKE_SWIFT_GRANDCHILD_PID_FILE=str(gc),
               FAKE_SWIFT_SIGNAL_LOG=str(tmp_path / "signals.log"))
    args = ["train", "-p", "single", *(["--log", str(tmp_path / "run.log")] if log else [])]
    cli = subprocess.Popen([sys.executable, "-m", "lorakit", *args], env=env, cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tree = set()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert cli.poll() is None, cli.stderr.read().decode()
            assert time.monotonic() < deadline, "the fake swift did not start"
            time.sleep(0.05)
        tree = descendants(cli.pid)
        assert int(gc.read_text()) in {pid for pid, _ in tree}
        cli.kill()
        all_gone(tree)
    finally:
        cli.kill()
        cli.wait()
        cli.stderr.close()


# --- the keeper starts after lorakit died -----------------------------------------------------

# lorakit starts the keeper and is SIGKILLed at once. The "Python" it starts the keeper with
# sleeps 1 s first, so lorakit is surely dead before the keeper could arm PR_SET_PDEATHSIG; and
# it points the keeper's status fd at a file, where the keeper would write the pid of any child.
RACE = r"""
import json, os, signal, subprocess, sys
sys.path.insert(0, sys.argv[1])
from lorakit import launch
cfg = json.loads(sys.argv[2])
sys.executable = cfg["python"]
real = subprocess.Popen
def popen(*args, **kw):
    proc = real(*args, **kw)
    with open(cfg["started"], "w") as f:
        f.write(str(proc.pid))
    os.kill(os.getpid(), signal.SIGKILL)
subprocess.Popen = popen
launch.run(cfg["argv"], cfg["env"])
"""

SLOW_PYTHON = r"""#!{python}
import os, sys, time
time.sleep(1)
args = sys.argv[1:]
if "--status" in args:
    fd = os.open({status!r}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, int(args[args.index("--status") + 1]))
os.execv({python!r}, [{python!r}, *args])
"""


def fake_env(tmp_path: Path, mode: str = "spawn") -> dict:
    return {"PATH": f"{FAKES}{os.pathsep}/usr/bin:/bin", "FAKE_SWIFT_MODE": mode,
            "FAKE_SWIFT_RECORD": str(tmp_path / "record"), "FAKE_SWIFT_READY": str(tmp_path / "ready"),
            "FAKE_SWIFT_GRANDCHILD_PID_FILE": str(tmp_path / "gc.pid"),
            "FAKE_SWIFT_SIGNAL_LOG": str(tmp_path / "signals.log")}


def test_a_keeper_that_starts_after_lorakit_died_starts_nothing(tmp_path):
    slow, status = tmp_path / "slow-python", tmp_path / "status"
    slow.write_text(SLOW_PYTHON.format(python=sys.executable, status=str(status)))
    slow.chmod(0o755)
    cfg = {"python": str(slow), "argv": [str(FAKE_SWIFT), "sft"], "env": fake_env(tmp_path),
           "started": str(tmp_path / "started")}
    driver = subprocess.run([sys.executable, "-c", RACE, str(SRC), json.dumps(cfg)], timeout=60)
    assert driver.returncode == -signal.SIGKILL
    started = int(wait_for(tmp_path / "started"))
    gc = tmp_path / "gc.pid"
    try:
        start = proc_table().get(started, (0, None))[1]  # None: gone already
        if start is not None:
            all_gone({(started, start)})
        assert status.exists(), "the keeper never ran"
        assert status.read_text() == "", "the keeper started swift for a lorakit that had died"
        assert not (tmp_path / "record").exists(), "swift was started for a lorakit that had died"
        assert not gc.exists(), "a worker of the run was started"
    finally:
        if gc.exists() and alive(int(gc.read_text())):
            os.kill(int(gc.read_text()), signal.SIGKILL)


def test_a_keeper_whose_parent_is_not_the_one_it_was_told_starts_nothing(tmp_path):
    # What the keeper sees when lorakit died before its prctl: someone else is its parent.
    read, write = os.pipe()
    keeper = subprocess.Popen([sys.executable, "-I", "-S", launch.KEEPER, "--grace", "30",
                               "--parent", str(os.getppid()), "--status", str(write), "--",
                               str(FAKE_SWIFT), "sft"], env=fake_env(tmp_path), pass_fds=(write,))
    os.close(write)
    with os.fdopen(read, "rb") as status:
        assert status.read() == b""  # no child pid: nothing started
    assert keeper.wait(timeout=30) == 1
    assert not (tmp_path / "record").exists()


# --- the tree logic ---------------------------------------------------------------------------

def test_a_second_signal_neither_shortens_nor_resets_the_grace(launcher):
    grace, gap = 4.0, 2.5
    run = launcher("stubborn", grace=grace)
    run.wait_ready()
    child = run.child_pid()
    run.signal(signal.SIGTERM)
    first = logged(run.log, "wrapper SIGTERM")
    time.sleep(max(0.0, first + gap - time.monotonic()))
    run.signal(signal.SIGINT)  # the impatient second Ctrl-C
    logged(run.log, "wrapper SIGINT")
    while alive(child):
        assert time.monotonic() - first < 30, "the stubborn wrapper was never killed"
        time.sleep(0.02)
    took = time.monotonic() - first
    assert run.finish() == 128 + signal.SIGKILL
    # Shortened: killed before the grace was over. Reset by the second signal: not before
    # gap + grace (6.5 s). Slack for two loaded cores: the keeper looks every 0.1 s.
    assert grace - 0.5 <= took <= grace + 1.5, f"killed {took:.2f} s after the first signal"


def test_orphans_the_keeper_adopts_are_reaped_while_the_run_goes_on(launcher):
    run = launcher("orphan-exit")  # the grandchild is orphaned, then exits; the wrapper runs on
    run.wait_ready()
    keeper, grandchild = run.keeper_pid(), run.grandchild_pid()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{grandchild}").exists():  # a zombie until its parent (the keeper) waits
        assert time.monotonic() < deadline, f"{proc_table().get(grandchild)} not reaped in 10 s"
        time.sleep(0.05)
    assert alive(run.child_pid())  # the run went on: this was the undisturbed path
    zombies = [pid for pid, (pp, _, state) in proc_table().items() if pp == keeper and state == "Z"]
    assert zombies == []


def test_a_second_signal_reaches_stranded_processes_too(launcher):
    run = launcher("stubborn", grace=30.0)
    run.wait_ready()
    grandchild = run.grandchild_pid()
    assert ppid(grandchild) == run.keeper_pid()  # stranded: its parent died, nobody passes it on
    run.signal(signal.SIGTERM)
    logged(run.log, "grandchild SIGTERM")
    run.signal(signal.SIGINT)  # a trainer may take the second as "abort now": it must get it
    logged(run.log, "grandchild SIGINT", timeout=10)
