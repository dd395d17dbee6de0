"""`lorakit doctor`: exit 0 where lorakit can launch ms-swift, 1 where it cannot."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lorakit import doctor


def test_interpreter_of_reads_the_shebang(tmp_path):
    direct = tmp_path / "a"
    direct.write_text("#!/opt/py/bin/python3.11\nprint()\n")
    via_env = tmp_path / "b"
    via_env.write_text("#!/usr/bin/env sh\n")
    assert doctor.interpreter_of(str(direct)) == "/opt/py/bin/python3.11"
    assert doctor.interpreter_of(str(via_env)).endswith("/sh")
    assert doctor.interpreter_of(str(tmp_path / "missing")) is None


def test_no_swift_on_path_exits_1(cli, tmp_path):
    result = cli(["doctor", "--output-dir", str(tmp_path)], env={"PATH": str(tmp_path)})
    assert result.code == 1
    assert "✗ swift                  not found on PATH  -> pip install 'lorakit[swift]'" in result.stdout.splitlines()
    assert result.stderr == "lorakit cannot launch ms-swift here: fix the ✗ rows\n"


def test_swift_whose_python_lacks_ms_swift_exits_1(cli, tmp_path):
    fake = tmp_path / "swift"
    bare = tmp_path / "bare-python"
    bare.write_text("#!/bin/sh\necho '{\"ms-swift\": null, \"torch\": null, \"transformers\": null, "
                    "\"peft\": null, \"deepspeed\": null, \"flash-attn\": null}'\n")
    bare.chmod(0o755)
    fake.write_text(f"#!{bare}\n")  # a swift whose interpreter reports no packages
    fake.chmod(0o755)
    result = cli(["doctor", "--output-dir", str(tmp_path)], env={"PATH": str(tmp_path)})
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert f"✗ ms-swift               missing  -> {bare} -m pip install ms-swift" in lines
    assert "- deepspeed              not installed  -> only needed for --deepspeed" in lines


def test_the_installed_stack_is_launchable(cli, tmp_path):
    bin_dir = str(Path(sys.executable).parent)
    result = cli(["doctor", "--output-dir", str(tmp_path)],
                 env={"PATH": bin_dir + os.pathsep + os.environ["PATH"]})
    assert result.code == 0, result.stdout
    assert any(line.startswith("✓ ms-swift ") for line in result.stdout.splitlines())
