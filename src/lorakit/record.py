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

from lorakit import envvars
from lorakit.errors import write_failed
from lorakit.job import Job
from lorakit.render import LORAKIT_ONLY_ARGS, Command
from lorakit.swiftenv import installed_version
from lorakit.values import as_int

RECORD_NAME = "lorakit-run.yaml"
FORMAT = 1  # bump when a field changes meaning
PACKAGES = ("lorakit", "ms-swift", "torch", "transformers", "peft")


def record_name(node_rank: Any) -> str:
    rank = as_int(node_rank)
    return RECORD_NAME if not rank else f"lorakit-run.node{rank}.yaml"


def output_dir(job: Job) -> Path:
    """Where ms-swift will write: output_dir, or its own default output/<model name>
    (4.6.0 swift/arguments/sft_args.py:401 _init_output_dir, with model_suffix = get_model_name:
    a hub cache snapshot is named after its repo, not after its commit hash)."""
    from lorakit.swiftregistry import model_name

    if job.args.get("output_dir") not in (None, ""):
        return Path(str(job.args["output_dir"]))
    model = str(job.args.get("model") or "").rstrip("/")
    return Path("output") / (model_name(model, job.swift_major) if model else "")


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


OUT_HINT = "make the output dir writable, or choose another --output-dir"


def _made_dirs(folder: Path) -> list[Path]:
    """The folders mkdir(parents=True) would create for `folder`, deepest first."""
    made, at = [], folder
    while not at.exists() and at != at.parent:
        made.append(at)
        at = at.parent
    return made


def write(path: Path, record: Mapping[str, Any]) -> Path:
    """Atomically replace the previous launch's record (rename: no half-written file). A failed
    write leaves nothing behind: no temporary file, and no folder it made (still empty)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    made = _made_dirs(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(dumps(record), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        if tmp.exists():
            tmp.unlink()
        for folder in made:
            try:
                folder.rmdir()  # only if still empty: ms-swift or another run may have written there
            except OSError:
                break
        raise write_failed(f"cannot write the run record {path}", exc, OUT_HINT) from None
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
        raise write_failed(f"cannot write the run record under {folder}", exc, OUT_HINT) from None


def write_merge_record(merged_dir: Path, job: Job, command: Command, *, cwd: Path | None = None) -> Path:
    """After a successful merge only: MERGED/lorakit-run.yaml."""
    return write(Path(merged_dir) / RECORD_NAME, contents(job, command, cwd=cwd or Path.cwd()))


# base_model: a merge record says which base it merged into (cli/merge.py adds it)
RECORD_KEYS = ("lorakit_record", "time", "host", "cwd", "git", "versions", "swift_major", "preset_name", "base_model",
               "preset", "adjustments", "command")
PRESET_KEYS = ("command", "launch", "args", "env")  # resolved: no extends, no description
