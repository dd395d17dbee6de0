"""fp16 mixed precision that cannot train (ms-swift #5718; its FAQ, Q56: "For full-parameter
fine-tuning, you cannot train with fp16").

- A full fine-tune in float16 with fp16 on: every trainable weight is fp16, and torch's GradScaler
  refuses fp16 gradients at the first optimizer step ("ValueError: Attempting to unscale FP16
  gradients.", torch/amp/grad_scaler.py unscale_grads_). ms-swift turns fp16 on for a float16 (or
  float32) model by itself: 3.3.1+ unless --fp16 is given (4.6.0 swift/arguments/base_args/
  model_args.py:133-140 _init_mixed_precision); 3.0.0-3.3.0.post1 whatever --fp16 says, and there
  --fp16/--bf16 pick the dtype when --torch_dtype is unset (3.3.0 model_args.py:101-117). The
  dtype is --torch_dtype, else config.json's. LoRA trains fp32 adapters (peft casts them);
  DeepSpeed and FSDP scale their own (accelerate's ShardedGradScaler allows fp16; FSDP2 upcasts);
  on the CPU and on Apple MPS no GradScaler runs (a 4.6.0 CPU run of exactly this trains). It needs
  a CUDA GPU to fail, so the source lines are the proof; Ascend's torch_npu scaler is not judged.
- --bf16 true beside the fp16 ms-swift turns on (3.3.1+): transformers' TrainingArguments stops
  before the model loads ("At most one of fp16 and bf16 can be True, but not both"), any tuner.
"""

from __future__ import annotations

import sys

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, Finding, about
from lorakit.job import Job
from lorakit.values import as_bool


def _before_3_3_1(job: Job) -> bool:
    from lorakit.checks.requires import version_key

    if job.swift_major != 3:
        return False
    have = version_key(job.swift_version or "")
    return have is not None and have < version_key("3.3.1")


def _config_dtype(job: Job, facts: Facts) -> str | None:
    model = job.args.get("model")
    found = facts.find_model(str(model)) if isinstance(model, str) and model.strip() else None
    if found is None:
        return None
    from pathlib import Path

    from lorakit.checks.requires import config_of

    config = config_of(Path(found)) or {}
    text = config.get("torch_dtype") or config.get("dtype")
    return text if isinstance(text, str) else None


def _dtype(job: Job, facts: Facts) -> tuple[str, str] | None:
    """(the dtype the model loads in, what said so), as far as lorakit can tell."""
    given = job.args.get("torch_dtype")
    if given not in (None, ""):
        return str(given), f"torch_dtype {given}"
    if _before_3_3_1(job):  # "Compatible with --fp16/--bf16": they pick the dtype there
        for key, dtype in (("fp16", "float16"), ("bf16", "bfloat16")):
            if as_bool(job.args.get(key)) is True:
                return dtype, f"--{key} true (ms-swift {job.swift_version} loads the model in {dtype})"
    from lorakit.checks.pixels import loaded_model_type
    from lorakit.swiftregistry import swift_models

    table = swift_models(job.swift_major) or {}
    model_type = loaded_model_type(job, facts, table) if job.args.get("model") not in (None, "") else None
    forced = (table.get("model_types", {}).get(model_type or "") or {}).get("torch_dtype")
    if forced:  # ModelMeta.torch_dtype wins over config.json (4.6.0 swift/model/model_meta.py:295-296,
        # 3.12.6 swift/llm/model/register.py the same)
        return forced, f"model_type {model_type}, which ms-swift loads in {forced}"
    text = _config_dtype(job, facts)
    return (text, f"{job.args.get('model')}'s config.json torch_dtype {text} (no --torch_dtype)") if text else None


def _on_gpu(job: Job, facts: Facts) -> bool:
    if as_bool(job.args.get("use_cpu", False)) is True:
        return False
    if job.launch.gpus is not None and not job.launch.gpus.strip():
        return False  # CUDA_VISIBLE_DEVICES= : a CPU run
    if job.launch.device_var not in (None, "", "CUDA_VISIBLE_DEVICES"):
        return False  # Ascend / other accelerators: their scaler is not judged here
    return not (facts.here and sys.platform == "darwin")  # MPS: ms-swift turns fp16 off (3.1.0+)


def check_fp16(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in ("sft", "pt", "rlhf"):
        return []
    half = _dtype(job, facts)
    fp16, bf16 = as_bool(job.args.get("fp16")), as_bool(job.args.get("bf16"))
    old = _before_3_3_1(job)
    if half is None or str(half[0]).lower() not in ("float16", "float32"):
        return []
    if not old and bf16 is True and fp16 is not False:
        why = "--fp16 true" if fp16 is True else f"{half[1]}, for which ms-swift turns fp16 on"
        return [about(job, ERROR, "train.fp16_bf16", "args.bf16",
                      f"--bf16 true beside {why}: transformers' TrainingArguments stops before the model loads "
                      "(\"At most one of fp16 and bf16 can be True, but not both\")",
                      "add --fp16 false to train in bf16" + ("" if str(half[0]).lower() == "float32" else
                                                              ", or load the model with --torch_dtype bfloat16"))]
    if str(half[0]).lower() != "float16" or str(job.args.get("tuner_type", "lora")) != "full":
        return []
    if job.sharding is not None or not _on_gpu(job, facts) or (fp16 is False and not old):
        return []
    escape = "" if old else ", or --fp16 false to train in plain float16"
    overridden = (f"; ms-swift {job.swift_version} turns fp16 on whatever --fp16 says (3.3.1 and later follow it)"
                  if old and fp16 is False else "")
    return [about(job, ERROR, "train.fp16.full", "args.torch_dtype",
                  f"a full fine-tune with {half[1]}: ms-swift turns on fp16 mixed precision, every trainable weight "
                  "is float16, and torch's GradScaler stops at the first step (\"ValueError: Attempting to unscale "
                  f"FP16 gradients.\"){overridden}",
                  "--torch_dtype bfloat16 where the GPU has it (Ampere or newer); else --torch_dtype float32 (fp16 "
                  f"mixed precision over fp32 weights){escape}, or a DeepSpeed preset")]


CHECKS = [check_fp16]
