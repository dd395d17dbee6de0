"""Every --dry-run format launches exactly what `lorakit train` launches.

sh and sbatch run under bash with the fake `swift` (and a fake `srun`/`scontrol`); swift-yaml is
read back by ms-swift's own loader, in a subprocess so this process never imports swift: 4.x's
(swift/cli/main.py: parse_yaml_args) here, 3.12.6's (prepare_config_args, `--config FILE`) in its
own venv (LORAKIT_SWIFT3_PYTHON); json is compared field by field. Each against the argv/env the
fake swift recorded when `lorakit train` itself launched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, swift3_python
from test_launch_cli import SHELL_NOISE, fake_env, lorakit, recorded

from lorakit import envvars, exports, overrides as layers, presets
from lorakit.errors import LorakitError
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
# Left in the shell that runs an export (not the one that rendered it, where the launch variables
# are a layer of the job): none of these may reach ms-swift.
STALE = {"NNODES": "7", "MASTER_ADDR": "stale", "RANK": "0", "WORLD_SIZE": "2", "RAY_SWIFT_ARGS": "[]"}
EIGHT = "0,1,2,3,4,5,6,7"


@pytest.fixture(autouse=True)
def local_datasets(tmp_path):
    """The local datasets the cases name, in the dir the launches run from: a missing local
    dataset is an error (ms-swift would take it for a hub id)."""
    for name in ("a b.jsonl", "c.jsonl"):
        (tmp_path / name).write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n' * 20)


def train_launch(tmp_path, args, **env) -> tuple[list[str], dict]:
    """What `lorakit train` launches from a clean shell."""
    result = lorakit(["train", *args], fake_env(tmp_path, "via_lorakit.json", **env))
    assert result.returncode == 0, result.stderr
    return recorded(tmp_path / "via_lorakit.json")


def export(tmp_path, args, fmt: str, **env) -> str:
    result = lorakit(["train", "--dry-run", "--format", fmt, *args], fake_env(tmp_path, "unused.json", **env))
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


LAUNCHER_LEFTOVERS = {"LOCAL_RANK": "0", "GROUP_RANK": "0", "_PATCH_WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "x"}


@pytest.mark.parametrize("fmt", ["sh"])
def test_scripts_unset_what_a_launcher_left_in_the_shell(tmp_path, fmt):
    """Run in a shell a torchrun worker left behind (RANK, WORLD_SIZE...), a script launches what
    lorakit train launches from a clean shell. TORCHELASTIC_* is only named in a comment."""
    script = tmp_path / f"train.{fmt}"
    text = export(tmp_path, CASES["single"], fmt)
    script.write_text(text)
    lines = text.splitlines()
    at = lines.index("unset " + " ".join(envvars.SCRUBBED))
    assert lines[at - 4:at] == [
        "unset NPROC_PER_NODE NNODES NODE_RANK MASTER_ADDR MASTER_PORT",
        "# Set by a launcher for the workers it starts: left in your shell they make ms-swift",
        "# believe it already runs inside a torchrun worker. lorakit train removes these, and",
        "# every TORCHELASTIC_* variable too: unset any of those your shell has."]
    if fmt == "sh":
        env = fake_env(tmp_path, "via_script.json", **STALE, **LAUNCHER_LEFTOVERS)
        ran = tmp_path / "via_script.json"
    else:
        env = {**slurm_env(tmp_path, script), **LAUNCHER_LEFTOVERS}
        ran = tmp_path / "node0.json"
    assert subprocess.run(["bash", str(script)], env=env, timeout=60).returncode == 0
    argv, child = recorded(ran) if fmt == "sh" else without_slurm(recorded(ran))
    assert (argv, {k: v for k, v in child.items() if k != "TORCHELASTIC_RUN_ID"}) == \
        train_launch(tmp_path, CASES["single"])
    assert child["TORCHELASTIC_RUN_ID"] == "x"


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
    job = apply_fixups(build_job(layers.apply_overrides(
        presets.load("zero2"), [("args.global_batch_size", 32, "--set")]), {}, swift_major=4))
    data = json.loads(exports.json_text(job, render(job), job.adjustments))
    assert list(data) == ["preset", "command", "swift_major", "node_rank", "env", "unset", "unset_prefixes",
                          "argv", "findings"]
    assert data["unset"] == ["NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK",
                             "WORLD_SIZE", "LOCAL_WORLD_SIZE", "LOCAL_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
                             "ROLE_RANK", "ROLE_NAME", "ROLE_WORLD_SIZE", "_PATCH_WORLD_SIZE", "RAY_SWIFT_ARGS"]
    assert data["unset_prefixes"] == ["TORCHELASTIC_"]
    assert data["findings"] == [{
        "level": "info", "code": "batch.global_batch_size.derived",
        "message": "gradient_accumulation_steps 4 = global_batch_size 32 / (per-device 1 x 8 rank(s) per node "
                   "x 1 node(s))",
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
    clean = {k: v for k, v in os.environ.items() if k not in envvars.LAUNCH}
    done = subprocess.run([sys.executable, "-c", READ_BACK, str(path)], env={**clean, **env},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, "ms-swift must be installed here: " + done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


CASES_4 = sorted(name for name, args in CASES.items() if "--swift-version" not in args)
CASES_3 = sorted(set(CASES) - set(CASES_4))


def test_the_cases_cover_both_majors():
    assert CASES_4 == ["single", "zero2-node1"] and CASES_3 == ["ddp-3x"]


@pytest.mark.parametrize("case", CASES_4)
def test_swift_yaml_reads_back_through_ms_swift_to_the_same_launch(tmp_path, case):
    path = tmp_path / "config.yaml"
    path.write_text(export(tmp_path, CASES[case], "swift-yaml"))
    back = swift_read_back(path)
    argv, env = train_launch(tmp_path, CASES[case])
    assert ["sft", *back["argv"]] == argv
    launch_vars = {k: v for k, v in env.items() if k in envvars.LAUNCH}
    assert back["env"] == launch_vars


def test_swift_yaml_tricky_values_and_the_env_comment(tmp_path):
    """Values str() would change (True, 32.0, '1:30', a dict, a one-item list), 4.x's spelling."""
    resolved = layers.apply_overrides(presets.load("ddp"), [
        ("args.lora_alpha", 32.0, "t"), ("args.use_rslora", True, "t"), ("args.system", "1:30", "t"),
        ("args.seed", "true", "t"), ("args.learning_rate", 1e-05, "t"), ("args.dataset", ["only.jsonl"], "t"),
        ("args.model_kwargs", {"a": 1.0, "é": [1, "x"], "b": None}, "t"), ("args.eval_steps", None, "t"),
        ("args.stop_words", [], "t"), ("args.columns", '{"q": "query"}', "t"), ("args.max_pixels", "", "t"),
    ])
    job = apply_fixups(build_job(resolved, {}, swift_major=4))
    command = render(job)
    text = exports.swift_yaml(job, command)
    path = tmp_path / "tricky.yaml"
    path.write_text(text)
    back = swift_read_back(path)
    assert back["argv"] == command.argv[2:]
    assert back["env"] == command.env
    assert "tuner_type" in yaml.safe_load(text) and "train_type" not in yaml.safe_load(text)
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


def swift3_parse(*argvs: list[str]) -> list[dict]:
    """Each argv through ms-swift 3.x's launcher (prepare_config_args expands --config FILE) and
    then its parser: the argv the training script gets, what is left over, the parsed values."""
    done = subprocess.run([swift3_python(), str(REPO / "scripts" / "swift_parse_check.py"), "sft", "--batch"],
                          input=json.dumps(list(argvs)), capture_output=True, text=True, timeout=600,
                          cwd=REPO / "scripts")
    assert done.returncode == 0, done.stderr[-2000:]
    answers = json.loads(done.stdout)
    assert all(a["swift_version"].startswith("3.") for a in answers)
    return answers


def run_lines(text: str, path: Path) -> str:
    """The header's `Run it from bash with:` block, for a file at `path`."""
    lines = [line[4:] for line in text.splitlines() if line.startswith("#   ")]
    return "\n".join(lines).replace("THIS_FILE.yaml", shlex.quote(str(path))) + "\n"


SWIFT3_HEAD = [
    "# lorakit train -p ddp, rendered for ms-swift 3.x",
    "# ms-swift 3.x reads this file only as `swift sft --config FILE`, and takes no ENV",
    "# from it (its launcher reads the launch variables before the file). Run it from bash with:",
    "#   unset NNODES NODE_RANK MASTER_ADDR MASTER_PORT",
    "#   unset " + " ".join(envvars.SCRUBBED),
    "#   CUDA_VISIBLE_DEVICES=0,1 NPROC_PER_NODE=2 swift sft --config THIS_FILE.yaml",
    "# The unsets: launch variables this job does not set, and those a launcher sets for its workers",
    "# (lorakit train also removes every TORCHELASTIC_*): one left in your shell changes the launch.",
    "# In ms-swift 3.x this file's values come after the command line's flags, so they win:",
    "# `swift sft --config THIS_FILE.yaml --lora_rank 16` still uses this file's lora_rank.",
    "# Change a value of this file here; only a flag the file does not have works on the command line.",
]


def test_swift3_yaml_run_as_its_header_says_launches_what_lorakit_launches(tmp_path):
    """3.12.6 itself expands the file (no --ENV flag, nothing left over), and bash runs the
    header's lines with the env lorakit train sets: GPU pinning and ranks on the command line."""
    path = tmp_path / "config.yaml"
    text = export(tmp_path, CASES["ddp-3x"], "swift-yaml")
    path.write_text(text)
    assert text.splitlines()[:11] == SWIFT3_HEAD
    assert "ENV" not in yaml.safe_load(text) and "train_type" in yaml.safe_load(text)
    shell = fake_env(tmp_path, "via_yaml.json", **STALE)
    assert subprocess.run(["bash", "-c", run_lines(text, path)], env=shell, timeout=60).returncode == 0
    ran_argv, ran_env = recorded(tmp_path / "via_yaml.json")
    argv, env = train_launch(tmp_path, CASES["ddp-3x"])
    assert ran_argv == ["sft", "--config", str(path)]
    assert ran_env == env and env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["NPROC_PER_NODE"] == "2"
    [back] = swift3_parse(ran_argv[1:])
    assert (back["exit"], back["remaining"]) == (0, [])
    assert ["sft", *back["argv"]] == argv
    assert not any(item.startswith("--ENV") for item in back["argv"])


def test_swift3_yaml_tricky_values_read_back_through_ms_swift_3(tmp_path):
    """OmegaConf (3.x's reader) resolves ${...}, reads a plain 1e5 as a float and true as True,
    and passes a list's items to argparse as they are: every value is a quoted string."""
    system = "It's ${HOME} \\${x} \\\\${y} $HOME 1e5 true\nline two\x7f é ??? ${oc.env:HOME} a\\b"
    resolved = layers.apply_overrides(presets.load("zero2"), [
        ("args.lora_alpha", 32.0, "t"), ("args.use_rslora", True, "t"), ("args.system", system, "t"),
        ("args.seed", 42.0, "t"), ("args.learning_rate", 1e-05, "t"), ("args.dataset", ["only.jsonl"], "t"),
        ("args.model_kwargs", {"a": 1.0, "é": [1, "${x}"], "b": None}, "t"), ("args.eval_steps", None, "t"),
        ("args.columns", '{"q": "query"}', "t"), ("args.warmup_ratio", "1e-1", "t"),
        ("args.max_length", 1e5, "t"), ("launch.nnodes", 2, "t"), ("launch.master_addr", "h0", "t"),
    ])
    job = apply_fixups(build_job(resolved, {}, swift_major=3))
    command = render(job)
    text = exports.swift_yaml(job, command)
    path = tmp_path / "tricky.yaml"
    path.write_text(text)
    [back] = swift3_parse(["--config", str(path)])
    assert back["argv"] == command.argv[2:]
    assert (back["exit"], back["remaining"]) == (0, [])
    assert back["values"]["system"] == system and back["values"]["use_rslora"] is True
    assert back["values"]["model_kwargs"] == '{"a": 1.0, "é": [1, "${x}"], "b": null}'
    assert "#   CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 NPROC_PER_NODE=8 NNODES=2 MASTER_ADDR=h0 swift sft " \
           "--config THIS_FILE.yaml" in text.splitlines()
    assert "#   unset NODE_RANK MASTER_PORT" in text.splitlines()
    assert "max_length: '100000'" in text.splitlines() and "learning_rate: '1e-05'" in text.splitlines()


def test_swift3_yaml_wins_over_the_command_line(tmp_path):
    """Why the header says so: 3.x appends the file's values after the command line's flags."""
    job = apply_fixups(build_job(presets.load("single"), {}, swift_major=3))
    path = tmp_path / "c.yaml"
    path.write_text(exports.swift_yaml(job, render(job)))
    plain, overridden = swift3_parse(["--config", str(path)], ["--config", str(path), "--lora_rank", "16"])
    assert overridden["argv"] == ["--lora_rank", "16", *plain["argv"]]
    assert overridden["values"]["lora_rank"] == plain["values"]["lora_rank"] == 8


def test_swift3_yaml_of_a_merge_names_its_own_command():
    resolved = layers.apply_overrides(presets.load("merge"), [("args.adapters", ["/ckpt"], "t")])
    job = build_job(resolved, {}, swift_major=3)
    lines = exports.swift_yaml(job, render(job)).splitlines()
    assert lines[1] == "# ms-swift 3.x reads this file only as `swift export --config FILE`, and takes no ENV"
    assert lines[3:6] == ["#   unset " + " ".join(envvars.LAUNCH), "#   unset " + " ".join(envvars.SCRUBBED),
                          "#   swift export --config THIS_FILE.yaml"]
    assert lines[9] == "# `swift export --config THIS_FILE.yaml --merge_lora X` still uses this file's merge_lora."
    assert lines[11:] == ["merge_lora: 'true'", "adapters:", "- '/ckpt'"]


def test_swift3_yaml_refuses_a_value_omegaconf_cannot_hold(tmp_path, cli):
    """'???' is OmegaConf's "missing": 3.x's reader would stop with MissingMandatoryValue."""
    job = apply_fixups(build_job(layers.apply_overrides(presets.load("single"), [("args.system", "???", "t")]),
                                 {}, swift_major=3))
    with pytest.raises(LorakitError, match=r"^--format swift-yaml: system is '\?\?\?', which ms-swift 3.x's "):
        exports.swift_yaml(job, render(job))
    result = cli(["train", "-p", "single", "--swift-version", "3", "--set", "dataset=[a, '???']",
                  "--dry-run", "--format", "swift-yaml"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        "lorakit: error: --format swift-yaml: dataset is '???', which ms-swift 3.x's config reader (OmegaConf) "
        "reads as a missing value and refuses\n  hint: use --format sh (or text), or give the value another "
        "spelling\n")
    assert cli(["train", "-p", "single", "--swift-version", "4", "--set", "system=???", "--dry-run",
                "--format", "swift-yaml"]).code == 0  # 4.x reads YAML with PyYAML: no such value


FAKE_SRUN = r"""#!/usr/bin/env bash
# fake srun: skip the --options, then run the task once per node, one after another, with the
# variables SLURM gives each task (srun(1), OUTPUT ENVIRONMENT VARIABLES). Like SLURM, set
# CUDA_VISIBLE_DEVICES in the step to the node's allocated GPUs, numbered from 0.
nodes=1
while [[ $1 == --* ]]; do
  case $1 in --nodes=*) nodes=${1#--nodes=} ;; --cpus-per-task=*) echo "$1" > "$FAKE_RECORD_DIR/srun-cpus" ;; esac
  shift
done
if [[ -n ${SLURM_GPUS_PER_NODE:-} ]]; then
  CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((SLURM_GPUS_PER_NODE - 1)))
  export CUDA_VISIBLE_DEVICES
fi
for ((i = 0; i < nodes; i++)); do
  SLURM_NNODES=$nodes SLURM_NODEID=$i SLURM_STEP_NODELIST=$SLURM_JOB_NODELIST \
    FAKE_SWIFT_RECORD=$FAKE_RECORD_DIR/node$i.json "$@" || exit $?
done
"""
# node names that resolve nowhere: MASTER_ADDR must be node 0's NodeAddr, not its name
FAKE_SCONTROL = """#!/usr/bin/env bash
case "$1 $2 $3" in
  "show hostnames gpu-[07-08]") printf 'gpu-07\\ngpu-08\\n' ;;
  "show hostnames gpu-07") printf 'gpu-07\\n' ;;
  "show node gpu-07") printf 'NodeName=gpu-07 Arch=x86_64 CoresPerSocket=8\\n   NodeAddr=10.1.2.7 NodeHostName=gpu-07 Version=22.05.8\\n' ;;
  *) echo "fake scontrol: $*" >&2; exit 2 ;;
esac
"""
JOB_ID = "4242"
PORT = str(15000 + int(JOB_ID) % 17000)  # lorakit.injob: SLURM_PORT_BASE + SLURM_JOB_ID % SPAN


def slurm_env(tmp_path, script: Path, nodelist: str = "gpu-[07-08]") -> dict:
    """The batch step's environment: sbatch's SLURM_GPUS_PER_NODE from the script's header, and a
    stale CUDA_VISIBLE_DEVICES and launch variables from the login shell."""
    bin_dir = tmp_path / "slurm-bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    gpus = [line.partition("=")[2] for line in script.read_text().splitlines()
            if line.startswith("#SBATCH --gpus-per-node=")]
    env = fake_env(tmp_path, "unused.json", **STALE, **LAUNCHER_LEFTOVERS, SLURM_JOB_NODELIST=nodelist,
                   SLURM_JOB_ID=JOB_ID, FAKE_RECORD_DIR=str(tmp_path), CUDA_VISIBLE_DEVICES="9",
                   **({"SLURM_GPUS_PER_NODE": gpus[0]} if gpus else {}))
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def without_slurm(pair):
    """What the fake SLURM added (its variables), and PATH, which the script puts the rendering
    environment's `swift` directory in front of (asserted apart)."""
    argv, env = pair
    assert env["PATH"].split(os.pathsep)[0] == str(REPO / "tests" / "fakes")
    env = {k: v for k, v in env.items() if not k.startswith("SLURM_") and k not in ("FAKE_RECORD_DIR", "PATH")}
    return argv, env


def node_launch(tmp_path, args, rank: int):
    """What `lorakit train` launches as node `rank`, told the layout SLURM gives the task (in
    place of the args' own address and port: a setting given twice is an error)."""
    kept: list[str] = []
    for item in args:
        if kept and kept[-1] == "--set" and item.startswith(("launch.master_addr=", "launch.master_port=")):
            kept.pop()
            continue
        kept.append(item)
    argv, env = train_launch(tmp_path, kept + ["--set", "launch.master_addr=10.1.2.7", "--set",
                                               f"launch.master_port={PORT}", "--node-rank", str(rank)])
    return argv, {k: v for k, v in env.items() if k != "PATH"}


def run_sbatch(tmp_path, args) -> Path:
    script = tmp_path / "train.sbatch"
    script.write_text(export(tmp_path, args, "sbatch"))
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    ran = subprocess.run(["bash", str(script)], env=slurm_env(tmp_path, script), cwd=tmp_path, timeout=120)
    assert ran.returncode == 0
    return script


@pytest.mark.parametrize("extra, gpus, slurm_gpus", [
    ([], [], EIGHT),
    (["--set", "launch.master_addr=10.9.9.9", "--node-rank", "1"], [], EIGHT),
    ([], ["--gpus", "4,5"], "0,1"),
])
def test_sbatch_runs_each_nodes_launch(tmp_path, extra, gpus, slurm_gpus):
    """Two nodes, no master_addr needed: each task's `lorakit train --on slurm` takes the rank from
    SLURM_NODEID, the address from node 0's NodeAddr and the port from the job id, and launches
    exactly what `lorakit train` launches on that node, but for CUDA_VISIBLE_DEVICES: SLURM sets it
    in the job step to the node's allocated GPUs (0..n-1), not to the ids lorakit resolved. The
    submitting shell's leftovers (NNODES=7, RANK, TORCHELASTIC_RUN_ID...) reach nothing."""
    base = ["-p", "zero2", "--set", "launch.nnodes=2", "--set", "launch.master_port=29400",
            "--set", "system=It's $HOME"]
    script = run_sbatch(tmp_path, base + gpus + extra)
    lines = script.read_text().splitlines()
    assert lines[3:8] == ["#SBATCH --job-name=lorakit-zero2", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1",
                          f"#SBATCH --chdir={tmp_path}", f"#SBATCH --gpus-per-node={slurm_gpus.count(',') + 1}"]
    for rank in (0, 1):
        argv, env = node_launch(tmp_path, base + gpus, rank)
        assert env["CUDA_VISIBLE_DEVICES"] == (gpus[1] if gpus else EIGHT)
        node = without_slurm(recorded(tmp_path / f"node{rank}.json"))
        assert node == (argv, {**env, "CUDA_VISIBLE_DEVICES": slurm_gpus})
        assert "TORCHELASTIC_RUN_ID" not in node[1] and node[1]["NNODES"] == "2"


def test_sbatch_runs_the_environment_that_rendered_it(tmp_path):
    """A batch step starts from the login environment, where a bare `swift` was `exec: swift: not
    found` (exit 127) on the real cluster: the script runs this Python's lorakit and puts the
    rendering PATH's `swift` directory first."""
    text = export(tmp_path, ["-p", "zero2", "--set", "launch.nnodes=2"], "sbatch")
    fakes = REPO / "tests" / "fakes"
    lines = text.splitlines()
    assert f"# The job runs the environment that rendered it: {sys.executable} -m lorakit," in lines
    assert f"# with ms-swift's swift from {fakes} first on PATH." in lines
    assert f'export PATH={fakes}:"$PATH"' in lines
    assert lines[-1] == (f"exec srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 {sys.executable} -m lorakit "
                         'train -p "$JOB_FILE" --on slurm --swift-version 4')
    assert not any(line.lstrip().startswith(("swift ", "exec swift")) for line in lines)
    # the job file the nodes read: the resolved preset, without what SLURM decides per node
    body = text[text.index("<<'LORAKIT_JOB'\n") + 16:text.index("\nLORAKIT_JOB\n")]
    job = yaml.safe_load(body)
    assert job["launch"] == {"nproc_per_node": 8} and job["command"] == "sft"
    assert job["args"]["deepspeed"] == "zero2"


def test_sbatch_chdir_is_where_it_was_rendered(tmp_path):
    """The preset's relative paths resolve where lorakit rendered it; an #SBATCH line is split at
    whitespace, so a directory with a space gets no --chdir (the submitting shell's directory)."""
    spaced = tmp_path / "my runs"
    spaced.mkdir()
    for where, want in ((tmp_path, [f"#SBATCH --chdir={tmp_path}"]), (spaced, [])):
        result = lorakit(["train", "-p", "zero2", "--dry-run", "--format", "sbatch"],
                         fake_env(tmp_path, "unused.json"), cwd=where)
        assert result.returncode == 0, result.stderr
        assert [line for line in result.stdout.splitlines() if line.startswith("#SBATCH --chdir")] == want


def test_sbatch_without_swift_on_path_says_so(tmp_path):
    env = fake_env(tmp_path, "unused.json")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not (Path(p) / "swift").exists()) or "/nonexistent"
    result = lorakit(["train", "-p", "zero2", "--set", "launch.nnodes=2", "--dry-run", "--format", "sbatch"], env)
    assert result.returncode == 0, result.stderr
    assert "# `swift` was NOT on PATH when this was rendered: the nodes' PATH must have ms-swift's." in \
        result.stdout.splitlines()
    assert "export PATH=" not in result.stdout


@pytest.mark.parametrize("args, why", [
    (["--set", "use_cpu=true"], "use_cpu"),
    (["--set", "launch.gpus=null"], "no GPU list"),
    (["--set", "launch.gpus=~"], "no GPU list"),
])
def test_sbatch_asks_for_no_gpus_on_a_gpu_less_job(tmp_path, args, why):
    """sbatch refuses --gpus-per-node on a cluster without GPUs ("Invalid generic resource"); a
    CPU job or `--set launch.gpus=null` (a YAML null, as the README says --set values are) has none."""
    text = export(tmp_path, ["-p", "zero2", "--set", "launch.nproc_per_node=2", *args], "sbatch",
                  CUDA_VISIBLE_DEVICES="0,1")
    assert not any(line.startswith("#SBATCH --gpus") for line in text.splitlines())
    assert f"# No GPUs are requested ({why}): add #SBATCH --gpus-per-node=N for a GPU job." in text.splitlines()


def test_gpus_null_removes_the_list():
    assert layers.parse_set("launch.gpus=null") == ("launch.gpus", None)
    assert layers.parse_set("launch.gpus=010") == ("launch.gpus", "010")  # still text, not 8


def test_sbatch_cpus_time_and_requeue_come_from_preset_keys(tmp_path):
    """--cpus-per-task on sbatch AND srun (since 22.05 srun does not inherit it from sbatch; under
    task/affinity the node's whole launch was pinned to one CPU), --time (a rendezvous that never
    forms ends), and requeue: SLURM signals the batch shell 120 s before the limit, it requeues,
    and the next run resumes from the newest complete checkpoint."""
    preset = tmp_path / "long.yaml"
    preset.write_text("extends: zero2\nlaunch:\n  nnodes: 2\n  cpus_per_task: 16\n  time: '2-00:00:00'\n"
                      "  requeue: true\n")
    text = export(tmp_path, ["-p", str(preset)], "sbatch")
    lines = text.splitlines()
    assert lines[7:14] == ["#SBATCH --gpus-per-node=8", "#SBATCH --cpus-per-task=16", "#SBATCH --time=2-00:00:00",
                           "#SBATCH --requeue", "#SBATCH --signal=B:USR1@120", "#SBATCH --open-mode=append",
                           "set -euo pipefail"]
    assert """trap 'echo "lorakit: time limit near: requeueing job $SLURM_JOB_ID" >&2; scontrol requeue \
"$SLURM_JOB_ID"' USR1""" in lines
    assert lines[-2:] == [f"srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 --cpus-per-task=16 {sys.executable} "
                          '-m lorakit train -p "$JOB_FILE" --on slurm --swift-version 4 --resume if-any &',
                          "wait $! || wait $!"]
    text2 = export(tmp_path, ["-p", "zero2", "--set", "launch.time=1:30:00"], "sbatch")
    assert "#SBATCH --time=1:30:00" in text2.splitlines()  # not YAML's sexagesimal 5400


def test_sbatch_requeued_job_resumes_if_any(tmp_path):
    """The requeue script runs under the fake SLURM: each node's lorakit gets --resume if-any, and
    with no checkpoint yet starts fresh: the same launch as without requeue."""
    base = ["-p", "zero2", "--set", "launch.nnodes=2", "--set", "launch.cpus_per_task=4"]
    run_sbatch(tmp_path, base + ["--set", "launch.requeue=true"])
    assert (tmp_path / "srun-cpus").read_text() == "--cpus-per-task=4\n"
    for rank in (0, 1):
        argv, env = node_launch(tmp_path, base, rank)
        assert without_slurm(recorded(tmp_path / f"node{rank}.json")) == (argv, {**env, "CUDA_VISIBLE_DEVICES": EIGHT})


def test_sbatch_one_node_keeps_the_jobs_env(tmp_path):
    script = run_sbatch(tmp_path, CASES["single"])
    assert "#SBATCH --nodes=1" in script.read_text()
    # one GPU: SLURM's CUDA_VISIBLE_DEVICES=0 is the job's own; one node: no NNODES (no torchrun
    # for a one-process job), only the job's own port
    argv, env = train_launch(tmp_path, CASES["single"] + ["--set", f"launch.master_port={PORT}"])
    assert without_slurm(recorded(tmp_path / "node0.json")) == (argv, {k: v for k, v in env.items() if k != "PATH"})


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
            "--node-rank", "1", "--set", "launch.image=registry.example/lorakit:1", "--dry-run", "--format", fmt]
    done = subprocess.run([sys.executable, "-c", NO_HEAVY, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_scripts_title_names_the_lorakit_command_that_renders_it():
    from conftest import run_cli as _run

    for words, head in ((["rlhf", "-p", "dpo"], "# lorakit rlhf -p dpo, rendered for ms-swift 4.x"),
                        (["train", "-p", "zero2"], "# lorakit train -p zero2, rendered for ms-swift 4.x")):
        result = _run([*words, "--dry-run", "--format", "sh"])
        assert result.code == 0, result.stderr
        assert result.stdout.splitlines()[1] == head
