#!/usr/bin/env bash
# Make a Python venv holding a pinned python-gitlab, for the end-to-end test that drives
# our server with the real client (tests/e2e/python_gitlab_e2e.py), and a pinned selenium
# for the browser test (tests/e2e/browser_e2e.py).
#
#   bash scripts/setup-python-gitlab.sh        # last stdout line: the venv's python
#
# Venv: ${ARTIFACT_TEST_VENV:-<repo root>/target/python-gitlab-venv}. Python: ${PYTHON:-python3}
# (python-gitlab 8 needs Python >= 3.10). Idempotent: a marker file inside the venv records
# the pinned requirements it was built with, so a second run with the same pins only checks
# that file and prints the path. A venv left half-made (no marker, or other pins) is
# deleted and rebuilt. Concurrent runs take turns (flock on "$VENV.lock").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${ARTIFACT_TEST_VENV:-$ROOT/target/python-gitlab-venv}
PY=${PYTHON:-python3}

# Pinned: python-gitlab and what it pulls in, so every run tests the same client; and
# selenium with its own, which drives Debian's Chromium through chromedriver for the
# browsing pages' test (tests/e2e/browser_e2e.py).
REQUIREMENTS='python-gitlab==8.6.0
requests==2.34.2
requests-toolbelt==1.0.0
urllib3==2.8.0
idna==3.20
charset-normalizer==3.5.3
certifi==2026.10.19.post1
selenium==4.51.0
trio==0.35.0
trio-websocket==0.12.2
websocket-client==1.9.2
typing_extensions==4.16.0
attrs==26.1.0
h11==0.16.0
outcome==1.3.0.post0
PySocks==1.7.1
sniffio==1.3.1
sortedcontainers==2.4.0
wsproto==1.3.2'

MARKER="$VENV/.artifact-python-gitlab-ready"
VENV_PY="$VENV/bin/python"

ready() { [[ -x "$VENV_PY" && -f "$MARKER" && "$(<"$MARKER")" == "$REQUIREMENTS" ]]; }
if ready; then
    echo "$VENV_PY"
    exit 0
fi

# Tests run in parallel and may all ask at once: one builds, the others wait for it and
# then find it ready.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if ready; then
    echo "$VENV_PY"
    exit 0
fi

# Only ever delete what is recognisably a venv (or an empty directory).
if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" && -n "$(ls -A "$VENV" 2>/dev/null)" ]]; then
    echo "error: $VENV exists and is not a venv; refusing to replace it" >&2
    exit 1
fi
echo "setting up python-gitlab venv in $VENV" >&2
rm -rf "$VENV"
"$PY" -m venv "$VENV"
req_file=$(mktemp)
trap 'rm -f "$req_file"' EXIT
printf '%s\n' "$REQUIREMENTS" >"$req_file"
# Progress and notices go to stderr: stdout's last line must be the interpreter path.
"$VENV_PY" -m pip install --quiet --disable-pip-version-check --no-input -r "$req_file" >&2
"$VENV_PY" -c 'import gitlab, sys; print("python-gitlab", gitlab.__version__, file=sys.stderr)'
printf '%s' "$REQUIREMENTS" >"$MARKER"
echo "$VENV_PY"
