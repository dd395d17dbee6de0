"""The model_type snapshot (scripts/gen_swift_models.py) must match the installed ms-swift."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, swift3_python

SNAPSHOT = REPO / "src" / "lorakit" / "data" / "swift_models_v4.json"


def test_models_snapshot_matches_the_installed_ms_swift():
    committed = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_swift_models.py"), "--stdout"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    fresh = json.loads(out.stdout)
    assert fresh["swift_version"] == committed["swift_version"], (
        f"installed ms-swift {fresh['swift_version']} != snapshot {committed['swift_version']}: "
        "run python scripts/gen_swift_models.py")
    assert fresh == committed, "ms-swift's model registry drifted: run python scripts/gen_swift_models.py"
    # the rules check_model_type relies on: a local Qwen2 dir is ambiguous without model_type, and
    # qwen2 has no template of its own (several candidates) while Qwen2.5's hub names carry qwen2_5
    assert committed["architectures"]["Qwen2ForCausalLM"][:2] == ["qwen2", "qwen2_gte"]
    assert committed["model_types"]["qwen2"]["template"] is None
    assert len(committed["model_types"]["qwen2"]["candidates"]) > 1
    assert committed["names"]["qwen2.5-0.5b-instruct"] == "qwen2"
    assert committed["name_templates"]["qwen2.5-0.5b-instruct"] == "qwen2_5"
    assert {"qwen", "qwen2_5", "dummy"} <= set(committed["templates"])


def test_every_registered_name_resolves_a_template():
    """A name ms-swift matches gets its group's template, its model type's, or the only candidate:
    check_model_type says nothing about a registered name, so none may be left without one."""
    data = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    for name, model_type in data["names"].items():
        meta = data["model_types"][model_type]
        template = data["name_templates"].get(name) or meta["template"] or (
            meta["candidates"][0] if len(meta["candidates"]) == 1 else None)
        assert template in data["templates"], (name, model_type, meta)


def test_the_3x_models_snapshot_matches_ms_swift_3():
    """swift_models_v3.json (the 3.x registry: 21 model types share LlamaForCausalLM there) must
    be what 3.12.6's own registry says; CI builds that environment (scripts/test.sh)."""
    python = swift3_python()
    committed = json.loads((REPO / "src" / "lorakit" / "data" / "swift_models_v3.json").read_text(encoding="utf-8"))
    out = subprocess.run([python, str(REPO / "scripts" / "gen_swift_models.py"), "--stdout"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == committed, "run .venv-swift3/bin/python scripts/gen_swift_models.py"
    assert "qwen2_5" in committed["architectures"]["Qwen2ForCausalLM"]
