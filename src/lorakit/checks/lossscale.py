"""`--loss_scale` against the target release's loss-scale registry (lorakit.lossscales).

ms-swift takes any text for the flag and looks it up when the template is built, after the model
has loaded: KeyError: 'ignore_empty_think' on 3.3.0.post1 (ms-swift #4382; the name came in 3.4.1),
`last_round_with_ignore_empty_think` is a KeyError from 3.12 (write last_round+ignore_empty_think),
'+' means nothing before 3.12, and a chain of names (hermes+ignore_empty_think) only from 4.3.1.
A name no release has gets did-you-mean. Files given to --external_plugins / --custom_register_path
can register names of their own (loss_scale_map['x'] = ...): then a warning.
"""

from __future__ import annotations

from lorakit.checks.facts import Facts
from lorakit.checks.paths import plugin_keys
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import did_you_mean

# names ms-swift retired, and what says the same in the release that dropped them
REPLACED = {"last_round_with_ignore_empty_think": ("last_round+ignore_empty_think", "3.12.0")}


def check_loss_scale(job: Job, facts: Facts) -> list[Finding]:
    from lorakit.render import one_text  # YAML's 5 or true: ms-swift gets the text

    value = one_text(job.args.get("loss_scale"))
    if value is None:
        return []  # unset, a list or a date: checks/flags.py refuses the last two for this one-value flag
    from lorakit import lossscales  # only for a job that sets it: the dry-run stays light

    at = lossscales.release(job.swift_major, job.swift_version)
    if at is None:
        return []
    found = lossscales.problems(value, at)
    if not found:
        return []
    plugins = plugin_keys(job)
    level = WARNING if plugins or at.beyond else ERROR
    problem = found[0]
    later, earlier = lossscales.where(job.swift_major, value, at)
    if problem.part in lossscales.PLACEHOLDERS:
        later = earlier = None  # 3.12's '-' key: a table entry no user writes, never a suggestion
    takes = f"it takes {lossscales.takes(at)}"
    part = "" if problem.part == value else f" ({problem.part!r})"
    if problem.why == "plus":
        what = (f"'+' combines loss scales only from ms-swift {later}" if later else
                f"'+' combines nothing here, and no ms-swift {job.swift_major}.x reads this value")
    elif problem.why == "chain":
        what = (f"one name may follow the base, not several ({problem.part!r})"
                + (f"; names chain from ms-swift {later}" if later else ""))
    elif problem.why == "base":
        what = f"the part before '+'{part} must be a base strategy ({', '.join(at.bases)})"
        what += f"; names chain from ms-swift {later}" if later else ""
    elif not value:
        what = "an empty value is no loss scale"
    elif not problem.part:
        what = "an empty name before '+'" if value.startswith("+") else "an empty name after '+'"
    elif problem.part in at.bases and not problem.alone:
        what = f"{problem.part!r} after '+': a base strategy only comes first, and names follow it"
    elif later:
        what = f"no loss scale{part} by that name: it is from ms-swift {later}"
    elif earlier:
        what = f"no loss scale{part} by that name any more: the last release with it is ms-swift {earlier}"
    elif problem.part in REPLACED:
        what = f"no loss scale{part} by that name any more: ms-swift {REPLACED[problem.part][1]} replaced it"
    else:
        what = f"no loss scale{part} by that name in any ms-swift {job.swift_major}.x"
    # what ms-swift raises when it builds the template, after the model has loaded
    raised = (f"ALL_BASE_STRATEGY: {list(at.bases)}, base_strategy: {problem.part}" if problem.why == "base"
              else f"KeyError: {problem.part!r}")
    message = (f"loss_scale {value!r} in {at.label}: {what}; ms-swift finds out after the model has loaded "
               f"({raised}); {takes}")
    if later:
        code = "flags.too_new"
        stop = lossscales.stops_at(job.swift_major, value, later)
        hint = (f"upgrade to ms-swift {later} or later (pip install 'ms-swift>={later},<{job.swift_major + 1}')"
                if stop is None else
                f"upgrade to ms-swift {later} (up to {stop}, which no longer reads it: "
                f"pip install 'ms-swift>={later},<{stop}')")
        if stop is not None and problem.part in REPLACED:
            hint += f"; from {REPLACED[problem.part][1]} write {REPLACED[problem.part][0]!r}"
    elif problem.why == "name" and (earlier or problem.part in REPLACED):
        code = "flags.removed"
        hint = f"write {REPLACED[problem.part][0]!r}" if problem.part in REPLACED else f"pick one {at.label} takes"
    else:
        code = "flags.value"
        pool = [n for n in at.names + (at.bases if problem.alone else ()) if n not in lossscales.PLACEHOLDERS]
        close = [] if problem.why != "name" or not problem.part or problem.part in at.bases else \
            did_you_mean(problem.part, pool)
        base = "last_round" if "last_round" in at.bases else next(iter(at.bases), "")
        hint = (f"did you mean {close[0]!r}?" if close else
                f"{problem.part!r} is a base strategy: it goes first ({problem.part}+NAME), once"
                if problem.part in at.bases else
                f"start with a base ({base}+NAME), or give one name alone" if problem.why in ("base", "chain")
                else f"pick one {at.label} takes")
    if plugins:
        message += f" (unless your --{plugins[0]} file registers it)"
    elif at.beyond:
        message += f" (the table ends at {at.version}: a newer release may have it)"
    return [about(job, level, code, "args.loss_scale", message, hint)]


CHECKS = [check_loss_scale]
