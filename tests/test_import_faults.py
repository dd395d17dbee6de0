"""shellscript.faults(text): the classic ms-swift script breakages, each with its line; and the
word expansion bash does (shellwords), value by value."""

from __future__ import annotations

import re

import pytest

from conftest import REPO
from lorakit.errors import LorakitError
from lorakit.shellscript import faults, read_script
from lorakit.shellmath import arithmetic
from lorakit.shellwords import expand

CORPUS = REPO / "tests" / "data" / "scripts"


def codes(text: str) -> list[tuple[str, str]]:
    return [(f.code, f.message.split(":")[0]) for f in faults(text) if f.level != "info"]


@pytest.mark.parametrize("name, expected", [
    ("broken_blank_line.sh", [("script.continuation.blank_line", "line 8")]),
    ("broken_blank_prefix.sh", [("script.continuation.blank_line", "line 4"),
                                ("script.env.not_exported", "line 2"), ("script.env.not_exported", "line 3")]),
    ("broken_trailing_space.sh", [("script.continuation.trailing_space", "line 5")]),
    ("broken_missing_backslash.sh", [("script.continuation.missing", "line 4")]),
    ("broken_comment_line.sh", [("script.continuation.comment", "line 4")]),
    ("broken_crlf.sh", [("script.continuation.crlf", "line 2"), ("script.continuation.crlf", "line 3"),
                        ("script.continuation.crlf", "line 4")]),
    ("broken_nproc_after.sh", [("script.env_after_command", "line 8")]),
    ("broken_flag_twice.sh", [("script.flag.twice", "line 6")]),
    ("broken_unresolved.sh", [("script.variable.unresolved", "line 4"), ("script.variable.unresolved", "line 6"),
                              ("script.variable.unresolved", "line 6")]),
    ("broken_not_exported.sh", [("script.env.not_exported", "line 4")]),
])
def test_each_broken_script_is_reported_at_its_line(name, expected):
    assert codes((CORPUS / name).read_bytes().decode()) == expected


@pytest.mark.parametrize("path", [p for p in sorted(CORPUS.glob("*.sh")) if not p.name.startswith("broken_")],
                         ids=lambda p: p.name)
def test_a_sound_script_has_no_faults(path):
    assert codes(path.read_bytes().decode()) == []


def test_a_trailing_space_is_an_argument_of_the_command_it_cuts():
    call = read_script((CORPUS / "broken_trailing_space.sh").read_bytes().decode()).calls[0]
    assert [a.text for a in call.args] == ["--model", "Qwen/Qwen2.5-7B-Instruct", "--dataset",
                                          "AI-ModelScope/alpaca-gpt4-data-en#500", " "]


def test_a_blank_line_after_the_last_flag_is_harmless():
    assert codes("swift sft \\\n  --model x \\\n\nswift export --adapters y\n") == []


def test_a_launch_variable_set_after_the_last_command():
    text = "swift sft --model x\nNPROC_PER_NODE=2\n"
    assert codes(text) == [("script.env.after_command", "line 2")]


def test_a_prefix_does_not_reach_the_commands_own_words():
    """bash expands `--x $A` before `A=1` applies to the command: the earlier A (or none)."""
    [call] = read_script("A=0\nA=1 swift sft --output_dir $A\n").calls
    assert [a.text for a in call.args] == ["--output_dir", "0"]
    assert call.prefix == {"A": "1"}


def test_a_dash_alias_and_the_underscore_name_are_one_flag():
    text = "swift sft --lora_rank 8 \\\n  --lora-rank 16\n"
    [twice] = faults(text)
    assert twice.message == ("line 2: --lora-rank is given again (first as --lora_rank at line 1): "
                             "argparse keeps the last one, and so does the import")


def test_text_bash_cannot_parse_is_an_error_with_its_line():
    with pytest.raises(LorakitError, match=r"^s.sh:2: the script does not parse as bash"):
        faults("echo ok\nswift sft --model 'x\n", "s.sh")


@pytest.mark.parametrize("raw, variables, fields", [
    ("'a b'", {}, ["a b"]),
    ('"$A"', {"A": "x y"}, ["x y"]),
    ("$A", {"A": "x y"}, ["x", "y"]),  # unquoted: bash splits it
    ("$E", {"E": ""}, []),  # an empty unquoted expansion is no word at all
    ('"$E"', {"E": ""}, [""]),
    ("${A}/z", {"A": "out"}, ["out/z"]),
    ("${X:-def}", {}, ["def"]),
    ("${X-def}", {"X": ""}, []),  # set but empty: no default, and no word
    ("${X:-def}", {"X": ""}, ["def"]),
    ("$'a\\tb\\n'", {}, ["a\tb\n"]),
    ("$'\\x41\\101'", {}, ["AA"]),
    ("a\\ b", {}, ["a b"]),
    ('"a\\$b\\"c\\d"', {}, ['a$b"c\\d']),
    ("'{\"a\": 1}'", {}, ['{"a": 1}']),
    ("$((N * 2 + 1))", {"N": "4"}, ["9"]),
    ("$(expr 16 / $N)", {"N": "4"}, ["4"]),
    ("--k=$A", {"A": "v"}, ["--k=v"]),
])
def test_expansion(raw, variables, fields):
    assert expand(raw, variables).fields == fields


@pytest.mark.parametrize("raw, unresolved", [
    ("$HOME/x", ["$HOME"]), ("$(date)", ["$(date)"]), ("`hostname`", ["`hostname`"]), ("${X/a/b}", ["${X/a/b}"]),
    ("$1", ["$1"]),
])
def test_what_the_script_does_not_set_is_kept_as_written(raw, unresolved):
    found = expand(raw, {})
    assert found.fields == [raw] and found.unresolved == unresolved


def test_arithmetic_truncates_as_bash():
    assert arithmetic("-7 / 2", {}) == -3 and arithmetic("7 % -3", {}) == 1 and arithmetic("1 / 0", {}) is None


COMPOUND = """#!/bin/bash
cat > ds_config.json <<EOT
{"zero_optimization": {"stage": 2}}
EOT
for lr in 1e-4 2e-4; do
  swift sft --model x --learning_rate $lr --deepspeed ds_config.json
done
if [ "$1" = "merge" ]; then
  swift export --adapters out --merge_lora true
fi
run() {
  swift infer --model "$1"
}
swift sft --model y > log.txt 2>&1 &
echo done  # trailing comment
"""


def test_commands_inside_loops_conditions_functions_and_after_a_heredoc():
    read = read_script(COMPOUND)
    assert [(c.number, c.command, c.line, [a.text for a in c.args]) for c in read.calls] == [
        (1, "sft", 6, ["--model", "x", "--learning_rate", "$lr", "--deepspeed", "ds_config.json"]),
        (2, "export", 9, ["--adapters", "out", "--merge_lora", "true"]),
        (3, "infer", 12, ["--model", "$1"]),
        (4, "sft", 14, ["--model", "y"]),
    ]
    assert [f.message for f in read.findings] == [
        "line 6: $lr is not set by the script: kept as written, '$lr'",
        "line 12: $1 is an argument the script is run with: kept as written, '$1'",
    ]


def test_a_prefix_sees_the_prefixes_before_it():
    [call] = read_script("A=1 B=$A swift sft --model x\n").calls
    assert call.env == {"A": "1", "B": "1"}  # as bash: `A=1 B=$A env` shows B=1


def test_double_bracket_conditions_are_read():
    read = read_script("if [[ -f x && $A == 1 ]]; then swift sft --model x; fi\n[[ -d y ]] || swift export --adapters y\n")
    assert [(c.command, c.line) for c in read.calls] == [("sft", 1), ("export", 2)]


def test_a_flag_line_after_another_command_is_not_blamed_on_swift():
    text = "swift sft --model x\necho done\n--foo 1\n"
    assert codes(text) == []


def test_braces_expand_as_bash_expands_them():
    [call] = read_script("swift sft --dataset 'ds-'{en,zh}'#500' data/{1..2}.jsonl --x '{a,b}'\n").calls
    assert [a.text for a in call.args] == ["--dataset", "ds-en#500", "ds-zh#500", "data/1.jsonl", "data/2.jsonl",
                                          "--x", "{a,b}"]


def test_a_file_pattern_and_a_tilde_are_said():
    assert [(f.level, f.code, f.message) for f in faults("swift sft --target_modules [q_proj,v_proj] "
                                                          "--output_dir ~/out --system '*'\n")] == [
        ("warning", "script.word.pattern", "line 1: [q_proj,v_proj] is a file pattern: bash replaces it with the "
         "files it matches where the script runs (itself when none does); kept as written"),
        ("info", "script.word.tilde", "line 1: bash writes your home directory for the ~ of ~/out; kept as "
         "written (lorakit expands it when it checks and renders local paths)"),
    ]


def test_a_script_argument_with_a_default_is_read_as_bash_runs_it_without_arguments():
    read = read_script('MODEL=${1:-Qwen/Qwen2.5-7B-Instruct}\nswift sft --model "$MODEL" --dataset ${2-d.jsonl}\n')
    assert [a.text for a in read.calls[0].args] == ["--model", "Qwen/Qwen2.5-7B-Instruct", "--dataset", "d.jsonl"]
    assert [(f.code, f.message) for f in read.findings] == [
        ("script.variable.argument_default", "line 1: ${1:-Qwen/Qwen2.5-7B-Instruct} is the script's argument 1: "
         "imported as 'Qwen/Qwen2.5-7B-Instruct', its value when the script is run without one"),
        ("script.variable.argument_default", "line 2: ${2-d.jsonl} is the script's argument 2: imported as "
         "'d.jsonl', its value when the script is run without one"),
    ]


def test_an_expansion_lorakit_does_not_evaluate_is_not_called_a_command():
    [found] = read_script("swift sft --model ${M/a/b}\n").findings
    assert (found.message, found.hint) == (
        "line 1: ${M/a/b} is a bash expansion lorakit does not evaluate: kept as written, '${M/a/b}'",
        "write its value in the preset")


@pytest.mark.parametrize("text, code, message", [
    ("python -m swift.cli.sft --model m\n", "script.swift_module",
     "line 1: python … swift.cli.sft runs ms-swift's sft without the `swift` launcher: lorakit import reads only "
     "`swift sft` commands, so this one is not imported"),
    ("NPROC_PER_NODE=2 torchrun --nproc_per_node 2 /opt/ms-swift/swift/cli/sft.py \\\n  --model m\n",
     "script.swift_module", "line 1: torchrun … swift/cli/sft.py runs ms-swift's sft without the `swift` launcher: "
     "lorakit import reads only `swift sft` commands, so this one is not imported"),
    ('bash -c "cd /work && /venv/bin/swift rlhf --rlhf_type dpo"\n', "script.swift_in_string",
     "line 1: swift rlhf inside bash -c '…' is not imported: it is a string that bash reads only when it runs it"),
    ("CUDA_VISIBLE_DEVICES=0,1 \\\nNPROC_PER_NODE=2 \\\npython3 -m swift.cli.rlhf --rlhf_type dpo --model m\n",
     "script.swift_module", "line 1: python3 … swift.cli.rlhf runs ms-swift's rlhf without the `swift` launcher: lorakit "
     "import reads only `swift rlhf` commands, so this one is not imported; NPROC_PER_NODE=2 does nothing there (only "
     "the `swift` launcher, swift/cli/main.py, turns it into torchrun), so it runs as one process"),
    ("export NPROC_PER_NODE=8\npython -m swift.cli.sft --model m\n", "script.swift_module",
     "line 2: python … swift.cli.sft runs ms-swift's sft without the `swift` launcher: lorakit import reads only "
     "`swift sft` commands, so this one is not imported; NPROC_PER_NODE=8 does nothing there (only the `swift` "
     "launcher, swift/cli/main.py, turns it into torchrun), so it runs as one process"),
    ("NPROC_PER_NODE=1 python -m swift.cli.sft --model m\n", "script.swift_module",
     "line 1: python … swift.cli.sft runs ms-swift's sft without the `swift` launcher: lorakit import reads only "
     "`swift sft` commands, so this one is not imported"),
], ids=["python-m", "torchrun-file", "bash-c", "python-m-nproc-4275", "python-m-exported-nproc", "python-m-nproc-1"])
def test_a_swift_command_lorakit_does_not_read_is_said(text, code, message):
    read = read_script(text)
    assert read.calls == []
    assert [(f.code, f.message) for f in read.findings] == [(code, message)]


def test_only_the_swift_launcher_reads_nproc_per_node(tmp_path):
    from conftest import swift_source

    main = "\n".join(swift_source("cli/main.py"))
    assert "    nproc_per_node = os.getenv('NPROC_PER_NODE')" in main
    assert "NPROC_PER_NODE" not in "\n".join(swift_source("cli/sft.py") + swift_source("cli/rlhf.py"))


def test_export_n_takes_a_variable_out_of_the_environment():
    [call] = read_script("export CUDA_VISIBLE_DEVICES=0,1 MAX_PIXELS=1003520\nexport -n CUDA_VISIBLE_DEVICES\n"
                         "swift sft --model m\n").calls
    assert call.env == {"MAX_PIXELS": "1003520"}  # bash: `export -n X; env` has no X
    assert call.unexported == {"CUDA_VISIBLE_DEVICES": 2}


def test_a_backslash_inside_an_end_of_line_comment_is_not_called_missing():
    found = [f for f in faults("swift sft \\\n  --model m  # the model \\\n  --dataset d\n") if f.level == "error"]
    assert [(f.code, f.message, f.hint) for f in found] == [(
        "script.continuation.commented_backslash",
        "line 2: the `\\` at the end of this line is inside the comment (`#` runs to the end of the line), so the "
        "command ends here: bash runs swift sft (line 1) without the flags from line 3 on (--dataset), then tries "
        "to run `--dataset` as a command. lorakit imports what bash runs, without them",
        "move the comment above the command (a comment cannot sit inside a continuation) at line 2, then import again")]


@pytest.mark.parametrize("forward", ['"$@"', "$@", "$*", '"${@}"'])
def test_the_scripts_arguments_forwarded_are_none_when_it_runs_without_any(forward):
    read = read_script(f"swift sft --model m --dataset d.jsonl {forward}\n")
    assert [a.text for a in read.calls[0].args] == ["--model", "m", "--dataset", "d.jsonl"]  # as `bash s.sh`
    assert [(f.code, f.message) for f in read.findings] == [(
        "script.variable.arguments", f"line 1: {forward} passes on the arguments the script is run with: none when "
        "it is run without any, as the import reads it")]


def test_arithmetic_past_pythons_parser_is_kept_as_written_not_a_traceback():
    deep = "$((" + "1+" * 50_000 + "1))"
    [found] = read_script(f"swift sft --model m --lora_rank {deep}\n").findings
    assert (found.code, found.message, found.hint) == (
        "script.variable.unresolved",
        f"line 1: {deep[:77]}... is arithmetic lorakit does not evaluate (it reads + - * / % over integers and "
        f"the script's variables): kept as written, '{deep[:77]}...'", "write its value in the preset")
    assert arithmetic("(" * 3000 + "1" + ")" * 3000, {}) is None


def test_command_substitution_nested_past_bashlex_is_an_error_with_its_line():
    with pytest.raises(LorakitError) as caught:
        read_script("swift sft --model m\nX=" + "$(" * 3000 + "x" + ")" * 3000 + "\n", "s.sh")
    assert caught.value.message.startswith("s.sh:2: ") and "(nested too deeply)" in caught.value.message


def test_a_pasted_em_dash_is_not_a_flag_and_is_said():
    read = read_script("swift sft --model m --dataset d.jsonl \\\n  —lora_rank 8 \\\n  –max_length=2048\n")
    assert [a.text for a in read.calls[0].args][-3:] == ["—lora_rank", "8", "–max_length=2048"]  # as bash passes it
    assert [(f.code, f.message, f.hint) for f in read.findings] == [
        ("script.flag.dash", "line 2: —lora_rank starts with '—' (U+2014, pasted typography), not '--': argparse "
         "reads it as a value, not a flag", "write --lora_rank"),
        ("script.flag.dash", "line 3: –max_length=2048 starts with '–' (U+2013, pasted typography), not '--': "
         "argparse reads it as a value, not a flag", "write --max_length=2048"),
    ]


def test_windows_line_endings_without_a_continuation_are_said():
    read = read_script("export CUDA_VISIBLE_DEVICES=0\r\nswift sft --model m --output_dir out\r\n", "s.sh")
    assert read.calls[0].env == {"CUDA_VISIBLE_DEVICES": "0\r"}  # what bash exports
    assert [a.text for a in read.calls[0].args][-1] == "out\r"
    assert [(f.code, f.message) for f in read.findings] == [(
        "script.crlf", "line 1: the script has Windows line endings: bash keeps the carriage return as the last "
        "character of each line, so the last value on each line ends in '\\r' (and so does the import)")]


@pytest.mark.parametrize("runner", ["timeout 12h", "nice -n 10", "stdbuf -oL -eL", "numactl --interleave=all"])
def test_a_runner_in_front_of_swift_runs_swift_in_the_same_environment(runner):
    [call] = read_script(f"CUDA_VISIBLE_DEVICES=0 {runner} swift sft --model m\n").calls
    assert (call.command, [a.text for a in call.args], call.env) == ("sft", ["--model", "m"],
                                                                    {"CUDA_VISIBLE_DEVICES": "0"})


def test_set_a_exports_the_assignments_after_it():
    [call] = read_script("set -ea\nCUDA_VISIBLE_DEVICES=0,1\nNPROC_PER_NODE=2\nset +a\nMODEL=m\n"
                         "swift sft --model $MODEL\n").calls
    assert call.env == {"CUDA_VISIBLE_DEVICES": "0,1", "NPROC_PER_NODE": "2"}  # as bash: MODEL is not exported
    assert codes("set -o allexport\nCUDA_VISIBLE_DEVICES=0\nswift sft --model m\n") == []


@pytest.mark.parametrize("text, line, alias", [
    ("CUDA_VISIBLE_DEVICES=0 swift grpo --model m --reward_funcs accuracy\n", 1, "swift rlhf --rlhf_type grpo"),
    ("\nswift dpo --model m\n", 2, "swift rlhf --rlhf_type dpo"),
    ("swift train --model m\n", 1, "swift sft"),
])
def test_a_subcommand_ms_swift_does_not_have_is_said(text, line, alias):
    """ms-swift #5160: `swift grpo`. The launcher routes only its own names (cli/main.py
    ROUTE_MAPPING) and stops with a KeyError on any other."""
    read = read_script(text)
    assert read.calls == []
    command = text.split("swift ")[1].split()[0]
    assert [(f.code, f.message, f.hint) for f in read.findings] == [(
        "script.swift_command", f"line {line}: `swift {command}` is not an ms-swift command (its launcher stops with "
        f"KeyError: {command!r}), so it is not imported", f"write it as `{alias} …` (the other flags as they are) "
        "and import again")]


def test_the_launcher_routes_none_of_the_aliases():
    from conftest import swift_source
    from lorakit.scriptfaults import ALIASES

    main = "\n".join(swift_source("cli/main.py"))
    assert "    file_path = importlib.util.find_spec(route_mapping[method_name]).origin" in main
    routed = set(re.findall(r"^    '([a-z-]+)': 'swift\.cli\.", main, re.M))
    assert {"sft", "rlhf", "export", "merge-lora"} <= routed
    assert not routed & set(ALIASES), routed & set(ALIASES)


def test_merge_lora_is_an_ms_swift_command_and_not_said():
    """`swift merge_lora`: the launcher reads '_' as '-', and merge-lora is routed."""
    assert [f.code for f in read_script("swift merge_lora --adapters a\n").findings] == []
