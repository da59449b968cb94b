#!/usr/bin/env bash
# Stops the PostgreSQL that scripts/start-postgres.sh started (same TUMBLER_TEST_POSTGRES_PORT) and removes
# its directory. Does nothing when it is not running. Never touches a system PostgreSQL cluster.
set -euo pipefail

port=${TUMBLER_TEST_POSTGRES_PORT:-15432}
[[ $port =~ ^[0-9]+$ ]] || { echo "$0: TUMBLER_TEST_POSTGRES_PORT must be a port number" >&2; exit 2; }
os_user=postgres
base=/tmp/tumbler-postgres-$port
datadir=$base/data
pidfile=$datadir/postmaster.pid

say() { echo "stop-postgres: $*"; }

as_pg() {
    if [ "$(id -un)" = "$os_user" ]; then "$@"
    else runuser -u "$os_user" -- "$@"
    fi
}

if [ -f "$pidfile" ]; then
    pid=$(head -n 1 "$pidfile")
    pg_ctl=
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/pg_ctl" ] && { pg_ctl=$dir/pg_ctl; break; }
    done
    [ -n "$pg_ctl" ] || pg_ctl=$(command -v pg_ctl || true)
    if [ -n "$pg_ctl" ] && as_pg "$pg_ctl" -D "$datadir" -m fast -w -t 30 stop >/dev/null 2>&1; then
        say "stopped postgres on 127.0.0.1:$port"
    elif [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$datadir"; then
        # Only the postmaster of this data directory is signalled.
        say "pg_ctl could not stop postgres $pid; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
fi

rm -rf "$base"
