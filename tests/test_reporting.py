"""report_to: a tracker transformers does not know, and one the environment `swift` runs in lacks.
Both fail only when the Trainer starts, after the model and the data load (the real ms-swift
failures are asserted in tests/test_real_failures.py: report-to-*)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from conftest import run_cli


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, '
                                          '{"role": "assistant", "content": "hello"}]}\n' * 20)
    return tmp_path


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error[")]


def _validate(*flags: str, command: str = "validate"):
    return run_cli([command, "-p", "single", "--swift-version", "4.6", "--dataset", "train.jsonl",
                    *(["--dry-run"] if command != "validate" else []), "--", *flags])


KNOWN = ("azure_ml, comet_ml, mlflow, neptune, tensorboard, trackio, wandb, codecarbon, clearml, dagshub, flyte, "
         "dvclive, swanlab, kubeflow, all, none")


def test_an_unknown_tracker_is_refused_with_did_you_mean(here):
    result = _validate("--report_to", "tensorboard", "wandbb")
    assert result.code == 2
    lines = result.stderr.splitlines()
    at = lines.index("error[args.report_to.unknown] args.report_to (-- extra flags): report_to 'wandbb' is no "
                     "tracker transformers knows: the Trainer refuses it when it starts, after the model and the "
                     "dataset have loaded")
    assert lines[at + 1] == f"  hint: did you mean 'wandb'? one or more of: {KNOWN}"
    assert len(_errors(result.stderr)) == 1  # tensorboard is known


@pytest.mark.parametrize("value", ["none", "all", "tensorboard", "kubeflow"])
def test_the_words_transformers_reads_pass(here, value):
    result = _validate("--report_to", value)
    assert "args.report_to.unknown" not in result.stderr


def test_a_comma_list_is_split_and_each_name_judged(here):
    result = _validate("--report_to", "tensorboard,mlfow")
    assert result.code == 2
    assert ("info[args.list_string] args.report_to (-- extra flags): report_to 'tensorboard,mlfow' is one string; "
            "rendered as separate items: tensorboard mlfow") in result.stderr
    assert [e.split(":")[0] for e in _errors(result.stderr)] == [
        "error[args.report_to.unknown] args.report_to (-- extra flags)"]
    assert "report_to 'mlfow' is no tracker" in result.stderr


def _missing_line(name: str, dist: str, when: str) -> str:
    return (f"error[env.report_to_missing] args.report_to (-- extra flags): report_to {name} needs the {dist} "
            f"package, which the environment `swift` runs in lacks: the run would stop {when}")


def test_a_tracker_the_swift_environment_lacks_is_refused(here):
    pytest.importorskip("swift")  # the swift on PATH is this Python's (scripts/test.sh)
    if any(importlib.util.find_spec(name) for name in ("wandb", "swanlab")):
        pytest.skip("this environment has wandb or swanlab")
    result = _validate("--report_to", "wandb", "swanlab")
    assert result.code == 2
    assert _errors(result.stderr) == [
        _missing_line("wandb", "wandb", "when the Trainer starts, after the model and the dataset have loaded"),
        _missing_line("swanlab", "swanlab", "while it reads the arguments (sft_args.py _init_swanlab)")]
    assert ("  hint: pip install wandb there, or leave wandb out of report_to (none: the console and ms-swift's "
            "logging.jsonl only)") in result.stderr.splitlines()


def test_a_tracker_whose_distribution_is_installed_passes(here, tmp_path):
    pytest.importorskip("swift")
    site = tmp_path / "site"
    (site / "wandb-0.19.1.dist-info").mkdir(parents=True)
    (site / "tensorboardX-2.6.dist-info").mkdir(parents=True)
    sys.path.insert(0, str(site))
    try:
        result = _validate("--report_to", "wandb", "tensorboard")
    finally:
        sys.path.remove(str(site))
    assert "env.report_to_missing" not in result.stderr, result.stderr


def test_a_dry_run_is_for_another_machine_and_does_not_judge_packages(here):
    result = _validate("--report_to", "wandb", command="train")
    assert result.code == 0, result.stderr
    assert "report_to_missing" not in result.stderr
    assert result.stdout.splitlines()[-1] == "    --report_to wandb"


def test_rlhf_is_judged_too(here, tmp_path):
    preset = tmp_path / "dpo.yaml"
    preset.write_text("extends: single\ncommand: rlhf\nargs:\n  rlhf_type: dpo\n  report_to: [wandbb]\n")
    result = run_cli(["validate", "-p", str(preset), "--swift-version", "4.6", "--dataset", "train.jsonl"])
    assert "error[args.report_to.unknown] args.report_to" in result.stderr
