"""Flags that came in a patch release (src/lorakit/data/swift_flag_patches.json, from every
released wheel by scripts/gen_swift_patches.py): a target named to the patch gets flags.too_new
(ms-swift #3986: --vllm_server_host is in 3.3.1, not in the 3.3.0.post1 the user had)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from conftest import WHEELS, regenerate_pinned, run_cli
from lorakit.flagpatches import first_patch

REPO = Path(__file__).resolve().parent.parent
DATA = json.loads((REPO / "src" / "lorakit" / "data" / "swift_flag_patches.json").read_text(encoding="utf-8"))
HISTORY = json.loads((REPO / "src" / "lorakit" / "data" / "swift_flag_history.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("version,first", [("3.3.0", "3.3.1"), ("3.3.0.post1", "3.3.1"), ("3.3.0+cu121", "3.3.1"),
                                           ("3.3.1", None),
                                           ("3.3", None), ("3", None), ("3.4.0", None), (None, None)])
def test_only_an_earlier_patch_of_the_same_minor_lacks_it(version, first):
    assert first_patch(3, "rlhf", "vllm_server_host", version) == first


def test_a_target_named_to_the_patch_is_told(tmp_path):
    preset = tmp_path / "grpo.yaml"
    preset.write_text("extends: grpo_server\nargs:\n  rollout_gpus: null\n", encoding="utf-8")
    said = run_cli(["validate", "-p", str(preset), "--swift-version", "3.3.0.post1", "--",
                    "--vllm_server_host", "10.0.0.5"])
    assert said.code == 2
    assert ("error[flags.too_new] args.vllm_server_host (-- extra flags): --vllm_server_host is new in ms-swift "
            "3.3.1; you target 3.3.0.post1") in said.stderr
    assert "hint: upgrade to ms-swift 3.3.1 or later (pip install 'ms-swift>=3.3.1,<4'), or drop vllm_server_host" \
        in said.stderr
    later = run_cli(["validate", "-p", str(preset), "--swift-version", "3.3.1", "--", "--vllm_server_host", "10.0.0.5"])
    assert "is new in ms-swift 3.3.1" not in later.stderr


def test_every_entry_is_a_flag_the_history_starts_in_that_minor():
    for major, commands in DATA["majors"].items():
        for command, flags in commands.items():
            spans = HISTORY["majors"][major]["commands"][command]["flags"]
            for flag, entry in flags.items():
                assert spans[flag]["first"] == entry["minor"], (major, command, flag)
                assert entry["first"].startswith(entry["minor"] + ".") and entry["first"] in DATA["versions"]


@pytest.mark.network
def test_regenerating_from_the_wheels_gives_the_committed_file():
    regenerate_pinned("gen_swift_patches.py")
    # and the thread's case in the wheels themselves: 3.3.0.post1's GRPO arguments have no vllm_server_host
    for version, has in (("3.3.0.post1", False), ("3.3.1", True)):
        with zipfile.ZipFile(Path(WHEELS) / f"ms_swift-{version}-py3-none-any.whl") as wheel:
            source = wheel.read("swift/trainers/arguments.py").decode("utf-8")
        assert ("vllm_server_host: Optional[str] = None" in source) == has, version
