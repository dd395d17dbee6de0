"""What a hostile (or unlucky) user gives --resume, the index and `lorakit runs`: hand-edited
trainer_state.json, a file for a checkpoint, an index with torn, undecodable or non-JSON lines,
launches appending at once, a record replayed from another dir or written by a newer lorakit."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lorakit import resume, runindex
from lorakit.cli import runs_cmd
from test_resume import checkpoint, dry
from test_runs import lorakit, stub  # noqa: F401 (the fixture)


# --- trainer_state.json that parses but is not what the Trainer wrote -----------------------------

@pytest.mark.parametrize("step", ["5", -5, True, None, 5.5])
def test_a_global_step_that_is_not_a_count_is_not_resumable(tmp_path, step):
    # transformers' _inner_training_loop: `self.state.global_step // num_update_steps_per_epoch`
    ckpt = checkpoint(tmp_path, 5, max_steps=100)
    state = {"max_steps": 100, "epoch": 0.5, **({} if step is None else {"global_step": step})}
    (ckpt / "trainer_state.json").write_text(json.dumps(state))
    assert resume.state_problem(ckpt, model_only=False) == \
        f"trainer_state.json's global_step is {step!r}, not a count of steps (edited by hand?)"
    assert resume.newest_complete(tmp_path).checkpoint is None


def test_an_epoch_that_is_not_a_number_is_no_traceback(tmp_path, cli):
    out = tmp_path / "out"
    ckpt = checkpoint(out / "v0-20260101-100000", 5, max_steps=100)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 5, "max_steps": 100, "epoch": "x"}))
    result = dry(cli, out, "--resume", "--set", "max_steps=-1")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["argv"][-2:] == ["--resume_from_checkpoint", str(ckpt.resolve())]


def test_resume_of_a_file_names_its_dir(tmp_path, cli):
    ckpt = checkpoint(tmp_path / "out" / "v0-20260101-100000", 2)
    result = dry(cli, tmp_path / "out", "--resume", str(ckpt / "trainer_state.json"))
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: --resume {ckpt / 'trainer_state.json'}: a file; --resume takes a checkpoint dir, a run dir "
        "or an output dir",
        f"  hint: --resume {ckpt} (the dir that holds it)"]


# --- the index: one bad line hides no other -------------------------------------------------------

def _index(tmp_path: Path, raw: bytes) -> None:
    (tmp_path / runindex.INDEX).write_bytes(raw)


def line(**entry) -> bytes:
    return (json.dumps(entry) + "\n").encode()


def test_bad_lines_are_skipped_and_named(tmp_path):
    _index(tmp_path, line(id="a", status="finished", exit_code=0)
           + b'{"id": "b", "status": "runn' + line(id="c", status="failed", exit_code=1)  # torn, then appended
           + b"\xff\xfe not utf-8\n" + line(id="d", status="finished") + b'{"id": "e", "exit_code": NaN}\n'
           + b"[1, 2]\n\n" + b'{"id": "f", "sta\n' + line(id="g", status="interrupted", exit_code=130))
    entries, skipped = runindex.read_all(tmp_path)
    assert [(e["id"], e["status"]) for e in entries] == [
        ("a", "finished"), ("c", "failed"), ("d", "finished"), ("g", "interrupted")]
    assert skipped == [(2, "cut short, and the next entry written onto it: that entry read, the rest skipped"),
                       (3, "not UTF-8: skipped"), (5, "not JSON (cut short?): skipped"),
                       (6, "not a launch entry (no id): skipped"), (8, "not JSON (cut short?): skipped")]


def test_runs_lists_the_rest_says_which_lines_and_json_stays_json(tmp_path, cli):
    _index(tmp_path, line(id="a", time="2026-01-01T12:00:00+00:00", status="finished", exit_code=0)
           + b"\xff\n" + b'{"id": "n", "exit_code": Infinity}\n'
           + line(id="z", time=12345, status=None, exit_code="zero", run_dir=5, checkpoint=["x"]))
    result = cli(["runs", str(tmp_path)])
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "started              status    exit  run  checkpoint  record",
        "2026-01-01 12:00:00  finished  0     -    -           -",
        "12345                -         zero  5    ['x']       -"]
    assert result.stderr.splitlines()[:2] == [
        f"lorakit: {tmp_path.resolve() / runindex.INDEX} line 2: not UTF-8: skipped",
        f"lorakit: {tmp_path.resolve() / runindex.INDEX} line 3: not JSON (cut short?): skipped"]
    as_json = cli(["runs", str(tmp_path), "--json"])
    assert [e["id"] for e in json.loads(as_json.stdout)] == ["a", "z"]


def _appender(args: tuple[str, int, int]) -> None:
    index, who, count = args
    for n in range(count):
        runindex._append(Path(index), {"id": f"{who}-{n}", "status": "running", "pad": "x" * 65536})


def test_launches_appending_at_once_never_tear_a_line(tmp_path):
    index = tmp_path / runindex.INDEX
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_appender, [(str(index), w, 50) for w in range(4)])
    entries, skipped = runindex.read_all(tmp_path)
    assert skipped == [] and len(entries) == 200
    assert sorted(e["id"] for e in entries) == sorted(f"{w}-{n}" for w in range(4) for n in range(50))


def test_a_short_write_is_finished(tmp_path, monkeypatch):
    real, calls = os.write, []

    def short(fd, data):  # a signal or a nearly full disk: write(2) may take less than it was given
        calls.append(len(data))
        return real(fd, data[:10] if len(calls) == 1 else data)

    monkeypatch.setattr(runindex.os, "write", short)
    runindex._append(tmp_path / runindex.INDEX, {"id": "a", "status": "running"})
    assert (tmp_path / runindex.INDEX).read_text() == '{"id": "a", "status": "running"}\n'
    assert len(calls) == 2


def test_a_record_no_index_line_names_is_removed(tmp_path):
    (tmp_path / runindex.INDEX).mkdir()  # the index cannot be appended to
    with pytest.raises(IsADirectoryError):
        runindex.start(tmp_path, "record", argv=["swift", "sft"], env={}, node_rank=None,
                       time="2026-01-01T12:00:00+00:00", host="h")
    assert list((tmp_path / runindex.RECORDS).iterdir()) == []


# --- running, or lost ------------------------------------------------------------------------------

def test_a_pid_given_to_another_program_is_not_our_launch(tmp_path):
    other = subprocess.Popen(["sleep", "30"])
    try:
        assert runs_cmd._alive(other.pid) is False
        assert runs_cmd._alive(os.getpid()) is ("lorakit" in Path(f"/proc/{os.getpid()}/cmdline").read_text())
    finally:
        other.kill()
        other.wait()


def test_another_users_launch_is_alive(monkeypatch):
    def denied(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(runs_cmd.os, "kill", denied)
    monkeypatch.setattr(runs_cmd.Path, "read_bytes", lambda self: b"/usr/bin/python\0-m\0lorakit\0train")
    assert runs_cmd._alive(4242) is True


# --- replaying a record ----------------------------------------------------------------------------

def test_from_elsewhere_with_a_relative_output_dir_is_refused(tmp_path, stub, cli, monkeypatch):  # noqa: F811
    ran = tmp_path / "proj"
    ran.mkdir()
    assert lorakit(["train", "-p", "single", "--output-dir", "out"], stub, ran, SWIFT_STUB_EXIT="1").returncode == 1
    [entry] = runindex.read(ran / "out")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = cli(["train", "--from", entry["record"], "--resume", "--dry-run"])
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: --resume: the record ran in {ran}, where its output_dir out is {ran / 'out'}; from here it "
        f"is {elsewhere / 'out'}, so the resume would search and write there",
        f"  hint: cd {ran} and run it again"]
    monkeypatch.chdir(ran)  # where it ran: resumes
    result = cli(["train", "--from", entry["record"], "--resume", "--dry-run", "--format", "json"])
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["argv"][-1] == str(ran / "out" / "v0-20260101-120000" / "checkpoint-2")


def test_a_record_from_another_machine_resumes_here(tmp_path, stub, cli, monkeypatch):  # noqa: F811
    assert lorakit(["train", "-p", "single", "--output-dir", "out"], stub, tmp_path, SWIFT_STUB_EXIT="1").returncode == 1
    record = Path(runindex.read(tmp_path / "out")[0]["record"])
    data = yaml.safe_load(record.read_text())
    data["cwd"], data["host"] = "/home/someone/on/gpu7", "gpu7"  # not a dir here
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    result = cli(["train", "--from", str(other), "--resume", "--dry-run", "--format", "json"])
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["argv"][-1] == str(tmp_path / "out" / "v0-20260101-120000" / "checkpoint-2")


def test_a_record_of_a_newer_format_says_so(tmp_path, cli):
    record = tmp_path / "lorakit-run.yaml"
    record.write_text("lorakit_record: 2\npreset: {}\n")
    result = cli(["train", "--from", str(record), "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"lorakit: error: --from {record}: a newer lorakit wrote this record (format 2); this lorakit reads format 1",
        "  hint: pip install -U lorakit, or copy the record's `preset:` section into a preset and use -p"]


# --- the end of a run, and the keyword that shadows a dir -----------------------------------------

def test_a_run_that_exits_0_without_a_checkpoint_says_so(tmp_path, stub):  # noqa: F811
    result = lorakit(["train", "-p", "single", "--output-dir", str(tmp_path / "out")], stub, tmp_path,
                     SWIFT_STUB_NO_CKPT="1")
    assert result.returncode == 0, result.stderr
    run = (tmp_path / "out").resolve() / "v0-20260101-120000"
    assert result.stderr.splitlines()[-1] == \
        f"lorakit: this run saved no complete checkpoint (none under {run}): nothing to merge or resume"
    assert runindex.read(tmp_path / "out")[0]["checkpoint"] is None


def test_resume_auto_with_a_dir_named_auto_points_at_it(tmp_path, cli, monkeypatch):
    checkpoint(tmp_path / "auto" / "v0-20260101-100000", 2)
    monkeypatch.chdir(tmp_path)
    result = dry(cli, Path("out"), "--resume", "auto")
    assert result.code == 2
    assert result.stderr.splitlines()[-1] == (
        "  hint: drop --resume to start fresh, or --resume if-any to start fresh whenever there is nothing to "
        "resume; a dir named auto is here: --resume ./auto searches it")


def test_runs_of_the_index_file_itself(tmp_path, cli):
    _index(tmp_path, line(id="a", status="finished"))
    result = cli(["runs", str(tmp_path / runindex.INDEX)])
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"lorakit: error: runs {tmp_path / runindex.INDEX}: a file, not a directory",
        f"  hint: give the dir that holds it: lorakit runs {tmp_path}"]


def test_from_a_finished_run_says_how_to_raise_max_steps_without_set(tmp_path, stub, cli):  # noqa: F811
    out = tmp_path / "out"
    done = lorakit(["train", "-p", "single", "--output-dir", str(out), "--set", "max_steps=2"], stub, tmp_path)
    assert done.returncode == 0, done.stderr
    [entry] = runindex.read(out)
    result = cli(["train", "--from", entry["record"], "--resume", "--dry-run"])
    assert result.code == 2
    ckpt = out.resolve() / "v0-20260101-120000" / "checkpoint-2"
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: --resume {ckpt}: cannot resume this job from it: the checkpoint is at step 2 and this job's "
        "max_steps is 2: it would end at once (to train on, raise max_steps, e.g. --set max_steps=4)",
        "  hint: --from replays the record unchanged (it takes no --set): copy the record's `preset:` section into "
        "a preset, raise max_steps or num_train_epochs there, and run lorakit train -p THAT --resume"]


def test_a_record_that_cannot_be_written_says_why(tmp_path, monkeypatch):
    def refuse(self, *a, **k):  # what a read-only output dir does (root ignores the mode bits here)
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(runindex.Path, "write_text", refuse)
    with pytest.raises(PermissionError):
        runindex._exclusive(tmp_path, "20260101-120000-1", "a")


def test_if_any_does_not_throw_away_a_save_only_model_run(tmp_path, cli):
    out = tmp_path / "out"
    ckpt = checkpoint(out / "v0-20260101-100000", 4, optimizer=False, scheduler=False, rng=False).resolve()
    result = dry(cli, out, "--resume", "if-any")
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: --resume if-any: {ckpt} holds weights only (save_only_model): starting fresh would throw "
        "its training away",
        "  hint: add --set resume_only_model=true to resume from the weights, or drop --resume to start fresh"]
    result = dry(cli, out, "--resume", "if-any", "--set", "resume_only_model=true")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["argv"][-1] == str(ckpt)


# --- tuner_type full: the model's own weights, no adapter ------------------------------------------

def full_checkpoint(run: Path, step: int, *, shards: int = 0, cut: int = 0) -> Path:
    """checkpoint-N of a full-parameter run: transformers' save_pretrained weights (one file, or
    shards and their index), the Trainer's state as for an adapter."""
    from test_resume import safetensors

    ckpt = run / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text("{}")
    if shards:
        names = [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)]
        for name in names:
            safetensors(ckpt / name)
        (ckpt / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {}, "weight_map": {f"layer{i}.w": n for i, n in enumerate(names)}}))
    else:
        safetensors(ckpt / "model.safetensors", cut=cut)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (ckpt / name).write_bytes(b"x")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": 10, "epoch": step / 10}))
    (ckpt / "args.json").write_text(json.dumps({"model": "Qwen/Qwen3-8B", "tuner_type": "full", "lora_rank": 8}))
    return ckpt


def test_full_weights_whole_or_not(tmp_path):
    from lorakit import fullckpt

    assert fullckpt.weights_problem(full_checkpoint(tmp_path / "a", 2)) is None
    assert fullckpt.weights_problem(full_checkpoint(tmp_path / "b", 2, shards=3)) is None
    assert fullckpt.weights_problem(full_checkpoint(tmp_path / "c", 2, cut=5)) == \
        "model.safetensors is cut short: 72 of 77 bytes"
    sharded = full_checkpoint(tmp_path / "d", 2, shards=2)
    (sharded / "model-00002-of-00002.safetensors").unlink()
    assert fullckpt.weights_problem(sharded) == \
        "no model-00002-of-00002.safetensors (named in model.safetensors.index.json)"
    (sharded / "model.safetensors.index.json").write_text('{"weight_map": ')
    assert fullckpt.weights_problem(sharded) == "model.safetensors.index.json has no weight_map (cut short?)"
    (sharded / "model.safetensors.index.json").unlink()
    (sharded / "model-00001-of-00002.safetensors").unlink()
    assert fullckpt.weights_problem(sharded) == \
        "no model weights (model.safetensors, or its shards and model.safetensors.index.json)"


def test_resume_of_a_full_run(tmp_path, cli):
    out = tmp_path / "out"
    good = full_checkpoint(out / "v0-20260101-100000", 4).resolve()
    cut = full_checkpoint(out / "v1-20260102-100000", 6, cut=5).resolve()
    result = dry(cli, out, "--resume", "--set", "tuner_type=full", "--set", "lora_rank=64")  # rank: not compared
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["argv"][-2:] == ["--resume_from_checkpoint", str(good)]
    assert f"lorakit: --resume: skipped {cut}: model.safetensors is cut short: 72 of 77 bytes" \
        in result.stderr.splitlines()
    explicit = dry(cli, out, "--resume", str(good), "--set", "tuner_type=full")
    assert json.loads(explicit.stdout)["argv"][-1] == str(good)


def test_a_full_run_ends_with_its_checkpoint_and_no_merge(tmp_path, stub):  # noqa: F811
    out = tmp_path / "out"
    result = lorakit(["train", "-p", "single", "--output-dir", str(out), "--set", "tuner_type=full"], stub, tmp_path,
                     SWIFT_STUB_FULL="1")
    assert result.returncode == 0, result.stderr
    ckpt = out.resolve() / "v0-20260101-120000" / "checkpoint-2"
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: run finished (exit code 0); recorded in {out.resolve() / runindex.INDEX}",
        f"lorakit: final checkpoint: {ckpt}"]
    assert runindex.read(out)[0]["checkpoint"] == str(ckpt)
    failed = lorakit(["train", "-p", "single", "--output-dir", str(out), "--set", "tuner_type=full"], stub, tmp_path,
                     SWIFT_STUB_NO_CKPT="1", SWIFT_STUB_EXIT="1")
    assert failed.returncode == 1
    assert f"lorakit: the newest complete checkpoint is {ckpt} (step 2); resume with:" in failed.stderr.splitlines()


def test_a_lora_job_over_a_full_runs_checkpoint_says_tuner_type(tmp_path, cli):
    ckpt = full_checkpoint(tmp_path / "out" / "v0-20260101-100000", 4).resolve()
    result = dry(cli, tmp_path / "out", "--resume")
    assert result.code == 2
    assert result.stderr.splitlines()[-1] == (
        f"lorakit: error: --resume {ckpt}: cannot resume this job from it: tuner_type: this job has 'lora', the "
        f"checkpoint was trained with 'full' ({ckpt / 'args.json'}) (a resume must train the same adapter: use the "
        "checkpoint's value, or start fresh without --resume)")


def test_resume_of_a_dir_without_runs_gets_no_auto_hint(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    result = dry(cli, tmp_path / "out", "--resume", str(tmp_path / "empty"))
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: --resume {tmp_path / 'empty'}: no complete checkpoint in {tmp_path / 'empty'} (no ms-swift "
        "run there)",
        "  hint: drop --resume to start fresh, or --resume if-any to start fresh whenever there is nothing to resume"]


@pytest.mark.parametrize("pid", [0, -1, "12", True, None])
def test_a_pid_that_names_no_one_process_is_lost(pid):
    assert runs_cmd._alive(pid) is False


def test_a_pid_reused_by_a_later_lorakit_is_lost(tmp_path):
    # a lorakit started now holds the pid an entry written an hour ago names
    ready = tmp_path / "ready"
    later = subprocess.Popen([sys.executable, "-c", "import sys, time; open(sys.argv[1], 'w').close(); time.sleep(30)",
                              str(ready), "lorakit"])
    try:
        while not ready.exists() and later.poll() is None:  # its cmdline is ours until it execs
            os.sched_yield()
        assert runs_cmd._alive(later.pid, "2026-01-01T11:00:00+00:00") is False
        assert runs_cmd._alive(later.pid, "2999-01-01T11:00:00+00:00") is True
        assert runs_cmd._alive(later.pid, "not a time") is True
    finally:
        later.kill()
        later.wait()


def test_overlapping_launches_each_find_their_own_run_dir(tmp_path):
    # two launches into one output dir at once: both see v0 and v1 appear
    for name, lr in (("v0-20260101-120000", 0.0001), ("v1-20260101-120001", 0.0002)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "args.json").write_text(json.dumps(
            {"learning_rate": lr, "max_steps": 10, "output_dir": str(tmp_path / name), "use_hf": True}))
    argv = ["swift", "sft", "--learning_rate", "1e-4", "--max_steps", "10", "--use_hf", "true",
            "--output_dir", str(tmp_path)]
    assert runindex.new_run_dir(tmp_path, set(), argv) == tmp_path / "v0-20260101-120000"
    argv[3] = "0.0002"
    assert runindex.new_run_dir(tmp_path, set(), argv) == tmp_path / "v1-20260101-120001"
    argv[3] = "0.0003"  # neither: no guess, no record copied into another launch's dir
    assert runindex.new_run_dir(tmp_path, set(), argv) is None
    assert runindex.new_run_dir(tmp_path, {"v0-20260101-120000"}, argv) == tmp_path / "v1-20260101-120001"


def test_a_run_whose_dir_cannot_be_told_says_so(tmp_path, stub):  # noqa: F811
    out = tmp_path / "out"
    (out / "v5-20260101-120005").mkdir(parents=True)  # an older run: not fresh
    # during the launch the stub makes its v1 and (SWIFT_STUB_ALSO) another launch's v6, both with
    # an args.json that names no flag of this launch
    env = dict(stub)
    result = lorakit(["train", "-p", "single", "--output-dir", str(out)], env, tmp_path,
                     SWIFT_STUB_NO_CKPT="1", SWIFT_STUB_ALSO=str(out / "v6-20260101-120006"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"lorakit: several vN dirs appeared in {out.resolve()} while this run ran (another launch at the same "
        "time) and none holds this run's flags alone: its run dir is not told, no record copied")
    assert not (out / "v6-20260101-120006" / "lorakit-run.yaml").exists()


def test_a_line_nested_too_deep_is_skipped(tmp_path):
    _index(tmp_path, line(id="a", status="finished") + b'{"id": "b", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}\n")
    entries, skipped = runindex.read_all(tmp_path)
    assert [e["id"] for e in entries] == ["a"]
    assert skipped == [(2, "not a launch entry (nested too deep): skipped")]
