"""What this Python has installed, read from sys.path without importing the packages (importing
transformers takes seconds; importlib.metadata ~9 ms of start-up): a distribution's version from
its `NAME-VERSION.dist-info` folder, and which model types the installed transformers' Auto
classes know, from the text of its mapping files.

ms-swift runs in the same environment as lorakit (swiftenv.installed_version reads it the same
way), so this is what `swift sft` will import.
"""

from __future__ import annotations

import os
import re
import sys

_DIST = re.compile(r"^(.+?)-([^-]+)\.dist-info$", re.IGNORECASE)


def normalise(name: str) -> str:
    """PEP 503's comparison form (qwen-vl-utils, qwen_vl_utils and Qwen.VL.Utils are one)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _dists() -> dict[str, str]:
    """normalised name -> version, the first on sys.path winning, as importlib.metadata finds it."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            match = _DIST.match(name)
            if match:
                found.setdefault(normalise(match.group(1)), match.group(2))
    return found


def dist_version(name: str) -> str | None:
    return _dists().get(normalise(name))


# transformers 4.x lists `("modernbert", "ModernBertConfig")` in configuration_auto.py; 5.x moved
# the table to auto_mappings.py. A model type appears there as a quoted key.
_MAPPING_FILES = ("configuration_auto.py", "auto_mappings.py")


def transformers_knows(model_type: str) -> bool | None:
    """Whether the installed transformers' AutoConfig maps `model_type` (a config.json's
    model_type); None when no transformers is installed or its files cannot be read. Generous:
    a model folder of that name, or the name quoted anywhere in the mapping files, is known."""
    for entry in sys.path:
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
