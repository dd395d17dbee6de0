"""The keeper: a small process between lorakit and `swift` that outlives neither.

    python -I -S .../lorakit/keeper.py --grace G --parent PID --status FD -- swift sft ...

Why a separate process: lorakit can be killed by SIGKILL (the OOM killer, `kill -9`, a
scheduler's last word), and then nothing in lorakit runs: before the keeper, a run whose
lorakit was SIGKILLed trained on to its last step, detached. The keeper asks the kernel to
signal it when lorakit dies (PR_SET_PDEATHSIG), and then stops the whole tree itself.

`swift sft` is a thin wrapper that runs torchrun through `subprocess.run`, and dies at once on
SIGTERM. Measured with ms-swift 4.6.0, NPROC_PER_NODE=2:
  * SIGTERM to the wrapper alone leaves torchrun and both workers running under PID 1;
  * SIGTERM to the wrapper's process group reaches torchrun, which stops its workers in seconds;
  * torchrun starts each worker in its own session, so workers are not in that group.
So the keeper starts swift in a session of its own, signals its whole group, keeps a snapshot of
the process tree under it (walking /proc) so it can still find the workers after the wrapper is
gone, and after a grace period SIGKILLs whatever of that tree is left. It is also a child
subreaper, so orphans reparent to it rather than PID 1: since the keeper starts nothing but
swift, every other child it has was orphaned in the run's tree.

Signals: lorakit forwards SIGINT/SIGTERM/SIGHUP to the keeper, which forwards them to the run.
The first starts the `grace` timer; later ones are forwarded too (a trainer may treat a second
Ctrl-C as "abort now") but do not shorten it: an impatient second Ctrl-C must not cut a
checkpoint save short. A child that exits on its own (no signal forwarded) ends the keeper at
once, even if it left processes behind in its group (a daemon): only the signal path waits.

LEAVING (SIGUSR1) means lorakit is gone or going: it is the parent-death signal, and what
lorakit sends when it gives up on the run itself. Then the keeper sends SIGTERM and SIGKILLs the
tree LEFT_GRACE seconds later at the latest, however long `grace` is.

Exit status: the child's exit code, or 128+N if signal N killed it. The keeper writes nothing to
stdout/stderr (they are lorakit's, and the child's); it tells lorakit the child's pid, or why it
could not start it, on the status fd, then closes it.

Stdlib only, and few modules (no typer, rich or yaml; not even typing): it runs as a script
with -I -S, so it cannot be shadowed by the child's environment (PYTHONPATH, PYTHONHOME) and
starts in a few tens of ms. It hands the child its own exec environment byte for byte from
/proc/self/environ: Python may have changed os.environ at start-up (C locale coercion).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LEAVING = signal.SIGUSR1
# When lorakit is gone nobody waits for a checkpoint or reads the output any more, and whoever
# killed lorakit wants the run gone: SIGTERM first (torchrun stops its workers in about a second
# and frees GPUs and ports cleanly), SIGKILL after this, whatever `grace` says.
LEFT_GRACE = 5.0
POLL = 0.1  # seconds between looks at the child
SNAPSHOT_EVERY = 1.0  # seconds between /proc walks while the run is undisturbed
KILL_WAIT = 10.0  # after SIGKILL, how long to wait for the kernel (a process in D state lingers)
_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36

# Proc: (ppid, pgrp, start time in clock ticks, state); Key: (pid, start time), since a pid
# alone may have been reused.


def _scan() -> "dict[int, tuple[int, int, int, str]]":
    """Every process visible in /proc: pid -> (ppid, pgrp, start time, state)."""
    procs = {}
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


def _prctl(option: int, value: int) -> bool:
    import ctypes  # here: only the keeper process needs it, not lorakit importing FORWARDED

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, ctypes.c_ulong(value), *[ctypes.c_ulong(0)] * 3) == 0
    except (OSError, AttributeError):
        return False


def _kill(pid: int, sig: int, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except (ProcessLookupError, PermissionError):  # already gone, or its pid was reused
        pass


class _Run:
    """One child, the tree under it, and what the keeper has done to them."""

    def __init__(self, grace: float):
        self.grace = grace
        self.proc = None  # the subprocess.Popen of argv
        self.pending = []  # signals caught, not yet forwarded
        self.known = set()  # keys of everything ever seen in the child's tree or group
        self.told = set()  # keys of stranded processes the keeper signalled itself
        self.last_sig = None
        self.deadline = None  # set by the first forwarded signal
        self.leaving = False  # LEAVING arrived
        self.left = False  # and the tree has been told to stop

    def refresh(self, procs) -> None:
        """Add the group's members, orphans adopted by us, and the descendants of all known."""
        pid0, me = self.proc.pid, os.getpid()
        children = {}
        for pid, (ppid, pgrp, start, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
            # A child of ours other than swift was orphaned in the run's tree and reparented
            # to us (subreaper), even if it was never in a snapshot.
            if pgrp == pid0 or ppid == me:
                self.known.add((pid, start))
        stack = [pid for pid, start in self.known if procs.get(pid, (0, 0, -1))[2] == start]
        while stack:
            for child in children.get(stack.pop(), ()):
                key = (child, procs[child][2])
                if key not in self.known:
                    self.known.add(key)
                    stack.append(child)

    def live(self, procs) -> "list[int]":
        """Known processes still running (a zombie has finished; only its parent's wait is left)."""
        return [
            pid
            for pid, start in self.known
            if pid in procs and procs[pid][2] == start and procs[pid][3] not in "ZX"
        ]

    def reap(self, procs) -> None:
        # Orphans reparented to us (subreaper) are our children: collect them when they exit.
        me = os.getpid()
        for pid, start in self.known:
            p = procs.get(pid)
            if p and p[2] == start and p[0] == me and p[3] == "Z" and pid != self.proc.pid:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def tell_stranded(self, procs, again: bool = False) -> None:
        """Pass the signal to tree members outside the group whose parent has died.

        Group members already got it; a worker whose torchrun is alive gets it from torchrun.
        One whose parent died first (the wrapper dies at once on SIGTERM) has nobody left to
        pass it on, so the keeper does.
        """
        live = set(self.live(procs))
        for pid in live:
            ppid, pgrp, start, _ = procs[pid]
            if pgrp != self.proc.pid and ppid not in live and (again or (pid, start) not in self.told):
                self.told.add((pid, start))
                _kill(pid, self.last_sig)

    def signal_group(self, procs, sig: int) -> None:
        # Once swift is reaped and its group empty, its pid may be reused (a new group leader).
        pid0 = self.proc.pid
        if self.proc.returncode is None or any(procs[pid][1] == pid0 for pid in self.live(procs)):
            _kill(pid0, sig, group=True)

    def forward(self, sig: int) -> None:
        """Snapshot the tree while the wrapper is still alive, then signal it."""
        procs = _scan()
        self.refresh(procs)
        self.last_sig = sig
        self.signal_group(procs, sig)
        self.tell_stranded(procs, again=True)
        if self.deadline is None:
            self.deadline = time.monotonic() + self.grace

    def leave(self) -> None:
        """lorakit is gone: stop the tree, SIGKILL within LEFT_GRACE (a grace running may end sooner)."""
        self.left = True
        self.forward(signal.SIGTERM)
        self.deadline = min(self.deadline, time.monotonic() + LEFT_GRACE)

    def kill_all(self) -> None:
        procs = _scan()
        self.signal_group(procs, signal.SIGKILL)
        for pid in self.live(procs):
            _kill(pid, signal.SIGKILL)


def _wait(state: _Run, parent: int) -> int:
    """Poll the child; on the signal path, also wait for (and in the end kill) its tree."""
    next_scan, kill_deadline = 0.0, None
    while True:
        # The death signal wakes us at once; getppid is the check that cannot be missed.
        if not state.left and (state.leaving or os.getppid() != parent):
            state.leave()
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
                import logging

                logging.getLogger("lorakit.keeper").warning(
                    "processes of the run survived SIGKILL: %s", state.live(procs))
                return -signal.SIGKILL if rc is None else rc
        if rc is None:
            try:  # like sleep(POLL), but back at once when the child exits
                state.proc.wait(POLL)
            except subprocess.TimeoutExpired:
                pass
        else:
            time.sleep(POLL)


def _environ():
    """Our exec environment exactly as lorakit passed it (None: inherit os.environ)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            items = f.read().split(b"\0")
    except OSError:
        return None
    return dict(item.split(b"=", 1) for item in items if b"=" in item)


def _report(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode() + b"\n")
        os.close(fd)
    except OSError:  # lorakit died already: LEAVING is on its way, or getppid will tell
        pass


def _parse(args: "list[str]"):
    """--grace G --parent PID --status FD -- argv..."""
    end = args.index("--")
    opts = dict(zip(args[:end:2], args[1:end:2]))
    return float(opts["--grace"]), int(opts["--parent"]), int(opts["--status"]), args[end + 1 :]


def main(args: "list[str]") -> int:
    grace, parent, status, argv = _parse(args)
    state = _Run(grace)

    def on_signal(signum, _frame):
        # Only queue: the loop forwards, so the handler never changes the tree bookkeeping
        # while the loop is iterating over it.
        if signum == LEAVING:
            state.leaving = True
        else:
            state.pending.append(signum)

    for sig in (*FORWARDED, LEAVING):  # before the death signal is armed, so it cannot kill us
        signal.signal(sig, on_signal)
    _prctl(_PR_SET_PDEATHSIG, LEAVING)
    # lorakit may have died between forking us and the prctl: then nothing will signal us, and
    # we are someone else's child already. Start nothing.
    if os.getppid() != parent:
        return 1
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    try:
        # start_new_session (setsid) rather than process_group=0: it exists on Python 3.9, and
        # a child in its own session is never a background job of a terminal, so it cannot be
        # stopped by SIGTTOU/SIGTTIN. The terminal's Ctrl-C does not reach its group either:
        # lorakit gets it and forwards it through us.
        state.proc = subprocess.Popen(argv, env=_environ(), start_new_session=True)
    except OSError as e:
        _report(status, f"error {e.strerror}")
        return 1
    _report(status, str(state.proc.pid))
    state.refresh(_scan())
    rc = _wait(state, parent)
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
