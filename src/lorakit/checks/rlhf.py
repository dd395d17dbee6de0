"""`swift rlhf` jobs: what each rlhf_type needs, read from ms-swift 4.6.0's source.

- The sft rules carry over (layouts, use_reentrant, LoRA, paths, the model, batch sizes): they
  are run on the job seen as `sft`; RLHFArguments inherits SftArguments, so they hold as they are.
- Dataset rows per rlhf_type: DPO/ORPO/SimPO/CPO encode a chosen and a rejected answer
  (template/base.py `_rlhf_encode`: "inputs.rejected is None" without rejected_response or
  rejected_messages); KTO reads a boolean `label` per row (pipelines/train/kto.py sums
  train_dataset['label']) and needs a total batch above 1 for its KL term.
- GRPO (arguments/rlhf_args.py): reward functions or a reward model; vLLM and device_map do not
  mix (`_check_grpo`: "GRPO with vLLM is not compatible with `device_map`"; GKD's `_check_gkd`
  alike). use_vllm, vllm_mode and the rollout server: checks/vllm_mode.py.
- DPO/KTO/GRPO resumed from an SFT LoRA checkpoint train its adapter against the bare base model
  (check_resume_sft): ms-swift's recipe is --adapters and --ref_adapters.
- ref_adapters only for DPO, KTO and GRPO (pipelines/train/rlhf.py prepare_model asserts it); a
  ref_model with LoRA is refused (rlhf_args.py __post_init__).
- vLLM with LoRA: vllm_max_lora_rank (default 16) must be at least lora_rank, or vLLM refuses
  the adapter at load (ms-swift #4221).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import replace

from lorakit import localpath
from lorakit.checks import vllm_mode
from lorakit.checks.facts import Facts
from lorakit.checks.vllm_mode import check_rollout_gpus, generates_with_vllm, uses_vllm
from lorakit.checks.vllm_mode import gpu_list  # noqa: F401  (paired.py imports it from here)
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_bool, as_float, as_int, listed

PAIRED = ("dpo", "orpo", "simpo", "cpo")  # a chosen and a rejected answer per row
REF_ADAPTER_TYPES = ("dpo", "kto", "grpo")
VLLM_LORA_DEFAULT = 16  # deploy_args.py / rlhf args: vllm_max_lora_rank: int = 16


def rlhf_type(job: Job) -> str:
    return str(job.args.get("rlhf_type", "dpo"))  # RLHFArguments.rlhf_type defaults to 'dpo'


def carried_over(job: Job, facts: Facts) -> list[Finding]:
    """The sft-only rules, for an rlhf job; a finding the plain run already gives is not repeated."""
    if job.command != "rlhf":
        return []
    from lorakit.checks import layout, lora, model, nodes, paths, policy, training

    checks = [*lora.CHECKS, *layout.CHECKS, *training.CHECKS, *nodes.CHECKS, *model.CHECKS, *paths.CHECKS,
              *policy.CHECKS]
    as_sft = replace(job, command="sft")
    plain = {(f.code, f.key, f.message) for check in checks for f in check(job, facts)}
    out = []
    for check in checks:
        for f in check(as_sft, facts):
            if (f.code, f.key, f.message) not in plain:
                out.append(replace(f, message=f.message.replace("swift sft", "swift rlhf")))
    return out


def local_files(job: Job) -> list[tuple[str, str]]:
    """(key, absolute path) of the local .jsonl/.json/.csv datasets."""
    out = []
    cwd = os.getcwd()
    for key in ("dataset", "val_dataset"):
        for item in listed(job.args.get(key)):
            ref = localpath.parse_dataset(item, cwd)
            name = ref.name.strip()
            if name and localpath.exists(name, cwd):
                path = localpath.absolute(name, cwd)
                if path.lower().endswith((".jsonl", ".json", ".csv")) and os.path.isfile(path):
                    out.append((key, path))
    return out


def check_rows(job: Job, facts: Facts) -> list[Finding]:
    kind = rlhf_type(job)
    if job.command != "rlhf" or kind not in (*PAIRED, "kto") or listed(job.args.get("custom_dataset_info")):
        return []
    from lorakit import datafile

    out = []
    for key, path in local_files(job):
        rec = datafile.recognize(path, environ=facts.environ)
        if not rec.rows_checked:
            continue  # unreadable or empty: the data check says so
        if kind in PAIRED and rec.first_without_rejected is not None:
            some = f"{rec.rejected_rows} of {rec.rows_checked} rows checked" if rec.rejected_rows else "no row checked"
            out.append(about(job, ERROR, "rlhf.data.rejected", f"args.{key}",
                             f"{path}:{rec.first_without_rejected}: rlhf_type {kind} trains on a chosen and a "
                             f"rejected answer per row, and {some} has a rejected_response (or rejected_messages): "
                             "ms-swift stops with 'inputs.rejected is None'",
                             'add "rejected_response": "..." to each row (the worse answer), next to its messages'))
        if kind == "kto" and rec.first_bad_label is not None:
            line, what = rec.first_bad_label
            out.append(about(job, ERROR, "rlhf.data.label", f"args.{key}",
                             f"{path}:{line}: rlhf_type kto reads a boolean label per row (desirable or not), "
                             f"and this row has {what}",
                             'add "label": true (a good answer) or "label": false (a bad one) to each row'))
        if kind == "kto" and rec.first_number_label is not None:
            out += _number_label(job, key, path, *rec.first_number_label)
    return out


# ms-swift 3.0.0 and 3.0.1 keep a KTO label as written (swift/llm/template/base.py _kto_encode:
# encoded['label'] = label); 3.0.2 and later bool() it. The KTO trainer splits a batch with
# `label is True` / `is False`, so a 0/1 label falls in neither half there and the loss has no
# graph: "element 0 of tensors does not require grad" (ms-swift #2941).
_LABEL_AS_WRITTEN = ("3.0.0", "3.0.1")


def _number_label(job: Job, key: str, path: str, line: int, label) -> list[Finding]:
    version = job.swift_version or ""
    if job.swift_major != 3 or not (version == "3.0" or version.startswith(_LABEL_AS_WRITTEN)):
        return []
    what = (f"{path}:{line}: label {label!r} is a number, not true/false: ms-swift 3.0.0 and 3.0.1 keep a KTO "
            "label as written, and the KTO trainer's `label is True` / `is False` split puts a number in "
            "neither half (\"element 0 of tensors does not require grad\"); 3.0.2 and later read bool(label)")
    fix = 'write "label": true / "label": false (or use ms-swift 3.0.2 or later)'
    if version == "3.0":  # the minor alone: which patch runs is not known
        return [about(job, WARNING, "rlhf.data.label_number", f"args.{key}",
                      what + "; --swift-version 3.0 does not say which patch", fix)]
    return [about(job, ERROR, "rlhf.data.label", f"args.{key}", what, fix)]


KTO_ONLY = ("desirable_weight", "undesirable_weight")  # read by rlhf_trainers/kto_trainer.py alone


def check_kto_only(job: Job, facts: Facts) -> list[Finding]:
    """A kto preset switched to another rlhf_type keeps its KTO weights, which then do nothing; and
    its dataset is a KTO one (a label per row, no rejected answer) that a hub id hides from check_rows."""
    kind = rlhf_type(job)
    if job.command != "rlhf" or kind == "kto":
        return []
    keys = [k for k in KTO_ONLY if k in job.args and job.args[k] is not None]
    if not keys:
        return []
    data = f"; a KTO dataset (a label per row) has no rejected answer for {kind}" if kind in PAIRED else ""
    preset = {"dpo": "dpo", "orpo": "orpo", "simpo": "simpo", "grpo": "grpo_colocate"}.get(kind)
    return [about(job, WARNING, "rlhf.kto_only", f"args.{keys[0]}",
                  f"{', '.join(keys)} ({job.source_of('args.' + keys[0])}) weigh KTO's loss only, and rlhf_type is "
                  f"{kind}: ignored{data}",
                  f"drop {', '.join(keys)}" + (f", or start from the built-in {preset} preset (lorakit rlhf -p "
                                               f"{preset})" if preset else ""))]


def _total_batch(job: Job) -> int | None:
    # lorakit's global_batch_size derives the steps (fixups.derive_grad_accum): the total it asks for
    if job.args.get("global_batch_size") is not None:
        return as_int(job.args["global_batch_size"])
    batch = as_int(job.args.get("per_device_train_batch_size", 1))
    steps = as_int(job.args.get("gradient_accumulation_steps", 1))
    if batch is None or steps is None:
        return None
    return batch * steps * job.world_size


def check_kto_batch(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "rlhf" or rlhf_type(job) != "kto" or job.args.get("loss_type") == "apo_zero_unpaired":
        return []
    total = _total_batch(job)
    if total is None or total > 1:
        return []
    return [about(job, ERROR, "rlhf.kto.batch", "args.per_device_train_batch_size",
                  "KTO with a total batch of 1 (per-device batch x accumulation x ranks): ms-swift stops with "
                  "'Batch size is 1 (too small)' (its KL term needs other rows of the batch)",
                  "set gradient_accumulation_steps or per_device_train_batch_size to 2 or more")]


def check_ref(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "rlhf":
        return []
    kind, out = rlhf_type(job), []
    if listed(job.args.get("ref_adapters")) and kind not in REF_ADAPTER_TYPES:
        out.append(about(job, ERROR, "rlhf.ref_adapters", "args.ref_adapters",
                         f"rlhf_type {kind} has no reference model, so ref_adapters cannot be used "
                         "(ms-swift asserts 'only DPO, KTO, and GRPO support `ref_adapters`')",
                         "drop ref_adapters (keep --adapters to start from the SFT adapter)"))
    if job.args.get("ref_model") not in (None, "") and str(job.args.get("tuner_type", "lora")) != "full":
        out.append(about(job, ERROR, "rlhf.ref_model", "args.ref_model",
                         "a ref_model with LoRA training: ms-swift refuses it ('CPO/ORPO or LoRA training does "
                         "not require a ref_model'); with LoRA the reference is the model without the adapter",
                         "drop ref_model; to start from an SFT adapter, pass it as --adapters and --ref_adapters"))
    return out


def _sft_args(ckpt: str) -> str | None:
    """The args.json of a local checkpoint when it says an SFT run wrote it (no rlhf_type), else None.
    ms-swift writes args.json in the run dir and copies it into each checkpoint (4.6.0
    trainers/mixin.py `_save`; resume.py reads it the same way); RLHFArguments has rlhf_type, sft's
    arguments have none."""
    from pathlib import Path

    from lorakit.trainlog import read_json

    path = Path(ckpt).expanduser()
    if not path.is_dir():
        return None  # a missing checkpoint: the path checks say so
    args_path = path / "args.json" if (path / "args.json").is_file() else path.parent / "args.json"
    saved = read_json(args_path)
    if not isinstance(saved, dict) or saved.get("rlhf_type") not in (None, ""):
        return None
    return str(args_path)


def check_resume_sft(job: Job, facts: Facts) -> list[Finding]:
    """DPO/KTO/GRPO "resumed" from an SFT LoRA checkpoint (ms-swift #8047): pipelines/train/tuner.py
    loads resume_from_checkpoint as the trainable adapter (`tuner.from_pretrained(model,
    args.resume_from_checkpoint or args.adapters[0], is_trainable=True)`, 4.6.0 and 3.12.6
    llm/train/tuner.py), and without ref_adapters the reference is that model with the adapter
    disabled: the base model, not the SFT one. ms-swift's documented two-stage recipe is
    `--adapters CKPT --ref_adapters CKPT` (rlhf_args.py, ref_adapters help; ref_adapters from 3.8)."""
    kind, ckpt = rlhf_type(job), job.args.get("resume_from_checkpoint")
    if job.command != "rlhf" or kind not in REF_ADAPTER_TYPES or ckpt in (None, "") or \
            str(job.args.get("tuner_type", "lora")) == "full" or listed(job.args.get("ref_adapters")) or \
            vllm_mode.before(job, "3.8"):
        return []
    if kind == "grpo" and job.args.get("beta") is not None and as_float(job.args["beta"]) == 0.0:
        return []  # GRPO with beta 0 has no reference model (rlhf_args.py __post_init__)
    args_path = _sft_args(str(ckpt))
    if args_path is None:
        return []
    shown = shlex.quote(str(ckpt))  # the hint is pasted into a shell
    return [about(job, ERROR, "rlhf.resume_sft_checkpoint", "args.resume_from_checkpoint",
                  f"resume_from_checkpoint {ckpt} is an SFT checkpoint ({args_path} has no rlhf_type): resuming "
                  f"it continues the SFT run's adapter as a {kind} run, and with no ref_adapters the reference "
                  "model is the base model, not the SFT model",
                  f"start {kind} from it instead: --adapters {shown} --ref_adapters {shown} (ms-swift's two-stage "
                  f"recipe), or lorakit rlhf --adapters {shown} (adds ref_adapters); drop resume_from_checkpoint")]


def check_grpo(job: Job, facts: Facts) -> list[Finding]:
    """GRPO's rewards and generations; the device_map rule and rollout_gpus for GKD too (its own
    `_check_gkd` raises 'GKD with vLLM is not compatible with `device_map`'). vllm_mode, the rollout
    server and vllm itself: checks/vllm_mode.py."""
    if not generates_with_vllm(job):
        return []
    from lorakit.checks.layout import gpus_per_rank, unlisted_gpus_here

    kind, out = rlhf_type(job), []
    rewards = listed(job.args.get("reward_funcs")) or listed(job.args.get("reward_model"))
    teacher = any(job.args.get(k) not in (None, "") for k in ("teacher_model", "teacher_model_server"))
    if kind == "grpo" and not rewards and not teacher:
        fix = "set reward_funcs (built-in: accuracy, format, cosine, repetition, soft_overlong) or reward_model"
        if _rollout_server(job) and not vllm_mode.before(job, "3.7"):  # the gym env came in 3.7
            # the trainer asks the rollout whether it runs a gym env, whose total reward is the signal
            # (4.6.0 rollout_mixin.py use_gym_env, grpo_trainer.py:120; 3.12.6 grpo_trainer.py:106)
            out.append(about(job, WARNING, "rlhf.grpo.rewards", "args.reward_funcs",
                             "GRPO with no reward_funcs or reward_model: ms-swift stops ('You must specify "
                             "reward_funcs or reward_model') unless the rollout server runs a gym env "
                             "(swift rollout --use_gym_env true / --gym_env)", fix))
        else:
            out.append(about(job, ERROR, "rlhf.grpo.rewards", "args.reward_funcs",
                             "GRPO with no reward: neither reward_funcs nor a reward_model is set", fix))
    refusal = f"ms-swift stops with '{kind.upper()} with vLLM is not compatible with `device_map`'"
    unlisted = unlisted_gpus_here(job, facts) if uses_vllm(job) else None
    if uses_vllm(job) and (gpus_per_rank(job) > 1 or job.args.get("device_map") not in (None, "")):
        out.append(about(job, ERROR, "rlhf.vllm.device_map", "launch.nproc_per_node",
                         f"{kind.upper()} with vLLM on a device_map layout (several GPUs per rank): {refusal}",
                         "one rank per training GPU: nproc_per_node: auto (and no device_map)"))
    elif unlisted is not None:  # #5592: the rollout's GPUs were visible to the trainer too
        out.append(about(job, ERROR, "rlhf.vllm.device_map", "launch.gpus",
                         f"no CUDA_VISIBLE_DEVICES and no NPROC_PER_NODE on a machine with {unlisted} GPUs: one "
                         f"process sees all {unlisted} and splits the model across them (device_map); {refusal}",
                         "name the training GPUs (CUDA_VISIBLE_DEVICES, gpus:) apart from a rollout server's, "
                         "one rank each: nproc_per_node: auto"))
    return out + check_rollout_gpus(job) + (_generations(job) if kind == "grpo" else [])


def _rollout_server(job: Job) -> bool:
    """The trainer generates through a `swift rollout` server (vllm_mode server, or a server
    host/URL, which ms-swift connects to whatever vllm_mode says)."""
    return uses_vllm(job) and (job.args.get("vllm_mode") == "server" or bool(
        listed(job.args.get("vllm_server_host")) or listed(job.args.get("vllm_server_base_url"))))


def _generations(job: Job) -> list[Finding]:
    """rlhf_trainers/args_mixin.py _init_generation_batch_params: the completions generated per step
    (per-device batch x ranks x steps_per_generation, which defaults to the accumulation steps)
    must split into whole groups of num_generations."""
    want = as_int(job.args.get("num_generations", 8))
    batch = as_int(job.args.get("per_device_train_batch_size", 1))
    teacher = any(job.args.get(k) not in (None, "") for k in ("teacher_model", "teacher_model_server"))
    # GRPO's advantage compares a prompt's completions with each other. 4.x: rlhf_args.py
    # _check_teacher 'num_generations must be greater than 1 for GRPO', unless a teacher scores the
    # one completion (OPD); 3.x whatever is set: 3.12.6 trainers/rlhf_arguments.py:87 (and trl, #3980)
    if want is not None and want < 2 and (job.swift_major < 4 or not teacher):
        said = ("GRPO requires at least 2 generations per prompt" if job.swift_major < 4 else
                "num_generations must be greater than 1 for GRPO")
        return [about(job, ERROR, "rlhf.grpo.generations", "args.num_generations",
                      f"num_generations {want}: GRPO compares each prompt's completions with one another, so "
                      f"it needs at least 2 (ms-swift stops: '{said}')",
                      "set num_generations to 2 or more (ms-swift's default is 8), dividing the completions "
                      "generated per step")]
    if want is None or want < 2 or batch is None:
        return []
    if job.args.get("generation_batch_size") is not None:
        total = as_int(job.args["generation_batch_size"])
    elif job.args.get("steps_per_generation") is not None:
        steps = as_int(job.args["steps_per_generation"])
        total = None if steps is None else batch * job.world_size * steps
    else:
        total = _total_batch(job)
    if total is None or total % want == 0:
        return []
    fits = [n for n in range(2, min(total, 64) + 1) if total % n == 0]
    return [about(job, ERROR, "rlhf.grpo.generations", "args.num_generations",
                  f"num_generations {want} does not divide the {total} completions generated per step "
                  "(per-device batch x ranks x steps_per_generation): ms-swift stops at start",
                  f"num_generations that fit: {', '.join(map(str, fits)) or 'none'}; or change the batch")]


def check_lora_rank(job: Job, facts: Facts) -> list[Finding]:
    """vLLM loads LoRA adapters only up to vllm_max_lora_rank (ms-swift #4221)."""
    if job.command != "rlhf" or not uses_vllm(job) or as_bool(job.args.get("vllm_enable_lora", False)) is not True:
        return []
    rank = as_int(job.args.get("lora_rank", 8))
    limit = as_int(job.args.get("vllm_max_lora_rank", VLLM_LORA_DEFAULT))
    if rank is None or limit is None or limit >= rank:
        return []
    return [about(job, ERROR, "rlhf.vllm.lora_rank", "args.vllm_max_lora_rank",
                  f"vllm_max_lora_rank {limit} is below lora_rank {rank}: vLLM refuses the adapter when it loads it",
                  f"set vllm_max_lora_rank: {rank} (or more)")]


CHECKS = [carried_over, check_rows, check_kto_only, check_kto_batch, check_ref, check_grpo, check_lora_rank, check_resume_sft,
          *vllm_mode.CHECKS]
