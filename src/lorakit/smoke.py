"""A real, tiny end-to-end run through lorakit's own train and merge, on this machine.

Proof that the stack (lorakit -> swift -> torch) works before anyone burns GPU hours: a tiny
random model and dataset are generated locally (no hub), trained for 2 steps on one process,
merged through checkpoint discovery, and the merged model is loaded for one forward pass.

Everything that needs torch runs under the python of the `swift` on PATH, in a child process:
that is the stack a launch uses, and it may be another environment than lorakit's own (pipx
installs lorakit alone). lorakit.tiny is run there from its file, so that environment needs no
lorakit. Any failure is one "smoke: <step> failed" line, exit 1, and the files are kept.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import yaml

STEP_TIMEOUT = 900  # s; a 2-step CPU run takes well under a minute

# Run under swift's python: argv = [tiny.py, root]. tiny.py imports only the stdlib at the top.
_MAKE = """
import runpy, sys
from pathlib import Path
tiny, root = runpy.run_path(sys.argv[1]), Path(sys.argv[2])
tiny["make_tiny_model"](root / tiny["TINY_MODEL_DIR"])
tiny["make_tiny_dataset"](root / "data.jsonl", n=16)
"""

# argv = [merged dir]; prints one line for the report.
_FORWARD = """
import sys, torch, transformers
model = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1])
with torch.no_grad():
    logits = model(torch.tensor([[1, 2, 3, 4]])).logits
if not torch.isfinite(logits).all():
    sys.exit("the merged model's logits are not finite")
print(f"logits {tuple(logits.shape)}, finite")
"""


class _Failed(Exception):
    def __init__(self, step: str, why: str, output: str = ""):
        super().__init__(step)
        self.step, self.why, self.output = step, why, output


def _run(step: str, argv: list[str], cwd: Path) -> str:
    """stdout of `argv`; _Failed when it cannot start, times out or exits non-zero."""
    try:
        result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    except OSError as exc:
        raise _Failed(step, f"cannot run {argv[0]}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise _Failed(step, f"still running after {STEP_TIMEOUT} s") from None
    if result.returncode != 0:
        raise _Failed(step, f"exit {result.returncode}", (result.stderr or result.stdout)[-4000:])
    return result.stdout


def _preset(root: Path) -> Path:
    from lorakit.tiny import TINY_MODEL_DIR, tiny_swift_args  # stdlib-only at import time

    args = {"model": str(root / TINY_MODEL_DIR), "dataset": [str(root / "data.jsonl")],
            "output_dir": str(root / "output"), "torch_dtype": "float32", "dataloader_num_workers": 0,
            "max_length": 128, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
            **tiny_swift_args()}
    preset = root / "smoke.yaml"
    preset.write_text(yaml.safe_dump({"extends": "single", "args": args}), encoding="utf-8")
    return preset


def _steps(root: Path, python: str, say: Callable[[str], None]) -> None:
    from lorakit import tiny

    start = time.monotonic()
    _run("tiny model", [python, "-c", _MAKE, tiny.__file__, str(root)], root)
    say(f"smoke: tiny model and dataset in {root} (built by {python})")
    lorakit = [sys.executable, "-m", "lorakit"]
    for step, argv in (("train", ["train", "-p", str(_preset(root))]),
                       ("merge", ["merge", "--adapters", str(root / "output")])):
        _run(step, lorakit + argv, root)
        say(f"smoke: {step} ok ({time.monotonic() - start:.0f} s)")
    merged = sorted(root.glob("output/v*-*/checkpoint-*-merged"))
    if not merged:
        raise _Failed("merge", "it exited 0 but wrote no checkpoint-*-merged dir")
    shown = _run("forward pass", [python, "-c", _FORWARD, str(merged[-1])], root).strip()
    say(f"smoke: {shown.splitlines()[-1] if shown else 'forward pass ok'} from {merged[-1]} "
        f"({time.monotonic() - start:.0f} s)")


def run(say: Callable[[str], None] = print, workdir: Path | None = None, python: str | None = None) -> int:
    """0 when the tiny model, train, merge and a forward pass all worked, else 1.
    `python`: the interpreter of the `swift` on PATH (default: found as doctor finds it)."""
    if python is None:
        from lorakit.doctor import swift_python

        python = swift_python(os.environ)[1] or sys.executable
    root = Path(workdir or tempfile.mkdtemp(prefix="lorakit-smoke-"))
    try:
        _steps(root, python, say)
    except _Failed as failed:
        say(f"smoke: {failed.step} failed ({failed.why}); kept {root}")
        if failed.output:
            say(failed.output.rstrip())
        return 1
    except OSError as exc:  # writing the preset into root, say
        say(f"smoke: setup failed ({exc}); kept {root}")
        return 1
    if workdir is None:  # our own temp dir: nothing to keep after a success (a failure keeps it)
        shutil.rmtree(root, ignore_errors=True)
        say(f"smoke: ok; removed {root}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
