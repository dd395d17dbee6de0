"""The losses an ms-swift run logged, by step: RUN/logging.jsonl and each checkpoint's
trainer_state.json. Stdlib only, like checkpoints.py.

- trainers/patcher.py `on_log`: every log dict goes to RUN/logging.jsonl with
  'global_step/max_steps' but no 'step'; sft.py `_save_trainer_state` appends a last line holding
  log_history and best_model_checkpoint.
- transformers' TrainerState (trainer_state.json): global_step, max_steps, log_history (one dict
  per log, with its 'step'), best_model_checkpoint.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


def read_json(path: Path) -> Optional[dict]:
    if not path.is_file():  # a FIFO in a run dir would block the read forever; a dir cannot be read
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    # RecursionError: nested past Python's stack ([[[[…), which json raises instead of ValueError
    except (OSError, ValueError, RecursionError):  # missing, unreadable, or half-written by a killed run
        return None
    return data if isinstance(data, dict) else None


def number(v: object) -> Optional[float]:
    try:  # a 400-digit int (json reads any length) is no float: OverflowError
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return float(v) if ok else None
    except OverflowError:
        return None


@dataclass
class History:
    """Losses by the exact step they were logged at, from logging.jsonl and trainer_state.json."""

    loss: dict = field(default_factory=dict)
    eval_loss: dict = field(default_factory=dict)
    best_path: Optional[str] = None
    max_steps: Optional[int] = None

    def add(self, entry: object) -> None:
        if not isinstance(entry, dict):
            return
        step, total = entry.get("step"), None
        if not isinstance(step, int):  # logging.jsonl lines carry "global_step/max_steps": "12/100"
            m = re.match(r"^([0-9]+)/([0-9]+)$", str(entry.get("global_step/max_steps", "")))
            if not m:
                return
            step, total = int(m.group(1)), int(m.group(2))
        self.max_steps = total or self.max_steps
        for key, into in (("loss", self.loss), ("eval_loss", self.eval_loss)):
            if number(entry.get(key)) is not None:
                into[step] = number(entry.get(key))

    def add_summary(self, data: dict) -> None:
        """A trainer_state.json, or the last logging.jsonl line (sft.py `_save_trainer_state`)."""
        for entry in data.get("log_history") or []:
            self.add(entry)
        if isinstance(data.get("max_steps"), int) and data["max_steps"] > 0:
            self.max_steps = data["max_steps"]
        if isinstance(data.get("best_model_checkpoint"), str):
            self.best_path = data["best_model_checkpoint"]


def read_history(run_dir: Path, ckpt_dirs: list[Path]) -> History:
    hist = History()
    log = run_dir / "logging.jsonl"
    try:
        lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []  # is_file: not a FIFO
    except (OSError, ValueError):
        lines = []
    for line in lines:
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(entry, dict) and "log_history" in entry:
            hist.add_summary(entry)
        else:
            hist.add(entry)
    # trainer_state.json last, oldest first: its unrounded values win over logging.jsonl's rounded
    # ones (patcher.py add_train_message), and the newest best_model_checkpoint wins.
    for ckpt in ckpt_dirs:
        hist.add_summary(read_json(ckpt / "trainer_state.json") or {})
    return hist


def best_metric_of(run_dir: Path) -> Optional[str]:
    """'lowest eval_loss' / 'highest eval_token_acc': what HF's best_model_checkpoint was chosen
    by, from the run's args.json (metric_for_best_model, greater_is_better); None if unsaid.
    HF prefixes the metric with 'eval_' unless it already has it (Trainer._determine_best_metric)."""
    args = read_json(run_dir / "args.json") or {}
    metric = args.get("metric_for_best_model")
    if not isinstance(metric, str) or not metric:
        return None
    name = metric if metric.startswith("eval_") else f"eval_{metric}"
    greater = args.get("greater_is_better")
    if not isinstance(greater, bool):
        greater = not metric.endswith("loss")  # TrainingArguments.__post_init__'s default
    return f"{'highest' if greater else 'lowest'} {name}"
