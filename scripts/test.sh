#!/usr/bin/env bash
# The README's test command: installs what the tests need from outside the Rust toolchain
# when it is missing, then runs every test of the workspace, those included.
#
# - PostgreSQL's binaries, from the distribution's packages (the router suite on PostgreSQL,
#   the replicas): the testkit starts its own server from them in a temporary directory (as
#   the `postgres` user when run as root) and stops it when the tests end.
# - Headless Chromium and chromedriver, from the distribution's packages (the browsing pages
#   in a real browser).
# - python3-venv, from the distribution's packages: python-gitlab and selenium (into
#   target/python-gitlab-venv) and moto, an S3-compatible server (into target/s3-server-venv),
#   come from PyPI, installed by the tests themselves on their first run
#   (scripts/setup-python-gitlab.sh, scripts/setup-s3-server.sh).
#
# Without these, `cargo test --workspace` still passes: it leaves those tests out and says
# so in one line.
set -euo pipefail
cd "$(dirname "$0")/.."

install() {
    local as_root=""
    [ "$(id -u)" = 0 ] || as_root="sudo"
    $as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq "$@" >/dev/null
}
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || install postgresql
{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || install chromium chromium-driver
python3 -c 'import ensurepip' 2>/dev/null || install python3-venv

exec cargo test --workspace --locked --features artifact-server/external-tests,artifact-cli/external-tests,artifact-records/external-tests,artifact-blobs/external-tests "$@"
