"""`lorakit train --resume`: the newest checkpoint a run can really resume from, across every
OUTPUT/vN-YYYYMMDD-HHMMSS/ run, and the refusals that would otherwise surface only after the
weights loaded (or never: a run that "resumes" and ends at once).

Stdlib only, like checkpoints.py: a dry-run with --resume reads JSON and file sizes, no torch.

Why lorakit and not ms-swift finds it: ms-swift takes `--resume_from_checkpoint PATH` only
(swift/pipelines/train/sft.py `_get_resume_checkpoint`), and transformers' own search
(trainer_utils.get_last_checkpoint) looks in one dir, while each ms-swift launch writes a new
vN dir (utils/utils.py `add_version_to_work_dir`), so the checkpoint is always one level further.

What "complete" means (transformers 5.x trainer.py, read for 4.6.0's pins):
- `_save_checkpoint` writes the model, then optimizer.pt + scheduler.pt
  (`_save_optimizer_and_scheduler`), rng_state.pth (rng_state_{rank}.pth with several ranks,
  `_save_rng_state`), and trainer_state.json last; `--save_only_model` writes the model only.
- `_load_optimizer_and_scheduler` loads them only if both optimizer.pt (or .bin, or an FSDP
  optimizer* dir) and scheduler.pt exist, and says nothing otherwise: a resume without them
  silently restarts Adam's moments and the learning-rate schedule. DeepSpeed keeps its optimizer
  in the checkpoint's global_step*/ dir instead.
- `_load_rng_state` only logs when its file is missing ("reproducibility is not guaranteed").
- With `--resume_only_model`, ms-swift skips both (trainers/mixin.py `_load_rng_state`,
  `_load_optimizer_and_scheduler`): the weights and trainer_state.json are enough.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from lorakit import checkpoints as ck
from lorakit import fullckpt
from lorakit.errors import LorakitError
from lorakit.halfwritten import _trainer_state_problem as trainer_state_problem
from lorakit.halfwritten import adapter_dir, checkpoint_problem
from lorakit.trainlog import number, read_json
from lorakit.values import as_bool, as_int

AUTO, IF_ANY = "auto", "if-any"
KEY = "resume_from_checkpoint"
# ms-swift 4.6.0's defaults, for a job that does not set them (swift/arguments/tuner_args.py
# TunerArguments; base_args.py BaseArguments.tuner_type; 3.x called it train_type).
DEFAULTS = {"lora_rank": 8, "lora_alpha": 32, "target_modules": ["all-linear"], "tuner_type": "lora"}
# this job's key -> (args.json keys, adapter_config.json key)
COMPARED = {"tuner_type": (("tuner_type", "train_type"), None), "lora_rank": (("lora_rank",), "r"),
            "lora_alpha": (("lora_alpha",), "lora_alpha"), "target_modules": (("target_modules",), None),
            "model": (("model",), None)}


def state_problem(ckpt: Path, *, model_only: bool, full: bool = False) -> Optional[str]:
    """Why the Trainer cannot resume from `ckpt` as it was saved, or None. full: a tuner_type
    full checkpoint, the model's own weights (lorakit.fullckpt) instead of an adapter."""
    whole = (fullckpt.weights_problem(ckpt) or trainer_state_problem(ckpt)) if full \
        else checkpoint_problem(ckpt, training=True)
    problem = whole or _step_problem(ckpt)
    if problem or model_only:
        return problem
    names = {p.name for p in _entries(ckpt)}
    optimizer = ({"optimizer.pt", "optimizer.bin"} & names
                 or any(n.startswith(("optimizer", "global_step")) and (ckpt / n).is_dir() for n in names))
    missing = [] if optimizer else ["optimizer.pt"]
    deepspeed = any(n.startswith("global_step") for n in names)
    if "scheduler.pt" not in names and not deepspeed:
        missing.append("scheduler.pt")
    if "rng_state.pth" not in names and not any(n.startswith("rng_state_") for n in names):
        missing.append("rng_state.pth")
    if not missing:
        return None
    if len(missing) == 3:
        return ("weights only, no optimizer, scheduler or RNG state (saved with save_only_model?): "
                "resume it with --set resume_only_model=true")
    return f"no {' or '.join(missing)} (the Trainer would restart them silently)"


def _step_problem(ckpt: Path) -> Optional[str]:
    """trainer_state.json's global_step must be a count: transformers' _inner_training_loop
    divides it (`global_step // num_update_steps_per_epoch`), so "5" fails after the weights
    loaded, and a negative or missing one skips no data and resumes at a step that never was."""
    step = step_of(ckpt).get("global_step")
    if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
        return None
    return f"trainer_state.json's global_step is {step!r}, not a count of steps (edited by hand?)"


def _entries(d: Path) -> list[Path]:
    try:
        return list(d.iterdir())
    except OSError:
        return []


@dataclass
class Search:
    """The outcome of looking under `where`: the checkpoint to resume, and what was passed over."""

    where: Path
    checkpoint: Optional[ck.Checkpoint] = None
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    runs: int = 0


def newest_complete(where: Path, *, model_only: bool = False, full: bool = False) -> Search:
    """Runs newest first (checkpoints.newest_first), each run's checkpoints by step, newest first;
    the first one that holds everything a resume loads. `where`: a checkpoint, run or output root."""
    found = Search(Path(where))
    runs = ck.newest_first(fullckpt.runs(where) if full else ck.scan(where))
    found.runs = len(runs)
    for run in runs:
        for c in reversed(run.checkpoints):
            problem = (None if full else c.incomplete) or state_problem(c.path, model_only=model_only, full=full)
            if problem is None:
                found.checkpoint = c
                return found
            found.skipped.append((c.path, problem))
    return found


def is_full(args: dict) -> bool:
    return str(args.get("tuner_type", args.get("train_type", "lora"))) == "full"


def step_of(ckpt: Path) -> dict[str, Any]:
    return read_json(ckpt / "trainer_state.json") or {}


def _modules(value: Any) -> Optional[frozenset]:
    """'[q_proj,k_proj]', 'q_proj k_proj', ['q_proj'] -> a set; None when nothing says."""
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else str(value).strip("[]").replace(",", " ").split()
    return frozenset(str(i).strip().strip("'\"") for i in items if str(i).strip())


def _same(key: str, want: Any, have: Any) -> bool:
    if key == "target_modules":
        return _modules(want) == _modules(have)
    if key == "model":
        paths = [Path(str(v)).expanduser() for v in (want, have)]
        if all(p.exists() for p in paths):
            return paths[0].resolve() == paths[1].resolve()
        return str(want).rstrip("/") == str(have).rstrip("/")
    if key in ("lora_rank", "lora_alpha"):  # args.json says 32.0 for a preset's 32
        try:
            return float(want) == float(have)
        except (TypeError, ValueError):
            return str(want) == str(have)
    return str(want) == str(have)


def _saved(ckpt: Path) -> tuple[dict, dict, str, str]:
    args_path = ckpt / "args.json" if (ckpt / "args.json").is_file() else ckpt.parent / "args.json"
    config_path = adapter_dir(ckpt) / "adapter_config.json"
    return read_json(args_path) or {}, read_json(config_path) or {}, str(args_path), str(config_path)


def mismatches(args: dict, ckpt: Path) -> list[str]:
    """Each setting of this job that the checkpoint was trained with otherwise."""
    saved, config, args_path, config_path = _saved(ckpt)
    out = []
    for key, (saved_keys, config_key) in COMPARED.items():
        if is_full(args) and is_full(saved) and key not in ("tuner_type", "model"):
            continue  # ms-swift saves the LoRA defaults in a full run's args.json too
        want = args.get(key, DEFAULTS.get(key))
        have, where = next(((saved[k], args_path) for k in saved_keys if saved.get(k) is not None), (None, ""))
        if have is None and config_key and config.get(config_key) is not None:
            have, where = config[config_key], config_path
        if want is None or have is None or _same(key, want, have):
            continue
        out.append(f"{key}: this job has {want!r}, the checkpoint was trained with {have!r} ({where})")
    return out


def _epochs(args: dict, saved: dict) -> Optional[float]:
    """This job's num_train_epochs, else the one the checkpoint's run had (args.json): the same
    default then. Not trainer_state.json's, which under max_steps is a derived count."""
    value = args.get("num_train_epochs", saved.get("num_train_epochs"))
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def refusals(args: dict, ckpt: Path) -> list[str]:
    """Every reason a resume of this job from `ckpt` cannot work, each with its fix."""
    state = step_of(ckpt)
    step = as_int(state.get("global_step")) or 0
    max_steps = as_int(args.get("max_steps"))
    out = []
    if max_steps is not None and max_steps > 0 and step >= max_steps:
        out.append(f"the checkpoint is at step {step} and this job's max_steps is {max_steps}: it would end "
                   f"at once (to train on, raise max_steps, e.g. --set max_steps={step + max_steps})")
    elif (max_steps is None or max_steps <= 0) and _epochs(args, _saved(ckpt)[0]) is not None:
        # a hand-edited "epoch": "x" says nothing (trainlog.number), not a traceback
        epoch, wanted = number(state.get("epoch")) or 0.0, _epochs(args, _saved(ckpt)[0])
        if epoch >= wanted - 1e-6:
            out.append(f"the checkpoint has trained {epoch:g} epoch(s) and this job's num_train_epochs is "
                       f"{wanted:g}: it would end at once (to train on, raise num_train_epochs)")
    if as_bool(args.get("resume_only_model")) and as_bool(args.get("ignore_data_skip")):
        saved_max = as_int(state.get("max_steps"))
        if saved_max is not None and (max_steps == saved_max or (max_steps is None and not out)):
            out.append(f"resume_only_model with ignore_data_skip and max_steps unchanged ({saved_max}): "
                       "ms-swift ends such a run at once (ms-swift #8383); set max_steps to the steps you "
                       "want this run to train, or drop ignore_data_skip")
    out += [m + " (a resume must train the same adapter: use the checkpoint's value, or start fresh "
                "without --resume)" for m in mismatches(args, ckpt)]
    return out


def check(args: dict, ckpt: Path, *, replayed: bool = False) -> None:
    """replayed: the job is a `train --from` record, which takes no --set, so the fixes that
    raise max_steps or num_train_epochs need the record turned into a preset first."""
    found = refusals(args, ckpt)
    if not found:
        return
    head = f"--resume {ckpt}: cannot resume this job from it"
    hint = None
    if replayed and any(f.startswith(("the checkpoint is at step", "the checkpoint has trained")) for f in found):
        hint = ("--from replays the record unchanged (it takes no --set): copy the record's `preset:` section "
                "into a preset, raise max_steps or num_train_epochs there, and run lorakit train -p THAT --resume")
    if len(found) == 1:
        raise LorakitError(f"{head}: {found[0]}", hint=hint)
    raise LorakitError(f"{head}:\n" + "\n".join(f"  - {f}" for f in found), hint=hint)


def _where(spec: str, job: Any) -> Path:
    from lorakit.record import output_dir

    if spec in (AUTO, IF_ANY):
        return Path(output_dir(job)).resolve()
    path = Path(spec).expanduser()
    if path.is_file():
        raise LorakitError(f"--resume {spec}: a file; --resume takes a checkpoint dir, a run dir or an output dir",
                           hint=f"--resume {shlex.quote(str(path.parent))} (the dir that holds it)")
    if not path.exists():
        raise LorakitError(f"--resume {spec}: no such file or directory",
                           hint="give a checkpoint, a run dir (vN-...) or an output dir; or --resume alone "
                                "for the newest complete checkpoint in this job's output dir")
    return path.resolve()


def _nothing(spec: str, found: Search) -> str:
    where = f"under {found.where}" if found.runs else f"in {found.where} (no ms-swift run there)"
    return f"--resume {spec}: no complete checkpoint {where}"


def _replayed(job: Any) -> bool:
    return any(str(v).startswith("record ") for v in job.sources.values())


def _same_place(job: Any, ran_in: Optional[str]) -> None:
    """`train --from RECORD --resume` elsewhere than the record ran: a relative output_dir (kept
    as typed, so the replay renders the same argv) would search, and ms-swift then write, another
    dir than the one whose checkpoints the record's run left. A cwd that is not on this machine
    (a record from another one) is not compared: the output dir was copied over, if at all."""
    from lorakit.record import output_dir

    out = Path(output_dir(job))
    if ran_in is None or out.is_absolute() or not Path(ran_in).is_dir():
        return
    there, here = (Path(ran_in) / out).resolve(), out.resolve()
    if there != here:
        raise LorakitError(f"--resume: the record ran in {ran_in}, where its output_dir {out} is {there}; "
                           f"from here it is {here}, so the resume would search and write there",
                           hint=f"cd {shlex.quote(ran_in)} and run it again")


def apply(job: Any, spec: str, *, ran_in: Optional[str] = None) -> Any:
    """The job with resume_from_checkpoint set to the checkpoint `spec` names (auto, if-any, or a
    path), after the refusals; with if-any and nothing to resume, the job as it was. ran_in: the
    cwd of the record a `--from` replays (_same_place)."""
    from dataclasses import replace

    from lorakit import report

    if spec in (AUTO, IF_ANY):
        _same_place(job, ran_in)

    if job.args.get(KEY) not in (None, "") and job.source_of(f"args.{KEY}").startswith("record"):
        report.note(f"--resume replaces the record's resume_from_checkpoint {job.args[KEY]}")
    elif job.args.get(KEY) not in (None, ""):
        raise LorakitError(f"--resume and resume_from_checkpoint {job.args[KEY]!r} ({job.source_of('args.' + KEY)}) "
                           "both say where to resume from", hint="give one of them")
    where = _where(spec, job)
    model_only, full = bool(as_bool(job.args.get("resume_only_model"))), is_full(job.args)
    explicit = spec not in (AUTO, IF_ANY) and (ck._CKPT_RE.match(where.name) if full else ck.is_checkpoint(where))
    found = newest_complete(where, model_only=model_only, full=full)
    for path, why in ([] if explicit else found.skipped):
        report.note(f"--resume: skipped {path}: {why}")
    if found.checkpoint is None:
        # the other kind's checkpoint (a LoRA job over a full run's, or the reverse): its refusal
        # says tuner_type, which "nothing to resume" would not
        other = newest_complete(where, model_only=model_only, full=not full).checkpoint
        if other is not None:
            check(job.args, other.path, replayed=ran_in is not None or _replayed(job))
        if explicit:
            raise LorakitError(f"--resume {spec}: this checkpoint cannot be resumed: {found.skipped[0][1]}",
                               hint=f"--resume {found.where.parent} takes the newest complete one of its run")
        weights = [path for path, why in found.skipped if why.startswith("weights only")]
        if spec == IF_ANY and weights:
            # save_only_model runs: a requeued job (launch.requeue runs --resume if-any) would
            # start from step 0 at every requeue, never saying why in its batch log
            raise LorakitError(f"--resume if-any: {weights[0]} holds weights only (save_only_model): starting "
                               "fresh would throw its training away",
                               hint="add --set resume_only_model=true to resume from the weights, or drop "
                                    "--resume to start fresh")
        if spec == IF_ANY:
            report.note(_nothing(spec, found) + ": starting fresh")
            return job
        hint = "drop --resume to start fresh, or --resume if-any to start fresh whenever there is nothing to resume"
        if spec in (AUTO, IF_ANY) and Path(spec).is_dir():  # the keyword won; the user may have meant the dir
            hint += f"; a dir named {spec} is here: --resume ./{spec} searches it"
        raise LorakitError(_nothing(spec, found), hint=hint)
    ckpt = found.checkpoint.path
    check(job.args, ckpt, replayed=ran_in is not None or _replayed(job))
    report.note(f"--resume: from {ckpt} (step {found.checkpoint.step})")
    return replace(job, args={**job.args, KEY: str(ckpt)},
                   sources={**job.sources, f"args.{KEY}": f"--resume {spec}"})
