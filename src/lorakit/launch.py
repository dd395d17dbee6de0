"""The only module that starts processes (through lorakit.keeper): run one ms-swift command,
forward signals, return its code.

lorakit does not start `swift` itself: it starts a keeper (lorakit/keeper.py, a small stdlib-only
script) with the child's exact env, and the keeper starts `swift`. The keeper does what a
launcher of torchrun has to (swift in its own session, signals to its whole group, a /proc
snapshot of the tree so the workers are found after the wrapper is gone, subreaper for the
orphans, grace, then SIGKILL for all of it): see its docstring. lorakit's part:

  * Signals: lorakit's handlers forward SIGINT/SIGTERM/SIGHUP to the keeper, which forwards
    them to the run. The first one starts the `grace` timer; later ones are forwarded too but
    never shorten it (an impatient second Ctrl-C must not cut a checkpoint save short).
  * Death: whatever kills lorakit, SIGKILL included, the kernel tells the keeper
    (PR_SET_PDEATHSIG), and the keeper stops the tree within a few seconds (SIGTERM, SIGKILL
    after keeper.LEFT_GRACE) and exits: nothing lorakit started outlives it for long. The
    keeper is in a session of its own, so a signal to lorakit's group reaches it only once,
    through lorakit.
  * The result: the keeper exits with the child's code, or 128+N if signal N killed it, and
    lorakit returns that. A child that exits on its own returns at once, even if it left
    processes behind in its group (a daemon): only the signal path waits for the tree.

Output: by default the child inherits lorakit's stdout and stderr through the keeper (nothing in
between). With `output`, both go through pipes (the keeper passes them on to the child) and a
reader thread per pipe hands every chunk, unchanged, to `output(fd, data)` (lorakit.progress tees
it to the terminal, a log file and the progress bar). The threads read whatever arrives at once,
so the child never blocks on a full pipe.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional

from lorakit import keeper
from lorakit.errors import EnvironmentProblem

FORWARDED = keeper.FORWARDED
POLL = keeper.POLL  # seconds between looks at the keeper
CHUNK = 65536  # bytes per read from the child's pipes
DRAIN = 2.0  # after the child is done, at most this long to copy what its pipes still hold
KEEPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keeper.py")

Output = Callable[[int, bytes], None]  # (1 = stdout or 2 = stderr, the bytes as they came)


def resolve_swift(env: Mapping[str, str]) -> Optional[str]:
    """Where `swift` is on env's PATH, found the way Popen(env=env) will find it; None if absent."""
    # os.get_exec_path is what subprocess itself uses (PATH, or os.defpath when PATH is unset).
    return shutil.which("swift", path=os.pathsep.join(os.get_exec_path(env)))


def _log():
    # logging is imported where used: this module is on the dry-run path (via the CLI), where
    # every ms counts against a ~100 ms budget (scripts/bench.py).
    import logging

    return logging.getLogger(__name__)


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


def _start(argv: List[str], env: Dict[str, str], grace: float, output: Optional[Output]):
    """Start the keeper for argv; return it and the read end of its status pipe."""
    # -I: the child's env (PYTHONPATH, PYTHONHOME, ...) cannot change which code the keeper
    # runs, and the script's folder (lorakit's own modules) is not on its sys.path. -S: it
    # needs nothing from site-packages, and starts faster without them.
    status_r, status_w = os.pipe()
    cmd = [sys.executable, "-I", "-S", KEEPER, "--grace", repr(float(grace)),
           "--parent", str(os.getpid()), "--status", str(status_w), "--", *argv]
    pipe = None if output is None else subprocess.PIPE
    try:
        if not sys.executable:
            raise OSError(0, "Python does not know its own executable (sys.executable is empty)")
        # Its own session: a signal to lorakit's group (a terminal's Ctrl-C) reaches the keeper
        # once, forwarded by lorakit, not a second time directly.
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=pipe, stderr=pipe,
                                pass_fds=(status_w,))
    except OSError as e:
        os.close(status_r)
        raise EnvironmentProblem(f"cannot start lorakit's keeper with {sys.executable}: {e.strerror}",
                                 hint="is this Python installation complete?") from e
    finally:
        os.close(status_w)
    return proc, status_r


def _started(proc: subprocess.Popen, status_r: int, argv: List[str]) -> int:
    """Wait for the keeper's word: the child's pid, or an EnvironmentProblem saying why not."""
    with os.fdopen(status_r, "rb") as status:
        said = status.read().decode(errors="replace").strip()  # until the keeper closes it
    if said.isdigit():
        return int(said)
    rc = proc.wait()
    if said.startswith("error "):
        raise EnvironmentProblem(f"cannot start {argv[0]}: {said[6:]}", hint="is ms-swift installed?")
    raise EnvironmentProblem(f"lorakit's keeper exited (code {rc}) before it could start {argv[0]}")


def _wait(proc: subprocess.Popen, pending: List[int]) -> int:
    """Forward what lorakit caught to the keeper until it exits; its exit code."""
    while True:
        while pending:  # at most POLL seconds after the signal arrived
            proc.send_signal(pending.pop(0))  # a no-op once it has been reaped: no pid reuse
        try:
            return proc.wait(POLL)
        except subprocess.TimeoutExpired:
            pass


def _caught(signum: int, pending: List[int], caught: Optional[List[int]]) -> None:
    pending.append(signum)
    if caught is not None:
        caught.append(signum)


def run(
    argv: List[str],
    env: Dict[str, str],
    *,
    grace: float = 30.0,
    on_start: Optional[Callable[[int], None]] = None,
    output: Optional[Output] = None,
    caught: Optional[List[int]] = None,
) -> int:
    """Run argv with exactly env; return its exit code, or 128+N if signal N killed it.

    caught: if given, every signal lorakit forwarded is appended to it (a run's record says
    "interrupted" when it ended after one, whatever code ms-swift chose to exit with).

    on_start(pid) is called once argv runs, with the pid of its process (the keeper's child).
    output: None, the child writes to our stdout/stderr itself; else every chunk of its stdout
    (fd 1) and stderr (fd 2) is passed to output(fd, data) from a reader thread, and all of it
    has been passed when run returns.
    """
    pending: List[int] = []
    handlers: Dict[int, object] = {}
    # Handlers, not SIG_IGN (which the child would inherit: STYLE.md habit 8). Only the main
    # thread may install them; from another thread, signals never reach us anyway.
    if threading.current_thread() is threading.main_thread():
        for sig in FORWARDED:
            handlers[sig] = signal.signal(sig, lambda signum, _frame: _caught(signum, pending, caught))
    done, pumps, proc = threading.Event(), [], None
    try:
        proc, status_r = _start(argv, env, grace, output)
        if output is not None:
            for pipe, fd in ((proc.stdout, 1), (proc.stderr, 2)):
                pumps.append(threading.Thread(target=_pump, args=(pipe, fd, output, done),
                                              name=f"lorakit-pipe-{fd}", daemon=True))
                pumps[-1].start()
        try:
            # Signals caught until now are forwarded once the keeper has its handlers (it has
            # them before it starts the child): earlier, they would kill it.
            pid = _started(proc, status_r, argv)
            if on_start is not None:
                on_start(pid)
            rc = _wait(proc, pending)
        except BaseException:
            if proc.poll() is None:  # we give up on the run: the keeper stops it, as if we died
                proc.send_signal(keeper.LEAVING)
                proc.wait()
            raise
    finally:
        done.set()
        for pump in pumps:
            pump.join()  # bounded: each gives up DRAIN seconds after `done`
        for pipe in (proc.stdout, proc.stderr) if pumps else ():
            pipe.close()
        for sig, handler in handlers.items():
            # None: the old handler was not set from Python; the default is the best we can do.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    return 128 - rc if rc < 0 else rc
