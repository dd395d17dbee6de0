"""The DeepSpeed side of a job as `lorakit plan` models it: the ZeRO stage and offloads of
--deepspeed (ms-swift's named presets in swift/config/, a JSON file, inline JSON, or FSDP's nearest
match), and the bucket sizes a config file sets. Anything DeepSpeed would refuse is an error, not
a plan without ZeRO.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lorakit import planmath
from lorakit.errors import LorakitError
from lorakit.job import Job
from lorakit.values import as_float, as_int

ZERO_PRESET = re.compile(r"^zero([0-3])(_offload)?$")


def _zero_of_config(cfg: Any, where: str) -> tuple[int, bool, bool]:
    """A DeepSpeed config's ZeRO stage (DeepSpeed's default 0 when unset) and offloads; anything
    DeepSpeed would refuse is an error, not a plan without ZeRO."""
    if not isinstance(cfg, dict):
        raise LorakitError(f"{where}: a DeepSpeed config must be a JSON object, got {type(cfg).__name__}")
    zero = cfg.get("zero_optimization") or {}
    if not isinstance(zero, dict):
        raise LorakitError(f"{where}: zero_optimization must be an object, got {zero!r}",
                           hint='e.g. "zero_optimization": {"stage": 2}')
    stage = as_int(zero.get("stage", 0))
    if stage not in (0, 1, 2, 3):
        raise LorakitError(f"{where}: zero_optimization.stage {zero.get('stage')!r} is not a ZeRO stage "
                           "(0, 1, 2 or 3)", hint='e.g. "zero_optimization": {"stage": 2}')
    offload = []
    for key in ("offload_optimizer", "offload_param"):
        value = zero.get(key) or {}
        if not isinstance(value, dict):
            raise LorakitError(f"{where}: zero_optimization.{key} must be an object, got {value!r}",
                               hint=f'e.g. "{key}": {{"device": "cpu"}}')
        offload.append(str(value.get("device")) in ("cpu", "nvme"))
    return stage, offload[0], offload[1]


def zero_of(job: Job, notes: list) -> tuple[int, bool, bool]:
    """(ZeRO stage, optimizer offloaded, params offloaded) from --deepspeed (ms-swift's presets
    zero0..zero3[_offload] in swift/config/, a JSON file, or inline JSON), or FSDP's nearest match."""
    value = job.args.get("deepspeed")
    if job.args.get("fsdp") not in (None, "", False) and value in (None, ""):
        notes.append("FSDP is not modelled exactly: planned as ZeRO-3 (full sharding of params, grads "
                     "and optimizer states)")
        return 3, False, False
    if value in (None, ""):
        return 0, False, False
    where = f"deepspeed ({job.source_of('args.deepspeed') or 'preset'})"
    if isinstance(value, dict):
        return _zero_of_config(value, where)
    text = str(value).strip()
    named = ZERO_PRESET.match(text)
    if named:  # swift/config/zero2_offload.json offloads the optimizer, zero3_offload.json params too
        stage, offload = int(named.group(1)), bool(named.group(2))
        return stage, offload, offload and stage == 3
    if text.startswith("{"):
        try:
            return _zero_of_config(json.loads(text), where)
        except (ValueError, RecursionError) as exc:
            raise LorakitError(f"{where}: inline config is not valid JSON ({exc})") from None
    try:
        cfg = json.loads(Path(text).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # a file that exists only on the cluster, say
        notes.append(f"deepspeed {text!r} could not be read: planned without ZeRO")
        return 0, False, False
    return _zero_of_config(cfg, f"deepspeed {text}")


def _zero_config(job: Job) -> dict | None:
    """The DeepSpeed config's JSON when --deepspeed is a file or inline JSON; None for ms-swift's
    named presets (their sizes are planmath's SWIFT_* defaults) or an unreadable file."""
    value = job.args.get("deepspeed")
    if isinstance(value, dict):
        return value
    text = str(value or "").strip()
    if not text or ZERO_PRESET.match(text):
        return None
    try:
        cfg = json.loads(text) if text.startswith("{") else json.loads(Path(text).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return cfg if isinstance(cfg, dict) else None


def zero_sizes(job: Job) -> tuple[int | None, int | None]:
    """(reduce_bucket_size, stage3_max_live_parameters) of a DeepSpeed config file, DeepSpeed's
    own defaults (deepspeed/runtime/zero/config.py) where it leaves them out; None where ms-swift's
    preset or "auto" decides (planmath applies those)."""
    cfg = _zero_config(job)
    if cfg is None:
        return None, None
    zero = cfg.get("zero_optimization") if isinstance(cfg.get("zero_optimization"), dict) else {}
    out = []
    for key, default in (("reduce_bucket_size", planmath.DS_REDUCE_BUCKET),
                         ("stage3_max_live_parameters", planmath.DS_MAX_LIVE)):
        raw = zero.get(key, default)
        number = as_float(raw) if raw != "auto" else None
        out.append(int(number) if number is not None and number >= 0 else None)
    return out[0], out[1]
