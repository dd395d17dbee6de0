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

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from lorakit import localpath
from lorakit.findings import ERROR, WARNING

MAX_BYTES = 1 << 20  # read at most this much of a file
MAX_ROWS = 200  # check at most this many rows
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

# MessagesPreprocessor: role/from, content/value, and the role names it maps.
USER_ROLES = ("user", "human")
ASSISTANT_ROLES = ("assistant", "gpt", "bot")
TOOL_CALL_ROLES = ("function_call",)
TOOL_RESPONSE_ROLES = ("function_response", "observation", "observations")
TOOL_ROLES = ("tool_call", "tool_response", "tool")
STD_ROLES = ("system", "user", "assistant", *TOOL_ROLES)  # RowPreprocessor._check_messages
ROLES_HINT = ("roles ms-swift reads: system, user (human), assistant (gpt, bot), tool_call (function_call), "
              "tool_response (tool, function_response, observation)")

_WS = re.compile(r"[ \t\n\r]*")
_MEDIA_SUFFIX = re.compile(r"\.[A-Za-z0-9]{2,5}$")  # base64 text never holds a '.'


@dataclass(frozen=True)
class Problem:
    level: str  # ERROR or WARNING
    code: str
    line: int | None  # 1-based line in the file where the row starts; None for the whole file
    message: str
    hint: str = ""


@dataclass
class Recognition:
    """What the bounded read found. `total_rows` is None unless the whole file was read."""

    path: str
    kind: str = ""  # jsonl | json | csv
    size: int = 0
    format: str | None = None  # a FORMATS key: the first usable row's
    keys: tuple[str, ...] = ()  # the columns seen, in order
    renamed: dict[str, str] = field(default_factory=dict)  # column -> the name ms-swift gives it
    rows_checked: int = 0
    rows_usable: int = 0  # checked rows ms-swift would keep
    total_rows: int | None = None
    problems: list[Problem] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)  # problem code -> rows checked that have it
    rejected_rows: int = 0  # checked rows that carry a rejected_response / rejected_messages
    first_without_rejected: int | None = None  # the line of the first checked row that does not
    # KTO (swift rlhf --rlhf_type kto) reads a boolean `label` per row (pipelines/train/kto.py
    # sums train_dataset['label']): rows with one, and (line, what) of the first without one
    labelled_rows: int = 0
    first_bad_label: tuple[int, str] | None = None

    @property
    def complete(self) -> bool:
        return self.total_rows is not None

    def add(self, problem: Problem) -> None:
        if not self.counts[problem.code]:
            self.problems.append(problem)
        self.counts[problem.code] += 1


def missing_rejected_response(rec: Recognition) -> int | None:
    """For DPO-style training (swift rlhf): the line of the first checked row without a
    rejected_response (or rejected_messages), or None when every checked row has one."""
    return rec.first_without_rejected


# ---------------------------------------------------------------------------------------- reading


def _read(path: str, rec: Recognition) -> str | None:
    """The first MAX_BYTES as text, cut after the last whole line unless the file ended."""
    try:
        rec.size = os.path.getsize(path)
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        rec.add(Problem(ERROR, "data.file.unreadable", None, f"cannot be read: {exc.strerror or exc}"))
        return None
    complete = len(data) <= MAX_BYTES
    if not complete:
        cut = data.rfind(b"\n", 0, MAX_BYTES)
        if cut >= 0:
            data = data[:cut + 1]
        else:  # one line longer than the budget (a minified array): keep it, minus a split character
            data = data[:MAX_BYTES]
            for trim in range(4):
                try:
                    data[:len(data) - trim].decode("utf-8")
                except UnicodeDecodeError:
                    continue
                data = data[:len(data) - trim]
                break
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        rec.add(Problem(ERROR, "data.file.unreadable", line,
                        f"not UTF-8 text (byte 0x{data[exc.start]:02x}): datasets reads only UTF-8"))
        return None
    rec.total_rows = 0 if complete else None  # set properly by the reader
    return text[1:] if text.startswith("\ufeff") else text


def _json_rows(text: str, rec: Recognition) -> list[tuple[int, Any]]:
    """JSON Lines (one value after another; datasets also takes objects spread over lines) or
    one JSON array. Stops at the first JSON error: datasets fails the whole file on it."""
    complete = rec.complete
    decoder = json.JSONDecoder()
    rows: list[tuple[int, Any]] = []
    pos, line, mark = _WS.match(text, 0).end(), 1, 0
    end_of_text = len(text.rstrip())
    array = text.startswith("[", pos)
    if array:
        if complete:  # datasets reads an array whole (json/json.py): so do we, to count it
            try:
                rec.total_rows = len(json.loads(text))
            except json.JSONDecodeError as exc:
                rec.add(Problem(ERROR, "data.json.invalid", exc.lineno,
                                f"invalid JSON: {exc.msg} (column {exc.colno})"))
            except (RecursionError, ValueError):  # nested too deep, or an integer past the digit limit
                rec.add(Problem(ERROR, "data.json.invalid", line, "invalid JSON: nested too deeply or a number too long to read"))
            if rec.counts["data.json.invalid"]:
                rec.total_rows = None
        pos = _WS.match(text, pos + 1).end()
    known = bool(rec.counts["data.json.invalid"])  # then the loop below only collects the rows before it
    one_per_line = True
    while pos < len(text):
        if array and text.startswith("]", pos):
            break
        line += text.count("\n", mark, pos)
        mark = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            if not complete and (exc.pos >= end_of_text or "\n" not in text[pos:end_of_text]):
                break  # the prefix ends inside this value
            if not known:
                at = line + text.count("\n", pos, exc.pos)
                rec.add(Problem(ERROR, "data.json.invalid", at, f"invalid JSON: {exc.msg} (column {exc.colno})"))
            rec.total_rows = None
            return rows
        except (RecursionError, ValueError):  # nested too deep, or an integer past the digit limit
            if not known:
                rec.add(Problem(ERROR, "data.json.invalid", line, "invalid JSON: nested too deeply or a number too long to read"))
            rec.total_rows = None
            return rows
        if one_per_line and "\n" in text[pos:end]:
            one_per_line = False
        rows.append((line, value))
        pos = _WS.match(text, end).end()
        if array:
            if text.startswith(",", pos):
                pos = _WS.match(text, pos + 1).end()
            elif not text.startswith("]", pos) and (complete or pos < len(text)):
                if not known:
                    at = line + text.count("\n", mark, pos)
                    rec.add(Problem(ERROR, "data.json.invalid", at, "invalid JSON: expected ',' or ']' after an item"))
                rec.total_rows = None
                return rows
        if len(rows) >= MAX_ROWS:
            break
    if complete and not array:
        if len(rows) < MAX_ROWS or pos >= len(text):
            rec.total_rows = len(rows)
        elif one_per_line:  # the rest is counted, not parsed: one row a line, as so far
            rec.total_rows = len(rows) + sum(1 for rest in text[pos:].split("\n") if rest.strip())
        else:
            rec.total_rows = None
    if array and rows and isinstance(rows[0][1], str):  # datasets: a list of strings is a 'text' column
        rows = [(at, {"text": v} if isinstance(v, str) else v) for at, v in rows]
    return rows


def _csv_rows(text: str, rec: Recognition) -> list[tuple[int, Any]]:
    """datasets' csv builder (pandas, na_filter=False): the header row names the columns, every
    value is text, blank lines are skipped."""
    import csv  # only for .csv files: the dry-run of a hub dataset never pays for it
    import io

    complete = rec.complete
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, Any]] = []
    header: list[str] | None = None
    before, count = 0, 0
    try:
        for record in reader:
            start, before = before + 1, reader.line_num
            if not record or record == [""]:
                continue
            if header is None:
                header = record
                continue
            count += 1
            if len(rows) >= MAX_ROWS:
                if not complete:
                    break
                continue
            if len(record) > len(header):
                rec.add(Problem(ERROR, "data.csv.fields", start,
                                f"{len(record)} fields, but the header names {len(header)}: pandas stops on it"))
                continue
            rows.append((start, dict(zip(header, record + [""] * (len(header) - len(record))))))
    except csv.Error as exc:
        if complete:
            rec.add(Problem(ERROR, "data.csv.fields", before + 1, f"not valid CSV: {exc}"))
            rec.total_rows = None
    if not complete:
        rows = rows[:-1] if len(rows) < MAX_ROWS else rows  # the last record may be cut short
    elif rec.total_rows is not None:
        rec.total_rows = count
    rec.keys = tuple(header or ())
    return rows


# ----------------------------------------------------------------------------- ms-swift's rules


def safe_renames(keys: Iterable[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """RowPreprocessor.safe_rename_columns: case-insensitive; two columns bound for one name are
    both left as they are ("response" and "answer" both present: neither is renamed)."""
    lower = {k.lower(): k for k in keys}
    safe = {lower[k.lower()]: v for k, v in mapping.items() if k.lower() in lower}
    counts = Counter(safe.values())
    return {k: v for k, v in safe.items() if counts[v] == 1 and k != v}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text" if value else "empty text"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "an object" if value else "an empty object"
    return type(value).__name__


def _literal(text: str) -> tuple[Any, bool]:
    """default_repair_messages / ast.literal_eval: text that holds a list, as ms-swift reads it."""
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        pass
    import ast

    try:
        return ast.literal_eval(text), True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None, False


class _Drop(Exception):
    """This row is one ms-swift would drop (or stop on, with --strict true)."""

    def __init__(self, code: str, message: str, hint: str = ""):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


# A message as ms-swift normalises it: (role, content, what the user calls it: 'message 2 (user)', 'query').
Std = tuple[str, Any, str]


def _messages(row: dict, column: str) -> tuple[list[Std], str]:
    """MessagesPreprocessor.preprocess, then _check_messages. Returns (messages, format)."""
    value = row.get("messages")
    if isinstance(value, str):
        value, ok = _literal(value)
        if not ok:
            raise _Drop("data.messages.invalid", f"{column} is text that is neither JSON nor a Python literal")
    if not value or isinstance(value, str):  # preprocess returns None: dropped without a word
        raise _Drop("data.messages.invalid", f"{column} is {_kind(value)}: ms-swift drops the row without a warning")
    if not isinstance(value, list):
        raise _Drop("data.messages.invalid", f"{column} is {_kind(value)}, not a list of messages")
    for i, message in enumerate(value, 1):
        if not isinstance(message, dict):
            raise _Drop("data.messages.invalid", f"message {i} is {_kind(message)}, not an object")
    if any(m.get("tool_calls") for m in value) or any(
            isinstance(m.get("content"), list) and any(isinstance(b, dict) and (
                b.get("type") in ("tool_use", "tool_result") or b.get("type") == "image" and "source" in b)
                for b in m["content"]) for m in value):
        return [], "messages"  # OpenAI / Anthropic tool calls: ms-swift converts them; not checked here
    system = row.get("system")
    messages = []
    for m in value:  # _to_std_key: 'from' -> role, 'value' -> content (the later key wins)
        m = dict(m)
        for std, keys in (("role", ("role", "from")), ("content", ("content", "value"))):
            for key in keys:
                if key in m:
                    m[std] = m.pop(key)
        messages.append(m)
    sharegpt = any("from" in m for m in value)
    if "role" not in messages[0] and "content" not in messages[0]:  # _is_sharegpt_format: pairs
        out: list[Std] = [("system", system, "system")] if system is not None else []
        for i, m in enumerate(messages, 1):
            for std, names in (("user", USER_ROLES), ("assistant", ASSISTANT_ROLES)):
                for name in names:
                    if name in m:
                        m[std] = m.pop(name)
            if "user" not in m or "assistant" not in m:
                raise _Drop("data.messages.invalid",
                            f"message {i} has keys {', '.join(map(str, m)) or 'none'}: in sharegpt's pair format "
                            f"each item needs user (human) and assistant (gpt, bot)")
            out += [("user", m["user"], f"message {i} (user)"),
                    ("assistant", m["assistant"], f"message {i} (assistant)")]
        _check_contents(out)
        return out, "sharegpt"
    out = []
    for i, m in enumerate(messages, 1):
        if "role" not in m:
            raise _Drop("data.messages.invalid", f"message {i} has no role (keys: {', '.join(map(str, m))})",
                        ROLES_HINT)
        role = m["role"]
        if role in USER_ROLES:
            role = "user"
        elif role in ASSISTANT_ROLES:
            role = "assistant"
        elif not isinstance(role, str):
            raise _Drop("data.messages.invalid", f"message {i} has role {role!r}, which is not text", ROLES_HINT)
        elif role.replace("-", "_") in TOOL_CALL_ROLES:
            role = "tool_call"
        elif role.replace("-", "_") in TOOL_RESPONSE_ROLES:
            role = "tool_response"
        if role not in STD_ROLES:
            raise _Drop("data.messages.invalid", f"message {i} has role {m['role']!r}, which ms-swift does not know",
                        ROLES_HINT)
        if "content" not in m:
            raise _Drop("data.messages.invalid", f"message {i} ({role}) has no content")
        if m["content"] is None:
            raise _Drop("data.messages.invalid", f"message {i} ({role}) has null content")
        out.append((role, m["content"], f"message {i}" + (f" ({role})" if role != "system" else "")))
    if out[0][0] != "system" and system is not None:  # to_std_messages
        out.insert(0, ("system", system, "system"))
    return out, "sharegpt" if sharegpt else "messages"


def _check_contents(messages: list[Std]) -> None:
    for _, content, label in messages:
        if content is None:
            raise _Drop("data.messages.invalid", f"{label} has null content")


def _response(row: dict, alpaca: bool, name: Mapping[str, str]) -> tuple[list[Std], str]:
    """AlpacaPreprocessor / ResponsePreprocessor.preprocess, then history_to_messages. `name`
    gives a column's name in the file ('completion' for ms-swift's 'response')."""
    response = row.get("response")
    if alpaca:
        instruction, input_ = row.get("instruction"), row.get("input")
        if row.get("output") is not None:
            response = row["output"]
        query = f"{instruction}\n{input_}" if instruction and input_ else instruction or input_
        if not isinstance(query, str):  # concat_inst_input: assert isinstance(query, str)
            raise _Drop("data.row.invalid", f"instruction ({_kind(instruction)}) and input ({_kind(input_)}) make "
                        "no text query (ms-swift: assert isinstance(query, str))")
    else:
        query = row.get("query")
    if isinstance(response, list):
        if not response:
            raise _Drop("data.row.invalid", "response is an empty list")
        response = response[0]  # ms-swift trains on the first (RANDOM_DATASET_RESPONSE: a random one)
    history = row.get("history") or []
    if isinstance(history, str):
        history, ok = _literal(history)
        if not ok:
            raise _Drop("data.row.invalid", "history is text that is neither JSON nor a Python literal")
    if not isinstance(history, list):
        raise _Drop("data.row.invalid", f"history is {_kind(history)}, not a list of [query, response] pairs")
    for j, pair in enumerate(history, 1):
        if not isinstance(pair, (list, tuple)) or len(pair) < 2:
            raise _Drop("data.row.invalid", f"history item {j} is {_kind(pair)}"
                        + (f" of {len(pair)}" if isinstance(pair, (list, tuple)) else "")
                        + ", not a [query, response] pair")
    system = row.get("system")
    out: list[Std] = [("system", system, name.get("system", "system"))] if system is not None else []
    query_name = "instruction/input" if alpaca else name.get("query", "query")
    response_name = "output" if alpaca and row.get("output") is not None else name.get("response", "response")
    for j, (q, r, *_) in enumerate(history, 1):
        out += [("user", q, f"history item {j} query")] if q is not None else []
        out += [("assistant", r, f"history item {j} response")] if r is not None else []
    out += [("user", query, query_name)] if query is not None else []
    out += [("assistant", response, response_name)] if response is not None else []
    return out, "alpaca" if alpaca else "query-response"


def _template(messages: list[Std]) -> str | None:
    """What the swift template (template/base.py, template_inputs.py) refuses; returns a warning
    when the row encodes but holds nothing to train on."""
    for role, content, label in messages:
        if role not in TOOL_ROLES and not isinstance(content, (str, list)):
            what = f"{label} content" if label.startswith("message") else label
            raise _Drop("data.messages.invalid", f"{what} is {_kind(content)}: ms-swift's template needs text")
    rest = messages[1:] if messages and messages[0][0] == "system" else messages
    if not rest:
        raise _Drop("data.messages.invalid", "only a system message: ms-swift's template has nothing to encode")
    for role, _, label in rest:
        if role == "system":
            raise _Drop("data.messages.invalid", f"{label} is a system message after the start: ms-swift's "
                        "template takes system only as the first message")
    if rest[0][0] in ("tool", "tool_response"):
        raise _Drop("data.messages.invalid", f"{rest[0][2]} is a tool response with no user message before "
                    "it (ms-swift: 'A standalone tool message must follow a user message')")
    if not any(role in ("assistant", "tool_call") for role, _, _ in rest):
        return "no assistant message: ms-swift keeps the row but it has nothing to train on (every label is -100)"
    return None


def _media(row: dict, cwd: str, root: str | None, data_dir: str, name: Mapping[str, str]) -> None:
    """template/vision_utils.py _check_path: a media path is opened from the launch dir, or
    under ROOT_IMAGE_DIR; http(s) URLs, data: URIs and base64 text are not paths."""
    for key in ("images", "videos", "audios"):
        value = row.get(key)
        items = value if isinstance(value, list) else [value]
        for n, item in enumerate(items):
            if isinstance(item, dict) and item.get("bytes") is None:
                item = item.get("path")
            if not isinstance(item, str):
                continue
            text = item.strip()
            if (len(text) > 2000 or text.startswith(("http", "data:")) or not _MEDIA_SUFFIX.search(text)
                    or localpath.exists(text, cwd) or (root and localpath.exists(os.path.join(root, text), cwd))):
                continue
            where = name.get(key, key) + (f"[{n}]" if isinstance(value, list) else "")
            beside = os.path.join(data_dir, text)
            hint = (f"it is there from the dataset's folder ({beside}); ms-swift opens media paths from the launch "
                    f"dir ({cwd}) or ROOT_IMAGE_DIR: set ROOT_IMAGE_DIR={data_dir} or write absolute paths"
                    if not os.path.isabs(text) and os.path.exists(beside) else
                    f"ms-swift opens media paths from the launch dir ({cwd}) or ROOT_IMAGE_DIR")
            raise _Drop("data.media.missing", f"{where} {text!r} does not exist ({localpath.absolute(text, cwd)})",
                        hint)


# ------------------------------------------------------------------------------------ the whole


def recognize(path: str, *, columns: Mapping[str, str] | None = None, auto_mapping: bool = True,
              cwd: str | None = None, environ: Mapping[str, str] | None = None) -> Recognition:
    """Read the first MAX_BYTES of `path` (.jsonl, .json or .csv) and check its first MAX_ROWS
    rows the way ms-swift would preprocess them. `columns` is ms-swift's --columns mapping,
    `auto_mapping` False is --disable_auto_column_mapping; cwd is the launch dir."""
    cwd = cwd or os.getcwd()
    environ = os.environ if environ is None else environ
    path = localpath.absolute(path, cwd) if not os.path.isabs(path) else path
    rec = Recognition(path=path, kind="csv" if path.lower().endswith(".csv") else
                      "json" if path.lower().endswith(".json") else "jsonl")
    text = _read(path, rec)
    if text is None:
        return rec
    if not text.strip():
        rec.add(Problem(ERROR, "data.file.empty", None, "is empty: ms-swift would find no rows"))
        return rec
    rows = _csv_rows(text, rec) if rec.kind == "csv" else _json_rows(text, rec)
    objects: list[tuple[int, dict]] = []
    for line, value in rows:
        if isinstance(value, dict):
            objects.append((line, value))
        else:
            rec.add(Problem(ERROR, "data.row.not_object", line, f"a row is {_kind(value)}, not a JSON object"))
    if rec.kind != "csv":
        seen: dict[str, None] = {}
        for _, row in objects:
            seen.update(dict.fromkeys(map(str, row)))
        rec.keys = tuple(seen)
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
                messages, fmt = _messages(row, column)
            else:
                messages, fmt = _response(row, kind == "alpaca", origin)
                if not messages:  # _check_messages: assert len(messages) > 0
                    raise _Drop("data.format.unknown", _unknown(raw), _unknown_hint(raw))
            if rejected_column:  # _check_rejected_response: the column exists, so every row needs one
                rejected = row.get("rejected_response")
                if rejected is None:
                    raise _Drop("data.row.rejected", "rejected_response is null" if "rejected_response" in row else
                                "no rejected_response, though other rows have one (ms-swift reads it as null)")
                if isinstance(rejected, str) and messages and rejected == messages[-1][1]:
                    raise _Drop("data.row.rejected", "rejected_response is the same as the response")
            if row.get("rejected_response") is not None or row.get("rejected_messages") is not None:
                rec.rejected_rows += 1
            elif rec.first_without_rejected is None:
                rec.first_without_rejected = line
            label = row.get("label")
            if isinstance(label, bool) or (type(label) in (int, float) and label in (0, 1)):
                rec.labelled_rows += 1
            elif rec.first_bad_label is None:
                rec.first_bad_label = (line, "no label" if label is None else f"label {label!r} is not true/false")
            note = _template(messages) if messages else None
            _media(row, cwd, root, data_dir, origin)
        except _Drop as drop:
            rec.add(Problem(ERROR, drop.code, line, drop.message, drop.hint))
            continue
        rec.rows_usable += 1
        rec.format = rec.format or fmt
        if note:
            rec.add(Problem(WARNING, "data.row.no_response", line, note))


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
