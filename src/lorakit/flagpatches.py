"""Flags that came in a patch release, not their minor's first (src/lorakit/data/
swift_flag_patches.json, from every released wheel by scripts/gen_swift_patches.py). The flag
history is per minor (its last patch), so only a target named to the patch asks this:
`--swift-version 3.3.0`, or an installed 3.3.0.post1 (ms-swift #3986: --vllm_server_host came in
3.3.1)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

# 3.3.0.post1 and 3.3.0post1 (both PEP 440); 3.4.0.dev0 / 3.4.0rc1, a checkout on its way to 3.4.0,
# is judged as 3.4.0: what it has of 3.4.0's flags is unknowable, and a doubt is not an error; a
# local build (4.6.0+cu121) is its release
_PATCH = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:\.?(post|dev|rc|a|b)(\d+))?(?:\+[0-9A-Za-z.]+)?$")


def patch_key(version: str) -> tuple[int, ...] | None:
    """'3.3.0.post1' -> (3, 3, 0, 1), comparable; None for what names no patch ('3.3', '3')."""
    found = _PATCH.match(version.strip())
    if not found:
        return None
    major, minor, patch, kind, n = found.groups()
    after = int(n) if kind == "post" else 0
    return int(major), int(minor), int(patch), after


@lru_cache(maxsize=None)
def _table() -> dict:
    path = Path(__file__).resolve().parent / "data" / "swift_flag_patches.json"
    return json.loads(path.read_text(encoding="utf-8")).get("majors", {}) if path.is_file() else {}


def first_patch(major: int, command: str, flag: str, version: str | None) -> str | None:
    """The patch that first has `flag` when the exact target `version` is an earlier patch of
    the same minor; None when the target has it, names no patch, or the flag is not listed."""
    target = patch_key(version or "")
    if target is None:
        return None  # a major or a minor alone: the table is never read (the dry-run stays light)
    entry = _table().get(str(major), {}).get(command, {}).get(flag)
    if not entry:
        return None
    first = patch_key(entry["first"])
    same_minor = ".".join(map(str, target[:2])) == entry["minor"]
    return entry["first"] if first is not None and same_minor and target < first else None
