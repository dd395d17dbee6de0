"""The only module that starts processes: run one ms-swift command, forward signals, return its code.

Why this is more than `subprocess.run`: `swift sft` is a thin wrapper that runs
`python -m torch.distributed.run` (torchrun) through `subprocess.run`, and dies at once on SIGTERM.
Measured with ms-swift 4.6.0, NPROC_PER_NODE=2:
  * SIGTERM to the wrapper alone leaves torchrun and both workers running under PID 1;
  * SIGTERM to the wrapper's process group reaches torchrun, which stops its workers in seconds;
  * torchrun starts each worker in its own session, so workers are not in that group.
So lorakit signals the child's whole group, keeps a snapshot of the process tree under the child
(walking /proc) so it can still find the workers after the wrapper is gone, and after a grace
period SIGKILLs whatever of that tree is left. It also makes itself a child subreaper for the
run, so orphans reparent to lorakit rather than PID 1: any child of ours that we did not start
counts as part of the run (a host that forks from other threads meanwhile would confuse that).

Grace: the first forwarded signal starts a `grace` timer. Later signals are forwarded as well
(a trainer may treat a second Ctrl-C as "abort now"), but they do not shorten the timer: an
impatient second Ctrl-C must not cut a checkpoint save short; `grace` is the one bound.

A child that exits on its own (no signal forwarded) returns at once, even if it left processes
behind in its group (a daemon, say): lorakit only waits for the tree on the signal path.

Output: by default the child inherits lorakit's stdout and stderr (nothing in between). With
`output`, both go through pipes and a reader thread per pipe hands every chunk, unchanged, to
`output(fd, data)` (lorakit.progress tees it to the terminal, a log file and the progress bar).
The threads read whatever arrives at once, so the child never blocks on a full pipe; signals
still go through the group as above, pipes or not.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Set, Tuple

from lorakit.errors import EnvironmentProblem


FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
POLL = 0.1  # seconds between looks at the child
SNAPSHOT_EVERY = 1.0  # seconds between /proc walks while the run is undisturbed
KILL_WAIT = 10.0  # after SIGKILL, how long to wait for the kernel (a process in D state lingers)
CHUNK = 65536  # bytes per read from the child's pipes
DRAIN = 2.0  # after the child is done, at most this long to copy what its pipes still hold
_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37

Output = Callable[[int, bytes], None]  # (1 = stdout or 2 = stderr, the bytes as they came)
Key = Tuple[int, int]  # (pid, start time in clock ticks): a pid alone may have been reused
Proc = Tuple[int, int, int, str]  # (ppid, pgrp, start time, state)


def resolve_swift(env: Mapping[str, str]) -> Optional[str]:
    """Where `swift` is on env's PATH, found the way Popen(env=env) will find it; None if absent."""
    # os.get_exec_path is what subprocess itself uses (PATH, or os.defpath when PATH is unset).
    return shutil.which("swift", path=os.pathsep.join(os.get_exec_path(env)))


def _scan() -> Dict[int, Proc]:
    """Every process visible in /proc: pid -> (ppid, pgrp, start time, state)."""
    procs: Dict[int, Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:  # exited between listdir and open
            continue
        # comm (field 2) may hold spaces and ')': the fields we want follow the last ')'.
        rest = data[data.rindex(b")") + 2 :].split()
        procs[int(name)] = (int(rest[1]), int(rest[2]), int(rest[19]), rest[0].decode())
    return procs


def _log():
    # logging and ctypes are imported where used: this module is on the dry-run path (via the
    # CLI), where together they cost ~3 ms of a ~100 ms budget (scripts/bench.py).
    import logging

    return logging.getLogger(__name__)


def _subreaper(value: int) -> int:
    """Set PR_SET_CHILD_SUBREAPER; return the previous value (0 where prctl is unavailable).

    As a subreaper, lorakit inherits the processes orphaned when the wrapper dies (torchrun,
    workers) instead of PID 1, so they stay visible as lorakit's descendants and their exit is
    ours to reap (see _Run.reap).
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        old = ctypes.c_int(0)
        libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(old), *[ctypes.c_ulong(0)] * 3)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(value), *[ctypes.c_ulong(0)] * 3)
        return old.value
    except (OSError, AttributeError):
        return 0


def _kill(pid: int, sig: int, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except (ProcessLookupError, PermissionError):  # already gone, or its pid was reused
        pass


class _Run:
    """One child, the tree under it, and what lorakit has done to them."""

    def __init__(self, grace: float):
        self.grace = grace
        self.proc: Optional[subprocess.Popen] = None
        self.pending: List[int] = []  # signals caught, not yet forwarded
        self.known: Set[Key] = set()  # everything ever seen in the child's tree or group
        self.told: Set[Key] = set()  # stranded processes lorakit signalled itself
        self.last_sig: Optional[int] = None
        self.deadline: Optional[float] = None  # set by the first forwarded signal
        me = os.getpid()  # our children from before the run are not the run's
        self.foreign = {pid for pid, p in _scan().items() if p[0] == me}

    def refresh(self, procs: Dict[int, Proc]) -> None:
        """Add the group's members, orphans adopted by us, and the descendants of all known."""
        pid0, me = self.proc.pid, os.getpid()
        children: Dict[int, List[int]] = {}
        for pid, (ppid, pgrp, start, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
            # A child of ours we did not start ourselves was orphaned in the run's tree and
            # reparented to us (subreaper), even if it was never in a snapshot.
            if pgrp == pid0 or (ppid == me and pid not in self.foreign):
                self.known.add((pid, start))
        stack = [pid for pid, start in self.known if procs.get(pid, (0, 0, -1))[2] == start]
        while stack:
            for child in children.get(stack.pop(), ()):
                key = (child, procs[child][2])
                if key not in self.known:
                    self.known.add(key)
                    stack.append(child)

    def live(self, procs: Dict[int, Proc]) -> List[int]:
        """Known processes still running (a zombie has finished; only its parent's wait is left)."""
        return [
            pid
            for pid, start in self.known
            if pid in procs and procs[pid][2] == start and procs[pid][3] not in "ZX"
        ]

    def reap(self, procs: Dict[int, Proc]) -> None:
        # Orphans reparented to us (subreaper) are our children: collect them when they exit.
        me = os.getpid()
        for pid, start in self.known:
            p = procs.get(pid)
            if p and p[2] == start and p[0] == me and p[3] == "Z" and pid != self.proc.pid:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def tell_stranded(self, procs: Dict[int, Proc], again: bool = False) -> None:
        """Pass the signal to tree members outside the group whose parent has died.

        Group members already got it; a worker whose torchrun is alive gets it from torchrun.
        One whose parent died first (the fake wrapper dies at once on SIGTERM) has nobody left to
        pass it on, so lorakit does.
        """
        live = set(self.live(procs))
        for pid in live:
            ppid, pgrp, start, _ = procs[pid]
            if pgrp != self.proc.pid and ppid not in live and (again or (pid, start) not in self.told):
                self.told.add((pid, start))
                _kill(pid, self.last_sig)

    def forward(self, sig: int) -> None:
        """Snapshot the tree while the wrapper is still alive, then signal it."""
        procs = _scan()
        self.refresh(procs)
        self.last_sig = sig
        _kill(self.proc.pid, sig, group=True)
        self.tell_stranded(procs, again=True)
        if self.deadline is None:
            self.deadline = time.monotonic() + self.grace

    def kill_all(self) -> None:
        _kill(self.proc.pid, signal.SIGKILL, group=True)
        for pid in self.live(_scan()):
            _kill(pid, signal.SIGKILL)


def _wait(state: _Run) -> int:
    """Poll the child; on the signal path, also wait for (and in the end kill) its tree."""
    next_scan, kill_deadline = 0.0, None
    while True:
        while state.pending:  # at most POLL seconds after the signal arrived
            state.forward(state.pending.pop(0))
        rc = state.proc.poll()
        now = time.monotonic()
        if state.deadline is None:
            if rc is not None:
                return rc  # exited on its own: leftovers (daemons) are not ours to wait for
            if now >= next_scan:  # keep the snapshot fresh in case the wrapper dies suddenly
                procs = _scan()
                state.refresh(procs)
                state.reap(procs)
                next_scan = now + SNAPSHOT_EVERY
        else:
            procs = _scan()
            state.refresh(procs)
            state.reap(procs)
            if rc is not None and not state.live(procs):
                return rc
            state.tell_stranded(procs)
            if kill_deadline is None and now >= state.deadline:
                state.kill_all()
                kill_deadline = now + KILL_WAIT
            elif kill_deadline is not None and now >= kill_deadline:
                _log().warning("processes of the run survived SIGKILL: %s", state.live(procs))
                return -signal.SIGKILL if rc is None else rc
        time.sleep(POLL)


def _pump(pipe, fd: int, output: Output, done: threading.Event) -> None:
    """Copy one pipe to output until EOF; once `done`, until it is quiet or DRAIN has passed.

    EOF alone is not enough: a process the run left behind (a daemon) may hold the pipe open
    for as long as it lives, and `run` must not wait for it.
    """
    broken, deadline = False, None
    while True:
        if deadline is None and done.is_set():
            deadline = time.monotonic() + DRAIN
        if deadline is not None and time.monotonic() > deadline:
            return
        if not select.select([pipe], [], [], POLL)[0]:
            if deadline is not None:
                return
            continue
        data = os.read(pipe.fileno(), CHUNK)
        if not data:
            return
        if broken:
            continue  # keep draining, so the child never blocks on a full pipe
        try:
            output(fd, data)
        except Exception:  # a display bug must not stop the copy, nor the run
            _log().exception("output handler failed; the rest of the child's output is dropped")
            broken = True


def _start(argv: List[str], env: Dict[str, str], output: Optional[Output]) -> subprocess.Popen:
    # start_new_session (setsid) rather than process_group=0: it exists on Python 3.9, and a
    # child in its own session is never a background job of our terminal, so it cannot be
    # stopped by SIGTTOU/SIGTTIN. Either way the terminal's Ctrl-C no longer reaches the
    # child's group, which is why we forward it.
    pipe = None if output is None else subprocess.PIPE
    try:
        return subprocess.Popen(argv, env=env, start_new_session=True, stdout=pipe, stderr=pipe)
    except OSError as e:
        raise EnvironmentProblem(
            f"cannot start {argv[0]}: {e.strerror}", hint="is ms-swift installed?"
        ) from e


def run(
    argv: List[str],
    env: Dict[str, str],
    *,
    grace: float = 30.0,
    on_start: Optional[Callable[[int], None]] = None,
    output: Optional[Output] = None,
) -> int:
    """Run argv with exactly env; return its exit code, or 128+N if signal N killed it.

    output: None, the child writes to our stdout/stderr itself; else every chunk of its stdout
    (fd 1) and stderr (fd 2) is passed to output(fd, data) from a reader thread, and all of it
    has been passed when run returns.
    """
    state = _Run(grace)
    handlers: Dict[int, object] = {}
    # Handlers, not SIG_IGN (which the child would inherit: STYLE.md habit 8). Only the main
    # thread may install them; from another thread, signals never reach us anyway.
    if threading.current_thread() is threading.main_thread():
        for sig in FORWARDED:
            # The handler only queues: the main loop forwards, so the handler never changes the
            # tree bookkeeping while the loop is iterating over it.
            handlers[sig] = signal.signal(sig, lambda signum, _frame: state.pending.append(signum))
    old_reaper = _subreaper(1)
    done, pumps = threading.Event(), []
    try:
        state.proc = _start(argv, env, output)
        if output is not None:
            for pipe, fd in ((state.proc.stdout, 1), (state.proc.stderr, 2)):
                pumps.append(threading.Thread(target=_pump, args=(pipe, fd, output, done),
                                              name=f"lorakit-pipe-{fd}", daemon=True))
                pumps[-1].start()
        state.refresh(_scan())
        try:
            if on_start is not None:
                on_start(state.proc.pid)
        except BaseException:
            state.kill_all()
            state.proc.wait()
            raise
        rc = _wait(state)
    finally:
        done.set()
        for pump in pumps:
            pump.join()  # bounded: each gives up DRAIN seconds after `done`
        for pipe in (state.proc.stdout, state.proc.stderr) if pumps else ():
            pipe.close()
        _subreaper(old_reaper)
        for sig, handler in handlers.items():
            # None: the old handler was not set from Python; the default is the best we can do.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    return 128 - rc if rc < 0 else rc
