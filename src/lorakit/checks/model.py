"""Model-aware rules: a local model's files are well-formed, target_modules against the model's
real Linear layers, and whether ms-swift can tell a local model's type on its own.

ms-swift only finds a wrong target after the weights have loaded ("Target modules {...} not
found in the base model"); lorakit reads config.json and the safetensors headers instead,
through modelconfig, which checks every field it reads.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from lorakit import archtable, modelconfig, modelinfo, planmath
from lorakit.checks.facts import Facts
from lorakit.checks.lora import _is_lora
from lorakit.errors import LorakitError
from lorakit.findings import ERROR, WARNING, Finding
from lorakit.job import Job
from lorakit.values import finding

KEY = "args.target_modules"
SHOWN = 12  # how many of the model's Linear names a message lists


def _targets(job: Job) -> list[str]:
    value = job.args.get("target_modules", ["all-linear"])  # ms-swift's default
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _names(names) -> str:
    names = sorted(names)
    more = f", ... ({len(names)} in all)" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def check_model_files(job: Job, facts: Facts) -> list[Finding]:
    """A local model whose config.json, index or safetensors headers are malformed is an error
    (ms-swift would fail loading it); a shard the index names but the disk lacks, a warning."""
    model = job.args.get("model")
    local = facts.find_model(model) if isinstance(model, str) else None
    if local is None:
        return []
    try:
        modelinfo.load_model_info(local)
    except modelconfig.ModelFileError as exc:
        return [finding(job, ERROR, exc.finding_code, "args.model", exc.message, exc.hint or "")]
    except LorakitError as exc:
        return [finding(job, WARNING, "model.unreadable", "args.model", exc.message, exc.hint or "")]
    return []


def check_targets(job: Job, facts: Facts) -> list[Finding]:
    model = job.args.get("model")
    if not _is_lora(job) or not isinstance(model, str):
        return []
    targets = _targets(job)
    local = facts.find_model(model)
    if local is not None:
        try:
            info = modelinfo.load_model_info(local)
        except LorakitError:
            return []  # check_model_files reports it
        if info is None:
            return []
        _, unknown = planmath.resolve_targets(info, targets)
        if not unknown:
            return []
        return [finding(job, ERROR, "model.targets.unknown", KEY,
                        f"target_modules {', '.join(unknown)} not in {local}: ms-swift would fail after "
                        f"loading the weights", f"its Linear layers: {_names(info.linears)}")]
    info = archtable.arch_info(model)
    if info is not None:
        _, unknown = planmath.resolve_targets(info, targets)
        names, where = set(info.linears), f"{model}'s published architecture"
    else:
        family = archtable.family_linear_names(model)
        if family is None:
            return []
        specials = (planmath.ALL_LINEAR, planmath.ALL_EMBEDDING, planmath.ALL_NORM)
        names, where = family[1], f"the {family[0]} family's usual layers"
        unknown = [t for t in targets if t not in specials and t.rsplit(".", 1)[-1] not in names]
    if not unknown:
        return []
    return [finding(job, WARNING, "model.targets.unlikely", KEY,
                    f"target_modules {', '.join(unknown)} not among {where} (the model is not local, "
                    "so lorakit cannot read its layers)", f"usual Linear layers: {_names(names)}")]


@lru_cache(maxsize=None)
def _swift_models(major: int) -> dict | None:
    path = Path(__file__).resolve().parents[1] / "data" / f"swift_models_v{major}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _model_name(path: Path) -> str:
    # swift/model/model_meta.py get_model_name: the last path part, ModelScope's '___' is '.'
    return path.name.replace("___", ".").lower()


def check_model_type(job: Job, facts: Facts) -> list[Finding]:
    model = job.args.get("model")
    if job.command != "sft" or not isinstance(model, str) or job.args.get("model_type"):
        return []
    path = Path(model).expanduser()
    table = _swift_models(job.swift_major) or _swift_models(4)
    if not path.is_dir() or table is None or (path / "args.json").is_file():
        return []
    if _model_name(path) in table["names"]:
        return []  # ms-swift matches the directory name to a registered model
    try:
        config = modelconfig.read_config(path)
    except LorakitError:
        return []  # check_model_files reports it
    if config is None:
        return []
    arch = (config.get("architectures") or ["null"])[0]
    types = table["architectures"].get(arch, [])
    if len(types) > 1:
        return [finding(job, WARNING, "model.type.ambiguous", "args.model",
                        f"ms-swift cannot tell {path.name}'s model_type: {arch} matches {', '.join(types)}",
                        f"set model_type: {types[0]} (and the matching template) in args")]
    if not types:
        return [finding(job, WARNING, "model.type.unknown", "args.model",
                        f"ms-swift {job.swift_major}.x has no model_type for architecture {arch}",
                        "set model_type and template in args, or check ms-swift's supported models")]
    return []


CHECKS = [check_model_files, check_targets, check_model_type]
