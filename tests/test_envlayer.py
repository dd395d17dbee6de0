"""The user's own launch variables are a layer: command line > environment > preset.

ms-swift's examples are written `CUDA_VISIBLE_DEVICES=0,1 NPROC_PER_NODE=2 swift sft ...`; a user
who keeps that prefix in front of lorakit means it. Launcher-owned variables (RANK, WORLD_SIZE,
TORCHELASTIC_*, RAY_SWIFT_ARGS) are never meant: they are removed.
"""

from __future__ import annotations

import subprocess

import pytest

from conftest import run_cli
from test_launch_cli import SHELL_NOISE, fake_env, lorakit, recorded


def _launch_env(stdout: str) -> list[str]:
    return [line.rstrip(" \\") for line in stdout.splitlines() if "=" in line.split(" ")[0]
            and not line.startswith(" ")]


def test_the_ms_swift_example_prefix_is_kept(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("NPROC_PER_NODE", "2")
    result = run_cli(["train", "-p", "zero2", "--dry-run"])
    assert result.code == 0, result.stderr
    assert _launch_env(result.stdout) == ["CUDA_VISIBLE_DEVICES=0,1", "NPROC_PER_NODE=2"]
    assert result.stderr.splitlines()[0] == (
        "lorakit: GPUs 0,1 from CUDA_VISIBLE_DEVICES in your environment; NPROC_PER_NODE=2 "
        "(NPROC_PER_NODE in your environment); rendering for ms-swift 4.6.0 (installed here)")


@pytest.mark.parametrize("args, nproc", [
    (["--nproc", "1"], "1"),
    (["--set", "launch.nproc_per_node=1"], "1"),
    ([], "2"),
])
def test_command_line_beats_the_environment(monkeypatch, args, nproc):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("NPROC_PER_NODE", "2")
    result = run_cli(["train", "-p", "ddp", "--dry-run", *args])
    assert result.code == 0, result.stderr
    assert f"NPROC_PER_NODE={nproc}" in _launch_env(result.stdout)


def test_a_wrong_nproc_from_the_environment_names_it(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("NPROC_PER_NODE", "4")
    result = run_cli(["validate", "-p", "ddp"])
    assert result.code == 2
    assert ("error[layout.nproc.too_many] launch.nproc_per_node (NPROC_PER_NODE in your environment): "
            "NPROC_PER_NODE=4 but only 2 GPUs are visible (CUDA_VISIBLE_DEVICES in your environment: 0,1)"
            ) in result.stderr.splitlines()


def test_multi_node_variables_from_the_environment(monkeypatch):
    for name, value in (("NNODES", "2"), ("NODE_RANK", "1"), ("MASTER_ADDR", "10.1.2.3"), ("MASTER_PORT", "29501")):
        monkeypatch.setenv(name, value)
    result = run_cli(["train", "-p", "ddp", "--gpus", "0,1", "--dry-run"])
    assert result.code == 0, result.stderr
    assert _launch_env(result.stdout) == ["CUDA_VISIBLE_DEVICES=0,1", "NPROC_PER_NODE=2", "NNODES=2",
                                          "NODE_RANK=1", "MASTER_ADDR=10.1.2.3", "MASTER_PORT=29501"]
    assert ("NNODES=2 from your environment; NODE_RANK=1 from your environment; MASTER_ADDR=10.1.2.3 from your "
            "environment; MASTER_PORT=29501 from your environment") in result.stderr.splitlines()[0]


def test_node_rank_option_beats_the_environment(monkeypatch):
    for name, value in (("NNODES", "2"), ("NODE_RANK", "1"), ("MASTER_ADDR", "10.1.2.3")):
        monkeypatch.setenv(name, value)
    result = run_cli(["train", "-p", "ddp", "--gpus", "0,1", "--node-rank", "0", "--dry-run"])
    assert result.code == 0, result.stderr
    assert "NODE_RANK=0" in _launch_env(result.stdout)


def test_an_npu_device_list_is_a_device_list(monkeypatch):
    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "0,1,2,3")
    result = run_cli(["train", "-p", "zero2", "--dry-run"])
    assert result.code == 0, result.stderr
    assert _launch_env(result.stdout) == ["ASCEND_RT_VISIBLE_DEVICES=0,1,2,3", "NPROC_PER_NODE=4"]
    assert "GPUs 0,1,2,3 from ASCEND_RT_VISIBLE_DEVICES in your environment" in result.stderr


def test_launcher_owned_variables_never_reach_swift(tmp_path):
    stale = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "GROUP_RANK": "0",
             "ROLE_RANK": "0", "TORCHELASTIC_RUN_ID": "abc", "RAY_SWIFT_ARGS": '{"model": "other"}'}
    env = fake_env(tmp_path, "rec.json", **stale)
    result = lorakit(["train", "-p", "single"], env)
    assert result.returncode == 0, result.stderr
    argv, child = recorded(tmp_path / "rec.json")
    assert not set(stale) & set(child)
    assert {k: v for k, v in child.items() if k != "CUDA_VISIBLE_DEVICES"} == \
        {k: v for k, v in env.items() if k not in SHELL_NOISE and k not in stale}
    printed = lorakit(["train", "-p", "single", "--dry-run"], env)
    assert printed.stdout.splitlines()[0] == ("env -u GROUP_RANK -u LOCAL_RANK -u LOCAL_WORLD_SIZE -u RANK "
                                              "-u RAY_SWIFT_ARGS -u ROLE_RANK -u TORCHELASTIC_RUN_ID -u WORLD_SIZE \\")
    pasted = subprocess.run(["bash", "-c", printed.stdout], env=fake_env(tmp_path, "bash.json", **stale), timeout=60)
    assert pasted.returncode == 0
    assert recorded(tmp_path / "bash.json") == recorded(tmp_path / "rec.json")


def test_an_empty_device_list_is_a_cpu_run_not_a_bad_list(monkeypatch, tmp_path):
    """`CUDA_VISIBLE_DEVICES= swift sft ...` hides every GPU: torch runs on the CPU. The launch
    keeps the empty list (a child would otherwise see the machine's GPUs)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    result = run_cli(["train", "-p", "single", "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "lorakit: no GPU (CUDA_VISIBLE_DEVICES empty, from CUDA_VISIBLE_DEVICES in your environment: the CPU); "
        "one process (no NPROC_PER_NODE); rendering for ms-swift 4.6.0 (installed here)")
    assert ("info[layout.gpus.none] launch.gpus (CUDA_VISIBLE_DEVICES in your environment): CUDA_VISIBLE_DEVICES is "
            "empty: no GPU is visible, so the run is on the CPU") in result.stderr.splitlines()
    assert _launch_env(result.stdout) == ["CUDA_VISIBLE_DEVICES=''"]
    monkeypatch.setenv("NPROC_PER_NODE", "2")
    ranks = run_cli(["train", "-p", "single", "--dry-run", "--", "--use_cpu", "true"])
    assert ranks.code == 0, ranks.stderr
    assert _launch_env(ranks.stdout) == ["CUDA_VISIBLE_DEVICES=''", "NPROC_PER_NODE=2"]


def test_a_rank_per_gpu_with_no_gpu_visible_is_refused(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    result = run_cli(["validate", "-p", "zero2"])
    assert result.code == 2
    lines = result.stderr.splitlines()
    assert ("error[layout.nproc.needs_gpus] launch.nproc_per_node (built-in zero2): nproc_per_node 'auto' counts "
            "GPUs, and CUDA_VISIBLE_DEVICES is empty: no GPU is visible") in lines
    assert ("  hint: name the GPUs (CUDA_VISIBLE_DEVICES=0,1 or --gpus 0,1); for a CPU run, an integer "
            "nproc_per_node with use_cpu: true") in lines
