#!/usr/bin/env bash
# A two-node Slurm cluster on this one (Debian, root, no systemd, no cgroups) machine, for CI: one slurmctld and
# two slurmd, started as `slurmd -N n1` and `slurmd -N n2`, each node with its own loopback address and port,
# so that multi-node jobs (tests/test_slurm.py: training across two nodes) run for real.
#   bash .ci/slurm.sh start   install slurm-wlm + munge if missing, configure, start the daemons, smoke-test
#   bash .ci/slurm.sh stop    stop exactly the daemons this script started (by their PID files), and remove
#                             the packages, slurm.conf and /etc/hosts lines it added, so the machine is left as found
# Why remove them: with Slurm's clients installed but no controller, every `snakemake` start (each local job
# too) waits 9 s in the Slurm executor plugin, which probes `scontrol show config` at import.
# No slurmdbd: `sacct` fails on this cluster, so the Snakemake profile must use `squeue` for job status
# (tests/test_slurm.py passes that as a test-only override).
set -euo pipefail

STATE=/var/tmp/kentropy-slurm            # PID files, spool, logs: one folder to inspect or remove
PIDS="$STATE/pids"
NODES="n1 n2"                            # node n<i> listens on 127.0.0.<i>, port 1700<i>
HOSTS_MARK="# kentropy-ci"               # the /etc/hosts lines start adds end with this

stop() {
  # slurmd first (it reports to slurmctld), munged last (both Slurm daemons need it).
  for name in slurmd-n1 slurmd-n2 slurmctld munged; do
    file="$PIDS/$name.pid"
    [ -s "$file" ] || continue
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      echo "stopped $name ($pid)"
    fi
    rm -f "$file"
  done
  if grep -q "$HOSTS_MARK\$" /etc/hosts; then  # rewritten in place: /etc/hosts may be a bind mount
    grep -v "$HOSTS_MARK\$" /etc/hosts > "$STATE/hosts" && cat "$STATE/hosts" > /etc/hosts
  fi
  if [ -e "$STATE/installed" ]; then
    rm -f /etc/slurm/slurm.conf
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --autoremove slurm-wlm slurm-client slurmctld slurmd \
      slurm-wlm-basic-plugins munge >/dev/null
    rm -f "$STATE/installed"
    echo "removed slurm-wlm and munge (installed by this script)"
  fi
}

start() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    mkdir -p "$STATE" && touch "$STATE/installed"  # stop removes what start installed
  fi
  mkdir -p "$PIDS" "$STATE/ctld" "$STATE/d-n1" "$STATE/d-n2" "$STATE/log" /run/munge /var/lib/munge /var/log/munge \
    /etc/slurm

  # munge: the Debian package makes a key; make one when it did not (no postinst in some images).
  [ -s /etc/munge/munge.key ] || head -c 1024 /dev/urandom > /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
  chmod 400 /etc/munge/munge.key
  if ! (munge -n | unmunge) >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$PIDS/munged.pid"
  fi
  (munge -n | unmunge) | grep -q "STATUS: *Success"

  host=$(hostname -s)
  getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
  # Node names resolve as a cluster's do: a training job meets on its first node by name (kentropy.training.ranks).
  for i in 1 2; do getent hosts "n$i" >/dev/null || echo "127.0.0.$i n$i $HOSTS_MARK" >> /etc/hosts; done
  # RealMemory above what slurmd detects would drain a node; the two share the machine: 45% each.
  detected=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  memory=$((detected * 45 / 100))
  chown slurm:slurm "$STATE/ctld" "$STATE/log"
  cat > /etc/slurm/slurm.conf <<CONF
# Written by .ci/slurm.sh: two nodes on one machine, no accounting database, no cgroups.
ClusterName=kentropy-ci
SlurmctldHost=${host}
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs must stay visible to squeue for Snakemake's status checks, and for tests/test_slurm.py, which
# reads their states at the session's end (its Slurm run starts with the session).
MinJobAge=3600
SlurmctldPidFile=${PIDS}/slurmctld.pid
SlurmdPidFile=${PIDS}/slurmd-%n.pid
StateSaveLocation=${STATE}/ctld
SlurmdSpoolDir=${STATE}/d-%n
SlurmctldLogFile=${STATE}/log/slurmctld.log
SlurmdLogFile=${STATE}/log/slurmd-%n.log
KillWait=5
# A job's tasks run at the nice value of the sbatch or srun that submitted them: the test session's Slurm runs
# yield the cores to its end-to-end DAG as its other work does (tests/conftest.py, TESTS_NICENESS).
PropagatePrioProcess=1
# Each node offers every core (the machine's two are shared): a one-node job gets as many as before.
NodeName=n1 NodeHostname=${host} NodeAddr=127.0.0.1 Port=17001 CPUs=$(nproc) RealMemory=${memory} State=UNKNOWN
NodeName=n2 NodeHostname=${host} NodeAddr=127.0.0.2 Port=17002 CPUs=$(nproc) RealMemory=${memory} State=UNKNOWN
PartitionName=ci Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
CONF
  running() { [ -s "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }
  running slurmctld || /usr/sbin/slurmctld -c
  for node in $NODES; do running "slurmd-$node" || /usr/sbin/slurmd -N "$node"; done
  idle() { [ "$(sinfo -h -N -o %T 2>/dev/null | sort -u | tr '\n' ' ')" = "idle " ]; }
  for _ in $(seq 60); do idle && break; sleep 0.5; done
  if ! idle; then
    sinfo -N; sinfo -R; tail -n 20 "$STATE"/log/*.log; exit 1
  fi
  out=$(srun -N2 -n2 -t 1 bash -c 'echo "$SLURMD_NODENAME"' | sort | tr '\n' ' ')
  [ "$out" = "n1 n2 " ] || { echo "srun smoke test across both nodes failed: $out"; exit 1; }
  echo "slurm up: partition ci, nodes n1 n2 on $host, $(nproc) CPUs and ${memory} MB each"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop"; exit 2 ;;
esac
