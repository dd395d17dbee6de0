"""train --resume: which checkpoint is complete, which is newest across vN runs, and each refusal
with its exact message (value tier and CLI tier on hand-made checkpoints; tests/test_real_resume.py
runs ms-swift)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from lorakit import resume
from lorakit.cli.train import bare_resume

MODEL = "Qwen/Qwen3-8B"  # the built-in `single` preset's model


def safetensors(path: Path, *, cut: int = 0) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    data = struct.pack("<Q", len(header)) + header + b"\0" * 8
    path.write_bytes(data[:len(data) - cut])


def checkpoint(run: Path, step: int, *, max_steps: int = 10, epoch: float | None = None, optimizer: bool = True,
               rng: bool = True, scheduler: bool = True, cut: int = 0, state: bool = True, **saved) -> Path:
    """A checkpoint-N as transformers + ms-swift 4.6.0 write it (ls of a real tiny run's)."""
    ckpt = run / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    safetensors(ckpt / "adapter_model.safetensors", cut=cut)
    (ckpt / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": saved.get("lora_rank", 8), "lora_alpha": 32.0,
         "target_modules": ["q_proj", "k_proj"], "base_model_name_or_path": MODEL}))
    args = {"model": MODEL, "tuner_type": "lora", "lora_rank": 8, "lora_alpha": 32.0,
            "target_modules": ["all-linear"], "max_steps": max_steps, "num_train_epochs": 1.0, **saved}
    (ckpt / "args.json").write_text(json.dumps(args))
    for name, present in (("optimizer.pt", optimizer), ("scheduler.pt", scheduler), ("rng_state.pth", rng)):
        if present:
            (ckpt / name).write_bytes(b"x")
    if state:
        (ckpt / "trainer_state.json").write_text(json.dumps(
            {"global_step": step, "max_steps": max_steps, "epoch": step / max_steps if epoch is None else epoch,
             "num_train_epochs": 1, "log_history": []}))
    return ckpt


# --- complete or not ---------------------------------------------------------------------------

def test_a_whole_checkpoint_is_complete(tmp_path):
    assert resume.state_problem(checkpoint(tmp_path, 2), model_only=False) is None


@pytest.mark.parametrize("kw, problem", [
    ({"optimizer": False}, "no optimizer.pt (the Trainer would restart them silently)"),
    ({"rng": False}, "no rng_state.pth (the Trainer would restart them silently)"),
    ({"scheduler": False, "rng": False}, "no scheduler.pt or rng_state.pth (the Trainer would restart them silently)"),
    ({"optimizer": False, "scheduler": False, "rng": False},
     "weights only, no optimizer, scheduler or RNG state (saved with save_only_model?): resume it with "
     "--set resume_only_model=true"),
    ({"state": False}, "no trainer_state.json (the Trainer writes it last: the save did not finish)"),
    ({"cut": 3}, "adapter_model.safetensors is cut short: 74 of 77 bytes"),
])
def test_what_a_resume_needs_is_named_when_missing(tmp_path, kw, problem):
    assert resume.state_problem(checkpoint(tmp_path, 2, **kw), model_only=False) == problem


def test_resume_only_model_needs_only_the_weights_and_the_state(tmp_path):
    ckpt = checkpoint(tmp_path, 2, optimizer=False, scheduler=False, rng=False)
    assert resume.state_problem(ckpt, model_only=True) is None


def test_deepspeed_keeps_its_optimizer_in_global_step_and_per_rank_rng(tmp_path):
    ckpt = checkpoint(tmp_path, 2, optimizer=False, scheduler=False, rng=False)
    (ckpt / "global_step2").mkdir()
    (ckpt / "rng_state_0.pth").write_bytes(b"x")
    assert resume.state_problem(ckpt, model_only=False) is None


def test_the_newest_complete_checkpoint_across_runs_and_why_others_were_passed_over(tmp_path):
    v0, v1 = tmp_path / "v0-20260101-100000", tmp_path / "v1-20260102-100000"
    checkpoint(v0, 2)
    good = checkpoint(v0, 4)
    cut = checkpoint(v1, 6, cut=5)
    no_rng = checkpoint(v1, 5, rng=False)
    found = resume.newest_complete(tmp_path)
    assert found.checkpoint.path == good.resolve() and found.checkpoint.step == 4
    assert found.skipped == [(cut.resolve(), "adapter_model.safetensors is cut short: 72 of 77 bytes"),
                             (no_rng.resolve(), "no rng_state.pth (the Trainer would restart them silently)")]


# --- the CLI: what is rendered, what is refused --------------------------------------------------

def dry(cli, out: Path, *extra: str):
    return cli(["train", "-p", "single", "--output-dir", str(out), *extra, "--dry-run", "--format", "json"])


def test_bare_resume_renders_the_newest_complete_checkpoint(cli, tmp_path):
    out = tmp_path / "out"
    good = checkpoint(out / "v0-20260101-100000", 4)
    cut = checkpoint(out / "v1-20260102-100000", 6, cut=5)
    result = dry(cli, out, "--resume")
    assert result.code == 0, result.stderr
    argv = json.loads(result.stdout)["argv"]
    assert argv[-2:] == ["--resume_from_checkpoint", str(good.resolve())]
    assert f"lorakit: --resume: skipped {cut.resolve()}: adapter_model.safetensors is cut short: 72 of 77 bytes" \
        in result.stderr.splitlines()
    assert f"lorakit: --resume: from {good.resolve()} (step 4)" in result.stderr.splitlines()


@pytest.mark.parametrize("spelling", [["--resume", "auto"], ["--resume=auto"], ["--resume", "RUN"], ["--resume", "OUT"]])
def test_resume_spellings(cli, tmp_path, spelling):
    out = tmp_path / "out"
    good = checkpoint(out / "v0-20260101-100000", 4)
    words = [w.replace("RUN", str(good.parent)).replace("OUT", str(out)) for w in spelling]
    result = dry(cli, out, *words)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["argv"][-1] == str(good.resolve())


def test_resume_if_any_starts_fresh_when_there_is_nothing(cli, tmp_path):
    result = dry(cli, tmp_path / "out", "--resume", "if-any")
    assert result.code == 0, result.stderr
    assert "--resume_from_checkpoint" not in json.loads(result.stdout)["argv"]
    assert (f"lorakit: --resume if-any: no complete checkpoint in {(tmp_path / 'out').resolve()} (no ms-swift run "
            "there): starting fresh") in result.stderr.splitlines()


def test_resume_with_nothing_to_resume_is_refused(cli, tmp_path):
    out = tmp_path / "out"
    checkpoint(out / "v0-20260101-100000", 2, state=False)
    result = dry(cli, out, "--resume")
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-3:] == [
        f"lorakit: --resume: skipped {(out / 'v0-20260101-100000' / 'checkpoint-2').resolve()}: no trainer_state.json "
        "(the Trainer writes it last: the save did not finish)",
        f"lorakit: error: --resume auto: no complete checkpoint under {out.resolve()}",
        "  hint: drop --resume to start fresh, or --resume if-any to start fresh whenever there is nothing to resume"]


def test_an_explicit_half_written_checkpoint_is_refused_with_its_reason(cli, tmp_path):
    ckpt = checkpoint(tmp_path / "out" / "v0-20260101-100000", 2, optimizer=False)
    result = dry(cli, tmp_path / "out", "--resume", str(ckpt))
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: --resume {ckpt}: this checkpoint cannot be resumed: no optimizer.pt (the Trainer would "
        "restart them silently)",
        f"  hint: --resume {ckpt.resolve().parent} takes the newest complete one of its run"]


def test_resume_path_that_does_not_exist(cli, tmp_path):
    result = dry(cli, tmp_path / "out", "--resume", "nowhere/checkpoint-9")
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        "lorakit: error: --resume nowhere/checkpoint-9: no such file or directory",
        "  hint: give a checkpoint, a run dir (vN-...) or an output dir; or --resume alone for the newest complete "
        "checkpoint in this job's output dir"]


def refused(cli, out: Path, *extra: str) -> list[str]:
    result = dry(cli, out, "--resume", *extra)
    assert result.code == 2 and result.stdout == "", result.stderr
    return result.stderr.splitlines()[-1:] if "\n  - " not in result.stderr else \
        result.stderr[result.stderr.index("lorakit: error:"):].splitlines()


def test_max_steps_already_reached_is_refused(cli, tmp_path):
    ckpt = checkpoint(tmp_path / "out" / "v0-20260101-100000", 10, max_steps=10).resolve()
    assert refused(cli, tmp_path / "out", "--set", "max_steps=10") == [
        f"lorakit: error: --resume {ckpt}: cannot resume this job from it: the checkpoint is at step 10 and this "
        "job's max_steps is 10: it would end at once (to train on, raise max_steps, e.g. --set max_steps=20)"]


def test_epochs_already_done_are_refused(cli, tmp_path):
    # the single preset says num_train_epochs 1 and no max_steps
    ckpt = checkpoint(tmp_path / "out" / "v0-20260101-100000", 10, max_steps=-1, epoch=1.0).resolve()
    assert refused(cli, tmp_path / "out") == [
        f"lorakit: error: --resume {ckpt}: cannot resume this job from it: the checkpoint has trained 1 epoch(s) "
        "and this job's num_train_epochs is 1: it would end at once (to train on, raise num_train_epochs)"]


def test_a_different_adapter_is_refused_with_every_difference(cli, tmp_path):
    ckpt = checkpoint(tmp_path / "out" / "v0-20260101-100000", 4).resolve()
    lines = refused(cli, tmp_path / "out", "--set", "max_steps=10", "--lora-rank", "16", "--lora-alpha", "64",
                    "--target-modules", "q_proj,v_proj", "--model", "Qwen/Qwen3-4B", "--set", "tuner_type=full")
    fix = " (a resume must train the same adapter: use the checkpoint's value, or start fresh without --resume)"
    saved = ckpt / "args.json"
    assert lines == [
        f"lorakit: error: --resume {ckpt}: cannot resume this job from it:",
        f"  - tuner_type: this job has 'full', the checkpoint was trained with 'lora' ({saved})" + fix,
        f"  - lora_rank: this job has 16, the checkpoint was trained with 8 ({saved})" + fix,
        f"  - lora_alpha: this job has 64.0, the checkpoint was trained with 32.0 ({saved})" + fix,
        f"  - target_modules: this job has ['q_proj', 'v_proj'], the checkpoint was trained with ['all-linear'] "
        f"({saved})" + fix,
        f"  - model: this job has 'Qwen/Qwen3-4B', the checkpoint was trained with 'Qwen/Qwen3-8B' ({saved})" + fix]


def test_the_same_adapter_spelled_otherwise_resumes(cli, tmp_path):
    # args.json says 32.0 and a list; the preset says 32 and a bracket string (the seed's spelling)
    checkpoint(tmp_path / "out" / "v0-20260101-100000", 4, target_modules=["q_proj", "v_proj"])
    result = dry(cli, tmp_path / "out", "--resume", "--set", "max_steps=10", "--set", "lora_alpha=32",
                 "--set", "target_modules=[q_proj,v_proj]")
    assert result.code == 0, result.stderr


def test_resume_only_model_with_ignore_data_skip_and_unchanged_max_steps_is_refused(cli, tmp_path):
    ckpt = checkpoint(tmp_path / "out" / "v0-20260101-100000", 4, optimizer=False, scheduler=False,
                      rng=False).resolve()
    assert refused(cli, tmp_path / "out", "--set", "max_steps=10", "--set", "resume_only_model=true",
                   "--set", "ignore_data_skip=true") == [
        f"lorakit: error: --resume {ckpt}: cannot resume this job from it: resume_only_model with ignore_data_skip "
        "and max_steps unchanged (10): ms-swift ends such a run at once (ms-swift #8383); set max_steps to the steps "
        "you want this run to train, or drop ignore_data_skip"]
    result = dry(cli, tmp_path / "out", "--resume", "--set", "max_steps=6", "--set", "resume_only_model=true",
                 "--set", "ignore_data_skip=true")
    assert result.code == 0, result.stderr


def test_resume_and_resume_from_checkpoint_both_given(cli, tmp_path):
    result = dry(cli, tmp_path / "out", "--resume", "--set", "resume_from_checkpoint=x/checkpoint-2")
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        "lorakit: error: --resume and resume_from_checkpoint 'x/checkpoint-2' (--set) both say where to resume from",
        "  hint: give one of them"]


@pytest.mark.parametrize("words, expected", [
    (["train", "--resume"], ["train", "--resume=auto"]),
    (["train", "--resume", "--dry-run"], ["train", "--resume=auto", "--dry-run"]),
    (["train", "-p", "x", "--resume", "--", "--max_steps", "3"], ["train", "-p", "x", "--resume=auto", "--",
                                                                   "--max_steps", "3"]),
    (["train", "--resume", "if-any"], ["train", "--resume", "if-any"]),
    (["train", "--resume", "out/v0"], ["train", "--resume", "out/v0"]),
    (["train", "--", "--resume"], ["train", "--", "--resume"]),
    (["validate", "--resume"], ["validate", "--resume"]),
])
def test_resume_alone_means_auto(words, expected):
    assert bare_resume(words) == expected


def test_help_says_the_spelling_with_examples():
    from typer.testing import CliRunner

    from lorakit.cli.app import app

    text = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"}).output
    words = " ".join(text.split())
    assert "--resume [auto|if-any|PATH]" in words
    assert "--resume alone (or auto) refuses when there is none, --resume if-any then starts fresh" in words
    for example in ("lorakit train -p my.yaml --resume (newest complete checkpoint; error if none)",
                    "lorakit train -p my.yaml --resume if-any (resume if there is one, else start fresh)",
                    "lorakit train --from output/v1-20260101-120000 --resume if-any --node-rank 1"):
        assert example in words


def test_a_3x_checkpoint_says_train_type(tmp_path):
    # ms-swift 3.x's args.json has train_type (4.0 renamed it tuner_type, no alias)
    ckpt = checkpoint(tmp_path, 4, train_type="full")
    saved = json.loads((ckpt / "args.json").read_text())
    del saved["tuner_type"]
    (ckpt / "args.json").write_text(json.dumps(saved))
    assert resume.mismatches({"tuner_type": "lora"}, ckpt) == [
        f"tuner_type: this job has 'lora', the checkpoint was trained with 'full' ({ckpt / 'args.json'})"]
    assert resume.mismatches({"tuner_type": "full"}, ckpt) == []


def test_without_args_json_the_adapter_config_decides(tmp_path):
    ckpt = checkpoint(tmp_path, 4, lora_rank=16)
    (ckpt / "args.json").unlink()
    assert resume.mismatches({"lora_rank": 8}, ckpt) == [
        f"lora_rank: this job has 8, the checkpoint was trained with 16 ({ckpt / 'adapter_config.json'})"]
