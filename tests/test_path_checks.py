"""Local paths ms-swift would take for hub ids, an output dir it cannot create, and local
paths rendered absolute (args.json, merge and --from then work from any directory)."""

from __future__ import annotations

import json
import os

import pytest

from conftest import run_cli


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "qwen3-0.6b").mkdir(parents=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, '
                                                   '{"role": "assistant", "content": "hello"}]}\n' * 20)
    return tmp_path


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error[")]


def test_a_mistyped_local_model_is_an_error_with_did_you_mean(here):
    result = run_cli(["validate", "-p", "single", "--model", "./models/qwen3-0.6", "--dataset", "data/train.jsonl"])
    assert result.code == 2
    lines = result.stderr.splitlines()
    at = lines.index(f"error[paths.model.missing] args.model (--model): model './models/qwen3-0.6': no such model "
                     f"({here / 'models' / 'qwen3-0.6'})")
    assert lines[at + 1] == (f"  hint: did you mean './models/qwen3-0.6b'? paths are relative to the directory you "
                             f"launch from ({here}); ms-swift would take a missing path for a hub id and try to "
                             "download it")


@pytest.mark.parametrize("model", ["Qwen/Qwen3-8B", "qwen3-8b-not-here"])
def test_hub_ids_pass_untouched(here, model):
    result = run_cli(["train", "-p", "single", "--model", model, "--dry-run"])
    assert result.code == 0, result.stderr
    assert f"    --model {model} \\" in result.stdout.splitlines()


@pytest.mark.parametrize("model", ["", "  "])
def test_an_empty_model_names_no_model(here, model):
    result = run_cli(["validate", "-p", "single", "--model", model, "--dataset", "data/train.jsonl"])
    assert result.code == 2
    assert _errors(result.stderr) == [f"error[paths.model.empty] args.model (--model): model {model!r} names no model"]


@pytest.mark.parametrize("value, shown", [("true", "true"), ("0", "0"), ("1.5", "1.5")])
def test_a_resume_from_checkpoint_yaml_reads_as_no_text_is_refused(here, value, shown):
    result = run_cli(["validate", "-p", "single", "--dataset", "data/train.jsonl", "--set",
                      f"resume_from_checkpoint={value}"])
    assert result.code == 2
    assert _errors(result.stderr) == [
        f"error[paths.resume_from_checkpoint.missing] args.resume_from_checkpoint (--set): resume_from_checkpoint "
        f"{shown} is not a path (ms-swift would look for a directory named '{shown}')"]


def test_resume_from_checkpoint_must_exist(here):
    result = run_cli(["validate", "-p", "single", "--set", "resume_from_checkpoint=output/v0/checkpoint-5"])
    assert result.code == 2
    assert (f"error[paths.resume_from_checkpoint.missing] args.resume_from_checkpoint (--set): resume_from_checkpoint "
            f"'output/v0/checkpoint-5': no such checkpoint ({here / 'output/v0/checkpoint-5'})") in _errors(result.stderr)


@pytest.mark.parametrize("out, why", [
    ("/proc/lorakit-nope", "cannot be created under /proc: No such file or directory"),
    ("blocker/out", "cannot be created: {here}/blocker is a file"),
    ("blocker", "is a file, not a directory"),
])
def test_output_dir_must_be_creatable(here, out, why):
    (here / "blocker").write_text("")
    result = run_cli(["validate", "-p", "single", "--output-dir", out])
    assert result.code == 2
    assert (f"error[paths.output_dir.unwritable] args.output_dir (--output-dir): output_dir {out!r} "
            + why.format(here=here)) in _errors(result.stderr)
    assert not list(here.glob(".lorakit-probe-*"))


def test_a_creatable_output_dir_leaves_nothing_behind(here):
    result = run_cli(["validate", "-p", "single", "--output-dir", "runs/new/deep"])
    assert result.code == 0, result.stderr
    assert sorted(os.listdir(here)) == ["data", "models"]


def test_existing_local_paths_render_absolute(here):
    result = run_cli(["train", "-p", "single", "--model", "models/qwen3-0.6b", "--dataset", "data/train.jsonl#5",
                      "--dataset", "AI-ModelScope/alpaca-gpt4-data-en#10", "--dry-run"])
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"    --model {here / 'models/qwen3-0.6b'} \\" in lines
    assert f"    --dataset '{here / 'data/train.jsonl'}#5' 'AI-ModelScope/alpaca-gpt4-data-en#10' \\" in lines
    assert (f"info[paths.absolute] args.model (--model): local paths rendered absolute (model, dataset), as seen "
            f"from {here}") in result.stderr.splitlines()


def test_a_tilde_path_is_expanded(here, monkeypatch):
    monkeypatch.setenv("HOME", str(here))
    result = run_cli(["train", "-p", "single", "--model", "~/models/qwen3-0.6b", "--dry-run"])
    assert result.code == 0, result.stderr
    assert f"    --model {here / 'models/qwen3-0.6b'} \\" in result.stdout.splitlines()


def test_a_missing_dataset_info_file_says_how_ms_swift_reads_it(tmp_path):
    result = run_cli(["validate", "-p", "single", "--set", f"custom_dataset_info={tmp_path}/info.json"])
    assert result.code == 2
    lines = result.stderr.splitlines()
    i = next(n for n, l in enumerate(lines) if l.startswith("error[paths.custom_dataset_info.missing]"))
    assert lines[i + 1].endswith("; ms-swift would read a missing path as inline JSON and fail")


@pytest.mark.parametrize("flags, refused", [
    (["--to_hf", "true", "--mcore_model", "megatron-out"], True),  # a bare name: still a path there
    (["--to_mcore", "--mcore_model", "megatron-out"], True),
    (["--to_hf", "false", "--mcore_model", "megatron-out"], False),  # no conversion: not read as a path
    (["--to_hf", "true", "--mcore_model", "models"], False),  # there
    (["--mcore_model", "./megatron-out"], False),  # read only by a conversion (export_args.py)
])
def test_mcore_model_must_exist_where_export_converts(here, flags, refused):
    result = run_cli(["export", "--dry-run", "--", *flags])
    line = (f"error[paths.mcore_model.missing] args.mcore_model (-- extra flags): mcore_model "
            f"{flags[-1]!r}: no such Megatron checkpoint ({here / 'megatron-out'})")
    assert (line in _errors(result.stderr)) is refused, result.stderr


@pytest.mark.parametrize("model", ["+", "Qwen/Qwen2.5 7B", "Qwen/Qwen2.5-7B/extra", "Qwen//Qwen2.5-7B", "Qwen\\Qwen2.5"])
def test_a_model_that_is_no_path_and_no_hub_id_is_refused(here, model):
    result = run_cli(["validate", "-p", "single", "--model", model, "--dataset", "data/train.jsonl"])
    assert result.code == 2
    lines = result.stderr.splitlines()
    at = lines.index(f"error[paths.model.not_hub_id] args.model (--model): model {model!r} is neither a local "
                     "path here nor a hub id")
    assert lines[at + 1] == ("  hint: a hub id is Org/Name (letters, digits, '-', '_', '.'), e.g. "
                             "Qwen/Qwen2.5-7B-Instruct; a local model is a path from the directory you launch "
                             f"from ({here})")


def test_an_adapter_that_is_no_hub_id_is_refused_with_did_you_mean(here):
    (here / "output-lora").mkdir()
    result = run_cli(["validate", "-p", "single", "--dataset", "data/train.jsonl", "--", "--adapters", "output lora"])
    assert result.code == 2
    assert ("error[paths.adapters.not_hub_id] args.adapters (-- extra flags): adapters 'output lora' is neither a "
            "local path here nor a hub id") in result.stderr
    assert "  hint: did you mean 'output-lora'? a hub id is Org/Name" in result.stderr


@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-7B-Instruct", "gpt2", "AI-ModelScope/bert.base_v1",
                                   "Qwen/Qwen3-VL-8B:transformer"])
def test_what_hugging_face_takes_as_a_repo_id_passes(here, model):
    # the real validator (huggingface_hub) takes the id part; lorakit must never be stricter
    from huggingface_hub.utils import validate_repo_id

    validate_repo_id(model.split(":", 1)[0])
    result = run_cli(["validate", "-p", "single", "--model", model, "--dataset", "data/train.jsonl", "--json"])
    assert "paths.model.not_hub_id" not in result.stdout


@pytest.mark.parametrize("model", ["+", "Qwen/Qwen2.5 7B", "Qwen/Qwen2.5-7B/extra", "Qwen//Qwen2.5-7B"])
def test_what_lorakit_refuses_hugging_face_refuses(model):
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    with pytest.raises(HFValidationError):
        validate_repo_id(model)


def test_lorakit_takes_every_id_hugging_face_takes():
    from hypothesis import given, settings, strategies as st
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from lorakit.checks.paths import is_hub_id

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet="aZ09-_./ :+\\~é", min_size=1, max_size=12))
    def agrees(text):
        try:
            validate_repo_id(text)
        except HFValidationError:
            return
        assert is_hub_id(text), text

    agrees()


def test_a_missing_plugin_file_is_refused_with_did_you_mean(here):
    (here / "plugin.py").write_text("# registers nothing\n")
    result = run_cli(["validate", "-p", "single", "--dataset", "data/train.jsonl", "--", "--external_plugins",
                      "plugn.py"])
    assert result.code == 2
    lines = result.stderr.splitlines()
    at = lines.index(f"error[paths.external_plugins.missing] args.external_plugins (-- extra flags): external_plugins "
                     f"'plugn.py': no such plugin file ({here / 'plugn.py'})")
    assert lines[at + 1] == (f"  hint: did you mean 'plugin.py'? paths are relative to the directory you launch "
                             f"from ({here}); ms-swift imports it while parsing its arguments and stops there")
    there = run_cli(["validate", "-p", "single", "--dataset", "data/train.jsonl", "--", "--external_plugins",
                     "plugin.py", "--custom_register_path", str(here / "plugin.py")])
    assert "paths.external_plugins" not in there.stderr and "paths.custom_register_path" not in there.stderr


def test_every_missing_plugin_of_a_list_is_named(here):
    result = run_cli(["validate", "-p", "single", "--dataset", "data/train.jsonl", "--", "--external_plugins",
                      "a.py", "b.py", "--custom_register_path", "c.py"])
    assert [e.split(":")[0] for e in _errors(result.stderr) if "plugin" in e] == [
        "error[paths.external_plugins.missing] args.external_plugins (-- extra flags)",
        "error[paths.external_plugins.missing] args.external_plugins (-- extra flags)",
        "error[paths.custom_register_path.missing] args.custom_register_path (-- extra flags)"]


@pytest.mark.parametrize("system, refused", [
    ("prompts/system.txt", True),  # read as a file because it ends in .txt
    ("You are a helpful assistant.", False),  # a prompt
    ("system.md", False),  # only .txt is read as a file (template_args.py)
    ("data/train.jsonl", False),
])
def test_a_system_prompt_file_must_exist(here, system, refused):
    result = run_cli(["validate", "-p", "single", "--dataset", "data/train.jsonl", "--", "--system", system])
    line = (f"error[paths.system.missing] args.system (-- extra flags): system {system!r}: no such system prompt "
            f"file ({here / system})")
    assert (line in _errors(result.stderr)) is refused, result.stderr
    if refused:
        (here / "prompts").mkdir()
        (here / system).write_text("You are lorakit's test.\n")
        again = run_cli(["validate", "-p", "single", "--dataset", "data/train.jsonl", "--", "--system", system])
        assert "paths.system" not in again.stderr


# the hostile review's F9: ms-swift 4.x loads the plugin file itself, 3.x imports the name before
# its first '.' from the file's directory (import_external_file; tests/test_real_failures.py plugin-*)

def _plugin(here, text: str, version: str, key: str = "external_plugins"):
    return run_cli(["validate", "-p", "single", "--swift-version", version, "--dataset", "data/train.jsonl", "--",
                    f"--{key}", text])


def test_a_package_dir_is_a_plugin_for_3x_only(here):
    (here / "plugpkg").mkdir()
    (here / "plugpkg" / "__init__.py").write_text("")
    new = _plugin(here, "plugpkg", "4.6", "custom_register_path")
    assert new.code == 2
    assert ("error[paths.custom_register_path.not_module] args.custom_register_path (-- extra flags): "
            "custom_register_path 'plugpkg' is a directory: ms-swift 4.x imports a plugin as one .py file and stops "
            "while parsing its arguments (\"ImportError: Cannot import external file\")\n"
            "  hint: name the file: custom_register_path: plugpkg/__init__.py") in new.stderr
    for text in ("plugpkg", str(here / "plugpkg"), "plugpkg/__init__.py"):
        old = _plugin(here, text, "3.12", "custom_register_path")
        assert "paths.custom_register_path" not in old.stderr, (text, old.stderr)


def test_a_file_that_is_not_python(here):
    (here / "plug.txt").write_text("")
    new = _plugin(here, "plug.txt", "4.6")
    assert ("error[paths.external_plugins.not_module] args.external_plugins (-- extra flags): external_plugins "
            "'plug.txt' is not a Python file: ms-swift 4.x imports a plugin as one .py file") in new.stderr
    old = _plugin(here, "plug.txt", "3.12")
    assert old.code == 2
    assert ("error[paths.external_plugins.not_module] args.external_plugins (-- extra flags): external_plugins "
            f"'plug.txt': ms-swift 3.x imports it as the module 'plug' from {here}, which has no plug.py "
            "(ModuleNotFoundError: No module named 'plug')\n  hint: name the plugin's .py file") in old.stderr
    (here / "plug.py").write_text("")  # 3.x then imports plug.py
    assert "paths.external_plugins" not in _plugin(here, "plug.txt", "3.12").stderr


def test_a_bare_module_name_is_left_to_3x_and_missing_for_4x(here):
    assert "paths.external_plugins" not in _plugin(here, "my_plugins", "3.12").stderr
    new = _plugin(here, "my_plugins", "4.6")
    assert "error[paths.external_plugins.missing] args.external_plugins (-- extra flags): external_plugins " \
           f"'my_plugins': no such plugin file ({here / 'my_plugins'})" in new.stderr
    assert "error[paths.external_plugins.missing]" in _plugin(here, "my_plugins.py", "3.12").stderr


def test_a_register_file_softens_the_optimizer_check_as_a_plugin_does(here):
    (here / "reg.py").write_text("")
    result = run_cli(["validate", "-p", "single", "--dataset", "data/train.jsonl", "--", "--optimizer", "my_opt",
                      "--custom_register_path", "reg.py"])
    assert result.code == 0, result.stderr
    assert ("warning[train.optimizer.unknown] args.optimizer (-- extra flags): optimizer 'my_opt' is none ms-swift "
            "registers, unless your --custom_register_path file registers it (optimizers_map['name'] = ...)") \
        in result.stderr


def test_a_system_prompt_file_is_a_file_and_home_is_expanded(here, monkeypatch):
    """ms-swift opens a --system ending in .txt as written (template_args.py): no shell expands `~`
    for it under lorakit, and a directory fails its isfile assertion."""
    (here / "prompts.txt").mkdir()
    result = run_cli(["validate", "-p", "single", "--dataset", "data/train.jsonl", "--", "--system", "prompts.txt"])
    assert result.code == 2
    assert (f"error[paths.system.missing] args.system (-- extra flags): system 'prompts.txt' is a directory "
            f"({here / 'prompts.txt'}): ms-swift reads a --system ending in '.txt' as the prompt file and stops "
            "(AssertionError)\n  hint: name the prompt file inside it, or write the prompt itself") in result.stderr
    home = here / "home"
    home.mkdir()
    (home / "sys.txt").write_text("Be brief.")
    monkeypatch.setenv("HOME", str(home))
    dry = run_cli(["train", "-p", "single", "--dataset", "data/train.jsonl", "--dry-run", "--format", "json", "--",
                   "--system", "~/sys.txt"])
    assert dry.code == 0, dry.stderr
    argv = json.loads(dry.stdout)["argv"]
    assert argv[argv.index("--system") + 1] == str(home / "sys.txt")


# the second hostile review (R1, R2, R4, R5): each item as ms-swift gets it, the text as written

def test_blank_and_non_text_plugin_items_are_refused(here):
    (here / "p.yaml").write_text("extends: single\nargs:\n  dataset: data/train.jsonl\n"
                                 "  external_plugins: ['', 5, '  ']\n")
    result = run_cli(["validate", "-p", "p.yaml"])
    assert result.code == 2
    assert [e.split(": ", 1)[1] for e in _errors(result.stderr) if "external_plugins" in e] == [
        "external_plugins '' names no plugin file",
        f"external_plugins '5': no such plugin file ({here / '5'})",
        "external_plugins '  ' names no plugin file"]


def test_spaces_around_a_plugin_name_fail_4x(here):
    (here / "plug.py").write_text("")
    new = _plugin(here, "plug.py ", "4.6")
    assert new.code == 2
    assert ("error[paths.external_plugins.missing] args.external_plugins (-- extra flags): external_plugins "
            "'plug.py ' has spaces around the file's name: ms-swift 4.x opens it as written and stops "
            "(\"ImportError: Cannot import external file\")\n  hint: write 'plug.py'") in new.stderr
    assert "paths.external_plugins" not in _plugin(here, "plug.py ", "3.12").stderr  # 3.x imports `plug`


def test_3x_needs_a_module_file_or_a_package_dir(here):
    (here / "noext").write_text("")
    (here / "dirpy.py").mkdir()
    (here / "onlyc.pyc").write_bytes(b"")
    for text, stem in (("noext", None), ("./noext", "noext"), ("dirpy.py", "dirpy")):
        said = _plugin(here, text, "3.12")
        if stem is None:  # a bare name: it may be an installed module
            assert "paths.external_plugins" not in said.stderr
            continue
        assert f"imports it as the module {stem!r} from {here}, which has no {stem}.py" in said.stderr, said.stderr
    assert "paths.external_plugins" not in _plugin(here, "onlyc.pyc", "3.12").stderr
    assert "(IsADirectoryError)" in _plugin(here, "dirpy.py", "4.6").stderr


def test_a_3x_plugin_named_like_a_loaded_module_never_runs(here):
    (here / "datasets.py").write_text("")
    result = _plugin(here, "datasets.py", "3.12")
    assert result.code == 0, result.stderr
    assert ("warning[paths.external_plugins.shadowed] args.external_plugins (-- extra flags): external_plugins "
            "'datasets.py': ms-swift 3.x imports it as the module 'datasets', which is already loaded (datasets "
            "itself), so your file never runs\n  hint: rename the file, e.g. my_datasets.py") in result.stderr
    assert "paths.external_plugins" not in _plugin(here, "datasets.py", "4.6").stderr  # 4.x: its own module name
