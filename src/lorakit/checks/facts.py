"""What checks may ask about this machine: cheap probes, never an import of the package itself.

Tests pass a Facts with fixed answers; the CLI passes the real one.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Callable, Mapping

from lorakit.modelinfo import find_local_model


def _has_module(name: str) -> bool:
    # find_spec on a top-level name reads the import path only; it does not run the package.
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def port_free(port: int) -> bool:
    """Can a rendezvous listen on this TCP port here? (torchrun's store binds it on every address)."""
    import socket  # only for multi-process layouts

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def listening(host: str, port: int, wait: float = 0.0, what: str = "a server") -> bool:
    """Does something accept TCP connections at host:port, now or within `wait` seconds? For
    node 0's torchrun store seen from node 1 at a loopback master_addr (only a node on the same
    host reaches it), and for a `swift rollout` a trainer will poll. Waiting, it says so: node 1
    may start before node 0's store is up, a rollout may still be loading its model."""
    import socket
    import sys
    import time

    deadline, told = time.monotonic() + wait, False
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return False
        if not told:
            print(f"lorakit: waiting up to {wait:.0f} s for {what} at {host}:{port}", file=sys.stderr, flush=True)
            told = True
        time.sleep(1.0)


def hostname() -> str:
    import socket

    return socket.gethostname()


def own_address(host: str) -> bool:
    """Is `host` an IP address of this machine (any interface)? Binding to an address succeeds
    only where the kernel owns it: offline and instant, no DNS. A name is never resolved here (a
    lookup may wait seconds on an offline machine): only literal addresses answer True."""
    import ipaddress
    import socket

    try:
        ip = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((str(ip), 0))
    except OSError:
        return False
    return True


def gpu_count(environ: Mapping[str, str] | None = None) -> int | None:
    """The NVIDIA GPUs of this machine, as CUDA would see them with no device list: the driver's
    /proc entries, else `nvidia-smi -L` (never torch: it takes seconds and a CUDA context). None
    when neither can tell (no driver: a CPU machine, or another vendor's)."""
    root = "/proc/driver/nvidia/gpus"
    if os.path.isdir(root):
        try:
            return len(os.listdir(root))
        except OSError:
            return None
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi", path=(environ or os.environ).get("PATH"))
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return sum(1 for line in done.stdout.splitlines() if line.startswith("GPU "))


def packages(env: "Mapping[str, str] | None" = None) -> "Mapping[str, str] | None":
    """The distributions of the environment the `swift` of a launch with `env` (the preset's
    env: section) runs in, by normalised name (sitepackages: dist-info names, no import); None
    when that environment cannot be told."""
    from lorakit import sitepackages  # only for a launch here with a model that names requirements

    paths = sitepackages.swift_paths(dict(env or {}))
    return None if paths is None else sitepackages.dists(paths)


def transformers_knows(model_type: str, env: "Mapping[str, str] | None" = None) -> bool | None:
    from lorakit import sitepackages

    paths = sitepackages.swift_paths(dict(env or {}))
    return None if paths is None else sitepackages.transformers_knows(model_type, paths)


@dataclass
class Facts:
    has_module: Callable[[str], bool] = _has_module
    is_file: Callable[[str], bool] = os.path.isfile
    find_model: Callable = find_local_model  # a local dir or a hub cache hit, else None
    # the environment the launch inherits (its size counts against ARG_MAX)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    # whether the job is about to run on this machine (a launch, or validate), not a dry-run
    # rendered for another one: only then do this machine's packages and ports matter
    here: bool = True
    port_free: Callable[[int], bool] = port_free
    listening: Callable[..., bool] = listening
    # a launch about to start here (not validate, not a dry-run): such checks may wait for what the
    # launch itself would wait for (node 0's rendezvous, a rollout server)
    launching: bool = False
    free_port: Callable[[], int] = free_port
    gpu_count: Callable[[], int | None] = gpu_count
    hostname: Callable[[], str] = hostname
    own_address: Callable[[str], bool] = own_address
    packages: Callable[..., "Mapping[str, str] | None"] = packages
    transformers_knows: Callable[..., "bool | None"] = transformers_knows
