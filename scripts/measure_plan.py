"""Measure a real `lorakit train` run's peak GPU memory against `lorakit plan`, on a GPU machine.

    # offline: a random-weight model with a published architecture from lorakit's table
    python scripts/measure_plan.py -p single --random-model Qwen/Qwen3-1.7B --max-length 4096
    # a model you have (local dir or hub cache), 8 GPUs, ZeRO-2
    python scripts/measure_plan.py -p zero2 --model /models/Qwen3-8B --max-length 2048 --json-out z2.json

What it does:
1. `lorakit plan --json --simulate` for the job (same preset and options) -> the planned per-GPU
   bytes, and the simulated step's peak (one process, fake tensors) beside it.
2. Writes a dataset whose every sample is longer than max_length and trains with
   --truncation_strategy right, so every sequence is exactly max_length tokens: the plan's
   assumption (it plans the worst case; real data is usually shorter).
3. Runs `lorakit train` for a few steps while polling `nvidia-smi --query-gpu=index,memory.used`
   every 0.2 s, and afterwards reads ms-swift's `memory(GiB)` from logging.jsonl (that is
   torch.cuda.max_memory_reserved: swift/trainers/patcher.py add_train_message).
4. Prints plan vs measured and the error, (plan - measured) / measured: against torch's reserved
   peak (what the plan models, plus allocator slack) and against nvidia-smi's peak above the idle
   baseline (which also holds the CUDA context, ~0.5 GiB, and NCCL buffers).

Needs torch + transformers + ms-swift (and deepspeed for zero presets) on the machine; stdlib only here
otherwise. --random-model needs no network: weights are random (memory does not care), and the
tokenizer is a byte-level one built in place.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GIB = 1024 ** 3
# ms-swift model_type and template for a local dir of each table family (it cannot infer them
# from a directory name).
SWIFT_TYPES = {"qwen2": ("qwen2", "qwen"), "qwen3": ("qwen3", "qwen3"), "llama": ("llama", "llama3")}


def lorakit(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lorakit", *args], text=True, **kw)


def build_random_model(hub_id: str, dest: Path) -> tuple[str, str]:
    """A random-weight bf16 checkpoint with the table's published shapes, plus a byte tokenizer."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    from lorakit.archtable import arch_entry

    entry = arch_entry(hub_id)
    if entry is None:
        sys.exit(f"measure_plan: {hub_id!r} is not in lorakit's table")
    fields = {k: entry[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                    "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings",
                                    "max_position_embeddings")}
    config = AutoConfig.for_model(entry["model_type"], **fields, attention_bias=entry["attention_bias"],
                                  torch_dtype="bfloat16")
    torch.set_default_dtype(torch.bfloat16)  # works on transformers 4 and 5 alike
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config)
    torch.set_default_dtype(torch.float32)
    model.save_pretrained(dest, safe_serialization=True)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                            model_max_length=entry["max_position_embeddings"]).save_pretrained(dest)
    return SWIFT_TYPES[entry["model_type"]]


def write_dataset(path: Path, max_length: int, n: int) -> None:
    # Byte-level tokens: ~1 token per character, so 2 x max_length characters always overflow.
    text = ("lorakit plans memory " * (2 * max_length // 21 + 1))
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"messages": [{"role": "user", "content": f"sample {i}"},
                                              {"role": "assistant", "content": text}]}) + "\n")


class SmiPoller(threading.Thread):
    """Peak memory.used per GPU index, polled until stop()."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval, self.peak, self._halt = interval, {}, threading.Event()

    @staticmethod
    def sample() -> dict:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
        return {i.strip(): int(m) for i, m in (line.split(",") for line in out.splitlines() if "," in line)}

    def run(self) -> None:
        while not self._halt.is_set():
            for index, mib in self.sample().items():
                self.peak[index] = max(self.peak.get(index, 0), mib)
            time.sleep(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def swift_reserved_gib(output_dir: Path) -> float | None:
    values = []
    for path in glob.glob(str(output_dir / "**" / "logging.jsonl"), recursive=True):
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "memory(GiB)" in row:
                values.append(float(row["memory(GiB)"]))
    return max(values) if values else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-p", "--preset", required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="local dir or hub id (download it first: the run itself is offline-safe)")
    src.add_argument("--random-model", metavar="HUB_ID", help="random weights with this table entry's shapes")
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=1, help="per_device_train_batch_size")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--gpus", default="0")
    ap.add_argument("--nproc", type=int)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="more lorakit --set KEY=VALUE")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("extra", nargs="*", help="after --: more ms-swift flags")
    opts = ap.parse_args()
    if opts.max_length < 512:
        # below ~100 tokens the template's system + user prompt fill the window: no labels, loss 0
        ap.error("--max-length: use 512 or more, so every sample has assistant tokens to train on")

    work = opts.workdir or Path(tempfile.mkdtemp(prefix="measure-plan-"))
    work.mkdir(parents=True, exist_ok=True)
    model, swift_flags = opts.model, []
    if opts.random_model:
        model = str(work / "model")
        model_type, template = build_random_model(opts.random_model, Path(model))
        swift_flags += ["--model_type", model_type, "--template", template, "--check_model", "false"]
    common = ["-p", opts.preset, "--model", model, "--gpus", opts.gpus,
              "--set", f"max_length={opts.max_length}", "--set", f"per_device_train_batch_size={opts.batch}"]
    common += ["--nproc", str(opts.nproc)] if opts.nproc else []
    for item in opts.sets:
        common += ["--set", item]
    # --simulate: the same step on fake tensors (MemTracker), so one run compares all three numbers
    planned = lorakit("plan", *common, "--json", "--simulate", capture_output=True)
    if planned.returncode != 0:
        sys.exit(f"measure_plan: lorakit plan failed:\n{planned.stderr}")
    plan = json.loads(planned.stdout)
    data = work / "data.jsonl"
    write_dataset(data, opts.max_length, n=2 * opts.steps * opts.batch * plan["layout"]["world_size"])

    idle = SmiPoller.sample()
    poller = SmiPoller()
    poller.start()
    out_dir = work / "output"
    train = lorakit("train", *common, "--dataset", str(data), "--output-dir", str(out_dir), "--",
                    # one micro-batch per step: accumulation changes the global batch, not the memory
                    "--max_steps", str(opts.steps), "--gradient_accumulation_steps", "1", "--logging_steps", "1",
                    "--save_strategy", "no", "--eval_strategy", "no", "--truncation_strategy", "right", "--report_to", "none",
                    "--dataloader_num_workers", "0", *swift_flags, *opts.extra)
    poller.stop()
    if train.returncode != 0:
        sys.exit(f"measure_plan: lorakit train exited {train.returncode}")

    gpus = [g.strip() for g in opts.gpus.split(",")]
    smi_gib = max((poller.peak.get(g, 0) - idle.get(g, 0)) / 1024 for g in gpus)
    reserved = swift_reserved_gib(out_dir)
    planned_gib = plan["per_gpu_memory_bytes"] / GIB
    result = {"preset": opts.preset, "model": opts.random_model or opts.model, "max_length": opts.max_length,
              "batch": opts.batch, "plan_gib": round(planned_gib, 2), "breakdown_gib": plan["breakdown"],
              "simulated_gib": plan["simulated"]["peak_gib"],
              "simulated_plan_gib": plan["simulated"]["plan_one_process_gib"],
              "swift_reserved_gib": reserved, "nvidia_smi_peak_gib": round(smi_gib, 2),
              "error_vs_reserved_pct": round(100 * (planned_gib - reserved) / reserved, 1) if reserved else None,
              "error_vs_nvidia_smi_pct": round(100 * (planned_gib - smi_gib) / smi_gib, 1) if smi_gib else None}
    print(json.dumps(result, indent=2))
    if opts.json_out:
        opts.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
