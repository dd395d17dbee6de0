"""What a local checkpoint looks like, read from config.json and safetensors headers only.

Stdlib only: this runs on the validate/dry-run path, which must never import torch,
transformers, numpy or ms-swift. No tensor data is read; a safetensors file starts with an
8-byte little-endian header length and a JSON header naming every tensor's dtype and shape.
Every file is read through modelconfig, which checks each field used here: a malformed one is
a ModelFileError naming the file and the field, never a traceback or a negative plan.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lorakit import modelconfig
from lorakit.errors import LorakitError

# Top-level parts of multimodal checkpoints that ms-swift's `all-linear` leaves alone by default
# (freeze_vit=True, freeze_aligner=True): the union of the `vision_tower=` / `aligner=` names in
# swift/model/model_arch.py (ms-swift 4.6.0), as single path segments. Checkpoint keys and module
# paths differ across transformers versions (`visual.` on disk, `model.visual.` at runtime), so we
# match a segment anywhere before the first layer index instead of a full prefix.
_MULTIMODAL_PARTS = frozenset({
    "visual", "vision", "vision_tower", "vision_model", "vision_tower_high", "vision_backbone", "vit",
    "vpm", "vte", "apm", "audio", "audio_tower", "audio_encoder", "speech_encoder", "sam_model",
    "qwen2vl_vision_tower", "visual_tokenizer", "image_embed", "audio_embed", "img_processor",
    "multi_modal_projector", "mm_projector", "mm_projector_vary", "merger", "aligner", "projector",
    "resampler", "resampler_model", "connector", "mlp1", "mlp_AR", "vision_proj", "vision_projection",
    "vision_adapter", "vision2text", "vision2text_model", "audio_projector", "speech_projector",
    "embed_vision", "embed_audio", "hr_compressor", "vit_large_projector",
})
# Output heads: ms-swift's find_all_linears ignores the model_arch lm_head leaf plus
# 'score' (classification), 'v_head' (reward model) and 'classifier'. ChatGLM calls its head
# `output_layer`, InternLM2 `output`, GPT-NeoX `embed_out`; we only treat them as heads
# outside the repeated blocks, so a layer's own `output` projection is never mistaken for one.
_HEAD_LEAVES = frozenset({"lm_head", "score", "v_head", "classifier", "output_layer", "output", "embed_out"})
# Quantizer bookkeeping and buffers: not parameters of the model the user trains.
_AUX = frozenset({
    "qzeros", "scales", "g_idx", "SCB", "weight_format", "absmax", "quant_map", "nested_absmax",
    "nested_quant_map", "weight_scale", "weight_scale_inv", "input_scale", "inv_freq", "masked_bias",
})
# GPT-2's Conv1D stores weight as (in, out), the transpose of nn.Linear.
_CONV1D_TYPES = frozenset({"gpt2", "openai-gpt"})


@dataclass
class ModelInfo:
    path: str | None
    model_type: str | None
    architectures: list[str]
    hidden_size: int | None
    num_layers: int | None
    vocab_size: int | None
    tie_word_embeddings: bool
    max_position_embeddings: int | None
    quantization: str | None  # quant_method of quantization_config: gptq, awq, bitsandbytes, fp8...
    weights_bytes: int  # sum of safetensors file sizes (0 for archtable entries)
    linears: dict  # leaf -> [(in, out)]: the LLM body, i.e. exactly what ms-swift's all-linear targets
    total_params: int
    head: dict = field(default_factory=dict)  # leaf -> [(in, out)]: lm_head & co, never all-linear
    multimodal: dict = field(default_factory=dict)  # leaf -> [(in, out)]: vision tower / aligner
    embeddings: dict = field(default_factory=dict)  # leaf -> [(num_embeddings, dim)], LLM part
    experts: dict = field(default_factory=dict)  # leaf -> [(in, out)]: per-expert MoE Linears on disk
    intermediate_size: int | None = None
    kv_dim: int | None = None  # num_key_value_heads * head_dim
    torch_dtype: str | None = None  # config.json's torch_dtype (transformers >= 5: dtype)
    q_dim: int | None = None  # num_attention_heads * head_dim (Qwen3-0.6B: 2048, not hidden 1024)
    num_heads: int | None = None
    qk_norm: bool = False  # per-head q_norm/k_norm (Qwen3): fp32 copies of q and k saved
    notes: list = field(default_factory=list)  # what we could not see (e.g. packed 4-bit weights)

    @property
    def is_multimodal(self) -> bool:
        return bool(self.multimodal)


def read_safetensors_shapes(model_dir: str | os.PathLike) -> dict:
    """name -> (shape tuple, dtype str) for every tensor of `model.safetensors` or of every shard
    named in `model.safetensors.index.json`. Reads headers only, never weights."""
    shapes = {}
    for path in modelconfig.shard_files(model_dir):
        if not path.is_file():
            what = "is missing" if not path.exists() else "is not a file"
            raise LorakitError(f"{path}: shard named in {modelconfig.INDEX} {what}",
                               hint="the download is incomplete: download the model again")
        shapes.update(modelconfig.read_header(path))
    return shapes


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def part_of(module: str) -> str:
    """'multimodal', 'head', 'experts' or 'body' for a module path like `model.layers.0.mlp.up_proj`."""
    segs = module.split(".")
    # transformers >= 5 loads per-expert MoE weights (`mlp.experts.3.up_proj.weight` on disk) into
    # fused 3-D nn.Parameters (e.g. Qwen3MoeExperts.gate_up_proj), so at runtime they are not
    # nn.Linear modules: neither ms-swift's all-linear nor a target_modules name reaches them.
    if any(a == "experts" and b.isdigit() for a, b in zip(segs, segs[1:])):
        return "experts"
    prefix = []
    for seg in segs:
        if seg.isdigit():
            break
        prefix.append(seg)
    if any(seg in _MULTIMODAL_PARTS for seg in prefix):
        return "multimodal"
    if len(prefix) == len(segs) and segs[-1] in _HEAD_LEAVES:
        return "head"
    return "body"


def _is_embedding(leaf: str) -> bool:
    return ("embed" in leaf and leaf != "embed_out") or leaf in ("wte", "wpe", "shared")


def _quant_shape(shapes: dict, module: str, qshape, method: str | None, bits: int):
    # GPTQ packs along in_features (qweight: in*bits/32 x out) and keeps g_idx[in];
    # AWQ packs along out_features (qweight: in x out*bits/32). Both keep scales[groups, out].
    # The caller passes a 2-D qweight; scales or g_idx of another rank are not these.
    scales = shapes.get(module + ".scales")
    out = scales[0][1] if scales and len(scales[0]) == 2 else qshape[1]
    g_idx = shapes.get(module + ".g_idx")
    if g_idx and len(g_idx[0]) == 1:
        return (g_idx[0][0], out)
    if method == "awq":
        return (qshape[0], out)
    return (qshape[0] * 32 // bits, out)


def _collect(shapes: dict, method: str | None, bits: int, conv1d: bool):
    """Split tensors into Linear modules (full name -> (in, out)), embeddings, and a param count."""
    linears, embeds, notes, total = {}, {}, [], 0
    for name, (shape, dtype) in shapes.items():
        module, _, param = name.rpartition(".")
        leaf = module.rpartition(".")[2]
        if param in _AUX or ".quant_state" in name:
            continue
        if param == "qweight" and len(shape) != 2:
            notes.append(f"{module}: {len(shape)}-D qweight, shape unknown")
            continue
        if param == "qweight":
            linears[module] = _quant_shape(shapes, module, shape, method, bits)
            total += _prod(linears[module])
            continue
        if param == "weight" and len(shape) == 2 and dtype == "U8" and shape[1] == 1:
            # bitsandbytes 4-bit flattens each weight into (n, 1) bytes; the real shape lives in
            # tensor data we promise not to read.
            notes.append(f"{module}: packed 4-bit weight, shape unknown")
            continue
        total += _prod(shape)
        if param != "weight" or len(shape) != 2 or "norm" in leaf or leaf.startswith("ln_"):
            continue
        if _is_embedding(leaf):
            embeds[module] = (shape[0], shape[1])
        else:
            out_f, in_f = (shape[1], shape[0]) if conv1d else shape
            linears[module] = (in_f, out_f)
    return linears, embeds, notes, total


def group_by_leaf(modules: dict) -> dict:
    """{'model.layers.0.self_attn.q_proj': (i, o), ...} -> {'q_proj': [(i, o), ...]}."""
    out = {}
    for module in sorted(modules):
        out.setdefault(module.rpartition(".")[2], []).append(modules[module])
    return out


def _llm_config(cfg: dict) -> dict:
    # Multimodal configs nest the language model's values (Llava/Qwen-VL text_config, InternVL llm_config).
    for key in ("text_config", "llm_config", "language_config"):
        if isinstance(cfg.get(key), dict):
            return {**cfg, **cfg[key]}
    return cfg


def _first(cfg: dict, *keys):
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return None


def _dims(cfg: dict) -> dict:
    hidden = _first(cfg, "hidden_size", "n_embd", "d_model")
    heads = _first(cfg, "num_attention_heads", "n_head")
    head_dim = _first(cfg, "head_dim", "kv_channels") or (hidden // heads if hidden and heads else None)
    kv_heads = _first(cfg, "num_key_value_heads", "multi_query_group_num") or heads
    return {
        "hidden_size": hidden,
        "num_layers": _first(cfg, "num_hidden_layers", "n_layer", "num_layers"),
        "vocab_size": _first(cfg, "vocab_size", "padded_vocab_size"),
        "max_position_embeddings": _first(cfg, "max_position_embeddings", "n_positions", "seq_length"),
        "intermediate_size": _first(cfg, "intermediate_size", "ffn_hidden_size", "n_inner")
        or (4 * hidden if hidden else None),
        "kv_dim": kv_heads * head_dim if kv_heads and head_dim else None,
        "q_dim": heads * head_dim if heads and head_dim else None,
        "num_heads": heads,
    }


def _quantization(cfg: dict):
    # modelconfig checked both sections: objects, a string quant_method, a positive int bits.
    qcfg = cfg.get("quantization_config") or cfg.get("compression_config") or {}
    method = qcfg.get("quant_method")
    return (method.lower() if method else None), qcfg.get("bits") or 4


def _config_dtype(raw: dict, cfg: dict) -> str | None:
    # ms-swift takes torch_dtype from config.json (HfConfigFactory.get_torch_dtype);
    # transformers >= 5 writes it as `dtype`. modelconfig checked both are strings.
    for c in (raw, cfg):
        value = c.get("torch_dtype") or c.get("dtype")
        if value:
            return value
    return None


def load_model_info(model_dir: str | os.PathLike) -> ModelInfo | None:
    """ModelInfo from config.json plus safetensors headers; None if `model_dir` has no config.json."""
    root = Path(model_dir)
    raw = modelconfig.read_config(root)
    if raw is None:
        return None
    cfg = _llm_config(raw)
    method, bits = _quantization(raw)
    files = modelconfig.shard_files(root)
    conv1d = raw.get("model_type") in _CONV1D_TYPES
    tensors = read_safetensors_shapes(root)
    modules, embeds, notes, total = _collect(tensors, method, bits, conv1d)
    qk_norm = any(name.endswith((".q_norm.weight", ".k_norm.weight")) for name in tensors)
    if conv1d:
        notes.append("Conv1D layers: ms-swift's all-linear (find_all_linears matches class names "
                     "containing 'linear') skips them; name c_attn/c_proj/c_fc explicitly")
    parts = {"body": {}, "head": {}, "multimodal": {}, "experts": {}}
    for module, shape in modules.items():
        parts[part_of(module)][module] = shape
    embeds = {m: s for m, s in embeds.items() if part_of(m) != "multimodal"}
    if parts["experts"]:
        notes.append(f"{len(parts['experts'])} per-expert MoE Linears load as fused parameters: no LoRA targets")
    dims = _dims(cfg)
    has_head = bool(parts["head"])
    tie = cfg.get("tie_word_embeddings")
    tie = (not has_head) if tie is None else bool(tie)
    if tie and not has_head and dims["hidden_size"] and dims["vocab_size"]:
        # A tied head is not saved, but the module exists at runtime (and PEFT can target it).
        parts["head"]["lm_head"] = (dims["hidden_size"], dims["vocab_size"])
    if tie and has_head and embeds:
        total -= _prod(next(iter(parts["head"].values())))  # saved twice, one parameter in torch
    if not files:
        notes.append("no safetensors weights found (only *.bin?): Linear shapes unknown")
    return ModelInfo(
        path=str(root), model_type=raw.get("model_type"), architectures=list(raw.get("architectures") or []),
        tie_word_embeddings=tie, quantization=method, total_params=total,
        weights_bytes=sum(f.stat().st_size for f in files if f.is_file()),
        linears=group_by_leaf(parts["body"]), head=group_by_leaf(parts["head"]),
        multimodal=group_by_leaf(parts["multimodal"]), experts=group_by_leaf(parts["experts"]),
        embeddings=group_by_leaf(embeds), notes=notes, torch_dtype=_config_dtype(raw, cfg), qk_norm=qk_norm,
        **dims,
    )


def _hf_hub_cache() -> Path:
    # Same precedence as huggingface_hub/constants.py: HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE >
    # $HF_HOME/hub > $XDG_CACHE_HOME/huggingface/hub > ~/.cache/huggingface/hub.
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(hub).expanduser()


def _pick_snapshot(snapshots: Path, preferred: list[str]) -> Path | None:
    for name in preferred:
        if name and (snapshots / name).is_dir():
            return snapshots / name
    if not snapshots.is_dir():
        return None
    found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None  # no ref to follow: the newest download wins


def _hf_candidates(model_id: str) -> list:
    repo = _hf_hub_cache() / ("models--" + model_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    try:
        commit = ref.read_text(encoding="utf-8").strip() if ref.is_file() else ""
    except (OSError, UnicodeDecodeError):  # an unreadable ref: fall back to the newest snapshot
        commit = ""
    return [_pick_snapshot(repo / "snapshots", [commit])]


def _ms_candidates(model_id: str) -> list:
    # modelscope_hub 0.5 (modelscope 1.40) writes {cache}/models/{owner}--{name}/snapshots/{rev}/
    # but first reuses modelscope <= 1.37's {cache}[/hub]/models/{owner}/{name, '.' -> '___'}
    # (modelscope_hub/_download.py::_find_legacy_repo_dir); older SDKs used {cache}[/hub]/{owner}/{name}
    # (modelscope/hub/utils/utils.py::find_reusable_legacy_repo_dir). Same order here.
    base = Path(os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope").expanduser()
    owner, name = model_id.split("/", 1)
    safe = name.replace(".", "___")
    new = base / "models" / model_id.replace("/", "--") / "snapshots"
    return [base / "models" / owner / safe, base / "hub" / "models" / owner / safe,
            _pick_snapshot(new, ["master", "main"]),
            base / owner / name, base / owner / safe, base / "hub" / owner / name, base / "hub" / owner / safe,
            base / "models" / owner / name, base / "hub" / "models" / owner / name]


def find_local_model(model: str) -> Path | None:
    """An existing directory, or a hub id (`Org/Name`) already in the local Hugging Face or
    ModelScope cache. Never touches the network. A value that is no usable path ('~nouser/x', a
    name over 255 bytes, a NUL) is no local model."""
    try:
        return _find_local_model(model)
    except (OSError, RuntimeError, ValueError):
        return None


def _find_local_model(model: str) -> Path | None:
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if model.count("/") != 1 or model.startswith((".", "/", "~")):
        return None
    for cand in _hf_candidates(model) + _ms_candidates(model):
        if cand is not None and cand.is_dir() and any(cand.iterdir()):
            return cand
    return None
