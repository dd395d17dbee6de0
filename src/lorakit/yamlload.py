"""How lorakit reads YAML that a person wrote: presets and --set values.

Four differences from yaml.safe_load, each for a mistake that passed silently before:
- only true/false are booleans. YAML 1.1 reads an unquoted `no`, `yes`, `on`, `off` as a boolean,
  so `eval_strategy: no` rendered `--eval_strategy false` and ms-swift failed after launch
  ("'false' is not a valid IntervalStrategy"); the word the user wrote is what ms-swift gets.
  (For a boolean flag, ms-swift's own string_to_bool reads yes/no too.)
- `1e-6` (no dot, as people write a learning rate) is text to YAML 1.1. As a flag's value the text is
  what ms-swift gets anyway, but inside a mapping it became the JSON string "1e-6":
  `lr_scheduler_kwargs: {min_lr: 1e-6}` then failed once training started (TypeError: str / float).
  Such a value is a Number: its text as a flag, a number inside a mapping (YAML 1.2's reading;
  an int when it is whole).
- a key twice in one mapping is an error naming both lines (safe_load keeps the last, silently).
- anchors and aliases are refused (refuse_aliases): a preset never needs them, and 500 bytes of
  nested aliases expand to gigabytes of argv ("billion laughs") or a list that contains itself.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from lorakit.errors import LorakitError

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 8x faster on the dry-run path
_BOOL = "tag:yaml.org,2002:bool"


_WORD = "tag:lorakit,2026:word"
YAML11_TRUE = ("yes", "Yes", "YES", "on", "On", "ON")
YAML11_FALSE = ("no", "No", "NO", "off", "Off", "OFF")


class Word(str):
    """An unquoted yes/no/on/off: text to a string or choice flag, a boolean to a boolean flag
    (spellout.settle_word decides once the flag is known), and a boolean inside a mapping, which
    becomes JSON (`{use_reentrant: no}` means false there, as YAML 1.1 and ms-swift's loader read it)."""

    @property
    def truth(self) -> bool:
        return str(self) in YAML11_TRUE


yaml.add_representer(Word, lambda dumper, value: dumper.represent_str(str(value)), Dumper=yaml.SafeDumper)


def _construct_word(loader, node) -> Word:
    return Word(loader.construct_scalar(node))


_NUMBER = "tag:lorakit,2026:number"
# what YAML 1.2 reads as a float and 1.1 does not: an exponent with no dot, or with no sign
_EXPONENT = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")


class Number(str):
    """`1e-6` as written: text to a flag (ms-swift parses it), a number inside a mapping."""


yaml.add_representer(Number, lambda dumper, value: dumper.represent_str(str(value)), Dumper=yaml.SafeDumper)


def settle(value: Any, *, nested: bool = False) -> Any:
    """Words inside a mapping become the booleans YAML 1.1 meant, Numbers the numbers YAML 1.2
    means; elsewhere they stay as written."""
    if isinstance(value, Word):
        return value.truth if nested else value
    if isinstance(value, Number):
        if not nested:
            return value
        # a whole number stays one (`max_pixels: 1e6` -> 1000000): ms-swift turns model_kwargs into
        # environment variables with str(), and int("1000000.0") fails where they are read
        number = float(value)
        return int(number) if number.is_integer() else number
    if isinstance(value, dict):
        return {k: settle(v, nested=True) for k, v in value.items()}
    if isinstance(value, list):
        return [settle(v, nested=nested) for v in value]
    return value


class DuplicateKey(yaml.MarkedYAMLError):
    pass


def _construct_mapping(self, node, deep=False):
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeConstructor says so itself
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise DuplicateKey(None, None, f"key {key!r} appears twice in one mapping (lines {first} and "
                                   f"{line}): YAML would keep the second silently", key_node.start_mark)
            seen[key] = line
    return yaml.SafeLoader.construct_mapping(self, node, deep=deep)


def _loader(base):
    resolvers = {first: [(tag, rx) for tag, rx in rules if tag != _BOOL]
                 for first, rules in base.yaml_implicit_resolvers.items()}
    loader = type(f"Preset{base.__name__}", (base,), {"yaml_implicit_resolvers": resolvers,
                                                      "construct_mapping": _construct_mapping})
    loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    words = "|".join(YAML11_TRUE + YAML11_FALSE)
    loader.add_implicit_resolver(_WORD, re.compile(f"^(?:{words})$"), list("yYnNoO"))
    loader.add_constructor(_WORD, _construct_word)
    loader.add_implicit_resolver(_NUMBER, _EXPONENT, list("-+0123456789."))
    loader.add_constructor(_NUMBER, lambda loader, node: Number(loader.construct_scalar(node)))
    return loader


FAST = _loader(_BASE)
PURE = _loader(yaml.SafeLoader) if _BASE is not yaml.SafeLoader else FAST


MAX_DEPTH = 64  # a preset nests a few levels; hundreds only exhaust the recursion limit


class Unreadable(yaml.YAMLError):
    """YAML that parses but whose values cannot be built (an impossible date, `!!int x`, an int of
    5000 digits, nesting 500 deep): the constructors raise plain exceptions for these."""


def parse(text: str) -> Any:
    """libyaml when present; on an error, the pure-Python parser again, whose messages are the
    ones users and tests know."""
    try:
        data = _load(text)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError) as exc:
        raise Unreadable(f"a value cannot be read: {type(exc).__name__}: {str(exc)[:200]}") from None
    _check_tree(data)
    return data


def _load(text: str) -> Any:
    if FAST is not PURE:
        try:
            return yaml.load(text, Loader=FAST)
        except yaml.YAMLError:
            pass
    return yaml.load(text, Loader=PURE)


def _check_tree(data: Any) -> None:
    """Iteratively (no recursion): nesting depth, and lone surrogates ('\\ud800' escapes the
    pure-Python parser accepts) that no argv or file name can hold."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Unreadable(f"values nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise Unreadable(f"{value[:40]!r} holds a lone surrogate escape, which is not text") from None
        elif isinstance(value, dict):
            stack.extend((v, depth + 1) for pair in value.items() for v in pair)
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def refuse_aliases(text: str, where: str, *, lines: bool = True) -> None:
    """Only text with a '*' can hold an alias, so only that is read again event by event
    (libyaml's parser: no objects are built)."""
    if "*" not in text:
        return
    try:
        for event in yaml.parse(text, Loader=_BASE):
            if isinstance(event, yaml.AliasEvent):
                line = f":{event.start_mark.line + 1}" if lines and event.start_mark else ""
                raise LorakitError(
                    f"{where}{line}: YAML alias *{event.anchor}: presets do not use anchors and aliases",
                    hint="write the value out where it is used, or share settings with 'extends:'")
    except yaml.YAMLError:
        return  # the caller parsed it already; nothing more to say here


def syntax_error(where: str, exc: yaml.YAMLError) -> LorakitError:
    mark = getattr(exc, "problem_mark", None)
    at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, Unreadable):
        return LorakitError(f"{where}: {problem}", hint="write the value as plain text, a number or a list")
    if isinstance(exc, DuplicateKey):
        return LorakitError(f"{at}: {problem}", hint="keep the key once, with the value you mean")
    return LorakitError(f"{at}: YAML syntax error: {problem}",
                        hint="fix the YAML at that line (indentation, a missing ':' or an unclosed quote)")
