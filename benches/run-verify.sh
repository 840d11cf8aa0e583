#!/usr/bin/env bash
# Verification at import, each against its baseline in the same run:
#  1. `artifact verify` of the 1 GiB deflated bench archive against `artifact cat` of that
#     entry to /dev/null (target: at most 1.15x the time of cat);
#  2. `artifact verify` of the 100,000-entry archive on all cores against `--threads 1`
#     (target: at least 1.6x faster on 2 cores);
#  3. `artifact import` of both archives (verification, then storing the archive, its
#     metadata.gz and the outcome, with fsync), for the record.
# Usage: benches/run-verify.sh [DATA_DIR]   (default bench-data, made by make-bench-data)
# Environment: RUNS (5), ARTIFACT_BIN (use this binary, no build).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
RUNS=${RUNS:-5}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
# shellcheck source=benches/prepare.sh
source benches/prepare.sh
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# ratio JSON A B: mean time of command A over command B in a hyperfine export.
ratio() { python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["results"]; print("%.3f" % (r[0]["mean"] / r[1]["mean"]))' "$1"; }

echo "## machine"
echo "$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p')"

echo "## 1. verify the 1 GiB deflated archive, against cat of its entry to /dev/null"
hyperfine -N --warmup 1 --runs "$RUNS" --style basic --export-json "$OUT/big.json" \
    "$ART verify $DATA/big-deflate.zip" \
    "$ART cat $DATA/big-deflate.zip big.txt"
echo "verify / cat: $(ratio "$OUT/big.json") (target <= 1.15)"

echo "## 2. verify the 100,000-entry archive: one thread, then all cores"
hyperfine -N --warmup 1 --runs "$RUNS" --style basic --export-json "$OUT/many.json" \
    "$ART verify $DATA/many.zip --threads 1" \
    "$ART verify $DATA/many.zip"
echo "all cores are $(ratio "$OUT/many.json")x faster than one thread (target >= 1.6 on 2 cores)"

echo "## 3. import (verification + storing with fsync)"
"$ART" admin --data "$OUT/data" project add bench/app >/dev/null
n=0
for zip in big-deflate.zip many.zip; do
    start=$(date +%s.%N)
    n=$((n + 1))
    "$ART" import --data "$OUT/data" --project bench/app --ref main --job "j$n" --artifacts "$DATA/$zip" >/dev/null
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" -v z="$zip" 'BEGIN{printf "import %s: %.2f s\n", z, e - s}'
done
