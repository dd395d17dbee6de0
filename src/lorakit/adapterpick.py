"""--adapters for rlhf, infer, deploy and eval: merge's discovery (mergepick) for each value.

A value is a checkpoint-N dir, a run dir or a training output root (the newest run's last
complete checkpoint, as `lorakit merge`), or a hub adapter id, rendered as given. deploy (and
eval, which deploys) also takes ms-swift's `name=path` (arguments/deploy_args.py
`_init_adapters` splits on '='): the name is kept, the path is discovered.

Stdlib only: it runs on --dry-run too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from lorakit import checkpoints, mergepick
from lorakit.errors import LorakitError


@dataclass(frozen=True)
class Adapter:
    given: str  # what the user wrote (without the name)
    rendered: str  # what ms-swift gets: the absolute checkpoint-N dir, or the hub id
    name: Optional[str] = None  # deploy's name=path
    checkpoint: Optional[Path] = None  # None for a hub adapter
    reason: str = ""
    skipped: list = field(default_factory=list)

    @property
    def argv_item(self) -> str:
        return f"{self.name}={self.rendered}" if self.name else self.rendered


def split_name(value: str, option: str, named: bool) -> tuple[Optional[str], str]:
    """'name=path' -> ('name', 'path') where ms-swift reads names (deploy); else (None, value)."""
    if not named or "=" not in value:
        return None, value
    parts = value.split("=")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        # deploy_args.py: `adapter_name, adapter_path = adapter.split('=')` fails on any other shape
        raise LorakitError(f"{option} {value!r}: ms-swift reads NAME=PATH with one '=' (a name and a path)",
                           hint="e.g. --adapters sft=output/v0-20260101-120000; a path holding '=' cannot be named")
    return parts[0], parts[1]


def no_set_adapters(sets: list[str], command: str) -> None:
    """Beside --adapters, `--set adapters=X` was replaced by the picked checkpoint without a word."""
    for item in sets:
        if item.partition("=")[0].strip().removeprefix("args.").replace("-", "_") == "adapters":
            raise LorakitError(f"--set {item}: lorakit {command} renders --adapters from its --adapters option",
                               hint="give the adapter as --adapters PATH, not --set")


def take_adapters(extra: list[str], given: list[str]) -> tuple[list[str], list[str]]:
    """(adapters, the other flags): `-- --adapters A B` as ms-swift's docs write it (nargs '+': the
    words up to the next option) joins lorakit's --adapters, so it gets the same discovery, base and
    ref_adapters; without this it was dropped when --adapters was given too, and otherwise skipped
    them (an rlhf job then kept the preset's model as the base)."""
    out, rest, i = [], [], 0
    while i < len(extra):
        word = extra[i]
        if word == "--adapters" or word.startswith("--adapters="):
            values = [word.split("=", 1)[1]] if "=" in word else []
            i += 1
            while "=" not in word and i < len(extra) and not extra[i].startswith("-"):
                values.append(extra[i])
                i += 1
            out += values
            continue
        rest.append(word)
        i += 1
    if out and given:
        raise LorakitError(f"--adapters is given twice: {' '.join(given)} and, after --, {' '.join(out)}",
                           hint="give it once, before -- (lorakit finds the checkpoint and its base)")
    return (out or given), rest


def pick(value: str, option: str = "--adapters", how: str = "last", *, named: bool = False) -> Adapter:
    name, path = split_name(value, option, named)
    mergepick.require_path(path, option)
    hub = mergepick.hub_adapter(path)
    if hub is not None:
        return Adapter(path, hub, name, reason=f"{path} is not a local path: a hub adapter ms-swift downloads")
    try:
        chosen, reason, skipped = mergepick.pick(path, how)
    except LorakitError:
        whole = whole_model(Path(path).expanduser())
        if whole is None:
            raise
        raise LorakitError(f"{option} {path}: {whole} holds a whole model (config.json and its weights, no "
                           "adapter_config.json): a tuner_type full checkpoint or a merged model, not a LoRA "
                           "adapter", hint=f"start from it as the base model: --model {whole} (and no {option})") from None
    # absolute: ms-swift records it in args.json, and a relative path that is missing becomes a hub id
    return Adapter(path, str(chosen.path), name, chosen.path, reason, list(skipped))


def whole_model(p: Path) -> Optional[Path]:
    """The model dir at p (a merged model, a full checkpoint-N), or the newest full checkpoint of
    the runs under p; None when there is none. Merge's messages speak of merging again; here the
    fix is --model, as ms-swift takes a full checkpoint (its docs: `--model output/.../checkpoint-N`)."""
    from lorakit import fullckpt

    if (p / "config.json").is_file() and fullckpt.weights_problem(p) is None:
        return Path(os.path.abspath(p))
    runs = [r for r in fullckpt.runs(p) if r.checkpoints]
    whole = [c.path for r in sorted(runs, key=lambda r: r.timestamp) for c in r.checkpoints
             if (c.path / "config.json").is_file() and fullckpt.weights_problem(c.path) is None]
    return whole[-1] if whole else None


def _adapter_config(checkpoint: Optional[Path]) -> dict:
    """The checkpoint's adapter_config.json (peft), or {} when there is none to read."""
    if checkpoint is None:
        return {}
    for config in (checkpoint / "adapter_config.json", checkpoint / "default" / "adapter_config.json"):
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def lora_rank(checkpoint: Optional[Path]) -> Optional[int]:
    """adapter_config.json's `r` (peft), or None when there is none to read."""
    rank = _adapter_config(checkpoint).get("r")
    return rank if isinstance(rank, int) and not isinstance(rank, bool) else None


def lora_targets(checkpoint: Optional[Path]) -> list[str]:
    """adapter_config.json's target_modules as a list of names ([] for a regex string or none)."""
    targets = _adapter_config(checkpoint).get("target_modules")
    return [t for t in targets if isinstance(t, str)] if isinstance(targets, list) else []


def base_of(adapter: Adapter) -> dict:
    """model/model_type/template/torch_dtype from the checkpoint's args.json ({} for a hub adapter)."""
    return checkpoints.base_model_of(adapter.checkpoint) if adapter.checkpoint is not None else {}


def other_base(model, who: str, base: dict) -> list:
    """A warning when the model given (by `who`) is not the base the adapter's args.json names."""
    from lorakit.findings import WARNING, Finding

    if not base.get("model") or str(model) == str(base["model"]):
        return []
    return [Finding(WARNING, "adapters.base.other",
                    f"model {model} ({who}) is not the base the adapter was trained on: {base['model']} "
                    f"({base['source']})", hint=f"fine for a copy of the same weights; else drop {who}: the "
                    "adapter's own base is used", key="args.model", file=who)]


def with_base(job, adapter: Adapter, *, keys=("model", "model_type", "template")):
    """The job with the base model (and its model_type/template) the checkpoint was trained on,
    unless the command line named a model: `swift rlhf` does not read the adapter's args.json
    (SftArguments.load_args is False), so a preset's model would silently be the wrong base.
    Each change is said as an info finding. Returns (job, base dict)."""
    from dataclasses import replace

    from lorakit.findings import INFO, Finding

    base = base_of(adapter)
    if not base.get("model"):
        return job, base
    args, sources, notes = dict(job.args), dict(job.sources), []
    for key in keys:
        if base.get(key) in (None, ""):
            continue
        who = job.source_of(f"args.{key}")
        if key == "model" and who.startswith("-"):
            # --model / --set model=...: the user's word; said when it is not the adapter's base, since
            # peft loads an adapter onto another architecture only to fail on shapes (or answer nonsense)
            notes += other_base(args.get("model"), who, base)
            continue
        if key != "model" and key in args:
            continue
        if args.get(key) == base[key]:
            continue
        was = f" (replaces {args[key]} from {who})" if key in args else ""
        args[key], sources[f"args.{key}"] = base[key], base["source"]
        notes.append(Finding(INFO, "adapters.base", f"{key} {base[key]} from {base['source']}{was}",
                             hint="the adapter was trained on it; pass --model to use another base",
                             key=f"args.{key}", file=base["source"]))
    return replace(job, args=args, sources=sources, adjustments=(*job.adjustments, *notes)), base
