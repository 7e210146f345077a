#!/bin/bash
# Entrypoint of the locally built rotcheck/postgres:15 image (see build.sh).
#
# Written for rotcheck; it honours the environment variables of the official
# postgres image that testcontainers-modules' Postgres module sets:
#   POSTGRES_USER             superuser name               (default: postgres)
#   POSTGRES_PASSWORD         its password                 (required unless POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_DB               database created at init     (default: $POSTGRES_USER)
#   POSTGRES_HOST_AUTH_METHOD pg_hba method for TCP clients (default: scram-sha-256)
#   POSTGRES_INITDB_ARGS      extra initdb arguments        (optional)
#   PGDATA                    data directory               (default: /var/lib/postgresql/data)
# Files in /docker-entrypoint-initdb.d (*.sql, *.sql.gz, *.sh) run once after init.
#
# Log layout, matching the official image: during initialisation a temporary
# server (pg_ctl, unix socket only) logs to STDOUT; it is stopped and the real
# server is exec'd as PID 1 and logs to STDERR. Both therefore print
# "database system is ready to accept connections", which is what the
# testcontainers module waits for (stderr, then stdout).
#
# Arguments: `-c fsync=off`, `postgres -c fsync=off` or nothing start the server
# (extra args are passed to postgres); anything else is exec'd as a command.
set -Eeuo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
export PATH="$PG_BIN:$PATH"
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
RUN_DIR=/var/run/postgresql

log() { printf '%s entrypoint: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*"; }
die() { printf 'entrypoint error: %s\n' "$*" >&2; exit 1; }

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
	exec "$@"
fi
shift # the remaining args go to the server

# Informational options (--help, --version, ...) need no data directory.
for a in "$@"; do
	case "$a" in -'?' | --help | --describe-config | -V | --version) exec postgres "$@" ;; esac
done

# As root: prepare directories, then re-run this script as the postgres user.
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" "$RUN_DIR"
	chown postgres:postgres "$PGDATA" "$RUN_DIR"
	chmod 700 "$PGDATA"
	chmod 2775 "$RUN_DIR"
	exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$0" postgres "$@"
fi

POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
POSTGRES_HOST_AUTH_METHOD="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		die "POSTGRES_PASSWORD is not set; set it, or set POSTGRES_HOST_AUTH_METHOD=trust to allow passwordless TCP logins"
	fi

	log "initialising $PGDATA (superuser '$POSTGRES_USER', TCP auth $POSTGRES_HOST_AUTH_METHOD)"
	initdb_args=(--pgdata="$PGDATA" --username="$POSTGRES_USER" --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD")
	pwfile=
	if [ -n "${POSTGRES_PASSWORD:-}" ]; then
		pwfile="$(mktemp)"
		printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
		initdb_args+=(--pwfile="$pwfile")
	fi
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list on purpose
	initdb "${initdb_args[@]}" ${POSTGRES_INITDB_ARGS:-}
	[ -z "$pwfile" ] || rm -f "$pwfile"

	# Only the unix socket inside the container is trusted; every TCP client
	# (IPv4 and IPv6, any address) must authenticate.
	cat >"$PGDATA/pg_hba.conf" <<-EOF
		# written by rotcheck's docker-entrypoint.sh
		# TYPE  DATABASE  USER  ADDRESS    METHOD
		local   all       all              trust
		host    all       all   0.0.0.0/0  $POSTGRES_HOST_AUTH_METHOD
		host    all       all   ::/0       $POSTGRES_HOST_AUTH_METHOD
	EOF

	# Temporary server: unix socket only, log on stdout (pg_ctl without -l
	# sends the server's stderr to its stdout).
	log "starting temporary server for initialisation"
	pg_ctl --pgdata="$PGDATA" --wait --timeout=60 --silent \
		-o "-c listen_addresses='' -p 5432" start

	psql_cmd=(psql -X -v ON_ERROR_STOP=1 --no-password --username="$POSTGRES_USER" --host="$RUN_DIR" --port=5432)
	if [ "$POSTGRES_DB" != postgres ]; then
		log "creating database '$POSTGRES_DB'"
		"${psql_cmd[@]}" --dbname=postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db";
		EOSQL
	fi

	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh) log "running $f"; . "$f" ;;
		*.sql) log "running $f"; "${psql_cmd[@]}" --dbname="$POSTGRES_DB" -f "$f" ;;
		*.sql.gz) log "running $f"; gzip -dc "$f" | "${psql_cmd[@]}" --dbname="$POSTGRES_DB" ;;
		*) log "ignoring $f" ;;
		esac
	done

	log "stopping temporary server"
	pg_ctl --pgdata="$PGDATA" --wait --silent -m fast stop
	log "initialisation complete; starting PostgreSQL (log on stderr)"
else
	log "$PGDATA already initialised; skipping init"
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' -p 5432 "$@"
