"""A real, tiny end-to-end run through lorakit's own train and merge, on this machine.

Proof that the stack (lorakit -> swift -> torch) works before anyone burns GPU hours: a tiny
random model and dataset are generated locally (no hub), trained for 2 steps on one process,
merged through checkpoint discovery, and the merged model is loaded for one forward pass.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import yaml


def _lorakit(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lorakit", *args], cwd=cwd, capture_output=True,
                          text=True)


def _forward(merged: Path) -> str:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(merged)
    with torch.no_grad():
        logits = model(torch.tensor([[1, 2, 3, 4]])).logits
    if not torch.isfinite(logits).all():
        raise RuntimeError("the merged model's logits are not finite")
    return f"logits {tuple(logits.shape)}, finite"


def run(say: Callable[[str], None] = print, workdir: Path | None = None) -> int:
    """0 when train, merge and a forward pass all worked; otherwise the failing step's code."""
    from lorakit.tiny import make_tiny_dataset, make_tiny_model, tiny_swift_args

    root = Path(workdir or tempfile.mkdtemp(prefix="lorakit-smoke-"))
    start = time.monotonic()
    model = make_tiny_model(root / "tiny-random-chatml")
    data = make_tiny_dataset(root / "data.jsonl", n=16)
    preset = root / "smoke.yaml"
    args = {"model": str(model), "dataset": [str(data)], "output_dir": str(root / "output"),
            "torch_dtype": "float32", "dataloader_num_workers": 0, "max_length": 128,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], **tiny_swift_args()}
    preset.write_text(yaml.safe_dump({"extends": "single", "args": args}), encoding="utf-8")
    say(f"smoke: tiny model and dataset in {root}")
    for step, argv in (("train", ["train", "-p", str(preset)]),
                       ("merge", ["merge", "--adapters", str(root / "output")])):
        result = _lorakit(argv, root)
        if result.returncode != 0:
            say(f"smoke: {step} failed (exit {result.returncode}):\n" + result.stderr[-4000:])
            return result.returncode
        say(f"smoke: {step} ok ({time.monotonic() - start:.0f} s)")
    merged = sorted(root.glob("output/v*-*/checkpoint-*-merged"))
    if not merged:
        say("smoke: merge exited 0 but no checkpoint-*-merged dir was written")
        return 1
    say(f"smoke: {_forward(merged[-1])} from {merged[-1]} ({time.monotonic() - start:.0f} s)")
    if workdir is None:  # our own temp dir: nothing to keep after a success (a failure keeps it)
        shutil.rmtree(root, ignore_errors=True)
        say(f"smoke: ok; removed {root}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
