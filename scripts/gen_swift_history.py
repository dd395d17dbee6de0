"""Build src/lorakit/data/swift_flag_history.json: the first and last ms-swift minor of each flag
of `swift sft`, `export`, `rlhf`, `infer`, `deploy`, `eval` and `rollout`, over every released 3.x
and 4.x minor, the renames, and the choices of Literal/Enum flags where a minor's differ.

    python scripts/gen_swift_history.py                  # newest releases; writes the file
    python scripts/gen_swift_history.py --check          # exit 1 if a newer release changes it
    python scripts/gen_swift_history.py --pinned --check # same versions as committed: exit 1 on drift
    python scripts/gen_swift_history.py --offline        # only the wheels already in --cache
    python scripts/gen_swift_history.py --stdout         # print it instead of writing it

Exit 3 when pip cannot list or download (no index). A cold cache is ~190 MB (20 ms-swift and
13 transformers wheels) and takes about a minute; a warm one about 3 s.

It never installs or imports ms-swift, transformers or torch. For the last patch of each minor
(from `pip index versions ms-swift`) it runs `pip download --no-deps ms-swift==X.Y.Z` into a
cache folder (--cache, default ~/.cache/lorakit/swift-wheels or $LORAKIT_SWIFT_WHEELS), opens
the wheel as a zip and parses its source with `ast`: the `args_class` of the pipeline each
command runs (PIPELINES: SwiftSft, SwiftExport, SwiftRLHF, ... in swift/llm/{train/sft,
export/export,train/rlhf,...}.py in 3.x, swift/pipelines/... in 4.x; 3.x sft parses into
TrainArguments, 4.x into SftArguments, rlhf into RLHFArguments in both), then the
dataclass fields of that class and of every ms-swift class it inherits from (swift/llm/argument/
in 3.x, swift/arguments/ in 4.x, swift/trainers/arguments.py in both), following imports, lazy
`_import_structure` modules included. HfArgumentParser makes one flag per init field, so the
fields are the flags.

transformers' fields are not ms-swift's history. `swift sft`'s class also inherits transformers'
Seq2SeqTrainingArguments, whose fields come with whatever transformers is installed, and
ms-swift re-declares some of them to change a default (gradient_accumulation_steps appears in
ms-swift's own source only from 3.2). So the history leaves out every field that transformers'
Seq2SeqTrainingArguments also has (in the newest transformers each minor allows, read the same
way from its wheel, plus the one the committed snapshot was made with): for those the committed
snapshot (swift_flags_v<major>.json) is the baseline for every minor of that major, and the
history lists them per command as overrides_transformers. tests/test_flag_history.py checks the
history at the snapshot's minor against the snapshot, and against the own dataclass fields of
the installed ms-swift 3.12.6 / 4.6.0 as Python's dataclasses see them.

History is per minor, from each minor's last patch: a flag added in 3.6.2 counts as 3.6's.

Choices: HfArgumentParser gives a Literal[...] field (Optional[...] and Union[..., str] unwrapped)
its args as argparse choices, and an Enum field its members' values (transformers hf_argparser
_parse_dataclass_field). The script reads them from the annotation in the class nearest in the
MRO (C3, as Python resolves a re-declared field). To keep the file small only the difference is
stored: per command, `choices` maps a flag to the runs of consecutive minors whose choices are not
the snapshot's, as {"first", "last", "choices"} (null: no choices there, e.g. 3.3-3.9's
scale_rewards is a bool; types are not recorded); every other minor the flag lives in has the
snapshot's choices. E.g. `swift rlhf --rlhf_type`: 3.0 lacks 'grpo' (3.1) and 'gkd' (3.6).
Only ms-swift's own flags the snapshot has; a minor whose annotation the script cannot read stops
the build ("extend this script"), and the snapshot's own version must read exactly the
snapshot's choices.

Renames are not in the source: RENAMES below is curated, each with its evidence, and the
script checks each against the history (the old name ends where the new one begins).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "src" / "lorakit" / "data"
OUT = DATA / "swift_flag_history.json"
GENERATED_BY = "scripts/gen_swift_history.py"
MAJORS = (3, 4)
COMMANDS = ("sft", "export", "rlhf", "infer", "deploy", "eval", "rollout")
DEFAULT_CACHE = Path(os.environ.get("LORAKIT_SWIFT_WHEELS") or Path.home() / ".cache" / "lorakit" / "swift-wheels")
EXIT_NO_INDEX = 3  # pip could not reach the index or download a wheel (tests skip on it)

# The pipeline class each command runs, per major; its `args_class = X` names the argument class.
# A minor whose wheel lacks the module has no such command (`swift rollout` came in 3.4).
PIPELINES = {
    3: {"sft": ("swift.llm.train.sft", "SwiftSft"), "export": ("swift.llm.export.export", "SwiftExport"),
        "rlhf": ("swift.llm.train.rlhf", "SwiftRLHF"), "infer": ("swift.llm.infer.infer", "SwiftInfer"),
        "deploy": ("swift.llm.infer.deploy", "SwiftDeploy"), "eval": ("swift.llm.eval.eval", "SwiftEval"),
        "rollout": ("swift.llm.infer.rollout", "SwiftRolloutDeploy")},
    4: {"sft": ("swift.pipelines.train.sft", "SwiftSft"), "export": ("swift.pipelines.export.export", "SwiftExport"),
        "rlhf": ("swift.pipelines.train.rlhf", "SwiftRLHF"), "infer": ("swift.pipelines.infer.infer", "SwiftInfer"),
        "deploy": ("swift.pipelines.infer.deploy", "SwiftDeploy"), "eval": ("swift.pipelines.eval.eval", "SwiftEval"),
        "rollout": ("swift.pipelines.infer.rollout", "SwiftRolloutDeploy")},
}
# Where transformers defines the class ms-swift inherits (read from transformers' wheels).
TRANSFORMERS_CLASS = ("transformers.training_args_seq2seq", "Seq2SeqTrainingArguments")

# Renames of one setting inside a major (between majors, lorakit.swiftflags.RENAMED has them):
# old -> (new, evidence), per command. Only a replacement a user can switch to as is.
_SFT_AND_EXPORT_3 = {
    # 3.3 template_args.py: `tools_prompt: str = 'react_en'` became `agent_template`, which takes
    # the same names (react_en, ...) and feeds the template the same way.
    "tools_prompt": ("agent_template", "3.3 base_args/template_args.py"),
    # 3.4 data_args.py: `enable_cache: bool = False` ("load dataset from cache file") became
    # `load_from_cache_file: bool = True`, same meaning (the default flipped).
    "enable_cache": ("load_from_cache_file", "3.4 base_args/data_args.py"),
}
RENAMES: dict[int, dict[str, dict[str, tuple[str, str]]]] = {
    3: {
        "sft": {
            **_SFT_AND_EXPORT_3,
            # 3.3 trainers/arguments.py: `train_sampler_random: bool = True` became
            # `train_dataloader_shuffle: bool = True` at the same place, same use.
            "train_sampler_random": ("train_dataloader_shuffle", "3.3 trainers/arguments.py"),
            # 3.3: tuner_args.py `use_liger` gone; trainers/arguments.py `use_liger_kernel` (the
            # transformers field) checks is_liger_available() as use_liger did.
            "use_liger": ("use_liger_kernel", "3.3 trainers/arguments.py"),
            # 3.6 trainers/arguments.py: `eval_datasets` / `eval_datasets_args` (evalscope
            # datasets during training) became `eval_dataset` / `eval_dataset_args`.
            "eval_datasets": ("eval_dataset", "3.6 trainers/arguments.py"),
            "eval_datasets_args": ("eval_dataset_args", "3.6 trainers/arguments.py"),
            # 3.12 train_args.py: the Lark-only `swanlab_lark_webhook_url` / `swanlab_lark_secret`
            # became `swanlab_webhook_url` / `swanlab_secret` (with swanlab_notification_method,
            # whose choices include 'lark').
            "swanlab_lark_webhook_url": ("swanlab_webhook_url", "3.12 llm/argument/train_args.py"),
            "swanlab_lark_secret": ("swanlab_secret", "3.12 llm/argument/train_args.py"),
        },
        "export": dict(_SFT_AND_EXPORT_3),
        # infer, deploy and eval parse base_args like export; rollout came in 3.4, after both renames
        "infer": dict(_SFT_AND_EXPORT_3),
        "deploy": dict(_SFT_AND_EXPORT_3),
        "eval": dict(_SFT_AND_EXPORT_3),
    },
    4: {
        # 4.0 base_args.py kept `train_type: Optional[str] = None  # compat swift3.x` (copied into
        # tuner_type with a deprecation warning); 4.1 dropped it. Every command parses base_args.
        command: {"train_type": ("tuner_type", "4.0 arguments/base_args/base_args.py")}
        for command in ("sft", "export", "rlhf", "infer", "deploy", "eval", "rollout")
    },
}
# RLHFArguments inherits the sft class (3.x TrainArguments, 4.x SftArguments): the same renames.
RENAMES[3]["rlhf"] = dict(RENAMES[3]["sft"])

VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:\.post(\d+))?$")  # no rc/dev: released versions only


class NoIndex(RuntimeError):
    """pip could not list or download: no network, or no such release."""


def version_key(text: str) -> tuple[int, ...]:
    found = VERSION.match(text)
    if not found:
        raise ValueError(text)
    return tuple(int(g or 0) for g in found.groups())


def minor_of(version: str) -> str:
    return ".".join(version.split(".")[:2])


# ---------------------------------------------------------------------------------------------
# Which versions, and their wheels


def pip(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env, timeout=300)


def released(package: str) -> list[str]:
    """Every released version of `package`, from `pip index versions` (pip's configured index)."""
    done = pip("index", "versions", package)
    found = re.search(r"^Available versions: (.*)$", done.stdout, re.M)
    if done.returncode != 0 or not found:
        raise NoIndex(f"pip index versions {package} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return [v.strip() for v in found.group(1).split(",") if VERSION.match(v.strip())]


def cached(cache: Path, package: str) -> list[str]:
    stem = package.replace("-", "_")
    found = (re.fullmatch(rf"{stem}-(.+)-py3-none-any\.whl", p.name) for p in cache.glob(f"{stem}-*.whl"))
    return [m.group(1) for m in found if m and VERSION.match(m.group(1))]


def last_patches(versions: list[str]) -> list[str]:
    """The newest release of each 3.x/4.x minor (3.1.1.post1 over 3.1.1), oldest minor first."""
    best: dict[tuple[int, int], str] = {}
    for version in versions:
        key = version_key(version)
        if key[0] in MAJORS and (key[:2] not in best or key > version_key(best[key[:2]])):
            best[key[:2]] = version
    return [best[k] for k in sorted(best)]


def wheel(package: str, version: str, cache: Path, offline: bool) -> Path:
    path = cache / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
    if path.is_file():
        return path
    if offline:
        raise NoIndex(f"{path} is not in the cache (--offline)")
    cache.mkdir(parents=True, exist_ok=True)
    done = pip("download", "--no-deps", "--only-binary=:all:", f"{package}=={version}", "-d", str(cache))
    if done.returncode != 0 or not path.is_file():
        raise NoIndex(f"pip download {package}=={version} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return path


def prefetch(package: str, versions: list[str], cache: Path, offline: bool) -> None:
    """Download the missing wheels four at a time (one pip per version: pip refuses two
    versions of one package in one command); a cold cache takes about a minute, not three."""
    from concurrent.futures import ThreadPoolExecutor

    missing = [v for v in versions if not (cache / f"{package.replace('-', '_')}-{v}-py3-none-any.whl").is_file()]
    if offline or not missing:
        return
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda v: wheel(package, v, cache, offline), missing))


def transformers_bound(metadata: str) -> tuple[int, ...]:
    """The `transformers<X` upper bound in a wheel's METADATA, as a version key."""
    for line in metadata.splitlines():
        found = re.match(r"^Requires-Dist: transformers\s*\(?([^;]*?)\)?\s*(;|$)", line)
        if found:
            for spec in found.group(1).split(","):
                spec = spec.strip()
                if spec.startswith("<") and not spec.startswith("<="):
                    parts = [int(p) for p in spec[1:].strip().split(".")]
                    return tuple(parts + [0] * (4 - len(parts)))
    raise RuntimeError("no transformers<X requirement in METADATA")


def newest_below(versions: list[str], bound: tuple[int, ...]) -> str:
    return max((v for v in versions if version_key(v) < bound), key=version_key)


# ---------------------------------------------------------------------------------------------
# Reading the source


class Source:
    """One package of a wheel (`swift`, `transformers`), parsed on demand; names resolved the
    way imports resolve them."""

    def __init__(self, path: Path, root: str = "swift"):
        self.zip = zipfile.ZipFile(path)
        self.root = root
        self.files = {name for name in self.zip.namelist() if name.startswith(root + "/") and name.endswith(".py")}
        self.trees: dict[str, ast.Module | None] = {}

    def metadata(self) -> str:
        name = next(n for n in self.zip.namelist() if n.endswith(".dist-info/METADATA"))
        return self.zip.read(name).decode("utf-8", "replace")

    def module_file(self, module: str) -> str | None:
        base = module.replace(".", "/")
        for name in (base + ".py", base + "/__init__.py"):
            if name in self.files:
                return name
        return None

    def tree(self, module: str) -> ast.Module | None:
        if module not in self.trees:
            name = self.module_file(module)
            self.trees[module] = None if name is None else ast.parse(self.zip.read(name), filename=name)
        return self.trees[module]

    def is_package(self, module: str) -> bool:
        return (self.module_file(module) or "").endswith("/__init__.py")

    def absolute(self, module: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        package = module if self.is_package(module) else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        return f"{package}.{node.module}" if node.module else package

    def find(self, module: str, name: str, seen: frozenset = frozenset()) -> tuple[str, str] | tuple[str, ast.ClassDef]:
        """Where `name` in `module` comes from: ("class", ClassDef) inside the package,
        ("external", 'transformers.X') outside it, ("missing", why) otherwise."""
        if (module, name) in seen:
            return "missing", f"import cycle at {module}.{name}"
        seen = seen | {(module, name)}
        if module.split(".")[0] != self.root:
            return "external", f"{module}.{name}"
        tree = self.tree(module)
        if tree is None:
            return "missing", f"no module {module}"
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                return "class", node
        for node in ast.walk(tree):  # TYPE_CHECKING blocks of lazy modules included
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        return self.find(self.absolute(module, node), alias.name, seen)
            elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "_import_structure" for t in node.targets):
                try:  # ms-swift's lazy modules: {'submodule': ['Name', ...]}
                    lazy = ast.literal_eval(node.value)
                except ValueError:
                    continue
                for sub, names in lazy.items():
                    if name in names:
                        return self.find(f"{module}.{sub}", name, seen)
        if self.module_file(f"{module}.{name}"):
            return "missing", f"{module}.{name} is a module"
        return "missing", f"{name} not found in {module}"

    def module_of(self, cls: ast.ClassDef) -> str:
        for module, tree in self.trees.items():
            if tree is not None and cls in tree.body:
                return module
        raise LookupError(cls.name)

    def args_class(self, module: str, pipeline: str) -> tuple[str, ast.ClassDef]:
        kind, cls = self.find(module, pipeline)
        if kind != "class":
            raise RuntimeError(f"{module}.{pipeline}: {cls}")
        for node in cls.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "args_class" for t in node.targets):
                if not isinstance(node.value, ast.Name):
                    raise RuntimeError(f"{module}.{pipeline}.args_class is not a plain name")
                kind, found = self.find(module, node.value.id)
                if kind != "class":
                    raise RuntimeError(f"{module}.{pipeline}.args_class = {node.value.id}: {found}")
                return node.value.id, found
        raise RuntimeError(f"{module}.{pipeline} has no args_class")

    def fields(self, cls: ast.ClassDef) -> tuple[set[str], list[str], list[str]]:
        """(ms-swift-own init fields, the ms-swift classes read, the external bases) of `cls`."""
        own: set[str] = set()
        classes: list[str] = []
        external: list[str] = []
        todo = [(self.module_of(cls), cls)]
        done: set[int] = set()
        while todo:
            module, node = todo.pop()
            if id(node) in done:
                continue
            done.add(id(node))
            classes.append(f"{module}.{node.name}")
            if _is_dataclass(node):
                own |= _init_fields(node)
            for base in node.bases:
                if isinstance(base, ast.Name):
                    kind, found = self.find(module, base.id)
                elif isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name):
                    kind, found = self.find(module, base.value.id)
                    if kind == "external":
                        found = f"{found}.{base.attr}"
                    elif kind != "missing":
                        raise RuntimeError(f"{module}.{node.name}: base {ast.unparse(base)} not understood")
                else:
                    raise RuntimeError(f"{module}.{node.name}: base {ast.unparse(base)} not understood")
                if kind == "class":
                    todo.append((self.module_of(found), found))
                elif kind == "external":
                    external.append(found)
                else:
                    raise RuntimeError(f"{module}.{node.name}: base {ast.unparse(base)}: {found}")
        return own, sorted(classes), sorted(set(external))


    def mro(self, cls: ast.ClassDef) -> list[tuple[str, ast.ClassDef]]:
        """The ms-swift classes of `cls.__mro__` in Python's (C3) order, as (module, class); bases
        outside the package are left out (transformers' fields are not tracked)."""
        module = self.module_of(cls)
        bases = []
        for base in cls.bases:
            kind, found = self.find(module, base.id) if isinstance(base, ast.Name) else ("external", None)
            if kind == "class":
                bases.append((self.module_of(found), found))
        merged = [self.mro(found) for _, found in bases] + [bases]
        out = [(module, cls)]
        while any(merged):
            merged = [seq for seq in merged if seq]
            head = next(seq[0] for seq in merged
                        if not any(seq[0][1] is other[1] for rest in merged for other in rest[1:]))
            out.append(head)
            merged = [[c for c in seq if c[1] is not head[1]] for seq in merged]
        return out

    def choices(self, cls: ast.ClassDef) -> dict[str, list[str] | None]:
        """Each init field's choices as HfArgumentParser makes them (Literal args, Enum values;
        None: a field without choices), from the class that declares it nearest in the MRO.
        A field whose annotation this cannot read is left out: nothing is claimed for it."""
        out: dict[str, list[str] | None] = {}
        for module, node in reversed(self.mro(cls)):
            if not _is_dataclass(node):
                continue
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) \
                        and item.target.id in _init_fields(node):
                    out.pop(item.target.id, None)
                    read = self.annotation_choices(module, item.annotation)
                    if read is not UNREADABLE:
                        out[item.target.id] = read
        return out

    def annotation_choices(self, module: str, hint: ast.expr):
        """transformers.hf_argparser._parse_dataclass_field: Optional[X] and Union[X, str] are X;
        then Literal[...] gives its args, an Enum subclass its members' values."""
        if isinstance(hint, ast.Constant) and isinstance(hint.value, str):
            hint = ast.parse(hint.value, mode="eval").body
        if isinstance(hint, ast.Subscript) and _name(hint.value) in ("Optional", "Union"):
            args = hint.slice.elts if isinstance(hint.slice, ast.Tuple) else [hint.slice]
            rest = [a for a in args if not (isinstance(a, ast.Constant) and a.value is None) and _name(a) != "NoneType"]
            if _name(hint.value) == "Union" and len(rest) == 2 and _name(rest[1]) == "str":
                rest = rest[:1]  # Union[X, str] -> X (HfArgumentParser filters the str out)
            elif _name(hint.value) == "Union" and len(rest) == 2 and _name(rest[0]) == "str":
                rest = rest[1:]
            if len(rest) != 1:
                return None if any(_name(a) == "str" for a in rest) else UNREADABLE
            hint = rest[0]
        if isinstance(hint, ast.Subscript) and _name(hint.value) == "Literal":
            args = hint.slice.elts if isinstance(hint.slice, ast.Tuple) else [hint.slice]
            if not all(isinstance(a, ast.Constant) for a in args):
                return UNREADABLE
            # as text, None as 'None', as lorakit's snapshot writes them (gen_swift_flags._choices)
            return [str(a.value) for a in args]
        if isinstance(hint, ast.Subscript):
            return None  # List[...], Dict[...]: no choices
        name = _name(hint)
        if name in PLAIN_TYPES:
            return None
        if isinstance(hint, ast.Name):
            kind, found = self.find(module, hint.id)
            if kind == "class" and any(_name(b) == "Enum" or _name(b).endswith("Enum") for b in found.bases):
                return [str(item.value.value) for item in found.body if isinstance(item, ast.Assign)
                        and isinstance(item.value, ast.Constant)]
        return UNREADABLE


UNREADABLE = object()  # an annotation the choices reader does not understand
PLAIN_TYPES = {"str", "int", "float", "bool", "dict", "list", "Any", "Path"}


def _name(node: ast.expr) -> str:
    """`Literal` for Literal and typing.Literal; '' for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _is_dataclass(node: ast.ClassDef) -> bool:
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if (isinstance(target, ast.Name) and target.id == "dataclass") or (
                isinstance(target, ast.Attribute) and target.attr == "dataclass"):
            return True
    return False


def _init_fields(node: ast.ClassDef) -> set[str]:
    """The class's own dataclass fields that __init__ takes (HfArgumentParser skips init=False)."""
    out = set()
    for item in node.body:
        if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
            continue
        hint = ast.unparse(item.annotation)
        if re.match(r"^(typing\.)?(ClassVar|InitVar)\b|^(dataclasses\.)?InitVar\b", hint.strip("'\"")):
            continue
        value = item.value
        if (isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", None)) == "field"
                and any(k.arg == "init" and isinstance(k.value, ast.Constant) and k.value.value is False
                        for k in value.keywords)):
            continue
        out.add(item.target.id)
    return out


def read_version(source: Source, major: int) -> dict:
    out = {}
    for command, (module, pipeline) in PIPELINES[major].items():
        if source.module_file(module) is None:
            continue  # no such command in this minor
        name, cls = source.args_class(module, pipeline)
        own, classes, external = source.fields(cls)
        out[command] = {"arguments_class": name, "flags": own, "classes": classes, "external": external,
                        "choices": source.choices(cls)}
    return out


def transformers_fields(path: Path) -> set[str]:
    source = Source(path, root="transformers")
    kind, cls = source.find(*TRANSFORMERS_CLASS)
    if kind != "class":
        raise RuntimeError(f"{path.name}: {cls}")
    own, _, external = source.fields(cls)
    if external:
        raise RuntimeError(f"{path.name}: {TRANSFORMERS_CLASS[1]} has bases outside transformers: {external}")
    return own


# ---------------------------------------------------------------------------------------------
# The history


def snapshot(major: int) -> dict:
    path = DATA / f"swift_flags_v{major}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def snapshot_transformers(major: int) -> str | None:
    return snapshot(major).get("transformers_version")


def choice_runs(major: int, command: str, flags: dict, having: list[tuple[str, str]], per_version: dict,
                minors: list[str]) -> dict[str, list[dict]]:
    """Per flag, the runs of minors whose choices differ from the snapshot's: [{first, last,
    choices}], choices null for a minor without choices. Only ms-swift's own flags (`flags`)
    that the snapshot has: a removed flag has no snapshot entry to check a value against."""
    snap = snapshot(major)
    table = snap.get("commands", {}).get(command, {}).get("flags", {})
    out: dict[str, list[dict]] = {}
    for name in sorted(set(flags) & set(table)):
        baseline = table[name]["choices"]
        runs: list[dict] = []
        for version, minor in having:
            if name not in per_version[version][command]["flags"]:
                continue
            read = per_version[version][command]["choices"].get(name, UNREADABLE)
            if read is UNREADABLE:
                raise SystemExit(f"ms-swift {version} {command}: cannot read the choices of {name}: extend this script")
            if version == snap.get("swift_version") and read != baseline:
                raise SystemExit(f"ms-swift {version} {command} {name}: choices {read} read from the wheel, "
                                 f"{baseline} in the snapshot: extend this script")
            if read == baseline:
                continue
            last = runs[-1] if runs else None
            if last and last["choices"] == read and minors.index(last["last"]) + 1 == minors.index(minor):
                last["last"] = minor
            else:
                runs.append({"first": minor, "last": minor, "choices": read})
        if runs:
            out[name] = runs
    return out


def build(versions: list[str], cache: Path, offline: bool, log=print,
          pinned_transformers: dict[str, list[str]] | None = None) -> dict:
    per_version: dict[str, dict] = {}
    bounds: dict[str, tuple[int, ...]] = {}
    prefetch("ms-swift", versions, cache, offline)
    if pinned_transformers is not None:
        prefetch("transformers", sorted({v for vs in pinned_transformers.values() for v in vs}), cache, offline)
    for version in versions:
        start = time.perf_counter()
        source = Source(wheel("ms-swift", version, cache, offline))
        per_version[version] = read_version(source, version_key(version)[0])
        bounds[version] = transformers_bound(source.metadata())
        log(f"  ms-swift {version}: " + ", ".join(f"{c} {d['arguments_class']} {len(d['flags'])} fields"
                                                  for c, d in per_version[version].items())
            + f" ({time.perf_counter() - start:.1f} s)")
    if pinned_transformers is None:
        tf_versions = cached(cache, "transformers") if offline else released("transformers")
    majors: dict[str, dict] = {}
    for major in MAJORS:
        mine = [v for v in versions if version_key(v)[0] == major]
        if not mine:
            continue
        minors = [minor_of(v) for v in mine]
        if pinned_transformers is not None:
            wanted = list(pinned_transformers[str(major)])
        else:  # the newest transformers each minor allows, and the snapshot's
            wanted = {newest_below(tf_versions, bounds[v]) for v in mine}
            if snapshot_transformers(major):
                wanted.add(snapshot_transformers(major))
            wanted = sorted(wanted, key=version_key)
            prefetch("transformers", wanted, cache, offline)
        inherited: set[str] = set()
        for tf in wanted:
            start = time.perf_counter()
            inherited |= transformers_fields(wheel("transformers", tf, cache, offline))
            log(f"  transformers {tf} ({time.perf_counter() - start:.1f} s)")
        commands = {}
        for command in COMMANDS:
            present = {minor: per_version[v][command]["flags"] if command in per_version[v] else set()
                       for v, minor in zip(mine, minors)}
            having = [(v, minor) for v, minor in zip(mine, minors) if command in per_version[v]]
            seen = sorted(set().union(*present.values()))
            bases = sorted({e for v, _ in having for e in per_version[v][command]["external"]})
            if any(b.rpartition(".")[2] != TRANSFORMERS_CLASS[1] for b in bases):
                raise SystemExit(f"ms-swift {major}.x {command}: bases outside ms-swift {bases}: extend this script")
            # only a class that inherits transformers' gets its fields (export's are all ms-swift's)
            overrides = sorted(n for n in seen if n in inherited) if bases else []
            flags = {}
            for name in seen:
                if name in overrides:
                    continue
                have = [m for m in minors if name in present[m]]
                entry = {"first": have[0], "last": have[-1]}
                gaps = [m for m in minors[minors.index(have[0]):minors.index(have[-1]) + 1] if m not in have]
                if gaps:  # dropped in one minor and back in a later one
                    entry["gaps"] = gaps
                flags[name] = entry
            names = sorted({per_version[v][command]["arguments_class"] for v, _ in having})
            commands[command] = {
                "arguments_class": names[0] if len(names) == 1 else
                {minor: per_version[v][command]["arguments_class"] for v, minor in having},
                "transformers_bases": bases,
                "overrides_transformers": overrides,
                "flags": flags,
                **({"first_minor": having[0][1]} if having[0][1] != minors[0] else {}),
                "renamed": {old: new for old, (new, _) in sorted(RENAMES.get(major, {}).get(command, {}).items())},
                "choices": choice_runs(major, command, flags, having, per_version, minors),
            }
            check_renames(major, command, commands[command], minors)
        majors[str(major)] = {"minors": dict(zip(minors, mine)), "transformers": wanted, "commands": commands}
    return {
        "generated_by": GENERATED_BY,
        "about": ("per major: the last patch of each minor read; per command: ms-swift's own fields "
                  "(first/last minor, gaps: minors without it in between), leaving out transformers' "
                  "Seq2SeqTrainingArguments fields (of the transformers versions listed), which the "
                  "snapshot covers for every minor; renamed: old -> its replacement; choices: per flag, "
                  "the runs of minors whose Literal/Enum choices differ from the snapshot's (null: none), "
                  "every other minor the flag lives in has the snapshot's"),
        "majors": majors,
    }


def check_renames(major: int, command: str, data: dict, minors: list[str]) -> None:
    flags = data["flags"]
    for old, new in data["renamed"].items():
        if old not in flags:
            raise SystemExit(f"RENAMES[{major}][{command}]: {old} is not an ms-swift {major}.x field")
        if new not in flags and new not in data["overrides_transformers"]:
            raise SystemExit(f"RENAMES[{major}][{command}]: {new} is not an ms-swift {major}.x field")
        if new in flags and minors.index(flags[old]["last"]) >= minors.index(flags[new]["last"]):
            raise SystemExit(f"RENAMES[{major}][{command}]: {old} outlives {new}")


def render(data: dict) -> str:
    """Indented JSON, but one line per flag: the file stays small and diffs stay readable."""
    text = json.dumps(data, indent=1, ensure_ascii=False)
    text = re.sub(r'\{\n\s+"first": ("[^"]+"),\n\s+"last": ("[^"]+")(,\n\s+"gaps": \[[^\]]*\])?\n\s+\}',
                  lambda m: '{"first": %s, "last": %s%s}' % (
                      m.group(1), m.group(2), re.sub(r"\s+", " ", m.group(3) or "").replace("[ ", "[").replace(" ]", "]")),
                  text)
    # one line per run of choices: {"first": ..., "last": ..., "choices": [...]}
    text = re.sub(r'\{\n\s+"first": "[^"]+",\n\s+"last": "[^"]+",\n\s+"choices": (null|\[[^\]]*\])\n\s+\}',
                  lambda m: json.dumps(json.loads(m.group(0)), ensure_ascii=False), text)
    return text + "\n"


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"wheel cache (default {DEFAULT_CACHE})")
    cli.add_argument("--offline", action="store_true", help="use only the wheels in the cache; never run pip")
    cli.add_argument("--versions", help="comma-separated ms-swift versions instead of each minor's last patch")
    cli.add_argument("--pinned", action="store_true",
                     help=f"rebuild from exactly the ms-swift and transformers versions {OUT.name} lists "
                          "(reproducible: new releases do not change the answer)")
    cli.add_argument("--stdout", action="store_true", help="print the history instead of writing it")
    cli.add_argument("--check", action="store_true", help=f"exit 1 if {OUT.name} differs from a fresh build")
    cli.add_argument("--out", type=Path, default=OUT, help=argparse.SUPPRESS)
    args = cli.parse_args(argv)

    def log(*parts):
        print(*parts, file=sys.stderr, flush=True)

    start = time.perf_counter()
    pinned = None
    try:
        if args.pinned:
            committed = json.loads(args.out.read_text(encoding="utf-8"))["majors"]
            versions = [v for data in committed.values() for v in data["minors"].values()]
            pinned = {major: data["transformers"] for major, data in committed.items()}
        elif args.versions:
            versions = [v.strip() for v in args.versions.split(",") if v.strip()]
        else:
            versions = last_patches(cached(args.cache, "ms-swift") if args.offline else released("ms-swift"))
        versions.sort(key=version_key)
        log(f"ms-swift {', '.join(versions)} (cache {args.cache})")
        text = render(build(versions, args.cache, args.offline, log, pinned))
    except NoIndex as err:
        log(f"gen_swift_history: {err}")
        return EXIT_NO_INDEX
    log(f"built in {time.perf_counter() - start:.1f} s")
    if args.stdout:
        sys.stdout.write(text)
        return 0
    return write_or_check(args.out, text, args.check, GENERATED_BY, log)


def write_or_check(out: Path, text: str, check: bool, generated_by: str, log) -> int:
    """Write the generated file, or with `check` exit 1 when the committed one differs (the drift tests)."""
    if check:
        old = out.read_text(encoding="utf-8") if out.is_file() else ""
        if old != text:
            log(f"{out} is stale: run python {generated_by}")
            return 1
        log(f"{out} is up to date")
        return 0
    out.write_text(text, encoding="utf-8")
    log(f"wrote {out} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
