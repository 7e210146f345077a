#!/usr/bin/env bash
# rotcheck's test command: installs and starts what the tests need on a fresh machine, then
# runs every test of the workspace. CI (.ci/run) calls exactly this; so can you.
#
#   ./scripts/test.sh [extra cargo test arguments]
#
# What it sets up (each step is skipped when already done):
#   - a Python venv with tests/python/requirements.txt (boto3, moto server), in
#     $ROTCHECK_TEST_VENV (default: <target dir>/test-venv)
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'test.sh: error: %s\n' "$*" >&2; exit 2; }

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
venv="${ROTCHECK_TEST_VENV:-$target_dir/test-venv}"
requirements=tests/python/requirements.txt

say "Python venv ($venv)"
command -v python3 >/dev/null || die "python3 is missing; install Python 3.11 (apt-get install python3 python3-venv)"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$venv/.requirements-sha256" 2>/dev/null)" != "$want" ]; then
	rm -rf "$venv"
	python3 -m venv "$venv" || die "cannot create a venv; install python3-venv"
	"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
	echo "$want" > "$venv/.requirements-sha256"
fi
"$venv/bin/python" -c 'import boto3, moto; print("boto3", boto3.__version__, "moto", moto.__version__)'
export ROTCHECK_TEST_PYTHON="$venv/bin/python"

say "cargo test"
cargo --version
cargo test --workspace --locked "$@"
