"""LoRA parameter counts and a per-GPU memory estimate, from a ModelInfo. Pure arithmetic.

Stdlib only and no I/O: the validate/dry-run path calls this without torch or ms-swift.
Every coefficient below is documented where it is used so the README can quote it. The
activation and logits coefficients were fitted to ms-swift's own training step run on fake
tensors and measured by torch's MemTracker (lorakit/simstep.py, `lorakit plan --simulate`);
tests/test_calibration.py keeps the plan within 5% of that simulation, scripts/calibrate_plan.py
checks the whole grid (README table). The multi-GPU terms come from DeepSpeed's and torch's source.
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


# DeepSpeed's defaults where a config leaves them out (deepspeed/runtime/zero/config.py):
DS_REDUCE_BUCKET = 500_000_000
DS_MAX_LIVE = 1_000_000_000
# ms-swift's swift/config/zero{0,1,2}[_offload].json set reduce_bucket_size 2e8; zero3*.json set it
# "auto", which transformers/integrations/deepspeed.py::trainer_config_finalize fills with
# hidden_size**2, and stage3_max_live_parameters 1e9.
SWIFT_REDUCE_BUCKET = 200_000_000


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

    8·h: both RMSNorms upcast their input to fp32 and save it. d·(2·q + 2·kv): SDPA saves q, k, v
    and its output (flash/efficient kernels never materialise seq x seq; k, v stay at kv size
    because transformers passes enable_gqa when there is no mask) plus 4 bytes of logsumexp per
    head. d·3·I: the SwiGLU MLP saves gate, up and act(gate). Qwen3's q_norm/k_norm upcast q and
    k to fp32 and save them: 4·(q + kv). Frozen base Linears save no input. q defaults to h,
    kv to h, I to 4·h when unknown.
    """
    h = info.hidden_size or 0
    q = info.q_dim or h
    kv = info.kv_dim or h
    inter = info.intermediate_size or 4 * h
    heads = info.num_heads or 0
    qk = FP32 * (q + kv) if info.qk_norm else 0
    return 2 * FP32 * h + dtype_bytes * (2 * q + 2 * kv + 3 * inter) + FP32 * heads + qk


def lora_activation_bytes(targeted: dict, lora_dropout: float, rank: int = 8, input_bytes: int = 2) -> int:
    """Bytes LoRA adds per token over the whole model: each wrapped module's lora_A saves its own
    copy of the input (PEFT casts it to the fp32 adapter dtype, then autocast casts it to bf16 for
    the matmul: `input_bytes`, 2 under bf16 mixed precision), dropout > 0 (ms-swift's default
    lora_dropout 0.05) keeps a 1-byte bool mask of it (CUDA's fused dropout), and lora_B saves
    lora_A's r-wide output (2 bytes each)."""
    mask = 1 if lora_dropout > 0 else 0
    return sum((input_bytes + mask) * i + 2 * rank for shapes in targeted.values() for i, _ in shapes)


def zero_buffer_bytes(info: ModelInfo, zero_stage: int, dtype_bytes: int, world_size: int, n_lora: int,
                      reduce_bucket: int | None = None, max_live: int | None = None) -> int:
    """DeepSpeed's and DDP's own buffers, live during the backward whatever the LoRA size.

    - ZeRO-1/2 with contiguous_gradients: DeepSpeedZeroOptimizer.setup_buckets
      (deepspeed/runtime/zero/stage_1_and_2.py) allocates reduce_bucket_size elements at every
      backward's start, in the gradient dtype (bf16) for ZeRO-2 and the fp32 accumulation dtype
      for ZeRO-1: 2e8 x 2 B = 0.37 GiB under ms-swift's zero2.json.
    - ZeRO-3: PartitionedParameterCoordinator (partitioned_param_coordinator.py) keeps gathered
      weights live up to stage3_max_live_parameters (1e9 in zero3.json, ~1.86 GiB bf16) while
      stage3_max_reuse_distance 1e9 keeps them from being released; at most the whole model. Plus
      the reduce bucket (hidden_size**2 elements: "auto").
    - DDP (no ZeRO, several ranks): torch's Reducer (torch/csrc/distributed/c10d/reducer.cpp,
      initialize_buckets) flattens every trainable parameter's gradient into bucket tensors of the
      parameter dtype: n_lora x 4 bytes, allocated once and kept.
    """
    if world_size <= 1 and zero_stage == 0:
        return 0
    if zero_stage == 0:
        return n_lora * FP32
    h = info.hidden_size or 0
    if zero_stage == 3:
        live = min(max_live if max_live is not None else DS_MAX_LIVE, info.total_params)
        bucket = reduce_bucket if reduce_bucket is not None else h * h
        return live * dtype_bytes + bucket * dtype_bytes
    bucket = reduce_bucket if reduce_bucket is not None else SWIFT_REDUCE_BUCKET
    return bucket * (FP32 if zero_stage == 1 else dtype_bytes)


def memory_plan(info: ModelInfo, *, rank: int, targets: list, dtype_bytes: int = 2, micro_batch: int = 1,
                max_length: int = 2048, grad_ckpt: bool = True, world_size: int = 1, gpus_per_rank: int = 1,
                zero_stage: int = 0, lora_dropout: float = 0.05, autocast: bool | None = None,
                reduce_bucket: int | None = None, max_live: int | None = None) -> dict:
    """Per-GPU training memory of a LoRA run at its peak, in bytes, for the busiest GPU.

    tokens = micro_batch × max_length; d = dtype_bytes; L = layers; P = LoRA params.
    The peak is the start of the backward, in the loss: every saved activation is still live,
    no parameter has a gradient yet (HF Trainer zeroes them with set_to_none), and the log-softmax
    backward holds the most. (The other candidate, the last layer's backward, is computed too and
    wins only for tiny vocabularies.)
    - base_weights: total_params × d (quantized checkpoints: their safetensors bytes),
      ÷ gpus_per_rank (device_map spreads layers over a rank's GPUs), ÷ world_size under ZeRO-3.
    - lora_weights / optimizer_states: P × (4, 8) bytes, or P × (d, 12) under ZeRO (see
      _lora_state_bytes); ZeRO-1 divides the optimizer by world_size, ZeRO-3 also the weights;
      device_map divides both by gpus_per_rank. lora_grads: none at that peak.
    - zero_buffers: see zero_buffer_bytes.
    - activations: with gradient checkpointing, each layer's saved input, L × tokens × h × d, and
      the final norm's fp32 input (5 × tokens × h measured); without, L × tokens ×
      layer_activation_bytes + tokens × lora_activation_bytes, and under bf16 autocast the bf16
      copy autocast makes of every LoRA weight (2 × P), less 3 × tokens × h measured.
    - logits: tokens × vocab × 12: in the log-softmax backward its saved fp32 output, the
      incoming fp32 gradient and the new one are live together (the bf16 logits are freed once
      transformers' ForCausalLMLoss has upcast them). Lives on the last GPU, not divided.
      ms-swift's use_logits_to_keep computes logits for response tokens only: this is then an
      upper bound.
    Not counted: CUDA context, allocator fragmentation, NCCL buffers (budget ~1-2 GiB).
    """
    targeted, _ = resolve_targets(info, targets)
    n_lora = lora_trainable_params(targeted, rank)
    tokens = micro_batch * max_length
    layers = info.num_layers or 0
    h = info.hidden_size or 0
    dp, mp = max(world_size, 1), max(gpus_per_rank, 1)
    amp = (dtype_bytes == 2 and zero_stage == 0) if autocast is None else autocast

    base = info.weights_bytes if info.quantization and info.weights_bytes else info.total_params * dtype_bytes
    base = base / mp / (dp if zero_stage >= 3 else 1)
    w_b, g_b, o_b = _lora_state_bytes(zero_stage, dtype_bytes)
    lora_w = n_lora * w_b / mp / (dp if zero_stage >= 3 else 1)
    lora_g = n_lora * g_b / mp / (dp if zero_stage >= 2 else 1)
    optim = n_lora * o_b / mp / (dp if zero_stage >= 1 else 1)
    buffers = zero_buffer_bytes(info, zero_stage, dtype_bytes, dp, n_lora, reduce_bucket, max_live)

    layer = tokens * layer_activation_bytes(info, dtype_bytes)
    lora_in = 2 if dtype_bytes == 2 else FP32
    a_lora = tokens * lora_activation_bytes(targeted, lora_dropout, rank, lora_in)
    ckpt_inputs = layers * tokens * h * dtype_bytes
    if grad_ckpt:
        acts = ckpt_inputs / mp + 5 * tokens * h
        # the last layer's backward: its recomputed activations, its LoRA grads in flight
        late = ckpt_inputs / mp + layer + (a_lora / layers if layers else 0) + lora_g
    else:
        acts = (layers * layer + a_lora + (2 * n_lora if amp else 0)) / mp - 3 * tokens * h
        late = 0
    logits = tokens * (info.vocab_size or 0) * 3 * FP32

    plan = {"base_weights": base, "lora_weights": lora_w, "lora_grads": 0, "optimizer_states": optim,
            "zero_buffers": buffers, "activations": acts, "logits": logits}
    if late > acts + logits:  # tiny vocabularies only: the peak moves into the layers' backward
        plan.update(activations=late - lora_g, logits=0, lora_grads=lora_g)
    plan = {k: int(round(v)) for k, v in plan.items()}
    plan["total"] = sum(plan.values())
    plan["lora_params"] = n_lora
    return plan
