"""`lorakit infer`: adapter discovery, the base model's pre-flight, backends that take no LoRA, and
vllm_max_lora_rank from adapter_config.json (ms-swift #4221)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli, swift3_python

PARSE = REPO / "scripts" / "swift_parse_check.py"


def checkpoint(root: Path, run: str = "v0-20260101-120000", step: int = 2, rank: int = 8,
               model: str | None = None) -> Path:
    ckpt = root / "output" / run / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank}))
    (ckpt / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    (ckpt / "args.json").write_text(json.dumps({"model": model or str(root), "model_type": "qwen2"}))
    return ckpt


def run_in(cwd: Path, args: list[str]):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return run_cli(args)
    finally:
        os.chdir(old)


def argv_of(stdout: str) -> list[str]:
    tokens = shlex.split(stdout.replace("\\\n", " "))
    return tokens[tokens.index("swift"):]


def test_output_root_renders_the_checkpoint_only(tmp_path):
    ckpt = checkpoint(tmp_path)
    result = run_in(tmp_path, ["infer", "--adapters", "output", "--dry-run"])
    assert result.code == 0, result.stderr
    assert argv_of(result.stdout) == ["swift", "infer", "--adapters", str(ckpt)]
    assert f"lorakit: base model {tmp_path} (from {ckpt}/args.json)" in result.stderr


@pytest.mark.parametrize("major, given, rendered", [(4, "pt", "transformers"), (3, "transformers", "pt"),
                                                    (4, "transformers", "transformers"), (3, "pt", "pt")])
def test_pt_and_transformers_are_spelled_for_the_version(tmp_path, major, given, rendered):
    ckpt = checkpoint(tmp_path)
    result = run_in(tmp_path, ["infer", "--adapters", str(ckpt), "--infer-backend", given, "--swift-version",
                               str(major), "--dry-run"])
    assert result.code == 0, result.stderr
    assert argv_of(result.stdout)[-2:] == ["--infer_backend", rendered]


@pytest.mark.parametrize("rank, limit", [(8, 8), (12, 16), (32, 32), (64, 64), (200, 256)])
def test_vllm_max_lora_rank_comes_from_the_adapter(tmp_path, rank, limit):
    ckpt = checkpoint(tmp_path, rank=rank)
    result = run_in(tmp_path, ["infer", "--adapters", str(ckpt), "--infer-backend", "vllm", "--dry-run"])
    assert result.code == 0, result.stderr
    assert argv_of(result.stdout)[-4:] == ["--infer_backend", "vllm", "--vllm_max_lora_rank", str(limit)]
    assert (f"info[infer.vllm.max_lora_rank] args.vllm_max_lora_rank (adapter_config.json): vllm_max_lora_rank "
            f"{limit}: the adapters' LoRA rank is {rank} (adapter_config.json r)") in result.stderr


def test_a_vllm_max_lora_rank_below_the_adapters_is_refused(tmp_path):
    ckpt = checkpoint(tmp_path, rank=64)
    result = run_in(tmp_path, ["infer", "--adapters", str(ckpt), "--infer-backend", "vllm", "--dry-run",
                               "--", "--vllm_max_lora_rank", "16"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        "lorakit: error: vllm_max_lora_rank 16 is below the adapter's LoRA rank 64 (adapter_config.json r): "
        "vLLM refuses the adapter when it loads it (ms-swift #4221)",
        "  hint: drop vllm_max_lora_rank (lorakit sets 64), or set it to 64"]


@pytest.mark.parametrize("command", ["infer", "deploy"])
def test_vllm_refuses_an_adapter_on_the_vision_side(tmp_path, command):
    """ms-swift #4974: InternVL3 trained with freeze_aligner false; vLLM applies LoRA to the LLM only."""
    ckpt = checkpoint(tmp_path)
    config = {"peft_type": "LORA", "r": 8, "target_modules": ["q_proj", "v_proj", "mlp1.1", "mlp1.3", "visual.qkv"]}
    (ckpt / "adapter_config.json").write_text(json.dumps(config))
    result = run_in(tmp_path, [command, "--adapters", str(ckpt), "--infer-backend", "vllm", "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: --infer-backend vllm with the adapter {ckpt}, which has LoRA on mlp1.1, mlp1.3, visual.qkv "
        "(adapter_config.json target_modules): vLLM applies LoRA to the language model only and refuses the adapter "
        "when it loads it",
        f"  hint: --infer-backend transformers; or merge first (lorakit merge --adapters {ckpt}, then --model "
        "MERGED_DIR and no --adapters) and serve the merged model with vLLM"]
    plain = run_in(tmp_path, [command, "--adapters", str(ckpt), "--dry-run"])  # transformers loads it
    assert plain.code == 0, plain.stderr


def test_vllm_infer_takes_one_adapter(tmp_path):
    a, b = checkpoint(tmp_path), checkpoint(tmp_path, run="v1-20260102-120000")
    result = run_in(tmp_path, ["infer", "--adapters", str(a), "--adapters", str(b), "--infer-backend", "vllm",
                               "--dry-run"])
    assert result.code == 2
    assert "lorakit: error: swift infer with vLLM serves one adapter" in result.stderr


@pytest.mark.parametrize("backend", ["sglang", "lmdeploy"])
def test_backends_without_lora_stop_with_a_fix(tmp_path, backend):
    checkpoint(tmp_path)
    result = run_in(tmp_path, ["infer", "--adapters", "output", "--infer-backend", backend, "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: --infer-backend {backend} takes no LoRA adapter: ms-swift would serve the bare base "
        "model (only transformers and vLLM get the adapter)",
        "  hint: merge first (lorakit merge --adapters output, then --model MERGED_DIR and no --adapters), or let "
        "ms-swift merge before it starts: -- --merge_lora true; or --infer-backend vllm"]


def test_merge_lora_makes_any_backend_fine(tmp_path):
    checkpoint(tmp_path)
    result = run_in(tmp_path, ["infer", "--adapters", "output", "--infer-backend", "sglang", "--dry-run",
                               "--", "--merge_lora", "true"])
    assert result.code == 0, result.stderr


def test_a_base_model_that_moved_is_named(tmp_path):
    ckpt = checkpoint(tmp_path, model="/gone/base-model")
    result = run_in(tmp_path, ["infer", "--adapters", "output", "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: base model /gone/base-model does not exist (named by {ckpt}/args.json)",
        "  hint: if the model moved, pass its new location with --model PATH (or its hub id)"]


def test_model_option_wins_and_is_rendered(tmp_path):
    ckpt = checkpoint(tmp_path, model="/gone/base-model")
    result = run_in(tmp_path, ["infer", "--adapters", "output", "--model", str(tmp_path), "--dry-run"])
    assert result.code == 0, result.stderr
    assert argv_of(result.stdout) == ["swift", "infer", "--model", str(tmp_path), "--adapters", str(ckpt)]


def test_neither_adapters_nor_model(tmp_path):
    result = run_in(tmp_path, ["infer", "--dry-run"])
    assert (result.code, result.stderr) == (2, "lorakit: error: lorakit infer needs --adapters (a checkpoint, "
                                               "run or output dir) or --model\n  hint: e.g. lorakit infer --adapters output\n")


def test_unknown_flag_after_dashes_is_the_flag_check(tmp_path):
    checkpoint(tmp_path)
    result = run_in(tmp_path, ["infer", "--adapters", "output", "--dry-run", "--", "--max_new_tokenz", "8"])
    assert result.code == 2
    assert "max_new_tokenz" in result.stderr and "max_new_tokens" in result.stderr


def test_json_format(tmp_path):
    ckpt = checkpoint(tmp_path)
    result = run_in(tmp_path, ["infer", "--adapters", "output", "--dry-run", "--format", "json"])
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["argv"] == ["swift", "infer", "--adapters", str(ckpt)]


@pytest.mark.parametrize("major", [4, 3])
def test_ms_swift_parses_rendered_infer_commands(tmp_path, major):
    python = sys.executable if major == 4 else swift3_python()
    ckpt = checkpoint(tmp_path, rank=64)
    argvs = []
    for backend in ("pt", "vllm"):
        result = run_in(tmp_path, ["infer", "--adapters", "output", "--infer-backend", backend, "--swift-version",
                                   str(major), "--dry-run", "--", "--max_new_tokens", "8"])
        assert result.code == 0, result.stderr
        argvs.append(argv_of(result.stdout)[2:])
    out = subprocess.run([python, str(PARSE), "infer", "--batch"], input=json.dumps(argvs), capture_output=True,
                         text=True, timeout=600, cwd=REPO / "scripts")
    assert out.returncode == 0, out.stderr[-2000:]
    answers = json.loads(out.stdout)
    assert [(a["exit"], a["remaining"]) for a in answers] == [(0, []), (0, [])]
    assert answers[1]["values"]["vllm_max_lora_rank"] == 64 and answers[0]["values"]["adapters"] == [str(ckpt)]


def test_infer_refuses_adapters_of_two_bases_unless_model_is_given(tmp_path):
    """ms-swift reads the base from the first adapter's args.json (get_ckpt_dir): the second was
    loaded onto the wrong base, and the dry-run said nothing."""
    a = checkpoint(tmp_path)
    b = checkpoint(tmp_path, run="v1-20260102-120000", model="Qwen/Qwen2.5-0.5B-Instruct")
    result = run_in(tmp_path, ["infer", "--adapters", str(a), "--adapters", str(b), "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2] == (
        f"lorakit: error: --adapters come from two base models: {a} was trained on {tmp_path}, {b} on "
        "Qwen/Qwen2.5-0.5B-Instruct (their args.json); ms-swift loads them all onto the first's base")
    chosen = run_in(tmp_path, ["infer", "--adapters", str(a), "--adapters", str(b), "--model", str(tmp_path),
                               "--dry-run"])
    assert chosen.code == 0, chosen.stderr


def test_infer_model_other_than_the_adapters_base_is_a_warning(tmp_path):
    """ms-swift takes --model over the checkpoint's args.json: an adapter of another base then fails
    at load. It was silent."""
    ckpt = checkpoint(tmp_path, model="Qwen/Qwen2.5-0.5B-Instruct")
    result = run_in(tmp_path, ["infer", "--adapters", str(ckpt), "--model", str(tmp_path), "--dry-run"])
    assert result.code == 0, result.stderr
    assert (f"warning[adapters.base.other] args.model (--model): model {tmp_path} (--model) is not the base the "
            f"adapter was trained on: Qwen/Qwen2.5-0.5B-Instruct ({ckpt}/args.json)\n"
            "  hint: fine for a copy of the same weights; else drop --model: the adapter's own base is used"
            ) in result.stderr


@pytest.mark.parametrize("command", ["infer", "deploy", "eval"])
def test_a_misspelled_backend_gets_a_did_you_mean(tmp_path, command):
    """'vlm' was told it 'takes no LoRA adapter' and to merge first."""
    checkpoint(tmp_path)
    result = run_in(tmp_path, [command, "--adapters", "output", "--infer-backend", "vlm", "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        "lorakit: error: infer_backend 'vlm' (--infer-backend) is not an ms-swift 4.x backend",
        "  hint: did you mean 'vllm'? one of: transformers, vllm, sglang, lmdeploy"]


def test_adapters_after_the_double_dash_get_the_same_discovery(tmp_path):
    """ms-swift's docs write `swift infer --adapters output/vx-xxx/checkpoint-xxx`: after `--` it was
    refused as 'needs --adapters', and dropped without a word when --adapters was given too."""
    ckpt = checkpoint(tmp_path)
    result = run_in(tmp_path, ["infer", "--dry-run", "--", "--adapters", "output", "--max_new_tokens", "5"])
    assert result.code == 0, result.stderr
    assert argv_of(result.stdout) == ["swift", "infer", "--max_new_tokens", "5", "--adapters", str(ckpt)]
    both = run_in(tmp_path, ["infer", "--adapters", "output", "--dry-run", "--", "--adapters=output"])
    assert both.code == 2
    assert both.stderr.splitlines()[-2:] == [
        "lorakit: error: --adapters is given twice: output and, after --, output",
        "  hint: give it once, before -- (lorakit finds the checkpoint and its base)"]
