"""Find the adapter checkpoints an ms-swift run left behind, and pick the one to merge.

Stdlib only: `lorakit merge` and `lorakit checkpoints` run this before anything heavy is imported.

What ms-swift 4.6.0 writes (paths under site-packages/swift/):
- arguments/sft_args.py `_add_version` -> utils/utils.py `add_version_to_work_dir`: unless
  `--add_version false`, a run lives in OUTPUT/v{N}-{%Y%m%d-%H%M%S}, N = 1 + the highest `v(\\d+)`
  already in OUTPUT (`_get_version`), so N orders the runs of one output dir. The default OUTPUT
  is output/<model_suffix> (`_init_output_dir`), hence the search two levels down.
- pipelines/train/sft.py calls `args.save_args()` (base_args.py): RUN/args.json.
- trainers/mixin.py `_save_checkpoint`: RUN/checkpoint-{global_step}; `_save` copies RUN/args.json
  into it. transformers' Trainer._save_checkpoint adds trainer_state.json (TrainerState:
  global_step, max_steps, log_history, best_metric, best_global_step, best_model_checkpoint).
- tuners/base.py SwiftModel.save_pretrained puts a non-peft-format adapter under default/, which is
  why base_args.py `_check_is_adapter` also accepts default/adapter_config.json.
- utils/io_utils.py `update_last_checkpoint_symlink`: RUN/last-checkpoint -> checkpoint-N (relative
  link); with --create_checkpoint_symlink, pipelines/train/sft.py adds RUN/last and RUN/best.
- trainers/patcher.py `on_log`: every log dict goes to RUN/logging.jsonl with 'global_step/max_steps'
  but no 'step'; sft.py `_save_trainer_state` appends a last line holding log_history and
  best_model_checkpoint.
- pipelines/export/merge_lora.py: `swift export --merge_lora` writes RUN/checkpoint-N-merged, a
  full model next to the checkpoints, not an adapter.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional, Union

from lorakit.errors import LorakitError

# transformers' PREFIX_CHECKPOINT_DIR; the same anchored regex as mixin.py _rotate_flash_checkpoints,
# so checkpoint-N-merged / -peft exports and the last/best links are not counted as checkpoints.
_CKPT_RE = re.compile(r"^checkpoint-([0-9]+)$")
_RUN_RE = re.compile(r"^v([0-9]+)-([0-9]{8}-[0-9]{6})")
_ADAPTER_CONFIG = "adapter_config.json"
_MAX_DEPTH = 2
_BASE_KEYS = ("model", "model_type", "template", "torch_dtype")

RULE_TRAINER_STATE, RULE_EVAL, RULE_TRAIN = "best_model_checkpoint", "eval_loss", "loss"
_RULE_TEXT = {
    RULE_TRAINER_STATE: "trainer_state.json best_model_checkpoint",
    RULE_EVAL: "lowest eval_loss",
    RULE_TRAIN: "lowest training loss (no eval_loss logged)",
}
_WHERE = "pass a checkpoint-N directory, a run directory (vN-YYYYMMDD-HHMMSS) or a training output_dir"


@dataclass(frozen=True)
class Checkpoint:
    path: Path  # resolved: never a last-checkpoint/last/best link
    step: int
    run: Path
    loss: Optional[float]  # last training loss logged at or before `step`
    # eval_loss logged at exactly `step`: ms-swift defaults eval_steps to save_steps (sft_args.py
    # _init_eval_strategy) and HF evaluates before it saves, so an earlier eval scored other weights.
    eval_loss: Optional[float]
    mtime: float
    size_bytes: int  # adapter files only, not optimizer/scheduler state
    is_last: bool = False
    is_best: bool = False


@dataclass
class Run:
    path: Path
    version: Optional[int]  # N of vN-..., None for --add_version false
    timestamp: float  # from the vN-YYYYMMDD-HHMMSS name, else the dir's mtime
    checkpoints: list[Checkpoint] = field(default_factory=list)  # by step
    best: Optional[Checkpoint] = None
    best_rule: Optional[str] = None  # one of the RULE_* constants
    max_steps: Optional[int] = None

    @property
    def name(self) -> str:
        return self.path.name


def is_checkpoint(path: Union[str, Path]) -> bool:
    p = Path(path)
    return (p / _ADAPTER_CONFIG).is_file() or (p / "default" / _ADAPTER_CONFIG).is_file()


def _read_json(path: Path) -> Optional[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable, or half-written by a killed run
        return None
    return data if isinstance(data, dict) else None


def _subdirs(p: Path) -> list[Path]:
    try:
        return sorted(c for c in p.iterdir() if c.is_dir() and not c.is_symlink())
    except OSError:
        return []


def _mtime(p: Path) -> float:
    return p.stat().st_mtime if p.exists() else 0.0


def _number(v: object) -> Optional[float]:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None


@dataclass
class _History:
    """Losses by step, merged from logging.jsonl and every checkpoint's trainer_state.json."""

    loss: dict = field(default_factory=dict)
    eval_loss: dict = field(default_factory=dict)
    best_path: Optional[str] = None
    max_steps: Optional[int] = None

    def add(self, entry: object) -> None:
        if not isinstance(entry, dict):
            return
        step, total = entry.get("step"), None
        if not isinstance(step, int):  # logging.jsonl lines carry "global_step/max_steps": "12/100"
            m = re.match(r"^([0-9]+)/([0-9]+)$", str(entry.get("global_step/max_steps", "")))
            if not m:
                return
            step, total = int(m.group(1)), int(m.group(2))
        self.max_steps = total or self.max_steps
        for key, into in (("loss", self.loss), ("eval_loss", self.eval_loss)):
            if _number(entry.get(key)) is not None:
                into[step] = _number(entry.get(key))

    def add_summary(self, data: dict) -> None:
        """A trainer_state.json, or the last logging.jsonl line (sft.py `_save_trainer_state`)."""
        for entry in data.get("log_history") or []:
            self.add(entry)
        if isinstance(data.get("max_steps"), int) and data["max_steps"] > 0:
            self.max_steps = data["max_steps"]
        if isinstance(data.get("best_model_checkpoint"), str):
            self.best_path = data["best_model_checkpoint"]

    def loss_at(self, step: int) -> Optional[float]:
        logged = [s for s in self.loss if s <= step]
        return self.loss[max(logged)] if logged else None


def _history(run_dir: Path, ckpt_dirs: list[Path]) -> _History:
    hist = _History()
    try:
        lines = (run_dir / "logging.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        lines = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "log_history" in entry:
            hist.add_summary(entry)
        else:
            hist.add(entry)
    # trainer_state.json last, oldest first: its unrounded values win over logging.jsonl's rounded
    # ones (patcher.py add_train_message), and the newest best_model_checkpoint wins.
    for ckpt in ckpt_dirs:
        hist.add_summary(_read_json(ckpt / "trainer_state.json") or {})
    return hist


def _adapter_size(ckpt: Path) -> int:
    total = 0
    for d in (ckpt, ckpt / "default"):
        try:
            files = [f for f in d.iterdir() if f.name.startswith("adapter_") or f.name == "additional_config.json"]
            total += sum(f.stat().st_size for f in files if f.is_file())
        except OSError:
            pass
    return total


def _best_target(best_path: Optional[str], run_dir: Path) -> Optional[Path]:
    """HF stores an absolute path; match it by name inside this run so a copied or moved tree still
    works, but not a path into another run (a run resumed into a new vN dir inherits the old best)."""
    if not best_path or Path(best_path).parent.name not in (run_dir.name, ""):
        return None
    cand = run_dir / Path(best_path).name
    return cand.resolve() if cand.exists() else None


def _choose_best(ckpts: list[Checkpoint], hist: _History, run_dir: Path) -> tuple:
    target = _best_target(hist.best_path, run_dir)
    for c in ckpts:
        if c.path == target:
            return c, RULE_TRAINER_STATE
    for attr, rule in (("eval_loss", RULE_EVAL), ("loss", RULE_TRAIN)):
        scored = [c for c in ckpts if getattr(c, attr) is not None]
        if scored:  # ties go to the earlier step, as HF's strict `<` in _determine_best_metric does
            return min(scored, key=lambda c: (getattr(c, attr), c.step)), rule
    return None, None


def _build_run(run_dir: Path, found: list[tuple[int, Path]]) -> Run:
    """`found`: (step, resolved checkpoint dir) pairs, sorted by step."""
    run_dir = run_dir.resolve()
    hist = _history(run_dir, [p for _, p in found])
    plain = [
        Checkpoint(p, s, run_dir, hist.loss_at(s), hist.eval_loss.get(s), _mtime(p), _adapter_size(p))
        for s, p in found
    ]
    best, rule = _choose_best(plain, hist, run_dir)
    ckpts = [replace(c, is_last=c is plain[-1], is_best=c is best) for c in plain]
    m = _RUN_RE.match(run_dir.name)
    version, stamp = (int(m.group(1)), m.group(2)) if m else (None, None)
    try:
        timestamp = datetime.strptime(stamp, "%Y%m%d-%H%M%S").timestamp() if stamp else _mtime(run_dir)
    except ValueError:
        timestamp = _mtime(run_dir)
    best_ckpt = next((c for c in ckpts if c.is_best), None)
    return Run(run_dir, version, timestamp, ckpts, best_ckpt, rule if best_ckpt else None, hist.max_steps)


def _checkpoint_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    # Sorted by the number, not the name: checkpoint-10 comes after checkpoint-4.
    found = [(int(m.group(1)), d.resolve()) for d in _subdirs(run_dir) for m in [_CKPT_RE.match(d.name)] if m]
    return sorted((s, d) for s, d in found if is_checkpoint(d))


def _run_of_checkpoint(path: Path) -> Run:
    """The run holding one checkpoint, narrowed to it; last/best are judged against the whole run."""
    real = path.resolve()
    found = _checkpoint_dirs(real.parent)
    if real not in [d for _, d in found]:  # a lone adapter dir, e.g. copied out and renamed
        state = _read_json(real / "trainer_state.json") or {}
        step = state.get("global_step")
        found = [(step if isinstance(step, int) else 0, real)]
    run = _build_run(real.parent, found)
    ckpt = next(c for c in run.checkpoints if c.path == real)
    return replace(run, checkpoints=[ckpt], best=ckpt if ckpt.is_best else None)


def _run_dirs(p: Path, depth: int = 0) -> Iterator[Path]:
    kids = _subdirs(p)
    is_run = bool(_RUN_RE.match(p.name)) or any(_CKPT_RE.match(k.name) and is_checkpoint(k) for k in kids)
    if is_run:
        yield p
    if depth >= _MAX_DEPTH:
        return
    for k in kids:  # inside a run only vN- dirs are runs (--add_version false and true mixed in one OUTPUT)
        if not k.name.startswith("checkpoint-") and not is_checkpoint(k) and (not is_run or _RUN_RE.match(k.name)):
            yield from _run_dirs(k, depth + 1)


def scan(path: Union[str, Path]) -> list[Run]:
    """Every run under `path` (a checkpoint, a run dir or an output root); [] where there is none."""
    p = Path(path).expanduser()
    if not p.is_dir():
        return []
    if is_checkpoint(p):
        return [_run_of_checkpoint(p)]
    return [_build_run(d, _checkpoint_dirs(d)) for d in _run_dirs(p)]


def newest_first(runs: list[Run]) -> list[Run]:
    """ms-swift numbers vN within one output dir only (`_get_version` looks at its siblings), so N
    orders the runs of one parent dir; runs under different parents (output/Qwen-A/v3-... and
    output/Qwen-B/v0-...) and --add_version false runs are ordered by time (the vN- name's
    timestamp, else the dir's mtime). A run's time counts as at least that of every lower vN
    beside it, so the two orders never disagree within one dir."""
    groups: dict[Path, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.path.parent if run.version is not None else run.path, []).append(run)
    keyed = []
    for group in groups.values():
        latest = -math.inf
        for run in sorted(group, key=lambda r: (r.version or 0, r.timestamp)):
            latest = max(latest, run.timestamp)
            keyed.append(((latest, run.version or 0, str(run.path)), run))
    return [run for _, run in sorted(keyed, key=lambda kr: kr[0], reverse=True)]


def _label(run: Run, root: Path, runs: list[Run]) -> str:
    """The run's name, or its path under `root` when runs sit in several dirs (v0- is not unique)."""
    if len({r.path.parent for r in runs}) < 2:
        return run.name
    try:
        return str(run.path.relative_to(root.resolve())) if run.path != root.resolve() else run.name
    except ValueError:
        return str(run.path)


def _what_is_there(p: Path, runs: list[Run]) -> tuple[str, str]:
    """(what was found instead, hint) for the no-checkpoint error."""
    readable = p.is_dir() and os.access(p, os.R_OK | os.X_OK)
    names = sorted(c.name for c in p.iterdir()) if readable else []
    adapters = [k.name for k in _subdirs(p) if is_checkpoint(k)]
    if (p / "config.json").is_file():
        return ("this looks like a merged model (config.json, no adapter_config.json), not an adapter checkpoint",
                "a merged model is already deployable; to merge again pass the checkpoint-N it came from")
    if adapters:  # only checkpoint-N dirs make a run, as in transformers' sort_checkpoints
        return f"it holds adapters not named checkpoint-N: {', '.join(adapters)}", "pass one of them directly"
    if runs or "logging.jsonl" in names or "args.json" in names:
        return (f"run {', '.join(r.name for r in runs) or p.name} saved no checkpoint-N directory yet",
                "checkpoints appear every --save_steps; a run that stopped early may say why in logging.jsonl")
    if names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        return f"it holds {len(names)} entries, none an adapter checkpoint ({shown})", _WHERE
    return ("the directory is empty" if readable else "it is not a readable directory"), _WHERE


def _describe(run: Run, c: Checkpoint, how: str) -> str:
    n = len(run.checkpoints)
    counted = f"{n} checkpoint{'s' if n != 1 else ''}"
    of = f" of {run.max_steps}" if run.max_steps else ""
    if how == "last":
        return f"last checkpoint (step {c.step}{of}, {counted})"
    metric = f", eval_loss {c.eval_loss:.4g}" if c.eval_loss is not None else ""
    metric = metric or (f", loss {c.loss:.4g}" if c.loss is not None else "")
    return f"best checkpoint by {_RULE_TEXT[run.best_rule]} (step {c.step}{metric}, {counted})"


def pick(path: Union[str, Path], how: str = "last") -> tuple[Checkpoint, str]:
    """(Checkpoint, reason): the checkpoint itself, or the last/best of the newest run under `path`."""
    if how not in ("last", "best"):
        raise LorakitError(f"unknown --pick {how!r}", hint="use --pick last or --pick best")
    p = Path(path).expanduser()
    if p.is_symlink() and not p.exists():
        raise LorakitError(f"{p} is a broken link (to {os.readlink(p)})", hint=_WHERE)
    if not p.exists():
        raise LorakitError(f"{p} does not exist", hint=_WHERE)
    if is_checkpoint(p):
        c = _run_of_checkpoint(p).checkpoints[0]
        shown = Path(os.path.abspath(p)).name
        via = f"{shown} links to {c.path.name}, which" if p.is_symlink() else shown
        return c, f"{via} is an adapter checkpoint (step {c.step})"
    runs = newest_first(scan(p))
    run = next((r for r in runs if r.checkpoints), None)
    if run is None:
        found, hint = _what_is_there(p, runs)
        raise LorakitError(f"no adapter checkpoint found under {p}: {found}", hint=hint)
    if how == "best" and run.best is None:
        raise LorakitError(f"--pick best: run {run.name} logged no loss to rank its checkpoints by", hint=(
            "no trainer_state.json log_history or logging.jsonl losses were readable; "
            "use --pick last or pass a checkpoint-N directory"))
    chosen = run.checkpoints[-1] if how == "last" else run.best
    reason = f"{'newest run' if len(runs) > 1 else 'run'} {_label(run, p, runs)}, {_describe(run, chosen, how)}"
    skipped = [_label(r, p, runs) for r in runs[: runs.index(run)]]
    if skipped:
        reason += f"; skipped newer run{'s' if len(skipped) > 1 else ''} without checkpoints: {', '.join(skipped)}"
    return chosen, reason


def base_model_of(checkpoint: Union[Checkpoint, str, Path]) -> dict:
    """model/model_type/template/torch_dtype and the file they came from ({} when none says)."""
    ckpt = Path(checkpoint.path if isinstance(checkpoint, Checkpoint) else checkpoint).resolve()
    run_dir = checkpoint.run if isinstance(checkpoint, Checkpoint) else ckpt.parent
    # args.json first: it keeps the model id as typed; peft's base_model_name_or_path is usually the
    # local snapshot path of the training machine.
    for f in (ckpt / "args.json", run_dir / "args.json"):
        data = _read_json(f) or {}
        if data.get("model"):
            return {**{k: data[k] for k in _BASE_KEYS if data.get(k) is not None}, "source": str(f)}
    for f in (ckpt / _ADAPTER_CONFIG, ckpt / "default" / _ADAPTER_CONFIG):
        data = _read_json(f) or {}
        if data.get("base_model_name_or_path"):
            return {"model": data["base_model_name_or_path"], "source": str(f)}
    return {}


def checkpoints_table(runs: list[Run]) -> list[dict]:
    """Rows for `lorakit checkpoints DIR`, oldest run first, as plain JSON-able dicts."""
    return [
        {"run": run.name, "checkpoint": c.path.name, "path": str(c.path), "step": c.step, "loss": c.loss,
         "eval_loss": c.eval_loss, "time": datetime.fromtimestamp(c.mtime).astimezone().isoformat(timespec="seconds"),
         "size": c.size_bytes, "last": c.is_last, "best": c.is_best}
        for run in reversed(newest_first(runs)) for c in run.checkpoints
    ]
