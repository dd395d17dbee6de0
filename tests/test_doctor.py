"""`lorakit doctor`: exit 0 where lorakit can launch ms-swift, 1 where it cannot."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from lorakit import doctor


def test_interpreter_of_reads_the_shebang(tmp_path):
    direct = tmp_path / "a"
    direct.write_text("#!/opt/py/bin/python3.11\nprint()\n")
    via_env = tmp_path / "b"
    via_env.write_text("#!/usr/bin/env sh\n")
    assert doctor.interpreter_of(str(direct)) == "/opt/py/bin/python3.11"
    assert doctor.interpreter_of(str(via_env)).endswith("/sh")
    assert doctor.interpreter_of(str(tmp_path / "missing")) is None


def test_no_swift_on_path_exits_1(cli, tmp_path):
    result = cli(["doctor", "--output-dir", str(tmp_path)], env={"PATH": str(tmp_path)})
    assert result.code == 1
    assert "✗ swift                  not found on PATH  -> pip install 'lorakit[swift]'" in result.stdout.splitlines()
    assert result.stderr == "lorakit cannot launch ms-swift here: fix the ✗ rows\n"


def test_swift_whose_python_lacks_ms_swift_exits_1(cli, tmp_path):
    fake = tmp_path / "swift"
    bare = tmp_path / "bare-python"
    bare.write_text("#!/bin/sh\necho '{\"ms-swift\": null, \"torch\": null, \"transformers\": null, "
                    "\"peft\": null, \"deepspeed\": null, \"flash-attn\": null}'\n")
    bare.chmod(0o755)
    fake.write_text(f"#!{bare}\n")  # a swift whose interpreter reports no packages
    fake.chmod(0o755)
    result = cli(["doctor", "--output-dir", str(tmp_path)], env={"PATH": str(tmp_path)})
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert f"✗ ms-swift               missing  -> {bare} -m pip install ms-swift" in lines
    assert "- deepspeed              not installed  -> only needed for --deepspeed" in lines


def test_the_installed_stack_is_launchable(cli, tmp_path):
    bin_dir = str(Path(sys.executable).parent)
    result = cli(["doctor", "--output-dir", str(tmp_path)],
                 env={"PATH": bin_dir + os.pathsep + os.environ["PATH"]})
    assert result.code == 0, result.stdout
    assert any(line.startswith("✓ ms-swift ") for line in result.stdout.splitlines())


def test_interpreter_of_reads_pips_sh_trampoline(tmp_path):
    # pip (distlib) writes this when the python's path is too long for a shebang or has a space
    script = tmp_path / "swift"
    script.write_text("#!/bin/sh\n'''exec' \"/opt/my envs/py/bin/python\" \"$0\" \"$@\"\n' '''\nimport sys\n")
    assert doctor.interpreter_of(str(script)) == "/opt/my envs/py/bin/python"
    script.write_text("#!/bin/sh\n'''exec' /opt/long/py/bin/python \"$0\" \"$@\"\n' '''\n")
    assert doctor.interpreter_of(str(script)) == "/opt/long/py/bin/python"
    script.write_text("#!/bin/sh\necho hi\n")
    assert doctor.interpreter_of(str(script)) == "/bin/sh"


# --- a fake stack: a swift whose python reports every package, and optionally nvidia-smi --------

VERSIONS = ('{"ms-swift": "4.6.0", "torch": "2.6.0", "transformers": "4.57.0", "peft": "0.17.0", '
            '"deepspeed": null, "flash-attn": null}')
# Under doctor --smoke this python also builds the tiny model ("make_tiny_model" in the -c
# script) and runs the forward pass ("AutoModelForCausalLM"); FAKE_FAIL names the one that fails.
FAKE_PYTHON = f"""#!/bin/sh
case "$2" in
  *importlib.metadata*) echo '{VERSIONS}'; exit 0;;
  *make_tiny_model*) step=tiny;;
  *AutoModelForCausalLM*) step=forward;;
esac
if [ "$FAKE_FAIL" = "$step" ]; then
  echo 'Traceback (most recent call last):' >&2
  echo "RuntimeError: $step broke" >&2
  exit 1
fi
[ "$step" = forward ] && echo 'logits (1, 4, 320), finite'
exit 0
"""
H100S = ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa1111-2222-3333-4444-555566667777)\n"
         "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb1111-2222-3333-4444-555566667777)\n")


def fake_stack(tmp_path: Path, smi: str | None = None) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    python = bin_dir / "python"
    python.write_text(FAKE_PYTHON)
    (bin_dir / "swift").write_text(f"#!{python}\n")
    if smi is not None:
        (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\nprintf '%s' '{smi}'\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return {"PATH": str(bin_dir)}


SMI_FIX = "use ids 0-1 (or UUIDs) as `nvidia-smi -L` lists them, or unset it"


@pytest.mark.parametrize("visible, row", [
    ("0,9", f"✗ CUDA_VISIBLE_DEVICES   names GPU 9 of 2  -> {SMI_FIX}"),
    ("2,3", f"✗ CUDA_VISIBLE_DEVICES   names GPU 2,3 of 2  -> {SMI_FIX}"),
    ("GPU-ffff", f"✗ CUDA_VISIBLE_DEVICES   names GPU GPU-ffff of 2  -> {SMI_FIX}"),
])
def test_a_gpu_this_machine_lacks_is_a_failure(cli, tmp_path, visible, row):
    env = fake_stack(tmp_path, smi=H100S)
    result = cli(["doctor", "--output-dir", str(tmp_path)], env={**env, "CUDA_VISIBLE_DEVICES": visible})
    lines = result.stdout.splitlines()
    assert f"✓ GPUs                   2 GPU(s), CUDA_VISIBLE_DEVICES={visible}" in lines
    assert row in lines
    assert (result.code, result.stderr) == (1, "lorakit cannot launch ms-swift here: fix the ✗ rows\n")


@pytest.mark.parametrize("visible", ["1", "1,0", "GPU-bbbb1111", "GPU-aaaa1111-2222-3333-4444-555566667777"])
def test_gpus_this_machine_has_are_fine(cli, tmp_path, visible):
    env = fake_stack(tmp_path, smi=H100S)
    result = cli(["doctor", "--output-dir", str(tmp_path)], env={**env, "CUDA_VISIBLE_DEVICES": visible})
    assert (result.code, result.stderr) == (0, ""), result.stdout
    assert f"✓ GPUs                   2 GPU(s), CUDA_VISIBLE_DEVICES={visible}" in result.stdout.splitlines()
    assert "CUDA_VISIBLE_DEVICES " not in result.stdout


def test_nvidia_smi_listing_no_gpu_is_a_failure(cli, tmp_path):
    result = cli(["doctor", "--output-dir", str(tmp_path)], env=fake_stack(tmp_path, smi=""))
    assert "✗ GPUs                   0 GPU(s)  -> nvidia-smi lists no GPU: check the driver" \
        in result.stdout.splitlines()
    assert result.code == 1


def test_no_nvidia_smi_is_cpu_only_and_fine(cli, tmp_path):
    result = cli(["doctor", "--output-dir", str(tmp_path)], env=fake_stack(tmp_path))
    assert result.code == 0, result.stdout
    assert "- GPUs                   no nvidia-smi: CPU only here  -> fine for dry-runs, validation and CPU " \
           "smoke runs; train on a GPU machine" in result.stdout.splitlines()


@pytest.mark.parametrize("given, probe", [
    ("a/b/c", "cwd"),  # relative to the cwd, which exists
    ("ABS/a/b/c", "ABS"),  # the nearest existing parent, not the cwd
    ("ABS", "ABS"),
])
def test_disk_row_looks_at_the_nearest_existing_parent(cli, tmp_path, monkeypatch, given, probe):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    given = given.replace("ABS", str(outputs))
    where = {"cwd": work, "ABS": outputs}[probe]
    result = cli(["doctor", "--output-dir", given], env=fake_stack(tmp_path))
    [row] = [line for line in result.stdout.splitlines() if "free disk" in line]
    assert re.fullmatch(rf"[✓-] free disk +[0-9]+\.[0-9] GiB at {re.escape(str(where))}(  -> .*)?", row), row


# --- doctor --smoke: everything that needs torch runs under swift's python ------------------------

@pytest.fixture
def smoke_tmp(tmp_path, monkeypatch):
    """tempfile's dir for the smoke's own temp dir, and train/merge that pretend to work."""
    import tempfile

    from lorakit import smoke

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    real_run = smoke._run

    def run(step, argv, cwd):
        if step in ("train", "merge"):  # lorakit itself, launching swift: test_real_* cover them
            assert argv[:3] == [sys.executable, "-m", "lorakit"]
            (cwd / "output" / "v0-20260101-120000" / "checkpoint-2-merged").mkdir(parents=True, exist_ok=True)
            return ""
        return real_run(step, argv, cwd)

    monkeypatch.setattr(smoke, "_run", run)
    return tmp


@pytest.mark.parametrize("step, name", [("tiny", "tiny model"), ("forward", "forward pass")])
def test_smoke_step_failure_is_one_line_exit_1_and_keeps_its_dir(cli, tmp_path, smoke_tmp, step, name):
    result = cli(["doctor", "--output-dir", str(tmp_path), "--smoke"], env={**fake_stack(tmp_path), "FAKE_FAIL": step})
    assert result.code == 1
    [root] = smoke_tmp.iterdir()
    assert root.name.startswith("lorakit-smoke-")
    lines = result.stderr.splitlines()
    i = lines.index(f"smoke: {name} failed (exit 1); kept {root}")
    assert lines[i + 1:] == ["Traceback (most recent call last):", f"RuntimeError: {step} broke"]
    assert "Traceback" not in "\n".join(lines[:i])


def test_smoke_success_removes_its_temp_dir(cli, tmp_path, smoke_tmp):
    env = fake_stack(tmp_path)
    result = cli(["doctor", "--output-dir", str(tmp_path), "--smoke"], env=env)
    assert result.code == 0, result.stderr
    lines = result.stderr.splitlines()
    root = lines[-1].removeprefix("smoke: ok; removed ")
    python = Path(env["PATH"]) / "python"
    merged = Path(root) / "output" / "v0-20260101-120000" / "checkpoint-2-merged"
    assert lines[0] == f"smoke: tiny model and dataset in {root} (built by {python})"
    assert lines[1].startswith("smoke: train ok (") and lines[2].startswith("smoke: merge ok (")
    assert lines[3].startswith(f"smoke: logits (1, 4, 320), finite from {merged} (")
    assert list(smoke_tmp.iterdir()) == []
