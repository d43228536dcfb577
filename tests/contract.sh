#!/usr/bin/env bash
# shellcheck disable=SC2034 # SUMMARY_DONE and CLEANUP_PIDS are read by the exit trap of tests/lib.sh
# contract.sh — checks every response the HTTP suites received against
# api/openapi.yaml with Prism's validating proxy (@stoplight/prism-cli, from npm
# through scripts/npm-tool.sh), as a client generated from the spec would see
# them: status declared for the operation, headers, body schema (required
# properties, types, null vs absent, ranges, enums).
#
#   CONTRACT_DIR=DIR tests/contract.sh
#
# tests/run.sh sets CONTRACT_DIR for api.sh, tls.sh and zerotrust.sh, whose
# req() (tests/http.sh) records each exchange there; this script then replays
# the recorded responses through the proxy (tests/tools/contract-replay.js says
# why a replay) and fails on any violation, or when fewer than MIN_RESPONSES
# were recorded (the recording itself broke).
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
: "${CONTRACT_DIR:?set CONTRACT_DIR to the directory the suites recorded into}"
PRISM_VERSION=5.12.0 # pinned: OpenAPI 3.1, sl-violations on proxied responses
MIN_RESPONSES=${MIN_RESPONSES:-300}

# shellcheck source=lib.sh
source tests/lib.sh
require contract.sh node curl
exit_trap contract.sh
W=""

n=$(wc -l <"$CONTRACT_DIR/index" 2>/dev/null || echo 0)
if ((n < MIN_RESPONSES)); then
    fail "recorded responses" "$n in $CONTRACT_DIR/index, want at least $MIN_RESPONSES"
else
    ok "recorded responses: $n"
fi

if ! prism=$(scripts/npm-tool.sh @stoplight/prism-cli "$PRISM_VERSION" prism); then
    fail "prism" "@stoplight/prism-cli@$PRISM_VERSION could not be installed (see above)"
else
    replay_port=$(free_port $((19100 + $$ % 400)))
    proxy_port=$(free_port $((replay_port + 1)))
    # Requests are not validated (the suites send hostile ones on purpose), no
    # CORS headers of Prism's own: only the responses are judged.
    "$prism" proxy --host 127.0.0.1 --port "$proxy_port" --cors=false --errors=false --validate-request=false \
        api/openapi.yaml "http://127.0.0.1:$replay_port" >"$CONTRACT_DIR/prism.log" 2>&1 &
    CLEANUP_PIDS+=("$!")
    # The judge is judged first: a response that breaks the spec must be caught
    # (a /readyz whose regions are a list), one that keeps it must pass.
    W=$(mktemp -d /tmp/geoledger-contract.XXXXXX)
    printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n' | tee "$W/1.1.hdr" >"$W/1.2.hdr"
    printf '{"status":"ok","regions":{"eu":"up"},"breakers":{"eu":"closed"}}' >"$W/1.1.body"
    printf '{"status":"ok","regions":["eu"],"breakers":{"eu":"closed"}}' >"$W/1.2.body"
    printf '1.1\tGET\t/readyz\n1.2\tGET\t/readyz\n' >"$W/index"
    node tests/tools/contract-replay.js "$W" "$replay_port" "http://127.0.0.1:$proxy_port" >"$W/report" 2>&1 || true
    if grep -q '^VIOLATION GET /readyz -> 200: response.body.regions' "$W/report" &&
        grep -q '^2 responses replayed: 1 with violations, 0 not replayed$' "$W/report"; then
        ok "self-check: of a good and a bad /readyz, the proxy flags the bad one only"
    else
        fail "self-check: of a good and a bad /readyz, the proxy flags the bad one only" "$(cat "$W/report")"
    fi
    if node tests/tools/contract-replay.js "$CONTRACT_DIR" "$replay_port" "http://127.0.0.1:$proxy_port" \
        >"$CONTRACT_DIR/report" 2>&1; then
        ok "contract: $(tail -n 1 "$CONTRACT_DIR/report")"
    else
        head -n 60 "$CONTRACT_DIR/report"
        fail "contract" "$(tail -n 1 "$CONTRACT_DIR/report") (api/openapi.yaml vs ledgerd; Prism's log: $CONTRACT_DIR/prism.log)"
    fi
fi

SUMMARY_DONE=1
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
