"""Pre-flight for `lorakit merge`: what must hold before ms-swift spends minutes loading a model.

Stdlib only, like checkpoints.py: it runs on --dry-run too, and reads config.json and file sizes,
never weights.

- The base model: ms-swift's export reads it from the checkpoint's args.json unless --model is
  given (base_args.py `load_args_from_ckpt` fills `model` only when it is unset), and treats it as
  a local dir when the path exists, else as a hub id, except that a path starting with '/' that
  does not exist is an error (utils/hub_utils.py `safe_snapshot_download`). That error comes after
  ms-swift has started; lorakit says it first and names the file that holds the stale path.
- Quantized bases: PEFT cannot fold a LoRA delta into GPTQ/AWQ packed integer weights; with
  bitsandbytes it dequantizes, merges and re-quantizes, which loses precision
  (https://github.com/huggingface/peft/issues/2321, cited by pipelines/export/merge_lora.py).
- Disk: the merged model is as large as the base's weights; a disk that fills up halfway leaves
  a broken model after minutes of work.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from lorakit.errors import EnvironmentProblem, LorakitError
from lorakit.findings import WARNING, Finding
from lorakit.modelinfo import find_local_model

REFUSED = {"gptq": "GPTQ", "awq": "AWQ"}  # quant_method in config.json -> how users spell it


@dataclass(frozen=True)
class Base:
    model: str  # as ms-swift will get it: a hub id or a path
    source: str  # where lorakit read it: a file, or "--model"
    local: Optional[Path]  # the directory holding its config.json; None: a hub id not cached here


def free_bytes(path: Path) -> int:
    """Free space for an unprivileged writer on the filesystem holding `path` (which exists).
    Tests replace this function to simulate a full disk."""
    return shutil.disk_usage(str(path)).free


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", "~", "./", "../")) or os.path.isabs(model)


def resolve_base(model: Optional[str], source: str) -> Base:
    """`model` as the checkpoint (or --model) names it -> Base; exit 2 if it is a path that is gone."""
    if not model:
        raise LorakitError(f"cannot tell which base model the adapter belongs to ({source})",
                           hint="pass it with --model PATH_OR_HUB_ID")
    from lorakit.localpath import shown, unusable

    if not isinstance(model, str):  # an args.json written by hand: {"model": 5}
        raise LorakitError(f"{source} names the base model as {model!r}, which is no path and no hub id",
                           hint="pass the base model with --model PATH_OR_HUB_ID")
    why = unusable(model)
    if why is not None:
        raise LorakitError(f"base model {shown(model)} (named by {source}) is no path and no hub id: {why}",
                           hint="pass the base model with --model PATH_OR_HUB_ID")
    path = Path(model).expanduser()
    if path.is_dir():
        return Base(model, source, path.resolve())
    if _looks_like_path(model):
        what = "is not a directory" if path.exists() else "does not exist"
        raise LorakitError(
            f"base model {model} {what} (named by {source})",
            hint="if the model moved, pass its new location with --model PATH (or its hub id)",
        )
    # a hub id: its local copy, if ms-swift (ModelScope) or HF already downloaded it
    return Base(model, source, find_local_model(model))


def _quant_method(base: Base) -> Optional[str]:
    try:
        config = json.loads((base.local / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    quant = config.get("quantization_config") if isinstance(config, dict) else None
    method = quant.get("quant_method") if isinstance(quant, dict) else None
    return str(method).lower() if method else None


def check_quantization(base: Base) -> list[Finding]:
    """Exit 2 for GPTQ/AWQ bases; a warning for bitsandbytes and other quantizers."""
    if base.local is None:
        return []
    method = _quant_method(base)
    where = base.local / "config.json"
    if method in REFUSED:
        name = REFUSED[method]
        raise LorakitError(
            f"base model {base.model} is {name}-quantized (quantization_config in {where}): "
            f"a LoRA adapter cannot be merged into {name} weights",
            hint=f"merge into the unquantized model it was made from (--model ORIGINAL), then quantize "
                 f"the merged model if you need to (swift export --quant_method {method})",
        )
    if method == "bitsandbytes":
        return [Finding(WARNING, "merge.base.bnb",
                        f"base model {base.model} is bitsandbytes-quantized ({where}): PEFT dequantizes "
                        "it to merge and re-quantizes the result, which loses precision",
                        "merge into the unquantized model instead (--model ORIGINAL) for an exact result")]
    if method:
        return [Finding(WARNING, "merge.base.quantized",
                        f"base model {base.model} is quantized with {method} ({where}): PEFT may be "
                        "unable to merge into it, or lose precision",
                        "merge into the unquantized model instead (--model ORIGINAL)")]
    return []


def _indexed(model_dir: Path, index: str) -> list[Path] | None:
    """The shard files an index names (weight_map), or None without a readable index."""
    try:
        names = json.loads((model_dir / index).read_text(encoding="utf-8"))["weight_map"].values()
        return [model_dir / n for n in sorted(set(names))]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def weights_bytes(model_dir: Path) -> int:
    """Size of the model's weights: the shards its index names, else its safetensors files, else
    its *.bin files. Only the index: some repos ship both a consolidated model.safetensors and
    the sharded model-0000N-of-0000M.safetensors, which a plain sum would count twice."""
    for index, pattern in (("model.safetensors.index.json", "*.safetensors"),
                           ("pytorch_model.bin.index.json", "*.bin")):
        files = _indexed(model_dir, index)
        if files is None:
            files = [f for f in model_dir.glob(pattern) if f.name != "training_args.bin"]
        files = [f for f in files if f.is_file()]
        if files:
            return sum(f.stat().st_size for f in files)
    return 0


def existing_ancestor(path: Path) -> Path:
    """`path` if it exists, else its nearest parent that does: where it would be written."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_disk(base: Base, write_to: Path) -> Optional[str]:
    """Exit 1 if the disk under `write_to` cannot hold the base's weights; else a note to print."""
    size = weights_bytes(base.local) if base.local else 0
    if not size:
        return f"free disk not checked: the size of {base.model} is unknown here"
    where = existing_ancestor(write_to)
    free = free_bytes(where)
    if free < size:
        raise EnvironmentProblem(
            f"not enough free disk for the merged model: {human(free)} free at {where}, "
            f"the base model's weights take {human(size)} ({base.local})",
            hint="free some space, or pass --output-dir on a disk with room",
        )
    return None
