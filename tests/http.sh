# shellcheck shell=bash
# shellcheck disable=SC2034 # LAST_OK and ST are read by the scripts that source this
# http.sh — the curl + jq helpers of the shell tests that drive ledgerd
# (sourced after lib.sh by api.sh and zerotrust.sh). The caller sets W (a work
# dir), BASE (https://localhost:PORT), CA (the dev CA that signed ledgerd's
# certificate: $(dirname CONF)/ca/ca.crt, scripts/ledgerd-conf.sh) and CONF
# (the ledger.conf ledgerd reads).

# start_ledgerd LOG: starts $BUILD/bin/ledgerd --config $CONF in the background
# (its pid in LPID, and in CLEANUP_PIDS: stopped on exit) and waits up to 10 s
# for /healthz. Fails if it does not answer.
LPID=""
start_ledgerd() {
    "$BUILD/bin/ledgerd" --config "$CONF" >"$1" 2>&1 &
    LPID=$!
    CLEANUP_PIDS+=("$LPID")
    for _ in $(seq 100); do
        kill -0 "$LPID" 2>/dev/null || return 1
        [[ "$(curl -s --cacert "$CA" -o /dev/null -w '%{http_code}' --max-time 1 "$BASE/healthz" || true)" != 200 ]] ||
            return 0
        sleep 0.1
    done
    return 1
}

# req METHOD PATH [TOKEN] [BODY] [CURL ARGS...]: the status goes to ST, the
# body to $W/body, the headers to $W/hdr. An empty TOKEN sends none.
ST=""
req() {
    local m=$1 p=$2 tok=${3-} body=${4-}
    shift $(($# < 4 ? $# : 4))
    local args=(-s --cacert "$CA" -o "$W/body" -D "$W/hdr" -w '%{http_code}' -X "$m" --max-time 20)
    [[ -z "$tok" ]] || args+=(-H "Authorization: Bearer $tok")
    [[ -z "$body" ]] || args+=(-H 'Content-Type: application/json' --data-binary "$body")
    : >"$W/body" # curl writes no file for an empty body: no stale one either
    ST=$(curl "${args[@]}" "$@" "$BASE$p") || ST="curl_failed($?)"
    [[ -z "${CONTRACT_DIR:-}" ]] || contract_record "$m" "$p"
}

# contract_record METHOD PATH: keeps the last exchange (status line, headers,
# body) in $CONTRACT_DIR for tests/contract.sh, which checks every response the
# suites received against api/openapi.yaml. tests/run.sh sets CONTRACT_DIR;
# a suite run on its own records nothing.
CONTRACT_N=0
contract_record() {
    [[ "$ST" =~ ^[1-5][0-9][0-9]$ ]] || return 0 # no response: nothing to check
    CONTRACT_N=$((CONTRACT_N + 1))
    local id="$BASHPID.$CONTRACT_N" # BASHPID: req also runs in $(...) subshells, whose counts restart
    cp -- "$W/hdr" "$CONTRACT_DIR/$id.hdr"
    cp -- "$W/body" "$CONTRACT_DIR/$id.body"
    printf '%s\t%s\t%s\n' "$id" "$1" "$2" >>"$CONTRACT_DIR/index"
}
# post PATH TOKEN BODY KEY [CURL ARGS...]: a POST with an Idempotency-Key.
post() {
    local p=$1 tok=$2 body=$3 key=$4
    shift 4
    req POST "$p" "$tok" "$body" -H "Idempotency-Key: $key" "$@"
}

j() { jq -r "$@" "$W/body" 2>/dev/null || true; }
snippet() { head -c 300 "$W/body" 2>/dev/null | tr '\n' ' ' || true; }

type_of() {
    case $1 in
    400 | 413) echo invalid_request ;; 401) echo authentication ;; 403) echo permission ;;
    404) echo not_found ;; 409) echo conflict ;; 422) echo rejected ;; 429) echo rate_limited ;;
    503) echo unavailable ;; *) echo internal ;;
    esac
}

# expect NAME STATUS [CODE]: checks the last response; for an error also the
# error shape (the type of the status, the code, a message). Sets LAST_OK.
LAST_OK=0 # (read by the scripts that source this)
expect() {
    local name=$1 want=$2 code=${3-}
    LAST_OK=0
    if [[ "$ST" != "$want" ]]; then
        fail "$name" "status $ST, want $want; body: $(snippet)"
        return 0
    fi
    if ((want >= 400)); then
        local got_type got_code got_msg
        got_type=$(j '.error.type // empty')
        got_code=$(j '.error.code // empty')
        got_msg=$(j '.error.message // empty')
        if [[ "$got_type" != "$(type_of "$want")" || -z "$got_code" || -z "$got_msg" ]]; then
            fail "$name" "error shape: type '$got_type', code '$got_code', message '$got_msg'; body: $(snippet)"
            return 0
        fi
        if [[ -n "$code" && "$got_code" != "$code" ]]; then
            fail "$name" "code '$got_code', want '$code'; body: $(snippet)"
            return 0
        fi
    fi
    LAST_OK=1
    ok "$name"
}

# check NAME DETAIL CMD...: ok when CMD succeeds, else FAIL with DETAIL.
check() {
    local name=$1 detail=$2
    shift 2
    if "$@"; then ok "$name"; else fail "$name" "$detail"; fi
}
eq() { [[ -n "$2" && "$1" == "$2" ]]; }

# token SUB [SCOPE] [TTL]: a token from ledgerctl, signed with $CONF's key.
token() {
    local args=(--config "$CONF" token --sub "$1")
    [[ -z "${2-}" ]] || args+=(--scope "$2")
    [[ -z "${3-}" ]] || args+=(--ttl "$3")
    "$BUILD/bin/ledgerctl" "${args[@]}"
}

# transfer DEBIT CREDIT AMOUNT REF [EXTRA-JSON-OBJECT]: a transfer body in EUR.
transfer() {
    jq -cn --arg d "$1" --arg c "$2" --argjson a "$3" --arg r "$4" --argjson x "${5:-{\}}" \
        '{debit_account_id: $d, credit_account_id: $c, amount: $a, currency: "EUR", reference: $r} + $x'
}

# balances ID TOKEN: the account's balances as compact JSON ("GET ID: STATUS" if the read failed).
balances() {
    req GET "/v1/accounts/$1" "$2"
    if [[ "$ST" == 200 ]]; then j -c .balances; else echo "GET $1: $ST"; fi
}

# newkey: a fresh Idempotency-Key (call as $(newkey)).
newkey() { printf '%s-%s' "${RUN:-k}" "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"; }
