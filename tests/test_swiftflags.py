"""swiftflags: the committed ms-swift flag snapshots, and the questions lorakit asks of them.

The value tests run anywhere. The drift and parse tests run ms-swift 4.x through
sys.executable and fail (not skip) without it; set LORAKIT_SWIFT3_PYTHON to a Python with
ms-swift 3.x to run the same checks against the v3 snapshot.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorakit import flaghistory as fh
from lorakit import swiftflags as sf

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "scripts" / "gen_swift_flags.py"
PARSE_CHECK = REPO / "scripts" / "swift_parse_check.py"


def _snapshot_path(major: int) -> Path:
    return REPO / "src" / "lorakit" / "data" / f"swift_flags_v{major}.json"



V4 = sf.load_flags(4, "sft")


@pytest.mark.parametrize(
    "key, expected",
    [
        ("lora_rank", ("lora_rank", "exact")),
        ("--lora_rank", ("lora_rank", "exact")),
        ("lora-rank", ("lora_rank", "alias")),
        ("--lora-rank", ("lora_rank", "alias")),
        ("lora_r", ("lora_rank", "prefix")),
        ("learning_rat", ("learning_rate", "prefix")),
        ("model", ("model", "exact")),  # exact wins over --model_type, --model_name, ...
        ("model_t", ("model_type", "prefix")),
        ("lora", (None, "ambiguous")),
        # One flag, two spellings: argparse still counts two matches and exits 2.
        ("lazy", (None, "ambiguous")),
        ("norm", (None, "ambiguous")),
        ("lazy_t", ("lazy_tokenize", "prefix")),
        ("no_gradient_checkpointing", ("gradient_checkpointing", "negation")),
        ("no-gradient-checkpointing", ("gradient_checkpointing", "negation")),
        ("no_grad", ("gradient_checkpointing", "negation")),
        ("no", (None, "ambiguous")),
        ("lora_rank=8", ("lora_rank", "exact")),
        ("lora_rnak", (None, "unknown")),
        ("train_type", (None, "unknown")),  # 3.x spelling; 4.x has only tuner_type
        ("he", (None, "unknown")),  # argparse would print --help and exit 0
        ("h", (None, "ambiguous")),
        ("", (None, "unknown")),
    ],
)
def test_resolve(key, expected):
    assert sf.resolve(V4, key) == expected


def test_resolve_knows_3x_spelling():
    assert sf.resolve(sf.load_flags(3, "sft"), "train_type") == ("train_type", "exact")
    assert sf.resolve(sf.load_flags(3, "sft"), "tuner_type") == (None, "unknown")


class _Refused(Exception):
    pass


def _stdlib_parser(flags):
    """A plain argparse parser with the snapshot's option strings, to check resolve() against."""
    parser = argparse.ArgumentParser(prog="swift")  # keeps -h/--help, like HfArgumentParser
    for spec in flags.values():
        parser.add_argument(*spec.options, dest=spec.name, default=argparse.SUPPRESS)
        if spec.negative_options:
            parser.add_argument(
                *spec.negative_options, dest=spec.name, action="store_false", default=argparse.SUPPRESS
            )

    def refuse(message="", *args):
        raise _Refused(message)

    parser.error = parser.exit = refuse
    parser.print_help = lambda *args, **kwargs: None
    return parser


def _argparse_says(parser, option):
    try:
        namespace, _ = parser.parse_known_args([option, "v"])
    except _Refused as err:
        return (None, "ambiguous") if "ambiguous" in str(err) else (None, "unknown")  # help exits
    taken = vars(namespace)
    if not taken:
        return None, "unknown"
    ((name, value),) = taken.items()
    return name, "negation" if value is False else "taken"


def _boundary_prefixes(option):
    """Prefixes where matching changes: around each separator, the shortest and the full one."""
    cuts = {3, len(option), len(option) - 1}
    for i, char in enumerate(option[2:], start=2):
        if char in "_-":
            cuts.update((i, i + 1, i + 2))
    return {option[:cut] for cut in cuts if 3 <= cut <= len(option)}


@pytest.mark.parametrize("major", [3, 4])
def test_resolve_agrees_with_stdlib_argparse(major):
    flags = sf.load_flags(major, "sft")
    parser = _stdlib_parser(flags)
    options = {o for spec in flags.values() for o in spec.options + spec.negative_options}
    keys = set().union(*(_boundary_prefixes(o) for o in options)) | {"--h", "--he", "--no", "--zzz"}
    disagree = []
    for key in sorted(keys):
        name, how = sf.resolve(flags, key)
        if how in ("exact", "alias", "prefix"):
            how = "taken"
        if (name, how) != _argparse_says(parser, key):
            disagree.append((key, (name, how), _argparse_says(parser, key)))
    assert disagree == []


@pytest.mark.parametrize(
    "key, expected",
    [
        ("lora_rnak", ["lora_rank", "local_rank", "galore_rank"]),
        ("--lora-dropot", ["lora_dropout", "vera_dropout", "boft_dropout"]),
        ("learnig_rate", ["learning_rate"]),
        ("train_type", ["task_type", "tuner_type", "lora_dtype"]),
        ("zzzz", []),
    ],
)
def test_suggest(key, expected):
    assert sf.suggest(V4, key) == expected


def test_suggest_limits_to_n():
    assert sf.suggest(V4, "lora_rnak", n=1) == ["lora_rank"]


@pytest.mark.parametrize(
    "key, expected",
    [("lazy", ["lazy_tokenize"]), ("lora_d", ["lora_dropout", "lora_dtype"]), ("zzz", [])],
)
def test_prefix_matches(key, expected):
    assert sf.prefix_matches(V4, key) == expected


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("lora_rank", 8, None),
        ("lora_rank", "8", None),  # argparse does int("8")
        ("lora_rank", 8.0, None),  # rendered as 8
        ("lora_rank", -1, None),
        ("lora_rank", None, None),  # null omits the flag
        ("lora_rank", 8.5, "lora_rank expects an integer, got '8.5'"),
        ("lora_rank", "8.0", "lora_rank expects an integer, got '8.0'"),
        ("lora_rank", True, "lora_rank expects an integer, got 'true'"),
        ("lora_rank", "eight", "lora_rank expects an integer, got 'eight'"),
        ("lora_rank", [8], "lora_rank takes one value, not a list"),
        ("lora_rank", {"a": 1}, "lora_rank expects an integer, not a mapping"),
        ("learning_rate", 1e-4, None),
        ("learning_rate", 1, None),
        ("learning_rate", "1e-4", None),
        ("learning_rate", -0.5, None),
        ("learning_rate", True, "learning_rate expects a number, got 'true'"),
        ("learning_rate", "abc", "learning_rate expects a number, got 'abc'"),
        ("learning_rate", -1e-5, None),  # rendered --learning_rate=-1e-05 (render.attaches)
        ("gradient_checkpointing", True, None),
        ("gradient_checkpointing", "yes", None),
        ("gradient_checkpointing", "TRUE", None),
        ("gradient_checkpointing", 0, None),
        (
            "gradient_checkpointing",
            "maybe",
            "gradient_checkpointing expects true or false (yes/no, t/f, y/n, 1/0), got 'maybe'",
        ),
        ("gradient_checkpointing", 2, "gradient_checkpointing expects true or false (yes/no, t/f, y/n, 1/0), got '2'"),
        ("torch_dtype", "bfloat16", None),
        ("torch_dtype", "bf16", "torch_dtype: 'bf16' is not one of bfloat16, float16, float32, None; did you mean 'bfloat16'?"),
        ("quant_bits", 4, None),  # Literal[1, 2, 3, 4, 8, 'float8']: argparse maps '4' to 4
        ("quant_bits", "float8", None),
        ("torch_dtype", "FP32", "torch_dtype: 'FP32' is not one of bfloat16, float16, float32, None; did you mean 'float32'?"),
        ("quant_bits", 16, "quant_bits: '16' is not one of 1, 2, 3, 4, 8, float8"),  # no "did you mean '1'"
        ("debug", ["underflow_overflow"], None),  # list[DebugOption]: the Enum is the choices
        ("debug", "nope", "debug: 'nope' is not one of underflow_overflow, tpu_metrics_debug"),
        ("debug", "tpu_metric_debug", "debug: 'tpu_metric_debug' is not one of underflow_overflow, tpu_metrics_debug; "
                                      "did you mean 'tpu_metrics_debug'?"),
        ("target_modules", ["q_proj", "v_proj"], None),
        ("target_modules", "all-linear", None),  # nargs='+' takes a single item too
        ("target_modules", [], "target_modules needs at least one value"),
        ("target_modules", [["q_proj"]], "target_modules: list items must be single values, got ['q_proj']"),
        ("model_kwargs", {"fps_max_frames": 12}, None),
        ("model_kwargs", '{"fps_max_frames": 12}', None),
        ("model_kwargs", "kwargs.json", None),  # a path: json_parse_to_dict reads the file
        ("model_kwargs", "{bad", "model_kwargs: the JSON does not parse (Expecting property name enclosed in"
                                  " double quotes: line 1 column 2 (char 1))"),
        ("model_kwargs", 5, "model_kwargs expects a mapping or a JSON string, got 5"),
        ("model_kwargs", [1], "model_kwargs takes one value, not a list; write it as a JSON string"),
        ("model", {"a": 1}, None),  # one JSON item, as ms-swift's YAML loader writes any mapping
        ("lora_rank", {"a": 1}, "lora_rank expects an integer, not a mapping"),
        ("system", "- be brief", None),  # has a space: argparse keeps it as a value
        ("system", "-x", None),  # the flag's one value: rendered --system=-x
        ("target_modules", ["-x"], None),
        ("target_modules", ["q_proj", "-x"], "target_modules: argparse reads the value '-x' as an option because it "
                                             "starts with '-'"),
        ("target_modules", ["q_proj", "-1e-5"], "target_modules: argparse reads the value '-1e-5' as an option "
                                                "because it starts with '-'; write it without an exponent"),
        (
            "liger_kernel_config",
            {"rope": True},
            "liger_kernel_config cannot be set from the command line: ms-swift's parser has no way to read it",
        ),
    ],
)
def test_check_value(flag, value, expected):
    assert sf.check_value(V4[flag], value) == expected


def test_check_value_follows_the_version():
    # 3.x types lora_alpha as int, 4.x as float.
    assert sf.check_value(sf.load_flags(3, "sft")["lora_alpha"], 32.5) == "lora_alpha expects an integer, got '32.5'"
    assert sf.check_value(V4["lora_alpha"], 32.5) is None


def test_tokens_match_lorakit_rendering():
    # check_value judges the argv items render.render_value produces; keep the two in step.
    from lorakit.render import render_value

    for value in (True, False, 8, 8.0, 8.5, 1e-4, -1e-5, "x", "-x"):
        assert [sf._token(value)] == render_value(value)


@pytest.mark.parametrize(
    "key, major, command, expected",
    [
        ("train_type", 4, "sft", "tuner_type"),
        ("--train-type", 4, "sft", "tuner_type"),
        ("tuner_type", 3, "sft", "train_type"),
        ("train_type", 3, "sft", "train_type"),
        ("metric", 4, "sft", "eval_metric"),
        ("eval_metric", 3, "sft", "metric"),
        ("save_safetensors", 4, "sft", "safe_serialization"),
        ("safe_serialization", 3, "sft", "save_safetensors"),
        ("safe_serialization", 3, "export", "safe_serialization"),  # 3.x export already had it
        ("mcore_adapters", 4, "export", "mcore_adapter"),
        ("lora_rank", 3, "sft", "lora_rank"),
        ("no_such_flag", 4, "sft", "no_such_flag"),
    ],
)
def test_canonical_for_version(key, major, command, expected):
    assert sf.canonical_for_version(key, major, command) == expected


def test_every_rename_names_real_flags():
    flags = {m: {n for c in sf.COMMANDS for n in sf.load_flags(m, c)} for m in (3, 4)}
    for old, targets in sf.RENAMED.items():
        for major, new in targets.items():
            assert new in flags[major] and old in flags[7 - major], (old, major, new)


def test_load_flags_errors():
    with pytest.raises(ValueError, match=r"no ms-swift 2\.x flag snapshot .*snapshots exist for: 3, 4"):
        sf.load_flags(2, "sft")
    with pytest.raises(ValueError, match=r"unknown ms-swift command 'web-ui'; expected one of "
                                         r"deploy, eval, export, infer, rlhf, rollout, sft$"):
        sf.load_flags(4, "web-ui")


def test_load_flags_is_shared_and_read_only():
    flags = sf.load_flags(4, "sft")
    with pytest.raises(TypeError):
        flags["lora_rank"] = None  # type: ignore[index]
    assert sf.load_flags(4, "sft") is flags and "lora_rank" in flags


def test_snapshot_versions():
    assert sf.available_majors() == [3, 4]
    assert (sf.snapshot_version(3), sf.snapshot_version(4)) == ("3.12.6", "4.6.0")


@pytest.mark.parametrize("major", [3, 4])
def test_snapshot_shape(major):
    data = json.loads(_snapshot_path(major).read_text(encoding="utf-8"))
    assert data["generated_by"] == "scripts/gen_swift_flags.py"
    for command in sf.COMMANDS:
        assert data["commands"][command]["other_options"] == sorted(sf.ARGPARSE_OWN)
        for name, spec in sf.load_flags(major, command).items():
            assert "--" + name in spec.options
            assert spec.type in ("int", "float", "str", "bool", "json", "unsupported")


# ---- the flag history: older minors ---------------------------------------------------------


@pytest.mark.parametrize("major, version, expected", [
    (3, "3.6.4", "3.6"),
    (3, "3.1.1.post1", "3.1"),
    (3, "3.10", "3.10"),
    (3, "3.12.6", None),  # the snapshot's own minor: the snapshot is the whole answer
    (3, "3.12", None),
    (4, "4.6.0", None),
    (4, "4.7.0", None),  # newer than the history: the newest snapshot is the best guess
    (4, "3.6.4", None),  # another major
    (3, None, None),
    (3, "3", None),
    (3, "3.x", None),
])
def test_target_minor(major, version, expected):
    assert fh.target_minor(major, version) == expected


@pytest.mark.parametrize("args, expected", [
    ((3, "sft", "enable_thinking", "3.6"), fh.Absence("enable_thinking", "3.6", "new", "3.12", "3.12")),
    ((3, "sft", "agent_template", "3.2"),
     fh.Absence("agent_template", "3.2", "new", "3.3", "3.12", older_name="tools_prompt")),
    ((3, "sft", "tools_prompt", "3.3"),
     fh.Absence("tools_prompt", "3.3", "removed", "3.0", "3.2", since="3.3", replacement="agent_template")),
    ((3, "export", "gguf_file", None), fh.Absence("gguf_file", "3.12", "removed", "3.0", "3.1", since="3.2")),
    ((4, "sft", "train_type", None),
     fh.Absence("train_type", "4.6", "removed", "4.0", "4.0", since="4.1", replacement="tuner_type")),
    ((3, "sft", "enable_thinking", "3.12"), None),
    ((3, "sft", "lora_rank", "3.0"), None),
    ((3, "sft", "gradient_accumulation_steps", "3.0"), None),  # transformers' flag: not tracked
    ((3, "sft", "no_such_flag", "3.0"), None),
])
def test_absence(args, expected):
    assert fh.absence(*args) == expected


def test_present_in():
    assert fh.present_in(3, "sft", "packing_cache", "3.6")
    assert not fh.present_in(3, "sft", "packing_cache", "3.7")
    assert not fh.present_in(3, "sft", "per_device_train_batch_size", "3.6")  # transformers': the snapshot answers
    assert fh.minors(2) == [] and fh.absence(2, "sft", "model") is None


def test_a_minor_without_a_flag_between_two_with_it(monkeypatch):
    fake = {"3": {"minors": {"3.0": "3.0.3", "3.1": "3.1.1", "3.2": "3.2.2"},
                  "commands": {"sft": {"flags": {"x": {"first": "3.0", "last": "3.2", "gaps": ["3.1"]}}}}}}
    monkeypatch.setattr(fh, "_history", lambda: fake)
    assert [fh.present_in(3, "sft", "x", m) for m in ("3.0", "3.1", "3.2")] == [True, False, True]
    assert fh.absence(3, "sft", "x", "3.1") == fh.Absence("x", "3.1", "gap", "3.0", "3.2")


def test_old_names_point_at_live_flags():
    from lorakit.names import OLD_NAMES

    live = {m: {c: set(sf.load_flags(m, c)) for c in sf.COMMANDS} for m in (3, 4)}
    for old, new in OLD_NAMES.items():
        assert all(old not in flags for by_command in live.values() for flags in by_command.values()), old
        assert any(sf.canonical_for_version(new, m, c) in live[m][c] for m in (3, 4) for c in sf.COMMANDS), new


@pytest.mark.parametrize("requested, major, version", [
    ("3", 3, None),
    (" 4 ", 4, None),
    ("3.10", 3, "3.10"),
    ("3.6.4", 3, "3.6.4"),
    ("3.1.1.post1", 3, "3.1.1.post1"),
    ("4.6", 4, "4.6"),
])
def test_swift_version_option(requested, major, version):
    from lorakit import swiftenv

    got = swiftenv.target(requested)
    assert (got.major, got.version, got.installed) == (major, version, version)
    assert got.source == f"ms-swift {version or f'{major}.x'} (--swift-version)"


# ---- against the real ms-swift -------------------------------------------------------------


def _swift4_python() -> str:
    try:
        version = importlib.metadata.version("ms-swift")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("ms-swift is not installed: these checks need it (pip install 'ms-swift>=4,<5')")
    if not version.startswith("4."):
        pytest.fail(f"ms-swift {version} is installed; the v4 checks need 4.x")
    if version != sf.snapshot_version(4):
        pytest.fail(
            f"ms-swift {version} is installed but swift_flags_v4.json is from {sf.snapshot_version(4)}: "
            "regenerate it with `python scripts/gen_swift_flags.py` and review the diff"
        )
    return sys.executable


def _swift3_python() -> str:
    python = os.environ.get("LORAKIT_SWIFT3_PYTHON")
    if not python:
        pytest.skip("set LORAKIT_SWIFT3_PYTHON to a Python with ms-swift 3.x to check the v3 snapshot")
    return python


PYTHONS = {3: _swift3_python, 4: _swift4_python}


def _run(python: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, *args], input=stdin, capture_output=True, text=True, cwd=REPO, timeout=600, check=False
    )


def _drift(old: dict, new: dict) -> list[str]:
    lines = [f"{key}: {old.get(key)} -> {new.get(key)}" for key in ("swift_version", "transformers_version")
             if old.get(key) != new.get(key)]
    for command in sf.COMMANDS:
        before, after = old["commands"][command]["flags"], new["commands"][command]["flags"]
        lines += [f"{command}: new flag {n}" for n in sorted(set(after) - set(before))]
        lines += [f"{command}: gone flag {n}" for n in sorted(set(before) - set(after))]
        lines += [f"{command}: {n} changed" for n in sorted(set(before) & set(after)) if before[n] != after[n]]
    return lines


@pytest.mark.parametrize("major", [4, 3])
def test_snapshot_matches_installed_swift(major):
    python = PYTHONS[major]()
    result = _run(python, str(GENERATOR), "--stdout")
    assert result.returncode == 0, result.stderr[-2000:]
    committed = _snapshot_path(major).read_text(encoding="utf-8")
    if result.stdout != committed:
        drift = _drift(json.loads(committed), json.loads(result.stdout))
        pytest.fail(
            f"swift_flags_v{major}.json is out of date; regenerate it with "
            f"`{python} scripts/gen_swift_flags.py` and review:\n" + "\n".join(drift[:40])
        )


PARSE_CASES = {
    # argv -> (exit code, remaining or the start of argparse's message)
    4: [
        (["--model", "m", "--tuner_type", "lora", "--lora_rank", "8", "--lora-alpha", "32", "--learning_rate",
          "1e-4", "--gradient_checkpointing", "yes", "--torch_dtype", "bfloat16", "--target_modules",
          "all-linear", "q_proj", "--model_kwargs", '{"a": 1}', "--quant_bits", "4", "--lora_dr", "0.1",
          "--no-dataset-shuffle"], (0, [])),
        (["--model", "m", "--lora_rnak", "8"], (0, ["--lora_rnak", "8"])),
        (["--train_type", "lora"], (0, ["--train_type", "lora"])),
        (["--lazy", "true"], (2, "ambiguous option: --lazy could match --lazy_tokenize, --lazy-tokenize")),
        (["--learning_rate", "-1e-05"], (2, "argument --learning_rate/--learning-rate: expected one argument")),
        (["--learning_rate=-1e-05", "--system=-x"], (0, [])),  # attached, as render.attaches writes them
        (["--lora_rank", "8.0"], (2, "argument --lora_rank/--lora-rank: invalid int value: '8.0'")),
    ],
    3: [
        (["--model", "m", "--train_type", "lora", "--lora_rank", "8", "--lora_alpha", "32",
          "--gradient_checkpointing", "true", "--target_modules", "all-linear"], (0, [])),
        (["--model", "m", "--lora_rnak", "8"], (0, ["--lora_rnak", "8"])),
        (["--tuner_type", "lora"], (0, ["--tuner_type", "lora"])),
        (["--lora_alpha", "32.0"], (2, "argument --lora_alpha/--lora-alpha: invalid int value: '32.0'")),
    ],
}


@pytest.mark.parametrize("major", [4, 3])
def test_parse_check_matches_cases(major):
    python = PYTHONS[major]()
    argvs = [argv for argv, _ in PARSE_CASES[major]]
    result = _run(python, str(PARSE_CHECK), "sft", "--batch", stdin=json.dumps(argvs))
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout)
    for (argv, (code, expected)), answer in zip(PARSE_CASES[major], answers):
        assert answer["swift_version"] == sf.snapshot_version(major)
        assert answer["exit"] == code, (argv, answer)
        if code == 0:
            assert answer["remaining"] == expected, argv
        else:
            assert answer["error"].startswith(expected), (argv, answer)


@pytest.mark.parametrize("major", [4, 3])
def test_parse_check_cli(major):
    python = PYTHONS[major]()
    result = _run(python, str(PARSE_CHECK), "sft", "--", "--model", "m", "--lora_rnak", "8")
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout)
    assert (answer["swift_version"], answer["remaining"]) == (sf.snapshot_version(major), ["--lora_rnak", "8"])
    assert answer["argv"] == ["--model", "m", "--lora_rnak", "8"] and answer["values"]["model"] == "m"
    refused = _run(python, str(PARSE_CHECK), "export", "--", "--max_length", "x")
    assert refused.returncode == 2
    message = "argument --max_length/--max-length: invalid int value: 'x'"
    assert f"swift export: error: {message}" in refused.stderr
    assert json.loads(refused.stdout) == {"swift_version": sf.snapshot_version(major), "error": message,
                                          "argv": ["--max_length", "x"]}


def test_snapshot_agrees_with_parse_cases():
    # The same verdicts from the snapshot alone, without ms-swift.
    assert sf.resolve(V4, "lazy") == (None, "ambiguous")
    assert sf.resolve(V4, "lora_dr") == ("lora_dropout", "prefix")
    assert sf.resolve(V4, "lora_rnak") == (None, "unknown")
    assert sf.check_value(V4["learning_rate"], -1e-5) is None  # rendered attached
    assert sf.check_value(V4["target_modules"], ["q_proj", "-1e-5"]) is not None
    assert sf.check_value(V4["lora_rank"], "8.0") is not None
    assert sf.check_value(sf.load_flags(3, "sft")["lora_alpha"], "32.0") is not None


@pytest.mark.parametrize("major", [3, 4])
def test_snapshots_cover_the_commands_after_sft(major):
    rlhf = sf.load_flags(major, "rlhf")
    assert rlhf["rlhf_type"].choices == ("dpo", "orpo", "simpo", "kto", "cpo", "rm", "ppo", "grpo", "gkd")
    assert rlhf["vllm_mode"].choices == ("server", "colocate") and rlhf["reward_funcs"].nargs == "+"
    assert set(sf.load_flags(major, "sft")) <= set(rlhf)  # RLHFArguments inherits the sft class
    backends = {3: ("vllm", "pt", "sglang", "lmdeploy"), 4: ("vllm", "transformers", "sglang", "lmdeploy", "pt")}
    for command in ("infer", "deploy", "eval", "rollout"):
        flags = sf.load_flags(major, command)
        assert flags["infer_backend"].choices == backends[major], command
        assert flags["vllm_max_lora_rank"].default == 16 and flags["adapters"].nargs == "+", command
    for command in ("deploy", "eval", "rollout"):
        assert (sf.load_flags(major, command)["port"].default, sf.load_flags(major, command)["host"].default) == \
            (8000, "0.0.0.0")
    assert "vllm_data_parallel_size" in sf.load_flags(major, "rollout")
    assert sf.load_flags(major, "eval")["eval_backend"].choices == ("Native", "OpenCompass", "VLMEvalKit")


def test_prefix_options_name_the_options_argparse_would():
    """`--n` (ms-swift #7257) matches --no_* negations of true-by-default bools too."""
    options = sf.prefix_options(V4, "n")
    assert "--new_special_tokens" in options and "--no_dataset_shuffle" in options
    assert all(o.startswith("--n") and "-" not in o[2:] for o in options)
    assert sf.prefix_options(V4, "lora_d") == ["--lora_dropout", "--lora_dtype"]


@pytest.mark.parametrize("major", [3, 4])
def test_one_commands_part_of_the_snapshot_parses_as_the_whole_file_does(major):
    """swiftflags parses only the command a job runs (the dry-run's cost); it must give exactly what
    parsing the whole snapshot gives, for every command and the version, or fall back to the whole."""
    import lorakit.swiftflags as sf

    whole = json.loads(_snapshot_path(major).read_text(encoding="utf-8"))
    assert sf.snapshot_version(major) == whole["swift_version"]
    for command, data in whole["commands"].items():
        assert sf._command_snapshot(major, command) == data, command
    assert sf._command_snapshot(major, "no_such_command") is None
