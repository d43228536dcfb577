#!/usr/bin/env bash
# shellcheck disable=SC2034 # SUMMARY_DONE, CLEANUP_PIDS and CLEANUP_TENTHS are read by the exit trap of tests/lib.sh
# pgtls.sh — TLS and scram-sha-256 to PostgreSQL, end to end, on a one-region
# cluster of its own (so that it can swap the server's certificate), with ledgerd
# on it. Called by tests/run.sh after api.sh. Checks:
#   - cluster.sh start: passfiles mode 0600 in a 0700 directory, no password on any
#     command line while it runs (ps sampled every 20 ms: best effort);
#   - ledgerd's own connections, seen from the server (pg_stat_ssl joined with
#     pg_stat_activity): every one is TLS 1.2+;
#   - the server's log carries SQLSTATEs: a connection without TLS is 28000
#     (pg_hba.conf reject), a wrong password 28P01;
#   - a server whose certificate comes from another CA (scripts/dev-ca.sh DIR wrong)
#     is refused by the client (verify-full) during the handshake: the server never
#     sees a user, a database or a password; the right certificate back, it works;
#   - a second cluster on a taken port is refused with a clear message;
#   - no generated password in ledger.conf, the server and initdb logs, ledgerd's
#     log or cluster.sh's output; with TEST_DIR, none of the suite cluster's either.
# Environment: BUILD (default build), PGTLS_PG_PORT (default TEST_PG_PORT_BASE + 3,
# i.e. 5444; the first free port from there), TEST_DIR and GEOLEDGER_CONFIG (the
# suite's cluster, optional), PG_BINDIR. Ends with "N passed, N failed"; exit 1 on failure.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
# shellcheck source=tests/lib.sh
source tests/lib.sh

BUILD=${BUILD:-build}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PSQL=$PG_BINDIR/psql
LEDGERCTL=$BUILD/bin/ledgerctl
LEDGERD=$BUILD/bin/ledgerd
SUITE_DIR=${TEST_DIR:-}
SUITE_CONF=${GEOLEDGER_CONFIG:-}
for bin in "$LEDGERCTL" "$LEDGERD" "$PSQL"; do
    [[ -x "$bin" ]] || { echo "pgtls.sh: $bin not found (make build)" >&2; exit 2; }
done

W=$(mktemp -d /tmp/geoledger-pgtls.XXXXXX)
chmod 755 "$W" # the postgres user must reach $W/pg
DIR=$W/pg
CONF=$W/ledger.conf
LPID=""
PS_PID=""
exit_trap pgtls.sh
CLEANUP_TENTHS=100
on_exit() {
    [[ -z "$PS_PID" ]] || kill "$PS_PID" 2>/dev/null || true
    timeout 90 scripts/cluster.sh stop "$DIR" >/dev/null 2>&1 || echo "pgtls.sh: could not stop the cluster in $DIR" >&2
    timeout 30 scripts/cluster.sh stop "$W/other" >/dev/null 2>&1 || true
}

summary() {
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# ---------------------------------------------------------------- the cluster

BASE=${PGTLS_PG_PORT:-$((${TEST_PG_PORT_BASE:-5441} + 3))}
if ! PORT=$(free_port "$BASE"); then
    fail "cluster" "no free port from $BASE"
    summary
    exit 1
fi

# Sample every command line while cluster.sh starts the server (initdb, single-user
# mode, pg_ctl, psql): a password must not be on any of them.
(
    end=$((SECONDS + 120))
    while ((SECONDS < end)); do
        ps -eo args= >>"$W/ps.txt" 2>/dev/null || true
        sleep 0.02
    done
) &
PS_PID=$!
# log_connections and %e (the SQLSTATE) in the log prefix: what the server saw.
if ! CLUSTER_EXTRA_SETTINGS=$'log_connections = on\nlog_line_prefix = \'%m [%p] %e \'' \
    timeout 120 scripts/cluster.sh start "$DIR" "tls:$PORT" >"$W/cluster.out" 2>&1 ||
    ! scripts/cluster.sh conf "$DIR" "$CONF" "tls:$PORT:1" >>"$W/cluster.out" 2>&1 ||
    ! timeout 120 "$LEDGERCTL" --config "$CONF" migrate >>"$W/cluster.out" 2>&1; then
    fail "cluster" "could not start, configure or migrate: $(tail -n 5 "$W/cluster.out" | tr '\n' ' ')"
    summary
    exit 1
fi
kill "$PS_PID" 2>/dev/null || true
wait "$PS_PID" 2>/dev/null || true
PS_PID=""
ok "cluster: one region on 127.0.0.1:$PORT, TLS + scram-sha-256"

PASSFILE=$DIR/secrets/tls.pgpass
ADMIN=$(GEOLEDGER_CONFIG=$CONF conf_value tls admin_conninfo)
SERVICE=$(GEOLEDGER_CONFIG=$CONF conf_value tls conninfo)
LOG=$DIR/tls/postgres.log

mode=$(stat -c '%a' "$PASSFILE" 2>/dev/null || echo none)
dmode=$(stat -c '%a' "$DIR/secrets" 2>/dev/null || echo none)
if [[ "$mode" == 600 && "$dmode" == 700 && "$(wc -l <"$PASSFILE")" == 4 ]]; then
    ok "passfile: 4 roles, mode 0600 in a 0700 directory"
else
    fail "passfile" "mode $mode, directory $dmode, $(wc -l <"$PASSFILE" 2>/dev/null || echo 0) lines"
fi
if [[ "$ADMIN" == *sslmode=verify-full* && "$ADMIN" == *"passfile=$PASSFILE"* && "$ADMIN" != *password=* ]]; then
    ok "ledger.conf: verify-full and a passfile, no password"
else
    fail "ledger.conf" "admin_conninfo is: $ADMIN"
fi

# ---------------------------------------------------------------- ledgerd's connections

if ! API=$(free_port 18640); then API=""; fi
if [[ -n "$API" ]] && LEDGERD_LOG_LEVEL=debug scripts/ledgerd-conf.sh "$CONF" "$W/hs256.key" "$API" >/dev/null; then
    "$LEDGERD" --config "$CONF" >"$W/ledgerd.log" 2>&1 &
    LPID=$!
    CLEANUP_PIDS=("$LPID")
    up=0
    for _ in $(seq 100); do
        if curl -fs --cacert "$(dirname "$CONF")/ca/ca.crt" "https://localhost:$API/readyz" >/dev/null 2>&1; then
            up=1
            break
        fi
        sleep 0.1
    done
    if ((up)); then
        # A request that goes to the database, so that the read pool is used.
        token=$("$LEDGERCTL" --config "$CONF" token --sub pgtls.test)
        curl -s -o /dev/null --cacert "$(dirname "$CONF")/ca/ca.crt" -H "Authorization: Bearer $token" \
            -d '{"currency":"EUR","region":"tls"}' "https://localhost:$API/v1/accounts" || true
        got=$("$PSQL" -X -At -F ' ' -d "$ADMIN" -c "SELECT count(*), count(*) FILTER (WHERE s.ssl AND s.version IN ('TLSv1.2', 'TLSv1.3'))
              FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'geoledger_service'" 2>&1) || true
        read -r total tls <<<"$got"
        if [[ "$total" =~ ^[0-9]+$ ]] && ((total > 0)) && [[ "$total" == "$tls" ]]; then
            ok "ledgerd: all $total of its connections (geoledger_service) are TLS 1.2+ (pg_stat_ssl)"
        else
            fail "ledgerd: connections on TLS" "pg_stat_ssl: $got"
        fi
    else
        fail "ledgerd" "not ready on port $API: $(tail -n 3 "$W/ledgerd.log" | tr '\n' ' ')"
    fi
else
    fail "ledgerd" "no free port or no config"
fi

# ---------------------------------------------------------------- refusals the server logs

# attempt CONNINFO: a connection that must fail; prints libpq's message.
attempt() { timeout 20 "$PSQL" -X -At -d "$1" -c 'SELECT 1' 2>&1 && echo "ACCEPTED"; }

out=$(attempt "$SERVICE sslmode=disable channel_binding=disable") || true
if [[ "$out" != *ACCEPTED* && "$out" == *"no encryption"* ]] &&
    grep -q '28000 FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "geoledger_service", database "geoledger", no encryption' "$LOG"; then
    ok "no TLS: refused by pg_hba.conf, SQLSTATE 28000 in the server log"
else
    fail "no TLS" "client: $out; log: $(grep -c 'no encryption' "$LOG") matching lines"
fi

printf 'localhost:*:*:geoledger_service:wrong-%s\n' "$RANDOM" >"$W/wrong.pgpass"
chmod 600 "$W/wrong.pgpass"
out=$(attempt "$SERVICE passfile=$W/wrong.pgpass") || true
if [[ "$out" != *ACCEPTED* ]] && grep -q '28P01 FATAL:  password authentication failed for user "geoledger_service"' "$LOG"; then
    ok "wrong password: refused, SQLSTATE 28P01 in the server log"
else
    fail "wrong password" "client: $out"
fi

: >"$W/empty.pgpass"
chmod 600 "$W/empty.pgpass"
out=$(attempt "$SERVICE passfile=$W/empty.pgpass") || true
if [[ "$out" != *ACCEPTED* && "$out" == *"no password supplied"* ]]; then
    ok "no password: refused (fe_sendauth: no password supplied)"
else
    fail "no password" "client: $out"
fi

# ---------------------------------------------------------------- a server with another CA's certificate

PMPID=$(head -n 1 "$DIR/tls/data/postmaster.pid")
# swap_cert SRCDIR: the server's certificate and key from SRCDIR, then SIGHUP
# (ssl_cert_file is re-read on reload; new connections use the new one).
swap_cert() {
    install -m 0600 -o "$(stat -c %U "$DIR/tls")" -- "$1/server.key" "$DIR/tls/server.key"
    install -m 0644 -o "$(stat -c %U "$DIR/tls")" -- "$1/server.crt" "$DIR/tls/server.crt"
    kill -HUP "$PMPID"
}
scripts/dev-ca.sh "$DIR/ca" wrong
swap_cert "$DIR/ca/wrong"
marker=$(wc -l <"$LOG")
refused=""
for _ in $(seq 50); do # the reload is asynchronous: up to 5 s
    out=$(attempt "$ADMIN") || true
    if [[ "$out" == *"certificate verify failed"* ]]; then refused=$out; break; fi
    sleep 0.1
done
if [[ -n "$refused" ]]; then
    ok "wrong CA: the client refuses the server (certificate verify failed)"
else
    fail "wrong CA" "client: $out"
fi
# What the server saw of those attempts: handshakes the client aborted, and no
# startup packet (no user, no database, no password exchange).
after=$(tail -n +"$((marker + 1))" "$LOG")
if grep -q 'could not accept SSL connection: .*unknown ca' <<<"$after" &&
    ! grep -qE 'connection authorized|connection authenticated|user=postgres|password' <<<"$after"; then
    ok "wrong CA: the server saw only aborted handshakes (tlsv1 alert unknown ca), no user or password"
else
    fail "wrong CA: server side" "$(tail -n 5 <<<"$after" | tr '\n' ' ')"
fi
swap_cert "$DIR/ca"
back=0
for _ in $(seq 50); do
    if [[ "$(timeout 20 "$PSQL" -X -At -d "$ADMIN" -c 'SELECT 1' 2>/dev/null)" == 1 ]]; then back=1; break; fi
    sleep 0.1
done
if ((back)); then ok "right certificate back: connections work (the control)"; else fail "right certificate back" "still refused"; fi

# ---------------------------------------------------------------- a taken port

if out=$(timeout 60 scripts/cluster.sh start "$W/other" "x:$PORT" 2>&1); then
    fail "taken port" "a second cluster started on port $PORT"
elif [[ "$out" == *"port $PORT on 127.0.0.1 is already in use"* && ! -e "$W/other/x/data" ]]; then
    ok "taken port: refused before initdb, with the port named"
else
    fail "taken port" "$out"
fi

# ---------------------------------------------------------------- no password anywhere it should not be

[[ -z "$LPID" ]] || stop_pid "$LPID" 100 || true
LPID=""
CLEANUP_PIDS=()
# leaks PASSFILE FILE...: the files among FILE... that contain any password of PASSFILE.
leaks() {
    local pf=$1 pw f found=""
    shift
    while IFS=: read -r _ _ _ _ pw; do
        [[ -n "$pw" ]] || continue
        for f in "$@"; do
            [[ -e "$f" ]] || continue
            if grep -qF -- "$pw" "$f"; then found+=" $f"; fi
        done
    done <"$pf"
    printf '%s' "$found"
}
# The control: the search finds the passwords where they are.
if [[ -n "$(leaks "$PASSFILE" "$PASSFILE")" ]]; then
    ok "control: the password search finds the passwords in the passfile"
else
    fail "control" "no password found in $PASSFILE"
fi
files=("$CONF" "$W/ps.txt" "$LOG" "$DIR/tls/initdb.log" "$W/ledgerd.log" "$W/cluster.out")
found=$(leaks "$PASSFILE" "${files[@]}")
if [[ -z "$found" && -s "$W/ps.txt" && -s "$W/ledgerd.log" ]]; then
    ok "no password in ledger.conf, $(wc -l <"$W/ps.txt") sampled command lines, server/initdb/ledgerd logs, cluster.sh output"
else
    fail "password leak" "found in:${found:- (none, but ps.txt or ledgerd.log is empty)}"
fi
if [[ -n "$SUITE_DIR" && -d "$SUITE_DIR/secrets" ]]; then
    files=("$SUITE_CONF")
    for f in "$SUITE_DIR"/*/postgres.log "$SUITE_DIR"/*/initdb.log; do files+=("$f"); done
    found=""
    n=0
    for pf in "$SUITE_DIR"/secrets/*.pgpass; do
        n=$((n + 1))
        found+=$(leaks "$pf" "${files[@]}")
    done
    if ((n > 0)) && [[ -z "$found" ]]; then
        ok "suite cluster: no password of its $n regions in its ledger.conf or server logs"
    else
        fail "suite cluster: password leak" "$n passfiles; found in:$found"
    fi
fi

summary
