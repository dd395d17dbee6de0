"""The real ms-swift on CPU: two 2-step runs into one output root (v0-, v1-, a checkpoint per step),
then `lorakit checkpoints OUTPUT --json` and `lorakit merge --adapters OUTPUT` through discovery,
and the merged model loaded by the lines lorakit prints. If ms-swift is missing these FAIL."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import LAUNCH_VARS

pytestmark = pytest.mark.real


def swift_env() -> dict:
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    assert shutil.which("swift", path=env["PATH"]), "ms-swift is not installed: run scripts/test.sh"
    return env


def lorakit(args, cwd):
    result = subprocess.run([sys.executable, "-m", "lorakit", *args], cwd=cwd, env=swift_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """OUTPUT holding two runs of the same preset, each with checkpoint-1 and checkpoint-2."""
    from lorakit.tiny import make_tiny_dataset, make_tiny_model, tiny_swift_args

    root = tmp_path_factory.mktemp("real_merge")
    model = make_tiny_model(root / "tiny-random-chatml")
    data = make_tiny_dataset(root / "data.jsonl", n=8)
    preset = root / "tiny.yaml"
    preset.write_text(yaml.safe_dump({"extends": "single", "args": {
        "torch_dtype": "float32", "gradient_accumulation_steps": 1, "dataloader_num_workers": 0,
        "max_length": 128, "save_steps": 1, "logging_steps": 1, "save_total_limit": None}}))
    extra = []
    for key, value in tiny_swift_args().items():
        extra += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    output = root / "output"
    # Module-scoped: conftest's function-scoped `hermetic` has not run yet, so do what it does.
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (("HOME", home), ("HF_HOME", home / "hf"), ("MODELSCOPE_CACHE", home / "ms"),
                           ("NO_COLOR", "1"), ("COLUMNS", "80")):
            mp.setenv(key, str(value))
        for name in LAUNCH_VARS:
            mp.delenv(name, raising=False)
        for _ in range(2):
            lorakit(["train", "-p", str(preset), "--model", str(model), "--dataset", str(data),
                     "--output-dir", str(output), "--", *extra], cwd=root)
    return root, model, output


def test_checkpoints_lists_both_runs(trained):
    root, _, output = trained
    rows = json.loads(lorakit(["checkpoints", str(output), "--json"], cwd=root).stdout)
    runs = sorted({r["run"] for r in rows})
    assert [re.match(r"^v(\d+)-\d{8}-\d{6}$", r).group(1) for r in runs] == ["0", "1"]
    assert [(r["run"], r["checkpoint"], r["step"], r["last"]) for r in rows] == [
        (runs[0], "checkpoint-1", 1, False), (runs[0], "checkpoint-2", 2, True),
        (runs[1], "checkpoint-1", 1, False), (runs[1], "checkpoint-2", 2, True),
    ]
    assert [sum(r["best"] for r in rows if r["run"] == run) for run in runs] == [1, 1]
    for r in rows:
        assert r["path"] == str(output / r["run"] / r["checkpoint"])
        assert math.isfinite(r["loss"]) and r["size"] > 0


def test_merge_through_discovery_then_load(trained):
    root, model_dir, output = trained
    newest = sorted(output.glob("v1-*"))[0]
    ckpt = newest / "checkpoint-2"
    assert os.readlink(newest / "last-checkpoint") == "checkpoint-2"  # ms-swift 4's moving link

    dry = lorakit(["merge", "--adapters", "output", "--dry-run"], cwd=root)
    assert f"    --adapters {ckpt} \\\n" in dry.stdout and "exist_ok" not in dry.stdout

    result = lorakit(["merge", "--adapters", "output"], cwd=root)
    lines = result.stderr.splitlines()
    assert f"lorakit: picked {ckpt}: newest run {newest.name}, last checkpoint (step 2 of 2, 2 checkpoints)" in lines
    assert f"lorakit: merging into {model_dir} (from {ckpt / 'args.json'}) -> {ckpt}-merged; " \
           "rendering for ms-swift " in result.stderr
    assert lines[-1] == f"lorakit: merged model saved in {ckpt}-merged; load it with transformers:"
    assert not list(newest.glob("*.lorakit-*"))

    import torch

    code = result.stdout.splitlines()[-3:]  # after ms-swift's own "run sh: ..." line
    assert code[0] == "from transformers import AutoModelForCausalLM, AutoTokenizer"
    scope: dict = {}
    exec("\n".join(code), scope)  # the lines lorakit printed, as a user would paste them
    tokens = scope["tokenizer"]("Say hello.", return_tensors="pt")
    with torch.no_grad():
        logits = scope["model"](**tokens).logits
    assert logits.shape[-1] == scope["model"].config.vocab_size
    assert torch.isfinite(logits).all()


def test_record_and_a_forced_remerge(trained):
    """The record names the merged dir and the base model; --force merges into a temporary
    sibling and swaps it in, and the record still names the final dir."""
    root, model_dir, output = trained
    ckpt = sorted(output.glob("v1-*"))[0] / "checkpoint-2"
    merged = Path(f"{ckpt}-merged")
    if not merged.exists():  # run alone, without the test above
        lorakit(["merge", "--adapters", "output"], cwd=root)
    lorakit(["merge", "--adapters", "output", "--force"], cwd=root)
    assert sorted(p.name for p in ckpt.parent.iterdir() if p.name.startswith(merged.name)) == [merged.name]
    text = (merged / "lorakit-run.yaml").read_text()
    record = yaml.safe_load(text)
    assert record["base_model"] == {"model": str(model_dir), "source": str(ckpt / "args.json")}
    assert record["preset"]["args"]["output_dir"] == str(merged) and "lorakit-tmp" not in text
