"""LoRA rules: rank 4-64, alpha positive, alpha/rank (alpha/sqrt(rank) with rsLoRA) in a sane range.

The usual recipes put alpha/rank between 2 (r16/alpha32, the most common community setting) and 8;
only far outside (below 1, above 16) is the update scale likely wrong rather than a choice."""

from __future__ import annotations

import math

from lorakit.checks.facts import Facts
from lorakit.checks.paths import plugin_keys
from lorakit.values import as_bool, as_float, as_int, did_you_mean
from lorakit.findings import ERROR, INFO, WARNING, Finding, about
from lorakit.job import Job

RANK_RANGE = (4, 64)
RATIO_BAND = (2, 8)  # usual: quiet inside, information outside
RATIO_SANE = (1, 16)  # a warning only outside this
LORA_TUNERS = ("lora", "longlora")


# ms-swift's tuners (get_supported_tuners: the built-in set | the tuner plugins), per major:
# 4.6.0 swift/arguments/base_args/base_args.py:56 + swift/tuner_plugin/mapping.py tuners_map;
# 3.12.6 swift/llm/argument/base_args/base_args.py:24 + swift/plugin/tuner.py extra_tuners.
BUILTIN_TUNERS = ("lora", "full", "longlora", "adalora", "llamapro", "adapter", "vera", "boft", "fourierft",
                  "reft", "bone")
TUNERS = {3: BUILTIN_TUNERS + ("ia3", "dummy"), 4: BUILTIN_TUNERS + ("ia3", "lora_llm", "dummy")}


def check_tuner_type(job: Job, facts: Facts) -> list[Finding]:
    """An unknown tuner_type passes argparse (a plain str) and stops ms-swift only after the model
    has loaded (swift/pipelines/train/tuner.py prepare_adapter). A plugin can register more
    (--external_plugins): then only a warning."""
    raw = job.args.get("tuner_type")
    known = TUNERS.get(job.swift_major)
    if job.command not in ("sft", "pt", "rlhf") or raw is None or known is None or str(raw) in known:
        return []
    value = str(raw)
    if value.lower() == "qlora":
        hint = "QLoRA in ms-swift is tuner_type: lora with quant_bits: 4 (bitsandbytes)"
    else:
        close = did_you_mean(value, known, n=1)
        hint = (f"did you mean {close[0]!r}? " if close else "") + "ms-swift's tuners: " + ", ".join(known)
    plugin = plugin_keys(job)
    return [about(job, WARNING if plugin else ERROR, "lora.tuner.unknown", "args.tuner_type",
                  f"tuner_type {value!r} is not an ms-swift {job.swift_major}.x tuner"
                  + (f" (unless your --{plugin[0]} file registers it)" if plugin else
                     ": ms-swift stops only after the model has loaded"), hint)]


def _is_lora(job: Job) -> bool:
    return job.command == "sft" and str(job.args.get("tuner_type", "lora")) in LORA_TUNERS


def check_rank(job: Job, facts: Facts) -> list[Finding]:
    if not _is_lora(job) or "lora_rank" not in job.args:
        return []
    raw = job.args["lora_rank"]
    rank = as_int(raw)
    if rank is None or rank <= 0:
        return [about(job, ERROR, "lora.rank.invalid", "args.lora_rank",
                        f"lora_rank must be a positive integer, got {raw!r}",
                        "4 to 64 is usual; 8 is common")]
    low, high = RANK_RANGE
    if not low <= rank <= high:
        return [about(job, WARNING, "lora.rank.range", "args.lora_rank",
                        f"lora_rank {rank} is outside the recommended {low}-{high}",
                        "higher ranks cost memory and parameters; lower ones may underfit")]
    return []


def check_alpha(job: Job, facts: Facts) -> list[Finding]:
    if not _is_lora(job) or "lora_alpha" not in job.args:
        return []
    raw = job.args["lora_alpha"]
    alpha = as_float(raw)
    if alpha is None or alpha <= 0 or not math.isfinite(alpha):
        return [about(job, ERROR, "lora.alpha.invalid", "args.lora_alpha",
                        f"lora_alpha must be a positive number, got {raw!r}",
                        "32 is common; choose it so that alpha/rank is about 4 to 8")]
    return []  # its size only matters relative to the rank: check_ratio


def check_ratio(job: Job, facts: Facts) -> list[Finding]:
    if not _is_lora(job):
        return []
    rank = as_int(job.args.get("lora_rank", 8))  # ms-swift's defaults: rank 8, alpha 32
    alpha = as_float(job.args.get("lora_alpha", 32))
    if rank is None or rank <= 0 or alpha is None or alpha <= 0 or rank > 10**6:
        return []  # a rank past a million: check_rank already says it is out of range
    rslora = as_bool(job.args.get("use_rslora", False)) is True
    try:
        divisor = math.sqrt(rank) if rslora else rank
        scale = alpha / divisor
    except OverflowError:  # a rank beyond a float: check_rank already says it is out of range
        return []
    low, high = RATIO_BAND
    if low <= scale <= high:
        return []
    what = "alpha/sqrt(rank)" if rslora else "alpha/rank"
    lo_alpha, hi_alpha = low * divisor, high * divisor
    note = " (use_rslora scales by alpha/sqrt(rank), so the ratio is read on that scale)" if rslora else ""
    key = "args.lora_alpha" if "lora_alpha" in job.args else "args.lora_rank"
    far = not RATIO_SANE[0] <= scale <= RATIO_SANE[1]
    return [about(job, WARNING if far else INFO, "lora.ratio", key,
                    f"{what} = {alpha:g}/{divisor:g} = {scale:.3g}" + (
                        f", far outside {RATIO_SANE[0]}-{RATIO_SANE[1]}: the LoRA update is scaled {'up' if scale > high else 'down'} "
                        "that much" if far else f", outside the usual {low}-{high}") + note,
                    f"for lora_rank {rank}, lora_alpha between {lo_alpha:g} and {hi_alpha:g} is usual")]


def check_dropout(job: Job, facts: Facts) -> list[Finding]:
    if not _is_lora(job) or "lora_dropout" not in job.args:
        return []
    raw = job.args["lora_dropout"]
    value = as_float(raw)
    if value is None or not 0 <= value < 1:
        return [about(job, ERROR, "lora.dropout.invalid", "args.lora_dropout",
                        f"lora_dropout must be in [0, 1), got {raw!r}", "0.05 is ms-swift's default")]
    return []


def check_all_linear(job: Job, facts: Facts) -> list[Finding]:
    targets = job.args.get("target_modules", ["all-linear"])
    targets = targets if isinstance(targets, list) else [targets]
    if not _is_lora(job) or "all-linear" not in [str(t) for t in targets]:
        return []
    return [about(job, INFO, "lora.targets.all_linear", "args.target_modules",
                    "target_modules all-linear puts LoRA on every linear layer: more memory "
                    "than attention-only",
                    "if memory is tight: target_modules: [q_proj, k_proj, v_proj, o_proj]")]


CHECKS = [check_tuner_type, check_rank, check_alpha, check_ratio, check_dropout, check_all_linear]
