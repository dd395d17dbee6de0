"""The progress reader on recorded real ms-swift 4.6.0 output (tests/data/progress/, see record.py
there), on truncated and garbled lines; the tee and its failure report; launch.run with output."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FAKES, REPO
from lorakit import launch
from lorakit.progress import Watch, failure_report
from lorakit.progresslog import Step, describe, merge, parse_duration, parse_line

DATA = REPO / "tests" / "data" / "progress"
CHUNKS = [(c["fd"], base64.b64decode(c["b64"]))
          for c in map(json.loads, (DATA / "swift46_sft.chunks.jsonl").read_text().splitlines())]
RAW = b"".join(data for _, data in CHUNKS)
assert RAW == (DATA / "swift46_sft.txt").read_bytes()  # the readable copy is the same recording


def segments(raw: bytes) -> list:
    return raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def dict_lines() -> list:
    return [s for s in segments(RAW) if "global_step/max_steps" in s]


# --- the parser, on what ms-swift really printed -------------------------------------------

def test_printed_log_dicts():
    steps = [parse_line(s) for s in dict_lines()]
    assert [(s.step, s.total) for s in steps] == [(1, 2), (2, 2), (2, 2)]
    first = steps[0]
    assert (first.loss, first.learning_rate, first.remaining, first.sec_per_it) == (5.772, 5e-05, 4.0, 3.502)
    assert steps[2].loss == 5.77  # the closing dict has train_loss, no loss


def test_logging_jsonl_lines():
    lines = (DATA / "swift46_logging.jsonl").read_text().splitlines()
    steps = [parse_line(line) for line in lines]
    assert [(s.step, s.total) if s else None for s in steps] == [(1, 2), (2, 2), (2, 2), None]
    assert steps[0].loss == pytest.approx(5.77200079)


def test_tqdm_frames_give_the_step_between_log_dicts():
    frames = [s for s in segments(RAW) if s.startswith("Train:")]
    steps = {(p.step, p.total) for p in map(parse_line, frames)}
    assert steps == {(0, 2), (1, 2), (2, 2)}
    assert parse_line("Train:  50%|#####     | 1/2 [00:03<00:03,  3.46s/it]") == \
        Step(1, 2, remaining=3.0, sec_per_it=3.46)
    assert parse_line("Train:   1%|          | 3/400 [00:01<02:12,  3.00it/s]").sec_per_it == pytest.approx(1 / 3)
    assert parse_line("Train: :  50%|##| 5/10 [01:02:03<?, ?it/s]") == Step(5, 10)  # Megatron's desc


@pytest.mark.parametrize("line", [
    "Map:  50%|#####     | 8/16 [00:00<00:00, 100.00 examples/s]",  # datasets, not training
    "Writing model shards: 100%|##########| 1/1 [00:00<00:00, 605.33it/s]",
    "Val:  50%|#####     | 1/2 [00:03<00:03,  3.46s/it]",
    "[INFO:swift] args: SftArguments(logging_steps=5, max_steps=2)",
    "{'loss': '5.772', 'grad_norm': '1.209', 'learning_rate': '5e-05', 'token_acc",  # cut before the step
    "{'loss': 1.0, 'global_step/max_steps': '3/2'}",  # step past the end
    "{'loss': 1.0, 'global_step/max_steps': '0/0'}",
    "{'loss': 1.0, 'global_step/max_steps': 'x/2'}",
    "", "}", "{", "'global_step/max_steps'", "\x00\xff\ufffd",
])
def test_lines_that_are_not_progress(line):
    assert parse_line(line) is None


@pytest.mark.parametrize("line, expected", [
    ("{'loss': 'nan', 'global_step/max_steps': '7/9'}", Step(7, 9, loss=math.nan)),
    ("{'loss': 'abc', 'learning_rate': '', 'global_step/max_steps': '7/9'}", Step(7, 9)),
    ('[rank0]: {"global_step/max_steps": "7/9", "memory(GiB)": 71.5, "remaining_time": "1h 2m 3s"}',
     Step(7, 9, memory_gib=71.5, remaining=3723.0)),
    ("garbage {'iteration': '10/100', 'loss': 2.5, 'elapsed_time': '1d 0h 0m 1s'} tail",
     Step(10, 100, loss=2.5)),
])
def test_garbled_but_readable(line, expected):
    got = parse_line(line)
    assert (got.step, got.total, got.learning_rate, got.memory_gib, got.remaining) == \
        (expected.step, expected.total, expected.learning_rate, expected.memory_gib, expected.remaining)
    assert got.loss == expected.loss or (math.isnan(got.loss) and math.isnan(expected.loss))


def test_every_truncation_of_a_recorded_line_is_safe():
    line = dict_lines()[0]
    cut_after_step = line.index("'1/2'") + len("'1/2'")
    for n in range(len(line) + 1):
        got = parse_line(line[:n])
        if n < cut_after_step:
            assert got is None, n
        else:
            assert (got.step, got.total) == (1, 2), n
            assert got.loss == 5.772  # comes before the step in ms-swift's dicts


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(0, 400), st.text(max_size=5))
def test_garbled_lines_never_raise(noise, at, insert):
    line = dict_lines()[1]
    for candidate in (noise, line[:at] + insert + line[at:], noise + line, line.replace("'", noise[:1])):
        got = parse_line(candidate)
        assert got is None or 0 <= got.step <= got.total > 0


@pytest.mark.parametrize("text, seconds", [("27s", 27), ("1m 5s", 65), ("2h 0m 1s", 7201),
                                           ("1d 1h 1m 1s", 90061), ("00:21", 21), ("1:02:03", 3723),
                                           ("?", None), ("", None), (None, None), ("soon", None)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_merge_never_steps_back():
    frame, late_dict = Step(2, 4, sec_per_it=1.0), Step(1, 4, loss=3.0)
    assert merge(frame, late_dict) == Step(2, 4, loss=3.0, sec_per_it=1.0)
    assert merge(frame, Step(1, 8)) == Step(1, 8)  # a new total: another phase, start over


def test_merge_keeps_what_a_frame_does_not_say_and_describe():
    logged = Step(1, 4, loss=2.0, learning_rate=1e-4, remaining=30, sec_per_it=10.0, memory_gib=7.5)
    shown = merge(logged, Step(2, 4, remaining=20.0, sec_per_it=0.5))
    assert shown == Step(2, 4, loss=2.0, learning_rate=1e-4, remaining=20.0, sec_per_it=0.5, memory_gib=7.5)
    assert describe(shown) == "loss 2  lr 0.0001  2.00 it/s  ETA 0:00:20  7.5 GiB"
    assert describe(Step(4, 4, sec_per_it=12.0, remaining=0)) == "12.00 s/it"


# --- the tee --------------------------------------------------------------------------------

class FakeTTY(io.BytesIO):
    def isatty(self):
        return True


def tty_console():
    from rich.console import Console

    return Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)


def replay(watch: Watch, chunks) -> Watch:
    with watch:
        for fd, data in chunks:
            watch.feed(fd, data)
    return watch


def rechunk(size: int) -> list:
    """The recorded bytes, each stream cut into `size`-byte chunks (a pipe may split anywhere)."""
    out = []
    for fd, data in CHUNKS:
        out += [(fd, data[i:i + size]) for i in range(0, len(data), size)]
    return out


def test_bar_on_a_tty_reaches_2_of_2_and_prints_the_lines_above_it():
    console = tty_console()
    watch = replay(Watch(console=console, stdout=FakeTTY(), stderr=FakeTTY()), CHUNKS)
    assert (watch.bar.last.step, watch.bar.last.total) == (2, 2)
    task = watch.bar.progress.tasks[0]
    assert (task.completed, task.total) == (2, 2)
    shown = console.file.getvalue()
    assert "{'loss': '5.772'" in shown and "[INFO:swift] End time of running main" in shown
    assert "Train:  50%" not in shown  # tqdm's overwritten frames: the bar shows them instead
    assert "2/2" in shown.splitlines()[-2] and "loss 5.77" in shown.splitlines()[-2]
    assert watch.streams[1].getvalue() == watch.streams[2].getvalue() == b""


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_lines_do_not_depend_on_where_the_pipe_split_the_output(size):
    whole = replay(Watch(console=tty_console(), stdout=FakeTTY(), stderr=FakeTTY()), CHUNKS)
    split = replay(Watch(console=tty_console(), stdout=FakeTTY(), stderr=FakeTTY()), rechunk(size))
    assert list(split.lines) == list(whole.lines)
    assert split.bar.last == whole.bar.last


def test_log_file_gets_every_byte_and_the_terminal_only_the_bar(tmp_path):
    log, console = tmp_path / "run.log", tty_console()
    out, err = FakeTTY(), FakeTTY()
    replay(Watch(log=str(log), console=console, stdout=out, stderr=err), CHUNKS)
    assert log.read_bytes() == RAW
    assert out.getvalue() == err.getvalue() == b""
    assert "{'loss'" not in console.file.getvalue() and "2/2" in console.file.getvalue()


def test_piped_output_gets_pythonunbuffered_and_says_so(tmp_path, capsys):
    with Watch(log=str(tmp_path / "run.log"), stdout=io.BytesIO(), stderr=io.BytesIO()) as watch:
        assert watch.child_env({"A": "1"}) == {"A": "1", "PYTHONUNBUFFERED": "1"}
        assert "lorakit: set PYTHONUNBUFFERED=1 for ms-swift" in capsys.readouterr().err
        assert watch.child_env({"PYTHONUNBUFFERED": ""}) == {"PYTHONUNBUFFERED": ""}  # the user's own


def test_log_file_off_a_tty(tmp_path):
    log = tmp_path / "run.log"
    watch = replay(Watch(log=str(log), stdout=io.BytesIO(), stderr=io.BytesIO()), CHUNKS)
    assert watch.bar is None and watch.output == watch.feed
    assert log.read_bytes() == RAW and watch.streams[2].getvalue() == b""


def test_off_a_tty_nothing_is_in_between(capsys):
    with Watch(stdout=FakeTTY(), stderr=io.BytesIO()) as watch:
        assert watch.output is None and not watch.piped
        assert watch.child_env({"A": "1"}) == {"A": "1"}  # stdout a terminal: nothing to unbuffer
    assert capsys.readouterr().err == ""


def test_a_stdout_that_is_not_a_terminal_unbuffers_the_child(capsys):
    # `lorakit train | tee log`, `> log`, nohup: the child writes there itself, block-buffered
    with Watch(stdout=io.BytesIO(), stderr=io.BytesIO()) as watch:
        assert watch.output is None and not watch.piped
        assert watch.child_env({"A": "1"}) == {"A": "1", "PYTHONUNBUFFERED": "1"}
        assert watch.child_env({"PYTHONUNBUFFERED": "0"}) == {"PYTHONUNBUFFERED": "0"}  # the user's own
    assert capsys.readouterr().err == (
        "lorakit: set PYTHONUNBUFFERED=1 for ms-swift: lorakit's stdout is not a terminal, and Python would "
        "otherwise hold its log lines back until it exits\n")
    with Watch(show=False, console=tty_console()) as watch:
        assert watch.output is None


def test_bar_on_stderr_while_stdout_goes_to_a_file():
    out = io.BytesIO()  # `lorakit train > out.txt` on a terminal
    watch = replay(Watch(console=tty_console(), stdout=out, stderr=FakeTTY()), CHUNKS)
    assert out.getvalue() == b"".join(data for fd, data in CHUNKS if fd == 1)
    assert "{'loss'" not in watch.console.file.getvalue()


def test_crlf_split_across_chunks_and_an_unfinished_last_line():
    watch = replay(Watch(console=tty_console(), stdout=FakeTTY(), stderr=FakeTTY()),
                   [(2, b"one\r"), (2, b"\ntwo\r\n\rthree"), (1, b"\xff half")])
    lines = list(watch.lines)
    assert lines[:2] == ["one", "two"] and sorted(lines[2:]) == ["three", "\ufffd half"]


def test_a_line_written_right_after_a_tqdm_frame_is_a_line_of_its_own():
    watch = replay(Watch(console=tty_console(), stdout=FakeTTY(), stderr=FakeTTY()), [
        (2, b"\rTrain:   0%|          | 0/2 [00:00<?, ?it/s]/x.py:759: UserWarning: pin\n"),
        (2, b"\rMap: 100%|##| 16/16 [00:00<00:00, 9.10 examples/s]Traceback (most recent call last):\n")])
    assert list(watch.lines) == ["/x.py:759: UserWarning: pin", "Traceback (most recent call last):"]
    assert watch.bar.last == Step(0, 2)
    assert "0/2 [00:00" not in watch.console.file.getvalue()


# --- the failure report ---------------------------------------------------------------------

def test_failure_report_names_torchruns_root_cause_and_shows_its_traceback():
    lines = (DATA / "torchrun_rank1_failure.txt").read_text().splitlines()
    report = failure_report(lines, 1, tail=5)
    assert report[0] == "swift exited with code 1"
    assert report[1] == "rank 1 failed first (torchrun's root cause); the first traceback in the output:"
    assert report[2] == "  Traceback (most recent call last):"
    assert report[report.index("  RuntimeError: boom on rank 1")] and "last 5 lines of the output:" in report
    assert report[-1] == "  " + lines[-1]
    assert not any("torch/distributed/run.py" in x for x in report[:report.index("last 5 lines of the output:")])


def test_failure_report_picks_the_failing_ranks_prefixed_lines():
    lines = ["[rank0]: Traceback (most recent call last):", '[rank0]:   File "a.py", line 1',
             "[rank0]: ValueError: rank 0 stopped", "[rank1]: Traceback (most recent call last):",
             '[rank1]:   File "b.py", line 2', "[rank1]: OSError: disk full",
             "Root Cause (first observed failure):", "[0]:", "  rank      : 1 (local_rank: 1)"]
    report = failure_report(lines, 1, tail=2)
    assert report[1:5] == ["rank 1 failed first (torchrun's root cause); its traceback:",
                           "  [rank1]: Traceback (most recent call last):", '  [rank1]:   File "b.py", line 2',
                           "  [rank1]: OSError: disk full"]


def test_failure_report_of_a_plain_traceback_in_the_tail_and_a_signal():
    lines = ["loading", "Traceback (most recent call last):", '  File "x.py", line 3', "KeyError: 'x'"]
    assert failure_report(lines, 137) == ["swift exited with code 137 (128+SIGKILL)",
                                          "last 4 lines of the output:", *["  " + x for x in lines]]
    assert failure_report([], 2) == ["swift exited with code 2"]


def test_report_prints_only_on_failure(capsys, tmp_path):
    watch = replay(Watch(log=str(tmp_path / "run.log"), stdout=io.BytesIO(), stderr=io.BytesIO()),
                   [(2, b"Traceback (most recent call last):\n  File \"x\"\nValueError: bad\n")])
    assert watch.report(0) == 0 and capsys.readouterr().err == ""
    assert watch.report(3) == 3
    assert capsys.readouterr().err.splitlines() == [
        "lorakit: swift exited with code 3", f"lorakit: all of ms-swift's output is in {tmp_path / 'run.log'}",
        "lorakit: last 3 lines of the output:", "  Traceback (most recent call last):", '    File "x"',
        "  ValueError: bad"]


# --- launch.run with output -----------------------------------------------------------------

CHATTY = r"""
import os, sys
sys.stdout.write("out-1\n"); sys.stdout.flush()
os.write(2, b"\rTrain:  50%|#| 1/2 [00:01<00:01,  1.00s/it]")
os.write(1, b"x" * 3_000_000 + b"\n")  # far more than a pipe holds: must not block
os.write(2, b"err-last\n")
sys.exit(int(sys.argv[1]))
"""


@pytest.mark.parametrize("code", [0, 3])
def test_run_hands_over_every_byte_of_both_streams(code):
    got = {1: b"", 2: b""}

    def output(fd, data):
        got[fd] += data

    rc = launch.run([sys.executable, "-c", CHATTY, str(code)], dict(os.environ), output=output)
    assert rc == code
    assert got[1] == b"out-1\n" + b"x" * 3_000_000 + b"\n"
    assert got[2] == b"\rTrain:  50%|#| 1/2 [00:01<00:01,  1.00s/it]err-last\n"


def test_a_broken_output_handler_neither_blocks_nor_fails_the_run():
    def output(fd, data):
        raise RuntimeError("display bug")

    assert launch.run([sys.executable, "-c", CHATTY, "5"], dict(os.environ), output=output) == 5


def test_a_daemon_holding_the_pipe_does_not_hold_up_run(tmp_path):
    env = dict(os.environ, FAKE_SWIFT_MODE="daemon", FAKE_SWIFT_GRANDCHILD_PID_FILE=str(tmp_path / "gc"))
    start = time.monotonic()
    try:
        assert launch.run([str(FAKES / "swift")], env, output=lambda fd, data: None) == 0
        assert time.monotonic() - start < 30  # the daemon lives 120 s with our pipe open
    finally:
        pid = int((tmp_path / "gc").read_text())
        try:
            if b"FAKE_SWIFT" in Path(f"/proc/{pid}/cmdline").read_bytes():  # still the daemon, not a reused pid
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


DRIVER = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from lorakit import launch
from lorakit.progress import Watch
cfg = json.loads(sys.argv[2])
def on_start(pid):
    open(cfg["started"], "w").write(str(pid))
with Watch(log=cfg["log"]) as watch:
    rc = launch.run(cfg["argv"], watch.child_env(cfg["env"]), grace=10, on_start=on_start,
                    output=watch.output)
sys.exit(watch.report(rc))
"""


def test_ctrl_c_is_still_forwarded_when_output_is_piped(tmp_path):
    """The trainer gets SIGINT, saves (1 s), exits 130; lorakit passes 130 through."""
    env = dict(os.environ, FAKE_SWIFT_MODE="trap", FAKE_SWIFT_READY=str(tmp_path / "ready"),
               FAKE_SWIFT_MARKER=str(tmp_path / "marker"))
    cfg = {"argv": [str(FAKES / "swift")], "env": env, "started": str(tmp_path / "started"),
           "log": str(tmp_path / "run.log")}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(REPO / "src"), json.dumps(cfg)],
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists():
        assert time.monotonic() < deadline and driver.poll() is None, "the fake did not start"
        time.sleep(0.02)
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=30)
    assert driver.returncode == 130
    assert (tmp_path / "marker").read_text() == "SIGINT"
    assert "lorakit: swift exited with code 130 (128+SIGINT)" in err
    assert (tmp_path / "run.log").exists()
