#!/usr/bin/env bash
# Regenerate every committed zip fixture in tests/data/ from scratch.
#
#   bash scripts/make-fixtures.sh
#
# Needs: Info-ZIP zip 3.0 (`zip`), unzip/zipinfo (only for checks), Python >= 3.11
# (stdlib only). Outputs: tests/data/*.zip, tests/data/manifest.json,
# tests/data/README.md. Re-runnable: every generated file is deleted and rebuilt, all
# inputs have fixed contents, modes and mtimes, and TZ=UTC pins the DOS timestamps, so
# two runs with the same zip/zlib versions give byte-identical output.
set -euo pipefail

export TZ=UTC LC_ALL=C
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/tests/data"
PY=${PYTHON:-python3}
ZIP=${ZIP:-zip}
HELPER="$ROOT/scripts/make_fixtures.py"
STAMP='2024-01-02 03:04:05 UTC'

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$OUT"
# Only remove what this script generates.
rm -f "$OUT"/infozip-*.zip "$OUT"/python-*.zip "$OUT"/truncated-*.zip \
      "$OUT"/manifest.json "$OUT"/README.md

# Fixed mtime on files, symlinks (-h) and directories.
stamp() { touch -h -d "$STAMP" "$@"; }

# ---------------------------------------------------------------- source trees
# basic/: nested dirs, an empty file, ~20 KiB of compressible text, a .bin stored via -n.
B="$WORK/basic"
mkdir -p "$B/docs/nested/deep"
printf 'Top-level readme for the infozip-basic fixture.\n' > "$B/docs/readme.txt"
printf 'leaf file three directories down\n' > "$B/docs/nested/deep/leaf.txt"
: > "$B/empty.txt"
"$PY" "$HELPER" pattern "$B/data.bin"          # bytes 0..255 x4 (compressible, but -n .bin stores it)
for i in $(seq 1 380); do
  printf 'line %04d: the quick brown fox jumps over the lazy dog\n' "$i"
done > "$B/big.txt"                             # 20,900 bytes
chmod 644 "$B/docs/readme.txt" "$B/docs/nested/deep/leaf.txt" "$B/empty.txt" "$B/data.bin" "$B/big.txt"
chmod 755 "$B/docs" "$B/docs/nested" "$B/docs/nested/deep"
stamp "$B/docs/readme.txt" "$B/docs/nested/deep/leaf.txt" "$B/empty.txt" "$B/data.bin" "$B/big.txt"
stamp "$B/docs/nested/deep" "$B/docs/nested" "$B/docs"
# Explicit, ordered member list (no -r: readdir order is not stable). big.txt is last on
# purpose: the truncated-* fixtures cut into its local header / data.
BASIC_MEMBERS=(docs/ docs/readme.txt docs/nested/ docs/nested/deep/ docs/nested/deep/leaf.txt
               empty.txt data.bin big.txt)

# sym/: target.txt plus link -> target.txt
S="$WORK/sym"
mkdir -p "$S"
printf 'symlink target contents\n' > "$S/target.txt"
chmod 644 "$S/target.txt"
ln -s target.txt "$S/link"
stamp "$S/target.txt" "$S/link"

# small/: two small files for the comment / sfx / streamed cases
M="$WORK/small"
mkdir -p "$M"
printf 'hello from a.txt\n' > "$M/a.txt"
for i in $(seq 1 40); do printf 'b.txt line %02d compresses well\n' "$i"; done > "$M/b.txt"
chmod 644 "$M/a.txt" "$M/b.txt"
stamp "$M/a.txt" "$M/b.txt"

# ---------------------------------------------------------------- Info-ZIP cases
# -X drops the UT/ux extra fields (they carry atime etc.), so the only timestamp left is
# the DOS one, which TZ=UTC pins.

# infozip-basic.zip
(cd "$B" && "$ZIP" -X -q -n .bin "$WORK/infozip-basic.zip" "${BASIC_MEMBERS[@]}")

# infozip-symlink.zip: -y stores the link itself (mode 0120777, data = target path)
(cd "$S" && "$ZIP" -X -q -y "$WORK/infozip-symlink.zip" target.txt link)

# infozip-comment.zip: archive comment = text + "PK\x05\x06" + 18 junk bytes, i.e. a
# 22-byte fake EOCD record forming the last 22 bytes of the file. zip -z reads the
# comment from stdin; there is no newline (zip would turn \n into \r\n) and no NUL
# (zip stops at NUL), so the fake record's comment-length field is 0xFECA and does not
# reach EOF.
(cd "$M" && printf 'infozip-comment fixture; a fake EOCD follows: PK\005\006\336\255\276\357\336\255\276\357\336\255\276\357\336\255\276\357\312\376' \
   | "$ZIP" -X -q -z "$WORK/infozip-comment.zip" a.txt b.txt)

# infozip-sfx.zip / infozip-sfx-unadjusted.zip: 4 KiB of junk prepended
"$PY" "$HELPER" junk 4096 "$WORK/junk.bin"
(cd "$M" && "$ZIP" -X -q "$WORK/plain-small.zip" a.txt b.txt)
cat "$WORK/junk.bin" "$WORK/plain-small.zip" > "$WORK/infozip-sfx-unadjusted.zip"
cp "$WORK/infozip-sfx-unadjusted.zip" "$WORK/infozip-sfx.zip"
"$ZIP" -q -A "$WORK/infozip-sfx.zip"

# infozip-streamed.zip: output to a pipe (not seekable) => zip writes data descriptors
# (general purpose flag bit 3, PK\x07\x08 + 32-bit sizes) for every entry.
(cd "$M" && "$ZIP" -X -q - a.txt b.txt | cat > "$WORK/infozip-streamed.zip")

# infozip-streamed-stdin.zip: stdin -> pipe. The input size is unknown, so zip 3.0 puts a
# Zip64 extra field (sizes 0) in the local header and writes a Zip64 data descriptor
# (64-bit sizes); the central directory has plain 32-bit sizes. Entry name is "-". zip
# stamps the entry with the current time, so the DOS time/date are rewritten afterwards
# to the fixed stamp (the only bytes changed).
printf 'streamed through stdin\n' \
  | "$ZIP" -X -q - - | cat > "$WORK/infozip-streamed-stdin.zip"
"$PY" "$HELPER" set-dos-time "$WORK/infozip-streamed-stdin.zip"

for f in infozip-streamed.zip infozip-streamed-stdin.zip; do
  info=$(zipinfo -v "$WORK/$f")   # not piped into grep -q: SIGPIPE + pipefail
  if ! grep -q 'extended local header:.*yes' <<<"$info"; then
    echo "error: $f has no data descriptor (flag bit 3)" >&2; exit 1
  fi
done

for f in infozip-basic.zip infozip-symlink.zip infozip-comment.zip infozip-sfx.zip \
         infozip-sfx-unadjusted.zip infozip-streamed.zip infozip-streamed-stdin.zip; do
  cp "$WORK/$f" "$OUT/$f"
done

# ---------------------------------------------------------------- Python cases,
# truncated-* (derived from infozip-basic.zip), manifest.json, README.md, size checks
"$PY" "$HELPER" python "$OUT"
"$PY" "$HELPER" manifest "$OUT"

# The demo's two archives live inside the command line's package too (crates/cli/demo/).
cp "$OUT/infozip-basic.zip" "$OUT/python-deflate.zip" "$ROOT/crates/cli/demo/"
echo "fixtures written to $OUT (and the demo's copies to crates/cli/demo)"
