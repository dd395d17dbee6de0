"""Multi-node rules: node_rank, master_addr/port, nnodes."""

from __future__ import annotations

CHECKS: list = []
