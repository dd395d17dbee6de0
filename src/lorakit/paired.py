"""GRPO server mode as one paired launch: `swift rollout` on its GPUs, then `swift rlhf`."""

from __future__ import annotations

from lorakit.job import Job


def is_paired(job: Job) -> bool:
    return job.command == "rlhf" and bool(job.args.get("rollout_gpus"))
