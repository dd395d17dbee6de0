"""What a check says about a job: level, stable code, where, what, how to fix."""

from __future__ import annotations

from dataclasses import dataclass

ERROR, WARNING, INFO = "error", "warning", "info"
_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning | info
    code: str  # stable, e.g. "lora.rank.range"
    message: str
    hint: str = ""
    key: str = ""  # the preset key it concerns, e.g. "args.lora_rank"
    file: str = ""  # the preset file that set that key, when known

    def as_dict(self) -> dict:
        return {
            "level": self.level,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "key": self.key,
            "file": self.file,
        }


def about(job, level: str, code: str, key: str, message: str, hint: str = "") -> Finding:
    """A finding about `key` ('args.lora_rank', 'launch.gpus'), naming the file or option that set
    it (for the GPU list and the rank count, where lorakit.job says they came from)."""
    source = job.source_of(key)
    if key == "launch.gpus" and job.launch.gpus_source:
        source = job.launch.gpus_source
    if key == "launch.nproc_per_node" and job.launch.nproc_source:
        source = job.launch.nproc_source
    return Finding(level, code, message, hint=hint, key=key, file=source)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: _ORDER.get(f.level, 9))

