"""launch.run end to end: a driver process ("lorakit") runs the fake `swift` under the keeper,
and the test signals the driver.

The fake (tests/fakes/swift) mimics the real wrapper: it dies at once on SIGTERM and its
grandchild lives in its own session, like torchrun's workers. Readiness is always a file the
processes write, polled with a generous deadline: never a fixed sleep (2 loaded cores).
The harness here (Launch, launcher, the /proc helpers) is shared with test_keeper.py.
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

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
FAKES = ROOT / "tests" / "fakes"
FAKE_SWIFT = FAKES / "swift"
DEADLINE = 20.0

try:
    from lorakit import launch
except ImportError:  # not installed: use the checkout
    sys.path.insert(0, str(SRC))
    from lorakit import launch
from lorakit.errors import EnvironmentProblem

# Runs launch.run in its own process, so real signals can be sent to "lorakit".
DRIVER = r"""
import json, os, signal, sys
sys.path.insert(0, sys.argv[1])
from lorakit import launch
cfg = json.loads(sys.argv[2])
before = [signal.getsignal(s) for s in launch.FORWARDED]
def on_start(pid):
    with open(cfg["started"] + ".tmp", "w") as f:
        f.write(str(pid))
    os.replace(cfg["started"] + ".tmp", cfg["started"])
rc = launch.run(cfg["argv"], cfg["env"], grace=cfg["grace"], on_start=on_start)
restored = [signal.getsignal(s) for s in launch.FORWARDED] == before
with open(cfg["result"], "w") as f:
    json.dump({"rc": rc, "restored": restored}, f)
sys.exit(rc)
"""


def wait_for(path: Path, timeout: float = DEADLINE) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear within {timeout} s"
        time.sleep(0.02)
    return path.read_text()


def alive(pid: int) -> bool:
    """Running, as /proc sees it (a zombie has finished)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def proc_table() -> dict:
    """pid -> (ppid, start time in clock ticks, state) for every process in /proc."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            rest = stat[stat.rindex(")") + 2 :].split()
            table[int(name)] = (int(rest[1]), int(rest[19]), rest[0])
    return table


def descendants(root: int) -> set:
    """(pid, start time) of every process under root now: the start time tells a reused pid."""
    table, found, stack = proc_table(), set(), [root]
    while stack:
        parent = stack.pop()
        for pid, (ppid, start, _) in table.items():
            if ppid == parent and (pid, start) not in found:
                found.add((pid, start))
                stack.append(pid)
    return found


def running(keys) -> list:
    """Those of keys (pid, start time) still running: same start time, not a zombie."""
    table = proc_table()
    return sorted(pid for pid, start in keys
                  if pid in table and table[pid][1] == start and table[pid][2] not in "ZX")


def wait_all_gone(keys, timeout: float) -> float:
    """Seconds until none of keys runs; fails naming the survivors after timeout."""
    start = time.monotonic()
    while running(keys):
        assert time.monotonic() - start < timeout, f"still running after {timeout} s: {running(keys)}"
        time.sleep(0.05)
    return time.monotonic() - start


def ours(pid: int) -> bool:
    """Is pid still one of the fake's processes (not a reused pid)? Guards the cleanup kill."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"fakes/swift" in cmdline or b"FAKE_SWIFT" in cmdline


class Launch:
    """One driver run in tmp_path; `close` kills whatever it left, on any outcome."""

    def __init__(self, tmp: Path, mode: str, grace: float = 30.0, argv=None, env=None):
        self.tmp = tmp
        self.started, self.result = tmp / "started", tmp / "result"
        self.ready, self.gc_pid = tmp / "ready", tmp / "grandchild.pid"
        self.log, self.marker, self.record = tmp / "signals.log", tmp / "marker", tmp / "record"
        self.env = env if env is not None else self.default_env(mode)
        cfg = {
            "argv": argv or [str(FAKE_SWIFT), "sft"],
            "env": self.env,
            "grace": grace,
            "started": str(self.started),
            "result": str(self.result),
        }
        self.driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(SRC), json.dumps(cfg)], cwd=tmp
        )

    def default_env(self, mode: str) -> dict:
        return {
            "PATH": f"{FAKES}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
            "PYTHONCOERCECLOCALE": "0",  # else Python may add LC_CTYPE to the env it records
            "FAKE_SWIFT_MODE": mode,
            "FAKE_SWIFT_READY": str(self.ready),
            "FAKE_SWIFT_GRANDCHILD_PID_FILE": str(self.gc_pid),
            "FAKE_SWIFT_SIGNAL_LOG": str(self.log),
            "FAKE_SWIFT_MARKER": str(self.marker),
            "FAKE_SWIFT_RECORD": str(self.record),
        }

    def child_pid(self) -> int:
        return int(wait_for(self.started))

    def grandchild_pid(self) -> int:
        return int(wait_for(self.gc_pid))

    def wait_ready(self) -> None:
        self.child_pid()  # lorakit's handlers are installed before on_start runs
        wait_for(self.ready)

    def signal(self, sig: int) -> None:
        self.driver.send_signal(sig)

    def finish(self) -> int:
        rc = self.driver.wait(timeout=60)
        assert json.loads(self.result.read_text())["restored"], "signal handlers not restored"
        return rc

    def keeper_pid(self) -> int:
        keeper = ppid(self.child_pid())
        assert ppid(keeper) == self.driver.pid, "swift's parent is not the driver's child"
        return keeper

    def close(self) -> None:
        tree = descendants(self.driver.pid)
        if self.driver.poll() is None:
            self.driver.kill()
            self.driver.wait()
        for pid in running(tree):  # whatever a failing test left behind (no reused pid)
            os.kill(pid, signal.SIGKILL)
        for path in (self.started, self.gc_pid):
            if path.exists() and ours(int(path.read_text())):
                os.kill(int(path.read_text()), signal.SIGKILL)


@pytest.fixture
def launcher(tmp_path):
    runs = []

    def start(mode: str, **kw) -> Launch:
        run = Launch(tmp_path, mode, **kw)
        runs.append(run)
        return run

    try:
        yield start
    finally:
        for run in runs:
            run.close()


@pytest.mark.parametrize("code", [0, 3, 42])
def test_exit_code_passes_through(launcher, code):
    assert launcher(f"exit:{code}").finish() == code


@pytest.mark.parametrize("sig, code", [(signal.SIGKILL, 137), (signal.SIGSEGV, 139)])
def test_child_killed_by_signal_n_gives_128_plus_n(launcher, sig, code):
    assert launcher(f"kill:{int(sig)}").finish() == code


def test_sigterm_reaches_grandchild_in_its_own_session(launcher):
    run = launcher("spawn")
    run.wait_ready()
    child, grandchild = run.child_pid(), run.grandchild_pid()
    run.signal(signal.SIGTERM)
    assert run.finish() == 128 + signal.SIGTERM  # the wrapper dies at once, like the real one
    assert "got SIGTERM" in run.log.read_text()
    assert not alive(child) and not alive(grandchild)


def test_orphan_adopted_by_the_keeper_gets_the_signal(launcher):
    # The grandchild's parent exited before any snapshot: as subreaper, the keeper adopts it.
    run = launcher("orphan")
    run.wait_ready()
    grandchild = run.grandchild_pid()
    assert ppid(grandchild) == run.keeper_pid()
    run.signal(signal.SIGTERM)
    assert run.finish() == 128 + signal.SIGTERM
    assert "got SIGTERM" in run.log.read_text()
    assert not alive(grandchild)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_child_handler_finishes_and_its_code_is_returned(launcher, sig, code):
    run = launcher("trap")
    run.wait_ready()
    child = run.child_pid()
    assert run.ready.read_text() == str(child)  # on_start got the child's pid, not the keeper's
    assert os.getpgid(child) == child != os.getpgid(run.driver.pid)  # in a group of its own
    keeper = run.keeper_pid()
    assert os.getsid(keeper) == keeper != os.getsid(run.driver.pid)  # so is the keeper
    run.signal(sig)
    assert run.finish() == code
    assert run.marker.read_text() == signal.Signals(sig).name  # its 1 s "checkpoint" completed


def test_sighup_is_forwarded(launcher):
    run = launcher("trap")  # traps INT and TERM only: SIGHUP kills it
    run.wait_ready()
    run.signal(signal.SIGHUP)
    assert run.finish() == 128 + signal.SIGHUP
    assert not run.marker.exists()


def test_stubborn_tree_is_killed_after_grace(launcher):
    run = launcher("hang", grace=1.0)
    run.wait_ready()
    child, grandchild = run.child_pid(), run.grandchild_pid()
    sent = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.finish() == 128 + signal.SIGKILL
    assert time.monotonic() - sent >= 1.0  # the grace was given
    assert not alive(child) and not alive(grandchild)


def test_normal_exit_does_not_wait_for_leftovers(launcher):
    # Documented: without a forwarded signal, lorakit returns when its child does, even if the
    # child left a process in its group (a daemon); only the signal path waits for the tree.
    run = launcher("daemon")
    grandchild = run.grandchild_pid()
    assert run.finish() == 0
    assert alive(grandchild)


def test_argv_and_env_arrive_exactly(launcher, tmp_path):
    argv = ["swift", "sft", "--system", "You are 'kind'; $HOME", "", "--lora_target", "[q_proj]", "é"]
    env = {
        "PATH": f"{FAKES}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        "PYTHONCOERCECLOCALE": "0",
        "FAKE_SWIFT_RECORD": str(tmp_path / "record"),
        "SPACES": " a b = c ",
    }
    run = launcher("exit:0", argv=argv, env=env)
    assert run.finish() == 0
    record = json.loads(run.record.read_text())
    assert record["argv"][1:] == argv[1:]
    assert record["argv"][0] == str(FAKE_SWIFT)  # found on the given env's PATH
    assert record["env"] == env


def test_resolve_swift_searches_the_given_path(tmp_path):
    not_executable = tmp_path / "swift"
    not_executable.write_text("")  # skipped, as the shell would skip it
    path = os.pathsep.join(["/nonexistent", str(tmp_path), str(FAKES)])
    assert launch.resolve_swift({"PATH": path}) == str(FAKE_SWIFT)


@pytest.mark.parametrize("path", ["", "/nonexistent"])
def test_resolve_swift_not_found(path):
    assert launch.resolve_swift({"PATH": path}) is None


def test_a_child_that_cannot_start_is_an_environment_problem(tmp_path):
    with pytest.raises(EnvironmentProblem, match=r"cannot start /nonexistent/swift: No such file"):
        launch.run(["/nonexistent/swift", "sft"], {"PATH": "/usr/bin:/bin"})


def test_a_keeper_that_cannot_start_is_an_environment_problem(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(EnvironmentProblem, match="cannot start lorakit's keeper with .*no-python"):
        launch.run([str(FAKE_SWIFT), "sft"], {"PATH": "/usr/bin:/bin"})


def test_on_start_failing_stops_the_run_and_raises(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "FAKE_SWIFT_MODE": "hang",  # ignores SIGTERM: needs SIGKILL
           "FAKE_SWIFT_GRANDCHILD_PID_FILE": str(tmp_path / "gc.pid")}
    seen = []

    def on_start(pid):
        seen.append(pid)
        wait_for(tmp_path / "gc.pid")  # the whole tree is up
        raise RuntimeError("on_start failed")

    with pytest.raises(RuntimeError, match="on_start failed"):
        launch.run([str(FAKE_SWIFT), "sft"], env, grace=60, on_start=on_start)
    assert not alive(seen[0]) and not alive(int((tmp_path / "gc.pid").read_text()))
