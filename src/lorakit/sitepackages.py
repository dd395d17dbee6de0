"""What this Python has installed, read from sys.path without importing the packages (importing
transformers takes seconds; importlib.metadata ~9 ms of start-up): a distribution's version from
its `NAME-VERSION.dist-info` folder, and which model types the installed transformers' Auto
classes know, from the text of its mapping files.

What counts is the environment the `swift` on PATH runs in (record.swift_python: its console
script's shebang), which need not be lorakit's own (lorakit in pipx, ms-swift in a venv):
lorakit's own sys.path when it is the same environment, else that one's site-packages folder,
else nothing is known and the checks asking say nothing.
"""

from __future__ import annotations

import os
import re
import sys

# NAME-VERSION.dist-info (pip), NAME-VERSION[-pyX.Y].egg-info (setup.py, distro packages), and a
# version-less NAME.egg-info (`setup.py develop`): installed, version unknown ("")
_DIST = re.compile(r"^(.+?)-([^-]+)\.dist-info$|^(.+?)-([^-]+?)(?:-py\d+(?:\.\d+)*)?\.egg-info$|^([^-]+)\.egg-info$",
                   re.IGNORECASE)


def normalise(name: str) -> str:
    """PEP 503's comparison form (qwen-vl-utils, qwen_vl_utils and Qwen.VL.Utils are one)."""
    return re.sub(r"[-_.]+", "_", name).lower()


ASK_TIMEOUT = 10.0  # seconds another environment's Python may take to say its import path


def swift_paths(env: "dict[str, str] | None" = None) -> list[str] | None:
    """The import path of the environment the `swift` a launch with `env` (the preset's env:
    section, over this shell's) runs; None when that cannot be told (no `swift`, a wrapper script,
    an interpreter that does not answer). lorakit's own environment is its sys.path, unless the
    launch sets PYTHONPATH; another's is asked (its PYTHONPATH, .pth files and user site count, as
    they will for `swift`), once per process."""
    from lorakit import record
    from lorakit.doctor import interpreter_flags
    from lorakit.launch import resolve_swift

    launch_env = {**os.environ, **(env or {})}
    swift = resolve_swift(launch_env)
    python = record.swift_python(swift)
    if python is None:
        return None
    flags = interpreter_flags(swift)  # `#!python -s`: its import path is not lorakit's, even in one venv
    if not flags and record._is_lorakits(python) and launch_env.get("PYTHONPATH") == os.environ.get("PYTHONPATH"):
        return sys.path
    return _asked(python, launch_env.get("PYTHONPATH"), flags)


_ASKED: dict = {}


def _asked(python: str, pythonpath: str | None = None, flags: tuple[str, ...] = ()) -> list[str] | None:
    import json
    import subprocess

    key = (python, pythonpath, flags)
    if key in _ASKED:
        return _ASKED[key]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    # the last line: a sitecustomize or module system may print a banner first
    code = "import json, sys; print(); print(json.dumps(sys.path))"
    paths = None
    try:
        done = subprocess.run([python, *flags, "-c", code], capture_output=True, text=True, timeout=ASK_TIMEOUT,
                              env=env)
        lines = done.stdout.strip().splitlines()
        paths = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    except subprocess.TimeoutExpired:
        from lorakit import report

        report.note(f"{python} did not say its import path in {ASK_TIMEOUT:g} s: the packages ms-swift registers "
                    "models with are not checked")
    except (OSError, ValueError):
        pass
    found = [p for p in paths if isinstance(p, str)] if isinstance(paths, list) else None
    _ASKED[key] = found
    return found


def entries(paths: list[str]):
    """(name, version) of every `NAME-VERSION.dist-info` folder on `paths`, in import order."""
    for entry in paths:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            match = _DIST.match(name)
            if match:
                dist, version, egg, egg_version, bare = match.groups()
                yield (dist, version) if dist else (egg, egg_version) if egg else (bare, "")


def _dists(paths: list[str]) -> dict[str, str]:
    """normalised name -> version, the first on the path winning, as importlib.metadata finds it."""
    found: dict[str, str] = {}
    for name, version in entries(paths):
        found.setdefault(normalise(name), version)
    return found


def dists(paths: list[str] | None = None) -> dict[str, str]:
    """Every distribution on `paths` (default: this Python's sys.path): normalised name -> version."""
    return _dists(sys.path if paths is None else paths)


def dist_version(name: str, paths: list[str] | None = None) -> str | None:
    """`name`'s version on `paths` (default: this Python's sys.path)."""
    return dists(paths).get(normalise(name))


# transformers 4.x lists `("modernbert", "ModernBertConfig")` in configuration_auto.py; 5.x moved
# the table to auto_mappings.py. A model type appears there as a quoted key.
_MAPPING_FILES = ("configuration_auto.py", "auto_mappings.py")


def transformers_knows(model_type: str, paths: list[str] | None = None) -> bool | None:
    """Whether the installed transformers' AutoConfig maps `model_type` (a config.json's
    model_type); None when no transformers is installed or its files cannot be read. Generous:
    a model folder of that name, or the name quoted anywhere in the mapping files, is known."""
    for entry in sys.path if paths is None else paths:
        root = os.path.join(entry or ".", "transformers")
        auto = os.path.join(root, "models", "auto")
        if not os.path.isdir(auto):
            continue
        if os.path.isdir(os.path.join(root, "models", model_type.replace("-", "_"))):
            return True
        texts = []
        for name in _MAPPING_FILES:
            try:
                with open(os.path.join(auto, name), encoding="utf-8", errors="replace") as handle:
                    texts.append(handle.read(4 << 20))
            except OSError:
                continue
        if not texts:
            return None
        quoted = (f'"{model_type}"', f"'{model_type}'")
        return any(q in text for text in texts for q in quoted)
    return None
