#!/bin/bash
# Build a Lambda container image of a Python function, FROM rotcheck/python-lambda:3.11,
# without any registry or network inside the build.
#
# Usage: scripts/images/function-image.sh [--force] FUNCTION_DIR TAG
#   FUNCTION_DIR   the function's code (copied to /var/task), with an optional
#                  requirements.txt (installed into /var/task with pip --target, as AWS
#                  documents for its base images); __pycache__, *.pyc, .git, .venv, venv,
#                  .mypy_cache and .pytest_cache are left out
#   TAG            the image to make, e.g. rotcheck-fn/postgres-single-user:latest
#   --force        rebuild even if TAG is current, without any build cache
# The image keeps the base's ENTRYPOINT ["/lambda-entrypoint.sh"] and CMD
# ["lambda_function.lambda_handler"]; run it with AWS_LAMBDA_RUNTIME_API=<host>:<port> and,
# for another handler, the handler as the command.
#
# How: the wheels of requirements.txt are downloaded on the host (pip-download.sh, for the
# image's CPython 3.11/glibc 2.36), then `docker build` (the classic builder; the base is
# local, nothing is pulled) installs them with `pip install --no-index --find-links` in a
# first stage and copies only the installed packages and the code into the image. The base
# is built with `build.sh --only python-lambda` when missing.
# TAG is skipped when it carries org.rotcheck.recipe=<sha256 of this script, the base's
# recipe and the function directory's contents>. The first stage is kept (untagged, labels
# org.rotcheck.function-deps=TAG, org.rotcheck.deps-recipe=<sha256 of this script, the
# base's recipe and requirements.txt>) while TAG's requirements stay the same: a build that
# finds one for its requirements starts FROM it and downloads nothing.
# Environment:
#   ROTCHECK_PYTHON   host Python with pip used to download wheels (default python3)
#   DOCKER_BUILDKIT   left as set; when unset this script uses the classic builder (0)
# Exit 0 when TAG is current; 1 with a one-line error otherwise.
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BASE=rotcheck/python-lambda:3.11
EXCLUDES=(--exclude=__pycache__ --exclude='*.pyc' --exclude=.git --exclude=.venv --exclude=venv
	--exclude=.mypy_cache --exclude=.pytest_cache)

die() { printf 'function-image.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"; }
say() { printf '[function-image %s] %s\n' "${TAG:-}" "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
STAGE_T0=
stage_start() { STAGE_T0="$(now)"; say "$1 ..."; }
stage_end() { say "$1 took $(since "$STAGE_T0") s"; }

FORCE=0
ARGS=()
while [ "$#" -gt 0 ]; do
	case "$1" in
	--force) FORCE=1 ;;
	-h | --help) usage; exit 0 ;;
	--) shift; ARGS+=("$@"); break ;;
	-*) die "unknown option '$1' (see --help)" ;;
	*) ARGS+=("$1") ;;
	esac
	shift
done
[ "${#ARGS[@]}" = 2 ] || die "usage: function-image.sh [--force] FUNCTION_DIR TAG (see --help)"
FN_DIR="${ARGS[0]}"
TAG="${ARGS[1]}"
[ -d "$FN_DIR" ] || die "function directory '$FN_DIR' does not exist"
FN_DIR="$(cd "$FN_DIR" && pwd)"
case "$TAG" in
*[!a-z0-9._/:-]* | '' | [._/:-]*) die "'$TAG' is not a valid image name (lowercase name[:tag])" ;;
esac
[[ "${TAG##*/}" == *:* ]] || TAG="$TAG:latest"
REQ="$FN_DIR/requirements.txt"
if [ -f "$REQ" ] && grep -qE '^[[:space:]]*(-r|-c|--requirement|--constraint|-e|--editable)([[:space:]=]|$)' "$REQ"; then
	die "$REQ includes other files or editable installs (-r/-c/-e); only a self-contained list of requirements is supported"
fi

T_ALL="$(now)"
command -v docker >/dev/null || die "docker CLI not found"
out="$(timeout 30 docker info --format '{{.ServerVersion}}' 2>&1)" ||
	die "docker daemon unreachable: $(printf '%s' "$out" | tail -n1)"
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}"

# ---- the base ---------------------------------------------------------------
base_recipe() { docker image inspect -f '{{index .Config.Labels "org.rotcheck.recipe"}}' "$BASE" 2>/dev/null || true; }
BASE_RECIPE="$(base_recipe)"
if [ -z "$BASE_RECIPE" ]; then
	stage_start "building the missing base $BASE (build.sh --only python-lambda)"
	"$SCRIPT_DIR/build.sh" --only python-lambda || die "could not build the base image $BASE"
	stage_end "building the base"
	BASE_RECIPE="$(base_recipe)"
	[ -n "$BASE_RECIPE" ] || die "$BASE still has no org.rotcheck.recipe label after build.sh"
fi

# ---- recipe -------------------------------------------------------------------
# The function directory as a normalised tar stream (names sorted, owners and times
# dropped, the same exclusions as the build context): its hash covers names, contents
# and modes.
fn_tar() {
	tar -C "$FN_DIR" "${EXCLUDES[@]}" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
		--no-acls --no-xattrs -cf - .
}
FN_SUM="$(fn_tar | sha256sum | cut -d' ' -f1)" || die "cannot read $FN_DIR"
HASH="$({
	printf 'base=%s fn=%s\n' "$BASE_RECIPE" "$FN_SUM"
	cat "${BASH_SOURCE[0]}"
} | sha256sum | cut -d' ' -f1)"
DEPS_HASH=
# only a requirements.txt that names something gets a first stage
if [ -f "$REQ" ] && grep -qvE '^[[:space:]]*(#.*)?$' "$REQ"; then
	DEPS_HASH="$({
		printf 'base=%s\n' "$BASE_RECIPE"
		cat "${BASH_SOURCE[0]}" "$REQ"
	} | sha256sum | cut -d' ' -f1)"
fi

if [ "$FORCE" = 0 ]; then
	cur="$(docker image inspect -f '{{index .Config.Labels "org.rotcheck.recipe"}}' "$TAG" 2>/dev/null || true)"
	if [ "$cur" = "$HASH" ]; then
		say "$TAG is up to date (recipe ${HASH:0:12}); skipping"
		exit 0
	fi
fi

# ---- build context --------------------------------------------------------------
CTX="$(mktemp -d "${TMPDIR:-/tmp}/rotcheck-function-image.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$CTX/function"
# (with the files' own times, unlike the hashed stream)
tar -C "$FN_DIR" "${EXCLUDES[@]}" --no-acls --no-xattrs -cf - . | tar -C "$CTX/function" --no-same-owner -xf - ||
	die "cannot copy $FN_DIR into the build context"

# A first stage for these requirements on this base (from any function) is reused as is:
# no download, no install.
DEPS_IMAGE=
if [ -n "$DEPS_HASH" ] && [ "$FORCE" = 0 ]; then
	DEPS_IMAGE="$(docker images -q --no-trunc --filter "label=org.rotcheck.deps-recipe=$DEPS_HASH" 2>/dev/null | head -n1)"
fi
if [ -n "$DEPS_IMAGE" ]; then
	DEPS_IMAGE="${DEPS_IMAGE#sha256:}"
	DEPS_IMAGE="${DEPS_IMAGE:0:12}"
	say "requirements.txt already installed in image $DEPS_IMAGE: no download, no pip install"
elif [ -n "$DEPS_HASH" ]; then
	stage_start "downloading wheels for requirements.txt on the host"
	mkdir -p "$CTX/deps"
	cp "$REQ" "$CTX/deps/requirements.txt"
	# (pip-download.sh prints its own one-line error)
	"$SCRIPT_DIR/pip-download.sh" "$CTX/deps/wheels" -r "$REQ" || exit 1
	stage_end "downloading $(find "$CTX/deps/wheels" -name '*.whl' | wc -l) wheels"
fi

# Labels and the tag go into Dockerfile strings; TAG is restricted above, hashes are hex.
{
	if [ -n "$DEPS_IMAGE" ]; then
		printf 'FROM %s AS deps\n\n' "$DEPS_IMAGE"
	elif [ -n "$DEPS_HASH" ]; then
		cat <<-EOF
			FROM $BASE AS deps
			COPY deps/ /tmp/deps/
			RUN ["/var/lang/bin/pip", "install", "--no-index", "--find-links", "/tmp/deps/wheels", "--target", "/opt/deps", "--no-cache-dir", "--disable-pip-version-check", "--root-user-action=ignore", "--quiet", "-r", "/tmp/deps/requirements.txt"]
			LABEL org.rotcheck.function-deps="$TAG" org.rotcheck.deps-recipe="$DEPS_HASH"

		EOF
	fi
	echo "FROM $BASE"
	[ -z "$DEPS_HASH" ] || echo "COPY --from=deps /opt/deps/ /var/task/"
	cat <<-EOF
		COPY function/ /var/task/
		LABEL org.rotcheck.recipe="$HASH" org.rotcheck.base-recipe="$BASE_RECIPE"
	EOF
} >"$CTX/Dockerfile"

# ---- build --------------------------------------------------------------------------
OLD="$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)"
stage_start "docker build (FROM $BASE)"
BUILD_ARGS=(--network none --force-rm)
[ "$FORCE" = 0 ] || BUILD_ARGS+=(--no-cache)
if ! docker build "${BUILD_ARGS[@]}" -t "$TAG" "$CTX" >"$CTX/build.log" 2>&1; then
	keep="${TMPDIR:-/tmp}/rotcheck-function-image.log"
	cp "$CTX/build.log" "$keep" 2>/dev/null || true
	die "docker build failed: $(grep -vE '^ ---> |^Step |^Removing intermediate|^Sending build context|^$' "$CTX/build.log" | tail -n1); log: $keep"
fi
stage_end "docker build"

NEW="$(docker image inspect -f '{{.Id}}' "$TAG")"
if [ -n "$OLD" ] && [ "$OLD" != "$NEW" ]; then
	# drop the superseded build unless a container still uses it
	docker image rm "$OLD" >/dev/null 2>&1 || true
fi
# first stages of this tag for other requirements are no longer useful as cache
for id in $(docker images -q --no-trunc --filter dangling=true --filter "label=org.rotcheck.function-deps=$TAG" 2>/dev/null); do
	deps="$(docker image inspect -f '{{index .Config.Labels "org.rotcheck.deps-recipe"}}' "$id" 2>/dev/null || true)"
	[ "$deps" = "$DEPS_HASH" ] || docker image rm "$id" >/dev/null 2>&1 || true
done

size="$(docker image inspect -f '{{.Size}}' "$TAG")"
say "built $TAG (recipe ${HASH:0:12}, $((size / 1000000)) MB) in $(since "$T_ALL") s"
