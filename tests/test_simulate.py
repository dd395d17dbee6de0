"""`lorakit plan --simulate`: the step runs in ms-swift's Python (the one `swift` runs under) as a
subprocess; lorakit itself never imports torch. Errors are exit 1 (the environment), with text."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lorakit import simulate
from lorakit.plan import size_text

VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture(autouse=True)
def no_sim_override(monkeypatch):
    monkeypatch.delenv("LORAKIT_SIM_PYTHON", raising=False)


@pytest.fixture(scope="module")
def local_model(tmp_path_factory):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("peft")
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=8192, max_position_embeddings=512,
                                   tie_word_embeddings=False)
    path = tmp_path_factory.mktemp("sim-qwen2")
    transformers.Qwen2ForCausalLM(cfg).to(torch.bfloat16).save_pretrained(path)
    return path


def test_simulate_without_swift_is_an_environment_problem(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = cli(["plan", "-p", "single", "--simulate"])
    assert result.code == 1
    assert result.stderr == ("lorakit: error: --simulate runs the step in ms-swift's Python, and no `swift` is on "
                             "PATH\n  hint: install ms-swift (pip install ms-swift) or activate its environment\n")


def test_plan_simulate_on_a_local_model(cli, monkeypatch, local_model):
    if not os.path.exists(os.path.join(VENV_BIN, "swift")):
        pytest.skip("ms-swift's `swift` is not installed beside this Python")
    monkeypatch.setenv("PATH", VENV_BIN)  # swift's shebang names the Python the step runs in
    args = ["plan", "-p", "single", "--model", str(local_model), "--set", "max_length=256"]
    plan = json.loads(cli([*args, "--simulate", "--json"]).stdout)
    sim = plan["simulated"]
    assert sim["one_process"] is False and sim["plan_one_process_bytes"] == plan["per_gpu_memory_bytes"]
    assert abs(sim["plan_vs_simulated_percent"]) < 5, sim
    assert sim["at_peak"]["Gradient"] == 0 and sim["at_peak"]["Temp"] == 2 * 4 * 256 * 8192
    assert set(sim["versions"]) == {"torch", "transformers", "peft"}
    text = cli([*args, "--simulate"]).stdout.splitlines()
    want = (f"simulated step (ms-swift's step on fake tensors, MemTracker peak): "
            f"{size_text(sim['peak_bytes'])}; the analytic plan for it: "
            f"{size_text(plan['per_gpu_memory_bytes'])} ({sim['plan_vs_simulated_percent']:+.2f}%)")
    assert want in text
    assert ("the simulation cannot see: the CUDA context (~0.3-0.6 GiB), the caching allocator's fragmentation "
            "and reserved blocks, NCCL buffers, DeepSpeed's buffers and sharding (one process is simulated)") in text


def test_a_step_that_fails_is_said(tmp_path):
    pytest.importorskip("torch")
    spec = {"config": {"model_type": "no_such_arch"}, "rank": 8, "targets": ["all-linear"], "dropout": 0.05,
            "dtype": "bfloat16", "micro_batch": 1, "max_length": 8, "grad_ckpt": True, "use_reentrant": True}
    with pytest.raises(simulate.EnvironmentProblem, match=r"^the simulated step failed: ValueError: .*no_such_arch"):
        simulate.run_spec(spec, sys.executable)


def test_a_python_that_is_not_there(tmp_path):
    with pytest.raises(simulate.EnvironmentProblem, match=r"^the simulated step did not finish \(FileNotFoundError"):
        simulate.run_spec({}, str(tmp_path / "python"))


@pytest.mark.parametrize("world,zero,reentrant", [(1, 0, True), (4, 0, False), (4, 2, True)])
def test_use_reentrant_as_ms_swift_picks_it(world, zero, reentrant):
    # swift/trainers/mixin.py::_fix_gradient_checkpointing
    assert simulate.use_reentrant({"world_size": world, "zero_stage": zero}) is reentrant
