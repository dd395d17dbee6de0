"""Which ms-swift we render for: the installed one (package metadata, never an import:
importing swift pulls in torch and takes seconds) or the user's --swift-version, which is a
major (3, 4: that major's newest snapshot) or a released minor (3.10, 4.5.3: checked against
the flag history, lorakit/data/swift_flag_history.json)."""

from __future__ import annotations

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
    # The exact ms-swift the job is checked against: the installed version, or what
    # --swift-version named below the major (3.10, 4.5.3). None: the major's newest snapshot.
    version: str | None
    source: str  # a sentence for stderr: where the target came from
    here: str | None = None  # the ms-swift installed here, if any (whatever --swift-version says)

    @property
    def installed(self) -> str | None:
        """What cli/common.py hands on as Job.swift_version: the version the job targets. It is
        the installed one unless --swift-version names another (or only a major: None)."""
        return self.version


# 3.10, 3.10.2, 3.1.1.post1 (\d takes the digits int() takes, as as_int does for a major alone)
# 3.3.0.post1 (a re-release), 3.4.0.dev0 (what a git install of ms-swift reports), 3.4.0rc1
_DOTTED = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+)(?:\.?(?:post|dev|rc)\d+)?)?$")


def installed_version() -> str | None:
    """ms-swift's version from its dist-info folder name on sys.path, as importlib.metadata
    finds it, without importing importlib.metadata (email, zipfile, csv: ~9 ms of start-up)."""
    from lorakit.sitepackages import entries, normalise

    # a version-less ms_swift.egg-info (setup.py develop) tells no version: as if none were found
    return next((version for name, version in entries(sys.path) if normalise(name) == "ms_swift" and version), None)


def major_of(version: str) -> int | None:
    """'3.12.6' -> 3; None for what is not a version."""
    return as_int(version.split(".", 1)[0].strip())


def _unsupported(requested: str) -> LorakitError:
    return LorakitError(
        f"--swift-version {requested!r}: lorakit renders for ms-swift 3 or 4",
        hint="use --swift-version 3 or --swift-version 4",
    )


def _requested(requested: str, installed: str | None) -> SwiftTarget:
    text = str(requested).strip()
    if "." not in text:  # a major alone: its newest snapshot, as before minors were known
        major = as_int(text)
        if major not in SUPPORTED_MAJORS:
            raise _unsupported(requested)
        return SwiftTarget(major, None, f"ms-swift {major}.x (--swift-version)", installed)
    dotted = _DOTTED.match(text)
    if not dotted:
        if major_of(text) not in SUPPORTED_MAJORS:
            raise _unsupported(requested)
        raise LorakitError(f"--swift-version {requested!r}: not an ms-swift version",
                           hint="give a major (3, 4) or a released minor such as 3.10 or 4.5")
    major, minor = int(dotted.group(1)), int(dotted.group(2))
    if major not in SUPPORTED_MAJORS:
        raise _unsupported(requested)
    from lorakit import flaghistory, swiftflags  # the history, read only when a minor is asked for

    newest = flaghistory.minor_of(swiftflags.snapshot_version(major))
    if f"{major}.{minor}" != newest and f"{major}.{minor}" not in flaghistory.minors(major):
        known = flaghistory.minors(major) or [newest]
        raise LorakitError(
            f"--swift-version {requested!r}: ms-swift {major}.{minor} is not a released {major}.x minor "
            f"that lorakit knows ({known[0]} to {known[-1]})",
            hint=f"use a released minor such as --swift-version {known[-1]}, "
                 f"or --swift-version {major} for the newest lorakit knows ({swiftflags.snapshot_version(major)})")
    version = ".".join(str(int(g)) for g in dotted.groups()[:3] if g is not None)
    suffix = text[dotted.end(3):] if dotted.group(3) else ""
    return SwiftTarget(major, version + suffix, f"ms-swift {version + suffix} (--swift-version)", installed)


def target(requested: str | None = None) -> SwiftTarget:
    installed = installed_version()
    if requested is not None:
        return _requested(requested, installed)
    if installed is not None:
        major = major_of(installed)
        if major in SUPPORTED_MAJORS:
            return SwiftTarget(major, installed, f"ms-swift {installed} (installed here)", installed)
        return SwiftTarget(DEFAULT_MAJOR, None,
                           f"ms-swift {DEFAULT_MAJOR}.x (installed {installed} is not 3.x or 4.x)", installed)
    return SwiftTarget(DEFAULT_MAJOR, None,
                       f"ms-swift {DEFAULT_MAJOR}.x (not installed here; --swift-version 3 for a 3.x cluster)")
