"""Local paths ms-swift would silently take for hub ids, and an output dir it cannot create.

ms-swift treats any value that does not exist on disk as a hub id (utils/hub_utils.py
safe_snapshot_download; dataset_syntax.py), so `--model ./models/qwen3-8b` with a typo starts a
download of a model that does not exist, after the import and the data loading. Datasets are
checked in checks/data.py; this module covers the other path-valued flags.
"""

from __future__ import annotations

import os
import re

from lorakit import localpath, values
from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job

# flag -> what it names, for the message. A hub id is fine for model and adapters (ms-swift
# downloads those), never for a checkpoint to resume from (transformers opens it as a dir).
INPUT_PATHS = {"model": "model", "adapters": "adapter", "resume_from_checkpoint": "checkpoint",
               "custom_dataset_info": "dataset info file", "cached_dataset": "cached dataset",
               "mcore_model": "Megatron checkpoint", "external_plugins": "plugin file",
               "custom_register_path": "plugin file", "system": "system prompt file"}
ALWAYS_LOCAL = ("resume_from_checkpoint", "cached_dataset")
# Files ms-swift opens while parsing its arguments, never downloads: a plugin is imported
# (utils.py import_external_file: FileNotFoundError on 4.x, ModuleNotFoundError on 3.x), and a
# --system ending in .txt is read as the prompt (template_args.py: assert os.path.isfile).
FILES = ("external_plugins", "custom_register_path", "system")
# What either hub takes as a repo id (huggingface_hub validate_repo_id: [\w.-] names, one `/`),
# with ms-swift's own `id:subfolder` (utils/hub_utils.py safe_snapshot_download) after it.
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?(:[^:]+)?")
DOWNLOADED = ("model", "adapters")  # values ms-swift sends to the hub when they are not on disk


def _always_local(job: Job, key: str) -> bool:
    """A path ms-swift never downloads: with --to_hf/--to_mcore, export_args.py makes mcore_model
    `to_abspath(..., check_path_exist=True)`, which raises for a path that is not there."""
    if key == "mcore_model":
        return any(values.as_bool(job.args.get(k)) for k in ("to_hf", "to_mcore"))
    return key in ALWAYS_LOCAL or key in FILES


PLUGINS = ("external_plugins", "custom_register_path")  # both imported the same way (3.x and 4.x alike)


def plugin_keys(job: Job) -> list[str]:
    """The plugin flags the run gives: their files may register tuners, optimizers, loss scales
    that no release has, so a check that does not read them only warns."""
    return [key for key in PLUGINS if any(text.strip() for text in _items(job.args.get(key)))]


def _items(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return [value] if isinstance(value, str) else []


def _missing(job: Job, key: str, text: str) -> Finding:
    where = localpath.absolute(text)
    why = ("transformers opens it as a directory" if key in ALWAYS_LOCAL
           else "with --to_hf/--to_mcore ms-swift stops with FileNotFoundError when it is not there"
           if key == "mcore_model"
           # json_parse_to_dict (swift/utils/utils.py) reads a path that is not there as JSON text
           else "ms-swift would read a missing path as inline JSON and fail" if key == "custom_dataset_info"
           else "ms-swift imports it while parsing its arguments and stops there" if key in FILES[:2]
           else "ms-swift reads a --system ending in .txt from that file, and stops when it is not one"
           if key == "system"
           else "ms-swift would take a missing path for a hub id and try to download it")
    hint = _near(text) + f"paths are relative to the directory you launch from ({os.getcwd()}); {why}"
    return about(job, ERROR, f"paths.{key}.missing", f"args.{key}",
                   f"{key} {text!r}: no such {INPUT_PATHS[key]} ({where})", hint)


def is_hub_id(text: str) -> bool:
    return _HUB_ID.fullmatch(text) is not None


def _near(text: str) -> str:
    """The did-you-mean that starts a path hint, or ''."""
    close = localpath.near_misses(text)
    return f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""


def _named(key: str, text: str) -> str:
    """The adapter in deploy's `name=adapter` (deploy_args.py _init_adapters: adapter.split('=')),
    unless the whole text is itself on disk; the text otherwise."""
    if key != "adapters" or "=" not in text or localpath.exists(text):
        return text
    return text.split("=", 1)[1]


def _not_hub_id(job: Job, key: str, text: str) -> Finding:
    """A value that is not on disk and that no hub takes as a repo id (`+`, `Qwen/Qwen2.5 7B`,
    `a/b/c`): ms-swift would still send it to the hub and fail there, after its imports."""
    hint = _near(text) + (
        f"a hub id is Org/Name (letters, digits, '-', '_', '.'), e.g. Qwen/Qwen2.5-7B-Instruct; a local "
        f"{INPUT_PATHS[key]} is a path from the directory you launch from ({os.getcwd()})")
    return about(job, ERROR, f"paths.{key}.not_hub_id", f"args.{key}",
                 f"{key} {localpath.shown(text)} is neither a local path here nor a hub id", hint)


# modules ms-swift 3.x has imported before it imports a plugin by name: a plugin called so is
# never run (importlib returns the loaded module)
LOADED = ("swift", "datasets", "transformers", "torch", "peft", "accelerate", "modelscope", "trl", "numpy",
          "safetensors", "huggingface_hub", "tokenizers", "json_repair", "tqdm", "yaml", "requests")


def _plugin_items(value) -> list[str]:
    """Each plugin item as ms-swift gets it: the rendered text (a YAML 5 or true is '5', 'true')."""
    from lorakit.render import spelled

    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    return [v if isinstance(v, str) else spelled(v) for v in items]


def _plugin(job: Job, key: str, text: str) -> Finding | None:
    """What ms-swift's import_external_file does with the path (swift/utils/utils.py), taken as
    written (abspath(expanduser(text)): no strip). 4.x loads the file itself
    (spec_from_file_location): anything but an existing Python file is an ImportError ("Cannot
    import external file"). 3.x puts its directory first on sys.path and imports the name before
    the first '.': `plugin` finds plugin.py or a package dir there, and a bare name may be an
    installed module."""
    import importlib.machinery
    import sys

    if not text.strip():
        return about(job, ERROR, f"paths.{key}.missing", f"args.{key}", f"{key} {text!r} names no plugin file",
                     f"give the plugin's .py file, or leave {key} out")
    path = os.path.abspath(os.path.expanduser(text))
    folder, name = os.path.split(path)
    suffixes = tuple(importlib.machinery.all_suffixes())
    if job.swift_major >= 4:
        if os.path.isfile(path) and path.endswith(suffixes):
            return None
        if text != text.strip() and os.path.isfile(os.path.abspath(os.path.expanduser(text.strip()))):
            return about(job, ERROR, f"paths.{key}.missing", f"args.{key}",
                         f"{key} {text!r} has spaces around the file's name: ms-swift {job.swift_major}.x opens it "
                         "as written and stops (\"ImportError: Cannot import external file\")",
                         f"write {text.strip()!r}")
        if not os.path.exists(path):
            return _missing(job, key, text)
        what = "a directory" if os.path.isdir(path) else "not a Python file"
        package = os.path.join(text, "__init__.py")
        return about(job, ERROR, f"paths.{key}.not_module", f"args.{key}",
                     f"{key} {text!r} is {what}: ms-swift {job.swift_major}.x imports a plugin as one .py file and "
                     "stops while parsing its arguments ("
                     + ("IsADirectoryError)" if path.endswith(suffixes) else
                        "\"ImportError: Cannot import external file\")"),
                     f"name the file: {key}: {package}" if os.path.isfile(os.path.join(path, "__init__.py"))
                     else "name the plugin's .py file")
    stem = name.split(".", 1)[0]
    if stem in sys.stdlib_module_names or stem in LOADED:
        return about(job, WARNING, f"paths.{key}.shadowed", f"args.{key}",
                     f"{key} {text!r}: ms-swift 3.x imports it as the module {stem!r}, which is already loaded "
                     f"({stem} itself), so your file never runs", f"rename the file, e.g. my_{stem}.py")
    if os.path.isdir(folder) and (os.path.isdir(os.path.join(folder, stem))
                                  or any(os.path.isfile(os.path.join(folder, stem + end)) for end in suffixes)):
        return None
    if os.sep not in text and "." not in text:
        return None  # a module name (3.x imports `my_plugins` from the import path too)
    if not os.path.exists(path):
        return _missing(job, key, text)
    return about(job, ERROR, f"paths.{key}.not_module", f"args.{key}",
                 f"{key} {text!r}: ms-swift 3.x imports it as the module {stem!r} from {folder}, which has no "
                 f"{stem}.py (ModuleNotFoundError: No module named {stem!r})", "name the plugin's .py file")


def _system_file(job: Job, text: str) -> Finding | None:
    """A --system ending in .txt is the prompt's file (template_args.py: assert os.path.isfile);
    any other text is the prompt itself."""
    where = localpath.absolute(text)
    if not text.endswith(".txt") or os.path.isfile(where):
        return None
    if os.path.isdir(where):
        return about(job, ERROR, "paths.system.missing", "args.system",
                     f"system {text!r} is a directory ({where}): ms-swift reads a --system ending in '.txt' as the "
                     "prompt file and stops (AssertionError)", "name the prompt file inside it, or write the prompt "
                     "itself")
    return _missing(job, "system", text)


def check_input_paths(job: Job, facts: Facts) -> list[Finding]:
    out: list[Finding] = []
    if isinstance(job.args.get("model"), str) and not job.args["model"].strip():
        # ms-swift checks `model is None` only (model_args.py:220): '' goes on to the hub lookup
        out.append(about(job, ERROR, "paths.model.empty", "args.model", f"model {job.args['model']!r} names no model",
                         "give a hub id (Qwen/Qwen2.5-7B-Instruct) or a local model dir"))
    for key in ALWAYS_LOCAL:
        value = job.args.get(key)
        if value is not None and not isinstance(value, (str, list, tuple)):
            # YAML reads `true` / `0` as a bool / number: rendered as text, ms-swift opens a dir named so
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            out.append(about(job, ERROR, f"paths.{key}.missing", f"args.{key}",
                             f"{key} {shown} is not a path (ms-swift would look for a directory named {shown!r})",
                             f"give the checkpoint directory, e.g. {key}: output/v0-20260101-120000/checkpoint-100"
                             + (" (or lorakit train --resume)" if key == "resume_from_checkpoint" else "")))
    for key in PLUGINS:
        out.extend(f for f in (_plugin(job, key, t) for t in _plugin_items(job.args.get(key))) if f)
    out.extend(f for f in (_system_file(job, t) for t in _items(job.args.get("system"))) if f)
    for key in (k for k in INPUT_PATHS if k not in (*PLUGINS, "system")):
        for text in (_named(key, t) for t in _items(job.args.get(key))):
            # mcore_model: read only by --to_hf/--to_mcore, and then always as a path
            if not text.strip() or localpath.exists(text):
                continue
            if _always_local(job, key) or key != "mcore_model" and localpath.looks_local(text):
                out.append(_missing(job, key, text))
            elif key in DOWNLOADED and not is_hub_id(text):
                out.append(_not_hub_id(job, key, text))
    return out


def _unwritable(path: str) -> str | None:
    """Why ms-swift could not create `path` (os.makedirs(exist_ok=True)), or None."""
    if os.path.exists(path) and not os.path.isdir(path):
        return "is a file, not a directory"
    anchor = localpath.nearest_existing(path)
    if not os.path.isdir(anchor):
        return f"cannot be created: {anchor} is a file"
    if not os.access(anchor, os.W_OK | os.X_OK):
        return f"cannot be created: {anchor} is not writable"
    if anchor == os.path.dirname(anchor):
        return None  # only the root exists here: likely rendered for another machine
    probe = os.path.join(anchor, f".lorakit-probe-{os.getpid()}")
    try:  # root passes access() everywhere, and /proc or a read-only mount only fail for real
        os.mkdir(probe)
    except FileExistsError:
        return None
    except OSError as exc:
        return f"cannot be created under {anchor}: {exc.strerror}"
    os.rmdir(probe)
    return None


def check_output_dir(job: Job, facts: Facts) -> list[Finding]:
    text = job.args.get("output_dir")
    if job.command in ("sft", "rlhf") and isinstance(text, str) and not text.strip():
        # ms-swift defaults only a None output_dir (sft_args.py _init_output_dir: output/<model>);
        # to_abspath('') is os.path.abspath(''), the working directory, so checkpoints, logs and
        # args.json land among the user's files (and '  ' makes a directory named by the spaces)
        where = (f"into the working directory ({os.getcwd()})" if not text
                 else f"into a directory named {text!r} under {os.getcwd()}")
        return [about(job, ERROR, "paths.output_dir.empty", "args.output_dir",
                      f"output_dir {text!r} names no directory: ms-swift would write the run {where}",
                      "give a directory, e.g. --output-dir output, or leave output_dir out for ms-swift's "
                      "output/<model name>")]
    if job.command != "sft" or not isinstance(text, str) or not text.strip():
        return []
    why = _unwritable(localpath.absolute(text))
    if why is None:
        return []
    return [about(job, ERROR, "paths.output_dir.unwritable", "args.output_dir", f"output_dir {text!r} {why}",
                    "choose a directory you can write to, e.g. --output-dir output")]


def check_ckpt_args(job: Job, facts: Facts) -> list[Finding]:
    """A checkpoint's args.json that load_args_from_ckpt cannot read stops ms-swift while it
    parses its arguments (a pipe blocks it); only where it reads one (ckptargs.loads_args)."""
    from lorakit import ckptargs

    if not ckptargs.loads_args(job.args, job.command):
        return []
    found = ckptargs.unreadable(job.args, job.command)
    if found is None:
        return []
    path, why = found
    return [about(job, ERROR, "paths.ckpt_args.unreadable", "args.adapters" if job.args.get("adapters") else
                  "args.model", f"{path} {why}: ms-swift reads the checkpoint's saved arguments from it "
                  "(load_args_from_ckpt) and stops there, before the model loads",
                  "restore the args.json ms-swift wrote with the checkpoint, or pass --load_args false (then give "
                  "--model and the other arguments yourself)")]


CHECKS = [check_input_paths, check_output_dir, check_ckpt_args]
