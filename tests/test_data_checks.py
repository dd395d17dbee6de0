"""dataset / val_dataset: missing local paths, `#N`, and the rows of local files, checked the way
ms-swift 4.6.0's AutoPreprocessor reads them (swift/dataset/preprocessor/core.py). What each
rule claims ms-swift does was measured on the installed ms-swift (tests/test_real_data.py runs
the accepted formats and one rejected shape for real)."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from lorakit import datafile
from lorakit.checks import data
from lorakit.checks.facts import Facts
from test_checks import make_job

E, W = "error", "warning"


def jsonl(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def U(c):
    return {"role": "user", "content": c}


def A(c):
    return {"role": "assistant", "content": c}


def S(c):
    return {"role": "system", "content": c}


def recognize(tmp_path, text, name="d.jsonl", **kw):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8") if isinstance(text, str) else path.write_bytes(text)
    return datafile.recognize(str(path), cwd=str(tmp_path), **kw)


def problems(rec):
    return [(p.level, p.code, p.line, p.message) for p in rec.problems]


# --------------------------------------------------------------- each format ms-swift reads

ACCEPTED = [
    ("messages", jsonl({"messages": [U("q"), A("a")]}, {"messages": [S("s"), U("q"), A("a")]})),
    # pretraining rows (assistant only) and assistant first: the template puts an empty user first
    ("messages", jsonl({"messages": [A("a")]}, {"messages": [A("a"), U("q"), A("a2")]})),
    # MessagesPreprocessor maps human -> user and gpt/bot -> assistant, from -> role, value -> content
    ("messages", jsonl({"messages": [{"role": "human", "content": "q"}, {"role": "bot", "content": "a"}]})),
    ("messages", jsonl({"messages": json.dumps([U("q"), A("a")])})),  # messages as JSON text
    ("messages", jsonl({"messages": [U("q"), {"role": "function_call", "content": "{}"},
                                     {"role": "observation", "content": "r"}, A("a")]})),
    ("sharegpt", jsonl({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
                       {"system": "s", "conversations": [{"from": "human", "value": "q"},
                                                         {"from": "gpt", "value": "a"}]})),
    ("sharegpt", jsonl({"conversation": [{"human": "q", "assistant": "a"}]})),  # sharegpt's pair items
    ("alpaca", jsonl({"instruction": "i", "input": "x", "output": "o"},
                     {"instruction": "i", "input": "", "output": "o"})),
    ("query-response", jsonl({"system": "s", "query": "q", "response": "r", "history": [["q0", "a0"]]},
                             {"query": "q", "response": "r", "history": "[['q0', 'a0']]"})),
    ("query-response", jsonl({"prompt": "q", "completion": "r"})),
    ("query-response", jsonl({"Query": "q", "Response": "r"})),  # ms-swift renames case-insensitively
    ("query-response", jsonl({"instruction": "i", "output": "o"})),  # no input column: not alpaca
    ("query-response", jsonl({"text": "pretraining text"})),
]


@pytest.mark.parametrize("fmt, text", ACCEPTED)
def test_formats_ms_swift_reads(tmp_path, fmt, text):
    rec = recognize(tmp_path, text)
    assert (rec.format, problems(rec), rec.rows_usable, rec.total_rows) == (fmt, [], rec.rows_checked, rec.rows_checked)


def test_the_format_is_named_with_ms_swifts_renames(tmp_path):
    rec = recognize(tmp_path, jsonl({"prompt": "q", "completion": "r", "system_prompt": "s"}))
    assert rec.renamed == {"prompt": "query", "completion": "response", "system_prompt": "system"}
    assert data._described(rec) == ("query/response (history, system); 1 row, all checked; ms-swift renames "
                                    "prompt -> query, completion -> response, system_prompt -> system")


def test_csv_header_names_the_columns(tmp_path):
    rec = recognize(tmp_path, "instruction,input,output\ni,,o\n\n\"i, with comma\",x,\"two\nlines\"\n", "d.csv")
    assert (rec.format, rec.keys, rec.total_rows, problems(rec)) == (
        "alpaca", ("instruction", "input", "output"), 2, [])


def test_csv_row_with_too_many_fields(tmp_path):
    rec = recognize(tmp_path, "query,response\nq,r\nq,r,extra\n", "d.csv")
    assert problems(rec) == [(E, "data.csv.fields", 3, "3 fields, but the header names 2: pandas stops on it")]


def test_json_array_and_a_list_of_strings(tmp_path):
    rec = recognize(tmp_path, json.dumps([{"query": "q", "response": "r"}] * 3, indent=2), "d.json")
    assert (rec.format, rec.total_rows, problems(rec)) == ("query-response", 3, [])
    rec = recognize(tmp_path, json.dumps(["a text", "another"]), "s.json")  # datasets: a 'text' column
    assert (rec.format, rec.total_rows) == ("query-response", 2)


def test_an_object_spread_over_lines_is_one_row(tmp_path):
    rec = recognize(tmp_path, '{"query": "q",\n "response": "r"}\n{"query": "q2", "response": "r2"}\n')
    assert (rec.total_rows, problems(rec)) == (2, [])


# ------------------------------------------------------------------------ rows ms-swift rejects

REJECTED = [
    (jsonl({"query": "q", "response": "r"}, '{"query": "q", "response": }', {"query": "q"}),
     [(E, "data.json.invalid", 2, "invalid JSON: Expecting value (column 28)")]),
    (jsonl({"query": "q", "response": "r"}, "[1, 2]"),
     [(E, "data.row.not_object", 2, "a row is a list, not a JSON object")]),
    (jsonl({"foo": "q", "bar": "r"}),
     [(E, "data.format.unknown", 1, "row matches none of the formats ms-swift reads (keys: foo, bar); expected "
                                    "messages (role/content), conversations (from/value), instruction/input/output, "
                                    "or query/response")]),
    (jsonl({"messages": [U("q"), A("a")]}, {"messages": [U("q"), {"role": "model", "content": "a"}]}),
     [(E, "data.messages.invalid", 2, "message 2 has role 'model', which ms-swift does not know")]),
    (jsonl({"messages": [U("q"), S("s"), A("a")]}),
     [(E, "data.messages.invalid", 1, "message 2 is a system message after the start: ms-swift's template takes "
                                      "system only as the first message")]),
    (jsonl({"messages": [S("s")]}),
     [(E, "data.messages.invalid", 1, "only a system message: ms-swift's template has nothing to encode")]),
    (jsonl({"messages": [{"role": "tool", "content": "r"}, A("a")]}),
     [(E, "data.messages.invalid", 1, "message 1 (tool) is a tool response with no user message before it "
                                      "(ms-swift: 'A standalone tool message must follow a user message')")]),
    (jsonl({"messages": [U(None), A("a")]}), [(E, "data.messages.invalid", 1, "message 1 (user) has null content")]),
    (jsonl({"messages": [{"role": "user"}, A("a")]}),
     [(E, "data.messages.invalid", 1, "message 1 (user) has no content")]),
    (jsonl({"messages": [{"content": "q"}, A("a")]}),
     [(E, "data.messages.invalid", 1, "message 1 has no role (keys: content)")]),
    (jsonl({"messages": [U("q"), A(5)]}),
     [(E, "data.messages.invalid", 1, "message 2 (assistant) content is a number: ms-swift's template needs text")]),
    (jsonl({"messages": [U("q"), A("a")]}, {"query": "q"}),  # the column is null in row 2: dropped silently
     [(E, "data.messages.invalid", 2, "messages is null: ms-swift drops the row without a warning")]),
    (jsonl({"messages": []}), [(E, "data.messages.invalid", 1, "messages is an empty list: ms-swift drops the row "
                                                              "without a warning")]),
    (jsonl({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt"}]}),
     [(E, "data.messages.invalid", 1, "message 2 (assistant) has no content")]),
    (jsonl({"conversations": [{"human": "q"}]}),
     [(E, "data.messages.invalid", 1, "message 1 has keys user: in sharegpt's pair format each item needs user "
                                      "(human) and assistant (gpt, bot)")]),
    (jsonl({"conversation": [U("q"), A("a")], "conversations": [U("q"), A("a")]}),
     [(E, "data.format.unknown", 1, "columns conversation and conversations both name the messages, so ms-swift "
                                    "renames neither and drops every row")]),
    (jsonl({"instruction": None, "input": None, "output": "o"}),
     [(E, "data.row.invalid", 1, "instruction (null) and input (null) make no text query (ms-swift: assert "
                                 "isinstance(query, str))")]),
    (jsonl({"query": "q", "response": "r", "history": [["q0"]]}),
     [(E, "data.row.invalid", 1, "history item 1 is a list of 1, not a [query, response] pair")]),
    (jsonl({"query": "q", "response": []}), [(E, "data.row.invalid", 1, "response is an empty list")]),
    (jsonl({"query": 5, "response": "r"}),
     [(E, "data.messages.invalid", 1, "query is a number: ms-swift's template needs text")]),
    (jsonl({"query": "q", "response": "r", "rejected_response": "r"}),
     [(E, "data.row.rejected", 1, "rejected_response is the same as the response")]),
    (jsonl({"query": "q", "response": "r", "rejected_response": "x"}, {"query": "q", "response": "r"}),
     [(E, "data.row.rejected", 2, "no rejected_response, though other rows have one (ms-swift reads it as null)")]),
    (jsonl({"query": "q"}), [(W, "data.row.no_response", 1, "no assistant message: ms-swift keeps the row but it "
                                                            "has nothing to train on (every label is -100)")]),
    (jsonl({"instruction": "i", "input": "x"}),
     [(W, "data.row.no_response", 1, "no assistant message: ms-swift keeps the row but it has nothing to train on "
                                     "(every label is -100)")]),
    ("", [(E, "data.file.empty", None, "is empty: ms-swift would find no rows")]),
    ("[]", [(E, "data.file.empty", None, "holds no rows")]),
    (b'{"query": "q", "response": "r"}\n{"query": "\xff"}\n',
     [(E, "data.file.unreadable", 2, "not UTF-8 text (byte 0xff): datasets reads only UTF-8")]),
]


@pytest.mark.parametrize("text, expected", REJECTED)
def test_rows_ms_swift_rejects(tmp_path, text, expected):
    assert problems(recognize(tmp_path, text)) == expected


def test_header_only_csv(tmp_path):
    assert problems(recognize(tmp_path, "query,response\n", "d.csv")) == [
        (E, "data.file.empty", None, "has a header but no rows")]


def test_a_close_column_name_gets_a_did_you_mean(tmp_path):
    rec = recognize(tmp_path, jsonl({"Messages": [U("q"), A("a")]}))  # ms-swift tests 'messages' exactly
    assert rec.problems[0].code == "data.format.unknown"
    assert rec.problems[0].hint.startswith("did you mean 'messages' for 'Messages'? ")


def test_bad_rows_are_counted_and_the_first_is_named(tmp_path):
    rows = [{"messages": [U("q"), A("a")]}] * 2 + [{"messages": [U("q"), {"role": "model", "content": "a"}]}] * 3
    rec = recognize(tmp_path, jsonl(*rows))
    assert (rec.problems[0].line, rec.counts["data.messages.invalid"], rec.rows_usable, rec.rows_checked) == (
        3, 3, 2, 5)


def test_media_paths_are_opened_from_the_launch_dir(tmp_path):
    (tmp_path / "sub" / "img").mkdir(parents=True)
    (tmp_path / "sub" / "img" / "a.png").write_bytes(b"png")
    rows = [{"messages": [U("<image>q"), A("a")], "images": ["img/a.png"]}]
    path = tmp_path / "sub" / "d.jsonl"
    path.write_text(jsonl(*rows))
    rec = datafile.recognize(str(path), cwd=str(tmp_path))
    assert problems(rec) == [(E, "data.media.missing", 1, f"images[0] 'img/a.png' does not exist "
                                                        f"({tmp_path / 'img/a.png'})")]
    assert rec.problems[0].hint == (f"it is there from the dataset's folder ({tmp_path / 'sub/img/a.png'}); ms-swift "
                                    f"opens media paths from the launch dir ({tmp_path}) or ROOT_IMAGE_DIR: set "
                                    f"ROOT_IMAGE_DIR={tmp_path / 'sub'} or write absolute paths")
    rec = datafile.recognize(str(path), cwd=str(tmp_path), environ={"ROOT_IMAGE_DIR": str(tmp_path / "sub")})
    assert problems(rec) == []
    urls = [{"query": "q", "response": "r", "image": "https://x/y.png"}, {"query": "q", "response": "r",
                                                                         "videos": "iVBORw0KGgo="}]
    assert problems(recognize(tmp_path, jsonl(*urls))) == []  # a URL and base64 are not paths


def test_columns_and_disabled_auto_mapping(tmp_path):
    text = jsonl({"q": "question", "a": "answer"})
    assert recognize(tmp_path, text, columns={"q": "query", "a": "response"}).format == "query-response"
    conv = jsonl({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]})
    assert problems(recognize(tmp_path, conv, auto_mapping=False)) == [
        (E, "data.format.unknown", 1, "disable_auto_column_mapping is set, so ms-swift does not rename "
                                      "'conversations' to 'messages' and drops every row")]


def test_rejected_response_coverage_for_rlhf(tmp_path):
    msgs = recognize(tmp_path, jsonl({"messages": [U("q"), A("a")], "rejected_messages": [U("q"), A("b")]}))
    assert (msgs.rejected_rows, datafile.missing_rejected_response(msgs)) == (1, None)
    dpo = recognize(tmp_path, jsonl(*[{"query": "q", "response": "r", "rejected_response": "x"}] * 2))
    assert (dpo.rejected_rows, datafile.missing_rejected_response(dpo)) == (2, None)
    sft = recognize(tmp_path, jsonl({"query": "q", "response": "r"}, {"query": "q", "response": "r"}))
    assert (sft.rejected_rows, datafile.missing_rejected_response(sft)) == (0, 1)


# ----------------------------------------------------------------------------------- bounded


def test_only_a_bounded_prefix_is_read(tmp_path):
    row = json.dumps({"messages": [U("What is the capital of France?"), A("Paris.")]})
    path = tmp_path / "big.jsonl"
    path.write_text((row + "\n") * 100_000 + "not json\n")  # the bad line is far past the budget
    rec = datafile.recognize(str(path), cwd=str(tmp_path))  # its cost is scripts/bench.py's (no timed test)
    assert (rec.rows_checked, rec.total_rows, problems(rec), rec.format) == (datafile.MAX_ROWS, None, [], "messages")


def test_a_prefix_that_ends_inside_a_row_is_not_an_error(tmp_path):
    big = json.dumps({"query": "q" * 700_000, "response": "r"})
    rec = recognize(tmp_path, jsonl({"query": "q", "response": "r"}, big, big))  # the cut falls in row 3
    assert (problems(rec), rec.rows_checked, rec.total_rows) == ([], 2, None)
    minified = json.dumps([{"query": "q" * 1000, "response": "r"}] * 2000)  # one 2 MiB line
    rec = recognize(tmp_path, minified, "m.json")
    assert problems(rec) == [] and rec.rows_checked > 0 and rec.total_rows is None


def test_whole_small_files_are_counted_past_the_rows_checked(tmp_path):
    rec = recognize(tmp_path, jsonl(*[{"query": "q", "response": "r"}] * 500))
    assert (rec.rows_checked, rec.total_rows) == (datafile.MAX_ROWS, 500)
    assert data._described(rec) == "query/response (history, system); the first 200 of 500 rows checked"


# ------------------------------------------------------------------------------ the check, CLI


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text(jsonl({"messages": [U("hi"), A("hello")]},
                                                         {"messages": [U("bye"), A("goodbye")]}))
    return tmp_path


def lines_of(result, prefix=("error[data", "warning[data", "info[data")):
    """The data.* findings of a run, each with its hint line."""
    out, keep = [], False
    for line in result.stderr.splitlines():
        if line.startswith("  hint: "):
            if keep:
                out.append(line)
            continue
        keep = line.startswith(prefix)
        if keep:
            out.append(line)
    return out


def test_the_measured_typo_is_an_error_with_did_you_mean(here):
    result = run_cli(["validate", "-p", "single", "--dataset", "data/trian.jsonl"])
    assert result.code == 2
    lines = result.stderr.splitlines()
    at = lines.index(f"error[data.path.missing] args.dataset (--dataset): dataset 'data/trian.jsonl': no such file "
                     f"or directory ({here / 'data/trian.jsonl'})")
    assert lines[at + 1] == (f"  hint: did you mean 'data/train.jsonl'? paths are relative to the directory you "
                             f"launch from ({here}); ms-swift would take it for a ModelScope dataset id and fail "
                             "downloading it")


def test_missing_paths_name_the_hub_or_the_absolute_failure(here):
    result = run_cli(["validate", "-p", "single", "--dataset", "HF::./data/train.json#5",
                      "--set", f"val_dataset={here / 'data/more/val.jsonl'}"])
    assert result.code == 2
    assert lines_of(result, "error[data") == [
        f"error[data.path.missing] args.dataset (--dataset): dataset 'HF::./data/train.json#5': no such file or "
        f"directory ({here / 'data/train.json'})",
        f"  hint: did you mean './data/train.jsonl'? paths are relative to the directory you launch from ({here}); "
        "ms-swift would take it for a Hugging Face dataset id and fail downloading it",
        f"error[data.path.missing] args.val_dataset (--set): val_dataset '{here / 'data/more/val.jsonl'}': no such "
        f"file or directory ({here / 'data/more/val.jsonl'})",
        f"  hint: paths are relative to the directory you launch from ({here}); ms-swift would stop only when it "
        "loads the data ('The local path does not exist')",
    ]


@pytest.mark.parametrize("preset", ["single", "ddp", "ddp_device_map", "zero2", "zero3", "merge"])
def test_built_in_presets_and_hub_ids_pass(here, preset):
    result = run_cli(["validate", "-p", preset])
    assert result.code == 0, result.stderr
    assert not [line for line in result.stderr.splitlines() if "[data." in line]


def test_hub_ids_are_not_touched(here):
    result = run_cli(["validate", "-p", "single", "--dataset", "AI-ModelScope/alpaca-gpt4-data-en#500",
                      "--dataset", "swift/self-cognition:default#100", "--dataset", "data"])  # data/ is a dataset dir
    assert result.code == 0, result.stderr
    assert not [line for line in result.stderr.splitlines() if "[data." in line]


@pytest.mark.parametrize("item, said", [
    ("AI-ModelScope/alpaca-gpt4-data-en#abc", "the sample count after '#' is 'abc', not a whole number (ms-swift "
                                              "reads it with int() and stops)"),
    ("AI-ModelScope/alpaca-gpt4-data-en#0", "#0 asks for no rows (ms-swift: assert dataset_sample > 0)"),
])
def test_sample_count_syntax(here, item, said):
    result = run_cli(["validate", "-p", "single", "--dataset", item])
    assert result.code == 2
    assert lines_of(result, "error[data") == [
        f"error[data.sample.invalid] args.dataset (--dataset): dataset {item!r}: {said}",
        "  hint: write NAME#N with N a whole number above 0, or leave #N off to use every row"]


def test_more_rows_asked_than_the_file_has(here):
    train = here / "data/train.jsonl"
    result = run_cli(["validate", "-p", "single", "--dataset", "data/train.jsonl#5"])
    assert result.code == 0, result.stderr
    assert lines_of(result, ("warning[data", "info[data")) == [
        f"warning[data.sample.exceeds] args.dataset (--dataset): dataset '{train}#5': #5 is more than the file's "
        "2 rows: ms-swift repeats rows to make 5",
        "  hint: ask for at most #2, or drop #N to use each row once",
        f"info[data.format] args.dataset (--dataset): {train}: messages with role/content; 2 rows, all checked"]
    assert run_cli(["validate", "-p", "single", "--dataset", "data/train.jsonl#5", "--strict"]).code == 2
    result = run_cli(["validate", "-p", "single", "--set", "val_dataset=data/train.jsonl#3"])
    assert result.code == 2
    assert lines_of(result, "error[data") == [
        f"error[data.sample.exceeds] args.val_dataset (--set): val_dataset '{train}#3': #3 is more than the file's "
        "2 rows: ms-swift stops (assert val_sample <= len(val_dataset))",
        "  hint: ask for at most #2"]


def test_a_bad_row_is_named_by_file_and_line(here):
    bad = here / "data" / "bad.jsonl"
    bad.write_text(jsonl({"messages": [U("q"), {"role": "model", "content": "a"}]},
                         {"messages": [U("q"), A("a")]},
                         {"messages": [U("q"), {"role": "model", "content": "a"}]}))
    result = run_cli(["validate", "-p", "single", "--dataset", "data/bad.jsonl", "--set", "split_dataset_ratio=0"])
    assert result.code == 2
    assert lines_of(result, ("error[data", "info[data")) == [
        f"error[data.messages.invalid] args.dataset (--dataset): {bad}:1: message 2 has role 'model', which ms-swift "
        "does not know (and 1 more of the 3 rows checked)",
        f"  hint: {datafile.ROLES_HINT}; {data.DROPPED}",
        f"info[data.format] args.dataset (--dataset): {bad}: messages with role/content; 3 rows, all checked"]


@pytest.mark.parametrize("ratio, ending", [("0", data.NONE_LEFT), ("0.01", data.NONE_LEFT_SPLIT)])
def test_a_file_where_no_row_survives_says_how_ms_swift_ends(here, ratio, ending):
    bad = here / "data" / "bad.jsonl"
    bad.write_text(jsonl({"messages": [U("q"), {"role": "model", "content": "a"}]}))
    result = run_cli(["validate", "-p", "single", "--dataset", "data/bad.jsonl",
                      "--set", f"split_dataset_ratio={ratio}"])
    assert result.code == 2
    assert lines_of(result, "error[data") == [
        f"error[data.messages.invalid] args.dataset (--dataset): {bad}:1: message 2 has role 'model', which ms-swift "
        "does not know",
        f"  hint: {datafile.ROLES_HINT}; {data.DROPPED}; {ending}"]


def test_split_dataset_ratio_leaves_a_tiny_dataset_nothing_to_train_on(here):
    """Found by tests/test_real_data.py: a 1-row file with split_dataset_ratio 0.01 stops ms-swift at
    dataset_meta.py post_process `assert train_sample > 0`; so does a hub id with #1."""
    (here / "data" / "one.jsonl").write_text(jsonl({"query": "q", "response": "r"}))
    result = run_cli(["validate", "-p", "single", "--dataset", "data/one.jsonl", "--dataset", "data/train.jsonl",
                      "--dataset", "AI-ModelScope/alpaca-gpt4-data-en#1", "--set", "split_dataset_ratio=0.01"])
    assert result.code == 2
    assert lines_of(result, "error[data") == [
        f"error[data.split.empty] args.dataset (--dataset): dataset '{here / 'data/one.jsonl'}': split_dataset_ratio "
        "0.01 holds 1 row of the file's 1 row out for evaluation, leaving none to train on (ms-swift: assert "
        "train_sample > 0)",
        "  hint: give it more rows, pass a val_dataset, or set split_dataset_ratio 0",
        "error[data.split.empty] args.dataset (--dataset): dataset 'AI-ModelScope/alpaca-gpt4-data-en#1': "
        "split_dataset_ratio 0.01 holds 1 row of #1 out for evaluation, leaving none to train on (ms-swift: assert "
        "train_sample > 0)",
        "  hint: give it more rows, pass a val_dataset, or set split_dataset_ratio 0"]
    with_val = run_cli(["validate", "-p", "single", "--dataset", "data/one.jsonl", "--set", "split_dataset_ratio=0.01",
                        "--set", "val_dataset=data/train.jsonl"])  # ms-swift then sets the ratio to 0
    assert with_val.code == 0, with_val.stderr


def test_val_dataset_files_are_checked_too(here):
    (here / "data" / "val.jsonl").write_text('{"query": "q", "response": "r"}\nnot json\n')
    result = run_cli(["validate", "-p", "single", "--set", "val_dataset=[data/val.jsonl]"])
    assert result.code == 2
    assert lines_of(result, "error[data") == [
        f"error[data.json.invalid] args.val_dataset (--set): {here / 'data/val.jsonl'}:2: invalid JSON: Expecting "
        "value (column 1)",
        f"  hint: {data.HINTS['data.json.invalid']}"]


def test_the_check_reads_args_as_the_job_has_them(here):
    job = make_job({"dataset": "data/train.jsonl", "val_dataset": ["data/nope.jsonl"], "columns": '{"x": "query"}'})
    found = [(f.level, f.code, f.key, f.file) for f in data.check_datasets(job, Facts(environ={}))]
    assert found == [("info", "data.format", "args.dataset", "t.yaml"),
                     ("error", "data.path.missing", "args.val_dataset", "t.yaml")]
    assert data.dataset_columns(job) == {"x": "query"}


def test_the_check_knows_which_files_the_reader_reads():
    assert data.SUFFIXES == datafile.SUFFIXES


def test_names_no_filesystem_takes_are_not_local_paths(tmp_path, monkeypatch):
    """localpath.looks_local raises ENAMETOOLONG for a first segment over 255 bytes; the check
    does not (the job is built by hand: fixups.absolute_paths trips on the same value)."""
    from lorakit.job import Job, Launch

    monkeypatch.chdir(tmp_path)
    job = Job(command="sft", launch=Launch(), args={"dataset": ["x" * 300 + "/a", "a\0b.jsonl"]}, preset="t")
    assert [f.code for f in data.check_datasets(job, Facts(environ={}))] == ["data.path.missing"]


def test_rows_that_are_not_objects_are_counted_as_rows(tmp_path):
    """A file of two non-object rows said '(and 1 more of the 0 rows checked)'."""
    data = tmp_path / "rows.jsonl"
    data.write_text('5\n6\n{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n')
    result = run_cli(["validate", "-p", "single", "--dataset", str(data)])
    [line] = [l for l in result.stderr.splitlines() if "data.row.not_object" in l]
    assert line.endswith(f"{data}:1: a row is a number, not a JSON object (and 1 more row)"), line


def test_odd_dataset_items_are_findings_not_tracebacks(tmp_path, monkeypatch):
    """An empty name, a #N past any dataset (10**400 overflowed a float in the split rule), a path
    with a newline (one finding, one line), and 50,000 missing paths (a did-you-mean for the
    first 20 only: difflib on every one took 30 s)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text(jsonl(*[{"messages": [U("q"), A("a")]}] * 4))
    findings = data.check_datasets(make_job({"dataset": ["", f"train.jsonl#{10 ** 400}", "a\nb.jsonl"],
                                             "split_dataset_ratio": 0.01}), Facts())
    where = repr(str(tmp_path / "a\nb.jsonl"))
    assert [(f.code, f.message) for f in findings if f.level == "error"] == [
        ("data.name.empty", "dataset '' names no dataset (an empty name)"),
        ("data.sample.invalid", "dataset: #1000000000...0000000000 (401 digits) is more rows than any dataset "
                                "holds: ms-swift would repeat rows to make that many"),
        ("data.path.missing", f"dataset 'a\\nb.jsonl': no such file or directory ({where})"),
    ]
    many = [f"missing-{i}.jsonl" for i in range(50000)]
    found = data.check_datasets(make_job({"dataset": many}), Facts())
    assert len(found) == 50000 and all(f.code == "data.path.missing" for f in found)
    assert "did you mean 'train.jsonl'" in found[0].hint
    assert not any("did you mean" in f.hint for f in found[20:])


def test_several_datasets_in_one_quoted_string_are_named_so(tmp_path, monkeypatch):
    """ms-swift #5123: './train.json A/b C/d' in one pair of quotes is one dataset name with spaces."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.json").write_text('[{"query": "a", "response": "b"}]')
    result = run_cli(["validate", "-p", "single", "--", "--dataset", "./train.json AI-ModelScope/LongAlpaca-12k"])
    assert result.code == 2
    assert ("  hint: these look like 2 datasets in one quoted string; give each its own quotes: --dataset "
            "'./train.json' 'AI-ModelScope/LongAlpaca-12k'; ms-swift would take it for a ModelScope dataset id and "
            "fail downloading it") in result.stderr.splitlines(), result.stderr
    # a name with a space that is no list of datasets keeps the usual hint
    result = run_cli(["validate", "-p", "single", "--", "--dataset", "./my dta.jsonl"])
    assert result.code == 2 and "datasets in one quoted string" not in result.stderr, result.stderr
