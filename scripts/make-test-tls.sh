#!/usr/bin/env bash
# Makes a throwaway CA and a server certificate for 127.0.0.1 and localhost signed by it, for the test
# databases' TLS:  scripts/make-test-tls.sh DIR NAME
# Writes DIR/ca.pem, DIR/ca-key.pem, DIR/server-cert.pem, DIR/server-key.pem (NAME goes in the CA's subject).
set -euo pipefail
dir=${1:?usage: make-test-tls.sh DIR NAME}
name=${2:?usage: make-test-tls.sh DIR NAME}
command -v openssl >/dev/null 2>&1 || { echo "make-test-tls: openssl is missing: apt-get install openssl" >&2; exit 1; }
mkdir -p "$dir"
{
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Tumbler test CA $name" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$dir/ca-key.pem" -out "$dir/ca.pem"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/server-key.pem" -out "$dir/server.csr"
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
        "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial -days 30 \
        -extfile "$dir/server.ext" -out "$dir/server-cert.pem"
} >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; echo "make-test-tls: creating the TLS certificates failed" >&2; exit 1; }
