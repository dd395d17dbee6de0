"""`lorakit import SCRIPT.sh`: an ms-swift shell script -> a preset, then the checks on it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from lorakit import report
from lorakit.cli import common as c
from lorakit.errors import EXIT_USER, LorakitError
from lorakit.findings import ERROR, INFO, Finding, sort_findings

ScriptArg = Annotated[Path, typer.Argument(help="An ms-swift shell script (swift sft|pt|rlhf|export|infer|deploy|eval).")]
OutOpt = Annotated[Optional[str], typer.Option("--output", "-o", help="Write the preset here (default: stdout).")]
ExtendsOpt = Annotated[Optional[str], typer.Option("--extends", help="A built-in to extend: only the differences are written.")]
SelectOpt = Annotated[Optional[int], typer.Option("--select", help="Import only the Nth swift command of the script (1 = the first).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing -o file.")]
VersionOpt = Annotated[Optional[str], typer.Option("--swift-version", help="Read and write flag names for ms-swift 3 or 4 (default: the installed one).")]


# the lorakit command that runs a preset of each swift command (cli/app.py)
RUNS = {"sft": "train", "export": "merge", "rlhf": "rlhf", "infer": "infer", "deploy": "deploy", "eval": "eval"}


def import_script(
    script: ScriptArg,
    output: OutOpt = None,
    extends: ExtendsOpt = None,
    select: SelectOpt = None,
    swift_version: VersionOpt = None,
    force: ForceOpt = False,
    strict: c.StrictOpt = False,
) -> int:
    """Turn an ms-swift shell script into a preset, report how bash really runs it, check it.

    Several swift commands: one preset each (PRESET-1.yaml, PRESET-2.yaml), or --select N.

    \b
    Examples:
      lorakit import train.sh -o my.yaml
      lorakit import train.sh --extends zero2 -o my.yaml
      lorakit import run_all.sh --select 2 --swift-version 3
    """
    from lorakit import importer, presets, shellscript, swiftenv

    if output is not None and output.endswith(("/", os.sep)):  # Path() would drop the slash that says "a folder"
        raise LorakitError(f"-o {output}: is a directory", hint=f"give a file name: -o {output}preset.yaml")
    output = Path(output) if output is not None else None
    target = swiftenv.target(swift_version)
    text = _read(script)
    read = shellscript.read_script(text, str(script))
    calls = _chosen(read, script, select)
    base = (_extends_ref(extends, output), presets.load(extends, key="--extends", major=target.major)) if extends else None
    done = [importer.import_call(call, major=target.major, name=str(script), extends=base) for call in calls]
    outputs = _outputs(output, len(done), force, script)
    findings = list(read.findings) + [f for one in done for f in one.findings]
    findings += _skipped(read, calls, select, str(script))
    written = _written_by(read, target.major, str(script))
    failed = False
    for one, path in zip(done, outputs):
        body = importer.to_yaml(one, str(script))
        if path is None:
            typer.echo(("---\n" if len(done) > 1 else "") + body, nl=False)
        else:
            c.write_user_file(path, body, f"-o {path}: cannot write the preset",
                              hint="choose another -o, or leave -o out to print the preset")
            report.note(f"wrote {path} (swift {one.call.command}, line {one.call.line} of {script})"
                        + (f"; see it run: lorakit {RUNS[one.call.command]} -p {path} --dry-run"
                           if one.call.command in RUNS else ""))
        checked = _checks(body, path, script, swift_version, f"the imported preset (swift {one.call.command}, "
                          f"line {one.call.line})" if len(done) > 1 else "the imported preset")
        checked = _written_before(checked, one, [(d, w) for d, w in written if w.number < one.call.number], path)
        failed |= c.blocking(checked, strict)
        findings += checked
    findings = sort_findings(findings)
    report.print_findings(findings)
    failed |= c.blocking(findings, strict)
    report.note(("imported; not launchable as it stands" if failed else "imported") + f": rendering for {target.source}")
    return EXIT_USER if failed else 0


def _extends_ref(extends: str, output: Path | None) -> str:
    """A built-in by name; a preset file as the written preset will find it: `extends:` is read
    relative to the file that says it (presets.locate), absolute when the preset goes to stdout."""
    from lorakit import presets

    if not presets._looks_like_path(extends):
        return extends
    found = presets.locate(extends, key="--extends")
    if output is None:
        return str(found)
    return os.path.relpath(found, output.resolve().parent)


# ms-swift's example scripts are a few KB; a file this big is a log, a dataset or a binary, and
# bashlex over 50 MB runs for minutes
MAX_SCRIPT_BYTES = 1 << 20


def _read(script: Path) -> str:
    try:
        with script.open("rb") as f:
            data = f.read(MAX_SCRIPT_BYTES + 1)
    except OSError as exc:
        raise LorakitError(f"{script}: cannot read the script: {exc.strerror}",
                           hint="give the path of an ms-swift shell script") from None
    if len(data) > MAX_SCRIPT_BYTES:
        raise LorakitError(f"{script}:1: over {MAX_SCRIPT_BYTES >> 20} MiB: not a shell script of swift commands",
                           hint="give the script that runs `swift sft …` (lorakit import reads scripts up to 1 MiB)")
    if b"\0" in data:  # bash refuses such a file: "cannot execute binary file"
        line = data[:data.index(b"\0")].count(b"\n") + 1
        raise LorakitError(f"{script}:{line}: a NUL byte: this is a binary file, not a shell script",
                           hint="give the shell script itself (bash refuses to run a file with NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise LorakitError(f"{script}:{line}: not UTF-8 text", hint="save the script as UTF-8") from None


def _chosen(read, script: Path, select: int | None):
    from lorakit.importer import IMPORTABLE

    unread = [f for f in read.findings if f.code in ("script.swift_module", "script.swift_in_string",
                                                     "script.swift_command")]
    if not read.calls and unread:
        raise LorakitError(f"{script}:{unread[0].message.removeprefix('line ')}", hint=unread[0].hint)
    if not read.calls:
        raise LorakitError(f"{script}:1: no swift command in the script (swift sft|pt|rlhf|export|infer|deploy|eval)",
                           hint="lorakit import reads the `swift sft …` command of a training script")
    if select is not None:
        call = next((c for c in read.calls if c.number == select), None)
        listing = ", ".join(f"{c.number}: swift {c.command} (line {c.line})" for c in read.calls)
        if call is None:
            raise LorakitError(f"{script}: --select {select}: the script has {len(read.calls)} swift command(s)"
                               + (" and --select counts from 1" if select < 1 else ""), hint=listing)
        if call.command not in IMPORTABLE:
            raise LorakitError(f"{script}:{call.line}: swift {call.command} is not a command a lorakit preset runs "
                               f"({', '.join(IMPORTABLE)})", hint=listing)
        return [call]
    calls = [call for call in read.calls if call.command in IMPORTABLE]
    if not calls:
        first = read.calls[0]
        raise LorakitError(f"{script}:{first.line}: swift {first.command} is not a command a lorakit preset runs "
                           f"({', '.join(IMPORTABLE)}), and the script has no other",
                           hint=f"a lorakit preset runs swift {', swift '.join(IMPORTABLE)}")
    return calls


def _skipped(read, calls, select, name: str) -> list[Finding]:
    if select is not None:
        return []
    from lorakit.importer import IMPORTABLE

    return [Finding(INFO, "import.skipped", f"line {call.line}: swift {call.command} is not imported: a lorakit "
                    f"preset runs {', '.join(IMPORTABLE)}", file=name)
            for call in read.calls if call not in calls]


def _same_file(a: Path, b: Path) -> bool:
    """A hard link to the script is the script: resolve() tells only symlinks apart."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _outputs(output: Path | None, count: int, force: bool, script: Path) -> list[Path | None]:
    if output is None:
        return [None] * count
    paths = [output] if count == 1 else [output.with_name(f"{output.stem}-{i}{output.suffix or '.yaml'}")
                                          for i in range(1, count + 1)]
    for path in paths:  # `-o train.sh --force` would replace the script by its preset: never asked for
        if path.exists() and (path.resolve() == script.resolve() or _same_file(path, script)):
            other = script.with_suffix(".yaml")
            other = other if not _same_file(other, script) else script.with_name(f"{script.stem}-preset.yaml")
            raise LorakitError(f"-o {path}: is the script being imported: not overwritten, even with --force",
                               hint=f"write the preset to another file: -o {other}")
    for path in paths:  # before anything is written: a second file failing must not leave the first
        if path.is_dir():
            raise LorakitError(f"-o {path}: is a directory", hint=f"give a file name: -o {path / 'preset.yaml'}")
        if not path.parent.is_dir():
            raise LorakitError(f"-o {path}: the folder {path.parent} does not exist",
                               hint=f"create it first (mkdir -p {path.parent}), or choose another -o")
    existing = [str(p) for p in paths if p.exists() or p.is_symlink()]
    if existing and not force:
        raise LorakitError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}: not overwritten",
                           hint="pass --force to overwrite, or choose another -o")
    return paths


# ms-swift's output dir when a run names none: output/<model name> under the working directory
# (sft_args.py _init_output_dir); `output` covers it, as every run dir lies below it.
DEFAULT_OUTPUT = {"sft": "output", "pt": "output", "rlhf": "output"}
# path findings about a value that may be what an earlier command of the script writes
NOT_THERE_YET = ("missing", "not_hub_id")


def _written_by(read, major: int, name: str) -> list[tuple[str, object]]:
    """(output dir, the call that writes it) for each swift command of the script, --select or not."""
    from lorakit import importer

    out = []
    for call in read.calls:
        if call.command not in importer.IMPORTABLE + ("pt",):
            continue
        try:
            # swift pt parses sft's TrainArguments
            table = importer.swiftflags.load_flags(major, "sft" if call.command == "pt" else call.command)
            args = importer.read_flags(call, table, major, name)[0]
        except LorakitError:
            continue
        where = args.get("output_dir") or DEFAULT_OUTPUT.get(call.command)
        if isinstance(where, str) and where.strip():
            out.append((os.path.normpath(os.path.expanduser(where)), call))
    return out


def _under(value, folder: str) -> bool:
    text = os.path.normpath(os.path.expanduser(value))
    return text == folder or text.startswith(folder.rstrip(os.sep) + os.sep)


def _written_before(found: list[Finding], one, outputs, path: Path | None) -> list[Finding]:
    """A later command of a script reads what an earlier one writes (`swift export --adapters
    output/v0-…/checkpoint-100` after `swift sft --output_dir output`): not there before the script
    runs, so not an error of the import; said as such."""
    if not outputs:
        return found
    args = one.preset.get("args") or {}
    out = []
    for f in found:
        key = f.key.removeprefix("args.")
        values = args.get(key) if f.code.startswith("paths.") and f.code.endswith(NOT_THERE_YET) else None
        values = [values] if isinstance(values, str) else values if isinstance(values, list) else []
        maker = next(((d, call) for d, call in outputs for v in values if isinstance(v, str) and _under(v, d)), None)
        if maker is None:
            out.append(f)
            continue
        folder, call = maker
        out.append(Finding(INFO, "import.written_earlier", f"{key} {' '.join(map(str, values))} lies under "
                           f"{folder}, which swift {call.command} (line {call.line}) writes: not there before the "
                           "script runs, so not checked now",
                           hint=f"once that run has finished, lorakit validate -p {path or 'PRESET'} checks it",
                           key=f.key, file=f.file))
    return out


def _checks(body: str, path: Path | None, script: Path, swift_version: str | None, said: str) -> list[Finding]:
    """The checks `lorakit validate -p PRESET` runs (the same functions), on the written preset,
    or on a private copy of it when the preset went to stdout."""
    from lorakit.checks import run_checks
    from lorakit.fixups import apply_fixups

    if path is not None:
        return _checked(str(path), swift_version, run_checks, apply_fixups)
    with tempfile.TemporaryDirectory(prefix="lorakit-import-") as folder:
        copy = Path(folder) / f"{script.stem}.yaml"
        copy.write_text(body, encoding="utf-8")
        found = _checked(str(copy), swift_version, run_checks, apply_fixups)
    return [Finding(f.level, f.code, f.message.replace(str(copy), said), f.hint.replace(str(copy), said), f.key,
                    said if f.file == str(copy) else f.file) for f in found]


def _checked(preset: str, swift_version: str | None, run_checks, apply_fixups) -> list[Finding]:
    try:
        job = apply_fixups(c.job_from_options(c.JobOptions(preset, swift_version=swift_version)))
    except LorakitError as exc:  # the preset lorakit wrote does not load: say so as a finding
        # the finding names the file already: without this, "the imported preset: the imported preset: …"
        message = exc.message.removeprefix(f"{preset}: ").removeprefix(f"{Path(preset).resolve()}: ")
        return [Finding(ERROR, "preset.invalid", message, hint=exc.hint or "", file=preset)]
    return run_checks(job)
