# Sourced by the scripted benchmarks (not run): the binary under test and the archives.
# Reads ARTIFACT_BIN (use this binary, no build), CARGO_TARGET_DIR and DATA; sets ART (the
# binary's absolute path) and DATA (absolute), writing the archives with make-bench-data
# when many.zip or big-deflate.zip is missing.
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${ARTIFACT_BIN:-}" ]; then
    cargo build --release --locked -p artifact-cli
    ARTIFACT_BIN=$TARGET/release/artifact
fi
ART=$(realpath "$ARTIFACT_BIN")
if [ ! -f "$DATA/many.zip" ] || [ ! -f "$DATA/big-deflate.zip" ]; then
    cargo build --release --locked -p artifact-benches --bin make-bench-data
    "$TARGET/release/make-bench-data" "$DATA"
fi
DATA=$(realpath "$DATA")
