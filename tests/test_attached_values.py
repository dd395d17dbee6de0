"""A flag's one value that starts with '-' is rendered attached (`--system=-x`, render.attaches):
everything else that writes or reads lorakit's argv keeps to that (a hostile review's findings)."""

from __future__ import annotations

import json
import os

import pytest

from conftest import run_cli
from lorakit import replay, runindex
from lorakit.render import Command, attaches
from test_checkpoints import make_adapter


@pytest.mark.parametrize("items, attached", [
    (["-x"], True), (["-1e-05"], True), (["--8"], True), (["-h x"], True),
    (["-"], False), (["--"], False),  # '-' is a value as it is; argparse drops an attached '--' (`--system=--` is [])
    (["-1"], False), (["-.5"], False),  # negative numbers are values as they are
    (["x"], False), (["-x", "y"], False), ([], False),
])
def test_what_attaches(items, attached):
    assert attaches(items) is attached


def test_a_lone_double_dash_is_still_refused():
    result = run_cli(["train", "-p", "single", "--set", "system='--'", "--dry-run"])
    assert result.code == 2
    assert ("error[flags.value] args.system (--set): system: argparse reads the value '--' as an option because it "
            "starts with '-'") in result.stderr


@pytest.mark.parametrize("version", ["4", "3"])
def test_swift_yaml_cannot_attach_and_says_so(version):
    result = run_cli(["train", "-p", "single", "--swift-version", version, "--set", "system=-x", "--dry-run",
                      "--format", "swift-yaml"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        "lorakit: error: --format swift-yaml: system is '-x', which ms-swift's config reader turns back into "
        "`--system -x`, and argparse then reads '-x' as an option\n"
        "  hint: use --format sh (or text): the command line writes it attached, --system=-x\n")


def test_set_twice_shows_each_value_as_it_can_be_pasted():
    result = run_cli(["train", "-p", "single", "--dry-run", "--", "--system=-x", "--system=-y"])
    assert result.code == 2
    assert ("error[flags.twice] args.system (-- extra flags): system is set twice on the command line, to different "
            "values: -- --system=-x and -- --system=-y") in result.stderr


def test_a_long_attached_value_is_named_by_its_flag(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(f"extends: single\nargs:\n  system: '-{'x' * 140_000}'\n", encoding="utf-8")
    result = run_cli(["validate", "-p", str(path)])
    assert result.code == 2
    assert (f"error[argv.item_too_long] args.system ({path}): --system=… is 140,010 bytes: one command-line "
            "item may hold at most 131,071 (the kernel's MAX_ARG_STRLEN)") in result.stderr


def test_replay_compares_attached_values():
    recorded = {"env": {}, "argv": ["swift", "sft", "--model", "m", "--system=-x"]}
    rendered = Command(env={}, argv=["swift", "sft", "--model", "m", "--system=-y"])
    assert replay.differences(rendered, recorded) == ["--system: the record has -x, this renders -y"]
    assert replay.differences(Command(env={}, argv=recorded["argv"]), recorded) == []


def test_the_run_dir_is_told_by_attached_values_too(tmp_path):
    run = tmp_path / "v0"
    run.mkdir()
    (run / "args.json").write_text(json.dumps({"system": "-x", "lora_rank": 8}))
    assert runindex._differences(run, ["--system=-x", "--lora_rank", "8"]) == 0
    assert runindex._differences(run, ["--system=-y", "--lora_rank", "8"]) == 1
    assert runindex._differences(run, ["--lora_rank", "16", "--system=-y"]) == 2


def test_import_says_the_script_fails_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.sh").write_text("#!/bin/bash\nswift sft --model Qwen/Qwen3-8B --system -x\n")
    result = run_cli(["import", "s.sh"])
    assert result.code == 0, result.stderr
    assert "  system: -x\n" in result.stdout
    assert ("warning[import.value.dash] args.system (s.sh): line 2: --system -x: ms-swift's argparse reads '-x' as an "
            "option, so the script fails as written; lorakit renders it --system=-x") in result.stderr.splitlines()


def test_a_run_dir_whose_checkpoints_hold_a_pipe_says_to_put_the_config_back(tmp_path):
    ckpt = make_adapter(tmp_path / "out" / "v0-20260101-120000" / "checkpoint-5")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 5, "log_history": []}))
    (ckpt / "adapter_config.json").unlink()
    os.mkfifo(ckpt / "adapter_config.json")
    result = run_cli(["merge", "--adapters", str(tmp_path / "out"), "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-1] == "  hint: put the adapter_config.json each run saved back in place"
