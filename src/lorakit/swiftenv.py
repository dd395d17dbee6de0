"""Which ms-swift we render for: the installed one (package metadata, never an import:
importing swift pulls in torch and takes seconds) or the user's --swift-version."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from lorakit.errors import LorakitError
from lorakit.values import as_int

SUPPORTED_MAJORS = (3, 4)
DEFAULT_MAJOR = 4


@dataclass(frozen=True)
class SwiftTarget:
    major: int
    installed: str | None  # the installed ms-swift version, if any
    source: str  # a sentence for stderr: where `major` came from


_DIST_INFO = re.compile(r"^ms_swift-([^-]+)\.dist-info$", re.IGNORECASE)


def installed_version() -> str | None:
    """ms-swift's version from its dist-info folder name on sys.path, as importlib.metadata
    finds it, without importing importlib.metadata (email, zipfile, csv: ~9 ms of start-up)."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            found = _DIST_INFO.match(name)
            if found:
                return found.group(1)
    return None


def _major(version: str) -> int | None:
    return as_int(version.split(".", 1)[0].strip())


def target(requested: str | None = None) -> SwiftTarget:
    installed = installed_version()
    if requested is not None:
        major = _major(str(requested).strip())
        if major not in SUPPORTED_MAJORS:
            raise LorakitError(
                f"--swift-version {requested!r}: lorakit renders for ms-swift 3 or 4",
                hint="use --swift-version 3 or --swift-version 4",
            )
        return SwiftTarget(major, installed, f"ms-swift {major}.x (--swift-version)")
    if installed is not None:
        major = _major(installed)
        if major in SUPPORTED_MAJORS:
            return SwiftTarget(major, installed, f"ms-swift {installed} (installed here)")
        return SwiftTarget(DEFAULT_MAJOR, installed,
                           f"ms-swift {DEFAULT_MAJOR}.x (installed {installed} is not 3.x or 4.x)")
    return SwiftTarget(DEFAULT_MAJOR, None,
                       f"ms-swift {DEFAULT_MAJOR}.x (not installed here; --swift-version 3 for a 3.x cluster)")
