"""Models and model types that the target ms-swift minor does not have yet (or any more).

The registry snapshots (swift_models_v3/v4.json) are the newest minor of each major. A user on an
older minor who copies `--model_type qwen2_5_vl` from today's docs gets "model_type:
'qwen2_5_vl' not in [...]" once the launch is under way (ms-swift #3004, on 3.0.3); one on 3.x
who names a model only 4.x registers gets "Model "Qwen/Qwen3.5-27B" is not supported because no
suitable `model_type` was found" after the download (#8106). swift_model_history.json
(scripts/gen_swift_model_history.py, read from every minor's wheel) says which minors have each
model_type, hub name and architecture.

How ms-swift resolves a model it is given without --model_type: it matches the model's name
against the registered hub ids, then maps config.json's first architecture to model types
(4.6.0 swift/model/model_meta.py get_model_info_meta; 3.12.6 swift/llm/model/register.py
get_model_info_meta). So a name the target lacks is a certain failure only when the architecture
of the model type that registers it elsewhere is unknown to the target as well.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from lorakit import flaghistory, localpath
from lorakit.checks.facts import Facts
from lorakit.swiftregistry import swift_model_name, swift_models
from lorakit.findings import ERROR, Finding, about
from lorakit.job import Job

HISTORY = Path(__file__).resolve().parents[1] / "data" / "swift_model_history.json"
COMMANDS = ("sft", "pt", "rlhf")


@lru_cache(maxsize=None)
def _history() -> dict:
    return json.loads(HISTORY.read_text(encoding="utf-8")) if HISTORY.is_file() else {}


def _order(major: int) -> list[str]:
    return [".".join(v.split(".")[:2]) for v in _history().get(str(major), {}).get("versions", [])]


def _lives(span: list[str] | None, minor: str, order: list[str]) -> bool:
    return span is not None and order.index(span[0]) <= order.index(minor) <= order.index(span[1])


def _target(job: Job) -> tuple[int, str] | None:
    """(major, minor) the job must fit: the named minor, else the major's snapshot minor."""
    major = job.swift_major
    order = _order(major)
    if not order:
        return None
    minor = flaghistory.target_minor(major, job.swift_version) or order[-1]
    return (major, minor) if minor in order else None


def _version(minor: str) -> str:
    return f"ms-swift {minor}"


def _type_finding(job: Job, major: int, minor: str, model_type: str) -> Finding | None:
    table = _history()[str(major)]
    order = _order(major)
    span = table["model_types"].get(model_type)
    if span is None or _lives(span, minor, order):
        return None  # unknown everywhere: checks/model.py says so with a did-you-mean
    if order.index(minor) < order.index(span[0]):
        code, what = "model.type.too_new", f"model_type {model_type!r} first appears in ms-swift {span[0]}"
        fix = f"upgrade ms-swift to {span[0]} or later (pip install 'ms-swift>={span[0]}')"
    else:
        code, what = "model.type.removed", f"model_type {model_type!r} was removed after ms-swift {span[1]}"
        fix = f"use ms-swift {span[1]}, or the model_type that replaced it in {_version(minor)}'s supported models"
    return about(job, ERROR, code, "args.model_type", f"{what}; {_version(minor)} refuses to start "
                 f"(\"model_type: '{model_type}' not in [...]\")",
                 fix + ", or drop model_type if ms-swift can tell it itself")


def present_type(job: Job, model_type: str) -> bool:
    """Whether the target minor registers model_type (checks/model.py asks before it calls a
    model_type the snapshot lacks invalid: an older minor may still have it)."""
    target = _target(job)
    if target is None:
        return False
    major, minor = target
    return _lives(_history()[str(major)]["model_types"].get(model_type), minor, _order(major))


def architecture_types(job: Job, arch: str, snapshot_types: list[str]) -> list[str]:
    """The model types the target minor maps `arch` to: the snapshot's own list (ms-swift's
    order) when the target is the snapshot's minor; for an older minor, the types that listed the
    architecture in that minor (the history's per-pair spans: deepseek_r1_distill took
    Qwen3ForCausalLM only in 3.5), plus any later minors dropped. Qwen3VLForConditionalGeneration
    is qwen3_vl alone on 3.9-3.11 and ambiguous only from 3.12 (qwen3_vl_emb, qwen3_vl_reranker)."""
    return _before_patch(job, arch, _in_minor(job, arch, snapshot_types))


def _before_patch(job: Job, arch: str, types: list[str]) -> list[str]:
    """Less the pairs a later patch of the target's minor brought, for a target named to a patch
    older than the snapshot's (3.12.1; an installed 3.6.0): the history is per minor (its last
    patch), and qwen3_vl_emb took Qwen3VLForConditionalGeneration only in 3.12.2."""
    from lorakit.flagpatches import patch_key

    version, snapshot = job.swift_version or "", (swift_models(job.swift_major) or {}).get("swift_version")
    target = patch_key(version)
    if target is None or version == snapshot:
        return types  # a major or a minor alone, or the snapshot itself: exact already
    minor = f"{target[0]}.{target[1]}"
    later = _history().get("type_architecture_patches", {}).get(str(job.swift_major), {}).get(minor, {})
    keep = []
    for model_type in types:
        first = patch_key((later.get(model_type) or {}).get(arch) or "")
        if first is None or target >= first:
            keep.append(model_type)
    return keep


def _in_minor(job: Job, arch: str, snapshot_types: list[str]) -> list[str]:
    major = job.swift_major
    minor = flaghistory.target_minor(major, job.swift_version)
    if minor is None or str(major) not in _history():
        return snapshot_types
    table, order = _history()[str(major)], _order(major)
    if minor not in order:
        return snapshot_types
    spans = table.get("type_architecture_spans") or {}

    def has(model_type: str) -> bool:  # the type lists the architecture in the target minor
        return _lives((spans.get(model_type) or {}).get(arch), minor, order)

    lives = [t for t in snapshot_types if has(t)]
    return lives + [t for t in spans if t not in snapshot_types and has(t)]


def _elsewhere(name: str, major: int) -> tuple[str, str, list[str]] | None:
    """Where a hub name is registered if not in the target: (first minor, model_type, archs),
    the target's own major first, then the newest other."""
    history = _history()
    for other in sorted((int(m) for m in history if m.isdigit()), key=lambda m: (m != major, -m)):
        table = history[str(other)]
        span = table["names"].get(name)
        if span is not None:
            model_type = table["name_types"][name]
            return span[0], model_type, table["type_architectures"].get(model_type, [])
    return None


def _name_finding(job: Job, major: int, minor: str, model: str) -> Finding | None:
    table = _history()[str(major)]
    order = _order(major)
    name = swift_model_name(model, major)
    if _lives(table["names"].get(name), minor, order):
        return None
    found = _elsewhere(name, major)
    if found is None:
        return None  # a model no minor registers: matched by its architecture after the download
    since, model_type, archs = found
    known = [a for a in archs if _lives(table["architectures"].get(a), minor, order)]
    if known or not archs:
        return None  # the target can still map its architecture to a model type
    later = order.index(since) > order.index(minor) if since in order else int(since.split(".")[0]) > major
    if not later:
        return None  # registered only by older minors: a removal, which ms-swift's docs name
    return about(job, ERROR, "model.type.too_new", "args.model",
                 f"{model} is registered from ms-swift {since} (model_type {model_type}, architecture "
                 f"{', '.join(archs)}); {_version(minor)} knows neither and refuses it after the download "
                 "(\"no suitable `model_type` was found\")",
                 f"upgrade ms-swift to {since} or later (pip install 'ms-swift>={since}'), or pick a model "
                 f"{_version(minor)} supports")


def _in_snapshot(job: Job, major: int, model_type, model: str) -> bool:
    """Whether the job targets the snapshot's own minor (or a newer one) and the snapshot
    registers the model_type or name: then the history has nothing to add, and it is not read
    (280 kB of JSON, ~3 ms of every dry-run)."""
    if flaghistory.target_minor(major, job.swift_version) is not None:
        return False
    table = swift_models(major) or {}
    if model_type not in (None, ""):
        return str(model_type) in (table.get("model_types") or {})
    return swift_model_name(model, major) in (table.get("names") or {})


def check_model_age(job: Job, facts: Facts) -> list[Finding]:
    model = job.args.get("model")
    if job.command not in COMMANDS or not isinstance(model, str) or not model:
        return []
    if _in_snapshot(job, job.swift_major, job.args.get("model_type"), model):
        return []
    target = _target(job)
    if target is None:
        return []
    major, minor = target
    model_type = job.args.get("model_type")
    if model_type not in (None, ""):
        found = _type_finding(job, major, minor, str(model_type))
        return [found] if found else []
    # a local dir is matched by its own config.json's architecture (checks/model.py reads it)
    if facts.find_model(model) is not None or localpath.looks_local(model):
        return []
    found = _name_finding(job, major, minor, model)
    return [found] if found else []


CHECKS = [check_model_age]
