"""Proof against the real thing: every built-in preset and every lorakit command in the README
renders an argv that the installed ms-swift's own parser takes with nothing left over
(and the same for ms-swift 3.x, from its own venv, when scripts/test.sh made one)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from test_checkpoints import safetensors_bytes
from lorakit import presets

PARSE = REPO / "scripts" / "swift_parse_check.py"


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines
            if re.match(r"^(\w+=\S+ )*lorakit (train|merge|validate|rlhf)\b", line) and "|" not in line
            and "grpo_server" not in line]  # a paired launch, two commands: tests/test_rlhf.py


def workspace(tmp_path: Path) -> Path:
    """What the README's commands refer to: a checkpoint tree and a user preset."""
    ckpt = tmp_path / "output" / "v0-20261127-101500" / "checkpoint-100"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "Qwen/Qwen3-8B"}))
    # whole weights and a trainer state: merge picks only complete checkpoints
    (ckpt / "adapter_model.safetensors").write_bytes(safetensors_bytes(16))
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 100, "log_history": []}))
    (ckpt / "args.json").write_text(json.dumps({"model": "Qwen/Qwen3-8B", "model_type": "qwen3"}))
    # and the Trainer's own state, which `--resume` needs for a complete checkpoint
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (ckpt / name).write_bytes(b"\0" * 8)
    shutil.copytree(tmp_path / "output", tmp_path / "out_sft")  # the README's SFT -> DPO walk-through
    (tmp_path / "my.yaml").write_text("extends: zero2\nargs: {lora_rank: 16, lora_alpha: 64}\n")
    (tmp_path / "data.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, '
                                         '{"role": "assistant", "content": "hello"}]}\n' * 20)
    (tmp_path / "sft.jsonl").write_text((tmp_path / "data.jsonl").read_text())
    (tmp_path / "prefs.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", '
                                          '"content": "hello"}], "rejected_response": "go away"}\n' * 20)
    # `lorakit train --from output/lorakit-run.yaml`: the record a real zero2 launch writes
    from lorakit import record
    from lorakit.cli.common import JobOptions, job_from_options as build
    from lorakit.render import render

    job = build(JobOptions("zero2"), env={})
    record.write_train_record(job, render(job, {}), cwd=tmp_path)
    return tmp_path


def rendered(words: list[str], cwd: Path, major: int) -> tuple[str, list[str]]:
    env = {}
    while "=" in words[0]:
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert words[0] == "lorakit"
    rest = [w for w in words[2:] if not (words[1] == "validate" and w in ("--json", "--strict"))]
    if "--format" in rest:  # the exports are tested against the launch in test_exports.py
        at = rest.index("--format")
        del rest[at:at + 2]
    # validate checks what train would run: render that with train --dry-run
    command = "train" if words[1] == "validate" else words[1]
    # a record replays the version it was made for (4.x here), so --from takes no --swift-version
    target = [] if "--from" in rest else ["--swift-version", str(major)]
    args = [command, "--dry-run", *target, *rest]
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = run_cli(args, env=env)
    finally:
        os.chdir(old)
    assert result.code == 0, (args, result.stderr)
    tokens = shlex.split(result.stdout.replace("\\\n", " "), comments=True)
    while "=" in tokens[0] or tokens[0] in ("env", "-u") or tokens[0].isupper():
        tokens.pop(0)
    assert tokens[0] == "swift"
    return tokens[1], tokens[2:]


def all_argvs(tmp_path: Path, major: int) -> dict[str, list[tuple[str, list[str]]]]:
    cwd = workspace(tmp_path)
    # the rlhf presets (and the paired GRPO launch) are parsed by ms-swift in tests/test_rlhf.py
    cases = [["lorakit", "train", "-p", name] for name in presets.builtin_names()
             if presets.load(name).data.get("command") == "sft"]
    cases.append(["lorakit", "merge", "--adapters", "output", "--preset", "merge"])
    cases += [shlex.split(line) for line in readme_commands() if major == 4 or "--from" not in line]
    by_command: dict[str, list] = {}
    for words in cases:
        command, argv = rendered(list(words), cwd, major)
        by_command.setdefault(command, []).append((" ".join(words), argv))
    return by_command


def parse_all(python: str, by_command: dict) -> list[tuple[str, dict]]:
    failures = []
    for command, cases in by_command.items():
        out = subprocess.run([python, str(PARSE), command, "--batch"], input=json.dumps([a for _, a in cases]),
                             capture_output=True, text=True, timeout=600, cwd=REPO / "scripts")
        assert out.returncode == 0, out.stderr[-2000:]
        for (words, _), answer in zip(cases, json.loads(out.stdout)):
            if answer.get("exit") != 0 or answer.get("remaining"):
                failures.append((words, answer))
    return failures


def test_readme_has_commands_to_check():
    commands = readme_commands()
    assert any(c.startswith("lorakit merge") for c in commands)
    assert len(commands) >= 6


def test_installed_ms_swift_4_accepts_everything_lorakit_renders(tmp_path):
    by_command = all_argvs(tmp_path, 4)
    assert sum(len(v) for v in by_command.values()) >= 12
    assert parse_all(sys.executable, by_command) == []


def test_ms_swift_3_accepts_everything_lorakit_renders_for_it(tmp_path):
    python = os.environ.get("LORAKIT_SWIFT3_PYTHON")
    if not python:
        if os.environ.get("CI"):
            pytest.fail("CI must check ms-swift 3.x: scripts/test.sh sets LORAKIT_SWIFT3_PYTHON")
        pytest.skip("set LORAKIT_SWIFT3_PYTHON to a Python with ms-swift 3.x (scripts/test.sh does)")
    by_command = all_argvs(tmp_path, 3)
    assert any("--train_type" in argv for _, argv in by_command["sft"])
    assert parse_all(python, by_command) == []
