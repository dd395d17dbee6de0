"""`lorakit checkpoints DIR`: the runs and adapter checkpoints under DIR, and which merge would pick."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Annotated, Optional

import typer

from lorakit import mergepick, report
from lorakit.errors import LorakitError

COLUMNS = ("run", "checkpoint", "step", "loss", "eval_loss", "time", "size", "marks")
RIGHT = {"step", "loss", "eval_loss", "size"}


def _loss(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4g}"


def _cell(row: dict, name: str) -> str:
    from lorakit.preflight import human
    if name == "marks":
        best = f"best ({row['best_by']})" if row["best"] else ""
        incomplete = f"incomplete: {row['incomplete']}" if row["incomplete"] else ""
        return ",".join(m for m in ("last" if row["last"] else "", best, incomplete) if m)
    if name == "time":  # 'YYYY-MM-DDTHH:MM:SS+hh:mm' -> 'YYYY-MM-DD HH:MM:SS': this machine's zone anyway
        return row["time"][:19].replace("T", " ")
    if name == "size":
        return human(row["size"])
    return _loss(row[name]) if name in ("loss", "eval_loss") else str(row[name])


def _chain_name(path: str) -> str:
    """RUN/checkpoint-N as 'vN-.../checkpoint-N', the way the table names it; else as saved."""
    parts = path.rstrip("/").rsplit("/", 2)
    return "/".join(parts[-2:]) if len(parts) >= 2 else path


def _plain(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    lines = []
    for r in rows:
        cells = [c.rjust(w) if name in RIGHT else c.ljust(w) for c, w, name in zip(r, widths, columns)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _print_table(rows: list[dict]) -> None:
    # eval_loss only where some run evaluated: without a val set ms-swift logs none
    columns = [n for n in COLUMNS if n != "eval_loss" or any(r["eval_loss"] is not None for r in rows)]
    cells = [[_cell(r, n) for n in columns] for r in rows]
    if not sys.stdout.isatty():
        typer.echo(_plain(columns, [columns, *cells]))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in columns:  # names must stay whole; a narrow terminal wraps the time after its date
        table.add_column(name, justify="right" if name in RIGHT else "left",
                         no_wrap=name in ("run", "checkpoint"), min_width=10 if name == "time" else None,
                         overflow="fold" if name == "marks" else "ellipsis")  # a reason is never cut
    for r in cells:
        table.add_row(*r)
    Console(markup=False, highlight=False).print(table)  # run names are user data: no markup


def checkpoints(
    directory: Annotated[str, typer.Argument(
        metavar="DIR", show_default=False, help="A training output dir, a run dir (vN-...) or a checkpoint dir.")],
    as_json: Annotated[bool, typer.Option("--json", help="The rows as a JSON list on stdout.")] = False,
) -> int:
    """List runs and adapter checkpoints: step, loss, time, size, which is last and which is best.

    'last' and 'best' are per run, among its complete checkpoints; 'best' says what it was ranked
    by, and an incomplete checkpoint (a save cut short) says what is wrong with it. A run that
    resumed another's checkpoint (train --resume) says which, after the table. A loss is shown
    only where one was logged at that very step. `lorakit merge --adapters DIR` takes the newest
    run's last complete checkpoint (or its best with --pick best).

    \b
    Examples:
      lorakit checkpoints output
      lorakit checkpoints output/v1-20260101-120000 --json
    """
    # heavy: imported only by this command, so other commands' dry-runs do not pay for it
    from lorakit import checkpoints as ck
    runs = ck.scan(mergepick.require_path(directory, "DIR"))
    rows = ck.checkpoints_table(runs)
    if not rows:
        mergepick.pick(directory)  # raises the error that says what is there instead
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return 0
    _print_table(rows)
    for run in reversed(ck.newest_first(runs)):
        if run.resumed_from:  # the resume chain: each run's start, oldest first
            report.note(f"{run.name} resumed from {_chain_name(run.resumed_from)}")
    merge = f"`lorakit merge --adapters {shlex.quote(directory)}`"
    try:
        chosen, reason, _ = mergepick.pick(directory)
    except LorakitError as exc:  # every checkpoint incomplete: the table above says why, each
        report.note(f"{merge} would refuse: {exc.message.splitlines()[0]}")
        return 0
    report.note(f"{merge} would pick {chosen.path}: {reason}")
    return 0
