"""What lorakit finds on this machine, each with a verdict and a fix.

Versions come from package metadata, asked of the Python that `swift` itself runs under (its
shebang): `swift --help` and `swift --version` crash in ms-swift 4, and importing torch to ask
would take seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from lorakit.launch import resolve_swift
from lorakit.preflight import existing_ancestor
from lorakit.values import as_int

PACKAGES = ("ms-swift", "torch", "transformers", "peft", "deepspeed", "flash-attn")
REQUIRED = ("ms-swift", "torch", "transformers", "peft")  # without these swift cannot train
_VERSIONS = (
    "import json, importlib.metadata as m\n"
    "def v(n):\n"
    "    try: return m.version(n)\n"
    "    except m.PackageNotFoundError: return None\n"
    "print(json.dumps({n: v(n) for n in %r}))"
)
# pip (distlib) writes `#!/bin/sh` plus this second line when the python's path is too long for
# a shebang or holds a space: '''exec' "/path/to/python" "$0" "$@"
_TRAMPOLINE = re.compile(r"""^'''exec' (?:"([^"]+)"|(\S+)) "\$0" "\$@"$""")
_UUID = re.compile(r"\(UUID: (GPU-[0-9a-fA-F-]+)\)")


@dataclass(frozen=True)
class Row:
    ok: bool | None  # True ok, False blocks launching, None: fine but worth knowing
    what: str
    found: str
    fix: str = ""


def interpreter_of(script: str) -> str | None:
    """The python in `script`'s shebang line (pip writes an absolute one, or a /bin/sh trampoline)."""
    try:
        with open(script, "rb") as handle:
            first, second = (handle.readline(4096).decode("utf-8", "replace").strip() for _ in range(2))
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    parts = first[2:].split()
    trampoline = _TRAMPOLINE.match(second)
    if parts and os.path.basename(parts[0]) == "sh" and trampoline:
        return trampoline.group(1) or trampoline.group(2)
    if parts and os.path.basename(parts[0]) == "env" and len(parts) > 1:
        return shutil.which(parts[1])
    return parts[0] if parts else None


def interpreter_flags(script: str | None) -> tuple[str, ...]:
    """The flags of `script`'s `#!/path/python -sE` line that change its import path (-E: no
    PYTHONPATH, -s: no user site, -I: both, -S: no site, -P: no script dir); () for any other form."""
    if script is None:
        return ()
    try:
        with open(script, "rb") as handle:
            first = handle.readline(4096).decode("utf-8", "replace").strip()
    except OSError:
        return ()
    parts = first[2:].split() if first.startswith("#!") else []
    if not parts or os.path.basename(parts[0]) in ("sh", "env"):
        return ()
    letters = ""
    for part in parts[1:]:
        if not re.fullmatch(r"-[A-Za-z]+", part):
            continue
        for letter in part[1:]:
            if letter in "WXcm":  # the rest of the token is this option's argument (-Walways)
                break
            letters += letter
    return tuple(f"-{letter}" for letter in dict.fromkeys(letters) if letter in "EsISP")


def swift_python(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(`swift` on env's PATH, the python it runs under), or (None, None) without swift."""
    swift = resolve_swift(env)
    if swift is None:
        return None, None
    return swift, interpreter_of(swift) or sys.executable


def versions(python: str) -> dict | None:
    try:
        out = subprocess.run([python, "-c", _VERSIONS % (PACKAGES,)], capture_output=True,
                             text=True, timeout=60)
        return json.loads(out.stdout) if out.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def gpu_rows(env: Mapping[str, str]) -> list[Row]:
    smi = shutil.which("nvidia-smi", path=env.get("PATH"))
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if smi is None:
        return [Row(None, "GPUs", "no nvidia-smi: CPU only here",
                    "fine for dry-runs, validation and CPU smoke runs; train on a GPU machine")]
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        listing = ""
    gpus = [line for line in listing.splitlines() if line.startswith("GPU ")]
    found = f"{len(gpus)} GPU(s)" + (f", CUDA_VISIBLE_DEVICES={visible}" if visible is not None else "")
    rows = [Row(bool(gpus), "GPUs", found, "" if gpus else "nvidia-smi lists no GPU: check the driver")]
    missing = unknown_devices(visible, gpus) if visible and gpus else []
    if missing:
        # Launching fails: torchrun starts a rank per listed id, and CUDA ignores every id from
        # the first unknown one on, so some rank finds no device.
        rows.append(Row(False, "CUDA_VISIBLE_DEVICES", f"names GPU {','.join(missing)} of {len(gpus)}",
                        f"use ids 0-{len(gpus) - 1} (or UUIDs) as `nvidia-smi -L` lists them, or unset it"))
    return rows


def unknown_devices(visible: str, gpus: list[str]) -> list[str]:
    """The entries of CUDA_VISIBLE_DEVICES that name no GPU in `gpus` (`nvidia-smi -L` lines): an
    index past the count, or a GPU-<uuid> (CUDA takes a unique prefix) that no UUID starts with."""
    uuids = [m.group(1) for line in gpus for m in [_UUID.search(line)] if m]
    missing = []
    for item in (part.strip() for part in visible.split(",")):
        index = as_int(item) if item.isascii() else None  # CUDA reads ASCII indices only
        if index is not None and index >= len(gpus):
            missing.append(item)
        elif item.startswith("GPU-") and uuids and not any(u.startswith(item) for u in uuids):
            missing.append(item)
    return missing


def diagnose(env: Mapping[str, str], outputs: Path) -> list[Row]:
    rows = [Row(True, "python (lorakit)", f"{sys.version.split()[0]} at {sys.executable}")]
    swift, python = swift_python(env)
    if swift is None or python is None:
        rows.append(Row(False, "swift", "not found on PATH", "pip install 'lorakit[swift]'"))
        return rows + gpu_rows(env) + [disk_row(outputs)]
    found = versions(python)
    rows.append(Row(found is not None, "swift", f"{swift} (python: {python})",
                    "" if found else "its interpreter does not run: reinstall ms-swift"))
    for name in PACKAGES:
        version = (found or {}).get(name)
        if version:
            rows.append(Row(True, name, version))
        elif name in REQUIRED:
            rows.append(Row(False, name, "missing", f"{python} -m pip install {name}"))
        else:
            need = "--deepspeed" if name == "deepspeed" else "--attn_impl flash_attn"
            rows.append(Row(None, name, "not installed", f"only needed for {need}"))
    return rows + gpu_rows(env) + [disk_row(outputs)]


def disk_row(path: Path) -> Row:
    probe = existing_ancestor(Path(os.path.abspath(path)))  # where the outputs will be written
    free = shutil.disk_usage(probe).free / 2**30
    return Row(free >= 1 or None, "free disk", f"{free:.1f} GiB at {probe}",
               "" if free >= 20 else "checkpoints and merged models of 8B models need tens of GiB")


def launchable(rows: list[Row]) -> bool:
    """No ✗ row. doctor runs on the machine that launches, so a ✗ (a GPU id this machine does
    not have, a driver that lists no GPU) fails a launch here: exit 1, as the ✗ says."""
    return all(row.ok is not False for row in rows)
