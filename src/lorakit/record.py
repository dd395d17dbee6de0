"""The run record: what one launch ran, in a YAML file next to its results, so that any run
can be told apart from another and relaunched (`lorakit train --from OUTPUT/lorakit-run.yaml`).

A training launch writes it into the output dir before ms-swift starts (node R > 0 of a
multi-node run writes lorakit-run.nodeR.yaml, so nodes sharing a filesystem keep their own);
a merge writes it into the merged dir only after the merge succeeded, since ms-swift refuses
an output dir that already exists (swift/arguments/export_args.py: _init_output_dir).

Versions come from package metadata, never an import: importing ms-swift pulls in torch.
"""

from __future__ import annotations

# socket, subprocess, datetime and importlib.metadata are imported where a record is built:
# this module is on the dry-run path (train --from), which must stay near Python's start-up.
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from lorakit.errors import EnvironmentProblem, LorakitError
from lorakit.fixups import apply_fixups
from lorakit.job import Job, build_job
from lorakit.presets import Resolved
from lorakit.render import LORAKIT_ONLY_ARGS, Command
from lorakit.swiftenv import installed_version
from lorakit.values import as_int

RECORD_NAME = "lorakit-run.yaml"
FORMAT = 1  # bump when a field changes meaning
PACKAGES = ("lorakit", "ms-swift", "torch", "transformers", "peft")
LAUNCH_FIELDS = ("gpus", "nproc_per_node", "nnodes", "node_rank", "master_addr", "master_port")


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
    launch = {name: getattr(job.launch, name) for name in LAUNCH_FIELDS}
    args = {k: v for k, v in job.args.items() if v is not None and k not in LORAKIT_ONLY_ARGS}
    return {"command": job.command, "launch": {k: v for k, v in launch.items() if v is not None},
            "args": _plain(args)}


def versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


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


def build(job: Job, command: Command, *, cwd: Path, now: datetime | None = None,
          host: str | None = None) -> dict[str, Any]:
    import socket
    from datetime import datetime, timezone

    now = now or datetime.now(timezone.utc)
    return {
        "lorakit_record": FORMAT,
        "time": now.isoformat(timespec="seconds"),
        "host": host or socket.gethostname(),
        "cwd": str(cwd),
        "git": git_state(cwd),
        "versions": versions(),
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
        head = "# What lorakit launched. Relaunch it with: lorakit train --from THIS_FILE\n"
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


def write_train_record(job: Job, command: Command, *, cwd: Path | None = None) -> Path:
    """Before ms-swift starts: OUTPUT/lorakit-run.yaml (node R > 0: lorakit-run.nodeR.yaml)."""
    cwd = cwd or Path.cwd()
    folder = output_dir(job)
    folder = folder if folder.is_absolute() else cwd / folder
    return write(folder / record_name(job.launch.node_rank), build(job, command, cwd=cwd))


def write_merge_record(merged_dir: Path, job: Job, command: Command, *, cwd: Path | None = None) -> Path:
    """After a successful merge only: MERGED/lorakit-run.yaml."""
    return write(Path(merged_dir) / RECORD_NAME, build(job, command, cwd=cwd or Path.cwd()))


def read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise LorakitError(f"--from {path}: cannot read the run record: {exc.strerror}") from None
    except yaml.YAMLError:
        raise LorakitError(f"--from {path}: not valid YAML") from None
    ok = (isinstance(data, dict) and data.get("lorakit_record") == FORMAT
          and isinstance(data.get("preset"), dict) and isinstance(data.get("command"), dict)
          and isinstance(data["command"].get("argv"), list) and isinstance(data["command"].get("env"), dict))
    if not ok:
        raise LorakitError(f"--from {path}: not a lorakit run record (format {FORMAT})",
                           hint=f"give the {RECORD_NAME} that `lorakit train` wrote into its output dir")
    return data


def replay_job(path: Path) -> tuple[Job, dict[str, Any]]:
    """The recorded job, rebuilt from its resolved preset. The shell's CUDA_VISIBLE_DEVICES does
    not count (env {}): the record's GPU list decides, as it did at launch."""
    record = read(path)
    preset = record["preset"]
    data = {key: preset[key] for key in ("command", "launch", "args") if key in preset}
    who = f"record {path}"
    sources = {f"{section}.{key}": who for section in ("launch", "args") for key in data.get(section) or {}}
    resolved = Resolved(name=str(record.get("preset_name") or path), path=Path(path), data=data,
                        sources=sources, chain=[str(path)])
    major = int(record.get("swift_major") or 4)
    job = build_job(resolved, {}, swift_major=major, swift_version=installed_version(),
                    swift_source=f"ms-swift {major}.x (from the record)")
    return apply_fixups(job), record


def check_replay(record: Mapping[str, Any], command: Command, path: Path) -> None:
    """`--from` promises exactly the recorded launch: refuse when this lorakit renders it otherwise."""
    want = record["command"]
    if list(command.argv) == list(want["argv"]) and dict(command.env) == dict(want["env"]):
        return
    was = (record.get("versions") or {}).get("lorakit")
    if dict(command.env) != dict(want["env"]):
        diff = f"env {dict(command.env)} instead of {dict(want['env'])}"
    else:
        diff = f"argv {command.argv} instead of {want['argv']}"
    raise LorakitError(f"--from {path}: this lorakit renders the record differently from lorakit "
                       f"{was or '(unknown version)'}: {diff}",
                       hint="relaunch with the lorakit version named in the record, or use its "
                            "`preset:` section as a preset (-p) to take today's rendering")

