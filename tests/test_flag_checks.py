"""Flag checks through the CLI: exact messages for typos, bad values, abbreviations, versions;
and a property test that arbitrary presets and --set values never raise past the CLI."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli


def errors(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    return [line + "\n" + lines[i + 1] for i, line in enumerate(lines)
            if line.startswith(("error[", "warning[flags")) and i + 1 < len(lines)]


@pytest.mark.parametrize("extra, expected", [
    (["--set", "lora_rnak=8"],
     "error[flags.unknown] args.lora_rnak (--set): unknown flag --lora_rnak for ms-swift 4.6.0 `swift sft`\n"
     "  hint: did you mean lora_rank or local_rank or galore_rank?"),
    (["--set", "torch_dtype=fp32"],
     "error[flags.value] args.torch_dtype (--set): torch_dtype: 'fp32' is not one of bfloat16, float16, float32\n"
     "  hint: fix torch_dtype in the preset, or override it with --set torch_dtype=..."),
    (["--", "--num_train_epochs", "many"],
     "error[flags.value] args.num_train_epochs (-- extra flags): num_train_epochs expects a number, got 'many'\n"
     "  hint: fix num_train_epochs in the preset, or override it with --set num_train_epochs=..."),
    (["--set", "lazy=true"],
     "error[flags.ambiguous] args.lazy (--set): --lazy is ambiguous for ms-swift 4.6.0 `swift sft`: it matches "
     "both spellings of --lazy_tokenize, which argparse rejects as ambiguous\n  hint: write the full flag name"),
    (["--", "--lora_r", "16"],
     "warning[flags.abbreviation] args.lora_r (-- extra flags): --lora_r is argparse's abbreviation of "
     "--lora_rank: rendered in full\n  hint: write lora_rank in the preset"),
    (["--swift-version", "3", "--set", "eval_metric=acc", "--set", "model_author=[a]"], None),
])
def test_flag_findings(extra, expected):
    result = run_cli(["validate", "-p", "zero2", *extra])
    if expected is None:
        assert errors(result.stderr) == [] and result.code == 0
    else:
        assert expected in errors(result.stderr)


def test_version_specific_flags_name_the_other_version():
    result = run_cli(["validate", "-p", "zero2", "--swift-version", "3", "--set", "packing_strategy=x"])
    assert result.code == 2
    assert ("error[flags.unknown] args.packing_strategy (--set): unknown flag --packing_strategy "
            "for ms-swift 3.12.6 `swift sft` (packing_strategy exists in ms-swift 4.6.0)") in result.stderr


def test_abbreviations_and_negations_render_in_full():
    result = run_cli(["train", "-p", "single", "--dry-run", "--", "--lora_r", "16", "--no_gradient_checkpointing"])
    assert result.code == 0
    lines = result.stdout.splitlines()
    assert "    --lora_rank 16 \\" in lines and "    --gradient_checkpointing false" in lines
    assert not any("--lora_r " in line or "--no_" in line for line in lines)


@pytest.mark.parametrize("major, spelled", [(3, "--train_type"), (4, "--tuner_type")])
def test_either_spelling_renders_for_the_target(tmp_path, major, spelled):
    preset = tmp_path / "p.yaml"
    preset.write_text("extends: single\nargs: {train_type: lora, metric: acc}\n")
    result = run_cli(["train", "-p", str(preset), "--dry-run", "--swift-version", str(major)])
    assert result.code == 0, result.stderr
    assert f"    {spelled} lora \\" in result.stdout.splitlines()
    assert ("--metric acc" if major == 3 else "--eval_metric acc") in result.stdout


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**40) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)
KEYS = st.sampled_from(["lora_rank", "lora_alpha", "target_modules", "deepspeed", "torch_dtype",
                        "gradient_checkpointing_kwargs", "dataset", "use_rslora", "max_length",
                        "lora_dropout", "save_steps", "per_device_train_batch_size"]) | st.text(string.ascii_letters + "_-", min_size=1, max_size=12)
LAUNCH = st.dictionaries(st.sampled_from(["gpus", "nproc_per_node", "nnodes", "node_rank", "master_port"]),
                         YAML_VALUES, max_size=3)
TOP = st.dictionaries(st.sampled_from(["description", "command", "launch", "args", "extends", "bogus"]),
                      YAML_VALUES, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(top=TOP, args=st.dictionaries(KEYS, YAML_VALUES, max_size=5), launch=LAUNCH,
       sets=st.lists(st.text(max_size=20), max_size=3))
def test_any_preset_gives_findings_or_a_clean_exit(tmp_path_factory, top, args, launch, sets):
    data = dict(top)
    data.setdefault("extends", "single")
    if isinstance(data.get("extends"), str) and data["extends"] not in ("single", "zero2"):
        data["extends"] = "single"
    data["args"] = args if "args" not in top else top["args"]
    data["launch"] = launch if "launch" not in top else top["launch"]
    path = tmp_path_factory.mktemp("p") / "p.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    argv = ["train", "-p", str(path), "--dry-run"]
    for item in sets:
        argv += ["--set", item]
    result = run_cli(argv)
    assert result.code in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    if result.code == 2:
        assert result.stdout == ""
        assert "error" in result.stderr


@pytest.mark.parametrize("preset_args, cli, rendered, error", [
    ("{lora_r: 16, lora_alpha: 64}", ["--lora-rank", "32"], "--lora_rank 32", None),  # the CLI wins
    ("{lora_rank: 16, lora_alpha: 64}", ["--", "--lora_r", "32"], "--lora_rank 32", None),
    ("{lora_rank: 16, lora_r: 4}", [], None,
     "error[flags.abbreviation.conflict] args.lora_r ({f}): --lora_r ({f}) is --lora_rank, which is also set "
     "({f})\n  hint: keep one: write lora_rank once"),
])
def test_an_abbreviation_and_its_full_name_follow_precedence(tmp_path, preset_args, cli, rendered, error):
    path = tmp_path / "p.yaml"
    path.write_text(f"extends: single\nargs: {preset_args}\n")
    result = run_cli(["train", "-p", str(path), "--dry-run", *cli])
    if error is None:
        assert result.code == 0, result.stderr
        assert [line.strip(" \\") for line in result.stdout.splitlines() if "--lora_rank" in line] == [rendered]
    else:
        assert result.code == 2
        assert error.format(f=path) in errors(result.stderr)


@pytest.mark.parametrize("extra, message", [
    (["--", "--model"], "error[flags.value] args.model (-- extra flags): --model after -- has no value\n"
                        "  hint: write --model VALUE"),
    (["--set", "dataset=[a, null]"], "error[flags.value] args.dataset (--set): dataset has a null item in its "
     "list (it would render as the word None)\n  hint: fix dataset in the preset, or override it with --set dataset=..."),
    (["--set", "system=2024-01-01"], "error[flags.value] args.system (--set): system is a date to YAML (from a tag "
     "or an unquoted date); quote it to pass text\n  hint: fix system in the preset, or override it with --set system=..."),
    (["--set", "model=!!binary aGVsbG8="], "error[flags.value] args.model (--set): model is binary data to YAML (from a tag "
     "or an unquoted date); quote it to pass text\n  hint: fix model in the preset, or override it with --set model=..."),
    (["--set", "model_kwargs={2024-01-01: 1}"], "error[flags.value] args.model_kwargs (--set): model_kwargs has the "
     "key '2024-01-01' in a mapping, which YAML read as a date: mapping keys must be text or numbers; quote it\n"
     "  hint: fix model_kwargs in the preset, or override it with --set model_kwargs=..."),
    (["--set", "model_kwargs={a: {null: 1}}"], "error[flags.value] args.model_kwargs (--set): model_kwargs has the "
     "key 'None' in a mapping, which YAML read as a null: mapping keys must be text or numbers; quote it\n"
     "  hint: fix model_kwargs in the preset, or override it with --set model_kwargs=..."),
])
def test_values_no_argv_can_carry(extra, message):
    result = run_cli(["train", "-p", "zero2", "--dry-run", *extra])
    assert result.code == 2 and result.stdout == ""
    assert message in errors(result.stderr)


def test_a_nul_byte_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text('extends: single\nargs: {output_dir: "a\\0b"}\n')
    result = run_cli(["train", "-p", str(path), "--dry-run"])
    assert result.code == 2
    assert ("error[flags.value] args.output_dir ({f}): output_dir contains a NUL byte, which no command line can "
            "carry".format(f=path)) in result.stderr.splitlines()
