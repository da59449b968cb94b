#!/usr/bin/env bash
# The one command that runs every test on a fresh Debian 12 machine (as root):
#   ./test.sh [extra dotnet test arguments, e.g. --filter Category=Integration]
# It installs the tools the black-box tests need (scripts/install-test-tools.sh), starts the services
# they need (a throwaway MariaDB: scripts/start-mariadb.sh), runs `dotnet test Tumbler.slnx -c Release`
# (unit, HTTP and integration tests) and stops everything it started, also when interrupted or when a
# test fails.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Cleanup actions, run last-registered first on any exit: on_exit scripts/stop-something.sh
cleanup_actions=()
on_exit() { cleanup_actions+=("$*"); }
run_cleanup() {
    local status=$? i
    trap - EXIT INT TERM
    for ((i = ${#cleanup_actions[@]} - 1; i >= 0; i--)); do
        eval "${cleanup_actions[i]}" || echo "test.sh: cleanup failed: ${cleanup_actions[i]}" >&2
    done
    exit "$status"
}
trap run_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! command -v dotnet >/dev/null 2>&1; then
    echo "test.sh: the .NET 10 SDK (dotnet) is required" >&2
    exit 1
fi

scripts/install-test-tools.sh

# Services the tests need. Each stop is registered before its start, so that a start failing
# half-way is cleaned up too (the stop scripts do nothing when nothing is running).
on_exit scripts/stop-mariadb.sh
scripts/start-mariadb.sh    # installs mariadb-server when missing; a private instance on 127.0.0.1:13306
on_exit scripts/stop-postgres.sh
scripts/start-postgres.sh   # installs postgresql when missing; a private cluster on 127.0.0.1:15432

log=$(mktemp -t tumbler-test.XXXXXX.log)
on_exit rm -f "$log"

set +e
dotnet test Tumbler.slnx -c Release "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One closing line over all test assemblies, summed from the per-assembly VSTest summaries
# ("Passed!  - Failed:     0, Passed:    42, Skipped:     0, Total:    42, ...").
awk '
    /(Passed|Failed)! +- +Failed: +[0-9]+, +Passed: +[0-9]+, +Skipped: +[0-9]+/ {
        line = $0
        gsub(/,/, "", line)
        n = split(line, w, /[ \t:]+/)
        for (i = 1; i < n; i++) {
            if (w[i] == "Failed" && w[i + 1] ~ /^[0-9]+$/) failed += w[i + 1]
            if (w[i] == "Passed" && w[i + 1] ~ /^[0-9]+$/) passed += w[i + 1]
            if (w[i] == "Skipped" && w[i + 1] ~ /^[0-9]+$/) skipped += w[i + 1]
        }
        found = 1
    }
    END { if (found) printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped }
' "$log"

exit "$status"
