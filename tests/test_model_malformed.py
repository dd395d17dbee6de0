"""A malformed local model dir through the real entry point: `validate` reports an error finding
naming the file and the field (and --json stays JSON), `plan` exits 2 with the same words; never
a traceback, never a negative plan. Model dirs are written by hand (config.json + safetensors
bytes), so none of this needs torch."""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lorakit import modelconfig
from lorakit.modelinfo import load_model_info

CONFIG = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 8,
          "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
          "vocab_size": 32, "max_position_embeddings": 64, "tie_word_embeddings": False,
          "torch_dtype": "float32"}
L0 = "model.layers.0."
TENSORS = {  # name -> (dtype, shape) of a 1-layer Qwen2 matching CONFIG (kv = 1 head x 4)
    "model.embed_tokens.weight": ("F32", [32, 8]), L0 + "input_layernorm.weight": ("F32", [8]),
    L0 + "self_attn.q_proj.weight": ("F32", [8, 8]), L0 + "self_attn.k_proj.weight": ("F32", [4, 8]),
    L0 + "self_attn.v_proj.weight": ("F32", [4, 8]), L0 + "self_attn.o_proj.weight": ("F32", [8, 8]),
    L0 + "post_attention_layernorm.weight": ("F32", [8]), L0 + "mlp.gate_proj.weight": ("F32", [16, 8]),
    L0 + "mlp.up_proj.weight": ("F32", [16, 8]), L0 + "mlp.down_proj.weight": ("F32", [8, 16]),
    "model.norm.weight": ("F32", [8]), "lm_head.weight": ("F32", [32, 8]),
}
BITS = {"F32": 32, "BF16": 16}
ERROR_HINT = "copy it from the model's published config.json, or download the model again"
WEIGHTS_HINT = "the file is damaged or not a safetensors file: download the model again"
INDEX_HINT = "the index is damaged: download the model again"


def header_of(tensors: dict) -> tuple[dict, int]:
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        size = math.prod(shape) * BITS[dtype] // 8
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    return header, offset


def safetensors_bytes(header: dict | list | str, data: int) -> bytes:
    body = (header if isinstance(header, str) else json.dumps(header)).encode()
    return struct.pack("<Q", len(body)) + body + b"\0" * data


def write_model(path: Path, config=None, header=None) -> Path:
    """A loadable tiny model, or one with `config` / `header` (JSON-able or raw text) replaced."""
    path.mkdir(parents=True, exist_ok=True)
    cfg = CONFIG if config is None else config
    (path / "config.json").write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    good, data = header_of(TENSORS)
    (path / "model.safetensors").write_bytes(safetensors_bytes(good if header is None else header, data))
    return path


def with_field(field: str, value) -> dict:
    """CONFIG with `field` ('vocab_size', 'text_config.vocab_size') set to `value`."""
    cfg = json.loads(json.dumps(CONFIG))
    head, _, leaf = field.rpartition(".")
    (cfg.setdefault(head, {}) if head else cfg)[leaf] = value
    return cfg


def tensor_with(**meta) -> dict:
    header, _ = header_of(TENSORS)
    header["lm_head.weight"].update(meta)
    return header


def no_gpus(tmp_path: Path) -> dict:
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty)}


# --- every malformed case: (how to break the dir, the file it names, problem, hint, code) --------

def _config(value):
    return lambda d: write_model(d, config=value)


def _field(field, value):
    return _config(with_field(field, value))


def _header(header):
    return lambda d: write_model(d, header=header)


def _as_dir(d):
    write_model(d)
    (d / "config.json").unlink()
    (d / "config.json").mkdir()


def _bytes(name, data):
    def make(d):
        write_model(d)
        (d / name).write_bytes(data)
    return make


def _index(content):
    def make(d):
        write_model(d)
        (d / "model.safetensors").rename(d / "model-00001-of-00001.safetensors")
        (d / modelconfig.INDEX).write_text(content if isinstance(content, str) else json.dumps(content))
    return make


def _dangling(d):
    write_model(d)
    (d / "config.json").unlink()
    (d / "config.json").symlink_to(d / "blobs" / "abc123")


def _hint(example):
    return f"e.g. {example}; {ERROR_HINT}"


CFG, ST, IDX = "config.json", "model.safetensors", modelconfig.INDEX
CONFIG_CASES = {
    "config-is-a-list": (_config([1, 2]), CFG, "must hold a JSON object, got [1, 2] (a list)",
                         'config.json is one object such as {"model_type": "qwen2", ...}; download the model again'),
    "config-is-null": (_config("null"), CFG, "must hold a JSON object, got null",
                       'config.json is one object such as {"model_type": "qwen2", ...}; download the model again'),
    "config-invalid-json": (_config('{"hidden_size": }'), CFG,
                            "is not valid JSON (Expecting value: line 1 column 17 (char 16))",
                            "fix the JSON syntax, or download the model again"),
    "config-not-utf8": (_bytes("config.json", b'{"model_type": "\xff"}'), CFG,
                        "is not UTF-8 text (invalid start byte at byte 16)",
                        "save it as UTF-8 JSON, or download the model again"),
    "config-is-a-directory": (_as_dir, CFG, "is a directory, not a file", "config.json must be the model's JSON file"),
    "config-dangling-link": (_dangling, CFG, "is a link to {dir}/blobs/abc123, which does not exist",
                             "download the model again"),
    "quantization-config-string": (_field("quantization_config", "gptq"), CFG,
                                   'quantization_config must be a JSON object, got "gptq" (a string)',
                                   _hint('"quantization_config": {"quant_method": "gptq", "bits": 4}')),
    "quant-method-number": (_field("quantization_config", {"quant_method": 4}), CFG,
                            "quantization_config.quant_method must be a method name, got 4",
                            _hint('"quant_method": "gptq"')),
    "quant-bits-text": (_field("quantization_config", {"quant_method": "gptq", "bits": "four"}), CFG,
                        'quantization_config.bits must be a positive integer, got "four" (a string)',
                        _hint('"bits": 4')),
    "compression-config-list": (_field("compression_config", []), CFG,
                                "compression_config must be a JSON object, got [] (a list)",
                                _hint('"compression_config": {"quant_method": "compressed-tensors"}')),
    "architectures-number": (_field("architectures", 5), CFG, "architectures must be a list of class names, got 5",
                             _hint('"architectures": ["Qwen2ForCausalLM"]')),
    "architectures-of-numbers": (_field("architectures", [5]), CFG,
                                 "architectures must be a list of class names, got [5] (a list)",
                                 _hint('"architectures": ["Qwen2ForCausalLM"]')),
    "model-type-list": (_field("model_type", [1]), CFG, "model_type must be a string, got [1] (a list)",
                        _hint('"model_type": "qwen2"')),
    "layers-text": (_field("num_hidden_layers", "two"), CFG,
                    'num_hidden_layers must be a positive integer, got "two" (a string)',
                    _hint('"num_hidden_layers": 32')),
    "vocab-negative": (_field("vocab_size", -100_000_000), CFG, "vocab_size must be a positive integer, "
                       "got -100000000", _hint('"vocab_size": 151936')),
    "hidden-zero": (_field("hidden_size", 0), CFG, "hidden_size must be a positive integer, got 0",
                    _hint('"hidden_size": 4096')),
    "hidden-bool": (_field("hidden_size", True), CFG, "hidden_size must be a positive integer, got true (a boolean)",
                    _hint('"hidden_size": 4096')),
    "heads-fraction": (_field("num_attention_heads", 2.5), CFG, "num_attention_heads must be a positive integer, "
                       "got 2.5", _hint('"num_attention_heads": 32')),
    "kv-heads-nan": (_config('{"hidden_size": 8, "num_key_value_heads": NaN}'), CFG,
                     "num_key_value_heads must be a positive integer, got NaN", _hint('"num_key_value_heads": 8')),
    "head-dim-huge": (_field("head_dim", 1e300), CFG, "head_dim must be a positive integer below 2**40, got 1e+300",
                      _hint('"head_dim": 128')),
    "intermediate-object": (_field("intermediate_size", {}), CFG,
                            "intermediate_size must be a positive integer, got {} (an object)",
                            _hint('"intermediate_size": 12288')),
    "max-positions-negative": (_field("max_position_embeddings", -1), CFG,
                               "max_position_embeddings must be a positive integer, got -1",
                               _hint('"max_position_embeddings": 32768')),
    "experts-zero": (_field("num_experts", 0), CFG, "num_experts must be a positive integer, got 0",
                     _hint('"num_experts": 8')),
    "experts-per-token-text": (_field("num_experts_per_tok", "2"), CFG,
                               'num_experts_per_tok must be a positive integer, got "2" (a string)',
                               _hint('"num_experts_per_tok": 2')),
    "shared-experts-negative": (_field("n_shared_experts", -1), CFG, "n_shared_experts must be an integer >= 0, "
                                "got -1", _hint('"n_shared_experts": 2')),
    "text-config-string": (_field("text_config", "qwen2"), CFG, 'text_config must be a JSON object, got "qwen2" '
                           "(a string)", _hint('"text_config": {"hidden_size": 4096, ...}')),
    "text-config-vocab-zero": (_field("text_config.vocab_size", 0), CFG,
                               "text_config.vocab_size must be a positive integer, got 0", _hint('"vocab_size": 151936')),
    "tie-string": (_field("tie_word_embeddings", "false"), CFG,
                   'tie_word_embeddings must be true or false, got "false" (a string)',
                   _hint('"tie_word_embeddings": false')),
    "dtype-number": (_field("torch_dtype", 16), CFG, "torch_dtype must be a dtype name, got 16",
                     _hint('"torch_dtype": "bfloat16"')),
}
WEIGHTS_CASES = {
    "shape-text": (_header(tensor_with(shape="abc")), ST,
                   "tensor 'lm_head.weight' shape must be a list of integers >= 0, got \"abc\" (a string)"),
    "shape-negative": (_header(tensor_with(shape=[-32, -8])), ST,
                       "tensor 'lm_head.weight' shape must be a list of integers >= 0, got [-32, -8] (a list)"),
    "dtype-unknown": (_header(tensor_with(dtype="Q9")), ST,
                      "tensor 'lm_head.weight' dtype must be a safetensors dtype such as BF16, F16 or F32, "
                      'got "Q9" (a string)'),
    "tensor-not-object": (_header({"lm_head.weight": 5}), ST,
                          "tensor 'lm_head.weight' must be an object with dtype, shape and data_offsets, got 5"),
    "offsets-missing": (_header(tensor_with(data_offsets=None)), ST,
                        "tensor 'lm_head.weight' data_offsets must be [begin, end] with 0 <= begin <= end, got null"),
    "offsets-past-end": (_header(tensor_with(data_offsets=[3424, 99999])), ST,
                         "tensor 'lm_head.weight' data_offsets [3424, 99999] run past the end of the file's 4448 "
                         "data bytes (a download cut short?)"),
    "shape-bigger-than-data": (_header(tensor_with(shape=[32, 8, 2])), ST,
                               "tensor 'lm_head.weight' shape [32, 8, 2] of F32 is 2048 bytes, but its data_offsets "
                               "[3424, 4448] hold 1024"),
    "header-a-list": (_header([1]), ST, "safetensors header must be a JSON object, got [1] (a list)"),
    "header-not-json": (_header("{not json"), ST, "safetensors header is not valid JSON (Expecting property name "
                        "enclosed in double quotes: line 1 column 2 (char 1))"),
    "header-past-end": (_bytes("model.safetensors", struct.pack("<Q", 1000) + b"{}"), ST,
                        "safetensors header length 1000 runs past the end of the file (10 bytes)"),
    "header-implausible": (_bytes("model.safetensors", b"\xff" * 16), ST,
                           f"safetensors header length {2 ** 64 - 1} is implausible"),
    "shorter-than-8": (_bytes("model.safetensors", b"\x01\x02"), ST, "not a safetensors file (shorter than 8 bytes)"),
    "index-not-json": (_index("{"), IDX, "is not valid JSON (Expecting property name enclosed in double quotes: "
                       "line 1 column 2 (char 1))"),
    "index-without-weight-map": (_index({"metadata": {}}), IDX,
                                 "weight_map must be an object of tensor name -> shard file, but it is missing"),
    "index-shard-number": (_index({"weight_map": {"lm_head.weight": 5}}), IDX,
                           "weight_map['lm_head.weight'] must be a shard file name, got 5"),
}
CASES = {**{k: (*v, modelconfig.CONFIG_INVALID) for k, v in CONFIG_CASES.items()},
         **{k: (make, name, problem, INDEX_HINT if name == IDX else WEIGHTS_HINT, modelconfig.WEIGHTS_INVALID)
            for k, (make, name, problem) in WEIGHTS_CASES.items()}}


@pytest.fixture
def broken(request, tmp_path):
    make, name, problem, hint, code = CASES[request.param]
    d = tmp_path / "model"
    d.mkdir()
    make(d)
    message = f"{d / name}: {problem.replace('{dir}', str(d))}"
    return d, message, hint, code


def test_the_good_model_plans_and_validates(cli, tmp_path):
    """The base every case breaks is itself fine: a failure below is the break, not the fixture."""
    d = write_model(tmp_path / "model")
    plan = cli(["plan", "-p", "single", "--model", str(d), "--set", "torch_dtype=null", "--json"],
               env=no_gpus(tmp_path))
    assert (plan.code, plan.stderr) == (0, "")
    result = json.loads(plan.stdout)
    assert result["model_source"] == str(d) and result["layout"]["dtype"] == "float32"
    assert result["total_params"] == sum(math.prod(s) for _, s in TENSORS.values())
    # a dir named `model` with a Qwen2 config: ms-swift 4.x needs its model_type and template said
    checked = json.loads(cli(["validate", "-p", "single", "--model", str(d), "--set", "model_type=qwen2",
                              "--set", "template=qwen", "--json"]).stdout)
    assert [f for f in checked["findings"] if f["level"] == "error"] == []


@pytest.mark.parametrize("broken", sorted(CASES), indirect=True)
def test_validate_reports_an_error_finding(cli, broken):
    d, message, hint, code = broken
    result = cli(["validate", "-p", "single", "--model", str(d)])
    assert result.code == 2 and "Traceback" not in result.stderr
    assert f"error[{code}] args.model (--model): {message}\n  hint: {hint}\n" in result.stderr
    as_json = cli(["validate", "-p", "single", "--model", str(d), "--json"])
    assert as_json.code == 2
    payload = json.loads(as_json.stdout)
    assert payload["ok"] is False
    assert {"level": "error", "code": code, "message": message, "hint": hint, "key": "args.model",
            "file": "--model"} in payload["findings"]


@pytest.mark.parametrize("broken", sorted(CASES), indirect=True)
def test_plan_exits_2_naming_file_and_field(cli, broken, tmp_path):
    d, message, hint, _ = broken
    result = cli(["plan", "-p", "single", "--model", str(d)], env=no_gpus(tmp_path))
    assert (result.code, result.stdout, result.stderr) == (2, "", f"lorakit: error: {message}\n  hint: {hint}\n")


def test_dry_run_stops_on_a_malformed_config(cli, tmp_path):
    d = write_model(tmp_path / "model", config=with_field("vocab_size", -1))
    result = cli(["train", "-p", "single", "--model", str(d), "--dry-run"])
    assert result.code == 2 and result.stdout == ""
    assert (f"error[model.config.invalid] args.model (--model): {d / 'config.json'}: vocab_size must be a positive "
            "integer, got -1\n") in result.stderr


def test_an_unreadable_config_is_named(cli, tmp_path, monkeypatch):
    d = write_model(tmp_path / "model")
    cfg = d / "config.json"
    cfg.chmod(0)
    if os.access(cfg, os.R_OK):  # root reads through file modes: make the read fail as it would
        real = Path.read_bytes

        def read_bytes(path):
            if path == cfg:
                raise PermissionError(13, "Permission denied")
            return real(path)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    try:
        result = cli(["plan", "-p", "single", "--model", str(d)], env=no_gpus(tmp_path))
        checked = cli(["validate", "-p", "single", "--model", str(d), "--json"])
    finally:
        cfg.chmod(0o644)
    assert (result.code, result.stderr) == (
        2, f"lorakit: error: {cfg}: cannot be read (Permission denied)\n  hint: check the file's permissions\n")
    assert checked.code == 2
    assert [f["code"] for f in json.loads(checked.stdout)["findings"] if f["level"] == "error"] == [
        "model.config.invalid"]


def test_a_missing_shard_stays_a_warning_in_validate_and_an_error_in_plan(cli, tmp_path):
    d = write_model(tmp_path / "model")
    (d / modelconfig.INDEX).write_text(json.dumps({"weight_map": {"lm_head.weight": "model-00002.safetensors"}}))
    # a dir named `model` with a Qwen2 config: ms-swift 4.x needs its model_type and template said
    checked = json.loads(cli(["validate", "-p", "single", "--model", str(d), "--set", "model_type=qwen2",
                              "--set", "template=qwen", "--json"]).stdout)
    missing = f"{d / 'model-00002.safetensors'}: shard named in {modelconfig.INDEX} is missing"
    assert {"level": "warning", "code": "model.unreadable", "message": missing,
            "hint": "the download is incomplete: download the model again", "key": "args.model",
            "file": "--model"} in checked["findings"]
    result = cli(["plan", "-p", "single", "--model", str(d)], env=no_gpus(tmp_path))
    assert (result.code, result.stderr) == (
        2, f"lorakit: error: {missing}\n  hint: the download is incomplete: download the model again\n")


# --- what still passes -------------------------------------------------------------------------

def test_integral_floats_nulls_and_zero_shared_experts_pass(tmp_path):
    cfg = {**CONFIG, "hidden_size": 8.0, "num_hidden_layers": 1.0, "head_dim": None, "n_inner": None,
           "n_shared_experts": 0, "quantization_config": None, "text_config": None, "torch_dtype": None,
           "dtype": "float32", "architectures": None}
    info = load_model_info(write_model(tmp_path / "model", config=cfg))
    assert (info.hidden_size, info.num_layers, info.kv_dim) == (8, 1, 4)
    assert type(info.hidden_size) is int and type(info.num_layers) is int
    assert (info.torch_dtype, info.architectures) == ("float32", [])


def test_text_config_values_are_read_checked_and_win(tmp_path):
    cfg = {**CONFIG, "text_config": {"hidden_size": 8.0, "vocab_size": 32, "torch_dtype": "bfloat16"}}
    info = load_model_info(write_model(tmp_path / "model", config=cfg))
    assert (info.hidden_size, info.vocab_size, info.torch_dtype) == (8, 32, "float32")  # top-level dtype first


# --- random JSON in every field: exit 0 or 2, never a traceback or a negative plan -------------

FIELDS = sorted({*modelconfig.POSITIVE, *modelconfig.NON_NEGATIVE, *modelconfig.SECTIONS,
                 *modelconfig.QUANT_SECTIONS, "model_type", "architectures", "tie_word_embeddings",
                 "torch_dtype", "dtype", "quantization_config.quant_method", "quantization_config.bits",
                 "compression_config.bits", "text_config.hidden_size", "text_config.vocab_size",
                 "text_config.num_hidden_layers", "text_config.tie_word_embeddings", "text_config.torch_dtype",
                 "llm_config.intermediate_size", "rope_theta"})
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
RANDOM = settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("random-models")


def no_traceback_and_sane(cli, d: Path, env: dict) -> None:
    checked = cli(["validate", "-p", "single", "--model", str(d), "--json"])
    assert checked.code in (0, 2)
    payload = json.loads(checked.stdout)  # --json is JSON, whatever the model holds
    assert "swift_major" in payload, payload  # the preset loaded: the checks ran on this model
    model_errors = [f for f in payload["findings"] if f["code"] in (modelconfig.CONFIG_INVALID,
                                                                   modelconfig.WEIGHTS_INVALID)]
    assert all(f["level"] == "error" and f["message"].startswith(str(d)) for f in model_errors)
    planned = cli(["plan", "-p", "single", "--model", str(d), "--json"], env=env)
    assert planned.code in (0, 2)
    if planned.code == 0:
        plan = json.loads(planned.stdout)
        assert all(v >= 0 for v in plan["breakdown_bytes"].values()) and plan["per_gpu_memory_bytes"] >= 0
        assert not model_errors
    else:
        assert planned.stdout == "" and planned.stderr.startswith("lorakit: error: ")
        assert "Traceback" not in planned.stderr
    if model_errors:
        assert planned.code == 2 and planned.stderr.startswith(f"lorakit: error: {model_errors[0]['message']}")


COUNTS = ("hidden_size", "num_layers", "vocab_size", "max_position_embeddings", "intermediate_size", "kv_dim")


@RANDOM
@given(field=st.sampled_from(FIELDS), value=JSON)
def test_random_json_in_any_config_field(cli, scratch, field, value):
    d = write_model(scratch / "cfg", config=with_field(field, value))
    try:
        info = load_model_info(d)
    except modelconfig.ModelFileError as exc:
        assert exc.message.startswith(f"{d / 'config.json'}: ") and exc.finding_code == modelconfig.CONFIG_INVALID
    else:  # what planmath reads is a positive int (never a bool, a float or text) or unknown
        for name in COUNTS:
            value = getattr(info, name)
            assert value is None or (type(value) is int and value > 0), (name, value)
        assert isinstance(info.tie_word_embeddings, bool) and all(isinstance(a, str) for a in info.architectures)
        assert info.torch_dtype is None or isinstance(info.torch_dtype, str)
    no_traceback_and_sane(cli, d, no_gpus(scratch))


@RANDOM
@given(name=st.sampled_from(["lm_head.weight", L0 + "self_attn.q_proj.weight", "model.norm.weight"]),
       key=st.sampled_from(["dtype", "shape", "data_offsets"]), value=JSON)
def test_random_json_in_a_safetensors_header(cli, scratch, name, key, value):
    header, _ = header_of(TENSORS)
    header[name][key] = value
    d = write_model(scratch / "header", header=header)
    no_traceback_and_sane(cli, d, no_gpus(scratch))


@RANDOM
@given(config=JSON)
def test_random_json_as_the_whole_config(cli, scratch, config):
    d = write_model(scratch / "whole", config=config)
    no_traceback_and_sane(cli, d, no_gpus(scratch))
