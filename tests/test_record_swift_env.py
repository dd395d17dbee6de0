"""The run record's versions are those of the environment the `swift` on PATH runs in, and
`train --from` checks that same `swift`: with ms-swift 3.x's `swift` first on PATH (its own venv,
LORAKIT_SWIFT3_PYTHON), a --swift-version 3 launch records 3.12.6 and relaunches, although
lorakit's own environment has ms-swift 4.x."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from conftest import FAKES, swift3_python
from test_launch_cli import fake_env, lorakit, recorded

# ms-swift's console script as pip writes it, in the environment of its shebang's python, but it
# runs the recording fake instead of training. lorakit tells ms-swift's script by "swift.cli".
CONSOLE_SCRIPT = """#!{python}
# -*- coding: utf-8 -*-
# pip's form is: from swift.cli.main import cli_main; sys.exit(cli_main())
import runpy
runpy.run_path({fake!r}, run_name="__main__")
"""
PACKAGES = ("ms-swift", "torch", "transformers", "peft")
ASK = ("import json, sys, importlib.metadata as m\n"
       "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")


def versions_of(python: str) -> dict:
    done = subprocess.run([python, "-c", ASK, *PACKAGES], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def console_swift(tmp_path: Path, python: str, name: str) -> Path:
    """A folder holding a `swift` that looks like ms-swift's console script for `python`."""
    folder = tmp_path / name
    folder.mkdir()
    script = folder / "swift"
    script.write_text(CONSOLE_SCRIPT.format(python=python, fake=str(FAKES / "swift")))
    script.chmod(0o755)
    return folder


def env_with(tmp_path: Path, folder: Path, record_file: str) -> dict:
    env = fake_env(tmp_path, record_file)
    env["PATH"] = f"{folder}{os.pathsep}{env['PATH']}"
    return env


def refusal(path: Path, swift: Path, version: str) -> str:
    major = version.split(".")[0]
    return (f"lorakit: error: --from {path}: the record was made for ms-swift 3.x; the `swift` on PATH "
            f"({swift}) runs ms-swift {version} ({major}.x)\n"
            "  hint: put an ms-swift 3.x `swift` first on PATH (or pip install 'ms-swift>=3,<4' in its "
            f"environment), or copy the record's `preset:` section into a preset and render it for {major}.x "
            "with -p\n")


def test_a_3x_launch_records_the_3x_environment_and_relaunches_from_it(tmp_path):
    python = swift3_python()
    swift3 = console_swift(tmp_path, python, "swift3-bin")
    out = tmp_path / "out"
    first = lorakit(["train", "-p", "single", "--swift-version", "3", "--output-dir", str(out)],
                    env_with(tmp_path, swift3, "first.json"))
    assert first.returncode == 0, first.stderr
    assert f"lorakit: running {swift3 / 'swift'} (ms-swift 3.12.6)" in first.stderr.splitlines()
    data = yaml.safe_load((out / "lorakit-run.yaml").read_text())
    assert data["swift_major"] == 3
    assert data["versions"] == {"lorakit": metadata.version("lorakit"), **versions_of(python)}
    assert data["versions"]["ms-swift"] == "3.12.6"
    assert metadata.version("ms-swift").startswith("4.")  # lorakit's own: not what the record says

    again = lorakit(["train", "--from", str(out / "lorakit-run.yaml")], env_with(tmp_path, swift3, "again.json"))
    assert again.returncode == 0, again.stderr
    assert recorded(tmp_path / "again.json") == recorded(tmp_path / "first.json")
    assert recorded(tmp_path / "again.json")[0][:3] == ["sft", "--model", "Qwen/Qwen3-8B"]
    assert "--train_type" in recorded(tmp_path / "again.json")[0]

    # the same record, with a `swift` of lorakit's own environment (4.x) first on PATH: refused
    swift4 = console_swift(tmp_path, sys.executable, "swift4-bin")
    refused = lorakit(["train", "--from", str(out / "lorakit-run.yaml")], env_with(tmp_path, swift4, "never.json"))
    assert (refused.returncode, refused.stdout) == (1, "")  # the environment's swift is the problem: exit 1
    assert refused.stderr == refusal(out / "lorakit-run.yaml", swift4 / "swift", metadata.version("ms-swift"))
    assert not (tmp_path / "never.json").exists()
    # a dry-run there prints the recorded 3.x command, and says what the swift on PATH is
    dry = lorakit(["train", "--from", str(out / "lorakit-run.yaml"), "--dry-run", "--format", "json"],
                  env_with(tmp_path, swift4, "never.json"))
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["argv"] == ["swift", *recorded(tmp_path / "first.json")[0]]
    assert (f"lorakit: the `swift` on PATH ({swift4 / 'swift'}) runs ms-swift {metadata.version('ms-swift')}; "
            "rendering the record for 3.x as it ran (a launch here is refused)") in dry.stderr.splitlines()
    assert not (tmp_path / "never.json").exists()


def test_a_swift_of_lorakits_own_environment_records_its_versions(tmp_path):
    swift = console_swift(tmp_path, sys.executable, "own-bin")
    out = tmp_path / "out"
    result = lorakit(["train", "-p", "single", "--output-dir", str(out)], env_with(tmp_path, swift, "rec.json"))
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load((out / "lorakit-run.yaml").read_text())
    assert data["versions"] == {"lorakit": metadata.version("lorakit"),
                                **{name: metadata.version(name) for name in PACKAGES}}


def test_from_checks_the_real_swift_first_on_path(tmp_path):
    """ms-swift's own console scripts, 3.x's and 4.x's (the 4.x one refuses before any launch)."""
    python = swift3_python()
    out = tmp_path / "out"
    made = lorakit(["train", "-p", "zero2", "--swift-version", "3", "--output-dir", str(out)],
                   env_with(tmp_path, console_swift(tmp_path, python, "swift3-bin"), "rec.json"))
    assert made.returncode == 0, made.stderr
    path = out / "lorakit-run.yaml"
    real3, real4 = Path(python).parent, Path(sys.prefix) / "bin"
    assert b"swift.cli" in (real3 / "swift").read_bytes() and b"swift.cli" in (real4 / "swift").read_bytes()
    accepted = lorakit(["train", "--from", str(path), "--dry-run", "--format", "json"], env_with(tmp_path, real3, "x"))
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["argv"] == ["swift", *recorded(tmp_path / "rec.json")[0]]
    refused = lorakit(["train", "--from", str(path)], env_with(tmp_path, real4, "x"))
    assert (refused.returncode, refused.stderr) == (1, refusal(path, real4 / "swift", metadata.version("ms-swift")))
