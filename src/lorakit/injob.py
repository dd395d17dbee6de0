"""In-job profiles (`lorakit train --on PLATFORM`): a scheduler's variables -> lorakit's launch keys.

Every platform below starts one container/task per node and tells it where it is, each in its
own words, and the same word means different things: PyTorchJob's WORLD_SIZE counts processes,
Volcano's and PAI-DLC's count nodes. ms-swift reads only NNODES/NODE_RANK/MASTER_ADDR/MASTER_PORT/
NPROC_PER_NODE (swift/cli/main.py: get_torchrun_args) and never a PET_* variable, so a Trainer v2
pod without this mapping runs one process that trains alone. The scheduler's own RANK/WORLD_SIZE
are removed before ms-swift starts (envvars.SCRUBBED): swift/utils/env.py: get_dist_setting would
read them as a torchrun worker's.

Pure except `slurm`, which asks `scontrol` for node 0's address (the `run` argument).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from lorakit.errors import EnvironmentProblem, LorakitError
from lorakit.values import as_int

from lorakit.platforms import NAMES, PLATFORMS  # noqa: F401  (re-exported: lorakit.injob.PLATFORMS)

# SLURM gives no port: one derived from the job id keeps two jobs that share node 0 apart.
# 15000-31999 stays below Linux's ephemeral range (32768-60999, ip_local_port_range), where a
# port could already be some connection's local end.
SLURM_PORT_BASE, SLURM_PORT_SPAN = 15000, 17000


@dataclass(frozen=True)
class Profile:
    platform: str
    settings: tuple[tuple[str, object, str], ...]  # (launch field, value, the variable(s) it came from)
    detected_by: str = ""  # auto: the variable that gave the platform away

    def overrides(self) -> list[tuple[str, object, str]]:
        """For overrides.apply_overrides: command-line precedence ('--on ...' starts with '-')."""
        return [(f"launch.{key}", value, f"--on {self.platform} ({var})") for key, value, var in self.settings]

    def note(self) -> str:
        how = f"detected from {self.detected_by}" if self.detected_by else "as asked"
        said = ", ".join(f"{key}={value} ({var})" for key, value, var in self.settings)
        return f"--on {self.platform}: {NAMES[self.platform]} {how}; {said or 'nothing to set'}"


def _need(env: Mapping[str, str], platform: str, *names: str) -> list[str]:
    missing = [n for n in names if env.get(n) in (None, "")]
    if missing:
        raise EnvironmentProblem(
            f"--on {platform}: {', '.join(missing)} not set: this does not look like a {NAMES[platform]} job",
            hint="run lorakit inside the job's container/task, or pick the platform that started it: "
                 + ", ".join(PLATFORMS))
    return [env[n] for n in names]


def _count(platform: str, var: str, text: str, minimum: int = 0) -> int:
    value = as_int(text)
    if value is None or value < minimum:
        fix = ""
        if var == "PET_NPROC_PER_NODE" and str(text).strip() in ("auto", "cpu", "gpu"):
            # Trainer v2's torch runtime defaults numProcPerNode to "auto" (torchrun's own word);
            # ms-swift passes NPROC_PER_NODE on to torchrun only as a number of ranks.
            fix = "; set trainer.numProcPerNode to an integer in the TrainJob (lorakit's --format trainjob does)"
        raise LorakitError(f"--on {platform}: {var}={text!r} is not a whole number >= {minimum}{fix}",
                           hint="lorakit needs each node's rank count to render NPROC_PER_NODE")
    return value


def slurm(env: Mapping[str, str], run: Callable[[Sequence[str]], str]) -> Profile:
    """SLURM (https://slurm.schedmd.com/srun.html, OUTPUT ENVIRONMENT VARIABLES): SLURM_NNODES is
    the step's node count, SLURM_NODEID the node's index in it, SLURM_JOB_NODELIST the nodes.
    MASTER_ADDR is node 0's NodeAddr from `scontrol show node` (its NodeName need not resolve:
    several slurmd on one host, or names that are only SLURM's). GPUs: SLURM sets
    CUDA_VISIBLE_DEVICES in the step, which lorakit already reads as the environment's GPU list."""
    nodes, rank, job_id = _need(env, "slurm", "SLURM_NNODES", "SLURM_NODEID", "SLURM_JOB_ID")
    nodelist = env.get("SLURM_STEP_NODELIST") or _need(env, "slurm", "SLURM_JOB_NODELIST")[0]
    first = next(iter(run(["scontrol", "show", "hostnames", nodelist]).split()), None)
    if first is None:
        raise EnvironmentProblem(f"--on slurm: scontrol names no host in {nodelist!r}")
    fields = dict(item.split("=", 1) for item in run(["scontrol", "show", "node", first]).split() if "=" in item)
    addr = fields.get("NodeAddr") or first
    port = SLURM_PORT_BASE + _count("slurm", "SLURM_JOB_ID", job_id) % SLURM_PORT_SPAN
    return Profile("slurm", (("nnodes", _count("slurm", "SLURM_NNODES", nodes, 1), "SLURM_NNODES"),
                             ("node_rank", _count("slurm", "SLURM_NODEID", rank), "SLURM_NODEID"),
                             ("master_addr", addr, f"NodeAddr of {first}"),
                             ("master_port", port, f"{SLURM_PORT_BASE} + SLURM_JOB_ID % {SLURM_PORT_SPAN}")))


def kubeflow(env: Mapping[str, str]) -> Profile:
    """Kubeflow Trainer v2, torch runtime (https://www.kubeflow.org/docs/components/trainer/
    operator-guides/runtime/, and pkg/runtime/framework/plugins/torch/torch.go): PET_NNODES =
    trainer.numNodes, PET_NPROC_PER_NODE = numProcPerNode, PET_NODE_RANK = the pod's
    JOB_COMPLETION_INDEX, PET_MASTER_ADDR/PET_MASTER_PORT = node 0's pod (port 29400)."""
    nn, npn, rank, addr, port = _need(env, "kubeflow", "PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK",
                                      "PET_MASTER_ADDR", "PET_MASTER_PORT")
    return Profile("kubeflow", (("nnodes", _count("kubeflow", "PET_NNODES", nn, 1), "PET_NNODES"),
                                ("node_rank", _count("kubeflow", "PET_NODE_RANK", rank), "PET_NODE_RANK"),
                                ("master_addr", addr, "PET_MASTER_ADDR"),
                                ("master_port", _count("kubeflow", "PET_MASTER_PORT", port, 1), "PET_MASTER_PORT"),
                                ("nproc_per_node", _count("kubeflow", "PET_NPROC_PER_NODE", npn, 1),
                                 "PET_NPROC_PER_NODE")))


def pytorchjob(env: Mapping[str, str]) -> Profile:
    """Kubeflow PyTorchJob v1 (training-operator pkg/controller.v1/pytorch/envvar.go: setPodEnv;
    https://www.kubeflow.org/docs/components/trainer/legacy-v1/user-guides/pytorch/): WORLD_SIZE =
    replicas x nprocPerNode (processes, not nodes), RANK = the pod's index (Master 0, Worker i+1),
    PET_NPROC_PER_NODE = nprocPerNode, MASTER_ADDR/MASTER_PORT = the Master's service."""
    world, rank, npn, addr, port = _need(env, "pytorchjob", "WORLD_SIZE", "RANK", "PET_NPROC_PER_NODE",
                                         "MASTER_ADDR", "MASTER_PORT")
    per = _count("pytorchjob", "PET_NPROC_PER_NODE", npn, 1)
    total = _count("pytorchjob", "WORLD_SIZE", world, 1)
    if total % per:
        raise LorakitError(f"--on pytorchjob: WORLD_SIZE={total} is not a multiple of PET_NPROC_PER_NODE={per}",
                           hint="the operator sets WORLD_SIZE = replicas x nprocPerNode: check the PyTorchJob")
    return Profile("pytorchjob", (("nnodes", total // per, "WORLD_SIZE / PET_NPROC_PER_NODE"),
                                  ("node_rank", _count("pytorchjob", "RANK", rank), "RANK"),
                                  ("master_addr", addr, "MASTER_ADDR"),
                                  ("master_port", _count("pytorchjob", "MASTER_PORT", port, 1), "MASTER_PORT"),
                                  ("nproc_per_node", per, "PET_NPROC_PER_NODE")))


def nodes_as_world(platform: str, env: Mapping[str, str]) -> Profile:
    """Volcano's pytorch plugin (https://github.com/volcano-sh/volcano/blob/master/docs/user-guide/
    how_to_use_pytorch_plugin.md) and PAI-DLC (ms-swift's examples/train/multi-node/dlc/train.sh:
    `NNODES=$WORLD_SIZE NODE_RANK=$RANK`): WORLD_SIZE = number of pods/nodes, RANK = the node's
    index. Ranks per node are the preset's (neither platform says)."""
    world, rank, addr, port = _need(env, platform, "WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")
    return Profile(platform, (("nnodes", _count(platform, "WORLD_SIZE", world, 1), "WORLD_SIZE"),
                              ("node_rank", _count(platform, "RANK", rank), "RANK"),
                              ("master_addr", addr, "MASTER_ADDR"),
                              ("master_port", _count(platform, "MASTER_PORT", port, 1), "MASTER_PORT")))


def skypilot(env: Mapping[str, str]) -> Profile:
    """SkyPilot (https://docs.skypilot.co/en/latest/running-jobs/environment-variables.html):
    SKYPILOT_NODE_RANK, SKYPILOT_NUM_NODES, SKYPILOT_NODE_IPS (one per line, the head first),
    SKYPILOT_NUM_GPUS_PER_NODE. No port: torchrun's default 29500 unless the preset names one."""
    rank, nodes, ips = _need(env, "skypilot", "SKYPILOT_NODE_RANK", "SKYPILOT_NUM_NODES", "SKYPILOT_NODE_IPS")
    head = next(iter(ips.split()), "")
    settings = [("nnodes", _count("skypilot", "SKYPILOT_NUM_NODES", nodes, 1), "SKYPILOT_NUM_NODES"),
                ("node_rank", _count("skypilot", "SKYPILOT_NODE_RANK", rank), "SKYPILOT_NODE_RANK"),
                ("master_addr", head, "SKYPILOT_NODE_IPS, first line")]
    gpus = as_int(env.get("SKYPILOT_NUM_GPUS_PER_NODE"))
    if gpus:  # 0 on a CPU-only cluster: the preset's rank count stands
        settings.append(("nproc_per_node", gpus, "SKYPILOT_NUM_GPUS_PER_NODE"))
    return Profile("skypilot", tuple(settings))


# auto: the variable only that platform sets, in this order (PyTorchJob also sets PET_*, but
# Trainer v2 never sets WORLD_SIZE). PAI-DLC sets only the generic names: it is never guessed.
MARKERS = (("skypilot", "SKYPILOT_NODE_RANK"), ("slurm", "SLURM_JOB_ID"), ("pytorchjob", "PET_NPROC_PER_NODE+WORLD_SIZE"),
           ("kubeflow", "PET_NNODES"), ("volcano", "VC_TASK_INDEX"), ("volcano", "VK_TASK_INDEX"))


def detect(env: Mapping[str, str]) -> tuple[str, str]:
    for platform, marker in MARKERS:
        if all(env.get(name) not in (None, "") for name in marker.split("+")):
            return platform, marker
    seen = "WORLD_SIZE and RANK are set, which Volcano and PAI-DLC both use; " if env.get("WORLD_SIZE") else ""
    raise EnvironmentProblem(
        f"--on auto: {seen}no scheduler recognised (looked for " + ", ".join(m for _, m in MARKERS) + ")",
        hint="name the platform: --on " + " | ".join(PLATFORMS[1:]))


def _scontrol(argv: Sequence[str]) -> str:
    import subprocess  # here: `train --dry-run` (which imports this module) never runs scontrol

    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"--on slurm: {' '.join(argv)} failed: {exc}") from None
    if done.returncode != 0:
        raise EnvironmentProblem(f"--on slurm: {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def profile(platform: str, env: Mapping[str, str], run: Callable[[Sequence[str]], str] = _scontrol) -> Profile:
    if platform not in PLATFORMS:
        from lorakit.values import suggestion

        raise LorakitError(f"--on {platform!r}: unknown platform", hint=suggestion(platform, PLATFORMS)
                           + "one of: " + ", ".join(PLATFORMS))
    detected_by = ""
    if platform == "auto":
        platform, detected_by = detect(env)
    if platform == "slurm":
        found = slurm(env, run)
    elif platform == "kubeflow":
        found = kubeflow(env)
    elif platform == "pytorchjob":
        found = pytorchjob(env)
    elif platform == "skypilot":
        found = skypilot(env)
    else:
        found = nodes_as_world(platform, env)
    return Profile(found.platform, one_node(found.settings), detected_by)


def one_node(settings: tuple) -> tuple:
    """On one node there is no rendezvous to find: NNODES=1 would make ms-swift start torchrun
    for a one-process job (swift/cli/main.py: use_torchrun), unlike `lorakit train` on a box."""
    if dict((k, v) for k, v, _ in settings).get("nnodes") != 1:
        return settings
    return tuple(s for s in settings if s[0] in ("nproc_per_node", "master_port"))


def cli_overrides(platform: str) -> list[tuple[str, object, str]]:
    """`lorakit train --on PLATFORM`: this process's environment read as that platform, said."""
    import os

    from lorakit import report

    found = profile(platform, os.environ)
    report.note(found.note())
    return found.overrides()
