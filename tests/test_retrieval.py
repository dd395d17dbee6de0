"""Embedding and reranker rows (checks/retrieval.py): the query in messages, its documents in
positive_messages / negative_messages. tests/test_real_failures.py trains the documented rows on
4.6.0 and 3.12.6 and shows ms-swift #4728's {"query", "positive", "negative"} rows all dropped."""

from __future__ import annotations

import json

import pytest

from conftest import imported_by, run_cli

PAIR = {"messages": [{"role": "user", "content": "what is a cat"}],
        "positive_messages": [[{"role": "user", "content": "a cat is an animal"}]],
        "negative_messages": [[{"role": "user", "content": "a car"}]]}
WRONG = {"query": "what is a cat", "positive": ["a cat is an animal"], "negative": ["a car"]}
BARE = ["--model", "Qwen/Qwen3-Embedding-0.6B", "--tuner_type", "full", "--split_dataset_ratio", "0"]


def _validate(tmp_path, monkeypatch, rows, task, version="4"):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_cli(["validate", "-p", "single", "--swift-version", version, "--", *BARE, "--task_type", task,
                    "--dataset", "train.jsonl"])


def _findings(stderr: str, key: str = "args.dataset") -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("error[", "warning[")) and f"] {key} (" in line]


@pytest.mark.parametrize("task", ["embedding", "reranker", "generative_reranker"])
@pytest.mark.parametrize("version", ["4", "3", "3.8"])
def test_the_documented_rows_pass_quietly(tmp_path, monkeypatch, task, version):
    result = _validate(tmp_path, monkeypatch, [PAIR, PAIR], task, version)
    assert result.code == 0, result.stderr
    assert _findings(result.stderr) == []


def test_before_3_8_a_row_without_a_reply_is_still_said(tmp_path, monkeypatch):
    """3.6-3.7 read query/response/rejected_response rows: positive_messages means nothing there."""
    result = _validate(tmp_path, monkeypatch, [PAIR], "embedding", "3.7")
    assert _findings(result.stderr) == [
        f"warning[data.row.no_response] args.dataset (-- extra flags): {tmp_path}/train.jsonl:1: no assistant "
        "message: ms-swift keeps the row but it has nothing to train on (every label is -100)"]


def test_a_causal_lm_row_without_a_reply_is_still_said(tmp_path, monkeypatch):
    result = _validate(tmp_path, monkeypatch, [PAIR], "causal_lm")
    assert [f.split("]")[0] for f in _findings(result.stderr)] == ["warning[data.row.no_response"]


def test_rows_without_positive_messages_are_refused(tmp_path, monkeypatch):
    result = _validate(tmp_path, monkeypatch, [WRONG, WRONG], "embedding")
    assert result.code == 2
    lines = result.stderr.splitlines()
    line = (f"error[data.row.no_positive] args.dataset (-- extra flags): {tmp_path}/train.jsonl:1: task_type "
            "embedding pairs each query (messages) with its documents (positive_messages: a list of message lists), "
            "and no row checked has them: the run stops before it trains (ms-swift drops such rows; reranker rows "
            "with only negative_messages fail the first step)")
    assert _findings(result.stderr) == [line]
    assert lines[lines.index(line) + 1] == (
        '  hint: each row: {"messages": [{"role": "user", "content": "QUERY"}], "positive_messages": [[{"role": '
        '"user", "content": "DOC"}]], "negative_messages": [[{"role": "user", "content": "OTHER DOC"}]]}; ms-swift '
        "does not read 'positive' or 'negative': name them positive_messages / negative_messages (or map them with "
        "--columns)")


def test_a_reranker_hint_writes_the_documents_as_assistant_turns(tmp_path, monkeypatch):
    result = _validate(tmp_path, monkeypatch, [{"messages": [{"role": "user", "content": "q"}]}], "reranker")
    assert result.code == 2
    assert ('  hint: each row: {"messages": [{"role": "user", "content": "QUERY"}], "positive_messages": [[{"role": '
            '"assistant", "content": "DOC"}]], "negative_messages": [[{"role": "assistant", "content": "OTHER DOC"}]]}'
            ) in result.stderr.splitlines()


def test_some_rows_without_positive_messages_are_a_warning(tmp_path, monkeypatch):
    result = _validate(tmp_path, monkeypatch, [PAIR, {"messages": PAIR["messages"]}, PAIR], "generative_reranker")
    assert result.code == 0, result.stderr
    assert _findings(result.stderr) == [
        f"warning[data.row.no_positive] args.dataset (-- extra flags): {tmp_path}/train.jsonl:2: task_type "
        "generative_reranker pairs each query (messages) with its documents (positive_messages: a list of message "
        "lists), and only 2 of 3 rows checked have them: ms-swift has no document to learn from in the others"]


def test_one_row_with_documents_is_said_in_the_singular(tmp_path, monkeypatch):
    result = _validate(tmp_path, monkeypatch, [PAIR, {"messages": PAIR["messages"]}], "embedding")
    assert "and only 1 of 2 rows checked has them: " in result.stderr


@pytest.mark.parametrize("positive,shape", [
    ([], ""), ("a cat is an animal", " (its positive_messages is text)"),
    (["a cat is an animal"], " (its positive_messages is a list of text)"),
    ([{"role": "user", "content": "a cat"}], " (its positive_messages is a list of messages, not of message lists)"),
    ([["a cat"]], " (its positive_messages is a list of lists that are not messages)"),
])
def test_documents_that_are_not_message_lists_are_no_documents(tmp_path, monkeypatch, positive, shape):
    """Measured on 4.6.0: text, a list of text and a flat list of messages are all dropped."""
    result = _validate(tmp_path, monkeypatch, [dict(PAIR, positive_messages=positive)], "embedding")
    assert result.code == 2
    [line] = _findings(result.stderr)
    assert f"and no row checked has them{shape}: the run stops before it trains" in line, line


def test_columns_that_map_to_positive_messages_are_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    row = {"messages": PAIR["messages"], "pos": PAIR["positive_messages"]}
    (tmp_path / "train.jsonl").write_text(json.dumps(row) + "\n")
    result = run_cli(["validate", "-p", "single", "--", *BARE, "--task_type", "embedding", "--dataset",
                      "train.jsonl", "--columns", '{"pos": "positive_messages"}'])
    assert result.code == 0, result.stderr
    assert _findings(result.stderr) == []


def test_a_custom_dataset_info_file_owns_its_rows(tmp_path, monkeypatch):
    (tmp_path / "info.json").write_text('[{"dataset_path": "train.jsonl", "dataset_name": "mine"}]')
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text(json.dumps(WRONG) + "\n")
    result = run_cli(["validate", "-p", "single", "--", *BARE, "--task_type", "embedding", "--dataset",
                      "train.jsonl", "--custom_dataset_info", "info.json"])
    assert [f for f in _findings(result.stderr) if "no_positive" in f] == []


def test_one_file_as_dataset_and_val_dataset_is_said_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text(json.dumps(WRONG) + "\n")
    result = run_cli(["validate", "-p", "single", "--", *BARE, "--task_type", "embedding", "--dataset",
                      "train.jsonl", "--val_dataset", "train.jsonl"])
    assert [f.split("]")[0] for f in result.stderr.splitlines() if "[data.row.no_positive]" in f] == [
        "error[data.row.no_positive"]


def test_a_json_array_gets_the_column_hint_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.json").write_text(json.dumps([WRONG, WRONG]))
    result = run_cli(["validate", "-p", "single", "--", *BARE, "--task_type", "embedding", "--dataset",
                      "train.json"])
    assert "ms-swift does not read 'positive' or 'negative'" in result.stderr, result.stderr


def test_a_local_dataset_without_task_type_does_not_import_the_check(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps(PAIR) + "\n")
    dry_run = ["train", "-p", "single", "--dataset", "train.jsonl", "--dry-run"]
    assert not imported_by(dry_run, "lorakit.checks.retrieval", tmp_path)
    assert imported_by([*dry_run, "--", "--task_type", "embedding"], "lorakit.checks.retrieval", tmp_path)
