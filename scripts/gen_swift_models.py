#!/usr/bin/env python3
"""Snapshot how ms-swift maps a model to a model_type and a template, for lorakit's instant checks.

Run under a Python with ms-swift installed:
    python scripts/gen_swift_models.py            # writes src/lorakit/data/swift_models_v<MAJOR>.json
    python scripts/gen_swift_models.py --stdout

ms-swift 4.x (swift/model/model_meta.py get_model_info_meta) first matches the model's *name* (the
last path part, lowercased, '___' -> '.') against every registered hub id, and a matched model
group's template overrides its model type's; failing that (and without an args.json) it maps
config.json's first architecture to model types and refuses to guess when there are several.
The template (swift/template/register.py get_template_meta) is then --template, else args.json's,
else the (group's) template, else the model type's only candidate template; several or none is
a refusal. ms-swift 3.x has one template per model type and no group templates. lorakit repeats
these steps from this snapshot without importing ms-swift.

Keys: names (hub name -> model_type, the first match as ms-swift iterates), name_templates (hub
name -> its group's template, where the group sets one), architectures (first architecture ->
model types, in ms-swift's order; 'null' for none), model_types (model_type -> its own template
and its candidate templates, in ms-swift's order, and the packages ModelMeta.requires names, which
ms-swift only warns about: checks/requires.py), templates (every registered template).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def snapshot() -> dict:
    import swift
    try:  # 4.x
        from swift.model import MODEL_MAPPING
        from swift.template import TEMPLATE_MAPPING
    except ImportError:  # 3.x
        from swift.llm import MODEL_MAPPING, TEMPLATE_MAPPING

    names: dict[str, str] = {}
    name_templates: dict[str, str] = {}
    arch: dict[str, list[str]] = {}
    types: dict[str, dict] = {}
    for model_type, meta in MODEL_MAPPING.items():
        for group in meta.model_groups:
            for model in group.models:
                for key in ("ms_model_id", "hf_model_id", "model_path"):
                    value = getattr(model, key, None)
                    if not (isinstance(value, str) and value):
                        continue
                    name = value.rsplit("/", 1)[-1].lower()
                    if name in names:
                        continue  # ms-swift returns the first match
                    names[name] = model_type
                    template = getattr(group, "template", None)  # 4.x only
                    if template is not None:
                        name_templates[name] = template
        for name in (meta.architectures or ["null"]):
            arch.setdefault(name, []).append(model_type)
        candidates = getattr(meta, "candidate_templates", None)  # 4.x
        if candidates is None:
            candidates = [meta.template] if meta.template else []
        types[model_type] = {"template": meta.template, "candidates": list(candidates)}
        if getattr(meta, "requires", None):  # ModelMeta.check_requires warns when one is unmet
            types[model_type]["requires"] = list(meta.requires)
        if getattr(meta, "torch_dtype", None) is not None:  # wins over config.json's (checks/precision.py)
            types[model_type]["torch_dtype"] = str(meta.torch_dtype).removeprefix("torch.")
    # the model types this environment's transformers maps (its AutoConfig): checks/requires.py
    # refuses a too-old transformers only for a config.json model_type some transformers knows
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return {"swift_version": swift.__version__, "generated_by": "scripts/gen_swift_models.py",
            "transformers_version": transformers.__version__,
            "transformers_model_types": sorted(CONFIG_MAPPING_NAMES),
            "names": dict(sorted(names.items())), "name_templates": dict(sorted(name_templates.items())),
            "architectures": dict(sorted(arch.items())), "model_types": dict(sorted(types.items())),
            "templates": sorted(TEMPLATE_MAPPING)}


def main() -> int:
    data = snapshot()
    text = json.dumps(data, indent=0, sort_keys=True, ensure_ascii=False) + "\n"
    if "--stdout" in sys.argv:
        sys.stdout.write(text)
        return 0
    major = data["swift_version"].split(".")[0]
    out = Path(__file__).resolve().parents[1] / "src" / "lorakit" / "data" / f"swift_models_v{major}.json"
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
