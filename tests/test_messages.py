"""Messages a person can act on: a lorakit option mistyped is a lorakit option with did-you-mean, a
lorakit option after `--` says so, a command refuses what it does not know, one mistake is one finding."""

from __future__ import annotations

import pytest

from conftest import run_cli


@pytest.mark.parametrize("args, message, hint", [
    (["train", "-p", "single", "--dryrun"], "train --dryrun: no such option (not a lorakit option, nor an ms-swift flag)",
     "did you mean --dry-run? see `lorakit train --help`; ms-swift flags go after `--`"),
    (["validate", "-p", "single", "--lora-rnak", "8"],
     "validate --lora-rnak: no such option (not a lorakit option, nor an ms-swift flag)",
     "did you mean --lora-rank? see `lorakit validate --help`; ms-swift flags go after `--`"),
    (["plan", "-p", "single", "--simulate"], "plan --simulate: no such option (not a lorakit option, nor an ms-swift flag)",
     "see `lorakit plan --help`; ms-swift flags go after `--`"),
    (["train", "-p", "single", "--", "--max_steps", "3", "--dry-run"],
     "train: --dry-run comes after `--`, so it would go to ms-swift, which has no such flag",
     "put --dry-run before `--`: it is a lorakit option"),
])
def test_options_in_the_wrong_place(args, message, hint):
    result = run_cli(args)
    assert result.code == 2 and result.stdout == ""
    assert result.stderr == f"lorakit: error: {message}\n  hint: {hint}\n"


def test_ms_swift_flags_before_the_separator_still_pass():
    result = run_cli(["train", "-p", "single", "--max_steps", "3", "--dry-run"])
    assert result.code == 0, result.stderr
    assert "    --max_steps 3" in result.stdout.splitlines()


def test_one_mistake_is_one_finding():
    result = run_cli(["validate", "-p", "single", "--set", "lora_rank=eight"])
    assert result.code == 2
    assert [l for l in result.stderr.splitlines() if l.startswith("error[")] == [
        "error[flags.value] args.lora_rank (--set): lora_rank expects an integer, got 'eight'"]


def test_no_message_names_the_seed_document():
    for args in (["validate", "-p", "ddp", "--set", "lora_alpha=512", "--set", "save_steps=2"],
                 ["validate", "-p", "ddp", "--set", "gradient_checkpointing_kwargs={use_reentrant: true}"],
                 ["presets", "list"]):
        result = run_cli(args)
        assert "seed" not in (result.stdout + result.stderr).lower(), args
