"""Every --dry-run format launches exactly what `lorakit train` launches.

sh and sbatch run under bash with the fake `swift` (and a fake `srun`/`scontrol`); swift-yaml is
read back by ms-swift's own loader (swift/cli/main.py: parse_yaml_args, in a subprocess so this
process never imports swift); json is compared field by field. Each against the argv/env the
fake swift recorded when `lorakit train` itself launched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from test_launch_cli import SHELL_NOISE, fake_env, lorakit, recorded

from lorakit import exports, presets
from lorakit.fixups import apply_fixups
from lorakit.job import build_job
from lorakit.render import render

CASES = {
    "single": ["-p", "single", "--output-dir", "my out", "--set", "system=It's a \"test\" $HOME `x`"],
    "zero2-node1": ["-p", "zero2", "--set", "launch.nnodes=2", "--set", "launch.master_addr=10.0.0.1",
                    "--set", "launch.master_port=29400", "--node-rank", "1", "--set", "global_batch_size=32"],
    "ddp-3x": ["-p", "ddp", "--gpus", "0,1", "--swift-version", "3", "--", "--max_steps", "3",
               "--dataset", "a b.jsonl", "c.jsonl"],
}
STALE = {"NNODES": "7", "MASTER_ADDR": "stale"}  # left in the shell: must not reach ms-swift
EIGHT = "0,1,2,3,4,5,6,7"


def train_launch(tmp_path, args, **env) -> tuple[list[str], dict]:
    result = lorakit(["train", *args], fake_env(tmp_path, "via_lorakit.json", **STALE, **env))
    assert result.returncode == 0, result.stderr
    return recorded(tmp_path / "via_lorakit.json")


def export(tmp_path, args, fmt: str, **env) -> str:
    result = lorakit(["train", "--dry-run", "--format", fmt, *args],
                     fake_env(tmp_path, "unused.json", **STALE, **env))
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_sh_script_runs_what_lorakit_runs(tmp_path, case):
    script = tmp_path / "train.sh"
    script.write_text(export(tmp_path, CASES[case], "sh"))
    assert script.read_text().splitlines()[:3] == [
        "#!/usr/bin/env bash", script.read_text().splitlines()[1], "set -euo pipefail"]
    ran = subprocess.run(["bash", str(script)], env=fake_env(tmp_path, "via_sh.json", **STALE), timeout=60)
    assert ran.returncode == 0
    assert recorded(tmp_path / "via_sh.json") == train_launch(tmp_path, CASES[case])


def test_sh_script_passes_the_exit_code_through(tmp_path):
    script = tmp_path / "train.sh"
    script.write_text(export(tmp_path, CASES["single"], "sh"))
    ran = subprocess.run(["bash", str(script)], timeout=60,
                         env=fake_env(tmp_path, "r.json", FAKE_SWIFT_MODE="exit:7"))
    assert ran.returncode == 7


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_is_what_lorakit_runs(tmp_path, case):
    data = json.loads(export(tmp_path, CASES[case], "json"))
    argv, env = train_launch(tmp_path, CASES[case])
    assert data["argv"][0] == "swift" and data["argv"][1:] == argv
    inherited = {k: v for k, v in fake_env(tmp_path, "x", **STALE).items() if k not in SHELL_NOISE}
    child = {k: v for k, v in inherited.items() if k not in data["unset"]}
    child.update(data["env"])
    assert child == env
    assert all(set(f) == {"level", "code", "message", "hint", "key", "file"} for f in data["findings"])


def test_json_findings_and_fields():
    job = apply_fixups(build_job(presets.apply_overrides(
        presets.load("zero2"), [("args.global_batch_size", 32, "--set")]), {}, swift_major=4))
    data = json.loads(exports.json_text(job, render(job), job.adjustments))
    assert list(data) == ["preset", "command", "swift_major", "node_rank", "env", "unset", "argv", "findings"]
    assert data["unset"] == ["NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT"]
    assert data["findings"] == [{
        "level": "info", "code": "batch.global_batch_size.derived",
        "message": "gradient_accumulation_steps 4 = global_batch_size 32 / (per-device 1 x 8 rank(s) per node "
                   "x 1 node(s)); replaces 2 from built-in zero2",
        "hint": "", "key": "args.gradient_accumulation_steps", "file": "--set"}]


# ms-swift's own loader, run where swift is installed; prints what `swift sft FILE` would run.
READ_BACK = r"""
import json, os, sys
from swift.cli.main import parse_yaml_args
before = dict(os.environ)
argv = [sys.argv[1]]
parse_yaml_args(argv)
env = {k: v for k, v in os.environ.items() if before.get(k) != v and k != "SWIFT_CONFIG_FILE"}
print(json.dumps({"argv": argv, "env": env}))
"""


def swift_read_back(path: Path, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in exports.LAUNCH_ENV}
    done = subprocess.run([sys.executable, "-c", READ_BACK, str(path)], env={**clean, **env},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, "ms-swift must be installed here: " + done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("case", sorted(CASES))
def test_swift_yaml_reads_back_through_ms_swift_to_the_same_launch(tmp_path, case):
    path = tmp_path / "config.yaml"
    path.write_text(export(tmp_path, CASES[case], "swift-yaml"))
    back = swift_read_back(path)
    argv, env = train_launch(tmp_path, CASES[case])
    assert ["sft", *back["argv"]] == argv
    launch_vars = {k: v for k, v in env.items() if k in exports.LAUNCH_ENV}
    assert back["env"] == launch_vars


def test_swift_yaml_tricky_values_and_the_env_comment(tmp_path):
    """Values str() would change (True, 32.0, '1:30', a dict, a one-item list), and 3.x spelling."""
    resolved = presets.apply_overrides(presets.load("ddp"), [
        ("args.lora_alpha", 32.0, "t"), ("args.use_rslora", True, "t"), ("args.system", "1:30", "t"),
        ("args.seed", "true", "t"), ("args.learning_rate", 1e-05, "t"), ("args.dataset", ["only.jsonl"], "t"),
        ("args.model_kwargs", {"a": 1.0, "é": [1, "x"], "b": None}, "t"), ("args.eval_steps", None, "t"),
        ("args.stop_words", [], "t"), ("args.columns", '{"q": "query"}', "t"), ("args.max_pixels", "", "t"),
    ])
    job = apply_fixups(build_job(resolved, {}, swift_major=3))
    command = render(job)
    text = exports.swift_yaml(job, command)
    path = tmp_path / "tricky.yaml"
    path.write_text(text)
    back = swift_read_back(path)
    assert back["argv"] == command.argv[2:]
    assert back["env"] == command.env
    assert "train_type" in yaml.safe_load(text) and "tuner_type" not in yaml.safe_load(text)
    assert text.splitlines()[2:4] == [
        "# ms-swift applies an ENV value only when the shell has NOT exported that variable",
        "# already: an exported one wins (with a warning), and the launch differs from lorakit's."]


def test_swift_yaml_env_loses_to_an_exported_variable(tmp_path):
    """Why the comment is there: ms-swift keeps the shell's value."""
    path = tmp_path / "c.yaml"
    job = apply_fixups(build_job(presets.load("zero2"), {}, swift_major=4))
    path.write_text(exports.swift_yaml(job, render(job)))
    back = swift_read_back(path, NPROC_PER_NODE="2")
    assert "NPROC_PER_NODE" not in back["env"]  # unchanged: still the shell's 2, not the file's 8


FAKE_SRUN = r"""#!/usr/bin/env bash
# fake srun: skip the --options, then run the task once per node, one after another. Like SLURM,
# set CUDA_VISIBLE_DEVICES in the step to the node's allocated GPUs, numbered from 0.
nodes=1
while [[ $1 == --* ]]; do
  case $1 in --nodes=*) nodes=${1#--nodes=} ;; esac
  shift
done
if [[ -n ${SLURM_GPUS_PER_NODE:-} ]]; then
  CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((SLURM_GPUS_PER_NODE - 1)))
  export CUDA_VISIBLE_DEVICES
fi
for ((i = 0; i < nodes; i++)); do
  SLURM_NODEID=$i FAKE_SWIFT_RECORD=$FAKE_RECORD_DIR/node$i.json "$@" || exit $?
done
"""
FAKE_SCONTROL = """#!/usr/bin/env bash
[ "$1 $2 $3" = "show hostnames gpu-[07-08]" ] || { echo "fake scontrol: $*" >&2; exit 2; }
printf 'gpu-07\\ngpu-08\\n'
"""


def slurm_env(tmp_path, script: Path) -> dict:
    """The batch step's environment: sbatch's SLURM_GPUS_PER_NODE from the script's header, and a
    stale CUDA_VISIBLE_DEVICES from the login shell that SLURM replaces in the job step."""
    bin_dir = tmp_path / "slurm-bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    gpus = [line.partition("=")[2] for line in script.read_text().splitlines()
            if line.startswith("#SBATCH --gpus-per-node=")]
    env = fake_env(tmp_path, "unused.json", **STALE, SLURM_JOB_NODELIST="gpu-[07-08]",
                   FAKE_RECORD_DIR=str(tmp_path), CUDA_VISIBLE_DEVICES="9",
                   **({"SLURM_GPUS_PER_NODE": gpus[0]} if gpus else {}))
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def without_slurm(pair):
    """What the fake SLURM added: its variables and its bin dir at the front of PATH."""
    argv, env = pair
    env = {k: v for k, v in env.items() if not k.startswith("SLURM_") and k != "FAKE_RECORD_DIR"}
    env["PATH"] = env["PATH"].split(os.pathsep, 1)[1]
    return argv, env


@pytest.mark.parametrize("extra, gpus, slurm_gpus", [
    ([], [], EIGHT),
    (["--set", "launch.master_addr=10.9.9.9", "--node-rank", "1"], [], EIGHT),
    ([], ["--gpus", "4,5"], "0,1"),
])
def test_sbatch_runs_each_nodes_launch(tmp_path, extra, gpus, slurm_gpus):
    """Two nodes, no master_addr needed: rank from SLURM_NODEID, address from the allocation.
    Exactly what `lorakit train` launches on each node, but for CUDA_VISIBLE_DEVICES: SLURM sets
    it in the job step to the node's allocated GPUs (0..n-1), not to the ids lorakit resolved."""
    base = ["-p", "zero2", "--set", "launch.nnodes=2", "--set", "launch.master_port=29400",
            "--set", "system=It's $HOME"]
    script = tmp_path / "train.sbatch"
    script.write_text(export(tmp_path, base + gpus + extra, "sbatch"))
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    lines = script.read_text().splitlines()
    assert lines[3:7] == ["#SBATCH --job-name=lorakit-zero2", "#SBATCH --nodes=2",
                          "#SBATCH --ntasks-per-node=1", f"#SBATCH --gpus-per-node={slurm_gpus.count(',') + 1}"]
    ran = subprocess.run(["bash", str(script)], env=slurm_env(tmp_path, script), timeout=60)
    assert ran.returncode == 0
    for rank in (0, 1):
        argv, env = train_launch(tmp_path, base + gpus + ["--set", "launch.master_addr=gpu-07", "--node-rank", str(rank)])
        assert env["CUDA_VISIBLE_DEVICES"] == (gpus[1] if gpus else EIGHT)
        assert without_slurm(recorded(tmp_path / f"node{rank}.json")) == (
            argv, {**env, "CUDA_VISIBLE_DEVICES": slurm_gpus})


def test_sbatch_leaves_cuda_visible_devices_to_slurm(tmp_path):
    """The brief's case: --gpus 4,5 (or a login node's CUDA_VISIBLE_DEVICES) on two nodes. GPUs
    4 and 5 do not exist inside the allocation, which numbers the node's GPUs from 0."""
    for args, env in ((["--gpus", "4,5"], {}), ([], {"CUDA_VISIBLE_DEVICES": "4,5"})):
        text = export(tmp_path, ["-p", "zero2", "--set", "launch.nnodes=2", *args], "sbatch", **env)
        lines = text.splitlines()
        assert "#SBATCH --gpus-per-node=2" in lines
        assert "CUDA_VISIBLE_DEVICES=" not in text and "unset CUDA_VISIBLE_DEVICES" not in text
        assert not any(line.startswith("unset") and "CUDA_VISIBLE_DEVICES" in line for line in lines)
        assert "    NPROC_PER_NODE=2 \\" in lines
        source = "--gpus" if args else "CUDA_VISIBLE_DEVICES in your environment"
        at = lines.index("srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 \\")
        assert lines[at - 3:at] == [
            "# CUDA_VISIBLE_DEVICES comes from SLURM, which sets it in each job step to the node's",
            f"# allocated GPUs (--gpus-per-node=2 above). The GPU ids lorakit resolved (4,5, from {source})",
            "# name the rendering machine's GPUs, so they are not exported; NPROC_PER_NODE sets the ranks."]


def test_sbatch_without_a_gpu_list_says_to_ask_slurm_for_gpus():
    job = apply_fixups(build_job(presets.apply_overrides(presets.load("single"), [("launch.gpus", None, "--set")]),
                                 {}, swift_major=4))
    text = exports.sbatch_script(job, render(job))
    assert "--gpus-per-node" not in text.replace("# The job names no GPU list: add #SBATCH --gpus-per-node=N", "")
    assert "# The job names no GPU list: add #SBATCH --gpus-per-node=N for the GPUs each node needs." in text
    assert "unset NPROC_PER_NODE NNODES NODE_RANK MASTER_ADDR MASTER_PORT" in text.splitlines()


def test_sbatch_one_node_keeps_the_jobs_env(tmp_path):
    script = tmp_path / "single.sbatch"
    script.write_text(export(tmp_path, CASES["single"], "sbatch"))
    text = script.read_text()
    assert "scontrol" not in text and "SLURM_NODEID" not in text and "#SBATCH --nodes=1" in text
    ran = subprocess.run(["bash", str(script)], env=slurm_env(tmp_path, script), timeout=60)
    assert ran.returncode == 0
    # one GPU: SLURM's CUDA_VISIBLE_DEVICES=0 is the job's own
    assert without_slurm(recorded(tmp_path / "node0.json")) == train_launch(tmp_path, CASES["single"])


def test_sbatch_without_master_addr_is_fine_but_train_is_not(cli):
    args = ["train", "-p", "zero2", "--set", "launch.nnodes=2"]
    assert cli(args + ["--dry-run", "--format", "sbatch"]).code == 0
    result = cli(args + ["--dry-run"])
    assert result.code == 2
    assert "error[nodes.master_addr.missing] launch.master_addr: nnodes 2 but no master_addr: the other " \
           "nodes cannot find node 0" in result.stderr.splitlines()


def gen_module():
    spec = importlib.util.spec_from_file_location("gen_seed_scripts", REPO / "scripts" / "gen_seed_scripts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_scripts_are_what_lorakit_renders(cli):
    gen = gen_module()
    for name, text in gen.expected().items():
        assert (REPO / "scripts" / name).read_text() == text, f"{name} drifted: run scripts/gen_seed_scripts.py"
    for name, preset in (("train_zero2.sh", "zero2"), ("train_ddp_device_map.sh", "ddp_device_map")):
        printed = cli(["train", "-p", preset, "--dry-run", "--format", "sh", "--swift-version", "4"])
        assert printed.stdout == (REPO / "scripts" / name).read_text()
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_seed_scripts.py"), "--check"])
    assert check.returncode == 0


def test_merge_script_is_the_seeds(tmp_path):
    text = (REPO / "scripts" / "merge.sh").read_text()
    assert text.splitlines()[-4:] == ["exec swift export \\", "    --merge_lora true \\",
                                      "    --adapters /path/to/output/checkpoint-xxx \\",
                                      "    --output_dir /path/to/merged_model"]
    ran = subprocess.run(["bash", str(REPO / "scripts" / "merge.sh")], env=fake_env(tmp_path, "m.json"), timeout=60)
    assert ran.returncode == 0
    argv, _ = recorded(tmp_path / "m.json")
    assert argv == ["export", "--merge_lora", "true", "--adapters", "/path/to/output/checkpoint-xxx",
                    "--output_dir", "/path/to/merged_model"]


def test_drift_is_caught(tmp_path, monkeypatch):
    gen = gen_module()
    monkeypatch.setattr(gen, "HERE", tmp_path)
    (tmp_path / "train_zero2.sh").write_text("#!/usr/bin/env bash\nswift sft --model old\n")
    assert gen.main(["--check"]) == 1


NO_HEAVY = r"""
import sys
from lorakit.cli.app import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = {"torch", "transformers", "swift", "peft"} & set(sys.modules)
assert not heavy, heavy
"""


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_dry_run_in_every_format_imports_no_ml_stack(tmp_path, fmt):
    args = ["train", "-p", "zero2", "--set", "launch.nnodes=2", "--set", "launch.master_addr=h0",
            "--node-rank", "1", "--dry-run", "--format", fmt]
    done = subprocess.run([sys.executable, "-c", NO_HEAVY, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
