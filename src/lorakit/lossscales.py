"""Which `--loss_scale` values an ms-swift release accepts (src/lorakit/data/swift_loss_scales.json,
from every released wheel by scripts/gen_swift_loss_scales.py).

The flag is a plain string to argparse; ms-swift looks the value up in its loss-scale registry only
when it builds the template, after the model has loaded, so a name the release lacks is a KeyError
a minute in (ms-swift #4382: `ignore_empty_think` on 3.3.0.post1; it came in 3.4.1). Three
grammars, by release: `key` (3.0-3.11, one registry key), `pair` (3.12-4.3.0, BASE+NAME split once),
`chain` (4.3.1+, BASE+NAME+NAME...); a base outside ALL_BASE_STRATEGY is refused in both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

# a dev/rc of a patch counts as that patch (what it has of it is unknowable: a doubt, not an error)
from lorakit.flagpatches import patch_key as key

DATA = Path(__file__).resolve().parent / "data" / "swift_loss_scales.json"
# the placeholder keys no user writes: 3.12's '-' (a base alone), 4.x's 'base'
PLACEHOLDERS = ("-", "base")


@lru_cache(maxsize=None)
def _table() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8")) if DATA.is_file() else {"versions": [], "runs": []}


@dataclass(frozen=True)
class Release:
    """The release a job's value is judged against."""
    version: str  # the listed patch whose registry is used
    label: str  # what the user targets, in words ('ms-swift 3.3.0.post1', 'ms-swift 4.x (4.6.0)')
    grammar: str
    bases: tuple[str, ...]
    names: tuple[str, ...]
    beyond: bool  # the target is newer than every release the table lists: a doubt, not an error


def _run_of(version: str, table: dict) -> dict:
    k = key(version)
    return next(r for r in table["runs"] if key(r["first"]) <= k <= key(r["last"]))


def release(major: int, version: str | None, table: dict | None = None) -> Release | None:
    """The listed release for a target: its exact patch (or the nearest earlier one, for a
    patch the table does not list), a minor's last patch, or a major's newest. `table`: another
    registry of the same shape (lorakit.losstypes); this one's by default."""
    table = _table() if table is None else table
    listed = [v for v in table["versions"] if v.split(".")[0] == str(major)]
    if not listed:
        return None
    head = (version or "").strip().split(".")
    exact = key(version or "")
    pick, beyond = listed[-1], False
    if exact is not None and exact[0] == major:
        earlier = [v for v in listed if key(v) <= exact]
        if earlier:
            pick, beyond = earlier[-1], exact > key(listed[-1]) and exact[:3] != key(listed[-1])[:3]
        label = f"ms-swift {version}"
    elif len(head) >= 2 and head[0] == str(major) and head[1].isdecimal():
        same = [v for v in listed if v.split(".")[1] == str(int(head[1]))]
        if same:
            pick = same[-1]
        else:
            beyond = int(head[1]) > int(listed[-1].split(".")[1])
        label = f"ms-swift {major}.{int(head[1])} ({pick})"
    else:
        label = f"ms-swift {major}.x ({pick})"
    return replace(_as_release(_run_of(pick, table)), version=pick, label=label, beyond=beyond)


@dataclass(frozen=True)
class Problem:
    part: str  # the piece of the value ms-swift refuses
    why: str  # 'name' (not in the registry), 'base' (before '+', not a base strategy), 'plus', 'chain'
    alone: bool = False  # the whole value: there a base strategy is a name too ('default')


def problems(value: str, at: Release) -> list[Problem]:
    """What ms-swift `at` refuses in `value`, piece by piece, as its get_loss_scale reads it."""
    if at.grammar == "key":
        if value in at.names:
            return []
        return [Problem(value, "plus" if "+" in value else "name", alone=True)]
    if at.grammar == "pair":
        parts = value.split("+", 1)
        if len(parts) == 1:
            return [] if value in at.bases or value in at.names else [Problem(value, "name", alone=True)]
        base, name = parts
        # `loss_scale_map[name](base)`: the name's KeyError comes before the base's refusal
        out = [] if name in at.names else [Problem(name, "chain" if "+" in name else "name")]
        return out + ([] if base in at.bases else [Problem(base, "base")])
    parts = value.split("+")
    names = (parts[1:] or ["base"]) if parts[0] in at.bases else parts
    return [Problem(n, "name", alone=len(parts) == 1) for n in names if n not in at.names]


def _runs(major: int, table: dict | None = None) -> list[dict]:
    return [r for r in (_table() if table is None else table)["runs"] if r["first"].split(".")[0] == str(major)]


def _as_release(run: dict) -> Release:
    return Release(run["first"], f"ms-swift {run['first']}", run.get("grammar", "key"), tuple(run.get("bases", ())),
                   tuple(run["names"]), False)


def where(major: int, value: str, at: Release, table: dict | None = None) -> tuple[str | None, str | None]:
    """(the first later release of the major that reads the whole value, the last earlier one that
    did): judged on the whole value, so an upgrade hint never names a release that refuses it too."""
    later = earlier = None
    for run in _runs(major, table):
        if problems(value, _as_release(run)):
            continue
        if key(run["first"]) > key(at.version) and later is None:
            later = run["first"]
        if key(run["last"]) < key(at.version):
            earlier = run["last"]
    return later, earlier


def stops_at(major: int, value: str, since: str, table: dict | None = None) -> str | None:
    """The first release after `since` that no longer reads the value (an upgrade pin's upper
    bound: `>=3.5.2,<3.12.0` for a name 3.12 renamed), or None when every later one reads it."""
    reading = False
    for run in _runs(major, table):
        if key(run["last"]) < key(since):
            continue
        if problems(value, _as_release(run)):
            if reading:
                return run["first"]
        else:
            reading = True
    return None


def takes(at: Release) -> str:
    names = [n for n in at.names if n not in PLACEHOLDERS]
    if at.grammar == "key":
        return ", ".join(names)
    joined = "+NAME+NAME..." if at.grammar == "chain" else "+NAME"
    return f"{', '.join(at.bases)} or NAME, each optionally BASE{joined}, NAME one of {', '.join(names)}"
