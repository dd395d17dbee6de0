"""Full-parameter checkpoints (tuner_type full), which `train --resume` resumes too: they hold the
model's own weights, not an adapter, so checkpoints.scan (adapters only: what merge picks from)
does not list them.

Stdlib only, like checkpoints.py. What transformers' save_pretrained writes into checkpoint-N
(modeling_utils.py): model.safetensors, or shards model-0000K-of-0000N.safetensors and then
model.safetensors.index.json naming every shard (pytorch_model*.bin with safe_serialization
off); trainer.py's _save_checkpoint adds the optimizer, scheduler, trainer_state.json and RNG
state as for an adapter (lorakit.resume.state_problem).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from lorakit import checkpoints as ck
from lorakit.halfwritten import safetensors_problem
from lorakit.trainlog import read_json

SINGLE = ("model.safetensors", "pytorch_model.bin")
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def _one(path: Path) -> Optional[str]:
    if path.name.endswith(".safetensors"):
        return safetensors_problem(path)
    return f"{path.name} is empty" if path.stat().st_size == 0 else None


def weights_problem(ckpt: Path) -> Optional[str]:
    """Why checkpoint-N holds no whole model, or None."""
    for index in INDEXES:
        if not (ckpt / index).is_file():
            continue
        weight_map = (read_json(ckpt / index) or {}).get("weight_map")
        if not isinstance(weight_map, dict):
            return f"{index} has no weight_map (cut short?)"
        for shard in sorted({str(v) for v in weight_map.values()}):
            if not (ckpt / shard).is_file():
                return f"no {shard} (named in {index})"
            problem = _one(ckpt / shard)
            if problem:
                return problem
        return None
    for name in SINGLE:
        if (ckpt / name).is_file():
            return _one(ckpt / name)
    return "no model weights (model.safetensors, or its shards and model.safetensors.index.json)"


def _steps(run: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), d.resolve()) for d in ck.subdirs(run) for m in [ck._CKPT_RE.match(d.name)] if m]
    return sorted(found)


def runs(where: Path) -> list[ck.Run]:
    """The runs under `where` (a checkpoint-N, a vN run dir, or an output dir, two levels deep
    as checkpoints.scan looks) with their checkpoint-N dirs, whatever those hold."""
    where = Path(where).expanduser()
    if not where.is_dir():
        return []
    if ck._CKPT_RE.match(where.name):
        return [ck._build_run(where.parent, [(int(ck._CKPT_RE.match(where.name).group(1)), where.resolve())])]
    dirs, seen = [], set()
    level = [where]
    for _ in range(3):  # where, its children, theirs: output/<model>/vN-...
        below = []
        for d in level:
            if _steps(d) and d.resolve() not in seen:
                seen.add(d.resolve())
                dirs.append(d)
            below += [k for k in ck.subdirs(d) if not ck._CKPT_RE.match(k.name)]
        level = below
    return [ck._build_run(d, _steps(d)) for d in dirs]
