#!/usr/bin/env bash
# The artifacts tree (`GET .../jobs/:job_id/artifacts/tree`): the first page of 100 of a
# folder of 10,000 entries in a 100,000-entry archive (`tree.zip`: ten such folders and a
# 2 KiB report, written here by Python's zipfile when missing), warm, on the server (from
# metadata.gz) and through the proxy in front of it (from its index of the central
# directory), both page kinds; and in the same run, for scale, endpoint 7 of the 2 KiB file
# of the same archive. Latency with one request at a time (`wrk -t1 -c1 --latency` on core
# 1, the server and the proxy on core 0). Before that, the proxy's cold listing: its
# requests upstream, from its metrics.
# Usage: benches/run-tree.sh [DATA_DIR]   (default bench-data)
# Environment: DURATION (10s), PORT (18300; +1 upstream server, +2 the proxy's metrics),
#   ARTIFACT_BIN (use this binary, no build).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
DURATION=${DURATION:-10s}
PORT=${PORT:-18300}
for tool in wrk curl taskset; do
    command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk curl util-linux >/dev/null; break; }
done
# shellcheck source=benches/prepare.sh
source benches/prepare.sh
OUT=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "nothing at $1" >&2; return 1; }
metric() { curl -s "http://127.0.0.1:$((PORT + 2))/metrics" | awk -v m="$1" 'index($0, m) == 1 {print $NF}' | head -1; }
n() { local v; v=$(metric "$1"); echo "${v:-0}"; }

[ -f "$DATA/tree.zip" ] || python3 -c '
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as z:
    for k in range(10):
        for i in range(10_000):
            z.writestr(f"src/mod-{k:02}/file-{i:05}.rs", f"// {k} {i}\n")
    z.writestr("reports/summary.txt", ("summary line\n" * 158)[:2048])' "$DATA/tree.zip"

UP=$OUT/up
"$ART" admin --data "$UP" user add bench --admin >/dev/null
TOKEN=$("$ART" admin --data "$UP" token add bench)
PROJECT=$("$ART" admin --data "$UP" project add bench/app | json '["id"]')
JOB=$("$ART" import --data "$UP" --project bench/app --ref main --job tree --artifacts "$DATA/tree.zip" 2>/dev/null | json '["id"]')
ROOT=/api/v4/projects/$PROJECT/jobs/$JOB/artifacts
TREE="$ROOT/tree?path=src/mod-03&per_page=100"
KEYSET="$TREE&pagination=keyset"
FILE=$ROOT/reports/summary.txt

echo "## $(nproc) cores, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p'); $("$ART" --version)"
echo "archive: $DATA/tree.zip, $("$ART" ls -r "$DATA/tree.zip" | wc -l) paths; folder src/mod-03/: $("$ART" ls "$DATA/tree.zip" src/mod-03 | wc -l) entries"

taskset -c 0 "$ART" serve --data "$UP" --listen "127.0.0.1:$((PORT + 1))" 2>"$OUT/up.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$((PORT + 1))/api/v4/version"
taskset -c 0 "$ART" serve --upstream "http://127.0.0.1:$((PORT + 1))" --listen "127.0.0.1:$PORT" \
    --metrics-listen "127.0.0.1:$((PORT + 2))" 2>"$OUT/proxy.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$((PORT + 2))/metrics"

echo "## 1. the proxy's cold listing: requests upstream"
a0=$(n 'artifact_proxy_upstream_requests_total{kind="authorize",status="206"}'); r0=$(n artifact_proxy_upstream_range_reads_total)
cold=$(curl -sf -o "$OUT/cold.json" -w '%{time_total}' -H "PRIVATE-TOKEN: $TOKEN" "http://127.0.0.1:$PORT$TREE")
a1=$(n 'artifact_proxy_upstream_requests_total{kind="authorize",status="206"}'); r1=$(n artifact_proxy_upstream_range_reads_total)
curl -sf -o "$OUT/warm.json" -H "PRIVATE-TOKEN: $TOKEN" "http://127.0.0.1:$PORT$TREE"
a2=$(n 'artifact_proxy_upstream_requests_total{kind="authorize",status="206"}'); r2=$(n artifact_proxy_upstream_range_reads_total)
echo "cold: $((a1 - a0)) authorization + $((r1 - r0)) range reads (target: 1 + at most 2), $(python3 -c "print(round($cold * 1000, 1))") ms"
echo "warm: $((a2 - a1)) authorization + $((r2 - r1)) range reads (target: 0 + 0)"
curl -sf -H "PRIVATE-TOKEN: $TOKEN" "http://127.0.0.1:$((PORT + 1))$TREE" | cmp -s - "$OUT/warm.json" \
    || { echo "the proxy's page differs from the server's" >&2; exit 1; }
python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert len(e) == 100 and e[0]["path"] == "src/mod-03/file-00000.rs", e[:2]' "$OUT/warm.json"

echo "## 2. warm, one request at a time: wrk -t1 -c1 -d$DURATION --latency on core 1"
latency() { # URL: "median p99 req/s"
    taskset -c 1 wrk -t1 -c1 -d2s -H "PRIVATE-TOKEN: $TOKEN" "$1" >/dev/null
    taskset -c 1 wrk -t1 -c1 -d"$DURATION" --latency -H "PRIVATE-TOKEN: $TOKEN" "$1" | awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)} /Requests\/sec/ {rps = $2}
        END {printf "%.2f %.2f %s", p50, p99, rps}'
}
echo "| what | where | median ms | p99 ms | requests/s |"
echo "| --- | --- | --- | --- | --- |"
for where in "server:$((PORT + 1))" "proxy:$PORT"; do
    for what in "first page of 100, offset:$TREE" "first page of 100, keyset:$KEYSET" "endpoint 7, 2 KiB file (scale):$FILE"; do
        read -r p50 p99 rps <<<"$(latency "http://127.0.0.1:${where#*:}${what#*:}")"
        echo "| ${what%%:*} | ${where%%:*} | $p50 | $p99 | $rps |"
    done
done
