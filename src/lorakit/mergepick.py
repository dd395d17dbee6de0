"""Which checkpoint `lorakit merge` takes from a path, and why: the path itself when it is a
checkpoint, else the last (or best) complete checkpoint of the newest run under it that has one.
Incomplete checkpoints (lorakit.halfwritten) are never picked; passing one over is said.

Stdlib only, like checkpoints.py.
"""

from __future__ import annotations

import os
import shlex
import re
from pathlib import Path
from typing import Optional, Union

from lorakit import localpath
from lorakit.checkpoints import (
    RULE_TEXT,
    Checkpoint,
    Run,
    is_checkpoint,
    newest_first,
    run_of_checkpoint,
    scan,
    subdirs,
)
from lorakit.errors import LorakitError
from lorakit.halfwritten import ADAPTER_CONFIG, NOT_A_FILE

_WHERE = "pass a checkpoint-N directory, a run directory (vN-YYYYMMDD-HHMMSS) or a training output_dir"


def _label(run: Run, root: Path, runs: list[Run]) -> str:
    """The run's name, or its path under `root` when runs sit in several dirs (v0- is not unique)."""
    if len({r.path.parent for r in runs}) < 2:
        return run.name
    try:
        return str(run.path.relative_to(root.resolve())) if run.path != root.resolve() else run.name
    except ValueError:
        return str(run.path)


def _few(names: list[str], most: int = 5) -> str:
    """At most `most` names: an output dir of 20,000 empty runs made a 470 KB error line."""
    return ", ".join(names[:most]) + (f", ... ({len(names) - most} more)" if len(names) > most else "")


def _what_is_there(p: Path, runs: list[Run]) -> tuple[str, str]:
    """(what was found instead, hint) for the no-checkpoint error."""
    readable = p.is_dir() and os.access(p, os.R_OK | os.X_OK)
    names = sorted(c.name for c in p.iterdir()) if readable else []
    adapters = [k.name for k in subdirs(p) if is_checkpoint(k)]
    if (p / "config.json").is_file():
        return ("this looks like a merged model (config.json, no adapter_config.json), not an adapter checkpoint",
                "a merged model is already deployable; to merge again pass the checkpoint-N it came from")
    if adapters:  # only checkpoint-N dirs make a run, as in transformers' sort_checkpoints
        return f"it holds adapters not named checkpoint-N: {_few(adapters)}", "pass one of them directly"
    if runs or "logging.jsonl" in names or "args.json" in names:
        return (f"run {_few([r.name for r in runs]) or p.name} saved no checkpoint-N directory yet",
                "checkpoints appear every --save_steps; a run that stopped early may say why in logging.jsonl")
    if names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        return f"it holds {len(names)} entries, none an adapter checkpoint ({shown})", _WHERE
    return ("the directory is empty" if readable else "it is not a readable directory"), _WHERE


def _describe(run: Run, c: Checkpoint, how: str) -> str:
    n, half = len(run.complete), len(run.checkpoints) - len(run.complete)
    counted = f"{n} checkpoint{'s' if n != 1 else ''}" + (f", {half} incomplete" if half else "")
    of = f" of {run.max_steps}" if run.max_steps else ""
    if how == "last":
        return f"last checkpoint (step {c.step}{of}, {counted})"
    metric = f", eval_loss {c.eval_loss:.4g}" if c.eval_loss is not None else ""
    metric = metric or (f", loss {c.loss:.4g}" if c.loss is not None else "")
    return f"best checkpoint by {RULE_TEXT[run.best_rule]} (step {c.step}{metric}, {counted})"


_HALF_HINT = ("a save cut short (the run was killed or crashed while saving, or the disk filled up) "
              "leaves this; `lorakit checkpoints DIR` lists every checkpoint and marks the incomplete ones")


def require_path(value: str, option: str) -> str:
    """Refuse an empty or blank path: Path('') is the current directory, which nobody means."""
    if not value.strip():
        raise LorakitError(f"{option} {value!r} is empty: it would be taken as the current directory",
                           hint=f"{_WHERE}; for the current directory pass . explicitly")
    why = localpath.unusable(value)
    if why is not None:
        raise LorakitError(f"{option} {localpath.shown(value)} is no path: {why}", hint=_WHERE)
    return value


def _none_complete(p: Path, runs: list[Run]) -> LorakitError:
    root = p.resolve()
    lines = [f"\n  {c.path.relative_to(root) if root in c.path.parents else c.path}: {c.incomplete}"
             for run in reversed(runs) for c in run.checkpoints]
    odd = all(NOT_A_FILE in (c.incomplete or "") for run in runs for c in run.checkpoints)
    return LorakitError(f"no complete adapter checkpoint under {p}; each one is incomplete:" + "".join(lines),
                        hint=f"put the {ADAPTER_CONFIG} each run saved back in place" if odd else _HALF_HINT)


# A hub repo id as ModelScope and Hugging Face spell one: Org/name (letters, digits, - _ .).
_HUB_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Names only training output has: no hub adapter is called checkpoint-100 or v0-20260101-120000.
_OUTPUT_NAME = re.compile(r"checkpoint-[0-9]+|last-checkpoint|v[0-9]+-[0-9]{8}-[0-9]{6}.*")


def hub_adapter(value: str, cwd: Optional[Path] = None) -> Optional[str]:
    """`value` when ms-swift would download it as a hub adapter, else None (a local path).

    ms-swift 4.6.0 (arguments/base_args/base_args.py `_init_adapters`) passes each --adapters
    value to utils/hub_utils.py `safe_snapshot_download`: an existing path (or `id:sub` spelled
    `id/sub`) is local, a missing one starting with '/' is an error, anything else is downloaded,
    `id:sub` as the repo's subfolder. lorakit is stricter where a typo would become a download:
    a value clearly meant as a path (localpath.looks_local), one named like training output, or
    one that is no `Org/name` id stays local, and missing."""
    repo, _, sub = value.partition(":")
    # an existing Org/name (or Org/name/sub for `Org/name:sub`) has Org/ here: looks_local says so
    if localpath.looks_local(value, cwd) or localpath.exists(value, cwd):
        return None
    if not _HUB_ID.fullmatch(repo) or (":" in value and not sub.strip("/")):
        return None
    if _OUTPUT_NAME.fullmatch(repo.rsplit("/", 1)[1]):
        return None
    return value


def pick(path: Union[str, Path], how: str = "last") -> tuple[Checkpoint, str, list[str]]:
    """(Checkpoint, reason, skipped): the checkpoint itself, or the last/best complete one of the
    newest run under `path` that has one; `skipped` says which incomplete ones were passed over, why."""
    if how not in ("last", "best"):
        raise LorakitError(f"unknown --pick {how!r}", hint="use --pick last or --pick best")
    why = localpath.unusable(str(path))
    if why is not None:
        raise LorakitError(f"{localpath.shown(str(path))} is no path: {why}", hint=_WHERE)
    p = Path(path).expanduser()
    if p.is_symlink() and not p.exists():
        raise LorakitError(f"{p} is a broken link (to {os.readlink(p)})", hint=_WHERE)
    if not p.exists():
        text = str(path)
        bare = text.rstrip().rstrip(",")
        if text.rstrip().endswith(",") and bare.strip() and Path(bare).expanduser().exists():
            # ms-swift separates list values with spaces: "CKPT_A," "CKPT_B" (#2904)
            raise LorakitError(f"{p} does not exist: the trailing ',' is part of the path",
                               hint=f"drop the comma: --adapters {shlex.quote(bare)}")
        parts = [part.strip() for part in text.split(",")]
        if len(parts) > 1 and all(part and Path(part).expanduser().exists() for part in parts):
            raise LorakitError(f"{p} does not exist: it is {len(parts)} paths joined by ','; ms-swift separates list "
                               "values with spaces, and lorakit takes each path as its own --adapters",
                               hint=f"--adapters {shlex.quote(parts[0])} (merge takes one adapter; infer and deploy "
                                    "take the next as a second --adapters)")
        raise LorakitError(f"{p} does not exist", hint=_WHERE)
    if is_checkpoint(p):
        c = run_of_checkpoint(p).checkpoints[0]
        shown = Path(os.path.abspath(p)).name
        via = f"{shown} links to {c.path.name}, which" if p.is_symlink() else shown
        if c.incomplete:
            odd = NOT_A_FILE in c.incomplete
            raise LorakitError(f"{via} is not a complete adapter checkpoint ({c.path}): {c.incomplete}",
                               hint=f"put the {ADAPTER_CONFIG} the run saved there, or pass another checkpoint-N"
                               if odd else _HALF_HINT + "; pass an earlier checkpoint-N")
        return c, f"{via} is an adapter checkpoint (step {c.step})", []
    runs = newest_first(scan(p))
    run = next((r for r in runs if r.complete), None)
    if run is None and any(r.checkpoints for r in runs):
        raise _none_complete(p, runs)
    if run is None:
        found, hint = _what_is_there(p, runs)
        raise LorakitError(f"no adapter checkpoint found under {p}: {found}", hint=hint)
    if how == "best" and run.best is None:
        raise LorakitError(f"--pick best: run {run.name} logged no loss to rank its checkpoints by", hint=(
            "no trainer_state.json log_history or logging.jsonl losses were readable; "
            "use --pick last or pass a checkpoint-N directory"))
    chosen = run.complete[-1] if how == "last" else run.best
    reason = f"{'newest run' if len(runs) > 1 else 'run'} {_label(run, p, runs)}, {_describe(run, chosen, how)}"
    newer = runs[: runs.index(run)]
    if newer:
        names = ", ".join(_label(r, p, runs) for r in newer)
        reason += f"; skipped newer run{'s' if len(newer) > 1 else ''} without a complete checkpoint: {names}"
    # for "last" only the newer ones could have been picked instead; for "best", any of them
    passed = [c for r in newer for c in r.checkpoints] + \
        [c for c in run.checkpoints if c.incomplete and (how == "best" or c.step > chosen.step)]
    return chosen, reason, [f"skipped incomplete checkpoint {c.path}: {c.incomplete}" for c in passed]
