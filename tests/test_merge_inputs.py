"""What `lorakit merge` is given and what --dry-run gives back: an empty --adapters is refused (it
would be taken as the current directory), and under --force the printed command names the final
output dir, never the temporary sibling the next --force deletes as its own leftover."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from test_merge import (  # noqa: F401  (tree, fake: fixtures)
    RUN1,
    fake,
    intact,
    old_output,
    rendered,
    tree,
)

WHERE = "pass a checkpoint-N directory, a run directory (vN-YYYYMMDD-HHMMSS) or a training output_dir"


@pytest.mark.parametrize("value", ["", " ", "\t \n"])
def test_empty_adapters_is_refused_not_taken_as_the_cwd(cli, tree, monkeypatch, value):
    _, out, _ = tree
    monkeypatch.chdir(out / RUN1)  # a run: "" would have picked its checkpoint-6
    result = cli(["merge", "--adapters", value, "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"lorakit: error: --adapters {value!r} is empty: it would be taken as the current directory",
        f"  hint: {WHERE}; for the current directory pass . explicitly",
    ]


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_checkpoints_dir_is_refused_too(cli, tree, monkeypatch, value):
    _, out, _ = tree
    monkeypatch.chdir(out)
    result = cli(["checkpoints", value])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"lorakit: error: DIR {value!r} is empty: it would be taken as the current directory",
        f"  hint: {WHERE}; for the current directory pass . explicitly",
    ]


def test_dot_still_means_the_current_directory(cli, tree, monkeypatch):
    _, out, ckpt = tree
    monkeypatch.chdir(out / RUN1)
    result = cli(["merge", "--adapters", ".", "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == rendered(ckpt, Path(f"{ckpt}-merged"))


def test_force_dry_run_prints_the_final_dir_and_pasting_it_never_writes_a_temp_dir(cli, tree, fake, tmp_path):
    _, out, ckpt = tree
    old = old_output(ckpt)
    result = cli(["merge", "--adapters", str(out), "--force", "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == (
        "# The --output_dir below exists, and ms-swift refuses to write into an existing dir: move it\n"
        "# away first (lorakit merge --force, without --dry-run, replaces it only after a successful merge).\n"
        + rendered(ckpt, old))
    assert ".lorakit-" not in result.stdout
    assert result.stderr.splitlines()[2] == (
        f"lorakit: {old} exists: without --dry-run, --force merges into {old}.lorakit-tmp and swaps it in only "
        "after success; the command below writes to the final dir, so move it away first")

    # Pasted as printed while the old model is there: the fake swift refuses the existing dir
    # as ms-swift's export_args.py does, and nothing is written anywhere.
    pasted = subprocess.run(["bash", "-c", result.stdout], env=fake, capture_output=True, text=True, timeout=60)
    assert pasted.returncode == 1 and "FileExistsError" in pasted.stderr
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv == ["export", "--merge_lora", "true", "--adapters", str(ckpt), "--output_dir", str(old)]
    assert intact(old)

    # Moved away first, as the comment says: the merge lands in the final dir.
    old.rename(tmp_path / "yesterday")
    pasted = subprocess.run(["bash", "-c", result.stdout], env=fake, capture_output=True, text=True, timeout=60)
    assert pasted.returncode == 0, pasted.stderr
    assert (old / "model.safetensors").exists()
    assert sorted(p.name for p in old.parent.iterdir() if p.name.startswith(old.name)) == [old.name]


def test_dry_run_without_an_existing_output_has_no_comment(cli, tree):
    _, out, ckpt = tree
    result = cli(["merge", "--adapters", str(out), "--force", "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == rendered(ckpt, Path(f"{ckpt}-merged"))
