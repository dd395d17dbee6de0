"""The paths that start nothing import nothing heavy: a launcher used dozens of times a day must not
pay for torch (seconds) to print a command or report a typo. Functional, not timed: each command
runs in a fresh interpreter, and what it left in sys.modules is the answer (timings are
scripts/bench.py's job)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "swift", "peft", "numpy")

# Runs the real entry point, then reports the exit code and every heavy module it imported.
PROBE = r"""
import json, sys
out, heavy, args = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
from lorakit.cli.app import main
try:
    main(args)
    code = 0
except SystemExit as exc:
    code = exc.code
found = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
with open(out, "w") as f:
    json.dump({"code": code, "heavy": found}, f)
"""


def _commands() -> list:
    from lorakit.cli.app import app

    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    cases = [
        pytest.param(["train", "-p", "zero2", "--dry-run"], 0, id="train-dry-run"),
        pytest.param(["train", "-p", "single", "--dry-run", "--", "--max_steps", "3"], 0,
                     id="train-dry-run-extra-flags"),
        pytest.param(["validate", "-p", "zero2"], 0, id="validate"),
        pytest.param(["validate", "-p", "zero2", "--set", "lora_rnak=8"], 2, id="validate-typo"),
    ]
    if "plan" in names:  # `lorakit plan` exists from the capacity-planning work on
        cases += [pytest.param(["plan", "-p", "zero2"], 0, id="plan"),
                  pytest.param(["plan", "-p", "zero2", "--json"], 0, id="plan-json")]
    if "import" in names:  # `lorakit import SCRIPT.sh`: reads the script and runs the checks
        from conftest import REPO

        cases += [pytest.param(["import", str(REPO / "tests/data/scripts/zero2_exec.sh")], 0, id="import")]
    return cases


@pytest.mark.parametrize("args, code", _commands())
def test_no_heavy_imports(tmp_path, args, code):
    out = tmp_path / "probe.json"
    result = subprocess.run([sys.executable, "-c", PROBE, str(out), ",".join(HEAVY), *args],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.exists(), result.stderr
    probe = json.loads(out.read_text())
    assert probe["code"] == code, result.stderr  # the path really ran to its end
    assert probe["heavy"] == [], f"lorakit {' '.join(args)} imported {probe['heavy']}"


def test_the_probe_would_see_a_heavy_import(tmp_path):
    """Guards the test itself: if a command imported numpy, the probe would say so."""
    out = tmp_path / "probe.json"
    probe = PROBE.replace("from lorakit.cli.app import main", "import numpy\nfrom lorakit.cli.app import main")
    subprocess.run([sys.executable, "-c", probe, str(out), ",".join(HEAVY), "validate", "-p", "zero2"],
                   capture_output=True, timeout=120, cwd=tmp_path)
    assert "numpy" in json.loads(out.read_text())["heavy"]


# Runs the real entry point, then lists every lorakit module it imported.
LOADED = r"""
import json, sys
from lorakit.cli.app import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
json.dump(sorted(m for m in sys.modules if m.startswith("lorakit.")), open(sys.argv[1], "w"))
"""


def _loaded(tmp_path, *args) -> set:
    out = tmp_path / "loaded.json"
    subprocess.run([sys.executable, "-c", LOADED, str(out), *args], capture_output=True, text=True, timeout=120,
                   cwd=tmp_path, check=True)
    return set(json.loads(out.read_text()))


def test_a_command_imports_no_other_commands_module(tmp_path):
    """`lorakit train --dry-run` loads train's CLI module, not plan's, deploy's or import's: each
    command's module (and what it imports) is loaded only when that command runs."""
    loaded = {m for m in _loaded(tmp_path, "train", "-p", "zero2", "--dry-run") if m.startswith("lorakit.cli.")}
    assert {"lorakit.cli.app", "lorakit.cli.train"} <= loaded
    assert not loaded & {"lorakit.cli.plan", "lorakit.cli.deploy", "lorakit.cli.infer", "lorakit.cli.import_cmd",
                         "lorakit.cli.rlhf", "lorakit.cli.checkpoints_cmd", "lorakit.cli.doctor", "lorakit.cli.runs_cmd",
                         "lorakit.cli.presets_cmd", "lorakit.cli.eval_cmd", "lorakit.cli.export_cmd"}, sorted(loaded)


def test_a_dry_run_leaves_out_what_only_some_jobs_need(tmp_path):
    """Modules a plain preset's dry-run has no use for stay unimported (each costs start-up time):
    the scheduler layouts (--on), the loss-scale table, the export checks."""
    loaded = _loaded(tmp_path, "train", "-p", "zero2", "--dry-run")
    assert "lorakit.checks.flags" in loaded  # the probe sees the checks that did run
    assert not loaded & {"lorakit.injob", "lorakit.lossscales", "lorakit.checks.lossscale", "lorakit.checks.export",
                         "lorakit.checks.resumed", "lorakit.checks.datasetinfo"}, sorted(loaded)


def test_every_check_runs_for_the_commands_it_is_for():
    """checks.ONLY_FOR skips a module for other commands: each skipped module's checks must say
    nothing for those commands (they start with a command guard)."""
    from lorakit.checks import MODULES, ONLY_FOR, all_checks

    assert set(ONLY_FOR) <= set(MODULES)
    everything = all_checks()
    for command in ("sft", "pt", "rlhf", "infer", "deploy", "export", "eval"):
        assert set(all_checks(command)) <= set(everything)
    assert len(all_checks("rlhf")) > len(all_checks("sft"))


@pytest.mark.parametrize("command", ["sft", "pt", "infer", "deploy", "export", "eval", "rlhf"])
def test_a_skipped_module_says_nothing_for_that_command(command, tmp_path, monkeypatch):
    """Given the arguments each skipped module looks at, its checks find nothing for a command it
    is skipped for: the skip changes no result."""
    from importlib import import_module

    from lorakit.checks import ONLY_FOR
    from lorakit.checks.facts import Facts
    from lorakit.job import Job, Launch

    monkeypatch.chdir(tmp_path)
    args = {"model": "Qwen/Qwen2.5-7B-Instruct", "rlhf_type": "grpo", "use_vllm": True, "reward_funcs": ["nope"],
            "num_generations": 3, "infer_backend": "vllm", "device_map": "auto", "max_memory": "{0: '3GB'}",
            "tuner_type": "full", "torch_dtype": "float16", "dataset": ["d.jsonl"], "beta": 0.1}
    job = Job(command=command, launch=Launch(), args=args, preset="p.yaml", swift_major=4)
    for name, commands in ONLY_FOR.items():
        if command in commands:
            continue
        for check in import_module(f"lorakit.checks.{name}").CHECKS:
            assert check(job, Facts(here=False)) == [], (name, check.__name__, command)


def test_a_module_skipped_for_want_of_its_argument_says_nothing_without_it(tmp_path, monkeypatch):
    """checks.ONLY_WITH skips a module when the job sets none of its arguments: its checks must say
    nothing then, whatever else the job holds (the skip changes no result)."""
    from importlib import import_module

    from lorakit.checks import ONLY_WITH, all_checks
    from lorakit.checks.facts import Facts
    from lorakit.job import Job, Launch

    monkeypatch.chdir(tmp_path)
    args = {"model": "Qwen/Qwen2.5-7B-Instruct", "dataset": ["d.jsonl"], "tuner_type": "lora", "deepspeed": "zero3",
            "resume_only_model": True, "external_plugins": "p.py", "template": "qwen", "rlhf_type": "dpo"}
    for command in ("sft", "pt", "rlhf", "infer", "deploy", "export"):
        job = Job(command=command, launch=Launch(), args=args, preset="p.yaml", swift_major=4)
        for name in ONLY_WITH:
            for check in import_module(f"lorakit.checks.{name}").CHECKS:
                assert check(job, Facts(here=False)) == [], (name, check.__name__, command)
    with_all = {**args, **{k: "x" for keys in ONLY_WITH.values() for k in keys}}
    assert len(all_checks("sft", with_all)) == len(all_checks("sft")) > len(all_checks("sft", args))
