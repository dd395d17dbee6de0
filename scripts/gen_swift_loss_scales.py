"""Build src/lorakit/data/swift_loss_scales.json: which `--loss_scale` values each released ms-swift
3.x/4.x patch accepts, and in which grammar.

    python scripts/gen_swift_loss_scales.py                  # every released patch; writes the file
    python scripts/gen_swift_loss_scales.py --check          # exit 1 if a newer release changes it
    python scripts/gen_swift_loss_scales.py --pinned --check # the committed file's versions: exit 1 on drift
    python scripts/gen_swift_loss_scales.py --offline        # only the wheels already in the cache

`--loss_scale` is a plain `str` field, so argparse takes any text; the name is looked up in the
loss-scale registry only when the template is built, after the model and processor have loaded
(3.5+: Template.__init__; 3.0-3.4: while the dataset is encoded), and a name the installed minor
lacks is `KeyError: 'ignore_empty_think'` (ms-swift #4382, on 3.3.0.post1; the name came in 3.4.1).

The registry changed with the releases, and so did the grammar of the value:
- `key` (3.0-3.11): the value is one key of `loss_scale_map` (swift/plugin/loss_scale.py, from
  3.3.1 swift/plugin/loss_scale/loss_scale.py), base strategies included ('default', 'last_round').
- `pair` (3.12, 4.0-4.3.0): get_loss_scale splits once on '+': a base strategy alone, a name alone, or
  BASE+NAME; LossScale.__init__ refuses a base outside ALL_BASE_STRATEGY (an assert, from 4.0 a ValueError).
- `chain` (4.3.1+): BASE+NAME+NAME..., or names alone (swift/loss_scale/mapping.py).

Read like the flag history (scripts/gen_swift_history.py, whose cache and pip it shares): each
wheel opened as a zip and parsed with `ast`, never installed or imported. Exit 3 when pip cannot
list or download.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_swift_history as history  # noqa: E402  (the same cache, the same pip)

OUT = Path(__file__).resolve().parents[1] / "src" / "lorakit" / "data" / "swift_loss_scales.json"
GENERATED_BY = "scripts/gen_swift_loss_scales.py"
MODULES = ("swift/loss_scale/mapping.py", "swift/plugin/loss_scale/loss_scale.py", "swift/plugin/loss_scale.py")
BASES = ("swift/loss_scale/base.py",) + MODULES


def first_module(path: Path, modules: tuple[str, ...], what: str) -> tuple[str, str]:
    """(name, source) of the first of `modules` the wheel has (where a release keeps its registry)."""
    with zipfile.ZipFile(path) as wheel:
        present = set(wheel.namelist())
        module = next((m for m in modules if m in present), None)
        if module is None:
            raise SystemExit(f"{path.name}: no {what} module ({', '.join(modules)})")
        return module, wheel.read(module).decode("utf-8")


def read_wheel(path: Path) -> dict:
    """{grammar, bases, names} of one ms-swift wheel."""
    module, source = first_module(path, MODULES, "loss-scale")
    with zipfile.ZipFile(path) as wheel:
        present = set(wheel.namelist())
        base_source = "".join(wheel.read(m).decode("utf-8") for m in BASES if m in present)
    tree = ast.parse(source)
    names = None
    grammar = "key"
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and \
                any(isinstance(t, ast.Name) and t.id == "loss_scale_map" for t in node.targets):
            names = sorted(k.value for k in node.value.keys if isinstance(k, ast.Constant))
        if isinstance(node, ast.FunctionDef) and node.name == "get_loss_scale":
            text = ast.get_source_segment(source, node) or ""
            if re.search(r"\.split\('\+',\s*1\)", text):
                grammar = "pair"
            elif ".split('+')" in text:
                grammar = "chain"
            else:
                raise SystemExit(f"{path.name}: get_loss_scale splits its value in a way this script does not know")
    if not names:
        raise SystemExit(f"{path.name}: {module} has no literal loss_scale_map")
    bases: list[str] = []
    if grammar != "key":
        found = re.search(r"^ALL_BASE_STRATEGY\s*=\s*(\[[^\]]*\])", base_source, re.M)
        # 3.12 asserts `base_strategy in ALL_BASE_STRATEGY`, 4.x raises ValueError on `not in`
        if not found or not re.search(r"base_strategy (not )?in ALL_BASE_STRATEGY", base_source):
            raise SystemExit(f"{path.name}: a '+' grammar without a checked ALL_BASE_STRATEGY")
        bases = list(ast.literal_eval(found.group(1)))  # in the order ms-swift prints them
    return {"grammar": grammar, "bases": bases, "names": names}


def runs_of(versions: list[str], cache: Path, offline: bool, read) -> tuple[list[str], list[dict]]:
    """(the released 3.x/4.x patches, in order; runs of consecutive patches of one major whose
    `read(wheel)` is the same, as {first, last, **what read gave})."""
    versions = sorted((v for v in versions if history.version_key(v)[0] in history.MAJORS and "dev" not in v),
                      key=history.version_key)
    history.prefetch("ms-swift", versions, cache, offline)
    runs: list[dict] = []
    for version in versions:
        seen = read(history.wheel("ms-swift", version, cache, offline))
        last = runs[-1] if runs else None
        if last and {k: last[k] for k in seen} == seen and last["first"].split(".")[0] == version.split(".")[0]:
            last["last"] = version
        else:
            runs.append({"first": version, "last": version, **seen})
    return versions, runs


def build(versions: list[str], cache: Path, offline: bool, log=print) -> dict:
    versions, runs = runs_of(versions, cache, offline, read_wheel)
    for run in runs:
        log(f"{run['first']} .. {run['last']}: {run['grammar']} {', '.join(run['names'])}")
    return {"generated_by": GENERATED_BY,
            "about": "--loss_scale per released ms-swift patch: runs of patches {first, last, grammar (key: one "
                     "loss_scale_map key; pair: BASE+NAME split once; chain: BASE+NAME+NAME...), bases "
                     "(ALL_BASE_STRATEGY), names (loss_scale_map's keys)}",
            "versions": versions, "runs": runs}


def render(data: dict) -> str:
    text = json.dumps(data, indent=1)
    # one line per run and per version list: the file stays small and diffs readable
    text = re.sub(r"\[\n\s+([^\[\]{}]*?)\n\s+\]", lambda m: "[" + re.sub(r",\n\s+", ", ", m.group(1)) + "]", text)
    return text + "\n"


def cli(argv: list[str] | None, doc: str, out: Path, generated_by: str, build_table) -> int:
    """The command line of a table built from every released wheel (this one, the loss types'):
    --offline, --pinned, --check, --cache; `build_table(versions, cache, offline, log)` makes it."""
    cli = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--cache", type=Path, default=history.DEFAULT_CACHE, help="wheel cache (the flag history's)")
    cli.add_argument("--offline", action="store_true", help="use only the wheels in the cache; never run pip")
    cli.add_argument("--pinned", action="store_true", help=f"rebuild from exactly the versions {out.name} lists")
    cli.add_argument("--check", action="store_true", help=f"exit 1 if {out.name} differs from a fresh build")
    cli.add_argument("--out", type=Path, default=out, help=argparse.SUPPRESS)
    args = cli.parse_args(argv)

    def log(*parts):
        print(*parts, file=sys.stderr, flush=True)

    try:
        if args.pinned:
            versions = json.loads(args.out.read_text(encoding="utf-8"))["versions"]
        elif args.offline:
            versions = history.cached(args.cache, "ms-swift")
        else:
            versions = history.released("ms-swift")
        text = render(build_table(versions, args.cache, args.offline, log))
    except history.NoIndex as err:
        log(f"{Path(generated_by).stem}: {err}")
        return history.EXIT_NO_INDEX
    return history.write_or_check(args.out, text, args.check, generated_by, log)


def main(argv: list[str] | None = None) -> int:
    return cli(argv, __doc__, OUT, GENERATED_BY, build)


if __name__ == "__main__":
    sys.exit(main())
