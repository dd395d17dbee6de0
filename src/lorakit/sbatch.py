"""--format sbatch: a SLURM batch script whose every task runs `lorakit train --on slurm`.

Measured on a real SLURM 22.05 cluster (tests/test_real_slurm.py), each line below is there
because its absence failed there:
- the job runs the Python that rendered it (`PYTHON -m lorakit`, ms-swift's `swift` directory
  first on PATH): a batch step starts from a clean login environment, where a bare `swift` is
  `exec: swift: not found` (exit 127);
- each task's lorakit reads its node layout from SLURM (lorakit.injob.slurm): NODE_RANK from
  SLURM_NODEID, MASTER_ADDR from `scontrol show node`'s NodeAddr (a NodeName need not resolve),
  MASTER_PORT from SLURM_JOB_ID (two jobs sharing node 0 do not collide), and it writes its run
  record, runs the checks on the node itself and forwards signals as `lorakit train` does;
- --gpus-per-node only for a job that has GPUs (a GPU-less cluster refuses the script,
  "Invalid generic resource"), --cpus-per-task on sbatch AND srun (since 22.05 srun does not
  inherit it; under task/affinity the whole node's launch is otherwise pinned to one CPU), and
  --time (a rendezvous that never forms otherwise waits for ever).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from typing import Any, Mapping

import yaml

from lorakit import envvars
from lorakit.job import Job
from lorakit.render import Command
from lorakit.values import as_bool

# SLURM sets CUDA_VISIBLE_DEVICES itself in every job step, to the GPUs it allocated on that
# node; the ids lorakit resolved name the rendering machine's GPUs. The node layout comes from
# `--on slurm` in each task.
SLURM_OWNS = ("gpus", "nnodes", "node_rank", "master_addr", "master_port")
REQUEUE_WARNING = 120  # seconds before the time limit that SLURM signals the batch shell
HEREDOC = "LORAKIT_JOB"


@dataclass(frozen=True)
class Tools:
    """The environment that rendered the script: the job runs the same one."""

    python: str  # the interpreter running lorakit now (a venv's bin/python, not resolved)
    swift_dir: str | None  # where `swift` was on PATH, or None when it was not found

    @classmethod
    def here(cls, env: Mapping[str, str] | None = None) -> "Tools":
        env = os.environ if env is None else env
        swift = shutil.which("swift", path=env.get("PATH", os.defpath))
        return cls(python=sys.executable, swift_dir=os.path.dirname(os.path.abspath(swift)) if swift else None)


def gpus_per_node(job: Job) -> int | None:
    """The GPUs each node asks SLURM for: none for a CPU job (use_cpu) or one with no GPU list."""
    if as_bool(job.args.get("use_cpu")):
        return None
    ids = job.launch.gpu_ids
    return len(ids) if ids else None


def job_preset(job: Job) -> dict[str, Any]:
    """The job as one self-contained preset for the nodes (what a run record holds), without
    what SLURM decides per node."""
    from lorakit.record import resolved_preset

    preset = resolved_preset(job)
    preset["launch"] = {k: v for k, v in preset["launch"].items() if k not in SLURM_OWNS}
    return preset


def header(job: Job, name: str) -> list[str]:
    export = job.launch.export
    nodes, gpus = job.launch.node_total, gpus_per_node(job)
    lines = [f"#SBATCH --job-name=lorakit-{name}", f"#SBATCH --nodes={nodes}", "#SBATCH --ntasks-per-node=1"]
    # the directory it was rendered in, where the preset's relative paths resolve; an #SBATCH
    # line is split at whitespace, so a directory with a space is left to the submitting shell
    cwd = os.getcwd()
    lines += [f"#SBATCH --chdir={cwd}"] if not any(ch.isspace() for ch in cwd) else []
    lines += [f"#SBATCH --gpus-per-node={gpus}"] if gpus else []
    lines += [f"#SBATCH --cpus-per-task={export['cpus_per_task']}"] if "cpus_per_task" in export else []
    lines += [f"#SBATCH --time={export['time']}"] if "time" in export else []
    if as_bool(export.get("requeue")):
        lines += ["#SBATCH --requeue", f"#SBATCH --signal=B:USR1@{REQUEUE_WARNING}", "#SBATCH --open-mode=append"]
    return lines


def _comments(job: Job, tools: Tools) -> list[str]:
    lines = [f"# The job runs the environment that rendered it: {tools.python} -m lorakit,"]
    if tools.swift_dir:
        lines += [f"# with ms-swift's swift from {tools.swift_dir} first on PATH."]
    else:
        lines += ["# `swift` was NOT on PATH when this was rendered: the nodes' PATH must have ms-swift's."]
    gpus = gpus_per_node(job)
    if gpus is None:
        why = "use_cpu" if as_bool(job.args.get("use_cpu")) else "no GPU list"
        lines += [f"# No GPUs are requested ({why}): add #SBATCH --gpus-per-node=N for a GPU job."]
    else:
        lines += ["# CUDA_VISIBLE_DEVICES comes from SLURM, which sets it in each job step to the node's",
                  f"# allocated GPUs (--gpus-per-node={gpus} above); the ids lorakit resolved"
                  f" ({job.launch.gpus}) name the rendering machine's GPUs."]
    return lines


def _requeue_lines() -> list[str]:
    # --signal=B:USR1 reaches only this batch shell, REQUEUE_WARNING s before the time limit:
    # requeue (SLURM stops every step, SIGTERM then SIGKILL after KillWait) and the next run
    # resumes from the newest complete checkpoint (--resume if-any).
    return ["trap 'echo \"lorakit: time limit near: requeueing job $SLURM_JOB_ID\" >&2; "
            "scontrol requeue \"$SLURM_JOB_ID\"' USR1", ""]


def script(job: Job, command: Command, tools: Tools | None = None) -> str:
    from lorakit.exports import job_name, title

    tools = tools or Tools.here()
    name, export = job_name(job), job.launch.export
    requeue = as_bool(export.get("requeue"))
    lines = ["#!/usr/bin/env bash", f"# {title(job)}",
             "# Submit with: sbatch THIS_FILE (inside salloc: bash THIS_FILE, same steps)", *header(job, name),
             "set -euo pipefail", "", *_comments(job, tools)]
    if tools.swift_dir:
        lines.append(f"export PATH={shlex.quote(tools.swift_dir)}:\"$PATH\"")
    stale = [v for v in envvars.LAUNCH if v != "CUDA_VISIBLE_DEVICES"]
    lines += ["", "# A launch variable left in the submitting shell would be a layer of the job on every",
              "# node (srun passes the environment on); lorakit removes RANK, WORLD_SIZE and the rest.",
              "unset " + " ".join(stale), "",
              "# The job, resolved (extends, options, fixups applied); each node's lorakit reads it.",
              f'JOB_FILE="$PWD/lorakit-job-${{SLURM_JOB_ID:?run this with sbatch or inside salloc}}.yaml"',
              f"cat > \"$JOB_FILE\" <<'{HEREDOC}'",
              yaml.safe_dump(job_preset(job), sort_keys=False, allow_unicode=True, width=1000).rstrip("\n"),
              HEREDOC, ""]
    lines += _requeue_lines() if requeue else []
    srun = ["srun", f"--nodes={job.launch.node_total}", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    srun += [f"--cpus-per-task={export['cpus_per_task']}"] if "cpus_per_task" in export else []
    run = [tools.python, "-m", "lorakit", "train", "-p"]
    tail = ["--on", "slurm", "--swift-version", str(job.swift_major)] + (["--resume", "if-any"] if requeue else [])
    step = " ".join(shlex.quote(a) for a in srun + run) + ' "$JOB_FILE" ' + " ".join(tail)
    if requeue:  # in the background: bash runs a trap only between commands, `wait` is one
        return "\n".join(lines + [step + " &", "wait $! || wait $!", ""])
    return "\n".join(lines + ["exec " + step, ""])

