"""A full fine-tune in float16 with fp16 mixed precision (checks/precision.py, ms-swift #5718)."""

from __future__ import annotations

import inspect

import pytest

from conftest import run_cli, swift_source
from test_requires import model_dir

QWEN_FP16 = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "torch_dtype": "float16"}


def codes(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if "train.fp16.full" in line]


def test_full_in_float16_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli(["validate", "-p", "single", "--", "--tuner_type", "full", "--torch_dtype", "float16"])
    assert result.code == 2
    assert codes(result) == [
        "error[train.fp16.full] args.torch_dtype (-- extra flags): a full fine-tune with torch_dtype float16: ms-swift "
        "turns on fp16 mixed precision, every trainable weight is float16, and torch's GradScaler stops at the first "
        "step (\"ValueError: Attempting to unscale FP16 gradients.\")"]


@pytest.mark.parametrize("extra", [
    ("--tuner_type", "lora", "--torch_dtype", "float16"),  # peft keeps the adapters in fp32
    ("--tuner_type", "full", "--torch_dtype", "bfloat16"),
    ("--tuner_type", "full", "--torch_dtype", "float32"),  # fp16 mixed precision over fp32 weights
    ("--tuner_type", "full", "--torch_dtype", "float16", "--fp16", "false"),
    ("--tuner_type", "full", "--torch_dtype", "float16", "--deepspeed", "zero2"),  # DeepSpeed scales its own
    ("--tuner_type", "full", "--torch_dtype", "float16", "--use_cpu", "true"),
    # FSDP scales its own (ShardedGradScaler allows fp16; FSDP2 upcasts): a second hostile review
    ("--tuner_type", "full", "--torch_dtype", "float16", "--fsdp", "fsdp2")])
def test_what_trains(tmp_path, monkeypatch, extra):
    monkeypatch.chdir(tmp_path)
    assert codes(run_cli(["validate", "-p", "single", "--", *extra])) == []


def test_a_model_type_ms_swift_loads_in_its_own_dtype_wins_over_config_json(tmp_path, monkeypatch):
    """molmoe registers torch_dtype float32 (ModelMeta.torch_dtype, in the snapshot): fp16 mixed
    precision over fp32 weights trains (a second hostile review)."""
    from lorakit.swiftregistry import swift_models

    assert swift_models(4)["model_types"]["molmoe"]["torch_dtype"] == "float32"
    monkeypatch.chdir(tmp_path)
    model_dir(tmp_path, {"architectures": ["MolmoForCausalLM"], "model_type": "molmo", "torch_dtype": "float16"},
              "MolmoE-1B-0924")
    result = run_cli(["validate", "-p", "single", "--set", "torch_dtype=null", "--", "--model", "MolmoE-1B-0924",
                      "--model_type", "molmoe", "--tuner_type", "full"])
    assert codes(result) == [], result.stderr


def test_before_3_3_1_fp16_false_is_overridden_and_bf16_picks_the_dtype(tmp_path, monkeypatch):
    """3.0.0-3.3.0.post1 set fp16 from the dtype whatever --fp16 says, and --fp16/--bf16 pick the dtype
    when --torch_dtype is unset (a second hostile review, from the wheels)."""
    monkeypatch.chdir(tmp_path)
    result = run_cli(["validate", "-p", "single", "--swift-version", "3.2.0", "--", "--tuner_type", "full",
                      "--torch_dtype", "float16", "--fp16", "false"])
    assert [line.split(": ", 1)[1] for line in codes(result)] == [
        "a full fine-tune with torch_dtype float16: ms-swift turns on fp16 mixed precision, every trainable weight is "
        "float16, and torch's GradScaler stops at the first step (\"ValueError: Attempting to unscale FP16 "
        "gradients.\"); ms-swift 3.2.0 turns fp16 on whatever --fp16 says (3.3.1 and later follow it)"]
    model_dir(tmp_path, QWEN_FP16, "qwen-fp16")
    bf16 = run_cli(["validate", "-p", "single", "--swift-version", "3.2.0", "--set", "torch_dtype=null", "--",
                    "--model", "qwen-fp16", "--model_type", "qwen2", "--tuner_type", "full", "--bf16", "true"])
    assert codes(bf16) == []


@pytest.mark.parametrize("extra, said", [
    (("--torch_dtype", "float16", "--bf16", "true"),
     "--bf16 true beside torch_dtype float16, for which ms-swift turns fp16 on: transformers' TrainingArguments "
     "stops before the model loads (\"At most one of fp16 and bf16 can be True, but not both\")"),
    (("--torch_dtype", "float32", "--bf16", "true"),
     "--bf16 true beside torch_dtype float32, for which ms-swift turns fp16 on: transformers' TrainingArguments "
     "stops before the model loads (\"At most one of fp16 and bf16 can be True, but not both\")"),
    (("--torch_dtype", "bfloat16", "--bf16", "true", "--fp16", "true"), None),  # bf16 dtype: not this check
    (("--torch_dtype", "float16", "--bf16", "true", "--fp16", "false"), None)])
def test_bf16_beside_the_fp16_ms_swift_turns_on(tmp_path, monkeypatch, extra, said):
    monkeypatch.chdir(tmp_path)
    result = run_cli(["validate", "-p", "single", "--", *extra])
    found = [line.split(": ", 1)[1] for line in result.stderr.splitlines() if "train.fp16_bf16" in line]
    assert found == ([said] if said else [])


def test_the_transformers_line_it_rests_on():
    import transformers.training_args as training_args

    assert "At most one of fp16 and bf16 can be True, but not both" in inspect.getsource(training_args)


def test_a_float16_config_without_torch_dtype_is_one_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model_dir(tmp_path, QWEN_FP16, "qwen-fp16")
    # the built-in presets set torch_dtype bfloat16: null removes it, as a user's own preset would not have it
    result = run_cli(["validate", "-p", "single", "--set", "torch_dtype=null", "--", "--model", "qwen-fp16",
                      "--tuner_type", "full"])
    assert [line.split(": ", 1)[1] for line in codes(result)] == [
        "a full fine-tune with qwen-fp16's config.json torch_dtype float16 (no --torch_dtype): ms-swift turns on fp16 "
        "mixed precision, every trainable weight is float16, and torch's GradScaler stops at the first step "
        "(\"ValueError: Attempting to unscale FP16 gradients.\")"]


def test_the_source_lines_it_rests_on():
    source = swift_source("arguments/base_args/model_args.py")
    at = source.index("        elif self.torch_dtype in {torch.float16, torch.float32}:")
    assert source[at + 1] == "            fp16, bf16 = True, False"
    assert "        if self.fp16 is None:" in source
    import torch.amp.grad_scaler as grad_scaler

    assert 'raise ValueError("Attempting to unscale FP16 gradients.")' in inspect.getsource(grad_scaler)
