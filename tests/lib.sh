# shellcheck shell=bash
# lib.sh — what the shell tests share (sourced by api.sh, tls.sh, pgtls.sh, zerotrust.sh, recon.sh, report.sh,
# httpfuzz.sh, chaos.sh, streams.sh, webhooks.sh, events.sh): conf_value, admin_sql, pg_ctl_as, restart_pg, free_port,
# stop_pid, and one line per check, "ok NAME" or "FAIL NAME: DETAIL", counted for the
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

# pg_ctl_as LIMIT_S ARGS...: pg_ctl as the cluster's owner (postgres when we are root), bounded.
pg_ctl_as() {
    local limit=$1
    shift
    if ((EUID == 0)); then
        (cd / && timeout "$limit" runuser -u postgres -- "${PG_BINDIR:-/usr/lib/postgresql/15/bin}/pg_ctl" "$@")
    else
        (cd / && timeout "$limit" "${PG_BINDIR:-/usr/lib/postgresql/15/bin}/pg_ctl" "$@")
    fi
}

# region_port REGION: the port of the region's server, from its admin_conninfo.
region_port() { conf_value "$1" admin_conninfo | grep -o 'port=[0-9]*' | cut -d= -f2; }

# restart_pg DIR REGION LOG: the region's server of the cluster in DIR stopped
# at once (pg_ctl -m immediate: every connection cut, what was in flight lost),
# 2 s down, started again by scripts/cluster.sh; returns once it accepts
# connections, non-zero when it does not within 90 s. Output into LOG.
restart_pg() {
    pg_ctl_as 60 -D "$1/$2/data" -m immediate stop -w -t 30 >"$3" 2>&1 || return 1
    sleep 2
    timeout 90 scripts/cluster.sh start "$1" "$2:$(region_port "$2")" >>"$3" 2>&1
}

# port_busy PORT: something listens on PORT on loopback.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port FROM: prints the first port of FROM..FROM+99 nothing listens on; fails if none.
free_port() {
    local p=$1
    for _ in $(seq 100); do
        port_busy "$p" || {
            echo "$p"
            return 0
        }
        p=$((p + 1))
    done
    return 1
}

# stop_pid PID TENTHS: SIGTERM, up to TENTHS x 0.1 s for it to end, then SIGKILL; reaps it
# (PID must be a child of this shell). Ends 0 if SIGTERM was enough.
stop_pid() {
    local pid=$1 rc=0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq "$2"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        rc=1
    fi
    wait "$pid" 2>/dev/null || true
    return "$rc"
}

# exit_trap NAME: on any exit, stop the pids in CLEANUP_PIDS (stop_pid,
# CLEANUP_TENTHS x 0.1 s each, default 5 s), call on_exit if the script
# defines it (what else it started: a cluster, a sampler; it may set W="" to
# keep $W), and when the script stopped early (set -e, a signal: SUMMARY_DONE
# is still 0) say so, call on_early_exit if the script defines it (e.g. to
# show a log), and still end with the "N passed, N failed" line; then remove
# $W (unless KEEP_W is 1: then it says where it is). The one exit trap of
# every shell test.
SUMMARY_DONE=0
CLEANUP_PIDS=()
CLEANUP_TENTHS=50
KEEP_W=0
exit_trap() {
    EXIT_NAME=$1
    trap exit_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
exit_cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${CLEANUP_PIDS[@]}"; do [[ -z "$p" ]] || stop_pid "$p" "$CLEANUP_TENTHS" || true; done
    if declare -F on_exit >/dev/null; then on_exit || true; fi
    if ((!SUMMARY_DONE)); then
        fail "$EXIT_NAME" "stopped early (exit status $rc) after the line above"
        if declare -F on_early_exit >/dev/null; then on_early_exit || true; fi
        echo "$PASSED passed, $FAILED failed"
        ((rc != 0)) || rc=1
    fi
    if [[ "$KEEP_W" == 1 && -n "${W:-}" ]]; then echo "$EXIT_NAME: kept $W"; elif [[ -n "${W:-}" ]]; then rm -rf -- "$W"; fi
    exit "$rc"
}

# require NAME TOOL...: every TOOL is there (a command on PATH, or, when it
# has a slash, an executable file); else says which is missing, ends with the
# summary line and exits 1. Called before exit_trap.
require() {
    local name=$1 t
    shift
    for t in "$@"; do
        if [[ "$t" == */* ]]; then
            [[ -x "$t" ]] && continue
            echo "$name: $t is not there (make build builds ours; scripts/deps.sh test installs the rest)" >&2
        else
            command -v "$t" >/dev/null 2>&1 && continue
            echo "$name: '$t' is not installed (scripts/deps.sh test installs it)" >&2
        fi
        echo "0 passed, 1 failed"
        exit 1
    done
}
