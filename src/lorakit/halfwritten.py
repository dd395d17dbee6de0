"""Tell a whole save from one a killed or crashed run left half-written, without reading weights.

Stdlib only, like checkpoints.py. What a save writes, in order:
- peft's PeftModel.save_pretrained (peft_model.py): adapter_model.safetensors (or .bin with
  safe_serialization off), then adapter_config.json; ms-swift's SwiftModel.save_pretrained puts
  the same files under default/ (tuners/base.py).
- transformers' Trainer._save_checkpoint: the model (above), optimizer/scheduler, then
  trainer_state.json, then rng_state.pth; a checkpoint-N without a readable trainer_state.json
  was cut short before its save finished.
- A safetensors file is an 8-byte little-endian header length, a JSON header whose tensors give
  data_offsets [start, end] into the data after it, then the data: whole when
  8 + header length + the largest end == the file's size.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Optional

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")  # peft tries them in this order


def safetensors_problem(path: Path) -> Optional[str]:
    """Why the safetensors file at `path` is not whole, or None when it is."""
    name = path.name
    try:
        if not path.is_file():  # a FIFO would block the read forever
            return f"{name} is not a regular file"
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{name} is {size} bytes: too short for a safetensors header"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"{name} is cut short: its header alone should take {n} bytes, the file holds {size - 8}"
            raw = f.read(n)
    except OSError as exc:
        return f"{name} cannot be read: {exc.strerror}"
    try:
        header = json.loads(raw)  # RecursionError: a header nested past Python's stack
        ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
        expected = 8 + n + max((int(e) for e in ends), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        return f"{name} has no readable safetensors header"
    if size < expected:
        return f"{name} is cut short: {size} of {expected} bytes"
    if size > expected:
        return f"{name} is {size} bytes but its header accounts for {expected}"
    return None


def adapter_dir(ckpt: Path) -> Path:
    """Where the adapter files are: the checkpoint itself, or default/ (SwiftModel layout).
    adapter_config.json decides; without one, wherever the weights are."""
    default = ckpt / "default"
    for names in ((ADAPTER_CONFIG,), ADAPTER_WEIGHTS):
        here, there = (any((d / n).is_file() for n in names) for d in (ckpt, default))
        if here or there:
            return ckpt if here else default
    return ckpt


def has_adapter_files(d: Path) -> bool:
    """adapter_config.json or adapter weights, here or under default/: an adapter, maybe half-saved."""
    names = (ADAPTER_CONFIG, *ADAPTER_WEIGHTS)
    return any((d / sub / name).is_file() for sub in ("", "default") for name in names)


def _trainer_state_problem(ckpt: Path) -> Optional[str]:
    path = ckpt / "trainer_state.json"
    if not path.is_file():
        return "no trainer_state.json (the Trainer writes it last: the save did not finish)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: nested past Python's stack
        return "trainer_state.json does not parse (cut short?)"
    return None if isinstance(data, dict) else "trainer_state.json holds no JSON object"


# What no save leaves: the problem is not a cut-short save (mergepick words its hint by this)
NOT_A_FILE = "not a file"


def _kind(path: Path) -> Optional[str]:
    """What is at `path` when something is there but no regular file (None: nothing is): calling
    it missing sends the user looking for a save that is there."""
    from lorakit.localpath import special_kind

    if path.is_symlink() and not path.exists():
        return "a link to nothing"
    try:
        return special_kind(path.stat().st_mode)
    except OSError:
        return None


def checkpoint_problem(ckpt: Path, *, training: bool) -> Optional[str]:
    """Why `ckpt` is not a whole adapter checkpoint, or None. `training`: a Trainer's
    checkpoint-N, which must also hold a trainer_state.json that parses."""
    where = adapter_dir(ckpt)
    prefix = "default/" if where != ckpt else ""
    config = where / ADAPTER_CONFIG
    if not config.is_file():
        kind = _kind(config)
        if kind:
            return f"{prefix}{ADAPTER_CONFIG} is {kind}, {NOT_A_FILE} (peft reads it as a JSON file)"
        return f"no {prefix}{ADAPTER_CONFIG} (peft writes it after the weights: the save did not finish)"
    safetensors, bin_file = (where / w for w in ADAPTER_WEIGHTS)
    if safetensors.exists():
        problem = safetensors_problem(safetensors)
        if problem:
            return prefix + problem
    elif bin_file.exists():
        if bin_file.stat().st_size == 0:
            return f"{prefix}{bin_file.name} is empty"
    else:
        return f"no adapter weights ({prefix}adapter_model.safetensors or {prefix}adapter_model.bin)"
    return _trainer_state_problem(ckpt) if training else None
