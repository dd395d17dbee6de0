"""`lorakit plan --simulate`: run the job's training step on fake tensors and report its peak.

The step itself (lorakit/simstep.py) runs in a subprocess under the Python that `swift` runs
under -- ms-swift's environment, which has torch, transformers and peft -- so lorakit never
imports torch. This module only builds the spec (the model's config.json, the LoRA settings, the
length and batch, checkpointing as ms-swift would set it) and reads the answer.

What a simulated peak cannot see: the CUDA context (~0.3-0.6 GiB), the caching allocator's
fragmentation and reserved-but-free blocks, NCCL's communication buffers, and DeepSpeed's own
buffers (the ZeRO buckets the analytic plan adds). It is one process's step: ZeRO/DDP/device_map
sharding is not simulated, only planned.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from lorakit import archtable, modelconfig
from lorakit.errors import EnvironmentProblem, LorakitError

SCRIPT = Path(__file__).with_name("simstep.py")
TIMEOUT_S = 1800  # a 70B model at 8k tokens is minutes of fake ops on a busy CPU


def config_of(model: str, info) -> dict:
    """The config.json the step builds the model from: the local one, else the table's entry."""
    if info.path:
        raw = modelconfig.read_config(info.path)
        if raw is None or not raw.get("model_type"):
            raise LorakitError(f"{info.path}: no config.json with a model_type to build the model from",
                               hint="simulate a downloaded model (its config.json) or a table model")
        return {k: v for k, v in raw.items() if k not in ("architectures", "auto_map", "quantization_config")}
    entry = archtable.arch_entry(model)
    if entry is None:  # load_model already refused unknown models; kept as a guard
        raise LorakitError(f"model {model!r}: no config to simulate")
    cfg = {k: entry[k] for k in archtable._FIELDS}
    cfg["model_type"] = entry["model_type"]
    if entry["model_type"] == "llama":
        cfg["attention_bias"] = False
    return cfg


def use_reentrant(lay: dict) -> bool:
    # swift/trainers/mixin.py::_fix_gradient_checkpointing: False under DDP without DeepSpeed
    # or FSDP, True otherwise (one process, or DeepSpeed).
    return not (lay["world_size"] > 1 and lay["zero_stage"] == 0)


def spec_of(model: str, info, lay: dict, alpha) -> dict:
    return {"config": config_of(model, info), "rank": lay["rank"], "alpha": alpha or 32,
            "targets": lay["targets"], "dropout": lay["lora_dropout"], "dtype": lay["dtype"],
            "micro_batch": lay["micro_batch"], "max_length": lay["max_length"],
            "grad_ckpt": lay["grad_ckpt"], "use_reentrant": use_reentrant(lay)}


def swift_python(env: dict | None = None) -> str:
    from lorakit import doctor

    swift, python = doctor.swift_python(dict(os.environ) if env is None else env)
    override = os.environ.get("LORAKIT_SIM_PYTHON")  # tests and odd installs: any env with torch
    if override:
        return override
    if swift is None or python is None:
        raise EnvironmentProblem("--simulate runs the step in ms-swift's Python, and no `swift` is on PATH",
                                 hint="install ms-swift (pip install ms-swift) or activate its environment")
    return python


def run_spec(spec, python: str, timeout: float = TIMEOUT_S):
    """simstep's answer for one spec (a list of answers for a list of specs, in one process);
    an EnvironmentProblem when it cannot give one."""
    try:
        done = subprocess.run([python, str(SCRIPT)], input=json.dumps(spec), capture_output=True,
                              text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"the simulated step did not finish ({exc.__class__.__name__}: {exc})",
                                 hint="check that ms-swift's Python has torch, transformers and peft") from None
    try:
        out = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EnvironmentProblem(f"the simulated step failed (exit {done.returncode}): {tail[0]}",
                                 hint=f"run it by hand: {python} {SCRIPT} < spec.json") from None
    for one in out if isinstance(out, list) else [out]:
        _raise_error(one)
    return out


def _raise_error(out: dict) -> None:
    if "error" in out:
        raise EnvironmentProblem(f"the simulated step failed: {out['error']}",
                                 hint="the simulation builds the model with transformers' AutoModelForCausalLM; "
                                      "an architecture it does not know cannot be simulated")


def simulate(model: str, info, lay: dict, alpha=None, python: str | None = None) -> dict:
    return run_spec(spec_of(model, info, lay, alpha), python or swift_python())


def shapes_info(model_dir, python: str | None = None):
    """ModelInfo for a local dir with a config.json but no safetensors: the model is built on
    the meta device in ms-swift's Python and its Linear modules read off (any architecture
    transformers knows; MoE experts that load as fused 3-D parameters are no Linear, so neither
    ms-swift's all-linear nor a target name reaches them, as with a downloaded checkpoint)."""
    from lorakit import modelinfo

    raw = modelconfig.read_config(model_dir)
    cfg = {k: v for k, v in (raw or {}).items() if k not in ("architectures", "auto_map", "quantization_config")}
    if not cfg.get("model_type"):
        raise LorakitError(f"{model_dir}: config.json names no model_type", hint="download the model's config.json")
    out = run_spec({"mode": "shapes", "config": cfg}, python or swift_python())
    parts = {"body": {}, "head": {}, "multimodal": {}, "experts": {}}
    for name, (i, o) in out["linears"].items():
        parts[modelinfo.part_of(name)][name] = (i, o)
    dims = modelinfo._dims(modelinfo._llm_config(raw))
    notes = ["Linear shapes from config.json alone: transformers built the model on the meta device "
             f"(transformers {out['versions']['transformers']}, in ms-swift's Python)"]
    if out["fused_experts"]:
        notes.append(f"{len(out['fused_experts'])} fused MoE expert parameters (3-D): no LoRA targets under "
                     "ms-swift's all-linear (find_all_linears matches Linear classes)")
    return modelinfo.ModelInfo(
        path=str(model_dir), model_type=raw.get("model_type"), architectures=list(raw.get("architectures") or []),
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)), quantization=None,
        total_params=out["total_params"], weights_bytes=0, linears=modelinfo.group_by_leaf(parts["body"]),
        head=modelinfo.group_by_leaf(parts["head"]), multimodal=modelinfo.group_by_leaf(parts["multimodal"]),
        embeddings=modelinfo.group_by_leaf({k: tuple(v) for k, v in out["embeddings"].items()}), notes=notes,
        torch_dtype=raw.get("torch_dtype") or raw.get("dtype"),
        qk_norm=bool(out.get("qk_norm")), **dims)
