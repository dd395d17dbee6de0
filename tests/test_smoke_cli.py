"""`lorakit doctor --smoke` as a user runs it, with the real ms-swift on CPU: lorakit's own
process must not need torch (the `swift` on PATH may live in another environment), and a
success leaves no temp dir behind. If ms-swift is missing this FAILS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lorakit.doctor import interpreter_of

pytestmark = pytest.mark.real

# lorakit's entry point in a process where torch and transformers cannot be imported.
NO_TORCH = r"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "swift"):
            raise ImportError(f"lorakit's own python has no {name} in this test")
sys.meta_path.insert(0, Refuse())
from lorakit.cli.app import main
main(sys.argv[1:])
"""


def test_doctor_smoke_runs_under_swifts_python_and_cleans_up(tmp_path):
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "swift").exists(), "ms-swift is not installed: run scripts/test.sh"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", TMPDIR=str(tmp))
    result = subprocess.run([sys.executable, "-c", NO_TORCH, "doctor", "--smoke", "--output-dir", str(tmp_path)],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("smoke: ")]
    root = lines[-1].removeprefix("smoke: ok; removed ")
    assert Path(root).parent == tmp and Path(root).name.startswith("lorakit-smoke-")
    python = interpreter_of(shutil.which("swift", path=env["PATH"]))
    assert lines[0] == f"smoke: tiny model and dataset in {root} (built by {python})"
    assert lines[1].startswith("smoke: train ok (") and lines[2].startswith("smoke: merge ok (")
    assert lines[3].startswith("smoke: logits (1, 4, 320), finite from ")
    assert not list(tmp.glob("lorakit-smoke-*"))
