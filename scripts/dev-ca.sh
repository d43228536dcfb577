#!/usr/bin/env bash
# dev-ca.sh — a local development certificate authority for geoledger (TLS on
# every hop: ledgerd's HTTPS, PostgreSQL's ssl = on, mutual TLS for services).
# Not for production: the CA key sits next to its certificate.
#
# Usage:
#   scripts/dev-ca.sh DIR                 the CA (DIR/ca.crt, DIR/ca.key) and one server
#                                         certificate for localhost / 127.0.0.1 / ::1
#                                         (DIR/server.crt, DIR/server.key); made once, kept
#   scripts/dev-ca.sh DIR client NAME     a client certificate with subject CN=NAME
#                                         (DIR/client-NAME.crt, DIR/client-NAME.key)
#   scripts/dev-ca.sh DIR wrong           a second, unrelated CA and a localhost server
#                                         certificate from it (DIR/wrong/...): for tests that
#                                         prove a certificate from another CA is refused
#
# Keys are EC P-256, mode 0600; certificates are valid 825 days. Safe to run again: what
# exists is kept (a certificate that expires within 30 days is made anew).
set -euo pipefail
umask 077

die() {
    echo "dev-ca.sh: $*" >&2
    exit 1
}
[[ $# -ge 1 ]] || die "usage: dev-ca.sh DIR [client NAME | wrong]"
DIR=$1
mkdir -p -- "$DIR"
DAYS=825

fresh() { [[ -s "$1" ]] && openssl x509 -in "$1" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; }

make_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# make_ca DIR: DIR/ca.key, DIR/ca.crt (self-signed)
make_ca() {
    local d=$1
    fresh "$d/ca.crt" && [[ -s "$d/ca.key" ]] && return 0
    make_key "$d/ca.key"
    openssl req -x509 -new -key "$d/ca.key" -sha256 -days "$DAYS" -subj "/O=geoledger dev/CN=geoledger dev CA $(date +%s)" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$d/ca.crt"
    rm -f -- "$d"/server.crt "$d"/client-*.crt # signed by a CA that is gone
}

# sign CADIR NAME SUBJECT EXT: CADIR/NAME.key, CADIR/NAME.crt signed by CADIR's CA
sign() {
    local d=$1 name=$2 subj=$3 ext=$4
    fresh "$d/$name.crt" && [[ -s "$d/$name.key" ]] && return 0
    make_key "$d/$name.key"
    openssl req -new -key "$d/$name.key" -subj "$subj" -out "$d/$name.csr"
    printf '%s\n' "$ext" >"$d/$name.ext"
    openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -sha256 \
        -days "$DAYS" -extfile "$d/$name.ext" -out "$d/$name.crt" 2>/dev/null
    rm -f -- "$d/$name.csr" "$d/$name.ext"
}

SERVER_EXT='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1'

case "${2:-}" in
"")
    make_ca "$DIR"
    sign "$DIR" server "/O=geoledger dev/CN=localhost" "$SERVER_EXT"
    ;;
client)
    [[ -n "${3:-}" ]] || die "usage: dev-ca.sh DIR client NAME"
    [[ "$3" =~ ^[A-Za-z0-9._:@-]{1,128}$ ]] || die "client name must be 1-128 of [A-Za-z0-9._:@-]"
    make_ca "$DIR"
    sign "$DIR" "client-$3" "/O=geoledger dev/CN=$3" 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth'
    ;;
wrong)
    mkdir -p -- "$DIR/wrong"
    make_ca "$DIR/wrong"
    sign "$DIR/wrong" server "/O=not geoledger/CN=localhost" "$SERVER_EXT"
    ;;
*) die "unknown command '$2' (client NAME | wrong)" ;;
esac
chmod 600 -- "$DIR"/*.key 2>/dev/null || true
chmod 644 -- "$DIR"/*.crt 2>/dev/null || true
