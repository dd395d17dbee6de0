"""`lorakit merge --adapters Org/name`: a hub adapter, which ms-swift downloads (ms-swift 4.6.0
base_args.py `_init_adapters` -> utils/hub_utils.py `safe_snapshot_download`). Rendered as given,
no checkpoint discovery, no local pre-flight, and the output dir ms-swift's own default: beside
the download, in the hub cache (export_args.py `_init_output_dir`). A value clearly meant as a
local path stays a local path, and missing.

conftest points HOME, HF_HOME and MODELSCOPE_CACHE into a private directory per test.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from lorakit.mergepick import hub_adapter
from test_merge import (  # noqa: F401  (fake: a fixture)
    EXISTS_COMMENT,
    NEW_DIR,
    fake,
    lorakit,
    make_base,
    merge_record,
)

HUB_NOTE = "lorakit: --adapters swift/test_bert is not a local path: a hub adapter, which ms-swift downloads from "
UNCHECKED = ("lorakit: the base model (named by the adapter's args.json) and the adapter's weights come from the "
             "hub, so lorakit cannot check them before the download")
DEFAULT = " (ms-swift's default for a hub adapter: beside its download)"
WHERE = "  hint: pass a checkpoint-N directory, a run directory (vN-YYYYMMDD-HHMMSS) or a training output_dir"


def ms_cache() -> Path:
    return Path(os.environ["MODELSCOPE_CACHE"]).resolve()


def hf_repo(name: str = "swift--test_bert") -> Path:
    return Path(os.environ["HF_HOME"], "hub", f"models--{name}").resolve()


def rendered(adapters: str, output: Path, *extra: str) -> str:
    lines = ["swift export", "--merge_lora true", *extra, f"--adapters {shlex.quote(adapters)}",
             f"--output_dir {shlex.quote(str(output))}"]
    return " \\\n    ".join(lines) + "\n"


def swift_source(stderr: str) -> str:
    """'ms-swift 4.6.0 (installed here)' or the like: what the machine running the tests has."""
    return stderr.rsplit("; rendering for ", 1)[1].splitlines()[0]


def test_hub_adapter_is_rendered_as_given_into_ms_swifts_default_output(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli(["merge", "--adapters", "swift/test_bert", "--dry-run"])
    assert result.code == 0, result.stderr
    target = ms_cache() / "models" / "swift--test_bert" / "snapshots" / "master-merged"
    assert result.stdout == rendered("swift/test_bert", target)
    assert result.stderr.splitlines() == [
        HUB_NOTE + "ModelScope",
        UNCHECKED,
        f"lorakit: merging swift/test_bert into the base model its args.json names -> {target}{DEFAULT}; "
        f"rendering for {swift_source(result.stderr)}",
    ]
    assert not target.parent.exists()  # a dry-run creates nothing in the cache


@pytest.mark.parametrize("legacy", [
    "models/swift/test_bert",  # modelscope <= 1.37 with MODELSCOPE_CACHE set
    "hub/models/swift/test_bert",  # modelscope <= 1.37's default cache
])
def test_a_legacy_modelscope_download_is_reused_as_modelscope_does(cli, legacy):
    old = ms_cache() / legacy
    old.mkdir(parents=True)
    (old / "adapter_config.json").write_text("{}")
    result = cli(["merge", "--adapters", "swift/test_bert", "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == rendered("swift/test_bert", old.with_name("test_bert-merged"))


def test_a_dotted_name_is_looked_for_as_modelscope_stores_it(cli):
    old = ms_cache() / "models" / "Org" / "lora-v1___5"  # '.' -> '___' in the legacy layout
    old.mkdir(parents=True)
    (old / "args.json").write_text("{}")
    result = cli(["merge", "--adapters", "Org/lora-v1.5", "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == rendered("Org/lora-v1.5", old.with_name("lora-v1___5-merged"))
    (old / "args.json").unlink()  # an empty legacy dir is not reused: the new layout, name as typed
    result = cli(["merge", "--adapters", "Org/lora-v1.5", "--dry-run"])
    assert result.stdout == rendered("Org/lora-v1.5", ms_cache() / "models/Org--lora-v1.5/snapshots/master-merged")


def test_a_subfolder_of_the_repo_is_joined_on(cli):
    result = cli(["merge", "--adapters", "swift/test_bert:runs/checkpoint-10", "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == rendered(
        "swift/test_bert:runs/checkpoint-10",
        ms_cache() / "models/swift--test_bert/snapshots/master/runs/checkpoint-10-merged")


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("how", [["--set", "use_hf=true"], ["--", "--use_hf", "true"], []])
def test_hugging_face_default_output_needs_the_commit_of_an_earlier_download(cli, monkeypatch, how):
    if not how:
        monkeypatch.setenv("USE_HF", "1")  # ms-swift's use_hf_hub()
    result = cli(["merge", "--adapters", "swift/test_bert", "--dry-run", *how])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        HUB_NOTE + "Hugging Face",
        UNCHECKED,
        "lorakit: error: cannot tell where ms-swift would write the merge of hub adapter swift/test_bert: beside "
        f"its download, {hf_repo()}/snapshots/COMMIT-merged, and the commit is known only once Hugging Face is asked",
        "  hint: pass --output-dir DIR for the merged model",
    ]
    (hf_repo() / "refs").mkdir(parents=True)
    (hf_repo() / "refs" / "main").write_text(SHA + "\n")  # an earlier download of 'main'
    result = cli(["merge", "--adapters", "swift/test_bert", "--dry-run", *how])
    assert result.code == 0, result.stderr
    extra = ["--use_hf true"] if how else []
    assert result.stdout == rendered("swift/test_bert", hf_repo() / "snapshots" / f"{SHA}-merged", *extra)


def test_output_dir_is_taken_as_given(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("USE_HF", "1")  # no commit known: --output-dir is all it needs
    monkeypatch.chdir(tmp_path)
    result = cli(["merge", "--adapters", "swift/test_bert", "--output-dir", "merged", "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == rendered("swift/test_bert", tmp_path / "merged")
    assert result.stderr.splitlines()[2] == (
        f"lorakit: merging swift/test_bert into the base model its args.json names -> {tmp_path / 'merged'}; "
        f"rendering for {swift_source(result.stderr)}")


def test_model_is_checked_where_it_is_local(cli, tmp_path):
    base = make_base(tmp_path / "base")
    result = cli(["merge", "--adapters", "swift/test_bert", "--model", str(base), "--output-dir",
                  str(tmp_path / "m"), "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == rendered("swift/test_bert", tmp_path / "m", f"--model {base}")
    assert result.stderr.splitlines() == [
        HUB_NOTE + "ModelScope",
        "lorakit: the adapter's weights come from the hub, so lorakit cannot check them before the download",
        f"lorakit: merging swift/test_bert into {base} (from --model) -> {tmp_path / 'm'}; "
        f"rendering for {swift_source(result.stderr)}",
    ]
    gptq = make_base(tmp_path / "gptq", quant="gptq")
    result = cli(["merge", "--adapters", "swift/test_bert", "--model", str(gptq), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2].startswith(f"lorakit: error: base model {gptq} is GPTQ-quantized")
    result = cli(["merge", "--adapters", "swift/test_bert", "--model", str(tmp_path / "gone"), "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2] == f"lorakit: error: base model {tmp_path / 'gone'} does not exist (named by --model)"


def test_pick_is_for_a_local_run(cli):
    result = cli(["merge", "--adapters", "swift/test_bert", "--pick", "best", "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "lorakit: error: --pick best chooses among the checkpoints of a local run; hub adapter swift/test_bert is "
        "one adapter",
        "  hint: drop --pick, or pass a local run or output dir",
    ]


@pytest.mark.parametrize("value, shown", [
    ("./swift/test_bert", "swift/test_bert"),  # ./ : a path
    ("~/swift/test_bert", "HOME/swift/test_bert"),
    ("/models/swift/test_bert", "/models/swift/test_bert"),
    ("output/v0-20260101-100000", "output/v0-20260101-100000"),  # named like training output
    ("org/checkpoint-5", "org/checkpoint-5"),
    ("org/last-checkpoint", "org/last-checkpoint"),
    ("data/test_bert", "data/test_bert"),  # data/ is a directory here
    ("test_bert", "test_bert"),  # no Org/name id
    ("a/b/c", "a/b/c"),
    ("swift/test bert", "swift/test bert"),
    ("swift/test_bert:", "swift/test_bert:"),
])
def test_a_path_clearly_meant_as_local_still_does_not_exist(cli, tmp_path, monkeypatch, value, shown):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    shown = shown.replace("HOME", os.environ["HOME"])
    result = cli(["merge", "--adapters", value, "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"lorakit: error: {shown} does not exist", WHERE]


def test_hub_adapter_unit(tmp_path):
    (tmp_path / "swift" / "test_bert").mkdir(parents=True)
    assert hub_adapter("swift/test_bert", tmp_path) is None  # it exists here: local, as for ms-swift
    assert hub_adapter("swift/test_bert", tmp_path / "swift") == "swift/test_bert"
    assert hub_adapter("swift/other", tmp_path) is None  # swift/ is a directory here: a path
    (tmp_path / "swift" / "test_bert" / "sub").mkdir()
    assert hub_adapter("swift/test_bert:sub", tmp_path) is None  # ms-swift: `id:sub` spelled id/sub exists
    assert hub_adapter("Qwen/Qwen2.5-0.5B-lora:sub", tmp_path) == "Qwen/Qwen2.5-0.5B-lora:sub"
    assert hub_adapter("Qwen/x.jsonl", tmp_path) is None  # a data file's suffix: a path
    assert hub_adapter("Qwen/x\0y", tmp_path) is None


# --- never lose work, with a hub adapter too ---------------------------------------------------

def hub_target() -> Path:
    return ms_cache() / "models" / "swift--test_bert" / "snapshots" / "master-merged"


def test_an_existing_default_output_needs_force(cli):
    old = make_base(hub_target(), nbytes=10)
    result = cli(["merge", "--adapters", "swift/test_bert", "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: output dir {old} already exists; refusing to overwrite it",
        "  hint: pass --output-dir NEW_DIR, or --force to replace it after a successful merge",
    ]
    forced = cli(["merge", "--adapters", "swift/test_bert", "--dry-run", "--force"])
    assert forced.code == 0, forced.stderr
    assert forced.stdout == EXISTS_COMMENT + rendered("swift/test_bert", old)


def test_force_swaps_in_the_merge_of_a_hub_adapter_and_records_its_base(fake, tmp_path):
    old = make_base(hub_target(), nbytes=10)
    (old / "KEEP").write_text("yesterday")
    env = dict(fake, FAKE_ARGS_JSON=json.dumps({"model": "Qwen/Qwen2.5-0.5B", "template": "qwen"}))
    result = lorakit(["merge", "--adapters", "swift/test_bert", "--force"], env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv == ["export", "--merge_lora", "true", "--adapters", "swift/test_bert",
                    "--output_dir", f"{old}.lorakit-tmp"]
    assert not (old / "KEEP").exists() and (old / "model.safetensors").stat().st_size > 4096
    assert sorted(p.name for p in old.parent.iterdir()) == ["master-merged"]
    data = merge_record(old)
    assert data["base_model"] == {"model": "Qwen/Qwen2.5-0.5B", "source": "args.json of hub adapter swift/test_bert"}
    assert data["command"]["argv"] == ["swift", "export", "--merge_lora", "true", "--adapters", "swift/test_bert",
                                       "--output_dir", str(old)]


def test_record_says_when_the_merged_model_names_no_base(fake, tmp_path):
    result = lorakit(["merge", "--adapters", "swift/test_bert", "--output-dir", "m"], fake, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert merge_record(tmp_path / "m")["base_model"] == {
        "model": None, "source": "args.json of hub adapter swift/test_bert"}


@pytest.mark.parametrize("where", ["cache", "download"])
def test_output_never_replaces_the_hub_cache_or_the_download(cli, where):
    legacy = ms_cache() / "models" / "swift" / "test_bert"
    legacy.mkdir(parents=True)
    (legacy / "adapter_config.json").write_text("{}")
    given = ms_cache() if where == "cache" else legacy
    result = cli(["merge", "--adapters", "swift/test_bert", "--output-dir", str(given), "--force", "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: output dir {given} would replace the download of hub adapter swift/test_bert ({legacy})",
        NEW_DIR,
    ]
    assert (legacy / "adapter_config.json").exists()
