"""The classic ways an ms-swift shell script runs other than it reads, each with its line.

Found from the commands bash itself would run (shellscript.parse_commands) and the script's
lines: what bash does is the reading; what the writer meant is only the hint.
  - a blank line inside a `\\` continuation ends the command (ms-swift #5328: the flags after it
    and, above `swift`, the env prefix were silently dropped; the run fell into device_map mode);
  - a comment line inside one ends it too (a comment runs to the newline; its `\\` is comment text);
  - a space after the `\\` escapes the space, not the newline: `' '` becomes an argument;
  - a missing `\\` (#4513): the next line, `--flag …`, is a command of its own;
  - Windows line endings: `\\` then a carriage return continues nothing;
  - `NPROC_PER_NODE=…` after `swift sft` (#3681) is an argument, not the environment;
  - a flag given twice (argparse keeps the last);
  - launch variables set without `export`, or after the command: swift never sees them.
"""

from __future__ import annotations

import re

from lorakit import envvars
from lorakit.findings import ERROR, WARNING, Finding
from lorakit.shellscript import SWIFT_COMMANDS

LAUNCH_VARS = (*envvars.LAUNCH, *envvars.DEVICE_LISTS[1:])
ENV_WORD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")
_COMMENT = re.compile(r"^\s*#")


def breakages(text: str, commands, calls, name: str, assigned: dict[str, list[int]]) -> list[Finding]:
    lines = text.split("\n")
    out: list[Finding] = []
    out += _continuations(text, lines, commands, calls, name)
    for call in calls:
        out += _env_after(call, name) + _twice(call, name) + _unexported(call, name) + _dashes(call, name)
    out += _set_after(calls, assigned, name)
    if "\r\n" in text and not any(f.code == "script.continuation.crlf" for f in out):
        # no `\` to cut: the command runs, but its last word on each line ends in '\r' (an output_dir
        # 'out\r', CUDA_VISIBLE_DEVICES '0\r'), and the import reads the same
        out.append(Finding(ERROR, "script.crlf", f"line {_line(text, text.index(chr(13) + chr(10)))}: the script has "
                           "Windows line endings: bash keeps the carriage return as the last character of each "
                           "line, so the last value on each line ends in '\\r' (and so does the import)",
                           hint=_FIX["crlf"], file=name))
    return out


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _break_after(text: str, lines: list[str], simple) -> tuple[str, int] | None:
    """How the command `simple` was cut short, if it was: (kind, line of the cause)."""
    if simple.words:
        raw = text[simple.words[-1][1]:simple.words[-1][2]]
        if re.fullmatch(r"\\[ \t]+", raw):
            return "trailing_space", _line(text, simple.words[-1][1])
        if raw.startswith("\\\r"):
            return "crlf", _line(text, simple.words[-1][1])
    after = re.match(r"[ \t]*\\\n", text[simple.end:])
    if not after:
        return None
    nxt = _line(text, simple.end) + 1  # 1-based: the line after the one that ends in '\'
    following = lines[nxt - 1] if nxt - 1 < len(lines) else ""
    if not following.strip():
        return "blank_line", nxt
    if _COMMENT.match(following):
        return "comment", nxt
    return None


_WHY = {
    "blank_line": "a blank line inside the `\\` continuation ends the command there (ms-swift #5328)",
    "comment": "a comment line inside the `\\` continuation ends the command there (its `\\` is part of the comment)",
    "trailing_space": "a space after the `\\` escapes the space, not the newline: the command ends on this line"
                      " and gets ' ' as an argument",
    "missing": "this line does not end in `\\`, so the command ends here (ms-swift #4513)",
    "commented_backslash": "the `\\` at the end of this line is inside the comment (`#` runs to the end of the"
                           " line), so the command ends here",
    "crlf": "the line ends in a carriage return (Windows line endings): the `\\` escapes it, not the newline,"
            " so the command ends on this line and gets '\\r' as an argument",
}
_FIX = {
    "blank_line": "delete the blank line (or end the command before it)",
    "comment": "move the comment above the command",
    "trailing_space": "delete the spaces after the `\\`",
    "missing": "end the line with ` \\`",
    "commented_backslash": "move the comment above the command (a comment cannot sit inside a continuation)",
    "crlf": "convert the script to Unix line endings (dos2unix SCRIPT, or sed -i 's/\\r$//' SCRIPT)",
}


def _continuations(text: str, lines: list[str], commands, calls, name: str) -> list[Finding]:
    out = []
    by_line = {call.line: call for call in calls}
    owner = None  # the swift command whose flags are being cut off
    for prev, simple in zip([None, *commands], commands):
        call = next((c for ln, c in by_line.items() if _line(text, simple.start) <= ln <= _line(text, simple.end)), None)
        first = text[simple.words[0][1]:simple.words[0][2]] if simple.words else ""
        cut = _break_after(text, lines, prev) if prev is not None else None
        if call is not None:
            owner = call
            if cut and prev is not None and prev.assignments and all(_escaped_space(text, w) for w in prev.words):
                out.append(_lost_prefix(text, prev, call, cut, name))
        elif first.startswith("-") and owner is not None:
            kind, at = cut if cut else ("missing", _line(text, prev.end) if prev is not None else 1)
            if kind == "missing" and prev is not None and re.match(r"[ \t]+#[^\n]*\\[ \t]*(\n|$)", text[prev.end:]):
                kind = "commented_backslash"  # `--model m  # the model \`: the comment holds the `\`
            start = _line(text, simple.start)
            flags = " ".join(text[w[1]:w[2]] for w in simple.words if text[w[1]:w[2]].startswith("--"))
            out.append(Finding(
                ERROR, f"script.continuation.{kind}",
                f"line {at}: {_WHY[kind]}: bash runs swift {owner.command} (line {owner.line}) without "
                f"the flags from line {start} on ({_short(flags)}), then tries to run "
                f"`{first}` as a command. lorakit imports what bash runs, without them",
                hint=f"{_FIX[kind]} at line {at}, then import again", file=name))
        elif not first.startswith("-"):
            owner = None  # another command ran since: flags after it are not swift's
    for call in calls:
        for arg in call.args:
            kind = ("crlf" if arg.raw.startswith("\\\r")
                    else "trailing_space" if re.fullmatch(r"\\[ \t]+", arg.raw) else None)
            if kind and not any(f.code.endswith(kind) and f.message.startswith(f"line {arg.line}:") for f in out):
                out.append(Finding(ERROR, f"script.continuation.{kind}",
                                   f"line {arg.line}: {_WHY[kind]} (swift {call.command}, line {call.line})",
                                   hint=f"{_FIX[kind]} at line {arg.line}", file=name))
    return out


def _escaped_space(text: str, word) -> bool:
    """`\\ ` or `\\<CR>`: what a broken continuation leaves as the command's only word."""
    return bool(re.fullmatch(r"\\\s+", text[word[1]:word[2]]))


def _lost_prefix(text: str, prev, call, cut, name: str) -> Finding:
    kind, at = cut
    names = ", ".join(raw.partition("=")[0] for raw, _, _ in prev.assignments)
    return Finding(
        ERROR, f"script.continuation.{kind}",
        f"line {at}: {_WHY[kind]}: {names} (line {_line(text, prev.start)}) went to a command of its own, "
        f"and swift {call.command} (line {call.line}) runs without them in its environment",
        hint=f"{_FIX[kind]} at line {at}, then import again", file=name)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


# what a web page or a word processor makes of `--` (em dash, en dash, minus sign, …)
_DASH = re.compile(r"^([\u2010-\u2015\u2212\ufe58\ufe63\uff0d]+)([A-Za-z_][\w-]*)(=.*)?$", re.S)


def _dashes(call, name: str) -> list[Finding]:
    """`—lora_rank 8` pasted from a web page: not an option to argparse, so it and its value become
    values of the flag before it (`--dataset d —lora_rank 8`: three datasets), with no error."""
    out = []
    for arg in call.args:
        found = _DASH.match(arg.text)
        if found:
            out.append(Finding(
                ERROR, "script.flag.dash",
                f"line {arg.line}: {arg.text} starts with {found.group(1)!r} (U+{ord(found.group(1)[0]):04X}, "
                "pasted typography), not '--': argparse reads it as a value, not a flag",
                hint=f"write --{found.group(2)}{found.group(3) or ''}", file=name))
    return out


def _env_after(call, name: str) -> list[Finding]:
    out = []
    for arg in call.args:
        found = ENV_WORD.match(arg.text)
        if found and (found.group(1) in LAUNCH_VARS or found.group(1).isupper()):
            out.append(Finding(
                ERROR, "script.env_after_command",
                f"line {arg.line}: {arg.text} comes after `swift {call.command}`: bash passes it to ms-swift as an "
                f"argument, not as the environment (ms-swift #3681)",
                hint=f"write {found.group(1)}=… before `swift` (or in the preset's launch:/env:)", file=name))
    return out


def _twice(call, name: str) -> list[Finding]:
    """A flag given twice, by the field argparse stores it in (so --lora-rank and --lora_rank
    are one flag): argparse keeps the last value."""
    from lorakit import swiftflags

    try:
        flags = swiftflags.load_flags(4, call.command)
    except ValueError:
        flags = None
    seen: dict[str, tuple[str, int]] = {}
    out = []
    for arg in call.args:
        if not arg.text.startswith("--") or len(arg.text) < 3:
            continue
        option = arg.text.partition("=")[0]
        dest = swiftflags.resolve(flags, option)[0] if flags is not None else None
        dest = dest or option[2:].replace("-", "_")
        if dest in seen:
            first, line = seen[dest]
            out.append(Finding(
                WARNING, "script.flag.twice",
                f"line {arg.line}: {option} is given again (first as {first} at line {line}): "
                f"argparse keeps the last one, and so does the import",
                hint="delete the one you did not mean", key=f"args.{dest}", file=name))
        seen[dest] = (option, arg.line)
    return out


def _unexported(call, name: str) -> list[Finding]:
    return [Finding(
        WARNING, "script.env.not_exported",
        f"line {line}: {var} is set without `export`: a shell variable, so swift {call.command} "
        f"(line {call.line}) does not get it in its environment, and the import leaves it out",
        hint=f"write `export {var}=…`, or {var}=… in front of `swift`", file=name)
        for var, line in call.unexported.items() if var in LAUNCH_VARS]


def _set_after(calls, assigned: dict[str, list[int]], name: str) -> list[Finding]:
    if not calls:
        return []
    last = max(call.end_line for call in calls)
    return [Finding(
        WARNING, "script.env.after_command",
        f"line {line}: {var} is set after the last swift command (line {last}): it reaches no command",
        hint=f"set {var} before `swift`", file=name)
        for var, at in assigned.items() if var in LAUNCH_VARS for line in at if line > last]


_MODULE = re.compile(r"swift[./]cli[./](%s)(?:\.py)?$" % "|".join(SWIFT_COMMANDS))
_INNER = re.compile(r"(?:^|[\s;&|('\"])(?:[^\s'\"]*/)?swift\s+(%s)\b" % "|".join(SWIFT_COMMANDS))


def not_read(words: list[str], line: int, name: str, nproc: str | None = None) -> list[Finding]:
    """A swift command lorakit does not read, said so that "no swift command" is never the whole
    story: `python -m swift.cli.sft` / `torchrun swift/cli/sft.py` (ms-swift's entry module run
    without the `swift` launcher, swift/cli/main.py, which is what reads NPROC_PER_NODE) and
    `bash -c "swift sft …"` (a string bash parses only when it runs it)."""
    module = next((_MODULE.search(w) for w in words[1:] if _MODULE.search(w)), None)
    if module and words[0].rsplit("/", 1)[-1].startswith(("python", "torchrun")):
        # only the `swift` launcher turns NPROC_PER_NODE into torchrun: `python -m` is one process (#4275)
        ignored = (f"; NPROC_PER_NODE={nproc} does nothing there (only the `swift` launcher, swift/cli/main.py, "
                   "turns it into torchrun), so it runs as one process")
        ignored = ignored if nproc and nproc.strip() not in ("", "1") and words[0].rsplit("/", 1)[-1].startswith(
            "python") else ""
        return [Finding(
            WARNING, "script.swift_module",
            f"line {line}: {words[0].rsplit('/', 1)[-1]} … {module.group(0)} runs ms-swift's {module.group(1)} "
            f"without the `swift` launcher: lorakit import reads only `swift {module.group(1)}` commands, "
            f"so this one is not imported{ignored}", file=name,
            hint=f"write it as `swift {module.group(1)} …` (the same flags) and import again")]
    if words[0].rsplit("/", 1)[-1] in ("bash", "sh", "zsh") and "-c" in words[1:-1]:
        inner = _INNER.search(words[words.index("-c") + 1])
        if inner:
            return [Finding(
                WARNING, "script.swift_in_string",
                f"line {line}: swift {inner.group(1)} inside {words[0].rsplit('/', 1)[-1]} -c '…' is not "
                "imported: it is a string that bash reads only when it runs it", file=name,
                hint="write the swift command on a line of its own (without bash -c) and import again")]
    return []


# ms-swift's launcher routes only its own subcommands (swift/cli/main.py ROUTE_MAPPING: pt, sft,
# infer, merge-lora, web-ui, deploy, rollout, rlhf, sample, export, eval, app); anything else is a
# KeyError there. These are the names people write for one of them (ms-swift #5160: `swift grpo`).
# (`swift merge_lora` is one: the launcher reads '_' as '-', and merge-lora is routed.)
ALIASES = {**{k: f"swift rlhf --rlhf_type {k}" for k in ("dpo", "grpo", "kto", "orpo", "simpo", "cpo", "ppo", "gkd")},
           "train": "swift sft", "finetune": "swift sft", "merge": "swift export --merge_lora true",
           "quantize": "swift export --quant_method ...", "serve": "swift deploy", "inference": "swift infer"}


def unknown_command(command: str, line: int, name: str) -> list[Finding]:
    """`swift grpo …`: a subcommand ms-swift's launcher does not have (a KeyError there)."""
    if command not in ALIASES:
        return []
    return [Finding(WARNING, "script.swift_command",
                    f"line {line}: `swift {command}` is not an ms-swift command (its launcher stops with "
                    f"KeyError: {command!r}), so it is not imported", file=name,
                    hint=f"write it as `{ALIASES[command]} …` (the other flags as they are) and import again")]
