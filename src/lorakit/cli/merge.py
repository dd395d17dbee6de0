"""`lorakit merge`: a LoRA checkpoint -> `swift export --merge_lora true` into a new dir."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml

from lorakit import checkpoints, mergeguard, mergepick, preflight, record, report
from lorakit.cli import common as c
from lorakit.cli.run import check_or_exit, emit, finish
from lorakit.errors import EXIT_USER, LorakitError
from lorakit.job import Job
from lorakit.render import render, shell_text

EXAMPLES = """
Examples:

  lorakit merge --adapters output

  lorakit merge --adapters output/v0-20260101-120000 --pick best --dry-run

  lorakit merge --adapters output/v0-20260101-120000/checkpoint-100 --output-dir merged --force
"""

# No path in it: a comment line is pasteable only while nothing in it can end the line.
EXISTS_COMMENT = (
    "# The --output_dir below exists, and ms-swift refuses to write into an existing dir: move it\n"
    "# away first (lorakit merge --force, without --dry-run, replaces it only after a successful merge).\n"
)

PickOpt = Annotated[str, typer.Option(
    "--pick", help="From a run or output dir: the newest run's 'last' checkpoint, or its 'best' (lowest loss).")]


def merge(
    adapters: Annotated[str, typer.Option(
        help="A checkpoint dir (holding adapter_config.json), a run dir (vN-...) or a training output dir.")],
    pick: PickOpt = "last",
    model: Annotated[Optional[str], typer.Option(
        help="Base model to merge into. Default: the one the checkpoint was trained on (its args.json).")] = None,
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", help="Default: <checkpoint>-merged, as ms-swift does.")] = None,
    force: Annotated[bool, typer.Option("--force", help=(
        "Replace an earlier merged model (or an empty dir) at the output dir, only after a successful merge."))] = False,
    preset: Annotated[str, typer.Option("--preset", "-p", help="An export preset (built-in: merge).")] = "merge",
    set_: c.SetOpt = None,
    swift_version: c.SwiftVersionOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and print the command; launch nothing.")] = False,
    strict: c.StrictOpt = False,
    grace: c.GraceOpt = 30.0,
) -> int:
    """Merge a trained LoRA adapter into its base model with `swift export`."""
    chosen, reason, skipped = mergepick.pick(mergepick.require_path(adapters, "--adapters"), pick)
    checkpoint = chosen.path  # resolved checkpoint-N, never the last-checkpoint link (moves on every save)
    for line in skipped:
        report.note(line)
    report.note(f"picked {checkpoint}: {reason}")
    opts = c.JobOptions(preset, model=model, sets=set_ or [], swift_version=swift_version)
    base = _base(_export_job(opts, checkpoint), chosen)
    target = mergeguard.output_for(checkpoint, output_dir)
    plan, warnings = _preflight(base, checkpoint, target, force)
    # --dry-run prints what a user may paste: the final dir, never the temporary one (the next
    # --force removes that as its own leftover).
    write_to = plan.target if dry_run else plan.write_to
    job = _export_job(opts, checkpoint, (str(write_to), "--output-dir" if output_dir else "default"))
    report.note(f"merging into {base.model} (from {base.source}) -> {target}; rendering for {job.swift_source}")
    if plan.replacing and not dry_run:
        report.note(f"{target} exists: merging into {plan.write_to}, swapped in only after success (--force)")
    elif plan.replacing:
        report.note(f"{target} exists: without --dry-run, --force merges into {plan.write_to} and swaps it "
                    "in only after success; the command below writes to the final dir, so move it away first")
    report.print_findings(warnings)
    check_or_exit(job, strict, here=not dry_run)
    if strict and warnings:
        report.note("not launching: warnings (--strict)")
        return EXIT_USER
    if dry_run:
        return emit((EXISTS_COMMENT if plan.replacing else "") + shell_text(render(job, os.environ)))
    code = mergeguard.run_guarded(plan, lambda: finish(job, dry=False, grace=grace))
    if code == 0:
        # ms-swift refuses an existing output dir, so the record can only follow a success
        _write_record(target, job, base)
        _print_success(target)
    return code


def _write_record(target: Path, job: Job, base: preflight.Base) -> Path:
    """MERGED/lorakit-run.yaml for the model where it ended up: under --force ms-swift wrote to a
    temporary sibling, which the record must not name. The base model goes in too: without
    --model ms-swift took it from the checkpoint's args.json, so the command does not say it."""
    final = replace(job, args={**job.args, "output_dir": str(target)})
    path = record.write_merge_record(target, final, render(final, os.environ))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["base_model"] = {"model": base.model, "source": base.source}
    return record.write(path, data)


def _export_job(opts: c.JobOptions, checkpoint: Path, output: Optional[tuple] = None) -> Job:
    # Absolute paths: ms-swift takes a relative path that does not exist for a hub model id
    # and fails ~30 s later with a network error.
    extra = [("args.adapters", [str(checkpoint)], "--adapters")]
    if output is not None:
        extra.append(("args.output_dir", *output))
    job = c.build_with(opts, extra)
    if job.command != "export":
        raise LorakitError(
            f"preset {job.preset!r} runs `swift {job.command}`, not `swift export`",
            hint="use the built-in 'merge' preset or one that extends it",
        )
    mergeguard.refuse_exist_ok(job.args)
    return job


def _base(job: Job, chosen: checkpoints.Checkpoint) -> preflight.Base:
    """--model (or the preset's model) wins, as in ms-swift; else what the checkpoint names."""
    if job.args.get("model"):
        return preflight.resolve_base(str(job.args["model"]), job.source_of("args.model") or "--model")
    info = checkpoints.base_model_of(chosen)
    return preflight.resolve_base(info.get("model"), info.get("source") or f"{chosen.path}: no args.json")


def _preflight(base: preflight.Base, checkpoint: Path, target: Path, force: bool) -> tuple:
    """Before anything starts (--dry-run too): exit 2 for a GPTQ/AWQ base or an output that must
    not be replaced, 1 for a disk too small; the plan and any warnings otherwise."""
    protect = {checkpoint: "the adapter checkpoint"}
    if base.local:
        protect[base.local] = "the base model"
    warnings = preflight.check_quantization(base)
    plan = mergeguard.plan_output(target, force=force, protect=protect)
    disk_note = preflight.check_disk(base, plan.write_to)
    if disk_note:
        report.note(disk_note)
    return plan, warnings


def _print_success(target: Path) -> None:
    """Where the model is (stderr), and Python that loads it (stdout, pasteable)."""
    report.note(f"merged model saved in {target}; load it with transformers:")
    path = repr(str(target))  # a Python string literal, whatever the path holds
    typer.echo("from transformers import AutoModelForCausalLM, AutoTokenizer")
    typer.echo(f"model = AutoModelForCausalLM.from_pretrained({path}, dtype='auto')")
    typer.echo(f"tokenizer = AutoTokenizer.from_pretrained({path})")


merge.__doc__ = (merge.__doc__ or "") + "\n" + EXAMPLES.replace("\n\n", "\n\n\b\n")
