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


VLLM_TASK = ("error[infer.vllm.task] args.infer_backend (--infer-backend): task_type {task} ({where}) with "
             "infer_backend vllm: ms-swift's vLLM engine serves {task} models only from ms-swift {since}; before, "
             "vLLM loads it as a causal LM{tail}")
SCORE = " and stops at its head's weights (\"There is no module or parameter named 'score'\", ms-swift #4676)"
TAILS = {"seq_cls": SCORE, "reranker": SCORE, "embedding": " (its engine has no embed task before then)"}


@pytest.mark.parametrize("task,version,since", [("seq_cls", "3.8", "3.9"), ("reranker", "3.5.2", "3.9"),
                                                ("embedding", "3.6", "3.7"), ("seq_cls", "3.9", None),
                                                ("embedding", "3.7", None), ("seq_cls", "4", None),
                                                ("causal_lm", "3.5", None)])
def test_a_pooling_model_on_vllm_needs_the_release_that_serves_it(tmp_path, monkeypatch, task, version, since):
    monkeypatch.chdir(tmp_path)
    result = run_cli(["infer", "--model", "Qwen/Qwen2-VL-2B-Instruct", "--infer-backend", "vllm", "--swift-version",
                      version, "--dry-run", "--", "--task_type", task])
    found = [line for line in result.stderr.splitlines() if line.startswith("error[infer.vllm.task]")]
    if since is None:
        assert found == [], result.stderr
        return
    assert result.code == 2
    assert found == [VLLM_TASK.format(task=task, where="-- extra flags", since=since, tail=TAILS[task])]
    assert f"  hint: --infer_backend pt; or upgrade to ms-swift {since} or later (pip install 'ms-swift>={since}')" \
        in result.stderr.splitlines()


def test_the_task_type_a_trained_checkpoint_records_counts(tmp_path, monkeypatch):
    """#4676: a regression (seq_cls) Qwen2-VL trained with ms-swift, served with vLLM on a 3.x before 3.9."""
    import json

    monkeypatch.chdir(tmp_path)
    model = tmp_path / "qwen2vl-regression"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2_vl",
                                                   "architectures": ["Qwen2VLForConditionalGeneration"]}))
    (model / "args.json").write_text(json.dumps({"model": "Qwen/Qwen2-VL-2B-Instruct", "task_type": "seq_cls",
                                                 "num_labels": 1}))
    result = run_cli(["deploy", "--model", str(model), "--infer-backend", "vllm", "--swift-version", "3.5",
                      "--dry-run", "--", "--model_type", "qwen2_vl"])
    expected = VLLM_TASK.format(task="seq_cls", where=f"{model}/args.json", since="3.9", tail=SCORE)
    assert expected in result.stderr.splitlines(), result.stderr
    # load_args_from_ckpt force-loads task_type over a given one; --load_args false reads no args.json
    result = run_cli(["deploy", "--model", str(model), "--infer-backend", "vllm", "--swift-version", "3.5",
                      "--dry-run", "--", "--model_type", "qwen2_vl", "--task_type", "causal_lm"])
    assert expected in result.stderr.splitlines(), result.stderr
    assert run_cli(["deploy", "--model", str(model), "--infer-backend", "vllm", "--swift-version", "3.5", "--dry-run",
                    "--", "--model_type", "qwen2_vl", "--load_args", "false"]).stderr.count("infer.vllm.task") == 0
    assert run_cli(["deploy", "--model", str(model), "--infer-backend", "pt", "--swift-version", "3.5", "--dry-run",
                    "--", "--model_type", "qwen2_vl"]).stderr.count("infer.vllm.task") == 0


def test_the_installed_3x_maps_pooling_tasks_to_vllm_tasks():
    """The source line the rule rests on, in the 3.12.6 that scripts/test.sh installs (3.9.0 brought it;
    every wheel before lacks 'seq_cls' in vllm_engine.py: read by scripts, recorded in checks/engine.py)."""
    import subprocess
    from pathlib import Path

    from conftest import swift3_python

    found = subprocess.run([swift3_python(), "-c", "import importlib.util as u; print(u.find_spec('swift').origin)"],
                           capture_output=True, text=True, timeout=60)
    engine = Path(found.stdout.strip()).parent / "llm" / "infer" / "infer_engine" / "vllm_engine.py"
    source = engine.read_text(encoding="utf-8")
    assert "        elif task == 'seq_cls':\n            task = 'classify'\n" in source


@pytest.mark.network
def test_the_release_that_brought_pooling_tasks_to_vllm():
    """3.8.3 (the last before 3.9) has no seq_cls in its vLLM engine; 3.9.0 has; embedding from 3.7.0."""
    import sys
    import zipfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import gen_swift_history as history

    from conftest import WHEELS

    cache = Path(WHEELS)
    seen = {}
    for version in ("3.6.4", "3.7.0", "3.8.3", "3.9.0"):
        try:
            path = history.wheel("ms-swift", version, cache, False)
        except history.NoIndex as err:
            pytest.skip(f"no package index: {err}")
        with zipfile.ZipFile(path) as wheel:
            source = wheel.read("swift/llm/infer/infer_engine/vllm_engine.py").decode("utf-8")
        seen[version] = ("'seq_cls'" in source, "'embedding'" in source)
    assert seen == {"3.6.4": (False, False), "3.7.0": (False, True), "3.8.3": (False, True), "3.9.0": (True, True)}
