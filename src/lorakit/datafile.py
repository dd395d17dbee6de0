"""A local dataset file, read in a bounded prefix: is it parseable, and which of the formats that
ms-swift preprocesses on its own are its rows in.

ms-swift 4.6.0 loads a local .jsonl/.json/.csv with `datasets` (swift/dataset/loader.py
`_load_dataset_path`), then AutoPreprocessor (swift/dataset/preprocessor/core.py) picks ONE
preprocessor from the file's column names, case-sensitively:

- a `messages`, `conversation` or `conversations` column -> MessagesPreprocessor (role/content,
  or sharegpt's from/value, or sharegpt's {"human": .., "assistant": ..} pairs);
- else `instruction` and `input` columns -> AlpacaPreprocessor;
- else ResponsePreprocessor: query/response/history/system, under any of the alternative
  column names it maps (prompt/completion, question/answer, text, ...), case-insensitively.

A row that preprocessor cannot use is DROPPED, with a traceback for the first 10 only (strict
defaults to False); if every row goes, ms-swift stops with `ZeroDivisionError: integer division
or modulo by zero` (dataset/utils.py sample_dataset). The template then rejects some rows that
survived (a system message after the first, content that is not text). This module mirrors those
rules, quoting them, on the first MAX_BYTES / MAX_ROWS of the file: stdlib only, no ms-swift.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Iterable, Mapping

from lorakit import datarows, localpath
from lorakit.datarows import ROLES_HINT, Drop, kind_of  # noqa: F401 (ROLES_HINT: the API)
from lorakit.dataread import MAX_BYTES, MAX_ROWS, Problem, Recognition, csv_rows, json_rows, read_prefix  # noqa: F401
from lorakit.findings import ERROR, WARNING

SUFFIXES = (".jsonl", ".json", ".csv")  # what recognize() reads; other data files are left alone

FORMATS = {
    "messages": "messages with role/content",
    "sharegpt": "sharegpt conversations with from/value",
    "alpaca": "alpaca instruction/input/output",
    "query-response": "query/response (history, system)",
}
EXPECTED = ("messages (role/content), conversations (from/value), instruction/input/output, "
            "or query/response")

# RowPreprocessor.__init__: media columns under either name.
MEDIA_COLUMNS = {"images": "images", "image": "images", "audios": "audios", "audio": "audios",
                 "videos": "videos", "video": "videos"}
# MessagesPreprocessor.__init__ (and AutoPreprocessor._get_preprocessor's test, exact names).
MESSAGE_COLUMNS = ("conversation", "conversations", "messages")
SYSTEM_COLUMNS = ("system", "system_prompt")
# ResponsePreprocessor.__init__: every alternative name it maps to query / response.
QUERY_COLUMNS = ("query", "prompt", "input", "instruction", "question", "problem")
RESPONSE_COLUMNS = ("response", "answer", "output", "targets", "target", "answer_key", "answers", "solution",
                    "text", "completion", "content")
MESSAGES_MAP = {**MEDIA_COLUMNS, **{k: "messages" for k in MESSAGE_COLUMNS}, **{k: "system" for k in SYSTEM_COLUMNS}}
RESPONSE_MAP = {**MEDIA_COLUMNS, **{k: "system" for k in SYSTEM_COLUMNS}, **{k: "query" for k in QUERY_COLUMNS},
                **{k: "response" for k in RESPONSE_COLUMNS}}
KNOWN_COLUMNS = (*MESSAGE_COLUMNS, *QUERY_COLUMNS, *RESPONSE_COLUMNS, *SYSTEM_COLUMNS, "history",
                 "rejected_response", *MEDIA_COLUMNS)


def missing_rejected_response(rec: Recognition) -> int | None:
    """For DPO-style training (swift rlhf): the line of the first checked row without a
    rejected_response (or rejected_messages), or None when every checked row has one."""
    return rec.first_without_rejected


# ----------------------------------------------------------------------------- ms-swift's rules


def safe_renames(keys: Iterable[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """RowPreprocessor.safe_rename_columns: case-insensitive; two columns bound for one name are
    both left as they are ("response" and "answer" both present: neither is renamed)."""
    lower = {k.lower(): k for k in keys}
    safe = {lower[k.lower()]: v for k, v in mapping.items() if k.lower() in lower}
    counts = Counter(safe.values())
    return {k: v for k, v in safe.items() if counts[v] == 1 and k != v}



# ------------------------------------------------------------------------------------ the whole


_SEEN: dict[tuple, Recognition] = {}  # one read per file per run of the checks: data, rlhf and rewards ask


def forget() -> None:
    """checks.run_checks starts each run afresh: a file rewritten within the clock's tick keeps
    its size and mtime, and must still be read again."""
    _SEEN.clear()


def _csv_label(text):
    """A CSV cell as datasets' csv builder (pandas) types a label column: true/false in any of
    pandas' spellings is a bool, 0/1 an int, 0.0/1.0 a float (the column of a KTO file is one of them)."""
    if not isinstance(text, str):
        return text
    word = text.strip()
    if word in ("True", "False", "true", "false", "TRUE", "FALSE"):
        return word.lower() == "true"
    if word in ("0", "1"):
        return int(word)
    return float(word) if word in ("0.0", "1.0") else text  # a float64 column (0.0/1.0), as JSON's


def recognize(path: str, *, columns: Mapping[str, str] | None = None, auto_mapping: bool = True,
              cwd: str | None = None, environ: Mapping[str, str] | None = None) -> Recognition:
    """Read the first MAX_BYTES of `path` (.jsonl, .json or .csv) and check its first MAX_ROWS
    rows the way ms-swift would preprocess them. `columns` is ms-swift's --columns mapping,
    `auto_mapping` False is --disable_auto_column_mapping; cwd is the launch dir. The same file,
    unchanged (size and mtime), with the same settings is read once; callers only read the result."""
    cwd = cwd or os.getcwd()
    environ = os.environ if environ is None else environ
    path = localpath.absolute(path, cwd) if not os.path.isabs(path) else path
    try:
        stat = os.stat(path)
        key = (path, stat.st_size, stat.st_mtime_ns, stat.st_ino, tuple(sorted((columns or {}).items())),
               auto_mapping, cwd, environ.get("ROOT_IMAGE_DIR"))
    except (OSError, ValueError):
        key = None  # unreadable: read_prefix says why, every time
    if key is not None and key in _SEEN:
        return _SEEN[key]
    rec = _recognize(path, columns, auto_mapping, cwd, environ)
    if key is not None:
        _SEEN[key] = rec
    return rec


def _recognize(path: str, columns: Mapping[str, str] | None, auto_mapping: bool, cwd: str,
               environ: Mapping[str, str]) -> Recognition:
    rec = Recognition(path=path, kind="csv" if path.lower().endswith(".csv") else
                      "json" if path.lower().endswith(".json") else "jsonl")
    text = read_prefix(path, rec)
    if text is None:
        return rec
    if not text.strip():
        rec.add(Problem(ERROR, "data.file.empty", None, "is empty: ms-swift would find no rows"))
        return rec
    rows = csv_rows(text, rec) if rec.kind == "csv" else json_rows(text, rec)
    objects: list[tuple[int, dict]] = []
    for line, value in rows:
        if isinstance(value, dict):
            objects.append((line, value))
        else:
            rec.add(Problem(ERROR, "data.row.not_object", line, f"a row is {kind_of(value)}, not a JSON object"))
    if rec.kind != "csv":
        from lorakit.datatypes import first_change

        seen: dict[str, None] = {}
        for _, row in objects:
            seen.update(dict.fromkeys(map(str, row)))
        rec.keys = tuple(seen)
        rec.type_change = first_change(objects)
    if not rows and not rec.problems:
        rec.add(Problem(ERROR, "data.file.empty", None, "has a header but no rows" if rec.kind == "csv"
                        else "holds no rows"))
        return rec
    _check_rows(rec, objects, columns or {}, auto_mapping, cwd, environ.get("ROOT_IMAGE_DIR"))
    return rec


def _check_rows(rec: Recognition, objects: list[tuple[int, dict]], columns: Mapping[str, str],
                auto_mapping: bool, cwd: str, root: str | None) -> None:
    keys = list(rec.keys)
    renamed = safe_renames(keys, columns) if columns else {}  # --columns: before anything else
    keys = [renamed.get(k, k) for k in keys]
    if any(k in keys for k in MESSAGE_COLUMNS):  # AutoPreprocessor._get_preprocessor, exact names
        kind, mapping = "messages", MESSAGES_MAP
    elif "instruction" in keys and "input" in keys:
        kind, mapping = "alpaca", RESPONSE_MAP
    else:
        kind, mapping = "response", RESPONSE_MAP
    auto = safe_renames(keys, mapping) if auto_mapping else {}
    final = {k: auto.get(k, k) for k in keys}
    rec.renamed = {old: final[renamed.get(old, old)] for old in rec.keys if final[renamed.get(old, old)] != old}
    origin = {new: old for old, new in rec.renamed.items()}
    if kind == "messages" and "messages" not in final.values():
        names = [k for k in keys if k in MESSAGE_COLUMNS]
        why = (f"columns {' and '.join(names)} both name the messages, so ms-swift renames neither"
               if len(names) > 1 else f"disable_auto_column_mapping is set, so ms-swift does not rename {names[0]!r} "
               "to 'messages'")
        rec.add(Problem(ERROR, "data.format.unknown", objects[0][0] if objects else None,
                        f"{why} and drops every row"))
        rec.rows_checked = len(objects)
        rec.counts["data.format.unknown"] = len(objects)
        return
    column = origin.get("messages", "messages")
    data_dir = os.path.dirname(rec.path)
    rejected_column = "rejected_response" in final.values()
    for line, raw in objects:
        rec.rows_checked += 1
        row = {final.get(renamed.get(k, k), k): v for k, v in raw.items()}
        try:
            if kind == "messages":
                messages, fmt = datarows.messages(row, column)
            else:
                messages, fmt = datarows.response(row, kind == "alpaca", origin)
                if not messages:  # _check_messages: assert len(messages) > 0
                    raise Drop("data.format.unknown", _unknown(raw), _unknown_hint(raw))
            if rejected_column:  # _check_rejected_response: the column exists, so every row needs one
                rejected = row.get("rejected_response")
                if rejected is None:
                    raise Drop("data.row.rejected", "rejected_response is null" if "rejected_response" in row else
                                "no rejected_response, though other rows have one (ms-swift reads it as null)")
                if isinstance(rejected, str) and messages and rejected == messages[-1][1]:
                    raise Drop("data.row.rejected", "rejected_response is the same as the response")
            if row.get("rejected_response") is not None or row.get("rejected_messages") is not None:
                rec.rejected_rows += 1
            elif rec.first_without_rejected is None:
                rec.first_without_rejected = line
            label = _csv_label(row.get("label")) if rec.kind == "csv" else row.get("label")
            if isinstance(label, bool) or (type(label) in (int, float) and label in (0, 1)):
                rec.labelled_rows += 1
                if not isinstance(label, bool) and rec.first_number_label is None:
                    rec.first_number_label = (line, label)
            elif rec.first_bad_label is None:
                rec.first_bad_label = (line, "no label" if label is None else f"label {label!r} is not true/false")
            shape = _documents(row.get("positive_messages"))
            if shape == "ok":
                rec.positive_rows += 1
            elif rec.first_without_positive is None:
                rec.first_without_positive, rec.positive_shape = line, shape
            note = datarows.template(messages) if messages else None
            if row.get("images"):
                rec.image_rows += 1
            datarows.media(row, cwd, root, data_dir, origin)
        except Drop as drop:
            rec.add(Problem(ERROR, drop.code, line, drop.message, drop.hint))
            continue
        rec.rows_usable += 1
        rec.format = rec.format or fmt
        if note:
            rec.add(Problem(WARNING, "data.row.no_response", line, note))


def _documents(value) -> str:
    """What an embedding/reranker row's positive_messages is: 'ok' (a list of message lists, as the
    docs write it), 'missing', or what it is instead: ms-swift drops a row whose documents are text,
    a list of text or a flat list of messages (measured: tests/test_real_failures.py)."""
    if value is None or value == []:
        return "missing"
    if not isinstance(value, list):
        return kind_of(value)
    for item in value:
        if isinstance(item, dict):
            return "a list of messages, not of message lists"
        if not isinstance(item, list):
            return f"a list of {'text' if isinstance(item, str) else kind_of(item)}"
        if not item or not all(isinstance(m, dict) for m in item):
            return "a list of lists that are not messages"
    return "ok"


def _unknown(raw: dict) -> str:
    return (f"row matches none of the formats ms-swift reads (keys: {', '.join(map(str, raw)) or 'none'}); "
            f"expected {EXPECTED}")


def _unknown_hint(raw: dict) -> str:
    from lorakit.values import did_you_mean

    for key in raw:
        close = did_you_mean(key, KNOWN_COLUMNS) or did_you_mean(str(key).lower(), KNOWN_COLUMNS)
        if close and close[0] != key:
            return (f"did you mean {close[0]!r} for {key!r}? ms-swift matches messages/conversations/instruction+input "
                    "exactly; other names it maps: prompt/completion, question/answer, text, output, system_prompt")
    return ("ms-swift also maps prompt/completion, question/answer, text, output, system_prompt; "
            "or rename columns with --columns '{\"old\": \"query\"}'")
