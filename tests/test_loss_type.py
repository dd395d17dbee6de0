"""`swift sft --loss_type` against the target release's loss registry (lorakit.losstypes, from
src/lorakit/data/swift_loss_types.json, which scripts/gen_swift_loss_types.py reads from every
released wheel). The trainer looks the name up after the model has loaded: a KeyError then
(tests/test_real_failures.py runs `listwise_generative_reranker` on 4.6.0 and a typo on 3.12.6)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from conftest import WHEELS, imported_by, regenerate_pinned, run_cli
from lorakit import losstypes

FOUR = ("ce_rps, contrastive, cosine_similarity, cross_entropy, distill_rps, infonce, listwise_reranker, "
        "online_contrastive, pointwise_reranker, scoring, smooth_brier")
THREE = ("contrastive, cosine_similarity, cross_entropy, generative_reranker, infonce, listwise_generative_reranker, "
         "listwise_reranker, online_contrastive, reranker")


@pytest.mark.parametrize("version,name,has", [
    ("3.0.3", "loss_scale", True), ("3.0.3", "contrastive", False), ("3.1.1", "contrastive", True),
    ("3.4.1", "infonce", True), ("3.5.0", "channel_loss", True), ("3.6.0", "listwise_generative_reranker", True),
    ("3.7.3", "loss_scale", True), ("3.8.0", "loss_scale", False), ("3.8.0", "cross_entropy", True),
    ("3.12.6", "channel_loss", False), ("4.0.0", "listwise_generative_reranker", False),
    ("4.0.0", "pointwise_reranker", True), ("4.5.3", "scoring", False), ("4.6.0", "scoring", True),
])
def test_what_each_release_has(version, name, has):
    at = losstypes.release(int(version[0]), version)
    assert at.version == version
    assert (name in at.names) == has


@pytest.mark.parametrize("target,value,line,hint", [
    ("4", "listwise_generative_reranker",
     "error[flags.removed] args.loss_type (-- extra flags): loss_type 'listwise_generative_reranker' in ms-swift 4.x "
     "(4.6.0): no loss by that name, the last release with it is ms-swift 3.12.6; 4.0 calls it 'listwise_reranker'; "
     "ms-swift finds out after the model has loaded (KeyError: 'listwise_generative_reranker'); it has " + FOUR,
     "  hint: write --loss_type listwise_reranker (the head, generative or not, comes from --task_type)"),
    ("3", "infonse",
     "error[flags.value] args.loss_type (-- extra flags): loss_type 'infonse' in ms-swift 3.x (3.12.6): no loss by "
     "that name, no ms-swift 3.x has it; ms-swift finds out after the model has loaded (KeyError: 'infonse'); it has "
     + THREE,
     "  hint: did you mean 'infonce'?"),
    ("3.5", "listwise_generative_reranker",
     "error[flags.too_new] args.loss_type (-- extra flags): loss_type 'listwise_generative_reranker' in ms-swift 3.5 "
     "(3.5.3): no loss by that name, it is from ms-swift 3.6.0; ms-swift finds out after the model has loaded "
     "(KeyError: 'listwise_generative_reranker'); it has channel_loss, contrastive, cosine_similarity, infonce, "
     "loss_scale, online_contrastive",
     "  hint: upgrade to ms-swift 3.6.0 or later (pip install 'ms-swift>=3.6.0,<4')"),
    ("3.0", "channel_loss",
     "error[flags.too_new] args.loss_type (-- extra flags): loss_type 'channel_loss' in ms-swift 3.0 (3.0.3): no loss "
     "by that name, it is from ms-swift 3.5.0; ms-swift finds out after the model has loaded (KeyError: "
     "'channel_loss'); it has loss_scale",
     "  hint: upgrade to ms-swift 3.5.0 (up to 3.8.0, which no longer has it: pip install 'ms-swift>=3.5.0,<3.8.0')"),
    ("3.12", "channel_loss",
     "error[flags.removed] args.loss_type (-- extra flags): loss_type 'channel_loss' in ms-swift 3.12 (3.12.6): no "
     "loss by that name, the last release with it is ms-swift 3.7.3; ms-swift finds out after the model has loaded "
     "(KeyError: 'channel_loss'); it has " + THREE,
     "  hint: write --enable_channel_loss true instead (from ms-swift 3.8)"),
    ("4", "loss_scale",
     "error[flags.removed] args.loss_type (-- extra flags): loss_type 'loss_scale' in ms-swift 4.x (4.6.0): no loss "
     "by that name, the last release with it is ms-swift 3.7.3; ms-swift finds out after the model has loaded "
     "(KeyError: 'loss_scale'); it has " + FOUR,
     "  hint: drop --loss_type: from ms-swift 3.8 the --loss_scale weights apply without one"),
    ("3", "scoring",
     "error[flags.too_new] args.loss_type (-- extra flags): loss_type 'scoring' in ms-swift 3.x (3.12.6): no loss by "
     "that name, it is from ms-swift 4.6.0; ms-swift finds out after the model has loaded (KeyError: 'scoring'); it "
     "has " + THREE,
     "  hint: upgrade to ms-swift 4.6.0 or later (pip install 'ms-swift>=4.6.0')"),
    ("4.5", "scoring",
     "error[flags.too_new] args.loss_type (-- extra flags): loss_type 'scoring' in ms-swift 4.5 (4.5.3): no loss by "
     "that name, it is from ms-swift 4.6.0; ms-swift finds out after the model has loaded (KeyError: 'scoring'); it "
     "has contrastive, cosine_similarity, cross_entropy, infonce, listwise_reranker, online_contrastive, "
     "pointwise_reranker",
     "  hint: upgrade to ms-swift 4.6.0 or later (pip install 'ms-swift>=4.6.0,<5')"),
])
def test_each_refusal_says_what_the_release_has(target, value, line, hint):
    result = run_cli(["validate", "-p", "single", "--swift-version", target, "--", "--loss_type", value])
    assert result.code == 2
    lines = result.stderr.splitlines()
    assert line in lines, result.stderr
    assert lines[lines.index(line) + 1] == hint


@pytest.mark.parametrize("task,name", [("generative_reranker", "generative_reranker"), ("reranker", "reranker")])
def test_a_4x_example_on_3x_gets_the_3x_name(task, name):
    """ms-swift #8006: examples/train/reranker/qwen3/qwen3_vl_reranker.sh from main, run on 3.12."""
    result = run_cli(["validate", "-p", "single", "--swift-version", "3.12", "--", "--loss_type", "pointwise_reranker",
                      "--task_type", task])
    line = ("error[flags.too_new] args.loss_type (-- extra flags): loss_type 'pointwise_reranker' in ms-swift 3.12 "
            "(3.12.6): no loss by that name, it is from ms-swift 4.0.0; ms-swift finds out after the model has loaded "
            "(KeyError: 'pointwise_reranker'); it has " + THREE)
    hint = (f"  hint: write --loss_type {name} (3.x's name), or upgrade to ms-swift 4.0.0 or later "
            "(pip install 'ms-swift>=4.0.0')")
    assert result.code == 2
    lines = result.stderr.splitlines()
    assert line in lines, result.stderr
    assert lines[lines.index(line) + 1] == hint


@pytest.mark.parametrize("target,value", [("4", "infonce"), ("4", "listwise_reranker"), ("4", "cross_entropy"),
                                          ("3", "listwise_generative_reranker"), ("3.7", "loss_scale"),
                                          ("3.5", "channel_loss"), ("3.4", "loss_scale"), ("4.6", "scoring")])
def test_what_the_release_has_passes(target, value):
    result = run_cli(["validate", "-p", "single", "--swift-version", target, "--", "--loss_type", value])
    assert result.code == 0, result.stderr
    assert "args.loss_type" not in result.stderr


def test_a_plugin_may_register_its_own_loss(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plugin.py").write_text("from swift.loss import loss_map\nloss_map['my_loss'] = object\n")
    result = run_cli(["validate", "-p", "single", "--swift-version", "4", "--", "--loss_type", "my_loss",
                      "--external_plugins", "plugin.py"])
    assert result.code == 0, result.stderr
    assert ("warning[flags.value] args.loss_type (-- extra flags): loss_type 'my_loss' in ms-swift 4.x (4.6.0): no "
            "loss by that name, no ms-swift 4.x has it; ms-swift finds out after the model has loaded (KeyError: "
            f"'my_loss'); it has {FOUR} (unless your --external_plugins file registers it)") in result.stderr.splitlines()


def test_rlhf_loss_types_are_not_sft_losses(tmp_path):
    """`swift rlhf --loss_type sigmoid` is DPO's loss, not the sft registry's."""
    preset = tmp_path / "dpo.yaml"
    preset.write_text("command: rlhf\nargs:\n  rlhf_type: dpo\n  model: Qwen/Qwen2.5-7B-Instruct\n"
                      "  dataset: [hjh0119/shareAI-Llama3-DPO-zh-en-emoji]\n  loss_type: sigmoid\n")
    result = run_cli(["validate", "-p", str(preset)])
    assert "args.loss_type" not in result.stderr, result.stderr


def test_a_dry_run_without_loss_type_never_reads_the_table(tmp_path):
    assert not imported_by(["train", "-p", "zero2", "--dry-run"], "lorakit.losstypes", tmp_path)
    assert imported_by(["train", "-p", "zero2", "--dry-run", "--", "--loss_type", "infonce"], "lorakit.losstypes",
                       tmp_path)


@pytest.mark.network
def test_regenerating_from_the_wheels_gives_the_committed_file():
    regenerate_pinned("gen_swift_loss_types.py")
    # and the rename in the wheels themselves: 3.12.6's table has the 3.x name, 4.0.0's the 4.x one
    for version, module, name in (("3.12.6", "swift/plugin/loss.py", "'listwise_generative_reranker':"),
                                  ("4.0.0", "swift/loss/mapping.py", "'listwise_reranker':")):
        with zipfile.ZipFile(Path(WHEELS) / f"ms_swift-{version}-py3-none-any.whl") as wheel:
            assert name in wheel.read(module).decode("utf-8"), version


@pytest.mark.parametrize("yaml_value,text", [("5", "5"), ("true", "true"), ("1.5", "1.5")])
def test_a_yaml_typed_value_is_judged_as_the_text_ms_swift_gets(tmp_path, yaml_value, text):
    preset = tmp_path / "p.yaml"
    preset.write_text(f"extends: single\nargs:\n  loss_type: {yaml_value}\n")
    result = run_cli(["validate", "-p", str(preset), "--swift-version", "4"])
    assert result.code == 2
    assert (f"error[flags.value] args.loss_type ({preset}): loss_type {text!r} in ms-swift 4.x (4.6.0): no loss by "
            f"that name, no ms-swift 4.x has it; ms-swift finds out after the model has loaded (KeyError: {text!r}); "
            f"it has {FOUR}") in result.stderr.splitlines(), result.stderr
