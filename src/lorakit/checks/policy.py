"""Evaluation and checkpoint policy, and values no one means.

ms-swift turns evaluation off when there is no validation data (sft_args.py: `if not
(self.eval_dataset or self._val_dataset_exists): self.eval_strategy = 'no'`), and 4.x's default
split_dataset_ratio is 0: eval_steps alone evaluates nothing. transformers then refuses
load_best_model_at_end unless save and eval strategies match and save_steps is a multiple of
eval_steps (training_args.py __post_init__), only once the model is loading. ms-swift issues
#9780, #3314, #4509 are these.
"""

from __future__ import annotations

import math

from lorakit.checks.facts import Facts
from lorakit.checks.lora import _is_lora
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_bool, as_float, as_int

LORA_LR_HIGH = 1e-2  # LoRA recipes use 1e-4 to 5e-4; 1e-2 and above diverges


# ms-swift held out 1% of the data for evaluation by default up to 3.5, and nothing from 3.6 on
# (DataArguments.split_dataset_ratio: 0.01 in 3.0.3-3.5.3's swift/llm/argument/base_args/
# data_args.py, 0. from 3.6.0, and in 4.x's swift/arguments/base_args/data_args.py).
SPLIT_BY_DEFAULT_UNTIL = (3, 5)


def default_split_ratio(job: Job) -> float:
    from lorakit.flaghistory import targeted  # the history is read only for an older minor

    return 0.01 if targeted(job.swift_major, job.swift_version) <= SPLIT_BY_DEFAULT_UNTIL else 0.0


def split_ratio(job: Job) -> float | None:
    value = job.args.get("split_dataset_ratio")
    return default_split_ratio(job) if value is None else as_float(value)


def _default_said(job: Job) -> str:
    if job.args.get("split_dataset_ratio") is not None:
        return ""
    return " (ms-swift's default from 3.6 on)" if job.swift_major == 3 else " (ms-swift's default)"


def has_val_data(job: Job) -> bool:
    val = job.args.get("val_dataset")
    ratio = split_ratio(job)
    return bool(val) or (ratio is not None and ratio > 0)


def _strategy(job: Job, key: str, default: str) -> str:
    value = job.args.get(key)
    return default if value is None else str(value)


def _named(value) -> bool:
    """eval_dataset as ms-swift's list reads it: `--eval_dataset ''` is [''], which counts."""
    return isinstance(value, str) or (isinstance(value, (list, tuple)) and len(value) > 0)


def check_eval_data(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "sft" or has_val_data(job) or _strategy(job, "eval_strategy", "steps") == "no":
        return []
    # EvalScope benchmarks during training (`eval_dataset`, ms-swift 3.6+ and 4.x) keep evaluation
    # on without a val_dataset (sft_args.py: `if not (self.eval_dataset or self._val_dataset_exists):
    # self.eval_strategy = 'no'`); the trainer runs them only with eval_use_evalscope true (4.6.0
    # swift/trainers/mixin.py _maybe_log_save_evaluate).
    benchmarks = _named(job.args.get("eval_dataset"))
    if benchmarks and as_bool(job.args.get("eval_use_evalscope", False)) is not True:
        # Measured on 4.6.0 and 3.12.6 (tests/test_real_failures.py): evaluation stays on with an
        # empty eval set, and the first evaluation raises KeyError: metric_for_best_model 'eval_loss'
        # not found, after training has started.
        return [about(job, ERROR, "eval.benchmarks_off", "args.eval_dataset",
                      "eval_dataset names EvalScope benchmarks, which run only with eval_use_evalscope true; "
                      "with no val_dataset and split_dataset_ratio 0"
                      f"{_default_said(job)} evaluation stays on with nothing to evaluate, and the first "
                      "evaluation fails (KeyError: 'eval_loss' not found) after training has started",
                      "add eval_use_evalscope: true (and `pip install evalscope`) to run the benchmarks; "
                      "or val_dataset: [FILE] for an eval loss; or drop eval_dataset")]
    asked = [k for k in ("eval_steps", "eval_strategy") if job.args.get(k) is not None]
    if not asked or benchmarks:
        return []
    return [about(job, WARNING, "eval.no_data", f"args.{asked[0]}",
                    f"{asked[0]} is set, but there is no val_dataset and split_dataset_ratio is 0"
                    f"{_default_said(job)}: ms-swift turns evaluation off, so nothing is evaluated",
                    "add val_dataset: [FILE], or split_dataset_ratio: 0.01 to hold out 1% of the data; "
                    "or drop eval_steps")]


def check_best_model(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "sft" or as_bool(job.args.get("load_best_model_at_end", False)) is not True:
        return []
    key = "args.load_best_model_at_end"
    # Not an error (a real run: tests/test_real_failures.py). While training, the trainer keeps the
    # newest and the best (the limit counts as 2: ms-swift 4.6.0 swift/trainers/mixin.py:497-500,
    # 3.12.6 :446-449); at the end transformers deletes every checkpoint but the best
    # (trainer.py _inner_training_loop, `save_total_limit == 1`), so what ms-swift logged as the
    # last checkpoint is gone. Users who set it want "only the best" (ms-swift #9780): they get it.
    out = [] if as_int(job.args.get("save_total_limit")) != 1 else [
        about(job, WARNING, "eval.best_limit", "args.save_total_limit",
              "save_total_limit 1 with load_best_model_at_end: at the end transformers deletes every checkpoint "
              "but the best, so the last one (ms-swift's last_model_checkpoint, last-checkpoint) is gone and the "
              "run cannot be resumed from its end",
              "to keep the last checkpoint too: save_total_limit: 2 (`lorakit checkpoints` lists what is left)")]
    if not has_val_data(job):  # every problem at once: adding eval data leaves save_total_limit wrong
        return [about(job, ERROR, "eval.best_without_eval", key,
                        "load_best_model_at_end needs evaluation, but there is no val_dataset and "
                        "split_dataset_ratio is 0: ms-swift turns evaluation off and transformers then refuses "
                        "the run (save and eval strategies must match)",
                        "add val_dataset: [FILE] or split_dataset_ratio: 0.01, or drop load_best_model_at_end"),
                *out]
    save, evals = _strategy(job, "save_strategy", "steps"), _strategy(job, "eval_strategy", "steps")
    if save != "best" and save != evals:
        out.append(about(job, ERROR, "eval.best_strategies", key,
                           f"load_best_model_at_end needs save_strategy and eval_strategy to match: {save} vs {evals}",
                           "set both to steps (or save_strategy: best)"))
    save_steps, eval_steps = as_int(job.args.get("save_steps", 500)), as_int(job.args.get("eval_steps"))
    eval_steps = eval_steps if eval_steps is not None else as_int(job.args.get("logging_steps"))
    if save == evals == "steps" and save_steps and eval_steps and save_steps >= 1 and eval_steps >= 1 \
            and save_steps % eval_steps:
        out.append(about(job, ERROR, "eval.best_steps", "args.save_steps",
                           f"load_best_model_at_end needs save_steps to be a multiple of eval_steps: "
                           f"{save_steps} is not a multiple of {eval_steps} (transformers refuses it at start-up)",
                           f"e.g. save_steps: {eval_steps * max(save_steps // eval_steps, 1)}"))
    return out


def check_learning_rate(job: Job, facts: Facts) -> list[Finding]:
    raw = job.args.get("learning_rate")
    rate = as_float(raw)
    if job.command != "sft" or raw is None or rate is None:
        return []  # not a number: checks/flags.py says so
    if not 0 < rate < 1:  # written so that nan is refused too: every comparison with it is False
        return [about(job, ERROR, "train.learning_rate", "args.learning_rate",
                        f"learning_rate {raw} is not a learning rate (it must be above 0 and below 1)",
                        "LoRA recipes use 1e-4 to 5e-4")]
    if rate > LORA_LR_HIGH and _is_lora(job):
        return [about(job, WARNING, "train.learning_rate.high", "args.learning_rate",
                        f"learning_rate {raw} is high for LoRA (recipes use 1e-4 to 5e-4): training may diverge",
                        "try 1e-4")]
    return []


def check_length_and_steps(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "sft":
        return []
    out = []
    length = job.args.get("max_length")
    if length is not None and as_int(length) is not None and as_int(length) <= 0:
        out.append(about(job, ERROR, "train.max_length", "args.max_length",
                           f"max_length {length} leaves no room for a single token", "e.g. max_length: 2048"))
    epochs, steps = as_float(job.args.get("num_train_epochs", 3.0)), as_int(job.args.get("max_steps", -1))
    if epochs is not None and not math.isfinite(epochs) and (steps is None or steps <= 0):
        # transformers counts max_steps = ceil(epochs x steps per epoch): inf or nan fails after load
        out.append(about(job, ERROR, "train.no_steps", "args.num_train_epochs",
                         f"num_train_epochs {job.args.get('num_train_epochs')} with no max_steps: transformers cannot "
                         "count the steps to train", "set num_train_epochs: 1 or more, or max_steps: N"))
    elif epochs is not None and epochs <= 0 and (steps is None or steps <= 0):
        out.append(about(job, ERROR, "train.no_steps", "args.num_train_epochs",
                           f"num_train_epochs {job.args.get('num_train_epochs')} with no max_steps trains nothing",
                           "set num_train_epochs: 1 or more, or max_steps: N"))
    return out


def check_save_grid(job: Job, facts: Facts) -> list[Finding]:
    """The trainer marks a checkpoint "best" only when it saves, by the newest evaluation before
    that save (transformers trainer.py _save_checkpoint / _determine_best_metric): an evaluation
    at a step with no save has no checkpoint, so the best one may be on no disk (ms-swift #3314:
    eval every 50, save every 200, best eval at 1050). load_best_model_at_end: eval.best_steps."""
    if job.command not in ("sft", "rlhf") or as_bool(job.args.get("load_best_model_at_end", False)) is True:
        return []
    if not has_val_data(job) or _strategy(job, "eval_strategy", "steps") != "steps" \
            or _strategy(job, "save_strategy", "steps") != "steps":
        return []
    save_steps, eval_steps = as_int(job.args.get("save_steps", 500)), as_int(job.args.get("eval_steps"))
    if eval_steps is None and job.args.get("eval_steps") is not None:
        return []  # 0.1: a ratio of the total steps (TrainingArguments), not logging_steps
    eval_steps = eval_steps if eval_steps is not None else as_int(job.args.get("logging_steps"))
    if not (save_steps and eval_steps and save_steps >= 1 and eval_steps >= 1) or eval_steps % save_steps == 0:
        return []
    return [about(job, WARNING, "eval.save_steps_unaligned", "args.save_steps",
                  f"save_steps {save_steps} with eval_steps {eval_steps}: evaluations fall on steps with no "
                  "checkpoint, and a checkpoint counts as best only by the evaluation before it was saved, so the "
                  "best evaluation may have no checkpoint",
                  f"save_steps: {eval_steps} keeps a checkpoint at every evaluation")]


def check_limit_keeps_best(job: Job, facts: Facts) -> list[Finding]:
    """With evaluation, ms-swift always names a metric for the best checkpoint (4.6.0
    swift/arguments/sft_args.py:430-432, 3.12.6 swift/llm/argument/train_args.py:61-62: 'loss'),
    and its rotation keeps that best one besides the newest when save_total_limit is 1 (4.6.0
    swift/trainers/mixin.py:497-500, 3.12.6 :446-449): two checkpoints on disk, three while one is
    being written. A disk sized for one fills up (ms-swift #6392: a 4B full fine-tune)."""
    if job.command not in ("sft", "rlhf") or as_int(job.args.get("save_total_limit")) != 1:
        return []
    if as_bool(job.args.get("load_best_model_at_end", False)) is True:
        return []  # check_best_model says what happens then
    saves = _strategy(job, "save_strategy", "steps").lower()
    # ms-swift takes eval_strategy from save_strategy when it is not given (4.6.0 sft_args.py:407-408)
    if not has_val_data(job) or saves == "no" or _strategy(job, "eval_strategy", saves).lower() == "no":
        return []
    metric = job.args.get("metric_for_best_model") or (
        "rouge-l" if as_bool(job.args.get("predict_with_generate", False)) is True else "eval loss")
    return [about(job, WARNING, "eval.limit_keeps_best", "args.save_total_limit",
                  "save_total_limit 1 with evaluation keeps two checkpoints, not one: ms-swift ranks them by "
                  f"{metric} and keeps the best besides the newest "
                  "(three on disk while the next one is written)",
                  "size the disk for 3 checkpoints, or save_total_limit: 2 to say so; eval_strategy: no keeps one")]


CHECKS = [check_eval_data, check_best_model, check_save_grid, check_limit_keeps_best, check_learning_rate, check_length_and_steps]
