"""A checkpoint's args.json that ms-swift cannot read (paths.ckpt_args.unreadable): the real
`swift infer` stops while parsing its arguments, in load_args_from_ckpt, before any model loads;
lorakit refuses the same launch first. No model is needed: the failure comes before one is read."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from test_checkpoints import make_adapter
from test_real_swift import swift_env

pytestmark = pytest.mark.real


@pytest.mark.parametrize("content,raised", [("[1, 2]", "AttributeError: 'list' object has no attribute"),
                                            ("{not json", "JSONDecodeError")])
def test_an_unreadable_args_json_stops_ms_swift_before_the_model_and_lorakit_before_launch(tmp_path, content,
                                                                                          raised):
    ckpt = make_adapter(tmp_path / "out" / "v0-20250101-000000" / "checkpoint-5")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 5, "log_history": []}))
    base = tmp_path / "Qwen2.5-0.5B-Instruct"  # named in adapter_config.json: lorakit's preflight finds it
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}))
    config = json.loads((ckpt / "adapter_config.json").read_text())
    (ckpt / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(base)}))
    (ckpt / "args.json").write_text(content)
    done = subprocess.run(["swift", "infer", "--adapters", str(ckpt)], cwd=tmp_path, env=swift_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert raised in said, said[-3000:]
    assert "load_args_from_ckpt" in said, said[-3000:]
    ours = subprocess.run([sys.executable, "-m", "lorakit", "infer", "--adapters", str(ckpt), "--dry-run"],
                          cwd=tmp_path, env=swift_env(), capture_output=True, text=True, timeout=600)
    assert ours.returncode == 2, ours.stderr
    assert f"error[paths.ckpt_args.unreadable] args.adapters (--adapters): {ckpt}/args.json " in ours.stderr


def _junk(root, kind):
    ckpt = make_adapter(root / kind / "checkpoint-1")
    path = ckpt / "args.json"
    if kind == "dir":
        path.mkdir()
    elif kind == "fifo":
        import os
        os.mkfifo(path)
    else:
        path.write_text({"list": "[1]", "number": "7", "bytes": "\udcff"}.get(kind, ""), errors="surrogateescape")
    return ckpt


@pytest.mark.parametrize("kind,why", [
    ("dir", "is a directory"), ("fifo", "is not a regular file (a pipe: ms-swift's read would wait forever)"),
    ("list", "holds a JSON list, not the object of arguments ms-swift saves"),
    ("number", "holds a JSON int, not the object of arguments ms-swift saves"),
    ("bytes", "is no JSON ms-swift can load (json.load fails)")])
def test_each_unreadable_args_json_is_said_where_ms_swift_reads_one(tmp_path, kind, why):
    """Not a real run (pytest.mark.real is module-wide here, the checks alone are fast): infer
    reads args.json by default, training only with load_args true (TrainArguments' default False)."""
    from lorakit import ckptargs

    ckpt = str(_junk(tmp_path, kind))
    assert ckptargs.unreadable({"adapters": [ckpt]}, "infer") == (f"{ckpt}/args.json", why)
    assert ckptargs.loads_args({}, "infer") and not ckptargs.loads_args({}, "sft")
    assert ckptargs.loads_args({"load_args": "true"}, "sft") and not ckptargs.loads_args({"load_args": False}, "deploy")
