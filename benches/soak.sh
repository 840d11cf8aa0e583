#!/usr/bin/env bash
# Faults, the long variants of crates/cli/tests/faults_*.rs (CI runs the short ones), each printing its
# figures for benches/README.md:
#  1. soak: a mixed workload (job lists page by page, single files, archive ranges, 304s,
#     logs, cancel and retry) on 64 keep-alive connections for SOAK_SECONDS (600): served,
#     errors, RSS, open descriptors and latency p99 every 30 s;
#  2. kills: `artifact import` killed FAULT_KILLS (50) times with SIGKILL, a third at random
#     moments, the others at the import's first and third lease, over an archive of
#     FAULT_ARCHIVE_MIB (256) MiB: kills per phase, bytes lost, orphans after gc;
#  3. hostile clients: HOSTILE_CONNECTIONS (2000) trickling and as many idle keep-alive
#     connections, and the p50/p99 of a well-behaved client meanwhile; and SIGTERM during
#     100 downloads of a SHUTDOWN_ENTRY_MIB (1024) MiB entry: whole, cut, exit status.
# Usage: benches/soak.sh [soak|kills|hostile]... (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECONDS=${SOAK_SECONDS:-600} FAULT_KILLS=${FAULT_KILLS:-50} FAULT_ARCHIVE_MIB=${FAULT_ARCHIVE_MIB:-256}
export HOSTILE_CONNECTIONS=${HOSTILE_CONNECTIONS:-2000} SHUTDOWN_ENTRY_MIB=${SHUTDOWN_ENTRY_MIB:-1024}
echo "## machine"
echo "$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p')"
# Two connections per hostile client, plus the server's own.
ulimit -n "$(ulimit -Hn)"
for what in "${@:-soak kills hostile}"; do
    for one in $what; do
        case $one in
            soak) target=faults_soak ;;
            kills) target=faults_kills ;;
            hostile) target=faults_clients ;;
            *) echo "unknown: $one" >&2; exit 2 ;;
        esac
        echo "## $one"
        cargo test --release --locked -p artifact-cli --test "$target" -- --nocapture --test-threads 1 2>&1 \
            | grep -oE '(t= .*|after warm-up.*|kills: .*|server kills: .*|under [0-9]+ trickling.*|stopped in .*|SIGTERM during .*|FAULT_SEED.*|a [0-9]+ KiB .*|[0-9]+ headers: .*|raw .*|test result.*)'
    done
done
