"""`swift sft --loss_type` against the target release's loss registry (lorakit.losstypes).

ms-swift takes any text for the flag and looks it up when the trainer is built, after the model
has loaded: `--loss_type listwise_generative_reranker` (3.6-3.12's name, in their reranker docs)
on 4.6.0 is `KeyError: 'listwise_generative_reranker'` (measured: tests/test_real_failures.py).
Only sft's: rlhf's loss_type is the DPO/GRPO loss, a different list (checks/flags.py). Files
given to --external_plugins / --custom_register_path can register losses of their own: then a
warning.
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.checks.paths import plugin_keys
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import did_you_mean


def check_loss_type(job: Job, facts: Facts) -> list[Finding]:
    from lorakit.render import one_text  # YAML's 5 or true: ms-swift gets the text

    value = None if job.command not in ("sft", "pt") else one_text(job.args.get("loss_type"))
    if value is None:
        return []  # unset, a list or a date: checks/flags.py refuses the last two for this one-value flag
    from lorakit import losstypes  # only for a job that sets it: the dry-run stays light

    at = losstypes.release(job.swift_major, job.swift_version)
    if at is None or value in at.names:
        return []
    later, earlier = losstypes.where(job.swift_major, value, at)
    other = losstypes.other_major(job.swift_major, value)
    renamed = losstypes.RENAMED_IN_4.get(value) if job.swift_major == 4 else None
    replaced = losstypes.REPLACED_IN_3_8.get(value)
    if later:
        what, code = f"it is from ms-swift {later}", "flags.too_new"
        stop = losstypes.stops_at(job.swift_major, value, later)
        hint = (f"upgrade to ms-swift {later} or later (pip install 'ms-swift>={later},<{job.swift_major + 1}')"
                if stop is None else
                f"upgrade to ms-swift {later} (up to {stop}, which no longer has it: "
                f"pip install 'ms-swift>={later},<{stop}')")
    elif other and job.swift_major == 3:  # a 4.x name: a 4.x example on a 3.x install (ms-swift #8006)
        what, code = f"it is from ms-swift {other[0]}", "flags.too_new"
        mine = losstypes.IN_3.get((value, str(job.args.get("task_type"))))
        hint = (f"write --loss_type {mine} (3.x's name), or " if mine else "") + \
            f"upgrade to ms-swift {other[0]} or later (pip install 'ms-swift>={other[0]}')"
    elif earlier or (other and (renamed or replaced)):
        what = f"the last release with it is ms-swift {earlier or other[1]}"
        if renamed:
            what += f"; 4.0 calls it {renamed!r}"
        code = "flags.removed"
        hint = (f"write --loss_type {renamed} (the head, generative or not, comes from --task_type)" if renamed
                else replaced or f"pick one {at.label} has")
    else:
        what = f"ms-swift {other[0]}-{other[1]} had it, no 4.x does" if other else \
            f"no ms-swift {job.swift_major}.x has it"
        code = "flags.value"
        close = did_you_mean(value, list(at.names))
        hint = f"did you mean {close[0]!r}?" if close else f"pick one {at.label} has"
    message = (f"loss_type {value!r} in {at.label}: no loss by that name, {what}; ms-swift finds out after the "
               f"model has loaded (KeyError: {value!r}); it has {', '.join(at.names)}")
    plugins = plugin_keys(job)
    if plugins:
        message += f" (unless your --{plugins[0]} file registers it)"
    elif at.beyond:
        message += f" (the table ends at {at.version}: a newer release may have it)"
    return [about(job, WARNING if plugins or at.beyond else ERROR, code, "args.loss_type", message, hint)]


CHECKS = [check_loss_type]
