"""The qwen_vl_utils a Qwen-VL loader refuses, and the variables it parses (checks/visionutils.py,
ms-swift #6371). The real 4.6.0 runs are in test_real_visionutils.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import run_cli, swift_source
from lorakit.checks.visionutils import family, refusal
from lorakit.checks.vlenv import first_unparsed
from lorakit.swiftregistry import swift_models

ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


@pytest.mark.parametrize("kind, swift, vl, said", [
    ("qwen2", "4.6.0", None, "PackageNotFoundError: The 'qwen_vl_utils' distribution was not found"),
    ("qwen2", "3.12.6", None, "ModuleNotFoundError: No module named 'qwen_vl_utils'"),
    ("qwen3", "3.12.6", None, "PackageNotFoundError: The 'qwen_vl_utils>=0.0.14' distribution was not found"),
    ("qwen2", "4.6.0", "0.0.14", None), ("qwen2", "4.6.0", "0.0.11", None), ("qwen2", "3.10.1", "0.0.14", None),
    ("qwen2", "4.6.0", "0.0.13", "ImportError: qwen_vl_utils<0.0.12 is required ... but found qwen_vl_utils==0.0.13"),
    ("qwen2", "3.10.0", "0.0.14", "ImportError: qwen_vl_utils<0.0.12 is required ... but found qwen_vl_utils==0.0.14"),
    ("qwen2", "3.8.2", "0.0.14", "ImportError: qwen_vl_utils<0.0.12 is required ... but found qwen_vl_utils==0.0.14"),
    ("qwen2", "3.8.0", "0.0.14",
     "AttributeError: module 'qwen_vl_utils.vision_process' has no attribute 'IMAGE_FACTOR'"),
    ("qwen2", "3.8.1", "0.0.14", None),  # 3.8.1 skips the names vision_process lacks (a hostile review)
    ("qwen2", "3.5.0", None, None),  # only imported before 3.8.2: a source tree without metadata loads
    ("qwen3", "4.6.0", None, "PackageNotFoundError: The 'qwen_vl_utils>=0.0.14' distribution was not found"),
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


def said(swift: str, vl: str, env: dict, model_type: str = "qwen2_vl") -> str | None:
    found = first_unparsed(swift, vl, model_type, {k: (v, f"env.{k}") for k, v in env.items()})
    return None if found is None else f"{found.name} {found.parse} {found.when}"


@pytest.mark.parametrize("swift, vl, env, result", [
    ("3.2.0", "0.0.10", {"MAX_PIXELS": ""}, None),  # no patch at load before 3.3.0
    ("4.6.0", "0.0.11", {"MAX_PIXELS": ""}, "MAX_PIXELS int() loading the Qwen-VL processor"),
    ("4.6.0", "0.0.11", {"FPS": "x"}, "FPS float() loading the Qwen-VL processor"),
    ("4.6.0", "0.0.11", {"IMAGE_MAX_TOKEN_NUM": ""}, None),  # 0.0.11 has no such name
    ("4.6.0", "0.0.14", {"MAX_PIXELS": ""}, None),  # compat skips an empty cap; 0.0.14 has no MAX_PIXELS
    ("4.6.0", "0.0.14", {"IMAGE_MAX_TOKEN_NUM": ""}, "IMAGE_MAX_TOKEN_NUM int() loading the Qwen-VL processor"),
    # compat fills an empty token count from its pixel cap (`if value and not os.getenv(target)`)
    ("4.6.0", "0.0.14", {"MAX_PIXELS": "1003520", "IMAGE_MAX_TOKEN_NUM": ""}, None),
    ("4.6.0", "0.0.14", {"MAX_PIXELS": "abc", "IMAGE_MAX_TOKEN_NUM": ""},
     "MAX_PIXELS int() converting it into IMAGE_MAX_TOKEN_NUM (compat_qwen_vl_utils)"),
    ("4.6.0", "0.0.14", {"MAX_PIXELS": "1e6", "IMAGE_MAX_TOKEN_NUM": "1280"}, None),  # a set count wins
    ("4.6.0", "0.0.14", {"MODEL_SEQ_LEN": "long"}, "MODEL_SEQ_LEN int(float()) importing qwen_vl_utils"),
    ("4.6.0", "0.0.14", {"MODEL_SEQ_LEN": "inf"}, "MODEL_SEQ_LEN int(float()) importing qwen_vl_utils"),
    ("4.6.0", "0.0.11", {"VIDEO_MAX_PIXELS": "50k"}, "VIDEO_MAX_PIXELS int(float()) importing qwen_vl_utils"),
    # compat divides by (patch x SPATIAL_MERGE_SIZE) squared when it converts a cap (a second review)
    ("4.6.0", "0.0.14", {"SPATIAL_MERGE_SIZE": "0", "MAX_PIXELS": "1003520"},
     "SPATIAL_MERGE_SIZE a non-zero int() converting the pixel caps into token counts"),
    ("4.6.0", "0.0.14", {"SPATIAL_MERGE_SIZE": "2", "MAX_PIXELS": "1003520"}, None),
    # from 3.5.0 an empty VIDEO_TOTAL_PIXELS beside VIDEO_MAX_PIXELS is refilled
    ("4.6.0", "0.0.11", {"VIDEO_MAX_PIXELS": "50176", "VIDEO_TOTAL_PIXELS": ""}, None),
    ("3.4.0", "0.0.11", {"VIDEO_MAX_PIXELS": "50176", "VIDEO_TOTAL_PIXELS": ""},
     "VIDEO_TOTAL_PIXELS int() loading the Qwen-VL processor"),
    # 3.8.1 with 0.0.14: the pixel list, only the names 0.0.14 still defines
    ("3.8.1", "0.0.14", {"MAX_PIXELS": "abc"}, None),
    ("3.8.1", "0.0.14", {"FPS_MAX_FRAMES": ""}, "FPS_MAX_FRAMES int() loading the Qwen-VL processor"),
    ("3.8.0", "0.0.14", {"FPS_MAX_FRAMES": ""}, None)])  # refused first (refusal)
def test_first_unparsed(swift, vl, env, result):
    assert said(swift, vl, env) == result


def test_the_error_is_pythons_own():
    from lorakit.checks.vlenv import error_of

    assert error_of("int(float())", "inf") == "OverflowError: cannot convert float infinity to integer"
    assert error_of("a non-zero int()", "0") == "ZeroDivisionError: integer division or modulo by zero"
    assert error_of("int()", "12") == ""


def test_a_loader_that_sets_the_token_count_never_converts_max_pixels():
    """Qwen3-VL-Embedding / Reranker setdefault IMAGE_MAX_TOKEN_NUM before compat (a hostile review)."""
    assert said("4.6.0", "0.0.14", {"MAX_PIXELS": "1e6"}, "qwen3_vl_emb") is None
    assert said("4.6.0", "0.0.14", {"MAX_PIXELS": "1e6"}, "qwen3_vl") == \
        "MAX_PIXELS int() converting it into IMAGE_MAX_TOKEN_NUM (compat_qwen_vl_utils)"
    assert said("4.6.0", "0.0.14", {"MAX_PIXELS": "1e6", "IMAGE_MAX_TOKEN_NUM": ""}, "qwen3_vl_emb") == \
        "MAX_PIXELS int() converting it into IMAGE_MAX_TOKEN_NUM (compat_qwen_vl_utils)"


def test_the_source_lines_it_rests_on():
    source = "\n".join(swift_source("model/models/qwen.py"))
    assert "            require_version('qwen_vl_utils<0.0.12')" in source
    assert "        require_version('qwen_vl_utils>=0.0.14')" in source
    assert "        if version.parse(qwen_vl_utils_version) >= version.parse('0.0.14'):" in source
    assert "        val = get_env_args(key, type_func, default_value)" in source
    assert "        if value and not os.getenv(target_var):" in source
    assert "    if os.getenv('VIDEO_MAX_PIXELS') and not os.getenv('VIDEO_TOTAL_PIXELS'):" in source
    assert "        os.environ.setdefault('IMAGE_MAX_TOKEN_NUM', '1800')" in source


@pytest.fixture(autouse=True)
def swift_on_path(monkeypatch):
    """The `swift` whose environment is read is this venv's (as scripts/test.sh puts it on PATH)."""
    import os

    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


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


LOAD = "while loading the Qwen-VL processor"
COMPAT = "while converting it into {} (compat_qwen_vl_utils)"


@pytest.mark.parametrize("vl, env, said", [
    ("0.0.11", {"MAX_PIXELS": ""}, f"MAX_PIXELS='' is empty: ms-swift reads it with int() {LOAD}"),
    ("0.0.11", {"FPS_MAX_FRAMES": ""}, f"FPS_MAX_FRAMES='' is empty: ms-swift reads it with int() {LOAD}"),
    ("0.0.11", {"FPS": "two"}, f"FPS='two' is not a number: ms-swift reads it with float() {LOAD}"),
    ("0.0.14", {"MAX_PIXELS": "1e6"},
     "MAX_PIXELS='1e6' is not an integer: ms-swift reads it with int() " + COMPAT.format("IMAGE_MAX_TOKEN_NUM")),
    ("0.0.14", {"IMAGE_MAX_TOKEN_NUM": ""}, f"IMAGE_MAX_TOKEN_NUM='' is empty: ms-swift reads it with int() {LOAD}"),
    ("0.0.14", {"VIDEO_MAX_PIXELS": "50k"},
     "VIDEO_MAX_PIXELS='50k' is not an integer: ms-swift reads it with int() " + COMPAT.format("VIDEO_MAX_TOKEN_NUM")),
    ("0.0.14", {"MAX_PIXELS": ""}, None),  # compat_qwen_vl_utils skips an empty one; 0.0.14 has no MAX_PIXELS
    ("0.0.14", {"MAX_PIXELS": "1003520", "IMAGE_MAX_TOKEN_NUM": ""}, None),  # compat fills the empty count
    ("0.0.11", {"IMAGE_MAX_TOKEN_NUM": ""}, None),  # 0.0.11 has no such name: patch_qwen_vl_utils skips it
    ("0.0.11", {"FPS": "2.5"}, None)])
def test_what_the_installed_vision_process_parses(tmp_path, monkeypatch, vl, env, said):
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    machine(monkeypatch, tmp_path, vl)
    result = validate(env=env)
    found = lines(result, "env.max_pixels.invalid")
    if said is None:
        assert found == [], result.stderr
        return
    assert result.code == 2
    name, value = said.split("=")[0], env[said.split("=")[0]]
    # Python's own words, as the ms-swift traceback ends
    error = (f"ValueError: could not convert string to float: {value!r}" if "float()" in said else
             f"ValueError: invalid literal for int() with base 10: {value!r}")
    assert found == [f"error[env.max_pixels.invalid] env.{name}: {said} and stops ({error})"]


def test_a_pixel_cap_beside_its_token_count_is_not_converted(tmp_path, monkeypatch):
    """compat_qwen_vl_utils converts MAX_PIXELS only when IMAGE_MAX_TOKEN_NUM is unset."""
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    machine(monkeypatch, tmp_path, "0.0.14")
    result = validate(env={"MAX_PIXELS": "1e6", "IMAGE_MAX_TOKEN_NUM": "1280"})
    assert lines(result, "env.max_pixels.invalid") == [], result.stderr
