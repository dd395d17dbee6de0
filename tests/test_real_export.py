"""The real ms-swift 4.6.0 `swift export` beyond a merge, on lorakit.tiny's model (CPU).

- `lorakit export` launches a cached-dataset export that ms-swift runs to the end (its argv is
  accepted as rendered), and a second one into the same dir is what ms-swift refuses
  (FileExistsError): lorakit says so first.
- GPTQ where optimum is not installed (this environment): ms-swift loads the model, then dies
  importing optimum, leaving an output_dir with only args.json behind, which the next try then
  refuses as existing. lorakit, for a launch here, says the missing packages first.
- quant_bits without quant_method: ms-swift's own ValueError; lorakit's error first.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from test_real_swift import swift_env, tiny  # noqa: F401  (tiny: the module-scoped fixture)

pytestmark = pytest.mark.real


def _swift(flags, cwd):
    done = subprocess.run(["swift", "export", *flags], cwd=cwd, env=swift_env(), capture_output=True, text=True,
                          timeout=600)
    return done.returncode, done.stdout + done.stderr


def _lorakit(args, cwd):
    return subprocess.run([sys.executable, "-m", "lorakit", *args], cwd=cwd, env=swift_env(), capture_output=True,
                          text=True, timeout=600)


def test_a_cached_dataset_export_runs_through_lorakit_and_a_second_is_refused_first(tmp_path, tiny):  # noqa: F811
    model, data, _ = tiny
    flags = ["--model_type", "qwen2", "--template", "qwen", "--to_cached_dataset", "true", "--dataset", str(data)]
    done = _lorakit(["export", "--model", str(model), "--output-dir", "cached", "--", *flags], tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (tmp_path / "cached" / "train" / "dataset_info.json").is_file(), done.stderr[-3000:]

    again = _lorakit(["export", "--model", str(model), "--output-dir", "cached", "--", *flags], tmp_path)
    assert again.returncode == 2, again.stderr
    assert ("error[export.output.exists] args.output_dir (--output-dir): output_dir cached exists: ms-swift refuses "
            f"to write into it (\"FileExistsError: args.output_dir: `{tmp_path}/cached` already exists.\")") \
        in again.stderr.splitlines(), again.stderr
    code, said = _swift(["--model", str(model), "--output_dir", "cached", *flags], tmp_path)
    assert code != 0 and f"FileExistsError: args.output_dir: `{tmp_path}/cached` already exists." in said, said[-3000:]


def test_gptq_without_optimum_dies_after_the_load_and_lorakit_says_so_first(tmp_path, tiny):  # noqa: F811
    model, data, _ = tiny
    flags = ["--model", str(model), "--model_type", "qwen2", "--template", "qwen", "--quant_method", "gptq",
             "--quant_bits", "4", "--dataset", str(data), "--output_dir", "q"]
    check = _lorakit(["validate", "-p", str(_export_fragment()), "--", *flags], tmp_path)
    assert check.returncode == 2, check.stderr
    assert ("error[export.needs] args.quant_method (-- extra flags): --quant_method gptq needs optimum and gptqmodel "
            "(or auto-gptq), not installed where `swift` runs: ms-swift stops at optimum's GPTQQuantizer, imported "
            "after the model has loaded (quant.py gptq_model_quantize)") in check.stderr.splitlines(), check.stderr

    code, said = _swift(flags, tmp_path)
    assert code != 0 and "ModuleNotFoundError: No module named 'optimum'" in said, said[-3000:]
    assert "Loading weights" in said, said[-3000:]  # after the model load
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == ["args.json"]
    # the half-done dir stops the next try: lorakit says it as well
    check = _lorakit(["validate", "-p", str(_export_fragment()), "--", *flags], tmp_path)
    assert "error[export.output.exists] args.output_dir (-- extra flags): output_dir q exists" in check.stderr


def test_quant_bits_without_a_method_is_ms_swifts_value_error_and_lorakits_first(tmp_path, tiny):  # noqa: F811
    model, data, _ = tiny
    flags = ["--model", str(model), "--quant_bits", "4", "--dataset", str(data)]
    code, said = _swift(flags, tmp_path)
    assert code != 0 and "ValueError: Please specify the quantization method using `--quant_method awq/gptq/bnb`." \
        in said, said[-3000:]
    check = _lorakit(["export", "--dry-run", "--", *flags], tmp_path)
    assert check.returncode == 2
    assert check.stderr.splitlines()[0] == (
        "error[args.quant_bits.no_method] args.quant_bits (-- extra flags): quant_bits 4 without quant_method: swift "
        "export refuses it (\"Please specify the quantization method using `--quant_method awq/gptq/bnb`.\")")


@pytest.mark.parametrize("convert", ["--to_hf", "--to_mcore"])
def test_a_missing_mcore_model_is_ms_swifts_file_not_found_and_lorakits_error_first(tmp_path, convert):
    # no model needed: ExportArguments.__post_init__ checks the path before anything loads
    flags = [convert, "true", "--mcore_model", "./megatron-out"]
    code, said = _swift(flags, tmp_path)
    assert code != 0 and f"FileNotFoundError: path: '{tmp_path}/megatron-out'" in said, said[-3000:]
    (tmp_path / "megatron_out").mkdir()
    check = _lorakit(["export", "--dry-run", "--", *flags], tmp_path)
    assert check.returncode == 2
    assert check.stderr.splitlines()[:2] == [
        "error[paths.mcore_model.missing] args.mcore_model (-- extra flags): mcore_model './megatron-out': no such "
        f"Megatron checkpoint ({tmp_path}/megatron-out)",
        f"  hint: did you mean './megatron_out'? paths are relative to the directory you launch from ({tmp_path}); "
        "with --to_hf/--to_mcore ms-swift stops with FileNotFoundError when it is not there"]


def _export_fragment():
    from lorakit.presets import builtin_dir

    return builtin_dir() / "fragments" / "export.yaml"
