"""Training values that transformers, torch or numpy refuse only once ms-swift is running.

Each was run on ms-swift 4.6.0 and 3.12.6 (tests/test_real_failures.py): the seed goes to
numpy's RandomState while the arguments are built, logging_steps 0 stops TrainingArguments, an
ms-swift --optimizer name it has not registered is a KeyError when the Trainer is built, and
Adam's betas and epsilon are checked by torch when the optimizer is, both after the model loaded.
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.checks.paths import plugin_keys
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_float, as_int, did_you_mean

TRAINS = ("sft", "pt", "rlhf")
# ms-swift's optimizers_map (4.x swift/optimizers/mapping.py, 3.x swift/plugin/optimizer.py), over
# every release: galore and lorap from 3.0, muon 3.2, multimodal 3.5, muonclip 3.12, default 4.0
OPTIMIZERS = ("default", "galore", "lorap", "muon", "muonclip", "multimodal")
SEED_MAX = 2**32 - 1  # numpy's RandomState: "Seed must be between 0 and 2**32 - 1"


def check_seed(job: Job, facts: Facts) -> list[Finding]:
    raw = job.args.get("seed")
    seed = as_int(raw)
    if job.command not in TRAINS or seed is None or isinstance(raw, bool) or 0 <= seed <= SEED_MAX:
        return []  # not an integer: checks/flags.py says so
    return [about(job, ERROR, "train.seed", "args.seed",
                  f"seed {raw} is outside numpy's range 0 to 2**32 - 1: ms-swift stops while it sets the seeds "
                  "(\"Seed must be between 0 and 2**32 - 1\")", "e.g. seed: 42")]


def check_logging_steps(job: Job, facts: Facts) -> list[Finding]:
    raw = job.args.get("logging_steps")
    if job.command not in TRAINS or raw is None or isinstance(raw, bool) or as_float(raw) != 0:
        return []
    if str(job.args.get("logging_strategy", "steps")).lower() != "steps":
        return []  # read only by the steps strategy
    return [about(job, ERROR, "train.logging_steps", "args.logging_steps",
                  f"logging_steps {raw} with logging_strategy steps: transformers refuses it while ms-swift builds "
                  "its training arguments (\"logging strategy IntervalStrategy.STEPS requires non-zero "
                  "--logging_steps\")", "e.g. logging_steps: 5; logging_strategy: no logs nothing")]


def check_optimizer(job: Job, facts: Facts) -> list[Finding]:
    name = job.args.get("optimizer")
    if job.command not in TRAINS or not isinstance(name, str) or not name or name in OPTIMIZERS:
        return []
    close = did_you_mean(name, OPTIMIZERS)
    hint = (f"did you mean {close[0]!r}? " if close else "") + \
        f"ms-swift registers {', '.join(OPTIMIZERS)}; transformers' own optimizers are chosen with --optim"
    plugin = plugin_keys(job)
    if plugin:
        return [about(job, WARNING, "train.optimizer.unknown", "args.optimizer",
                      f"optimizer {name!r} is none ms-swift registers, unless your --{plugin[0]} file registers it "
                      "(optimizers_map['name'] = ...)", hint)]
    return [about(job, ERROR, "train.optimizer.unknown", "args.optimizer",
                  f"optimizer {name!r} is none ms-swift registers: the run stops when the Trainer is built, after "
                  f"the model has loaded (KeyError: {name!r})", hint)]


def check_adam(job: Job, facts: Facts) -> list[Finding]:
    """torch's Adam/AdamW check their arguments when transformers builds the optimizer (adam.py:
    "Invalid beta parameter at index 0"), after the model has loaded. The values go only to the
    Adam family (transformers' default optim is an AdamW)."""
    optim = str(job.args.get("optim", "adamw"))
    if job.command not in TRAINS or "adam" not in optim.lower():
        return []
    out = []
    for index, key in enumerate(("adam_beta1", "adam_beta2")):
        raw = job.args.get(key)
        beta = as_float(raw)
        if beta is not None and not isinstance(raw, bool) and not 0 <= beta < 1:
            out.append(about(job, ERROR, "train.adam", f"args.{key}",
                             f"{key} {raw} is no Adam beta (0 or more, below 1): torch refuses it when the optimizer "
                             f"is built, after the model has loaded (\"Invalid beta parameter at index {index}\")",
                             "the defaults are adam_beta1: 0.9, adam_beta2: 0.999"))
    raw = job.args.get("adam_epsilon")
    eps = as_float(raw)
    if eps is not None and not isinstance(raw, bool) and not eps >= 0:
        out.append(about(job, ERROR, "train.adam", "args.adam_epsilon",
                         f"adam_epsilon {raw} is below 0: torch refuses it when the optimizer is built, after the "
                         "model has loaded (\"Invalid epsilon value\")", "the default is adam_epsilon: 1e-8"))
    return out


CHECKS = [check_seed, check_logging_steps, check_optimizer, check_adam]
