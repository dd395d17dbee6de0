"""Build src/lorakit/data/swift_flag_patches.json: the flags that came in a patch release, not
in their minor's first one (`--vllm_server_host` is in 3.3.1 but not 3.3.0 or 3.3.0.post1).

    python scripts/gen_swift_patches.py            # every released 3.x/4.x patch; writes the file
    python scripts/gen_swift_patches.py --check    # exit 1 if the committed file differs
    python scripts/gen_swift_patches.py --pinned --check  # the committed file's versions: exit 1 on drift
    python scripts/gen_swift_patches.py --offline  # only the wheels already in the cache

The flag history (scripts/gen_swift_history.py) is per minor, from each minor's last patch, so a
user on 3.3.0 is judged as 3.3.1. This script reads every patch of every minor the same way
(`pip download --no-deps`, the wheel parsed with ast through gen_swift_history.Source: never
installed or imported) and keeps, per major and command, each own flag of the minor's last patch
that an earlier patch of that minor lacks, with the first patch that has it. A target given to
the patch (`--swift-version 3.3.0`, or the installed ms-swift's exact version) then gets
flags.too_new for it (checks/flags.py). Wheels are cached beside the history's
(~/.cache/lorakit/swift-wheels or $LORAKIT_SWIFT_WHEELS); a cold cache is ~60 wheels, ~50 MB.
Exit 3 when pip cannot list or download.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_swift_history as history  # noqa: E402  (the same parsing, the same cache)

OUT = Path(__file__).resolve().parents[1] / "src" / "lorakit" / "data" / "swift_flag_patches.json"
HISTORY = OUT.with_name("swift_flag_history.json")


def by_minor(versions: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for version in sorted(versions, key=history.version_key):
        key = history.version_key(version)
        if key[0] in history.MAJORS and "dev" not in version:
            out.setdefault(history.minor_of(version), []).append(version)
    return out


def _arrived(major: int, command: str, flag: str, minor: str) -> bool:
    """An own ms-swift flag (not a transformers field it re-declares) whose history begins in
    `minor`: the committed flag history decides which fields are ms-swift's."""
    spans = json.loads(HISTORY.read_text(encoding="utf-8"))["majors"][str(major)]["commands"]
    span = spans.get(command, {}).get("flags", {}).get(flag)
    return isinstance(span, dict) and span.get("first") == minor


def build(versions: list[str], cache: Path, offline: bool, log=print) -> dict:
    minors = by_minor(versions)
    history.prefetch("ms-swift", [v for vs in minors.values() for v in vs], cache, offline)
    majors: dict[str, dict] = {}
    for minor, patches in minors.items():
        if len(patches) < 2:
            continue
        major = int(minor.split(".")[0])
        seen = {v: history.read_version(history.Source(history.wheel("ms-swift", v, cache, offline)), major)
                for v in patches}
        last = seen[patches[-1]]
        for command, data in last.items():
            for flag in sorted(data["flags"]):
                having = [v for v in patches if flag in seen[v].get(command, {}).get("flags", ())]
                first = having[0]
                if first != patches[0] and having == patches[patches.index(first):] and \
                        _arrived(major, command, flag, minor):
                    flags = majors.setdefault(str(major), {}).setdefault(command, {})
                    flags[flag] = {"first": first, "minor": minor}
        log(f"{minor}: {', '.join(patches)}")
    return {"generated_by": "scripts/gen_swift_patches.py",
            "about": "own flags of a minor's last patch that its earlier patches lack: {major: {command: "
                     "{flag: {first: patch, minor}}}}",
            "versions": [v for vs in minors.values() for v in vs], "majors": majors}


def render(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--pinned", action="store_true", help="the versions the committed file was made from")
    parser.add_argument("--cache", type=Path, default=history.DEFAULT_CACHE)
    args = parser.parse_args(argv)
    try:
        if args.pinned:
            versions = json.loads(OUT.read_text(encoding="utf-8"))["versions"]
        else:
            versions = history.cached(args.cache, "ms-swift") if args.offline else history.released("ms-swift")
        data = build(versions, args.cache, args.offline, log=lambda m: print(m, file=sys.stderr))
    except history.NoIndex as exc:
        print(f"gen_swift_patches: {exc}", file=sys.stderr)
        return 3
    text = render(data)
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"gen_swift_patches: {OUT} is out of date: run python scripts/gen_swift_patches.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
