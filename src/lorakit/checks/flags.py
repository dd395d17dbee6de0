"""ms-swift flag names, types and choices, against the snapshot of the target version, and
whether the target minor has them (the flag history).

ms-swift itself only rejects a typo after its multi-second import (`ValueError:
remaining_argv: ['--lora_rnak', '8']`); the snapshot (scripts/gen_swift_flags.py) lets
lorakit say it at once, with a did-you-mean. The snapshot is the newest minor of each major;
for an older one (ms-swift 3.6 installed, or --swift-version 3.6) the history
(scripts/gen_swift_history.py) says which of ms-swift's own flags it has not got yet, or has
no longer, and which choices of a Literal flag it lacks (3.0's rlhf_type has no 'grpo', from
3.1). Types are still the snapshot's.
"""

from __future__ import annotations

from lorakit import flaghistory, flagpatches, swiftflags
from lorakit.checks.facts import Facts
from lorakit.checks.features import TRAINS
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.names import OLD_NAMES, spelled_for
from lorakit.render import LORAKIT_ONLY_ARGS


def _other_version(job: Job, name: str) -> str:
    for major in swiftflags.available_majors():
        if major != job.swift_major and name in swiftflags.load_flags(major, job.command):
            return f" ({name} exists in ms-swift {swiftflags.snapshot_version(major)})"
    return ""


def _unknown(job: Job, flags, key: str, name: str, how: str, minor: str | None = None) -> Finding:
    version = f"ms-swift {minor or swiftflags.snapshot_version(job.swift_major)} `swift {job.command}`"
    if how == "ambiguous":
        could = swiftflags.prefix_matches(flags, name)
        options = swiftflags.prefix_options(flags, name)
        listed_ = ", ".join(options[:6]) + (f" and {len(options) - 6} more" if len(options) > 6 else "")
        what = (f"it matches both spellings of --{could[0]}, which argparse rejects as ambiguous"
                if len(could) == 1 else f"it could be {listed_}")
        return about(job, ERROR, "flags.ambiguous", f"args.{key}", f"--{name} is ambiguous for {version}: {what}",
                       "write the full flag name")
    hint = _old_name_hint(job, flags, name, minor)
    if hint is None:
        close = swiftflags.suggest(flags, name)
        hint = (f"did you mean {' or '.join(close)}?" if close else
                f"see `swift {job.command} --help` for the flags of this version")
    return about(job, ERROR, "flags.unknown", f"args.{key}",
                   f"unknown flag --{name} for {version}{_other_version(job, name)}", hint)


def _old_name_hint(job: Job, flags, name: str, minor: str | None) -> str | None:
    """`--model_id_or_path` -> "did you mean model?": ms-swift 2.x names, which no spelling
    distance finds (model_id_or_path is nearer to model_type than to model)."""
    new = OLD_NAMES.get(name)
    if new is None:
        return None
    spelled = spelled_for(new, job.swift_major, job.command)
    if spelled not in flags:
        return None  # e.g. export's merge_lora_and_save under `swift sft`
    hint = f"did you mean {spelled}? {name} is the ms-swift 2.x name"
    later = flaghistory.absence(job.swift_major, job.command, spelled, minor) if minor else None
    return f"{hint} ({spelled} is new in ms-swift {later.first})" if later and later.kind == "new" else hint


def _absent(job: Job, key: str, name: str, gone: flaghistory.Absence) -> Finding:
    """A flag other minors of the target's major have, but not the target minor."""
    major = job.swift_major
    if gone.kind == "new":
        message = f"--{name} is new in ms-swift {gone.first}; you target {gone.target}"
        hint = f"upgrade to ms-swift {gone.first} or later (pip install 'ms-swift>={gone.first},<{major + 1}')"
        hint = (f"write --{gone.older_name} for ms-swift {gone.target} (renamed to {name} in {gone.first}), or {hint}"
                if gone.older_name else f"{hint}, or drop {key}")
        return about(job, ERROR, "flags.too_new", f"args.{key}", message, hint)
    if gone.kind == "removed":
        message = f"--{name} was removed in ms-swift {gone.since} (last in {gone.last}); you target {gone.target}"
        hint = (f"use --{gone.replacement} instead: ms-swift {gone.since} renamed {name} to {gone.replacement}"
                if gone.replacement else
                f"drop {key}: only ms-swift {_span(gone.first, gone.last)} have it")
        return about(job, ERROR, "flags.removed", f"args.{key}", message, hint)
    message = (f"--{name} is missing from ms-swift {gone.target} (ms-swift {gone.first} to {gone.last} have it "
               f"otherwise); you target {gone.target}")
    return about(job, ERROR, "flags.removed", f"args.{key}", message,
                   f"drop {key}, or target another ms-swift {major}.x minor")


def _choice_absent(job: Job, key: str, moved: flaghistory.ChoiceAbsence) -> Finding:
    """A choice other minors of the target's major take, but not the target minor."""
    name, value, target = moved.name, moved.value, moved.target
    takes = f"{target} takes {', '.join(moved.takes)}"
    if moved.newer:
        message = f"{name}: {value!r} is not a choice in ms-swift {target} (it is from {moved.newer}); {takes}"
        hint = (f"upgrade to ms-swift {moved.newer} or later "
                f"(pip install 'ms-swift>={moved.newer},<{job.swift_major + 1}'), or pick one of {target}'s choices")
        return about(job, ERROR, "flags.too_new", f"args.{key}", message, hint)
    message = f"{name}: {value!r} is no longer a choice in ms-swift {target} (last in {moved.older}); {takes}"
    return about(job, ERROR, "flags.removed", f"args.{key}", message, f"pick one of {target}'s choices")


def _span(first: str, last: str) -> str:
    return first if first == last else f"{first} to {last}"


PLAIN = (str, int, float, bool)
JSON_KEYS = (str, int, float, bool)
_NO_KEY = object()


def yaml_type(value) -> str:
    """What YAML made of an unquoted scalar, in YAML's words."""
    if value is None:
        return "a null"
    names = {"date": "a date", "datetime": "a timestamp", "bytes": "binary data", "set": "a set"}
    return names.get(type(value).__name__, f"a {type(value).__name__}")


def value_problem(value, in_json: bool = False) -> str | None:
    """What no argv can carry as lorakit renders it: YAML's other types, nulls inside argv lists
    (inside a mapping, which renders as one JSON item, a null is JSON's null), NUL bytes (bash
    cannot hold them in argv)."""
    if isinstance(value, (list, tuple)):
        if not in_json and any(item is None for item in value):
            return "has a null item in its list (it would render as the word None)"
        return next((p for p in (value_problem(v, in_json) for v in value) if p), None)
    if isinstance(value, dict):
        # rendered as one JSON item: json.dumps takes text, number and boolean keys (as text);
        # a YAML date or null as a key it cannot write (a traceback in the dry-run, before)
        bad = next((k for k in value if not isinstance(k, JSON_KEYS)), _NO_KEY)
        if bad is not _NO_KEY:
            return (f"has the key {str(bad)!r} in a mapping, which YAML read as {yaml_type(bad)}: "
                    "mapping keys must be text or numbers; quote it")
        return next((p for p in (value_problem(v, True) for v in value.values()) if p), None)
    if isinstance(value, str) and "\0" in value:
        return "contains a NUL byte, which no command line can carry"
    if value is not None and not isinstance(value, PLAIN):
        return f"is {yaml_type(value)} to YAML (from a tag or an unquoted date); quote it to pass text"
    return None


def check_flags(job: Job, facts: Facts) -> list[Finding]:
    try:
        flags = swiftflags.load_flags(job.swift_major, job.command)
    except ValueError:
        return []
    # None: the snapshot's own minor (or a major alone), and the history is never read
    minor = flaghistory.target_minor(job.swift_major, job.swift_version)
    out: list[Finding] = []
    unparsed: set[str] = set()  # keys whose flag the target's parser does not have (not a bad value)
    for key, value in job.args.items():
        if key in LORAKIT_ONLY_ARGS or value is None:
            continue
        name = spelled_for(key, job.swift_major, job.command)
        canonical, how = swiftflags.resolve(flags, name)
        if canonical is None:
            if how == "unknown" and minor is not None and flaghistory.present_in(job.swift_major, job.command, name, minor):
                continue  # an older minor's flag the snapshot no longer has: no type or choices to check
            gone = flaghistory.absence(job.swift_major, job.command, name, minor) if how == "unknown" else None
            out.append(_absent(job, key, name, gone) if gone else _unknown(job, flags, key, name, how, minor))
            if how == "unknown":  # an ambiguous prefix stops argparse itself
                unparsed.add(key)
            continue
        if minor is not None:
            gone = flaghistory.absence(job.swift_major, job.command, canonical, minor)
            if gone:
                out.append(_absent(job, key, canonical, gone))
                unparsed.add(key)
                continue
        patch = flagpatches.first_patch(job.swift_major, job.command, canonical, job.swift_version)
        if patch:  # the target's minor has it, but only from a later patch (3.3.0 vs 3.3.1)
            unparsed.add(key)
            out.append(about(job, ERROR, "flags.too_new", f"args.{key}",
                             f"--{canonical} is new in ms-swift {patch}; you target {job.swift_version}",
                             f"upgrade to ms-swift {patch} or later (pip install 'ms-swift>={patch},"
                             f"<{job.swift_major + 1}'), or drop {key}"))
            continue
        odd = value_problem(value)
        if odd:
            out.append(about(job, ERROR, "flags.value", f"args.{key}", f"{key} {odd}", _fix_hint(job, key, name)))
            continue
        spec = flags[canonical]
        if value is True and spec.type != "bool" and job.source_of(f"args.{key}") == "-- extra flags":
            # parse_extra reads a bare `--flag` as a switch; ms-swift's argparse would say
            # "expected one argument" for any other kind of flag
            out.append(about(job, ERROR, "flags.value", f"args.{key}", f"--{name} after -- has no value",
                               f"write --{name} VALUE"))
            continue
        if minor is not None:  # an older minor: its own choices (3.0's rlhf_type has no grpo)
            spec_then = flaghistory.spec_at(job.swift_major, job.command, spec, minor)
            # a list for a one-value flag is refused as a list first, whatever its items
            several = isinstance(value, (list, tuple)) and spec_then.nargs not in ("+", "*")
            moved = None if several else flaghistory.choice_absence(job.swift_major, job.command, spec, value, minor)
            if moved:
                out.append(_choice_absent(job, key, moved))
                continue
            spec = spec_then
        problem = swiftflags.check_value(spec, value, flags) or _strict_json(spec.name, value)
        if problem and spec.type == "json" and ": the JSON does not parse (" in problem:
            # ms-swift json_repairs JSON that does not parse (swift/utils/utils.py json_parse_to_dict,
            # strict; strict=False keeps the text) and goes on: a likely mistake, not a refusal
            out.append(about(job, WARNING, "flags.value", f"args.{key}",
                             problem + ": ms-swift guesses a repair (json_repair) and "
                             + ("trains" if job.command in TRAINS else "runs") + " with whatever that gives",
                             "check quotes and braces"))
        elif problem:
            out.append(about(job, ERROR, "flags.value", f"args.{key}", problem, _fix_hint(job, key, name)))
    return _ignored(job, out, unparsed)


# Flags ms-swift's parser does not know end in remaining_argv, which --ignore_args_error true (set
# by every command ms-swift's web-ui writes) turns from a ValueError into a warning (4.6.0
# swift/pipelines/base.py:36-40, 3.12.6 swift/llm/base.py:32-36). Ambiguous prefixes and bad
# values still stop argparse itself.
NOT_PARSED = ("flags.unknown", "flags.too_new", "flags.removed")


def _ignored(job: Job, found: list[Finding], unparsed: set[str]) -> list[Finding]:
    from dataclasses import replace

    from lorakit.values import as_bool

    if as_bool(job.args.get("ignore_args_error", False)) is not True:  # a bad value is refused above
        return found
    return [replace(f, level=WARNING, code="flags.ignored",
                    message=f"{f.message}: ignore_args_error is true, so ms-swift only warns (\"remaining_argv: "
                            "[...]\") and runs without it")
            if f.code in NOT_PARSED and f.key.removeprefix("args.") in unparsed else f for f in found]


# The flags ms-swift reads with json_parse_to_dict(strict=True) (4.6.0 arguments/: data_args.py
# columns, base_args.py model_kwargs, model_args.py max_memory, eval_args.py eval_*/extra_eval_args;
# 3.12.6 the same; trainers/arguments.py lr_scheduler_kwargs and gradient_checkpointing_kwargs in
# both): a file path is loaded, anything else json.loads'd, then json_repair'd and
# loaded again. Text with no braces that names no file ('old:new', #5044) repairs to '' and
# ms-swift stops in argument parsing ("Unable to parse json string"); other consumers need a mapping.
STRICT_JSON = ("columns", "model_kwargs", "max_memory", "eval_dataset_args", "eval_generation_config",
               "extra_eval_args", "lr_scheduler_kwargs", "gradient_checkpointing_kwargs")


def _strict_json(name: str, value) -> str | None:
    import json
    import os

    if name not in STRICT_JSON or not isinstance(value, str) or value.lstrip()[:1] in ("{", "["):
        return None  # a mapping renders as JSON; braces that do not parse: check_value's warning
    if os.path.exists(value):  # json_parse_to_dict json.load()s a path (utils.py:496-498)
        if os.path.isdir(value):
            return f"{name} {value!r} is a directory: ms-swift reads a {name} path as a JSON file"
        try:
            with open(value, "rb") as f:
                data = f.read(1 << 20)
            if len(data) < 1 << 20 and not isinstance(json.loads(data.decode("utf-8")), dict):
                return f"{name} {value!r}: the file holds JSON, but not a mapping ({{\"old\": \"new\"}})"
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            return f"{name} {value!r}: the file is not JSON, and ms-swift json.load()s a {name} path"
        return None
    try:
        if isinstance(json.loads(value), dict):
            return None
    except (ValueError, RecursionError):
        pass
    return (f"{name} {value!r} is neither a JSON mapping nor a file: ms-swift's json_parse_to_dict cannot read "
            "it and stops while parsing its arguments (\"Unable to parse json string\")"
            + ("; columns maps old names to new: '{\"old_name\": \"new_name\"}'" if name == "columns" else
               "; write it as a JSON object, e.g. '{\"key\": \"value\"}'"))


def _fix_hint(job: Job, key: str, name: str) -> str:
    """Where the user fixes it: the flag they wrote after `--`, else the preset or a --set."""
    if job.source_of(f"args.{key}") == "-- extra flags":
        return f"fix --{name} after --"
    return f"fix {key} in the preset, or override it with --set {key}=..."


CHECKS = [check_flags]
