#!/usr/bin/env bash
# Remote single-file extraction against peers, in one run: `artifact` (cold, and warm with
# its on-disk index cache), remotezip and unzip-http (Python), ripunzip (Rust), each pulling
# files out of archives served by benches/range_server.py over loopback, with 0 ms and 20 ms
# added per request. Reports requests, bytes and wall time.
# Usage: benches/run-http.sh [DATA_DIR]   (run benches/run.sh once first: it makes the data)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
TOOLS=${BENCH_TOOLS:-$PWD/target/bench-tools}
VENV=$TOOLS/venv
[ -x "$VENV/bin/remotezip" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q remotezip unzip-http; }
[ -x "$TOOLS/bin/ripunzip" ] || cargo install --quiet --locked --root "$TOOLS" ripunzip
cargo build --release --locked -p artifact-cli
ART=$PWD/target/release/artifact
OUT=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$OUT"' EXIT

python3 benches/range_server.py "$DATA" 18080 & PIDS+=($!)
python3 benches/range_server.py "$DATA" 18081 --delay-ms 20 & PIDS+=($!)
sleep 1

# measure NAME PORT COMMAND...: one run for requests and bytes, then hyperfine for time.
measure() {
    local name=$1 port=$2; shift 2
    curl -sf "http://127.0.0.1:$port/__reset" >/dev/null
    "$@" >/dev/null 2>"$OUT/err" || { echo "$name failed: $(head -c 300 "$OUT/err")"; return; }
    read -r requests bytes < <(curl -sf "http://127.0.0.1:$port/__stats")
    local mean
    mean=$(hyperfine -N --warmup 1 --runs "${RUNS:-10}" --export-json "$OUT/h.json" "$(printf '%q ' "$@")" \
        >/dev/null 2>&1 && python3 -c "import json;print('%.1f' % (json.load(open('$OUT/h.json'))['results'][0]['mean']*1000))")
    printf '| %s | %s | %s | %s ms |\n' "$name" "$requests" "$(numfmt --to=iec-i --suffix=B "$bytes")" "$mean"
}

for port in 18080 18081; do
    delay=$([ $port = 18080 ] && echo 0 || echo 20)
    URL=http://127.0.0.1:$port/many.zip
    echo
    echo "### 2 KiB entry of the 100,000-entry archive, ${delay} ms per request"
    echo "| tool | requests | bytes | mean |"
    echo "| --- | --- | --- | --- |"
    rm -rf "$OUT/idx" && "$ART" cat "$URL" reports/summary.txt --index-cache "$OUT/idx" >/dev/null
    measure "artifact cat (cold)" $port "$ART" cat "$URL" reports/summary.txt
    measure "artifact cat (warm, --index-cache)" $port "$ART" cat "$URL" reports/summary.txt --index-cache "$OUT/idx"
    measure "ripunzip unzip-uri" $port "$TOOLS/bin/ripunzip" unzip-uri -d "$OUT/rip" "$URL" reports/summary.txt
    measure "remotezip" $port "$VENV/bin/remotezip" -d "$OUT/rz" "$URL" reports/summary.txt
    measure "unzip-http" $port "$VENV/bin/unzip_http" -o "$URL" reports/summary.txt
done

echo
echo "### 1 GiB deflated entry, 0 ms per request"
echo "| tool | requests | bytes | mean |"
echo "| --- | --- | --- | --- |"
URL=http://127.0.0.1:18080/big-deflate.zip
RUNS=3 measure "artifact cat (local file)" 18080 "$ART" cat "$DATA/big-deflate.zip" big.txt
RUNS=3 measure "artifact cat (http)" 18080 "$ART" cat "$URL" big.txt
RUNS=3 measure "ripunzip unzip-uri" 18080 "$TOOLS/bin/ripunzip" unzip-uri -d "$OUT/rip2" "$URL" big.txt
