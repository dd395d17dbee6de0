"""lorakit.tiny builds, offline, a model and dataset that plain transformers and ms-swift accept."""

from __future__ import annotations

import json
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lorakit.tiny import (  # noqa: E402
    TINY_MODEL_DIR,
    make_tiny_dataset,
    make_tiny_model,
    tiny_swift_args,
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / TINY_MODEL_DIR)


def test_model_loads_and_forward_pass_is_finite(tiny_model):
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    ids = tok(text, return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape == (1, ids["input_ids"].shape[1], model.config.vocab_size)
    assert torch.isfinite(logits).all()
    assert model.dtype == torch.float32


def test_chatml_specials_are_single_tokens(tiny_model):
    # ms-swift's `--template qwen` writes <|im_start|>/<|im_end|> as text; each must be one id.
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    for special in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1
    assert tok.decode(tok("héllo wörld")["input_ids"]) == "héllo wörld"


def test_saved_files(tiny_model):
    assert (tiny_model / "model.safetensors").is_file()
    assert not (tiny_model / "pytorch_model.bin").exists()
    config = json.loads((tiny_model / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    tok_cfg = json.loads((tiny_model / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_model_is_deterministic(tiny_model, tmp_path):
    again = make_tiny_model(tmp_path / TINY_MODEL_DIR)
    assert (again / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()


def test_dataset_lines_parse(tmp_path):
    path = make_tiny_dataset(tmp_path / "d" / "data.jsonl", n=11)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 11
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"]
        assert all(isinstance(m["content"], str) and m["content"] for m in row["messages"])


def test_swift_args_are_flag_names():
    args = tiny_swift_args()
    assert args["model_type"] == "qwen2" and args["template"] == "qwen"
    assert args["check_model"] is False
    assert all(not k.startswith("-") for k in args)


def test_import_is_lazy():
    # The CLI imports lorakit modules on every start; torch must not come with tiny.
    import os
    import subprocess
    from pathlib import Path

    import lorakit

    src = str(Path(lorakit.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=src)
    code = "import sys, lorakit.tiny; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False"
