"""Checkpoint discovery and picking, on hand-built trees shaped like ms-swift 4.6.0's output.

The trees follow what the source writes (see the docstring of lorakit/checkpoints.py for the
file:function of each piece): vN-YYYYMMDD-HHMMSS run dirs, checkpoint-N with adapter files,
args.json copied from the run, trainer_state.json, a relative last-checkpoint link, logging.jsonl
lines carrying 'global_step/max_steps' and a final train_msg line. Shapes were checked against a real
4-step CPU `swift sft` on lorakit.tiny's model (and `swift export --merge_lora` for the merged dir).
"""

from __future__ import annotations

import json
import os
import re
import struct
from datetime import datetime
from pathlib import Path

import pytest

from lorakit.mergepick import pick
from lorakit.checkpoints import (
    RULE_EVAL,
    RULE_TRAIN,
    RULE_TRAINER_STATE,
    base_model_of,
    checkpoints_table,
    is_checkpoint,
    scan,
)
from lorakit.errors import LorakitError

ARGS = {
    "model": "Qwen/Qwen2.5-0.5B-Instruct",
    "model_type": "qwen2_5",
    "template": "qwen2_5",
    "torch_dtype": "bfloat16",
    "tuner_type": "lora",
    "add_version": True,
}
SIDE_FILES = ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "README.md")


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def safetensors_bytes(nbytes: int) -> bytes:
    """A whole safetensors file: 8-byte header length, the JSON header, `nbytes` of tensor data."""
    header = json.dumps({"lora_A": {"dtype": "U8", "shape": [nbytes], "data_offsets": [0, nbytes]},
                         "__metadata__": {"format": "pt"}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * nbytes


def make_adapter(d: Path, *, default_layout: bool = False, weights: int = 1000) -> Path:
    """adapter files as peft writes them, or under default/ as SwiftModel.save_pretrained does."""
    target = d / "default" if default_layout else d
    write_json(target / "adapter_config.json", {
        "peft_type": "LORA", "r": 8, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"],
        "base_model_name_or_path": "/root/.cache/modelscope/hub/models/Qwen/Qwen2___5-0___5B-Instruct",
    })
    (target / "adapter_model.safetensors").write_bytes(safetensors_bytes(weights))
    return d


def log_history(steps: list, losses: dict, evals: dict) -> list:
    out = []
    for s in steps:
        if s in losses:
            out.append({"loss": losses[s], "grad_norm": 1.5, "learning_rate": 1e-4, "epoch": s / 10, "step": s})
        if s in evals:
            out.append({"eval_loss": evals[s], "eval_runtime": 0.5, "epoch": s / 10, "step": s})
    return out


def make_run(root: Path, name: str, steps: list, *, losses=None, evals=None, best_step=None,
             max_steps=None, jsonl: bool = True) -> Path:
    """A run dir: args.json, checkpoint-N for each step (in the given order), last-checkpoint link."""
    run = root / name
    losses, evals = losses or {}, evals or {}
    max_steps = max_steps or max(steps)
    write_json(run / "args.json", {**ARGS, "output_dir": str(run)})
    for step in steps:
        ckpt = make_adapter(run / f"checkpoint-{step}")
        (ckpt / "args.json").write_text((run / "args.json").read_text())  # mixin.py _save copies it
        for f in SIDE_FILES:
            (ckpt / f).write_bytes(b"x" * 5000)
        done = list(range(1, step + 1))
        best = best_step if best_step and best_step <= step else None
        write_json(ckpt / "trainer_state.json", {
            "global_step": step, "max_steps": max_steps, "logging_steps": 1, "eval_steps": 2,
            "best_global_step": best, "best_metric": None,
            # HF records an absolute path from the training machine; these trees were "copied" here.
            "best_model_checkpoint": f"/data/output/qwen/{name}/checkpoint-{best}" if best else None,
            "log_history": log_history(done, losses, evals),
        })
    if jsonl:
        # patcher.py on_log: the dict HF logged, minus "step", plus "global_step/max_steps"
        lines = [{**{k: v for k, v in e.items() if k != "step"}, "global_step/max_steps": f"{e['step']}/{max_steps}"}
                 for e in log_history(list(range(1, max(steps) + 1)), losses, evals)]
        lines.append({"last_model_checkpoint": str(run / f"checkpoint-{max(steps)}"),
                      "best_model_checkpoint": None, "global_step": max(steps), "log_history": [], "memory": 1.2})
        (run / "logging.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    os.symlink(f"checkpoint-{max(steps)}", run / "last-checkpoint")  # io_utils: relative link
    return run


def raised(path, how="last") -> LorakitError:
    with pytest.raises(LorakitError) as info:
        pick(path, how)
    assert info.value.code == 2
    return info.value


WHERE = "pass a checkpoint-N directory, a run directory (vN-YYYYMMDD-HHMMSS) or a training output_dir"
HALF_HINT = ("a save cut short (the run was killed or crashed while saving, or the disk filled up) leaves this; "
             "`lorakit checkpoints DIR` lists every checkpoint and marks the incomplete ones")


# --- what counts as a checkpoint -------------------------------------------------------------

def test_lone_checkpoint_is_picked_as_itself(tmp_path):
    ckpt = make_adapter(tmp_path / "my-adapter")
    c, reason, _ = pick(ckpt)
    assert c.path == ckpt.resolve()
    assert reason == "my-adapter is an adapter checkpoint (step 0)"
    assert (c.step, c.loss, c.eval_loss, c.is_last) == (0, None, None, True)
    [run] = scan(ckpt)
    assert run.path == tmp_path.resolve() and run.version is None and run.checkpoints == [c]


def test_default_subdir_adapter_counts(tmp_path):
    ckpt = make_adapter(tmp_path / "v0-20260101-120000" / "checkpoint-5", default_layout=True, weights=300)
    write_json(ckpt / "trainer_state.json", {"global_step": 5, "log_history": []})
    assert is_checkpoint(ckpt)
    assert not is_checkpoint(tmp_path)
    c, reason, _ = pick(tmp_path)
    assert c.path == ckpt.resolve()
    assert reason == "run v0-20260101-120000, last checkpoint (step 5, 1 checkpoint)"
    adapter = ckpt / "default"
    size = (adapter / "adapter_config.json").stat().st_size + (adapter / "adapter_model.safetensors").stat().st_size
    assert c.size_bytes == size


def test_checkpoint_inside_run_is_itself_and_judged_against_the_run(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4], losses={1: 3.0, 2: 2.0, 3: 2.5, 4: 2.2})
    c, reason, _ = pick(run / "checkpoint-2", how="best")
    assert c.path == (run / "checkpoint-2").resolve()
    assert reason == "checkpoint-2 is an adapter checkpoint (step 2)"
    [narrowed] = scan(run / "checkpoint-2")
    assert [x.step for x in narrowed.checkpoints] == [2]
    assert (c.loss, c.is_last, c.is_best, narrowed.best) == (2.0, False, True, c)


# --- ordering -------------------------------------------------------------------------------

def test_steps_sort_numerically_not_by_name(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 10, 4])
    [scanned] = scan(run)
    assert [c.step for c in scanned.checkpoints] == [2, 4, 10]
    assert [c.is_last for c in scanned.checkpoints] == [False, False, True]
    c, reason, _ = pick(run)
    assert c.path == (run / "checkpoint-10").resolve()
    assert reason == "run v0-20260101-120000, last checkpoint (step 10 of 10, 3 checkpoints)"


def test_root_picks_highest_version_not_lexically_last(tmp_path):
    for v, stamp in ((0, "20260101-120000"), (1, "20260102-120000"), (2, "20260103-120000"),
                     (10, "20260110-090000")):
        make_run(tmp_path, f"v{v}-{stamp}", [5, 10], max_steps=20)
    (tmp_path / "images").mkdir()  # junk next to the runs
    (tmp_path / "notes.txt").write_text("hi")
    runs = scan(tmp_path)
    assert sorted(r.version for r in runs) == [0, 1, 2, 10]
    v10 = next(r for r in runs if r.version == 10)
    assert v10.timestamp == datetime(2026, 1, 10, 9, 0, 0).timestamp()
    c, reason, _ = pick(tmp_path)
    assert c.path == (tmp_path / "v10-20260110-090000" / "checkpoint-10").resolve()
    assert reason == "newest run v10-20260110-090000, last checkpoint (step 10 of 20, 2 checkpoints)"


def test_output_root_two_levels_up(tmp_path):
    """ms-swift's default output_dir is output/<model_suffix>, so users pass output/."""
    make_run(tmp_path / "Qwen2.5-0.5B-Instruct", "v3-20260101-120000", [4])
    c, reason, _ = pick(tmp_path)
    assert c.step == 4 and reason == "run v3-20260101-120000, last checkpoint (step 4 of 4, 1 checkpoint)"


def test_newer_run_without_checkpoints_is_skipped_and_said(tmp_path):
    make_run(tmp_path, "v0-20260101-120000", [5])
    write_json(tmp_path / "v1-20260102-120000" / "args.json", ARGS)  # crashed before the first save
    c, reason, _ = pick(tmp_path)
    assert c.path == (tmp_path / "v0-20260101-120000" / "checkpoint-5").resolve()
    assert reason == ("newest run v0-20260101-120000, last checkpoint (step 5 of 5, 1 checkpoint); "
                      "skipped newer run without a complete checkpoint: v1-20260102-120000")


def test_add_version_false_layout(tmp_path):
    out = make_run(tmp_path, "out", [5, 10])
    [run] = scan(out)
    assert run.version is None and run.path == out.resolve()
    c, reason, _ = pick(out)
    assert c.path == (out / "checkpoint-10").resolve()
    assert reason == "run out, last checkpoint (step 10 of 10, 2 checkpoints)"


# --- links and exports next to the checkpoints ----------------------------------------------

def test_last_checkpoint_link_resolves_to_the_real_dir(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4])
    c, reason, _ = pick(run / "last-checkpoint")
    assert c.path == (run / "checkpoint-4").resolve()
    assert not c.path.is_symlink() and c.path.name == "checkpoint-4"
    assert reason == "last-checkpoint links to checkpoint-4, which is an adapter checkpoint (step 4)"
    assert pick(run)[0].path == c.path  # the link is not a third checkpoint
    assert len(scan(run)[0].checkpoints) == 2


def test_create_checkpoint_symlink_links_and_merged_export_are_ignored(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4])
    os.symlink(run / "checkpoint-4", run / "last")  # sft.py _handle_trainer_state, absolute links
    os.symlink(run / "checkpoint-2", run / "best")
    write_json(run / "checkpoint-4-merged" / "config.json", {"model_type": "qwen2"})
    make_adapter(run / "checkpoint-4-peft")  # swift export --to_peft_format
    [scanned] = scan(run)
    assert [c.path.name for c in scanned.checkpoints] == ["checkpoint-2", "checkpoint-4"]
    assert pick(run / "best")[0].path == (run / "checkpoint-2").resolve()


# --- best -----------------------------------------------------------------------------------

def test_best_from_trainer_state_wins_over_losses(tmp_path):
    """metric_for_best_model may be e.g. token_acc, so HF's choice beats the lowest eval_loss."""
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4, 6], best_step=4,
                   losses={2: 2.0, 4: 1.5, 6: 1.0}, evals={2: 1.8, 4: 1.6, 6: 1.2})
    [scanned] = scan(run)
    assert scanned.best_rule == RULE_TRAINER_STATE
    assert [c.is_best for c in scanned.checkpoints] == [False, True, False]
    c, reason, _ = pick(run, "best")
    assert c.path == (run / "checkpoint-4").resolve()
    assert reason == ("run v0-20260101-120000, best checkpoint by trainer_state.json best_model_checkpoint "
                      "(step 4, eval_loss 1.6, 3 checkpoints)")


def test_best_by_eval_loss(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4, 6],
                   losses={2: 2.0, 4: 1.5, 6: 1.0}, evals={2: 1.8, 4: 1.25, 6: 1.4})
    c, reason, _ = pick(run, "best")
    assert c.step == 4 and scan(run)[0].best_rule == RULE_EVAL
    assert reason == ("run v0-20260101-120000, best checkpoint by lowest eval_loss "
                      "(step 4, eval_loss 1.25, 3 checkpoints)")


def test_loss_is_only_the_one_logged_at_that_very_step(tmp_path):
    """No log at 4 or 6: no loss for them (not 0.1 or 1.1 from steps 3 and 5), and no rank either."""
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4, 6], losses={1: 3.0, 2: 0.9, 3: 0.1, 5: 1.1})
    [scanned] = scan(run)
    assert [c.loss for c in scanned.checkpoints] == [0.9, None, None]
    assert (scanned.best.step, scanned.best_rule) == (2, RULE_TRAIN)
    c, reason, _ = pick(run, "best")
    assert reason == ("run v0-20260101-120000, best checkpoint by lowest training loss (no eval_loss logged) "
                      "(step 2, loss 0.9, 3 checkpoints)")


@pytest.mark.parametrize("attr, scores, rule", [
    ("eval_loss", {"evals": {2: 1.0, 4: 0.5, 6: 0.5}}, RULE_EVAL),
    ("loss", {"losses": {2: 1.0, 4: 0.5, 6: 0.5}}, RULE_TRAIN),
])
def test_best_tie_goes_to_the_earlier_step(tmp_path, attr, scores, rule):
    """HF's strict `<` (Trainer._determine_best_metric) keeps the first of equal scores."""
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4, 6], **scores)
    [scanned] = scan(run)
    assert [getattr(c, attr) for c in scanned.checkpoints] == [1.0, 0.5, 0.5]
    assert (scanned.best.step, scanned.best_rule) == (4, rule)
    assert [c.is_best for c in scanned.checkpoints] == [False, True, False]


def test_best_of_another_run_is_not_matched(tmp_path):
    """A run resumed into a new vN dir inherits best_model_checkpoint pointing into the old run."""
    run = make_run(tmp_path, "v1-20260102-120000", [2, 4], evals={2: 1.0, 4: 2.0})
    state = json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())
    state["best_model_checkpoint"] = "/data/output/qwen/v0-20260101-120000/checkpoint-4"
    write_json(run / "checkpoint-4" / "trainer_state.json", state)
    c, _, _ = pick(run, "best")
    assert c.step == 2 and scan(run)[0].best_rule == RULE_EVAL


def test_broken_trainer_state_makes_a_checkpoint_incomplete(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4], losses={2: 2.0, 4: 1.0}, jsonl=False)
    (run / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4, "log_hist')
    (run / "checkpoint-2" / "trainer_state.json").write_text("[1, 2]")  # valid JSON, wrong shape
    (run / "junk").mkdir()
    [scanned] = scan(run)
    assert [(c.step, c.loss, c.incomplete) for c in scanned.checkpoints] == [
        (2, None, "trainer_state.json holds no JSON object"),
        (4, None, "trainer_state.json does not parse (cut short?)")]
    assert (scanned.best, scanned.max_steps, scanned.complete) == (None, None, [])
    err = raised(run)
    assert err.message == (f"no complete adapter checkpoint under {run}; each one is incomplete:\n"
                           "  checkpoint-2: trainer_state.json holds no JSON object\n"
                           "  checkpoint-4: trainer_state.json does not parse (cut short?)")
    assert err.hint == HALF_HINT


def test_pick_best_without_any_logged_loss(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4], jsonl=False)
    c, reason, _ = pick(run)
    assert reason == "run v0-20260101-120000, last checkpoint (step 4 of 4, 2 checkpoints)"
    err = raised(run, "best")
    assert err.message == "--pick best: run v0-20260101-120000 logged no loss to rank its checkpoints by"
    assert err.hint == ("no trainer_state.json log_history or logging.jsonl losses were readable; "
                        "use --pick last or pass a checkpoint-N directory")


def test_logging_jsonl_alone_supplies_losses(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4], losses={2: 2.0, 4: 1.0}, evals={2: 0.5, 4: 0.7})
    for step in (2, 4):  # a trainer_state.json that logged nothing
        write_json(run / f"checkpoint-{step}" / "trainer_state.json", {"global_step": step, "log_history": []})
    with open(run / "logging.jsonl", "a") as f:
        f.write("not json\n")
    [scanned] = scan(run)
    assert [(c.loss, c.eval_loss) for c in scanned.checkpoints] == [(2.0, 0.5), (1.0, 0.7)]
    assert (scanned.max_steps, scanned.best.step, scanned.best_rule) == (4, 2, RULE_EVAL)


# --- errors ---------------------------------------------------------------------------------

def test_merged_model_dir_error(tmp_path):
    merged = tmp_path / "checkpoint-10-merged"
    write_json(merged / "config.json", {"model_type": "qwen2"})
    (merged / "model.safetensors").write_bytes(b"\0")
    err = raised(merged)
    assert err.message == (f"no adapter checkpoint found under {merged}: this looks like a merged model "
                           "(config.json, no adapter_config.json), not an adapter checkpoint")
    assert err.hint == "a merged model is already deployable; to merge again pass the checkpoint-N it came from"


def test_empty_dir_error(tmp_path):
    err = raised(tmp_path)
    assert err.message == f"no adapter checkpoint found under {tmp_path}: the directory is empty"
    assert err.hint == WHERE
    with pytest.raises(LorakitError, match=re.escape("the directory is empty")):
        pick(str(tmp_path), "best")


def test_nonexistent_path_error(tmp_path):
    err = raised(tmp_path / "nope")
    assert err.message == f"{tmp_path / 'nope'} does not exist"
    assert err.hint == WHERE
    assert scan(tmp_path / "nope") == []


def test_file_error(tmp_path):
    (tmp_path / "adapter_model.safetensors").write_bytes(b"\0")
    err = raised(tmp_path / "adapter_model.safetensors")
    assert err.message == (f"no adapter checkpoint found under {tmp_path / 'adapter_model.safetensors'}: "
                           "it is not a readable directory")


def test_broken_link_error(tmp_path):
    os.symlink("checkpoint-9", tmp_path / "last-checkpoint")
    err = raised(tmp_path / "last-checkpoint")
    assert err.message == f"{tmp_path / 'last-checkpoint'} is a broken link (to checkpoint-9)"


def test_run_without_checkpoints_error(tmp_path):
    write_json(tmp_path / "v0-20260101-120000" / "args.json", ARGS)
    err = raised(tmp_path)
    assert err.message == (f"no adapter checkpoint found under {tmp_path}: "
                           "run v0-20260101-120000 saved no checkpoint-N directory yet")
    assert err.hint == "checkpoints appear every --save_steps; a run that stopped early may say why in logging.jsonl"


def test_renamed_adapters_error_names_them(tmp_path):
    make_adapter(tmp_path / "final")
    err = raised(tmp_path)
    assert err.message == (f"no adapter checkpoint found under {tmp_path}: "
                           "it holds adapters not named checkpoint-N: final")
    assert err.hint == "pass one of them directly"


def test_junk_dir_error_lists_entries(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "a.txt").write_text("")
    err = raised(tmp_path)
    assert err.message == (f"no adapter checkpoint found under {tmp_path}: "
                           "it holds 2 entries, none an adapter checkpoint (a.txt, runs)")


def test_unknown_pick_rule(tmp_path):
    err = raised(tmp_path, "first")
    assert (err.message, err.hint) == ("unknown --pick 'first'", "use --pick last or --pick best")


# --- base model and table -------------------------------------------------------------------

def test_base_model_from_checkpoint_args(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2])
    c, _, _ = pick(run)
    assert base_model_of(c) == {**{k: ARGS[k] for k in ("model", "model_type", "template", "torch_dtype")},
                                "source": str(c.path / "args.json")}


def test_base_model_falls_back_to_run_args_then_adapter_config(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2])
    ckpt = run / "checkpoint-2"
    (ckpt / "args.json").write_text("{broken")
    assert base_model_of(ckpt)["source"] == str((run / "args.json").resolve())
    (run / "args.json").unlink()
    assert base_model_of(ckpt) == {
        "model": "/root/.cache/modelscope/hub/models/Qwen/Qwen2___5-0___5B-Instruct",
        "source": str((ckpt / "adapter_config.json").resolve()),
    }
    bare = tmp_path / "bare"
    write_json(bare / "default" / "adapter_config.json", {"peft_type": "LORA"})
    assert base_model_of(bare) == {}


def test_checkpoints_table_rows(tmp_path):
    make_run(tmp_path, "v0-20260101-120000", [2], losses={2: 2.0})
    run = make_run(tmp_path, "v1-20260102-120000", [2, 4], losses={2: 2.0, 4: 1.0}, evals={4: 0.9})
    os.utime(run / "checkpoint-4", (1767225600, 1767225600))
    rows = checkpoints_table(scan(tmp_path))
    assert [(r["run"], r["checkpoint"]) for r in rows] == [
        ("v0-20260101-120000", "checkpoint-2"), ("v1-20260102-120000", "checkpoint-2"),
        ("v1-20260102-120000", "checkpoint-4")]
    last = rows[-1]
    expected_time = datetime.fromtimestamp(1767225600).astimezone().isoformat(timespec="seconds")
    assert last == {
        "run": "v1-20260102-120000", "checkpoint": "checkpoint-4", "path": str((run / "checkpoint-4").resolve()),
        "step": 4, "loss": 1.0, "eval_loss": 0.9, "time": expected_time,
        "size": sum((run / "checkpoint-4" / f).stat().st_size
                    for f in ("adapter_config.json", "adapter_model.safetensors")),
        "last": True, "best": True, "best_by": "lowest eval_loss", "incomplete": None, "resumed_from": None,
    }
    assert json.loads(json.dumps(rows)) == rows


# --- which run is newest ----------------------------------------------------------------------

def test_versions_are_compared_only_within_one_output_dir(tmp_path):
    """output/<model_suffix> per model: v3 of one model is not newer than v0 of another."""
    make_run(tmp_path / "Qwen-A", "v3-20240101-120000", [5])
    make_run(tmp_path / "Qwen-B", "v0-20260101-120000", [7])
    c, reason, _ = pick(tmp_path)
    assert c.path == (tmp_path / "Qwen-B" / "v0-20260101-120000" / "checkpoint-7").resolve()
    assert reason == "newest run Qwen-B/v0-20260101-120000, last checkpoint (step 7 of 7, 1 checkpoint)"
    assert [r["run"] for r in checkpoints_table(scan(tmp_path))] == ["v3-20240101-120000", "v0-20260101-120000"]


def test_within_one_dir_the_version_wins_over_the_clock(tmp_path):
    # v10's clock was wrong; ms-swift still numbered it after v2, so it is the newer one, and it
    # counts as at least as new as v2 against runs elsewhere.
    make_run(tmp_path / "Qwen-A", "v2-20260101-120000", [5])
    make_run(tmp_path / "Qwen-A", "v10-20250101-120000", [6])
    make_run(tmp_path / "Qwen-B", "v0-20250601-120000", [7])
    c, reason, _ = pick(tmp_path)
    assert c.path == (tmp_path / "Qwen-A" / "v10-20250101-120000" / "checkpoint-6").resolve()
    assert reason == "newest run Qwen-A/v10-20250101-120000, last checkpoint (step 6 of 6, 1 checkpoint)"


@pytest.mark.parametrize("plain_year, newest", [(2027, "plain"), (2020, "Qwen-A/v0-20260101-120000")])
def test_add_version_false_run_is_ordered_by_its_mtime(tmp_path, plain_year, newest):
    make_run(tmp_path / "Qwen-A", "v0-20260101-120000", [5])
    plain = make_run(tmp_path, "plain", [3])  # --add_version false: the output dir is the run
    stamp = datetime(plain_year, 1, 1).timestamp()
    os.utime(plain, (stamp, stamp))
    c, reason, _ = pick(tmp_path)
    assert reason.startswith(f"newest run {newest}, last checkpoint")
    assert c.path.parent == (tmp_path / newest).resolve()


def test_skipped_runs_are_named_by_their_path_when_runs_sit_in_several_dirs(tmp_path):
    make_run(tmp_path / "Qwen-A", "v0-20260101-120000", [5])
    write_json(tmp_path / "Qwen-B" / "v0-20260102-120000" / "args.json", ARGS)  # crashed before a save
    _, reason, _ = pick(tmp_path)
    assert reason == ("newest run Qwen-A/v0-20260101-120000, last checkpoint (step 5 of 5, 1 checkpoint); "
                      "skipped newer run without a complete checkpoint: Qwen-B/v0-20260102-120000")


# --- a save cut short is never picked -----------------------------------------------------------

WHOLE = len(safetensors_bytes(1000))


def only_config(ckpt: Path) -> str:  # the reported case: ms-swift then fails to load the adapter
    for f in ckpt.iterdir():
        if f.name != "adapter_config.json":
            f.unlink()
    return "no adapter weights (adapter_model.safetensors or adapter_model.bin)"


def cut_in_half(ckpt: Path) -> str:
    f = ckpt / "adapter_model.safetensors"
    f.write_bytes(f.read_bytes()[: WHOLE // 2])
    return f"adapter_model.safetensors is cut short: {WHOLE // 2} of {WHOLE} bytes"


def one_byte_short(ckpt: Path) -> str:
    f = ckpt / "adapter_model.safetensors"
    f.write_bytes(f.read_bytes()[:-1])
    return f"adapter_model.safetensors is cut short: {WHOLE - 1} of {WHOLE} bytes"


def one_byte_long(ckpt: Path) -> str:
    with open(ckpt / "adapter_model.safetensors", "ab") as f:
        f.write(b"\0")
    return f"adapter_model.safetensors is {WHOLE + 1} bytes but its header accounts for {WHOLE}"


def header_cut(ckpt: Path) -> str:
    (ckpt / "adapter_model.safetensors").write_bytes(struct.pack("<Q", 10**6) + b'{"lora_A"')
    return "adapter_model.safetensors is cut short: its header alone should take 1000000 bytes, the file holds 9"


def header_garbage(ckpt: Path) -> str:
    (ckpt / "adapter_model.safetensors").write_bytes(struct.pack("<Q", 5) + b"{nope" + b"\0" * 100)
    return "adapter_model.safetensors has no readable safetensors header"


def too_short(ckpt: Path) -> str:
    (ckpt / "adapter_model.safetensors").write_bytes(b"\0\0\0")
    return "adapter_model.safetensors is 3 bytes: too short for a safetensors header"


def no_config(ckpt: Path) -> str:  # peft writes the weights first, then adapter_config.json
    (ckpt / "adapter_config.json").unlink()
    return "no adapter_config.json (peft writes it after the weights: the save did not finish)"


def config_is_a_pipe(ckpt: Path) -> str:  # no save leaves one: said as what it is, not as missing
    (ckpt / "adapter_config.json").unlink()
    os.mkfifo(ckpt / "adapter_config.json")
    return "adapter_config.json is a FIFO (named pipe), not a file (peft reads it as a JSON file)"


def config_is_a_dir(ckpt: Path) -> str:
    (ckpt / "adapter_config.json").unlink()
    (ckpt / "adapter_config.json").mkdir()
    return "adapter_config.json is a directory, not a file (peft reads it as a JSON file)"


def config_links_to_nothing(ckpt: Path) -> str:
    (ckpt / "adapter_config.json").unlink()
    (ckpt / "adapter_config.json").symlink_to(ckpt / "gone.json")
    return "adapter_config.json is a link to nothing, not a file (peft reads it as a JSON file)"


def empty_bin(ckpt: Path) -> str:
    (ckpt / "adapter_model.safetensors").unlink()
    (ckpt / "adapter_model.bin").write_bytes(b"")
    return "adapter_model.bin is empty"


def no_trainer_state(ckpt: Path) -> str:  # the Trainer writes it after the weights and optimizer
    (ckpt / "trainer_state.json").unlink()
    return "no trainer_state.json (the Trainer writes it last: the save did not finish)"


def cut_trainer_state(ckpt: Path) -> str:
    state = ckpt / "trainer_state.json"
    state.write_text(state.read_text()[:40])
    return "trainer_state.json does not parse (cut short?)"


BREAKS = [only_config, cut_in_half, one_byte_short, one_byte_long, header_cut, header_garbage, too_short,
          no_config, config_is_a_pipe, config_is_a_dir, config_links_to_nothing, empty_bin, no_trainer_state,
          cut_trainer_state]


@pytest.mark.parametrize("brk", BREAKS, ids=[b.__name__ for b in BREAKS])
def test_a_half_written_newer_checkpoint_is_skipped_and_said(tmp_path, brk):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4], losses={2: 2.0, 4: 1.0})
    why = brk(run / "checkpoint-4")
    [scanned] = scan(run)
    assert [(c.step, c.incomplete, c.is_last, c.is_best) for c in scanned.checkpoints] == [
        (2, None, True, True), (4, why, False, False)]
    for how in ("last", "best"):  # checkpoint-4 had the lower loss: best must not take it either
        c, reason, skipped = pick(run, how)
        assert c.path == (run / "checkpoint-2").resolve()
        assert skipped == [f"skipped incomplete checkpoint {(run / 'checkpoint-4').resolve()}: {why}"]
    assert reason == ("run v0-20260101-120000, best checkpoint by lowest training loss (no eval_loss logged) "
                      "(step 2, loss 2, 1 checkpoint, 1 incomplete)")
    assert pick(run)[1] == "run v0-20260101-120000, last checkpoint (step 2 of 4, 1 checkpoint, 1 incomplete)"
    err = raised(run / "checkpoint-4")  # asked for by name: refused, not swapped for another
    assert err.message == (f"checkpoint-4 is not a complete adapter checkpoint ({(run / 'checkpoint-4').resolve()}): "
                           f"{why}")
    assert err.hint == ("put the adapter_config.json the run saved there, or pass another checkpoint-N"
                        if "not a file" in why else HALF_HINT + "; pass an earlier checkpoint-N")


def test_whole_weights_count_in_either_format(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4])
    ckpt = run / "checkpoint-4"
    (ckpt / "adapter_model.safetensors").unlink()
    (ckpt / "adapter_model.bin").write_bytes(b"\x80\x02}q\x00.")  # safe_serialization off: a pickle
    assert [c.incomplete for c in scan(run)[0].checkpoints] == [None, None]
    assert pick(run)[0].path == ckpt.resolve()
    (ckpt / "adapter_model.bin").write_bytes(b"")
    assert scan(run)[0].checkpoints[1].incomplete == "adapter_model.bin is empty"
    (ckpt / "adapter_model.safetensors").write_bytes(safetensors_bytes(10))  # peft prefers it over .bin
    assert scan(run)[0].checkpoints[1].incomplete is None


def test_a_lone_adapter_needs_no_trainer_state_but_whole_weights(tmp_path):
    ckpt = make_adapter(tmp_path / "final")  # copied out of a run and renamed: not a training checkpoint
    assert pick(ckpt)[0].path == ckpt.resolve()
    cut_in_half(ckpt)
    err = raised(ckpt)
    assert err.message == (f"final is not a complete adapter checkpoint ({ckpt.resolve()}): "
                           f"adapter_model.safetensors is cut short: {WHOLE // 2} of {WHOLE} bytes")


def test_default_layout_weights_are_checked_too(tmp_path):
    ckpt = make_adapter(tmp_path / "v0-20260101-120000" / "checkpoint-5", default_layout=True)
    write_json(ckpt / "trainer_state.json", {"global_step": 5, "log_history": []})
    cut_in_half(ckpt / "default")
    [c] = scan(tmp_path)[0].checkpoints
    assert c.incomplete == f"default/adapter_model.safetensors is cut short: {WHOLE // 2} of {WHOLE} bytes"


def test_a_newer_run_with_only_incomplete_checkpoints_is_skipped_and_said(tmp_path):
    make_run(tmp_path, "v0-20260101-120000", [5])
    new = make_run(tmp_path, "v1-20260102-120000", [2])
    why = no_trainer_state(new / "checkpoint-2")
    c, reason, skipped = pick(tmp_path)
    assert c.path == (tmp_path / "v0-20260101-120000" / "checkpoint-5").resolve()
    assert reason == ("newest run v0-20260101-120000, last checkpoint (step 5 of 5, 1 checkpoint); "
                      "skipped newer run without a complete checkpoint: v1-20260102-120000")
    assert skipped == [f"skipped incomplete checkpoint {(new / 'checkpoint-2').resolve()}: {why}"]


def test_older_incomplete_checkpoints_are_not_news_for_last_but_are_for_best(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4], losses={2: 0.5, 4: 1.0})
    why = cut_trainer_state(run / "checkpoint-2")
    assert pick(run)[2] == []  # checkpoint-2 would not have been the last anyway
    c, _, skipped = pick(run, "best")
    assert c.step == 4 and skipped == [f"skipped incomplete checkpoint {(run / 'checkpoint-2').resolve()}: {why}"]


def test_hf_best_that_is_incomplete_is_not_picked(tmp_path):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4, 6], best_step=4, evals={2: 1.8, 4: 1.6, 6: 1.7})
    only_config(run / "checkpoint-4")
    [scanned] = scan(run)
    assert (scanned.best.step, scanned.best_rule) == (6, RULE_EVAL)  # checkpoint-6's trainer_state names 4


def test_no_complete_checkpoint_anywhere_lists_each(tmp_path):
    a = make_run(tmp_path, "v0-20260101-120000", [2])
    b = make_run(tmp_path, "v1-20260102-120000", [3, 6])
    whys = [cut_in_half(a / "checkpoint-2"), only_config(b / "checkpoint-3"), no_trainer_state(b / "checkpoint-6")]
    err = raised(tmp_path)
    assert err.message == (f"no complete adapter checkpoint under {tmp_path}; each one is incomplete:\n"
                           f"  v0-20260101-120000/checkpoint-2: {whys[0]}\n"
                           f"  v1-20260102-120000/checkpoint-3: {whys[1]}\n"
                           f"  v1-20260102-120000/checkpoint-6: {whys[2]}")
    assert err.hint == HALF_HINT


# --- what "best" was ranked by --------------------------------------------------------------------

@pytest.mark.parametrize("args, evals, best_step, best_by", [
    ({}, {}, None, "lowest training loss: no eval logged"),
    ({}, {2: 1.0, 4: 0.9}, None, "lowest eval_loss"),
    ({"metric_for_best_model": "loss", "greater_is_better": False}, {2: 1.0, 4: 0.9}, 4,
     "trainer_state.json best_model_checkpoint: lowest eval_loss"),
    ({"metric_for_best_model": "eval_token_acc", "greater_is_better": True}, {2: 1.0, 4: 0.9}, 2,
     "trainer_state.json best_model_checkpoint: highest eval_token_acc"),
    ({"metric_for_best_model": "token_acc"}, {2: 1.0, 4: 0.9}, 2,
     "trainer_state.json best_model_checkpoint: highest eval_token_acc"),
    ({}, {2: 1.0, 4: 0.9}, 2, "trainer_state.json best_model_checkpoint"),  # args.json does not say
])
def test_best_says_what_it_was_ranked_by(tmp_path, args, evals, best_step, best_by):
    run = make_run(tmp_path, "v0-20260101-120000", [2, 4], losses={2: 2.0, 4: 3.0}, evals=evals,
                   best_step=best_step)
    write_json(run / "args.json", {**ARGS, **args})
    [scanned] = scan(run)
    rows = checkpoints_table([scanned])
    assert [(r["best"], r["best_by"]) for r in rows if r["best"]] == [(True, best_by)]
    assert [r["best_by"] for r in rows if not r["best"]] == [None]
