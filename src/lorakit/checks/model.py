"""Model-aware rules: a local model's files are well-formed, target_modules against the model's
real Linear layers, and whether ms-swift can tell a local model's model_type and template on its
own (from the snapshot of its registry, src/lorakit/data/swift_models_v*.json).

ms-swift only finds a wrong target after the weights have loaded ("Target modules {...} not
found in the base model"); lorakit reads config.json and the safetensors headers instead,
through modelconfig, which checks every field it reads.
"""

from __future__ import annotations

from pathlib import Path

from lorakit import archtable, modelconfig, modelinfo, planmath
from lorakit.swiftregistry import Registry, args_json, swift_model_name, swift_models  # noqa: F401 (the API)
from lorakit.checks.facts import Facts
from lorakit.checks.lora import _is_lora
from lorakit.errors import LorakitError
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import did_you_mean, suggestion

KEY = "args.target_modules"
SHOWN = 12  # how many of the model's Linear names a message lists


def _targets(job: Job) -> list[str]:
    value = job.args.get("target_modules", ["all-linear"])  # ms-swift's default
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _names(names) -> str:
    names = sorted(names)
    more = f", ... ({len(names)} in all)" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def check_model_files(job: Job, facts: Facts) -> list[Finding]:
    """A local model whose config.json, index or safetensors headers are malformed is an error
    (ms-swift would fail loading it); a shard the index names but the disk lacks, a warning."""
    model = job.args.get("model")
    local = facts.find_model(model) if isinstance(model, str) else None
    if local is None:
        return []
    try:
        modelinfo.load_model_info(local)
    except modelconfig.ModelFileError as exc:
        return [about(job, ERROR, exc.finding_code, "args.model", exc.message, exc.hint or "")]
    except LorakitError as exc:
        return [about(job, WARNING, "model.unreadable", "args.model", exc.message, exc.hint or "")]
    return []


def check_targets(job: Job, facts: Facts) -> list[Finding]:
    model = job.args.get("model")
    if not _is_lora(job) or not isinstance(model, str):
        return []
    targets = _targets(job)
    local = facts.find_model(model)
    if local is not None:
        try:
            info = modelinfo.load_model_info(local)
        except LorakitError:
            return []  # check_model_files reports it
        if info is None:
            return []
        targeted, unknown = planmath.resolve_targets(info, targets)
        if not unknown:
            return []
        if targeted:
            # peft refuses only when NO target matches (peft/tuners/tuners_utils.py inject_adapter:
            # `if not self.targeted_module_names`); the rest are ignored without a word
            return [about(job, WARNING, "model.targets.unmatched", KEY,
                          f"target_modules {', '.join(unknown)} match nothing in {local}: peft ignores them "
                          f"and puts LoRA on {', '.join(sorted(targeted))} only",
                          f"a typo? its Linear layers: {_names(info.linears)}")]
        return [about(job, ERROR, "model.targets.unknown", KEY,
                        f"target_modules {', '.join(unknown)} not in {local}: ms-swift would fail after "
                        f"loading the weights", f"its Linear layers: {_names(info.linears)}")]
    info = archtable.arch_info(model)
    if info is not None:
        _, unknown = planmath.resolve_targets(info, targets)
        names, where = set(info.linears), f"{model}'s published architecture"
    else:
        family = archtable.family_linear_names(model)
        if family is None:
            return []
        specials = (planmath.ALL_LINEAR, planmath.ALL_EMBEDDING, planmath.ALL_NORM)
        names, where = family[1], f"the {family[0]} family's usual layers"
        unknown = [t for t in targets if t not in specials and t.rsplit(".", 1)[-1] not in names]
    if not unknown:
        return []
    return [about(job, WARNING, "model.targets.unlikely", KEY,
                    f"target_modules {', '.join(unknown)} not among {where} (the model is not local, "
                    "so lorakit cannot read its layers)", f"usual Linear layers: {_names(names)}")]


def _set(pairs) -> str:
    return " ".join(f"--set {k}={v}" for k, v in pairs)


def _why(picked: str | None, name: str, model_type: str, registry: Registry) -> str:
    if picked:
        return f"its name is closest to the registered {picked}"
    others = registry.candidates(model_type)
    among = f" among {model_type}'s: {', '.join(others)}" if len(others) > 1 else ""
    return (f"no registered model is named like {name!r}, so these are ms-swift's first candidates: "
            f"choose the template the checkpoint was trained with{among}")


# Multimodal configs (swift/utils/hf_config.py:72 HfConfigFactory.is_multimodal): ms-swift refuses
# one it has no model_type for (model_meta.py:287-291) instead of loading it as a plain LLM.
_MULTIMODAL_KEYS = ("language_config", "llm_config", "text_config", "vit_config", "vision_config",
                    "audio_config", "thinker_config")


def _user(job: Job, key: str) -> str | None:
    # ms-swift treats an empty value as unset (model_meta.py:280 `model_type or ...`)
    value = job.args.get(key)
    return None if value is None or value == "" else str(value)


def _architecture(local: Path | None) -> tuple[dict | None, str | None]:
    """config.json and the architecture ms-swift maps (its first; 'null' for none)."""
    if local is None:
        return None, None
    try:
        config = modelconfig.read_config(local)
    except LorakitError:
        return None, None  # check_model_files reports it
    if config is None:
        return None, None
    return config, (config.get("architectures") or ["null"])[0]


def _older_minor_has(job: Job, model_type: str) -> bool:
    from lorakit.checks.modelage import present_type  # modelage imports this module

    return present_type(job, model_type)


def _invalid(job: Job, registry: Registry, arch: str | None) -> list[Finding]:
    """A model_type or template ms-swift does not have: it refuses to start (model_meta.py:237-238,
    swift/template/register.py:49-50; 3.x: swift/llm/model/register.py:621-622 and a KeyError)."""
    out, major = [], registry.major
    types = registry.table["architectures"].get(arch, []) if arch else []
    user_type, user_template = _user(job, "model_type"), _user(job, "template")
    if user_type is not None and user_type not in registry.types and not _older_minor_has(job, user_type):
        value = user_type
        owners = [t for t in (types or registry.types) if value in registry.candidates(t)]
        if owners:  # a 3.x model_type that 4.x folded into a broader one, e.g. qwen2_5 -> qwen2
            sets = [("model_type", owners[0])] + ([] if user_template else [("template", value)])
            hint = f"{value!r} is a template of model_type {owners[0]}: {_set(sets)}"
        else:
            close = did_you_mean(value, types, n=1) or did_you_mean(value, registry.types, n=1)
            mean = f"did you mean {close[0]!r}? " if close else ""
            listed = f"{arch}'s model types: {', '.join(types)}" if types else \
                "see ms-swift's supported models (`model_type` column)"
            hint = mean + listed
        out.append(about(job, ERROR, "model.type.invalid", "args.model_type",
                           f"model_type {value!r} is not an ms-swift {major}.x model type: ms-swift "
                           "refuses to start", hint))
    if user_template is not None and user_template not in registry.templates:
        out.append(about(job, ERROR, "model.template.invalid", "args.template",
                           f"template {user_template!r} is not an ms-swift {major}.x template: ms-swift "
                           "refuses to start", f"{suggestion(user_template, registry.templates)}see ms-swift's "
                           "supported models (`template` column)"))
    return out


def _mismatch(job: Job, registry: Registry, config: dict | None, arch: str | None, model: str) -> list[Finding]:
    """A text-only model_type for a multimodal dir: ms-swift takes any registered model_type as
    given and matches the architecture only when none is given (4.6.0 swift/model/model_meta.py
    _get_model_info; 3.12.6 swift/llm/model/register.py:611-622), so it loads a vision-language
    checkpoint with a text family's loader and template, and the rows fail to encode (ms-swift
    #4339: --model_type qwen2_5 on a Qwen2.5-VL dir). Between two text families (llama on a Qwen2
    dir) ms-swift loads it anyway, and the template rule speaks (tests/test_real_model_type.py).
    Judged only where the registry lists the architecture and the model_type."""
    user_type = _user(job, "model_type")
    archs = registry.table["architectures"]
    # 'null' (config.json names no architecture) lists every model type registered without one:
    # no evidence against the model_type given, which is what ms-swift asks for then
    types = archs.get(arch, []) if arch and arch != "null" else []
    if user_type is None or not types or user_type in types or config is None:
        return []
    own = [a for a, listed in archs.items() if user_type in listed]
    multimodal = any(isinstance(config.get(k), dict) for k in _MULTIMODAL_KEYS)
    if not own or not multimodal or not all(a.endswith("ForCausalLM") for a in own):
        return []
    return [about(job, ERROR, "model.type.mismatch", "args.model_type",
                  f"model_type {user_type} is not a model type of {model}: its config.json names {arch}, whose "
                  f"model types are {', '.join(types)}; ms-swift would load it with {user_type}'s loader and "
                  "template, and the rows fail to encode",
                  f"model_type: {types[0]}" + (f" (one of {', '.join(types)})" if len(types) > 1 else "")
                  + ", or drop model_type and let ms-swift match the architecture")]


def check_model_type(job: Job, facts: Facts) -> list[Finding]:
    """Whether ms-swift can resolve a model_type and a template for `model` on its own, the way
    4.6.0's get_model_info_meta (swift/model/model_meta.py:254-293, with _get_model_info at
    207-238) and get_template_meta (swift/template/register.py:31-51) do, as `swift sft` runs them
    first (swift/arguments/base_args/model_args.py:195, template_args.py:154). 3.12.6 refuses an
    ambiguous architecture too (swift/llm/model/register.py:612-619) but takes the template from
    the model_type. Where ms-swift certainly refuses to start: an error."""
    model = job.args.get("model")
    if job.command != "sft" or not isinstance(model, str) or not model:
        return []
    major = job.swift_major
    table = swift_models(major)
    exact = table is not None  # a snapshot of the target's own registry
    table = table or swift_models(4)
    if table is None:
        return []
    registry = Registry(table, major)
    local = facts.find_model(model)  # a hub id not in a local cache: ms-swift downloads it first
    config, arch = _architecture(local)
    if exact:
        invalid = _invalid(job, registry, arch) or _mismatch(job, registry, config, arch, model)
        if invalid:
            return invalid
    if config is None:
        return []
    user_type, user_template = _user(job, "model_type"), _user(job, "template")
    name = swift_model_name(model, major)
    matched = name if name in table["names"] else None
    from_args = args_json(Path(local), major)
    if from_args is None:
        return []
    model_type = user_type or (table["names"][matched] if matched else None) or from_args[0]
    template = user_template or from_args[1]
    if model_type is None:
        types = table["architectures"].get(arch, [])
        if exact:
            from lorakit.checks.modelage import architecture_types  # modelage imports this module

            types = architecture_types(job, arch, types)
        said = "config.json names no architecture (ms-swift's 'null'), which" if arch == "null" else arch
        if len(types) > 1:
            picked_type, picked_template, picked = registry.pick(name, types)
            # 3.x takes the template from the model_type (swift/llm/model/register.py:86-87 and
            # 668, swift/llm/argument/base_args/template_args.py:140-141); 4.x needs it too
            # unless the model type has one
            with_template = exact and major >= 4 and not template
            sets = [("model_type", picked_type)] + ([("template", picked_template)] if with_template else [])
            what = (f"ms-swift {major}.x cannot tell {name}'s model_type and refuses to start" if exact else
                    f"ms-swift {table['swift_version']} (lorakit has no snapshot of {major}.x's registry) "
                    f"cannot tell {name}'s model_type")
            return [about(job, ERROR if exact else WARNING, "model.type.ambiguous", "args.model",
                            f"{what}: {said} matches {', '.join(types)}",
                            f"{_set(sets)} ({_why(picked, name, picked_type, registry)})")]
        if not types:
            if any(isinstance(config.get(k), dict) for k in _MULTIMODAL_KEYS):
                return [about(job, ERROR if exact else WARNING, "model.type.unknown", "args.model",
                                f"ms-swift {major}.x has no model_type for architecture {arch} and refuses a "
                                "multimodal model without one", "set model_type and template in args to a "
                                "supported model's (see ms-swift's supported models), or register your own")]
            return [about(job, WARNING, "model.type.unknown", "args.model",
                            f"ms-swift {major}.x has no model_type for architecture {arch}",
                            "it would train with the empty 'dummy' template: set model_type and template in "
                            "args, or check ms-swift's supported models")]
        model_type = types[0]
    if template is not None or not exact or model_type not in registry.types:
        return []
    if registry.own_template(model_type, matched) is not None:
        return []
    _, picked_template, picked = registry.pick(name, [model_type])
    cands = registry.candidates(model_type)
    has = f"{len(cands)} ({', '.join(cands)})" if cands else "none"
    return [about(job, ERROR, "model.template.ambiguous", "args.model_type" if user_type else "args.model",
                    f"ms-swift {major}.x cannot tell {name}'s template and refuses to start: model_type "
                    f"{model_type} has {has}",
                    f"{_set([('template', picked_template)])} ({_why(picked, name, model_type, registry)})")]


CHECKS = [check_model_files, check_targets, check_model_type]
