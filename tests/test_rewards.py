"""GRPO reward functions (checks/rewards.py): a name ms-swift cannot find (#4351), a built-in
reward whose reference column the local dataset lacks (#3177)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import run_cli, swift_source
from lorakit.checks.rewards import BUILT_IN, registered


def rlhf(root: Path, *flags: str):
    old = os.getcwd()
    os.chdir(root)
    try:
        (root / "grpo.yaml").write_text("extends: grpo_colocate\n", encoding="utf-8")
        return run_cli(["validate", "-p", "grpo.yaml", "--swift-version", "4", "--json", "--", *flags])
    finally:
        os.chdir(old)


def codes(result, code: str) -> list[tuple[str, str, str]]:
    return [(f["level"], f["message"], f["hint"]) for f in json.loads(result.stdout)["findings"] if f["code"] == code]


def rows(path: Path, *items: dict) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


Q = {"messages": [{"role": "user", "content": "What is 1 + 1? Put the answer in <answer></answer>."}]}

# --- names ---------------------------------------------------------------------------------------


def test_a_name_no_plugin_registers_is_refused(tmp_path):
    (tmp_path / "plugin.py").write_text("from swift.rewards import orms, ORM\n\nclass MyFormat(ORM):\n    pass\n")
    result = rlhf(tmp_path, "--external_plugins", "plugin.py", "--reward_funcs", "my_format")
    assert result.code == 2
    assert codes(result, "rlhf.grpo.reward_unknown") == [(
        "error", "reward_funcs my_format: not a reward ms-swift has (built-in: " + ", ".join(BUILT_IN) + ") and "
        "the --external_plugins file (plugin.py) registers none: GRPO stops when it builds the trainer "
        "('reward_function my_format is not implemented')",
        "register it in a plugin: orms['my_format'] = MyReward, and pass --external_plugins plugin.py")]


def test_a_typo_of_a_built_in_without_plugins_gets_a_did_you_mean(tmp_path):
    [(level, message, hint)] = codes(rlhf(tmp_path, "--reward_funcs", "accuracy", "fromat"), "rlhf.grpo.reward_unknown")
    assert level == "error" and "no --external_plugins file registers more" in message
    assert hint.startswith("did you mean 'format'? ")


@pytest.mark.parametrize("plugin", [
    "orms['my_format'] = MyFormat\n",                       # ms-swift's own examples/train/grpo/plugin/plugin.py
    'orms["my_format"]=MyFormat\n',
    "for name, cls in TABLE.items():\n    orms[name] = cls\n",  # a variable key: text cannot tell
    "orms.update({'my_format': MyFormat})\n",
])
def test_registered_or_undecidable_names_pass(tmp_path, plugin):
    (tmp_path / "plugin.py").write_text("from swift.rewards import orms\n" + plugin)
    assert codes(rlhf(tmp_path, "--external_plugins", "plugin.py", "--reward_funcs", "my_format", "format"),
                 "rlhf.grpo.reward_unknown") == []


def test_a_module_the_plugin_imports_from_its_folder_is_read(tmp_path):
    (tmp_path / "myrewards.py").write_text("from swift.rewards import orms\norms['my_format'] = object\n")
    (tmp_path / "plugin.py").write_text("import myrewards  # registers on import\n")
    assert registered(["plugin.py"], str(tmp_path)) == ({"my_format"}, False)
    assert codes(rlhf(tmp_path, "--external_plugins", "plugin.py", "--reward_funcs", "my_format"),
                 "rlhf.grpo.reward_unknown") == []


def test_a_plugin_that_is_not_there_is_not_guessed_about(tmp_path):
    assert registered(["nope.py"], str(tmp_path)) == (set(), True)


# --- columns -------------------------------------------------------------------------------------

NO_SOLUTION = ("{path}: reward accuracy reads each row's 'solution' (the reference answer), and no row has "
               "one (columns: messages): GRPO stops at the first reward ('missing 1 required positional argument: "
               "'solution'')")


def test_accuracy_on_rows_without_a_solution_is_refused(tmp_path):
    data = rows(tmp_path / "train.jsonl", Q, Q)
    result = rlhf(tmp_path, "--dataset", "train.jsonl", "--reward_funcs", "accuracy", "format")
    assert result.code == 2
    assert codes(result, "rlhf.grpo.reward_column") == [(
        "error", NO_SOLUTION.format(path=data),
        'add "solution": "..." to each row, next to "messages" (or map a column onto it with --columns), '
        "or drop accuracy")]


def test_a_solution_only_past_the_rows_read_is_a_warning(tmp_path):
    """lorakit reads a bounded prefix; a later row's solution makes the column exist (None in the
    rows before), so only a file read to its end is certain."""
    from lorakit.dataread import MAX_ROWS

    data = rows(tmp_path / "train.jsonl", *([Q] * (MAX_ROWS + 5)), {**Q, "solution": "<answer>2</answer>"})
    result = rlhf(tmp_path, "--dataset", "train.jsonl", "--reward_funcs", "accuracy")
    [(level, message, _)] = codes(result, "rlhf.grpo.reward_column")
    assert level == "warning"
    assert message == (f"{data}: reward accuracy reads each row's 'solution' (the reference answer), and none of "
                       f"the first {MAX_ROWS} rows has one (columns: messages): if no later row has it either, GRPO "
                       "stops at the first reward; if some do, the rows before reach the reward with solution None")


def test_rows_with_a_solution_or_a_mapping_onto_it_pass(tmp_path):
    rows(tmp_path / "train.jsonl", {**Q, "solution": "<answer>2</answer>"})
    assert codes(rlhf(tmp_path, "--dataset", "train.jsonl", "--reward_funcs", "accuracy", "cosine"),
                 "rlhf.grpo.reward_column") == []
    rows(tmp_path / "other.jsonl", {**Q, "answer_text": "2"})
    assert codes(rlhf(tmp_path, "--dataset", "other.jsonl", "--reward_funcs", "accuracy",
                      "--columns", '{"answer_text": "solution"}'), "rlhf.grpo.reward_column") == []


def test_rewards_that_read_no_column_and_hub_datasets_pass(tmp_path):
    rows(tmp_path / "train.jsonl", Q)
    assert codes(rlhf(tmp_path, "--dataset", "train.jsonl", "--reward_funcs", "format", "repetition"),
                 "rlhf.grpo.reward_column") == []
    assert codes(rlhf(tmp_path, "--dataset", "AI-MO/NuminaMath-TIR#1000", "--reward_funcs", "accuracy"),
                 "rlhf.grpo.reward_column") == []


def test_math_reads_ground_truths(tmp_path):
    rows(tmp_path / "train.jsonl", Q)
    [(_, message, _)] = codes(rlhf(tmp_path, "--dataset", "train.jsonl", "--reward_funcs", "math"),
                              "rlhf.grpo.reward_column")
    assert "reward math reads each row's 'ground_truths'" in message


def test_the_rewards_and_their_columns_are_ms_swifts():
    import ast

    tree = ast.parse("\n".join(swift_source("rewards/orm.py")))
    table = next(n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "orms")
    names = {k.value: v.id for k, v in zip(table.value.keys, table.value.values)}
    assert tuple(names) == BUILT_IN
    calls = {c.name: [a.arg for a in f.args.args] for c in tree.body if isinstance(c, ast.ClassDef)
             for f in c.body if isinstance(f, ast.FunctionDef) and f.name == "__call__"}
    from lorakit.checks.rewards import NEEDS

    for name, cls in names.items():
        params = calls[cls][2:]  # after self and the completions (or infer_requests)
        assert params == ([NEEDS[name]] if name in NEEDS else []), (name, cls, params)


def test_a_misspelt_plugin_name_is_suggested_from_the_plugin(tmp_path):
    (tmp_path / "plugin.py").write_text("from swift.rewards import orms\norms['external_countdown'] = C\n")
    [(_, message, hint)] = codes(rlhf(tmp_path, "--external_plugins", "plugin.py", "--reward_funcs",
                                      "external_countdwon"), "rlhf.grpo.reward_unknown")
    assert "the --external_plugins file (plugin.py) registers external_countdown" in message
    assert hint.startswith("did you mean 'external_countdown'? ")


def test_a_local_dataset_is_read_once_per_run_of_the_checks(tmp_path, monkeypatch):
    from lorakit import datafile

    reads = []
    real = datafile._recognize
    monkeypatch.setattr(datafile, "_recognize", lambda path, *a: reads.append(path) or real(path, *a))
    rows(tmp_path / "train.jsonl", Q)
    result = rlhf(tmp_path, "--dataset", "train.jsonl", "--reward_funcs", "accuracy")
    assert codes(result, "rlhf.grpo.reward_column") and reads == [str(tmp_path / "train.jsonl")]
    rows(tmp_path / "train.jsonl", {**Q, "solution": "2"})  # rewritten: the next run reads it again
    assert codes(rlhf(tmp_path, "--dataset", "train.jsonl", "--reward_funcs", "accuracy"),
                 "rlhf.grpo.reward_column") == []
    assert len(reads) == 2


def test_grpo_prompt_rows_without_an_answer_are_not_warned_about(tmp_path):
    # GRPO generates the answer: a row of only a user message is its normal row (ms-swift's examples)
    rows(tmp_path / "train.jsonl", {**Q, "solution": "2"})
    assert codes(rlhf(tmp_path, "--dataset", "train.jsonl", "--reward_funcs", "accuracy"), "data.row.no_response") == []
