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


def _minor(job: Job) -> tuple[int, int]:
    from lorakit.flaghistory import targeted

    return targeted(job.swift_major, job.swift_version)


def _ckpt(job: Job) -> tuple[str | None, dict]:
    from lorakit.ckptargs import ckpt_args

    return ckpt_args(job.args, job.command)


def _quant(job: Job) -> tuple[str | None, object, str | None]:
    """(quant_method, quant_bits, the args.json they came from): 3.5+'s load_args_from_ckpt fills an
    unset one from the checkpoint's (a QLoRA run records bnb/4); a cached-dataset export reads none."""
    method, bits = job.args.get("quant_method"), job.args.get("quant_bits")
    method = None if method in (None, "", "None") else method
    if _minor(job) < (3, 5) or _on(job, "to_cached_dataset") or as_bool(job.args.get("load_args", True)) is False:
        return method, bits, None
    folder, recorded = _ckpt(job)
    if folder is None:
        return method, bits, None
    carried_bits = bits if bits not in (None, "") else recorded.get("quant_bits")  # each unset key is filled
    if method is not None:
        # only fp8 gets this far without bits: ExportArguments.__post_init__ refuses any other
        # method without them before the args.json is read (checks/features.py says so)
        return method, carried_bits, None
    carried = recorded.get("quant_method")
    if carried in (None, ""):
        return None, bits, None
    return carried, carried_bits, os.path.join(folder, "args.json")


def asked(job: Job) -> list[str]:
    """The export actions the job asks ms-swift for, in SwiftExport.run's order."""
    return [k for k in ACTIONS if (_quant(job)[0] is not None if k == "quant_method" else _on(job, k))]


def check_export_action(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "export" or asked(job):
        return []
    if job.args.get("quant_bits") not in (None, ""):
        return []  # a quantization without its method: checks/features.py says that, once
    return [about(job, ERROR, "export.nothing", "args", "swift export with none of --merge_lora true, --quant_method, "
                  "--to_ollama, --to_cached_dataset, --to_mcore, --to_hf, --push_to_hub: ms-swift reads the arguments "
                  "and exits 0 having written nothing",
                  "to merge a LoRA checkpoint: lorakit merge --adapters CKPT; to quantize: -- --quant_method awq "
                  "--quant_bits 4 --dataset DATA")]


def check_export_carried_quant(job: Job, facts: Facts) -> list[Finding]:
    """SwiftExport.run tries quant_method before to_ollama, to_mcore/to_hf and push_to_hub: a QLoRA
    checkpoint's recorded bnb then quantizes instead of what was asked (and names the output dir)."""
    if job.command != "export":
        return []
    method, bits, source = _quant(job)
    instead = [k for k in ("to_ollama", "to_mcore", "to_hf", "push_to_hub") if _on(job, k)]
    if source is None or not instead:
        return []
    return [about(job, WARNING, "export.quant.carried", "args.adapters" if job.args.get("adapters") else "args.model",
                  f"{source} records quant_method {method} (a QLoRA run): ms-swift carries it over "
                  f"(load_args_from_ckpt) and, since it tries quant_method first, writes a {method}-quantized model "
                  f"instead of --{instead[0]}",
                  "merge first (lorakit merge --adapters CKPT), then export the merged dir as --model; or pass the "
                  "--quant_method you want")]


# SwiftExport.run's if/elif chain after a merge: only the first of these that is asked runs
BRANCHES = ACTIONS[2:]


def check_export_branches(job: Job, facts: Facts) -> list[Finding]:
    """Two asked in one command: the later ones are silently not done (4.6.0 pipelines/export/
    export.py:30-50; 3.12.6 llm/export/export.py), e.g. --quant_method with --push_to_hub pushes
    nothing (ms-swift's docs push the quantized dir in a second export). A push that is reached
    with no hub_model_id fails at its `assert repo_id is not None` (hub/hub.py:209)."""
    if job.command != "export":
        return []
    source = _quant(job)[2]
    asked_now = [k for k in asked(job) if k in BRANCHES]  # ACTIONS keeps run()'s order
    out = []
    if len(asked_now) > 1 and not (asked_now[0] == "quant_method" and source is not None):  # carried: said above
        first, rest = asked_now[0], asked_now[1:]
        shown = ", ".join(f"--{k}" for k in rest)
        out.append(about(job, WARNING, "export.action.skipped", f"args.{rest[0]}",
                         f"{shown} is not done: swift export runs only the first of --quant_method, --to_ollama, "
                         f"--to_cached_dataset, --to_hf/--to_mcore, --push_to_hub that is asked (here --{first})",
                         f"export twice: first --{first}, then the other with --model set to the first one's "
                         "output dir"))
    if asked_now[:1] == ["push_to_hub"] and job.args.get("hub_model_id") in (None, ""):
        out.append(about(job, ERROR, "export.push.hub_model_id", "args.push_to_hub",
                         "push_to_hub true with no hub_model_id: ms-swift stops at \"Please enter a valid "
                         "hub_model_id\" when it creates the repo",
                         "add --hub_model_id OWNER/NAME (and --hub_token, or MODELSCOPE_API_TOKEN / HF_TOKEN)"))
    return out


def check_export_quant(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "export":
        return []
    out: list[Finding] = []
    method = str(job.args.get("quant_method") or "")
    dataset = job.args.get("dataset")
    from_ckpt = _on(job, "load_data_args") and job.args.get("adapters")
    if method in CALIBRATED and dataset in (None, "", []) and not from_ckpt:
        # __post_init__ refuses gptq and awq; gptq_v2 gets past it and fails after the model has loaded
        said = ("ms-swift refuses it (\"self.dataset: [], Please input the quant dataset.\")" if method != "gptq_v2"
                else "ms-swift loads the model and only then finds nothing to calibrate on")
        out.append(about(job, ERROR, "export.quant.dataset", "args.quant_method",
                         f"quant_method {method} calibrates on data, and no --dataset is given: {said}",
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
    if (_on(job, "to_mcore") or _on(job, "to_hf")) and _on(job, "merge_lora") and _minor(job) >= (3, 10):
        # 3.10.2+ turns it off in __post_init__; before, run() merged and converted the merged model
        out.append(about(job, WARNING, "export.mcore.merge_lora", "args.merge_lora",
                         "--merge_lora true with --to_mcore/--to_hf: ms-swift turns merge_lora off for the conversion "
                         "(\"does not support the `--merge_lora` parameter\")",
                         "merge first (lorakit merge), then convert the merged model; for LoRA delta weights: "
                         "megatron export"))
    return out


def _suffix(job: Job) -> str | None:
    """_init_output_dir's suffix, in the release's order (3.0 put merged before a quantization)."""
    minor = _minor(job)
    method, bits, _ = _quant(job)
    quant = None
    if method is not None:
        quant = f"{method}-int{bits}" if bits not in (None, "") or minor < (3, 6) else f"{method}"
    merged = _on(job, "merge_lora") and not (minor >= (3, 10) and (_on(job, "to_mcore") or _on(job, "to_hf")))
    order = [("to_peft_format", "peft"), ("merged", "merged"), ("quant", quant), ("to_ollama", "ollama")] \
        if minor < (3, 1) else [("to_peft_format", "peft"), ("quant", quant), ("to_ollama", "ollama"),
                                ("merged", "merged"), ("to_mcore", "mcore"), ("to_hf", "hf"),
                                ("to_cached_dataset", "cached_dataset")]
    for key, suffix in order:
        on = {"merged": merged, "quant": quant is not None}.get(key, None)
        if on if on is not None else _on(job, key):
            return suffix
    return None


def _default_dir(job: Job, suffix: str) -> str | None:
    """CKPT-SUFFIX beside get_ckpt_dir's checkpoint, else ./MODEL_NAME-SUFFIX (get_model_name)."""
    from lorakit.swiftregistry import model_name

    folder, _ = _ckpt(job)
    model = job.args.get("model")
    if folder is None:
        if not isinstance(model, str) or not model.strip("/"):
            return None
        folder = os.path.join(".", model_name(model, job.swift_major))
    head, name = os.path.split(folder.rstrip("/"))
    return os.path.join(head, f"{name}-{suffix}")


def check_export_output(job: Job, facts: Facts) -> list[Finding]:
    """ms-swift refuses an existing output_dir unless --exist_ok true (3.1+; 3.0 always). A merge
    alone is lorakit merge's to guard (it moves the old dir aside only after a good merge, --force)."""
    if job.command != "export" or _on(job, "exist_ok") or asked(job) in ([], ["merge_lora"]):
        return []
    given = job.args.get("output_dir")
    if isinstance(given, str) and not given.strip():
        return [about(job, ERROR, "export.output.empty", "args.output_dir",
                      "output_dir is empty: ms-swift makes it the current directory, and then refuses it as existing "
                      "(or, with --exist_ok true, writes the export among the files here)",
                      "name a new directory, or leave --output_dir out for ms-swift's default")]
    suffix = _suffix(job)
    path = os.path.expanduser(given) if isinstance(given, str) else (_default_dir(job, suffix) if suffix else None)
    if not path or not os.path.exists(path):
        return []
    minor, full = _minor(job), os.path.abspath(path)
    raised = (f"AssertionError: args.output_dir: {full} already exists." if minor < (3, 1) else
              f"FileExistsError: args.output_dir: {full} already exists." if minor < (3, 2) else
              f"FileExistsError: args.output_dir: `{full}` already exists.")
    whose = "" if isinstance(given, str) else " (ms-swift's default name for this export)"
    hint = "move it away, or pass another --output_dir" + (", or -- --exist_ok true to write over it"
                                                          if minor >= (3, 1) else "")
    return [about(job, ERROR, "export.output.exists", "args.output_dir",
                  f"output_dir {path}{whose} exists: ms-swift refuses to write into it (\"{raised}\")", hint)]


def check_export_packages(job: Job, facts: Facts) -> list[Finding]:
    """Only for a launch here: a dry-run is often rendered for another machine."""
    if job.command != "export" or not facts.here:
        return []
    method = str(_quant(job)[0] or "")
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


CHECKS = [check_export_action, check_export_carried_quant, check_export_branches, check_export_quant,
          check_export_output, check_export_packages]
