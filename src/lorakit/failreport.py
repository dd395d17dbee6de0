"""What lorakit prints when ms-swift fails: the exit code, the failing rank's traceback and the
last lines of the output (progress.Watch keeps them; Watch.report prints this)."""

from __future__ import annotations

import re
import signal
from typing import List, Optional, Sequence

TAIL = 20  # of the lines kept, the report prints the last TAIL
_RANK = re.compile(r"^\[(?:default)?rank(\d+)\]:\s?")


def _split_rank(line: str) -> tuple:
    m = _RANK.match(line)
    return (int(m.group(1)), line[m.end():]) if m else (None, line)


def _root_cause(lines: Sequence[str]) -> Optional[int]:
    """The rank torchrun names under 'Root Cause (first observed failure)', if it printed one."""
    for i, line in enumerate(lines):
        if "Root Cause" in line:
            for later in lines[i + 1:i + 8]:
                m = re.match(r"\s*rank\s*:\s*(\d+)", later)
                if m:
                    return int(m.group(1))
    return None


def _tracebacks(lines: Sequence[str]) -> List[tuple]:
    """(rank or None, first, last index) of each Python traceback, torchrun's own left out."""
    found, i = [], 0
    while i < len(lines):
        rank, body = _split_rank(lines[i])
        if body.startswith("Traceback (most recent call last):"):
            j = i + 1  # frames are indented; the first line that is not is the exception
            while j < len(lines) - 1 and _split_rank(lines[j])[1][:1] in (" ", "\t") and j - i < 100:
                j += 1
            if not any("torch/distributed/run.py" in x or "ChildFailedError" in x for x in lines[i:j + 1]):
                found.append((rank, i, j))
            i = j
        i += 1
    return found


def failure_report(lines: Sequence[str], rc: int, tail: int = TAIL) -> List[str]:
    """The exit code, the failing rank's traceback (unless the tail shows it), the last lines.

    ms-swift's ranks share one stdout/stderr, unprefixed by default, so "the failing rank's
    output" is found the way a person would: torchrun's report names the root-cause rank; its
    traceback is the one with that rank's `[rankN]:` prefix if there are prefixes, else the
    first traceback printed (torchrun's root cause is the first failure it observed).
    """
    out = [f"swift exited with code {rc}" + (f" (128+{_signal_name(rc - 128)})" if rc > 128 else "")]
    root, blocks = _root_cause(lines), _tracebacks(lines)
    mine = [b for b in blocks if b[0] == root and root is not None]
    first = len(lines) - min(tail, len(lines))
    if mine or blocks:
        _, i, j = (mine or blocks)[0]
        if j < first:  # not already among the last lines
            if root is None:
                out.append("the first traceback in the output:")
            else:
                which = "its traceback" if mine else "the first traceback in the output"
                out.append(f"rank {root} failed first (torchrun's root cause); {which}:")
            out += ["  " + x for x in lines[max(i, j - 29):j + 1]]
    if lines:
        out.append(f"last {len(lines) - first} lines of the output:")
        out += ["  " + x for x in lines[first:]]
    return out


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"
