"""`lorakit presets list | show | init`."""

from __future__ import annotations

import os

from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml

from lorakit import presets
from lorakit.cli.common import write_user_file
from lorakit.errors import LorakitError

app = typer.Typer(help="List, show and copy presets.", no_args_is_help=True, add_completion=False)


@app.command("list")
def list_() -> None:
    """The built-in presets (every YAML file directly in configs/)."""
    for name in presets.builtin_names():
        description = presets.read_yaml(presets.builtin_dir() / f"{name}.yaml").get("description", "")
        if not description:
            description = presets.load(name).data.get("description", "")
        typer.echo(f"{name:<16} {description}")


def flattened(name: str, key: str) -> dict:
    """The preset with its extends chain applied: one self-contained, editable file."""
    data = presets.load(name, key=key).data
    order = ("description", "command", "launch", "args")
    return {k: data[k] for k in order if k in data}


@app.command()
def show(name: Annotated[str, typer.Argument(help="Built-in name or a YAML file.")]) -> None:
    """Print a preset with its extends chain applied."""
    resolved = presets.load(name, key="presets show NAME")
    typer.echo(f"# {resolved.name}: " + " <- ".join(resolved.chain), err=True)
    typer.echo(yaml.safe_dump(flattened(name, "presets show NAME"), sort_keys=False, allow_unicode=True), nl=False)


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="The built-in to copy.")],
    dest: Annotated[Optional[str], typer.Argument(help="Default: ./NAME.yaml")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite DEST if it exists.")] = False,
) -> None:
    """Copy a built-in preset into an editable YAML file (extends chain applied)."""
    if dest is not None and dest.endswith(("/", os.sep)):  # Path() drops the slash that says "a folder"
        raise LorakitError(f"{dest} names a directory, not a file",
                           hint=f"give a file name, e.g. {dest.rstrip('/' + os.sep)}/{name}.yaml")
    dest = Path(dest) if dest else Path(f"{name}.yaml")
    if dest.exists() and not force:
        raise LorakitError(f"{dest} already exists; refusing to overwrite it",
                           hint="choose another DEST, or pass --force")
    text = f"# Copied from lorakit's built-in preset {name!r}; edit freely.\n"
    text += yaml.safe_dump(flattened(name, "presets init NAME"), sort_keys=False, allow_unicode=True)
    if dest.is_dir():
        raise LorakitError(f"{dest} is a directory", hint=f"give a file name, e.g. {dest / (name + '.yaml')}")
    write_user_file(dest, text, f"cannot write {dest}", hint="choose a DEST in an existing, writable directory")
    typer.echo(f"wrote {dest}", err=True)
