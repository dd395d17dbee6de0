"""The qwen_vl_utils a Qwen-VL loader refuses, and the variables it parses from the environment.

The Qwen2-VL loaders (qwen2_vl, qwen2_5_vl, qvq, mimo_vl: ModelMeta.requires 'qwen_vl_utils>=0.0.6')
and the Qwen3-VL ones (qwen3_vl to qwen3_5 and the models built on them: '>=0.0.14') check the
installed qwen_vl_utils themselves before loading anything, and stop (ms-swift #6371):
- 4.6.0 swift/model/models/qwen.py:783-792 (3.12.6 swift/llm/model/model/qwen.py:787-798,
  since 3.10.1): Qwen2-VL takes 0.0.14+ or below 0.0.12: "ImportError: qwen_vl_utils<0.0.12 is
  required ... but found qwen_vl_utils==0.0.13"; none at all: PackageNotFoundError;
- 3.8.2 to 3.10.0: Qwen2-VL requires below 0.0.12 outright;
- 3.3.0 to 3.8.1: no version check, but patch_qwen_vl_utils reads `getattr(vision_process,
  'IMAGE_FACTOR')`, which 0.0.13+ no longer has: AttributeError;
- Qwen3-VL (3.9.0+): require_version('qwen_vl_utils>=0.0.14') (4.6.0 qwen.py:1122).
Then patch_qwen_vl_utils parses every variable the installed vision_process defines with
get_env_args (int(), float() for FPS), so an empty or non-numeric MAX_PIXELS / FPS_MAX_FRAMES /
IMAGE_MAX_TOKEN_NUM stops the load too. Only for a launch on this machine whose `swift`'s
environment can be read (Facts.packages), as checks/requires.py.
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, Finding, about
from lorakit.job import Job

QWEN2 = "qwen_vl_utils>=0.0.6"  # the Qwen2VLLoader family (3.12.6 get_model_tokenizer_qwen2_vl)
QWEN3 = ("qwen_vl_utils>=0.0.14", "qwen_vl_utils>0.0.14")  # Qwen3VLLoader and its subclasses

# What qwen_vl_utils' vision_process defines, so what patch_qwen_vl_utils parses: up to 0.0.11 the
# caps are pixels; 0.0.13 and 0.0.14 (0.0.12 was never on PyPI) count visual tokens instead.
PIXEL_NAMES = ("IMAGE_FACTOR", "MIN_PIXELS", "MAX_PIXELS", "MAX_RATIO", "VIDEO_MIN_PIXELS", "VIDEO_MAX_PIXELS",
               "VIDEO_TOTAL_PIXELS", "FRAME_FACTOR", "FPS", "FPS_MIN_FRAMES", "FPS_MAX_FRAMES")
TOKEN_NAMES = ("MAX_RATIO", "SPATIAL_MERGE_SIZE", "IMAGE_MIN_TOKEN_NUM", "IMAGE_MAX_TOKEN_NUM",
               "VIDEO_MIN_TOKEN_NUM", "VIDEO_MAX_TOKEN_NUM", "FPS", "FRAME_FACTOR", "FPS_MIN_FRAMES", "FPS_MAX_FRAMES")
# ...and with 0.0.14, 3.10.1+'s compat_qwen_vl_utils int()s a non-empty pixel cap into its token
# count, unless that count is set (4.6.0 qwen.py:758-770)
COMPAT = {"MAX_PIXELS": "IMAGE_MAX_TOKEN_NUM", "MIN_PIXELS": "IMAGE_MIN_TOKEN_NUM",
          "VIDEO_MAX_PIXELS": "VIDEO_MAX_TOKEN_NUM", "VIDEO_MIN_PIXELS": "VIDEO_MIN_TOKEN_NUM"}


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
        # 3.x's Qwen2-VL loader imports it before any check; 4.x and Qwen3-VL check its metadata
        return ("ModuleNotFoundError: No module named 'qwen_vl_utils'" if kind == "qwen2" and s < _key("4")
                else "PackageNotFoundError: The 'qwen_vl_utils' distribution was not found")
    if v is None:
        return None
    if kind == "qwen3":
        return None if v >= _key("0.0.14") else \
            f"ImportError: qwen_vl_utils>=0.0.14 is required ... but found qwen_vl_utils=={vl}"
    if v < _key("0.0.12"):
        return None
    if s < _key("3.8.2"):
        return "AttributeError: module 'qwen_vl_utils.vision_process' has no attribute 'IMAGE_FACTOR'"
    if s < _key("3.10.1") or v < _key("0.0.14"):
        return f"ImportError: qwen_vl_utils<0.0.12 is required ... but found qwen_vl_utils=={vl}"
    return None


def parsed_names(swift: str | None, vl: str | None) -> dict[str, tuple[type, bool]] | None:
    """name -> (the type ms-swift parses it with, whether an empty value is parsed too) for the
    variables a Qwen-VL load reads with this ms-swift and qwen_vl_utils; None when not known."""
    s, v = _key(swift), _key(vl)
    if s is None or v is None or s < _key("3.3.0"):
        return None
    names = PIXEL_NAMES if v < _key("0.0.12") else TOKEN_NAMES if s >= _key("3.9.0") else None
    if names is None:
        return None
    out = {name: (float if name == "FPS" else int, True) for name in names}
    if names is TOKEN_NAMES and v >= _key("0.0.14") and s >= _key("3.10.1"):
        out.update({name: (int, False) for name in COMPAT})
    return out


def installed(job: Job, facts: Facts) -> tuple[str, str | None] | None:
    """(ms-swift's version, qwen_vl_utils' or None) in the environment `swift` runs in; None when
    that is not known or is the other major's (the launch refuses that: cli/run.py)."""
    if not facts.here:
        return None
    packages = facts.packages(job.env)
    if packages is None:
        return None
    swift = packages.get("ms_swift") or ""
    if not swift.split(".")[0].isdigit() or int(swift.split(".")[0]) != job.swift_major:
        return None
    return swift, packages.get("qwen_vl_utils")


def check_vl_utils(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in ("sft", "pt", "rlhf", "infer", "deploy", "export") or not facts.here:
        return []
    from lorakit.checks.pixels import _model_type
    from lorakit.swiftregistry import swift_models

    table = swift_models(job.swift_major) or {}
    model_type = _model_type(job, facts, table)
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
