"""Checks: pure functions `job -> list[Finding]`, all run, all reported at once
(torchtune's config/_validate.py collects every problem into one error)."""

from __future__ import annotations

from typing import Callable

from lorakit.checks import layout, lora, policy, training
from lorakit.checks.facts import Facts
from lorakit.findings import Finding, sort_findings
from lorakit.job import Job

Check = Callable[[Job, Facts], "list[Finding]"]


# The check modules, in the order their findings were written; a module whose every check is for
# some commands only is imported only for those (a `train` dry-run does not import the rlhf ones).
MODULES = ("lora", "layout", "training", "features", "policy", "nodes", "flags", "model", "seqpar", "maxlength",
           "modelage", "requires", "visionutils", "paths", "resumed", "data", "pixels", "datasetinfo", "argv",
           "rlhf", "rewards", "memory", "engine", "precision", "lossscale", "export", "reporting", "schedule", "trainargs",
           "attention", "losstype", "retrieval")
ONLY_FOR = {"rlhf": ("rlhf",), "rewards": ("rlhf",), "engine": ("infer", "deploy"),
            "precision": ("sft", "pt", "rlhf"), "export": ("export",), "reporting": ("sft", "pt", "rlhf"),
            "schedule": ("sft", "pt", "rlhf"), "trainargs": ("sft", "pt", "rlhf"), "losstype": ("sft", "pt"),
            "retrieval": ("sft", "pt")}


# A module whose every check starts from one of these arguments is imported only for a job that
# sets one (the dry-run of a preset without them does not pay for the import).
ONLY_WITH = {"lossscale": ("loss_scale",), "seqpar": ("sequence_parallel_size",),
             "datasetinfo": ("custom_dataset_info",), "resumed": ("resume_from_checkpoint",),
             "reporting": ("report_to",),
             "schedule": ("lr_scheduler_type", "warmup_ratio", "warmup_steps"),
             "trainargs": ("seed", "logging_steps", "optimizer", "adam_beta1", "adam_beta2", "adam_epsilon"),
             "attention": ("attn_impl",), "losstype": ("loss_type",),
             "retrieval": ("task_type",)}


def all_checks(command: str | None = None, args: dict | None = None) -> list[Check]:
    """Every check (of the modules that can apply to `command`, and to a job with `args`, when given)."""
    from importlib import import_module

    out: list[Check] = []
    for name in MODULES:
        if command is not None and command not in ONLY_FOR.get(name, (command,)):
            continue
        if args is not None and name in ONLY_WITH and all(args.get(k) is None for k in ONLY_WITH[name]):
            continue
        out += import_module(f"lorakit.checks.{name}").CHECKS
    return out


def run_checks(job: Job, facts: Facts | None = None) -> list[Finding]:
    import sys

    facts = facts or Facts()
    datafile = sys.modules.get("lorakit.datafile")  # its reads are shared within one run of the checks only
    if datafile is not None:
        datafile.forget()
    findings = list(job.adjustments)
    for check in all_checks(job.command, job.args):
        findings.extend(check(job, facts))
    return sort_findings(once(findings))


def once(findings: list[Finding]) -> list[Finding]:
    """One mistake, one finding: a value argparse cannot read (flags.value, flags.unknown) is not
    reported again by the rule that wanted a sane value there (`lora_rank: eight` was both
    flags.value and lora.rank.invalid)."""
    typed = {f.key for f in findings if f.code in ("flags.value", "flags.unknown")}
    out, invalid = [], set()
    for f in findings:
        if f.code.endswith(".invalid") and f.key:
            if f.key in typed or f.key in invalid:
                continue  # the same bad value, said already
            invalid.add(f.key)
        out.append(f)
    return out
