"""`lorakit merge` and `lorakit checkpoints` on hand-built ms-swift output trees: discovery,
pre-flight (missing / quantized base, disk), and never losing an existing output.

Launches use a fake `swift` written into tmp_path that writes an output the way ms-swift's
export does (config.json, then model.safetensors) and then succeeds, fails half-way, or traps
SIGTERM; the real ms-swift is in test_real_merge.py.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import struct
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from lorakit import preflight
from lorakit.mergeguard import looks_merged
from lorakit.preflight import human

RUN0, RUN1 = "v0-20260101-100000", "v1-20260102-100000"


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def safetensors(path: Path, nbytes: int) -> None:
    header = json.dumps({"w": {"dtype": "U8", "shape": [nbytes], "data_offsets": [0, nbytes]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * nbytes)


def make_base(root: Path, *, quant: str | None = None, nbytes: int = 4000) -> Path:
    config = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}
    if quant:
        config["quantization_config"] = {"quant_method": quant, "bits": 4}
    write_json(root / "config.json", config)
    safetensors(root / "model.safetensors", nbytes)
    return root


def make_checkpoint(run: Path, step: int, model: str, loss: float, max_steps: int) -> Path:
    ckpt = run / f"checkpoint-{step}"
    write_json(ckpt / "adapter_config.json", {"peft_type": "LORA", "r": 8, "base_model_name_or_path": model})
    safetensors(ckpt / "adapter_model.safetensors", 100)
    write_json(ckpt / "args.json", {"model": model, "model_type": "qwen2", "template": "qwen"})
    write_json(ckpt / "trainer_state.json", {
        "global_step": step, "max_steps": max_steps, "best_model_checkpoint": None,
        "log_history": [{"loss": loss, "step": step}]})
    return ckpt


def make_output(root: Path, model: str) -> Path:
    """Two runs as ms-swift names them; the newer one has a lower loss at step 3 than at step 6,
    and ms-swift 4's relative last-checkpoint link."""
    out = root / "output"
    for name, steps in ((RUN0, {2: 1.5, 4: 1.2}), (RUN1, {3: 0.5, 6: 0.9})):
        write_json(out / name / "args.json", {"model": model})
        for step, loss in steps.items():
            make_checkpoint(out / name, step, model, loss, max_steps=6)
    os.symlink("checkpoint-6", out / RUN1 / "last-checkpoint")
    return out


@pytest.fixture
def tree(tmp_path):
    base = make_base(tmp_path / "base")
    out = make_output(tmp_path, str(base))
    return base, out, out / RUN1 / "checkpoint-6"


EXISTS_COMMENT = (
    "# The --output_dir below exists, and ms-swift refuses to write into an existing dir: move it\n"
    "# away first (lorakit merge --force, without --dry-run, replaces it only after a successful merge).\n")


def rendered(ckpt: Path, output: Path) -> str:
    return ("swift export \\\n    --merge_lora true \\\n"
            f"    --adapters {shlex.quote(str(ckpt))} \\\n    --output_dir {shlex.quote(str(output))}\n")


# --- discovery --------------------------------------------------------------------------------

LAST = f"newest run {RUN1}, last checkpoint (step 6 of 6, 2 checkpoints)"


@pytest.mark.parametrize("where, reason", [
    ("output", LAST),
    (f"output/{RUN1}", f"run {RUN1}, last checkpoint (step 6 of 6, 2 checkpoints)"),
    (f"output/{RUN1}/checkpoint-6", "checkpoint-6 is an adapter checkpoint (step 6)"),
    (f"output/{RUN1}/last-checkpoint", "last-checkpoint links to checkpoint-6, which is an adapter checkpoint (step 6)"),
])
def test_dry_run_renders_the_resolved_checkpoint(cli, tree, tmp_path, monkeypatch, where, reason):
    base, out, ckpt = tree
    monkeypatch.chdir(tmp_path)  # --adapters relative to the cwd; rendered absolute
    result = cli(["merge", "--adapters", where, "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == rendered(ckpt, ckpt.parent / "checkpoint-6-merged")
    assert "last-checkpoint" not in result.stdout and "exist_ok" not in result.stdout
    picked, merging = result.stderr.splitlines()[:2]
    assert picked == f"lorakit: picked {ckpt}: {reason}"
    assert merging.startswith(f"lorakit: merging into {base} (from {ckpt / 'args.json'}) -> {ckpt}-merged; "
                              "rendering for ms-swift ")


def test_pick_best_takes_the_lowest_loss_of_the_newest_run(cli, tree):
    base, out, _ = tree
    best = out / RUN1 / "checkpoint-3"
    result = cli(["merge", "--adapters", str(out), "--pick", "best", "--dry-run"])
    assert result.code == 0, result.stderr
    assert result.stdout == rendered(best, out / RUN1 / "checkpoint-3-merged")
    assert result.stderr.splitlines()[0] == (
        f"lorakit: picked {best}: newest run {RUN1}, best checkpoint by lowest training loss "
        "(no eval_loss logged) (step 3, loss 0.5, 2 checkpoints)")


def test_no_checkpoint_is_a_user_error(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli(["merge", "--adapters", str(tmp_path / "empty"), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"lorakit: error: no adapter checkpoint found under {tmp_path / 'empty'}: the directory is empty",
        "  hint: pass a checkpoint-N directory, a run directory (vN-YYYYMMDD-HHMMSS) or a training output_dir",
    ]


def test_a_second_adapters_is_refused_not_dropped(cli, tree):
    """ms-swift #2904: two adapters for one merge (the first with a trailing comma); the second
    used to replace the first without a word. ms-swift's export merges one (tuner.py:390)."""
    _, out, ckpt = tree
    result = cli(["merge", "--adapters", f"{ckpt},", "--adapters", str(ckpt), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"lorakit: error: --adapters was given 2 times ({ckpt}, {ckpt}): a merge takes one adapter",
        "  hint: merge one adapter per run (lorakit merge --adapters CKPT), then merge the next into the result "
        "with --model MERGED",
    ]


def test_a_trailing_comma_is_named(cli, tree):
    _, out, ckpt = tree
    result = cli(["merge", "--adapters", f"{ckpt},", "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"lorakit: error: {ckpt}, does not exist: the trailing ',' is part of the path",
        f"  hint: drop the comma: --adapters {ckpt}",
    ]


# --- pre-flight -------------------------------------------------------------------------------

def test_missing_local_base_names_it(cli, tmp_path):
    out = make_output(tmp_path, "/gone/Qwen2.5-0.5B")
    ckpt = out / RUN1 / "checkpoint-6"
    result = cli(["merge", "--adapters", str(out), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: base model /gone/Qwen2.5-0.5B does not exist (named by {ckpt / 'args.json'})",
        "  hint: if the model moved, pass its new location with --model PATH (or its hub id)",
    ]


def test_missing_base_given_with_model(cli, tree, tmp_path):
    _, out, _ = tree
    result = cli(["merge", "--adapters", str(out), "--model", str(tmp_path / "nope"), "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2] == \
        f"lorakit: error: base model {tmp_path / 'nope'} does not exist (named by --model)"


def test_model_option_overrides_the_checkpoints_base(cli, tree, tmp_path):
    _, out, ckpt = tree
    other = make_base(tmp_path / "other")
    result = cli(["merge", "--adapters", str(out), "--model", str(other), "--dry-run"])
    assert result.code == 0, result.stderr
    assert f"    --model {other} \\\n" in result.stdout
    assert f"lorakit: merging into {other} (from --model) -> {ckpt}-merged; " in result.stderr


@pytest.mark.parametrize("method, name", [("gptq", "GPTQ"), ("awq", "AWQ")])
def test_gptq_and_awq_bases_are_refused(cli, tmp_path, method, name):
    base = make_base(tmp_path / "base", quant=method)
    out = make_output(tmp_path, str(base))
    result = cli(["merge", "--adapters", str(out), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: base model {base} is {name}-quantized (quantization_config in {base / 'config.json'}): "
        f"a LoRA adapter cannot be merged into {name} weights",
        "  hint: merge into the unquantized model it was made from (--model ORIGINAL), then quantize the "
        f"merged model if you need to (swift export --quant_method {method})",
    ]


@pytest.mark.parametrize("where", [
    "HF_HOME/hub/models--Qwen--Qwen2.5-7B-Instruct-AWQ/snapshots/abc",
    "MODELSCOPE_CACHE/models/Qwen/Qwen2___5-7B-Instruct-AWQ",  # ModelScope stores '.' as '___'
    "MODELSCOPE_CACHE/models/Qwen--Qwen2.5-7B-Instruct-AWQ/snapshots/master",
])
def test_quantized_hub_base_found_in_a_hub_cache(cli, tmp_path, where):
    # conftest points HF_HOME and MODELSCOPE_CACHE into a private HOME.
    var, rest = where.split("/", 1)
    snap = make_base(Path(os.environ[var]) / rest, quant="awq")
    out = make_output(tmp_path, "Qwen/Qwen2.5-7B-Instruct-AWQ")
    result = cli(["merge", "--adapters", str(out), "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2].startswith(
        f"lorakit: error: base model Qwen/Qwen2.5-7B-Instruct-AWQ is AWQ-quantized (quantization_config in {snap}/")


def test_uncached_hub_base_is_not_sized(cli, tmp_path):
    out = make_output(tmp_path, "Qwen/Qwen2.5-0.5B-Instruct")
    result = cli(["merge", "--adapters", str(out), "--dry-run"])
    assert result.code == 0, result.stderr
    assert "lorakit: free disk not checked: the size of Qwen/Qwen2.5-0.5B-Instruct is unknown here" \
        in result.stderr.splitlines()


def test_bitsandbytes_base_is_a_warning(cli, tmp_path):
    base = make_base(tmp_path / "base", quant="bitsandbytes")
    out = make_output(tmp_path, str(base))
    result = cli(["merge", "--adapters", str(out), "--dry-run"])
    assert result.code == 0, result.stderr
    warning = [
        f"warning[merge.base.bnb] base model {base} is bitsandbytes-quantized ({base / 'config.json'}): "
        "PEFT dequantizes it to merge and re-quantizes the result, which loses precision",
        "  hint: merge into the unquantized model instead (--model ORIGINAL) for an exact result",
    ]
    lines = result.stderr.splitlines()
    i = lines.index(warning[0])
    assert lines[i:i + 2] == warning
    strict = cli(["merge", "--adapters", str(out), "--dry-run", "--strict"])
    assert (strict.code, strict.stdout) == (2, "")
    assert strict.stderr.splitlines()[-1] == "lorakit: not launching: warnings (--strict)"


def test_short_disk_is_an_environment_error(cli, tree, monkeypatch):
    base, out, ckpt = tree
    seen = []
    monkeypatch.setattr(preflight, "free_bytes", lambda path: seen.append(path) or 3999)
    result = cli(["merge", "--adapters", str(out), "--dry-run"])
    assert (result.code, result.stdout) == (1, "")
    size = (base / "model.safetensors").stat().st_size
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: not enough free disk for the merged model: 3.9 KiB free at {ckpt.parent}, "
        f"the base model's weights take {human(size)} ({base})",
        "  hint: free some space, or pass --output-dir on a disk with room",
    ]
    assert seen == [ckpt.parent]  # the output's nearest existing dir: where it will be written
    monkeypatch.setattr(preflight, "free_bytes", lambda path: size)
    assert cli(["merge", "--adapters", str(out), "--dry-run"]).code == 0


# --- never lose work: refusals ----------------------------------------------------------------

def test_existing_output_needs_force(cli, tree):
    _, out, ckpt = tree
    (ckpt.parent / "checkpoint-6-merged").mkdir()
    result = cli(["merge", "--adapters", str(out), "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: output dir {ckpt}-merged already exists; refusing to overwrite it",
        "  hint: pass --output-dir NEW_DIR, or --force to replace it after a successful merge",
    ]
    forced = cli(["merge", "--adapters", str(out), "--dry-run", "--force"])
    assert forced.code == 0, forced.stderr
    # what a user may paste: the final dir, never the temporary one the next --force removes
    assert forced.stdout == EXISTS_COMMENT + rendered(ckpt, Path(f"{ckpt}-merged"))
    assert f"lorakit: {ckpt}-merged exists: without --dry-run, --force merges into {ckpt}-merged.lorakit-tmp " \
           "and swaps it in only after success; the command below writes to the final dir, so move it away " \
           "first" in forced.stderr.splitlines()


@pytest.mark.parametrize("where, what", [
    ("output", "the adapter checkpoint"),
    (f"output/{RUN1}", "the adapter checkpoint"),
    ("base", "the base model"),
])
def test_output_never_replaces_the_adapter_or_the_base(cli, tree, tmp_path, where, what):
    base, _, ckpt = tree
    protected = ckpt if what == "the adapter checkpoint" else base
    result = cli(["merge", "--adapters", str(ckpt), "--output-dir", str(tmp_path / where), "--force", "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: output dir {tmp_path / where} would replace {what} ({protected})",
        "  hint: pass --output-dir with a new directory for the merged model",
    ]


@pytest.mark.parametrize("value", ["true", "True"])
def test_exist_ok_is_refused(cli, tree, value):
    _, out, _ = tree
    result = cli(["merge", "--adapters", str(out), "--set", f"exist_ok={value}", "--dry-run"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [
        "lorakit: error: exist_ok is set: ms-swift then skips the merge when the output dir exists and still exits 0",
        "  hint: drop exist_ok; lorakit merge --force replaces an existing output after a successful merge",
    ]


def test_a_swap_cut_short_is_not_papered_over(cli, tree):
    _, out, ckpt = tree
    Path(f"{ckpt}-merged.lorakit-old").mkdir()
    result = cli(["merge", "--adapters", str(out), "--dry-run", "--force"])
    assert result.code == 2
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: {ckpt}-merged.lorakit-old holds the previous merged model: replacing it with a new one "
        "was cut short",
        f"  hint: move it back first: mv {ckpt}-merged.lorakit-old {ckpt}-merged",
    ]


# --- never lose work: launches with a fake swift ---------------------------------------------

FAKE_SWIFT = r'''
import json, os, signal, struct, sys, time
argv = sys.argv[1:]
out = argv[argv.index("--output_dir") + 1]
with open(os.environ["FAKE_RECORD"], "w") as f:
    json.dump(argv, f)
mode = os.environ.get("FAKE_MERGE", "whole")
os.makedirs(out)  # export_args.py raises FileExistsError for an existing output_dir
with open(os.path.join(out, "config.json"), "w") as f:
    f.write('{"model_type": "qwen2"}')
if os.environ.get("FAKE_ARGS_JSON"):  # ms-swift copies the adapter's args.json into the merged model
    with open(os.path.join(out, "args.json"), "w") as f:
        f.write(os.environ["FAKE_ARGS_JSON"])
header = json.dumps({"w": {"dtype": "U8", "shape": [4096], "data_offsets": [0, 4096]}}).encode()
data = struct.pack("<Q", len(header)) + header + b"\1" * 4096
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(data if mode in ("whole", "trap") else data[: len(data) // 2])
if mode in ("whole", "half"):
    sys.exit(int(os.environ.get("FAKE_CODE", "0")))
if mode == "trap":  # catches SIGTERM and exits 0 with a whole-looking output
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
with open(os.environ["FAKE_READY"] + ".tmp", "w") as f:
    f.write("ready")
os.replace(os.environ["FAKE_READY"] + ".tmp", os.environ["FAKE_READY"])
time.sleep(60)  # mode "hang": killed by the forwarded SIGTERM
sys.exit(3)
'''


@pytest.fixture
def fake(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    swift = bin_dir / "swift"
    swift.write_text(f"#!{sys.executable}\n{FAKE_SWIFT}")
    swift.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               FAKE_RECORD=str(tmp_path / "argv.json"), FAKE_READY=str(tmp_path / "ready"))
    return env


def lorakit(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "lorakit", *args], env=env, capture_output=True,
                          text=True, timeout=60, **kw)


def old_output(ckpt: Path) -> Path:
    old = Path(f"{ckpt}-merged")
    make_base(old, nbytes=10)
    (old / "KEEP").write_text("the good merge from yesterday")
    return old


def intact(old: Path) -> bool:
    return (old / "KEEP").read_text() == "the good merge from yesterday" and \
        not Path(f"{old}.lorakit-tmp").exists() and not Path(f"{old}.lorakit-old").exists()


def load_lines(target: Path) -> list:
    return ["from transformers import AutoModelForCausalLM, AutoTokenizer",
            f"model = AutoModelForCausalLM.from_pretrained({str(target)!r}, dtype='auto')",
            f"tokenizer = AutoTokenizer.from_pretrained({str(target)!r})"]


def test_fresh_merge_says_how_to_load_it(tree, fake, tmp_path):
    _, out, ckpt = tree
    result = lorakit(["merge", "--adapters", str(out)], fake)
    assert result.returncode == 0, result.stderr
    target = Path(f"{ckpt}-merged")
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv == ["export", "--merge_lora", "true", "--adapters", str(ckpt), "--output_dir", str(target)]
    assert result.stdout.splitlines() == load_lines(target)
    assert result.stderr.splitlines()[-1] == f"lorakit: merged model saved in {target}; load it with transformers:"


def test_force_swaps_in_a_whole_result(tree, fake, tmp_path):
    _, out, ckpt = tree
    old = old_output(ckpt)
    result = lorakit(["merge", "--adapters", str(out), "--force"], fake)
    assert result.returncode == 0, result.stderr
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[argv.index("--output_dir") + 1] == f"{old}.lorakit-tmp"
    assert not (old / "KEEP").exists() and (old / "model.safetensors").stat().st_size > 4096
    assert sorted(p.name for p in old.parent.iterdir() if p.name.startswith("checkpoint-6")) == \
        ["checkpoint-6", "checkpoint-6-merged"]
    assert result.stdout.splitlines() == load_lines(old)


@pytest.mark.parametrize("code", ["1", "0"])  # "0": ms-swift says success but the weights are cut short
def test_force_keeps_the_old_output_when_the_merge_fails(tree, fake, code):
    _, out, ckpt = tree
    old = old_output(ckpt)
    result = lorakit(["merge", "--adapters", str(out), "--force"], dict(fake, FAKE_MERGE="half", FAKE_CODE=code))
    assert (result.returncode, result.stdout) == (1, "")
    assert intact(old)
    lines = result.stderr.splitlines()
    assert lines[-1] == f"lorakit: merge failed (exit 1); removed the temporary {old}.lorakit-tmp; {old} is untouched"
    if code == "0":
        assert lines[-2] == f"lorakit: ms-swift exited 0 but {old}.lorakit-tmp has no config.json and whole weights"


def test_failed_fresh_merge_leaves_no_half_model(tree, fake):
    _, out, ckpt = tree
    result = lorakit(["merge", "--adapters", str(out)], dict(fake, FAKE_MERGE="half", FAKE_CODE="1"))
    assert result.returncode == 1
    assert not Path(f"{ckpt}-merged").exists()
    assert result.stderr.splitlines()[-1] == f"lorakit: merge failed (exit 1); removed the partial output {ckpt}-merged"


def test_leftover_temp_dir_is_replaced(tree, fake):
    _, out, ckpt = tree
    old = old_output(ckpt)
    Path(f"{old}.lorakit-tmp").mkdir()  # an earlier lorakit killed with SIGKILL
    result = lorakit(["merge", "--adapters", str(out), "--force"], fake)
    assert result.returncode == 0, result.stderr
    assert not Path(f"{old}.lorakit-tmp").exists() and not (old / "KEEP").exists()


@pytest.mark.parametrize("mode", ["hang", "trap"])
def test_sigterm_during_a_forced_merge_keeps_the_old_output(tree, fake, tmp_path, mode):
    _, out, ckpt = tree
    old = old_output(ckpt)
    proc = subprocess.Popen([sys.executable, "-m", "lorakit", "merge", "--adapters", str(out), "--force",
                             "--grace", "5"], env=dict(fake, FAKE_MERGE=mode), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert (tmp_path / "ready").exists(), proc.communicate()
    assert Path(f"{old}.lorakit-tmp", "model.safetensors").exists()  # the fake has written
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert intact(old)
    lines = stderr.splitlines()
    assert lines[-1] == f"lorakit: merge failed (exit 143); removed the temporary {old}.lorakit-tmp; {old} is untouched"
    if mode == "trap":  # the merge exited 0, but lorakit was interrupted: the result is not trusted
        assert lines[-2] == f"lorakit: merge interrupted (SIGTERM) but ms-swift exited 0: not trusting {old}.lorakit-tmp"
    assert stdout == ""


# --- lorakit checkpoints ----------------------------------------------------------------------

def test_checkpoints_json(cli, tree):
    _, out, _ = tree
    result = cli(["checkpoints", str(out), "--json"])
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["run"], r["checkpoint"], r["step"], r["loss"], r["last"], r["best"]) for r in rows] == [
        (RUN0, "checkpoint-2", 2, 1.5, False, False),
        (RUN0, "checkpoint-4", 4, 1.2, True, True),
        (RUN1, "checkpoint-3", 3, 0.5, False, True),
        (RUN1, "checkpoint-6", 6, 0.9, True, False),
    ]
    assert rows[3]["path"] == str(out / RUN1 / "checkpoint-6")


def test_checkpoints_table_is_plain_text_off_a_tty(cli, tree):
    # no eval_loss column: no run logged one
    _, out, ckpt = tree
    for c in out.glob("v*/checkpoint-*"):
        # fixed content: the fixture's config names a tmp path, whose length varies run to run
        (c / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8, "base_model_name_or_path": "m"}')
        os.utime(c, (1767261600, 1767261600))  # 2026-01-01 10:00:00 UTC
    when = datetime.fromtimestamp(1767261600).strftime("%Y-%m-%d %H:%M:%S")  # in this machine's zone
    result = cli(["checkpoints", str(out)])
    assert result.code == 0, result.stderr
    size = human((ckpt / "adapter_model.safetensors").stat().st_size + (ckpt / "adapter_config.json").stat().st_size)
    assert size == "233 B"  # the header's width below depends on it
    assert result.stdout.splitlines() == [
        "run                 checkpoint    step  loss  time                  size  marks",
        f"v0-20260101-100000  checkpoint-2     2   1.5  {when}  {size}",
        f"v0-20260101-100000  checkpoint-4     4   1.2  {when}  {size}  last,best (lowest training loss: no eval logged)",
        f"v1-20260102-100000  checkpoint-3     3   0.5  {when}  {size}  best (lowest training loss: no eval logged)",
        f"v1-20260102-100000  checkpoint-6     6   0.9  {when}  {size}  last",
    ]
    assert result.stderr.splitlines() == [f"lorakit: `lorakit merge --adapters {out}` would pick {ckpt}: {LAST}"]


def test_checkpoints_of_nothing(cli, tmp_path):
    result = cli(["checkpoints", str(tmp_path / "nope")])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"lorakit: error: {tmp_path / 'nope'} does not exist",
        "  hint: pass a checkpoint-N directory, a run directory (vN-YYYYMMDD-HHMMSS) or a training output_dir",
    ]


def test_checkpoints_table_shows_eval_loss_when_logged(cli, tree):
    _, out, ckpt = tree
    state = json.loads((ckpt / "trainer_state.json").read_text())
    state["log_history"].append({"eval_loss": 0.75, "step": 6})
    write_json(ckpt / "trainer_state.json", state)
    result = cli(["checkpoints", str(out)])
    assert result.code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["run", "checkpoint", "step", "loss", "eval_loss", "time", "size", "marks"]
    assert rows[3].split()[:5] == [RUN1, "checkpoint-6", "6", "0.9", "0.75"]
    assert rows[2].split()[4] == "-"


# --- what counts as a whole merged model --------------------------------------------------------

def test_looks_merged(tmp_path):
    from lorakit.mergeguard import looks_merged

    d = make_base(tmp_path / "m")
    assert looks_merged(d)
    (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:-1])
    assert not looks_merged(d)  # one byte short
    (d / "model.safetensors").unlink()
    safetensors(d / "model-00001-of-00002.safetensors", 10)
    write_json(d / "model.safetensors.index.json", {"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})
    assert not looks_merged(d)  # the index names a shard that is not there
    safetensors(d / "model-00002-of-00002.safetensors", 10)
    assert looks_merged(d)
    (d / "config.json").unlink()
    assert not looks_merged(d)


# --- --force never replaces what is not an earlier merge ------------------------------------------

NEW_DIR = "  hint: pass --output-dir with a new directory for the merged model"


def nothing_launched(tmp_path: Path) -> bool:
    return not (tmp_path / "argv.json").exists()


@pytest.mark.parametrize("given, cwd, what", [
    (".", "work", "the current directory"),
    ("..", "work/sub", "a parent of the current directory"),
    ("~", "work", "your home directory ($HOME)"),
    ("/", "work", "the filesystem root"),
])
def test_force_never_replaces_the_cwd_home_or_root(tree, fake, tmp_path, given, cwd, what):
    _, _, ckpt = tree
    (tmp_path / cwd).mkdir(parents=True)
    (tmp_path / "work" / "train.py").write_text("print('my code')")
    target = {".": tmp_path / "work", "..": tmp_path / "work", "~": Path(os.environ["HOME"]), "/": Path("/")}[given]
    result = lorakit(["merge", "--adapters", str(ckpt), "--output-dir", given, "--force"], fake, cwd=tmp_path / cwd)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: output dir {target} is {what}; a merge never replaces it", NEW_DIR]
    assert nothing_launched(tmp_path) and (tmp_path / "work" / "train.py").exists()


def test_force_never_replaces_another_training_run(cli, tree, tmp_path):
    base, _, ckpt = tree
    other = make_output(tmp_path / "other", str(base))  # other/output/v0-..., v1-...
    result = cli(["merge", "--adapters", str(ckpt), "--output-dir", str(other), "--force"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: output dir {other} holds training output (runs: {RUN0}, {RUN1}); "
        "a merge never replaces it", NEW_DIR]
    one = other / RUN0 / "checkpoint-2"
    result = cli(["merge", "--adapters", str(ckpt), "--output-dir", str(one), "--force"])
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: output dir {one} is an adapter checkpoint; a merge never replaces it", NEW_DIR]
    assert (one / "adapter_model.safetensors").exists()


@pytest.mark.parametrize("force", [True, False])  # --force would not help: not suggested either way
def test_force_never_replaces_a_dir_of_other_files(cli, tree, tmp_path, force):
    _, _, ckpt = tree
    src = tmp_path / "src"
    for name in ("main.py", "README.md", "config.json"):  # config.json alone is no merged model
        write_json(src / name, {})
    result = cli(["merge", "--adapters", str(ckpt), "--output-dir", str(src)] + (["--force"] if force else []))
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: output dir {src} is not empty and holds no merged model (README.md, config.json, "
        "main.py); --force only replaces an earlier merged model or an empty directory",
        NEW_DIR + ", or move its contents away first"]
    assert sorted(p.name for p in src.iterdir()) == ["README.md", "config.json", "main.py"]


def test_force_never_replaces_a_file(cli, tree, tmp_path):
    _, _, ckpt = tree
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    result = cli(["merge", "--adapters", str(ckpt), "--output-dir", str(notes), "--force"])
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-2:] == [
        f"lorakit: error: output dir {notes} exists and is not a directory", NEW_DIR]
    assert notes.read_text() == "mine"


def siblings(target: Path) -> list:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(target.name))


def test_force_replaces_an_empty_dir(tree, fake, tmp_path):
    _, out, ckpt = tree
    empty = tmp_path / "merged"
    empty.mkdir()
    result = lorakit(["merge", "--adapters", str(out), "--output-dir", str(empty), "--force"], fake)
    assert result.returncode == 0, result.stderr
    assert looks_merged(empty) and siblings(empty) == ["merged"]


def test_force_replaces_an_earlier_merge_cut_short_that_lorakit_recorded(tree, fake):
    _, out, ckpt = tree
    assert lorakit(["merge", "--adapters", str(out)], fake).returncode == 0
    target = Path(f"{ckpt}-merged")
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # no longer whole: only the record says "merge"
    result = lorakit(["merge", "--adapters", str(out), "--force"], fake)
    assert result.returncode == 0, result.stderr
    assert looks_merged(target) and siblings(target) == ["checkpoint-6-merged"]


@pytest.mark.parametrize("leftover", [".lorakit-old", ".lorakit-tmp"])
def test_leftover_files_next_to_the_target_are_removed(tree, fake, leftover):
    _, out, ckpt = tree
    old = old_output(ckpt)
    Path(f"{old}{leftover}").write_text("a file, not a dir")
    result = lorakit(["merge", "--adapters", str(out), "--force"], fake)
    assert result.returncode == 0, result.stderr
    assert siblings(old) == ["checkpoint-6-merged"] and not (old / "KEEP").exists()


# --- the merge record -------------------------------------------------------------------------

def merge_record(target: Path) -> dict:
    import yaml

    return yaml.safe_load((target / "lorakit-run.yaml").read_text())


@pytest.mark.parametrize("force", [False, True])
def test_record_names_the_final_dir_and_the_base_model(tree, fake, force):
    base, out, ckpt = tree
    target = Path(f"{ckpt}-merged")
    if force:
        old_output(ckpt)
    result = lorakit(["merge", "--adapters", str(out)] + (["--force"] if force else []), fake)
    assert result.returncode == 0, result.stderr
    data = merge_record(target)
    assert data["preset"]["args"]["output_dir"] == str(target)
    assert data["command"]["argv"] == ["swift", "export", "--merge_lora", "true", "--adapters", str(ckpt),
                                       "--output_dir", str(target)]
    assert data["base_model"] == {"model": str(base), "source": str(ckpt / "args.json")}
    assert "lorakit-tmp" not in (target / "lorakit-run.yaml").read_text()
    assert (target / "lorakit-run.yaml").read_text().startswith("# What lorakit merged (swift export)")


def test_record_names_a_base_given_with_model(tree, fake, tmp_path):
    _, out, ckpt = tree
    other = make_base(tmp_path / "other")
    result = lorakit(["merge", "--adapters", str(out), "--model", str(other)], fake)
    assert result.returncode == 0, result.stderr
    assert merge_record(Path(f"{ckpt}-merged"))["base_model"] == {"model": str(other), "source": "--model"}


# --- how big the merged model will be -----------------------------------------------------------

def test_disk_check_counts_the_indexed_shards_not_a_consolidated_copy_too(cli, tmp_path, monkeypatch):
    base = make_base(tmp_path / "base", nbytes=3000)  # consolidated model.safetensors ...
    for i in (1, 2):  # ... and the same weights sharded, as some hub repos ship both
        safetensors(base / f"model-0000{i}-of-00002.safetensors", 1500)
    write_json(base / "model.safetensors.index.json", {"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})
    shards = sum((base / f"model-0000{i}-of-00002.safetensors").stat().st_size for i in (1, 2))
    assert preflight.weights_bytes(base) == shards
    out = make_output(tmp_path, str(base))
    monkeypatch.setattr(preflight, "free_bytes", lambda path: shards)  # room for one copy, not two
    assert cli(["merge", "--adapters", str(out), "--dry-run"]).code == 0
    monkeypatch.setattr(preflight, "free_bytes", lambda path: shards - 1)
    result = cli(["merge", "--adapters", str(out), "--dry-run"])
    assert result.code == 1
    assert f"the base model's weights take {human(shards)} ({base})" in result.stderr.splitlines()[-2]


def test_weights_bytes_without_a_readable_index(tmp_path):
    d = make_base(tmp_path / "m", nbytes=100)
    one = (d / "model.safetensors").stat().st_size
    safetensors(d / "extra.safetensors", 50)
    both = one + (d / "extra.safetensors").stat().st_size
    assert preflight.weights_bytes(d) == both  # no index: every *.safetensors
    (d / "model.safetensors.index.json").write_text("{not json")
    assert preflight.weights_bytes(d) == both  # a broken index: the same
    bins = tmp_path / "bins"
    for name, size in (("pytorch_model.bin", 700), ("pytorch_model-00001-of-00001.bin", 600),
                       ("training_args.bin", 5)):
        (bins / name).parent.mkdir(exist_ok=True)
        (bins / name).write_bytes(b"\0" * size)
    assert preflight.weights_bytes(bins) == 1300
    write_json(bins / "pytorch_model.bin.index.json", {"weight_map": {"a": "pytorch_model-00001-of-00001.bin"}})
    assert preflight.weights_bytes(bins) == 600
