#!/usr/bin/env bash
# shellcheck disable=SC2034 # SUMMARY_DONE and CLEANUP_PIDS are read by the exit trap of tests/lib.sh
# api.sh — end-to-end test of ledgerd (the HTTP API, shared/API.md) against the
# real PostgreSQL cluster that tests/run.sh started and migrated.
#
#   GEOLEDGER_CONFIG=DIR/ledger.conf BUILD=build TEST_DIR=DIR tests/api.sh
#
# It copies the config, appends a ledgerd group (scripts/ledgerd-conf.sh) on a
# free port, starts $BUILD/bin/ledgerd in the background (killed on every exit)
# and drives it over HTTPS (dev CA, curl --cacert) with curl + jq: every implemented endpoint's success path, the
# auth failures (missing, garbled, alg none, ES256/HS256 confusion, wrong key,
# expired, wrong aud/iss, missing scope), ownership (404 / 403 mandate_required),
# bad input (400/413, balances unchanged afterwards), idempotency (replay bytes,
# reuse, in flight, 50 concurrent requests), ledger rules (insufficient funds,
# holds, post, void, reverse, references, cross region), batches, entries
# pagination, balance as_of, one bad job in a group commit (the rest commit),
# /readyz and a graceful SIGTERM.
#
# Every principal name carries this run's id, so the test can run repeatedly
# on one cluster and next to other tests. One line per check, `ok NAME` or
# `FAIL NAME: details`; the last line is "N passed, N failed"; exit 1 on any
# failure.
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
: "${GEOLEDGER_CONFIG:?set GEOLEDGER_CONFIG to the ledger.conf of a migrated cluster}"
: "${TEST_DIR:?set TEST_DIR to the cluster directory}"

# shellcheck source=lib.sh
source tests/lib.sh
# shellcheck source=http.sh
source tests/http.sh
require api.sh curl jq openssl od "$BUILD/bin/ledgerd" "$BUILD/bin/ledgerctl"

W=$(mktemp -d /tmp/geoledger-api.XXXXXX)
show_log() {
    if [[ -s "$W/ledgerd.log" ]]; then
        echo "---- ledgerd log: lines other than request lines, then the last 3 ----"
        grep -v '^{"time":.*"request_id"' "$W/ledgerd.log" | tail -n 20 || true
        echo "..."
        tail -n 3 "$W/ledgerd.log" || true
        echo "----"
    fi
}
exit_trap api.sh
on_early_exit() { show_log; }

START=$SECONDS

# ---------------------------------------------------------------- start ledgerd

if ! PORT=$(free_port $((18000 + $$ % 1000))); then
    fail "start" "no free port near $PORT"
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

CONF="$W/ledger.conf"
cp -- "$GEOLEDGER_CONFIG" "$CONF"
scripts/ledgerd-conf.sh "$CONF" "$TEST_DIR/dev.key" "$PORT"
KEY=$(cat "$TEST_DIR/dev.key")
# HTTPS with the development CA that ledgerd-conf.sh made next to the config.
CA="$W/ca/ca.crt"
BASE="https://localhost:$PORT"

if ! start_ledgerd "$W/ledgerd.log"; then
    fail "start" "ledgerd did not answer /healthz on port $PORT: $(tail -n 5 "$W/ledgerd.log" | tr '\n' ' ')"
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
ok "start: ledgerd answers /healthz on port $PORT"

# ---------------------------------------------------------------- helpers
# (req, post, j, snippet, expect, check, eq, token, transfer, balances, newkey: tests/http.sh)

RUN="t$$x$RANDOM"
b64u() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
# hs256 HEADER PAYLOAD [SECRET]: a token signed by hand (the secret is the key
# file's text, used byte for byte, as ledgerd does).
hs256() {
    local h p s
    h=$(printf '%s' "$1" | b64u)
    p=$(printf '%s' "$2" | b64u)
    s=$(printf '%s' "$h.$p" | openssl dgst -sha256 -mac HMAC -macopt "key:${3-$KEY}" -binary | b64u)
    printf '%s.%s.%s' "$h" "$p" "$s"
}
# es256 HEADER PAYLOAD PEM: a genuine ES256 token (raw R||S signature).
es256() {
    local h p der ints r s
    h=$(printf '%s' "$1" | b64u)
    p=$(printf '%s' "$2" | b64u)
    printf '%s' "$h.$p" | openssl dgst -sha256 -sign "$3" -binary >"$W/es.der"
    mapfile -t ints < <(openssl asn1parse -inform DER -in "$W/es.der" | awk -F: '/INTEGER/ {print $NF}')
    r=$(printf '%64s' "${ints[0]}" | tr ' ' 0)
    s=$(printf '%64s' "${ints[1]}" | tr ' ' 0)
    der=$(printf '%s%s' "$r" "$s" | sed 's/../\\x&/g')
    printf '%s.%s.%s' "$h" "$p" "$(printf '%b' "$der" | b64u)"
}
claims() { # SUB EXP [AUD] [ISS] [SCOPE]   (iat: now)
    jq -cn --arg sub "$1" --argjson exp "$2" --arg aud "${3:-geoledger}" --arg iss "${4:-geoledger-dev}" \
        --arg scope "${5:-accounts:read accounts:write transfers:read transfers:write}" --argjson iat "$(date +%s)" \
        '{iss: $iss, aud: $aud, sub: $sub, scope: $scope, exp: $exp, iat: $iat}'
}
field() { jq -r "$2" <<<"$1"; } # JSON FILTER

# ---------------------------------------------------------------- probes

req GET /healthz
expect "healthz" 200
req GET /readyz
expect "readyz 200" 200
check "readyz: eu, us, sg up, status ok" "body: $(snippet)" \
    eq "$(j '[.status, .regions.eu, .regions.us, .regions.sg] | join(",")')" "ok,up,up,up"
check "readyz: every breaker closed" "body: $(snippet)" \
    eq "$(j '[.breakers.eu, .breakers.us, .breakers.sg] | join(",")')" "closed,closed,closed"
req GET /metrics
expect "metrics 200" 200
for fam in 'geoledger_region_up{region="eu"} 1' 'geoledger_region_breaker_state{region="us"} 0' \
    'geoledger_db_pool_size{region="sg"} 8' 'geoledger_db_timeouts_total{region="eu"} 0' \
    'geoledger_db_pool_acquire_timeouts_total{region="eu"} 0' 'geoledger_region_breaker_openings_total{region="sg"} 0'; do
    check "metrics: $fam" "$(grep -c . "$W/body") lines" grep -qxF "$fam" "$W/body"
done
if command -v promtool >/dev/null 2>&1; then
    check "metrics: promtool check metrics" "$(promtool check metrics <"$W/body" 2>&1 | head -c 300)" \
        promtool check metrics <"$W/body"
fi

# ---------------------------------------------------------------- tokens

ALICE="alice-$RUN"
BOB="bob-$RUN"
# alice is also this test's treasury: she debits her funding accounts (accounts:issue)
TA=$(token "$ALICE" "accounts:read accounts:write accounts:issue transfers:read transfers:write events:read mandates:write")
TB=$(token "$BOB" "" 600)
T_READ=$(token "$ALICE" "accounts:read")
NOW=$(date +%s)

# ---------------------------------------------------------------- accounts

# FUND is where the money of these tests comes from: a funding account (it may
# go below zero), which only a principal with accounts:issue may open.
TA_ISSUE=$(token "$ALICE" "accounts:read accounts:write accounts:issue transfers:read transfers:write")
req POST /v1/accounts "$TA_ISSUE" '{"currency":"EUR","region":"eu","kind":"funding"}'
expect "create a funding account (accounts:issue)" 201
FUND=$(j .id)
check "created account has owner, region, kind, zero balances, no floor" "body: $(snippet)" \
    eq "$(j '[.owner, .region, .currency, .kind, (.balances | [.[]] | add), .version, .flags.debits_must_not_exceed_credits] | map(tostring) | join(",")')" \
    "$ALICE,eu,EUR,funding,0,0,false"
req POST /v1/accounts "$TA" '{"currency":"EUR","region":"eu"}'
expect "create account (eu)" 201
check "an account of no kind is a wallet that never goes below zero" "body: $(snippet)" \
    eq "$(j '[.kind, .flags.debits_must_not_exceed_credits] | map(tostring) | join(",")')" "wallet,true"

req POST /v1/accounts "$TA" '{"currency":"EUR","region":"eu","flags":{"debits_must_not_exceed_credits":true},"metadata":{"name":"w1"}}'
expect "create flagged account" 201
A1=$(j .id)
check "flag debits_must_not_exceed_credits set" "body: $(snippet)" eq "$(j .flags.debits_must_not_exceed_credits)" true
check "account metadata returned" "body: $(snippet)" eq "$(j -c .metadata)" '{"name":"w1"}'

K=$(newkey)
post /v1/accounts "$TA" '{"currency":"EUR","region":"eu"}' "$K"
expect "create account with Idempotency-Key" 201
A2=$(j .id)
cp "$W/body" "$W/acct1"
post /v1/accounts "$TA" '{"currency":"EUR","region":"eu"}' "$K"
expect "create account replay" 201
check "account replay: same bytes, Idempotent-Replayed" "body: $(snippet)" \
    bash -c "cmp -s '$W/acct1' '$W/body' && grep -qi '^Idempotent-Replayed: true' '$W/hdr'"

req POST /v1/accounts "$TA" '{"currency":"EUR","region":"us"}'
expect "create account (us)" 201
AUS=$(j .id)
check "us account lives in us" "body: $(snippet)" eq "$(j .region)" us

req POST /v1/accounts "$TB" '{"currency":"EUR","region":"eu"}'
expect "create account (bob)" 201
B1=$(j .id)
# for the hold that expires: its release (by ledgerd's housekeeping, any time
# later) must not touch the accounts whose balances and entries are compared.
req POST /v1/accounts "$TA_ISSUE" '{"currency":"EUR","region":"eu","kind":"funding"}'
X1=$(j .id)
req POST /v1/accounts "$TA" '{"currency":"EUR","region":"eu"}'
X2=$(j .id)

req POST /v1/accounts "$TA" '{"currency":"ZZZ","region":"eu"}'
expect "create account: bad currency -> 400" 400 invalid_value
req POST /v1/accounts "$TA" '{"currency":"EUR","region":"mars"}'
expect "create account: unknown region -> 400" 400 invalid_value
req POST /v1/accounts "$TA" '{"currency":"EUR"}'
expect "create account: missing region -> 400 missing_field" 400 missing_field
req POST /v1/accounts "$TA" '{"currency":"EUR","region":"eu","colour":"red"}'
expect "create account: unknown field -> 400" 400 unknown_field
req POST /v1/accounts "$TA" "{\"currency\":\"EUR\",\"region\":\"eu\",\"owner\":\"$BOB\"}"
expect "create account for another owner -> 403" 403 permission_denied
T_US=$(hs256 '{"alg":"HS256","typ":"JWT"}' "$(claims "$ALICE" $((NOW + 600)) | jq -c '. + {regions: ["us"]}')")
req POST /v1/accounts "$T_US" '{"currency":"EUR","region":"eu"}'
expect "create account outside the token's regions -> 403" 403 region_forbidden

req GET "/v1/accounts/$A1" "$TA"
expect "get account" 200
check "get account: id and balances" "body: $(snippet)" eq "$(j '.id + " " + (.balances.posted | tostring)')" "$A1 0"

# a time before any transfer of this run (the accounts exist by then)
sleep 0.05
T0=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
sleep 0.05

# ---------------------------------------------------------------- auth

req GET "/v1/accounts/$A1"
expect "auth: missing token -> 401" 401 token_missing
req GET "/v1/accounts/$A1" "" "" -H "Authorization: Basic YWxpY2U6eA=="
expect "auth: not Bearer -> 401" 401 token_missing
req GET "/v1/accounts/$A1" "not.a.jwt!"
expect "auth: garbled token -> 401" 401 token_malformed
req GET "/v1/accounts/$A1" "${TA%?}"
expect "auth: truncated signature -> 401" 401
GOOD=$(hs256 '{"alg":"HS256","typ":"JWT"}' "$(claims "$ALICE" $((NOW + 600)))")
req GET "/v1/accounts/$A1" "$GOOD"
expect "auth: hand-made HS256 token accepted (the forgeries below are meaningful)" 200
req GET "/v1/accounts/$A1" "$(printf '%s' '{"alg":"none","typ":"JWT"}' | b64u).$(claims "$ALICE" $((NOW + 600)) | tr -d '\n' | b64u)."
expect "auth: alg none -> 401" 401 token_algorithm_rejected
req GET "/v1/accounts/$A1" "$(hs256 '{"alg":"none","typ":"JWT"}' "$(claims "$ALICE" $((NOW + 600)))")"
expect "auth: alg none with a MAC -> 401" 401 token_algorithm_rejected
req GET "/v1/accounts/$A1" "$(hs256 '{"alg":"HS256","typ":"JWT"}' "$(claims "$ALICE" $((NOW + 600)))" "$(openssl rand -hex 32)")"
expect "auth: wrong key -> 401" 401 token_signature_invalid
openssl ecparam -genkey -name prime256v1 -noout -out "$W/ec.pem" 2>/dev/null
openssl ec -in "$W/ec.pem" -pubout -out "$W/ec.pub" 2>/dev/null
req GET "/v1/accounts/$A1" "$(es256 '{"alg":"ES256","typ":"JWT"}' "$(claims "$ALICE" $((NOW + 600)))" "$W/ec.pem")"
expect "auth: ES256 token to an HS256 server -> 401" 401 token_algorithm_rejected
req GET "/v1/accounts/$A1" "$(hs256 '{"alg":"HS256","typ":"JWT"}' "$(claims "$ALICE" $((NOW + 600)))" "$(cat "$W/ec.pub")")"
expect "auth: HS256 MAC keyed with an EC public key -> 401" 401 token_signature_invalid
req GET "/v1/accounts/$A1" "$(hs256 '{"alg":"HS256","typ":"JWT"}' "$(claims "$ALICE" $((NOW - 3600)))")"
expect "auth: expired -> 401" 401 token_expired
req GET "/v1/accounts/$A1" "$(hs256 '{"alg":"HS256","typ":"JWT"}' "$(claims "$ALICE" $((NOW + 600)) other-audience)")"
expect "auth: wrong aud -> 401" 401 token_audience_invalid
req GET "/v1/accounts/$A1" "$(hs256 '{"alg":"HS256","typ":"JWT"}' "$(claims "$ALICE" $((NOW + 600)) geoledger evil-issuer)")"
expect "auth: wrong iss -> 401" 401 token_issuer_invalid
req POST /v1/transfers "$T_READ" "$(transfer "$A1" "$A2" 1 "$RUN-scope")" -H "Idempotency-Key: $(newkey)"
expect "auth: transfer without transfers:write -> 403" 403 scope_missing
req POST /v1/accounts "$T_READ" '{"currency":"EUR","region":"eu"}'
expect "auth: create account without accounts:write -> 403" 403 scope_missing
req GET "/v1/accounts/$A1" "$T_READ"
expect "auth: accounts:read suffices for GET account" 200

# ---------------------------------------------------------------- fund and move

post /v1/transfers "$TA" "$(transfer "$FUND" "$A1" 10000 "$RUN-fund")" "$(newkey)"
expect "transfer: fund the flagged account" 201
FUND_T=$(j .id)
check "transfer response fields" "body: $(snippet)" \
    eq "$(j '[.debit_account_id, .credit_account_id, .amount, .currency, .status, .reference] | map(tostring) | join(",")')" \
    "$FUND,$A1,10000,EUR,posted,$RUN-fund"
req GET "/v1/transfers/$FUND_T" "$TA"
expect "get transfer" 200
check "get transfer: same transfer" "body: $(snippet)" eq "$(j '.id + " " + .status')" "$FUND_T posted"
req GET "/v1/accounts/$A1/balance" "$TA"
expect "balance" 200
check "balance: credits 10000, available 10000, as_of null" "body: $(snippet)" \
    eq "$(j '[.balances.credits_posted, .balances.available, .as_of] | map(tostring) | join(",")')" "10000,10000,null"

# ---------------------------------------------------------------- ownership

req GET "/v1/accounts/$A1" "$TB"
expect "ownership: another's account -> 404" 404 account_not_found
req GET "/v1/accounts/$A1/balance" "$TB"
expect "ownership: another's balance -> 404" 404 account_not_found
req GET "/v1/accounts/$A1/entries" "$TB"
expect "ownership: another's entries -> 404" 404 account_not_found
req GET "/v1/transfers/$FUND_T" "$TB"
expect "ownership: another's transfer -> 404" 404 transfer_not_found
post /v1/transfers "$TB" "$(transfer "$A1" "$B1" 100 "$RUN-steal")" "$(newkey)"
expect "ownership: debit another's account -> 403" 403 mandate_required
req GET "/v1/accounts/00000000-0000-7000-8001-000000000000" "$TA"
expect "unknown account -> 404" 404 account_not_found
req GET "/v1/accounts/not-an-id" "$TA"
expect "malformed account id -> 404" 404
req GET "/v1/nothing/here" "$TA"
expect "unknown route -> 404" 404 route_not_found

# ---------------------------------------------------------------- ids of no configured region

# Byte 9 of an id names its home region (regions/README.md). An id whose byte
# names no configured region (the nil id, 0, 4, 255) is answered on every route
# exactly as an unknown id of a known region is: 404, for the owner and for an
# admin alike, and ledgerd stays up.
T_ADM=$(token "ops-$RUN" "admin")
T_ALL=$(token "$ALICE" "accounts:read accounts:write transfers:read transfers:write mandates:write")
MAND_EXP=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
for X in 00000000-0000-0000-0000-000000000000 01a24f26-da31-70a6-8000-41245480b993 \
    01a24f26-da31-70a6-8004-41245480b993 01a24f26-da31-70a6-80ff-41245480b993; do
    for tok in "$T_ALL" "$T_ADM"; do
        who=$([[ "$tok" == "$T_ADM" ]] && echo admin || echo owner)
        unk() { expect "no such region ($who, ${X:19:4}): $1 -> 404" 404 "$2"; }
        req GET "/v1/accounts/$X" "$tok"; unk "GET account" account_not_found
        req GET "/v1/accounts/$X/balance" "$tok"; unk "GET balance" account_not_found
        req GET "/v1/accounts/$X/entries" "$tok"; unk "GET entries" account_not_found
        req GET "/v1/transfers?account_id=$X" "$tok"; unk "GET transfers?account_id" account_not_found
        req GET "/v1/transfers/$X" "$tok"; unk "GET transfer" transfer_not_found
        req GET "/v1/mandates/$X" "$tok"; unk "GET mandate" mandate_not_found
        req DELETE "/v1/mandates/$X" "$tok"; unk "DELETE mandate" mandate_not_found
        for act in post void reverse; do
            body=""
            [[ $act != reverse ]] || body='{"reference":"r-'"$RUN"'"}'
            post "/v1/transfers/$X/$act" "$tok" "$body" "$(newkey)"
            unk "POST transfer $act" transfer_not_found
        done
        post /v1/transfers "$tok" "$(transfer "$X" "$B1" 1 "$RUN-nr-$RANDOM")" "$(newkey)"
        unk "POST transfer, debit" account_not_found
        post /v1/transfers/batch "$tok" "{\"atomic\":true,\"transfers\":[$(transfer "$X" "$B1" 1 "$RUN-nr-$RANDOM")]}" "$(newkey)"
        unk "POST batch, debit" account_not_found
        req POST /v1/mandates "$tok" "{\"wallet_account_id\":\"$X\",\"grantee\":\"g-$RUN\",\"currency\":\"EUR\",\"max_amount_per_charge\":1,\"max_amount_per_day\":1,\"expires_at\":\"$MAND_EXP\"}"
        unk "POST mandate, wallet" account_not_found
    done
    post /v1/transfers "$TA" "$(transfer "$A1" "$X" 1 "$RUN-nr-$RANDOM")" "$(newkey)"
    expect "no such region (${X:19:4}): POST transfer, credit -> 404" 404 account_not_found
    set +e
    "$BUILD/bin/ledgerctl" --config "$CONF" account show "$X" >"$W/cli.out" 2>&1
    rc=$?
    set -e
    check "no such region (${X:19:4}): ledgerctl account show -> exit 1, account_not_found" \
        "exit $rc: $(head -c 200 "$W/cli.out")" eq "$rc $(grep -o account_not_found "$W/cli.out" | head -1)" "1 account_not_found"
done
check "no such region: ledgerd still running" "log: $(tail -n 3 "$W/ledgerd.log" | tr '\n' ' ')" kill -0 "$LPID"
req GET /healthz
expect "no such region: healthz after" 200

# ---------------------------------------------------------------- bad input

BASE_A1=$(balances "$A1" "$TA")
BASE_A2=$(balances "$A2" "$TA")
check "baseline balances read" "A1 $BASE_A1, A2 $BASE_A2" eq "$(field "$BASE_A1" .credits_posted)" 10000

unchanged() { # NAME
    local a1 a2
    a1=$(balances "$A1" "$TA")
    a2=$(balances "$A2" "$TA")
    if [[ "$a1" == "$BASE_A1" && "$a2" == "$BASE_A2" && "$a1" == "{"* ]]; then
        ok "$1: balances unchanged"
    else
        fail "$1: balances unchanged" "A1 $a1 (was $BASE_A1), A2 $a2 (was $BASE_A2)"
    fi
}
bad() { # NAME BODY STATUS [CODE]
    post /v1/transfers "$TA" "$2" "$(newkey)"
    expect "$1" "$3" "${4-}"
    unchanged "$1"
}

GOODT=$(transfer "$A1" "$A2" 100 "$RUN-bad")
bad "bad input: not JSON -> 400" '{"debit_account_id":' 400 invalid_json
bad "bad input: JSON array -> 400" '[1,2]' 400 invalid_json
bad "bad input: duplicate key -> 400" "${GOODT%\}},\"amount\":200}" 400 invalid_json
bad "bad input: unknown field -> 400" "$(jq -c '. + {colour: "red"}' <<<"$GOODT")" 400 unknown_field
bad "bad input: amount as string -> 400" "$(jq -c '.amount = "100"' <<<"$GOODT")" 400 invalid_type
bad "bad input: amount 1.5 -> 400" "${GOODT/\"amount\":100/\"amount\":1.5}" 400 invalid_type
bad "bad input: amount 100.0 -> 400" "${GOODT/\"amount\":100/\"amount\":100.0}" 400 invalid_type
bad "bad input: amount 0 -> 400" "$(jq -c '.amount = 0' <<<"$GOODT")" 400 invalid_value
bad "bad input: amount negative -> 400" "$(jq -c '.amount = -5' <<<"$GOODT")" 400 invalid_value
bad "bad input: amount missing -> 400" "$(jq -c 'del(.amount)' <<<"$GOODT")" 400 missing_field
bad "bad input: amount 99999999999999999999 -> 400" "${GOODT/\"amount\":100/\"amount\":99999999999999999999}" 400
bad "bad input: amount 2^63 -> 400" "${GOODT/\"amount\":100/\"amount\":9223372036854775808}" 400
bad "bad input: pending as string -> 400" "$(jq -c '.pending = "yes"' <<<"$GOODT")" 400 invalid_type
bad "bad input: account id as number -> 400" "$(jq -c '.debit_account_id = 5' <<<"$GOODT")" 400 invalid_type
bad "bad input: malformed account id -> 400" "$(jq -c '.credit_account_id = "nope"' <<<"$GOODT")" 400 invalid_value
bad "bad input: unknown currency -> 400" "$(jq -c '.currency = "ZZZ"' <<<"$GOODT")" 400 invalid_value
bad "bad input: empty reference -> 400" "$(jq -c '.reference = ""' <<<"$GOODT")" 400 invalid_value
bad "bad input: timeout_seconds without pending -> 400" "$(jq -c '.timeout_seconds = 5' <<<"$GOODT")" 400 invalid_value
bad "bad input: same account both sides -> 400" "$(jq -c --arg a "$A1" '.credit_account_id = $a' <<<"$GOODT")" 400
bad "bad input: currency mismatch -> 422" "$(jq -c '.currency = "USD"' <<<"$GOODT")" 422 currency_mismatch
{
    printf '{"debit_account_id":"%s","credit_account_id":"%s","amount":100,"currency":"EUR","reference":"%s","metadata":{"x":"' \
        "$A1" "$A2" "$RUN-big"
    head -c 1100000 /dev/zero | tr '\0' a
    printf '"}}'
} >"$W/big.json"
bad "bad input: body over 1 MiB -> 413" "@$W/big.json" 413
post /v1/transfers "$TA" "@$W/big.json" "$(newkey)" -H "Transfer-Encoding: chunked"
expect "bad input: chunked body over 1 MiB (no Content-Length) -> 413" 413 body_too_large
unchanged "bad input: chunked body over 1 MiB"
# Declared too large: refused from the headers, before the body is sent (Expect: 100-continue is answered with 413).
ST=$(curl -s --cacert "$CA" -o "$W/body" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $TA" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: $(newkey)" -H 'Expect: 100-continue' --data-binary "@$W/big.json" "$BASE/v1/transfers" || true)
expect "bad input: declared Content-Length over the limit -> 413 before the body" 413 body_too_large
head -c 10000 /dev/zero | tr '\0' '[' >"$W/deep.json"
bad "bad input: 10000 nested [ -> 400" "@$W/deep.json" 400
{
    printf '{"debit_account_id":"%s","credit_account_id":"%s","amount":100,"currency":"EUR","reference":"%s","metadata":' \
        "$A1" "$A2" "$RUN-deep"
    head -c 10000 /dev/zero | tr '\0' '['
    head -c 10000 /dev/zero | tr '\0' ']'
    printf '}'
} >"$W/deep2.json"
bad "bad input: 10000 nested [ inside a valid object -> 400" "@$W/deep2.json" 400
bad "ledger: insufficient funds -> 422" "$(transfer "$A1" "$A2" 10001 "$RUN-nsf")" 422 insufficient_funds

# A validation failure is not stored: the client may fix the body and retry with the same key.
K=$(newkey)
post /v1/transfers "$TA" '{"debit_account_id":' "$K"
expect "fix and retry: first attempt invalid JSON -> 400" 400 invalid_json
post /v1/transfers "$TA" "$(transfer "$A1" "$A2" 1 "$RUN-fix1")" "$K"
expect "fix and retry: same key, fixed body -> 201" 201
K=$(newkey)
post /v1/transfers "$TA" "$(transfer "$A1" "$A1" 1 "$RUN-fix2")" "$K"
expect "fix and retry: first attempt same_account -> 400" 400 same_account
post /v1/transfers "$TA" "$(transfer "$A1" "$A2" 1 "$RUN-fix2")" "$K"
expect "fix and retry: same key after an engine-side 400, fixed body -> 201 (API.md: validation failures are not stored)" 201

# ---------------------------------------------------------------- idempotency

BEFORE_FUND=$(balances "$FUND" "$TA")
K=$(newkey)
BODY=$(transfer "$FUND" "$A2" 250 "$RUN-idem")
post /v1/transfers "$TA" "$BODY" "$K"
expect "idempotency: first request" 201
cp "$W/body" "$W/idem1"
check "idempotency: first response not marked replayed" "headers: $(tr '\r\n' '  ' <"$W/hdr")" \
    bash -c "! grep -qi '^Idempotent-Replayed' '$W/hdr'"
post /v1/transfers "$TA" "$BODY" "$K"
expect "idempotency: same key, same body -> stored status" 201
check "idempotency: identical bytes" "first $(head -c 200 "$W/idem1"), then $(snippet)" cmp -s "$W/idem1" "$W/body"
check "idempotency: Idempotent-Replayed: true" "headers: $(tr '\r\n' '  ' <"$W/hdr")" \
    grep -qi '^Idempotent-Replayed: true' "$W/hdr"
check "idempotency: moved once" "FUND $(balances "$FUND" "$TA") was $BEFORE_FUND" \
    eq "$(field "$(balances "$FUND" "$TA")" .debits_posted)" "$(($(field "$BEFORE_FUND" .debits_posted) + 250))"
post /v1/transfers "$TA" "$(jq -c '.amount = 251' <<<"$BODY")" "$K"
expect "idempotency: same key, different body -> 422" 422 idempotency_key_reused
post /v1/transfers/batch "$TA" "{\"atomic\":true,\"transfers\":[$BODY]}" "$K"
expect "idempotency: same key, different path -> 422" 422 idempotency_key_reused
# A key past its lifetime that housekeeping has not deleted yet is new again
# (not a 500 from the stale row), and its row then holds the new request.
admin_sql "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = '$K'" >/dev/null
post /v1/transfers "$TA" "$(transfer "$FUND" "$A2" 252 "$RUN-idem-again")" "$K"
expect "idempotency: expired key not yet deleted, other body -> 201" 201
check "idempotency: expired key: the stored row is the new request's" "row: $(admin_sql \
    "SELECT status, response_body FROM idempotency_keys WHERE key = '$K' AND expires_at > now()" | head -c 200)" \
    eq "$(admin_sql "SELECT status || ' ' || (response_body::json->>'amount') FROM idempotency_keys WHERE key = '$K' AND expires_at > now()")" "201 252"
# A stored key reused by a request the engine refuses (400, nothing stored): the key still answers.
post /v1/transfers "$TA" "$(transfer "$FUND" "$FUND" 5 "$RUN-idem-self")" "$K"
expect "idempotency: same key, request the engine refuses -> 422" 422 idempotency_key_reused
req POST /v1/transfers "$TA" "$(transfer "$FUND" "$A2" 1 "$RUN-nokey")"
expect "idempotency: transfer without key -> 400" 400 idempotency_key_required
req POST /v1/transfers/batch "$TA" "{\"atomic\":true,\"transfers\":[$(transfer "$FUND" "$A2" 1 "$RUN-nokey")]}"
expect "idempotency: batch without key -> 400" 400 idempotency_key_required
req POST "/v1/transfers/$FUND_T/reverse" "$TA" "{\"reference\":\"$RUN-nokey\"}"
expect "idempotency: reverse without key -> 400" 400 idempotency_key_required
post /v1/transfers "$TA" "$(transfer "$FUND" "$A2" 1 "$RUN-longkey")" "$(head -c 256 /dev/zero | tr '\0' k)"
expect "idempotency: 256-character key -> 400" 400 idempotency_key_invalid
# Keys belong to a principal: bob's request with alice's key is bob's own.
req POST /v1/accounts "$TB" '{"currency":"EUR","region":"eu"}' -H "Idempotency-Key: $K"
expect "idempotency: another principal's key is independent" 201

# 50 concurrent identical requests
K=$(newkey)
BODY=$(transfer "$FUND" "$A2" 7 "$RUN-conc")
BEFORE_FUND=$(balances "$FUND" "$TA")
pids=()
for i in $(seq 50); do
    curl -s --cacert "$CA" -o "$W/c$i.body" -w '%{http_code}' --max-time 20 -X POST -H "Authorization: Bearer $TA" \
        -H 'Content-Type: application/json' -H "Idempotency-Key: $K" --data-binary "$BODY" \
        "$BASE/v1/transfers" >"$W/c$i.st" 2>/dev/null &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
ids=() n_ok=0 n_busy=0 bad_resp=""
for i in $(seq 50); do
    st=$(cat "$W/c$i.st" 2>/dev/null || echo none)
    case $st in
    200 | 201)
        n_ok=$((n_ok + 1))
        ids+=("$(jq -r .id "$W/c$i.body" 2>/dev/null || echo bad)")
        ;;
    409)
        if [[ "$(jq -r .error.code "$W/c$i.body" 2>/dev/null)" == idempotency_key_in_use ]]; then
            n_busy=$((n_busy + 1))
        else bad_resp+=" #$i:409:$(head -c 100 "$W/c$i.body")"; fi
        ;;
    *) bad_resp+=" #$i:$st:$(head -c 100 "$W/c$i.body" 2>/dev/null)" ;;
    esac
done
n_ids=$(printf '%s\n' "${ids[@]}" | sort -u | grep -c . || true)
check "idempotency: 50 concurrent -> only 201/200 (one transfer id) or 409 in_use" \
    "ok $n_ok, in_use $n_busy, distinct ids $n_ids, others:$bad_resp" \
    eval '[[ -z "$bad_resp" && $n_ok -ge 1 && $n_ids -eq 1 && $((n_ok + n_busy)) -eq 50 ]]'
AFTER_FUND=$(balances "$FUND" "$TA")
check "idempotency: 50 concurrent -> the payer moved exactly once" "FUND $AFTER_FUND, was $BEFORE_FUND" \
    eq "$(field "$AFTER_FUND" .debits_posted)" "$(($(field "$BEFORE_FUND" .debits_posted) + 7))"
echo "   (50 concurrent: $n_ok answered 201/200, $n_busy answered 409 idempotency_key_in_use)"

# ---------------------------------------------------------------- ledger rules

B=$(balances "$A1" "$TA")
DP=$(field "$B" .debits_posted)
DPEND=$(field "$B" .debits_pending)
AVAIL=$(field "$B" .available)

# hold, partial post, post again
post /v1/transfers "$TA" "$(transfer "$A1" "$A2" 1000 "$RUN-hold1" '{"pending":true}')" "$(newkey)"
expect "hold: pending transfer -> 201" 201
HOLD=$(j .id)
check "hold: status pending" "body: $(snippet)" eq "$(j .status)" pending
B=$(balances "$A1" "$TA")
check "hold: debits_pending +1000, available -1000" "A1 $B" \
    eq "$(field "$B" '[.debits_pending, .available] | map(tostring) | join(",")')" "$((DPEND + 1000)),$((AVAIL - 1000))"
post "/v1/transfers/$HOLD/post" "$TB" '{"amount":1}' "$(newkey)"
expect "hold: another principal cannot post it -> 404" 404 transfer_not_found
post "/v1/transfers/$HOLD/post" "$TA" '{"amount":400}' "$(newkey)"
expect "hold: partial post 400 -> 201" 201
check "hold: the post transfer is posted, 400, pending_id = hold" "body: $(snippet)" \
    eq "$(j '[.status, .amount, .pending_id] | map(tostring) | join(",")')" "posted,400,$HOLD"
req GET "/v1/transfers/$HOLD" "$TA"
check "hold: the hold shows amount_posted 400" "body: $(snippet)" eq "$(j .amount_posted)" 400
B=$(balances "$A1" "$TA")
check "hold: debits_posted +400, pending released" "A1 $B" \
    eq "$(field "$B" '[.debits_posted, .debits_pending] | map(tostring) | join(",")')" "$((DP + 400)),$DPEND"
post "/v1/transfers/$HOLD/post" "$TA" '{"amount":100}' "$(newkey)"
expect "hold: post again -> 422" 422 already_posted
post "/v1/transfers/$HOLD/void" "$TA" "" "$(newkey)"
expect "hold: void after post -> 422" 422 already_posted

# void
post /v1/transfers "$TA" "$(transfer "$A1" "$A2" 500 "$RUN-hold2" '{"pending":true,"timeout_seconds":3600}')" "$(newkey)"
expect "void: hold with timeout -> 201" 201
HOLD2=$(j .id)
check "void: hold has expires_at" "body: $(snippet)" eq "$(j 'has("expires_at")')" true
post "/v1/transfers/$HOLD2/void" "$TA" "" "$(newkey)"
expect "void -> 201" 201
req GET "/v1/transfers/$HOLD2" "$TA"
check "void: the hold is voided" "body: $(snippet)" eq "$(j .status)" voided
post "/v1/transfers/$HOLD2/post" "$TA" "" "$(newkey)"
expect "void: post after void -> 422" 422 already_voided
post "/v1/transfers/$HOLD2/void" "$TA" "" "$(newkey)"
expect "void: void again -> 422" 422 already_voided
B=$(balances "$A1" "$TA")
check "void: A1 pending released" "A1 $B" eq "$(field "$B" .debits_pending)" "$DPEND"

# a token limited to region us may not act on an eu transfer
post /v1/transfers "$TA" "$(transfer "$A1" "$A2" 50 "$RUN-hold5" '{"pending":true}')" "$(newkey)"
expect "hold 50 -> 201" 201
HOLD5=$(j .id)
post "/v1/transfers/$HOLD5/void" "$T_US" "" "$(newkey)"
expect "void an eu hold with a token for region us only -> 403" 403 region_forbidden
if ((LAST_OK)); then
    post "/v1/transfers/$HOLD5/void" "$TA" "" "$(newkey)"
    expect "void hold 50 -> 201" 201
fi

# exceeds pending amount
post /v1/transfers "$TA" "$(transfer "$A1" "$A2" 300 "$RUN-hold3" '{"pending":true}')" "$(newkey)"
expect "hold 300 -> 201" 201
HOLD3=$(j .id)
post "/v1/transfers/$HOLD3/post" "$TA" '{"amount":301}' "$(newkey)"
expect "post more than the hold -> 422" 422 exceeds_pending_amount
post "/v1/transfers/$HOLD3/post" "$TA" '{"amount":"3"}' "$(newkey)"
expect "post with amount as string -> 400" 400 invalid_type
post "/v1/transfers/$HOLD3/post" "$TA" '{"amount":0}' "$(newkey)"
expect "post with amount 0 -> 400" 400 invalid_value
post "/v1/transfers/$HOLD3/post" "$TA" '{"amount":1,"x":1}' "$(newkey)"
expect "post with unknown field -> 400" 400 unknown_field
post "/v1/transfers/$HOLD3/post" "$TA" "" "$(newkey)"
expect "post without amount posts it all -> 201" 201
check "full post: amount 300" "body: $(snippet)" eq "$(j .amount)" 300

# expiry
post /v1/transfers "$TA" "$(transfer "$X1" "$X2" 200 "$RUN-hold4" '{"pending":true,"timeout_seconds":1}')" "$(newkey)"
expect "hold with timeout_seconds 1 -> 201" 201
HOLD4=$(j .id)

# reverse
post /v1/transfers "$TA" "$(transfer "$A1" "$A2" 1000 "$RUN-rev")" "$(newkey)"
expect "reverse: transfer 1000 -> 201" 201
RT=$(j .id)
post "/v1/transfers/$RT/reverse" "$TA" "{\"amount\":300,\"reference\":\"$RUN-rev-1\"}" "$(newkey)"
expect "reverse: partial 300 -> 201" 201
check "reverse: the reversal credits the payer, reverses_id set" "body: $(snippet)" \
    eq "$(j '[.debit_account_id, .credit_account_id, .amount, .reverses_id] | map(tostring) | join(",")')" "$A2,$A1,300,$RT"
post "/v1/transfers/$RT/reverse" "$TA" "{\"amount\":800,\"reference\":\"$RUN-rev-2\"}" "$(newkey)"
expect "reverse: 800 more than the 700 left -> 422" 422 exceeds_reversible_amount
post "/v1/transfers/$RT/reverse" "$TA" '{"amount":100}' "$(newkey)"
expect "reverse: without reference -> 400" 400 missing_field
post "/v1/transfers/$RT/reverse" "$TA" "{\"reference\":\"$RUN-rev-3\"}" "$(newkey)"
expect "reverse: the rest -> 201" 201
check "reverse: the rest is 700" "body: $(snippet)" eq "$(j .amount)" 700
req GET "/v1/transfers/$RT" "$TA"
check "reverse: amount_reversed 1000" "body: $(snippet)" eq "$(j .amount_reversed)" 1000
post "/v1/transfers/$RT/reverse" "$TA" "{\"amount\":1,\"reference\":\"$RUN-rev-4\"}" "$(newkey)"
expect "reverse: nothing left -> 422" 422 exceeds_reversible_amount
post "/v1/transfers/00000000-0000-7000-8001-000000000000/reverse" "$TA" "{\"reference\":\"$RUN-rev-5\"}" "$(newkey)"
expect "reverse: unknown transfer -> 404" 404 transfer_not_found

# A reversal debits the original credit account: when that is someone else's,
# it moves their money, which needs a mandate like any other debit (API.md, Tokens).
post /v1/transfers "$TA" "$(transfer "$A1" "$B1" 100 "$RUN-pay-bob")" "$(newkey)"
expect "pay another principal's account -> 201" 201
PAY_BOB=$(j .id)
B_B1=$(balances "$B1" "$TB")
post "/v1/transfers/$PAY_BOB/reverse" "$TA" "{\"reference\":\"$RUN-clawback\"}" "$(newkey)"
expect "reverse a payment out of another's account -> 403 mandate_required" 403 mandate_required
check "reverse out of another's account: their balance unchanged" "B1 $(balances "$B1" "$TB"), was $B_B1" \
    eq "$(balances "$B1" "$TB")" "$B_B1"

# references
BODY=$(transfer "$A1" "$A2" 42 "$RUN-ref")
post /v1/transfers "$TA" "$BODY" "$(newkey)"
expect "reference: first -> 201" 201
REF_ID=$(j .id)
post /v1/transfers "$TA" "$BODY" "$(newkey)"
expect "reference: same content, new key -> 200" 200
check "reference: same id" "body: $(snippet)" eq "$(j .id)" "$REF_ID"
post /v1/transfers "$TA" "$(jq -c '.amount = 43' <<<"$BODY")" "$(newkey)"
expect "reference: different content -> 409" 409 reference_conflict
post /v1/transfers "$TB" "$(transfer "$B1" "$A2" 1 "$RUN-ref")" "$(newkey)"
expect "reference: another owner may use the same reference" 201
req GET "/v1/transfers?reference=$RUN-ref" "$TA"
expect "list by reference" 200
check "list by reference: the caller's one transfer" "body: $(snippet)" eq "$(j -c '[.data[].id]')" "[\"$REF_ID\"]"
req GET "/v1/transfers?account_id=$A1&limit=1" "$TA"
expect "list by account" 200
check "list by account: one item, has_more, a cursor" "body: $(snippet)" \
    eq "$(j '(.data | length == 1) and .has_more and (.next_cursor | length > 0)')" true
req GET "/v1/transfers?account_id=$A1&limit=100" "$TA"
check "list by account: includes the referenced transfer" "body: $(snippet)" \
    eq "$(j --arg id "$REF_ID" '[.data[].id] | index($id) != null')" true
req GET "/v1/transfers?account_id=$B1" "$TA"
expect "list by another's account -> 404" 404 account_not_found
req GET "/v1/transfers" "$TA"
expect "list without a filter -> 400" 400 invalid_value

# cross region
post /v1/transfers "$TA" "$(transfer "$A1" "$AUS" 10 "$RUN-xr")" "$(newkey)"
expect "cross region eu -> us -> 422" 422 cross_region_requires_saga

# the hold of 1 s has expired by now
sleep 1.2
post "/v1/transfers/$HOLD4/post" "$TA" "" "$(newkey)"
expect "expired hold: post -> 422 pending_transfer_expired (API.md)" 422 pending_transfer_expired

# ---------------------------------------------------------------- batch

B_FUND=$(balances "$FUND" "$TA")
B_A1=$(balances "$A1" "$TA")
B_A2=$(balances "$A2" "$TA")
ITEMS="[$(transfer "$FUND" "$A2" 100 "$RUN-b1"),$(transfer "$A1" "$A2" 1000000 "$RUN-b2")]"
post /v1/transfers/batch "$TA" "{\"atomic\":true,\"transfers\":$ITEMS}" "$(newkey)"
expect "batch atomic with a failing item -> 422" 422 insufficient_funds
check "batch atomic: error names index 1" "body: $(snippet)" eq "$(j .error.index)" 1
check "batch atomic: nothing applied" "FUND $(balances "$FUND" "$TA"), A1 $(balances "$A1" "$TA"), A2 $(balances "$A2" "$TA")" \
    eq "$(balances "$FUND" "$TA") $(balances "$A1" "$TA") $(balances "$A2" "$TA")" "$B_FUND $B_A1 $B_A2"
ITEMS="[$(transfer "$FUND" "$A2" 100 "$RUN-b3"),$(transfer "$A1" "$A2" 1000000 "$RUN-b4")]"
post /v1/transfers/batch "$TA" "{\"atomic\":false,\"transfers\":$ITEMS}" "$(newkey)"
expect "batch non-atomic -> 200" 200
check "batch non-atomic: per-item results ok, insufficient_funds" "body: $(snippet)" \
    eq "$(j '[.results[].result] | join(",")')" "ok,insufficient_funds"
check "batch non-atomic: the first item applied, only it" "FUND $(balances "$FUND" "$TA") was $B_FUND" \
    eq "$(field "$(balances "$FUND" "$TA")" .debits_posted) $(balances "$A1" "$TA")" \
    "$(($(field "$B_FUND" .debits_posted) + 100)) $B_A1"
ITEMS="[$(transfer "$FUND" "$A2" 5 "$RUN-b5"),$(transfer "$FUND" "$A1" 6 "$RUN-b6")]"
post /v1/transfers/batch "$TA" "{\"atomic\":true,\"transfers\":$ITEMS}" "$(newkey)"
expect "batch atomic, all good -> 201" 201
check "batch atomic: both ok with transfers" "body: $(snippet)" \
    eq "$(j '[.results[] | .result + ":" + (.transfer.amount | tostring)] | join(",")')" "ok:5,ok:6"
ITEMS="[$(transfer "$FUND" "$A2" 7 "$RUN-bm1" '{"metadata":{"ride":"r-1","n":1}}'),$(transfer "$FUND" "$A2" 8 "$RUN-bm2"),$(transfer "$FUND" "$A2" 9 "$RUN-bm3" '{"metadata":{"ride":"r-3"}}')]"
post /v1/transfers/batch "$TA" "{\"atomic\":false,\"transfers\":$ITEMS}" "$(newkey)"
expect "batch: items with and without metadata -> 200" 200
# (keys sorted: the response renders the metadata as sent, a read as stored; the key order is no part of it)
check "batch: each item keeps its own metadata" "body: $(snippet)" \
    eq "$(j -cS '[.results[].transfer.metadata]')" '[{"n":1,"ride":"r-1"},null,{"ride":"r-3"}]'
BM3=$(j -r '.results[2].transfer.id')
req GET "/v1/transfers/$BM3" "$TA"
check "batch: an item's metadata is stored" "body: $(snippet)" eq "$(j -c .metadata)" '{"ride":"r-3"}'
BIG_META=$(jq -cn '{x: ("a" * 5000)}')
post /v1/transfers/batch "$TA" "{\"atomic\":false,\"transfers\":[$(transfer "$FUND" "$A2" 1 "$RUN-bm4" "{\"metadata\":$BIG_META}")]}" "$(newkey)"
expect "batch: item metadata over 4096 bytes -> 400" 400 invalid_value
post /v1/transfers/batch "$TA" '{"atomic":true,"transfers":[]}' "$(newkey)"
expect "batch: empty -> 400" 400 invalid_value
post /v1/transfers/batch "$TA" "{\"atomic\":true,\"transfers\":[$(transfer "$FUND" "$A2" 1 "$RUN-b7"),$(transfer "$AUS" "$AUS" 1 "$RUN-b8")]}" "$(newkey)"
expect "batch: two regions -> 400" 400 invalid_value
post /v1/transfers/batch "$TA" "{\"atomic\":\"yes\",\"transfers\":[$(transfer "$FUND" "$A2" 1 "$RUN-b9")]}" "$(newkey)"
expect "batch: atomic as string -> 400" 400 invalid_type
post /v1/transfers/batch "$TA" "{\"atomic\":true,\"transfers\":[$(transfer "$FUND" "$A2" 1 "$RUN-b10" '{"amount":"1"}')]}" "$(newkey)"
expect "batch: item amount as string -> 400" 400 invalid_type
post /v1/transfers/batch "$TB" "{\"atomic\":true,\"transfers\":[$(transfer "$A1" "$B1" 1 "$RUN-b11")]}" "$(newkey)"
expect "batch: debit another's account -> 403" 403 mandate_required

# ---------------------------------------------------------------- mandates

USER="user-$RUN"
APP="app-$RUN"
EVE="eve-$RUN"
TU=$(token "$USER")
TAPP=$(token "$APP")
TEVE=$(token "$EVE")
req POST /v1/accounts "$TU" '{"currency":"EUR","region":"eu","flags":{"debits_must_not_exceed_credits":true}}'
UW=$(j .id)
req POST /v1/accounts "$TU" '{"currency":"EUR","region":"eu","flags":{"debits_must_not_exceed_credits":true}}'
UW2=$(j .id)
req POST /v1/accounts "$(token "$USER" "accounts:write accounts:issue")" '{"currency":"EUR","region":"eu","kind":"funding"}'
USRC=$(j .id)
req POST /v1/accounts "$TAPP" '{"currency":"EUR","region":"eu"}'
AM=$(j .id)
TU_ISSUE=$(token "$USER" "accounts:read accounts:write accounts:issue transfers:read transfers:write")
post /v1/transfers "$TU_ISSUE" "$(transfer "$USRC" "$UW" 10000 "$RUN-m-fund")" "$(newkey)"
expect "mandates: fund the user's wallet" 201
post /v1/transfers "$TU_ISSUE" "$(transfer "$USRC" "$UW2" 10000 "$RUN-m-fund2")" "$(newkey)"
EXP=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
mandate() { # WALLET GRANTEE PER_CHARGE PER_DAY [EXPIRES] [CURRENCY]
    jq -cn --arg w "$1" --arg g "$2" --argjson c "$3" --argjson d "$4" --arg e "${5:-$EXP}" --arg cur "${6:-EUR}" \
        '{wallet_account_id: $w, grantee: $g, currency: $cur, max_amount_per_charge: $c, max_amount_per_day: $d, expires_at: $e}'
}

post /v1/transfers "$TAPP" "$(transfer "$UW" "$AM" 100 "$RUN-m-0")" "$(newkey)"
expect "mandates: charge without a mandate -> 403" 403 mandate_required
req POST /v1/mandates "$TAPP" "$(mandate "$UW" "$APP" 500 800)"
expect "mandates: grantee grants itself -> 404 (not its wallet)" 404 account_not_found
req POST /v1/mandates "$TU" "$(mandate "$UW" "$APP" 500 400)"
expect "mandates: per-day cap below per-charge cap -> 400" 400 invalid_value
req POST /v1/mandates "$TU" "$(mandate "$UW" "$APP" 500 800 2020-01-01T00:00:00Z)"
expect "mandates: expiry in the past -> 400" 400 invalid_value
req POST /v1/mandates "$TU" "$(mandate "$UW" "$APP" 500 800 "$EXP" USD)"
expect "mandates: currency other than the wallet's -> 422" 422 currency_mismatch
req POST /v1/mandates "$TU" "$(mandate "$UW" "$USER" 500 800)"
expect "mandates: to the wallet's owner -> 400" 400 invalid_value
req POST /v1/mandates "$TU" "$(mandate "$UW" "$APP" 500 800 | jq -c '. + {max_amount_per_charge: 5.5}')"
expect "mandates: float cap -> 400" 400 invalid_type
req POST /v1/mandates "$TU" "$(mandate "$UW" "$APP" 500 800 | jq -c '. + {colour: 1}')"
expect "mandates: unknown field -> 400" 400 unknown_field
req POST /v1/mandates "$(token "$USER" "accounts:read")" "$(mandate "$UW" "$APP" 500 800)"
expect "mandates: without mandates:write -> 403" 403 scope_missing

K=$(newkey)
post /v1/mandates "$TU" "$(mandate "$UW" "$APP" 500 800)" "$K"
expect "mandates: create" 201
M1=$(j .id)
cp "$W/body" "$W/mandate1"
check "mandates: fields" "body: $(snippet)" \
    eq "$(j '[.wallet_account_id, .grantee, .currency, .max_amount_per_charge, .max_amount_per_day, .status, .spent_today] | map(tostring) | join(",")')" \
    "$UW,$APP,EUR,500,800,active,0"
post /v1/mandates "$TU" "$(mandate "$UW" "$APP" 500 800)" "$K"
check "mandates: create replay -> same bytes, Idempotent-Replayed" "status $ST body: $(snippet)" \
    bash -c "[[ $ST == 201 ]] && cmp -s '$W/mandate1' '$W/body' && grep -qi '^Idempotent-Replayed: true' '$W/hdr'"
req POST /v1/mandates "$TU" "$(mandate "$UW" "$APP" 100 100)"
expect "mandates: a second live mandate for the same grantee -> 409" 409 mandate_exists

B_UW=$(balances "$UW" "$TU")
post /v1/transfers "$TAPP" "$(transfer "$UW" "$AM" 300 "$RUN-m-1")" "$(newkey)"
expect "mandates: charge within the caps" 201
post /v1/transfers "$TAPP" "$(transfer "$UW" "$AM" 501 "$RUN-m-2")" "$(newkey)"
expect "mandates: charge above the per-charge cap -> 403" 403 mandate_limit_exceeded
post /v1/transfers "$TAPP" "$(transfer "$UW" "$AM" 400 "$RUN-m-3")" "$(newkey)"
expect "mandates: second charge (700 of 800 today)" 201
post /v1/transfers "$TAPP" "$(transfer "$UW" "$AM" 101 "$RUN-m-4")" "$(newkey)"
expect "mandates: charge above the per-day cap -> 403" 403 mandate_limit_exceeded
ITEMS="[$(transfer "$UW" "$AM" 100 "$RUN-m-b1"),$(transfer "$UW" "$AM" 1 "$RUN-m-b2")]"
post /v1/transfers/batch "$TAPP" "{\"atomic\":false,\"transfers\":$ITEMS}" "$(newkey)"
check "mandates: batch items hit the per-day cap in order" "status $ST body: $(snippet)" \
    eq "$ST $(j '[.results[].result] | join(",")')" "200 ok,mandate_limit_exceeded"
check "mandates: the wallet paid exactly 800" "before $B_UW after $(balances "$UW" "$TU")" \
    eq "$(field "$(balances "$UW" "$TU")" .debits_posted)" "$(($(field "$B_UW" .debits_posted) + 800))"
req GET "/v1/mandates/$M1" "$TAPP"
expect "mandates: the grantee reads it" 200
check "mandates: spent_today is 800" "body: $(snippet)" eq "$(j .spent_today)" 800
req GET "/v1/mandates/$M1" "$TEVE"
expect "mandates: a stranger reads it -> 404" 404 mandate_not_found
post /v1/transfers "$TAPP" "$(jq -c '.currency = "USD"' <<<"$(transfer "$UW" "$AM" 1 "$RUN-m-5")")" "$(newkey)"
expect "mandates: another currency -> 403 (no mandate for it)" 403 mandate_required

# Concurrent charges: the per-day cap holds exactly under the mandate's row lock.
req POST /v1/mandates "$TU" "$(mandate "$UW2" "$APP" 100 1000)"
expect "mandates: create the second mandate" 201
M2=$(j .id)
B_UW2=$(balances "$UW2" "$TU")
MC_PIDS=()
for i in $(seq 30); do
    curl -s --cacert "$CA" -o /dev/null -w '%{http_code}\n' -X POST -H "Authorization: Bearer $TAPP" -H 'Content-Type: application/json' \
        -H "Idempotency-Key: $RUN-mc-$i" --data-binary "$(transfer "$UW2" "$AM" 100 "$RUN-mc-$i")" \
        "$BASE/v1/transfers" >>"$W/mc" &
    MC_PIDS+=($!)
done
wait "${MC_PIDS[@]}" # (not a bare wait: ledgerd is a child too)
check "mandates: 30 concurrent charges of 100 under a 1000 day cap -> 10 x 201, 20 x 403" "$(sort "$W/mc" | uniq -c | tr '\n' ' ')" \
    eq "$(grep -c '^201$' "$W/mc") $(grep -c '^403$' "$W/mc")" "10 20"
check "mandates: the second wallet paid exactly 1000" "before $B_UW2 after $(balances "$UW2" "$TU")" \
    eq "$(field "$(balances "$UW2" "$TU")" .debits_posted)" "$(($(field "$B_UW2" .debits_posted) + 1000))"

req DELETE "/v1/mandates/$M2" "$TEVE"
expect "mandates: a stranger revokes -> 404" 404 mandate_not_found
req DELETE "/v1/mandates/$M2" "$TU"
expect "mandates: the owner revokes" 200
check "mandates: revoked, by the owner" "body: $(snippet)" eq "$(j '.status + "," + .revoked_by')" "revoked,$USER"
req DELETE "/v1/mandates/$M2" "$TU"
expect "mandates: revoking again answers the revoked mandate" 200
post /v1/transfers "$TAPP" "$(transfer "$UW2" "$AM" 1 "$RUN-m-6")" "$(newkey)"
expect "mandates: charge after revocation -> 403" 403 mandate_required
req POST /v1/mandates "$TU" "$(mandate "$UW2" "$APP" 10 10)"
expect "mandates: a new mandate after the revocation" 201
req DELETE "/v1/mandates/00000000-0000-7000-8001-000000000000" "$TU"
expect "mandates: unknown id -> 404" 404 mandate_not_found

# ---------------------------------------------------------------- audit log

req GET "/v1/accounts/$A1" "not.a.token"
expect "audit: a garbled token is refused" 401
# auth failures and denials reach the audit log asynchronously (auditq.c): wait for them
AUDIT=""
for _ in $(seq 50); do
    AUDIT=$("$BUILD/bin/ledgerctl" --config "$CONF" --json audit show --region eu --limit 10000 2>/dev/null || true)
    if jq -e --arg a "$APP" '.rows | any(.action == "access.denied" and .actor == $a)' >/dev/null 2>&1 <<<"$AUDIT" &&
        jq -e '.rows | any(.action == "auth.failure")' >/dev/null 2>&1 <<<"$AUDIT"; then break; fi
    sleep 0.1
done
check "audit: mandate create and revoke recorded with who, what and where from" "$(head -c 300 <<<"$AUDIT")" \
    eq "$(jq -r --arg u "$USER" --arg m "$M2" '[.rows[] | select(.actor == $u and .object == $m and .outcome == "success")
        | .action + ":" + .source] | sort | join(",")' <<<"$AUDIT")" "mandate.create:127.0.0.1,mandate.revoke:127.0.0.1"
jqt() { jq -e "$@" >/dev/null; } # a jq test as a command for check
check "audit: a refused charge is recorded as denied, with its reason" "$(head -c 300 <<<"$AUDIT")" \
    jqt --arg a "$APP" '.rows | any(.action == "access.denied" and .actor == $a and .outcome == "denied"
        and .detail.reason == "mandate_limit_exceeded" and .object == "/v1/transfers")' <<<"$AUDIT"
check "audit: authentication failures are recorded" "$(head -c 300 <<<"$AUDIT")" \
    jqt '.rows | any(.action == "auth.failure" and .actor == "unauthenticated" and .outcome == "denied")' <<<"$AUDIT"
printf '%s' "$AUDIT" >"$W/audit.json"
check "audit: no token, body or secret in the audit log" "a token or the key is in $W/audit.json" \
    bash -c '! grep -qF -- "$1" "$3" && ! grep -qF -- "$2" "$3"' _ "$TA" "$KEY" "$W/audit.json"
"$BUILD/bin/ledgerctl" --config "$CONF" audit verify >"$W/audit_verify" 2>&1 && AV=0 || AV=$?
check "audit: ledgerctl audit verify finds the chain intact" "exit $AV: $(head -c 300 "$W/audit_verify")" eq "$AV" 0

# ---------------------------------------------------------------- entries, as_of

req GET "/v1/accounts/$A2/entries?limit=100" "$TA"
expect "entries" 200
ALL=$(j -c '[.data[].version]')
N_ALL=$(j '.data | length')
LAST_POSTED=$(j '.data[-1].posted')
check "entries: has several lines, has_more false" "body: $(snippet)" eq "$(j '(.data | length > 3) and (.has_more == false)')" true
walk=() cursor="" pages=0 walk_ok=1
while ((pages < 200)); do
    req GET "/v1/accounts/$A2/entries?limit=1${cursor:+&starting_after=$cursor}" "$TA"
    IFS=$'\t' read -r n ver more cursor < <(j '[(.data | length), .data[0].version, .has_more, .next_cursor // ""] | @tsv') || true
    if [[ "$ST" != 200 || "$n" != 1 ]]; then
        walk_ok=0
        break
    fi
    pages=$((pages + 1))
    walk+=("$ver")
    [[ "$more" == true && -n "$cursor" ]] || break
done
WALK=$(printf '%s\n' "${walk[@]}" | jq -sc .)
check "entries: limit=1 + starting_after=next_cursor walks all $N_ALL lines" \
    "walk_ok $walk_ok, pages $pages, walked $WALK, all $ALL" eval '((walk_ok)) && [[ "$WALK" == "$ALL" ]]'
A2_NOW=$(balances "$A2" "$TA")
check "entries: last running balance = the account's posted" "last $LAST_POSTED, account $A2_NOW" \
    eq "$LAST_POSTED" "$(field "$A2_NOW" .posted)"
req GET "/v1/accounts/$A2/entries?limit=0" "$TA"
expect "entries: limit=0 -> 400" 400 invalid_value
req GET "/v1/accounts/$A2/entries?starting_after=abc" "$TA"
expect "entries: bad cursor -> 400" 400 invalid_value

req GET "/v1/accounts/$A2/balance?as_of=$T0" "$TA"
expect "balance as_of before the first transfer" 200
check "balance as_of: all zero" "as_of $T0, body: $(snippet)" \
    eq "$(j '[.balances[]] | map(. == 0) | all')" true
req GET "/v1/accounts/$A2/balance?as_of=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)" "$TA"
expect "balance as_of now" 200
check "balance as_of now = current balances" "body: $(snippet), now $A2_NOW" eq "$(j -c .balances)" "$A2_NOW"
req GET "/v1/accounts/$A2/balance?as_of=yesterday" "$TA"
expect "balance as_of garbage -> 400" 400 invalid_value
# Found by tests/httpfuzz.sh: an offset PostgreSQL would refuse (beyond +-15:59)
# and invalid UTF-8 in a reference were answered 503 (retry!) instead of what
# they are: a valid instant, and a client error.
req GET "/v1/accounts/$A2/balance?as_of=2026-12-07T20:11:01-23:59" "$TA"
expect "balance as_of with offset -23:59 -> 200" 200
req GET "/v1/transfers?reference=%FF%FE" "$TA"
expect "transfers by reference, invalid UTF-8 -> 400" 400 invalid_value
req GET "/v1/transfers?reference=caf%C3%A9-$RUN" "$TA"
expect "transfers by reference, UTF-8 -> 200" 200

# ---------------------------------------------------------------- one bad job in a group commit

# The database refuses one transfer the engine accepts (a BEFORE INSERT trigger,
# made here as admin and dropped after). A row lock held from psql stalls both
# writers on two "blocker" transfers while five more and the refused one queue
# up, so that those share one batch when the lock goes. The lock is held for
# less than the region's lock_timeout (1 s): a longer wait is answered 503. That batch fails; each
# of its jobs then runs alone (writer.c): the good ones commit, the refused one
# alone answers 500, and nothing of it is written.
req POST /v1/accounts "$TA_ISSUE" '{"currency":"EUR","region":"eu","kind":"funding"}'
S1=$(j .id)
req POST /v1/accounts "$TA" '{"currency":"EUR","region":"eu"}'
S2=$(j .id)
POISON="$RUN-poison"
if admin_sql "CREATE FUNCTION test_refuse_$RUN() RETURNS trigger LANGUAGE plpgsql AS
           \$\$ BEGIN RAISE EXCEPTION 'refused by the test'; END \$\$;
         CREATE TRIGGER refuse_$RUN BEFORE INSERT ON transfers FOR EACH ROW
           WHEN (NEW.reference = '$POISON') EXECUTE FUNCTION test_refuse_$RUN();" >"$W/split_setup" 2>&1; then
    admin_sql "BEGIN; SELECT 1 FROM accounts WHERE id = '$S1' FOR UPDATE; SELECT pg_sleep(0.8); COMMIT;" >/dev/null 2>&1 &
    LOCK_PID=$!
    sleep 0.15
    split_post() { # N REF: one transfer S1 -> S2, its status into $W/split.N
        curl -s --cacert "$CA" -o "$W/split.$1.body" -w '%{http_code}' --max-time 20 -X POST -H "Authorization: Bearer $TA" \
            -H 'Content-Type: application/json' -H "Idempotency-Key: $RUN-split-$1" \
            --data-binary "$(transfer "$S1" "$S2" 10 "$2")" "$BASE/v1/transfers" >"$W/split.$1" || true
    }
    SPLIT_PIDS=()
    for n in 1 2; do split_post "$n" "$RUN-split-$n" & SPLIT_PIDS+=($!); done
    sleep 0.25 # both writers now wait for the lock
    for n in 3 4 5 6 7; do split_post "$n" "$RUN-split-$n" & SPLIT_PIDS+=($!); done
    split_post 8 "$POISON" & SPLIT_PIDS+=($!)
    wait "${SPLIT_PIDS[@]}" "$LOCK_PID"
    GOOD=$(cat "$W"/split.{1,2,3,4,5,6,7} | tr -d '\n')
    check "batch split: the 7 good transfers -> 201" "statuses $GOOD" eq "$GOOD" 201201201201201201201
    check "batch split: the refused one alone -> 500 internal" "status $(cat "$W/split.8"), body $(head -c 200 "$W/split.8.body")" \
        eq "$(cat "$W/split.8") $(jq -r .error.code "$W/split.8.body" 2>/dev/null)" "500 internal"
    check "batch split: ledgerd logged that it ran a failed batch job by job" "no batch_split in $W/ledgerd.log" \
        grep -q batch_split "$W/ledgerd.log"
    check "batch split: 7 transfers written, none with the refused reference" "" \
        eq "$(admin_sql "SELECT count(*) FILTER (WHERE reference LIKE '$RUN-split-%') || ' ' || count(*) FILTER (WHERE reference = '$POISON')
                    FROM transfers WHERE debit_account_id = '$S1'")" "7 0"
    check "batch split: the payer moved exactly 7 x 10" "" eq "$(field "$(balances "$S1" "$TA")" .debits_posted)" 70
    admin_sql "DROP TRIGGER refuse_$RUN ON transfers; DROP FUNCTION test_refuse_$RUN();" >/dev/null 2>&1 ||
        fail "batch split: cleanup" "could not drop the test trigger refuse_$RUN"
else
    fail "batch split: setup" "$(head -c 300 "$W/split_setup")"
fi

# ---------------------------------------------------------------- shutdown

check "ledgerd still running before SIGTERM" "log: $(tail -n 3 "$W/ledgerd.log" | tr '\n' ' ')" kill -0 "$LPID"
kill -TERM "$LPID"
t_stop=$SECONDS
for _ in $(seq 100); do kill -0 "$LPID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$LPID" 2>/dev/null; then
    fail "graceful shutdown" "still running 10 s after SIGTERM"
else
    rc=0
    wait "$LPID" || rc=$?
    LPID=""
    CLEANUP_PIDS=() # reaped: its pid may be reused
    check "graceful shutdown: SIGTERM -> exit 0 in $((SECONDS - t_stop)) s" "exit status $rc" eq "$rc" 0
fi

((FAILED == 0)) || show_log
echo "api.sh: $((SECONDS - START)) s"
SUMMARY_DONE=1
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
