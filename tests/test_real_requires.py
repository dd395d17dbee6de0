"""The real ms-swift 3.12.6 (in its own environment, with its transformers 4.57.6) on a model whose
config.json names a model_type only a newer transformers knows, registered by ms-swift with a
transformers floor that environment misses: ms-swift warns "Please install the package", resolves
the model type and template, then fails loading the model with transformers' own error (ms-swift
#2799's shape). lorakit, run from its own environment (transformers 5.x, which knows the type),
judges the environment the `swift` on PATH runs in, and refuses it before the launch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import swift3_python
from test_real_swift import swift_env, tiny  # noqa: F401  (tiny: the module-scoped fixture)

pytestmark = pytest.mark.real

NATIVE = "ministral3"  # transformers 5.x has it, 4.57.6 does not (the snapshots' lists say which)
MODEL_TYPE = "mistral_2512"  # ms-swift 3.12.6 registers it with transformers>=5.0.0.dev0


def swift3_fails(flags: list[str], cwd: Path) -> tuple[dict, str]:
    """Run the real ms-swift 3.x `swift sft FLAGS` from its own environment (first on PATH), which
    must fail: (that environment, what it printed)."""
    bin3 = str(Path(swift3_python()).parent)
    env3 = dict(swift_env(), PATH=bin3 + os.pathsep + os.environ["PATH"])
    done = subprocess.run([str(Path(bin3) / "swift"), "sft", *flags], cwd=cwd, env=env3, capture_output=True,
                          text=True, timeout=600)
    said = done.stdout + done.stderr
    assert done.returncode != 0, said[-3000:]
    return env3, said


def test_a_model_type_only_a_newer_transformers_knows_fails_ms_swift_and_lorakit_says_so_first(tmp_path, tiny):  # noqa: F811
    model, data, _ = tiny
    local = tmp_path / "tiny-newtype"
    shutil.copytree(model, local)
    config = json.loads((local / "config.json").read_text())
    (local / "config.json").write_text(json.dumps({**config, "model_type": NATIVE}))
    flags = ["--model", str(local), "--model_type", MODEL_TYPE, "--dataset", str(data), "--train_type", "lora",
             "--check_model", "false", "--max_steps", "1", "--torch_dtype", "float32",
             "--output_dir", str(tmp_path / "out"), "--dataloader_num_workers", "0"]
    env3, said = swift3_fails(flags, tmp_path)
    assert '[WARNING:swift] Please install the package: `pip install "transformers>=5.0.0.dev0"' in said, said[-3000:]
    assert (f"ValueError: The checkpoint you are trying to load has model type `{NATIVE}` but Transformers "
            "does not recognize this architecture") in said, said[-3000:]

    # lorakit from its own environment (transformers 5.x), the 3.x `swift` first on PATH
    check = subprocess.run([sys.executable, "-m", "lorakit", "validate", "-p", "single", "--swift-version", "3",
                            "--", *flags], cwd=tmp_path, env=env3, capture_output=True, text=True, timeout=120)
    assert check.returncode == 2, check.stderr
    assert (f"error[model.requires.transformers] args.model (-- extra flags): {local}'s config.json has model_type "
            f"'{NATIVE}', which the installed transformers 4.57.6 does not know, and ms-swift registers model_type "
            f"{MODEL_TYPE} with 'transformers>=5.0.0.dev0': loading the model fails") in check.stderr, check.stderr
    # with lorakit's own `swift` (ms-swift 4.x, transformers 5.x) first on PATH the same dir is no error of this kind
    plain = subprocess.run([sys.executable, "-m", "lorakit", "validate", "-p", "single", "--", *flags[:2],
                            *flags[4:]], cwd=tmp_path, env=swift_env(), capture_output=True, text=True, timeout=120)
    assert "model.requires.transformers" not in plain.stderr, plain.stderr
