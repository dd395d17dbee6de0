"""Options in the wrong place, found in the raw argv before Typer sees it.

train, validate, plan and export pass unknown options on to ms-swift, so a typo of a lorakit option
(`--dryrun`, `--lora-rnak`) used to come back as "unknown ms-swift flag --dryrun from -- extra
flags", and `--dry-run` written after `--` went to ms-swift, which has no such flag. Before `--`,
an option must be lorakit's or an ms-swift flag; after it, a lorakit option gets a hint.
"""

from __future__ import annotations

from typing import Any

from lorakit.errors import LorakitError
from lorakit.values import did_you_mean

PASS_THROUGH = ("train", "validate", "plan", "export")
KEYS = {"gpus": "launch.gpus", "nproc": "launch.nproc_per_node"}  # options whose setting is a launch one


def _known(command: Any) -> list[str]:
    # --help is click's own option, not one of the command's params in every click version
    # (8.5's lazy help option is not), and must always pass
    return ["--help", *(opt for param in command.params for opt in (*param.opts, *param.secondary_opts)
                        if opt.startswith("--") and opt != "--help")]


def _swift_flag(token: str) -> bool:
    from lorakit import swiftflags
    from lorakit.names import normalise_arg_key

    name = normalise_arg_key(token.partition("=")[0])
    for major in swiftflags.available_majors():
        for command in ("sft", "export"):
            try:
                flags = swiftflags.load_flags(major, command)
            except ValueError:
                continue
            found, how = swiftflags.resolve(flags, name)
            if found is not None and how != "ambiguous":
                return True
    return False


def check(group: Any, argv: list[str]) -> None:
    """`group`: the Typer app's click group (typer ships its own click: importing the separate
    package would cost the dry-run ~6 ms)."""
    if not argv or argv[0] not in PASS_THROUGH:
        return
    command = group.commands.get(argv[0])
    if command is None:
        return
    known = _known(command)
    takes_value = {opt for param in command.params if not getattr(param, "is_flag", False)
                   and getattr(param, "param_type_name", "") == "option" for opt in param.opts}
    cut = argv.index("--") if "--" in argv else len(argv)
    skip = False
    for token in argv[1:cut]:
        if skip:  # the value of the option before it, whatever it looks like (--set ---x=1)
            skip = False
            continue
        option = token.partition("=")[0]
        skip = token in takes_value
        if not option.startswith("--") or option == "--" or option in known or _swift_flag(option):
            continue
        close = did_you_mean(option, known)
        raise LorakitError(
            f"{argv[0]} {option}: no such option (not a lorakit option, nor an ms-swift flag)",
            hint=(f"did you mean {close[0]}? " if close else "")
            + f"see `lorakit {argv[0]} --help`; ms-swift flags go after `--`")
    for token in argv[cut + 1:]:
        option = token.partition("=")[0]
        if option in known and not _swift_flag(option):
            raise LorakitError(
                f"{argv[0]}: {option} comes after `--`, so it would go to ms-swift, which has no such flag",
                hint=f"put {option} before `--`: it is a lorakit option")


def repeated(group: Any, argv: list[str]) -> None:
    """A one-value lorakit option given twice before `--` (`--lora-rank 8 --lora-rank 16`): click
    keeps the last silently; the user cannot have meant both (issue #11 section 7: the same flag
    twice on one command line is an error). The same value twice passes; options that take several
    (--set, --adapters, --dataset) are not one-value options."""
    command = group.commands.get(argv[0]) if argv else None
    if command is None or not hasattr(command, "params"):
        return
    single = {}
    for param in command.params:
        if getattr(param, "param_type_name", "") != "option" or getattr(param, "is_flag", False) \
                or getattr(param, "multiple", False) or getattr(param, "nargs", 1) != 1:
            continue
        for opt in (*param.opts, *param.secondary_opts):
            single[opt] = param
    takes_value = {opt for param in command.params if not getattr(param, "is_flag", False)
                   and getattr(param, "param_type_name", "") == "option" for opt in param.opts}
    cut = argv.index("--") if "--" in argv else len(argv)
    seen: dict[str, tuple[str, str]] = {}
    tokens, i = argv[1:cut], 0
    while i < len(tokens):
        token = tokens[i]
        option, eq, value = token.partition("=")
        if token in takes_value and not eq:
            value = tokens[i + 1] if i + 1 < len(tokens) else ""
            i += 1
        i += 1
        param = single.get(option if eq else token)
        if param is None:
            continue
        if param.name in seen:
            from lorakit.cli.common import same_value

            before, written = seen[param.name]
            if not same_value(before, value, KEYS.get(param.name, f"args.{param.name}")):
                name = KEYS.get(param.name, param.name)
                raise LorakitError(f"{name} is set twice on the command line, to different values: {written} {before} "
                                   f"and {option} {value} (lorakit would silently keep the last)",
                                   hint=f"keep one {option}")
        seen.setdefault(param.name, (value, option))
