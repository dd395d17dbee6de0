"""Spell one layer's ms-swift flags in full, before the layers are merged.

argparse (allow_abbrev) accepts `--lora_r` for `--lora_rank` and `--no_<flag>` switches; a
rendered command should not depend on either: a new ms-swift flag can make an abbreviation
ambiguous overnight, and `--no_x true` leaves `true` over (`ValueError: remaining_argv`).

Doing it per layer (each preset file, then the whole command line) is what makes precedence one
mechanism: after this, `lora_r` in a child file is `lora_rank` there, and overrides its parent's
`lora_rank` as any child key does (presets.load merges the layers in order). Only two spellings of
one flag in the same layer are a conflict: no layer order can settle that.
"""

from __future__ import annotations

from typing import Any, Mapping

from lorakit import swiftflags
from lorakit.findings import ERROR, INFO, WARNING, Finding
from lorakit.names import normalise_arg_key, spelled_for
from lorakit.values import as_bool
from lorakit.yamlload import Word


def flag_table(major: int | None, command: Any):
    if major is None or not isinstance(command, str):
        return None
    try:
        return swiftflags.load_flags(major, command)
    except ValueError:
        return None


def settle_word(flags, name: str | None, value: Any) -> Any:
    """An unquoted yes/no/on/off (yamlload.Word) is a boolean for a boolean flag, and the text the
    user wrote for any other: `eval_strategy: no` renders `--eval_strategy no`, never `false`."""
    if not isinstance(value, Word):
        return value
    spec = flags.get(name) if name is not None else None
    return value.truth if spec is not None and spec.type == "bool" else str(value)


def spell_out(args: Mapping[str, Any], who: str, *, major: int | None, command: Any,
              sources: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[Finding], dict[str, str]]:
    """`args` (internal names) with abbreviations and --no_ switches written as the full flag,
    the findings that say so, and for each key of the result the key it was given as.

    `who` names the layer in findings; `sources` (for the command line, which is several options)
    names who set each key instead."""
    flags = flag_table(major, command)
    if flags is None:
        return dict(args), [], {k: k for k in args}
    out: dict[str, Any] = {}
    notes: list[Finding] = []
    full_names: dict[str, str] = {}  # full name -> the abbreviation that set it in this layer
    origin: dict[str, str] = {}
    for key, value in args.items():
        src = (sources or {}).get(key, who)
        name, how = swiftflags.resolve(flags, spelled_for(key, major, command))
        value = settle_word(flags, name, value)
        if how not in ("prefix", "negation") or name is None:
            out[key] = value
            origin[key] = key
            continue
        full = normalise_arg_key(name)  # lorakit's internal (4.x) spelling; render respells it
        if full in args or full in full_names:
            other = key if full in args else full_names[full]
            first = full if full in args else other
            notes.append(Finding(ERROR, "flags.abbreviation.conflict",
                                 f"--{key} ({src}) is --{name}, which is also set "
                                 f"({(sources or {}).get(first, who)})",
                                 hint=f"keep one: write {full} once", key=f"args.{key}", file=src))
            continue
        if how == "negation":
            value = as_bool(value) is False  # `--no_x` (true) -> x false; `--no_x false` -> x true
            what = f"--{key} is the negative switch of --{name}: rendered as --{name} {str(value).lower()}"
            fix = f"write {full}: {str(value).lower()} in the preset"
        else:
            what = f"--{key} is argparse's abbreviation of --{name}: rendered in full"
            fix = f"write {full} in the preset"
        notes.append(Finding(WARNING, "flags.abbreviation", what, hint=fix, key=f"args.{key}", file=src))
        full_names[full] = key
        out[full] = value
        origin[full] = key
    return out, notes, origin


def respelled(written: Mapping[str, tuple[str, str]], *, major: int | None, command: Any) -> list[Finding]:
    """Say where lorakit renders another major's name of a renamed flag: `tuner_type` (4.x) for a
    3.x target goes out as --train_type, and `train_type` for 4.x as --tuner_type. The launch is
    right either way; a user who copies the flag into a plain `swift` command for that version
    gets "remaining_argv" (ms-swift #7836, #8006). `written` maps the internal name to (the name
    as written, who wrote it)."""
    if major is None or not isinstance(command, str):
        return []
    out = []
    for internal, (name, who) in written.items():
        rendered = spelled_for(internal, major, command)
        if rendered != name:
            out.append(Finding(INFO, "flags.respelled",
                               f"{name} is another ms-swift major's name for --{rendered}: rendered as --{rendered} "
                               f"for ms-swift {major}.x, which has no --{name}",
                               hint=f"write {rendered} to match ms-swift {major}.x's own docs and scripts",
                               key=f"args.{internal}", file=who))
    return out
