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
from lorakit.findings import ERROR, WARNING, Finding, about
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


def check_world(job: Job, facts: Facts) -> list[Finding]:
    """The sequence-parallel groups have to tile the ranks: ms-swift's mesh is (world // size) data
    groups of `size` ranks (4.6.0 swift/sequence_parallel/sequence_parallel.py:655-669
    _init_device_mesh), so ranks past a multiple of the size are in no group, and a size above the
    world leaves no data group at all. ms-swift checks neither; what torch does next is not its
    message, so this is a warning with the arithmetic."""
    size = as_int(job.args.get("sequence_parallel_size"))
    if size is None or size < 2 or job.command not in ("sft", "rlhf", "pt"):
        return []
    from lorakit.checks import layout

    if job.launch.nproc_per_node is None and job.launch.nproc_rule is not None or layout.refusals(job):
        return []  # no rank count to judge: the layout's own errors say why
    world = job.world_size
    if world % size == 0:
        return []
    key = "args.sequence_parallel_size"
    fits = ", ".join(str(d) for d in divisors(world)) or "1"
    if size > world:
        what = (f"sequence_parallel_size {size} with {world} rank(s): ms-swift's device mesh would have "
                f"{world} // {size} = 0 data-parallel groups")
    else:
        groups = world // size
        what = (f"sequence_parallel_size {size} does not divide the {world} ranks: ms-swift's device mesh is "
                f"{groups} group(s) of {size} = {groups * size} ranks, and rank(s) {groups * size}-{world - 1} are in none")
    return [about(job, WARNING, "layout.sequence_parallel.world", key, what,
                  f"a size that divides the {world} rank(s): {fits} (or more ranks: nproc_per_node x nnodes)")]


CHECKS = [check_heads, check_world]
