"""Published config.json values of popular models, so plans work before anything is downloaded.

Stdlib only (validate/dry-run path). Values are copied from each model's published config.json;
a model whose values we could not vouch for is left out rather than guessed: a wrong table is
worse than "unknown model". The totals these produce are checked against the publishers' own
parameter counts in tests/test_modelinfo.py.
"""

from __future__ import annotations

import re

from lorakit.modelinfo import ModelInfo

# (hidden, intermediate, layers, heads, kv_heads, head_dim, vocab, tie_embeddings, max_positions)
_QWEN25 = {
    "0.5B": (896, 4864, 24, 14, 2, 64, 151936, True, 32768),
    "1.5B": (1536, 8960, 28, 12, 2, 128, 151936, True, 131072),
    "3B": (2048, 11008, 36, 16, 2, 128, 151936, True, 32768),
    "7B": (3584, 18944, 28, 28, 4, 128, 152064, False, 131072),
    "14B": (5120, 13824, 48, 40, 8, 128, 152064, False, 131072),
    "32B": (5120, 27648, 64, 40, 8, 128, 152064, False, 131072),
    "72B": (8192, 29568, 80, 64, 8, 128, 152064, False, 131072),
}
# Qwen3 sets head_dim=128 explicitly (not hidden/heads) and adds per-head q_norm/k_norm.
_QWEN3 = {
    "0.6B": (1024, 3072, 28, 16, 8, 128, 151936, True, 40960),
    "1.7B": (2048, 6144, 28, 16, 8, 128, 151936, True, 40960),
    "4B": (2560, 9728, 36, 32, 8, 128, 151936, True, 40960),
    "8B": (4096, 12288, 36, 32, 8, 128, 151936, False, 40960),
    "14B": (5120, 17408, 40, 40, 8, 128, 151936, False, 40960),
    "32B": (5120, 25600, 64, 64, 8, 128, 151936, False, 40960),
}
# The -Base repos (pretrained only) have the same shapes and vocab; their config.json ships
# max_position_embeddings 32768 (the post-trained 40960). Qwen published no Qwen3-32B-Base.
_QWEN3_BASE = ("0.6B", "1.7B", "4B", "8B", "14B")
# Repo name under meta-llama/ -> row; each has an -Instruct twin of the same shapes. Llama 3.0 is
# 3.1's shapes with an 8192 context (no llama3 rope scaling); 3.3-70B is 3.1-70B's shapes.
_LLAMA = {
    "Meta-Llama-3-8B": (4096, 14336, 32, 32, 8, 128, 128256, False, 8192),
    "Meta-Llama-3-70B": (8192, 28672, 80, 64, 8, 128, 128256, False, 8192),
    "Llama-3.1-8B": (4096, 14336, 32, 32, 8, 128, 128256, False, 131072),
    "Llama-3.1-70B": (8192, 28672, 80, 64, 8, 128, 128256, False, 131072),
    "Llama-3.2-1B": (2048, 8192, 16, 32, 8, 64, 128256, True, 131072),
    "Llama-3.2-3B": (3072, 8192, 28, 24, 8, 128, 128256, True, 131072),
    "Llama-3.3-70B": (8192, 28672, 80, 64, 8, 128, 128256, False, 131072),
}
_INSTRUCT_ONLY = ("Llama-3.3-70B",)  # Meta published 3.3 as -Instruct only
_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
           "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings", "max_position_embeddings")


def _build() -> dict:
    table = {}
    for size, row in _QWEN25.items():
        for suffix in ("", "-Instruct"):
            entry = dict(zip(_FIELDS, row), model_type="qwen2", architectures=["Qwen2ForCausalLM"],
                         attention_bias=True, qk_norm=False)
            if suffix:
                entry["max_position_embeddings"] = 32768  # the Instruct configs all ship 32768
            table[f"Qwen/Qwen2.5-{size}{suffix}"] = entry
    for size, row in _QWEN3.items():
        for suffix in ("", "-Base") if size in _QWEN3_BASE else ("",):
            entry = dict(zip(_FIELDS, row), model_type="qwen3", architectures=["Qwen3ForCausalLM"],
                         attention_bias=False, qk_norm=True)
            if suffix:
                entry["max_position_embeddings"] = 32768
            table[f"Qwen/Qwen3-{size}{suffix}"] = entry
    for name, row in _LLAMA.items():
        for suffix in ("-Instruct",) if name in _INSTRUCT_ONLY else ("", "-Instruct"):
            table[f"meta-llama/{name}{suffix}"] = dict(
                zip(_FIELDS, row), model_type="llama", architectures=["LlamaForCausalLM"],
                attention_bias=False, qk_norm=False)
    return table


ARCH_TABLE = _build()


def _norm_name(model_id: str) -> str:
    # ModelScope hosts Llama under LLM-Research/, and Meta's first 3.1 ids were Meta-Llama-3.1-*;
    # a local directory named after the repo should match too. So we key on the last path part.
    name = model_id.rstrip("/").rsplit("/", 1)[-1].lower()
    return name[5:] if name.startswith("meta-llama-") else name


_BY_NAME = {_norm_name(k): k for k in ARCH_TABLE}


def arch_entry(model_id: str) -> dict | None:
    """The table entry for a hub id (case-insensitive; org and `Meta-` prefix optional), or None."""
    key = _BY_NAME.get(_norm_name(model_id))
    return dict(ARCH_TABLE[key], hub_id=key) if key else None


def entry_total_params(e: dict) -> int:
    """Parameter count of the standard decoder layout an entry describes."""
    h, inter, heads, kv, d = (e["hidden_size"], e["intermediate_size"], e["num_attention_heads"],
                              e["num_key_value_heads"], e["head_dim"])
    attn = h * heads * d + 2 * h * kv * d + heads * d * h
    if e["attention_bias"]:
        attn += heads * d + 2 * kv * d  # q/k/v biases; o_proj has none
    layer = attn + 3 * h * inter + 2 * h + (2 * d if e["qk_norm"] else 0)
    embed = e["vocab_size"] * h
    return e["num_hidden_layers"] * layer + h + embed * (1 if e["tie_word_embeddings"] else 2)


def entry_to_info(e: dict) -> ModelInfo:
    """The same ModelInfo load_model_info would give for the downloaded checkpoint."""
    h, inter, n, d = e["hidden_size"], e["intermediate_size"], e["num_hidden_layers"], e["head_dim"]
    q, kv = e["num_attention_heads"] * d, e["num_key_value_heads"] * d
    shapes = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
              "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h)}
    return ModelInfo(
        path=None, model_type=e["model_type"], architectures=list(e["architectures"]), hidden_size=h,
        num_layers=n, vocab_size=e["vocab_size"], tie_word_embeddings=e["tie_word_embeddings"],
        max_position_embeddings=e["max_position_embeddings"], quantization=None, weights_bytes=0,
        linears={leaf: [shape] * n for leaf, shape in shapes.items()}, total_params=entry_total_params(e),
        head={"lm_head": [(h, e["vocab_size"])]}, embeddings={"embed_tokens": [(e["vocab_size"], h)]},
        intermediate_size=inter, kv_dim=kv, q_dim=q, num_heads=e["num_attention_heads"], qk_norm=e["qk_norm"],
        notes=[f"from lorakit's built-in table ({e.get('hub_id', '?')})"],
    )


def arch_info(model_id: str) -> ModelInfo | None:
    entry = arch_entry(model_id)
    return entry_to_info(entry) if entry else None


_LLAMA_LIKE = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
# First match wins, so the specific patterns come before the generic ones they contain.
_FAMILIES = [
    ("chatglm", r"chatglm", {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}),
    ("baichuan", r"baichuan", {"W_pack", "o_proj", "gate_proj", "up_proj", "down_proj"}),
    ("internlm2", r"internlm2", {"wqkv", "wo", "w1", "w2", "w3"}),
    ("phi3", r"phi-?[34](?!.*moe)", {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}),
    ("gpt2", r"gpt-?2|starcoder(?!2)|santacoder|gpt_bigcode", {"c_attn", "c_proj", "c_fc"}),
    # Qwen 1.0 (Qwen/Qwen-7B) predates the Llama layout; Qwen1.5 onwards uses it.
    ("qwen1", r"(^|/)qwen-(\d|vl)", {"c_attn", "c_proj", "w1", "w2"}),
    # DeepSeek-V2/V3 (and R1, which is V3) use multi-head latent attention; R1-Distill-* do not.
    ("deepseek_mla", r"deepseek-(v2|v3|r1(?!-distill))",
     {"q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj",
      "gate_proj", "up_proj", "down_proj"}),
    ("llama", r"qwen|llama|mistral|mixtral|yi-|deepseek|gemma|internlm", _LLAMA_LIKE),
]


def family_linear_names(model_id: str) -> tuple[str, set] | None:
    """(family, Linear leaf names) guessed from the model id, for models not in ARCH_TABLE."""
    name = model_id.lower()
    for family, pattern, leaves in _FAMILIES:
        if re.search(pattern, name):
            return family, set(leaves)
    return None
