"""The proof for `lorakit import`: for every script of the corpus (tests/data/scripts), bash runs
what lorakit read, and ms-swift's own parser reads the script's command line and the imported
preset's rendered command line to the same namespace, with the same launch env.

ms-swift is imported once per version (it costs seconds): every command line of the corpus goes
to one subprocess for 4.6.0 (this venv) and one for 3.12.6 ($LORAKIT_SWIFT3_PYTHON).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, swift3_python
from lorakit import importer, presets, swiftflags
from lorakit.cli.common import JobOptions, job_from_options
from lorakit.render import render
from lorakit.scriptfaults import ENV_WORD
from lorakit.shellscript import _without_final_continuation, read_script

CORPUS = REPO / "tests" / "data" / "scripts"
SCRIPTS = sorted(CORPUS.glob("*.sh"))
# the flags of the 2.x script are not ms-swift 3/4 flags at all: the original is compared with
# these names put right, as the import says it did
OLD = {"--model_id_or_path": "--model", "--sft_type": "--tuner_type", "--lora_target_modules": "--target_modules"}
# the argument a CRLF continuation leaves (broken_crlf.sh): like an env word after the command, an
# argument no preset can hold, reported as an error (test_what_no_preset_holds_is_left_over)
LEFT_OVER = ("\r",)
# a built-in each script is also imported over (--extends), to prove "only the differences" loses nothing
EXTENDS = {"zero2_exec.sh": "zero2", "device_map_json.sh": "ddp_device_map", "multinode.sh": "zero2",
           "v3_train_type.sh": "zero2", "train_then_merge.sh": "merge", "exports_vars.sh": "single"}

# ms-swift's parser, driven as scripts/swift_parse_check.py does (launcher rewriting, then
# parse_known_args on HfArgumentParser), for many (command, argv) at once; answers the whole namespace
DRIVER = r"""
import contextlib, io, json, sys
from gen_swift_flags import args_class, build_parser
from swift_parse_check import ParseRefused, _refuse, launcher_argv
parsers, out = {}, []
for command, argv in json.load(sys.stdin):
    if command not in parsers:
        parsers[command] = build_parser(args_class(command))
        parsers[command].error = _refuse
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ns, rest = parsers[command].parse_known_args(launcher_argv(argv))
        out.append({"exit": 0, "remaining": rest, "namespace": vars(ns)})
    except ParseRefused as exc:
        out.append({"exit": 2, "error": str(exc)})
print(json.dumps(out, default=repr))
"""


def major_of(path: Path) -> int:
    return 3 if path.name.startswith("v3_") else 4


@dataclass
class Case:
    label: str
    major: int
    command: str
    original: list[str]
    rendered: list[str]
    script_env: dict[str, str]
    rendered_env: dict[str, str]


def build_cases(folder: Path) -> list[Case]:
    cases = []
    for path in SCRIPTS:
        read = read_script(path.read_bytes().decode(), path.name)
        major = major_of(path)
        for call in read.calls:
            if call.command not in importer.IMPORTABLE:
                continue
            bases = [None] + ([EXTENDS[path.name]] if path.name in EXTENDS else [])
            for base in bases:
                if base is not None and presets.load(base).data.get("command") != call.command:
                    continue
                extends = (base, presets.load(base, major=major)) if base else None
                done = importer.import_call(call, major=major, name=path.name, extends=extends)
                preset = folder / f"{path.stem}-{call.number}-{base or 'alone'}.yaml"
                preset.write_text(importer.to_yaml(done, path.name), encoding="utf-8")
                job = job_from_options(JobOptions(str(preset), swift_version=str(major)), env={})
                command = render(job, {})
                assert command.unset == ()
                # an env word after `swift sft` is an argument no preset can hold: reported as an
                # error (test_what_no_preset_holds_is_left_over proves ms-swift refuses it)
                original = [OLD.get(a.text, a.text) for a in call.args if a.text not in LEFT_OVER
                            and not ENV_WORD.match(a.text)]
                cases.append(Case(f"{path.name}#{call.number}" + (f" --extends {base}" if base else ""), major,
                                  call.command, original, command.argv[2:], call.env, command.env))
                assert command.argv[:2] == ["swift", call.command]
    return cases


def parse(python: str, argvs: list[tuple[str, list[str]]]) -> list[dict]:
    out = subprocess.run([python, "-c", DRIVER], input=json.dumps(argvs), capture_output=True, text=True,
                         timeout=900, cwd=REPO / "scripts")
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def comparable(namespace: dict, major: int, command: str) -> dict:
    """ms-swift json-loads a JSON flag's text in __post_init__ (swift/utils/utils.py
    json_parse_to_dict): '{"use_reentrant":false}' and '{"use_reentrant": false}' are one value."""
    flags = swiftflags.load_flags(major, command)
    out = dict(namespace)
    for key, value in namespace.items():
        spec = flags.get(key)
        if spec is not None and spec.type == "json" and isinstance(value, str) and value.lstrip().startswith("{"):
            out[key] = json.loads(value)
    return out


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[Case]:
    return build_cases(tmp_path_factory.mktemp("imported"))


def check_version(cases: list[Case], python: str, major: int) -> int:
    mine = [c for c in cases if c.major == major]
    answers = parse(python, [(c.command, argv) for c in mine for argv in (c.original, c.rendered)])
    for i, case in enumerate(mine):
        before, after = answers[2 * i], answers[2 * i + 1]
        assert after["exit"] == 0, (case.label, after)
        assert before["exit"] == 0, (case.label, before)
        assert after["remaining"] == before["remaining"], case.label
        assert comparable(after["namespace"], major, case.command) == \
            comparable(before["namespace"], major, case.command), case.label
        assert case.rendered_env == case.script_env, case.label
    return len(mine)


def test_ms_swift_4_reads_each_script_and_its_preset_alike(cases):
    assert check_version(cases, sys.executable, 4) >= 23


def test_ms_swift_3_reads_each_3x_script_and_its_preset_alike(cases):
    assert check_version(cases, swift3_python(), 3) >= 3


def test_the_comparison_would_see_a_difference(cases):
    """Guards the proof itself: one changed value is a different namespace."""
    case = next(c for c in cases if c.label == "zero2_exec.sh#1")
    changed = [("sft", case.original), ("sft", [*case.rendered[:-1], "zero3"])]
    before, after = parse(sys.executable, changed)
    assert before["namespace"]["deepspeed"] == "zero2" and after["namespace"]["deepspeed"] == "zero3"


def test_the_2x_names_are_refused_by_ms_swift_4_as_written():
    """Why the 2.x script is compared with its names put right: as written, ms-swift 4 leaves them over."""
    call = read_script((CORPUS / "v2_names.sh").read_bytes().decode(), "v2_names.sh").calls[0]
    [answer] = parse(sys.executable, [("sft", [a.text for a in call.args])])
    assert [r for r in answer["remaining"] if r.startswith("--")] == list(OLD)


@pytest.mark.parametrize("name, left", [("broken_nproc_after.sh", ["NPROC_PER_NODE=2"]), ("broken_crlf.sh", ["\r"])])
def test_what_no_preset_holds_is_left_over(name, left):
    """ms-swift #3681: `NPROC_PER_NODE=2` after `swift sft` reaches ms-swift as an argument, as does
    the '\\r' a CRLF line leaves; ms-swift leaves both over (then raises remaining_argv): the
    import's errors are right to call them arguments, not the environment."""
    call = read_script((CORPUS / name).read_bytes().decode(), name).calls[0]
    [answer] = parse(sys.executable, [("sft", [a.text for a in call.args])])
    assert answer["remaining"] == left
    assert "NPROC_PER_NODE" not in call.env


@pytest.mark.parametrize("name, source, target", [("v3_train_type.sh", 3, 4), ("zero2_exec.sh", 4, 3)])
def test_a_script_imported_for_the_other_major_keeps_every_value(tmp_path, name, source, target):
    """The script read by its own ms-swift as written, its import rendered for the other major read
    by that one: each flag the script names holds the same value under that major's name
    (train_type <-> tuner_type, metric <-> eval_metric, save_safetensors <-> safe_serialization)."""
    path = CORPUS / name
    call = read_script(path.read_bytes().decode(), path.name).calls[0]
    done = importer.import_call(call, major=target, name=path.name)
    preset = tmp_path / "other.yaml"
    preset.write_text(importer.to_yaml(done, path.name))
    rendered = render(job_from_options(JobOptions(str(preset), swift_version=str(target)), env={}), {}).argv[2:]
    python = {3: swift3_python, 4: lambda: sys.executable}
    [before] = parse(python[source](), [("sft", [a.text for a in call.args])])
    [after] = parse(python[target](), [("sft", rendered)])
    assert before["remaining"] == after["remaining"] == []
    old = comparable(before["namespace"], source, "sft")
    new = comparable(after["namespace"], target, "sft")
    named = {a.text[2:] for a in call.args if a.text.startswith("--")}
    renamed = {k: swiftflags.RENAMED.get(k, {}).get(target, k) for k in named}
    assert any(k != v for k, v in renamed.items())  # the case is about a rename
    assert {renamed[k]: old[k] for k in named} == {renamed[k]: new[renamed[k]] for k in named}


# --- bash agrees ---------------------------------------------------------------------------

RECORDER = """#!{python}
import json, os, sys
with open(os.environ["RECORD"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
"""


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_bash_parses_the_script(path):
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_bash_runs_what_lorakit_read(path, tmp_path):
    """Each script run by bash with a recording `swift` on PATH: the argv and the environment each
    swift command got are exactly what lorakit read. A variable the script does not set is given
    its own text (and `date` prints its own command line), so that bash's argv is the
    kept-as-written reading."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "swift").write_text(RECORDER.format(python=sys.executable))
    (bin_dir / "date").write_text("#!/bin/sh\necho '$(date' \"$@\"')'\n")
    for name in ("swift", "date"):
        (bin_dir / name).chmod(0o755)
    record = tmp_path / "record.jsonl"
    base = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "RECORD": str(record),
            "BASE_MODEL": "$BASE_MODEL", "RUN_NAME": "$RUN_NAME"}
    subprocess.run([shutil.which("bash"), str(path)], env=base, cwd=tmp_path, capture_output=True, timeout=60)
    runs = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    read = read_script(path.read_bytes().decode(), path.name)
    assert [r["argv"] for r in runs] == [[c.command, *(a.text for a in c.args)] for c in read.calls]
    own = {*base, "PWD", "SHLVL", "_", "OLDPWD", "LC_CTYPE"}  # bash's own, and Python's locale coercion (PEP 538)
    assert [{k: v for k, v in r["env"].items() if k not in own} for r in runs] == [c.env for c in read.calls]


def test_a_last_line_ending_in_a_backslash_is_read_as_bash_reads_it():
    """ms-swift #5328's script ends with `--deepspeed zero2 \\` and a newline: bash joins it with
    nothing (bash -n accepts it); bashlex said "unexpected EOF"."""
    text = "swift sft \\\n    --model Qwen/Qwen2.5-7B-Instruct \\\n    --deepspeed zero2 \\\n"
    assert subprocess.run(["bash", "-n"], input=text.encode(), capture_output=True).returncode == 0
    [command] = read_script(text, "s.sh").commands
    assert [w for w, *_ in command.words][-2:] == ["--deepspeed", "zero2"]
    # an escaped backslash at the end is a character, not a continuation: bash keeps it
    assert _without_final_continuation("echo a \\\\\\\\\n") == "echo a \\\\\\\\\n"
    assert _without_final_continuation("echo a \\\n") == "echo a  \n"


def test_bash_runs_script_arguments_and_export_n_as_lorakit_read(tmp_path):
    """Run without arguments (as the import reads it): ${1:-X} is X, "$@" is no word at all, and
    `export -n` takes a variable out of swift's environment."""
    path = tmp_path / "args.sh"
    path.write_text('#!/bin/bash\nMODEL=${1:-Qwen/Qwen2.5-0.5B-Instruct}\nexport CUDA_VISIBLE_DEVICES=0,1 '
                    'MAX_PIXELS=1003520\nexport -n CUDA_VISIBLE_DEVICES\nswift sft --model "$MODEL" \\\n'
                    '    --dataset "${2-data/train.jsonl}" "$@"\n', encoding="utf-8")
    [call] = read_script(path.read_text(), path.name).calls
    assert [a.text for a in call.args] == ["--model", "Qwen/Qwen2.5-0.5B-Instruct", "--dataset", "data/train.jsonl"]
    assert call.env == {"MAX_PIXELS": "1003520"}
    folder = tmp_path / "run"
    folder.mkdir()
    test_bash_runs_what_lorakit_read(path, folder)
