"""global_batch_size against gradient_accumulation_steps: which layer wins, and what is said.

The whole command line (--set, typed options, flags after `--`) is one layer: both keys there is
the same error as both in one file. A later layer's steps over an earlier global_batch_size win,
and an info finding says the global batch was replaced."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli

from lorakit import presets
from lorakit.checks import run_checks
from lorakit.fixups import DROPPED, apply_fixups, same_layer
from lorakit.job import build_job

GAS = "args.gradient_accumulation_steps"
GBS = "args.global_batch_size"
def job_from(name: str, args: dict, sources: dict):
    """A resolved preset with keys set as given, bypassing presets' own dropping."""
    resolved = presets.load(name)
    base = dict(resolved.data["args"])
    if "gradient_accumulation_steps" in args and "global_batch_size" not in args:
        base.pop("global_batch_size", None)  # what presets does when a later file sets the steps
    resolved.data["args"] = {**base, **args}
    resolved.sources.update(sources)
    return apply_fixups(build_job(resolved, {}, swift_major=4))


def findings(job, level=None):
    return [(f.level, f.code, f.message, f.file) for f in run_checks(job)
            if f.code.startswith("batch.global_batch_size") and (level is None or f.level == level)]


def steps(job):
    return job.args.get("gradient_accumulation_steps")


@pytest.mark.parametrize("a, b, same", [
    ("--set", "-- extra flags", True), ("--set", "--set", True), ("--lora-rank", "-- extra flags", True),
    ("built-in zero2", "built-in zero2", True), ("built-in zero2", "--set", False),
    ("/p/a.yaml", "/p/b.yaml", False),
])
def test_the_command_line_is_one_layer(a, b, same):
    assert same_layer(a, b) is same and same_layer(b, a) is same


def test_both_on_the_command_line_is_the_both_error():
    job = job_from("zero2", {"global_batch_size": 64, "gradient_accumulation_steps": "4"},
                   {GBS: "--set", GAS: "-- extra flags"})
    assert findings(job) == [("error", "batch.global_batch_size.both",
                              "global_batch_size and gradient_accumulation_steps are both set on the command "
                              "line (--set, -- extra flags): one derives the other", "--set")]
    assert steps(job) == "4"  # untouched


def test_command_line_steps_replace_a_files_global_batch_size_and_say_so():
    job = job_from("zero2", {"global_batch_size": 64, "gradient_accumulation_steps": 4},
                   {GBS: "built-in zero2", GAS: "--set"})
    assert "global_batch_size" not in job.args and GBS not in job.sources and steps(job) == 4
    assert findings(job) == [("info", "batch.global_batch_size.replaced",
                              "global_batch_size 64 from built-in zero2 was replaced by "
                              "gradient_accumulation_steps 4 from --set", "--set")]
    [note] = [f for f in job.adjustments if f.code == "batch.global_batch_size.replaced"]
    assert note.hint == "the later setting wins; to keep the global batch, set global_batch_size there instead"


def test_a_global_batch_size_presets_dropped_is_said():
    job = job_from("zero2", {"gradient_accumulation_steps": 3},
                   {GAS: "/p/child.yaml", DROPPED: "32 from /p/parent.yaml"})
    assert findings(job) == [("info", "batch.global_batch_size.replaced",
                              "global_batch_size 32 from /p/parent.yaml was replaced by "
                              "gradient_accumulation_steps 3 from /p/child.yaml", "/p/child.yaml")]


def test_a_later_global_batch_size_makes_the_dropped_one_moot():
    job = job_from("zero2", {"global_batch_size": 64},
                   {GBS: "--set", DROPPED: "32 from /p/parent.yaml"})
    assert [code for _, code, _, _ in findings(job)] == ["batch.global_batch_size.derived"]
    assert steps(job) == 8


@pytest.mark.parametrize("batch, shown", [(0, "0"), (-2, "-2"), ("two", "'two'"), (1.5, "1.5")])
def test_a_per_device_batch_below_one_is_invalid_not_one(batch, shown):
    job = job_from("zero2", {"global_batch_size": 64, "per_device_train_batch_size": batch},
                   {GBS: "--set", "args.per_device_train_batch_size": "--set"})
    derived = [(
        "error", "batch.global_batch_size.invalid",
        f"global_batch_size 64 cannot derive gradient_accumulation_steps: per_device_train_batch_size {shown} "
        "is not a positive integer", "--set")]
    # a value argparse cannot read at all is said once, by the flag check
    assert findings(job, "error") == ([] if isinstance(batch, (str, float)) else derived)
    on_key = [f.code for f in run_checks(job) if f.key == "args.per_device_train_batch_size" and f.level == "error"]
    assert len(on_key) == 1
    assert steps(job) is None  # nothing derived from a bad batch size


def test_an_unset_per_device_batch_is_ms_swifts_default_one():
    job = job_from("zero2", {"global_batch_size": 64, "per_device_train_batch_size": None}, {GBS: "--set"})
    assert steps(job) == 8


# --- through the real command line --------------------------------------------------------------

BOTH = ("error[batch.global_batch_size.both] args.global_batch_size (--set): global_batch_size and "
        "gradient_accumulation_steps are both set on the command line (--set, -- extra flags): one derives "
        "the other")


def test_both_on_the_command_line_abbreviated_exits_2(cli):
    result = cli(["train", "-p", "zero2", "--set", "global_batch_size=64", "--dry-run", "--",
                  "--gradient_accum", "4"])
    assert (result.code, result.stdout) == (2, "")
    assert BOTH in result.stderr.splitlines()


def test_both_on_the_command_line_exits_2_via_presets(cli):
    """The review's case: it printed global batch 32 with no word about the 64 asked for."""
    result = cli(["train", "-p", "zero2", "--set", "global_batch_size=64", "--dry-run", "--",
                  "--gradient_accumulation_steps", "4"])
    assert (result.code, result.stdout) == (2, "")
    assert BOTH in result.stderr.splitlines()


def test_batch_zero_with_a_global_batch_exits_2(cli):
    result = cli(["train", "-p", "zero2", "--set", "global_batch_size=64", "--set",
                  "per_device_train_batch_size=0", "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert ("error[batch.global_batch_size.invalid] args.per_device_train_batch_size (--set): global_batch_size "
            "64 cannot derive gradient_accumulation_steps: per_device_train_batch_size 0 is not a positive "
            "integer") in result.stderr.splitlines()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_command_line_steps_over_a_files_global_batch_abbreviated(cli, tmp_path):
    path = write(tmp_path, "gbs.yaml", "extends: zero2\nargs:\n  global_batch_size: 32\n")
    result = cli(["train", "-p", path, "--dry-run", "--", "--gradient_accum", "3"])
    assert result.code == 0, result.stderr
    assert "--gradient_accumulation_steps 3" in [line.strip(" \\") for line in result.stdout.splitlines()]
    assert (f"info[batch.global_batch_size.replaced] args.gradient_accumulation_steps (-- extra flags): "
            f"global_batch_size 32 from {path} was replaced by gradient_accumulation_steps 3 from -- extra flags"
            ) in result.stderr.splitlines()


def test_command_line_steps_over_a_files_global_batch_via_presets(cli, tmp_path):
    path = write(tmp_path, "gbs.yaml", "extends: zero2\nargs:\n  global_batch_size: 32\n")
    result = cli(["train", "-p", path, "--set", "gradient_accumulation_steps=3", "--dry-run"])
    assert result.code == 0, result.stderr
    assert (f"info[batch.global_batch_size.replaced] args.gradient_accumulation_steps (--set): "
            f"global_batch_size 32 from {path} was replaced by gradient_accumulation_steps 3 from --set"
            ) in result.stderr.splitlines()


def test_a_child_files_steps_over_the_parents_global_batch_via_presets(cli, tmp_path):
    parent = write(tmp_path, "parent.yaml", "extends: zero2\nargs:\n  global_batch_size: 32\n")
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\nargs:\n  gradient_accumulation_steps: 3\n")
    result = cli(["train", "-p", child, "--dry-run"])
    assert result.code == 0, result.stderr
    assert (f"info[batch.global_batch_size.replaced] args.gradient_accumulation_steps ({child}): "
            f"global_batch_size 32 from {parent} was replaced by gradient_accumulation_steps 3 from {child}"
            ) in result.stderr.splitlines()


def test_sequence_parallel_ranks_share_one_sample():
    """ms-swift #5145: 8 GPUs, batch 1, accumulation 2, sequence_parallel_size 8: one data-parallel
    rank (swift/sequence_parallel/sequence_parallel.py: dp_world_size = world_size // sp), so
    the global batch is 2, not 16."""
    result = run_cli(["validate", "-p", "ddp", "--gpus", "0,1,2,3,4,5,6,7", "--",
                      "--sequence_parallel_size", "8", "--gradient_accumulation_steps", "2"])
    lines = result.stderr.splitlines()
    i = next(n for n, line in enumerate(lines) if "[batch.global]" in line)
    assert lines[i:i + 2] == [
        "warning[batch.global] args.gradient_accumulation_steps (-- extra flags): global batch 2 = per-device 1 x "
        "grad-accum 2 x 1 data-parallel rank: sequence_parallel_size 8 splits each sample over 8 of the 8 ranks, so "
        "the batch is not x 8",
        "  hint: for a global batch of 16, raise gradient_accumulation_steps to 16 (or set global_batch_size: 16, "
        "which counts data-parallel ranks)"]


def test_global_batch_size_counts_data_parallel_ranks_only():
    result = run_cli(["train", "-p", "ddp", "--gpus", "0,1,2,3", "--set", "global_batch_size=16", "--dry-run",
                      "--format", "json", "--", "--sequence_parallel_size", "2"])
    argv = json.loads(result.stdout)["argv"]
    assert argv[argv.index("--gradient_accumulation_steps") + 1] == "8"  # 16 / (1 x 4 ranks / SP 2)
    assert ("info[batch.global_batch_size.derived] args.gradient_accumulation_steps (--set): gradient_accumulation_steps "
            "8 = global_batch_size 16 / (per-device 1 x 4 rank(s) per node x 1 node(s) / sequence_parallel_size 2)"
            ) in result.stderr.splitlines()
