"""max_length left unset on a long-context local model (ms-swift #3286).

ms-swift then takes the model's own limit (4.6.0 base_args.py:227-228: `if self.max_length is
None: self.max_length = self.model_info.max_model_len`; 3.12.6 base_args.py:202-203), which
HfConfigFactory.get_max_model_len reads as the smallest of seq_length, max_position_embeddings,
n_positions, model_max_length, ... in config.json. With 32k or 128k, no row is ever cut: the
longest rows of a dataset take that much activation memory, and the run that fit in a test goes
out of memory hours in. A warning: a long-context run may mean it.
"""

from __future__ import annotations

from lorakit import modelconfig
from lorakit.checks.facts import Facts
from lorakit.checks.seqpar import config_attr
from lorakit.errors import LorakitError
from lorakit.findings import WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import as_int

LENGTH_KEYS = ("seq_length", "max_position_embeddings", "n_positions", "model_max_length", "seq_len", "max_seq_len",
               "max_sequence_length", "max_seq_length")  # swift/utils/hf_config.py get_max_model_len
LONG = 16384  # above this, an uncut row is a memory risk on any one GPU


def model_max_len(config: dict) -> int | None:
    found = [as_int(config_attr(config, key)) for key in LENGTH_KEYS]
    found = [n for n in found if n is not None and n > 0]
    return min(found) if found else None


def check_unset(job: Job, facts: Facts) -> list[Finding]:
    if job.command not in ("sft", "pt", "rlhf") or job.args.get("max_length") not in (None, ""):
        return []
    model = job.args.get("model")
    local = facts.find_model(str(model)) if model not in (None, "") else None
    if local is None:
        return []
    try:
        config = modelconfig.read_config(local)
    except LorakitError:
        return []
    limit = model_max_len(config) if isinstance(config, dict) else None
    if limit is None or limit <= LONG:
        return []
    return [about(job, WARNING, "train.max_length.unset", "args.max_length",
                  f"max_length is unset, so ms-swift uses the model's limit, {limit} tokens (config.json): no row "
                  f"is cut, and the longest rows of the data set the memory a step needs",
                  "set max_length to what the data needs (e.g. --max_length 4096); rows beyond it are cut or "
                  "dropped (truncation_strategy)")]


CHECKS = [check_unset]
