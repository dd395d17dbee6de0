"""The model_type snapshot (scripts/gen_swift_models.py) must match the installed ms-swift."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

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
    # the rule check_model_type relies on: a local Qwen2 dir is ambiguous without model_type
    assert committed["architectures"]["Qwen2ForCausalLM"][:2] == ["qwen2", "qwen2_gte"]
