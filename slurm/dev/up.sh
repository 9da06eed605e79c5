#!/usr/bin/env bash
# Start a real two-node Slurm cluster ("devcluster") on this one machine, for tests and CI.
#
#   bash slurm/dev/up.sh        # idempotent: installs what is missing, starts what is not running
#
# There is no systemd here, so every daemon is started by hand, as root, in dependency order:
#   munged -> mariadbd (private datadir, 127.0.0.1) -> slurmdbd -> slurmctld -> slurmd -N node1, slurmd -N node2
# Each daemon this script starts is recorded in $STATE/started/<name>.pid ("pid starttime comm") so that
# down.sh stops exactly those and nothing else (a munged that someone else runs is reused, never stopped).
# See README.md for the layout and measured timings.
set -Eeuo pipefail

t_start=${EPOCHREALTIME/./}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${GASLURM_DEV_STATE:-/var/lib/gaslurm-dev}   # everything mutable: logs, spool, pids, database
CLUSTER=devcluster
ETC=/etc/slurm                                     # Debian's binaries read their config from here
LOG=$STATE/log
RUN=$STATE/run
OURS=$STATE/started
DB_DIR=$STATE/mysql
DB_SOCK=$DB_DIR/mysqld.sock
DB_PORT=${GASLURM_DEV_DB_PORT:-3316}               # not 3306: never collide with a system MariaDB
DB_PASS=gaslurm-dev                                # local-only dev database on 127.0.0.1
WAIT_S=${GASLURM_DEV_WAIT_S:-60}                   # bound for the final "cluster usable" poll
NODES=(node1 node2)
declare -A NODE_ADDR=([node1]=127.0.0.1 [node2]=127.0.0.2)
declare -A NODE_PORT=([node1]=6818 [node2]=6820)   # 6817 slurmctld, 6819 slurmdbd
NODE_CPUS=8          # declared, not real: SlurmdParameters=config_overrides makes slurmd believe the config
NODE_MEM_MB=8000     # 2 x 8000 MB fits in this machine's 24 GB, so a memory limit is a real limit
GPUS_PER_NODE=2

PKGS=(slurmctld slurmd slurm-client slurmdbd slurm-wlm-basic-plugins libpmi2-0 munge mariadb-server mariadb-client)

say() { printf 'up.sh: %s\n' "$*"; }
ms_since() { echo $(( (${EPOCHREALTIME/./} - $1) / 1000 )); }
fmt_s() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

on_error() {
    local rc=$1 line=$2 cmd=$3
    trap - ERR
    {
        echo "up.sh: FAILED (exit $rc) at line $line: $cmd"
        echo "up.sh: daemon log tails follow"
        bash "$HERE/logs.sh" || true
    } >&2
    exit "$rc"
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR

# Poll a condition until it holds or the bound passes; never a bare fixed sleep.
wait_until() {
    local limit=$1 desc=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            echo "up.sh: timed out after ${limit}s waiting for: $desc" >&2
            return 1
        fi
        sleep 0.1
    done
}

# ---------------------------------------------------------------- process bookkeeping
# starttime (field 22 of /proc/PID/stat) guards against a recycled PID being mistaken for our daemon.
proc_starttime() { awk '{sub(/^.*\) /, ""); print $20}' "/proc/$1/stat" 2>/dev/null; }
proc_comm() { cat "/proc/$1/comm" 2>/dev/null; }
# Exited daemons are reparented to PID 1, which here reaps only every ~2 s: a zombie is not running.
proc_state() { awk '{sub(/^.*\) /, ""); print $1}' "/proc/$1/stat" 2>/dev/null; }

# pid_from_file FILE COMM: print the PID in FILE if that process is alive and is COMM.
pid_from_file() {
    local pid
    [[ -r $1 ]] || return 1
    read -r pid _ <"$1" || [[ -n ${pid:-} ]] || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(proc_comm "$pid") == "$2" && $(proc_state "$pid") != Z ]] || return 1
    echo "$pid"
}

record_ours() { # NAME PID
    printf '%s %s %s\n' "$2" "$(proc_starttime "$2")" "$(proc_comm "$2")" >"$OURS/$1.pid"
}

# ensure_daemon NAME PIDFILE COMM HEALTH_FN START_FN TIMEOUT [REUSE]
# Running (pidfile names a live COMM): wait for it to be healthy, start nothing.
# Not running but healthy and REUSE=1 (e.g. someone else's munged on the default socket): reuse it,
# record nothing. Otherwise: start it, wait until healthy, record its PID as ours.
ensure_daemon() {
    local name=$1 pidfile=$2 comm=$3 health=$4 start=$5 limit=$6 reuse=${7:-1} pid t0
    if pid=$(pid_from_file "$pidfile" "$comm"); then
        wait_until "$limit" "$name (pid $pid) to become healthy" "$health"
        say "$name already running (pid $pid)"
        return 0
    fi
    if ((reuse)) && "$health"; then
        say "$name already answering (not started by up.sh; will not be stopped by down.sh)"
        return 0
    fi
    t0=${EPOCHREALTIME/./}
    rm -f "$OURS/$name.pid"
    "$start"
    wait_until "$limit" "$name to write $pidfile" pid_from_file "$pidfile" "$comm" >/dev/null
    pid=$(pid_from_file "$pidfile" "$comm")
    record_ours "$name" "$pid"
    wait_until "$limit" "$name (pid $pid) to become healthy" "$health"
    say "$name started (pid $pid) in $(fmt_s "$(ms_since "$t0")") s"
}

# ---------------------------------------------------------------- packages
apt_install() {
    local created_policy=0 rc=0
    # Debian postinst scripts would start munge/mariadb/slurm through init scripts, on the package's
    # default paths; policy-rc.d = 101 forbids that, we start everything ourselves below.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "$@" >"$LOG/apt.log" 2>&1 || rc=$?
    ((created_policy)) && rm -f /usr/sbin/policy-rc.d
    return "$rc"
}

install_packages() {
    local missing=() p t0
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    t0=${EPOCHREALTIME/./}
    say "installing: ${missing[*]}"
    # apt-get update only when the package lists do not know the packages, or the install fails
    # (stale lists give 404s); it is the slow, network-bound part.
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -q >"$LOG/apt-update.log" 2>&1
    fi
    if ! apt_install "${missing[@]}"; then
        say "install failed; refreshing package lists and retrying once"
        apt-get update -q >"$LOG/apt-update.log" 2>&1
        apt_install "${missing[@]}" || { tail -n 30 "$LOG/apt.log" >&2; return 1; }
    fi
    say "packages installed in $(fmt_s "$(ms_since "$t0")") s"
}

ensure_users() {
    # The packages create these; make sure anyway, a half-installed machine should not break us.
    getent group munge >/dev/null || groupadd --system munge
    getent passwd munge >/dev/null || useradd --system -g munge -d /nonexistent -s /usr/sbin/nologin munge
    getent group slurm >/dev/null || groupadd --system slurm
    getent passwd slurm >/dev/null || useradd --system -g slurm -d /nonexistent -s /usr/sbin/nologin slurm
}

# ---------------------------------------------------------------- files
# write_file MODE OWNER DEST <content: replace DEST only when the content changed (mtime stays stable).
write_file() {
    local mode=$1 owner=$2 dest=$3 tmp
    tmp=$(mktemp "$dest.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    chown "$owner" "$tmp"
    if [[ -e $dest ]] && cmp -s "$tmp" "$dest"; then
        rm -f "$tmp"
        chmod "$mode" "$dest"
        chown "$owner" "$dest"
    else
        mv -f "$tmp" "$dest"
    fi
}

make_dirs() {
    install -d -m 755 "$STATE" "$RUN" "$OURS" "$STATE/dev" "$ETC"
    # slurmctld/slurmdbd (user slurm) chdir to their log directory and want to write there.
    install -d -m 775 -g slurm "$LOG"
    chown slurm:slurm "$RUN"
    install -d -m 755 -o slurm -g slurm "$STATE/spool" "$STATE/spool/ctld"
    local n i
    for n in "${NODES[@]}"; do
        install -d -m 755 "$STATE/spool/slurmd-$n" "$STATE/dev/$n"
        # Fake GPUs: gres.conf needs real character devices; 1:3 is /dev/null's major:minor.
        for ((i = 0; i < GPUS_PER_NODE; i++)); do
            [[ -c $STATE/dev/$n/nvidia$i ]] || { rm -f "$STATE/dev/$n/nvidia$i"; mknod "$STATE/dev/$n/nvidia$i" c 1 3; }
        done
        touch "$LOG/slurmd-$n.log"
    done
    # Daemons that drop privileges must be able to open their own logs.
    touch "$LOG/slurmctld.log" "$LOG/slurmdbd.log" "$LOG/munged.log" "$LOG/mariadb.log"
    chown slurm:slurm "$LOG/slurmctld.log" "$LOG/slurmdbd.log"
    chown munge:munge "$LOG/munged.log"
    chown mysql:mysql "$LOG/mariadb.log"
    chmod 640 "$LOG/munged.log"
}

# cgroup: v1 (what these machines mount: hybrid, /sys/fs/cgroup/{memory,freezer,...}) is what we verified.
# proctrack/cgroup + task/cgroup + ConstrainRAMSpace is what makes a memory kill show as OUT_OF_MEMORY.
cgroup_conf() {
    local fs
    fs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null || echo none)
    if [[ -d /sys/fs/cgroup/memory && -d /sys/fs/cgroup/freezer ]]; then
        echo "CgroupPlugin=cgroup/v1"
        echo "CgroupAutomount=yes"
    elif [[ $fs == cgroup2fs ]]; then
        # Pure cgroup v2 without systemd: Slurm 22.05 can create its hierarchy itself with IgnoreSystemd.
        # NOT verified on these machines (they mount v1); see README.md.
        echo "CgroupPlugin=cgroup/v2"
        echo "IgnoreSystemd=yes"
        echo "EnableControllers=yes"
    else
        echo "up.sh: no usable cgroup hierarchy under /sys/fs/cgroup (type $fs)" >&2
        return 1
    fi
    cat <<EOF
# Fake CPUs (8 declared, 2 real) and fake GPUs: constraining cores or devices would fail or mean nothing.
ConstrainCores=no
ConstrainDevices=no
ConstrainRAMSpace=yes
AllowedRAMSpace=100
ConstrainSwapSpace=no
EOF
}

write_configs() {
    local host
    host=$(hostname -s)
    write_file 644 root:root "$ETC/slurm.conf" <<EOF
# Generated by slurm/dev/up.sh -- edits are overwritten. A two-node dev cluster on one machine.
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
# A requeued job is held for cred_expire+1 s before it may start again (default 120 s); keep tests quick.
AuthInfo=cred_expire=10

StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/slurmd-%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info

# cgroup tracking and RAM constraint: a memory kill is reported as OUT_OF_MEMORY (else FAILED).
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
JobAcctGatherType=jobacct_gather/cgroup
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none

# Default batch_sched_delay=3 starts array tasks every 3 s; these make a 20-task array start at once.
# sched_interval=2: a job that becomes eligible only by time passing (a requeued job after its hold,
# --begin) triggers no event, and backfill skips cycles when nothing changed, so without it such a job
# waits for the main loop's default 60 s period.
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job with no --mem gets the whole node and array tasks run one by one.
DefMemPerCPU=1000
SlurmdParameters=config_overrides
GresTypes=gpu
MpiDefault=none
MaxArraySize=1001
JobRequeue=1
ReturnToService=2
MinJobAge=10
KillWait=2
MailProg=/bin/true
InactiveLimit=0
Waittime=0

NodeName=node1 NodeHostname=$host NodeAddr=${NODE_ADDR[node1]} Port=${NODE_PORT[node1]} CPUs=$NODE_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$NODE_CPUS ThreadsPerCore=1 RealMemory=$NODE_MEM_MB Gres=gpu:$GPUS_PER_NODE State=UNKNOWN
NodeName=node2 NodeHostname=$host NodeAddr=${NODE_ADDR[node2]} Port=${NODE_PORT[node2]} CPUs=$NODE_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$NODE_CPUS ThreadsPerCore=1 RealMemory=$NODE_MEM_MB Gres=gpu:$GPUS_PER_NODE State=UNKNOWN
# Preemption: a job in "urgent" (node1 again, higher PriorityTier) cancels running jobs of "gpu" (PreemptMode=CANCEL:
# they do not come back by themselves), so the backend's resubmission after PREEMPTED is tested for real.
PreemptType=preempt/partition_prio
PreemptMode=CANCEL
PartitionName=gpu Nodes=node1 Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=CANCEL
PartitionName=gpu2 Nodes=node2 MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=CANCEL
PartitionName=urgent Nodes=node1 MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
    write_file 644 root:root "$ETC/gres.conf" <<EOF
# Generated by slurm/dev/up.sh. File= must name character devices; count-only GRES drains the node.
AutoDetect=off
NodeName=node1 Name=gpu File=$STATE/dev/node1/nvidia[0-$((GPUS_PER_NODE - 1))]
NodeName=node2 Name=gpu File=$STATE/dev/node2/nvidia[0-$((GPUS_PER_NODE - 1))]
EOF
    cgroup_conf | write_file 644 root:root "$ETC/cgroup.conf"
    # slurmdbd refuses a slurmdbd.conf readable by others.
    write_file 600 slurm:slurm "$ETC/slurmdbd.conf" <<EOF
# Generated by slurm/dev/up.sh.
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    write_file 644 root:root "$STATE/mariadb.cnf" <<EOF
# Generated by slurm/dev/up.sh: a private MariaDB for slurmdbd only.
[mysqld]
user=mysql
datadir=$DB_DIR
socket=$DB_SOCK
pid-file=$DB_DIR/mariadbd.pid
bind-address=127.0.0.1
port=$DB_PORT
log-error=$LOG/mariadb.log
# slurmdbd warns below these values (and big purges/rollups hit the lock wait).
innodb_buffer_pool_size=512M
innodb_lock_wait_timeout=900
innodb_log_file_size=64M
EOF
}

# If the Slurm configuration changed since our daemons started, restart them (node/GRES changes need it).
restart_slurm_if_config_changed() {
    local sum old=""
    sum=$(cat "$ETC/slurm.conf" "$ETC/gres.conf" "$ETC/cgroup.conf" "$ETC/slurmdbd.conf" | sha256sum | cut -d' ' -f1)
    [[ -r $STATE/config.sha256 ]] && old=$(<"$STATE/config.sha256")
    if [[ -n $old && $old != "$sum" ]]; then
        say "Slurm configuration changed since last start; restarting the Slurm daemons up.sh started"
        bash "$HERE/down.sh" slurmd-node2 slurmd-node1 slurmctld slurmdbd
    fi
    echo "$sum" >"$STATE/config.sha256"
}

# ---------------------------------------------------------------- munge
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
start_munged() {
    if [[ ! -s /etc/munge/munge.key ]]; then
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    # A package (re)install deletes /run/munge; munged wants it owned by munge.
    install -d -m 755 -o munge -g munge /run/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged --log-file="$LOG/munged.log" --pid-file=/run/munge/munged.pid \
        </dev/null >>"$LOG/munged.log" 2>&1
}

# ---------------------------------------------------------------- mariadb
db_ok() { mariadb-admin --socket="$DB_SOCK" --connect-timeout=2 ping >/dev/null 2>&1; }
start_mariadb() {
    chown mysql:mysql "$LOG/mariadb.log"
    if [[ ! -e $DB_DIR/.gaslurm-initialized ]]; then
        # A half-initialized datadir (interrupted run) is thrown away, not trusted.
        rm -rf "$DB_DIR"
        install -d -m 750 -o mysql -g mysql "$DB_DIR"
        mariadb-install-db --defaults-file="$STATE/mariadb.cnf" --auth-root-authentication-method=socket \
            --skip-test-db >>"$LOG/mariadb.log" 2>&1
        touch "$DB_DIR/.gaslurm-initialized"
    fi
    # mariadbd stays in the foreground; setsid detaches it from this shell's process group.
    setsid /usr/sbin/mariadbd --defaults-file="$STATE/mariadb.cnf" </dev/null >>"$LOG/mariadb.log" 2>&1 &
}
create_database() {
    mariadb --socket="$DB_SOCK" -u root <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
}

# ---------------------------------------------------------------- slurm
dbd_ok() { timeout 10 sacctmgr -n -P list cluster format=cluster >/dev/null 2>&1; }
start_slurmdbd() { /usr/sbin/slurmdbd </dev/null >>"$LOG/slurmdbd.log" 2>&1; }
register_cluster() {
    if ! timeout 10 sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
        timeout 20 sacctmgr -i add cluster "$CLUSTER" >/dev/null
        say "registered cluster $CLUSTER with slurmdbd"
    fi
}

ctld_ok() { timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; }
start_slurmctld() { /usr/sbin/slurmctld </dev/null >>"$LOG/slurmctld.log" 2>&1; }

# A live slurmd is all we can check per daemon; whether the node registered is polled at the end.
true_fn() { true; }
start_slurmd_node1() { /usr/sbin/slurmd -N node1 </dev/null >>"$LOG/slurmd-node1.log" 2>&1; }
start_slurmd_node2() { /usr/sbin/slurmd -N node2 </dev/null >>"$LOG/slurmd-node2.log" 2>&1; }

# ---------------------------------------------------------------- readiness
partitions_up() {
    local out
    out=$(timeout 5 sinfo -h -o '%P %a' 2>/dev/null) || return 1
    grep -qx 'gpu\* up' <<<"$out" && grep -qx 'gpu2 up' <<<"$out"
}

# Nodes are usable when idle, or busy with others' jobs (mixed/allocated/completing) on a rerun.
# A node that is down/drained without "*" (i.e. its slurmd responds) is resumed once.
declare -A RESUMED=()
nodes_usable() {
    local out name st ok=0
    out=$(timeout 5 sinfo -h -N -o '%N %t' 2>/dev/null) || return 1
    for name in "${NODES[@]}"; do
        st=$(awk -v n="$name" '$1 == n {print $2; exit}' <<<"$out")
        case $st in
        idle | mix | alloc | comp) ;;
        drain | drng | down | fail | failg | inval)
            ok=1
            if [[ -z ${RESUMED[$name]:-} ]]; then
                say "node $name is $st; resuming it"
                timeout 5 scontrol update nodename="$name" state=resume || true
                RESUMED[$name]=1
            fi
            ;;
        *) ok=1 ;; # unk, down*, idle* ...: slurmd has not registered yet
        esac
    done
    return "$ok"
}
sacct_ok() {
    local err
    err=$(timeout 10 sacct -n -X -S now-1minutes 2>&1 >/dev/null) || return 1
    [[ -z $err ]]
}

# ---------------------------------------------------------------- main
[[ $(id -u) -eq 0 ]] || { echo "up.sh: must run as root" >&2; exit 1; }
install -d -m 755 "$STATE" "$STATE/log"
install_packages
ensure_users
make_dirs
write_configs
restart_slurm_if_config_changed

ensure_daemon munged /run/munge/munged.pid munged munge_ok start_munged 15
ensure_daemon mariadb "$DB_DIR/mariadbd.pid" mariadbd db_ok start_mariadb 60
create_database
ensure_daemon slurmdbd "$RUN/slurmdbd.pid" slurmdbd dbd_ok start_slurmdbd 60
register_cluster
ensure_daemon slurmctld "$RUN/slurmctld.pid" slurmctld ctld_ok start_slurmctld 30
ensure_daemon slurmd-node1 "$RUN/slurmd-node1.pid" slurmd true_fn start_slurmd_node1 30 0
ensure_daemon slurmd-node2 "$RUN/slurmd-node2.pid" slurmd true_fn start_slurmd_node2 30 0

wait_until "$WAIT_S" "partitions gpu and gpu2 up" partitions_up
wait_until "$WAIT_S" "nodes node1 and node2 idle" nodes_usable
wait_until "$WAIT_S" "sacct to answer" sacct_ok

timeout 5 sinfo
say "cluster $CLUSTER ready in $(fmt_s "$(ms_since "$t_start")") s (state in $STATE, logs: bash $HERE/logs.sh)"
