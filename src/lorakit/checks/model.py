"""Model-aware rules: target_modules against the model's real Linear layers."""

from __future__ import annotations

CHECKS: list = []
