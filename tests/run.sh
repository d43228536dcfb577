#!/usr/bin/env bash
# run.sh — the whole geoledger test suite (called by `make test` / `make asan`).
#
#   BUILD=build tests/run.sh        # BUILD may be build/asan
#
# 1. every unit test (one binary per tests/unit/test_*.c);
# 2. a throwaway 3-region PostgreSQL cluster (eu, us, sg) in a temp dir,
#    its ledger.conf, and `ledgerctl migrate`;
# 3. every integration test (one binary per tests/integration/test_*.c);
# 4. tests/api.sh (ledgerd over HTTPS), tests/tls.sh (its TLS: protocols, ciphers,
#    mutual TLS, config refusals), tests/zerotrust.sh (money creation, mandate payee, replays,
#    regions claim, limits before authentication), tests/streams.sh (the Redis stream publisher on a
#    redis-server of its own, ledgerctl events tail/prune), tests/webhooks.sh (signed webhooks to a receiver
#    of its own: owners, retries, dead letters, kill -9, SSRF), tests/pgtls.sh (TLS + scram to PostgreSQL, on a
#    one-region cluster of its own, port TEST_PG_PORT_BASE + 3), tests/httpfuzz.sh (HTTP fuzzing, plain HTTP), the OpenAPI lint, tests/report.sh
#    (compliance report), tests/recon.sh (reconciliation), then tests/stress.sh; tests/contract.sh
#    checks every response api.sh, tls.sh, zerotrust.sh, webhooks.sh and events.sh received against api/openapi.yaml;
# 5. `ledgerctl verify` and `ledgerctl audit verify` on everything the tests left behind;
# 6. tests/chaos.sh (fault injection under a bank workload, on a cluster of its own).
#
# A failing step does not stop the run: the report is complete, and the last
# line is "N passed, N failed". Exit status 1 if anything failed. The cluster
# is stopped and its directory removed on every exit (failure, Ctrl-C too).
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
export BUILD
STEP_TIMEOUT=${STEP_TIMEOUT:-600} # seconds per test program: a hang fails the step, not the run
# Check's own per-test timeouts are scaled for slow (sanitizer) builds.
if [[ "$BUILD" == *asan* ]]; then export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-3}; fi

PASSED=0
FAILED=0
FAILED_NAMES=()
DIR=""

if [[ -t 1 ]]; then BOLD=$'\e[1m' RED=$'\e[31m' GREEN=$'\e[32m' RESET=$'\e[0m'; else BOLD="" RED="" GREEN="" RESET=""; fi

header() { printf '\n%s==== %s ====%s\n' "$BOLD" "$*" "$RESET"; }

pass() {
    PASSED=$((PASSED + 1))
    printf '%sPASS%s %s (%ss)\n' "$GREEN" "$RESET" "$1" "$2"
}

fail() {
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$1")
    printf '%sFAIL%s %s%s\n' "$RED" "$RESET" "$1" "${2:+: $2}"
}

# run_step NAME COMMAND...: runs one test program, counts it.
# The step runs under `timeout` in its own process group, in the background, so
# that a Ctrl-C or TERM reaches this script at once (bash runs a trap only after
# a foreground child returns) and the trap can end the whole step's process tree.
STEP_PID=""
run_step() {
    local name=$1 start rc=0
    shift
    header "$name"
    start=$SECONDS
    timeout -k 10 "$STEP_TIMEOUT" "$@" </dev/null &
    STEP_PID=$!
    wait "$STEP_PID" || rc=$?
    STEP_PID=""
    if ((rc == 0)); then
        pass "$name" $((SECONDS - start))
    elif ((rc == 124 || rc == 137)); then
        fail "$name" "timed out after ${STEP_TIMEOUT}s"
    else
        fail "$name" "exit status $rc"
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$DIR" && -d "$DIR" ]]; then
        scripts/cluster.sh stop "$DIR" >/dev/null 2>&1 || echo "run.sh: could not stop the cluster in $DIR" >&2
        rm -rf -- "$DIR"
    fi
    exit "$rc"
}
# timeout passes the signal on to every process of the step.
stop_step() {
    if [[ -n "$STEP_PID" ]]; then
        kill -TERM "$STEP_PID" 2>/dev/null || true
        wait "$STEP_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'echo; echo "run.sh: interrupted" >&2; stop_step; exit 130' INT
trap 'echo "run.sh: terminated" >&2; stop_step; exit 143' TERM

# Test programs come from the sources, so a test that failed to build is a failure, not a skip.
list_tests() {
    local src
    for src in "$1"/test_*.c; do
        [[ -e "$src" ]] || continue
        src=${src##*/}
        printf '%s\n' "${src%.c}"
    done
}

run_program() {
    local kind=$1 name=$2 bin="$BUILD/tests/$2"
    if [[ ! -x "$bin" ]]; then
        header "$kind $name"
        fail "$kind $name" "$bin not built (make $bin)"
        return
    fi
    run_step "$kind $name" "$bin"
}

SUITE_START=$SECONDS
mapfile -t UNIT_TESTS < <(list_tests tests/unit)
mapfile -t ITESTS < <(list_tests tests/integration)

# ---- 1. unit tests
for t in "${UNIT_TESTS[@]}"; do run_program unit "$t"; done

# ---- 2. cluster
header "cluster: start 3 regions, write config, migrate"
start=$SECONDS
cluster_ok=0
DIR=$(mktemp -d /tmp/geoledger-test.XXXXXX)
export GEOLEDGER_CONFIG="$DIR/ledger.conf"
# TEST_PG_PORT_BASE: the regions' ports (eu, us, sg from it; default 5441),
# so that two suites (two worktrees) can run side by side.
P=${TEST_PG_PORT_BASE:-5441}
if scripts/cluster.sh start "$DIR" "eu:$P" "us:$((P + 1))" "sg:$((P + 2))" &&
    scripts/cluster.sh conf "$DIR" "$GEOLEDGER_CONFIG" "eu:$P:1" "us:$((P + 1)):2" "sg:$((P + 2)):3" &&
    [[ -x "$BUILD/bin/ledgerctl" ]] &&
    "$BUILD/bin/ledgerctl" migrate; then
    cluster_ok=1
    pass "cluster" $((SECONDS - start))
else
    [[ -x "$BUILD/bin/ledgerctl" ]] || echo "run.sh: $BUILD/bin/ledgerctl is not built" >&2
    fail "cluster" "the cluster could not be started, configured or migrated"
fi

# ---- 3. integration tests, 4. stress, 5. verify
if ((cluster_ok)); then
    for t in "${ITESTS[@]}"; do run_program integration "$t"; done

    # Every response these suites receive is recorded for the contract step below.
    CONTRACT_DIR="$DIR/contract"
    mkdir -p "$CONTRACT_DIR"
    run_step "api: ledgerd end to end" env TEST_DIR="$DIR" CONTRACT_DIR="$CONTRACT_DIR" tests/api.sh
    run_step "tls: ledgerd's HTTPS (protocols, ciphers, certificates, mutual TLS, config refusals)" \
        env TEST_DIR="$DIR" CONTRACT_DIR="$CONTRACT_DIR" tests/tls.sh
    run_step "zerotrust: minting, mandate payee, replay, regions claim, abuse limits" \
        env TEST_DIR="$DIR" CONTRACT_DIR="$CONTRACT_DIR" tests/zerotrust.sh
    run_step "webhooks: signed deliveries, owners only, retries, dead letters, kill -9, SSRF refusals" \
        env TEST_DIR="$DIR" CONTRACT_DIR="$CONTRACT_DIR" tests/webhooks.sh
    run_step "events: GET /v1/events (every effect once, who sees what, cursors, merged view, refusals)" \
        env TEST_DIR="$DIR" CONTRACT_DIR="$CONTRACT_DIR" tests/events.sh
    run_step "streams: the Redis stream (exactly once across Redis and ledgerd kills, MAXLEN), events tail and prune" \
        env TEST_DIR="$DIR" tests/streams.sh
    run_step "contract: every response of api, tls, zerotrust, webhooks and events validates against api/openapi.yaml (Prism)" \
        env CONTRACT_DIR="$CONTRACT_DIR" tests/contract.sh
    run_step "pgtls: TLS + scram-sha-256 to PostgreSQL (wrong CA, no TLS, no password, no leaks)" \
        env TEST_DIR="$DIR" TEST_PG_PORT_BASE="$P" tests/pgtls.sh
    run_step "httpfuzz: ledgerd under HTTP fuzzing (sanitizers when BUILD=build/asan)" env TEST_DIR="$DIR" tests/httpfuzz.sh
    run_step "api: OpenAPI lint (@redocly/cli)" api/lint-openapi.sh
    run_step "api: every error code ledgerd answers is in the OpenAPI ErrorCode enum" api/check-error-codes.sh
    run_step "report: compliance report, HTML in headless Chromium" env TEST_DIR="$DIR" tests/report.sh
    run_step "recon: settlement files end to end (breaks, PCI, sealed reports)" env TEST_DIR="$DIR" tests/recon.sh
    if [[ -x tests/stress.sh ]]; then
        run_step "stress" env TEST_DIR="$DIR" tests/stress.sh
    elif [[ -e tests/stress.sh ]]; then
        header "stress"
        echo "tests/stress.sh exists but is not executable: not run (chmod +x it)"
    fi

    run_step "verify: ledgerctl verify" \
        "$BUILD/bin/ledgerctl" verify
    run_step "verify: ledgerctl audit verify" \
        "$BUILD/bin/ledgerctl" audit verify
else
    for t in "${ITESTS[@]}"; do fail "integration $t" "not run: no cluster"; done
    [[ ! -x tests/stress.sh ]] || fail "stress" "not run: no cluster"
    fail "verify" "not run: no cluster"
fi

# ---- 6. chaos: its own cluster (CHAOS_PG_PORT_BASE, 5451-5453) and ledgerd (from 18300), so its
# faults never touch the cluster above
run_step "chaos: kill -9 ledgerd, PostgreSQL restart, hung region (bank workload)" tests/chaos.sh

header "summary ($((SECONDS - SUITE_START))s, BUILD=$BUILD)"
if ((FAILED > 0)); then
    printf 'failed: %s\n' "${FAILED_NAMES[@]}"
fi
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
