"""A tiny random-weight Qwen2-style model and dataset, built offline, for real ms-swift runs in tests.

torch / transformers / tokenizers are imported inside the functions: the CLI imports lorakit
modules on every start and must stay fast, and ms-swift is an optional extra.
"""

from __future__ import annotations

import json
from pathlib import Path

SEED = 1234

# Not named after a real hub model, so nobody mistakes the dir for downloaded weights.
TINY_MODEL_DIR = "tiny-random-chatml"

# The ChatML special tokens that ms-swift's `--template qwen` writes as literal text
# (swift/template/templates/qwen.py: ChatmlTemplateMeta, stop word <|endoftext|>).
_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_VOCAB_SIZE = 320  # 256 byte tokens + 3 specials, padded to a multiple of 64

# Qwen2's own chat template (system prompt default included), so `apply_chat_template`
# behaves like the real thing for anyone who calls it outside ms-swift.
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_QA = [
    ("What is 2+2?", "4"),
    ("Name a colour.", "Blue."),
    ("Say hello.", "Hello!"),
    ("What is the capital of France?", "Paris."),
    ("Count to three.", "1, 2, 3."),
    ("Is water wet?", "Yes."),
    ("Spell cat.", "C-A-T."),
    ("What comes after Monday?", "Tuesday."),
]


def _build_tokenizer():
    """A byte-level BPE with no merges: every text encodes, no training, fully deterministic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(byte_alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(_SPECIAL)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=_CHAT_TEMPLATE,
        model_max_length=2048,
    )


def _fix_tokenizer_config(dest: Path) -> None:
    # transformers 5 writes `tokenizer_class: TokenizersBackend`, which transformers 4.x
    # (e.g. a separate inference env) cannot resolve; PreTrainedTokenizerFast loads in both.
    cfg_path = dest / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def make_tiny_model(dest: Path) -> Path:
    """Save a tiny random Qwen2ForCausalLM (float32, safetensors) plus tokenizer into `dest`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer()
    config = Qwen2Config(
        vocab_size=_VOCAB_SIZE,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        # float32 on disk: ms-swift takes torch_dtype from config.json, and CPU has no fast bf16.
        dtype="float32",
    )
    torch.manual_seed(SEED)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    _fix_tokenizer_config(dest)
    return dest


def make_tiny_dataset(path: Path, n: int = 8) -> Path:
    """Write `n` chat samples as ms-swift's standard `{"messages": [...]}` jsonl."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        q, a = _QA[i % len(_QA)]
        messages = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_swift_args() -> dict:
    """The ms-swift 4.x flags a 2-step CPU run on the tiny model needs (see the comments).

    Not needed, checked on ms-swift 4.6.0 / CPU: --torch_dtype (taken from config.json, which
    says float32), --dataloader_num_workers (ms-swift sets 1), --report_to, --save_steps (the
    last step is always saved), and under DDP --gradient_checkpointing_kwargs (ms-swift turns
    use_reentrant off by itself when distributed).
    """
    return {
        # A local dir with no hub id: ms-swift refuses to guess ("Failed to automatically
        # match `model_type` ... ['qwen2', 'qwen2_gte']"; template: 7 candidates).
        "model_type": "qwen2",
        "template": "qwen",
        # Otherwise the trainer asks the ModelScope hub whether the local model is current:
        # offline that is 4 retries, about 20 s lost (9.5 s -> 32 s), though it still trains.
        "check_model": False,
        # The point of the tiny run: finish after two optimizer steps.
        "max_steps": 2,
    }
