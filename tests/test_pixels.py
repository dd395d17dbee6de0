"""A Qwen-VL model with images and no cap on their resolution (checks/pixels.py, ms-swift #2854)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli, swift_source

ROW = {"messages": [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": "a cat"}]}


def setup(root: Path, model_type: str = "qwen2_vl", images: bool = True, name: str = "Qwen2-VL-2B-Instruct") -> None:
    model = root / name
    model.mkdir()
    arch = {"qwen2_vl": "Qwen2VLForConditionalGeneration", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
            "llava": "LlavaForConditionalGeneration"}[model_type]
    (model / "config.json").write_text(json.dumps({"architectures": [arch], "model_type": model_type,
                                                   "vision_config": {}}))
    (root / "a.png").write_bytes(b"\x89PNG")
    row = {**ROW, "images": ["a.png"]} if images else {"messages": [{"role": "user", "content": "hi"},
                                                                      {"role": "assistant", "content": "hello"}]}
    (root / "d.jsonl").write_text(json.dumps(row) + "\n")


def said(*extra: str, env: dict | None = None, name: str = "Qwen2-VL-2B-Instruct") -> list[str]:
    result = run_cli(["validate", "-p", "single", "--", "--model", name, "--dataset", "d.jsonl", "--split_dataset_ratio", "0",
                      *extra], env=env)
    assert result.code == 0, result.stderr
    return [line for line in result.stderr.splitlines() if "data.images.max_pixels" in line]


def test_images_for_qwen_vl_without_a_cap_are_a_warning(tmp_path, monkeypatch):
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAX_PIXELS", raising=False)
    monkeypatch.delenv("IMAGE_MAX_TOKEN_NUM", raising=False)
    assert said() == [
        f"warning[data.images.max_pixels] env.MAX_PIXELS: {tmp_path}/d.jsonl has images for a Qwen-VL model and "
        "nothing caps their resolution (no MAX_PIXELS, IMAGE_MAX_TOKEN_NUM, max_pixels or model_kwargs cap): each image "
        "becomes up to "
"16384 visual tokens (qwen_vl_utils' default), and the step that meets a large one can run out of memory"]


@pytest.mark.parametrize("extra, env", [
    (("--max_pixels", "1003520"), None), ((), {"MAX_PIXELS": "1003520"}), ((), {"IMAGE_MAX_TOKEN_NUM": "1280"}),
    # ms-swift copies model_kwargs keys, upper-cased, into the environment (a hostile review)
    (("--model_kwargs", '{"MAX_PIXELS": 1003520}'), None), (("--model_kwargs", '{"max_pixels": 1003520}'), None)])
def test_any_cap_silences_it(tmp_path, monkeypatch, extra, env):
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAX_PIXELS", raising=False)
    monkeypatch.delenv("IMAGE_MAX_TOKEN_NUM", raising=False)
    assert said(*extra, env=env) == []


def test_the_presets_env_section_is_a_cap(tmp_path, monkeypatch):
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAX_PIXELS", raising=False)
    (tmp_path / "vl.yaml").write_text("extends: single\nenv:\n  MAX_PIXELS: '1003520'\n")
    result = run_cli(["validate", "-p", "vl.yaml", "--", "--model", "Qwen2-VL-2B-Instruct", "--dataset", "d.jsonl"])
    assert "data.images.max_pixels" not in result.stderr, result.stderr


@pytest.mark.parametrize("model_type, images, name", [("llava", True, "llava-1.5-7b-hf"), ("qwen2_vl", False, "Qwen2-VL-2B-Instruct")])
def test_other_models_and_text_rows_are_not_its_business(tmp_path, monkeypatch, model_type, images, name):
    """A dir named like a registered model is that model (ms-swift matches the name first)."""
    setup(tmp_path, model_type, images, name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAX_PIXELS", raising=False)
    monkeypatch.delenv("IMAGE_MAX_TOKEN_NUM", raising=False)
    assert said(name=name) == []


def test_a_qwen_vl_dir_by_its_config_alone(tmp_path, monkeypatch):
    setup(tmp_path, "qwen2_5_vl", True, "my-vl")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAX_PIXELS", raising=False)
    monkeypatch.delenv("IMAGE_MAX_TOKEN_NUM", raising=False)
    assert len(said("--template", "qwen2_5_vl", name="my-vl")) == 1


def test_ms_swift_reads_the_cap_from_the_environment():
    source = "\n".join(swift_source("model/models/qwen.py"))
    assert "def patch_qwen_vl_utils(vision_process):" in source
    assert "        'MAX_PIXELS': 'IMAGE_MAX_TOKEN_NUM'," in source


def test_infer_on_an_adapter_of_a_qwen_vl_base(tmp_path, monkeypatch):
    """ms-swift #2854: `swift infer --ckpt_dir ...checkpoint-3000 --val_dataset images/test.json`,
    the base model named only in the checkpoint's args.json."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAX_PIXELS", raising=False)
    monkeypatch.delenv("IMAGE_MAX_TOKEN_NUM", raising=False)
    from test_corpus import make_checkpoint  # a checkpoint-N as ms-swift saves one

    ckpt = tmp_path / "output" / "v1" / "checkpoint-3000"
    make_checkpoint(ckpt, "lora-checkpoint:Qwen/Qwen2-VL-7B-Instruct", tmp_path)
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    (tmp_path / "test.json").write_text(json.dumps([{**ROW, "images": ["a.png"]}]))
    result = run_cli(["infer", "--adapters", str(ckpt), "--swift-version", "3.0", "--dry-run", "--",
                      "--val_dataset", "test.json"])
    assert result.code == 0, result.stderr
    assert [line.split(":")[0] for line in result.stderr.splitlines() if "max_pixels" in line] == [
        "warning[data.images.max_pixels] env.MAX_PIXELS"]


@pytest.mark.parametrize("model, warned", [
    ("Qwen/Qwen3.5-27B", True),  # Qwen3VLLoader's subclass: qwen_vl_utils too (a hostile review)
    ("Qwen/Qwen2.5-VL-7B-Instruct", True),
    ("Qwen/Qwen3-VL-Embedding-2B", False),  # its loader caps IMAGE_MAX_TOKEN_NUM itself (1800)
    ("Qwen/Qwen2.5-7B-Instruct", False)])
def test_the_family_is_what_ms_swift_registers_with_qwen_vl_utils(tmp_path, monkeypatch, model, warned):
    from lorakit.checks.pixels import reads_images_uncapped
    from lorakit.swiftregistry import swift_model_name, swift_models

    table = swift_models(4)
    name = swift_model_name(model, 4)
    assert reads_images_uncapped(table, table["names"].get(name)) is warned, table["names"].get(name)


@pytest.mark.parametrize("value, code", [("1e6", "env.max_pixels.invalid"), ("1,003,520", "env.max_pixels.invalid"),
                                         ("", "data.images.max_pixels"), (" 1003520 ", None)])
def test_a_cap_int_cannot_read_is_an_error(tmp_path, monkeypatch, value, code):
    """ms-swift int()s it (swift/utils/utils.py get_env_args) while loading the processor (a
    hostile review); an empty one is skipped by 4.x's compat_qwen_vl_utils, so it caps nothing."""
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IMAGE_MAX_TOKEN_NUM", raising=False)
    monkeypatch.setenv("MAX_PIXELS", value)
    result = run_cli(["validate", "-p", "single", "--", "--model", "Qwen2-VL-2B-Instruct", "--dataset", "d.jsonl",
                      "--split_dataset_ratio", "0"])
    found = [line.split("]")[0].split("[")[1] for line in result.stderr.splitlines()
             if "max_pixels" in line and line.startswith(("error", "warning"))]
    assert found == ([code] if code else [])
    if code == "env.max_pixels.invalid":
        assert result.code == 2
        # the test machine's qwen_vl_utils is 0.0.14 (conftest): compat_qwen_vl_utils int()s it first
        assert (f"error[env.max_pixels.invalid] env.MAX_PIXELS: MAX_PIXELS={value!r} is not an integer: ms-swift "
                "reads it with int() while converting it into IMAGE_MAX_TOKEN_NUM (compat_qwen_vl_utils) and stops "
                f"(ValueError: invalid literal for int() with base 10: {value!r})") in result.stderr.splitlines()


def test_get_env_args_is_an_int_call():
    source = "\n".join(swift_source("utils/utils.py"))
    assert "        value = type_func(value)" in source


def test_model_kwargs_nested_past_the_stack_is_no_traceback():
    from lorakit.checks.pixels import kwargs_caps

    assert kwargs_caps('{"MAX_PIXELS": ' + "[" * 5000) == {}
    assert kwargs_caps('{"a": ' + "[" * 100000 + "]" * 100000 + ', "max_pixels": 1}') == {}
    assert kwargs_caps('{"max_pixels": 1003520}') == {"MAX_PIXELS": "1003520"}


def test_an_args_json_nested_past_the_stack_is_no_traceback(tmp_path, monkeypatch):
    """A second hostile review: infer --adapters DIR whose args.json is 100k arrays deep."""
    from test_corpus import make_checkpoint

    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "output" / "v1" / "checkpoint-5"
    make_checkpoint(ckpt, "lora-checkpoint:Qwen/Qwen2-VL-7B-Instruct", tmp_path)
    (ckpt / "args.json").write_text("[" * 100000 + "]" * 100000)
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    (tmp_path / "test.json").write_text(json.dumps([{**ROW, "images": ["a.png"]}]))
    result = run_cli(["infer", "--adapters", str(ckpt), "--dry-run", "--", "--val_dataset", "test.json"])
    assert result.code in (0, 2) and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_model_kwargs_is_read_as_ms_swift_reads_it(tmp_path, monkeypatch):
    """A JSON file's path is parsed (json_parse_to_dict), its values are validated, and it wins
    over the shell's MAX_PIXELS, as _init_model_kwargs sets os.environ after the shell (a second
    hostile review)."""
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IMAGE_MAX_TOKEN_NUM", raising=False)
    (tmp_path / "kw.json").write_text('{"max_pixels": 1003520}')

    def codes(*extra):
        result = run_cli(["validate", "-p", "single", "--", "--model", "Qwen2-VL-2B-Instruct", "--dataset", "d.jsonl",
                          "--split_dataset_ratio", "0", *extra])
        return [line.split("]")[0] + "]" + line.split("]")[1].split(":")[0] for line in result.stderr.splitlines()
                if "max_pixels" in line and line.startswith(("error", "warning"))]

    monkeypatch.delenv("MAX_PIXELS", raising=False)
    assert codes("--model_kwargs", "kw.json") == []
    assert codes("--model_kwargs", '{"MAX_PIXELS": "1e6"}') == [
        "error[env.max_pixels.invalid] args.model_kwargs (-- extra flags)"]
    monkeypatch.setenv("MAX_PIXELS", "1e6")  # overridden by model_kwargs: not what the model load sees
    assert codes("--model_kwargs", '{"MAX_PIXELS": 1003520}') == []
