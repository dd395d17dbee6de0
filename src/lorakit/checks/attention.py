"""--attn_impl against the names transformers takes: ms-swift passes the value to the model's
config as given (swift/model/utils.py AttnImpl.update_attn_impl, 'flash_attn' read as
flash_attention_2) and transformers refuses any other name when it builds the model (4.6.0's
transformers 5.19 modeling_utils.py get_correct_attn_implementation, 3.12.6's 4.57 the same:
"Specified `attn_implementation=...` is not supported"), after ms-swift's start-up and the
config have loaded. A hub kernel (`kernels-community/flash-attn`) and the paged variants are
taken as they come: the kernels package resolves them.
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, Finding, about
from lorakit.job import Job
from lorakit.values import did_you_mean

# transformers' ALL_ATTENTION_FUNCTIONS.valid_keys() of 4.57 and 5.19 with "eager", and ms-swift's alias
NAMES = ("eager", "sdpa", "flash_attn", "flash_attention_2", "flash_attention_3", "flash_attention_4",
         "flex_attention")


def check_attn_impl(job: Job, facts: Facts) -> list[Finding]:
    value = job.args.get("attn_impl")
    if not isinstance(value, str) or value in NAMES or value in ("", "None") or "/" in value or "paged" in value:
        return []  # '' and 'None': ms-swift's unset; a list: checks/flags.py says the flag takes one value
    if job.command in ("infer", "deploy", "export") and str(job.args.get("infer_backend", "pt")) not in ("pt", "transformers"):
        return []  # vLLM, SGLang, LMDeploy build the model their own way: attn_impl is not read
    close = [value.lower()] if value.lower() in NAMES else did_you_mean(value, NAMES)
    return [about(job, ERROR, "model.attn_impl.unknown", "args.attn_impl",
                  f"attn_impl {value!r} is no attention implementation transformers has: it refuses it when it "
                  f"builds the model (\"Specified `attn_implementation=\"{value}\"` is not supported\")",
                  (f"did you mean {close[0]!r}? " if close else "") + "one of " + ", ".join(NAMES)
                  + " (flash_attn is ms-swift's name for flash_attention_2), or a hub kernel (org/name)")]


CHECKS = [check_attn_impl]
