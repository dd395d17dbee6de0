"""A real two-node run on loopback: two lorakit processes (node ranks 0 and 1, one CPU rank each)
meet in torchrun's rendezvous at 127.0.0.1 and train the tiny model together with gloo.
If ms-swift is missing this FAILS: a skipped real test is a hole."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml

from test_real_swift import (assert_one_model_over, only_checkpoint, swift_env, tiny,  # noqa: F401 (tiny: fixture)
                             user_preset, world_size_line)

pytestmark = pytest.mark.real
LIMIT = 600  # seconds for the whole run; a broken rendezvous would otherwise wait far longer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_node_preset(tmp_path, tiny, output):
    path = user_preset(tmp_path / "two.yaml", "ddp", tiny, output)
    data = yaml.safe_load(path.read_text())
    data["launch"] = {"gpus": "0", "nproc_per_node": 1, "nnodes": 2, "master_addr": "127.0.0.1",
                      "master_port": free_port()}
    data["args"]["global_batch_size"] = 4  # 1 per device x 1 rank x 2 nodes -> 2 accumulation steps
    data["args"]["use_cpu"] = True  # else each node's rank trains alone (no DDP on CPU without it)
    path.write_text(yaml.safe_dump(data))
    return path


def test_two_nodes_on_loopback(tiny, tmp_path):
    out = tmp_path / "out"
    preset = two_node_preset(tmp_path, tiny, out)
    env = swift_env()
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "lorakit", "train", "-p", str(preset),
                               "--node-rank", str(rank), "--grace", "5"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in (0, 1)]
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=max(1.0, LIMIT - (time.monotonic() - started)))[0])
    finally:
        for proc in procs:  # lorakit forwards SIGTERM to its whole tree, then kills what is left
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    took = time.monotonic() - started
    print(f"two-node loopback run: {took:.1f} s")
    for rank, (proc, log) in enumerate(zip(procs, logs)):
        assert proc.returncode == 0, f"node {rank}:\n{log[-4000:]}"
    port = yaml.safe_load(preset.read_text())["launch"]["master_port"]
    assert ("warning[nodes.master_addr.loopback] launch.master_addr (" + str(preset) + "): master_addr "
            "127.0.0.1 is a loopback address with nnodes 2: node 0's rendezvous listens on every address, but runs "
            "set up so have hung until the NCCL timeout (ms-swift #2485, #6982)") in logs[0]
    # node 1 at a loopback address is refused unless node 0 answers there: here it does (same host)
    assert ("warning[nodes.master_addr.loopback] launch.master_addr (" + str(preset) + "): master_addr "
            f"127.0.0.1 is a loopback address with nnodes 2: node 0 is on this host (port {port} answers); "
            "nodes on other hosts cannot reach it") in logs[1]
    for rank, log in enumerate(logs):
        # ms-swift prints the torchrun command it runs: both nodes joined the same rendezvous
        assert f"--nnodes 2 --node_rank {rank} --master_addr 127.0.0.1" in log
        assert world_size_line(rank, 2, 1) in log  # global rank `rank` of 2, one rank on this node
    records = {p.name: yaml.safe_load(p.read_text()) for p in out.glob("lorakit-run*.yaml")}
    assert sorted(records) == ["lorakit-run.node1.yaml", "lorakit-run.yaml"]
    for name, rank in (("lorakit-run.yaml", "0"), ("lorakit-run.node1.yaml", "1")):
        env_set = records[name]["command"]["env"]
        assert (env_set["NNODES"], env_set["NODE_RANK"], env_set["MASTER_ADDR"]) == ("2", rank, "127.0.0.1")
    checkpoint = only_checkpoint(out)
    args = json.loads((checkpoint / "args.json").read_text())
    assert args["gradient_accumulation_steps"] == 2 and args["global_world_size"] == 2
    assert_one_model_over(2, "".join(logs), checkpoint.parent)


def test_two_pods_of_a_trainjob_under_trainer_v2s_env(tiny, tmp_path):
    """Each pod of lorakit's --format trainjob runs `lorakit train -p JOB --on kubeflow` under the
    PET_* variables Kubeflow Trainer v2's torch runtime sets (ms-swift reads none of them: without
    the mapping each pod would train alone). Two such "pods" on loopback train one model."""
    out = tmp_path / "out"
    preset = two_node_preset(tmp_path, tiny, out)
    manifest = subprocess.run([sys.executable, "-m", "lorakit", "train", "-p", str(preset), "--set",
                               "launch.image=registry.example/lorakit:0.1", "--dry-run", "--format", "trainjob"],
                              cwd=tmp_path, env=swift_env(), capture_output=True, text=True, timeout=120)
    assert manifest.returncode == 0, manifest.stderr
    config, job = yaml.safe_load_all(manifest.stdout)
    job_file = tmp_path / "job.yaml"  # the ConfigMap, as mounted at /etc/lorakit/job.yaml
    job_file.write_text(config["data"]["job.yaml"])
    command = job["spec"]["trainer"]["command"]
    assert command[:4] == ["lorakit", "train", "-p", "/etc/lorakit/job.yaml"]
    port = free_port()
    started = time.monotonic()
    procs = []
    for rank in (0, 1):
        pet = {"PET_NNODES": "2", "PET_NPROC_PER_NODE": str(job["spec"]["trainer"]["numProcPerNode"]),
               "PET_NODE_RANK": str(rank), "JOB_COMPLETION_INDEX": str(rank), "PET_MASTER_ADDR": "127.0.0.1",
               "PET_MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, "-m", "lorakit", "train", "-p", str(job_file), *command[4:],
                                       "--grace", "5"], cwd=tmp_path, env={**swift_env(), **pet},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=max(1.0, LIMIT - (time.monotonic() - started)))[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    print(f"two-pod PET_* run: {time.monotonic() - started:.1f} s")
    for rank, (proc, log) in enumerate(zip(procs, logs)):
        assert proc.returncode == 0, f"pod {rank}:\n{log[-4000:]}"
        assert f"--nnodes 2 --node_rank {rank} --master_addr 127.0.0.1" in log
        assert world_size_line(rank, 2, 1) in log
        assert f"lorakit: --on kubeflow: Kubeflow Trainer v2 (TrainJob) as asked; nnodes=2 (PET_NNODES), " \
               f"node_rank={rank} (PET_NODE_RANK)" in log
    checkpoint = only_checkpoint(out)
    assert json.loads((checkpoint / "args.json").read_text())["global_world_size"] == 2
    assert_one_model_over(2, "".join(logs), checkpoint.parent)
