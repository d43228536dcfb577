#!/usr/bin/env bash
# make bench: pgbench tpcb-like and the engine on the same fresh server, same run.
#
# The server is a new single-region cluster with default durability (fsync and
# synchronous_commit on). Checkpoints are spaced out (max_wal_size, checkpoint_timeout)
# for both workloads alike, so neither run is measured mid-checkpoint by chance.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
SECONDS_PER_RUN=${BENCH_SECONDS:-20}
ACCOUNTS=${BENCH_ACCOUNTS:-100000}
WEBHOOK_EVENTS=${BENCH_WEBHOOK_EVENTS:-500} # transfers whose events the webhook scenario delivers
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PORT=${BENCH_PG_PORT:-5450}

DIR=$(mktemp -d /tmp/geoledger-bench.XXXXXX)
cleanup() { scripts/cluster.sh stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

export CLUSTER_EXTRA_SETTINGS=$'max_wal_size = 8GB\ncheckpoint_timeout = 30min\nwal_buffers = 64MB'
scripts/cluster.sh start "$DIR" bench:$PORT >/dev/null
scripts/cluster.sh conf "$DIR" "$DIR/ledger.conf" bench:$PORT:1 >/dev/null
"$BUILD/bin/ledgerctl" --config "$DIR/ledger.conf" migrate >/dev/null
# psql, createdb and pgbench reach the server as ledger.conf's admin_conninfo does:
# TLS verified against the cluster's CA, the password from its passfile.
export PGHOST=localhost PGHOSTADDR=127.0.0.1 PGPORT=$PORT PGUSER=postgres PGSSLMODE=verify-full \
    PGSSLROOTCERT=$DIR/ca/ca.crt PGPASSFILE=$DIR/secrets/bench.pgpass PGCHANNELBINDING=require

# BENCH_ONLY=recon runs the reconciliation scenario alone (it needs no pgbench);
# BENCH_ONLY=events the outbox's cost alone (engine and http, with and without events).
only=${BENCH_ONLY:-}
if [[ "$only" != recon ]]; then
declare -A tps
if [[ "$only" != events ]]; then
echo "== pgbench tpcb-like: scale 10, 8 clients, ${SECONDS_PER_RUN} s"
"$PG_BIN/createdb" pgbench
"$PG_BIN/pgbench" -i -s 10 -q pgbench >/dev/null 2>&1
"$PG_BIN/psql" -qc CHECKPOINT pgbench
pgbench_out=$("$PG_BIN/pgbench" -c 8 -j 2 -T "$SECONDS_PER_RUN" pgbench 2>&1)
pgbench_tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$pgbench_out" | head -1)
[[ -n "$pgbench_tps" ]] || { echo "$pgbench_out"; echo "bench: pgbench failed" >&2; exit 1; }
echo "pgbench_tps=$pgbench_tps"

for scenario in uniform hot; do
    echo "== engine $scenario: $ACCOUNTS accounts, batches of 8189, ${SECONDS_PER_RUN} s"
    "$PG_BIN/psql" -qc CHECKPOINT geoledger
    line=$("$BUILD/bin/ledger-bench" --config "$DIR/ledger.conf" --region bench --scenario "$scenario" \
        --accounts "$ACCOUNTS" --seconds "$SECONDS_PER_RUN")
    echo "$line"
    tps[$scenario]=$(sed -n 's/.*transfers_per_s=\([0-9]*\).*/\1/p' <<<"$line")
done
fi
# The outbox's cost: the uniform run without events (ledger-bench --no-events) and
# with them, in the order off, on, on, off (the tables grow from run to run and
# a checkpoint may fall in any of them: this order cancels a steady drift, which
# plain alternation gives to the side that runs second); the means are compared.
echo "== engine uniform without and with events, off/on/on/off (the outbox's cost)"
tps[events_off]=0
tps[events_on]=0
for run in off on on off; do
    "$PG_BIN/psql" -qc CHECKPOINT geoledger
    line=$("$BUILD/bin/ledger-bench" --config "$DIR/ledger.conf" --region bench --scenario uniform \
        --accounts "$ACCOUNTS" --seconds "$SECONDS_PER_RUN" $([[ $run == off ]] && echo --no-events))
    echo "events $run: $line"
    tps[events_$run]=$((tps[events_$run] + $(sed -n 's/.*transfers_per_s=\([0-9]*\).*/\1/p' <<<"$line") / 2))
done
# HTTPS as deployed (keep-alive connections: the handshake is paid once per connection);
# BENCH_PLAIN_HTTP=1 measures the same over plain HTTP, for comparison.
if [[ "${BENCH_PLAIN_HTTP:-0}" == 1 ]]; then scheme=http; else scheme=https; fi
echo "== http: ledgerd ($scheme), wrk 64 connections, single transfers with unique Idempotency-Keys, ${SECONDS_PER_RUN} s"
API_PORT=$((18500 + $$ % 400))
# Two configurations: as deployed, and without the outbox (bench_without_events), to
# measure what the events cost over HTTP; each has its own ledgerd group.
cp "$DIR/ledger.conf" "$DIR/ledger-noevents.conf"
LEDGERD_PLAIN_HTTP=${BENCH_PLAIN_HTTP:-0} LEDGERD_RATE_PER_S=0 LEDGERD_LOG_LEVEL=warn \
    scripts/ledgerd-conf.sh "$DIR/ledger.conf" "$DIR/bench.key" "$API_PORT"
LEDGERD_PLAIN_HTTP=${BENCH_PLAIN_HTTP:-0} LEDGERD_RATE_PER_S=0 LEDGERD_LOG_LEVEL=warn LEDGERD_BENCH_WITHOUT_EVENTS=1 \
    scripts/ledgerd-conf.sh "$DIR/ledger-noevents.conf" "$DIR/bench.key" "$API_PORT"
base="$scheme://localhost:$API_PORT"
"$BUILD/bin/ledger-bench" --config "$DIR/ledger.conf" --region bench --scenario uniform --accounts 10000 \
    --seconds 0 --accounts-out "$DIR/accounts.txt" 2>/dev/null
# accounts:issue: ledger-bench's accounts carry no floor flag (they may go below zero)
token=$("$BUILD/bin/ledgerctl" --config "$DIR/ledger.conf" token --sub bench --ttl 3600 \
    --scope "accounts:read accounts:write accounts:issue transfers:read transfers:write")
ledgerd_pid=""
trap 'kill $ledgerd_pid 2>/dev/null || true; cleanup' EXIT INT TERM
# http_run CONF: ledgerd with CONF under wrk; sets http_rps and p99 (ms).
http_run() {
    "$PG_BIN/psql" -qc CHECKPOINT geoledger # as before each engine run
    "$BUILD/bin/ledgerd" --config "$1" 2>"$DIR/ledgerd.log" &
    ledgerd_pid=$!
    for _ in $(seq 50); do curl -fs --cacert "$DIR/ca/ca.crt" "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    wrk_out=$(TOKEN=$token ACCOUNTS=$DIR/accounts.txt wrk -t2 -c64 -d"${SECONDS_PER_RUN}s" --latency \
        -s bench/http.lua "$base" 2>&1)
    kill -TERM $ledgerd_pid; wait $ledgerd_pid || true
    echo "$wrk_out" | grep -E "Requests/sec|99%|Non-2xx|http_non_2xx|Socket errors" || true
    http_rps=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$wrk_out")
    p99=$(awk '$1 == "99%" {v=$2; if (v ~ /ms$/) {sub(/ms$/, "", v); print v} else if (v ~ /us$/) {sub(/us$/, "", v); print v/1000} else if (v ~ /s$/) {sub(/s$/, "", v); print v*1000}}' <<<"$wrk_out")
    non2xx=$(sed -n 's/^http_non_2xx=\([0-9]*\)/\1/p' <<<"$wrk_out")
    [[ -n "$http_rps" && -n "$p99" ]] || { echo "$wrk_out"; echo "bench: wrk failed" >&2; exit 1; }
    [[ "${non2xx:-0}" == 0 ]] || echo "bench: WARNING: $non2xx non-2xx responses (see $DIR/ledgerd.log)"
}
# Without and with events, off/on/on/off like the engine runs; the means are
# compared (http_rps and p99 are those of the last run with events, as deployed).
http_sum_off=0 http_sum_on=0
for run in off on on off; do
    if [[ $run == off ]]; then
        echo "-- without events (bench_without_events)"
        http_run "$DIR/ledger-noevents.conf"
        http_sum_off=$((http_sum_off + http_rps))
    else
        echo "-- with events (as deployed)"
        http_run "$DIR/ledger.conf"
        http_sum_on=$((http_sum_on + http_rps))
        deployed_rps=$http_rps deployed_p99=$p99
    fi
done
http_rps=$deployed_rps p99=$deployed_p99
http_rps_noevents=$((http_sum_off / 2))
http_rps_events=$((http_sum_on / 2))

if [[ "$only" != events ]]; then
# ---- webhooks: deliveries per second to a local receiver (tests/tools/webhook_receiver.py,
# which verifies every signature), for one endpoint and for four (each endpoint's
# deliveries go one at a time, in order; endpoints are served side by side).
echo "== webhooks: $WEBHOOK_EVENTS transfers' events to 1, then to 4 endpoints (each signature verified)"
R="$DIR/receiver"
mkdir -p "$R"
RPORT=$((API_PORT + 1))
python3 tests/tools/webhook_receiver.py "$RPORT" "$R" >"$DIR/receiver.log" 2>&1 &
receiver_pid=$!
trap 'kill $ledgerd_pid $receiver_pid 2>/dev/null || true; cleanup' EXIT INT TERM
"$BUILD/bin/ledgerd" --config "$DIR/ledger.conf" 2>"$DIR/ledgerd-webhooks.log" &
ledgerd_pid=$!
for _ in $(seq 50); do curl -fs --cacert "$DIR/ca/ca.crt" "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
admin=$("$BUILD/bin/ledgerctl" --config "$DIR/ledger.conf" token --sub bench-admin --ttl 3600 \
    --scope "admin webhooks:write events:read")
# webhook_rate N: registers N endpoints (admin's: every event), posts WEBHOOK_EVENTS transfers in
# one batch, and waits until each endpoint's receiver verified them all; sets hook_rate (deliveries/s).
webhook_rate() {
    local n=$1 names=() i
    for ((i = 0; i < n; i++)); do
        names+=("b$n-$i")
        curl -fs --cacert "$DIR/ca/ca.crt" -H "Authorization: Bearer $admin" -H "Idempotency-Key: hook-$n-$i-$$" \
            -d "{\"url\":\"http://127.0.0.1:$RPORT/hook/b$n-$i\",\"region\":\"bench\",\"event_types\":[\"transfer.created\"]}" \
            "$base/v1/webhook_endpoints" | jq -r .secret >"$R/b$n-$i.secret"
    done
    local items
    items=$(head -n $((WEBHOOK_EVENTS + 1)) "$DIR/accounts.txt" | jq -Rsc --arg run "hook$n-$$" \
        'split("\n") | map(select(length > 0)) | . as $a | [range(0; length - 1) | {debit_account_id: $a[.],
         credit_account_id: $a[. + 1], amount: 1, currency: "EUR", reference: ($run + "-" + (. | tostring))}]')
    local start end want=$((WEBHOOK_EVENTS * n)) got=0
    # The dispatcher first passes over the outbox the scenarios before wrote (millions of
    # events, none for these endpoints): the clock starts once it has caught up.
    for _ in $(seq 3000); do
        [[ "$("$PG_BIN/psql" -qAt -c "SELECT coalesce((SELECT position FROM event_consumers WHERE name = 'webhooks'), 0)
                                         >= last_seq FROM event_head" geoledger)" == t ]] && break
        sleep 0.1
    done
    start=$(date +%s%N)
    curl -fs --cacert "$DIR/ca/ca.crt" -H "Authorization: Bearer $token" -H "Idempotency-Key: hookbatch-$n-$$" \
        -d "{\"atomic\":true,\"transfers\":$items}" "$base/v1/transfers/batch" >/dev/null ||
        { echo "bench: the webhook scenario's batch failed" >&2; exit 1; }
    for _ in $(seq 1200); do
        got=0
        for name in "${names[@]}"; do
            [[ -s "$R/$name.log" ]] && got=$((got + $(jq -r 'select(.valid and .status == 200) | .webhook_id' "$R/$name.log" | sort -u | wc -l)))
        done
        ((got >= want)) && break
        sleep 0.1
    done
    end=$(date +%s%N)
    ((got >= want)) || { echo "bench: $got of $want webhook deliveries within 120 s" >&2; exit 1; }
    hook_rate=$(echo "$want / (($end - $start) / 1000000000)" | bc -l)
    printf '%d endpoint(s): %d deliveries in %.1f s, %.0f/s\n' "$n" "$want" "$(echo "($end - $start) / 1000000000" | bc -l)" "$hook_rate"
}
webhook_rate 1
hook_rate_1=$hook_rate
webhook_rate 4
hook_rate_4=$hook_rate
kill -TERM $ledgerd_pid $receiver_pid; wait $ledgerd_pid $receiver_pid 2>/dev/null || true

fi
"$BUILD/bin/ledgerctl" --config "$DIR/ledger.conf" verify >/dev/null || { echo "bench: verify failed" >&2; exit 1; }
fi

# ---- recon: a settlement file against the ledger, vs COPY + FULL OUTER JOIN in PostgreSQL alone
# It runs in a database of its own on the same server: both it and the baseline
# scan the transfers table, so the scenarios before it (1-2M transfers of other
# accounts) would otherwise change its figures. The README gives both.
if [[ "$only" != events ]]; then
RECON_LINES=${BENCH_RECON_LINES:-1000000}
echo "== recon: $RECON_LINES settlement lines against $RECON_LINES ledger transfers, seeded breaks"
# The scenarios before left autovacuum work behind in geoledger: done now, so
# that it does not run during the timed recon or its baseline.
[[ "$only" == recon ]] || "$PG_BIN/psql" -qc VACUUM geoledger
"$PG_BIN/createdb" geoledger_recon
sed 's/dbname=geoledger /dbname=geoledger_recon /' "$DIR/ledger.conf" >"$DIR/recon.conf"
grep -q 'dbname=geoledger_recon ' "$DIR/recon.conf" || { echo "bench: cannot point recon.conf at geoledger_recon" >&2; exit 1; }
"$BUILD/bin/ledgerctl" --config "$DIR/recon.conf" migrate >/dev/null
(umask 077 && printf 'bench %s\n' "$(openssl rand -hex 32)" >"$DIR/pan.keys" &&
    printf 'bench %s\n' "$(openssl rand -hex 32)" >"$DIR/seal.keys")
mkdir -p "$DIR/reports"
seed() { # LINES FILE -> the clearing account id
    "$BUILD/bin/recon-seed" --config "$DIR/recon.conf" --region bench --transfers "$1" --file "$2" |
        sed -n 's/.*clearing_account=\([^ ]*\).*/\1/p'
}
recon_run() { # LINES FILE ACCOUNT: prints "elapsed_s rss_kb" and the summary
    /usr/bin/time -f "%e %M" -o "$DIR/time.out" "$BUILD/bin/ledgerctl" --config "$DIR/recon.conf" --json recon run \
        --region bench --source generic --file "$2" --account "$3" --from "$(date -u +%Y-%m-%d)" \
        --to "$(date -u -d tomorrow +%Y-%m-%d)" --pan-keys "$DIR/pan.keys" --seal-keys "$DIR/seal.keys" \
        --out "$DIR/reports" >"$DIR/recon.json" || [[ $? == 4 ]] # exit 4: the seeded breaks
}
small_account=$(seed $((RECON_LINES / 4)) "$DIR/small.csv")
big_account=$(seed "$RECON_LINES" "$DIR/big.csv")
"$PG_BIN/psql" -qc "VACUUM ANALYZE transfers" -c CHECKPOINT geoledger_recon
recon_run $((RECON_LINES / 4)) "$DIR/small.csv" "$small_account"
# (GNU time's last line; a line before it notes the exit status 4)
small_rss_kb=$(tail -n 1 "$DIR/time.out" | awk '{print $2}')
# The baseline: what a team without a recon tool would run: load the file into a
# table and let PostgreSQL join it to the clearing account's transfers.
cat >"$DIR/baseline.sql" <<SQL
\\set ON_ERROR_STOP 1
CREATE TABLE settlement (reference text, psp_id text, type text, currency text, gross numeric, fee numeric,
                         net numeric, created_at timestamptz, settled_at timestamptz);
\\copy settlement FROM '$DIR/big.csv' CSV HEADER
SELECT count(*) AS breaks FROM settlement s FULL OUTER JOIN
       (SELECT reference, amount, currency FROM transfers
         WHERE debit_account_id = '$big_account' OR credit_account_id = '$big_account') t
       ON s.reference = t.reference
 WHERE s.reference IS NULL OR t.reference IS NULL OR s.gross * 100 <> t.amount OR s.currency <> t.currency;
DROP TABLE settlement;
SQL
baseline_run() { # prints the elapsed seconds
    local t0 t1
    t0=$(date +%s%N)
    "$PG_BIN/psql" -q -f "$DIR/baseline.sql" geoledger_recon >/dev/null
    t1=$(date +%s%N)
    echo "($t1 - $t0) / 1000000000" | bc -l
}
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
# Three rounds, each the tool then the baseline (alternated, so a slow spell of
# this shared VM hits both); each side's median counts.
recon_times=() baseline_times=() recon_rss_kb=0
for round in 1 2 3; do
    recon_run "$RECON_LINES" "$DIR/big.csv" "$big_account"
    read -r s kb < <(tail -n 1 "$DIR/time.out")
    recon_times+=("$s")
    ((kb > recon_rss_kb)) && recon_rss_kb=$kb
    ((round == 1)) && jq -c "{lines, ledger_transfers, matched, breaks, by_class, timings}" "$DIR/recon.json"
    baseline_times+=("$(baseline_run)")
done
recon_s=$(median3 "${recon_times[@]}")
baseline_s=$(median3 "${baseline_times[@]}")
recon_lps=$(echo "$RECON_LINES / $recon_s" | bc -l)
baseline_lps=$(echo "$RECON_LINES / $baseline_s" | bc -l)
printf 'recon %s s, baseline %s s (median %.2f vs %.2f); peak RSS %d MB (%d lines: %d MB)\n' \
    "${recon_times[*]}" "$(printf '%.2f ' "${baseline_times[@]}")" "$recon_s" "$baseline_s" \
    $((recon_rss_kb / 1024)) $((RECON_LINES / 4)) $((small_rss_kb / 1024))

fi

if [[ -z "$only" ]]; then
echo
printf '%-10s %18s %14s %8s\n' scenario transfers_per_s pgbench_tps ratio
for scenario in uniform hot; do
    printf '%-10s %18s %14.0f %8.2f\n' "$scenario" "${tps[$scenario]}" "$pgbench_tps" \
        "$(echo "${tps[$scenario]} / $pgbench_tps" | bc -l)"
done
echo
printf '%-10s %18s %14.0f %8.2f   p99_ms=%s\n' http "$http_rps" "$pgbench_tps" "$(echo "$http_rps / $pgbench_tps" | bc -l)" "$p99"
echo
for scenario in uniform hot; do
    printf 'bench: %s transfers_per_s=%s pgbench_tps=%.0f ratio=%.2f\n' "$scenario" "${tps[$scenario]}" \
        "$pgbench_tps" "$(echo "${tps[$scenario]} / $pgbench_tps" | bc -l)"
done
printf 'bench: http transfers_per_s=%s p99_ms=%.2f pgbench_tps=%.0f ratio=%.2f\n' "$http_rps" "$p99" "$pgbench_tps" \
    "$(echo "$http_rps / $pgbench_tps" | bc -l)"
fi
if [[ "$only" != recon ]]; then
printf 'bench: events engine_uniform_with=%s engine_uniform_without=%s cost=%.1f%%\n' "${tps[events_on]}" \
    "${tps[events_off]}" "$(echo "(1 - ${tps[events_on]} / ${tps[events_off]}) * 100" | bc -l)"
printf 'bench: events http_with=%s http_without=%s cost=%.1f%%\n' "$http_rps_events" "$http_rps_noevents" \
    "$(echo "(1 - $http_rps_events / $http_rps_noevents) * 100" | bc -l)"
[[ "$only" == events ]] || printf 'bench: webhooks deliveries_per_s_1_endpoint=%.0f deliveries_per_s_4_endpoints=%.0f\n' "$hook_rate_1" "$hook_rate_4"
fi
[[ "$only" == events ]] || printf 'bench: recon lines_per_s=%.0f baseline_lines_per_s=%.0f ratio=%.2f peak_rss_mb=%d\n' "$recon_lps" \
    "$baseline_lps" "$(echo "$recon_lps / $baseline_lps" | bc -l)" $((recon_rss_kb / 1024))
