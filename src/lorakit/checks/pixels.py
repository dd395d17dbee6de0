"""Images for a Qwen-VL model with no cap on their resolution (ms-swift #2854).

Qwen2-VL, Qwen2.5-VL, Qwen3-VL and the Omni models turn an image into visual tokens at its own
resolution, capped only by qwen_vl_utils' MAX_PIXELS (16384 tokens' worth by default). ms-swift
passes the cap on from the environment (4.6.0 swift/model/models/qwen.py:708-740
patch_qwen_vl_utils reads MAX_PIXELS / IMAGE_MAX_TOKEN_NUM through get_env_args) or from
--max_pixels, and every Qwen-VL example of ms-swift sets MAX_PIXELS=1003520. Without it, one large
photo is thousands of tokens and the step that meets it runs out of memory though the model fits.
A warning: small images run fine without a cap.
"""

from __future__ import annotations

from lorakit import localpath, modelconfig
from lorakit.checks.facts import Facts
from lorakit.errors import LorakitError
from lorakit.findings import WARNING, Finding, about
from lorakit.job import Job
from lorakit.swiftregistry import swift_model_name, swift_models

# ms-swift's model types and config.json's model_type values of the qwen_vl_utils family
QWEN_VL = frozenset({"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_moe_vl", "qwen3_vl_moe", "qwen3_vl_emb",
                     "qwen3_vl_reranker", "qwen2_5_omni", "qwen3_omni", "qwen3_omni_moe", "qvq"})
CAPS = ("MAX_PIXELS", "IMAGE_MAX_TOKEN_NUM")  # the second: qwen_vl_utils 0.0.14+ (4.x compat_qwen_vl_utils)


def _from_adapter(job: Job) -> tuple[str | None, str | None]:
    """(model_type, model) an adapter checkpoint's args.json names: what `swift infer --adapters`
    loads when no --model is given."""
    import json
    import os

    value = job.args.get("adapters")
    for item in value if isinstance(value, list) else ([value] if value else []):
        path = os.path.join(str(item).split("=", 1)[-1], "args.json")  # name=path: a named adapter
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.loads(handle.read(1 << 20))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(data, dict):
            model_type, model = data.get("model_type"), data.get("model")
            return (model_type if isinstance(model_type, str) else None, model if isinstance(model, str) else None)
    return None, None


def _qwen_vl(job: Job, facts: Facts) -> bool:
    given, model = job.args.get("model_type"), job.args.get("model")
    if given in (None, "") and model in (None, ""):
        given, model = _from_adapter(job)
    if given not in (None, ""):
        return str(given) in QWEN_VL
    if model in (None, ""):
        return False
    table = swift_models(job.swift_major) or {}
    if table.get("names", {}).get(swift_model_name(str(model), job.swift_major)) in QWEN_VL:
        return True
    local = facts.find_model(str(model))
    if local is None:
        return False
    try:
        config = modelconfig.read_config(local)
    except LorakitError:
        return False
    return isinstance(config, dict) and config.get("model_type") in QWEN_VL


def _image_file(job: Job, facts: Facts) -> str | None:
    import os

    from lorakit import datafile

    cwd = os.getcwd()
    for key in ("dataset", "val_dataset"):
        value = job.args.get(key)
        for item in value if isinstance(value, list) else ([value] if value else []):
            ref = localpath.parse_dataset(str(item), cwd)
            name = ref.name.strip()
            if not (name and name.lower().endswith((".jsonl", ".json", ".csv")) and localpath.exists(name, cwd)):
                continue
            path = localpath.absolute(name, cwd)
            if os.path.isfile(path) and datafile.recognize(path, environ=facts.environ).image_rows:
                return path
    return None


def check_max_pixels(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in ("sft", "pt", "rlhf", "infer"):
        return []
    if job.args.get("max_pixels") not in (None, ""):
        return []
    if any(name in job.env or name in facts.environ for name in CAPS):
        return []
    if not _qwen_vl(job, facts):
        return []
    path = _image_file(job, facts)
    if path is None:
        return []
    return [about(job, WARNING, "data.images.max_pixels", "env.MAX_PIXELS",
                  f"{path} has images for a Qwen-VL model and nothing caps their resolution (no MAX_PIXELS, "
                  "IMAGE_MAX_TOKEN_NUM or max_pixels): each image becomes up to 16384 visual tokens (qwen_vl_utils' "
                  "default), and the step that meets a large one can run out of memory",
                  "set the cap ms-swift's Qwen-VL examples use: env: {MAX_PIXELS: '1003520'} in the preset, or "
                  "MAX_PIXELS=1003520 before lorakit")]


CHECKS = [check_max_pixels]
