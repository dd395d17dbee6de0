"""Multi-node rules: nnodes, node_rank, master_addr/port.

ms-swift turns NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT into torchrun arguments
(swift/cli/main.py: get_torchrun_args) without looking at them; a mistake here shows up as a
rendezvous that hangs until torchrun's timeout, on every node at once.
"""

from __future__ import annotations

import ipaddress
import re

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, INFO, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_int, as_port

PORTS = (1024, 65535)  # below 1024 needs root; torchrun's own default is 29500


def usable_port(value) -> int | None:
    """A TCP port (values.as_port) that needs no root to listen on, else None."""
    port = as_port(value)
    return port if port is not None and port >= PORTS[0] else None
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

# The sbatch export supplies these from the allocation (SLURM_NODEID, the first host), and
# --all-nodes prints every rank; those modes waive the findings with these codes.
NODE_RANK_MISSING = "nodes.node_rank.missing"
MASTER_ADDR_MISSING = "nodes.master_addr.missing"


def check_nnodes(job: Job, facts: Facts) -> list[Finding]:
    if job.launch.nodes is not None:
        return []
    return [about(job, ERROR, "nodes.nnodes.invalid", "launch.nnodes",
                    f"nnodes {job.launch.nnodes!r} is not a number of nodes (1 or more)",
                    "give the number of machines as an integer, e.g. nnodes: 2")]


def check_node_rank(job: Job, facts: Facts) -> list[Finding]:
    n, rank = job.launch.nodes, job.launch.node_rank
    if n is None:
        return []  # check_nnodes says why
    if rank is None:
        if n < 2:
            return []
        # torchrun defaults --node_rank to 0: two nodes both rank 0 wait for a rank 1 forever.
        return [about(job, ERROR, NODE_RANK_MISSING, "launch.node_rank",
                        f"nnodes {n} but no node_rank: every node must say which one it is",
                        "run with --node-rank 0 on the master_addr host and 1.."
                        f"{n - 1} on the others (or --set launch.node_rank=R)")]
    value = as_int(rank)
    if value is not None and 0 <= value < n:
        return []
    return [about(job, ERROR, "nodes.node_rank.range", "launch.node_rank",
                    f"node_rank {rank!r} is not in [0, {n}) for nnodes {n}",
                    f"each node takes one rank from 0 to {n - 1}; 0 is the master_addr host")]


def is_loopback(addr: str) -> bool:
    text = addr.strip().strip("[]").lower()
    if text.rstrip(".") in LOOPBACK_NAMES:  # 'localhost.' is the same name, fully qualified
        return True
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        import socket

        try:  # '127.1', '0x7f.1': getaddrinfo reads the short forms inet_aton does
            ip = ipaddress.ip_address(socket.inet_aton(text))
        except (OSError, ValueError):
            return False
    if getattr(ip, "ipv4_mapped", None) is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 (Python 3.11's is_loopback says no)
    # 0.0.0.0 / :: is "this host" as a connect address: no other host can reach it either.
    return ip.is_loopback or ip.is_unspecified


def check_master_addr(job: Job, facts: Facts) -> list[Finding]:
    n, addr = job.launch.nodes, job.launch.master_addr
    if isinstance(addr, str) and "\0" in addr:
        return [about(job, ERROR, "nodes.master_addr.invalid", "launch.master_addr",
                      f"master_addr {addr!r} contains a NUL byte, which no environment can carry",
                      "write node 0's host name or address")]
    if addr is not None and not isinstance(addr, str):
        return [about(job, ERROR, "nodes.master_addr.invalid", "launch.master_addr",
                        f"master_addr {addr!r} is not a host name or address",
                        "write it as text, e.g. master_addr: \"10.0.0.1\"")]
    if n is None or n < 2:
        return []
    if addr is None or not str(addr).strip():
        return [about(job, ERROR, MASTER_ADDR_MISSING, "launch.master_addr",
                        f"nnodes {n} but no master_addr: the other nodes cannot find node 0",
                        "set launch.master_addr to node 0's address as the other nodes reach it "
                        "(or use --dry-run --format sbatch, which takes it from the allocation)")]
    if is_loopback(str(addr)):
        return _loopback(job, facts, n, str(addr))
    return []


def _loopback(job: Job, facts: Facts, n: int, addr: str) -> list[Finding]:
    """ms-swift's own multi-node example gives node 0 MASTER_ADDR=127.0.0.1 and node 1 the real
    address (examples/train/multi-node/swift/train_node1.sh, train_node2.sh): node 0's store listens
    on every address, so loopback is fine there. Node 1+ at a loopback address connects to itself;
    unless node 0 runs on the same host, torchrun retries until its rendezvous timeout, then fails."""
    if str(job.source_of("launch.master_addr") or "").startswith("--on "):
        return []  # the scheduler's own address for node 0 (a one-host test cluster)
    rank = as_int(job.launch.node_rank) if job.launch.node_rank is not None else None
    if rank is None or rank <= 0:
        # a warning, not an error: ms-swift's own example does it, yet users report node 0 on
        # 127.0.0.1 hanging until the NCCL timeout, fixed by its real address (#2485, #6982)
        return [about(job, WARNING, "nodes.master_addr.loopback", "launch.master_addr",
                      f"master_addr {addr} is a loopback address with nnodes {n}: node 0's rendezvous listens on "
                      "every address, but runs set up so have hung until the NCCL timeout (ms-swift #2485, #6982)",
                      "give every node, node 0 included, node 0's address as the others reach it "
                      "(e.g. MASTER_ADDR=10.0.0.1)")]
    port = usable_port(job.launch.master_port) if job.launch.master_port is not None else TORCHRUN_PORT
    if port is None:
        return []  # check_master_port says why
    hint = (f"set master_addr to node 0's address as node {rank} reaches it (e.g. MASTER_ADDR=10.0.0.1); "
            f"{addr} is right only on node 0, or when every node runs on this host (start node 0 first)")
    if not facts.here:
        return [about(job, ERROR, "nodes.master_addr.loopback", "launch.master_addr",
                      f"node_rank {rank} with master_addr {addr}: a loopback address reaches node 0 only "
                      "if node 0 runs on the same host", hint)]
    wait = MASTER_WAIT if facts.launching else 0.0
    if facts.listening(addr, port, wait, "node 0's rendezvous (a loopback master_addr: node 0 must run on this host)"):
        return [about(job, WARNING, "nodes.master_addr.loopback", "launch.master_addr",
                      f"master_addr {addr} is a loopback address with nnodes {n}: node 0 is on this host "
                      f"(port {port} answers); nodes on other hosts cannot reach it")]
    waited = f" (waited {wait:.0f} s)" if wait else ""
    return [about(job, ERROR, "nodes.master_addr.loopback", "launch.master_addr",
                  f"node_rank {rank} with master_addr {addr}: nothing answers at "
                  f"{f'[{addr}]' if ':' in addr.strip('[]') and not addr.startswith('[') else addr}:{port} on this "
                  f"host{waited}, so node 0 is elsewhere and this node would retry until torchrun's "
                  "rendezvous timeout", hint)]


def check_master_port(job: Job, facts: Facts) -> list[Finding]:
    port = job.launch.master_port
    if port is None:
        return []
    if usable_port(port) is not None:
        return []
    return [about(job, ERROR, "nodes.master_port.range", "launch.master_port",
                    f"master_port {port!r} is not a port in {PORTS[0]}-{PORTS[1]}",
                    "pick a free port every node can reach, e.g. 29500 (torchrun's default)")]


# A launch of node 1+ at a loopback master_addr waits this long for node 0 on this host (two
# lorakit processes started together: node 0's torchrun listens seconds after its checks).
MASTER_WAIT = 120.0
TORCHRUN_PORT = 29500  # torchrun's --master_port default, which ms-swift leaves to it


def check_port_here(job: Job, facts: Facts) -> list[Finding]:
    """Two jobs on one box both on 29500 is the common case: the second torchrun fails binding its
    store ("address already in use") after the first has loaded. Only node 0 binds it, and only a
    launch on this machine can be judged. One process with DeepSpeed binds it too: DeepSpeed
    initialises torch.distributed itself, on MASTER_PORT or 29500 (deepspeed/comm/comm.py
    init_distributed, TORCH_DISTRIBUTED_DEFAULT_PORT; ms-swift #3988: "address already in use")."""
    uses_torchrun = job.launch.nproc_per_node is not None or job.launch.nnodes is not None
    if not facts.here or job.command != "sft":
        return []
    port = usable_port(job.launch.master_port) if job.launch.master_port is not None else TORCHRUN_PORT
    if not uses_torchrun and job.args.get("deepspeed") not in (None, ""):
        if port is None or facts.port_free(port):
            return []
        free = facts.free_port()
        where = "MASTER_PORT" if job.launch.master_port is not None else "DeepSpeed's default port"
        return [about(job, ERROR, "nodes.master_port.busy", "launch.master_port",
                      f"{where} {port} is already in use on this machine (another training run?): DeepSpeed "
                      "initialises torch.distributed there even for one process, and would fail to bind it",
                      f"use a free port: --set launch.master_port={free} (or MASTER_PORT={free})")]
    if not uses_torchrun:
        if job.launch.master_port is None:
            return []
        return [about(job, INFO, "nodes.master_port.unused", "launch.master_port",
                        f"MASTER_PORT {job.launch.master_port} is set, but one process starts no torchrun: "
                        "ms-swift ignores it")]
    rank = as_int(job.launch.node_rank) if job.launch.node_rank is not None else 0
    if port is None or rank != 0 or facts.port_free(port):
        return []
    free = facts.free_port()
    where = "MASTER_PORT" if job.launch.master_port is not None else "torchrun's default port"
    return [about(job, ERROR, "nodes.master_port.busy", "launch.master_port",
                    f"{where} {port} is already in use on this machine (another training run?): torchrun "
                    "would fail to start its rendezvous",
                    f"use a free port: --set launch.master_port={free} (or MASTER_PORT={free})")]


# SLURM's --time forms (sbatch(1)): minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
SLURM_TIME = r"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}|UNLIMITED|INFINITE)$"  # compiled by re on first use (only a SLURM time limit needs it)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a Kubernetes namespace


def _time_findings(job: Job, value) -> list[Finding]:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not re.match(SLURM_TIME, str(value).strip()):
        return [about(job, ERROR, "nodes.time.invalid", "launch.time",
                      f"time {value!r} is not a SLURM time limit",
                      "write it as text: '30' (minutes), '2:00:00', '1-12:00:00' (days-hours:minutes:seconds)")]
    if isinstance(value, int):
        # YAML 1.1 reads an unquoted 2:00:00 as the number 7200 (sexagesimal); SLURM reads a bare
        # number as minutes: 7200 minutes is five days
        return [about(job, WARNING, "nodes.time.number", "launch.time",
                      f"time {value} is a number, which SLURM reads as {value} minutes; an unquoted "
                      "H:MM:SS in YAML also arrives as a number of seconds",
                      f"quote it: time: '{value}' for minutes, or time: '2:00:00'")]
    return []


def check_export_keys(job: Job, facts: Facts) -> list[Finding]:
    """The launch keys only sbatch and the Kubernetes manifests read (presets.EXPORT_KEYS)."""
    export, out = job.launch.export, []
    if "cpus_per_task" in export:
        cpus = export["cpus_per_task"]
        if isinstance(cpus, bool) or as_int(cpus) is None or as_int(cpus) < 1:
            out.append(about(job, ERROR, "nodes.cpus_per_task.invalid", "launch.cpus_per_task",
                             f"cpus_per_task {cpus!r} is not a whole number of CPUs (1 or more)",
                             "e.g. cpus_per_task: 16 (the CPUs each node's launch may use)"))
    if "time" in export:
        out += _time_findings(job, export["time"])
    if "requeue" in export and not isinstance(export["requeue"], bool):
        out.append(about(job, ERROR, "nodes.requeue.invalid", "launch.requeue",
                         f"requeue {export['requeue']!r} is not true or false", "requeue: true"))
    for key in ("image", "service_account"):
        if key in export and (not isinstance(export[key], str) or not export[key].strip()):
            out.append(about(job, ERROR, f"nodes.{key}.invalid", f"launch.{key}",
                             f"{key} {export[key]!r} is not a name", f"write it as text, e.g. {key}: NAME"))
    if "namespace" in export and not DNS_LABEL.match(str(export["namespace"])):
        out.append(about(job, ERROR, "nodes.namespace.invalid", "launch.namespace",
                         f"namespace {export['namespace']!r} is not a Kubernetes namespace name",
                         "lower-case letters, digits and '-', at most 63, e.g. namespace: ml-team"))
    if "volumes" in export:
        out += _volume_findings(job, export["volumes"])
    return out


def _volume_findings(job: Job, volumes) -> list[Finding]:
    hint = "a mapping of mount path to PersistentVolumeClaim name, e.g. volumes: {/data: my-data-pvc}"
    if not isinstance(volumes, dict):
        return [about(job, ERROR, "nodes.volumes.invalid", "launch.volumes",
                      f"volumes {volumes!r} is not a mapping", hint)]
    return [about(job, ERROR, "nodes.volumes.invalid", "launch.volumes",
                  f"volumes: {path!r}: {claim!r} is not an absolute mount path and a claim name", hint)
            for path, claim in volumes.items()
            if not (isinstance(path, str) and path.startswith("/") and isinstance(claim, str)
                    and DNS_LABEL.match(claim.replace(".", "-")))]


CHECKS = [check_nnodes, check_node_rank, check_master_addr, check_master_port, check_port_here, check_export_keys]
