"""CLI tier: exit codes and exact messages for bad input, and the presets subcommands."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lorakit import presets

BUILTINS = "ddp, ddp_device_map, dpo, grpo_colocate, grpo_server, kto, merge, orpo, simpo, single, zero2, zero3"


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.mark.parametrize("args, code, message", [
    (["train", "-p", "zer2", "--dry-run"], 2,
     f"lorakit: error: --preset: unknown preset 'zer2'\n  hint: did you mean 'zero2'? built-in presets: {BUILTINS}\n"),
    (["train", "-p", "zero2", "--set", "lora_rank", "--dry-run"], 2,
     "lorakit: error: --set 'lora_rank': expected KEY=VALUE\n"
     "  hint: e.g. --set lora_rank=16 or --set launch.gpus=0,1\n"),
    (["train", "-p", "merge", "--dry-run"], 2,
     "lorakit: error: preset 'merge' runs `swift export`, not `swift sft`\n"
     "  hint: use `lorakit merge` for export presets, or a preset with 'command: sft'\n"),
    (["train", "-p", "dpo", "--dry-run"], 2,
     "lorakit: error: preset 'dpo' runs `swift rlhf`, not `swift sft`\n"
     "  hint: use `lorakit rlhf` for rlhf presets, or a preset with 'command: sft'\n"),
    (["train", "-p", "zero2", "--dry-run", "--", "oops"], 2,
     "lorakit: error: extra ms-swift flags: expected a --flag, got 'oops'\n"
     "  hint: write flags after '--', e.g. lorakit train -p zero2 -- --max_steps 10\n"),
    (["train", "-p", "zero2", "--swift-version", "5", "--dry-run"], 2,
     "lorakit: error: --swift-version '5': lorakit renders for ms-swift 3 or 4\n"
     "  hint: use --swift-version 3 or --swift-version 4\n"),
])
def test_user_errors_exit_2_with_exact_text(cli, args, code, message):
    result = cli(args)
    assert (result.code, result.stdout, result.stderr) == (code, "", message)


def test_yaml_syntax_error_names_file_and_line(cli, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("extends: single\nargs:\n  lora_rank: [8\n")
    result = cli(["train", "-p", str(path), "--dry-run"])
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"lorakit: error: {path}:4:1: YAML syntax error: ")
    assert "Traceback" not in result.stderr


def test_layout_errors_are_all_reported_and_no_command_is_printed(cli):
    result = cli(["train", "-p", "zero2", "--gpus", "0,1,x", "--set", "lora_rank=0", "--dry-run"])
    assert result.code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert ("error[layout.gpus.invalid] launch.gpus (--gpus): GPU list '0,1,x' has entries that "
            "are not GPU ids: 'x'") in lines
    assert "error[lora.rank.invalid] args.lora_rank (--set): lora_rank must be a positive integer, got 0" in lines
    assert lines[-1] == "lorakit: not launching: 2 error(s) above"


def test_too_many_ranks_for_the_visible_gpus(cli):
    result = cli(["train", "-p", "zero2", "--nproc", "8", "--dry-run"], env={"CUDA_VISIBLE_DEVICES": "2,3"})
    assert result.code == 2
    assert ("error[layout.nproc.too_many] launch.nproc_per_node (--nproc): NPROC_PER_NODE=8 but only 2 "
            "GPUs are visible (CUDA_VISIBLE_DEVICES in your environment: 2,3)") in result.stderr.splitlines()


def test_gpus_from_environment_are_announced_and_followed(cli):
    result = cli(["train", "-p", "zero2", "--dry-run"], env={"CUDA_VISIBLE_DEVICES": "2,3"})
    assert result.code == 0
    assert result.stdout.splitlines()[:2] == ["CUDA_VISIBLE_DEVICES=2,3 \\", "NPROC_PER_NODE=2 \\"]
    assert result.stderr.splitlines()[0].startswith(
        "lorakit: GPUs 2,3 from CUDA_VISIBLE_DEVICES in your environment; NPROC_PER_NODE=2 (rule 'auto' from built-in zero2)")


def test_dry_run_stdout_is_only_the_command(cli):
    result = cli(["train", "-p", "single", "--dry-run"])
    assert result.code == 0
    assert result.stdout.startswith("CUDA_VISIBLE_DEVICES=0 \\\nswift sft \\\n    --model Qwen/Qwen3-8B \\\n")
    assert "lorakit:" not in result.stdout and "info[" not in result.stdout


def test_typed_options_and_extra_flags_override_the_preset(cli):
    result = cli(["train", "-p", "single", "--model", "my/model", "--dataset", "my/a", "--dataset", "my/b",
                  "--lora-rank", "16", "--lora-alpha", "64", "--target-modules", "[q_proj,v_proj]",
                  "--output-dir", "out dir", "--dry-run", "--", "--max_steps", "5", "--use_rslora"])
    assert result.code == 0
    lines = result.stdout.splitlines()
    for expected in ("    --model my/model \\", "    --dataset my/a my/b \\", "    --lora_rank 16 \\",
                     "    --lora_alpha 64 \\", "    --target_modules q_proj v_proj \\",
                     "    --output_dir 'out dir' \\", "    --max_steps 5 \\", "    --use_rslora true"):
        assert expected in lines
    assert ("info[args.list_string] args.target_modules (--target-modules): target_modules "
            "'[q_proj,v_proj]' is one string; rendered as separate items: q_proj v_proj") in result.stderr


def test_presets_list_shows_exactly_the_builtins(cli):
    result = cli(["presets", "list"])
    assert result.code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == presets.builtin_names()


def test_presets_init_copies_a_flattened_preset_and_refuses_to_overwrite(cli, tmp_path):
    dest = tmp_path / "mine.yaml"
    assert cli(["presets", "init", "zero2", str(dest)]).code == 0
    data = yaml.safe_load(dest.read_text())
    assert data["args"]["deepspeed"] == "zero2" and data["args"]["lora_rank"] == 8
    assert "extends" not in data and data["launch"]["nproc_per_node"] == "auto"
    again = cli(["presets", "init", "zero2", str(dest)])
    assert (again.code, again.stderr) == (2, f"lorakit: error: {dest} already exists; refusing to overwrite "
                                             "it\n  hint: choose another DEST, or pass --force\n")
    mine = cli(["train", "-p", str(dest), "--dry-run"])
    assert mine.stdout == cli(["train", "-p", "zero2", "--dry-run"]).stdout


def test_presets_show_unknown_name(cli):
    result = cli(["presets", "show", "zer3"])
    assert (result.code, result.stderr) == (2, "lorakit: error: presets show NAME: unknown preset 'zer3'\n"
                                               f"  hint: did you mean 'zero3'? built-in presets: {BUILTINS}\n")


def test_presets_show_prints_the_resolved_yaml(cli):
    result = cli(["presets", "show", "ddp"])
    assert result.code == 0
    assert yaml.safe_load(result.stdout) == {k: v for k, v in presets.load("ddp").data.items()}


def test_validate_json(cli):
    import json

    result = cli(["validate", "-p", "zero2", "--json", "--set", "lora_alpha=200"])
    payload = json.loads(result.stdout)
    assert result.code == 0 and payload["ok"] is True
    ratio = [f for f in payload["findings"] if f["code"] == "lora.ratio"][0]
    assert ratio == {"level": "warning", "code": "lora.ratio", "key": "args.lora_alpha", "file": "--set",
                     "message": "alpha/rank = 200/8 = 25, far outside 1-16: the LoRA update is scaled up that much",
                     "hint": "for lora_rank 8, lora_alpha between 16 and 64 is usual"}
    strict = cli(["validate", "-p", "zero2", "--strict", "--set", "lora_alpha=200"])
    assert strict.code == 2


def test_presets_init_into_a_missing_dir_or_onto_a_dir(cli, tmp_path):
    missing = cli(["presets", "init", "zero2", str(tmp_path / "no" / "x.yaml")])
    assert (missing.code, missing.stderr) == (2, f"lorakit: error: cannot write {tmp_path / 'no' / 'x.yaml'}: "
                                                 "No such file or directory (ENOENT)\n  hint: choose a DEST in an "
                                                 "existing, writable directory\n")
    onto = cli(["presets", "init", "zero2", str(tmp_path), "--force"])
    assert (onto.code, onto.stderr) == (2, f"lorakit: error: {tmp_path} is a directory\n"
                                           f"  hint: give a file name, e.g. {tmp_path / 'zero2.yaml'}\n")


def test_validate_json_reports_an_unloadable_preset_as_data(cli, tmp_path):
    import json

    path = tmp_path / "bad.yaml"
    path.write_text("lanuch: {}\n")
    result = cli(["validate", "-p", str(path), "--json"])
    assert result.code == 2
    assert json.loads(result.stdout) == {"ok": False, "preset": str(path), "findings": [{
        "level": "error", "code": "preset.invalid", "key": "", "file": "",
        "message": f"{path}: unknown key 'lanuch'",
        "hint": "did you mean 'launch'? allowed: description, extends, command, launch, args, env"}]}


def test_a_bare_name_that_is_a_file_here_says_to_write_it_as_a_path(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "qq").write_text("extends: single\n")
    result = cli(["train", "-p", "qq", "--dry-run"])
    assert (result.code, result.stderr) == (
        2, "lorakit: error: --preset: unknown preset 'qq': a bare name is a built-in preset, and none is called so\n"
           f"  hint: for the file 'qq' (it is there: {tmp_path / 'qq'}) write ./qq\n")
    assert cli(["train", "-p", "./qq", "--dry-run"]).code == 0
