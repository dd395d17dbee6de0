"""The packages ms-swift registers a model with (ModelMeta.requires: `transformers>=4.48` for
ModernBERT, `qwen_vl_utils>=0.0.6` for Qwen2-VL), against what this machine has installed.

ms-swift only warns when one is unmet (4.6.0 swift/model/model_meta.py:106-119 check_requires:
"Please install the package: `pip install "transformers>=4.48" -U`.", after the download) and
goes on. Whether the run then fails depends: a config.json whose model_type the installed
transformers does not know cannot be loaded (3.x fails while parsing the arguments, #2799; 4.6.0
catches AutoConfig's error at model_meta.py:212-215 and fails loading the weights), so that,
with ms-swift's own transformers floor unmet and a model_type that a newer transformers does
know, is an error; any other unmet requirement is the warning ms-swift gives, given before the download instead of after it. Only for a launch on this
machine (Facts.here): another machine's packages are unknown.
"""

from __future__ import annotations

import re
from pathlib import Path

from lorakit import modelconfig
from lorakit.checks.facts import Facts
from lorakit.errors import LorakitError
from lorakit.findings import ERROR, WARNING, Finding, about
from lorakit.job import Job
from lorakit.swiftregistry import args_json, swift_model_name, swift_models

_SPEC = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*((?:(?:>=|<=|==|!=|<|>)\s*[0-9][0-9A-Za-z.+]*\s*,?\s*)*)$")
_CLAUSE = re.compile(r"(>=|<=|==|!=|<|>)\s*([0-9][0-9A-Za-z.+]*)")
_RELEASE = re.compile(r"^(\d+(?:\.\d+)*)(.*)$")


def version_key(text: str) -> tuple | None:
    """A comparable form of a version: its release numbers, padded, then 0 for a pre-release
    (5.0.0.dev0, 4.48rc1) and 1 for a release or a local/post build (2.13.0+cpu, 3.3.0.post1)."""
    match = _RELEASE.match(text.strip())
    if not match:
        return None
    numbers = [int(n) for n in match.group(1).split(".")]
    numbers += [0] * (6 - len(numbers))
    rest = match.group(2).lstrip(".").lower()
    pre = bool(rest) and not rest.startswith(("post", "+"))
    return (*numbers[:6], 0 if pre else 1)


def parse(spec: str) -> tuple[str, list[tuple[str, str]]] | None:
    """'transformers>=4.45,<4.49' -> ('transformers', [('>=', '4.45'), ('<', '4.49')]); None for
    what this does not read (markers, extras, URLs): such a requirement is not judged."""
    match = _SPEC.match(spec)
    if not match:
        return None
    return match.group(1), _CLAUSE.findall(match.group(2))


def satisfied(installed: str, clauses: list[tuple[str, str]]) -> bool | None:
    have = version_key(installed)
    if have is None:
        return None
    for op, wanted in clauses:
        want = version_key(wanted)
        if want is None:
            return None
        ok = {">=": have >= want, "<=": have <= want, "==": have == want, "!=": have != want,
              "<": have < want, ">": have > want}[op]
        if not ok:
            return False
    return True


def resolve_model_type(job: Job, table: dict, local: Path | None, config: dict | None) -> str | None:
    """The model_type ms-swift will load with: the user's, else the registered name's, else a
    checkpoint's args.json, else the architecture's only one (checks/model.py says the rest)."""
    given = job.args.get("model_type")
    if given not in (None, ""):
        return str(given)
    name = swift_model_name(str(job.args.get("model")), job.swift_major)
    if name in table.get("names", {}):
        return table["names"][name]
    if local is not None:
        saved = args_json(local, job.swift_major)
        if saved and saved[0]:
            return saved[0]
    if config is not None:
        types = table.get("architectures", {}).get((config.get("architectures") or ["null"])[0], [])
        if len(types) == 1:
            return types[0]
    return None


def config_of(local: Path | None) -> dict | None:
    if local is None:
        return None
    try:
        return modelconfig.read_config(local)
    except LorakitError:
        return None  # checks/model.py check_model_files reports it


def _native(model_type: str) -> bool:
    """Whether a transformers release maps `model_type` (the snapshots list what the transformers
    beside ms-swift 3.12.6 and 4.6.0 know). Loaders that bring their own config class (LLaVA-NeXT's
    llava_qwen, Valley, qwen3_asr: 4.6.0 swift/model/models/llava.py:287-303) never go through
    transformers' mapping, so "unknown to the installed transformers" says nothing for them."""
    return any(model_type in ((swift_models(major) or {}).get("transformers_model_types") or ()) for major in (3, 4))


def swift_packages(job: Job, facts: Facts):
    """The distributions of the environment `swift` runs in (Facts.packages), for a launch here;
    None when that cannot be told, or when its ms-swift is of the other major (the launch refuses
    that: cli/run.py check_swift_matches)."""
    from lorakit.swiftenv import major_of

    packages = facts.packages(job.env) if facts.here else None
    if packages is None:
        return None
    major = major_of(packages.get("ms_swift") or "")
    return None if major is not None and major != job.swift_major else packages


def check_requires(job: Job, facts: Facts) -> list[Finding]:
    model = job.args.get("model")
    if not facts.here or not isinstance(model, str) or not model.strip():
        return []
    if job.command not in ("sft", "pt", "rlhf", "infer", "deploy", "export"):
        return []
    table = swift_models(job.swift_major)
    if table is None:
        return []
    found = facts.find_model(model)
    local = Path(found) if found is not None else None
    config = config_of(local)
    model_type = resolve_model_type(job, table, local, config)
    requires = (table.get("model_types", {}).get(model_type) or {}).get("requires") or []
    if not requires:
        return []
    installed = swift_packages(job, facts)
    if installed is None:
        return []  # which environment `swift` runs in cannot be told: say nothing rather than guess
    from lorakit.sitepackages import normalise

    here = installed.get("ms_swift") or ""
    from lorakit.checks import visionutils

    if visionutils.judged(table, model_type, here):  # its loader checks qwen_vl_utils itself: an error there
        requires = [spec for spec in requires if spec.replace(" ", "") not in visionutils.ENFORCED]
    unmet, floor = [], None
    for spec in requires:
        parsed = parse(spec)
        if parsed is None:
            continue
        name, clauses = parsed
        have = installed.get(normalise(name))
        if have == "":  # installed, its version unknown (a bare NAME.egg-info): not judged
            continue
        ok = False if have is None else satisfied(have, clauses)
        if ok is False:
            unmet.append((spec, name, have))
            if name.lower() == "transformers" and have is not None and any(op in (">=", ">", "==") for op, _ in clauses):
                floor = (spec, have)
    if not unmet:
        return []
    pip = "pip install " + " ".join(f"'{spec}'" for spec, _, _ in unmet) + " -U"
    own = config.get("model_type") if isinstance(config, dict) and not config.get("auto_map") else None
    if floor is not None and isinstance(own, str) and own and _native(own) and facts.transformers_knows(own, job.env) is False:
        spec, have = floor
        return [about(job, ERROR, "model.requires.transformers", "args.model",
                      f"{model}'s config.json has model_type {own!r}, which the installed transformers {have} "
                      f"does not know, and ms-swift registers model_type {model_type} with {spec!r}: loading "
                      "the model fails (ms-swift says only \"Please install the package\")",
                      f"{pip} (ms-swift's own advice), in the environment `swift` runs from")]
    have_text = ", ".join(f"{name} {have}" if have else f"no {name}" for _, name, have in unmet)
    return [about(job, WARNING, "model.requires", "args.model",
                  f"ms-swift registers model_type {model_type} with {', '.join(s for s, _, _ in unmet)}; this "
                  f"machine has {have_text}: ms-swift warns \"Please install the package\" after the download "
                  "and loading or encoding may fail", pip)]


def check_swift_2(job: Job, facts: Facts) -> list[Finding]:
    """An ms-swift 1.x/2.x where `swift` runs (#3321: 3.x flags on a 2.x checkout, which prints 2.x's
    usage and stops): no command lorakit renders runs there, and the launch refuses it
    (cli/run.py check_swift_matches). The other major of 3/4 is not said here: validating for a
    cluster of the other major from this machine is ordinary, and --swift-version says so."""
    if not facts.here:
        return []
    from lorakit.swiftenv import major_of

    have = (facts.packages(job.env) or {}).get("ms_swift") or ""
    if (major_of(have) or 3) >= 3:
        return []
    # --swift-version: perhaps validating for another machine from this one, so said, not refused
    level = WARNING if "--swift-version" in job.swift_source else ERROR
    return [about(job, level, "swift.version.unsupported", "launch.swift",
                  f"the `swift` on PATH runs ms-swift {have}, which takes 2.x flags (--model_id_or_path, --sft_type, "
                  f"--ckpt_dir): it rejects this command, written for ms-swift {job.swift_major}.x, and a lorakit "
                  "launch here refuses that swift",
                  f"pip install 'ms-swift>={job.swift_major},<{job.swift_major + 1}' in the environment `swift` runs "
                  "from")]


CHECKS = [check_requires, check_swift_2]
