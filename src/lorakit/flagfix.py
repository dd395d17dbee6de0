"""Spell every ms-swift flag out in full before rendering.

argparse (allow_abbrev) accepts `--lora_r` for `--lora_rank` and `--no_<flag>` switches; a
rendered command should not depend on either: a new ms-swift flag can make an abbreviation
ambiguous overnight, and `--no_x true` leaves `true` over (`ValueError: remaining_argv`).
"""

from __future__ import annotations

from dataclasses import replace

from lorakit import swiftflags
from lorakit.findings import ERROR, WARNING
from lorakit.job import Job
from lorakit.names import normalise_arg_key, spelled_for
from lorakit.values import as_bool, finding


def _flags(job: Job):
    try:
        return swiftflags.load_flags(job.swift_major, job.command)
    except ValueError:
        return None


def _from_command_line(source: str) -> bool:
    # command-line sources are option names (--set, --lora-rank, -- extra flags); files are paths
    # or "built-in NAME"
    return source.startswith("-")


def _precedence(job: Job, abbreviated: str, full: str) -> str | None:
    """Which spelling wins when both are set: the command line beats a file; otherwise the
    layers are not known here (two files, or two options), so None: refuse."""
    short_cli = _from_command_line(job.source_of(f"args.{abbreviated}"))
    full_cli = _from_command_line(job.source_of(f"args.{full}"))
    if short_cli == full_cli:
        return None
    return abbreviated if short_cli else full


def expand_abbreviations(job: Job) -> Job:
    flags = _flags(job)
    if flags is None:
        return job
    args, sources, notes = {}, dict(job.sources), list(job.adjustments)
    overridden: set[str] = set()  # full names an abbreviation from the command line replaced
    for key, value in job.args.items():
        name, how = swiftflags.resolve(flags, spelled_for(key, job.swift_major, job.command))
        if how not in ("prefix", "negation") or name is None:
            if key not in overridden:
                args[key] = value
            continue
        full = normalise_arg_key(name)  # lorakit's internal (4.x) spelling; render respells it
        if how == "negation":
            value = as_bool(value) is False  # `--no_x` (true) -> x false; `--no_x false` -> x true
            what = f"--{key} is the negative switch of --{name}: rendered as --{name} {str(value).lower()}"
            fix = f"write {full}: {str(value).lower()} in the preset"
        else:
            what = f"--{key} is argparse's abbreviation of --{name}: rendered in full"
            fix = f"write {full} in the preset"
        if full in job.args:
            winner = _precedence(job, key, full)
            if winner is None:
                notes.append(finding(job, ERROR, "flags.abbreviation.conflict", f"args.{key}",
                                     f"--{key} ({job.source_of(f'args.{key}') or 'preset'}) is --{name}, "
                                     f"which is also set ({job.source_of(f'args.{full}') or 'preset'})",
                                     f"keep one: write {full} once"))
                continue
            if winner == full:
                continue  # the full spelling came from the command line: it wins over the file
            args.pop(full, None)  # the abbreviation came from the command line: it wins
            overridden.add(full)
        notes.append(finding(job, WARNING, "flags.abbreviation", f"args.{key}", what, fix))
        args[full] = value
        sources[f"args.{full}"] = job.source_of(f"args.{key}")
    return replace(job, args=args, sources=sources, adjustments=tuple(notes))
