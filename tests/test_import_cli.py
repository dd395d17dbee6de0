"""`lorakit import` through the real entry point: exit codes, exact error text, what is written."""

from __future__ import annotations

import shutil

import pytest
import yaml

from conftest import REPO, run_cli

CORPUS = REPO / "tests" / "data" / "scripts"


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def script(folder, name: str, text: str):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


SMALL = """#!/bin/bash
export MAX_PIXELS=1003520
CUDA_VISIBLE_DEVICES=0,1 \\
NPROC_PER_NODE=2 \\
swift sft \\
    --model Qwen/Qwen2.5-7B-Instruct \\
    --train_type lora \\
    --target_modules q_proj v_proj \\
    --gradient_checkpointing_kwargs '{"use_reentrant": false}' \\
    --learning_rate 1e-4 \\
    --system "You are a helpful assistant." \\
    --use_rslora \\
    --output_dir output
"""


def test_a_script_becomes_a_typed_preset(here):
    path = script(here, "train.sh", SMALL)
    result = run_cli(["import", "train.sh", "-o", "my.yaml"])
    assert result.code == 0, result.stderr
    assert (here / "my.yaml").read_text() == """\
# lorakit import train.sh: swift sft at line 5
description: imported from train.sh (swift sft, line 5)
command: sft
launch:
  gpus: 0,1
  nproc_per_node: 2
env:
  MAX_PIXELS: '1003520'
args:
  model: Qwen/Qwen2.5-7B-Instruct
  tuner_type: lora
  target_modules:
  - q_proj
  - v_proj
  gradient_checkpointing_kwargs:
    use_reentrant: false
  learning_rate: 0.0001
  system: You are a helpful assistant.
  use_rslora: true
  output_dir: output
"""
    assert path.exists()
    assert "info[import.flag.renamed] args.tuner_type (train.sh): line 7: --train_type is ms-swift 3.x's name: " \
           "imported as tuner_type, ms-swift 4.x's name\n" in result.stderr
    assert "lorakit: wrote my.yaml (swift sft, line 5 of train.sh); see it run: lorakit train -p my.yaml --dry-run\n" \
        in result.stderr
    # the written preset is a preset: dry-run renders it
    dry = run_cli(["train", "-p", "my.yaml", "--dry-run", "--swift-version", "4"])
    assert dry.code == 0, dry.stderr
    assert "--tuner_type lora" in dry.stdout and "MAX_PIXELS=1003520" in dry.stdout


def test_without_o_the_preset_goes_to_stdout(here):
    script(here, "train.sh", SMALL)
    result = run_cli(["import", "train.sh"])
    assert result.code == 0, result.stderr
    assert yaml.safe_load(result.stdout)["launch"] == {"gpus": "0,1", "nproc_per_node": 2}
    assert list(here.iterdir()) == [here / "train.sh"]


def test_for_3x_the_preset_uses_3x_names(here):
    script(here, "train.sh", SMALL)
    result = run_cli(["import", "train.sh", "--swift-version", "3"])
    assert result.code == 0, result.stderr
    assert list(yaml.safe_load(result.stdout)["args"])[:2] == ["model", "train_type"]
    assert "import.flag.renamed" not in result.stderr


def test_4x_names_are_mapped_for_3x_and_said(here):
    shutil.copy(CORPUS / "exports_vars.sh", here / "e.sh")
    result = run_cli(["import", "e.sh", "--swift-version", "3"])
    args = yaml.safe_load(result.stdout)["args"]
    assert args["train_type"] == "lora" and "tuner_type" not in args
    assert args["add_version"] is False and args["lora_dropout"] == 0.05
    assert "info[import.flag.renamed] args.train_type (e.sh): line 16: --tuner_type is ms-swift 4.x's name: " \
           "imported as train_type, ms-swift 3.x's name\n" in result.stderr
    assert "info[import.flag.negation] args.add_version (e.sh): line 26: --no_add_version is the negative switch " \
           "of --add_version: imported as add_version: false\n" in result.stderr
    assert "warning[import.flag.abbreviation] args.lora_dropout (e.sh): line 23: --lora_drop is argparse's " \
           "abbreviation of --lora_dropout: written in full\n" in result.stderr


def test_2x_names_are_mapped_with_a_warning(here):
    shutil.copy(CORPUS / "v2_names.sh", here / "v2.sh")
    result = run_cli(["import", "v2.sh"])
    assert list(yaml.safe_load(result.stdout)["args"]) == ["model", "tuner_type", "dataset", "target_modules",
                                                           "lora_rank", "output_dir"]
    assert "warning[import.flag.renamed] args.model (v2.sh): line 4: --model_id_or_path is an ms-swift 2.x name: " \
           "imported as model, ms-swift 4.x's name; check its value: 2.x values can differ (dtype bf16 is " \
           "torch_dtype bfloat16)\n" in result.stderr


def test_extends_writes_only_the_differences(here):
    shutil.copy(CORPUS / "zero2_exec.sh", here / "z.sh")
    result = run_cli(["import", "z.sh", "--extends", "zero2"])
    assert result.code == 0, result.stderr
    assert result.stdout == """\
# lorakit import z.sh: swift sft at line 9
description: imported from z.sh (swift sft, line 9)
extends: zero2
args:
  gradient_accumulation_steps: 2
  per_device_eval_batch_size: null
  global_batch_size: null
  split_dataset_ratio: null
"""


def test_extends_a_preset_file_as_the_written_preset_finds_it(here):
    (here / "team").mkdir()
    (here / "team" / "base.yaml").write_text("extends: zero2\nargs:\n  lora_rank: 16\n")
    shutil.copy(CORPUS / "zero2_exec.sh", here / "z.sh")
    (here / "out").mkdir()
    result = run_cli(["import", "z.sh", "--extends", "team/base.yaml", "-o", "out/mine.yaml"])
    assert result.code == 0, result.stderr
    written = yaml.safe_load((here / "out" / "mine.yaml").read_text())
    assert written["extends"] == "../team/base.yaml"
    assert written["args"]["lora_rank"] == 8  # the script's 8 over the team's 16
    dry = run_cli(["train", "-p", "out/mine.yaml", "--dry-run", "--swift-version", "4"])
    assert dry.code == 0, dry.stderr
    assert "--lora_rank 8 " in dry.stdout.replace("\\\n", " ")


def test_an_existing_output_is_not_overwritten(here):
    script(here, "train.sh", SMALL)
    (here / "my.yaml").write_text("keep me\n")
    result = run_cli(["import", "train.sh", "-o", "my.yaml"])
    assert result.code == 2
    assert "lorakit: error: my.yaml already exists: not overwritten\n  hint: pass --force to overwrite, " \
           "or choose another -o" in result.stderr
    assert (here / "my.yaml").read_text() == "keep me\n"
    forced = run_cli(["import", "train.sh", "-o", "my.yaml", "--force"])
    assert forced.code == 0, forced.stderr
    assert (here / "my.yaml").read_text().startswith("# lorakit import train.sh")


def test_several_commands_one_preset_each(here):
    shutil.copy(CORPUS / "train_then_merge.sh", here / "all.sh")
    with open(here / "all.sh", "a") as f:
        f.write("swift pt --model Qwen/Qwen2.5-0.5B --dataset corpus.txt\n")
    result = run_cli(["import", "all.sh", "-o", "run.yaml"])
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in here.glob("run-*.yaml")) == ["run-1.yaml", "run-2.yaml", "run-3.yaml"]
    assert yaml.safe_load((here / "run-2.yaml").read_text())["args"] == {
        "adapters": ["output/v0-20250101-000000/checkpoint-100"], "merge_lora": True, "output_dir": "merged"}
    assert yaml.safe_load((here / "run-3.yaml").read_text())["command"] == "infer"
    assert "info[import.skipped] all.sh: line 26: swift pt is not imported: a lorakit preset runs sft, " \
           "export, rlhf" in result.stderr
    assert (f"info[import.written_earlier] args.adapters ({here / 'run-2.yaml'}): adapters "
            "output/v0-20250101-000000/checkpoint-100 lies under output, which swift sft (line 6) writes: not there "
            "before the script runs, so not checked now") in result.stderr.splitlines()
    assert "  hint: once that run has finished, lorakit validate -p run-2.yaml checks it" in result.stderr
    picked = run_cli(["import", "all.sh", "--select", "2"])
    assert picked.code == 0, picked.stderr
    assert yaml.safe_load(picked.stdout)["command"] == "export"
    assert "info[import.written_earlier] args.adapters" in picked.stderr  # line 6 counts, though not imported


def test_a_path_no_earlier_command_writes_is_still_an_error(here):
    script(here, "s.sh", "swift pt --model Qwen/Qwen2.5-0.5B --dataset c.txt --output_dir out_pt\n"
                         "swift export --adapters out_pt/v0-20250101-000000/checkpoint-5 --merge_lora true\n"
                         "swift export --adapters output/v0-20250101-000000/checkpoint-5 --merge_lora true\n")
    result = run_cli(["import", "s.sh", "-o", "p.yaml"])
    assert result.code == 2
    assert (f"info[import.written_earlier] args.adapters ({here / 'p-1.yaml'}): adapters out_pt/v0-20250101-000000/checkpoint-5 "
            "lies under out_pt, which swift pt (line 1) writes: not there before the script runs, so not checked "
            "now") in result.stderr.splitlines()
    assert (f"error[paths.adapters.not_hub_id] args.adapters ({here / 'p-2.yaml'}): adapters "
            "'output/v0-20250101-000000/checkpoint-5' is neither a local path here nor a hub id") in result.stderr


@pytest.mark.parametrize("text, args, message", [
    ("echo hello\n", [], "s.sh:1: no swift command in the script (swift sft|pt|rlhf|export|infer|deploy|eval)"),
    ('swift sft \\\n  --model x \\\n  --lora_rank "8\n', [],
     "s.sh:3: the script does not parse as bash (unexpected EOF while looking for matching '\"')"),
    ("case $1 in a) swift sft --model x;; esac\n", [],
     "s.sh:1: bash parses this script, but lorakit's bash reader (bashlex) cannot read this part of it"),
    ("swift pt --model x --dataset corpus.txt\n", [], "s.sh:1: swift pt is not a command a lorakit preset runs (sft, "),
    ("swift sft --model x\nswift pt --model x\n", ["--select", "2"],
     "s.sh:2: swift pt is not a command a lorakit preset runs (sft, "),
    ("swift sft --model x\n", ["--select", "3"], "s.sh: --select 3: the script has 1 swift command(s)"),
], ids=["no-swift", "unclosed-quote", "case", "pt-only", "select-pt", "select-past-end"])
def test_scripts_that_cannot_be_imported_exit_2(here, text, args, message):
    script(here, "s.sh", text)
    result = run_cli(["import", "s.sh", *args])
    assert result.code == 2
    assert result.stdout == ""
    assert f"lorakit: error: {message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_script_exits_2(here):
    result = run_cli(["import", "nope.sh"])
    assert result.code == 2
    assert "lorakit: error: nope.sh: cannot read the script: No such file or directory" in result.stderr


def test_a_broken_script_is_imported_as_bash_runs_it_and_exits_2(here):
    shutil.copy(CORPUS / "broken_blank_line.sh", here / "b.sh")
    result = run_cli(["import", "b.sh"])
    assert result.code == 2
    args = yaml.safe_load(result.stdout)["args"]
    assert "deepspeed" not in args and "output_dir" not in args  # what bash ran: never silently joined back
    assert ("error[script.continuation.blank_line] b.sh: line 8: a blank line inside the `\\` continuation ends "
            "the command there (ms-swift #5328): bash runs swift sft (line 4) without the flags from line 9 on "
            "(--deepspeed --output_dir), then tries to run `--deepspeed` as a command. lorakit imports what bash "
            "runs, without them\n  hint: delete the blank line (or end the command before it) at line 8, then "
            "import again") in result.stderr
    assert "lorakit: imported; not launchable as it stands" in result.stderr


def test_the_checks_run_on_the_imported_preset(here):
    script(here, "t.sh", "swift sft --model Qwen/Qwen2.5-7B-Instruct --lora_rank 0 --dataset data/trian.jsonl\n")
    (here / "data").mkdir()
    (here / "data" / "train.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    result = run_cli(["import", "t.sh", "-o", "t.yaml"])
    assert result.code == 2
    written = here / "t.yaml"
    assert f"error[lora.rank.invalid] args.lora_rank ({written}): lora_rank must be a positive integer, got 0" \
        in result.stderr
    assert "did you mean 'data/train.jsonl'?" in result.stderr
    # the same checks as `lorakit validate -p t.yaml`: every line it prints, import prints
    validate = run_cli(["validate", "-p", "t.yaml"])
    assert validate.code == 2
    said = [line for line in validate.stderr.splitlines() if not line.startswith("lorakit:")]
    assert said and all(line in result.stderr.splitlines() for line in said)


def test_an_inherited_env_variable_is_said_not_removed(here):
    (here / "base.yaml").write_text("extends: single\nenv:\n  MAX_PIXELS: 100\n  HF_HUB_OFFLINE: 1\n")
    script(here, "t.sh", "export MAX_PIXELS=200\nswift sft --model Qwen/Qwen2.5-7B-Instruct\n")
    result = run_cli(["import", "t.sh", "--extends", "base.yaml"])
    assert yaml.safe_load(result.stdout)["env"] == {"MAX_PIXELS": "200"}
    assert "warning[import.env.inherited] env.HF_HUB_OFFLINE (t.sh): env.HF_HUB_OFFLINE comes from " \
           f"{here / 'base.yaml'}; the script does not set it, and a preset cannot remove it" in result.stderr


@pytest.mark.parametrize("make, message", [
    (lambda d: d.joinpath("out").mkdir(), "-o out: is a directory\n  hint: give a file name: -o out/preset.yaml"),
    (lambda d: None, "-o out/my.yaml: the folder out does not exist\n  hint: create it first (mkdir -p out), "
                     "or choose another -o"),
], ids=["a-directory", "a-missing-folder"])
def test_an_output_that_cannot_be_a_file_exits_2_before_writing(here, make, message):
    script(here, "train.sh", SMALL)
    make(here)
    target = "out" if (here / "out").is_dir() else "out/my.yaml"
    for extra in ([], ["--force"]):
        result = run_cli(["import", "train.sh", "-o", target, *extra])
        assert result.code == 2
        assert f"lorakit: error: {message}" in result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in here.rglob("*")) == (["out", "train.sh"] if target == "out" else ["train.sh"])


def test_several_outputs_into_a_missing_folder_write_none(here):
    script(here, "all.sh", "swift sft --model m --dataset d\nswift export --adapters out --merge_lora true\n")
    result = run_cli(["import", "all.sh", "-o", "nope/run.yaml"])
    assert result.code == 2
    assert "lorakit: error: -o nope/run-1.yaml: the folder nope does not exist" in result.stderr


@pytest.mark.parametrize("data, message", [
    (b"swift sft \\\n  --model a\0b\n", "s.sh:2: a NUL byte: this is a binary file, not a shell script\n"
                                         "  hint: give the shell script itself (bash refuses to run a file with NUL bytes)"),
    (b"swift sft --model m\n# " + b"x" * (1 << 20) + b"\n",
     "s.sh:1: over 1 MiB: not a shell script of swift commands\n"
     "  hint: give the script that runs `swift sft …` (lorakit import reads scripts up to 1 MiB)"),
    (b"swift sft --model \xff\n", "s.sh:1: not UTF-8 text\n  hint: save the script as UTF-8"),
], ids=["nul", "too-big", "not-utf8"])
def test_a_file_that_is_not_a_script_exits_2(here, data, message):
    (here / "s.sh").write_bytes(data)
    result = run_cli(["import", "s.sh", "-o", "my.yaml"])
    assert result.code == 2
    assert f"lorakit: error: {message}\n" in result.stderr
    assert not (here / "my.yaml").exists()


def test_an_unknown_extends_is_named_as_extends(here):
    script(here, "train.sh", SMALL)
    result = run_cli(["import", "train.sh", "--extends", "zero9"])
    assert result.code == 2
    assert "lorakit: error: --extends: unknown preset 'zero9'\n" in result.stderr


@pytest.mark.parametrize("text, args, message", [
    ("swift sft train.yaml --lora_rank 8\n", [],
     "error[script.config_file] s.sh: line 1: swift sft reads more flags from train.yaml (ms-swift 4.x: a first "
     "argument that is a .yaml/.json file): lorakit import does not read that file, so none of its flags are in "
     "the preset\n  hint: write the keys of train.yaml under args: in the preset (they are ms-swift's flag names), "
     "or give them as flags in the script and import again\n"),
    ("swift sft --config sft.yaml --lora_rank 8\n", ["--swift-version", "3"],
     "error[script.config_file] s.sh: line 1: swift sft reads more flags from sft.yaml (ms-swift 3.x: --config): "
     "lorakit import does not read that file, so none of its flags are in the preset\n"),
], ids=["4x-first-argument", "3x-config"])
def test_a_config_file_is_named_not_called_a_stray_argument(here, text, args, message):
    script(here, "s.sh", text)
    result = run_cli(["import", "s.sh", *args])
    assert result.code == 2
    assert message in result.stderr
    assert yaml.safe_load(result.stdout)["args"] == {"lora_rank": 8}
    assert "script.positional" not in result.stderr and "fsdp_config" not in result.stderr


@pytest.mark.parametrize("text, message", [
    ("python -m swift.cli.sft --model m\n",
     "s.sh:1: python … swift.cli.sft runs ms-swift's sft without the `swift` launcher: lorakit import reads only "
     "`swift sft` commands, so this one is not imported\n  hint: write it as `swift sft …` (the same flags) and "
     "import again\n"),
    ('bash -c "swift sft --model m"\n',
     "s.sh:1: swift sft inside bash -c '…' is not imported: it is a string that bash reads only when it runs it\n"
     "  hint: write the swift command on a line of its own (without bash -c) and import again\n"),
], ids=["python-m", "bash-c"])
def test_a_script_whose_only_swift_command_is_not_read_says_why(here, text, message):
    script(here, "s.sh", text)
    result = run_cli(["import", "s.sh"])
    assert result.code == 2
    assert result.stderr == f"lorakit: error: {message}"


def test_the_script_itself_is_never_overwritten(here):
    script(here, "train.sh", SMALL)
    (here / "link.yaml").symlink_to("train.sh")
    for target in ("train.sh", "link.yaml", "./train.sh"):
        result = run_cli(["import", "train.sh", "-o", target, "--force"])
        assert result.code == 2
        assert (f"lorakit: error: -o {target.removeprefix('./')}: is the script being imported: not overwritten, "
                "even with --force\n  hint: write the preset to another file: -o train.yaml\n") == result.stderr
    assert (here / "train.sh").read_text() == SMALL


def test_select_0_says_it_counts_from_1(here):
    script(here, "s.sh", "swift sft --model x\n")
    result = run_cli(["import", "s.sh", "--select", "0"])
    assert result.code == 2
    assert result.stderr == ("lorakit: error: s.sh: --select 0: the script has 1 swift command(s) and --select "
                             "counts from 1\n  hint: 1: swift sft (line 1)\n")


def test_a_script_name_with_a_newline_cannot_write_yaml_of_its_own(here):
    script(here, "a\nmodel: evil.sh", "swift sft --model m\n")
    result = run_cli(["import", "a\nmodel: evil.sh", "-o", "my.yaml"])
    assert result.code == 0, result.stderr
    text = (here / "my.yaml").read_text()
    assert text.splitlines()[0] == "# lorakit import 'a\\nmodel: evil.sh': swift sft at line 1"
    assert yaml.safe_load(text)["args"] == {"model": "m"}


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_in_the_script_is_said_not_an_unknown_flag(here, flag):
    script(here, "s.sh", f"swift sft --model m {flag}\n")
    result = run_cli(["import", "s.sh"])
    assert result.code == 2
    assert (f"error[script.help] s.sh: line 1: swift sft {flag} prints ms-swift's help and exits: this command runs "
            f"nothing\n  hint: delete {flag}\n") in result.stderr
    assert yaml.safe_load(result.stdout)["args"] == {"model": "m"}
    assert "flags.unknown" not in result.stderr and "script.positional" not in result.stderr
