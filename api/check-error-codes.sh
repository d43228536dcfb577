#!/usr/bin/env bash
# check-error-codes.sh — every error code ledgerd's C code can answer is in
# api/openapi.yaml's ErrorCode enum (a client generated from the spec rejects
# an answer whose code it does not know). The codes are read from the calls
# that make error responses (gl_respond_error, gl_job_respond_error, job_fail),
# the token refusals (jwt.c's reason names) and the client-certificate ones
# (tls.c); the ledger result codes are checked by tests/unit/test_response.c.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

from_calls=$(grep -ohE '(gl_respond_error|gl_job_respond_error)\([^,]+, [0-9]+,[[:space:]]*"[a-z_]+"' api/*.c |
    grep -oE '"[a-z_]+"$' | tr -d '"')
from_job_fail=$(grep -ohE 'job_fail\([^,]+, [0-9]+, "[a-z_]+", "[a-z_]+"' api/*.c | grep -oE '"[a-z_]+"$' | tr -d '"')
# (GL_JWT_OK's name "ok" is not an error)
from_jwt=$(grep -oE '^\s+\[GL_JWT_[A-Z_]+\] = "[a-z_]+"' auth/jwt.c | grep -v 'GL_JWT_OK\]' | grep -oE '"[a-z_]+"' | tr -d '"')
from_tls=$(grep -ohE '"client_certificate_[a-z_]+"' api/tls.c | tr -d '"')
emitted=$(printf '%s\n' "$from_calls" "$from_job_fail" "$from_jwt" "$from_tls" token_missing | sed '/^$/d' | sort -u)
enum=$(sed -n '/^    ErrorCode:/,/^    [A-Z]/p' api/openapi.yaml | grep -oE '^        - [a-z_]+$' | awk '{print $2}' | sort -u)
[[ -n "$enum" ]] || { echo "check-error-codes: no ErrorCode enum found in api/openapi.yaml" >&2; exit 1; }
missing=$(comm -23 <(echo "$emitted") <(echo "$enum"))
n=$(echo "$emitted" | wc -l)
if [[ -n "$missing" ]]; then
    echo "check-error-codes: codes ledgerd answers that api/openapi.yaml's ErrorCode does not list:" >&2
    echo "$missing" | sed 's/^/  /' >&2
    exit 1
fi
echo "check-error-codes: all $n codes found in the sources are in ErrorCode"
