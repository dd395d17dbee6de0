"""Never lose work when merging: never overwrite without --force, and with --force merge into a
temporary sibling that replaces the old output only after a whole, uninterrupted success."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional

from lorakit import checkpoints, localpath, report
from lorakit.errors import EnvironmentProblem, LorakitError
from lorakit.halfwritten import safetensors_problem

TMP_SUFFIX = ".lorakit-tmp"
OLD_SUFFIX = ".lorakit-old"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # the ones launch.run forwards


def output_for(checkpoint: Path, output_dir: str | None) -> Path:
    # ms-swift's own default for a merge is '<checkpoint>-merged' (export_args.py).
    if output_dir is None:
        target = checkpoint.parent / f"{checkpoint.name}-merged"
    else:
        why = localpath.unusable(output_dir)
        if why is not None:
            raise LorakitError(f"--output-dir {localpath.shown(output_dir)} is no path: {why}", hint=_NEW_DIR)
        target = Path(output_dir).expanduser().resolve()
    # the merge is written beside the target and swapped in (NAME.lorakit-tmp, NAME.lorakit-old)
    longest = max(TMP_SUFFIX, OLD_SUFFIX, key=len)
    if localpath.unusable(str(target) + longest) is not None:
        raise LorakitError(f"output dir name {target.name[:60]!r}... is too long: lorakit writes the merge beside it "
                           f"as NAME{TMP_SUFFIX} and swaps it in, and that name would pass the file system's "
                           f"{localpath.NAME_MAX}-byte limit", hint=_NEW_DIR)
    return target


def refuse_exist_ok(args: Mapping[str, object]) -> None:
    # merge_lora.py: when output_dir exists ms-swift logs "skipping the saving process" and exits
    # 0 having merged nothing; --exist_ok only silences export_args.py's FileExistsError for that.
    if args.get("exist_ok") not in (None, False, "false", "False"):
        raise LorakitError(
            "exist_ok is set: ms-swift then skips the merge when the output dir exists and still exits 0",
            hint="drop exist_ok; lorakit merge --force replaces an existing output after a successful merge",
        )


def _sibling(target: Path, suffix: str) -> Path:
    return target.with_name(target.name + suffix)


@dataclass(frozen=True)
class OutputPlan:
    target: Path  # where the merged model must end up
    write_to: Path  # where ms-swift writes: the target, or a temporary sibling under --force

    @property
    def replacing(self) -> bool:
        return self.write_to != self.target


def plan_output(target: Path, *, force: bool, protect: Mapping[Path, str]) -> OutputPlan:
    """Where ms-swift writes. `protect`: paths (what they are) that the output must never replace."""
    precious = _precious(target)
    if precious:
        raise LorakitError(f"output dir {target} is {precious}; a merge never replaces it", hint=_NEW_DIR)
    for path, what in protect.items():
        if target == path or target in path.parents:
            raise LorakitError(f"output dir {target} would replace {what} ({path})", hint=_NEW_DIR)
    old = _sibling(target, OLD_SUFFIX)
    if old.exists() and not target.exists():
        raise LorakitError(
            f"{old} holds the previous merged model: replacing it with a new one was cut short",
            hint=f"move it back first: mv {old} {target}",
        )
    if not (target.exists() or target.is_symlink()):
        return OutputPlan(target, target)
    _refuse_unreplaceable(target)  # before --force is asked for: --force would not help
    if not force:
        raise LorakitError(
            f"output dir {target} already exists; refusing to overwrite it",
            hint="pass --output-dir NEW_DIR, or --force to replace it after a successful merge",
        )
    return OutputPlan(target, _sibling(target, TMP_SUFFIX))


_NEW_DIR = "pass --output-dir with a new directory for the merged model"


def _precious(target: Path) -> Optional[str]:
    """What `target` is if it is a directory no merge may ever replace: /, $HOME, the cwd or a
    parent of it (replacing the cwd also left lorakit itself without one: Path.cwd() fails)."""
    real = target.resolve()
    if real.parent == real:
        return "the filesystem root"
    if real == Path.home().resolve():
        return "your home directory ($HOME)"
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the cwd was deleted: nothing to compare with
        return None
    if real == cwd:
        return "the current directory"
    return "a parent of the current directory" if real in cwd.parents else None


def _refuse_unreplaceable(target: Path) -> None:
    """Only an earlier merged model, or an empty dir, may be replaced; --force or not."""
    if not target.is_dir():
        raise LorakitError(f"output dir {target} exists and is not a directory", hint=_NEW_DIR)
    if checkpoints.is_checkpoint(target):
        raise LorakitError(f"output dir {target} is an adapter checkpoint; a merge never replaces it",
                           hint=_NEW_DIR)
    runs = sorted(r.name for r in checkpoints.scan(target))
    if runs:
        shown = ", ".join(runs[:3]) + (", ..." if len(runs) > 3 else "")
        raise LorakitError(f"output dir {target} holds training output (runs: {shown}); "
                           "a merge never replaces it", hint=_NEW_DIR)
    try:
        entries = sorted(p.name for p in target.iterdir())
    except OSError as exc:
        raise LorakitError(f"output dir {target} cannot be read: {exc.strerror}", hint=_NEW_DIR) from None
    if entries and not (looks_merged(target) or _merge_record(target)):
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise LorakitError(
            f"output dir {target} is not empty and holds no merged model ({shown}); "
            "--force only replaces an earlier merged model or an empty directory",
            hint=_NEW_DIR + ", or move its contents away first",
        )


def _merge_record(path: Path) -> bool:
    """A lorakit-run.yaml that a merge wrote: the dir is an earlier merge, maybe one cut short.
    Read as plain YAML, not with replay.read: that one judges a record for replay (--from)."""
    import yaml  # only when an existing output is judged

    from lorakit.record import RECORD_NAME

    try:
        data = yaml.safe_load((path / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return False
    preset = data.get("preset") if isinstance(data, dict) else None
    return isinstance(preset, dict) and "lorakit_record" in data and preset.get("command") == "export"


def looks_merged(path: Path) -> bool:
    """config.json plus whole weights: every shard of an index, else every *.safetensors, else *.bin."""
    if not (path / "config.json").is_file():
        return False
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = {path / s for s in json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()}
        except (OSError, ValueError, KeyError, AttributeError, TypeError, RecursionError):
            return False
    else:
        shards = set(path.glob("*.safetensors"))
    if shards:
        return all(safetensors_problem(s) is None for s in shards)
    return any(f.stat().st_size > 0 for f in path.glob("*.bin") if f.name != "training_args.bin")


class _Interrupts:
    """Which forwarded signals reached lorakit while ms-swift ran.

    launch.run installs its own handlers for the run and restores ours afterwards, so a handler
    of ours would never see them; the wakeup fd does: Python's C-level handler writes each
    signal's number to it whatever Python handler is installed. A merge that traps SIGTERM and
    exits 0 must not count as a success.
    """

    def __init__(self) -> None:
        self.caught: list[int] = []
        self._fds: Optional[tuple[int, int]] = None
        self._old = -1

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._fds = (r, w)
            self._old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fds is None:
            return
        signal.set_wakeup_fd(self._old)
        r, w = self._fds
        try:
            data = os.read(r, 4096)
        except BlockingIOError:
            data = b""
        os.close(r)
        os.close(w)
        self.caught = [n for n in data if n in [int(s) for s in SIGNALS]]


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C/SIGTERM while renaming: a swap cut in half leaves the target missing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _verdict(plan: OutputPlan, code: int, caught: list[int]) -> int:
    if caught and code == 0:
        name = signal.Signals(caught[0]).name
        report.note(f"merge interrupted ({name}) but ms-swift exited 0: not trusting {plan.write_to}")
        return 128 + caught[0]
    if code == 0 and not looks_merged(plan.write_to):
        report.note(f"ms-swift exited 0 but {plan.write_to} has no config.json and whole weights")
        return 1
    return code


def _remove(path: Path) -> None:
    """Remove a file, a link (not what it points to) or a directory tree; missing is fine."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _swap(plan: OutputPlan) -> None:
    old = _sibling(plan.target, OLD_SUFFIX)
    _remove(old)  # lorakit's own leftover, and the target exists (plan_output checked)
    plan.target.rename(old)
    try:
        plan.write_to.rename(plan.target)
    except OSError as exc:
        try:
            old.rename(plan.target)  # put the previous model back before saying what failed
        except OSError as back:
            # Both models are whole, neither where it belongs: keep both and say where.
            raise EnvironmentProblem(
                f"could not move the merged model into {plan.target} ({exc.strerror}), nor put the previous "
                f"one back ({back.strerror}): the new model is in {plan.write_to}, the previous one in {old}",
                hint=f"keep one of them: mv {old} {plan.target} (or mv {plan.write_to} {plan.target})",
            ) from None
        raise
    _remove(old)


def _failed(plan: OutputPlan, code: Optional[int]) -> None:
    """Remove what this merge wrote: the temporary sibling, or a target that did not exist before."""
    wrote = plan.write_to.exists() or plan.write_to.is_symlink()
    if wrote:
        try:
            _remove(plan.write_to)
        except OSError as exc:
            report.note(f"could not remove {plan.write_to}: {exc.strerror}")
            wrote = False  # not removed: say nothing about it below
    if code is None:  # an exception is on its way to the user; it says what happened
        return
    if plan.replacing:
        removed = f"removed the temporary {plan.write_to}; " if wrote else ""
        report.note(f"merge failed (exit {code}); {removed}{plan.target} is untouched")
    else:
        report.note(f"merge failed (exit {code})" + (f"; removed the partial output {plan.target}" if wrote else ""))


def run_guarded(plan: OutputPlan, run: Callable[[], int]) -> int:
    """Run the merge. Under --force swap the result into place only if it exited 0 without an
    interrupt and looks whole; whatever fails, remove what this merge wrote and nothing else."""
    if plan.replacing:
        _remove(plan.write_to)  # lorakit's own leftover from an interrupted --force merge
    code: Optional[int] = None
    try:
        watch = _Interrupts()
        with watch:
            code = run()
        code = _verdict(plan, code, watch.caught)
        if code == 0 and plan.replacing:
            with _signals_held():
                try:
                    _swap(plan)
                except OSError as exc:
                    report.note(f"could not move the merged model into {plan.target}: {exc.strerror}")
                    code = 1
        return code
    finally:
        if code != 0:
            with _signals_held():
                _failed(plan, code)
