"""Reading a bounded prefix of a local dataset file the way `datasets` reads it: JSON Lines or one
JSON array (datasets' json builder), CSV (its csv builder, pandas with na_filter=False). What
the rows mean to ms-swift is lorakit.datarows; lorakit.datafile puts the two together.

Stdlib only: the dry-run must stay instant, so at most MAX_BYTES are read and MAX_ROWS parsed.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lorakit.findings import ERROR

MAX_BYTES = 1 << 20  # read at most this much of a file
MAX_ROWS = 200  # check at most this many rows

_WS = re.compile(r"[ \t\n\r]*")


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
    # (line, label) of the first row labelled with a number (0/1), not a JSON boolean: only
    # ms-swift 3.0.0 and 3.0.1 keep it as written (checks/rlhf.py)
    first_number_label: tuple[int, object] | None = None
    image_rows: int = 0  # checked rows with an image (checks/pixels.py)
    # embedding and reranker rows pair the query (messages) with a positive_messages list
    # (checks/retrieval.py): rows with one, and the line of the first checked row without one
    positive_rows: int = 0
    first_without_positive: int | None = None
    positive_shape: str = ""  # there: 'missing', or what its positive_messages is instead
    # (field, line, type before, type there) of the first JSON field whose type changes between
    # rows (datatypes.py): what datasets before 4.7.0 cannot load (checks/data.py says which)
    type_change: tuple[str, int, str, str] | None = None

    @property
    def complete(self) -> bool:
        return self.total_rows is not None

    def add(self, problem: Problem) -> None:
        if not self.counts[problem.code]:
            self.problems.append(problem)
        self.counts[problem.code] += 1


def read_prefix(path: str, rec: Recognition) -> str | None:
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


def json_rows(text: str, rec: Recognition) -> list[tuple[int, Any]]:
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


def csv_rows(text: str, rec: Recognition) -> list[tuple[int, Any]]:
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
