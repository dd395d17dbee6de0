"""Where ms-swift downloads a hub adapter that `lorakit merge` is given (`Org/name[:subfolder]`),
and where it then writes the merge: known before the download, so the merge's output can be
guarded (mergeguard.py) like a local one's."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from lorakit.errors import LorakitError
from lorakit.mergeguard import output_for


@dataclass(frozen=True)
class HubDownload:
    """Where ms-swift will download a hub adapter (`Org/name[:subfolder]`), as far as lorakit can
    tell before the download."""

    adapter: str  # as given
    hub: str  # "ModelScope" or "Hugging Face"
    cache: Path  # the repo's directory in that hub's cache: a merge never replaces it
    dir: Optional[Path]  # the adapter dir ms-swift gets back; None when only the download says


def hub_download(adapter: str, *, use_hf: bool) -> HubDownload:
    """ms-swift 4.6.0's swift/hub/hub.py: ModelScope (`snapshot_download`, revision 'master')
    unless USE_HF / --use_hf picks Hugging Face (revision 'main'); the subfolder of `id:sub` is
    joined on (utils/hub_utils.py safe_snapshot_download).

    ModelScope (modelscope_hub 0.5, modelscope 1.40: _download.py `download_repo`) reuses a
    non-empty legacy dir, {cache}[/hub]/models/{owner}/{name, '.' as '___'}, else writes
    {cache}/models/{owner}--{name}/snapshots/master; {cache} is $MODELSCOPE_CACHE or
    ~/.cache/modelscope, resolved. Hugging Face writes {hub cache}/models--{owner}--{name}/
    snapshots/{commit}: the commit of 'main' is known here only from an earlier download's
    refs/main."""
    repo, _, sub = adapter.partition(":")
    owner, name = repo.split("/", 1)
    if use_hf:
        from lorakit.modelinfo import _hf_hub_cache  # huggingface_hub's own precedence

        cache = (_hf_hub_cache() / f"models--{owner}--{name}").resolve()
        try:
            commit = (cache / "refs" / "main").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            commit = ""
        snapshot = cache / "snapshots" / commit if re.fullmatch(r"[0-9a-f]{40}", commit) else None
        found = HubDownload(adapter, "Hugging Face", cache, snapshot)
    else:
        base = Path(os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope").expanduser().resolve()
        safe = name.replace(".", "___")
        legacy = [d for d in (base / "models" / owner / safe, base / "hub" / "models" / owner / safe) if _filled(d)]
        cache = legacy[0] if legacy else base / "models" / f"{owner}--{name}"
        found = HubDownload(adapter, "ModelScope", cache, cache if legacy else cache / "snapshots" / "master")
    if sub and found.dir is not None:
        found = replace(found, dir=Path(os.path.normpath(found.dir / sub)))
    return found


def _filled(path: Path) -> bool:
    try:
        return path.is_dir() and any(path.iterdir())
    except OSError:
        return False


def hub_output_for(download: HubDownload, output_dir: str | None) -> Path:
    """ms-swift's default for a hub adapter (export_args.py `_init_output_dir`): the adapter's
    download dir is the checkpoint dir (base_args.py `_init_ckpt_dir`: it holds the args.json),
    and the output is '<that dir>-merged' beside it, in the hub cache."""
    if output_dir is not None:
        return output_for(Path(), output_dir)
    if download.dir is None:
        raise LorakitError(
            f"cannot tell where ms-swift would write the merge of hub adapter {download.adapter}: beside "
            f"its download, {download.cache}/snapshots/COMMIT-merged, and the commit is known only once "
            "Hugging Face is asked",
            hint="pass --output-dir DIR for the merged model",
        )
    return download.dir.with_name(download.dir.name + "-merged")
