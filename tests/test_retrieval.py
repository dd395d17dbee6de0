"""Embedding and reranker rows (checks/retrieval.py): the query in messages, its documents in
positive_messages / negative_messages. tests/test_real_failures.py trains the documented rows on
4.6.0 and 3.12.6 and shows ms-swift #4728's {"query", "positive", "negative"} rows all dropped."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli

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
            "embedding pairs each query (messages) with its document (positive_messages), and no row checked has "
            "one: ms-swift drops every row and stops before training")
    assert _findings(result.stderr) == [line]
    assert lines[lines.index(line) + 1] == (
        '  hint: each row: {"messages": [{"role": "user", "content": "QUERY"}], "positive_messages": [[{"role": '
        '"user", "content": "DOC"}]], "negative_messages": [[{"role": "user", "content": "OTHER DOC"}]]}; ms-swift '
        "does not read 'positive' or 'negative': name them positive_messages / negative_messages")


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
        "generative_reranker pairs each query (messages) with its document (positive_messages), and only 2 of 3 rows "
        "checked have one: ms-swift drops the others"]


def test_an_empty_positive_list_is_no_document(tmp_path, monkeypatch):
    result = _validate(tmp_path, monkeypatch, [dict(PAIR, positive_messages=[])], "embedding")
    assert [f.split("]")[0] for f in _findings(result.stderr)] == ["error[data.row.no_positive"]
