"""`lorakit plan`: a job's LoRA parameter count and per-GPU memory, before anything launches.

job + ModelInfo (+ the GPUs nvidia-smi reports) -> one plan dict. The arithmetic lives in
planmath; this module reads the job the way ms-swift would (its defaults included) and says
every assumption it made. Stdlib only: no torch, transformers, numpy or ms-swift.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from typing import Any, Callable

from lorakit import modelinfo, planmath
from lorakit.checks.layout import gpus_per_rank as _ranked_gpus
from lorakit.checks.training import effective_grad_accum
from lorakit.errors import LorakitError
from lorakit.findings import WARNING, Finding
from lorakit.fixups import gc_enabled
from lorakit.job import Job
from lorakit.values import as_float, as_int, did_you_mean
from lorakit.planmodel import load_model  # noqa: F401 (plan.load_model: the API)
from lorakit.zeroconfig import zero_of, zero_sizes

GIB = 1024 ** 3
# CUDA context, NCCL buffers and allocator fragmentation: what planmath leaves out on purpose.
RESERVE_GIB = 1.5
DTYPE_BYTES = {"bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2, "float32": 4, "fp32": 4}
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "W_pack", "query_key_value", "wqkv", "wo")
PARTS = ("base_weights", "lora_weights", "lora_grads", "optimizer_states", "zero_buffers", "activations", "logits")


def gib(n: float) -> float:
    return round(n / GIB, 2)


def size_text(n: float) -> str:
    """GiB with two decimals; MiB where that would read 0.00 for something that is not zero."""
    if 0 < n < 0.005 * GIB:
        return f"{n / 1024 ** 2:.1f} MiB"
    return f"{n / GIB:.2f} GiB"


PLANNABLE = 2 ** 53  # the largest count a float holds exactly; far past any rank, batch or length


def _positive(job: Job, key: str, default: Any, parse: Callable = as_int) -> Any:
    raw = job.args.get(key)
    if raw in (None, ""):
        return default
    value = parse(raw)
    if value is None or value < 0 or (parse is as_int and value == 0):
        raise LorakitError(f"{key} {raw!r} ({job.source_of('args.' + key) or 'preset'}) is not a "
                           f"{'positive integer' if parse is as_int else 'number >= 0'}")
    if value > PLANNABLE:  # planmath divides in floats: 10**400 raised OverflowError (a traceback)
        raise LorakitError(f"{key} {raw!r} ({job.source_of('args.' + key) or 'preset'}) is too large to plan "
                           f"(more than 2**53)", hint=f"give {key} a realistic value, e.g. --set {key}={default or 2048}")
    return value


def _dtype(job: Job, config_dtype: str | None, notes: list) -> tuple[str, int]:
    raw = job.args.get("torch_dtype")
    # 'None' is ms-swift's own choice for "unset" (HfArgumentParser maps the text back to None)
    name = str(raw).strip().lower().replace("torch.", "") if raw not in (None, "") and str(raw) != "None" else None
    if name is None:
        if config_dtype and config_dtype.replace("torch.", "") in DTYPE_BYTES:
            name = config_dtype.replace("torch.", "")
            notes.append(f"torch_dtype unset: ms-swift uses the model config's {name}")
        else:
            name = "bfloat16"
            notes.append("torch_dtype unset and the config names none: ms-swift picks bfloat16 on a "
                         "bf16-capable GPU (float16 otherwise); planned as bfloat16")
    if name not in DTYPE_BYTES:
        raise LorakitError(f"torch_dtype {raw!r} is not one of bfloat16, float16, float32")
    return name, DTYPE_BYTES[name]


def _targets(job: Job) -> list:
    value = job.args.get("target_modules", planmath.ALL_LINEAR)  # ms-swift's default
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def check_targets(job: Job, info: modelinfo.ModelInfo, model: str, targets: list) -> None:
    _, unknown = planmath.resolve_targets(info, targets)
    if not unknown:
        return
    names = sorted(set(info.linears) | set(info.head) | set(info.multimodal))
    close = did_you_mean(unknown[0].rsplit(".", 1)[-1], names)
    source = job.source_of("args.target_modules")
    raise LorakitError(
        f"target_modules{f' ({source})' if source else ''}: {', '.join(map(repr, unknown))} "
        f"match{'es' if len(unknown) == 1 else ''} no module of {model}",
        hint=(f"did you mean {close[0]!r}? " if close else "")
        + f"its Linear layers: {', '.join(names)}; or all-linear")


def layout_of(job: Job, info: modelinfo.ModelInfo, config_dtype: str | None, notes: list) -> dict:
    """memory_plan's keyword arguments for this job, plus the offload flags; ms-swift's defaults."""
    tuner = str(job.args.get("tuner_type") or "lora")  # ms-swift 4's default (3.x: train_type)
    if tuner != "lora":
        raise LorakitError(f"tuner_type {tuner!r}: lorakit plan models LoRA runs only",
                           hint="plan with tuner_type lora, or estimate other tuners by hand")
    dtype, dtype_bytes = _dtype(job, config_dtype, notes)
    max_length = _positive(job, "max_length", None)
    if max_length is None:
        max_length = info.max_position_embeddings or 2048
        notes.append(f"max_length unset: ms-swift's default is the model's maximum length, "
                     f"{max_length} (max_position_embeddings); set max_length to plan your real samples")
    # One process over several visible GPUs counts too: ms-swift spreads it with device_map='auto'.
    per_rank = _ranked_gpus(job)
    stage, off_opt, off_param = zero_of(job, notes)
    reduce_bucket, max_live = zero_sizes(job)
    if stage >= 3:
        live = min(max_live or planmath.DS_MAX_LIVE, info.total_params)
        notes.append(f"ZeRO-3 keeps gathered weights live up to stage3_max_live_parameters: "
                     f"{size_text(live * dtype_bytes)} counted in zero_buffers")
    elif stage in (1, 2):
        notes.append("DeepSpeed's reduce bucket (reduce_bucket_size elements, contiguous_gradients) is "
                     "allocated every backward: counted in zero_buffers")
    if job.args.get("use_logits_to_keep") not in (False, "false", "False"):
        notes.append("logits are planned for every token: ms-swift's use_logits_to_keep computes them for "
                     "response tokens only, so with long prompts the plan is an upper bound")
    if off_opt:
        notes.append("offload: optimizer states" + (" and parameters" if off_param else "")
                     + " planned on CPU; DeepSpeed's GPU-side buffers are not modelled")
    if not gc_enabled(job) and (info.experts or "moe" in (info.model_type or "")):
        # a 4-layer Qwen3-MoE at 512 tokens: -0.9% against the simulated step (the routed copies)
        notes.append("MoE without gradient checkpointing: the experts' activations are planned as a dense MLP "
                     "of intermediate_size, a little low; --simulate runs the real routing")
    for key, what in (("modules_to_save", "full trainable copies"), ("use_dora", "DoRA magnitude vectors"),
                      ("quant_bits", "load-time quantization"), ("target_regex", "regex targets")):
        if job.args.get(key) not in (None, "", False, [], 0):
            notes.append(f"{key} is set: {what} not modelled")
    return {"rank": _positive(job, "lora_rank", 8), "targets": _targets(job), "dtype": dtype,
            "dtype_bytes": dtype_bytes, "micro_batch": _positive(job, "per_device_train_batch_size", 1),
            "max_length": max_length, "grad_ckpt": gc_enabled(job), "world_size": job.world_size,
            "gpus_per_rank": per_rank, "zero_stage": stage, "offload_optimizer": off_opt,
            "offload_param": off_param, "lora_dropout": _positive(job, "lora_dropout", 0.05, as_float),
            "reduce_bucket": reduce_bucket, "max_live": max_live}


def memory(info: modelinfo.ModelInfo, lay: dict) -> dict:
    """planmath.memory_plan for a layout, with offloaded parts moved to `cpu_offload`."""
    kw = {k: lay[k] for k in ("rank", "targets", "dtype_bytes", "micro_batch", "max_length", "grad_ckpt",
                              "world_size", "gpus_per_rank", "zero_stage", "lora_dropout", "reduce_bucket",
                              "max_live")}
    plan = planmath.memory_plan(info, **kw)
    moved = (["optimizer_states"] if lay["offload_optimizer"] else []) + \
        (["base_weights", "lora_weights"] if lay["offload_param"] else [])
    plan["cpu_offload"] = sum(plan[k] for k in moved)
    for key in moved:
        plan[key] = 0
    plan["total"] = sum(plan[k] for k in PARTS)
    return plan


def remedies(job: Job, info: modelinfo.ModelInfo, lay: dict, total: int) -> list:
    """The seed's out-of-memory remedies in its order, then the natural ones; each re-planned, and
    kept only if it lowers the per-GPU total."""
    out = []
    attn = [n for n in ATTENTION if n in info.linears]
    if attn:
        out.append(("fewer target_modules: attention only", f"--target-modules {','.join(attn)}",
                    {"targets": attn}))
    if lay["rank"] > 1:
        out.append(("lower lora_rank", f"--lora-rank {lay['rank'] // 2}", {"rank": lay["rank"] // 2}))
    batch, accum = lay["micro_batch"], effective_grad_accum(job)[0]
    if batch > 1:
        out.append(("smaller per-device batch, more gradient accumulation (same global batch)",
                    f"--set per_device_train_batch_size=1 --set gradient_accumulation_steps={batch * accum}",
                    {"micro_batch": 1}))
    gpus = len(job.launch.gpu_ids or []) or lay["world_size"] * lay["gpus_per_rank"]
    nodes = job.launch.node_total
    stage = lay["zero_stage"]
    if stage < 2 and gpus > 1:
        nproc = "" if job.launch.nproc_per_node == gpus else f" --nproc {gpus}"
        out.append(("DeepSpeed ZeRO-2 (one GPU per rank)", f"--set deepspeed=zero2{nproc}",
                    {"zero_stage": 2, "world_size": gpus * nodes, "gpus_per_rank": 1}))
    elif stage == 2 and gpus > 1:
        off = lay["offload_optimizer"]
        out.append(("DeepSpeed ZeRO-3 (partitions the base weights too)",
                    "--set deepspeed=zero3" + ("_offload" if off else ""), {"zero_stage": 3, "offload_param": off}))
    elif stage == 3 and not lay["offload_param"]:
        out.append(("DeepSpeed ZeRO-3 with CPU offload", "--set deepspeed=zero3_offload",
                    {"offload_optimizer": True, "offload_param": True}))
    if not lay["grad_ckpt"]:
        out.append(("gradient checkpointing on", "--set gradient_checkpointing=true", {"grad_ckpt": True}))
    if lay["max_length"] > 256:
        half = lay["max_length"] // 2
        out.append(("shorter max_length (if your samples fit)", f"--set max_length={half}", {"max_length": half}))
    planned = []
    for label, how, change in out:
        new = memory(info, {**lay, **change})["total"]
        if new < total:
            planned.append({"remedy": label, "how": how, "per_gpu_memory_gib": gib(new), "bytes": new})
    return planned


def query_gpus(run: Callable = subprocess.run, which: Callable = shutil.which) -> tuple[list | None, str]:
    """([(index, MiB)], how) from nvidia-smi -- never torch, which takes seconds to import and
    would grab a CUDA context. (None, why) when nvidia-smi is absent or fails.
    nvidia-smi numbers GPUs in PCI bus order; CUDA_VISIBLE_DEVICES does too only under
    CUDA_DEVICE_ORDER=PCI_BUS_ID, which torchrun-launched ms-swift does not set for you."""
    exe = which("nvidia-smi")
    if exe is None:
        return None, "no nvidia-smi on PATH"
    try:
        done = run([exe, "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
                   capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi did not answer ({exc.__class__.__name__})"
    if done.returncode != 0:
        return None, f"nvidia-smi failed (exit {done.returncode})"
    gpus = []
    for line in done.stdout.splitlines():
        index, _, mib = (part.strip() for part in line.partition(","))
        if index and as_int(mib) is not None:
            gpus.append((index, as_int(mib)))
    return gpus, "nvidia-smi"


def gpus_given(job: Job, memory_gib: float) -> tuple[list, str]:
    """--gpu-mem: every GPU of the job has that much memory (a GPU not present here)."""
    if not memory_gib > 0 or math.isinf(memory_gib):  # inf (1e309): int(round(inf)) raised OverflowError
        raise LorakitError(f"--gpu-mem {memory_gib!r} is not a positive number of GiB", hint="e.g. --gpu-mem 80")
    ids = job.launch.gpu_ids or [str(i) for i in range(max(job.world_size, 1) * max(_ranked_gpus(job), 1))]
    return [(i, int(round(memory_gib * 1024))) for i in ids], f"--gpu-mem {memory_gib:g}"


CANNOT_SEE = ("the CUDA context (~0.3-0.6 GiB)", "the caching allocator's fragmentation and reserved blocks",
              "NCCL buffers", "DeepSpeed's buffers and sharding (one process is simulated)")


def simulated(job: Job, info: modelinfo.ModelInfo, config_dtype: str | None, python: str | None = None) -> dict:
    """`plan --simulate`: the job's step run on fake tensors (lorakit.simulate), next to the
    analytic plan of the same single process."""
    from lorakit import simulate

    lay = layout_of(job, info, config_dtype, [])
    one = {**lay, "world_size": 1, "gpus_per_rank": 1, "zero_stage": 0, "offload_optimizer": False,
           "offload_param": False}
    out = simulate.simulate(str(job.args.get("model")), info, one, as_float(job.args.get("lora_alpha")), python)
    planned = memory(info, one)["total"]
    peak = out["peak_bytes"]
    return {"peak_bytes": peak, "peak_gib": gib(peak), "plan_one_process_bytes": planned,
            "plan_one_process_gib": gib(planned), "plan_vs_simulated_percent": round(100 * (planned / peak - 1), 2),
            "at_peak": out["at_peak"], "seconds": out["seconds"], "versions": out["versions"],
            "one_process": lay["world_size"] > 1 or lay["gpus_per_rank"] > 1 or lay["zero_stage"] > 0,
            "cannot_see": list(CANNOT_SEE)}


def compare(job: Job, total: int, gpus: list | None, how: str) -> dict:
    """The smallest of the job's GPUs that nvidia-smi shows, and whether the plan fits it."""
    ids = job.launch.gpu_ids
    mine = [g for g in gpus or [] if ids is None or g[0] in ids]
    out = {"gpus": None if gpus is None else [{"index": i, "memory_gib": round(m / 1024, 2)} for i, m in mine],
           "smallest_gpu": None, "reserve_gib": RESERVE_GIB, "fits": None}
    if not mine:
        why = how if gpus is None else "nvidia-smi lists no GPUs" if not gpus else \
            f"none of the job's GPUs ({job.launch.gpus}) is visible here"
        return {**out, "gpu_note": f"GPU memory not compared: {why}"}
    index, mib = min(mine, key=lambda g: g[1])
    return {**out, "smallest_gpu": {"index": index, "memory_gib": round(mib / 1024, 2)},
            "fits": total / GIB + RESERVE_GIB <= mib / 1024,
            "gpu_note": f"planned against {len(mine)} GPU{'s' if len(mine) > 1 else ''} of {mib / 1024:.2f} GiB ({how})"
            if how.startswith("--gpu-mem") else
            f"{len(mine)} of the job's GPUs visible ({how}); smallest: GPU {index}, {mib / 1024:.2f} GiB"}


def build_plan(job: Job, info: modelinfo.ModelInfo, model_source: str, config_dtype: str | None,
               gpus: list | None = None, gpu_how: str = "no nvidia-smi on PATH") -> dict:
    """The whole plan: pure, given the model's shapes and the GPU list."""
    model = str(job.args.get("model"))
    notes = list(info.notes) if info.path else []
    lay = layout_of(job, info, config_dtype, notes)
    check_targets(job, info, model, lay["targets"])
    mem = memory(info, lay)
    accum, defaulted = effective_grad_accum(job)
    global_batch = lay["micro_batch"] * accum * lay["world_size"]
    if defaulted:
        notes.append(f"gradient_accumulation_steps unset: ms-swift's default ceil(16 / (batch x world)) = {accum}")
    targeted, _ = planmath.resolve_targets(info, lay["targets"])
    plan = {
        "model": model, "model_source": model_source, "preset": job.preset,
        "trainable_params": mem["lora_params"], "total_params": info.total_params,
        "trainable_percent": round(100 * mem["lora_params"] / info.total_params, 4) if info.total_params else None,
        "lora_rank": lay["rank"], "target_modules": lay["targets"],
        "targeted": {leaf: len(shapes) for leaf, shapes in sorted(targeted.items())},
        "layout": {k: lay[k] for k in ("dtype", "micro_batch", "max_length", "grad_ckpt", "world_size",
                                       "gpus_per_rank", "zero_stage", "offload_optimizer", "offload_param",
                                       "lora_dropout")},
        "gradient_accumulation_steps": accum, "global_batch": global_batch,
        "tokens_per_step": global_batch * lay["max_length"],
        "per_gpu_memory_gib": gib(mem["total"]), "per_gpu_memory_bytes": mem["total"],
        "breakdown": {k: gib(mem[k]) for k in PARTS}, "breakdown_bytes": {k: mem[k] for k in PARTS},
        "cpu_offload_gib": gib(mem["cpu_offload"]), "notes": notes,
    }
    plan.update(compare(job, mem["total"], gpus, gpu_how))
    plan["remedies"], plan["findings"] = [], []
    if plan["fits"] is False:
        small = plan["smallest_gpu"]
        plan["remedies"] = remedies(job, info, lay, mem["total"])
        for r in plan["remedies"]:
            r["fits"] = r["per_gpu_memory_gib"] + RESERVE_GIB <= small["memory_gib"]
        plan["findings"].append(Finding(
            WARNING, "plan.does_not_fit",
            f"the plan needs {plan['per_gpu_memory_gib']:.2f} GiB per GPU (+{RESERVE_GIB} GiB reserve), "
            f"GPU {small['index']} has {small['memory_gib']:.2f} GiB",
            hint="try, in order: " + "; ".join(r["remedy"] for r in plan["remedies"]) if plan["remedies"]
            else "use GPUs with more memory").as_dict())
    return plan
