#!/usr/bin/env bash
# Ranges of the 1 GiB deflated bench entry through endpoint 7, with checkpoints (built at
# import) and without (the same archive with its checkpoint index removed: inflated from the
# entry's start), in one run:
#  - `Range: bytes=-1048576` (the last MiB), `bytes=536870912-537919487` (a MiB in the
#    middle) and `bytes=0-1048575` (the first MiB): RUNS timed requests each (curl's
#    time_total), median and max, after one untimed request that loads the index;
#  - the whole entry (GET, no Range; 3 timed requests): with checkpoints the server inflates
#    it on every core while no other such stream runs; and 4 whole-entry GETs at once
#    (wall time of all four: the server busy, each stream on one core);
#  - every answer compared with the same bytes cut from `artifact cat` of the entry;
#  - `artifact import` time of the archive (verification builds the checkpoints) and the
#    index's size.
# Usage: benches/run-range.sh [DATA_DIR]   (default bench-data; archives made when missing)
# Environment: ARTIFACT_BIN (use this binary, no build), RUNS (9), PORT (18320).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
RUNS=${RUNS:-9}
PORT=${PORT:-18320}
# shellcheck source=benches/prepare.sh
source benches/prepare.sh
OUT=$(mktemp -d)
SERVER=
cleanup() { [ -z "$SERVER" ] || { kill -TERM "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; }; rm -rf "$OUT"; }
trap cleanup EXIT
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

ENTRY=$("$ART" ls --json -r "$DATA/big-deflate.zip" | python3 -c '
import json, sys
print(max((e for e in json.load(sys.stdin) if not e["dir"]), key=lambda e: e["size"])["path"])')
"$ART" cat "$DATA/big-deflate.zip" "$ENTRY" -o "$OUT/entry"
SIZE=$(stat -c %s "$OUT/entry")

D=$OUT/data
"$ART" admin --data "$D" user add bench --admin >/dev/null
TOKEN=$("$ART" admin --data "$D" token add bench)
PROJECT=$("$ART" admin --data "$D" project add bench/app | json '["id"]')
START=$(date +%s.%N)
JOB=$("$ART" import --data "$D" --project bench/app --ref main --job big --artifacts "$DATA/big-deflate.zip" 2>/dev/null | json '["id"]')
IMPORT_S=$(echo "$(date +%s.%N) - $START" | bc)
INDEX=$(find "$D/blobs/checkpoints" -type f)
INDEX_BYTES=$(stat -c %s "$INDEX")
URL="http://127.0.0.1:$PORT/api/v4/projects/$PROJECT/jobs/$JOB/artifacts/$ENTRY"

start_server() {
    "$ART" serve --data "$D" --listen "127.0.0.1:$PORT" 2>>"$OUT/server.log" &
    SERVER=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/api/v4/version" && return 0; sleep 0.1; done
    echo "the server did not start" >&2; cat "$OUT/server.log" >&2; exit 1
}
stop_server() { kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }

# measure NAME RANGE FIRST LAST: RUNS timed requests; checks the bytes; prints "median max" (ms).
measure() {
    local range=$2 first=$3 last=$4 times=()
    curl -s -o "$OUT/got" -H "PRIVATE-TOKEN: $TOKEN" -H "Range: $range" "$URL"
    tail -c +"$((first + 1))" "$OUT/entry" | head -c "$((last - first + 1))" >"$OUT/want"
    cmp -s "$OUT/got" "$OUT/want" || { echo "$1 $range: not the entry's bytes" >&2; exit 1; }
    for _ in $(seq "$RUNS"); do
        times+=("$(curl -s -o /dev/null -w '%{time_total}' -H "PRIVATE-TOKEN: $TOKEN" -H "Range: $range" "$URL")")
    done
    printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1*1000} END{printf "%.1f %.1f", a[int((NR+1)/2)], a[NR]}'
}

MIB=1048576
LAST_FIRST=$((SIZE - MIB))
MID=$((SIZE / 2))
declare -A R
for mode in checkpoints none; do
    [ "$mode" = none ] && rm -f "$INDEX"
    start_server
    R[$mode,last]=$(measure $mode "bytes=-$MIB" "$LAST_FIRST" "$((SIZE - 1))")
    R[$mode,mid]=$(measure $mode "bytes=$MID-$((MID + MIB - 1))" "$MID" "$((MID + MIB - 1))")
    R[$mode,first]=$(measure $mode "bytes=0-$((MIB - 1))" 0 "$((MIB - 1))")
    curl -s -H "PRIVATE-TOKEN: $TOKEN" "$URL" | cmp -s - "$OUT/entry" || { echo "$mode: whole entry differs" >&2; exit 1; }
    times=()
    for _ in 1 2 3; do times+=("$(curl -s -o /dev/null -w '%{time_total}' -H "PRIVATE-TOKEN: $TOKEN" "$URL")"); done
    R[$mode,whole]=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1*1000} END{printf "%.0f %.0f", a[2], a[3]}')
    start=$(date +%s.%N)
    pids=()
    for _ in 1 2 3 4; do curl -s -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" "$URL" & pids+=($!); done
    wait "${pids[@]}"
    R[$mode,four]=$(echo "($(date +%s.%N) - $start) * 1000" | bc | awk '{printf "%.0f", $1}')
    stop_server
done

echo "## $(nproc) cores, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p'); $("$ART" --version)"
echo "entry: $ENTRY of $DATA/big-deflate.zip, $SIZE bytes deflated to $(stat -c %s "$DATA/big-deflate.zip") (archive)"
echo "import (verification builds the checkpoints): ${IMPORT_S} s; checkpoint index: $INDEX_BYTES bytes ($(echo "scale=3; 100 * $INDEX_BYTES / $SIZE" | bc)% of the entry)"
echo
echo "| range (MiB of the entry) | with checkpoints: median / max | inflated from the start: median / max | ratio (medians) |"
echo "| --- | --- | --- | --- |"
for k in last mid first; do
    read -r a amax <<<"${R[checkpoints,$k]}"
    read -r b bmax <<<"${R[none,$k]}"
    echo "| $k | $a ms / $amax ms | $b ms / $bmax ms | $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", a/b}') |"
done
read -r a amax <<<"${R[checkpoints,whole]}"
read -r b bmax <<<"${R[none,whole]}"
echo "| whole entry (GET, one client) | $a ms / $amax ms | $b ms / $bmax ms | $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", a/b}') |"
echo "| whole entry, 4 clients at once (wall time of all four) | ${R[checkpoints,four]} ms | ${R[none,four]} ms | $(awk -v a="${R[checkpoints,four]}" -v b="${R[none,four]}" 'BEGIN{printf "%.3f", a/b}') |"
