# lib.sh — what the shell tests share (sourced by api.sh, recon.sh, report.sh):
# one line per check, "ok NAME" or "FAIL NAME: DETAIL", counted for the
# "N passed, N failed" line each script ends with.
PASSED=0
FAILED=0
ok() {
    PASSED=$((PASSED + 1))
    echo "ok $1"
}
fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL $1: $2"
}
