"""Sequence parallelism against the model's attention heads (ms-swift #5624).

Ulysses splits the attention heads across the sequence-parallel ranks, so the head count has to
split. ms-swift reads it as Ulysses.prepare does: num_key_value_heads, else num_attention_heads,
from the LLM's config (HfConfigFactory.get_config_attr: the top level or language_config /
llm_config / text_config, first found).

- before 3.9, Ulysses alone: the all-to-all asserts 'Number of heads (N) must be divisible by the
  sequence parallel size (S)!' (3.8.3 swift/trainers/sequence_parallel/ulysses.py:41), once the
  model has loaded;
- from 3.9 (and 4.x), _init_device_mesh takes gcd(heads, size) ranks for Ulysses and the rest for
  ring attention, which needs padding_free: 'The world_size N needs ulysses/ring-attention, which
  needs --padding_free true' (4.6.0 swift/sequence_parallel/sequence_parallel.py:378-380).
"""

from __future__ import annotations

import math

from lorakit import modelconfig
from lorakit.checks.facts import Facts
from lorakit.errors import LorakitError
from lorakit.findings import ERROR, Finding, about
from lorakit.job import Job
from lorakit.values import as_bool, as_int

LLM_KEYS = ("language_config", "llm_config", "text_config")  # swift/utils/hf_config.py llm_keys


def config_attr(config: dict, name: str, parent: str | None = None):
    """HfConfigFactory._get_config_attrs' first hit: a key at the top or under an LLM sub-config,
    searched depth first in the file's key order (talker_config never)."""
    if name in config and parent in (None, *LLM_KEYS):
        return config[name]
    for key, value in config.items():
        if key.endswith("_config") and key != "talker_config" and isinstance(value, dict):
            found = config_attr(value, name, key)
            if found is not None:
                return found
    return None


def heads(config: dict) -> int | None:
    for name in ("num_key_value_heads", "num_attention_heads"):
        value = config_attr(config, name)
        if value is not None:
            count = as_int(value)
            return count if count is not None and count > 0 else None
    return None


def divisors(count: int, shown: int = 8) -> list[int]:
    """The first `shown` divisors above 1, found up to the square root (a config.json may say a
    billion heads)."""
    small, large, n = [], [], 2
    while n * n <= count and len(small) < shown:
        if count % n == 0:
            small.append(n)
            if n * n != count:
                large.append(count // n)
        n += 1
    return sorted(set(small + large + ([count] if count > 1 else [])))[:shown]


def check_heads(job: Job, facts: Facts) -> list[Finding]:
    from lorakit.flaghistory import targeted

    size = as_int(job.args.get("sequence_parallel_size"))
    model = job.args.get("model")
    if size is None or size < 2 or job.command not in ("sft", "rlhf") or model in (None, ""):
        return []
    local = facts.find_model(str(model))
    if local is None:
        return []
    try:
        config = modelconfig.read_config(local)
    except LorakitError:
        return []  # checks/model.py reports a malformed config.json
    count = heads(config) if isinstance(config, dict) else None
    if count is None or count % size == 0:
        return []
    which = "key/value" if config_attr(config, "num_key_value_heads") is not None else "attention"
    key = "args.sequence_parallel_size"
    fits = ", ".join(map(str, divisors(count))) or "none"
    if targeted(job.swift_major, job.swift_version) < (3, 9):
        return [about(job, ERROR, "layout.sequence_parallel.heads", key,
                      f"sequence_parallel_size {size} does not divide the model's {count} {which} heads: Ulysses "
                      f"splits the heads across the ranks, and ms-swift before 3.9 stops once the model has loaded "
                      f"('Number of heads ({count}) must be divisible by the sequence parallel size ({size})!')",
                      f"sizes that divide {count}: {fits}")]
    # packing turns padding_free on (4.6.0 sft_args.py _check_padding_free; 3.12.6 train_args.py:238-240)
    if as_bool(job.args.get("padding_free", False)) is True or as_bool(job.args.get("packing", False)) is True:
        return []
    ulysses = math.gcd(count, size)
    return [about(job, ERROR, "layout.sequence_parallel.heads", key,
                  f"sequence_parallel_size {size} does not divide the model's {count} {which} heads: ms-swift "
                  f"runs Ulysses on {ulysses} and ring attention on {size // ulysses}, which needs padding_free, and "
                  f"stops once the model has loaded ('needs ulysses/ring-attention, which needs --padding_free true')",
                  f"set padding_free: true (with a flash attn_impl), or a size that divides {count}: {fits}")]


CHECKS = [check_heads]
