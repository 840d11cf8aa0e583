#!/usr/bin/env bash
# Per-core throughput of the single-file hot path, pinned: each server on core 0
# (`taskset -c 0`), `wrk -t1 -c64` on core 1, GET of the 2 KiB entry of the 100,000-entry
# archive through endpoint 7, against nginx with ONE worker serving the same bytes
# pre-extracted (`sendfile on`, `access_log off`), pinned the same way. Each configuration
# of `artifact serve` in SERVE_VARIANTS runs against the same nginx in the same run; the
# servers take turns for ROUNDS rounds. Reports each round's requests/s, the medians and the
# ratios to nginx.
# Usage: benches/run-pinned.sh [DATA_DIR]   (default bench-data)
# Environment: ARTIFACT_BIN (use this binary, no build), DURATION (15s), ROUNDS (3),
#   CONNECTIONS (64), PORT (18096; nginx on PORT+1),
#   SERVE_VARIANTS ("default=|no-entry-memory=--entry-cache-bytes 0": NAME=EXTRA-ARGS,
#   separated by |), KEEP=1 (keep the temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18096}
NGINX_PORT=$((PORT + 1))
SERVE_VARIANTS=${SERVE_VARIANTS:-"default=|no-entry-memory=--entry-cache-bytes 0"}
BENCHES=$PWD/benches
for tool in wrk nginx curl taskset; do
    command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk nginx curl util-linux >/dev/null; break; }
done
# shellcheck source=benches/prepare.sh
source benches/prepare.sh
OUT=$(mktemp -d)
chmod 755 "$OUT"
SERVER=
NGINX=
stop() { kill -TERM "$1" 2>/dev/null || return 0; wait "$1" 2>/dev/null || true; }
cleanup() {
    [ -z "$SERVER" ] || stop "$SERVER"
    [ -z "$NGINX" ] || stop "$NGINX"
    if [ -n "${KEEP:-}" ]; then echo "kept $OUT" >&2; else rm -rf "$OUT"; fi
}
trap cleanup EXIT
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
ENTRY=$("$ART" ls --json -r "$DATA/many.zip" | python3 -c '
import json, sys
print(next(e["path"] for e in json.load(sys.stdin) if not e["dir"] and e["size"] == 2048))')
QUOTED=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/"))' "$ENTRY")

SDATA=$OUT/data
"$ART" admin --data "$SDATA" user add bench --admin >/dev/null
TOKEN=$("$ART" admin --data "$SDATA" token add bench)
PROJECT=$("$ART" admin --data "$SDATA" project add bench/app | json '["id"]')
JOB=$("$ART" import --data "$SDATA" --project bench/app --ref main --job many --artifacts "$DATA/many.zip" 2>/dev/null | json '["id"]')
URL_PATH=/api/v4/projects/$PROJECT/jobs/$JOB/artifacts/$QUOTED

# nginx, one worker, on core 0: the same bytes at the same path.
WWW=$OUT/www
FILE=$WWW/api/v4/projects/$PROJECT/jobs/$JOB/artifacts/$ENTRY
mkdir -p "$(dirname "$FILE")" "$OUT/nginx"
"$ART" cat "$DATA/many.zip" "$ENTRY" -o "$FILE"
chmod -R a+rX "$WWW"
sed -e "s|@PREFIX@|$OUT/nginx|g" -e "s|@ROOT@|$WWW|g" -e "s|@PORT@|$NGINX_PORT|g" \
    -e "s|^worker_processes auto;|worker_processes 1;|" \
    "$BENCHES/nginx.conf.in" >"$OUT/nginx/nginx.conf"
taskset -c 0 nginx -p "$OUT/nginx/" -c "$OUT/nginx/nginx.conf" -e "$OUT/nginx/error.log" 2>>"$OUT/nginx/error.log" &
NGINX=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && break; sleep 0.1; done

# measure URL: a warm-up, then one pinned wrk run; prints requests/s.
measure() {
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d2s -H "PRIVATE-TOKEN: $TOKEN" "$1" >/dev/null
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "PRIVATE-TOKEN: $TOKEN" "$1" | awk '/Requests\/sec/{print $2}'
}
check() { # check URL: 200 and the entry's bytes
    local code
    code=$(curl -s -o "$OUT/check" -w '%{http_code}' -H "PRIVATE-TOKEN: $TOKEN" "$1")
    [ "$code" = 200 ] && cmp -s "$OUT/check" "$FILE" || { echo "$1: HTTP $code, or not the entry's bytes" >&2; exit 1; }
}
check "http://127.0.0.1:$NGINX_PORT$URL_PATH"

IFS='|' read -r -a VARIANTS <<<"$SERVE_VARIANTS"
declare -A RESULTS
echo "## $(nproc) cores, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p'); $(nginx -v 2>&1 | sed 's/.*: //'); $("$ART" --version)"
echo "entry: $ENTRY (2,048 bytes) of $DATA/many.zip; wrk -t1 -c$CONNECTIONS -d$DURATION on core 1, servers on core 0"
for round in $(seq "$ROUNDS"); do
    RESULTS[nginx]+="$(measure "http://127.0.0.1:$NGINX_PORT$URL_PATH") "
    for variant in "${VARIANTS[@]}"; do
        name=${variant%%=*}
        read -r -a extra <<<"${variant#*=}"
        taskset -c 0 "$ART" serve --data "$SDATA" --listen "127.0.0.1:$PORT" "${extra[@]}" 2>"$OUT/$name.log" &
        SERVER=$!
        for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/api/v4/version" && break; sleep 0.1; done
        check "http://127.0.0.1:$PORT$URL_PATH"
        RESULTS[$name]+="$(measure "http://127.0.0.1:$PORT$URL_PATH") "
        stop "$SERVER"
        SERVER=
    done
    echo "round $round: $(for k in nginx "${VARIANTS[@]%%=*}"; do printf '%s %s  ' "$k" "$(awk '{print $NF}' <<<"${RESULTS[$k]}")"; done)"
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
N=$(median "${RESULTS[nginx]}")
echo
echo "| server (pinned to core 0) | requests/s per round | median | ratio to nginx |"
echo "| --- | --- | --- | --- |"
echo "| nginx, 1 worker, pre-extracted file | ${RESULTS[nginx]}| $N | 1 |"
for variant in "${VARIANTS[@]}"; do
    name=${variant%%=*}
    m=$(median "${RESULTS[$name]}")
    echo "| \`artifact serve ${variant#*=}\` ($name) | ${RESULTS[$name]}| $m | **$(awk -v a="$m" -v n="$N" 'BEGIN{printf "%.2f", a/n}')** |"
done
