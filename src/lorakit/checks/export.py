"""`swift export` beyond a merge: what ms-swift refuses, and what this machine lacks for it.

ExportArguments.__post_init__ (4.6.0 swift/arguments/export_args.py:116-152, 3.12.6
swift/llm/argument/export_args.py:124-155) refuses quant_bits without quant_method (checks/features.py,
an error for export), a quant method but no quant_bits, GPTQ/AWQ with no calibration dataset, an
output_dir that exists (unless --exist_ok true; the default dir is CHECKPOINT-SUFFIX beside the
checkpoint, so the second identical export fails), and packing or streaming with
to_cached_dataset. SwiftExport.run (pipelines/export/export.py) does only what a flag asks: with none
of them it loads the arguments and exits 0 having written nothing. The quantizers import their
packages late: optimum's GPTQQuantizer after the model has loaded (quant.py gptq_model_quantize),
awq before; bnb quantizes while transformers loads the model; to_mcore/to_hf need megatron-core.
"""

from __future__ import annotations

import json
import os

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_bool

# SwiftExport.run's branches, in its order (to_peft_format first)
ACTIONS = ("to_peft_format", "merge_lora", "quant_method", "to_ollama", "to_cached_dataset", "to_hf", "to_mcore",
           "push_to_hub")
CALIBRATED = ("awq", "gptq", "gptq_v2")
# what each export needs in the environment `swift` runs in (dist-info names, normalised), and why
NEEDS = {
    "awq": ((("autoawq",),), "autoawq", "`from awq import AutoAWQForCausalLM` (quant.py QuantEngine)"),
    "gptq": ((("optimum",), ("gptqmodel", "auto_gptq")), "optimum and gptqmodel (or auto-gptq)",
             "optimum's GPTQQuantizer, imported after the model has loaded (quant.py gptq_model_quantize)"),
    "bnb": ((("bitsandbytes",),), "bitsandbytes", "transformers' BitsAndBytesConfig while the model loads"),
    "mcore": ((("megatron_core",),), "megatron-core", "swift.megatron's converters"),
}
NEEDS["gptq_v2"] = NEEDS["gptq"]


def _on(job: Job, key: str) -> bool:
    return as_bool(job.args.get(key, False)) is True


def _asked(job: Job) -> list[str]:
    return [k for k in ACTIONS if (job.args.get(k) not in (None, "", "None") if k == "quant_method" else _on(job, k))]


def _ckpt_quant(job: Job) -> bool:
    """A checkpoint's args.json may bring quant_method (load_args_from_ckpt fills an unset one)."""
    adapters = job.args.get("adapters")
    first = adapters[0] if isinstance(adapters, list) and adapters else adapters
    if not isinstance(first, str):
        return False
    try:
        with open(os.path.join(first, "args.json"), encoding="utf-8") as f:
            return json.load(f).get("quant_method") not in (None, "")
    except (OSError, ValueError, AttributeError):
        return False


def check_export_action(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "export" or _asked(job) or _ckpt_quant(job):
        return []
    if job.args.get("quant_bits") not in (None, ""):
        return []  # a quantization without its method: checks/features.py says that, once
    return [about(job, ERROR, "export.nothing", "args", "swift export with none of --merge_lora true, --quant_method, "
                  "--to_ollama, --to_cached_dataset, --to_mcore, --to_hf, --push_to_hub: ms-swift reads the arguments "
                  "and exits 0 having written nothing",
                  "to merge a LoRA checkpoint: lorakit merge --adapters CKPT; to quantize: -- --quant_method awq "
                  "--quant_bits 4 --dataset DATA")]


def check_export_quant(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "export":
        return []
    out: list[Finding] = []
    method = str(job.args.get("quant_method") or "")
    dataset = job.args.get("dataset")
    from_ckpt = _on(job, "load_data_args") and job.args.get("adapters")
    if method in CALIBRATED and dataset in (None, "", []) and not from_ckpt:
        out.append(about(job, ERROR, "export.quant.dataset", "args.quant_method",
                         f"quant_method {method} calibrates on data, and no --dataset is given: ms-swift refuses it "
                         "(\"self.dataset: [], Please input the quant dataset.\")",
                         "add --dataset with a few hundred rows like the model's use (ms-swift's examples take "
                         "'AI-ModelScope/alpaca-gpt4-data-zh#500'); --quant_n_samples sets how many it uses"))
    if _on(job, "to_cached_dataset"):
        for key, said in (("packing", "Packing will be handled during training"), ("streaming", "not supported")):
            if _on(job, key):
                out.append(about(job, ERROR, f"export.cached_dataset.{key}", f"args.{key}",
                                 f"--to_cached_dataset with --{key} true: ms-swift refuses it (\"{said}\"): a cached "
                                 "dataset is tokenized rows" + (", packed when it trains" if key == "packing" else
                                                                ", written whole"),
                                 f"drop --{key} here" + ("; pass --packing true to the training run" if
                                                         key == "packing" else "")))
    if (_on(job, "to_mcore") or _on(job, "to_hf")) and _on(job, "merge_lora"):
        out.append(about(job, WARNING, "export.mcore.merge_lora", "args.merge_lora",
                         "--merge_lora true with --to_mcore/--to_hf: ms-swift turns merge_lora off for the conversion "
                         "(\"does not support the `--merge_lora` parameter\")",
                         "merge first (lorakit merge), then convert the merged model; for LoRA delta weights: "
                         "megatron export"))
    return out


def _default_dir(job: Job, suffix: str) -> str | None:
    """ExportArguments._init_output_dir's default: CKPT-SUFFIX beside the checkpoint (the first
    adapter, or a model dir that holds an args.json), else ./MODEL_NAME-SUFFIX."""
    adapters = job.args.get("adapters")
    first = adapters[0] if isinstance(adapters, list) and adapters else adapters
    model = job.args.get("model")
    if isinstance(first, str) and first:
        base = first
    elif isinstance(model, str) and os.path.isfile(os.path.join(model, "args.json")):
        base = model
    elif isinstance(model, str) and model.strip("/"):
        base = os.path.join(".", model.rstrip("/").rsplit("/", 1)[-1])
    else:
        return None
    head, name = os.path.split(base.rstrip("/"))
    return os.path.join(head, f"{name}-{suffix}")


def _suffix(job: Job) -> str | None:
    method = job.args.get("quant_method")
    if _on(job, "to_peft_format"):
        return "peft"
    if method not in (None, "", "None"):
        bits = job.args.get("quant_bits")
        return f"{method}" + (f"-int{bits}" if bits not in (None, "") else "")
    for key, suffix in (("to_ollama", "ollama"), ("merge_lora", "merged"), ("to_mcore", "mcore"), ("to_hf", "hf"),
                        ("to_cached_dataset", "cached_dataset")):
        if _on(job, key):
            return suffix
    return None


def check_export_output(job: Job, facts: Facts) -> list[Finding]:
    """ms-swift refuses an existing output_dir unless --exist_ok true. A merge alone is lorakit
    merge's to guard (it moves the old dir aside only after a good merge, with --force)."""
    if job.command != "export" or _on(job, "exist_ok") or _asked(job) in ([], ["merge_lora"]):
        return []
    given = job.args.get("output_dir")
    suffix = _suffix(job)
    path = given if isinstance(given, str) and given else (_default_dir(job, suffix) if suffix else None)
    if not path or not os.path.exists(path):
        return []
    whose = "" if given else " (ms-swift's default name for this export)"
    return [about(job, ERROR, "export.output.exists", "args.output_dir",
                  f"output_dir {path}{whose} exists: ms-swift refuses to write into it "
                  f"(\"FileExistsError: args.output_dir: `{os.path.abspath(path)}` already exists.\")",
                  "move it away, pass another --output_dir, or -- --exist_ok true to write over it")]


def check_export_packages(job: Job, facts: Facts) -> list[Finding]:
    """Only for a launch here: a dry-run is often rendered for another machine."""
    if job.command != "export" or not facts.here:
        return []
    method = str(job.args.get("quant_method") or "")
    kind = "mcore" if _on(job, "to_mcore") or _on(job, "to_hf") else method
    if kind not in NEEDS:
        return []
    have = facts.packages(job.env)
    if have is None:
        return []
    groups, names, why = NEEDS[kind]
    if all(any(name in have for name in group) for group in groups):
        return []
    what = f"--quant_method {method}" if kind != "mcore" else "--to_mcore/--to_hf"
    return [about(job, ERROR, "export.needs", "args.quant_method" if kind != "mcore" else "args.to_mcore",
                  f"{what} needs {names}, not installed where `swift` runs: ms-swift stops at {why}",
                  f"pip install {names.replace(' and ', ' ').replace(' (or auto-gptq)', '')} in that environment "
                  "(ms-swift's examples pin the versions its quantizers are tested with)")]


CHECKS = [check_export_action, check_export_quant, check_export_output, check_export_packages]
