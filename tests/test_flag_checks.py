"""Flag checks through the CLI: exact messages for typos, bad values, abbreviations, versions;
and a property test that arbitrary presets and --set values never raise past the CLI."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from lorakit import presets, swiftenv
from lorakit import flaghistory as fh


def errors(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    return [line + "\n" + lines[i + 1] for i, line in enumerate(lines)
            if line.startswith(("error[", "warning[flags")) and i + 1 < len(lines)]


@pytest.mark.parametrize("extra, expected", [
    (["--set", "lora_rnak=8"],
     "error[flags.unknown] args.lora_rnak (--set): unknown flag --lora_rnak for ms-swift 4.6.0 `swift sft`\n"
     "  hint: did you mean lora_rank or local_rank or galore_rank?"),
    (["--set", "torch_dtype=fp32"],
     "error[flags.value] args.torch_dtype (--set): torch_dtype: 'fp32' is not one of bfloat16, float16, float32, None; "
     "did you mean 'float32'?\n"
     "  hint: fix torch_dtype in the preset, or override it with --set torch_dtype=..."),
    (["--", "--num_train_epochs", "many"],
     "error[flags.value] args.num_train_epochs (-- extra flags): num_train_epochs expects a number, got 'many'\n"
     "  hint: fix --num_train_epochs after --"),
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


# ---- older minors: the flag history ---------------------------------------------------------

@pytest.mark.parametrize("extra, expected", [
    # enable_thinking first appeared in 3.12
    (["--swift-version", "3.6", "--set", "enable_thinking=true"],
     "error[flags.too_new] args.enable_thinking (--set): --enable_thinking is new in ms-swift 3.12; you target 3.6\n"
     "  hint: upgrade to ms-swift 3.12 or later (pip install 'ms-swift>=3.12,<4'), or drop enable_thinking"),
    # 3.3 renamed tools_prompt to agent_template: the older minor's name is the fix
    (["--swift-version", "3.2", "--set", "agent_template=react_en"],
     "error[flags.too_new] args.agent_template (--set): --agent_template is new in ms-swift 3.3; you target 3.2\n"
     "  hint: write --tools_prompt for ms-swift 3.2 (renamed to agent_template in 3.3), or upgrade to ms-swift 3.3 "
     "or later (pip install 'ms-swift>=3.3,<4')"),
    (["--swift-version", "4.0", "--set", "packing_strategy=x"],
     "error[flags.too_new] args.packing_strategy (--set): --packing_strategy is new in ms-swift 4.4; you target 4.0\n"
     "  hint: upgrade to ms-swift 4.4 or later (pip install 'ms-swift>=4.4,<5'), or drop packing_strategy"),
    # removed, with a replacement: for the newest minor too (a major alone)
    (["--swift-version", "3", "--set", "eval_datasets=[gsm8k]"],
     "error[flags.removed] args.eval_datasets (--set): --eval_datasets was removed in ms-swift 3.6 (last in 3.5); "
     "you target 3.12\n  hint: use --eval_dataset instead: ms-swift 3.6 renamed eval_datasets to eval_dataset"),
    (["--swift-version", "3.10", "--", "--tools_prompt", "react_en"],
     "error[flags.removed] args.tools_prompt (-- extra flags): --tools_prompt was removed in ms-swift 3.3 (last in "
     "3.2); you target 3.10\n  hint: use --agent_template instead: ms-swift 3.3 renamed tools_prompt to agent_template"),
    # removed, nothing replaced it
    (["--swift-version", "3.8", "--set", "packing_cache=/cache"],
     "error[flags.removed] args.packing_cache (--set): --packing_cache was removed in ms-swift 3.7 (last in 3.6); "
     "you target 3.8\n  hint: drop packing_cache: only ms-swift 3.5 to 3.6 have it"),
    # ms-swift 2.x names: no spelling distance finds --model
    (["--set", "model_id_or_path=Qwen/Qwen3-8B"],
     "error[flags.unknown] args.model_id_or_path (--set): unknown flag --model_id_or_path for ms-swift 4.6.0 `swift sft`\n"
     "  hint: did you mean model? model_id_or_path is the ms-swift 2.x name"),
    (["--swift-version", "3", "--", "--sft_type", "lora"],
     "error[flags.unknown] args.sft_type (-- extra flags): unknown flag --sft_type for ms-swift 3.12.6 `swift sft`\n"
     "  hint: did you mean train_type? sft_type is the ms-swift 2.x name"),
    (["--swift-version", "3.6", "--set", "lora_rnak=8"],
     "error[flags.unknown] args.lora_rnak (--set): unknown flag --lora_rnak for ms-swift 3.6 `swift sft`\n"
     "  hint: did you mean lora_rank or local_rank or galore_rank?"),
])
def test_flags_against_an_older_minor(extra, expected):
    result = run_cli(["validate", "-p", "zero2", *extra])
    assert result.code == 2, result.stderr
    assert expected in errors(result.stderr)


def test_the_installed_minor_is_the_target(monkeypatch):
    monkeypatch.setattr(swiftenv, "installed_version", lambda: "3.6.4")
    result = run_cli(["validate", "-p", "zero2", "--set", "enable_thinking=true"])
    assert result.code == 2
    assert ("error[flags.too_new] args.enable_thinking (--set): --enable_thinking is new in ms-swift 3.12; "
            "you target 3.6") in result.stderr.splitlines()
    assert "rendering for ms-swift 3.6.4 (installed here)" in result.stderr
    # a major alone still means that major's newest snapshot, whatever is installed
    assert run_cli(["validate", "-p", "zero2", "--swift-version", "3", "--set", "enable_thinking=true"]).code == 0


def test_an_older_minors_own_flag_passes_there():
    # packing_cache is in 3.5 and 3.6 only: not in the 3.12.6 snapshot, but 3.6 has it
    result = run_cli(["validate", "-p", "zero2", "--swift-version", "3.6", "--set", "packing_cache=/cache"])
    assert result.code == 0, result.stderr
    assert errors(result.stderr) == []


def test_a_minor_is_accepted():
    result = run_cli(["train", "-p", "single", "--dry-run", "--swift-version", "3.10"])
    assert result.code == 0, result.stderr
    assert "    --train_type lora \\" in result.stdout.splitlines()
    assert "rendering for ms-swift 3.10 (--swift-version)" in result.stderr


@pytest.mark.parametrize("version, message", [
    ("3.99", "lorakit: error: --swift-version '3.99': ms-swift 3.99 is not a released 3.x minor that lorakit knows "
             "(3.0 to 3.12)\n  hint: use a released minor such as --swift-version 3.12, or --swift-version 3 for the "
             "newest lorakit knows (3.12.6)\n"),
    ("4.7", "lorakit: error: --swift-version '4.7': ms-swift 4.7 is not a released 4.x minor that lorakit knows "
            "(4.0 to 4.6)\n  hint: use a released minor such as --swift-version 4.6, or --swift-version 4 for the "
            "newest lorakit knows (4.6.0)\n"),
    ("5", "lorakit: error: --swift-version '5': lorakit renders for ms-swift 3 or 4\n"
          "  hint: use --swift-version 3 or --swift-version 4\n"),
    ("5.1", "lorakit: error: --swift-version '5.1': lorakit renders for ms-swift 3 or 4\n"
            "  hint: use --swift-version 3 or --swift-version 4\n"),
    ("3.x", "lorakit: error: --swift-version '3.x': not an ms-swift version\n"
            "  hint: give a major (3, 4) or a released minor such as 3.10 or 4.5\n"),
])
def test_unknown_versions_are_refused(version, message):
    result = run_cli(["validate", "-p", "zero2", "--swift-version", version])
    assert (result.code, result.stdout, result.stderr) == (2, "", message)


def _builtin_cases():
    for name in presets.builtin_names():
        for major in (3, 4):
            for minor in fh.minors(major):
                yield pytest.param(name, minor, id=f"{name}-{minor}")


@pytest.mark.parametrize("preset, minor", list(_builtin_cases()))
def test_builtin_presets_pass_for_every_minor(preset, minor):
    """Every flag the built-in presets (and configs/fragments/lora_sft.yaml) render exists in
    every released 3.x and 4.x minor: transformers' ones through transformers."""
    extra = ["--set", "adapters=[output/checkpoint-1]"] if preset == "merge" else []
    if minor in ("3.0", "3.1", "3.2") and preset != "merge":
        # their model, Qwen/Qwen3-8B, is unknown before 3.3 (model.type.too_new, tests/test_model_history.py)
        extra += ["--model", "Qwen/Qwen2.5-7B-Instruct"]
    result = run_cli(["validate", "-p", preset, "--swift-version", minor, *extra])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    if preset.startswith("grpo") and minor in ("3.0", "3.1", "3.2", "3.3", "3.4"):
        # the GRPO presets say they need ms-swift 3.5+: vllm_mode is new there
        assert result.code == 2 and errors and all("[flags.too_new]" in e for e in errors), result.stderr
        assert any("args.vllm_mode" in e for e in errors)
        return
    assert result.code == 0, result.stderr
    assert errors == []


def test_the_newest_minor_never_reads_the_history():
    """The dry-run of a built-in preset for the snapshot's own minor costs what it did before."""
    fh._history.cache_clear()
    for argv in (["train", "-p", "zero2", "--dry-run"], ["train", "-p", "zero2", "--dry-run", "--swift-version", "4.6"],
                 ["validate", "-p", "single", "--swift-version", "3"]):
        assert run_cli(argv).code == 0
        assert fh._history.cache_info().currsize == 0, argv


# --- JSON flags ms-swift reads strictly (#5044) ---------------------------------------------------


def test_columns_in_no_json_form_is_refused():
    said = run_cli(["validate", "-p", "single", "--", "--columns", "old_name:new_name"])
    assert said.code == 2
    assert ("error[flags.value] args.columns (-- extra flags): columns 'old_name:new_name' is neither a JSON "
            "mapping nor a file: ms-swift's json_parse_to_dict cannot read it and stops while parsing its arguments "
            "(\"Unable to parse json string\"); columns maps old names to new: '{\"old_name\": \"new_name\"}'"
            ) in said.stderr


def test_columns_as_json_or_a_file_passes(tmp_path):
    mapping = tmp_path / "columns.json"
    mapping.write_text('{"instruction": "query"}')
    for value in ('{"instruction": "query"}', str(mapping)):
        said = run_cli(["validate", "-p", "single", "--", "--columns", value])
        assert said.code == 0 and "args.columns" not in said.stderr, said.stderr


def test_device_map_text_is_not_strict_json():
    # model_args.py: device_map is read with strict=False, so 'auto' or 'cpu' stays text
    said = run_cli(["validate", "-p", "single", "--", "--device_map", "auto"])
    assert "is neither a JSON mapping nor a file" not in said.stderr
