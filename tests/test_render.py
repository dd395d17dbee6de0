"""Value tests: every built-in preset renders to an exact argv and env (3.x and 4.x)."""

from __future__ import annotations

import shlex

import pytest

from lorakit import presets
from lorakit.fixups import apply_fixups
from lorakit.job import build_job, split_module_list
from lorakit.render import Command, render, render_value, shell_text

EIGHT = "0,1,2,3,4,5,6,7"


def common(tuner: str = "--tuner_type", accum: str = "16") -> list[str]:
    return [
        "--model", "Qwen/Qwen3-8B",
        tuner, "lora",
        "--dataset", "AI-ModelScope/alpaca-gpt4-data-en#500", "AI-ModelScope/alpaca-gpt4-data-zh#500",
        "--torch_dtype", "bfloat16",
        "--num_train_epochs", "1",
        "--per_device_train_batch_size", "1",
        "--per_device_eval_batch_size", "1",
        "--learning_rate", "0.0001",
        "--lora_rank", "8",
        "--lora_alpha", "32",
        "--target_modules", "all-linear",
        "--gradient_accumulation_steps", accum,
        "--split_dataset_ratio", "0.01",
        "--eval_steps", "50",
        "--save_steps", "50",
        "--save_total_limit", "2",
        "--logging_steps", "5",
        "--max_length", "2048",
        "--warmup_ratio", "0.05",
        "--dataloader_num_workers", "4",
        "--output_dir", "output",
    ]


NO_REENTRANT = ["--gradient_checkpointing_kwargs", '{"use_reentrant": false}']
EXPECTED = {
    "single": ({"CUDA_VISIBLE_DEVICES": "0"}, common()),
    "ddp": ({"CUDA_VISIBLE_DEVICES": EIGHT, "NPROC_PER_NODE": "8"}, common(accum="2") + NO_REENTRANT),
    "ddp_device_map": ({"CUDA_VISIBLE_DEVICES": EIGHT, "NPROC_PER_NODE": "4"},
                       common(accum="4") + NO_REENTRANT),
    "zero2": ({"CUDA_VISIBLE_DEVICES": EIGHT, "NPROC_PER_NODE": "8"},
              common(accum="2") + ["--deepspeed", "zero2"]),
    "zero3": ({"CUDA_VISIBLE_DEVICES": EIGHT, "NPROC_PER_NODE": "8"},
              common(accum="2") + ["--deepspeed", "zero3"]),
}


def job_for(name: str, major: int = 4, env: dict | None = None, **kw):
    return apply_fixups(build_job(presets.load(name), env or {}, swift_major=major, **kw))


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("major", [3, 4])
def test_builtin_training_presets_render_exactly(name, major):
    env, args = EXPECTED[name]
    if major == 3:
        args = ["--train_type" if a == "--tuner_type" else a for a in args]
    command = render(job_for(name, major))
    assert command.env == env
    assert command.argv == ["swift", "sft", *args]
    assert command.unset == ()


def test_every_builtin_sft_preset_is_covered():
    """Every built-in `swift sft` preset's exact argv is here (the rlhf ones: tests/test_rlhf.py)."""
    sft = [n for n in presets.builtin_names() if presets.load(n).data.get("command") == "sft"]
    assert sorted(EXPECTED) == sft
    assert {presets.load(n).data.get("command") for n in presets.builtin_names()} == {"sft", "export", "rlhf"}


def test_merge_preset_renders_only_merge_lora():
    command = render(job_for("merge"))
    assert command == Command(env={}, argv=["swift", "export", "--merge_lora", "true"])


def test_gpus_from_environment_drive_nproc_for_auto_rule():
    job = job_for("zero2", env={"CUDA_VISIBLE_DEVICES": "2,3"})
    assert render(job).env == {"CUDA_VISIBLE_DEVICES": "2,3", "NPROC_PER_NODE": "2"}
    assert job.launch.gpus_source == "CUDA_VISIBLE_DEVICES in your environment"


def test_device_map_rule_keeps_two_gpus_per_rank():
    job = job_for("ddp_device_map", gpus="0,1,2,3")
    assert render(job).env == {"CUDA_VISIBLE_DEVICES": "0,1,2,3", "NPROC_PER_NODE": "2"}


def test_cli_gpus_beat_environment_and_nproc_beats_rule():
    job = job_for("zero2", env={"CUDA_VISIBLE_DEVICES": "2,3"}, gpus="4,5,6,7", nproc=2)
    assert render(job).env == {"CUDA_VISIBLE_DEVICES": "4,5,6,7", "NPROC_PER_NODE": "2"}
    assert job.launch.gpus_source == "--gpus"


def test_stale_launch_vars_in_the_shell_are_unset():
    command = render(job_for("single"), {"NPROC_PER_NODE": "8", "MASTER_PORT": "1", "PATH": "/bin"})
    assert command.unset == ("NPROC_PER_NODE", "MASTER_PORT")
    assert command.child_env({"NPROC_PER_NODE": "8", "PATH": "/bin"}) == {
        "PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0"}
    assert shell_text(command).splitlines()[0] == "env -u NPROC_PER_NODE -u MASTER_PORT \\"


@pytest.mark.parametrize("value, items", [
    (True, ["true"]), (False, ["false"]), (32, ["32"]), (32.0, ["32"]), (1e-4, ["0.0001"]),
    (0.05, ["0.05"]), ("a b", ["a b"]), (["q_proj", "v_proj"], ["q_proj", "v_proj"]),
    ({"use_reentrant": False}, ['{"use_reentrant": false}']), ({"a": "é"}, ['{"a": "é"}']),
])
def test_render_value(value, items):
    assert render_value(value) == items


@pytest.mark.parametrize("text, items", [
    ("[q_proj,k_proj,v_proj,o_proj]", ["q_proj", "k_proj", "v_proj", "o_proj"]),
    ("q_proj,v_proj", ["q_proj", "v_proj"]),
    ("['q_proj', 'v_proj']", ["q_proj", "v_proj"]),
    ("all-linear", "all-linear"),
])
def test_split_module_list(text, items):
    assert split_module_list(text) == items


def test_shell_text_is_the_seeds_form_and_round_trips():
    command = render(job_for("ddp_device_map"))
    text = shell_text(command)
    lines = text.splitlines()
    assert lines[:3] == [f"CUDA_VISIBLE_DEVICES={EIGHT} \\", "NPROC_PER_NODE=4 \\", "swift sft \\"]
    assert lines[3] == "    --model Qwen/Qwen3-8B \\"
    assert lines[-1] == "    --gradient_checkpointing_kwargs '{\"use_reentrant\": false}'"
    tokens = shlex.split(text.replace("\\\n", " "))
    assert tokens == [f"CUDA_VISIBLE_DEVICES={EIGHT}", "NPROC_PER_NODE=4", *command.argv]


def test_set_launch_gpus_beats_the_shell_and_stays_text():
    from lorakit.cli.common import JobOptions, job_from_options as build

    job = build(JobOptions("zero2", sets=["launch.gpus=010,011"]), env={"CUDA_VISIBLE_DEVICES": "4,5"})
    assert render(job).env == {"CUDA_VISIBLE_DEVICES": "010,011", "NPROC_PER_NODE": "2"}
    assert job.launch.gpus_source == "--set"


def test_space_separated_targets_split_and_float_nproc_counts():
    from lorakit.cli.common import JobOptions, job_from_options as build

    job = build(JobOptions("zero2", target_modules="q_proj  v_proj", sets=["launch.nproc_per_node=4.0"]), env={})
    command = render(job)
    assert command.env["NPROC_PER_NODE"] == "4"
    at = command.argv.index("--target_modules")
    assert command.argv[at:at + 3] == ["--target_modules", "q_proj", "v_proj"]


def test_integral_launch_numbers_render_as_ints():
    from lorakit.cli.common import JobOptions, job_from_options as build

    job = build(JobOptions("single", sets=["launch.nnodes=2.0", "launch.node_rank=1.0", "launch.master_port=29500.0",
                                           "launch.master_addr=10.0.0.1", "launch.gpus=00"]), env={})
    assert render(job).env == {"CUDA_VISIBLE_DEVICES": "00", "NNODES": "2", "NODE_RANK": "1",
                               "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
