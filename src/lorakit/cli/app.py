"""Registers the subcommands (torchtune's tune.py does only this) and maps errors to exit codes."""

from __future__ import annotations

import sys

import typer

from lorakit.cli import merge, presets_cmd, train, validate
from lorakit.errors import LorakitError

EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}

app = typer.Typer(
    help="Turn a LoRA fine-tuning preset into a correct ms-swift run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command(context_settings=EXTRA_ARGS)(train.train)
app.command()(merge.merge)
app.command(context_settings=EXTRA_ARGS)(validate.validate)
app.add_typer(presets_cmd.app, name="presets")


def main(argv: list[str] | None = None) -> None:
    """One place turns a LorakitError into a message and an exit code (pipx's main.py)."""
    import click

    try:
        result = app(args=argv, standalone_mode=False)
    except LorakitError as exc:
        print(f"lorakit: error: {exc}", file=sys.stderr)
        sys.exit(exc.code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)
