"""One internal spelling per ms-swift flag, whatever the preset or the version wrote.

Internally lorakit uses ms-swift 4.x names; `render` writes the target version's spelling.
"""

from __future__ import annotations

# ms-swift 4.0 renamed these with no alias: each version's parser rejects the other spelling
# (4.x: `ValueError: remaining_argv: ['--train_type', 'lora']`).  v3 name -> v4 name.
V3_TO_V4 = {
    "train_type": "tuner_type",
}
V4_TO_V3 = {v4: v3 for v3, v4 in V3_TO_V4.items()}


def normalise_arg_key(key: str) -> str:
    """'--lora-rank' -> 'lora_rank'; 'train_type' -> 'tuner_type'."""
    name = key.lstrip("-").replace("-", "_")
    return V3_TO_V4.get(name, name)


def spelled_for(name: str, major: int) -> str:
    """The flag name the target ms-swift major version accepts."""
    if major < 4:
        return V4_TO_V3.get(name, name)
    return name
