"""The parts of bash that compute or that bashlex cannot parse: `$((…))`, `$(expr …)`, and the
masks that let bashlex read a script holding `$((…))` or `[[ … ]]` with every position intact."""

from __future__ import annotations

import ast
import re
from typing import Mapping


def closing(raw: str, i: int) -> int:
    """The index after the ')' that closes the '(' at raw[i]."""
    depth = 0
    while i < len(raw):
        if raw[i] == "(":
            depth += 1
        elif raw[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(raw)


_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.FloorDiv: lambda a, b: int(a / b), ast.Mod: lambda a, b: a - b * int(a / b)}


def arithmetic(expr: str, variables: Mapping[str, str]) -> int | None:
    """bash's $((…)) for + - * / % over integers and the script's variables; None otherwise.
    bash's '/' truncates toward zero (as C), hence int(a / b) rather than Python's //."""
    text = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", r"\1", expr).replace("/", "//")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError):  # `$((1+1+…))` 50,000 deep: Python's parser gives up
        return None

    def value(node: ast.AST) -> int | None:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name):
            found = variables.get(node.id, "")
            return int(found) if re.fullmatch(r"-?\d{1,18}", found.strip()) else None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = value(node.operand)
            return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = value(node.left), value(node.right)
            if left is None or right is None or (right == 0 and type(node.op) in (ast.FloorDiv, ast.Mod)):
                return None
            return _OPS[type(node.op)](left, right)
        return None

    try:
        return value(tree.body)
    except RecursionError:
        return None


# `[[ … ]]` on one line, where a command may start; bashlex reads `[[` as a command and then fails
# on `-f` or `&&` inside it
_TEST = re.compile(r"(?<![^\s;&|(!])\[\[(?=\s)[^\n]*?\s\]\](?=[\s;&|)]|$)")


def mask_unsupported(text: str) -> str:
    """What bashlex cannot parse, masked with as many characters, so that every position it reports
    still points into the script: `[[ … ]]` (a condition: lorakit reads both branches anyway)
    becomes `true` and spaces, `$((…))` a variable name (`expand` reads it from the script)."""
    text = _TEST.sub(lambda m: "true" + " " * (len(m.group(0)) - 4), text)
    return mask_arithmetic(text)


def mask_arithmetic(text: str) -> str:
    """bashlex cannot parse `$((…))` (NotImplementedError: arithmetic expansion): the same number
    of characters, as a variable name, so every position bashlex reports still points into the
    script (the expansion itself is read from the script's text by `expand`)."""
    out, i = [], 0
    while True:
        at = text.find("$((", i)
        if at < 0:
            out.append(text[i:])
            return "".join(out)
        end = closing(text, at + 1)
        body = text[at:end]
        out.append(text[i:at] + "$" + "".join("\n" if c == "\n" else "_" for c in body[1:]))
        i = end
