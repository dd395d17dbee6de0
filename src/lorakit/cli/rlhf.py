"""`lorakit rlhf`: preset -> checks -> `swift rlhf` (DPO, KTO, ORPO, SimPO, GRPO...).

--adapters starts from an SFT adapter (a checkpoint, run dir or output root, as `lorakit merge`):
the base model comes from its args.json, and DPO/KTO/GRPO get it as --ref_adapters too, as
ms-swift's docs say for LoRA on top of SFT (arguments/rlhf_args.py, ref_adapters). A GRPO preset
with vllm_mode server and rollout_gpus is one paired launch (lorakit.paired).
"""

from __future__ import annotations

from dataclasses import replace
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from lorakit import adapterpick, report
from lorakit.checks.rlhf import REF_ADAPTER_TYPES, rlhf_type
from lorakit.cli import common as c
from lorakit.cli.run import train_tail
from lorakit.errors import LorakitError
from lorakit.exports import FORMATS
from lorakit.findings import INFO, Finding
from lorakit.fixups import apply_fixups
from lorakit.job import Job

EXAMPLES = """
Examples:

  lorakit rlhf -p dpo --adapters output --dataset prefs.jsonl --dry-run

  lorakit rlhf -p kto --model Qwen/Qwen3-8B --dataset kto.jsonl

  lorakit rlhf -p grpo_colocate --dry-run

  lorakit rlhf -p grpo_server --dry-run     (prints swift rollout, then swift rlhf)

  lorakit rlhf -p my_dpo.yaml -- --max_steps 100 --beta 0.2

  lorakit rlhf --from dpo_out/lorakit-run.yaml     (the recorded run, exactly)
"""

AdaptersOpt = Annotated[Optional[str], typer.Option(
    "--adapters", help="SFT adapter to start from: a checkpoint dir, a run dir or a training output dir (its newest run's last checkpoint).")]
PickOpt = Annotated[Optional[str], typer.Option("--pick", help="From a run or output dir: 'last' (default) or 'best' checkpoint.")]
FormatOpt = Annotated[Optional[str], typer.Option("--format", help="With --dry-run: " + " | ".join(FORMATS) + " (default text).")]
LogOpt = Annotated[Optional[str], typer.Option("--log", metavar="FILE", help="Write ms-swift's output to FILE instead of the terminal.")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="On a terminal: a progress bar fed by ms-swift's logs.")]
FromOpt = Annotated[Optional[Path], typer.Option("--from", help="Relaunch exactly the job of an rlhf run record: a file (OUTPUT/lorakit-runs/*.yaml, OUTPUT/lorakit-run.yaml) or a run dir; takes nothing else but --dry-run.")]
PresetOpt = Annotated[Optional[str], typer.Option("--preset", "-p", help="Built-in name (dpo, kto, orpo, simpo, grpo_colocate, grpo_server) or a YAML file.")]
ResumeOpt = Annotated[Optional[str], typer.Option(
    "--resume", metavar="auto|if-any|PATH",
    help="Resume from the newest complete checkpoint of the output dir's runs (auto refuses when there is none, "
         "if-any then starts fresh), or one under PATH; as lorakit train --resume, but the value is required.")]


def _wait(value: float) -> float:
    """paired._wait_healthy's deadline: nan never passes it (lorakit polled a dead-silent rollout
    forever), and 0 or less gives up before a model could load."""
    if c.as_finite_float(value) is None or not value > 0:
        raise typer.BadParameter(f"{value!r} is not a finite number of seconds above 0; e.g. --rollout-wait 600 (the default)")
    return value


WaitOpt = Annotated[float, typer.Option("--rollout-wait", callback=_wait,
                                        help="GRPO server mode: seconds to wait for swift rollout's /health.")]


def sft_fixups(job: Job) -> Job:
    """train's fixups (global_batch_size, use_reentrant under DDP, absolute paths): RLHFArguments
    inherits SftArguments, so they hold for `swift rlhf` as they are."""
    return replace(apply_fixups(replace(job, command="sft")), command="rlhf")


def _ref_adapters(job: Job, adapter: adapterpick.Adapter) -> Job:
    """DPO/KTO/GRPO with LoRA on an SFT adapter: the reference model is base + that adapter."""
    # set anywhere, null included (which removes it: the bare base model is the reference)
    if rlhf_type(job) not in REF_ADAPTER_TYPES or "args.ref_adapters" in job.sources or \
            str(job.args.get("tuner_type", "lora")) == "full":
        return job
    note = Finding(INFO, "rlhf.ref_adapters.added",
                   f"ref_adapters {adapter.rendered}: the reference model is the SFT adapter {rlhf_type(job)} starts from",
                   hint="ms-swift's docs: with LoRA on SFT weights, set --adapters and --ref_adapters to the SFT "
                        "checkpoint; set ref_adapters: null to compare against the bare base model",
                   key="args.ref_adapters", file="--adapters")
    return replace(job, args={**job.args, "ref_adapters": [adapter.rendered]},
                   sources={**job.sources, "args.ref_adapters": "--adapters"},
                   adjustments=(*job.adjustments, note))


def build(preset: str, shared: c.JobArgs, extra_flags: list[str], adapters: Optional[str],
          pick: Optional[str]) -> Job:
    found, extra_flags = adapterpick.take_adapters(extra_flags, [adapters] if adapters is not None else [])
    if len(found) > 1:
        raise LorakitError(f"--adapters {' '.join(found)}: rlhf starts from one SFT adapter",
                           hint="pass one checkpoint (or run/output dir) as --adapters")
    adapters = found[0] if found else None
    opts = shared.options(preset, extra_flags)
    adapterpick.no_set_adapters(opts.sets if adapters is not None else [], "rlhf")
    adapter = adapterpick.pick(adapters, how=pick or "last") if adapters is not None else None
    extra = [("args.adapters", [adapter.rendered], "--adapters")] if adapter is not None else []
    job = c.job_from_options(opts, extra)
    if job.command != "rlhf":
        raise LorakitError(f"preset {job.preset!r} runs `swift {job.command}`, not `swift rlhf`",
                           hint="use a preset with 'command: rlhf' (built-in: dpo, kto, orpo, simpo, "
                                "grpo_colocate, grpo_server)")
    if adapter is not None:
        for line in adapter.skipped:
            report.note(line)
        report.note(f"picked {adapter.rendered}: {adapter.reason}")
        job, _ = adapterpick.with_base(job, adapter)
        job = _ref_adapters(job, adapter)
    return sft_fixups(job)


def replayed(path: Path, dry_run: bool = False) -> tuple[Job, dict]:
    """The job of an rlhf run record, as `train --from` replays an sft one (replay.replay_job):
    refused when its preset no longer renders the recorded command."""
    from lorakit import replay
    from lorakit.render import render

    path = replay.record_path(path)
    job, data = replay.replay_job(path, dry_run=dry_run)
    if job.command != "rlhf":
        raise LorakitError(f"--from {path}: the record is of a `swift {job.command}` run, not `swift rlhf`",
                           hint=f"replay it with lorakit {'train' if job.command == 'sft' else job.command} --from {path}")
    report.note(f"relaunching the job recorded in {path} ({data.get('time')}, {data.get('host')})")
    if data.get("cwd") and Path(str(data["cwd"])) != Path.cwd():
        report.note(f"it ran in {data['cwd']}; relative paths now resolve from {Path.cwd()}")
    replay.check_replay(data, render(job, os.environ), path)
    return job, data


@c.with_job_args
def rlhf(
    ctx: typer.Context,
    preset: PresetOpt = None,
    shared: c.JobArgs = c.JobArgs(),
    adapters: AdaptersOpt = None,
    pick: PickOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command(s); launch nothing.")] = False,
    fmt: FormatOpt = None,
    strict: c.StrictOpt = False,
    grace: c.GraceOpt = 30.0,
    log: LogOpt = None,
    progress: ProgressOpt = True,
    rollout_wait: WaitOpt = 600.0,
    from_: FromOpt = None,
    resume_: ResumeOpt = None,
) -> int:
    """Preference tuning with `swift rlhf` from a preset; flags after `--` go to ms-swift."""
    if pick is not None and adapters is None:
        raise LorakitError("--pick chooses among the checkpoints of --adapters, which is not given",
                           hint="add --adapters RUN_OR_OUTPUT_DIR, or drop --pick")
    if from_ is not None:
        given = [name for name, value in (("--preset", preset), ("--adapters", adapters), ("--pick", pick))
                 if value is not None] + shared.given() + (["-- flags"] if ctx.args else [])
        if given:
            raise LorakitError(f"--from replays the recorded job as it is; it takes no {', '.join(given)}",
                               hint="drop those options, or copy the record's `preset:` section into a preset")
        job, data = replayed(from_, dry_run and fmt != "sbatch")  # sbatch pins this machine's swift
    elif preset is None:
        raise LorakitError("give a preset (--preset/-p NAME or FILE) or an rlhf run record (--from FILE)",
                           hint="built-in: dpo, kto, orpo, simpo, grpo_colocate, grpo_server")
    else:
        job, data = build(preset, shared, list(ctx.args), adapters, pick), {}
    if resume_ is not None:
        # a failed rlhf run's end says how to resume it (lorakit.resume: the same refusals as train's)
        from lorakit import resume

        job = resume.apply(job, resume_, ran_in=str(data["cwd"]) if data.get("cwd") else None)
    report.note(c.layout_note(job))
    if log is not None and dry_run:
        raise LorakitError("--log names where a launch writes ms-swift's output; --dry-run launches nothing",
                           hint="drop --log, or --dry-run")
    from lorakit import paired

    if paired.is_paired(job):
        if log is not None:
            # the paired launch streams both halves to the terminal (the rollout's lines feed its
            # failure report): --log was dropped without a word
            raise LorakitError("--log is not taken by GRPO server mode's paired launch (swift rollout and swift "
                               "rlhf both write to the terminal)",
                               hint="drop --log and redirect instead: lorakit rlhf ... > run.log 2>&1")
        return paired.tail(job, dry=dry_run, fmt=fmt, strict=strict, grace=grace, wait=rollout_wait)
    return train_tail(job, dry=dry_run, fmt=fmt, all_nodes=False, strict=strict, grace=grace,
                      log=log, show_progress=progress)


rlhf.__doc__ = (rlhf.__doc__ or "") + "\n" + EXAMPLES.replace("\n\n", "\n\n\b\n")
