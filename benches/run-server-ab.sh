#!/usr/bin/env bash
# Two builds of `artifact serve` on the single-entry hot path, pinned and alternated in one
# run: each server on core 0 (`taskset -c 0`), wrk on core 1 (`taskset -c 1 wrk -t1 -c64`),
# GET of the 2 KiB entry of the 100,000-entry archive through endpoint 7, the two builds
# taking turns for ROUNDS rounds. Reports each round's requests/s, the median of each build
# and the ratio (this build / baseline). Each build imports the archive itself.
# Usage: BASELINE_BIN=path/to/other/artifact benches/run-server-ab.sh [DATA_DIR]
# Environment: ARTIFACT_BIN (this build; default: built here), BASELINE_BIN (required),
#   DURATION (15s), ROUNDS (3), CONNECTIONS (64), PORT (18094).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18094}
: "${BASELINE_BIN:?set BASELINE_BIN to the build to compare with}"
for tool in wrk curl taskset; do
    command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk curl util-linux >/dev/null; break; }
done
# shellcheck source=benches/prepare.sh
source benches/prepare.sh
ARTIFACT_BIN=$ART
OUT=$(mktemp -d)
SERVER=
cleanup() { [ -z "$SERVER" ] || { kill -TERM "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; }; rm -rf "$OUT"; }
trap cleanup EXIT
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
ENTRY=$("$ARTIFACT_BIN" ls --json -r "$DATA/many.zip" | python3 -c '
import json, sys
print(next(e["path"] for e in json.load(sys.stdin) if not e["dir"] and e["size"] == 2048))')
QUOTED=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/"))' "$ENTRY")

# setup NAME BIN: a data directory with the archive imported by that build; prints the URL path.
setup() {
    local d=$OUT/$1 bin=$2
    "$bin" admin --data "$d" user add bench --admin >/dev/null
    "$bin" admin --data "$d" token add bench >"$d.token"
    local project job
    project=$("$bin" admin --data "$d" project add bench/app | json '["id"]')
    job=$("$bin" import --data "$d" --project bench/app --ref main --job many --artifacts "$DATA/many.zip" 2>/dev/null | json '["id"]')
    echo "/api/v4/projects/$project/jobs/$job/artifacts/$QUOTED"
}
PATH_NEW=$(setup new "$ARTIFACT_BIN")
PATH_OLD=$(setup old "$BASELINE_BIN")

# round NAME BIN URLPATH: one pinned wrk run; prints requests/s.
round() {
    local name=$1 bin=$2 path=$3 token
    token=$(cat "$OUT/$name.token")
    taskset -c 0 "$bin" serve --data "$OUT/$name" --listen "127.0.0.1:$PORT" 2>"$OUT/$name.log" &
    SERVER=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/api/v4/version" && break; sleep 0.1; done
    local url="http://127.0.0.1:$PORT$path"
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "PRIVATE-TOKEN: $token" "$url")" = 200 ] || { echo "no 200 from $name" >&2; exit 1; }
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d2s -H "PRIVATE-TOKEN: $token" "$url" >/dev/null
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "PRIVATE-TOKEN: $token" "$url" | awk '/Requests\/sec/{print $2}'
    kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
    SERVER=
}
echo "## machine"
echo "$(nproc) cores, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p')"
echo "## pinned: server on core 0, wrk -t1 -c$CONNECTIONS on core 1, $DURATION per round"
NEW=() OLD=()
for r in $(seq "$ROUNDS"); do
    o=$(round old "$BASELINE_BIN" "$PATH_OLD"); OLD+=("$o")
    n=$(round new "$ARTIFACT_BIN" "$PATH_NEW"); NEW+=("$n")
    echo "round $r: baseline $o req/s, this build $n req/s"
done
python3 - "${OLD[*]}" "${NEW[*]}" <<'PY'
import statistics, sys
old = [float(x) for x in sys.argv[1].split()]
new = [float(x) for x in sys.argv[2].split()]
mo, mn = statistics.median(old), statistics.median(new)
print(f"median: baseline {mo:.0f} req/s, this build {mn:.0f} req/s, ratio {mn / mo:.3f}")
PY
