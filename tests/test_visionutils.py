"""The qwen_vl_utils a Qwen-VL loader refuses, and the variables it parses (checks/visionutils.py,
ms-swift #6371). The real 4.6.0 runs are in test_real_visionutils.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import run_cli, swift_source
from lorakit.checks.visionutils import family, parsed_names, refusal
from lorakit.swiftregistry import swift_models

ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


@pytest.mark.parametrize("kind, swift, vl, said", [
    ("qwen2", "4.6.0", None, "PackageNotFoundError: The 'qwen_vl_utils' distribution was not found"),
    ("qwen2", "3.12.6", None, "ModuleNotFoundError: No module named 'qwen_vl_utils'"),
    ("qwen3", "3.12.6", None, "PackageNotFoundError: The 'qwen_vl_utils' distribution was not found"),
    ("qwen2", "4.6.0", "0.0.14", None), ("qwen2", "4.6.0", "0.0.11", None), ("qwen2", "3.10.1", "0.0.14", None),
    ("qwen2", "4.6.0", "0.0.13", "ImportError: qwen_vl_utils<0.0.12 is required ... but found qwen_vl_utils==0.0.13"),
    ("qwen2", "3.10.0", "0.0.14", "ImportError: qwen_vl_utils<0.0.12 is required ... but found qwen_vl_utils==0.0.14"),
    ("qwen2", "3.8.2", "0.0.14", "ImportError: qwen_vl_utils<0.0.12 is required ... but found qwen_vl_utils==0.0.14"),
    ("qwen2", "3.8.1", "0.0.14",
     "AttributeError: module 'qwen_vl_utils.vision_process' has no attribute 'IMAGE_FACTOR'"),
    ("qwen2", "3.5.0", "0.0.10", None),
    ("qwen3", "4.6.0", "0.0.11", "ImportError: qwen_vl_utils>=0.0.14 is required ... but found qwen_vl_utils==0.0.11"),
    ("qwen3", "4.6.0", "0.0.14", None), ("qwen2", "4.6.0", "banana", None)])
def test_refusal(kind, swift, vl, said):
    assert refusal(kind, swift, vl) == said


def test_the_families_are_read_from_the_registered_requirements():
    assert family(swift_models(4), "qwen2_5_vl") == "qwen2"
    assert family(swift_models(4), "qwen3_vl") == "qwen3"
    assert family(swift_models(3), "qvq") == "qwen2"
    assert family(swift_models(4), "qwen2_5_omni") is None  # qwen_omni_utils: its own rules
    assert family(swift_models(4), "llama") is None


def test_parsed_names_follow_the_installed_versions():
    assert parsed_names("3.2.0", "0.0.10") is None  # no patch at load before 3.3.0
    old = parsed_names("4.6.0", "0.0.11")
    assert old["MAX_PIXELS"] == (int, True) and old["FPS"] == (float, True) and "IMAGE_MAX_TOKEN_NUM" not in old
    new = parsed_names("4.6.0", "0.0.14")
    assert new["IMAGE_MAX_TOKEN_NUM"] == (int, True) and new["MAX_PIXELS"] == (int, False)
    assert parsed_names("3.8.1", "0.0.14") is None  # that pair fails earlier (refusal)


def test_the_source_lines_it_rests_on():
    source = "\n".join(swift_source("model/models/qwen.py"))
    assert "            require_version('qwen_vl_utils<0.0.12')" in source
    assert "        require_version('qwen_vl_utils>=0.0.14')" in source
    assert "        if version.parse(qwen_vl_utils_version) >= version.parse('0.0.14'):" in source
    assert "        val = get_env_args(key, type_func, default_value)" in source
    assert "        if value and not os.getenv(target_var):" in source


def site(root: Path, version: str | None) -> str:
    """A site dir as a machine with qwen_vl_utils `version` (None: none) has it."""
    path = root / f"site-{version}"
    path.mkdir()
    if version:
        (path / f"qwen_vl_utils-{version}.dist-info").mkdir()
        (path / f"qwen_vl_utils-{version}.dist-info" / "METADATA").write_text(
            f"Name: qwen_vl_utils\nVersion: {version}\n")
    return str(path)


def machine(monkeypatch, root: Path, version: str | None) -> None:
    import conftest

    monkeypatch.setattr(sys, "path", [site(root, version), *[p for p in sys.path if p not in conftest._VL_SITE]])


def setup(root: Path, model_type: str = "qwen2_vl", arch: str = "Qwen2VLForConditionalGeneration") -> None:
    model = root / "Qwen2-VL-2B-Instruct"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": [arch], "model_type": model_type}))
    (root / "d.jsonl").write_text(json.dumps(ROW) + "\n")


def validate(*extra: str, env: dict | None = None):
    return run_cli(["validate", "-p", "single", "--", "--model", "Qwen2-VL-2B-Instruct", "--dataset", "d.jsonl",
                    "--split_dataset_ratio", "0", *extra], env=env)


def lines(result, code: str) -> list[str]:
    return [line for line in result.stderr.splitlines() if f"[{code}]" in line]


def test_an_older_qwen_vl_utils_than_the_loader_takes_is_an_error(tmp_path, monkeypatch):
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    machine(monkeypatch, tmp_path, "0.0.13")
    result = validate()
    assert result.code == 2
    assert lines(result, "model.requires.qwen_vl_utils") == [
        "error[model.requires.qwen_vl_utils] args.model (-- extra flags): model_type qwen2_vl loads its images "
        "through qwen_vl_utils, and the environment `swift` runs in has qwen_vl_utils 0.0.13: ms-swift 4.6.0 stops "
        "while loading the model (ImportError: qwen_vl_utils<0.0.12 is required ... but found "
        "qwen_vl_utils==0.0.13)"]
    assert "  hint: pip install 'qwen_vl_utils>=0.0.14' in the environment `swift` runs from" in result.stderr


def test_none_at_all_is_an_error_and_not_also_ms_swifts_warning(tmp_path, monkeypatch):
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    machine(monkeypatch, tmp_path, None)
    result = validate()
    assert result.code == 2
    assert [line.split(":")[0] for line in lines(result, "model.requires.qwen_vl_utils")] == [
        "error[model.requires.qwen_vl_utils] args.model (-- extra flags)"]
    assert "has no qwen_vl_utils: ms-swift 4.6.0 stops" in result.stderr
    assert not [line for line in lines(result, "model.requires") if "qwen_vl_utils" in line]  # decord's stays


def test_the_versions_the_loader_takes_pass(tmp_path, monkeypatch):
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    machine(monkeypatch, tmp_path, "0.0.11")
    result = validate()
    assert result.code == 0, result.stderr
    assert "qwen_vl_utils" not in result.stderr


def test_a_dry_run_for_another_machine_says_nothing_of_this_ones_packages(tmp_path, monkeypatch):
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    machine(monkeypatch, tmp_path, None)
    result = run_cli(["train", "-p", "single", "--dry-run", "--", "--model", "Qwen2-VL-2B-Instruct", "--dataset",
                      "d.jsonl", "--split_dataset_ratio", "0"])
    assert result.code == 0, result.stderr
    assert "qwen_vl_utils" not in result.stderr


@pytest.mark.parametrize("vl, name, value, said", [
    ("0.0.11", "MAX_PIXELS", "", "MAX_PIXELS='' is empty: ms-swift reads it with int()"),
    ("0.0.11", "FPS_MAX_FRAMES", "", "FPS_MAX_FRAMES='' is empty: ms-swift reads it with int()"),
    ("0.0.11", "FPS", "two", "FPS='two' is not a number: ms-swift reads it with float()"),
    ("0.0.14", "IMAGE_MAX_TOKEN_NUM", "", "IMAGE_MAX_TOKEN_NUM='' is empty: ms-swift reads it with int()"),
    ("0.0.14", "VIDEO_MAX_PIXELS", "50k", "VIDEO_MAX_PIXELS='50k' is not an integer: ms-swift reads it with int()"),
    ("0.0.14", "MAX_PIXELS", "", None),  # compat_qwen_vl_utils skips an empty one; 0.0.14 has no MAX_PIXELS
    ("0.0.11", "IMAGE_MAX_TOKEN_NUM", "", None),  # 0.0.11 has no such name: patch_qwen_vl_utils skips it
    ("0.0.11", "FPS", "2.5", None)])
def test_what_the_installed_vision_process_parses(tmp_path, monkeypatch, vl, name, value, said):
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    machine(monkeypatch, tmp_path, vl)
    result = validate(env={name: value, "MAX_PIXELS": value if name == "MAX_PIXELS" else "1003520"})
    found = lines(result, "env.max_pixels.invalid")
    if said is None:
        assert found == [], result.stderr
        return
    assert result.code == 2
    assert found == [f"error[env.max_pixels.invalid] env.{name}: {said} while loading the Qwen-VL processor and "
                     "stops (ValueError: " + ("could not convert string to float" if name == "FPS" else
                                             "invalid literal for int()") + ")"]


def test_a_pixel_cap_beside_its_token_count_is_not_converted(tmp_path, monkeypatch):
    """compat_qwen_vl_utils converts MAX_PIXELS only when IMAGE_MAX_TOKEN_NUM is unset."""
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    machine(monkeypatch, tmp_path, "0.0.14")
    result = validate(env={"MAX_PIXELS": "1e6", "IMAGE_MAX_TOKEN_NUM": "1280"})
    assert lines(result, "env.max_pixels.invalid") == [], result.stderr
