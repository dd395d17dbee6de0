"""Evaluation/checkpoint policy and values no one means, through the CLI with exact messages.

What transformers refuses (training_args.py __post_init__: load_best_model_at_end needs matching
save/eval strategies and save_steps a multiple of eval_steps) and what ms-swift turns off
(sft_args.py: no validation data -> eval_strategy 'no') only show once the model is loading."""

from __future__ import annotations

import pytest

from conftest import run_cli


def _lines(stderr: str, code: str) -> list[str]:
    return [line for line in stderr.splitlines() if f"[{code}]" in line]


def test_eval_steps_without_validation_data_warns():
    result = run_cli(["validate", "-p", "single", "--set", "split_dataset_ratio=0"])
    assert result.code == 0
    assert _lines(result.stderr, "eval.no_data") == [
        "warning[eval.no_data] args.eval_steps (built-in fragments/lora_sft): eval_steps is set, but there is no "
        "val_dataset and split_dataset_ratio is 0: ms-swift turns evaluation off, so nothing "
        "is evaluated"]
    assert run_cli(["validate", "-p", "single", "--strict", "--set", "split_dataset_ratio=0"]).code == 2


def test_the_built_in_presets_evaluate_on_a_held_out_split():
    result = run_cli(["validate", "-p", "single", "--strict"])
    assert result.code == 0, result.stderr
    assert _lines(result.stderr, "eval.no_data") == []


@pytest.mark.parametrize("sets, line", [
    (["split_dataset_ratio=0"],
     "error[eval.best_without_eval] args.load_best_model_at_end (--set): load_best_model_at_end needs evaluation, "
     "but there is no val_dataset and split_dataset_ratio is 0: ms-swift turns evaluation off and transformers then "
     "refuses the run (save and eval strategies must match)"),
    (["save_steps=75"],
     "error[eval.best_steps] args.save_steps (--set): load_best_model_at_end needs save_steps to be a multiple of "
     "eval_steps: 75 is not a multiple of 50 (transformers refuses it at start-up)"),
    (["save_strategy=epoch"],
     "error[eval.best_strategies] args.load_best_model_at_end (--set): load_best_model_at_end needs save_strategy "
     "and eval_strategy to match: epoch vs steps"),
])
def test_load_best_model_at_end_is_refused_where_transformers_would(sets, line):
    args = ["validate", "-p", "single", "--set", "load_best_model_at_end=true"]
    for item in sets:
        args += ["--set", item]
    result = run_cli(args)
    assert result.code == 2
    assert line in result.stderr.splitlines()


def test_load_best_model_at_end_with_a_sane_policy_passes():
    result = run_cli(["validate", "-p", "single", "--set", "load_best_model_at_end=true", "--set", "save_steps=100"])
    assert result.code == 0, result.stderr


@pytest.mark.parametrize("sets, code, line", [
    (["learning_rate=1"], 2, "error[train.learning_rate] args.learning_rate (--set): learning_rate 1 is not a "
     "learning rate (it must be above 0 and below 1)"),
    (["learning_rate=0"], 2, "error[train.learning_rate] args.learning_rate (--set): learning_rate 0 is not a "
     "learning rate (it must be above 0 and below 1)"),
    (["learning_rate=0.05"], 0, "warning[train.learning_rate.high] args.learning_rate (--set): learning_rate 0.05 is "
     "high for LoRA (recipes use 1e-4 to 5e-4): training may diverge"),
    (["max_length=0"], 2, "error[train.max_length] args.max_length (--set): max_length 0 leaves no room for a "
     "single token"),
    (["num_train_epochs=0"], 2, "error[train.no_steps] args.num_train_epochs (--set): num_train_epochs 0 with no "
     "max_steps trains nothing"),
    (["learning_rate=.nan"], 2, "error[train.learning_rate] args.learning_rate (--set): learning_rate nan is not a "
     "learning rate (it must be above 0 and below 1)"),
    (["num_train_epochs=1e309"], 2, "error[train.no_steps] args.num_train_epochs (--set): num_train_epochs 1e309 with "
     "no max_steps: transformers cannot count the steps to train"),
    (["num_train_epochs=.inf", "max_steps=10"], 0, "info[batch.global_batch_size.derived] "
     "args.gradient_accumulation_steps (built-in fragments/lora_sft): gradient_accumulation_steps 16 = "
     "global_batch_size 16 / (per-device 1 x 1 rank(s) per node x 1 node(s))"),  # max_steps decides
])
def test_values_no_one_means(sets, code, line):
    args = ["validate", "-p", "single"]
    for item in sets:
        args += ["--set", item]
    result = run_cli(args)
    assert result.code == code
    assert line in result.stderr.splitlines()


def test_zero_epochs_with_max_steps_is_fine():
    assert run_cli(["validate", "-p", "single", "--set", "num_train_epochs=0", "--set", "max_steps=10"]).code == 0


def test_a_high_learning_rate_for_a_full_fine_tune_is_not_lora_advice():
    result = run_cli(["validate", "-p", "single", "--set", "learning_rate=0.05", "--set", "tuner_type=full"])
    assert _lines(result.stderr, "train.learning_rate.high") == []


def test_eval_without_data_is_said_per_target_minor(tmp_path):
    """Up to 3.5 ms-swift held out 1% by default (split_dataset_ratio 0.01): eval_steps alone
    evaluates there. From 3.6 (and in 4.x) the default is 0."""
    preset = tmp_path / "p.yaml"
    preset.write_text("command: sft\nargs:\n  model: Qwen/Qwen2.5-7B-Instruct\n"
                      "  dataset: [AI-ModelScope/alpaca-gpt4-data-en]\n  eval_steps: 50\n")

    def lines(version):
        return _lines(run_cli(["validate", "-p", str(preset), "--swift-version", version]).stderr, "eval.no_data")
    assert lines("3.5") == []
    assert lines("3.0.3") == []
    assert lines("3.6") == [
        f"warning[eval.no_data] args.eval_steps ({preset}): eval_steps is set, but there is no "
        "val_dataset and split_dataset_ratio is 0 (ms-swift's default from 3.6 on): ms-swift turns evaluation off, "
        "so nothing is evaluated"]
    assert lines("4") == [
        f"warning[eval.no_data] args.eval_steps ({preset}): eval_steps is set, but there is no "
        "val_dataset and split_dataset_ratio is 0 (ms-swift's default): ms-swift turns evaluation off, "
        "so nothing is evaluated"]


def test_save_total_limit_1_with_best_model_is_a_warning_about_the_last_checkpoint():
    """Not an error: the run trains and ends with only the best checkpoint
    (tests/test_real_failures.py runs it); the last one is deleted at the end."""
    result = run_cli(["validate", "-p", "single", "--set", "load_best_model_at_end=true", "--set", "save_total_limit=1"])
    assert result.code == 0, result.stderr
    lines = result.stderr.splitlines()
    i = lines.index("warning[eval.best_limit] args.save_total_limit (--set): save_total_limit 1 with "
                    "load_best_model_at_end: at the end transformers deletes every checkpoint but the best, so the "
                    "last one (ms-swift's last_model_checkpoint, last-checkpoint) is gone and the run cannot be "
                    "resumed from its end")
    assert lines[i + 1] == ("  hint: to keep the last checkpoint too: save_total_limit: 2 (`lorakit checkpoints` "
                            "lists what is left)")


def test_best_model_without_eval_data_still_reports_the_limit():
    """ms-swift #9780: load_best_model_at_end, save_total_limit 1 and no eval data: every problem
    at once (the error, and the limit's warning)."""
    result = run_cli(["validate", "-p", "single", "--set", "split_dataset_ratio=0", "--set",
                      "load_best_model_at_end=true", "--set", "save_total_limit=1"])
    assert result.code == 2
    codes = [line.split("]")[0] for line in result.stderr.splitlines() if "[eval.best" in line]
    assert sorted(codes) == ["error[eval.best_without_eval", "warning[eval.best_limit"]


def test_eval_dataset_without_evalscope_is_refused():
    """EvalScope benchmarks keep evaluation on without a val_dataset, and run only with
    eval_use_evalscope: without it the first evaluation is a KeyError after training began
    (tests/test_real_failures.py, on 4.6.0 and 3.12.6)."""
    result = run_cli(["validate", "-p", "single", "--set", "split_dataset_ratio=0", "--", "--eval_dataset", "gsm8k"])
    assert result.code == 2
    lines = result.stderr.splitlines()
    line = ("error[eval.benchmarks_off] args.eval_dataset (-- extra flags): eval_dataset names EvalScope benchmarks, "
            "which run only with eval_use_evalscope true; with no val_dataset and split_dataset_ratio 0 evaluation "
            "stays on with nothing to evaluate, and the first evaluation fails (KeyError: 'eval_loss' not found) "
            "after training has started")
    assert line in lines, result.stderr
    assert lines[lines.index(line) + 1] == ("  hint: add eval_use_evalscope: true (and `pip install evalscope`) to run "
                                            "the benchmarks; or val_dataset: [FILE] for an eval loss; or drop "
                                            "eval_dataset")
    assert _lines(result.stderr, "eval.no_data") == []  # one mistake, one finding


@pytest.mark.parametrize("extra", [["--eval_use_evalscope", "true"], ["--eval_strategy", "no"]])
def test_benchmarks_with_evalscope_or_no_evaluation_pass(extra):
    result = run_cli(["validate", "-p", "single", "--set", "split_dataset_ratio=0", "--", "--eval_dataset", "gsm8k",
                      *extra])
    assert _lines(result.stderr, "eval.benchmarks_off") == [], result.stderr
    assert _lines(result.stderr, "eval.no_data") == [], result.stderr


def test_benchmarks_next_to_a_validation_split_are_not_this_mistake():
    result = run_cli(["validate", "-p", "single", "--", "--eval_dataset", "gsm8k"])
    assert _lines(result.stderr, "eval.benchmarks_off") == [], result.stderr


def test_an_empty_eval_dataset_still_keeps_evaluation_on(tmp_path):
    """`--eval_dataset ''` is [''] to ms-swift's list: truthy, so evaluation stays on."""
    preset = tmp_path / "p.yaml"
    preset.write_text("extends: single\nargs:\n  eval_dataset: ''\n  split_dataset_ratio: 0\n")
    result = run_cli(["validate", "-p", str(preset)])
    assert result.code == 2
    assert _lines(result.stderr, "eval.benchmarks_off") and not _lines(result.stderr, "eval.no_data"), result.stderr
