"""GPU layout rules: GPU list, ranks per node, device_map vs DeepSpeed/FSDP, batch arithmetic."""

from __future__ import annotations

import json

from lorakit.checks.facts import Facts
from lorakit.values import as_bool, as_int
from lorakit.findings import ERROR, INFO, WARNING, Finding, about
from lorakit.job import Job, GPU_ID, PER_RANK

DS_PRESETS = ("zero0", "zero1", "zero2", "zero3", "zero2_offload", "zero3_offload")


def check_gpus(job: Job, facts: Facts) -> list[Finding]:
    gpus = job.launch.gpus
    if gpus is None or job.launch.gpu_ids is not None:
        return []
    if not gpus.strip():  # `CUDA_VISIBLE_DEVICES= swift sft ...`: CUDA sees no GPU, torch runs on the CPU
        return [about(job, INFO, "layout.gpus.none", "launch.gpus",
                      f"{job.launch.device_var} is empty: no GPU is visible, so the run is on the CPU")]
    ids = [g.strip() for g in gpus.split(",")]
    junk = [g for g in ids if not GPU_ID.match(g)]
    from_shell = job.launch.gpus_source.startswith("CUDA_VISIBLE_DEVICES")
    if junk:
        return [about(job, ERROR, "layout.gpus.invalid", "launch.gpus",
                        f"GPU list {gpus!r} has entries that are not GPU ids: {', '.join(map(repr, junk))}",
                        "unset CUDA_VISIBLE_DEVICES in your shell, or pass --gpus 0,1,..." if from_shell
                        else "write indices separated by commas, e.g. gpus: \"0,1,2,3\"")]
    dupes = sorted({g for g in ids if ids.count(g) > 1})
    return [about(job, ERROR, "layout.gpus.duplicate", "launch.gpus",
                    f"GPU list {gpus!r} names GPU {', '.join(dupes)} more than once",
                    "each GPU may appear once")]


def _rule_ok(rule) -> bool:
    if rule is None or as_int(rule) is not None:
        return True
    return isinstance(rule, str) and (rule.strip() == "auto" or bool(PER_RANK.match(rule.strip())))


def check_nproc(job: Job, facts: Facts) -> list[Finding]:
    launch = job.launch
    rule, key = launch.nproc_rule, "launch.nproc_per_node"
    if not _rule_ok(rule):
        return [about(job, ERROR, "layout.nproc.invalid", key,
                        f"nproc_per_node {rule!r} is not a number of processes",
                        "use an integer, 'auto' (one rank per GPU) or 'gpus/K' (K GPUs per rank)")]
    if rule is None:
        return []
    explicit = as_int(rule)
    if explicit is not None and explicit <= 0:
        return [about(job, ERROR, "layout.nproc.invalid", key,
                        f"nproc_per_node must be at least 1, got {rule!r}")]
    ids = launch.gpu_ids
    if ids is None:
        if explicit is None and launch.gpus is not None and not launch.gpus.strip():
            return [about(job, ERROR, "layout.nproc.needs_gpus", key,
                          f"nproc_per_node {rule!r} counts GPUs, and {launch.device_var} is empty: no GPU is visible",
                          f"name the GPUs ({launch.device_var}=0,1 or --gpus 0,1); for a CPU run, an integer "
                          "nproc_per_node with use_cpu: true")]
        if explicit is None and launch.gpus is None:
            return [about(job, ERROR, "layout.nproc.needs_gpus", key,
                            f"nproc_per_node {rule!r} counts GPUs, but no GPU list is set",
                            "set launch.gpus (or --gpus 0,1,...), or give an integer nproc_per_node")]
        return []  # a bad GPU list is reported by check_gpus
    count, where, nproc = len(ids), launch.gpus_source, launch.nproc_per_node
    if nproc is None:
        per = PER_RANK.match(str(rule).strip())
        return [about(job, ERROR, "layout.nproc.indivisible", key,
                        f"nproc_per_node {rule!r}: {count} GPUs ({where}) cannot be split "
                        f"{per.group(1) if per else '?'} per rank",
                        "use a GPU count divisible by the GPUs per rank, or give --nproc")]
    if nproc > count:
        return [about(job, ERROR, "layout.nproc.too_many", key,
                        f"NPROC_PER_NODE={nproc} but only {count} GPUs are visible ({where}: {launch.gpus})",
                        f"use --nproc {count} or fewer, or make more GPUs visible")]
    from lorakit.checks.vllm_mode import spare_gpus_are_vllms  # 3.1-3.4 GRPO: vLLM on the GPUs beyond nproc

    if count % nproc and not spare_gpus_are_vllms(job):
        return [about(job, ERROR, "layout.nproc.indivisible", key,
                        f"{count} visible GPUs ({where}) do not divide evenly among NPROC_PER_NODE={nproc} ranks",
                        "choose nproc_per_node dividing the GPU count: "
                        + ", ".join(str(n) for n in range(1, count + 1) if count % n == 0))]
    return []


def single_device_mode(job: Job) -> bool:
    """SWIFT_SINGLE_DEVICE_MODE=1 (the preset's env: or the environment the launch inherits) makes
    is_mp() False whatever the GPU count, from ms-swift 3.10 (swift/utils/env.py is_mp)."""
    import os

    from lorakit.flaghistory import targeted

    value = (job.env or {}).get("SWIFT_SINGLE_DEVICE_MODE", os.environ.get("SWIFT_SINGLE_DEVICE_MODE", "0"))
    return str(value) == "1" and targeted(job.swift_major, job.swift_version) >= (3, 10)


def gpus_per_rank(job: Job) -> int:
    """GPUs each process sees, when ms-swift splits the model across them (is_mp()); one process
    (no NPROC_PER_NODE) sees them all."""
    from lorakit.checks.vllm_mode import fast_inference_off_mp  # 3.1-3.5 GRPO with vLLM: never device_map

    ids, nproc = job.launch.gpu_ids, job.launch.nproc_per_node or 1
    if ids is None or len(ids) % nproc or fast_inference_off_mp(job) or single_device_mode(job):
        return 1
    return len(ids) // nproc


def unlisted_gpus_here(job: Job, facts: Facts) -> int | None:
    """The GPUs one process sees when nothing names them (no CUDA_VISIBLE_DEVICES, no
    NPROC_PER_NODE, one node): all of this machine's, when the launch is here and has 2 or more;
    else None. ms-swift's is_mp() then splits the model across them (device_map)."""
    from lorakit.checks.vllm_mode import fast_inference_off_mp

    launch = job.launch
    if not facts.here or launch.gpus is not None or launch.nproc_per_node is not None \
            or launch.nproc_rule is not None or launch.nnodes is not None or fast_inference_off_mp(job) \
            or single_device_mode(job):
        return None
    count = facts.gpu_count()
    return count if count is not None and count >= 2 else None


def _rollout_trainer(job: Job) -> bool:
    """An rlhf job (seen here through its carried-over sft view) that generates with vLLM."""
    from lorakit.checks.vllm_mode import before, uses_vllm

    kind = str(job.args.get("rlhf_type"))
    return uses_vllm(job) and (kind == "grpo" or (kind == "gkd" and not before(job, "3.10")))


def _uses_ray(job: Job) -> bool:
    # ms-swift skips its device_map checks under Ray, which places the workers itself (sft_args.py)
    return as_bool(job.args.get("use_ray", False)) is True


def check_device_map_sharding(job: Job, facts: Facts) -> list[Finding]:
    per, sharding = gpus_per_rank(job), job.sharding
    if per < 2 or sharding is None or job.command != "sft" or _uses_ray(job):
        return []
    # ms-swift raises this only inside each spawned worker, after start-up (sft_args.py).
    name = "DeepSpeed" if sharding == "deepspeed" else "FSDP"
    return [about(job, ERROR, f"layout.device_map.{sharding}", f"args.{sharding}",
                    f"{len(job.launch.gpu_ids or [])} GPUs for NPROC_PER_NODE={job.launch.nproc_per_node or 1} "
                    f"puts {per} GPUs on each rank (device_map), and {name} is not compatible with device_map",
                    f"set nproc_per_node to the GPU count (one GPU per rank), or drop {sharding}")]


def check_implicit_device_map(job: Job, facts: Facts) -> list[Finding]:
    """Several GPUs per process that nobody asked for by name: ms-swift then splits each model copy
    across them (device_map), and the GPUs of one copy take turns (is_mp(): n_gpu // local_world_size
    >= 2). `gpus/K` says it on purpose; one process on 8 GPUs, or a fixed nproc_per_node 4 on 8, does
    it silently."""
    per, launch = gpus_per_rank(job), job.launch
    if per < 2 or job.command != "sft" or job.sharding is not None or _uses_ray(job):
        return []  # with DeepSpeed/FSDP check_device_map_sharding refuses it
    if isinstance(launch.nproc_rule, str) and PER_RANK.match(launch.nproc_rule.strip()):
        return []
    if launch.nproc_rule is not None and launch.nproc_per_node is None:
        return []  # an unusable rule: check_nproc says why
    count = len(launch.gpu_ids or [])
    if launch.nproc_per_node is None:
        what = (f"{count} GPUs ({launch.gpus_source}) and no NPROC_PER_NODE: ONE process, with the model split "
                f"across all {count} GPUs (device_map); they take turns, so it runs about as fast as one GPU")
        fix = (f"for data parallel, set nproc_per_node: auto ({count} ranks, one per GPU); for one GPU, "
               "set gpus: \"0\"; to split a model too big for one GPU on purpose, this is right")
        key = "launch.gpus"
    else:
        what = (f"NPROC_PER_NODE={launch.nproc_per_node} on {count} GPUs gives each rank {per} GPUs: ms-swift "
                f"splits each model copy across them (device_map + DDP), not {count} data-parallel ranks")
        fix = f"for one rank per GPU, nproc_per_node: auto; to mean this, write nproc_per_node: gpus/{per}"
        key = "launch.nproc_per_node"
    return [about(job, WARNING, "layout.device_map.implicit", key, what, fix)]


def check_unlisted_gpus(job: Job, facts: Facts) -> list[Finding]:
    """No device list and no NPROC_PER_NODE anywhere: ms-swift runs one process that sees every
    GPU of the machine, and splits the model across them (is_mp()). With DeepSpeed it refuses
    ("DeepSpeed is not compatible with `device_map`. n_gpu: 8, local_world_size: 1",
    4.6.0 swift/arguments/sft_args.py:256, 3.12.6 swift/llm/argument/train_args.py:291). The
    common cause is a shell script whose env prefix never reached swift: a blank line inside the
    `\\` continuation (ms-swift #5328). Only a launch on this machine can count its GPUs."""
    if job.command != "sft" or _uses_ray(job):
        return []
    count = unlisted_gpus_here(job, facts)
    if count is None or _rollout_trainer(job):
        return []  # GRPO/GKD with vLLM: checks/rlhf.py refuses it as ms-swift does (one finding)
    fix = (f"for {count} data-parallel ranks: NPROC_PER_NODE={count} (nproc_per_node: auto); for one GPU: "
           "CUDA_VISIBLE_DEVICES=0. If a script set them, check it reached swift: a blank or comment line inside a "
           "`\\` continuation ends the command there (lorakit import SCRIPT reports it)")
    start = (f"no CUDA_VISIBLE_DEVICES and no NPROC_PER_NODE on a machine with {count} GPUs: ONE process sees all "
             f"{count} and splits the model across them (device_map)")
    if job.sharding is not None:
        name = "DeepSpeed" if job.sharding == "deepspeed" else "FSDP"
        return [about(job, ERROR, f"layout.device_map.{job.sharding}", f"args.{job.sharding}",
                      f"{start}, and {name} is not compatible with device_map: ms-swift refuses it", fix)]
    return [about(job, WARNING, "layout.device_map.implicit", "launch.gpus",
                  f"{start}; they take turns, so it runs about as fast as one GPU", fix)]


def check_explicit_device_map(job: Job, facts: Facts) -> list[Finding]:
    """--device_map given with several ranks of one GPU each: every rank would place its copy by that
    map over every visible GPU, on top of the other ranks."""
    value = job.args.get("device_map")
    if value in (None, "") or job.command != "sft" or job.world_size < 2 or gpus_per_rank(job) >= 2:
        return []
    # 'auto' & co. spread every rank's copy over all visible GPUs; accelerate then refuses to
    # train it in a distributed mode ("You can't train a model that has been loaded with
    # `device_map='auto'` in any distributed mode"), after the weights loaded (ms-swift #4567).
    spread = str(value).strip() in ("auto", "balanced", "balanced_low_0", "sequential")
    return [about(job, ERROR if spread else WARNING, "layout.device_map.explicit", "args.device_map",
                    f"device_map {value!r} with {job.world_size} ranks of one GPU each: under torchrun ms-swift "
                    "places each rank's model itself; a device_map makes the ranks share GPUs"
                    + (", and accelerate refuses to train a model spread that way in a distributed run"
                       if spread else ""),
                    "drop device_map for data parallel; to split a model, use fewer ranks (nproc_per_node: gpus/2)")]


def _stage_problem(job: Job, config: dict) -> list[Finding]:
    """An inline config's ZeRO stage: DeepSpeed only rejects a bad one inside every worker."""
    zero = config.get("zero_optimization", {})
    stage = zero.get("stage", 0) if isinstance(zero, dict) else None
    if isinstance(stage, int) and not isinstance(stage, bool) and 0 <= stage <= 3:
        return []
    return [about(job, ERROR, "layout.deepspeed.stage", "args.deepspeed",
                    f"deepspeed zero_optimization.stage {stage!r} is not a ZeRO stage (0, 1, 2 or 3)"
                    if isinstance(zero, dict) else "deepspeed zero_optimization must be a JSON object",
                    "e.g. {\"zero_optimization\": {\"stage\": 2}}, or use the preset zero2")]


def check_deepspeed_value(job: Job, facts: Facts) -> list[Finding]:
    value = job.args.get("deepspeed")
    if value in (None, ""):
        return []
    if isinstance(value, dict):
        return _stage_problem(job, value)
    text = str(value).strip()
    if text in DS_PRESETS or (text.endswith(".json") and facts.is_file(text)):
        return []
    if text.startswith("{"):
        try:
            config = json.loads(text)
            if isinstance(config, dict):
                return _stage_problem(job, config)
        except (ValueError, RecursionError):
            pass
        # not an error: ms-swift runs json_repair on JSON that does not parse and goes on with
        # whatever that makes of it (swift/utils/utils.py json_parse_to_dict, 3.12.6 and 4.6.0);
        # checks/flags.py says so for every JSON flag (flags.value, a warning): once is enough
        return []
    missing = text.endswith(".json")
    return [about(job, ERROR, "layout.deepspeed.invalid", "args.deepspeed",
                    f"deepspeed config file {text!r} does not exist" if missing
                    else f"deepspeed {text!r} is not a ZeRO preset, a JSON file or an inline JSON object",
                    "use one of " + ", ".join(DS_PRESETS) + ", a path to a .json file, or a JSON object")]


CHECKS = [check_gpus, check_nproc, check_device_map_sharding, check_implicit_device_map, check_unlisted_gpus,
          check_explicit_device_map,
          check_deepspeed_value]


def refusals(job: Job) -> list[Finding]:
    """The errors that leave a job without a layout to plan: its own adjustments' (a
    global_batch_size lorakit could not turn into steps) and the layout rules'. Judged as for any
    machine (here=False): what this one has (its GPU count) is the launch checks' business."""
    facts = Facts(here=False)
    return [f for f in job.adjustments if f.level == ERROR] + \
        [f for check in CHECKS for f in check(job, facts) if f.level == ERROR]

