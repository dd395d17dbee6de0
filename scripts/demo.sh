#!/usr/bin/env bash
# Installs lorakit with ms-swift (CPU torch) into .venv, then runs the main job on this
# machine, no GPU needed: the zero2 dry-run, and a real tiny train + merge through lorakit.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LORAKIT_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# CPU torch first and pinned: ms-swift's bare `torch` requirement would pull a CUDA build.
"$VENV/bin/python" -m pip install -q torch==2.13.0 2>&1 | grep -v '^WARNING: Location' || true
"$VENV/bin/python" -m pip install -q -e '.[swift]' 'ms-swift==4.6.0' 2>&1 | grep -v '^WARNING: Location' || true
export PATH="$PWD/$VENV/bin:$PATH"
lorakit train --preset zero2 --dry-run
lorakit doctor --smoke
