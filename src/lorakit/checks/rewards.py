"""GRPO's reward functions: a name ms-swift cannot find (#4351), and a built-in reward whose
reference column the local dataset does not have (#3177). Both fail only after the model has
loaded and, for the column, after the first generation.

ms-swift resolves each --reward_funcs name in its `orms` mapping (4.6.0 grpo_trainer.py
_prepare_rewards: 'reward_function X is not implemented in swift.rewards'; 3.12.6 the same in
swift.plugin), which --external_plugins files extend by `orms['name'] = MyORM`. lorakit reads
those files as text, never imports them: a name registered in a way text cannot tell (a loop, a
variable key, orms.update) is let through.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lorakit import localpath
from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.values import did_you_mean, listed

# swift/rewards/orm.py (4.6.0) and swift/plugin/orm.py (3.12.6): the same eight
BUILT_IN = ("toolbench", "math", "accuracy", "format", "react_format", "cosine", "repetition", "soft_overlong")
# the dataset column each reads as a keyword argument (its __call__'s parameter): the trainer passes
# every other column of the row through, so the file must hold it
NEEDS = {"accuracy": "solution", "cosine": "solution", "toolbench": "solution", "math": "ground_truths"}
_LITERAL = re.compile(r"""\borms\s*\[\s*(['"])(.+?)\1\s*\]\s*=""")
_ANY = re.compile(r"\borms\b\s*(\[|\.\s*(update|setdefault|__setitem__)\b)")
_FROM = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.M)
_ALIAS = re.compile(r"\borms\s+as\s+\w+|\w+\s*=\s*orms\b")
MAX_PLUGIN_BYTES = 1 << 20


def _read(path: Path) -> str | None:
    """The file's text; None when it is missing, unreadable or longer than MAX_PLUGIN_BYTES (then
    a registration may be past what was read)."""
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as f:
            data = f.read(MAX_PLUGIN_BYTES + 1)
    except OSError:
        return None
    return None if len(data) > MAX_PLUGIN_BYTES else data.decode("utf-8", "replace")


def _beside(folder: Path, module: str) -> list[Path]:
    """The files `import module` (or `from module import ...`) reads when `folder` is on sys.path,
    as ms-swift's import_external_file puts the plugin's folder (utils.py:409-413): a module file,
    or a package's __init__.py and each package on the dotted path."""
    parts, out = module.split("."), []
    for n in range(1, len(parts) + 1):
        base = folder.joinpath(*parts[:n])
        out += [p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()]
    return out


def registered(plugins: list[str], cwd: str) -> tuple[set[str], bool]:
    """(names the plugin files register with a literal key, whether any registers otherwise or
    could not be read). A module a plugin imports from its own directory is read too."""
    names, unsure, seen = set(), False, set()
    queue = [Path(localpath.absolute(p, Path(cwd))) for p in plugins]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        text = _read(path)
        if text is None:
            unsure = True  # missing or unreadable: checks/paths.py, or ms-swift, says so
            continue
        literal = {m.group(2) for m in _LITERAL.finditer(text)}
        names |= literal
        if len(list(_ANY.finditer(text))) > len(_LITERAL.findall(text)) or _ALIAS.search(text):
            unsure = True  # a variable key, orms.update(...), or orms imported under another name
        for match in _FROM.finditer(text):
            module = (match.group(1) or match.group(2)).lstrip(".")
            if module:
                queue += _beside(path.parent, module)
    return names, unsure


def check_reward_names(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "rlhf" or str(job.args.get("rlhf_type")) != "grpo":
        return []
    value = job.args.get("reward_funcs")
    if isinstance(value, (list, tuple)) and any(isinstance(v, (list, tuple, dict)) for v in value):
        return []  # a nested list: checks/flags.py refuses the value itself
    wanted = listed(value)
    unknown = [n for n in wanted if n not in BUILT_IN]
    if not unknown:
        return []
    # ms-swift imports --custom_register_path files as it does plugins (4.6.0 base_args.py:174-177)
    plugins = listed(job.args.get("external_plugins")) + listed(job.args.get("custom_register_path"))
    names, unsure = registered(plugins, os.getcwd())
    missing = [n for n in unknown if n not in names]
    if not missing or unsure:
        return []
    # a plugin's own names are what a plugin user misspells; without one, the built-ins
    close = did_you_mean(missing[0], sorted(names) if plugins else BUILT_IN)
    where = (f"the --external_plugins file{'s' if len(plugins) > 1 else ''} ({', '.join(plugins)}) register"
             f"{'' if len(plugins) > 1 else 's'} {', '.join(sorted(names)) or 'none'}" if plugins else
             "no --external_plugins file registers more")
    hint = (f"did you mean {close[0]!r}? " if close else "") + (
        f"register it in a plugin: orms['{missing[0]}'] = MyReward, and pass --external_plugins plugin.py")
    return [about(job, ERROR, "rlhf.grpo.reward_unknown", "args.reward_funcs",
                  f"reward_funcs {', '.join(missing)}: not a reward ms-swift has (built-in: {', '.join(BUILT_IN)}) "
                  f"and {where}: GRPO stops when it builds the trainer ('reward_function {missing[0]} is not "
                  "implemented')", hint)]


def check_reward_columns(job: Job, facts: Facts) -> list[Finding]:
    if job.command != "rlhf" or str(job.args.get("rlhf_type")) != "grpo":
        return []
    needed = {n: NEEDS[n] for n in listed(job.args.get("reward_funcs")) if n in NEEDS}
    if not needed:
        return []
    from lorakit import datafile
    from lorakit.checks.data import dataset_columns
    from lorakit.checks.rlhf import local_files

    mapped = set(dataset_columns(job).values())
    out = []
    for key, path in local_files(job):
        rec = datafile.recognize(path, environ=facts.environ)
        if not rec.rows_checked:
            continue  # unreadable or empty: the data check says so
        # every row read: no row has the column, certainly; only a prefix: a later row may have it,
        # and then the column exists (None in the rows before), so it is a warning
        every_row = rec.complete and rec.rows_checked >= (rec.total_rows or 0)
        for name, column in needed.items():
            if column in rec.keys or column in mapped:
                continue
            if every_row:
                what = (f"no row has one (columns: {', '.join(rec.keys) or 'none'}): GRPO stops at the first "
                        f"reward ('missing 1 required positional argument: {column!r}')")
            else:
                what = (f"none of the first {rec.rows_checked} rows has one (columns: {', '.join(rec.keys) or 'none'}):"
                        f" if no later row has it either, GRPO stops at the first reward; if some do, the rows "
                        f"before reach the reward with {column} None")
            out.append(about(job, ERROR if every_row else WARNING, "rlhf.grpo.reward_column", f"args.{key}",
                             f"{path}: reward {name} reads each row's {column!r} (the reference answer), and {what}",
                             f'add "{column}": "..." to each row, next to "messages" (or map a column onto it with '
                             f"--columns), or drop {name}"))
    return out


CHECKS = [check_reward_names, check_reward_columns]
