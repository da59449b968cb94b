#!/usr/bin/env bash
# Starts a throwaway MariaDB for the rotation tests, on Debian 12 as root:
#   scripts/start-mariadb.sh        (stop it with scripts/stop-mariadb.sh)
#
# - Installs mariadb-server with apt when mariadbd is missing.
# - Runs its own server, never the system one: a fresh datadir under /tmp, listening on
#   127.0.0.1:$TUMBLER_TEST_MARIADB_PORT (default 13306, so a system MariaDB on 3306 is left alone)
#   and on a private unix socket. Any earlier instance started by this script is replaced.
# - Serves TLS with a certificate for 127.0.0.1/localhost signed by a throwaway CA made here
#   ($TUMBLER_TEST_MARIADB_CA, printed below), so tests can prove verified TLS; plain connections work too.
# - Creates the admin account the tests use: $TUMBLER_TEST_MARIADB_ADMIN_USER (default tumbler_admin)
#   @'%' identified by $TUMBLER_TEST_MARIADB_ADMIN_PASSWORD (default admin-pass), ALL PRIVILEGES WITH
#   GRANT OPTION.
# - Prints the variables the tests read (TUMBLER_TEST_MARIADB_*); the defaults match the tests' own.
set -euo pipefail

port=${TUMBLER_TEST_MARIADB_PORT:-13306}
[[ $port =~ ^[0-9]+$ ]] || { echo "$0: TUMBLER_TEST_MARIADB_PORT must be a port number" >&2; exit 2; }
admin_user=${TUMBLER_TEST_MARIADB_ADMIN_USER:-tumbler_admin}
admin_password=${TUMBLER_TEST_MARIADB_ADMIN_PASSWORD:-admin-pass}
base=/tmp/tumbler-mariadb-$port
datadir=$base/data
socket=$base/mariadb.sock
pidfile=$base/mariadb.pid
logfile=$base/mariadb.log
tls=$base/tls

say() { echo "start-mariadb: $*"; }
fail() { echo "start-mariadb: $*" >&2; exit 1; }

find_bin() {
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
        if [ -x "/usr/sbin/$name" ]; then echo "/usr/sbin/$name"; return 0; fi
    done
    return 1
}

# 1. Install when needed.
packages=()
if ! find_bin mariadbd >/dev/null || ! find_bin mariadb-install-db >/dev/null || ! find_bin mariadb >/dev/null; then
    packages+=(mariadb-server)
fi
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
if ((${#packages[@]} > 0)); then
    [ "$(id -u)" = 0 ] || fail "${packages[*]} not installed and this is not root: apt-get install ${packages[*]}"
    say "installing ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get -o DPkg::Lock::Timeout=600 install -y "${packages[@]}"
fi
mariadbd=$(find_bin mariadbd) || fail "mariadbd not found after install"
install_db=$(find_bin mariadb-install-db) || fail "mariadb-install-db not found after install"
client=$(find_bin mariadb) || fail "mariadb client not found after install"

# 2. Replace an instance this script started earlier on the same port.
if [ -f "$pidfile" ]; then
    say "stopping the previous instance in $base"
    TUMBLER_TEST_MARIADB_PORT=$port "$(dirname "$(readlink -f "$0")")/stop-mariadb.sh"
fi
rm -rf "$base"

# 3. Refuse a port somebody else holds (a clear error beats a server that exits in the background).
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "127.0.0.1:$port is already in use; set TUMBLER_TEST_MARIADB_PORT to a free port"
fi

# 4. A fresh datadir. --no-defaults keeps the system's /etc/mysql configuration (port 3306, its
#    socket and datadir) out of this instance.
mkdir -p "$datadir"
if ! "$install_db" --no-defaults --datadir="$datadir" --user=root --skip-test-db >"$base/install-db.log" 2>&1; then
    cat "$base/install-db.log" >&2
    fail "mariadb-install-db failed"
fi

# 5. A throwaway CA and a server certificate for 127.0.0.1 and localhost.
"$(dirname "$(readlink -f "$0")")/make-test-tls.sh" "$tls" "MariaDB $port" || fail "creating the TLS certificates failed"

# 6. Start in the background, detached from the caller's terminal and pipes.
setsid "$mariadbd" --no-defaults \
    --datadir="$datadir" --socket="$socket" --pid-file="$pidfile" --log-error="$logfile" \
    --port="$port" --bind-address=127.0.0.1 --user=root \
    --skip-name-resolve --innodb-buffer-pool-size=64M --max-connections=200 \
    --ssl-ca="$tls/ca.pem" --ssl-cert="$tls/server-cert.pem" --ssl-key="$tls/server-key.pem" \
    </dev/null >>"$logfile" 2>&1 &
server_pid=$!

# 7. Wait until it answers (root logs in over the socket by unix_socket authentication).
for _ in $(seq 1 120); do
    if "$client" --no-defaults --socket="$socket" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        tail -n 30 "$logfile" >&2 || true
        fail "mariadbd exited during startup (log: $logfile)"
    fi
    sleep 0.5
done
"$client" --no-defaults --socket="$socket" -uroot -e 'SELECT 1' >/dev/null 2>&1 \
    || { tail -n 30 "$logfile" >&2 || true; fail "mariadbd did not answer within 60 s (log: $logfile)"; }
# The pid file mariadbd writes is the one the stop script uses; make sure it is there.
[ -s "$pidfile" ] || echo "$server_pid" >"$pidfile"

# 8. The tests' admin account. Values are SQL string literals: double quotes and backslashes.
sql_literal() { local s=${1//\\/\\\\}; s=${s//\'/\'\'}; printf "'%s'" "$s"; }
"$client" --no-defaults --socket="$socket" -uroot <<SQL
CREATE USER $(sql_literal "$admin_user")@'%' IDENTIFIED BY $(sql_literal "$admin_password");
GRANT ALL PRIVILEGES ON *.* TO $(sql_literal "$admin_user")@'%' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL

version=$("$client" --no-defaults --socket="$socket" -uroot -N -e 'SELECT VERSION()')
have_ssl=$("$client" --no-defaults --socket="$socket" -uroot -N -e "SELECT @@have_ssl")
[ "$have_ssl" = YES ] || fail "the server did not enable TLS (have_ssl=$have_ssl; log: $logfile)"
say "MariaDB $version on 127.0.0.1:$port with TLS (datadir $datadir, log $logfile)"
say "admin account: $admin_user (password from TUMBLER_TEST_MARIADB_ADMIN_PASSWORD)"
cat <<EOF
export TUMBLER_TEST_MARIADB_HOST=127.0.0.1
export TUMBLER_TEST_MARIADB_PORT=$port
export TUMBLER_TEST_MARIADB_ADMIN_USER=$admin_user
export TUMBLER_TEST_MARIADB_ADMIN_PASSWORD=$admin_password
export TUMBLER_TEST_MARIADB_CA=$tls/ca.pem
# as root over the socket: mariadb --no-defaults --socket=$socket -uroot
EOF
