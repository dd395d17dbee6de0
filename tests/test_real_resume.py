"""The real thing: ms-swift on CPU, through lorakit, interrupted by SIGTERM mid-run and resumed
with `--resume` past a corrupted newest checkpoint, to max_steps; both launches recorded and
replayable. If ms-swift is missing this FAILS (tests/test_real_swift.py: a skipped real test is
a hole)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from test_real_swift import swift_env, tiny  # noqa: F401  (tiny: the module-scoped fixture)

from lorakit import resume, runindex

pytestmark = pytest.mark.real

# 24 steps, not 8: the SIGTERM must land before the run ends, and on a loaded 2-core CI machine
# the tiny model trained from step 4 to 8 between the poll that saw checkpoint-4 and the signal.
MAX_STEPS, SAVE_STEPS = 24, 2
FIRST_STEP = re.compile(r"'global_step/max_steps': '(\d+)/(\d+)'")


def preset(tmp_path: Path, tiny) -> Path:  # noqa: F811
    model, data, extra = tiny
    args = {"model": str(model), "dataset": [str(data)], "output_dir": str(tmp_path / "out"),
            "torch_dtype": "float32", "dataloader_num_workers": 0, "max_length": 128, **extra,
            "max_steps": MAX_STEPS, "save_steps": SAVE_STEPS, "logging_steps": 1,
            "save_total_limit": MAX_STEPS // SAVE_STEPS,
            "gradient_accumulation_steps": 1, "split_dataset_ratio": 0}  # no eval: fewer seconds
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"extends": "single", "args": args}))
    return path


def lorakit(args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "lorakit", *args], cwd=cwd, env=swift_env(),
                          capture_output=True, text=True, timeout=600, **kw)


def complete(out: Path) -> list[Path]:
    """Checkpoints a resume could load, oldest first (lorakit's own test of it)."""
    found = sorted(out.glob("v*-*/checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return [p for p in found if resume.state_problem(p, model_only=False) is None]


def interrupt_after_second_save(cmd: list[str], cwd: Path, out: Path) -> tuple[int, str]:
    proc = subprocess.Popen(cmd, cwd=cwd, env=swift_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 300
    try:
        while len(complete(out)) < 2:  # trainer_state.json comes last: then the save is whole
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no second checkpoint in 300 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def test_interrupt_then_resume_past_a_corrupted_checkpoint(tiny, tmp_path):  # noqa: F811
    mine, out = preset(tmp_path, tiny), tmp_path / "out"
    rc, err = interrupt_after_second_save([sys.executable, "-m", "lorakit", "train", "-p", str(mine)], tmp_path, out)
    assert rc == 128 + signal.SIGTERM, err[-3000:]
    saved = complete(out)
    steps = [int(p.name.split("-")[1]) for p in saved]
    assert steps[:2] == [2, 4] and steps[-1] < MAX_STEPS, steps
    [first] = runindex.read(out)
    assert (first["status"], first["exit_code"]) == ("interrupted", 143)
    newest = saved[-1].resolve()
    lines = err.splitlines()
    assert f"lorakit: the newest complete checkpoint is {newest} (step {steps[-1]}); resume with:" in lines
    assert f"  lorakit train --from {first['record']} --resume" in lines

    # refusals on the real checkpoint, before anything starts
    refused = lorakit(["train", "-p", str(mine), "--resume", "--lora-rank", "16", "--dry-run"], tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[-1] == (
        f"lorakit: error: --resume {newest}: cannot resume this job from it: lora_rank: this job has 16, the "
        f"checkpoint was trained with 8 ({newest / 'args.json'}) (a resume must train the same adapter: use the "
        "checkpoint's value, or start fresh without --resume)")
    done = lorakit(["train", "-p", str(mine), "--resume", "--set", f"max_steps={steps[-1]}", "--dry-run"], tmp_path)
    assert done.stderr.splitlines()[-1] == (
        f"lorakit: error: --resume {newest}: cannot resume this job from it: the checkpoint is at step {steps[-1]} "
        f"and this job's max_steps is {steps[-1]}: it would end at once (to train on, raise max_steps, e.g. "
        f"--set max_steps={2 * steps[-1]})")

    # a corrupted newest checkpoint: skipped, with its reason; the one before it is resumed
    weights = newest / "adapter_model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as f:
        f.truncate(size - 100)
    resumed = lorakit(["train", "-p", str(mine), "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    start = saved[-2].resolve()
    err = resumed.stderr.splitlines()
    assert (f"lorakit: --resume: skipped {newest}: adapter_model.safetensors is cut short: {size - 100} of {size} "
            "bytes") in err
    assert f"lorakit: --resume: from {start} (step {steps[-2]})" in err
    # ms-swift's own log: the first step it trains is the one after the checkpoint's
    logged = FIRST_STEP.search(resumed.stdout + resumed.stderr)
    assert logged and (int(logged.group(1)), int(logged.group(2))) == (steps[-2] + 1, MAX_STEPS), logged
    second = runindex.read(out)[1]
    final = Path(second["run_dir"]) / f"checkpoint-{MAX_STEPS}"
    assert (second["status"], second["exit_code"], second["checkpoint"]) == ("finished", 0, str(final))
    assert err[-2:] == [f"lorakit: final checkpoint: {final}", f"lorakit: next: lorakit merge --adapters {final}"]
    state = json.loads((final / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS

    # both launches recorded; --from replays each exactly (the second with its resume)
    records = [yaml.safe_load(Path(e["record"]).read_text()) for e in (first, second)]
    assert "--resume_from_checkpoint" not in records[0]["command"]["argv"]
    assert records[1]["command"]["argv"][-2:] == ["--resume_from_checkpoint", str(start)]
    for entry, data in zip((first, second), records):
        replay = lorakit(["train", "--from", entry["record"], "--dry-run", "--format", "json"], tmp_path)
        assert replay.returncode == 0, replay.stderr
        assert json.loads(replay.stdout)["argv"] == data["command"]["argv"]
    chain = lorakit(["checkpoints", str(out)], tmp_path)
    assert (f"lorakit: {Path(second['run_dir']).name} resumed from {start.parent.name}/{start.name}"
            in chain.stderr.splitlines())

    # resuming the finished run as ms-swift takes it (resume_from_checkpoint, not --resume): lorakit
    # refuses it (checks/resumed.py); ms-swift itself, given it, trains one step past max_steps, 25/24,
    # and ends (#2956)
    again = lorakit(["validate", "-p", str(mine), "--", "--resume_from_checkpoint", str(final)], tmp_path)
    assert again.returncode == 2
    assert (f"error[train.resume.finished] args.resume_from_checkpoint (-- extra flags): resume_from_checkpoint "
            f"'{final}' is at step {MAX_STEPS}, and max_steps is {MAX_STEPS}: the resumed run skips those steps, "
            "trains one more (transformers tests max_steps after a step) and ends") in again.stderr
    argv = [*records[1]["command"]["argv"][:-1], str(final)]
    ran = subprocess.run(argv, cwd=tmp_path, env={**swift_env(), **records[1]["command"].get("env", {})},
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    steps = [m.groups() for m in FIRST_STEP.finditer(ran.stdout + ran.stderr)]
    assert steps and set(steps) == {(str(MAX_STEPS + 1), str(MAX_STEPS))}, steps
