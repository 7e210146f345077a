#!/usr/bin/env bash
# The engine's full acceptance run (not part of the test command: it takes the better part of
# an hour on 2 cores):
#   1. every correct fixture, 256 generated cases plus the crash sweep, for 3 seeds: no
#      violation may be found (no false alarms);
#   2. every broken fixture (scripts/broken-fixtures.sh): the property it breaks, found and
#      shrunk.
#
#   scripts/acceptance.sh [--cases N] [--seeds "1 2 3"] [--skip-broken]
set -Euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cases=256 seeds="1 2 3" broken=1
while [ "$#" -gt 0 ]; do
	case "$1" in
	--cases) cases=$2; shift ;;
	--seeds) seeds=$2; shift ;;
	--skip-broken) broken=0 ;;
	*) echo "acceptance.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --bin rotcheck
out=$(mktemp -d)
failed=0
printf '%-28s %-6s %-6s %-8s %-10s %-12s %s\n' fixture seed cases verdict rotations kills seconds
for fixture in postgres-single-user postgres-alternating-users mysql-single-user; do
	args=(--db local --cases "$cases")
	case "$fixture" in
	*alternating*) args+=(--strategy alternating-users) ;;
	mysql-*) args+=(--engine mysql) ;;
	esac
	for seed in $seeds; do
		log="$out/$fixture-$seed.log"
		start=$(date +%s.%N)
		"$target/release/rotcheck" check "fixtures/python/$fixture" "${args[@]}" --seed "$seed" --out "$out/cx" >"$log" 2>&1
		code=$?
		secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
		ran=$(grep -oE '; [0-9]+ cases in' "$log" | grep -oE '[0-9]+' | head -1)
		rot=$(grep -oE 'rotations [0-9]+ \(completed [0-9]+' "$log" | grep -oE '[0-9]+' | paste -sd/ -)
		kills=$(grep -oE 'kills [0-9]+' "$log" | grep -oE '[0-9]+')
		verdict=$([ "$code" = 0 ] && echo clean || echo "EXIT $code")
		[ "$code" = 0 ] || failed=1
		printf '%-28s %-6s %-6s %-8s %-10s %-12s %s\n' "$fixture" "$seed" "${ran:--}" "$verdict" "${rot:--}" "${kills:--}" "$secs"
	done
done
echo "logs: $out"
if [ "$broken" = 1 ]; then
	echo
	scripts/broken-fixtures.sh --cases "$cases" || failed=1
fi
exit "$failed"
