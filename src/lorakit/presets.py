"""Find a preset by name or path, load it safely, apply `extends:` and overrides.

Touches files only. The result is a `Resolved` preset: the merged mapping plus, for every
`launch.X` / `args.X` key, the file (or command-line option) that set it last, so checks can
name the file a problem came from.
"""

from __future__ import annotations

import os
from functools import lru_cache
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lorakit import envvars, localpath, yamlload
from lorakit.errors import LorakitError
from lorakit.names import normalise_arg_key, version_spelling
from lorakit.spellout import respelled, spell_out
from lorakit.values import suggestion

TOP_KEYS = ("description", "extends", "command", "launch", "args", "env")
LAUNCH_KEYS = tuple(envvars.FIELD.values())  # gpus, nproc_per_node, nnodes, node_rank, master_*
# Read only by the sbatch and Kubernetes exports (lorakit.sbatch, lorakit.kube), never by ms-swift.
EXPORT_KEYS = ("cpus_per_task", "time", "requeue", "image", "namespace", "volumes", "service_account")
LAUNCH_KEYS = LAUNCH_KEYS + EXPORT_KEYS
COMMANDS = ("sft", "export", "rlhf", "infer", "deploy", "eval", "rollout")


def builtin_dir() -> Path:
    """configs/ ships inside the wheel as lorakit/configs; a source checkout has it at the top."""
    packaged = Path(__file__).resolve().parent / "configs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "configs"


@lru_cache(maxsize=1)
def _builtin_resolved() -> Path:
    return builtin_dir().resolve()


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.yaml"))


@dataclass
class Resolved:
    """A preset after `extends` and overrides; `sources` maps 'args.lora_rank' -> who set it."""

    name: str
    path: Path | None
    data: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)
    notes: list = field(default_factory=list)  # Findings about spelling (spellout.py)
    major: int | None = None  # the ms-swift major the flags were spelled out for


def _looks_like_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or "/" in ref or ref.startswith(".")


def _not_a_file(path: Path) -> str | None:
    """None for a regular file (through symlinks); else what the path is, in words. Checked
    before reading: a FIFO would block the read, a directory or a device is never a preset."""
    import errno

    try:
        mode = os.stat(path).st_mode
    except ValueError:
        return "contains a NUL byte, which no file name can"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symlink loop"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "does not exist" if not os.path.islink(path) else "is a broken symlink"
        return f"cannot be read: {exc.strerror}"
    kind = localpath.special_kind(mode)
    return None if kind is None else "is not a regular file" if kind == "no regular file" \
        else f"is {kind}, not a YAML file"


def locate(ref: str, *, base: Path | None = None, key: str = "--preset") -> Path:
    """A built-in name or a path (relative to `base`, the file that names it)."""
    if _looks_like_path(ref):
        path = (base / ref) if base is not None and not Path(ref).is_absolute() else Path(ref)
        what = _not_a_file(path)
        if what is None:
            return path.resolve()
        raise LorakitError(
            f"{key}: preset file {ref!r} {what}" + (f" (looked for {path})" if base is not None else ""),
            hint="give an existing YAML file, or a built-in name: " + ", ".join(builtin_names()),
        )
    path = builtin_dir() / f"{ref}.yaml"
    if path.is_file():
        return path
    names = builtin_names()
    here = (base / ref) if base is not None else Path(ref)
    if ref and _not_a_file(here) is None:
        # a bare name is always a built-in (so a new built-in can never change what a path means)
        raise LorakitError(f"{key}: unknown preset {ref!r}: a bare name is a built-in preset, and none is called so",
                           hint=suggestion(ref, names) + f"for the file {ref!r} (it is there: {here.resolve()}) "
                                f"write ./{ref}")
    hint = suggestion(ref, names) + "built-in presets: " + ", ".join(names)
    raise LorakitError(f"{key}: unknown preset {ref!r}", hint=hint)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LorakitError(f"{path}: cannot read preset: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise LorakitError(f"{path}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x})",
                           hint="save the preset as UTF-8") from None
    yamlload.refuse_aliases(text, str(path))  # first: an alias bomb is never built
    try:
        data = yamlload.parse(text)
    except yaml.YAMLError as exc:
        raise yamlload.syntax_error(str(path), exc) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise LorakitError(
            f"{path}: a preset must be a YAML mapping, got {type(data).__name__}",
            hint="start the file with keys such as 'command:', 'launch:' and 'args:'",
        )
    _check_shape(path, data)
    if isinstance(data.get("args"), dict):
        data["args"] = {k: yamlload.settle(v) for k, v in data["args"].items()}
    for section in ("launch", "args", "env"):
        if section in data and data[section] is None:
            # `args:` with nothing under it means "no changes", not "wipe the parent's args"
            data[section] = {}
    return data


def _unknown_key(key: Any, allowed: tuple[str, ...], where: str) -> str:
    hint = suggestion(key, allowed) + "allowed: " + ", ".join(allowed)
    return f"unknown key {where}{key!r} ({hint})"


# What argparse can take as `--NAME`: `model=evil` would render `--model=evil`, which argparse
# reads as --model with the value evil, and the real value is left over as a stray argument.
FLAG_NAME = re.compile(r"^-{0,2}[A-Za-z][A-Za-z0-9_-]*$")


def is_flag_name(key: object) -> bool:
    return isinstance(key, str) and bool(FLAG_NAME.match(key))


def shape_problems(data: dict[str, Any]) -> list[str]:
    """Every unknown key and wrong type, not just the first (accelerate's config_args rejects
    unknown keys; torchtune's validate collects them all)."""
    problems = [_unknown_key(key, TOP_KEYS, "") for key in data if key not in TOP_KEYS]
    for key in ("description", "extends"):
        if key in data and not isinstance(data[key], str):
            problems.append(f"key {key!r} must be a string, got {type(data[key]).__name__}")
    if "command" in data and data["command"] not in COMMANDS:
        problems.append(f"key 'command' must be one of {', '.join(COMMANDS)}, got {data['command']!r} "
                        "('sft' trains with swift sft, 'export' merges with swift export, 'rlhf' runs "
                        "swift rlhf (DPO, KTO, GRPO...), infer/deploy/eval/rollout the swift command of that name)")
    for section in ("launch", "args", "env"):
        value = data.get(section)
        if value is not None and not isinstance(value, dict):
            problems.append(f"key {section!r} must be a mapping, got {type(value).__name__} "
                            f"(write '{section}:' followed by indented 'key: value' lines)")
    launch = data.get("launch") if isinstance(data.get("launch"), dict) else {}
    problems += [_unknown_key(key, LAUNCH_KEYS, "launch.") for key in launch if key not in LAUNCH_KEYS]
    args = data.get("args") if isinstance(data.get("args"), dict) else {}
    problems += [f"key args.{key!r} is not an ms-swift flag name (letters, digits, '_' and '-', "
                 "starting with a letter: a value goes after the ':')"
                 for key in args if not is_flag_name(key)]
    env = data.get("env") if isinstance(data.get("env"), dict) else {}
    problems += [p for key, value in env.items() for p in env_problems(key, value)]
    return problems


ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_problems(key: Any, value: Any) -> list[str]:
    """`env:` holds the variables a script sets that are not launch settings (MAX_PIXELS,
    PYTORCH_CUDA_ALLOC_CONF, ...). Launch variables have their own place, launch.*, which the
    checks read; launcher-owned ones (RANK, ...) are never set by a user."""
    where = f"env.{key}"
    if not isinstance(key, str) or not ENV_NAME.match(key):
        return [f"key {where!r} is not an environment variable name (letters, digits and '_')"]
    if key in envvars.FIELD:
        return [f"key {where!r} is a launch setting (write launch.{envvars.FIELD[key]}, which the checks read)"]
    if key in envvars.DEVICE_LISTS:
        return [f"key {where!r} is a device list (write launch.gpus; lorakit sets {key} from it)"]
    if envvars.is_scrubbed(key):
        return [f"key {where!r} is set by torchrun for its workers (a preset never sets it)"]
    if isinstance(value, (dict, list)) or value is None:
        return [f"key {where!r} must be text or a number, got {type(value).__name__}"]
    if isinstance(value, str) and "\0" in value:
        return [f"key {where!r} contains a NUL byte, which no environment can carry"]
    return []


def _check_shape(path: Path, data: dict[str, Any]) -> None:
    problems = shape_problems(data)
    if len(problems) == 1:
        message, _, hint = problems[0].partition(" (")
        raise LorakitError(f"{path}: {message}", hint=hint[:-1] or None)
    if problems:
        raise LorakitError(f"{path}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems),
                           hint="fix each key above; `lorakit presets show zero2` shows a valid preset")


def deep_merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; lists and scalars are replaced whole (child wins)."""
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _normalised(data: dict[str, Any], written: dict[str, str] | None = None) -> dict[str, Any]:
    """Spell args the one internal way per file, before merging: '--lora-rank' and 'lora_rank'
    (and 3.x's train_type vs 4.x's tuner_type) must override each other, not sit side by side.
    `written` gets the name as written of each flag one major renamed (spellout.respelled)."""
    if not data.get("args"):
        return data
    if written is not None:
        written.update({normalise_arg_key(k): version_spelling(k) for k in data["args"]
                        if isinstance(k, str) and version_spelling(k)})
    out = dict(data)
    out["args"] = {normalise_arg_key(k): v for k, v in data["args"].items()}
    return out


def path_is_users(path: Path) -> bool:
    return not label(path).startswith("built-in ")


@lru_cache(maxsize=256)
def label(path: Path) -> str:
    """How findings name a file: 'built-in zero2' rather than a site-packages path. Cached: a
    preset's chain asks for each file's label once per key (resolve() is a syscall per part)."""
    try:
        rel = path.resolve().relative_to(_builtin_resolved())
    except ValueError:
        return str(path)
    return f"built-in {rel.with_suffix('').as_posix()}"


def _record(sources: dict[str, str], data: dict[str, Any], who: str) -> None:
    for section in ("launch", "args", "env"):
        for key in data.get(section) or {}:
            sources[f"{section}.{key}"] = who
    for key in ("command", "description"):
        if key in data:
            sources[key] = who


# A later layer's key that replaces an earlier layer's other key, as any child key wins over its
# parent's: gradient_accumulation_steps over lorakit's global_batch_size (which derives it,
# fixups.py), and either warmup over the other (ms-swift 4.5+ refuses both at once; a built-in
# preset's warmup_ratio 0.05 under a user's warmup_steps: 100 means the user's steps).
SUPERSEDES = {"gradient_accumulation_steps": ("global_batch_size",), "warmup_steps": ("warmup_ratio",),
              "warmup_ratio": ("warmup_steps",)}


def _drop_superseded(data: dict[str, Any], sources: dict[str, str], key: str, who: str) -> None:
    """Drop what a later layer's `key` replaces from an earlier layer; one layer setting both is
    for the fixup or the check to report."""
    for other in SUPERSEDES.get(key, ()):
        dotted = f"args.{other}"
        if sources.get(dotted, who) == who:
            continue
        args = dict(data.get("args") or {})
        # fixups (note_dropped, later_warmup_wins) say it as info, so the replaced value is not silent
        from lorakit.render import spelled  # true, not True

        sources[f"dropped.{dotted}"] = f"{spelled(args.pop(other, None))} from {sources.pop(dotted)}"
        data["args"] = args


def load(ref: str, *, key: str = "--preset", major: int | None = None) -> Resolved:
    """Load a preset and its whole extends chain (parent first, child wins); `key` names
    where `ref` came from, for the error message. With `major`, each file's flags are spelled
    out in full for that ms-swift major before merging (spellout.py: one precedence mechanism)."""
    path = locate(ref, key=key)
    chain: list[Path] = []
    datas: list[dict[str, Any]] = []
    writtens: list[dict[str, str]] = []
    current: Path | None = path
    while current is not None:
        if current in chain:
            loop = " -> ".join(str(p) for p in chain + [current])
            raise LorakitError(
                f"{chain[-1]}: 'extends' makes a cycle: {loop}",
                hint="remove 'extends' from one of these files",
            )
        chain.append(current)
        writtens.append({})
        data = _normalised(read_yaml(current), writtens[-1])
        datas.append(data)
        parent = data.get("extends")
        current = locate(parent, base=current.parent, key=f"{current}: extends") if parent else None
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    notes: list = []
    command = next((d["command"] for d in datas if d.get("command") is not None), None)
    for file_path, data, written in zip(reversed(chain), reversed(datas), reversed(writtens)):
        body = {k: v for k, v in data.items() if k != "extends"}
        if body.get("args") and major is not None:
            body["args"], said, _ = spell_out(body["args"], label(file_path), major=major, command=command)
            notes += said
            if path_is_users(file_path):  # the built-ins write 4.x names for both majors on purpose
                notes += respelled({k: (w, label(file_path)) for k, w in written.items()}, major=major,
                                   command=command)
        for key in body.get("args") or {}:
            _drop_superseded(merged, sources, key, label(file_path))
        merged = deep_merge(merged, body)
        _record(sources, body, label(file_path))
    name = path.stem if path.parent == builtin_dir() else str(path)
    return Resolved(name=name, path=path, data=merged, sources=sources, chain=[str(p) for p in chain],
                    notes=notes, major=major)
