"""Hostile round 4: today's CLI-level changes (flags.twice, disk-write failures, --swift-version
patch strings, `--from` records) attacked through the real entry point. Each test is the correct
behaviour a hostile review found wrong (each shown failing before its fix)."""

from __future__ import annotations

import errno
import json
import os

import pytest
import yaml

from conftest import FAKES, run_cli

ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.jsonl").write_text((json.dumps(ROW) + "\n") * 30, encoding="utf-8")
    return tmp_path


def _no_twice(args: list[str]):
    result = run_cli(args)
    assert "flags.twice" not in result.stderr, result.stderr
    assert result.code == 0, result.stderr
    return result


# --- flags.twice false alarms: values ms-swift parses to the same thing --------------------------

def test_bool_true_and_True_are_one_value(here):
    _no_twice(["validate", "-p", "single", "--set", "gradient_checkpointing=true",
               "--", "--gradient_checkpointing", "True"])


def test_bool_true_and_1_are_one_value(here):
    _no_twice(["validate", "-p", "single", "--set", "gradient_checkpointing=true",
               "--", "--gradient_checkpointing", "1"])


def test_float_flag_32_and_32_0_are_one_value(here):
    _no_twice(["validate", "-p", "single", "--lora-alpha", "32", "--", "--lora_alpha", "32.0"])


def test_float_flag_1e_4_and_0_0001_are_one_value(here):
    _no_twice(["validate", "-p", "single", "--set", "learning_rate=1e-4", "--", "--learning_rate", "0.0001"])


def test_epochs_1_and_1_0_are_one_value(here):
    _no_twice(["validate", "-p", "single", "--set", "num_train_epochs=1", "--", "--num_train_epochs", "1.0"])


def test_comma_list_and_spaced_list_are_one_value(here):
    _no_twice(["validate", "-p", "single", "--target-modules", "q_proj,v_proj",
               "--", "--target_modules", "q_proj", "v_proj"])


def test_same_dataset_file_spelled_two_ways(here):
    _no_twice(["validate", "-p", "single", "--set", "dataset=a.jsonl", "--", "--dataset", "./a.jsonl"])


def test_set_comma_list_and_spaced_list_are_one_value(here):
    _no_twice(["validate", "-p", "single", "--set", "target_modules=q_proj,v_proj",
               "--", "--target_modules", "q_proj", "v_proj"])


def test_int_flag_08_and_8_are_one_value(here):
    _no_twice(["validate", "-p", "single", "--", "--lora_rank", "08", "--lora_rank", "8"])


def test_twice_on_3x_names_the_3x_flag(here):
    result = run_cli(["validate", "-p", "single", "--swift-version", "3",
                      "--", "--train_type", "lora", "--train_type", "full"])
    assert result.code == 2, result.stderr
    assert ("error[flags.twice] args.train_type (-- extra flags): train_type is set twice on the command line, "
            "to different values: -- --train_type lora and -- --train_type full") in result.stderr


# --- flags.twice misses ----------------------------------------------------------------------------

def test_typed_option_repeated_with_two_values_is_refused(here):
    result = run_cli(["validate", "-p", "single", "--target-modules", "q_proj", "--target-modules", "v_proj"])
    assert result.code == 2, result.stderr
    assert ("target_modules is set twice on the command line, to different values: "
            "--target-modules q_proj and --target-modules v_proj") in result.stderr


# --- --swift-version ------------------------------------------------------------------------------

def test_swift_version_dev_release_as_installed(here):
    result = run_cli(["validate", "-p", "single", "--swift-version", "3.4.0.dev0"])
    assert result.code == 0, result.stderr
    assert "rendering for ms-swift 3.4.0.dev0 (--swift-version)" in result.stderr


# --- disk errors ----------------------------------------------------------------------------------

def test_log_on_read_only_disk_is_environment(here, monkeypatch):
    from lorakit import progress

    def refusing_open(path, *a, **k):
        if str(path).endswith("run.log"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return open(path, *a, **k)

    monkeypatch.setattr(progress, "open", refusing_open, raising=False)
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SWIFT_RECORD", str(here / "fake.json"))
    result = run_cli(["train", "-p", "single", "--dataset", "a.jsonl", "--output-dir", "out",
                      "--no-progress", "--log", "run.log"])
    assert result.code == 1, result.stderr
    assert "--log run.log: cannot write it: Read-only file system (EROFS)" in result.stderr
    assert not (here / "fake.json").exists()


# --- --from ---------------------------------------------------------------------------------------

def test_record_format_true_is_not_format_1(here, monkeypatch):
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SWIFT_RECORD", str(here / "fake.json"))
    made = run_cli(["train", "-p", "single", "--dataset", "a.jsonl", "--output-dir", "out", "--no-progress"])
    assert made.code == 0, made.stderr
    record = yaml.safe_load((here / "out" / "lorakit-run.yaml").read_text(encoding="utf-8"))
    record["lorakit_record"] = True
    (here / "edited.yaml").write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
    result = run_cli(["train", "--from", "edited.yaml", "--dry-run"])
    assert result.code == 2, result.stderr
    assert "--from edited.yaml: not a lorakit run record (format 1)" in result.stderr


def test_record_for_the_other_major_is_an_environment_problem(here, monkeypatch):
    from lorakit import record as written

    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SWIFT_RECORD", str(here / "fake.json"))
    made = run_cli(["train", "-p", "single", "--swift-version", "3", "--dataset", "a.jsonl",
                    "--output-dir", "out", "--no-progress"])
    assert made.code == 0, made.stderr
    (here / "fake.json").unlink()
    monkeypatch.setattr(written, "swift_version", lambda swift: "4.6.0")
    result = run_cli(["train", "--from", "out", "--no-progress"])
    assert "the record was made for ms-swift 3.x" in result.stderr
    assert result.code == 1, result.stderr
    assert not (here / "fake.json").exists()


def test_post_release_without_dot_keeps_patch_history(here):
    for spelled in ("3.3.0.post1", "3.3.0post1"):
        result = run_cli(["validate", "-p", "grpo_server", "--swift-version", spelled,
                          "--", "--vllm_server_host", "127.0.0.1"])
        assert result.code == 2, result.stderr
        assert "--vllm_server_host is new in ms-swift 3.3.1; you target 3.3.0" in result.stderr, spelled


def test_presets_init_to_a_slash_path_is_not_a_file(here):
    result = run_cli(["presets", "init", "single", "newdir/"])
    assert result.code == 2, result.stderr
    assert "newdir/single.yaml" in result.stderr
    assert not (here / "newdir").exists()


def test_import_to_a_slash_path_is_not_a_file(here):
    (here / "s.sh").write_text("CUDA_VISIBLE_DEVICES=0 swift sft --model Qwen/Qwen3-8B --train_type lora "
                               "--dataset a.jsonl --output_dir out\n", encoding="utf-8")
    result = run_cli(["import", "s.sh", "-o", "newdir/"])
    assert result.code == 2, result.stderr
    assert "is a directory" in result.stderr or "does not exist" in result.stderr
    assert not (here / "newdir").exists()


@pytest.mark.parametrize("args, said", [
    (["--lora-rank", "8", "--lora-rank", "16"], "lora_rank is set twice on the command line, to different values: "
                                                "--lora-rank 8 and --lora-rank 16"),
    (["--lora-alpha", "16", "--lora-alpha", "32"], "lora_alpha is set twice on the command line, to different "
                                                   "values: --lora-alpha 16 and --lora-alpha 32"),
    (["--model", "Qwen/Qwen3-8B", "--model", "Qwen/Qwen3-4B"], "model is set twice on the command line, to "
                                                               "different values: --model Qwen/Qwen3-8B and "
                                                               "--model Qwen/Qwen3-4B"),
    (["--output-dir", "o1", "--output-dir", "o2"], "output_dir is set twice on the command line, to different "
                                                   "values: --output-dir o1 and --output-dir o2"),
    (["--gpus", "0", "--gpus", "1"], "launch.gpus is set twice on the command line, to different values: "
                                     "--gpus 0 and --gpus 1"),
    (["--swift-version", "3", "--swift-version", "4"], "--swift-version 3 and --swift-version 4"),
])
def test_every_typed_option_repeated_is_refused(here, args, said):
    result = run_cli(["validate", "-p", "single", *args])
    assert result.code == 2, result.stderr
    assert said in result.stderr


def test_infer_backend_typed_and_after_dashes_is_refused(here):
    result = run_cli(["infer", "--model", "Qwen/Qwen3-8B", "--infer-backend", "pt", "--dry-run",
                      "--", "--infer_backend", "vllm"])
    assert result.code == 2, result.stdout + result.stderr
    assert ("infer_backend is set twice on the command line, to different values: --infer-backend pt and "
            "-- --infer_backend vllm") in result.stderr


@pytest.mark.parametrize("args, said", [
    (["infer", "--model", "Qwen/Qwen3-8B", "--infer-backend", "vllm", "--set", "infer_backend=sglang",
      "--dry-run"], "infer_backend is set twice on the command line, to different values: "
                    "--set infer_backend=sglang and --infer-backend vllm"),
    (["eval", "--model", "Qwen/Qwen3-8B", "--eval-dataset", "gsm8k", "--dry-run", "--", "--eval_dataset", "arc"],
     "eval_dataset is set twice on the command line, to different values: --eval-dataset gsm8k and "
     "-- --eval_dataset arc"),
    (["eval", "--model", "Qwen/Qwen3-8B", "--infer-backend", "vllm", "--set", "infer_backend=pt", "--dry-run"],
     "infer_backend is set twice on the command line, to different values: --set infer_backend=pt and "
     "--infer-backend vllm"),
])
def test_infer_and_eval_typed_options_twice_are_refused(here, args, said):
    result = run_cli(args)
    assert result.code == 2, result.stdout + result.stderr
    assert said in result.stderr


@pytest.mark.parametrize("args, said", [
    (["--port", "8000", "--dry-run", "--", "--port", "8001"],
     "port is set twice on the command line, to different values: --port 8000 and -- --port 8001"),
    (["--port", "8000", "--set", "port=8001", "--dry-run"],
     "port is set twice on the command line, to different values: --set port=8001 and --port 8000"),
    (["--host", "0.0.0.0", "--dry-run", "--", "--host", "127.0.0.1"],
     "host is set twice on the command line, to different values: --host 0.0.0.0 and -- --host 127.0.0.1"),
])
def test_deploy_port_and_host_twice_are_refused(here, args, said):
    result = run_cli(["deploy", "--model", "Qwen/Qwen3-8B", *args])
    assert result.code == 2, result.stdout + result.stderr
    assert said in result.stderr


def test_a_comma_in_a_text_value_is_part_of_it(here):
    """Only the list flags lorakit splits (target_modules, modules_to_save) compare item by item:
    a system prompt 'a, b' is not 'a,b'."""
    result = run_cli(["validate", "-p", "single", "--set", "system=a, b", "--", "--system", "a,b"])
    assert result.code == 2, result.stderr
    assert ("error[flags.twice] args.system (-- extra flags): system is set twice on the command line, to different "
            "values: --set system=a, b and -- --system a,b") in result.stderr.splitlines()
    _no_twice(["validate", "-p", "single", "--set", "system=a,b", "--", "--system", "a,b"])


def test_a_gpu_list_spelled_with_spaces_is_one_value(here):
    """'0, 1' renders CUDA_VISIBLE_DEVICES=0,1 as '0,1' does (a hostile review of the comma rule)."""
    _no_twice(["validate", "-p", "zero2", "--gpus", "0,1", "--set", "launch.gpus=0, 1"])
    result = run_cli(["validate", "-p", "zero2", "--gpus", "0,1", "--gpus", "0, 1"])
    assert "set twice" not in result.stderr, result.stderr
