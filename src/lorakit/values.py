"""Reading YAML values the way ms-swift's argparse would, and naming where a value came from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lorakit.findings import Finding

if TYPE_CHECKING:  # job.py reads numbers with as_int: no import cycle at run time
    from lorakit.job import Job


def as_int(value: Any) -> int | None:
    """8 and '8' are ints to argparse; True, 8.5 and 'eight' are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_bool(value: Any) -> bool | None:
    """transformers' string_to_bool: yes/true/t/y/1 and no/false/f/n/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("yes", "true", "t", "y", "1"):
        return True
    if text in ("no", "false", "f", "n", "0"):
        return False
    return None


def finding(job: Job, level: str, code: str, key: str, message: str, hint: str = "") -> Finding:
    """A finding about `key` ('args.lora_rank', 'launch.gpus'), naming who set it."""
    source = job.source_of(key)
    if key == "launch.gpus" and job.launch.gpus_source:
        source = job.launch.gpus_source
    if key == "launch.nproc_per_node" and job.launch.nproc_source:
        source = job.launch.nproc_source
    return Finding(level, code, message, hint=hint, key=key, file=source)
