"""`lorakit plan`: trainable LoRA params and per-GPU memory of a job, before launching it."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from lorakit import report
from lorakit.checks import layout
from lorakit.cli import common as c
from lorakit.errors import EXIT_USER, LorakitError
from lorakit.findings import Finding
from lorakit.fixups import apply_fixups

LABELS = {"base_weights": "base weights", "lora_weights": "LoRA weights", "lora_grads": "LoRA grads",
          "optimizer_states": "optimizer states", "zero_buffers": "DeepSpeed/DDP bufs",
          "activations": "activations", "logits": "logits"}


def _layout_text(p: dict) -> str:
    lay = p["layout"]
    ranks = lay["world_size"]
    per = lay["gpus_per_rank"]
    text = f"{ranks} rank{'s' if ranks > 1 else ''} x {per} GPU{'s' if per > 1 else ''}"
    text += " (device_map)" if per > 1 else ""
    if lay["zero_stage"]:
        text += f", DeepSpeed ZeRO-{lay['zero_stage']}" + (" + CPU offload" if lay["offload_optimizer"] else "")
    elif ranks > 1:
        text += ", DDP (no ZeRO)"
    ckpt = "on" if lay["grad_ckpt"] else "off"
    return (f"{text}, {lay['dtype']}, micro-batch {lay['micro_batch']}, max_length {lay['max_length']}, "
            f"gradient checkpointing {ckpt}")


def header_lines(p: dict) -> list:
    targeted = ", ".join(f"{leaf} x{n}" for leaf, n in p["targeted"].items())
    world = p["layout"]["world_size"]
    return [
        f"plan: {p['model']} ({p['model_source']}), preset {p['preset']}",
        f"trainable LoRA params: {p['trainable_params']:,} of {p['total_params']:,} ({p['trainable_percent']}%)",
        f"  r={p['lora_rank']}, target_modules {' '.join(p['target_modules'])} -> {targeted}",
        f"layout: {_layout_text(p)}",
        f"global batch {p['global_batch']} = per-device {p['layout']['micro_batch']} x grad-accum "
        f"{p['gradient_accumulation_steps']} x {world} rank{'s' if world > 1 else ''}; "
        f"up to {p['tokens_per_step']:,} tokens per optimizer step",
    ]


def footer_lines(p: dict) -> list:
    # heavy: imported only by this command, so other commands' dry-runs do not pay for it
    from lorakit import plan as planner
    out = [f"note: {n}" for n in p["notes"]]
    if p["cpu_offload_gib"]:
        out.append(f"offloaded to CPU RAM per rank: {p['cpu_offload_gib']:.2f} GiB")
    sim = p.get("simulated")
    if sim:
        who = "one process of this layout, " if sim["one_process"] else ""
        out.append(f"simulated step ({who}ms-swift's step on fake tensors, MemTracker peak): "
                   f"{planner.size_text(sim['peak_bytes'])}; the analytic plan for it: "
                   f"{planner.size_text(sim['plan_one_process_bytes'])} ({sim['plan_vs_simulated_percent']:+.2f}%)")
        out.append("the simulation cannot see: " + ", ".join(sim["cannot_see"]))
    out.append(p["gpu_note"])
    if p["fits"] is True:
        out.append(f"fits: {p['per_gpu_memory_gib']:.2f} GiB + {p['reserve_gib']} GiB reserve "
                   f"<= {p['smallest_gpu']['memory_gib']:.2f} GiB")
    elif p["fits"] is False:
        small = p["smallest_gpu"]
        out.append(f"does not fit: {p['per_gpu_memory_gib']:.2f} GiB + {p['reserve_gib']} GiB reserve "
                   f"> GPU {small['index']}'s {small['memory_gib']:.2f} GiB")
        if p["remedies"]:
            out.append("remedies, in order (each alone, per-GPU GiB after it):")
        for i, r in enumerate(p["remedies"], 1):
            verdict = "fits" if r["fits"] else "does not fit"
            out.append(f"  {i}. {r['remedy']}: {r['how']} -> {r['per_gpu_memory_gib']:.2f} GiB ({verdict})")
    return out


def _cell(p: dict, key: str) -> str:
    """GiB with two decimals, or MiB where a part that is not zero would read 0.00."""
    from lorakit import plan as planner
    text = planner.size_text(p["breakdown_bytes"][key])
    return text[:-4] if text.endswith(" GiB") else text


def plain_text(p: dict) -> str:
    rows = [f"  {LABELS[k]:<18}{_cell(p, k):>8}" for k in p["breakdown"]]
    rows.append(f"  {'total':<18}{p['per_gpu_memory_gib']:>8.2f}")
    return "\n".join(header_lines(p) + ["per-GPU memory (GiB):"] + rows + footer_lines(p))


def print_rich(p: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(markup=False, highlight=False, soft_wrap=True)
    for line in header_lines(p):
        console.print(line)
    table = Table(title="per-GPU memory, busiest GPU")
    table.add_column("part")
    table.add_column("GiB", justify="right")
    for key, value in p["breakdown"].items():
        table.add_row(LABELS[key], _cell(p, key))
    table.add_row("total", f"{p['per_gpu_memory_gib']:.2f}", style="bold")
    console.print(table)
    for line in footer_lines(p):
        console.print(line)


def _layout_errors(job) -> None:
    """The plan reads the launch layout and the batch; a layout ms-swift would refuse, or a
    global_batch_size lorakit could not turn into gradient_accumulation_steps, has no plan."""
    errors = layout.refusals(job)
    if errors:
        report.print_findings(errors)
        raise LorakitError(f"no plan: {len(errors)} error(s) above")


@c.with_job_args
def plan(
    ctx: typer.Context,
    preset: c.PresetOpt,
    shared: c.JobArgs,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 2 when the plan does not fit the GPUs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The plan as JSON on stdout.")] = False,
    simulate: Annotated[bool, typer.Option("--simulate", help="Also run the step on fake tensors in ms-swift's Python (torch's MemTracker) and print its peak.")] = False,
    gpu_mem: Annotated[Optional[float], typer.Option("--gpu-mem", help="Plan against GPUs of this many GiB instead of the ones nvidia-smi shows.")] = None,
) -> int:
    """Know before you launch: trainable LoRA params and per-GPU memory, from the model's own
    shapes (a local dir's config.json + safetensors headers, or lorakit's table of published
    configs); compared with the GPUs nvidia-smi shows.

    \b
    Examples:
      lorakit plan -p zero2
      lorakit plan -p single --model ./my-model --target-modules q_proj,v_proj --lora-rank 16
      lorakit plan -p ddp_device_map --json -- --max_length 8192
      lorakit plan -p single --simulate --gpu-mem 24
    """
    from lorakit import plan as planner
    job = apply_fixups(c.job_from_options(shared.options(preset, ctx.args)))
    if job.command != "sft":
        raise LorakitError(f"preset {job.preset!r} runs `swift {job.command}`, not `swift sft`",
                           hint="plan a training preset (one with 'command: sft')")
    _layout_errors(job)
    info, source, config_dtype = planner.load_model(job, build_shapes=True)
    gpu_list, how = planner.gpus_given(job, gpu_mem) if gpu_mem is not None else planner.query_gpus()
    result = planner.build_plan(job, info, source, config_dtype, gpu_list, how)
    if simulate:
        result["simulated"] = planner.simulated(job, info, config_dtype)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_rich(result) if sys.stdout.isatty() else typer.echo(plain_text(result))
        report.print_findings([Finding(**f) for f in result["findings"]])
    return EXIT_USER if strict and result["findings"] else 0

