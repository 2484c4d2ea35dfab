#!/usr/bin/env bash
# Bootstrap a checkout: PostgreSQL 15 + pg_cron, and Patroni + etcd for the failover test
# (Debian packages, when root and missing),
# a Python 3.11 virtualenv in .venv, and this package installed into it with its test extra.
# Idempotent; `make` runs it through the .venv/.installed stamp.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_PACKAGES="postgresql-15 postgresql-15-cron"
CLUSTER_PACKAGES="patroni etcd-server pgbouncer" # tests/cluster: Patroni on loopback, PgBouncer
PG_BIN=/usr/lib/postgresql/15/bin
say() { printf 'bootstrap: %s\n' "$*" >&2; }

pg_missing() {
    [ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] || return 0
    local libdir
    libdir=$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
    [ -f "$libdir/pg_cron.so" ] || return 0
    return 1
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -q
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

if pg_missing; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing $PG_PACKAGES"
        # shellcheck disable=SC2086
        apt_install $PG_PACKAGES
    else
        say "PostgreSQL 15 server binaries or pg_cron are missing; install them as root with:"
        say "    apt-get install -y $PG_PACKAGES"
        say "continuing: set DATABASE_URL / TEST_DATABASE_URL to use an existing server instead"
    fi
fi

if ! command -v patroni >/dev/null || ! command -v etcd >/dev/null || ! command -v pgbouncer >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing $CLUSTER_PACKAGES (the failover and PgBouncer tests)"
        # shellcheck disable=SC2086
        apt_install $CLUSTER_PACKAGES
    else
        say "patroni, etcd or pgbouncer is missing: tests/cluster will skip them; as root:"
        say "    apt-get install -y $CLUSTER_PACKAGES"
    fi
fi

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            PYTHON=$candidate
            break
        fi
    done
fi
if [ ! -x .venv/bin/python ]; then
    if [ -z "$PYTHON" ]; then
        say "Python 3.11 or newer is required (apt-get install -y python3.11 python3.11-venv)"
        exit 1
    fi
    say "creating .venv with $PYTHON"
    if ! "$PYTHON" -m venv .venv; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            rm -rf .venv
            apt_install python3-venv "$(basename "$PYTHON")-venv" || apt_install python3-venv
            "$PYTHON" -m venv .venv
        else
            say "could not create a virtualenv; install the venv module (apt-get install -y python3.11-venv)"
            exit 1
        fi
    fi
fi

say "installing the package and its test dependencies into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
touch .venv/.installed
say "ready"
