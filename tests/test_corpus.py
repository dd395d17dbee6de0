"""A corpus of real ms-swift launches: what share of users' broken `swift sft` commands lorakit
stops before launch, and that it raises no false alarm on ms-swift's own examples.

tests/data/corpus/broken.yaml holds launches users reported broken in ms-swift's GitHub issues,
each with the command as the user wrote it, why it fails, the finding codes that are about that
mistake (`expected`), and the outcome measured with lorakit (`outcome`: stopped / fixed /
warned / missed, `stopped`: true/false). tests/data/corpus/valid.yaml holds commands from ms-swift's own
examples/ scripts.

Each command becomes a lorakit invocation mechanically (`to_launch`): `\\`-newline joined, `#`
comments dropped, standalone `VAR=value` lines become shell variables (not exported, as in
bash), `export VAR=value` and `VAR=value` in front of `swift sft` become the environment,
`$VAR`, `${VAR}` and `$(expr ...)` are expanded (from `environ`, what the machine's environment
holds, e.g. a platform's WORLD_SIZE, where the item gives it), `bash -c "..."` is looked into, and the tokens
after `swift sft` (or after ms-swift's entry script, `torchrun ... swift/cli/sft.py`, `python -m
swift.cli.rlhf`; up to a redirection, pipe or `&`; torchrun's --nproc_per_node, --nnodes, --node_rank,
--master_addr and --master_port become the NPROC_PER_NODE, ... that `swift sft` turns into them) become
flags after `--` of
`lorakit validate -p tests/data/corpus/bare.yaml --swift-version V` (`swift pt` is validated as
sft, whose TrainArguments checks it shares; `swift rlhf` with a preset that extends bare.yaml with
`command: rlhf`; `swift export --merge_lora`, `swift infer` and `swift deploy` become `lorakit
merge|infer|deploy --dry-run`, any other `swift export` (a quantization, to_ollama, to_mcore, ...)
`lorakit export --dry-run`, their --adapters/--ckpt_dir, --model, --infer_backend, --port and
--host (and export's --output_dir) as its options, the rest after `--`: a refusal there without a finding code is `cli.error`,
which counts only when its message has the item's `expected_text`). V is the ms-swift version
the issue names (major.minor, or the patch when it names one), else 3 for a command using 3.x names (`--train_type`), else 4.
Absolute paths in flag values are moved under the test's tmp dir, which is the working
directory; the local files a command needs (`files`) are made there, small and valid, except
the ones whose absence is the mistake, or with the rows the thread shows (`{jsonl: [...]}`,
`{json: [...]}`, `{text: ...}`), a checkpoint-N dir as ms-swift saves one (`lora-checkpoint:BASE`,
`{lora-checkpoint: BASE, r: 32, target_modules: [...]}`, `full-checkpoint:FAMILY:MODEL_TYPE`); a port another job held on the user's machine
(`busy_ports`) is listened on while lorakit runs, and the GPUs the user's machine has
(`gpus_present`, when the thread says) are what a fake `nvidia-smi -L` on PATH lists, and the
transformers it had (`transformers_present`), or the ms-swift it had when that is not the one the
flags are for (`swift_present`), is a site-packages dir first on sys.path.

- stopped: exit 2 with an error finding whose code is in `expected`.
- fixed: not stopped, but lorakit launches it right anyway (`fixed_by`: a finding it reports
  while fixing it, or the argv it renders).
- warned: neither, but a finding whose code is in `expected` is reported as a warning before
  launch (the issue prescribes a warning, not an error, for a layout that only runs slowly, e.g.
  several GPUs and no NPROC_PER_NODE, and for eval steps with no eval data). The user is told;
  the launch still goes ahead.
- missed: none of these (an exit 2 for another reason counts as missed, and is reported).

`pytest -s tests/test_corpus.py` prints the table and three shares: stopped; stopped or fixed;
stopped, fixed or warned.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conftest import run_cli

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
BARE = CORPUS / "bare.yaml"
BROKEN = yaml.safe_load((CORPUS / "broken.yaml").read_text(encoding="utf-8"))
VALID = yaml.safe_load((CORPUS / "valid.yaml").read_text(encoding="utf-8"))

# --- shell text -> environment and swift sft flags -------------------------------------------

_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_EXPR = re.compile(r"\$\(\s*expr\s+([^)]*)\)")
_STOP = {"|", "||", "&", "&&", ";", ">", ">>", "<", "2>", "2>&1", "&>", "1>"}
_WRAPPERS = {"nohup", "time", "exec"}
# `swift pt` is sft's pipeline with pretraining defaults (ms-swift's cli/pt.py runs the same
# TrainArguments checks): lorakit validates it as sft. `swift rlhf` gets a preset with command: rlhf.
# `swift export --merge_lora`, `swift infer` and `swift deploy` go to `lorakit merge|infer|deploy --dry-run`,
# any other `swift export` to `lorakit export --dry-run`.
_SUBCOMMANDS = ("sft", "pt", "rlhf", "export", "infer", "deploy")
_SERVING = {"export": "merge", "infer": "infer", "deploy": "deploy"}
_CLI_SCRIPT = re.compile(r"(?:^|/)swift[/.]cli[/.](sft|pt|rlhf|export|infer|deploy)(?:\.py)?$")
# Flags ms-swift 3.x has and 4.x renamed or removed: a command using one targets 3.x.
_THREE_X = {"--train_type", "--model_id_or_path", "--sft_type"}
_TORCHRUN = {"--nproc_per_node": "NPROC_PER_NODE", "--nnodes": "NNODES", "--node_rank": "NODE_RANK",
             "--master_addr": "MASTER_ADDR", "--master_port": "MASTER_PORT"}


@dataclass
class Launch:
    env: dict[str, str]
    flags: list[str]
    shell_vars: dict[str, str] = field(default_factory=dict)
    command: str = "sft"  # the swift subcommand: sft, pt (validated as sft) or rlhf


def _expand(text: str, variables: dict[str, str]) -> str:
    text = _VAR.sub(lambda m: variables.get(m.group(1) or m.group(2), ""), text)

    def expr(m: re.Match) -> str:
        words = m.group(1).split()
        value = int(words[0])
        for op, num in zip(words[1::2], words[2::2]):
            value = {"/": value // int(num), "*": value * int(num), "+": value + int(num),
                     "-": value - int(num)}[op]
        return str(value)

    return _EXPR.sub(expr, text)


def _statements(text: str) -> list[str]:
    """Split shell text into statements the way bash reads it: `\\`-newline outside single
    quotes joins lines, a newline outside quotes ends a statement, and `#` at the start of a
    word outside quotes starts a comment (so `swift/self-cognition#1000` is not one)."""
    text = text.replace("\r\n", "\n")
    out: list[str] = []
    cur: list[str] = []
    quote = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote == "'":
            cur.append(ch)
            quote = None if ch == "'" else quote
        elif ch == "\\" and i + 1 < len(text):
            if text[i + 1] != "\n":
                cur.append(text[i:i + 2])
            i += 2
            continue
        elif quote == '"':
            cur.append(ch)
            quote = None if ch == '"' else quote
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == "#" and (not cur or cur[-1] in " \t"):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif ch == "\n":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def _torchrun_env(launcher: list[str]) -> dict[str, str]:
    """torchrun's own options before ms-swift's entry script, as the environment `swift sft` turns into
    those options (swift/cli/main.py: NPROC_PER_NODE -> --nproc_per_node, ...); unset ones are left out."""
    if not any(w == "torchrun" or w.endswith("/torchrun") or w in ("torch.distributed.run",
               "torch.distributed.launch") for w in launcher):
        return {}
    env, i = {}, 0
    while i < len(launcher):
        name, eq, value = launcher[i].partition("=")
        if not eq and i + 1 < len(launcher) and not launcher[i + 1].startswith("-"):
            value, i = launcher[i + 1], i + 1
        key = _TORCHRUN.get("--" + name.lstrip("-").replace("-", "_"))  # --nproc-per-node too
        if key and value:
            env[key] = value
        i += 1
    return env


def to_launch(command: str, shell: str = "bash", environ: dict[str, str] | None = None) -> Launch:
    """The environment and the flags after `swift sft` that bash (or Windows cmd) would pass;
    `environ`: what the machine's environment already holds (a platform's WORLD_SIZE, RANK)."""
    shell_vars: dict[str, str] = {}
    exported: dict[str, str] = dict(environ or {})
    found: Launch | None = None
    for statement in _statements(command):
        if not statement.strip():
            continue
        if shell == "cmd":  # cmd.exe: no quoting rules worth the name here, `\` is a character
            words = statement.split()
        else:
            words = shlex.split(_expand(statement, {**exported, **shell_vars}))
        if not words:
            continue
        if words[0] == "export":
            for word in words[1:]:
                if _ASSIGN.match(word):
                    name, value = word.split("=", 1)
                    exported[name] = value
            continue
        prefix: dict[str, str] = {}
        while words and _ASSIGN.match(words[0]):
            name, value = words.pop(0).split("=", 1)
            prefix[name] = value
        if not words:  # assignments alone: shell variables, not the environment
            shell_vars.update(prefix)
            continue
        while words and words[0] in _WRAPPERS:
            words.pop(0)
        if words[:2] == ["bash", "-c"] and len(words) > 2:
            inner = to_launch(words[2], shell)
            found = Launch({**exported, **prefix, **inner.env}, inner.flags, shell_vars, inner.command)
            continue
        for i in range(len(words)):
            # `swift sft ...`, or ms-swift's entry script run directly (`torchrun ... swift/cli/sft.py ...`,
            # `python -m swift.cli.sft ...`), which is what `swift sft` itself runs
            script = _CLI_SCRIPT.search(words[i])
            if script:
                command, start = script.group(1), i + 1
            elif (words[i] == "swift" or words[i].endswith("/swift")) and words[i + 1:i + 2] and \
                    words[i + 1] in _SUBCOMMANDS:
                command, start = words[i + 1], i + 2
            else:
                continue
            flags = []
            for word in words[start:]:
                if word in _STOP:
                    break
                flags.append(word)
            torchrun = _torchrun_env(words[:i]) if script else {}
            found = Launch({**exported, **prefix, **torchrun}, flags, dict(shell_vars), command)
            break
    assert found is not None, f"no `swift sft|pt|rlhf|export|infer|deploy` in:\n{command}"
    return found


def swift_version(item: dict, flags: list[str]) -> str:
    if item.get("swift_version"):
        return str(item["swift_version"])
    return "3" if _THREE_X & set(flags) else "4"


def _under(root: Path, path: str) -> Path:
    p = Path(path)
    return root / p.relative_to("/") if p.is_absolute() else root / p


def move_paths(flags: list[str], root: Path) -> list[str]:
    """Absolute paths in flag values, moved under `root` (the test's working directory)."""
    return [str(_under(root, f)) if f.startswith("/") and len(f) > 1 else f for f in flags]


# --- the local files a command needs ----------------------------------------------------------

_ROWS = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
         for q, a in [("What is 2+2?", "4"), ("Name a colour.", "Blue."), ("Say hello.", "Hello!"),
                      ("Capital of France?", "Paris."), ("Count to three.", "1, 2, 3."),
                      ("Is water wet?", "Yes."), ("Spell cat.", "C-A-T."), ("After Monday?", "Tuesday.")] * 4]
_QUERY_ROWS = [{"query": r["messages"][0]["content"], "response": r["messages"][1]["content"]} for r in _ROWS]

_LLM = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
_DIMS = dict(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
             num_key_value_heads=2, vocab_size=32, max_position_embeddings=512, torch_dtype="bfloat16")
# family -> (config.json, the LLM's layer prefix, other Linear modules (vision tower, aligner))
FAMILIES = {
    "qwen2": ({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", **_DIMS},
              "model.layers.0", []),
    "qwen3": ({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", **_DIMS},
              "model.layers.0", []),
    "qwen2_5_vl": ({"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
                    "vision_config": {"depth": 1, "hidden_size": 8}, **_DIMS},
                   "model.layers.0", ["visual.blocks.0.attn.qkv", "visual.blocks.0.attn.proj",
                                      "visual.merger.mlp.0"]),
    "qwen3_vl": ({"architectures": ["Qwen3VLForConditionalGeneration"], "model_type": "qwen3_vl",
                  "text_config": {"model_type": "qwen3_vl_text", **_DIMS},
                  "vision_config": {"depth": 1, "hidden_size": 8}},
                 "model.language_model.layers.0", ["model.visual.blocks.0.attn.qkv",
                                                   "model.visual.blocks.0.attn.proj"]),
    "internvl_chat": ({"architectures": ["InternVLChatModel"], "model_type": "internvl_chat",
                       "llm_config": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", **_DIMS},
                       "vision_config": {"model_type": "intern_vit_6b", "hidden_size": 8}},
                      "language_model.model.layers.0", ["vision_model.encoder.layers.0.attn.qkv",
                                                        "vision_model.encoder.layers.0.attn.proj", "mlp1.1"]),
    "deepseek_vl2": ({"architectures": ["DeepseekVLV2ForCausalLM"], "model_type": "deepseek_vl_v2",
                      "language_config": {"model_type": "deepseek_v2", **_DIMS},
                      "vision_config": {"model_type": "vision", "width": 8}},
                     "language.model.layers.0", ["vision.blocks.0.attn.qkv", "projector.layers.0"]),
    "qwen2_vl": ({"architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl",
                  "vision_config": {"depth": 1, "embed_dim": 8}, **_DIMS},
                 "model.layers.0", ["visual.blocks.0.attn.qkv", "visual.blocks.0.attn.proj", "visual.merger.mlp.0"]),
    # Qwen3-Omni nests its LLM under thinker_config.text_config (its MoE experts are left out here)
    "qwen3_omni": ({"architectures": ["Qwen3OmniMoeForConditionalGeneration"], "model_type": "qwen3_omni_moe",
                    "thinker_config": {"model_type": "qwen3_omni_moe_thinker",
                                       "text_config": {"model_type": "qwen3_omni_moe_text", **_DIMS},
                                       "vision_config": {"depth": 1, "hidden_size": 8},
                                       "audio_config": {"d_model": 8}}},
                   "thinker.model.layers.0", ["thinker.visual.blocks.0.attn.qkv",
                                              "thinker.audio_tower.layers.0.self_attn.q_proj"]),
    "qwen2_audio": ({"architectures": ["Qwen2AudioForConditionalGeneration"], "model_type": "qwen2_audio",
                     "text_config": {"model_type": "qwen2", **_DIMS},
                     "audio_config": {"model_type": "qwen2_audio_encoder", "d_model": 8}},
                    "language_model.model.layers.0", ["audio_tower.layers.0.self_attn.q_proj",
                                                      "multi_modal_projector.linear"]),
}


def _write_safetensors(path: Path, tensors: dict[str, tuple[int, int]]) -> None:
    header, offset = {}, 0
    for name, shape in tensors.items():
        size = shape[0] * shape[1] * 2  # BF16
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(offset))


def make_model(path: Path, family: str) -> None:
    config, layer, others = FAMILIES[family]
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    shapes = {f"{layer}.{m}.weight": (16, 8) if m.endswith(("gate_proj", "up_proj")) else
              (8, 16) if m.endswith("down_proj") else (8, 8) for m in _LLM}
    body = layer.rsplit(".layers.0", 1)[0]
    shapes[f"{body}.embed_tokens.weight"] = (32, 8)
    shapes.update({f"{m}.weight": (8, 8) for m in others})
    head = "lm_head" if body.count(".") == 0 else body.rsplit(".", 1)[0] + ".lm_head"
    shapes[f"{head}.weight"] = (32, 8)
    _write_safetensors(path / "model.safetensors", shapes)


def make_checkpoint(path: Path, kind: str, root: Path, adapter: dict | None = None) -> None:
    """A complete checkpoint-N dir as ms-swift's Trainer saves it (trainer_state.json last):
    `lora-checkpoint:<base model>` holds an adapter, `full-checkpoint:<family>:<model_type>` the whole
    model; ms-swift copies the run's args (model, model_type) into each checkpoint (trainers/mixin.py)."""
    form, base = kind.split(":", 1)
    if form == "lora-checkpoint":
        base = str(_under(root, base)) if base.startswith("/") else base
        path.mkdir(parents=True, exist_ok=True)
        (path / "adapter_config.json").write_text(json.dumps(
            {"peft_type": "LORA", "r": 8, "lora_alpha": 32, "base_model_name_or_path": base,
             "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], **(adapter or {})}))
        _write_safetensors(path / "adapter_model.safetensors", {"base_model.model.lora_A.weight": (8, 8)})
        args = {"model": base, "tuner_type": "lora", "train_type": "lora"}
    else:
        family, _, model_type = base.partition(":")
        make_model(path, family)
        args = {"model": "base", "model_type": model_type or family, "tuner_type": "full", "train_type": "full"}
    (path / "args.json").write_text(json.dumps(args))
    step = int(path.name.rsplit("-", 1)[-1]) if path.name.rsplit("-", 1)[-1].isdigit() else 1
    (path / "trainer_state.json").write_text(json.dumps(
        {"global_step": step, "max_steps": step, "log_history": [{"loss": 1.0, "step": step}]}))


def make_files(files: dict, root: Path) -> None:
    for where, kind in (files or {}).items():
        path = _under(root, where)
        if isinstance(kind, dict) and "lora-checkpoint" in kind:  # {lora-checkpoint: base, r: 32, ...}
            adapter = {k: v for k, v in kind.items() if k != "lora-checkpoint"}
            make_checkpoint(path, f"lora-checkpoint:{kind['lora-checkpoint']}", root, adapter)
            continue
        if isinstance(kind, dict):  # the rows the thread shows: {jsonl: [rows]}, {json: [rows]}, {text: "..."}
            path.parent.mkdir(parents=True, exist_ok=True)
            (form, body), = kind.items()
            text = {"jsonl": lambda: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in body),
                    "json": lambda: json.dumps(body, ensure_ascii=False), "text": lambda: body,
                    # {plugin: [names]}: an --external_plugins file with the real one's reward
                    # registrations (ms-swift's examples write `orms['name'] = Class`), bodies left out
                    "plugin": lambda: "from swift.plugin import ORM, orms\n\n" + "".join(
                        f"orms[{n!r}] = ORM\n" for n in body)}[form]()
            path.write_text(text, encoding="utf-8")
            continue
        if kind.startswith("model:"):
            make_model(path, kind.split(":", 1)[1])
            continue
        if kind.startswith(("lora-checkpoint:", "full-checkpoint:")):
            make_checkpoint(path, kind, root)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = _QUERY_ROWS if kind.endswith("-query") else _ROWS
        if kind == "text":  # a file that only has to exist (a plugin, a script)
            path.write_text("", encoding="utf-8")
        elif kind.startswith("jsonl"):
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        elif kind.startswith("json"):
            path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        else:
            raise AssertionError(f"unknown fixture kind {kind!r} for {where}")


# --- running lorakit ---------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    findings: list[dict]
    version: str
    flags: list[str]
    env: dict[str, str]
    stderr: str
    argv: list[str] | None = None

    def errors(self) -> list[dict]:
        return [f for f in self.findings if f["level"] == "error"]

    def codes(self, level: str | None = None) -> set[str]:
        return {f["code"] for f in self.findings if level is None or f["level"] == level}


def _hold_ports(ports: list[int]) -> list[socket.socket]:
    """Listen on the ports another job held on the user's machine (`busy_ports`), as that job did."""
    held = []
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("", port))
            sock.listen()
            held.append(sock)
        except OSError:  # already in use here: busy, as on the user's machine
            sock.close()
    return held


def _machine_gpus(count: int | None, root: Path) -> dict[str, str]:
    """The user's machine's GPUs (`gpus_present`): a fake `nvidia-smi -L` first on PATH."""
    if not count:
        return {}
    bin_dir = root / "_machine_bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    lines = "".join(f"GPU {i}: NVIDIA A100-SXM4-80GB (UUID: GPU-{i:08d})\\n" for i in range(count))
    smi.write_text(f"#!/bin/sh\n[ \"$1\" = -L ] || exit 9\nprintf '{lines}'\n")
    smi.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


# ms-swift's flags that are lorakit merge/infer/deploy options (the rest go after `--`)
_SERVING_OPTIONS = {"--adapters": "--adapters", "--ckpt_dir": "--adapters", "--model": "--model",
                    "--infer_backend": "--infer-backend", "--port": "--port", "--host": "--host"}
_FINDING_LINE = re.compile(r"^(error|warning|info)\[([\w.]+)\] (\S+?):? ", re.M)


def serving_argv(command: str, flags: list[str]) -> list[str]:
    """`swift export --merge_lora|infer|deploy` flags as `lorakit merge|infer|deploy` options + `--` flags."""
    options, rest, i = [], [], 0
    while i < len(flags):
        flag = flags[i]
        values = []
        while i + 1 + len(values) < len(flags) and not flags[i + 1 + len(values)].startswith("--"):
            values.append(flags[i + 1 + len(values)])
        if command == "export" and flag == "--output_dir":  # lorakit merge's and export's own option
            options += ["--output-dir", *values]
        elif flag in _SERVING_OPTIONS:
            for value in values:  # --adapters a b: repeated, as lorakit takes it
                options += [_SERVING_OPTIONS[flag], value]
        elif not (command == "export" and flag == "--merge_lora"):  # merge is export --merge_lora true
            rest += [flag, *values]
        i += 1 + len(values)
    return [_serving_command(command, flags), *options, *(["--"] + rest if rest else [])]


def _serving_command(command: str, flags: list[str]) -> str:
    """`swift export --merge_lora true` (with a quantization after it or not) is lorakit merge;
    any other `swift export` (quantize, to_ollama, to_cached_dataset, to_mcore/to_hf) lorakit export."""
    if command != "export":
        return _SERVING[command]
    at = flags.index("--merge_lora") if "--merge_lora" in flags else -1
    merging = at >= 0 and (at + 1 == len(flags) or flags[at + 1].lower() in ("true", "1") or flags[at + 1].startswith("--"))
    return "merge" if merging else "export"


def _serving_findings(code: int, stdout: str, stderr: str) -> list[dict]:
    """merge/infer/deploy --dry-run: findings from the JSON, or from stderr when it refuses; a refusal
    without a finding (lorakit: error: ...) is one `cli.error` finding with the message."""
    if code == 0:
        return json.loads(stdout)["findings"]
    found = [{"code": m.group(2), "level": m.group(1), "key": m.group(3), "message": stderr}
             for m in _FINDING_LINE.finditer(stderr)]
    if not any(f["level"] == "error" for f in found):
        found.append({"code": "cli.error", "level": "error", "key": "", "message": stderr.strip()})
    return found


def _trackers(item: dict) -> list[str]:
    """The --report_to values of the item's command (none, all and tensorboard, which ms-swift
    itself requires, aside)."""
    flags = to_launch(item["command"], item.get("shell", "bash"), item.get("environ")).flags
    out: list[str] = []
    for at, flag in enumerate(flags):
        if flag in ("--report_to", "--report-to"):
            for value in flags[at + 1:]:
                if value.startswith("--"):
                    break
                out += [v for v in value.split(",") if v and v not in ("none", "all", "tensorboard")]
    return out


def run_item(item: dict, root: Path) -> Outcome:
    """With `transformers_present` (the thread's machine had that transformers), a site-packages
    dir holding it is first on sys.path while lorakit runs (test_requires.fake_site); with
    `packages_present`, that dir holds those distributions. By default it holds the trackers the
    command reports to (wandb, swanlab, ...): the scripts' machines had them (their runs got past
    the Trainer's start, where a missing one fails); `packages_present: []` is a machine without."""
    version = item.get("transformers_present")
    site_dir = root / "_machine_site" / "site"
    if item.get("swift_present"):  # the thread's machine ran another ms-swift than the flags' (#3321)
        (site_dir / f"ms_swift-{item['swift_present']}.dist-info").mkdir(parents=True)
    elif version:
        from test_requires import fake_site

        major, *rest = str(item.get("swift_version") or "4").split(".")
        swift = ".".join([major, *(rest + ["0", "0"])[:2]])  # the thread's ms-swift, as installed there
        fake_site(root / "_machine_site", str(version), swift=swift)
    for name in item.get("packages_present", _trackers(item)):
        (site_dir / f"{name}-1.0.dist-info").mkdir(parents=True)
    if not site_dir.is_dir():
        return _run_item(item, root)
    site = str(site_dir)
    sys.path.insert(0, site)
    try:
        return _run_item(item, root)
    finally:
        sys.path.remove(site)


def _run_item(item: dict, root: Path) -> Outcome:
    launch = to_launch(item["command"], item.get("shell", "bash"), item.get("environ"))
    make_files(item.get("files"), root)
    flags = move_paths(launch.flags, root)
    version = swift_version(item, launch.flags)
    old = Path.cwd()
    os.chdir(root)
    held = _hold_ports(item.get("busy_ports") or [])
    env = {**launch.env, **_machine_gpus(item.get("gpus_present"), root)}
    if launch.command in _SERVING:
        head, *tail = serving_argv(launch.command, flags)
        cut = tail.index("--") if "--" in tail else len(tail)
        try:
            result = run_cli([head, *tail[:cut], "--swift-version", version, "--dry-run", "--format", "json",
                              *tail[cut:]], env=env)
        finally:
            os.chdir(old)
            for sock in held:
                sock.close()
        assert result.code in (0, 2), result.stderr
        return Outcome(result.code, _serving_findings(result.code, result.stdout, result.stderr), version, flags,
                       launch.env, result.stderr, json.loads(result.stdout)["argv"] if result.code == 0 else None)
    preset, run = BARE, "train"
    if launch.command == "rlhf":  # the same bare preset, run as `swift rlhf`
        preset, run = root / "_bare_rlhf.yaml", "rlhf"
        preset.write_text(f"extends: {BARE}\ncommand: rlhf\n", encoding="utf-8")
    try:
        result = run_cli(["validate", "-p", str(preset), "--swift-version", version, "--json", "--", *flags],
                         env=env)
        argv = None
        if item.get("fixed_by", {}).get("argv_has") or item.get("fixed_by", {}).get("argv_lacks"):
            dry = run_cli([run, "-p", str(preset), "--swift-version", version, "--dry-run", "--format", "json",
                           "--", *flags], env=env)
            argv = json.loads(dry.stdout)["argv"] if dry.code == 0 else None
    finally:
        os.chdir(old)
        for sock in held:
            sock.close()
    assert result.code in (0, 2), result.stderr
    findings = json.loads(result.stdout)["findings"]
    return Outcome(result.code, findings, version, flags, launch.env, result.stderr, argv)


def classify(item: dict, out: Outcome) -> str:
    expected = set(item["expected"])
    # `expected_text`: a merge/infer/deploy refusal without a finding code (cli.error) counts only
    # when it names the mistake
    errors = [f for f in out.errors() if f["code"] != "cli.error" or item.get("expected_text", "\0") in f["message"]]
    if out.code == 2 and expected & {f["code"] for f in errors}:
        return "stopped"
    fixed_by = item.get("fixed_by") or {}
    if out.code == 0 and fixed_by:
        ok = True
        if fixed_by.get("codes"):
            ok &= bool(set(fixed_by["codes"]) & out.codes())
        if fixed_by.get("argv_has") or fixed_by.get("argv_lacks"):
            ok &= out.argv is not None
            ok &= out.argv is not None and all(a in out.argv for a in fixed_by.get("argv_has", []))
            ok &= out.argv is not None and not any(a in out.argv for a in fixed_by.get("argv_lacks", []))
        if ok:
            return "fixed"
    if expected & out.codes("warning"):
        return "warned"
    return "missed"


# Better to worse: a regression is a move down this order.
RANK = {"missed": 0, "warned": 1, "fixed": 2, "stopped": 3}

_CACHE: dict[str, tuple[str, Outcome]] = {}


def measure(item: dict, tmp_path_factory) -> tuple[str, Outcome]:
    if item["id"] not in _CACHE:
        out = run_item(item, tmp_path_factory.mktemp(re.sub(r"\W", "_", item["id"])[:40]))
        _CACHE[item["id"]] = (classify(item, out) if "expected" in item else "", out)
    return _CACHE[item["id"]]


def _error_lines(out: Outcome) -> list[str]:
    return [f"error[{f['code']}] {f['key']}: {f['message']}" for f in out.errors()]


# --- the corpus itself ------------------------------------------------------------------------


def test_the_corpus_is_well_formed():
    ids = [i["id"] for i in BROKEN + VALID]
    assert len(ids) == len(set(ids)), "ids must be unique"
    for item in BROKEN:
        assert {"id", "source", "command", "why", "expected", "stopped", "outcome"} <= set(item), item["id"]
        assert item["outcome"] in RANK, item["id"]
        assert item["stopped"] == (item["outcome"] == "stopped"), item["id"]
        assert item["outcome"] == "stopped" or item.get("miss"), f"{item['id']}: say why lorakit misses it"
        assert item["source"].startswith("https://github.com/modelscope/ms-swift/"), item["id"]
    for item in VALID:
        assert {"id", "source", "command"} <= set(item), item["id"]
        assert item["source"].startswith("https://github.com/modelscope/ms-swift/"), item["id"]


def test_the_translation_is_the_shell_s():
    # a standalone assignment is a shell variable, expanded, not exported; a prefix is the environment
    launch = to_launch("n=2\n\nCUDA_VISIBLE_DEVICES=0,1 \\\nNPROC_PER_NODE=$n \\\nswift sft \\\n"
                       "    --dataset 'swift/self-cognition#1000' \\\n"
                       "    --gradient_accumulation_steps $(expr 16 / $n)")
    assert launch.env == {"CUDA_VISIBLE_DEVICES": "0,1", "NPROC_PER_NODE": "2"}
    assert launch.flags == ["--dataset", "swift/self-cognition#1000", "--gradient_accumulation_steps", "8"]
    # a blank line between the variables and the command: they are not the command's environment
    assert to_launch("A=1 \\\nB=2 \\\n\nswift sft --x 1").env == {}
    # a line without `\\` ends the command; an unquoted # inside a word is not a comment
    assert to_launch("swift sft --a 1 # note\n  --b 2\n").flags == ["--a", "1"]
    assert to_launch("swift sft --dataset a/b#10 \\\n  --c 3").flags == ["--dataset", "a/b#10", "--c", "3"]
    # bash -c "..." and a redirection after it
    inner = to_launch('x=4\nnohup bash -c "\nNPROC_PER_NODE=$x \\\nswift sft --m a \\\n --n 1 " > log 2>&1 &')
    assert inner.env == {"NPROC_PER_NODE": "4"} and inner.flags == ["--m", "a", "--n", "1"]
    # export is the environment
    assert to_launch("export CUDA_VISIBLE_DEVICES=0\nswift sft --m a | tee log").env == {"CUDA_VISIBLE_DEVICES": "0"}
    # swift rlhf and swift pt are read the same way, and say which they were
    assert to_launch("swift rlhf --rlhf_type dpo --m a").command == "rlhf"
    assert to_launch("swift pt --m a").flags == ["--m", "a"] and to_launch("swift pt --m a").command == "pt"
    # ms-swift's entry script under torchrun or python -m is the same command
    assert to_launch("torchrun $ARGS swift/cli/sft.py --m a \\\n --n 1").flags == ["--m", "a", "--n", "1"]
    assert to_launch("python3 -m swift.cli.rlhf --rlhf_type grpo").command == "rlhf"
    # torchrun's own options are the environment `swift sft` turns into them; unset ones are left out
    run = to_launch("n=4\nCUDA_VISIBLE_DEVICES=0,1,2,3 \\\ntorchrun --master_port 29500 --nproc_per_node=$n "
                    "--nnodes=2 --node_rank=0 --master_addr=$addr swift/cli/sft.py --m a")
    assert run.env == {"CUDA_VISIBLE_DEVICES": "0,1,2,3", "MASTER_PORT": "29500", "NPROC_PER_NODE": "4",
                       "NNODES": "2", "NODE_RANK": "0"} and run.flags == ["--m", "a"]
    # the machine's own environment (a platform's WORLD_SIZE and RANK) is what $VAR reads
    dlc = to_launch("NNODES=$WORLD_SIZE \\\nNODE_RANK=$RANK \\\nswift sft --m a",
                    environ={"WORLD_SIZE": "2", "RANK": "1"})
    assert dlc.env == {"WORLD_SIZE": "2", "RANK": "1", "NNODES": "2", "NODE_RANK": "1"}
    # swift export --merge_lora / infer / deploy: lorakit merge / infer / deploy options, the rest after --
    export = to_launch("swift export --adapters a/checkpoint-1 b --merge_lora true --output_dir m")
    assert serving_argv(export.command, export.flags) == [
        "merge", "--adapters", "a/checkpoint-1", "--adapters", "b", "--output-dir", "m"]
    quant = to_launch("swift export --model m --quant_bits 4 --quant_method awq --output_dir q")
    assert serving_argv(quant.command, quant.flags) == [
        "export", "--model", "m", "--output-dir", "q", "--", "--quant_bits", "4", "--quant_method", "awq"]
    infer = to_launch("swift infer --ckpt_dir c --infer_backend pt --max_new_tokens 8")
    assert serving_argv(infer.command, infer.flags) == [
        "infer", "--adapters", "c", "--infer-backend", "pt", "--", "--max_new_tokens", "8"]


@pytest.mark.parametrize("item", VALID, ids=[i["id"] for i in VALID])
def test_valid_example_raises_no_error(item, tmp_path_factory):
    outcome, out = measure(item, tmp_path_factory)
    errors = _error_lines(out)
    print(f"\n{item['id']}: exit {out.code} (--swift-version {out.version})" + "".join(f"\n  {e}" for e in errors))
    if item.get("false_alarm"):
        # a known false alarm, recorded as measured; once lorakit stops raising it this fails, so the
        # record cannot outlive the defect
        if out.code == 2 and any(item["false_alarm"] in e for e in errors):
            pytest.xfail(f"known false alarm: {item['false_alarm']}")
        assert errors, f"{item['id']}: lorakit no longer raises {item['false_alarm']!r}: drop its false_alarm"
    assert out.code == 0 and not errors, f"false alarm on {item['source']}:\n" + "\n".join(errors)


@pytest.mark.parametrize("item", BROKEN, ids=[i["id"] for i in BROKEN])
def test_broken_launch_outcome_does_not_regress(item, tmp_path_factory):
    outcome, out = measure(item, tmp_path_factory)
    errors = _error_lines(out)
    print(f"\n{item['id']}: {outcome} (recorded {item['outcome']}), exit {out.code}, --swift-version "
          f"{out.version}" + "".join(f"\n  {e}" for e in errors))
    rank = RANK
    assert rank[outcome] >= rank[item["outcome"]], (
        f"{item['id']} was {item['outcome']}, now {outcome} (expected one of {item['expected']}):\n"
        + "\n".join(errors or ["(no error finding)"]))
    if rank[outcome] > rank[item["outcome"]]:
        print(f"  -> better than recorded: update broken.yaml ({item['id']}: {outcome})")


def test_share_stopped(tmp_path_factory):
    results = [(item, *measure(item, tmp_path_factory)) for item in BROKEN]
    counts = {k: sum(1 for _, o, _ in results if o == k) for k in RANK}
    n = len(results)
    share = counts["stopped"] / n
    recorded = sum(1 for item in BROKEN if item["stopped"]) / len(BROKEN)
    caught = (counts["stopped"] + counts["fixed"]) / n
    told = (counts["stopped"] + counts["fixed"] + counts["warned"]) / n
    print(f"\nbroken launches: {n}; stopped {counts['stopped']}, fixed by lorakit {counts['fixed']}, "
          f"warned {counts['warned']}, missed {counts['missed']}\n"
          f"  stopped {share:.0%}; stopped or fixed {caught:.0%}; stopped, fixed or warned {told:.0%}")
    for item, outcome, out in results:
        other = "" if outcome == "stopped" or out.code == 0 else " (exit 2 for another reason)"
        print(f"  {outcome:8} {item['id']}{other}")
    assert share >= recorded, f"share stopped fell from {recorded:.0%} to {share:.0%}"


def test_false_alarms_on_valid_commands(tmp_path_factory):
    results = [(item, measure(item, tmp_path_factory)[1]) for item in VALID]
    alarms = [(item, out) for item, out in results if out.code != 0 or out.errors()]
    print(f"\nvalid commands: {len(results)}; false alarms {len(alarms)}")
    for item, out in alarms:
        print(f"  {item['id']} ({item['source']})" + "".join(f"\n    {e}" for e in _error_lines(out)))
    known = [item for item, out in alarms if item.get("false_alarm")]
    assert len(alarms) == len(known), "a valid command is refused that valid.yaml does not record"
