"""Reading values the way ms-swift's argparse reads them; nothing else in lorakit converts.

argparse types a flag with `int`, `float` or transformers' `string_to_bool`, applied to the argv
text. YAML hands lorakit ints, floats, bools and strings, so each reader here answers "what would
argparse make of this value as lorakit renders it", or None when argparse would refuse it.
Never `str.isdigit()` then `int()`: '²' is a digit to isdigit and a ValueError to int.
"""

from __future__ import annotations

import math
from typing import Any, Iterable


TRUE_WORDS = ("yes", "true", "t", "y", "1")
FALSE_WORDS = ("no", "false", "f", "n", "0")
PORT_RANGE = (1, 65535)


def as_int(value: Any) -> int | None:
    """8, 8.0 and '8' are ints to argparse (lorakit renders 8.0 as '8'); True, 8.5, 'eight',
    '--8' and '²' are not. Text is read by int() itself, as argparse does ('+8', ' 8 ', '1_0')."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):
        return None


def as_finite_float(value: Any) -> float | None:
    """A float that is neither nan nor ±inf (argparse's float() takes both; a timeout must not)."""
    number = as_float(value)
    return number if number is not None and math.isfinite(number) else None


def as_bool(value: Any) -> bool | None:
    """transformers' string_to_bool: yes/true/t/y/1 and no/false/f/n/0."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # rendered as '0' / '1', which string_to_bool reads
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    return None


def as_count(value: Any, *, minimum: int = 1) -> int | None:
    """A whole number >= minimum (ranks, nodes, batch sizes), or None."""
    number = as_int(value)
    return number if number is not None and number >= minimum else None


def node_count(value: Any) -> int | None:
    """launch.nnodes: 1 when unset, the count when it is a whole number >= 1, else None."""
    return 1 if value is None else as_count(value)


def as_port(value: Any) -> int | None:
    """A TCP port number, or None."""
    number = as_int(value)
    return number if number is not None and PORT_RANGE[0] <= number <= PORT_RANGE[1] else None


def listed(value: Any) -> list[str]:
    """A flag's value as its items, each as text: one value is a list of one; None and '' drop."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v not in (None, "")]
    return [] if value in (None, "") else [str(value)]


def did_you_mean(word: Any, choices: Iterable[str], n: int = 1) -> list[str]:
    """Close spellings of `word` among `choices` (difflib, imported only on this error path)."""
    import difflib

    return difflib.get_close_matches(str(word), list(choices), n=n)


def suggestion(word: Any, choices: Iterable[str]) -> str:
    """"did you mean 'x'? " or ""; the prefix of a hint."""
    close = did_you_mean(word, choices)
    return f"did you mean {close[0]!r}? " if close else ""


def parsed_json(value: Any) -> Any:
    """JSON text (a kwargs flag written on the command line) as what it encodes; anything else,
    and text that does not parse, unchanged."""
    if isinstance(value, str):
        import json

        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value
