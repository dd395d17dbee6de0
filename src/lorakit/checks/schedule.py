"""The learning-rate schedule and its warmup, as transformers builds them under ms-swift.

transformers checks the scheduler's name, the warmup and an eval strategy for the schedulers that
need one while ms-swift builds its TrainingArguments, and calls the scheduler function only when
training starts, after the model and the data have loaded (Trainer.create_scheduler ->
optimization.py get_scheduler, lr_scheduler_kwargs as its keyword arguments): a keyword the
function lacks is a TypeError then, a min_lr schedule without min_lr a ValueError. Each finding
here was measured on ms-swift 4.6.0 and 3.12.6 (tests/test_real_failures.py).
"""

from __future__ import annotations

import json

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, INFO, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_float, as_int, did_you_mean, parsed_json

TRAINS = ("sft", "pt", "rlhf")
# get_scheduler's functions (transformers 4.57.6 and 5.19.0 optimization.py TYPE_TO_SCHEDULER_FUNCTION;
# tests/test_schedule.py compares them with each installed transformers): the keywords each takes
# from lr_scheduler_kwargs, and the ones it cannot do without. greedy (5.x) builds a class of its own.
_LAST = ("last_epoch",)
SCHEDULERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "linear": (_LAST, ()),
    "cosine": (("num_cycles", *_LAST), ()),
    "cosine_with_restarts": (("num_cycles", *_LAST), ()),
    "polynomial": (("lr_end", "power", *_LAST), ()),
    "cosine_with_min_lr": (("num_cycles", "min_lr", "min_lr_rate", *_LAST), ()),
    "cosine_warmup_with_min_lr": (("num_cycles", "min_lr", "min_lr_rate", "warmup_lr_rate", *_LAST), ()),
    "warmup_stable_decay": (("num_decay_steps", "num_stable_steps", "warmup_type", "decay_type", "min_lr_ratio",
                             "num_cycles", *_LAST), ("num_decay_steps",)),
    # torch.optim.lr_scheduler.ReduceLROnPlateau's own arguments
    "reduce_lr_on_plateau": (("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr",
                              "eps"), ()),
    # transformers 4.x calls it without the kwargs, 5.x passes them: _transformers_5
    "inverse_sqrt": (("timescale", *_LAST), ()),
}
IGNORES_KWARGS = ("constant", "constant_with_warmup")  # get_scheduler calls these without the kwargs
NEEDS_EVAL = ("reduce_lr_on_plateau", "greedy")  # training_args.py __post_init__: "requires an eval strategy"
NAMES = (*SCHEDULERS, *IGNORES_KWARGS, "greedy")
STEPS_GIVEN = ("num_warmup_steps", "num_training_steps")  # get_scheduler passes these itself
MIN_LR = ("cosine_with_min_lr", "cosine_warmup_with_min_lr")
# ms-swift's own warmup checks (swift/trainers/arguments.py _handle_hf_removed_args), from 4.5.0
SWIFT_WARMUP_CHECKS = (4, 5)
INF = float("inf")


def _minor(job: Job) -> tuple[int, int]:
    from lorakit.flaghistory import targeted

    return targeted(job.swift_major, job.swift_version)


def _kwargs(job: Job):
    """lr_scheduler_kwargs as a mapping, or None (unset, or not JSON of one: the flag check or
    ms-swift's json_parse_to_dict says so)."""
    value = parsed_json(job.args.get("lr_scheduler_kwargs"))
    return value if isinstance(value, dict) else None


def _evaluates(job: Job) -> bool:
    from lorakit.checks.policy import has_val_data

    # ms-swift takes eval_strategy from save_strategy when it is not given (4.6.0 sft_args.py:407-408)
    strategy = job.args.get("eval_strategy", job.args.get("save_strategy", "steps"))
    return has_val_data(job) and str(strategy).lower() not in ("no", "false")


DEFAULT = "cosine"  # ms-swift's own default (trainers/arguments.py: 3.0.0 to 4.6.0 alike)
NUMBERS = ("min_lr", "min_lr_rate")  # divided and multiplied as they are: text is a TypeError


def _transformers_5(job: Job, facts: Facts) -> bool | None:
    """Whether the transformers that runs is 5.x (greedy; inverse_sqrt reads its kwargs). ms-swift
    3.x pins transformers below 4.58; 4.x takes 4.33 to 5.x, so the one installed where the
    launch runs decides (None: not known, as for a dry-run for another machine)."""
    if job.swift_major < 4:
        return False
    version = ((facts.packages(job.env) if facts.here else None) or {}).get("transformers") or ""
    major = version.split(".")[0]
    return int(major) >= 5 if major.isdigit() else None


def _unknown(job: Job, name: str, key: str, new: bool | None) -> Finding:
    names = NAMES if new is not False else NAMES[:-1]
    # transformers takes the value only as written: COSINE_WITH_MIN_LR is as wrong as a typo
    close = [name.lower()] if name.lower() in names else did_you_mean(name, names)
    older = (" on ms-swift 3.x (its transformers, below 4.58, has no greedy)" if job.swift_major < 4 else
             " in the transformers 4.x installed here (greedy is 5.x's)")
    return about(job, ERROR, "train.scheduler.unknown", key,
                 f"lr_scheduler_type {name!r} is no transformers scheduler" + (older if name in NAMES else "")
                 + f": ms-swift stops while building its training arguments (\"{name} is not a valid SchedulerType\")",
                 (f"did you mean {close[0]!r}? " if close else "")
                 + "transformers has " + ", ".join(NAMES[:-1]) + " (and greedy from 5.x)")


def check_scheduler(job: Job, facts: Facts) -> list[Finding]:
    name = job.args.get("lr_scheduler_type")
    if name is None and job.args.get("lr_scheduler_kwargs") not in (None, ""):
        name = DEFAULT  # kwargs with no name go to ms-swift's default schedule, and are judged by it
    if job.command not in TRAINS or name is None or not isinstance(name, str):
        return []
    key = "args.lr_scheduler_type"
    new = _transformers_5(job, facts) if name == "greedy" or name == "inverse_sqrt" else None
    if name not in NAMES or name == "greedy" and new is False:
        return [_unknown(job, name, key, new)]
    out = []
    if name in NEEDS_EVAL and not _evaluates(job):
        out.append(about(job, ERROR, "train.scheduler.needs_eval", key,
                         f"lr_scheduler_type {name} lowers the learning rate on the eval metric, and this run "
                         f"evaluates nothing: transformers refuses it (\"lr_scheduler_type {name} requires an "
                         "eval strategy\")",
                         "add val_dataset (or split_dataset_ratio: 0.05) with eval_steps, or use cosine"))
    kwargs = _kwargs(job)
    # transformers 4.x builds inverse_sqrt without the kwargs, 5.x passes them (get_scheduler)
    ignores = IGNORES_KWARGS + (("inverse_sqrt",) if new is False else ())
    if name in ignores or name == "greedy":
        if kwargs and name != "greedy":
            out.append(about(job, INFO, "train.scheduler.kwargs_ignored", "args.lr_scheduler_kwargs",
                             f"lr_scheduler_type {name} reads no lr_scheduler_kwargs: {sorted(kwargs)} do nothing",
                             "for a floor under the learning rate: cosine_with_min_lr with {\"min_lr_rate\": 0.1}"))
        return out
    if kwargs is None and job.args.get("lr_scheduler_kwargs") not in (None, ""):
        # a file path, or text ms-swift json_repairs: what it reads is not known here, so no
        # keyword is judged (refusing it was a false alarm: the hostile review's F8, F13)
        return out
    takes, needs = SCHEDULERS[name]
    named = name if job.args.get("lr_scheduler_type") is not None else f"{name} (ms-swift's default)"
    # a missing keyword is said of what the user wrote: the kwargs when given, else the name
    where = "args.lr_scheduler_kwargs" if job.args.get("lr_scheduler_kwargs") is not None else key
    kwargs = kwargs or {}
    for extra in (k for k in kwargs if k not in takes):
        if extra in STEPS_GIVEN:
            why = f"transformers passes {extra} itself (from warmup_steps / the run's length): given twice"
        else:
            close = did_you_mean(extra, takes)
            why = f"{name} takes " + (", ".join(takes) if takes else "none") + \
                (f" (did you mean {close[0]!r}?)" if close else "")
        # inverse_sqrt: a warning when the transformers that will run is not known
        level = WARNING if name == "inverse_sqrt" and new is None else ERROR
        out.append(about(job, level, "train.scheduler.kwarg_unknown", "args.lr_scheduler_kwargs",
                         f"lr_scheduler_kwargs {extra!r} is no argument of the {named} schedule: the run fails once "
                         "training starts, after the model has loaded (TypeError: unexpected keyword argument)",
                         why + ("; for a floor under a cosine schedule: lr_scheduler_type cosine_with_min_lr"
                                if extra in ("min_lr", "min_lr_rate") and name not in MIN_LR else "")))
    for missing in (k for k in needs if k not in kwargs):
        out.append(about(job, ERROR, "train.scheduler.kwarg_missing", where,
                         f"lr_scheduler_type {name} needs {missing} in lr_scheduler_kwargs: the run fails once "
                         "training starts, after the model has loaded (TypeError: missing argument)",
                         f"e.g. lr_scheduler_kwargs: {{\"{missing}\": 100}} (the steps of the final decay)"))
    if name in MIN_LR:
        # transformers tests `is not None`: a null is as good as leaving the key out
        given = [k for k in ("min_lr", "min_lr_rate") if kwargs.get(k) is not None]
        if len(given) != 1:
            what = "both min_lr and min_lr_rate" if given else "neither min_lr nor min_lr_rate"
            raised = ("Only one of min_lr or min_lr_rate should be set" if given else
                      "One of min_lr or min_lr_rate should be set through the `lr_scheduler_kwargs`")
            out.append(about(job, ERROR, "train.scheduler.min_lr", where,
                             f"lr_scheduler_type {name} with {what} in lr_scheduler_kwargs: transformers fails once "
                             f"training starts, after the model has loaded (\"{raised}\")",
                             "give one: lr_scheduler_kwargs: {\"min_lr_rate\": 0.1} (a tenth of learning_rate) or "
                             "{\"min_lr\": 1e-6}"))
    for number in (k for k in NUMBERS if name in MIN_LR and k in kwargs):
        value = kwargs[number]
        if value is None or not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value < INF:
            continue
        if isinstance(value, bool):  # True / lr divides: a floor of 1 (or 0), never what was meant
            why = "transformers would compute with it as " + ("1" if value else "0")
        elif not isinstance(value, (int, float)):
            why = "transformers computes with it once training starts, after the model has loaded (TypeError)"
        elif value < 0:  # the schedule's floor below 0: a negative learning rate at the end, no error
            why = "the learning rate would end below 0 and training would climb the loss, silently"
        else:  # nan or inf: the learning rate ends at nan, or at 0
            why = "the learning rate would end at nan or 0, silently"
        out.append(about(job, ERROR, "train.scheduler.kwarg_type", "args.lr_scheduler_kwargs",
                         f"lr_scheduler_kwargs {number} is {json.dumps(value)}, not a number 0 or more: {why}",
                         f"write the number unquoted: {{\"{number}\": {_unquoted(value, number)}}}"))
    return out


def _unquoted(value, number: str) -> str:
    given = as_float(value) if isinstance(value, str) else None
    return value.strip() if given is not None and 0 <= given < INF else "1e-6" if number == "min_lr" else "0.1"


def check_warmup(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in TRAINS:
        return []
    out = []
    raw_ratio, raw_steps = job.args.get("warmup_ratio"), job.args.get("warmup_steps")
    ratio, steps = as_float(raw_ratio), as_float(raw_steps)
    swift_checks = _minor(job) >= SWIFT_WARMUP_CHECKS
    if ratio is not None and raw_ratio is not None and not isinstance(raw_ratio, bool):
        if not 0 <= ratio <= 1 or (ratio == 1 and swift_checks):  # nan too: every comparison is False
            limit = "below 1" if swift_checks else "at most 1"
            out.append(about(job, ERROR, "train.warmup_ratio", "args.warmup_ratio",
                             f"warmup_ratio {raw_ratio} is not a share of the run (it must be 0 or more and {limit}): "
                             "ms-swift stops while building its training arguments",
                             "e.g. warmup_ratio: 0.05; for a number of steps, warmup_steps: N"))
    if steps is not None and raw_steps is not None and not isinstance(raw_steps, bool) and not 0 <= steps < INF:
        # transformers 5 refuses a negative count in __post_init__; nan and inf pass it, and
        # get_warmup_steps turns them into an int only when training starts (ValueError / OverflowError)
        when = ("transformers stops while ms-swift builds its training arguments" if steps < 0 else
                "transformers takes it while ms-swift builds its training arguments and fails once training starts, "
                "after the model has loaded (it cannot count that many steps)")
        out.append(about(job, ERROR, "train.warmup_steps", "args.warmup_steps",
                         f"warmup_steps {raw_steps} is not a number of steps (it must be "
                         f"{'0 or more' if steps < 0 else 'a finite count'}): {when}",
                         "e.g. warmup_steps: 100"))
    run = as_int(job.args.get("max_steps"))
    if steps is not None and 1 <= steps < INF and not isinstance(raw_steps, bool) and run is not None \
            and 0 < run <= steps:
        # transformers' schedulers ramp linearly over num_warmup_steps: with max_steps no longer
        # than that the whole run is warmup, at a fraction of the learning rate asked for
        out.append(about(job, WARNING, "train.warmup.whole_run", "args.warmup_steps",
                         f"warmup_steps {raw_steps} is not shorter than the run (max_steps {run}): the learning rate "
                         "climbs for the whole run and never reaches learning_rate",
                         f"e.g. warmup_steps: {max(1, round(run * 0.05))} (about 5% of max_steps), "
                         "or warmup_ratio: 0.05"))
    if ratio and steps:  # both set in one layer: fixups.later_warmup_wins settled the others
        if swift_checks:
            out.append(about(job, ERROR, "train.warmup.both", "args.warmup_steps",
                             f"warmup_ratio {raw_ratio} and warmup_steps {raw_steps} both set the warmup: ms-swift "
                             "refuses them together (\"`warmup_ratio` and `warmup_steps` cannot be set at the same "
                             "time.\")", "keep one of them"))
        else:
            out.append(about(job, WARNING, "train.warmup.both", "args.warmup_steps",
                             f"warmup_ratio {raw_ratio} and warmup_steps {raw_steps} both set the warmup: transformers "
                             "uses the steps and ignores the ratio (ms-swift 4.5+ refuses both)", "keep one of them"))
    return out


CHECKS = [check_scheduler, check_warmup]
