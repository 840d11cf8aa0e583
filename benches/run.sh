#!/usr/bin/env bash
# Whole-process benchmarks of `artifact` against its baselines, all in one run.
# Usage: benches/run.sh [DATA_DIR]   (default: bench-data; about 2 GiB of archives, made once)
# Prints hyperfine tables and peak RSS; benches/README.md records the results.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-bench-data}
for tool in hyperfine unzip /usr/bin/time; do
    command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine unzip time; break; }
done
cargo build --release --locked -p artifact-cli -p artifact-benches --bins
BIN=target/release
"$BIN/make-bench-data" "$DATA"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "## machine"
echo "$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(lscpu | sed -n 's/^Model name: *//p')"

echo "## 1. one 2 KiB entry of a 100,000-entry archive ($(du -h "$DATA/many.zip" | cut -f1))"
hyperfine -N --warmup 10 --runs 100 --style basic \
    "$BIN/artifact cat $DATA/many.zip reports/summary.txt" \
    "unzip -p $DATA/many.zip reports/summary.txt" \
    "python3 -c 'import zipfile,sys;sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' $DATA/many.zip reports/summary.txt"

echo "## 2. a 1 GiB deflated entry to /dev/null"
"$BIN/inflate-baseline" "$DATA/big-deflate.zip" big.txt
hyperfine -N --warmup 1 --runs 5 --style basic \
    "$BIN/artifact cat $DATA/big-deflate.zip big.txt" \
    "$BIN/inflate-baseline $DATA/big-deflate.zip big.txt" \
    "unzip -p $DATA/big-deflate.zip big.txt"

if command -v cmake >/dev/null; then
    echo "## 2b. the same with zlib-ng (--features zlib-ng)"
    cargo build --release --locked -p artifact-cli -p artifact-benches --bins --features zlib-ng \
        --target-dir target/zlib-ng 2>/dev/null
    NG=target/zlib-ng/release
    "$NG/inflate-baseline" "$DATA/big-deflate.zip" big.txt
    hyperfine -N --warmup 1 --runs 5 --style basic \
        "$NG/artifact cat $DATA/big-deflate.zip big.txt" \
        "$NG/inflate-baseline $DATA/big-deflate.zip big.txt"
fi

echo "## 3. a 256 MiB stored entry to a file"
hyperfine --warmup 2 --runs 10 --style basic \
    "$BIN/artifact cat $DATA/big-stored.zip blob.bin -o $OUT/a.bin" \
    "cat $DATA/blob.raw > $OUT/b.bin" \
    "unzip -p $DATA/big-stored.zip blob.bin > $OUT/c.bin"
cmp "$OUT/a.bin" "$DATA/blob.raw"

echo "## 4. peak RSS (KiB)"
for args in "$DATA/many.zip reports/summary.txt" "$DATA/big-deflate.zip big.txt" "$DATA/big-stored.zip blob.bin -o $OUT/a.bin"; do
    # shellcheck disable=SC2086
    /usr/bin/time -f "%M KiB  artifact cat $args" "$BIN/artifact" cat $args >/dev/null
done
/usr/bin/time -f "%M KiB  async-cat big-deflate.zip big.txt (the async face)" \
    "$BIN/async-cat" "$DATA/big-deflate.zip" big.txt >/dev/null
