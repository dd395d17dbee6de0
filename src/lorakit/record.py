"""The run record: what one launch ran, in a YAML file next to its results, so that any run
can be told apart from another and relaunched (`lorakit train --from RECORD`).

A training launch writes its own record before ms-swift starts, under a name no later launch
reuses, and indexes it (lorakit.runindex: OUTPUT/lorakit-runs/, OUTPUT/lorakit-runs.jsonl, a copy
in the run's vN dir); OUTPUT/lorakit-run.yaml is the newest launch's (node R > 0 of a multi-node
run writes lorakit-run.nodeR.yaml, so nodes sharing a filesystem keep their own);
a merge writes it into the merged dir only after the merge succeeded, since ms-swift refuses
an output dir that already exists (swift/arguments/export_args.py: _init_output_dir).

Versions are those of the environment the `swift` on PATH runs in (its shebang's Python), which
need not be lorakit's own, and `--from` checks that same `swift`. They come from package
metadata, never an import: importing ms-swift pulls in torch.
"""

from __future__ import annotations

# socket, subprocess, datetime and importlib.metadata are imported where a record is built:
# this module is on the dry-run path (train --from), which must stay near Python's start-up.
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import yaml

from lorakit import envvars, presets
from lorakit.errors import EnvironmentProblem, LorakitError
from lorakit.fixups import apply_fixups
from lorakit.job import Job, build_job
from lorakit.presets import Resolved
from lorakit.render import LORAKIT_ONLY_ARGS, Command
from lorakit.swiftenv import SUPPORTED_MAJORS, installed_version
from lorakit.values import as_int

RECORD_NAME = "lorakit-run.yaml"
FORMAT = 1  # bump when a field changes meaning
PACKAGES = ("lorakit", "ms-swift", "torch", "transformers", "peft")


def record_name(node_rank: Any) -> str:
    rank = as_int(node_rank)
    return RECORD_NAME if not rank else f"lorakit-run.node{rank}.yaml"


def output_dir(job: Job) -> Path:
    """Where ms-swift will write: output_dir, or its own default output/<model name>
    (swift/arguments/sft_args.py: _init_output_dir; model_meta.get_model_name, simplified)."""
    if job.args.get("output_dir") not in (None, ""):
        return Path(str(job.args["output_dir"]))
    model = str(job.args.get("model") or "").rstrip("/")
    return Path("output") / (model.rsplit("/", 1)[-1].replace("___", ".") if model else "")


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively: yaml.safe_dump refuses tuples."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def resolved_preset(job: Job) -> dict[str, Any]:
    """The job as one self-contained preset: extends, options and fixups already applied, the
    GPU list and rank count as they were resolved (not the rules that gave them)."""
    launch = {field: getattr(job.launch, field) for field in (envvars.FIELD[name] for name in envvars.LAUNCH)}
    # global_batch_size is already in gradient_accumulation_steps; rollout_gpus is kept: it makes
    # the job GRPO server mode's paired launch, which a replay must start again (lorakit.paired)
    args = {k: v for k, v in job.args.items()
            if v is not None and (k not in LORAKIT_ONLY_ARGS or k == "rollout_gpus")}
    out = {"command": job.command, "launch": {k: v for k, v in launch.items() if v is not None},
           "args": _plain(args)}
    if job.env:
        out["env"] = dict(job.env)
    return out


def swift_python(swift: str | None) -> str | None:
    """The Python that `swift` runs under: the shebang of ms-swift's own console script. None
    without a `swift`, or for one that is not that script (a wrapper, a test double): what it
    runs cannot be told without running it."""
    if swift is None:
        return None
    try:
        with open(swift, "rb") as handle:
            head = handle.read(2048)
    except OSError:
        return None
    if b"swift.cli" not in head:
        return None
    from lorakit.doctor import interpreter_of

    return interpreter_of(swift)


def _is_lorakits(python: str) -> bool:
    # venv pythons are symlinks to one base python: compare the environments, not the files
    return Path(os.path.abspath(python)).parent.parent == Path(sys.prefix)


def swift_version(swift: str | None) -> str | None:
    """The ms-swift version that `swift` runs; None when that cannot be told. Cheap when `swift`
    is lorakit's own environment's (a dist-info name); another environment's is asked."""
    python = swift_python(swift)
    if python is None:
        return None
    if _is_lorakits(python):
        return installed_version()
    from lorakit import doctor

    return (doctor.versions(python) or {}).get("ms-swift")


def versions(swift: str | None) -> dict[str, str | None]:
    """lorakit's own version, and the rest as the environment that `swift` runs in has them
    (all None when that cannot be told: better unknown than lorakit's environment's, which is
    not necessarily the one that trained)."""
    from importlib import metadata

    def here(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    python = swift_python(swift)
    if python is None:
        found: Mapping[str, str | None] = {}
    elif _is_lorakits(python):
        found = {name: here(name) for name in PACKAGES}
    else:
        from lorakit import doctor

        found = doctor.versions(python) or {}
    return {name: here(name) if name == "lorakit" else found.get(name) for name in PACKAGES}


def swift_on_path(command: Command | None = None) -> str | None:
    """The `swift` a launch of `command` runs (the PATH of its child environment), or without a
    command the one on this environment's PATH."""
    from lorakit.launch import resolve_swift

    return resolve_swift(command.child_env(os.environ) if command is not None else os.environ)


def _git(cwd: Path, *args: str) -> str | None:
    import subprocess

    # GIT_OPTIONAL_LOCKS=0: `git status` must not take index.lock from a git running beside us.
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                              timeout=10, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(cwd: Path) -> dict[str, Any] | None:
    """The commit checked out in cwd and whether tracked files differ from it; None outside git."""
    commit = _git(cwd, "rev-parse", "HEAD")
    if not commit:
        return None
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": bool(status.strip()) if status is not None else None}


def contents(job: Job, command: Command, *, cwd: Path, now: datetime | None = None,
          host: str | None = None) -> dict[str, Any]:
    """The versions are those of the `swift` that runs `command`: the one on the PATH of its
    environment, found as lorakit's launch finds it (cli/run.py: execute)."""
    import socket
    from datetime import datetime, timezone

    now = now or datetime.now(timezone.utc)
    return {
        "lorakit_record": FORMAT,
        "time": now.isoformat(timespec="seconds"),
        "host": host or socket.gethostname(),
        "cwd": str(cwd),
        "git": git_state(cwd),
        "versions": versions(swift_on_path(command)),
        "swift_major": job.swift_major,
        "preset_name": job.preset,
        "preset": resolved_preset(job),
        "adjustments": [f"{f.code}: {f.message}" for f in job.adjustments],
        "command": {"env": dict(command.env), "unset": list(command.unset), "argv": list(command.argv)},
    }


def dumps(record: Mapping[str, Any]) -> str:
    if (record.get("preset") or {}).get("command") == "export":
        head = "# What lorakit merged (swift export), written after the merge succeeded.\n"
    else:
        verb = "rlhf" if (record.get("preset") or {}).get("command") == "rlhf" else "train"
        head = f"# What lorakit launched. Relaunch it with: lorakit {verb} --from THIS_FILE\n"
    return head + yaml.safe_dump(dict(record), sort_keys=False, allow_unicode=True, width=1000)


def write(path: Path, record: Mapping[str, Any]) -> Path:
    """Atomically replace the previous launch's record (rename: no half-written file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(dumps(record), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        if tmp.exists():
            tmp.unlink()
        raise EnvironmentProblem(f"cannot write the run record {path}: {exc.strerror}",
                                 hint="make the output dir writable, or choose another --output-dir") from None
    return path


def write_train_record(job: Job, command: Command, *, cwd: Path | None = None):
    """Before ms-swift starts: this launch's own record (OUTPUT/lorakit-runs/STAMP.yaml, never
    overwritten) with a 'running' line in OUTPUT/lorakit-runs.jsonl (lorakit.runindex), and
    OUTPUT/lorakit-run.yaml (node R > 0: lorakit-run.nodeR.yaml), the newest launch's. Returns
    the runindex.Launch."""
    from lorakit import runindex

    cwd = cwd or Path.cwd()
    folder = output_dir(job)
    folder = folder if folder.is_absolute() else cwd / folder
    data = contents(job, command, cwd=cwd)
    write(folder / record_name(job.launch.node_rank), data)
    try:
        return runindex.start(folder, dumps(data), argv=list(command.argv), env=dict(command.env),
                              node_rank=as_int(job.launch.node_rank), time=data["time"], host=data["host"])
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write the run record under {folder}: {exc.strerror}",
                                 hint="make the output dir writable, or choose another --output-dir") from None


def write_merge_record(merged_dir: Path, job: Job, command: Command, *, cwd: Path | None = None) -> Path:
    """After a successful merge only: MERGED/lorakit-run.yaml."""
    return write(Path(merged_dir) / RECORD_NAME, contents(job, command, cwd=cwd or Path.cwd()))


# base_model: a merge record says which base it merged into (cli/merge.py adds it)
RECORD_KEYS = ("lorakit_record", "time", "host", "cwd", "git", "versions", "swift_major", "preset_name", "base_model",
               "preset", "adjustments", "command")
PRESET_KEYS = ("command", "launch", "args", "env")  # resolved: no extends, no description


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


def _swift_major_here(path: Path, major: int) -> str | None:
    """The record renders for the ms-swift it ran on; the `swift` on PATH, which a relaunch
    runs, must be that major (3.x's train_type is 4.x's tuner_type). No `swift`, or one whose
    version cannot be told: a dry-run is still fine. Returns the version found."""
    swift = swift_on_path()
    installed = swift_version(swift)
    head = (installed or "").split(".", 1)[0]
    if head.isdigit() and int(head) != major:
        raise LorakitError(
            f"--from {path}: the record was made for ms-swift {major}.x; the `swift` on PATH ({swift}) "
            f"runs ms-swift {installed} ({head}.x)",
            hint=f"put an ms-swift {major}.x `swift` first on PATH (or pip install 'ms-swift>={major},<{major + 1}' "
                 f"in its environment), or copy the record's `preset:` section into a preset and render it "
                 f"for {head}.x with -p")
    return installed


def replay_job(path: Path) -> tuple[Job, dict[str, Any]]:
    """The recorded job, rebuilt from its resolved preset. The shell's CUDA_VISIBLE_DEVICES does
    not count (env {}): the record's GPU list decides, as it did at launch."""
    record = read(path)
    major = record["swift_major"]
    installed = _swift_major_here(path, major)
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
            flag, values = item, []
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
