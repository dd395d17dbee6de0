"""Flags only ms-swift's own engine reads, given with another infer_backend (checks/engine.py, #3363)."""

from __future__ import annotations

import pytest

from conftest import run_cli, swift_source


def lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if "infer.engine.ignored" in line]


def test_device_map_and_max_memory_with_vllm_are_a_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli(["deploy", "--model", "Qwen/Qwen2.5-7B-Instruct", "--infer-backend", "vllm", "--dry-run", "--",
                      "--device_map", "auto", "--max_memory", '{0: "3GB", 1: "10GB"}'])
    assert result.code == 0, result.stderr
    assert lines(result) == [
        "warning[infer.engine.ignored] args.device_map (-- extra flags): --device_map auto, --max_memory {0: \"3GB\", "
        "1: \"10GB\"} (-- extra flags) configure ms-swift's own engine, and infer_backend is vllm: ms-swift drops them "
        "without a word (get_infer_engine passes get_model_kwargs() to the pt/transformers engine only); vLLM spreads "
        "a model over GPUs with --vllm_tensor_parallel_size"]


@pytest.mark.parametrize("backend, extra, warned", [
    ("transformers", ("--device_map", "auto"), False), ("vllm", (), False),
    ("sglang", ("--quant_method", "bnb", "--quant_bits", "8"), True), ("vllm", ("--quant_method", "awq"), False),
    ("vllm", ("--quant_method", "fp8"), True), ("vllm", ("--quant_method", "quanto", "--quant_bits", "8"), True)])
def test_only_the_own_engines_kwargs_with_another_backend(tmp_path, monkeypatch, backend, extra, warned):
    monkeypatch.chdir(tmp_path)
    result = run_cli(["deploy", "--model", "Qwen/Qwen2.5-7B-Instruct", "--infer-backend", backend, "--dry-run",
                      "--", *extra])
    assert bool(lines(result)) is warned, result.stderr


def test_the_source_line_it_rests_on():
    source = swift_source("pipelines/infer/infer.py")
    at = source.index("        if infer_backend == 'transformers':")
    assert source[at + 2] == "            kwargs.update(args.get_model_kwargs())"
