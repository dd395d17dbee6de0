#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine, then runs all of it.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LORAKIT_VENV:-.venv}
SWIFT3_VENV=${LORAKIT_SWIFT3_VENV:-.venv-swift3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

install() {  # install VENV PACKAGES...
    local venv=$1; shift
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    # CPU torch first and pinned: ms-swift's bare `torch` requirement would otherwise pull a
    # multi-GB CUDA build.
    "$venv/bin/python" -m pip install -q torch==2.13.0 2>&1 | grep -v '^WARNING: Location' || true
    "$venv/bin/python" -m pip install -q "$@" 2>&1 | grep -v '^WARNING: Location' || true
    "$venv/bin/python" -m pip check >/dev/null 2>&1 || true
}

# A real SLURM cluster for tests/test_real_slurm.py (scripts/slurm_cluster.sh starts it): Debian's
# slurm-wlm and munge, installed only as root with apt-get (CI, a fresh Debian 12 machine). Elsewhere
# (a laptop) that test skips and says so; with CI=true it fails instead.
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        # another apt (a machine's own unattended upgrade, a second checkout's test run) may hold
        # its lock for a while: wait for it rather than fail the whole run. DPkg::Lock::Timeout
        # covers dpkg's lock only, not `update`'s lists lock, hence the loop
        for _ in $(seq 60); do
            apt_err=$(apt-get update -q 2>&1 >/dev/null) && break
            case "$apt_err" in *"Could not get lock"*) sleep 10 ;; *) echo "$apt_err" >&2; break ;; esac
        done
        apt-get -o DPkg::Lock::Timeout=600 install -y -q slurm-wlm munge >/dev/null \
            || { echo "apt-get install slurm-wlm munge failed" >&2; exit 1; }
    else
        echo "NOTE: not root, or no apt-get: slurm-wlm and munge not installed;" \
             "tests/test_real_slurm.py will SKIP (it FAILS when CI=true)" >&2
    fi
fi

# The main environment: lorakit (editable), ms-swift 4.x (the version the snapshot is from), test tools.
install "$VENV" -e '.[test]' 'ms-swift==4.6.0'
"$VENV/bin/python" -c "import lorakit, swift, pytest, hypothesis, kubeflow_trainer_api, kubeflow.training" \
    || { echo "install failed: see pip output above" >&2; exit 1; }

# ms-swift 3.x, only to prove its own parser accepts what lorakit renders for --swift-version 3.
if [ "${LORAKIT_SKIP_SWIFT3:-0}" != 1 ]; then
    install "$SWIFT3_VENV" 'ms-swift==3.12.6'
    "$SWIFT3_VENV/bin/python" -c "import swift" \
        || { echo "ms-swift 3.12.6 install failed" >&2; exit 1; }
    export LORAKIT_SWIFT3_PYTHON="$PWD/$SWIFT3_VENV/bin/python"
fi

export PATH="$PWD/$VENV/bin:$PATH"
exec "$VENV/bin/python" -m pytest "$@"
