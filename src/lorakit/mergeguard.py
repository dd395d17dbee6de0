"""Never lose work when merging: check the checkpoint, never overwrite without --force, and
with --force merge into a temporary sibling that replaces the old output only after success."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lorakit import report
from lorakit.errors import LorakitError

TMP_SUFFIX = ".lorakit-tmp"
OLD_SUFFIX = ".lorakit-old"


def checkpoint_dir(adapters: str) -> Path:
    path = Path(adapters).expanduser()
    if not path.exists():
        raise LorakitError(f"--adapters {adapters!r}: no such directory",
                           hint="point at a checkpoint dir, e.g. output/v0-.../checkpoint-100")
    path = path.resolve()
    if (path / "adapter_config.json").is_file() or (path / "default" / "adapter_config.json").is_file():
        return path
    raise LorakitError(
        f"--adapters {adapters!r}: {path} holds no adapter_config.json (nor default/adapter_config.json)",
        hint="point at a LoRA checkpoint dir such as output/v0-.../checkpoint-100",
    )


def output_for(checkpoint: Path, output_dir: str | None) -> Path:
    # ms-swift's own default for a merge is '<checkpoint>-merged' (export_args.py).
    if output_dir is None:
        return checkpoint.parent / f"{checkpoint.name}-merged"
    return Path(output_dir).expanduser().resolve()


@dataclass(frozen=True)
class OutputPlan:
    target: Path  # where the merged model must end up
    write_to: Path  # where ms-swift writes: the target, or a temporary sibling under --force


def plan_output(target: Path, *, force: bool) -> OutputPlan:
    if not target.exists():
        return OutputPlan(target, target)
    if not force:
        raise LorakitError(
            f"output dir {target} already exists; refusing to overwrite it",
            hint="pass --output-dir NEW_DIR, or --force to replace it after a successful merge",
        )
    return OutputPlan(target, target.with_name(target.name + TMP_SUFFIX))


def looks_merged(path: Path) -> bool:
    has_weights = any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
    return (path / "config.json").is_file() and has_weights


def run_guarded(plan: OutputPlan, run: Callable[[], int]) -> int:
    """Run the merge; swap a --force result into place only if it exited 0 and looks whole."""
    if plan.write_to == plan.target:
        return run()
    if plan.write_to.exists():
        shutil.rmtree(plan.write_to)  # lorakit's own leftover from an interrupted --force merge
    try:
        code = run()
        if code == 0 and not looks_merged(plan.write_to):
            report.note(f"ms-swift exited 0 but {plan.write_to} has no config.json and weights")
            code = 1
        if code == 0:
            old = plan.target.with_name(plan.target.name + OLD_SUFFIX)
            if old.exists():
                shutil.rmtree(old)  # lorakit's own leftover from a swap cut short
            plan.target.rename(old)
            plan.write_to.rename(plan.target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            report.note(f"merge failed (exit {code}); {plan.target} is untouched")
        return code
    finally:
        if plan.write_to.exists():
            shutil.rmtree(plan.write_to, ignore_errors=True)
