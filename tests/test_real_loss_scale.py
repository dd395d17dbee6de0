"""The real ms-swift with a --loss_scale its release does not have: argparse takes any text, and the
run stops only when the template is built, after the model has loaded (ms-swift #4382's KeyError).
4.6.0: a misspelt name; 3.12.6: `last_round_with_ignore_empty_think`, a 3.5-3.11 name 3.12 dropped
(it reads last_round+ignore_empty_think), and a name chain 3.12 splits only once. lorakit says
each first, with ms-swift's own error text, and lets through what the release trains with."""

from __future__ import annotations

import subprocess
import sys

import pytest

from test_real_requires import swift3_fails
from test_real_swift import swift_env, tiny  # noqa: F401  (tiny: the module-scoped fixture)

pytestmark = pytest.mark.real


def _flags(model, data, *more):
    return ["--model", str(model), "--model_type", "qwen2", "--template", "qwen", "--dataset", str(data),
            "--max_steps", "1", "--torch_dtype", "float32", "--split_dataset_ratio", "0",
            "--output_dir", "out", "--dataloader_num_workers", "0", *more]


def _validate(flags, cwd, env, *target):
    return subprocess.run([sys.executable, "-m", "lorakit", "validate", "-p", "single", *target, "--", *flags],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_a_misspelt_loss_scale_stops_ms_swift_4_after_the_load_and_lorakit_before(tmp_path, tiny):  # noqa: F811
    model, data, _ = tiny
    flags = _flags(model, data, "--tuner_type", "lora", "--loss_scale", "hermess")
    done = subprocess.run(["swift", "sft", *flags], cwd=tmp_path, env=swift_env(), capture_output=True, text=True,
                          timeout=600)
    said = done.stdout + done.stderr
    assert done.returncode != 0, said[-3000:]
    assert "KeyError: 'hermess'" in said, said[-3000:]
    assert "model_info:" in said or "[INFO:swift] model" in said, said[-3000:]  # it got past the model load

    check = _validate(flags, tmp_path, swift_env())
    assert check.returncode == 2, check.stderr
    assert ("error[flags.value] args.loss_scale (-- extra flags): loss_scale 'hermess' in ms-swift 4.6.0: no loss "
            "scale by that name in any ms-swift 4.x; ms-swift finds out after the model has loaded (KeyError: "
            "'hermess'); it takes default, last_round, all or NAME, each optionally BASE+NAME+NAME..., NAME one of "
            "agentflan, alpha_umi, hermes, ignore_empty_think, ignore_think_prefix, qwen, react") \
        in check.stderr.splitlines(), check.stderr
    assert "  hint: did you mean 'hermes'?" in check.stderr.splitlines()

    fine = _validate(_flags(model, data, "--tuner_type", "lora", "--loss_scale", "last_round+ignore_empty_think"),
                     tmp_path, swift_env())
    assert "args.loss_scale" not in fine.stderr, fine.stderr


@pytest.mark.parametrize("value,line", [
    ("last_round_with_ignore_empty_think",
     "error[flags.removed] args.loss_scale (-- extra flags): loss_scale 'last_round_with_ignore_empty_think' in "
     "ms-swift 3.12.6: no loss scale by that name any more: the last release with it is ms-swift 3.11.3; ms-swift "
     "finds out after the model has loaded (KeyError: 'last_round_with_ignore_empty_think'); it takes default, "
     "last_round, all or NAME, each optionally BASE+NAME, NAME one of agentflan, alpha_umi, hermes, "
     "ignore_empty_think, qwen, react"),
    ("hermes+ignore_empty_think",
     "error[flags.value] args.loss_scale (-- extra flags): loss_scale 'hermes+ignore_empty_think' in ms-swift "
     "3.12.6: the part before '+' ('hermes') must be a base strategy (default, last_round, all); ms-swift finds "
     "out after the model has loaded (ALL_BASE_STRATEGY: ['default', 'last_round', 'all'], base_strategy: hermes); "
     "it takes default, last_round, all or NAME, each optionally BASE+NAME, NAME one of agentflan, alpha_umi, "
     "hermes, ignore_empty_think, qwen, react"),
])
def test_a_loss_scale_3_12_does_not_read_stops_it_after_the_load_and_lorakit_before(tmp_path, tiny, value, line):  # noqa: F811
    model, data, _ = tiny
    flags = _flags(model, data, "--train_type", "lora", "--loss_scale", value)
    env3, said = swift3_fails(flags, tmp_path)
    raised = line.split("loaded (")[1].split(");")[0]
    assert raised.split(": ", 1)[-1] in said, said[-3000:]  # KeyError: '...', or the assert's own text

    check = _validate(flags, tmp_path, env3, "--swift-version", "3.12.6")
    assert check.returncode == 2, check.stderr
    assert line in check.stderr.splitlines(), check.stderr
