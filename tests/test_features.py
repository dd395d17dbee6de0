"""Settings that need a partner (lorakit.checks.features), custom_dataset_info's shape
(lorakit.checks.datasetinfo) and the save/eval grid (policy.check_save_grid). Each failure the
errors claim is shown on the real ms-swift in tests/test_real_failures.py (packing-eager,
padding-free-unset, streaming-no-max-steps, quant-*, dataset-info-*; bnb4-zero3 cited)."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli, swift_source
from lorakit import overrides as layers, presets
from lorakit.presets import builtin_dir
from lorakit.checks import run_checks
from lorakit.checks.facts import Facts
from lorakit.fixups import apply_fixups
from lorakit.job import build_job

CODES = ("args.packing.", "train.streaming.", "train.resume.", "rlhf.cached", "rlhf.gkd.", "args.quant_bits.",
         "layout.zero3.bnb", "data.dataset_info.", "eval.save_steps_unaligned", "eval.limit_keeps_best",
         "args.lazy_tokenize.")


def found(overrides: dict, *, major: int = 4, version: str | None = None, preset: str = "single"):
    resolved = layers.apply_overrides(presets.load(preset), [(f"args.{k}", v, "--set") for k, v in overrides.items()])
    job = apply_fixups(build_job(resolved, {}, swift_major=major, swift_version=version))
    return [(f.level, f.code, f.message) for f in run_checks(job, Facts(here=False))
            if f.code.startswith(CODES)]


FLASH4 = "flash_attn, flash_attention_2, flash_attention_3, flash_attention_4"


@pytest.mark.parametrize("overrides, major, version, expected", [
    ({"packing": True}, 4, None, [("error", "args.packing.attn_impl",
      "packing needs a flash attention implementation, and attn_impl is unset: ms-swift refuses the run while "
      'parsing its arguments (The "packing" feature requires a flash attention implementation)')]),
    ({"padding_free": True, "attn_impl": "sdpa"}, 4, None, [("error", "args.packing.attn_impl",
      "padding_free needs a flash attention implementation, and attn_impl is 'sdpa': ms-swift refuses the run "
      'while parsing its arguments (The "padding_free" feature requires a flash attention implementation)')]),
    ({"packing": True, "attn_impl": "flash_attention_4"}, 4, None, []),
    ({"packing": True, "attn_impl": "flash_attention_4"}, 4, "4.1.3", [("error", "args.packing.attn_impl",
      "packing needs a flash attention implementation, and attn_impl is 'flash_attention_4': ms-swift refuses the "
      'run while parsing its arguments (The "packing" feature requires a flash attention implementation)')]),
    ({"packing": True, "attn_impl": "flash_attention_2"}, 3, "3.6.4", [("error", "args.packing.attn_impl",
      "packing needs a flash attention implementation, and attn_impl is 'flash_attention_2': ms-swift refuses the "
      'run while parsing its arguments (The "packing" feature requires a flash attention implementation)')]),
    ({"packing": True}, 3, "3.4.1", []),  # no such check in ms-swift before 3.5
    ({"packing": "false"}, 4, None, []),
])
def test_packing_needs_flash_attention_per_minor(overrides, major, version, expected):
    assert found(overrides, major=major, version=version) == expected


def test_packing_hint_names_the_minor_s_choices():
    result = run_cli(["validate", "-p", "single", "--swift-version", "3.6", "--", "--packing", "true"])
    assert result.code == 2
    lines = result.stderr.splitlines()
    at = lines.index("error[args.packing.attn_impl] args.packing (-- extra flags): packing needs a flash attention "
                     "implementation, and attn_impl is unset: ms-swift refuses the run while parsing its arguments "
                     '(The "packing" feature requires a flash attention implementation)')
    assert lines[at + 1] == ("  hint: set attn_impl: flash_attn (ms-swift takes flash_attn; pip install flash-attn on "
                             "the training machine), or drop packing")


@pytest.mark.parametrize("overrides, expected", [
    ({"streaming": True}, [("error", "train.streaming.max_steps",
      "streaming true with max_steps unset: a streamed dataset has no length, so transformers refuses the run once "
      'the model has loaded ("max_steps has to be specified")')]),
    ({"streaming": True, "max_steps": -1}, [("error", "train.streaming.max_steps",
      "streaming true with max_steps -1: a streamed dataset has no length, so transformers refuses the run once "
      'the model has loaded ("max_steps has to be specified")')]),
    ({"streaming": True, "max_steps": 1000}, []),
    ({"streaming": False}, []),
])
def test_streaming_needs_max_steps(overrides, expected):
    assert found(overrides) == expected


@pytest.mark.parametrize("overrides, expected", [
    ({"quant_bits": 4}, [("error", "args.quant_bits.no_method",
      "quant_bits 4 without quant_method: ms-swift quantizes nothing (it reads quant_bits only with a method) and "
      "loads the model at full precision")]),
    ({"quant_bits": 4, "model": "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4"}, [("warning", "args.quant_bits.no_method",
      "quant_bits 4 without quant_method: ms-swift quantizes nothing (it reads quant_bits only with a method) and "
      "loads the model at full precision, unless Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4 is quantized already (its name "
      "says so)")]),
    ({"quant_method": "bnb"}, [("error", "args.quant_bits.missing",
      'quant_method bnb without quant_bits: ms-swift refuses it while loading the model ("Please set the quant_bits")')]),
    ({"quant_method": "bnb", "quant_bits": 2}, [("error", "args.quant_bits.unsupported",
      "quant_method bnb takes quant_bits 4, 8, not 2: ms-swift refuses it while loading the model")]),
    ({"quant_method": "quanto", "quant_bits": "float8"}, []),
    ({"quant_method": "fp8"}, []),  # fp8 takes no bits
    ({"quant_method": "bnb", "quant_bits": 8, "deepspeed": "zero3"}, []),  # 8-bit: the storage rule is 4-bit's
    ({"quant_method": "bnb", "quant_bits": 4, "deepspeed": "zero3"}, [("error", "layout.zero3.bnb_storage",
      "bnb 4-bit with deepspeed zero3 and no bnb_4bit_quant_storage: ZeRO-3 needs every parameter in one dtype, and "
      'bnb stores 4-bit weights as uint8 (DeepSpeed: "all params must have the same dtype")')]),
    ({"quant_method": "bnb", "quant_bits": 4, "deepspeed": "zero3", "bnb_4bit_quant_storage": "bfloat16"}, []),
    ({"quant_method": "bnb", "quant_bits": 4, "deepspeed": "zero2"}, []),
])
def test_quantization_needs_a_method_and_its_bits(overrides, expected):
    assert found(overrides) == expected


def test_quant_bits_without_method_is_fine_where_a_method_comes_from_elsewhere(tmp_path, monkeypatch):
    """load_args_from_ckpt fills an unset quant_method from the checkpoint's args.json (4.6.0
    base_args.py load_keys); a model quantized already names its own (config quantization_config)."""
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "out" / "v0" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text("{}")
    (ckpt / "args.json").write_text(json.dumps({"quant_method": "bnb", "quant_bits": 4}))
    # training reads a checkpoint's args.json only with load_args true (TrainArguments' default is
    # False: 4.6.0 sft_args.py:175); infer reads it by default (BaseArguments: True)
    assert found({"quant_bits": 4, "adapters": [str(ckpt)], "load_args": True}) == []
    refused = found({"quant_bits": 4, "adapters": [str(ckpt)]})
    assert [code for _, code, _ in refused] == ["args.quant_bits.no_method"]
    assert found({"quant_bits": 4, "adapters": [str(ckpt)]}, preset=str(builtin_dir() / "fragments" / "infer.yaml")) == []
    # resume_only_model true makes the checkpoint the adapters first (sft_args.py:200-207); a full
    # resume leaves it to the Trainer, which reads no args.json
    assert found({"quant_bits": 4, "resume_from_checkpoint": str(ckpt), "resume_only_model": True,
                  "load_args": True}) == []
    resumed = found({"quant_bits": 4, "resume_from_checkpoint": str(ckpt), "load_args": True})
    assert [code for _, code, _ in resumed] == ["args.quant_bits.no_method"]
    (ckpt / "args.json").write_text(json.dumps({"quant_method": None}))
    assert [level for level, _, _ in found({"quant_bits": 4, "adapters": [str(ckpt)], "load_args": True})] == \
        ["error"]
    model = tmp_path / "Qwen2.5-0.5B-Instruct-GPTQ-Int4"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"],
                                                   "quantization_config": {"quant_method": "gptq", "bits": 4}}))
    assert found({"quant_bits": 4, "model": str(model)}) == []
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}))
    assert [level for level, _, _ in found({"quant_bits": 4, "model": str(model)})] == ["error"]


def test_a_dataset_info_mapping_is_refused_with_the_shape_ms_swift_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "info.json").write_text(json.dumps({"flickr30kk": {"path": "x.json", "type": "json"}}))
    (tmp_path / "keys.json").write_text(json.dumps([{"dataset_path": "nope.jsonl", "dataset_nam": "a"}, 5]))
    (tmp_path / "ok.jsonl").write_text("")
    (tmp_path / "good.json").write_text(json.dumps([{"dataset_path": "ok.jsonl", "dataset_name": "mine"}]))
    assert found({"custom_dataset_info": "info.json"}) == [("error", "data.dataset_info.invalid",
        f"custom_dataset_info: {tmp_path}/info.json is a JSON mapping (keys 'flickr30kk'), and ms-swift iterates a "
        "list of entries: it would take each key for an entry and fail")]
    assert found({"custom_dataset_info": "keys.json"}) == [("error", "data.dataset_info.invalid",
        f"custom_dataset_info: {tmp_path}/keys.json: entry 0: 'dataset_nam' is not a dataset field (did you mean "
        "'dataset_name'? ms-swift's DatasetMeta refuses it: unexpected keyword argument); entry 0: dataset_path "
        f"'nope.jsonl': no such file or directory ({tmp_path}/nope.jsonl; a relative path is relative to the info "
        "file's directory); entry 1 is the number 5, not a mapping of dataset fields")]
    assert found({"custom_dataset_info": "good.json"}) == []
    assert found({"custom_dataset_info": '[{"ms_dataset_id": "swift/x"}]'}) == []  # inline JSON, as ms-swift takes
    assert found({"custom_dataset_info": "{bad"}) == [("error", "data.dataset_info.invalid",
        "custom_dataset_info: the inline value does not parse as JSON: Expecting property name enclosed in double "
        "quotes (line 1, column 2)")]
    assert found({"custom_dataset_info": "missing.json"}) == []  # paths.custom_dataset_info.missing says it


def test_a_dataset_info_file_that_is_not_text_is_an_error_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00[")
    (tmp_path / "deep.json").write_text("[" * 100000)
    [(level, code, message)] = found({"custom_dataset_info": "bin.json"})
    assert (level, code) == ("error", "data.dataset_info.invalid")
    assert message == f"custom_dataset_info: {tmp_path}/bin.json is not UTF-8 text (byte 0xff at offset 0)"
    assert found({"custom_dataset_info": "deep.json"}) == [("error", "data.dataset_info.invalid",
        f"custom_dataset_info: {tmp_path}/deep.json does not parse as JSON: nested too deeply")]


SPLIT = {"split_dataset_ratio": 0.01}


@pytest.mark.parametrize("overrides, expected", [
    ({**SPLIT, "save_steps": 200, "eval_steps": 50}, [("warning", "eval.save_steps_unaligned",
      "save_steps 200 with eval_steps 50: evaluations fall on steps with no checkpoint, and a checkpoint counts as "
      "best only by the evaluation before it was saved, so the best evaluation may have no checkpoint")]),
    ({**SPLIT, "save_steps": 100, "eval_steps": 100}, []),
    ({**SPLIT, "save_steps": 50, "eval_steps": 200}, []),  # every evaluation has its checkpoint
    ({"split_dataset_ratio": 0, "save_steps": 200, "eval_steps": 50}, []),  # nothing is evaluated
    ({**SPLIT, "save_steps": 200, "eval_steps": 50, "eval_strategy": "epoch"}, []),
])
def test_evaluations_with_no_checkpoint_are_a_warning(overrides, expected):
    assert found(overrides) == expected


KEEPS_BEST = ("warning", "eval.limit_keeps_best", "save_total_limit 1 with evaluation keeps two checkpoints, not "
              "one: ms-swift ranks them by eval loss and keeps the best besides the newest (three on disk while "
              "the next one is written)")


@pytest.mark.parametrize("overrides, expected", [
    ({**SPLIT, "save_total_limit": 1, "save_steps": 50, "eval_steps": 200}, [KEEPS_BEST]),  # ms-swift #6392
    ({**SPLIT, "save_total_limit": "1"}, [KEEPS_BEST]),
    ({**SPLIT, "save_total_limit": 1, "metric_for_best_model": "acc"}, [(*KEEPS_BEST[:2], KEEPS_BEST[2].replace(
        "by eval loss", "by acc"))]),
    ({**SPLIT, "save_total_limit": 2}, []),
    ({"split_dataset_ratio": 0, "save_total_limit": 1}, []),  # no evaluation: no best
    ({**SPLIT, "save_total_limit": 1, "eval_strategy": "no"}, []),
    ({**SPLIT, "save_total_limit": 1, "eval_strategy": "NO"}, []),
    # nothing saved; and eval_strategy follows save_strategy when not given (a hostile review)
    ({**SPLIT, "save_total_limit": 1, "save_strategy": "no"}, []),
    ({**SPLIT, "save_total_limit": 1, "save_strategy": "epoch", "eval_strategy": "no"}, []),
    ({**SPLIT, "save_total_limit": 1, "predict_with_generate": True}, [(*KEEPS_BEST[:2], KEEPS_BEST[2].replace(
        "by eval loss", "by rouge-l"))]),
])
def test_a_limit_of_one_with_evaluation_keeps_the_best_too(overrides, expected):
    assert found(overrides) == expected


def test_the_limit_of_one_becoming_two_is_ms_swifts_own_rotation():
    assert "            save_total_limit = 2" in swift_source("trainers/mixin.py")
    assert "            self.metric_for_best_model = 'rouge-l' if self.predict_with_generate else 'loss'" in \
        swift_source("arguments/sft_args.py")


def rlhf_found(overrides: dict, version: str | None = None):
    return found(overrides, major=4 if not version or version.startswith("4") else 3, version=version, preset="dpo")


@pytest.mark.parametrize("overrides, version, expected", [
    ({"rlhf_type": "gkd", "cached_dataset": ["cache/train"]}, None, [("error", "rlhf.gkd.cached_dataset",
      "cached_dataset with rlhf_type gkd and lmbda 0.5: on-policy steps rebuild the prompt from each row's messages, "
      "which a cached (pre-tokenized) dataset does not keep; the first one fails (KeyError: 'messages')")]),
    ({"rlhf_type": "gkd", "cached_dataset": ["cache/train"], "lmbda": 0}, None, []),
    ({"rlhf_type": "grpo", "cached_val_dataset": ["cache/val"]}, None, [("error", "rlhf.cached_dataset",
      "cached_val_dataset with rlhf_type grpo: GRPO generates from each row's messages, which a cached "
      "(pre-tokenized) dataset does not keep; ms-swift refuses it while parsing its arguments")]),
    ({"rlhf_type": "dpo", "cached_dataset": ["cache/train"]}, None, []),  # DPO trains on the encoded rows
])
def test_a_cached_dataset_where_rows_are_generated_from(overrides, version, expected):
    assert [f for f in rlhf_found(overrides, version) if f[1].endswith("cached_dataset")] == expected


@pytest.mark.parametrize("overrides, expected", [
    ({"streaming": True, "max_steps": 100, "resume_from_checkpoint": "out/v0/checkpoint-50"},
     [("warning", "train.resume.streaming_skip", "resuming a streamed dataset: to skip what was trained, "
       "transformers reads and encodes every row of it again before the first step (it cannot seek in a stream), "
       "which can take hours")]),
    ({"streaming": True, "max_steps": 100, "resume_from_checkpoint": "out/v0/checkpoint-50",
      "ignore_data_skip": True}, []),
    ({"streaming": False, "resume_from_checkpoint": "out/v0/checkpoint-50"}, []),
])
def test_resuming_a_stream_says_what_the_skip_costs(overrides, expected):
    assert [f for f in found(overrides) if f[1] == "train.resume.streaming_skip"] == expected


# --- swift infer over a streamed dataset (#5609) --------------------------------------------------

INFER_STREAMING = ("error[infer.streaming] args.streaming (-- extra flags): streaming true on swift infer over a "
                   "dataset: infer counts the dataset's rows, and a streamed one has none ('object of type "
                   "'IterableDataset' has no len()', after the model has loaded)")


def _infer(tmp_path, *flags):
    import os

    (tmp_path / "val.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                                 {"role": "assistant", "content": "yo"}]}) + "\n")
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        return run_cli(["infer", "--dry-run", "--model", "Qwen/Qwen2.5-7B-Instruct", "--", *flags])
    finally:
        os.chdir(old)


def test_infer_over_a_streamed_dataset_is_refused(tmp_path):
    said = _infer(tmp_path, "--val_dataset", "val.jsonl", "--streaming", "true")
    assert said.code == 2 and INFER_STREAMING in said.stderr


@pytest.mark.parametrize("flags", [("--val_dataset", "val.jsonl", "--streaming", "true", "--stream", "true"),
                                   ("--streaming", "true"),  # no dataset: the interactive prompt
                                   ("--val_dataset", "val.jsonl")])
def test_infer_streaming_that_works_passes(tmp_path, flags):
    said = _infer(tmp_path, *flags)
    assert said.code == 0 and "infer.streaming" not in said.stderr, said.stderr


def test_beam_search_turns_streamed_output_off(tmp_path):
    said = _infer(tmp_path, "--val_dataset", "val.jsonl", "--streaming", "true", "--stream", "true", "--num_beams", "2")
    assert said.code == 2 and INFER_STREAMING in said.stderr


def test_infer_counts_the_dataset_in_ms_swifts_own_source():
    lines = swift_source("pipelines/infer/infer.py")
    assert lines[264].strip() == "if args.write_batch_size < len(val_dataset) and args.result_path:"
    args = swift_source("arguments/infer_args.py")
    assert [a.strip() for a in args[186:190]] == ["if self.stream is None:", "self.stream = self.eval_human",
                                                  "if self.stream and self.num_beams != 1:", "self.stream = False"]


# --- one export that merges and quantizes, on 3.0 (#2949) -----------------------------------------


def _checkpoint(root):
    import struct

    ckpt = root / "v0" / "checkpoint-30"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 32,
                                                          "base_model_name_or_path": "Qwen/Qwen2-VL-7B-Instruct",
                                                          "target_modules": ["q_proj"]}))
    (ckpt / "args.json").write_text(json.dumps({"model": "Qwen/Qwen2-VL-7B-Instruct", "train_type": "lora"}))
    header = json.dumps({"base_model.model.lora_A.weight": {"dtype": "F32", "shape": [8, 8],
                                                            "data_offsets": [0, 256]}}).encode()
    (ckpt / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 256)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 30, "max_steps": 30}))
    return ckpt


@pytest.mark.parametrize("version,refused", [("3.0", True), ("3.1", False), ("4", False)])
def test_merge_and_quantize_in_one_export_only_from_3_1(tmp_path, version, refused):
    said = run_cli(["merge", "--adapters", str(_checkpoint(tmp_path)), "--swift-version", version, "--dry-run", "--",
                    "--quant_bits", "4", "--quant_method", "gptq", "--dataset", "AI-ModelScope/alpaca-gpt4-data-en#100"])
    line = ("error[merge.quant_method] args.quant_method (-- extra flags): quant_method gptq with merge_lora on "
            "ms-swift 3.0: its merge refuses any quant_method ('quantized model and does not support merge-lora'); "
            "3.1 and later merge, then quantize")
    assert (said.code, line in said.stderr) == ((2, True) if refused else (0, False)), said.stderr


def test_the_zero3_bnb_hint_never_suggests_none():
    # 'None' is ms-swift's text for unset (the choice HfArgumentParser maps back to None)
    [(_, code, _)] = found({"quant_method": "bnb", "quant_bits": 4, "deepspeed": "zero3", "torch_dtype": "None"})
    assert code == "layout.zero3.bnb_storage"
    resolved = layers.apply_overrides(presets.load("single"), [
        ("args.quant_method", "bnb", "--set"), ("args.quant_bits", 4, "--set"), ("args.deepspeed", "zero3", "--set"),
        ("args.torch_dtype", "None", "--set"), ("args.bnb_4bit_quant_storage", "None", "--set")])
    job = apply_fixups(build_job(resolved, {}, swift_major=4))
    [hint] = [f.hint for f in run_checks(job, Facts(here=False)) if f.code == "layout.zero3.bnb_storage"]
    assert hint == "set bnb_4bit_quant_storage: bfloat16 (the torch_dtype), or use zero2"


def test_plan_takes_torch_dtype_none_as_unset():
    said = run_cli(["plan", "-p", "single", "--set", "torch_dtype=None"])
    assert said.code == 0, said.stderr


LAZY = ("error", "args.lazy_tokenize.incompatible",
        "lazy_tokenize true with {0} true: ms-swift refuses them together while parsing its arguments "
        "(\"{1} and lazy_tokenize are incompatible.\")")


@pytest.mark.parametrize("overrides, version, expected", [
    ({"lazy_tokenize": True, "packing": True, "attn_impl": "flash_attn"}, None,
     [(LAZY[0], LAZY[1], LAZY[2].format("packing", "Packing"))]),
    ({"lazy_tokenize": "true", "streaming": True, "max_steps": 10}, "4.0",
     [(LAZY[0], LAZY[1], LAZY[2].format("streaming", "Streaming"))]),
    ({"lazy_tokenize": True, "packing": True, "attn_impl": "flash_attn"}, "3.7", "packing"),
    # before 3.7 ms-swift turned lazy_tokenize off for a stream, with a warning
    ({"lazy_tokenize": True, "streaming": True, "max_steps": 10}, "3.6", []),
    ({"lazy_tokenize": False, "packing": True, "attn_impl": "flash_attn"}, None, []),
    ({"packing": True, "attn_impl": "flash_attn"}, None, []),  # unset: ms-swift picks what fits
    ({"lazy_tokenize": True}, None, []),
])
def test_lazy_tokenize_with_packing_or_streaming(overrides, version, expected):
    major = int(version.split(".")[0]) if version else 4
    if expected == "packing":
        expected = [(LAZY[0], LAZY[1], LAZY[2].format("packing", "Packing"))]
    got = [f for f in found(overrides, major=major, version=version) if f[1].startswith("args.lazy_tokenize.")]
    assert got == expected


@pytest.mark.parametrize("overrides, major, expected", [
    ({"quant_method": "bnb", "quant_bits": 4, "tuner_type": "full"}, 4, "tuner_type full on quant_method bnb"),
    ({"quant_method": "hqq", "quant_bits": 4, "tuner_type": "full"}, 4, "tuner_type full on quant_method hqq"),
    ({"quant_method": "fp8", "tuner_type": "full"}, 4, "tuner_type full on quant_method fp8"),
    ({"quant_method": "bnb", "quant_bits": 4, "train_type": "full"}, 3, "train_type full on quant_method bnb"),
    ({"quant_method": "bnb", "quant_bits": 4}, 4, None),  # QLoRA: the adapters are what trains
    ({"tuner_type": "full"}, 4, None),
    ({"quant_method": "bnb", "tuner_type": "full"}, 4, None),  # no bits: args.quant_bits.missing says so
])
def test_a_full_fine_tune_of_a_quantized_model_is_refused(overrides, major, expected):
    resolved = layers.apply_overrides(presets.load("single"), [(f"args.{k}", v, "--set") for k, v in overrides.items()])
    job = apply_fixups(build_job(resolved, {}, swift_major=major, swift_version=None))
    got = [f.message for f in run_checks(job, Facts(here=False)) if f.code == "train.full.quantized"]
    assert got == ([] if expected is None else [
        f"{expected}: transformers' Trainer refuses to train a quantized model without adapters, once the model has "
        "loaded (\"You cannot perform fine-tuning on purely quantized models\")"])


def test_a_full_fine_tune_of_a_gptq_checkpoint_is_refused(tmp_path):
    model = tmp_path / "Qwen2.5-0.5B-Instruct-GPTQ-Int4"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"],
                                                   "quantization_config": {"quant_method": "gptq", "bits": 4}}))
    result = run_cli(["validate", "-p", "single", "--model", str(model), "--", "--tuner_type", "full"])
    assert result.code == 2
    assert ("error[train.full.quantized] args.model (--model): tuner_type full on a model quantized with gptq (its "
            "config.json): transformers' Trainer refuses") in result.stderr
    lora = run_cli(["validate", "-p", "single", "--model", str(model)])
    assert "train.full.quantized" not in lora.stderr
