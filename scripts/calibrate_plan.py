"""The analytic plan against the simulated step, over a grid; prints a markdown table.

    LORAKIT_SIM_PYTHON=.venv/bin/python python scripts/calibrate_plan.py [--quick] [--out table.md]

Each row runs lorakit/simstep.py (ms-swift's LoRA step on fake tensors, MemTracker's peak) in the
Python that has torch/transformers/peft, and planmath.memory_plan for the same one-process
setting. The grid: Qwen2.5 / Qwen3 / Llama 3.x from 0.5B to 32B, 512-8192 tokens, batch 1-4,
rank 8-64, attention-only and all-linear, gradient checkpointing on and off. A 32B model at 8k
tokens is minutes of fake ops on a CPU: this is a script, not a test (tests/test_calibration.py
runs the small configs). Exits 1 when a row is off by more than --tolerance.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lorakit import archtable, planmath, simulate  # noqa: E402

ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL = ["all-linear"]
# (model, max_length, batch, rank, targets, gradient checkpointing)
GRID = [
    ("Qwen/Qwen2.5-0.5B", 512, 1, 8, ALL, True),
    ("Qwen/Qwen2.5-0.5B", 2048, 4, 64, ATTN, False),
    ("Qwen/Qwen3-0.6B", 1024, 2, 16, ALL, False),
    ("Qwen/Qwen3-0.6B", 4096, 1, 8, ATTN, True),
    ("Qwen/Qwen3-1.7B", 2048, 1, 8, ALL, True),
    ("Qwen/Qwen3-1.7B", 1024, 1, 32, ALL, False),
    ("meta-llama/Llama-3.2-1B", 8192, 1, 8, ALL, True),
    ("meta-llama/Llama-3.2-1B", 2048, 2, 64, ALL, False),
    ("Qwen/Qwen2.5-3B", 4096, 1, 16, ATTN, True),
    ("Qwen/Qwen2.5-7B", 2048, 1, 8, ALL, True),
    ("Qwen/Qwen2.5-7B", 1024, 1, 8, ALL, False),
    ("Qwen/Qwen3-8B", 2048, 1, 8, ALL, True),
    ("Qwen/Qwen3-8B", 8192, 1, 64, ATTN, True),
    ("meta-llama/Llama-3.1-8B", 4096, 2, 16, ALL, True),
    ("meta-llama/Llama-3.1-8B", 1024, 1, 8, ATTN, False),
    ("Qwen/Qwen2.5-14B", 2048, 1, 32, ALL, True),
    ("Qwen/Qwen3-32B", 2048, 1, 8, ALL, True),
    ("Qwen/Qwen2.5-32B", 512, 4, 8, ATTN, False),
]
QUICK = [g for g in GRID if "0.5B" in g[0] or "0.6B" in g[0] or "1.7B" in g[0]]


def row(model, length, batch, rank, targets, ckpt, python) -> dict:
    info = archtable.arch_info(model)
    lay = {"rank": rank, "targets": targets, "lora_dropout": 0.05, "dtype": "bfloat16", "micro_batch": batch,
           "max_length": length, "grad_ckpt": ckpt, "world_size": 1, "zero_stage": 0}
    started = time.monotonic()
    sim = simulate.run_spec(simulate.spec_of(model, info, lay, None), python)
    plan = planmath.memory_plan(info, rank=rank, targets=targets, micro_batch=batch, max_length=length,
                                grad_ckpt=ckpt)
    return {"model": model, "tokens": f"{batch} x {length}", "rank": rank,
            "targets": "all-linear" if targets == ALL else "attention", "ckpt": "on" if ckpt else "off",
            "plan": plan["total"], "sim": sim["peak_bytes"], "off": plan["total"] / sim["peak_bytes"] - 1,
            "lora_ok": plan["lora_params"] == sim["trainable_params"], "seconds": time.monotonic() - started}


def table(rows: list) -> str:
    gib = 1024 ** 3
    lines = ["| model | batch x length | r | targets | ckpt | plan GiB | simulated GiB | plan vs sim |",
             "|---|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['tokens']} | {r['rank']} | {r['targets']} | {r['ckpt']} | "
                     f"{r['plan'] / gib:.2f} | {r['sim'] / gib:.2f} | {r['off']:+.1%} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the models up to 1.7B only")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    python = os.environ.get("LORAKIT_SIM_PYTHON") or simulate.swift_python()
    rows = []
    for setting in QUICK if args.quick else GRID:
        rows.append(row(*setting, python=python))
        r = rows[-1]
        print(f"{r['model']} {r['tokens']} r{r['rank']} {r['targets']} ckpt {r['ckpt']}: {r['off']:+.2%} "
              f"({r['seconds']:.0f} s){'' if r['lora_ok'] else ' LoRA COUNT DIFFERS'}", file=sys.stderr, flush=True)
    text = table(rows)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    bad = [r for r in rows if abs(r["off"]) > args.tolerance or not r["lora_ok"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
