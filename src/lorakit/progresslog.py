"""What ms-swift's log lines say about a training run's step (progress.py draws the bar from it).

What ms-swift 4.x prints (swift/trainers/patcher.py, add_train_message; recorded in
tests/data/progress/): once per `logging_steps`, rank 0 prints the log dict on stdout, floats
already formatted as strings by transformers' ProgressCallback:
    {'loss': '5.772', 'learning_rate': '5e-05', ..., 'global_step/max_steps': '1/2',
     'elapsed_time': '4s', 'remaining_time': '4s', 'train_speed(s/it)': '3.502'}
and between those, its tqdm bar redraws `\\rTrain:  50%|#####     | 1/2 [00:03<00:03,  3.46s/it]`
on stderr. The same dicts go to `logging.jsonl` as JSON. Megatron says 'iteration' for the step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Optional

_STEP = re.compile(r"""['"](?:global_step/max_steps|iteration)['"]\s*:\s*['"]\s*(\d+)\s*/\s*(\d+)\s*['"]""")
_BAR = re.compile(r"^\s*Train:?\s*:\s*\d+%\|[^|]*\|\s*(\d+)/(\d+)\s*\[([0-9:]+)<([0-9:?]+)"
                  r"(?:,\s*([0-9.]+)\s*(s/it|it/s))?")
# Any tqdm frame ('Map: 100%|###| 16/16 [00:00<00:00, ...]'): the next write often follows it on
# the same line, since tqdm ends its frames with no newline.
_FRAME = re.compile(r"[^|]*\d+%\|[^|]*\|[^\[\]]*\[[^\]]*\]")
_DURATION = re.compile(r"(\d+)\s*([dhms])")


@dataclass(frozen=True)
class Step:
    """One progress report from ms-swift; None where this line did not say."""

    step: int
    total: int
    loss: Optional[float] = None
    learning_rate: Optional[float] = None
    remaining: Optional[float] = None  # seconds, ms-swift's (or its tqdm's) own estimate
    sec_per_it: Optional[float] = None
    memory_gib: Optional[float] = None


def _value(text: str, key: str) -> Optional[str]:
    m = re.search(r"""['"]%s['"]\s*:\s*['"]?([^'",}]+)""" % re.escape(key), text)
    return m.group(1).strip() if m else None


def _number(text: Optional[str]) -> Optional[float]:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def parse_duration(text: Optional[str]) -> Optional[float]:
    """ms-swift's format_time ('1d 2h 3m 4s', '27s') or tqdm's ('01:02:03', '00:21') -> seconds."""
    if not text:
        return None
    if ":" in text:
        try:
            parts = [int(p) for p in text.split(":")]
        except ValueError:  # tqdm's '?'
            return None
        return float(sum(p * 60 ** i for i, p in enumerate(reversed(parts))))
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    found = _DURATION.findall(text)
    return float(sum(int(n) * units[u] for n, u in found)) if found else None


def parse_line(text: str) -> Optional[Step]:
    """A log dict (printed, or a logging.jsonl line) or a tqdm 'Train' frame -> Step, else None."""
    m = _STEP.search(text)
    if m:
        step, total = int(m.group(1)), int(m.group(2))
        if not 0 <= step <= total or total == 0:
            return None
        loss = _number(_value(text, "loss"))
        loss = _number(_value(text, "train_loss")) if loss is None else loss  # the closing dict
        return Step(step, total, loss=loss, learning_rate=_number(_value(text, "learning_rate")),
                    remaining=parse_duration(_value(text, "remaining_time")),
                    sec_per_it=_number(_value(text, "train_speed(s/it)")),
                    memory_gib=_number(_value(text, "memory(GiB)")))
    m = _BAR.match(text)
    if m:
        step, total = int(m.group(1)), int(m.group(2))
        if not 0 <= step <= total or total == 0:
            return None
        rate, unit = _number(m.group(5)), m.group(6)
        if rate is not None and unit == "it/s":
            rate = 1 / rate if rate else None
        return Step(step, total, remaining=parse_duration(m.group(4)), sec_per_it=rate)
    return None


def merge(old: Optional[Step], new: Step) -> Step:
    """What the bar shows: the furthest step, and the newest known value of everything else.

    Furthest, not newest: a log dict on stdout may arrive after a tqdm frame on stderr that was
    drawn later (two pipes), and the bar must not step back.
    """
    if old is None or old.total != new.total:
        return new
    keep = {k: getattr(old, k) for k in ("loss", "learning_rate", "remaining", "sec_per_it", "memory_gib")
            if getattr(new, k) is None}
    return replace(new, step=max(old.step, new.step), **keep)


def describe(s: Step) -> str:
    parts = []
    if s.loss is not None:
        parts.append(f"loss {s.loss:.4g}")
    if s.learning_rate is not None:
        parts.append(f"lr {s.learning_rate:.3g}")
    if s.sec_per_it:  # tqdm's habit: it/s when fast, s/it when slow
        parts.append(f"{1 / s.sec_per_it:.2f} it/s" if s.sec_per_it <= 1 else f"{s.sec_per_it:.2f} s/it")
    if s.remaining is not None and s.step < s.total:
        r = int(s.remaining)
        parts.append(f"ETA {r // 3600}:{r // 60 % 60:02d}:{r % 60:02d}")
    if s.memory_gib:
        parts.append(f"{s.memory_gib:g} GiB")
    return "  ".join(parts)
