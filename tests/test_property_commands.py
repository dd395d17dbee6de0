"""Never a traceback for the commands past `train`: export, merge, infer, deploy, eval, rlhf.

tests/test_property_never_traceback.py drives `train` and `validate` from preset files; each of
the other commands has its own options (--model, --adapters, --pick, --output-dir, --port, ...),
its own ms-swift flag set (the snapshot's export/infer/deploy/eval/rlhf arguments) and its own
checks (checks/export.py, engine.py, rlhf.py, ...). Here each draws its options and the flags
after `--` from that command's own snapshot types, with the same value pools (valid for argparse
or anything: huge ints, NaN, unicode digits, YAML words, paths that are files, dirs, missing),
plus checkpoint dirs whose adapter_config.json / args.json are junk, a list, a directory.

The property, for `lorakit COMMAND --dry-run`:
  * the exit code is 0 or 2, nothing raises past the CLI, no 'Traceback' on stderr;
  * exit 2 prints no command; exit 0 prints text that bash parses (stand-in `swift`/`env`
    functions) into exactly the argv and launch env `--format json` reports, `swift SUBCOMMAND`
    first, no NUL, every argv item under MAX_ARG_STRLEN; `--format sh` passes `bash -n`.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from lorakit import swiftflags
from test_property_never_traceback import (BASH, BROKEN_MODEL, DATA, HUGE_INT, LOCAL_MODEL, MAX_ARG_STRLEN,
                                           SEEN_VARS, _placed, as_tokens, check_common, parse_like_bash, value_for,
                                           write_fixtures)

# lorakit command -> (ms-swift subcommand it renders, the snapshot its flags come from)
COMMANDS = {"export": ("export", "export"), "merge": ("export", "export"), "infer": ("infer", "infer"),
            "deploy": ("deploy", "deploy"), "eval": ("eval", "eval"), "rlhf": ("rlhf", "rlhf")}
FLAGS = {cmd: swiftflags.load_flags(4, snapshot) for cmd, (_, snapshot) in COMMANDS.items()}
# the flags each command's checks read: drawn more often than the rest of its few hundred
INTERESTING = {
    "export": ["quant_method", "quant_bits", "dataset", "output_dir", "to_ollama", "to_cached_dataset", "to_mcore",
               "to_hf", "push_to_hub", "hub_model_id", "merge_lora", "exist_ok", "quant_n_samples",
               "quant_batch_size", "max_length", "group_size", "model_type", "template", "load_args", "packing",
               "streaming", "mcore_model", "mcore_adapters"],
    "merge": ["output_dir", "max_shard_size", "quant_method", "quant_bits", "safe_serialization", "exist_ok",
              "model_type", "torch_dtype", "load_args"],
    "infer": ["infer_backend", "max_new_tokens", "temperature", "val_dataset", "result_path", "stream",
              "max_batch_size", "vllm_tensor_parallel_size", "vllm_max_model_len", "vllm_limit_mm_per_prompt",
              "device_map", "max_memory", "task_type", "quant_bits", "quant_method", "merge_lora", "max_length",
              "load_data_args", "adapters"],
    "deploy": ["port", "host", "served_model_name", "infer_backend", "adapters", "vllm_gpu_memory_utilization",
               "api_key", "ssl_keyfile", "ssl_certfile", "max_logprobs", "verbose", "log_interval"],
    "eval": ["eval_dataset", "eval_limit", "eval_backend", "infer_backend", "eval_output_dir", "eval_num_proc",
             "extra_eval_args", "eval_dataset_args", "local_dataset"],
    "rlhf": ["rlhf_type", "beta", "loss_type", "reward_funcs", "num_generations", "use_vllm", "vllm_mode",
             "loss_scale", "ref_model", "rpo_alpha", "desirable_weight", "undesirable_weight", "max_completion_length",
             "dataset", "lora_rank", "learning_rate", "deepspeed", "per_device_train_batch_size"],
}
CKPT, ODD_CKPT, RUN_DIR = "\u27e6CKPT\u27e7", "\u27e6ODD_CKPT\u27e7", "\u27e6RUN_DIR\u27e7"
ODD_CKPTS = ["list-args", "junk-args", "number-config", "dir-args", "empty"]
ODD_VALUES = ["", " ", "~", "~nouser/x", "/", "/proc/nope/x", "-", "--", "\u0663", "a b", "x" * 300, "0", "-1",
              str(HUGE_INT), "nan", "true", "null", "日本/語"]
RLHF_PRESETS = ["dpo", "kto", "orpo", "simpo", "grpo_colocate"]


@dataclass
class Case:
    command: str
    options: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    fmt: str | None = None  # also render in this --format (sh is checked with bash -n)
    odd_ckpt: str = "junk-args"


def _flag_value(command: str, name: str, valid: bool) -> st.SearchStrategy[str]:
    return value_for(FLAGS[command].get(name), name, valid)  # no such flag: any value


@st.composite
def extra_flags(draw, command: str, valid: bool) -> list[str]:
    names = sorted(FLAGS[command])
    pool = [n for n in INTERESTING[command] if n in FLAGS[command]] or names
    tokens: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(pool) if draw(st.booleans()) else st.sampled_from(names))
        if not valid and draw(st.integers(0, 9)) == 0:
            name = draw(st.sampled_from([name + "x", name[:-1], name.replace("_", "-"), "quant_bit", "merge-lora"]))
        value = draw(_flag_value(command, name, valid))
        if "\0" in value or (valid and (value == "null" or value.startswith(("\n", "[", "{", "|", ">")))):
            continue
        form = draw(st.sampled_from(["spaced", "spaced", "equals"] + ([] if valid else ["bare", "many"])))
        tokens += as_tokens(draw, name, value, form)
    return tokens


def _path_option(draw, valid: bool, good: list[str]) -> str:
    if valid or draw(st.booleans()):
        return draw(st.sampled_from(good))
    return draw(st.sampled_from(ODD_VALUES + [ODD_CKPT, BROKEN_MODEL, DATA, f"{DATA}/messages.jsonl"]))


@st.composite
def cases(draw) -> Case:
    valid = draw(st.integers(0, 9)) < 5
    command = draw(st.sampled_from(sorted(COMMANDS)))
    case = Case(command)
    opts = case.options
    if command == "rlhf":
        opts += ["-p", draw(st.sampled_from(RLHF_PRESETS))]
        if draw(st.booleans()):
            opts += ["--model", _path_option(draw, valid, [LOCAL_MODEL, "Qwen/Qwen3-8B"])]
        if draw(st.integers(0, 2)) == 0:
            opts += ["--dataset", _path_option(draw, valid, [f"{DATA}/messages.jsonl", "hjh0119/shareAI-Llama3-DPO-zh-en-emoji"])]
        if draw(st.integers(0, 3)) == 0:
            opts += ["--lora-rank", draw(st.sampled_from(["8", "0", "-1", "x", str(HUGE_INT)] if not valid else ["8", "16"]))]
    else:
        given_model = command in ("export", "infer", "deploy", "eval") and draw(st.booleans())
        if command == "merge" or not given_model or draw(st.booleans()):
            opts += ["--adapters", _path_option(draw, valid, [CKPT, RUN_DIR])]
        if given_model or (command == "merge" and draw(st.integers(0, 3)) == 0):
            opts += ["--model", _path_option(draw, valid, [LOCAL_MODEL, "Qwen/Qwen2.5-7B-Instruct"])]
        if command in ("export", "merge") and draw(st.integers(0, 2)) == 0:
            opts += ["--output-dir", _path_option(draw, valid, ["out-x", "./out y", f"{DATA}/new"])]
        if command in ("infer", "deploy", "eval") and draw(st.integers(0, 2)) == 0:
            backends = ["pt", "vllm", "transformers", "sglang", "lmdeploy"]
            opts += ["--infer-backend", draw(st.sampled_from(backends if valid else backends + ODD_VALUES[:6]))]
        if command == "deploy" and draw(st.integers(0, 2)) == 0:
            ports = ["8000", "8001"] if valid else ["0", "-1", "65536", "x", str(HUGE_INT), "8000"]
            opts += ["--port", draw(st.sampled_from(ports))]
        if command == "deploy" and draw(st.integers(0, 3)) == 0:
            opts += ["--host", draw(st.sampled_from(["0.0.0.0", "127.0.0.1", "::"] + ([] if valid else ODD_VALUES[:5])))]
        if command != "merge" and draw(st.integers(0, 3)) == 0:
            opts += ["--pick", draw(st.sampled_from(["last", "best"] + ([] if valid else ["", "first", "3"])))]
        if command == "merge" and draw(st.integers(0, 4)) == 0:
            opts.append("--force")
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            name = draw(st.sampled_from(INTERESTING[command]))
            value = draw(_flag_value(command, name, valid)) if name in FLAGS[command] else "1"
            if "\0" not in value and "\n" not in value:
                opts += ["--set", f"{name}={value}"]
    if draw(st.integers(0, 5)) == 0:
        opts += ["--swift-version", draw(st.sampled_from(["3", "4", "3.12", "4.6.0"] + ([] if valid else ["3.0", "x"])))]
    if draw(st.integers(0, 7)) == 0:
        opts.append("--strict")
    case.extra = draw(extra_flags(command, valid))
    case.fmt = draw(st.sampled_from([None, "sh"]))
    case.odd_ckpt = draw(st.sampled_from(ODD_CKPTS))
    return case


def _lora_weights() -> bytes:
    """A whole adapter_model.safetensors (header and zeros) for q_proj/v_proj of the one layer."""
    shapes = {f"base_model.model.model.layers.0.self_attn.{m}.lora_{ab}.weight": shape
              for m, out in (("q_proj", 8), ("v_proj", 4)) for ab, shape in (("A", [8, 8]), ("B", [out, 8]))}
    header, offset = {}, 0
    for name, shape in shapes.items():
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * shape[0] * shape[1]]}
        offset += 4 * shape[0] * shape[1]
    body = json.dumps(header).encode()
    return struct.pack("<Q", len(body)) + body + b"\0" * offset


def write_checkpoints(folder: Path, paths: dict[str, str]) -> dict[str, str]:
    """A LoRA checkpoint as ms-swift saves one (adapter_config.json, args.json naming the local
    model), its run dir, and checkpoint-like dirs whose files are junk."""
    run = folder / "output" / "v0-20250101-000000"
    ckpt = run / "checkpoint-5"
    ckpt.mkdir(parents=True, exist_ok=True)
    model = paths[LOCAL_MODEL]
    (ckpt / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "base_model_name_or_path": model, "r": 8, "lora_alpha": 32,
         "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM"}))
    (ckpt / "args.json").write_text(json.dumps({"model": model, "model_type": "qwen2_5", "template": "qwen2_5",
                                                "tuner_type": "lora", "swift_version": "4.6.0"}))
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 5, "log_history": []}))
    weights = _lora_weights()
    (ckpt / "adapter_model.safetensors").write_bytes(weights)
    odd = {}
    for name in ODD_CKPTS:
        path = folder / "odd" / name / "checkpoint-1"
        path.mkdir(parents=True, exist_ok=True)
        (path / "adapter_model.safetensors").write_bytes(weights)
        (path / "trainer_state.json").write_text("{}")
        if name == "list-args":
            (path / "adapter_config.json").write_text("[1, 2]")
            (path / "args.json").write_text('["model"]')
        elif name == "junk-args":
            (path / "adapter_config.json").write_bytes(b"\xff\xfe{")
            (path / "args.json").write_text('{"model": 5, "quant_method": [], "task_type": {}, "swift_version": 3}')
        elif name == "number-config":
            (path / "adapter_config.json").write_text("7")
            (path / "args.json").write_text("1e999")
        elif name == "dir-args":
            (path / "adapter_config.json").mkdir(exist_ok=True)
            (path / "args.json").mkdir(exist_ok=True)
        odd[name] = str(path)
    return {CKPT: str(ckpt), RUN_DIR: str(run), **{f"odd:{k}": v for k, v in odd.items()}}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("commands_never_traceback")
    paths = write_fixtures(folder)
    return folder, {**paths, **write_checkpoints(folder, paths)}


def check_case(case: Case, folder: Path, paths: dict[str, str]) -> None:
    marks = {**paths, ODD_CKPT: paths[f"odd:{case.odd_ckpt}"]}
    options = [_placed(x, marks) for x in case.options]
    extra = [_placed(x, marks) for x in case.extra]
    tail = ["--", *extra] if extra else []
    argv = [case.command, *options, "--dry-run"]
    with _cwd(folder):
        result = run_cli([*argv, *tail])
        check_common(result, f"{case.command} --dry-run")
        if result.code == 2:
            assert result.stdout == "", "exit 2 must print no command"
            return
        text = result.stdout
        assert text.strip(), "exit 0 must print the command"
        assert "\0" not in text, "a NUL byte in the dry-run text: no shell can carry it"
        words, env = parse_like_bash(text)
        assert words[:2] == ["swift", COMMANDS[case.command][0]], words[:4]
        for word in words:
            assert len(word.encode("utf-8", "surrogateescape")) < MAX_ARG_STRLEN, f"argv item {word[:60]!r}..."
        as_json = run_cli([*argv, "--format", "json", *tail])
        check_common(as_json, f"{case.command} --dry-run --format json")
        assert as_json.code == 0, as_json.stderr[-2000:]
        launch = json.loads(as_json.stdout)
        assert words == launch["argv"], "the text and --format json disagree on argv"
        assert env == {k: v for k, v in launch["env"].items() if k in SEEN_VARS}, (env, launch["env"])
        if case.fmt == "sh":
            other = run_cli([*argv, "--format", "sh", *tail])
            check_common(other, f"{case.command} --dry-run --format sh")
            assert other.code == 0, other.stderr[-2000:]
            if BASH is not None:
                syntax = subprocess.run([BASH, "-n"], input=other.stdout.encode("utf-8", "surrogateescape"),
                                        capture_output=True, timeout=60)
                assert syntax.returncode == 0, syntax.stderr.decode(errors="replace")


@contextmanager
def _cwd(folder: Path):
    """Run in the case's own dir: ms-swift's default output dirs and relative paths land there
    (contextlib.chdir is 3.11+; lorakit supports 3.10)."""
    saved = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(saved)


@settings(max_examples=200, deadline=None, derandomize=True, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example, HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_every_command_exits_0_or_2_and_a_dry_run_is_a_command(workdir, case):
    folder, paths = workdir
    check_case(case, Path(tempfile.mkdtemp(dir=folder)), paths)


# The shapes the property is about, each once by name. The first six each raised a traceback
# until this test found them: an --adapters or --model name part over 255 bytes (OSError
# ENAMETOOLONG from Path.is_symlink in mergepick.pick, from Path.is_dir in preflight.resolve_base,
# from whole_model's config.json), an args.json naming its model as 5 (TypeError), a merge
# --output-dir whose NAME.lorakit-old sibling passes 255 bytes (OSError in mergeguard.plan_output),
# and eval's note joining an eval_dataset that is True or a date (TypeError).
LONG = "1" + "0" * 400
EXAMPLES = [
    Case("merge", ["--adapters", LONG], []),
    Case("infer", ["--model", LONG], []),
    Case("deploy", ["--adapters", LONG], []),
    Case("merge", ["--adapters", ODD_CKPT], ["--max_shard_size", "2GB"], odd_ckpt="junk-args"),
    Case("merge", ["--adapters", CKPT, "--output-dir", "x" * 250], []),
    Case("eval", ["--model", LOCAL_MODEL, "--set", "eval_dataset=2024-01-01"], ["--eval_dataset"]),

    Case("export", ["--model", LOCAL_MODEL], ["--quant_method", "awq", "--quant_bits", "4", "--dataset",
                                              f"{DATA}/messages.jsonl"]),
    Case("export", ["--adapters", ODD_CKPT], ["--quant_method", "bnb", "--quant_bits", "4"], odd_ckpt="list-args"),
    Case("export", ["--adapters", ODD_CKPT], ["--to_ollama", "true"], odd_ckpt="dir-args"),
    Case("export", ["--adapters", CKPT, "--output-dir", f"{DATA}/messages.jsonl"], ["--quant_bits", "8",
                                                                                     "--quant_method", "bnb"]),
    Case("merge", ["--adapters", ODD_CKPT], [], odd_ckpt="junk-args"),
    Case("merge", ["--adapters", ODD_CKPT], [], odd_ckpt="number-config"),
    Case("infer", ["--adapters", ODD_CKPT, "--infer-backend", "vllm"], [], odd_ckpt="junk-args"),
    Case("deploy", ["--adapters", CKPT, "--port", str(HUGE_INT)], []),
    Case("deploy", ["--adapters", f"name={CKPT}"], ["--adapters", f"a={CKPT}", f"b={ODD_CKPT}"], odd_ckpt="empty"),
    Case("eval", ["--adapters", CKPT], ["--eval_limit", "nan", "--eval_dataset", ""]),
    Case("rlhf", ["-p", "dpo"], ["--loss_scale", "+", "--beta", "\u0663"]),
    Case("rlhf", ["-p", "kto", "--model", LOCAL_MODEL], ["--loss_scale", "default+" + "x" * 5000]),
    Case("export", ["--model", LOCAL_MODEL], ["--to_cached_dataset", "true", "--dataset", DATA]),
]


@pytest.mark.parametrize("case", EXAMPLES, ids=lambda c: f"{c.command}-{'-'.join(c.extra[:1]) or 'none'}")
def test_named_shapes(workdir, case):
    folder, paths = workdir
    check_case(case, Path(tempfile.mkdtemp(dir=folder)), paths)
