"""--format trainjob | pytorchjob: validated by the Kubeflow API models themselves, and the pods'
command run under that platform's simulated environment launches what `lorakit train` launches.

The models: kubeflow-trainer-api 2.3.0 (TrainerV1alpha1TrainJob, pydantic) and kubeflow-training
1.9.4 (KubeflowOrgV1PyTorchJob, with the Kubernetes client's V1ConfigMap/V1PodTemplateSpec). Both
drop a key they do not know when loading, so "nothing unknown" is: load, dump, get the same
manifest back (test_the_models_notice_an_unknown_key proves a stray key would show).
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from test_exports import train_launch
from test_injob import PYTORCHJOB, TRAINER_V2
from test_launch_cli import fake_env, lorakit, recorded

pytest.importorskip("kubeflow_trainer_api", reason="pip install -e '.[test]' (kubeflow-trainer-api)")
pytest.importorskip("kubeflow.training", reason="pip install -e '.[test]' (kubeflow-training)")

IMAGE = "registry.example/lorakit:0.1"
BASE = ["-p", "zero2", "--set", "launch.nnodes=2", "--gpus", "0,1", "--set", f"launch.image={IMAGE}",
        "--set", "system=It's $HOME"]
FULL = BASE + ["--set", "launch.namespace=ml-team", "--set", "launch.volumes={/data: data-pvc, /models: models-pvc}",
               "--set", "launch.cpus_per_task=8", "--set", "launch.service_account=trainer",
               "--set", "env.MAX_PIXELS=1003520"]


def manifest(tmp_path, args, fmt) -> list[dict]:
    result = lorakit(["train", "--dry-run", "--format", fmt, *args], fake_env(tmp_path, "unused.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[1] == "# Apply with: kubectl apply -f THIS_FILE   (the ConfigMap, then the " + (
        "TrainJob)" if fmt == "trainjob" else "PyTorchJob)")
    return list(yaml.safe_load_all(result.stdout))


def trainer_round_trip(doc: dict) -> dict:
    from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

    return TrainerV1alpha1TrainJob.from_dict(doc).to_dict()


class _Response:  # what kubeflow.training's ApiClient.deserialize reads: .data, JSON text
    def __init__(self, doc):
        self.data = json.dumps(doc)


def training_round_trip(doc: dict, kind: str) -> dict:
    from kubeflow.training import ApiClient

    client = ApiClient()
    return client.sanitize_for_serialization(client.deserialize(_Response(doc), kind))


@pytest.mark.parametrize("args", [BASE, FULL], ids=["base", "full"])
def test_trainjob_loads_into_the_trainer_api_with_nothing_unknown(tmp_path, args):
    config, job = manifest(tmp_path, args, "trainjob")
    assert trainer_round_trip(job) == job
    assert training_round_trip(config, "V1ConfigMap") == config
    assert (job["apiVersion"], job["kind"], job["spec"]["runtimeRef"]) == (
        "trainer.kubeflow.org/v1alpha1", "TrainJob", {"name": "torch-distributed"})
    trainer = job["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["numProcPerNode"] == 2  # an integer, never "auto"
    assert trainer["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": "2"}
    assert trainer["image"] == IMAGE
    assert trainer["command"] == ["lorakit", "train", "-p", "/etc/lorakit/job.yaml", "--on", "kubeflow",
                                  "--swift-version", "4"]


def test_trainjob_full_keys(tmp_path):
    config, job = manifest(tmp_path, FULL, "trainjob")
    assert job["metadata"] == {"name": "lorakit-zero2", "namespace": "ml-team"}
    assert config["metadata"] == {"name": "lorakit-zero2-job", "namespace": "ml-team"}
    assert job["spec"]["trainer"]["resourcesPerNode"] == {"limits": {"nvidia.com/gpu": "2"}, "requests": {"cpu": "8"}}
    assert job["spec"]["trainer"]["env"] == [{"name": "MAX_PIXELS", "value": "1003520"}]
    pod = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    assert pod["name"] == "node"
    spec = pod["template"]["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "trainer"
    assert spec["volumes"] == [{"name": "lorakit-job", "configMap": {"name": "lorakit-zero2-job"}},
                               {"name": "volume-0", "persistentVolumeClaim": {"claimName": "data-pvc"}},
                               {"name": "volume-1", "persistentVolumeClaim": {"claimName": "models-pvc"}}]
    assert spec["containers"] == [{"name": "node", "volumeMounts": [
        {"name": "lorakit-job", "mountPath": "/etc/lorakit", "readOnly": True},
        {"name": "volume-0", "mountPath": "/data"}, {"name": "volume-1", "mountPath": "/models"}]}]


@pytest.mark.parametrize("args", [BASE, FULL], ids=["base", "full"])
def test_pytorchjob_loads_into_the_training_api_with_nothing_unknown(tmp_path, args):
    config, job = manifest(tmp_path, args, "pytorchjob")
    assert training_round_trip(job, "KubeflowOrgV1PyTorchJob") == job
    assert training_round_trip(config, "V1ConfigMap") == config
    assert (job["apiVersion"], job["kind"], job["spec"]["nprocPerNode"]) == ("kubeflow.org/v1", "PyTorchJob", "2")
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert {k: v["replicas"] for k, v in replicas.items()} == {"Master": 1, "Worker": 1}
    container = replicas["Worker"]["template"]["spec"]["containers"][0]
    assert container["name"] == "pytorch"  # the operator's default container name
    assert container["command"] == ["lorakit", "train", "-p", "/etc/lorakit/job.yaml", "--on", "pytorchjob",
                                    "--swift-version", "4"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "2"}


def test_one_node_pytorchjob_has_no_workers(tmp_path):
    _, job = manifest(tmp_path, ["-p", "single", "--set", f"launch.image={IMAGE}"], "pytorchjob")
    assert list(job["spec"]["pytorchReplicaSpecs"]) == ["Master"]


def test_the_models_notice_an_unknown_key(tmp_path):
    _, job = manifest(tmp_path, BASE, "trainjob")
    stray = {**job, "spec": {**job["spec"], "numNodes": 2}}  # a v1-ish key at the wrong level
    assert trainer_round_trip(stray) != stray
    _, pj = manifest(tmp_path, BASE, "pytorchjob")
    stray = {**pj, "spec": {**pj["spec"], "numNodes": 2}}
    assert training_round_trip(stray, "KubeflowOrgV1PyTorchJob") != stray


@pytest.mark.parametrize("fmt", ["trainjob", "pytorchjob"])
def test_the_image_is_required(cli, fmt):
    result = cli(["train", "-p", "zero2", "--dry-run", "--format", fmt])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        f"lorakit: error: --format {fmt}: launch.image is not set: every pod needs a container image with "
        "lorakit and ms-swift installed (pip install 'lorakit[swift]')\n"
        "  hint: --set launch.image=REGISTRY/IMAGE:TAG (or launch.image in the preset)\n")


def pod_launch(tmp_path, fmt: str, platform_env: dict, rank: int):
    """Run the pod's command as the pod would: the ConfigMap's job.yaml at its mount path (here a
    temporary file), the platform's variables set, the fake swift recording what it got."""
    config, job = manifest(tmp_path, BASE, fmt)
    job_file = tmp_path / f"job-{fmt}.yaml"
    job_file.write_text(config["data"]["job.yaml"])
    if fmt == "trainjob":
        command = job["spec"]["trainer"]["command"]
    else:
        command = job["spec"]["pytorchReplicaSpecs"]["Master" if rank == 0 else "Worker"]["template"]["spec"][
            "containers"][0]["command"]
    assert command[:4] == ["lorakit", "train", "-p", "/etc/lorakit/job.yaml"]
    env = fake_env(tmp_path, f"pod{rank}.json", **platform_env)
    env.pop("CUDA_VISIBLE_DEVICES", None)  # the device plugin exposes the pod's GPUs, numbered from 0
    result = lorakit(["train", "-p", str(job_file), *command[4:]], env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return recorded(tmp_path / f"pod{rank}.json"), result.stderr


@pytest.mark.parametrize("fmt, platform_env, addr, port", [
    ("trainjob", TRAINER_V2, TRAINER_V2["PET_MASTER_ADDR"], "29400"),
    ("pytorchjob", PYTORCHJOB, PYTORCHJOB["MASTER_ADDR"], "23456"),
])
@pytest.mark.parametrize("rank", [0, 1])
def test_the_pods_command_launches_what_lorakit_train_launches(tmp_path, fmt, platform_env, addr, port, rank):
    platform_env = {**platform_env, "PET_NODE_RANK": str(rank), "RANK": str(rank)}
    if fmt == "trainjob":
        platform_env.pop("RANK")
    (argv, env), stderr = pod_launch(tmp_path, fmt, platform_env, rank)
    want_argv, want_env = train_launch(tmp_path, BASE + ["--set", f"launch.master_addr={addr}", "--set",
                                                         f"launch.master_port={port}", "--node-rank", str(rank)])
    assert argv == want_argv
    assert want_env.pop("CUDA_VISIBLE_DEVICES") == "0,1" and "CUDA_VISIBLE_DEVICES" not in env
    platform_only = set(platform_env) - set(want_env)
    assert {k: v for k, v in env.items() if k not in platform_only} == want_env
    # ms-swift never sees the scheduler's RANK/WORLD_SIZE (swift/utils/env.py: get_dist_setting)
    assert "RANK" not in env and "WORLD_SIZE" not in env
    assert (env["NNODES"], env["NODE_RANK"], env["NPROC_PER_NODE"]) == ("2", str(rank), "2")
    assert "run record:" in stderr and os.path.exists(tmp_path / "output")
