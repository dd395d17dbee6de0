"""The YAML a person writes: an unquoted `no` is the word no (YAML 1.1 made it false), a key twice
in one mapping is an error, and booleans inside a JSON mapping keep YAML 1.1's meaning."""

from __future__ import annotations

import pytest
import yaml

from conftest import run_cli
from lorakit import yamlload


def _flag_lines(stdout: str, *names: str) -> list[str]:
    return [line.strip(" \\") for line in stdout.splitlines() if line.strip().split(" ")[0] in names]


def _preset(tmp_path, body: str) -> str:
    path = tmp_path / "p.yaml"
    path.write_text("extends: single\n" + body, encoding="utf-8")
    return str(path)


def test_no_for_a_choice_flag_renders_the_word(tmp_path):
    path = _preset(tmp_path, "args:\n  eval_strategy: no\n  save_strategy: no\n")
    result = run_cli(["train", "-p", path, "--dry-run"])
    assert result.code == 0, result.stderr
    assert _flag_lines(result.stdout, "--eval_strategy", "--save_strategy") == [
        "--eval_strategy no", "--save_strategy no"]
    # the word as written: ms-swift's choices are case-sensitive, and so is the check
    refused = run_cli(["validate", "-p", path, "--set", "save_strategy=No"])
    assert refused.code == 2
    assert ("error[flags.value] args.save_strategy (--set): save_strategy: 'No' is not one of no, steps, epoch, "
            "best; did you mean 'no'?") in refused.stderr.splitlines()


@pytest.mark.parametrize("word, rendered", [("on", "true"), ("yes", "true"), ("Off", "false"), ("no", "false")])
def test_yes_no_on_off_for_a_boolean_flag_are_booleans(tmp_path, word, rendered):
    result = run_cli(["train", "-p", _preset(tmp_path, f"args:\n  use_rslora: {word}\n  lora_alpha: 16\n"),
                      "--dry-run"])
    assert result.code == 0, result.stderr
    assert _flag_lines(result.stdout, "--use_rslora") == [f"--use_rslora {rendered}"]


def test_words_inside_a_mapping_are_json_booleans(tmp_path):
    path = _preset(tmp_path, "args:\n  gradient_checkpointing_kwargs: {use_reentrant: no}\n")
    result = run_cli(["train", "-p", path, "--dry-run"])
    assert result.code == 0, result.stderr
    assert """    --gradient_checkpointing_kwargs '{"use_reentrant": false}'""" in result.stdout


def test_set_keeps_the_word_too():
    result = run_cli(["train", "-p", "single", "--set", "eval_strategy=no", "--set", "use_rslora=on",
                      "--set", "lora_alpha=16", "--dry-run"])
    assert result.code == 0, result.stderr
    assert sorted(_flag_lines(result.stdout, "--eval_strategy", "--use_rslora")) == [
        "--eval_strategy no", "--use_rslora true"]


def test_a_key_twice_in_one_mapping_names_both_lines(tmp_path):
    path = _preset(tmp_path, "args:\n  lora_rank: 8\n  lora_alpha: 32\n  lora_rank: 16\n")
    result = run_cli(["validate", "-p", path])
    assert result.code == 2
    assert result.stderr == (f"lorakit: error: {path}:5:3: key 'lora_rank' appears twice in one mapping (lines 3 and "
                             "5): YAML would keep the second silently\n"
                             "  hint: keep the key once, with the value you mean\n")


def test_words_survive_a_record_dump():
    assert yaml.safe_dump({"a": yamlload.Word("no")}) == "a: 'no'\n"


def test_only_true_and_false_are_booleans():
    assert yamlload.parse("[true, False, no, on, y, 'no']") == [True, False, "no", "on", "y", "no"]
    assert [type(v).__name__ for v in yamlload.parse("[no, 'no']")] == ["Word", "str"]


def test_exponents_without_a_dot_are_numbers_inside_a_mapping():
    """YAML 1.1 reads 1e-6 as text: as a flag ms-swift parses it anyway, in a JSON mapping it was "1e-6"."""
    parsed = yamlload.parse("a: [1e-6, 1.5e6, '1e-6', 1e, 1.0e-6]\nb: {m: 1e-6, n: -2E+3, o: '1e-6', p: [3e2]}")
    assert [type(v).__name__ for v in parsed["a"]] == ["Number", "Number", "str", "str", "float"]
    assert yamlload.settle(parsed["a"]) == ["1e-6", "1.5e6", "1e-6", "1e", 1e-06]
    settled = yamlload.settle(parsed["b"])
    assert settled == {"m": 1e-06, "n": -2000, "o": "1e-6", "p": [300]}
    assert [type(v).__name__ for v in (settled["m"], settled["n"], settled["p"][0])] == ["float", "int", "int"]
    assert yaml.safe_dump({"a": yamlload.Number("1e-6")}) == "a: 1e-6\n"


def test_a_whole_exponent_in_model_kwargs_stays_an_int(tmp_path):
    """ms-swift sets model_kwargs as environment variables with str(): "1000000.0" is no int."""
    path = _preset(tmp_path, "args:\n  model_kwargs: {MAX_PIXELS: 1e6}\n")
    result = run_cli(["train", "-p", path, "--dry-run"])
    assert result.code == 0, result.stderr
    assert """    --model_kwargs '{"MAX_PIXELS": 1000000}'""" in result.stdout
