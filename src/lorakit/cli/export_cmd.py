"""`lorakit export`: `swift export` for what is not a merge: quantization (awq, gptq, gptq_v2, bnb,
fp8), Ollama, a cached (pre-tokenized) dataset, Megatron-Core conversion (to_mcore / to_hf), a push
to the hub. Flags after `--` go to ms-swift, as its examples write them; --adapters and --model go
through `lorakit infer`'s `prepare` (checkpoint discovery, the base model's pre-flight).
checks/export.py says what ms-swift would refuse, and what this machine lacks for the launch.
"""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from lorakit.cli import common as c
from lorakit.cli.infer import DryOpt, FormatOpt, ModelOpt, PickOpt, finish, fragment, prepare

EXAMPLES = """
Examples:

  lorakit export --model Qwen/Qwen2.5-7B-Instruct --dry-run -- --quant_method awq --quant_bits 4 --dataset data.jsonl

  lorakit export --adapters output -- --merge_lora true --quant_method gptq --quant_bits 4 --dataset data.jsonl

  lorakit export --model Qwen/Qwen2.5-7B-Instruct --output-dir cached -- --to_cached_dataset true --dataset data.jsonl
"""

AdaptersOpt = Annotated[Optional[List[str]], typer.Option(
    "--adapters", help="A checkpoint dir, a run dir or a training output dir (its newest run's last checkpoint); repeatable.")]
OutputOpt = Annotated[Optional[str], typer.Option(
    "--output-dir", help="Where ms-swift writes (default: its own, e.g. CHECKPOINT-awq-int4 beside the checkpoint).")]


def export(
    ctx: typer.Context,
    model: ModelOpt = None,
    adapters: AdaptersOpt = None,
    output_dir: OutputOpt = None,
    pick: PickOpt = None,
    preset: Annotated[Optional[str], typer.Option("--preset", "-p", help="An export preset (default: built-in fragments/export).")] = None,
    set_: c.SetOpt = None,
    swift_version: c.SwiftVersionOpt = None,
    dry_run: DryOpt = False,
    fmt: FormatOpt = None,
    strict: c.StrictOpt = False,
    grace: c.GraceOpt = 30.0,
) -> int:
    """Quantize or convert a model with `swift export`; flags after `--` go to ms-swift."""
    more = [("args.output_dir", output_dir, "--output-dir")] if output_dir is not None else []
    opts = c.JobOptions(preset or fragment("export"), model=model, sets=list(set_ or []), extra=list(ctx.args),
                        swift_version=swift_version)
    job = prepare(opts, list(adapters or []), pick, command="export", more=more)
    return finish(job, dry=dry_run, fmt=fmt, strict=strict, grace=grace)


export.__doc__ = (export.__doc__ or "") + "\n" + EXAMPLES.replace("\n\n", "\n\n\b\n")
