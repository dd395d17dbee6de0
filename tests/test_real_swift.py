"""The real thing: lorakit drives the installed ms-swift on CPU, end to end, on a tiny local
model (no hub is reachable). If ms-swift is missing these FAIL: a skipped real test is a hole."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from lorakit.tiny import make_tiny_dataset, make_tiny_model, tiny_swift_args

    root = tmp_path_factory.mktemp("tiny")
    model = make_tiny_model(root / "tiny-random-chatml")
    data = make_tiny_dataset(root / "data.jsonl", n=16)
    return model, data, tiny_swift_args()


def swift_env() -> dict:
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    assert shutil.which("swift", path=env["PATH"]), "ms-swift is not installed: run scripts/test.sh"
    return env


def lorakit(args, cwd, timeout=600):
    result = subprocess.run([sys.executable, "-m", "lorakit", *args], cwd=cwd, env=swift_env(),
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def user_preset(path: Path, parent: str, tiny, output: Path) -> Path:
    model, data, extra = tiny
    args = {"model": str(model), "dataset": [str(data)], "output_dir": str(output),
            "torch_dtype": "float32", "dataloader_num_workers": 0, "max_length": 128,
            "target_modules": "[q_proj,k_proj,v_proj,o_proj]",  # the seed's bracket string
            **extra}
    path.write_text(yaml.safe_dump({"extends": parent, "args": args}))
    return path


def only_checkpoint(output: Path) -> Path:
    found = sorted(output.glob("v*-*/checkpoint-*/adapter_config.json"))
    assert len(found) == 1, found
    return found[0].parent


def test_train_then_merge_then_load(tiny, tmp_path):
    preset = user_preset(tmp_path / "mine.yaml", "single", tiny, tmp_path / "out")
    lorakit(["train", "-p", str(preset)], cwd=tmp_path)
    checkpoint = only_checkpoint(tmp_path / "out")
    assert checkpoint.name == "checkpoint-2"
    lorakit(["merge", "--adapters", str(checkpoint)], cwd=tmp_path)
    merged = checkpoint.parent / "checkpoint-2-merged"
    merge_record = yaml.safe_load((merged / "lorakit-run.yaml").read_text())
    argv = merge_record["command"]["argv"]
    assert argv[:2] == ["swift", "export"]
    assert argv[argv.index("--adapters") + 1] == str(checkpoint)

    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(merged)
    with torch.no_grad():
        logits = model(torch.tensor([[1, 2, 3, 4]])).logits
    assert logits.shape[-1] == model.config.vocab_size
    assert torch.isfinite(logits).all()


def test_two_process_ddp_on_cpu(tiny, tmp_path):
    preset = user_preset(tmp_path / "ddp.yaml", "ddp", tiny, tmp_path / "out")
    result = lorakit(["train", "-p", str(preset), "--gpus", "0,1", "--nproc", "2"], cwd=tmp_path)
    assert "NPROC_PER_NODE=2 (--nproc)" in result.stderr
    checkpoint = only_checkpoint(tmp_path / "out")
    args = yaml.safe_load((checkpoint / "args.json").read_text())
    kwargs = args["gradient_checkpointing_kwargs"]  # ms-swift keeps the JSON text it was given
    assert (json.loads(kwargs) if isinstance(kwargs, str) else kwargs) == {"use_reentrant": False}
    assert sorted(args["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]


def test_doctor_smoke_trains_merges_and_loads(monkeypatch, tmp_path):
    """The README's first command ends with `lorakit doctor --smoke`: it must really work."""
    from lorakit import smoke

    said: list[str] = []
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    assert smoke.run(say=said.append, workdir=tmp_path) == 0, "\n".join(said)
    assert said[-1].startswith("smoke: logits (1, 4, 320), finite from ")
