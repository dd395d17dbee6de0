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
    (["plan", "-p", "single", "--simulated"], "plan --simulated: no such option (not a lorakit option, nor an ms-swift flag)",
     "did you mean --simulate? see `lorakit plan --help`; ms-swift flags go after `--`"),
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


def test_quiet_hides_information_only():
    loud = run_cli(["validate", "-p", "zero2", "--set", "save_steps=3"])
    quiet = run_cli(["validate", "-p", "zero2", "--set", "save_steps=3", "-q"])
    assert any(l.startswith("info[") for l in loud.stderr.splitlines())
    assert not any(l.startswith("info[") for l in quiet.stderr.splitlines())
    assert [l for l in quiet.stderr.splitlines() if l.startswith("warning[")] == \
        [l for l in loud.stderr.splitlines() if l.startswith("warning[")] != []


def test_findings_on_an_80_column_terminal_keep_file_and_key_whole(monkeypatch):
    import io
    import sys

    class Tty(io.StringIO):
        def isatty(self):
            return True

    from lorakit import report
    from lorakit.findings import Finding

    err = Tty()
    monkeypatch.setattr(report, "QUIET", False)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("COLUMNS", "80")
    report.print_findings([Finding("info", "lora.targets.all_linear", "target_modules all-linear puts LoRA on every "
                                   "linear layer: more memory than attention-only", hint="if memory is tight: ...",
                                   key="args.target_modules", file="built-in fragments/lora_sft")])
    text = err.getvalue()
    assert "args.target_modules (built-in fragments/lora_sft):" in text
    assert "…" not in text
