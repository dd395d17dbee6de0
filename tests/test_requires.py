"""ModelMeta.requires (the packages ms-swift registers a model with) against this machine's
installed versions: checks/requires.py and sitepackages.py. The failure the error claims is shown
on the real ms-swift in tests/test_real_requires.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from lorakit import sitepackages
from lorakit.checks.facts import Facts
from lorakit.checks.requires import check_requires, parse, satisfied, version_key
from lorakit.job import Job, Launch

BERT = {"architectures": ["ModernBertForMaskedLM"], "model_type": "modernbert", "hidden_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}


def fake_site(root: Path, version: str, knows: tuple[str, ...] = ("bert", "qwen2", "llama"),
              swift: str | None = None) -> Path:
    """A site-packages dir as an older machine has it: transformers VERSION, whose Auto classes
    know only `knows` (the 4.x table's shape: configuration_auto.py), and ms-swift `swift` if given
    (a `swift` of the job's major: the requirements of the other major's are not judged)."""
    site = root / "site"
    if swift:
        (site / f"ms_swift-{swift}.dist-info").mkdir(parents=True)
    (site / f"transformers-{version}.dist-info").mkdir(parents=True)
    (site / f"transformers-{version}.dist-info" / "METADATA").write_text(f"Name: transformers\nVersion: {version}\n")
    auto = site / "transformers" / "models" / "auto"
    auto.mkdir(parents=True)
    rows = "".join(f'        ("{t}", "{t.title()}Config"),\n' for t in knows)
    (auto / "configuration_auto.py").write_text(f"CONFIG_MAPPING_NAMES = OrderedDict(\n    [\n{rows}    ]\n)\n")
    return site


def model_dir(root: Path, config: dict, name: str = "ModernBERT-large") -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    return path


def job(model: str, major: int = 3, command: str = "sft", **args) -> Job:
    return Job(command=command, launch=Launch(), args={"model": model, **args}, preset="p.yaml", swift_major=major)


def facts(local: Path | None, versions: dict, knows=lambda t, env=None: False, here=True) -> Facts:
    from lorakit.sitepackages import normalise

    return Facts(find_model=lambda m: local, packages=lambda env=None: {normalise(k): v for k, v in versions.items()},
                 transformers_knows=knows, here=here)


@pytest.mark.parametrize("text,key", [
    ("4.48", (4, 48, 0, 0, 0, 0, 1)), ("4.47.1", (4, 47, 1, 0, 0, 0, 1)), ("5.0.0.dev0", (5, 0, 0, 0, 0, 0, 0)),
    ("4.48rc1", (4, 48, 0, 0, 0, 0, 0)), ("2.13.0+cpu", (2, 13, 0, 0, 0, 0, 1)), ("3.3.0.post1", (3, 3, 0, 0, 0, 0, 1)),
    ("banana", None), ("", None)])
def test_version_key(text, key):
    assert version_key(text) == key


@pytest.mark.parametrize("spec,parsed", [
    ("transformers>=4.48", ("transformers", [(">=", "4.48")])),
    ("transformers>=4.45,<4.49", ("transformers", [(">=", "4.45"), ("<", "4.49")])),
    ("decord", ("decord", [])), ("qwen_vl_utils>=0.0.6", ("qwen_vl_utils", [(">=", "0.0.6")])),
    ("minicpmo-utils==1.0.6", ("minicpmo-utils", [("==", "1.0.6")])),
    ("torch>=2.2.0; python_version>'3.8'", None), ("git+https://x/y", None)])
def test_parse(spec, parsed):
    assert parse(spec) == parsed


@pytest.mark.parametrize("have,clauses,ok", [
    ("4.47.1", [(">=", "4.48")], False), ("4.48.0", [(">=", "4.48")], True), ("4.49", [(">=", "4.45"), ("<", "4.49")], False),
    ("4.57.6", [(">=", "5.0.0.dev0")], False), ("5.0.0", [(">=", "5.0.0.dev0")], True), ("5.19.0", [("<", "5")], False),
    ("1.0.6", [("==", "1.0.6")], True), ("weird", [(">=", "1")], None)])
def test_satisfied(have, clauses, ok):
    assert satisfied(have, clauses) is ok


def test_a_model_type_the_installed_transformers_lacks_below_ms_swifts_floor_is_an_error(tmp_path):
    local = model_dir(tmp_path, BERT)
    [found] = check_requires(job(str(local)), facts(local, {"transformers": "4.47.1"}))
    assert (found.level, found.code, found.key) == ("error", "model.requires.transformers", "args.model")
    assert found.message == (f"{local}'s config.json has model_type 'modernbert', which the installed transformers "
                             "4.47.1 does not know, and ms-swift registers model_type modern_bert with "
                             "'transformers>=4.48': loading the model fails (ms-swift says only \"Please install "
                             "the package\")")
    assert found.hint == "pip install 'transformers>=4.48' -U (ms-swift's own advice), in the environment `swift` runs from"


def test_an_unmet_floor_for_a_model_transformers_knows_is_ms_swifts_warning(tmp_path):
    local = model_dir(tmp_path, BERT)
    [found] = check_requires(job(str(local)), facts(local, {"transformers": "4.47.1"}, knows=lambda t, env=None: True))
    assert (found.level, found.code) == ("warning", "model.requires")
    assert found.message == ("ms-swift registers model_type modern_bert with transformers>=4.48; this machine has "
                             "transformers 4.47.1: ms-swift warns \"Please install the package\" after the download "
                             "and loading or encoding may fail")
    assert found.hint == "pip install 'transformers>=4.48' -U"


def test_remote_code_and_an_upper_bound_are_never_the_error(tmp_path):
    remote = model_dir(tmp_path, {**BERT, "auto_map": {"AutoConfig": "configuration_x.XConfig"}}, "remote/ModernBERT-base")
    assert [f.level for f in check_requires(job(str(remote)), facts(remote, {"transformers": "4.47.1"}))] == ["warning"]
    # chatglm3 needs transformers<4.42 (remote code of its own): a too-new transformers is ms-swift's warning
    glm = model_dir(tmp_path, {"architectures": ["ChatGLMModel"], "model_type": "chatglm"}, "chatglm3-6b")
    said = check_requires(job(str(glm), model_type="chatglm3"), facts(glm, {"transformers": "4.57.6"}))
    assert [(f.level, f.code) for f in said] == [("warning", "model.requires")]


def test_a_hub_model_is_judged_by_its_registered_name_and_missing_packages_are_named(tmp_path):
    said = check_requires(job("Qwen/Qwen2-VL-7B-Instruct", major=4), facts(None, {"transformers": "5.19.0"}))
    assert [f.message for f in said] == [
        "ms-swift registers model_type qwen2_vl with qwen_vl_utils>=0.0.6, decord; this machine has no "
        "qwen_vl_utils, no decord: ms-swift warns \"Please install the package\" after the download and loading "
        "or encoding may fail"]
    assert said[0].hint == "pip install 'qwen_vl_utils>=0.0.6' 'decord' -U"


def test_nothing_for_another_machine_met_requirements_or_an_unknown_model(tmp_path):
    local = model_dir(tmp_path, BERT)
    assert check_requires(job(str(local)), facts(local, {"transformers": "4.47.1"}, here=False)) == []
    assert check_requires(job(str(local)), facts(local, {"transformers": "4.48.0"})) == []
    assert check_requires(job("someone/unregistered"), facts(None, {})) == []
    assert check_requires(job(str(local), command="export"), facts(local, {"transformers": "4.48.0"})) == []


def test_sitepackages_reads_the_first_dist_on_sys_path(tmp_path, monkeypatch):
    site = fake_site(tmp_path, "4.47.1")
    (site / "Qwen_VL.Utils-0.0.8.dist-info").mkdir()
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    assert sitepackages.dist_version("transformers") == "4.47.1"
    assert sitepackages.dist_version("qwen-vl-utils") == "0.0.8"
    assert sitepackages.transformers_knows("qwen2") is True
    assert sitepackages.transformers_knows("modernbert") is False
    monkeypatch.setattr(sys, "path", [str(tmp_path / "nothing")])
    assert sitepackages.dist_version("transformers") is None
    assert sitepackages.transformers_knows("qwen2") is None


def test_the_installed_transformers_is_read_as_it_is(tmp_path):
    """This machine's own transformers (5.x keeps the table in auto_mappings.py)."""
    assert sitepackages.dist_version("transformers") is not None
    assert sitepackages.transformers_knows("qwen2") is True
    assert sitepackages.transformers_knows("llama") is True
    assert sitepackages.transformers_knows("lorakit_no_such_model") is False


def test_cli_refuses_modernbert_on_an_older_transformers(tmp_path, monkeypatch):
    """ms-swift #2799, as the thread's machine had it (transformers before 4.48)."""
    local = model_dir(tmp_path, BERT)
    monkeypatch.setattr(sys, "path", [str(fake_site(tmp_path, "4.47.1", swift="3.0.3")), *sys.path])
    monkeypatch.chdir(tmp_path)
    said = run_cli(["validate", "-p", "single", "--swift-version", "3", "--", "--model", str(local)])
    assert said.code == 2, said.stderr
    assert (f"error[model.requires.transformers] args.model (-- extra flags): {local}'s config.json has model_type "
            "'modernbert', which the installed transformers 4.47.1 does not know") in said.stderr
    assert "  hint: pip install 'transformers>=4.48' -U (ms-swift's own advice)" in said.stderr
    dry = run_cli(["train", "-p", "single", "--swift-version", "3", "--dry-run", "--", "--model", str(local)])
    assert "model.requires" not in dry.stderr  # a dry-run may be for another machine


def other_env(root: Path, version: str) -> Path:
    """An environment that is not lorakit's: a venv (no pip) whose bin/swift is ms-swift's console
    script form and whose site-packages holds transformers VERSION."""
    import subprocess

    env = root / "otherenv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    swift = env / "bin" / "swift"
    swift.write_text(f"#!{env / 'bin' / 'python'}\n# -*- coding: utf-8 -*-\nfrom swift.cli.main import cli_main\n")
    swift.chmod(0o755)
    [site] = (env / "lib").glob("python*/site-packages")
    made = fake_site(root / "made", version, swift="3.12.6")
    for item in made.iterdir():
        item.rename(site / item.name)
    return env


def test_the_environment_swift_runs_in_is_the_one_judged(tmp_path, monkeypatch):
    """lorakit in one environment (transformers 5.x here), ms-swift in another (4.47.1): the
    other's packages count, as `swift` will import them (a hostile review)."""
    import os

    local = model_dir(tmp_path, BERT)
    env = other_env(tmp_path, "4.47.1")
    monkeypatch.setenv("PATH", f"{env / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    said = run_cli(["validate", "-p", "single", "--swift-version", "3", "--", "--model", str(local)])
    assert said.code == 2, said.stderr
    assert "the installed transformers 4.47.1 does not know" in said.stderr
    # lorakit's own environment first on PATH: its transformers (which knows modernbert) counts
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    assert "model.requires" not in run_cli(["validate", "-p", "single", "--swift-version", "3", "--", "--model",
                                            str(local)]).stderr


def test_no_swift_or_a_wrapper_says_nothing(tmp_path, monkeypatch):
    import os

    local = model_dir(tmp_path, BERT)
    wrapper = tmp_path / "wbin"
    wrapper.mkdir()
    (wrapper / "swift").write_text("#!/bin/sh\nexec /opt/elsewhere/swift \"$@\"\n")
    (wrapper / "swift").chmod(0o755)
    monkeypatch.setattr(sys, "path", [str(fake_site(tmp_path, "4.47.1")), *sys.path])  # would say 4.47.1
    monkeypatch.chdir(tmp_path)
    for path in (str(wrapper), str(tmp_path / "nothing-here")):
        monkeypatch.setenv("PATH", f"{path}{os.pathsep}/usr/bin{os.pathsep}/bin")
        said = run_cli(["validate", "-p", "single", "--swift-version", "3", "--", "--model", str(local)])
        assert "model.requires" not in said.stderr, said.stderr


def test_a_config_class_no_transformers_has_is_never_the_error(tmp_path):
    """LLaVA-NeXT's llava_qwen: ms-swift's loader brings its own config class, and no transformers
    release maps it, so an older transformers is only ms-swift's warning (a hostile review)."""
    local = model_dir(tmp_path, {"architectures": ["LlavaQwenForCausalLM"], "model_type": "llava_qwen"},
                      "llava-next-72b")
    said = check_requires(job(str(local), major=4), facts(local, {"transformers": "4.41.2"}))
    assert [(f.level, f.code) for f in said] == [("warning", "model.requires")]


def test_egg_info_installs_count(tmp_path, monkeypatch):
    """importlib.metadata, which ms-swift's require_version asks, reads *.egg-info too (a hostile
    review); a version-less NAME.egg-info (setup.py develop) is installed, its version not judged."""
    site = tmp_path / "egg"
    (site / "qwen_vl_utils-0.0.14-py3.11.egg-info").mkdir(parents=True)
    (site / "decord.egg-info").mkdir()
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    assert sitepackages.dist_version("qwen-vl-utils") == "0.0.14"
    assert sitepackages.dist_version("decord") == ""
    said = check_requires(job("Qwen/Qwen2-VL-7B-Instruct", major=4),
                          Facts(find_model=lambda m: None, packages=lambda env=None: sitepackages.dists(), here=True))
    assert said == []


def test_another_environments_own_import_path_is_asked(tmp_path):
    """Its PYTHONPATH, .pth files and user site count, as they will for `swift` (a hostile review)."""
    extra = tmp_path / "shared"
    (extra / "transformers-9.9.9.dist-info").mkdir(parents=True)
    import os

    os.environ["PYTHONPATH"], saved = str(extra), os.environ.get("PYTHONPATH")
    try:
        paths = sitepackages._asked(sys.executable, str(extra))
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    assert paths is not None and str(extra) in paths
    assert sitepackages.dist_version("transformers", paths) == "9.9.9"
    assert sitepackages._asked(str(tmp_path / "no-python")) is None


def test_asking_another_python_survives_banners_hangs_and_is_asked_once(tmp_path, monkeypatch):
    """A second hostile review: a module system's banner on stdout turned every check off; a
    hanging interpreter stalled validate 30 s without a word; each answer was asked twice."""
    banner = tmp_path / "banner-python"
    banner.write_text(f"#!/bin/sh\necho 'Loading module cuda/12'\nexec {sys.executable} \"$@\"\n")
    banner.chmod(0o755)
    sitepackages._ASKED.clear()
    paths = sitepackages._asked(str(banner))
    assert paths is not None and any("site-packages" in p for p in paths)
    calls = []
    monkeypatch.setattr("subprocess.run", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(OSError()))
    assert sitepackages._asked(str(banner)) == paths and calls == []  # answered once per process
    hang = tmp_path / "hang-python"
    hang.write_text("#!/bin/sh\nsleep 30\n")
    hang.chmod(0o755)
    monkeypatch.undo()
    monkeypatch.setattr(sitepackages, "ASK_TIMEOUT", 0.5)
    import io
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert sitepackages._asked(str(hang)) is None
    assert (f"lorakit: {hang} did not say its import path in 0.5 s: the packages ms-swift registers models with "
            "are not checked") in err.getvalue().splitlines()


def test_the_presets_pythonpath_is_the_launchs(tmp_path, monkeypatch):
    """env: {PYTHONPATH: DIR} in the preset is what `swift` imports from (a second hostile review)."""
    local = model_dir(tmp_path, BERT)
    site = fake_site(tmp_path, "4.47.1", swift="3.0.3")
    sitepackages._ASKED.clear()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(f"extends: single\nenv:\n  PYTHONPATH: {site}\n")
    said = run_cli(["validate", "-p", "p.yaml", "--swift-version", "3", "--", "--model", str(local)])
    assert "the installed transformers 4.47.1 does not know" in said.stderr, said.stderr


def test_a_swift_of_the_other_major_is_not_judged_by_this_majors_table(tmp_path, monkeypatch):
    """ms-swift 4.x installed, the job for 3.x: the launch refuses that mismatch itself; judging
    4.x's packages by 3.x's registry gave advice that breaks the other (a second hostile review)."""
    local = model_dir(tmp_path, BERT)
    monkeypatch.setattr(sys, "path", [str(fake_site(tmp_path, "4.47.1", swift="4.6.0")), *sys.path])
    monkeypatch.chdir(tmp_path)
    said = run_cli(["validate", "-p", "single", "--swift-version", "3", "--", "--model", str(local)])
    assert "model.requires" not in said.stderr, said.stderr


def test_a_version_less_ms_swift_egg_info_is_no_version(tmp_path, monkeypatch):
    from lorakit.swiftenv import installed_version

    (tmp_path / "ms_swift.egg-info").mkdir()
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert installed_version() is None


@pytest.mark.parametrize("shebang, flags", [
    ("#!{py} -sE", ("-s", "-E")), ("#!{py} -I", ("-I",)), ("#!{py}", ()), ("#!{py} -u", ()),
    ("#!{py} -Walways", ()), ("#!{py} -sWignore", ("-s",)), ("#!{py} -Xfrozen_modules=off -E", ("-E",)),
    ("#!/usr/bin/env python3", ()), ("#!/bin/sh", ())])
def test_interpreter_flags_of_a_shebang(tmp_path, shebang, flags):
    from lorakit.doctor import interpreter_flags

    script = tmp_path / "swift"
    script.write_text(shebang.format(py=sys.executable) + "\nfrom swift.cli.main import cli_main\n")
    assert interpreter_flags(str(script)) == flags
    assert interpreter_flags(str(tmp_path / "none")) == ()


def test_a_swift_whose_shebang_says_no_pythonpath_is_asked_with_that_flag(tmp_path, monkeypatch):
    """`#!python -E` ignores PYTHONPATH: a dist-info there is not what `swift` sees (a left-alone
    item of the last round: the flags were dropped when asking)."""
    shared = tmp_path / "shared"
    (shared / "qwen_vl_utils-0.0.13.dist-info").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    base = Path(sys.base_prefix) / "bin" / "python3"  # another environment's python: it is asked
    if not base.exists() or sys.base_prefix == sys.prefix:
        pytest.skip("needs lorakit in a venv over a base python")
    for flags, seen in (("", True), (" -E", False)):
        swift = bin_dir / "swift"
        swift.write_text(f"#!{base}{flags}\nimport sys\nfrom swift.cli.main import cli_main\n")
        swift.chmod(0o755)
        sitepackages._ASKED.clear()
        monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
        monkeypatch.setenv("PYTHONPATH", str(shared))
        paths = sitepackages.swift_paths({})
        assert paths is not None
        assert (sitepackages.dist_version("qwen_vl_utils", paths) == "0.0.13") is seen, (flags, paths)


def test_an_ms_swift_2_where_swift_runs_is_an_error_on_validate(tmp_path, monkeypatch):
    """ms-swift #3321: 3.x flags on a 2.x install. Only for this machine: a dry-run says nothing."""
    site = tmp_path / "site"
    (site / "ms_swift-2.6.1.dist-info").mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    monkeypatch.chdir(tmp_path)
    result = run_cli(["validate", "-p", "single", "--", "--model", "Qwen/Qwen2.5-0.5B"])
    assert result.code == 2
    assert [line for line in result.stderr.splitlines() if "swift.version" in line] == [
        "error[swift.version.unsupported] launch.swift: the `swift` on PATH runs ms-swift 2.6.1, which takes 2.x flags "
        "(--model_id_or_path, --sft_type, --ckpt_dir): it rejects this command, written for ms-swift 4.x, and a "
        "lorakit launch here refuses that swift"]
    # --swift-version: validating for another machine is ordinary (a second hostile review)
    other = run_cli(["validate", "-p", "single", "--swift-version", "3", "--", "--model", "Qwen/Qwen2.5-0.5B"])
    assert [line.split("]")[0] for line in other.stderr.splitlines() if "swift.version" in line] == [
        "warning[swift.version.unsupported"]
    dry = run_cli(["train", "-p", "single", "--swift-version", "3", "--dry-run", "--", "--model", "Qwen/Qwen2.5-0.5B"])
    assert dry.code == 0 and "swift.version" not in dry.stderr, dry.stderr
