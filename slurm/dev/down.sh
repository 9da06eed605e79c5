#!/usr/bin/env bash
# Stop the dev cluster daemons that up.sh started, in reverse start order. Packages and state stay.
#
#   bash slurm/dev/down.sh                  # all of them
#   bash slurm/dev/down.sh --cancel-jobs    # first scancel every job, so no slurmstepd outlives slurmd
#   bash slurm/dev/down.sh slurmctld ...    # only these (up.sh uses this to restart after a config change)
#
# Only PIDs recorded in $STATE/started/<name>.pid are signalled, and only while that PID is still the same
# process (same start time and command), so a recycled PID or someone else's daemon is never touched.
# Running jobs are left alone by default: their slurmstepd processes survive a slurmd stop (as in Slurm
# itself) and are picked up again by the next slurmd.
set -euo pipefail

STATE=${GASLURM_DEV_STATE:-/var/lib/gaslurm-dev}
OURS=$STATE/started
ALL=(slurmd-node2 slurmd-node1 slurmctld slurmdbd mariadb munged) # reverse of up.sh's start order

say() { printf 'down.sh: %s\n' "$*"; }
proc_starttime() { awk '{sub(/^.*\) /, ""); print $20}' "/proc/$1/stat" 2>/dev/null; }
proc_comm() { cat "/proc/$1/comm" 2>/dev/null; }

# alive PID START: the same process still exists and is not a zombie. Daemons are reparented to PID 1,
# which here reaps only every ~2 s, so an exited daemon lingers as a zombie (state Z) for a while.
proc_state() { awk '{sub(/^.*\) /, ""); print $1}' "/proc/$1/stat" 2>/dev/null; }
alive() { [[ $(proc_starttime "$1") == "$2" && $(proc_state "$1") != Z ]]; }

# ours NAME: print the recorded PID if that exact process is still alive.
ours() {
    local pid start comm
    [[ -r $OURS/$1.pid ]] || return 1
    read -r pid start comm <"$OURS/$1.pid" || [[ -n ${pid:-} ]] || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    alive "$pid" "$start" && [[ $(proc_comm "$pid") == "$comm" ]] || return 1
    echo "$pid"
}

# Bounded wait for a PID to go away; polled, not a fixed sleep.
wait_gone() {
    local pid=$1 limit=$2 start=$3 deadline=$((SECONDS + $2))
    while alive "$pid" "$start"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

stop_one() {
    local name=$1 pid start limit=15 t0=${EPOCHREALTIME/./}
    if ! pid=$(ours "$name"); then
        rm -f "$OURS/$name.pid"
        return 0
    fi
    start=$(proc_starttime "$pid")
    [[ $name == mariadb ]] && limit=60 # InnoDB flushes its buffer pool on a clean shutdown
    kill -TERM "$pid" 2>/dev/null || true
    if wait_gone "$pid" "$limit" "$start"; then
        say "stopped $name (pid $pid) in $(( (${EPOCHREALTIME/./} - t0) / 1000 )) ms"
    else
        say "$name (pid $pid) still running after ${limit}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 "$start" || { say "$name (pid $pid) would not die" >&2; return 1; }
    fi
    rm -f "$OURS/$name.pid"
}

cancel_jobs() {
    local ids
    ours slurmctld >/dev/null || return 0
    ids=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ') || return 0
    [[ -n ${ids// /} ]] || return 0
    say "cancelling jobs: $ids"
    # shellcheck disable=SC2086
    timeout 10 scancel $ids || true
    local deadline=$((SECONDS + 30))
    while [[ -n $(timeout 5 squeue -h -t running,completing -o %A 2>/dev/null) ]]; do
        ((SECONDS < deadline)) || { say "jobs still running after 30s; stopping anyway" >&2; break; }
        sleep 0.2
    done
}

[[ -d $OURS ]] || { say "nothing recorded in $OURS; nothing to stop"; exit 0; }

names=()
for arg in "$@"; do
    case $arg in
    --cancel-jobs) cancel_jobs ;;
    *) names+=("$arg") ;;
    esac
done
((${#names[@]})) || names=("${ALL[@]}")

rc=0
for name in "${names[@]}"; do
    stop_one "$name" || rc=1
done
exit "$rc"
