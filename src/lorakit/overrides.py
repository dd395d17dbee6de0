"""The command line's layer over a preset: `--set KEY=VALUE` items parsed, and applied over every
file (presets.py loads the files; this is what the command line adds on top)."""

from __future__ import annotations

from typing import Any

import yaml

from lorakit import yamlload
from lorakit.errors import LorakitError
from lorakit.names import normalise_arg_key
from lorakit.presets import LAUNCH_KEYS, Resolved, deep_merge, env_problems, is_flag_name
from lorakit.spellout import spell_out
from lorakit.values import did_you_mean


def _short(text: str, limit: int = 200) -> str:
    """A --set item as messages quote it: a megabyte of digits is not repeated back whole."""
    return text if len(text) <= limit else text[:limit - 40] + f"... ({len(text):,} characters)"


def parse_set(item: str) -> tuple[str, Any]:
    """`--set KEY=VALUE`: KEY is an ms-swift flag or launch.KEY; VALUE is parsed as YAML."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise LorakitError(
            f"--set {_short(item)!r}: expected KEY=VALUE",
            hint="e.g. --set lora_rank=16 or --set launch.gpus=0,1",
        )
    yamlload.refuse_aliases(raw, f"--set {_short(item)!r}", lines=False)
    try:
        value = yamlload.parse(raw) if raw.strip() else ""
    except yamlload.Unreadable as exc:
        raise LorakitError(f"--set {_short(item)!r}: {exc}", hint="quote it to pass it as text") from None
    except yaml.YAMLError:
        raise LorakitError(
            f"--set {_short(item)!r}: VALUE is not valid YAML",
            hint="quote it for the shell, e.g. --set 'system=\"You are helpful: be brief\"'",
        ) from None
    value = yamlload.settle(value)
    if key.startswith("launch."):
        sub = key[len("launch."):]
        if sub not in LAUNCH_KEYS:
            close = did_you_mean(sub, LAUNCH_KEYS)
            raise LorakitError(
                f"--set {_short(item)!r}: unknown launch key {sub!r}",
                hint=(f"did you mean 'launch.{close[0]}'? " if close else "")
                + "launch keys: " + ", ".join(LAUNCH_KEYS),
            )
        if sub in ("gpus", "master_addr", "time"):
            # ids, hosts and SLURM times are text: YAML would read 010 as 8 and 2:00:00 as 7200;
            # but a YAML null (`launch.gpus=null`) removes the list, as null does for any key
            if isinstance(value, str) and raw.strip()[:1] in ("'", '"'):
                return key, value  # quoted for YAML, as the hints show: the text inside the quotes
            return key, None if value is None and raw.strip() else raw.strip()
        return key, value
    if key.startswith("env."):
        problems = env_problems(key[len("env."):], value if raw.strip() else "")
        if problems:
            message, _, hint = problems[0].partition(" (")
            raise LorakitError(f"--set {_short(item)!r}: {message}", hint=hint[:-1] or None)
        return key, raw.strip()  # the text as written: the environment holds text
    if key.startswith("args."):
        key = key[len("args."):]
    if not key.strip("-"):
        raise LorakitError(f"--set {_short(item)!r}: empty flag name", hint="e.g. --set lora_rank=16")
    if not is_flag_name(key):
        raise LorakitError(f"--set {_short(item)!r}: {key!r} is not an ms-swift flag name",
                           hint="letters, digits, '_' and '-', starting with a letter; e.g. --set lora_rank=16")
    return "args." + normalise_arg_key(key), value


def apply_overrides(resolved: Resolved, overrides: list[tuple[str, Any, str]]) -> Resolved:
    """Overrides are ('args.key' | 'launch.key', value, who) and win over every file. Together
    they are one layer, the command line: its flags are spelled out together (spellout.py), and
    among themselves a later one replaces an earlier one."""
    data = deep_merge(resolved.data, {})
    sources = dict(resolved.sources)
    args: dict[str, Any] = {}
    who_set: dict[str, str] = {}
    for dotted, value, who in overrides:
        section, key = dotted.split(".", 1)
        if section == "args":
            args.pop(key, None)  # re-inserted last: the order the user gave
            args[key], who_set[key] = value, who
            continue
        # (global_batch_size vs gradient_accumulation_steps on the command line: fixups.py)
        block = dict(data.get(section) or {})
        block[key] = value
        data[section] = block
        sources[dotted] = who
    spelled, notes, origin = spell_out(args, "the command line", major=resolved.major,
                                       command=data.get("command"), sources=who_set)
    if spelled:
        block = dict(data.get("args") or {})
        for key, value in spelled.items():
            block[key] = value
            sources[f"args.{key}"] = who_set[origin[key]]
        data["args"] = block
    return Resolved(resolved.name, resolved.path, data, sources, list(resolved.chain),
                    [*resolved.notes, *notes], resolved.major)
