"""Findings and notes to stderr: a Rich table on a TTY, plain lines otherwise.

User data is printed without markup (Rich would swallow '[q_proj]' as a style tag; hatch's
console uses markup=False for the same reason).
"""

from __future__ import annotations

import sys
from typing import Iterable

from lorakit.findings import Finding


def _console():
    from rich.console import Console

    return Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def plain_line(f: Finding) -> str:
    where = f.key + (f" ({f.file})" if f.file else "") if f.key else f.file
    text = f"{f.level}[{f.code}]" + (f" {where}:" if where else "") + f" {f.message}"
    return text + (f"\n  hint: {f.hint}" if f.hint else "")


QUIET = False  # --quiet: information findings are not printed (warnings and errors always are)
_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def print_findings(findings: Iterable[Finding]) -> None:
    """One finding per block, never cut: a table on an 80-column terminal truncated the file and
    the key (`args.target_m…`), the two things a reader needs to find the line to fix."""
    findings = [f for f in findings if not (QUIET and f.level == "info")]
    if not findings:
        return
    if sys.stderr.isatty():
        console = _console()
        for f in findings:
            head, _, rest = plain_line(f).partition(" ")
            console.print(head, style=_STYLE.get(f.level, ""), end=" ")
            console.print(rest)
        return
    for f in findings:
        print(plain_line(f), file=sys.stderr)


def note(text: str) -> None:
    """A line for the human, never for stdout (stdout is the command, pasteable)."""
    print(f"lorakit: {text}", file=sys.stderr)
