# lib.sh — what the shell tests share (sourced by api.sh, recon.sh, report.sh):
# conf_value, admin_sql, and one line per check, "ok NAME" or "FAIL NAME: DETAIL", counted for the
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

# conf_value REGION KEY: a region's setting (e.g. admin_conninfo) from $GEOLEDGER_CONFIG.
conf_value() {
    awk -v r="$1" -v k="$2" '
        /(^|[ \t{;])name[ \t]*=[ \t]*"/ { s = $0; sub(/.*name[ \t]*=[ \t]*"/, "", s); sub(/".*/, "", s); cur = s }
        cur == r && $0 ~ ("(^|[ \t{;])" k "[ \t]*=[ \t]*\"") {
            s = $0; sub(".*(^|[ \t{;])" k "[ \t]*=[ \t]*\"", "", s); sub(/".*/, "", s); print s; exit
        }' "$GEOLEDGER_CONFIG"
}

# admin_sql SQL: runs SQL as region eu's admin (unaligned, tuples only); fails on error.
admin_sql() {
    "${PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql" -X -q -At -v ON_ERROR_STOP=1 "$(conf_value eu admin_conninfo)" -c "$1"
}
