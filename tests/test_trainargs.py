"""Values transformers, torch or numpy refuse only once ms-swift runs (checks/trainargs.py) and
--attn_impl names (checks/attention.py). ms-swift's own failure for each error is asserted in
tests/test_real_failures.py (seed-negative, logging-steps-0, optimizer-unknown, adam-beta,
attn-impl-unknown)."""

from __future__ import annotations

import pytest

from conftest import run_cli


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, '
                                          '{"role": "assistant", "content": "hello"}]}\n' * 20)
    return tmp_path


def _validate(*flags: str, preset: str = "single"):
    return run_cli(["validate", "-p", preset, "--swift-version", "4.6", "--dataset", "train.jsonl", "--", *flags])


def _errors(stderr: str, code: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"error[{code}]")]


@pytest.mark.parametrize("seed, refused", [("-1", True), ("4294967296", True), ("4294967295", False), ("0", False),
                                           ("42", False)])
def test_the_seed_is_in_numpys_range(here, seed, refused):
    result = _validate("--seed", seed)
    assert bool(_errors(result.stderr, "train.seed")) is refused, result.stderr
    if refused:
        assert _errors(result.stderr, "train.seed") == [
            f"error[train.seed] args.seed (-- extra flags): seed {seed} is outside numpy's range 0 to 2**32 - 1: "
            "ms-swift stops while it sets the seeds (\"Seed must be between 0 and 2**32 - 1\")"]


def test_logging_steps_0_is_refused_unless_logging_is_not_by_steps(here):
    result = _validate("--logging_steps", "0")
    assert result.code == 2
    assert _errors(result.stderr, "train.logging_steps") == [
        "error[train.logging_steps] args.logging_steps (-- extra flags): logging_steps 0 with logging_strategy steps: "
        "transformers refuses it while ms-swift builds its training arguments (\"logging strategy "
        "IntervalStrategy.STEPS requires non-zero --logging_steps\")"]
    epoch = _validate("--logging_steps", "0", "--logging_strategy", "epoch")
    assert not _errors(epoch.stderr, "train.logging_steps")


def test_an_optimizer_ms_swift_lacks_is_refused_with_did_you_mean(here):
    result = _validate("--optimizer", "galor")
    assert result.code == 2
    lines = result.stderr.splitlines()
    at = lines.index("error[train.optimizer.unknown] args.optimizer (-- extra flags): optimizer 'galor' is none "
                     "ms-swift registers: the run stops when the Trainer is built, after the model has loaded "
                     "(KeyError: 'galor')")
    assert lines[at + 1] == ("  hint: did you mean 'galore'? ms-swift registers default, galore, lorap, muon, muonclip, "
                             "multimodal; transformers' own optimizers are chosen with --optim")
    for name in ("galore", "muon", "multimodal"):
        assert not _errors(_validate("--optimizer", name).stderr, "train.optimizer.unknown")


def test_an_optimizer_a_plugin_may_register_is_only_a_warning(here):
    (here / "plugin.py").write_text("from swift.optimizers import optimizers_map\n")
    result = _validate("--optimizer", "my_adam", "--external_plugins", "plugin.py")
    assert result.code == 0, result.stderr
    assert ("warning[train.optimizer.unknown] args.optimizer (-- extra flags): optimizer 'my_adam' is none ms-swift "
            "registers, unless your --external_plugins file registers it (optimizers_map['name'] = ...)") in result.stderr


@pytest.mark.parametrize("flags, key, refused", [
    (("--adam_beta1", "1.5"), "adam_beta1", True),
    (("--adam_beta2", "1"), "adam_beta2", True),
    (("--adam_beta1", "-0.1"), "adam_beta1", True),
    (("--adam_epsilon", "-1e-8"), "adam_epsilon", True),
    (("--adam_beta1", "0.9", "--adam_beta2", "0.95"), "adam_beta1", False),
    (("--optim", "sgd", "--adam_beta1", "1.5"), "adam_beta1", False),  # SGD never reads the betas
    (("--optim", "adamw_torch_fused", "--adam_beta1", "1.5"), "adam_beta1", True),
])
def test_adams_betas_and_epsilon(here, flags, key, refused):
    result = _validate(*flags)
    found = [e for e in _errors(result.stderr, "train.adam") if f"args.{key} " in e]
    assert bool(found) is refused, result.stderr


def test_a_beta_message(here):
    result = _validate("--adam_beta1", "1.5")
    assert ("error[train.adam] args.adam_beta1 (-- extra flags): adam_beta1 1.5 is no Adam beta (0 or more, below 1): "
            "torch refuses it when the optimizer is built, after the model has loaded (\"Invalid beta parameter at "
            "index 0\")\n  hint: the defaults are adam_beta1: 0.9, adam_beta2: 0.999") in result.stderr


@pytest.mark.parametrize("value, suggested", [("flash_attention2", "flash_attention_2"), ("FLASH_ATTN", "flash_attn"),
                                              ("spda", "sdpa")])
def test_an_attention_transformers_lacks_is_refused_with_did_you_mean(here, value, suggested):
    result = _validate("--attn_impl", value)
    assert result.code == 2
    lines = result.stderr.splitlines()
    at = lines.index(f"error[model.attn_impl.unknown] args.attn_impl (-- extra flags): attn_impl {value!r} is no "
                     "attention implementation transformers has: it refuses it when it builds the model (\"Specified "
                     f"`attn_implementation=\"{value}\"` is not supported\")")
    assert lines[at + 1] == (f"  hint: did you mean {suggested!r}? one of eager, sdpa, flash_attn, flash_attention_2, "
                             "flash_attention_3, flash_attention_4, flex_attention (flash_attn is ms-swift's name for "
                             "flash_attention_2), or a hub kernel (org/name)")


@pytest.mark.parametrize("value", ["flash_attn", "flash_attention_2", "sdpa", "eager", "flex_attention",
                                   "kernels-community/flash-attn3", "paged|eager", "sdpa_paged"])
def test_attention_names_transformers_takes_pass(here, value):
    assert not _errors(_validate("--attn_impl", value).stderr, "model.attn_impl.unknown")


def test_a_scheduler_kwargs_text_that_is_no_json_is_refused(here):
    result = _validate("--lr_scheduler_type", "cosine", "--lr_scheduler_kwargs", "min_lr=1e-6")
    assert result.code == 2
    assert ("error[flags.value] args.lr_scheduler_kwargs (-- extra flags): lr_scheduler_kwargs 'min_lr=1e-6' is neither "
            "a JSON mapping nor a file: ms-swift's json_parse_to_dict cannot read it and stops while parsing its "
            "arguments (\"Unable to parse json string\"); write it as a JSON object, e.g. '{\"key\": \"value\"}'") \
        in result.stderr
