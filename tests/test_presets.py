"""Preset loading: extends chains, merge rules, precedence, and every bad input's exact message."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorakit import overrides as layers, presets
from lorakit.errors import LorakitError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_child_wins_mappings_merge_lists_replace(tmp_path):
    parent = write(tmp_path / "parent.yaml", "command: sft\nlaunch: {gpus: '0,1'}\n"
                   "args: {lora_rank: 8, dataset: [a, b], gradient_checkpointing_kwargs: {x: 1}}\n")
    child = write(tmp_path / "child.yaml", "extends: parent.yaml\n"
                  "args: {lora_rank: 16, dataset: [c], gradient_checkpointing_kwargs: {y: 2}}\n")
    resolved = presets.load(str(child))
    assert resolved.data["args"] == {"lora_rank": 16, "dataset": ["c"],
                                     "gradient_checkpointing_kwargs": {"x": 1, "y": 2}}
    assert resolved.data["launch"] == {"gpus": "0,1"}
    assert resolved.sources["args.lora_rank"] == str(child)
    assert resolved.sources["launch.gpus"] == str(parent)
    assert resolved.chain == [str(child), str(parent)]


def test_extends_builtin_by_name_and_train_type_spelling_overrides_tuner_type(tmp_path):
    child = write(tmp_path / "c.yaml", "extends: zero2\nargs: {train_type: full, --lora-rank: 4}\n")
    args = presets.load(str(child)).data["args"]
    assert args["tuner_type"] == "full" and "train_type" not in args
    assert args["lora_rank"] == 4 and args["deepspeed"] == "zero2"


def test_overrides_win_and_are_recorded():
    resolved = presets.load("zero2")
    out = layers.apply_overrides(resolved, [("args.lora_rank", 16, "--set"),
                                             ("launch.gpus", "0,1", "--set")])
    assert out.data["args"]["lora_rank"] == 16 and out.data["launch"]["gpus"] == "0,1"
    assert out.sources["args.lora_rank"] == "--set"
    assert resolved.data["args"]["lora_rank"] == 8  # the loaded preset is not mutated


@pytest.mark.parametrize("item, expected", [
    ("lora_rank=16", ("args.lora_rank", 16)),
    ("--lora-alpha=32.5", ("args.lora_alpha", 32.5)),
    ("args.train_type=lora", ("args.tuner_type", "lora")),
    ("launch.gpus=0,1", ("launch.gpus", "0,1")),
    ("dataset=[a, b]", ("args.dataset", ["a", "b"])),
    ("system=", ("args.system", "")),
])
def test_parse_set(item, expected):
    assert layers.parse_set(item) == expected


BAD_FILES = [
    ("args: [1, 2\n", "{f}:2:1: YAML syntax error: expected ',' or ']', but got '<stream end>'\n"
                      "  hint: fix the YAML at that line (indentation, a missing ':' or an unclosed quote)"),
    ("- a\n- b\n", "{f}: a preset must be a YAML mapping, got list\n"
                   "  hint: start the file with keys such as 'command:', 'launch:' and 'args:'"),
    ("comand: sft\n", "{f}: unknown key 'comand'\n  hint: did you mean 'command'? allowed: "
                      "description, extends, command, launch, args, env"),
    ("command: train\n", "{f}: key 'command' must be one of sft, export, rlhf, infer, deploy, eval, rollout, "
                         "got 'train'\n  hint: 'sft' trains with swift sft, 'export' merges with swift export, "
                         "'rlhf' runs swift rlhf (DPO, KTO, GRPO...), infer/deploy/eval/rollout the swift command "
                         "of that name"),
    ("launch: 8\n", "{f}: key 'launch' must be a mapping, got int\n"
                    "  hint: write 'launch:' followed by indented 'key: value' lines"),
    ("launch: {gpu: '0'}\n", "{f}: unknown key launch.'gpu'\n  hint: did you mean 'gpus'? allowed: "
                             "gpus, nproc_per_node, nnodes, node_rank, master_addr, master_port, "
                     "cpus_per_task, time, requeue, image, namespace, volumes, service_account"),
    ("extends: 3\n", "{f}: key 'extends' must be a string, got int"),
    ("extends: nothere.yaml\n", "{f}: extends: preset file 'nothere.yaml' does not exist "
                                "(looked for {d}/nothere.yaml)\n  hint: give an existing YAML file, "
                                "or a built-in name: ddp, ddp_device_map, dpo, grpo_colocate, grpo_server, kto, merge, orpo, "
                                "simpo, single, zero2, zero3"),
    ("extends: zro2\n", "{f}: extends: unknown preset 'zro2'\n  hint: did you mean 'zero2'? "
                        "built-in presets: ddp, ddp_device_map, dpo, grpo_colocate, grpo_server, kto, merge, orpo, simpo, "
                        "single, zero2, zero3"),
]


@pytest.mark.parametrize("text, message", BAD_FILES)
def test_bad_preset_files(tmp_path, text, message):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(LorakitError) as err:
        presets.load(str(path))
    assert str(err.value) == message.format(f=path, d=tmp_path)
    assert err.value.code == 2


def test_extends_cycle(tmp_path):
    a = write(tmp_path / "a.yaml", "extends: b.yaml\n")
    b = write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(LorakitError) as err:
        presets.load(str(a))
    assert str(err.value) == (f"{b}: 'extends' makes a cycle: {a} -> {b} -> {a}\n"
                              "  hint: remove 'extends' from one of these files")


@pytest.mark.parametrize("item, message", [
    ("lora_rank", "--set 'lora_rank': expected KEY=VALUE\n  hint: e.g. --set lora_rank=16 or --set launch.gpus=0,1"),
    ("=3", "--set '=3': expected KEY=VALUE\n  hint: e.g. --set lora_rank=16 or --set launch.gpus=0,1"),
    ("launch.gpu=0", "--set 'launch.gpu=0': unknown launch key 'gpu'\n  hint: did you mean 'launch.gpus'? "
                     "launch keys: gpus, nproc_per_node, nnodes, node_rank, master_addr, master_port, "
                     "cpus_per_task, time, requeue, image, namespace, volumes, service_account"),
    ("system=[oops", "--set 'system=[oops': VALUE is not valid YAML\n  hint: quote it for the shell, "
                     "e.g. --set 'system=\"You are helpful: be brief\"'"),
])
def test_bad_set(item, message):
    with pytest.raises(LorakitError) as err:
        layers.parse_set(item)
    assert str(err.value) == message


def test_every_builtin_loads_and_has_a_description():
    for name in presets.builtin_names():
        data = presets.load(name).data
        assert data["description"] and data["command"] in ("sft", "export", "rlhf")


def test_every_shape_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path / "bad.yaml", "lanuch: {}\narg: {}\ncommand: train\n")
    with pytest.raises(LorakitError) as err:
        presets.load(str(path))
    assert str(err.value) == (
        f"{path}: 3 problems:\n"
        "  - unknown key 'lanuch' (did you mean 'launch'? allowed: description, extends, command, launch, args, env)\n"
        "  - unknown key 'arg' (did you mean 'args'? allowed: description, extends, command, launch, args, env)\n"
        "  - key 'command' must be one of sft, export, rlhf, infer, deploy, eval, rollout, got 'train' ('sft' trains "
        "with swift sft, 'export' merges with swift export, 'rlhf' runs swift rlhf (DPO, KTO, GRPO...), "
        "infer/deploy/eval/rollout the swift command of that name)\n"
        "  hint: fix each key above; `lorakit presets show zero2` shows a valid preset")


@pytest.mark.parametrize("section", ["args", "launch"])
def test_an_empty_section_changes_nothing(tmp_path, section):
    path = write(tmp_path / "p.yaml", f"extends: zero2\n{section}:\n  # nothing yet\n")
    assert presets.load(str(path)).data == presets.load("zero2").data | {}


def test_a_preset_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"extends: zero2\ndescription: caf\xe9\n")
    with pytest.raises(LorakitError) as err:
        presets.load(str(path))
    assert str(err.value) == f"{path}:2: not UTF-8 text (byte 0xe9)\n  hint: save the preset as UTF-8"
