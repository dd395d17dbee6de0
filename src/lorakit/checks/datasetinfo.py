"""custom_dataset_info, read the way ms-swift's register_dataset_info reads it (4.6.0
swift/dataset/register.py, 3.12.6 swift/llm/dataset/register.py): a JSON file (or inline JSON)
holding a LIST of entries, each a mapping of DatasetMeta's fields plus `columns` / `messages`.
ms-swift iterates whatever it gets: a mapping {name: {...}} (ms-swift #3754) yields its keys, and
_preprocess_d_info fails on a string ("'str' object does not support item assignment"); a key
DatasetMeta lacks fails DatasetMeta(**d_info) ("unexpected keyword argument")."""

from __future__ import annotations

import json
import os

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, Finding, about
from lorakit.job import Job
from lorakit.values import suggestion

KEY = "args.custom_dataset_info"
# DatasetMeta's fields that JSON can carry (loader / load_function and preprocess_func are code),
# and the two keys _preprocess_d_info turns into the preprocessor
FIELDS = ("ms_dataset_id", "hf_dataset_id", "dataset_path", "dataset_name", "ms_revision", "hf_revision",
          "subsets", "split", "tags", "help", "huge_dataset", "columns", "messages")
MAX_BYTES = 16 << 20  # an info file lists datasets; it does not hold them
EXAMPLE = '[{"dataset_path": "data/train.jsonl", "dataset_name": "mine"}]'


def _items(value) -> list[str]:
    """Each argv item as lorakit renders it: a YAML number or bool ('123', 'true') is text that
    ms-swift reads as inline JSON too."""
    from lorakit.render import render_value

    items = value if isinstance(value, (list, tuple)) else [value]
    # a YAML mapping renders as one JSON item, which ms-swift iterates key by key
    return [render_value(v)[0] for v in items if isinstance(v, (str, int, float)) or
            (isinstance(v, dict) and v is value)]


def _load(text: str) -> tuple[object, str | None, str]:
    """(parsed, base_dir, where) or raises ValueError with what is wrong."""
    if not text.strip():  # abspath('') is the current directory, which ms-swift does not open either
        raise ValueError(f"{text!r} is empty: ms-swift parses it as JSON text and fails (JSONDecodeError)")
    path = os.path.abspath(os.path.expanduser(text))
    if os.path.isfile(path):
        if os.path.getsize(path) > MAX_BYTES:
            raise ValueError(f"{path} is over {MAX_BYTES >> 20} MB: not a dataset info file")
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            raw = data.decode("utf-8")  # ms-swift opens it with encoding='utf-8'
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})") \
                from None
        where, base = path, os.path.dirname(path)
    elif os.path.exists(path):
        # register_dataset_info opens only a regular file (os.path.isfile); any other path's text
        # it hands to json.loads, which fails on it (JSONDecodeError), and a FIFO is never read
        kind = "a directory" if os.path.isdir(path) else "not a regular file"
        raise ValueError(f"{path} is {kind}: ms-swift reads a JSON file or inline JSON, and parses this "
                         "path as JSON text (JSONDecodeError)")
    elif text.lstrip()[:1] in ("[", "{"):
        raw, where, base = text, "the inline value", None
    else:
        try:  # register_dataset_info json.loads what is no file: '123' loads, then len(123) fails
            scalar = json.loads(text)
        except (ValueError, RecursionError):
            raise LookupError from None  # no such file: paths.custom_dataset_info.missing says so
        raise ValueError(f"{text!r} is no file here, and ms-swift reads it as inline JSON: {_json_kind(scalar)}, "
                         "not a list of dataset entries")
    try:
        return json.loads(raw), base, where
    except (json.JSONDecodeError, RecursionError) as exc:
        said = f"{exc.msg} (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) \
            else "nested too deeply"
        raise ValueError(f"{where} does not parse as JSON: {said}") from None


def _json_kind(value: object) -> str:
    """A JSON value in JSON's own words (null, not NoneType None)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    kind = {dict: "a mapping", list: "a list", str: "the text", int: "the number", float: "the number"}
    return f"{kind.get(type(value), type(value).__name__)} {json.dumps(value, ensure_ascii=False)[:60]}"


def _entry_problems(entry: object, i: int, base: str | None) -> list[str]:
    if not isinstance(entry, dict):
        return [f"entry {i} is {_json_kind(entry)}, not a mapping of dataset fields"]
    out = []
    for key in entry:
        if key not in FIELDS:
            out.append(f"entry {i}: {key!r} is not a dataset field ({suggestion(key, FIELDS)}ms-swift's DatasetMeta "
                       "refuses it: unexpected keyword argument)")
    path = entry.get("dataset_path")
    if "dataset_path" in entry and not isinstance(path, str):
        # _preprocess_d_info: os.path.isabs(dataset_path) raises TypeError on anything but text
        out.append(f"entry {i}: dataset_path is {_json_kind(path)}, not one path as text (ms-swift fails on it: "
                   "TypeError); give each file its own entry")
    if "messages" in entry and not isinstance(entry["messages"], dict):
        # _preprocess_d_info: MessagesPreprocessor(**d_info.pop('messages')) takes a mapping only
        out.append(f"entry {i}: messages is {_json_kind(entry['messages'])}, not a mapping of the "
                   "MessagesPreprocessor's keys, e.g. {\"role_key\": \"from\", \"content_key\": \"value\"}")
    if isinstance(path, str) and path:
        # relative to the info file's directory, as _preprocess_d_info joins it
        full = os.path.abspath(os.path.expanduser(path if base is None or os.path.isabs(path)
                                                  else os.path.join(base, path)))
        if not os.path.exists(full):
            out.append(f"entry {i}: dataset_path {path!r}: no such file or directory ({full}; a relative path is "
                       "relative to the info file's directory)")
    return out


def check_dataset_info(job: Job, facts: Facts) -> list[Finding]:
    out: list[Finding] = []
    for text in _items(job.args.get("custom_dataset_info")):
        try:
            info, base, where = _load(text)
        except LookupError:
            continue
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            out.append(about(job, ERROR, "data.dataset_info.invalid", KEY, f"custom_dataset_info: {exc}",
                             f"ms-swift reads a JSON list of entries, e.g. {EXAMPLE}"))
            continue
        if isinstance(info, dict) and not info:
            continue  # register_dataset_info returns at once when len(dataset_info) == 0
        if isinstance(info, dict):
            problems = [f"{where} is a JSON mapping (keys {', '.join(map(repr, list(info)[:3]))}), and ms-swift "
                        "iterates a list of entries: it would take each key for an entry and fail"]
        elif not isinstance(info, list):
            problems = [f"{where} is a JSON {type(info).__name__}, not a list of dataset entries"]
        else:
            problems = [p for i, entry in enumerate(info) for p in _entry_problems(entry, i, base)]
            if problems:
                problems[0] = f"{where}: {problems[0]}"
        if problems:  # one finding per file (checks.once keeps one .invalid per key), every problem in it
            more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
            out.append(about(job, ERROR, "data.dataset_info.invalid", KEY,
                             "custom_dataset_info: " + "; ".join(problems[:5]) + more,
                             f"a list of entries, each with dataset_path, ms_dataset_id or hf_dataset_id: {EXAMPLE}"))
    return out


CHECKS = [check_dataset_info]
