#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine, for testing the workflow's SLURM profiles.
#
# Usage: bash tests/slurm/start-cluster.sh [--no-accounting] [STATE_DIR]
#
# STATE_DIR (default: $HTCT_SLURM_STATE or /tmp/htct-slurm) receives everything the cluster needs:
# slurm.conf, slurmdbd.conf, the munge key and socket, the MariaDB data directory, spool/state
# directories, logs and the PIDs of the daemons started here (munged.pid, mariadbd.pid,
# slurmdbd.pid, slurmctld.pid, slurmd.pid). /etc/slurm/slurm.conf (and slurmdbd.conf) become
# symlinks into STATE_DIR: clients find the cluster there without SLURM_CONF, which matters because
# the executor plugin's job step removes SLURM_* variables (SLURM_CONF too) before calling srun
# inside a job. So one such cluster runs per machine; an /etc/slurm/slurm.conf that this script
# did not write is never replaced.
#
# Accounting is on, as at most sites: slurmdbd stores every job in a MariaDB database of its own
# (its own data directory, socket and port; no system service is used or started), so `sacct`,
# the executor plugin's default status command, answers. The cluster `htct-test` has the accounts
# `htct` (the default account of the user running this script) and `htct_project`.
# --no-accounting starts without slurmdbd and MariaDB: then only `squeue` knows the jobs, which
# needs MinJobAge >= 3 x slurm-init-seconds-before-status-checks (here MinJobAge=600, both ways).
#
# The Debian packages slurmctld, slurmd, slurm-client, munge (and for accounting slurmdbd and
# mariadb-server) are installed with apt-get when missing (needs root); their init scripts are kept
# from starting system-wide daemons. Ports are picked free, so the cluster does not clash with other
# services. Stop it with tests/slurm/stop-cluster.sh STATE_DIR.
# The node has no GPU and no GRES, so a job asking for a GPU is refused by sbatch.
set -euo pipefail

accounting=1
if [[ "${1:-}" == "--no-accounting" ]]; then
  accounting=0
  shift
fi
state_dir="${1:-${HTCT_SLURM_STATE:-/tmp/htct-slurm}}"
mkdir -p "$state_dir"
state_dir="$(cd "$state_dir" && pwd)"

log() { echo "[start-cluster] $*" >&2; }

# Refuse to start a second cluster over a running one: its PIDs would be lost.
for daemon in munged mariadbd slurmdbd slurmctld slurmd; do
  if [[ -s "$state_dir/$daemon.pid" ]] && kill -0 "$(cat "$state_dir/$daemon.pid")" 2>/dev/null; then
    log "$daemon already running from $state_dir (pid $(cat "$state_dir/$daemon.pid")); stop it first"
    exit 1
  fi
done

system_conf=/etc/slurm/slurm.conf
system_dbd_conf=/etc/slurm/slurmdbd.conf
if [[ -L "$system_conf" ]]; then
  other_state="$(dirname "$(readlink "$system_conf")")"
  if [[ "$other_state" != "$state_dir" && -s "$other_state/slurmctld.pid" ]] \
    && kill -0 "$(cat "$other_state/slurmctld.pid")" 2>/dev/null; then
    log "another test cluster is running from $other_state; stop it first (stop-cluster.sh $other_state)"
    exit 1
  fi
elif [[ -e "$system_conf" ]]; then
  log "$system_conf exists and was not written by this script; refusing to replace a real SLURM setup"
  exit 1
fi
if ((accounting)) && [[ -e "$system_dbd_conf" && ! -L "$system_dbd_conf" ]]; then
  log "$system_dbd_conf exists and was not written by this script; refusing to replace it"
  exit 1
fi

packages=(slurmctld slurmd slurm-client munge)
commands=(slurmctld slurmd sbatch munged)
if ((accounting)); then
  packages+=(slurmdbd mariadb-server)
  commands+=(slurmdbd sacctmgr mariadbd mariadb-install-db mariadb)
fi
missing=0
for command in "${commands[@]}"; do command -v "$command" >/dev/null || missing=1; done
if ((missing)); then
  if [[ "$(id -u)" != 0 ]]; then
    log "SLURM is not installed and installing it needs root: apt-get install ${packages[*]}"
    exit 1
  fi
  log "installing ${packages[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' init scripts from starting system-wide daemons (we start our own below):
  # a policy-rc.d that denies every start, only for the installation and only if none exists.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2
  if [[ -n "$(trap -p EXIT)" ]]; then
    rm -f "$policy"
    trap - EXIT
  fi
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
declare -A taken=()
pick_port() {
  # $1: an environment override, else a free port; either way not one handed out before.
  local port="${1:-}"
  while [[ -z "$port" || -n "${taken[$port]:-}" ]]; do port="$(free_port)"; done
  taken[$port]=1
  picked="$port"
}
pick_port "${HTCT_SLURMCTLD_PORT:-}" && ctld_port="$picked"
pick_port "${HTCT_SLURMD_PORT:-}" && slurmd_port="$picked"
pick_port && dbd_port="$picked"
pick_port && mariadb_port="$picked"

mkdir -p "$state_dir"/{ctld,spool/localhost,log}
# munged refuses keys and sockets in group/world-writable places.
chmod 0700 "$state_dir"
if [[ ! -s "$state_dir/munge.key" ]]; then
  dd if=/dev/urandom of="$state_dir/munge.key" bs=1024 count=1 status=none
fi
chmod 0400 "$state_dir/munge.key"

cpus="$(nproc)"
# Leave 512 MB to the system; RealMemory above what the node reports makes slurmd drain it.
real_memory_mb="$(awk '/MemTotal/ {printf "%d", $2 / 1024 - 512}' /proc/meminfo)"

if ((accounting)); then
  # AccountingStoragePass: the munge socket for talking to slurmdbd (AuthInfo is not used there).
  accounting_storage="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$dbd_port
AccountingStoragePass=$state_dir/munge.socket"
else
  accounting_storage="AccountingStorageType=accounting_storage/none"
fi

conf="$state_dir/slurm.conf"
cat >"$conf" <<EOF
# Written by tests/slurm/start-cluster.sh: a one-node test cluster, no cgroups.
ClusterName=htct-test
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state_dir/munge.socket
StateSaveLocation=$state_dir/ctld
SlurmdSpoolDir=$state_dir/spool/%n
SlurmctldPidFile=$state_dir/slurmctld.daemon.pid
SlurmdPidFile=$state_dir/slurmd.daemon.pid
SlurmctldLogFile=$state_dir/log/slurmctld.log
SlurmdLogFile=$state_dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in containers: track job processes through /proc and bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$accounting_storage
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
LaunchParameters=use_interactive_step
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Finished jobs stay visible to squeue for 10 min, for the profiles' squeue variant.
MinJobAge=600
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_memory_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

mkdir -p "$(dirname "$system_conf")"
ln -sfn "$conf" "$system_conf"

start_daemon() {
  # $1: name for the PID/log files; the rest: the command, run in the foreground so that $! is
  # the daemon itself and stop-cluster.sh can end exactly it.
  local name="$1"
  shift
  setsid "$@" >"$state_dir/log/$name.out" 2>&1 </dev/null &
  echo $! >"$state_dir/$name.pid"
  log "started $name (pid $!)"
}

wait_for() {
  # $1: what; $2: the log to show on failure; the rest: a command that succeeds once it is ready.
  local what="$1" failure_log="$2" deadline=$((SECONDS + 30))
  shift 2
  while ((SECONDS < deadline)); do
    if timeout 10 "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "$what did not come up within 30 s; see $failure_log (stop the daemons started so far with stop-cluster.sh)"
  tail -n 20 "$failure_log" >&2 || true
  exit 1
}

# --force: munged refuses to run as root without it; the socket and key live in our state dir.
start_daemon munged munged --foreground --force --socket="$state_dir/munge.socket" \
  --key-file="$state_dir/munge.key" --pid-file="$state_dir/munged.daemon.pid" \
  --log-file="$state_dir/log/munged.log" --seed-file="$state_dir/munged.seed"
for _ in $(seq 50); do [[ -S "$state_dir/munge.socket" ]] && break; sleep 0.1; done
[[ -S "$state_dir/munge.socket" ]] || { log "munged did not start: $(cat "$state_dir/log/munged.out")"; exit 1; }

if ((accounting)); then
  # MariaDB with a data directory, socket and port of its own, no system option files.
  mariadb_socket="$state_dir/mariadb.socket"
  if [[ ! -d "$state_dir/mariadb/mysql" ]]; then
    mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$state_dir/mariadb" --skip-test-db \
      --auth-root-authentication-method=socket >"$state_dir/log/mariadb-install-db.log" 2>&1 \
      || { log "mariadb-install-db failed: see $state_dir/log/mariadb-install-db.log"; exit 1; }
  fi
  start_daemon mariadbd mariadbd --no-defaults --user="$(id -un)" --datadir="$state_dir/mariadb" \
    --socket="$mariadb_socket" --port="$mariadb_port" --bind-address=127.0.0.1 \
    --pid-file="$state_dir/mariadbd.daemon.pid" --log-error="$state_dir/log/mariadbd.log" \
    --innodb-buffer-pool-size=64M
  sql=(mariadb --no-defaults --socket="$mariadb_socket" -u root -e)
  wait_for mariadbd "$state_dir/log/mariadbd.log" "${sql[@]}" "SELECT 1"
  # slurmdbd logs in over TCP with a password of this run (root may only use the socket).
  db_password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  "${sql[@]}" "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_password';
       ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_password';
       GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

  # slurmdbd reads slurmdbd.conf beside slurm.conf; it must be private to its SlurmUser.
  dbd_conf="$state_dir/slurmdbd.conf"
  cat >"$dbd_conf" <<EOF
# Written by tests/slurm/start-cluster.sh: the accounting daemon of the test cluster.
AuthType=auth/munge
AuthInfo=socket=$state_dir/munge.socket
DbdHost=localhost
DbdPort=$dbd_port
SlurmUser=$(id -un)
PidFile=$state_dir/slurmdbd.daemon.pid
LogFile=$state_dir/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$mariadb_port
StorageUser=slurm
StoragePass=$db_password
StorageLoc=slurm_acct_db
EOF
  chmod 0600 "$dbd_conf"
  ln -sfn "$dbd_conf" "$system_dbd_conf"
  start_daemon slurmdbd slurmdbd -D
  wait_for slurmdbd "$state_dir/log/slurmdbd.log" sacctmgr -n list cluster
  # The cluster and two accounts with this user in both (htct its default), before slurmctld
  # registers with slurmdbd: a job without slurm_account is charged to htct, one with
  # slurm_account=htct_project to that.
  sacctmgr -i add cluster htct-test >/dev/null
  sacctmgr -i add account htct,htct_project Cluster=htct-test Description="htct tests" Organization=htct \
    >/dev/null
  sacctmgr -i add user "$(id -un)" Account=htct,htct_project DefaultAccount=htct Cluster=htct-test >/dev/null
fi

# -i: ignore saved state from an earlier run in the same state dir (we start clean).
start_daemon slurmctld slurmctld -D -i -f "$conf"
start_daemon slurmd slurmd -D -N localhost -f "$conf"

# Ready when the node accepts jobs (idle); the first heartbeat usually comes within a second.
for _ in $(seq 300); do
  if sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; then
    log "cluster up in $state_dir: $(sinfo -h -o '%P %D %T %c CPUs %m MB' 2>/dev/null); accounting: $accounting"
    exit 0
  fi
  sleep 0.1
done
log "the node did not become idle within 30 s; see $state_dir/log/"
sinfo -N -l >&2 || true
tail -n 20 "$state_dir/log/slurmctld.log" "$state_dir/log/slurmd.log" >&2 || true
exit 1
