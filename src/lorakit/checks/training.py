"""Training rules: checkpointing under DDP/ZeRO, what this machine lacks, batch arithmetic."""

from __future__ import annotations

import math

from lorakit.checks.facts import Facts
from lorakit.checks.lora import _is_lora
from lorakit.values import as_int
from lorakit.findings import ERROR, INFO, WARNING, Finding, about
from lorakit.fixups import gc_enabled, gc_kwargs, is_plain_ddp
from lorakit.job import Job

FLASH_MODULES = {"flash_attn": "flash_attn", "flash_attention_2": "flash_attn",
                 "flash_attention_3": "flash_attn_interface"}
SMALL_STEPS = 10


def check_reentrant(job: Job, facts: Facts) -> list[Finding]:
    kwargs = gc_kwargs(job)
    if not isinstance(kwargs, dict) or not gc_enabled(job) or "use_reentrant" not in kwargs:
        return []
    key, reentrant = "args.gradient_checkpointing_kwargs", kwargs["use_reentrant"]
    if is_plain_ddp(job) and reentrant is True:
        return [about(job, ERROR, "layout.ddp.reentrant", key,
                        f"DDP with {job.world_size} ranks and use_reentrant true: LoRA backward fails under DDP",
                        "set gradient_checkpointing_kwargs: {\"use_reentrant\": false}: DDP cannot mark a parameter "
                        "ready twice, which reentrant checkpointing does")]
    if str(job.args.get("deepspeed", "")).startswith("zero3") and reentrant is False and _is_lora(job):
        # PEFT-specific: a full fine-tune may need non-reentrant checkpointing, and says so
        return [about(job, WARNING, "layout.zero3.no_reentrant", key,
                        "use_reentrant false with ZeRO-3: a known PEFT + ZeRO-3 checkpointing failure",
                        "remove gradient_checkpointing_kwargs and keep ms-swift's default under ZeRO-3")]
    return []


def check_installed(job: Job, facts: Facts) -> list[Finding]:
    """Only the target machine can settle these: warnings, and only for a launch here (a dry-run
    is often rendered on a laptop for a cluster)."""
    out: list[Finding] = []
    if not facts.here:
        return out
    if job.args.get("deepspeed") not in (None, "") and not facts.has_module("deepspeed"):
        out.append(about(job, WARNING, "env.deepspeed_missing", "args.deepspeed",
                           "deepspeed is not installed here", "on the machine that trains: pip install deepspeed"))
    impl = str(job.args.get("attn_impl", ""))
    module = FLASH_MODULES.get(impl)
    if module and not facts.has_module(module):
        out.append(about(job, WARNING, "env.flash_attn_missing", "args.attn_impl",
                           f"attn_impl {impl} needs {module}, which is not installed here",
                           "pip install flash-attn on an A100/H100-class machine, or use attn_impl sdpa"))
    return out


def effective_grad_accum(job: Job) -> tuple[int, bool]:
    """(steps, defaulted): ms-swift defaults it to ceil(16 / (batch x world))."""
    batch = as_int(job.args.get("per_device_train_batch_size", 1)) or 1
    given = as_int(job.args.get("gradient_accumulation_steps"))
    if given:
        return given, False
    try:
        return max(1, math.ceil(16 / batch / job.world_size)), True
    except OverflowError:  # a batch or world size beyond a float: the other checks say so
        return 1, True


def sequence_parallel(job: Job) -> int:
    """sequence_parallel_size when it splits the ranks (1 otherwise): that many ranks share each
    sample, so only world / sp of them are data-parallel (swift/sequence_parallel/
    sequence_parallel.py _init_device_mesh: dp_world_size = world_size // sp size)."""
    sp = as_int(job.args.get("sequence_parallel_size"))
    return sp if sp is not None and 1 < sp <= job.world_size and job.world_size % sp == 0 else 1


def check_global_batch(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "sft" or job.args.get("global_batch_size") is not None:
        return []  # fixups.derive_grad_accum already said how the global batch comes about
    batch = as_int(job.args.get("per_device_train_batch_size", 1)) or 1
    accum, defaulted = effective_grad_accum(job)
    world, sp = job.world_size, sequence_parallel(job)
    note = " (ms-swift's default ceil(16 / (batch x world)))" if defaulted else ""
    if sp == 1:
        return [about(job, INFO, "batch.global", "args.gradient_accumulation_steps",
                      f"global batch {batch * accum * world} = per-device {batch} x grad-accum {accum}{note} x "
                      f"{world} rank{'s' if world > 1 else ''}")]
    # ms-swift #5145: "8 GPUs x batch 1 x accumulation 2 = 16", but SP 8 makes one data-parallel rank
    dp = world // sp
    return [about(job, WARNING, "batch.global", "args.gradient_accumulation_steps",
                  f"global batch {batch * accum * dp} = per-device {batch} x grad-accum {accum}{note} x {dp} "
                  f"data-parallel rank{'s' if dp > 1 else ''}: sequence_parallel_size {sp} splits each sample over "
                  f"{sp} of the {world} ranks, so the batch is not x {world}",
                  f"for a global batch of {batch * accum * world}, raise gradient_accumulation_steps to "
                  f"{accum * sp} (or set global_batch_size: {batch * accum * world}, which counts data-parallel ranks)")]


def check_batch_sizes(job: Job, facts: Facts) -> list[Finding]:
    """transformers refuses a batch or accumulation below 1 only once the trainer is built."""
    out = []
    for key in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        value = job.args.get(key)
        if value is not None and (as_int(value) is None or as_int(value) < 1):
            if key == "per_device_eval_batch_size" and as_int(value) is not None and not _evaluates(job):
                # never read without evaluation: ms-swift trains (tests/test_real_failures.py)
                out.append(about(job, WARNING, "batch.invalid", f"args.{key}",
                                 f"{key} {value!r} is not a batch size; unused now (nothing is evaluated), it "
                                 "fails the run once evaluation is on", "set it to 1 or more"))
                continue
            out.append(about(job, ERROR, "batch.invalid", f"args.{key}",
                               f"{key} must be a whole number of at least 1, got {value!r}"))
    return out


def _evaluates(job: Job) -> bool:
    from lorakit.checks.policy import has_val_data  # policy's rule for "is there eval data"

    return has_val_data(job) and str(job.args.get("eval_strategy", "steps")) != "no"


def check_step_intervals(job: Job, facts: Facts) -> list[Finding]:
    out = []
    for key in ("save_steps", "eval_steps"):
        steps = as_int(job.args.get(key))
        if steps is not None and 0 < steps < SMALL_STEPS:
            out.append(about(job, WARNING, f"io.{key}", f"args.{key}",
                               f"{key} {steps}: a checkpoint/eval every {steps} steps can dominate run time",
                               "each save or evaluation stops training; use 50 or more for real runs"))
    return out


CHECKS = [check_reentrant, check_installed, check_batch_sizes, check_global_batch, check_step_intervals]
