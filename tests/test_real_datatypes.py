"""The real ms-swift 3.12.6 (its own environment, datasets 3.6.0) on a .jsonl whose `query` is a
number in one row and a string in the others (ms-swift #5269): loading the dataset stops with
pyarrow's "changed from string to number". lorakit, judging the datasets of the environment the
`swift` on PATH runs in, refuses it first; with lorakit's own 4.x environment (datasets 4.8,
which has the Json() type) it says nothing of the kind."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from test_real_requires import swift3_fails
from test_real_swift import swift_env, tiny  # noqa: F401  (tiny: the module-scoped fixture)

pytestmark = pytest.mark.real


def test_a_number_among_strings_stops_the_real_load_and_lorakit_says_so_first(tmp_path, tiny):  # noqa: F811
    model, _, _ = tiny
    rows = [{"query": f"what is {i}?", "response": f"{i}"} for i in range(16)]
    rows[4]["query"] = 5
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    flags = ["--model", str(model), "--model_type", "qwen2", "--template", "qwen", "--dataset", "d.jsonl",
             "--train_type", "lora", "--max_steps", "1",
             "--torch_dtype", "float32", "--split_dataset_ratio", "0", "--output_dir", "out",
             "--dataloader_num_workers", "0"]
    env3, said = swift3_fails(flags, tmp_path)
    assert "JSON parse error: Column(/query) changed from string to number in row 4" in said, said[-3000:]

    check = subprocess.run([sys.executable, "-m", "lorakit", "validate", "-p", "single", "--swift-version", "3",
                            "--", *flags], cwd=tmp_path, env=env3, capture_output=True, text=True, timeout=120)
    assert check.returncode == 2, check.stderr
    assert (f"error[data.column.type] args.dataset (-- extra flags): {tmp_path}/d.jsonl:5: /query is a number here "
            "and a string in the rows before; pyarrow gives a field one type, so the datasets library stops loading "
            "the file (JSON parse error: Column(/query) changed from string to number); datasets 3.6.0 is installed "
            "where `swift` runs, and only 4.7.0 and later load such a field") in check.stderr.splitlines(), check.stderr
    plain = subprocess.run([sys.executable, "-m", "lorakit", "validate", "-p", "single", "--", *flags],
                           cwd=tmp_path, env=swift_env(), capture_output=True, text=True, timeout=120)
    assert "data.column.type" not in plain.stderr, plain.stderr
