"""One shell word, as bash expands it: braces, quote removal, `$'…'`, `$VAR` / `${VAR}`, field splitting.

bashlex finds the words and commands of a script but does not expand them (and reads `$'a\\tb'`
as `$atb`), so the text of each word is expanded here from the script's own characters. Only
what a script can know is expanded: variables the script itself set earlier, and `$((…))` /
`$(expr …)` over them (shellmath.py). Anything else (`$(cmd)`, backticks, `$HOME`, `${X/a/b}`) is kept as written and named as
unresolved, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from lorakit.shellmath import arithmetic, closing as _closing

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ${1:-word} / ${2-word}: what _braced gives a script argument that has a default
ARGUMENT_DEFAULT = re.compile(r"\$\{([1-9][0-9]*):?-([^}$`]*)\}")
IFS = " \t\n"

# bash's $'…' escapes (bash(1), QUOTING: ANSI-C Quoting)
_ANSI = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
         "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}


@dataclass
class Expanded:
    fields: list[str]
    unresolved: list[str] = field(default_factory=list)  # what was kept as written: '$OUT', '$(date)'
    pattern: bool = False  # an unquoted * ? [ : bash replaces the word by the files it matches, if any
    tilde: bool = False  # an unquoted leading ~ : bash writes $HOME there


class _Builder:
    """Pieces of one word: (text, may bash split it) — only unquoted expansions split."""

    def __init__(self) -> None:
        self.fields: list[str] = []
        self.current: list[str] = []
        self.started = False  # a quoted "" makes a field even when empty

    def add(self, text: str, *, split: bool = False) -> None:
        if not split:
            self.current.append(text)
            self.started = True
            return
        parts = re.split(f"[{IFS}]+", text)
        for i, part in enumerate(parts):
            if i > 0 and (self.started or self.current):
                self.flush()
            if part:
                self.current.append(part)
                self.started = True

    def flush(self) -> None:
        self.fields.append("".join(self.current))
        self.current, self.started = [], False

    def done(self) -> list[str]:
        if self.started or self.current:
            self.flush()
        return self.fields


def expand(raw: str, variables: Mapping[str, str], *, split: bool = True) -> Expanded:
    """`raw` is one word as written in the script; `split=False` for an assignment's value
    (bash does neither brace expansion nor field splitting there)."""
    alternatives = _braces(raw) if split else None
    if alternatives is not None:  # bash expands braces first, then each word as usual
        parts = [expand(alt, variables) for alt in alternatives]
        return Expanded([f for p in parts for f in p.fields], [u for p in parts for u in p.unresolved],
                        any(p.pattern for p in parts), any(p.tilde for p in parts))
    out, unresolved = _Builder(), []
    bare: list[str] = []  # the unquoted characters, where bash looks for * ? [ … ]
    tilde = split and raw[:1] == "~" and (len(raw) == 1 or raw[1] == "/")
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch == "\\":
            if raw[i + 1:i + 2] == "\n":
                i += 2  # a line continuation inside a word
                continue
            out.add(raw[i + 1:i + 2])
            i += 2
        elif ch == "'":
            end = raw.find("'", i + 1)
            end = n if end < 0 else end
            out.add(raw[i + 1:end])
            i = end + 1
        elif raw.startswith("$'", i):
            text, i = _ansi_c(raw, i + 2)
            out.add(text)
        elif ch == '"':
            text, i = _double_quoted(raw, i + 1, variables, unresolved)
            out.add(text)
        elif ch == "$" or ch == "`":
            text, i, known = _dollar(raw, i, variables)
            if not known:
                unresolved.append(text)
            out.add(text, split=split and known)
        else:
            bare.append(ch)
            out.add(ch)
            i += 1
    fields = out.done()
    pattern = split and bool(re.search(r"[*?]|\[.*\]", "".join(bare)))
    return Expanded(fields if split else ["".join(fields)], unresolved, pattern, tilde)


def _braces(raw: str) -> list[str] | None:
    """bash's brace expansion of the first unquoted `{a,b}` or `{1..3}` group in `raw`, as the
    words it becomes (still to be expanded), or None when there is none. `${…}` is not one."""
    quote, depth, start, commas, i = "", 0, -1, [], 0
    while i < len(raw):
        ch = raw[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote[-1]:
                quote = ""
        elif ch == "\\":
            i += 1
        elif ch in "'\"":
            quote = "$'" if ch == "'" and raw[i - 1:i] == "$" else ch
        elif ch == "{" and raw[i - 1:i] != "$":
            if depth == 0:
                start, commas = i, []
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                inner = raw[start + 1:i]
                head, tail = raw[:start], raw[i + 1:]
                if commas:
                    cuts = [start, *commas, i]
                    return [head + raw[a + 1:b] + tail for a, b in zip(cuts, cuts[1:])]
                seq = re.fullmatch(r"(-?\d+)\.\.(-?\d+)", inner)
                if seq:
                    a, b = int(seq.group(1)), int(seq.group(2))
                    step = 1 if b >= a else -1
                    return [head + str(n) + tail for n in range(a, b + step, step)]
        elif ch == "," and depth == 1:
            commas.append(i)
        i += 1
    return None


def _ansi_c(raw: str, i: int) -> tuple[str, int]:
    text: list[str] = []
    while i < len(raw) and raw[i] != "'":
        if raw[i] == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt in _ANSI:
                text.append(_ANSI[nxt])
                i += 2
                continue
            digits = re.match(r"x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}", raw[i + 1:])
            if digits:
                code = digits.group(0)
                text.append(chr(int(code, 8) if code[0].isdigit() else int(code[1:], 16)))
                i += 1 + len(code)
                continue
        text.append(raw[i])
        i += 1
    return "".join(text), i + 1


def _double_quoted(raw: str, i: int, variables: Mapping[str, str], unresolved: list[str]) -> tuple[str, int]:
    text: list[str] = []
    while i < len(raw) and raw[i] != '"':
        ch = raw[i]
        if ch == "\\" and raw[i + 1:i + 2] in ("$", "`", '"', "\\", "\n"):
            text.append("" if raw[i + 1] == "\n" else raw[i + 1])  # bash: only these are escapes in "…"
            i += 2
        elif ch in "$`":
            value, i, known = _dollar(raw, i, variables)
            if not known:
                unresolved.append(value)
            text.append(value)
        else:
            text.append(ch)
            i += 1
    return "".join(text), i + 1


def _dollar(raw: str, i: int, variables: Mapping[str, str]) -> tuple[str, int, bool]:
    """One expansion at raw[i] -> (its value, or its text when unknown; the index after; known)."""
    if raw[i] == "`":
        end = raw.find("`", i + 1)
        end = len(raw) - 1 if end < 0 else end
        return raw[i:end + 1], end + 1, False
    if raw.startswith("$((", i):
        end = _closing(raw, i + 1)
        value = arithmetic(raw[i + 3:end - 2], variables)
        return (raw[i:end], end, False) if value is None else (str(value), end, True)
    if raw.startswith("$(", i):
        end = _closing(raw, i + 1)
        value = _expr(raw[i + 2:end - 1], variables)
        return (raw[i:end], end, False) if value is None else (str(value), end, True)
    if raw.startswith("${", i):
        end = raw.find("}", i)
        end = len(raw) - 1 if end < 0 else end
        text = raw[i:end + 1]
        value = _braced(text, variables)
        return value, end + 1, raw[i + 2:end] in variables or value != text
    name = NAME.match(raw, i + 1)
    if not name:
        if i + 1 < len(raw) and raw[i + 1] in "0123456789@*#?$!-":
            return raw[i:i + 2], i + 2, False  # positional and special parameters: only bash knows
        return "$", i + 1, True  # a lone '$' is itself
    var = name.group(0)
    if var in variables:
        return variables[var], name.end(), True
    return raw[i:name.end()], name.end(), False


def _expr(body: str, variables: Mapping[str, str]) -> int | None:
    """`$(expr 16 / $nproc_per_node)`, as ms-swift's own examples compute gradient_accumulation_steps:
    integer arithmetic over numbers and the script's variables; any other command is not run."""
    words = body.split()
    if len(words) < 2 or words[0] != "expr":
        return None
    items = []
    for word in words[1:]:
        if word in ("+", "-", "\\*", "'*'", "/", "%", "(", ")", "\\(", "\\)"):
            items.append(word.strip("'\\"))
        else:
            value = expand(word, variables).fields
            if len(value) != 1 or not re.fullmatch(r"-?\d+", value[0]):
                return None
            items.append(value[0])
    return arithmetic(" ".join(items), {})


def _braced(text: str, variables: Mapping[str, str]) -> str:
    """${VAR}, and the defaults ${VAR:-word} / ${VAR-word}; any other operator stays as written."""
    inner = text[2:-1]
    if inner in variables:
        return variables[inner]
    # `MODEL=${1:-Qwen/Qwen2.5-7B-Instruct}`: a script argument with a default, as users' scripts
    # take one; run without arguments (as the import reads it) bash gives the default
    found = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*|[1-9][0-9]*)(:?)-(.*)", inner, flags=re.S)
    if found:
        var, colon, word = found.groups()
        value = variables.get(var)
        if value is not None and not (colon and value == ""):
            return value
        if "$" not in word and "`" not in word:
            return word
    return text
