"""Checks: pure functions `job -> list[Finding]`, all run, all reported at once
(torchtune's config/_validate.py collects every problem into one error)."""

from __future__ import annotations

from typing import Callable

from lorakit.checks import layout, lora, policy, training
from lorakit.checks.facts import Facts
from lorakit.findings import Finding, sort_findings
from lorakit.job import Job

Check = Callable[[Job, Facts], "list[Finding]"]


def all_checks() -> list[Check]:
    from lorakit.checks import (argv, data, datasetinfo, engine, features, flags, maxlength, memory, model,  # flags: lazily
                                modelage, nodes, paths, pixels, precision, requires, resumed, rewards, rlhf, seqpar,
                                visionutils)

    return [*lora.CHECKS, *layout.CHECKS, *training.CHECKS, *features.CHECKS, *policy.CHECKS, *nodes.CHECKS,
            *flags.CHECKS, *model.CHECKS, *seqpar.CHECKS, *maxlength.CHECKS, *modelage.CHECKS, *requires.CHECKS,
            *visionutils.CHECKS, *paths.CHECKS, *resumed.CHECKS, *data.CHECKS, *pixels.CHECKS, *datasetinfo.CHECKS,
            *argv.CHECKS, *rlhf.CHECKS, *rewards.CHECKS, *memory.CHECKS, *engine.CHECKS,
            *precision.CHECKS]


def run_checks(job: Job, facts: Facts | None = None) -> list[Finding]:
    import sys

    facts = facts or Facts()
    datafile = sys.modules.get("lorakit.datafile")  # its reads are shared within one run of the checks only
    if datafile is not None:
        datafile.forget()
    findings = list(job.adjustments)
    for check in all_checks():
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
