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


def print_findings(findings: Iterable[Finding]) -> None:
    findings = list(findings)
    if not findings:
        return
    if sys.stderr.isatty():
        from rich.table import Table

        table = Table(show_lines=False)
        for column in ("level", "code", "where", "message", "hint"):
            table.add_column(column)
        for f in findings:
            where = f.key + (f"\n{f.file}" if f.file else "")
            table.add_row(f.level, f.code, where, f.message, f.hint)
        _console().print(table)
        return
    for f in findings:
        print(plain_line(f), file=sys.stderr)


def note(text: str) -> None:
    """A line for the human, never for stdout (stdout is the command, pasteable)."""
    print(f"lorakit: {text}", file=sys.stderr)
