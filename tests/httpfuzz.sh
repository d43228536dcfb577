#!/usr/bin/env bash
# shellcheck disable=SC2034 # SUMMARY_DONE, CLEANUP_PIDS and CLEANUP_TENTHS are read by the exit trap of tests/lib.sh
# httpfuzz.sh — an HTTP fuzz run against ledgerd (tests/tools/http_fuzz.c),
# meant for the sanitizer build: no crash, no 5xx other than 503, no hang, and
# not one AddressSanitizer / LeakSanitizer / UBSan report in ledgerd's log.
#
#   TEST_DIR=DIR [GEOLEDGER_CONFIG=DIR/ledger.conf] [BUILD=build/asan] tests/httpfuzz.sh
#
# TEST_DIR holds the ledger.conf of a running, migrated cluster (tests/run.sh
# provides one); BUILD (default build) is where ledgerd, ledgerctl and
# tests/http_fuzz are: for the sanitizer run, BUILD=build/asan after
# `make BUILD=build/asan SAN=1 build/asan/bin/ledgerd build/asan/bin/ledgerctl
# build/asan/tests/http_fuzz` (a missing $BUILD/tests/http_fuzz falls back to
# build/tests/http_fuzz: the fuzzer need not be instrumented).
#
# Like api.sh it copies the config, appends a ledgerd group
# (scripts/ledgerd-conf.sh) on a free port of 18100-18199 (HTTPFUZZ_PORT to
# choose), starts ledgerd in the background (stopped on every exit), creates
# accounts in every region, transfers, holds and mandates through the API,
# writes their ids and references to an ids file and mints tokens: a normal
# principal (the owner of those ids), a second principal (the mandates'
# grantee), an admin, a principal with a `regions` claim (signed here:
# `ledgerctl token` has no such option) and a read-only one. Then
# http_fuzz runs for HTTPFUZZ_SECONDS (30) / HTTPFUZZ_REQUESTS (20000) with
# HTTPFUZZ_CONNECTIONS (8) connections and seed HTTPFUZZ_SEED (random, printed:
# a run is replayed with the same seed, up to the interleaving of the
# connections). Checks afterwards: ledgerd alive, no sanitizer line in its log,
# SIGTERM -> exit 0 within 20 s, the log again (leaks are reported at exit),
# and `ledgerctl verify` (the fuzz made real transfers).
#
# HTTPFUZZ_KNOWN_REGIONS_ONLY=1: only ids whose region byte is a configured
# region's code (no nil/max/v4 ids, no other region byte).
# HTTPFUZZ_SAVE_DIR=DIR: keep the raw bytes of suspect requests (replay them
# with `http_fuzz --port P --replay FILE`) and ledgerd's log.
#
# Plain HTTP, on purpose: this ledgerd is configured with plain_http = true
# (LEDGERD_PLAIN_HTTP=1). The fuzzer aims at ledgerd's own code (MHD's parser
# as ledgerd drives it, body limits, routing, JSON, handlers), which is the same
# behind TLS; going through TLS would spend the run's time on handshakes and
# put an OpenSSL client in the fuzzer to reach the same bytes. The TLS layer
# (GnuTLS) and ledgerd's TLS configuration are tested by tests/tls.sh, which
# also sends plain HTTP and garbage to an HTTPS port.
#
# One line per check, `ok NAME` or `FAIL NAME: details`; the last line is
# "N passed, N failed"; exit 1 on any failure.
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
: "${TEST_DIR:?set TEST_DIR to the directory of a migrated cluster (its ledger.conf)}"
GEOLEDGER_CONFIG=${GEOLEDGER_CONFIG:-$TEST_DIR/ledger.conf}
export GEOLEDGER_CONFIG
SECS=${HTTPFUZZ_SECONDS:-30}
REQS=${HTTPFUZZ_REQUESTS:-20000}
CONNS=${HTTPFUZZ_CONNECTIONS:-8}
SEED=${HTTPFUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
KNOWN=${HTTPFUZZ_KNOWN_REGIONS_ONLY:-0}
SAVE=${HTTPFUZZ_SAVE_DIR:-}

early_fail() {
    echo "httpfuzz.sh: $1" >&2
    echo "FAIL setup: $1"
    echo "0 passed, 1 failed"
    exit 1
}
for tool in curl jq openssl od; do
    command -v "$tool" >/dev/null 2>&1 || early_fail "'$tool' is not installed (scripts/deps.sh installs it; apt-get install $tool)"
done
SAN_ARG=""
[[ "$BUILD" != *asan* ]] || SAN_ARG="SAN=1 "
for bin in ledgerd ledgerctl; do
    [[ -x "$BUILD/bin/$bin" ]] || early_fail "$BUILD/bin/$bin is not built (make BUILD=$BUILD $SAN_ARG$BUILD/bin/$bin)"
done
FUZZ="$BUILD/tests/http_fuzz"
[[ -x "$FUZZ" ]] || FUZZ=build/tests/http_fuzz
[[ -x "$FUZZ" ]] || early_fail "tests/tools/http_fuzz.c is not built (make build/tests/http_fuzz)"
[[ -r "$GEOLEDGER_CONFIG" ]] || early_fail "no $GEOLEDGER_CONFIG"

# shellcheck source=lib.sh
source tests/lib.sh

W=$(mktemp -d /tmp/geoledger-httpfuzz.XXXXXX)
LPID=""
LRC="" # ledgerd's exit status once reaped
SAN_RE='runtime error:|AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer'
exit_trap httpfuzz.sh
CLEANUP_TENTHS=100 # ledgerd under the sanitizers may take longer to stop
on_exit() {
    if [[ -n "$SAVE" && -d "$SAVE" && -f "$W/ledgerd.log" ]]; then cp -- "$W/ledgerd.log" "$SAVE/ledgerd.log" || true; fi
}

# The sanitizer reports of the log with their stacks, without the request
# lines that other threads log in between (at most 150 lines).
san_report() {
    grep -v '^{"time"' "$W/ledgerd.log" | grep -E -A 40 "$SAN_RE" | head -n 150 || true
}
finish() {
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0)) || exit 1
    exit 0
}

# ---------------------------------------------------------------- start ledgerd

if ! PORT=$(free_port "${HTTPFUZZ_PORT:-$((18100 + $$ % 100))}"); then
    fail "start" "no free port from 18100"
    finish
fi

CONF="$W/ledger.conf"
cp -- "$GEOLEDGER_CONFIG" "$CONF"
LEDGERD_PLAIN_HTTP=1 scripts/ledgerd-conf.sh "$CONF" "$TEST_DIR/dev.key" "$PORT" # (see the header: why plain HTTP)
KEY=$(cat "$TEST_DIR/dev.key")
BASE="http://127.0.0.1:$PORT"
mapfile -t REGIONS < <(sed -n 's/.*[{ ;]name[ \t]*=[ \t]*"\([^"]*\)".*/\1/p' "$GEOLEDGER_CONFIG")
((${#REGIONS[@]} > 0)) || REGIONS=(eu)

# Sanitizers: reports go to the log; UBSan with its stack; a leak fails the exit status.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$BUILD/bin/ledgerd" --config "$CONF" >"$W/ledgerd.log" 2>&1 &
LPID=$!
CLEANUP_PIDS=("$LPID")
up=0
for _ in $(seq 200); do
    kill -0 "$LPID" 2>/dev/null || break
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE/healthz" || true)" == 200 ]]; then
        up=1
        break
    fi
    sleep 0.1
done
if ((!up)); then
    fail "start" "ledgerd did not answer /healthz on port $PORT: $(tail -n 5 "$W/ledgerd.log" | tr '\n' ' ')"
    finish
fi
ok "start: $BUILD/bin/ledgerd answers /healthz on port $PORT (pid $LPID)"

# ---------------------------------------------------------------- tokens

RUN="hf$$x$RANDOM"
token() { # SUB [SCOPE]
    local args=(--config "$CONF" token --sub "$1")
    [[ -z "${2-}" ]] || args+=(--scope "$2")
    "$BUILD/bin/ledgerctl" "${args[@]}"
}
b64u() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
hs256() { # HEADER PAYLOAD: signed with the dev key, as ledgerd reads it
    local h p s
    h=$(printf '%s' "$1" | b64u)
    p=$(printf '%s' "$2" | b64u)
    s=$(printf '%s' "$h.$p" | openssl dgst -sha256 -mac HMAC -macopt "key:$KEY" -binary | b64u)
    printf '%s.%s.%s' "$h" "$p" "$s"
}
OWNER="fz-owner-$RUN"
OTHER="fz-other-$RUN"
# the owner may open funding accounts (accounts:issue): its first account is the money source
TA=$(token "$OWNER" "accounts:read accounts:write accounts:issue transfers:read transfers:write mandates:write")
TB=$(token "$OTHER")
TADM=$(token "fz-admin-$RUN" "admin accounts:read accounts:write accounts:issue transfers:read transfers:write mandates:write")
NOW=$(date +%s)
TREG=$(hs256 '{"alg":"HS256","typ":"JWT"}' "$(jq -cn --arg sub "$OWNER" --argjson exp $((NOW + 3600)) --argjson iat "$NOW" --arg r "${REGIONS[$((${#REGIONS[@]} - 1))]}" \
    '{iss: "geoledger-dev", aud: "geoledger", sub: $sub, exp: $exp, iat: $iat, regions: [$r],
      scope: "accounts:read accounts:write transfers:read transfers:write mandates:write"}')")
TRO=$(token "$OWNER" "accounts:read transfers:read")
printf '%s\n' "$TA" "$TB" "$TADM" "$TREG" "$TRO" >"$W/tokens"
if [[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TREG" "$BASE/v1/accounts/x")" == 404 ]]; then
    ok "tokens: owner, other, admin, regions claim [${REGIONS[-1]}], read-only"
else
    fail "tokens" "the hand-signed regions token is refused"
fi

# ---------------------------------------------------------------- objects for the ids file

ST=""
req() { # METHOD PATH TOKEN [BODY]: the status to ST, the body to $W/body
    local args=(-s -o "$W/body" -w '%{http_code}' -X "$1" --max-time 20 -H "Authorization: Bearer $3"
        -H "Idempotency-Key: $RUN-$RANDOM$RANDOM$RANDOM")
    [[ -z "${4-}" ]] || args+=(-H 'Content-Type: application/json' --data-binary "$4")
    ST=$(curl "${args[@]}" "$BASE$2") || ST="curl_failed($?)"
}
j() { jq -r "$@" "$W/body" 2>/dev/null || true; }
SETUP_FAILS=()
made() { # KIND WANT-STATUS WHAT: records the id of the last answer
    if [[ "$ST" == "$2" && -n "$(j '.id // empty')" ]]; then
        printf '%s %s\n' "$1" "$(j .id)" >>"$W/ids"
    else
        SETUP_FAILS+=("$3: $ST $(head -c 200 "$W/body" 2>/dev/null)")
    fi
}
xfer() { # DEBIT CREDIT AMOUNT REF [EXTRA]
    jq -cn --arg d "$1" --arg c "$2" --argjson a "$3" --arg r "$4" --argjson x "${5:-{\}}" \
        '{debit_account_id: $d, credit_account_id: $c, amount: $a, currency: "EUR", reference: $r} + $x'
}
: >"$W/ids"
EXP=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
for R in "${REGIONS[@]}"; do
    req POST /v1/accounts "$TA" "{\"currency\":\"EUR\",\"region\":\"$R\",\"kind\":\"funding\"}"
    made account 201 "account $R"
    A1=$(j .id)
    req POST /v1/accounts "$TA" "{\"currency\":\"EUR\",\"region\":\"$R\",\"flags\":{\"debits_must_not_exceed_credits\":true},\"metadata\":{\"n\":1}}"
    made account 201 "flagged account $R"
    A2=$(j .id)
    req POST /v1/accounts "$TA" "{\"currency\":\"USD\",\"region\":\"$R\"}"
    made account 201 "USD account $R"
    req POST /v1/accounts "$TB" "{\"currency\":\"EUR\",\"region\":\"$R\"}"
    made account 201 "other's account $R"
    B1=$(j .id)
    req POST /v1/accounts "$TADM" "{\"currency\":\"EUR\",\"region\":\"$R\",\"kind\":\"funding\"}"
    made account 201 "admin funding account $R"
    for i in 1 2 3; do
        req POST /v1/transfers "$TA" "$(xfer "$A1" "$A2" 100000 "$RUN-$R-fund$i")"
        made transfer 201 "transfer $R $i"
        echo "reference $RUN-$R-fund$i" >>"$W/ids"
    done
    for i in 1 2 3 4 5 6; do
        extra='{"pending":true}'
        ((i % 2)) || extra='{"pending":true,"timeout_seconds":3600}'
        req POST /v1/transfers "$TA" "$(xfer "$A2" "$A1" 100 "$RUN-$R-hold$i" "$extra")"
        made pending 201 "hold $R $i"
    done
    req POST /v1/transfers "$TA" "$(xfer "$A2" "$A1" 50 "$RUN-$R-hold-posted" '{"pending":true}')"
    made transfer 201 "hold to post $R"
    req POST "/v1/transfers/$(j .id)/post" "$TA" '{"amount":20}'
    made transfer 201 "partial post $R"
    req POST "/v1/transfers/$(tail -n 1 "$W/ids" | cut -d' ' -f2)/reverse" "$TA" "{\"reference\":\"$RUN-$R-rev\",\"amount\":5}"
    made transfer 201 "reversal $R"
    req POST /v1/mandates "$TA" "$(jq -cn --arg w "$A2" --arg g "$OTHER" --arg e "$EXP" \
        '{wallet_account_id: $w, grantee: $g, currency: "EUR", max_amount_per_charge: 500, max_amount_per_day: 2000, expires_at: $e}')"
    made mandate 201 "mandate $R"
    req POST /v1/transfers "$TB" "$(xfer "$A2" "$B1" 10 "$RUN-$R-charge")"
    made transfer 201 "charge under the mandate $R"
done
if ((${#SETUP_FAILS[@]} == 0)); then
    ok "setup: $(wc -l <"$W/ids") ids and references over ${#REGIONS[@]} regions (accounts, transfers, holds, mandates)"
else
    fail "setup" "$(printf '%s; ' "${SETUP_FAILS[@]}")"
fi

# ---------------------------------------------------------------- fuzz

args=(--port "$PORT" --pid "$LPID" --token-file "$W/tokens" --key-file "$TEST_DIR/dev.key" --ids-file "$W/ids"
    --seconds "$SECS" --requests "$REQS" --connections "$CONNS" --seed "$SEED"
    --region-names "$(IFS=,; echo "${REGIONS[*]}")")
if [[ "$KNOWN" != 0 && -n "$KNOWN" ]]; then args+=(--known-regions-only); fi
if [[ -n "$SAVE" ]]; then
    mkdir -p -- "$SAVE"
    args+=(--save-dir "$SAVE")
fi
echo "---- $FUZZ ${args[*]}"
frc=0
HTTPFUZZ_KNOWN_REGIONS_ONLY=$KNOWN "$FUZZ" "${args[@]}" || frc=$?
echo "----"
case $frc in
0) ok "fuzz: seed $SEED, no 5xx other than 503, no hang, ledgerd alive" ;;
1) fail "fuzz" "seed $SEED: a 5xx other than 503, or a hang (the requests are printed above)" ;;
3) fail "fuzz" "seed $SEED: LEDGERD DIED (the last requests of each connection are printed above)" ;;
*) fail "fuzz" "http_fuzz exit status $frc" ;;
esac

# ---------------------------------------------------------------- afterwards

if kill -0 "$LPID" 2>/dev/null &&
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$BASE/healthz" || true)" == 200 ]]; then
    ok "ledgerd alive after the fuzz"
else
    fail "ledgerd alive after the fuzz" "gone or not answering /healthz; last log lines: $(grep -v '^{"time"' "$W/ledgerd.log" | tail -n 5 | tr '\n' ' ')"
fi
if grep -q -E "$SAN_RE" "$W/ledgerd.log"; then
    fail "no sanitizer report in ledgerd's log during the fuzz" "see below"
    san_report
else
    ok "no sanitizer report in ledgerd's log during the fuzz"
fi
SAN_LINES=$(grep -c -E "$SAN_RE" "$W/ledgerd.log" || true)

if kill -0 "$LPID" 2>/dev/null; then
    t_stop=$SECONDS
    kill -TERM "$LPID"
    for _ in $(seq 200); do kill -0 "$LPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$LPID" 2>/dev/null; then
        fail "SIGTERM: exit within 20 s" "still running 20 s after SIGTERM; killed"
        kill -KILL "$LPID" 2>/dev/null || true
        wait "$LPID" 2>/dev/null || true
    else
        LRC=0
        wait "$LPID" || LRC=$?
        if ((LRC == 0)); then
            ok "SIGTERM: exit 0 in $((SECONDS - t_stop)) s"
        else
            fail "SIGTERM: exit 0" "exit status $LRC$( ((LRC == 23)) && echo ' (LeakSanitizer: leaks)')"
        fi
    fi
    LPID=""
    CLEANUP_PIDS=()
else
    LRC=0
    wait "$LPID" 2>/dev/null || LRC=$?
    fail "SIGTERM: exit 0" "ledgerd was already gone (exit status $LRC)"
    LPID=""
    CLEANUP_PIDS=()
fi
if (($(grep -c -E "$SAN_RE" "$W/ledgerd.log" || true) > SAN_LINES)); then
    fail "no sanitizer report in ledgerd's log at exit" "see below"
    san_report
else
    ok "no sanitizer report in ledgerd's log at exit"
fi

if vout=$("$BUILD/bin/ledgerctl" verify 2>&1); then
    ok "ledgerctl verify after the fuzz"
else
    fail "ledgerctl verify after the fuzz" "$(tail -n 5 <<<"$vout" | tr '\n' ' ')"
fi

finish
