"""Job -> Command(env, argv). Pure (accelerate's prepare_simple_launcher_cmd_env does the same).

The dry-run text is built from the same Command with shlex quoting, so pasting it into bash
runs exactly the argv and launch env that `lorakit train` runs.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping

from lorakit import envvars
from lorakit.job import Job
from lorakit.names import spelled_for
from lorakit.swiftflags import attaches
from lorakit.values import as_int

# lorakit's own keys: they shape the job but are never ms-swift flags.
# rollout_gpus: the GPUs of the `swift rollout` a GRPO server-mode job starts first (lorakit.paired).
LORAKIT_ONLY_ARGS = ("global_batch_size", "rollout_gpus")


@dataclass(frozen=True)
class Command:
    env: dict[str, str]  # what the job sets on top of the inherited environment
    argv: list[str]
    unset: tuple[str, ...] = field(default=())  # launch vars removed from the inherited env

    def child_env(self, inherited: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in inherited.items() if k not in self.unset}
        env.update(self.env)
        return env


def spelled(value: Any) -> str:
    """A value as the command line spells it, for a message (true, not Python's True)."""
    return " ".join(render_value(value))


def one_text(value: Any) -> str | None:
    """The text ms-swift gets for a one-value string flag (--loss_scale, --loss_type): a string as
    it is, YAML's number, boolean or mapping as rendered; None for a list (checks/flags.py refuses
    one for such a flag) or what no argv carries (a date: checks/flags.py refuses it too)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float, dict)):
        rendered = render_value(value)
        return rendered[0] if len(rendered) == 1 else None
    return None


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
    env: dict[str, str] = {}
    for var, name in envvars.FIELD.items():
        value = getattr(launch, name)
        if value is None:
            continue
        if name != "gpus" and name != "master_addr" and as_int(value) is not None:
            value = as_int(value)  # NNODES 2.0 is two nodes to the checks; ms-swift does int("2.0")
        env[launch.device_var if name == "gpus" else var] = str(value)
    return env


def flag_items(flag: str, items: list[str]) -> list[str]:
    """A flag and its value items as argv: attached where `attaches` says so."""
    return [f"{flag}={items[0]}"] if attaches(items) else [flag, *items]


def render_args(job: Job) -> list[str]:
    argv: list[str] = []
    for key, value in job.args.items():
        if value is None or key in LORAKIT_ONLY_ARGS:
            continue  # null in a child preset removes the parent's flag
        argv += flag_items("--" + spelled_for(key, job.swift_major, job.command), render_value(value))
    return argv


def render(job: Job, inherited: Mapping[str, str] | None = None) -> Command:
    """The argv and the launch env; `unset` names what the child must not inherit: a launch
    variable the job does not set (the user's own ones are already in the job, as a layer) and
    every launcher-owned one (RANK, WORLD_SIZE, TORCHELASTIC_*: envvars.SCRUBBED)."""
    env = {**job.env, **launch_env(job)}
    inherited = inherited or {}
    stale = [k for k in envvars.LAUNCH if k in inherited and k not in env]
    stale += [k for k in envvars.scrubbed_in(inherited) if k not in env]
    return Command(env=env, argv=["swift", job.command, *render_args(job)], unset=tuple(stale))


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
