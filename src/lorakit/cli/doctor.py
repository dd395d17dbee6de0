"""`lorakit doctor [--smoke]`: can lorakit launch ms-swift here?"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from lorakit.errors import EXIT_ENV

MARK = {True: "✓", False: "✗", None: "-"}


def print_rows(rows) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table()
        for column in ("", "what", "found", "fix"):
            table.add_column(column)
        for row in rows:
            table.add_row(MARK[row.ok], row.what, row.found, row.fix)
        Console(markup=False, highlight=False).print(table)
        return
    for row in rows:
        typer.echo(f"{MARK[row.ok]} {row.what:<22} {row.found}" + (f"  -> {row.fix}" if row.fix else ""))


def doctor(
    smoke: Annotated[bool, typer.Option("--smoke", help=(
        "Also run a real tiny train, merge and forward pass here (under swift's python); exit 1 if a step fails."
    ))] = False,
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Where outputs will go (disk check).")] = Path("output"),
) -> int:
    """What lorakit finds here: swift, versions, GPUs, disk. Exit 1 if it cannot launch ms-swift.

    \b
    Examples:
      lorakit doctor
      lorakit doctor --smoke
    """
    # heavy: imported only by this command, so other commands' dry-runs do not pay for it
    from lorakit import doctor as diagnosis
    rows = diagnosis.diagnose(os.environ, output_dir)
    print_rows(rows)
    if not diagnosis.launchable(rows):
        typer.echo("lorakit cannot launch ms-swift here: fix the ✗ rows", err=True)
        return EXIT_ENV
    if smoke:
        from lorakit import smoke as smoke_run

        # torch is needed there, not here: the smoke builds and loads models under swift's python
        python = diagnosis.swift_python(os.environ)[1]
        return smoke_run.run(say=lambda text: typer.echo(text, err=True), python=python)
    return 0
