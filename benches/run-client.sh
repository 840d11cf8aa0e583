#!/usr/bin/env bash
# The client's downloads against `curl -o`, in one run: `artifact download` (a job's archive,
# GET /api/v4/projects/:id/jobs/:job_id/artifacts) and `artifact get ENTRY -o FILE` (one
# entry, GET .../artifacts/*artifact_path, the server extracts it) from `artifact serve` on
# loopback, each against `curl -sS -f -o FILE -H "PRIVATE-TOKEN: ..."` on the same URL.
# Target: peak RSS < 32 MiB; throughput >= 0.90 of curl's (ratio curl time / artifact time).
# Cases (CASES, all by default):
#   archive-stored   `artifact download` of big-stored-1g.zip: one 1 GiB stored entry, so the
#                    archive file itself is 1 GiB (written here with Python's zipfile when
#                    missing: an 8 MiB pseudo-random block, seed 1, 128 times)
#   archive-deflate  `artifact download` of big-deflate.zip (make-bench-data; 1 GiB of text
#                    deflated: the archive file is 355 MiB)
#   entry-deflated   `artifact get big.txt` of big-deflate.zip: 1 GiB out, inflated by the server
#   entry-stored     `artifact get blob-1g.bin` of big-stored-1g.zip: 1 GiB out, no inflate
# Each case: one run of each command under /usr/bin/time (peak RSS, and the outputs compared
# by sha256, and for archives against the file imported), then hyperfine (warm-up + runs,
# the outputs deleted and `sync` before every run). Outputs go to a temporary directory
# (OUT_DIR, default $TMPDIR or /tmp: put it on the disk you mean to measure).
# Usage: benches/run-client.sh [DATA_DIR]   (default bench-data; archives made with
#        make-bench-data when missing, as benches/run.sh does)
# Environment: RUNS (5), WARMUP (1), CASES ("archive-stored archive-deflate entry-deflated
#   entry-stored"), PORT (18092), ARTIFACT_BIN (use this binary, no build), CARGO_TARGET_DIR
#   (honoured by the build), OUT_DIR (parent of the temporary directory), KEEP=1 (keep it:
#   server data, log, hyperfine JSON).
# Prints hyperfine's reports, then a markdown table for benches/README.md; exits 1 when a target
# is not met or the two outputs differ.
# Smoke run: RUNS=1 ARTIFACT_BIN=target/release/artifact benches/run-client.sh /work/bench-data
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
CASES=${CASES:-archive-stored archive-deflate entry-deflated entry-stored}
PORT=${PORT:-18092}
STORED_ZIP=big-stored-1g.zip
STORED_ENTRY=blob-1g.bin
DEFLATE_ENTRY=big.txt

for tool in hyperfine curl /usr/bin/time; do
    command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine curl time >/dev/null; break; }
done

TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${ARTIFACT_BIN:-}" ]; then
    cargo build --release --locked -p artifact-cli
    ARTIFACT_BIN=$TARGET/release/artifact
fi
ART=$(realpath "$ARTIFACT_BIN")
if [ ! -f "$DATA/big-deflate.zip" ]; then
    cargo build --release --locked -p artifact-benches --bin make-bench-data
    "$TARGET/release/make-bench-data" "$DATA"
fi
if [ ! -f "$DATA/$STORED_ZIP" ]; then
    echo "writing $DATA/$STORED_ZIP" >&2
    python3 - "$DATA/$STORED_ZIP" "$STORED_ENTRY" <<'EOF'
import os, random, sys, zipfile
path, name = sys.argv[1], sys.argv[2]
tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
block = random.Random(1).randbytes(8 << 20)
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
    with z.open(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), "w") as f:
        for _ in range(128):
            f.write(block)
os.replace(tmp, path)
EOF
fi
DATA=$(realpath "$DATA")

OUT=$(mktemp -d -p "${OUT_DIR:-${TMPDIR:-/tmp}}")
SERVER=
stop() { # stop PID: SIGTERM (the server drains), SIGKILL after 10 s
    kill -TERM "$1" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    [ -z "$SERVER" ] || stop "$SERVER"
    if [ -n "${KEEP:-}" ]; then echo "kept $OUT" >&2; else rm -rf "$OUT"; fi
}
trap cleanup EXIT
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f MiB", k/1024}'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# Server data: an admin, a token, a project, one job per archive.
SDATA=$OUT/data
"$ART" admin --data "$SDATA" user add bench --admin >/dev/null
TOKEN=$("$ART" admin --data "$SDATA" token add bench)
"$ART" admin --data "$SDATA" project add bench/app >/dev/null
import_job() { "$ART" import --data "$SDATA" --project bench/app --ref main --job "$1" --artifacts "$DATA/$2" | json '["id"]'; }
JOB_DEFLATE=$(import_job deflate big-deflate.zip)
JOB_STORED=$(import_job stored "$STORED_ZIP")

LOG=$OUT/server.log
"$ART" serve --data "$SDATA" --listen "127.0.0.1:$PORT" 2>>"$LOG" &
SERVER=$!
for _ in $(seq 100); do grep -q "artifact: serving" "$LOG" && break; sleep 0.1; done
grep -q "artifact: serving" "$LOG" || { echo "the server did not start:" >&2; cat "$LOG" >&2; exit 1; }
BASE=http://127.0.0.1:$PORT
API=$BASE/api/v4/projects/bench%2Fapp/jobs

echo "## machine"
MACHINE="$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p')"
CURL_VERSION=$(curl --version | awk 'NR==1{print $2}')
HYPERFINE_VERSION=$(hyperfine --version | awk '{print $2}')
echo "$MACHINE"
echo "artifact: $ART ($("$ART" --version)); curl $CURL_VERSION; hyperfine $HYPERFINE_VERSION"
echo "outputs in $OUT ($(df --output=source "$OUT" | tail -1), $(stat -f -c %T "$OUT"))"

A=$OUT/artifact.out
C=$OUT/curl.out
ROWS=$OUT/rows.md
: >"$ROWS"
FAILED=0
q() { printf '%q' "$1"; }

# run_case NAME LABEL URL SOURCE ARTIFACT_ARGS...: SOURCE is the imported archive (compared
# with the download) or "" for an entry. ARTIFACT_ARGS go after the binary, before -o.
run_case() {
    local name=$1 label=$2 url=$3 source=$4; shift 4
    local art_cmd curl_cmd arg
    art_cmd=$(q "$ART")
    for arg in "$@" -o "$A" --url "$BASE" --token "$TOKEN" --project bench/app; do art_cmd+=" $(q "$arg")"; done
    curl_cmd="curl -sS -f -o $(q "$C") -H $(q "PRIVATE-TOKEN: $TOKEN") $(q "$url")"
    echo
    echo "## $name: $label"
    echo "artifact: ${art_cmd//"$TOKEN"/\$T}"
    echo "curl:     ${curl_cmd//"$TOKEN"/\$T}"

    # One run each, under /usr/bin/time: peak RSS and the bytes.
    rm -f "$A" "$C"
    /usr/bin/time -f %M -o "$OUT/$name.rss" bash -c "exec $art_cmd" || { echo "$name: artifact failed" >&2; exit 1; }
    /usr/bin/time -f %M -o "$OUT/$name.curl-rss" bash -c "exec $curl_cmd" || { echo "$name: curl failed" >&2; exit 1; }
    local bytes sha_a sha_c same
    bytes=$(stat -c %s "$C")
    sha_a=$(sha "$A")
    sha_c=$(sha "$C")
    same="sha256 identical"
    [ "$sha_a" = "$sha_c" ] && [ "$(stat -c %s "$A")" = "$bytes" ] || { same="**DIFFERENT BYTES**"; FAILED=1; }
    if [ -n "$source" ] && [ "$(sha "$source")" != "$sha_c" ]; then same+=", **not the imported archive**"; FAILED=1; fi
    echo "$bytes bytes; artifact $sha_a; curl $sha_c: $same"
    rm -f "$A" "$C"
    sync

    hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" --prepare "rm -f $(q "$A") $(q "$C"); sync" \
        --export-json "$OUT/$name.json" -n "artifact" "$art_cmd" -n "curl" "$curl_cmd" | sed "s/$TOKEN/\$T/g"
    rm -f "$A" "$C"

    python3 - "$OUT/$name.json" "$bytes" "$(cat "$OUT/$name.rss")" "$(cat "$OUT/$name.curl-rss")" \
        "$label" "$same" "$*" >>"$ROWS" <<'EOF'
import json, sys
path, size, rss_a, rss_c, label, same, args = sys.argv[1:]
size, rss_a, rss_c = int(size), int(rss_a), int(rss_c)
res = {r["command"]: r for r in json.load(open(path))["results"]}
a, c = res["artifact"], res["curl"]
def t(r):
    sd = r.get("stddev")
    return f"{r['mean']:.3f} s" + (f" ± {sd:.3f}" if sd else "") + f" (min {r['min']:.3f})"
mibs = lambda r: f"{size / r['mean'] / 2**20:,.0f} MiB/s"
ratio = c["mean"] / a["mean"]
ok_t = "met" if ratio >= 0.90 else "NOT met"
ok_m = "met" if rss_a < 32 * 1024 else "NOT met"
sub = args.split()[0]
print(f"| {label} ({size / 2**20:,.0f} MiB; {same}) | `artifact {sub}` | {t(a)} | {mibs(a)} | **{ratio:.2f}** ({ok_t}) | **{rss_a / 1024:.1f} MiB** ({ok_m}) |")
print(f"| | `curl -o` | {t(c)} | {mibs(c)} | 1 | {rss_c / 1024:.1f} MiB |")
if ratio < 0.90 or rss_a >= 32 * 1024:
    open(path + ".failed", "w").close()
EOF
    [ ! -e "$OUT/$name.json.failed" ] || FAILED=1
}

for c in $CASES; do
    case $c in
    archive-stored) run_case "$c" "archive $STORED_ZIP" "$API/$JOB_STORED/artifacts" "$DATA/$STORED_ZIP" \
        download --job "$JOB_STORED" ;;
    archive-deflate) run_case "$c" "archive big-deflate.zip" "$API/$JOB_DEFLATE/artifacts" "$DATA/big-deflate.zip" \
        download --job "$JOB_DEFLATE" ;;
    entry-deflated) run_case "$c" "entry $DEFLATE_ENTRY of big-deflate.zip (server inflates)" \
        "$API/$JOB_DEFLATE/artifacts/$DEFLATE_ENTRY" "" get "$DEFLATE_ENTRY" --job "$JOB_DEFLATE" ;;
    entry-stored) run_case "$c" "entry $STORED_ENTRY of $STORED_ZIP (stored)" \
        "$API/$JOB_STORED/artifacts/$STORED_ENTRY" "" get "$STORED_ENTRY" --job "$JOB_STORED" ;;
    *) echo "unknown case $c" >&2; exit 2 ;;
    esac
done

SERVER_HWM=$(awk '/^VmHWM:/{print $2}' "/proc/$SERVER/status")
stop "$SERVER"
SERVER=

echo
echo "## results"
echo
echo "$MACHINE; curl $CURL_VERSION, hyperfine $HYPERFINE_VERSION; $(date -u +%F)"
echo
echo "hyperfine --warmup $WARMUP --runs $RUNS, outputs deleted and \`sync\` before each run; \`artifact serve\` on"
echo "127.0.0.1; ratio = curl mean / artifact mean (throughput ratio); peak RSS of one run (\`/usr/bin/time -f %M\`):"
echo
echo "| case | command | mean ± σ | throughput | ratio (target ≥ 0.90) | peak RSS (target < 32 MiB) |"
echo "| --- | --- | --- | --- | --- | --- |"
cat "$ROWS"
echo
echo "server: peak RSS (VmHWM) $(mib "$SERVER_HWM"); log $(wc -l <"$LOG") lines, $(grep -c -E 'ERROR|WARN|panic' "$LOG" || true) ERROR/WARN/panic"
grep -E 'ERROR|WARN|panic' "$LOG" | head -5 || true
[ "$FAILED" = 0 ] || { echo "some target NOT met (or bytes differ)"; exit 1; }
