"""One internal spelling per ms-swift flag, whatever the preset or the version wrote.

Internally lorakit uses ms-swift 4.x names; `render` writes the target version's spelling
(swiftflags.canonical_for_version, which knows every rename between 3.12.6 and 4.6.0).
"""

from __future__ import annotations

from lorakit.swiftflags import RENAMED

# 3.x name -> 4.x name: e.g. ms-swift 4.0 renamed train_type to tuner_type with no alias, so
# each version's parser rejects the other spelling (`ValueError: remaining_argv`).
V3_TO_V4 = {old: versions[4] for old, versions in RENAMED.items() if 4 in versions}


def normalise_arg_key(key: str) -> str:
    """'--lora-rank' -> 'lora_rank'; 'train_type' -> 'tuner_type'."""
    name = key.lstrip("-").replace("-", "_")
    return V3_TO_V4.get(name, name)


def spelled_for(name: str, major: int, command: str = "sft") -> str:
    """The flag name the target ms-swift major version accepts for `command`."""
    from lorakit.swiftflags import canonical_for_version

    try:
        return canonical_for_version(name, major, command)
    except ValueError:  # no snapshot for that major/command: keep the internal name
        return name
