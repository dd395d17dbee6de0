"""Which `swift sft --loss_type` names an ms-swift release has (src/lorakit/data/swift_loss_types.json,
from every released wheel by scripts/gen_swift_loss_types.py).

argparse takes any text for the flag; the trainer looks it up when it is built, after the model
has loaded (4.x `loss_map[args.loss_type]`, 3.x get_loss_func), so a name the release lacks is a
KeyError a minute in. 4.0 renamed the reranker losses: the 3.x docs' listwise_generative_reranker
is listwise_reranker there, the generative or classification head coming from --task_type.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from lorakit import lossscales

DATA = Path(__file__).resolve().parent / "data" / "swift_loss_types.json"
# 3.x names 4.0 dropped, and the 4.x loss that does the same (swift/loss/reranker.py: one
# pointwise and one listwise loss, for the generative and the classification reranker alike)
RENAMED_IN_4 = {"listwise_generative_reranker": "listwise_reranker", "generative_reranker": "pointwise_reranker",
                "reranker": "pointwise_reranker"}
# and back: a 4.x example run on 3.x (ms-swift #8006), by --task_type
IN_3 = {("pointwise_reranker", "generative_reranker"): "generative_reranker",
        ("pointwise_reranker", "reranker"): "reranker"}
# 3.x losses that 3.8 turned into something else (3.8.3 swift/trainers/trainers.py compute_loss
# applies the template's loss_scale and enable_channel_loss without any loss_type)
REPLACED_IN_3_8 = {"loss_scale": "drop --loss_type: from ms-swift 3.8 the --loss_scale weights apply without one",
                   "channel_loss": "write --enable_channel_loss true instead (from ms-swift 3.8)"}


@lru_cache(maxsize=None)
def _table() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8")) if DATA.is_file() else {"versions": [], "runs": []}


def release(major: int, version: str | None) -> lossscales.Release | None:
    return lossscales.release(major, version, _table())


def where(major: int, name: str, at: lossscales.Release) -> tuple[str | None, str | None]:
    """(the first later release of the major that has the name, the last earlier one that had it)."""
    return lossscales.where(major, name, at, _table())


def stops_at(major: int, name: str, since: str) -> str | None:
    """The first release after `since` that no longer has the name (channel_loss: 3.5.0 to 3.8.0)."""
    return lossscales.stops_at(major, name, since, _table())


def other_major(major: int, name: str) -> tuple[str, str] | None:
    """The first and last release of the other major that has the name (a 3.x name on a 4.x target)."""
    runs = [r for r in _table()["runs"] if r["first"].split(".")[0] != str(major) and name in r["names"]]
    return (runs[0]["first"], runs[-1]["last"]) if runs else None
