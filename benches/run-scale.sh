#!/usr/bin/env bash
# Scale-out figures in one run, on PostgreSQL (from the distribution's packages, in a
# temporary directory) and an S3-compatible server, both started and stopped here. The
# server is s3s-fs (Rust, objects as files, signatures checked), installed from crates.io
# into target/s3s-fs when missing: moto, which the tests use, reads a whole object for every
# range (about 47 ms for a 100 MB archive), which would measure moto.
#  1. `artifact import` of big-deflate.zip (the 1 GiB deflated entry) into the bucket: time
#     and peak RSS, against `curl -T` of the same file to the same server;
#  2. warm 2 KiB single-file throughput (`wrk`, unpinned, DURATION each): one replica on
#     PostgreSQL + the bucket, two replicas (each half the connections, at once), and the
#     same binary on SQLite + a local blob folder, all in this run.
#     Warm here means hot: the file is in the replicas' memory of hot entries. A replica
#     with `--entry-cache-bytes 0` shows what each request costs when it reads the bucket,
#     against the bucket's own rate for that same ranged GET (wrk on the archive's presigned
#     URL, with the entry's range), in this run.
# Object-storage requests per single file (cold at most 3, warm 1, hot 0) are asserted by
# crates/server/tests/blobs.rs, from the blob layer's own counters.
# Usage: benches/run-scale.sh [DATA_DIR]   (default bench-data; archives made when missing)
# Environment: DURATION (10s), CONNECTIONS (64), ROUNDS (3), PORT (18300; +1..+6 used too),
#   ARTIFACT_BIN (use this binary, no build).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18300}
for tool in wrk curl; do
    command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk curl >/dev/null; break; }
done
# shellcheck source=benches/prepare.sh
source benches/prepare.sh
OUT=$(mktemp -d)
chmod 711 "$OUT" # the postgres user must reach its folder inside
PIDS=()
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    as_pg "$PGBIN/pg_ctl" -D "$OUT/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$OUT"
}
trap cleanup EXIT
wait_http() { for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "nothing at $1" >&2; return 1; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

echo "## machine"
echo "$(nproc) cores, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p')"

# PostgreSQL, as the postgres user when run as root.
mkdir -p "$OUT/pg"
[ "$(id -u)" = 0 ] && chown postgres "$OUT/pg"
as_pg "$PGBIN/initdb" -D "$OUT/pg/data" -U artifact --auth=trust -E UTF8 --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$OUT/pg/data" -l "$OUT/pg/log" -w start \
    -o "-p $((PORT + 5)) -k $OUT/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" >/dev/null
export ARTIFACT_DATABASE="postgres://artifact@127.0.0.1:$((PORT + 5))/postgres"
# The S3-compatible server (a bucket is a folder of its root) with keys.
S3S=$TARGET/s3s-fs/bin/s3s-fs
[ -x "$S3S" ] || cargo install --locked --quiet s3s-fs@0.14.1 --features binary --root "$TARGET/s3s-fs"
mkdir -p "$OUT/s3/bench"
"$S3S" --host 127.0.0.1 --port "$((PORT + 4))" --access-key bench --secret-key benchsecret "$OUT/s3" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$((PORT + 4))/" && break; sleep 0.1; done
export AWS_ENDPOINT="http://127.0.0.1:$((PORT + 4))" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret
export ARTIFACT_BLOBS=s3://bench/artifacts

SCALE=$OUT/scale
LOCAL=$OUT/local
for d in "$SCALE" "$LOCAL"; do
    if [ "$d" = "$LOCAL" ]; then unset ARTIFACT_DATABASE ARTIFACT_BLOBS; fi
    "$ART" admin --data "$d" user add bench >/dev/null
    "$ART" admin --data "$d" project add bench/app >/dev/null
    "$ART" admin --data "$d" member add bench/app bench reporter
done
export ARTIFACT_DATABASE="postgres://artifact@127.0.0.1:$((PORT + 5))/postgres" ARTIFACT_BLOBS=s3://bench/artifacts

echo "## 1. import of $(du -h "$DATA/big-deflate.zip" | cut -f1) big-deflate.zip into the bucket"
/usr/bin/time -f "%e %M" -o "$OUT/import.time" "$ART" import --data "$SCALE" --project bench/app --ref main \
    --job big --artifacts "$DATA/big-deflate.zip" >/dev/null 2>"$OUT/import.log"
read -r secs kib <"$OUT/import.time"
start=$(date +%s.%N)
curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user bench:benchsecret -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -T "$DATA/big-deflate.zip" \
    "http://127.0.0.1:$((PORT + 4))/bench/curl-copy.zip" >/dev/null
curl_secs=$(python3 -c "import time,sys; print('%.2f' % (time.time() - float(sys.argv[1])))" "$start")
echo "artifact import (verify every entry, then stream to the bucket): $secs s, peak RSS $((kib / 1024)) MiB (target < 64 MiB)"
echo "curl -T of the same file to the same server: $curl_secs s"

echo "## 2. warm 2 KiB single-file throughput, wrk -c$CONNECTIONS -d$DURATION, unpinned"
TOKEN=$("$ART" admin --data "$SCALE" token add bench)
JOB=$("$ART" import --data "$SCALE" --project bench/app --ref main --job many --artifacts "$DATA/many.zip" 2>/dev/null | json '["id"]')
FILE=/api/v4/projects/bench%2Fapp/jobs/$JOB/artifacts/reports/summary.txt
"$ART" serve --data "$SCALE" --listen "127.0.0.1:$((PORT + 1))" 2>"$OUT/a.log" &
PIDS+=($!)
"$ART" serve --data "$SCALE" --listen "127.0.0.1:$((PORT + 2))" 2>"$OUT/b.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$((PORT + 1))/-/health"
wait_http "http://127.0.0.1:$((PORT + 2))/-/health"
rate() { wrk -t1 -c"$1" -d"$DURATION" -H "PRIVATE-TOKEN: $3" "$2" | awk '/Requests\/sec/{print $2}'; }
for p in 1 2; do wrk -t1 -c8 -d2s -H "PRIVATE-TOKEN: $TOKEN" "http://127.0.0.1:$((PORT + p))$FILE" >/dev/null; done
ONE=$(rate "$CONNECTIONS" "http://127.0.0.1:$((PORT + 1))$FILE" "$TOKEN")
echo "one replica (PostgreSQL + bucket): $ONE req/s"
rate $((CONNECTIONS / 2)) "http://127.0.0.1:$((PORT + 1))$FILE" "$TOKEN" >"$OUT/a.rate" &
first=$!
rate $((CONNECTIONS / 2)) "http://127.0.0.1:$((PORT + 2))$FILE" "$TOKEN" >"$OUT/b.rate"
wait "$first"
TWO=$(python3 -c "import sys; print('%.0f' % (float(open(sys.argv[1]).read() or 0) + float(open(sys.argv[2]).read() or 0)))" "$OUT/a.rate" "$OUT/b.rate")
echo "two replicas at once (each half the connections): $TWO req/s"
# What a warm file costs without the memory of hot entries: one object GET per request.
"$ART" serve --data "$SCALE" --listen "127.0.0.1:$((PORT + 6))" --entry-cache-bytes 0 2>"$OUT/c.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$((PORT + 6))/-/health"
wrk -t1 -c8 -d2s -H "PRIVATE-TOKEN: $TOKEN" "http://127.0.0.1:$((PORT + 6))$FILE" >/dev/null
# The bucket's own rate for that same request: the archive's presigned URL (endpoint 5's
# redirect, signed by the replica) with the range the replica asks for this entry (its
# local header, the engine's 1 KiB slack for the extra field, and its data). Alternating
# rounds (ROUNDS, 3), medians: the bucket server's own rate moves from run to run.
SIGNED=$(curl -s -o /dev/null -w '%{redirect_url}' -H "PRIVATE-TOKEN: $TOKEN" \
    "http://127.0.0.1:$((PORT + 6))/api/v4/projects/bench%2Fapp/jobs/$JOB/artifacts")
RANGE=$(python3 - "$DATA/many.zip" reports/summary.txt <<'PY'
import sys, zipfile
info = zipfile.ZipFile(sys.argv[1]).getinfo(sys.argv[2])
end = info.header_offset + 30 + len(info.filename.encode()) + 1024 + info.compress_size
print(f"bytes={info.header_offset}-{end - 1}")
PY
)
curl -sf -o /dev/null -H "Range: $RANGE" "$SIGNED" || { echo "the presigned range read failed" >&2; exit 1; }
wrk -t1 -c8 -d2s -H "Range: $RANGE" "$SIGNED" >/dev/null
NOMEMS=() BUCKETS=()
for _ in $(seq "${ROUNDS:-3}"); do
    NOMEMS+=("$(rate "$CONNECTIONS" "http://127.0.0.1:$((PORT + 6))$FILE" "$TOKEN")")
    BUCKETS+=("$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "Range: $RANGE" "$SIGNED" | awk '/Requests\/sec/{print $2}')")
done
echo "one replica with --entry-cache-bytes 0 (one object GET per request), rounds: ${NOMEMS[*]} req/s"
echo "the bucket itself, the same ranged GET ($RANGE of the archive, presigned), rounds: ${BUCKETS[*]} req/s"
python3 -c "
import statistics, sys
n, b = sys.argv[1].split(), sys.argv[2].split()
n, b = statistics.median(map(float, n)), statistics.median(map(float, b))
print('medians: replica %.0f, bucket %.0f req/s; replica / bucket %.2f (target >= 0.7)' % (n, b, n / b))
" "${NOMEMS[*]}" "${BUCKETS[*]}"
unset ARTIFACT_DATABASE ARTIFACT_BLOBS
LTOKEN=$("$ART" admin --data "$LOCAL" token add bench)
LJOB=$("$ART" import --data "$LOCAL" --project bench/app --ref main --job many --artifacts "$DATA/many.zip" 2>/dev/null | json '["id"]')
"$ART" serve --data "$LOCAL" --listen "127.0.0.1:$((PORT + 3))" 2>"$OUT/local.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$((PORT + 3))/-/health"
LFILE=/api/v4/projects/bench%2Fapp/jobs/$LJOB/artifacts/reports/summary.txt
wrk -t1 -c8 -d2s -H "PRIVATE-TOKEN: $LTOKEN" "http://127.0.0.1:$((PORT + 3))$LFILE" >/dev/null
LOCALRATE=$(rate "$CONNECTIONS" "http://127.0.0.1:$((PORT + 3))$LFILE" "$LTOKEN")
echo "the same binary on SQLite + local blobs: $LOCALRATE req/s"
python3 -c "import sys; o,t,l=map(float,sys.argv[1:]); print('ratios: one replica / local %.2f, two replicas / local %.2f, two / one %.2f' % (o/l, t/l, t/o))" "$ONE" "$TWO" "$LOCALRATE"
