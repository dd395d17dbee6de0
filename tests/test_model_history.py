"""The per-minor model registry (swift_model_history.json) and the check that reads it.

The regeneration test reads the same wheel cache as tests/test_flag_history.py (it downloads a
minor's wheel that is missing) and is marked `network`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from lorakit.checks import modelage
from lorakit.checks.facts import Facts
from lorakit.checks.model import check_model_type
from lorakit.job import Job, Launch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "lorakit" / "data"
HISTORY = json.loads((DATA / "swift_model_history.json").read_text(encoding="utf-8"))
GENERATOR = ROOT / "scripts" / "gen_swift_model_history.py"
CACHE = os.environ.get("LORAKIT_SWIFT_WHEELS") or str(Path.home() / ".cache" / "lorakit" / "swift-wheels")
NO_MODELS = Facts(find_model=lambda m: None)


def job(major: int = 3, version: str | None = None, **args) -> Job:
    return Job(command="sft", launch=Launch(), args=dict(args), preset="p.yaml", swift_major=major,
               swift_version=version)


@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize("key", ["model_types", "names", "architectures"])
def test_history_at_the_snapshot_minor_is_the_snapshot(major, key):
    """The snapshot was read from an imported ms-swift, the history from the wheel's source:
    at the snapshot's own minor they must name the same entries."""
    snapshot = json.loads((DATA / f"swift_models_v{major}.json").read_text(encoding="utf-8"))
    table = HISTORY[str(major)]
    last = ".".join(table["versions"][-1].split(".")[:2])
    assert snapshot["swift_version"] == table["versions"][-1]
    live = {k for k, (first, end) in table[key].items() if end == last}
    assert live == set(snapshot[key]) - {"null"}


def test_every_minor_the_flag_history_knows_is_read():
    flags = json.loads((DATA / "swift_flag_history.json").read_text(encoding="utf-8"))["majors"]
    for major, body in flags.items():
        assert HISTORY[major]["versions"] == list(body["minors"].values())


@pytest.mark.network
def test_regenerating_from_the_wheels_gives_the_committed_file():
    done = subprocess.run([sys.executable, str(GENERATOR), "--check", "--cache", CACHE],
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0 and "pip" in done.stderr and "download" in done.stderr:
        pytest.skip(f"no package index: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "up to date"


# ---- the check -----------------------------------------------------------------------------

def test_a_model_type_newer_than_the_target_minor():
    """ms-swift #3004: qwen2_5_vl from the docs, on 3.0.3."""
    [f] = modelage.check_model_age(job(3, "3.0.3", model="/m/Qwen2.5-VL-7B-Instruct", model_type="qwen2_5_vl"),
                                   NO_MODELS)
    assert (f.level, f.code, f.key) == ("error", "model.type.too_new", "args.model_type")
    assert f.message == ("model_type 'qwen2_5_vl' first appears in ms-swift 3.1; ms-swift 3.0 refuses to start "
                         "(\"model_type: 'qwen2_5_vl' not in [...]\")")
    assert f.hint == ("upgrade ms-swift to 3.1 or later (pip install 'ms-swift>=3.1'), or drop model_type if "
                      "ms-swift can tell it itself")


def test_the_same_model_type_on_a_minor_that_has_it_passes():
    assert modelage.check_model_age(job(3, "3.1.1", model="/m/x", model_type="qwen2_5_vl"), NO_MODELS) == []
    assert modelage.check_model_age(job(3, None, model="/m/x", model_type="qwen2_5_vl"), NO_MODELS) == []


def test_a_model_type_removed_before_the_target_minor():
    [f] = modelage.check_model_age(job(4, "4.6.0", model="/m/x", model_type="ling2"), NO_MODELS)
    assert (f.code, f.message) == ("model.type.removed", "model_type 'ling2' was removed after ms-swift 4.1; "
                                   "ms-swift 4.6 refuses to start (\"model_type: 'ling2' not in [...]\")")


def test_an_older_minor_that_still_has_a_model_type_is_not_told_it_is_invalid():
    """ling2 is not in the 4.6 snapshot; on 4.1 it is a valid model_type, so checks/model.py's
    'not an ms-swift 4.x model type' must not fire there."""
    codes = lambda j: [f.code for f in check_model_type(j, NO_MODELS) + modelage.check_model_age(j, NO_MODELS)]
    assert codes(job(4, "4.1.3", model="/m/x", model_type="ling2")) == []
    assert codes(job(4, "4.6.0", model="/m/x", model_type="ling2")) == ["model.type.invalid", "model.type.removed"]


def test_a_hub_model_only_the_next_major_registers():
    """ms-swift #8106: Qwen/Qwen3.5-27B on 3.x, whose architecture 3.x does not know either."""
    [f] = modelage.check_model_age(job(3, None, model="Qwen/Qwen3.5-27B"), NO_MODELS)
    assert (f.level, f.code, f.key) == ("error", "model.type.too_new", "args.model")
    assert f.message == ("Qwen/Qwen3.5-27B is registered from ms-swift 4.0 (model_type qwen3_5, architecture "
                         "Qwen3_5ForConditionalGeneration); ms-swift 3.12 knows neither and refuses it after the "
                         "download (\"no suitable `model_type` was found\")")
    assert f.hint == ("upgrade ms-swift to 4.0 or later (pip install 'ms-swift>=4.0'), or pick a model "
                      "ms-swift 3.12 supports")


def test_a_hub_model_a_later_minor_of_the_same_major_registers():
    [f] = modelage.check_model_age(job(3, "3.0", model="Qwen/Qwen2.5-VL-7B-Instruct"), NO_MODELS)
    assert f.message.startswith("Qwen/Qwen2.5-VL-7B-Instruct is registered from ms-swift 3.1 (model_type "
                                "qwen2_5_vl, architecture Qwen2_5_VLForConditionalGeneration); ms-swift 3.0 ")


def test_a_newer_name_whose_architecture_the_target_maps_passes():
    """qwen3-32b-base is registered in 3.4 only, but its architecture (Qwen3ForCausalLM) is
    known to every 3.x minor from 3.4: ms-swift maps it after the download."""
    assert modelage.check_model_age(job(3, "3.12", model="Qwen/Qwen3-32B-Base"), NO_MODELS) == []


@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-7B-Instruct", "someone/unregistered-model", "./local/Qwen3.5-27B",
                                   "/abs/Qwen3.5-27B"])
def test_registered_unknown_and_local_models_pass(model):
    assert modelage.check_model_age(job(3, "3.12", model=model), NO_MODELS) == []


def test_a_local_dir_is_left_to_its_config(tmp_path):
    facts = Facts(find_model=lambda m: str(tmp_path))
    assert modelage.check_model_age(job(3, None, model="Qwen/Qwen3.5-27B"), facts) == []


def test_cli_names_the_file_and_the_fix(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("command: sft\nargs:\n  model: Qwen/Qwen3.5-27B\n  dataset: [AI-ModelScope/alpaca-gpt4-data-en]\n")
    result = run_cli(["validate", "-p", str(preset), "--swift-version", "3"])
    assert result.code == 2
    assert (f"error[model.type.too_new] args.model ({preset}): Qwen/Qwen3.5-27B is registered from ms-swift 4.0 "
            "(model_type qwen3_5, architecture Qwen3_5ForConditionalGeneration); ms-swift 3.12 knows neither and "
            "refuses it after the download (\"no suitable `model_type` was found\")\n"
            "  hint: upgrade ms-swift to 4.0 or later (pip install 'ms-swift>=4.0'), or pick a model ms-swift 3.12 "
            "supports") in result.stderr


def test_the_builtin_model_on_a_minor_before_qwen3():
    """The built-in presets train Qwen/Qwen3-8B: its name is registered from 3.4, its model type
    and architecture from 3.3 (where ms-swift maps it by architecture); 3.0-3.2 have neither."""
    result = run_cli(["validate", "-p", "single", "--swift-version", "3.2"])
    assert result.code == 2
    assert ("error[model.type.too_new] args.model (built-in fragments/lora_sft): Qwen/Qwen3-8B is registered from "
            "ms-swift 3.4 (model_type qwen3, architecture Qwen3ForCausalLM); ms-swift 3.2 knows neither") in result.stderr
    assert run_cli(["validate", "-p", "single", "--swift-version", "3.3"]).code == 0


def test_a_job_at_the_snapshot_minor_does_not_read_the_history():
    """The snapshot is the history's newest minor (the test above): a model it registers needs
    no history, which is 280 kB of JSON read on every dry-run otherwise (scripts/bench.py)."""
    modelage._history.cache_clear()
    snapshot = json.loads((DATA / "swift_models_v4.json").read_text(encoding="utf-8"))["swift_version"]
    for given in (job(4, snapshot, model="Qwen/Qwen2.5-7B-Instruct"), job(4, None, model="Qwen/Qwen2.5-7B-Instruct"),
                  job(4, snapshot, model="x", model_type="qwen2")):
        assert modelage.check_model_age(given, NO_MODELS) == []
    assert modelage._history.cache_info().currsize == 0
    # a name the snapshot lacks, or an older minor, still asks the history
    assert modelage.check_model_age(job(4, snapshot, model="nobody/NotAModel-1B"), NO_MODELS) == []
    assert modelage._history.cache_info().currsize == 1
    modelage._history.cache_clear()
    modelage.check_model_age(job(4, "4.2", model="Qwen/Qwen2.5-7B-Instruct"), NO_MODELS)
    assert modelage._history.cache_info().currsize == 1


def test_an_architecture_ambiguous_only_in_later_minors_is_judged_by_the_targets(tmp_path):
    """Qwen3VLForConditionalGeneration: qwen3_vl alone from 3.9, with qwen3_vl_emb and
    qwen3_vl_reranker from 3.12; before 3.9 no model type has it (ms-swift refuses a multimodal
    model without one). A 3.10 user's plain Qwen3-VL dir trains; 3.12.6 refuses it."""
    local = tmp_path / "model"
    local.mkdir()
    (local / "config.json").write_text(json.dumps({"architectures": ["Qwen3VLForConditionalGeneration"],
                                                   "model_type": "qwen3_vl", "vision_config": {}}))
    here = Facts(find_model=lambda m: local)
    said = {v: [(f.level, f.code) for f in check_model_type(job(3, v, model=str(local)), here)]
            for v in ("3.8", "3.9", "3.11", "3.12.6", None)}
    assert said == {"3.8": [("error", "model.type.unknown")], "3.9": [], "3.11": [],
                    "3.12.6": [("error", "model.type.ambiguous")], None: [("error", "model.type.ambiguous")]}
    [ambiguous] = check_model_type(job(3, "3.12", model=str(local)), here)
    assert "matches qwen3_vl, qwen3_vl_emb, qwen3_vl_reranker" in ambiguous.message


def test_a_type_counts_for_an_architecture_only_in_the_minors_it_listed_it(tmp_path):
    """deepseek_r1_distill listed Qwen3ForCausalLM only from 3.5 (3.3.1's deepseek.py has Qwen2 and
    Llama): a plain Qwen3 dir is qwen3 alone on 3.4 and ambiguous from 3.5 (a hostile review)."""
    spans = HISTORY["3"]["type_architecture_spans"]
    assert spans["deepseek_r1_distill"]["Qwen3ForCausalLM"][0] == "3.5"
    local = tmp_path / "myqwen"
    local.mkdir()
    (local / "config.json").write_text(json.dumps({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
                                                   "num_attention_heads": 32, "num_key_value_heads": 8}))
    here = Facts(find_model=lambda m: local)
    said = {v: [f.code for f in check_model_type(job(3, v, model=str(local)), here) if f.level == "error"]
            for v in ("3.4", "3.5", "3.12")}
    assert said == {"3.4": [], "3.5": ["model.type.ambiguous"], "3.12": ["model.type.ambiguous"]}
    assert modelage.architecture_types(job(3, "3.4"), "Qwen3ForCausalLM", ["qwen3", "deepseek_r1_distill"]) == ["qwen3"]


@pytest.mark.parametrize("arch, versions", [
    ("Qwen3MoeForCausalLM", {"3.6.0": [], "3.6.2": [], "3.6.3": ["model.type.ambiguous"]}),
    ("Qwen3VLForConditionalGeneration", {"3.12.1": [], "3.12.2": ["model.type.ambiguous"],
                                         "3.12.6": ["model.type.ambiguous"]})])
def test_a_pair_a_later_patch_brought_does_not_count_for_an_earlier_patch(tmp_path, arch, versions):
    """The history is per minor (its last patch): qwen3_moe_thinking took Qwen3MoeForCausalLM in
    3.6.3, qwen3_vl_emb/_reranker Qwen3VLForConditionalGeneration in 3.12.2 (a second hostile
    review); type_architecture_patches, read from every released wheel, says which patch."""
    local = tmp_path / "model"
    local.mkdir()
    extra = {"vision_config": {}} if "VL" in arch else {}
    (local / "config.json").write_text(json.dumps({"architectures": [arch], "num_attention_heads": 32,
                                                   "num_key_value_heads": 4, **extra}))
    here = Facts(find_model=lambda m: local)
    said = {v: [f.code for f in check_model_type(job(3, v, model=str(local)), here) if f.level == "error"]
            for v in versions}
    assert said == versions
