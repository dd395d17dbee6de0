"""LoRA parameter counts and a per-GPU memory estimate, from a ModelInfo. Pure arithmetic.

Stdlib only and no I/O: the validate/dry-run path calls this without torch or ms-swift.
Every coefficient below is documented where it is used so the README can quote it; the
activation coefficients were measured with torch's saved-tensor hooks on a Qwen2 decoder
(bf16 base, PEFT LoRA) and tests/test_planmath.py keeps that measurement honest.
"""

from __future__ import annotations

from lorakit.modelinfo import ModelInfo

ALL_LINEAR, ALL_EMBEDDING, ALL_NORM = "all-linear", "all-embedding", "all-norm"

FP32 = 4
# AdamW keeps exp_avg and exp_avg_sq, both fp32.
ADAM_STATE_BYTES = 2 * FP32


def resolve_targets(info: ModelInfo, target_modules: list) -> tuple:
    """(targeted, unknown): `targeted` maps a Linear/Embedding leaf name to the (in, out) shape of
    every module LoRA will wrap; `unknown` lists entries that match nothing in the model.

    - `all-linear`: every Linear of the language model, not the output head nor (multimodal) the
      vision tower/aligner -- ms-swift 4.6.0 swift/pipelines/train/tuner.py::get_target_modules,
      which expands it via swift/utils/transformers_utils.py::find_all_linears (ignores lm_head,
      score, v_head, classifier) or, for multimodal models, get_multimodal_target_regex
      (language_model only under the defaults freeze_vit=True, freeze_aligner=True).
    - `all-embedding`: the language model's embeddings (find_embedding); PEFT's LoRA Embedding has
      r x (num_embeddings + dim) parameters, the same formula, so they are counted.
    - `all-norm`: accepted as known but never counted: ms-swift expands it only in
      modules_to_save (full copies, not LoRA), and get_target_modules passes it through untouched.
    - anything else: PEFT matches a list entry against the end of each module name
      (`name == t or name.endswith("." + t)`), so `q_proj` also hits a vision tower's q_proj.
      A dotted entry (`self_attn.q_proj`) is matched by its last part, an approximation.
    """
    groups = {"linears": info.linears, "head": info.head, "multimodal": info.multimodal,
              "embeddings": info.embeddings}
    chosen, unknown = set(), []
    for entry in target_modules:
        if entry == ALL_LINEAR:
            chosen.update(("linears", leaf) for leaf in info.linears)
        elif entry == ALL_EMBEDDING:
            chosen.update(("embeddings", leaf) for leaf in info.embeddings)
        elif entry == ALL_NORM:
            continue
        else:
            leaf = entry.rsplit(".", 1)[-1]
            hits = {(g, leaf) for g, table in groups.items() if leaf in table}
            if hits:
                chosen.update(hits)
            else:
                unknown.append(entry)
    targeted = {}
    for group, leaf in sorted(chosen):
        targeted.setdefault(leaf, []).extend(groups[group][leaf])
    return targeted, unknown


def lora_trainable_params(targeted: dict, rank: int) -> int:
    """Σ r × (in + out): lora_A is r×in, lora_B is out×r, neither has a bias (PEFT LoraLayer)."""
    return sum(rank * (i + o) for shapes in targeted.values() for i, o in shapes)


def _lora_state_bytes(zero_stage: int, dtype_bytes: int) -> tuple:
    """Bytes per LoRA parameter for (weight, grad, optimizer).

    ms-swift leaves lora_dtype=None, so PEFT's cast_adapter_dtype (peft/tuners/tuners_utils.py,
    autocast_adapter_dtype=True) upcasts bf16/fp16 adapters to fp32: weight 4 + grad 4 + AdamW 8.
    Under DeepSpeed ZeRO with bf16, DeepSpeedEngine._configure_distributed_model casts the whole
    module to bf16 and the ZeRO optimizer keeps an fp32 master copy: weight d + grad d + (4 + 8).
    """
    if zero_stage >= 1:
        return dtype_bytes, dtype_bytes, FP32 + ADAM_STATE_BYTES
    return FP32, FP32, ADAM_STATE_BYTES


def layer_activation_bytes(info: ModelInfo, dtype_bytes: int) -> int:
    """Bytes one decoder layer keeps for backward per token, before LoRA's own copies.

    8·h (both RMSNorms upcast their input to fp32 and save it) + d·(2·h + 2·kv + 3·I):
    attention saves q and its output (h each) and the post-RoPE k, v (kv each) -- SDPA/flash
    never materialises the seq×seq matrix -- and the SwiGLU MLP saves gate, up and act(gate)
    (I each). Frozen base Linears save no input. kv defaults to h, I to 4·h when unknown.
    """
    h = info.hidden_size or 0
    kv = info.kv_dim or h
    inter = info.intermediate_size or 4 * h
    return 2 * FP32 * h + dtype_bytes * (2 * h + 2 * kv + 3 * inter)


def lora_activation_bytes(targeted: dict, lora_dropout: float) -> int:
    """Bytes LoRA adds per token over the whole model: PEFT casts each wrapped module's input to
    the fp32 adapter dtype (one fresh copy per module, saved by lora_A), and dropout > 0
    (ms-swift's default lora_dropout is 0.05) saves one more fp32 tensor of the same size."""
    copies = 2 if lora_dropout > 0 else 1
    return copies * FP32 * sum(i for shapes in targeted.values() for i, _ in shapes)


def memory_plan(info: ModelInfo, *, rank: int, targets: list, dtype_bytes: int = 2, micro_batch: int = 1,
                max_length: int = 2048, grad_ckpt: bool = True, world_size: int = 1, gpus_per_rank: int = 1,
                zero_stage: int = 0, lora_dropout: float = 0.05) -> dict:
    """Per-GPU training memory of a LoRA run, in bytes, for the busiest GPU.

    tokens = micro_batch × max_length; d = dtype_bytes; L = layers; P = LoRA params.
    - base_weights: total_params × d (quantized checkpoints: their safetensors bytes),
      ÷ gpus_per_rank (device_map spreads layers over a rank's GPUs), ÷ world_size under ZeRO-3.
    - lora_weights / lora_grads / optimizer_states: P × (4, 4, 8) bytes, or P × (d, d, 12) under
      ZeRO (see _lora_state_bytes); ZeRO-1 divides the optimizer by world_size, ZeRO-2 also the
      grads, ZeRO-3 also the weights; device_map divides all three by gpus_per_rank.
    - activations: with gradient checkpointing, L × tokens × h × d (each layer's saved input) plus
      one layer recomputed in full, A_layer + A_lora / L; without, L × A_layer + A_lora, where
      A_layer = tokens × layer_activation_bytes and A_lora = tokens × lora_activation_bytes.
      The per-layer part is ÷ gpus_per_rank (each GPU holds its own layers' activations).
    - logits: tokens × vocab × (d + 4 + 4): the d-byte logits, their fp32 upcast for the loss
      (transformers ForCausalLMLoss / ms-swift per_token_loss_func call logits.float()) and the
      fp32 log-softmax cross_entropy saves for backward. Lives on the last GPU, not divided.
    Not counted: CUDA context and allocator slack (budget ~1-2 GiB), transient backward buffers.
    """
    targeted, _ = resolve_targets(info, targets)
    n_lora = lora_trainable_params(targeted, rank)
    tokens = micro_batch * max_length
    layers = info.num_layers or 0
    h = info.hidden_size or 0
    dp, mp = max(world_size, 1), max(gpus_per_rank, 1)

    base = info.weights_bytes if info.quantization and info.weights_bytes else info.total_params * dtype_bytes
    base = base / mp / (dp if zero_stage >= 3 else 1)
    w_b, g_b, o_b = _lora_state_bytes(zero_stage, dtype_bytes)
    lora_w = n_lora * w_b / mp / (dp if zero_stage >= 3 else 1)
    lora_g = n_lora * g_b / mp / (dp if zero_stage >= 2 else 1)
    optim = n_lora * o_b / mp / (dp if zero_stage >= 1 else 1)

    a_layer = tokens * layer_activation_bytes(info, dtype_bytes)
    a_lora = tokens * lora_activation_bytes(targeted, lora_dropout)
    if grad_ckpt:
        acts = layers * tokens * h * dtype_bytes / mp + a_layer + (a_lora / layers if layers else 0)
    else:
        acts = (layers * a_layer + a_lora) / mp
    logits = tokens * (info.vocab_size or 0) * (dtype_bytes + 2 * FP32)

    plan = {"base_weights": base, "lora_weights": lora_w, "lora_grads": lora_g, "optimizer_states": optim,
            "activations": acts, "logits": logits}
    plan = {k: int(round(v)) for k, v in plan.items()}
    plan["total"] = sum(plan.values())
    plan["lora_params"] = n_lora
    return plan
