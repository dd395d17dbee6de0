"""flags.respelled: lorakit renders the target major's name of a renamed flag and says so when
the user wrote the other major's (ms-swift #7836, #8006: --tuner_type on 3.x)."""

from __future__ import annotations

import json

from conftest import run_cli


def _said(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "[flags.respelled]" in line]


def _preset(tmp_path, flag: str) -> str:
    path = tmp_path / "mine.yaml"
    path.write_text(f"command: sft\nextends: single\nargs:\n  {flag}: lora\n")
    return str(path)


def test_a_3x_name_in_a_file_for_a_4x_target(tmp_path):
    preset = _preset(tmp_path, "train_type")
    result = run_cli(["train", "-p", preset, "--swift-version", "4", "--dry-run", "--format", "json"])
    assert result.code == 0
    assert _said(result.stderr) == [
        f"info[flags.respelled] args.tuner_type ({preset}): train_type is another ms-swift major's name for "
        "--tuner_type: rendered as --tuner_type for ms-swift 4.x, which has no --train_type"]
    argv = json.loads(result.stdout)["argv"]
    assert argv[argv.index("--tuner_type") + 1] == "lora" and "--train_type" not in argv


def test_a_4x_name_after_dashes_for_a_3x_target():
    result = run_cli(["validate", "-p", "single", "--swift-version", "3", "--", "--tuner_type", "lora"])
    assert result.code == 0
    assert _said(result.stderr) == [
        "info[flags.respelled] args.tuner_type (-- extra flags): tuner_type is another ms-swift major's name for "
        "--train_type: rendered as --train_type for ms-swift 3.x, which has no --tuner_type"]
    assert "  hint: write train_type to match ms-swift 3.x's own docs and scripts" in result.stderr


def test_set_and_dashed_spelling_count_too():
    result = run_cli(["validate", "-p", "single", "--swift-version", "3", "--set", "tuner-type=lora"])
    assert [line.split(": ", 1)[0] for line in _said(result.stderr)] == [
        "info[flags.respelled] args.tuner_type (--set)"]


def test_the_target_majors_own_name_and_the_builtins_are_not_said(tmp_path):
    assert _said(run_cli(["validate", "-p", "single", "--swift-version", "3"]).stderr) == []  # built-ins: 4.x names
    assert _said(run_cli(["validate", "-p", "single", "--swift-version", "3", "--", "--train_type", "lora"]).stderr) == []
    assert _said(run_cli(["validate", "-p", _preset(tmp_path, "tuner_type"), "--swift-version", "4"]).stderr) == []


def test_a_file_spelling_the_command_line_overrides_is_not_said(tmp_path):
    preset = _preset(tmp_path, "train_type")
    assert _said(run_cli(["validate", "-p", preset, "--swift-version", "4", "--", "--tuner_type", "lora"]).stderr) == []
