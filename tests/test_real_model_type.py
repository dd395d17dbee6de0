"""check_model_type against the real ms-swift 4.6.0 (CPU, no hub).

1. The rule: for many model dirs (config.json only, plus args.json where it matters) ms-swift's
   own resolution (get_model_info_meta then get_template_meta, what `swift sft` runs first)
   refuses exactly where lorakit says error, and accepts every hint lorakit gives, resolving to
   the hinted model_type and template.
2. The whole path on a tiny trainable model whose directory name ms-swift does not know:
   `swift sft` itself refuses it, `lorakit validate` errors with the hint, and `lorakit train`
   with the hinted `--set model_type=... --set template=...` trains a step.

If ms-swift is missing these FAIL: a skipped real test is a hole."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lorakit import presets
from lorakit.checks import model as model_checks
from lorakit.checks.facts import Facts
from lorakit.job import build_job

pytestmark = pytest.mark.real

TABLE = model_checks.swift_models(4)

# What ms-swift does first in `swift sft`: ModelArguments._init_model_info (get_model_info_meta),
# then TemplateArguments.__post_init__ (get_template_meta). One process for every case.
ORACLE = r"""
import json, sys
from swift.model import get_model_info_meta
from swift.template import get_template_meta
out = []
for case in json.load(open(sys.argv[1])):
    try:
        info, meta = get_model_info_meta(case["model"], model_type=case.get("model_type"))
        template = get_template_meta(info, meta, template_type=case.get("template")).template_type
        out.append({"ok": True, "model_type": info.model_type, "template": template})
    except Exception as exc:
        out.append({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]})
json.dump(out, open(sys.argv[2], "w"))
"""

# lorakit's finding -> the start of ms-swift's refusal
REFUSALS = {
    "model.type.ambiguous": "ValueError: Failed to automatically match `model_type`",
    "model.template.ambiguous": "ValueError: Failed to automatically match `template_type`",
    "model.type.invalid": "ValueError: model_type: ",
    "model.template.invalid": "ValueError: template_type: ",
    "model.type.unknown": "ValueError: Model ",
}


def swift_env() -> dict:
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    assert shutil.which("swift", path=env["PATH"]), "ms-swift is not installed: run scripts/test.sh"
    return env


def config_dir(root: Path, name: str, arch: str | None, args_json: dict | None = None, **extra) -> str:
    path = root / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": [arch] if arch else [], **extra}))
    if args_json is not None:
        (path / "args.json").write_text(json.dumps(args_json))
    return str(path)


def build_cases(root: Path) -> list[dict]:
    """Every ambiguous architecture, every single-type one without a template and a few with one,
    under a name without cues and under names with them; registered names, cache layouts,
    args.json, and model_type/template as the user sets them."""
    arches = TABLE["architectures"]
    cases, n = [], 0

    def add(name, arch, args_json=None, extra=None, **args):
        nonlocal n
        n += 1
        cases.append({"model": config_dir(root / str(n), name, arch, args_json, **(extra or {})), **args})

    for arch, types in arches.items():
        own = model_checks.Registry(TABLE, 4).own_template(types[0], None)
        if len(types) > 1 or own is None:
            add("my-finetune", None if arch == "null" else arch)
    for arch in ("Gemma2ForCausalLM", "Phi3SmallForCausalLM", "InternLM3ForCausalLM"):
        if arch in arches and len(arches[arch]) == 1:
            add("my-finetune", arch)
    for name, arch in [("qwen2.5-0.5b-sft", "Qwen2ForCausalLM"), ("my-Qwen2.5-Coder-7B-lora", "Qwen2ForCausalLM"),
                       ("qwq-32b-ft", "Qwen2ForCausalLM"), ("gte-qwen2-sft", "Qwen2ForCausalLM"),
                       ("Qwen3-4B-merged", "Qwen3ForCausalLM"), ("qwen3-4b-thinking-2507-sft", "Qwen3ForCausalLM"),
                       ("llama-3.1-8b-sft", "LlamaForCausalLM"), ("llama-2-7b-x", "LlamaForCausalLM"),
                       ("yi-6b-x", "LlamaForCausalLM"), ("mistral-7b-v0.3-ft", "MistralForCausalLM"),
                       ("chatglm3-6b-ft", "ChatGLMModel"), ("my-deepseek-v3-ft", "DeepseekV3ForCausalLM"),
                       ("Qwen2.5-0.5B-Instruct", "Qwen2ForCausalLM"), ("Qwen2___5-0___5B-Instruct", "Qwen2ForCausalLM"),
                       ("Qwen3-8B", "Qwen3ForCausalLM"),
                       ("hub/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/0123abcd", "Qwen2ForCausalLM"),
                       ("ms/models/Qwen--Qwen2.5-0.5B-Instruct/snapshots/master", "Qwen2ForCausalLM"),
                       ("weird", "FooForCausalLM")]:
        add(name, arch)
    add("weird-vl", "FooForConditionalGeneration", extra={"vision_config": {}})
    for args in [{"model_type": "qwen2"}, {"template": "qwen2_5"}, {"model_type": "qwen2", "template": "qwen2_5"},
                 {"model_type": "qwen2_5"}, {"model_type": "qwen2_gt"}, {"model_type": "qwen2", "template": "qwen25"},
                 {"model_type": "llama"}, {"model_type": "qwen"}]:
        add("qwen2.5-0.5b-sft", "Qwen2ForCausalLM", **args)
    add("Qwen2.5-0.5B-Instruct", "Qwen2ForCausalLM", model_type="qwen2")
    add("Qwen2.5-0.5B-Instruct", "Qwen2ForCausalLM", model_type="qwen2_gte")
    add("Qwen2.5-0.5B-Instruct", "Qwen2ForCausalLM", model_type="llama")
    add("a-merged", "Qwen2ForCausalLM", {"swift_version": "4.6.0", "model_type": "qwen2", "template": "qwen2_5"})
    add("b-merged", "Qwen2ForCausalLM", {"swift_version": "4.6.0", "model_type": "qwen2"})
    add("qwen2.5-merged", "Qwen2ForCausalLM", {"swift_version": "3.12.6", "model_type": "qwen2_5",
                                               "template": "qwen2_5"})
    return cases


def oracle(cases: list[dict], work: Path) -> list[dict]:
    src, dst = work / "cases.json", work / "outcomes.json"
    src.write_text(json.dumps(cases))
    result = subprocess.run([sys.executable, "-c", ORACLE, str(src), str(dst)], env=swift_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(dst.read_text())


def lorakit_says(case: dict) -> list:
    resolved = presets.Resolved(name="t", path=None, data={"command": "sft", "launch": {}, "args": dict(case)},
                                sources={})
    return model_checks.check_model_type(build_job(resolved, {}, swift_major=4), Facts())


def hinted(hint: str) -> dict:
    return dict(re.findall(r"--set (model_type|template)=(\S+)", hint))


def test_lorakit_errors_exactly_where_ms_swift_refuses_and_its_hints_work(tmp_path):
    cases = build_cases(tmp_path / "dirs")
    outcomes = oracle(cases, tmp_path)
    fixes, checked = [], []
    for case, outcome in zip(cases, outcomes):
        findings = lorakit_says(case)
        errors = [f for f in findings if f.level == "error"]
        where = (case, outcome, [(f.code, f.message, f.hint) for f in findings])
        if outcome["ok"]:
            assert not errors, where
            if outcome["model_type"] is None:  # no model_type: the empty 'dummy' template
                assert [f.code for f in findings] == ["model.type.unknown"], where
            else:
                assert findings == [], where
            continue
        assert len(errors) >= 1, where
        assert outcome["error"].startswith(REFUSALS[errors[0].code]), where
        values = hinted(errors[0].hint)
        if values:
            fixes.append({**case, **values})
            checked.append((case, values, errors[0].hint))
    assert len(fixes) >= 40, len(fixes)  # every ambiguous architecture and more
    for (case, values, hint), outcome in zip(checked, oracle(fixes, tmp_path)):
        assert outcome["ok"], (case, hint, outcome)
        expect = {"model_type": case.get("model_type"), "template": case.get("template"), **values}
        assert {k: outcome[k] for k in values} == {k: expect[k] for k in values}, (case, hint, outcome)


@pytest.fixture(scope="module")
def unmapped(tmp_path_factory):
    """A tiny trainable Qwen2 model in a dir ms-swift has no registered name for."""
    from lorakit.tiny import make_tiny_dataset, make_tiny_model

    root = tmp_path_factory.mktemp("unmapped")
    model = make_tiny_model(root / "qwen2.5-tiny-sft")
    data = make_tiny_dataset(root / "data.jsonl", n=8)
    return root, model, data


def run(cmd, cwd, timeout=600):
    return subprocess.run(cmd, cwd=cwd, env=swift_env(), capture_output=True, text=True, timeout=timeout)


def test_swift_sft_itself_refuses_the_dir(unmapped, tmp_path):
    root, model, data = unmapped
    base = ["swift", "sft", "--model", str(model), "--dataset", str(data), "--output_dir", str(tmp_path / "o"),
            "--check_model", "false", "--max_steps", "1"]
    no_type = run(base, root)
    assert no_type.returncode != 0
    assert "Failed to automatically match `model_type`" in no_type.stdout + no_type.stderr
    no_template = run([*base, "--model_type", "qwen2"], root)
    assert no_template.returncode != 0
    assert "Failed to automatically match `template_type`" in no_template.stdout + no_template.stderr


def test_validate_errors_with_the_hint_then_the_hinted_run_trains(unmapped, tmp_path):
    root, model, data = unmapped
    preset = tmp_path / "mine.yaml"
    preset.write_text(yaml.safe_dump({"extends": "single", "args": {
        "model": str(model), "dataset": [str(data)], "output_dir": str(tmp_path / "out"),
        "torch_dtype": "float32", "dataloader_num_workers": 0, "max_length": 128, "check_model": False,
        "max_steps": 1, "gradient_accumulation_steps": 1}}))
    lorakit = [sys.executable, "-m", "lorakit"]

    bare = run([*lorakit, "validate", "-p", str(preset)], tmp_path)
    assert bare.returncode == 2, bare.stdout + bare.stderr
    assert (f"error[model.type.ambiguous] args.model ({preset}): ms-swift 4.x cannot tell qwen2.5-tiny-sft's "
            "model_type and refuses to start: Qwen2ForCausalLM matches qwen2, qwen2_gte\n"
            "  hint: --set model_type=qwen2 --set template=qwen2_5 (its name is closest to the registered "
            "qwen2.5-3b)") in bare.stderr
    sets = re.search(r"hint: (--set model_type=\S+ --set template=\S+)", bare.stderr).group(1).split()

    half = run([*lorakit, "validate", "-p", str(preset), *sets[:2]], tmp_path)
    assert half.returncode == 2, half.stdout + half.stderr
    assert "error[model.template.ambiguous] args.model_type (--set): ms-swift 4.x cannot tell qwen2.5-tiny-sft's " \
           "template and refuses to start: model_type qwen2 has 7 (" in half.stderr
    assert "hint: --set template=qwen2_5 (" in half.stderr

    trained = run([*lorakit, "train", "-p", str(preset), *sets], tmp_path)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    found = sorted((tmp_path / "out").glob("v*-*/checkpoint-1/adapter_config.json"))
    assert len(found) == 1, found
    args = json.loads((found[0].parent / "args.json").read_text())
    assert (args["model_type"], args["template"], args["max_steps"]) == ("qwen2", "qwen2_5", 1)
