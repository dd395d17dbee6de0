"""`lorakit train`: preset -> checks -> `swift sft` (printed in a format, or launched)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from lorakit import report
from lorakit.platforms import PLATFORMS
from lorakit.cli import common as c
from lorakit.cli.run import train_tail
from lorakit.errors import LorakitError
from lorakit.exports import FORMATS
from lorakit.fixups import apply_fixups
from lorakit.render import render

EXAMPLES = """
Examples:

  lorakit train --preset zero2 --dry-run

  lorakit train -p ddp_device_map --model Qwen/Qwen3-8B --dataset data.jsonl

  CUDA_VISIBLE_DEVICES=0,1 lorakit train -p zero2 --set lora_rank=16

  lorakit train -p my.yaml -- --max_steps 100 --attn_impl flash_attn

  lorakit train -p zero2 --set global_batch_size=64 --dry-run --format sh > train.sh

  lorakit train -p my.yaml --set launch.nnodes=2 --dry-run --format sbatch > train.sbatch

  lorakit train -p my.yaml --node-rank 1          (on the second node)

  lorakit train -p my.yaml --on kubeflow          (inside a TrainJob pod)

  lorakit train -p my.yaml --dry-run --all-nodes  (every node's command)

  lorakit train --from output/lorakit-run.yaml

  lorakit train -p my.yaml --resume              (newest complete checkpoint; error if none)

  lorakit train -p my.yaml --resume if-any       (resume if there is one, else start fresh)

  lorakit train -p my.yaml --resume output/v1-20260101-120000/checkpoint-400

  lorakit train --from output/v1-20260101-120000 --resume if-any --node-rank 1
"""

OptionalPresetOpt = Annotated[Optional[str], typer.Option("--preset", "-p", help="Built-in name or a YAML file.")]
FromOpt = Annotated[Optional[Path], typer.Option("--from", help="Relaunch exactly the job of a run record: a file (OUTPUT/lorakit-runs/*.yaml, OUTPUT/lorakit-run.yaml) or a run dir; takes --resume and --node-rank, nothing else.")]
ResumeOpt = Annotated[Optional[str], typer.Option(
    "--resume", metavar="[auto|if-any|PATH]",
    help="Resume from the newest complete checkpoint of the output dir's runs: --resume alone (or "
         "auto) refuses when there is none, --resume if-any then starts fresh; --resume PATH searches "
         "a checkpoint, run dir or output dir (a dir named auto: ./auto).")]
NodeRankOpt = Annotated[Optional[int], typer.Option("--node-rank", help="This node's rank, 0..nnodes-1 (-> NODE_RANK).")]
OnOpt = Annotated[Optional[str], typer.Option("--on", help="Inside a scheduler's job: read its node layout (" + " | ".join(PLATFORMS) + ").")]
FormatOpt = Annotated[Optional[str], typer.Option("--format", help="With --dry-run: " + " | ".join(FORMATS) + " (default text).")]
AllNodesOpt = Annotated[bool, typer.Option("--all-nodes", help="With --dry-run: print every node's command (text or json).")]
LogOpt = Annotated[Optional[str], typer.Option("--log", metavar="FILE", help="Write ms-swift's output to FILE instead of the terminal (which keeps the progress bar, and on failure the last lines).")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="On a terminal: a progress bar fed by ms-swift's logs (step/total, loss, it/s, ETA).")]


def bare_resume(words: list[str]) -> list[str]:
    """`train --resume` with no value (the last word before `--`, or followed by an option) is
    `--resume=auto`: Click has no option whose value may be left out, so the words are spelled
    out before it parses them. train takes no positional words, so a word after --resume that is
    not an option is always its value."""
    if not words or words[0] != "train":
        return words
    cut = words.index("--") if "--" in words else len(words)
    out = list(words)
    for i in range(1, cut):
        if words[i] == "--resume" and (i + 1 >= cut or words[i + 1].startswith("-")):
            out[i] = "--resume=auto"  # resume.AUTO (not imported here: the dry-run path)
    return out


@c.with_job_args
def train(
    ctx: typer.Context,
    preset: OptionalPresetOpt = None,
    shared: c.JobArgs = c.JobArgs(),
    node_rank: NodeRankOpt = None,
    on: OnOpt = None,
    from_: FromOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command; launch nothing.")] = False,
    fmt: FormatOpt = None,
    all_nodes: AllNodesOpt = False,
    strict: c.StrictOpt = False,
    grace: c.GraceOpt = 30.0,
    log: LogOpt = None,
    progress: ProgressOpt = True,
    resume_: ResumeOpt = None,
) -> int:
    """Train with `swift sft` from a preset; flags after `--` go to ms-swift."""
    given = [name for name, value in (("--preset", preset), ("--on", on))
             if value is not None] + shared.given() + (["-- flags"] if ctx.args else [])
    if from_ is not None:
        if given:
            raise LorakitError(f"--from replays the recorded job as it is; it takes no {', '.join(given)}",
                               hint="drop those options, or copy the record's `preset:` section into a preset")
        from lorakit import replay  # only a replay reads records back

        from_ = replay.record_path(from_)
        # an sbatch script pins this machine's swift on PATH: across majors it would fail on the node
        job, data = replay.replay_job(from_, dry_run=dry_run and fmt != "sbatch")
        report.note(f"relaunching the job recorded in {from_} ({data.get('time')}, {data.get('host')})")
        if data.get("cwd") and Path(str(data["cwd"])) != Path.cwd():
            report.note(f"it ran in {data['cwd']}; relative paths now resolve from {Path.cwd()}")
        # the record as it was first; then this node's rank and --resume, which a requeued
        # multi-node job (SLURM) changes on purpose
        replay.check_replay(data, render(job, os.environ), from_)
        if node_rank is not None:
            job = replace(job, launch=replace(job.launch, node_rank=node_rank),
                          sources={**job.sources, "launch.node_rank": "--node-rank"})
    elif preset is None:
        raise LorakitError("give a preset (--preset/-p NAME or FILE) or a run record (--from FILE)",
                           hint="lorakit presets list shows the built-in presets")
    else:
        opts = shared.options(preset, ctx.args)
        extra = []
        if on is not None:
            from lorakit import injob  # only inside a scheduler's job

            extra = injob.cli_overrides(on)
        extra += [("launch.node_rank", node_rank, "--node-rank")] if node_rank is not None else []
        job = apply_fixups(c.job_from_options(opts, extra))
    if job.command != "sft":
        raise LorakitError(
            f"preset {job.preset!r} runs `swift {job.command}`, not `swift sft`",
            hint=(f"replay it with lorakit {job.command} --from {from_}" if from_ is not None and job.command == "rlhf"
                  else {"export": "use `lorakit merge` for export presets",
                        "rollout": "`lorakit rlhf` starts swift rollout for a GRPO server-mode preset"}.get(
                      job.command, f"use `lorakit {job.command}` for {job.command} presets")
                  + ", or a preset with 'command: sft'"),
        )
    if resume_ is not None:
        from lorakit import resume  # only with --resume: the dry-run path stays near Python's start-up

        ran_in = str(data["cwd"]) if from_ is not None and data.get("cwd") else None
        job = resume.apply(job, resume.AUTO if resume_ == "" else resume_, ran_in=ran_in)
    report.note(c.layout_note(job))
    if log is not None and dry_run:
        raise LorakitError("--log names where a launch writes ms-swift's output; --dry-run launches nothing",
                           hint="drop --log, or --dry-run")
    return train_tail(job, dry=dry_run, fmt=fmt, all_nodes=all_nodes, strict=strict, grace=grace,
                      log=log, show_progress=progress)


train.__doc__ = (train.__doc__ or "") + "\n" + EXAMPLES.replace("\n\n", "\n\n\b\n")
