"""Registers the subcommands (torchtune's tune.py does only this) and maps errors to exit codes."""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys

import typer

from lorakit.cli import argcheck
from lorakit import report
from lorakit.errors import EXIT_USER, LorakitError

MAX_DIGITS = 20_000
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}

# (command, module in lorakit.cli, function, passes unknown options on to ms-swift), in --help's
# order. A command's module is imported only when that command runs (or for the command list):
# `lorakit train --dry-run` must not pay for plan's, deploy's or import's imports at start-up.
COMMANDS = (
    ("train", "train", "train", True),
    ("merge", "merge", "merge", False),
    ("export", "export_cmd", "export", True),
    ("rlhf", "rlhf", "rlhf", True),
    ("infer", "infer", "infer", True),
    ("deploy", "deploy", "deploy", True),
    ("eval", "eval_cmd", "eval_", True),
    ("validate", "validate", "validate", True),
    ("plan", "plan", "plan", True),
    ("checkpoints", "checkpoints_cmd", "checkpoints", False),
    ("runs", "runs_cmd", "runs", False),
    ("doctor", "doctor", "doctor", False),
    ("import", "import_cmd", "import_script", False),
)
GROUPS = (("presets", "presets_cmd", "app"),)


def exits(command):
    """Commands return their exit code (easy to test); Typer wants typer.Exit for it."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        raise typer.Exit(command(*args, **kwargs) or 0)

    return wrapper


def _group() -> None:
    pass


def _module(name: str):
    return importlib.import_module(f"lorakit.cli.{name}")


def build(only: str | None = None) -> typer.Typer:
    """The Typer app with every command, or with `only` that one (the command being run)."""
    built = typer.Typer(
        help="Turn a LoRA fine-tuning preset into a correct ms-swift run.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    # a group even with one command: Typer runs a lone command as the app itself otherwise
    built.callback()(_group)
    for name, module, attr, extra in COMMANDS:
        if only is None or only == name:
            settings = {"context_settings": EXTRA_ARGS} if extra else {}
            built.command(name=name, **settings)(exits(getattr(_module(module), attr)))
    for name, module, attr in GROUPS:
        if only is None or only == name:
            built.add_typer(getattr(_module(module), attr), name=name)
    return built


def __getattr__(name: str):
    """`lorakit.cli.app.app`: the whole app, for tests and tools that look at every command."""
    if name == "app":
        return build()
    raise AttributeError(name)


def _for(words: list[str]) -> typer.Typer:
    known = {c[0] for c in COMMANDS} | {g[0] for g in GROUPS}
    return build(words[0] if words and words[0] in known else None)


def main(argv: list[str] | None = None) -> None:
    """`_run`, plus the ends no command handles, each quiet, with the code a shell expects."""
    try:
        if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.SIG_DFL, None):
            # from here a Ctrl-C is a KeyboardInterrupt again, answered below (until here it
            # was lorakit.__main__'s quiet exit, for the imports before main)
            signal.signal(signal.SIGINT, signal.default_int_handler)
        _run(argv)
    except KeyboardInterrupt:
        # Ctrl-C while lorakit imports the command, before Typer runs it (Typer's own answer
        # to a Ctrl-C inside a command is the same quiet 130)
        sys.exit(128 + signal.SIGINT)
    except BrokenPipeError:  # stderr (or stdout) closed under `2>&1 | head -1`
        _quiet_exit_on_closed_pipe()
    except SystemExit as exc:
        # Typer answers a closed stdout (`lorakit import X | head -1`) with a quiet exit 1, which
        # reads as "environment problem"; git and coreutils die of SIGPIPE there, which a shell
        # reports as 141 (128 + SIGPIPE): the same code here. Typer marks that case by wrapping
        # the streams in click's PacifyFlushWrapper (typer/core.py _main, errno.EPIPE; Typer
        # vendors click as typer._click, so the class is known by its name).
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            _quiet_exit_on_closed_pipe()
        raise
    except OSError as exc:
        from lorakit.cli.common import DISK_ERRNOS, write_failed

        if exc.errno not in DISK_ERRNOS:
            raise
        # `lorakit train --dry-run --format sh > train.sh` on a full disk: stdout's write fails;
        # Python's last flush must not fail a second time (stdout goes to /dev/null, as above)
        problem = write_failed(f"cannot write {exc.filename or 'the standard output'}", exc, "")
        _point_stdout_at_devnull()
        print(f"lorakit: error: {problem}", file=sys.stderr)
        sys.exit(problem.code)
    except RuntimeError as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            # a Ctrl-C while a dataclass is being made (importing a command): Python wraps it in
            # "Error calling __set_name__ ..."; it is still the user's Ctrl-C
            sys.exit(128 + signal.SIGINT)
        # pathlib's resolve() on Python < 3.13 raises RuntimeError("Symlink loop from '/a/b'") for
        # any path through a link loop (a --output-dir, a run dir): one answer for all of them
        if not str(exc).startswith("Symlink loop from "):
            raise
        path = str(exc)[len("Symlink loop from "):].strip("'\"")
        print(f"lorakit: error: {path}: a symlink loop (a link that leads back to itself)\n"
              "  hint: point the path at a real directory or file (`ls -l` shows where each link goes)",
              file=sys.stderr)
        sys.exit(EXIT_USER)


def _quiet_exit_on_closed_pipe() -> None:
    """Exit 141 without a word: nobody reads any more, and Python's last flush must not print a
    BrokenPipeError either (what the Python docs advise: point stdout at /dev/null)."""
    _point_stdout_at_devnull()
    sys.exit(128 + signal.SIGPIPE)


def _point_stdout_at_devnull() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # an in-process test's StringIO has no fileno
        pass


def _run(argv: list[str] | None = None) -> None:
    """One place turns a LorakitError into a message and an exit code (pipx's main.py);
    usage errors are Typer's own (exit 2), the child's code passes through typer.Exit."""
    report.QUIET = False  # set again by each command that takes --quiet
    if hasattr(sys, "set_int_max_str_digits"):
        # argparse's int() reads any length; Python's 4300-digit guard would turn a 5000-digit
        # lora_rank into a ValueError deep inside a check instead of an error that names it
        # lora_rank into a ValueError deep inside a check instead of an error that names it. Bounded:
        # conversion is quadratic, and a megabyte of digits would take a minute (yamlload then says
        # the value cannot be read)
        sys.set_int_max_str_digits(MAX_DIGITS)
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] == "train":
        words = _module("train").bare_resume(words)  # --resume alone: auto
    as_json = bool(words) and words[0] == "validate" and "--json" in words[:words.index("--") if "--" in words else None]
    validate = _module("validate") if as_json else None
    if validate is not None:
        validate.STARTED = False
    app = _for(words)
    try:
        group = typer.main.get_group(app)
        argcheck.check(group, words)
        argcheck.repeated(group, words)
        app(args=words, prog_name="lorakit")
    except LorakitError as exc:
        print(f"lorakit: error: {exc}", file=sys.stderr)
        if validate is not None:
            validate.answer_refused(words, exc.message, exc.hint or "")
        sys.exit(exc.code)
    except SystemExit as exc:
        # a usage error Click reported before validate ran: `validate --json` still answers JSON
        if validate is not None and exc.code == 2 and not validate.STARTED:
            validate.answer_refused(words, "the command line was refused (see stderr)", "")
        raise
