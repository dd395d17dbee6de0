"""`lorakit train`: preset -> checks -> `swift sft` (printed in a format, or launched)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lorakit import record, report
from lorakit.cli import common as c
from lorakit.cli.run import train_tail
from lorakit.errors import LorakitError
from lorakit.exports import FORMATS
from lorakit.fixups import apply_fixups

EXAMPLES = """
Examples:

  lorakit train --preset zero2 --dry-run

  lorakit train -p ddp_device_map --model Qwen/Qwen3-8B --dataset data.jsonl

  CUDA_VISIBLE_DEVICES=0,1 lorakit train -p zero2 --set lora_rank=16

  lorakit train -p my.yaml -- --max_steps 100 --attn_impl flash_attn

  lorakit train -p zero2 --set global_batch_size=64 --dry-run --format sh > train.sh

  lorakit train -p my.yaml --set launch.nnodes=2 --dry-run --format sbatch > train.sbatch

  lorakit train -p my.yaml --node-rank 1          (on the second node)

  lorakit train -p my.yaml --dry-run --all-nodes  (every node's command)

  lorakit train --from output/lorakit-run.yaml
"""

OptionalPresetOpt = Annotated[Optional[str], typer.Option("--preset", "-p", help="Built-in name or a YAML file.")]
FromOpt = Annotated[Optional[Path], typer.Option("--from", help="Relaunch exactly the job of a run record (OUTPUT/lorakit-run.yaml).")]
NodeRankOpt = Annotated[Optional[int], typer.Option("--node-rank", help="This node's rank, 0..nnodes-1 (-> NODE_RANK).")]
FormatOpt = Annotated[Optional[str], typer.Option("--format", help="With --dry-run: " + " | ".join(FORMATS) + " (default text).")]
AllNodesOpt = Annotated[bool, typer.Option("--all-nodes", help="With --dry-run: print every node's command (text or json).")]
LogOpt = Annotated[Optional[str], typer.Option("--log", metavar="FILE", help="Write ms-swift's output to FILE instead of the terminal (which keeps the progress bar, and on failure the last lines).")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="On a terminal: a progress bar fed by ms-swift's logs (step/total, loss, it/s, ETA).")]


@c.with_job_args
def train(
    ctx: typer.Context,
    preset: OptionalPresetOpt = None,
    shared: c.JobArgs = c.JobArgs(),
    node_rank: NodeRankOpt = None,
    from_: FromOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command; launch nothing.")] = False,
    fmt: FormatOpt = None,
    all_nodes: AllNodesOpt = False,
    strict: c.StrictOpt = False,
    grace: c.GraceOpt = 30.0,
    log: LogOpt = None,
    progress: ProgressOpt = True,
) -> int:
    """Train with `swift sft` from a preset; flags after `--` go to ms-swift."""
    given = [name for name, value in (("--preset", preset), ("--node-rank", node_rank))
             if value is not None] + shared.given() + (["-- flags"] if ctx.args else [])
    replayed = None
    if from_ is not None:
        if given:
            raise LorakitError(f"--from replays the recorded job as it is; it takes no {', '.join(given)}",
                               hint="drop those options, or copy the record's `preset:` section into a preset")
        job, data = record.replay_job(from_)
        replayed = (from_, data)
        report.note(f"relaunching the job recorded in {from_} ({data.get('time')}, {data.get('host')})")
        if data.get("cwd") and Path(str(data["cwd"])) != Path.cwd():
            report.note(f"it ran in {data['cwd']}; relative paths now resolve from {Path.cwd()}")
    elif preset is None:
        raise LorakitError("give a preset (--preset/-p NAME or FILE) or a run record (--from FILE)",
                           hint="lorakit presets list shows the built-in presets")
    else:
        opts = shared.options(preset, ctx.args)
        extra = [("launch.node_rank", node_rank, "--node-rank")] if node_rank is not None else []
        job = apply_fixups(c.job_from_options(opts, extra))
    if job.command != "sft":
        raise LorakitError(
            f"preset {job.preset!r} runs `swift {job.command}`, not `swift sft`",
            hint="use `lorakit merge` for export presets, or a preset with 'command: sft'",
        )
    report.note(c.layout_note(job))
    if log is not None and dry_run:
        raise LorakitError("--log names where a launch writes ms-swift's output; --dry-run launches nothing",
                           hint="drop --log, or --dry-run")
    return train_tail(job, dry=dry_run, fmt=fmt, all_nodes=all_nodes, strict=strict, grace=grace,
                      replayed=replayed, log=log, show_progress=progress)


train.__doc__ = (train.__doc__ or "") + "\n" + EXAMPLES.replace("\n\n", "\n\n\b\n")
