"""Table-driven value tests: every rule's exact level, code and message for a given job."""

from __future__ import annotations

import pytest

from lorakit import presets
from lorakit.checks import layout, lora, model, training
from lorakit.checks.facts import Facts
from lorakit.fixups import apply_fixups
from lorakit.job import build_job


def make_job(args=None, launch=None, command="sft", env=None, **kw):
    data = {"command": command, "launch": launch or {}, "args": args or {}}
    resolved = presets.Resolved(name="t", path=None, data=data,
                                sources={f"{section}.{k}": "t.yaml" for section in ("args", "launch")
                                         for k in data[section]})
    return apply_fixups(build_job(resolved, env or {}, swift_major=4, **kw))


NOTHING = Facts(has_module=lambda name: False, is_file=lambda p: False, find_model=lambda m: None)


def run(checks, job, facts=NOTHING):
    return [(f.level, f.code, f.message, f.hint) for c in checks for f in c(job, facts)]


LORA_CASES = [
    ({"lora_rank": 0}, [("error", "lora.rank.invalid", "lora_rank must be a positive integer, got 0",
                         "4 to 64 is usual; 8 is common")]),
    ({"lora_rank": "eight"}, [("error", "lora.rank.invalid", "lora_rank must be a positive integer, got 'eight'",
                               "4 to 64 is usual; 8 is common")]),
    ({"lora_rank": 128, "lora_alpha": 512}, [
        ("warning", "lora.rank.range", "lora_rank 128 is outside the recommended 4-64",
         "higher ranks cost memory and parameters; lower ones may underfit")]),
    ({"lora_rank": 8, "lora_alpha": -1}, [("error", "lora.alpha.invalid", "lora_alpha must be a positive number, got -1",
                                           "32 is common; choose it so that alpha/rank is about 4 to 8")]),
    ({"lora_rank": 8, "lora_alpha": 16}, []),  # alpha/rank 2 (r16/alpha32 too) is a usual recipe
    ({"lora_rank": 16, "lora_alpha": 16}, [("info", "lora.ratio", "alpha/rank = 16/16 = 1, outside the usual 2-8",
                                            "for lora_rank 16, lora_alpha between 32 and 128 is usual")]),
    ({"lora_rank": 64, "lora_alpha": 16}, [("warning", "lora.ratio", "alpha/rank = 16/64 = 0.25, far outside 1-16: "
                                            "the LoRA update is scaled down that much",
                                            "for lora_rank 64, lora_alpha between 128 and 512 is usual")]),
    ({"lora_rank": 4, "lora_alpha": 128}, [("warning", "lora.ratio", "alpha/rank = 128/4 = 32, far outside 1-16: "
                                            "the LoRA update is scaled up that much",
                                            "for lora_rank 4, lora_alpha between 8 and 32 is usual")]),
    ({"lora_rank": 16, "lora_alpha": 32, "use_rslora": True}, []),  # 32/sqrt(16) = 8: inside the band
    ({"lora_rank": 64, "lora_alpha": 8, "use_rslora": "true"}, [
        ("info", "lora.ratio", "alpha/sqrt(rank) = 8/8 = 1, outside the usual 2-8 (use_rslora scales by "
         "alpha/sqrt(rank), so the ratio is read on that scale)",
         "for lora_rank 64, lora_alpha between 16 and 64 is usual")]),
    ({"lora_dropout": 1.0}, [("error", "lora.dropout.invalid", "lora_dropout must be in [0, 1), got 1.0",
                              "0.05 is ms-swift's default")]),
    ({"tuner_type": "full", "lora_rank": 0}, []),  # LoRA rules do not apply to full fine-tuning
]


@pytest.mark.parametrize("args, expected", LORA_CASES)
def test_lora_rules(args, expected):
    checks = [lora.check_rank, lora.check_alpha, lora.check_ratio, lora.check_dropout]
    assert run(checks, make_job({"target_modules": ["q_proj"], **args})) == expected


LAYOUT_CASES = [
    ({"gpus": "0,1,1"}, {}, [("error", "layout.gpus.duplicate", "GPU list '0,1,1' names GPU 1 more than once",
                              "each GPU may appear once")]),
    ({"gpus": "0,,2"}, {}, [("error", "layout.gpus.invalid", "GPU list '0,,2' has entries that are not GPU ids: ''",
                             "write indices separated by commas, e.g. gpus: \"0,1,2,3\"")]),
    ({"gpus": "0,1,2", "nproc_per_node": 2}, {}, [
        ("error", "layout.nproc.indivisible", "3 visible GPUs (t.yaml) do not divide evenly among NPROC_PER_NODE=2 ranks",
         "choose nproc_per_node dividing the GPU count: 1, 3")]),
    ({"gpus": "0,1,2", "nproc_per_node": "gpus/2"}, {}, [
        ("error", "layout.nproc.indivisible", "nproc_per_node 'gpus/2': 3 GPUs (t.yaml) cannot be split 2 per rank",
         "use a GPU count divisible by the GPUs per rank, or give --nproc")]),
    ({"nproc_per_node": "auto"}, {}, [
        ("error", "layout.nproc.needs_gpus", "nproc_per_node 'auto' counts GPUs, but no GPU list is set",
         "set launch.gpus (or --gpus 0,1,...), or give an integer nproc_per_node")]),
    ({"gpus": "0,1", "nproc_per_node": "many"}, {}, [
        ("error", "layout.nproc.invalid", "nproc_per_node 'many' is not a number of processes",
         "use an integer, 'auto' (one rank per GPU) or 'gpus/K' (K GPUs per rank)")]),
    ({"gpus": "0,1,2,3", "nproc_per_node": 2}, {"deepspeed": "zero2"}, [
        ("error", "layout.device_map.deepspeed", "4 GPUs for NPROC_PER_NODE=2 puts 2 GPUs on each rank (device_map), "
         "and DeepSpeed is not compatible with device_map",
         "set nproc_per_node to the GPU count (one GPU per rank), or drop deepspeed")]),
    ({"gpus": "0,1", "nproc_per_node": 2}, {"deepspeed": "zero4"}, [
        ("error", "layout.deepspeed.invalid", "deepspeed 'zero4' is not a ZeRO preset, a JSON file or an inline JSON object",
         "use one of zero0, zero1, zero2, zero3, zero2_offload, zero3_offload, a path to a .json file, or a JSON object")]),
    ({"gpus": "0,1", "nproc_per_node": 2}, {"deepspeed": "ds.json"}, [
        ("error", "layout.deepspeed.invalid", "deepspeed config file 'ds.json' does not exist",
         "use one of zero0, zero1, zero2, zero3, zero2_offload, zero3_offload, a path to a .json file, or a JSON object")]),
    ({"gpus": "0,1", "nproc_per_node": 2}, {"deepspeed": '{"zero_optimization": {"stage": 2}}'}, []),
    ({"gpus": "0,1", "nproc_per_node": 2}, {"deepspeed": {"zero_optimization": {"stage": "x"}}}, [
        ("error", "layout.deepspeed.stage", "deepspeed zero_optimization.stage 'x' is not a ZeRO stage (0, 1, 2 or 3)",
         'e.g. {"zero_optimization": {"stage": 2}}, or use the preset zero2')]),
    ({"gpus": "GPU-8f3a-11,GPU-8f3a-12", "nproc_per_node": "auto"}, {}, []),
    ({"gpus": "0,1"}, {"deepspeed": "zero2"}, [  # one process over two GPUs is device_map too
        ("error", "layout.device_map.deepspeed", "2 GPUs for NPROC_PER_NODE=1 puts 2 GPUs on each rank "
         "(device_map), and DeepSpeed is not compatible with device_map",
         "set nproc_per_node to the GPU count (one GPU per rank), or drop deepspeed")]),
    ({"gpus": "0,1,2,3", "nproc_per_node": 4}, {"deepspeed": "zero2", "use_ray": True}, []),  # ms-swift skips it
    ({"gpus": "0,1,2,3"}, {}, [("warning", "layout.device_map.implicit", "4 GPUs (t.yaml) and no NPROC_PER_NODE: ONE "
                                "process, with the model split across all 4 GPUs (device_map); they take turns, so it "
                                "runs about as fast as one GPU",
                                "for data parallel, set nproc_per_node: auto (4 ranks, one per GPU); for one GPU, set "
                                "gpus: \"0\"; to split a model too big for one GPU on purpose, this is right")]),
    ({"gpus": "0,1,2,3,4,5,6,7", "nproc_per_node": 4}, {}, [
        ("warning", "layout.device_map.implicit", "NPROC_PER_NODE=4 on 8 GPUs gives each rank 2 GPUs: ms-swift splits "
         "each model copy across them (device_map + DDP), not 8 data-parallel ranks",
         "for one rank per GPU, nproc_per_node: auto; to mean this, write nproc_per_node: gpus/2")]),
    ({"gpus": "0,1,2,3,4,5,6,7", "nproc_per_node": "gpus/2"}, {}, []),  # said on purpose
    ({"gpus": "0,1", "nproc_per_node": 2}, {"device_map": "auto"}, [
        ("error", "layout.device_map.explicit", "device_map 'auto' with 2 ranks of one GPU each: under torchrun "
         "ms-swift places each rank's model itself; a device_map makes the ranks share GPUs, and accelerate "
         "refuses to train a model spread that way in a distributed run",
         "drop device_map for data parallel; to split a model, use fewer ranks (nproc_per_node: gpus/2)")]),
    ({"gpus": "0,1", "nproc_per_node": 2}, {"device_map": '{"": 0}'}, [
        ("warning", "layout.device_map.explicit", "device_map '{\"\": 0}' with 2 ranks of one GPU each: under "
         "torchrun ms-swift places each rank's model itself; a device_map makes the ranks share GPUs",
         "drop device_map for data parallel; to split a model, use fewer ranks (nproc_per_node: gpus/2)")]),
]


@pytest.mark.parametrize("launch, args, expected", LAYOUT_CASES)
def test_layout_rules(launch, args, expected):
    job = make_job(args, launch, env={})
    assert run(layout.CHECKS, job) == expected


def test_ddp_gets_no_reentrant_added_with_an_info():
    job = make_job({}, {"gpus": "0,1", "nproc_per_node": 2})
    assert job.args["gradient_checkpointing_kwargs"] == {"use_reentrant": False}
    [note] = job.adjustments
    assert (note.level, note.code, note.message) == (
        "info", "layout.ddp.use_reentrant_added",
        'DDP with 2 ranks and gradient checkpointing: added gradient_checkpointing_kwargs {"use_reentrant": false}')


@pytest.mark.parametrize("args, launch, added", [
    ({"deepspeed": "zero2"}, {"gpus": "0,1", "nproc_per_node": 2}, False),  # DeepSpeed keeps its default
    ({"gradient_checkpointing": False}, {"gpus": "0,1", "nproc_per_node": 2}, False),
    ({}, {"gpus": "0"}, False),  # one process: no DDP
    ({"gradient_checkpointing_kwargs": '{"foo": 1}'}, {"gpus": "0,1", "nproc_per_node": 2}, True),
])
def test_no_reentrant_only_for_plain_ddp(args, launch, added):
    job = make_job(args, launch)
    kwargs = job.args.get("gradient_checkpointing_kwargs")
    assert (isinstance(kwargs, dict) and kwargs.get("use_reentrant") is False) == added


@pytest.mark.parametrize("args, launch, expected", [
    ({"gradient_checkpointing_kwargs": {"use_reentrant": True}}, {"gpus": "0,1", "nproc_per_node": 2},
     [("error", "layout.ddp.reentrant", "DDP with 2 ranks and use_reentrant true: LoRA backward fails under DDP",
       "set gradient_checkpointing_kwargs: {\"use_reentrant\": false}: DDP cannot mark a parameter ready twice, "
       "which reentrant checkpointing does")]),
    ({"deepspeed": "zero3", "gradient_checkpointing_kwargs": '{"use_reentrant": false}'},
     {"gpus": "0,1", "nproc_per_node": 2},
     [("warning", "layout.zero3.no_reentrant", "use_reentrant false with ZeRO-3: a known PEFT + ZeRO-3 "
       "checkpointing failure", "remove gradient_checkpointing_kwargs and keep ms-swift's default under ZeRO-3")]),
])
def test_reentrant_rules(args, launch, expected):
    assert run([training.check_reentrant], make_job(args, launch)) == expected


def test_machine_facts_are_warnings_only():
    job = make_job({"deepspeed": "zero2", "attn_impl": "flash_attn"}, {"gpus": "0,1", "nproc_per_node": 2})
    assert run([training.check_installed], job) == [
        ("warning", "env.deepspeed_missing", "deepspeed is not installed here",
         "on the machine that trains: pip install deepspeed"),
        ("warning", "env.flash_attn_missing", "attn_impl flash_attn needs flash_attn, which is not installed here",
         "pip install flash-attn on an A100/H100-class machine, or use attn_impl sdpa")]
    installed = Facts(has_module=lambda name: True)
    assert run([training.check_installed], job, installed) == []


@pytest.mark.parametrize("args, launch, message", [
    ({"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4}, {"gpus": "0,1,2,3", "nproc_per_node": 4},
     "global batch 32 = per-device 2 x grad-accum 4 x 4 ranks"),
    ({"per_device_train_batch_size": 3}, {"gpus": "0,1", "nproc_per_node": 2},
     "global batch 18 = per-device 3 x grad-accum 3 (ms-swift's default ceil(16 / (batch x world))) x 2 ranks"),
    ({}, {"gpus": "0"}, "global batch 16 = per-device 1 x grad-accum 16 (ms-swift's default ceil(16 / (batch x world))) x 1 rank"),
])
def test_global_batch(args, launch, message):
    [(level, code, text, _)] = run([training.check_global_batch], make_job(args, launch))
    assert (level, code, text) == ("info", "batch.global", message)


def test_small_save_steps_warn():
    assert run([training.check_step_intervals], make_job({"save_steps": 2, "eval_steps": 100})) == [
        ("warning", "io.save_steps", "save_steps 2: a checkpoint/eval every 2 steps can dominate run time",
         "each save or evaluation stops training; use 50 or more for real runs")]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from lorakit.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("m") / "tiny-random-chatml")


def test_unknown_target_on_a_local_model_is_an_error_listing_its_layers(tiny_model):
    job = make_job({"model": str(tiny_model), "target_modules": ["query_key_value"]})
    facts = Facts(find_model=lambda m: tiny_model)
    assert run([model.check_targets], job, facts) == [
        ("error", "model.targets.unknown", f"target_modules query_key_value not in {tiny_model}: ms-swift would "
         "fail after loading the weights", "its Linear layers: down_proj, gate_proj, k_proj, o_proj, q_proj, "
         "up_proj, v_proj")]
    # peft refuses only when nothing matches; one unmatched entry beside a matched one is ignored
    partly = make_job({"model": str(tiny_model), "target_modules": ["q_proj", "query_key_value"]})
    assert run([model.check_targets], partly, facts) == [
        ("warning", "model.targets.unmatched", f"target_modules query_key_value match nothing in {tiny_model}: "
         "peft ignores them and puts LoRA on q_proj only", "a typo? its Linear layers: down_proj, gate_proj, "
         "k_proj, o_proj, q_proj, up_proj, v_proj")]
    ok = make_job({"model": str(tiny_model), "target_modules": ["all-linear"]})
    assert run([model.check_targets], ok, facts) == []


def test_hub_model_falls_back_to_tables_at_warning_level():
    job = make_job({"model": "Qwen/Qwen3-8B", "target_modules": ["W_pack"]})
    assert run([model.check_targets], job) == [
        ("warning", "model.targets.unlikely", "target_modules W_pack not among Qwen/Qwen3-8B's published "
         "architecture (the model is not local, so lorakit cannot read its layers)",
         "usual Linear layers: down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj")]
    glm = make_job({"model": "ZhipuAI/chatglm3-6b", "target_modules": ["q_proj"]})
    [(level, code, message, hint)] = run([model.check_targets], glm)
    assert (level, code) == ("warning", "model.targets.unlikely")
    assert "query_key_value" in hint


def test_local_qwen2_dir_needs_model_type(tiny_model):
    facts = Facts(has_module=lambda name: False, is_file=lambda p: False, find_model=lambda m: tiny_model)
    job = make_job({"model": str(tiny_model)})
    [(level, code, message, hint)] = run([model.check_model_type], job, facts)
    assert (level, code) == ("error", "model.type.ambiguous")
    assert "Qwen2ForCausalLM" in message and "--set model_type=qwen2" in hint and "--set template=" in hint
    assert run([model.check_model_type], make_job({"model": str(tiny_model), "model_type": "qwen2",
                                                   "template": "qwen"}), facts) == []


def test_master_addr_must_be_text(tmp_path):
    from conftest import run_cli

    path = tmp_path / "p.yaml"
    path.write_text("extends: single\nlaunch: {nnodes: 2, node_rank: 0, master_addr: [1]}\n")
    result = run_cli(["train", "-p", str(path), "--dry-run"])
    assert result.code == 2
    assert (f"error[nodes.master_addr.invalid] launch.master_addr ({path}): master_addr [1] is not a host name "
            "or address") in result.stderr.splitlines()


@pytest.mark.parametrize("key, value", [("per_device_train_batch_size", 0), ("gradient_accumulation_steps", 0),
                                        ("per_device_eval_batch_size", -2)])
def test_batch_sizes_below_one(key, value):
    evaluated = {"split_dataset_ratio": 0.01}
    assert run([training.check_batch_sizes], make_job({key: value, **evaluated})) == [
        ("error", "batch.invalid", f"{key} must be a whole number of at least 1, got {value!r}", "")]


def test_an_eval_batch_below_one_without_evaluation_is_a_warning():
    """ms-swift never reads it when nothing is evaluated: the run trains (tests/test_real_failures.py)."""
    assert run([training.check_batch_sizes], make_job({"per_device_eval_batch_size": 0})) == [
        ("warning", "batch.invalid", "per_device_eval_batch_size 0 is not a batch size; unused now (nothing is "
         "evaluated), it fails the run once evaluation is on", "set it to 1 or more")]


@pytest.mark.parametrize("visible", ["-1", "all"])  # "" is a CPU run: tests/test_envlayer.py
def test_an_unusable_cuda_visible_devices_says_where_it_came_from(visible):
    from conftest import run_cli

    result = run_cli(["validate", "-p", "zero2"], env={"CUDA_VISIBLE_DEVICES": visible})
    assert result.code == 2
    lines = result.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("error[layout.gpus.invalid]"))
    assert lines[at + 1] == "  hint: unset CUDA_VISIBLE_DEVICES in your shell, or pass --gpus 0,1,..."
    assert lines[-1] == (f"lorakit: not launchable: GPU list {visible!r} from CUDA_VISIBLE_DEVICES in your "
                         "environment is not usable")


@pytest.mark.parametrize("value, major, hint", [
    ("lorra", 4, "did you mean 'lora'? ms-swift's tuners: lora, full, longlora, adalora, llamapro, adapter, vera, "
     "boft, fourierft, reft, bone, ia3, lora_llm, dummy"),
    ("qlora", 4, "QLoRA in ms-swift is tuner_type: lora with quant_bits: 4 (bitsandbytes)"),
    ("lora_llm", 3, "did you mean 'lora'? ms-swift's tuners: lora, full, longlora, adalora, llamapro, adapter, vera, "
     "boft, fourierft, reft, bone, ia3, dummy"),
])
def test_an_unknown_tuner_type_is_an_error(value, major, hint):
    import dataclasses

    job = dataclasses.replace(make_job({"tuner_type": value}), swift_major=major)
    assert run([lora.check_tuner_type], job) == [
        ("error", "lora.tuner.unknown", f"tuner_type {value!r} is not an ms-swift {major}.x tuner: ms-swift stops "
         "only after the model has loaded", hint)]


def test_a_tuner_a_plugin_may_register_is_a_warning():
    job = make_job({"tuner_type": "my_tuner", "external_plugins": ["plugin.py"]})
    [(level, code, message, _)] = run([lora.check_tuner_type], job)
    assert (level, code) == ("warning", "lora.tuner.unknown")
    assert message == "tuner_type 'my_tuner' is not an ms-swift 4.x tuner (unless your --external_plugins file registers it)"
    assert run([lora.check_tuner_type], make_job({"tuner_type": "full"})) == []
