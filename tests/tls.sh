#!/usr/bin/env bash
# shellcheck disable=SC2034 # SUMMARY_DONE and CLEANUP_PIDS are read by the exit trap of tests/lib.sh
# tls.sh — ledgerd's HTTPS against real ledgerd processes on the cluster that
# tests/run.sh started and migrated (api/tls.h has the policy).
#
#   GEOLEDGER_CONFIG=DIR/ledger.conf BUILD=build TEST_DIR=DIR tests/tls.sh
#
# 1. client_certs = "optional" (one ledgerd): TLS 1.2 and 1.3 handshakes with
#    AEAD ciphers (openssl s_client, gnutls-cli); TLS 1.0 / 1.1 and CBC / SHA-1
#    suites refused; plain HTTP to the HTTPS port gets no HTTP answer; the
#    server certificate verifies with the dev CA (curl, s_client) and not
#    without it or with another CA; a client certificate whose CN is the
#    token's sub works, one whose CN differs is 401 client_certificate_mismatch
#    and writes nothing (account count, balances and the transfer's reference
#    checked in the database), one from another CA or without clientAuth fails
#    the handshake (nothing written).
# 2. client_certs = "required": no certificate -> 401 client_certificate_required
#    on an authenticated route (nothing written), the probes stay open, the
#    right certificate works.
# 3. plain_http = true: plain HTTP served (the explicit switch), no TLS.
# 4. configuration refusals: neither tls nor plain_http, both, a key file
#    readable by others, client_certs without client_ca_file: ledgerd exits
#    non-zero with a clear message.
#
# Every check can fail: each refusal is checked against a request that would
# succeed if the policy were off (e.g. a CBC suite the server's EC key could
# serve). One line per check, `ok NAME` or `FAIL NAME: details`; the last line
# is "N passed, N failed"; exit 1 on any failure.
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
: "${GEOLEDGER_CONFIG:?set GEOLEDGER_CONFIG to the ledger.conf of a migrated cluster}"
: "${TEST_DIR:?set TEST_DIR to the cluster directory}"

# shellcheck source=lib.sh
source tests/lib.sh
require tls.sh curl jq openssl gnutls-cli timeout "$BUILD/bin/ledgerd" "$BUILD/bin/ledgerctl"

W=$(mktemp -d /tmp/geoledger-tls.XXXXXX)
exit_trap tls.sh

START=$SECONDS
RUN="tls$$x$RANDOM"
check() { # NAME DETAIL CMD...
    local name=$1 detail=$2
    shift 2
    if "$@"; then ok "$name"; else fail "$name" "$detail"; fi
}
eq() { [[ -n "$2" && "$1" == "$2" ]]; }

# make_conf NAME [ENV=VALUE...]: $W/NAME/ledger.conf on a free port (PORT), with
# the dev CA in $W/NAME/ca (ledgerd-conf.sh; ENV as it documents).
make_conf() {
    local name=$1
    shift
    mkdir -p "$W/$name"
    PORT=$(free_port $((19000 + ($$ + ${#CLEANUP_PIDS[@]} * 7) % 900)))
    cp -- "$GEOLEDGER_CONFIG" "$W/$name/ledger.conf"
    env "$@" scripts/ledgerd-conf.sh "$W/$name/ledger.conf" "$W/dev.key" "$PORT"
}

# start NAME SCHEME: runs ledgerd on $W/NAME/ledger.conf; waits for /healthz (SCHEME
# http or https); false (log shown) if it does not answer.
start() {
    local name=$1 scheme=$2 url args=(-s -o /dev/null -w '%{http_code}' --max-time 1)
    "$BUILD/bin/ledgerd" --config "$W/$name/ledger.conf" >"$W/$name/ledgerd.log" 2>&1 &
    CLEANUP_PIDS+=($!)
    if [[ $scheme == https ]]; then url="https://localhost:$PORT/healthz" args+=(--cacert "$W/$name/ca/ca.crt"); else url="http://127.0.0.1:$PORT/healthz"; fi
    for _ in $(seq 100); do
        kill -0 "${CLEANUP_PIDS[-1]}" 2>/dev/null || break
        [[ "$(curl "${args[@]}" "$url" || true)" != 200 ]] || return 0
        sleep 0.1
    done
    echo "ledgerd $name did not answer: $(tail -n 5 "$W/$name/ledgerd.log" | tr '\n' ' ')" >&2
    return 1
}

# s_client ARGS...: openssl s_client's transcript of GET /healthz over TLS (ARGS: protocol,
# cipher, client certificate). s_client prints the negotiated suite even when the
# server aborts the handshake at its end, so success is judged by the HTTP answer.
s_client() {
    printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' |
        timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$CA" -ign_eof "$@" 2>&1 || true
}
# hs_cipher ARGS...: the cipher of a TLS connection that carried an HTTP answer; NONE when none came.
hs_cipher() {
    local out
    out=$(s_client "$@")
    if grep -q '^HTTP/1.1 200' <<<"$out"; then
        sed -n 's/^New, [^,]*, Cipher is \([^ ]*\).*/\1/p' <<<"$out" | head -1
    else
        echo NONE
    fi
}
hs_protocol() { # ARGS...: the protocol of such a connection ("" when no answer came)
    local out
    out=$(s_client "$@")
    grep -q '^HTTP/1.1 200' <<<"$out" && sed -n 's/^New, \(TLSv[0-9.]*\), Cipher is .*/\1/p' <<<"$out" | head -1
    return 0
}
# gnutls_hs PRIORITY: "completed" when gnutls-cli's handshake with that priority succeeds.
gnutls_hs() {
    if timeout 10 gnutls-cli --x509cafile "$CA" --priority "$1" -p "$PORT" localhost </dev/null 2>&1 |
        grep -q "Handshake was completed"; then echo completed; else echo refused; fi
}

# api METHOD PATH TOKEN [BODY] [CURL ARGS...]: HTTPS request, status in ST ("000" when no
# HTTP answer came, e.g. the handshake failed), body in $W/body.
ST=""
api() {
    local m=$1 p=$2 tok=$3 body=${4-}
    shift $(($# < 4 ? $# : 4))
    local args=(-s --cacert "$CA" -o "$W/body" -w '%{http_code}' -X "$m" --max-time 10 -H "Authorization: Bearer $tok")
    [[ -z "$body" ]] || args+=(-H 'Content-Type: application/json' --data-binary "$body")
    : >"$W/body"
    ST=$(curl "${args[@]}" "$@" "https://localhost:$PORT$p" || true)
}
code() { jq -r '.error.code // empty' "$W/body" 2>/dev/null || true; }
cert() { echo --cert "$CADIR/$1.crt" --key "$CADIR/$1.key"; } # NAME: curl args of a client certificate
# (accounts:issue: the service opens a funding account, where its test money comes from)
token() { "$BUILD/bin/ledgerctl" --config "$W/opt/ledger.conf" token --sub "$1" \
    --scope "accounts:read accounts:write accounts:issue transfers:read transfers:write"; }
owned() { admin_sql "SELECT count(*) FROM accounts WHERE owner = '$1'"; } # PRINCIPAL: accounts it owns
transfer() { jq -cn --arg d "$1" --arg c "$2" --argjson a "$3" --arg r "$4" \
    '{debit_account_id: $d, credit_account_id: $c, amount: $a, currency: "EUR", reference: $r}'; }

# ================================================================ 1. optional

make_conf opt LEDGERD_CLIENT_CERTS=optional
CADIR="$W/opt/ca" CA="$W/opt/ca/ca.crt"
if ! start opt https; then
    fail "start (client_certs = optional)" "see above"
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
ok "start: ledgerd over HTTPS, client_certs = optional, port $PORT"

# ---- protocols and ciphers
c=$(hs_cipher -tls1_2)
check "TLS 1.2 handshake (openssl) with an AEAD ECDHE suite" "cipher $c" \
    grep -Eq '^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$' <<<"$c"
check "TLS 1.2 handshake: protocol TLSv1.2" "got '$(hs_protocol -tls1_2)'" eq "$(hs_protocol -tls1_2)" TLSv1.2
c=$(hs_cipher -tls1_3)
check "TLS 1.3 handshake (openssl)" "cipher $c" grep -Eq '^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$' <<<"$c"
check "TLS 1.3 handshake (gnutls-cli)" "refused" eq "$(gnutls_hs NORMAL:-VERS-ALL:+VERS-TLS1.3)" completed
check "TLS 1.2 handshake (gnutls-cli)" "refused" eq "$(gnutls_hs NORMAL:-VERS-ALL:+VERS-TLS1.2)" completed
# SECLEVEL=0: the client itself would offer the old protocols, so only the server can refuse.
for v in tls1 tls1_1; do
    c=$(hs_cipher "-$v" -cipher 'DEFAULT@SECLEVEL=0')
    check "$v refused (openssl, client offering it)" "negotiated $c" eq "$c" NONE
done
check "TLS 1.1 refused (gnutls-cli)" "handshake completed" eq "$(gnutls_hs NORMAL:-VERS-ALL:+VERS-TLS1.1)" refused
check "TLS 1.0 refused (gnutls-cli)" "handshake completed" eq "$(gnutls_hs NORMAL:-VERS-ALL:+VERS-TLS1.0)" refused
# Suites the server's ECDSA key could serve, were they allowed: CBC with SHA-1 and SHA-384 MACs.
for s in ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES256-SHA384 ECDHE-ECDSA-AES128-SHA256; do
    c=$(hs_cipher -tls1_2 -cipher "$s")
    check "weak suite $s refused (TLS 1.2)" "negotiated $c" eq "$c" NONE
done
check "CBC refused (gnutls-cli, TLS 1.2, AES-128-CBC only)" "handshake completed" \
    eq "$(gnutls_hs NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC)" refused
# a control for the one above: the same tool with the allowed suite succeeds
check "control: gnutls-cli TLS 1.2 AES-128-GCM ECDHE-ECDSA completes" "refused" \
    eq "$(gnutls_hs NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:-KX-ALL:+ECDHE-ECDSA)" completed

# ---- plain HTTP to the HTTPS port
plain=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0; printf "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n" >&3; head -c 200 <&3' _ "$PORT" 2>/dev/null | tr -cd '[:print:]' || true)
check "plain HTTP to the HTTPS port: no HTTP answer" "got '$plain'" eval '[[ "$plain" != *HTTP/1* ]]'
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/healthz" || true)
check "curl http:// to the HTTPS port: no status" "status $st" eq "$st" 000
# garbage instead of a ClientHello, 8 connections: refused, and the server goes on
for i in $(seq 8); do
    timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -c $((4096 * $2)) /dev/urandom >&3' _ "$PORT" "$i" 2>/dev/null || true
done
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA" "https://localhost:$PORT/healthz" || true)
check "random bytes to the HTTPS port: ledgerd still answers (200)" "status $st" eq "$st" 200

# ---- the server certificate
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA" "https://localhost:$PORT/healthz" || true)
check "curl --cacert ca.crt https://localhost verifies (200)" "status $st" eq "$st" 200
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA" "https://127.0.0.1:$PORT/healthz" || true)
check "curl --cacert ca.crt https://127.0.0.1 verifies (IP SAN, 200)" "status $st" eq "$st" 200
set +e
curl -s -o /dev/null --max-time 5 "https://localhost:$PORT/healthz"
rc=$?
set -e
check "curl without --cacert fails verification (exit 60)" "exit $rc" eq "$rc" 60
scripts/dev-ca.sh "$CADIR" wrong
set +e
curl -s -o /dev/null --max-time 5 --cacert "$CADIR/wrong/ca.crt" "https://localhost:$PORT/healthz"
rc=$?
set -e
check "curl with another CA fails verification (exit 60)" "exit $rc" eq "$rc" 60
v=$(timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$CA" -verify_hostname localhost \
    -verify_return_error </dev/null 2>/dev/null | sed -n 's/^ *Verify return code: \([0-9]*\).*/\1/p' | head -1)
check "openssl s_client: chain and hostname verify (return code 0)" "code '$v'" eq "$v" 0

# ---- client certificates (optional): the CN is bound to the token's sub
SVC="svc-$RUN"
scripts/dev-ca.sh "$CADIR" client "$SVC"
scripts/dev-ca.sh "$CADIR" client "other-$RUN"
TS=$(token "$SVC")
api POST /v1/accounts "$TS" '{"currency":"EUR","region":"eu","kind":"funding"}' $(cert "client-$SVC")
check "mTLS: certificate CN = sub -> 201" "status $ST $(head -c 200 "$W/body")" eq "$ST" 201
FUND=$(jq -r .id "$W/body")
api POST /v1/accounts "$TS" '{"currency":"EUR","region":"eu"}'
check "optional: no certificate -> 201" "status $ST $(head -c 200 "$W/body")" eq "$ST" 201
DEST=$(jq -r .id "$W/body")
api POST /v1/transfers "$TS" "$(transfer "$FUND" "$DEST" 700 "$RUN-ok")" -H "Idempotency-Key: $RUN-ok" $(cert "client-$SVC")
check "mTLS: transfer with the matching certificate -> 201" "status $ST $(head -c 200 "$W/body")" eq "$ST" 201
n0=$(owned "$SVC")
api GET "/v1/accounts/$DEST" "$TS"
bal0=$(jq -c .balances "$W/body")

api POST /v1/accounts "$TS" '{"currency":"EUR","region":"eu"}' $(cert "client-other-$RUN")
check "mTLS: certificate CN != sub -> 401 client_certificate_mismatch" "status $ST $(head -c 200 "$W/body")" \
    eq "$ST $(code)" "401 client_certificate_mismatch"
api POST /v1/transfers "$TS" "$(transfer "$FUND" "$DEST" 300 "$RUN-mm")" -H "Idempotency-Key: $RUN-mm" $(cert "client-other-$RUN")
check "mTLS: transfer with CN != sub -> 401 client_certificate_mismatch" "status $ST $(head -c 200 "$W/body")" \
    eq "$ST $(code)" "401 client_certificate_mismatch"
api GET "/v1/accounts/$DEST" "$TS" "" $(cert "client-other-$RUN")
check "mTLS: a read with CN != sub -> 401" "status $ST" eq "$ST $(code)" "401 client_certificate_mismatch"
# another CA's certificate, and this CA's server certificate (not for client auth)
api POST /v1/accounts "$TS" '{"currency":"EUR","region":"eu"}' --cert "$CADIR/wrong/server.crt" --key "$CADIR/wrong/server.key"
check "mTLS: certificate from another CA fails the handshake (no HTTP status)" "status $ST $(head -c 200 "$W/body")" eq "$ST" 000
api POST /v1/accounts "$TS" '{"currency":"EUR","region":"eu"}' --cert "$CADIR/server.crt" --key "$CADIR/server.key"
check "mTLS: a certificate without clientAuth fails the handshake" "status $ST $(head -c 200 "$W/body")" eq "$ST" 000
c=$(hs_cipher -tls1_2 -cert "$CADIR/wrong/server.crt" -key "$CADIR/wrong/server.key")
check "mTLS: another CA's certificate refused in the TLS 1.2 handshake (openssl)" "negotiated $c" eq "$c" NONE
# nothing of the refused requests was written
check "refused requests wrote no account" "accounts owned $(owned "$SVC"), before $n0" eq "$(owned "$SVC")" "$n0"
api GET "/v1/accounts/$DEST" "$TS"
check "refused transfer: balance unchanged" "$(jq -c .balances "$W/body") vs $bal0" eq "$(jq -c .balances "$W/body")" "$bal0"
check "refused transfer: no transfer with its reference in the database" "found" \
    eq "$(admin_sql "SELECT count(*) FROM transfers WHERE reference = '$RUN-mm'")" 0
check "control: the accepted transfer is in the database" "not found" \
    eq "$(admin_sql "SELECT count(*) FROM transfers WHERE reference = '$RUN-ok'")" 1
m=$(curl -s --cacert "$CA" --max-time 5 "https://localhost:$PORT/metrics" | grep -c 'client_certificate_mismatch' || true)
check "/metrics counts client_certificate_mismatch" "no series" eval '((m > 0))'

# ================================================================ 2. required

make_conf req LEDGERD_CLIENT_CERTS=required
CADIR="$W/req/ca" CA="$W/req/ca/ca.crt"
if start req https; then
    ok "start: client_certs = required, port $PORT"
    scripts/dev-ca.sh "$CADIR" client "$SVC"
    api POST /v1/accounts "$TS" '{"currency":"EUR","region":"eu"}'
    check "required: no certificate -> 401 client_certificate_required" "status $ST $(head -c 200 "$W/body")" \
        eq "$ST $(code)" "401 client_certificate_required"
    check "required: the refused request wrote no account" "accounts owned $(owned "$SVC"), before $n0" eq "$(owned "$SVC")" "$n0"
    api GET /healthz "" ""
    check "required: /healthz without a certificate stays open (200)" "status $ST" eq "$ST" 200
    api POST /v1/accounts "$TS" '{"currency":"EUR","region":"eu"}' $(cert "client-$SVC")
    check "required: certificate CN = sub -> 201" "status $ST $(head -c 200 "$W/body")" eq "$ST" 201
    # the opt instance's client certificate: same CN, another CA
    api POST /v1/accounts "$TS" '{"currency":"EUR","region":"eu"}' --cert "$W/opt/ca/client-$SVC.crt" --key "$W/opt/ca/client-$SVC.key"
    check "required: same CN from another CA fails the handshake" "status $ST" eq "$ST" 000
else
    fail "start (client_certs = required)" "see above"
fi

# ================================================================ 3. plain_http = true

make_conf plain LEDGERD_PLAIN_HTTP=1
if start plain http; then
    ok "plain_http = true: ledgerd answers plain HTTP on port $PORT"
    set +e
    curl -s -o /dev/null --max-time 5 --cacert "$W/opt/ca/ca.crt" "https://localhost:$PORT/healthz"
    rc=$?
    set -e
    check "plain_http = true: no TLS on that port" "curl exit $rc" eval '((rc != 0))'
else
    fail "plain_http = true: ledgerd answers plain HTTP" "see above"
fi

# ================================================================ 4. refusals

# refused NAME PATTERN: ledgerd on $W/NAME/ledger.conf exits non-zero within 10 s, saying PATTERN.
refused() {
    local rc=0
    timeout 10 "$BUILD/bin/ledgerd" --config "$W/$1/ledger.conf" >"$W/$1/out" 2>&1 || rc=$?
    check "refuses to start: $1 (exit $rc, says '$2')" "exit $rc: $(head -c 300 "$W/$1/out")" \
        eval "((rc != 0 && rc != 124)) && grep -q -- '$2' '$W/$1/out'"
}
make_conf neither LEDGERD_PLAIN_HTTP=1
sed -i '/plain_http = true/d' "$W/neither/ledger.conf"
refused neither "no tls group: ledgerd serves HTTPS"
make_conf both
sed -i 's/^  tls = {/  plain_http = true;\n  tls = {/' "$W/both/ledger.conf"
refused both "both a tls group and plain_http = true"
make_conf keymode
chmod 644 "$W/keymode/ca/server.key"
refused keymode "readable by group or others"
# a control: the same config with the key readable only by its owner starts
chmod 600 "$W/keymode/ca/server.key"
if start keymode https; then ok "control: the same config with the key at 0600 starts"; else fail "control: key at 0600 starts" "see above"; fi
make_conf noca LEDGERD_CLIENT_CERTS=required
sed -i 's/client_ca_file = "[^"]*";//' "$W/noca/ledger.conf"
refused noca "needs tls.client_ca_file"
make_conf nocert
sed -i 's#cert_file = "[^"]*/server.crt"#cert_file = "/nonexistent/server.crt"#' "$W/nocert/ledger.conf"
refused nocert "tls.cert_file \"/nonexistent/server.crt\""

# ================================================================ 5. clean exits

# Every ledgerd started above: SIGTERM -> exit 0, and no sanitizer report in its log
# (BUILD=build/asan: the TLS paths under AddressSanitizer, LeakSanitizer at exit).
bad=""
for p in "${CLEANUP_PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null || continue
    stop_pid "$p" 100 || bad+=" $p(killed)"
done
CLEANUP_PIDS=()
reports=$(grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$W"/*/ledgerd.log 2>/dev/null || true)
check "every ledgerd stopped by SIGTERM, no sanitizer report in its log" "${bad:+not stopped:$bad }${reports:+reports in: $reports}" \
    eval '[[ -z "$bad" && -z "$reports" ]]'
[[ -z "$reports" ]] || grep -hE -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' $reports | head -40

SUMMARY_DONE=1
echo "tls.sh: $((SECONDS - START)) s"
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
