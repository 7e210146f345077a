#!/bin/bash
# Download wheels on the host for the Python of rotcheck/python-lambda:3.11 (Debian bookworm:
# CPython 3.11, glibc 2.36, this machine's architecture), so that images install them with
# `pip install --no-index --find-links` and never need the network themselves.
#
# Usage: scripts/images/pip-download.sh DEST_DIR -r requirements.txt | SPEC...
#   Everything after DEST_DIR goes to `pip download` (requirement specs, -r files).
# First tries binary wheels only, for the image's platform tags (manylinux up to glibc 2.36).
# If a requirement has no such wheel, it falls back to `pip wheel` with the host's Python,
# which is only sound when that is CPython 3.11 on the same architecture with glibc <= 2.36
# (true on a Debian bookworm host); otherwise it fails.
# Environment:
#   ROTCHECK_PYTHON  host Python with pip used for downloading (default python3)
# Prints only pip's last lines on failure; exit 1 with a one-line error.
set -Eeuo pipefail

die() { printf 'pip-download.sh: error: %s\n' "$*" >&2; exit 1; }
[ "$#" -ge 2 ] || die "usage: pip-download.sh DEST_DIR -r requirements.txt | SPEC..."
dest="$1"
shift
py="${ROTCHECK_PYTHON:-python3}"
TARGET_PY=3.11
TARGET_GLIBC_MINOR=36 # bookworm's glibc 2.36

command -v "$py" >/dev/null || die "no host Python '$py' to download wheels with (install python3 and python3-pip, or set ROTCHECK_PYTHON)"
"$py" -m pip --version >/dev/null 2>&1 || die "'$py -m pip' does not work; install python3-pip on the host (or set ROTCHECK_PYTHON to a Python with pip)"
mkdir -p "$dest" || die "cannot create $dest"

arch="$(uname -m)"
case "$arch" in
x86_64 | aarch64) ;;
*) die "unsupported architecture '$arch' (x86_64 or aarch64)" ;;
esac
plats=()
for ((m = TARGET_GLIBC_MINOR; m >= 17; m--)); do plats+=(--platform "manylinux_2_${m}_$arch"); done
plats+=(--platform "manylinux2014_$arch")
if [ "$arch" = x86_64 ]; then
	for ((m = 16; m >= 5; m--)); do plats+=(--platform "manylinux_2_${m}_$arch"); done
	plats+=(--platform manylinux2010_x86_64 --platform manylinux1_x86_64)
fi

log="$(mktemp "${TMPDIR:-/tmp}/rotcheck-pip-download.XXXXXX")"
trap 'rm -f "$log"' EXIT
KEPT="${TMPDIR:-/tmp}/rotcheck-pip-download.log"
keep_log() { cp "$log" "$KEPT" 2>/dev/null || true; }
# PIP_* settings of the host (e.g. a find-links dir) stay in effect for the download: they
# describe how this machine reaches PyPI.
if "$py" -m pip download --disable-pip-version-check --progress-bar off -d "$dest" \
	--only-binary=:all: "${plats[@]}" --python-version "$TARGET_PY" --implementation cp \
	--abi "cp${TARGET_PY/./}" --abi abi3 --abi none "$@" >"$log" 2>&1; then
	exit 0
fi
first_err="$(grep -m1 -E '^ERROR' "$log" || tail -n1 "$log")"

# Fallback: some requirement has no wheel for the target; build wheels with the host's Python
# if it matches the image's interpreter and libc.
host="$("$py" -c 'import platform, sys
libc, ver = platform.libc_ver()
print("%d.%d %s %s %s" % (sys.version_info[0], sys.version_info[1], sys.implementation.name, libc or "none", ver or "0"))' 2>/dev/null)" ||
	{ keep_log; die "pip download failed (${first_err}); log: $KEPT"; }
read -r hv himpl hlibc hlibcver <<<"$host"
hminor="${hlibcver#*.}"
hminor="${hminor%%.*}"
if [ "$hv" != "$TARGET_PY" ] || [ "$himpl" != cpython ] || [ "$hlibc" != glibc ] || [ "${hlibcver%%.*}" != 2 ] || [ "$hminor" -gt "$TARGET_GLIBC_MINOR" ]; then
	keep_log
	die "no binary wheels for Python $TARGET_PY/glibc 2.$TARGET_GLIBC_MINOR/$arch (${first_err}) and the host Python ($hv $himpl $hlibc $hlibcver) cannot build them; log: $KEPT"
fi
printf 'pip-download.sh: warning: binary-only download for the image platform failed (%s); retrying with pip wheel on the host Python %s\n' "$first_err" "$hv" >&2
if ! "$py" -m pip wheel --disable-pip-version-check --progress-bar off -w "$dest" "$@" >"$log" 2>&1; then
	keep_log
	die "pip wheel failed: $(grep -m1 -E '^ERROR' "$log" || tail -n1 "$log"); log: $KEPT"
fi
