"""validate uses the plan: a warning with the remedies in order when it does not fit the GPUs
nvidia-smi shows or `--gpu-mem`; plan --gpu-mem; MiB where GiB would read 0.00."""

from __future__ import annotations

import pytest

from lorakit import plan as planner
from lorakit.checks.facts import Facts
from lorakit.checks.memory import check_memory
from lorakit.cli.common import JobOptions, job_from_options

WARNING = ("warning[plan.does_not_fit] the plan needs 19.78 GiB per GPU (+1.5 GiB reserve), GPU 0 has 16.00 GiB\n"
           "  hint: try, in order: fewer target_modules: attention only; lower lora_rank; DeepSpeed ZeRO-3 "
           "(partitions the base weights too); shorter max_length (if your samples fit)\n")


@pytest.fixture(autouse=True)
def no_gpus(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("empty-bin")))


def smi(tmp_path, mib: int) -> dict:
    exe = tmp_path / "nvidia-smi"
    exe.write_text(f'#!/bin/sh\ni=0; while [ $i -lt 8 ]; do echo "$i, {mib}"; i=$((i+1)); done\n')
    exe.chmod(0o755)
    return {"PATH": str(tmp_path)}


def test_validate_gpu_mem_warns_with_remedies_in_order(cli):
    result = cli(["validate", "-p", "zero2", "--gpu-mem", "16"])
    assert result.code == 0
    assert WARNING in result.stderr
    assert cli(["validate", "-p", "zero2", "--gpu-mem", "16", "--strict"]).code == 2


def test_validate_gpu_mem_that_fits_says_nothing(cli):
    result = cli(["validate", "-p", "zero2", "--gpu-mem", "24"])
    assert result.code == 0 and "plan.does_not_fit" not in result.stderr


def test_validate_reads_nvidia_smi(cli, tmp_path):
    result = cli(["validate", "-p", "zero2"], env=smi(tmp_path, 16384))
    assert WARNING in result.stderr
    assert "plan.does_not_fit" not in cli(["validate", "-p", "zero2"], env=smi(tmp_path, 81559)).stderr


@pytest.mark.parametrize("value", ["0", "-8"])
def test_gpu_mem_must_be_positive(cli, value):
    for command in ("validate", "plan"):
        result = cli([command, "-p", "zero2", "--gpu-mem", value])
        assert result.code == 2
        assert result.stderr == (f"lorakit: error: --gpu-mem {float(value)!r} is not a positive number of GiB\n"
                                 "  hint: e.g. --gpu-mem 80\n")


def test_no_check_for_a_dry_run_rendered_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", smi(tmp_path, 16384)["PATH"])
    job = job_from_options(JobOptions("zero2"))
    assert check_memory(job, Facts(here=False)) == []
    assert [f.code for f in check_memory(job, Facts())] == ["plan.does_not_fit"]


def test_plan_gpu_mem_note(cli):
    lines = cli(["plan", "-p", "zero2", "--gpu-mem", "16"]).stdout.splitlines()
    assert "planned against 8 GPUs of 16.00 GiB (--gpu-mem 16)" in lines
    assert "does not fit: 19.78 GiB + 1.5 GiB reserve > GPU 0's 16.00 GiB" in lines


def test_mib_where_gib_reads_zero(cli):
    assert (planner.size_text(3 * 1024 ** 2), planner.size_text(0), planner.size_text(6 * 1024 ** 3)) == (
        "3.0 MiB", "0.00 GiB", "6.00 GiB")
    # Qwen2.5-0.5B, r=1 on q_proj only: 24 x (896 + 896) x 4 bytes of fp32 LoRA weights = 0.16 MiB
    lines = cli(["plan", "-p", "single", "--model", "Qwen/Qwen2.5-0.5B", "--target-modules", "q_proj",
                 "--lora-rank", "1"]).stdout.splitlines()
    assert "  LoRA weights       0.2 MiB" in lines and "  LoRA grads            0.00" in lines
