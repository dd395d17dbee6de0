"""Registers the subcommands (torchtune's tune.py does only this) and maps errors to exit codes."""

from __future__ import annotations

import functools
import sys

import typer

from lorakit.cli import argcheck, checkpoints_cmd, doctor, merge, plan, presets_cmd, train, validate
from lorakit.cli import deploy as deploy_cmd, eval_cmd, infer as infer_cmd, rlhf as rlhf_cmd
from lorakit.cli import import_cmd
from lorakit.cli import runs_cmd
from lorakit import report
from lorakit.errors import LorakitError

MAX_DIGITS = 20_000
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}

app = typer.Typer(
    help="Turn a LoRA fine-tuning preset into a correct ms-swift run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def exits(command):
    """Commands return their exit code (easy to test); Typer wants typer.Exit for it."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        raise typer.Exit(command(*args, **kwargs) or 0)

    return wrapper


app.command(context_settings=EXTRA_ARGS)(exits(train.train))
app.command()(exits(merge.merge))
app.command(name="rlhf", context_settings=EXTRA_ARGS)(exits(rlhf_cmd.rlhf))
app.command(name="infer", context_settings=EXTRA_ARGS)(exits(infer_cmd.infer))
app.command(name="deploy", context_settings=EXTRA_ARGS)(exits(deploy_cmd.deploy))
app.command(name="eval", context_settings=EXTRA_ARGS)(exits(eval_cmd.eval_))
app.command(context_settings=EXTRA_ARGS)(exits(validate.validate))
app.command(context_settings=EXTRA_ARGS)(exits(plan.plan))
app.command(name="checkpoints")(exits(checkpoints_cmd.checkpoints))
app.command(name="runs")(exits(runs_cmd.runs))
app.command()(exits(doctor.doctor))
app.command(name="import")(exits(import_cmd.import_script))
app.add_typer(presets_cmd.app, name="presets")


def main(argv: list[str] | None = None) -> None:
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
    words = train.bare_resume(list(sys.argv[1:] if argv is None else argv))  # --resume alone: auto
    as_json = bool(words) and words[0] == "validate" and "--json" in words[:words.index("--") if "--" in words else None]
    validate.STARTED = False
    try:
        argcheck.check(typer.main.get_group(app), words)
        app(args=words, prog_name="lorakit")
    except LorakitError as exc:
        print(f"lorakit: error: {exc}", file=sys.stderr)
        if as_json:
            validate.answer_refused(words, exc.message, exc.hint or "")
        sys.exit(exc.code)
    except SystemExit as exc:
        # a usage error Click reported before validate ran: `validate --json` still answers JSON
        if as_json and exc.code == 2 and not validate.STARTED:
            validate.answer_refused(words, "the command line was refused (see stderr)", "")
        raise
