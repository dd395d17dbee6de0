"""ms-swift's model registry as lorakit reads it offline: the snapshot of every model_type, its
templates and registered hub names (src/lorakit/data/swift_models_v*.json, written by
scripts/gen_swift_models.py), the name ms-swift gives a model path, how a name picks among
several model_types, and a checkpoint dir's args.json. No ms-swift import: the dry-run stays
instant. checks/model.py and checks/modelage.py ask it.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=None)
def swift_models(major: int) -> dict | None:
    path = Path(__file__).resolve().parent / "data" / f"swift_models_v{major}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# How ms-swift names a model (swift/model/model_meta.py:146 get_model_name, 4.6.0; 3.12.6:
# swift/llm/model/register.py:521): a Hugging Face (4.x also ModelScope) cache snapshot is named
# after its repo, anything else after its last path part with ModelScope's '___' as '.'.
_CACHE_NAME = {4: (re.compile(r"/models--(?:.+?--)?(.+?)/snapshots/"),
                   re.compile(r"/models/(?:.+?--)?(.+?)/snapshots/")),
               3: (re.compile(r"/models--.+?--(.+?)/snapshots/"),)}


def model_name(model: str, major: int = 4) -> str:
    """ms-swift's get_model_name: what it calls a model (its model_suffix, in default dir names)."""
    model = model.rstrip("/")
    for pattern in _CACHE_NAME.get(major, _CACHE_NAME[4]):
        match = pattern.search(model)
        if match is not None:
            return match.group(1)
    return model.rsplit("/", 1)[-1].replace("___", ".")


def swift_model_name(model: str, major: int = 4) -> str:
    """The name ms-swift matches against its registered hub ids, lowercased as it compares it."""
    return model_name(model, major).lower()


_SEP = re.compile(r"[-_\s/]+")


@lru_cache(maxsize=None)
def _generic() -> "re.Pattern[str]":
    """Name parts that say nothing about the family: sizes and versions alone, and the usual
    suffixes (compiled on first use, a hint's path: ~0.3 ms at import otherwise)."""
    return re.compile(r"^(v?\d+(\.\d+)*[bmkt]?|a\d+(\.\d+)?b|\d+k|it|hf|ms|base|chat|instruct|sft|dpo|lora|"
                      r"merged|finetuned?|ft|awq|gptq|int[348]|fp8|bnb|nf4|\d+bit|gguf|preview|tiny|random|test)$")


def _tokens(name: str) -> list[str]:
    return [t for t in _SEP.split(name.lower()) if t]


def _cue(ours: list[str], theirs: list[str]) -> tuple[int, int]:
    """How much of the longest run of name parts two names share says about the family:
    (characters of its non-generic parts, characters in all), (0, 0) when nothing specific."""
    best = (0, 0)
    for i in range(len(ours)):
        for j in range(len(theirs)):
            k = 0
            while i + k < len(ours) and j + k < len(theirs) and ours[i + k] == theirs[j + k]:
                k += 1
            run = ours[i:i + k]
            score = (sum(len(t) for t in run if not _generic().match(t)), sum(len(t) for t in run))
            if score[0] and score > best:
                best = score
    return best


class Registry:
    """One ms-swift version's model registry (scripts/gen_swift_models.py) and its rules."""

    def __init__(self, table: dict, major: int):
        self.table, self.major = table, major
        self.types = table.get("model_types") or {}
        self.templates = table.get("templates") or []

    def own_template(self, model_type: str, matched: str | None) -> str | None:
        """The template ms-swift takes without --template (4.x swift/template/register.py:36-47:
        the matched group's or the model type's own, else its only candidate); None if it cannot."""
        meta = self.types.get(model_type) or {}
        if matched is not None and self.table["names"].get(matched) == model_type:
            # 4.x get_matched_model_meta (model_meta.py:165-174) lays the matched group over the
            # meta, and keeps it when model_type is the matched one (model_meta.py:285-286)
            template = self.table.get("name_templates", {}).get(matched) or meta.get("template")
        else:
            template = meta.get("template")
        if template:
            return template
        candidates = meta.get("candidates") or []
        return candidates[0] if len(candidates) == 1 else None

    def candidates(self, model_type: str) -> list[str]:
        meta = self.types.get(model_type) or {}
        return meta.get("candidates") or ([meta["template"]] if meta.get("template") else [])

    def pick(self, name: str, types: list[str]) -> tuple[str, str, str | None]:
        """(model_type, template, the registered name that decided it) for a model called `name`
        among `types`: the registered names that share the most telling run of name parts with
        it vote; with no cue, ms-swift's first type and its first template."""
        ours = _tokens(name)
        best, votes = (0, 0), {}
        for theirs, model_type in self.table["names"].items():
            if model_type not in types:
                continue
            score = _cue(ours, _tokens(theirs))
            if score[0] == 0 or score < best:
                continue
            if score > best:
                best, votes = score, {}
            template = self.own_template(model_type, theirs)
            if template is None:
                continue
            votes.setdefault((model_type, template), []).append(theirs)
        if votes:
            order = {t: i for i, t in enumerate(types)}

            def rank(item):
                (model_type, template), names = item
                cands = self.candidates(model_type)
                return (-len(names), order[model_type], cands.index(template) if template in cands else 99)

            (model_type, template), names = min(votes.items(), key=rank)
            return model_type, template, min(names, key=lambda n: (len(n), n))
        model_type = types[0]
        template = self.own_template(model_type, None) or next(iter(self.candidates(model_type)), None)
        return model_type, template or "default", None


def args_json(path: Path, major: int) -> tuple[str | None, str | None] | None:
    """(model_type, template) that ms-swift takes from the dir's args.json; None if unreadable.
    4.x (swift/arguments/base_args/base_args.py:285-339, model_meta.py:225-226, template/register.py:
    34-35) keeps its model_type only if ms-swift >= 4 wrote it (base_args.py:330-331), and reads its
    template; 3.x (swift/llm/model/register.py:610-611) reads its model_type only."""
    file = path / "args.json"
    if not file.is_file():
        return (None, None)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):  # nested past the stack: unreadable too
        return None
    if not isinstance(data, dict):
        return None
    model_type, template = data.get("model_type"), data.get("template")
    written = str(data.get("swift_version") or "0")
    if major >= 4 and not (written.split(".")[0].isdigit() and int(written.split(".")[0]) >= 4):
        model_type = None
    if major < 4:
        template = None
    return (model_type if isinstance(model_type, str) else None, template if isinstance(template, str) else None)
