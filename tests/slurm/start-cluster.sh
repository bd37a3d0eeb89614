#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine, for testing the workflow's SLURM profiles.
#
# Usage: bash tests/slurm/start-cluster.sh [STATE_DIR]
#
# STATE_DIR (default: $HTCT_SLURM_STATE or /tmp/htct-slurm) receives everything the cluster needs:
# slurm.conf, the munge key and socket, spool/state directories, logs and the PIDs of the daemons
# started here (munged.pid, slurmctld.pid, slurmd.pid). /etc/slurm/slurm.conf becomes a symlink to
# STATE_DIR/slurm.conf: clients find the cluster there without SLURM_CONF, which matters because
# the executor plugin's job step removes SLURM_* variables (SLURM_CONF too) before calling srun
# inside a job. So one such cluster runs per machine; an /etc/slurm/slurm.conf that this script
# did not write is never replaced.
#
# The Debian packages slurmctld, slurmd, slurm-client and munge are installed with apt-get when
# missing (needs root). Its ports are picked free, so it does not clash with other services.
# Stop it with tests/slurm/stop-cluster.sh STATE_DIR.
#
# Accounting is off (no slurmdbd): the profiles are used with `--slurm-status-command squeue`,
# which needs MinJobAge >= 3 x slurm-init-seconds-before-status-checks (here MinJobAge=600).
# The node has no GPU and no GRES, so a job asking for a GPU is refused by sbatch.
set -euo pipefail

state_dir="${1:-${HTCT_SLURM_STATE:-/tmp/htct-slurm}}"
mkdir -p "$state_dir"
state_dir="$(cd "$state_dir" && pwd)"

log() { echo "[start-cluster] $*" >&2; }

# Refuse to start a second cluster over a running one: its PIDs would be lost.
for daemon in munged slurmctld slurmd; do
  if [[ -s "$state_dir/$daemon.pid" ]] && kill -0 "$(cat "$state_dir/$daemon.pid")" 2>/dev/null; then
    log "$daemon already running from $state_dir (pid $(cat "$state_dir/$daemon.pid")); stop it first"
    exit 1
  fi
done

system_conf=/etc/slurm/slurm.conf
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

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
  || ! command -v munged >/dev/null; then
  if [[ "$(id -u)" != 0 ]]; then
    log "SLURM is not installed and installing it needs root: apt-get install slurmctld slurmd slurm-client munge"
    exit 1
  fi
  log "installing slurmctld slurmd slurm-client munge with apt-get"
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
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >&2
  if [[ -n "$(trap -p EXIT)" ]]; then
    rm -f "$policy"
    trap - EXIT
  fi
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ctld_port="${HTCT_SLURMCTLD_PORT:-$(free_port)}"
slurmd_port="${HTCT_SLURMD_PORT:-$(free_port)}"
while [[ "$slurmd_port" == "$ctld_port" ]]; do slurmd_port="$(free_port)"; done

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

conf="$state_dir/slurm.conf"
cat >"$conf" <<EOF
# Written by tests/slurm/start-cluster.sh: a one-node test cluster, no cgroups, no accounting.
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
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
LaunchParameters=use_interactive_step
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Finished jobs stay visible to squeue for 10 min: the executor plugin polls with squeue.
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

# --force: munged refuses to run as root without it; the socket and key live in our state dir.
start_daemon munged munged --foreground --force --socket="$state_dir/munge.socket" \
  --key-file="$state_dir/munge.key" --pid-file="$state_dir/munged.daemon.pid" \
  --log-file="$state_dir/log/munged.log" --seed-file="$state_dir/munged.seed"
for _ in $(seq 50); do [[ -S "$state_dir/munge.socket" ]] && break; sleep 0.1; done
[[ -S "$state_dir/munge.socket" ]] || { log "munged did not start: $(cat "$state_dir/log/munged.out")"; exit 1; }

# -i: ignore saved state from an earlier run in the same state dir (we start clean).
start_daemon slurmctld slurmctld -D -i -f "$conf"
start_daemon slurmd slurmd -D -N localhost -f "$conf"

# Ready when the node accepts jobs (idle); the first heartbeat usually comes within a second.
for _ in $(seq 300); do
  if sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; then
    log "cluster up in $state_dir: $(sinfo -h -o '%P %D %T %c CPUs %m MB' 2>/dev/null)"
    exit 0
  fi
  sleep 0.1
done
log "the node did not become idle within 30 s; see $state_dir/log/"
sinfo -N -l >&2 || true
tail -n 20 "$state_dir/log/slurmctld.log" "$state_dir/log/slurmd.log" >&2 || true
exit 1
