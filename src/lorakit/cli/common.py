"""What train, validate and plan share: the job options, preset -> job, findings -> exit."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated, Any, List, Optional

import typer

from lorakit import presets, swiftenv
from lorakit.errors import LorakitError
from lorakit.flagfix import expand_abbreviations
from lorakit.findings import ERROR, WARNING, Finding
from lorakit.job import Job, build_job
from lorakit.names import normalise_arg_key

PresetOpt = Annotated[str, typer.Option("--preset", "-p", help="Built-in name or a YAML file.")]
ModelOpt = Annotated[Optional[str], typer.Option(help="ms-swift --model (hub id or local dir).")]
DatasetOpt = Annotated[Optional[List[str]], typer.Option(help="Dataset; repeat for several (replaces the preset's list).")]
OutputOpt = Annotated[Optional[str], typer.Option("--output-dir", help="ms-swift --output_dir.")]
GpusOpt = Annotated[Optional[str], typer.Option(help="GPU ids, e.g. 0,1,2,3 (-> CUDA_VISIBLE_DEVICES).")]
NprocOpt = Annotated[Optional[int], typer.Option("--nproc", help="Ranks per node (-> NPROC_PER_NODE).")]
RankOpt = Annotated[Optional[int], typer.Option("--lora-rank", help="LoRA rank.")]
AlphaOpt = Annotated[Optional[float], typer.Option("--lora-alpha", help="LoRA alpha.")]
TargetsOpt = Annotated[Optional[str], typer.Option("--target-modules", help="e.g. q_proj,v_proj or all-linear.")]
SetOpt = Annotated[Optional[List[str]], typer.Option("--set", help="KEY=VALUE (YAML value); KEY is an ms-swift flag or launch.KEY. Repeatable.")]
SwiftVersionOpt = Annotated[Optional[str], typer.Option("--swift-version", help="Render for ms-swift 3 or 4 (default: the installed one).")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")]


@dataclass
class JobOptions:
    preset: str
    model: str | None = None
    dataset: list[str] | None = None
    output_dir: str | None = None
    gpus: str | None = None
    nproc: int | None = None
    lora_rank: int | None = None
    lora_alpha: float | None = None
    target_modules: str | None = None
    sets: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # ms-swift flags after `--`
    swift_version: str | None = None


def parse_extra(tokens: list[str]) -> list[tuple[str, Any]]:
    """`-- --lora_rank 16 --dataset a b --use_rslora` -> [(key, value)], values as argparse sees them."""
    out: list[tuple[str, Any]] = []
    for token in tokens:
        if token.startswith("--") and len(token) > 2:
            key, eq, value = token[2:].partition("=")
            out.append((key, [value] if eq else []))
        elif not out:
            raise LorakitError(
                f"extra ms-swift flags: expected a --flag, got {token!r}",
                hint="write flags after '--', e.g. lorakit train -p zero2 -- --max_steps 10",
            )
        else:
            out[-1][1].append(token)
    # a bare flag is a boolean switch (`--use_rslora`); one value stays a string; several a list
    return [(k, True if not v else v[0] if len(v) == 1 else v) for k, v in out]


def overrides(opts: JobOptions) -> list[tuple[str, Any, str]]:
    """(dotted key, value, who) in increasing precedence: --set, typed options, then `--` flags."""
    out = [(*presets.parse_set(item), "--set") for item in opts.sets]
    typed = [
        ("args.model", opts.model, "--model"),
        ("args.dataset", opts.dataset, "--dataset"),
        ("args.output_dir", opts.output_dir, "--output-dir"),
        ("args.lora_rank", opts.lora_rank, "--lora-rank"),
        ("args.lora_alpha", opts.lora_alpha, "--lora-alpha"),
        ("args.target_modules", opts.target_modules, "--target-modules"),
    ]
    out += [(key, value, who) for key, value, who in typed if value is not None]
    out += [(f"args.{normalise_arg_key(k)}", v, "-- extra flags") for k, v in parse_extra(opts.extra)]
    return out


def build(opts: JobOptions, *, env: dict[str, str] | None = None) -> Job:
    return build_with(opts, [], env=env)


def build_with(opts: JobOptions, extra: list[tuple[str, Any, str]], *,
               env: dict[str, str] | None = None) -> Job:
    """Preset + options (+ `extra` overrides that win over everything) -> Job."""
    env = dict(os.environ) if env is None else env
    target = swiftenv.target(opts.swift_version)
    resolved = presets.apply_overrides(presets.load(opts.preset), overrides(opts) + extra)
    job = build_job(resolved, env, swift_major=target.major, swift_version=target.installed,
                    swift_source=target.source, gpus=opts.gpus, nproc=opts.nproc)
    return expand_abbreviations(job)


def blocking(findings: list[Finding], strict: bool) -> bool:
    levels = {ERROR, WARNING} if strict else {ERROR}
    return any(f.level in levels for f in findings)


def layout_note(job: Job) -> str:
    launch = job.launch
    parts = []
    if launch.gpus is not None:
        parts.append(f"GPUs {launch.gpus} from {launch.gpus_source}")
    if launch.nproc_per_node is not None:
        rule = launch.nproc_rule
        how = f"--nproc" if launch.nproc_source == "--nproc" else f"rule {rule!r} from {launch.nproc_source}"
        parts.append(f"NPROC_PER_NODE={launch.nproc_per_node} ({how})")
    elif job.command == "sft":
        parts.append("one process (no NPROC_PER_NODE)")
    return "; ".join(parts + [f"rendering for {job.swift_source}"])
