"""Plan a model from its config.json alone (no weights), MoE included: transformers builds it on
the meta device in ms-swift's Python; fused expert parameters are no Linear for all-linear."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

VENV_BIN = str(Path(sys.executable).parent)
CFG = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 64,
       "intermediate_size": 128, "moe_intermediate_size": 32, "num_experts": 8, "num_experts_per_tok": 2,
       "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
       "vocab_size": 1024, "max_position_embeddings": 512, "tie_word_embeddings": False,
       "torch_dtype": "bfloat16", "decoder_sparse_step": 1, "mlp_only_layers": []}


@pytest.fixture
def moe_dir(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    if not os.path.exists(os.path.join(VENV_BIN, "swift")):
        pytest.skip("ms-swift's `swift` is not installed beside this Python")
    monkeypatch.setenv("PATH", VENV_BIN)
    (tmp_path / "config.json").write_text(json.dumps(CFG))
    config = transformers.AutoConfig.for_model(**{k: v for k, v in CFG.items() if k != "architectures"})
    with torch.device("meta"):
        total = sum(p.numel() for p in transformers.AutoModelForCausalLM.from_config(config).parameters())
    return tmp_path, total


def test_moe_from_config_json_only(cli, moe_dir):
    path, total = moe_dir
    result = cli(["plan", "-p", "single", "--model", str(path), "--set", "max_length=128", "--json"])
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["model_source"] == f"{path}, config.json only"
    assert plan["total_params"] == total
    # attention only: q 64->64, k/v 64->32, o 64->64; the experts are fused 3-D parameters and the
    # router is no Linear class, so ms-swift's find_all_linears (class name contains 'linear') skips both
    assert plan["targeted"] == {"k_proj": 3, "o_proj": 3, "q_proj": 3, "v_proj": 3}
    assert plan["trainable_params"] == 3 * 8 * ((64 + 64) + 2 * (64 + 32) + (64 + 64))
    assert any(n.startswith("6 fused MoE expert parameters (3-D)") for n in plan["notes"])


def test_config_only_is_not_built_by_validate(cli, moe_dir):
    # validate never starts ms-swift's Python: a config.json without weights has no plan there
    path, _ = moe_dir
    result = cli(["validate", "-p", "single", "--model", str(path), "--gpu-mem", "1"])
    assert "plan.does_not_fit" not in result.stderr


def test_moe_without_checkpointing_says_what_is_approximate(cli, moe_dir):
    path, _ = moe_dir
    result = cli(["plan", "-p", "single", "--model", str(path), "--set", "max_length=128",
                  "--set", "gradient_checkpointing=false", "--json"])
    assert ("MoE without gradient checkpointing: the experts' activations are planned as a dense MLP of "
            "intermediate_size, a little low; --simulate runs the real routing") in json.loads(result.stdout)["notes"]
