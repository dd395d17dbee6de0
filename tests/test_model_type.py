"""check_model_type: whether ms-swift resolves a model_type and a template for a local model on its
own, with exact levels, messages and hints. tests/test_real_model_type.py asks the real ms-swift
4.6.0 the same questions and trains with the hinted values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorakit import presets
from lorakit.checks import model
from lorakit.checks.facts import Facts
from lorakit.job import build_job

FACTS = Facts(has_module=lambda name: False, is_file=lambda p: False)  # find_model: the real lookup
QWEN2 = "Qwen2ForCausalLM"
ORIGINAL = model.swift_models
QWEN2_TEMPLATES = "qwen, qwen2_5, qwen2_5_math, marco_o1, qwq_preview, qwq, deepseek_r1"


def make_job(args, major=4, command="sft"):
    data = {"command": command, "launch": {}, "args": args}
    resolved = presets.Resolved(name="t", path=None, data=data, sources={f"args.{k}": "t.yaml" for k in args})
    return build_job(resolved, {}, swift_major=major)


def config_dir(root: Path, name: str, arch: str | None = QWEN2, args_json: dict | None = None, **extra) -> str:
    """A model dir with only what ms-swift reads to tell its type: config.json (and args.json)."""
    path = root / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": [arch] if arch else [], **extra}))
    if args_json is not None:
        (path / "args.json").write_text(json.dumps(args_json))
    return str(path)


def run(args, major=4, command="sft"):
    return [(f.level, f.code, f.message, f.hint, f.key)
            for f in model.check_model_type(make_job(args, major, command), FACTS)]


AMBIGUOUS = "ms-swift 4.x cannot tell {}'s model_type and refuses to start: {} matches {}"
TEMPLATE = "ms-swift 4.x cannot tell {}'s template and refuses to start: model_type {} has {}"

# (dir name, architecture) -> the hint's values and the registered name that decided them
CUES = [
    ("qwen2.5-0.5b-sft", QWEN2, "qwen2, qwen2_gte", "qwen2", "qwen2_5", "qwen2.5-0.5b"),
    ("my-Qwen2.5-Coder-7B-lora", QWEN2, "qwen2, qwen2_gte", "qwen2", "qwen2_5", "qwen2.5-coder-7b"),
    ("qwq-32b-ft", QWEN2, "qwen2, qwen2_gte", "qwen2", "qwq", "qwq-32b"),
    ("gte-qwen2-sft", QWEN2, "qwen2, qwen2_gte", "qwen2_gte", "dummy", "gte-qwen2-7b-instruct"),
    ("Qwen3-4B-merged", "Qwen3ForCausalLM", "qwen3, qwen3_emb, qwen3_reranker", "qwen3", "qwen3", "qwen3-4b"),
    # ms-swift 4.6.0 registers Llama 3.1 under model_type llama with the llama3_2 template
    ("llama-3.1-8b-sft", "LlamaForCausalLM", "codefuse_codellama, llama, openbuddy_llama, yi", "llama",
     "llama3_2", "meta-llama-3.1-8b"),
    ("llama-2-7b-x", "LlamaForCausalLM", "codefuse_codellama, llama, openbuddy_llama, yi", "llama", "llama",
     "llama-2-7b-hf"),
    ("yi-6b-x", "LlamaForCausalLM", "codefuse_codellama, llama, openbuddy_llama, yi", "yi", "chatml", "yi-6b"),
]


@pytest.mark.parametrize("name, arch, types, model_type, template, closest", CUES)
def test_ambiguous_dir_is_an_error_whose_hint_follows_the_name(tmp_path, name, arch, types, model_type,
                                                               template, closest):
    path = config_dir(tmp_path, name, arch)
    assert run({"model": path}) == [
        ("error", "model.type.ambiguous", AMBIGUOUS.format(name.lower(), arch, types),
         f"--set model_type={model_type} --set template={template} (its name is closest to the registered "
         f"{closest})", "args.model")]


def test_no_cue_in_the_name_gives_the_first_candidates_and_says_so(tmp_path):
    path = config_dir(tmp_path, "tiny-random-chatml")
    assert run({"model": path}) == [
        ("error", "model.type.ambiguous", AMBIGUOUS.format("tiny-random-chatml", QWEN2, "qwen2, qwen2_gte"),
         "--set model_type=qwen2 --set template=qwen (no registered model is named like 'tiny-random-chatml', "
         "so these are ms-swift's first candidates: choose the template the checkpoint was trained with "
         f"among qwen2's: {QWEN2_TEMPLATES})", "args.model")]


def test_the_hinted_values_pass(tmp_path):
    path = config_dir(tmp_path, "qwen2.5-0.5b-sft")
    assert run({"model": path, "model_type": "qwen2", "template": "qwen2_5"}) == []


def test_model_type_without_template_is_an_error_naming_the_template(tmp_path):
    path = config_dir(tmp_path, "qwen2.5-0.5b-sft")
    assert run({"model": path, "model_type": "qwen2"}) == [
        ("error", "model.template.ambiguous", TEMPLATE.format("qwen2.5-0.5b-sft", "qwen2", f"7 ({QWEN2_TEMPLATES})"),
         "--set template=qwen2_5 (its name is closest to the registered qwen2.5-0.5b)", "args.model_type")]


def test_template_without_model_type_hints_the_model_type_only(tmp_path):
    path = config_dir(tmp_path, "qwen2.5-0.5b-sft")
    assert run({"model": path, "template": "qwen2_5"}) == [
        ("error", "model.type.ambiguous", AMBIGUOUS.format("qwen2.5-0.5b-sft", QWEN2, "qwen2, qwen2_gte"),
         "--set model_type=qwen2 (its name is closest to the registered qwen2.5-0.5b)", "args.model")]


def test_one_model_type_but_no_template_is_an_error(tmp_path):
    # DeepseekV3ForCausalLM maps to deepseek_v3 alone, which has five templates and no default
    path = config_dir(tmp_path, "my-deepseek-v3-ft", "DeepseekV3ForCausalLM")
    assert run({"model": path}) == [
        ("error", "model.template.ambiguous",
         TEMPLATE.format("my-deepseek-v3-ft", "deepseek_v3",
                         "5 (deepseek_v2_5, deepseek_r1, moonlight, kimi_k2, deepseek_v3_1)"),
         "--set template=deepseek_v2_5 (its name is closest to the registered deepseek-v3)", "args.model")]


def test_one_model_type_with_its_own_template_is_fine(tmp_path):
    assert run({"model": config_dir(tmp_path, "my-gemma2", "Gemma2ForCausalLM")}) == []


def test_unknown_model_type_is_an_error_that_maps_3x_names(tmp_path):
    path = config_dir(tmp_path, "qwen2.5-0.5b-sft")
    # ms-swift 3.x had model_type qwen2_5; 4.x folded it into qwen2 with the qwen2_5 template
    assert run({"model": path, "model_type": "qwen2_5"}) == [
        ("error", "model.type.invalid", "model_type 'qwen2_5' is not an ms-swift 4.x model type: ms-swift "
         "refuses to start", "'qwen2_5' is a template of model_type qwen2: --set model_type=qwen2 "
         "--set template=qwen2_5", "args.model_type")]
    assert run({"model": path, "model_type": "qwen"}) == []  # a real model_type (Qwen 1), whose template is set
    assert run({"model": path, "model_type": "qwen2_gt"}) == [
        ("error", "model.type.invalid", "model_type 'qwen2_gt' is not an ms-swift 4.x model type: ms-swift "
         "refuses to start", "did you mean 'qwen2_gte'? Qwen2ForCausalLM's model types: qwen2, qwen2_gte",
         "args.model_type")]


def test_unknown_model_type_on_a_hub_id_gets_did_you_mean():
    assert run({"model": "Qwen/Qwen2.5-7B-Instruct", "model_type": "qwen3_moee"}) == [
        ("error", "model.type.invalid", "model_type 'qwen3_moee' is not an ms-swift 4.x model type: ms-swift "
         "refuses to start", "did you mean 'qwen3_moe'? see ms-swift's supported models (`model_type` column)",
         "args.model_type")]


def test_unknown_template_gets_did_you_mean(tmp_path):
    path = config_dir(tmp_path, "qwen2.5-0.5b-sft")
    assert run({"model": path, "model_type": "qwen2", "template": "qwen25"}) == [
        ("error", "model.template.invalid", "template 'qwen25' is not an ms-swift 4.x template: ms-swift "
         "refuses to start", "did you mean 'qwen2_5'? see ms-swift's supported models (`template` column)",
         "args.template")]


@pytest.mark.parametrize("name", ["Qwen2.5-0.5B-Instruct", "Qwen2___5-0___5B-Instruct",
                                  "hub/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/0123abcd",
                                  "ms/models/Qwen--Qwen2.5-0.5B-Instruct/snapshots/master"])
def test_a_registered_name_resolves_both(tmp_path, name):
    # ms-swift matches the name (or the cache's repo name) to Qwen2.5-0.5B-Instruct's group:
    # model_type qwen2, template qwen2_5, whatever the architecture says
    path = config_dir(tmp_path, name)
    assert run({"model": path}) == []
    assert run({"model": path + "/"}) == []
    assert run({"model": path, "model_type": "qwen2"}) == []  # the same type keeps the group's template


def test_another_model_type_than_the_name_drops_the_group_template(tmp_path):
    path = config_dir(tmp_path, "Qwen2.5-0.5B-Instruct")
    assert run({"model": path, "model_type": "qwen2_gte"}) == []  # qwen2_gte has its own: dummy
    assert run({"model": path, "model_type": "llama"})[0][:2] == ("error", "model.template.ambiguous")


def test_args_json_written_by_ms_swift_4_settles_it(tmp_path):
    both = config_dir(tmp_path, "a-merged", args_json={"swift_version": "4.6.0", "model_type": "qwen2",
                                                       "template": "qwen2_5"})
    assert run({"model": both}) == []
    only_type = config_dir(tmp_path, "b-merged", args_json={"swift_version": "4.6.0", "model_type": "qwen2"})
    assert run({"model": only_type}) == [
        ("error", "model.template.ambiguous", TEMPLATE.format("b-merged", "qwen2", f"7 ({QWEN2_TEMPLATES})"),
         "--set template=qwen (no registered model is named like 'b-merged', so these are ms-swift's first "
         f"candidates: choose the template the checkpoint was trained with among qwen2's: {QWEN2_TEMPLATES})",
         "args.model")]


def test_args_json_from_ms_swift_3_keeps_only_its_template(tmp_path):
    # 4.x ignores a model_type that ms-swift < 4.0 wrote (base_args.py:330-331); the template stays
    path = config_dir(tmp_path, "qwen2.5-merged", args_json={"swift_version": "3.12.6", "model_type": "qwen2_5",
                                                             "template": "qwen2_5"})
    assert run({"model": path}) == [
        ("error", "model.type.ambiguous", AMBIGUOUS.format("qwen2.5-merged", QWEN2, "qwen2, qwen2_gte"),
         "--set model_type=qwen2 (its name is closest to the registered qwen2.5-3b)", "args.model")]


def test_unreadable_args_json_is_left_alone(tmp_path):
    path = Path(config_dir(tmp_path, "c-merged"))
    (path / "args.json").write_text("{not json")
    assert run({"model": str(path)}) == []


def test_unknown_architecture(tmp_path):
    plain = config_dir(tmp_path, "weird", "FooForCausalLM")
    assert run({"model": plain}) == [
        ("warning", "model.type.unknown", "ms-swift 4.x has no model_type for architecture FooForCausalLM",
         "it would train with the empty 'dummy' template: set model_type and template in args, or check "
         "ms-swift's supported models", "args.model")]
    multimodal = config_dir(tmp_path, "weird-vl", "FooForConditionalGeneration", vision_config={})
    assert run({"model": multimodal}) == [
        ("error", "model.type.unknown", "ms-swift 4.x has no model_type for architecture "
         "FooForConditionalGeneration and refuses a multimodal model without one", "set model_type and "
         "template in args to a supported model's (see ms-swift's supported models), or register your own",
         "args.model")]


def test_no_architecture_is_ms_swifts_null(tmp_path):
    path = config_dir(tmp_path, "noarch", None)
    [(level, code, message, hint, key)] = run({"model": path})
    assert (level, code) == ("error", "model.type.ambiguous")
    assert message.startswith("ms-swift 4.x cannot tell noarch's model_type and refuses to start: config.json "
                              "names no architecture (ms-swift's 'null'), which matches bert, jev, ")


def test_other_commands_and_hub_ids_are_not_checked(tmp_path):
    path = config_dir(tmp_path, "qwen2.5-0.5b-sft")
    assert run({"model": path}, command="export") == []
    assert run({"model": "someone/qwen2.5-finetune"}) == []  # not in a local cache: no config to read


def test_a_cached_hub_id_is_named_by_its_id(tmp_path, monkeypatch):
    hub = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    snap = hub / "models--someone--qwen2.5-finetune" / "snapshots" / "abc"
    config_dir(snap.parent, "abc")
    assert run({"model": "someone/qwen2.5-finetune"}) == [
        ("error", "model.type.ambiguous", AMBIGUOUS.format("qwen2.5-finetune", QWEN2, "qwen2, qwen2_gte"),
         "--set model_type=qwen2 --set template=qwen2_5 (its name is closest to the registered qwen2.5-3b)",
         "args.model")]
    registered = hub / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots" / "abc"
    config_dir(registered.parent, "abc")
    assert run({"model": "Qwen/Qwen2.5-7B-Instruct"}) == []


def test_3x_target_without_its_registry_snapshot_warns_with_the_model_type(tmp_path, monkeypatch):
    monkeypatch.setattr(model, "swift_models", lambda major: ORIGINAL(4) if major == 4 else None)
    path = config_dir(tmp_path, "qwen2.5-0.5b-sft")
    assert run({"model": path}, major=3) == [
        ("warning", "model.type.ambiguous", "ms-swift 4.6.0 (lorakit has no snapshot of 3.x's registry) cannot "
         f"tell qwen2.5-0.5b-sft's model_type: {QWEN2} matches qwen2, qwen2_gte",
         "--set model_type=qwen2 (its name is closest to the registered qwen2.5-0.5b)", "args.model")]
    # 4.x's names are not 3.x's: no did-you-mean from the wrong registry, no template rule
    assert run({"model": path, "model_type": "qwen2_5"}, major=3) == []
    assert run({"model": path, "model_type": "qwen2"}, major=3) == []


# A slice of ms-swift 3.12.6's registry in scripts/gen_swift_models.py's format: one template per
# model type (ModelMeta.template, 'dummy' when unset), no group templates.
V3 = {"swift_version": "3.12.6", "names": {"qwen2.5-0.5b-instruct": "qwen2_5", "qwen2-7b-instruct": "qwen2"},
      "name_templates": {}, "architectures": {QWEN2: ["qwen2", "qwen2_5", "qwen2_gte"]},
      "model_types": {"qwen2": {"template": "qwen", "candidates": ["qwen"]},
                      "qwen2_5": {"template": "qwen2_5", "candidates": ["qwen2_5"]},
                      "qwen2_gte": {"template": "dummy", "candidates": ["dummy"]}},
      "templates": ["dummy", "qwen", "qwen2_5"]}


def test_3x_with_its_snapshot_errors_too_and_needs_no_template(tmp_path, monkeypatch):
    # 3.12.6 refuses as well (swift/llm/model/register.py:614-618) but takes the template from the
    # model_type (register.py:86-87, template_args.py:140-141)
    monkeypatch.setattr(model, "swift_models", lambda major: V3 if major == 3 else ORIGINAL(major))
    path = config_dir(tmp_path, "qwen2.5-0.5b-sft")
    assert run({"model": path}, major=3) == [
        ("error", "model.type.ambiguous", "ms-swift 3.x cannot tell qwen2.5-0.5b-sft's model_type and refuses to "
         f"start: {QWEN2} matches qwen2, qwen2_5, qwen2_gte",
         "--set model_type=qwen2_5 (its name is closest to the registered qwen2.5-0.5b-instruct)", "args.model")]
    assert run({"model": path, "model_type": "qwen2"}, major=3) == []
    # 3.x reads args.json's model_type whoever wrote it
    merged = config_dir(tmp_path, "m", args_json={"swift_version": "3.12.6", "model_type": "qwen2_5"})
    assert run({"model": merged}, major=3) == []


def test_cli_validate_exits_2_with_the_hint(tmp_path):
    from conftest import run_cli

    path = config_dir(tmp_path, "qwen2.5-0.5b-sft")
    preset = tmp_path / "p.yaml"
    preset.write_text(f"extends: single\nargs: {{model: {path}, dataset: [d.jsonl]}}\n")
    result = run_cli(["validate", "-p", str(preset), "--json"])
    assert result.code == 2, result.stdout + result.stderr
    found = {f["code"]: f for f in json.loads(result.stdout)["findings"]}
    assert found["model.type.ambiguous"]["level"] == "error"
    assert found["model.type.ambiguous"]["hint"].startswith("--set model_type=qwen2 --set template=qwen2_5 ")
    fixed = run_cli(["validate", "-p", str(preset), "--json", "--set", "model_type=qwen2", "--set",
                     "template=qwen2_5"])
    codes = {f["code"] for f in json.loads(fixed.stdout)["findings"]}
    assert not codes & {"model.type.ambiguous", "model.template.ambiguous"}, fixed.stdout


def test_the_local_dir_path_imports_nothing_heavy(tmp_path):
    """validate on an ambiguous local dir reads the snapshot and config.json: no torch, no ms-swift."""
    import subprocess
    import sys

    from test_imports import HEAVY, PROBE

    path = config_dir(tmp_path, "qwen2.5-0.5b-sft")
    preset = tmp_path / "p.yaml"
    preset.write_text(f"extends: single\nargs: {{model: {path}, dataset: [d.jsonl]}}\n")
    out = tmp_path / "probe.json"
    result = subprocess.run([sys.executable, "-c", PROBE, str(out), ",".join(HEAVY), "validate", "-p", str(preset),
                             "--set", "model_type=qwen2"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    probe = json.loads(out.read_text())
    assert probe["code"] == 2, result.stderr  # the template error: the rule really ran
    assert "model.template.ambiguous" in result.stderr
    assert probe["heavy"] == [], probe["heavy"]


def test_a_text_model_type_for_a_vision_language_dir_is_an_error(tmp_path):
    """ms-swift #4339: --model_type qwen2_5 on a Qwen2.5-VL dir; ms-swift takes the model_type as
    given and loads the weights with the text family's loader and template."""
    path = config_dir(tmp_path, "Qwen2.5-VL-32B-Instruct", "Qwen2_5_VLForConditionalGeneration",
                      vision_config={"depth": 32})
    assert run({"model": path, "model_type": "qwen2_5"}, major=3) == [
        ("error", "model.type.mismatch",
         f"model_type qwen2_5 is not a model type of {path}: its config.json names "
         "Qwen2_5_VLForConditionalGeneration, whose model types are qwen2_5_vl, mimo_vl; ms-swift would load it "
         "with qwen2_5's loader and template, and the rows fail to encode",
         "model_type: qwen2_5_vl (one of qwen2_5_vl, mimo_vl), or drop model_type and let ms-swift match the "
         "architecture", "args.model_type")]


@pytest.mark.parametrize("arch, model_type", [
    (QWEN2, "qwen2"),  # its own family
    (QWEN2, "qwen2_gte"),  # another type registered for the same architecture
    (QWEN2, "llama"),  # two text families: ms-swift loads it (the template rule speaks)
    ("MyOwnForConditionalGeneration", "qwen2"),  # an architecture the registry does not list
    ("Qwen2_5_VLForConditionalGeneration", "qwen2_vl"),  # a vision-language type for it: not text-only
])
def test_an_explicit_model_type_ms_swift_loads_is_not_a_mismatch(tmp_path, arch, model_type):
    vision = {} if arch.endswith("ForCausalLM") else {"vision_config": {"depth": 2}}
    path = config_dir(tmp_path, "m", arch, **vision)
    assert [f for f in run({"model": path, "model_type": model_type, "template": "qwen2_5"})
            if f[1] == "model.type.mismatch"] == []
