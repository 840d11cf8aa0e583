#!/usr/bin/env bash
# `artifact serve` under load, in one run:
#  1. wrk on loopback, GET of the 2 KiB entry of the 100,000-entry archive through endpoint 7
#     (GET /api/v4/projects/:id/jobs/:job_id/artifacts/*artifact_path), against nginx serving
#     the same bytes, pre-extracted with `artifact cat`, from disk (the ceiling). Reports
#     requests/s, p50/p99 latency and the ratio artifact/nginx (target >= 0.5).
#  2. slow readers: READERS concurrent GETs of the 1 GiB deflated entry through endpoint 7,
#     each reading READ_CHUNK bytes every READ_INTERVAL s for READ_SECONDS
#     (benches/slow_readers.py), on a freshly started server; reports its RSS right after
#     start-up and its peak RSS (VmHWM) (target < 200 MiB).
# Usage: benches/run-server.sh [DATA_DIR]   (default bench-data; archives made with
#        make-bench-data when missing, as benches/run.sh does)
# Environment: DURATION (30s), WARMUP (2s), CONNECTIONS (64), THREADS (2; wrk's),
#   READERS (500), READ_SECONDS (20), READ_CHUNK (65536), READ_INTERVAL (0.1),
#   PORT (18090; nginx listens on PORT+1), ARTIFACT_BIN (use this binary, no build),
#   CARGO_TARGET_DIR (honoured by the build), KEEP=1 (keep the temporary directory: server
#   data, logs, wrk output).
# Smoke run: DURATION=3s WARMUP=1s READERS=50 READ_SECONDS=5 benches/run-server.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
READERS=${READERS:-500}
READ_SECONDS=${READ_SECONDS:-20}
READ_CHUNK=${READ_CHUNK:-65536}
READ_INTERVAL=${READ_INTERVAL:-0.1}
PORT=${PORT:-18090}
NGINX_PORT=$((PORT + 1))
BENCHES=$PWD/benches

for tool in wrk nginx curl; do
    command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk nginx curl >/dev/null; break; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# shellcheck source=benches/prepare.sh
source benches/prepare.sh

OUT=$(mktemp -d)
chmod 755 "$OUT"
SERVER=
NGINX=
stop() { # stop PID: SIGTERM (the server drains, nginx shuts down fast), SIGKILL after 10 s
    kill -TERM "$1" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    [ -z "$SERVER" ] || stop "$SERVER"
    [ -z "$NGINX" ] || stop "$NGINX"
    if [ -n "${KEEP:-}" ]; then echo "kept $OUT" >&2; else rm -rf "$OUT"; fi
}
trap cleanup EXIT
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
kib() { awk '/^'"$1"':/{print $2}' "/proc/$2/status"; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f MiB", k/1024}'; }
# CPU seconds (user + system) used so far by the given processes.
cpu() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; awk -v t=$t -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t/hz}'; }
wait_http() { # wait_http URL: until anything answers
    for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "nothing answers at $1" >&2; return 1
}

# The entries: the 2 KiB one of many.zip, the largest of big-deflate.zip (both real entries).
ENTRY=${ENTRY:-$("$ART" ls --json -r "$DATA/many.zip" | python3 -c '
import json, sys
print(next(e["path"] for e in json.load(sys.stdin) if not e["dir"] and e["size"] == 2048))')}
BIG_ENTRY=${BIG_ENTRY:-$("$ART" ls --json -r "$DATA/big-deflate.zip" | python3 -c '
import json, sys
print(max((e for e in json.load(sys.stdin) if not e["dir"]), key=lambda e: e["size"])["path"])')}
quote() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/"))' "$1"; }

# Server data: an admin, a token, a project, one job per archive.
SDATA=$OUT/data
"$ART" admin --data "$SDATA" user add bench --admin >/dev/null
TOKEN=$("$ART" admin --data "$SDATA" token add bench)
export BENCH_TOKEN=$TOKEN
PROJECT=$("$ART" admin --data "$SDATA" project add bench/app | json '["id"]')
JOB_MANY=$("$ART" import --data "$SDATA" --project bench/app --ref main --job many --artifacts "$DATA/many.zip" | json '["id"]')
JOB_BIG=$("$ART" import --data "$SDATA" --project bench/app --ref main --job big --artifacts "$DATA/big-deflate.zip" | json '["id"]')
PATH_SMALL=/api/v4/projects/$PROJECT/jobs/$JOB_MANY/artifacts/$(quote "$ENTRY")
PATH_BIG=/api/v4/projects/$PROJECT/jobs/$JOB_BIG/artifacts/$(quote "$BIG_ENTRY")
URL_ART=http://127.0.0.1:$PORT$PATH_SMALL
URL_NGINX=http://127.0.0.1:$NGINX_PORT$PATH_SMALL

# nginx: the same entry pre-extracted at the same path (so the request line is the same).
WWW=$OUT/www
FILE=$WWW/api/v4/projects/$PROJECT/jobs/$JOB_MANY/artifacts/$ENTRY
mkdir -p "$(dirname "$FILE")" "$OUT/nginx"
"$ART" cat "$DATA/many.zip" "$ENTRY" -o "$FILE"
chmod -R a+rX "$WWW"
sed -e "s|@PREFIX@|$OUT/nginx|g" -e "s|@ROOT@|$WWW|g" -e "s|@PORT@|$NGINX_PORT|g" \
    "$BENCHES/nginx.conf.in" >"$OUT/nginx/nginx.conf"
nginx -p "$OUT/nginx/" -c "$OUT/nginx/nginx.conf" -e "$OUT/nginx/error.log" 2>>"$OUT/nginx/error.log" &
NGINX=$!

start_server() { # start_server LOG: sets SERVER
    "$ART" serve --data "$SDATA" --listen "127.0.0.1:$PORT" 2>>"$1" &
    SERVER=$!
    for _ in $(seq 100); do grep -q "artifact: serving" "$1" && return 0; sleep 0.1; done
    echo "the server did not start:" >&2; cat "$1" >&2; return 1
}
LOG=$OUT/server.log
start_server "$LOG"
SERVER1=$SERVER
RSS_START1=$(kib VmRSS "$SERVER1")
wait_http "$URL_NGINX"

# Both must answer 200 with the same bytes.
for url in "$URL_ART" "$URL_NGINX"; do
    code=$(curl -s -o "$OUT/check" -w '%{http_code}' -H "PRIVATE-TOKEN: $TOKEN" "$url")
    [ "$code" = 200 ] && cmp -s "$OUT/check" "$FILE" || { echo "$url: HTTP $code, or not the entry's bytes" >&2; exit 1; }
done

echo "## machine"
MACHINE="$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p')"
NGINX_VERSION=$(nginx -v 2>&1 | sed 's/.*nginx\///')
WRK_VERSION=$( (wrk -v 2>&1 || true) | awk 'NR==1{print $2}')
echo "$MACHINE"
echo "artifact: $ART ($("$ART" --version)); nginx $NGINX_VERSION; wrk $WRK_VERSION"
echo "entry: $ENTRY ($(stat -c %s "$FILE") bytes) of $DATA/many.zip; big entry: $BIG_ENTRY of $DATA/big-deflate.zip"

# run_wrk NAME URL PID...: a warm-up run, then the measured one; prints wrk's report and keeps
# the summary line (and the servers' CPU seconds) in $OUT/NAME.
run_wrk() {
    local name=$1 url=$2; shift 2
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$BENCHES/wrk_report.lua" "$url" >/dev/null
    local before after
    before=$(cpu "$@")
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$BENCHES/wrk_report.lua" "$url" | tee "$OUT/$name.wrk"
    after=$(cpu "$@")
    { grep '^WRK-SUMMARY' "$OUT/$name.wrk"; echo "cpu_s=$(awk -v a="$after" -v b="$before" 'BEGIN{printf "%.2f", a-b}')"; } >"$OUT/$name.summary"
}
field() { tr ' ' '\n' <"$OUT/$1.summary" | sed -n "s/^$2=//p"; }

echo
echo "## 1. wrk -t$THREADS -c$CONNECTIONS -d$DURATION: $ENTRY through endpoint 7, against nginx"
echo "### nginx (pre-extracted file)"
NGINX_WORKERS=$(ps -o pid= --ppid "$NGINX" | tr -d ' ' | tr '\n' ' ')
# shellcheck disable=SC2086
run_wrk nginx "$URL_NGINX" "$NGINX" $NGINX_WORKERS
echo "### artifact serve (endpoint 7)"
run_wrk artifact "$URL_ART" "$SERVER1"
RSS_AFTER1=$(kib VmRSS "$SERVER1")
HWM1=$(kib VmHWM "$SERVER1")
stop "$SERVER1"
SERVER=

echo
echo "## 2. $READERS slow readers of $BIG_ENTRY (1 GiB, deflated) through endpoint 7"
LOG2=$OUT/server2.log
start_server "$LOG2"
SERVER2=$SERVER
sleep 0.5
RSS_START2=$(kib VmRSS "$SERVER2")
python3 "$BENCHES/slow_readers.py" "http://127.0.0.1:$PORT$PATH_BIG" -H "PRIVATE-TOKEN: $TOKEN" \
    -c "$READERS" -s "$READ_SECONDS" --chunk "$READ_CHUNK" --interval "$READ_INTERVAL" --pid "$SERVER2" >"$OUT/slow.json"
sleep 2
RSS_AFTER2=$(kib VmRSS "$SERVER2")
THREADS_AFTER2=$(kib Threads "$SERVER2")
AFTER_CHECK=$(curl -s -o /dev/null -w '%{http_code} in %{time_total} s' -H "PRIVATE-TOKEN: $TOKEN" "$URL_ART")
stop "$SERVER2"
SERVER=

# Results.
rps() { awk -v r="$(field "$1" requests)" -v d="$(field "$1" duration_us)" 'BEGIN{printf "%.0f", r/(d/1e6)}'; }
ms() { awk -v u="$(field "$1" "$2")" 'BEGIN{printf "%.2f ms", u/1000}'; }
errors() { echo $(($(field "$1" connect) + $(field "$1" read) + $(field "$1" write) + $(field "$1" status) + $(field "$1" timeout))); }
RPS_N=$(rps nginx)
RPS_A=$(rps artifact)
RATIO=$(awk -v a="$RPS_A" -v n="$RPS_N" 'BEGIN{printf "%.2f", a/n}')
slow() { json "$1" <"$OUT/slow.json"; }

echo
echo "## results"
echo
echo "$MACHINE; nginx $NGINX_VERSION, wrk $WRK_VERSION; $(date -u +%F)"
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after a $WARMUP warm-up), GET of \`$ENTRY\` (2 KiB) of many.zip:"
echo
echo "| server | requests/s | p50 | p99 | errors / non-200 | server CPU | ratio (requests/s) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
echo "| nginx $NGINX_VERSION, pre-extracted file (ceiling) | $RPS_N | $(ms nginx p50_us) | $(ms nginx p99_us) | $(errors nginx) | $(field nginx cpu_s) s | 1 |"
echo "| \`artifact serve\`, endpoint 7 | $RPS_A | $(ms artifact p50_us) | $(ms artifact p99_us) | $(errors artifact) | $(field artifact cpu_s) s | **$RATIO** (target >= 0.5) |"
echo
echo "$READERS slow readers of the 1 GiB deflated entry, each reading $READ_CHUNK bytes every $READ_INTERVAL s for $READ_SECONDS s (fresh server):"
echo
echo "| measure | value | target |"
echo "| --- | --- | --- |"
echo "| server RSS right after start-up | $(mib "$RSS_START2") | |"
echo "| **peak RSS with $READERS slow readers (VmHWM)** | **$(mib "$(slow '["vmhwm_kib"]')")** | < 200 MiB |"
echo "| peak VmRSS sampled every 0.1 s | $(mib "$(slow '["rss_peak_sampled_kib"]')") | |"
echo "| RSS 2 s after the readers closed | $(mib "$RSS_AFTER2") | |"
echo "| server threads: start, peak, after | $(slow '["threads_start"]'), $(slow '["threads_peak"]'), $THREADS_AFTER2 | |"
echo "| responses | $(slow '["statuses"]'); errors $(slow '["errors"]'); early EOF $(slow '["early_eof"]') | all 200 |"
echo "| received per connection, median (min) | $(mib "$(($(slow '["bytes_per_conn_median"]') / 1024))") ($(mib "$(($(slow '["bytes_per_conn_min"]') / 1024))")); nominal $(mib "$(($(slow '["bytes_per_conn_nominal"]') / 1024))") | |"
echo "| time to response head, median / max | $(slow '["ttfb_median_ms"]') ms / $(slow '["ttfb_max_ms"]') ms | |"
echo "| the 2 KiB entry right after | HTTP $AFTER_CHECK | |"
echo
echo "server 1 (wrk): RSS $(mib "$RSS_START1") after start-up, $(mib "$RSS_AFTER1") after wrk, VmHWM $(mib "$HWM1")"
for log in "$LOG" "$LOG2"; do
    n=$(grep -c -E 'ERROR|WARN|panic' "$log" || true)
    echo "$(basename "$log"): $(wc -l <"$log") lines, $n ERROR/WARN/panic"
    grep -E 'ERROR|WARN|panic' "$log" | head -5 || true
done
[ -s "$OUT/nginx/error.log" ] && { echo "nginx error.log:"; head -5 "$OUT/nginx/error.log"; } || true
