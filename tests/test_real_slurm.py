"""A real SLURM cluster: munged, slurmctld and two slurmd on this machine (scripts/slurm_cluster.sh).

lorakit's `--format sbatch` export of a tiny two-node CPU job is submitted unchanged with `sbatch`,
from a shell whose PATH has no ms-swift (the script must bring its own environment), and must
finish COMPLETED 0:0 with both nodes' ranks in ms-swift's own output and an adapter written.
Then `scancel` of a long run must leave no process of it.

Needs root and Debian's slurm-wlm + munge (scripts/test.sh installs them with apt-get). Without
them this test skips, loudly; with CI=true it fails instead: in CI a skipped real test is a hole.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml

from test_real_swift import only_checkpoint, swift_env, tiny, user_preset, world_size_line  # noqa: F401 (tiny)

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parents[1]
LIMIT = 900  # seconds a job may take here (2 shared cores); a hung rendezvous ends at --time anyway
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # a login shell's, no venv


def missing() -> str | None:
    if os.geteuid() != 0:
        return "not root (slurmd runs jobs as their user, so the test cluster needs root)"
    for tool in ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel"):
        if shutil.which(tool) is None:
            how = "scripts/test.sh installs them" if shutil.which("apt-get") else "no apt-get here to install them"
            return f"{tool} not found: needs Debian's slurm-wlm and munge ({how})"
    return None


def free_base() -> int:
    """Three consecutive free TCP ports: slurmctld's and the two slurmd's."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 2 < 65535 and all(_free(base + i) for i in (1, 2)):
            return base
    raise RuntimeError("no three consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = missing()
    if why:
        message = f"REAL SLURM TEST NOT RUN: {why}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: this test must run in CI)")
        warnings.warn(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ, LORAKIT_SLURM_PORT_BASE=str(free_base()))
    script = REPO / "scripts" / "slurm_cluster.sh"
    try:
        started = subprocess.run(["bash", str(script), "start", str(root)], env=env, capture_output=True,
                                 text=True, timeout=120)
        assert started.returncode == 0, started.stdout + started.stderr
        yield {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
    finally:  # every daemon start recorded, by PID
        subprocess.run(["bash", str(script), "stop", str(root)], timeout=60)
        pids = (root / "pids").read_text().split() if (root / "pids").exists() else []
        assert not pids, f"slurm_cluster.sh stop left {pids}"


def scontrol_job(env, job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", job_id], env=env, capture_output=True, text=True).stdout
    return dict(item.split("=", 1) for item in out.split() if "=" in item)


def wait_state(env, job_id: str, states: tuple[str, ...], limit: float = LIMIT) -> dict[str, str]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        job = scontrol_job(env, job_id)
        if job.get("JobState") in states:
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} not in {states} after {limit} s: {scontrol_job(env, job_id)}")


def job_pids(job_id: str) -> list[int]:
    """Every process whose environment says it belongs to this SLURM job (slurmstepd sets
    SLURM_JOB_ID in each task; lorakit, torchrun and the ranks inherit it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"SLURM_JOB_ID={job_id}".encode() in environ:
            pids.append(int(entry.name))
    return pids


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def render(tmp_path, preset: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "lorakit", "train", "-p", str(preset), "--dry-run",
                           "--format", "sbatch"], cwd=tmp_path, env=swift_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    script = tmp_path / "train.sbatch"
    script.write_text(done.stdout)
    return script


def submit(cluster, script: Path) -> str:
    # a shell with no ms-swift on PATH: the script must run the environment that rendered it
    env = {k: v for k, v in cluster.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = CLEAN_PATH
    done = subprocess.run(["sbatch", "--parsable", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(";")[0]


def cpu_preset(tmp_path, tiny, output, **args) -> Path:
    path = user_preset(tmp_path / "two.yaml", "ddp", tiny, output)
    data = yaml.safe_load(path.read_text())
    data["launch"] = {"gpus": "0", "nproc_per_node": 1, "nnodes": 2, "cpus_per_task": 1, "time": "20:00"}
    data["args"].update({"use_cpu": True, "global_batch_size": 4, **args})
    path.write_text(yaml.safe_dump(data))
    return path


def test_sbatch_export_runs_on_a_real_two_node_cluster(cluster, tiny, tmp_path):
    out = tmp_path / "out"
    script = render(tmp_path, cpu_preset(tmp_path, tiny, out))
    text = script.read_text()
    assert "--gpus-per-node" not in text.replace("add #SBATCH --gpus-per-node=N", "")  # use_cpu: no GPUs
    assert "#SBATCH --cpus-per-task=1" in text and "#SBATCH --time=20:00" in text
    started = time.monotonic()
    job_id = submit(cluster, script)
    job = wait_state(cluster, job_id, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"))
    print(f"real SLURM two-node job: {time.monotonic() - started:.1f} s")
    log = (tmp_path / f"slurm-{job_id}.out").read_text()
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), log[-6000:]
    port = 15000 + int(job_id) % 17000  # lorakit.injob: derived from the job id
    for rank in (0, 1):
        # ms-swift's own lines: the torchrun it ran on that node, and that node's rank of world size 2
        assert f"--master_port {port} --nnodes 2 --node_rank {rank} --master_addr 127.0.0.1" in log, log[-6000:]
        assert world_size_line(rank, 2, 1) in log
    assert "lorakit: --on slurm: SLURM as asked; nnodes=2 (SLURM_NNODES), node_rank=0 (SLURM_NODEID)" in log
    checkpoint = only_checkpoint(out)
    assert (checkpoint / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in out.glob("lorakit-run*.yaml")) == ["lorakit-run.node1.yaml", "lorakit-run.yaml"]


def test_scancel_leaves_no_process_of_the_job(cluster, tiny, tmp_path):
    out = tmp_path / "out"
    script = render(tmp_path, cpu_preset(tmp_path, tiny, out, max_steps=100000))
    job_id = submit(cluster, script)
    wait_state(cluster, job_id, ("RUNNING",), limit=120)
    deadline = time.monotonic() + 300
    # wait for ms-swift's ranks themselves (torchrun's children), not only the batch shell
    while time.monotonic() < deadline and not any(b"swift/cli/sft.py" in cmdline(pid) for pid in job_pids(job_id)):
        time.sleep(1)
    assert job_pids(job_id), "the job started no process"
    subprocess.run(["scancel", job_id], env=cluster, check=True)
    wait_state(cluster, job_id, ("CANCELLED",), limit=120)
    deadline = time.monotonic() + 60  # KillWait=5 s, then SIGKILL
    while time.monotonic() < deadline and job_pids(job_id):
        time.sleep(0.5)
    assert job_pids(job_id) == []


def test_the_same_script_runs_under_salloc(cluster, tiny, tmp_path):
    """Interactive use: inside `salloc -N2` the script's steps run as they do under sbatch."""
    out = tmp_path / "out"
    script = render(tmp_path, cpu_preset(tmp_path, tiny, out))
    env = {k: v for k, v in cluster.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = CLEAN_PATH
    done = subprocess.run(["salloc", "-N2", "--ntasks-per-node=1", "bash", str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=LIMIT)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    for rank in (0, 1):
        assert world_size_line(rank, 2, 1) in log
    assert (only_checkpoint(out) / "adapter_model.safetensors").is_file()


def complete_checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("v*-*/checkpoint-*/trainer_state.json"))


def test_requeue_resumes_from_the_newest_complete_checkpoint(cluster, tiny, tmp_path):
    """launch.requeue: SLURM's warning signal (--signal=B:USR1@120, sent here at once with
    `scancel --batch --signal=USR1`) makes the batch shell requeue the job; the requeued run's
    lorakit finds the newest complete checkpoint (--resume if-any) and ms-swift resumes from it."""
    out = tmp_path / "out"
    preset = cpu_preset(tmp_path, tiny, out, max_steps=100000, save_steps=2)
    data = yaml.safe_load(preset.read_text())
    data["launch"]["requeue"] = True
    preset.write_text(yaml.safe_dump(data))
    script = render(tmp_path, preset)
    assert "#SBATCH --signal=B:USR1@120" in script.read_text().splitlines()
    job_id = submit(cluster, script)
    try:
        deadline = time.monotonic() + LIMIT
        while time.monotonic() < deadline and not complete_checkpoints(out):
            time.sleep(1)
        assert complete_checkpoints(out), "no checkpoint was saved"
        subprocess.run(["scancel", "--batch", "--signal=USR1", job_id], env=cluster, check=True)
        log_file = tmp_path / f"slurm-{job_id}.out"
        deadline = time.monotonic() + LIMIT
        while time.monotonic() < deadline and "--resume_from_checkpoint " not in log_file.read_text():
            time.sleep(1)  # ms-swift's own torchrun line of the requeued run
        log = log_file.read_text()
        assert f"lorakit: time limit near: requeueing job {job_id}" in log
        assert scontrol_job(cluster, job_id).get("Restarts") == "1"
        assert "lorakit: --resume: from " in log, log[-6000:]
        resumed = log[log.index("lorakit: --resume: from "):].split()[3]
        assert Path(resumed).parent.parent == out.resolve() and Path(resumed).name.startswith("checkpoint-")
        assert f"--resume_from_checkpoint {resumed}" in log
    finally:
        subprocess.run(["scancel", job_id], env=cluster)
        wait_state(cluster, job_id, ("CANCELLED",), limit=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and job_pids(job_id):
            time.sleep(0.5)
    assert job_pids(job_id) == []


def test_a_gpu_jobs_header_and_slurms_gpu_numbering(cluster, tmp_path):
    """A GPU job's --gpus-per-node is accepted by a cluster with GPUs (one gres "GPU" per node,
    a character device: scripts/slurm_cluster.sh), and each node's launch gets SLURM's own
    CUDA_VISIBLE_DEVICES (0), not the rendering machine's id 5. ms-swift is the fake here (no GPU
    to train on): the script puts the rendering PATH's `swift`, tests/fakes/swift, first."""
    if not (Path(cluster["SLURM_CONF"]).parent / "gres.conf").exists():
        pytest.skip("mknod is not allowed here: the test cluster has no GPU gres")
    fakes = REPO / "tests" / "fakes"
    env = {**swift_env(), "PATH": f"{fakes}{os.pathsep}{swift_env()['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "lorakit", "train", "-p", "single", "--gpus", "5", "--set",
                           "launch.nnodes=2", "--output-dir", str(tmp_path / "out"), "--dry-run", "--format", "sbatch"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    script = tmp_path / "gpu.sbatch"
    script.write_text(done.stdout)
    assert "#SBATCH --gpus-per-node=1" in done.stdout.splitlines()
    job_id = submit({**cluster, "FAKE_SWIFT_RECORD": str(tmp_path / "fake.json")}, script)
    job = wait_state(cluster, job_id, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"))
    log = (tmp_path / f"slurm-{job_id}.out").read_text()
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), log[-4000:]
    port = str(15000 + int(job_id) % 17000)
    for rank, name in ((0, "lorakit-run.yaml"), (1, "lorakit-run.node1.yaml")):
        recorded = yaml.safe_load((tmp_path / "out" / name).read_text())["command"]["env"]
        assert recorded == {"CUDA_VISIBLE_DEVICES": "0", "NNODES": "2", "NODE_RANK": str(rank),
                            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    fake = json.loads((tmp_path / "fake.json").read_text())  # the last node to start
    assert fake["env"]["CUDA_VISIBLE_DEVICES"] == "0" and fake["argv"][1] == "sft"


@pytest.mark.parametrize("ci, outcome", [("true", "1 error"), ("", "1 skipped")])
def test_without_slurm_it_skips_loudly_and_in_ci_it_fails(tmp_path, ci, outcome):
    """No SLURM tools on PATH: a laptop gets a skip that names what is missing; CI gets a failure."""
    test = "tests/test_real_slurm.py::test_sbatch_export_runs_on_a_real_two_node_cluster"
    env = {**os.environ, "PATH": str(tmp_path), "CI": ci}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", test], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert outcome in done.stdout, done.stdout[-3000:]
    why = "munged not found: needs Debian's slurm-wlm and munge" if os.geteuid() == 0 else "not root"
    assert f"REAL SLURM TEST NOT RUN: {why}" in done.stdout
    if ci:
        assert "(CI=true: this test must run in CI)" in done.stdout
