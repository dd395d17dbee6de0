"""A preset's env: section: the variables ms-swift's example scripts set that are not launch
settings (MAX_PIXELS, PYTORCH_CUDA_ALLOC_CONF, ...), rendered, launched, recorded and replayed."""

from __future__ import annotations

import pytest
import yaml

from conftest import run_cli
from test_launch_cli import fake_env, lorakit, recorded

PRESET = "extends: single\nenv:\n  MAX_PIXELS: 1003520\n  PYTORCH_CUDA_ALLOC_CONF: 'expandable_segments:True'\n"


@pytest.fixture
def preset(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PRESET)
    return str(path)


def test_env_is_rendered_before_the_launch_variables(preset):
    result = run_cli(["train", "-p", preset, "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[:4] == ["MAX_PIXELS=1003520 \\", "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True \\",
                                              "CUDA_VISIBLE_DEVICES=0 \\", "swift sft \\"]


def test_command_line_beats_environment_beats_preset(preset, monkeypatch):
    monkeypatch.setenv("MAX_PIXELS", "5")
    result = run_cli(["train", "-p", preset, "--dry-run", "--set", "env.PYTORCH_CUDA_ALLOC_CONF=garbage_collection"])
    assert result.stdout.splitlines()[:2] == ["MAX_PIXELS=5 \\", "PYTORCH_CUDA_ALLOC_CONF=garbage_collection \\"]


def test_a_launch_sets_it_and_the_record_replays_it(preset, tmp_path):
    env = fake_env(tmp_path, "rec.json")
    result = lorakit(["train", "-p", preset, "--output-dir", "out"], env)
    assert result.returncode == 0, result.stderr
    _, child = recorded(tmp_path / "rec.json")
    assert (child["MAX_PIXELS"], child["PYTORCH_CUDA_ALLOC_CONF"]) == ("1003520", "expandable_segments:True")
    saved = yaml.safe_load((tmp_path / "out" / "lorakit-run.yaml").read_text())
    assert saved["preset"]["env"] == {"MAX_PIXELS": "1003520", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    replay = lorakit(["train", "--from", "out/lorakit-run.yaml", "--dry-run"], env)
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.splitlines()[0] == "MAX_PIXELS=1003520 \\"


@pytest.mark.parametrize("body, problem", [
    ("env: {NPROC_PER_NODE: 2}", "key 'env.NPROC_PER_NODE' is a launch setting"),
    ("env: {CUDA_VISIBLE_DEVICES: '0,1'}", "key 'env.CUDA_VISIBLE_DEVICES' is a launch setting"),
    ("env: {ASCEND_RT_VISIBLE_DEVICES: '0,1'}", "key 'env.ASCEND_RT_VISIBLE_DEVICES' is a device list"),
    ("env: {RANK: 0}", "key 'env.RANK' is set by torchrun for its workers"),
    ("env: {'A B': 1}", "key 'env.A B' is not an environment variable name"),
    ("env: {X: [1]}", "key 'env.X' must be text or a number, got list"),
])
def test_what_env_may_not_hold(tmp_path, body, problem):
    path = tmp_path / "p.yaml"
    path.write_text("extends: single\n" + body + "\n")
    result = run_cli(["validate", "-p", str(path)])
    assert result.code == 2
    assert result.stderr.startswith(f"lorakit: error: {path}: {problem}")


def test_set_env_refuses_a_launch_variable():
    result = run_cli(["validate", "-p", "single", "--set", "env.NNODES=2"])
    assert result.code == 2
    assert result.stderr.startswith("lorakit: error: --set 'env.NNODES=2': key 'env.NNODES' is a launch setting")
