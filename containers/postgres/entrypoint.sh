#!/bin/sh
# Runs PostgreSQL 15 with pg_cron, as the official postgres image's entrypoint does for the
# variables it shares with it: POSTGRES_PASSWORD (required), POSTGRES_USER (default postgres),
# POSTGRES_DB (default $POSTGRES_USER), PGDATA. On an empty PGDATA: initdb with that superuser
# and password (scram-sha-256 over TCP, trust over the local socket only), the database, and
# pg_cron preloaded with cron.database_name = $POSTGRES_DB (override with POSTGRES_CRON_DB).
# pg_cron's own connections use the local socket (cron.host), so its jobs need no password.
# Arguments are passed to postgres (e.g. -c log_min_messages=debug1).
set -eu
BIN=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
POSTGRES_CRON_DB=${POSTGRES_CRON_DB:-$POSTGRES_DB}
SOCKET_DIR=/var/run/postgresql

as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=postgres --regid=postgres --init-groups "$@"
    else
        "$@"
    fi
}
sql_ident() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
conf_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" "$SOCKET_DIR"
    chown postgres:postgres "$PGDATA" "$SOCKET_DIR"
    chmod 0700 "$PGDATA"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "hierarchy-postgres: POSTGRES_PASSWORD must be set (the superuser's password)" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    [ "$(id -u)" != 0 ] || chown postgres "$pwfile"
    as_postgres "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
unix_socket_directories = '$SOCKET_DIR'
shared_preload_libraries = 'pg_cron'
cron.database_name = $(conf_quote "$POSTGRES_CRON_DB")
cron.use_background_workers = off
cron.host = '$SOCKET_DIR'
CONF
    # Single-user mode: no server listens until the database exists, so a readiness probe
    # (testcontainers runs psql over TCP) never sees a half-initialised server.
    create_database() {
        [ "$1" = postgres ] && return 0
        out=$(echo "CREATE DATABASE $(sql_ident "$1")" |
            as_postgres "$BIN/postgres" --single -D "$PGDATA" -c shared_preload_libraries= postgres 2>&1)
        case $out in *ERROR*)
            printf 'hierarchy-postgres: could not create database %s:\n%s\n' "$1" "$out" >&2
            exit 1
            ;;
        esac
    }
    create_database "$POSTGRES_DB"
    [ "$POSTGRES_CRON_DB" = "$POSTGRES_DB" ] || create_database "$POSTGRES_CRON_DB"
    echo "hierarchy-postgres: initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB," \
        "pg_cron in $POSTGRES_CRON_DB)"
fi

exec_as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
    fi
    exec "$@"
}
exec_as_postgres "$BIN/postgres" -D "$PGDATA" "$@"
