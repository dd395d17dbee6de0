"""Training features that need a partner setting, per ms-swift minor: packing / padding_free
need flash attention, streaming needs max_steps, quantization needs both a method and its bits
(and bnb 4-bit under ZeRO-3 a storage dtype). Each of these fails a run that lorakit would
otherwise launch; most only after the model has loaded."""

from __future__ import annotations

from pathlib import Path

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.render import render_value
from lorakit.values import as_bool, as_float, as_int, listed

TRAINS = ("sft", "pt", "rlhf")  # the commands whose arguments inherit TrainArguments


def _minor(job: Job) -> tuple[int, int]:
    from lorakit.flaghistory import targeted  # the history is read only for an older minor

    return targeted(job.swift_major, job.swift_version)


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
    if not impls or impl in impls or isinstance(impl, (list, tuple)):
        return []  # a list: the flag check says attn_impl takes one value
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
    if steps is None and job.args.get("max_steps") is not None:
        return []  # '1e3', 2.5, true: the flag check says max_steps takes an integer
    said = "unset" if job.args.get("max_steps") is None else f"{job.args.get('max_steps')!r}"
    return [about(job, ERROR, "train.streaming.max_steps", "args.streaming",
                  f"streaming true with max_steps {said}: a streamed dataset has no length, so transformers "
                  "refuses the run once the model has loaded (\"max_steps has to be specified\")",
                  "set max_steps: N (the steps to train; ms-swift stops at the data's end only when max_epochs "
                  "is set too), or drop streaming")]


# ms-swift QuantizeArguments.get_quantization_config (4.6.0 swift/arguments/base_args/quant_args.py,
# 3.12.6 swift/llm/argument/base_args/quant_args.py): the bits each method takes
BITS = {"bnb": {"4", "8"}, "quanto": {"2", "4", "8", "float8"}, "eetq": {"8"}}
ALL_BITS = ("1", "2", "3", "4", "8", "float8")  # QuantizeArguments.quant_bits' Literal
# a model that is already quantized names its method in its config: quant_method stays unset
PREQUANTIZED = ("awq", "gptq", "gptq_v2")
# QuantizeArguments.quant_method's Literal (4.6.0 quant_args.py; export takes the same names)
METHODS = ("bnb", "hqq", "eetq", "quanto", "fp8") + PREQUANTIZED
_PREQUANTIZED_NAME = r"gptq|awq|int[48]|bnb|4bit|8bit|fp8|gguf"  # a hub id that says it is quantized


def _bits_without_method(job: Job, facts: Facts, bits, bits_text: str) -> list[Finding]:
    """quant_bits with no quant_method: get_quantization_config returns None, so the "QLoRA" run
    trains the unquantized model at full memory, without a word (ms-swift #3129). No one writes
    quant_bits meaning "do not quantize": an error, unless a method comes from elsewhere: the
    checkpoint's args.json (load_args_from_ckpt fills an unset quant_method; training reads it only
    with load_args true) or a model that is quantized already (its config's quantization_config;
    the flag is then moot)."""
    from lorakit.ckptargs import ckpt_args, loads_args

    if loads_args(job.args, job.command):
        _, saved = ckpt_args(job.args, job.command)
        if saved.get("quant_method") not in (None, ""):
            return []
    model = job.args.get("model")
    found = facts.find_model(model) if isinstance(model, str) and model.strip() else None
    if found is not None:
        from lorakit.checks.requires import config_of

        config = config_of(Path(found)) or {}
        if isinstance(config.get("quantization_config"), dict):
            return []
    fix = (f"for QLoRA: quant_method: bnb with quant_bits {bits if bits_text in BITS['bnb'] else 4}; "
           "or drop quant_bits")
    what = (f"quant_bits {bits} without quant_method: ms-swift quantizes nothing (it reads quant_bits only "
            "with a method) and loads the model at full precision")
    import re

    if found is None and isinstance(model, str) and re.search(_PREQUANTIZED_NAME, model, re.IGNORECASE):
        # a hub id named as a quantized checkpoint (…-GPTQ-Int4, …-AWQ): its own config quantizes it
        return [about(job, WARNING, "args.quant_bits.no_method", "args.quant_bits",
                      what + f", unless {model} is quantized already (its name says so)", fix)]
    return [about(job, ERROR, "args.quant_bits.no_method", "args.quant_bits", what, fix)]


def check_quantization(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in TRAINS + ("infer", "deploy", "export"):
        return []
    method, bits = job.args.get("quant_method"), job.args.get("quant_bits")
    if isinstance(method, (list, dict)) or isinstance(bits, (bool, list, dict)):
        return []  # no value argparse takes: the flag check says so
    # as ms-swift reads the argv text lorakit renders: 4.0 is '4' (render.render_value)
    bits_text = None if bits is None else render_value(bits)[0]
    if bits_text is not None and bits_text not in ALL_BITS:
        return []  # not one of quant_bits' choices: the flag check names them
    if method is None and bits is not None and job.command == "export":
        return [about(job, ERROR, "args.quant_bits.no_method", "args.quant_bits",
                      f"quant_bits {bits} without quant_method: swift export refuses it (\"Please specify the "
                      "quantization method using `--quant_method awq/gptq/bnb`.\")",
                      f"add --quant_method awq (or gptq, bnb) with --quant_bits {bits}")]
    if method is None and bits is not None:
        return _bits_without_method(job, facts, bits, bits_text)
    if method is None or str(method) not in METHODS:
        return []  # '' or no method ms-swift has: the flag check names its choices
    method = str(method)
    if method != "fp8" and bits is None and job.command == "export":
        # ExportArguments.__post_init__ asks before BaseArguments loads the checkpoint's args.json,
        # so a QLoRA checkpoint's recorded bits do not count (4.6.0 export_args.py:129-130, 144)
        return [about(job, ERROR, "args.quant_bits.missing", "args.quant_method",
                      f"quant_method {method} without quant_bits: swift export refuses it while parsing its "
                      "arguments (\"Please specify `--quant_bits`.\")",
                      f"add --quant_bits {sorted(BITS.get(method, {'4'}))[0]}")]
    if method in PREQUANTIZED:
        return []  # training or inference of a model that is quantized already: its config says how
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
            and job.args.get("bnb_4bit_quant_storage") in (None, "None"):
        # ZeRO-3 flattens every parameter into one buffer of one dtype; bnb packs 4-bit weights as
        # uint8 unless bnb_4bit_quant_storage is the compute dtype (ms-swift passes None through:
        # quant_args.py BitsAndBytesConfig(bnb_4bit_quant_storage=...)); ms-swift #5422
        given = job.args.get("torch_dtype")
        dtype = "bfloat16" if given in (None, "", "None") else str(given)  # 'None': ms-swift's unset
        return [about(job, ERROR, "layout.zero3.bnb_storage", "args.deepspeed",
                      f"bnb 4-bit with deepspeed {job.args.get('deepspeed')} and no bnb_4bit_quant_storage: "
                      "ZeRO-3 needs every parameter in one dtype, and bnb stores 4-bit weights as uint8 "
                      "(DeepSpeed: \"all params must have the same dtype\")",
                      f"set bnb_4bit_quant_storage: {dtype} (the torch_dtype), or use zero2")]
    return []


TRAINABLE_QUANT = ("bnb", "hqq", "eetq", "quanto", "fp8")  # the --quant_method values a trainer may load


def check_full_quantized(job: Job, facts: Facts) -> list[Finding]:
    """A full fine-tune of a quantized model: transformers' Trainer refuses a quantized model with
    no adapters attached (4.6.0's transformers 5.19 trainer_utils.py validate_quantization_for_training,
    3.12.6's transformers 4.57 trainer.py __init__: "You cannot perform fine-tuning on purely quantized
    models"), once the model has loaded. The quantization is quant_method here, or the local
    model's own quantization_config (a GPTQ/AWQ checkpoint)."""
    name = "train_type" if "train_type" in job.args else "tuner_type"  # 3.x's name, as the user wrote it
    if job.command not in TRAINS or str(job.args.get(name, "lora")) != "full":
        return []
    method, how = job.args.get("quant_method"), None
    if isinstance(method, str) and method in TRAINABLE_QUANT and job.args.get("quant_bits") is not None \
            or method == "fp8":
        how = f"quant_method {method}"
    model = job.args.get("model")
    found = facts.find_model(model) if how is None and isinstance(model, str) and model.strip() else None
    if found is not None:
        from lorakit.checks.requires import config_of

        quant = (config_of(Path(found)) or {}).get("quantization_config")
        if isinstance(quant, dict):
            how = f"a model quantized with {quant.get('quant_method', 'its quantization_config')} (its config.json)"
    if how is None:
        return []
    key = "args.quant_method" if how.startswith("quant_method") else "args.model"
    return [about(job, ERROR, "train.full.quantized", key,
                  f"{name} full on {how}: transformers' Trainer refuses to train a quantized model without "
                  "adapters, once the model has loaded (\"You cannot perform fine-tuning on purely quantized "
                  "models\")",
                  f"for QLoRA: {name} lora; for a full fine-tune, an unquantized model (drop quant_method / "
                  "quant_bits)")]


def check_cached_dataset(job: Job, facts: Facts) -> list[Finding]:
    """A cached dataset holds rows already tokenized (input_ids, labels: `swift export
    --to_cached_dataset`). GRPO generates from each row's messages: ms-swift refuses it while parsing
    (RLHFArguments._init_grpo, 3.7+: "cached_dataset is not supported for GRPO"). GKD with lmbda > 0
    generates on-policy from them too (gkd_trainer.py rebuilds the prompt from each sample's
    messages) and fails at the first such step with KeyError 'messages' (ms-swift #6595)."""
    if job.command != "rlhf":
        return []
    key = next((k for k in ("cached_dataset", "cached_val_dataset") if listed(job.args.get(k))), None)
    kind = str(job.args.get("rlhf_type", "dpo"))
    if key is None or kind not in ("grpo", "gkd") or _minor(job) < (3, 7):
        return []  # cached_dataset is from 3.7: the flag's own history says so (flags.too_new)
    if kind == "grpo":
        return [about(job, ERROR, "rlhf.cached_dataset", f"args.{key}",
                      f"{key} with rlhf_type grpo: GRPO generates from each row's messages, which a cached "
                      "(pre-tokenized) dataset does not keep; ms-swift refuses it while parsing its arguments",
                      "give the source rows with --dataset instead")]
    raw = job.args.get("lmbda")
    lmbda = 0.5 if raw is None else as_float(raw)  # RLHFArguments.lmbda's default
    if lmbda is None:
        return []  # not a number (true, 'abc'): the flag check says so
    if not lmbda > 0:
        # no on-policy step (gkd_trainer.py: `random <= self.lmbda`, never true for nan):
        # only the dataset's own responses are distilled
        return []
    return [about(job, ERROR, "rlhf.gkd.cached_dataset", f"args.{key}",
                  f"{key} with rlhf_type gkd and lmbda {lmbda:g}: on-policy steps rebuild the prompt from each "
                  "row's messages, which a cached (pre-tokenized) dataset does not keep; the first one fails "
                  "(KeyError: 'messages')",
                  "give the source rows with --dataset, or lmbda: 0 (no on-policy generation)")]


def check_resume_streaming(job: Job, facts: Facts) -> list[Finding]:
    """Resuming skips the batches already trained by reading them (transformers trainer.py
    _inner_training_loop: skip_first_batches unless ignore_data_skip); a streamed dataset cannot be
    indexed, so every row already trained is read and encoded again before the first step, which on
    a large dataset looks like a hang at 0% (ms-swift #3951)."""
    if job.command not in TRAINS or not job.args.get("resume_from_checkpoint") \
            or as_bool(job.args.get("streaming")) is not True:
        return []
    if as_bool(job.args.get("ignore_data_skip")) is True or as_bool(job.args.get("resume_only_model")) is True:
        return []
    return [about(job, WARNING, "train.resume.streaming_skip", "args.resume_from_checkpoint",
                  "resuming a streamed dataset: to skip what was trained, transformers reads and encodes every "
                  "row of it again before the first step (it cannot seek in a stream), which can take hours",
                  "ignore_data_skip: true starts at once on the stream's start (the data order then differs from "
                  "an uninterrupted run)")]


def check_infer_streaming(job: Job, facts: Facts) -> list[Finding]:
    """`swift infer` on a dataset counts its rows (len(val_dataset): 4.6.0 pipelines/infer/infer.py
    infer_dataset; 3.12.6 llm/infer/infer.py:249-256) unless it prints responses as they stream,
    and a --streaming dataset has no length: "TypeError: object of type 'IterableDataset' has no
    len()" once the model has loaded (#5609). InferArguments._init_stream: stream defaults to
    false when a val dataset exists, and num_beams > 1 turns it off."""
    if job.command != "infer" or as_bool(job.args.get("streaming")) is not True:
        return []
    # under streaming ms-swift sets split_dataset_ratio to 0 (4.6.0 data_args.py:129-130), so only a
    # val_dataset is a val dataset; without one, infer is the interactive prompt
    if not listed(job.args.get("val_dataset")):
        return []
    beams = as_int(job.args.get("num_beams", 1))
    if as_bool(job.args.get("stream")) is True and beams in (None, 1):
        return []
    return [about(job, ERROR, "infer.streaming", "args.streaming",
                  "streaming true on swift infer over a dataset: infer counts the dataset's rows, and a streamed "
                  "one has none ('object of type 'IterableDataset' has no len()', after the model has loaded)",
                  "drop streaming for infer (it reads the file whole), or pass --stream true to print each "
                  "response as it comes")]


def check_lazy_tokenize(job: Job, facts: Facts) -> list[Finding]:
    """lazy_tokenize true encodes each row when it is read; packing groups encoded rows before
    training and a stream is read as it goes, so from 3.7 ms-swift refuses either pairing while
    parsing its arguments (4.6.0 swift/arguments/base_args/base_args.py:164-168; 3.7.0-3.12.6
    swift/llm/argument/base_args/base_args.py); before 3.7 it turned lazy_tokenize off for a stream
    with a warning. Only a lazy_tokenize the user set: left unset, ms-swift picks one that fits."""
    if as_bool(job.args.get("lazy_tokenize")) is not True or _minor(job) < (3, 7):
        return []
    partner = next((k for k in ("packing", "streaming") if as_bool(job.args.get(k)) is True), None)
    if partner is None:
        return []
    return [about(job, ERROR, "args.lazy_tokenize.incompatible", "args.lazy_tokenize",
                  f"lazy_tokenize true with {partner} true: ms-swift refuses them together while parsing its "
                  f"arguments (\"{partner.capitalize()} and lazy_tokenize are incompatible.\")",
                  f"drop lazy_tokenize (ms-swift then tokenizes up front, as {partner} needs)")]


def check_merge_quant(job: Job, facts: Facts) -> list[Finding]:
    """ms-swift 3.0's merge_lora asserts `args.quant_method is None` (3.0.3 llm/export/merge_lora.py:14:
    "quantized model and does not support merge-lora"), so one `swift export --merge_lora true
    --quant_method gptq` stops once the model has loaded (#2949); from 3.1 it merges, then quantizes."""
    if job.command != "export" or as_bool(job.args.get("merge_lora")) is not True:
        return []
    if job.args.get("quant_method") in (None, "", "None") or _minor(job) >= (3, 1):
        return []  # 'None': ms-swift's own text for unset (a choice 3.0 export lacks: flags.value says so)
    return [about(job, ERROR, "merge.quant_method", "args.quant_method",
                  f"quant_method {job.args['quant_method']} with merge_lora on ms-swift 3.0: its merge refuses any "
                  "quant_method ('quantized model and does not support merge-lora'); 3.1 and later merge, then quantize",
                  "merge first (lorakit merge), then quantize the merged dir: swift export --model MERGED "
                  f"--quant_method {job.args['quant_method']} --quant_bits N; or use ms-swift 3.1+")]


CHECKS = [check_packing, check_streaming, check_quantization, check_full_quantized, check_cached_dataset, check_resume_streaming,
          check_infer_streaming, check_lazy_tokenize, check_merge_quant]
