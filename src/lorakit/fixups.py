"""What lorakit adds to a job on the user's behalf, each said as an info finding.

Kept apart from `checks` (which only look) so a reader can see every change lorakit makes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from lorakit.values import as_bool, as_int, finding
from lorakit.job import Job

NO_REENTRANT = {"use_reentrant": False}


def world_size(job: Job) -> int:
    nnodes = as_int(job.launch.nnodes) or 1
    return (job.launch.nproc_per_node or 1) * max(nnodes, 1)


def is_plain_ddp(job: Job) -> bool:
    """Several ranks without DeepSpeed/FSDP: torch DDP (device_map + DDP included)."""
    sharded = any(job.args.get(k) not in (None, "", False) for k in ("deepspeed", "fsdp"))
    return job.command == "sft" and world_size(job) > 1 and not sharded


def gc_kwargs(job: Job) -> Any:
    """gradient_checkpointing_kwargs as a dict when it is one (or JSON text of one)."""
    value = job.args.get("gradient_checkpointing_kwargs")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return value


def gc_enabled(job: Job) -> bool:
    # ms-swift's default is gradient_checkpointing=True (trainers/arguments.py).
    return as_bool(job.args.get("gradient_checkpointing", True)) is not False


def add_no_reentrant(job: Job) -> Job:
    """The seed's pitfall 3: DDP + gradient checkpointing must say use_reentrant false, or
    backward fails under DDP ("Expected to mark a variable ready only once")."""
    if not is_plain_ddp(job) or not gc_enabled(job):
        return job
    kwargs = gc_kwargs(job)
    if isinstance(kwargs, dict) and "use_reentrant" in kwargs:
        return job
    if kwargs is not None and not isinstance(kwargs, dict):
        return job  # malformed: the flag checks report it
    new = {**(kwargs or {}), **NO_REENTRANT}
    args = dict(job.args)
    args["gradient_checkpointing_kwargs"] = new
    note = finding(job, "info", "layout.ddp.use_reentrant_added", "args.gradient_checkpointing_kwargs",
                   f"DDP with {world_size(job)} ranks and gradient checkpointing: added "
                   f"gradient_checkpointing_kwargs {json.dumps(new)}",
                   "reentrant checkpointing breaks LoRA backward under DDP (the seed's pitfall 3)")
    return replace(job, args=args, adjustments=(*job.adjustments, note))


def apply_fixups(job: Job) -> Job:
    return add_no_reentrant(job)
