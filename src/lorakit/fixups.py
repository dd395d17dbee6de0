"""What lorakit changes in a job on the user's behalf, each said as an info finding.

Kept apart from `checks` (which only look) so a reader can see every change lorakit makes.
When a change the preset asks for cannot be made (global_batch_size that does not divide),
the fixup leaves the job alone and says why as an error finding: only it knows the reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any

from lorakit import localpath
from lorakit.findings import ERROR, INFO, WARNING, about
from lorakit.values import as_bool, as_int, parsed_json
from lorakit.job import Job

NO_REENTRANT = {"use_reentrant": False}


def is_plain_ddp(job: Job) -> bool:
    """Several ranks without DeepSpeed/FSDP: torch DDP (device_map + DDP included)."""
    return job.command == "sft" and job.world_size > 1 and job.sharding is None


def gc_kwargs(job: Job) -> Any:
    """gradient_checkpointing_kwargs as a dict when it is one (or JSON text of one)."""
    return parsed_json(job.args.get("gradient_checkpointing_kwargs"))


def gc_enabled(job: Job) -> bool:
    # ms-swift's default is gradient_checkpointing=True (trainers/arguments.py).
    return as_bool(job.args.get("gradient_checkpointing", True)) is not False


def add_no_reentrant(job: Job) -> Job:
    """DDP + gradient checkpointing must say use_reentrant false, or
    backward fails under DDP ("Expected to mark a variable ready only once")."""
    if not is_plain_ddp(job) or not gc_enabled(job):
        return job
    kwargs = gc_kwargs(job)
    if isinstance(kwargs, dict) and "use_reentrant" in kwargs:
        return job
    if kwargs is not None and not isinstance(kwargs, dict):
        return job  # malformed: the flag checks report it
    if kwargs and not all(isinstance(k, (str, int, float, bool)) for k in kwargs):
        return job  # a key JSON cannot write (a YAML date): the flag checks report it
    new = {**(kwargs or {}), **NO_REENTRANT}
    args = dict(job.args)
    args["gradient_checkpointing_kwargs"] = new
    note = about(job, "info", "layout.ddp.use_reentrant_added", "args.gradient_checkpointing_kwargs",
                   f"DDP with {job.world_size} ranks and gradient checkpointing: added "
                   f"gradient_checkpointing_kwargs {json.dumps(new, default=str)}",
                   "reentrant checkpointing breaks LoRA backward under DDP (\"Expected to mark a variable ready only once\")")
    return replace(job, args=args, adjustments=(*job.adjustments, note))


GBS, GAS = "args.global_batch_size", "args.gradient_accumulation_steps"
BATCH = "args.per_device_train_batch_size"
# Between two files only presets.py knows which is later: it drops the earlier file's
# global_batch_size when a later file sets the steps, and records what it dropped in sources
# under this key, as "N from WHO" (what replaced it is sources[GAS]). The command line is always
# the later layer, so fixups itself settles the command line against a file (and within itself).
DROPPED = "dropped.args.global_batch_size"


def on_command_line(who: str) -> bool:
    """--set, the typed options (--lora-rank, --model...) and the flags after `--` are labelled
    by their option ('--set', '-- extra flags'); files by their path or 'built-in NAME'."""
    return who.startswith("-")


def same_layer(a: str, b: str) -> bool:
    """One precedence tier: one file, or the whole command line (--set, typed options and the
    flags after `--` are all the user's words for this run; none overrides another)."""
    return a == b or (on_command_line(a) and on_command_line(b))


def _gbs_error(job: Job, code: str, message: str, hint: str, key: str = GBS) -> Job:
    note = about(job, ERROR, code, key, message, hint)
    return replace(job, adjustments=(*job.adjustments, note))


def _where_both(job: Job) -> str:
    gbs, gas = job.source_of(GBS), job.source_of(GAS)
    if gbs != gas and on_command_line(gbs):
        return f"on the command line ({gbs}, {gas})"
    return f"in {gbs or 'the preset'}"


def _replaced(job: Job, dropped: str) -> Job:
    steps, who = job.args["gradient_accumulation_steps"], job.source_of(GAS)
    note = about(job, INFO, "batch.global_batch_size.replaced", GAS,
                   f"global_batch_size {dropped} was replaced by gradient_accumulation_steps {steps} from {who}",
                   "the later setting wins; to keep the global batch, set global_batch_size there instead")
    return replace(job, adjustments=(*job.adjustments, note))


def note_dropped(job: Job) -> Job:
    """Say that a later file's gradient_accumulation_steps replaced an earlier file's
    global_batch_size (presets.py dropped it): otherwise the global batch changes silently."""
    dropped = job.sources.get(DROPPED)
    if not dropped or job.args.get("gradient_accumulation_steps") is None:
        return job
    return _replaced(job, dropped)


def command_line_steps_win(job: Job) -> Job:
    """Steps given on the command line over a file's global_batch_size: the command line is the
    later layer, so its steps win and the file's global batch goes, said as an info finding."""
    args = {k: v for k, v in job.args.items() if k != "global_batch_size"}
    sources = {k: v for k, v in job.sources.items() if k != GBS}
    dropped = f"{job.args['global_batch_size']} from {job.source_of(GBS) or 'the preset'}"
    return _replaced(replace(job, args=args, sources=sources), dropped)


def derive_grad_accum(job: Job) -> Job:
    """lorakit's `global_batch_size: N` -> gradient_accumulation_steps = N / (batch x ranks x nodes),
    what ms-swift's examples do by hand with `$(expr 16 / $nproc_per_node)`; it replaces steps
    from an earlier layer, and steps from a later layer replace it (both said as findings)."""
    total = job.args.get("global_batch_size")
    if job.command != "sft":
        return job
    if total is None:
        return note_dropped(job)
    n, old = as_int(total), job.args.get("gradient_accumulation_steps")
    if n is None or n < 1:
        return _gbs_error(job, "batch.global_batch_size.invalid",
                          f"global_batch_size {total!r} is not a positive integer",
                          "give the number of samples per optimizer step, e.g. global_batch_size: 64")
    if old is not None and same_layer(job.source_of(GAS), job.source_of(GBS)):
        return _gbs_error(job, "batch.global_batch_size.both",
                          f"global_batch_size and gradient_accumulation_steps are both set "
                          f"{_where_both(job)}: one derives the other",
                          "keep one: global_batch_size derives gradient_accumulation_steps")
    if old is not None and on_command_line(job.source_of(GAS)) and not on_command_line(job.source_of(GBS)):
        return command_line_steps_win(job)
    raw = job.args.get("per_device_train_batch_size")
    batch = 1 if raw is None else as_int(raw)  # ms-swift's default per-device batch is 1
    if batch is None or batch < 1:
        return _gbs_error(job, "batch.global_batch_size.invalid",
                          f"global_batch_size {n} cannot derive gradient_accumulation_steps: "
                          f"per_device_train_batch_size {raw!r} is not a positive integer",
                          "set per_device_train_batch_size to 1 or more", key=BATCH)
    nproc, nodes = job.launch.nproc_per_node or 1, job.launch.node_total
    from lorakit.checks.training import sequence_parallel  # ranks sharing one sample count once

    sp = sequence_parallel(job)
    per_step = batch * nproc * nodes // sp
    shape = f"per-device {batch} x {nproc} rank(s) per node x {nodes} node(s)" + \
        (f" / sequence_parallel_size {sp}" if sp > 1 else "")
    # the nearest reachable global batch when it does not divide (integer arithmetic: n may be
    # past a float)
    steps = max(1, round(n / per_step) if n < 2**53 else n // per_step)
    # the derived steps take global_batch_size's place in the argv (it is never rendered itself)
    args = {}
    for key, value in job.args.items():
        if key == "global_batch_size":
            args["gradient_accumulation_steps"] = steps
        if key != "gradient_accumulation_steps":
            args[key] = value
    replaced = f"; replaces {old} from {job.source_of(GAS)}" if old is not None else ""
    new = replace(job, args=args, sources={**job.sources, GAS: job.source_of(GBS)})
    if n % per_step:
        low = per_step * max(n // per_step, 1)
        note = about(new, WARNING, "batch.global_batch_size.inexact", GBS,
                       f"global_batch_size {n} is not divisible by {shape} = {per_step}: using the nearest, "
                       f"gradient_accumulation_steps {steps} (global batch {steps * per_step}){replaced}",
                       f"for exactly {n}, change the batch size or the layout; or set global_batch_size to a "
                       f"multiple of {per_step} (e.g. {low} or {low + per_step})")
    else:
        note = about(new, INFO, "batch.global_batch_size.derived", GAS,
                       f"gradient_accumulation_steps {steps} = global_batch_size {n} / ({shape}){replaced}")
    return replace(new, adjustments=(*job.adjustments, note))


WARMUPS = ("warmup_ratio", "warmup_steps")


def later_warmup_wins(job: Job) -> Job:
    """warmup_ratio and warmup_steps say one thing two ways: ms-swift 4.5+ refuses both at once
    (swift/trainers/arguments.py _handle_hf_removed_args: "cannot be set at the same time"), and
    older ones let the steps win. The built-in presets set warmup_ratio 0.05, so a user's
    `-- --warmup_steps 100` means 100 steps: the later layer wins, as for any other key, and the
    earlier one goes, said as an info finding. presets.py settles file against file
    (SUPERSEDES); the command line is always the later layer. One layer setting both is for
    checks/schedule.py to report."""
    from lorakit.render import spelled

    notes = []  # (key replaced, "VALUE from WHO", key that replaced it, "VALUE from WHO")
    for key in WARMUPS:
        dropped = job.sources.get(f"dropped.args.{key}")
        kept = next(k for k in WARMUPS if k != key)
        if dropped and job.args.get(kept) is not None:
            notes.append((key, dropped, kept, f"{spelled(job.args[kept])} from {job.source_of(f'args.{kept}')}"))
    args, sources = job.args, job.sources
    if all(args.get(k) is not None for k in WARMUPS):
        ratio, steps = (job.source_of(f"args.{k}") for k in WARMUPS)
        if on_command_line(ratio) != on_command_line(steps):
            key = "warmup_steps" if on_command_line(ratio) else "warmup_ratio"
            kept = next(k for k in WARMUPS if k != key)
            notes.append((key, f"{spelled(args[key])} from {job.source_of(f'args.{key}') or 'the preset'}", kept,
                          f"{spelled(args[kept])} from {job.source_of(f'args.{kept}')}"))
            args = {k: v for k, v in args.items() if k != key}
            sources = {k: v for k, v in sources.items() if k != f"args.{key}"}
    found = tuple(about(job, INFO, "train.warmup.replaced", f"args.{kept}",
                        f"{key} {dropped} was replaced by {kept} {by}",
                        "warmup_ratio and warmup_steps set the same warmup (ms-swift 4.5+ refuses both): the "
                        "later setting wins") for key, dropped, kept, by in notes)
    return replace(job, args=args, sources=sources, adjustments=(*job.adjustments, *found)) if found else job


# Flags whose value may be a local path (one, or a list). Datasets keep their ms-swift syntax
# around the path (HF::path:subset#N): only the path part is rewritten.
PATH_FLAGS = ("model", "adapters", "resume_from_checkpoint", "deepspeed", "custom_dataset_info",
              "cached_dataset")
DATASET_FLAGS = ("dataset", "val_dataset")


def _absolute_item(key: str, text: str) -> str:
    if key in DATASET_FLAGS:
        ref = localpath.parse_dataset(text)
        if localpath.looks_local(ref.name) and localpath.exists(ref.name):
            return ref.rebuilt(localpath.absolute(ref.name))
        return text
    if key == "system":  # a prompt file (template_args.py reads a .txt as written: ~ expanded here, no shell does)
        return localpath.absolute(text) if text.endswith(".txt") and os.path.isfile(localpath.absolute(text)) \
            else text
    if localpath.looks_local(text) and localpath.exists(text):
        return localpath.absolute(text)
    return text


def absolute_paths(job: Job) -> Job:
    """Existing local paths rendered absolute: ms-swift records them in args.json, and a merge
    or `train --from` started from another directory must still find the model and the data."""
    args, changed = dict(job.args), []
    for key in (*PATH_FLAGS, *DATASET_FLAGS, "system"):
        value = args.get(key)
        if isinstance(value, str):
            new = _absolute_item(key, value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            new = [_absolute_item(key, v) for v in value]
        else:
            continue
        if new != value:
            args[key] = new
            changed.append(key)
    if not changed:
        return job
    note = about(job, INFO, "paths.absolute", f"args.{changed[0]}",
                   f"local paths rendered absolute ({', '.join(changed)}), as seen from {os.getcwd()}",
                   "ms-swift records them in args.json; merge and --from then work from any directory")
    return replace(job, args=args, adjustments=(*job.adjustments, note))


def apply_fixups(job: Job) -> Job:
    return absolute_paths(later_warmup_wins(add_no_reentrant(derive_grad_accum(job))))
