"""Read an ms-swift shell script the way bash runs it: its swift commands, their env, their argv.

bashlex (a port of bash's own grammar) finds the commands: a blank line inside a `\\`
continuation ends a command there, exactly as in bash, so the flags after it are a separate
command (ms-swift #5328) and are reported, never joined back (scriptfaults.py says why each
break happened). Words are expanded by shellwords.py from the script's own text. The variables
the script sets are followed in order: `X=…` lines (shell variables: not in swift's environment
unless exported), `export X=…`, `unset X`, and `VAR=… swift sft` prefixes (that command's
environment only; bash expands its words before the prefix applies).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lorakit.errors import LorakitError
from lorakit.findings import INFO, WARNING, Finding
from lorakit.shellmath import mask_unsupported
from lorakit.shellwords import ARGUMENT_DEFAULT, NAME, expand

SWIFT_COMMANDS = ("sft", "pt", "rlhf", "export", "infer", "deploy", "eval", "rollout")
# Words that run the next word as the command (exec swift sft …, nohup swift sft … &).
WRAPPERS = ("exec", "nohup", "time", "command", "builtin")
# Commands that run their last words as a command in the same environment, after options of their
# own (`timeout 12h swift sft …`, `nice -n 10 swift sft …`): the swift command starts at `swift`
RUNNERS = ("timeout", "nice", "stdbuf", "taskset", "numactl", "ionice", "chrt", "setsid")


@dataclass(frozen=True)
class Arg:
    """One argv item of a swift command, after expansion, and where it was written."""

    text: str
    line: int
    raw: str  # as written (a word can expand to several Args: `--target_modules $MODULES`)


@dataclass
class SwiftCall:
    number: int  # 1-based, in script order: what --select takes
    command: str  # sft, export, ...
    line: int  # the line of `swift`
    args: list[Arg]
    prefix: dict[str, str]  # VAR=… written before `swift` on this command
    exported: dict[str, str]  # what the script exported before it
    lines: dict[str, int] = field(default_factory=dict)  # env var -> the line that set it
    end_line: int = 0
    unexported: dict[str, int] = field(default_factory=dict)  # shell variables swift does not get

    @property
    def env(self) -> dict[str, str]:
        """What the script gives swift's environment: its exports, then this command's prefix."""
        return {**self.exported, **self.prefix}


@dataclass
class Script:
    name: str
    text: str
    calls: list[SwiftCall]
    findings: list[Finding]
    commands: list["Simple"] = field(default_factory=list)  # every simple command, in order


@dataclass(frozen=True)
class Simple:
    """A simple command bash runs: its assignments and words, with their source positions."""

    assignments: tuple[tuple[str, int, int], ...]  # (raw, start, end)
    words: tuple[tuple[str, int, int], ...]
    start: int
    end: int


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def parse_commands(text: str, name: str = "script") -> list[Simple]:
    """Every simple command in the script, in order (inside lists, pipelines, if/for/while)."""
    import bashlex  # a real bash grammar; loaded only by `lorakit import`

    # bashlex.parse's own loop, one top-level command at a time, kept here so that an error's
    # position (relative to the command it began) becomes a line of the whole script
    masked = _without_final_continuation(mask_unsupported(text))
    nodes, index = [], 0
    while index < len(masked):
        if not masked[index:].strip():
            break
        try:
            part = bashlex.parser._parser(masked[index:]).parse()
            if isinstance(part, bashlex.ast.node):  # the visitors recurse too: `((((…))))` 3,000 deep
                bashlex.ast.posshifter(index).visit(part)
                ends = bashlex.parser._endfinder()  # a heredoc's body lies past its command's end
                ends.visit(part)
        except bashlex.errors.ParsingError as exc:
            raise _unreadable(text, name, line_of(text, index + exc.position), exc.message) from None
        except (NotImplementedError, RecursionError) as exc:  # bashlex lacks a few constructs (case, some
            # expansions), and reads `$( $( … ) )` by recursion: 3,000 deep is past Python's stack
            line = line_of(text, index + len(masked[index:]) - len(masked[index:].lstrip()))
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise _unreadable(text, name, line, why) from None
        if not isinstance(part, bashlex.ast.node):
            break
        nodes.append(part)
        index = max(part.pos[1], ends.end) + 1
    found: list[Simple] = []
    for node in nodes:
        try:
            _collect(node, found)
        except RecursionError:
            raise _unreadable(text, name, line_of(text, node.pos[0]), "nested too deeply") from None
    return sorted(found, key=lambda s: s.start)


def _without_final_continuation(text: str) -> str:
    """A last flag line that still ends in `\\` (ms-swift #5328's script does): bash joins it with
    nothing and the command ends there; bashlex says "unexpected EOF". The backslash becomes a
    space, so every position (and line number) stays where it was."""
    body = text.rstrip("\r\n")
    if len(body) == len(text) or not body.endswith("\\"):
        return text  # no newline after it: bash keeps a final backslash as a character
    slashes = len(body) - len(body.rstrip("\\"))
    return body[:-1] + " " + text[len(body):] if slashes % 2 else text


def _unreadable(text: str, name: str, line: int, why: str) -> LorakitError:
    """bashlex refused the script: if bash itself parses it (`bash -n`, when bash is here), the
    limit is lorakit's reader, not the script."""
    import shutil
    import subprocess

    bash = shutil.which("bash")
    ok = bash is not None and subprocess.run([bash, "-n"], input=text.encode("utf-8", "surrogateescape"),
                                             capture_output=True, timeout=30).returncode == 0
    if ok:
        return LorakitError(f"{name}:{line}: bash parses this script, but lorakit's bash reader (bashlex) cannot "
                            f"read this part of it ({why})",
                            hint="move the swift command into a script of its own and import that")
    return LorakitError(f"{name}:{line}: the script does not parse as bash ({why})",
                        hint="`bash -n SCRIPT` shows the same problem; fix the script first")


def _collect(node, found: list[Simple]) -> None:
    if node.kind == "command":
        parts = [p for p in node.parts if p.kind in ("assignment", "word")]
        lead = next((i for i, p in enumerate(parts) if p.kind == "word"), len(parts))
        # only VAR=… before the command name is an assignment: after it (`swift sft A=1`) it is
        # an argument, as bash passes it (ms-swift #3681)
        assigns = tuple((p.word, *p.pos) for p in parts[:lead])
        words = tuple((p.word, *p.pos) for p in parts[lead:])
        found.append(Simple(assigns, words, *node.pos))
        return
    for child in (getattr(node, "parts", None) or getattr(node, "list", None) or []):
        if hasattr(child, "kind"):
            _collect(child, found)


class _Shell:
    """The script's variables as bash sees them while it runs, line by line."""

    def __init__(self, text: str, name: str):
        self.text, self.name = text, name
        self.values: dict[str, str] = {}
        self.exported: set[str] = set()
        self.where: dict[str, int] = {}  # the line that set (or exported) each variable
        self.assigned: dict[str, list[int]] = {}  # plain X=… lines, for scriptfaults
        self.findings: list[Finding] = []
        self.allexport = False  # `set -a` (set -o allexport): every X=… after it is exported

    def raw(self, start: int, end: int) -> str:
        return self.text[start:end]

    def word(self, start: int, end: int, *, split: bool = True, scoped=None) -> list[str]:
        if split and re.fullmatch(r'"?\$(@|\{@\}|\*|\{\*\})"?', self.raw(start, end)):
            # `swift sft … "$@"` forwards the script's arguments: none when it is run without any,
            # as the import reads it (and as ${1:-default} gives its default)
            self.findings.append(Finding(
                WARNING, "script.variable.arguments",
                f"line {line_of(self.text, start)}: {self.raw(start, end)} passes on the arguments the script is "
                "run with: none when it is run without any, as the import reads it", file=self.name,
                hint="write the flags you pass to the script in the preset's args:"))
            return []
        found = expand(self.raw(start, end), self.values if scoped is None else scoped, split=split)
        line = line_of(self.text, start)
        for what in found.unresolved:
            self._unresolved(what, line)
        raw = self.raw(start, end)
        for default in ARGUMENT_DEFAULT.finditer(raw):
            self.findings.append(Finding(
                WARNING, "script.variable.argument_default",
                f"line {line}: {default.group(0)} is the script's argument {default.group(1)}: imported as "
                f"{default.group(2)!r}, its value when the script is run without one", file=self.name,
                hint="if you run the script with arguments, write their values in the preset"))
        if found.pattern:
            self.findings.append(Finding(
                WARNING, "script.word.pattern",
                f"line {line}: {raw} is a file pattern: bash replaces it with the files it matches where the "
                f"script runs (itself when none does); kept as written", file=self.name,
                hint="quote it if it is meant as text ('[q_proj,k_proj]' unquoted is a pattern), or list the files"))
        if found.tilde:
            self.findings.append(Finding(
                INFO, "script.word.tilde", f"line {line}: bash writes your home directory for the ~ of {raw}; "
                "kept as written (lorakit expands it when it checks and renders local paths)", file=self.name))
        return found.fields

    def _unresolved(self, what: str, line: int) -> None:
        name = what.strip("${}")
        what = what if len(what) <= 80 else what[:77] + "..."  # a message, not the whole word
        why = ("is not set by the script" if NAME.fullmatch(name)
               else "is an argument the script is run with" if name[:1] in "0123456789@*#" and len(name) == 1
               else "is a bash expansion lorakit does not evaluate" if what.startswith("${")
               else "is arithmetic lorakit does not evaluate (it reads + - * / % over integers and the "
                    "script's variables)" if what.startswith("$((")
               else "is a command lorakit does not run")
        self.findings.append(Finding(
            WARNING, "script.variable.unresolved",
            f"line {line}: {what} {why}: kept as written, {what!r}",
            hint=f"give its value in the preset, or set {name} earlier in the script" if NAME.fullmatch(name)
            else "write its value in the preset" if what.startswith(("${", "$(("))
            else "write its value in the preset: lorakit does not run commands to find it",
            file=self.name))

    def assign(self, raw: str, start: int, end: int, scoped=None) -> tuple[str, str]:
        var, _, _ = raw.partition("=")
        value = "".join(self.word(start + len(var) + 1, end, split=False, scoped=scoped))
        return var, value


def read_script(text: str, name: str = "script") -> Script:
    """The script's swift commands as bash would run them, and what it found on the way."""
    from lorakit import scriptfaults

    commands = parse_commands(text, name)
    shell = _Shell(text, name)
    calls: list[SwiftCall] = []
    for simple in commands:
        call = _run(shell, simple, len(calls) + 1)
        if call is not None:
            calls.append(call)
    findings = scriptfaults.breakages(text, commands, calls, name, shell.assigned) + shell.findings
    return Script(name, text, calls, findings, commands)


def faults(text: str, name: str = "script") -> list[Finding]:
    """The classic breakages of an ms-swift script (blank line in a continuation, a trailing space
    after `\\`, a missing `\\`, launch variables after the command, a flag twice, unresolved
    variables), each with its line. Raises LorakitError when bash could not parse it at all."""
    return read_script(text, name).findings


def _run(shell: _Shell, simple: Simple, number: int) -> SwiftCall | None:
    text = shell.text
    if not simple.words:  # X=1 Y=2: shell variables, exported only if already marked
        for raw, start, end in simple.assignments:
            var, value = shell.assign(raw, start, end)
            shell.values[var] = value
            shell.where[var] = line_of(text, start)
            shell.assigned.setdefault(var, []).append(line_of(text, start))
            if shell.allexport:
                shell.exported.add(var)
        return None
    words = list(simple.words)
    head = shell.word(*words[0][1:])
    first = head[0] if head else ""
    if first in ("export", "declare", "typeset") and (first == "export" or _has_x(shell, words)):
        _export(shell, words[1:])
        return None
    if first == "set":  # bash(1), set: -a / -o allexport on, +a / +o allexport off
        items = [shell.raw(*w[1:]) for w in words[1:]]
        for i, item in enumerate(items):
            named = items[i + 1:i + 2] == ["allexport"]
            if re.fullmatch(r"-[a-zA-Z]*a[a-zA-Z]*", item) or (item == "-o" and named):
                shell.allexport = True
            elif re.fullmatch(r"\+[a-zA-Z]*a[a-zA-Z]*", item) or (item == "+o" and named):
                shell.allexport = False
        return None
    if first == "unset":
        for raw, start, end in words[1:]:
            for var in shell.word(start, end):
                shell.values.pop(var, None)
                shell.exported.discard(var)
        return None
    if first in ("source", "."):
        shell.findings.append(Finding(INFO, "script.source", f"line {line_of(text, simple.start)}: "
                              f"{shell.raw(simple.start, simple.end)!r} is not read: its variables are unknown here",
                              file=shell.name))
        return None
    prefix_raw = list(simple.assignments)
    while words and shell.raw(*words[0][1:]) in WRAPPERS:
        words.pop(0)
    if words and shell.raw(*words[0][1:]).rsplit("/", 1)[-1] in RUNNERS:
        at = next((i for i, w in enumerate(words) if shell.raw(*w[1:]).rsplit("/", 1)[-1] == "swift"), None)
        words = words[at:] if at is not None else words
    if words and shell.raw(*words[0][1:]) == "env":  # env A=1 B=2 swift sft …
        words.pop(0)
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0][0]):
            prefix_raw.append(words.pop(0))
    if len(words) < 2 or shell.raw(*words[0][1:]).rsplit("/", 1)[-1] != "swift":
        from lorakit.scriptfaults import not_read

        nproc = next((raw.split("=", 1)[1] for raw, _, _ in prefix_raw if raw.startswith("NPROC_PER_NODE=")),
                     shell.values.get("NPROC_PER_NODE") if "NPROC_PER_NODE" in shell.exported else None)
        shell.findings += not_read([shell.raw(*w[1:]) for w in words], line_of(text, simple.start), shell.name,
                                   nproc)
        return None
    command = "".join(shell.word(*words[1][1:]))
    if command not in SWIFT_COMMANDS:
        from lorakit.scriptfaults import unknown_command

        shell.findings += unknown_command(command, line_of(text, simple.start), shell.name)
        return None
    # bash expands the command's words before its VAR=… prefix applies: `A=1 swift sft --x $A`
    # passes the earlier $A, so the prefix is read after the arguments
    args = [Arg(item, line_of(text, start), text[start:end]) for _, start, end in words[2:]
            for item in shell.word(start, end)]
    prefix, lines = {}, {}
    scoped = dict(shell.values)  # `A=1 B=$A swift …`: each prefix sees the ones before it
    for raw, start, end in prefix_raw:
        var, value = shell.assign(raw, start, end, scoped)
        prefix[var], lines[var], scoped[var] = value, line_of(text, start), value
    # `export X` before X has a value puts nothing in the environment until X=… gives it one
    exported = {var: shell.values[var] for var in sorted(shell.exported, key=lambda v: shell.where.get(v, 0))
                if var in shell.values}
    lines = {**{v: shell.where.get(v, 0) for v in exported}, **lines}
    hidden = {v: shell.where.get(v, 0) for v in shell.values if v not in exported and v not in prefix}
    return SwiftCall(number, command, line_of(text, words[0][1]), args, prefix, exported, lines,
                     end_line=line_of(text, simple.end), unexported=hidden)


def _has_x(shell: _Shell, words) -> bool:
    return any(shell.raw(*w[1:]).startswith("-") and "x" in shell.raw(*w[1:]) for w in words[1:])


def _export(shell: _Shell, words) -> None:
    # `export -n X` (bash(1), export) takes X out of the environment; declare +x does the same
    remove = any(re.fullmatch(r"-[a-z]*n[a-z]*|\+[a-z]*x[a-z]*", shell.raw(*w[1:])) for w in words)
    for raw, start, end in words:
        if shell.raw(start, end)[:1] in "-+":
            continue  # export -n / declare -x: options
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", raw):
            var, value = shell.assign(raw, start, end)
            shell.values[var] = value
        else:
            var = shell.raw(start, end)
        if remove:
            shell.exported.discard(var)
        else:
            shell.exported.add(var)
        shell.where[var] = line_of(shell.text, start)

