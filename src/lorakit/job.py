"""A resolved preset becomes one typed Job: the launch layout plus ms-swift's args.

Pure: the caller passes in the environment and the target ms-swift version; nothing here
reads os.environ or starts anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from lorakit import envvars
from lorakit.errors import LorakitError
from lorakit.findings import INFO, Finding
from lorakit.presets import EXPORT_KEYS, Resolved
from lorakit.values import as_int, node_count

# ms-swift reads `--target_modules` as nargs='+': the seed's '[q_proj,k_proj,v_proj]' would be
# ONE module name that no model has, failing only after the weights have loaded.
SPLIT_LIST_KEYS = ("target_modules", "modules_to_save", "report_to")
GPU_ID = re.compile(r"^([0-9]+|GPU-[0-9A-Fa-f-]+|MIG-[0-9A-Za-z/-]+)$")  # CUDA reads ASCII digits only
PER_RANK = re.compile(r"^gpus\s*/\s*(\d+)$")


@dataclass(frozen=True)
class Launch:
    gpus: str | None = None  # CUDA_VISIBLE_DEVICES text, normalised ("0,1,2")
    gpus_source: str = ""
    device_var: str = "CUDA_VISIBLE_DEVICES"  # or ASCEND_RT_VISIBLE_DEVICES / MUSA_VISIBLE_DEVICES
    nproc_per_node: int | None = None  # NPROC_PER_NODE, or None for a plain single process
    nproc_rule: Any = None  # what the preset said: an int, "auto", "gpus/2", or None
    nproc_source: str = ""
    nnodes: Any = None
    node_rank: Any = None
    master_addr: Any = None
    master_port: Any = None
    # launch keys only the sbatch/Kubernetes exports read (presets.EXPORT_KEYS), as written
    export: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def nodes(self) -> int | None:
        """The node count: 1 when unset, None when it is not a whole number >= 1 (checks say why)."""
        return node_count(self.nnodes)

    @property
    def node_total(self) -> int:
        """The node count for arithmetic: an invalid one (reported by the checks) counts as 1."""
        return self.nodes or 1

    @property
    def gpu_ids(self) -> list[str] | None:
        """The GPU list, or None when unset or not a clean list (checks say why)."""
        if self.gpus is None:
            return None
        ids = [g.strip() for g in str(self.gpus).split(",")]
        if not all(GPU_ID.match(g) for g in ids) or len(set(ids)) != len(ids):
            return None
        return ids


@dataclass(frozen=True)
class Job:
    command: str  # sft | export
    launch: Launch
    args: dict[str, Any]  # internal (ms-swift 4.x) flag names, in preset order
    preset: str
    sources: dict[str, str] = field(default_factory=dict)
    swift_major: int = 4
    swift_version: str | None = None  # the installed ms-swift, when the target came from it
    swift_source: str = ""
    adjustments: tuple[Finding, ...] = ()  # what lorakit changed on the way, said as findings
    env: dict[str, str] = field(default_factory=dict)  # the preset's env: section, as text

    def source_of(self, dotted: str) -> str:
        return self.sources.get(dotted, "")

    @property
    def sharding(self) -> str | None:
        """'deepspeed' or 'fsdp' when the job shards with one, else None."""
        return next((key for key in ("deepspeed", "fsdp") if self.args.get(key) not in (None, "", False)), None)

    @property
    def world_size(self) -> int:
        return (self.launch.nproc_per_node or 1) * self.launch.node_total


def split_module_list(value: Any) -> Any:
    """'[q_proj,k_proj]' or 'q_proj,v_proj' -> ['q_proj', 'k_proj']; anything else unchanged.
    (Tracker names, report_to's, hold no commas or spaces either.)"""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    elif "," not in text and not any(ch.isspace() for ch in text):
        return value
    # module names hold no commas or spaces: both separate ('q_proj v_proj' is two modules)
    items = [part.strip("'\"") for part in re.split(r"[,\s]+", text)]
    return [item for item in items if item]


def _normalise_args(args: dict[str, Any], sources: dict[str, str]) -> tuple[dict, list[Finding]]:
    out = dict(args)
    notes: list[Finding] = []
    for key in SPLIT_LIST_KEYS:
        if key in out and isinstance(out[key], str):
            split = split_module_list(out[key])
            if split != out[key]:
                notes.append(Finding(
                    INFO, "args.list_string",
                    f"{key} {out[key]!r} is one string; rendered as separate items: {' '.join(split)}",
                    hint=f"ms-swift would take it as ONE {'tracker' if key == 'report_to' else 'module'} name; "
                         f"write a YAML list: {key}: {split}",
                    key=f"args.{key}", file=sources.get(f"args.{key}", ""),
                ))
                out[key] = split
    return out, notes


def nproc_from_rule(rule: Any, gpu_count: int | None) -> int | None:
    """int -> itself; 'auto' -> one rank per GPU; 'gpus/K' -> K GPUs per rank; None -> None."""
    if rule is None or isinstance(rule, bool):
        return None
    if as_int(rule) is not None:  # 8, 8.0 and "8" are all eight ranks, as the checks read them
        return as_int(rule)
    text = str(rule).strip()
    if gpu_count is None:
        return None
    if text == "auto":
        return gpu_count
    per = PER_RANK.match(text)
    if per and int(per.group(1)) > 0 and gpu_count % int(per.group(1)) == 0:
        return gpu_count // int(per.group(1))
    return None


def from_environment(var: str) -> str:
    return f"{var} in your environment"


def _device_var(env: Mapping[str, str]) -> str:
    """The device list this machine uses: CUDA's, or an NPU's / a Moore Threads GPU's when only
    that one is set (ms-swift sets all three alike: swift/utils/env.py select_device)."""
    return next((var for var in envvars.DEVICE_LISTS if env.get(var) is not None), "CUDA_VISIBLE_DEVICES")


def _pick(name: str, launch: Mapping[str, Any], sources: dict, env: Mapping[str, str], device_var: str):
    """One launch setting and who set it: the command line (--set, --node-rank) > the user's
    environment (ms-swift's own examples are written `NPROC_PER_NODE=2 swift sft ...`, and users
    keep that prefix in front of lorakit) > the preset chain."""
    who = sources.get(f"launch.{name}", "")
    if who.startswith("-") and name in launch:
        return launch[name], who
    var = device_var if name == "gpus" else envvars.VAR[name]
    if env.get(var) is not None:
        return env[var], from_environment(var)
    if launch.get(name) is not None:
        return launch[name], who or "preset"
    return None, ""


def _gpus_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ",".join(str(v).strip() for v in value)
    return ",".join(part.strip() for part in str(value).split(","))


def build_launch(resolved: Resolved, env: Mapping[str, str], *, gpus: str | None = None,
                 nproc: int | None = None) -> tuple[Launch, dict[str, str]]:
    """The launch layout, and the sources of the settings that came from the environment."""
    launch = resolved.data.get("launch") or {}
    device_var = _device_var(env)
    picked = {name: _pick(name, launch, resolved.sources, env, device_var) for name in envvars.VAR}
    if gpus is not None:
        picked["gpus"] = (gpus, "--gpus")
    if nproc is not None:
        picked["nproc_per_node"] = (nproc, "--nproc")
    text = _gpus_text(picked["gpus"][0])
    probe = Launch(gpus=text)
    count = len(probe.gpu_ids) if probe.gpu_ids is not None else None
    rule, rule_source = picked["nproc_per_node"]
    from_env = {f"launch.{name}": who for name, (_, who) in picked.items() if who.endswith("in your environment")}
    return Launch(
        gpus=text, gpus_source=picked["gpus"][1], device_var=device_var,
        nproc_per_node=nproc_from_rule(rule, count), nproc_rule=rule, nproc_source=rule_source,
        nnodes=picked["nnodes"][0], node_rank=picked["node_rank"][0],
        master_addr=picked["master_addr"][0], master_port=picked["master_port"][0],
        export={key: launch[key] for key in EXPORT_KEYS if launch.get(key) is not None},
    ), from_env


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def job_environment(resolved: Resolved, env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The preset's env: section as text. As with launch settings, the command line (--set env.X)
    beats the user's own environment, which beats the preset."""
    out, sources = {}, {}
    for name, value in (resolved.data.get("env") or {}).items():
        who = resolved.sources.get(f"env.{name}", "")
        if not who.startswith("-") and env.get(name) is not None:
            value, sources[f"env.{name}"] = env[name], from_environment(name)
        out[name] = _env_text(value)
    return out, sources


def build_job(resolved: Resolved, env: Mapping[str, str], *, swift_major: int,
              swift_version: str | None = None, swift_source: str = "",
              gpus: str | None = None, nproc: int | None = None) -> Job:
    data = resolved.data
    command = data.get("command")
    if command is None:
        chain = " -> ".join(resolved.chain) or resolved.name
        raise LorakitError(
            f"{resolved.path}: no 'command' in the preset or its parents ({chain})",
            hint="add 'command: sft' (train) or 'command: export' (merge), or extend a built-in",
        )
    # null removes a flag an earlier layer set: past this point a key is set or absent
    given = {k: v for k, v in (data.get("args") or {}).items() if v is not None}
    args, notes = _normalise_args(given, resolved.sources)
    launch, from_env = build_launch(resolved, env, gpus=gpus, nproc=nproc)
    job_env, env_sources = job_environment(resolved, env)
    return Job(
        command=command,
        launch=launch,
        args=args, preset=resolved.name, sources={**resolved.sources, **from_env, **env_sources},
        env=job_env,
        swift_major=swift_major, swift_version=swift_version, swift_source=swift_source,
        adjustments=(*resolved.notes, *notes),
    )
