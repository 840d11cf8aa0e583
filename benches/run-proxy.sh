#!/usr/bin/env bash
# `artifact serve --upstream` in front of `artifact serve`, in one run:
#  1. request counts upstream for one file of the 100,000-entry archive: cold (the first
#     file of the archive), warm (another file, same caller, inside the auth TTL), read from
#     the proxy's own metrics (--metrics-listen);
#  2. warm single-file throughput of the 2 KiB entry: wrk pinned to core 1 against the proxy
#     (pinned to core 0 together with its upstream), against the same binary serving the
#     same archive from its local store (pinned to core 0 alone), same run; the ratio;
#  3. READERS (500) slow clients of the 1 GiB deflated entry through a fresh proxy
#     (benches/slow_readers.py, READ_SECONDS each): the proxy's peak RSS and threads;
#  4. behind a GitLab with object storage (benches/gitlab_front.py redirecting archive
#     downloads to benches/range_server.py), DELAY_MS added to every round trip of both:
#     request counts, and the median time of a warm single file (another file each time)
#     through the proxy against the same files asked of the upstream directly; and cold
#     files with the upstream serving its archives itself (a second front, no redirects):
#     a 200-entry archive, the 100,000-entry one, and a caller new to a known archive;
#  5. behind the same GitLab and object storage: `Range` requests of verified entries
#     through the proxy (after one whole read of each): `bytes=-1048576` of the 1 GiB
#     deflated entry (median of RANGES, against the same range asked of the upstream
#     directly, which answers it from its own checkpoints) and `bytes=1000-1999` of a 3 MiB
#     stored entry, with the requests upstream counted.
# Usage: benches/run-proxy.sh [DATA_DIR]   (default bench-data; archives made when missing)
# Environment: DURATION (15s), CONNECTIONS (64), PORT (18200; +1 upstream, +2 metrics,
#   +3 object storage, +4 GitLab front, +5 a proxy without the entry memory, +6 a GitLab
#   front without redirects, +7 a proxy in front of it),
#   READERS (500), READ_SECONDS (20), DELAY_MS (20), FILES (40), RANGES (15),
#   ARTIFACT_BIN (use this binary, no build).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18200}
READERS=${READERS:-500}
READ_SECONDS=${READ_SECONDS:-20}
DELAY_MS=${DELAY_MS:-20}
FILES=${FILES:-40}
RANGES=${RANGES:-15}
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
# A 200-file archive, a typical directory (section 4), and a 3 MiB stored entry (section 5),
# next to the other archives so object storage serves them.
[ -f "$DATA/files-200.zip" ] || python3 -c '
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for i in range(200):
        z.writestr(f"build/reports/part-{i:03}/result.txt", f"result {i}\n" * 50)' "$DATA/files-200.zip"
TYPICAL=$("$ART" import --data "$UP" --project bench/app --ref main --job typical --artifacts "$DATA/files-200.zip" 2>/dev/null | json '["id"]')
TYPICAL2=$("$ART" import --data "$UP" --project bench/app --ref main --job typical2 --artifacts "$DATA/files-200.zip" 2>/dev/null | json '["id"]')
MANY2=$("$ART" import --data "$UP" --project bench/app --ref main --job many2 --artifacts "$DATA/many.zip" 2>/dev/null | json '["id"]')
TOKEN2=$("$ART" admin --data "$UP" token add bench)
[ -f "$DATA/stored-3m.zip" ] || python3 -c '
import random, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as z:
    z.writestr("blob.bin", random.Random(3).randbytes(3 << 20))' "$DATA/stored-3m.zip"
STORED=$("$ART" import --data "$UP" --project bench/app --ref main --job stored --artifacts "$DATA/stored-3m.zip" 2>/dev/null | json '["id"]')
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
echo "cold ($SMALL): $((a1 - a0)) authorization + $((r1 - r0)) range reads (the first read is the authorization; 3 for this 100,000-entry directory, larger than the suffix read)"
echo "warm ($OTHER): $((a2 - a1)) authorization + $((r2 - r1)) range reads (target: 0 + 1)"

echo "## 2. warm single-file throughput, wrk -t1 -c$CONNECTIONS -d$DURATION on core 1"
rate() { taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d2s -H "PRIVATE-TOKEN: $TOKEN" "$1" >/dev/null
         taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "PRIVATE-TOKEN: $TOKEN" "$1" | awk '/Requests\/sec/{print $2}'; }
PROXIED=$(rate "http://127.0.0.1:$PORT$FILE/$SMALL")
echo "proxy (with its upstream, both on core 0): $PROXIED req/s"
taskset -c 0 "$ART" serve --upstream "http://127.0.0.1:$((PORT + 1))" --listen "127.0.0.1:$((PORT + 5))" \
    --entry-cache-bytes 0 2>>"$OUT/proxy.log" &
COLD=$!
wait_http "http://127.0.0.1:$((PORT + 5))/api/v4/version"
UNCACHED=$(rate "http://127.0.0.1:$((PORT + 5))$FILE/$SMALL")
kill -TERM "$COLD"; wait "$COLD" 2>/dev/null || true
echo "proxy with --entry-cache-bytes 0 (one range read upstream per request): $UNCACHED req/s"
kill -TERM "${PIDS[1]}"; wait "${PIDS[1]}" 2>/dev/null || true
LOCAL=$(rate "http://127.0.0.1:$((PORT + 1))$FILE/$SMALL")
echo "the same binary from its local store (core 0): $LOCAL req/s"
python3 -c "import sys; print('ratio proxy/local: %.2f (target >= 0.5); without the entry memory: %.2f' % (float(sys.argv[1]) / float(sys.argv[3]), float(sys.argv[2]) / float(sys.argv[3])))" "$PROXIED" "$UNCACHED" "$LOCAL"

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

echo "## 4. behind GitLab with object storage, $DELAY_MS ms added to every round trip"
kill -TERM "$PROXY"; wait "$PROXY" 2>/dev/null || true
OBJECTS=$((PORT + 3))
FRONT=$((PORT + 4))
python3 benches/range_server.py "$DATA" "$OBJECTS" --delay-ms "$DELAY_MS" &
PIDS+=($!)
python3 benches/gitlab_front.py "http://127.0.0.1:$((PORT + 1))" "$FRONT" --delay-ms "$DELAY_MS" \
    --object "$JOB=http://127.0.0.1:$OBJECTS/many.zip" --object "$BIG=http://127.0.0.1:$OBJECTS/big-deflate.zip" \
    --object "$STORED=http://127.0.0.1:$OBJECTS/stored-3m.zip" --object "$TYPICAL=http://127.0.0.1:$OBJECTS/files-200.zip" &
PIDS+=($!)
"$ART" serve --upstream "http://127.0.0.1:$FRONT" --listen "127.0.0.1:$PORT" 2>>"$OUT/proxy.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$OBJECTS/__stats"
wait_http "http://127.0.0.1:$FRONT/__stats"
wait_http "http://127.0.0.1:$PORT/api/v4/version"
mapfile -t NAMES < <("$ART" ls --json -r "$DATA/many.zip" | python3 -c '
import json, sys
files = [e["path"] for e in json.load(sys.stdin) if not e["dir"] and e["size"] <= 65536]
step = max(1, len(files) // (int(sys.argv[1]) + 1))
print("\n".join(files[::step][: int(sys.argv[1]) + 1]))' "$FILES")
took() { curl -sf -o /dev/null -w '%{time_total}\n' -H "PRIVATE-TOKEN: $TOKEN" "$1"; }
stats() { curl -s "http://127.0.0.1:$1/__stats" | awk '{print $1}'; }
reset() { curl -s -o /dev/null "http://127.0.0.1:$1/__reset"; }
reset "$OBJECTS"; reset "$FRONT"
cold=$(took "http://127.0.0.1:$PORT$FILE/${NAMES[0]}")
echo "cold (${NAMES[0]}): $(python3 -c "print(round($cold * 1000, 1))") ms; upstream: $(stats "$FRONT") requests + $(stats "$OBJECTS") range reads from object storage (the redirect, the suffix read, the rest of a 100,000-entry directory, the entry)"
ms() { python3 -c "print(round($1 * 1000, 1))"; }
PART=build/reports/part-100/result.txt
reset "$OBJECTS"; reset "$FRONT"
cold=$(took "http://127.0.0.1:$PORT/api/v4/projects/$PROJECT/jobs/$TYPICAL/artifacts/$PART")
echo "cold, 200-file archive: $(ms "$cold") ms; upstream: $(stats "$FRONT") requests + $(stats "$OBJECTS") range reads from object storage (target: at most 3 round trips, about 90 ms)"
# The upstream serving its archives itself: a second front, no redirects, the same delay.
FRONT2=$((PORT + 6))
python3 benches/gitlab_front.py "http://127.0.0.1:$((PORT + 1))" "$FRONT2" --delay-ms "$DELAY_MS" &
PIDS+=($!)
"$ART" serve --upstream "http://127.0.0.1:$FRONT2" --listen "127.0.0.1:$((PORT + 7))" 2>>"$OUT/proxy.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$FRONT2/__stats"
wait_http "http://127.0.0.1:$((PORT + 7))/api/v4/version"
P2=http://127.0.0.1:$((PORT + 7))/api/v4/projects/$PROJECT/jobs
reset "$FRONT2"
cold=$(took "$P2/$TYPICAL2/artifacts/$PART")
echo "upstream serving, cold, 200-file archive: $(ms "$cold") ms; $(stats "$FRONT2") requests upstream (target: at most 2 round trips, about 60 ms)"
reset "$FRONT2"
cold=$(took "$P2/$MANY2/artifacts/${NAMES[0]}")
echo "upstream serving, cold, 100,000-entry archive: $(ms "$cold") ms; $(stats "$FRONT2") requests upstream (the suffix read, the rest of the directory, the entry)"
reset "$FRONT2"
new=$(curl -sf -o /dev/null -w '%{time_total}' -H "PRIVATE-TOKEN: $TOKEN2" "$P2/$TYPICAL2/artifacts/build/reports/part-007/result.txt")
echo "upstream serving, a caller new to a known archive: $(ms "$new") ms; $(stats "$FRONT2") requests upstream (target: 1)"
reset "$OBJECTS"; reset "$FRONT"
: >"$OUT/warm"
for name in "${NAMES[@]:1}"; do took "http://127.0.0.1:$PORT$FILE/$name" >>"$OUT/warm"; done
echo "warm, ${#NAMES[@]} files less one: $(stats "$FRONT") authorizations + $(stats "$OBJECTS") range reads (target: 0 + 1 each)"
: >"$OUT/direct"
for name in "${NAMES[@]:1}"; do took "http://127.0.0.1:$FRONT$FILE/$name" >>"$OUT/direct"; done
python3 -c '
import statistics, sys
ms = lambda f: [float(x) * 1000 for x in open(f).read().split()]
w, d = ms(sys.argv[1]), ms(sys.argv[2])
print("warm single file through the proxy: median %.1f ms, max %.1f ms (target: median <= 25 ms)" % (statistics.median(w), max(w)))
print("the same files from the upstream directly: median %.1f ms, max %.1f ms" % (statistics.median(d), max(d)))' \
    "$OUT/warm" "$OUT/direct"

echo "## 5. ranges of verified entries through the proxy, $DELAY_MS ms added to every round trip"
BIGFILE=/api/v4/projects/$PROJECT/jobs/$BIG/artifacts/big.txt
STOREDFILE=/api/v4/projects/$PROJECT/jobs/$STORED/artifacts/blob.bin
whole=$(took "http://127.0.0.1:$PORT$BIGFILE")
echo "the 1 GiB entry read whole once (its verdict and checkpoints): $(python3 -c "print(round($whole, 2))") s"
ranged() { curl -sf -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' -H "PRIVATE-TOKEN: $TOKEN" -H "Range: $2" "$1"; }
reset "$OBJECTS"; reset "$FRONT"
: >"$OUT/tail"
for _ in $(seq "$RANGES"); do ranged "http://127.0.0.1:$PORT$BIGFILE" bytes=-1048576 >>"$OUT/tail"; done
echo "bytes=-1048576, $RANGES times: $(stats "$FRONT") authorizations + $(stats "$OBJECTS") range reads (target: 0 + 1 each)"
: >"$OUT/tail-direct"
for _ in $(seq "$RANGES"); do ranged "http://127.0.0.1:$FRONT$BIGFILE" bytes=-1048576 >>"$OUT/tail-direct"; done
took "http://127.0.0.1:$PORT$STOREDFILE" >/dev/null
reset "$OBJECTS"; reset "$FRONT"
stored=$(ranged "http://127.0.0.1:$PORT$STOREDFILE" bytes=1000-1999)
echo "bytes=1000-1999 of the 3 MiB stored entry: status, bytes, seconds: $stored; upstream: $(stats "$FRONT") authorizations + $(stats "$OBJECTS") range reads (target: 206, 1000 bytes, at most 1 request)"
python3 -c '
import statistics, sys
rows = lambda f: [line.split() for line in open(f).read().splitlines()]
p, d = rows(sys.argv[1]), rows(sys.argv[2])
assert all(r[:2] == ["206", "1048576"] for r in p + d), (p, d)
mp, md = (statistics.median(float(r[2]) * 1000 for r in x) for x in (p, d))
print("bytes=-1048576 of the 1 GiB entry through the proxy: median %.1f ms, max %.1f ms (target: median <= 60 ms)" % (mp, max(float(r[2]) * 1000 for r in p)))
print("the same range from the upstream directly (its own checkpoints): median %.1f ms; ratio %.2f" % (md, mp / md))' \
    "$OUT/tail" "$OUT/tail-direct"
