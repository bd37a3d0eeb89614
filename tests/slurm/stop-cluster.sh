#!/usr/bin/env bash
# Stop the daemons that tests/slurm/start-cluster.sh started, by the PIDs it wrote.
#
# Usage: bash tests/slurm/stop-cluster.sh [STATE_DIR]   (default: $HTCT_SLURM_STATE or /tmp/htct-slurm)
#
# Jobs still running are cancelled first; then slurmd, slurmctld, slurmdbd, mariadbd and munged get
# SIGTERM (SIGKILL after 10 s; mariadbd gets 60 s to write its tables). Only the PIDs recorded in
# STATE_DIR are signalled, never daemons found by name. /etc/slurm/slurm.conf and slurmdbd.conf are
# removed when they are the symlinks start-cluster.sh made into STATE_DIR.
set -uo pipefail

state_dir="${1:-${HTCT_SLURM_STATE:-/tmp/htct-slurm}}"
[[ -d "$state_dir" ]] && state_dir="$(cd "$state_dir" && pwd)"
system_conf=/etc/slurm/slurm.conf
log() { echo "[stop-cluster] $*" >&2; }

if [[ ! -d "$state_dir" ]]; then
  log "no state dir $state_dir; nothing to stop"
  exit 0
fi

if [[ -f "$state_dir/slurm.conf" && -s "$state_dir/slurmctld.pid" ]] \
  && kill -0 "$(cat "$state_dir/slurmctld.pid")" 2>/dev/null; then
  # Jobs of this cluster only (its own SLURM_CONF).
  SLURM_CONF="$state_dir/slurm.conf" scancel --quiet --full --state=RUNNING,PENDING --user="$(id -un)" \
    2>/dev/null || true
fi

for daemon in slurmd slurmctld slurmdbd mariadbd munged; do
  pid_file="$state_dir/$daemon.pid"
  [[ -s "$pid_file" ]] || continue
  pid="$(cat "$pid_file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait_tenths=100
    [[ "$daemon" == mariadbd ]] && wait_tenths=600
    for _ in $(seq "$wait_tenths"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$daemon (pid $pid) ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $daemon (pid $pid)"
  fi
  rm -f "$pid_file"
done

for conf in slurm.conf slurmdbd.conf; do
  link="$(dirname "$system_conf")/$conf"
  if [[ -L "$link" && "$(readlink "$link")" == "$state_dir/$conf" ]]; then
    rm -f "$link"
  fi
done
