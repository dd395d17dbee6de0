"""modelinfo/archtable against the real thing: tiny transformers models saved to tmp_path, their
own nn.Linear modules and parameter counts, and hand-built safetensors for layouts (GPTQ,
multimodal, MoE) we cannot download."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from safetensors.torch import save_file  # noqa: E402

from lorakit.archtable import (  # noqa: E402
    ARCH_TABLE, arch_entry, arch_info, entry_to_info, entry_total_params, family_linear_names,
)
from lorakit.errors import LorakitError  # noqa: E402
from lorakit.modelinfo import find_local_model, load_model_info, part_of, read_safetensors_shapes  # noqa: E402

TINY = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=128, max_position_embeddings=256)


def build(kind: str, **over):
    torch.manual_seed(0)
    cfg_cls, model_cls = {
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
        "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM),
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
    }[kind]
    return model_cls(cfg_cls(**{**TINY, **over}))


def save(model, path, **kw):
    model.save_pretrained(path, **kw)
    return path


def torch_linears(model, *, head=False):
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and (name.endswith("lm_head") == head):
            out.setdefault(name.rpartition(".")[2], []).append((mod.in_features, mod.out_features))
    return {k: sorted(v) for k, v in out.items()}


def sorted_values(d):
    return {k: sorted(v) for k, v in d.items()}


@pytest.mark.parametrize("kind,over", [
    ("qwen2", {"tie_word_embeddings": True}),
    ("qwen2", {"tie_word_embeddings": False}),
    ("llama", {"tie_word_embeddings": False, "attention_bias": True}),
    ("qwen3", {"head_dim": 32, "tie_word_embeddings": False}),
])
def test_linears_and_params_match_torch(tmp_path, kind, over):
    model = build(kind, **over)
    info = load_model_info(save(model, tmp_path / "m"))
    assert sorted_values(info.linears) == torch_linears(model)
    assert sorted_values(info.head) == torch_linears(model, head=True)  # tied heads included
    assert info.total_params == sum(p.numel() for p in model.parameters())
    assert info.tie_word_embeddings is over["tie_word_embeddings"]
    assert (info.model_type, info.hidden_size, info.num_layers, info.vocab_size) == (kind, 64, 2, 128)
    assert info.quantization is None and not info.is_multimodal
    assert info.embeddings == {"embed_tokens": [(128, 64)]}
    assert info.weights_bytes == (tmp_path / "m" / "model.safetensors").stat().st_size


def test_headers_only_shapes_match_state_dict(tmp_path):
    model = build("llama", tie_word_embeddings=False)
    shapes = read_safetensors_shapes(save(model, tmp_path / "m"))
    state = model.state_dict()
    assert shapes == {k: (tuple(v.shape), "F32") for k, v in state.items()}


def test_sharded_checkpoint_reads_through_index(tmp_path):
    model = build("qwen2", tie_word_embeddings=False)
    whole = load_model_info(save(model, tmp_path / "whole"))
    sharded_dir = save(model, tmp_path / "sharded", max_shard_size="20KB")
    shards = sorted(sharded_dir.glob("model-*.safetensors"))
    assert len(shards) > 2 and (sharded_dir / "model.safetensors.index.json").is_file()
    sharded = load_model_info(sharded_dir)
    assert sharded.linears == whole.linears and sharded.total_params == whole.total_params
    assert sharded.weights_bytes == sum(p.stat().st_size for p in shards)


def test_missing_shard_and_garbage_header_are_domain_errors(tmp_path):
    d = save(build("qwen2"), tmp_path / "m", max_shard_size="20KB")
    next(d.glob("model-*.safetensors")).unlink()
    with pytest.raises(LorakitError, match="missing"):
        load_model_info(d)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    (bad / "model.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(LorakitError, match="implausible"):
        read_safetensors_shapes(bad)


def test_no_config_means_not_a_model(tmp_path):
    assert load_model_info(tmp_path) is None


def write_fake(path, config: dict, tensors: dict):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / "model.safetensors"))
    return path


def test_gptq_checkpoint_reports_quantization_and_unpacks_shapes(tmp_path):
    h, inter, bits, group = 64, 128, 4, 32
    tensors = {"model.embed_tokens.weight": torch.zeros(100, h, dtype=torch.float16),
               "lm_head.weight": torch.zeros(100, h, dtype=torch.float16)}
    for name, (i, o) in {"self_attn.q_proj": (h, h), "mlp.down_proj": (inter, h)}.items():
        p = f"model.layers.0.{name}"
        tensors[p + ".qweight"] = torch.zeros(i * bits // 32, o, dtype=torch.int32)
        tensors[p + ".qzeros"] = torch.zeros(i // group, o * bits // 32, dtype=torch.int32)
        tensors[p + ".scales"] = torch.zeros(i // group, o, dtype=torch.float16)
        tensors[p + ".g_idx"] = torch.zeros(i, dtype=torch.int32)
    cfg = {"model_type": "qwen2", "hidden_size": h, "num_hidden_layers": 1, "vocab_size": 100,
           "tie_word_embeddings": False,
           "quantization_config": {"quant_method": "gptq", "bits": bits, "group_size": group}}
    info = load_model_info(write_fake(tmp_path / "gptq", cfg, tensors))
    assert info.quantization == "gptq"
    assert info.linears == {"q_proj": [(h, h)], "down_proj": [(inter, h)]}
    assert info.total_params == 2 * 100 * h + h * h + inter * h


def test_awq_and_bnb4_do_not_crash(tmp_path):
    awq = {"model.layers.0.mlp.up_proj.qweight": torch.zeros(64, 128 * 4 // 32, dtype=torch.int32),
           "model.layers.0.mlp.up_proj.scales": torch.zeros(2, 128, dtype=torch.float16)}
    info = load_model_info(write_fake(tmp_path / "awq", {"quantization_config": {"quant_method": "awq"}}, awq))
    assert info.quantization == "awq" and info.linears == {"up_proj": [(64, 128)]}
    bnb = {"model.layers.0.mlp.up_proj.weight": torch.zeros(64 * 128 // 2, 1, dtype=torch.uint8),
           "model.layers.0.mlp.up_proj.weight.absmax": torch.zeros(128),
           "model.norm.weight": torch.zeros(64)}
    cfg = {"quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True}}
    info = load_model_info(write_fake(tmp_path / "bnb", cfg, bnb))
    assert info.quantization == "bitsandbytes" and info.linears == {}
    assert any("packed 4-bit" in n for n in info.notes)


def test_multimodal_parts_and_moe_experts_are_kept_apart(tmp_path):
    t = {  # Qwen2-VL-style keys on disk, plus a Llava-style projector and a MoE layer
        "model.embed_tokens.weight": torch.zeros(100, 32),
        "model.layers.0.self_attn.q_proj.weight": torch.zeros(32, 32),
        "model.layers.0.mlp.gate.weight": torch.zeros(4, 32),
        "model.layers.0.mlp.experts.0.up_proj.weight": torch.zeros(16, 32),
        "model.layers.0.mlp.experts.1.up_proj.weight": torch.zeros(16, 32),
        "visual.blocks.0.attn.qkv.weight": torch.zeros(48, 16),
        "visual.blocks.0.attn.q_proj.weight": torch.zeros(16, 16),
        "visual.merger.mlp.0.weight": torch.zeros(32, 64),
        "visual.patch_embed.proj.weight": torch.zeros(16, 3, 2, 14, 14),
        "multi_modal_projector.linear_1.weight": torch.zeros(32, 16),
        "lm_head.weight": torch.zeros(100, 32),
    }
    cfg = {"model_type": "qwen2_vl", "text_config": {"hidden_size": 32, "num_hidden_layers": 1,
                                                     "vocab_size": 100, "tie_word_embeddings": False}}
    info = load_model_info(write_fake(tmp_path / "vl", cfg, t))
    assert info.linears == {"q_proj": [(32, 32)], "gate": [(32, 4)]}
    assert info.multimodal == {"qkv": [(16, 48)], "q_proj": [(16, 16)], "0": [(64, 32)], "linear_1": [(16, 32)]}
    assert info.experts == {"up_proj": [(32, 16), (32, 16)]} and info.is_multimodal
    assert info.head == {"lm_head": [(32, 100)]} and info.hidden_size == 32
    assert part_of("transformer.encoder.layers.0.self_attention.dense") == "body"  # ChatGLM body
    assert part_of("transformer.output_layer") == "head"
    assert part_of("model.layers.3.attention.output") == "body"  # only a top-level `output` is a head


def snapshot(root, rev, files=("config.json",)):
    d = root / "snapshots" / rev
    d.mkdir(parents=True)
    for f in files:
        (d / f).write_text("{}")
    return d


@pytest.fixture
def no_cache_env(monkeypatch):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)


def test_find_local_model_hf_cache(tmp_path, monkeypatch, no_cache_env):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    repo = tmp_path / "hfhome" / "hub" / "models--Qwen--Qwen2.5-0.5B"
    snapshot(repo, "aaa")
    want = snapshot(repo, "bbb")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("bbb\n")
    assert find_local_model("Qwen/Qwen2.5-0.5B") == want
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))  # wins over HF_HOME
    assert find_local_model("Qwen/Qwen2.5-0.5B") is None
    other = snapshot(tmp_path / "elsewhere" / "models--Qwen--Qwen2.5-0.5B", "ccc")
    assert find_local_model("Qwen/Qwen2.5-0.5B") == other


def test_find_local_model_modelscope_layouts(tmp_path, monkeypatch, no_cache_env):
    ms = tmp_path / "ms"
    monkeypatch.setenv("MODELSCOPE_CACHE", str(ms))
    new = snapshot(ms / "models" / "Qwen--Qwen2.5-0.5B", "master")  # modelscope_hub layout
    assert find_local_model("Qwen/Qwen2.5-0.5B") == new
    legacy = ms / "models" / "Qwen" / "Qwen2___5-0___5B"  # modelscope <= 1.37: '.' -> '___'
    legacy.mkdir(parents=True)
    (legacy / "config.json").write_text("{}")
    assert find_local_model("Qwen/Qwen2.5-0.5B") == legacy  # reused first, as modelscope_hub does
    monkeypatch.delenv("MODELSCOPE_CACHE")
    old = tmp_path / "home" / ".cache" / "modelscope" / "hub" / "Org" / "Name"  # oldest SDK layout
    old.mkdir(parents=True)
    (old / "config.json").write_text("{}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert find_local_model("Org/Name") == old


def test_find_local_model_paths_and_misses(tmp_path, no_cache_env):
    assert find_local_model(str(tmp_path)) == tmp_path
    assert find_local_model("Nobody/Nothing") is None
    assert find_local_model("./not/here") is None
    assert find_local_model("no-slash") is None


def test_runtime_modules_import_no_heavy_packages():
    code = ("import sys, lorakit.modelinfo, lorakit.archtable, lorakit.planmath;"
            "bad = {'torch', 'transformers', 'numpy', 'swift', 'peft'} & set(sys.modules);"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- archtable -------------------------------------------------------------------------------

PUBLISHED = {  # billions, as the publishers' model cards / hub pages print them
    "Qwen/Qwen2.5-0.5B": "0.494", "Qwen/Qwen2.5-1.5B": "1.54", "Qwen/Qwen2.5-3B": "3.09",
    "Qwen/Qwen2.5-7B": "7.62", "Qwen/Qwen2.5-14B": "14.7", "Qwen/Qwen2.5-32B": "32.8",
    "Qwen/Qwen2.5-72B": "72.7", "Qwen/Qwen3-0.6B": "0.6", "Qwen/Qwen3-1.7B": "1.7", "Qwen/Qwen3-4B": "4.0",
    "Qwen/Qwen3-8B": "8.19", "Qwen/Qwen3-14B": "14.8", "Qwen/Qwen3-32B": "32.8",
    "meta-llama/Llama-3.1-8B": "8.03", "meta-llama/Llama-3.1-70B": "70.6",
    "meta-llama/Llama-3.2-1B": "1.24", "meta-llama/Llama-3.2-3B": "3.21",
}


@pytest.mark.parametrize("hub_id,published", sorted(PUBLISHED.items()))
def test_archtable_totals_match_published(hub_id, published):
    info = arch_info(hub_id)
    total = float(published) * 1e9
    # within 1%, or within the rounding of the printed figure ("1.7B" means 1.65..1.75B)
    rounding = 0.5 * 10 ** -len(published.partition(".")[2]) * 1e9
    assert abs(info.total_params - total) <= max(0.01 * total, rounding)
    assert info.total_params == entry_total_params(ARCH_TABLE[hub_id])
    if "Qwen3" not in hub_id:  # Qwen3-<size> is itself the post-trained model
        assert arch_info(hub_id + "-Instruct").total_params == info.total_params


@pytest.mark.parametrize("kind,extra", [
    ("qwen2", {"attention_bias": True, "qk_norm": False, "tie_word_embeddings": True}),
    ("qwen3", {"attention_bias": False, "qk_norm": True, "tie_word_embeddings": False}),
    ("llama", {"attention_bias": False, "qk_norm": False, "tie_word_embeddings": True}),
])
def test_archtable_formula_matches_transformers(kind, extra):
    # A scaled-down entry with an explicit head_dim != hidden/heads, built by transformers.
    entry = dict(TINY, head_dim=24, num_hidden_layers=3, model_type=kind, architectures=[], **extra)
    over = {k: entry[k] for k in ("head_dim", "num_hidden_layers", "tie_word_embeddings")}
    if kind == "llama":
        over["attention_bias"] = False
    model = build(kind, **over)
    info = entry_to_info(entry)
    assert info.total_params == sum(p.numel() for p in model.parameters())
    assert sorted_values(info.linears) == torch_linears(model)
    assert sorted_values(info.head) == torch_linears(model, head=True)


def test_archtable_lookup_is_forgiving_but_exact():
    assert arch_entry("qwen/QWEN2.5-7b-instruct")["hub_id"] == "Qwen/Qwen2.5-7B-Instruct"
    assert arch_entry("LLM-Research/Meta-Llama-3.1-8B-Instruct")["hub_id"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert arch_entry("/models/Qwen3-8B")["hub_id"] == "Qwen/Qwen3-8B"
    assert arch_entry("Qwen/Qwen2.5-7B-Instruct-AWQ") is None
    assert arch_entry("someone/unknown-7b") is None
    assert arch_entry("Qwen/Qwen2.5-7B-Instruct")["max_position_embeddings"] == 32768
    assert arch_entry("Qwen/Qwen2.5-7B")["max_position_embeddings"] == 131072
    assert arch_entry("Qwen/Qwen3-8B")["head_dim"] == 128


@pytest.mark.parametrize("model_id,family,member", [
    ("THUDM/chatglm3-6b", "chatglm", "query_key_value"),
    ("baichuan-inc/Baichuan2-7B-Chat", "baichuan", "W_pack"),
    ("internlm/internlm2_5-7b-chat", "internlm2", "wqkv"),
    ("microsoft/Phi-3-mini-4k-instruct", "phi3", "gate_up_proj"),
    ("openai-community/gpt2", "gpt2", "c_attn"),
    ("Qwen/Qwen-7B-Chat", "qwen1", "c_attn"),
    ("deepseek-ai/DeepSeek-V3", "deepseek_mla", "kv_b_proj"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "llama", "q_proj"),
    ("mistralai/Mistral-7B-v0.1", "llama", "gate_proj"),
    ("01-ai/Yi-6B", "llama", "o_proj"),
    ("Qwen/Qwen1.5-7B", "llama", "down_proj"),
])
def test_family_linear_names(model_id, family, member):
    fam, leaves = family_linear_names(model_id)
    assert fam == family and member in leaves


def test_family_unknown():
    assert family_linear_names("acme/brand-new-arch") is None
