"""Reading a run record back (`lorakit train --from`, `rlhf --from`): every key that is not what
lorakit wrote is said at once, a record aliased into a billion values is refused, the job is
rebuilt from the record's resolved preset for the ms-swift major it was made for, and the command
rendered now must be the one recorded (`differences`, flag by flag). Writing a record is
lorakit.record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from lorakit import presets
from lorakit import record as written  # the writing side: its swift_on_path and swift_version (tests patch them there)
from lorakit.errors import EnvironmentProblem, LorakitError
from lorakit.fixups import apply_fixups
from lorakit.job import Job, build_job
from lorakit.presets import Resolved
from lorakit.record import FORMAT, PRESET_KEYS, RECORD_KEYS, RECORD_NAME
from lorakit.render import Command
from lorakit.swiftenv import SUPPORTED_MAJORS
from lorakit.values import as_int


def _strings(where: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        return [f"command: key {where!r} must be a list of strings, got {type(value).__name__}"]
    return [f"command: key {where}[{i}] must be a string, got {type(v).__name__}"
            for i, v in enumerate(value) if not isinstance(v, str)]


def _command_problems(command: Any) -> list[str]:
    if not isinstance(command, dict):
        return [f"key 'command' must be a mapping, got {type(command).__name__}"]
    out = [f"command: unknown key {k!r} (allowed: argv, env, unset)" for k in command
           if k not in ("argv", "env", "unset")]
    argv, env = command.get("argv"), command.get("env")
    out += _strings("argv", argv) + _strings("unset", command.get("unset", []))
    if isinstance(argv, list) and len(argv) < 2:
        out.append("command: key 'argv' must start with swift and its command")
    if not isinstance(env, dict):
        return out + [f"command: key 'env' must be a mapping, got {type(env).__name__}"]
    return out + [f"command: key env.{k} must be a string, got {type(v).__name__}"
                  for k, v in env.items() if not isinstance(v, str)]


def _preset_problems(preset: Any) -> list[str]:
    if not isinstance(preset, dict):
        return [f"key 'preset' must be a mapping, got {type(preset).__name__}"]
    out = [f"preset: unknown key {k!r} (a record's preset is resolved: {', '.join(PRESET_KEYS)})"
           for k in preset if k not in PRESET_KEYS]
    if "command" not in preset:
        out.append("preset: key 'command' is missing")
    # presets' own rules, for the keys a preset file and a record share
    body = {k: v for k, v in preset.items() if k in PRESET_KEYS}
    return out + [f"preset: {p}" for p in presets.shape_problems(body)]


def problems(data: dict[str, Any]) -> list[str]:
    """Every key of a run record that is not what `lorakit train` wrote, not just the first."""
    out = [f"unknown key {k!r} (a run record has {', '.join(RECORD_KEYS)})" for k in data if k not in RECORD_KEYS]
    major = data.get("swift_major")
    if isinstance(major, bool) or major not in SUPPORTED_MAJORS:
        out.append(f"key 'swift_major' must be one of {', '.join(map(str, SUPPORTED_MAJORS))}, got {major!r}")
    if not isinstance(data.get("versions", {}), dict):
        out.append(f"key 'versions' must be a mapping, got {type(data['versions']).__name__}")
    return out + _preset_problems(data.get("preset")) + _command_problems(data.get("command"))


def record_path(path: Path) -> Path:
    """`--from` takes a record, or a dir: a run dir (vN-...) names its launch's record (its own
    copy, else the index entry that found it); an output dir, its newest launch's."""
    from lorakit import runindex

    path = Path(path)
    if not path.is_dir():
        return path
    found = runindex.record_of_run_dir(path)
    if found is None:
        raise LorakitError(f"--from {path}: no lorakit run record in this dir",
                           hint=f"give a {RECORD_NAME}, a file under {runindex.RECORDS}/, or a run dir that "
                                "lorakit launched; `lorakit runs OUTPUT` lists them")
    return found


# A record is a few hundred values; aliases (which lorakit never writes) could make 1 KB of YAML
# stand for 10**9 of them ("billion laughs"), which rendering the argv would then spell out.
MAX_VALUES = 100_000


def _values_past(data: Any, limit: int) -> bool:
    """Whether `data`, expanded, holds more than `limit` values (iterative: an alias cycle ends too)."""
    stack, seen = [data], 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def read(path: Path) -> dict[str, Any]:
    what = presets._not_a_file(Path(path))
    if what is not None and what.endswith("not a YAML file"):  # a FIFO would block the read forever
        raise LorakitError(f"--from {path}: {what}",
                           hint=f"give the {RECORD_NAME} that `lorakit train` wrote into its output dir")
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise LorakitError(f"--from {path}: cannot read the run record: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise LorakitError(f"--from {path}: not valid YAML") from None
    except RecursionError:  # PyYAML's composer recurses once per level: [[[[… past Python's stack
        raise LorakitError(f"--from {path}: nested too deeply to be a run record",
                           hint=f"give the {RECORD_NAME} that `lorakit train` wrote into its output dir") from None
    if _values_past(data, MAX_VALUES):
        raise LorakitError(f"--from {path}: expands to more than {MAX_VALUES} values (YAML aliases?): "
                           "not a record lorakit wrote",
                           hint=f"give the {RECORD_NAME} that `lorakit train` wrote into its output dir")
    if isinstance(data, dict) and isinstance(data.get("lorakit_record"), bool):  # True == 1 to Python
        data = {**data, "lorakit_record": str(data["lorakit_record"])}
    newer = isinstance(data, dict) and as_int(data.get("lorakit_record")) is not None \
        and as_int(data["lorakit_record"]) > FORMAT
    if newer:
        raise LorakitError(f"--from {path}: a newer lorakit wrote this record (format {data['lorakit_record']}); "
                           f"this lorakit reads format {FORMAT}",
                           hint="pip install -U lorakit, or copy the record's `preset:` section into a preset "
                                "and use -p")
    if not isinstance(data, dict) or data.get("lorakit_record") != FORMAT:
        raise LorakitError(f"--from {path}: not a lorakit run record (format {FORMAT})",
                           hint=f"give the {RECORD_NAME} that `lorakit train` wrote into its output dir")
    found = problems(data)
    hint = "restore what lorakit wrote, or copy the record's `preset:` section into a preset and use -p"
    if len(found) == 1:
        raise LorakitError(f"--from {path}: {found[0]}", hint=hint)
    if found:
        raise LorakitError(f"--from {path}: {len(found)} problems:\n" + "\n".join(f"  - {p}" for p in found),
                           hint=hint)
    return data


def _swift_major_here(path: Path, major: int, dry_run: bool = False) -> str | None:
    """The record renders for the ms-swift it ran on; the `swift` on PATH, which a relaunch
    runs, must be that major (3.x's train_type is 4.x's tuner_type). No `swift`, or one whose
    version cannot be told: a dry-run is still fine, and so is a dry-run beside the other major
    (it prints the recorded command, for wherever that major is). Returns the version found."""
    swift = written.swift_on_path()
    installed = written.swift_version(swift)
    head = (installed or "").split(".", 1)[0]
    if head.isdigit() and int(head) != major and dry_run:
        from lorakit import report

        report.note(f"the `swift` on PATH ({swift}) runs ms-swift {installed}; rendering the record for "
                    f"{major}.x as it ran (a launch here is refused)")
        return None
    if head.isdigit() and int(head) != major:
        # the record is fine; the ms-swift installed here is not the one it needs: exit 1
        raise EnvironmentProblem(
            f"--from {path}: the record was made for ms-swift {major}.x; the `swift` on PATH ({swift}) "
            f"runs ms-swift {installed} ({head}.x)",
            hint=f"put an ms-swift {major}.x `swift` first on PATH (or pip install 'ms-swift>={major},<{major + 1}' "
                 f"in its environment), or copy the record's `preset:` section into a preset and render it "
                 f"for {head}.x with -p")
    return installed


def replay_job(path: Path, *, dry_run: bool = False) -> tuple[Job, dict[str, Any]]:
    """The recorded job, rebuilt from its resolved preset. The shell's CUDA_VISIBLE_DEVICES does
    not count (env {}): the record's GPU list decides, as it did at launch."""
    record = read(path)
    major = record["swift_major"]
    installed = _swift_major_here(path, major, dry_run)
    data = presets._normalised({k: v for k, v in record["preset"].items() if v is not None})
    who = f"record {path}"
    sources = {f"{section}.{key}": who for section in ("launch", "args", "env") for key in data.get(section) or {}}
    resolved = Resolved(name=str(record.get("preset_name") or path), path=Path(path), data=data,
                        sources=sources, chain=[str(path)])
    job = build_job(resolved, {}, swift_major=major, swift_version=installed,
                    swift_source=f"ms-swift {major}.x (from the record)")
    return apply_fixups(job), record


def _by_flag(argv: list[str]) -> dict[str, list[tuple[str, ...]]]:
    """'swift sft --a 1 --b x y' -> {'--a': [('1',)], '--b': [('x', 'y')]}: argparse does not care
    about the order of flags, only of each flag's values."""
    out: dict[str, list[tuple[str, ...]]] = {}
    flag, values = None, []
    for item in [*argv[2:], "--"]:
        if item.startswith("--"):
            if flag is not None:
                out.setdefault(flag, []).append(tuple(values))
            flag, eq, value = item.partition("=")  # an attached `--system=-x` (render.flag_items)
            values = [value] if eq and flag != "--" else []
        else:
            values.append(item)
    return out


def _shown(values: list[tuple[str, ...]] | None) -> str:
    import shlex

    if not values:
        return "nothing"
    return "; ".join(shlex.join(v) or "(no value)" for v in values)


def differences(rendered: Command, recorded: Mapping[str, Any]) -> list[str]:
    """Each env variable and each flag whose values differ, order aside."""
    out = []
    env, want = dict(rendered.env), dict(recorded["env"])
    for name in sorted(set(env) | set(want)):
        if env.get(name) != want.get(name):
            have, had = (repr(e[name]) if name in e else "unset" for e in (env, want))
            out.append(f"env {name}: the record has {had}, this renders {have}")
    if list(rendered.argv[:2]) != list(recorded["argv"][:2]):
        out.append(f"command: the record has {' '.join(recorded['argv'][:2])}, this renders "
                   f"{' '.join(rendered.argv[:2])}")
    flags, wanted = _by_flag(list(rendered.argv)), _by_flag(list(recorded["argv"]))
    for flag in [*wanted, *(f for f in flags if f not in wanted)]:
        if flags.get(flag) != wanted.get(flag):
            out.append(f"{flag}: the record has {_shown(wanted.get(flag))}, this renders {_shown(flags.get(flag))}")
    return out


def check_replay(record: Mapping[str, Any], command: Command, path: Path) -> None:
    """`--from` promises exactly the recorded launch: refuse when its preset renders otherwise.
    Key order does not count (a record re-saved with sorted keys is the same launch)."""
    diff = differences(command, record["command"])
    if not diff:
        return
    from importlib import metadata

    was = (record.get("versions") or {}).get("lorakit")
    now = metadata.version("lorakit")
    if was == now:
        head = (f"--from {path}: the record's preset: section renders differently from its command: section "
                "(edited by hand?)")
        hint = "restore the record as lorakit wrote it, or copy its `preset:` section into a preset and use -p"
    else:
        head = (f"--from {path}: this lorakit {now} renders the record differently from lorakit "
                f"{was or '(unknown version)'}, which wrote it")
        hint = (f"relaunch with lorakit {was or 'of the record'}, or use the record's `preset:` section as a "
                "preset (-p) to take today's rendering")
    raise LorakitError(head + ":\n" + "\n".join(f"  - {d}" for d in diff), hint=hint)
