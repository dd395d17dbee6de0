"""The presets ship inside the wheel: a plain (non-editable) install, run from another
directory, finds every built-in and renders the same command as the source checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from conftest import REPO, run_cli
from lorakit import presets


def test_wheel_carries_the_presets_and_dry_runs_from_elsewhere(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = list(wheels.glob("lorakit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in presets.builtin_names():
        assert f"lorakit/configs/{name}.yaml" in names
    assert "lorakit/configs/fragments/lora_sft.yaml" in names
    assert "lorakit/data/swift_flags_v4.json" in names and "lorakit/data/swift_flags_v3.json" in names

    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                                str(wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # PYTHONPATH comes before the editable checkout on sys.path: this runs the installed copy
    env = dict(os.environ, PYTHONPATH=str(site))
    where = subprocess.run([sys.executable, "-c", "import lorakit, lorakit.presets as p; print(lorakit.__file__); "
                            "print(p.builtin_dir())"], env=env, cwd=elsewhere, capture_output=True, text=True)
    module, configs = where.stdout.split()
    assert module.startswith(str(site)) and configs == str(site / "lorakit" / "configs")
    result = subprocess.run([sys.executable, "-m", "lorakit", "train", "--preset", "zero2", "--dry-run"],
                            env=env, cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == run_cli(["train", "--preset", "zero2", "--dry-run"]).stdout
