"""`lorakit merge`: a LoRA checkpoint -> `swift export --merge_lora true` into a new dir.

--adapters is a local checkpoint, run or output dir (lorakit picks the checkpoint), or a hub
adapter id that ms-swift downloads (mergepick.hub_adapter): rendered as given, checked as far as
anything is local. Flags after `--` go to ms-swift; --dry-run prints text, sh or json.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, List, Optional

import typer
import yaml

from lorakit import checkpoints, exports, mergeguard, mergehub, mergepick, preflight, record, report, swiftflags
from lorakit.cli import common as c
from lorakit.cli.run import check_or_exit, emit, output_options, print_or_launch
from lorakit.errors import EXIT_USER, LorakitError
from lorakit.job import Job
from lorakit.names import normalise_arg_key
from lorakit.render import render, shell_text
from lorakit.values import as_bool

EXAMPLES = """
Examples:

  lorakit merge --adapters output

  lorakit merge --adapters output/v0-20260101-120000 --pick best --dry-run

  lorakit merge --adapters output/v0-20260101-120000/checkpoint-100 --output-dir merged --force

  lorakit merge --adapters swift/test_bert --output-dir merged   (a hub adapter ms-swift downloads)

  lorakit merge --adapters output --dry-run --format json -- --max_shard_size 2GB
"""

# No path in it: a comment line is pasteable only while nothing in it can end the line.
EXISTS_COMMENT = (
    "# The --output_dir below exists, and ms-swift refuses to write into an existing dir: move it\n"
    "# away first (lorakit merge --force, without --dry-run, replaces it only after a successful merge).\n"
)

PickOpt = Annotated[Optional[str], typer.Option(
    "--pick", help="From a run or output dir: the newest run's 'last' checkpoint (default), or its 'best' (lowest loss).")]
FormatOpt = Annotated[Optional[str], typer.Option(
    "--format", help="With --dry-run: text | sh | json (default text).")]
SwiftFlagsArg = Annotated[Optional[List[str]], typer.Argument(
    metavar="[-- SWIFT_FLAGS...]", show_default=False,
    help="`swift export` flags for ms-swift, after `--` (e.g. --max_shard_size 2GB).")]

FORMATS = ("text", "sh", "json")  # one export on this machine: sbatch and swift-yaml do not fit
# ms-swift flags lorakit merge sets itself, from its own options
OWN_FLAGS = {"adapters": "--adapters", "output_dir": "--output-dir"}


@dataclass(frozen=True)
class _Source:
    """What --adapters named, made ready to render and to guard."""

    adapters: str  # as rendered: the absolute checkpoint-N dir, or the hub id as given
    target: Path  # where the merged model must end up
    protect: dict  # paths the output must never replace -> what they are
    base: Optional[preflight.Base]  # None: the hub adapter's args.json names it, after the download
    hub: Optional[mergehub.HubDownload] = None


def _one_adapter(given: List[str]) -> str:
    """One adapter per merge, as ms-swift's export takes (swift/pipelines/train/tuner.py:390
    `assert ... len(args.adapters) == 1`): a second --adapters replaced the first without a word
    (ms-swift #2904 passed two, the first with a trailing comma)."""
    if len(given) > 1:
        shown = " ".join(shlex.quote(g) for g in given)
        raise LorakitError(f"--adapters was given {len(given)} times ({shown}): a merge takes one adapter",
                           hint="merge one adapter per run (lorakit merge --adapters CKPT), then merge the next into "
                                "the result with --model MERGED")
    return given[0]


def merge(
    ctx: typer.Context,
    adapters: Annotated[List[str], typer.Option(
        help="A checkpoint dir (holding adapter_config.json), a run dir (vN-...), a training output dir, "
             "or a hub adapter id (Org/name) that ms-swift downloads.")],
    pick: PickOpt = None,
    model: Annotated[Optional[str], typer.Option(
        help="Base model to merge into. Default: the one the checkpoint was trained on (its args.json).")] = None,
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", help=(
        "Default: <checkpoint>-merged, as ms-swift does (for a hub adapter: beside its download, in the hub cache)."))] = None,
    force: Annotated[bool, typer.Option("--force", help=(
        "Replace an earlier merged model (or an empty dir) at the output dir, only after a successful merge."))] = False,
    preset: Annotated[str, typer.Option("--preset", "-p", help="An export preset (built-in: merge).")] = "merge",
    set_: c.SetOpt = None,
    swift_version: c.SwiftVersionOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and print the command; launch nothing.")] = False,
    fmt: FormatOpt = None,
    strict: c.StrictOpt = False,
    grace: c.GraceOpt = 30.0,
    swift_flags: SwiftFlagsArg = None,
) -> int:
    """Merge a trained LoRA adapter into its base model with `swift export`; flags after `--` go to ms-swift."""
    fmt = _format(fmt, dry_run)
    extra = _extra_flags(ctx, list(swift_flags or []))
    opts = c.JobOptions(preset, model=model, sets=set_ or [], extra=extra, swift_version=swift_version)
    _refuse_own_flags(opts)
    value = mergepick.require_path(_one_adapter(adapters), "--adapters")
    hub = mergepick.hub_adapter(value)
    source = _local(opts, value, pick, output_dir) if hub is None else _hub(opts, hub, pick, output_dir)
    base, target = source.base, source.target
    plan, warnings = _preflight(base, source.target, force, source.protect)
    # --dry-run prints what a user may paste: the final dir, never the temporary one (the next
    # --force removes that as its own leftover).
    write_to = plan.target if dry_run else plan.write_to
    job = _export_job(opts, source.adapters, (str(write_to), "--output-dir" if output_dir else "default"))
    report.note(_merging_line(source, job, output_dir))
    if plan.replacing and not dry_run:
        report.note(f"{target} exists: merging into {plan.write_to}, swapped in only after success (--force)")
    elif plan.replacing:
        report.note(f"{target} exists: without --dry-run, --force merges into {plan.write_to} and swaps it "
                    "in only after success; the command below writes to the final dir, so move it away first")
    report.print_findings(warnings)
    findings = check_or_exit(job, strict, here=not dry_run)
    if strict and warnings:
        report.note("not launching: warnings (--strict)")
        return EXIT_USER
    if dry_run:
        return emit(_dry_run_text(fmt, job, warnings + findings, plan.replacing))
    code = mergeguard.run_guarded(plan, lambda: print_or_launch(job, dry=False, grace=grace))
    if code == 0:
        # ms-swift refuses an existing output dir, so the record can only follow a success
        _write_record(target, job, _recorded_base(source, target))
        _print_success(target)
    return code


def _refuse_own_flags(opts: c.JobOptions) -> None:
    """`--set output_dir=X` and a preset's output_dir were replaced without a word by the
    default <checkpoint>-merged (as `-- --output_dir` is refused): lorakit merge renders
    --adapters and --output_dir itself, the paths mergeguard protects."""
    from lorakit import presets, swiftenv

    for item in opts.sets:
        key = item.partition("=")[0].strip().removeprefix("args.")
        spec = _swift_flag(f"--{key}") if key else None
        if spec is not None and spec.name in OWN_FLAGS:
            raise LorakitError(f"merge: --set {item}: lorakit merge passes ms-swift's --{spec.name} itself",
                               hint=f"give it as lorakit's {OWN_FLAGS[spec.name]} option")
    data = presets.load(opts.preset, major=swiftenv.target(opts.swift_version).major).data
    args = (data.get("args") or {}) if data.get("command") == "export" else {}  # else: _export_job refuses it
    for name, option in OWN_FLAGS.items():
        if args.get(name) is not None:
            raise LorakitError(f"merge: preset {opts.preset!r} sets {name}: lorakit merge passes ms-swift's "
                               f"--{name} itself", hint=f"delete {name} from the preset; give it as lorakit's {option} option")


def _format(fmt: Optional[str], dry_run: bool) -> str:
    """train's rules (output_options), for the formats one merge on this machine has."""
    if fmt is not None and fmt not in FORMATS:
        what = "lorakit merge prints text, sh or json" if fmt in exports.FORMATS else "unknown format"
        raise LorakitError(f"--format {fmt!r}: {what}", hint="one of: " + ", ".join(FORMATS))
    return output_options(fmt, False, dry_run)


def _swift_flag(option: str) -> Optional[swiftflags.FlagSpec]:
    """The `swift export` flag `option` means (argparse's abbreviations too) in a major lorakit
    knows; None when it is none, or ambiguous."""
    name = normalise_arg_key(option)
    for major in swiftflags.available_majors():
        try:
            flags = swiftflags.load_flags(major, "export")
        except ValueError:
            continue
        found, how = swiftflags.resolve(flags, name)
        if found is not None and how != "ambiguous":
            return flags[found]
    return None


def _extra_flags(ctx: typer.Context, tokens: list[str]) -> list[str]:
    """The ms-swift flags after `--`: a flag first, no lorakit option among them, none of the
    flags lorakit merge sets from its own options, and a value for each flag that needs one
    (the pre-flight reads --model before the flag checks run)."""
    if tokens and not tokens[0].startswith("--"):
        raise LorakitError(f"merge: unexpected {tokens[0]!r}: ms-swift flags go after `--`, each as --flag VALUE",
                           hint="e.g. lorakit merge --adapters CKPT -- --max_shard_size 2GB")
    known = [opt for param in ctx.command.params for opt in getattr(param, "opts", ()) if opt.startswith("--")]
    for token in tokens:
        option = token.partition("=")[0]
        if not option.startswith("--") or option == "--":
            continue
        spec = _swift_flag(option)
        if spec is None and option in known:
            raise LorakitError(f"merge: {option} comes after `--`, so it would go to ms-swift, which has no such flag",
                               hint=f"put {option} before `--`: it is a lorakit option")
        if spec is not None and spec.name in OWN_FLAGS:
            raise LorakitError(f"merge: {option} after `--`: lorakit merge passes ms-swift's --{spec.name} itself",
                               hint=f"give it as lorakit's {OWN_FLAGS[spec.name]} option, before `--`")
    for key, value in c.parse_extra(tokens):
        spec = _swift_flag(key)
        if spec is not None and value is True and spec.type != "bool":
            raise LorakitError(f"merge: --{key} after `--` has no value", hint=f"write --{key} VALUE")
    return tokens


def _local(opts: c.JobOptions, value: str, pick: Optional[str], output_dir: Optional[str]) -> _Source:
    chosen, reason, skipped = mergepick.pick(value, pick or "last")
    checkpoint = chosen.path  # resolved checkpoint-N, never the last-checkpoint link (moves on every save)
    for line in skipped:
        report.note(line)
    report.note(f"picked {checkpoint}: {reason}")
    # Absolute: ms-swift takes a relative path that does not exist for a hub id and fails ~30 s
    # later with a network error.
    base = _base(_export_job(opts, str(checkpoint)), chosen)
    return _Source(str(checkpoint), mergeguard.output_for(checkpoint, output_dir),
                   {checkpoint: "the adapter checkpoint"}, base)


def _hub(opts: c.JobOptions, adapter: str, pick: Optional[str], output_dir: Optional[str]) -> _Source:
    """A hub adapter: rendered as given; ms-swift downloads it (and its base model, unless --model)."""
    if pick is not None:
        raise LorakitError(f"--pick {pick} chooses among the checkpoints of a local run; hub adapter {adapter} is one adapter",
                           hint="drop --pick, or pass a local run or output dir")
    job = _export_job(opts, adapter)
    download = mergehub.hub_download(adapter, use_hf=_use_hf(job))
    report.note(f"--adapters {adapter} is not a local path: a hub adapter, which ms-swift downloads from {download.hub}")
    base = None
    if job.args.get("model"):
        base = preflight.resolve_base(str(job.args["model"]), job.source_of("args.model") or "--model")
        report.note("the adapter's weights come from the hub, so lorakit cannot check them before the download")
    else:
        report.note("the base model (named by the adapter's args.json) and the adapter's weights come from "
                    "the hub, so lorakit cannot check them before the download")
    target = mergehub.hub_output_for(download, output_dir)
    return _Source(adapter, target, {download.cache: f"the download of hub adapter {adapter}"}, base, download)


def _use_hf(job: Job) -> bool:
    """ms-swift's base_args.py: `--use_hf` or USE_HF in the environment it runs with."""
    env = render(job, os.environ).child_env(os.environ)
    return bool(as_bool(job.args.get("use_hf"))) or bool(as_bool(env.get("USE_HF", "0")))


def _merging_line(source: _Source, job: Job, output_dir: Optional[str]) -> str:
    where = f"-> {source.target}"
    if source.hub is None:
        return f"merging into {source.base.model} (from {source.base.source}) {where}; rendering for {job.swift_source}"
    into = (f"into {source.base.model} (from {source.base.source})" if source.base
            else "into the base model its args.json names")
    default = "" if output_dir else " (ms-swift's default for a hub adapter: beside its download)"
    return f"merging {source.adapters} {into} {where}{default}; rendering for {job.swift_source}"


def _dry_run_text(fmt: str, job: Job, findings: list, replacing: bool) -> str:
    """The export train prints in that format; an output dir that exists gets the comment."""
    command = render(job, os.environ)
    if fmt == "json":
        return exports.json_text(job, command, findings)
    if fmt == "sh":
        shebang, rest = exports.sh_script(job, command).split("\n", 1)
        return shebang + "\n" + (EXISTS_COMMENT if replacing else "") + rest
    return (EXISTS_COMMENT if replacing else "") + shell_text(command)


def _recorded_base(source: _Source, target: Path) -> dict:
    """The base model for the record. A hub adapter's comes from its args.json, which ms-swift
    copies into the merged model (model/utils.py save_checkpoint)."""
    if source.base is not None:
        return {"model": source.base.model, "source": source.base.source}
    try:
        data = json.loads((target / "args.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        data = None
    model = data.get("model") if isinstance(data, dict) else None
    return {"model": model if isinstance(model, str) else None,
            "source": f"args.json of hub adapter {source.adapters}"}


def _write_record(target: Path, job: Job, base: dict) -> Path:
    """MERGED/lorakit-run.yaml for the model where it ended up: under --force ms-swift wrote to a
    temporary sibling, which the record must not name. The base model goes in too: without
    --model ms-swift took it from the checkpoint's args.json, so the command does not say it."""
    final = replace(job, args={**job.args, "output_dir": str(target)})
    path = record.write_merge_record(target, final, render(final, os.environ))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["base_model"] = base
    return record.write(path, data)


def _export_job(opts: c.JobOptions, adapters: str, output: Optional[tuple] = None) -> Job:
    extra = [("args.adapters", [adapters], "--adapters")]
    if output is not None:
        extra.append(("args.output_dir", *output))
    job = c.job_from_options(opts, extra)
    if job.command != "export":
        raise LorakitError(
            f"preset {job.preset!r} runs `swift {job.command}`, not `swift export`",
            hint="use the built-in 'merge' preset or one that extends it",
        )
    mergeguard.refuse_exist_ok(job.args)
    if as_bool(job.args.get("merge_lora", True)) is False:
        raise LorakitError(f"merge_lora is {job.args['merge_lora']!r}: `swift export` would then merge nothing",
                           hint="drop merge_lora (the merge preset sets it to true)")
    return job


def _base(job: Job, chosen: checkpoints.Checkpoint) -> preflight.Base:
    """--model (or the preset's model) wins, as in ms-swift; else what the checkpoint names."""
    if job.args.get("model"):
        return preflight.resolve_base(str(job.args["model"]), job.source_of("args.model") or "--model")
    info = checkpoints.base_model_of(chosen)
    return preflight.resolve_base(info.get("model"), info.get("source") or f"{chosen.path}: no args.json")


def _preflight(base: Optional[preflight.Base], target: Path, force: bool, protect: dict) -> tuple:
    """Before anything starts (--dry-run too): exit 2 for a GPTQ/AWQ base or an output that must
    not be replaced, 1 for a disk too small; the plan and any warnings otherwise. No base: a hub
    adapter's, which only the download names."""
    protect = dict(protect)
    if base is not None and base.local:
        protect[base.local] = "the base model"
    warnings = preflight.check_quantization(base) if base is not None else []
    plan = mergeguard.plan_output(target, force=force, protect=protect)
    disk_note = preflight.check_disk(base, plan.write_to) if base is not None else None
    if disk_note:
        report.note(disk_note)
    return plan, warnings


def _print_success(target: Path) -> None:
    """Where the model is (stderr), and Python that loads it (stdout, pasteable)."""
    report.note(f"merged model saved in {target}; load it with transformers:")
    path = repr(str(target))  # a Python string literal, whatever the path holds
    typer.echo("from transformers import AutoModelForCausalLM, AutoTokenizer")
    typer.echo(f"model = AutoModelForCausalLM.from_pretrained({path}, dtype='auto')")
    typer.echo(f"tokenizer = AutoTokenizer.from_pretrained({path})")


merge.__doc__ = (merge.__doc__ or "") + "\n" + EXAMPLES.replace("\n\n", "\n\n\b\n")
