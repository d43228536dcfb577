#!/usr/bin/env bash
# shellcheck disable=SC2034 # SUMMARY_DONE and CLEANUP_PIDS are read by the exit trap of tests/lib.sh
# webhooks.sh — signed webhooks end to end: a real ledgerd, the real
# PostgreSQL cluster tests/run.sh started and migrated, and a receiver
# (tests/tools/webhook_receiver.py) that verifies every signature on its own:
#
#   GEOLEDGER_CONFIG=DIR/ledger.conf BUILD=build TEST_DIR=DIR tests/webhooks.sh
#
#  1. every effect (account, transfer, hold, post, void, reverse, mandate
#     create and revoke) reaches its owner's endpoint once, validly signed,
#     and nobody else's, with two ledgerd processes sending; an admin's
#     endpoint gets every event of its types;
#  2. the receiver down for a while: deliveries catch up, in order;
#  3. the receiver answering 500 until the retries are spent: a dead letter
#     the API shows, then redelivered by hand;
#  4. ledgerd killed (-9) while delivering: every event is delivered at least
#     once after the restart, a duplicate with the same webhook-id; the same
#     when region eu's PostgreSQL is stopped at once and started again;
#  5. an endpoint failing continuously is disabled, then re-enabled;
#  6. a verifier with the wrong secret refuses every delivery;
#  7. with allow_private_targets = false (a second ledgerd): loopback,
#     private and link-local targets refused at registration, and at sending.
# The retry schedule is short (ledger.conf's webhooks group). One line per
# check; the last line is "N passed, N failed".
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
: "${GEOLEDGER_CONFIG:?set GEOLEDGER_CONFIG to the ledger.conf of a migrated cluster}"
: "${TEST_DIR:?set TEST_DIR to the cluster directory}"
# shellcheck source=lib.sh
source tests/lib.sh
# shellcheck source=http.sh
source tests/http.sh
require webhooks.sh curl jq python3 openssl od "$BUILD/bin/ledgerd" "$BUILD/bin/ledgerctl"

W=$(mktemp -d /tmp/geoledger-webhooks.XXXXXX)
exit_trap webhooks.sh
on_early_exit() { for log in "$W"/ledgerd-*.log; do [[ -s "$log" ]] && tail -n 5 "$log"; done; }
START=$SECONDS
RUN="w$$x$RANDOM"
R="$W/recv" # the receiver's files: NAME.secret, NAME.mode, NAME.log
mkdir -p "$R"

finish() {
    echo "webhooks.sh: $((SECONDS - START)) s"
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
    exit
}

# ---------------------------------------------------------------- the receiver and ledgerd

RPID=""
start_receiver() {
    python3 tests/tools/webhook_receiver.py "$RPORT" "$R" >>"$W/receiver.log" 2>&1 &
    RPID=$!
    CLEANUP_PIDS+=("$RPID")
    for _ in $(seq 50); do port_busy "$RPORT" && return 0; sleep 0.1; done
    return 1
}
stop_receiver() { stop_pid "$RPID" 20 || true; }

if ! RPORT=$(free_port $((18700 + $$ % 100))) || ! start_receiver; then
    fail "start" "the webhook receiver did not listen"
    finish
fi
if ! PORT=$(free_port $((RPORT + 1))); then
    fail "start" "no free port for ledgerd"
    finish
fi
# Retries after 0.1, 0.2, 0.4, 0.8, 1.6 s (about 3.1 s to a dead letter), a
# lease of 3 s, an endpoint disabled after 5 s of continuous failure.
WEBHOOKS='allow_private_targets = true; retry_schedule_ms = [100, 200, 400, 800, 1600];
  connect_timeout_ms = 1000; timeout_ms = 2000; lease_ms = 3000; disable_after_s = 5; senders = 2; poll_ms = 100;'
CONF="$W/a.conf"
cp -- "$GEOLEDGER_CONFIG" "$CONF"
LEDGERD_WEBHOOKS="$WEBHOOKS" scripts/ledgerd-conf.sh "$CONF" "$TEST_DIR/dev.key" "$PORT"
BASE="https://localhost:$PORT"
CA="$W/ca/ca.crt"
if ! start_ledgerd "$W/ledgerd-a.log"; then
    fail "start" "ledgerd did not answer /healthz on port $PORT: $(tail -n 5 "$W/ledgerd-a.log" | tr '\n' ' ')"
    finish
fi
ok "start: receiver on $RPORT, ledgerd on $PORT"

ALICE="alice-$RUN" BOB="bob-$RUN" CAROL="carol-$RUN" DAVE="dave-$RUN" GRANTEE="grantee-$RUN" ADMIN="admin-$RUN"
ALL="accounts:read accounts:write transfers:read transfers:write events:read mandates:write webhooks:write"
TA=$(token "$ALICE" "$ALL accounts:issue")
TB=$(token "$BOB" "$ALL")
TC=$(token "$CAROL" "$ALL")
TD=$(token "$DAVE" "$ALL")
TADM=$(token "$ADMIN" "admin")
T_NOWRITE=$(token "$ALICE" "accounts:read events:read")
HOOK="http://127.0.0.1:$RPORT/hook"

# register NAME TOKEN REGION [EVENT-TYPES-JSON]: an endpoint for receiver NAME; its id in EP, its secret given to the receiver.
register() {
    local body
    body=$(jq -cn --arg u "$HOOK/$1" --arg r "$3" --argjson t "${4:-null}" '{url: $u, region: $r} + (if $t then {event_types: $t} else {} end)')
    post /v1/webhook_endpoints "$2" "$body" "$(newkey)"
    EP=""
    [[ "$ST" != 201 ]] || { EP=$(j .id); j -r .secret >"$R/$1.secret"; }
}

# delivered NAME: the event ids NAME's receiver answered 200, in the order first received.
delivered() {
    if [[ -s "$R/$1.log" ]]; then jq -r 'select(.status == 200) | .body_id' "$R/$1.log" | awk '!seen[$0]++'; fi
}
# feed TOKEN REGION: the caller's event ids of REGION, in seq order; fails
# unless the region answered (after a database restart it is named in
# regions_unavailable for a while: its circuit is open until a probe succeeds).
feed() {
    req GET "/v1/events?region=$2&limit=1000" "$1"
    [[ "$ST" == 200 && "$(j '.regions_unavailable | length')" == 0 ]] || return 1
    j -r '.data[].id'
}
# wait_for TENTHS CMD...: until CMD succeeds, at most TENTHS x 0.1 s.
wait_for() {
    local n=$1
    shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
    return 1
}
all_delivered() { # NAME TOKEN REGION: every event of the caller's feed reached NAME
    local f
    f=$(feed "$2" "$3") || return 1
    [[ -z "$f" || -z "$(comm -23 <(sort <<<"$f") <(delivered "$1" | sort))" ]]
}

# ---------------------------------------------------------------- registration and the API

register alice "$TA" eu
expect "register: alice's endpoint in eu -> 201" 201
EPA=$EP
check "register: the secret is whsec_ + base64 of 32 bytes, shown once" "body: $(snippet)" \
    grep -qE '^whsec_[A-Za-z0-9+/]{43}=$' "$R/alice.secret"
req GET "/v1/webhook_endpoints/$EPA" "$TA"
expect "get: alice's endpoint" 200
check "get: no secret, status active, all event types" "body: $(snippet)" \
    eq "$(j -c '[has("secret"), .status, .event_types, .region]')" '[false,"active",[],"eu"]'
register bob "$TB" eu
EPB=$EP
register carol "$TC" eu
EPC=$EP
register dave "$TD" eu
openssl rand -base64 32 | sed 's/^/whsec_/' >"$R/dave.secret" # dave's verifier holds the wrong secret
register admin "$TADM" us '["account.created"]'
expect "register: an admin's endpoint in us, account.created only -> 201" 201
EPADM=$EP
check "register: five endpoints" "alice $EPA bob $EPB carol $EPC admin $EPADM" test -n "$EPA$EPB$EPC$EPADM"

req GET "/v1/webhook_endpoints/$EPA" "$TB"
expect "get: another principal's endpoint -> 404" 404 webhook_endpoint_not_found
req GET "/v1/webhook_endpoints/$EPA/deliveries" "$TB"
expect "deliveries: another principal's endpoint -> 404" 404 webhook_endpoint_not_found
req DELETE "/v1/webhook_endpoints/$EPA" "$TB"
expect "delete: another principal's endpoint -> 404" 404 webhook_endpoint_not_found
req GET /v1/webhook_endpoints/not-an-id "$TA"
expect "get: an id that does not parse -> 404" 404 webhook_endpoint_not_found
req GET "/v1/webhook_endpoints/$EPA" "$TADM"
expect "get: admin sees any endpoint" 200
post /v1/webhook_endpoints "$T_NOWRITE" "{\"url\":\"$HOOK/x\",\"region\":\"eu\"}" "$(newkey)"
expect "register: without webhooks:write -> 403" 403 scope_missing
post /v1/webhook_endpoints "$TA" "{\"url\":\"$HOOK/x\",\"region\":\"mars\"}" "$(newkey)"
expect "register: an unknown region -> 400" 400 invalid_value
post /v1/webhook_endpoints "$TA" "{\"url\":\"$HOOK/x\",\"region\":\"eu\",\"event_types\":[\"transfer.stolen\"]}" "$(newkey)"
expect "register: an unknown event type -> 400" 400 invalid_value
post /v1/webhook_endpoints "$TA" '{"url":"ftp://example.com/x","region":"eu"}' "$(newkey)"
expect "register: an ftp url -> 400" 400 invalid_value
req GET /v1/webhook_endpoints "$TA"
expect "list: alice's endpoints" 200
check "list: only alice's one" "body: $(snippet)" eq "$(j -c '[.data[].id]')" "[\"$EPA\"]"
req GET "/v1/webhook_endpoints?region=us" "$TADM"
check "list: admin, region us, has its endpoint" "body: $(snippet)" eq "$(j "[.data[].id] | index(\"$EPADM\") != null")" true
req GET "/v1/webhook_endpoints/$EPA/deliveries?state=lost" "$TA"
expect "deliveries: an unknown state -> 400" 400 invalid_value
req POST "/v1/webhook_endpoints/$EPA/deliveries/$EPB/redeliver" "$TA"
expect "redeliver: an unknown delivery -> 404" 404 webhook_delivery_not_found

# ---------------------------------------------------------------- 1. every effect, once, signed, to its owner only

# A second ledgerd on the same databases sends too, until section 4: leases
# keep the two from sending a delivery twice ("each once" below).
LPID_A=$LPID CONF_A=$CONF BASE_A=$BASE
if PORT2=$(free_port $((PORT + 1))); then
    CONF="$W/a2.conf"
    cp -- "$GEOLEDGER_CONFIG" "$CONF"
    LEDGERD_WEBHOOKS="$WEBHOOKS" scripts/ledgerd-conf.sh "$CONF" "$TEST_DIR/dev.key" "$PORT2"
    BASE="https://localhost:$PORT2"
    if start_ledgerd "$W/ledgerd-second.log"; then ok "second ledgerd on $PORT2"; else fail "second ledgerd" "it did not start"; fi
fi
LPID2=$LPID LPID=$LPID_A CONF=$CONF_A BASE=$BASE_A

new_account() { # TOKEN BODY: the new account's id in ACC
    req POST /v1/accounts "$1" "$2"
    ACC=""
    [[ "$ST" != 201 ]] || ACC=$(j .id)
}
new_account "$TA" '{"currency":"EUR","region":"eu","kind":"funding"}'
FUND=$ACC
new_account "$TA" '{"currency":"EUR","region":"eu"}'
WALLET=$ACC
new_account "$TA" '{"currency":"EUR","region":"eu","kind":"merchant"}'
SHOP=$ACC
post /v1/transfers "$TA" "$(transfer "$FUND" "$WALLET" 10000 "$RUN-fund")" "$(newkey)"
expect "effects: fund the wallet" 201
post /v1/transfers "$TA" "$(transfer "$WALLET" "$SHOP" 300 "$RUN-hold1" '{"pending":true}')" "$(newkey)"
HOLD1=$(j .id)
post "/v1/transfers/$HOLD1/post" "$TA" '{}' "$(newkey)"
expect "effects: a hold posted" 201
post /v1/transfers "$TA" "$(transfer "$WALLET" "$SHOP" 200 "$RUN-hold2" '{"pending":true}')" "$(newkey)"
HOLD2=$(j .id)
post "/v1/transfers/$HOLD2/void" "$TA" '{}' "$(newkey)"
expect "effects: a hold voided" 201
post /v1/transfers "$TA" "$(transfer "$WALLET" "$SHOP" 500 "$RUN-buy")" "$(newkey)"
BUY=$(j .id)
post "/v1/transfers/$BUY/reverse" "$TA" "{\"amount\":100,\"reference\":\"$RUN-refund\"}" "$(newkey)"
expect "effects: a reversal" 201
EXP=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
post /v1/mandates "$TA" "{\"wallet_account_id\":\"$WALLET\",\"grantee\":\"$GRANTEE\",\"currency\":\"EUR\",\"max_amount_per_charge\":100,\"max_amount_per_day\":100,\"expires_at\":\"$EXP\"}" "$(newkey)"
expect "effects: a mandate granted" 201
MANDATE=$(j .id)
req DELETE "/v1/mandates/$MANDATE" "$TA"
expect "effects: the mandate revoked" 200
new_account "$TA" '{"currency":"EUR","region":"us"}'
ALICE_US=$ACC
new_account "$TB" '{"currency":"EUR","region":"eu"}'
new_account "$TB" '{"currency":"EUR","region":"eu"}'
printf '500\n' >"$R/carol.mode" # carol's receiver fails until section 5
for _ in 1 2 3; do new_account "$TC" '{"currency":"EUR","region":"eu"}'; done
new_account "$TD" '{"currency":"EUR","region":"eu"}'

wait_for 100 all_delivered alice "$TA" eu || true
FEED_A=$(feed "$TA" eu)
check "effects: alice's feed has the 8 effect types" "types: $(j -r '[.data[].type] | unique | join(",")')" \
    eq "$(j -r '[.data[].type] | unique | join(",")')" \
    "account.created,mandate.created,mandate.revoked,transfer.created,transfer.pending,transfer.posted,transfer.reversed,transfer.voided"
check "effects: every event of alice's feed reached her endpoint" "missing: $(comm -23 <(sort <<<"$FEED_A") <(delivered alice | sort) | head -3 | tr '\n' ' ')" \
    eq "$(delivered alice | sort)" "$(sort <<<"$FEED_A")"
check "effects: each once (no duplicates)" "records $(wc -l <"$R/alice.log"), events $(wc -l <<<"$FEED_A")" \
    eq "$(wc -l <"$R/alice.log")" "$(wc -l <<<"$FEED_A")"
check "effects: every signature verified, timestamp within tolerance" "$(jq -c 'select(.valid | not)' "$R/alice.log" | head -2)" \
    eq "$(jq -s 'all(.valid)' "$R/alice.log")" true
check "effects: webhook-id is the event id; Content-Type and User-Agent" "$(head -c 300 "$R/alice.log")" \
    eq "$(jq -s 'all(.webhook_id == .body_id and .content_type == "application/json" and .user_agent == "geoledger-webhooks/1")' "$R/alice.log")" true
check "effects: in the order of the feed" "delivered: $(delivered alice | head -3 | tr '\n' ' ')" eq "$(delivered alice)" "$FEED_A"
wait_for 50 all_delivered bob "$TB" eu || true
check "owners: bob's endpoint got bob's events" "bob got $(delivered bob | wc -l)" eq "$(delivered bob | sort)" "$(feed "$TB" eu | sort)"
check "owners: none of alice's events reached bob" "shared: $(comm -12 <(delivered bob | sort) <(sort <<<"$FEED_A") | head -2)" \
    eq "$(comm -12 <(delivered bob | sort) <(sort <<<"$FEED_A") | wc -l)" 0
check "owners: none of bob's reached alice" "alice records $(wc -l <"$R/alice.log")" \
    eq "$(comm -12 <(delivered alice | sort) <(feed "$TB" eu | sort) | wc -l)" 0
admin_has_alice_us() { delivered admin | grep -q .; }
wait_for 50 admin_has_alice_us || true
check "admin: its endpoint got alice's account.created in us, and only account.created" "$(head -c 300 "$R/admin.log" 2>/dev/null)" \
    eq "$(jq -s 'length > 0 and all(.type == "account.created")' "$R/admin.log" 2>/dev/null)" true
wait_for 50 test -s "$R/dave.log" || true
check "tampering: the verifier with the wrong secret refuses every delivery" "$(head -c 300 "$R/dave.log" 2>/dev/null)" \
    eq "$(jq -s 'length > 0 and all(.valid == false and .status == 401)' "$R/dave.log" 2>/dev/null)" true

# ---------------------------------------------------------------- 2. the receiver down for a while

stop_receiver
for i in 1 2 3 4 5; do post /v1/transfers "$TA" "$(transfer "$WALLET" "$SHOP" 10 "$RUN-down-$i")" "$(newkey)"; done
expect "down: five transfers while the receiver is down" 201
sleep 1.5
req GET "/v1/webhook_endpoints/$EPA/deliveries?state=pending" "$TA"
check "down: the deliveries wait, the first with failed attempts" "body: $(snippet)" \
    eq "$(j '(.data | length) == 5 and ([.data[].attempts | length] | max) >= 2 and (.data[-1].attempts[0].status == null)')" true
if ! start_receiver; then fail "down: receiver back" "it did not listen again"; fi
wait_for 100 all_delivered alice "$TA" eu || true
FEED_A=$(feed "$TA" eu)
check "down: every delivery caught up" "missing: $(comm -23 <(sort <<<"$FEED_A") <(delivered alice | sort) | wc -l)" \
    eq "$(delivered alice | sort)" "$(sort <<<"$FEED_A")"
check "down: in the order of the feed" "delivered tail: $(delivered alice | tail -5 | tr '\n' ' ')" eq "$(delivered alice)" "$FEED_A"

# ---------------------------------------------------------------- 3. 500 until the cap: a dead letter, redelivered

printf '500\n' >"$R/alice.mode"
post /v1/transfers "$TA" "$(transfer "$WALLET" "$SHOP" 10 "$RUN-dead")" "$(newkey)"
DEAD_EVENT_T=$(j .id)
dead_listed() {
    req GET "/v1/webhook_endpoints/$EPA/deliveries?state=dead" "$TA"
    [[ "$(j '.data | length')" == 1 ]]
}
wait_for 80 dead_listed || true
check "dead: a dead letter after 6 attempts, each answered 500" "body: $(snippet)" \
    eq "$(j -c '[.data[0].state, .data[0].attempt_count, ([.data[0].attempts[].status] | unique), .data[0].last_error]')" \
    '["dead",6,[500],"HTTP 500"]'
DEAD=$(j -r '.data[0].id')
DEAD_EVENT=$(j -r '.data[0].event_id')
# Both ledgerds send until section 4: the attempts (and the last, dead one) are
# counted by whichever made them, so both processes' counters are read.
curl -s --cacert "$CA" --max-time 5 "https://localhost:${PORT2:-0}/metrics" >"$W/metrics-second" 2>/dev/null || true
req GET /metrics
cat "$W/body" "$W/metrics-second" >"$W/metrics-both"
check "dead: metrics count the dead letter and the failed attempts" "$(grep -E '^geoledger_webhook_(deliveries_total|dead_letters)\{region="eu"' "$W/metrics-both" | tr '\n' ' ')" \
    awk '/^geoledger_webhook_deliveries_total\{region="eu",outcome="dead"\} [1-9]/ {d=1} /^geoledger_webhook_deliveries_total\{region="eu",outcome="failed"\} [1-9]/ {f=1} /^geoledger_webhook_deliveries_total\{region="eu",outcome="delivered"\} [1-9]/ {ok=1} END {exit !(d && f && ok)}' "$W/metrics-both"
if command -v promtool >/dev/null 2>&1; then
    check "metrics: promtool check metrics" "$(promtool check metrics <"$W/body" 2>&1 | head -c 300)" \
        promtool check metrics <"$W/body"
fi
printf 'ok\n' >"$R/alice.mode"
req POST "/v1/webhook_endpoints/$EPA/deliveries/$DEAD/redeliver" "$TA"
expect "redeliver: the dead letter" 200
check "redeliver: pending again, its attempts kept" "body: $(snippet)" eq "$(j -c '[.state, .attempt_count]')" '["pending",6]'
redelivered() { delivered alice | grep -qx "$DEAD_EVENT"; }
wait_for 50 redelivered || true
check "redeliver: it reached the receiver" "transfer $DEAD_EVENT_T, event $DEAD_EVENT" redelivered
req GET "/v1/webhook_endpoints/$EPA/deliveries?limit=1" "$TA"
check "redeliver: delivered, attempt 7 answered 200" "body: $(snippet)" \
    eq "$(j -c '[.data[0].state, .data[0].attempts[-1].attempt, .data[0].attempts[-1].status, .has_more]')" '["delivered",7,200,true]'
req POST "/v1/webhook_endpoints/$EPA/deliveries/$DEAD/redeliver" "$TA"
expect "redeliver: a delivered one again (by hand) -> 200" 200

# ---------------------------------------------------------------- 4. kill -9 while delivering

stop_pid "$LPID2" 50 || true # the killed ledgerd alone, so its leases must expire

wait_for 30 all_delivered alice "$TA" eu || true
printf 'slow:300\n' >"$R/alice.mode"
for i in $(seq 10); do post /v1/transfers "$TA" "$(transfer "$WALLET" "$SHOP" 1 "$RUN-kill-$i")" "$(newkey)"; done
expect "kill: ten transfers" 201
BEFORE=$(wc -l <"$R/alice.log")
some_sent() { (($(wc -l <"$R/alice.log") >= BEFORE + 3)); }
wait_for 50 some_sent || true
kill -KILL "$LPID"
wait "$LPID" 2>/dev/null || true
ok "kill: ledgerd killed (-9) after $(($(wc -l <"$R/alice.log") - BEFORE)) of 10 deliveries"
printf 'ok\n' >"$R/alice.mode"
if ! start_ledgerd "$W/ledgerd-a2.log"; then
    fail "kill: restart" "ledgerd did not come back: $(tail -n 3 "$W/ledgerd-a2.log" | tr '\n' ' ')"
    finish
fi
wait_for 150 all_delivered alice "$TA" eu || true
FEED_A=$(feed "$TA" eu)
check "kill: every event delivered at least once after the restart" \
    "missing: $(comm -23 <(sort <<<"$FEED_A") <(delivered alice | sort) | wc -l)" \
    eq "$(comm -23 <(sort <<<"$FEED_A") <(delivered alice | sort) | wc -l)" 0
DUPS=$(jq -r 'select(.status == 200) | .body_id' "$R/alice.log" | sort | uniq -d | wc -l)
check "kill: every record's webhook-id is its event's id ($DUPS events received twice)" "$(head -c 300 "$R/alice.log")" \
    eq "$(jq -s 'all(.webhook_id == .body_id and .valid)' "$R/alice.log")" true

# ---------------------------------------------------------------- 4b. PostgreSQL restarted while delivering

# eu's server stopped at once while deliveries are in flight (leases held,
# attempts being recorded), 2 s down, started again: the sender, the
# dispatcher and the writers reconnect by themselves; ledgerd stays up and
# every event still arrives, a repeat with the same webhook-id.
printf 'slow:300\n' >"$R/alice.mode"
for i in $(seq 10); do post /v1/transfers "$TA" "$(transfer "$WALLET" "$SHOP" 1 "$RUN-pg-$i")" "$(newkey)"; done
expect "pg restart: ten transfers" 201
BEFORE=$(wc -l <"$R/alice.log")
wait_for 50 some_sent || true
restart_pg "$TEST_DIR" eu "$W/pg-restart.log" || fail "pg restart: eu's server back" "$(tail -n 3 "$W/pg-restart.log")"
printf 'ok\n' >"$R/alice.mode"
check "pg restart: ledgerd survived it" "$(tail -n 3 "$W/ledgerd-a2.log" | tr '\n' ' ')" kill -0 "$LPID"
wait_for 300 all_delivered alice "$TA" eu || true
FEED_A=$(feed "$TA" eu) || fail "pg restart: the feed answers again" "$(snippet)"
MISSING=$(comm -23 <(sort <<<"$FEED_A") <(delivered alice | sort) | head -3 | tr '\n' ' ')
for id in $MISSING; do # what became of them, for the failure's detail
    MISSING+="; $id: $(admin_sql "SELECT coalesce(string_agg(concat_ws(' ', d.state, d.attempts, d.last_error,
        d.lease_until, d.next_attempt_at, e.status), ', '), 'no delivery') FROM webhook_deliveries d
        JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.event_id = '$id'::uuid" 2>&1)"
done
check "pg restart: every event delivered at least once" \
    "missing: $MISSING; log: $(grep -E 'webhook|region_down' "$W/ledgerd-a2.log" | tail -n 4 | tr '\n' ' ')" \
    eq "$(comm -23 <(sort <<<"$FEED_A") <(delivered alice | sort) | wc -l)" 0
check "pg restart: every record's webhook-id is its event's id, every signature valid" "$(tail -c 300 "$R/alice.log")" \
    eq "$(jq -s 'all(.webhook_id == .body_id and .valid)' "$R/alice.log")" true

# ---------------------------------------------------------------- 5. continuous failure disables, enable restores

carol_disabled() {
    req GET "/v1/webhook_endpoints/$EPC" "$TC"
    [[ "$(j .status)" == disabled ]]
}
wait_for 100 carol_disabled || true
check "disable: carol's endpoint, failing for over 5 s, is disabled" "body: $(snippet)" \
    eq "$(j -c '[.status, (.disabled_at != null), (.failing_since != null)]')" '["disabled",true,true]'
printf 'ok\n' >"$R/carol.mode"
req POST "/v1/webhook_endpoints/$EPC/enable" "$TC"
expect "enable: carol's endpoint" 200
check "enable: active, its failure run forgotten" "body: $(snippet)" \
    eq "$(j -c '[.status, .disabled_at, .failing_since]')" '["active",null,null]'
carol_got_one() { [[ -n "$(delivered carol)" ]]; }
wait_for 50 carol_got_one || true
check "enable: the deliveries held back go out" "carol's log: $(tail -c 200 "$R/carol.log")" carol_got_one

req DELETE "/v1/webhook_endpoints/$EPB" "$TB"
expect "delete: bob's endpoint" 200
check "delete: the answer" "body: $(snippet)" eq "$(j -c '[.id, .deleted]')" "[\"$EPB\",true]"
req GET "/v1/webhook_endpoints/$EPB" "$TB"
expect "delete: then it is not found" 404 webhook_endpoint_not_found

# ---------------------------------------------------------------- 6. allow_private_targets = false

stop_pid "$LPID" 50 || true
SENT_BEFORE=$(wc -l <"$R/alice.log")
CONF="$W/b.conf"
cp -- "$GEOLEDGER_CONFIG" "$CONF"
LEDGERD_WEBHOOKS='allow_private_targets = false; retry_schedule_ms = [100]; poll_ms = 100;' \
    scripts/ledgerd-conf.sh "$CONF" "$TEST_DIR/dev.key" "$PORT"
if ! start_ledgerd "$W/ledgerd-b.log"; then
    fail "ssrf: start" "ledgerd did not answer: $(tail -n 3 "$W/ledgerd-b.log" | tr '\n' ' ')"
    finish
fi
for url in "http://127.0.0.1:$RPORT/hook/x" "http://localhost:$RPORT/" "http://[::1]/" "http://169.254.169.254/latest" \
    "http://10.1.2.3/" "http://192.168.1.1/" "http://172.16.0.1/" "http://100.64.0.1/" "http://0.0.0.0/" \
    "http://[fe80::1]/" "http://[fd00::1]/" "http://[::ffff:127.0.0.1]/" "http://224.0.0.1/" \
    "http://user:pw@example.com/"; do
    post /v1/webhook_endpoints "$TA" "{\"url\":\"$url\",\"region\":\"eu\"}" "$(newkey)"
    expect "ssrf: $url refused" 400 invalid_value
done
post /v1/transfers "$TA" "$(transfer "$WALLET" "$SHOP" 1 "$RUN-ssrf")" "$(newkey)"
refused_at_send() {
    req GET "/v1/webhook_endpoints/$EPA/deliveries?limit=1" "$TA"
    [[ "$(j -r '.data[0].attempts[0].error // empty')" == "target refused: "* ]]
}
wait_for 50 refused_at_send || true
check "ssrf: a delivery to a loopback target fails at sending, as an attempt" "body: $(snippet)" refused_at_send
check "ssrf: ... and nothing reached the receiver" "last: $(tail -n 1 "$R/alice.log")" \
    eq "$(wc -l <"$R/alice.log")" "$SENT_BEFORE"

finish
