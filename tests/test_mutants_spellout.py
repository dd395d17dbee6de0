"""Gaps a mutation run (mutmut 3.8.1) found in spellout.py: who set the other spelling in a
conflict between two abbreviations, keys after a conflict, `--no_x false`, the version
spelling used to resolve a key, and a command that is not text."""

from __future__ import annotations

from lorakit.findings import Finding
from lorakit.spellout import spell_out


def test_two_abbreviations_on_the_command_line_name_each_option():
    out, notes, origin = spell_out(
        {"lora_r": 8, "lora_ra": 16, "seed": 1}, "the command line", major=4, command="sft",
        sources={"lora_r": "--set", "lora_ra": "-- extra flags", "seed": "--set"})
    assert out == {"lora_rank": 8, "seed": 1}  # the key after the conflict is kept
    assert origin == {"lora_rank": "lora_r", "seed": "seed"}
    assert notes == [
        Finding("warning", "flags.abbreviation", "--lora_r is argparse's abbreviation of --lora_rank: rendered in full",
                hint="write lora_rank in the preset", key="args.lora_r", file="--set"),
        Finding("error", "flags.abbreviation.conflict",
                "--lora_ra (-- extra flags) is --lora_rank, which is also set (--set)",
                hint="keep one: write lora_rank once", key="args.lora_ra", file="-- extra flags"),
    ]


def test_an_abbreviation_beside_the_full_name_names_the_full_names_option():
    out, notes, _ = spell_out({"lora_r": 8, "lora_rank": 16}, "the command line", major=4, command="sft",
                              sources={"lora_r": "--set", "lora_rank": "-- extra flags"})
    assert out == {"lora_rank": 16}
    assert [n.message for n in notes] == ["--lora_r (--set) is --lora_rank, which is also set (-- extra flags)"]


def test_keys_after_a_conflict_in_a_file_are_kept():
    out, notes, _ = spell_out({"lora_r": 8, "lora_ra": 16, "seed": 1, "lora_alpha": 32}, "p.yaml",
                              major=4, command="sft")
    assert out == {"lora_rank": 8, "seed": 1, "lora_alpha": 32}
    assert [n.code for n in notes] == ["flags.abbreviation", "flags.abbreviation.conflict"]


def test_the_negative_switch_with_true_and_false():
    off = spell_out({"no_check_model": True}, "p.yaml", major=4, command="sft")
    on = spell_out({"no_check_model": "false"}, "p.yaml", major=4, command="sft")
    assert off[0] == {"check_model": False} and on[0] == {"check_model": True}
    assert [n.message for n in off[1]] == [
        "--no_check_model is the negative switch of --check_model: rendered as --check_model false"]
    assert [n.hint for n in on[1]] == ["write check_model: true in the preset"]


def test_a_key_is_resolved_in_the_targets_own_spelling():
    # 3.x `swift export` calls it mcore_adapters; resolving the internal name as typed would
    # read mcore_adapter as an abbreviation of mcore_adapters and warn about it.
    assert spell_out({"mcore_adapter": "a"}, "p.yaml", major=3, command="export") == (
        {"mcore_adapter": "a"}, [], {"mcore_adapter": "mcore_adapter"})


def test_no_flag_table_without_a_major_or_a_text_command():
    for major, command in ((None, "sft"), (4, None), (4, ["sft"]), (4, 5)):
        assert spell_out({"lora_r": 8}, "p.yaml", major=major, command=command) == (
            {"lora_r": 8}, [], {"lora_r": "lora_r"})
