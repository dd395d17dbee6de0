"""`lorakit validate`: the checks alone, exit 0 (launchable) or 2."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from lorakit import report
from lorakit.checks import run_checks
from lorakit.cli import common as c
from lorakit.errors import EXIT_USER, LorakitError
from lorakit.findings import ERROR, Finding
from lorakit.fixups import apply_fixups


STARTED = False  # set once validate itself runs: a usage error before that gets a JSON answer too


def answer_refused(words: list[str], message: str, hint: str) -> None:
    """`validate --json` answers even a refused command line as data (exit 2 all the same)."""
    preset = next((words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-p", "--preset")), None)
    error = Finding(ERROR, "usage.invalid", message, hint=hint)
    typer.echo(json.dumps({"ok": False, "preset": preset, "findings": [error.as_dict()]}, indent=2))


@c.with_job_args
def validate(
    ctx: typer.Context,
    preset: c.PresetOpt,
    shared: c.JobArgs,
    strict: c.StrictOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Findings as JSON on stdout.")] = False,
    gpu_mem: Annotated[Optional[float], typer.Option("--gpu-mem", help="Check the memory plan against GPUs of this many GiB (default: the ones nvidia-smi shows).")] = None,
) -> int:
    """Check a preset (and options) without launching; flags after `--` are checked too.

    \b
    Examples:
      lorakit validate -p zero2 --gpus 0,1,2
      lorakit validate -p my.yaml --json
      lorakit validate -p zero2 --gpu-mem 24
    """
    global STARTED
    STARTED = True
    try:
        job = apply_fixups(c.job_from_options(shared.options(preset, ctx.args)))
    except LorakitError as exc:
        if not as_json:
            raise
        # a preset that cannot even be loaded is still an answer other tools should get as data
        error = Finding(ERROR, "preset.invalid", exc.message, hint=exc.hint or "")
        typer.echo(json.dumps({"ok": False, "preset": preset, "findings": [error.as_dict()]}, indent=2))
        return exc.code
    findings = run_checks(job)
    if gpu_mem is not None:  # the plan against GPUs not present here, instead of nvidia-smi's
        from lorakit import plan
        from lorakit.checks import memory
        from lorakit.checks.facts import Facts
        from lorakit.findings import sort_findings

        findings = sort_findings([f for f in findings if f.code != "plan.does_not_fit"]
                                 + memory.check_memory(job, Facts(), *plan.gpus_given(job, gpu_mem)))
    failed = c.blocking(findings, strict)
    if as_json:
        payload = {"ok": not failed, "preset": job.preset, "swift_major": job.swift_major,
                   "findings": [f.as_dict() for f in findings]}
        typer.echo(json.dumps(payload, indent=2))
    else:
        report.print_findings(findings)
        report.note(("not launchable" if failed else "ok") + f": {c.layout_note(job)}")
    return EXIT_USER if failed else 0
