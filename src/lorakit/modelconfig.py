"""The one reader of a local model's files: config.json, model.safetensors.index.json and the
safetensors headers, each checked before anything uses it.

Stdlib only: this runs on the validate/dry-run path, which must never import torch,
transformers, numpy or ms-swift. Every field lorakit reads is checked here once, so modelinfo,
plan and planmath can trust its type: a malformed file is a ModelFileError naming the file,
the field, what is wrong and how to fix it (exit 2 in `plan`; an error finding with the
error's `finding_code` in `validate`, `train` and `--dry-run`).
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

from lorakit.errors import LorakitError

CONFIG_INVALID = "model.config.invalid"  # config.json
WEIGHTS_INVALID = "model.weights.invalid"  # the index or a safetensors header

CONFIG = "config.json"
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"

# A header is a few hundred KB even for 70B models; anything bigger is not a safetensors file.
MAX_HEADER = 100 * 1024 * 1024
# Sizes and counts above this are not a model's (the largest vocabularies are ~2**18); the bound
# also keeps the plan's arithmetic inside a float.
MAX_COUNT = 2 ** 40

# Counts and sizes the plan reads (modelinfo._dims): each must be an integer above 0 when set.
# The MoE counts are read by no formula yet, but transformers and ms-swift use them to build
# the model, so a malformed one fails there just the same.
POSITIVE = (
    "hidden_size", "n_embd", "d_model", "intermediate_size", "ffn_hidden_size", "n_inner",
    "num_hidden_layers", "n_layer", "num_layers", "num_attention_heads", "n_head",
    "num_key_value_heads", "multi_query_group_num", "head_dim", "kv_channels",
    "vocab_size", "padded_vocab_size", "max_position_embeddings", "n_positions", "seq_length",
    "num_experts", "num_local_experts", "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size",
)
# DeepSeek's n_shared_experts is 0 (or null) when a model has no shared expert.
NON_NEGATIVE = ("n_shared_experts",)
# Multimodal configs nest the language model's values (Llava/Qwen-VL text_config, InternVL llm_config).
SECTIONS = ("text_config", "llm_config", "language_config")
QUANT_SECTIONS = ("quantization_config", "compression_config")
EXAMPLES = {
    "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 32768,
    "model_type": '"qwen2"', "architectures": '["Qwen2ForCausalLM"]', "tie_word_embeddings": "false",
    "torch_dtype": '"bfloat16"', "dtype": '"bfloat16"', "quant_method": '"gptq"', "bits": 4,
    "quantization_config": '{"quant_method": "gptq", "bits": 4}',
    "compression_config": '{"quant_method": "compressed-tensors"}',
    "text_config": '{"hidden_size": 4096, ...}', "llm_config": '{"hidden_size": 4096, ...}',
    "language_config": '{"hidden_size": 4096, ...}', "num_experts": 8, "num_local_experts": 8,
    "n_routed_experts": 64, "num_experts_per_tok": 2, "moe_intermediate_size": 1408, "n_shared_experts": 2,
}
# Bits per element of every dtype safetensors 0.8 accepts (safetensors' Dtype enum).
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "F8_E8M0": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64, "C64": 64,
}

CONFIG_HINT = "copy it from the model's published config.json, or download the model again"
WEIGHTS_HINT = "the file is damaged or not a safetensors file: download the model again"
INDEX_HINT = "the index is damaged: download the model again"


class ModelFileError(LorakitError):
    """A model file lorakit cannot trust: `path` names it, `finding_code` is the finding's code."""

    def __init__(self, path: str | os.PathLike, problem: str, *, hint: str, finding_code: str):
        super().__init__(f"{path}: {problem}", hint=hint)
        self.path = str(path)
        self.finding_code = finding_code


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def got(value: Any) -> str:
    """'got "two" (a string)', the value as config.json spells it, cut to a readable length."""
    if value is None:
        return "got null"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"got {text}"
    return f"got {text} ({_kind(value)})"


def as_count(value: Any, minimum: int = 1) -> int | None:
    """An integer >= minimum (and below MAX_COUNT) or None: true is not 1, 8.0 is 8, 8.5 is not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and minimum <= value < MAX_COUNT:
        return value
    return None


# --- reading a JSON file ------------------------------------------------------------------------

def _read_json(path: Path, code: str, hint: str) -> Any:
    """The parsed file, or None when it does not exist; ModelFileError for anything unreadable
    (`hint` says how to fix what is not valid JSON)."""
    def fail(problem: str, how: str = hint):
        return ModelFileError(path, problem, hint=how, finding_code=code)

    if not path.exists():
        if path.is_symlink():  # a Hugging Face cache snapshot whose blob is gone
            raise fail(f"is a link to {os.readlink(path)}, which does not exist", "download the model again")
        return None
    if path.is_dir():
        raise fail("is a directory, not a file", f"{path.name} must be the model's JSON file")
    if not path.is_file():
        raise fail("is not a regular file", f"{path.name} must be the model's JSON file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot be read ({exc.strerror or exc})", "check the file's permissions") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"is not UTF-8 text ({exc.reason} at byte {exc.start})",
                   "save it as UTF-8 JSON, or download the model again") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise fail("is not valid JSON (nested too deeply)") from None
    except ValueError as exc:
        raise fail(f"is not valid JSON ({exc})") from None


# --- config.json --------------------------------------------------------------------------------

def config_path(model_dir: str | os.PathLike) -> Path:
    return Path(model_dir) / CONFIG


def _field_error(path: Path, field: str, what: str, value: Any) -> ModelFileError:
    leaf = field.rpartition(".")[2]
    example = EXAMPLES.get(leaf)
    hint = (f'e.g. "{leaf}": {example}; ' if example is not None else "") + CONFIG_HINT
    return ModelFileError(path, f"{field} must be {what}, {got(value)}", hint=hint, finding_code=CONFIG_INVALID)


def _check_counts(path: Path, section: dict, prefix: str) -> dict:
    """The section with its counts as ints (8.0 -> 8); ModelFileError for the first bad one."""
    out = dict(section)
    for keys, minimum, what in ((POSITIVE, 1, "a positive integer"), (NON_NEGATIVE, 0, "an integer >= 0")):
        for key in keys:
            value = section.get(key)
            if value is None:
                continue
            count = as_count(value, minimum)
            if count is None:
                big = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= MAX_COUNT
                raise _field_error(path, prefix + key, f"{what} below 2**40" if big else what, value)
            out[key] = count
    tie = section.get("tie_word_embeddings")
    if tie is not None and not isinstance(tie, bool):
        raise _field_error(path, prefix + "tie_word_embeddings", "true or false", tie)
    for key in ("torch_dtype", "dtype"):
        value = section.get(key)
        if value is not None and not isinstance(value, str):
            raise _field_error(path, prefix + key, "a dtype name", value)
    return out


def _check_quantization(path: Path, cfg: dict) -> None:
    for key in QUANT_SECTIONS:
        section = cfg.get(key)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise _field_error(path, key, "a JSON object", section)
        method = section.get("quant_method")
        if method is not None and not isinstance(method, str):
            raise _field_error(path, f"{key}.quant_method", "a method name", method)
        bits = section.get("bits")
        if bits is not None and as_count(bits) is None:
            raise _field_error(path, f"{key}.bits", "a positive integer", bits)
        if bits is not None:
            section = {**section, "bits": as_count(bits)}
        cfg[key] = section


def validate_config(raw: Any, path: str | os.PathLike) -> dict:
    """config.json's content with every field lorakit reads checked (and counts made ints)."""
    path = Path(path)
    if not isinstance(raw, dict):
        raise ModelFileError(path, f"must hold a JSON object, {got(raw)}",
                             hint='config.json is one object such as {"model_type": "qwen2", ...}; '
                                  "download the model again", finding_code=CONFIG_INVALID)
    cfg = _check_counts(path, raw, "")
    model_type = cfg.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise _field_error(path, "model_type", "a string", model_type)
    arch = cfg.get("architectures")
    if arch is not None and not (isinstance(arch, list) and all(isinstance(a, str) for a in arch)):
        raise _field_error(path, "architectures", "a list of class names", arch)
    _check_quantization(path, cfg)
    for key in SECTIONS:
        section = cfg.get(key)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise _field_error(path, key, "a JSON object", section)
        cfg[key] = _check_counts(path, section, key + ".")
    return cfg


def read_config(model_dir: str | os.PathLike) -> dict | None:
    """The model's config.json, validated; None if it has none. ModelFileError if malformed."""
    path = config_path(model_dir)
    raw = _read_json(path, CONFIG_INVALID, "fix the JSON syntax, or download the model again")
    return None if raw is None and not path.exists() else validate_config(raw, path)


# --- the safetensors index and headers ----------------------------------------------------------

def _weights_error(path: Path, problem: str, hint: str = WEIGHTS_HINT) -> ModelFileError:
    return ModelFileError(path, problem, hint=hint, finding_code=WEIGHTS_INVALID)


def shard_files(model_dir: str | os.PathLike) -> list[Path]:
    """The shards model.safetensors.index.json names (its weight_map), else model.safetensors,
    else none."""
    root = Path(model_dir)
    index = root / INDEX
    data = _read_json(index, WEIGHTS_INVALID, INDEX_HINT)
    if data is None and not index.exists():
        single = root / SINGLE
        return [single] if single.is_file() else []
    if not isinstance(data, dict):
        raise _weights_error(index, f"must hold a JSON object, {got(data)}", INDEX_HINT)
    weight_map = data.get("weight_map")
    if not isinstance(weight_map, dict):
        raise _weights_error(index, "weight_map must be an object of tensor name -> shard file, "
                                    + ("but it is missing" if "weight_map" not in data else got(weight_map)),
                             INDEX_HINT)
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard.strip():
            raise _weights_error(index, f"weight_map[{name!r}] must be a shard file name, {got(shard)}",
                                 INDEX_HINT)
    return [root / name for name in sorted(set(weight_map.values()))]


def _tensor(path: Path, name: str, meta: Any, data_bytes: int) -> tuple[tuple, str]:
    where = f"tensor {name!r}"
    if not isinstance(meta, dict):
        raise _weights_error(path, f"{where} must be an object with dtype, shape and data_offsets, {got(meta)}")
    dtype, shape, offsets = meta.get("dtype"), meta.get("shape"), meta.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _weights_error(path, f"{where} dtype must be a safetensors dtype such as BF16, F16 or F32, "
                                   f"{got(dtype)}")
    if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                            for d in shape)):
        raise _weights_error(path, f"{where} shape must be a list of integers >= 0, {got(shape)}")
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise _weights_error(path, f"{where} data_offsets must be [begin, end] with 0 <= begin <= end, "
                                   f"{got(offsets)}")
    if offsets[1] > data_bytes:
        raise _weights_error(path, f"{where} data_offsets {offsets} run past the end of the file's "
                                   f"{data_bytes} data bytes (a download cut short?)")
    elements = math.prod(shape)
    if elements * DTYPE_BITS[dtype] != 8 * (offsets[1] - offsets[0]):
        raise _weights_error(path, f"{where} shape {shape} of {dtype} is {elements * DTYPE_BITS[dtype] / 8:g} "
                                   f"bytes, but its data_offsets {offsets} hold {offsets[1] - offsets[0]}")
    return tuple(shape), dtype


def read_header(path: str | os.PathLike) -> dict:
    """name -> (shape tuple, dtype) from one safetensors file's header, every entry checked the
    way safetensors itself checks it on load. Reads the header only, never tensor data."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise _weights_error(path, "not a safetensors file (shorter than 8 bytes)")
            (length,) = struct.unpack("<Q", raw)
            if length > MAX_HEADER:
                raise _weights_error(path, f"safetensors header length {length} is implausible")
            if length > size - 8:
                raise _weights_error(path, f"safetensors header length {length} runs past the end of the "
                                           f"file ({size} bytes)")
            body = fh.read(length)
    except OSError as exc:
        raise ModelFileError(path, f"cannot be read ({exc.strerror or exc})", hint="check the file's permissions",
                             finding_code=WEIGHTS_INVALID) from None
    try:
        header = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        why = exc if isinstance(exc, ValueError) else "nested too deeply"
        raise _weights_error(path, f"safetensors header is not valid JSON ({why})") from None
    if not isinstance(header, dict):
        raise _weights_error(path, f"safetensors header must be a JSON object, {got(header)}")
    data_bytes = size - 8 - length
    return {name: _tensor(path, name, meta, data_bytes) for name, meta in header.items()
            if name != "__metadata__"}
