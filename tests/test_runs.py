"""A record per launch and the output dir's index: statuses, exit codes, `lorakit runs`,
`train --from RUN_DIR`, and what the end of a run prints. A stand-in `swift` (written here) makes
the vN dir and checkpoint that ms-swift would; tests/test_real_resume.py runs the real one."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lorakit import runindex

# Makes OUTPUT/v{N}-... with its args.json (sft.py save_args) and a whole checkpoint-2 (unless SWIFT_STUB_NO_CKPT), like ms-swift's
# add_version_to_work_dir, then exits with SWIFT_STUB_EXIT, or waits for a signal (SWIFT_STUB_WAIT).
STUB = r'''#!PYTHON
import os, signal, sys, time
sys.path.insert(0, os.environ["SWIFT_STUB_TESTS"])
from test_resume import checkpoint
from pathlib import Path
argv = sys.argv
with open(os.environ["SWIFT_STUB_ARGV"], "a") as f:
    f.write(repr(argv) + "\n")
out = Path(argv[argv.index("--output_dir") + 1])
n = len([p for p in out.glob("v*-*")]) if out.is_dir() else 0
run = out / ("v%d-20260101-1200%02d" % (n, n))
run.mkdir(parents=True)
if os.environ.get("SWIFT_STUB_ALSO"):  # another launch's vN dir, made at the same time
    os.makedirs(os.environ["SWIFT_STUB_ALSO"])
    Path(os.environ["SWIFT_STUB_ALSO"], "args.json").write_text('{"resume_from_checkpoint": null}')
resumed = argv[argv.index("--resume_from_checkpoint") + 1] if "--resume_from_checkpoint" in argv else None
(run / "args.json").write_text('{"resume_from_checkpoint": %s}' % ('"%s"' % resumed if resumed else "null"))
if os.environ.get("SWIFT_STUB_FULL"):  # tuner_type full: the model's weights, no adapter
    from test_runs_hostile import full_checkpoint
    full_checkpoint(run, 2)
elif not os.environ.get("SWIFT_STUB_NO_CKPT"):
    checkpoint(run, 2, max_steps=2 if os.environ.get("SWIFT_STUB_DONE") else 10)
if os.environ.get("SWIFT_STUB_WAIT"):
    Path(os.environ["SWIFT_STUB_WAIT"]).write_text("ready")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    time.sleep(60)
sys.exit(int(os.environ.get("SWIFT_STUB_EXIT", "0")))
'''


@pytest.fixture
def stub(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    swift = bin_dir / "swift"
    swift.write_text(STUB.replace("PYTHON", sys.executable))
    swift.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               SWIFT_STUB_TESTS=str(Path(__file__).parent), SWIFT_STUB_ARGV=str(tmp_path / "argv.txt"))
    return env


def lorakit(args, env, cwd, **extra):
    return subprocess.run([sys.executable, "-m", "lorakit", *args], env={**env, **extra}, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def train(tmp_path, env, *extra, **more):
    return lorakit(["train", "-p", "single", "--output-dir", str(tmp_path / "out"), *extra], env, tmp_path, **more)


def test_success_prints_the_final_checkpoint_and_the_merge_command(tmp_path, stub):
    result = train(tmp_path, stub)
    assert result.returncode == 0, result.stderr
    out = (tmp_path / "out").resolve()
    ckpt = out / "v0-20260101-120000" / "checkpoint-2"
    assert result.stderr.splitlines()[-3:] == [
        f"lorakit: run finished (exit code 0); recorded in {out / 'lorakit-runs.jsonl'}",
        f"lorakit: final checkpoint: {ckpt}",
        f"lorakit: next: lorakit merge --adapters {ckpt}"]
    [entry] = runindex.read(out)
    assert entry["status"] == "finished" and entry["exit_code"] == 0 and entry["checkpoint"] == str(ckpt)
    assert entry["run_dir"] == str(out / "v0-20260101-120000")
    # the record's copy travels with its run dir
    copy = out / "v0-20260101-120000" / "lorakit-run.yaml"
    assert copy.read_text() == Path(entry["record"]).read_text()


def test_failure_prints_the_exact_resume_command(tmp_path, stub):
    result = train(tmp_path, stub, SWIFT_STUB_EXIT="1")
    assert result.returncode == 1
    out = (tmp_path / "out").resolve()
    [entry] = runindex.read(out)
    assert (entry["status"], entry["exit_code"]) == ("failed", 1)
    ckpt = out / "v0-20260101-120000" / "checkpoint-2"
    lines = result.stderr.splitlines()
    assert lines[lines.index("lorakit: swift exited with code 1"):] == [
        "lorakit: swift exited with code 1",
        f"lorakit: run failed (exit code 1); recorded in {out / 'lorakit-runs.jsonl'}",
        f"lorakit: the newest complete checkpoint is {ckpt} (step 2); resume with:",
        "  " + shlex.join(["lorakit", "train", "--from", entry["record"], "--resume"])]
    # ... and that command resumes from it
    again = lorakit(shlex.split(lines[-1])[1:] + ["--dry-run", "--format", "json"], stub, tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["argv"][-2:] == ["--resume_from_checkpoint", str(ckpt)]


def test_failure_without_a_checkpoint_prints_no_resume_command(tmp_path, stub):
    result = train(tmp_path, stub, SWIFT_STUB_EXIT="7", SWIFT_STUB_NO_CKPT="1")
    assert result.returncode == 7
    assert result.stderr.splitlines()[-1] == (
        f"lorakit: run failed (exit code 7); recorded in {(tmp_path / 'out').resolve() / 'lorakit-runs.jsonl'}")


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_to_lorakit_is_an_interrupted_run(tmp_path, stub):
    ready = tmp_path / "ready"
    env = {**stub, "SWIFT_STUB_WAIT": str(ready)}
    proc = subprocess.Popen([sys.executable, "-m", "lorakit", "train", "-p", "single", "--output-dir",
                             str(tmp_path / "out")], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(ready)
    [running] = runindex.read(tmp_path / "out")
    assert running["status"] == "running" and running["pid"] == proc.pid
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    [entry] = runindex.read(tmp_path / "out")
    assert (entry["status"], entry["exit_code"]) == ("interrupted", 143)
    assert "lorakit: run interrupted (exit code 143)" in err


def test_status_of():
    assert runindex.status_of(0) == "finished"
    assert runindex.status_of(1) == "failed"
    assert runindex.status_of(137) == "failed"  # SIGKILL: the OOM killer, not a user's stop
    assert runindex.status_of(130) == runindex.status_of(143) == runindex.status_of(129) == "interrupted"
    assert runindex.status_of(1, caught=[signal.SIGINT]) == "interrupted"  # ms-swift chose its own code


def test_lorakit_runs_lists_every_launch_and_from_replays_each(tmp_path, stub, cli):
    assert train(tmp_path, stub, SWIFT_STUB_EXIT="1").returncode == 1
    assert train(tmp_path, stub, "--resume").returncode == 0
    out = (tmp_path / "out").resolve()
    result = cli(["runs", str(out)])
    assert result.code == 0, result.stderr
    entries = runindex.read(out)
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["started", "status", "exit", "run", "checkpoint", "record"]
    assert [r.split()[2:] for r in rows[1:]] == [
        ["failed", "1", "v0-20260101-120000", "checkpoint-2", entries[0]["record"]],
        ["finished", "0", "v1-20260101-120001", "checkpoint-2", entries[1]["record"]]]
    as_json = json.loads(cli(["runs", str(out), "--json"]).stdout)
    assert [e["status"] for e in as_json] == ["failed", "finished"]
    # the second launch resumed the first one's checkpoint; each record replays its own launch
    first = yaml.safe_load(Path(entries[0]["record"]).read_text())
    second = yaml.safe_load(Path(entries[1]["record"]).read_text())
    assert "--resume_from_checkpoint" not in first["command"]["argv"]
    assert second["command"]["argv"][-2:] == ["--resume_from_checkpoint",
                                              str(out / "v0-20260101-120000" / "checkpoint-2")]
    for entry, data in ((entries[0], first), (entries[1], second)):
        for source in (entry["record"], entry["run_dir"]):  # a record, or the run dir it made
            replay = cli(["train", "--from", source, "--dry-run", "--format", "json"])
            assert replay.code == 0, replay.stderr
            assert json.loads(replay.stdout)["argv"] == data["command"]["argv"]
    # the resumed launch's record, resumed again: from the newest checkpoint, not the recorded one
    again = cli(["train", "--from", entries[1]["record"], "--resume", "--dry-run", "--format", "json"])
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout)["argv"][-1] == str(out / "v1-20260101-120001" / "checkpoint-2")
    assert (f"lorakit: --resume replaces the record's resume_from_checkpoint "
            f"{out / 'v0-20260101-120000' / 'checkpoint-2'}") in again.stderr.splitlines()
    # the chain: v1 resumed from v0's checkpoint
    chain = cli(["checkpoints", str(out)])
    assert "lorakit: v1-20260101-120001 resumed from v0-20260101-120000/checkpoint-2" in chain.stderr.splitlines()


def test_from_a_record_takes_resume_and_this_nodes_rank(tmp_path, stub, cli):
    """What a requeued multi-node job runs on each node (the sbatch export with launch.requeue)."""
    args = ["--set", "launch.nnodes=2", "--set", "launch.master_addr=10.0.0.1", "--node-rank", "0"]
    assert train(tmp_path, stub, *args, SWIFT_STUB_EXIT="1").returncode == 1
    out = (tmp_path / "out").resolve()
    record = runindex.read(out)[0]["record"]
    result = cli(["train", "--from", record, "--resume", "if-any", "--node-rank", "1", "--dry-run",
                  "--format", "json"])
    assert result.code == 0, result.stderr
    rendered = json.loads(result.stdout)
    assert rendered["env"]["NODE_RANK"] == "1" and rendered["env"]["MASTER_ADDR"] == "10.0.0.1"
    assert rendered["argv"][-2:] == ["--resume_from_checkpoint", str(out / "v0-20260101-120000" / "checkpoint-2")]


def test_from_a_dir_without_a_record(tmp_path, cli):
    (tmp_path / "v0-20260101-120000").mkdir()
    result = cli(["train", "--from", str(tmp_path / "v0-20260101-120000"), "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"lorakit: error: --from {tmp_path / 'v0-20260101-120000'}: no lorakit run record in this dir",
        "  hint: give a lorakit-run.yaml, a file under lorakit-runs/, or a run dir that lorakit launched; "
        "`lorakit runs OUTPUT` lists them"]


def test_runs_of_a_dir_without_launches(tmp_path, cli):
    result = cli(["runs", str(tmp_path)])
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"lorakit: error: runs {tmp_path}: no lorakit launches recorded here (no lorakit-runs.jsonl)",
        "  hint: lorakit train writes it when it launches; `lorakit checkpoints DIR` lists checkpoints whoever "
        "made them"]


def test_a_launch_killed_without_a_word_is_lost_not_running(tmp_path, cli):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runindex._append(tmp_path / runindex.INDEX, {"id": "a", "time": "2026-01-01T12:00:00+00:00", "status": "running",
                                                  "record": "/r.yaml", "host": os.uname().nodename, "pid": dead.pid})
    with open(tmp_path / runindex.INDEX, "a") as f:
        f.write('{"id": "b", "status": "runn')  # a line cut short by a kill: skipped
    result = cli(["runs", str(tmp_path), "--json"])
    assert [e["status"] for e in json.loads(result.stdout)] == ["lost"]


def test_a_record_is_never_replaced(tmp_path):
    first = runindex._exclusive(tmp_path, "20260101-120000-1", "a")
    second = runindex._exclusive(tmp_path, "20260101-120000-1", "b")
    assert (first.name, second.name) == ("20260101-120000-1.yaml", "20260101-120000-1-1.yaml")
    assert (first.read_text(), second.read_text()) == ("a", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20260101-120000-1-1.yaml", "20260101-120000-1.yaml"]


def test_a_failed_run_without_a_save_of_its_own_points_at_the_older_one(tmp_path, stub):
    assert train(tmp_path, stub).returncode == 0
    result = train(tmp_path, stub, SWIFT_STUB_EXIT="1", SWIFT_STUB_NO_CKPT="1")
    assert result.returncode == 1
    out = (tmp_path / "out").resolve()
    first, second = runindex.read(out)
    assert first["checkpoint"] == str(out / "v0-20260101-120000" / "checkpoint-2")
    assert (second["run_dir"], second["checkpoint"]) == (str(out / "v1-20260101-120001"), None)  # none of its own
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: the newest complete checkpoint is {out / 'v0-20260101-120000' / 'checkpoint-2'} (step 2); "
        "resume with:",
        "  " + shlex.join(["lorakit", "train", "--from", second["record"], "--resume"])]


def test_a_failure_after_the_last_step_points_at_the_finished_checkpoint(tmp_path, stub):
    """torchrun ranks that saved the last step and then aborted at teardown (torch's 'terminate
    called without an active exception'): the exit code stays swift's, and the advice is the merge,
    not a resume that has nothing left to train."""
    result = train(tmp_path, stub, SWIFT_STUB_EXIT="1", SWIFT_STUB_DONE="1")
    assert result.returncode == 1
    out = (tmp_path / "out").resolve()
    ckpt = out / "v0-20260101-120000" / "checkpoint-2"
    lines = result.stderr.splitlines()
    assert lines[lines.index("lorakit: swift exited with code 1"):] == [
        "lorakit: swift exited with code 1",
        f"lorakit: run failed (exit code 1); recorded in {out / 'lorakit-runs.jsonl'}",
        f"lorakit: the run had reached its last step (2) before swift exited with code 1: {ckpt} is its final, "
        "complete checkpoint",
        f"lorakit: next: lorakit merge --adapters {ckpt}"]
