"""The analytic plan against the simulated step (lorakit/simstep.py: ms-swift's LoRA step on fake
tensors, MemTracker's peak) on real published configs cut to two layers, all simulated in one
process (one torch import). The full grid of whole models is scripts/calibrate_plan.py (README)."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from lorakit import archtable, planmath, simulate  # noqa: E402

ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
SETTINGS = [  # model, targets, gradient checkpointing, lora_dropout, batch, rank
    ("Qwen/Qwen2.5-0.5B", ["all-linear"], True, 0.05, 1, 8),
    ("Qwen/Qwen3-0.6B", ["all-linear"], False, 0.05, 1, 16),  # q/k-norm fp32 copies, bool dropout masks
    ("meta-llama/Llama-3.2-1B", ATTN, False, 0.0, 2, 8),  # no dropout: only the bf16 input copies
    ("Qwen/Qwen3-0.6B", ATTN, True, 0.05, 2, 64),
]
LENGTH = 256


def two_layers(model: str):
    entry = dict(archtable.arch_entry(model), num_hidden_layers=2)
    return entry, archtable.entry_to_info(entry)


def spec(model, targets, ckpt, dropout, batch, rank) -> dict:
    entry, info = two_layers(model)
    lay = {"rank": rank, "targets": targets, "lora_dropout": dropout, "dtype": "bfloat16", "micro_batch": batch,
           "max_length": LENGTH, "grad_ckpt": ckpt, "world_size": 1, "zero_stage": 0}
    out = simulate.spec_of(model, info, lay, None)
    out["config"]["num_hidden_layers"] = 2
    return out


@pytest.fixture(scope="module")
def simulated() -> list:
    return simulate.run_spec([spec(*s) for s in SETTINGS], sys.executable)


@pytest.mark.parametrize("index", range(len(SETTINGS)), ids=[f"{s[0]}-{'ckpt' if s[2] else 'nockpt'}-r{s[5]}"
                                                            for s in SETTINGS])
def test_plan_within_5_percent_of_the_simulated_step(simulated, index):
    model, targets, ckpt, dropout, batch, rank = SETTINGS[index]
    entry, info = two_layers(model)
    sim = simulated[index]
    plan = planmath.memory_plan(info, rank=rank, targets=targets, micro_batch=batch, max_length=LENGTH,
                                grad_ckpt=ckpt, lora_dropout=dropout)
    assert sim["trainable_params"] == plan["lora_params"]  # PEFT's own count, on the simulated model
    assert sim["total_params"] == info.total_params
    assert abs(plan["total"] / sim["peak_bytes"] - 1) < 0.05, (plan, sim)
    # the peak is the loss's backward: no gradient yet, the log-softmax's 3 fp32 tensors live
    assert sim["at_peak"]["Gradient"] == 0
    assert sim["at_peak"]["Temp"] == 2 * 4 * batch * LENGTH * entry["vocab_size"]
