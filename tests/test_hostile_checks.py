"""Today's partner-setting, dataset-info, loopback and flag-choice checks fed what a hostile
(or careless) user writes, through the real CLI: each is one clear finding or a pass, never a
traceback and never a claim ms-swift would not bear out (a second error for a value the flag
check already refuses is such a claim: 'bnb takes 4, 8, not 4.0' when lorakit renders 4.0 as 4)."""

from __future__ import annotations

import json
import os

import pytest

from conftest import run_cli


def findings(args: list[str], *prefixes: str) -> list[tuple[str, str]]:
    """(code, message) of each finding whose code starts with one of `prefixes`, from
    `lorakit validate --json`, which must exit 0 or 2 (a finding), never 1 (a traceback)."""
    result = run_cli(["validate", "--json", *args])
    assert result.code in (0, 2), result.stderr
    return [(f["code"], f["message"]) for f in json.loads(result.stdout)["findings"]
            if f["code"].startswith(prefixes)]


def sets(**values: str) -> list[str]:
    return [item for key, value in values.items() for item in ("--set", f"{key}={value}")]


# -- quant_method / quant_bits ---------------------------------------------------------------

def test_quant_bits_4_0_is_4_as_lorakit_renders_it():
    # render.render_value writes 4.0 as '4', which ms-swift's bnb branch takes (quant_bits == 4)
    assert findings(["-p", "single", *sets(quant_method="bnb", quant_bits="4.0")], "args.quant", "flags.") == []
    result = run_cli(["train", "--dry-run", "-p", "single", *sets(quant_method="bnb", quant_bits="4.0")])
    assert "--quant_bits 4\n" in result.stdout or result.stdout.rstrip().endswith("--quant_bits 4")


@pytest.mark.parametrize("bits, message", [
    ("true", "quant_bits: 'true' is not one of 1, 2, 3, 4, 8, float8"),
    ("99999999999999999999999", "quant_bits: '99999999999999999999999' is not one of 1, 2, 3, 4, 8, float8"),
    ("[4]", "quant_bits takes one value, not a list"),
])
def test_a_quant_bits_argparse_refuses_is_one_finding_not_two(bits, message):
    assert findings(["-p", "single", *sets(quant_method="bnb", quant_bits=bits)], "args.quant", "flags.") == [
        ("flags.value", message)]


def test_a_mapping_for_a_flag_with_choices_is_refused():
    # '{"a": 1}' is one argv item, and argparse's choices for quant_method do not hold it
    assert findings(["-p", "single", *sets(quant_method="{a: 1}", quant_bits="4")], "args.quant", "flags.") == [
        ("flags.value", "quant_method takes one of bnb, hqq, eetq, quanto, fp8, not a mapping")]


# -- packing / streaming -------------------------------------------------------------------------

def test_packing_with_a_list_attn_impl_is_the_flag_check_s_alone():
    assert findings(["-p", "single", *sets(packing="1", attn_impl="[flash_attn]")], "args.packing", "flags.") == [
        ("flags.value", "attn_impl takes one value, not a list")]


@pytest.mark.parametrize("steps", ['"1e3"', "1e400", "2.5"])
def test_streaming_with_a_max_steps_that_is_no_integer_is_the_flag_check_s_alone(steps):
    got = findings(["-p", "single", *sets(streaming="true", max_steps=steps)], "train.streaming", "flags.")
    assert [code for code, _ in got] == ["flags.value"]
    assert got[0][1].startswith("max_steps expects an integer, got ")


def test_streaming_with_max_steps_minus_one_still_needs_max_steps():
    assert findings(["-p", "single", *sets(streaming="true", max_steps="-1")], "train.streaming") == [
        ("train.streaming.max_steps", "streaming true with max_steps -1: a streamed dataset has no length, so "
         "transformers refuses the run once the model has loaded (\"max_steps has to be specified\")")]


# -- cached_dataset with GKD ----------------------------------------------------------------------

def gkd(lmbda: str, tmp_path) -> list[tuple[str, str]]:
    cached = tmp_path / "cached"
    cached.mkdir()
    return findings(["-p", "dpo", *sets(rlhf_type="gkd", cached_dataset=str(cached), lmbda=lmbda)],
                    "rlhf.gkd", "flags.")


def test_gkd_lmbda_nan_never_generates_so_a_cached_dataset_is_fine(tmp_path):
    # gkd_trainer.py: on-policy when random() <= self.lmbda, never true for nan (argparse's float takes it)
    assert gkd(".nan", tmp_path) == []


def test_gkd_lmbda_true_is_the_flag_check_s_alone(tmp_path):
    assert gkd("true", tmp_path) == [("flags.value", "lmbda expects a number, got 'true'")]


def test_gkd_lmbda_inf_always_generates(tmp_path):
    [(code, message)] = gkd(".inf", tmp_path)
    assert code == "rlhf.gkd.cached_dataset"
    assert message.startswith("cached_dataset with rlhf_type gkd and lmbda inf: on-policy steps")


# -- custom_dataset_info ---------------------------------------------------------------------------

HINT_ENTRIES = "custom_dataset_info: "


def info(tmp_path, value: str) -> list[tuple[str, str]]:
    return findings(["-p", "single", "--set", f"custom_dataset_info={value}"], "data.dataset_info", "paths.")


def test_a_directory_fifo_or_device_as_dataset_info_is_an_error(tmp_path):
    # register_dataset_info: not os.path.isfile -> json.loads(the path text) -> JSONDecodeError
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    assert info(tmp_path, str(tmp_path / "dir")) == [("data.dataset_info.invalid",
        f"custom_dataset_info: {tmp_path}/dir is a directory: ms-swift reads a JSON file or inline JSON, and "
        "parses this path as JSON text (JSONDecodeError)")]
    for path in (tmp_path / "fifo", "/dev/zero"):  # never opened: a FIFO would block the read
        assert info(tmp_path, str(path)) == [("data.dataset_info.invalid",
            f"custom_dataset_info: {path} is not a regular file: ms-swift reads a JSON file or inline JSON, and "
            "parses this path as JSON text (JSONDecodeError)")]


def test_a_binary_dataset_info_names_the_file_and_the_byte(tmp_path):
    (tmp_path / "bin.json").write_bytes(b"[\x00\xfa\x01")
    assert info(tmp_path, str(tmp_path / "bin.json")) == [("data.dataset_info.invalid",
        f"custom_dataset_info: {tmp_path}/bin.json is not UTF-8 text (byte 0xfa at offset 2)")]


@pytest.mark.parametrize("entries, problem", [
    ([None], "entry 0 is null, not a mapping of dataset fields"),
    ([[]], "entry 0 is a list [], not a mapping of dataset fields"),
    ([{"dataset_path": ["a.jsonl", "b.jsonl"]}], 'entry 0: dataset_path is a list ["a.jsonl", "b.jsonl"], not one '
     "path as text (ms-swift fails on it: TypeError); give each file its own entry"),
    ([{"dataset_path": 5}], "entry 0: dataset_path is the number 5, not one path as text (ms-swift fails on it: "
     "TypeError); give each file its own entry"),
    ([{"dataset_path": None}], "entry 0: dataset_path is null, not one path as text (ms-swift fails on it: "
     "TypeError); give each file its own entry"),
    ([{"ms_dataset_id": "swift/x", "messages": "from"}], 'entry 0: messages is the text "from", not a mapping of '
     'the MessagesPreprocessor\'s keys, e.g. {"role_key": "from", "content_key": "value"}'),
])
def test_dataset_info_entries_ms_swift_fails_on(tmp_path, entries, problem):
    path = tmp_path / "info.json"
    path.write_text(json.dumps(entries))
    assert info(tmp_path, str(path)) == [("data.dataset_info.invalid", f"custom_dataset_info: {path}: {problem}")]


def test_an_empty_dataset_info_mapping_registers_nothing_and_passes(tmp_path):
    # register_dataset_info: `if len(dataset_info) == 0: return []`
    (tmp_path / "empty.json").write_text("{}")
    assert info(tmp_path, str(tmp_path / "empty.json")) == []


# -- loopback master_addr ------------------------------------------------------------------------------

@pytest.mark.parametrize("addr, shown", [
    ("localhost.", "localhost.:29500"),  # the same name, fully qualified
    ("127.1", "127.1:29500"),  # getaddrinfo reads it as 127.0.0.1
    ("::ffff:127.0.0.1", "[::ffff:127.0.0.1]:29500"),
    ("::1", "[::1]:29500"),  # an IPv6 host with its port, written as torchrun's logs write it
])
def test_node_1_at_any_spelling_of_loopback_is_an_error(addr, shown):
    got = findings(["-p", "ddp", "--set", "launch.nnodes=2", "--set", "launch.node_rank=1",
                    "--set", f"launch.master_addr={addr}"], "nodes.master_addr")
    assert got == [("nodes.master_addr.loopback", f"node_rank 1 with master_addr {addr}: nothing answers at {shown} "
                    "on this host, so node 0 is elsewhere and this node would retry until torchrun's rendezvous "
                    "timeout")]


@pytest.mark.parametrize("addr", ["10.0.0.1", "1e5", "node-0.cluster"])
def test_node_1_at_a_real_address_passes(addr):
    assert findings(["-p", "ddp", "--set", "launch.nnodes=2", "--set", "launch.node_rank=1",
                     "--set", f"launch.master_addr={addr}"], "nodes.") == []


# -- vLLM and an adapter on the vision side, written as ms-swift writes it ------------------------------

def vl_checkpoint(root, target_modules) -> "os.PathLike":
    ckpt = root / "output" / "v0-20260101-120000" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8,
                                                          "target_modules": target_modules}))
    (ckpt / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 2, "log_history": []}))
    (ckpt / "args.json").write_text(json.dumps({"model": str(root), "model_type": "qwen2_vl"}))
    return ckpt


# get_multimodal_target_regex's output for Qwen2-VL: freeze_vit false (the vision tower, minus its
# merger) and the default (the language model only)
VIT_REGEX = (r"^(model\.language_model(?=\.).*\.(q_proj|k_proj|v_proj|o_proj)|(?!(model.visual.merger))"
             r"model\.visual(?=\.).*\.(qkv|proj|fc1|fc2))$")
LLM_REGEX = r"^(model\.language_model(?=\.).*\.(q_proj|k_proj|v_proj|o_proj))$"


def infer_vllm(tmp_path, target_modules):
    ckpt = vl_checkpoint(tmp_path, target_modules)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        return ckpt, run_cli(["infer", "--adapters", str(ckpt), "--infer-backend", "vllm", "--dry-run"])
    finally:
        os.chdir(old)


def test_vllm_refuses_an_adapter_whose_regex_names_the_vision_tower(tmp_path):
    ckpt, result = infer_vllm(tmp_path, VIT_REGEX)
    assert result.code == 2
    assert result.stderr.splitlines()[-2] == (
        f"lorakit: error: --infer-backend vllm with the adapter {ckpt}, which has LoRA on model.visual "
        "(adapter_config.json target_modules): vLLM applies LoRA to the language model only and refuses the adapter "
        "when it loads it")


@pytest.mark.parametrize("target_modules", [LLM_REGEX, {"visual": 1}, [1, None, ["visual.qkv"]], "all-linear", "(("])
def test_vllm_takes_a_language_model_regex_and_odd_target_modules(tmp_path, target_modules):
    _, result = infer_vllm(tmp_path, target_modules)
    assert result.code == 0, result.stderr


# -- --adapters with commas ------------------------------------------------------------------------------

def merge_in(tmp_path, adapters: str):
    vl_checkpoint(tmp_path, ["q_proj"])
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        return run_cli(["merge", "--adapters", adapters, "--dry-run"])
    finally:
        os.chdir(old)


CKPT = "output/v0-20260101-120000/checkpoint-2"


def test_a_lone_comma_is_no_path_and_gets_no_drop_the_comma_hint(tmp_path):
    # ','.rstrip(',') is '', which Path takes for the current directory: the hint said `--adapters ''`
    result = merge_in(tmp_path, ",")
    assert (result.code, result.stderr.splitlines()[-2:]) == (2, [
        "lorakit: error: , does not exist",
        "  hint: pass a checkpoint-N directory, a run directory (vN-YYYYMMDD-HHMMSS) or a training output_dir"])


def test_two_paths_joined_by_a_comma_are_named_as_such(tmp_path):
    result = merge_in(tmp_path, f"{CKPT},{CKPT}")
    assert (result.code, result.stderr.splitlines()[-2:]) == (2, [
        f"lorakit: error: {CKPT},{CKPT} does not exist: it is 2 paths joined by ','; ms-swift separates list values "
        "with spaces, and lorakit takes each path as its own --adapters",
        f"  hint: --adapters {CKPT} (merge takes one adapter; infer and deploy take the next as a second --adapters)"])


# -- model_type on a dir whose config.json names no architecture ------------------------------------------

@pytest.mark.parametrize("architectures", [[], None])
def test_a_model_type_for_a_dir_with_no_architecture_is_no_mismatch(tmp_path, architectures):
    # 'null' is the registry's bucket for every model type registered without an architecture (bert,
    # deepseek_vl2, ...): the model_type given is what ms-swift asks for then, not a mismatch with them
    model = tmp_path / "md"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": architectures, "model_type": "qwen2_vl",
                                                   "vision_config": {}}))
    (model / "tokenizer_config.json").write_text("{}")
    assert findings(["-p", "single", "--model", str(model), "--set", "model_type=qwen2"], "model.type.mismatch") == []


# -- save/eval grid ---------------------------------------------------------------------------------------

def test_an_eval_steps_ratio_is_not_judged_as_logging_steps():
    # eval_steps 0.1 is a tenth of the run (TrainingArguments: a float below 1 is a ratio); the
    # warning named 'eval_steps 5', the preset's logging_steps
    grid = ["-p", "single", *sets(split_dataset_ratio="0.1", save_steps="200", logging_steps="5")]
    assert findings([*grid, "--set", "eval_steps=0.1"], "eval.save_steps") == []
    assert findings([*grid, "--set", "eval_steps=null"], "eval.save_steps") == [(
        "eval.save_steps_unaligned", "save_steps 200 with eval_steps 5: evaluations fall on steps with no checkpoint, "
        "and a checkpoint counts as best only by the evaluation before it was saved, so the best evaluation may have "
        "no checkpoint")]


# -- DPO resuming an SFT checkpoint at a path with a space ------------------------------------------------

def test_the_resume_sft_hint_pastes_into_a_shell(tmp_path):
    ckpt = tmp_path / "sft run" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "args.json").write_text(json.dumps({"model": "Qwen/Qwen2.5-0.5B-Instruct"}))
    result = run_cli(["validate", "--json", "-p", "dpo", "--set", f'resume_from_checkpoint="{ckpt}"'])
    [hint] = [f["hint"] for f in json.loads(result.stdout)["findings"] if f["code"] == "rlhf.resume_sft_checkpoint"]
    shown = f"'{ckpt}'"
    assert hint == (f"start dpo from it instead: --adapters {shown} --ref_adapters {shown} (ms-swift's two-stage "
                    f"recipe), or lorakit rlhf --adapters {shown} (adds ref_adapters); drop resume_from_checkpoint")


# -- a rollout server's host -------------------------------------------------------------------------------

def rollout(host: str, *more: str) -> list[tuple[str, str]]:
    return findings(["-p", "grpo_server", "--set", "rollout_gpus=null", "--set", f"vllm_server_host={host}", *more],
                    "rlhf.vllm.server")


@pytest.mark.parametrize("host, url", [("127.0.0.1:8000", "http://127.0.0.1:8000:PORT"),
                                       ("http://10.0.0.2:8000", "http://http://10.0.0.2:8000:PORT")])
def test_a_rollout_host_with_a_port_or_scheme_is_named_not_probed(host, url):
    # vllm_client.py: f'http://{format_host_for_url(h)}:{p}'; the probe said 'nothing listens at
    # 127.0.0.1:8000:8000'
    assert rollout(host) == [("rlhf.vllm.server_host_port", f"vllm_server_host {host!r} is more than a host: the "
                              f"trainer connects to {url} (vllm_client.py), which reaches nothing")]


@pytest.mark.parametrize("host, shown", [("localhost.", "localhost.:8000"), ("127.1", "127.1:8000"),
                                         ("::1", "[::1]:8000"), ('"[::1]"', "[::1]:8000")])
def test_every_spelling_of_this_machine_is_probed(host, shown):
    [(code, message)] = rollout(host, "--set", "vllm_server_port=1")  # port 1: nothing listens there
    assert (code, message.split(" on this machine")[0]) == ("rlhf.vllm.server_unreachable",
                                                            f"nothing listens at {shown.replace('8000', '1')}")


def test_a_bracketed_ipv6_rollout_host_that_answers_passes():
    import socket

    with socket.socket(socket.AF_INET6) as server:
        server.bind(("::1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert rollout('"[::1]"', "--set", f"vllm_server_port={port}") == []
    assert rollout('"[::1]"', "--set", f"vllm_server_port={port}")[0][0] == "rlhf.vllm.server_unreachable"


@pytest.mark.parametrize("value, message", [
    ("123", "'123' is no file here, and ms-swift reads it as inline JSON: the number 123, not a list of dataset entries"),
    ("true", "'true' is no file here, and ms-swift reads it as inline JSON: the boolean true, not a list of dataset "
     "entries"),
    ('\'"x"\'', "'\"x\"' is no file here, and ms-swift reads it as inline JSON: the text \"x\", not a list of dataset "
     "entries"),
    ('""', "'' is empty: ms-swift parses it as JSON text and fails (JSONDecodeError)"),
])
def test_a_dataset_info_value_that_loads_as_a_json_scalar_is_an_error(tmp_path, value, message):
    # register_dataset_info: no such file -> json.loads(value) -> len(123) / iterating 'x' fails
    assert info(tmp_path, value) == [("data.dataset_info.invalid", f"custom_dataset_info: {message}")]


@pytest.mark.parametrize("version", ["3.0", "3.5", "3.6"])
def test_gkd_with_a_cached_dataset_before_3_7_is_the_flag_history_s_alone(tmp_path, version):
    # cached_dataset is new in 3.7: before it there is no such run to describe, only flags.too_new
    cached = tmp_path / "cached"
    cached.mkdir()
    got = findings(["-p", "dpo", "--swift-version", version, *sets(rlhf_type="gkd", cached_dataset=str(cached))],
                   "rlhf.gkd", "flags.too_new")
    assert ("flags.too_new", f"--cached_dataset is new in ms-swift 3.7; you target {version}") in got
    assert [code for code, _ in got if code.startswith("rlhf.")] == []


# -- a quoted --set for a launch text key --------------------------------------------------------------------

@pytest.mark.parametrize("given, rendered", [('"10.0.0.1"', "MASTER_ADDR=10.0.0.1 \\"), ("'010'", "MASTER_ADDR=010 \\"),
                                             ("010", "MASTER_ADDR=010 \\"), ('"[::1]"', "MASTER_ADDR='[::1]' \\")])
def test_a_quoted_master_addr_is_the_text_inside_the_quotes(given, rendered):
    # the rendered env held the quotes (MASTER_ADDR='"10.0.0.1"'), which no resolver takes
    result = run_cli(["train", "--dry-run", "-p", "ddp", "--set", "launch.nnodes=2", "--set", "launch.node_rank=0",
                      "--set", f"launch.master_addr={given}"])
    assert result.code == 0, result.stderr
    assert rendered in result.stdout.splitlines()


def test_a_yaml_mapping_as_dataset_info_is_the_mapping_ms_swift_iterates(tmp_path):
    # rendered as one JSON item '{"dataset_path": ...}': register_dataset_info iterates its keys
    preset = tmp_path / "p.yaml"
    preset.write_text("extends: single\nargs:\n  custom_dataset_info: {dataset_path: data/train.jsonl}\n")
    assert findings(["-p", str(preset)], "data.dataset_info") == [("data.dataset_info.invalid",
        "custom_dataset_info: the inline value is a JSON mapping (keys 'dataset_path'), and ms-swift iterates a list "
        "of entries: it would take each key for an entry and fail")]


# -- a paired GRPO launch with no swift to start ------------------------------------------------------------

def test_a_paired_launch_without_swift_writes_no_run_record(tmp_path):
    # the record was written first, then `swift rollout` could not start: `lorakit runs` listed a
    # launch that never ran ('lost'); a plain launch checks for swift before its record
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = run_cli(["rlhf", "-p", "grpo_server", "--output-dir", "out", "--set", f"vllm_server_port={port}"],
                         env={"PATH": "/nonexistent"})
    finally:
        os.chdir(old)
    assert (result.code, result.stderr.splitlines()[-2:]) == (1, [
        "lorakit: error: ms-swift's `swift` command was not found on PATH",
        "  hint: pip install ms-swift in this environment"])
    assert not (tmp_path / "out").exists()


def test_a_list_for_a_one_value_flag_is_refused_as_a_list_in_an_older_minor():
    # it was 'grpo is not a choice in ms-swift 3.0', which hid that no list is taken at all
    got = findings(["-p", "dpo", "--swift-version", "3.0", "--set", "rlhf_type=[grpo]"], "flags.")
    assert got == [("flags.value", "rlhf_type takes one value, not a list")]


def test_packing_with_a_mapping_attn_impl_where_attn_impl_has_no_choices_is_refused():
    # 3.8's attn_impl is free text: '{"a": 1}' reaches _check_padding_free, which refuses it
    got = findings(["-p", "single", "--swift-version", "3.8", *sets(packing="true", attn_impl="{a: 1}")],
                   "args.packing", "flags.")
    assert [code for code, _ in got] == ["args.packing.attn_impl"]
