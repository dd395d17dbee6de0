"""`lorakit runs [OUTPUT]`: every launch into an output dir, from its index (lorakit.runindex)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from lorakit import report
from lorakit.errors import LorakitError

# lorakit.runindex is imported where used: this module is imported with the CLI, on the dry-run path
COLUMNS = ("started", "status", "exit", "run", "checkpoint", "record")
LOST = "lost"
SKIPS_SHOWN = 5  # unreadable index lines said one by one; the rest counted


def _started(pid: int) -> float | None:
    """When process pid started (epoch seconds), from Linux's /proc; None elsewhere."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22
        boot = next(float(x.split()[1]) for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _alive(pid: Any, since: Any = None) -> bool:
    """Whether that pid is still the lorakit that wrote the entry at `since` (its ISO time): a pid
    another user's process holds is alive (EPERM); one the kernel has since given to another
    program (/proc/PID/cmdline), or to a lorakit started after the entry, is not."""
    from datetime import datetime

    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False  # os.kill(0 or -1, 0) asks about a whole process group: always "alive"
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass
    except (OSError, OverflowError):
        return False
    try:
        if b"lorakit" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
    except OSError:
        return True  # no /proc (macOS): the pid answering is all there is to go by
    try:
        written = datetime.fromisoformat(str(since)).timestamp()
    except ValueError:
        return True
    started = _started(pid)
    # lorakit starts, then writes the entry; the margin covers a clock stepped since (NTP moves
    # /proc/stat's btime with it), a reuse of the pid comes much later
    return started is None or started <= written + 120


def _settled(entry: dict) -> dict:
    """A 'running' launch of this host whose lorakit no longer runs was killed without a word
    (SIGKILL, a lost node): say so rather than 'running' forever."""
    from lorakit import runindex

    if entry.get("status") == runindex.RUNNING and entry.get("host") == socket.gethostname() \
            and not _alive(entry.get("pid"), entry.get("time")):
        return {**entry, "status": LOST}
    return entry


def indexes(root: Path) -> list[Path]:
    """root's own index, else those one level down (ms-swift's default output/<model name>)."""
    from lorakit import runindex

    if (root / runindex.INDEX).is_file():
        return [root]
    try:
        return sorted(d for d in root.iterdir() if (d / runindex.INDEX).is_file())
    except OSError:
        return []


def _cell(entry: dict, name: str) -> str:
    if name == "started":
        return str(entry.get("time") or "-")[:19].replace("T", " ")
    if name == "exit":
        return "-" if entry.get("exit_code") is None else str(entry["exit_code"])
    # an index edited or written by another tool may hold anything: a cell shows it, never fails
    if name in ("run", "checkpoint"):
        value = entry.get("run_dir" if name == "run" else "checkpoint")
        return Path(value).name if isinstance(value, str) and value else "-" if not value else str(value)
    return str(entry.get(name) or "-")


def runs(
    output: Annotated[str, typer.Argument(metavar="[OUTPUT]", show_default=False,
                                          help="The training output dir (default: output).")] = "output",
    as_json: Annotated[bool, typer.Option("--json", help="The launches as a JSON list on stdout.")] = False,
) -> int:
    """List the launches into an output dir, oldest first: when, status (running, finished, failed,
    interrupted; lost when this host's lorakit was killed without a word), exit code, the vN run
    dir ms-swift made, its last checkpoint, and the record that `lorakit train --from` replays.

    \b
    Examples:
      lorakit runs
      lorakit runs output/Qwen3-8B --json
      lorakit train --from output/lorakit-runs/20260101-120000-4242.yaml --resume
    """
    from lorakit import runindex

    if output == "":  # Path('') is '.': `lorakit runs "$OUT"` with OUT unset listed the cwd
        raise LorakitError(f"runs {output!r}: an empty path would be taken as the current directory",
                           hint="give the output dir a `lorakit train` wrote to; for the current directory pass .")
    root = Path(output).expanduser()
    if not root.is_dir():
        what = "a file, not a directory" if root.exists() else "no such directory"
        hint = "give the output dir a `lorakit train` wrote to"
        if root.name == runindex.INDEX:
            hint = f"give the dir that holds it: lorakit runs {root.parent}"
        raise LorakitError(f"runs {output}: {what}", hint=hint)
    found = indexes(root)
    if not found:
        raise LorakitError(f"runs {output}: no lorakit launches recorded here (no {runindex.INDEX})",
                           hint="lorakit train writes it when it launches; `lorakit checkpoints DIR` lists "
                                "checkpoints whoever made them")
    entries = []
    for d in found:
        launches, skipped = runindex.read_all(d)
        entries += [_settled(e) for e in launches]
        for number, why in skipped[:SKIPS_SHOWN]:
            report.note(f"{d.resolve() / runindex.INDEX} line {number}: {why}")
        if len(skipped) > SKIPS_SHOWN:  # a binary file as the index: one note per 'line' was thousands
            report.note(f"{d.resolve() / runindex.INDEX}: {len(skipped) - SKIPS_SHOWN} more lines skipped")
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return 0
    rows = [list(COLUMNS)] + [[_cell(e, n) for n in COLUMNS] for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for d in found:
        report.note(f"index: {d.resolve() / runindex.INDEX}")
    return 0
