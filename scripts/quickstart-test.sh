#!/usr/bin/env bash
# Runs the README's quickstart block verbatim, as a new user would: in a clean clone of this
# checkout's HEAD, with an empty HOME and XDG_CACHE_HOME (no cached venvs), DOCKER_HOST pointing
# nowhere (so the embedded default database must serve); rotcheck is built from the clone's
# sources. Cargo's and rustup's own installations are the machine's, so CARGO_HOME and
# RUSTUP_HOME are passed through (an empty HOME would otherwise hide the toolchain), and so is
# CARGO_TARGET_DIR when set (CI's cache: the dependencies compiled already are reused; the
# clone's own crates are rebuilt because their path differs). Passes when the block exits 0
# with a verdict (the properties table and the seed).
#
#   scripts/quickstart-test.sh
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=$(mktemp -d /tmp/rotcheck-quickstart.XXXXXX)
trap 'rm -rf "$work"' EXIT
git clone --quiet . "$work/rotcheck"
# The first ```sh block after "## Quickstart".
block=$(awk '/^## Quickstart/ { q = 1 } q && /^```sh$/ { f = 1; next } f && /^```$/ { exit } f { print }' "$work/rotcheck/README.md")
[ -n "$block" ] || { echo "quickstart-test.sh: no sh block under ## Quickstart in README.md" >&2; exit 2; }
mkdir -p "$work/home" "$work/cache"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
printf '== the README quickstart, verbatim:\n%s\n' "$block"
start=$(date +%s)
set +e
(
	cd "$work/rotcheck"
	unset ROTCHECK_CACHE_DIR ROTCHECK_PYTHON ROTCHECK_TEST_PYTHON
	export HOME="$work/home" XDG_CACHE_HOME="$work/cache" DOCKER_HOST="unix:///nonexistent/docker.sock"
	export CARGO_HOME="$cargo_home" RUSTUP_HOME="$rustup_home"
	bash -e -c "$block"
) >"$work/out.log" 2>&1
code=$?
set -e
tail -25 "$work/out.log"
echo "== exit $code after $(( $(date +%s) - start )) s"
[ "$code" = 0 ] || { echo "quickstart-test.sh: the README quickstart failed (exit $code)" >&2; exit 1; }
grep -q '^Properties (' "$work/out.log" || { echo "quickstart-test.sh: no properties table in the output" >&2; exit 1; }
grep -q '^Seed: 1 ' "$work/out.log" || { echo "quickstart-test.sh: no seed line in the output" >&2; exit 1; }
ls "$work/cache/rotcheck" >/dev/null 2>&1 || { echo "quickstart-test.sh: the venv cache did not go to XDG_CACHE_HOME" >&2; exit 1; }
echo "quickstart: a verdict from a clean clone with an empty HOME and no Docker"
