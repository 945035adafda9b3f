#!/usr/bin/env bash
# Starts a real one-machine Slurm (Debian 12's 22.05) for the array-job tests, in the folder DIR:
#   scripts/slurm-up.sh DIR     ->  prints the slurm.conf path; export SLURM_CONF=<it>
#   scripts/slurm-down.sh DIR   ->  stops the daemons it started
# munged is shared (one per machine): started if not running, never stopped here. slurmctld and
# slurmd get their own ports, state, spool, pid and log files under DIR, so two copies (two test
# runs) do not meet. Needs root (slurmd runs jobs as their user); installs slurm-wlm and munge
# with apt-get when missing (scripts/setup.sh does too).
set -euo pipefail
dir=${1:?usage: slurm-up.sh DIR}
mkdir -p "$dir"/{state,spool,log}
dir=$(cd "$dir" && pwd)
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm-up: installing slurm-wlm munge" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
if ! munge -n >/dev/null 2>&1; then
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge 2>/dev/null || true
  [[ -f /etc/munge/munge.key ]] || mungekey --create >/dev/null 2>&1 || /usr/sbin/create-munge-key -f >/dev/null
  munged --force
  for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
fi
host=$(hostname)
# Ports from the folder's name, so that concurrent clusters differ.
base=$(( 20000 + $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 20000 ))
cat >"$dir/slurm.conf" <<CONF
ClusterName=dfdtest
SlurmctldHost=$host
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
slurmctld -f "$dir/slurm.conf"
slurmd -f "$dir/slurm.conf"
export SLURM_CONF=$dir/slurm.conf
for _ in $(seq 100); do
  if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "$dir/slurm.conf"
    exit 0
  fi
  sleep 0.2
done
echo "slurm-up: the node did not come up; logs in $dir/log" >&2
sinfo >&2 || true
exit 1
