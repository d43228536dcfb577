#!/usr/bin/env bash
# Starts or stops the local ledgerd of `make run` (pid and log under DIR).
# Usage: scripts/ledgerd-run.sh start DIR LEDGERD PORT | stop DIR
set -euo pipefail
cmd=$1 dir=$2
pidfile=$dir/ledgerd.pid
running() { [[ -s "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "$cmd" in
start)
    bin=$3 port=$4
    if running; then kill -TERM "$(cat "$pidfile")"; sleep 1; fi # pick up a new build
    # Detached from the caller's stdout/stderr so `make run` returns.
    nohup "$bin" --config "$dir/ledger.conf" </dev/null >>"$dir/ledgerd.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 50); do
        if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            echo "ledgerd: listening on 127.0.0.1:$port (log: $dir/ledgerd.log)"
            exit 0
        fi
        sleep 0.1
    done
    echo "ledgerd: did not start; last log lines:" >&2
    tail -5 "$dir/ledgerd.log" >&2
    exit 1
    ;;
stop)
    if running; then
        kill -TERM "$(cat "$pidfile")"
        echo "ledgerd: stopped"
    fi
    rm -f "$pidfile"
    ;;
*) echo "usage: $0 start DIR LEDGERD PORT | stop DIR" >&2; exit 2 ;;
esac
