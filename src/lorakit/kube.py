"""--format trainjob | pytorchjob: Kubernetes manifests whose pods run `lorakit train --on ...`.

Two documents for `kubectl apply -f`: a ConfigMap holding the resolved job (the preset a run
record holds, extends/options/fixups applied) and the training job, whose every pod mounts it
and runs `lorakit train -p /etc/lorakit/job.yaml --on PLATFORM`. The node layout is then
lorakit's mapping of that platform's variables (lorakit.injob), not hand-written: Trainer v2
gives PET_*, which ms-swift ignores; PyTorchJob's WORLD_SIZE counts processes.

- trainjob: Kubeflow Trainer v2, trainer.kubeflow.org/v1alpha1 TrainJob on the
  `torch-distributed` runtime (https://www.kubeflow.org/docs/components/trainer/user-guides/);
  numProcPerNode is an integer (the runtime's default "auto" is refused by --on kubeflow);
  volumes go through runtimePatches into the runtime's `node` job and container (the 2.3 API,
  kubeflow_trainer_api 2.3.0: TrainerV1alpha1RuntimePatch).
- pytorchjob: Kubeflow Training Operator v1, kubeflow.org/v1 PyTorchJob, one Master and
  nnodes-1 Workers; the container must be named `pytorch` (the operator's default container).
Both are loaded into the Kubeflow API models in tests/test_kube.py, which refuse nothing here.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from lorakit.errors import LorakitError
from lorakit.job import Job
from lorakit.sbatch import gpus_per_node, job_preset
from lorakit.values import as_int

MOUNT = "/etc/lorakit"
JOB_FILE = f"{MOUNT}/job.yaml"
PLATFORM = {"trainjob": "kubeflow", "pytorchjob": "pytorchjob"}
GPU_RESOURCE = "nvidia.com/gpu"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def resource_name(job: Job) -> str:
    """The preset's stem as a DNS-1123 label (what Kubernetes names must be), short enough that
    the pods' generated names stay under 63 characters."""
    from lorakit.exports import job_name

    stem = re.sub(r"[^a-z0-9-]+", "-", job_name(job).lower()).strip("-")
    return ("lorakit-" + stem)[:40].rstrip("-") if stem else "lorakit-job"


def image(job: Job, fmt: str) -> str:
    value = job.launch.export.get("image")
    if not isinstance(value, str) or not value.strip():
        raise LorakitError(
            f"--format {fmt}: launch.image is {'not set' if value is None else repr(value)}: every pod needs "
            "a container image with lorakit and ms-swift installed (pip install 'lorakit[swift]')",
            hint="--set launch.image=REGISTRY/IMAGE:TAG (or launch.image in the preset)")
    return value.strip()


def command(fmt: str, job: Job) -> list[str]:
    return ["lorakit", "train", "-p", JOB_FILE, "--on", PLATFORM[fmt], "--swift-version", str(job.swift_major)]


def resources(job: Job) -> dict[str, Any]:
    gpus, cpus = gpus_per_node(job), as_int(job.launch.export.get("cpus_per_task"))
    limits = {GPU_RESOURCE: str(gpus)} if gpus else {}
    requests = {"cpu": str(cpus)} if cpus else {}
    return {k: v for k, v in (("limits", limits), ("requests", requests)) if v}


def volumes(job: Job, name: str) -> tuple[list[dict], list[dict]]:
    """The job's ConfigMap at MOUNT, and launch.volumes ({mount path: PVC claim name}) for the
    model, data and output, each at the same path it has in the preset."""
    vols = [{"name": "lorakit-job", "configMap": {"name": f"{name}-job"}}]
    mounts = [{"name": "lorakit-job", "mountPath": MOUNT, "readOnly": True}]
    for i, (path, claim) in enumerate(sorted((job.launch.export.get("volumes") or {}).items())):
        vols.append({"name": f"volume-{i}", "persistentVolumeClaim": {"claimName": str(claim)}})
        mounts.append({"name": f"volume-{i}", "mountPath": str(path)})
    return vols, mounts


def env_list(job: Job) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in job.env.items()]


def metadata(job: Job, name: str) -> dict[str, Any]:
    namespace = job.launch.export.get("namespace")
    return {"name": name, **({"namespace": str(namespace)} if namespace else {})}


def config_map(job: Job, name: str) -> dict[str, Any]:
    text = yaml.safe_dump(job_preset(job), sort_keys=False, allow_unicode=True, width=1000)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(job, f"{name}-job"),
            "data": {"job.yaml": text}}


def nproc(job: Job) -> int:
    # one rank when the job names none: torchrun's "auto" would count the node's GPUs or CPUs
    return job.launch.nproc_per_node or 1


def trainjob(job: Job, name: str) -> dict[str, Any]:
    vols, mounts = volumes(job, name)
    trainer: dict[str, Any] = {"image": image(job, "trainjob"), "command": command("trainjob", job),
                               "numNodes": job.launch.node_total, "numProcPerNode": nproc(job)}
    if resources(job):
        trainer["resourcesPerNode"] = resources(job)
    if job.env:
        trainer["env"] = env_list(job)
    pod: dict[str, Any] = {"volumes": vols, "containers": [{"name": "node", "volumeMounts": mounts}]}
    if job.launch.export.get("service_account"):
        pod["serviceAccountName"] = str(job.launch.export["service_account"])
    patch = {"manager": "lorakit", "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [
        {"name": "node", "template": {"spec": {"template": {"spec": pod}}}}]}}}}
    return {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": metadata(job, name),
            "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": trainer, "runtimePatches": [patch]}}


def _replica(job: Job, name: str, replicas: int) -> dict[str, Any]:
    vols, mounts = volumes(job, name)
    container: dict[str, Any] = {"name": "pytorch", "image": image(job, "pytorchjob"),
                                 "command": command("pytorchjob", job), "volumeMounts": mounts}
    if resources(job):
        container["resources"] = resources(job)
    if job.env:
        container["env"] = env_list(job)
    spec: dict[str, Any] = {"containers": [container], "volumes": vols}
    if job.launch.export.get("service_account"):
        spec["serviceAccountName"] = str(job.launch.export["service_account"])
    return {"replicas": replicas, "restartPolicy": "OnFailure", "template": {"spec": spec}}


def pytorchjob(job: Job, name: str) -> dict[str, Any]:
    nodes = job.launch.node_total
    replicas = {"Master": _replica(job, name, 1)}
    if nodes > 1:
        replicas["Worker"] = _replica(job, name, nodes - 1)
    # nprocPerNode is a string in the v1 API (kubeflow.org/v1 PyTorchJobSpec)
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": metadata(job, name),
            "spec": {"nprocPerNode": str(nproc(job)), "pytorchReplicaSpecs": replicas,
                     # required by the v1 API; "None" keeps the finished pods and their logs
                     "runPolicy": {"cleanPodPolicy": "None"}}}


def documents(fmt: str, job: Job) -> list[dict[str, Any]]:
    name = resource_name(job)
    build = trainjob if fmt == "trainjob" else pytorchjob
    return [config_map(job, name), build(job, name)]


def manifest(fmt: str, job: Job) -> str:
    from lorakit.exports import title

    docs = documents(fmt, job)
    head = [f"# {title(job)}", f"# Apply with: kubectl apply -f THIS_FILE   (the ConfigMap, then the {docs[1]['kind']})",
            f"# Each pod runs `lorakit train --on {PLATFORM[fmt]}`, which maps the platform's variables to",
            "# NNODES/NODE_RANK/MASTER_ADDR/MASTER_PORT/NPROC_PER_NODE; the image needs lorakit[swift]."]
    return "\n".join(head) + "\n" + yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


class _Dumper(yaml.SafeDumper):
    """The ConfigMap's job.yaml as a `|` block, readable in the manifest."""


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _text)
