"""`resume_from_checkpoint` given as ms-swift takes it (not through `lorakit train --resume`, whose
own search refuses these in resume.py): a checkpoint of a run that had already finished.

transformers' Trainer, resuming, skips the steps the checkpoint already trained (trainer.py
_inner_training_loop: epochs_trained = global_step // steps per epoch) and works out max_steps anew
from this launch's max_steps, or its epochs and data. A run that ran to its end (trainer_state.json
global_step >= its max_steps), resumed with the same data and no more steps or epochs, trains
nothing: ms-swift 3.0 then failed with "'TrainerState' object has no attribute
'last_model_checkpoint'" (#2956); the maintainer's answer is to raise num_train_epochs or use
resume_only_model. With other data the step count differs, so that is only a warning.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lorakit import localpath
from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_bool, as_finite_float, as_int, listed

KEY = "args.resume_from_checkpoint"
EPOCHS_DEFAULT = 3.0  # TrainArguments.num_train_epochs (3.x and 4.x)


def _datasets(value: Any, cwd: str) -> frozenset[str]:
    out = set()
    for item in listed(value):
        text = str(item).strip()
        out.add(localpath.absolute(text, Path(cwd)) if localpath.looks_local(text, Path(cwd)) else text)
    return frozenset(out)


def check_finished(job: Job, facts: Facts) -> list[Finding]:
    value = job.args.get("resume_from_checkpoint")
    if job.command not in ("sft", "pt", "rlhf") or not isinstance(value, str) or not value.strip():
        return []
    if as_bool(job.args.get("resume_only_model")) is True:
        return []  # a new schedule on the saved weights: nothing is skipped (resume.py has #8383's case)
    cwd = os.getcwd()
    ckpt = Path(localpath.absolute(value, Path(cwd)))
    from lorakit.trainlog import read_json  # only with a checkpoint to read (a dry-run's import cost)

    state = read_json(ckpt / "trainer_state.json") if ckpt.is_dir() else None
    if not isinstance(state, dict):
        return []  # missing or half-written: checks/paths.py and resume.py say so
    step, ran = as_int(state.get("global_step")), as_int(state.get("max_steps"))
    if step is None or step <= 0:
        return []
    max_steps = as_int(job.args.get("max_steps"))
    shown = f"resume_from_checkpoint {value!r} is at step {step}"
    if max_steps is not None and max_steps > 0:
        if step < max_steps:
            return []
        return [about(job, ERROR, "train.resume.finished", KEY,
                      f"{shown}, and max_steps is {max_steps}: the resumed run skips those steps, trains one "
                      "more (transformers tests max_steps after a step) and ends",
                      f"to train on, raise max_steps (e.g. --max_steps {step + max_steps}); to start a new "
                      "schedule from these weights, resume_only_model: true")]
    if ran is None or step < ran:
        return []  # interrupted before its end: a resume trains the rest
    saved = read_json(ckpt / "args.json") or read_json(ckpt.parent / "args.json") or {}
    saved = saved if isinstance(saved, dict) else {}
    if (as_int(saved.get("max_steps")) or -1) > 0:
        return []  # that run ended at its max_steps; this one counts by epochs, which it has not trained
    then = as_finite_float(saved.get("num_train_epochs", state.get("num_train_epochs", EPOCHS_DEFAULT)))
    now = as_finite_float(job.args.get("num_train_epochs", EPOCHS_DEFAULT))  # text from the command line
    done = as_finite_float(state.get("epoch"))  # the epochs trainer_state says were trained
    if then is None or now is None or now > then + 1e-9 or (done is not None and done < now - 1e-6):
        return []  # more epochs than the run trained: there is something left
    # ms-swift writes args.json into every checkpoint (trainers/mixin.py): its dataset is the run's
    same = "dataset" in saved and _datasets(saved["dataset"], cwd) == _datasets(job.args.get("dataset"), cwd)
    asks = "as that run did" if abs(now - then) < 1e-9 else f"no more than that run's {then:g}"
    if "num_train_epochs" not in saved and "num_train_epochs" not in state:
        asks += " (ms-swift's default: the checkpoint names no num_train_epochs)"
    message = (f"{shown}, the end of its run ({ran} steps), and this launch asks for {now:g} epoch(s), "
               f"{asks}: the resumed run skips every step and trains nothing")
    hint = ("to train on, raise num_train_epochs (or set max_steps above the checkpoint's step); to start a new "
            "schedule from these weights, resume_only_model: true")
    if same:
        return [about(job, ERROR, "train.resume.finished", KEY, message, hint)]
    return [about(job, WARNING, "train.resume.finished", KEY,
                  message.replace(f"{asks}:", f"{asks}" + (
                      ", on other data: unless it has more steps per epoch," if "dataset" in saved else
                      " (its args.json names no dataset): unless this data has more steps per epoch,")), hint)]


CHECKS = [check_finished]
