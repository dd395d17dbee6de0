"""A JSON field whose type changes between rows (datatypes.py, checks/data.py; ms-swift #5269).
The real load with datasets 3.6.0 is in test_real_datatypes.py."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import run_cli
from lorakit.datatypes import first_change


@pytest.mark.parametrize("rows, change", [
    ([{"query": "a"}, {"query": 1}], ("/query", 2, "string", "number")),
    ([{"query": 1}, {"query": 1.5}], None),  # int and float are one pyarrow type
    ([{"query": "a"}, {"query": None}, {"query": "b"}], None),  # null goes with any
    ([{"x": True}, {"x": 1}], ("/x", 2, "boolean", "number")),
    ([{"x": {"a": 1}}, {"x": {"b": "s"}}], None),  # objects with other keys merge
    ([{"x": {"a": 1}}, {"x": {"a": "s"}}], ("/x/a", 2, "number", "string")),
    ([{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text"}]}]}],
     ("/messages/[]/content", 1, "string", "list")),
    ([{"images": ["a.png"]}, {"images": "b.png"}], ("/images", 2, "list", "string")),
    # a key with a slash is its own field, not a nested one (datasets 3.6.0 loads this; a hostile review)
    ([{"meta/source": "web", "meta": {"source": 1}}], None),
    ([{"a": ["x", {"b": 1}]}], ("/a/[]", 1, "string", "object"))])
def test_first_change(rows, change):
    assert first_change(list(enumerate(rows, 1))) == change


def test_a_deeply_nested_row_is_walked_without_recursion():
    deep: object = "x"
    for _ in range(5000):
        deep = [deep]
    assert first_change([(1, {"a": deep}), (2, {"a": "s"})]) == ("/a", 2, "list", "string")


@pytest.fixture(autouse=True)
def swift_on_path(monkeypatch):
    """The `swift` whose environment is read is this venv's (as scripts/test.sh puts it on PATH)."""
    import os

    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


def rows_file(path, n: int = 6, at: int = 4) -> None:
    rows = [{"query": f"q{i}", "response": "r"} for i in range(n)]
    rows[at]["query"] = 125
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def machine_datasets(monkeypatch, tmp_path, version: str) -> None:
    site = tmp_path / "site"
    (site / f"datasets-{version}.dist-info").mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])


def test_with_an_older_datasets_where_swift_runs_it_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows_file(tmp_path / "d.jsonl")
    machine_datasets(monkeypatch, tmp_path, "3.6.0")
    result = run_cli(["validate", "-p", "single", "--", "--dataset", "d.jsonl"])
    assert result.code == 2
    assert [line for line in result.stderr.splitlines() if "data.column" in line] == [
        f"error[data.column.type] args.dataset (-- extra flags): {tmp_path}/d.jsonl:5: /query is a number here and a "
        "string in the rows before; pyarrow gives a field one type, so the datasets library stops loading the file "
        "(JSON parse error: Column(/query) changed from string to number); datasets 3.6.0 is installed where "
        "`swift` runs, and only 4.7.0 and later load such a field"]
    # not "pip install datasets>=4.7.0": ms-swift 3.x and 4.0-4.1 pin datasets<4.0 (a hostile review)
    assert "  hint: write every row's query as a string (quote the number)" in result.stderr.splitlines()


def test_with_datasets_4_7_or_later_it_is_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows_file(tmp_path / "d.jsonl")
    machine_datasets(monkeypatch, tmp_path, "4.7.0")
    result = run_cli(["validate", "-p", "single", "--", "--dataset", "d.jsonl"])
    assert "data.column" not in result.stderr, result.stderr


def test_a_dry_run_for_another_machine_warns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [{"query": "q", "response": "r"}, {"query": "q", "response": "r"}]
    (tmp_path / "d.json").write_text(json.dumps(rows[:1] + [{"query": ["a"], "response": "r"}] + rows[1:]))
    result = run_cli(["train", "-p", "single", "--dry-run", "--", "--dataset", "d.json"])
    assert result.code == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "data.column" in line] == [
        f"warning[data.column.type_maybe] args.dataset (-- extra flags): {tmp_path}/d.json:1: /query is a list here "
        "and a string in the rows before; pyarrow gives a field one type, so the datasets library stops loading the "
        "file (ArrowTypeError: Conversion failed for column query), unless the datasets where `swift` runs is 4.7.0 "
        "or later"]
