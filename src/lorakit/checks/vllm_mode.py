"""Where GRPO's and GKD's vLLM runs: inside each training rank (vllm_mode colocate) or in a
`swift rollout` server the trainer connects to (server), per ms-swift minor.

Read from ms-swift's RLHFArguments (4.6.0 swift/arguments/rlhf_args.py, 3.12.6
swift/llm/argument/rlhf_args.py) and the older wheels' same file:
- `_init_rollout` runs only for rlhf_support_vllm_types = ['grpo', 'gkd'] (gkd from 3.10; before
  that vLLM was GRPO's alone, `_init_external_vllm`: "rlhf_type != 'grpo'").
- vllm_mode first appears in 3.5, defaulting to 'colocate' up to 3.10; from 3.11 it defaults to
  None, and `_init_rollout` raises 'vllm_mode is required when use_vllm is true' and 'vllm_mode is
  not supported when use_vllm is false'. 3.1-3.4 placed vLLM by vllm_device instead.
- `_init_external_vllm` connects to a server whenever vllm_server_host or vllm_server_base_url is
  set, whatever vllm_mode says (3.5-3.6 even switch vllm_mode to server, with a warning); its
  VLLMClient polls GET /health for vllm_server_timeout (240 s), then raises ConnectionError.
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_bool, as_int, as_port, listed

SERVER_TIMEOUT = 240.0  # args_mixin.py vllm_server_timeout: float = 240.0 (3.12.6 and 4.6.0)


def before(job: Job, minor: str) -> bool:
    """Does the job target a minor of its major older than `minor`? A major alone (or the
    snapshot's own minor) is the newest, so never."""
    from lorakit.flaghistory import targeted

    major, tail = minor.split(".")
    return job.swift_major == int(major) and targeted(job.swift_major, job.swift_version) < (int(major), int(tail))


def generates_with_vllm(job: Job) -> bool:
    """An rlhf_type whose use_vllm/vllm_mode ms-swift reads: grpo, and gkd from 3.10."""
    kind = str(job.args.get("rlhf_type", "dpo"))
    return job.command == "rlhf" and (kind == "grpo" or (kind == "gkd" and not before(job, "3.10")))


def uses_vllm(job: Job) -> bool:
    return as_bool(job.args.get("use_vllm", False)) is True


def check_mode(job: Job, facts: Facts) -> list[Finding]:
    if not generates_with_vllm(job):
        return []
    out, mode = [], job.args.get("vllm_mode")
    # 3.5-3.10 default vllm_mode to 'colocate', 3.1-3.4 have none: only 3.11+ require it
    strict = not before(job, "3.11")
    if strict and uses_vllm(job) and mode in (None, ""):
        out.append(about(job, ERROR, "rlhf.vllm.mode", "args.use_vllm",
                         "use_vllm true without vllm_mode: ms-swift stops ('vllm_mode is required')",
                         "set vllm_mode: colocate (vLLM inside each training rank) or server (a swift rollout)"))
    if strict and mode not in (None, "") and not uses_vllm(job):
        out.append(about(job, ERROR, "rlhf.vllm.mode", "args.vllm_mode",
                         f"vllm_mode {mode} without use_vllm true: ms-swift stops ('vllm_mode is not supported "
                         "when use_vllm is false')", "set use_vllm: true, or drop vllm_mode"))
    if not uses_vllm(job):
        return out
    server = listed(job.args.get("vllm_server_base_url")) or listed(job.args.get("vllm_server_host"))
    if mode == "colocate" and server:
        out.append(_mode_conflict(job, server))
    if mode == "server" and not server:
        out.append(about(job, ERROR, "rlhf.vllm.server_host", "args.vllm_mode",
                         "vllm_mode server without vllm_server_host: the trainer has no rollout server to ask",
                         "set vllm_server_host and vllm_server_port (lorakit's paired launch starts swift rollout "
                         "there when rollout_gpus is set)"))
    if mode == "server":
        out += _server_ports(job) + _unreachable(job, facts)
    if facts.here and not facts.has_module("vllm"):
        out.append(about(job, WARNING, "rlhf.vllm.missing", "args.use_vllm",
                         "use_vllm true, but vllm is not installed in this Python: swift rlhf imports it at start "
                         "(colocate), and a server-mode swift rollout needs it too",
                         "pip install vllm (the version your ms-swift supports), or use_vllm: false"))
    return out


def _mode_conflict(job: Job, server: list[str]) -> Finding:
    base = bool(listed(job.args.get("vllm_server_base_url")))
    key = "vllm_server_base_url" if base else "vllm_server_host"
    where = server[0] if base else f"{server[0]} port {_ports(job)[0] if _ports(job) else 8000} (vllm_server_port)"
    switch = "; ms-swift 3.5-3.6 switch vllm_mode to server" if before(job, "3.7") else ""
    return about(job, ERROR, "rlhf.vllm.mode_conflict", f"args.{key}",
                 f"vllm_mode colocate with {key} set: ms-swift connects to a rollout server whenever "
                 f"vllm_server_host or vllm_server_base_url is set (RLHFArguments._init_external_vllm{switch}), "
                 f"here {where}, and waits for it ('Server is not up yet'), while colocate means a vLLM inside "
                 "each training rank",
                 "for a `swift rollout` server: vllm_mode: server, with vllm_server_port the rollout's --port; "
                 f"for colocate: drop {key}")


def _ports(job: Job) -> list:
    given = job.args.get("vllm_server_port", 8000)  # args_mixin.py: List[int] = [8000]
    return list(given) if isinstance(given, (list, tuple)) else [given]


def _server_ports(job: Job) -> list[Finding]:
    """vllm_server_port (a list in ms-swift: one per server) must be a port: the trainer connects
    there, and a paired swift rollout given 0 would take a random one (find_free_port)."""
    if job.args.get("vllm_server_base_url"):
        return []  # the base URL wins: vllm_server_host/port are ignored (args_mixin.py)
    hosts = [h for h in listed(job.args.get("vllm_server_host")) if _with_port(h)]
    if hosts:
        return [about(job, ERROR, "rlhf.vllm.server_host_port", "args.vllm_server_host",
                      f"vllm_server_host {hosts[0]!r} is more than a host: the trainer connects to "
                      f"http://{hosts[0]}:PORT (vllm_client.py), which reaches nothing",
                      "vllm_server_host: the host alone (e.g. 127.0.0.1) and vllm_server_port: its port; or "
                      "vllm_server_base_url for a full URL")]
    # not a number at all: the flag check (flags.value) says so
    bad = [p for p in _ports(job) if as_int(p) is not None and as_port(p) is None]
    if not bad:
        return []
    return [about(job, ERROR, "rlhf.vllm.server_port", "args.vllm_server_port",
                  f"vllm_server_port {bad[0]!r} is not a TCP port (1 to 65535): the trainer has no server to reach",
                  "set vllm_server_port: 8000 (or another free port)")]


def _this_machine(host: str, facts: Facts) -> bool:
    from lorakit.checks.nodes import is_loopback  # localhost., 127.1, ::ffff:127.0.0.1, 0.0.0.0 too

    host = host.strip().strip("[]").lower()
    # is_loopback counts 0.0.0.0 too: VLLMClient's default host, this machine; own_address: this
    # host's LAN address, which the rollout's own machine is often given as (#6446)
    return is_loopback(host) or host == facts.hostname().lower() or facts.own_address(host)


def _with_port(host: str) -> bool:
    """'127.0.0.1:8000' or 'http://h:8000' as vllm_server_host: VLLMClient writes
    f'http://{host}:{port}' (format_host_for_url brackets only a bare IPv6 address), a URL that
    reaches nothing."""
    import ipaddress

    text = host.strip().strip("[]")
    try:
        ipaddress.ip_address(text)
        return False  # '::1': an IPv6 address, no port
    except ValueError:
        return "://" in host or ":" in host


def _servers(job: Job) -> list[tuple[str, int, str]]:
    """(host, port, what the user wrote) of each server the trainer's VLLMClient polls."""
    from urllib.parse import urlsplit

    urls = listed(job.args.get("vllm_server_base_url"))
    if urls:  # VLLMClient: the base URLs win over host/port
        out = []
        for url in urls:
            try:
                parts = urlsplit(url if "//" in url else "http://" + url)
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                continue
            if parts.hostname:
                out.append((parts.hostname, port, url))
        return out
    hosts, ports = listed(job.args.get("vllm_server_host")), [as_port(p) for p in _ports(job)]
    if len(hosts) != len(ports) or None in ports:
        return []  # VLLMClient refuses unequal lists; a bad port is _server_ports'
    return [(h.strip("[]"), p, f"[{h.strip('[]')}]:{p}" if ":" in h else f"{h}:{p}")  # '[::1]' works in ms-swift
            for h, p in zip(hosts, ports) if not _with_port(h)]


def _unreachable(job: Job, facts: Facts) -> list[Finding]:
    """A rollout server named on this machine that nothing listens on: the trainer would poll it
    for vllm_server_timeout and then stop (ms-swift #6446: the rollout ran on another port). Not for
    lorakit's paired launch, which starts the rollout itself; a launch waits as long as the trainer
    would (facts.launching; validate answers for now)."""
    from lorakit.paired import is_paired

    if not facts.here or is_paired(job):
        return []
    wait = 0.0
    if facts.launching:
        try:
            wait = float(job.args.get("vllm_server_timeout", SERVER_TIMEOUT))
        except (TypeError, ValueError):
            wait = SERVER_TIMEOUT  # not a number: the flag check says so
    for host, port, shown in _servers(job):
        if _this_machine(host, facts) and not facts.listening(host, port, wait, "the rollout server"):
            waited = f" (waited {wait:.0f} s)" if wait else ""
            key = "args.vllm_server_base_url" if job.args.get("vllm_server_base_url") else "args.vllm_server_port"
            return [about(job, ERROR, "rlhf.vllm.server_unreachable", key,
                          f"nothing listens at {shown} on this machine{waited}: the trainer polls the rollout "
                          f"server there for vllm_server_timeout and then stops ('Servers not reachable')",
                          f"start `swift rollout --port {port}` first, or set vllm_server_port to the port the "
                          "rollout listens on (its --port)")]
    return []


def spare_gpus_are_vllms(job: Job) -> bool:
    """ms-swift 3.1-3.4 GRPO with vLLM (or LMDeploy) and no rollout server puts vLLM on the GPUs
    beyond NPROC_PER_NODE (3.1.1 grpo_trainer.py: vllm_device 'auto' takes get_device(local_world_size),
    "the next GPU idx"; 3.2-3.4: the last num_infer_workers GPUs). NPROC_PER_NODE=3 on 4 GPUs is that
    layout. Judged on the args alone: the carried-over sft view of an rlhf job asks it too."""
    if str(job.args.get("rlhf_type")) != "grpo" or not before(job, "3.5"):
        return False
    fast = uses_vllm(job) or as_bool(job.args.get("use_lmdeploy", False)) is True
    return fast and not listed(job.args.get("vllm_server_host"))


def fast_inference_off_mp(job: Job) -> bool:
    """ms-swift 3.1-3.5 GRPO with vLLM (3.1-3.4: or LMDeploy) sets USE_FAST_INFERENCE=1
    (rlhf_args.py _init_grpo), and is_mp() (swift/utils/env.py) is then False whatever the GPUs
    per rank: no device_map, each rank on its own GPU, the rest vLLM's (num_infer_workers). 3.6
    dropped both."""
    if str(job.args.get("rlhf_type")) != "grpo" or not before(job, "3.6"):
        return False
    lmdeploy = before(job, "3.5") and as_bool(job.args.get("use_lmdeploy", False)) is True
    return uses_vllm(job) or lmdeploy


def gpu_list(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    return [g.strip() for g in str(value).split(",") if g.strip()] if value not in (None, "") else []


def check_rollout_gpus(job: Job) -> list[Finding]:
    """Server mode's two GPU sets: rollout_gpus for `swift rollout`, launch.gpus for training."""
    rollout = gpu_list(job.args.get("rollout_gpus"))
    if not rollout:
        return []
    if job.args.get("vllm_mode") != "server":
        return [about(job, ERROR, "rlhf.rollout.mode", "args.rollout_gpus",
                      f"rollout_gpus is set, but vllm_mode is {job.args.get('vllm_mode')!r}: only server mode "
                      "starts a swift rollout", "set vllm_mode: server, or drop rollout_gpus")]
    # said here under the key the user wrote (the rollout job's own layout check names launch.gpus)
    bad = [g for g in rollout if not g.isdigit()]
    twice = sorted({g for g in rollout if rollout.count(g) > 1}, key=rollout.index)
    if bad or twice:
        what = (f"has entries that are not GPU ids: {', '.join(map(repr, bad))}" if bad
                else f"names GPU {', '.join(twice)} more than once")
        return [about(job, ERROR, "rlhf.rollout.gpus.invalid", "args.rollout_gpus",
                      f"rollout_gpus {','.join(rollout)!r} {what}",
                      'write the rollout\'s GPU indices once each, separated by commas, e.g. rollout_gpus: "0"')]
    train = job.launch.gpu_ids or []
    shared = sorted(set(rollout) & set(train), key=rollout.index)
    if shared:
        return [about(job, ERROR, "rlhf.rollout.gpus", "args.rollout_gpus",
                      f"rollout_gpus {','.join(rollout)} and the training GPUs {','.join(train)} share "
                      f"{','.join(shared)}: vLLM takes most of a GPU's memory, so training there runs out",
                      "give the rollout and the trainer disjoint GPUs, e.g. rollout_gpus: \"0\" and gpus: \"1,...\"")]
    nproc = job.launch.nproc_per_node
    if train and nproc is not None and nproc > len(train):
        return [about(job, ERROR, "rlhf.rollout.nproc", "launch.nproc_per_node",
                      f"NPROC_PER_NODE={nproc} but only {len(train)} training GPUs: NPROC_PER_NODE counts the "
                      "training GPUs only, not the rollout's", "nproc_per_node: auto")]
    return []


CHECKS = [check_mode]
