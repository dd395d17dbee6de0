"""ms-swift's command-line flags, read from committed snapshots instead of from ms-swift itself.

`lorakit validate` must be instant and must work where ms-swift and torch are not installed, so
it never imports them. `scripts/gen_swift_flags.py` records what ms-swift's own parser accepts
(one JSON file per major version under lorakit/data/), and this module answers from those files:
which flag a preset key means, what a misspelt key probably meant, and whether a YAML value
survives argparse's type conversion. Which older minor has which flag is lorakit.flaghistory's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

# The `swift` commands the snapshots cover (scripts/gen_swift_flags.py COMMANDS).
COMMANDS = ("sft", "export", "rlhf", "infer", "deploy", "eval", "rollout")

# argparse's own -h/--help (HfArgumentParser keeps add_help=True). Not settings, but they take
# part in prefix matching: `--he` is --help, and `--h` is ambiguous rather than unknown.
ARGPARSE_OWN = ("--help", "-h")

# transformers.hf_argparser.string_to_bool, which HfArgumentParser installs as the type of every
# bool field. It lower()s the text, so "True" and "YES" count too.
from lorakit.values import FALSE_WORDS, TRUE_WORDS, did_you_mean  # noqa: E402  (one reader of values)

# Python 3.11's argparse._negative_number_matcher. A value token that starts with '-' and does not
# match it is read as an option, so `--learning_rate -1e-05` fails with "expected one argument"
# (3.13 loosened the pattern; we keep the strictest one ms-swift may run under).
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")

# True renames of one setting between ms-swift 3.12.6 and 4.6.0 (flags that vanished or appeared
# without a counterpart are not listed). Each maps a name to what that major calls it.
RENAMED: dict[str, dict[int, str]] = {
    # ms-swift PR #7385 (the v4 refactor) renamed train_type to tuner_type, with no alias.
    "train_type": {4: "tuner_type"},
    "tuner_type": {3: "train_type"},
    # 3.x trainers/arguments.py `metric` became 4.x `eval_metric`: same init in sft_args.py
    # ('nlg' when predict_with_generate), and 4.x's docstring still calls the field `metric`.
    "metric": {4: "eval_metric"},
    "eval_metric": {3: "metric"},
    # sft: 3.x trainers/mixin.py saves with getattr(args, 'save_safetensors', True) (a transformers
    # 4.x TrainingArguments field, gone in transformers 5); 4.x mixin.py reads
    # args.safe_serialization at the same call site. `swift export` had safe_serialization in both.
    "save_safetensors": {4: "safe_serialization"},
    "safe_serialization": {3: "save_safetensors"},
    # export: 3.x `mcore_adapters: List[str]` became 4.x `mcore_adapter: Optional[str]`
    # (base_args.py falls back to it the same way). 4.x takes one path, not a list.
    "mcore_adapters": {4: "mcore_adapter"},
    "mcore_adapter": {3: "mcore_adapters"},
}


# The snapshots ship inside the package (a plain path: importlib.resources costs start-up time).
DATA = Path(__file__).resolve().parent / "data"

@dataclass(frozen=True)
class FlagSpec:
    """One ms-swift flag as its parser defines it. `type` is int/float/str/bool/json/unsupported."""

    name: str
    type: str
    nargs: str | int | None
    choices: tuple[str, ...] | None
    default: Any
    options: tuple[str, ...]
    negative_options: tuple[str, ...] = ()
    # Choices other minors of the major take and this one does not, as (choice, 'from ms-swift
    # 3.1' | 'last in ms-swift 3.5'); only flaghistory.spec_at sets it, for an older target minor.
    elsewhere: tuple[tuple[str, str], ...] = ()


@lru_cache(maxsize=None)
def _snapshot_text(major: int) -> str:
    name = f"swift_flags_v{major}.json"
    path = DATA / name
    if not path.is_file():
        known = ", ".join(str(m) for m in available_majors()) or "none"
        raise ValueError(f"no ms-swift {major}.x flag snapshot ({name}); snapshots exist for: {known}")
    return path.read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def _snapshot(major: int) -> dict:
    return json.loads(_snapshot_text(major))


def _command_snapshot(major: int, command: str) -> dict | None:
    """One command's part of the snapshot, parsed alone: a dry-run needs one command of seven, and
    the whole file is ~5 ms of JSON. The file is gen_swift_flags.py's `indent=1` JSON, where a
    command's object opens with `\n  "sft": {` and closes at the next line of two spaces and `}`;
    None when the text is not laid out so (the caller parses it all: tests hold both equal)."""
    text = _snapshot_text(major)
    head = f'\n  "{command}": {{\n'
    start = text.find(head)
    if start < 0 or text.find('\n "commands": {\n') < 0:
        return None
    end = text.find("\n  }", start + len(head))
    if end < 0:
        return None
    try:
        return json.loads(text[start + len(head) - 2:end + 4])
    except ValueError:
        return None


def available_majors() -> list[int]:
    folder = DATA
    found = (re.fullmatch(r"swift_flags_v(\d+)\.json", entry.name) for entry in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


@lru_cache(maxsize=None)
def snapshot_version(major: int) -> str:
    """The ms-swift version a snapshot was generated from, e.g. '4.6.0'."""
    found = re.search(r'^ "swift_version": ("[^"\\]*"),?$', _snapshot_text(major), re.M)
    return json.loads(found.group(1)) if found else _snapshot(major)["swift_version"]


@lru_cache(maxsize=None)
def _flag_table(major: int, command: str) -> Mapping[str, FlagSpec]:
    data = _command_snapshot(major, command)
    if data is None:
        commands = _snapshot(major)["commands"]
        if command not in commands:
            raise ValueError(f"unknown ms-swift command {command!r}; expected one of {', '.join(sorted(commands))}")
        data = commands[command]
    return MappingProxyType({
        name: FlagSpec(
            name=name,
            type=raw["type"],
            nargs=raw["nargs"],
            choices=None if raw["choices"] is None else tuple(raw["choices"]),
            default=raw["default"],
            options=tuple(raw["options"]),
            negative_options=tuple(raw.get("negative_options", ())),
        )
        for name, raw in data["flags"].items()
    })


def load_flags(major: int, command: str) -> Mapping[str, FlagSpec]:
    """Flags of `swift <command>` in ms-swift <major>.x, keyed by the underscore field name."""
    return _flag_table(major, command)  # cached, shared and read-only


_INDEXES: dict[int, tuple[Mapping[str, FlagSpec], dict]] = {}


def _option_index(flags: Mapping[str, FlagSpec]) -> dict[str, tuple[str, bool]]:
    """Every option string -> (flag name, is it the --no_ form); built once per flag table
    (the checks resolve every key of a job: rebuilding it each time cost ~4 ms a dry-run)."""
    cached = _INDEXES.get(id(flags))
    if cached is not None and cached[0] is flags:
        return cached[1]
    index: dict[str, tuple[str, bool]] = {}
    for spec in flags.values():
        index.update((option, (spec.name, False)) for option in spec.options)
        index.update((option, (spec.name, True)) for option in spec.negative_options)
    if isinstance(flags, MappingProxyType) and len(_INDEXES) < 64:
        _INDEXES[id(flags)] = (flags, index)  # holds `flags`, so its id cannot be reused
    return index


def resolve(flags: Mapping[str, FlagSpec], key: str) -> tuple[str | None, str]:
    """Which flag argparse would take `key` for, and how it got there.

    `how` is "exact" (--lora_rank), "alias" (--lora-rank), "prefix" (--lora_ra: argparse's
    allow_abbrev), "negation" (--no_<flag>, exact or abbreviated: it stores False and takes no
    value), "ambiguous" (argparse exits 2), or "unknown" (left over; ms-swift raises
    `ValueError: remaining_argv`). Like argparse, a prefix counts every option string it matches,
    so `--lazy` is ambiguous between --lazy_tokenize and --lazy-tokenize of the same flag.
    """
    option = (key if key.startswith("--") else "--" + key).partition("=")[0]
    if option == "--":
        return None, "unknown"
    index = _option_index(flags)
    if option in index:
        name, negated = index[option]
        return name, "negation" if negated else ("exact" if option == "--" + name else "alias")
    matches = [o for o in (*index, *ARGPARSE_OWN) if o.startswith(option)]
    if len(matches) > 1:
        return None, "ambiguous"
    if len(matches) == 1 and matches[0] in index:
        name, negated = index[matches[0]]
        return name, "negation" if negated else "prefix"
    return None, "unknown"  # no match, or only --help, which is not a setting


def prefix_matches(flags: Mapping[str, FlagSpec], key: str) -> list[str]:
    """The flags an abbreviation could mean, for explaining an "ambiguous" resolve().

    One name can come back alone: `--lazy` matches both spellings of lazy_tokenize, which argparse
    still calls ambiguous.
    """
    option = (key if key.startswith("--") else "--" + key).partition("=")[0]
    index = _option_index(flags)
    return sorted({index[o][0] for o in index if o.startswith(option)})


def prefix_options(flags: Mapping[str, FlagSpec], key: str) -> list[str]:
    """The option strings an abbreviation could mean, one per flag, as argparse lists them: a
    bool flag that defaults to true also has `--no_NAME` (hf_argparser), so `--n` matches
    `--no_dataset_shuffle` as well as `--new_special_tokens`."""
    option = (key if key.startswith("--") else "--" + key).partition("=")[0]
    index = _option_index(flags)
    found: dict[str, str] = {}
    # the underscore spelling of each (ms-swift's documentation writes --no_dataset_shuffle)
    for name in sorted(index, key=lambda o: (o[2:].count("-"), o)):
        if name.startswith(option):
            found.setdefault(index[name][0], name)
    return sorted(found.values())


def suggest(flags: Mapping[str, FlagSpec], key: str, n: int = 3) -> list[str]:
    """Did-you-mean candidates among the canonical flag names."""
    word = key.lstrip("-").partition("=")[0].replace("-", "_")
    return did_you_mean(word, sorted(flags), n=n)


def canonical_for_version(key: str, major: int, command: str = "sft") -> str:
    """What ms-swift <major>.x calls the setting `key` names (train_type -> tuner_type for 4).

    A name the target version already has is kept: `safe_serialization` is valid for 3.x
    `swift export`, and only 3.x `swift sft` spells it save_safetensors.
    """
    name = key.lstrip("-").replace("-", "_")
    if name in _flag_table(major, command):
        return name
    return RENAMED.get(name, {}).get(major, name)


def check_value(spec: FlagSpec, value: Any, flags: Mapping[str, FlagSpec] | None = None) -> str | None:
    """Why argparse would reject `value` (as YAML parsed it) for this flag, or None if it accepts it.

    Values are judged as the argv items lorakit renders (render.render_value): None omits the
    flag, bools become true/false, integral floats become ints, dicts become one JSON item,
    lists become one item per element. `flags` (the whole table) lets a value like
    '--model=a b' be recognised as an option, as argparse would.
    """
    if value is None:
        return None
    if spec.type == "unsupported":
        return f"{spec.name} cannot be set from the command line: ms-swift's parser has no way to read it"
    if isinstance(value, (list, tuple)):
        if spec.nargs not in ("+", "*"):
            hint = "; write it as a JSON string" if spec.type == "json" else ""
            return f"{spec.name} takes one value, not a list{hint}"
        if not value and spec.nargs == "+":
            return f"{spec.name} needs at least one value"
        for item in value:
            problem = _check_item(spec, item, in_list=True, flags=flags, alone=len(value) == 1)
            if problem:
                return problem
        return None
    return _check_item(spec, value, in_list=False, flags=flags, alone=True)


# The short names other tools take (torch, DeepSpeed configs, LLaMA-Factory's `bf16: true`) for
# a choice ms-swift spells out; difflib alone misses 'fp32' -> 'float32'.
_CHOICE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


def _check_item(spec: FlagSpec, value: Any, in_list: bool, flags=None, alone: bool = False) -> str | None:
    """`alone`: the flag's only value, which render.py attaches (`--system=-x`) when it starts
    with '-', so argparse cannot read it as an option."""
    if in_list and isinstance(value, (list, tuple, dict)):
        return f"{spec.name}: list items must be single values, got {value!r}"
    if spec.type == "json":
        return _check_json(spec, value)
    if isinstance(value, dict):
        if spec.type == "str" and spec.choices is not None:
            return f"{spec.name} takes one of {', '.join(spec.choices)}, not a mapping"
        if spec.type == "str":
            return None  # rendered as one JSON item, as ms-swift's own YAML config loader does
        return f"{spec.name} expects {_a(spec.type)}, not a mapping"
    token = _token(value)
    problem = _convert(spec, token)
    if problem:
        return problem
    if spec.choices is not None and token not in spec.choices:
        return f"{spec.name}: {token!r} is not one of {', '.join(spec.choices)}{_nearest(spec, token)}"
    if not (alone and attaches([token])) and reads_as_option(token, flags):
        return (
            f"{spec.name}: argparse reads the value {token!r} as an option because it starts with '-'"
            f"{'; write it without an exponent' if _is_number(token) else ''}"
        )
    return None


def _nearest(spec: FlagSpec, token: str) -> str:
    """What the user likely meant by a refused choice, as the message's tail ('' for nothing)."""
    folded = token.casefold()
    same = next((c for c in spec.choices if c.casefold() == folded), None)
    if same is None:
        later = next(((c, when) for c, when in spec.elsewhere if c.casefold() == folded), None)
        if later:
            # 'GRPO' on 3.0: difflib's nearest in 3.0's choices is 'orpo', but the user meant 3.1's 'grpo'
            return f"; ms-swift's choices are case-sensitive, and {later[0]!r} is {later[1]}"
    close = same or _CHOICE_ALIASES.get(token.lower())
    if close not in spec.choices:  # a number is no misspelling: '16' is not "nearly 1"
        close = None if _is_number(token) else next(iter(did_you_mean(token.lower(), spec.choices)), None)
    return f"; did you mean {close!r}?" if close else ""


def _check_json(spec: FlagSpec, value: Any) -> str | None:
    if isinstance(value, dict):
        return None
    if not isinstance(value, str):
        return f"{spec.name} expects a mapping or a JSON string, got {value!r}"
    if value.lstrip()[:1] in ("{", "["):
        try:
            json.loads(value)
        except RecursionError:
            return f"{spec.name}: the JSON is nested too deeply to read"
        except ValueError as err:
            return f"{spec.name}: the JSON does not parse ({err})"
    return None


def _convert(spec: FlagSpec, token: str) -> str | None:
    """argparse's type conversion: int(token), float(token), string_to_bool(token)."""
    if spec.type == "bool":
        if token.lower() in TRUE_WORDS or token.lower() in FALSE_WORDS:
            return None
        return f"{spec.name} expects true or false (yes/no, t/f, y/n, 1/0), got {token!r}"
    converter = {"int": int, "float": float}.get(spec.type)
    if converter is None:
        return None
    try:
        converter(token)
    except ValueError:
        return f"{spec.name} expects {_a(spec.type)}, got {token!r}"
    return None


def _token(value: Any) -> str:
    """One scalar as lorakit's render.render_value writes it (kept in step by tests)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def attaches(items: list[str]) -> bool:
    """Whether a flag's one value must be written `--flag=value` (render.flag_items): argparse
    takes an argv item that starts with '-' (`-x`, `-1e-5`) for an option, but never the part
    after a long option's '='. Not '--': argparse drops it from an attached value too
    (`--system=--` is []). A list's later items cannot be attached (check_value refuses those)."""
    return len(items) == 1 and items[0].startswith("-") and items[0] not in ("-", "--") \
        and not _NEGATIVE_NUMBER.match(items[0])


def reads_as_option(token: str, flags: Mapping[str, FlagSpec] | None = None) -> bool:
    """Would argparse (3.11's _parse_optional) take this argv item for an option, not a value?

    '-' alone and negative numbers are values. A token with no space is an option. One with a
    space is an option only when it names a known option: `--model=a b` is --model with the
    value 'a b' (the part before '=' may be an abbreviation), `-h x` is -h; other spaced
    tokens ('- a list item', '--- rule ---') are values."""
    if not token.startswith("-") or token == "-" or _NEGATIVE_NUMBER.match(token):
        return False
    if " " not in token:
        return True
    options = (*(_option_index(flags) if flags else ()), *ARGPARSE_OWN)
    if token.startswith("--"):
        head = token.partition("=")[0]
        return any(option.startswith(head) for option in options)
    return token[:2] in options or any(option.startswith(token) for option in options)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _a(type_name: str) -> str:
    return {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}.get(
        type_name, type_name
    )
