"""The --dry-run formats: a rendered job as text for bash, a script, a SLURM batch script,
ms-swift's own YAML config, JSON for other tools, or a Kubernetes manifest (lorakit.kube). Pure:
Job + Command (+ findings) -> text; sbatch also reads which Python and `swift` rendered it.

Each format launches exactly what `lorakit train` launches: the same argv, and the inherited
environment with the job's launch variables set, every other launch variable removed, and the
variables a launcher sets for its workers removed (lorakit.envvars; tests/test_exports.py runs
each one against the real launch). sbatch (lorakit.sbatch) and the Kubernetes formats run
`lorakit train --on PLATFORM` on every node, which reads the node layout from the scheduler.

swift-yaml is two formats: ms-swift 4.x reads `swift sft FILE.yaml`, ENV: block included
(swift/cli/main.py: parse_yaml_args); 3.x reads only `swift sft --config FILE`, takes no ENV
from it and appends the file's values after the command line's flags (prepare_config_args).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import replace
from typing import Any, Iterable

import yaml

from lorakit import envvars
from lorakit.errors import LorakitError
from lorakit.findings import Finding
from lorakit.job import Job
from lorakit.names import spelled_for
from lorakit.render import LORAKIT_ONLY_ARGS, Command, attaches, render_value, shell_text
from lorakit.values import as_int

FORMATS = ("text", "sh", "sbatch", "swift-yaml", "json", "trainjob", "pytorchjob")
ALL_NODES_FORMATS = ("text", "json")  # sh/swift-yaml are one node's file; sbatch/k8s are every node
# The node layout of these comes from the scheduler, in each node (lorakit.injob): checks that
# want node_rank/master_addr in the preset are waived for them (cli/run.py).
SCHEDULER_FORMATS = ("sbatch", "trainjob", "pytorchjob")


def stale_vars(command: Command) -> list[str]:
    """Launch variables the job does not set: a leftover one in the shell that runs the script
    would change the launch (ms-swift turns each into a torchrun argument)."""
    return [name for name in envvars.LAUNCH if name not in command.env]


def unset_vars(command: Command) -> list[str]:
    """Everything a script unsets before it launches: the stale launch variables, then the ones
    a launcher sets for its workers (lorakit train removes those too). Not the TORCHELASTIC_*
    prefix (envvars.SCRUBBED_PREFIXES), which no fixed list can name: the scripts say so."""
    return stale_vars(command) + [name for name in envvars.SCRUBBED if name not in command.env]


def title(job: Job) -> str:
    # the lorakit command that renders each swift command: an export that only merges is `lorakit
    # merge`, any other `lorakit export`
    verb = {"sft": "train"}.get(job.command, job.command)
    if job.command == "export":
        from lorakit.checks.export import ACTIONS  # SwiftExport.run's branches

        others = [k for k in ACTIONS if k != "merge_lora" and job.args.get(k) not in (None, False, "false", "", "None")]
        verb = "merge" if str(job.args.get("merge_lora")).lower() == "true" and not others else "export"
    # it goes into a `# ` comment, which ends at a newline: a preset file named 'a\necho x.yaml'
    # put a command of its own into the sbatch/sh script (and a line of YAML into a TrainJob)
    shown = job.preset if job.preset.isprintable() else ascii(job.preset)
    return f"lorakit {verb} -p {shown}, rendered for ms-swift {job.swift_major}.x"


def _body(command: Command, prefix: str = "") -> str:
    """`swift sft \\` and one `--flag values \\` line per flag (the seed's form)."""
    return prefix + shell_text(Command(env={}, argv=command.argv))


_SCRUBBED_NOTE = ["# Set by a launcher for the workers it starts: left in your shell they make ms-swift",
                  "# believe it already runs inside a torchrun worker. lorakit train removes these, and",
                  "# every TORCHELASTIC_* variable too: unset any of those your shell has."]


def _unset_lines(stale: list[str], gpus_too: bool = True) -> list[str]:
    lines = []
    if stale:
        why = "; CUDA_VISIBLE_DEVICES picks the GPUs)." if gpus_too else ")."
        lines += ["# Launch variables this job does not set: one left in your shell would change the",
                  "# launch (ms-swift turns NPROC_PER_NODE/NNODES/NODE_RANK/MASTER_* into torchrun",
                  "# arguments" + why,
                  "unset " + " ".join(stale)]
    return lines + _SCRUBBED_NOTE + ["unset " + " ".join(envvars.SCRUBBED), ""]


def sh_script(job: Job, command: Command) -> str:
    """A runnable script like the seed's train_zero2.sh. `exec`: a SIGTERM to the script (kill,
    a scheduler) reaches ms-swift itself rather than a bash that would not pass it on."""
    head = ["#!/usr/bin/env bash", f"# {title(job)}", "set -euo pipefail", ""]
    env = "".join(f"{k}={shlex.quote(v)} \\\n" for k, v in command.env.items())
    return "\n".join(head + _unset_lines(stale_vars(command))) + "\n" + env + _body(command, "exec ")


def job_name(job: Job) -> str:
    """The preset's file stem, in the characters an #SBATCH line keeps intact."""
    name = job.preset.rsplit("/", 1)[-1]
    for suffix in (".yaml", ".yml"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "job"


def _yaml_item(text: str) -> Any:
    """A rendered argv item as the YAML scalar ms-swift's str() turns back into the same text:
    native where that holds (8, 0.0001), else the string itself ('true', '1:30')."""
    try:
        native = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(native, (str, int, float)) and not isinstance(native, bool) and str(native) == text:
        return native
    return text


def _not_attachable(key: str, items: list[str]) -> None:
    """ms-swift's config readers turn `key: -x` back into `--key -x`, which argparse reads as an
    option: only the command line can attach it (`--key=-x`, render.flag_items)."""
    if attaches(items):
        raise LorakitError(
            f"--format swift-yaml: {key} is {items[0]!r}, which ms-swift's config reader turns back into "
            f"`--{key} {items[0]}`, and argparse then reads {items[0]!r} as an option",
            hint="use --format sh (or text): the command line writes it attached, "
                 f"--{key}={items[0]}")


def swift_config(job: Job, command: Command) -> dict[str, Any]:
    """What swift/cli/main.py: parse_yaml_args reads back into this argv and env: a list turns
    into one argv item per element, a mapping into json.dumps, anything else into str()."""
    config: dict[str, Any] = {}
    if command.env:
        config["ENV"] = dict(command.env)
    for key, value in job.args.items():
        if value is None or key in LORAKIT_ONLY_ARGS:
            continue  # as render_args
        items = render_value(value)
        _not_attachable(spelled_for(key, job.swift_major), items)
        if isinstance(value, dict):
            config[spelled_for(key, job.swift_major)] = value  # json.dumps either way
        elif isinstance(value, (list, tuple)):
            config[spelled_for(key, job.swift_major)] = [_yaml_item(i) for i in items]
        else:
            config[spelled_for(key, job.swift_major)] = _yaml_item(items[0])
    return config


class _Quoted(str):
    """A string the YAML file must keep a string: OmegaConf's resolver reads a plain 1e5 as a
    float (and str() then gives 100000.0), a plain true as True."""


class _Swift3Dumper(yaml.SafeDumper):
    pass


def _quoted_representer(dumper: yaml.SafeDumper, data: _Quoted) -> yaml.Node:
    # single-quoted, or double-quoted where single quotes cannot hold the text (PyYAML decides)
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="'")


_Swift3Dumper.add_representer(_Quoted, _quoted_representer)
_INTERPOLATION = re.compile(r"(\\*)\$\{")


def _omegaconf_text(key: str, text: str) -> _Quoted:
    """`text` as OmegaConf gives it back. It resolves ${...} interpolations (${oc.env:HOME} is
    the environment's HOME): n backslashes then a literal ${ are written as 2n+1 backslashes
    then ${. The whole value ??? is OmegaConf's "missing", with no escape."""
    if text == "???":
        raise LorakitError(
            f"--format swift-yaml: {key} is '???', which ms-swift 3.x's config reader (OmegaConf) reads "
            "as a missing value and refuses",
            hint="use --format sh (or text), or give the value another spelling")
    return _Quoted(_INTERPOLATION.sub(lambda m: "\\" * (2 * len(m.group(1)) + 1) + "${", text))


def swift3_config(job: Job) -> dict[str, Any]:
    """What ms-swift 3.x's swift/cli/main.py: prepare_config_args turns back into this argv:
    OmegaConf.load, then per key `--key` and str(value), a list's items as they are (so they
    must already be strings: argparse takes nothing else). Every value is written as a quoted
    string, a dict as the same JSON text that the command line gets. No ENV: 3.x would pass it
    on as a literal --ENV flag."""
    config: dict[str, Any] = {}
    for key, value in job.args.items():
        if value is None or key in LORAKIT_ONLY_ARGS:
            continue  # as render_args
        name = spelled_for(key, job.swift_major, job.command)
        _not_attachable(name, render_value(value))
        items = [_omegaconf_text(name, item) for item in render_value(value)]
        config[name] = items if isinstance(value, (list, tuple)) else items[0]
    return config


def swift3_yaml(job: Job, command: Command) -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in command.env.items())
    run = f"{env} swift {job.command} --config THIS_FILE.yaml".lstrip()
    stale, config = stale_vars(command), swift3_config(job)
    key = "lora_rank" if "lora_rank" in config else next(iter(config), "lora_rank")
    example = f"--{key} 16" if key == "lora_rank" else f"--{key} X"
    head = [f"# {title(job)}",
            f"# ms-swift 3.x reads this file only as `swift {job.command} --config FILE`, and takes no ENV",
            "# from it (its launcher reads the launch variables before the file). Run it from bash with:"]
    head += ["#   unset " + " ".join(stale)] if stale else []
    head += ["#   unset " + " ".join(envvars.SCRUBBED), "#   " + run,
             "# The unsets: " + ("launch variables this job does not set, and " if stale else "")
             + "those a launcher sets for its workers",
             "# (lorakit train also removes every TORCHELASTIC_*): one left in your shell changes the launch.",
             "# In ms-swift 3.x this file's values come after the command line's flags, so they win:",
             f"# `swift {job.command} --config THIS_FILE.yaml {example}` still uses this file's {key}.",
             "# Change a value of this file here; only a flag the file does not have works on the command line."]
    text = yaml.dump(config, Dumper=_Swift3Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=1000)
    return "\n".join(head) + "\n" + text


def swift_yaml(job: Job, command: Command) -> str:
    if job.swift_major < 4:
        return swift3_yaml(job, command)
    head = [f"# {title(job)}",
            f"# ms-swift's own config format: run it with plain `swift {job.command} THIS_FILE.yaml`.",
            "# ms-swift applies an ENV value only when the shell has NOT exported that variable",
            "# already: an exported one wins (with a warning), and the launch differs from lorakit's."]
    stale = stale_vars(command)
    if stale:
        head.append("# Unset these first (this job does not set them): " + " ".join(stale))
    head += ["# and these, set by a launcher for its workers (lorakit train also removes every",
             "# TORCHELASTIC_*): " + " ".join(envvars.SCRUBBED)]
    text = yaml.safe_dump(swift_config(job, command), sort_keys=False, allow_unicode=True,
                          default_flow_style=False, width=1000)
    return "\n".join(head) + "\n" + text


def launch_dict(job: Job, command: Command, findings: Iterable[Finding]) -> dict[str, Any]:
    return {
        "preset": job.preset,
        "command": job.command,
        "swift_major": job.swift_major,
        "node_rank": as_int(job.launch.node_rank),
        "env": dict(command.env),
        # remove from the inherited env before applying `env`: these names, and every name
        # that starts with one of unset_prefixes
        "unset": unset_vars(command),
        "unset_prefixes": list(envvars.SCRUBBED_PREFIXES),
        "argv": list(command.argv),
        "findings": [f.as_dict() for f in findings],
    }


def json_text(job: Job, command: Command, findings: Iterable[Finding]) -> str:
    return json.dumps(launch_dict(job, command, findings), indent=2, ensure_ascii=False) + "\n"


def export(fmt: str, job: Job, command: Command, findings: Iterable[Finding] = ()) -> str:
    if fmt == "text":
        return shell_text(command)
    if fmt == "sh":
        return sh_script(job, command)
    if fmt == "sbatch":
        from lorakit import sbatch

        return sbatch.script(job, command)
    if fmt in ("trainjob", "pytorchjob"):
        from lorakit import kube

        return kube.manifest(fmt, job)
    if fmt == "swift-yaml":
        return swift_yaml(job, command)
    if fmt == "json":
        return json_text(job, command, findings)
    raise ValueError(f"unknown format {fmt!r}")


def node_jobs(job: Job) -> list[Job]:
    """The same job once per node rank 0..nnodes-1 (one job when nnodes is unset or 1)."""
    nodes = job.launch.node_total
    if nodes == 1:
        return [job]
    sources = {**job.sources, "launch.node_rank": "--all-nodes"}
    return [replace(job, launch=replace(job.launch, node_rank=rank), sources=sources)
            for rank in range(nodes)]


def all_nodes(fmt: str, pairs: list[tuple[Job, Command]], findings: Iterable[Finding] = ()) -> str:
    """Every node's command at once: text sections headed by the node, or one JSON list."""
    findings = list(findings)
    if fmt == "json":
        payload = [launch_dict(job, command, findings) for job, command in pairs]
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    total, parts = len(pairs), []
    for job, command in pairs:
        rank = as_int(job.launch.node_rank) or 0
        where = f" (the master_addr host, {job.launch.master_addr})" if rank == 0 and total > 1 else ""
        parts.append(f"# node {rank} of {total}{where}\n" + shell_text(command))
    return "\n".join(parts)
