"""`lorakit eval`: the adapter through infer's discovery, benchmarks replaced by --eval-dataset,
evalscope said missing before the launch, and ms-swift's parser takes the rendered command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, swift3_python
from lorakit.checks.facts import Facts
from test_infer import argv_of, checkpoint, run_in


def test_default_benchmark(tmp_path):
    ckpt = checkpoint(tmp_path)
    result = run_in(tmp_path, ["eval", "--adapters", "output", "--dry-run"])
    assert result.code == 0, result.stderr
    assert argv_of(result.stdout) == ["swift", "eval", "--eval_backend", "Native", "--eval_dataset", "gsm8k",
                                      "--eval_limit", "10", "--adapters", str(ckpt)]
    assert "lorakit: benchmarks: gsm8k" in result.stderr


def test_eval_dataset_options_replace_the_presets(tmp_path):
    checkpoint(tmp_path)
    result = run_in(tmp_path, ["eval", "--adapters", "output", "--eval-dataset", "arc", "--eval-dataset", "mmlu",
                               "--dry-run", "--", "--eval_limit", "100"])
    assert result.code == 0, result.stderr
    argv = argv_of(result.stdout)
    assert argv[argv.index("--eval_dataset"):argv.index("--eval_dataset") + 3] == ["--eval_dataset", "arc", "mmlu"]
    assert argv[argv.index("--eval_limit") + 1] == "100"


def test_a_backend_without_lora_is_refused_here_too(tmp_path):
    checkpoint(tmp_path)
    result = run_in(tmp_path, ["eval", "--adapters", "output", "--infer-backend", "lmdeploy", "--dry-run"])
    assert result.code == 2
    assert "lorakit: error: --infer-backend lmdeploy takes no LoRA adapter" in result.stderr


def test_missing_evalscope_is_said_before_the_launch(tmp_path, monkeypatch):
    checkpoint(tmp_path)
    monkeypatch.setattr("lorakit.cli.eval_cmd.Facts", lambda: Facts(has_module=lambda name: name != "evalscope"))
    result = run_in(tmp_path, ["eval", "--adapters", "output"])
    assert result.code == 1
    assert result.stderr.splitlines()[-2:] == [
        "lorakit: error: swift eval needs evalscope, which is not installed in this environment",
        "  hint: pip install 'evalscope[opencompass]' (or 'ms-swift[eval]')"]


@pytest.mark.parametrize("major", [4, 3])
def test_ms_swift_parses_the_eval_command(tmp_path, major):
    python = sys.executable if major == 4 else swift3_python()
    ckpt = checkpoint(tmp_path)
    result = run_in(tmp_path, ["eval", "--adapters", f"sft={ckpt}", "--eval-dataset", "arc", "--eval-dataset",
                               "gsm8k", "--swift-version", str(major), "--dry-run"])
    assert result.code == 0, result.stderr
    out = subprocess.run([python, str(REPO / "scripts" / "swift_parse_check.py"), "eval", "--batch"],
                         input=json.dumps([argv_of(result.stdout)[2:]]), capture_output=True, text=True,
                         timeout=600, cwd=REPO / "scripts")
    assert out.returncode == 0, out.stderr[-2000:]
    [answer] = json.loads(out.stdout)
    assert (answer["exit"], answer["remaining"]) == (0, [])
    assert answer["values"]["eval_dataset"] == ["arc", "gsm8k"] and answer["values"]["adapters"] == [f"sft={ckpt}"]


@pytest.mark.parametrize("given", ["gsm8k]", "arc, mmlu", "{x: 1}"])
def test_each_eval_dataset_is_one_name_as_typed(tmp_path, given):
    """They were joined into a --set YAML list: 'arc, mmlu' became two benchmarks, 'gsm8k]' an error
    about "--set 'eval_dataset=[gsm8k]]'", which the user never wrote."""
    checkpoint(tmp_path)
    result = run_in(tmp_path, ["eval", "--adapters", "output", "--eval-dataset", given, "--dry-run"])
    assert result.code == 0, result.stderr
    argv = argv_of(result.stdout)
    assert argv[argv.index("--eval_dataset"):argv.index("--eval_dataset") + 3] == ["--eval_dataset", given,
                                                                                  "--eval_limit"]


def test_an_empty_eval_dataset_is_refused(tmp_path):
    checkpoint(tmp_path)
    result = run_in(tmp_path, ["eval", "--adapters", "output", "--eval-dataset", "", "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == ["lorakit: error: --eval-dataset '' names no benchmark",
                                               "  hint: e.g. --eval-dataset gsm8k --eval-dataset arc"]
