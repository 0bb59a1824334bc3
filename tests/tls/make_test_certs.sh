#!/bin/sh
# Makes a throwaway certificate authority and certificates for TLS tests,
# with the openssl CLI, into DIR (created if missing):
#
#   ca.pem                   the test CA (roots for clients and for mTLS)
#   server.pem server.key    for 127.0.0.1 and localhost (SAN), signed by it
#   client.pem client.key    a client certificate (CN gameopt-test-client)
#   other-ca.pem             an unrelated CA that signed nothing of ours
#
# Usage: make_test_certs.sh DIR. Keys are ECDSA P-256 (quick to make),
# certificates valid for one day.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
key="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
quiet() { "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@"; exit 1; }; }

new_ca() {  # NAME CN
  quiet openssl req -x509 $key -nodes -days 1 -subj "/CN=$2" \
    -keyout "$1.key" -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
}

new_leaf() {  # NAME CN EXTENSIONS
  quiet openssl req $key -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  quiet openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key \
    -CAcreateserial -days 1 -out "$1.pem" -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}

new_ca ca "gameopt test CA"
new_ca other-ca "unrelated test CA"
new_leaf server localhost "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
new_leaf client gameopt-test-client "extendedKeyUsage=clientAuth"
