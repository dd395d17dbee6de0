"""`lorakit plan` through the real entry point: PEFT's own trainable count on a tiny local model,
the default preset's Qwen3-8B from the table by hand, layouts, GPU comparison with a fake nvidia-smi."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorakit import plan as planner
from lorakit import planmodel
from lorakit.cli.plan import print_rich

GIB = 1024 ** 3
# Qwen3-8B's published config.json: hidden 4096, intermediate 12288, 36 layers, 32 heads, 8 KV heads,
# head_dim 128, vocab 151936, untied embeddings, max_position_embeddings 40960.
# all-linear, r=8, per layer r x (in + out): q 4096+4096, k 4096+1024, v 4096+1024, o 4096+4096,
# gate 4096+12288, up 4096+12288, down 12288+4096 = 75,776 x 8 = 606,208; x 36 layers:
QWEN3_8B_LORA_R8 = 21_823_488
# per layer: attention 2 x 4096^2 + 2 x 4096 x 1024 = 41,943,040; MLP 3 x 4096 x 12288 = 150,994,944;
# 2 RMSNorms 8,192 + q_norm/k_norm 256 -> 192,946,432 x 36 = 6,946,071,552; embed_tokens and lm_head
# 2 x 151936 x 4096 = 1,244,659,712; final norm 4,096.
QWEN3_8B_TOTAL = 8_190_735_360
LOGITS_NOTE = ("logits are planned for every token: ms-swift's use_logits_to_keep computes them for response "
               "tokens only, so with long prompts the plan is an upper bound")


@pytest.fixture(autouse=True)
def no_gpus(monkeypatch, tmp_path_factory):
    """PATH without nvidia-smi, so a GPU machine running the suite gets the same answers."""
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("empty-bin")))


def fake_smi(tmp_path: Path, body: str) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "nvidia-smi"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(0o755)
    return {"PATH": str(bin_dir)}


def plan_json(cli, *args, env=None) -> dict:
    result = cli(["plan", *args, "--json"], env=env)
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


# --- trainable parameters equal PEFT's own count on a real (tiny) checkpoint -----------------

TINY = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=160, max_position_embeddings=512, tie_word_embeddings=False)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**TINY)).to(torch.float32)
    path = tmp_path_factory.mktemp("tiny-qwen2")
    model.save_pretrained(path)
    return path


def peft_trainable(path, targets, rank) -> tuple[int, int]:
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    total = sum(p.numel() for p in model.parameters())
    peft_model = peft.get_peft_model(model, peft.LoraConfig(r=rank, target_modules=targets))
    return peft_model.get_nb_trainable_parameters()[0], total


@pytest.mark.parametrize("targets,theirs,rank", [
    ("q_proj,v_proj", ["q_proj", "v_proj"], 4),
    ("all-linear", "all-linear", 8),
    ("q_proj,k_proj,v_proj,o_proj", ["q_proj", "k_proj", "v_proj", "o_proj"], 16),
    ("gate_proj,up_proj,down_proj,lm_head", ["gate_proj", "up_proj", "down_proj", "lm_head"], 2),
])
def test_trainable_params_equal_peft(cli, tiny_dir, targets, theirs, rank):
    plan = plan_json(cli, "-p", "single", "--model", str(tiny_dir), "--target-modules", targets,
                     "--lora-rank", str(rank))
    trainable, total = peft_trainable(tiny_dir, theirs, rank)
    assert (plan["trainable_params"], plan["total_params"]) == (trainable, total)
    assert plan["model_source"] == str(tiny_dir) and plan["lora_rank"] == rank


def test_local_dtype_from_config_when_unset(cli, tiny_dir):
    plan = plan_json(cli, "-p", "single", "--model", str(tiny_dir), "--set", "torch_dtype=null")
    assert plan["layout"]["dtype"] == "float32"
    assert "torch_dtype unset: ms-swift uses the model config's float32" in plan["notes"]
    assert plan["breakdown_bytes"]["base_weights"] == plan["total_params"] * 4


# --- the default preset's model, from the table ------------------------------------------------

def test_default_zero2_qwen3_8b_by_hand(cli):
    plan = plan_json(cli, "-p", "zero2")
    p = QWEN3_8B_LORA_R8
    assert (plan["model"], plan["trainable_params"], plan["total_params"]) == ("Qwen/Qwen3-8B", p, QWEN3_8B_TOTAL)
    tokens = 2048  # micro-batch 1 x max_length 2048
    assert plan["breakdown_bytes"] == {
        "base_weights": QWEN3_8B_TOTAL * 2,  # bf16, replicated under ZeRO-2
        "lora_weights": p * 2,  # DeepSpeed casts the module (LoRA included) to bf16
        "lora_grads": 0,  # none live at the peak: the loss's backward comes before any layer's
        "optimizer_states": p * 12 // 8,  # fp32 master + AdamW m, v, partitioned
        # DeepSpeed ZeRO-2's reduce bucket: ms-swift's zero2.json reduce_bucket_size 2e8 bf16 elements
        "zero_buffers": 200_000_000 * 2,
        # checkpointed inputs 36 x tokens x 4096 x 2, and the final norm's fp32 input (+ 1 byte), 5 x h
        "activations": 36 * tokens * 4096 * 2 + 5 * tokens * 4096,
        # the log-softmax backward: saved fp32 output, incoming and new fp32 gradients
        "logits": tokens * 151_936 * 12,
    }
    # 19.60 GiB before issue #15: logits were 10 bytes/token/vocab (now 12), the ZeRO-2 bucket was
    # missing (+0.37), and one recomputed layer and LoRA grads were counted that are not live at the peak
    assert plan["per_gpu_memory_bytes"] == sum(plan["breakdown_bytes"].values()) == 21_237_754_880
    assert plan["per_gpu_memory_gib"] == 19.78
    assert (plan["global_batch"], plan["tokens_per_step"]) == (16, 16 * 2048)
    assert plan["layout"] == {"dtype": "bfloat16", "micro_batch": 1, "max_length": 2048, "grad_ckpt": True,
                              "world_size": 8, "gpus_per_rank": 1, "zero_stage": 2, "offload_optimizer": False,
                              "offload_param": False, "lora_dropout": 0.05}
    assert plan["fits"] is None and plan["gpu_note"] == "GPU memory not compared: no nvidia-smi on PATH"
    assert (plan["gpus"], plan["smallest_gpu"], plan["remedies"], plan["findings"]) == (None, None, [], [])


def test_zero3_zero2_and_device_map_breakdowns_differ_as_documented(cli):
    z2 = plan_json(cli, "-p", "zero2")["breakdown_bytes"]
    z3 = plan_json(cli, "-p", "zero3")["breakdown_bytes"]
    dm = plan_json(cli, "-p", "ddp_device_map")
    p = QWEN3_8B_LORA_R8
    # ZeRO-3 partitions the weights too (base and LoRA); grads and optimizer as ZeRO-2.
    assert z3["base_weights"] == z2["base_weights"] // 8 and z3["lora_weights"] == p * 2 // 8
    assert (z3["lora_grads"], z3["optimizer_states"]) == (0, z2["optimizer_states"])
    # ZeRO-2's reduce bucket (2e8 bf16); ZeRO-3's gathered weights (stage3_max_live_parameters 1e9 bf16)
    # plus its "auto" reduce bucket, hidden_size**2 bf16 elements
    assert (z2["zero_buffers"], z3["zero_buffers"]) == (400_000_000, 10**9 * 2 + 4096 ** 2 * 2)
    # 4 DDP ranks x 2 GPUs: device_map halves the model; plain PEFT keeps LoRA fp32, nothing partitioned.
    assert (dm["layout"]["world_size"], dm["layout"]["gpus_per_rank"], dm["layout"]["zero_stage"]) == (4, 2, 0)
    b = dm["breakdown_bytes"]
    assert b["base_weights"] == z2["base_weights"] // 2
    assert (b["lora_weights"], b["lora_grads"], b["optimizer_states"]) == (p * 4 // 2, 0, p * 8 // 2)
    assert b["zero_buffers"] == p * 4  # torch's DDP Reducer: one fp32 bucket slot per trainable param
    assert b["logits"] == z2["logits"]  # the head sits whole on the last GPU
    assert dm["global_batch"] == 16 and dm["gradient_accumulation_steps"] == 4


def test_offload_moves_optimizer_and_params_to_cpu(cli):
    z2o = plan_json(cli, "-p", "zero2", "--set", "deepspeed=zero2_offload")
    assert z2o["breakdown_bytes"]["optimizer_states"] == 0 and z2o["cpu_offload_gib"] > 0
    z3o = plan_json(cli, "-p", "zero3", "--set", "deepspeed=zero3_offload")
    b = z3o["breakdown_bytes"]
    assert (b["base_weights"], b["lora_weights"], b["optimizer_states"]) == (0, 0, 0)
    assert z3o["notes"] == [
        "ZeRO-3 keeps gathered weights live up to stage3_max_live_parameters: 1.86 GiB counted in zero_buffers",
        LOGITS_NOTE,
        "offload: optimizer states and parameters planned on CPU; DeepSpeed's GPU-side buffers are not modelled"]


def test_max_length_unset_uses_the_model_maximum_and_says_so(cli):
    plan = plan_json(cli, "-p", "single", "--set", "max_length=null")
    assert plan["layout"]["max_length"] == 40960 and plan["tokens_per_step"] == 16 * 40960
    assert plan["notes"] == ["max_length unset: ms-swift's default is the model's maximum length, 40960 "
                             "(max_position_embeddings); set max_length to plan your real samples", LOGITS_NOTE]


def test_text_output(cli):
    result = cli(["plan", "-p", "zero2"])
    assert result.code == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [
        "plan: Qwen/Qwen3-8B (lorakit's table of published configs), preset zero2",
        "trainable LoRA params: 21,823,488 of 8,190,735,360 (0.2664%)",
        "  r=8, target_modules all-linear -> down_proj x36, gate_proj x36, k_proj x36, o_proj x36, "
        "q_proj x36, up_proj x36, v_proj x36",
        "layout: 8 ranks x 1 GPU, DeepSpeed ZeRO-2, bfloat16, micro-batch 1, max_length 2048, "
        "gradient checkpointing on",
        "global batch 16 = per-device 1 x grad-accum 2 x 8 ranks; up to 32,768 tokens per optimizer step",
        "per-GPU memory (GiB):",
        "  base weights         15.26",
        "  LoRA weights          0.04",
        "  LoRA grads            0.00",
        "  optimizer states      0.03",
        "  DeepSpeed/DDP bufs    0.37",
        "  activations           0.60",
        "  logits                3.48",
        "  total                19.78",
        "note: DeepSpeed's reduce bucket (reduce_bucket_size elements, contiguous_gradients) is allocated "
        "every backward: counted in zero_buffers",
        "note: " + LOGITS_NOTE,
        "GPU memory not compared: no nvidia-smi on PATH",
    ]


# --- user mistakes: exit 2, exact text -------------------------------------------------------

KNOWN = ("Qwen/Qwen2.5-0.5B[-Instruct], Qwen/Qwen2.5-1.5B[-Instruct], Qwen/Qwen2.5-3B[-Instruct], "
         "Qwen/Qwen2.5-7B[-Instruct], Qwen/Qwen2.5-14B[-Instruct], Qwen/Qwen2.5-32B[-Instruct], "
         "Qwen/Qwen2.5-72B[-Instruct], Qwen/Qwen3-0.6B[-Base], Qwen/Qwen3-1.7B[-Base], Qwen/Qwen3-4B[-Base], "
         "Qwen/Qwen3-8B[-Base], Qwen/Qwen3-14B[-Base], Qwen/Qwen3-32B, meta-llama/Meta-Llama-3-8B[-Instruct], "
         "meta-llama/Meta-Llama-3-70B[-Instruct], meta-llama/Llama-3.1-8B[-Instruct], "
         "meta-llama/Llama-3.1-70B[-Instruct], meta-llama/Llama-3.2-1B[-Instruct], "
         "meta-llama/Llama-3.2-3B[-Instruct], meta-llama/Llama-3.3-70B-Instruct")
QWEN3_LINEARS = "down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj"
PATH_HINT = ("  hint: give the directory of a downloaded model (config.json and *.safetensors), or a hub id such "
             "as Qwen/Qwen3-8B\n")


@pytest.mark.parametrize("args,message", [
    (["--model", "Qwen/Qwen3-8B-Instruct"],
     "lorakit: error: model 'Qwen/Qwen3-8B-Instruct' (--model): no local copy and not in lorakit's table of "
     "published configs, so its shapes are unknown\n"
     f"  hint: did you mean 'Qwen/Qwen3-8B'? the table knows {KNOWN}; for any other model, download it and "
     "pass its directory\n"),
    (["--model", "acme/secret-model"],
     "lorakit: error: model 'acme/secret-model' (--model): no local copy and not in lorakit's table of "
     "published configs, so its shapes are unknown\n"
     f"  hint: the table knows {KNOWN}; for any other model, download it and pass its directory\n"),
    (["--target-modules", "q_proj,qproj"],
     "lorakit: error: target_modules (--target-modules): 'qproj' matches no module of Qwen/Qwen3-8B\n"
     f"  hint: did you mean 'q_proj'? its Linear layers: {QWEN3_LINEARS}; or all-linear\n"),
    (["--set", "target_modules=[foo, bar]"],
     "lorakit: error: target_modules (--set): 'foo', 'bar' match no module of Qwen/Qwen3-8B\n"
     f"  hint: its Linear layers: {QWEN3_LINEARS}; or all-linear\n"),
    (["--set", "max_length=0"],
     "lorakit: error: max_length 0 (--set) is not a positive integer\n"),
    (["--set", "tuner_type=full"],
     "lorakit: error: tuner_type 'full': lorakit plan models LoRA runs only\n"
     "  hint: plan with tuner_type lora, or estimate other tuners by hand\n"),
    # a path that is not there is not an unknown hub id: no table dump
    (["--model", "/tmp/lorakit-nonexist"],
     "lorakit: error: model '/tmp/lorakit-nonexist' (--model): /tmp/lorakit-nonexist does not exist\n" + PATH_HINT),
    (["--model", "./models/Qwen3-8Bx"],
     "lorakit: error: model './models/Qwen3-8Bx' (--model): ./models/Qwen3-8Bx does not exist\n" + PATH_HINT),
    (["--model", "~/lorakit-nonexist"],
     "lorakit: error: model '~/lorakit-nonexist' (--model): {HOME}/lorakit-nonexist does not exist\n" + PATH_HINT),
    (["--model", "data/models/mine"],
     "lorakit: error: model 'data/models/mine' (--model): data/models/mine does not exist\n" + PATH_HINT),
    (["--model", os.devnull],
     f"lorakit: error: model '{os.devnull}' (--model): {os.devnull} is not a directory\n" + PATH_HINT),
    # an inline ZeRO stage DeepSpeed would refuse is not "no ZeRO"
    # the layout check reports a bad stage before the plan reads it
    (["--set", 'deepspeed={"zero_optimization": {"stage": "x"}}'],
     "error[layout.deepspeed.stage] args.deepspeed (--set): deepspeed zero_optimization.stage 'x' is not a ZeRO "
     "stage (0, 1, 2 or 3)\n"
     '  hint: e.g. {"zero_optimization": {"stage": 2}}, or use the preset zero2\n'
     "lorakit: error: no plan: 1 error(s) above\n"),
    (["--set", 'deepspeed={"zero_optimization": {"stage": 4}}'],
     "error[layout.deepspeed.stage] args.deepspeed (--set): deepspeed zero_optimization.stage 4 is not a ZeRO "
     "stage (0, 1, 2 or 3)\n"
     '  hint: e.g. {"zero_optimization": {"stage": 2}}, or use the preset zero2\n'
     "lorakit: error: no plan: 1 error(s) above\n"),
    (["--set", 'deepspeed={"zero_optimization": 2}'],
     "error[layout.deepspeed.stage] args.deepspeed (--set): deepspeed zero_optimization must be a JSON object\n"
     '  hint: e.g. {"zero_optimization": {"stage": 2}}, or use the preset zero2\n'
     "lorakit: error: no plan: 1 error(s) above\n"),
    (["--set", 'deepspeed={"zero_optimization": {"stage": 3, "offload_param": "cpu"}}'],
     "lorakit: error: deepspeed (--set): zero_optimization.offload_param must be an object, got 'cpu'\n"
     '  hint: e.g. "offload_param": {"device": "cpu"}\n'),
])
def test_user_errors_exit_2_with_exact_text(cli, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli(["plan", "-p", "zero2", *args])
    assert (result.code, result.stdout, result.stderr) == (2, "", message.replace("{HOME}", os.environ["HOME"]))


@pytest.mark.parametrize("model, path_like", [
    ("/abs/x", True), ("./x", True), ("../x", True), ("~/x", True), ("a/b/c", True), ("data/x", True),
    ("Qwen/Qwen3-8B", False), ("acme/secret-model", False), ("gpt2", False),
])
def test_what_looks_like_a_path(tmp_path, monkeypatch, model, path_like):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert planmodel.looks_like_path(model) is path_like


def test_a_deepspeed_file_with_a_bad_stage_is_named(cli, tmp_path):
    cfg = tmp_path / "ds.json"
    cfg.write_text('{"zero_optimization": {"stage": "two"}}')
    result = cli(["plan", "-p", "zero2", "--set", f"deepspeed={cfg}"])
    assert (result.code, result.stderr) == (
        2, f"lorakit: error: deepspeed {cfg}: zero_optimization.stage 'two' is not a ZeRO stage (0, 1, 2 or 3)\n"
           '  hint: e.g. "zero_optimization": {"stage": 2}\n')
    cfg.write_text('{"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"}}}')
    assert plan_json(cli, "-p", "zero2", "--set", f"deepspeed={cfg}")["layout"]["zero_stage"] == 3
    cfg.write_text('{"train_batch_size": "auto"}')  # no zero_optimization: DeepSpeed's stage 0
    assert plan_json(cli, "-p", "zero2", "--set", f"deepspeed={cfg}")["layout"]["zero_stage"] == 0


def test_a_global_batch_size_that_cannot_be_derived_stops_the_plan(cli):
    result = cli(["plan", "-p", "zero2", "--set", "global_batch_size=0"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == "lorakit: error: no plan: 1 error(s) above"
    assert result.stderr.startswith("error[batch.global_batch_size.invalid] args.global_batch_size (--set): ")


# --- table entries added after review: published totals, and the configs' own context lengths -------

@pytest.mark.parametrize("model, published, total, max_positions", [
    ("meta-llama/Meta-Llama-3-8B", 8.03e9, 8_030_261_248, 8192),
    ("meta-llama/Meta-Llama-3-8B-Instruct", 8.03e9, 8_030_261_248, 8192),
    ("meta-llama/Meta-Llama-3-70B", 70.6e9, 70_553_706_496, 8192),
    ("meta-llama/Meta-Llama-3-70B-Instruct", 70.6e9, 70_553_706_496, 8192),
    ("meta-llama/Llama-3.3-70B-Instruct", 70.6e9, 70_553_706_496, 131072),
    ("Qwen/Qwen3-0.6B-Base", 0.6e9, 596_049_920, 32768),
    ("Qwen/Qwen3-1.7B-Base", 1.7e9, 1_720_574_976, 32768),
    ("Qwen/Qwen3-4B-Base", 4.0e9, 4_022_468_096, 32768),
    ("Qwen/Qwen3-8B-Base", 8.2e9, QWEN3_8B_TOTAL, 32768),
    ("Qwen/Qwen3-14B-Base", 14.8e9, 14_768_307_200, 32768),
])
def test_added_table_models_plan_with_published_totals(cli, model, published, total, max_positions):
    plan = plan_json(cli, "-p", "zero2", "--model", model, "--set", "max_length=null")
    assert plan["model_source"] == "lorakit's table of published configs"
    assert plan["total_params"] == total
    assert abs(total - published) <= max(0.01 * published, 0.05e9)  # the model cards' rounded figures
    assert plan["layout"]["max_length"] == max_positions
    # a -Base or -Instruct twin has the same shapes as its sibling
    for sibling in (model.removesuffix("-Base"), model.removesuffix("-Instruct")):
        if sibling != model and sibling != "meta-llama/Llama-3.3-70B":
            assert plan_json(cli, "-p", "zero2", "--model", sibling)["total_params"] == total


@pytest.mark.parametrize("model", ["meta-llama/Llama-3.3-70B", "Qwen/Qwen3-32B-Base"])
def test_models_never_published_stay_unknown(cli, model):
    result = cli(["plan", "-p", "zero2", "--model", model])
    assert result.code == 2 and "not in lorakit's table of published configs" in result.stderr


def test_layout_errors_stop_the_plan(cli):
    result = cli(["plan", "-p", "zero2", "--nproc", "3"])
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == "lorakit: error: no plan: 1 error(s) above"


# --- GPUs from nvidia-smi ---------------------------------------------------------------------

SMALL_GPUS = 'i=0; while [ $i -lt 8 ]; do echo "$i, 16384"; i=$((i+1)); done'


def test_does_not_fit_warns_with_remedies_in_order(cli, tmp_path):
    result = cli(["plan", "-p", "zero2"], env=fake_smi(tmp_path, SMALL_GPUS))
    assert result.code == 0
    assert result.stdout.splitlines()[-7:] == [
        "8 of the job's GPUs visible (nvidia-smi); smallest: GPU 0, 16.00 GiB",
        "does not fit: 19.78 GiB + 1.5 GiB reserve > GPU 0's 16.00 GiB",
        "remedies, in order (each alone, per-GPU GiB after it):",
        "  1. fewer target_modules: attention only: --target-modules q_proj,k_proj,v_proj,o_proj -> 19.73 GiB "
        "(does not fit)",
        "  2. lower lora_rank: --lora-rank 4 -> 19.74 GiB (does not fit)",
        # ZeRO-3's gathered weights (1.86 GiB) counted now: 6.21 before issue #15
        "  3. DeepSpeed ZeRO-3 (partitions the base weights too): --set deepspeed=zero3 -> 7.92 GiB (fits)",
        "  4. shorter max_length (if your samples fit): --set max_length=1024 -> 17.74 GiB (does not fit)",
    ]
    assert result.stderr == (
        "warning[plan.does_not_fit] the plan needs 19.78 GiB per GPU (+1.5 GiB reserve), GPU 0 has 16.00 GiB\n"
        "  hint: try, in order: fewer target_modules: attention only; lower lora_rank; DeepSpeed ZeRO-3 "
        "(partitions the base weights too); shorter max_length (if your samples fit)\n")
    assert cli(["plan", "-p", "zero2", "--strict"], env=fake_smi(tmp_path, SMALL_GPUS)).code == 2


def test_seed_order_on_plain_ddp_with_a_big_batch(cli, tmp_path):
    plan = plan_json(cli, "-p", "ddp", "--set", "per_device_train_batch_size=4", "--set", "global_batch_size=64",
                     "--set", "gradient_checkpointing=false", env=fake_smi(tmp_path, SMALL_GPUS))
    assert plan["fits"] is False
    assert [r["how"] for r in plan["remedies"]] == [
        "--target-modules q_proj,k_proj,v_proj,o_proj", "--lora-rank 4",
        "--set per_device_train_batch_size=1 --set gradient_accumulation_steps=8",
        # no ZeRO-2: for LoRA it saves a few MiB of optimizer states and adds a 0.37 GiB reduce bucket
        "--set gradient_checkpointing=true", "--set max_length=1024"]
    assert [f["code"] for f in plan["findings"]] == ["plan.does_not_fit"]


def test_fits_on_big_gpus_and_only_the_jobs_gpus_count(cli, tmp_path):
    smi = fake_smi(tmp_path, 'echo "0, 81559"; echo "1, 81559"; echo "2, 8192"')
    plan = plan_json(cli, "-p", "single", env=smi)
    assert plan["fits"] is True and plan["remedies"] == [] and plan["findings"] == []
    assert plan["gpus"] == [{"index": "0", "memory_gib": 79.65}]
    # One process over two GPUs: ms-swift's device_map splits the model; GPU 2 is the smallest.
    lines = cli(["plan", "-p", "single", "--gpus", "0,2"], env=smi).stdout.splitlines()
    assert lines[3].startswith("layout: 1 rank x 2 GPUs (device_map), bfloat16,")
    assert "does not fit: 11.55 GiB + 1.5 GiB reserve > GPU 2's 8.00 GiB" in lines


@pytest.mark.parametrize("body,note", [
    ("echo 'NVIDIA-SMI has failed' >&2; exit 9", "GPU memory not compared: nvidia-smi failed (exit 9)"),
    ("exit 0", "GPU memory not compared: nvidia-smi lists no GPUs"),
    ('echo "5, 81559"', "GPU memory not compared: none of the job's GPUs (0) is visible here"),
])
def test_gpus_not_compared_is_said_not_fatal(cli, tmp_path, body, note):
    plan = plan_json(cli, "-p", "single", env=fake_smi(tmp_path, body))
    assert (plan["fits"], plan["gpu_note"]) == (None, note)


def test_query_gpus_is_injectable():
    class Done:
        returncode, stdout = 0, "0, 81559\n1, 40960\n\n"

    calls = []
    gpus, how = planner.query_gpus(run=lambda argv, **kw: calls.append(argv) or Done(),
                                   which=lambda name: "/usr/bin/" + name)
    assert gpus == [("0", 81559), ("1", 40960)] and how == "nvidia-smi"
    assert calls == [["/usr/bin/nvidia-smi", "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"]]
    assert planner.query_gpus(which=lambda name: None) == (None, "no nvidia-smi on PATH")


def test_rich_output_keeps_brackets(cli, capsys):
    plan = plan_json(cli, "-p", "zero2")
    plan["notes"] = ["target [q_proj] stays"]
    print_rich(plan)
    out = capsys.readouterr().out
    assert "target [q_proj] stays" in out and "19.78" in out


def test_plan_imports_no_torch(tmp_path):
    code = ("import sys; from lorakit.cli.app import main\n"
            "try: main(['plan', '-p', 'zero2', '--json'])\n"
            "except SystemExit: pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'swift', 'peft', 'numpy') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    env = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
