"""Never a traceback, over the whole path: preset file(s) -> checks -> render -> dry-run text.

The older property test (test_flag_checks.py) fed yaml.safe_dump'ed dicts of small values, so it
never reached what YAML text, ms-swift's flag types and the kernel's limits can produce. This one
builds every input from the flag snapshot's own types (lorakit.swiftflags.load_flags(4, "sft")):
for each flag's type (int/float/bool/str/json/unsupported) and nargs it writes values argparse
takes and values it refuses, as YAML *text* (raw snippets such as `0x10`, `no`, `.inf`, `1e3`,
`2024-01-01`, `{2024-01-01: 1}`, `&a [*a]`, tags, block scalars), and runs them through the real
entry point (conftest.run_cli, in-process) as preset files with `extends:` chains, `--set`
items, typed options, flags after `--` and launch variables in the environment.

The property, for `train --dry-run` and `validate --json` of the same inputs:
  * the exit code is 0 or 2, nothing raises past the CLI, no 'Traceback' on stderr;
  * train: stdout is empty on exit 2; on exit 0 it is a shell command that bash parses (run with
    stand-in `swift`/`env` functions) into exactly the argv and launch env that `--format json`
    reports, with no NUL byte and every argv item under 128 KiB (MAX_ARG_STRLEN);
  * validate --json: stdout is always JSON whose 'ok' matches the exit code (a command line refused
    before validate runs included), and train exiting 0 means validate fails on nothing but this
    machine (a dry-run renders for another one).

Every crash this test found is an explicit example at the end (FOUND says what each was; all were
fixed in 37e3b0b, 9f37971 and 12e36f8), and the strategies generate those shapes again. What is not fixed
is in KNOWN, as an xfail(strict=True) example, and the property avoids exactly that shape at the
one place it is generated (grep for `KNOWN[`): once a fix lands the example XPASSes (strict: the
suite fails); then move it to FOUND and drop the avoidance.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import LAUNCH_VARS, REPO, run_cli
from lorakit import swiftflags
from lorakit.names import normalise_arg_key

FLAGS = swiftflags.load_flags(4, "sft")
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_ARG_STRLEN = 32 * 4096  # bytes, the terminating NUL included (linux/binfmts.h)

# The crashes this test found, by name (each an example at the end), all fixed in 37e3b0b/9f37971:
# what raised, and where, before the fix.
FOUND = {
    "model_path_oserror": "a model value that is no usable path: '~nosuchuser/x' (RuntimeError from "
                          "Path.expanduser) or a name part over 255 bytes / a path over 4 KiB (OSError "
                          "ENAMETOOLONG from Path.is_dir), in modelinfo.find_local_model and "
                          "checks/model.check_model_type",
    "nul_in_preset_path": "a NUL byte in extends: (or -p): ValueError 'embedded null byte' from os.stat in "
                          "presets._not_a_file",
    "yaml_int_over_4300_digits": "an integer literal of more than 4300 digits: ValueError from PyYAML's "
                                 "construct_yaml_int (Python's int/str conversion limit) out of "
                                 "yamlload.parse, for a preset file and for --set alike",
    "int_too_long_to_print": "an int of more than 4300 digits once made (0x + 3572 hex digits, a product "
                             "of big batch sizes, 'gpus/<4301 digits>'): ValueError from str()/repr()/"
                             "json.dumps/int() in swiftflags._token, checks/nodes, checks/training, "
                             "fixups, render.render_value, job.nproc_from_rule",
    "lora_rank_beyond_float": "lora_rank above ~2e307: OverflowError (int too large to convert to float) "
                              "in checks/lora.check_ratio",
    "dataset_json_int_over_4300_digits": "a local .jsonl/.json dataset holding an integer of 4301+ digits: "
                                         "ValueError from the json decoder (only JSONDecodeError and "
                                         "RecursionError are caught) in dataread.json_rows",
    "ddp_gc_kwargs_not_json": "plain DDP (several ranks, no DeepSpeed/FSDP) with gradient checkpointing on and a "
                              "gradient_checkpointing_kwargs mapping holding a YAML date/binary/set, as a key "
                              "or a value: TypeError from json.dumps in fixups.add_no_reentrant (the fixup "
                              "runs before checks/flags.py can say the value is not JSON)",
    "world_size_beyond_float": "nproc_per_node x nnodes above ~1.8e308 with no usable "
                               "gradient_accumulation_steps: OverflowError in "
                               "checks/training.effective_grad_accum (16 / batch / world_size)",
    "yaml_constructor_errors": "YAML text whose constructor raises something other than YAMLError: an "
                               "impossible date (unquoted 2024-02-30, 2024-13-01, a -25 h offset), or a "
                               "tag on text it cannot read (!!int \"x\", !!int \"\", !!bool \"x\", "
                               "!!timestamp x, !!float \"\"): ValueError / IndexError / KeyError / "
                               "AttributeError out of yamlload.parse (preset files and --set)",
    "deep_nesting": "lists/mappings nested ~500 deep: RecursionError in yamlload.settle (and "
                    "checks/flags.value_problem behind it), and past libyaml's 1000 levels in the "
                    "pure-Python YAML parser that yamlload.parse falls back to",
    "deep_json_text": "a JSON string nested ~1000 deep for a json flag, gradient_checkpointing_kwargs or "
                      "deepspeed: RecursionError from json.loads (only ValueError is caught) in "
                      "swiftflags._check_json, fixups.gc_kwargs, checks/layout.check_deepspeed_value",
    "yaml_surrogate_escape": "a YAML escape of a surrogate (\"\\ud800\", or a pair \"\\ud83d\\ude00\"): "
                             "libyaml refuses it, the pure-Python fallback in yamlload.parse accepts it "
                             "as lone surrogates, then UnicodeEncodeError in checks/argv._size",
    "nul_in_master_addr": "launch.master_addr with a NUL byte (\"a\\0b\" in a file) passes every check: exit "
                          "0 and a dry-run text holding a NUL no shell can carry (a launch would die in "
                          "subprocess with 'embedded null byte')",
    "non_utf8_argv_strict_stdout": "a non-UTF-8 byte in an argv value (--model, -- --system ...) reaches "
                                   "the dry-run text as a surrogate escape; where stdout is strict UTF-8 "
                                   "(PYTHONIOENCODING=utf-8:strict, or an en_US.UTF-8 locale without UTF-8 "
                                   "mode) cli/run.emit raises UnicodeEncodeError",
    "validate_json_usage_error": "validate --json with an option refused before validate runs: Click's usage "
                                 "errors (--nproc x), and cli/argcheck's 'no such option', which also took an "
                                 "option's value that starts with '--' for an option (--set ---x=null): exit 2 "
                                 "and an empty stdout, not JSON (fixed in 12e36f8)",
}
# Not fixed: a name -> what it is. Each gets an xfail(strict=True) example at the end (known()),
# and the strategies avoid that shape where it is generated (search for the name).
KNOWN: dict[str, str] = {
    "global_batch_size_beyond_float": "global_batch_size of 10**309 or more: OverflowError (integer division "
                                      "result too large for a float) from round(n / per_step) in "
                                      "fixups.derive_grad_accum (the nearest-reachable rounding of ad0b5b9)",
}

# ---------------------------------------------------------------------------------------------
# YAML text writers

_ESC = {"\\": "\\\\", '"': '\\"', "\0": "\\0", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x85": "\\N",
        "\u2028": "\\L", "\u2029": "\\P", "\ufeff": "\\ufeff"}
_NEEDS_ESC = re.compile("[\\\\\"\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# words YAML 1.1 reads as something other than text when they are plain
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"}


def dq(text: str) -> str:
    """A YAML double-quoted scalar that reads back as exactly `text` (no surrogates in it)."""
    def esc(m: re.Match) -> str:
        ch = m.group(0)
        return _ESC.get(ch) or f"\\x{ord(ch):02x}"
    return '"' + _NEEDS_ESC.sub(esc, text) + '"'


def key_text(key: str) -> str:
    if _PLAIN_KEY.fullmatch(key) and key.lower() not in _YAML_WORDS:
        return key
    return dq(key)


def float_text(x: float) -> str:
    if x != x:
        return ".nan"
    if x in (float("inf"), float("-inf")):
        return ".inf" if x > 0 else "-.inf"
    text = repr(x)
    if "e" in text and "." not in text:  # YAML 1.1 floats need a dot: 1e-05 would be a string
        mantissa, exp = text.split("e")
        text = f"{mantissa}.0e{exp}"
    return text


def to_yaml(value) -> str:
    """Flow-style YAML text for a Python value (str/int/float/bool/None/list/dict)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, str):
        return dq(value)
    if isinstance(value, list):
        return "[" + ", ".join(to_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{to_yaml(k)}: {to_yaml(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


# ---------------------------------------------------------------------------------------------
# Value pools, as YAML text

HUGE_INT = 10 ** 400  # more than a float holds (FOUND["lora_rank_beyond_float"], ["world_size_beyond_float"])
BIG_INTS = [10 ** 18, 2 ** 63, 2 ** 64 + 1, HUGE_INT, -HUGE_INT, 10 ** 1000 - 1]
# Integers past Python's 4300-digit str/int guard, written as text (this module never converts
# them): FOUND["yaml_int_over_4300_digits"], ["int_too_long_to_print"]
BIG_INT_TEXTS = ["1" + "0" * 4300, "-" + "9" * 5000, "0x1" + "0" * 3600, "0b1" + "0" * 15000, "1" + "0" * 20_000]

DATES = ["2024-01-01", "2024-01-01T12:00:00Z", "2001-12-14 21:59:43.10 -5", "2024-1-1 1:2:3"]
ODD_TEXT = ["", " ", "²", "٣", "٣.٥", "--8", "+8", " 8 ", "8 ", "1_0", "0x10", "1e3", "nan", "inf", "-inf",
            "-", "--", "-x", "--x", "--x=y z", "- a list item", "--- rule ---", "-1", "-0.5", "-1e-05",
            "-h", "-h x", "--help", "--model=a b", "--lora_rank=8", "a=b", "a b", "a\nb", "tab\there",
            "$(id)", "`id`", "'quoted'", '"dq"', "\\", "back\\slash", "ünïcödé", "日本語", "emoji 😀",
            "\u200b", "\u2028", "\x7f", "\x01", "#comment", "a: b", "[a, b]", "{a: 1}", "{\"a\": 1}",
            "[1, 2]", "{bad", "yes", "no", "True", "null", "~", "NUL\0byte", "\0", "e\u0301"]
HUGE_TEXT_SIZES = [4096, 50_000, MAX_ARG_STRLEN // 2 - 1, MAX_ARG_STRLEN - 1, MAX_ARG_STRLEN, 200_000]
HUGE_TEXT_UNITS = ["x", "é", "日", "😀", "a b ", "-"]

RAW_ANY = ["null", "~", "Null", "no", "yes", "on", "off", "y", "n", "NO", "True", "0x10", "0o17", "017",
           "0b101", "1_000", "190:20:30", "1e3", "1.0e+3", ".inf", "-.inf", ".nan", ".NaN", "+8", "-0",
           "2024-01-01", "2024-01-01T12:00:00Z", "{2024-01-01: 1}", "{null: 1}", "{~: 1}", "{true: 1}",
           "{no: 1}", "{1.5: a}", "{.nan: 1}", "{.inf: 1}", "{0x10: 1}", "{2024-01-01 10:00:00: x}",
           "{[a]: 1}", "{{a: 1}: 2}", "&a [*a]", "&a {x: *a}", "[&a 1, *a]", "*undefined",
           "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1, b: 2]", "!!pairs [a: 1, a: 2]",
           "!!str 8", "!!int \"8\"", "!!float 1", "!!bool \"yes\"", "!!null \"\"", "!!timestamp 2024-01-01",
           "!!python/object:os.system {}", "!custom 1", "[]", "{}", "[[]]", "[{}]",
           "[a, [b, [c]]]", "{a: {b: {c: [1, {d: null}]}}}", "[a, null]", "[1, 2.5, true, null]",
           "{a: 1, a: 2}", "{<<: {a: 1}, b: 2}", "[a", "{a", "'unterminated",
           "\"\\x00\"", "\"\\u00b2\"", "\"\\u0663\"", "'--8'", "' 8 '", "\"+8\"", "'-1e-05'", "-1e-05",
           "-1.0e-05", "12345678901234567890123456789", "1.0e+400", "-1.0e+400", "\"\"", "''", "@x", "`x`",
           "%x", "? a", "a: b", "- a", "|", ">", "#", "!", "&", "*"]
# FOUND["yaml_constructor_errors"], ["yaml_surrogate_escape"]: values no constructor can build, and
# surrogate escapes (libyaml refuses them, the pure-Python parser reads lone surrogates)
RAW_ANY += ["2024-02-30", "2024-13-01", "2001-12-14 21:59:43.10 -25", "!!int \"x\"", "!!int \"\"", "!!int 0x",
            "!!float \"x\"", "!!float \"\"", "!!bool \"x\"", "!!timestamp x", "\"\\ud800\"", "\"\\ud83d\\ude00\"",
            "\"a\\udcffb\""] + BIG_INT_TEXTS


def huge_text(sizes: list[int] = HUGE_TEXT_SIZES) -> st.SearchStrategy[str]:
    """Text of (about) `size` UTF-8 bytes, never more: ASCII or 2-4 byte characters."""
    return st.builds(lambda unit, size: unit * (size // len(unit.encode())),
                     st.sampled_from(HUGE_TEXT_UNITS), st.sampled_from(sizes))


def nested(depth: int) -> st.SearchStrategy[str]:
    """FOUND["deep_nesting"]: lists and mappings `depth` levels deep."""
    return st.sampled_from(["[" * depth + "]" * depth, "{a: " * depth + "1" + "}" * depth,
                            "[" * depth + "1" + "]" * depth, "[{a: " * depth + "1" + "}]" * depth])


def json_text_nested(depth: int) -> str:
    """FOUND["deep_json_text"]: a JSON text `depth` levels deep, as a YAML string."""
    return dq("[" * depth + "]" * depth)


SMALL_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
PY_SCALARS = (st.none() | st.booleans() | st.integers(-5, 2 ** 40) | st.sampled_from(BIG_INTS)
              | st.floats(allow_nan=True) | SMALL_TEXT | st.sampled_from(ODD_TEXT))
PY_NESTED = st.recursive(PY_SCALARS, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(SMALL_TEXT | st.sampled_from(ODD_TEXT), inner, max_size=3),
                         max_leaves=8)
RAW_KEYS = ["null", "~", "2024-01-01", "2024-01-01 10:00:00", "true", "no", "y", "1.5", ".nan", ".inf",
            "-.inf", "0x10", "1", "-1", "a", "\"a\"", "'b'", "!!binary aGk=", "\"\"", "\"a\\0b\"", "日本"]


@st.composite
def raw_mapping(draw) -> str:
    """A flow mapping whose keys are every YAML scalar type."""
    items = draw(st.lists(st.tuples(st.sampled_from(RAW_KEYS), st.sampled_from(RAW_ANY[:40])
                                    | PY_SCALARS.map(to_yaml)), min_size=1, max_size=4))
    return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"


def any_value() -> st.SearchStrategy[str]:
    """Anything YAML can say, for any flag."""
    return st.one_of(
        st.sampled_from(RAW_ANY), PY_NESTED.map(to_yaml), raw_mapping(),
        st.sampled_from(DATES), st.sampled_from([1, 2, 5, 20, 63, 64, 65, 100, 600, 1001]).flatmap(nested),
        st.sampled_from([1, 5, 50, 100, 5000]).map(json_text_nested),
        st.sampled_from([1000, 5000]).map(lambda n: "[" + ", ".join(["item"] * n) + "]"),
    )


# Placeholders for two local model dirs the test writes (config.json + a safetensors header, and a
# broken config.json) and its dataset folder: replaced by real paths when a case is written.
LOCAL_MODEL, BROKEN_MODEL, DATA = "\u27e6LOCAL_MODEL\u27e7", "\u27e6BROKEN_MODEL\u27e7", "\u27e6DATA\u27e7"
# Local dataset files the test writes (write_fixtures), as placeholders: name -> rows as text. The
# good ones train; the others are each a way a dataset file goes wrong that lorakit reads for.
DATA_FILES = {
    "messages.jsonl": "".join(json.dumps({"messages": [{"role": "user", "content": f"q{i} ü"},
                                                       {"role": "assistant", "content": f"a{i}"}]}) + "\n"
                              for i in range(30)),
    "alpaca.json": json.dumps([{"instruction": f"i{i}", "input": "", "output": f"o{i}"} for i in range(30)]),
    "qr.csv": "query,response\n" + "".join(f"q{i},\"a, {i}\"\n" for i in range(30)),
    "bad-json.jsonl": "{\"messages\": [}\n{\"query\": 1}\n",
    "odd-rows.jsonl": "[1, 2]\n\"text\"\n{\"messages\": [{\"role\": \"system\", \"content\": 1}]}\n"
                      "{\"query\": NaN, \"response\": Infinity}\n{\"messages\": \"[{'role': 'user'}]\"}\n",
    "deep.jsonl": "{\"messages\": " + "[" * 3000 + "]" * 3000 + "}\n",
    "empty.jsonl": "",
    "bom.jsonl": "\ufeff{\"query\": \"q\", \"response\": \"r\"}\n",
    "fields.csv": "query,response\nq,r,extra\n\"unterminated\n",
    "big.jsonl": "{\"query\": \"" + "q" * 300_000 + "\", \"response\": \"r\"}\n" * 4,
}
GOOD_DATA = ["messages.jsonl", "alpaca.json", "qr.csv"]
# FOUND["dataset_json_int_over_4300_digits"]
DATA_FILES["bigint.jsonl"] = '{"query": "q", "response": "r", "n": 1' + "0" * 4300 + "}\n"
DATA_FILES["bigint.json"] = '[{"query": "q", "response": 1' + "0" * 4300 + "}]"


# Each type's pools: (argparse-valid, refused) YAML texts.
def int_pools(big: list[int]) -> tuple[st.SearchStrategy[str], st.SearchStrategy[str]]:
    valid = st.one_of(st.integers(1, 5000).map(str), st.sampled_from(big).map(str), st.sampled_from(BIG_INT_TEXTS),
                      st.sampled_from(["0x10", "017", "0b101", "1_000", "190:20:30", "+8", "8.0", "1.0e+3",
                                       "'8'", "' 8 '", "\"+8\"", "\"\u0663\"", "\"1_0\"", "null", "-0",
                                       "0x" + "f" * 800]))
    invalid = st.sampled_from(["\"²\"", "\"--8\"", "8.5", ".nan", ".inf", "-.inf", "\"eight\"", "true", "[1, 2]",
                               "{a: 1}", "2024-01-01", "\"\"", "\"1e3\"", "1e3", "\"0x10\"", "0o17", "-1.0e-05",
                               "\"8 8\"", "\"\\x00\"", "-3", "\"-8\"", "0"])
    return valid, invalid


def float_pools():
    valid = st.one_of(st.floats(0, 1e6).map(float_text), st.sampled_from(
        ["1.0e-4", "0.5", "1e3", ".inf", ".nan", "3", "\"\u0663.\u0665\"", "1_000.5", str(HUGE_INT), "-0.5",
         "\"1e3\"", "' 2.5 '", "0x10", "null", "1.0e+400", "-1"]))
    invalid = st.sampled_from(["\"²\"", "-1.0e-05", "\"--1\"", "\"one\"", "true", "[0.1]", "{a: 1}",
                               "2024-01-01", "\"\"", "\"1,5\"", "-1.0e+5"])
    return valid, invalid


def bool_pools():
    valid = st.sampled_from(["true", "false", "yes", "no", "on", "off", "y", "n", "True", "NO", "1", "0",
                             "\"t\"", "\"F\"", "\"YES\"", "\"1\"", "null", "1.0", "0.0"])
    invalid = st.sampled_from(["2", "\"maybe\"", "[true]", ".nan", "{}", "\"\"", "-1", "2024-01-01", "\"tru\""])
    return valid, invalid


SAFE_TEXT = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Lo", "Nd", "Zs"), max_codepoint=0x9fff),
                    min_size=1, max_size=16).filter(lambda t: t.strip() == t and t != "")
PATH_TEXTS = ["~", "~/x", "/", ".", "./nonexistent", "/dev/null", "a/b", "org/näme", "../x", "x.jsonl",
              "data/train.jsonl", "HF::a/b:sub#5", "a#-1"]


def str_pools(spec):
    if spec is not None and spec.choices:
        valid = st.sampled_from(spec.choices).map(dq)
    else:
        valid = st.one_of(SAFE_TEXT.map(dq), st.sampled_from(
            ["a", "Qwen/Qwen3-8B", "a b", "日本語", "x,y", "8", "1e3", "\"- a\"", "\"--x=y z\"", "\"-1\"",
             "'a''b'", "\"$(id) `id` 'q'\"", "\"tab\\there\"", "\"new\\nline\"", "\"ünï😀\""]))
    texts = ODD_TEXT + PATH_TEXTS
    # FOUND["model_path_oserror"]: '~user' paths and names too long for the file system
    invalid = st.one_of(st.sampled_from(texts + ["~nosuchuser/x", "a" * 256, "/" + "b/" * 2100]).map(dq),
                        huge_text().map(dq), st.sampled_from(DATES))
    block = st.sampled_from(["|\n    line one\n    line two", ">-\n    folded\n    text", "|+\n    kept\n"])
    # now and then an argv item just under the kernel's limit (and the text around 128 KiB)
    fits = huge_text([4096, 50_000, MAX_ARG_STRLEN - 1]).filter(lambda t: not t.startswith("-")).map(dq)
    return st.one_of(valid, valid, valid, block, fits), invalid


def json_pools():
    valid = st.one_of(st.dictionaries(SAFE_TEXT, st.integers(-5, 5) | SAFE_TEXT | st.booleans(), max_size=3)
                      .map(to_yaml),
                      st.sampled_from(["{}", "\"{}\"", "'{\"a\": 1}'", "'[1, 2]'", "\"plain text\"", "null",
                                       "{use_reentrant: false}", "{a: {b: [1, 2.5, true]}}", "{1: x, 2.5: y}"]))
    invalid = st.one_of(raw_mapping(), st.sampled_from(["'{bad'", "'[1,'", "1", "true", "[a]", "{a: [1, null]}",
                                                        "'{\"a\": NaN}'", "{a: 2024-01-01}", "{null: 1}"]))
    return valid, invalid


def list_of(item: st.SearchStrategy[str], valid: bool) -> st.SearchStrategy[str]:
    item = item.filter(lambda t: "\n" not in t and not t.startswith(("|", ">")))
    flow_list = st.lists(item, min_size=1, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]")
    block_list = st.lists(item, min_size=1, max_size=3).map(
        lambda xs: "\n" + "\n".join(f"    - {x}" for x in xs))
    if valid:
        return st.one_of(flow_list, block_list)
    return st.one_of(flow_list, st.sampled_from(["[]", "[null]", "[[a]]", "[a, [b]]", "[{a: 1}]", "[a, null]"]))


# Flags lorakit checks beyond argparse (lora ranges, batch sizes): values that pass those checks too.
_BATCH = ["1", "2", "\"4\"", "8.0", "0x10", "+2", "\" 3 \"", "\"\u0663\"", str(HUGE_INT)]
CHECKED_VALID = {
    "lora_rank": ["8", "16", "4", "64", "128", "1", "\"8\"", "8.0", "\"\u0668\"", str(10 ** 300)],
    "lora_alpha": ["32", "16", "64.5", "1e3", "\"\u0663\u0662\"", "1.0e-3", str(HUGE_INT)],
    "lora_dropout": ["0", "0.05", "0.5", "\"0.1\"", "0.0", "null"],
    "per_device_train_batch_size": _BATCH, "per_device_eval_batch_size": _BATCH,
    "gradient_accumulation_steps": _BATCH, "global_batch_size": ["null"],
    "learning_rate": ["1.0e-4", "2.0e-5", "0.001", "\"1e-4\"", "5.0e-4", "0.05", "\"\u0660.\u0660\u0660\u0661\""],
    "num_train_epochs": ["1", "3", "0.5", "\"2\"", "1.0e+3"], "max_length": ["2048", "1", "\"512\"", str(HUGE_INT)],
    "split_dataset_ratio": ["0", "0.01", "0.2", "null"], "save_total_limit": ["2", "5", "null"],
    "load_best_model_at_end": ["false", "null", "\"no\""], "max_steps": ["-1", "10", "null"],
}


_HUGE_NUMBER = re.compile(r"\d{300}|0x[0-9a-fA-F]{250}|0b[01]{1000}|(\d+:){100}")


def not_past_a_float(yaml_text: str) -> bool:
    """KNOWN["global_batch_size_beyond_float"]: no integer a float cannot hold (~1.8e308), as a
    number or as text, in a global_batch_size value."""
    return not _HUGE_NUMBER.search(yaml_text)


def value_for(spec, name: str, valid: bool) -> st.SearchStrategy[str]:
    """YAML text for flag `spec` (None: no such flag): argparse-valid only, or anything."""
    if spec is None:
        return any_value()
    kind = spec.type
    if kind == "int":
        good, bad = int_pools(BIG_INTS)
    elif kind == "float":
        good, bad = float_pools()
    elif kind == "bool":
        good, bad = bool_pools()
    elif kind == "json":
        good, bad = json_pools()
    else:
        good, bad = str_pools(spec)
    if spec.nargs in ("+", "*"):
        good, bad = st.one_of(good, list_of(good, True)), st.one_of(bad, list_of(good | bad, False))
    if name in ("dataset", "val_dataset"):  # hub ids and the test's own files, with #N and HF:: forms
        files = [f"{DATA}/{n}" for n in GOOD_DATA]
        good = st.one_of(st.sampled_from(files + [f + "#5" for f in files] + ["AI-ModelScope/alpaca-gpt4-data-en#500"])
                         .map(dq), st.lists(st.sampled_from(files), min_size=1, max_size=3).map(to_yaml))
        if valid:
            return good
        odd = st.sampled_from([f"{DATA}/{n}" for n in [*DATA_FILES, "latin1.jsonl"]]
                              + [f"{DATA}/{n}#0" for n in GOOD_DATA] + [f"{DATA}/{n}#x" for n in GOOD_DATA]
                              + [f"HF::{DATA}/{n}:sub#2" for n in DATA_FILES]
                              + [f"{DATA}/missing.jsonl", f"{DATA}/messages.jsonl/x"]).map(dq)
        odd_list = st.lists(odd, min_size=1, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
        return st.one_of(good, odd, odd, bad, odd_list)
    if name == "model":
        good = st.sampled_from(["Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B", "a/b", dq(LOCAL_MODEL)])
        local = st.sampled_from([dq(LOCAL_MODEL), dq(BROKEN_MODEL), dq(LOCAL_MODEL + "/"), dq("./nosuch-model")])
        return good if valid else st.one_of(good, bad, local, any_value())
    if valid:
        return st.sampled_from(CHECKED_VALID[name]) if name in CHECKED_VALID else good
    return st.one_of(good, bad, bad, any_value())  # (global_batch_size past a float: fixed)


# ---------------------------------------------------------------------------------------------
# Keys

INTERESTING = ["lora_rank", "lora_alpha", "lora_dropout", "use_rslora", "target_modules", "modules_to_save",
               "deepspeed", "fsdp", "gradient_checkpointing", "gradient_checkpointing_kwargs",
               "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
               "save_steps", "eval_steps", "attn_impl", "model", "model_type", "tuner_type", "dataset",
               "torch_dtype", "output_dir", "system", "learning_rate", "num_train_epochs", "max_length",
               "model_kwargs", "device_map", "lazy_tokenize", "eval_metric", "liger_kernel_config"]
INTERESTING = [n for n in INTERESTING if n in FLAGS]
ALL_NAMES = sorted(FLAGS)
OTHER_KEYS = ["global_batch_size", "train_type", "metric", "save_safetensors", "lora_rnak", "lazy", "lora_r",
              "no_gradient_checkpointing", "no_use_rslora", "h", "he", "help", "x", "a-b_c", "Model",
              "LORA_RANK", "mcore_adapters"]
BAD_KEYS = ["a=b", "lora_rank=8", "a b", "lorá", "8bit", "_x", "", "-", "--", "---x", "a.b", "日本",
            "x\0", "null", "2024-01-01"]


@st.composite
def flag_key(draw, valid: bool = False) -> str:
    """A key as a preset/--set/-- might spell it: exact, dashed, --prefixed, abbreviated, negated,
    renamed, misspelt, lorakit's own, or no flag name at all."""
    name = draw(st.sampled_from(INTERESTING) | st.sampled_from(ALL_NAMES))
    spec = FLAGS[name]
    forms = ["name"] * 6 + ["option", "dashes"] + ([] if valid else ["prefix", "negation", "other", "bad"])
    how = draw(st.sampled_from(forms))
    if how == "option":
        option = draw(st.sampled_from(spec.options))
        return option.lstrip("-") if draw(st.booleans()) else option
    if how == "dashes":
        return draw(st.sampled_from(["-", "--"])) + name
    if how == "prefix":
        return name[:draw(st.integers(1, max(1, len(name) - 1)))]
    if how == "negation" and spec.negative_options:
        return draw(st.sampled_from(spec.negative_options)).lstrip("-")
    if how == "other":
        return draw(st.sampled_from(OTHER_KEYS))
    if how == "bad":
        return draw(st.sampled_from(BAD_KEYS))
    return name


GBS_SPEC = swiftflags.FlagSpec("global_batch_size", "int", None, None, None, ("--global_batch_size",))


def spec_of(key: str):
    """(spec, canonical name) the key means to lorakit (None when it names no flag)."""
    name = normalise_arg_key(key)
    if name == "global_batch_size":
        return GBS_SPEC, name
    try:
        canonical, _ = swiftflags.resolve(FLAGS, name)
    except Exception:  # a key lorakit cannot even resolve: the CLI must say so, not us
        return None, name
    return (FLAGS[canonical], canonical) if canonical else (None, name)


# flags whose valid values are too narrow for the pools (unsupported: no value is valid)
NOT_IN_VALID_MODE = {n for n, spec in FLAGS.items() if spec.type == "unsupported"} | {
    "adapters", "resume_from_checkpoint", "custom_dataset_info", "cached_dataset", "deepspeed", "fsdp",
    "fsdp_config", "output_dir", "logging_dir", "model_type", "template",
    "device_map", "max_memory", "hub_token", "tuner_type", "train_type", "ckpt_dir", "external_plugins",
    "custom_register_path", "mcore_model", "ref_model", "reward_model", "teacher_model", "lazy_tokenize"}


@st.composite
def arg_entry(draw, valid: bool = False) -> tuple[str, str]:
    key = draw(flag_key(valid))
    spec, name = spec_of(key)
    if valid and (spec is None or name in NOT_IN_VALID_MODE or any(p in name for p in ("path", "dir", "file"))):
        return key, "null"  # null leaves the flag out: still valid
    return key, draw(value_for(spec, name, valid))


# ---------------------------------------------------------------------------------------------
# launch: and the environment

LAUNCH_VALUES = {
    "gpus": ["\"0\"", "\"0,1\"", "\"0,1,2,3\"", "[0, 1]", "0", "\"0,0\"", "\"\"", "\"\u0663\"", "\"GPU-abc\"",
             "\"MIG-x/y\"", "\" 0 , 1 \"", "0x10", "1e3", ".inf", "null", "true", "2024-01-01", "{a: 1}",
             "[[0]]", "\"-1\"", "\"0,\"", "[0, null]", "\"0,1,2,3,4,5,6,7\"", "\"²\""],
    "nproc_per_node": ["1", "2", "4", "8", "auto", "\"gpus/2\"", "\"gpus/0\"", "\"gpus/\u0663\"", "\"gpus/²\"",
                       "0", "-1", str(HUGE_INT), "\"²\"", "2.0", "2.5", ".nan", "true", "\"8 \"", "null",
                       "\"auto \"", "[2]", "\"gpus/1\"", "\"gpus / 2\"", "\"--8\"", "\"gpus/" + "1" * 4301 + "\""],
    "nnodes": ["1", "2", "\"2\"", "2.0", "0", "-1", str(HUGE_INT), "\"two\"", "2024-01-01", "null", "4", ".inf",
               "\"\u0663\"", "true"],
    "node_rank": ["0", "1", "5", "-1", "\"0\"", "0.0", "\"\u0663\"", "null", str(HUGE_INT), "\"x\"", "[0]",
                  BIG_INT_TEXTS[2]],
    "master_addr": ["\"10.0.0.1\"", "localhost", "\"::1\"", "\"[::1]\"", "\"\"", "\"  \"", "127.0.0.1", "10",
                    "[a]", "\"a b\"", "\"nödé\"", "\"-x\"", "0.0.0.0", "null", "{a: 1}", "\"a\\nb\"",
                    "\"a\\0b\""],  # FOUND["nul_in_master_addr"]
    "master_port": ["29500", "\"29500\"", "0", "70000", "1023", "\"\u0663\u0660\u0660\u0660\u0660\"", "29500.0",
                    ".nan", "true", "null", "0x7000", "\"²\"", str(HUGE_INT), "-1"],
}
ENV_VALUES = ["0", "0,1", "", " ", "-1", "\u0663", "x", "auto", "gpus/2", "2", "10.0.0.1", "29500", "0,0",
              "GPU-abc", str(HUGE_INT), "\udcff"]
ENV_NAMES = list(LAUNCH_VARS) + ["ASCEND_RT_VISIBLE_DEVICES", "MUSA_VISIBLE_DEVICES", "RANK", "WORLD_SIZE",
                                 "TORCHELASTIC_RUN_ID", "RAY_SWIFT_ARGS"]


@st.composite
def launch_entry(draw) -> tuple[str, str]:
    key = draw(st.sampled_from(list(LAUNCH_VALUES)))
    return key, draw(st.sampled_from(LAUNCH_VALUES[key]))


# launch: blocks that pass every check (GPU list, ranks dividing it, nodes with a rank and address)
VALID_LAUNCH = [
    [], [("gpus", "\"0\"")], [("gpus", "\"0,1\""), ("nproc_per_node", "2")],
    [("gpus", "\"0,1,2,3\""), ("nproc_per_node", "auto")], [("gpus", "[0, 1]"), ("nproc_per_node", "\"gpus/2\"")],
    [("gpus", "\"0,1,2,3\""), ("nproc_per_node", "4")], [("gpus", "\" 0 , 1 \""), ("nproc_per_node", "2")],
    [("nnodes", "2"), ("node_rank", "1"), ("master_addr", "\"10.0.0.1\""), ("master_port", "29500")],
    [("nnodes", "1"), ("master_port", "\"29501\"")], [("gpus", "\"GPU-abc\"")],
]


@st.composite
def launch_block(draw, valid: bool) -> list[tuple[str, str]]:
    if valid:
        return draw(st.sampled_from(VALID_LAUNCH))
    return draw(st.lists(launch_entry(), max_size=3, unique_by=lambda e: e[0]))


# ---------------------------------------------------------------------------------------------
# Preset files

BUILTINS = ["single", "zero2", "ddp", "ddp_device_map", "zero3", "merge"]
EXTENDS_ODD = [dq("x\0.yaml"), dq("\0"),  # FOUND["nul_in_preset_path"]
               "\"\"", "nosuch", "\"no such.yaml\"", "./missing.yaml", "\"/dev/null\"", "/", "\"..\"",
               "\"fragments/lora_sft.yaml\"", "[single]", "{a: 1}", "1", "null", "\"日本.yaml\"",
               dq("x" * 300 + ".yaml"), "child.yaml", "./child.yaml", "merge"]


def block(entries: list[tuple[str, str]], indent: str = "  ") -> str:
    out = []
    for key, value in entries:
        if value.startswith("\n"):  # a block sequence
            out.append(f"{indent}{key}:{value}")
        elif value.startswith(("|", ">")):
            out.append(f"{indent}{key}: " + value.replace("\n", "\n" + indent))
        else:
            out.append(f"{indent}{key}: {value}")
    return "\n".join(out)


def flow(entries: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in entries) + "}"


@st.composite
def preset_text(draw, extends: str, valid: bool) -> str:
    top: list[str] = []
    if draw(st.integers(0, 9)) == 0:
        top.append(draw(st.sampled_from(["\ufeff# bom", "%YAML 1.1\n---", "---", "# comment", "\n\n"])))
    if extends:
        top.append(f"extends: {extends}")
    if draw(st.integers(0, 5)) == 0:
        top.append("command: " + (draw(st.sampled_from(["sft", "\"sft\""])) if valid else
                                  draw(st.sampled_from(["sft", "export", "train", "null", "[sft]"]))))
    if draw(st.integers(0, 5)) == 0:
        top.append("description: " + draw(st.sampled_from(
            ["x", dq("d\0"), dq("日本"), "\"\""] + ([] if valid else ["[a]", "1", "null"]))))
    if not valid and draw(st.integers(0, 15)) == 0:
        top.append(draw(st.sampled_from(["bogus: 1", "Args: {}", "null: 1", "2024-01-01: x", "? [a]\n: 1"])))
    launch = draw(launch_block(valid))
    if launch:
        top.append("launch:\n" + block(launch) if draw(st.booleans()) else "launch: " + flow(launch))
    elif not valid and draw(st.integers(0, 15)) == 0:
        top.append("launch: " + draw(st.sampled_from(["", "[]", "\"0,1\"", "1", "{gpu: 0}", "{gpus: }"])))
    args = draw(st.lists(arg_entry(valid), max_size=5, unique_by=lambda e: normalise_arg_key(e[0])))
    if args:
        keyed = [(key_text(k) if valid or draw(st.integers(0, 9)) else k or "\"\"", v) for k, v in args]
        if draw(st.booleans()) or any(v.startswith(("\n", "|", ">")) for _, v in keyed):
            top.append("args:\n" + block(keyed))
        else:
            top.append("args: " + flow(keyed))
    elif draw(st.integers(0, 15)) == 0:
        top.append("args: " + (draw(st.sampled_from(["", "{}"])) if valid else
                               draw(st.sampled_from(["[]", "lora_rank", "{y: 1}", "{1: 2}", "{null: 1}"]))))
    if not valid and draw(st.integers(0, 30)) == 0:
        top = [draw(st.sampled_from(["[]", "- a", "\"text\"", "!!set {a}", "---\na: 1\n---\nb: 2", "\tbad: tab",
                                     "a: b: c", "x: [", "\x07"]))]
    newline = "\r\n" if draw(st.integers(0, 9)) == 0 else "\n"
    return newline.join("\n".join(top).split("\n")) + newline


# ---------------------------------------------------------------------------------------------
# Command lines


def raw_token(yaml_text: str) -> str:
    """An argv token near what a YAML text says (the flags after `--` are not YAML)."""
    try:
        value = yaml.load(yaml_text, Loader=LOADER)
    except Exception:
        return yaml_text
    if isinstance(value, (dict, list)):
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            return yaml_text
    if isinstance(value, bool):
        return "true" if value else "false"
    return yaml_text if not isinstance(value, str) else value


def as_tokens(draw, key: str, value: str, form: str) -> list[str]:
    """One flag after `--` as argv tokens: `--k v`, `--k=v`, a bare `--k`, or `--k v w`."""
    token = raw_token(value).replace("\0", "")
    if form == "equals":
        return [f"--{key.lstrip('-')}={token}"]
    if form == "bare":
        return [f"--{key.lstrip('-')}"]
    if form == "many":
        return [f"--{key}", token, raw_token(draw(st.sampled_from(RAW_ANY))).replace("\0", "")]
    return [f"--{key.lstrip('-')}", token]


@st.composite
def extra_flags(draw, valid: bool) -> list[str]:
    tokens: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        key, value = draw(arg_entry(valid))
        if "\0" in key or (valid and (value == "null" or value.startswith(("\n", "[", "{", "|", ">")))):
            continue  # no argv item holds a NUL; a list or null has no one token
        spec, _ = spec_of(key)
        forms = ["spaced", "spaced", "equals"] + ([] if valid else ["bare", "many"])
        if spec is not None and spec.type == "bool" and spec.nargs == "?":
            forms.append("bare")
        tokens += as_tokens(draw, key, value, draw(st.sampled_from(forms)))
    if not valid and draw(st.integers(0, 12)) == 0:
        tokens.insert(0, draw(st.sampled_from(["stray", "-x", "--", "--=x", "---x", "-- a"])))
    return tokens


ODD_SETS = ["noequals", "=1", "launch.gpu=0", "launch.=1", "args.=1", "a b=1", "lora_rank=", "lora_rank = 8",
            "x==y", "launch.gpus=0,1", "launch.master_addr=a b", "model=a\\0b", "launch.nnodes=2",
            "launch.node_rank=010", "global_batch_size=16", "global_batch_size=7"]


@st.composite
def set_items(draw, valid: bool) -> list[str]:
    items = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["arg", "arg", "arg"] + ([] if valid else ["launch", "odd"])))
        if kind == "arg":
            key, value = draw(arg_entry(valid))
            if value.startswith(("\n", "|", ">")):
                value = "null"
            prefix = draw(st.sampled_from(["", "", "", "args."] + ([] if valid else [" "])))
            items.append(f"{prefix}{key}={value}")
        elif kind == "launch":
            key, value = draw(launch_entry())
            items.append(f"launch.{key}={value}")
        else:
            items.append(draw(st.sampled_from(ODD_SETS)))
    return [item.replace("\0", "") for item in items]  # no argv item holds a NUL byte


# typed options: (option, values); "\udcff" is what Python makes of a non-UTF-8 byte in argv
TYPED = {
    "--model": ["Qwen/Qwen3-8B", "a/b", LOCAL_MODEL, "/", "local", "~/x", "", "日本/語", "-x", BROKEN_MODEL, ".",
                "~nosuchuser/x", "a" * 256, "/" + "b/" * 2100, "caf\udce9"],
    "--dataset": ["AI-ModelScope/alpaca-gpt4-data-en#500", DATA + "/messages.jsonl", "a/b", "a.jsonl", "",
                  "a b", "-x", "[a]", "HF::x/y", DATA + "/odd-rows.jsonl", DATA + "/big.jsonl#3"],
    "--output-dir": ["out", "out dir", "日本", "", "/proc/x", "-x", "/dev/null/x", "\udcff"],
    "--gpus": ["0", "0,1", "0,1,2,3", "", "x", "0,0", "\u0663", "-1", " 0 "],
    "--nproc": ["1", "2", "8", "0", "-1", "x", "1.5", str(HUGE_INT), "\u0663", " 2"],
    "--lora-rank": ["8", "16", "0", "-4", "x", "8.0", str(10 ** 300), "\u0663"],
    "--lora-alpha": ["32", "16.5", "nan", "inf", "-1", "x", "1e400", "\u0663"],
    "--target-modules": ["q_proj,v_proj", "all-linear", "[q_proj,k_proj]", "q_proj v_proj", "", "nosuch"],
}
VALID_TYPED = {"--model": 3, "--dataset": 3, "--output-dir": 3, "--gpus": 1, "--nproc": 1, "--lora-rank": 2,
               "--lora-alpha": 2, "--target-modules": 3}  # how many of the first values always pass


@st.composite
def typed_options(draw, valid: bool) -> list[str]:
    out: list[str] = []
    options = [o for o in TYPED if not (valid and o in ("--nproc", "--gpus"))]
    for option in draw(st.lists(st.sampled_from(options), max_size=3, unique=True)):
        values = TYPED[option][:VALID_TYPED[option]] if valid else TYPED[option]
        for _ in range(2 if option == "--dataset" and draw(st.booleans()) else 1):
            out += [option, draw(st.sampled_from(values))]
    return out


@dataclass
class Case:
    child: str  # the -p file's text ("" with `builtin`: -p names a built-in preset)
    parent: str | None = None  # parent.yaml's text, when child extends it
    builtin: str | None = None
    sets: list[str] = field(default_factory=list)
    typed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    swift_version: str | None = None
    node_rank: str | None = None
    fmt: str | None = None  # another --format to render an exit-0 job in (sh is checked with bash -n)
    target: str | None = None  # -p names an odd file instead: "bytes" (not UTF-8), "dir", "/dev/null"


@st.composite
def cases(draw) -> Case:
    valid = draw(st.integers(0, 9)) < 5  # half: argparse-valid values and launch layouts only
    shape = draw(st.sampled_from(["file", "file", "chain", "builtin"]))
    base = draw(st.sampled_from(BUILTINS[:4]))
    case = Case(child="")
    if shape == "builtin":
        case.builtin = base
    elif shape == "chain":
        parent_extends = base if valid or draw(st.integers(0, 5)) else draw(st.sampled_from(EXTENDS_ODD))
        case.parent = draw(preset_text(parent_extends, valid))
        case.child = draw(preset_text(draw(st.sampled_from(["parent.yaml", "./parent.yaml"])), valid))
    else:
        extends = base if valid or draw(st.integers(0, 5)) else draw(st.sampled_from(EXTENDS_ODD))
        case.child = draw(preset_text(extends, valid))
    case.sets = draw(set_items(valid))
    case.typed = draw(typed_options(valid))
    case.extra = draw(extra_flags(valid))
    if not valid and draw(st.integers(0, 4)) == 0:
        case.env = draw(st.dictionaries(st.sampled_from(ENV_NAMES), st.sampled_from(ENV_VALUES), max_size=3))
    elif valid and draw(st.integers(0, 4)) == 0:  # ms-swift's own `CUDA_VISIBLE_DEVICES=0,1 NPROC_PER_NODE=2`
        case.env = draw(st.sampled_from([{"CUDA_VISIBLE_DEVICES": "0,1", "NPROC_PER_NODE": "2"},
                                         {"RANK": "0", "WORLD_SIZE": "2"}, {"TORCHELASTIC_RUN_ID": "x"},
                                         {"ASCEND_RT_VISIBLE_DEVICES": "0"}, {"MASTER_PORT": "29501"}]))
    case.strict = draw(st.integers(0, 7)) == 0
    if draw(st.integers(0, 5)) == 0:
        case.swift_version = draw(st.sampled_from(["3", "4", "4.6.0", " 3 ", "\u0663"] + (
            [] if valid else ["3.12", "5", "x", ""])))
    if not valid and draw(st.integers(0, 7)) == 0:
        case.node_rank = draw(st.sampled_from(["0", "1", "-1", "x", str(HUGE_INT)]))
    case.fmt = draw(st.sampled_from([None, None, "sh", "sbatch", "swift-yaml", "all-nodes"]))
    if not valid and draw(st.integers(0, 30)) == 0:
        case.target = draw(st.sampled_from(["bytes", "utf16", "dir", "/dev/null"]))
    return case


# ---------------------------------------------------------------------------------------------
# Running one case, and the property


def write_fixtures(folder: Path) -> dict[str, str]:
    """A one-layer Qwen2-style model dir (config.json + a safetensors header, no torch needed)
    and one whose config.json is not JSON."""
    # named like a registered ms-swift model, so its model_type is known from the name
    good, broken = folder / "Qwen2.5-0.5B-Instruct", folder / "broken-model"
    good.mkdir(exist_ok=True)
    broken.mkdir(exist_ok=True)
    config = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 8,
              "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
              "num_key_value_heads": 1, "vocab_size": 32, "max_position_embeddings": 64,
              "tie_word_embeddings": False, "torch_dtype": "float32"}
    shapes = {"model.embed_tokens.weight": [32, 8], "model.layers.0.self_attn.q_proj.weight": [8, 8],
              "model.layers.0.self_attn.k_proj.weight": [4, 8], "model.layers.0.self_attn.v_proj.weight": [4, 8],
              "model.layers.0.self_attn.o_proj.weight": [8, 8], "model.layers.0.mlp.gate_proj.weight": [16, 8],
              "model.layers.0.mlp.up_proj.weight": [16, 8], "model.layers.0.mlp.down_proj.weight": [8, 16],
              "model.norm.weight": [8], "lm_head.weight": [32, 8]}
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4 * (shape[0] * (shape[1] if len(shape) > 1 else 1))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    body = json.dumps(header).encode()
    (good / "config.json").write_text(json.dumps(config))
    (good / "model.safetensors").write_bytes(struct.pack("<Q", len(body)) + body + b"\0" * offset)
    (broken / "config.json").write_text("{not json")
    data = folder / "data"
    data.mkdir(exist_ok=True)
    for name, text in DATA_FILES.items():
        (data / name).write_text(text, encoding="utf-8", newline="")
    (data / "latin1.jsonl").write_bytes(b'{"query": "caf\xe9", "response": "r"}\n')
    return {LOCAL_MODEL: str(good), BROKEN_MODEL: str(broken), DATA: str(data)}


def _placed(text: str, paths: dict[str, str]) -> str:
    for marker, path in paths.items():
        text = text.replace(marker, path)
    return text


def write_case(case: Case, folder: Path, paths: dict[str, str]) -> str:
    if case.target == "/dev/null":
        return case.target
    if case.target == "dir":
        return str(folder)
    if case.target in ("bytes", "utf16"):
        path = folder / "odd.yaml"
        data = case.child.encode("utf-16") if case.target == "utf16" else b"extends: single\nargs: {system: \xff\xfe}\n"
        path.write_bytes(data)
        return str(path)
    if case.builtin is not None:
        return case.builtin
    if case.parent is not None:
        (folder / "parent.yaml").write_text(_placed(case.parent, paths), encoding="utf-8", newline="")
    path = folder / "child.yaml"
    path.write_text(_placed(case.child, paths), encoding="utf-8", newline="")
    return str(path)


def _with_paths(case: Case, paths: dict[str, str]) -> Case:
    return Case(case.child, case.parent, case.builtin, [_placed(x, paths) for x in case.sets],
                [_placed(x, paths) for x in case.typed], [_placed(x, paths) for x in case.extra],
                dict(case.env), case.strict, case.swift_version, case.node_rank, case.fmt, case.target)


def shared_args(case: Case) -> list[str]:
    out = list(case.typed)
    for item in case.sets:
        out += ["--set", item]
    if case.strict:
        out.append("--strict")
    if case.swift_version is not None:
        out += ["--swift-version", case.swift_version]
    return out


def is_machine_finding(code: str) -> bool:
    """Findings about the machine lorakit runs on, which a dry-run leaves out (facts.here)."""
    return code.startswith("env.") or code == "nodes.master_port.busy"


BASH = shutil.which("bash")
SEEN_VARS = sorted({*LAUNCH_VARS, "ASCEND_RT_VISIBLE_DEVICES", "MUSA_VISIBLE_DEVICES"})
PRELUDE = (
    "env() { while [ \"$1\" = -u ]; do shift 2; done\n"
    "  while [[ \"$1\" == *=* ]]; do export \"$1\"; shift; done; \"$@\"; }\n"
    "swift() { printf '%s\\0' \"$#\" swift \"$@\"\n"
    "  for v in " + " ".join(SEEN_VARS) + "; do\n"
    "    if [ -n \"${!v+x}\" ]; then printf '%s=%s\\0' \"$v\" \"${!v}\"; fi; done; }\n"
)


def parse_like_bash(text: str) -> tuple[list[str], dict[str, str]]:
    """The argv and launch env that pasting `text` into bash would run `swift` with."""
    if BASH is None:  # no bash: shlex, dropping the line continuations it keeps as '\n' words
        words = [w for w in shlex.split(text) if w != "\n"]
        env = {}
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0], re.S):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        return words, env
    script = (PRELUDE + text).encode("utf-8", "surrogateescape")
    assert subprocess.run([BASH, "-n"], input=script, capture_output=True, timeout=60).returncode == 0
    done = subprocess.run([BASH, "--norc", "--noprofile"], input=script, capture_output=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"})
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode(errors="replace")[-2000:]
    parts = done.stdout.decode("utf-8", "surrogateescape").split("\0")
    count = int(parts[0])
    argv, rest = parts[1:count + 2], [p for p in parts[count + 2:] if p]
    return argv, dict(p.split("=", 1) for p in rest)


def check_common(result, what: str) -> None:
    assert result.code in (0, 2), f"{what}: exit {result.code}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, f"{what}:\n{result.stderr[-3000:]}"
    for stream in (result.stdout, result.stderr):
        stream.encode("utf-8", "surrogateescape")  # no lone surrogate a real stream could not write


def check_case(case: Case, folder: Path, paths: dict[str, str]) -> None:
    preset = write_case(case, folder, paths)
    case = _with_paths(case, paths)
    train_only = [] if case.node_rank is None else ["--node-rank", case.node_rank]
    tail = ["--", *case.extra] if case.extra else []
    argv = ["train", "-p", preset, "--dry-run", *shared_args(case), *train_only, *tail]
    train = run_cli(argv, env=case.env)
    check_common(train, "train --dry-run")
    if train.code == 2:
        assert train.stdout == "", "exit 2 must print no command"
    else:
        text = train.stdout
        assert text.strip(), "exit 0 must print the command"
        assert "\0" not in text, "a NUL byte in the dry-run text: no shell can carry it"
        words, env = parse_like_bash(text)
        assert words[:2] == ["swift", "sft"], words[:4]
        for word in words:
            assert len(word.encode("utf-8", "surrogateescape")) < MAX_ARG_STRLEN, f"argv item {word[:60]!r}..."
        as_json = run_cli(argv[:4] + ["--format", "json"] + argv[4:], env=case.env)
        check_common(as_json, "train --dry-run --format json")
        assert as_json.code == 0, as_json.stderr[-2000:]
        launch = json.loads(as_json.stdout)
        assert words == launch["argv"], "the text and --format json disagree on argv"
        assert env == {k: v for k, v in launch["env"].items() if k in SEEN_VARS}, (env, launch["env"])
        if case.fmt is not None:  # the other formats of the same job: no traceback, and sh parses
            option = ["--all-nodes"] if case.fmt == "all-nodes" else ["--format", case.fmt]
            other = run_cli(argv[:4] + option + argv[4:], env=case.env)
            check_common(other, f"train --dry-run {' '.join(option)}")
            if other.code == 0 and case.fmt == "sh" and BASH is not None:
                script = other.stdout.encode("utf-8", "surrogateescape")
                assert "\0" not in other.stdout
                syntax = subprocess.run([BASH, "-n"], input=script, capture_output=True, timeout=60)
                assert syntax.returncode == 0, syntax.stderr.decode(errors="replace")
    validate = run_cli(["validate", "-p", preset, "--json", *shared_args(case), *tail], env=case.env)
    check_common(validate, "validate --json")
    payload = json.loads(validate.stdout)  # FOUND["validate_json_usage_error"]: JSON even when refused
    assert payload["ok"] is (validate.code == 0), (payload["ok"], validate.code)
    assert all({"level", "code", "message"} <= set(f) for f in payload["findings"])
    if train.code == 0 and case.node_rank is None and validate.code != 0:
        # validate also judges this machine (a dry-run renders for another one): only those may differ
        levels = ("error", "warning") if case.strict else ("error",)
        blocking = {f["code"] for f in payload["findings"] if f["level"] in levels}
        assert all(is_machine_finding(code) for code in blocking), f"train --dry-run passed, validate: {blocking}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("never_traceback")
    return folder, write_fixtures(folder)


@settings(max_examples=150, deadline=None, derandomize=True, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example, HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_any_input_exits_0_or_2_and_a_dry_run_is_a_command(workdir, case):
    folder, paths = workdir
    check_case(case, Path(tempfile.mkdtemp(dir=folder)), paths)


# ---------------------------------------------------------------------------------------------
# Explicit examples: the brief's odd values, each through the same property (these pass today)

ODD_EXAMPLES = [
    ["max_length=\"²\""], ["max_length=\"\u0663\""], ["max_length=\"--8\""], ["max_length=+8"],
    ["max_length=' 8 '"], ["learning_rate=.nan"], ["learning_rate=.inf"], [f"max_length={HUGE_INT}"],
    ["system=2024-01-01"], ["system=2024-01-01T12:00:00Z"], ["model_kwargs={2024-01-01: 1}"],
    ["model_kwargs={null: 1, true: 2, 1.5: 3}"], ["dataset=&a [*a]"], ["eval_strategy=no"], ["max_length=0x10"],
    ["max_length=1e3"], ["learning_rate=1e3"], ["system=\"a\\0b\""], ["system=\"--x=y z\""], ["system=-x"],
    ["lora_rank=8=9"], ["a=b=1"], ["launch.gpus=\u0663"], ["launch.nproc_per_node=gpus/\u0663"],
    ["launch.master_port=0x7000"], [f"launch.nnodes={HUGE_INT}", "launch.node_rank=0"],
    ["system=\"" + "x" * (MAX_ARG_STRLEN - 1) + "\""], ["system=\"" + "x" * MAX_ARG_STRLEN + "\""],
    ["system=\"" + "é" * (MAX_ARG_STRLEN // 2) + "\""], ["system=\"" + "x" * 200_000 + "\""],
    ["model_kwargs=" + "[" * 100 + "]" * 100],
    ["dataset=[" + ", ".join(["d" * 12_000] * 200) + "]"],  # 2.4 MB: past ARG_MAX, argv.too_long
]


@pytest.mark.parametrize("sets", ODD_EXAMPLES, ids=lambda sets: repr(sets)[:60])
def test_odd_values_exit_0_or_2(workdir, sets):
    folder, paths = workdir
    check_case(Case(child="", builtin="single", sets=sets), Path(tempfile.mkdtemp(dir=folder)), paths)


def test_flags_after_dashdash_and_odd_keys(workdir):
    folder, paths = workdir
    for extra in (["--max_length", "\u0663"], ["--max_length", "²"], ["--system", "--x=y z"], ["--lora_r", "8"],
                  ["--no_use_rslora"], ["--=x"], ["--lora rank", "8"], ["--lorá", "1"], ["--use_rslora"]):
        check_case(Case(child="", builtin="single", extra=extra), Path(tempfile.mkdtemp(dir=folder)), paths)


# ---------------------------------------------------------------------------------------------
# The crashes this test found (FOUND), fixed in 37e3b0b, 9f37971, 12e36f8: each, in its smallest form,
# must stay an exit 0 or 2 with a message. The ids are FOUND's names.

def known(name: str):
    """An xfail for a KNOWN problem that is not fixed: strict, and only for the failure it is."""
    return pytest.mark.xfail(strict=True, raises=RAISES[name], reason=f"KNOWN[{name!r}]: {KNOWN[name]}")


# KNOWN name -> what its example raises until it is fixed (any other failure is a real one)
RAISES: dict[str, type | tuple] = {"global_batch_size_beyond_float": OverflowError}
assert set(RAISES) == set(KNOWN)


def _digits(n: int) -> str:
    return "1" + "0" * (n - 1)


FOUND_EXAMPLES = [
    pytest.param(Case("", builtin="single", typed=["--model", "~nosuchuser_lorakit/x"]),
                 id="model_path_oserror:model-tilde-unknown-user"),
    pytest.param(Case("", builtin="single", sets=["model=" + "a" * 256]),
                 id="model_path_oserror:model-name-256-bytes"),
    pytest.param(Case("", builtin="single", typed=["--model", "/" + "b/" * 2100]),
                 id="model_path_oserror:model-path-over-4k"),
    pytest.param(Case("extends: \"x\\0.yaml\"\n"), id="nul_in_preset_path:extends-nul"),
    pytest.param(Case("", builtin="single", sets=["max_length=" + _digits(4301)]),
                 id="yaml_int_over_4300_digits:set-4301-digits"),
    pytest.param(Case("extends: single\nargs: {max_length: " + _digits(4301) + "}\n"),
                 id="yaml_int_over_4300_digits:file-4301-digits"),
    pytest.param(Case("", builtin="single", sets=["max_length=0x1" + "0" * 3600]),
                 id="int_too_long_to_print:hex-int-flag"),
    pytest.param(Case("", builtin="single", sets=["launch.node_rank=0x1" + "0" * 3600]),
                 id="int_too_long_to_print:hex-node-rank"),
    pytest.param(Case("", builtin="single", sets=["launch.master_port=0x1" + "0" * 3600]),
                 id="int_too_long_to_print:hex-master-port"),
    pytest.param(Case("", builtin="single", sets=["model_kwargs={a: 0x1" + "0" * 3600 + "}"]),
                 id="int_too_long_to_print:hex-in-json-mapping"),
    pytest.param(Case("", builtin="single", sets=["per_device_train_batch_size=" + _digits(2200),
                                                  "gradient_accumulation_steps=" + _digits(2200)]),
                 id="int_too_long_to_print:global-batch-product"),
    pytest.param(Case("", builtin="single", sets=["launch.nproc_per_node=gpus/" + _digits(4301)]),
                 id="int_too_long_to_print:nproc-rule-digits"),
    pytest.param(Case("", builtin="single", sets=["lora_rank=" + _digits(309)]),
                 id="lora_rank_beyond_float:lora-rank-1e308"),
    pytest.param(Case("", builtin="single", sets=["launch.nnodes=" + _digits(401), "global_batch_size=null",
                                                  "gradient_accumulation_steps=null"]),
                 id="world_size_beyond_float:nnodes-1e400"),
    pytest.param(Case("", builtin="single", typed=["--dataset", DATA + "/bigint.jsonl"]),
                 id="dataset_json_int_over_4300_digits:dataset-jsonl-4301-digits"),
    pytest.param(Case("", builtin="single", typed=["--dataset", DATA + "/bigint.json"]),
                 id="dataset_json_int_over_4300_digits:dataset-json-array-4301-digits"),
    pytest.param(Case("", builtin="ddp", sets=["gradient_checkpointing_kwargs={2024-01-01: 1}"]),
                 id="ddp_gc_kwargs_not_json:ddp-gc-kwargs-date-key"),
    pytest.param(Case("", builtin="ddp", sets=["gradient_checkpointing_kwargs={a: !!binary aGk=}"]),
                 id="ddp_gc_kwargs_not_json:ddp-gc-kwargs-binary"),
    pytest.param(Case("", builtin="single", sets=["system=2024-02-30"]),
                 id="yaml_constructor_errors:set-feb-30"),
    pytest.param(Case("extends: single\nargs: {system: 2024-13-01}\n"),
                 id="yaml_constructor_errors:file-month-13"),
    pytest.param(Case("", builtin="single", sets=["max_length=!!int \"x\""]),
                 id="yaml_constructor_errors:tag-int-x"),
    pytest.param(Case("", builtin="single", sets=["max_length=!!int \"\""]),
                 id="yaml_constructor_errors:tag-int-empty"),
    pytest.param(Case("", builtin="single", sets=["use_rslora=!!bool \"x\""]),
                 id="yaml_constructor_errors:tag-bool-x"),
    pytest.param(Case("", builtin="single", sets=["system=!!timestamp x"]),
                 id="yaml_constructor_errors:tag-timestamp-x"),
    pytest.param(Case("extends: single\nargs: {model_kwargs: " + "[" * 800 + "]" * 800 + "}\n"),
                 id="deep_nesting:file-800-deep"),
    pytest.param(Case("extends: single\nargs: {model_kwargs: " + "[" * 2000 + "]" * 2000 + "}\n"),
                 id="deep_nesting:file-2000-deep-pure-yaml"),
    pytest.param(Case("", builtin="single", sets=["model_kwargs=" + "[" * 2000 + "]" * 2000]),
                 id="deep_nesting:set-2000-deep"),
    pytest.param(Case("", builtin="single", sets=["model_kwargs=\"" + "[" * 5000 + "\""]),
                 id="deep_json_text:json-flag-text"),
    pytest.param(Case("", builtin="ddp", sets=["gradient_checkpointing_kwargs=\"" + "[" * 5000 + "\""]),
                 id="deep_json_text:gc-kwargs-text"),
    pytest.param(Case("", builtin="single", sets=["deepspeed=\"{\\\"a\\\": " + "[" * 5000 + "\""]),
                 id="deep_json_text:deepspeed-inline"),
    pytest.param(Case("", builtin="single", sets=["system=\"\\ud800\""]),
                 id="yaml_surrogate_escape:set-surrogate"),
    pytest.param(Case("extends: single\nargs: {system: \"\\ud83d\\ude00\"}\n"),
                 id="yaml_surrogate_escape:file-surrogate-pair"),
    pytest.param(Case("extends: single\nlaunch: {master_addr: \"a\\0b\"}\n"),
                 id="nul_in_master_addr:master-addr-nul"),
]


assert {p.id.split(":")[0] for p in FOUND_EXAMPLES} | {"non_utf8_argv_strict_stdout", "validate_json_usage_error"} \
    == set(FOUND)


@pytest.mark.parametrize("case", FOUND_EXAMPLES)
def test_a_crash_found_stays_fixed(workdir, case):
    folder, paths = workdir
    try:
        check_case(case, Path(tempfile.mkdtemp(dir=folder)), paths)
    except RecursionError as exc:  # a thousand frames are slow to report and say nothing more
        raise exc.with_traceback(None) from None


@pytest.mark.parametrize("sets", [["global_batch_size=" + _digits(310)],
                                  ["global_batch_size=" + _digits(401), "per_device_train_batch_size=2"]])
def test_a_global_batch_past_a_float(workdir, sets):
    folder, paths = workdir
    check_case(Case("", builtin="single", sets=sets), Path(tempfile.mkdtemp(dir=folder)), paths)


def test_non_utf8_argv_with_a_strict_stdout(tmp_path):
    """FOUND["non_utf8_argv_strict_stdout"]: the real stdout, strict UTF-8, in a subprocess."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "PYTHONUTF8": "0", "LC_ALL": "C.UTF-8",
           "HOME": str(tmp_path), "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-m", "lorakit", "train", "-p", "single", "--dry-run", "--", "--system",
                           os.fsdecode(b"\xff")], capture_output=True, env=env, timeout=120, cwd=REPO)
    assert done.returncode in (0, 2) and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")[-1500:]


@pytest.mark.parametrize("args", [["--nproc", "x"], ["--set", "---x=null"], ["--dryrun"]])
def test_validate_json_is_json_even_for_a_usage_error(args):
    """FOUND["validate_json_usage_error"]: a command line refused before validate runs is JSON too."""
    result = run_cli(["validate", "-p", "single", "--json", *args])
    assert result.code == 2, result.stderr
    payload = json.loads(result.stdout)
    assert payload["ok"] is False and payload["findings"][0]["level"] == "error"
