"""One swift command read from a script (shellscript.SwiftCall) -> a preset mapping.

Flags are read the way the target ms-swift's parser reads them, from the flag snapshot
(swiftflags.FlagSpec): the values after a flag up to the next option are its values, a list
for an nargs flag, an int/float/bool where argparse converts to one, a mapping where ms-swift
json-loads the text (swift/utils/utils.py json_parse_to_dict), and text otherwise; a value that
does not convert is kept as written for the checks to report. Names are spelled out in full
(abbreviations, --no_ switches), and ms-swift 2.x/3.x names are mapped to the target's, each
said. What bash gives swift's environment becomes `launch:` (the launch variables) and `env:`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from lorakit import envvars, swiftflags
from lorakit.findings import ERROR, INFO, WARNING, Finding
from lorakit.names import OLD_NAMES, normalise_arg_key, spelled_for
from lorakit.presets import COMMANDS
from lorakit.render import render_value
from lorakit.scriptfaults import ENV_WORD
from lorakit.shellscript import SwiftCall
from lorakit.values import FALSE_WORDS, TRUE_WORDS, as_int

IMPORTABLE = COMMANDS  # what a lorakit preset runs (`swift pt` is not one)
TEXT_LAUNCH = ("gpus", "master_addr")  # ids and hosts stay text: "010" is not 8


@dataclass
class Imported:
    preset: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    call: SwiftCall | None = None


def import_call(call: SwiftCall, *, major: int, name: str, extends: tuple[str, Any] | None = None) -> Imported:
    """`extends`: (the built-in's name, its presets.Resolved); only the differences are written."""
    flags = swiftflags.load_flags(major, call.command)
    args, notes = read_flags(call, flags, major, name)
    launch, env, more = launch_and_env(call, name)
    preset: dict[str, Any] = {"description": f"imported from {name} (swift {call.command}, line {call.line})"}
    if extends is not None:
        preset["extends"] = extends[0]
        kept = [k for k in (extends[1].data.get("env") or {}) if k not in env]
        notes += [Finding(WARNING, "import.env.inherited", f"env.{k} comes from {extends[0]}; the script does not "
                          "set it, and a preset cannot remove it", key=f"env.{k}", file=name) for k in kept]
        command, launch, env, args = differences(extends[1].data, call.command, launch, env, args)
        if command is not None:
            preset["command"] = command
    else:
        preset["command"] = call.command
    # lorakit's internal names are 4.x's; a preset for 3.x is written in 3.x's own names
    args = {spelled_for(key, major, call.command): value for key, value in args.items()}
    for section, block in (("launch", launch), ("env", env), ("args", args)):
        if block:
            preset[section] = block
    return Imported(preset, notes + more, call)


def read_flags(call: SwiftCall, flags, major: int, name: str) -> tuple[dict[str, Any], list[Finding]]:
    out: dict[str, Any] = {}
    notes: list[Finding] = []
    groups, stray = _groups(call, flags)
    config = _config_file(call, groups, stray)
    if config is not None:
        arg, how = config
        notes.append(Finding(ERROR, "script.config_file",
                             f"line {arg.line}: swift {call.command} reads more flags from {arg.text} ({how}): "
                             "lorakit import does not read that file, so none of its flags are in the preset",
                             file=name, hint=f"write the keys of {arg.text} under args: in the preset (they are "
                             "ms-swift's flag names), or give them as flags in the script and import again"))
        stray = [a for a in stray if a is not arg]
        groups = [g for g in groups if not (g[0] == "--config" and g[1] == [arg.text])]
    asked = [a for a in stray if a.text == "-h"] + [a for a in call.args if a.text == "--help"]
    if asked:  # argparse's own -h/--help: ms-swift prints its flags and exits 0
        notes.append(Finding(ERROR, "script.help", f"line {asked[0].line}: swift {call.command} {asked[0].text} "
                             "prints ms-swift's help and exits: this command runs nothing", file=name,
                             hint=f"delete {asked[0].text}"))
        stray = [a for a in stray if a.text != "-h"]
        groups = [g for g in groups if g[0] != "--help"]
    for arg in stray:
        notes.append(Finding(ERROR, "script.positional",
                             f"line {arg.line}: {arg.text!r} is not a flag or a flag's value: ms-swift refuses "
                             "it (remaining_argv), and a preset cannot hold it", file=name,
                             hint="delete it (a config file is not imported: give its keys as flags)"))
    for option, values, line in groups:
        key, spec, said = _flag_name(option, flags, major, call.command, line, name)
        notes += said
        # `--system -x`: argparse stops at -x ("expected one argument"); lorakit attaches a flag's
        # one value (a list's later item is refused by the flag checks, said once there)
        if swiftflags.attaches(values) and swiftflags.reads_as_option(values[0], flags):
            notes.append(Finding(WARNING, "import.value.dash",
                                 f"line {line}: {option} {values[0]}: ms-swift's argparse reads {values[0]!r} as an "
                                 f"option, so the script fails as written; lorakit renders it {option}={values[0]}",
                                 key=f"args.{key}", file=name))
        if spec is None:
            out.pop(key, None)
            out[key] = True if not values else values[0] if len(values) == 1 else values
            continue
        value, problem = _typed(spec, values, negated=swiftflags.resolve(flags, option)[1] == "negation")
        if problem:
            notes.append(Finding(ERROR, problem[0], f"line {line}: {option} {problem[1]}", key=f"args.{key}",
                                 file=name, hint=problem[2]))
            if value is None:
                continue
        out.pop(key, None)  # argparse keeps the last (scriptfaults says "given twice")
        out[key] = value
    return out, notes


def _groups(call: SwiftCall, flags):
    """[(option, [values], line)] and the items before any option, as argparse splits the argv:
    an item it would read as an option starts a group (a negative number is a value)."""
    groups: list[tuple[str, list[str], int]] = []
    stray = []
    for arg in call.args:
        if swiftflags.reads_as_option(arg.text, flags) and arg.text.startswith("--") and len(arg.text) > 2:
            option, eq, value = arg.text.partition("=")
            if option == "--":  # `--=x` names no flag: argparse leaves it in remaining_argv
                stray.append(arg)
                continue
            groups.append((option, [value] if eq else [], arg.line, bool(eq)))
        elif arg.text == "-h":  # argparse's help option, never a value (read_flags says so)
            stray.append(arg)
        elif groups and not groups[-1][3]:
            groups[-1][1].append(arg.text)
        elif groups:  # after --flag=value argparse takes no more values for it
            stray.append(arg)
        else:
            stray.append(arg)
    return [(o, v, ln) for o, v, ln, _ in groups], stray


def _config_file(call: SwiftCall, groups, stray):
    """(the Arg naming a config file, how ms-swift reads it) or None: ms-swift 4.x reads a first
    argument ending in .yaml/.yml/.json as flags (swift/cli/main.py parse_yaml_args), 3.x reads
    `--config FILE` (swift/cli/main.py prepare_config_args)."""
    if call.args and call.args[0] in stray and call.args[0].text.endswith((".yaml", ".yml", ".json")):
        return call.args[0], "ms-swift 4.x: a first argument that is a .yaml/.json file"
    for option, values, _ in groups:
        if option == "--config" and len(values) == 1:
            arg = next(a for a in call.args if a.text == values[0])
            return arg, "ms-swift 3.x: --config"
    return None


def _flag_name(option: str, flags, major: int, command: str, line: int, name: str):
    """(preset key, its FlagSpec or None when unknown, findings that say how it was read)."""
    found, how = swiftflags.resolve(flags, option)
    bare = option[2:].replace("-", "_")
    if found is not None:
        said = []
        if how == "prefix":
            said.append(Finding(WARNING, "import.flag.abbreviation",
                                f"line {line}: {option} is argparse's abbreviation of --{found}: written in full",
                                key=f"args.{normalise_arg_key(found)}", file=name))
        if how == "negation":
            said.append(Finding(INFO, "import.flag.negation",
                                f"line {line}: {option} is the negative switch of --{found}: imported as "
                                f"{normalise_arg_key(found)}: false", key=f"args.{normalise_arg_key(found)}", file=name))
        return normalise_arg_key(found), flags[found], said
    renamed = swiftflags.RENAMED.get(bare, {}).get(major)
    old = OLD_NAMES.get(bare)
    target = renamed or (spelled_for(old, major, command) if old else None)
    if target and target in flags:
        level, era = (INFO, f"ms-swift {7 - major}.x's name") if renamed else (WARNING, "an ms-swift 2.x name")
        check = "" if renamed else "; check its value: 2.x values can differ (dtype bf16 is torch_dtype bfloat16)"
        return normalise_arg_key(target), flags[target], [Finding(
            level, "import.flag.renamed",
            f"line {line}: {option} is {era}: imported as {target}, ms-swift {major}.x's name{check}",
            key=f"args.{target}", file=name)]
    return normalise_arg_key(bare), None, []  # the flag checks report it, with a did-you-mean


def _typed(spec: swiftflags.FlagSpec, values: list[str], *, negated: bool):
    """(the value, or None to drop the flag; None or (code, problem, hint))."""
    if negated:  # --no_x stores False and takes nothing
        if values:
            return False, ("script.flag.extra_values", f"takes no value: {values!r} is left over (ms-swift: remaining_argv)",
                           "delete the value")
        return False, None
    if spec.nargs in ("+", "*"):
        if not values and spec.nargs == "+":
            return None, ("script.flag.no_value", "has no value (argparse: expected at least one argument)",
                          "give it a value, or delete it")
        return [_one(spec, v) for v in values], None
    if not values:
        if spec.nargs == "?" and spec.type == "bool":
            return True, None  # a bare switch, as HfArgumentParser's const=True
        return None, ("script.flag.no_value", "has no value (argparse: expected one argument)",
                      "give it a value, or delete it")
    problem = None
    if len(values) > 1 and not all(ENV_WORD.match(v) for v in values[1:]):  # those: script.env_after_command
        problem = ("script.flag.extra_values", f"takes one value; {values[1:]!r} after {values[0]!r} is left over "
                   "(ms-swift: remaining_argv); imported with the first", "quote a value that holds spaces")
    return _one(spec, values[0]), problem


def _one(spec: swiftflags.FlagSpec, token: str) -> Any:
    if spec.type in ("int", "float"):
        if spec.type == "float" and re.fullmatch(r"[-+]?\d+", token.strip()):
            return int(token)  # `--lora_alpha 32` reads as 32 in the preset; float("32") == 32 all the same
        try:
            number = int(token) if spec.type == "int" else float(token)
        except ValueError:
            return token
        return token if number != number else number  # nan stays text: the checks refuse it
    if spec.type == "bool":
        word = token.lower()
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else token
    if spec.type == "json" and token.lstrip()[:1] == "{":
        try:
            loaded = json.loads(token)
        except (ValueError, RecursionError):
            return token
        return loaded if isinstance(loaded, dict) else token
    return token


def launch_and_env(call: SwiftCall, name: str) -> tuple[dict, dict, list[Finding]]:
    launch: dict[str, Any] = {}
    env: dict[str, str] = {}
    notes: list[Finding] = []
    for var, value in call.env.items():
        line = call.lines.get(var, call.line)
        if var in envvars.DEVICE_LISTS:
            launch["gpus"] = value
            if var != "CUDA_VISIBLE_DEVICES":
                notes.append(Finding(INFO, "import.launch.device_list",
                                     f"line {line}: {var} is imported as launch.gpus: lorakit sets the device list "
                                     "this machine uses from it", key="launch.gpus", file=name))
        elif var in envvars.FIELD:
            key = envvars.FIELD[var]
            launch[key] = value if key in TEXT_LAUNCH or as_int(value) is None else as_int(value)
        elif envvars.is_scrubbed(var):
            notes.append(Finding(WARNING, "import.env.launcher_owned",
                                 f"line {line}: {var} is set by torchrun for its workers: not imported "
                                 "(left in the environment it makes ms-swift think it already runs inside torchrun)",
                                 file=name))
        else:
            env[var] = value
    return launch, env, notes


def differences(base: dict[str, Any], command: str, launch: dict, env: dict, args: dict):
    """What the imported command changes over a built-in: (command or None, launch, env, args);
    null removes what the built-in sets and the script does not."""
    base_launch, base_env, base_args = (dict(base.get(s) or {}) for s in ("launch", "env", "args"))
    gpus = launch.get("gpus", base_launch.get("gpus"))
    count = len(str(gpus).split(",")) if gpus is not None else None
    out_launch = {}
    for key in dict.fromkeys([*base_launch, *launch]):
        if not _same_launch(key, base_launch.get(key), launch.get(key), count):
            out_launch[key] = launch.get(key)
    # an env: variable cannot be removed by a child (null is refused: presets.env_problems), so one
    # the parent sets and the script does not stays, and import_call says so
    out_env = {k: v for k, v in env.items() if k not in base_env or str(base_env[k]) != str(v)}
    out_args = {k: v for k, v in args.items() if k not in base_args or _rendered(base_args[k]) != _rendered(v)}
    out_args.update({k: None for k, v in base_args.items() if v is not None and k not in args})
    return (None if base.get("command") == command else command), out_launch, out_env, out_args


def _rendered(value: Any) -> list[str] | None:
    return None if value is None else render_value(value)


def _same_launch(key: str, base: Any, mine: Any, count: int | None) -> bool:
    if key == "nproc_per_node":
        from lorakit.job import nproc_from_rule

        return nproc_from_rule(base, count) == nproc_from_rule(mine, count)
    if key == "gpus":
        def norm(v):
            return None if v is None else ",".join(p.strip() for p in str(v).split(","))
        return norm(base) == norm(mine)
    return (base is None and mine is None) or (base is not None and mine is not None and str(base) == str(mine))


def to_yaml(imported: Imported, script: str) -> str:
    import yaml

    # a comment runs to the newline: a script named 'a\nx: 1.sh' would write YAML of its own there
    shown = script if script.isprintable() else ascii(script)
    head = (f"# lorakit import {shown}: swift {imported.call.command} at line {imported.call.line}\n"
            if imported.call is not None else "")
    return head + yaml.safe_dump(imported.preset, sort_keys=False, allow_unicode=True,
                                 default_flow_style=False, width=10_000)
