"""The real ms-swift on a model whose config.json names a model_type the installed transformers
does not know (ModernBERT on a transformers before 4.48, ms-swift #2799): ms-swift resolves the
model_type and template, then fails loading the model with transformers' own error. lorakit
refuses that launch when ms-swift's transformers floor for the model type is unmet too (shown
with an older transformers' site-packages first on PYTHONPATH, as the user's machine had it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_real_swift import swift_env, tiny  # noqa: F401  (tiny: the module-scoped fixture)
from test_requires import fake_site

pytestmark = pytest.mark.real

UNKNOWN = "modernbert_next"


def test_a_model_type_transformers_does_not_know_fails_ms_swift_and_lorakit_says_so_first(tmp_path, tiny):  # noqa: F811
    model, data, _ = tiny
    local = tmp_path / "tiny-newtype"
    shutil.copytree(model, local)
    config = json.loads((local / "config.json").read_text())
    (local / "config.json").write_text(json.dumps({**config, "model_type": UNKNOWN}))
    flags = ["--model", str(local), "--model_type", "qwen2", "--template", "qwen", "--dataset", str(data),
             "--tuner_type", "lora", "--check_model", "false", "--max_steps", "1", "--torch_dtype", "float32",
             "--output_dir", str(tmp_path / "out"), "--dataloader_num_workers", "0"]
    done = subprocess.run(["swift", "sft", *flags], cwd=tmp_path, env=swift_env(), capture_output=True, text=True,
                          timeout=600)
    said = done.stdout + done.stderr
    assert done.returncode != 0, said[-3000:]
    assert (f"ValueError: The checkpoint you are trying to load has model type `{UNKNOWN}` but Transformers "
            "does not recognize this architecture") in said, said[-3000:]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*/checkpoint-*"))

    site = fake_site(tmp_path, "4.30.0")  # qwen2 is registered with transformers>=4.37
    env = dict(swift_env(), PYTHONPATH=str(site))
    check = subprocess.run([sys.executable, "-m", "lorakit", "validate", "-p", "single", "--", *flags],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 2, check.stderr
    assert (f"error[model.requires.transformers] args.model (-- extra flags): {local}'s config.json has model_type "
            f"'{UNKNOWN}', which the installed transformers 4.30.0 does not know, and ms-swift registers model_type "
            "qwen2 with 'transformers>=4.37': loading the model fails") in check.stderr, check.stderr
    # the same machine with its own transformers (which knows neither) only has the floor met: no error
    plain = subprocess.run([sys.executable, "-m", "lorakit", "validate", "-p", "single", "--", *flags],
                           cwd=tmp_path, env=swift_env(), capture_output=True, text=True, timeout=120)
    assert "model.requires" not in plain.stderr, plain.stderr
    assert os.environ.get("PYTHONPATH") != str(site)
