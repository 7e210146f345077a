#!/bin/bash
# Entrypoint of the locally built rotcheck/mariadb:10.11 image (see build.sh).
#
# Written for rotcheck; it honours the environment variables of the official
# mariadb image (MARIADB_* names win over the MYSQL_* ones):
#   MARIADB_ROOT_PASSWORD / MYSQL_ROOT_PASSWORD                 root password
#   MARIADB_ALLOW_EMPTY_ROOT_PASSWORD / MYSQL_ALLOW_EMPTY_PASSWORD  allow an empty one
#   MARIADB_RANDOM_ROOT_PASSWORD / MYSQL_RANDOM_ROOT_PASSWORD   generate one (printed on stdout)
#   MARIADB_ROOT_HOST / MYSQL_ROOT_HOST                         host part of the TCP root account (default %)
#   MARIADB_DATABASE / MYSQL_DATABASE                           database created at init
#   MARIADB_USER / MYSQL_USER + MARIADB_PASSWORD / MYSQL_PASSWORD   extra user with all rights on that database
# Files in /docker-entrypoint-initdb.d (*.sql, *.sql.gz, *.sh) run once after init.
#
# Log layout: the temporary init server (no networking) logs to STDOUT; the real
# server is exec'd as PID 1 and logs to STDERR, where it prints
# "mariadbd: ready for connections." and "... port: 3306", which is what
# testcontainers-modules' Mariadb module waits for.
#
# Arguments: nothing, `--opt ...` or `mariadbd --opt ...` start the server
# (extra args are passed to mariadbd); anything else is exec'd as a command.
set -Eeuo pipefail

DATADIR=/var/lib/mysql
RUN_DIR=/run/mysqld
SOCKET="$RUN_DIR/mysqld.sock"

log() { printf '%s entrypoint: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*"; }
die() { printf 'entrypoint error: %s\n' "$*" >&2; exit 1; }

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- mariadbd "$@"
fi
case "$1" in
mariadbd | mysqld) shift ;;
*) exec "$@" ;;
esac

# Informational options (--help, --version, ...) need no data directory.
for a in "$@"; do
	case "$a" in -'?' | --help | --print-defaults | -V | --version) exec mariadbd "$@" ;; esac
done

# As root: prepare directories, then re-run this script as the mysql user.
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$DATADIR" "$RUN_DIR"
	chown mysql:mysql "$DATADIR" "$RUN_DIR"
	chmod 750 "$DATADIR"
	exec setpriv --reuid=mysql --regid=mysql --init-groups -- "$0" mariadbd "$@"
fi

env_or() { # env_or MARIADB_X MYSQL_X default
	local v="${!1:-}"
	[ -n "$v" ] || v="${!2:-}"
	printf '%s' "${v:-$3}"
}
ROOT_PASSWORD="$(env_or MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD '')"
ALLOW_EMPTY="$(env_or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD MYSQL_ALLOW_EMPTY_PASSWORD '')"
RANDOM_ROOT="$(env_or MARIADB_RANDOM_ROOT_PASSWORD MYSQL_RANDOM_ROOT_PASSWORD '')"
ROOT_HOST="$(env_or MARIADB_ROOT_HOST MYSQL_ROOT_HOST '%')"
DATABASE="$(env_or MARIADB_DATABASE MYSQL_DATABASE '')"
DB_USER="$(env_or MARIADB_USER MYSQL_USER '')"
DB_PASSWORD="$(env_or MARIADB_PASSWORD MYSQL_PASSWORD '')"

# SQL literal helpers: 'string' and `identifier`.
sql_str() { local s="${1//\\/\\\\}"; s="${s//\'/\\\'}"; printf "'%s'" "$s"; }
sql_id() { printf '`%s`' "${1//\`/\`\`}"; }

if [ ! -d "$DATADIR/mysql" ]; then
	if [ -z "$ROOT_PASSWORD" ] && [ -z "$ALLOW_EMPTY" ] && [ -z "$RANDOM_ROOT" ]; then
		die "no root password: set one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD or MARIADB_RANDOM_ROOT_PASSWORD (or their MYSQL_* names)"
	fi
	if [ -n "$DB_USER" ] && [ "$DB_USER" = root ]; then
		die "MARIADB_USER=root is not allowed; root is configured through MARIADB_ROOT_PASSWORD"
	fi
	if [ -z "$ROOT_PASSWORD" ] && [ -n "$RANDOM_ROOT" ]; then
		ROOT_PASSWORD="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
		log "GENERATED ROOT PASSWORD: $ROOT_PASSWORD"
	fi

	log "initialising $DATADIR"
	mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal \
		--skip-test-db --skip-name-resolve --skip-log-bin --default-time-zone=SYSTEM \
		--loose-innodb_buffer_pool_load_at_startup=0 --loose-innodb_buffer_pool_dump_at_shutdown=0 \
		2>&1 >/dev/null # its notes/warnings to stdout; stderr is the real server's alone

	log "starting temporary server for initialisation (no networking)"
	mariadbd --skip-networking --socket="$SOCKET" --skip-log-bin --skip-name-resolve \
		--loose-innodb_buffer_pool_load_at_startup=0 --loose-innodb_buffer_pool_dump_at_shutdown=0 \
		"$@" 2>&1 &
	tmp_pid=$!
	for _ in $(seq 1 300); do
		if mariadb-admin --no-defaults --protocol=socket --socket="$SOCKET" -uroot ping >/dev/null 2>&1; then
			break
		fi
		kill -0 "$tmp_pid" 2>/dev/null || die "temporary server exited during initialisation"
		sleep 0.1
	done
	mariadb-admin --no-defaults --protocol=socket --socket="$SOCKET" -uroot ping >/dev/null 2>&1 ||
		die "temporary server did not come up within 30 s"

	pw="$(sql_str "$ROOT_PASSWORD")"
	sql="SET @@SESSION.SQL_LOG_BIN=0;
SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');
DROP USER IF EXISTS ''@'localhost', 'root'@'127.0.0.1', 'root'@'::1';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS \\'\\'@\\'', @@hostname, '\\'');
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS \\'root\\'@\\'', @@hostname, '\\'');
ALTER USER 'root'@'localhost' IDENTIFIED BY $pw;"
	if [ "$ROOT_HOST" != localhost ]; then
		sql+="
CREATE USER 'root'@$(sql_str "$ROOT_HOST") IDENTIFIED BY $pw;
GRANT ALL ON *.* TO 'root'@$(sql_str "$ROOT_HOST") WITH GRANT OPTION;
GRANT PROXY ON ''@'%' TO 'root'@$(sql_str "$ROOT_HOST") WITH GRANT OPTION;"
	fi
	if [ -n "$DATABASE" ]; then
		log "creating database '$DATABASE'"
		sql+="
CREATE DATABASE IF NOT EXISTS $(sql_id "$DATABASE");"
	fi
	if [ -n "$DB_USER" ]; then
		log "creating user '$DB_USER'"
		sql+="
CREATE USER $(sql_str "$DB_USER")@'%' IDENTIFIED BY $(sql_str "$DB_PASSWORD");"
		if [ -n "$DATABASE" ]; then
			sql+="
GRANT ALL ON $(sql_id "$DATABASE").* TO $(sql_str "$DB_USER")@'%';"
		fi
	fi
	# root has no password yet: this is the only unauthenticated statement batch.
	printf '%s\n' "$sql" | mariadb --no-defaults --protocol=socket --socket="$SOCKET" -uroot

	client_cnf="$(mktemp)"
	printf '[client]\npassword=%s\n' "$ROOT_PASSWORD" >"$client_cnf"
	client=(mariadb --defaults-extra-file="$client_cnf" --protocol=socket --socket="$SOCKET" -uroot)
	[ -z "$DATABASE" ] || client+=(--database="$DATABASE")
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh) log "running $f"; . "$f" ;;
		*.sql) log "running $f"; "${client[@]}" <"$f" ;;
		*.sql.gz) log "running $f"; gzip -dc "$f" | "${client[@]}" ;;
		*) log "ignoring $f" ;;
		esac
	done
	rm -f "$client_cnf"

	log "stopping temporary server"
	kill -TERM "$tmp_pid"
	wait "$tmp_pid" || die "temporary server did not shut down cleanly"
	log "initialisation complete; starting MariaDB (log on stderr)"
else
	log "$DATADIR already initialised; skipping init"
fi

exec mariadbd --bind-address=0.0.0.0 --port=3306 --socket="$SOCKET" --skip-name-resolve "$@"
