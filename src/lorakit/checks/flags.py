"""ms-swift flag names, types and choices, against the snapshot of the target version."""

from __future__ import annotations

CHECKS: list = []
