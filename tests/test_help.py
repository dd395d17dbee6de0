"""Every command answers --help (exit 0, its own usage), whatever click version typer brings."""

from __future__ import annotations

import pytest

from conftest import run_cli
from lorakit.cli.app import app
import typer


def _commands() -> list[list[str]]:
    group = typer.main.get_group(app)
    out = [[]]
    for name, command in group.commands.items():
        out.append([name])
        out += [[name, sub] for sub in getattr(command, "commands", {})]
    return out


@pytest.mark.parametrize("words", _commands(), ids=lambda w: " ".join(w) or "lorakit")
def test_help_works(words):
    result = run_cli([*words, "--help"])
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("Usage: lorakit " + " ".join(words)), result.stdout[:200]
