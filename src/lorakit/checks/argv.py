"""The kernel's limits on one command line, checked before anything is written or started.

execve(2) refuses an argv item longer than MAX_ARG_STRLEN (32 pages: 128 KiB with its NUL) and an
argv + environment larger than ARG_MAX (a quarter of the stack limit, also counting one pointer per
string). Past either, `swift` cannot even start ("Argument list too long"), after lorakit would
already have written the run record. A 200 KB `system` prompt or 300k datasets get there.
"""

from __future__ import annotations

import os
from typing import Mapping

from lorakit.checks.facts import Facts
from lorakit.findings import ERROR, Finding, about
from lorakit.job import Job
from lorakit.render import render

MAX_ARG_STRLEN = 32 * 4096  # bytes, NUL included (linux/binfmts.h)
POINTER = 8
# ms-swift's wrapper re-runs the same argv under python (and torchrun), which adds its own
# arguments and, for each worker, a dozen variables: keep that much room.
HEADROOM = 16 * 1024


def arg_max() -> int:
    try:
        return int(os.sysconf("SC_ARG_MAX"))
    except (ValueError, OSError, AttributeError):
        return 2 * 1024 * 1024  # Linux's usual value (8 MiB stack / 4)


def _size(item: str) -> int:
    return len(item.encode("utf-8", "surrogateescape")) + 1


def command_size(argv: list[str], env: Mapping[str, str]) -> int:
    strings = [*argv, *(f"{k}={v}" for k, v in env.items())]
    return sum(_size(s) for s in strings) + POINTER * (len(strings) + 2)


def check_argv_limits(job: Job, facts: Facts) -> list[Finding]:
    try:
        command = render(job, facts.environ)
    except (TypeError, ValueError):  # a value no argv can carry: checks/flags.py says which
        return []
    out: list[Finding] = []
    key = None
    for item in command.argv:
        attached = item.startswith("--") and "=" in item
        if item.startswith("--"):
            key = item[2:].partition("=")[0]
        if _size(item) > MAX_ARG_STRLEN:
            name = key or "argv"
            shown = (f"--{name}=… is" if attached else f"{name} is" if item.startswith("--") or key is None
                     else f"a value of --{name} is")
            out.append(about(job, ERROR, "argv.item_too_long", f"args.{name}",
                               f"{shown} {_size(item) - 1:,} bytes: one command-line item may hold at most "
                               f"{MAX_ARG_STRLEN - 1:,} (the kernel's MAX_ARG_STRLEN)",
                               "put long text in a file ms-swift reads (a dataset's system field, "
                               "or a JSON config file path) instead of the command line"))
    limit = arg_max() - HEADROOM
    total = command_size(command.argv, command.child_env(facts.environ))
    if total > limit:
        out.append(Finding(ERROR, "argv.too_long",
                           f"the command line and environment would be {total:,} bytes ({len(command.argv):,} argv "
                           f"items): the kernel takes at most {limit + HEADROOM:,} (ARG_MAX), less "
                           f"{HEADROOM // 1024} KiB that ms-swift's own launch adds",
                           hint="list fewer datasets on the command line (merge files into one, or use a "
                                "dataset directory), or shorten long values"))
    return out


CHECKS = [check_argv_limits]
