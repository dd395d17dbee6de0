"""Parse an argv with ms-swift's own parser and report what it leaves over.

Run under a Python that has ms-swift installed (3.x or 4.x):

    python scripts/swift_parse_check.py sft -- --model x --lora_rank 8 --lora_rnak 8
    {"argv": [...], "remaining": ["--lora_rnak", "8"], "swift_version": "4.6.0", "values": {"lora_rank": 8, ...}}
    echo '[["--lora_rank", "8"], ["--lazy", "true"]]' | python scripts/swift_parse_check.py sft --batch
    [{"exit": 0, "remaining": [], ...}, {"error": "ambiguous option: ...", "exit": 2, ...}]

--batch reads a JSON list of argv lists on stdin and answers them all from one import of
ms-swift (seconds each otherwise); it exits 0 unless its input is malformed.

First the launcher's own rewriting of the argv, as swift/cli/main.py: cli_main does before it
starts the training script: a config file becomes flags (4.x: parse_yaml_args, for an argv that
starts with FILE.yaml; 3.x: prepare_config_args, for `--config FILE` anywhere, its values
appended after the rest). The answer's "argv" is the argv after that, and "values" what the
parser made of each flag it names.

Then the parse step of `swift sft` / `swift export`: the parser from swift/utils/utils.py
parse_args (HfArgumentParser inside `_patch_get_type_hints()`) and its parse_known_args. The
dataclass is never built, because __post_init__ creates output dirs and contacts model hubs.
ms-swift raises `ValueError: remaining_argv` for leftovers; here they are reported and the exit
code is 0, so the caller decides. Exit 2 means argparse itself refused the argv (a bad int, a bad
choice, an ambiguous abbreviation); its message goes to stderr and into the JSON as "error".
Not modelled: the RAY_SWIFT_ARGS environment variable, which makes ms-swift ignore argv.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

from gen_swift_flags import ARGUMENTS, args_class, build_parser, swift_version

USAGE = f"usage: swift_parse_check.py {{{','.join(ARGUMENTS[4])}}} (-- ARGV... | --batch)"


class ParseRefused(Exception):
    pass


def _refuse(message: str) -> None:
    # Replaces parser.error (print usage, exit 2) so the message can be reported cleanly.
    raise ParseRefused(message)


def launcher_argv(argv: list[str]) -> list[str]:
    """The argv after the launcher's config handling (swift/cli/main.py), a new list."""
    import swift.cli.main as launcher

    argv = list(argv)
    if hasattr(launcher, "prepare_config_args"):  # 3.x
        launcher.prepare_config_args(argv)
    else:  # 4.x (it also applies a file's ENV: to os.environ, which changes nothing here)
        launcher.parse_yaml_args(argv)
    return argv


def _values(parser, namespace, argv: list[str]) -> dict:
    named = set(argv) | {token.partition("=")[0] for token in argv if token.startswith("--")}  # --flag=value
    return {action.dest: getattr(namespace, action.dest, None) for action in parser._actions
            if named.intersection(action.option_strings)}


def check(command: str, argv: list[str]) -> tuple[int, dict]:
    parser = build_parser(args_class(command))
    parser.error = _refuse  # type: ignore[method-assign]
    result: dict = {"swift_version": swift_version()}
    argv = launcher_argv(argv)
    result["argv"] = argv
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # --help would print the whole usage
            namespace, remaining = parser.parse_known_args(argv)
    except ParseRefused as err:
        result["error"] = str(err)
        return 2, result
    except SystemExit as exc:  # only -h/--help (or an abbreviation of it) exits by itself
        result.update(remaining=[], help_requested=True)
        return int(exc.code or 0), result
    result["remaining"] = remaining
    result["values"] = _values(parser, namespace, argv)
    return 0, result


def main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help") or args[0] not in ARGUMENTS[4]:
        print(__doc__ + "\n" + USAGE, file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    command, argv = args[0], args[1:]
    if argv == ["--batch"]:
        return _batch(command, sys.stdin.read())
    if argv[:1] == ["--"]:
        argv = argv[1:]
    code, result = check(command, argv)
    if "error" in result:
        print(f"swift {command}: error: {result['error']}", file=sys.stderr)
    print(json.dumps(result, sort_keys=True, default=str))
    return code


def _batch(command: str, text: str) -> int:
    argvs = json.loads(text)
    if not isinstance(argvs, list) or not all(isinstance(a, list) for a in argvs):
        print("--batch expects a JSON list of argv lists on stdin", file=sys.stderr)
        return 2
    results = []
    for argv in argvs:
        code, result = check(command, [str(item) for item in argv])
        results.append(dict(result, exit=code))
    print(json.dumps(results, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
