#!/usr/bin/env bash
# One large deflated entry on all cores: `artifact cat` of the 1 GiB deflated bench entry
# to /dev/null, in one hyperfine run:
#  1. serial: `artifact cat` without checkpoints (one thread inflates and checks the CRC-32:
#     the single-thread inflate+CRC baseline);
#  2. parallel: `artifact cat --index-cache DIR` with the entry's checkpoints kept in DIR
#     (made by one untimed run first): segments inflated on every core, CRC-32 combined;
#  3. the same as 2 pinned to one core (`taskset -c 0`): no idle core, what the parallel
#     path costs when it cannot run in parallel;
#  4. the first run with `--index-cache` (checkpoints made while reading), from a fresh DIR.
# Every output compared with the serial one first. Reports means and ratios to 1.
# Usage: benches/run-parallel.sh [DATA_DIR]   (default bench-data; archives made when missing)
# Environment: ARTIFACT_BIN (use this binary, no build), RUNS (5).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
RUNS=${RUNS:-5}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
# shellcheck source=benches/prepare.sh
source benches/prepare.sh
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
ZIP=$DATA/big-deflate.zip
ENTRY=$("$ART" ls --json -r "$ZIP" | python3 -c '
import json, sys
print(max((e for e in json.load(sys.stdin) if not e["dir"]), key=lambda e: e["size"])["path"])')

"$ART" cat "$ZIP" "$ENTRY" | sha256sum >"$OUT/serial.sum"
"$ART" cat "$ZIP" "$ENTRY" --index-cache "$OUT/cache" | sha256sum >"$OUT/first.sum"
"$ART" cat "$ZIP" "$ENTRY" --index-cache "$OUT/cache" | sha256sum >"$OUT/parallel.sum"
cmp -s "$OUT/serial.sum" "$OUT/first.sum" && cmp -s "$OUT/serial.sum" "$OUT/parallel.sum" \
    || { echo "the outputs differ" >&2; exit 1; }
ls "$OUT"/cache/*.ckpt >/dev/null

hyperfine --warmup 1 --runs "$RUNS" --style basic --export-json "$OUT/h.json" \
    -n serial "$ART cat $ZIP $ENTRY > /dev/null" \
    -n parallel "$ART cat $ZIP $ENTRY --index-cache $OUT/cache > /dev/null" \
    -n parallel-one-core "taskset -c 0 $ART cat $ZIP $ENTRY --index-cache $OUT/cache > /dev/null" \
    -n first-with-cache "rm -rf $OUT/fresh; $ART cat $ZIP $ENTRY --index-cache $OUT/fresh > /dev/null" >/dev/null

echo "## $(nproc) cores, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p'); $("$ART" --version)"
echo "entry: $ENTRY of $ZIP (1 GiB deflated), to /dev/null; hyperfine, $RUNS runs after a warm-up"
echo
python3 - "$OUT/h.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base = r["serial"]["mean"]
print("| command | mean | ratio to serial |")
print("| --- | --- | --- |")
for name, what in [("serial", "`artifact cat` (one thread: inflate + CRC-32)"),
                   ("parallel", "`artifact cat --index-cache DIR`, checkpoints kept (all cores)"),
                   ("parallel-one-core", "the same, `taskset -c 0` (no idle core)"),
                   ("first-with-cache", "`--index-cache` into a fresh DIR (checkpoints made while reading)")]:
    x = r[name]
    print(f"| {what} | {x['mean']:.3f} s ± {x['stddev']:.3f} | **{x['mean'] / base:.2f}** |")
PY
