"""One ms-swift LoRA training step on fake tensors, measured: run by `lorakit plan --simulate`.

This file runs as a script under the Python that `swift` runs under (lorakit.simulate starts it;
lorakit itself never imports torch). It reads one JSON spec on stdin and prints one JSON answer on
stdout. Nothing real is allocated: the model is built on the meta device and every parameter is
then replaced by a FakeTensor (torch._subclasses.fake_tensor.FakeTensorMode), so an 8B model at
8k tokens costs seconds and no memory, and torch.distributed._tools.mem_tracker.MemTracker counts
the live tensor bytes of every op of the step at its peak.

What it reproduces of ms-swift 4.6 (each cited where it is done):
- the model: AutoModelForCausalLM.from_config in the preset's dtype, sdpa attention, use_cache off;
- LoRA: PEFT LoraConfig(r, lora_alpha, target_modules, lora_dropout) as
  swift/pipelines/train/tuner.py::prepare_adapter builds it, `all-linear` expanded by
  swift/utils/transformers_utils.py::find_all_linears' rule (class name contains 'linear', not
  lm_head/score/v_head/classifier); PEFT upcasts the adapters to fp32 (autocast_adapter_dtype);
- mixed precision: HF Trainer's accelerate wraps forward in torch.autocast for bf16/fp16
  (accelerate/accelerator.py::prepare_model, native_amp);
- gradient checkpointing: gradient_checkpointing_enable + enable_input_require_grads, with
  use_reentrant as swift/trainers/mixin.py::_fix_gradient_checkpointing picks it (True for one
  process without DeepSpeed, False under DDP);
- the loss: labels passed to the model (transformers' ForCausalLMLoss: logits.float() then
  cross_entropy), every token a label -- the upper bound of use_logits_to_keep;
- AdamW over the trainable parameters; the peak reported is a steady step's (optimizer states
  already allocated when the forward runs), see step().

Tool quirks worked around (each cost a wrong number or a crash before):
- MemTracker installs gradient hooks on every parameter; register_hook on a frozen one raises:
  hooks go on trainable parameters only (SkipFrozenTracker);
- fake parameters cannot be `.to()`-converted (nn.Module._apply cannot swap them, and PEFT moves
  each adapter to its base layer's device): build and wrap on meta, then replace each parameter
  and buffer by a fake one of the same shape, dtype and requires_grad (tied ones stay tied);
- under fake tensors transformers' masking_utils cannot read tensor values (is_tracing() is true
  for a FakeTensor): find_packed_sequence_indices keeps a packed-sequence mask and
  _ignore_causal_mask_sdpa refuses the causal skip, so a full seq x seq mask is built (and with
  it repeat_kv's full-size keys and values) that a real unpadded run never builds (+2.2%). The
  step passes no attention_mask and patches find_packed_sequence_indices to answer None, which is
  what a real run of one unpadded sequence per row computes (is_causal=True, GQA in SDPA);
- CPU's native_dropout keeps a mask of the input's dtype (fp32 for PEFT's upcast input), CUDA's
  fused dropout a bool one: LoRA's dropout is replaced by one that keeps a bool mask, as on a GPU.
"""

from __future__ import annotations

import json
import sys
import time

HEADS = ("lm_head", "score", "v_head", "classifier")
DTYPES = {"bfloat16": "bfloat16", "float16": "float16", "float32": "float32"}


def all_linear(model) -> list:
    """find_all_linears' rule: leaf names of modules whose class name contains 'linear'."""
    names = set()
    for name, module in model.named_modules():
        cls = type(module).__name__.lower()
        if "linear" in cls and "glulinear" not in cls and "clippablelinear" not in cls and \
                not any(h in name for h in HEADS):
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def targets_of(model, targets: list) -> list:
    out = []
    for t in targets:
        out.extend(all_linear(model) if t == "all-linear" else [t])
    return sorted(set(out))


def fakeify(model, mode, torch) -> None:
    """Replace every parameter and buffer by a fake CPU tensor; a tied parameter stays one."""
    made = {}
    with mode:
        for module in model.modules():
            for name, p in list(module._parameters.items()):
                if p is not None:
                    if id(p) not in made:
                        made[id(p)] = torch.nn.Parameter(torch.empty(p.shape, dtype=p.dtype, device="cpu"),
                                                         requires_grad=p.requires_grad)
                    module._parameters[name] = made[id(p)]
            for name, b in list(module._buffers.items()):
                if b is not None:
                    module._buffers[name] = torch.empty(b.shape, dtype=b.dtype, device="cpu")


def tracker_class():
    from torch.distributed._tools.mem_tracker import MemTracker

    class SkipFrozenTracker(MemTracker):
        def _track_module_params_and_buffers(self, module, install_grad_hooks=True):
            out = super()._track_module_params_and_buffers(module, install_grad_hooks=False)
            if install_grad_hooks:
                for p in module.parameters():
                    if p.requires_grad and self._param_to_grad_hook_handles.get(p) is None:
                        self._param_to_grad_hook_handles[p] = (
                            p.register_hook(self._grad_hook_fn()),
                            p.register_post_accumulate_grad_hook(self._post_acc_fn()))
            return out

        def _update_peak_stats(self, peak_state):
            # MemTracker also updates every module's own peak on every op: O(ops x modules),
            # minutes for a 28-layer model. Only the whole step's peak is wanted here.
            for dev, snap in self._curr_mem_snap.items():
                if self._peak_mem.get(dev, 0) < snap["Total"]:
                    self._peak_mem[dev] = snap["Total"]
                    self._peak_mem_snap[dev] = dict(snap)

        def _grad_hook_fn(self):
            def hook(grad):
                self._update_and_maybe_create_winfos(grad, self._ref_class.GRAD)
            return hook

        def _post_acc_fn(self):
            def hook(param):
                self._update_and_maybe_create_winfos(param.grad, self._ref_class.GRAD)
            return hook

    return SkipFrozenTracker


def cuda_like_dropout(torch):
    """nn.Dropout whose backward keeps a bool mask, as CUDA's fused_dropout does."""
    class KeepBoolMask(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, p):
            mask = torch.rand_like(x) >= p
            ctx.save_for_backward(mask)
            ctx.scale = 1.0 / (1.0 - p)
            return x * mask * ctx.scale

        @staticmethod
        def backward(ctx, grad):
            (mask,) = ctx.saved_tensors
            return grad * mask * ctx.scale, None

    class Dropout(torch.nn.Dropout):
        def forward(self, x):
            return KeepBoolMask.apply(x, self.p) if self.training and self.p > 0 else x

    return Dropout


def patch_masks(transformers) -> None:
    from transformers import masking_utils

    masking_utils.find_packed_sequence_indices = lambda position_ids: None


def build(spec: dict, torch, transformers, peft):
    cfg = dict(spec["config"])
    config = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    config.use_cache = False
    config._attn_implementation = spec.get("attn_impl", "sdpa")
    dtype = getattr(torch, DTYPES[spec["dtype"]])
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    targets = targets_of(model, spec["targets"])
    lora = peft.LoraConfig(task_type="CAUSAL_LM", r=spec["rank"], lora_alpha=spec.get("alpha", 32),
                           target_modules=targets, lora_dropout=spec["dropout"])
    model = peft.get_peft_model(model, lora)
    dropout = cuda_like_dropout(torch)
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if isinstance(drops, torch.nn.ModuleDict):
            for key, old in list(drops.items()):
                if isinstance(old, torch.nn.Dropout):
                    drops[key] = dropout(old.p)
    if spec["grad_ckpt"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": spec["use_reentrant"]})
        model.enable_input_require_grads()
    model.train()
    return model, dtype, targets, config


def optimizer(params, torch):
    # transformers' default optim is adamw_torch_fused: no foreach scratch copies of the params.
    try:
        return torch.optim.AdamW(params, lr=1e-4, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(params, lr=1e-4, foreach=False)


def step(spec: dict) -> dict:
    import torch
    import transformers
    import peft
    from torch._subclasses.fake_tensor import FakeTensorMode

    started = time.monotonic()
    patch_masks(transformers)
    model, dtype, targets, config = build(spec, torch, transformers, peft)
    mode = FakeTensorMode()
    fakeify(model, mode, torch)
    trainable = [p for p in model.parameters() if p.requires_grad]
    amp = dtype in (torch.bfloat16, torch.float16)
    with mode:
        opt = optimizer(trainable, torch)
        ids = torch.randint(0, config.vocab_size, (spec["micro_batch"], spec["max_length"]))
        tracker = tracker_class()()
        tracker.track_external(model, opt)
        with tracker:
            with torch.autocast("cpu", dtype=dtype, enabled=amp):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            before_step = dict(next(iter(tracker._peak_mem_snap.values())))
            opt.step()
            opt.zero_grad()
            states = sum(t.untyped_storage().nbytes() for s in opt.state.values() for t in s.values()
                         if torch.is_tensor(t) and t.dim())
        after = dict(next(iter(tracker.get_tracker_snapshot("peak").values())))
    # Every later step runs its forward and backward with AdamW's states already there (the first
    # has none yet): the steady peak is the first step's forward/backward peak plus the states,
    # or the optimizer step's own peak if that is higher. One step instead of two: half the time.
    kinds = {str(getattr(k, "value", k)): v for k, v in before_step.items()}
    kinds["Optstate"] = states
    steady = kinds.pop("Total") + states
    return {"peak_bytes": max(steady, after["Total"]), "at_peak": kinds, "targets": targets,
            "trainable_params": sum(p.numel() for p in trainable),
            "total_params": sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()
                                if not p.requires_grad),  # the base model's, as lorakit counts it
            "seconds": round(time.monotonic() - started, 2),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "peft": peft.__version__}}


def shapes(spec: dict) -> dict:
    """A config.json-only model's Linear shapes (module name -> [in, out]) and parameter count,
    built on the meta device: any architecture transformers knows, MoE included."""
    import torch
    import transformers

    cfg = dict(spec["config"])
    config = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    linears, embeds = {}, {}
    for name, module in model.named_modules():
        cls = type(module).__name__.lower()
        weight = getattr(module, "weight", None)
        if "linear" in cls and weight is not None and weight.dim() == 2:
            linears[name] = [int(weight.shape[1]), int(weight.shape[0])]
        elif isinstance(module, torch.nn.Embedding):
            embeds[name] = [int(weight.shape[0]), int(weight.shape[1])]
    unique = {id(p): p for p in model.parameters()}.values()
    fused = {n: list(p.shape) for n, p in model.named_parameters() if p.dim() == 3}  # MoE experts, fused
    return {"linears": linears, "embeddings": embeds, "total_params": sum(p.numel() for p in unique),
            "fused_experts": fused, "qk_norm": any(n.endswith((".q_norm", ".k_norm")) for n, _ in model.named_modules()),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}


def answer(spec: dict) -> dict:
    try:
        return shapes(spec) if spec.get("mode") == "shapes" else step(spec)
    except Exception as exc:  # one JSON answer either way; lorakit turns it into a clear error
        return {"error": f"{type(exc).__name__}: {exc}"}


def main() -> int:
    """One spec -> one answer; a list of specs -> a list of answers (one torch import for all)."""
    spec = json.loads(sys.stdin.read())
    out = [answer(s) for s in spec] if isinstance(spec, list) else answer(spec)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0 if "error" not in (out if isinstance(out, dict) else {}) else 3


if __name__ == "__main__":
    sys.exit(main())
