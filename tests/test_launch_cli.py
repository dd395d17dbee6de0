"""Launch tier through the real entry point, with a fake `swift` on PATH recording argv/env:
what --dry-run prints, pasted into bash, runs exactly what `lorakit train` runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAKES, REPO

# Variables bash itself sets or changes in a child; everything else must be identical.
SHELL_NOISE = {"_", "SHLVL", "PWD", "OLDPWD", "PS1", "PS2", "FAKE_SWIFT_RECORD"}


def lorakit(args, env, cwd=None, **kw):
    # cwd: a real launch writes its run record into the (relative) output dir
    cwd = cwd or Path(env["FAKE_SWIFT_RECORD"]).parent
    return subprocess.run([sys.executable, "-m", "lorakit", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, **kw)


def fake_env(tmp_path, record: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()}
    env["PATH"] = f"{FAKES}{os.pathsep}{env['PATH']}"
    # Off a terminal lorakit sets PYTHONUNBUFFERED=1 unless the env already says (then it is the
    # user's, kept): said here, so the shell running pytest does not decide what the child gets.
    # test_off_a_terminal_the_child_is_unbuffered covers lorakit setting it.
    env["PYTHONUNBUFFERED"] = "1"
    env["FAKE_SWIFT_RECORD"] = str(tmp_path / record)
    env.update(extra)
    return env


def recorded(path: Path) -> tuple[list[str], dict]:
    data = json.loads(path.read_text())
    env = {k: v for k, v in data["env"].items() if k not in SHELL_NOISE}
    return data["argv"][1:], env


# Left in a shell by a debugging session or an outer job; none may reach the child.
STALE = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "x", "RAY_SWIFT_ARGS": "{}"}

@pytest.fixture(autouse=True)
def local_datasets(tmp_path):
    """The local datasets the cases name, in the dir the launches run from: a missing local
    dataset is an error (ms-swift would take it for a hub id)."""
    for name in ("a b.jsonl", "c.jsonl"):
        (tmp_path / name).write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n' * 20)


PASTE_CASES = [
    ["train", "-p", "ddp_device_map"],
    ["train", "-p", "zero2", "--gpus", "2,3", "--set", "system=It's a \"test\" $HOME `x`"],
    ["train", "-p", "single", "--output-dir", "my out", "--", "--max_steps", "3", "--dataset", "a b.jsonl"],
]


@pytest.mark.parametrize("args", PASTE_CASES)
def test_dry_run_pasted_into_bash_runs_what_lorakit_runs(tmp_path, args):
    env = fake_env(tmp_path, "via_bash.json", **STALE)  # launcher-owned: must be unset both ways
    printed = lorakit([args[0], "--dry-run", *args[1:]], env)
    assert printed.returncode == 0, printed.stderr
    pasted = subprocess.run(["bash", "-c", printed.stdout], env=env, timeout=60, cwd=tmp_path)
    assert pasted.returncode == 0
    launched = lorakit(args, fake_env(tmp_path, "via_lorakit.json", **STALE))
    assert launched.returncode == 0, launched.stderr
    assert recorded(tmp_path / "via_bash.json") == recorded(tmp_path / "via_lorakit.json")
    argv, child_env = recorded(tmp_path / "via_lorakit.json")
    assert argv[0] == "sft" and "--dry-run" not in argv
    assert not set(STALE) & set(child_env)


def test_launch_env_and_argv_are_exact(tmp_path):
    env = fake_env(tmp_path, "rec.json")
    result = lorakit(["train", "-p", "zero2", "--gpus", "0,1", "--set", "lora_rank=16"], env)
    assert result.returncode == 0, result.stderr
    argv, child_env = recorded(tmp_path / "rec.json")
    assert child_env["CUDA_VISIBLE_DEVICES"] == "0,1" and child_env["NPROC_PER_NODE"] == "2"
    assert argv[argv.index("--lora_rank") + 1] == "16"
    assert {k: v for k, v in child_env.items() if k not in ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE")} == \
        {k: v for k, v in env.items() if k not in SHELL_NOISE}
    assert f"lorakit: running {FAKES / 'swift'} (ms-swift " in result.stderr


def test_off_a_terminal_the_child_is_unbuffered(tmp_path):
    # `lorakit train > log`, `| tee`, nohup: the one variable lorakit adds beyond the job's, and says
    env = {k: v for k, v in fake_env(tmp_path, "rec.json").items() if k != "PYTHONUNBUFFERED"}
    result = lorakit(["train", "-p", "single"], env)
    assert result.returncode == 0, result.stderr
    _, child_env = recorded(tmp_path / "rec.json")
    assert child_env == {**{k: v for k, v in env.items() if k not in SHELL_NOISE},
                         "CUDA_VISIBLE_DEVICES": "0", "PYTHONUNBUFFERED": "1"}
    assert ("lorakit: set PYTHONUNBUFFERED=1 for ms-swift: lorakit's stdout is not a terminal, and Python would "
            "otherwise hold its log lines back until it exits") in result.stderr.splitlines()


@pytest.mark.parametrize("mode, code", [("exit:0", 0), ("exit:3", 3), ("exit:42", 42), ("kill:9", 137),
                                        ("kill:15", 143)])
def test_exit_code_passthrough(tmp_path, mode, code):
    result = lorakit(["train", "-p", "single"], fake_env(tmp_path, "rec.json", FAKE_SWIFT_MODE=mode))
    assert result.returncode == code, result.stderr


def test_swift_missing_is_an_environment_error(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # nothing there
    result = subprocess.run([str(Path(sys.executable)), "-m", "lorakit", "train", "-p", "single"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-2:] == [
        "lorakit: error: ms-swift's `swift` command was not found on PATH",
        "  hint: pip install 'lorakit[swift]' (or: pip install ms-swift) in this environment",
    ]


def test_errors_launch_nothing(tmp_path):
    result = lorakit(["train", "-p", "zero2", "--gpus", "0,0"], fake_env(tmp_path, "rec.json"))
    assert result.returncode == 2
    assert not (tmp_path / "rec.json").exists()


def other_swift(tmp_path, version: str):
    """A `swift` console script (as pip writes it) whose python answers doctor's version probe like
    an environment with ms-swift `version`; (its path, an env with it first on PATH)."""
    python = tmp_path / "other-python"
    python.write_text(f"#!/bin/sh\necho '{{\"ms-swift\": \"{version}\", \"torch\": null, \"transformers\": null, "
                      "\"peft\": null, \"deepspeed\": null, \"flash-attn\": null}'\n")
    python.chmod(0o755)
    (tmp_path / "bin").mkdir()
    swift = tmp_path / "bin" / "swift"
    swift.write_text(f"#!{python}\nfrom swift.cli.main import cli_main\n")
    swift.chmod(0o755)
    return swift, dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")


def test_a_swift_from_another_ms_swift_major_is_refused_before_launch(tmp_path):
    swift, env = other_swift(tmp_path, "3.12.6")
    result = lorakit(["train", "-p", "single", "--swift-version", "4"], env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: {swift} runs ms-swift 3.12.6, but this command was rendered for ms-swift 4.x: "
        "it would reject flags such as --tuner_type",
        "  hint: pass --swift-version 3, or put the ms-swift 4.x `swift` first on PATH"]
    assert not (tmp_path / "output").exists()  # nothing launched, no run record


def test_a_swift_of_ms_swift_2_is_refused_with_an_install_hint(tmp_path):
    """ms-swift #3321: 3.x flags on a 2.x install; `--swift-version 2` is nothing lorakit renders."""
    swift, env = other_swift(tmp_path, "2.6.1")
    result = lorakit(["train", "-p", "single", "--swift-version", "3"], env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: {swift} runs ms-swift 2.6.1, which takes 2.x flags (--model_id_or_path, --sft_type, "
        "--ckpt_dir): it would reject this command, rendered for ms-swift 3.x (lorakit renders for 3.x and 4.x)",
        "  hint: pip install 'ms-swift>=3,<4' in the environment `swift` runs from"]
