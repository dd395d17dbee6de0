"""One record per launch, never overwritten, and an append-only index of the launches of an
output dir: what `lorakit runs` lists and what `train --from` replays.

    OUTPUT/lorakit-runs.jsonl                    the index: one JSON line when a launch starts
                                                 (status running) and one when it ends
    OUTPUT/lorakit-runs/20260101-120000-4242.yaml   that launch's record (node R: ...-nodeR.yaml)
    OUTPUT/vN-YYYYMMDD-HHMMSS/lorakit-run.yaml   a copy, once the launch knows which vN dir
                                                 ms-swift made for it (the run dir travels whole)
    OUTPUT/lorakit-run.yaml                      the newest launch's record (node R:
                                                 lorakit-run.nodeR.yaml), as before

Why: each ms-swift launch makes a new vN dir (utils/utils.py `add_version_to_work_dir`), and
before this lorakit kept one OUTPUT/lorakit-run.yaml, so a resume overwrote the record of the
job it resumed. The vN dir is named by ms-swift once it runs (its timestamp, its `_get_version`),
so the record is written before the start under a name of lorakit's, and the run dir is found
afterwards: the vN dir that was not there before the launch.

Stdlib only; the index is appended with one write per line (O_APPEND), so nodes or launches
sharing an output dir do not interleave inside a line. Paths are absolute.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

INDEX = "lorakit-runs.jsonl"
RECORDS = "lorakit-runs"
RUNNING, FINISHED, FAILED, INTERRUPTED = "running", "finished", "failed", "interrupted"
INTERRUPTS = tuple(int(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
_RUN_RE = re.compile(r"^v([0-9]+)-[0-9]{8}-[0-9]{6}")


def status_of(rc: int, caught: Iterable[int] = ()) -> str:
    """finished (0); interrupted when lorakit forwarded a Ctrl-C/SIGTERM/SIGHUP, or the run died
    of one (a scheduler's signal may reach the ranks, not lorakit); failed otherwise."""
    if rc == 0:
        return FINISHED
    if list(caught) or (rc > 128 and rc - 128 in INTERRUPTS):
        return INTERRUPTED
    return FAILED


def run_dirs(output: Path) -> set[str]:
    try:
        return {p.name for p in Path(output).iterdir() if _RUN_RE.match(p.name) and p.is_dir()}
    except OSError:
        return set()


def _differences(run_dir: Path, argv: list[str]) -> int:
    """How many of argv's one-value flags the run's args.json (ms-swift's save_args) holds
    otherwise; output_dir aside (ms-swift adds the vN to it)."""
    from lorakit.trainlog import read_json  # a FIFO args.json would block a plain read forever

    saved = read_json(run_dir / "args.json")
    if not isinstance(saved, dict):
        return len(argv)  # nothing to tell by: last
    out = 0
    for i, word in enumerate(argv):
        if not word.startswith("--"):
            continue
        key, eq, value = word[2:].partition("=")  # an attached `--system=-x` (render.flag_items)
        if not eq:
            if i + 1 == len(argv) or argv[i + 1].startswith("--"):
                continue  # a switch (or the last word): no value to compare
            value = argv[i + 1]
        if key == "output_dir":
            continue
        if key in saved and not isinstance(saved[key], (list, dict)) and str(saved[key]) != value:
            try:
                out += float(saved[key]) != float(value)
            except (TypeError, ValueError):
                out += 1
    return out


def new_run_dir(output: Path, before: set[str], argv: Optional[list[str]] = None) -> Optional[Path]:
    """The vN dir that appeared during the launch. Several did when launches into one output
    dir overlap: the one whose args.json holds this launch's flags (argv), when exactly one fits
    best; otherwise None rather than another launch's dir (its record would go there)."""
    fresh = sorted(run_dirs(output) - before, key=lambda n: int(_RUN_RE.match(n).group(1)))
    if len(fresh) <= 1 or argv is None:
        return Path(output) / fresh[-1] if fresh else None
    scored = sorted((_differences(Path(output) / n, argv), n) for n in fresh)
    if scored[0][0] == scored[1][0]:
        return None
    return Path(output) / scored[0][1]


def _append(index: Path, entry: dict[str, Any]) -> None:
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    if index.is_fifo():  # opening it for writing would block until someone reads it
        raise OSError(errno.ENXIO, f"{index.name} is a FIFO (named pipe), not a file to append to")
    fd = os.open(index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        done = 0
        while done < len(line):  # write(2) may take less than it is given (a signal, a full disk)
            done += os.write(fd, line[done:])
    finally:
        os.close(fd)


def _exclusive(folder: Path, stem: str, text: str) -> Path:
    """Write text under a new name in folder: never replaces a file (os.link fails on one)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{stem}.{os.getpid()}.tmp"
    tmp.write_text(text, encoding="utf-8")
    try:
        for n in range(1000):
            path = folder / (f"{stem}.yaml" if n == 0 else f"{stem}-{n}.yaml")
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                continue
        raise FileExistsError(f"{folder}: no free record name for {stem}")
    finally:
        tmp.unlink(missing_ok=True)  # a write that failed may have made nothing: its error, not this one


@dataclass
class Launch:
    """One launch's entry in its output dir's index."""

    output: Path
    id: str
    record: Path
    before: set[str] = field(default_factory=set)

    @property
    def index(self) -> Path:
        return self.output / INDEX


def start(output: Path, text: str, *, argv: list[str], env: dict[str, str], node_rank: Any,
          time: str, host: str) -> Launch:
    """Before ms-swift starts: the launch's own record, and a 'running' line in the index."""
    output = Path(output).resolve()
    stamp = re.sub(r"[^0-9]", "", time[:19])
    stamp = f"{stamp[:8]}-{stamp[8:14]}-{os.getpid()}" + (f"-node{node_rank}" if node_rank else "")
    record = _exclusive(output / RECORDS, stamp, text)
    launch = Launch(output, record.stem, record, run_dirs(output))
    command = shlex.join([*(f"{k}={v}" for k, v in env.items()), *argv])
    try:
        _append(launch.index, {"id": launch.id, "time": time, "status": RUNNING, "record": str(record),
                               "command": command, "host": host, "pid": os.getpid(),
                               "node_rank": node_rank or 0, "output_dir": str(output)})
    except OSError:
        record.unlink()  # nothing launches: a record no index line names would only mislead
        raise
    return launch


def finish(launch: Launch, *, rc: int, caught: Iterable[int], time: str, run_dir: Optional[Path],
           checkpoint: Optional[Path] = None, record_name: str = "lorakit-run.yaml") -> dict[str, Any]:
    """After the child exited: the record copied into its run dir (new_run_dir; the output dir
    itself under --add_version false, where no copy is made), the end line."""
    if run_dir is not None and Path(run_dir) != launch.output:
        copy = run_dir / record_name
        if not copy.exists():  # a run dir belongs to one launch: never replace what is there
            try:
                copy.write_text(launch.record.read_text(encoding="utf-8"), encoding="utf-8")
            except OSError:
                pass
    entry = {"id": launch.id, "time": time, "status": status_of(rc, caught), "exit_code": rc,
             "run_dir": str(run_dir) if run_dir else None, "checkpoint": str(checkpoint) if checkpoint else None}
    try:
        _append(launch.index, entry)
    except OSError:
        pass  # the end line is a courtesy: a full disk must not hide the child's exit code
    return entry


def _no_constant(name: str) -> Any:
    # NaN / Infinity parse in Python but are not JSON: `lorakit runs --json` would print them
    raise ValueError(name)


def _entry(raw: bytes) -> tuple[Optional[dict[str, Any]], Optional[str]]:
    """One index line: (entry, None); (None, why it was skipped); (entry, what was lost)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8: skipped"
    try:
        entry = json.loads(line, parse_constant=_no_constant)
    except RecursionError:  # nested past Python's stack: no entry lorakit wrote
        return None, "not a launch entry (nested too deep): skipped"
    except ValueError:
        # a line cut short (full disk, a kill) and the next launch's line appended to it: the
        # whole entry after the cut still counts (every entry's JSON starts with its id)
        cut = line.rfind('{"id": ', 1)
        try:
            entry = json.loads(line[cut:], parse_constant=_no_constant) if cut > 0 else None
        except (ValueError, RecursionError):
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            return None, "not JSON (cut short?): skipped"
        return entry, "cut short, and the next entry written onto it: that entry read, the rest skipped"
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        return None, "not a launch entry (no id): skipped"
    return entry, None


def read_all(output: Path) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """The launches of an output dir, oldest first (each id's lines merged, the last one
    winning), and the (line number, why) of each line skipped: one bad line hides no other."""
    try:
        lines = (Path(output) / INDEX).read_bytes().splitlines()
    except OSError:
        return [], []
    runs: dict[str, dict[str, Any]] = {}
    skipped = []
    for number, raw in enumerate(lines, 1):
        entry, why = _entry(raw)
        if why is not None and raw.strip():
            skipped.append((number, why))
        if entry is None:
            continue
        if entry["id"] not in runs:
            runs[entry["id"]] = dict(entry)
        else:  # the end line: its time is when the launch ended
            runs[entry["id"]].update({k: v for k, v in entry.items() if k != "time"}, ended=entry.get("time"))
    return list(runs.values()), skipped


def read(output: Path) -> list[dict[str, Any]]:
    return read_all(output)[0]


def record_of_run_dir(run_dir: Path) -> Optional[Path]:
    """`train --from RUN_DIR`: its lorakit-run.yaml, else the index entry that names it."""
    run_dir = Path(run_dir).resolve()
    if (run_dir / "lorakit-run.yaml").is_file():
        return run_dir / "lorakit-run.yaml"
    for entry in read(run_dir.parent):
        if entry.get("run_dir") == str(run_dir) and entry.get("record"):
            return Path(entry["record"])
    return None
