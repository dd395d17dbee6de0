"""One process that sees every GPU of the machine, because no device list and no NPROC_PER_NODE
reached ms-swift (ms-swift #5328: a blank line in a `\\` continuation dropped the env prefix;
with --deepspeed ms-swift then refuses: "DeepSpeed is not compatible with `device_map`. n_gpu: 8,
local_world_size: 1"). The GPU count comes from a fake `nvidia-smi -L` on PATH."""

from __future__ import annotations

import os

import pytest

from conftest import run_cli
from lorakit.checks.facts import Facts, gpu_count
from lorakit.checks.layout import check_unlisted_gpus
from lorakit.job import Job, Launch

FIX = ("for 8 data-parallel ranks: NPROC_PER_NODE=8 (nproc_per_node: auto); for one GPU: CUDA_VISIBLE_DEVICES=0. "
       "If a script set them, check it reached swift: a blank or comment line inside a `\\` continuation ends the "
       "command there (lorakit import SCRIPT reports it)")


@pytest.fixture
def eight_gpus(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    lines = "".join(f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i:08d})\\n" for i in range(8))
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n[ \"$1\" = -L ] || exit 9\nprintf '{lines}'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for name in ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE", "ASCEND_RT_VISIBLE_DEVICES", "MUSA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    return bin_dir


def _preset(tmp_path, extra: str = "") -> str:
    path = tmp_path / "mine.yaml"
    path.write_text("command: sft\nargs:\n  model: Qwen/Qwen2.5-7B-Instruct\n"
                    "  dataset: [AI-ModelScope/alpaca-gpt4-data-en]\n  tuner_type: lora\n" + extra)
    return str(path)


@pytest.mark.skipif(os.path.isdir("/proc/driver/nvidia/gpus"), reason="a real NVIDIA driver answers first")
def test_the_count_comes_from_nvidia_smi(eight_gpus):
    assert gpu_count() == 8


def test_deepspeed_on_every_gpu_of_the_machine_is_refused(eight_gpus, tmp_path):
    preset = _preset(tmp_path, "  deepspeed: zero2\n")
    result = run_cli(["validate", "-p", preset])
    assert result.code == 2
    lines = result.stderr.splitlines()
    i = lines.index(f"error[layout.device_map.deepspeed] args.deepspeed ({preset}): no CUDA_VISIBLE_DEVICES and no "
                    "NPROC_PER_NODE on a machine with 8 GPUs: ONE process sees all 8 and splits the model across them "
                    "(device_map), and DeepSpeed is not compatible with device_map: ms-swift refuses it")
    assert lines[i + 1] == "  hint: " + FIX


def test_without_deepspeed_it_is_a_warning(eight_gpus, tmp_path):
    preset = _preset(tmp_path)
    result = run_cli(["validate", "-p", preset])
    assert result.code == 0
    assert ("warning[layout.device_map.implicit] launch.gpus: no CUDA_VISIBLE_DEVICES and no "
            "NPROC_PER_NODE on a machine with 8 GPUs: ONE process sees all 8 and splits the model across them "
            "(device_map); they take turns, so it runs about as fast as one GPU") in result.stderr.splitlines()


@pytest.mark.parametrize("env", [{"CUDA_VISIBLE_DEVICES": "0"}, {"NPROC_PER_NODE": "8"},
                                 {"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7", "NPROC_PER_NODE": "8"}])
def test_a_device_list_or_rank_count_settles_it(eight_gpus, tmp_path, monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run_cli(["validate", "-p", _preset(tmp_path, "  deepspeed: zero2\n")])
    assert "no CUDA_VISIBLE_DEVICES and no NPROC_PER_NODE" not in result.stderr


def test_a_dry_run_for_another_machine_does_not_count_these_gpus(eight_gpus, tmp_path):
    result = run_cli(["train", "-p", _preset(tmp_path, "  deepspeed: zero2\n"), "--dry-run"])
    assert result.code == 0, result.stderr


def test_one_gpu_or_no_driver_says_nothing():
    job = Job(command="sft", launch=Launch(), args={"deepspeed": "zero2"}, preset="p")
    assert check_unlisted_gpus(job, Facts(gpu_count=lambda: 1)) == []
    assert check_unlisted_gpus(job, Facts(gpu_count=lambda: None)) == []
    assert check_unlisted_gpus(job, Facts(gpu_count=lambda: 2, here=False)) == []
    [f] = check_unlisted_gpus(job, Facts(gpu_count=lambda: 2))
    assert (f.level, f.code) == ("error", "layout.device_map.deepspeed")


def test_the_machines_gpu_count_does_not_stop_a_plan(eight_gpus, tmp_path):
    """A plan is of the job's layout, for whichever machine: the one-process-over-every-GPU
    finding is the launch checks', so `lorakit plan` still plans (it said 'no plan' here)."""
    result = run_cli(["plan", "-p", _preset(tmp_path, "  deepspeed: zero2\n")])
    assert result.code == 0, result.stderr
    assert "no CUDA_VISIBLE_DEVICES and no NPROC_PER_NODE" not in result.stderr
