#!/usr/bin/env bash
# rotcheck's test command: installs and starts what the tests need on a fresh machine, then
# runs every test of the workspace. CI (.ci/run) calls exactly this; so can you.
#
#   ./scripts/test.sh [extra cargo test arguments]
#
# What it sets up (each step is skipped when already done):
#   - Debian packages: PostgreSQL 15 and MariaDB servers (the `local` database provider),
#     debootstrap (the image builder); installed with apt-get when missing (needs root);
#   - a Docker engine must answer: the docker tests run for real and fail without it;
#   - the database images rotcheck/postgres:15 and rotcheck/mariadb:10.11, built offline by
#     scripts/images/build.sh (cached in $ROTCHECK_IMAGE_CACHE);
#   - the Lambda container image of the Python PostgreSQL fixture (scripts/images/function-image.sh);
#   - a Python venv with tests/python/requirements.txt (boto3, moto server), in
#     $ROTCHECK_TEST_VENV (default: <target dir>/test-venv); the fixtures' venvs go to
#     $ROTCHECK_CACHE_DIR (default: <target dir>/rotcheck-cache)
# Then it builds the workspace, runs every test, and drives the Python fixtures through full
# rotations against real servers (fixtures/python/tests/run.sh), and runs the README quickstart
# as a new user would (scripts/quickstart-test.sh).
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'test.sh: error: %s\n' "$*" >&2; exit 2; }

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
venv="${ROTCHECK_TEST_VENV:-$target_dir/test-venv}"
requirements=tests/python/requirements.txt

say "System packages"
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql-15)
command -v mariadb-install-db >/dev/null 2>&1 || need+=(mariadb-server)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing Debian packages: ${need[*]}; install them (sudo apt-get install ${need[*]}) and rerun"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q "${need[@]}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; } \
		|| die "apt-get install ${need[*]} failed"
fi
echo "PostgreSQL: $(ls -d /usr/lib/postgresql/*/bin | tail -1); $(/usr/sbin/mariadbd --version 2>/dev/null || echo "MariaDB: mariadbd not found")"

say "Docker and the database images"
command -v docker >/dev/null 2>&1 || die "the docker CLI is missing; the database tests need a Docker engine (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info failed); start it: the docker tests do not skip"
scripts/images/build.sh
scripts/images/function-image.sh fixtures/python/postgres-single-user rotcheck/fixture-python-postgres-single-user:test

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

export ROTCHECK_CACHE_DIR="${ROTCHECK_CACHE_DIR:-$target_dir/rotcheck-cache}"

say "cargo build (all targets: the tests run the fixture binaries)"
cargo --version
cargo build --workspace --all-targets --locked

say "cargo test"
# Snapshots are never accepted silently: a changed or missing one fails the run (review with
# `cargo insta review`, or rerun with INSTA_UPDATE=always and read the git diff).
INSTA_UPDATE=no cargo test --workspace --locked "$@"

if [ "$#" -eq 0 ]; then
	say "the lambda invoker (cargo feature, off by default)"
	cargo test --locked -p rotcheck-harness --features lambda --lib function::lambda
fi

if [ "$#" -eq 0 ]; then
	say "fixture drives (every Python fixture through full rotations, real servers)"
	VENVS="$ROTCHECK_CACHE_DIR/fixture-venvs" fixtures/python/tests/run.sh
fi

if [ "$#" -eq 0 ]; then
	say "the README quickstart, verbatim, as a new user (clean clone, empty HOME, no Docker)"
	scripts/quickstart-test.sh
fi
