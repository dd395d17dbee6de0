"""`lorakit rlhf`: the built-in DPO/KTO/ORPO/SimPO/GRPO presets render exactly, --adapters starts
from an SFT checkpoint, and the per-rlhf_type checks stop what ms-swift would refuse later."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli, swift3_python
from lorakit.checks import run_checks
from lorakit.checks.facts import Facts
from lorakit.cli.common import JobOptions, job_from_options
from lorakit.cli.rlhf import sft_fixups
from lorakit.render import render

PARSE = REPO / "scripts" / "swift_parse_check.py"
RLHF_PRESETS = ("dpo", "kto", "orpo", "simpo", "grpo_colocate", "grpo_server")
COMMON = ["--model", "Qwen/Qwen3-8B", "--tuner_type", "lora", "--torch_dtype", "bfloat16",
          "--num_train_epochs", "1", "--per_device_train_batch_size", "1", "--per_device_eval_batch_size", "1",
          "--learning_rate", "0.0001", "--lora_rank", "8", "--lora_alpha", "32", "--target_modules", "all-linear"]


def job(name: str, *sets: str, major: int = 4, env: dict | None = None):
    return sft_fixups(job_from_options(JobOptions(name, sets=list(sets), swift_version=str(major)), env=env or {}))


def errors(j) -> list[tuple[str, str]]:
    return [(f.code, f.message) for f in run_checks(j, Facts(here=False)) if f.level == "error"]


def test_dpo_renders_exactly():
    command = render(job("dpo"))
    assert command.env == {"CUDA_VISIBLE_DEVICES": "0"}
    assert command.argv == ["swift", "rlhf", *COMMON, "--gradient_accumulation_steps", "16",
                            "--split_dataset_ratio", "0.01", "--eval_steps", "50", "--save_steps", "50",
                            "--save_total_limit", "2", "--logging_steps", "5", "--max_length", "2048",
                            "--warmup_ratio", "0.05", "--dataloader_num_workers", "4", "--output_dir", "output",
                            "--rlhf_type", "dpo", "--beta", "0.1", "--dataset", "hjh0119/shareAI-Llama3-DPO-zh-en-emoji"]


def test_dpo_renders_train_type_for_3x():
    argv = render(job("dpo", major=3)).argv
    assert argv[:6] == ["swift", "rlhf", "--model", "Qwen/Qwen3-8B", "--train_type", "lora"]


def test_grpo_colocate_layout_and_flags():
    command = render(job("grpo_colocate"))
    assert command.env == {"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7", "NPROC_PER_NODE": "8"}
    argv = command.argv
    tail = argv[argv.index("--rlhf_type"):]
    assert tail == ["--rlhf_type", "grpo", "--dataset", "AI-MO/NuminaMath-TIR#5000", "--reward_funcs", "accuracy",
                    "format", "--use_vllm", "true", "--vllm_mode", "colocate", "--vllm_gpu_memory_utilization", "0.5",
                    "--vllm_max_model_len", "4096", "--sleep_level", "1", "--num_generations", "8",
                    "--max_completion_length", "2048", "--temperature", "1", "--beta", "0.04",
                    "--gradient_checkpointing_kwargs", '{"use_reentrant": false}']
    # global_batch_size 64 over 8 ranks of 4 each
    assert argv[argv.index("--gradient_accumulation_steps") + 1] == "2"


def test_grpo_server_trainer_half():
    command = render(job("grpo_server"))
    # NPROC_PER_NODE counts the training GPUs only; rollout_gpus is lorakit's and never rendered
    assert command.env == {"CUDA_VISIBLE_DEVICES": "1,2,3,4,5,6,7", "NPROC_PER_NODE": "7"}
    assert "--rollout_gpus" not in command.argv
    at = command.argv.index("--vllm_mode")
    assert command.argv[at:at + 6] == ["--vllm_mode", "server", "--vllm_server_host", "127.0.0.1",
                                       "--vllm_server_port", "8000"]


def test_an_rlhf_type_typo_after_dashes_is_named_with_a_did_you_mean():
    result = run_cli(["rlhf", "-p", "dpo", "--dry-run", "--", "--rlhf_type", "grop"])
    assert (result.code, result.stdout) == (2, "")
    lines = result.stderr.splitlines()
    at = lines.index("error[flags.value] args.rlhf_type (-- extra flags): rlhf_type: 'grop' is not one of dpo, "
                     "orpo, simpo, kto, cpo, rm, ppo, grpo, gkd; did you mean 'grpo'?")
    assert lines[at + 1] == "  hint: fix --rlhf_type after --"


@pytest.mark.parametrize("name", RLHF_PRESETS)
def test_builtin_rlhf_presets_have_no_errors(name):
    assert errors(job(name)) == []


# ---- datasets: the fields each rlhf_type reads -------------------------------------------------

def rows(path: Path, items: list[dict]) -> str:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return str(path)


def chat(q="hi", a="hello", **extra) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], **extra}


def test_dpo_rows_need_rejected_response(tmp_path):
    data = rows(tmp_path / "d.jsonl", [chat()] * 4)
    assert ("rlhf.data.rejected", f"{data}:1: rlhf_type dpo trains on a chosen and a rejected answer per row, "
            "and no row checked has a rejected_response (or rejected_messages): ms-swift stops with "
            "'inputs.rejected is None'") in errors(job("dpo", f"dataset=[{data}]"))


def test_dpo_rows_with_rejected_response_pass(tmp_path):
    data = rows(tmp_path / "d.jsonl", [chat(rejected_response="no")] * 4)
    assert errors(job("dpo", f"dataset=[{data}]")) == []


@pytest.mark.parametrize("name", ["orpo", "simpo"])
def test_orpo_and_simpo_read_rejected_response_too(tmp_path, name):
    data = rows(tmp_path / "d.jsonl", [chat(), chat()])
    assert [m for c, m in errors(job(name, f"dataset=[{data}]")) if c == "rlhf.data.rejected"] == [
        f"{data}:1: rlhf_type {name} trains on a chosen and a rejected answer per row, and no row checked has a "
        "rejected_response (or rejected_messages): ms-swift stops with 'inputs.rejected is None'"]


def test_a_row_missing_rejected_among_others_is_the_data_checks(tmp_path):
    """Once some rows have the column, ms-swift drops the others (data.row.rejected says so): not twice."""
    data = rows(tmp_path / "d.jsonl", [chat(rejected_response="no"), chat(), chat(rejected_response="x")])
    assert [c for c, _ in errors(job("dpo", f"dataset=[{data}]"))] == ["data.row.rejected"]


@pytest.mark.parametrize("label, what", [(None, "no label"), ("true", "label 'true' is not true/false")])
def test_kto_rows_need_a_boolean_label(tmp_path, label, what):
    bad = chat() if label is None else chat(label=label)
    data = rows(tmp_path / "k.jsonl", [chat(label=True), chat(label=False), bad])
    assert ("rlhf.data.label", f"{data}:3: rlhf_type kto reads a boolean label per row (desirable or not), "
            f"and this row has {what}") in errors(job("kto", f"dataset=[{data}]"))


def test_kto_labels_true_false_and_0_1_pass(tmp_path):
    data = rows(tmp_path / "k.jsonl", [chat(label=True), chat(label=0), chat(label=1), chat(label=False)])
    assert errors(job("kto", f"dataset=[{data}]")) == []


def kto_version(data: str, version: str):
    j = sft_fixups(job_from_options(JobOptions("kto", sets=[f"dataset=[{data}]"], swift_version=version), env={}))
    return [(f.level, f.code, f.message) for f in run_checks(j, Facts(here=False)) if f.code.startswith("rlhf.data.label")]


@pytest.mark.parametrize("version, level", [("3.0.0", "error"), ("3.0.1", "error"), ("3.0", "warning"),
                                            ("3.0.2", None), ("3.0.3", None), ("3.12", None), ("3", None), ("4", None)])
def test_kto_0_1_labels_only_where_ms_swift_kept_them_as_written(tmp_path, version, level):
    """ms-swift #2941: 3.0.0 and 3.0.1 (_kto_encode: encoded['label'] = label) fall a 0/1 label in
    neither half of the trainer's `is True` / `is False` split; 3.0.2 reads bool(label)."""
    data = rows(tmp_path / "k.jsonl", [chat(label=True), chat(label=0), chat(label=1)])
    said = kto_version(data, version)
    if level is None:
        assert said == []
        return
    what = (f"{data}:2: label 0 is a number, not true/false: ms-swift 3.0.0 and 3.0.1 keep a KTO label as "
            "written, and the KTO trainer's `label is True` / `is False` split puts a number in neither half "
            "(\"element 0 of tensors does not require grad\"); 3.0.2 and later read bool(label)")
    if level == "warning":
        assert said == [("warning", "rlhf.data.label_number", what + "; --swift-version 3.0 does not say which patch")]
    else:
        assert said == [("error", "rlhf.data.label", what)]
    assert kto_version(rows(tmp_path / "b.jsonl", [chat(label=True), chat(label=False)]), version) == []


def test_kto_preset_validates_before_its_global_batch_is_derived(cli):
    result = cli(["validate", "-p", "kto"])
    assert result.code == 0, result.stderr


def test_kto_total_batch_of_one_is_refused():
    assert ("rlhf.kto.batch", "KTO with a total batch of 1 (per-device batch x accumulation x ranks): ms-swift "
            "stops with 'Batch size is 1 (too small)' (its KL term needs other rows of the batch)") in \
        errors(job("kto", "global_batch_size=null", "gradient_accumulation_steps=1"))


# ---- reference model, GRPO, vLLM -----------------------------------------------------------------

def test_ref_adapters_only_for_dpo_kto_grpo():
    assert ("rlhf.ref_adapters", "rlhf_type orpo has no reference model, so ref_adapters cannot be used "
            "(ms-swift asserts 'only DPO, KTO, and GRPO support `ref_adapters`')") in \
        errors(job("orpo", "ref_adapters=[sft/checkpoint-2]"))


def test_ref_model_with_lora_is_refused():
    assert [c for c, _ in errors(job("dpo", "ref_model=Qwen/Qwen3-8B"))] == ["rlhf.ref_model"]


def test_grpo_without_rewards():
    assert ("rlhf.grpo.rewards", "GRPO with no reward: neither reward_funcs nor a reward_model is set") in \
        errors(job("grpo_colocate", "reward_funcs=null"))


def test_use_vllm_needs_a_mode_and_a_mode_needs_vllm():
    assert [c for c, _ in errors(job("grpo_colocate", "vllm_mode=null"))] == ["rlhf.vllm.mode"]
    found = errors(job("grpo_colocate", "use_vllm=false"))
    assert ("rlhf.vllm.mode", "vllm_mode colocate without use_vllm true: ms-swift stops ('vllm_mode is not "
            "supported when use_vllm is false')") in found


def test_grpo_vllm_refuses_device_map_layouts():
    found = errors(job("grpo_colocate", "launch.nproc_per_node=gpus/2"))
    assert ("rlhf.vllm.device_map", "GRPO with vLLM on a device_map layout (several GPUs per rank): ms-swift stops "
            "with 'GRPO with vLLM is not compatible with `device_map`'") in found


def test_server_mode_gpus_must_be_disjoint():
    found = errors(job("grpo_server", "rollout_gpus=0,1", "launch.gpus=1,2,3"))
    assert ("rlhf.rollout.gpus", "rollout_gpus 0,1 and the training GPUs 1,2,3 share 1: vLLM takes most of a "
            "GPU's memory, so training there runs out") in found


def test_server_mode_nproc_counts_training_gpus_only():
    found = errors(job("grpo_server", "launch.nproc_per_node=8"))
    assert ("rlhf.rollout.nproc", "NPROC_PER_NODE=8 but only 7 training GPUs: NPROC_PER_NODE counts the "
            "training GPUs only, not the rollout's") in found


def test_rollout_gpus_without_server_mode():
    assert [c for c, _ in errors(job("grpo_colocate", "rollout_gpus=0", "launch.gpus=1,2,3,4,5,6,7"))] == \
        ["rlhf.rollout.mode"]


def test_server_mode_needs_a_host():
    assert [c for c, _ in errors(job("grpo_server", "vllm_server_host=null"))] == ["rlhf.vllm.server_host"]


def test_vllm_max_lora_rank_below_lora_rank():
    found = errors(job("grpo_colocate", "vllm_enable_lora=true", "lora_rank=64", "lora_alpha=128"))
    assert ("rlhf.vllm.lora_rank", "vllm_max_lora_rank 16 is below lora_rank 64: vLLM refuses the adapter when "
            "it loads it") in found
    assert errors(job("grpo_colocate", "vllm_enable_lora=true", "lora_rank=64", "lora_alpha=128",
                      "vllm_max_lora_rank=64")) == []


def test_num_generations_must_divide_the_generation_batch():
    # grpo_server: per-device 4 x 7 ranks x 2 accumulation steps = 56 completions per step
    found = errors(job("grpo_server", "num_generations=5"))
    assert ("rlhf.grpo.generations", "num_generations 5 does not divide the 56 completions generated per step "
            "(per-device batch x ranks x steps_per_generation): ms-swift stops at start") in found
    assert errors(job("grpo_server", "num_generations=5", "steps_per_generation=5")) == []  # 4 x 7 x 5 = 140


def test_vllm_missing_here_is_a_warning():
    found = [(f.level, f.code) for f in run_checks(job("grpo_colocate"), Facts(has_module=lambda name: False))
             if f.code == "rlhf.vllm.missing"]
    assert found == [("warning", "rlhf.vllm.missing")]


def test_sft_rules_carry_over_to_rlhf():
    """layout checks gated on sft: one process on 8 GPUs is the silent device_map layout."""
    found = [f for f in run_checks(job("dpo", "launch.gpus=0,1,2,3,4,5,6,7"), Facts(here=False))
             if f.code == "layout.device_map.implicit"]
    assert len(found) == 1


def test_use_reentrant_fixup_carries_over():
    j = job("dpo", "launch.gpus=0,1", "launch.nproc_per_node=auto")
    assert j.args["gradient_checkpointing_kwargs"] == {"use_reentrant": False}


# ---- --adapters: start from an SFT checkpoint ------------------------------------------------------

def sft_output(root: Path, model: str = "/models/base") -> Path:
    run = root / "output" / "v0-20260101-120000"
    ckpt = run / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (ckpt / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 2, "log_history": []}))
    (ckpt / "args.json").write_text(json.dumps({"model": model, "model_type": "qwen2", "template": "qwen"}))
    return ckpt


def dry(args: list[str], cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return run_cli(["rlhf", "--dry-run", *args])
    finally:
        os.chdir(old)


def argv_of(stdout: str) -> list[str]:
    tokens = shlex.split(stdout.replace("\\\n", " "))
    return tokens[tokens.index("swift"):]


def test_adapters_output_root_picks_the_checkpoint_and_its_base(tmp_path):
    ckpt = sft_output(tmp_path, model=str(tmp_path))  # an existing dir: no missing-model error
    result = dry(["-p", "dpo", "--adapters", "output", "--format", "text"], tmp_path)
    assert result.code == 0, result.stderr
    argv = argv_of(result.stdout)
    assert argv[argv.index("--model") + 1] == str(tmp_path)
    assert argv[-8:] == ["--adapters", str(ckpt), "--model_type", "qwen2", "--template", "qwen",
                         "--ref_adapters", str(ckpt)]
    assert f"lorakit: picked {ckpt}: run v0-20260101-120000, last checkpoint (step 2, 1 checkpoint)" in result.stderr


def test_orpo_gets_no_ref_adapters_and_model_option_wins(tmp_path):
    sft_output(tmp_path)
    result = dry(["-p", "orpo", "--adapters", "output", "--model", "Qwen/Qwen3-8B"], tmp_path)
    assert result.code == 0, result.stderr
    argv = argv_of(result.stdout)
    assert "--ref_adapters" not in argv and argv[argv.index("--model") + 1] == "Qwen/Qwen3-8B"


def test_ref_adapters_null_keeps_the_bare_base(tmp_path):
    sft_output(tmp_path, model=str(tmp_path))
    result = dry(["-p", "dpo", "--adapters", "output", "--set", "ref_adapters=null"], tmp_path)
    assert result.code == 0, result.stderr
    assert "--ref_adapters" not in argv_of(result.stdout)


def test_adapters_without_a_checkpoint_is_a_user_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = dry(["-p", "dpo", "--adapters", "empty"], tmp_path)
    assert result.code == 2
    assert result.stderr.startswith("lorakit: error: no adapter checkpoint found under empty: the directory is empty")


def test_a_sft_preset_is_refused(tmp_path):
    result = dry(["-p", "single"], tmp_path)
    assert (result.code, result.stderr.splitlines()[0]) == (
        2, "lorakit: error: preset 'single' runs `swift sft`, not `swift rlhf`")


# ---- ms-swift's own parser takes every rendered rlhf command -------------------------------------

def rendered_argvs(major: int) -> list[list[str]]:
    return [render(job(name, major=major)).argv[2:] for name in RLHF_PRESETS]


def parse(python: str, argvs: list[list[str]]) -> list[dict]:
    out = subprocess.run([python, str(PARSE), "rlhf", "--batch"], input=json.dumps(argvs), capture_output=True,
                         text=True, timeout=600, cwd=REPO / "scripts")
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("major", [4, 3])
def test_ms_swift_parses_every_rlhf_preset(major):
    python = sys.executable if major == 4 else swift3_python()
    answers = parse(python, rendered_argvs(major))
    assert [(a["exit"], a.get("remaining")) for a in answers] == [(0, [])] * len(RLHF_PRESETS)
    assert [a["values"]["rlhf_type"] for a in answers] == ["dpo", "kto", "orpo", "simpo", "grpo", "grpo"]


# ---- the dry-run paths import nothing heavy (tests/test_imports.py's probe) -----------------------

@pytest.mark.parametrize("args", [["rlhf", "-p", "dpo", "--dry-run"], ["rlhf", "-p", "grpo_server", "--dry-run"],
                                  ["infer", "--adapters", "output", "--dry-run", "--infer-backend", "vllm"],
                                  ["deploy", "--adapters", "a=output", "--dry-run"],
                                  ["eval", "--adapters", "output", "--dry-run"]], ids=lambda a: "-".join(a[:3]))
def test_dry_runs_import_nothing_heavy(tmp_path, args):
    from test_imports import HEAVY, PROBE

    sft_output(tmp_path, model=str(tmp_path))
    out = tmp_path / "probe.json"
    result = subprocess.run([sys.executable, "-c", PROBE, str(out), ",".join(HEAVY), *args],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    probe = json.loads(out.read_text())
    assert probe["code"] == 0, result.stderr
    assert probe["heavy"] == []


# ---- hostile --adapters (each was accepted, or refused with merge's advice) -----------------------

def full_output(root: Path) -> Path:
    ckpt = root / "full" / "v0-20260101-120000" / "checkpoint-3"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text('{"model_type": "qwen2"}')
    (ckpt / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 3, "log_history": []}))
    (ckpt / "args.json").write_text(json.dumps({"model": str(root), "tuner_type": "full"}))
    return ckpt


@pytest.mark.parametrize("given", ["full", "full/v0-20260101-120000", "full/v0-20260101-120000/checkpoint-3"])
def test_a_full_checkpoint_as_adapters_says_to_pass_it_as_model(tmp_path, given):
    """Was 'saved no checkpoint-N directory yet' (a run dir) or merge's 'to merge again pass the
    checkpoint-N it came from': a full checkpoint is the model itself."""
    ckpt = full_output(tmp_path)
    result = dry(["-p", "dpo", "--adapters", given], tmp_path)
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: --adapters {given}: {ckpt} holds a whole model (config.json and its weights, no "
        "adapter_config.json): a tuner_type full checkpoint or a merged model, not a LoRA adapter",
        f"  hint: start from it as the base model: --model {ckpt} (and no --adapters)"]


def test_a_merged_model_as_adapters_says_to_pass_it_as_model(tmp_path):
    merged = tmp_path / "output" / "v0-20260101-120000" / "checkpoint-2-merged"
    merged.mkdir(parents=True)
    (merged / "config.json").write_text('{"model_type": "qwen2"}')
    (merged / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    result = run_cli(["infer", "--adapters", str(merged), "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-1] == f"  hint: start from it as the base model: --model {merged} (and no --adapters)"


def test_a_model_other_than_the_adapters_base_is_a_warning(tmp_path):
    """--model wins (the user's word), but an adapter on another base fails at load: it was silent."""
    ckpt = sft_output(tmp_path, model="Qwen/Qwen2.5-0.5B-Instruct")
    result = dry(["-p", "dpo", "--adapters", "output", "--model", str(tmp_path)], tmp_path)
    assert result.code == 0, result.stderr
    assert (f"warning[adapters.base.other] args.model (--model): model {tmp_path} (--model) is not the base the "
            f"adapter was trained on: Qwen/Qwen2.5-0.5B-Instruct ({ckpt}/args.json)\n"
            "  hint: fine for a copy of the same weights; else drop --model: the adapter's own base is used"
            ) in result.stderr
    strict = dry(["-p", "dpo", "--adapters", "output", "--model", str(tmp_path), "--strict"], tmp_path)
    assert strict.code == 2


# ---- rlhf --from: an rlhf run record replays (train --from refuses it: it runs swift sft) ---------

def launch_fake(args: list[str], cwd: Path, record: Path) -> subprocess.CompletedProcess:
    from conftest import FAKES

    env = {**os.environ, "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "FAKE_SWIFT_RECORD": str(record)}
    return subprocess.run([sys.executable, "-m", "lorakit", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_rlhf_from_replays_the_recorded_rlhf_launch(tmp_path):
    """`train --from` of an rlhf record stops ('runs swift rlhf, not swift sft'): rlhf had no --from at all."""
    sft_output(tmp_path, model=str(tmp_path))
    data = rows(tmp_path / "d.jsonl", [chat(rejected_response="no")] * 4)
    first = launch_fake(["rlhf", "-p", "dpo", "--adapters", "output", "--dataset", data, "--output-dir", "dpo_out"],
                        tmp_path, tmp_path / "first.json")
    assert first.returncode == 0, first.stderr
    again = launch_fake(["rlhf", "--from", "dpo_out/lorakit-run.yaml"], tmp_path, tmp_path / "again.json")
    assert again.returncode == 0, again.stderr
    assert "lorakit: relaunching the job recorded in dpo_out/lorakit-run.yaml" in again.stderr
    was, now = (json.loads((tmp_path / n).read_text()) for n in ("first.json", "again.json"))
    assert now["argv"] == was["argv"] and "--ref_adapters" in now["argv"]
    assert now["env"].get("CUDA_VISIBLE_DEVICES") == "0"
    printed = dry(["--from", "dpo_out"], tmp_path)  # the output dir names its newest launch's record
    assert printed.code == 0, printed.stderr
    assert argv_of(printed.stdout)[1:] == was["argv"][1:]  # the fake records its own path as argv[0]


@pytest.mark.parametrize("extra, named", [(["-p", "dpo"], "--preset"), (["--adapters", "output"], "--adapters"),
                                          (["--set", "beta=0.2"], "--set"), (["--", "--beta", "0.2"], "-- flags")])
def test_rlhf_from_takes_no_other_job_options(tmp_path, extra, named):
    (tmp_path / "r.yaml").write_text("{}")
    result = dry(["--from", "r.yaml", *extra], tmp_path)
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: --from replays the recorded job as it is; it takes no {named}",
        "  hint: drop those options, or copy the record's `preset:` section into a preset"]


def test_rlhf_needs_a_preset_or_a_record(tmp_path):
    result = dry([], tmp_path)
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        "lorakit: error: give a preset (--preset/-p NAME or FILE) or an rlhf run record (--from FILE)",
        "  hint: built-in: dpo, kto, orpo, simpo, grpo_colocate, grpo_server"]


@pytest.mark.parametrize("value, shown", [("0", "0"), ("70000", "70000"), ("[8000, -1]", "-1")])
def test_server_mode_port_must_be_a_port(value, shown):
    """Was rendered as given: the trainer then had no server to reach, and a paired rollout given 0
    takes a random port (DeployArguments find_free_port)."""
    assert [e for e in errors(job("grpo_server", f"vllm_server_port={value}")) if e[0] == "rlhf.vllm.server_port"] == [
        ("rlhf.vllm.server_port", f"vllm_server_port {shown} is not a TCP port (1 to 65535): the trainer has no "
         "server to reach")]


def test_server_mode_port_not_a_number_is_the_flag_checks_alone():
    assert [c for c, _ in errors(job("grpo_server", "vllm_server_port=abc"))] == ["flags.value"]


def test_rlhf_resume_renders_the_newest_complete_checkpoint(tmp_path):
    """A failed rlhf run's end says how to resume: rlhf had no --resume (train's refuses the preset)."""
    from test_resume import checkpoint as resumable

    sft_output(tmp_path, model=str(tmp_path))
    data = rows(tmp_path / "d.jsonl", [chat(rejected_response="no")] * 4)
    ckpt = resumable(tmp_path / "dpo_out" / "v0-20260101-100000", 4, model=str(tmp_path), rlhf_type="dpo")
    args = ["-p", "dpo", "--adapters", "output", "--dataset", data, "--set", "max_steps=10"]
    result = dry([*args, "--output-dir", "dpo_out", "--resume", "auto"], tmp_path)
    assert result.code == 0, result.stderr
    assert argv_of(result.stdout)[-2:] == ["--resume_from_checkpoint", str(ckpt.resolve())]
    nothing = dry([*args, "--output-dir", "elsewhere", "--resume", "auto"], tmp_path)
    assert nothing.code == 2
    assert nothing.stderr.splitlines()[-2] == (f"lorakit: error: --resume auto: no complete checkpoint in "
                                               f"{tmp_path / 'elsewhere'} (no ms-swift run there)")


@pytest.mark.parametrize("value, what", [("0,0", "names GPU 0 more than once"), ("[1, 1]", "names GPU 1 more than once"),
                                         ("abc", "has entries that are not GPU ids: 'abc'"),
                                         ("-1", "has entries that are not GPU ids: '-1'")])
def test_rollout_gpus_are_checked_under_their_own_key(value, what):
    """The rollout job's layout check said 'launch.gpus', a key the user never wrote for it."""
    shown = value.strip("[]").replace(" ", "")
    assert errors(job("grpo_server", f"rollout_gpus={value}", "launch.gpus=2,3")) == [
        ("rlhf.rollout.gpus.invalid", f"rollout_gpus {shown!r} {what}")]


def test_rlhf_adapters_after_the_double_dash_get_the_base_and_ref_adapters(tmp_path):
    """`-- --adapters CKPT` (ms-swift's spelling) kept the preset's Qwen3-8B as the base, no ref_adapters."""
    ckpt = sft_output(tmp_path, model=str(tmp_path))
    result = dry(["-p", "dpo", "--", "--adapters", str(ckpt), "--beta", "0.2"], tmp_path)
    assert result.code == 0, result.stderr
    argv = argv_of(result.stdout)
    assert argv[argv.index("--model") + 1] == str(tmp_path)
    assert argv[-8:] == ["--adapters", str(ckpt), "--model_type", "qwen2", "--template", "qwen",
                         "--ref_adapters", str(ckpt)]
    two = dry(["-p", "dpo", "--", "--adapters", str(ckpt), str(ckpt)], tmp_path)
    assert two.code == 2
    assert two.stderr.splitlines()[-2] == f"lorakit: error: --adapters {ckpt} {ckpt}: rlhf starts from one SFT adapter"


def test_a_kto_preset_switched_to_dpo_is_warned():
    """`--set rlhf_type=dpo` on the kto preset kept its KTO weights (ignored) and its KTO hub
    dataset, which has no rejected answer: it rendered without a word."""
    found = [(f.level, f.message, f.hint) for f in run_checks(job("kto", "rlhf_type=dpo"), Facts(here=False))
             if f.code == "rlhf.kto_only"]
    assert found == [("warning", "desirable_weight, undesirable_weight (built-in kto) weigh KTO's loss only, and "
                      "rlhf_type is dpo: ignored; a KTO dataset (a label per row) has no rejected answer for dpo",
                      "drop desirable_weight, undesirable_weight, or start from the built-in dpo preset "
                      "(lorakit rlhf -p dpo)")]
    grpo = [f.message for f in run_checks(job("kto", "rlhf_type=grpo"), Facts(here=False)) if f.code == "rlhf.kto_only"]
    assert grpo == ["desirable_weight, undesirable_weight (built-in kto) weigh KTO's loss only, and rlhf_type is "
                    "grpo: ignored"]
    assert [f for f in run_checks(job("kto"), Facts(here=False)) if f.code == "rlhf.kto_only"] == []


def test_train_from_an_rlhf_record_points_to_rlhf_from(tmp_path):
    sft_output(tmp_path, model=str(tmp_path))
    data = rows(tmp_path / "d.jsonl", [chat(rejected_response="no")] * 4)
    first = launch_fake(["rlhf", "-p", "dpo", "--adapters", "output", "--dataset", data, "--output-dir", "dpo_out"],
                        tmp_path, tmp_path / "first.json")
    assert first.returncode == 0, first.stderr
    again = launch_fake(["train", "--from", "dpo_out/lorakit-run.yaml", "--dry-run"], tmp_path, tmp_path / "x.json")
    assert again.returncode == 2
    assert again.stderr.splitlines()[-2:] == [
        "lorakit: error: preset 'dpo' runs `swift rlhf`, not `swift sft`",
        "  hint: replay it with lorakit rlhf --from dpo_out/lorakit-run.yaml"]


def test_a_failed_rlhf_run_is_told_rlhfs_resume_spelling(tmp_path):
    """The end of a failed run prints its resume command: rlhf's --resume takes a value."""
    sft_output(tmp_path, model=str(tmp_path))
    data = rows(tmp_path / "d.jsonl", [chat(rejected_response="no")] * 4)
    from conftest import FAKES

    env = {**os.environ, "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "FAKE_SWIFT_RECORD": str(tmp_path / "r.json"),
           "FAKE_SWIFT_MODE": "exit:3"}
    out = tmp_path / "dpo_out"
    ck = out / "v0-20261201-000000" / "checkpoint-2"
    ck.mkdir(parents=True)
    import shutil as _shutil
    src = next((tmp_path / "output").rglob("checkpoint-*"))
    for item in src.iterdir():
        (_shutil.copytree if item.is_dir() else _shutil.copy)(item, ck / item.name)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (ck / name).write_bytes(b"\0" * 8)
    done = subprocess.run([sys.executable, "-m", "lorakit", "rlhf", "-p", "dpo", "--adapters", "output", "--dataset",
                           data, "--output-dir", "dpo_out"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 3, done.stderr
    assert any(line.startswith("  lorakit rlhf --from ") and line.endswith(" --resume auto")
               for line in done.stderr.splitlines()), done.stderr


@pytest.mark.network
def test_kto_label_as_written_is_what_the_3_0_wheels_say():
    """The rule's source, read from the published wheels (scripts/gen_swift_history.py's cache)."""
    import importlib.util
    import os
    import zipfile

    script = Path(__file__).resolve().parents[1] / "scripts" / "gen_swift_history.py"
    spec = importlib.util.spec_from_file_location("gen_swift_history", script)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    cache = Path(os.environ.get("LORAKIT_SWIFT_WHEELS") or Path.home() / ".cache" / "lorakit" / "swift-wheels")
    said = {}
    for version in ("3.0.0", "3.0.1", "3.0.2"):
        try:
            wheel = gen.wheel("ms-swift", version, cache, offline=False)
        except gen.NoIndex as exc:
            pytest.skip(f"no package index: {exc}")
        text = zipfile.ZipFile(wheel).read("swift/llm/template/base.py").decode()
        body = text[text.index("def _kto_encode"):].split("\n    def ", 1)[0]
        said[version] = [line.strip() for line in body.splitlines() if "encoded['label']" in line]
    assert said == {"3.0.0": ["encoded['label'] = label"], "3.0.1": ["encoded['label'] = label"],
                    "3.0.2": ["encoded['label'] = bool(label)"]}


@pytest.mark.parametrize("labels, version, codes", [
    (["false", "true"], "4", []), (["False", "True"], "3.0.1", []),  # pandas reads these as bool
    (["0", "1"], "4", []), (["0", "1"], "3.0.1", ["rlhf.data.label"]),  # int64: bool() from 3.0.2
    (["0.0", "1.0"], "4", []),  # float64, as 0.0/1.0 in JSON (a second hostile review)
    (["maybe", "true"], "4", ["rlhf.data.label"])])
def test_kto_csv_labels_are_read_as_pandas_types_them(tmp_path, labels, version, codes):
    """A hostile review: 'false'/'0' in a CSV were compared as text and refused."""
    data = tmp_path / "kto.csv"
    data.write_text("query,response,label\n" + "".join(f"q{i},a{i},{labels[i % 2]}\n" for i in range(6)))
    said = [code for level, code, _ in kto_version(str(data), version) if level == "error"]
    assert said == codes
