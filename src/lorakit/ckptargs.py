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


def ckpt_args(args: dict, command: str) -> tuple[str | None, dict]:
    """(get_ckpt_dir's folder or None, its args.json: {} when unreadable or not a mapping)."""
    from lorakit.trainlog import read_json  # only for a job that names a local dir

    adapters, models = listed(args.get("adapters")), listed(args.get("model"))
    if command == "deploy":
        adapters = [a.split("=", 1)[1] if "=" in a else a for a in adapters]
    resumed = args.get("resume_from_checkpoint")
    if command in ("sft", "pt", "rlhf") and isinstance(resumed, str) and resumed and \
            as_bool(args.get("resume_only_model")) is True:
        full = str(args.get("tuner_type") or args.get("train_type") or "lora") == "full"
        models, adapters = ([resumed], adapters) if full else (models, [resumed])
    for folder in adapters + models:
        path = os.path.join(folder, "args.json")
        if os.path.exists(path):
            return folder, read_json(Path(path)) or {}
    return None, {}
