"""The learning-rate schedule and its warmup (checks/schedule.py), and the warmup a later layer
replaces (fixups.later_warmup_wins, presets.SUPERSEDES). ms-swift's own failures for each error
are asserted in tests/test_real_failures.py (scheduler-*, warmup-*)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from conftest import run_cli
from lorakit.checks import schedule


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, '
                                          '{"role": "assistant", "content": "hello"}]}\n' * 20)
    return tmp_path


def _validate(*flags: str, version: str = "4.6", options: tuple = ()):
    return run_cli(["validate", "-p", "single", "--swift-version", version, "--dataset", "train.jsonl", *options,
                    "--", *flags])


def _lines(stderr: str, level: str = "error") -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{level}[")]


def _rendered(*args: str, flags: tuple = ()) -> list[str]:
    result = run_cli(["train", *args, "--dry-run", "--format", "json", "--", *flags])
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)["argv"]


def test_an_unknown_scheduler_is_refused_with_did_you_mean(here):
    result = _validate("--lr_scheduler_type", "cosine_decay")
    assert result.code == 2
    lines = result.stderr.splitlines()
    at = lines.index("error[train.scheduler.unknown] args.lr_scheduler_type (-- extra flags): lr_scheduler_type "
                     "'cosine_decay' is no transformers scheduler: ms-swift stops while building its training "
                     "arguments (\"cosine_decay is not a valid SchedulerType\")")
    assert lines[at + 1] == (
        "  hint: did you mean 'cosine'? transformers has linear, cosine, cosine_with_restarts, polynomial, "
        "cosine_with_min_lr, cosine_warmup_with_min_lr, warmup_stable_decay, reduce_lr_on_plateau, inverse_sqrt, "
        "constant, constant_with_warmup (and greedy from 5.x)")


def test_an_upper_case_name_is_refused_with_the_lower_case_one(here):
    result = _validate("--lr_scheduler_type", "COSINE_WITH_MIN_LR")  # kohya_ss #3064's spelling
    assert result.code == 2
    assert "  hint: did you mean 'cosine_with_min_lr'? transformers has " in result.stderr


@pytest.mark.parametrize("flags", [
    ("--lr_scheduler_type", "cosine"),
    ("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr_rate": 0.1}'),
    ("--lr_scheduler_type", "cosine_warmup_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr": 1e-6}'),
    ("--lr_scheduler_type", "warmup_stable_decay", "--lr_scheduler_kwargs", '{"num_decay_steps": 10}'),
    ("--lr_scheduler_type", "polynomial", "--lr_scheduler_kwargs", '{"lr_end": 1e-7, "power": 2.0}'),
    ("--lr_scheduler_type", "reduce_lr_on_plateau", "--split_dataset_ratio", "0.1"),
    ("--lr_scheduler_type", "linear", "--warmup_steps", "0"),
])
def test_schedules_transformers_builds_pass(here, flags):
    result = _validate(*flags)
    assert not [x for x in _lines(result.stderr) if "scheduler" in x or "warmup" in x], result.stderr


def test_a_min_lr_schedule_needs_exactly_one_floor(here):
    none = _validate("--lr_scheduler_type", "cosine_with_min_lr")
    assert none.code == 2
    assert ("error[train.scheduler.min_lr] args.lr_scheduler_type (-- extra flags): lr_scheduler_type "
            "cosine_with_min_lr with neither min_lr nor min_lr_rate in lr_scheduler_kwargs: transformers fails once "
            "training starts, after the model has loaded (\"One of min_lr or min_lr_rate should be set through the "
            "`lr_scheduler_kwargs`\")\n  hint: give one: lr_scheduler_kwargs: {\"min_lr_rate\": 0.1} (a tenth of "
            "learning_rate) or {\"min_lr\": 1e-6}") in none.stderr
    both = _validate("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs",
                     '{"min_lr": 1e-6, "min_lr_rate": 0.1}')
    assert both.code == 2
    assert ("error[train.scheduler.min_lr] args.lr_scheduler_kwargs (-- extra flags): lr_scheduler_type "
            "cosine_with_min_lr with both min_lr and min_lr_rate in lr_scheduler_kwargs") in both.stderr


def test_a_keyword_the_schedule_lacks_is_refused_and_min_lr_points_at_the_min_lr_schedule(here):
    result = _validate("--lr_scheduler_type", "cosine", "--lr_scheduler_kwargs", '{"min_lr": 1e-6}')
    assert result.code == 2
    assert ("error[train.scheduler.kwarg_unknown] args.lr_scheduler_kwargs (-- extra flags): lr_scheduler_kwargs "
            "'min_lr' is no argument of the cosine schedule: the run fails once training starts, after the model "
            "has loaded (TypeError: unexpected keyword argument)\n  hint: cosine takes num_cycles, last_epoch; for "
            "a floor under a cosine schedule: lr_scheduler_type cosine_with_min_lr") in result.stderr


def test_a_misspelt_keyword_gets_did_you_mean_and_given_steps_are_explained(here):
    typo = _validate("--lr_scheduler_type", "polynomial", "--lr_scheduler_kwargs", '{"powr": 2}')
    assert "  hint: polynomial takes lr_end, power, last_epoch (did you mean 'power'?)" in typo.stderr
    twice = _validate("--lr_scheduler_type", "linear", "--lr_scheduler_kwargs", '{"num_training_steps": 9}')
    assert twice.code == 2
    assert ("  hint: transformers passes num_training_steps itself (from warmup_steps / the run's length): given "
            "twice") in twice.stderr


def test_wsd_needs_its_decay_steps(here):
    result = _validate("--lr_scheduler_type", "warmup_stable_decay")
    assert result.code == 2
    assert ("error[train.scheduler.kwarg_missing] args.lr_scheduler_type (-- extra flags): lr_scheduler_type "
            "warmup_stable_decay needs num_decay_steps in lr_scheduler_kwargs") in result.stderr


def test_plateau_without_evaluation_is_refused(here):
    result = _validate("--lr_scheduler_type", "reduce_lr_on_plateau", "--split_dataset_ratio", "0")
    assert result.code == 2
    assert ("error[train.scheduler.needs_eval] args.lr_scheduler_type (-- extra flags): lr_scheduler_type "
            "reduce_lr_on_plateau lowers the learning rate on the eval metric, and this run evaluates nothing") \
        in result.stderr
    off = _validate("--lr_scheduler_type", "reduce_lr_on_plateau", "--split_dataset_ratio", "0.1",
                    "--eval_strategy", "no")
    assert "train.scheduler.needs_eval" in off.stderr


def test_kwargs_a_constant_schedule_never_reads_are_only_information(here):
    result = _validate("--lr_scheduler_type", "constant", "--lr_scheduler_kwargs", '{"min_lr": 1e-6}')
    assert result.code == 0, result.stderr
    assert ("info[train.scheduler.kwargs_ignored] args.lr_scheduler_kwargs (-- extra flags): lr_scheduler_type "
            "constant reads no lr_scheduler_kwargs: ['min_lr'] do nothing") in result.stderr


@pytest.mark.parametrize("ratio,version,refused", [
    ("2", "4.6", True), ("1", "4.6", True), ("1", "4.4", False), ("1", "3.12", False), ("-0.1", "3.12", True),
    ("nan", "4.6", True), ("0.99", "4.6", False), ("0", "4.6", False), ("1.5", "3.12", True),
])
def test_the_warmup_ratio_is_a_share_of_the_run(here, ratio, version, refused):
    result = _validate("--warmup_ratio", ratio, version=version)
    assert ("error[train.warmup_ratio]" in result.stderr) is refused, result.stderr


def test_warmup_ratio_message(here):
    result = _validate("--warmup_ratio", "2")
    assert ("error[train.warmup_ratio] args.warmup_ratio (-- extra flags): warmup_ratio 2 is not a share of the run "
            "(it must be 0 or more and below 1): ms-swift stops while building its training arguments\n"
            "  hint: e.g. warmup_ratio: 0.05; for a number of steps, warmup_steps: N") in result.stderr
    steps = _validate("--warmup_steps", "-1")
    assert ("error[train.warmup_steps] args.warmup_steps (-- extra flags): warmup_steps -1 is not a number of steps "
            "(it must be 0 or more)") in steps.stderr


def test_both_warmups_on_one_layer_refused_on_4_5_and_warned_before(here):
    new = _validate("--warmup_ratio", "0.1", "--warmup_steps", "5")
    assert new.code == 2
    assert ("error[train.warmup.both] args.warmup_steps (-- extra flags): warmup_ratio 0.1 and warmup_steps 5 both "
            "set the warmup: ms-swift refuses them together (\"`warmup_ratio` and `warmup_steps` cannot be set at "
            "the same time.\")\n  hint: keep one of them") in new.stderr
    old = _validate("--warmup_ratio", "0.1", "--warmup_steps", "5", version="4.4")
    assert old.code == 0, old.stderr
    assert ("warning[train.warmup.both] args.warmup_steps (-- extra flags): warmup_ratio 0.1 and warmup_steps 5 both "
            "set the warmup: transformers uses the steps and ignores the ratio (ms-swift 4.5+ refuses both)") \
        in old.stderr


def test_the_users_warmup_steps_replace_the_presets_ratio(here):
    result = _validate("--warmup_steps", "100")
    assert result.code == 0, result.stderr
    assert ("info[train.warmup.replaced] args.warmup_steps (-- extra flags): warmup_ratio 0.05 from built-in "
            "fragments/lora_sft was replaced by warmup_steps 100 from -- extra flags\n  hint: warmup_ratio and "
            "warmup_steps set the same warmup (ms-swift 4.5+ refuses both): the later setting wins") in result.stderr
    argv = _rendered("-p", "single", flags=("--warmup_steps", "100"))
    assert "--warmup_ratio" not in argv
    assert argv[argv.index("--warmup_steps") + 1] == "100"


def test_a_child_file_replaces_its_parents_warmup_either_way(here):
    (here / "steps.yaml").write_text(yaml.safe_dump({"extends": "single", "args": {"warmup_steps": 20}}))
    (here / "back.yaml").write_text(yaml.safe_dump({"extends": "steps.yaml", "args": {"warmup_ratio": 0.1}}))
    steps = _rendered("-p", "steps.yaml")
    assert "--warmup_ratio" not in steps and steps[steps.index("--warmup_steps") + 1] == "20"
    back = _rendered("-p", "back.yaml")
    assert "--warmup_steps" not in back and back[back.index("--warmup_ratio") + 1] == "0.1"
    said = run_cli(["validate", "-p", "back.yaml", "--swift-version", "4.6", "--dataset", "train.jsonl"])
    assert (f"info[train.warmup.replaced] args.warmup_ratio ({here / 'back.yaml'}): warmup_steps 20 from "
            f"{here / 'steps.yaml'} was replaced by warmup_ratio 0.1 from {here / 'back.yaml'}") in said.stderr


def test_a_file_setting_both_is_not_settled_for_it(here):
    (here / "both.yaml").write_text(yaml.safe_dump({"extends": "single",
                                                     "args": {"warmup_steps": 20, "warmup_ratio": 0.1}}))
    result = run_cli(["validate", "-p", "both.yaml", "--swift-version", "4.6", "--dataset", "train.jsonl"])
    assert result.code == 2
    assert f"error[train.warmup.both] args.warmup_steps ({here / 'both.yaml'}): warmup_ratio 0.1 and warmup_steps 20" \
        in result.stderr


def test_the_command_line_ratio_replaces_a_files_steps(here):
    (here / "steps.yaml").write_text(yaml.safe_dump({"extends": "single", "args": {"warmup_steps": 20}}))
    argv = _rendered("-p", "steps.yaml", flags=("--warmup_ratio", "0.2"))
    assert "--warmup_steps" not in argv and argv[argv.index("--warmup_ratio") + 1] == "0.2"


# --- the table against transformers itself: each installed one (4.57 under ms-swift 3.x, 5.x under 4.x)

_PROBE = r"""
import inspect, json
import transformers.optimization as o
from transformers.trainer_utils import SchedulerType
from torch.optim.lr_scheduler import ReduceLROnPlateau
out = {}
for t in SchedulerType:
    f = o.TYPE_TO_SCHEDULER_FUNCTION[t]
    params = inspect.signature(ReduceLROnPlateau if t.value == "reduce_lr_on_plateau" else f).parameters.values()
    out[t.value] = [[p.name for p in params if p.name not in ("optimizer", "num_warmup_steps", "num_training_steps",
                                                              "kwargs", "verbose")],
                    [p.name for p in params if p.default is inspect.Parameter.empty
                     and p.name not in ("optimizer", "num_warmup_steps", "num_training_steps", "kwargs")]]
src = inspect.getsource(o.get_scheduler)
out["_ignored"] = [t.value for t in SchedulerType if f"if name == SchedulerType.{t.name}:\n        return schedule_func(optimizer)\n" in src
                   or f"if name == SchedulerType.{t.name}:\n        return schedule_func(optimizer, num_warmup_steps=num_warmup_steps)\n" in src]
out["_version"] = __import__("transformers").__version__
print(json.dumps(out))
"""


def _pythons() -> list[str]:
    import sys

    found = [sys.executable]
    if os.environ.get("LORAKIT_SWIFT3_PYTHON"):
        found.append(os.environ["LORAKIT_SWIFT3_PYTHON"])
    return found


@pytest.mark.real
@pytest.mark.parametrize("python", _pythons())
def test_the_scheduler_table_matches_the_installed_transformers(python):
    seen = json.loads(subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, check=True).stdout)
    ignored = seen.pop("_ignored")
    major = int(seen.pop("_version").split(".")[0])
    # _inverse_sqrt_reads_kwargs: transformers 5 passes the kwargs to inverse_sqrt, 4.x does not
    assert ("inverse_sqrt" not in ignored) == (major >= 5)
    if python == os.environ.get("LORAKIT_SWIFT3_PYTHON"):  # ms-swift 3.x's transformers: no greedy (_transformers_5)
        assert "greedy" not in seen
    assert set(schedule.IGNORES_KWARGS) <= set(ignored)
    for name, (takes, needs) in seen.items():
        if name == "greedy" or name in schedule.IGNORES_KWARGS:
            continue
        assert name in schedule.SCHEDULERS, name
        mine_takes, mine_needs = schedule.SCHEDULERS[name]
        assert set(takes) == set(mine_takes), name
        assert set(needs) == set(mine_needs), name
    assert set(seen) <= set(schedule.NAMES)
    # every name lorakit knows is one of this transformers' (greedy only in 5.x)
    assert set(schedule.NAMES) - set(seen) <= {"greedy"}


@pytest.mark.parametrize("kwargs", ["{'min_lr': 1e-6}", "{min_lr: 1e-6}", "k.json"])
def test_kwargs_ms_swift_reads_its_own_way_are_not_refused(here, kwargs):
    """A file path (json_parse_to_dict loads it) or text ms-swift json_repairs: the keywords it
    ends up with are not known here, so no min_lr finding claims they are missing."""
    (here / "k.json").write_text('{"min_lr": 1e-6}')
    result = _validate("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", kwargs)
    assert "train.scheduler.min_lr" not in result.stderr, result.stderr


# --- the hostile review's F21, F20, F14, F3, F4; ms-swift's own failures: tests/test_real_failures.py

def test_kwargs_with_no_scheduler_are_judged_by_ms_swifts_default_cosine(here):
    result = _validate("--lr_scheduler_kwargs", '{"min_lr": 1e-6}')
    assert result.code == 2
    assert ("error[train.scheduler.kwarg_unknown] args.lr_scheduler_kwargs (-- extra flags): lr_scheduler_kwargs "
            "'min_lr' is no argument of the cosine (ms-swift's default) schedule: the run fails once training "
            "starts, after the model has loaded (TypeError: unexpected keyword argument)\n  hint: cosine takes "
            "num_cycles, last_epoch; for a floor under a cosine schedule: lr_scheduler_type cosine_with_min_lr") \
        in result.stderr
    fine = _validate("--lr_scheduler_kwargs", '{"num_cycles": 0.5}')
    assert "train.scheduler" not in fine.stderr, fine.stderr


TYPE_ERROR = "transformers computes with it once training starts, after the model has loaded (TypeError)"


@pytest.mark.parametrize("kwargs,why,hint", [
    ('{"min_lr": "1e-6"}', TYPE_ERROR, '{"min_lr": 1e-6}'),
    ('{"min_lr_rate": "0.1"}', TYPE_ERROR, '{"min_lr_rate": 0.1}'),
    ('{"min_lr_rate": "nan"}', TYPE_ERROR, '{"min_lr_rate": 0.1}'),
    ('{"min_lr_rate": [0.1]}', TYPE_ERROR, '{"min_lr_rate": 0.1}'),
    # True / lr divides: no error, and no floor anyone meant (the hostile review's R7, R8)
    ('{"min_lr_rate": true}', "transformers would compute with it as 1", '{"min_lr_rate": 0.1}'),
    ('{"min_lr": NaN}', "the learning rate would end at nan or 0, silently", '{"min_lr": 1e-6}'),
    ('{"min_lr": 1e999}', "the learning rate would end at nan or 0, silently", '{"min_lr": 1e-6}'),
    ('{"min_lr": -1e-6}', "the learning rate would end below 0 and training would climb the loss, silently",
     '{"min_lr": 1e-6}'),
])
def test_a_floor_that_is_no_number_is_refused(here, kwargs, why, hint):
    result = _validate("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", kwargs)
    assert result.code == 2
    key, value = next(iter(json.loads(kwargs).items()))
    assert (f"error[train.scheduler.kwarg_type] args.lr_scheduler_kwargs (-- extra flags): lr_scheduler_kwargs {key} "
            f"is {json.dumps(value)}, not a number 0 or more: {why}\n  hint: write the number unquoted: {hint}") \
        in result.stderr


def test_a_floor_of_0_passes(here):
    result = _validate("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr": 0}')
    assert result.code == 0 and "train.scheduler" not in result.stderr, result.stderr


def test_yaml_1e_6_in_a_mapping_renders_as_a_json_number(here):
    """YAML 1.1 reads 1e-6 (no dot) as text; inside a mapping that was the JSON string "1e-6"."""
    (here / "p.yaml").write_text("extends: single\nargs:\n  dataset: train.jsonl\n  learning_rate: 1e-4\n"
                                 "  lr_scheduler_type: cosine_with_min_lr\n"
                                 "  lr_scheduler_kwargs: {min_lr: 1e-6, num_cycles: 5E-1}\n")
    argv = _rendered("-p", "p.yaml")
    assert argv[argv.index("--lr_scheduler_kwargs") + 1] == '{"min_lr": 1e-06, "num_cycles": 0.5}'
    assert argv[argv.index("--learning_rate") + 1] == "1e-4"  # a flag's value stays as written
    quoted = run_cli(["validate", "-p", "single", "--dataset", "train.jsonl", "--set",
                      "lr_scheduler_type=cosine_with_min_lr", "--set", 'lr_scheduler_kwargs={min_lr: "1e-6"}'])
    assert quoted.code == 2 and "error[train.scheduler.kwarg_type]" in quoted.stderr, quoted.stderr


def test_a_null_floor_counts_as_not_given(here):
    """transformers tests `min_lr is not None`: a null is the key left out."""
    one = _validate("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs",
                    '{"min_lr": null, "min_lr_rate": 0.1}')
    assert one.code == 0 and "train.scheduler" not in one.stderr, one.stderr
    none = _validate("--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", '{"min_lr": null}')
    assert none.code == 2
    assert ("error[train.scheduler.min_lr] args.lr_scheduler_kwargs (-- extra flags): lr_scheduler_type "
            "cosine_with_min_lr with neither min_lr nor min_lr_rate in lr_scheduler_kwargs") in none.stderr


def test_greedy_is_refused_for_ms_swift_3(here):
    flags = ("--lr_scheduler_type", "greedy", "--split_dataset_ratio", "0.1")
    old = _validate(*flags, version="3.12")
    assert old.code == 2
    assert ("error[train.scheduler.unknown] args.lr_scheduler_type (-- extra flags): lr_scheduler_type 'greedy' is "
            "no transformers scheduler on ms-swift 3.x (its transformers, below 4.58, has no greedy): ms-swift stops "
            "while building its training arguments (\"greedy is not a valid SchedulerType\")") in old.stderr
    assert "train.scheduler" not in _validate(*flags).stderr


@pytest.mark.parametrize("major,transformers,refused", [(3, "4.57.6", True), (4, "4.57.6", True), (4, "5.19.0", False),
                                                        (4, None, False)])
def test_greedy_needs_transformers_5(major, transformers, refused):
    from lorakit.checks.facts import Facts
    from lorakit.job import Job, Launch

    job = Job(command="sft", launch=Launch(), preset="p.yaml", swift_major=major,
              args={"lr_scheduler_type": "greedy", "split_dataset_ratio": 0.1, "dataset": ["d.jsonl"]})
    facts = Facts(packages=lambda env=None: None if transformers is None else {"transformers": transformers})
    found = [f.code for f in schedule.check_scheduler(job, facts)]
    assert found == (["train.scheduler.unknown"] if refused else []), found


@pytest.mark.parametrize("major,transformers,level", [
    (3, "4.57.6", "info"), (4, "5.19.0", "error"), (4, "4.57.6", "info"), (4, None, "warning")])
def test_inverse_sqrt_kwargs_follow_the_transformers_that_runs(major, transformers, level):
    from lorakit.checks.facts import Facts
    from lorakit.job import Job, Launch

    job = Job(command="sft", launch=Launch(), preset="p.yaml", swift_major=major,
              args={"lr_scheduler_type": "inverse_sqrt", "lr_scheduler_kwargs": '{"min_lr": 1e-6}'})
    facts = Facts(packages=lambda env=None: None if transformers is None else {"transformers": transformers})
    [finding] = schedule.check_scheduler(job, facts)
    assert (finding.level, finding.code) == (level, "train.scheduler.kwargs_ignored" if level == "info"
                                             else "train.scheduler.kwarg_unknown")


def test_warmup_steps_nan_or_inf_fail_once_training_starts(here):
    result = _validate("--warmup_steps", "inf", options=("--set", "warmup_ratio=null"))
    assert result.code == 2
    assert ("error[train.warmup_steps] args.warmup_steps (-- extra flags): warmup_steps inf is not a number of steps "
            "(it must be a finite count): transformers takes it while ms-swift builds its training arguments and "
            "fails once training starts, after the model has loaded (it cannot count that many steps)") in result.stderr


@pytest.mark.parametrize("steps,max_steps,said", [("100", "50", True), ("50", "50", True), ("1e3", "10", True),
                                                   ("49", "50", False), ("0.5", "1", False), ("100", "-1", False),
                                                   ("100", None, False)])
def test_a_warmup_as_long_as_the_run_is_said(steps, max_steps, said, here):
    """transformers ramps the learning rate up over warmup_steps: a run no longer than that never
    trains at the rate asked for (a warning: it runs). transformers 5 reads a warmup_steps below 1
    as a ratio."""
    extra = ("--max_steps", max_steps) if max_steps else ()
    result = _validate("--warmup_steps", steps, *extra, options=("--set", "warmup_ratio=null"))
    lines = [line for line in result.stderr.splitlines() if "[train.warmup.whole_run]" in line]
    assert lines == ([f"warning[train.warmup.whole_run] args.warmup_steps (-- extra flags): warmup_steps {steps} is not "
                      f"shorter than the run (max_steps {max_steps}): the learning rate climbs for the whole run and "
                      "never reaches learning_rate"] if said else []), result.stderr
    assert result.code == 0, result.stderr


def test_the_whole_run_hint_suggests_a_twentieth(here):
    result = _validate("--warmup_steps", "100", "--max_steps", "50", options=("--set", "warmup_ratio=null"))
    lines = result.stderr.splitlines()
    i = next(n for n, line in enumerate(lines) if "[train.warmup.whole_run]" in line)
    assert lines[i + 1] == "  hint: e.g. warmup_steps: 2 (about 5% of max_steps), or warmup_ratio: 0.05"
