"""The run record: written into the output dir before ms-swift starts, replayed by --from."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from test_launch_cli import fake_env, lorakit, recorded

from lorakit import presets, record
from lorakit.fixups import apply_fixups
from lorakit.job import build_job
from lorakit.render import render


def launch(tmp_path, args, record_file="rec.json", cwd=None, **env):
    result = lorakit(["train", *args], fake_env(tmp_path, record_file, **env), cwd=cwd or tmp_path)
    return result


def test_a_launch_writes_the_record_before_swift_starts(tmp_path):
    out = tmp_path / "out"
    # exit:3: the record is there even though ms-swift failed, so it was written before
    result = launch(tmp_path, ["-p", "single", "--output-dir", str(out), "--set", "global_batch_size=32"],
                    FAKE_SWIFT_MODE="exit:3")
    assert result.returncode == 3, result.stderr
    assert f"lorakit: run record: {out / 'lorakit-run.yaml'}" in result.stderr.splitlines()
    data = yaml.safe_load((out / "lorakit-run.yaml").read_text())
    argv, env = recorded(tmp_path / "rec.json")
    assert data["command"]["argv"] == ["swift", *argv]
    assert data["command"]["env"] == {"CUDA_VISIBLE_DEVICES": "0"}
    assert data["command"]["unset"] == []
    assert data["preset_name"] == "single" and data["swift_major"] == 4
    assert data["preset"]["command"] == "sft" and data["preset"]["launch"] == {"gpus": "0"}
    args = data["preset"]["args"]
    assert args["gradient_accumulation_steps"] == 32 and "global_batch_size" not in args
    assert args["output_dir"] == str(out) and args["dataset"] == [
        "AI-ModelScope/alpaca-gpt4-data-en#500", "AI-ModelScope/alpaca-gpt4-data-zh#500"]
    assert data["adjustments"] == [
        "batch.global_batch_size.derived: gradient_accumulation_steps 32 = global_batch_size 32 / "
        "(per-device 1 x 1 rank(s) per node x 1 node(s)); replaces 16 from built-in fragments/lora_sft"]
    assert data["versions"]["lorakit"] == metadata.version("lorakit")
    assert data["versions"]["ms-swift"] == metadata.version("ms-swift")
    assert set(data["versions"]) == {"lorakit", "ms-swift", "torch", "transformers", "peft"}
    assert data["cwd"] == str(tmp_path) and data["host"] and data["git"] is None
    assert datetime.fromisoformat(data["time"]).tzinfo is not None
    assert (out / "lorakit-run.yaml").read_text().startswith(
        "# What lorakit launched. Relaunch it with: lorakit train --from THIS_FILE\n")


def test_the_record_names_the_git_commit(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    (repo / "data.txt").write_text("v1\n")
    subprocess.run(git + ["add", "data.txt"], check=True)
    subprocess.run(git + ["commit", "-qm", "v1"], check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert launch(tmp_path, ["-p", "single"], cwd=repo).returncode == 0
    data = yaml.safe_load((repo / "output" / "lorakit-run.yaml").read_text())
    assert data["git"] == {"commit": head, "dirty": False}
    (repo / "data.txt").write_text("v2\n")
    assert launch(tmp_path, ["-p", "single"], cwd=repo).returncode == 0
    assert yaml.safe_load((repo / "output" / "lorakit-run.yaml").read_text())["git"]["dirty"] is True


def test_a_new_launch_replaces_the_previous_record(tmp_path):
    out = str(tmp_path / "out")
    for rank in (4, 16):
        assert launch(tmp_path, ["-p", "single", "--output-dir", out, "--lora-rank", str(rank)]).returncode == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lorakit-run.yaml"]
    assert yaml.safe_load((tmp_path / "out" / "lorakit-run.yaml").read_text())["preset"]["args"]["lora_rank"] == 16


def test_other_nodes_write_their_own_record(tmp_path):
    out = tmp_path / "out"
    args = ["-p", "single", "--output-dir", str(out), "--set", "launch.nnodes=2",
            "--set", "launch.master_addr=10.0.0.1"]
    assert launch(tmp_path, args + ["--node-rank", "1"]).returncode == 0
    assert launch(tmp_path, args + ["--node-rank", "0"]).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["lorakit-run.node1.yaml", "lorakit-run.yaml"]
    node1 = yaml.safe_load((out / "lorakit-run.node1.yaml").read_text())
    assert node1["command"]["env"]["NODE_RANK"] == "1" and node1["preset"]["launch"]["node_rank"] == 1


def test_dry_run_and_failed_checks_write_no_record(tmp_path, cli):
    out = tmp_path / "out"
    assert cli(["train", "-p", "single", "--output-dir", str(out), "--dry-run"]).code == 0
    assert cli(["train", "-p", "single", "--output-dir", str(out), "--lora-rank", "0"]).code == 2
    assert not out.exists()


@pytest.mark.parametrize("args", [
    ["-p", "single", "--set", "system=It's \"quoted\" $HOME", "--", "--max_steps", "3", "--use_rslora"],
    ["-p", "ddp_device_map", "--gpus", "0,1,2,3", "--set", "global_batch_size=64"],
    ["-p", "zero2", "--swift-version", "3", "--set", "launch.nnodes=2", "--set", "launch.master_addr=h0",
     "--node-rank", "1", "--set", "launch.master_port=29400"],
])
def test_from_relaunches_exactly_the_recorded_job(tmp_path, args):
    out = tmp_path / "out"
    assert launch(tmp_path, [*args, "--output-dir", str(out)] if "--" not in args else
                  [*args[:args.index("--")], "--output-dir", str(out), *args[args.index("--"):]],
                  "first.json").returncode == 0
    [path] = sorted(out.glob("lorakit-run*.yaml"))
    first = recorded(tmp_path / "first.json")
    # a different shell: CUDA_VISIBLE_DEVICES and a stale NNODES must not change the replay
    again = launch(tmp_path, ["--from", str(path)], "again.json", CUDA_VISIBLE_DEVICES="5", NPROC_PER_NODE="3")
    assert again.returncode == 0, again.stderr
    replay = recorded(tmp_path / "again.json")
    assert replay[0] == first[0]
    assert {k: v for k, v in replay[1].items() if k not in ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE")} == \
        {k: v for k, v in first[1].items() if k not in ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE")}
    for name in ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE"):
        assert replay[1].get(name) == first[1].get(name)
    assert f"lorakit: relaunching the job recorded in {path} (" in again.stderr


def test_from_dry_run_prints_the_recorded_command(tmp_path, cli):
    out = tmp_path / "out"
    assert launch(tmp_path, ["-p", "zero2", "--output-dir", str(out)]).returncode == 0
    printed = cli(["train", "--from", str(out / "lorakit-run.yaml"), "--dry-run", "--format", "json"])
    assert printed.code == 0, printed.stderr
    assert yaml.safe_load(printed.stdout)["argv"] == ["swift", *recorded(tmp_path / "rec.json")[0]]


def write_record(tmp_path, **changes) -> Path:
    job = apply_fixups(build_job(presets.load("single"), {}, swift_major=4))
    data = record.build(job, render(job), cwd=tmp_path, now=datetime(2026, 1, 2, tzinfo=timezone.utc), host="h")
    data.update(changes)
    path = tmp_path / "lorakit-run.yaml"
    path.write_text(record.dumps(data))
    return path


@pytest.mark.parametrize("args, message", [
    (["-p", "single"], "lorakit: error: --from replays the recorded job as it is; it takes no --preset\n"
                       "  hint: drop those options, or copy the record's `preset:` section into a preset\n"),
    (["--node-rank", "1", "--set", "lora_rank=4", "--", "--max_steps", "1"],
     "lorakit: error: --from replays the recorded job as it is; it takes no --node-rank, --set, -- flags\n"
     "  hint: drop those options, or copy the record's `preset:` section into a preset\n"),
])
def test_from_takes_no_job_options(tmp_path, cli, args, message):
    result = cli(["train", "--dry-run", "--from", str(write_record(tmp_path)), *args])
    assert (result.code, result.stdout, result.stderr) == (2, "", message)


def test_from_refuses_a_record_this_lorakit_renders_differently(tmp_path, cli):
    path = write_record(tmp_path, command={"env": {"CUDA_VISIBLE_DEVICES": "0"}, "unset": [],
                                           "argv": ["swift", "sft", "--model", "other"]},
                        versions={"lorakit": "0.0.1"})
    result = cli(["train", "--from", str(path), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2].startswith(
        f"lorakit: error: --from {path}: this lorakit renders the record differently from lorakit 0.0.1: argv [")


@pytest.mark.parametrize("text", ["just text\n", "lorakit_record: 99\n", "[1, 2]\n", "a: [1\n"])
def test_from_a_file_that_is_not_a_record(tmp_path, cli, text):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    result = cli(["train", "--from", str(path), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr in (
        f"lorakit: error: --from {path}: not a lorakit run record (format 1)\n"
        "  hint: give the lorakit-run.yaml that `lorakit train` wrote into its output dir\n",
        f"lorakit: error: --from {path}: not valid YAML\n")


def test_neither_preset_nor_record(cli):
    result = cli(["train", "--dry-run"])
    assert (result.code, result.stderr) == (2, "lorakit: error: give a preset (--preset/-p NAME or FILE) or "
                                               "a run record (--from FILE)\n  hint: lorakit presets list shows "
                                               "the built-in presets\n")


def test_merge_record_goes_into_the_merged_dir(tmp_path):
    resolved = presets.apply_overrides(presets.load("merge"), [("args.adapters", ["/ckpt"], "--adapters"),
                                                               ("args.output_dir", str(tmp_path / "m"), "default")])
    job = build_job(resolved, {}, swift_major=4)
    (tmp_path / "m").mkdir()
    path = record.write_merge_record(tmp_path / "m", job, render(job))
    assert path == tmp_path / "m" / "lorakit-run.yaml"
    assert path.read_text().startswith("# What lorakit merged (swift export), written after the merge succeeded.\n")
    data = yaml.safe_load(path.read_text())
    assert data["command"]["argv"] == ["swift", "export", "--merge_lora", "true", "--adapters", "/ckpt",
                                       "--output_dir", str(tmp_path / "m")]
    assert data["preset"] == {"command": "export", "launch": {},
                              "args": {"merge_lora": True, "adapters": ["/ckpt"], "output_dir": str(tmp_path / "m")}}


def test_an_unwritable_output_dir_is_an_environment_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = launch(tmp_path, ["-p", "single", "--output-dir", str(blocker / "out")])
    assert result.returncode == 1
    assert not (tmp_path / "rec.json").exists()  # ms-swift never started
    assert result.stderr.splitlines()[-2].startswith(
        f"lorakit: error: cannot write the run record {blocker / 'out' / 'lorakit-run.yaml'}: ")


def test_output_dir_defaults_like_ms_swift():
    job = build_job(presets.apply_overrides(presets.load("single"), [("args.output_dir", None, "t")]), {},
                    swift_major=4)
    assert record.output_dir(job) == Path("output/Qwen3-8B")
