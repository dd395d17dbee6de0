"""`lorakit train`: preset -> checks -> `swift sft` (printed or launched)."""

from __future__ import annotations

from typing import Annotated

import typer

from lorakit import report
from lorakit.cli import common as c
from lorakit.cli.run import check_or_exit, finish
from lorakit.errors import LorakitError
from lorakit.fixups import apply_fixups

EXAMPLES = """
Examples:

  lorakit train --preset zero2 --dry-run

  lorakit train -p ddp_device_map --model Qwen/Qwen3-8B --dataset data.jsonl

  CUDA_VISIBLE_DEVICES=0,1 lorakit train -p zero2 --set lora_rank=16

  lorakit train -p my.yaml -- --max_steps 100 --attn_impl flash_attn
"""


def train(
    ctx: typer.Context,
    preset: c.PresetOpt,
    model: c.ModelOpt = None,
    dataset: c.DatasetOpt = None,
    output_dir: c.OutputOpt = None,
    gpus: c.GpusOpt = None,
    nproc: c.NprocOpt = None,
    lora_rank: c.RankOpt = None,
    lora_alpha: c.AlphaOpt = None,
    target_modules: c.TargetsOpt = None,
    set_: c.SetOpt = None,
    swift_version: c.SwiftVersionOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command; launch nothing.")] = False,
    strict: c.StrictOpt = False,
    grace: Annotated[float, typer.Option(help="Seconds between forwarding Ctrl-C/SIGTERM and SIGKILL.")] = 30.0,
) -> int:
    """Train with `swift sft` from a preset; flags after `--` go to ms-swift."""
    opts = c.JobOptions(preset, model, dataset, output_dir, gpus, nproc, lora_rank, lora_alpha,
                        target_modules, set_ or [], list(ctx.args), swift_version)
    job = apply_fixups(c.build(opts))
    if job.command != "sft":
        raise LorakitError(
            f"preset {job.preset!r} runs `swift {job.command}`, not `swift sft`",
            hint="use `lorakit merge` for export presets, or a preset with 'command: sft'",
        )
    report.note(c.layout_note(job))
    check_or_exit(job, strict)
    return finish(job, dry=dry_run, grace=grace)


train.__doc__ = (train.__doc__ or "") + "\n" + EXAMPLES.replace("\n\n", "\n\n\b\n")
