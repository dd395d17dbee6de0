"""The checkpoint ms-swift reads its saved arguments from, and those arguments.

BaseArguments._init_ckpt_dir takes get_ckpt_dir(model, adapters) (4.6.0 swift/model/utils.py:336):
the first of the adapters, then the model, where `args.json` exists; load_args_from_ckpt then fills
unset flags from it (task_type, quant_method, ...). deploy's adapters may be NAME=PATH
(deploy_args.py _init_adapters splits them first). Training with resume_only_model true first makes
resume_from_checkpoint the adapters (the model, for full) (4.6.0 sft_args.py:200-207, 3.12.6
train_args.py:248-255); a full resume leaves them to the Trainer.
"""

from __future__ import annotations

import os
from pathlib import Path

from lorakit.values import as_bool, listed


def loads_args(args: dict, command: str) -> bool:
    """Does ms-swift read the checkpoint's args.json at all? load_args defaults to True, but to
    False for training (4.6.0 sft_args.py:175, 3.12.6 train_args.py:222: TrainArguments)."""
    given = as_bool(args.get("load_args"))
    return given if given is not None else command not in ("sft", "pt", "rlhf")


def ckpt_args(args: dict, command: str) -> tuple[str | None, dict]:
    """(get_ckpt_dir's folder or None, its args.json: {} when unreadable or not a mapping)."""
    from lorakit.trainlog import read_json  # only for a job that names a local dir

    folder = ckpt_dir(args, command)
    return (None, {}) if folder is None else (folder, read_json(Path(folder) / "args.json") or {})


def unreadable(args: dict, command: str) -> tuple[str, str] | None:
    """(args.json's path, why load_args_from_ckpt cannot read it), or None: it asserts the file
    exists, json.load()s it and walks old_args.items() (4.6.0 base_args.py:285-333, 3.x the same),
    all while parsing the arguments: a directory, a pipe, junk or a JSON list stop the run there
    (a pipe blocks it)."""
    import json

    folder = ckpt_dir(args, command)
    if folder is None:
        return None
    path = os.path.join(folder, "args.json")
    if os.path.isdir(path):
        return path, "is a directory"
    if not os.path.isfile(path):
        return path, "is not a regular file (a pipe: ms-swift's read would wait forever)"
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(64 << 20))
    except OSError as exc:
        return path, f"cannot be read ({exc.strerror})"
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return path, "is no JSON ms-swift can load (json.load fails)"
    if not isinstance(data, dict):
        return path, f"holds a JSON {type(data).__name__}, not the object of arguments ms-swift saves"
    return None


def ckpt_dir(args: dict, command: str) -> str | None:
    """get_ckpt_dir's folder: the first adapter, then the model, that holds an args.json."""
    adapters, models = listed(args.get("adapters")), listed(args.get("model"))
    if command == "deploy":
        adapters = [a.split("=", 1)[1] if "=" in a else a for a in adapters]
    resumed = args.get("resume_from_checkpoint")
    if command in ("sft", "pt", "rlhf") and isinstance(resumed, str) and resumed and \
            as_bool(args.get("resume_only_model")) is True:
        full = str(args.get("tuner_type") or args.get("train_type") or "lora") == "full"
        models, adapters = ([resumed], adapters) if full else (models, [resumed])
    for folder in adapters + models:
        if os.path.exists(os.path.join(folder, "args.json")):
            return folder
    return None
