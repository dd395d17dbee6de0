"""A full fine-tune in float16 with fp16 mixed precision (ms-swift #5718): every trainable weight is
fp16, and torch's GradScaler refuses fp16 gradients at the first optimizer step ("ValueError:
Attempting to unscale FP16 gradients.", torch/amp/grad_scaler.py unscale_grads_). ms-swift turns fp16
on for a float16 model by itself (4.6.0 swift/arguments/base_args/model_args.py:133-140
_init_mixed_precision, fp16 unless --fp16 false), taking the dtype from --torch_dtype or config.json.
LoRA trains fp32 adapters (peft casts them), and DeepSpeed scales its own fp16, so neither fails; on
the CPU accelerate uses no GradScaler (a 4.6.0 CPU run of exactly this trains). Needs a GPU to fail:
the source lines are the proof (tests/test_precision.py).
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, Finding, about
from lorakit.job import Job
from lorakit.values import as_bool

HALF = ("float16", "fp16", "half")


def _dtype(job: Job, facts: Facts) -> tuple[str, str] | None:
    """(the dtype the model trains in, where it came from) when it is float16."""
    given = job.args.get("torch_dtype")
    if given not in (None, ""):
        return (str(given), f"torch_dtype {given}") if str(given).lower() in HALF else None
    model = job.args.get("model")
    found = facts.find_model(str(model)) if isinstance(model, str) and model.strip() else None
    if found is None:
        return None
    from lorakit.checks.requires import config_of
    from pathlib import Path

    config = config_of(Path(found)) or {}
    text = config.get("torch_dtype") or config.get("dtype")
    return (str(text), f"{model}'s config.json torch_dtype {text} (no --torch_dtype)") \
        if isinstance(text, str) and text.lower() in HALF else None


def check_fp16_full(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in ("sft", "pt", "rlhf") or str(job.args.get("tuner_type", "lora")) != "full":
        return []
    if job.sharding == "deepspeed" or as_bool(job.args.get("use_cpu", False)) is True:
        return []
    if job.launch.gpus is not None and not job.launch.gpus.strip():
        return []  # CUDA_VISIBLE_DEVICES= : a CPU run
    if as_bool(job.args.get("fp16")) is False:
        return []
    half = _dtype(job, facts)
    if half is None:
        return []
    return [about(job, ERROR, "train.fp16.full", "args.torch_dtype",
                  f"a full fine-tune with {half[1]}: ms-swift turns on fp16 mixed precision, every trainable weight "
                  "is float16, and torch's GradScaler stops at the first step (\"ValueError: Attempting to unscale "
                  "FP16 gradients.\")",
                  "--torch_dtype bfloat16 where the GPU has it (Ampere or newer); else --torch_dtype float32 (fp16 "
                  "mixed precision over fp32 weights), or --fp16 false to train in plain float16, or a DeepSpeed "
                  "preset")]


CHECKS = [check_fp16_full]
