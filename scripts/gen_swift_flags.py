"""Snapshot ms-swift's own command-line parser into src/lorakit/data/swift_flags_v<MAJOR>.json.

Run this under a Python that has ms-swift installed (3.x or 4.x):

    python scripts/gen_swift_flags.py            # writes the file for the installed major
    python scripts/gen_swift_flags.py --stdout   # prints it instead

lorakit validates presets against these files so that `lorakit validate` never imports ms-swift
or torch. The parser is built exactly as ms-swift builds it (swift/utils/utils.py: parse_args):
HfArgumentParser([<the pipeline's args_class>]) inside `_patch_get_type_hints()`.
`scripts/swift_parse_check.py` reuses `build_parser` so both scripts agree on "exactly".
"""

from __future__ import annotations

import argparse
import enum
import importlib
import json
import math
import sys
import typing
from pathlib import Path

GENERATED_BY = "scripts/gen_swift_flags.py"
REPO = Path(__file__).resolve().parent.parent

# The argument class each `swift <command>` parses into. 3.x keeps everything under swift.llm;
# 4.0 moved the classes to swift.arguments and renamed TrainArguments to SftArguments.
COMMANDS = ("sft", "export", "rlhf", "infer", "deploy", "eval", "rollout")
ARGUMENTS = {
    3: {"sft": "swift.llm.argument:TrainArguments", "export": "swift.llm.argument:ExportArguments",
        "rlhf": "swift.llm.argument:RLHFArguments", "infer": "swift.llm.argument:InferArguments",
        "deploy": "swift.llm.argument:DeployArguments", "eval": "swift.llm.argument:EvalArguments",
        "rollout": "swift.llm.argument:RolloutArguments"},
    4: {"sft": "swift.arguments:SftArguments", "export": "swift.arguments:ExportArguments",
        "rlhf": "swift.arguments:RLHFArguments", "infer": "swift.arguments:InferArguments",
        "deploy": "swift.arguments:DeployArguments", "eval": "swift.arguments:EvalArguments",
        "rollout": "swift.arguments:RolloutArguments"},
}
# The pipelines each `swift <command>` runs (swift/cli/<command>.py). Importing them is slower, so
# only the generator does, to prove ARGUMENTS still names each pipeline's args_class. eval's and
# rollout's import evalscope / msgspec, which a training venv may lack: then the pipeline's
# source is read instead (`args_class = X` in its class body), which proves the same.
PIPELINES = {
    3: {"sft": "swift.llm.train.sft:SwiftSft", "export": "swift.llm.export.export:SwiftExport",
        "rlhf": "swift.llm.train.rlhf:SwiftRLHF", "infer": "swift.llm.infer.infer:SwiftInfer",
        "deploy": "swift.llm.infer.deploy:SwiftDeploy", "eval": "swift.llm.eval.eval:SwiftEval",
        "rollout": "swift.llm.infer.rollout:SwiftRolloutDeploy"},
    4: {"sft": "swift.pipelines.train.sft:SwiftSft", "export": "swift.pipelines.export.export:SwiftExport",
        "rlhf": "swift.pipelines.train.rlhf:SwiftRLHF", "infer": "swift.pipelines.infer.infer:SwiftInfer",
        "deploy": "swift.pipelines.infer.deploy:SwiftDeploy", "eval": "swift.pipelines.eval.eval:SwiftEval",
        "rollout": "swift.pipelines.infer.rollout:SwiftRolloutDeploy"},
}
UTILS_MODULE = "swift.utils.utils"  # home of parse_args and _patch_get_type_hints in 3.x and 4.x


def swift_version() -> str:
    from swift.version import __version__

    return __version__


def swift_major() -> int:
    return int(swift_version().split(".")[0])


def _load(ref: str) -> object:
    module_name, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _pipeline_args_class(ref: str) -> str:
    """The name the pipeline class assigns to `args_class`: imported, or read from its source
    when importing it needs a package this venv lacks (evalscope for eval, msgspec for rollout)."""
    try:
        return _load(ref).args_class.__name__
    except ModuleNotFoundError:
        pass
    import ast
    import importlib.util

    module_name, _, attr = ref.partition(":")
    root = Path(importlib.util.find_spec("swift").origin).parent
    path = root.joinpath(*module_name.split(".")[1:]).with_suffix(".py")
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef) and node.name == attr:
            for item in node.body:
                if isinstance(item, ast.Assign) and any(getattr(t, "id", "") == "args_class" for t in item.targets):
                    return ast.unparse(item.value)
    raise SystemExit(f"{path}: no {attr}.args_class")


def args_class(command: str, check_pipeline: bool = False) -> type:
    major = swift_major()
    if major not in ARGUMENTS:
        raise SystemExit(f"ms-swift {swift_version()} is not a major this script knows: {sorted(ARGUMENTS)}")
    cls = _load(ARGUMENTS[major][command])
    if check_pipeline:
        used = _pipeline_args_class(PIPELINES[major][command])
        if used != cls.__name__:
            raise SystemExit(f"swift {command} parses into {used}; update ARGUMENTS")
    return cls


def build_parser(cls: type) -> argparse.ArgumentParser:
    """The parser `swift <command>` builds: swift/utils/utils.py parse_args, line for line."""
    from transformers import HfArgumentParser

    patch = importlib.import_module(UTILS_MODULE)._patch_get_type_hints
    with patch():
        return HfArgumentParser([cls])


def _type_name(action: argparse.Action, hint: object) -> str:
    """Map argparse's `type` callable onto lorakit's small vocabulary."""
    from transformers.hf_argparser import string_to_bool

    kind = action.type
    if kind is string_to_bool:
        return "bool"
    if kind is int or kind is float:
        return kind.__name__
    if kind is str and _is_dict_or_str(hint):
        # Union[dict, str] fields reach argparse as plain str; ms-swift json-loads them in
        # __post_init__ (swift/utils/utils.py: json_parse_to_dict), so the value is JSON text.
        return "json"
    if kind is str or kind is Path or action.choices is not None or _is_enum(kind):
        # Path(text) and the Literal/Enum converters accept any string; choices do the checking.
        return "str"
    # e.g. dict[str, bool] (liger_kernel_config) or ParallelismConfig: argparse calls dict(text),
    # which fails for every non-empty value, so the flag cannot be given on the command line.
    return "unsupported"


def _is_dict_or_str(hint: object) -> bool:
    args = typing.get_args(hint)
    return str in args and any(a is dict or typing.get_origin(a) is dict for a in args)


def _is_enum(kind: object) -> bool:
    return isinstance(kind, type) and issubclass(kind, enum.Enum)


def _choices(action: argparse.Action) -> list[str] | None:
    choices = action.choices
    if choices is None and _is_enum(action.type):
        # HfArgumentParser leaves choices unset for list[Enum] fields (e.g. `debug`), but the
        # Enum constructor rejects anything else, which is the same as choices.
        choices = [member.value for member in action.type]
    if choices is None:
        return None
    # As text, the way argparse compares them: HfArgumentParser's type for a Literal maps each
    # choice's str() back to it (transformers hf_argparser.make_choice_type_function), so for
    # Literal['float16', ..., None] the text 'None' parses to None (the default) and is kept.
    return [str(c.value if isinstance(c, enum.Enum) else c) for c in choices]


def _jsonable(value: object) -> object:
    """Defaults as plain JSON; anything exotic becomes its str() (never a repr with an address)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def describe(cls: type) -> dict:
    """One command's flags, keyed by dest, plus the option strings argparse owns itself."""
    hints = typing.get_type_hints(cls)
    parser = build_parser(cls)
    flags: dict[str, dict] = {}
    negations: dict[str, list[str]] = {}
    extra: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._StoreFalseAction):
            # HfArgumentParser adds --no_<name> for bool fields whose default is True.
            negations.setdefault(action.dest, []).extend(action.option_strings)
        elif isinstance(action, argparse._StoreAction):
            if action.required:
                # No 3.x/4.x field lacks a default; the schema has no "required" until one does.
                raise SystemExit(f"{cls.__name__}.{action.dest} is required: extend the snapshot schema")
            flags[action.dest] = {
                "type": _type_name(action, hints.get(action.dest)),
                "nargs": action.nargs,
                "choices": _choices(action),
                "default": _jsonable(action.default),
                "options": sorted(action.option_strings),
            }
        else:  # -h/--help: not a setting, but its option strings still take part in prefix matching
            extra.extend(action.option_strings)
    for dest, spec in flags.items():
        spec["negative_options"] = sorted(negations.pop(dest, []))
    if negations:
        raise SystemExit(f"--no_ options without a flag: {sorted(negations)}")
    return {"arguments_class": cls.__name__, "other_options": sorted(extra), "flags": flags}


def snapshot() -> dict:
    import transformers

    commands = {command: describe(args_class(command, check_pipeline=True)) for command in COMMANDS}
    return {
        "swift_version": swift_version(),
        # Half of the flags (TrainingArguments) and all their types come from transformers.
        "transformers_version": transformers.__version__,
        "generated_by": GENERATED_BY,
        "commands": commands,
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--stdout", action="store_true", help="print the snapshot instead of writing it")
    args = cli.parse_args(argv)
    text = render(snapshot())
    if args.stdout:
        sys.stdout.write(text)
        return 0
    out = REPO / "src" / "lorakit" / "data" / f"swift_flags_v{swift_major()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out.relative_to(REPO)} (ms-swift {swift_version()})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
