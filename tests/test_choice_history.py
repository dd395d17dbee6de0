"""Choices per minor (the history's `choices`, scripts/gen_swift_history.py): a Literal flag's
choices in an older ms-swift minor, where they are not the snapshot's.

Facts read from the wheels (the last patch of each minor): 3.x RLHFArguments.rlhf_type is
Literal['dpo', 'orpo', 'simpo', 'kto', 'cpo', 'rm', 'ppo'] in 3.0.3, gains 'grpo' in 3.1 and
'gkd' in 3.6; ModelArguments.rope_scaling is Literal['linear', 'dynamic'] to 3.3, adds 'yarn' in
3.4, and is a plain str from 3.7.
"""

from __future__ import annotations

import pytest

from conftest import run_cli
from lorakit import flaghistory as fh
from lorakit import swiftflags as sf

RLHF_30 = ("dpo", "orpo", "simpo", "kto", "cpo", "rm", "ppo")


def _spec(major: int, command: str, name: str) -> sf.FlagSpec:
    return sf.load_flags(major, command)[name]


def test_choices_of_an_older_minor():
    spec = _spec(3, "rlhf", "rlhf_type")
    assert spec.choices == (*RLHF_30, "grpo", "gkd")  # the 3.12.6 snapshot
    assert fh.choices_in(3, "rlhf", spec, "3.0") == RLHF_30
    assert fh.choices_in(3, "rlhf", spec, "3.5") == (*RLHF_30, "grpo")
    assert fh.choices_in(3, "rlhf", spec, "3.6") == spec.choices
    # a plain str from 3.7: no choices there, though the 3.12 snapshot has none either
    rope = _spec(3, "sft", "rope_scaling")
    assert rope.choices is None
    assert fh.choices_in(3, "sft", rope, "3.4") == ("linear", "dynamic", "yarn")
    assert fh.choices_in(3, "sft", rope, "3.8") is None


@pytest.mark.parametrize("command, name, value, minor, expected", [
    ("rlhf", "rlhf_type", "grpo", "3.0", fh.ChoiceAbsence("rlhf_type", "grpo", "3.0", RLHF_30, "3.1", None)),
    ("rlhf", "rlhf_type", "gkd", "3.3", fh.ChoiceAbsence("rlhf_type", "gkd", "3.3", (*RLHF_30, "grpo"), "3.6", None)),
    # every released 3.0 patch (3.0.0 of 2024-12-20 to 3.0.3) has 'rm'
    ("rlhf", "rlhf_type", "rm", "3.0", None),
    ("rlhf", "rlhf_type", "gkd", "3.6", None),
    # in no minor: check_value's own "is not one of" says it
    ("rlhf", "rlhf_type", "xyz", "3.0", None),
    ("sft", "rope_scaling", "yarn", "3.2",
     fh.ChoiceAbsence("rope_scaling", "yarn", "3.2", ("linear", "dynamic"), "3.4", None)),
    # 3.7 on takes any text: no minor lists 'longrope', so it is no choice "from 3.7"
    ("sft", "rope_scaling", "longrope", "3.5", None),
    # 3.9's scale_rewards is a bool (no choices), 3.10's a Literal: 'true' is not "last in 3.9"
    ("rlhf", "scale_rewards", "true", "3.10", None),
    # a list value: its first item the minor lacks
    ("sft", "task_type", ["embedding"], "3.0",
     fh.ChoiceAbsence("task_type", "embedding", "3.0", ("causal_lm", "seq_cls"), "3.1", None)),
])
def test_choice_absence(command, name, value, minor, expected):
    assert fh.choice_absence(3, command, _spec(3, command, name), value, minor) == expected


def test_the_minor_choices_replace_the_snapshots_for_check_value():
    spec = _spec(3, "rlhf", "rlhf_type")
    assert sf.check_value(fh.spec_at(3, "rlhf", spec, "3.0"), "xyz") == (
        "rlhf_type: 'xyz' is not one of dpo, orpo, simpo, kto, cpo, rm, ppo")
    assert fh.spec_at(3, "rlhf", spec, "3.6") is spec
    rope = _spec(3, "sft", "rope_scaling")
    assert sf.check_value(fh.spec_at(3, "sft", rope, "3.5"), "longrope") == (
        "rope_scaling: 'longrope' is not one of linear, dynamic, yarn")
    assert sf.check_value(fh.spec_at(3, "sft", rope, "3.8"), "longrope") is None


def _rlhf_preset(tmp_path) -> str:
    # Qwen2-VL is registered in every 3.x minor (the default Qwen3-8B only from 3.4)
    path = tmp_path / "rlhf.yaml"
    path.write_text("extends: single\ncommand: rlhf\nargs: {model: Qwen/Qwen2-VL-7B-Instruct}\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("minor, value, expected", [
    ("3.0", "grpo",
     "error[flags.too_new] args.rlhf_type (-- extra flags): rlhf_type: 'grpo' is not a choice in ms-swift 3.0 "
     "(it is from 3.1); 3.0 takes dpo, orpo, simpo, kto, cpo, rm, ppo\n"
     "  hint: upgrade to ms-swift 3.1 or later (pip install 'ms-swift>=3.1,<4'), or pick one of 3.0's choices"),
    ("3.5", "gkd",
     "error[flags.too_new] args.rlhf_type (-- extra flags): rlhf_type: 'gkd' is not a choice in ms-swift 3.5 "
     "(it is from 3.6); 3.5 takes dpo, orpo, simpo, kto, cpo, rm, ppo, grpo\n"
     "  hint: upgrade to ms-swift 3.6 or later (pip install 'ms-swift>=3.6,<4'), or pick one of 3.5's choices"),
    ("3.0", "xyz",
     "error[flags.value] args.rlhf_type (-- extra flags): rlhf_type: 'xyz' is not one of dpo, orpo, simpo, kto, "
     "cpo, rm, ppo\n  hint: fix --rlhf_type after --"),
])
def test_a_choice_the_target_minor_lacks_is_refused(tmp_path, minor, value, expected):
    result = run_cli(["validate", "-p", _rlhf_preset(tmp_path), "--swift-version", minor, "--", "--rlhf_type", value])
    assert result.code == 2, result.stderr
    lines = result.stderr.splitlines()
    # the finding and its hint, and no other flags finding about rlhf_type
    assert [f"{line}\n{lines[i + 1]}" for i, line in enumerate(lines) if "args.rlhf_type" in line] == [expected]


@pytest.mark.parametrize("minor, value", [("3.0", "rm"), ("3.6", "gkd"), ("3.12", "gkd"), ("4.0", "gkd")])
def test_a_choice_the_target_minor_has_passes(tmp_path, minor, value):
    result = run_cli(["validate", "-p", _rlhf_preset(tmp_path), "--swift-version", minor, "--", "--rlhf_type", value])
    assert result.code == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error")] == []


def test_a_choice_older_minors_had_passes_there(tmp_path):
    # 3.6's rope_scaling is a Literal with yarn; 3.8's takes any text (no 3.12 snapshot choices to break it)
    preset = _rlhf_preset(tmp_path)
    assert run_cli(["validate", "-p", preset, "--swift-version", "3.6", "--set", "rope_scaling=yarn"]).code == 0
    assert run_cli(["validate", "-p", preset, "--swift-version", "3.8", "--set", "rope_scaling=longrope"]).code == 0
    result = run_cli(["validate", "-p", preset, "--swift-version", "3.2", "--set", "rope_scaling=yarn"])
    assert result.code == 2
    assert ("error[flags.too_new] args.rope_scaling (--set): rope_scaling: 'yarn' is not a choice in ms-swift 3.2 "
            "(it is from 3.4); 3.2 takes linear, dynamic") in result.stderr.splitlines()


def test_a_choice_a_later_minor_dropped(monkeypatch, tmp_path):
    """No released minor has dropped a choice yet; a history in which 3.1-3.5 took 'ipo' shows
    the message a later minor would give (the lookup and the finding, not the data)."""
    import copy

    history = copy.deepcopy(fh._history())
    history["3"]["commands"]["rlhf"]["choices"]["rlhf_type"][1]["choices"].append("ipo")
    monkeypatch.setattr(fh, "_history", lambda: history)
    spec = _spec(3, "rlhf", "rlhf_type")
    assert fh.choice_absence(3, "rlhf", spec, "ipo", "3.8") == fh.ChoiceAbsence(
        "rlhf_type", "ipo", "3.8", spec.choices, None, "3.5")
    result = run_cli(["validate", "-p", _rlhf_preset(tmp_path), "--swift-version", "3.8", "--", "--rlhf_type", "ipo"])
    assert result.code == 2
    assert ("error[flags.removed] args.rlhf_type (-- extra flags): rlhf_type: 'ipo' is no longer a choice in "
            "ms-swift 3.8 (last in 3.5); 3.8 takes dpo, orpo, simpo, kto, cpo, rm, ppo, grpo, gkd\n"
            "  hint: pick one of 3.8's choices") in result.stderr
