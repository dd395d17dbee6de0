"""Training features that need a partner setting, per ms-swift minor: packing / padding_free
need flash attention, streaming needs max_steps, quantization needs both a method and its bits
(and bnb 4-bit under ZeRO-3 a storage dtype). Each of these fails a run that lorakit would
otherwise launch; most only after the model has loaded."""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_bool, as_int

TRAINS = ("sft", "pt", "rlhf")  # the commands whose arguments inherit TrainArguments


def _minor(job: Job) -> tuple[int, int]:
    """The ms-swift minor the job targets: the exact one when lorakit knows it, else the snapshot's."""
    from lorakit.flaghistory import minor_of, target_minor
    from lorakit.swiftflags import snapshot_version

    text = target_minor(job.swift_major, job.swift_version) or minor_of(snapshot_version(job.swift_major))
    major, minor = text.split(".")
    return int(major), int(minor)


def flash_impls(job: Job) -> tuple[str, ...]:
    """attn_impl values TrainArguments._check_padding_free accepts (none before 3.5: no check).
    3.5-3.6 train_args.py: `!= 'flash_attn'`; 3.7-4.1: flash_attn, flash_attention_2/3; 4.2+
    (4.6.0 swift/arguments/sft_args.py:193) adds flash_attention_4. Read from each minor's wheel."""
    minor = _minor(job)
    if minor < (3, 5):
        return ()
    if minor < (3, 7):
        return ("flash_attn",)
    if minor < (4, 2):
        return ("flash_attn", "flash_attention_2", "flash_attention_3")
    return ("flash_attn", "flash_attention_2", "flash_attention_3", "flash_attention_4")


def check_packing(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in TRAINS:
        return []
    feature = next((k for k in ("packing", "padding_free") if as_bool(job.args.get(k)) is True), None)
    if feature is None:
        return []
    impls, impl = flash_impls(job), job.args.get("attn_impl")
    if not impls or impl in impls:
        return []
    said = "unset" if impl is None else repr(impl)
    return [about(job, ERROR, "args.packing.attn_impl", f"args.{feature}",
                  f"{feature} needs a flash attention implementation, and attn_impl is {said}: ms-swift refuses "
                  f'the run while parsing its arguments (The "{feature}" feature requires a flash attention '
                  "implementation)",
                  f"set attn_impl: {impls[0]} (ms-swift takes {', '.join(impls)}; pip install flash-attn on the "
                  f"training machine), or drop {feature}")]


def check_streaming(job: Job, facts: Facts) -> list[Finding]:
    """A streamed dataset has no length: transformers' Trainer refuses it without max_steps
    (trainer.py __init__: "The train_dataset does not implement __len__, max_steps has to be
    specified"), after the model has loaded. ms-swift's data_args.py says so too."""
    if job.command not in TRAINS or as_bool(job.args.get("streaming")) is not True:
        return []
    steps = as_int(job.args.get("max_steps"))
    if steps is not None and steps > 0:
        return []
    said = "unset" if job.args.get("max_steps") is None else f"{job.args.get('max_steps')!r}"
    return [about(job, ERROR, "train.streaming.max_steps", "args.streaming",
                  f"streaming true with max_steps {said}: a streamed dataset has no length, so transformers "
                  "refuses the run once the model has loaded (\"max_steps has to be specified\")",
                  "set max_steps: N (the steps to train; ms-swift stops at the data's end only when max_epochs "
                  "is set too), or drop streaming")]


# ms-swift QuantizeArguments.get_quantization_config (4.6.0 swift/arguments/base_args/quant_args.py,
# 3.12.6 swift/llm/argument/base_args/quant_args.py): the bits each method takes
BITS = {"bnb": {"4", "8"}, "quanto": {"2", "4", "8", "float8"}, "eetq": {"8"}}
# a model that is already quantized names its method in its config: quant_method stays unset
PREQUANTIZED = ("awq", "gptq", "gptq_v2")


def check_quantization(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in TRAINS + ("infer", "deploy", "export"):
        return []
    method, bits = job.args.get("quant_method"), job.args.get("quant_bits")
    bits_text = None if bits is None else str(bits)
    if method is None and bits is not None:
        # get_quantization_config returns None for quant_method None: the "QLoRA" run trains
        # the unquantized model at full memory, without a word (ms-swift #3129)
        return [about(job, WARNING, "args.quant_bits.no_method", "args.quant_bits",
                      f"quant_bits {bits} without quant_method: ms-swift quantizes nothing (it reads quant_bits "
                      "only with a method) and loads the model at full precision",
                      f"for QLoRA: quant_method: bnb with quant_bits {bits if bits_text in BITS['bnb'] else 4}; "
                      "or drop quant_bits")]
    if method is None or str(method) in PREQUANTIZED:
        return []
    method = str(method)
    if method != "fp8" and bits is None:
        return [about(job, ERROR, "args.quant_bits.missing", "args.quant_method",
                      f"quant_method {method} without quant_bits: ms-swift refuses it while loading the model "
                      "(\"Please set the quant_bits\")",
                      f"add quant_bits: {sorted(BITS.get(method, {'4'}))[0]}")]
    if method in BITS and bits_text not in BITS[method]:
        return [about(job, ERROR, "args.quant_bits.unsupported", "args.quant_bits",
                      f"quant_method {method} takes quant_bits {', '.join(sorted(BITS[method]))}, not {bits}: "
                      "ms-swift refuses it while loading the model",
                      f"quant_bits: {sorted(BITS[method])[0]}")]
    if method == "bnb" and bits_text == "4" and str(job.args.get("deepspeed", "")).startswith("zero3") \
            and job.args.get("bnb_4bit_quant_storage") is None:
        # ZeRO-3 flattens every parameter into one buffer of one dtype; bnb packs 4-bit weights as
        # uint8 unless bnb_4bit_quant_storage is the compute dtype (ms-swift passes None through:
        # quant_args.py BitsAndBytesConfig(bnb_4bit_quant_storage=...)); ms-swift #5422
        dtype = str(job.args.get("torch_dtype") or "bfloat16")
        return [about(job, ERROR, "layout.zero3.bnb_storage", "args.deepspeed",
                      f"bnb 4-bit with deepspeed {job.args.get('deepspeed')} and no bnb_4bit_quant_storage: "
                      "ZeRO-3 needs every parameter in one dtype, and bnb stores 4-bit weights as uint8 "
                      "(DeepSpeed: \"all params must have the same dtype\")",
                      f"set bnb_4bit_quant_storage: {dtype} (the torch_dtype), or use zero2")]
    return []


CHECKS = [check_packing, check_streaming, check_quantization]
