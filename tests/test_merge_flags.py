"""`lorakit merge ... -- --flag value`: `swift export` flags after `--`, checked against the export
flag snapshot as train's are; and `--dry-run --format text|sh|json`, the same exports train prints."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lorakit import envvars
from test_merge import (  # noqa: F401  (tree, fake: fixtures)
    EXISTS_COMMENT,
    fake,
    lorakit,
    make_base,
    make_output,
    old_output,
    rendered,
    tree,
)


def with_flags(ckpt: Path, output: Path, *flags: str) -> str:
    """rendered(), with `--` flags where ms-swift gets them: after the preset's, before the paths."""
    head, rest = rendered(ckpt, output).split("    --adapters", 1)
    return head + "".join(f"    {flag} \\\n" for flag in flags) + "    --adapters" + rest


def test_flags_after_dashdash_go_to_swift_export(cli, tree):
    _, out, ckpt = tree
    result = cli(["merge", "--adapters", str(out), "--dry-run", "--",
                  "--max_shard_size", "2GB", "--safe_serialization", "false"])
    assert result.code == 0, result.stderr
    assert result.stdout == with_flags(ckpt, Path(f"{ckpt}-merged"), "--max_shard_size 2GB",
                                       "--safe_serialization false")


def test_flags_are_launched_too(tree, fake, tmp_path):
    _, out, ckpt = tree
    result = lorakit(["merge", "--adapters", str(out), "--", "--max_shard_size=2GB"], fake)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "argv.json").read_text()) == [
        "export", "--merge_lora", "true", "--max_shard_size", "2GB", "--adapters", str(ckpt),
        "--output_dir", f"{ckpt}-merged"]


def test_model_after_dashdash_is_the_base_model(cli, tree, tmp_path):
    _, out, ckpt = tree
    other = make_base(tmp_path / "other")
    result = cli(["merge", "--adapters", str(out), "--dry-run", "--", "--model", str(other)])
    assert result.code == 0, result.stderr
    assert result.stdout == with_flags(ckpt, Path(f"{ckpt}-merged"), f"--model {other}")
    assert f"lorakit: merging into {other} (from -- extra flags) -> {ckpt}-merged; " in result.stderr


def test_an_unknown_flag_is_a_finding_with_did_you_mean(cli, tree):
    _, out, _ = tree
    result = cli(["merge", "--adapters", str(out), "--dry-run", "--", "--max_shard_sise", "2GB"])
    assert (result.code, result.stdout) == (2, "")
    lines = result.stderr.splitlines()
    version = lines[1].rsplit("rendering for ms-swift ", 1)[1].split(" ", 1)[0]  # the snapshot's: 4.6.0 here
    assert lines[2:] == [
        f"error[flags.unknown] args.max_shard_sise (-- extra flags): unknown flag --max_shard_sise for ms-swift "
        f"{version} `swift export`",
        "  hint: did you mean max_shard_size?",
        "lorakit: not launching: 1 error(s) above",
    ]


def test_a_value_of_the_wrong_type_is_a_finding(cli, tree):
    _, out, _ = tree
    result = cli(["merge", "--adapters", str(out), "--dry-run", "--", "--safe_serialization", "maybe"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-3].startswith(
        "error[flags.value] args.safe_serialization (-- extra flags): ")


@pytest.mark.parametrize("flags, error, hint", [
    (["--adapters", "x"], "merge: --adapters after `--`: lorakit merge passes ms-swift's --adapters itself",
     "give it as lorakit's --adapters option, before `--`"),
    (["--output_dir", "x"], "merge: --output_dir after `--`: lorakit merge passes ms-swift's --output_dir itself",
     "give it as lorakit's --output-dir option, before `--`"),
    (["--output-dir=x"], "merge: --output-dir after `--`: lorakit merge passes ms-swift's --output_dir itself",
     "give it as lorakit's --output-dir option, before `--`"),
    (["--output_d", "x"], "merge: --output_d after `--`: lorakit merge passes ms-swift's --output_dir itself",
     "give it as lorakit's --output-dir option, before `--`"),  # argparse's abbreviation
    (["--dry-run"], "merge: --dry-run comes after `--`, so it would go to ms-swift, which has no such flag",
     "put --dry-run before `--`: it is a lorakit option"),
    (["--max_shard_size", "2GB", "--force"],
     "merge: --force comes after `--`, so it would go to ms-swift, which has no such flag",
     "put --force before `--`: it is a lorakit option"),
    (["--model"], "merge: --model after `--` has no value", "write --model VALUE"),
    (["2GB"], "merge: unexpected '2GB': ms-swift flags go after `--`, each as --flag VALUE",
     "e.g. lorakit merge --adapters CKPT -- --max_shard_size 2GB"),
    (["--exist_ok", "true"],
     "exist_ok is set: ms-swift then skips the merge when the output dir exists and still exits 0",
     "drop exist_ok; lorakit merge --force replaces an existing output after a successful merge"),
    (["--exist_o", "true"],
     "exist_ok is set: ms-swift then skips the merge when the output dir exists and still exits 0",
     "drop exist_ok; lorakit merge --force replaces an existing output after a successful merge"),
    (["--merge_lora", "false"], "merge_lora is 'false': `swift export` would then merge nothing",
     "drop merge_lora (the merge preset sets it to true)"),
])
def test_flags_lorakit_merge_must_not_pass(cli, tree, flags, error, hint):
    _, out, _ = tree
    result = cli(["merge", "--adapters", str(out), "--dry-run", "--", *flags])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [f"lorakit: error: {error}", f"  hint: {hint}"]


def test_a_stray_word_without_dashdash_is_refused(cli, tree):
    _, out, _ = tree
    result = cli(["merge", "--adapters", str(out), "--dry-run", "merged"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "lorakit: error: merge: unexpected 'merged': ms-swift flags go after `--`, each as --flag VALUE",
        "  hint: e.g. lorakit merge --adapters CKPT -- --max_shard_size 2GB",
    ]


def test_a_swift_flag_before_dashdash_is_a_usage_error(cli, tree):
    _, out, _ = tree
    result = cli(["merge", "--adapters", str(out), "--dry-run", "--max_shard_size", "2GB"])
    assert (result.code, result.stdout) == (2, "")
    assert "No such option: --max_shard_size" in result.stderr


# --- --format ---------------------------------------------------------------------------------

UNSET = [*envvars.LAUNCH, *envvars.SCRUBBED]  # exports.unset_vars of a job that sets none


def launch(ckpt: Path, output: Path, findings: list, *flags: str) -> dict:
    return {"preset": "merge", "command": "export", "swift_major": 4, "node_rank": None, "env": {},
            "unset": UNSET, "unset_prefixes": ["TORCHELASTIC_"],
            "argv": ["swift", "export", "--merge_lora", "true", *flags, "--adapters", str(ckpt),
                     "--output_dir", str(output)],
            "findings": findings}


def test_json_has_the_shape_of_trains(cli, tree):
    _, out, ckpt = tree
    result = cli(["merge", "--adapters", str(out), "--dry-run", "--format", "json", "--swift-version", "4",
                  "--", "--max_shard_size", "2GB"])
    assert result.code == 0, result.stderr
    expected = launch(ckpt, Path(f"{ckpt}-merged"), [], "--max_shard_size", "2GB")
    assert result.stdout == json.dumps(expected, indent=2) + "\n"
    train = json.loads(cli(["train", "-p", "single", "--dry-run", "--format", "json"]).stdout)
    assert list(json.loads(result.stdout)) == list(train)


def test_json_carries_the_merge_warnings(cli, tmp_path):
    base = make_base(tmp_path / "base", quant="bitsandbytes")
    out = make_output(tmp_path, str(base))
    ckpt = out / "v1-20260102-100000" / "checkpoint-6"
    result = cli(["merge", "--adapters", str(out), "--dry-run", "--format", "json", "--swift-version", "4"])
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == launch(ckpt, Path(f"{ckpt}-merged"), [{
        "level": "warning", "code": "merge.base.bnb",
        "message": f"base model {base} is bitsandbytes-quantized ({base / 'config.json'}): PEFT dequantizes it "
                   "to merge and re-quantizes the result, which loses precision",
        "hint": "merge into the unquantized model instead (--model ORIGINAL) for an exact result",
        "key": "", "file": ""}])


def test_json_under_force_names_the_final_dir(cli, tree):
    _, out, ckpt = tree
    old = old_output(ckpt)
    result = cli(["merge", "--adapters", str(out), "--dry-run", "--force", "--format", "json", "--swift-version", "4"])
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == launch(ckpt, old, [])


def test_text_is_the_default(cli, tree):
    _, out, ckpt = tree
    text = cli(["merge", "--adapters", str(out), "--dry-run", "--format", "text"])
    assert text.code == 0, text.stderr
    assert text.stdout == rendered(ckpt, Path(f"{ckpt}-merged"))


@pytest.mark.parametrize("existing", [False, True])
def test_sh_is_a_script_that_runs_the_same_merge(cli, tree, fake, tmp_path, existing):
    _, out, ckpt = tree
    target = Path(f"{ckpt}-merged")
    if existing:
        old_output(ckpt)
    force = ["--force"] if existing else []
    result = cli(["merge", "--adapters", str(out), "--dry-run", *force, "--format", "sh", "--",
                  "--max_shard_size", "2GB"])
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    comment = EXISTS_COMMENT.splitlines() if existing else []
    assert lines[1:1 + len(comment)] == comment
    assert lines[1 + len(comment):3 + len(comment)] == [
        "# lorakit merge -p merge, rendered for ms-swift 4.x", "set -euo pipefail"]
    assert lines[-5:] == ["exec swift export \\", "    --merge_lora true \\", "    --max_shard_size 2GB \\",
                          f"    --adapters {ckpt} \\", f"    --output_dir {target}"]
    if existing:  # as the comment says: ms-swift refuses the existing dir, so move it away first
        target.rename(tmp_path / "yesterday")
    ran = subprocess.run(["bash", "-c", result.stdout], env=fake, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert json.loads((tmp_path / "argv.json").read_text()) == [
        "export", "--merge_lora", "true", "--max_shard_size", "2GB", "--adapters", str(ckpt),
        "--output_dir", str(target)]


@pytest.mark.parametrize("fmt, error", [
    ("sbatch", "--format 'sbatch': lorakit merge prints text, sh or json"),
    ("swift-yaml", "--format 'swift-yaml': lorakit merge prints text, sh or json"),
    ("yaml", "--format 'yaml': unknown format"),
])
def test_formats_merge_does_not_print(cli, tree, fmt, error):
    _, out, _ = tree
    result = cli(["merge", "--adapters", str(out), "--dry-run", "--format", fmt])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"lorakit: error: {error}", "  hint: one of: text, sh, json"]


@pytest.mark.parametrize("fmt", ["json", "sh"])
def test_format_without_dry_run_launches_nothing(cli, tree, fake, tmp_path, fmt):
    _, out, ckpt = tree
    result = cli(["merge", "--adapters", str(out), "--format", fmt], env=fake)
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"lorakit: error: --format {fmt} only shapes what --dry-run prints; it launches nothing",
        "  hint: add --dry-run",
    ]
    assert not (tmp_path / "argv.json").exists() and not Path(f"{ckpt}-merged").exists()
