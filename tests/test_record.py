"""The run record: written into the output dir before ms-swift starts, replayed by --from."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from test_launch_cli import fake_env, lorakit, recorded

from lorakit import overrides as layers, presets, record, replay, runindex
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
    [own] = sorted((out / "lorakit-runs").glob("*.yaml"))  # this launch's own record
    assert f"lorakit: run record: {own}" in result.stderr.splitlines()
    assert own.read_text() == (out / "lorakit-run.yaml").read_text()  # and the newest launch's
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
        "(per-device 1 x 1 rank(s) per node x 1 node(s))"]
    # the fake `swift` is not ms-swift's console script: what it runs is unknown, and the record
    # does not pretend it is lorakit's own environment (tests/test_record_swift_env.py: a real one)
    assert data["versions"] == {"lorakit": metadata.version("lorakit"), "ms-swift": None, "torch": None,
                                "transformers": None, "peft": None}
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


def test_each_launch_keeps_its_own_record_and_lorakit_run_yaml_is_the_newest(tmp_path):
    out = str(tmp_path / "out")
    for rank in (4, 16):
        assert launch(tmp_path, ["-p", "single", "--output-dir", out, "--lora-rank", str(rank)]).returncode == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lorakit-run.yaml", "lorakit-runs",
                                                                    "lorakit-runs.jsonl"]
    own = [Path(e["record"]) for e in runindex.read(tmp_path / "out")]  # oldest first
    assert len(set(own)) == 2 and all(p.parent == tmp_path / "out" / "lorakit-runs" for p in own)
    assert [yaml.safe_load(p.read_text())["preset"]["args"]["lora_rank"] for p in own] == [4, 16]
    assert yaml.safe_load((tmp_path / "out" / "lorakit-run.yaml").read_text())["preset"]["args"]["lora_rank"] == 16


def test_other_nodes_write_their_own_record(tmp_path):
    out = tmp_path / "out"
    args = ["-p", "single", "--output-dir", str(out), "--set", "launch.nnodes=2",
            "--set", "launch.master_addr=10.0.0.1"]
    assert launch(tmp_path, args + ["--node-rank", "1"]).returncode == 0
    assert launch(tmp_path, args + ["--node-rank", "0"]).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["lorakit-run.node1.yaml", "lorakit-run.yaml", "lorakit-runs",
                                                     "lorakit-runs.jsonl"]
    assert sorted(e["node_rank"] for e in runindex.read(out)) == [0, 1]
    assert [p.name.endswith("-node1.yaml") for p in sorted((out / "lorakit-runs").iterdir(),
                                                            key=lambda p: p.name.endswith("-node1.yaml"))] == [False, True]
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
    ["-p", "zero2", "--set", "launch.nnodes=2", "--set", "launch.master_addr=h0",
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


def write_record(tmp_path, major=4, **changes) -> Path:
    job = apply_fixups(build_job(presets.load("single"), {}, swift_major=major))
    data = record.contents(job, render(job), cwd=tmp_path, now=datetime(2026, 1, 2, tzinfo=timezone.utc), host="h")
    data.update(changes)
    path = tmp_path / "lorakit-run.yaml"
    path.write_text(record.dumps(data))
    return path


@pytest.mark.parametrize("args, message", [
    (["-p", "single"], "lorakit: error: --from replays the recorded job as it is; it takes no --preset\n"
                       "  hint: drop those options, or copy the record's `preset:` section into a preset\n"),
    (["--node-rank", "1", "--set", "lora_rank=4", "--", "--max_steps", "1"],
     "lorakit: error: --from replays the recorded job as it is; it takes no --set, -- flags\n"
     "  hint: drop those options, or copy the record's `preset:` section into a preset\n"),
])
def test_from_takes_no_job_options(tmp_path, cli, args, message):
    result = cli(["train", "--dry-run", "--from", str(write_record(tmp_path)), *args])
    assert (result.code, result.stdout, result.stderr) == (2, "", message)


HINT = "  hint: restore what lorakit wrote, or copy the record's `preset:` section into a preset and use -p\n"


def edited(tmp_path, edit, sort_keys=False) -> Path:
    """A record as lorakit wrote it, then edited by hand (or by another YAML tool)."""
    path = write_record(tmp_path)
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=sort_keys))
    return path


def test_from_refuses_a_record_this_lorakit_renders_differently(tmp_path, cli):
    """Only the differing items, and the two versions named."""
    path = write_record(tmp_path, versions={"lorakit": "0.0.1"})
    data = yaml.safe_load(path.read_text())
    argv = data["command"]["argv"]
    argv[argv.index("--lora_rank") + 1] = "4"
    argv += ["--use_rslora", "true"]
    data["command"]["env"] = {"CUDA_VISIBLE_DEVICES": "0,1"}
    path.write_text(yaml.safe_dump(data))
    result = cli(["train", "--from", str(path), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        f"lorakit: error: --from {path}: this lorakit {metadata.version('lorakit')} renders the record "
        "differently from lorakit 0.0.1, which wrote it:\n"
        "  - env CUDA_VISIBLE_DEVICES: the record has '0,1', this renders '0'\n"
        "  - --lora_rank: the record has 4, this renders 8\n"
        "  - --use_rslora: the record has true, this renders nothing\n"
        "  hint: relaunch with lorakit 0.0.1, or use the record's `preset:` section as a preset (-p) to take "
        "today's rendering\n")


def test_a_hand_edited_record_of_this_version_is_not_blamed_on_the_version(tmp_path, cli):
    path = edited(tmp_path, lambda d: d["preset"]["args"].update(lora_rank=16))
    result = cli(["train", "--from", str(path), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        f"lorakit: error: --from {path}: the record's preset: section renders differently from its command: "
        "section (edited by hand?):\n"
        "  - --lora_rank: the record has 8, this renders 16\n"
        "  hint: restore the record as lorakit wrote it, or copy its `preset:` section into a preset and use -p\n")


def test_a_record_resaved_with_sorted_keys_replays(tmp_path, cli):
    """Key order is not a difference: argparse reads flags in any order (not a flag's values)."""
    path = edited(tmp_path, lambda d: None, sort_keys=True)
    result = cli(["train", "--from", str(path), "--dry-run", "--format", "json"])
    assert result.code == 0, result.stderr
    recorded_argv = yaml.safe_load(path.read_text())["command"]["argv"]
    replayed = yaml.safe_load(result.stdout)["argv"]
    assert replayed != recorded_argv and replay._by_flag(replayed) == replay._by_flag(recorded_argv)
    # a list's order is a value's order: that still counts
    path = edited(tmp_path, lambda d: d["command"]["argv"].__setitem__(
        slice(7, 9), list(reversed(d["command"]["argv"][7:9]))))
    result = cli(["train", "--from", str(path), "--dry-run"])
    assert result.code == 2
    en, zh = "'AI-ModelScope/alpaca-gpt4-data-en#500'", "'AI-ModelScope/alpaca-gpt4-data-zh#500'"
    assert f"  - --dataset: the record has {zh} {en}, this renders {en} {zh}" in result.stderr.splitlines()


@pytest.mark.parametrize("edit, problem", [
    (lambda d: d.update(swift_major="abc"), "key 'swift_major' must be one of 3, 4, got 'abc'"),
    (lambda d: d.update(swift_major=5), "key 'swift_major' must be one of 3, 4, got 5"),
    (lambda d: d["preset"].update(launch=[1]),
     "preset: key 'launch' must be a mapping, got list (write 'launch:' followed by indented 'key: value' lines)"),
    (lambda d: d["preset"]["launch"].update(bogus=1),
     "preset: unknown key launch.'bogus' (did you mean 'gpus'? allowed: " + ", ".join(presets.LAUNCH_KEYS) + ")"),
    (lambda d: d["preset"].update(extends="zero2"),
     "preset: unknown key 'extends' (a record's preset is resolved: command, launch, args, env)"),
    (lambda d: d["preset"].update(args=["x"]),
     "preset: key 'args' must be a mapping, got list (write 'args:' followed by indented 'key: value' lines)"),
    (lambda d: d["preset"].update(command="train"),
     f"preset: key 'command' must be one of {', '.join(presets.COMMANDS)}, got 'train' ('sft' trains with swift "
     "sft, 'export' merges with swift export, 'rlhf' runs swift rlhf (DPO, KTO, GRPO...), infer/deploy/eval/rollout "
     "the swift command of that name)"),
    (lambda d: d["preset"].pop("command"), "preset: key 'command' is missing"),
    (lambda d: d.update(preset=[1]), "key 'preset' must be a mapping, got list"),
    (lambda d: d.update(versions=["0.1.0"]), "key 'versions' must be a mapping, got list"),
    (lambda d: d["command"]["env"].update(NNODES=2), "command: key env.NNODES must be a string, got int"),
    (lambda d: d["command"].update(env=None), "command: key 'env' must be a mapping, got NoneType"),
    (lambda d: d["command"].update(argv="swift sft"), "command: key 'argv' must be a list of strings, got str"),
    (lambda d: d["command"]["argv"].insert(2, 8), "command: key argv[2] must be a string, got int"),
    (lambda d: d.update(command=None), "key 'command' must be a mapping, got NoneType"),
    (lambda d: d.update(notes="x"),
     "unknown key 'notes' (a run record has lorakit_record, time, host, cwd, git, versions, swift_major, "
     "preset_name, base_model, preset, adjustments, command)"),
])
def test_a_bad_record_names_the_file_and_key(tmp_path, cli, edit, problem):
    path = edited(tmp_path, edit)
    result = cli(["train", "--from", str(path), "--dry-run"])
    assert (result.code, result.stdout, result.stderr) == (2, "", f"lorakit: error: --from {path}: {problem}\n{HINT}")


def test_every_problem_of_a_record_at_once(tmp_path, cli):
    def edit(d):
        d.update(swift_major="abc")
        d["preset"]["launch"]["bogus"] = 1
        d["command"]["env"]["NNODES"] = 2
    path = edited(tmp_path, edit)
    result = cli(["train", "--from", str(path), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr == (
        f"lorakit: error: --from {path}: 3 problems:\n"
        "  - key 'swift_major' must be one of 3, 4, got 'abc'\n"
        "  - preset: unknown key launch.'bogus' (did you mean 'gpus'? allowed: " + ", ".join(presets.LAUNCH_KEYS)
        + ")\n"
        "  - command: key env.NNODES must be a string, got int\n" + HINT)


def test_a_record_for_another_ms_swift_major_is_refused(tmp_path, cli, monkeypatch):
    path = write_record(tmp_path, major=3)
    monkeypatch.setattr(record, "swift_on_path", lambda *a: "/opt/s4/bin/swift")
    monkeypatch.setattr(record, "swift_version", lambda swift: "4.6.0" if swift == "/opt/s4/bin/swift" else "?")
    result = cli(["train", "--from", str(path)])
    # the record is fine, the installed ms-swift is not the one it needs: an environment problem
    assert (result.code, result.stdout, result.stderr) == (
        1, "", f"lorakit: error: --from {path}: the record was made for ms-swift 3.x; the `swift` on PATH "
               "(/opt/s4/bin/swift) runs ms-swift 4.6.0 (4.x)\n"
               "  hint: put an ms-swift 3.x `swift` first on PATH (or pip install 'ms-swift>=3,<4' in its "
               "environment), or copy the record's `preset:` section into a preset and render it for 4.x with -p\n")
    # a dry-run prints the recorded 3.x command (for a machine that has 3.x), and says so
    dry = cli(["train", "--from", str(path), "--dry-run"])
    assert dry.code == 0, dry.stderr
    assert "    --train_type lora \\" in dry.stdout.splitlines()
    assert ("lorakit: the `swift` on PATH (/opt/s4/bin/swift) runs ms-swift 4.6.0; rendering the record for 3.x as "
            "it ran (a launch here is refused)") in dry.stderr.splitlines()
    # but not as an sbatch script: it puts this machine's (4.x) swift first on PATH (a hostile review)
    batch = cli(["train", "--from", str(path), "--dry-run", "--format", "sbatch"])
    assert (batch.code, batch.stdout) == (1, ""), batch.stderr
    assert "the record was made for ms-swift 3.x" in batch.stderr
    # the same major, or no ms-swift at all (a dry-run on a laptop): fine
    for installed in ("3.12.1", None):
        monkeypatch.setattr(record, "swift_version", lambda swift: installed)
        result = cli(["train", "--from", str(path), "--dry-run"])
        assert result.code == 0, result.stderr
        assert "    --train_type lora \\" in result.stdout.splitlines()


@pytest.mark.parametrize("text", ["just text\n", "lorakit_record: 0\n", "[1, 2]\n", "a: [1\n"])  # 99: newer, test_runs_hostile
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
    resolved = layers.apply_overrides(presets.load("merge"), [("args.adapters", ["/ckpt"], "--adapters"),
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


def test_an_output_dir_under_a_file_is_refused_before_anything_starts(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = launch(tmp_path, ["-p", "single", "--output-dir", str(blocker / "out")])
    assert result.returncode == 2
    assert not (tmp_path / "rec.json").exists()  # ms-swift never started
    assert (f"error[paths.output_dir.unwritable] args.output_dir (--output-dir): output_dir "
            f"'{blocker / 'out'}' cannot be created: {blocker} is a file") in result.stderr.splitlines()


def test_a_record_that_cannot_be_written_is_refused_before_anything_starts(tmp_path, monkeypatch):
    # the output dir passed the check, then the OS refused the record: a directory where the file
    # goes is what the named output dir holds (exit 2, as cli/common.write_failed has it; a full
    # disk is exit 1: tests/test_leftovers.py), and nothing started
    out = tmp_path / "out"
    out.mkdir()
    (out / "lorakit-run.yaml").mkdir()  # a directory where the record file goes
    result = launch(tmp_path, ["-p", "single", "--output-dir", str(out)])
    assert result.returncode == 2
    assert not (tmp_path / "rec.json").exists()
    assert result.stderr.splitlines()[-2].startswith(
        f"lorakit: error: cannot write the run record {out / 'lorakit-run.yaml'}: ")


def test_output_dir_defaults_like_ms_swift():
    job = build_job(layers.apply_overrides(presets.load("single"), [("args.output_dir", None, "t")]), {},
                    swift_major=4)
    assert record.output_dir(job) == Path("output/Qwen3-8B")
    # a hub cache snapshot is named after its repo (get_model_name), not its commit hash
    snapshot = "/root/.cache/huggingface/hub/models--Qwen--Qwen3-8B/snapshots/0a1b2c3d"
    job = build_job(layers.apply_overrides(presets.load("single"), [("args.output_dir", None, "t"),
                                                                    ("args.model", snapshot, "t")]), {}, swift_major=4)
    assert record.output_dir(job) == Path("output/Qwen3-8B")
    job = build_job(layers.apply_overrides(presets.load("single"), [("args.output_dir", None, "t"),
                                                                    ("args.model", "/m/Qwen2___5-7B/", "t")]), {},
                    swift_major=4)
    assert record.output_dir(job) == Path("output/Qwen2.5-7B")


def test_differences_ignore_flag_order_not_value_order():
    from lorakit.render import Command

    rendered = Command(env={"A": "1", "B": "2"}, argv=["swift", "sft", "--x", "1", "--y", "a", "b", "--z"])
    same = {"env": {"B": "2", "A": "1"}, "argv": ["swift", "sft", "--z", "--y", "a", "b", "--x", "1"]}
    assert replay.differences(rendered, same) == []
    other = {"env": {"A": "1"}, "argv": ["swift", "export", "--y", "b", "a", "--x", "1", "--w", "it's"]}
    assert replay.differences(rendered, other) == [
        "env B: the record has unset, this renders '2'",
        "command: the record has swift export, this renders swift sft",
        "--y: the record has b a, this renders a b",
        "--w: the record has 'it'\"'\"'s', this renders nothing",
        "--z: the record has nothing, this renders (no value)",
    ]
