"""Live progress for `lorakit train`: ms-swift's own log lines feed a Rich bar; the child's output
is teed to the terminal or a --log file, and its last lines are kept for the failure report.

What a line of ms-swift's output says about the step is progresslog.py's; anything else (a
truncated or garbled line) is passed through and ignored.

On failure, Watch.report prints the exit code, the failing rank's traceback and the last lines
(see failure_report). Rich is imported only once a bar is to be shown, and the CLI imports this
module only when it launches: the dry-run path pays nothing for it.
"""

from __future__ import annotations

import collections
import io
import re
import sys
import threading
from typing import IO, Deque, Dict, Optional

from lorakit import report
from lorakit.failreport import failure_report  # noqa: F401  (Watch.report prints it; tests import it here)
from lorakit.progresslog import _FRAME, Step, describe, merge, parse_line

KEEP = 200  # lines of the child's output kept for the failure report (failreport.py)
MAX_LINE = 1 << 20  # bytes: a longer run without a line break is cut into lines

class _Bar:
    """The Rich progress bar, on the stderr console; child lines are printed above it."""

    def __init__(self, console, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        # redirect_stderr: what lorakit itself prints meanwhile (a note) goes above the bar too.
        # The child's bytes never pass through sys.stdout/sys.stderr: see Watch.feed.
        self.progress = Progress(
            TextColumn(label, markup=False), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[info]}", markup=False),
            console=console, redirect_stdout=False, redirect_stderr=True, refresh_per_second=4,
        )
        self.task = self.progress.add_task("train", total=None, info="starting ms-swift", start=True)
        self.last: Optional[Step] = None

    def update(self, step: Step) -> None:
        self.last = merge(self.last, step)
        self.progress.update(self.task, total=self.last.total, completed=self.last.step,
                             info=describe(self.last))
        self.progress.refresh()  # else lines printed above it show the bar as it was

    def print(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text.from_ansi(text), soft_wrap=True, highlight=False, markup=False)


def _write_raw(stream, data: bytes) -> None:
    """Pass bytes through unchanged (a text stream without .buffer, like StringIO, gets text)."""
    stream.flush()  # whatever lorakit printed before comes first
    raw = getattr(stream, "buffer", None)
    if raw is None and isinstance(stream, io.TextIOBase):
        stream.write(data.decode("utf-8", "replace"))
    else:
        (raw or stream).write(data)
    (raw or stream).flush()


class Watch:
    """One run's output: a bar on a TTY, a --log file, or nothing in between; the failure report.

        watch = Watch(log=path, show=True)  # opens the log file: a bad path fails here
        with watch:                         # the bar, if any, is up inside
            rc = launch.run(argv, watch.child_env(env), grace=grace, output=watch.output)
        return watch.report(rc)

    With neither a bar to show (off a TTY, or show=False) nor a log file, `output` is None: the
    child writes to the terminal itself, exactly as without lorakit. With a log file the child's
    output goes there (byte for byte) instead of the terminal. With a bar and no log file, the
    child's lines are printed above the bar; its own tqdm redraws (lines it overwrote with \r)
    are left out there, since the bar shows the same, but they stay in a log file.
    """

    def __init__(self, *, log: Optional[str] = None, show: bool = True, label: str = "swift sft",
                 console=None, stdout: Optional[IO] = None, stderr: Optional[IO] = None, keep: int = KEEP):
        self.log_path, self.show, self.label, self.console = log, show, label, console
        self.streams = {1: stdout or sys.stdout, 2: stderr or sys.stderr}
        self.lines: Deque[str] = collections.deque(maxlen=keep)
        self.bar: Optional[_Bar] = None
        self._pending: Dict[int, bytes] = {1: b"", 2: b""}
        self._via_bar: Dict[int, bool] = {1: False, 2: False}
        self._lock = threading.Lock()
        self.log_file: Optional[IO[bytes]] = None
        if log is not None:  # now, so a bad path stops lorakit before anything has started
            try:
                self.log_file = open(log, "wb")
            except OSError as e:
                from lorakit.cli.common import write_failed  # a refusing disk is exit 1, the path exit 2

                raise write_failed(f"--log {log}: cannot write it", e, "give --log a file in a writable "
                                   "directory") from e

    @property
    def piped(self) -> bool:
        return self.bar is not None or self.log_file is not None

    @property
    def output(self):
        """launch.run's `output`: None when the child can write to the terminal itself."""
        return self.feed if self.piped else None

    def child_env(self, env: Dict[str, str]) -> Dict[str, str]:
        """env for the child, with PYTHONUNBUFFERED=1 if its output comes through lorakit, or
        goes to something that is not a terminal (`| tee`, `> log`, nohup, a batch script).

        On a pipe or a file, Python block-buffers stdout, and ms-swift prints its log dicts there
        without flushing (tqdm.write): measured with 4.6.0, every dict arrived only at exit.
        Unless env already says, lorakit sets PYTHONUNBUFFERED=1 then, and says so.
        """
        if "PYTHONUNBUFFERED" in env:
            return env
        if self.piped:
            why = "its output now goes through lorakit"
        elif not _isatty(self.streams[1]):
            why = "lorakit's stdout is not a terminal"
        else:
            return env
        report.note(f"set PYTHONUNBUFFERED=1 for ms-swift: {why}, and Python would otherwise hold "
                    "its log lines back until it exits")
        return {**env, "PYTHONUNBUFFERED": "1"}

    def _terminal(self) -> bool:
        if self.console is None:
            if not _isatty(self.streams[2]):  # decided before importing Rich: it costs start-up
                return False
            from rich.console import Console

            self.console = Console(stderr=True, highlight=False)
        return self.console.is_terminal and not self.console.is_dumb_terminal

    def __enter__(self) -> "Watch":
        if self.show and self._terminal():
            self.bar = _Bar(self.console, self.label)
            self._via_bar = {fd: self.log_file is None and _isatty(s) for fd, s in self.streams.items()}
            self.bar.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            for fd, rest in self._pending.items():
                if rest:
                    self._line(fd, rest, newline=True)
            self._pending = {1: b"", 2: b""}
        if self.bar is not None:
            self.bar.progress.stop()
        if self.log_file is not None:
            try:
                self.log_file.close()
            except OSError as exc:
                self._log_lost(exc)

    def feed(self, fd: int, data: bytes) -> None:
        """One chunk of the child's stdout (fd 1) or stderr (fd 2); called from reader threads."""
        with self._lock:
            if self.log_file is not None:
                try:
                    self.log_file.write(data)
                    self.log_file.flush()  # `tail -f` on the log is how one watches a run without a TTY
                except OSError as exc:  # the disk filled up (ENOSPC), EIO: the run goes on regardless
                    self._log_lost(exc)
            if self.log_file is None and not self._via_bar[fd]:
                _write_raw(self.streams[fd], data)
            self._split(fd, data)

    def _log_lost(self, exc: OSError) -> None:
        """The --log file stopped taking writes: say so once, and send the rest to the terminal
        (it was an OSError traceback in the reader thread, and again when closing the file)."""
        try:
            self.log_file.close()
        except OSError:
            pass
        self.log_file = None
        _write_raw(self.streams[2], f"lorakit: --log {self.log_path}: cannot write it any more: {exc.strerror}; "
                                    "the rest of ms-swift's output follows here\n".encode())
        self.log_path = None  # the failure report must not send anyone to the file for all of it

    def _split(self, fd: int, data: bytes) -> None:
        buf, start = self._pending[fd] + data, 0
        for m in re.finditer(rb"\r\n|\n|\r", buf):
            if m.group() == b"\r" and m.end() == len(buf):
                break  # may be the first half of \r\n: wait for the next chunk
            self._line(fd, buf[start:m.start()], newline=m.group() != b"\r")
            start = m.end()
        rest = buf[start:]
        if len(rest) > MAX_LINE:
            self._line(fd, rest, newline=True)
            rest = b""
        self._pending[fd] = rest
        # tqdm draws each frame as '\r' + frame: the newest frame is the unfinished rest.
        if self.bar is not None and 0 < len(rest) < 1024:
            step = parse_line(rest.decode("utf-8", "replace").lstrip("\r"))
            if step is not None:
                self.bar.update(step)

    def _line(self, fd: int, raw: bytes, newline: bool) -> None:
        self._text(fd, raw.decode("utf-8", "replace"), newline)

    def _text(self, fd: int, text: str, newline: bool) -> None:
        frame = _FRAME.match(text) if newline else None
        if frame and frame.end() < len(text):  # 'Train: 0%|...| 0/2 [...]/path.py:759: UserWarning'
            self._text(fd, text[:frame.end()], newline=False)  # the frame: overwritten on a terminal
            text = text[frame.end():]
        if self.bar is not None:
            step = parse_line(text)
            if step is not None:
                self.bar.update(step)
        if not newline or not text.strip():  # overwritten on the terminal: not a line to keep
            return
        self.lines.append(text)
        if self._via_bar[fd]:
            self.bar.print(text)

    def report(self, rc: int) -> int:
        """On failure, say so: the exit code and, if lorakit saw the output, its last lines."""
        if rc == 0:
            return rc
        lines = failure_report(list(self.lines), rc) if self.piped else failure_report([], rc)
        if self.log_path is not None:
            lines.insert(1, f"all of ms-swift's output is in {self.log_path}")
        for line in lines:
            if line.startswith("  "):
                print(line, file=sys.stderr)
            else:
                report.note(line)
        return rc


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
