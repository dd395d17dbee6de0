"""--loss_scale against the target release's loss-scale registry (lorakit.lossscales, from
src/lorakit/data/swift_loss_scales.json, which scripts/gen_swift_loss_scales.py reads from every
released wheel). ms-swift #4382: `ignore_empty_think` on 3.3.0.post1 is a KeyError after the load."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from conftest import WHEELS, imported_by, regenerate_pinned, run_cli
from lorakit import lossscales

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("major,version,picked,label", [
    (3, "3.3.0.post1", "3.3.0.post1", "ms-swift 3.3.0.post1"),
    (3, "3.3.0post1", "3.3.0.post1", "ms-swift 3.3.0post1"),
    (3, "3.4", "3.4.1.post1", "ms-swift 3.4 (3.4.1.post1)"),
    (3, "3.4.1.dev0", "3.4.1", "ms-swift 3.4.1.dev0"),
    (3, "3.6.5", "3.6.4", "ms-swift 3.6.5"),  # a patch the table does not list: the nearest earlier
    (3, None, "3.12.6", "ms-swift 3.x (3.12.6)"),
    (4, "4", "4.6.0", "ms-swift 4.x (4.6.0)"),
    (4, "4.6.0+cu121", "4.6.0", "ms-swift 4.6.0+cu121"),
])
def test_the_release_a_target_is_judged_as(major, version, picked, label):
    at = lossscales.release(major, version)
    assert (at.version, at.label, at.beyond) == (picked, label, False)


def test_a_release_newer_than_the_table_is_a_doubt():
    assert lossscales.release(4, "4.9.1").beyond and lossscales.release(4, "4.9").beyond
    assert not lossscales.release(4, "4.6.0.post1").beyond  # a post of the last listed patch is that patch


@pytest.mark.parametrize("version,value,bad", [
    ("3.3.0.post1", "ignore_empty_think", [("ignore_empty_think", "name")]),
    ("3.4.0", "ignore_empty_think", [("ignore_empty_think", "name")]),
    ("3.4.1", "ignore_empty_think", []),
    ("3.11.3", "last_round_with_ignore_empty_think", []),
    ("3.11.3", "last_round+hermes", [("last_round+hermes", "plus")]),
    ("3.12.6", "last_round_with_ignore_empty_think", [("last_round_with_ignore_empty_think", "name")]),
    ("3.12.6", "last_round+ignore_empty_think", []),
    ("3.12.6", "default", []),
    ("3.12.6", "hermes+ignore_empty_think", [("hermes", "base")]),
    ("3.12.6", "last_round+hermes+qwen", [("hermes+qwen", "chain")]),
    ("4.0.0", "base", []),
    ("4.3.0", "hermes+ignore_empty_think", [("hermes", "base")]),
    ("4.3.1", "hermes+ignore_empty_think", []),
    ("4.6.0", "last_round+hermes+ignore_empty_think", []),
    ("4.6.0", "last_round+", [("", "name")]),
    ("4.4.2", "ignore_think_prefix", [("ignore_think_prefix", "name")]),
    ("4.5.0", "ignore_think_prefix", []),
])
def test_what_each_release_refuses(version, value, bad):
    at = lossscales.release(int(version[0]), version)
    assert [(p.part, p.why) for p in lossscales.problems(value, at)] == bad


def test_the_table_holds_the_thread_and_the_grammars():
    data = json.loads(lossscales.DATA.read_text(encoding="utf-8"))
    runs = {(r["first"], r["last"]): r["grammar"] for r in data["runs"]}
    assert runs[("3.5.2", "3.11.3")] == "key" and runs[("3.12.0", "3.12.6")] == "pair"
    assert runs[("4.3.1", "4.4.2")] == "chain"
    # every listed version in exactly one run, in order
    covered = [v for v in data["versions"] if sum(lossscales.key(r["first"]) <= lossscales.key(v)
                                                  <= lossscales.key(r["last"]) for r in data["runs"]) == 1]
    assert covered == data["versions"]


def test_the_thread_is_refused_with_the_version_that_has_it(tmp_path):
    result = run_cli(["validate", "-p", "single", "--swift-version", "3.3.0.post1", "--",
                      "--loss_scale", "ignore_empty_think"])
    assert result.code == 2
    lines = result.stderr.splitlines()
    assert ("error[flags.too_new] args.loss_scale (-- extra flags): loss_scale 'ignore_empty_think' in ms-swift "
            "3.3.0.post1: no loss scale by that name: it is from ms-swift 3.4.1; ms-swift finds out after the model "
            "has loaded (KeyError: 'ignore_empty_think'); it takes agentflan, all, alpha_umi, default, last_round, "
            "qwen, react") in lines, result.stderr
    assert "  hint: upgrade to ms-swift 3.4.1 or later (pip install 'ms-swift>=3.4.1,<4')" in lines


@pytest.mark.parametrize("target,value,line,hint", [
    ("3.11", "last_round+hermes",
     "error[flags.too_new] args.loss_scale (-- extra flags): loss_scale 'last_round+hermes' in ms-swift 3.11 "
     "(3.11.3): '+' combines loss scales only from ms-swift 3.12.0; ms-swift finds out after the model has loaded "
     "(KeyError: 'last_round+hermes'); it takes agentflan, all, alpha_umi, default, hermes, ignore_empty_think, "
     "last_round, last_round_with_ignore_empty_think, qwen, react",
     "  hint: upgrade to ms-swift 3.12.0 or later (pip install 'ms-swift>=3.12.0,<4')"),
    ("4.0", "hermes+ignore_empty_think",
     "error[flags.too_new] args.loss_scale (-- extra flags): loss_scale 'hermes+ignore_empty_think' in ms-swift 4.0 "
     "(4.0.4): the part before '+' ('hermes') must be a base strategy (default, last_round, all); names chain from "
     "ms-swift 4.3.1; ms-swift finds out after the model has loaded (ALL_BASE_STRATEGY: ['default', 'last_round', "
     "'all'], base_strategy: hermes); it takes default, last_round, all or NAME, each optionally BASE+NAME, NAME "
     "one of agentflan, alpha_umi, hermes, ignore_empty_think, qwen, react",
     "  hint: upgrade to ms-swift 4.3.1 or later (pip install 'ms-swift>=4.3.1,<5')"),
    ("4", "last_round_with_ignore_empty_think",
     "error[flags.removed] args.loss_scale (-- extra flags): loss_scale 'last_round_with_ignore_empty_think' in "
     "ms-swift 4.x (4.6.0): no loss scale by that name any more: ms-swift 3.12.0 replaced it; ms-swift finds out "
     "after the model has loaded (KeyError: 'last_round_with_ignore_empty_think'); it takes default, last_round, "
     "all or NAME, each optionally BASE+NAME+NAME..., NAME one of agentflan, alpha_umi, hermes, ignore_empty_think, "
     "ignore_think_prefix, qwen, react",
     "  hint: write 'last_round+ignore_empty_think'"),
    ("3.12", "last_round+hermes+qwen",
     "error[flags.value] args.loss_scale (-- extra flags): loss_scale 'last_round+hermes+qwen' in ms-swift 3.12 "
     "(3.12.6): one name may follow the base, not several ('hermes+qwen'); ms-swift finds out after the model has "
     "loaded (KeyError: 'hermes+qwen'); it takes default, last_round, all or NAME, each optionally BASE+NAME, NAME "
     "one of agentflan, alpha_umi, hermes, ignore_empty_think, qwen, react",
     "  hint: start with a base (last_round+NAME), or give one name alone"),
    ("4", "last_round+",
     "error[flags.value] args.loss_scale (-- extra flags): loss_scale 'last_round+' in ms-swift 4.x (4.6.0): an "
     "empty name after '+'; ms-swift finds out after the model has loaded (KeyError: ''); it takes default, "
     "last_round, all or NAME, each optionally BASE+NAME+NAME..., NAME one of agentflan, alpha_umi, hermes, "
     "ignore_empty_think, ignore_think_prefix, qwen, react",
     "  hint: pick one ms-swift 4.x (4.6.0) takes"),
    ("4", "+hermes",
     "error[flags.value] args.loss_scale (-- extra flags): loss_scale '+hermes' in ms-swift 4.x (4.6.0): an "
     "empty name before '+'; ms-swift finds out after the model has loaded (KeyError: ''); it takes default, "
     "last_round, all or NAME, each optionally BASE+NAME+NAME..., NAME one of agentflan, alpha_umi, hermes, "
     "ignore_empty_think, ignore_think_prefix, qwen, react",
     "  hint: pick one ms-swift 4.x (4.6.0) takes"),
    # a name 3.5.2 brought and 3.12.0 renamed: the pin stops below 3.12 (pip's '<4' would install 3.12.x)
    ("3.4", "last_round_with_ignore_empty_think",
     "error[flags.too_new] args.loss_scale (-- extra flags): loss_scale 'last_round_with_ignore_empty_think' in "
     "ms-swift 3.4 (3.4.1.post1): no loss scale by that name: it is from ms-swift 3.5.2; ms-swift finds out after "
     "the model has loaded (KeyError: 'last_round_with_ignore_empty_think'); it takes agentflan, all, alpha_umi, "
     "default, hermes, ignore_empty_think, last_round, qwen, react",
     "  hint: upgrade to ms-swift 3.5.2 (up to 3.12.0, which no longer reads it: pip install "
     "'ms-swift>=3.5.2,<3.12.0'); from 3.12.0 write 'last_round+ignore_empty_think'"),
    # 3.12's '-' key is a table entry no user writes: never "from ms-swift 3.12.0"
    ("3.3", "-",
     "error[flags.value] args.loss_scale (-- extra flags): loss_scale '-' in ms-swift 3.3 (3.3.1): no loss scale "
     "by that name in any ms-swift 3.x; ms-swift finds out after the model has loaded (KeyError: '-'); it takes "
     "agentflan, all, alpha_umi, default, hermes, last_round, qwen, react",
     "  hint: pick one ms-swift 3.3 (3.3.1) takes"),
])
def test_each_kind_of_refusal_says_what_the_release_reads(tmp_path, target, value, line, hint):
    result = run_cli(["validate", "-p", "single", "--swift-version", target, "--", "--loss_scale", value])
    assert result.code == 2
    assert line in result.stderr.splitlines(), result.stderr
    assert hint in result.stderr.splitlines(), result.stderr


def test_a_plugin_may_register_its_own_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plugin.py").write_text("from swift.plugin import loss_scale_map\n")
    result = run_cli(["validate", "-p", "single", "--swift-version", "4", "--", "--loss_scale", "my_scale",
                      "--external_plugins", "plugin.py"])
    assert "warning[flags.value] args.loss_scale" in result.stderr, result.stderr
    assert "(unless your --external_plugins file registers it)" in result.stderr
    assert "error[flags.value] args.loss_scale" not in result.stderr


@pytest.mark.parametrize("target,value", [("4", "ignore_empty_think"), ("4", "hermes"), ("4", "last_round"),
                                          ("4", "default+ignore_empty_think"), ("3", "react"),
                                          ("3.8", "last_round_with_ignore_empty_think"), ("3.0", "default")])
def test_what_ms_swift_documents_passes(tmp_path, target, value):
    result = run_cli(["validate", "-p", "single", "--swift-version", target, "--", "--loss_scale", value])
    assert "args.loss_scale" not in result.stderr, result.stderr


def test_a_dry_run_without_loss_scale_never_reads_the_table(tmp_path):
    assert not imported_by(["train", "-p", "zero2", "--dry-run"], "lorakit.lossscales", tmp_path)


@pytest.mark.network
def test_regenerating_from_the_wheels_gives_the_committed_file():
    regenerate_pinned("gen_swift_loss_scales.py")
    # and the thread's case in the wheels themselves: 3.4.0's registry lacks the name, 3.4.1's has it
    for version, has in (("3.3.0.post1", False), ("3.4.0", False), ("3.4.1", True)):
        with zipfile.ZipFile(Path(WHEELS) / f"ms_swift-{version}-py3-none-any.whl") as wheel:
            source = wheel.read("swift/plugin/loss_scale/loss_scale.py" if version != "3.3.0.post1"
                                else "swift/plugin/loss_scale.py").decode("utf-8")
        assert ("'ignore_empty_think':" in source) == has, version


@pytest.mark.parametrize("target,value", [("4", "last_round+default"), ("3.12", "all+all"), ("4.6", "default+last_round")])
def test_a_base_written_as_a_name_is_not_a_name_any_release_had(target, value):
    """A base strategy after '+' is a name no release has (4.x: KeyError from loss_scale_map), not a
    removed one: 3.0-3.11's registry held 'default' only as the whole value."""
    result = run_cli(["validate", "-p", "single", "--swift-version", target, "--", "--loss_scale", value])
    part = value.split("+")[1]
    assert result.code == 2
    line = next(line for line in result.stderr.splitlines() if "args.loss_scale" in line)
    assert line.startswith("error[flags.value]"), line
    assert f"{part!r} after '+': a base strategy only comes first, and names follow it" in line
    assert f"(KeyError: {part!r})" in line
    assert f"  hint: {part!r} is a base strategy: it goes first ({part}+NAME), once" in result.stderr.splitlines()


@pytest.mark.parametrize("yaml_value,text", [("123", "'123'"), ("true", "'true'"), ("'{a: 1}'", "'{a: 1}'"),
                                             ("''", "''")])
def test_a_value_yaml_typed_is_judged_as_the_text_ms_swift_gets(tmp_path, yaml_value, text):
    preset = tmp_path / "p.yaml"
    preset.write_text(f"extends: single\nargs:\n  loss_scale: {yaml_value}\n")
    result = run_cli(["validate", "-p", str(preset), "--swift-version", "4"])
    assert result.code == 2
    assert any(line.startswith(f"error[flags.value] args.loss_scale ({preset}): loss_scale {text} in ms-swift 4.x")
               for line in result.stderr.splitlines()), result.stderr


def test_in_the_pair_grammar_the_names_key_error_comes_first():
    """3.12's get_loss_scale: `loss_scale_map[loss_scale](base_strategy)`: the lookup raises before the base is judged."""
    at = lossscales.release(3, "3.12.6")
    assert [(p.part, p.why) for p in lossscales.problems("foo+bar", at)] == [("bar", "name"), ("foo", "base")]
    result = run_cli(["validate", "-p", "single", "--swift-version", "3.12", "--", "--loss_scale", "foo+bar"])
    assert "(KeyError: 'bar')" in result.stderr


@pytest.mark.parametrize("value", ["hermes+ignore_empty_think", "last_round+foo", "last_round+hermes+qwen"])
def test_an_upgrade_is_named_only_when_that_release_reads_the_whole_value(value):
    """3.12 reads BASE+NAME, one name: these fail there too, so 3.11 gets no 'upgrade to 3.12'."""
    result = run_cli(["validate", "-p", "single", "--swift-version", "3.11", "--", "--loss_scale", value])
    line = next(line for line in result.stderr.splitlines() if "args.loss_scale" in line)
    assert line.startswith("error[flags.value]"), line
    assert "'+' combines nothing here, and no ms-swift 3.x reads this value" in line
    assert "upgrade" not in result.stderr
