#!/usr/bin/env python3
"""Write the seed's three scripts (train_ddp_device_map.sh, train_zero2.sh, merge.sh) from the
built-in presets, as `lorakit train -p NAME --dry-run --format sh` renders them for ms-swift 4.x.

Usage:  python scripts/gen_seed_scripts.py           rewrite scripts/*.sh
        python scripts/gen_seed_scripts.py --check   exit 1 if a script drifted (tests run this)
"""

from __future__ import annotations

import sys
from pathlib import Path

from lorakit import exports, overrides, presets
from lorakit.fixups import apply_fixups
from lorakit.job import build_job
from lorakit.render import render

HERE = Path(__file__).resolve().parent
# merge.sh keeps the seed's placeholder paths; `lorakit merge --adapters CKPT` fills in real ones.
MERGE_PATHS = [("args.adapters", "/path/to/output/checkpoint-xxx"),
               ("args.output_dir", "/path/to/merged_model")]
SCRIPTS = {
    "train_ddp_device_map.sh": ("ddp_device_map", []),
    "train_zero2.sh": ("zero2", []),
    "merge.sh": ("merge", MERGE_PATHS),
}
MERGE_NOTE = "# Replace both paths, or run: lorakit merge --adapters CHECKPOINT [--output-dir DIR]"


def script_text(preset: str, sets: list) -> str:
    resolved = overrides.apply_overrides(presets.load(preset),
                                         [(key, value, "scripts/gen_seed_scripts.py") for key, value in sets])
    # env {}: the GPU list of the preset, never the CUDA_VISIBLE_DEVICES of whoever regenerates.
    job = apply_fixups(build_job(resolved, {}, swift_major=4, swift_source="ms-swift 4.x"))
    text = exports.sh_script(job, render(job, {}))
    if job.command == "export":
        first, rest = text.split("\n", 2)[:2], text.split("\n", 2)[2]
        text = "\n".join(first + [MERGE_NOTE, rest])
    return text


def expected() -> dict[str, str]:
    return {name: script_text(preset, sets) for name, (preset, sets) in SCRIPTS.items()}


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    drifted = []
    for name, text in expected().items():
        path = HERE / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        drifted.append(name)
        if not check:
            path.write_text(text, encoding="utf-8")
            path.chmod(0o755)
    if check and drifted:
        print("drifted from what lorakit renders: " + ", ".join(drifted)
              + " (run: python scripts/gen_seed_scripts.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
