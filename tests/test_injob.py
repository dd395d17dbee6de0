"""`lorakit train --on PLATFORM`: each scheduler's environment, exactly as its documentation
defines it, becomes the launch variables with that platform's meaning.

Sources of each simulated environment (cited again in lorakit/injob.py):
- Kubeflow Trainer v2: https://www.kubeflow.org/docs/components/trainer/operator-guides/runtime/
  and kubeflow/trainer pkg/runtime/framework/plugins/torch/torch.go (PET_NNODES, PET_NPROC_PER_NODE,
  PET_NODE_RANK from the Job's completion index, PET_MASTER_ADDR = node 0's pod, PET_MASTER_PORT 29400).
- PyTorchJob v1: kubeflow/training-operator pkg/controller.v1/pytorch/envvar.go (setPodEnv:
  WORLD_SIZE = replicas x nprocPerNode, RANK = pod index, Worker i is rank i+1; PET_NPROC_PER_NODE,
  PET_NODE_RANK, PET_NNODES; master.go: MASTER_ADDR = <job>-master-0, MASTER_PORT = the port).
- Volcano pytorch plugin: volcano-sh/volcano docs/user-guide/how_to_use_pytorch_plugin.md
  (MASTER_ADDR, MASTER_PORT, WORLD_SIZE = number of pods, RANK = pod index), env plugin VC_TASK_INDEX.
- PAI-DLC: ms-swift examples/train/multi-node/dlc/train.sh (`NNODES=$WORLD_SIZE NODE_RANK=$RANK`).
- SkyPilot: https://docs.skypilot.co/en/latest/running-jobs/environment-variables.html
- SLURM: https://slurm.schedmd.com/srun.html, OUTPUT ENVIRONMENT VARIABLES.
"""

from __future__ import annotations

import json

import pytest

from lorakit import injob
from lorakit.errors import EnvironmentProblem, LorakitError

TRAINER_V2 = {"PET_NNODES": "2", "PET_NPROC_PER_NODE": "2", "PET_NODE_RANK": "1", "JOB_COMPLETION_INDEX": "1",
              "PET_MASTER_ADDR": "lorakit-mine-node-0-0.lorakit-mine", "PET_MASTER_PORT": "29400"}
PYTORCHJOB = {"MASTER_ADDR": "lorakit-mine-master-0", "MASTER_PORT": "23456", "WORLD_SIZE": "4", "RANK": "1",
              "PET_NPROC_PER_NODE": "2", "PET_NODE_RANK": "1", "PET_NNODES": "2", "PYTHONUNBUFFERED": "1",
              "PET_MASTER_ADDR": "lorakit-mine-master-0", "PET_MASTER_PORT": "23456"}
VOLCANO = {"MASTER_ADDR": "mine-master-0.mine", "MASTER_PORT": "23456", "WORLD_SIZE": "2", "RANK": "1",
           "VC_TASK_INDEX": "0", "VK_TASK_INDEX": "0"}
DLC = {"MASTER_ADDR": "dlc1abc-master-0", "MASTER_PORT": "23456", "WORLD_SIZE": "2", "RANK": "1"}
SKYPILOT = {"SKYPILOT_NODE_RANK": "1", "SKYPILOT_NODE_IPS": "10.0.0.4\n10.0.0.5\n", "SKYPILOT_NUM_NODES": "2",
            "SKYPILOT_NUM_GPUS_PER_NODE": "2", "SKYPILOT_TASK_ID": "sky-2026-12-01-lorakit_1"}
SLURM = {"SLURM_JOB_ID": "4242", "SLURM_NNODES": "2", "SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "gpu-[07-08]",
         "SLURM_STEP_NODELIST": "gpu-[07-08]", "SLURM_PROCID": "1", "SLURM_LOCALID": "0", "SLURM_NTASKS": "2"}

# What ms-swift gets: the same torchrun layout, each from its platform's own words.
LAYOUT = {"NNODES": "2", "NODE_RANK": "1"}
CASES = {
    "kubeflow": (TRAINER_V2, {"NPROC_PER_NODE": "2", **LAYOUT, "MASTER_ADDR": "lorakit-mine-node-0-0.lorakit-mine",
                              "MASTER_PORT": "29400"}),
    # WORLD_SIZE 4 is processes: 2 nodes of 2 (read as nodes it would be a 4-node rendezvous that never forms)
    "pytorchjob": (PYTORCHJOB, {"NPROC_PER_NODE": "2", **LAYOUT, "MASTER_ADDR": "lorakit-mine-master-0",
                                "MASTER_PORT": "23456"}),
    # WORLD_SIZE 2 is nodes; the ranks per node are the preset's (--nproc 2 below)
    "volcano": (VOLCANO, {"NPROC_PER_NODE": "2", **LAYOUT, "MASTER_ADDR": "mine-master-0.mine", "MASTER_PORT": "23456"}),
    "dlc": (DLC, {"NPROC_PER_NODE": "2", **LAYOUT, "MASTER_ADDR": "dlc1abc-master-0", "MASTER_PORT": "23456"}),
    "skypilot": (SKYPILOT, {"NPROC_PER_NODE": "2", **LAYOUT, "MASTER_ADDR": "10.0.0.4"}),
}


def dry_json(cli, env, *args):
    result = cli(["train", "-p", "single", "--set", "launch.gpus=null", "--nproc", "2", *args,
                  "--dry-run", "--format", "json"], env=env)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@pytest.mark.parametrize("platform", sorted(CASES))
def test_each_platform_means_its_own_words(cli, platform):
    env, expected = CASES[platform]
    data, _ = dry_json(cli, env, "--on", platform)
    assert data["env"] == expected
    # the scheduler's RANK/WORLD_SIZE never reach ms-swift (swift/utils/env.py: get_dist_setting)
    assert {"RANK", "WORLD_SIZE", "LOCAL_RANK"} <= set(data["unset"])


@pytest.mark.parametrize("platform, marker", [("kubeflow", "PET_NNODES"), ("pytorchjob", "PET_NPROC_PER_NODE+WORLD_SIZE"),
                                              ("volcano", "VC_TASK_INDEX"), ("skypilot", "SKYPILOT_NODE_RANK")])
def test_auto_says_which_platform_and_from_which_variable(cli, platform, marker):
    env, expected = CASES[platform]
    data, stderr = dry_json(cli, env, "--on", "auto")
    assert data["env"] == expected
    assert f"lorakit: --on {platform}: {injob.NAMES[platform]} detected from {marker}; nnodes=2" in stderr


def test_the_note_names_each_variable(cli):
    _, stderr = dry_json(cli, PYTORCHJOB, "--on", "pytorchjob")
    assert ("lorakit: --on pytorchjob: Kubeflow PyTorchJob (v1) as asked; nnodes=2 (WORLD_SIZE / PET_NPROC_PER_NODE), "
            "node_rank=1 (RANK), master_addr=lorakit-mine-master-0 (MASTER_ADDR), master_port=23456 (MASTER_PORT), "
            "nproc_per_node=2 (PET_NPROC_PER_NODE)\n") in stderr


def test_auto_never_guesses_dlc(cli):
    result = cli(["train", "-p", "single", "--on", "auto", "--dry-run"], env=DLC)
    assert result.code == 1
    assert result.stderr.endswith(
        "lorakit: error: --on auto: WORLD_SIZE and RANK are set, which Volcano and PAI-DLC both use; no scheduler "
        "recognised (looked for SKYPILOT_NODE_RANK, SLURM_JOB_ID, PET_NPROC_PER_NODE+WORLD_SIZE, PET_NNODES, "
        "VC_TASK_INDEX, VK_TASK_INDEX)\n  hint: name the platform: --on slurm | kubeflow | pytorchjob | volcano | "
        "dlc | skypilot\n")


def test_trainer_v2_nproc_auto_is_refused_with_the_fix(cli):
    result = cli(["train", "-p", "single", "--on", "kubeflow", "--dry-run"],
                 env={**TRAINER_V2, "PET_NPROC_PER_NODE": "auto"})
    assert result.code == 2
    assert result.stderr.endswith(
        "lorakit: error: --on kubeflow: PET_NPROC_PER_NODE='auto' is not a whole number >= 1; set "
        "trainer.numProcPerNode to an integer in the TrainJob (lorakit's --format trainjob does)\n"
        "  hint: lorakit needs each node's rank count to render NPROC_PER_NODE\n")


def test_a_missing_variable_is_an_environment_problem(cli):
    result = cli(["train", "-p", "single", "--on", "kubeflow", "--dry-run"],
                 env={k: v for k, v in TRAINER_V2.items() if k != "PET_NODE_RANK"})
    assert result.code == 1
    assert "lorakit: error: --on kubeflow: PET_NODE_RANK not set: this does not look like a Kubeflow Trainer v2 " \
           "(TrainJob) job\n" in result.stderr


def test_unknown_platform(cli):
    result = cli(["train", "-p", "single", "--on", "kubeflw", "--dry-run"])
    assert result.code == 2
    assert result.stderr.endswith("lorakit: error: --on 'kubeflw': unknown platform\n  hint: did you mean "
                                  "'kubeflow'? one of: auto, slurm, kubeflow, pytorchjob, volcano, dlc, skypilot\n")


def test_pytorchjob_world_size_must_be_whole_nodes():
    with pytest.raises(LorakitError) as err:
        injob.profile("pytorchjob", {**PYTORCHJOB, "WORLD_SIZE": "3"})
    assert (err.value.message, err.value.hint) == (
        "--on pytorchjob: WORLD_SIZE=3 is not a multiple of PET_NPROC_PER_NODE=2",
        "the operator sets WORLD_SIZE = replicas x nprocPerNode: check the PyTorchJob")


SCONTROL = {("scontrol", "show", "hostnames", "gpu-[07-08]"): "gpu-07\ngpu-08\n",
            ("scontrol", "show", "node", "gpu-07"): "NodeName=gpu-07 Arch=x86_64 CoresPerSocket=8\n"
                                                     "   NodeAddr=10.1.2.7 NodeHostName=gpu-07 Version=22.05.8\n"}


def test_slurm_takes_node_zeros_address_and_a_port_from_the_job_id():
    found = injob.profile("slurm", SLURM, run=lambda argv: SCONTROL[tuple(argv)])
    assert found.settings == (("nnodes", 2, "SLURM_NNODES"), ("node_rank", 1, "SLURM_NODEID"),
                              ("master_addr", "10.1.2.7", "NodeAddr of gpu-07"),
                              ("master_port", 15000 + 4242 % 17000, "15000 + SLURM_JOB_ID % 17000"))
    # two jobs on one node get two ports
    other = injob.profile("slurm", {**SLURM, "SLURM_JOB_ID": "4243"}, run=lambda argv: SCONTROL[tuple(argv)])
    assert dict((k, v) for k, v, _ in other.settings)["master_port"] == 19243


def test_slurm_auto_and_a_failing_scontrol():
    found = injob.profile("auto", SLURM, run=lambda argv: SCONTROL[tuple(argv)])
    assert (found.platform, found.detected_by) == ("slurm", "SLURM_JOB_ID")

    def broken(argv):
        raise EnvironmentProblem(f"--on slurm: {' '.join(argv)} exited 1: slurm_load_node error")

    with pytest.raises(EnvironmentProblem, match="scontrol show hostnames gpu-.07-08. exited 1"):
        injob.profile("slurm", SLURM, run=broken)


def test_one_node_starts_no_rendezvous():
    """numNodes 1: NNODES=1 would make ms-swift run torchrun even for one process
    (swift/cli/main.py: use_torchrun); the ranks per node still count."""
    found = injob.profile("kubeflow", {**TRAINER_V2, "PET_NNODES": "1", "PET_NODE_RANK": "0"})
    assert found.settings == (("master_port", 29400, "PET_MASTER_PORT"), ("nproc_per_node", 2, "PET_NPROC_PER_NODE"))


def test_skypilot_on_cpus_keeps_the_presets_ranks():
    found = injob.profile("skypilot", {**SKYPILOT, "SKYPILOT_NUM_GPUS_PER_NODE": "0"})
    assert [k for k, _, _ in found.settings] == ["nnodes", "node_rank", "master_addr"]


def test_on_is_a_command_line_layer_over_the_environment(cli):
    """A NNODES or NODE_RANK left in the pod's environment loses to the platform's own words."""
    data, _ = dry_json(cli, {**TRAINER_V2, "NNODES": "8", "NODE_RANK": "5"}, "--on", "kubeflow")
    assert (data["env"]["NNODES"], data["env"]["NODE_RANK"]) == ("2", "1")
