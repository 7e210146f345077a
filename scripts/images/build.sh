#!/bin/bash
# Build rotcheck's images without any container registry.
#
#   rotcheck/postgres:15   Debian bookworm minbase + postgresql-15 + postgres-entrypoint.sh
#   rotcheck/mariadb:10.11 Debian bookworm minbase + mariadb-server + mariadb-entrypoint.sh
#   rotcheck/python-lambda:3.11
#                          Debian bookworm minbase + python3 (3.11) + a venv /var/lang with
#                          python-lambda-requirements.txt (awslambdaric) +
#                          python-lambda-entrypoint.sh as /lambda-entrypoint.sh: a Lambda
#                          base image (see function-image.sh for images of functions)
#
# Each image is a debootstrap rootfs (from the Debian mirror in this machine's apt
# configuration) imported with `docker import`. Nothing is pulled. Python wheels are
# downloaded on the host (pip-download.sh) and installed in a chroot without network.
#
# Usage: scripts/images/build.sh [--force] [--only postgres|mariadb|python-lambda]
#   --force        rebuild from debootstrap even if the image or cached rootfs is current
#   --only NAME    build just one image
# Environment:
#   ROTCHECK_IMAGE_CACHE   rootfs tarball cache (default /var/cache/rotcheck/images);
#                          optional, the build works without it
#   ROTCHECK_DEBIAN_MIRROR override the mirror read from the apt configuration
#   ROTCHECK_PYTHON        host Python with pip that downloads wheels (default python3)
#
# An image is skipped when `docker image inspect` finds its tag carrying the label
# org.rotcheck.recipe=<sha256 of this script + the image's entrypoint (+ for
# python-lambda: its requirements and pip-download.sh)>. If only the cached tarball
# for that hash exists, it is re-imported (no debootstrap).
# Needs root (debootstrap, chroot) only when a rootfs has to be built.
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE=bookworm
CACHE_DIR="${ROTCHECK_IMAGE_CACHE:-/var/cache/rotcheck/images}"

ORIG_ARGS=("$@")
FORCE=0
ONLY=
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }
say() { printf '[%s] %s\n' "${CUR:-build}" "$*"; }

while [ "$#" -gt 0 ]; do
	case "$1" in
	--force) FORCE=1 ;;
	--only) [ "$#" -ge 2 ] || die "--only needs an argument (postgres|mariadb|python-lambda)"; ONLY="$2"; shift ;;
	--only=*) ONLY="${1#--only=}" ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done
case "$ONLY" in
'') IMAGES=(postgres mariadb python-lambda) ;;
postgres | mariadb | python-lambda) IMAGES=("$ONLY") ;;
*) die "--only must be 'postgres', 'mariadb' or 'python-lambda', not '$ONLY'" ;;
esac

# ---- timing ---------------------------------------------------------------
now() { date +%s.%N; }
STAGE_T0=
stage_start() { STAGE_T0="$(now)"; say "$1 ..."; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
stage_end() { say "$1 took $(since "$STAGE_T0") s"; }

# ---- per-image recipe -----------------------------------------------------
image_tag() {
	case "$1" in
	postgres) echo rotcheck/postgres:15 ;;
	mariadb) echo rotcheck/mariadb:10.11 ;;
	python-lambda) echo rotcheck/python-lambda:3.11 ;;
	esac
}
image_pkgs() {
	case "$1" in
	postgres) echo postgresql-15 ;;
	mariadb) echo mariadb-server ;;
	python-lambda) echo python3,python3-venv,ca-certificates ;;
	esac
}
image_changes() { # docker import --change arguments (one per line)
	case "$1" in
	postgres)
		printf '%s\n' \
			'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			'ENV LANG=C.UTF-8' \
			'ENV PGDATA=/var/lib/postgresql/data' \
			'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
			'CMD ["postgres"]' \
			'EXPOSE 5432'
		;;
	mariadb)
		printf '%s\n' \
			'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			'ENV LANG=C.UTF-8' \
			'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
			'CMD ["mariadbd"]' \
			'EXPOSE 3306'
		;;
	python-lambda)
		# like AWS's Lambda Python base images: code in /var/task, Python in /var/lang
		printf '%s\n' \
			'ENV PATH=/var/lang/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			'ENV LANG=C.UTF-8' \
			'ENV LAMBDA_TASK_ROOT=/var/task' \
			'ENV PYTHONUNBUFFERED=1' \
			'WORKDIR /var/task' \
			'ENTRYPOINT ["/lambda-entrypoint.sh"]' \
			'CMD ["lambda_function.lambda_handler"]'
		;;
	esac
}
recipe_hash() { # everything that determines the image content
	{
		printf 'image=%s suite=%s\n' "$1" "$SUITE"
		cat "${BASH_SOURCE[0]}" "$SCRIPT_DIR/$1-entrypoint.sh"
		[ "$1" != python-lambda ] || cat "$SCRIPT_DIR/python-lambda-requirements.txt" "$SCRIPT_DIR/pip-download.sh"
	} | sha256sum | cut -d' ' -f1
}

# ---- environment checks ---------------------------------------------------
check_docker() {
	command -v docker >/dev/null || die "docker CLI not found"
	local out
	out="$(timeout 30 docker info --format '{{.ServerVersion}}' 2>&1)" ||
		die "docker daemon unreachable: $(printf '%s' "$out" | tail -n1)"
}

debian_mirror() {
	if [ -n "${ROTCHECK_DEBIAN_MIRROR:-}" ]; then echo "$ROTCHECK_DEBIAN_MIRROR"; return; fi
	local m=
	if [ -r /etc/apt/sources.list.d/debian.sources ]; then
		# first URIs of a deb822 stanza whose Suites include the plain suite name
		m="$(awk -v suite="$SUITE" '
			function flush() { if (uri != "" && ok && !found) { print uri; found = 1 } uri = ""; ok = 0 }
			/^[ \t]*$/ { flush(); next }
			tolower($1) == "uris:" { uri = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
			END { flush() }' /etc/apt/sources.list.d/debian.sources)"
	fi
	if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
		m="$(awk -v suite="$SUITE" '$1 == "deb" {
			for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i+1) == suite) { print $i; exit } break } }' /etc/apt/sources.list)"
	fi
	[ -n "$m" ] || die "no Debian mirror for '$SUITE' found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list (set ROTCHECK_DEBIAN_MIRROR)"
	echo "$m"
}

ensure_root_tools() {
	[ "$(id -u)" = 0 ] || die "building a rootfs needs root (debootstrap/chroot); run: sudo $0 ${ORIG_ARGS[*]}"
	if ! command -v debootstrap >/dev/null; then
		stage_start "installing debootstrap via apt-get"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 ||
			{ DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1; } ||
			die "could not install debootstrap with apt-get"
		stage_end "installing debootstrap"
	fi
}

# ---- cache ----------------------------------------------------------------
CACHE_OK=0
init_cache() {
	if mkdir -p "$CACHE_DIR" 2>/dev/null && [ -w "$CACHE_DIR" ]; then
		CACHE_OK=1
	else
		printf 'build.sh: warning: cache dir %s not writable; building without cache\n' "$CACHE_DIR" >&2
	fi
}

# ---- rootfs ---------------------------------------------------------------
WORK=
cleanup() {
	[ -n "$WORK" ] && [ -d "$WORK" ] || return 0
	# debootstrap may leave /proc or /sys mounted inside the target on failure
	local m
	for m in $(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_rootfs() { # build_rootfs NAME ROOTFS
	local name="$1" root="$2" mirror rc=0 dlog
	mirror="$(debian_mirror)"
	dlog="$WORK/debootstrap.log"
	local cache_args=()
	if [ "$CACHE_OK" = 1 ] && mkdir -p "$CACHE_DIR/debs" 2>/dev/null; then
		cache_args=(--cache-dir="$(cd "$CACHE_DIR/debs" && pwd)")
	fi

	if [ "$name" = python-lambda ]; then
		# the network part first (on the host), so that a missing pip fails early
		stage_start "downloading wheels for python-lambda-requirements.txt on the host"
		"$SCRIPT_DIR/pip-download.sh" "$WORK/wheels" -r "$SCRIPT_DIR/python-lambda-requirements.txt" ||
			die "could not download the wheels of python-lambda-requirements.txt"
		stage_end "downloading wheels"
	fi

	stage_start "debootstrap --variant=minbase $SUITE + $(image_pkgs "$name") from $mirror"
	debootstrap --variant=minbase --include="$(image_pkgs "$name")" "${cache_args[@]}" \
		"$SUITE" "$root" "$mirror" >"$dlog" 2>&1 || rc=$?
	if [ "$rc" != 0 ]; then
		local keep="${TMPDIR:-/tmp}/rotcheck-debootstrap-$name.log"
		cat "$dlog" "$root/debootstrap/debootstrap.log" >"$keep" 2>/dev/null || true
		tail -n 15 "$dlog" >&2 || true
		die "debootstrap failed for $name (exit $rc); full log: $keep"
	fi
	stage_end "debootstrap"

	stage_start "configuring and stripping rootfs"
	if [ "$name" = python-lambda ]; then
		install -m 0755 "$SCRIPT_DIR/$name-entrypoint.sh" "$root/lambda-entrypoint.sh"
	else
		install -m 0755 "$SCRIPT_DIR/$name-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
		mkdir -p "$root/docker-entrypoint-initdb.d"
	fi
	case "$name" in
	postgres)
		# the cluster "main" created by postgresql-common's postinst; the entrypoint makes its own
		rm -rf "$root/var/lib/postgresql/15" "$root/etc/postgresql/15"
		# JIT: llvmjit.so + bitcode + libLLVM + libz3 (used only by libLLVM) are
		# ~140 MB; without them PostgreSQL silently runs with JIT unavailable
		# (SHOW jit = on, but pg_jit_available() = false). dpkg still lists the
		# packages; `apt-get install --reinstall libllvm14 libz3-4 postgresql-15`
		# in a container would bring JIT back.
		rm -rf "$root/usr/lib/postgresql/15/lib/bitcode" "$root"/usr/lib/postgresql/15/lib/llvmjit*.so
		rm -f "$root"/usr/lib/*/libLLVM-*.so* "$root"/usr/lib/*/libz3.so*
		;;
	mariadb)
		# datadir initialised by the package's postinst; the entrypoint makes its own
		rm -rf "$root/var/lib/mysql" && mkdir -p "$root/var/lib/mysql"
		chroot "$root" chown mysql:mysql /var/lib/mysql
		;;
	python-lambda)
		# A venv of the system Python 3.11 at /var/lang (with pip, which function-image.sh
		# uses), awslambdaric from the wheels downloaded above; no network in the chroot.
		# env -i: the host's PIP_* settings name host paths.
		local cenv=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)
		chroot "$root" "${cenv[@]}" /usr/bin/python3 -m venv /var/lang >"$WORK/venv.log" 2>&1 ||
			{ tail -n 5 "$WORK/venv.log" >&2; die "python3 -m venv /var/lang failed in the rootfs"; }
		mkdir -p "$root/tmp/wheels"
		cp "$WORK"/wheels/*.whl "$root/tmp/wheels/"
		cp "$SCRIPT_DIR/python-lambda-requirements.txt" "$root/tmp/wheels/requirements.txt"
		chroot "$root" "${cenv[@]}" /var/lang/bin/pip install --no-index --find-links /tmp/wheels \
			--no-cache-dir --disable-pip-version-check --root-user-action=ignore \
			-r /tmp/wheels/requirements.txt >"$WORK/pip.log" 2>&1 ||
			{ tail -n 5 "$WORK/pip.log" >&2; die "pip install of python-lambda-requirements.txt failed in the rootfs"; }
		chroot "$root" "${cenv[@]}" /var/lang/bin/python -c 'import awslambdaric.__main__' ||
			die "awslambdaric does not import in the rootfs"
		mkdir -p "$root/var/task"
		;;
	esac
	# keep later `apt-get install` inside a container from bringing docs back
	cat >"$root/etc/dpkg/dpkg.cfg.d/01-rotcheck-nodoc" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/locale/*
		path-exclude /usr/share/lintian/*
		path-exclude /usr/share/i18n/locales/*
		path-exclude /usr/share/i18n/charmaps/*
	EOF
	# strip docs (keep copyright files), man pages, translations, apt lists/caches, logs
	find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
	find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
	rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
		"$root"/usr/share/lintian "$root"/usr/share/linda \
		"$root"/usr/share/i18n/locales "$root"/usr/share/i18n/charmaps \
		"$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
		"$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/var/log/*.log \
		"$root"/var/log/apt/* "$root"/tmp/* "$root"/var/tmp/* "$root/debootstrap"
	find "$root/var/cache/apt/archives" -mindepth 1 -maxdepth 1 -name partial -prune -o -type f -delete 2>/dev/null || true
	# docker provides /dev, /etc/hosts, /etc/hostname and /etc/resolv.conf
	rm -rf "$root"/dev/*
	: >"$root/etc/resolv.conf"
	: >"$root/etc/hostname"
	stage_end "configuring and stripping rootfs"
}

# ---- import -----------------------------------------------------------------
do_import() { # do_import NAME HASH  (tar stream on stdin)
	local name="$1" hash="$2" tag old id
	tag="$(image_tag "$name")"
	old="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
	local change_args=() c
	while IFS= read -r c; do change_args+=(-c "$c"); done < <(image_changes "$name")
	change_args+=(-c 'LABEL org.rotcheck.image=1' -c "LABEL org.rotcheck.recipe=$hash")
	id="$(docker import "${change_args[@]}" -m "rotcheck $name recipe $hash" - "$tag")" ||
		die "docker import failed for $tag"
	if [ -n "$old" ] && [ "$old" != "$id" ]; then
		# drop the superseded build unless a container still uses it
		docker image rm "$old" >/dev/null 2>&1 || true
	fi
}

build_one() {
	local name="$1" tag hash cur tarball
	CUR="$name"
	tag="$(image_tag "$name")"
	hash="$(recipe_hash "$name")"
	local t_all
	t_all="$(now)"

	if [ "$FORCE" = 0 ]; then
		cur="$(docker image inspect -f '{{index .Config.Labels "org.rotcheck.recipe"}}' "$tag" 2>/dev/null || true)"
		if [ "$cur" = "$hash" ]; then
			say "$tag is up to date (recipe ${hash:0:12}); skipping"
			return 0
		fi
	fi

	tarball=
	[ "$CACHE_OK" = 0 ] || tarball="$CACHE_DIR/$name-$hash.tar"

	if [ "$FORCE" = 0 ] && [ -n "$tarball" ] && [ -s "$tarball" ]; then
		say "using cached rootfs $tarball"
	else
		ensure_root_tools
		WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/rotcheck-image-$name.XXXXXX")"
		build_rootfs "$name" "$WORK/rootfs"
		if [ -n "$tarball" ]; then
			stage_start "writing rootfs tarball to cache"
			tar --numeric-owner -C "$WORK/rootfs" -cf "$tarball.part" . ||
				die "could not write $tarball.part"
			mv -f "$tarball.part" "$tarball"
			# older recipes of this image are no longer useful
			find "$CACHE_DIR" -maxdepth 1 -name "$name-*.tar" ! -name "$name-$hash.tar" -delete 2>/dev/null || true
			stage_end "writing rootfs tarball"
		fi
	fi

	stage_start "docker import as $tag"
	if [ -n "$tarball" ] && [ -s "$tarball" ]; then
		do_import "$name" "$hash" <"$tarball"
	else
		tar --numeric-owner -C "$WORK/rootfs" -c . | do_import "$name" "$hash"
	fi
	stage_end "docker import"
	cleanup
	WORK=

	local size
	size="$(docker image inspect -f '{{.Size}}' "$tag")"
	say "built $tag (recipe ${hash:0:12}, $((size / 1000000)) MB) in $(since "$t_all") s"
}

check_docker
init_cache
for img in "${IMAGES[@]}"; do
	build_one "$img"
done
