"""What lorakit changes in a job on the user's behalf, each said as an info finding.

Kept apart from `checks` (which only look) so a reader can see every change lorakit makes.
When a change the preset asks for cannot be made (global_batch_size that does not divide),
the fixup leaves the job alone and says why as an error finding: only it knows the reason.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from lorakit.findings import ERROR, INFO
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


GBS, GAS = "args.global_batch_size", "args.gradient_accumulation_steps"


def _gbs_error(job: Job, code: str, message: str, hint: str) -> Job:
    note = finding(job, ERROR, code, GBS, message, hint)
    return replace(job, adjustments=(*job.adjustments, note))


def derive_grad_accum(job: Job) -> Job:
    """lorakit's `global_batch_size: N` -> gradient_accumulation_steps = N / (batch x ranks x nodes),
    what ms-swift's examples do by hand with `$(expr 16 / $nproc_per_node)`; it replaces an
    inherited gradient_accumulation_steps (presets.py drops N when a later layer sets the steps)."""
    total = job.args.get("global_batch_size")
    if total is None or job.command != "sft":
        return job
    n, old = as_int(total), job.args.get("gradient_accumulation_steps")
    if n is None or n < 1:
        return _gbs_error(job, "batch.global_batch_size.invalid",
                          f"global_batch_size {total!r} is not a positive integer",
                          "give the number of samples per optimizer step, e.g. global_batch_size: 64")
    if old is not None and job.source_of(GAS) == job.source_of(GBS):
        return _gbs_error(job, "batch.global_batch_size.both",
                          f"global_batch_size and gradient_accumulation_steps are both set in "
                          f"{job.source_of(GBS) or 'the preset'}: one derives the other",
                          "keep one: global_batch_size derives gradient_accumulation_steps")
    batch = as_int(job.args.get("per_device_train_batch_size", 1)) or 1
    nproc, nodes = job.launch.nproc_per_node or 1, max(as_int(job.launch.nnodes) or 1, 1)
    per_step = batch * nproc * nodes
    shape = f"per-device {batch} x {nproc} rank(s) per node x {nodes} node(s)"
    if n % per_step:
        low = per_step * max(n // per_step, 1)
        return _gbs_error(job, "batch.global_batch_size.indivisible",
                          f"global_batch_size {n} is not divisible by {shape} = {per_step}",
                          f"use a multiple of {per_step} (e.g. {low} or {low + per_step}), "
                          "or change the batch size or the layout")
    steps = n // per_step
    args = dict(job.args)
    args["gradient_accumulation_steps"] = steps
    replaced = f"; replaces {old} from {job.source_of(GAS)}" if old is not None else ""
    new = replace(job, args=args, sources={**job.sources, GAS: job.source_of(GBS)})
    note = finding(new, INFO, "batch.global_batch_size.derived", GAS,
                   f"gradient_accumulation_steps {steps} = global_batch_size {n} / ({shape}){replaced}")
    return replace(new, adjustments=(*job.adjustments, note))


def apply_fixups(job: Job) -> Job:
    return add_no_reentrant(derive_grad_accum(job))
