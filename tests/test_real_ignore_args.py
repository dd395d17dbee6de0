"""The real ms-swift 4.6.0 with a flag its parser does not know and --ignore_args_error true (as
every command ms-swift's web-ui writes has it, ms-swift #5718): it warns "remaining_argv" and
trains; lorakit says the flag as a warning (flags.ignored), not an error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from test_real_swift import swift_env, tiny  # noqa: F401  (tiny: the module-scoped fixture)

pytestmark = pytest.mark.real


def test_an_unknown_flag_under_ignore_args_error_trains(tmp_path, tiny):  # noqa: F811
    model, data, _ = tiny
    flags = ["--model", str(model), "--model_type", "qwen2", "--template", "qwen", "--dataset", str(data),
             "--tuner_type", "lora", "--max_steps", "1", "--split_dataset_ratio", "0", "--output_dir", "out",
             "--dataloader_num_workers", "0", "--omp_num_threads", "2", "--ignore_args_error", "true"]
    done = subprocess.run(["swift", "sft", *flags], cwd=tmp_path, env=swift_env(), capture_output=True, text=True,
                          timeout=600)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-3000:]
    assert "remaining_argv: ['--omp_num_threads', '2']" in said, said[-3000:]
    assert list((tmp_path / "out").glob("v*/checkpoint-1")), said[-3000:]

    check = subprocess.run([sys.executable, "-m", "lorakit", "validate", "-p", "single", "--", *flags],
                           cwd=tmp_path, env=swift_env(), capture_output=True, text=True, timeout=120)
    assert "warning[flags.ignored] args.omp_num_threads (-- extra flags): unknown flag --omp_num_threads" in check.stderr
    assert "error[flags.unknown]" not in check.stderr, check.stderr
