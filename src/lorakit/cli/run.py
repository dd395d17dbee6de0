"""The shared tail of train and merge: check, then print (dry-run) or launch."""

from __future__ import annotations

import os
import sys

from lorakit import launch, report
from lorakit.checks import run_checks
from lorakit.cli.common import blocking
from lorakit.errors import EXIT_USER, EnvironmentProblem
from lorakit.job import Job
from lorakit.render import Command, render, shell_text
from lorakit.swiftenv import installed_version

INSTALL_HINT = "pip install 'lorakit[swift]' (or: pip install ms-swift) in this environment"


def check_or_exit(job: Job, strict: bool) -> list:
    findings = run_checks(job)
    report.print_findings(findings)
    if blocking(findings, strict):
        errors = sum(f.level == "error" for f in findings)
        what = f"{errors} error(s)" if errors else "warnings (--strict)"
        report.note(f"not launching: {what} above")
        raise SystemExit(EXIT_USER)
    return findings


def dry_run(command: Command) -> int:
    sys.stdout.write(shell_text(command))
    sys.stdout.flush()
    return 0


def execute(command: Command, *, grace: float) -> int:
    env = command.child_env(os.environ)
    swift = launch.resolve_swift(env)
    if swift is None:
        raise EnvironmentProblem("ms-swift's `swift` command was not found on PATH", hint=INSTALL_HINT)
    version = installed_version()
    report.note(f"running {swift} (ms-swift {version or 'version unknown: not in this Python'})")
    for name in command.unset:
        report.note(f"unset {name} from your environment: this job does not set it")
    return launch.run(command.argv, env, grace=grace)


def finish(job: Job, *, dry: bool, grace: float) -> int:
    command = render(job, os.environ)
    if dry:
        return dry_run(command)
    return execute(command, grace=grace)
