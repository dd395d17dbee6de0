#!/usr/bin/env python3
"""Snapshot how ms-swift maps a model to a model_type, for lorakit's instant checks.

Run under a Python with ms-swift installed:
    python scripts/gen_swift_models.py            # writes src/lorakit/data/swift_models_v<MAJOR>.json
    python scripts/gen_swift_models.py --stdout

ms-swift (swift/model/model_meta.py) first matches the model's *name* (the last path part,
lowercased, '___' -> '.') against every registered hub id; failing that it maps config.json's
first architecture to model types and refuses to guess when there are several. lorakit
repeats both steps from this snapshot without importing ms-swift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def snapshot() -> dict:
    import swift
    try:
        from swift.model import MODEL_MAPPING  # 4.x
    except ImportError:  # 3.x
        from swift.llm import MODEL_MAPPING

    names: dict[str, str] = {}
    arch: dict[str, list[str]] = {}
    for model_type, meta in MODEL_MAPPING.items():
        for group in meta.model_groups:
            for model in group.models:
                for key in ("ms_model_id", "hf_model_id", "model_path"):
                    value = getattr(model, key, None)
                    if isinstance(value, str) and value:
                        names.setdefault(value.rsplit("/", 1)[-1].lower(), model_type)
        for name in (meta.architectures or ["null"]):
            arch.setdefault(name, []).append(model_type)
    return {"swift_version": swift.__version__, "generated_by": "scripts/gen_swift_models.py",
            "names": dict(sorted(names.items())), "architectures": dict(sorted(arch.items()))}


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
