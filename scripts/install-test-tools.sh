#!/usr/bin/env bash
# Installs the tools the black-box tests drive, on Debian 12 as root (sudo is used when not root):
#   - Debian's aws CLI v2        -> /usr/bin/aws      (package awscli)
#   - boto3 for Debian's python  -> /usr/bin/python3  (package python3-boto3)
# The tests call these absolute paths on purpose: another aws or python3 earlier on PATH is ignored.
# Idempotent: when every check passes nothing is installed and apt is not touched.
#
# To add a tool (e.g. a database server for a later test suite), add one `need` line below.
set -euo pipefail

missing=()

# need PACKAGE COMMAND...: install PACKAGE unless COMMAND succeeds.
need() {
    local package=$1
    shift
    if ! "$@" >/dev/null 2>&1; then
        missing+=("$package")
    fi
}

need awscli        /usr/bin/aws --version
need python3-boto3 /usr/bin/python3 -c 'import boto3'

if ((${#missing[@]} == 0)); then
    echo "install-test-tools: everything present"
    exit 0
fi

sudo=()
if [ "$(id -u)" != 0 ]; then
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-test-tools: installing ${missing[*]}"
# Wait for a concurrent apt/dpkg (e.g. unattended upgrades) instead of failing at once.
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y "${missing[@]}"

# Prove the result, so a broken install fails here and not as a puzzling test failure.
/usr/bin/aws --version
/usr/bin/python3 -c 'import boto3; print("boto3", boto3.__version__)'
