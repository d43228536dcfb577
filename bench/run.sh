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
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PORT=5450

DIR=$(mktemp -d /tmp/geoledger-bench.XXXXXX)
cleanup() { scripts/cluster.sh stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

export CLUSTER_EXTRA_SETTINGS=$'max_wal_size = 8GB\ncheckpoint_timeout = 30min\nwal_buffers = 64MB'
scripts/cluster.sh start "$DIR" bench:$PORT >/dev/null
scripts/cluster.sh conf "$DIR" "$DIR/ledger.conf" bench:$PORT:1 >/dev/null
"$BUILD/bin/ledgerctl" --config "$DIR/ledger.conf" migrate >/dev/null

echo "== pgbench tpcb-like: scale 10, 8 clients, ${SECONDS_PER_RUN} s"
"$PG_BIN/createdb" -h "$DIR/bench" -p $PORT -U postgres pgbench
"$PG_BIN/pgbench" -h "$DIR/bench" -p $PORT -U postgres -i -s 10 -q pgbench >/dev/null 2>&1
"$PG_BIN/psql" -h "$DIR/bench" -p $PORT -U postgres -qc CHECKPOINT pgbench
pgbench_out=$("$PG_BIN/pgbench" -h "$DIR/bench" -p $PORT -U postgres -c 8 -j 2 -T "$SECONDS_PER_RUN" pgbench 2>&1)
pgbench_tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$pgbench_out" | head -1)
[[ -n "$pgbench_tps" ]] || { echo "$pgbench_out"; echo "bench: pgbench failed" >&2; exit 1; }
echo "pgbench_tps=$pgbench_tps"

declare -A tps
for scenario in uniform hot; do
    echo "== engine $scenario: $ACCOUNTS accounts, batches of 8189, ${SECONDS_PER_RUN} s"
    "$PG_BIN/psql" -h "$DIR/bench" -p $PORT -U postgres -qc CHECKPOINT geoledger
    line=$("$BUILD/bin/ledger-bench" --config "$DIR/ledger.conf" --region bench --scenario "$scenario" \
        --accounts "$ACCOUNTS" --seconds "$SECONDS_PER_RUN")
    echo "$line"
    tps[$scenario]=$(sed -n 's/.*transfers_per_s=\([0-9]*\).*/\1/p' <<<"$line")
done
"$BUILD/bin/ledgerctl" --config "$DIR/ledger.conf" verify >/dev/null || { echo "bench: verify failed" >&2; exit 1; }

echo
printf '%-10s %18s %14s %8s\n' scenario transfers_per_s pgbench_tps ratio
for scenario in uniform hot; do
    printf '%-10s %18s %14.0f %8.2f\n' "$scenario" "${tps[$scenario]}" "$pgbench_tps" \
        "$(echo "${tps[$scenario]} / $pgbench_tps" | bc -l)"
done
echo
for scenario in uniform hot; do
    printf 'bench: %s transfers_per_s=%s pgbench_tps=%.0f ratio=%.2f\n' "$scenario" "${tps[$scenario]}" \
        "$pgbench_tps" "$(echo "${tps[$scenario]} / $pgbench_tps" | bc -l)"
done
