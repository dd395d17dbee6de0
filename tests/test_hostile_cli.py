"""lorakit used as a hostile user would: each input here once gave a Python traceback, hung, or
exited with a code that means something else. Every test asserts the exit code and the exact
text, through lorakit's real entry point (in-process) or a real process where the pipe or the
signal is the point."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DEEP = "[" * 100_000 + "]" * 100_000  # past Python's recursion limit: json and PyYAML raise RecursionError
RUN = "v0-20261127-101500"


def safetensors(path: Path, header: bytes | None = None) -> None:
    header = header or json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)


def make_run(root: Path) -> Path:
    """An output dir with one run and one whole checkpoint-10 of base model 'm'."""
    ckpt = root / RUN / "checkpoint-10"
    ckpt.mkdir(parents=True)
    (root / RUN / "args.json").write_text('{"model": "m"}')
    (root / RUN / "logging.jsonl").write_text('{"loss": 1.0, "global_step/max_steps": "10/10"}\n')
    (ckpt / "trainer_state.json").write_text('{"global_step": 10, "max_steps": 10, "log_history": []}')
    (ckpt / "adapter_config.json").write_text('{"r": 8, "base_model_name_or_path": "m"}')
    safetensors(ckpt / "adapter_model.safetensors")
    return ckpt


# --- JSON nested past Python's stack, in the files a run leaves (RecursionError, not ValueError) ----

@pytest.mark.parametrize("name", ["args.json", "logging.jsonl"])
def test_deeply_nested_run_file_is_skipped_like_a_half_written_one(cli, tmp_path, monkeypatch, name):
    make_run(tmp_path / "out")
    (tmp_path / "out" / RUN / name).write_text('{"a": ' + DEEP + "}")
    monkeypatch.chdir(tmp_path)
    r = cli(["checkpoints", "out"])
    assert r.code == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1] == (
        f"lorakit: `lorakit merge --adapters out` would pick {tmp_path}/out/{RUN}/checkpoint-10: "
        f"run {RUN}, last checkpoint (step 10 of 10, 1 checkpoint)")


def test_deeply_nested_trainer_state_is_an_incomplete_checkpoint(cli, tmp_path, monkeypatch):
    ckpt = make_run(tmp_path / "out")
    (ckpt / "trainer_state.json").write_text(DEEP)
    monkeypatch.chdir(tmp_path)
    r = cli(["merge", "--adapters", "out", "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines()[:2] == [
        "lorakit: error: no complete adapter checkpoint under out; each one is incomplete:",
        f"  {RUN}/checkpoint-10: trainer_state.json does not parse (cut short?)",
    ]


def test_deeply_nested_safetensors_header_is_no_readable_header(cli, tmp_path, monkeypatch):
    ckpt = make_run(tmp_path / "out")
    safetensors(ckpt / "adapter_model.safetensors", b'{"w": ' + DEEP.encode() + b"}")
    monkeypatch.chdir(tmp_path)
    r = cli(["train", "-p", "single", "--output-dir", "out", "--resume", "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines()[0] == (
        f"lorakit: --resume: skipped {tmp_path}/out/{RUN}/checkpoint-10: "
        "adapter_model.safetensors has no readable safetensors header")


def test_deeply_nested_deepspeed_file_is_planned_without_zero(cli, tmp_path):
    config = tmp_path / "ds.json"
    config.write_text(DEEP)
    r = cli(["plan", "-p", "single", "--set", f"deepspeed={config}"])
    assert "Traceback" not in r.stderr
    assert f"deepspeed {str(config)!r} could not be read: planned without ZeRO" in r.stdout + r.stderr


@pytest.mark.parametrize("name", ["args.json", "logging.jsonl"])
def test_fifo_in_a_run_dir_is_not_read(cli, tmp_path, monkeypatch, name):
    """A FIFO with no writer where a run file should be: reading it blocked `lorakit checkpoints`
    (and merge, infer, resume) forever."""
    make_run(tmp_path / "out")
    (tmp_path / "out" / RUN / name).unlink()
    os.mkfifo(tmp_path / "out" / RUN / name)
    monkeypatch.chdir(tmp_path)
    r = cli(["checkpoints", "out"])
    assert r.code == 0, r.stderr
    assert r.stderr.splitlines()[-1] == (
        f"lorakit: `lorakit merge --adapters out` would pick {tmp_path}/out/{RUN}/checkpoint-10: "
        f"run {RUN}, last checkpoint (step 10 of 10, 1 checkpoint)")


def test_fifo_as_adapter_weights_is_an_incomplete_checkpoint(cli, tmp_path, monkeypatch):
    ckpt = make_run(tmp_path / "out")
    (ckpt / "adapter_model.safetensors").unlink()
    os.mkfifo(ckpt / "adapter_model.safetensors")
    monkeypatch.chdir(tmp_path)
    r = cli(["merge", "--adapters", "out", "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines()[:2] == [
        "lorakit: error: no complete adapter checkpoint under out; each one is incomplete:",
        f"  {RUN}/checkpoint-10: adapter_model.safetensors is not a regular file",
    ]


# --- train --from: records that are not what lorakit wrote ----------------------------------------

RECORD_HINT = "  hint: give the lorakit-run.yaml that `lorakit train` wrote into its output dir"


def test_from_deeply_nested_yaml(cli, tmp_path):
    record = tmp_path / "rec.yaml"
    record.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    r = cli(["train", "--from", str(record), "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines() == [f"lorakit: error: --from {record}: nested too deeply to be a run record",
                                     RECORD_HINT]


def test_from_alias_bomb_is_refused_before_it_expands(cli, tmp_path):
    # 10 ** 9 strings from 600 bytes: the render would have spelled them all out (it ran for minutes)
    lines = ["lorakit_record: 1", "swift_major: 4", "x0: &a0 [q,q,q,q,q,q,q,q,q,q]"]
    lines += [f"x{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    lines += ["preset: {command: sft, args: {model: m, system: *a9}}"]
    record = tmp_path / "rec.yaml"
    record.write_text("\n".join(lines) + "\n")
    r = cli(["train", "--from", str(record), "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines() == [
        f"lorakit: error: --from {record}: expands to more than 100000 values (YAML aliases?): "
        "not a record lorakit wrote", RECORD_HINT]


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_from_a_fifo_or_device_is_refused_not_read_forever(cli, tmp_path, kind):
    path = tmp_path / "rec.yaml" if kind == "fifo" else Path(kind)
    if kind == "fifo":
        os.mkfifo(path)  # no writer: reading it blocked lorakit forever
    what = "a FIFO (named pipe)" if kind == "fifo" else "a character device"
    r = cli(["train", "--from", str(path), "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines() == [f"lorakit: error: --from {path}: is {what}, not a YAML file", RECORD_HINT]


# --- numbers past what a float holds ----------------------------------------------------------------

@pytest.mark.parametrize("key,default", [("lora_rank", 8), ("max_length", 2048), ("per_device_train_batch_size", 1)])
def test_plan_refuses_a_count_too_large_to_plan(cli, key, default):
    big = 10 ** 400  # planmath divides in floats: OverflowError
    r = cli(["plan", "-p", "single", "--set", f"{key}={big}"])
    assert r.code == 2
    assert r.stderr.splitlines()[-2:] == [
        f"lorakit: error: {key} {big} (--set) is too large to plan (more than 2**53)",
        f"  hint: give {key} a realistic value, e.g. --set {key}={default}"]


@pytest.mark.parametrize("value", ["1e309", "inf"])
def test_plan_gpu_mem_infinite(cli, value):
    r = cli(["plan", "-p", "single", "--gpu-mem", value])
    assert r.code == 2
    assert r.stderr.splitlines()[-2:] == ["lorakit: error: --gpu-mem inf is not a positive number of GiB",
                                          "  hint: e.g. --gpu-mem 80"]


# --- paths ------------------------------------------------------------------------------------------

LOOP_HINT = "  hint: point the path at a real directory or file (`ls -l` shows where each link goes)"


def test_merge_output_dir_through_a_symlink_loop(cli, tmp_path, monkeypatch):
    make_run(tmp_path / "out")
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    monkeypatch.chdir(tmp_path)
    r = cli(["merge", "--adapters", "out", "--output-dir", "loop1/merged", "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines()[-2:] == [
        f"lorakit: error: {tmp_path}/loop1/merged: a symlink loop (a link that leads back to itself)", LOOP_HINT]


def test_resume_with_output_dir_a_symlink_loop(cli, tmp_path, monkeypatch):
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    monkeypatch.chdir(tmp_path)
    r = cli(["train", "-p", "single", "--output-dir", "loop1", "--resume", "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines() == [
        f"lorakit: error: {tmp_path}/loop1: a symlink loop (a link that leads back to itself)", LOOP_HINT]


def test_runs_with_an_empty_path_is_not_the_current_directory(cli):
    # `lorakit runs "$OUT"` with OUT unset listed whatever the current directory held
    r = cli(["runs", ""])
    assert r.code == 2
    assert r.stderr.splitlines() == [
        "lorakit: error: runs '': an empty path would be taken as the current directory",
        "  hint: give the output dir a `lorakit train` wrote to; for the current directory pass ."]


# --- the ends of a process: a closed pipe, Ctrl-C ---------------------------------------------------

def run_into_closed_pipe(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """lorakit with stdout a pipe nobody reads (`| head -1` after head is gone): every write fails."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        return subprocess.run([sys.executable, "-m", "lorakit", *args], stdout=write_end, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, cwd=tmp_path, env=env, text=True, timeout=120)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [["presets", "list"], ["import", "tests/data/scripts/train_then_merge.sh"],
                                  ["--help"]])
def test_closed_stdout_exits_141_quietly_like_git_and_coreutils(tmp_path, args):
    # Typer exits 1 (lorakit's "environment problem"); `git log | head -1` and `seq 1 99999 | head -1`
    # die of SIGPIPE, which the shell reports as 141 = 128 + 13
    if args[0] == "import":
        args = ["import", str(REPO / args[1])]
    done = run_into_closed_pipe(args, tmp_path)
    assert done.returncode == 141
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
    if args[0] != "import":  # import's findings go to stderr, which is still open
        assert done.stderr == ""


def test_ctrl_c_while_the_command_loads_is_a_quiet_130(cli, monkeypatch):
    """Ctrl-C in the ~0.2 s lorakit spends importing the command, before Typer (which answers a
    Ctrl-C inside a command with a quiet 130) runs it: was a KeyboardInterrupt traceback."""
    from lorakit.cli import app

    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "_module", interrupted)
    r = cli(["presets", "list"])
    assert (r.code, r.stdout, r.stderr) == (130, "", "")


# --- a --log file that stops taking writes mid-run --------------------------------------------------

@pytest.mark.parametrize("code", [0, 3])
def test_log_on_a_full_disk_keeps_the_run_and_its_output(tmp_path, code):
    """/dev/full answers every write with ENOSPC, as a full disk does: the write in the reader
    thread and the close at the end were OSError tracebacks, and lorakit exited 1 for a run
    that succeeded. Now: one line says so, the output comes to the terminal, the child's code."""
    from test_cli_progress import chatty_env, lorakit

    done = lorakit(["train", "-p", "single", "--log", "/dev/full"], chatty_env(tmp_path, code), tmp_path)
    err = done.stderr.decode()
    assert done.returncode == code
    assert "OSError" not in err and "lorakit/progress.py" not in err
    assert ("lorakit: --log /dev/full: cannot write it any more: No space left on device; "
            "the rest of ms-swift's output follows here") in err.splitlines()
    assert done.stdout.endswith(b"{'loss': '1.5', 'global_step/max_steps': '1/2', 'remaining_time': '1s'}\n")
    assert "all of ms-swift's output is in" not in err


@pytest.mark.parametrize("value,shown", [("nan", "nan"), ("-1", "-1.0"), ("0", "0.0"), ("1e309", "inf")])
def test_rollout_wait_must_be_a_finite_time(cli, value, shown):
    # nan: `time.monotonic() > deadline` is never true, so a rollout that never answered was polled forever
    r = cli(["rlhf", "-p", "grpo_server", "--rollout-wait", value, "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines()[-1] == (f"Error: Invalid value for '--rollout-wait': {shown} is not a finite "
                                         "number of seconds above 0; e.g. --rollout-wait 600 (the default)")


# --- lorakit import of scripts bashlex reads but cannot walk ------------------------------------

@pytest.mark.parametrize("body,line", [
    ("(" * 3000 + "swift sft --model m" + ")" * 3000 + "\n", 1),
    ("echo hi\n" + "{ " * 3000 + "swift sft --model m; " + "}; " * 3000 + "\n", 2),
])
def test_import_of_a_script_nested_past_pythons_stack(cli, tmp_path, body, line):
    # bashlex parsed it; its own visitors (posshifter, the heredoc end finder) then recursed once per
    # level: a RecursionError traceback
    script = tmp_path / "deep.sh"
    script.write_text(body)
    r = cli(["import", str(script)])
    assert r.code == 2
    assert r.stderr.splitlines()[0] == (
        f"lorakit: error: {script}:{line}: bash parses this script, but lorakit's bash reader (bashlex) "
        "cannot read this part of it (nested too deeply)")


def test_import_a_flag_with_no_name_is_a_stray_item(cli, tmp_path):
    # `--=x` names no flag (argparse leaves it in remaining_argv); it was imported as a key ''
    script = tmp_path / "train.sh"
    script.write_text("swift sft --model m --=x\n")
    r = cli(["import", str(script)])
    assert r.code == 2
    assert "? ''" not in r.stdout
    assert (f"error[script.positional] {script}: line 1: '--=x' is not a flag or a flag's value: ms-swift "
            "refuses it (remaining_argv), and a preset cannot hold it") in r.stderr.splitlines()


@pytest.mark.parametrize("out", [None, "my.yaml"])
def test_import_preset_invalid_names_the_file_once(cli, tmp_path, monkeypatch, out):
    script = tmp_path / "train.sh"
    script.write_text("swift sft --model m --a.b x\n")
    monkeypatch.chdir(tmp_path)
    r = cli(["import", str(script), *(["-o", out] if out else [])])
    assert r.code == 2
    where = out or "the imported preset"
    assert (f"error[preset.invalid] {where}: key args.'a.b' is not an ms-swift flag name") in r.stderr.splitlines()


# --- merge: an output dir given where lorakit merge does not read it -------------------------------

@pytest.mark.parametrize("item,flag,option", [
    ("output_dir=elsewhere", "output_dir", "--output-dir"),
    ("args.output-dir=elsewhere", "output_dir", "--output-dir"),
    ("adapters=other", "adapters", "--adapters"),
])
def test_merge_set_of_a_path_lorakit_renders_itself_is_refused(cli, tmp_path, monkeypatch, item, flag, option):
    # was dropped without a word: the merge went to <checkpoint>-merged, not where --set said
    make_run(tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    r = cli(["merge", "--adapters", "out", "--set", item, "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines() == [
        f"lorakit: error: merge: --set {item}: lorakit merge passes ms-swift's --{flag} itself",
        f"  hint: give it as lorakit's {option} option"]


def test_merge_preset_with_an_output_dir_is_refused(cli, tmp_path, monkeypatch):
    make_run(tmp_path / "out")
    (tmp_path / "my_merge.yaml").write_text("extends: merge\nargs:\n  output_dir: merged\n")
    monkeypatch.chdir(tmp_path)
    r = cli(["merge", "--adapters", "out", "-p", "my_merge.yaml", "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines() == [
        "lorakit: error: merge: preset 'my_merge.yaml' sets output_dir: lorakit merge passes ms-swift's "
        "--output_dir itself",
        "  hint: delete output_dir from the preset; give it as lorakit's --output-dir option"]


@pytest.mark.parametrize("command", ["infer", "deploy", "eval", "rlhf"])
def test_set_adapters_beside_adapters_is_refused(cli, tmp_path, monkeypatch, command):
    # the picked checkpoint replaced it without a word
    make_run(tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    preset = ["-p", "dpo"] if command == "rlhf" else []
    r = cli([command, *preset, "--adapters", "out", "--set", "adapters=other", "--dry-run"])
    assert r.code == 2
    assert r.stderr.splitlines() == [
        f"lorakit: error: --set adapters=other: lorakit {command} renders --adapters from its --adapters option",
        "  hint: give the adapter as --adapters PATH, not --set"]


def test_train_into_an_output_dir_whose_index_is_a_fifo(cli, tmp_path, monkeypatch):
    # os.open(O_WRONLY) of a FIFO waits for a reader: lorakit hung before launching anything
    from conftest import FAKES

    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "lorakit-runs.jsonl")
    record = tmp_path / "fake.json"
    r = cli(["train", "-p", "single", "--output-dir", str(out)],
            env={"PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "FAKE_SWIFT_RECORD": str(record)})
    assert r.code == 2  # what the named output dir holds, not the disk's fault
    assert r.stderr.splitlines()[-2:] == [
        f"lorakit: error: cannot write the run record under {out}: lorakit-runs.jsonl is a FIFO (named pipe), "
        "not a file to append to (ENXIO)", "  hint: make the output dir writable, or choose another --output-dir"]
    assert not record.exists()  # ms-swift never started
    assert list((out / "lorakit-runs").iterdir()) == []  # and no record names a launch that did not happen


def test_many_runs_without_checkpoints_are_named_a_few_at_a_time(cli, tmp_path):
    for i in range(8):
        (tmp_path / f"v{i}-20261127-10150{i}").mkdir()
    r = cli(["checkpoints", str(tmp_path)])
    assert r.code == 2
    assert r.stderr.splitlines()[0] == (
        f"lorakit: error: no adapter checkpoint found under {tmp_path}: run v7-20261127-101507, v6-20261127-101506, "
        "v5-20261127-101505, v4-20261127-101504, v3-20261127-101503, ... (3 more) saved no checkpoint-N directory yet")


def test_runs_of_a_binary_index_says_five_skipped_lines_and_counts_the_rest(cli, tmp_path):
    (tmp_path / "lorakit-runs.jsonl").write_bytes(b"\xff\xfe garbage\n" * 40)
    r = cli(["runs", str(tmp_path)])
    assert r.code == 0
    index = tmp_path / "lorakit-runs.jsonl"
    assert r.stderr.splitlines() == [
        *(f"lorakit: {index} line {n}: not UTF-8: skipped" for n in range(1, 6)),
        f"lorakit: {index}: 35 more lines skipped",
        f"lorakit: index: {index}"]


def test_import_never_overwrites_the_script_through_a_hard_link(cli, tmp_path, monkeypatch):
    script = tmp_path / "train.sh"
    body = "swift sft --model m --dataset d.jsonl\n"
    script.write_text(body)
    os.link(script, tmp_path / "train.yaml")  # the same file under a second name
    monkeypatch.chdir(tmp_path)
    r = cli(["import", "train.sh", "-o", "train.yaml", "--force"])
    assert r.code == 2
    assert r.stderr.splitlines() == [
        "lorakit: error: -o train.yaml: is the script being imported: not overwritten, even with --force",
        "  hint: write the preset to another file: -o train-preset.yaml"]
    assert script.read_text() == body


# --- a preset file name with a newline, rendered into a script's header comment -------------------

@pytest.mark.parametrize("fmt", ["sbatch", "sh", "swift-yaml", "trainjob"])
def test_a_preset_name_with_a_newline_stays_inside_the_header_comment(cli, tmp_path, fmt):
    # '# lorakit train -p a\necho pwned.yaml' ended the comment: the next line ran as a command in
    # the batch script (and stopped sbatch reading the #SBATCH lines after it)
    preset = tmp_path / "a\n#SBATCH --wrap=id\necho pwned.yaml"
    preset.write_text("extends: single\n")
    r = cli(["train", "-p", str(preset), "--dry-run", "--format", fmt, "--set", "launch.image=img"])
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    title = f"# lorakit train -p {ascii(str(preset))}, rendered for ms-swift 4.x"
    assert title in lines
    assert not [line for line in lines if line.startswith(("echo pwned", "#SBATCH --wrap"))]


def test_a_loss_too_large_for_a_float_is_no_loss(cli, tmp_path, monkeypatch):
    # json reads a 400-digit int; math.isfinite(10**400) raised OverflowError in checkpoints and --resume
    ckpt = make_run(tmp_path / "out")
    (ckpt / "trainer_state.json").write_text(
        '{"global_step": 10, "max_steps": 10, "log_history": [{"step": 10, "loss": %d}]}' % 10 ** 400)
    monkeypatch.chdir(tmp_path)
    r = cli(["checkpoints", "out", "--json"])
    assert r.code == 0, r.stderr
    assert [row["loss"] for row in json.loads(r.stdout)] == [1.0]  # logging.jsonl's, the only readable one
