"""The real ms-swift on CPU, through lorakit: a 2-step SFT LoRA run on the tiny model, then a
2-step DPO LoRA run on top of it (`lorakit rlhf -p dpo --adapters OUTPUT`), 16 rows of messages +
rejected_response. If ms-swift is missing these FAIL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import LAUNCH_VARS

pytestmark = pytest.mark.real

TINY = {"torch_dtype": "float32", "gradient_accumulation_steps": 1, "global_batch_size": None,
        "dataloader_num_workers": 0, "max_length": 128, "save_steps": 1, "logging_steps": 1,
        "save_total_limit": None, "split_dataset_ratio": 0, "eval_steps": None}


def swift_env(home: Path) -> dict:
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""), HOME=str(home), HF_HOME=str(home / "hf"),
               MODELSCOPE_CACHE=str(home / "ms"), NO_COLOR="1", COLUMNS="80")
    assert shutil.which("swift", path=env["PATH"]), "ms-swift is not installed: run scripts/test.sh"
    return env


def lorakit(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "lorakit", *args], cwd=cwd, env=swift_env(cwd / "home"),
                            capture_output=True, text=True, timeout=600, **kw)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def dpo_rows(path: Path, n: int = 16) -> Path:
    from lorakit.tiny import _QA

    lines = []
    for i in range(n):
        q, a = _QA[i % len(_QA)]
        lines.append(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                                 "rejected_response": "I don't know."}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_runs(root: Path) -> dict:
    """root/out_sft (one 2-step SFT run) and root/out_dpo (one 2-step DPO run on top of it)."""
    from lorakit.tiny import make_tiny_dataset, make_tiny_model

    model = make_tiny_model(root / "tiny-random-chatml")
    make_tiny_dataset(root / "sft.jsonl", n=8)
    dpo_rows(root / "dpo.jsonl")
    (root / "sft.yaml").write_text(yaml.safe_dump({"extends": "single", "args": TINY}))
    (root / "dpo.yaml").write_text(yaml.safe_dump({"extends": "dpo", "args": TINY}))
    tiny = ["--check_model", "false", "--max_steps", "2"]
    sft = lorakit(["train", "-p", "sft.yaml", "--model", str(model), "--dataset", "sft.jsonl", "--output-dir",
                   "out_sft", "--no-progress", "--", "--model_type", "qwen2", "--template", "qwen", *tiny], root)
    # the base model, model_type and template come from the SFT checkpoint's args.json
    dpo = lorakit(["rlhf", "-p", "dpo.yaml", "--adapters", "out_sft", "--dataset", "dpo.jsonl", "--output-dir",
                   "out_dpo", "--no-progress", "--", *tiny], root)
    return {"root": root, "model": model, "sft": sft, "dpo": dpo}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return build_runs(tmp_path_factory.mktemp("real_rlhf"))


def only(pattern: str, root: Path) -> Path:
    found = sorted(root.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_dpo_trains_two_steps_on_the_sft_adapter(runs):
    root = runs["root"]
    sft_ckpt = only("out_sft/v0-*/checkpoint-2", root)
    run = only("out_dpo/v0-*", root)
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    args = json.loads((run / "args.json").read_text())
    assert (args["rlhf_type"], args["adapters"], args["ref_adapters"]) == ("dpo", [str(sft_ckpt)], [str(sft_ckpt)])
    assert (args["model"], args["model_type"], args["template"]) == (str(runs["model"]), "qwen2", "qwen")
    logged = [json.loads(line) for line in (run / "logging.jsonl").read_text().splitlines()]
    steps = [r for r in logged if "rewards/chosen" in r]
    assert [r["global_step/max_steps"] for r in steps] == ["1/2", "2/2"]
    assert (run / "checkpoint-2" / "adapter_config.json").is_file()


def test_dpo_run_says_what_it_picked(runs):
    sft_ckpt = only("out_sft/v0-*/checkpoint-2", runs["root"])
    err = runs["dpo"].stderr
    assert f"lorakit: picked {sft_ckpt}: run {sft_ckpt.parent.name}, last checkpoint (step 2 of 2, 2 checkpoints)" in err
    assert f"info[rlhf.ref_adapters.added] args.ref_adapters (--adapters): ref_adapters {sft_ckpt}" in err
