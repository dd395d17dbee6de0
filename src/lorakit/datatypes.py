"""A JSON field whose type changes from one row to the next (ms-swift #5269: a number among the
strings of `query`). The datasets library loads a .jsonl/.json file through pyarrow, which gives
each field one type: before datasets 4.7.0 (its Json() type) the load stops with "ArrowInvalid:
JSON parse error: Column(/query) changed from string to number in row 124". pyarrow's own rules,
measured with datasets 3.6.0: int and float are one type (number), null goes with any, objects
with different keys merge; a string, a number, a boolean, a list and an object do not mix.
ms-swift's FAQ (Q2) says the same of grounding objects and agent tools: "must be strings.
Otherwise, PyArrow will report an error indicating inconsistent types between rows."
"""

from __future__ import annotations

from typing import Any


def kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object" if isinstance(value, dict) else None


def first_change(objects: list[tuple[int, dict]]) -> tuple[str, int, str, str] | None:
    """(field, line, its type before, its type at that line) of the first field, named as pyarrow
    names it (/messages/[]/content), whose type changes; None when every field keeps one type.
    Fields are told apart by their path of keys, not by that name: a key "meta/source" is not
    meta's "source". Walked with a stack, not recursion: a row may be nested as deep as json.loads
    allows."""
    seen: dict[tuple, str] = {}
    for line, row in objects:
        stack: list[tuple[tuple, Any]] = [((key,), value) for key, value in reversed(list(row.items()))]
        while stack:
            path, value = stack.pop()
            this = kind(value)
            if this is None:
                continue
            before = seen.setdefault(path, this)
            if before != this:
                return _name(path), line, before, this
            if this == "object":
                stack.extend(((*path, key), item) for key, item in reversed(list(value.items())))
            elif this == "list":
                inner, nested = (*path, LIST), []
                for item in value:  # scalars are judged here: a long list of numbers is not a stack of them
                    kind_of = kind(item)
                    if kind_of in ("list", "object"):
                        nested.append((inner, item))
                    elif kind_of is not None and seen.setdefault(inner, kind_of) != kind_of:
                        return _name(inner), line, seen[inner], kind_of
                stack.extend(reversed(nested))
    return None


LIST = object()  # a list's items, in a path (pyarrow writes "[]")


def _name(path: tuple) -> str:
    return "".join("/[]" if part is LIST else f"/{part}" for part in path)
