#!/usr/bin/env bash
# stress.sh — concurrency, hot-account and crash tests of the engine against a
# running, migrated 3-region cluster (regions eu, us, sg). Called by tests/run.sh.
#
# Environment:
#   GEOLEDGER_CONFIG  ledger.conf of the cluster (required)
#   BUILD             build directory holding tests/stress and bin/ledgerctl (required)
#   TEST_DIR          the cluster directory, for scripts/cluster.sh start (required)
#   STRESS_SCALE      multiplies the amount of work (default 1; e.g. 0.3 under ASan)
#   STRESS_SEED       base seed (default 42)
#   STRESS_CRASH_MS   when the crash step kills its writer (default 1000 ms)
#   PG_BINDIR         PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   LEDGERCTL         ledgerctl to verify with (default $BUILD/bin/ledgerctl)
#
# Steps:
#   a. concurrency: mixed workload, 4 processes on eu (and a high-contention run), then verify
#   b. hot account: 4 processes crediting one account on us, then verify
#   c. crash: a uniform writer with 2000-command batches on sg is SIGKILLed mid-batch;
#      then the sg postmaster is SIGKILLed mid-batch and the cluster restarted
#      (crash recovery); committed batches must be whole and durable, the killed
#      ones must leave nothing; verify after each.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(dirname -- "$SCRIPT_DIR")

: "${GEOLEDGER_CONFIG:?set GEOLEDGER_CONFIG to the ledger.conf of the cluster}"
: "${BUILD:?set BUILD to the build directory (e.g. build or build/asan)}"
: "${TEST_DIR:?set TEST_DIR to the cluster directory}"
SCALE=${STRESS_SCALE:-1}
SEED=${STRESS_SEED:-42}
CRASH_MS=${STRESS_CRASH_MS:-1000}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PSQL=$PG_BINDIR/psql
export GEOLEDGER_CONFIG

[[ "$BUILD" == /* ]] || BUILD=$REPO_DIR/$BUILD
STRESS=$BUILD/tests/stress
LEDGERCTL=${LEDGERCTL:-$BUILD/bin/ledgerctl}
CLUSTER=$REPO_DIR/scripts/cluster.sh
CRASH_BATCH=2000        # commands per batch of the crash writers
CRASH_ACCOUNTS=4000     # spread the crash writers' entries over many accounts
STEP_TIMEOUT=120        # seconds before a hung stress run is killed
VERIFY_TIMEOUT=30       # seconds before a hung ledgerctl verify is killed (a healthy one takes ~1-2 s)
VERIFY_APP=stress-verify-$$ # application_name of verify's sessions, to end them on timeout

[[ "$SCALE" =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v s="$SCALE" 'BEGIN { exit !(s > 0) }' ||
    { echo "stress.sh: STRESS_SCALE must be a positive number, got '$SCALE'" >&2; exit 2; }
[[ "$SEED" =~ ^[0-9]+$ ]] || { echo "stress.sh: STRESS_SEED must be an integer" >&2; exit 2; }
[[ "$CRASH_MS" =~ ^[0-9]+$ ]] || { echo "stress.sh: STRESS_CRASH_MS must be an integer" >&2; exit 2; }
for bin in "$STRESS" "$LEDGERCTL" "$PSQL"; do
    [[ -x "$bin" ]] || { echo "stress.sh: $bin not found (make $bin)" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/geoledger-stress.XXXXXX")
BG_PID=""
cleanup() {
    if [[ -n "$BG_PID" ]] && kill -0 "$BG_PID" 2>/dev/null; then kill -KILL -- "-$BG_PID" 2>/dev/null || true; fi
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # run the EXIT trap on signals too

PASSED=0
FAILED=0
step() { printf '\n=== [%3ds] %s\n' "$SECONDS" "$*"; }
pass() { printf 'ok    %s\n' "$*"; PASSED=$((PASSED + 1)); }
fail() { printf 'FAIL  %s\n' "$*"; FAILED=$((FAILED + 1)); }
check() { # check DESCRIPTION CONDITION-COMMAND...
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# scale N: N * STRESS_SCALE, rounded, at least 1.
scale() { awk -v n="$1" -v s="$SCALE" 'BEGIN { v = int(n * s + 0.5); print (v < 1 ? 1 : v) }'; }

# ------------------------------------------------------------ cluster access

# admin_conninfo REGION: the region's admin_conninfo from ledger.conf.
admin_conninfo() {
    awk -v r="$1" '
        /name[ \t]*=[ \t]*"/ {
            s = $0; sub(/.*name[ \t]*=[ \t]*"/, "", s); sub(/".*/, "", s); cur = s
        }
        cur == r && /admin_conninfo[ \t]*=[ \t]*"/ {
            s = $0; sub(/.*admin_conninfo[ \t]*=[ \t]*"/, "", s); sub(/".*/, "", s); print s; exit
        }' "$GEOLEDGER_CONFIG"
}

region_port() { admin_conninfo "$1" | sed -n 's/.*port=\([0-9]*\).*/\1/p'; }

# q REGION SQL: one value from the region's partition, as the admin role
# ("error" when the query fails, so that the check using it fails).
q() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$(admin_conninfo "$1")" -c "$2" || echo error; }

# num VALUE: VALUE if it is an integer, else -1 (keeps arithmetic safe under set -u).
num() { if [[ "$1" =~ ^-?[0-9]+$ ]]; then echo "$1"; else echo -1; fi; }

for r in eu us sg; do
    [[ -n "$(region_port "$r")" ]] || { echo "stress.sh: region $r has no admin_conninfo port in $GEOLEDGER_CONFIG" >&2; exit 2; }
done
REGION_PORTS=(eu:"$(region_port eu)" us:"$(region_port us)" sg:"$(region_port sg)")

# ------------------------------------------------------------ running stress

# bounded SECS LOG CMD...: runs CMD in its own process group with output to LOG;
# kills the group after SECS seconds. Returns CMD's exit status.
bounded() {
    local secs=$1 log=$2 pid ticks=0 rc=0
    shift 2
    setsid "$@" >"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if ((ticks >= secs * 10)); then
            echo "    timeout after ${secs}s, killing: $*" >>"$log"
            kill -KILL -- "-$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        ticks=$((ticks + 1))
    done
    { wait "$pid"; } 2>/dev/null || rc=$? # no "Killed" noise from bash
    return "$rc"
}

# A killed client leaves its backend running the query (and holding the shared
# memory a restart after a crash needs), so end verify's sessions explicitly.
end_verify_sessions() {
    local r
    for r in eu us sg; do
        q "$r" "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE application_name = '$VERIFY_APP'" >/dev/null 2>&1 || true
    done
}

verify() { # verify [REGION]
    local log=$WORK/verify.log rc=0 t0=$SECONDS
    PGAPPNAME=$VERIFY_APP bounded "$VERIFY_TIMEOUT" "$log" "$LEDGERCTL" verify ${1:+--region "$1"} || rc=$?
    if ((rc == 0)); then
        pass "ledgerctl verify${1:+ --region $1} ($((SECONDS - t0)) s)"
    else
        fail "ledgerctl verify${1:+ --region $1} (exit $rc after $((SECONDS - t0)) s)"
        sed 's/^/    /' "$log" | head -40
        end_verify_sessions
    fi
}

# run_stress NAME ARGS...: runs the tool with a report in $WORK/NAME.report; prints
# its summary line and, on failure, its log. Sets RC.
run_stress() {
    local name=$1
    shift
    local log=$WORK/$name.log
    RC=0
    bounded "$STEP_TIMEOUT" "$log" "$STRESS" --config "$GEOLEDGER_CONFIG" --report "$WORK/$name.report" "$@" || RC=$?
    grep '^stress: mode=' "$log" | sed 's/^/    /' || true
    if ((RC != 0)); then
        echo "    stress exited $RC; log:"
        grep -v '^stress: mode=' "$log" | head -40 | sed 's/^/    /'
    fi
}

# report NAME KEY: a value from a stress report.
report() { num "$(sed -n "s/^$2=//p" "$WORK/$1.report" 2>/dev/null | head -1)"; }

# ------------------------------------------------------------ checks with psql

# Global per-partition checks: every transfer has exactly its two entries, and
# every account's version equals its number of entries.
check_partition() {
    local r=$1 v
    # entries has no index on transfer_id and statistics lag right after a run:
    # keep the planner from a nested loop over entries.
    v=$(PGOPTIONS="-c enable_nestloop=off" q "$r" "SELECT count(*) FROM (SELECT t.id FROM transfers t
                  LEFT JOIN entries e ON e.transfer_id = t.id GROUP BY t.id
                  HAVING count(e.transfer_id) <> 2 OR count(*) FILTER (WHERE
                    (e.side = 'D' AND e.account_id = t.debit_account_id)
                    OR (e.side = 'C' AND e.account_id = t.credit_account_id)) <> 2) bad")
    check "$r: every transfer has exactly two entries ($v without)" test "$v" = 0
    local t e
    t=$(num "$(q "$r" "SELECT count(*) FROM transfers")")
    e=$(num "$(q "$r" "SELECT count(*) FROM entries")")
    check "$r: entries ($e) = 2 * transfers ($t)" test "$t" -ge 0 -a "$e" -eq $((2 * t))
    v=$(q "$r" "SELECT count(*) FROM accounts a WHERE a.version <> (SELECT count(*) FROM entries e WHERE e.account_id = a.id)")
    check "$r: every account's version equals its entry count ($v differ)" test "$v" = 0
}

# worker_transfers REGION TAG: transfers written by the workers of a stress run.
worker_transfers() { num "$(q "$1" "SELECT count(*) FROM transfers WHERE owner LIKE 'stress:$2:w%'" 2>/dev/null)"; }

# partial_batches REGION TAG: batches of the run (references b<batch>.<i>) not holding CRASH_BATCH transfers.
partial_batches() {
    q "$1" "SELECT count(*) FROM (SELECT count(*) AS n FROM transfers WHERE owner LIKE 'stress:$2:w%'
            GROUP BY owner, split_part(reference, '.', 1)) g WHERE n <> $CRASH_BATCH"
}

# ============================================================ a. concurrency

step "a. concurrency: mixed workload, 4 processes, region eu (seed $SEED, scale $SCALE)"
run_stress mixed --region eu --mode mixed --procs 4 --batches "$(scale 25)" --batch-size 40 \
    --accounts 40 --seed "$SEED"
check "mixed workload on eu: consistent ($(report mixed commands) commands)" test "$RC" = 0
run_stress contended --region eu --mode mixed --procs 4 --batches "$(scale 25)" --batch-size 20 \
    --accounts 6 --seed $((SEED + 1))
check "mixed workload on 6 accounts (row lock contention): consistent" test "$RC" = 0
check_partition eu
verify eu

# ============================================================ b. hot account

step "b. hot account: 4 processes crediting one account, region us"
run_stress hot --region us --mode hot --procs 4 --batches "$(scale 25)" --batch-size 200 \
    --accounts 30 --seed $((SEED + 2))
check "hot account on us: credits = sum of accepted transfers ($(report hot ok) accepted)" test "$RC" = 0
check_partition us
verify us

# ============================================================ c. crash

step "c1. crash: writer SIGKILLed ${CRASH_MS} ms into 2000-command batches, region sg"
TAG1=crash1-$$
run_stress crash1 --region sg --mode uniform --procs 2 --batches 100000 --batch-size "$CRASH_BATCH" \
    --accounts "$CRASH_ACCOUNTS" --seed $((SEED + 3)) --tag "$TAG1" --crash-after-ms "$CRASH_MS"
check "killed writer: database consistent afterwards" test "$RC" = 0
check "killed writer: workers were SIGKILLed mid-run ($(report crash1 killed) killed)" \
    test "$(report crash1 killed)" -ge 1
N1=$(worker_transfers sg "$TAG1")
check "killed writer: batches committed before the kill ($N1 transfers)" test "$N1" -gt 0
check "killed writer: no partial batch ($N1 is a multiple of $CRASH_BATCH)" test "$N1" -ge 0 -a $((N1 % CRASH_BATCH)) = 0
P1=$(num "$(partial_batches sg "$TAG1")")
check "killed writer: every committed batch whole ($P1 partial)" test "$P1" = 0
check_partition sg
verify sg

step "c2. crash: sg postmaster SIGKILLed mid-batch, cluster restarted (crash recovery)"
TAG2=crash2-$$
setsid "$STRESS" --config "$GEOLEDGER_CONFIG" --report "$WORK/crash2.report" --region sg --mode uniform \
    --procs 2 --batches 100000 --batch-size "$CRASH_BATCH" --accounts "$CRASH_ACCOUNTS" --seed $((SEED + 4)) --tag "$TAG2" \
    >"$WORK/crash2.log" 2>&1 &
BG_PID=$!
BEFORE=0
for ((i = 0; i < 600; i++)); do # up to 60 s for a few batches to commit
    BEFORE=$(worker_transfers sg "$TAG2")
    ((BEFORE < 2 * CRASH_BATCH)) || break
    kill -0 "$BG_PID" 2>/dev/null || break
    sleep 0.1
done
sleep 0.$((RANDOM % 9 + 1)) # land somewhere inside a batch
PM_PID=$(head -n 1 "$TEST_DIR/sg/data/postmaster.pid")
check "postmaster killed while the writer ran ($BEFORE transfers committed before)" \
    bash -c "kill -0 $BG_PID && kill -KILL $PM_PID"
RC=0
for ((i = 0; i < 600; i++)); do
    kill -0 "$BG_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$BG_PID" 2>/dev/null; then
    kill -KILL -- "-$BG_PID" 2>/dev/null || true
    echo "    writer did not notice the dead server within 60 s; killed"
fi
wait "$BG_PID" || RC=$?
BG_PID=""
grep '^stress: mode=' "$WORK/crash2.log" | sed 's/^/    /' || true
# 3 = database error (expected: the server died); 1 would be an inconsistency seen before it did.
check "writer stopped with a database error (exit $RC, want 3)" test "$RC" = 3
if "$CLUSTER" start "$TEST_DIR" "${REGION_PORTS[@]}" >"$WORK/restart.log" 2>&1; then
    pass "cluster restarted after the crash"
else
    fail "cluster restart after the crash"
    sed 's/^/    /' "$WORK/restart.log"
fi
N2=$(worker_transfers sg "$TAG2")
ACKED=$(report crash2 transfers)
MAX=$((ACKED + 2 * CRASH_BATCH)) # at most one in-doubt batch per worker
check "recovery kept every committed batch ($N2 transfers >= $BEFORE seen before the kill)" \
    test "$BEFORE" -gt 0 -a "$N2" -ge "$BEFORE"
check "recovery kept every acknowledged batch ($N2 >= $ACKED acknowledged, <= $MAX)" \
    test "$ACKED" -ge 0 -a "$N2" -ge "$ACKED" -a "$N2" -le "$MAX"
check "recovery left no partial batch ($N2 is a multiple of $CRASH_BATCH)" test "$N2" -ge 0 -a $((N2 % CRASH_BATCH)) = 0
P2=$(num "$(partial_batches sg "$TAG2")")
check "recovery: every committed batch whole ($P2 partial)" test "$P2" = 0
check_partition sg
verify sg

step "c3. after recovery: sg takes writes again"
run_stress after --region sg --mode uniform --procs 2 --batches "$(scale 5)" --batch-size 500 \
    --accounts 20 --seed $((SEED + 5))
check "uniform writer on recovered sg: consistent" test "$RC" = 0
verify

printf '\n%d passed, %d failed\n' "$PASSED" "$FAILED"
((FAILED == 0))
