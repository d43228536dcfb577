#!/usr/bin/env bash
# The local Redis of `make run`, which ledgerd publishes each region's events
# to (api/README.md "Redis stream"): a redis-server under DIR, on 127.0.0.1
# only, with a password (DIR/redis.pass, mode 0600, in DIR/redis.conf, never
# on a command line) and appendonly on.
#
# Usage: scripts/redis-run.sh conf CONF DIR PORT   append a redis group to ledger.conf (unless it has one)
#        scripts/redis-run.sh start DIR PORT       start it (a running one is left alone)
#        scripts/redis-run.sh stop DIR             stop it (SHUTDOWN by SIGTERM; SIGKILL after STOP_TIMEOUT s)
#
# Every wait is bounded.
set -euo pipefail
cmd=${1:-}
STOP_TIMEOUT=${STOP_TIMEOUT:-10}

usage() {
    echo "usage: $0 conf CONF DIR PORT | start DIR PORT | stop DIR" >&2
    exit 2
}
running() { [[ -s "$1/redis.pid" ]] && kill -0 "$(cat "$1/redis.pid")" 2>/dev/null; }

# The password, made once.
password() {
    local dir=$1
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [[ ! -s "$dir/redis.pass" ]]; then
        (umask 077 && openssl rand -hex 24 >"$dir/redis.pass")
    fi
    chmod 600 "$dir/redis.pass"
}

conf() {
    local conf=$1 dir=$2 port=$3
    password "$dir"
    grep -Eq '^[[:space:]]*redis[[:space:]]*=' "$conf" && return 0
    dir=$(cd "$dir" && pwd)
    cat >>"$conf" <<CONF

# The Redis stream of each region's events (scripts/redis-run.sh starts this redis-server)
redis = { host = "127.0.0.1"; port = $port; password_file = "$dir/redis.pass";
          key_prefix = "geoledger:events:"; stream_maxlen = 1000000; };
CONF
}

start() {
    local dir=$1 port=$2
    command -v redis-server >/dev/null || { echo "redis-run.sh: redis-server is not installed (scripts/deps.sh test)" >&2; exit 1; }
    password "$dir"
    dir=$(cd "$dir" && pwd)
    if running "$dir"; then
        echo "redis: already running on 127.0.0.1:$port (pid $(cat "$dir/redis.pid"))"
        return 0
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { echo "redis-run.sh: port $port is taken" >&2; exit 1; }
    (
        umask 077
        cat >"$dir/redis.conf" <<CONF
bind 127.0.0.1
port $port
protected-mode yes
dir $dir
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
appendonly yes
appendfsync everysec
save ""
requirepass $(cat "$dir/redis.pass")
CONF
    )
    redis-server "$dir/redis.conf"
    for _ in $(seq 50); do
        if [[ "$(REDISCLI_AUTH=$(cat "$dir/redis.pass") redis-cli -p "$port" PING 2>/dev/null)" == PONG ]]; then
            echo "redis: listening on 127.0.0.1:$port (data and log: $dir)"
            return 0
        fi
        sleep 0.1
    done
    echo "redis: did not start; last log lines:" >&2
    tail -5 "$dir/redis.log" >&2 || true
    exit 1
}

stop() {
    local dir=$1 pid i
    running "$dir" || { rm -f "$dir/redis.pid"; return 0; }
    pid=$(cat "$dir/redis.pid")
    kill -TERM "$pid" 2>/dev/null || true # redis-server saves and exits on SIGTERM
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "redis: still running ${STOP_TIMEOUT}s after SIGTERM: killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/redis.pid"
    echo "redis: stopped"
}

case "$cmd" in
conf) (($# == 4)) || usage; conf "$2" "$3" "$4" ;;
start) (($# == 3)) || usage; start "$2" "$3" ;;
stop) (($# == 2)) || usage; [[ -d "$2" ]] || exit 0; stop "$2" ;;
*) usage ;;
esac
