"""Regression tests for what an adversarial review broke: each input here crashed with a
traceback, hung, or passed every check and then failed at launch."""

from __future__ import annotations

import json
import os
import time

import pytest

from conftest import run_cli
from lorakit import values


@pytest.mark.parametrize("raw, expected", [
    (8, 8), ("8", 8), (" 8 ", 8), ("+8", 8), ("-8", -8), (8.0, 8), ("1_0", 10),
    ("٣", 3),  # int() reads any Unicode decimal digit, and so does ms-swift's argparse
    ("--8", None), ("²", None), ("8.5", None), (8.5, None), (True, None), (None, None), ("", None),
    ([8], None), ("eight", None),
])
def test_as_int_reads_like_argparse(raw, expected):
    assert values.as_int(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    (None, 1), (2, 2), ("2", 2), (0, None), ("--2", None), ("²", None), (True, None), (2.5, None),
])
def test_node_count(raw, expected):
    assert values.node_count(raw) == expected


def test_as_finite_float_refuses_nan_and_inf():
    assert [values.as_finite_float(v) for v in ("nan", "inf", "-inf", "1e400", "2.5", 3)] == [
        None, None, None, None, 2.5, 3.0]


def _preset(tmp_path, body: str, name: str = "p.yaml") -> str:
    path = tmp_path / name
    path.write_text("extends: single\n" + body, encoding="utf-8")
    return str(path)


def test_signed_rank_in_a_preset_is_a_finding_and_json_still_prints(tmp_path):
    path = _preset(tmp_path, "args: {lora_rank: --8}\n")
    result = run_cli(["validate", "-p", path])
    assert result.code == 2
    assert f"error[flags.value] args.lora_rank ({path}): lora_rank expects an integer, got '--8'" in result.stderr
    data = json.loads(run_cli(["validate", "-p", path, "--json"]).stdout)
    assert data["ok"] is False
    assert {"code": "flags.value", "key": "args.lora_rank"}.items() <= next(
        f for f in data["findings"] if f["code"] == "flags.value").items()


@pytest.mark.parametrize("args, line", [
    (["--set", 'lora_rank="²"'], "error[flags.value] args.lora_rank (--set): lora_rank expects an integer, got '²'"),
    (["--set", "launch.nproc_per_node=--8"],
     "error[layout.nproc.invalid] launch.nproc_per_node (--set): nproc_per_node '--8' is not a number of processes"),
    (["--set", 'launch.nnodes="--2"'],
     "error[nodes.nnodes.invalid] launch.nnodes (--set): nnodes '--2' is not a number of nodes (1 or more)"),
    (["--set", 'launch.master_port="²"'],
     "error[nodes.master_port.range] launch.master_port (--set): master_port '²' is not a port in 1024-65535"),
    (["--swift-version", "²"], "lorakit: error: --swift-version '²': lorakit renders for ms-swift 3 or 4"),
])
def test_odd_numbers_are_exit_2_with_the_key(args, line):
    result = run_cli(["validate", "-p", "single", *args])
    assert result.code == 2, result.stderr
    assert line in result.stderr.splitlines()


def test_date_keys_in_a_mapping_stop_the_dry_run():
    result = run_cli(["train", "-p", "single", "--set", "model_kwargs={2024-01-01: 1}", "--dry-run"])
    assert result.code == 2 and result.stdout == ""
    assert ("error[flags.value] args.model_kwargs (--set): model_kwargs has the key '2024-01-01' in a mapping, "
            "which YAML read as a date: mapping keys must be text or numbers; quote it") in result.stderr


def test_numeric_keys_render_as_json_text():
    result = run_cli(["train", "-p", "single", "--set", "model_kwargs={1: 2, 2.5: 3}", "--dry-run"])
    assert result.code == 0, result.stderr
    assert """    --model_kwargs '{"1": 2, "2.5": 3}'\n""" in result.stdout


BOMB = """\
args:
  model_kwargs:
    a: &a [x, x, x, x, x, x, x, x, x]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_yaml_alias_bomb_is_refused_at_once(tmp_path):
    path = _preset(tmp_path, BOMB)
    start = time.monotonic()
    result = run_cli(["train", "-p", path, "--dry-run"])
    assert time.monotonic() - start < 20  # generous: it took over 60 s and printed 28 MB before
    assert result.code == 2 and result.stdout == ""
    assert result.stderr == (f"lorakit: error: {path}:5: YAML alias *a: presets do not use anchors and aliases\n"
                             "  hint: write the value out where it is used, or share settings with 'extends:'\n")


def test_self_containing_alias_in_set_is_refused():
    result = run_cli(["validate", "-p", "single", "--set", "model_kwargs=&a [*a]"])
    assert result.code == 2
    assert result.stderr.startswith(
        "lorakit: error: --set 'model_kwargs=&a [*a]': YAML alias *a: presets do not use anchors and aliases\n")


def test_a_star_in_text_is_not_an_alias(tmp_path):
    path = _preset(tmp_path, "args: {system: 'answer in *bold* when asked'}\n")
    assert run_cli(["validate", "-p", path]).code == 0


def test_flag_name_with_equals_is_refused(tmp_path):
    path = _preset(tmp_path, 'args: {"model=evil": 1}\n')
    result = run_cli(["validate", "-p", path])
    assert result.code == 2
    assert result.stderr == (f"lorakit: error: {path}: key args.'model=evil' is not an ms-swift flag name\n"
                             "  hint: letters, digits, '_' and '-', starting with a letter: a value goes after the ':'\n")


def test_set_flag_name_with_space_is_refused():
    result = run_cli(["validate", "-p", "single", "--set", "lora rank=8"])
    assert result.code == 2
    assert result.stderr.startswith("lorakit: error: --set 'lora rank=8': 'lora rank' is not an ms-swift flag name\n")


# A value that starts with '-' is attached to its flag (`--system=-x`): argparse never reads
# what follows a long option's '=' as an option. tests/test_leftovers.py proves it with
# ms-swift's own parser.
@pytest.mark.parametrize("value, item", [
    ("--model=a b", "--system=--model=a b"),
    ("--mod=a b", "--system=--mod=a b"),
    ("-h x", "--system=-h x"),
    ("-x", "--system=-x"),
    ("--8", "--system=--8"),
    ("--not-a-flag-at-all and more", "--system=--not-a-flag-at-all and more"),
    ("-8", "--system"),  # a negative number is a value as it is: `--system -8`
])
def test_values_that_start_with_a_dash_are_attached(value, item):
    result = run_cli(["train", "-p", "single", "--set", f"system={json.dumps(value)}", "--dry-run", "--format", "json"])
    assert result.code == 0, result.stderr
    argv = json.loads(result.stdout)["argv"]
    if item == "--system":
        assert argv[argv.index(item) + 1] == value
    else:
        assert item in argv and "--system" not in argv


def test_a_dash_value_inside_a_list_is_still_refused():
    # only a flag's one value can be attached: `--target_modules q_proj -x` ends the list at -x
    result = run_cli(["validate", "-p", "single", "--set", 'target_modules=["q_proj", "-x"]'])
    assert result.code == 2
    assert ("error[flags.value] args.target_modules (--set): target_modules: argparse reads the value '-x' as "
            "an option because it starts with '-'") in result.stderr


def test_a_200kb_value_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    out = tmp_path / "out"
    path = _preset(tmp_path, f"args:\n  output_dir: {out}\n  system: '{'x' * 200_000}'\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # no swift needed: nothing may start
    result = run_cli(["train", "-p", path])
    assert result.code == 2
    assert (f"error[argv.item_too_long] args.system ({path}): a value of --system is 200,000 bytes: one "
            "command-line item may hold at most 131,071 (the kernel's MAX_ARG_STRLEN)") in result.stderr
    assert not out.exists()


def test_300k_datasets_exceed_arg_max(tmp_path):
    from lorakit.checks.argv import arg_max

    path = _preset(tmp_path, "args:\n  dataset: [" + ",".join(f"d{i}" for i in range(300_000)) + "]\n")
    result = run_cli(["validate", "-p", path])
    assert result.code == 2
    line = next(l for l in result.stderr.splitlines() if "argv.too_long" in l)
    assert line.startswith("error[argv.too_long] the command line and environment would be ")
    assert f"(300,043 argv items): the kernel takes at most {arg_max():,} (ARG_MAX)" in line


@pytest.mark.parametrize("grace, shown", [("nan", "nan"), ("-5", "-5.0"), ("inf", "inf")])
def test_grace_must_be_finite_and_not_negative(grace, shown):
    result = run_cli(["train", "-p", "single", "--dry-run", "--grace", grace])
    assert result.code == 2 and result.stdout == ""
    assert (f"Invalid value for '--grace': {shown} is not a number of seconds from 0 to 86400; "
            "e.g. --grace 30 (the default)") in result.stderr


def test_preset_paths_that_are_not_files(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "gone.yaml")
    cases = {
        str(tmp_path / "dir.yaml"): "is a directory, not a YAML file",
        str(tmp_path / "fifo.yaml"): "is a FIFO (named pipe), not a YAML file",
        str(tmp_path / "loop.yaml"): "is a symlink loop",
        str(tmp_path / "dangling.yaml"): "is a broken symlink",
        "/dev/null": "is a character device, not a YAML file",
        str(tmp_path / "absent.yaml"): "does not exist",
    }
    for path, what in cases.items():
        result = run_cli(["validate", "-p", path])
        assert result.code == 2
        assert result.stderr.splitlines()[0] == f"lorakit: error: --preset: preset file {path!r} {what}"


@pytest.mark.parametrize("grace", ["nan", "-1"])
def test_merge_grace_is_checked_too(grace):
    result = run_cli(["merge", "--adapters", "x", "--grace", grace, "--dry-run"])
    assert result.code == 2 and "Invalid value for '--grace'" in result.stderr


def _rendered_flags(stdout: str, *names: str) -> list[str]:
    return [line.strip(" \\") for line in stdout.splitlines() if line.strip().split(" ")[0] in names]


def test_a_user_preset_over_a_built_in_may_abbreviate(tmp_path):
    # the built-in fragment sets lora_rank and gradient_accumulation_steps in full; the child's
    # abbreviations are the same flags one layer up, so they win (they were a conflict before)
    path = _preset(tmp_path, "args: {lora_r: 16, lora_alpha: 64, gradient_accumulation: 4}\n")
    result = run_cli(["train", "-p", path, "--dry-run"])
    assert result.code == 0, result.stderr
    assert _rendered_flags(result.stdout, "--lora_rank", "--gradient_accumulation_steps") == [
        "--lora_rank 16", "--gradient_accumulation_steps 4"]
    assert (f"warning[flags.abbreviation] args.lora_r ({path}): --lora_r is argparse's abbreviation of "
            "--lora_rank: rendered in full") in result.stderr


def test_a_full_name_in_a_grandchild_beats_an_abbreviation_in_its_parent(tmp_path):
    parent = _preset(tmp_path, "args: {lora_r: 16, lora_alpha: 64}\n", "parent.yaml")
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {parent}\nargs: {{lora_rank: 32, lora_alpha: 128}}\n")
    result = run_cli(["train", "-p", str(child), "--dry-run"])
    assert result.code == 0, result.stderr
    assert _rendered_flags(result.stdout, "--lora_rank") == ["--lora_rank 32"]


def test_an_abbreviation_in_a_grandchild_beats_a_full_name_in_its_parent(tmp_path):
    parent = _preset(tmp_path, "args: {lora_rank: 32, lora_alpha: 128}\n", "parent.yaml")
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {parent}\nargs: {{lora_r: 16, lora_alpha: 64}}\n")
    result = run_cli(["train", "-p", str(child), "--dry-run", "--set", "no_gradient_checkpointing=true"])
    assert result.code == 0, result.stderr
    assert _rendered_flags(result.stdout, "--lora_rank", "--gradient_checkpointing") == [
        "--lora_rank 16", "--gradient_checkpointing false"]


def test_two_spellings_on_one_command_line_conflict():
    result = run_cli(["validate", "-p", "single", "--set", "lora_r=4", "--", "--lora_rank", "16"])
    assert result.code == 2
    assert ("error[flags.abbreviation.conflict] args.lora_r (--set): --lora_r (--set) is --lora_rank, which is "
            "also set (-- extra flags)") in result.stderr.splitlines()


def test_null_removes_an_inherited_flag_for_the_checks_too(tmp_path):
    # the README's promise: null removes a flag an earlier layer set (the rank checks saw None)
    path = _preset(tmp_path, "args: {lora_rank: null, lora_alpha: null}\n")
    result = run_cli(["train", "-p", path, "--dry-run"])
    assert result.code == 0, result.stderr
    assert "--lora_rank" not in result.stdout and "--lora_alpha" not in result.stdout


def test_a_global_batch_past_a_float_takes_integer_arithmetic():
    result = run_cli(["validate", "-p", "single", "--set", "global_batch_size=1" + "0" * 309])
    assert result.code == 0 and "Traceback" not in result.stderr


def test_gpu_ids_are_ascii_digits():
    result = run_cli(["validate", "-p", "single", "--gpus", "٣"])
    assert result.code == 2
    assert ("error[layout.gpus.invalid] launch.gpus (--gpus): GPU list '٣' has entries that are not GPU ids: "
            "'٣'") in result.stderr.splitlines()


def test_a_null_inside_a_json_mapping_is_json_null():
    result = run_cli(["train", "-p", "single", "--set", "model_kwargs={a: [1, null]}", "--dry-run"])
    assert result.code == 0, result.stderr
    assert """    --model_kwargs '{"a": [1, null]}'""" in result.stdout


def test_a_megabyte_of_digits_is_refused_not_ground_through():
    import time

    start = time.monotonic()
    result = run_cli(["validate", "-p", "single", "--set", "lora_rank=" + "9" * 1_000_000])
    assert time.monotonic() - start < 30  # it took ~90 s with the digit limit lifted entirely
    assert result.code == 2
    assert result.stderr.startswith("lorakit: error: --set 'lora_rank=999")


def test_an_integral_float_is_read_as_the_int_it_renders_as():
    # 0.0 renders as '0', which ms-swift's string_to_bool reads as false
    assert [values.as_bool(v) for v in (0.0, 1.0, 0.5)] == [False, True, None]
