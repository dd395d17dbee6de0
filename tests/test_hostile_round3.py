"""Round 3 of hostile input against this session's new checks (seqpar, rewards, flags' strict JSON,
resumed, rlhf), through the real CLI. Each test states the correct behaviour, found wrong by a
hostile review: a false alarm against a command ms-swift runs, a hang, or a miss ms-swift stops on."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli

CONFIG = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "num_attention_heads": 14,
          "num_key_value_heads": 2, "hidden_size": 896, "max_position_embeddings": 4096, "num_hidden_layers": 2,
          "vocab_size": 1000}
ROW = {"messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}], "solution": "2"}
PLUGIN = ("from swift.rewards import ORM, orms\n\n\nclass MyAcc(ORM):\n    def __call__(self, completions, **kwargs):\n"
          "        return [0.0 for _ in completions]\n\n\norms['my_acc'] = MyAcc\n")


def findings(args: list[str], *prefixes: str) -> list[tuple[str, str]]:
    result = run_cli(["validate", "--json", *args])
    assert result.code in (0, 2), result.stderr
    return [(f["code"], f["message"]) for f in json.loads(result.stdout)["findings"]
            if f["code"].startswith(prefixes)]


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working directory with a local model (2 key/value heads) and 8 rows, written relative as
    ms-swift's examples do."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(ROW) + "\n" for _ in range(8)), encoding="utf-8")
    return tmp_path


def sft(*extra: str) -> list[str]:
    return ["-p", "ddp", "--set", "model=./m", "--set", "model_type=qwen2", "--set", "template=qwen",
            "--set", "dataset=d.jsonl", "--set", "split_dataset_ratio=0", *extra]


def grpo(*extra: str) -> list[str]:
    return ["-p", "grpo_colocate", "--set", "dataset=d.jsonl", "--", *extra]


# -- seqpar.py -----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["4.6.0", "3.12.6"])
def test_packing_turns_padding_free_on_so_ring_attention_is_fine(here, version):
    got = findings([*sft("--set", "sequence_parallel_size=4", "--set", "packing=true", "--set", "attn_impl=flash_attn"),
                    "--swift-version", version], "layout.sequence_parallel")
    assert got == []


def test_a_huge_head_count_does_not_hang(here):
    config = dict(CONFIG, num_attention_heads=1000000007, num_key_value_heads=1000000007)
    (here / "m" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    argv = [sys.executable, "-m", "lorakit", "validate", "--json", *sft("--set", "sequence_parallel_size=2")]
    try:  # a hang guard, not a speed measurement: validate answers in well under a second
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=here, env=dict(os.environ))
    except subprocess.TimeoutExpired:
        pytest.fail("lorakit validate hung on num_key_value_heads 1000000007")
    codes = [f["code"] for f in json.loads(done.stdout)["findings"]]
    assert done.returncode == 2 and "layout.sequence_parallel.heads" in codes


# -- rewards.py: names registered where the text reader does not look ------------------------------

def test_a_reward_registered_in_custom_register_path_is_known(here):
    (here / "plugin.py").write_text(PLUGIN, encoding="utf-8")
    assert findings(grpo("--custom_register_path", "plugin.py", "--reward_funcs", "my_acc"), "rlhf.grpo.reward") == []


def test_a_reward_registered_in_a_package_beside_the_plugin_is_known(here):
    (here / "myrew").mkdir()
    (here / "myrew" / "__init__.py").write_text("", encoding="utf-8")
    (here / "myrew" / "rewards.py").write_text(PLUGIN, encoding="utf-8")
    (here / "plugin.py").write_text("from myrew.rewards import MyAcc  # noqa: F401\n", encoding="utf-8")
    assert findings(grpo("--external_plugins", "plugin.py", "--reward_funcs", "my_acc"), "rlhf.grpo.reward") == []


def test_a_registration_past_the_first_mebibyte_is_not_refused(here):
    (here / "plugin.py").write_text("# generated table\n" + "X = 1\n" * 200_000 + PLUGIN, encoding="utf-8")
    assert (here / "plugin.py").stat().st_size > 1 << 20
    assert findings(grpo("--external_plugins", "plugin.py", "--reward_funcs", "my_acc"), "rlhf.grpo.reward") == []


def test_orms_imported_under_another_name_is_not_refused(here):
    (here / "plugin.py").write_text("from swift.rewards import ORM, orms as O\n\n\nclass A(ORM):\n    pass\n\n\n"
                                    "O['my_acc'] = A\n", encoding="utf-8")
    assert findings(grpo("--external_plugins", "plugin.py", "--reward_funcs", "my_acc"), "rlhf.grpo.reward") == []


def test_a_misspelled_plugin_reward_is_still_refused(here):
    # the other side of the four above: a fix must not let a real miss through
    (here / "plugin.py").write_text(PLUGIN, encoding="utf-8")
    got = findings(grpo("--external_plugins", "plugin.py", "--reward_funcs", "my_acx"), "rlhf.grpo.reward")
    assert [code for code, _ in got] == ["rlhf.grpo.reward_unknown"]



def test_a_nested_reward_list_is_one_finding(here):
    got = findings(["-p", "grpo_colocate", "--set", "dataset=d.jsonl", "--set", "reward_funcs=[[accuracy]]"],
                   "rlhf.grpo.reward", "flags.value")
    assert got == [("flags.value", "reward_funcs: list items must be single values, got ['accuracy']")]

# -- flags.py _strict_json ---------------------------------------------------------------------------

def test_empty_columns_after_dashdash_is_refused(here):
    got = findings([*sft(), "--", "--columns", ""], "flags.value")
    assert got == [("flags.value", "columns '' is neither a JSON mapping nor a file: ms-swift's json_parse_to_dict "
                    "cannot read it and stops while parsing its arguments (\"Unable to parse json string\"); columns "
                    "maps old names to new: '{\"old_name\": \"new_name\"}'")]


# -- rlhf.py / layout.py: GPUs nobody listed, num_generations -----------------------------------------

@pytest.fixture
def four_gpus(here, monkeypatch):
    """A fake `nvidia-smi -L` with 4 GPUs (tests/test_unlisted_gpus.py does the same)."""
    bin_dir = here / "bin"
    bin_dir.mkdir()
    lines = "".join(f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i:08d})\\n" for i in range(4))
    (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\n[ \"$1\" = -L ] || exit 9\nprintf '{lines}'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for name in ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE", "ASCEND_RT_VISIBLE_DEVICES", "MUSA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    return here


@pytest.mark.skipif(os.path.isdir("/proc/driver/nvidia/gpus"), reason="a real NVIDIA driver answers first")
def test_single_device_mode_is_no_device_map_for_grpo(four_gpus, monkeypatch):
    (four_gpus / "srv.yaml").write_text(
        "extends: grpo_server\nlaunch:\n  gpus: null\n  nproc_per_node: null\nargs:\n  rollout_gpus: null\n"
        "  vllm_server_host: 10.0.0.5\n  dataset: d.jsonl\n", encoding="utf-8")
    monkeypatch.setenv("SWIFT_SINGLE_DEVICE_MODE", "1")
    assert findings(["-p", "srv.yaml"], "rlhf.vllm.device_map", "layout.device_map") == []


@pytest.mark.skipif(os.path.isdir("/proc/driver/nvidia/gpus"), reason="a real NVIDIA driver answers first")
def test_single_device_mode_is_no_device_map_for_deepspeed(four_gpus, monkeypatch):
    (four_gpus / "mine.yaml").write_text(
        "command: sft\nenv:\n  SWIFT_SINGLE_DEVICE_MODE: '1'\nargs:\n  model: Qwen/Qwen2.5-7B-Instruct\n"
        "  dataset: [AI-ModelScope/alpaca-gpt4-data-en]\n  tuner_type: lora\n  deepspeed: zero2\n", encoding="utf-8")
    assert findings(["-p", "mine.yaml"], "layout.device_map") == []


def test_num_generations_1_with_a_teacher_on_3x_is_refused(here):
    got = findings(["-p", "grpo_colocate", "--set", "dataset=d.jsonl", "--set", "num_generations=1",
                    "--swift-version", "3.12.6", "--", "--teacher_model", "Qwen/Qwen2.5-7B-Instruct"],
                   "rlhf.grpo.generations")
    assert [code for code, _ in got] == ["rlhf.grpo.generations"]



def test_no_reward_in_server_mode_before_3_7_is_an_error(here):
    got = findings(["-p", "grpo_server", "--swift-version", "3.6", "--set", "reward_funcs=null"], "rlhf.grpo.rewards")
    assert [code for code, _ in got] == ["rlhf.grpo.rewards"]
    result = run_cli(["validate", "-p", "grpo_server", "--swift-version", "3.6", "--set", "reward_funcs=null"])
    assert result.code == 2 and "error[rlhf.grpo.rewards]" in result.stderr

# -- features.py check_infer_streaming ------------------------------------------------------------------

def test_infer_streaming_over_a_split_dataset_is_no_len_error(here):
    said = run_cli(["infer", "--dry-run", "--model", "./m", "--set", "model_type=qwen2", "--set", "template=qwen",
                    "--", "--dataset", "d.jsonl", "--split_dataset_ratio", "0.1", "--streaming", "true"])
    assert "error[infer.streaming]" not in said.stderr
    assert said.code == 0


def test_infer_streaming_over_a_val_dataset_is_still_refused(here):
    # the real case (#5609) the fix must keep
    said = run_cli(["infer", "--dry-run", "--model", "./m", "--set", "model_type=qwen2", "--set", "template=qwen",
                    "--", "--val_dataset", "d.jsonl", "--streaming", "true"])
    assert said.code == 2 and "error[infer.streaming]" in said.stderr


# -- resumed.py -------------------------------------------------------------------------------------------

def test_a_max_steps_trial_resumed_for_its_epochs_is_not_finished(here):
    (here / "d.jsonl").write_text("".join(json.dumps(ROW) + "\n" for _ in range(100)), encoding="utf-8")
    ckpt = here / "output" / "v0-20260101-120000" / "checkpoint-10"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 10, "max_steps": 10, "num_train_epochs": 1}))
    (ckpt / "args.json").write_text(json.dumps({"dataset": [str(here / "d.jsonl")], "num_train_epochs": 3,
                                                "max_steps": 10}))
    got = findings(["-p", "single", "--set", "dataset=d.jsonl", "--set", "split_dataset_ratio=0", "--set",
                    "num_train_epochs=3", "--set", "global_batch_size=null", "--set", "gradient_accumulation_steps=1",
                    "--", "--resume_from_checkpoint", str(ckpt.relative_to(here))], "train.resume")
    assert got == []


# -- features.py check_merge_quant -----------------------------------------------------------------------

def test_a_refused_quant_method_on_3_0_is_one_finding(here):
    ckpt = here / "v0" / "checkpoint-30"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 32,
                                                          "base_model_name_or_path": "Qwen/Qwen2-7B-Instruct",
                                                          "target_modules": ["q_proj"]}))
    (ckpt / "args.json").write_text(json.dumps({"model": "Qwen/Qwen2-7B-Instruct", "train_type": "lora"}))
    header = json.dumps({"base_model.model.lora_A.weight": {"dtype": "F32", "shape": [8, 8],
                                                            "data_offsets": [0, 256]}}).encode()
    (ckpt / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 256)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 30, "max_steps": 30}))
    said = run_cli(["merge", "--adapters", str(ckpt), "--swift-version", "3.0", "--dry-run", "--",
                    "--quant_method", "None", "--quant_bits", "4"])
    assert "error[flags.value] args.quant_method (-- extra flags): quant_method: 'None' is not one of awq, gptq, " \
           "bnb" in said.stderr
    assert "error[merge.quant_method]" not in said.stderr


@pytest.mark.parametrize("name, make", [("cols", "dir"), ("cols.json", "old:new\n")])
def test_a_columns_path_ms_swift_cannot_load_is_refused(here, name, make):
    if make == "dir":
        (here / name).mkdir()
    else:
        (here / name).write_text(make, encoding="utf-8")
    got = findings([*sft(), "--", "--columns", name], "flags.value")
    assert [code for code, _ in got] == ["flags.value"] and got[0][1].startswith(f"columns {name!r}")


def test_num_generations_1_on_3x_quotes_3x(here):
    got = findings(["-p", "grpo_colocate", "--set", "dataset=d.jsonl", "--set", "num_generations=1",
                    "--swift-version", "3.12.6"], "rlhf.grpo.generations")
    assert len(got) == 1 and "GRPO requires at least 2 generations per prompt" in got[0][1]
