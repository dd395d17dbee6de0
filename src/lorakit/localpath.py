"""Is this ms-swift value a local path, where does it point, and what is near it.

ms-swift decides local vs hub by `os.path.exists` on the text as given, relative to where it runs
(swift/dataset/dataset_syntax.py, utils/hub_utils.py): everything else goes to the hub as an id. A
typo in a local path therefore becomes a hub download that fails a minute later with a network
error. lorakit calls a value local when it is clearly meant as one, and checks that it exists.
Stdlib only, no network: this is on the validate / dry-run path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Files ms-swift loads as local datasets (swift/dataset/loader.py: the `datasets` builders).
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet", ".arrow")
PATH_PREFIXES = ("/", "./", "../", "~")


def special_kind(mode: int) -> str | None:
    """What a stat mode is, in words, when it is no regular file ('a directory', 'a FIFO (named
    pipe)', ...); None for a regular file. Said before any read: a FIFO would block it forever."""
    import stat

    kinds = ((stat.S_ISREG, None), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((what for test, what in kinds if test(mode)), "no regular file")


def looks_local(text: str, cwd: Path | None = None) -> bool:
    """Clearly a path: absolute, ./ ../ ~, a data-file suffix, or its first segment is an
    existing directory here (`data/trian.jsonl` with data/ present). `Org/name` hub ids are not."""
    text = text.strip()
    if not text:
        return False
    if text.startswith(PATH_PREFIXES) or text in (".", ".."):
        return True
    if text.lower().endswith(DATA_SUFFIXES):
        return True
    head = text.split("/", 1)[0] if "/" in text else None
    try:
        return bool(head) and (Path(cwd or os.getcwd()) / head).is_dir()
    except (OSError, ValueError):  # a segment too long for a file name, a NUL: not a dir here
        return False


NAME_MAX, PATH_MAX = 255, 4096  # bytes (linux/limits.h): past them every stat is ENAMETOOLONG


def unusable(text: str) -> str | None:
    """Why `text` can name no file at all (a NUL, a part over NAME_MAX bytes, the whole over
    PATH_MAX, `~nouser`), or None: said before anything stats it, so no OSError escapes."""
    if "\0" in text:
        return "it holds a NUL byte"
    if text.startswith("~"):
        try:
            expanded = os.path.expanduser(text)
        except (RuntimeError, KeyError):
            expanded = text
        if expanded.startswith("~"):
            return f"{text.split('/', 1)[0]} names no user here"
        text = expanded
    data = text.encode("utf-8", "surrogatepass")  # the bytes the kernel gets, near enough (never raises)
    if len(data) >= PATH_MAX:
        return f"it is {len(data)} bytes long, and a path holds at most {PATH_MAX - 1}"
    longest = max(data.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        return f"one part of it is {len(longest)} bytes long, and a file name holds at most {NAME_MAX}"
    return None


def shown(text: str, limit: int = 80) -> str:
    """The value quoted for a message, cut to `limit` characters (a 5000-byte path says nothing more)."""
    return repr(text if len(text) <= limit else text[:limit - 3] + "...")


def absolute(text: str, cwd: Path | None = None) -> str:
    """The path as ms-swift would open it from `cwd`, made absolute (~ expanded: lorakit passes
    argv to swift directly, so no shell expands it, and ms-swift never does)."""
    path = os.path.expanduser(text.strip())
    return os.path.normpath(os.path.join(str(cwd or os.getcwd()), path))


def exists(text: str, cwd: Path | None = None) -> bool:
    return os.path.exists(absolute(text, cwd))


def nearest_existing(path: str) -> str:
    """The nearest ancestor of `path` (itself included) that exists."""
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def near_misses(text: str, cwd: Path | None = None, n: int = 2) -> list[str]:
    """Did-you-mean for a missing path: close names in the deepest directory that exists,
    written the way the user wrote the path (relative stays relative)."""
    from lorakit.values import did_you_mean

    wanted = absolute(text, cwd)
    parent = os.path.dirname(wanted)
    if not os.path.isdir(parent):
        return []
    try:
        names = sorted(os.listdir(parent))[:5000]  # bounded: a dataset dir may hold millions
    except OSError:
        return []
    close = did_you_mean(os.path.basename(wanted), names, n=n)
    typed_dir = os.path.dirname(text.strip())
    return [os.path.join(typed_dir, name) if typed_dir else name for name in close]


@dataclass(frozen=True)
class DatasetRef:
    """One `--dataset` item as ms-swift parses it: [HF::|MS::]id_or_path[:subset/subset][#N]."""

    raw: str
    hub: str | None  # 'HF' / 'MS' prefix, if any
    name: str  # the id or the path
    subsets: str | None
    sample: str | None  # the text after '#', not yet checked

    def rebuilt(self, name: str) -> str:
        """The same item with another id/path (e.g. made absolute), subsets and #N kept."""
        return ((f"{self.hub}::" if self.hub else "") + name + (f":{self.subsets}" if self.subsets else "")
                + (f"#{self.sample}" if self.sample is not None else ""))


def parse_dataset(raw: str, cwd: Path | None = None) -> DatasetRef:
    """DatasetSyntax.parse (ms-swift 4.6.0 swift/dataset/dataset_syntax.py), existence tested
    against `cwd`: an existing path is taken whole before any split, as ms-swift does."""
    here = lambda text: exists(text, cwd)  # noqa: E731
    text, hub = raw, None
    if not here(text) and "::" in text:
        head, rest = text.split("::", 1)
        if head.lower() in ("hf", "ms"):
            hub, text = head, rest
    sample = None
    if not here(text) and "#" in text:
        text, sample = text.rsplit("#", 1)
    subsets = None
    if not here(text) and ":" in text:
        text, subsets = text.split(":", 1)
    return DatasetRef(raw, hub, text, subsets, sample)
