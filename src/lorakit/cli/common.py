"""What train, validate and plan share: the job options, preset -> job, findings -> exit."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from dataclasses import dataclass, field, fields
from typing import Annotated, Any, List, Optional, Sequence

import typer

from lorakit import overrides as layers, presets, report, swiftenv
from lorakit.errors import LorakitError
from lorakit.findings import ERROR, WARNING, Finding
from lorakit.job import Job, build_job, from_environment
from lorakit.names import normalise_arg_key, version_spelling
from lorakit.spellout import respelled
from lorakit.values import as_finite_float

PresetOpt = Annotated[str, typer.Option("--preset", "-p", help="Built-in name or a YAML file.")]
ModelOpt = Annotated[Optional[str], typer.Option(help="ms-swift --model (hub id or local dir).")]
DatasetOpt = Annotated[Optional[List[str]], typer.Option(help="Dataset; repeat for several (replaces the preset's list).")]
OutputOpt = Annotated[Optional[str], typer.Option("--output-dir", help="ms-swift --output_dir.")]
GpusOpt = Annotated[Optional[str], typer.Option(help="GPU ids, e.g. 0,1,2,3 (-> CUDA_VISIBLE_DEVICES).")]
NprocOpt = Annotated[Optional[int], typer.Option("--nproc", help="Ranks per node (-> NPROC_PER_NODE).")]
RankOpt = Annotated[Optional[int], typer.Option("--lora-rank", help="LoRA rank.")]
AlphaOpt = Annotated[Optional[float], typer.Option("--lora-alpha", help="LoRA alpha.")]
TargetsOpt = Annotated[Optional[str], typer.Option("--target-modules", help="e.g. q_proj,v_proj or all-linear.")]
SetOpt = Annotated[Optional[List[str]], typer.Option("--set", help="KEY=VALUE (YAML value); KEY is an ms-swift flag or launch.KEY. Repeatable.")]
SwiftVersionOpt = Annotated[Optional[str], typer.Option("--swift-version", help="Render for ms-swift 3 or 4, or check against a minor like 3.10 (default: the installed one).")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")]
QuietOpt = Annotated[Optional[bool], typer.Option("--quiet", "-q", help="Do not print information findings (warnings and errors still are).")]
MAX_GRACE = 24 * 3600.0


def _grace(value: float) -> float:
    """nan would wait forever (every comparison with it is false) and a negative grace would
    SIGKILL at the first Ctrl-C: a checkpoint save needs a real, finite number of seconds."""
    if as_finite_float(value) is None or not 0 <= value <= MAX_GRACE:
        raise typer.BadParameter(f"{value!r} is not a number of seconds from 0 to {MAX_GRACE:.0f}; "
                                 "e.g. --grace 30 (the default)")
    return value


GraceOpt = Annotated[float, typer.Option(callback=_grace, help="Seconds between forwarding Ctrl-C/SIGTERM and SIGKILL.")]


@dataclass
class JobOptions:
    preset: str
    model: str | None = None
    dataset: list[str] | None = None
    output_dir: str | None = None
    gpus: str | None = None
    nproc: int | None = None
    lora_rank: int | None = None
    lora_alpha: float | None = None
    target_modules: str | None = None
    sets: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # ms-swift flags after `--`
    swift_version: str | None = None


# The options train, validate and plan share, declared once (see `with_job_args`).
SHARED_OPTIONS = {
    "model": ModelOpt, "dataset": DatasetOpt, "output_dir": OutputOpt, "gpus": GpusOpt, "nproc": NprocOpt,
    "lora_rank": RankOpt, "lora_alpha": AlphaOpt, "target_modules": TargetsOpt, "set_": SetOpt,
    "swift_version": SwiftVersionOpt, "quiet": QuietOpt,
}


@dataclass(frozen=True)
class JobArgs:
    """What the user gave of the shared options (None: not given)."""

    model: Optional[str] = None
    dataset: Optional[List[str]] = None
    output_dir: Optional[str] = None
    gpus: Optional[str] = None
    nproc: Optional[int] = None
    lora_rank: Optional[int] = None
    lora_alpha: Optional[float] = None
    target_modules: Optional[str] = None
    set_: Optional[List[str]] = None
    swift_version: Optional[str] = None
    quiet: Optional[bool] = None  # only shapes what is printed

    def given(self) -> list[str]:
        """The options given that shape the job, spelled as on the command line."""
        spelled = {"set_": "--set"}
        return [spelled.get(f.name, "--" + f.name.replace("_", "-")) for f in fields(self)
                if getattr(self, f.name) not in (None, [], False) and f.name != "quiet"]

    def options(self, preset: str, extra: list[str]) -> JobOptions:
        return JobOptions(preset, self.model, self.dataset, self.output_dir, self.gpus, self.nproc,
                          self.lora_rank, self.lora_alpha, self.target_modules, list(self.set_ or []),
                          list(extra), self.swift_version)


def with_job_args(command):
    """Give `command` the shared options: it declares one parameter `shared: JobArgs`, Typer
    sees SHARED_OPTIONS in its place, and the command gets them back as one JobArgs."""
    # eval_str resolves the module's string annotations as written; typing.get_type_hints would
    # wrap `X = None` parameters in Optional[] on Python 3.10, hiding Typer's Annotated metadata.
    signature = inspect.signature(command, eval_str=True)
    params = []
    for param in signature.parameters.values():
        if param.name == "shared":
            params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=hint)
                       for name, hint in SHARED_OPTIONS.items()]
        else:
            kind = inspect.Parameter.KEYWORD_ONLY if params and param.name != "ctx" else param.kind
            params.append(param.replace(kind=kind))

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        shared = JobArgs(**{name: kwargs.pop(name, None) for name in SHARED_OPTIONS})
        report.QUIET = bool(shared.quiet)
        return command(*args, shared=shared, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def parse_extra(tokens: list[str]) -> list[tuple[str, Any]]:
    """`-- --lora_rank 16 --dataset a b --use_rslora` -> [(key, value)], values as argparse sees them."""
    out: list[tuple[str, Any]] = []
    for token in tokens:
        if token.startswith("--") and len(token) > 2:
            key, eq, value = token[2:].partition("=")
            out.append((key, [value] if eq else []))
        elif not out:
            raise LorakitError(
                f"extra ms-swift flags: expected a --flag, got {token!r}",
                hint="write flags after '--', e.g. lorakit train -p zero2 -- --max_steps 10",
            )
        else:
            out[-1][1].append(token)
    # a bare flag is a boolean switch (`--use_rslora`); one value stays a string; several a list
    return [(k, True if not v else v[0] if len(v) == 1 else v) for k, v in out]


def _command_line(opts: JobOptions) -> list[tuple[str, Any, str, str]]:
    """(dotted key, value, who, as written) in increasing precedence: --set, typed options, then `--` flags."""
    out = [(*layers.parse_set(item), "--set", f"--set {item}") for item in opts.sets]
    typed = [
        ("args.model", opts.model, "--model"),
        ("args.dataset", opts.dataset, "--dataset"),
        ("args.output_dir", opts.output_dir, "--output-dir"),
        ("args.lora_rank", opts.lora_rank, "--lora-rank"),
        ("args.lora_alpha", opts.lora_alpha, "--lora-alpha"),
        ("args.target_modules", opts.target_modules, "--target-modules"),
    ]
    out += [(key, value, who, " ".join(f"{who} {_shown(v)}" for v in (value if isinstance(value, list) else [value])))
            for key, value, who in typed if value is not None]
    out += [(f"args.{normalise_arg_key(k)}", v, "-- extra flags", f"-- --{k}" + _written_value(v))
            for k, v in parse_extra(opts.extra)]
    return out


def _written_value(value: Any) -> str:
    """A `--` flag's value as the user can paste it back: attached where render attaches it."""
    from lorakit.swiftflags import attaches

    if value is True:
        return ""
    return f"={_shown(value)}" if isinstance(value, str) and attaches([value]) else f" {_shown(value)}"


def overrides(opts: JobOptions) -> list[tuple[str, Any, str]]:
    """(dotted key, value, who) in increasing precedence: --set, typed options, then `--` flags."""
    return [(key, value, who) for key, value, who, _ in _command_line(opts)]


def _shown(value: Any) -> str:
    from lorakit.swiftflags import _token

    return " ".join(_token(v) for v in value) if isinstance(value, (list, tuple)) else _token(value)


def _items(value: Any, split: bool = True) -> list[str]:
    """A value as ms-swift's argparse would get its tokens: a list, or (split) a comma string
    lorakit splits for a list flag (job.SPLIT_LIST_KEYS), each stripped."""
    values = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in values:
        text = _shown(v)
        out += [part.strip() for part in text.split(",")] if split and "," in text \
            and not text.lstrip().startswith("{") else [text.strip()]
    return [o for o in out if o]


def _one_reading(text: str) -> Any:
    """What argparse would make of one token, for comparing: a number (1e-4 == 0.0001, 08 == 8),
    a boolean word (string_to_bool: true/True/1/yes), a local path (absolute: ./a.jsonl == a.jsonl),
    else the text."""
    from lorakit import localpath
    from lorakit.values import FALSE_WORDS, TRUE_WORDS, as_finite_float

    lowered = text.lower()
    if lowered in TRUE_WORDS and lowered not in ("1",):
        return True
    if lowered in FALSE_WORDS and lowered not in ("0",):
        return False
    number = as_finite_float(text)
    if number is not None:
        return number
    return localpath.absolute(text) if localpath.looks_local(text) else text


def same_value(a: Any, b: Any, key: str) -> bool:
    """Whether two spellings give argparse the same value. Only a list flag lorakit splits
    (job.SPLIT_LIST_KEYS) and the GPU list are compared item by item: `system "a, b"` and `"a,b"`
    differ."""
    from lorakit.job import SPLIT_LIST_KEYS

    # the list flags lorakit splits, and the GPU list (job.py reads '0, 1' as '0,1')
    split = key == "launch.gpus" or key.removeprefix("args.") in SPLIT_LIST_KEYS
    left, right = _items(a, split), _items(b, split)
    if left == right:
        return True
    if len(left) != len(right):
        return False
    for x, y in zip(left, right):
        rx, ry = _one_reading(x), _one_reading(y)
        # '1' is true and 1 to a bool flag alike: a number 1/0 matches the boolean it spells
        if rx != ry and not ({type(rx), type(ry)} == {bool, float} and float(rx) == float(ry)):
            return False
    return True


def given_twice(opts: JobOptions, extra: Sequence[tuple[str, Any, str]] = (), major: int | None = None,
                command: str = "sft") -> list[Finding]:
    """One setting given twice on the command line with different values (`--set model=a --model
    b`, `--lora-rank 16 -- --lora_rank 32`, `deploy --port 8000 -- --port 8001`): the later (or a
    typed option) silently won; the user cannot have meant both (issue #11 section 7). The same
    value twice, however spelled (True / true / 1, 1e-4 / 0.0001, ./a.jsonl / a.jsonl), is harmless."""
    line = _command_line(opts)
    written = [w for w in line if w[2] != "-- extra flags"]
    # --gpus / --nproc beat launch.gpus / launch.nproc_per_node whatever the order (job.build_launch)
    written += [(key, value, who, f"{who} {value}") for key, value, who in
                (("launch.gpus", opts.gpus, "--gpus"), ("launch.nproc_per_node", opts.nproc, "--nproc"))
                if value is not None]
    # a command's own typed options (infer --infer-backend, deploy --port, eval --eval-dataset)
    written += [(key, value, who, f"{who} {_shown(value)}") for key, value, who in extra]
    written += [w for w in line if w[2] == "-- extra flags"]
    first: dict[str, tuple[Any, str]] = {}
    out = []
    for key, value, who, spelled in written:
        if key in first and not same_value(first[key][0], value, key):
            name, shown = key.removeprefix("args."), key
            if major is not None and key.startswith("args."):  # the target's own spelling (train_type on 3.x)
                from lorakit.names import spelled_for

                name = spelled_for(name, major, command)
                shown = f"args.{name}"
            out.append(Finding(ERROR, "flags.twice", f"{name} is set twice on the command line, to different values: "
                               f"{first[key][1]} and {spelled}", hint=f"keep one: write {name} once", key=shown,
                               file=who))
        first.setdefault(key, (value, spelled))
    return out


def _written(opts: JobOptions) -> dict[str, tuple[str, str]]:
    """The command line's names of flags one major renamed, as written (spellout.respelled)."""
    names = [(item.partition("=")[0].strip().removeprefix("args."), "--set") for item in opts.sets
             if not item.strip().startswith(("launch.", "env."))]
    names += [(key, "-- extra flags") for key, _ in parse_extra(opts.extra)]
    return {normalise_arg_key(k): (version_spelling(k), who) for k, who in names if version_spelling(k)}


def job_from_options(opts: JobOptions, extra: list[tuple[str, Any, str]] = (), *,
                     env: dict[str, str] | None = None) -> Job:
    """Preset + options (+ `extra` overrides that win over everything) -> Job."""
    env = dict(os.environ) if env is None else env
    target = swiftenv.target(opts.swift_version)
    layer = overrides(opts) + list(extra)
    resolved = layers.apply_overrides(presets.load(opts.preset, major=target.major), layer)
    said = given_twice(opts, extra, resolved.major, str(resolved.data.get("command") or "sft")) + respelled(
        _written(opts), major=resolved.major, command=resolved.data.get("command"))
    # a file's spelling the command line overrides is not what is rendered: not said
    replaced = {key for key, _, _ in layer}
    kept = [f for f in resolved.notes if not (f.code == "flags.respelled" and f.key in replaced)]
    if said or len(kept) != len(resolved.notes):
        resolved = dataclasses.replace(resolved, notes=[*kept, *said])
    return build_job(resolved, env, swift_major=target.major, swift_version=target.installed,
                     swift_source=target.source, gpus=opts.gpus, nproc=opts.nproc)


def blocking(findings: list[Finding], strict: bool) -> bool:
    levels = {ERROR, WARNING} if strict else {ERROR}
    return any(f.level in levels for f in findings)


def layout_note(job: Job) -> str:
    launch = job.launch
    parts = []
    if launch.gpus is not None and not launch.gpus.strip():
        parts.append(f"no GPU ({launch.device_var} empty, from {launch.gpus_source}: the CPU)")
    elif launch.gpus is not None and launch.gpu_ids is None:
        return f"GPU list {launch.gpus!r} from {launch.gpus_source} is not usable"
    elif launch.gpus is not None:
        parts.append(f"GPUs {launch.gpus} from {launch.gpus_source}")
    if launch.nproc_per_node is not None:
        rule, source = launch.nproc_rule, launch.nproc_source
        how = source if source in ("--nproc", from_environment("NPROC_PER_NODE")) else f"rule {rule!r} from {source}"
        parts.append(f"NPROC_PER_NODE={launch.nproc_per_node} ({how})")
    elif job.command == "sft":
        parts.append("one process (no NPROC_PER_NODE)")
    for name in ("nnodes", "node_rank", "master_addr", "master_port"):
        who = job.source_of(f"launch.{name}")
        if who.endswith(" in your environment"):
            parts.append(f"{who.split()[0]}={getattr(launch, name)} from your environment")
    return "; ".join(parts + [f"rendering for {job.swift_source}"])


from lorakit.errors import DISK_ERRNOS, write_failed  # noqa: E402,F401  (cli/app.py, progress.py import them here)


def write_user_file(path, text: str, what: str, hint: str) -> None:
    """Write a file the user named; a file this call created and could not finish is removed
    (a half-written preset is not what they asked for), a file that was there is left as is."""
    existed = os.path.lexists(path)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        if not existed:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise write_failed(what, exc, hint) from None
