#!/usr/bin/env bash
# `artifact serve --upstream` in front of `artifact serve`, in one run:
#  1. request counts upstream for one file of the 100,000-entry archive: cold (the first
#     file of the archive), warm (another file, same caller, inside the auth TTL), read from
#     the proxy's own metrics (--metrics-listen);
#  2. warm single-file throughput of the 2 KiB entry: wrk pinned to core 1 against the proxy
#     (pinned to core 0 together with its upstream), against the same binary serving the
#     same archive from its local store (pinned to core 0 alone), same run; the ratio;
#  3. READERS (500) slow clients of the 1 GiB deflated entry through a fresh proxy
#     (benches/slow_readers.py, READ_SECONDS each): the proxy's peak RSS and threads.
# Usage: benches/run-proxy.sh [DATA_DIR]   (default bench-data; archives made when missing)
# Environment: DURATION (15s), CONNECTIONS (64), PORT (18200; +1 upstream, +2 metrics),
#   READERS (500), READ_SECONDS (20), ARTIFACT_BIN (use this binary, no build).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18200}
READERS=${READERS:-500}
READ_SECONDS=${READ_SECONDS:-20}
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

UP=$OUT/up
"$ART" admin --data "$UP" user add bench --admin >/dev/null
TOKEN=$("$ART" admin --data "$UP" token add bench)
PROJECT=$("$ART" admin --data "$UP" project add bench/app | json '["id"]')
JOB=$("$ART" import --data "$UP" --project bench/app --ref main --job many --artifacts "$DATA/many.zip" 2>/dev/null | json '["id"]')
BIG=$("$ART" import --data "$UP" --project bench/app --ref main --job big --artifacts "$DATA/big-deflate.zip" 2>/dev/null | json '["id"]')
SMALL=reports/summary.txt
OTHER=$("$ART" ls --json -r "$DATA/many.zip" | python3 -c '
import json, sys
print(next(e["path"] for e in json.load(sys.stdin) if not e["dir"] and e["path"] != "reports/summary.txt"))')
FILE=/api/v4/projects/$PROJECT/jobs/$JOB/artifacts

echo "## machine"
echo "$(nproc) cores, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p')"

taskset -c 0 "$ART" serve --data "$UP" --listen "127.0.0.1:$((PORT + 1))" 2>"$OUT/up.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$((PORT + 1))/api/v4/version"
taskset -c 0 "$ART" serve --upstream "http://127.0.0.1:$((PORT + 1))" --listen "127.0.0.1:$PORT" \
    --metrics-listen "127.0.0.1:$((PORT + 2))" 2>"$OUT/proxy.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$((PORT + 2))/metrics"

echo "## 1. upstream requests per file"
a0=$(n 'artifact_proxy_upstream_requests_total{kind="authorize",status="206"}'); r0=$(n artifact_proxy_upstream_range_reads_total)
curl -sf -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" "http://127.0.0.1:$PORT$FILE/$SMALL"
a1=$(n 'artifact_proxy_upstream_requests_total{kind="authorize",status="206"}'); r1=$(n artifact_proxy_upstream_range_reads_total)
curl -sf -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" "http://127.0.0.1:$PORT$FILE/$OTHER"
a2=$(n 'artifact_proxy_upstream_requests_total{kind="authorize",status="206"}'); r2=$(n artifact_proxy_upstream_range_reads_total)
echo "cold ($SMALL): $((a1 - a0)) authorization + $((r1 - r0)) range reads (target: at most 1 + 3)"
echo "warm ($OTHER): $((a2 - a1)) authorization + $((r2 - r1)) range reads (target: 0 + 1)"

echo "## 2. warm single-file throughput, wrk -t1 -c$CONNECTIONS -d$DURATION on core 1"
rate() { taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d2s -H "PRIVATE-TOKEN: $TOKEN" "$1" >/dev/null
         taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "PRIVATE-TOKEN: $TOKEN" "$1" | awk '/Requests\/sec/{print $2}'; }
PROXIED=$(rate "http://127.0.0.1:$PORT$FILE/$SMALL")
echo "proxy (with its upstream, both on core 0): $PROXIED req/s"
kill -TERM "${PIDS[1]}"; wait "${PIDS[1]}" 2>/dev/null || true
LOCAL=$(rate "http://127.0.0.1:$((PORT + 1))$FILE/$SMALL")
echo "the same binary from its local store (core 0): $LOCAL req/s"
python3 -c "import sys; print('ratio proxy/local: %.2f (target >= 0.5)' % (float(sys.argv[1]) / float(sys.argv[2])))" "$PROXIED" "$LOCAL"

echo "## 3. $READERS slow clients of the 1 GiB deflated entry through a fresh proxy"
kill -TERM "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
"$ART" serve --data "$UP" --listen "127.0.0.1:$((PORT + 1))" 2>>"$OUT/up.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$((PORT + 1))/api/v4/version"
"$ART" serve --upstream "http://127.0.0.1:$((PORT + 1))" --listen "127.0.0.1:$PORT" 2>>"$OUT/proxy.log" &
PROXY=$!
PIDS+=("$PROXY")
wait_http "http://127.0.0.1:$PORT/api/v4/version"
python3 benches/slow_readers.py "http://127.0.0.1:$PORT/api/v4/projects/$PROJECT/jobs/$BIG/artifacts/big.txt" \
    -H "PRIVATE-TOKEN: $TOKEN" -c "$READERS" -s "$READ_SECONDS" --pid "$PROXY" >"$OUT/slow.json"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({k: r[k] for k in r if k not in ("samples",)}, indent=1))' "$OUT/slow.json"
