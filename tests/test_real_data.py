"""The dataset formats lorakit accepts are the ones ms-swift accepts, and a row shape lorakit calls
an error is one ms-swift drops: the installed ms-swift, on CPU, on lorakit.tiny's model.

One real training run takes one small file per accepted format as several datasets; one real
`swift sft` shows what ms-swift does with a file whose every row has a role it does not know.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lorakit import datafile
from test_real_swift import swift_env

pytestmark = pytest.mark.real

DROPPED = "There are errors in the dataset, the data will be deleted"  # core.py batched_preprocess


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def format_files(root: Path) -> dict[str, tuple[Path, int]]:
    """One file per format, every row one that lorakit accepts: format -> (file, rows)."""
    root.mkdir(parents=True, exist_ok=True)
    u, a = ({"role": r, "content": c} for r, c in (("user", "What is 2+2?"), ("assistant", "4")))
    files = {
        "messages": _jsonl(root / "messages.jsonl", [
            {"messages": [u, a]},
            {"messages": [{"role": "system", "content": "Be brief."}, u, a]},
            {"messages": [{"role": "assistant", "content": "pretraining text"}]},
            {"messages": [{"role": "human", "content": "Hi"}, {"role": "bot", "content": "Hello!"}]}]),
        "sharegpt": _jsonl(root / "sharegpt.jsonl", [
            {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
            {"system": "Be brief.", "conversations": [{"from": "human", "value": "Hi"},
                                                      {"from": "gpt", "value": "Yo"}]},
            {"conversations": [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Hi"},
                               {"from": "gpt", "value": "Hello."}]}]),
        "alpaca": _jsonl(root / "alpaca.jsonl", [
            {"instruction": "Add.", "input": "2+2", "output": "4"},
            {"instruction": "Name a colour.", "input": "", "output": "Blue."}]),
        "query-response": _jsonl(root / "query_response.jsonl", [
            {"system": "Be brief.", "query": "And 3+3?", "response": "6", "history": [["What is 2+2?", "4"]]},
            {"query": "Hi", "response": "Hello!", "history": "[['Hey', 'Hey!']]"}]),
    }
    (root / "prompt_completion.csv").write_text("prompt,completion\nSay hi.,Hi!\n\"Count, to two.\",\"1, 2\"\n")
    (root / "array.json").write_text(json.dumps([{"question": "Capital of France?", "answer": "Paris."},
                                                 {"question": "2+2?", "answer": "4"}]))
    out = {name: (path, len(path.read_text().splitlines())) for name, path in files.items()}
    out["query-response (csv)"] = (root / "prompt_completion.csv", 2)
    out["query-response (json)"] = (root / "array.json", 2)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from lorakit.tiny import make_tiny_model, tiny_swift_args

    root = tmp_path_factory.mktemp("tiny")
    # as in test_real_swift: float32 (CPU has no bf16; the built-in presets ask for bfloat16); one step;
    # nothing held out for evaluation, so the row counts below are the files' own
    return make_tiny_model(root / "tiny-random-chatml"), {**tiny_swift_args(), "max_steps": 1, "torch_dtype": "float32",
                                                          "split_dataset_ratio": 0}


def test_every_accepted_format_trains_in_one_real_run(tiny, tmp_path):
    model, extra = tiny
    files = format_files(tmp_path / "data")
    for name, (path, rows) in files.items():  # lorakit's own reading first
        rec = datafile.recognize(str(path), cwd=str(tmp_path))
        assert (rec.format, rec.problems, rec.rows_usable) == (name.split(" ")[0], [], rows), name
    preset = tmp_path / "formats.yaml"
    preset.write_text(yaml.safe_dump({"extends": "single", "args": {
        "model": str(model), "dataset": [str(p) for p, _ in files.values()], "output_dir": str(tmp_path / "out"),
        "dataloader_num_workers": 0, "max_length": 128, "per_device_train_batch_size": 1,
        "target_modules": ["q_proj", "v_proj"], **extra}}))
    result = subprocess.run([sys.executable, "-m", "lorakit", "train", "-p", str(preset)], cwd=tmp_path,
                            env=swift_env(), capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert DROPPED not in log and "Dataset filtered" not in log, log[-4000:]
    total = sum(rows for _, rows in files.values())
    # sft.py _prepare_dataset logs the loaded (preprocessed, not yet encoded) training set
    assert re.search(r"train_dataset: Dataset\(\{\s*features: \[[^\]]*\],\s*num_rows: " + str(total) + r"\s*\}\)",
                     log), log[-4000:]
    assert sorted((tmp_path / "out").glob("v*-*/checkpoint-1/adapter_config.json"))
    for name, (path, _) in files.items():
        assert f": {path}: {datafile.FORMATS[name.split(' ')[0]]};" in log, name


def test_ms_swift_drops_rows_lorakit_calls_errors_and_stops_when_none_is_left(tiny, tmp_path):
    """Every row has role 'model': MessagesPreprocessor's _check_messages asserts the role
    (swift/dataset/preprocessor/core.py:101), the row is dropped with a traceback, and with no row
    left sample_dataset (swift/dataset/utils.py:37, `dataset_sample // len(dataset)`) divides by 0."""
    model, extra = tiny
    good = _jsonl(tmp_path / "good.jsonl", [{"messages": [{"role": "user", "content": "q"},
                                                          {"role": "assistant", "content": "a"}]}])
    bad = _jsonl(tmp_path / "bad.jsonl", [{"messages": [{"role": "user", "content": "q"},
                                                        {"role": "model", "content": "a"}]}] * 3)
    opts = ["-p", "single", "--model", str(model), "--dataset", str(good), "--output-dir", str(tmp_path / "out")]
    opts += [x for k, v in extra.items() for x in ("--set", f"{k}={v}")]
    env = swift_env()
    validate = subprocess.run([sys.executable, "-m", "lorakit", "validate", *opts[:5], str(bad), *opts[6:]],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert validate.returncode == 2
    assert (f"error[data.messages.invalid] args.dataset (--dataset): {bad}:1: message 2 has role 'model', which "
            "ms-swift does not know (and 2 more of the 3 rows checked)") in validate.stderr.splitlines()
    rendered = subprocess.run([sys.executable, "-m", "lorakit", "train", *opts, "--dry-run"], cwd=tmp_path, env=env,
                              check=True, capture_output=True, text=True, timeout=120).stdout
    assert str(good) in rendered
    swift = subprocess.run(["bash", "-c", rendered.replace(str(good), str(bad))], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=600)  # what lorakit would have run
    log = swift.stdout + swift.stderr
    assert swift.returncode != 0, log[-3000:]
    assert "AssertionError: message: {'role': 'model', 'content': 'a'}" in log, log[-3000:]
    assert DROPPED in log and "ZeroDivisionError: integer division or modulo by zero" in log, log[-3000:]
