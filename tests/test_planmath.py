"""planmath against PEFT's own parameter count and torch's own record of saved activations."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from lorakit.archtable import arch_info  # noqa: E402
from lorakit.modelinfo import ModelInfo, load_model_info  # noqa: E402
from lorakit.planmath import (  # noqa: E402
    layer_activation_bytes, lora_activation_bytes, lora_trainable_params, memory_plan, resolve_targets,
)

TINY = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=128, max_position_embeddings=256)
ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]


def tiny(kind, **over):
    torch.manual_seed(0)
    cfg_cls, model_cls = {"qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
                          "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM)}[kind]
    return model_cls(cfg_cls(**{**TINY, **over}))


def peft_count(model, rank, targets):
    cfg = peft.LoraConfig(r=rank, target_modules=targets)
    return peft.get_peft_model(model, cfg).get_nb_trainable_parameters()[0]


@pytest.mark.parametrize("kind,tie", [("qwen2", True), ("qwen2", False), ("llama", False)])
@pytest.mark.parametrize("rank", [4, 8, 16])
@pytest.mark.parametrize("ours,theirs", [
    (["q_proj", "v_proj"], ["q_proj", "v_proj"]),
    (ATTN, ATTN),
    (["all-linear"], "all-linear"),  # PEFT's own all-linear: every Linear but the output layer
    (["all-linear", "q_proj"], "all-linear"),  # repeating a target does not count it twice
    (["self_attn.o_proj", "down_proj"], ["o_proj", "down_proj"]),
])
def test_lora_params_equal_peft(tmp_path, kind, tie, rank, ours, theirs):
    model = tiny(kind, tie_word_embeddings=tie)
    model.save_pretrained(tmp_path)
    targeted, unknown = resolve_targets(load_model_info(tmp_path), ours)
    assert unknown == []
    assert lora_trainable_params(targeted, rank) == peft_count(model, rank, theirs)


def test_all_embedding_and_head_equal_peft(tmp_path):
    model = tiny("qwen2", tie_word_embeddings=False)
    model.save_pretrained(tmp_path)
    info = load_model_info(tmp_path)
    targeted, _ = resolve_targets(info, ["all-embedding", "lm_head"])
    assert lora_trainable_params(targeted, 8) == peft_count(model, 8, ["embed_tokens", "lm_head"])


@pytest.mark.filterwarnings("ignore:fan_in_fan_out:UserWarning")
def test_gpt2_conv1d_counts_equal_peft(tmp_path):
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=64,
                                                                 n_positions=64))
    model.save_pretrained(tmp_path)
    info = load_model_info(tmp_path)
    assert info.total_params == sum(p.numel() for p in model.parameters())
    assert sorted(info.linears["c_attn"]) == [(32, 96)] * 2  # Conv1D stores (in, out)
    assert any("Conv1D" in n for n in info.notes)
    targets = ["c_attn", "c_proj", "c_fc"]
    targeted, unknown = resolve_targets(info, targets)
    assert unknown == [] and lora_trainable_params(targeted, 4) == peft_count(model, 4, targets)


def fake_info(**over) -> ModelInfo:
    base = dict(path=None, model_type="x", architectures=[], hidden_size=16, num_layers=1, vocab_size=100,
                tie_word_embeddings=False, max_position_embeddings=None, quantization=None, weights_bytes=0,
                linears={"q_proj": [(16, 16)]}, total_params=1000, head={"lm_head": [(16, 100)]},
                multimodal={"q_proj": [(8, 8)], "qkv": [(8, 24)]}, embeddings={"embed_tokens": [(100, 16)]})
    return ModelInfo(**{**base, **over})


def test_resolve_targets_special_values_and_unknowns():
    info = fake_info()
    targeted, unknown = resolve_targets(info, ["all-linear", "all-norm", "nope", "mlp.nope"])
    assert targeted == {"q_proj": [(16, 16)]}  # no head, no vision tower
    assert unknown == ["nope", "mlp.nope"]  # all-norm is known, just never a LoRA target
    # A plain name matches by suffix everywhere, the vision tower included, as PEFT does.
    targeted, _ = resolve_targets(info, ["q_proj", "qkv"])
    assert sorted(targeted["q_proj"]) == [(8, 8), (16, 16)] and targeted["qkv"] == [(8, 24)]
    assert lora_trainable_params(targeted, 2) == 2 * (32 + 16 + 32)


def test_lora_params_match_archtable_known_value():
    # Qwen2.5-7B, r=8, all-linear: the count ms-swift logs as "trainable params: 20,185,088".
    targeted, _ = resolve_targets(arch_info("Qwen/Qwen2.5-7B-Instruct"), ["all-linear"])
    assert lora_trainable_params(targeted, 8) == 20_185_088


def test_peft_keeps_lora_in_fp32_on_a_bf16_model():
    # The premise of planmath's 4-byte LoRA weights: PEFT's autocast_adapter_dtype upcasts.
    model = tiny("qwen2").to(torch.bfloat16)
    pm = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj"]))
    assert {p.dtype for p in pm.parameters() if p.requires_grad} == {torch.float32}


def saved_bytes(model, ids, **kw):
    """Bytes autograd keeps for backward, parameters excluded, each storage counted once."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, **kw)
    return sum(seen.values())


@pytest.mark.parametrize("targets", [["q_proj", "v_proj"], "all-linear"])
def test_activation_coefficients_match_measurement(tmp_path, targets):
    # A real CPU forward under bf16 autocast (HF Trainer's mixed precision), dropout 0: CPU's
    # dropout keeps an fp32 mask where CUDA keeps a bool one, so the dropout byte is checked on the
    # simulated step instead (tests/test_calibration.py, whose simstep keeps CUDA's bool mask).
    over = dict(hidden_size=256, intermediate_size=1024, num_attention_heads=8, num_key_value_heads=2,
                num_hidden_layers=3, vocab_size=512, tie_word_embeddings=False)
    model = tiny("qwen2", **over)
    model.config._attn_implementation = "sdpa"
    model.save_pretrained(tmp_path)
    info = load_model_info(tmp_path)
    pm = peft.get_peft_model(model.to(torch.bfloat16),
                             peft.LoraConfig(r=8, target_modules=targets, lora_dropout=0.0))
    pm.train()
    tokens = 128
    ids = torch.randint(0, 512, (1, tokens))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        measured = saved_bytes(pm, ids)
    ours = ["all-linear"] if targets == "all-linear" else targets
    targeted, _ = resolve_targets(info, ours)
    n_lora = lora_trainable_params(targeted, 8)
    # autocast's bf16 copy of every fp32 LoRA weight is saved too: 2 bytes per LoRA parameter
    predicted = tokens * (info.num_layers * layer_activation_bytes(info, 2)
                          + lora_activation_bytes(targeted, 0.0, 8, 2)) + 2 * n_lora
    assert abs(predicted - measured) / measured < 0.03, (predicted, measured)
    # The loss adds the fp32 log-softmax (tokens x vocab x 4) that memory_plan's logits term counts.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with_loss = saved_bytes(pm, ids, labels=ids)
    assert abs((with_loss - measured) - tokens * 512 * 4) / (tokens * 512 * 4) < 0.05


def test_checkpointing_keeps_one_hidden_state_per_layer():
    # memory_plan's grad_ckpt term: each checkpointed layer saves only its input, tokens x h x d.
    def measure(layers):
        model = tiny("qwen2", hidden_size=128, num_hidden_layers=layers).to(torch.bfloat16)
        pm = peft.get_peft_model(model, peft.LoraConfig(r=8, target_modules="all-linear"))
        pm.train()
        pm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        pm.enable_input_require_grads()
        return saved_bytes(pm, torch.randint(0, 128, (1, 64)))

    assert (measure(4) - measure(2)) / 2 == 64 * 128 * 2


def test_memory_plan_arithmetic():
    info = arch_info("Qwen/Qwen2.5-7B-Instruct")
    kw = dict(rank=8, targets=["all-linear"], micro_batch=1, max_length=4096)
    one = memory_plan(info, **kw)
    parts = ("base_weights", "lora_weights", "lora_grads", "optimizer_states", "activations", "logits")
    assert one["total"] == sum(one[k] for k in parts)
    assert one["lora_params"] == 20_185_088
    assert one["base_weights"] == info.total_params * 2
    # no gradient is live at the peak (the loss's backward); one process has no DDP/ZeRO buffers
    assert (one["lora_weights"], one["lora_grads"], one["optimizer_states"], one["zero_buffers"]) == (
        20_185_088 * 4, 0, 20_185_088 * 8, 0)
    assert one["logits"] == 4096 * 152064 * 12
    assert one["activations"] == 28 * 4096 * 3584 * 2 + 5 * 4096 * 3584
    assert 20e9 < one["total"] < 30e9  # a 7B bf16 LoRA at 4k tokens is a 24 GB-class job

    no_ckpt = memory_plan(info, **{**kw, "grad_ckpt": False})
    assert no_ckpt["activations"] > 5 * one["activations"]

    z2 = memory_plan(info, **kw, zero_stage=2, world_size=4)
    assert z2["base_weights"] == one["base_weights"]  # ZeRO-2 replicates weights
    assert z2["lora_weights"] == 20_185_088 * 2  # DeepSpeed casts the module to bf16
    assert z2["optimizer_states"] == 20_185_088 * 12 // 4
    assert z2["zero_buffers"] == 200_000_000 * 2  # ms-swift's zero2.json reduce_bucket_size, bf16
    ddp = memory_plan(info, **kw, world_size=4)
    assert ddp["zero_buffers"] == 20_185_088 * 4  # torch's Reducer buckets, fp32 like the LoRA grads
    z3 = memory_plan(info, **kw, zero_stage=3, world_size=4)
    assert z3["base_weights"] == one["base_weights"] // 4 and z3["lora_weights"] == z2["lora_weights"] // 4
    assert z3["zero_buffers"] == 10**9 * 2 + 3584 ** 2 * 2  # stage3_max_live_parameters + "auto" bucket
    small = memory_plan(info, **kw, zero_stage=3, world_size=4, max_live=10**6, reduce_bucket=0)
    assert small["zero_buffers"] == 10**6 * 2

    split = memory_plan(info, **kw, gpus_per_rank=2)
    assert split["base_weights"] == one["base_weights"] // 2
    assert split["logits"] == one["logits"]  # the head sits on the last GPU, whole


def test_memory_plan_uses_file_size_for_quantized_weights():
    info = fake_info(quantization="gptq", weights_bytes=123_456, total_params=10**9)
    plan = memory_plan(info, rank=4, targets=["all-linear"])
    assert plan["base_weights"] == 123_456
