#!/usr/bin/env bash
# shellcheck disable=SC2034 # SUMMARY_DONE and CLEANUP_PIDS are read by the exit trap of tests/lib.sh
# report.sh — end-to-end test of `ledgerctl report regional` (the regional
# compliance report, reconciliation/README.md) against the cluster that
# tests/run.sh started and migrated.
#
#   GEOLEDGER_CONFIG=DIR/ledger.conf BUILD=build TEST_DIR=DIR tests/report.sh
#
# It writes a little known data into region eu (owners unique to this run),
# then renders the report over the last 31 days:
#   - html: one self-contained file (no http(s) URL, no src/href, no script),
#     rendered by headless Chromium: the screenshot must be a real PNG of the
#     window size, and the page must log nothing to the console (no error, no
#     Content-Security-Policy violation); the dumped DOM must hold every
#     section, the charts and the escaped reference;
#   - json: parses (jq), carries the data written here, attestation "pass";
#   - csv: the documented header, one row per line of 20 fields;
#   - usage errors exit 2.
# A self-check first proves the console-error detector catches a broken page.
# One line per check, `ok NAME` or `FAIL NAME: details`; the last line is
# "N passed, N failed"; exit 1 on any failure.
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
: "${GEOLEDGER_CONFIG:?set GEOLEDGER_CONFIG to the ledger.conf of a migrated cluster}"
: "${TEST_DIR:?set TEST_DIR to the cluster directory}"
L="$BUILD/bin/ledgerctl"
CHROMIUM=${CHROMIUM:-chromium}
CHROMIUM_TIMEOUT=${CHROMIUM_TIMEOUT:-120} # seconds per chromium run: a hang fails the check

# shellcheck source=lib.sh
source tests/lib.sh
require report.sh jq od "$CHROMIUM" "$L"
check() { # check NAME COMMAND...: ok if the command succeeds
    local name=$1
    shift
    if "$@"; then ok "$name"; else fail "$name" "'$*' failed"; fi
}
jq_true() { jq -e "$@" >/dev/null; } # jq_true [ARGS] FILTER FILE: the filter yields true

W=$(mktemp -d /tmp/geoledger-report.XXXXXX)
exit_trap report.sh

RUN="report-sh-$$-$RANDOM"

# Headless Chromium, its own throwaway profile; --no-sandbox because root
# cannot use the sandbox (harmless for a local file that runs no script).
chromium_run() {
    timeout -k 10 "$CHROMIUM_TIMEOUT" "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --user-data-dir="$W/profile" --no-first-run "$@"
}

# Lines of a chromium log that mean the page itself complained. A page
# without script logs nothing to the console: any console line is an error
# (uncaught exception, CSP violation, failed load).
page_errors() {
    grep -E ':CONSOLE|Uncaught|Refused to|Content Security Policy' -- "$1" || true
}

# ---------------------------------------------------------------- self-check of the detector
cat >"$W/broken.html" <<'EOF'
<!DOCTYPE html><html><head><meta charset="utf-8"><title>broken</title></head>
<body><p>broken</p><script>undefinedFunction();</script></body></html>
EOF
chromium_run --enable-logging=stderr --v=0 --dump-dom "file://$W/broken.html" >"$W/broken.dom" 2>"$W/broken.err" || true
if [[ -n "$(page_errors "$W/broken.err")" ]]; then
    ok "detector: a page with an uncaught error is caught"
else
    fail "detector: a page with an uncaught error is caught" "no console error seen; the checks below would prove nothing"
fi

# ---------------------------------------------------------------- known data in eu
acct() { # acct OWNER KIND [METADATA] -> id
    local args=(--json account create --region eu --currency EUR --owner "$1" --kind "$2")
    [[ -z "${3:-}" ]] || args+=(--metadata "$3")
    "$L" "${args[@]}" | jq -er .id
}
pay() { # pay FROM TO AMOUNT [REFERENCE] -> transfer id
    local args=(--json transfer --from "$1" --to "$2" --amount "$3" --currency EUR --owner "$RUN")
    [[ -z "${4:-}" ]] || args+=(--reference "$4")
    "$L" "${args[@]}" | jq -er .id
}
WALLET=$(acct "$RUN.user" user_wallet)
SHOP=$(acct "$RUN.shop" merchant)
DUE=$(acct "$RUN.clearing" due_to "{\"counterparty_region\":\"$RUN\"}")
REF='<b>"fish" & chips</b>'
BIG=$(pay "$WALLET" "$SHOP" 2500000 "$REF")
for _ in 1 2 3; do pay "$WALLET" "$SHOP" 950000 >/dev/null; done
pay "$WALLET" "$DUE" 1234 >/dev/null
pay "$WALLET" "$SHOP" 4200 >/dev/null
ok "data: accounts and transfers written in eu"

FROM=$(date -u -d '30 days ago' +%F)
TO=$(date -u -d tomorrow +%F)
report() { "$L" report regional --region eu --from "$FROM" --to "$TO" --threshold 1000000 "$@"; }

# ---------------------------------------------------------------- html
HTML="$W/r.html"
if report --format html --out "$HTML" 2>"$W/html.err"; then
    ok "html: written with exit 0"
else
    fail "html: written with exit 0" "$(cat "$W/html.err")"
fi
check "html: the file exists and is not empty" test -s "$HTML"
check "html: starts with <!DOCTYPE html>" grep -q '^<!DOCTYPE html>' "$HTML"
if grep -Eiq 'https?:|(src|href)[[:space:]]*=' "$HTML"; then
    fail "html: self-contained (no URL, no src/href)" "$(grep -Eio '.{0,40}(https?:|(src|href)[[:space:]]*=).{0,40}' "$HTML" | head -3)"
else
    ok "html: self-contained (no URL, no src/href)"
fi
if grep -qi '<script' "$HTML"; then fail "html: no script" "found <script"; else ok "html: no script"; fi
check "html: the reference is escaped" grep -qF '&lt;b&gt;&quot;fish&quot; &amp; chips&lt;/b&gt;' "$HTML"
if grep -qF "$REF" "$HTML"; then fail "html: no raw markup from the database" "found $REF"; else ok "html: no raw markup from the database"; fi

PNG="$W/r.png"
chromium_run --screenshot="$PNG" --window-size=1280,2000 --hide-scrollbars "file://$HTML" >"$W/shot.out" 2>"$W/shot.err" || true
if [[ -s "$PNG" ]]; then ok "chromium: screenshot produced"; else fail "chromium: screenshot produced" "$(tail -n 5 "$W/shot.err")"; fi
if [[ -s "$PNG" ]]; then
    # PNG signature, then the IHDR chunk: width and height, big-endian, at bytes 16..23.
    sig=$(od -An -tx1 -N8 "$PNG" | tr -d ' \n')
    dims=$(od -An -tu1 -j16 -N8 "$PNG" | awk '{printf "%d %d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}')
    size=$(stat -c %s "$PNG")
    if [[ "$sig" == 89504e470d0a1a0a && "$dims" == "1280 2000" && "$size" -gt 20000 ]]; then
        ok "chromium: screenshot is a 1280x2000 PNG of $size bytes"
    else
        fail "chromium: screenshot is a 1280x2000 PNG" "signature $sig, size ${dims:-?}, $size bytes"
    fi
fi

DOM="$W/r.dom"
chromium_run --enable-logging=stderr --v=0 --dump-dom "file://$HTML" >"$DOM" 2>"$W/dom.err" || true
errors=$(page_errors "$W/dom.err")
if [[ -z "$errors" ]]; then ok "chromium: the page logs no error"; else fail "chromium: the page logs no error" "$errors"; fi
for id in summary daily-volume large-transactions structuring-alerts cross-border residency; do
    check "chromium: the rendered DOM has section #$id" grep -q "id=\"$id\"" "$DOM"
done
check "chromium: the rendered DOM has chart bars" grep -q '<rect class="bar"' "$DOM"
check "chromium: the rendered DOM lists the large transfer" grep -q "$BIG" "$DOM"
check "chromium: the attestation passes" grep -q '<dd class="pass">PASS</dd>' "$DOM"

# ---------------------------------------------------------------- json
JSON="$W/r.json"
if report --format json >"$JSON" 2>"$W/json.err" && jq -e . "$JSON" >/dev/null; then
    ok "json: valid JSON, exit 0"
else
    fail "json: valid JSON, exit 0" "$(cat "$W/json.err")"
fi
check "json: region, period and attestation" jq_true --arg from "${FROM}T00:00:00.000000Z" \
    '.report == "regional_compliance" and .region == "eu" and .period.from == $from and .residency.attestation == "pass"' "$JSON"
check "json: the large transfer with its exact amount" jq_true --arg id "$BIG" --arg ref "$REF" \
    '[.large_transactions.items[] | select(.id == $id and .amount.minor == 2500000 and .amount.decimal == "25000.00" and .reference == $ref)] | length == 1' "$JSON"
check "json: the structuring alert of the wallet" jq_true --arg id "$WALLET" \
    '[.structuring_alerts.items[] | select(.account_id == $id and .count == 3 and .total.minor == 2850000)] | length == 1' "$JSON"
check "json: the cross-border outflow" jq_true --arg cp "$RUN" \
    '[.cross_border.flows[] | select(.counterparty_region == $cp and .direction == "out" and .count == 1 and .amount.minor == 1234)] | length == 1' "$JSON"
check "json: the period totals equal the sum of the days" jq_true \
    '. as $r | [$r.volume.totals[] | .currency as $c | .amount.minor == ([$r.volume.by_day[] | select(.currency == $c) | .amount.minor] | add)] | all' \
    "$JSON"

# ---------------------------------------------------------------- csv
CSV="$W/r.csv"
if report --format csv >"$CSV" 2>"$W/csv.err"; then ok "csv: exit 0"; else fail "csv: exit 0" "$(cat "$W/csv.err")"; fi
HEADER='section,name,value,day,currency,account_kind,type,counterparty_region,count,amount_minor,amount_decimal,row_id,created_at,debit_account_id,credit_account_id,owner,reference,first_at,last_at,region_code'
check "csv: the documented header" test "$(head -n 1 "$CSV" | tr -d '\r')" = "$HEADER"
lines=$(wc -l <"$CSV")
if ((lines > 25)); then ok "csv: $lines lines"; else fail "csv: more than 25 lines" "$lines lines"; fi
# Lines without quotes can be split on commas: each must have 20 fields.
bad=$(tr -d '\r' <"$CSV" | grep -v '"' | awk -F, 'NF != 20' | head -3)
if [[ -z "$bad" ]]; then ok "csv: 20 fields on every line"; else fail "csv: 20 fields on every line" "$bad"; fi
check "csv: the large transfer" grep -q "^large_transaction,.*,$BIG," "$CSV"
check "csv: the reference quoted (RFC 4180)" grep -qF '"<b>""fish"" & chips</b>"' "$CSV"
check "csv: the attestation" grep -q '^summary,residency_attestation,pass,' "$CSV"

# ---------------------------------------------------------------- usage
rc=0
report --format xml >/dev/null 2>&1 || rc=$?
check "usage: --format xml exits 2" test "$rc" -eq 2
rc=0
"$L" report regional --region eu --from 2024-01-01 --to 2025-06-01 >/dev/null 2>&1 || rc=$?
check "usage: a period over 366 days exits 2" test "$rc" -eq 2

SUMMARY_DONE=1
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
