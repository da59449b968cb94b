#!/usr/bin/env bash
# Stops the MariaDB that scripts/start-mariadb.sh started (same TUMBLER_TEST_MARIADB_PORT) and removes
# its datadir. Does nothing when it is not running. Never touches a system MariaDB.
set -euo pipefail

port=${TUMBLER_TEST_MARIADB_PORT:-13306}
[[ $port =~ ^[0-9]+$ ]] || { echo "$0: TUMBLER_TEST_MARIADB_PORT must be a port number" >&2; exit 2; }
base=/tmp/tumbler-mariadb-$port
pidfile=$base/mariadb.pid

say() { echo "stop-mariadb: $*"; }

if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    # Only signal the process if it is the mariadbd of this datadir.
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--datadir=$base/data"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "mariadbd $pid did not stop within 30 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
        say "stopped mariadbd $pid on 127.0.0.1:$port"
    fi
fi

rm -rf "$base"
