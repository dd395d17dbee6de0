"""Does the plan fit the GPUs? `lorakit plan`'s memory estimate as a check: a warning, with the
out-of-memory remedies in order, when the per-GPU peak (+ reserve) exceeds the smallest GPU the
job runs on -- the GPUs nvidia-smi shows here, or `validate --gpu-mem GiB` for GPUs elsewhere.

Stdlib only, like the plan: nvidia-smi is asked (never torch), and only when the job is about to
run on this machine (facts.here): a dry-run rendered for another machine says nothing about ours.
"""

from __future__ import annotations

import shutil

from lorakit.checks.facts import Facts
from lorakit.errors import LorakitError
from lorakit.findings import Finding
from lorakit.job import Job


def check_memory(job: Job, facts: Facts, gpus: list | None = None, how: str = "") -> list[Finding]:
    """plan.does_not_fit when the plan does not fit; nothing when it fits, when no GPU list is
    known, or when there is no plan (a model or target problem is the model checks' finding)."""
    if job.command != "sft":
        return []
    if gpus is None:
        if not facts.here:
            return []
        path = facts.environ.get("PATH")
        if shutil.which("nvidia-smi", path=path) is None:
            return []  # no GPUs to compare with: the plan (and its import) is not needed
    from lorakit import plan

    if gpus is None:
        gpus, how = plan.query_gpus(which=lambda name: shutil.which(name, path=path))
        if not gpus:
            return []
    from lorakit.checks import layout

    # a layout ms-swift would refuse has no plan (`lorakit plan` stops there too): its own findings say why
    if layout.refusals(job):
        return []
    try:
        info, source, dtype = plan.load_model(job)
        result = plan.build_plan(job, info, source, dtype, gpus, how)
    except LorakitError:
        return []
    return [Finding(**f) for f in result["findings"]]


CHECKS = [check_memory]
