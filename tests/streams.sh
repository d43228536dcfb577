#!/usr/bin/env bash
# shellcheck disable=SC2034 # SUMMARY_DONE and CLEANUP_PIDS are read by the exit trap of tests/lib.sh
# streams.sh — the Redis stream publisher and the outbox commands against a
# real ledgerd, the real PostgreSQL cluster tests/run.sh started and migrated,
# and a real redis-server this script starts (loopback, a free port from
# 6391, appendonly with appendfsync always, in its own temp dir):
#
#   GEOLEDGER_CONFIG=DIR/ledger.conf BUILD=build TEST_DIR=DIR tests/streams.sh
#
#  1. events made through the HTTP API (accounts, transfers, a hold posted, a
#     hold voided, a refund) are in region eu's stream once each, in order,
#     stream id = seq, the payload = the event of the outbox;
#  2. Redis killed (SIGKILL) during a burst and started again on the same
#     files: afterwards every event is there exactly once, no hole;
#     Redis refusing writes (maxmemory) during a burst: nothing until it
#     accepts them again, then everything, no hole;
#  3. ledgerd killed (kill -9) during a burst and started again: it resumes
#     from its stored position, nothing twice, no hole; region eu's
#     PostgreSQL stopped at once during a burst and started again: ledgerd
#     ready again, the stream complete and once, ledgerctl verify clean;
#  4. a small stream_maxlen bounds the stream (and a stream that lost its
#     entries is filled again from the outbox);
#  5. /metrics: the outbox and stream series, promtool-valid;
#  6. ledgerctl events tail (text, --json, --follow ended by SIGINT);
#  7. ledgerctl events prune keeps what a consumer has not passed, deletes
#     what every consumer passed, --dry-run deletes nothing, and is audited;
#  8. Redis killed while nothing is published: /metrics says so within 3 s,
#     and ledgerd stays ready;
#  9. a region's database unreachable: /metrics still answers at once, with
#     no outbox series for that region.
# One line per check; the last line is "N passed, N failed".
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
: "${GEOLEDGER_CONFIG:?set GEOLEDGER_CONFIG to the ledger.conf of a migrated cluster}"
: "${TEST_DIR:?set TEST_DIR to the cluster directory}"
# shellcheck source=lib.sh
source tests/lib.sh
# shellcheck source=http.sh
source tests/http.sh
require streams.sh curl jq openssl od redis-server redis-cli "$BUILD/bin/ledgerd" "$BUILD/bin/ledgerctl"

W=$(mktemp -d /tmp/geoledger-streams.XXXXXX)
exit_trap streams.sh
on_early_exit() { tail -n 5 "$W"/ledgerd-*.log 2>/dev/null || true; }
START=$SECONDS
RUN="s$$x$RANDOM"
L="$BUILD/bin/ledgerctl"

finish() {
    # Under BUILD=build/asan: the ledgerds stopped by SIGTERM reported no leak or error.
    local bad
    bad=$(grep -l -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$W"/ledgerd-*.log 2>/dev/null || true)
    check "sanitizers: nothing in the ledgerd logs" "in: $bad" test -z "$bad"
    echo "streams.sh: $((SECONDS - START)) s"
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
    exit
}

# ---------------------------------------------------------------- redis and ledgerd

RPID="" RPORT=""
for p in $(seq 6391 6399); do port_busy "$p" || { RPORT=$p && break; }; done
[[ -n "$RPORT" ]] || { fail "start" "no free port in 6391-6399 for redis-server" && finish; }
mkdir -p "$W/redis"
rcli() { redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }
start_redis() { # on the same dir each time: what it acknowledged was fsynced (appendfsync always)
    redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$W/redis" --appendonly yes --appendfsync always \
        --save '' --protected-mode yes >"$W/redis.log" 2>&1 &
    RPID=$!
    CLEANUP_PIDS+=("$RPID")
    for _ in $(seq 50); do
        [[ "$(rcli PING 2>/dev/null)" == PONG ]] && return 0
        sleep 0.1
    done
    return 1
}
start_redis || { fail "start" "redis-server did not answer on $RPORT: $(tail -n 3 "$W/redis.log")" && finish; }
ok "start: redis-server on 127.0.0.1:$RPORT (appendonly, appendfsync always)"

PORT=$(free_port $((18600 + $$ % 100))) || { fail "start" "no free port from 18600" && finish; }
BASE="https://localhost:$PORT"
CA="$W/ca/ca.crt"
PREFIX="geoledger:test:$RUN:"
KEY="${PREFIX}eu"
# write_conf MAXLEN PREFIX: ledgerd's config with a redis group.
write_conf() {
    CONF="$W/s.conf"
    cp -- "$GEOLEDGER_CONFIG" "$CONF"
    scripts/ledgerd-conf.sh "$CONF" "$TEST_DIR/dev.key" "$PORT"
    cat >>"$CONF" <<EOF
redis = { host = "127.0.0.1"; port = $RPORT; key_prefix = "$2"; stream_maxlen = $1;
          batch = 500; poll_ms = 50; timeout_ms = 1000; reconnect_max_ms = 400; };
EOF
}
write_conf 1000000 "$PREFIX"
start_ledgerd "$W/ledgerd-1.log" || { fail "start" "ledgerd: $(tail -n 5 "$W/ledgerd-1.log" | tr '\n' ' ')" && finish; }
ok "start: ledgerd on $PORT publishing to $KEY"

head_eu() { admin_sql "SELECT last_seq FROM event_head"; }
# stream_ids FROM TO: the seqs of the stream's entries in (FROM, TO], one a line.
stream_ids() { rcli XRANGE "$KEY" "$(($1 + 1))" "$2" | grep -E '^[0-9]+-0$' | sed 's/-0$//'; }
# caught_up SEQ [TENTHS]: waits until the stream's last entry is SEQ.
caught_up() {
    for _ in $(seq "${2:-100}"); do
        [[ "$(rcli XREVRANGE "$KEY" + - COUNT 1 2>/dev/null | head -n 1)" == "$1-0" ]] && return 0
        sleep 0.1
    done
    return 1
}
# exactly_once NAME FROM TO: the stream holds seqs FROM+1..TO, once each, in
# order, and each entry's event id is the outbox's id of that seq.
exactly_once() {
    local name=$1 from=$2 to=$3 got want
    got=$(stream_ids "$from" "$to" | tr '\n' ' ')
    want=$(seq $((from + 1)) "$to" | tr '\n' ' ')
    check "$name: the stream holds seq $((from + 1))..$to once each, in order" \
        "got $(wc -w <<<"$got") ids, want $((to - from)); first: ${got:0:80}" eq "$got" "$want"
    got=$(rcli --raw XRANGE "$KEY" "$((from + 1))" "$to" | awk '/^\{/' | jq -r '.id' | tr '\n' ' ')
    want=$(admin_sql "SELECT id FROM event_feed WHERE seq > $from AND seq <= $to ORDER BY seq" | tr '\n' ' ')
    check "$name: each entry is the outbox's event of its seq" "stream ${got:0:80} vs outbox ${want:0:80}" \
        eq "$got" "$want"
}

# ---------------------------------------------------------------- 1. the API's events, once each

ISSUER="issuer-$RUN" APP="app-$RUN"
T_ISSUER=$(token "$ISSUER" "accounts:read accounts:write accounts:issue transfers:read transfers:write")
T_APP=$(token "$APP")
H0=$(head_eu)
req POST /v1/accounts "$T_ISSUER" '{"currency":"EUR","region":"eu","kind":"funding"}'
expect "api: a funding account" 201
FUND=$(j .id)
req POST /v1/accounts "$T_APP" '{"currency":"EUR","region":"eu"}'
A=$(j .id)
req POST /v1/accounts "$T_APP" '{"currency":"EUR","region":"eu","kind":"merchant"}'
B=$(j .id)
post /v1/transfers "$T_ISSUER" "$(transfer "$FUND" "$A" 100000 "$RUN-top")" "$(newkey)"
expect "api: a top-up" 201
post /v1/transfers "$T_APP" "$(transfer "$A" "$B" 1000 "$RUN-h1" '{"pending":true}')" "$(newkey)"
HOLD1=$(j .id)
post "/v1/transfers/$HOLD1/post" "$T_APP" '{"amount":600}' "$(newkey)"
expect "api: a hold posted" 201
post /v1/transfers "$T_APP" "$(transfer "$A" "$B" 500 "$RUN-h2" '{"pending":true}')" "$(newkey)"
HOLD2=$(j .id)
post "/v1/transfers/$HOLD2/void" "$T_APP" '' "$(newkey)"
expect "api: a hold voided" 201
post /v1/transfers "$T_APP" "$(transfer "$A" "$B" 700 "$RUN-pay")" "$(newkey)"
PAY=$(j .id)
post "/v1/transfers/$PAY/reverse" "$T_APP" "{\"amount\":200,\"reference\":\"$RUN-refund\"}" "$(newkey)"
expect "api: a refund" 201
H1=$(head_eu)
check "api: the outbox has their events" "head $H0 -> $H1" test $((H1 - H0)) -ge 9
check "api: published within 10 s" "stream top: $(rcli XREVRANGE "$KEY" + - COUNT 1 | head -n 1), head $H1" caught_up "$H1"
exactly_once "api" "$H0" "$H1"
got=$(rcli --raw XRANGE "$KEY" "$((H0 + 1))" "$H1" | awk '/^\{/' | jq -r .type | sort | uniq -c | awk '{print $2}' | tr '\n' ' ')
check "api: the types of the run" "$got" eq "$got" \
    "account.created transfer.created transfer.pending transfer.posted transfer.reversed transfer.voided "
got=$(rcli --raw XRANGE "$KEY" "$H1" "$H1" | sed -n 3p)
check "api: an entry's type field is its event's type" "$got" eq "$got" "transfer.reversed"

# ---------------------------------------------------------------- bursts

# burst N TAG: N transfers of 1 cent A -> B, in batches of 50 (one event each).
burst() {
    local i items
    for ((i = 0; i < $1; i += 50)); do
        items=$(jq -cn --arg a "$A" --arg b "$B" --arg p "$RUN-$2-$i" \
            '[range(50) | {debit_account_id: $a, credit_account_id: $b, amount: 1, currency: "EUR", reference: "\($p)-\(.)"}]')
        curl -s --cacert "$CA" -o /dev/null --max-time 20 -H "Authorization: Bearer $T_APP" \
            -H "Idempotency-Key: $RUN-$2-$i" -H 'Content-Type: application/json' \
            --data-binary "{\"atomic\":false,\"transfers\":$items}" "$BASE/v1/transfers/batch" || true
    done
}

# ---------------------------------------------------------------- 2. Redis killed mid-burst

H2=$(head_eu)
burst 1000 r &
BURST=$!
sleep 0.4
kill -KILL "$RPID"
wait "$RPID" 2>/dev/null || true
sleep 0.7
start_redis || fail "redis restart" "$(tail -n 3 "$W/redis.log")"
wait "$BURST"
H3=$(head_eu)
check "redis restart: the burst committed (outbox +1000)" "head $H2 -> $H3" eq "$((H3 - H2))" 1000
check "redis restart: the publisher caught up" "top $(rcli XREVRANGE "$KEY" + - COUNT 1 | head -n 1), head $H3" \
    caught_up "$H3" 150
exactly_once "redis restart" "$H0" "$H3"
req GET /metrics
errs=$(grep -E '^geoledger_stream_publish_errors_total\{region="eu"\}' "$W/body" | awk '{print $2}')
check "redis restart: counted as publish errors" "errors '$errs'" test "${errs:-0}" -ge 1

# ---------------------------------------------------------------- 2b. Redis refusing writes mid-burst

# maxmemory 1 (noeviction): Redis answers every XADD "OOM command not allowed";
# the publisher must stop at the first refusal and lose nothing once it lifts.
rcli CONFIG SET maxmemory-policy noeviction >/dev/null
rcli CONFIG SET maxmemory 1 >/dev/null
burst 300 m
HM=$(head_eu)
sleep 0.5
top=$(rcli XREVRANGE "$KEY" + - COUNT 1 | head -n 1)
check "refusals: nothing published while Redis refuses writes" "top $top, head $HM" test "${top%-0}" -lt "$HM"
rcli CONFIG SET maxmemory 0 >/dev/null
check "refusals: caught up once Redis accepts writes again" "top $(rcli XREVRANGE "$KEY" + - COUNT 1 | head -n 1), head $HM" \
    caught_up "$HM" 100
exactly_once "refusals" "$H0" "$HM"
grep -q "OOM" "$W/ledgerd-1.log" && ok "refusals: the refusal is logged" || fail "refusals: the refusal is logged" "no OOM in the log"

# ---------------------------------------------------------------- 3. ledgerd killed mid-burst

# Killed while a burst commits; then its stored position is set back 300, as
# if it had died between Redis acknowledging those events and storing the
# position (the window a kill rarely hits): they must not come twice.
burst 1000 k &
BURST=$!
sleep 0.3
kill -KILL "$LPID"
wait "$LPID" 2>/dev/null || true
wait "$BURST" || true
H4=$(head_eu)
check "ledgerd kill: killed during the burst" "head $H3 -> $H4" test "$H4" -gt "$H3"
admin_sql "UPDATE event_consumers SET position = greatest(position - 300, 0) WHERE name = 'stream:redis'" >/dev/null
start_ledgerd "$W/ledgerd-2.log" || fail "ledgerd restart" "$(tail -n 5 "$W/ledgerd-2.log" | tr '\n' ' ')"
burst 100 k2
H5=$(head_eu)
check "ledgerd restart: caught up after kill -9" "top $(rcli XREVRANGE "$KEY" + - COUNT 1 | head -n 1), head $H5" \
    caught_up "$H5" 150
exactly_once "ledgerd restart" "$H0" "$H5"
pos=$(admin_sql "SELECT position FROM event_consumers WHERE name = 'stream:redis'")
check "ledgerd restart: the stored position is the head" "position $pos, head $H5" eq "$pos" "$H5"
req GET /metrics
n=$(grep -E '^geoledger_stream_skipped_total\{region="eu"\}' "$W/body" | awk '{print $2}')
check "ledgerd restart: the 300 events already in the stream were passed over, not added again" "skipped '$n'" \
    test "${n:-0}" -ge 300

# ---------------------------------------------------------------- 3b. PostgreSQL restarted mid-burst

# eu's server stopped at once (every connection cut, transactions in flight
# lost) while a burst commits and the publisher publishes, 2 s down, started
# again: the writers and the publisher reconnect by themselves, and what
# committed is in the stream once, in order, next to what came after.
H6=$(head_eu)
burst 1000 p &
BURST=$!
sleep 0.3
restart_pg "$TEST_DIR" eu "$W/pg-restart.log" || fail "pg restart: eu's server back" "$(tail -n 3 "$W/pg-restart.log")"
wait "$BURST" || true
ready=""
for _ in $(seq 100); do
    ready=$(curl -s --cacert "$CA" -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/readyz" || true)
    [[ "$ready" == 200 ]] && break
    sleep 0.1
done
check "pg restart: ledgerd ready again within 10 s" "readyz $ready" eq "$ready" 200
burst 100 p2
H7=$(head_eu)
check "pg restart: events committed across the restart" "head $H6 -> $H7" test "$H7" -ge "$((H6 + 100))"
check "pg restart: the publisher caught up" "top $(rcli XREVRANGE "$KEY" + - COUNT 1 | head -n 1), head $H7" \
    caught_up "$H7" 150
exactly_once "pg restart" "$H0" "$H7"
out=$("$L" verify --region eu 2>&1) && rc=0 || rc=$?
check "pg restart: ledgerctl verify: invariants (the outbox's numbering too) hold" "status $rc: $out" eq "$rc" 0
H5=$H7 # the sections below start from the head as it is now

# ---------------------------------------------------------------- 4. MAXLEN, and a lost stream filled again

stop_pid "$LPID" 50 || true
KEY_OLD=$KEY
PREFIX="geoledger:test:$RUN:small:"
KEY="${PREFIX}eu"
write_conf 100 "$PREFIX"
start_ledgerd "$W/ledgerd-3.log" || fail "ledgerd maxlen" "$(tail -n 5 "$W/ledgerd-3.log" | tr '\n' ' ')"
check "maxlen: a new (empty) stream is filled from the outbox up to the head" "top $(rcli XREVRANGE "$KEY" + - COUNT 1 | head -n 1)" \
    caught_up "$H5" 150
n=$(rcli XLEN "$KEY")
check "maxlen: stream_maxlen 100 bounds it (MAXLEN ~: within a node of 100)" "XLEN $n" test "$n" -ge 100 -a "$n" -le 200
exactly_once "maxlen" "$((H5 - 100))" "$H5"
KEY=$KEY_OLD

# ---------------------------------------------------------------- 5. /metrics

req GET /metrics
expect "metrics: 200" 200
for fam in "geoledger_outbox_head{region=\"eu\"} $H5" "geoledger_outbox_consumer_lag{region=\"eu\",consumer=\"stream:redis\"} 0" \
    "geoledger_stream_lag{region=\"eu\"} 0" "geoledger_stream_up{region=\"eu\"} 1" \
    "geoledger_outbox_consumer_position{region=\"eu\",consumer=\"stream:redis\"} $H5"; do
    check "metrics: $fam" "$(grep -E "^${fam%% *}" "$W/body" | head -n 3 | tr '\n' ' ')" grep -qxF "$fam" "$W/body"
done
check "metrics: a last publish time" "$(grep last_publish "$W/body" | tail -n 3 | tr '\n' ' ')" \
    grep -qE '^geoledger_stream_last_publish_timestamp_seconds\{region="eu"\} [1-9][0-9]{9}\.[0-9]{6}$' "$W/body"
if command -v promtool >/dev/null 2>&1; then
    check "metrics: promtool check metrics" "$(promtool check metrics <"$W/body" 2>&1 | head -c 300)" \
        promtool check metrics <"$W/body"
fi

# ---------------------------------------------------------------- 6. ledgerctl events tail

out=$("$L" events tail --region eu --after "$H0" --limit $((H1 - H0)))
check "tail: one line per event of the API run" "$(wc -l <<<"$out") lines" eq "$(wc -l <<<"$out")" $((H1 - H0))
check "tail: region, seq and type lead each line" "$(head -n 1 <<<"$out")" \
    grep -qE "^eu $((H0 + 1)) [0-9T:.-]+Z account.created account_id=" <<<"$out"
got=$("$L" --json events tail --region eu --after "$H0" --limit $((H1 - H0)) | jq -r .id | tr '\n' ' ')
want=$(admin_sql "SELECT id FROM event_feed WHERE seq > $H0 AND seq <= $H1 ORDER BY seq" | tr '\n' ' ')
check "tail --json: the events' JSON, in seq order" "${got:0:80}" eq "$got" "$want"
"$L" events tail --region eu --after "$H5" --follow >"$W/follow" 2>"$W/follow.err" &
FPID=$!
sleep 0.5
req POST /v1/accounts "$T_APP" '{"currency":"EUR","region":"eu"}'
for _ in $(seq 30); do [[ -s "$W/follow" ]] && break; sleep 0.1; done
kill -INT "$FPID"
rc=0
wait "$FPID" || rc=$?
check "tail --follow: prints the new event" "$(cat "$W/follow")" grep -q "^eu $((H5 + 1)) .* account.created" "$W/follow"
check "tail --follow: SIGINT ends it cleanly (status 0)" "status $rc: $(cat "$W/follow.err")" eq "$rc" 0

# ---------------------------------------------------------------- 7. ledgerctl events prune

# On region us, whose consumers are all this ledgerd's (the stream publisher,
# the webhook dispatcher) and one we hold behind.
us_sql() {
    "${PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql" -X -q -At -v ON_ERROR_STOP=1 "$(conf_value us admin_conninfo)" -c "$1"
}
req POST /v1/accounts "$T_ISSUER" '{"currency":"EUR","region":"us","kind":"funding"}'
UF=$(j .id)
req POST /v1/accounts "$T_APP" '{"currency":"EUR","region":"us"}'
UA=$(j .id)
items=$(jq -cn --arg a "$UF" --arg b "$UA" --arg p "$RUN-us" \
    '[range(20) | {debit_account_id: $a, credit_account_id: $b, amount: 1, currency: "EUR", reference: "\($p)-\(.)"}]')
post /v1/transfers/batch "$T_ISSUER" "{\"atomic\":false,\"transfers\":$items}" "$(newkey)"
expect "prune: 20 transfers in us" 200
UH=$(us_sql "SELECT last_seq FROM event_head")
# Every running consumer (the stream publisher, the webhook dispatcher) catches up first.
for _ in $(seq 100); do
    [[ "$(us_sql "SELECT count(*) FROM event_consumers WHERE position < $UH")" == 0 ]] && break
    sleep 0.1
done
BEHIND="test:behind-$RUN"
HOLDBACK=$((UH - 10))
us_sql "INSERT INTO event_consumers (name, position) VALUES ('$BEHIND', $HOLDBACK)" >/dev/null
B=$(us_sql "SELECT least(min(position), (SELECT last_seq FROM event_head)) FROM event_consumers")
check "prune: our consumer is the slowest in us" "bound $B, ours at $HOLDBACK" eq "$B" "$HOLDBACK"
# feed_count COND: events the feed shows (above the prune horizon) with COND on seq;
# rows_left SEQ: `events` rows (account events) at or below SEQ.
feed_count() { us_sql "SELECT count(*) FROM event_feed f, event_horizon h WHERE f.seq > h.pruned_through AND f.seq $1"; }
rows_left() { us_sql "SELECT count(*) FROM events WHERE seq <= $1"; }
gone=$(feed_count "<= $B")
above=$(feed_count "> $B")
check "prune: there is something to prune and something to keep" "$gone at or below, $above above $B" \
    test "$gone" -gt 0 -a "$above" -eq 10
out=$("$L" events prune --older-than 0 --region us --dry-run)
check "prune --dry-run: prunes nothing" "$out" eq "$(feed_count "<= $B")" "$gone"
check "prune --dry-run: says what it would prune" "$out" grep -q "would prune $gone events" <<<"$out"
out=$("$L" events prune --older-than 30 --region us)
check "prune --older-than 30: nothing that young" "$out" grep -q "pruned 0 events" <<<"$out"
out=$("$L" events prune --older-than 0 --region us)
echo "$out" | sed 's/^/    /'
n=$(feed_count "<= $B")
check "prune: pruned the $gone old events every consumer passed" "$n left; output: $out" eq "$n" 0
n=$(rows_left "$B")
check "prune: their events rows are deleted" "$n rows left" eq "$n" 0
check "prune: says how many and where the feed starts" "$out" grep -q "pruned $gone events .*starts after seq $B" <<<"$out"
n=$(feed_count "> $B")
check "prune: kept the 10 our consumer has not passed" "$n kept above $B" eq "$n" 10
check "prune: says which consumer held them back" "$out" grep -q "consumer $BEHIND at $HOLDBACK .*holds the rest back" <<<"$out"
got=$("$L" events tail --region us --after 0 --limit 1 | awk '{print $2}')
check "prune: the feed read from 0 starts after the horizon" "first seq $got" eq "$got" $((B + 1))
us_sql "UPDATE event_consumers SET position = $UH WHERE name = '$BEHIND'" >/dev/null
out=$("$L" --json events prune --older-than 0 --region us)
n=$(feed_count "<= $UH")
check "prune: once it passed them, they go too" "$n left: $out" eq "$n" 0
check "prune --json: pruned 10" "$out" eq "$(jq -r .pruned <<<"$out")" 10
us_sql "DELETE FROM event_consumers WHERE name = '$BEHIND'" >/dev/null
n=$(us_sql "SELECT count(*) FROM audit_log WHERE action = 'admin.events.prune' AND detail::jsonb->>'bound' IN ('$HOLDBACK', '$UH')")
check "prune: each batch audited (admin.events.prune)" "$n rows" test "$n" -ge 2
"$L" events prune --region us >/dev/null 2>&1 && rc=0 || rc=$?
check "prune: --older-than is required (usage, exit 2)" "status $rc" eq "$rc" 2

# ---------------------------------------------------------------- 8. Redis gone while idle

kill -KILL "$RPID"
wait "$RPID" 2>/dev/null || true
up=""
for _ in $(seq 30); do
    req GET /metrics
    up=$(grep -E '^geoledger_stream_up\{region="eu"\}' "$W/body" | awk '{print $2}')
    [[ "$up" == 0 ]] && break
    sleep 0.1
done
check "idle: a Redis gone is seen (geoledger_stream_up 0) with nothing to publish" "stream_up '$up'" eq "$up" 0
req GET /readyz
expect "idle: ledgerd stays ready without Redis" 200

# ---------------------------------------------------------------- 9. a region down: /metrics still answers at once

stop_pid "$LPID" 50 || true
DEAD=$(free_port 18800) || DEAD=18899
sed -i -E "s/port=5[0-9]{3}( dbname=geoledger user=geoledger_service)/port=$DEAD\1/; T; :a; n; ba" "$CONF" # only the first region's service conninfo
dead_region=$(grep -B3 -m1 "port=$DEAD" "$CONF" | grep -Eo 'name = "[a-z0-9_-]+"' | tail -n 1 | sed 's/.*"\(.*\)"/\1/')
start_ledgerd "$W/ledgerd-4.log" || fail "region down: ledgerd starts" "$(tail -n 5 "$W/ledgerd-4.log" | tr '\n' ' ')"
sleep 1.5
t0=$(date +%s%N)
req GET /metrics
ms=$((($(date +%s%N) - t0) / 1000000))
expect "region down: /metrics answers" 200
check "region down: within a second (${ms} ms)" "$ms ms" test "$ms" -lt 1000
check "region down: no outbox series for region $dead_region, the others there" \
    "$(grep -E '^geoledger_outbox_head' "$W/body" | tr '\n' ' ')" \
    bash -c "! grep -q 'geoledger_outbox_head{region=\"$dead_region\"}' '$W/body' && grep -q '^geoledger_outbox_head{' '$W/body'"

finish
