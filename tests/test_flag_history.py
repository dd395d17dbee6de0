"""The flag history (src/lorakit/data/swift_flag_history.json, scripts/gen_swift_history.py):
which released ms-swift minor first and last had each of ms-swift's own flags.

The shape and drift tests run anywhere. The ownership test imports ms-swift through
sys.executable (4.x) and LORAKIT_SWIFT3_PYTHON (3.x), like test_swiftflags.py's drift tests.
The regeneration test downloads ~20 ms-swift and ~13 transformers wheels (about 190 MB, about a
minute cold) and is marked `network`: it skips when pip cannot reach the index; deselect it with
`-m "not network"`. Set LORAKIT_SWIFT_WHEELS to a folder to keep the wheels between runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import regenerate_pinned, swift3_python
from lorakit import flaghistory as fh
from lorakit import swiftflags as sf

REPO = Path(__file__).resolve().parent.parent
HISTORY = REPO / "src" / "lorakit" / "data" / "swift_flag_history.json"
GENERATOR = REPO / "scripts" / "gen_swift_history.py"
# Read now, before the hermetic fixture points HOME at a temporary folder: a cache that survives.
DATA = json.loads(HISTORY.read_text(encoding="utf-8"))
LATEST = {major: fh.minor_of(sf.snapshot_version(major)) for major in (3, 4)}


def _snapshot(major: int) -> dict:
    return json.loads((REPO / "src" / "lorakit" / "data" / f"swift_flags_v{major}.json").read_text(encoding="utf-8"))


def _present(major: int, command: str, minor: str) -> set[str]:
    return {n for n in DATA["majors"][str(major)]["commands"][command]["flags"] if fh.present_in(major, command, n, minor)}


def test_every_released_minor_is_covered():
    assert fh.minors(3) == [f"3.{n}" for n in range(13)]
    assert fh.minors(4) == [f"4.{n}" for n in range(7)]
    for major in (3, 4):
        read = DATA["majors"][str(major)]["minors"]
        assert all(fh.minor_of(version) == minor for minor, version in read.items())
        # the newest minor is read from the very version the snapshot was made from
        assert read[LATEST[major]] == sf.snapshot_version(major)


def test_argument_classes_per_major():
    # 4.0 renamed TrainArguments to SftArguments (and moved it to swift.arguments)
    commands = {major: DATA["majors"][str(major)]["commands"] for major in (3, 4)}
    assert [commands[m]["sft"]["arguments_class"] for m in (3, 4)] == ["TrainArguments", "SftArguments"]
    assert [commands[m]["export"]["arguments_class"] for m in (3, 4)] == ["ExportArguments", "ExportArguments"]
    assert [len(commands[m]["sft"]["transformers_bases"]) for m in (3, 4)] == [1, 1]
    assert [commands[m]["export"]["transformers_bases"] for m in (3, 4)] == [[], []]
    # rlhf inherits the sft class (and transformers' training arguments); the others do not
    assert [len(commands[m]["rlhf"]["transformers_bases"]) for m in (3, 4)] == [1, 1]
    assert [commands[m][c]["transformers_bases"] for m in (3, 4) for c in ("infer", "deploy", "eval", "rollout")] \
        == [[]] * 8
    # `swift rollout` came in 3.4, first parsing DeployArguments, RolloutArguments from 3.6
    assert commands[3]["rollout"]["first_minor"] == "3.4" and "first_minor" not in commands[4]["rollout"]
    assert commands[3]["rollout"]["arguments_class"] == {
        "3.4": "DeployArguments", "3.5": "DeployArguments", **{f"3.{n}": "RolloutArguments" for n in range(6, 13)}}


def test_new_commands_history():
    assert fh.absence(3, "rollout", "vllm_enable_prefix_caching", "3.3") is not None
    assert fh.present_in(3, "rlhf", "rlhf_type", "3.0") and fh.present_in(4, "deploy", "port", "4.0")
    assert fh.absence(4, "rlhf", "train_type") == fh.Absence("train_type", "4.6", "removed", "4.0", "4.0",
                                                             since="4.1", replacement="tuner_type")


@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize("command", ["sft", "export"])
def test_history_at_the_snapshot_minor_agrees_with_the_snapshot(major, command):
    """Drift: at 3.12 / 4.6 the history's flags are the snapshot's flags, less what transformers
    provides. export inherits nothing from transformers, so there the two sets are equal."""
    snapshot = set(_snapshot(major)["commands"][command]["flags"])
    history = DATA["majors"][str(major)]["commands"][command]
    present = _present(major, command, LATEST[major])
    assert present - snapshot == set(), "in the history at the snapshot's minor, not in the snapshot"
    assert set(history["overrides_transformers"]).isdisjoint(history["flags"])
    if not history["transformers_bases"]:
        assert present == snapshot
        assert history["overrides_transformers"] == []
    # the snapshot's transformers is one of those whose fields the history left out
    assert _snapshot(major)["transformers_version"] in DATA["majors"][str(major)]["transformers"]


@pytest.mark.parametrize("major", [3, 4])
def test_renames_run_from_a_removed_flag_to_a_live_one(major):
    order = fh.minors(major)
    for command, data in DATA["majors"][str(major)]["commands"].items():
        for old, new in data["renamed"].items():
            gone = fh.absence(major, command, old)
            assert gone is not None and gone.kind == "removed" and gone.replacement == new, (command, old)
            # the new name exists from the first minor without the old one
            assert new in data["overrides_transformers"] or fh.present_in(major, command, new, gone.since), (old, new)
            assert order.index(gone.since) <= order.index(LATEST[major])


def test_the_file_is_small_and_one_line_per_flag():
    text = HISTORY.read_text(encoding="utf-8")
    # seven commands over 20 minors (rlhf repeats sft's fields, infer/deploy/eval/rollout the base
    # args): ~170 KB, read only for a job aimed at an older minor
    assert len(text.encode()) < 192 * 1024
    assert '"lora_rank": {"first": "3.0", "last": "3.12"}' in text


# ---- against the real ms-swift: which flags are ms-swift's own -----------------------------

OWN_FIELDS = r"""
import dataclasses, json, sys
import swift
major = int(swift.__version__.split(".")[0])
if major == 3:
    from swift.llm.argument import TrainArguments as Sft
    import swift.llm.argument as a
else:
    from swift.arguments import SftArguments as Sft
    import swift.arguments as a
out = {"version": swift.__version__}
for command, cls in (("sft", Sft), ("export", a.ExportArguments), ("rlhf", a.RLHFArguments),
                     ("infer", a.InferArguments), ("deploy", a.DeployArguments), ("eval", a.EvalArguments),
                     ("rollout", a.RolloutArguments)):
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    # a field is ms-swift's own when a class from the swift package declares it
    own = {n for n in names if any(c.__module__.split(".")[0] == "swift" and n in c.__dict__.get("__annotations__", {})
                                   for c in cls.__mro__)}
    out[command] = sorted(own)
json.dump(out, sys.stdout)
"""


def _python(major: int) -> str:
    if major == 4:
        return sys.executable
    return swift3_python()


@pytest.mark.parametrize("major", [4, 3])
def test_every_own_flag_of_the_snapshot_is_in_the_history(major):
    """The ast reading agrees with Python's own dataclass machinery: every ms-swift-own flag of
    the installed (= snapshot) version is in the history as present there, or is one of the
    transformers fields ms-swift re-declares; and nothing else is."""
    done = subprocess.run([_python(major), "-c", OWN_FIELDS], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert found["version"] == sf.snapshot_version(major)
    snapshot = _snapshot(major)["commands"]
    for command in sf.COMMANDS:
        own = set(found[command]) & set(snapshot[command]["flags"])
        history = DATA["majors"][str(major)]["commands"][command]
        tracked = _present(major, command, LATEST[major])
        overrides = set(history["overrides_transformers"])
        assert own - tracked - overrides == set(), f"{command}: own flags the history misses"
        assert tracked - own == set(), f"{command}: history flags ms-swift does not declare"


# ---- regenerating from the wheels -----------------------------------------------------------


@pytest.mark.network
def test_regenerating_from_the_wheels_gives_the_committed_file():
    """The same ms-swift and transformers versions (--pinned) give the same file: the reading is
    deterministic and the committed file is its output. About a minute with a cold cache."""
    regenerate_pinned("gen_swift_history.py")


# ---- choices per minor -----------------------------------------------------------------------


@pytest.mark.parametrize("major", [3, 4])
def test_choice_runs_differ_from_the_snapshot_inside_the_flags_life(major):
    order = fh.minors(major)
    for command, data in DATA["majors"][str(major)]["commands"].items():
        table = _snapshot(major)["commands"][command]["flags"]
        for name, runs in data["choices"].items():
            life = data["flags"][name]  # only ms-swift's own flags
            at = [order.index(run["first"]) for run in runs]
            assert at == sorted(at), (command, name)
            for run in runs:
                span = order[order.index(run["first"]):order.index(run["last"]) + 1]
                assert span and all(fh.present_in(major, command, name, m) for m in span), (command, name, run)
                assert run["choices"] != table[name]["choices"], (command, name, run)
                # the snapshot's own minor reads the snapshot's choices (the generator checks it too)
                assert LATEST[major] not in span
            assert order.index(runs[-1]["last"]) <= order.index(life["last"])


def test_rlhf_type_choices_per_minor():
    runs = DATA["majors"]["3"]["commands"]["rlhf"]["choices"]["rlhf_type"]
    assert runs == [
        {"first": "3.0", "last": "3.0", "choices": ["dpo", "orpo", "simpo", "kto", "cpo", "rm", "ppo"]},
        {"first": "3.1", "last": "3.5", "choices": ["dpo", "orpo", "simpo", "kto", "cpo", "rm", "ppo", "grpo"]},
    ]
    assert "rlhf_type" not in DATA["majors"]["4"]["commands"]["rlhf"]["choices"]  # 4.0 on: the snapshot's
    text = HISTORY.read_text(encoding="utf-8")
    assert '{"first": "3.0", "last": "3.0", "choices": ["dpo", "orpo", "simpo", "kto", "cpo", "rm", "ppo"]}' in text


def _generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_swift_history", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAKE_ARGS = '''
from dataclasses import dataclass, field
from enum import Enum
from typing import List, Literal, Optional, Union

from transformers import Seq2SeqTrainingArguments


class Backend(str, Enum):
    pt = 'pt'
    vllm = 'vllm'


@dataclass
class Base:
    kind: Literal['a', 'b'] = 'a'
    mode: Optional[Literal['x', 'y', None]] = None
    either: Union[Literal['p', 'q'], str] = 'p'
    backend: Backend = 'pt'
    names: List[str] = field(default_factory=list)
    free: Optional[str] = None
    hidden: Literal['h'] = field(default='h', init=False)
    odd: SomeAlias = None


@dataclass
class Middle(Base):
    kind: Literal['a', 'b', 'c'] = 'a'


@dataclass
class Other(Base):
    pass


@dataclass
class Args(Other, Middle, Seq2SeqTrainingArguments):
    pass
'''


def test_the_generator_reads_choices_as_hfargumentparser_makes_them(tmp_path):
    """Literal args (Optional/Union[..., str] unwrapped, a None arg as 'None', which argparse
    parses to None), Enum values, no choices
    for a plain type, nothing claimed for an annotation it cannot read, and the declaration
    nearest in the MRO (Args -> Other -> Middle -> Base: Middle's kind wins over Base's)."""
    import ast
    import zipfile

    gen = _generator()
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("swift/__init__.py", "")
        zf.writestr("swift/args.py", FAKE_ARGS)
    source = gen.Source(wheel)
    kind, cls = source.find("swift.args", "Args")
    assert kind == "class" and isinstance(cls, ast.ClassDef)
    assert [c.name for _, c in source.mro(cls)] == ["Args", "Other", "Middle", "Base"]
    assert source.choices(cls) == {"kind": ["a", "b", "c"], "mode": ["x", "y", "None"], "either": ["p", "q"],
                                   "backend": ["pt", "vllm"], "names": None, "free": None}
