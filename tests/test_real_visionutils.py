"""The real ms-swift 4.6.0 loading a Qwen2-VL directory with a qwen_vl_utils its loader refuses (a
0.0.13, as pip's metadata shows it) and with none at all (this venv's own state): each stops while
loading the model (ms-swift #6371), and lorakit, judging the same environment, refuses the same
command first. The directory is a config.json only: the loader checks qwen_vl_utils before it
reads a weight, so nothing else is needed to reach that check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_real_swift import swift_env

pytestmark = pytest.mark.real

CONFIG = {"architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl", "hidden_size": 64,
          "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 128,
          "vocab_size": 1000, "vision_config": {"depth": 1, "embed_dim": 32, "hidden_size": 64, "num_heads": 2}}
ROWS = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": f"hello {i}"}]}
        for i in range(4)]


@pytest.mark.parametrize("version, swift_said, lorakit_said", [
    ("0.0.13", "ImportError: qwen_vl_utils<0.0.12 is required for a normal functioning of this module, but found "
               "qwen_vl_utils==0.0.13.",
     "has qwen_vl_utils 0.0.13: ms-swift 4.6.0 stops while loading the model (ImportError: qwen_vl_utils<0.0.12 "
     "is required ... but found qwen_vl_utils==0.0.13)"),
    (None, "importlib.metadata.PackageNotFoundError: No package metadata was found for The 'qwen_vl_utils' "
           "distribution was not found and is required by this application.",
     "has no qwen_vl_utils: ms-swift 4.6.0 stops while loading the model (PackageNotFoundError: The "
     "'qwen_vl_utils' distribution was not found)")])
def test_a_qwen_vl_utils_the_loader_refuses_fails_ms_swift_and_lorakit_says_so_first(tmp_path, version, swift_said,
                                                                                     lorakit_said):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    env = swift_env()
    if version:
        dist = tmp_path / "site" / f"qwen_vl_utils-{version}.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: qwen_vl_utils\nVersion: {version}\n")
        env["PYTHONPATH"] = str(tmp_path / "site") + os.pathsep + env.get("PYTHONPATH", "")
    flags = ["--model", "m", "--model_type", "qwen2_vl", "--template", "qwen2_vl", "--dataset", "d.jsonl",
             "--split_dataset_ratio", "0", "--tuner_type", "lora", "--output_dir", "out"]
    done = subprocess.run(["swift", "sft", *flags], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    said = done.stdout + done.stderr
    assert done.returncode != 0, said[-3000:]
    assert swift_said in said.splitlines(), said[-3000:]

    check = subprocess.run([sys.executable, "-m", "lorakit", "validate", "-p", "single", "--", *flags],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 2, check.stderr
    assert ("error[model.requires.qwen_vl_utils] args.model (-- extra flags): model_type qwen2_vl loads its images "
            f"through qwen_vl_utils, and the environment `swift` runs in {lorakit_said}") in check.stderr.splitlines(), \
        check.stderr
