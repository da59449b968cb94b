#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for the rotation tests, on Debian 12 as root:
#   scripts/start-postgres.sh        (stop it with scripts/stop-postgres.sh)
#
# - Installs postgresql with apt when initdb/postgres are missing (Debian 12: PostgreSQL 15).
# - Runs its own cluster, never the system one: a fresh data directory under
#   /tmp/tumbler-postgres-$TUMBLER_TEST_POSTGRES_PORT (default 15432), listening on 127.0.0.1 only and on a
#   unix socket in that directory, so a Debian cluster on 5432 (running or not) is left alone. Any
#   earlier instance started by this script on the same port is replaced.
# - initdb and postgres refuse to run as root: both run as the postgres OS user, which owns the directory.
# - Password authentication (scram-sha-256) for TCP from 127.0.0.1/32, with or without TLS; TLS with a
#   certificate for 127.0.0.1/localhost signed by a throwaway CA made here ($TUMBLER_TEST_POSTGRES_CA, printed
#   below), so tests can prove verified TLS. Members of the role tls_only may log in over TLS only.
# - Creates the superuser the tests use: $TUMBLER_TEST_POSTGRES_ADMIN_USER (default tumbler_admin) with
#   password $TUMBLER_TEST_POSTGRES_ADMIN_PASSWORD (default admin-pass).
# - Prints the variables the tests read (TUMBLER_TEST_POSTGRES_*); the defaults match the tests' own.
set -euo pipefail

port=${TUMBLER_TEST_POSTGRES_PORT:-15432}
[[ $port =~ ^[0-9]+$ ]] || { echo "$0: TUMBLER_TEST_POSTGRES_PORT must be a port number" >&2; exit 2; }
admin_user=${TUMBLER_TEST_POSTGRES_ADMIN_USER:-tumbler_admin}
admin_password=${TUMBLER_TEST_POSTGRES_ADMIN_PASSWORD:-admin-pass}
os_user=postgres
base=/tmp/tumbler-postgres-$port
datadir=$base/data
logfile=$base/postgres.log

say() { echo "start-postgres: $*"; }
fail() { echo "start-postgres: $*" >&2; exit 1; }

find_pg_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
    return 1
}

# 1. Install when needed.
if ! find_pg_bin >/dev/null || ! command -v psql >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || fail "postgresql not installed and this is not root: apt-get install postgresql"
    say "installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get -o DPkg::Lock::Timeout=600 install -y postgresql
fi
bin=$(find_pg_bin) || fail "initdb/postgres not found after install"
psql=$bin/psql
[ -x "$psql" ] || psql=$(command -v psql)
id "$os_user" >/dev/null 2>&1 || fail "the OS user $os_user does not exist (the postgresql package creates it)"

# Runs a command as the postgres OS user (the server refuses root), or directly when already that user.
as_pg() {
    if [ "$(id -un)" = "$os_user" ]; then "$@"
    elif [ "$(id -u)" = 0 ]; then runuser -u "$os_user" -- "$@"
    else fail "run this script as root or as $os_user"
    fi
}

# 2. Replace an instance this script started earlier on the same port.
if [ -d "$base" ]; then
    say "stopping the previous instance in $base"
    TUMBLER_TEST_POSTGRES_PORT=$port "$(dirname "$(readlink -f "$0")")/stop-postgres.sh"
fi
rm -rf "$base"

# 3. Refuse a port somebody else holds (a clear error beats a server that exits in the background).
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "127.0.0.1:$port is already in use; set TUMBLER_TEST_POSTGRES_PORT to a free port"
fi

# 4. A fresh cluster owned by the postgres OS user. The superuser password goes through a file that
#    only that user can read, never the command line.
mkdir -p "$base"
chown "$os_user": "$base"
chmod 700 "$base"
pwfile=$base/admin-password
( umask 077; printf '%s\n' "$admin_password" >"$pwfile" )
chown "$os_user": "$pwfile"
if ! as_pg "$bin/initdb" -D "$datadir" -U "$admin_user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1; then
    cat "$base/initdb.log" >&2
    fail "initdb failed"
fi
rm -f "$pwfile"

# A throwaway CA and a server certificate for 127.0.0.1 and localhost (the key must be the server's, mode 0600).
tls=$base/tls
"$(dirname "$(readlink -f "$0")")/make-test-tls.sh" "$tls" "PostgreSQL $port" || fail "creating the TLS certificates failed"
chown -R "$os_user": "$tls"
chmod 600 "$tls/server-key.pem" "$tls/ca-key.pem"
chmod 755 "$tls"
chmod 644 "$tls/ca.pem"

# pg_hba: local socket trusted (only the postgres OS user can reach the directory), TCP only from
# 127.0.0.1 with SCRAM passwords, TLS-only for members of tls_only; nothing else.
cat >"$datadir/pg_hba.conf" <<HBA
local      all   all         trust
hostnossl  all   +tls_only   127.0.0.1/32   reject
host       all   all         127.0.0.1/32   scram-sha-256
HBA
cat >>"$datadir/postgresql.conf" <<CONF
# tumbler test cluster (scripts/start-postgres.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$base'
password_encryption = 'scram-sha-256'
ssl = on
ssl_cert_file = '$tls/server-cert.pem'
ssl_key_file = '$tls/server-key.pem'
max_connections = 200
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_destination = 'stderr'
logging_collector = off
CONF
chown "$os_user": "$datadir/pg_hba.conf"

# 5. Start it in the background and wait until it answers (pg_ctl -w waits for readiness).
if ! as_pg "$bin/pg_ctl" -D "$datadir" -l "$logfile" -w -t 60 -o "-c config_file=$datadir/postgresql.conf" start >"$base/pg_ctl.log" 2>&1; then
    cat "$base/pg_ctl.log" >&2
    tail -n 30 "$logfile" >&2 || true
    fail "postgres did not start (log: $logfile)"
fi
for _ in $(seq 1 60); do
    if as_pg "$psql" -h "$base" -p "$port" -U "$admin_user" -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
        break
    fi
    sleep 0.5
done
version=$(as_pg "$psql" -h "$base" -p "$port" -U "$admin_user" -d postgres -Atqc 'SHOW server_version') \
    || { tail -n 30 "$logfile" >&2 || true; fail "postgres did not answer within 30 s (log: $logfile)"; }
# The TCP login with the password must work too: it is what the tests use.
PGPASSWORD=$admin_password as_pg "$psql" -h 127.0.0.1 -p "$port" -U "$admin_user" -d postgres -Atqc 'SELECT 1' >/dev/null \
    || fail "the admin login over TCP failed (log: $logfile)"

as_pg "$psql" -h "$base" -p "$port" -U "$admin_user" -d postgres -Atqc 'CREATE ROLE tls_only NOLOGIN' >/dev/null \
    || fail "creating the tls_only role failed (log: $logfile)"

say "PostgreSQL $version on 127.0.0.1:$port with TLS (CA $tls/ca.pem; data $datadir, log $logfile)"
say "admin account: $admin_user (superuser; password from TUMBLER_TEST_POSTGRES_ADMIN_PASSWORD)"
cat <<ENV
export TUMBLER_TEST_POSTGRES_HOST=127.0.0.1
export TUMBLER_TEST_POSTGRES_PORT=$port
export TUMBLER_TEST_POSTGRES_ADMIN_USER=$admin_user
export TUMBLER_TEST_POSTGRES_ADMIN_PASSWORD=$admin_password
export TUMBLER_TEST_POSTGRES_CA=$tls/ca.pem
# as the superuser over the socket: runuser -u $os_user -- $psql -h $base -p $port -U $admin_user postgres
ENV
