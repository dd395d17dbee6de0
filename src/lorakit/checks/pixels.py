"""Images for a Qwen-VL model with no cap on their resolution (ms-swift #2854).

Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Qwen3.5 and the Omni models (and models built on them) turn an image into visual tokens at its own
resolution, capped only by qwen_vl_utils' MAX_PIXELS (16384 tokens' worth by default). ms-swift
passes the cap on from the environment (4.6.0 swift/model/models/qwen.py:708-740
patch_qwen_vl_utils reads MAX_PIXELS / IMAGE_MAX_TOKEN_NUM through get_env_args) or from
--max_pixels, and every Qwen-VL example of ms-swift sets MAX_PIXELS=1003520. Without it, one large
photo is thousands of tokens and the step that meets it runs out of memory though the model fits.
A warning: small images run fine without a cap.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from lorakit.checks import vlenv
from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.swiftregistry import swift_models

# The model types that read their images through qwen_vl_utils (or its omni/keye forks): those
# ms-swift registers with that requirement (ModelMeta.requires, in the snapshot), which covers
# Qwen2-VL to Qwen3.5 and the models built on them, and follows each release without a hand list.
VL_UTILS = ("qwen_vl_utils", "qwen_omni_utils", "keye_vl_utils")
# ...less those whose loader sets a cap itself when none is given (4.6.0 swift/model/models/qwen.py:
# 1795, 2569, 2595 `os.environ.setdefault('IMAGE_MAX_TOKEN_NUM', ...)`; 3.12.6 qwen.py:1692, 1715)
SELF_CAPPED = frozenset(vlenv.SELF_CAPPED)
CAPS = ("MAX_PIXELS", "IMAGE_MAX_TOKEN_NUM")  # the second: qwen_vl_utils 0.0.14+ (4.x compat_qwen_vl_utils)


# the values ms-swift's own Qwen-VL examples set
EXAMPLES = {"MAX_PIXELS": "1003520", "MIN_PIXELS": "3136", "VIDEO_MAX_PIXELS": "50176", "FPS": "2",
            "FPS_MAX_FRAMES": "12", "IMAGE_MAX_TOKEN_NUM": "1280", "VIDEO_MAX_TOKEN_NUM": "128"}


def _reads_vl_utils(table: dict, model_type: str | None) -> bool:
    requires = (table.get("model_types", {}).get(model_type or "") or {}).get("requires") or []
    return any(spec.replace("-", "_").lower().startswith(VL_UTILS) for spec in requires)


def reads_images_uncapped(table: dict, model_type: str | None) -> bool:
    return model_type not in SELF_CAPPED and _reads_vl_utils(table, model_type)


def kwargs_caps(value, names=CAPS) -> dict[str, str]:
    """The caps a model_kwargs value sets: ms-swift parses it (JSON text, or a JSON file's path:
    swift/utils/utils.py json_parse_to_dict) and copies each key, upper-cased, into the
    environment before loading (4.6.0 swift/arguments/base_args/base_args.py:236-249
    _init_model_kwargs: os.environ[k.upper()] = str(v)), over what the shell set."""
    import json
    import os

    if isinstance(value, str):
        text = value
        if os.path.isfile(value):
            try:
                with open(value, encoding="utf-8", errors="replace") as handle:
                    text = handle.read(1 << 20)
            except OSError:
                return {}
        if not any(cap in text.upper() for cap in names):
            return {}  # no key to find: not parsed (a text may be nested past Python's stack)
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return {}
    if not isinstance(value, dict):
        return {}
    return {str(k).upper(): str(v) for k, v in value.items() if str(k).upper() in names}


def _from_adapter(job: Job) -> tuple[str | None, str | None]:
    """(model_type, model) an adapter checkpoint's args.json names: what `swift infer --adapters`
    loads when no --model is given."""
    import os
    from pathlib import Path

    from lorakit.trainlog import read_json  # is_file first: a FIFO args.json would block the read forever

    value = job.args.get("adapters")
    for item in value if isinstance(value, list) else ([value] if value else []):
        path = os.path.join(str(item).split("=", 1)[-1], "args.json")  # name=path: a named adapter
        try:
            data = read_json(Path(path))
        except (OSError, ValueError):  # a path no filesystem takes: no args.json
            continue
        if isinstance(data, dict):
            model_type, model = data.get("model_type"), data.get("model")
            return (model_type if isinstance(model_type, str) else None, model if isinstance(model, str) else None)
    return None, None


def loaded_model_type(job: Job, facts: Facts, table: dict) -> str | None:
    """The model_type ms-swift loads, as checks/requires.py resolves it; for `infer --adapters`
    with no --model, the one the checkpoint's args.json names."""
    from lorakit.checks.requires import config_of, resolve_model_type

    if job.args.get("model_type") in (None, "") and job.args.get("model") in (None, ""):
        given, model = _from_adapter(job)
        if given or not model:
            return given
        job = replace(job, args={**job.args, "model": model})
    found = facts.find_model(str(job.args["model"])) if job.args.get("model") not in (None, "") else None
    local = Path(found) if found is not None else None
    return resolve_model_type(job, table, local, config_of(local))


def _image_file(job: Job, facts: Facts) -> str | None:
    from lorakit import datafile
    from lorakit.checks.rlhf import local_files  # the local .jsonl/.json/.csv datasets (rewards.py too)

    return next((path for _, path in local_files(job)
                 if datafile.recognize(path, environ=facts.environ).image_rows), None)


def _env_values(job: Job, facts: Facts, names) -> dict[str, tuple[str, str]]:
    """name -> (value, where) of `names` as the model load sees them: the shell's, the preset's env:
    over it (as lorakit renders it), model_kwargs over both (ms-swift sets it at start-up)."""
    out = {}
    for name in names:
        value, where = job.env.get(name), f"env.{name}"
        if value is None:
            value = facts.environ.get(name)
        if value is not None:
            out[name] = (str(value), where)
    for name, value in kwargs_caps(job.args.get("model_kwargs"), names).items():
        out[name] = (value, "args.model_kwargs")
    return out


def _caps(job: Job, facts: Facts) -> dict[str, tuple[str, str]]:
    """The resolution caps set, empty ones left out: 4.x's compat_qwen_vl_utils skips them."""
    return {k: v for k, v in _env_values(job, facts, CAPS).items() if v[0].strip()}


def _unparsed(job: Job, facts: Facts, model_type: str | None, kind: str | None):
    """The first variable the Qwen-VL load parses and cannot (vlenv.Unparsed): with the installed
    ms-swift and qwen_vl_utils known (a launch here, a qwen_vl_utils loader: `kind`), as they parse;
    else the caps, empty ones left out (what every pairing int()s when it reads them at all)."""
    from lorakit.checks import visionutils

    found = visionutils.installed(job, facts) if kind else None
    if found and vlenv.judged(*found):
        return vlenv.first_unparsed(found[0], found[1], model_type, _env_values(job, facts, vlenv.NAMES))
    if model_type in SELF_CAPPED:
        return None  # a Qwen3-VL loader that sets IMAGE_MAX_TOKEN_NUM: MAX_PIXELS is not converted
    for name, (value, where) in _caps(job, facts).items():
        try:
            int(value)
        except ValueError:
            return vlenv.Unparsed(name, value, where, "int()", "loading the Qwen-VL processor")
    return None


def check_max_pixels(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in ("sft", "pt", "rlhf", "infer", "deploy", "export"):
        return []
    from lorakit.checks.visionutils import family

    table = swift_models(job.swift_major) or {}
    model_type = loaded_model_type(job, facts, table)
    # the installed versions say what is parsed only for a launch here (visionutils.installed)
    bad = _unparsed(job, facts, model_type, family(table, model_type) if facts.here else None)
    if bad and _reads_vl_utils(table, model_type):  # swift/utils/utils.py get_env_args: type_func(value)
        error = vlenv.error_of(bad.parse, bad.value)
        what = ("is empty" if not bad.value.strip() else "is zero" if bad.parse == "a non-zero int()" else
                "is not " + ("a number" if bad.parse == "float()" else "an integer"))
        example = EXAMPLES.get(bad.name)
        return [about(job, ERROR, "env.max_pixels.invalid", bad.where,
                      f"{bad.name}={bad.value!r} {what}: ms-swift reads it with {bad.parse} while {bad.when} "
                      f"and stops ({error})",
                      (f"write it in digits, e.g. {bad.name}={example}" if example else "write it as a whole number")
                      + ", or unset it")]
    if job.command in ("deploy", "export"):
        return []
    caps = _caps(job, facts)
    if caps or job.args.get("max_pixels") not in (None, ""):
        return []
    if not reads_images_uncapped(table, model_type):
        return []
    path = _image_file(job, facts)
    if path is None:
        return []
    return [about(job, WARNING, "data.images.max_pixels", "env.MAX_PIXELS",
                  f"{path} has images for a Qwen-VL model and nothing caps their resolution (no MAX_PIXELS, "
                  "IMAGE_MAX_TOKEN_NUM, max_pixels or model_kwargs cap): each image becomes up to 16384 visual tokens "
                  "(qwen_vl_utils' default), and the step that meets a large one can run out of memory",
                  "set the cap ms-swift's Qwen-VL examples use: env: {MAX_PIXELS: '1003520'} in the preset, or "
                  "MAX_PIXELS=1003520 before lorakit")]


CHECKS = [check_max_pixels]
