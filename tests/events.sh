#!/usr/bin/env bash
# shellcheck disable=SC2034 # SUMMARY_DONE and CLEANUP_PIDS are read by the exit trap of tests/lib.sh
# events.sh — GET /v1/events against a real ledgerd and the real PostgreSQL
# cluster that tests/run.sh started and migrated:
#
#   GEOLEDGER_CONFIG=DIR/ledger.conf BUILD=build TEST_DIR=DIR tests/events.sh
#
# Each effect made through the API (accounts, transfers, a hold posted, a hold
# voided, a refund, a mandate granted and revoked) appears once in the feed,
# in order, with its ids, amount and currency; another principal's events are
# invisible and admin sees them; a cursor read twice gives the same page and
# following it gives every event once; the merged view of all regions
# (a position per region) and one region alone; the types filter; hostile
# cursors, limits, types and regions are 400 and change nothing.
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
: "${GEOLEDGER_CONFIG:?set GEOLEDGER_CONFIG to the ledger.conf of a migrated cluster}"
: "${TEST_DIR:?set TEST_DIR to the cluster directory}"
# shellcheck source=lib.sh
source tests/lib.sh
# shellcheck source=http.sh
source tests/http.sh
require events.sh curl jq openssl od "$BUILD/bin/ledgerd" "$BUILD/bin/ledgerctl"

W=$(mktemp -d /tmp/geoledger-events.XXXXXX)
exit_trap events.sh
on_early_exit() { [[ -s "$W/ledgerd.log" ]] && tail -n 5 "$W/ledgerd.log"; }
START=$SECONDS
RUN="e$$x$RANDOM"

if ! PORT=$(free_port $((18600 + $$ % 100))); then
    fail "start" "no free port from 18600"
    exit 1
fi
CONF="$W/ledger.conf"
cp -- "$GEOLEDGER_CONFIG" "$CONF"
scripts/ledgerd-conf.sh "$CONF" "$TEST_DIR/dev.key" "$PORT"
BASE="https://localhost:$PORT"
CA="$W/ca/ca.crt"
if ! start_ledgerd "$W/ledgerd.log"; then
    fail "start" "ledgerd did not answer /healthz on port $PORT: $(tail -n 5 "$W/ledgerd.log" | tr '\n' ' ')"
    exit 1
fi
ok "start: ledgerd on port $PORT"

ISSUER="issuer-$RUN" ALICE="alice-$RUN" SHOP="shop-$RUN" EVE="eve-$RUN"
T_ISSUER=$(token "$ISSUER" "accounts:read accounts:write accounts:issue transfers:read transfers:write events:read")
T_ALICE=$(token "$ALICE")
T_SHOP=$(token "$SHOP")
T_EVE=$(token "$EVE")
T_ADMIN=$(token "admin-$RUN" "admin events:read")
T_NOEV=$(token "$ALICE" "accounts:read")

# The feed's position now, per region: the run's events come after it. Eve
# sees none of the events before (they are not hers), so her pages are empty
# and their cursor moves past them in windows of 10,000: the end is found
# without reading the other suites' events (whose amounts reach 2^63-1, which
# the contract step's validator, a JavaScript program, flags above 2^53).
req GET "/v1/events" "$T_EVE"
expect "feed: the merged view" 200
START_CURSOR=$(j -r .next_cursor)
for _ in $(seq 1000); do
    [[ "$(j -r .has_more)" == true ]] || break
    req GET "/v1/events?after=$START_CURSOR" "$T_EVE"
    START_CURSOR=$(j -r .next_cursor)
done
check "feed: eve's pages before the run are empty" "body: $(snippet)" eq "$(j '.data | length')" 0
check "feed: the cursor names every region" "cursor $START_CURSOR" \
    eq "$(tr ',' '\n' <<<"$START_CURSOR" | cut -d: -f1 | sort | tr '\n' ' ')" "eu sg us "

# ---------------------------------------------------------------- effects through the API

id_of() { # METHOD PATH TOKEN BODY [KEY]: the new object's id in ID (empty unless 2xx)
    if [[ -n "${5-}" ]]; then post "$2" "$3" "$4" "$5"; else req "$1" "$2" "$3" "$4"; fi
    ID=""
    [[ "$ST" != 2* ]] || ID=$(j -r .id)
}
id_of POST /v1/accounts "$T_ISSUER" '{"currency":"EUR","region":"eu","kind":"funding"}'
FUND=$ID
id_of POST /v1/accounts "$T_ALICE" '{"currency":"EUR","region":"eu"}'
WALLET=$ID
id_of POST /v1/accounts "$T_ALICE" '{"currency":"EUR","region":"eu"}'
SAVINGS=$ID
id_of POST /v1/accounts "$T_SHOP" '{"currency":"EUR","region":"eu","kind":"merchant"}'
SHOPACC=$ID
check "setup: three accounts" "fund $FUND wallet $WALLET shop $SHOPACC" eq "$([[ -n $FUND && -n $WALLET && -n $SHOPACC ]] && echo y)" y
id_of POST /v1/transfers "$T_ISSUER" "$(transfer "$FUND" "$WALLET" 5000 "$RUN-topup")" "$(newkey)"
TOPUP=$ID
id_of POST /v1/transfers "$T_ALICE" "$(transfer "$WALLET" "$SHOPACC" 1200 "$RUN-hold" '{"pending":true}')" "$(newkey)"
HOLD=$ID
id_of POST "/v1/transfers/$HOLD/post" "$T_ALICE" '{"amount":900}' "$(newkey)"
CAPTURE=$ID
id_of POST /v1/transfers "$T_ALICE" "$(transfer "$WALLET" "$SHOPACC" 300 "$RUN-hold2" '{"pending":true}')" "$(newkey)"
HOLD2=$ID
id_of POST "/v1/transfers/$HOLD2/void" "$T_ALICE" '' "$(newkey)"
VOID=$ID
id_of POST /v1/transfers "$T_ALICE" "$(transfer "$WALLET" "$SAVINGS" 400 "$RUN-save")" "$(newkey)"
SAVE=$ID
# A refund by the transfer's author, of a payee of her own (another's needs a mandate).
id_of POST "/v1/transfers/$SAVE/reverse" "$T_ALICE" "{\"amount\":100,\"reference\":\"$RUN-refund\"}" "$(newkey)"
REFUND=$ID
EXP=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
id_of POST /v1/mandates "$T_ALICE" "{\"wallet_account_id\":\"$WALLET\",\"grantee\":\"$SHOP\",\"currency\":\"EUR\",\"max_amount_per_charge\":500,\"max_amount_per_day\":1000,\"expires_at\":\"$EXP\"}" "$(newkey)"
MANDATE=$ID
req DELETE "/v1/mandates/$MANDATE" "$T_ALICE"
check "setup: every effect made" "topup $TOPUP hold $HOLD capture $CAPTURE void $VOID refund $REFUND mandate $MANDATE revoke $ST" \
    eq "$([[ -n $SAVINGS && -n $TOPUP && -n $HOLD && -n $CAPTURE && -n $VOID && -n $SAVE && -n $REFUND && -n $MANDATE && $ST == 200 ]] && echo y)" y
# A replay and a refusal: no effect, no event.
post /v1/transfers "$T_ISSUER" "$(transfer "$FUND" "$WALLET" 5000 "$RUN-topup")" "$RUN-replay-a"
post /v1/transfers "$T_ALICE" "$(transfer "$WALLET" "$SHOPACC" 99999999 "$RUN-toomuch")" "$(newkey)"
expect "setup: a refused transfer" 422 insufficient_funds

# ---------------------------------------------------------------- what each principal sees

# feed TOKEN QUERY: every event after START_CURSOR, following next_cursor, as
# "type id" lines into $W/feed; the pages' count in PAGES.
feed() {
    local cursor=$START_CURSOR
    : >"$W/feed"
    PAGES=0
    for _ in $(seq 200); do
        req GET "/v1/events?after=$cursor${2:+&$2}" "$1"
        [[ "$ST" == 200 ]] || { echo "GET /v1/events: $ST $(snippet)" >>"$W/feed"; return; }
        j -r '.data[] | .type + " " + (.data.transfer_id // .data.mandate_id // .data.account_id)' >>"$W/feed"
        PAGES=$((PAGES + 1))
        cursor=$(j -r .next_cursor)
        [[ "$(j -r .has_more)" == true ]] || break
    done
    FEED_CURSOR=$cursor
}

WANT_ALICE="account.created $WALLET
account.created $SAVINGS
transfer.created $TOPUP
transfer.pending $HOLD
transfer.posted $CAPTURE
transfer.pending $HOLD2
transfer.voided $VOID
transfer.created $SAVE
transfer.reversed $REFUND
mandate.created $MANDATE
mandate.revoked $MANDATE"
feed "$T_ALICE" "limit=3"
check "alice: each of her effects once, in commit order, over pages of 3" "got: $(tr '\n' ';' <"$W/feed")" \
    eq "$(cat "$W/feed")" "$WANT_ALICE"
check "alice: followed the cursor over several pages" "pages $PAGES" eq "$((PAGES >= 3))" 1

feed "$T_SHOP"
check "shop: the hold, its capture and release, the mandate; not alice's own transfers" \
    "got: $(tr '\n' ';' <"$W/feed")" eq "$(cut -d' ' -f1 "$W/feed" | tr '\n' ' ')" \
    "account.created transfer.pending transfer.posted transfer.pending transfer.voided mandate.created mandate.revoked "

feed "$T_EVE"
check "eve: none of the others' events" "got: $(tr '\n' ';' <"$W/feed")" eq "$(wc -l <"$W/feed" | tr -d ' ')" 0

feed "$T_ADMIN" "region=eu&limit=1000"
check "admin: every event of the run (13), region eu alone" "got: $(tr '\n' ';' <"$W/feed")" \
    eq "$(grep -cE "$FUND|$WALLET|$SAVINGS|$SHOPACC|$TOPUP|$HOLD|$CAPTURE|$HOLD2|$VOID|$SAVE|$REFUND|$MANDATE" "$W/feed")" 13

req GET "/v1/events?after=$START_CURSOR&limit=1" "$T_ALICE"
FIRST=$(j -c .data)
NEXT=$(j -r .next_cursor)
req GET "/v1/events?after=$START_CURSOR&limit=1" "$T_ALICE"
check "cursor: the same cursor gives the same page" "first $FIRST, again $(j -c .data)" eq "$(j -c .data)" "$FIRST"
check "cursor: a full page has more" "body: $(snippet)" eq "$(j -r .has_more)" true
check "cursor: it moved past the page" "start $START_CURSOR, next $NEXT" eq "$([[ $NEXT != "$START_CURSOR" ]] && echo moved)" moved
req GET "/v1/events?after=$START_CURSOR&limit=1" "$T_ALICE" "" -H "Idempotency-Key: ignored"
check "event shape: id, type, region, created_at, data with the amount and currency" "body: $(snippet)" \
    eq "$(j -r '.data[0] | [.type, .region, (.id | length), (.created_at | test("Z$")), .data.currency] | map(tostring) | join(" ")')" \
    "account.created eu 36 true EUR"

feed "$T_ALICE" "types=transfer.posted,transfer.voided"
check "types: only the capture and the release" "got: $(tr '\n' ';' <"$W/feed")" eq "$(cat "$W/feed")" \
    "transfer.posted $CAPTURE
transfer.voided $VOID"
req GET "/v1/events?after=$FEED_CURSOR" "$T_ALICE"
check "poll: at the end, an empty page whose cursor stays" "body: $(snippet)" \
    eq "$(j -r '[(.data | length), .has_more, .next_cursor] | map(tostring) | join(" ")')" "0 false $FEED_CURSOR"

req GET "/v1/events?after=$START_CURSOR" "$T_ALICE" "" -H "X-Ignored: 1"
AMOUNTS=$(j -r '[.data[] | select(.type | startswith("transfer.")) | .data.amount] | map(tostring) | join(",")')
check "amounts: top-up 5000, hold 1200, capture 900, hold 300, release 300, saving 400, refund 100" "got $AMOUNTS" \
    eq "$AMOUNTS" "5000,1200,900,300,300,400,100"

# ---------------------------------------------------------------- refusals

req GET "/v1/events" "$T_NOEV"
expect "scope: without events:read -> 403" 403 scope_missing
req GET "/v1/events"
expect "no token -> 401" 401 token_missing
for bad in "after=eu" "after=eu:-1" "after=xx:1" "after=eu:1,,us:2" "after=eu:99999999999999999999" \
    "after=eu:9223372036854775807" "after=eu:1,eu:2" "after=eu:1," "after=:1" "limit=0" \
    "limit=1001" "limit=ten" "types=transfer.nope" "types=" "region=mars" "after=$(head -c 600 /dev/zero | tr '\0' 'a'):1"; do
    req GET "/v1/events?$bad" "$T_ALICE"
    expect "refused: $bad -> 400" 400 invalid_value
done
T_US=$("$BUILD/bin/ledgerctl" --config "$CONF" token --sub "$ALICE" --regions us)
req GET "/v1/events?region=eu" "$T_US"
expect "regions claim: a token for us reading eu -> 403" 403 region_forbidden
req GET "/v1/events" "$T_US"
check "regions claim: the merged view covers us only" "body: $(snippet)" eq "$(j -r .next_cursor)" "us:$(j -r .next_cursor | cut -d: -f2)"

echo "events.sh: $((SECONDS - START)) s"
SUMMARY_DONE=1
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
