"""`lorakit infer`: a trained adapter -> checks -> `swift infer` (printed, or launched).

--adapters takes a checkpoint, a run dir or an output root (merge's discovery, lorakit.adapterpick);
ms-swift reads the base model and template from the checkpoint's args.json itself
(BaseArguments.load_args_from_ckpt), so lorakit renders only the adapter, after checking that the
base it names is still there. deploy and eval share this module's `prepare`.

Backends (ms-swift 4.6.0 pipelines/infer/infer.py, infer_engine/): transformers ('pt' in 3.x) and
vLLM take a LoRA adapter; sglang and lmdeploy get no adapter at all (only vLLM gets an
adapter_request), so they would answer with the bare base model: refused unless merge_lora.
vLLM's LoRA slots are sized by vllm_max_lora_rank (default 16, rlhf_trainers/args_mixin.py
get_vllm_engine_kwargs): a rank-32/64 adapter then fails at load (ms-swift #4221), so lorakit
sets it from adapter_config.json's r, the largest over the adapters.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Annotated, List, Optional

import typer

from lorakit import adapterpick, exports, preflight, report
from lorakit.cli import common as c
from lorakit.cli.run import check_or_exit, emit, execute, output_options
from lorakit.errors import LorakitError
from lorakit.findings import INFO, Finding
from lorakit.job import Job
from lorakit.presets import builtin_dir
from lorakit.render import render
from lorakit.values import as_bool, as_int, suggestion

EXAMPLES = """
Examples:

  lorakit infer --adapters output --dry-run

  lorakit infer --adapters output/v0-20260101-120000/checkpoint-100 --infer-backend vllm

  lorakit infer --adapters output -- --val_dataset test.jsonl --max_new_tokens 256
"""

LORA_BACKENDS = ("transformers", "pt", "vllm")
# vLLM's LoRAConfig accepts only these max_lora_rank values (vllm/config: possible_max_ranks)
VLLM_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
FORMATS = ("text", "sh", "json")

AdaptersOpt = Annotated[Optional[List[str]], typer.Option(
    "--adapters", help="A checkpoint dir, a run dir or a training output dir (its newest run's last checkpoint); repeatable.")]
ModelOpt = Annotated[Optional[str], typer.Option(help="Base model. Default: the one the checkpoint names (its args.json).")]
BackendOpt = Annotated[Optional[str], typer.Option("--infer-backend", help="transformers (pt), vllm, sglang or lmdeploy.")]
PickOpt = Annotated[Optional[str], typer.Option("--pick", help="From a run or output dir: 'last' (default) or 'best'.")]
FormatOpt = Annotated[Optional[str], typer.Option("--format", help="With --dry-run: text | sh | json (default text).")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="Check and print the command; launch nothing.")]


def fragment(name: str) -> str:
    return str(builtin_dir() / "fragments" / f"{name}.yaml")


def _backend_spelling(job: Job) -> Job:
    """'pt' (3.x) and 'transformers' (4.x) name one backend: 3.x knows only pt, 4.x warns on pt."""
    value = job.args.get("infer_backend")
    spelled = {"pt": "transformers"} if job.swift_major >= 4 else {"transformers": "pt"}
    if value not in spelled:
        return job
    note = Finding(INFO, "infer.backend.spelling", f"infer_backend {value} is {spelled[value]} in ms-swift "
                   f"{job.swift_major}.x: rendered as {spelled[value]}", key="args.infer_backend",
                   file=job.source_of("args.infer_backend"))
    return replace(job, args={**job.args, "infer_backend": spelled[value]}, adjustments=(*job.adjustments, note))


def _known_backend(job: Job) -> None:
    """infer_args.py: Literal['vllm', 'transformers', 'sglang', 'lmdeploy', 'pt'] (3.x: no transformers).
    Said before the LoRA rule, which took a typo ('vlm') for a backend that takes no adapter."""
    backend = job.args.get("infer_backend")
    known = ("transformers", "vllm", "sglang", "lmdeploy") if job.swift_major >= 4 else ("pt", "vllm", "sglang", "lmdeploy")
    if backend is None or backend in (*known, "pt", "transformers"):
        return
    raise LorakitError(f"infer_backend {backend!r} ({job.source_of('args.infer_backend')}) is not an ms-swift "
                       f"{job.swift_major}.x backend", hint=suggestion(backend, known) + "one of: " + ", ".join(known))


def _lora_backend(job: Job, picked: list) -> None:
    backend = str(job.args.get("infer_backend", "transformers"))
    if not picked or backend in LORA_BACKENDS or as_bool(job.args.get("merge_lora", False)) is True:
        return
    raise LorakitError(
        f"--infer-backend {backend} takes no LoRA adapter: ms-swift would serve the bare base model "
        "(only transformers and vLLM get the adapter)",
        hint=f"merge first (lorakit merge --adapters {picked[0].given}, then --model MERGED_DIR and no "
             "--adapters), or let ms-swift merge before it starts: -- --merge_lora true; or --infer-backend vllm")


def _regex_modules(checkpoint) -> list[str]:
    """The modules a target_modules regex string names, as ms-swift writes one for a multimodal
    model (swift/utils/transformers_utils.py get_multimodal_target_regex: `^(MODULE(?=\\.).*\\.(LEAF|..)|..)$`,
    MODULE re.escape'd, after a `(?!(ALIGNER|..))` lookahead for the aligners it leaves out)."""
    import re

    from lorakit.adapterpick import _adapter_config

    text = _adapter_config(checkpoint).get("target_modules")
    if not isinstance(text, str):
        return []
    kept = re.sub(r"\(\?!\([^()]*\)\)", "", text)  # the rejected aligners are no target
    return [m.replace("\\.", ".") for m in re.findall(r"((?:\\\.|\w)+)\(\?=\\\.\)", kept)]


def _vllm_targets(picked: list) -> None:
    """vLLM applies LoRA to the language model only: an adapter on a vision tower or an aligner
    (freeze_vit/freeze_aligner false) is refused when vLLM loads it, and the engine dies at the first
    request (ms-swift #4974: InternVL3's mlp1.*, 'expected target modules in [...] but received')."""
    from lorakit.modelinfo import part_of

    for adapter in picked:
        named = adapterpick.lora_targets(adapter.checkpoint) + _regex_modules(adapter.checkpoint)
        outside = [t for t in named if part_of(t) == "multimodal"]
        if outside:
            raise LorakitError(
                f"--infer-backend vllm with the adapter {adapter.given}, which has LoRA on "
                f"{', '.join(sorted(set(outside)))} (adapter_config.json target_modules): vLLM applies LoRA to the "
                "language model only and refuses the adapter when it loads it",
                hint=f"--infer-backend transformers; or merge first (lorakit merge --adapters {adapter.given}, then "
                     "--model MERGED_DIR and no --adapters) and serve the merged model with vLLM")


def _vllm_rank(job: Job, picked: list, command: str) -> Job:
    if str(job.args.get("infer_backend")) != "vllm" or not picked:
        return job
    if command == "infer" and len(picked) > 1:
        raise LorakitError("swift infer with vLLM serves one adapter (infer_engine/vllm_engine.py: 'Only one "
                           f"adapter is supported for now'), got {len(picked)}",
                           hint="pass one --adapters, or serve several with lorakit deploy --adapters NAME=PATH ...")
    _vllm_targets(picked)
    ranks = [r for r in (adapterpick.lora_rank(a.checkpoint) for a in picked) if r is not None]
    if not ranks:
        return job
    need = next((v for v in VLLM_RANKS if v >= max(ranks)), max(ranks))
    given = as_int(job.args.get("vllm_max_lora_rank"))
    if given is not None:
        if given < max(ranks):
            raise LorakitError(f"vllm_max_lora_rank {given} is below the adapter's LoRA rank {max(ranks)} "
                               "(adapter_config.json r): vLLM refuses the adapter when it loads it (ms-swift #4221)",
                               hint=f"drop vllm_max_lora_rank (lorakit sets {need}), or set it to {need}")
        return job
    note = Finding(INFO, "infer.vllm.max_lora_rank",
                   f"vllm_max_lora_rank {need}: the adapters' LoRA rank is {max(ranks)} (adapter_config.json r); "
                   "vLLM's default 16 refuses a larger one at load (ms-swift #4221)",
                   key="args.vllm_max_lora_rank", file="adapter_config.json")
    return replace(job, args={**job.args, "vllm_max_lora_rank": need},
                   sources={**job.sources, "args.vllm_max_lora_rank": "adapter_config.json"},
                   adjustments=(*job.adjustments, note))


def _preflight(job: Job, picked: list) -> None:
    """The base model the adapter names must still be there (before ms-swift loads minutes of weights)."""
    local = next((a for a in picked if a.checkpoint is not None), None)
    if job.args.get("model"):
        base = preflight.resolve_base(str(job.args["model"]), job.source_of("args.model") or "--model")
    elif local is not None:
        info = adapterpick.base_of(local)
        base = preflight.resolve_base(info.get("model"), info.get("source") or f"{local.checkpoint}: no args.json")
        report.note(f"base model {base.model} (from {base.source})")
    else:
        return
    if as_bool(job.args.get("merge_lora", False)) is True:
        report.print_findings(preflight.check_quantization(base))  # GPTQ/AWQ cannot be merged into


def _one_name_each(picked: list) -> None:
    """deploy_args.py `_init_adapters` keeps NAME=PATH in a dict: a name given twice serves only its last path."""
    seen: dict = {}
    for a in picked:
        if a.name is not None and a.name in seen:
            raise LorakitError(f"--adapters names {a.name!r} twice ({seen[a.name]} and {a.given}): ms-swift keeps "
                               "one path per name (deploy_args.py adapter_mapping), so the first would not be served",
                               hint="give each adapter its own name, e.g. --adapters sft=PATH --adapters dpo=PATH2")
        seen.setdefault(a.name, a.given)


def _one_base(picked: list, model) -> None:
    """ms-swift reads the base from the first adapter's args.json (get_ckpt_dir) and loads every
    adapter onto it: one trained on another base fails at load (shapes) or answers nonsense."""
    if model:
        return
    bases = [(a, adapterpick.base_of(a).get("model")) for a in picked if a.checkpoint is not None]
    bases = [(a, b) for a, b in bases if b]
    other = next(((a, b) for a, b in bases if b != bases[0][1]), None)
    if other is not None:
        raise LorakitError(f"--adapters come from two base models: {bases[0][0].given} was trained on "
                           f"{bases[0][1]}, {other[0].given} on {other[1]} (their args.json); ms-swift loads them "
                           "all onto the first's base",
                           hint="pass adapters of one base together; serve the other base in its own lorakit "
                                "deploy on another --port")


def _given_base(job: Job, picked: list) -> Job:
    """--model wins over the adapter's args.json in ms-swift too; said when it is another base."""
    local = next((a for a in picked if a.checkpoint is not None), None)
    if local is None or not job.args.get("model"):
        return job
    notes = adapterpick.other_base(job.args["model"], job.source_of("args.model") or "--model",
                                   adapterpick.base_of(local))
    return replace(job, adjustments=(*job.adjustments, *notes)) if notes else job


def prepare(opts: c.JobOptions, adapters: list[str], pick: Optional[str], *, command: str,
            backend: Optional[str] = None, named: bool = False, more: tuple = ()) -> Job:
    adapters, rest = adapterpick.take_adapters(list(opts.extra), list(adapters))
    opts = replace(opts, extra=rest)
    adapterpick.no_set_adapters(opts.sets if adapters else [], command)
    picked = [adapterpick.pick(a, how=pick or "last", named=named) for a in adapters]
    _one_name_each(picked)
    extra = [("args.adapters", [a.argv_item for a in picked], "--adapters")] if picked else []
    if backend is not None:
        extra.append(("args.infer_backend", backend, "--infer-backend"))
    extra += list(more)  # (key, value, option): values as given, never re-read as YAML
    job = c.job_from_options(opts, extra)
    if job.command != command:
        raise LorakitError(f"preset {job.preset!r} runs `swift {job.command}`, not `swift {command}`",
                           hint=f"use a preset with 'command: {command}' (or none: lorakit {command} has a default)")
    _one_base(picked, job.args.get("model"))
    # swift export --to_hf reads the model from the Megatron save (--mcore_model, or the adapters')
    megatron = command == "export" and any(job.args.get(k) for k in ("mcore_model", "mcore_adapter", "mcore_adapters"))
    if not picked and not job.args.get("model") and not megatron:
        raise LorakitError(f"lorakit {command} needs --adapters (a checkpoint, run or output dir) or --model",
                           hint=f"e.g. lorakit {command} --adapters output")
    for a in picked:
        for line in a.skipped:
            report.note(line)
        report.note(f"picked {a.argv_item}: {a.reason}")
    _preflight(job, picked)
    job = _given_base(job, picked)
    _known_backend(job)
    job = _backend_spelling(job)
    _lora_backend(job, picked)
    return _vllm_rank(job, picked, command)


def finish(job: Job, *, dry: bool, fmt: Optional[str], strict: bool, grace: float) -> int:
    fmt = output_options(fmt if fmt is None or fmt in FORMATS else _bad_format(fmt), False, dry)
    findings = check_or_exit(job, strict, here=not dry)
    command = render(job, os.environ)
    if dry:
        return emit(exports.export(fmt, job, command, findings))
    return execute(command, grace=grace, major=job.swift_major)


def _bad_format(fmt: str) -> str:
    raise LorakitError(f"--format {fmt!r}: this command prints text, sh or json", hint="one of: " + ", ".join(FORMATS))


def infer(
    ctx: typer.Context,
    adapters: AdaptersOpt = None,
    model: ModelOpt = None,
    infer_backend: BackendOpt = None,
    pick: PickOpt = None,
    preset: Annotated[Optional[str], typer.Option("--preset", "-p", help="An infer preset (default: built-in fragments/infer).")] = None,
    set_: c.SetOpt = None,
    swift_version: c.SwiftVersionOpt = None,
    dry_run: DryOpt = False,
    fmt: FormatOpt = None,
    strict: c.StrictOpt = False,
    grace: c.GraceOpt = 30.0,
) -> int:
    """Generate with a trained adapter through `swift infer`; flags after `--` go to ms-swift."""
    opts = c.JobOptions(preset or fragment("infer"), model=model, sets=set_ or [], extra=list(ctx.args),
                        swift_version=swift_version)
    job = prepare(opts, list(adapters or []), pick, command="infer", backend=infer_backend)
    return finish(job, dry=dry_run, fmt=fmt, strict=strict, grace=grace)


infer.__doc__ = (infer.__doc__ or "") + "\n" + EXAMPLES.replace("\n\n", "\n\n\b\n")
