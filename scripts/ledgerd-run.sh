#!/usr/bin/env bash
# Starts or stops the local ledgerd of `make run` (pid and log under DIR).
# Usage: scripts/ledgerd-run.sh start DIR LEDGERD PORT | stop DIR
#
# Every wait is bounded: a readiness probe has a time limit, and a ledgerd that
# has not exited STOP_TIMEOUT seconds after SIGTERM (its own shutdown deadline
# is shutdown_timeout_ms, 5 s by default) is killed.
set -euo pipefail
cmd=$1 dir=$2
pidfile=$dir/ledgerd.pid
STOP_TIMEOUT=${STOP_TIMEOUT:-15}
running() { [[ -s "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

stop() {
    running || { rm -f "$pidfile"; return 0; }
    local pid i
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "ledgerd: still running ${STOP_TIMEOUT}s after SIGTERM: killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
    echo "ledgerd: stopped"
}

case "$cmd" in
start)
    bin=$3 port=$4
    stop >/dev/null # pick up a new build
    # Detached from the caller's stdout/stderr so `make run` returns.
    nohup "$bin" --config "$dir/ledger.conf" </dev/null >>"$dir/ledgerd.log" 2>&1 &
    echo $! >"$pidfile"
    # HTTPS with the development CA of ledgerd-conf.sh; plain HTTP only when the
    # config says plain_http = true.
    if grep -Eq '^[[:space:]]*plain_http[[:space:]]*=[[:space:]]*true' "$dir/ledger.conf"; then
        url="http://127.0.0.1:$port/healthz" ca=()
    else
        url="https://localhost:$port/healthz" ca=(--cacert "$dir/ca/ca.crt")
    fi
    for _ in $(seq 50); do
        if curl -fs --max-time 1 "${ca[@]}" "$url" >/dev/null 2>&1; then
            echo "ledgerd: listening on ${url%/healthz} (log: $dir/ledgerd.log)"
            exit 0
        fi
        running || break
        sleep 0.1
    done
    echo "ledgerd: did not start; last log lines:" >&2
    tail -5 "$dir/ledgerd.log" >&2
    exit 1
    ;;
stop) stop ;;
*) echo "usage: $0 start DIR LEDGERD PORT | stop DIR" >&2; exit 2 ;;
esac
