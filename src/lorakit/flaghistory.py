"""The flag history: when each of ms-swift's own flags first and last appeared, per released minor.

`scripts/gen_swift_history.py` reads the released wheels' source and writes
lorakit/data/swift_flag_history.json; this module answers from it. The snapshots (lorakit.swiftflags)
stay the answer for types and for every flag transformers provides; the history says whether an
older minor has a flag (present_in, absence), and where its choices differ (choices_in,
choice_absence, spec_at). A job for the snapshot's own minor never reads it: target_minor returns
None there, so the dry-run of a built-in preset stays as fast as before
(tests/test_flag_checks.py::test_the_newest_minor_never_reads_the_history).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from lorakit.swiftflags import DATA, FlagSpec, _token, snapshot_version

HISTORY = DATA / "swift_flag_history.json"


@lru_cache(maxsize=None)
def _history() -> dict:
    try:
        return json.loads(HISTORY.read_text(encoding="utf-8"))["majors"]
    except FileNotFoundError:
        return {}


def minor_of(version: str) -> str:
    """'3.12.6' -> '3.12' (no checks: callers pass versions they have parsed)."""
    return ".".join(version.split(".")[:2])


def minors(major: int) -> list[str]:
    """The released minors of ms-swift <major>.x the history covers, oldest first."""
    return list(_history().get(str(major), {}).get("minors", ()))


def target_minor(major: int, version: str | None) -> str | None:
    """The older minor a job must fit, or None when the major's snapshot is the whole answer:
    no exact version (a major alone), another major, the snapshot's own minor, or a minor the
    history does not know (newer than it: the newest snapshot is the best guess)."""
    if not version:
        return None
    head = version.split(".")
    if len(head) < 2 or not (head[0].isdecimal() and head[1].isdecimal()) or int(head[0]) != major:
        return None
    minor = f"{int(head[0])}.{int(head[1])}"
    if minor == minor_of(snapshot_version(major)) or minor not in minors(major):
        return None
    return minor


def targeted(major: int, version: str | None) -> tuple[int, int]:
    """The minor a job targets, to compare with `<`: target_minor's, else the snapshot's own (a
    major alone, or a minor newer than the history, is judged as the newest)."""
    text = target_minor(major, version) or minor_of(snapshot_version(major))
    head, tail = text.split(".")
    return int(head), int(tail)


@dataclass(frozen=True)
class Absence:
    """Why ms-swift `target` lacks a flag that other minors of its major have."""

    name: str
    target: str
    kind: str  # "new" (first appeared after target), "removed" (gone by target), "gap" (only target lacks it)
    first: str
    last: str
    since: str | None = None  # "removed": the first minor without it
    replacement: str | None = None  # "removed": the flag that replaced it (a rename)
    older_name: str | None = None  # "new": what the target minor calls the setting, if it was renamed


def _command_history(major: int, command: str) -> dict:
    return _history().get(str(major), {}).get("commands", {}).get(command, {})


def present_in(major: int, command: str, name: str, minor: str) -> bool:
    """Does ms-swift `minor` have ms-swift's own flag `name`? False for what the history does not
    track (transformers' flags, unknown names): the snapshot answers for those."""
    life = _command_history(major, command).get("flags", {}).get(name)
    return life is not None and _lives(life, minor, minors(major))


def _lives(life: dict, minor: str, order: list[str]) -> bool:
    at = order.index(minor)
    return order.index(life["first"]) <= at <= order.index(life["last"]) and minor not in life.get("gaps", ())


def absence(major: int, command: str, name: str, minor: str | None = None) -> Absence | None:
    """Why `name` is not a flag of ms-swift `minor` (default: the snapshot's), or None when it is,
    or when the history does not track it."""
    history = _command_history(major, command)
    life = history.get("flags", {}).get(name)
    if life is None:
        return None
    order = minors(major)
    minor = minor or minor_of(snapshot_version(major))
    if minor not in order or _lives(life, minor, order):
        return None
    first, last, at = life["first"], life["last"], order.index(minor)
    renamed = history.get("renamed", {})
    if at < order.index(first):
        older = next((old for old, new in renamed.items() if new == name and present_in(major, command, old, minor)),
                     None)
        return Absence(name, minor, "new", first, last, older_name=older)
    if at > order.index(last):
        return Absence(name, minor, "removed", first, last, since=order[order.index(last) + 1],
                       replacement=renamed.get(name))
    return Absence(name, minor, "gap", first, last)


# Choices per minor: the history's `choices` holds, per flag, the runs of minors whose Literal
# choices are not the snapshot's ({"first", "last", "choices"}, null: any text); every other minor
# the flag lives in has the snapshot's. 3.0's RLHFArguments.rlhf_type has no 'grpo' (3.1). null is
# "no choices", whatever the type: the history does not record types (3.3-3.9's scale_rewards: bool).
def choices_in(major: int, command: str, spec: FlagSpec, minor: str) -> tuple[str, ...] | None:
    """The choices of `spec`'s flag in ms-swift `minor` (None: any text)."""
    order = minors(major)
    for run in _command_history(major, command).get("choices", {}).get(spec.name, ()):
        if order.index(run["first"]) <= order.index(minor) <= order.index(run["last"]):
            return None if run["choices"] is None else tuple(run["choices"])
    return spec.choices


@dataclass(frozen=True)
class ChoiceAbsence:
    """A value other minors of the target's major take as a choice, but not the target minor."""

    name: str
    value: str
    target: str
    takes: tuple[str, ...]  # the target minor's choices
    newer: str | None  # the first minor after the target that takes it
    older: str | None  # else the last minor before the target that takes it


def choice_absence(major: int, command: str, spec: FlagSpec, value: Any, minor: str) -> ChoiceAbsence | None:
    """The first item of `value` (as rendered) that ms-swift `minor` refuses as a choice while
    another minor of its major takes it; None when the history has no choices runs for the flag."""
    if not _command_history(major, command).get("choices", {}).get(spec.name):
        return None
    takes = choices_in(major, command, spec, minor)
    items = value if isinstance(value, (list, tuple)) else [value]
    if takes is None or any(isinstance(item, (dict, list, tuple)) for item in items):
        return None
    life = _command_history(major, command).get("flags", {}).get(spec.name)
    order = minors(major)
    living = [m for m in order if life is None or _lives(life, m, order)]
    for token in (_token(item) for item in items if item is not None):
        if token in takes:
            continue
        # only a minor that lists it counts: one without choices (3.3-3.9's scale_rewards is a bool)
        # would make every typo "a choice of 3.9"
        accept = [m for m in living if token in (choices_in(major, command, spec, m) or ())]
        newer = next((m for m in accept if order.index(m) > order.index(minor)), None)
        older = next((m for m in reversed(accept) if order.index(m) < order.index(minor)), None)
        if newer or older:
            return ChoiceAbsence(spec.name, token, minor, takes, newer, None if newer else older)
    return None


def spec_at(major: int, command: str, spec: FlagSpec, minor: str) -> FlagSpec:
    """`spec` with ms-swift `minor`'s choices, for check_value, and the choices other minors of
    its major take instead (`elsewhere`), so that a refused 'GRPO' on 3.0 can say 'grpo' is 3.1's."""
    takes = choices_in(major, command, spec, minor)
    if takes is None or not _command_history(major, command).get("choices", {}).get(spec.name):
        return spec if takes == spec.choices else replace(spec, choices=takes)
    order = minors(major)
    life = _command_history(major, command).get("flags", {}).get(spec.name)
    living = [m for m in order if life is None or _lives(life, m, order)]
    elsewhere: dict[str, str] = {}
    for m in living:  # oldest first: the first newer minor wins, else the last older one
        for choice in choices_in(major, command, spec, m) or ():
            if choice in takes or (choice in elsewhere and elsewhere[choice].startswith("from")):
                continue
            newer = order.index(m) > order.index(minor)
            elsewhere[choice] = f"from ms-swift {m}" if newer else f"last in ms-swift {m}"
    if takes == spec.choices and not elsewhere:
        return spec
    return replace(spec, choices=takes, elsewhere=tuple(elsewhere.items()))
