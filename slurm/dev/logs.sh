#!/usr/bin/env bash
# Print what is needed to see why the dev cluster misbehaves: a one-line status per component, then the
# last lines (default 80) of every daemon log. Used by up.sh on failure and by CI when a cluster step fails.
#
#   bash slurm/dev/logs.sh [LINES]
set -uo pipefail # no -e: print as much as possible even when parts are missing

STATE=${GASLURM_DEV_STATE:-/var/lib/gaslurm-dev}
LOG=$STATE/log
N=${1:-80}

echo "===== dev cluster status ($(date -Is))"
for f in "$STATE"/started/*.pid; do
    [[ -e $f ]] || { echo "no daemons recorded as started by up.sh"; break; }
    read -r pid _ comm <"$f"
    if [[ -e /proc/$pid ]]; then state=alive; else state=GONE; fi
    echo "$(basename "$f" .pid): pid $pid ($comm) $state"
done
command -v scontrol >/dev/null && timeout 5 scontrol ping 2>&1
command -v sinfo >/dev/null && timeout 5 sinfo -N -o '%N %P %t %E' 2>&1

for name in slurmctld slurmd-node1 slurmd-node2 slurmdbd mariadb munged; do
    f=$LOG/$name.log
    [[ -e $f ]] || { echo "===== $f: missing"; continue; }
    echo "===== $f (last $N lines)"
    tail -n "$N" "$f"
done
exit 0
