"""Multi-node launches (env, checks, --node-rank, --all-nodes) and lorakit's global_batch_size."""

from __future__ import annotations

import json

import pytest

from lorakit import overrides as layers, presets
from lorakit.checks import run_checks
from lorakit.checks.facts import Facts, listening
from lorakit.checks import nodes
from lorakit.cli import run
from lorakit.fixups import apply_fixups
from lorakit.job import build_job
from lorakit.render import render

EIGHT = "0,1,2,3,4,5,6,7"
NODES = [("launch.nnodes", 2), ("launch.master_addr", "10.0.0.1"), ("launch.master_port", 29500)]


def job_with(name: str, overrides, who: str = "--set"):
    resolved = layers.apply_overrides(presets.load(name), [(k, v, who) for k, v in overrides])
    return apply_fixups(build_job(resolved, {}, swift_major=4))


def node_findings(job) -> list[tuple[str, str, str]]:
    return [(f.level, f.code, f.message) for f in run_checks(job) if f.code.startswith("nodes.")]


def test_launch_keys_become_the_four_torchrun_variables():
    job = job_with("zero2", [*NODES, ("launch.node_rank", 1)])
    assert render(job).env == {"CUDA_VISIBLE_DEVICES": EIGHT, "NPROC_PER_NODE": "8", "NNODES": "2",
                               "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
    assert node_findings(job) == []


@pytest.mark.parametrize("overrides, expected", [
    ([("launch.nnodes", 2), ("launch.node_rank", 0)],
     [("error", "nodes.master_addr.missing",
       "nnodes 2 but no master_addr: the other nodes cannot find node 0")]),
    ([("launch.nnodes", 3), ("launch.master_addr", "10.0.0.1")],
     [("error", "nodes.node_rank.missing", "nnodes 3 but no node_rank: every node must say which one it is")]),
    ([*NODES, ("launch.node_rank", 2)],
     [("error", "nodes.node_rank.range", "node_rank 2 is not in [0, 2) for nnodes 2")]),
    ([*NODES, ("launch.node_rank", -1)],
     [("error", "nodes.node_rank.range", "node_rank -1 is not in [0, 2) for nnodes 2")]),
    ([*NODES, ("launch.node_rank", "one")],
     [("error", "nodes.node_rank.range", "node_rank 'one' is not in [0, 2) for nnodes 2")]),
    ([("launch.node_rank", 1)],
     [("error", "nodes.node_rank.range", "node_rank 1 is not in [0, 1) for nnodes 1")]),
    ([("launch.nnodes", 0)],
     [("error", "nodes.nnodes.invalid", "nnodes 0 is not a number of nodes (1 or more)")]),
    ([("launch.nnodes", "two")],
     [("error", "nodes.nnodes.invalid", "nnodes 'two' is not a number of nodes (1 or more)")]),
    ([*NODES, ("launch.node_rank", 0), ("launch.master_port", 80)],
     [("error", "nodes.master_port.range", "master_port 80 is not a port in 1024-65535")]),
    ([*NODES, ("launch.node_rank", 0), ("launch.master_port", 65536)],
     [("error", "nodes.master_port.range", "master_port 65536 is not a port in 1024-65535")]),
    ([("launch.master_port", "http")],
     [("error", "nodes.master_port.range", "master_port 'http' is not a port in 1024-65535")]),
    ([("launch.nnodes", 2), ("launch.node_rank", 0), ("launch.master_addr", "::1")],
     [("warning", "nodes.master_addr.loopback", "master_addr ::1 is a loopback address with nnodes 2: node 0's "
       "rendezvous listens on every address, but runs set up so have hung until the NCCL timeout (ms-swift #2485, "
       "#6982)")]),
    # one node: a loopback address and any port in range are fine
    ([("launch.nnodes", 1), ("launch.master_addr", "127.0.0.1"), ("launch.master_port", 1024)], []),
    ([("launch.nnodes", "2"), ("launch.node_rank", "1"), ("launch.master_addr", "gpu-01"),
      ("launch.master_port", "65535")], []),
])
def test_node_checks(overrides, expected):
    assert node_findings(job_with("zero2", overrides)) == expected


LOOPBACK_HINT = ("set master_addr to node 0's address as node 1 reaches it (e.g. MASTER_ADDR=10.0.0.1); {addr} is "
                 "right only on node 0, or when every node runs on this host (start node 0 first)")


def loopback_findings(addr: str, port, *, here=True, answers=False, launching=False):
    asked = []

    def listening(host, at, seconds, what):
        asked.append((host, at, seconds))
        return answers

    overrides = [("launch.nnodes", 2), ("launch.node_rank", 1), ("launch.master_addr", addr)]
    if port is not None:
        overrides.append(("launch.master_port", port))
    facts = Facts(here=here, listening=listening, launching=launching)
    found = [(f.level, f.message, f.hint) for f in run_checks(job_with("zero2", overrides), facts)
             if f.code == "nodes.master_addr.loopback"]
    return found, asked


def test_node_1_at_a_loopback_address_with_nothing_there_is_an_error():
    found, asked = loopback_findings("127.0.0.1", None, launching=True)
    assert found == [("error", "node_rank 1 with master_addr 127.0.0.1: nothing answers at 127.0.0.1:29500 on "
                      "this host (waited 120 s), so node 0 is elsewhere and this node would retry until "
                      "torchrun's rendezvous timeout", LOOPBACK_HINT.format(addr="127.0.0.1"))]
    assert asked == [("127.0.0.1", 29500, 120.0)]  # torchrun's default port when none is set


def test_node_1_at_a_loopback_address_with_node_0_on_this_host_is_a_warning():
    found, asked = loopback_findings("localhost", 29611, answers=True)
    assert found == [("warning", "master_addr localhost is a loopback address with nnodes 2: node 0 is on this "
                      "host (port 29611 answers); nodes on other hosts cannot reach it", "")]
    assert asked == [("localhost", 29611, 0.0)]


def test_node_1_at_a_loopback_address_rendered_for_another_machine_is_an_error():
    found, asked = loopback_findings("127.0.0.1", 29500, here=False, answers=True)
    assert found == [("error", "node_rank 1 with master_addr 127.0.0.1: a loopback address reaches node 0 only "
                      "if node 0 runs on the same host", LOOPBACK_HINT.format(addr="127.0.0.1"))]
    assert asked == []  # this machine's ports say nothing about the one it will run on


def test_listening_sees_a_listener_and_gives_up_on_none():
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert listening("127.0.0.1", port) is True
    assert listening("127.0.0.1", port) is False  # closed: refused at once, no wait


def test_a_launch_of_node_1_waits_for_node_0(monkeypatch):
    """The launch path (not validate, not a dry-run) is `launching`: node 1 then waits MASTER_WAIT
    seconds for node 0 at a loopback address."""
    seen = []
    monkeypatch.setattr(run, "Facts", lambda **kw: seen.append(kw) or Facts(**kw))
    job = job_with("zero2", [*NODES, ("launch.node_rank", 0)])
    run.check_or_exit(job, strict=False, here=True)
    run.check_or_exit(job, strict=False, here=False)
    assert [(kw["here"], kw["launching"]) for kw in seen] == [(True, True), (False, False)]
    assert nodes.MASTER_WAIT == 120.0


def test_findings_name_the_file_and_hint(tmp_path):
    path = tmp_path / "multi.yaml"
    path.write_text("extends: zero2\nlaunch:\n  nnodes: 2\n  node_rank: 5\n  master_addr: 10.0.0.1\n")
    job = apply_fixups(build_job(presets.load(str(path)), {}, swift_major=4))
    [found] = [f for f in run_checks(job) if f.code.startswith("nodes.")]
    assert (found.key, found.file) == ("launch.node_rank", str(path.resolve()))
    assert found.hint == "each node takes one rank from 0 to 1; 0 is the master_addr host"


def test_node_rank_option_sets_node_rank(cli):
    result = cli(["train", "-p", "zero2", "--set", "launch.nnodes=2", "--set", "launch.master_addr=10.0.0.1",
                  "--node-rank", "1", "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[:6] == [
        f"CUDA_VISIBLE_DEVICES={EIGHT} \\", "NPROC_PER_NODE=8 \\", "NNODES=2 \\", "NODE_RANK=1 \\",
        "MASTER_ADDR=10.0.0.1 \\", "swift sft \\"]


def test_node_rank_option_beats_the_preset_and_is_named_in_findings(cli):
    result = cli(["train", "-p", "zero2", "--set", "launch.nnodes=2", "--set", "launch.master_addr=10.0.0.1",
                  "--set", "launch.node_rank=0", "--node-rank", "2", "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert ("error[nodes.node_rank.range] launch.node_rank (--node-rank): node_rank 2 is not in [0, 2) "
            "for nnodes 2") in result.stderr.splitlines()


def test_loopback_on_node_0_is_a_warning_and_on_node_1_a_stop(cli):
    """ms-swift's own multi-node example (train_node1.sh) gives node 0 MASTER_ADDR=127.0.0.1: it
    launches (a warning, which --strict turns into a stop); the same address copied into node 1's
    command is refused."""
    args = ["train", "-p", "zero2", "--set", "launch.nnodes=2", "--set", "launch.master_addr=127.0.0.1",
            "--dry-run", "--strict"]
    assert cli(args[:-1] + ["--node-rank", "0"]).code == 0
    assert cli(args + ["--node-rank", "0"]).code == 2
    node1 = cli(args + ["--node-rank", "1"])
    assert (node1.code, node1.stdout) == (2, "")
    assert ("error[nodes.master_addr.loopback] launch.master_addr (--set): node_rank 1 with master_addr "
            "127.0.0.1: a loopback address reaches node 0 only if node 0 runs on the same host") in node1.stderr.splitlines()


def test_all_nodes_prints_every_nodes_command(cli):
    result = cli(["train", "-p", "single", "--set", "launch.nnodes=3", "--set", "launch.master_addr=10.0.0.1",
                  "--dry-run", "--all-nodes"])
    assert result.code == 0, result.stderr
    sections = result.stdout.split("\n\n")
    assert [s.splitlines()[0] for s in sections] == [
        "# node 0 of 3 (the master_addr host, 10.0.0.1)", "# node 1 of 3", "# node 2 of 3"]
    for rank, section in enumerate(sections):
        assert section.splitlines()[1:5] == ["CUDA_VISIBLE_DEVICES=0 \\", "NNODES=3 \\",
                                             f"NODE_RANK={rank} \\", "MASTER_ADDR=10.0.0.1 \\"]
    assert "nodes.node_rank.missing" not in result.stderr


def test_all_nodes_json_is_one_object_per_node(cli):
    result = cli(["train", "-p", "single", "--set", "launch.nnodes=2", "--set", "launch.master_addr=h0",
                  "--dry-run", "--all-nodes", "--format", "json"])
    assert result.code == 0, result.stderr
    nodes = json.loads(result.stdout)
    assert [(n["node_rank"], n["env"]) for n in nodes] == [
        (r, {"CUDA_VISIBLE_DEVICES": "0", "NNODES": "2", "NODE_RANK": str(r), "MASTER_ADDR": "h0"})
        for r in (0, 1)]
    assert nodes[0]["argv"] == nodes[1]["argv"]


@pytest.mark.parametrize("args, message", [
    (["--all-nodes"], "lorakit: error: --all-nodes only shapes what --dry-run prints; it launches nothing\n"
                      "  hint: add --dry-run\n"),
    (["--format", "sh"], "lorakit: error: --format sh only shapes what --dry-run prints; it launches nothing\n"
                         "  hint: add --dry-run\n"),
    (["--dry-run", "--format", "yaml"], "lorakit: error: --format 'yaml': unknown format\n"
                                        "  hint: one of: text, sh, sbatch, swift-yaml, json, trainjob, pytorchjob\n"),
    (["--dry-run", "--all-nodes", "--format", "sh"],
     "lorakit: error: --all-nodes prints text or json, not sh\n"
     "  hint: sbatch already covers every node; for sh or swift-yaml, render once per node with --node-rank R\n"),
])
def test_output_option_errors(cli, args, message):
    result = cli(["train", "-p", "single", *args])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.endswith(message)


# --- global_batch_size -------------------------------------------------------------------------

def args_of(job) -> list[str]:
    return render(job).argv


def test_global_batch_size_derives_grad_accum_and_is_never_rendered():
    job = job_with("zero2", [("args.global_batch_size", 64)])
    argv = args_of(job)
    assert argv[argv.index("--gradient_accumulation_steps") + 1] == "8"
    assert "--global_batch_size" not in argv
    [note] = [f for f in job.adjustments if f.code == "batch.global_batch_size.derived"]
    assert (note.level, note.key, note.file) == ("info", "args.gradient_accumulation_steps", "--set")
    assert note.message == ("gradient_accumulation_steps 8 = global_batch_size 64 / (per-device 1 x 8 "
                            "rank(s) per node x 1 node(s))")


def test_global_batch_size_counts_every_node_and_the_per_device_batch():
    job = job_with("zero2", [*NODES, ("launch.node_rank", 0), ("args.per_device_train_batch_size", 2),
                             ("args.global_batch_size", 64)])
    argv = args_of(job)
    assert argv[argv.index("--gradient_accumulation_steps") + 1] == "2"
    assert [f.message for f in run_checks(job) if f.code == "batch.global_batch_size.derived"] == [
        "gradient_accumulation_steps 2 = global_batch_size 64 / (per-device 2 x 8 rank(s) per node x 2 node(s))"]


def test_device_map_layout_counts_ranks_not_gpus():
    job = job_with("ddp_device_map", [("args.global_batch_size", 16)])  # 8 GPUs, 4 ranks
    argv = args_of(job)
    assert argv[argv.index("--gradient_accumulation_steps") + 1] == "4"


@pytest.mark.parametrize("value, message", [
    (0, "global_batch_size 0 is not a positive integer"),
    ("big", "global_batch_size 'big' is not a positive integer"),
])
def test_global_batch_size_errors(value, message):
    job = job_with("zero2", [("args.global_batch_size", value)])
    errors = [(f.code, f.message) for f in run_checks(job) if f.level == "error"]
    assert errors == [("batch.global_batch_size.invalid", message)]
    assert "--gradient_accumulation_steps" not in args_of(job)  # nothing derived from a bad value


@pytest.mark.parametrize("value, steps, reached, multiples", [(60, 8, 64, "56 or 64"), (4, 1, 8, "8 or 16"),
                                                              (20, 2, 16, "16 or 24")])
def test_an_unreachable_global_batch_takes_the_nearest_and_says_so(value, steps, reached, multiples):
    job = job_with("zero2", [("args.global_batch_size", value)])
    assert args_of(job)[args_of(job).index("--gradient_accumulation_steps") + 1] == str(steps)
    [note] = [f for f in job.adjustments if f.code == "batch.global_batch_size.inexact"]
    assert (note.level, note.message) == ("warning", f"global_batch_size {value} is not divisible by per-device 1 x "
                                          f"8 rank(s) per node x 1 node(s) = 8: using the nearest, "
                                          f"gradient_accumulation_steps {steps} (global batch {reached})")
    assert note.hint == (f"for exactly {value}, change the batch size or the layout; or set global_batch_size to a "
                         f"multiple of 8 (e.g. {multiples})")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_both_in_the_same_file_is_an_error(tmp_path):
    path = write(tmp_path, "both.yaml", "extends: zero2\nargs:\n  global_batch_size: 64\n"
                                        "  gradient_accumulation_steps: 4\n")
    job = apply_fixups(build_job(presets.load(path), {}, swift_major=4))
    errors = [(f.code, f.message, f.file) for f in run_checks(job) if f.level == "error"]
    assert errors == [("batch.global_batch_size.both",
                       f"global_batch_size and gradient_accumulation_steps are both set in {path}: "
                       "one derives the other", path)]


def test_both_in_one_set_layer_is_an_error():
    job = job_with("zero2", [("args.global_batch_size", 64), ("args.gradient_accumulation_steps", 4)])
    assert [f.code for f in run_checks(job) if f.level == "error"] == ["batch.global_batch_size.both"]


def test_a_child_global_batch_size_replaces_the_parents_steps(tmp_path):
    path = write(tmp_path, "child.yaml", "extends: zero2\nargs:\n  global_batch_size: 32\n")
    job = apply_fixups(build_job(presets.load(path), {}, swift_major=4))
    argv = args_of(job)
    assert argv[argv.index("--gradient_accumulation_steps") + 1] == "4"
    assert job.source_of("args.gradient_accumulation_steps") == path


def test_later_steps_override_an_earlier_global_batch_size(tmp_path):
    parent = write(tmp_path, "parent.yaml", "extends: zero2\nargs:\n  global_batch_size: 32\n")
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\nargs:\n  gradient_accumulation_steps: 3\n")
    job = apply_fixups(build_job(presets.load(child), {}, swift_major=4))
    assert "global_batch_size" not in job.args
    assert args_of(job)[args_of(job).index("--gradient_accumulation_steps") + 1] == "3"
    # and from the command line: `-- --gradient_accumulation_steps 5` beats the file's global batch
    resolved = layers.apply_overrides(presets.load(parent), [("args.gradient_accumulation_steps", 5, "-- extra flags")])
    job = apply_fixups(build_job(resolved, {}, swift_major=4))
    assert args_of(job)[args_of(job).index("--gradient_accumulation_steps") + 1] == "5"
    assert [f for f in run_checks(job) if f.level == "error"] == []


def test_set_global_batch_size_on_the_command_line(cli):
    result = cli(["train", "-p", "zero2", "--set", "global_batch_size=128", "--dry-run"])
    assert result.code == 0, result.stderr
    assert "    --gradient_accumulation_steps 16 \\" in result.stdout.splitlines()
    assert "global_batch_size" not in result.stdout
    assert ("info[batch.global_batch_size.derived] args.gradient_accumulation_steps (--set): "
            "gradient_accumulation_steps 16 = global_batch_size 128 / (per-device 1 x 8 rank(s) per node "
            "x 1 node(s))") in result.stderr.splitlines()


# The launch keys only the sbatch and Kubernetes exports read (presets.EXPORT_KEYS).
@pytest.mark.parametrize("overrides, expected", [
    ([("launch.cpus_per_task", 0)],
     [("error", "nodes.cpus_per_task.invalid", "cpus_per_task 0 is not a whole number of CPUs (1 or more)")]),
    ([("launch.cpus_per_task", True)],
     [("error", "nodes.cpus_per_task.invalid", "cpus_per_task True is not a whole number of CPUs (1 or more)")]),
    ([("launch.time", "2 hours")], [("error", "nodes.time.invalid", "time '2 hours' is not a SLURM time limit")]),
    # a preset's unquoted `time: 2:00:00` arrives as 7200 (YAML 1.1 sexagesimal): SLURM reads minutes
    ([("launch.time", 7200)],
     [("warning", "nodes.time.number", "time 7200 is a number, which SLURM reads as 7200 minutes; an unquoted "
                                       "H:MM:SS in YAML also arrives as a number of seconds")]),
    ([("launch.requeue", "yes please")],
     [("error", "nodes.requeue.invalid", "requeue 'yes please' is not true or false")]),
    ([("launch.image", "")], [("error", "nodes.image.invalid", "image '' is not a name")]),
    ([("launch.namespace", "ML_Team")],
     [("error", "nodes.namespace.invalid", "namespace 'ML_Team' is not a Kubernetes namespace name")]),
    ([("launch.volumes", ["/data"])], [("error", "nodes.volumes.invalid", "volumes ['/data'] is not a mapping")]),
    ([("launch.volumes", {"data": "pvc"})],
     [("error", "nodes.volumes.invalid", "volumes: 'data': 'pvc' is not an absolute mount path and a claim name")]),
])
def test_export_keys_are_checked(overrides, expected):
    assert node_findings(job_with("single", overrides)) == expected


@pytest.mark.parametrize("time", ["30", "1:30", "2:00:00", "1-12", "1-12:00", "2-00:00:00", "UNLIMITED"])
def test_every_slurm_time_form_is_accepted(time):
    """sbatch(1) --time: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
    days-hours:minutes and days-hours:minutes:seconds."""
    assert node_findings(job_with("single", [("launch.time", time)])) == []


def test_export_keys_reach_the_job_and_never_the_launch():
    job = job_with("single", [("launch.cpus_per_task", 8), ("launch.image", "r/i:1"),
                              ("launch.volumes", {"/data": "data-pvc"}), ("launch.requeue", True)])
    assert job.launch.export == {"cpus_per_task": 8, "image": "r/i:1", "volumes": {"/data": "data-pvc"},
                                 "requeue": True}
    assert render(job).env == {"CUDA_VISIBLE_DEVICES": "0"}
    assert node_findings(job) == []
