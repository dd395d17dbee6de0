#!/usr/bin/env bash
# A real two-node SLURM cluster on this one machine, for tests/test_real_slurm.py.
#
#   scripts/slurm_cluster.sh start DIR   munged, slurmctld and two slurmd (nodes n1, n2), all
#                                        under DIR; prints SLURM_CONF=DIR/slurm.conf
#   scripts/slurm_cluster.sh stop DIR    stops every process start recorded in DIR/pids, by PID
#
# Debian 12's slurm-wlm 22.05 runs several slurmd on one host (`slurmd -N NAME`, one
# `NodeName=... NodeHostname=localhost NodeAddr=127.0.0.1 Port=...` line each). No cgroups, no
# accounting: proctrack/linuxproc and task/none work in a container. Needs root (slurmd runs
# jobs as their user) and the packages slurm-wlm and munge (scripts/test.sh installs them).
set -euo pipefail

cmd=${1:?usage: slurm_cluster.sh start|stop DIR}
dir=${2:?usage: slurm_cluster.sh start|stop DIR}
base=${LORAKIT_SLURM_PORT_BASE:-26817}  # slurmctld, then one port per slurmd
cpus=${LORAKIT_SLURM_CPUS:-$(nproc)}

stop() {
    [ -f "$dir/pids" ] || return 0
    local pid
    # every process start recorded, newest first (the slurmd before slurmctld before munged)
    for pid in $(tac "$dir/pids"); do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for pid in $(cat "$dir/pids"); do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in $(cat "$dir/pids"); do kill -KILL "$pid" 2>/dev/null || true; done
    rm -f "$dir/pids"
}

start() {
    # the daemons' output goes to files under DIR/log: a caller reading our stdout to EOF
    # (subprocess.run(capture_output=True)) must not wait for daemons that keep it open
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge" "$dir/log"
    : > "$dir/pids"
    # munge: a key of our own and a socket of our own, so a system munged is left alone
    [ -f "$dir/munge/munge.key" ] || { dd if=/dev/urandom bs=1 count=1024 of="$dir/munge/munge.key" status=none; }
    chmod 700 "$dir/munge"; chmod 400 "$dir/munge/munge.key"
    munged --foreground --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" \
        > "$dir/log/munged.out" 2>&1 < /dev/null &
    echo $! >> "$dir/pids"
    for _ in $(seq 50); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.1; done
    [ -S "$dir/munge/munge.socket" ] || { echo "munged did not start: $dir/log/munged.log" >&2; exit 1; }
    # One "GPU" per node for GPU jobs' headers (--gpus-per-node): SLURM refuses a gres File that is
    # a regular file; a character device (here /dev/null's numbers) works. Skipped where mknod is not
    # allowed: then only CPU jobs run.
    gres="" gres_types=""
    if [ -e "$dir/gpu0" ] || mknod "$dir/gpu0" c 1 3 2>/dev/null; then
        echo "NodeName=n1,n2 Name=gpu File=$dir/gpu0" > "$dir/gres.conf"
        gres=" Gres=gpu:1" gres_types="GresTypes=gpu"
    fi
    cat > "$dir/slurm.conf" <<EOF
ClusterName=lorakit-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$base
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=5
InactiveLimit=0
MinJobAge=600
$gres_types
NodeName=n1 NodeHostname=localhost NodeAddr=127.0.0.1 Port=$((base + 1)) CPUs=$cpus$gres State=UNKNOWN
NodeName=n2 NodeHostname=localhost NodeAddr=127.0.0.1 Port=$((base + 2)) CPUs=$cpus$gres State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -D -c -f "$SLURM_CONF" > "$dir/log/slurmctld.out" 2>&1 < /dev/null &
    echo $! >> "$dir/pids"
    for node in n1 n2; do
        slurmd -D -N "$node" -f "$SLURM_CONF" > "$dir/log/slurmd-$node.out" 2>&1 < /dev/null &
        echo $! >> "$dir/pids"
    done
    for _ in $(seq 100); do
        [ "$(sinfo -h -N -o '%t' 2>/dev/null | grep -c '^idle')" = 2 ] && { echo "SLURM_CONF=$SLURM_CONF"; return 0; }
        sleep 0.2
    done
    echo "the cluster did not come up: logs in $dir/log" >&2
    sinfo -N >&2 || true
    stop
    exit 1
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) echo "usage: slurm_cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
