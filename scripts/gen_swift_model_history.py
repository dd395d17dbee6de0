#!/usr/bin/env python3
"""Build src/lorakit/data/swift_model_history.json: the first and last ms-swift minor of every
registered model_type, hub model name and architecture, over every released 3.x and 4.x minor.

    python scripts/gen_swift_model_history.py            # writes the file
    python scripts/gen_swift_model_history.py --check    # exit 1 if the wheels give another file
    python scripts/gen_swift_model_history.py --stdout   # print it instead of writing it

Why: a user on ms-swift 3.0 who copies `--model_type qwen2_5_vl` from today's docs gets
"model_type: 'qwen2_5_vl' not in [...]" after the launch (ms-swift #3004), and one on 3.x who
names a model registered only in 4.x gets "no suitable `model_type` was found" (#8106). The
snapshots (swift_models_v3/v4.json, made by gen_swift_models.py with ms-swift imported) are the
newest minor of each major; this history says which minor first had each entry.

It never installs or imports ms-swift. It reads the wheels that gen_swift_history.py keeps in its
cache (--cache, default ~/.cache/lorakit/swift-wheels or $LORAKIT_SWIFT_WHEELS; the last patch
of each minor; missing ones are fetched with `pip download --no-deps`) and parses their source
with `ast`: the model-type constants (class attributes in swift/llm/model/constant.py for 3.x,
swift/model/constant.py for 4.x) and every `ModelMeta(model_type, [ModelGroup([Model(ms_id,
hf_id), ...]), ...], ..., architectures=[...])` call in the model registry's modules, as
register_model receives them. A hub name is the id's last path part, lowercased, as ms-swift
compares it (lorakit.checks.model.swift_model_name). Megatron's own registry is not read.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "src" / "lorakit" / "data" / "swift_model_history.json"
GENERATED_BY = "scripts/gen_swift_model_history.py"
DEFAULT_CACHE = Path(os.environ.get("LORAKIT_SWIFT_WHEELS") or Path.home() / ".cache" / "lorakit" / "swift-wheels")
# The last patch of every minor, as gen_swift_history.py pins them (swift_flag_history.json).
HISTORY = REPO / "src" / "lorakit" / "data" / "swift_flag_history.json"
REGISTRY_DIRS = {3: ("swift/llm/model/",), 4: ("swift/model/",)}
CONSTANTS = {3: "swift/llm/model/constant.py", 4: "swift/model/constant.py"}
_WHEEL = re.compile(r"ms_swift-(\d+)\.(\d+)\.([0-9a-z.]+)-py3-none-any\.whl$")


def pinned_versions() -> dict[int, list[str]]:
    """The versions the flag history was made from: the last patch of each minor, oldest first."""
    majors = json.loads(HISTORY.read_text(encoding="utf-8"))["majors"]
    return {int(major): sorted(body["minors"].values(), key=_key) for major, body in majors.items()}


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2])


def wheel(cache: Path, version: str) -> Path:
    name = f"ms_swift-{version}-py3-none-any.whl"
    path = cache / name
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(cache),
                        f"ms-swift=={version}"], check=True)
    return path


def _constants(tree: ast.Module) -> dict[str, str]:
    """'LLMModelType.qwen2' -> 'qwen2' for every class attribute set to a string."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                        and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)):
                    out[f"{node.name}.{stmt.targets[0].id}"] = stmt.value.value
    return out


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _value(node: ast.expr, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        key = f"{node.value.id}.{node.attr}"
        # ModelType inherits every *ModelType class: ModelType.x is one of theirs
        return constants.get(key) or next((v for k, v in constants.items() if k.endswith("." + node.attr)
                                           and node.value.id == "ModelType"), None)
    return None


def _metas(tree: ast.Module, constants: dict[str, str]):
    """(model_type, hub names, architectures) of every ModelMeta(...) call in one module."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _name(node.func) == "ModelMeta"):
            continue
        first = node.args[0] if node.args else next((kw.value for kw in node.keywords if kw.arg == "model_type"), None)
        model_type = _value(first, constants) if first is not None else None
        if model_type is None:
            continue
        names = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and _name(sub.func) == "Model":
                for arg in sub.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value:
                        names.add(arg.value.rstrip("/").rsplit("/", 1)[-1].lower())
        archs = set()
        for kw in node.keywords:
            if kw.arg == "architectures" and isinstance(kw.value, (ast.List, ast.Tuple)):
                archs = {e.value for e in kw.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        yield model_type, names, archs


def registry(path: Path, major: int) -> dict[str, dict]:
    """One wheel's registry: model_types -> {names, architectures}."""
    with zipfile.ZipFile(path) as z:
        constants = _constants(ast.parse(z.read(CONSTANTS[major])))
        out: dict[str, dict] = {}
        for member in sorted(z.namelist()):
            if not member.endswith(".py") or not member.startswith(REGISTRY_DIRS[major]):
                continue
            source = z.read(member).decode("utf-8")
            if "ModelMeta(" not in source:
                continue
            for model_type, names, archs in _metas(ast.parse(source), constants):
                entry = out.setdefault(model_type, {"names": set(), "architectures": set()})
                entry["names"] |= names
                entry["architectures"] |= archs
    return out


def _span(life: dict[str, list[str]], key: str, minor: str) -> None:
    if key in life:
        life[key][1] = minor
    else:
        life[key] = [minor, minor]


def history(cache: Path) -> dict:
    out: dict = {"generated_by": GENERATED_BY}
    for major, versions in sorted(pinned_versions().items()):
        types: dict[str, list[str]] = {}
        names: dict[str, list[str]] = {}
        archs: dict[str, list[str]] = {}
        name_type: dict[str, str] = {}
        type_archs: dict[str, list[str]] = {}
        # (type, architecture) -> minors: a type lists an architecture only from some minor on
        # (deepseek_r1_distill took Qwen3ForCausalLM after 3.4), so "which types has this
        # architecture in minor M" needs the pair's own span
        pair_spans: dict[str, dict[str, list[str]]] = {}
        for version in versions:
            minor = ".".join(version.split(".")[:2])
            reg = registry(wheel(cache, version), major)
            for model_type, entry in sorted(reg.items()):
                _span(types, model_type, minor)
                type_archs[model_type] = sorted(entry["architectures"])  # as the newest minor has them
                for name in sorted(entry["names"]):
                    _span(names, name, minor)
                    name_type[name] = model_type  # the newest minor's model type for that name
                for arch in sorted(entry["architectures"]):
                    _span(archs, arch, minor)
                    _span(pair_spans.setdefault(model_type, {}), arch, minor)
        out[str(major)] = {"versions": versions, "model_types": types, "names": names,
                           "name_types": dict(sorted(name_type.items())), "architectures": archs,
                           "type_architectures": dict(sorted(type_archs.items())),
                           "type_architecture_spans": {t: dict(sorted(a.items())) for t, a in sorted(pair_spans.items())}}
    return out


PATCHES = REPO / "src" / "lorakit" / "data" / "swift_flag_patches.json"  # every released version


def patch_pairs(cache: Path) -> dict:
    """{major: {minor: {type: {architecture: first patch}}}} for the (type, architecture) pairs
    of each minor's last patch that its first release lacks: the history above is per minor, and
    a target named to an earlier patch (3.12.1, or an installed 3.6.0) must not count a pair that
    came later (qwen3_vl_emb took Qwen3VLForConditionalGeneration in 3.12.2, qwen3_moe_thinking
    Qwen3MoeForCausalLM in 3.6.3)."""
    released = json.loads(PATCHES.read_text(encoding="utf-8"))["versions"]
    out: dict = {}
    for major, pinned in sorted(pinned_versions().items()):
        for last in pinned:
            minor = ".".join(last.split(".")[:2])
            patches = [v for v in released if ".".join(v.split(".")[:2]) == minor]
            first_seen: dict[tuple[str, str], str] = {}
            for version in patches:
                for model_type, entry in registry(wheel(cache, version), major).items():
                    for arch in entry["architectures"]:
                        first_seen.setdefault((model_type, arch), version)
            final = registry(wheel(cache, last), major)
            for model_type, entry in sorted(final.items()):
                for arch in sorted(entry["architectures"]):
                    first = first_seen.get((model_type, arch))
                    if first is not None and patches and first != patches[0]:
                        out.setdefault(str(major), {}).setdefault(minor, {}).setdefault(model_type, {})[arch] = first
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    parser.add_argument("--stdout", action="store_true")
    args = parser.parse_args(argv)
    data = history(args.cache)
    data["type_architecture_patches"] = patch_pairs(args.cache)
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if args.check:
        same = OUT.is_file() and OUT.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{OUT} differs from the wheels: rerun without --check")
        return 0 if same else 1
    if args.stdout:
        sys.stdout.write(text)
    else:
        OUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUT} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
