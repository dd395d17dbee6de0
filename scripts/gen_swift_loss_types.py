"""Build src/lorakit/data/swift_loss_types.json: which `swift sft --loss_type` names each released
ms-swift 3.x/4.x patch has.

    python scripts/gen_swift_loss_types.py                  # every released patch; writes the file
    python scripts/gen_swift_loss_types.py --check          # exit 1 if a newer release changes it
    python scripts/gen_swift_loss_types.py --pinned --check # the committed file's versions: exit 1 on drift
    python scripts/gen_swift_loss_types.py --offline        # only the wheels already in the cache

`swift sft --loss_type` is a plain `str` field, so argparse takes any text; the trainer looks the
name up when it is built, after the model has loaded and the dataset is encoded: 4.x's
`loss_map[args.loss_type]` (swift/trainers/mixin.py create_loss_and_eval_metric), 3.x's
get_loss_func (`LOSS_MAPPING[loss_type]`, from 3.12 `loss_mapping[...]`), so a name the release
lacks is a KeyError a minute in. The registry by release:
- 3.0-3.11: `LOSS_MAPPING`, filled by `@register_loss_func(LossType.NAME)` in swift/plugin/loss.py
  (a LossType class attribute, or a string);
- 3.12: the literal `loss_mapping = {...}` of swift/plugin/loss.py;
- 4.x: the literal `loss_map = {...}` of swift/loss/mapping.py (the reranker losses renamed:
  listwise_generative_reranker -> listwise_reranker, ...).

Read like the loss-scale table (scripts/gen_swift_loss_scales.py, whose runs, rendering, cache
and pip it shares): each wheel opened as a zip and parsed with `ast`, never installed or
imported. Exit 3 when pip cannot list or download.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_swift_loss_scales as scales  # noqa: E402  (the same wheels, runs, rendering and command line)

OUT = Path(__file__).resolve().parents[1] / "src" / "lorakit" / "data" / "swift_loss_types.json"
GENERATED_BY = "scripts/gen_swift_loss_types.py"
MODULES = ("swift/loss/mapping.py", "swift/plugin/loss.py")
LITERALS = ("loss_map", "loss_mapping")  # 4.x, 3.12


def _class_strings(tree: ast.Module, name: str) -> dict[str, str]:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return {t.id: s.value.value for s in node.body if isinstance(s, ast.Assign)
                    for t in s.targets if isinstance(t, ast.Name) and isinstance(s.value, ast.Constant)}
    return {}


def _registered(tree: ast.Module, path: str) -> list[str]:
    """The names `register_loss_func(X)` registers, as a decorator or a call (3.0-3.11)."""
    attrs = _class_strings(tree, "LossType")
    names = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register_loss_func"):
            continue
        arg = node.args[0] if node.args else None
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            names.append(arg.value)
        elif isinstance(arg, ast.Attribute) and getattr(arg.value, "id", None) == "LossType" and arg.attr in attrs:
            names.append(attrs[arg.attr])
        else:
            raise SystemExit(f"{path}: register_loss_func({ast.dump(arg) if arg else ''}) is not a name this "
                             "script can read: extend it")
    return names


def read_wheel(path: Path) -> dict:
    """{names} of one ms-swift wheel: the loss_type names its registry holds."""
    module, source = scales.first_module(path, MODULES, "loss")
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and node.value.keys and \
                any(isinstance(t, ast.Name) and t.id in LITERALS for t in node.targets):
            if not all(isinstance(k, ast.Constant) for k in node.value.keys):
                raise SystemExit(f"{path.name}: {module}'s loss table has a key that is not a literal")
            return {"names": sorted(k.value for k in node.value.keys)}
    names = _registered(tree, f"{path.name}: {module}")
    if not names:
        raise SystemExit(f"{path.name}: {module} registers no loss this script can find")
    return {"names": sorted(set(names))}


def build(versions: list[str], cache: Path, offline: bool, log=print) -> dict:
    versions, runs = scales.runs_of(versions, cache, offline, read_wheel)
    for run in runs:
        log(f"{run['first']} .. {run['last']}: {', '.join(run['names'])}")
    return {"generated_by": GENERATED_BY,
            "about": "swift sft --loss_type per released ms-swift patch: runs of patches {first, last, names (the "
                     "loss registry's keys: 3.0-3.11 LOSS_MAPPING, 3.12 loss_mapping, 4.x loss_map)}",
            "versions": versions, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    return scales.cli(argv, __doc__, OUT, GENERATED_BY, build)


if __name__ == "__main__":
    sys.exit(main())
