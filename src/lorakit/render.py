"""Job -> Command(env, argv). Pure (accelerate's prepare_simple_launcher_cmd_env does the same).

The dry-run text is built from the same Command with shlex quoting, so pasting it into bash
runs exactly the argv and launch env that `lorakit train` runs.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping

from lorakit.job import Job
from lorakit.names import spelled_for
from lorakit.values import as_int

# ms-swift turns these into torchrun arguments (swift/cli/main.py: get_torchrun_args). A value
# left over in the user's shell would silently change the launch mode, so lorakit owns them all.
LAUNCH_ENV = ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE", "NNODES", "NODE_RANK", "MASTER_ADDR",
              "MASTER_PORT")
# lorakit's own keys: they shape the job but are never ms-swift flags.
LORAKIT_ONLY_ARGS = ("global_batch_size",)


@dataclass(frozen=True)
class Command:
    env: dict[str, str]  # what the job sets on top of the inherited environment
    argv: list[str]
    unset: tuple[str, ...] = field(default=())  # launch vars removed from the inherited env

    def child_env(self, inherited: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in inherited.items() if k not in self.unset}
        env.update(self.env)
        return env


def render_value(value: Any) -> list[str]:
    """YAML value -> argv items: lists as separate items, dicts as one JSON item,
    booleans as true/false, integral floats as ints (3.x types lora_alpha as int: '32.0' fails)."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in render_value(v)]
    if isinstance(value, dict):
        return [json.dumps(value, ensure_ascii=False)]
    if isinstance(value, float):
        return [str(int(value))] if value.is_integer() else [repr(value)]
    return [str(value)]


def launch_env(job: Job) -> dict[str, str]:
    launch = job.launch
    pairs = (
        ("CUDA_VISIBLE_DEVICES", launch.gpus),
        ("NPROC_PER_NODE", launch.nproc_per_node),
        ("NNODES", launch.nnodes),
        ("NODE_RANK", launch.node_rank),
        ("MASTER_ADDR", launch.master_addr),
        ("MASTER_PORT", launch.master_port),
    )
    env = {key: str(value) for key, value in pairs if value is not None}
    # NNODES 2.0 passes the checks (it is two nodes) but ms-swift does int("2.0"): write ints
    for key in ("NNODES", "NODE_RANK", "MASTER_PORT"):
        if key in env and as_int(dict(pairs)[key]) is not None:
            env[key] = str(as_int(dict(pairs)[key]))
    return env


def render_args(job: Job) -> list[str]:
    argv: list[str] = []
    for key, value in job.args.items():
        if value is None or key in LORAKIT_ONLY_ARGS:
            continue  # null in a child preset removes the parent's flag
        argv.append("--" + spelled_for(key, job.swift_major, job.command))
        argv.extend(render_value(value))
    return argv


def render(job: Job, inherited: Mapping[str, str] | None = None) -> Command:
    env = launch_env(job)
    stale = tuple(k for k in LAUNCH_ENV if inherited and k in inherited and k not in env)
    return Command(env=env, argv=["swift", job.command, *render_args(job)], unset=stale)


def _arg_lines(argv: list[str]) -> list[str]:
    """Group '--key v1 v2' on one line, as the seed's scripts do."""
    lines: list[list[str]] = []
    for item in argv:
        if item.startswith("--") or not lines:
            lines.append([item])
        else:
            lines[-1].append(item)
    return [shlex.join(line) for line in lines]


def shell_text(command: Command) -> str:
    """The seed's multi-line form; every line but the last ends in ' \\'."""
    lines: list[str] = []
    if command.unset:
        lines.append("env " + " ".join(f"-u {name}" for name in command.unset))
    lines += [f"{key}={shlex.quote(value)}" for key, value in command.env.items()]
    lines.append(shlex.join(command.argv[:2]))
    lines += ["    " + line for line in _arg_lines(command.argv[2:])]
    return " \\\n".join(lines) + "\n"
