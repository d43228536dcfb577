#!/usr/bin/env bash
# shellcheck disable=SC2034 # SUMMARY_DONE and CLEANUP_PIDS are read by the exit trap of tests/lib.sh
# zerotrust.sh — the zero-trust attacks against a real ledgerd and the real
# PostgreSQL cluster that tests/run.sh started and migrated:
#
#   GEOLEDGER_CONFIG=DIR/ledger.conf BUILD=build TEST_DIR=DIR tests/zerotrust.sh
#
#  1. money creation: a mini-app's accounts never go below zero; the kinds
#     that may (funding, issuance, clearing, settlement) need accounts:issue;
#  2. a mandate charge credits only the grantee's own accounts, and covers
#     only an account that never goes below zero;
#  3. a completed keyed request replays after its mandate was revoked or
#     expired; a new one is refused;
#  4. the token's `regions` claim on every route, reads and revocations too;
#  5. abuse before authentication (a second ledgerd with tight limits): a
#     flood of bad tokens from one address is cut off before verification
#     while other addresses go on, a per-address connection cap, a request
#     read deadline against slow clients, a maximum token lifetime, and a
#     batch that counts each transfer against the rate.
# After each refused attack the balances (and the database) are checked:
# nothing moved. One line per check; the last line is "N passed, N failed".
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
: "${GEOLEDGER_CONFIG:?set GEOLEDGER_CONFIG to the ledger.conf of a migrated cluster}"
: "${TEST_DIR:?set TEST_DIR to the cluster directory}"
# shellcheck source=lib.sh
source tests/lib.sh
# shellcheck source=http.sh
source tests/http.sh
require zerotrust.sh curl jq openssl od "$BUILD/bin/ledgerd" "$BUILD/bin/ledgerctl"

W=$(mktemp -d /tmp/geoledger-zerotrust.XXXXXX)
exit_trap zerotrust.sh
on_early_exit() { for log in "$W"/ledgerd-*.log; do [[ -s "$log" ]] && tail -n 5 "$log"; done; }
START=$SECONDS
RUN="z$$x$RANDOM"

finish() {
    echo "zerotrust.sh: $((SECONDS - START)) s"
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
    exit
}

# ---------------------------------------------------------------- ledgerd A (defaults)

if ! PORT=$(free_port $((18400 + $$ % 100))); then
    fail "start" "no free port from 18400"
    finish
fi
CONF="$W/a.conf"
cp -- "$GEOLEDGER_CONFIG" "$CONF"
scripts/ledgerd-conf.sh "$CONF" "$TEST_DIR/dev.key" "$PORT"
BASE="https://localhost:$PORT"
CA="$W/ca/ca.crt" # made by ledgerd-conf.sh next to the config
if ! start_ledgerd "$W/ledgerd-a.log"; then
    fail "start" "ledgerd did not answer /healthz on port $PORT: $(tail -n 5 "$W/ledgerd-a.log" | tr '\n' ' ')"
    finish
fi
ok "start: ledgerd (default limits) on port $PORT"

ISSUER="issuer-$RUN" APP="app-$RUN" USER="user-$RUN" EVE="eve-$RUN"
T_ISSUER=$(token "$ISSUER" "accounts:read accounts:write accounts:issue transfers:read transfers:write mandates:write")
T_APP=$(token "$APP")
T_USER=$(token "$USER")
T_EVE=$(token "$EVE")

new_account() { # TOKEN BODY: the new account's id in ACC ("" on failure)
    req POST /v1/accounts "$1" "$2"
    ACC=""
    [[ "$ST" != 201 ]] || ACC=$(j .id)
}

# ---------------------------------------------------------------- 1. nobody mints money

new_account "$T_APP" '{"currency":"EUR","region":"eu"}'
expect "mint: a mini-app opens an account" 201
AW=$ACC
check "mint: it is a wallet that never goes below zero" "body: $(snippet)" \
    eq "$(j '[.kind, .flags.debits_must_not_exceed_credits] | map(tostring) | join(",")')" "wallet,true"
new_account "$T_APP" '{"currency":"EUR","region":"eu","kind":"merchant"}'
AM=$ACC
post /v1/transfers "$T_APP" "$(transfer "$AW" "$AM" 1000000 "$RUN-mint-1")" "$(newkey)"
expect "mint: moving money its account does not hold -> 422" 422 insufficient_funds
check "mint: nothing moved" "wallet $(balances "$AW" "$T_APP"), merchant $(balances "$AM" "$T_APP")" \
    eq "$(balances "$AW" "$T_APP")$(balances "$AM" "$T_APP")" \
    '{"debits_posted":0,"credits_posted":0,"debits_pending":0,"credits_pending":0,"posted":0,"available":0}{"debits_posted":0,"credits_posted":0,"debits_pending":0,"credits_pending":0,"posted":0,"available":0}'
post /v1/transfers "$T_APP" "$(transfer "$AW" "$AM" 1000000 "$RUN-mint-2" '{"pending":true}')" "$(newkey)"
expect "mint: a hold on money it does not hold -> 422" 422 insufficient_funds
for k in funding issuance clearing settlement; do
    new_account "$T_APP" "{\"currency\":\"EUR\",\"region\":\"eu\",\"kind\":\"$k\"}"
    expect "mint: a mini-app opens a $k account -> 403" 403 account_kind_forbidden
done
new_account "$T_APP" '{"currency":"EUR","region":"eu","flags":{"debits_must_not_exceed_credits":false}}'
expect "mint: a wallet with its floor switched off -> 400" 400 account_flags_forbidden
new_account "$T_APP" '{"currency":"EUR","region":"eu","kind":"merchant","flags":{"credits_must_not_exceed_debits":true}}'
expect "mint: a merchant account with the other side's limit -> 400" 400 account_flags_forbidden
new_account "$T_APP" '{"currency":"EUR","region":"eu","kind":"bank"}'
expect "mint: a kind that is not in the table -> 400" 400 kind_invalid
new_account "$T_APP" '{"currency":"EUR","region":"eu","kind":"Funding"}'
expect "mint: kinds are exact (Funding) -> 400" 400 kind_invalid
for k in earnings fee escrow; do
    new_account "$T_APP" "{\"currency\":\"EUR\",\"region\":\"eu\",\"kind\":\"$k\"}"
    check "mint: a mini-app opens a $k account, floor on" "status $ST body $(snippet)" \
        eq "$ST,$(j .flags.debits_must_not_exceed_credits)" "201,true"
done
check "mint: the database holds no account of the mini-app that may go below zero" "rows: $(admin_sql \
    "SELECT count(*) FROM accounts WHERE owner = '$APP' AND flags & 1 = 0")" \
    eq "$(admin_sql "SELECT count(*) FROM accounts WHERE owner = '$APP' AND flags & 1 = 0")" 0

new_account "$T_ISSUER" '{"currency":"EUR","region":"eu","kind":"funding"}'
expect "issue: accounts:issue opens a funding account" 201
FUND=$ACC
check "issue: the funding account may go below zero" "body: $(snippet)" \
    eq "$(j '[.flags.debits_must_not_exceed_credits, .flags.credits_must_not_exceed_debits] | map(tostring) | join(",")')" "false,false"
new_account "$T_USER" '{"currency":"EUR","region":"eu"}'
UW=$ACC
post /v1/transfers "$T_ISSUER" "$(transfer "$FUND" "$UW" 10000 "$RUN-fund-user")" "$(newkey)"
expect "issue: the funding account pays the user's wallet" 201
check "issue: funding posted -10000" "$(balances "$FUND" "$T_ISSUER")" eq "$(balances "$FUND" "$T_ISSUER" | jq -r .posted)" -10000
# An account that may go below zero without being a funding kind: opened by an
# operator (ledgerctl writes as the database's service role) or before the kinds.
LEGACY=$("$BUILD/bin/ledgerctl" --config "$CONF" --json account create --region eu --currency EUR --owner "$APP" \
    --kind general | jq -r .id)
post /v1/transfers "$T_APP" "$(transfer "$LEGACY" "$AM" 500 "$RUN-mint-legacy")" "$(newkey)"
expect "mint: debiting an account without a floor needs accounts:issue -> 403" 403 unbounded_debit_forbidden
post /v1/transfers/batch "$T_APP" "{\"atomic\":false,\"transfers\":[$(transfer "$LEGACY" "$AM" 5 "$RUN-mint-legacy-b")]}" "$(newkey)"
expect "mint: ... in a batch too -> 403" 403 unbounded_debit_forbidden
check "mint: the operator's account and the merchant account did not move" "$(balances "$AM" "$T_APP")" \
    eq "$(balances "$AM" "$T_APP" | jq -r .posted)$(admin_sql "SELECT debits_posted FROM accounts WHERE id = '$LEGACY'")" 00
new_account "$(token "root-$RUN" "admin")" "{\"currency\":\"EUR\",\"region\":\"eu\",\"kind\":\"clearing\",\"owner\":\"$ISSUER\"}"
expect "issue: admin opens a clearing account for another owner" 201

# ---------------------------------------------------------------- 2. mandates bind the payee

new_account "$T_EVE" '{"currency":"EUR","region":"eu"}'
EW=$ACC
EXP=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
mandate() { # WALLET GRANTEE PER_CHARGE PER_DAY EXPIRES
    jq -cn --arg w "$1" --arg g "$2" --argjson c "$3" --argjson d "$4" --arg e "$5" \
        '{wallet_account_id: $w, grantee: $g, currency: "EUR", max_amount_per_charge: $c, max_amount_per_day: $d, expires_at: $e}'
}
req POST /v1/mandates "$T_USER" "$(mandate "$UW" "$APP" 500 5000 "$EXP")"
expect "payee: the user grants the mini-app a mandate" 201
MID=$(j .id)
B_UW=$(balances "$UW" "$T_USER")
B_EW=$(balances "$EW" "$T_EVE")
post /v1/transfers "$T_APP" "$(transfer "$UW" "$EW" 100 "$RUN-payee-1")" "$(newkey)"
expect "payee: a charge into a third party's account -> 403" 403 mandate_payee_forbidden
post /v1/transfers "$T_APP" "$(transfer "$UW" "$EW" 100 "$RUN-payee-2" '{"pending":true}')" "$(newkey)"
expect "payee: a hold into a third party's account -> 403" 403 mandate_payee_forbidden
post /v1/transfers/batch "$T_APP" "{\"atomic\":false,\"transfers\":[$(transfer "$UW" "$AM" 10 "$RUN-payee-3"),$(transfer "$UW" "$EW" 10 "$RUN-payee-4")]}" "$(newkey)"
expect "payee: a batch with one item into a third party's account -> 403" 403 mandate_payee_forbidden
post /v1/transfers "$T_APP" "$(transfer "$UW" "00000000-0000-7000-8100-000000000000" 100 "$RUN-payee-5")" "$(newkey)"
expect "payee: a charge into an account that does not exist -> 404" 404 account_not_found
check "payee: nothing moved (user, third party)" "user $(balances "$UW" "$T_USER") was $B_UW; eve $(balances "$EW" "$T_EVE") was $B_EW" \
    eq "$(balances "$UW" "$T_USER")$(balances "$EW" "$T_EVE")" "$B_UW$B_EW"
post /v1/transfers "$T_APP" "$(transfer "$UW" "$AM" 100 "$RUN-payee-6")" "$(newkey)"
expect "payee: a charge into the grantee's own account -> 201" 201
req POST /v1/mandates "$T_ISSUER" "$(mandate "$FUND" "$APP" 500 5000 "$EXP")"
expect "payee: a mandate over an account that may go below zero -> 422" 422 wallet_unbounded

# ---------------------------------------------------------------- 3. replay after revocation and expiry

K1=$(newkey)
BODY1=$(transfer "$UW" "$AM" 200 "$RUN-replay-1")
post /v1/transfers "$T_APP" "$BODY1" "$K1"
expect "replay: a keyed charge under the mandate" 201
cp "$W/body" "$W/replay1"
KB=$(newkey)
BODYB="{\"atomic\":true,\"transfers\":[$(transfer "$UW" "$AM" 50 "$RUN-replay-b1"),$(transfer "$UW" "$AM" 60 "$RUN-replay-b2")]}"
post /v1/transfers/batch "$T_APP" "$BODYB" "$KB"
STB=$ST
cp "$W/body" "$W/replayb"
check "replay: a keyed batch under the mandate" "status $ST body $(snippet)" eq "$ST" 201
req DELETE "/v1/mandates/$MID" "$T_USER"
expect "replay: the user revokes the mandate" 200
B_UW=$(balances "$UW" "$T_USER")
post /v1/transfers "$T_APP" "$BODY1" "$K1"
expect "replay: the same request after revocation -> its stored 201" 201
check "replay: byte for byte, Idempotent-Replayed: true" "body $(snippet)" \
    bash -c "cmp -s '$W/replay1' '$W/body' && grep -qi '^Idempotent-Replayed: true' '$W/hdr'"
post /v1/transfers/batch "$T_APP" "$BODYB" "$KB"
check "replay: the batch after revocation -> its stored response, byte for byte" "status $ST (first $STB) body $(snippet)" \
    bash -c "[[ '$ST' == '$STB' ]] && cmp -s '$W/replayb' '$W/body' && grep -qi '^Idempotent-Replayed: true' '$W/hdr'"
post /v1/transfers "$T_APP" "$BODY1" "$(newkey)"
expect "replay: the same charge under a new key after revocation -> 403" 403 mandate_required
post /v1/transfers "$T_APP" "$(transfer "$UW" "$AM" 201 "$RUN-replay-1")" "$K1"
expect "replay: the key with another body after revocation -> 422" 422 idempotency_key_reused
check "replay: nothing moved after the revocation" "user $(balances "$UW" "$T_USER") was $B_UW" \
    eq "$(balances "$UW" "$T_USER")" "$B_UW"
EXP_SOON=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)
req POST /v1/mandates "$T_USER" "$(mandate "$UW" "$APP" 500 5000 "$EXP_SOON")"
expect "replay: a mandate that expires in seconds" 201
K2=$(newkey)
BODY2=$(transfer "$UW" "$AM" 70 "$RUN-replay-2")
post /v1/transfers "$T_APP" "$BODY2" "$K2"
expect "replay: a keyed charge before it expires" 201
cp "$W/body" "$W/replay2"
while [[ "$(date -u +%Y-%m-%dT%H:%M:%SZ)" < "$EXP_SOON" || "$(date -u +%Y-%m-%dT%H:%M:%SZ)" == "$EXP_SOON" ]]; do sleep 0.2; done
sleep 0.2
B_UW=$(balances "$UW" "$T_USER")
post /v1/transfers "$T_APP" "$BODY2" "$K2"
check "replay: after expiry the same request -> its stored 201, byte for byte" "status $ST body $(snippet)" \
    bash -c "[[ '$ST' == 201 ]] && cmp -s '$W/replay2' '$W/body' && grep -qi '^Idempotent-Replayed: true' '$W/hdr'"
post /v1/transfers "$T_APP" "$BODY2" "$(newkey)"
expect "replay: a new charge after expiry -> 403" 403 mandate_required
check "replay: nothing moved after the expiry" "user $(balances "$UW" "$T_USER") was $B_UW" \
    eq "$(balances "$UW" "$T_USER")" "$B_UW"

# ---------------------------------------------------------------- 4. the regions claim on every route

new_account "$T_ISSUER" '{"currency":"EUR","region":"eu","kind":"funding"}'
F2=$ACC
new_account "$T_USER" '{"currency":"EUR","region":"eu"}'
UW3=$ACC
post /v1/transfers "$T_ISSUER" "$(transfer "$F2" "$UW3" 1000 "$RUN-region-fund")" "$(newkey)"
TRF=$(j .id)
post /v1/transfers "$T_USER" "$(transfer "$UW3" "$UW" 300 "$RUN-region-hold" '{"pending":true}')" "$(newkey)"
HOLD=$(j .id)
req POST /v1/mandates "$T_USER" "$(mandate "$UW3" "$APP" 500 5000 "$EXP")"
MID3=$(j .id)
T_USER_US=$("$BUILD/bin/ledgerctl" --config "$CONF" token --sub "$USER" --regions us)
T_ISSUER_US=$("$BUILD/bin/ledgerctl" --config "$CONF" token --sub "$ISSUER" --regions us \
    --scope "accounts:read transfers:read transfers:write")
B_UW3=$(balances "$UW3" "$T_USER")
req GET "/v1/accounts/$UW3" "$T_USER_US"
expect "regions: read an eu account with a token for us -> 403" 403 region_forbidden
req GET "/v1/accounts/$UW3/balance" "$T_USER_US"
expect "regions: its balance -> 403" 403 region_forbidden
req GET "/v1/accounts/$UW3/entries" "$T_USER_US"
expect "regions: its entries -> 403" 403 region_forbidden
req GET "/v1/transfers/$HOLD" "$T_USER_US"
expect "regions: read an eu transfer -> 403" 403 region_forbidden
req GET "/v1/transfers?account_id=$UW3" "$T_USER_US"
expect "regions: list an eu account's transfers -> 403" 403 region_forbidden
req GET "/v1/transfers?reference=$RUN-region-hold" "$T_USER_US"
check "regions: a search by reference covers only the token's regions (none found in us)" "status $ST body $(snippet)" \
    eq "$ST,$(j '.data | length')" "200,0"
req GET "/v1/transfers?reference=$RUN-region-hold" "$T_USER"
check "regions: ... while the same search without the claim finds it in eu" "status $ST body $(snippet)" \
    eq "$ST,$(j '.data | length')" "200,1"
req GET "/v1/mandates/$MID3" "$T_USER_US"
expect "regions: read an eu mandate -> 403" 403 region_forbidden
req DELETE "/v1/mandates/$MID3" "$T_USER_US"
expect "regions: revoke an eu mandate -> 403" 403 region_forbidden
req GET "/v1/mandates/$MID3" "$T_USER"
check "regions: the mandate is still active" "body $(snippet)" eq "$(j .status)" active
post "/v1/transfers/$HOLD/void" "$T_USER_US" "" "$(newkey)"
expect "regions: void an eu hold -> 403" 403 region_forbidden
post "/v1/transfers/$HOLD/post" "$T_USER_US" "" "$(newkey)"
expect "regions: capture an eu hold -> 403" 403 region_forbidden
post "/v1/transfers/$TRF/reverse" "$T_ISSUER_US" '{"reference":"r"}' "$(newkey)"
expect "regions: refund an eu transfer -> 403" 403 region_forbidden
post /v1/transfers "$T_USER_US" "$(transfer "$UW3" "$UW" 1 "$RUN-region-x")" "$(newkey)"
expect "regions: pay from an eu account -> 403" 403 region_forbidden
new_account "$T_USER_US" '{"currency":"EUR","region":"us"}'
USW=$ACC
post /v1/transfers "$T_USER_US" "$(transfer "$USW" "$UW" 1 "$RUN-region-y")" "$(newkey)"
expect "regions: pay from a us account into an eu one -> 403" 403 region_forbidden
check "regions: nothing moved" "eu wallet $(balances "$UW3" "$T_USER") was $B_UW3" eq "$(balances "$UW3" "$T_USER")" "$B_UW3"
req GET "/v1/transfers/$HOLD" "$T_USER"
check "regions: the hold is still pending" "body $(snippet)" eq "$(j .status)" pending

# The request log names each refusal's code, whoever made it: the router, an
# endpoint, or the writer's batch (its response, built in the batch's hook).
for code in account_kind_forbidden region_forbidden insufficient_funds mandate_payee_forbidden; do
    check "log: refusals carry their code ($code)" "no request line with \"error\":\"$code\"" \
        grep -q "\"error\":\"$code\"" "$W/ledgerd-a.log"
done

# ---------------------------------------------------------------- 5. abuse before authentication (ledgerd B)

if ! PORT_B=$(free_port $((PORT + 1))); then
    fail "start B" "no free port"
    finish
fi
CONF_B="$W/b.conf"
cp -- "$GEOLEDGER_CONFIG" "$CONF_B"
LEDGERD_RATE_PER_S=5 LEDGERD_RATE_BURST=10 scripts/ledgerd-conf.sh "$CONF_B" "$TEST_DIR/dev.key" "$PORT_B"
# tight limits: 4 connections per address, 10 requests without a valid token
# per address then 1 a second, a request read within 1 s, tokens of 10 min at most
sed -i 's|^ledgerd = {|ledgerd = {\n  clients = { per_address_connections = 4; unauth_rate_per_s = 1; unauth_burst = 10; idle_timeout_s = 5; read_timeout_ms = 1000; };|' "$CONF_B"
sed -i 's|clock_skew_s = 60;|clock_skew_s = 60; max_token_lifetime_s = 600;|' "$CONF_B"
CONF_A=$CONF
CONF=$CONF_B
BASE="https://localhost:$PORT_B"
if ! start_ledgerd "$W/ledgerd-b.log"; then
    fail "start B" "ledgerd did not start: $(tail -n 5 "$W/ledgerd-b.log" | tr '\n' ' ')"
    finish
fi
ok "start: ledgerd (tight limits) on port $PORT_B"

T_OK=$(token "$APP" "accounts:read" 600)
req GET /healthz "" "" -4 --interface 127.0.0.2
if [[ "$ST" != 200 ]]; then
    fail "flood: 127.0.0.2 reaches ledgerd" "status $ST (loopback aliases unavailable?)"
else
    codes=""
    for i in $(seq 14); do
        req GET "/v1/accounts/$AW" "not.a.token$i" "" -4 --interface 127.0.0.2
        codes+="$ST "
    done
    check "flood: 10 bad tokens from one address -> 401, then 429 before verification" "$codes" \
        eq "$codes" "401 401 401 401 401 401 401 401 401 401 429 429 429 429 "
    expect "flood: the refusal says why" 429 too_many_failed_requests
    check "flood: with Retry-After" "headers: $(tr '\r\n' '  ' <"$W/hdr")" grep -qi '^Retry-After: [1-9]' "$W/hdr"
    req GET "/v1/accounts/$AW" "$T_OK" "" -4 --interface 127.0.0.2
    expect "flood: a good token from the flooding address waits too -> 429" 429 too_many_failed_requests
    req GET "/v1/accounts/$AW" "$T_OK" "" -4 --interface 127.0.0.3
    expect "flood: another address goes on -> 200" 200
    req GET "/v1/accounts/$AW" "not.a.token" "" -4 --interface 127.0.0.3
    expect "flood: ... and is still told why its bad token fails -> 401" 401 token_malformed
    sleep 2.1
    req GET "/v1/accounts/$AW" "$T_OK" "" -4 --interface 127.0.0.2
    expect "flood: the flooding address refills (1 a second)" 200
fi

# A token that lives longer than max_token_lifetime_s (600 s), or has no iat.
check "lifetime: ledgerctl will not mint a token ledgerd would refuse (exit 2)" "ledgerctl token --ttl 3600" \
    bash -c "\"$BUILD/bin/ledgerctl\" --config '$CONF' token --sub x --ttl 3600 >/dev/null 2>&1; [[ \$? == 2 ]]"
# a 1 h token, signed with the same key under ledgerd A's limit (24 h)
req GET "/v1/accounts/$AW" "$("$BUILD/bin/ledgerctl" --config "$CONF_A" token --sub "$APP" --scope accounts:read --ttl 3600)"
expect "lifetime: a 1 h token where 10 min is the limit -> 401" 401 token_lifetime_invalid
req GET "/v1/accounts/$AW" "$(token "$APP" "accounts:read" 600)"
expect "lifetime: a 10 min token -> 200" 200

# The rate counts each transfer of a batch (rate 5/s, burst 10 per principal).
T_BATCH=$(token "batcher-$RUN" "accounts:read accounts:write accounts:issue transfers:read transfers:write" 600)
new_account "$T_BATCH" '{"currency":"EUR","region":"eu","kind":"funding"}'
BF=$ACC
new_account "$T_BATCH" '{"currency":"EUR","region":"eu"}'
BW=$ACC
items() { # N: N transfers BF -> BW
    local out="" k
    for k in $(seq "$1"); do out+="${out:+,}$(transfer "$BF" "$BW" 1 "$RUN-batch-$k-$RANDOM")"; done
    printf '{"atomic":false,"transfers":[%s]}' "$out"
}
post /v1/transfers/batch "$T_BATCH" "$(items 11)" "$(newkey)"
expect "rate: a batch of 11 against a burst of 10 -> 429" 429 rate_limited
sleep 2.2 # the bucket is full again (10)
post /v1/transfers/batch "$T_BATCH" "$(items 6)" "$(newkey)"
check "rate: a batch of 6 -> 200" "status $ST body $(snippet)" eq "$ST" 200
post /v1/transfers/batch "$T_BATCH" "$(items 6)" "$(newkey)"
expect "rate: another batch of 6 right after -> 429 (6 + 6 > 10)" 429 rate_limited
check "rate: only the first batch moved money" "$(balances "$BW" "$T_BATCH")" eq "$(balances "$BW" "$T_BATCH" | jq -r .posted)" 6

# At most 4 connections per address.
exec {c1}<>"/dev/tcp/127.0.0.1/$PORT_B" {c2}<>"/dev/tcp/127.0.0.1/$PORT_B" \
    {c3}<>"/dev/tcp/127.0.0.1/$PORT_B" {c4}<>"/dev/tcp/127.0.0.1/$PORT_B"
sleep 0.2
req GET /healthz
check "connections: a 5th from the same address is refused" "status $ST" bash -c "[[ '$ST' != 200 ]]"
exec {c1}>&- {c2}>&- {c3}>&- {c4}>&-
sleep 0.3
req GET /healthz
expect "connections: once they close, it connects again" 200

# A client that trickles its request head over TLS (a header line every
# 0.3 s: never silent for the 5 s idle timeout) is cut when the 1 s read
# deadline passes. Prints the milliseconds until the server ended it.
slow_client() {
    local t0
    t0=$(date +%s%N)
    {
        printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n'
        for i in $(seq 20); do
            sleep 0.3
            printf 'X-Slow-%d: y\r\n' "$i"
        done
    } 2>/dev/null | timeout 10 openssl s_client -quiet -no_ign_eof -CAfile "$CA" -connect "127.0.0.1:$PORT_B" \
        >/dev/null 2>&1 || true
    echo $((($(date +%s%N) - t0) / 1000000))
}
CUT=$(slow_client)
check "slow client: a trickled request head is cut at the read deadline (1 s, under 3 s; 6 s if never cut)" \
    "ended after: $CUT ms" bash -c "(($CUT >= 900 && $CUT < 3000))"
req GET /healthz
expect "slow client: ledgerd serves others after it" 200
check "slow client: ledgerd logged the cut" "log: $(grep -c request_read_timeout "$W/ledgerd-b.log") lines" \
    grep -q '"event":"request_read_timeout"' "$W/ledgerd-b.log"
req GET /metrics
check "metrics: refusals by address counted" "$(grep too_many_failed "$W/body")" \
    grep -Eq '^geoledger_auth_failures_total\{reason="too_many_failed_requests"\} [1-9]' "$W/body"

CONF=$CONF_A
finish
