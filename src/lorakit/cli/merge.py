"""`lorakit merge`: a LoRA checkpoint -> `swift export --merge_lora true` into a new dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from lorakit import mergeguard, report
from lorakit.cli import common as c
from lorakit.cli.run import check_or_exit, finish
from lorakit.errors import LorakitError

EXAMPLES = """
Examples:

  lorakit merge --adapters output/v0-20260101-120000/checkpoint-100

  lorakit merge --adapters output --dry-run

  lorakit merge --adapters ckpt --output-dir merged --force
"""


def merge(
    adapters: Annotated[str, typer.Option(help="A checkpoint dir (holding adapter_config.json).")],
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", help="Default: <checkpoint>-merged, as ms-swift does.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output dir, only after a successful merge.")] = False,
    preset: Annotated[str, typer.Option("--preset", "-p", help="An export preset (built-in: merge).")] = "merge",
    set_: c.SetOpt = None,
    swift_version: c.SwiftVersionOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command; launch nothing.")] = False,
    strict: c.StrictOpt = False,
    grace: Annotated[float, typer.Option(help="Seconds between forwarding Ctrl-C/SIGTERM and SIGKILL.")] = 30.0,
) -> int:
    """Merge a trained LoRA adapter into its base model with `swift export`."""
    checkpoint = mergeguard.checkpoint_dir(adapters)
    target = mergeguard.output_for(checkpoint, output_dir)
    plan = mergeguard.plan_output(target, force=force)
    # Absolute paths: ms-swift takes a relative path that does not exist for a hub model id
    # and fails ~30 s later with a network error.
    opts = c.JobOptions(preset, sets=set_ or [], swift_version=swift_version)
    extra = [("args.adapters", [str(checkpoint)], "--adapters"),
             ("args.output_dir", str(plan.write_to), "--output-dir" if output_dir else "default")]
    job = c.build_with(opts, extra)
    if job.command != "export":
        raise LorakitError(
            f"preset {job.preset!r} runs `swift {job.command}`, not `swift export`",
            hint="use the built-in 'merge' preset or one that extends it",
        )
    report.note(f"merging {checkpoint} -> {target}; rendering for {job.swift_source}")
    if plan.write_to != target:
        report.note(f"{target} exists: merging into {plan.write_to}, swapped in only after success (--force)")
    check_or_exit(job, strict)
    if dry_run:
        return finish(job, dry=True, grace=grace)
    return mergeguard.run_guarded(plan, lambda: finish(job, dry=False, grace=grace))


merge.__doc__ = (merge.__doc__ or "") + "\n" + EXAMPLES.replace("\n\n", "\n\n\b\n")
