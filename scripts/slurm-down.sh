#!/usr/bin/env bash
# Stops the slurmctld and slurmd that scripts/slurm-up.sh DIR started, by their pid files.
set -uo pipefail
dir=${1:?usage: slurm-down.sh DIR}
for daemon in slurmd slurmctld; do
  pidfile=$dir/$daemon.pid
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
