"""The shared tail of train and merge: check, then print (dry-run, in a format) or launch."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

from lorakit import exports, record, report
from lorakit.checks import run_checks
from lorakit.checks.facts import Facts
from lorakit.checks.nodes import MASTER_ADDR_MISSING, NODE_RANK_MISSING
from lorakit.cli.common import blocking
from lorakit.errors import EXIT_USER, EnvironmentProblem, LorakitError
from lorakit.findings import Finding
from lorakit.job import Job
from lorakit.render import Command, render, shell_text
from lorakit.values import as_int

INSTALL_HINT = "pip install 'lorakit[swift]' (or: pip install ms-swift) in this environment"
# The sbatch export takes each node's rank and node 0's address from the SLURM allocation.
SBATCH_SUPPLIES = (NODE_RANK_MISSING, MASTER_ADDR_MISSING)


def check_or_exit(job: Job, strict: bool, waive: Iterable[str] = (), *, here: bool = True) -> list[Finding]:
    """Run every check, print the findings (minus the `waive`d codes), stop on errors. `here`: the
    job is about to run on this machine (not a dry-run), so its packages and ports count."""
    waived = set(waive)
    facts = Facts(here=here, launching=here)
    findings = [f for f in run_checks(job, facts) if f.code not in waived]
    report.print_findings(findings)
    if blocking(findings, strict):
        errors = sum(f.level == "error" for f in findings)
        what = f"{errors} error(s)" if errors else "warnings (--strict)"
        report.note(f"not launching: {what} above")
        raise SystemExit(EXIT_USER)
    return findings


def dry_run(command: Command) -> int:
    return emit(shell_text(command))


def emit(text: str) -> int:
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        # a non-UTF-8 byte the user passed (a surrogate escape) on a strict stdout: write the
        # bytes as they came, which is what bash will read back
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode(sys.stdout.encoding or "utf-8", "surrogateescape"))
    sys.stdout.flush()
    return 0


def check_swift_matches(swift: str, version: Optional[str], major: Optional[int]) -> None:
    head = as_int((version or "").split(".", 1)[0])
    if major is None or head is None or head == major:
        return
    if head < 3:  # 1.x/2.x: --model_id_or_path, --sft_type (ms-swift #3321)
        raise LorakitError(
            f"{swift} runs ms-swift {version}, which takes 2.x flags (--model_id_or_path, --sft_type, --ckpt_dir): "
            f"it would reject this command, rendered for ms-swift {major}.x (lorakit renders for 3.x and 4.x)",
            hint=f"pip install 'ms-swift>={major},<{major + 1}' in the environment `swift` runs from")
    raise LorakitError(
        f"{swift} runs ms-swift {version}, but this command was rendered for ms-swift {major}.x: "
        f"it would reject flags such as --{'tuner_type' if head < 4 else 'train_type'}",
        hint=f"pass --swift-version {head}, or put the ms-swift {major}.x `swift` first on PATH")


def execute(command: Command, *, grace: float,
            before_start: Optional[Callable[[], None]] = None,
            log: Optional[str] = None, show_progress: bool = False, major: Optional[int] = None,
            caught: Optional[list[int]] = None, after: Optional[Callable[[int], None]] = None) -> int:
    """Launch; `before_start` runs once `swift` is known to exist, right before it starts.

    log: ms-swift's output goes to this file instead of the terminal; show_progress: on a
    terminal, a progress bar fed by ms-swift's own log lines (lorakit.progress). caught: the
    signals lorakit forwarded are appended to it; after(rc): once the child is done, after the
    failure report (a training run's end: End.finish).
    """
    env = command.child_env(os.environ)
    from lorakit import launch  # only a real launch starts processes

    swift = launch.resolve_swift(env)
    if swift is None:
        raise EnvironmentProblem("ms-swift's `swift` command was not found on PATH", hint=INSTALL_HINT)
    from lorakit.progress import Watch  # here, not at the top: the dry-run path never needs it

    version = record.swift_version(swift)
    check_swift_matches(swift, version, major)
    watch = Watch(log=log, show=show_progress, label=" ".join(command.argv[:2]))
    if before_start is not None:  # the run record: if it cannot be written, nothing was said to run
        before_start()
    report.note(f"running {swift} (ms-swift {version or 'version unknown'})")
    for name in command.unset:
        report.note(f"unset {name} from your environment: this job does not set it")
    with watch:
        rc = launch.run(command.argv, watch.child_env(env), grace=grace, output=watch.output, caught=caught)
    rc = watch.report(rc)
    if after is not None:
        after(rc)
    return rc


def print_or_launch(job: Job, *, dry: bool, grace: float) -> int:
    command = render(job, os.environ)
    if dry:
        return dry_run(command)
    return execute(command, grace=grace, major=job.swift_major)


def output_options(fmt: Optional[str], all_nodes: bool, dry: bool) -> str:
    """--format and --all-nodes only shape what --dry-run prints."""
    if fmt is not None and fmt not in exports.FORMATS:
        raise LorakitError(f"--format {fmt!r}: unknown format", hint="one of: " + ", ".join(exports.FORMATS))
    fmt = fmt or "text"
    for given, option in ((fmt != "text", f"--format {fmt}"), (all_nodes, "--all-nodes")):
        if given and not dry:
            raise LorakitError(f"{option} only shapes what --dry-run prints; it launches nothing",
                               hint="add --dry-run")
    if all_nodes and fmt not in exports.ALL_NODES_FORMATS:
        raise LorakitError(f"--all-nodes prints text or json, not {fmt}",
                           hint="sbatch already covers every node; for sh or swift-yaml, render "
                                "once per node with --node-rank R")
    return fmt


def train_tail(job: Job, *, dry: bool, fmt: Optional[str], all_nodes: bool, strict: bool,
               grace: float, replayed: Optional[tuple[Path, Mapping[str, Any]]] = None,
               log: Optional[str] = None, show_progress: bool = True) -> int:
    """Checks, then the export(s) on stdout, or the record written and ms-swift launched."""
    fmt = output_options(fmt, all_nodes, dry)
    jobs = exports.node_jobs(job) if all_nodes else [job]
    findings = check_or_exit(jobs[0], strict, SBATCH_SUPPLIES if fmt in exports.SCHEDULER_FORMATS else (), here=not dry)
    preset_says = job.launch.node_rank is not None or job.launch.master_addr is not None
    if fmt in exports.SCHEDULER_FORMATS and preset_says and len(exports.node_jobs(job)) > 1:
        report.note(f"{fmt}: each node's NODE_RANK and MASTER_ADDR come from the scheduler "
                    "(lorakit train --on), not from the preset")
    command = render(job, os.environ)
    if replayed is not None:
        from lorakit import replay

        replay.check_replay(replayed[1], command, replayed[0])
    if dry and all_nodes:
        return emit(exports.all_nodes(fmt, [(j, render(j, os.environ)) for j in jobs], findings))
    if dry:
        return emit(exports.export(fmt, job, command, findings))

    end = End(job, command)
    return execute(command, grace=grace, before_start=end.start, log=log, show_progress=show_progress,
                   major=job.swift_major, caught=end.caught, after=end.finish)


class End:
    """One training launch's record and index entry (lorakit.runindex), and what its end says:
    the final checkpoint and the merge command on success (with --log, ms-swift's own
    last_model_checkpoint line is not on the terminal), the resume command otherwise."""

    def __init__(self, job: Job, command: Command):
        self.job, self.command = job, command
        self.caught: list[int] = []
        self.launch = None

    def start(self) -> None:
        self.launch = record.write_train_record(self.job, self.command)
        report.note(f"run record: {self.launch.record}")

    def finish(self, rc: int) -> None:
        from datetime import datetime, timezone

        from lorakit import checkpoints, resume, runindex
        from lorakit.values import as_bool

        if self.launch is None:
            return
        args = self.job.args
        add_version = as_bool(args.get("add_version")) is not False
        output, argv = self.launch.output, list(self.command.argv)
        run_dir = runindex.new_run_dir(output, self.launch.before, argv) if add_version else output
        untold = run_dir is None and len(runindex.run_dirs(output) - self.launch.before) > 1
        full = resume.is_full(args)  # tuner_type full saves the model, not an adapter (lorakit.fullckpt)
        if full:
            mine = resume.newest_complete(run_dir, model_only=True, full=True).checkpoint if run_dir else None
            own = mine.path if mine is not None else None
        else:
            runs = checkpoints.newest_first(checkpoints.scan(run_dir)) if run_dir is not None else []
            own = next((r.complete[-1].path for r in runs if r.complete), None)  # this run's last whole save
        final = own if rc == 0 else None
        found = None if rc == 0 else resume.newest_complete(
            self.launch.output, model_only=bool(as_bool(args.get("resume_only_model"))), full=full)
        entry = runindex.finish(self.launch, rc=rc, caught=self.caught, run_dir=run_dir, checkpoint=own,
                                time=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                record_name=record.record_name(self.job.launch.node_rank))
        report.note(f"run {entry['status']} (exit code {rc}); recorded in {self.launch.index}")
        if final is not None:
            report.note(f"final checkpoint: {final}")
            if not full:  # a full model has no adapter to merge
                report.note(f"next: lorakit merge --adapters {shlex.quote(str(final))}")
        elif untold:  # launches into one output dir overlapped (runindex.new_run_dir)
            report.note(f"several vN dirs appeared in {output} while this run ran (another launch at the same "
                        "time) and none holds this run's flags alone: its run dir is not told, no record copied")
        elif rc == 0:  # ms-swift exits 0 under save_strategy no, or when there was nothing to train
            where = run_dir if run_dir is not None else self.launch.output
            report.note(f"this run saved no complete checkpoint (none under {where}): nothing to merge or resume")
        elif found is not None and found.checkpoint is not None and _finished(found.checkpoint.path, own):
            # the ranks saved the last step, then one died on the way out (torch's "terminate called
            # without an active exception" at a process group's teardown): nothing is left to resume
            c = found.checkpoint
            report.note(f"the run had reached its last step ({c.step}) before swift exited with code {rc}: "
                        f"{c.path} is its final, complete checkpoint")
            if not full:
                report.note(f"next: lorakit merge --adapters {shlex.quote(str(c.path))}")
        elif found is not None and found.checkpoint is not None:
            c = found.checkpoint
            for path, why in found.skipped:
                report.note(f"not resumable: {path}: {why}")
            report.note(f"the newest complete checkpoint is {c.path} (step {c.step}); resume with:")
            # rlhf's --resume takes a value (a bare --resume is train's spelling only)
            again = ["lorakit", "rlhf", "--from", str(self.launch.record), "--resume", "auto"] \
                if self.job.command == "rlhf" else ["lorakit", "train", "--from", str(self.launch.record), "--resume"]
            print("  " + shlex.join(again), file=sys.stderr)


def _finished(path, own) -> bool:
    """This run's own newest save is the last step it was to train (trainer_state.json global_step
    == max_steps): a failure after it costs nothing but the exit code."""
    from lorakit.trainlog import read_json

    if own is None or str(own) != str(path):
        return False
    state = read_json(Path(path) / "trainer_state.json")
    if state is None:
        return False
    step, total = state.get("global_step"), state.get("max_steps")
    return isinstance(step, int) and isinstance(total, int) and total > 0 and step >= total
