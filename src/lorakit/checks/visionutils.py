"""The qwen_vl_utils a Qwen-VL loader refuses, and the variables it parses from the environment.

The Qwen2-VL loaders (qwen2_vl, qwen2_5_vl, qvq, mimo_vl: ModelMeta.requires 'qwen_vl_utils>=0.0.6')
and the Qwen3-VL ones (qwen3_vl to qwen3_5 and the models built on them: '>=0.0.14') check the
installed qwen_vl_utils themselves before loading anything, and stop (ms-swift #6371):
- 4.6.0 swift/model/models/qwen.py:783-792 (3.12.6 swift/llm/model/model/qwen.py:787-798,
  since 3.10.1): Qwen2-VL takes 0.0.14+ or below 0.0.12: "ImportError: qwen_vl_utils<0.0.12 is
  required ... but found qwen_vl_utils==0.0.13"; none at all: PackageNotFoundError;
- 3.8.2 to 3.10.0: Qwen2-VL requires below 0.0.12 outright;
- 3.3.0 to 3.8.0: no version check, but patch_qwen_vl_utils reads `getattr(vision_process,
  'IMAGE_FACTOR')`, which 0.0.13+ no longer has: AttributeError (3.8.1 skips the names a
  vision_process lacks: the 3.8.1 wheel's qwen.py:669 hasattr);
- Qwen3-VL (3.9.0+): require_version('qwen_vl_utils>=0.0.14') (4.6.0 qwen.py:1122).
What the load then parses from the environment is checks/vlenv.py's. Only for a launch on this
machine whose `swift`'s environment can be read (Facts.packages), as checks/requires.py. A
qwen_vl_utils without metadata (a source tree on PYTHONPATH) is not judged where ms-swift only
imports it (before 3.8.2).
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, Finding, about
from lorakit.job import Job

QWEN2 = "qwen_vl_utils>=0.0.6"  # the Qwen2VLLoader family (3.12.6 get_model_tokenizer_qwen2_vl)
QWEN3 = ("qwen_vl_utils>=0.0.14", "qwen_vl_utils>0.0.14")  # Qwen3VLLoader and its subclasses
ENFORCED = (QWEN2, "qwen_vl_utils>=0.0.14")  # what the loaders check themselves (others: ms-swift's warning)

def _key(text: str | None) -> tuple | None:
    from lorakit.checks.requires import version_key

    return None if not text else version_key(text)


def family(table: dict, model_type: str | None) -> str | None:
    """'qwen2' or 'qwen3' for a model type whose loader checks qwen_vl_utils, else None."""
    requires = (table.get("model_types", {}).get(model_type or "") or {}).get("requires") or []
    specs = [spec.replace(" ", "") for spec in requires]
    if QWEN2 in specs:
        return "qwen2"
    if any(spec in QWEN3 for spec in specs):
        return "qwen3"
    return None


def judged(table: dict, model_type: str | None, swift: str | None) -> bool:
    """Whether this module judges the model's qwen_vl_utils requirement (requires.py then leaves it)."""
    have = _key(swift)
    return family(table, model_type) is not None and have is not None and have >= _key("3.3.0")


def refusal(kind: str, swift: str, vl: str | None) -> str | None:
    """What ms-swift `swift` says loading a `kind` model with qwen_vl_utils `vl` (None: absent), or None."""
    s, v = _key(swift), _key(vl)
    if vl is None:
        if kind == "qwen3":  # transformers' require_version names the whole requirement
            return "PackageNotFoundError: The 'qwen_vl_utils>=0.0.14' distribution was not found"
        if s < _key("3.8.2"):
            return None  # only imported there: a source tree without metadata loads (not judged)
        # 3.x's Qwen2-VL loader imports it before its check; 4.x checks the metadata first
        return ("ModuleNotFoundError: No module named 'qwen_vl_utils'" if s < _key("4")
                else "PackageNotFoundError: The 'qwen_vl_utils' distribution was not found")
    if v is None:
        return None
    if kind == "qwen3":
        return None if v >= _key("0.0.14") else \
            f"ImportError: qwen_vl_utils>=0.0.14 is required ... but found qwen_vl_utils=={vl}"
    if v < _key("0.0.12"):
        return None
    if s < _key("3.8.1"):
        return "AttributeError: module 'qwen_vl_utils.vision_process' has no attribute 'IMAGE_FACTOR'"
    if s < _key("3.8.2"):
        return None
    if s < _key("3.10.1") or v < _key("0.0.14"):
        return f"ImportError: qwen_vl_utils<0.0.12 is required ... but found qwen_vl_utils=={vl}"
    return None


def installed(job: Job, facts: Facts) -> tuple[str, str | None] | None:
    """(ms-swift's version, qwen_vl_utils' or None) in the environment `swift` runs in; None when
    that is not known or is the other major's (the launch refuses that: cli/run.py)."""
    from lorakit.checks.requires import swift_packages
    from lorakit.swiftenv import major_of

    packages = swift_packages(job, facts)
    swift = (packages or {}).get("ms_swift") or ""
    return (swift, packages.get("qwen_vl_utils")) if major_of(swift) == job.swift_major else None


def check_vl_utils(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in ("sft", "pt", "rlhf", "infer", "deploy", "export") or not facts.here:
        return []
    from lorakit.checks.pixels import loaded_model_type
    from lorakit.swiftregistry import swift_models

    table = swift_models(job.swift_major) or {}
    model_type = loaded_model_type(job, facts, table)
    kind = family(table, model_type)
    if kind is None:
        return []
    found = installed(job, facts)
    if found is None or not judged(table, model_type, found[0]):
        return []
    swift, vl = found
    said = refusal(kind, swift, vl)
    if said is None:
        return []
    wanted = "qwen_vl_utils>=0.0.14" if kind == "qwen3" or _key(swift) >= _key("3.10.1") else "qwen_vl_utils<0.0.12"
    have = f"qwen_vl_utils {vl}" if vl else "no qwen_vl_utils"
    return [about(job, ERROR, "model.requires.qwen_vl_utils", "args.model",
                  f"model_type {model_type} loads its images through qwen_vl_utils, and the environment `swift` "
                  f"runs in has {have}: ms-swift {swift} stops while loading the model ({said})",
                  f"pip install '{wanted}' in the environment `swift` runs from")]


CHECKS = [check_vl_utils]
