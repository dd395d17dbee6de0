"""resume_from_checkpoint of a run that had already finished (checks/resumed.py, ms-swift #2956)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli


def checkpoint(root: Path, step: int = 50, ran: int = 50, saved: dict | None = None) -> Path:
    """A checkpoint as ms-swift writes it: adapter, args.json of the run, trainer_state.json last."""
    ckpt = root / "output" / "v0-20250121-101010" / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 32,
                                                          "base_model_name_or_path": "Qwen/Qwen2.5-7B-Instruct"}))
    (ckpt / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    args = {"model": "Qwen/Qwen2.5-7B-Instruct", "train_type": "lora", "num_train_epochs": 3.0,
            "dataset": ["train.jsonl"]} if saved is None else saved
    (ckpt / "args.json").write_text(json.dumps(args))
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": ran, "epoch": 3.0,
                                                         "num_train_epochs": 3, "log_history": []}))
    (root / "train.jsonl").write_text((json.dumps({"query": "q", "response": "r"}) + "\n") * 40)
    (root / "more.jsonl").write_text((json.dumps({"query": "q2", "response": "r2"}) + "\n") * 40)
    return ckpt


def validate(root: Path, *flags: str):
    import os

    old = os.getcwd()
    os.chdir(root)
    try:
        epochs = [] if "--num_train_epochs" in flags else ["--num_train_epochs", "3"]  # single's is 1
        return run_cli(["validate", "-p", "single", "--swift-version", "3", "--json", "--", *flags, *epochs])
    finally:
        os.chdir(old)


def findings(result) -> list[tuple[str, str]]:
    return [(f["level"], f["message"]) for f in json.loads(result.stdout)["findings"]
            if f["code"] == "train.resume.finished"]


RESUME = "output/v0-20250121-101010/checkpoint-50"
# rendered absolute (paths.absolute), as ms-swift will be given it
FINISHED = ("resume_from_checkpoint '{root}/" + RESUME + "' is at step 50, the end of its run (50 steps), and this launch asks "
            "for 3 epoch(s), as that run did: the resumed run skips every step and trains nothing")


def test_the_same_data_and_epochs_again_is_refused(tmp_path):
    checkpoint(tmp_path)
    result = validate(tmp_path, "--dataset", "train.jsonl", "--resume_from_checkpoint", RESUME)
    assert result.code == 2
    assert findings(result) == [("error", FINISHED.format(root=tmp_path))]
    assert [f["hint"] for f in json.loads(result.stdout)["findings"] if f["code"] == "train.resume.finished"] == [
        "to train on, raise num_train_epochs (or set max_steps above the checkpoint's step); to start a new "
        "schedule from these weights, resume_only_model: true"]


@pytest.mark.parametrize("flags", [("--num_train_epochs", "4"), ("--max_steps", "80"), ("--resume_only_model", "true")])
def test_more_to_train_or_a_new_schedule_passes(tmp_path, flags):
    checkpoint(tmp_path)
    assert findings(validate(tmp_path, "--dataset", "train.jsonl", "--resume_from_checkpoint", RESUME, *flags)) == []


def test_an_interrupted_run_resumes(tmp_path):
    checkpoint(tmp_path, step=50, ran=120)
    resume = "output/v0-20250121-101010/checkpoint-50"
    assert findings(validate(tmp_path, "--dataset", "train.jsonl", "--resume_from_checkpoint", resume)) == []


def test_max_steps_at_or_below_the_step_is_refused_whatever_the_data(tmp_path):
    checkpoint(tmp_path, step=50, ran=120)
    result = validate(tmp_path, "--dataset", "more.jsonl", "--max_steps", "50", "--resume_from_checkpoint", RESUME)
    assert findings(result) == [("error", f"resume_from_checkpoint '{tmp_path}/{RESUME}' is at step 50, and max_steps is 50: "
                                          "the resumed run skips those steps, trains one more (transformers tests "
                                          "max_steps after a step) and ends")]


def test_other_data_only_warns(tmp_path):
    checkpoint(tmp_path)
    result = validate(tmp_path, "--dataset", "more.jsonl", "--resume_from_checkpoint", RESUME)
    assert result.code == 0
    assert findings(result) == [("warning", FINISHED.format(root=tmp_path).replace(
        "as that run did:", "as that run did, on other data: unless it has more steps per epoch,"))]


def test_fewer_epochs_than_the_run_had_says_so(tmp_path):
    checkpoint(tmp_path)
    result = validate(tmp_path, "--dataset", "train.jsonl", "--num_train_epochs", "2", "--resume_from_checkpoint",
                      RESUME)
    assert findings(result) == [("error", FINISHED.format(root=tmp_path).replace(
        "asks for 3 epoch(s), as that run did", "asks for 2 epoch(s), no more than that run's 3"))]


def test_a_checkpoint_whose_args_name_no_dataset_only_warns(tmp_path):
    checkpoint(tmp_path, saved={"model": "Qwen/Qwen2.5-7B-Instruct"})
    [(level, message)] = findings(validate(tmp_path, "--dataset", "train.jsonl", "--resume_from_checkpoint", RESUME))
    assert level == "warning" and "(its args.json names no dataset): unless this data has more steps" in message


def test_the_same_data_written_absolute_is_the_same(tmp_path):
    checkpoint(tmp_path, saved={"dataset": [str(tmp_path / "train.jsonl")], "num_train_epochs": 3})
    [(level, _)] = findings(validate(tmp_path, "--dataset", "./train.jsonl", "--resume_from_checkpoint", RESUME))
    assert level == "error"


@pytest.mark.parametrize("state", ['{"global_step": "x"}', "[]", "not json", '{"global_step": 0, "max_steps": 0}'])
def test_an_odd_trainer_state_is_left_to_the_other_checks(tmp_path, state):
    ckpt = checkpoint(tmp_path)
    (ckpt / "trainer_state.json").write_text(state)
    result = validate(tmp_path, "--dataset", "train.jsonl", "--resume_from_checkpoint", RESUME)
    assert "Traceback" not in result.stderr and findings(result) == []
