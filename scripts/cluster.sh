#!/usr/bin/env bash
# cluster.sh — run a local multi-region PostgreSQL 15 cluster for geoledger.
# Each region is its own server, reachable only through a Unix socket.
# See scripts/README.md.
set -euo pipefail

PROG=cluster.sh
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
START_TIMEOUT=30
# Every client call is bounded: a server that accepts connections but does not
# answer (stopped processes, a full disk) must not hang `make run`.
export PGCONNECT_TIMEOUT=10
CLIENT_TIMEOUT=60
DBNAME=geoledger
SETTINGS_FILE=geoledger.conf   # include file inside each data directory

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(dirname -- "$SCRIPT_DIR")

usage() {
    cat <<EOF
Usage:
  $PROG start  DIR REGION:PORT [REGION:PORT ...]
  $PROG stop   DIR
  $PROG status DIR
  $PROG conf   DIR OUTFILE REGION:PORT:CODE [REGION:PORT:CODE ...]
  $PROG --help

Manages a local multi-region PostgreSQL 15 cluster (one server per region).

  start   Initialise (initdb, first time only) and start each region's server
          under DIR/REGION/data, listening only on the Unix socket
          DIR/REGION/.s.PGSQL.PORT, then ensure database "$DBNAME" exists.
          Servers that are already running are left alone. Durability
          settings (fsync, synchronous_commit) stay on.
  stop    Stop (fast) every region server under DIR; fine if none runs.
  status  Print whether each region under DIR is running or stopped.
  conf    Write a libconfig file for the geoledger tools to OUTFILE.

When run as root, DIR is chowned to the postgres user and the servers run as
postgres (initdb and postgres refuse to run as root); DIR must then be
reachable by postgres (e.g. somewhere under /tmp).

Environment: PG_BINDIR (default /usr/lib/postgresql/15/bin).
EOF
}

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}

warn() {
    printf '%s: %s\n' "$PROG" "$*" >&2
}

# ---------------------------------------------------------------- helpers

IS_ROOT=0
if [[ $EUID -eq 0 ]]; then IS_ROOT=1; fi

# Run a server-side command (initdb, pg_ctl) as the user that owns the cluster.
# From / so that an unreadable cwd (e.g. /root) does not bother postgres.
run_server() {
    if ((IS_ROOT)); then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

need_bin() {
    local b
    for b in "$@"; do
        [[ -x "$PG_BINDIR/$b" ]] ||
            die "$PG_BINDIR/$b not found; install postgresql-15 (scripts/deps.sh test) or set PG_BINDIR"
    done
}

# Absolute, normalised path; the path need not exist. Symlinks are kept.
abspath() {
    local p=$1
    [[ -n "$p" ]] || die "empty directory argument"
    [[ "$p" == /* ]] || p="$PWD/$p"
    realpath -m -s -- "$p"
}

# Characters that cannot be carried safely through pg_ctl's shell command
# line, unix_socket_directories or the generated config file.
check_path_chars() {
    local p=$1
    case "$p" in
        *$'\n'* | *'"'* | *\\* | *'`'* | *'$'* | *,*)
            die "unsupported character in path '$p' (newline, \", \\, \`, \$ and , are not allowed)"
            ;;
    esac
}

valid_region() {
    [[ "$1" =~ ^[A-Za-z0-9_-]{1,15}$ ]]
}

valid_code() {
    [[ "$1" =~ ^[0-9]{1,3}$ ]] && ((10#$1 >= 1 && 10#$1 <= 255))
}

valid_port() {
    [[ "$1" =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535))
}

# Make sure the postgres user can use DIR; explain which component blocks it.
check_postgres_access() {
    local dir=$1 p="" comp
    local -a comps=()
    if runuser -u postgres -- test -d "$dir" -a -w "$dir" -a -x "$dir" 2>/dev/null; then
        return 0
    fi
    # Walk down from / to find the first directory postgres cannot traverse.
    IFS=/ read -r -a comps <<<"${dir#/}"
    for comp in "${comps[@]}"; do
        [[ -n "$comp" ]] || continue
        p="$p/$comp"
        if ! runuser -u postgres -- test -x "$p" 2>/dev/null; then
            die "the postgres user cannot reach $dir: directory '$p' is not traversable by postgres (mode $(stat -c %A -- "$p" 2>/dev/null || echo '?'), owner $(stat -c %U -- "$p" 2>/dev/null || echo '?')). When running as root the servers run as postgres; use a directory such as /tmp/geoledger-cluster, or grant o+x on '$p'."
        fi
    done
    die "the postgres user cannot write to $dir; use a directory such as /tmp/geoledger-cluster"
}

# Prepare DIR (create, and for root hand it to postgres).
prepare_dir() {
    local dir=$1
    mkdir -p -- "$dir" || die "cannot create $dir"
    if ((IS_ROOT)); then
        getent passwd postgres >/dev/null ||
            die "running as root but there is no 'postgres' user (install postgresql-15 or run as a normal user)"
        command -v runuser >/dev/null || die "runuser not found (util-linux)"
        chown -R postgres:postgres -- "$dir" || die "cannot chown $dir to postgres"
        check_postgres_access "$dir"
    else
        [[ -w "$dir" && -x "$dir" ]] || die "directory $dir is not writable by $(id -un)"
    fi
}

# Quote a value for postgresql.conf: single quotes, ' doubled.
pg_conf_quote() {
    printf "'%s'" "${1//\'/\'\'}"
}

# Is the server for data directory $1 running? (pg_ctl status: 0 running, 3 not, 4 no dir)
# A postmaster killed with SIGKILL can linger as a zombie until it is reaped;
# pg_ctl status still reports it as running, so check for that too.
is_running() {
    local data=$1
    [[ -f "$data/postmaster.pid" ]] || return 1
    run_server "$PG_BINDIR/pg_ctl" status -D "$data" >/dev/null 2>&1 || return 1
    ! postmaster_zombie "$data"
}

# Is the PID in postmaster.pid a dead-but-unreaped (zombie) process?
postmaster_zombie() {
    local data=$1 pid state
    pid=$(sed -n 1p -- "$data/postmaster.pid" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/stat" ]] || return 1
    state=$(sed -n 's/^.*) \([A-Za-z]\).*$/\1/p' -- "/proc/$pid/stat" 2>/dev/null || true)
    [[ "$state" == Z || "$state" == X ]]
}

# Port recorded in a running server's postmaster.pid (line 4).
running_port() {
    sed -n 4p -- "$1/postmaster.pid" 2>/dev/null || true
}

# Port configured in our settings include file.
configured_port() {
    sed -n "s/^port = \([0-9]*\)$/\1/p" -- "$1/$SETTINGS_FILE" 2>/dev/null || true
}

log_tail() {
    local log=$1
    if [[ -f "$log" ]]; then
        warn "last lines of $log:"
        tail -n 30 -- "$log" >&2 || true
    else
        warn "(no log at $log)"
    fi
}

# Regions present under DIR: every DIR/*/data with a PG_VERSION.
list_regions() {
    local dir=$1 d
    for d in "$dir"/*/data/PG_VERSION; do
        [[ -e "$d" ]] || continue
        d=${d%/data/PG_VERSION}
        printf '%s\n' "${d##*/}"
    done
}

# ---------------------------------------------------------------- start

# Write the settings include file and start the server with pg_ctl.
launch_server() {
    local region=$1 rdir=$2 port=$3
    local data="$rdir/data" log="$rdir/postgres.log"
    # Durability stays at the defaults: fsync and synchronous_commit on.
    local tmp="$data/$SETTINGS_FILE.tmp"
    {
        echo "# generated by scripts/cluster.sh on every start; do not edit"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = $(pg_conf_quote "$rdir")"
        echo "port = $port"
        echo "max_connections = 200"
        echo "shared_buffers = 256MB"
        echo "fsync = on"
        echo "synchronous_commit = on"
        echo "full_page_writes = on"
        # Extra tuning from the caller (bench/run.sh: checkpoint spacing); never durability.
        if [[ -n "${CLUSTER_EXTRA_SETTINGS:-}" ]]; then printf '%s\n' "$CLUSTER_EXTRA_SETTINGS"; fi
    } >"$tmp"
    if ((IS_ROOT)); then chown postgres:postgres -- "$tmp"; fi
    mv -f -- "$tmp" "$data/$SETTINGS_FILE"
    if [[ ! -e "$log" ]]; then
        : >"$log"
        if ((IS_ROOT)); then chown postgres:postgres -- "$log"; fi
    fi

    # A postmaster that was just killed may still be an unreaped zombie;
    # postgres would take its PID for a live server, so wait for the reap.
    local deadline=$((SECONDS + START_TIMEOUT))
    while postmaster_zombie "$data"; do
        if ((SECONDS >= deadline)); then
            die "region $region: the old postmaster (PID $(sed -n 1p -- "$data/postmaster.pid")) is a zombie that its parent has not reaped after ${START_TIMEOUT}s; try again later"
        fi
        sleep 0.2
    done

    # pg_ctl copes with a stale postmaster.pid left by a crash. Right after
    # a crash, orphaned backends may still hold the old shared memory
    # segment for a moment; retry in that case.
    local attempt=0
    while :; do
        attempt=$((attempt + 1))
        if run_server "$PG_BINDIR/pg_ctl" start -w -t "$START_TIMEOUT" -D "$data" -l "$log" \
            >/dev/null 2>"$rdir/pg_ctl.err"; then
            break
        fi
        if ((attempt < 10)) &&
            tail -n 20 -- "$log" 2>/dev/null | grep -q 'pre-existing shared memory block'; then
            sleep 1
            continue
        fi
        warn "could not start region $region (port $port):"
        cat -- "$rdir/pg_ctl.err" >&2 || true
        log_tail "$log"
        exit 1
    done
    rm -f -- "$rdir/pg_ctl.err"
}

start_region() {
    local dir=$1 region=$2 port=$3
    local rdir="$dir/$region" data="$dir/$region/data" log="$dir/$region/postgres.log"
    local sock="$rdir/.s.PGSQL.$port"

    if [[ ! -d "$rdir" ]]; then
        mkdir -p -- "$rdir" || die "cannot create $rdir"
        if ((IS_ROOT)); then chown postgres:postgres -- "$rdir"; fi
    fi

    if [[ ! -f "$data/PG_VERSION" ]]; then
        if [[ -d "$data" ]] && [[ -n "$(ls -A -- "$data" 2>/dev/null)" ]]; then
            die "$data exists, is not empty and has no PG_VERSION; remove it or pick another DIR"
        fi
        echo "region $region: initdb $data" >&2
        if ! run_server "$PG_BINDIR/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C \
            >"$rdir/initdb.log" 2>&1; then
            warn "initdb failed for region $region:"
            tail -n 30 -- "$rdir/initdb.log" >&2 || true
            exit 1
        fi
        # Our settings live in an include file, rewritten on every start.
        printf "\n# geoledger: settings managed by scripts/cluster.sh\ninclude_if_exists = '%s'\n" \
            "$SETTINGS_FILE" >>"$data/postgresql.conf"
    elif ! grep -q "^include_if_exists = '$SETTINGS_FILE'" -- "$data/postgresql.conf"; then
        printf "\n# geoledger: settings managed by scripts/cluster.sh\ninclude_if_exists = '%s'\n" \
            "$SETTINGS_FILE" >>"$data/postgresql.conf"
    fi
    local pgver
    pgver=$(cat -- "$data/PG_VERSION")
    [[ "$pgver" == 15 ]] || die "$data is a PostgreSQL $pgver cluster, expected 15"

    local started=0
    if is_running "$data"; then
        local rp
        rp=$(running_port "$data")
        if [[ -n "$rp" && "$rp" != "$port" ]]; then
            die "region $region is already running on port $rp, not $port; stop it first ($PROG stop $dir)"
        fi
    else
        launch_server "$region" "$rdir" "$port"
        started=1
    fi

    # Wait until the server accepts connections.
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$PG_BINDIR/pg_isready" -q -t 5 -h "$rdir" -p "$port" -U postgres -d postgres; do
        if ! is_running "$data"; then
            if ((started)); then
                warn "region $region: server exited during startup"
                log_tail "$log"
                exit 1
            fi
            # It looked alive but was dying (e.g. just killed): start it.
            launch_server "$region" "$rdir" "$port"
            started=1
            continue
        fi
        if ((SECONDS >= deadline)); then
            warn "region $region did not become ready within ${START_TIMEOUT}s (socket $sock)"
            warn "if the server crashed and its PID was reused by another process, remove $data/postmaster.pid"
            log_tail "$log"
            exit 1
        fi
        sleep 0.2
    done

    # Ensure the geoledger database exists.
    local have
    if ! have=$(timeout "$CLIENT_TIMEOUT" "$PG_BINDIR/psql" -X -q -At -h "$rdir" -p "$port" -U postgres -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'" 2>&1); then
        die "region $region: cannot query databases: $have"
    fi
    if [[ "$have" != 1 ]]; then
        timeout "$CLIENT_TIMEOUT" "$PG_BINDIR/createdb" -h "$rdir" -p "$port" -U postgres "$DBNAME" ||
            die "region $region: createdb $DBNAME failed"
    fi

    echo "region $region: running, socket $rdir port $port"
}

cmd_start() {
    (($# >= 2)) || die "start: usage: $PROG start DIR REGION:PORT [REGION:PORT ...]"
    need_bin initdb pg_ctl postgres pg_isready psql createdb
    local dir
    dir=$(abspath "$1")
    shift
    check_path_chars "$dir"

    local -a regions=() ports=()
    local spec name port seen
    for spec in "$@"; do
        [[ "$spec" =~ ^([^:]+):([^:]+)$ ]] || die "bad region spec '$spec' (want REGION:PORT)"
        name=${BASH_REMATCH[1]}
        port=${BASH_REMATCH[2]}
        valid_region "$name" || die "bad region name '$name' (1-15 of A-Z a-z 0-9 _ -)"
        valid_port "$port" || die "bad port '$port' in '$spec' (1-65535)"
        port=$((10#$port))
        for seen in "${regions[@]}"; do
            [[ "$seen" != "$name" ]] || die "region '$name' given twice"
        done
        regions+=("$name")
        ports+=("$port")
        # sun_path is 108 bytes including the terminating NUL.
        local sock="$dir/$name/.s.PGSQL.$port"
        if ((${#sock} > 107)); then
            die "socket path too long (${#sock} > 107 bytes): $sock; use a shorter DIR"
        fi
    done

    prepare_dir "$dir"
    local i
    for i in "${!regions[@]}"; do
        start_region "$dir" "${regions[$i]}" "${ports[$i]}"
    done
}

# ---------------------------------------------------------------- stop / status

# Stops one server, every wait bounded: a fast shutdown (15 s), then an
# immediate one (5 s), then SIGKILL to the postmaster and its children. A
# server whose processes were stopped (SIGSTOP, as the chaos tests do) is
# continued first, or no shutdown request would ever be read.
stop_server() {
    local data=$1 pid=""
    [[ -s "$data/postmaster.pid" ]] && pid=$(head -n 1 "$data/postmaster.pid")
    if [[ "$pid" =~ ^[0-9]+$ ]]; then
        kill -CONT "$pid" $(pgrep -P "$pid" 2>/dev/null) 2>/dev/null || true
    fi
    run_server "$PG_BINDIR/pg_ctl" stop -m fast -w -t 15 -D "$data" >/dev/null 2>&1 && return 0
    run_server "$PG_BINDIR/pg_ctl" stop -m immediate -w -t 5 -D "$data" >/dev/null 2>&1 && return 0
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    warn "server of $data ignored shutdown requests: killing it"
    kill -KILL "$pid" $(pgrep -P "$pid" 2>/dev/null) 2>/dev/null || true
    local i
    for i in $(seq 25); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    return 1
}

cmd_stop() {
    (($# == 1)) || die "stop: usage: $PROG stop DIR"
    need_bin pg_ctl
    local dir
    dir=$(abspath "$1")
    if [[ ! -d "$dir" ]]; then
        echo "nothing to stop: $dir does not exist"
        return 0
    fi
    local region data any=0 rc=0
    while IFS= read -r region; do
        any=1
        data="$dir/$region/data"
        if is_running "$data"; then
            if stop_server "$data"; then
                echo "region $region: stopped"
            else
                warn "region $region: could not be stopped; see $dir/$region/postgres.log"
                rc=1
            fi
        else
            echo "region $region: not running"
        fi
    done < <(list_regions "$dir")
    ((any)) || echo "no regions under $dir"
    return "$rc"
}

cmd_status() {
    (($# == 1)) || die "status: usage: $PROG status DIR"
    need_bin pg_ctl
    local dir
    dir=$(abspath "$1")
    if [[ ! -d "$dir" ]]; then
        echo "no regions under $dir (directory does not exist)"
        return 0
    fi
    local region data port any=0
    while IFS= read -r region; do
        any=1
        data="$dir/$region/data"
        if is_running "$data"; then
            port=$(running_port "$data")
            echo "region $region: running, socket $dir/$region port ${port:-?}"
        else
            port=$(configured_port "$data")
            echo "region $region: stopped${port:+ (port $port)}"
        fi
    done < <(list_regions "$dir")
    ((any)) || echo "no regions under $dir"
    return 0
}

# ---------------------------------------------------------------- conf

# Quote a value for a libpq conninfo string (only when needed).
conninfo_quote() {
    local v=$1
    if [[ -z "$v" || "$v" == *[[:space:]\'\\]* ]]; then
        v=${v//\\/\\\\}
        v=${v//\'/\\\'}
        printf "'%s'" "$v"
    else
        printf '%s' "$v"
    fi
}

# Escape a value for a libconfig double-quoted string.
libconfig_escape() {
    local v=$1
    v=${v//\\/\\\\}
    v=${v//\"/\\\"}
    printf '%s' "$v"
}

cmd_conf() {
    (($# >= 3)) || die "conf: usage: $PROG conf DIR OUTFILE REGION:PORT:CODE [...]"
    local dir out
    dir=$(abspath "$1")
    out=$2
    shift 2
    check_path_chars "$dir"
    [[ -n "$out" ]] || die "conf: empty OUTFILE"

    local -a names=() ports=() codes=()
    local spec name port code seen
    for spec in "$@"; do
        [[ "$spec" =~ ^([^:]+):([^:]+):([^:]+)$ ]] || die "bad region spec '$spec' (want REGION:PORT:CODE)"
        name=${BASH_REMATCH[1]}
        port=${BASH_REMATCH[2]}
        code=${BASH_REMATCH[3]}
        valid_region "$name" || die "bad region name '$name' (1-15 of A-Z a-z 0-9 _ -)"
        valid_port "$port" || die "bad port '$port' in '$spec' (1-65535)"
        valid_code "$code" ||
            die "bad region code '$code' in '$spec' (1-255)"
        port=$((10#$port))
        code=$((10#$code))
        for seen in "${names[@]}"; do
            [[ "$seen" != "$name" ]] || die "region '$name' given twice"
        done
        for seen in "${codes[@]}"; do
            [[ "$seen" != "$code" ]] || die "region code $code given twice"
        done
        names+=("$name")
        ports+=("$port")
        codes+=("$code")
    done

    local i n=${#names[@]} host base sep
    CONF_TMP=$(mktemp -- "${out}.XXXXXX") || die "cannot create a temporary file next to $out"
    trap 'rm -f -- "$CONF_TMP"' EXIT
    {
        echo "# generated by scripts/cluster.sh"
        printf 'migrations_dir = "%s";\n' "$(libconfig_escape "$REPO_DIR/sql")"
        echo "regions = ("
        for ((i = 0; i < n; i++)); do
            host=$(conninfo_quote "$dir/${names[$i]}")
            base="host=$host port=${ports[$i]} dbname=$DBNAME"
            printf '  { name = "%s"; code = %d;\n' "${names[$i]}" "${codes[$i]}"
            printf '    conninfo = "%s";\n' "$(libconfig_escape "$base user=geoledger_service")"
            printf '    admin_conninfo = "%s";\n' "$(libconfig_escape "$base user=postgres")"
            printf '    recon_conninfo = "%s";\n' "$(libconfig_escape "$base user=geoledger_recon")"
            printf '    report_conninfo = "%s";\n' "$(libconfig_escape "$base user=geoledger_report")"
            sep=","
            ((i < n - 1)) || sep=""
            printf '    large_transaction_threshold = 1000000; }%s\n' "$sep"
        done
        echo ");"
    } >"$CONF_TMP"
    chmod 0644 -- "$CONF_TMP"
    mv -f -- "$CONF_TMP" "$out" || die "cannot write $out"
    trap - EXIT
    echo "wrote $out (${n} region(s))"
}

# ---------------------------------------------------------------- main

main() {
    (($# >= 1)) || {
        usage >&2
        exit 2
    }
    local cmd=$1
    shift
    case "$cmd" in
        -h | --help | help) usage ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        status) cmd_status "$@" ;;
        conf) cmd_conf "$@" ;;
        *)
            warn "unknown command '$cmd'"
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
