"""What only the machine that launches can tell: a rendezvous port already taken here, and
packages this machine lacks. A dry-run may be rendered for another machine: it says neither."""

from __future__ import annotations

import socket

import pytest

from conftest import run_cli


@pytest.fixture
def busy_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_a_busy_master_port_stops_a_launch_here(busy_port, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing may start
    result = run_cli(["train", "-p", "ddp", "--gpus", "0,1", "--set", f"launch.master_port={busy_port}"])
    assert result.code == 2
    [line] = [l for l in result.stderr.splitlines() if "nodes.master_port.busy" in l]
    assert line == (f"error[nodes.master_port.busy] launch.master_port (--set): MASTER_PORT {busy_port} is already "
                    "in use on this machine (another training run?): torchrun would fail to start its rendezvous")
    hint = result.stderr.splitlines()[result.stderr.splitlines().index(line) + 1]
    assert hint.startswith("  hint: use a free port: --set launch.master_port=")


def test_a_busy_port_from_the_environment_names_it(busy_port, monkeypatch):
    monkeypatch.setenv("MASTER_PORT", str(busy_port))
    result = run_cli(["validate", "-p", "ddp", "--gpus", "0,1"])
    assert result.code == 2
    assert (f"error[nodes.master_port.busy] launch.master_port (MASTER_PORT in your environment): MASTER_PORT "
            f"{busy_port} is already in use on this machine (another training run?): torchrun would fail to start "
            "its rendezvous") in result.stderr.splitlines()


def test_a_dry_run_does_not_judge_this_machines_ports_or_packages(busy_port):
    result = run_cli(["train", "-p", "zero2", "--gpus", "0,1", "--set", f"launch.master_port={busy_port}",
                      "--dry-run"])
    assert result.code == 0, result.stderr
    assert "master_port.busy" not in result.stderr and "env.deepspeed_missing" not in result.stderr


def test_another_nodes_port_is_not_ours(busy_port):
    result = run_cli(["validate", "-p", "ddp", "--gpus", "0,1", "--set", "launch.nnodes=2",
                      "--set", "launch.node_rank=1", "--set", "launch.master_addr=10.0.0.1",
                      "--set", f"launch.master_port={busy_port}"])
    assert "master_port.busy" not in result.stderr


def test_master_port_with_one_process_is_ignored_and_said():
    result = run_cli(["validate", "-p", "single", "--set", "launch.master_port=29511"])
    assert result.code == 0
    assert ("info[nodes.master_port.unused] launch.master_port (--set): MASTER_PORT 29511 is set, but one process "
            "starts no torchrun: ms-swift ignores it") in result.stderr.splitlines()


def test_missing_deepspeed_is_said_once_for_a_launch_here():
    result = run_cli(["validate", "-p", "zero2"])
    assert [l for l in result.stderr.splitlines() if "deepspeed_missing" in l] == [
        "warning[env.deepspeed_missing] args.deepspeed (built-in zero2): deepspeed is not installed here"]


def test_one_process_with_deepspeed_binds_the_port_too(busy_port, monkeypatch):
    """ms-swift #3988: `swift sft --deepspeed zero2` on one GPU, another run holding 29500:
    DeepSpeed's init_distributed fails with "address already in use" after the model loaded."""
    monkeypatch.setenv("MASTER_PORT", str(busy_port))
    result = run_cli(["validate", "-p", "single", "--set", "deepspeed=zero2"])
    assert result.code == 2
    assert (f"error[nodes.master_port.busy] launch.master_port (MASTER_PORT in your environment): MASTER_PORT "
            f"{busy_port} is already in use on this machine (another training run?): DeepSpeed initialises "
            "torch.distributed there even for one process, and would fail to bind it") in result.stderr.splitlines()
    assert "nodes.master_port.unused" not in result.stderr


def test_one_process_with_deepspeed_on_a_free_port_is_fine():
    from lorakit.checks.facts import Facts
    from lorakit.checks.nodes import check_port_here
    from lorakit.job import Job, Launch

    job = Job(command="sft", launch=Launch(), args={"deepspeed": "zero2"}, preset="p")
    assert check_port_here(job, Facts(port_free=lambda port: True)) == []
    [busy] = check_port_here(job, Facts(port_free=lambda port: port != 29500, free_port=lambda: 29600))
    assert busy.message.startswith("DeepSpeed's default port 29500 is already in use on this machine")
    assert busy.hint == "use a free port: --set launch.master_port=29600 (or MASTER_PORT=29600)"
