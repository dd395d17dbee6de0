"""sequence_parallel_size against the model's heads (checks/seqpar.py, ms-swift #5624)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli, swift_source
from lorakit import overrides as layers, presets
from lorakit.checks import run_checks
from lorakit.checks.facts import Facts
from lorakit.checks.seqpar import heads
from lorakit.fixups import apply_fixups
from lorakit.job import build_job

LLAMA31_8B = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
              "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32, "vocab_size": 128256}


def model_dir(root: Path, config: dict) -> Path:
    path = root / "Meta-Llama-3.1-8B"
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return path


def found(tmp_path: Path, overrides: dict, version: str, config: dict = LLAMA31_8B):
    model = model_dir(tmp_path, config)
    sets = {"model": str(model), **overrides}
    resolved = layers.apply_overrides(presets.load("single"), [(f"args.{k}", v, "--set") for k, v in sets.items()])
    job = apply_fixups(build_job(resolved, {}, swift_major=int(version[0]), swift_version=version))
    return [(f.level, f.message, f.hint) for f in run_checks(job, Facts(here=False))
            if f.code == "layout.sequence_parallel.heads"]


OLD = ("sequence_parallel_size 6 does not divide the model's 8 key/value heads: Ulysses splits the heads across the "
       "ranks, and ms-swift before 3.9 stops once the model has loaded ('Number of heads (8) must be divisible by "
       "the sequence parallel size (6)!')")
NEW = ("sequence_parallel_size 6 does not divide the model's 8 key/value heads: ms-swift runs Ulysses on 2 and ring "
       "attention on 3, which needs padding_free, and stops once the model has loaded ('needs ulysses/ring-attention, "
       "which needs --padding_free true')")


def test_before_3_9_a_size_the_heads_do_not_split_is_refused(tmp_path):
    assert found(tmp_path, {"sequence_parallel_size": 6}, "3.8") == [
        ("error", OLD, "sizes that divide 8: 2, 4, 8")]
    # padding_free does not help before ring attention existed
    assert [m for _, m, _ in found(tmp_path, {"sequence_parallel_size": 6, "padding_free": True}, "3.8")] == [OLD]


def test_from_3_9_ring_attention_takes_it_with_padding_free(tmp_path):
    assert found(tmp_path, {"sequence_parallel_size": 6}, "3.12") == [
        ("error", NEW, "set padding_free: true (with a flash attn_impl), or a size that divides 8: 2, 4, 8")]
    assert [m for _, m, _ in found(tmp_path, {"sequence_parallel_size": 6}, "4.6")] == [NEW]
    assert found(tmp_path, {"sequence_parallel_size": 6, "padding_free": True, "attn_impl": "flash_attn"},
                 "4.6") == []


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_sizes_that_divide_pass(tmp_path, size):
    assert found(tmp_path, {"sequence_parallel_size": size}, "3.8") == []


def test_attention_heads_count_without_kv_heads(tmp_path):
    config = {k: v for k, v in LLAMA31_8B.items() if k != "num_key_value_heads"}
    [(_, message, _)] = found(tmp_path, {"sequence_parallel_size": 6}, "3.8", config)
    assert "does not divide the model's 32 attention heads" in message


def test_heads_are_read_where_ms_swift_reads_them():
    # HfConfigFactory: the top level or an LLM sub-config, never the vision tower's
    assert heads({"vision_config": {"num_attention_heads": 16}, "text_config": {"num_attention_heads": 28,
                                                                                  "num_key_value_heads": 4}}) == 4
    assert heads({"vision_config": {"num_attention_heads": 16}}) is None
    assert heads({"num_attention_heads": 40}) == 40
    assert heads({"num_key_value_heads": "eight"}) is None


def test_a_hub_model_is_not_guessed(tmp_path):
    resolved = layers.apply_overrides(presets.load("single"), [("args.sequence_parallel_size", 6, "--set")])
    job = apply_fixups(build_job(resolved, {}, swift_major=3, swift_version="3.8"))
    assert [f for f in run_checks(job, Facts(here=False)) if f.code == "layout.sequence_parallel.heads"] == []


def test_the_cli_says_it(tmp_path):
    model = model_dir(tmp_path, LLAMA31_8B)
    said = run_cli(["validate", "-p", "single", "--swift-version", "3.8", "--model", str(model), "--",
                    "--sequence_parallel_size", "6"])
    assert said.code == 2
    assert ("error[layout.sequence_parallel.heads] args.sequence_parallel_size (-- extra flags): "
            "sequence_parallel_size 6 does not divide the model's 8 key/value heads") in said.stderr


def test_the_refusals_are_ms_swifts_own():
    lines = swift_source("sequence_parallel/sequence_parallel.py")
    assert lines[348].strip() == "self.num_heads = HfConfigFactory.get_config_attr(model.config, 'num_key_value_heads')"
    assert lines[377].strip() == "if self.rp_world_size > 1 and not self.padding_free:"
    assert lines[657].strip() == "self.sp_world_size = math.gcd(self.num_heads, self.world_size)"


# --- max_length unset on a long-context local model (checks/maxlength.py, #3286) ----------------

UNSET = ("max_length is unset, so ms-swift uses the model's limit, 32768 tokens (config.json): no row is cut, and the "
         "longest rows of the data set the memory a step needs")


def _unset(tmp_path, config, **overrides):
    model = model_dir(tmp_path, config)
    sets = {"model": str(model), "max_length": None, **overrides}
    resolved = layers.apply_overrides(presets.load("single"), [(f"args.{k}", v, "--set") for k, v in sets.items()])
    job = apply_fixups(build_job(resolved, {}, swift_major=4))
    return [(f.level, f.message) for f in run_checks(job, Facts(here=False)) if f.code == "train.max_length.unset"]


def test_unset_max_length_on_a_long_context_model_warns(tmp_path):
    # Ovis2: the LLM's limit is in llm_config, where HfConfigFactory also looks
    ovis = {**LLAMA31_8B, "llm_config": {"max_position_embeddings": 32768}}
    assert _unset(tmp_path, ovis) == [("warning", UNSET)]
    # the smallest of the lengths config.json gives, as get_max_model_len takes it
    assert _unset(tmp_path, {**LLAMA31_8B, "max_position_embeddings": 131072, "seq_length": 32768}) == [
        ("warning", UNSET)]


def test_a_set_max_length_or_a_short_model_passes(tmp_path):
    assert _unset(tmp_path, {**LLAMA31_8B, "max_position_embeddings": 131072}, max_length=4096) == []
    assert _unset(tmp_path, {**LLAMA31_8B, "max_position_embeddings": 8192}) == []


@pytest.mark.parametrize("gpus, size, said", [
    ("0,1,2,3,4,5,6,7", "3", "sequence_parallel_size 3 does not divide the 8 ranks: ms-swift's device mesh is 2 "
     "group(s) of 3 = 6 ranks, and rank(s) 6-7 are in none"),
    ("0,1", "4", "sequence_parallel_size 4 with 2 rank(s): ms-swift's device mesh would have 2 // 4 = 0 "
     "data-parallel groups"),
    ("0,1,2,3", "4", None), ("0,1,2,3,4,5,6,7", "2", None), ("0,1", "1", None)])
def test_sequence_parallel_groups_must_tile_the_ranks(gpus, size, said):
    result = run_cli(["validate", "-p", "ddp", "--gpus", gpus, "--", "--sequence_parallel_size", size])
    found = [line for line in result.stderr.splitlines() if "layout.sequence_parallel.world" in line]
    if said is None:
        assert found == []
        return
    assert found == [f"warning[layout.sequence_parallel.world] args.sequence_parallel_size (-- extra flags): {said}"]
    assert result.code == 0, result.stderr


def test_the_mesh_arithmetic_is_ms_swifts():
    source = "\n".join(swift_source("sequence_parallel/sequence_parallel.py"))
    assert "self.dp_world_size = world_size // self.world_size" in source
    assert "mesh_shape = (self.dp_world_size, self.sp_world_size)" in source


def test_no_rank_count_no_mesh_arithmetic():
    """nproc 'auto' with no GPU list, or a layout refused: the rank count is unknown, so no number
    is made up (a hostile review); the layout's own error says why."""
    for extra in (["--set", "launch.gpus=null"], ["--gpus", "0,1", "--set", "launch.nproc_per_node=gpus/3"]):
        result = run_cli(["validate", "-p", "zero2", *extra, "--", "--sequence_parallel_size", "3"])
        assert result.code == 2
        assert "layout.sequence_parallel.world" not in result.stderr, result.stderr
