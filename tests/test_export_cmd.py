"""`lorakit export`: `swift export` for quantization, Ollama, cached datasets, Megatron conversion
and hub pushes (checks/export.py). What ms-swift refuses in ExportArguments.__post_init__ is said
with ms-swift's own words; what this machine lacks only for a launch here."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from test_checkpoints import make_adapter
from lorakit.presets import builtin_dir

MODEL = "Qwen/Qwen2.5-7B-Instruct"
EXPORT = str(builtin_dir() / "fragments" / "export.yaml")  # lorakit export's own default


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the `swift` of this environment first on PATH: the package checks read where it runs
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    (tmp_path / "d.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                               {"role": "assistant", "content": "yo"}]}) + "\n")
    return tmp_path


def _packages(monkeypatch, root, *dists):
    """Distributions where `swift` runs (this Python): their dist-info dirs first on sys.path."""
    site = root / "site"
    for dist in dists:
        name, version = dist.split("==")
        (site / f"{name}-{version}.dist-info").mkdir(parents=True)
        (site / f"{name}-{version}.dist-info" / "METADATA").write_text(f"Name: {name}\nVersion: {version}\n")
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])


def test_a_quantization_renders_swift_export_as_written(here):
    result = run_cli(["export", "--model", MODEL, "--dry-run", "--format", "json", "--",
                      "--quant_method", "awq", "--quant_bits", "4", "--dataset", "d.jsonl", "--quant_batch_size", "-1"])
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["argv"] == [
        "swift", "export", "--model", MODEL, "--quant_method", "awq", "--quant_bits", "4", "--dataset", "d.jsonl",
        "--quant_batch_size", "-1"]


def test_an_export_that_asks_for_nothing_is_refused(here):
    result = run_cli(["export", "--model", MODEL, "--dry-run"])
    assert result.code == 2
    assert result.stderr.splitlines()[:2] == [
        "error[export.nothing] args: swift export with none of --merge_lora true, --quant_method, --to_ollama, "
        "--to_cached_dataset, --to_mcore, --to_hf, --push_to_hub: ms-swift reads the arguments and exits 0 having "
        "written nothing",
        "  hint: to merge a LoRA checkpoint: lorakit merge --adapters CKPT; to quantize: -- --quant_method awq "
        "--quant_bits 4 --dataset DATA"]


def test_quant_bits_without_a_method_is_one_error_in_ms_swifts_words(here):
    result = run_cli(["export", "--model", MODEL, "--dry-run", "--", "--quant_bits", "4", "--dataset", "d.jsonl"])
    assert result.code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert errors == [
        "error[args.quant_bits.no_method] args.quant_bits (-- extra flags): quant_bits 4 without quant_method: swift "
        "export refuses it (\"Please specify the quantization method using `--quant_method awq/gptq/bnb`.\")"]


@pytest.mark.parametrize("method,said", [
    ("awq", "ms-swift refuses it (\"self.dataset: [], Please input the quant dataset.\")"),
    ("gptq", "ms-swift refuses it (\"self.dataset: [], Please input the quant dataset.\")"),
    # __post_init__ checks only {'gptq', 'awq'}: gptq_v2 gets as far as the calibration
    ("gptq_v2", "ms-swift loads the model and only then finds nothing to calibrate on")])
def test_a_calibrated_method_needs_a_dataset(here, method, said):
    result = run_cli(["export", "--model", MODEL, "--dry-run", "--", "--quant_method", method, "--quant_bits", "4"])
    assert result.code == 2
    assert (f"error[export.quant.dataset] args.quant_method (-- extra flags): quant_method {method} calibrates on "
            f"data, and no --dataset is given: {said}") in result.stderr.splitlines()


def test_bnb_and_fp8_need_no_dataset(here):
    for flags in (["--quant_method", "bnb", "--quant_bits", "4"], ["--quant_method", "fp8"]):
        result = run_cli(["export", "--model", MODEL, "--dry-run", "--", *flags])
        assert result.code == 0, result.stderr


@pytest.mark.parametrize("key,said", [("packing", "Packing will be handled during training"),
                                      ("streaming", "not supported")])
def test_a_cached_dataset_is_neither_packed_nor_streamed(here, key, said):
    result = run_cli(["export", "--model", MODEL, "--dry-run", "--", "--to_cached_dataset", "true",
                      "--dataset", "d.jsonl", f"--{key}", "true"])
    assert result.code == 2
    assert any(line.startswith(f"error[export.cached_dataset.{key}] args.{key} (-- extra flags): --to_cached_dataset "
                               f"with --{key} true: ms-swift refuses it (\"{said}\")")
               for line in result.stderr.splitlines()), result.stderr


def test_the_default_output_dir_of_a_second_export_exists(here):
    (here / "Qwen2.5-7B-Instruct-awq-int4").mkdir()
    flags = ["--quant_method", "awq", "--quant_bits", "4", "--dataset", "d.jsonl"]
    result = run_cli(["export", "--model", MODEL, "--dry-run", "--", *flags])
    assert result.code == 2
    assert ("error[export.output.exists] args.output_dir: output_dir ./Qwen2.5-7B-Instruct-awq-int4 (ms-swift's "
            "default name for this export) exists: ms-swift refuses to write into it (\"FileExistsError: "
            f"args.output_dir: `{here}/Qwen2.5-7B-Instruct-awq-int4` already exists.\")") in result.stderr.splitlines()
    assert run_cli(["export", "--model", MODEL, "--dry-run", "--", *flags, "--exist_ok", "true"]).code == 0
    assert run_cli(["export", "--model", MODEL, "--output-dir", "new", "--dry-run", "--", *flags]).code == 0


def test_an_adapters_default_output_dir_is_beside_the_checkpoint(here):
    ckpt = make_adapter(here / "adapters" / "sft-lora")  # an adapter dir (a checkpoint-N also needs trainer state)
    (ckpt / "args.json").write_text(json.dumps({"model": MODEL}))
    (here / "adapters" / "sft-lora-merged").mkdir()  # the merge's own dir is ms-swift's None: not judged
    (here / "adapters" / "sft-lora-gptq-int4").mkdir()
    result = run_cli(["export", "--adapters", str(ckpt), "--dry-run", "--", "--merge_lora", "true",
                      "--quant_method", "gptq", "--quant_bits", "4", "--dataset", "d.jsonl"])
    assert result.code == 2
    assert f"output_dir {ckpt}-gptq-int4 (ms-swift's default name for this export) exists" in result.stderr


def test_a_launch_here_needs_the_quantizers_packages(here, monkeypatch):
    flags = ["--quant_method", "gptq", "--quant_bits", "4", "--dataset", "d.jsonl"]
    result = run_cli(["validate", "-p", EXPORT, "--model", MODEL, "--", *flags])
    assert result.code == 2
    assert ("error[export.needs] args.quant_method (-- extra flags): --quant_method gptq needs optimum and gptqmodel "
            "(or auto-gptq), not installed where `swift` runs: ms-swift stops at optimum's GPTQQuantizer, imported "
            "after the model has loaded (quant.py gptq_model_quantize)") in result.stderr.splitlines(), result.stderr
    assert "  hint: pip install optimum gptqmodel in that environment (ms-swift's examples pin the versions its " \
           "quantizers are tested with)" in result.stderr.splitlines()
    # a dry-run is for any machine: not said there
    assert "export.needs" not in run_cli(["export", "--model", MODEL, "--dry-run", "--", *flags]).stderr
    _packages(monkeypatch, here, "optimum==1.24.0", "auto_gptq==0.7.1")
    assert "export.needs" not in run_cli(["validate", "-p", EXPORT, "--model", MODEL, "--", *flags]).stderr


def test_megatron_conversion_needs_megatron_core_and_drops_merge_lora(here):
    result = run_cli(["validate", "-p", EXPORT, "--model", MODEL, "--", "--to_mcore", "true",
                      "--merge_lora", "true"])
    lines = result.stderr.splitlines()
    assert any(line.startswith("error[export.needs] args.to_mcore (-- extra flags): --to_mcore/--to_hf needs "
                               "megatron-core") for line in lines), result.stderr
    assert any(line.startswith("warning[export.mcore.merge_lora] args.merge_lora (-- extra flags): --merge_lora true "
                               "with --to_mcore/--to_hf: ms-swift turns merge_lora off") for line in lines)


def test_flags_are_checked_against_the_target_release(here):
    """ms-swift #5019: --mcore_adapters is not in 3.6 (its parser: remaining_argv)."""
    result = run_cli(["export", "--model", MODEL, "--swift-version", "3.6", "--dry-run", "--", "--to_hf", "true",
                      "--mcore_adapters", "megatron_output/v1"])
    assert result.code == 2
    assert "error[flags.too_new] args.mcore_adapter (-- extra flags): --mcore_adapters is new in ms-swift 3.7; you " \
           "target 3.6" in result.stderr.splitlines()


def test_a_typo_of_its_own_option_is_said_as_one(here):
    result = run_cli(["export", "--model", MODEL, "--dryrun"])
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "lorakit: error: export --dryrun: no such option (not a lorakit option, nor an ms-swift flag)",
        "  hint: did you mean --dry-run? see `lorakit export --help`; ms-swift flags go after `--`"]


def _qlora(root):
    """An adapter dir as a QLoRA run saves it: its args.json records quant_method bnb, quant_bits 4."""
    ckpt = make_adapter(root / "qlora")
    (ckpt / "args.json").write_text(json.dumps({"model": MODEL, "quant_method": "bnb", "quant_bits": 4}))
    return ckpt


def test_a_qlora_checkpoints_quant_method_is_what_ms_swift_exports(here):
    """3.5+ load_args_from_ckpt fills quant_method from the checkpoint, and run() tries it first."""
    ckpt = _qlora(here)
    (here / "qlora-ollama").mkdir()  # not what ms-swift writes: no false alarm
    result = run_cli(["export", "--adapters", str(ckpt), "--dry-run", "--", "--to_ollama", "true"])
    assert result.code == 0, result.stderr
    assert (f"warning[export.quant.carried] args.adapters (--adapters): {ckpt}/args.json records quant_method bnb "
            "(a QLoRA run): ms-swift carries it over (load_args_from_ckpt) and, since it tries quant_method first, "
            "writes a bnb-quantized model instead of --to_ollama") in result.stderr.splitlines(), result.stderr
    (here / "qlora-bnb-int4").mkdir()  # what it writes: a second try is refused
    again = run_cli(["export", "--adapters", str(ckpt), "--dry-run", "--", "--to_ollama", "true"])
    assert f"output_dir {ckpt}-bnb-int4 (ms-swift's default name for this export) exists" in again.stderr
    # before 3.5 nothing is carried over: the Ollama export is written, into the dir that exists
    old = run_cli(["export", "--adapters", str(ckpt), "--swift-version", "3.4", "--dry-run", "--",
                   "--to_ollama", "true"])
    assert "export.quant.carried" not in old.stderr, old.stderr
    assert f"output_dir {ckpt}-ollama (ms-swift's default name for this export) exists" in old.stderr


@pytest.mark.parametrize("model,name", [
    ("ms/Qwen/Qwen2___5-0___5B", "Qwen2.5-0.5B"),  # ModelScope's snapshot_download
    ("hf/models--Qwen--Qwen2.5-0.5B/snapshots/abc123", "Qwen2.5-0.5B"),  # a Hugging Face cache snapshot
])
def test_the_default_dir_is_named_as_ms_swift_names_the_model(here, model, name):
    (here / model).mkdir(parents=True)
    (here / model / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}))
    flags = ["--quant_method", "fp8", "--model_type", "qwen2", "--template", "qwen"]
    (here / f"{model.rstrip('/').rsplit('/', 1)[-1]}-fp8").mkdir()  # the last path part's name: not ms-swift's
    assert run_cli(["export", "--model", model, "--dry-run", "--", *flags]).code == 0
    (here / f"{name}-fp8").mkdir()
    result = run_cli(["export", "--model", model, "--dry-run", "--", *flags])
    assert f"output_dir ./{name}-fp8 (ms-swift's default name for this export) exists" in result.stderr, result.stderr


def test_an_empty_output_dir_is_the_current_directory(here):
    result = run_cli(["export", "--model", MODEL, "--output-dir", "", "--dry-run", "--", "--quant_method", "bnb",
                      "--quant_bits", "4"])
    assert result.code == 2
    assert result.stderr.splitlines()[0] == (
        "error[export.output.empty] args.output_dir (--output-dir): output_dir is empty: ms-swift makes it the current "
        "directory, and then refuses it as existing (or, with --exist_ok true, writes the export among the files here)")


@pytest.mark.parametrize("target,raised,exist_ok", [
    ("3.0", "AssertionError: args.output_dir: {p} already exists.", False),
    ("3.1", "FileExistsError: args.output_dir: {p} already exists.", True),
    ("3.12", "FileExistsError: args.output_dir: `{p}` already exists.", True)])
def test_each_release_refuses_an_existing_dir_in_its_own_words(here, target, raised, exist_ok):
    (here / "out").mkdir()
    result = run_cli(["export", "--model", MODEL, "--output-dir", "out", "--swift-version", target, "--dry-run", "--",
                      "--quant_method", "awq", "--quant_bits", "4", "--dataset", "d.jsonl"])
    assert result.code == 2
    assert f'exists: ms-swift refuses to write into it ("{raised.format(p=here / "out")}")' in result.stderr
    assert ("--exist_ok true" in result.stderr) is exist_ok


@pytest.mark.parametrize("target,suffix,warned", [("3.9", "merged", False), ("3.12", "mcore", True), ("4", "mcore", True)])
def test_merge_lora_with_to_mcore_is_dropped_only_from_3_10(here, target, suffix, warned):
    ckpt = make_adapter(here / "adapters" / "sft")
    (ckpt / "args.json").write_text(json.dumps({"model": MODEL}))
    (here / "adapters" / f"sft-{suffix}").mkdir()
    result = run_cli(["export", "--adapters", str(ckpt), "--swift-version", target, "--dry-run", "--",
                      "--merge_lora", "true", "--to_mcore", "true"])
    assert f"output_dir {ckpt}-{suffix} (ms-swift's default name for this export) exists" in result.stderr, result.stderr
    assert ("export.mcore.merge_lora" in result.stderr) is warned


def test_the_sh_format_names_the_command_that_rendered_it(here):
    result = run_cli(["export", "--model", MODEL, "--dry-run", "--format", "sh", "--", "--quant_method", "bnb",
                      "--quant_bits", "4"])
    assert f"# lorakit export -p {EXPORT}, rendered for ms-swift 4.x" in result.stdout.splitlines(), result.stdout


@pytest.mark.parametrize("target", ["3.0", "3.4", "4"])
def test_calibration_data_is_never_split(here, target):
    """quant.py loads the calibration set with split_dataset_ratio=0 in every release: a one-row file is
    not 'none left to train on' where the training default holds rows out (3.0-3.5)."""
    result = run_cli(["export", "--model", MODEL, "--swift-version", target, "--dry-run", "--",
                      "--quant_method", "awq", "--quant_bits", "4", "--dataset", "d.jsonl"])
    assert result.code == 0, result.stderr
    assert "data.split.empty" not in result.stderr


def test_a_method_given_still_takes_the_checkpoints_bits(here):
    """load_args_from_ckpt fills each unset key: --quant_method fp8 on a QLoRA checkpoint gets its quant_bits 4."""
    ckpt = _qlora(here)
    (here / "qlora-fp8-int4").mkdir()
    result = run_cli(["export", "--adapters", str(ckpt), "--dry-run", "--", "--quant_method", "fp8"])
    assert f"output_dir {ckpt}-fp8-int4 (ms-swift's default name for this export) exists" in result.stderr, result.stderr


def test_load_args_false_carries_nothing_over(here):
    ckpt = _qlora(here)
    result = run_cli(["export", "--adapters", str(ckpt), "--dry-run", "--", "--to_ollama", "true",
                      "--load_args", "false"])
    assert "export.quant.carried" not in result.stderr and result.code == 0, result.stderr


def test_a_tilde_output_dir_is_the_home_one(here, monkeypatch):
    monkeypatch.setenv("HOME", str(here / "home"))
    (here / "home" / "q").mkdir(parents=True)
    result = run_cli(["export", "--model", MODEL, "--output-dir", "~/q", "--dry-run", "--", "--quant_method", "bnb",
                      "--quant_bits", "4"])
    assert result.code == 2
    assert f"(\"FileExistsError: args.output_dir: `{here}/home/q` already exists.\")" in result.stderr, result.stderr


@pytest.mark.parametrize("method", ["awq", "gptq", "gptq_v2", "bnb"])
def test_a_method_without_bits_is_refused_as_swift_export_refuses_it(here, method):
    """ExportArguments.__post_init__ (4.6.0 export_args.py:129-130) asks before BaseArguments reads
    a checkpoint's args.json, so a QLoRA checkpoint's recorded bits do not save it."""
    expected = (f"error[args.quant_bits.missing] args.quant_method (-- extra flags): quant_method {method} without "
                "quant_bits: swift export refuses it while parsing its arguments (\"Please specify `--quant_bits`.\")")
    for source in (["--model", MODEL], ["--adapters", str(_qlora(here))]):
        result = run_cli(["export", *source, "--dry-run", "--", "--quant_method", method, "--dataset", "d.jsonl",
                          "--output_dir", f"out-{method}"])
        assert result.code == 2
        lines = result.stderr.splitlines()
        assert expected in lines, result.stderr
        assert lines[lines.index(expected) + 1] == f"  hint: add --quant_bits {'4' if method != 'bnb' else '4'}"


def test_an_empty_quant_method_gets_one_error_the_flag_checks(here):
    result = run_cli(["export", "--model", MODEL, "--dry-run", "--", "--quant_method", ""])
    assert result.code == 2
    assert "args.quant_bits.missing" not in result.stderr, result.stderr
    assert "error[flags.value] args.quant_method" in result.stderr, result.stderr


def test_only_the_first_export_action_runs_and_a_push_needs_its_repo(here):
    """SwiftExport.run's if/elif chain (4.6.0 pipelines/export/export.py:30-50): --push_to_hub after
    --quant_method is never done; a push that is reached with no hub_model_id fails its assert."""
    result = run_cli(["export", "--model", MODEL, "--dry-run", "--", "--quant_method", "bnb", "--quant_bits", "4",
                      "--push_to_hub", "true", "--hub_model_id", "me/x", "--output_dir", "o1"])
    assert result.code == 0, result.stderr
    assert result.stderr.splitlines()[:2] == [
        "warning[export.action.skipped] args.push_to_hub (-- extra flags): --push_to_hub is not done: swift export "
        "runs only the first of --quant_method, --to_ollama, --to_cached_dataset, --to_hf/--to_mcore, --push_to_hub "
        "that is asked (here --quant_method)",
        "  hint: export twice: first --quant_method, then the other with --model set to the first one's output dir"]
    result = run_cli(["export", "--model", MODEL, "--dry-run", "--", "--push_to_hub", "true"])
    assert result.code == 2
    assert result.stderr.splitlines()[:2] == [
        "error[export.push.hub_model_id] args.push_to_hub (-- extra flags): push_to_hub true with no hub_model_id: "
        "ms-swift stops at \"Please enter a valid hub_model_id\" when it creates the repo",
        "  hint: add --hub_model_id OWNER/NAME (and --hub_token, or MODELSCOPE_API_TOKEN / HF_TOKEN)"]
    assert run_cli(["export", "--model", MODEL, "--dry-run", "--", "--push_to_hub", "true", "--hub_model_id",
                    "me/x"]).code == 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_args_json_does_not_hang_a_dry_run(here):
    """checks/pixels.py read the checkpoint's args.json with a plain open(): a FIFO blocked forever."""
    import subprocess

    base = here / "Qwen2.5-0.5B-Instruct"  # a local base: the pixel check then reads the checkpoint's args.json
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}))
    ckpt = make_adapter(here / "fifo")
    config = json.loads((ckpt / "adapter_config.json").read_text())
    (ckpt / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(base)}))
    os.mkfifo(ckpt / "args.json")
    for argv in (["export", "--adapters", str(ckpt), "--dry-run", "--", "--quant_method", "bnb", "--quant_bits", "4"],
                 ["infer", "--adapters", str(ckpt), "--dry-run"]):
        done = subprocess.run([sys.executable, "-m", "lorakit", *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode in (0, 2), done.stderr
        assert "Traceback" not in done.stderr
