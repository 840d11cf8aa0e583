#!/usr/bin/env bash
# Make a Python venv holding a pinned moto (its S3-compatible server, `moto_server`), for the
# tests of the S3 blob layer.
#
#   bash scripts/setup-s3-server.sh        # last stdout line: the server program
#
# The program is moto's server with Nagle's algorithm off: it writes headers and body in
# separate writes, and without this each answer waits for the client's delayed ACK (40 ms),
# which would measure the test server rather than the code under test.
#
# Venv: ${ARTIFACT_S3_VENV:-<repo root>/target/s3-server-venv}. Idempotent, and concurrent
# runs take turns (flock), as in setup-python-gitlab.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${ARTIFACT_S3_VENV:-$ROOT/target/s3-server-venv}
PY=${PYTHON:-python3}
REQUIREMENTS='moto[server]==5.1.18 (launcher 2)'
MARKER="$VENV/.artifact-s3-server-ready"
SERVER="$VENV/bin/artifact-s3-server"

ready() { [[ -x "$SERVER" && -f "$MARKER" && "$(<"$MARKER")" == "$REQUIREMENTS" ]]; }
if ready; then
    echo "$SERVER"
    exit 0
fi
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if ready; then
    echo "$SERVER"
    exit 0
fi
if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" && -n "$(ls -A "$VENV" 2>/dev/null)" ]]; then
    echo "error: $VENV exists and is not a venv; refusing to replace it" >&2
    exit 1
fi
echo "setting up the S3 test server (moto) in $VENV" >&2
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${REQUIREMENTS%% *}" >&2
cat >"$SERVER" <<LAUNCHER
#!$VENV/bin/python
import socketserver
socketserver.StreamRequestHandler.disable_nagle_algorithm = True
from moto.server import main
main()
LAUNCHER
chmod +x "$SERVER"
printf '%s' "$REQUIREMENTS" >"$MARKER"
echo "$SERVER"
