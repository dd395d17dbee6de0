"""The real thing, on a real terminal: ms-swift trains the tiny model for 2 steps on CPU under
launch.run + progress.Watch, with the driver's stdout and stderr on a pseudo-terminal, and the
bar it draws reaches 2/2. If ms-swift is missing this FAILS (see test_real_swift.py)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.real

# What `lorakit train` does with a Watch, minus the CLI. Writes every update the bar got, in
# order, as (step, total, loss or None), and what it showed last.
DRIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from lorakit import launch, progress
cfg = json.loads(sys.argv[2])
seen, update = [], progress._Bar.update
def spy(bar, step):
    seen.append([step.step, step.total, step.loss])
    update(bar, step)
progress._Bar.update = spy
with progress.Watch() as watch:
    rc = launch.run(cfg["argv"], watch.child_env(cfg["env"]), output=watch.output)
watch.report(rc)
last = watch.bar.last if watch.bar and watch.bar.last else None
with open(cfg["result"], "w") as f:
    json.dump({"rc": rc, "bar": watch.bar is not None, "last": last and [last.step, last.total, last.loss],
               "seen": seen}, f)
sys.exit(rc)
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from lorakit.tiny import make_tiny_dataset, make_tiny_model, tiny_swift_args

    root = tmp_path_factory.mktemp("tiny")
    return make_tiny_model(root / "tiny-random-chatml"), make_tiny_dataset(root / "data.jsonl", n=16), \
        tiny_swift_args()


def command(tiny, output: Path):
    """The preset pattern of test_real_swift.py, rendered by lorakit's own layers."""
    from lorakit.cli.common import JobOptions, job_from_options as build
    from lorakit.render import render

    model, data, extra = tiny
    sets = [f"{k}={v}" for k, v in {"model": model, "output_dir": output, "torch_dtype": "float32",
                                      "dataloader_num_workers": 0, "max_length": 128, **extra}.items()]
    job = build(JobOptions("single", dataset=[str(data)], sets=sets))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    assert shutil.which("swift", path=env["PATH"]), "ms-swift is not installed: run scripts/test.sh"
    cmd = render(job, env)
    return cmd.argv, cmd.child_env(env)


def run_on_a_pty(argv: list, timeout: float, env=None, cwd=None) -> tuple:
    """Run argv with stdin/stdout/stderr on a fresh pty; return (exit code, all it wrote)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True, env=env, cwd=cwd)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 1)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer has closed the pty
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
        return proc.wait(timeout=30), out.decode("utf-8", "replace")
    finally:
        os.close(master)


def test_real_run_on_a_tty_reaches_2_of_2(tiny, tmp_path):
    argv, env = command(tiny, tmp_path / "out")
    env.pop("PYTHONUNBUFFERED", None)  # lorakit must set it: else the log dicts come at exit
    cfg = {"argv": argv, "env": env, "result": str(tmp_path / "result.json")}
    rc, shown = run_on_a_pty([sys.executable, "-c", DRIVER, str(REPO / "src"), json.dumps(cfg)], 900)
    assert rc == 0, shown[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["bar"] and result["last"][:2] == [2, 2], result
    assert result["last"][2] > 0  # a loss
    # live: step 1's log dict (ms-swift logs the first step) came before the bar reached 2/2
    first_loss = next(i for i, (_, _, loss) in enumerate(result["seen"]) if loss is not None)
    assert result["seen"][first_loss][0] == 1
    assert all(step < 2 for step, _, _ in result["seen"][:first_loss]), result["seen"]
    # what the terminal got: the child's own lines above the bar, the bar last, at 2/2
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown).replace("\r", "\n")
    assert "lorakit: set PYTHONUNBUFFERED=1 for ms-swift" in plain
    assert "[INFO:swift] End time of running main" in plain
    assert "'global_step/max_steps': '2/2'" in plain
    bars = [line for line in plain.splitlines() if line.startswith("swift sft ")]
    assert bars and re.search(r"\b2/2\b", bars[-1]), bars[-3:]
    assert sorted(p.name for p in (tmp_path / "out").glob("v*-*/checkpoint-*")) == ["checkpoint-2"]
