"""`lorakit merge` and `lorakit checkpoints` on a run whose newest save was cut short (a killed run,
a full disk): a checkpoint-N counts only with whole adapter weights and a trainer_state.json that
parses (lorakit/halfwritten.py); a loss is shown only where one was logged at that very step."""

from __future__ import annotations

import json
import re
from pathlib import Path

from test_merge import RUN0, RUN1, rendered, tree, write_json  # noqa: F401  (tree: a fixture)

NO_WEIGHTS = "no adapter weights (adapter_model.safetensors or adapter_model.bin)"
NO_STATE = "no trainer_state.json (the Trainer writes it last: the save did not finish)"
HINT = ("  hint: a save cut short (the run was killed or crashed while saving, or the disk filled up) leaves "
        "this; `lorakit checkpoints DIR` lists every checkpoint and marks the incomplete ones")


def keep_only_config(ckpt: Path) -> None:
    for f in ckpt.iterdir():
        if f.name != "adapter_config.json":
            f.unlink()


def test_merge_skips_a_checkpoint_holding_only_its_config(cli, tree):
    """The reported case: picked as 'last', and ms-swift then failed to load it."""
    _, out, ckpt6 = tree
    keep_only_config(ckpt6)
    ckpt3 = out / RUN1 / "checkpoint-3"
    result = cli(["merge", "--adapters", str(out), "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == rendered(ckpt3, out / RUN1 / "checkpoint-3-merged")
    assert result.stderr.splitlines()[:2] == [
        f"lorakit: skipped incomplete checkpoint {ckpt6}: {NO_WEIGHTS}",
        f"lorakit: picked {ckpt3}: newest run {RUN1}, last checkpoint (step 3 of 6, 1 checkpoint, 1 incomplete)",
    ]


def test_merge_skips_a_newer_run_whose_only_save_was_cut_short(cli, tree):
    _, out, _ = tree
    for step in (3, 6):
        (out / RUN1 / f"checkpoint-{step}" / "trainer_state.json").unlink()
    ckpt4 = out / RUN0 / "checkpoint-4"
    result = cli(["merge", "--adapters", str(out), "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == rendered(ckpt4, out / RUN0 / "checkpoint-4-merged")
    assert result.stderr.splitlines()[:3] == [
        f"lorakit: skipped incomplete checkpoint {out / RUN1 / 'checkpoint-3'}: {NO_STATE}",
        f"lorakit: skipped incomplete checkpoint {out / RUN1 / 'checkpoint-6'}: {NO_STATE}",
        f"lorakit: picked {ckpt4}: newest run {RUN0}, last checkpoint (step 4 of 6, 2 checkpoints); "
        f"skipped newer run without a complete checkpoint: {RUN1}",
    ]


def test_merge_with_no_complete_checkpoint_says_why_for_each(cli, tree):
    _, out, _ = tree
    for ckpt in sorted(out.glob("v*/checkpoint-*")):
        keep_only_config(ckpt)
    weights = out / RUN0 / "checkpoint-2" / "adapter_model.safetensors"
    weights.write_bytes(b"\0\0\0")
    result = cli(["merge", "--adapters", str(out), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"lorakit: error: no complete adapter checkpoint under {out}; each one is incomplete:",
        f"  {RUN0}/checkpoint-2: adapter_model.safetensors is 3 bytes: too short for a safetensors header",
        f"  {RUN0}/checkpoint-4: {NO_WEIGHTS}",
        f"  {RUN1}/checkpoint-3: {NO_WEIGHTS}",
        f"  {RUN1}/checkpoint-6: {NO_WEIGHTS}",
        HINT,
    ]


def test_merge_refuses_an_incomplete_checkpoint_named_directly(cli, tree):
    _, _, ckpt6 = tree
    (ckpt6 / "trainer_state.json").write_text('{"global_step": 6, "log_his')
    result = cli(["merge", "--adapters", str(ckpt6), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"lorakit: error: checkpoint-6 is not a complete adapter checkpoint ({ckpt6}): "
        "trainer_state.json does not parse (cut short?)",
        HINT + "; pass an earlier checkpoint-N",
    ]


def rows_of(result) -> list:
    """The plain table's cells (columns are 2+ spaces apart; time and size hold one), marks last."""
    header, *lines = result.stdout.splitlines()
    names = header.split()
    rows = [re.split(r" {2,}", line.strip()) for line in lines]
    return [dict(zip(names, cells + [""] * (len(names) - len(cells)))) for cells in rows]


def cells(result, *names) -> list:
    return [[row[n] for n in names] for row in rows_of(result)]


def test_checkpoints_marks_incomplete_ones_and_shows_only_losses_logged_at_their_step(cli, tree):
    _, out, ckpt6 = tree
    keep_only_config(out / RUN0 / "checkpoint-2")
    # checkpoint-6 was saved at a step no loss was logged at (the last log was at step 5)
    state = json.loads((ckpt6 / "trainer_state.json").read_text())
    state["log_history"] = [{"loss": 0.7, "step": 5}]
    write_json(ckpt6 / "trainer_state.json", state)
    result = cli(["checkpoints", str(out)])
    assert result.code == 0, result.stderr
    assert cells(result, "run", "checkpoint", "step", "loss", "marks") == [
        [RUN0, "checkpoint-2", "2", "-", f"incomplete: {NO_WEIGHTS}"],
        [RUN0, "checkpoint-4", "4", "1.2", "last,best (lowest training loss: no eval logged)"],
        [RUN1, "checkpoint-3", "3", "0.5", "best (lowest training loss: no eval logged)"],
        [RUN1, "checkpoint-6", "6", "-", "last"],  # not 0.7: that was step 5's
    ]
    assert result.stderr.splitlines() == [
        f"lorakit: `lorakit merge --adapters {out}` would pick {ckpt6}: newest run {RUN1}, last checkpoint "
        "(step 6 of 6, 2 checkpoints)"]
    rows = json.loads(cli(["checkpoints", str(out), "--json"]).stdout)
    assert [(r["checkpoint"], r["loss"], r["last"], r["best"], r["best_by"], r["incomplete"]) for r in rows] == [
        ("checkpoint-2", None, False, False, None, NO_WEIGHTS),
        ("checkpoint-4", 1.2, True, True, "lowest training loss: no eval logged", None),
        ("checkpoint-3", 0.5, False, True, "lowest training loss: no eval logged", None),
        ("checkpoint-6", None, True, False, None, None),
    ]


def test_checkpoints_with_every_save_cut_short_lists_them_and_says_merge_would_refuse(cli, tree):
    _, out, _ = tree
    for ckpt in out.glob("v*/checkpoint-*"):
        keep_only_config(ckpt)
    result = cli(["checkpoints", str(out)])
    assert result.code == 0, result.stderr
    assert cells(result, "loss", "marks") == [["-", f"incomplete: {NO_WEIGHTS}"]] * 4
    assert result.stderr.splitlines() == [
        f"lorakit: `lorakit merge --adapters {out}` would refuse: no complete adapter checkpoint under {out}; "
        "each one is incomplete:"]


def test_checkpoints_labels_best_by_eval_loss(cli, tree):
    _, out, ckpt6 = tree
    for step, eval_loss in ((3, 0.8), (6, 0.75)):
        path = out / RUN1 / f"checkpoint-{step}" / "trainer_state.json"
        state = json.loads(path.read_text())
        state["log_history"].append({"eval_loss": eval_loss, "step": step})
        write_json(path, state)
    result = cli(["checkpoints", str(out)])
    assert result.code == 0, result.stderr
    assert cells(result, "checkpoint", "eval_loss", "marks") == [
        ["checkpoint-2", "-", ""],
        ["checkpoint-4", "-", "last,best (lowest training loss: no eval logged)"],
        ["checkpoint-3", "0.8", ""],
        ["checkpoint-6", "0.75", "last,best (lowest eval_loss)"],
    ]
