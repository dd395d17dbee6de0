"""Find the adapter checkpoints an ms-swift run left behind: runs, steps, losses, last and best
(lorakit.mergepick picks the one to merge from them).

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
- A resumed run (`--resume_from_checkpoint`, lorakit train --resume) is a new vN dir whose
  args.json names the checkpoint it resumed from: the chain `lorakit checkpoints` shows.
- trainers/patcher.py `on_log`: RUN/logging.jsonl, read with trainer_state.json by lorakit.trainlog.
- A save cut short (a killed run, a full disk) leaves a checkpoint-N that is not whole: it is
  listed, marked with why (lorakit.halfwritten), and never picked.
- pipelines/export/merge_lora.py: `swift export --merge_lora` writes RUN/checkpoint-N-merged, a
  full model next to the checkpoints, not an adapter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional, Union

from lorakit.halfwritten import ADAPTER_CONFIG as _ADAPTER_CONFIG
from lorakit.halfwritten import checkpoint_problem, has_adapter_files
from lorakit.trainlog import History, best_metric_of, read_history
from lorakit.trainlog import read_json as _read_json

# transformers' PREFIX_CHECKPOINT_DIR; the same anchored regex as mixin.py _rotate_flash_checkpoints,
# so checkpoint-N-merged / -peft exports and the last/best links are not counted as checkpoints.
_CKPT_RE = re.compile(r"^checkpoint-([0-9]+)$")
_RUN_RE = re.compile(r"^v([0-9]+)-([0-9]{8}-[0-9]{6})")
_MAX_DEPTH = 2
_BASE_KEYS = ("model", "model_type", "template", "torch_dtype")

RULE_TRAINER_STATE, RULE_EVAL, RULE_TRAIN = "best_model_checkpoint", "eval_loss", "loss"
RULE_TEXT = {
    RULE_TRAINER_STATE: "trainer_state.json best_model_checkpoint",
    RULE_EVAL: "lowest eval_loss",
    RULE_TRAIN: "lowest training loss (no eval_loss logged)",
}
# what `lorakit checkpoints` says after "best": the metric the rule ranked by
_MARK_TEXT = {RULE_EVAL: "lowest eval_loss", RULE_TRAIN: "lowest training loss: no eval logged"}


@dataclass(frozen=True)
class Checkpoint:
    path: Path  # resolved: never a last-checkpoint/last/best link
    step: int
    run: Path
    loss: Optional[float]  # training loss logged at exactly `step`, never a nearby step's
    # eval_loss logged at exactly `step`: ms-swift defaults eval_steps to save_steps (sft_args.py
    # _init_eval_strategy) and HF evaluates before it saves, so an earlier eval scored other weights.
    eval_loss: Optional[float]
    mtime: float
    size_bytes: int  # adapter files only, not optimizer/scheduler state
    is_last: bool = False  # the last complete checkpoint of its run
    is_best: bool = False
    incomplete: Optional[str] = None  # why the save is not whole (lorakit.halfwritten); never picked


@dataclass
class Run:
    path: Path
    version: Optional[int]  # N of vN-..., None for --add_version false
    timestamp: float  # from the vN-YYYYMMDD-HHMMSS name, else the dir's mtime
    checkpoints: list[Checkpoint] = field(default_factory=list)  # by step
    best: Optional[Checkpoint] = None
    best_rule: Optional[str] = None  # one of the RULE_* constants
    max_steps: Optional[int] = None
    best_by: Optional[str] = None  # the metric `best` was ranked by, in words
    # the checkpoint this run resumed from: its args.json's resume_from_checkpoint, which
    # ms-swift saves as an absolute path (sft_args.py __post_init__: to_abspath)
    resumed_from: Optional[str] = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def complete(self) -> list[Checkpoint]:
        return [c for c in self.checkpoints if c.incomplete is None]


def is_checkpoint(path: Union[str, Path]) -> bool:
    """An adapter dir, whole or half-saved: adapter_config.json or adapter weights, here or under
    default/. Whether it is whole is Checkpoint.incomplete."""
    return has_adapter_files(Path(path))


def subdirs(p: Path) -> list[Path]:
    try:
        return sorted(c for c in p.iterdir() if c.is_dir() and not c.is_symlink())
    except OSError:
        return []


def _mtime(p: Path) -> float:
    return p.stat().st_mtime if p.exists() else 0.0


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


def _choose_best(ckpts: list[Checkpoint], hist: History, run_dir: Path) -> tuple:
    """(best, rule, what it was ranked by) among complete checkpoints; (None, None, None)."""
    ckpts = [c for c in ckpts if c.incomplete is None]
    target = _best_target(hist.best_path, run_dir)
    for c in ckpts:
        if c.path == target:
            metric = best_metric_of(run_dir)
            return c, RULE_TRAINER_STATE, RULE_TEXT[RULE_TRAINER_STATE] + (f": {metric}" if metric else "")
    for attr, rule in (("eval_loss", RULE_EVAL), ("loss", RULE_TRAIN)):
        scored = [c for c in ckpts if getattr(c, attr) is not None]
        if scored:  # ties go to the earlier step, as HF's strict `<` in _determine_best_metric does
            return min(scored, key=lambda c: (getattr(c, attr), c.step)), rule, _MARK_TEXT[rule]
    return None, None, None


def _build_run(run_dir: Path, found: list[tuple[int, Path]]) -> Run:
    """`found`: (step, resolved checkpoint dir) pairs, sorted by step."""
    run_dir = run_dir.resolve()
    hist = read_history(run_dir, [p for _, p in found])
    plain = [
        Checkpoint(p, s, run_dir, hist.loss.get(s), hist.eval_loss.get(s), _mtime(p), _adapter_size(p),
                   incomplete=checkpoint_problem(p, training=bool(_CKPT_RE.match(p.name))))
        for s, p in found
    ]
    best, rule, best_by = _choose_best(plain, hist, run_dir)
    last = next((c for c in reversed(plain) if c.incomplete is None), None)
    ckpts = [replace(c, is_last=c is last, is_best=c is best) for c in plain]
    m = _RUN_RE.match(run_dir.name)
    version, stamp = (int(m.group(1)), m.group(2)) if m else (None, None)
    try:
        timestamp = datetime.strptime(stamp, "%Y%m%d-%H%M%S").timestamp() if stamp else _mtime(run_dir)
    except ValueError:
        timestamp = _mtime(run_dir)
    best_ckpt = next((c for c in ckpts if c.is_best), None)
    resumed = (_read_json(run_dir / "args.json") or {}).get("resume_from_checkpoint")
    return Run(run_dir, version, timestamp, ckpts, best_ckpt, rule if best_ckpt else None, hist.max_steps,
               best_by if best_ckpt else None, resumed if isinstance(resumed, str) and resumed else None)


def _checkpoint_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    # Sorted by the number, not the name: checkpoint-10 comes after checkpoint-4.
    found = [(int(m.group(1)), d.resolve()) for d in subdirs(run_dir) for m in [_CKPT_RE.match(d.name)] if m]
    return sorted((s, d) for s, d in found if is_checkpoint(d))


def run_of_checkpoint(path: Path) -> Run:
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
    kids = subdirs(p)
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
        return [run_of_checkpoint(p)]
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
         "size": c.size_bytes, "last": c.is_last, "best": c.is_best, "best_by": run.best_by if c.is_best else None,
         "incomplete": c.incomplete, "resumed_from": run.resumed_from}
        for run in reversed(newest_first(runs)) for c in run.checkpoints
    ]
