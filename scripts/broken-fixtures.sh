#!/usr/bin/env bash
# Runs `rotcheck check` on every broken fixture and prints, per fixture: the property found,
# the case it was found in, the shrunk story's length, and the time. The acceptance run of
# the engine issue:  scripts/broken-fixtures.sh [--cases N] [--seed S] [VARIANT ...]
set -Euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cases=256 seed=7 variants=()
while [ "$#" -gt 0 ]; do
	case "$1" in
	--cases) cases=$2; shift ;;
	--seed) seed=$2; shift ;;
	*) variants+=("$1") ;;
	esac
	shift
done
[ "${#variants[@]}" -gt 0 ] || variants=($(ls fixtures/python/broken | grep -v -E '^(README.md|tests)$'))
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --bin rotcheck
out=$(mktemp -d)
missed=0
printf '%-30s %-14s %-8s %-9s %s\n' variant found case commands seconds
for v in "${variants[@]}"; do
	args=(--db local --cases "$cases" --seed "$seed" --out "$out/$v")
	case "$v" in
	alternating-*) args+=(--strategy alternating-users) ;;
	mysql-*) args+=(--engine mysql) ;;
	esac
	start=$(date +%s.%N)
	"$target/release/rotcheck" check "fixtures/python/broken/$v" "${args[@]}" >"$out/$v.log" 2>&1
	code=$?
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
	found=$(grep -oE '^  (P[0-9]|contract) .* VIOLATED' "$out/$v.log" | awk '{print $1}' | paste -sd, -)
	case_no=$(grep -oE 'in case [0-9]+' "$out/$v.log" | head -1 | cut -d' ' -f3)
	shrunk=$(grep -oE 'to [0-9]+ commands' "$out/$v.log" | head -1 | cut -d' ' -f2)
	[ "$code" = 1 ] || { found="none(exit $code)"; missed=1; }
	printf '%-30s %-14s %-8s %-9s %s\n' "$v" "${found:--}" "${case_no:--}" "${shrunk:--}" "$secs"
done
echo "logs and counterexamples: $out"
exit "$missed"
