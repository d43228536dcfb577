#!/usr/bin/env bash
# cluster.sh — run a local multi-region PostgreSQL 15 cluster for geoledger.
# Each region is its own server, reachable only over TCP on 127.0.0.1 with TLS
# (a development CA under DIR/ca) and scram-sha-256 passwords kept in mode-0600
# libpq passfiles under DIR/secrets. No trust, no Unix socket. See scripts/README.md.
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
LISTEN_ADDR=127.0.0.1
# The roles that get a password (a passfile line) in every region. The three
# application roles are created here, before the migrations (sql/0001_roles.sql
# creates them only if missing), so that none of them exists without a password.
ROLES=(postgres geoledger_service geoledger_recon geoledger_report)

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(dirname -- "$SCRIPT_DIR")

# Nothing this script writes (passfiles, keys, settings, logs) is for other users;
# the few files that must be readable (ledger.conf, ca.crt) are chmod'ed explicitly.
umask 077

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
          under DIR/REGION/data, listening only on $LISTEN_ADDR:PORT, with TLS
          (ssl = on, a certificate from the development CA in DIR/ca) and
          scram-sha-256 for every role (random passwords in the mode-0600
          passfile DIR/secrets/REGION.pgpass); then ensure database "$DBNAME"
          exists. Servers that are already running are left alone. Durability
          settings (fsync, synchronous_commit) stay on. A stopped cluster made
          by an older cluster.sh (trust on a Unix socket) is migrated; a
          running one is refused (stop it first).
  stop    Stop (fast) every region server under DIR; fine if none runs.
  status  Print whether each region under DIR is running or stopped.
  conf    Write a libconfig file for the geoledger tools to OUTFILE
          (sslmode=verify-full, passfile=...; no password in it).

When run as root, the servers run as postgres (initdb and postgres refuse to
run as root); DIR must then be reachable by postgres (e.g. under /tmp).

Environment: PG_BINDIR (default /usr/lib/postgresql/15/bin),
CLUSTER_EXTRA_SETTINGS (postgresql.conf lines appended to every region's settings).
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
# The region directories are handed to postgres (start_region); DIR/secrets
# (the passfiles) and DIR/ca stay with the invoking user, who runs the clients.
prepare_dir() {
    local dir=$1
    # Parents made here must stay traversable by postgres, whatever our umask.
    (umask 022 && mkdir -p -- "$dir") || die "cannot create $dir"
    if ((IS_ROOT)); then
        getent passwd postgres >/dev/null ||
            die "running as root but there is no 'postgres' user (install postgresql-15 or run as a normal user)"
        command -v runuser >/dev/null || die "runuser not found (util-linux)"
        chown postgres:postgres -- "$dir" || die "cannot chown $dir to postgres"
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

# ---------------------------------------------------------------- TLS, passwords, conninfo

# The development CA and its localhost server certificate (scripts/dev-ca.sh),
# one per cluster DIR, kept across starts. ca.crt is what clients verify with.
ensure_ca() {
    local dir=$1
    "$SCRIPT_DIR/dev-ca.sh" "$dir/ca" || die "could not make the development CA in $dir/ca"
    # Clients (any local user) need ca.crt; the keys stay 0600.
    chmod 0755 -- "$dir/ca"
    chmod 0644 -- "$dir/ca/ca.crt" "$dir/ca/server.crt"
}

# The server's own copy of its certificate and key: PostgreSQL refuses a key
# file that is not owned by the server's user or that group/others can read.
install_server_cert() {
    local dir=$1 rdir=$2
    local -a owner=()
    ((IS_ROOT)) && owner=(-o postgres -g postgres)
    install -m 0644 "${owner[@]}" -- "$dir/ca/server.crt" "$rdir/server.crt" ||
        die "cannot install the server certificate into $rdir"
    install -m 0600 "${owner[@]}" -- "$dir/ca/server.key" "$rdir/server.key" ||
        die "cannot install the server key into $rdir"
}

passfile_of() { printf '%s/secrets/%s.pgpass' "$1" "$2"; }

# password_of PASSFILE ROLE: the role's password, read with builtins only (never
# on a command line). Empty if the file or the line is missing.
password_of() {
    local file=$1 role=$2 u pw
    [[ -r "$file" ]] || return 0
    while IFS=: read -r _ _ _ u pw; do
        if [[ "$u" == "$role" ]]; then
            printf '%s' "$pw"
            return 0
        fi
    done <"$file"
}

# Does the region's passfile hold a password for every role?
passfile_complete() {
    local file=$1 role
    [[ -f "$file" ]] || return 1
    for role in "${ROLES[@]}"; do
        [[ -n "$(password_of "$file" "$role")" ]] || return 1
    done
}

# new_passfile DIR REGION: fresh random passwords for every role of the region
# in DIR/secrets/REGION.pgpass (libpq passfile format host:port:db:user:password,
# mode 0600, owned by the invoking user who runs the clients). The port and
# database fields are * so that the file stays right when a region moves port
# and covers admin tools (pg_dump, pg_isready, replication). Hex passwords need
# no escaping (no ':' or '\\').
new_passfile() {
    local dir=$1 region=$2 file tmp role pw
    file=$(passfile_of "$dir" "$region")
    mkdir -p -- "$dir/secrets" || die "cannot create $dir/secrets"
    chmod 0700 -- "$dir/secrets"
    tmp=$(mktemp -- "$file.XXXXXX") || die "cannot create a file in $dir/secrets"
    for role in "${ROLES[@]}"; do
        pw=$(openssl rand -hex 24) || die "openssl rand failed"
        [[ "$pw" =~ ^[0-9a-f]{48}$ ]] || die "openssl rand gave no password"
        printf 'localhost:*:*:%s:%s\n' "$role" "$pw" >>"$tmp"
    done
    chmod 0600 -- "$tmp"
    mv -f -- "$tmp" "$file" || die "cannot write $file"
}

# set_passwords REGION DATA PASSFILE: give every role its passfile password,
# creating the application roles if missing, in single-user mode (the server
# must be stopped): the SQL reaches postgres on stdin, never on a command line,
# through no socket and into no log (statements are not logged, not even on error).
set_passwords() {
    local region=$1 data=$2 file=$3 sql="" role pw out n
    for role in "${ROLES[@]}"; do
        pw=$(password_of "$file" "$role")
        [[ "$pw" =~ ^[0-9a-f]+$ ]] || die "region $region: no usable password for $role in $file"
        # Single-user mode reads one statement per line.
        sql+="DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') THEN CREATE ROLE $role LOGIN; END IF; END \$\$;"$'\n'
        sql+="ALTER ROLE $role WITH LOGIN PASSWORD '$pw';"$'\n'
    done
    sql+="SELECT count(*) AS scram_roles FROM pg_authid WHERE rolname IN ($(printf "'%s'," "${ROLES[@]}" | sed 's/,$//')) AND rolpassword LIKE 'SCRAM-SHA-256\$%';"$'\n'
    out=$(run_server "$PG_BINDIR/postgres" --single -D "$data" -c password_encryption=scram-sha-256 \
        -c log_statement=none -c log_min_error_statement=panic -c log_min_duration_statement=-1 \
        postgres <<<"$sql" 2>&1) || true
    n=$(sed -n 's/.*scram_roles = "\([0-9]*\)".*/\1/p' <<<"$out")
    if [[ "$n" != "${#ROLES[@]}" ]]; then
        # Never echo a password, even into our own error output.
        for role in "${ROLES[@]}"; do
            pw=$(password_of "$file" "$role")
            out=${out//"$pw"/"<password>"}
        done
        warn "region $region: setting the role passwords failed (single-user mode):"
        printf '%s\n' "$out" | grep -v '^backend>' | tail -n 20 >&2
        exit 1
    fi
}

# conninfo DIR REGION PORT USER [DBNAME]: how every client reaches a region:
# TCP to 127.0.0.1, the certificate verified against our CA for the name
# "localhost" (verify-full), the password from the region's passfile, and
# SCRAM with channel binding required (a server that skips authentication, or
# a man in the middle with another certificate, is refused by the client).
conninfo() {
    local dir=$1 region=$2 port=$3 user=$4 db=${5:-$DBNAME}
    printf 'host=localhost hostaddr=%s port=%s dbname=%s user=%s sslmode=verify-full sslrootcert=%s passfile=%s channel_binding=require' \
        "$LISTEN_ADDR" "$port" "$db" "$user" "$(conninfo_quote "$dir/ca/ca.crt")" \
        "$(conninfo_quote "$(passfile_of "$dir" "$region")")"
}

# Does something listen on 127.0.0.1:PORT? (bash's /dev/tcp: no client program,
# bounded: a loopback connect is answered at once.)
port_busy() {
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$LISTEN_ADDR" "$1" 2>/dev/null
}

# ---------------------------------------------------------------- start

port_taken() {
    die "region $1: port $2 on $LISTEN_ADDR is already in use (another cluster or server: ss -ltnp 'sport = :$2'); stop it or pick other ports (make run: REGIONS=..., make test: TEST_PG_PORT_BASE, CHAOS_PG_PORT_BASE)"
}

# pg_hba.conf, rewritten on every start: TLS and scram-sha-256 from 127.0.0.1
# only; every other connection (no TLS, another address, the Unix socket,
# which is off anyway) is rejected. No trust, no peer.
write_hba() {
    local data=$1 tmp="$1/pg_hba.conf.tmp"
    cat >"$tmp" <<'HBA'
# generated by scripts/cluster.sh on every start; do not edit
# TYPE    DATABASE     USER  ADDRESS        METHOD
hostssl   all          all   127.0.0.1/32   scram-sha-256
hostssl   replication  all   127.0.0.1/32   scram-sha-256
hostnossl all          all   all            reject
host      all          all   all            reject
local     all          all                  reject
HBA
    if ((IS_ROOT)); then chown postgres:postgres -- "$tmp"; fi
    mv -f -- "$tmp" "$data/pg_hba.conf"
}

# Write the settings include file and pg_hba.conf, and start the server with pg_ctl.
launch_server() {
    local region=$1 rdir=$2 port=$3
    local data="$rdir/data" log="$rdir/postgres.log"
    # Durability stays at the defaults: fsync and synchronous_commit on.
    local tmp="$data/$SETTINGS_FILE.tmp"
    {
        echo "# generated by scripts/cluster.sh on every start; do not edit"
        echo "listen_addresses = '$LISTEN_ADDR'"
        # No Unix socket: every client comes over TLS (libpq has no TLS on sockets).
        echo "unix_socket_directories = ''"
        echo "port = $port"
        echo "ssl = on"
        echo "ssl_cert_file = $(pg_conf_quote "$rdir/server.crt")"
        echo "ssl_key_file = $(pg_conf_quote "$rdir/server.key")"
        echo "ssl_min_protocol_version = 'TLSv1.2'"
        echo "password_encryption = 'scram-sha-256'"
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
    write_hba "$data"
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

    # With TCP listeners, two clusters cannot share a port (Unix sockets in
    # different directories could): say so plainly instead of a bind error.
    if port_busy "$port"; then port_taken "$region" "$port"; fi

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

# Listen address of a running server (postmaster.pid line 6): an older
# cluster.sh started its servers with listen_addresses = '' (Unix socket only).
running_listen() {
    sed -n 6p -- "$1/postmaster.pid" 2>/dev/null || true
}

start_region() {
    local dir=$1 region=$2 port=$3
    local rdir="$dir/$region" data="$dir/$region/data" log="$dir/$region/postgres.log"
    local pass need_passwords=0
    pass=$(passfile_of "$dir" "$region")

    if [[ ! -d "$rdir" ]]; then
        (umask 022 && mkdir -p -- "$rdir") || die "cannot create $rdir"
    fi
    if ((IS_ROOT)); then chown -R postgres:postgres -- "$rdir" || die "cannot chown $rdir to postgres"; fi

    # Before any initdb: a port taken by another cluster is the likely mistake.
    if ! is_running "$data" && port_busy "$port"; then port_taken "$region" "$port"; fi

    if [[ ! -f "$data/PG_VERSION" ]]; then
        if [[ -d "$data" ]] && [[ -n "$(ls -A -- "$data" 2>/dev/null)" ]]; then
            die "$data exists, is not empty and has no PG_VERSION; remove it or pick another DIR"
        fi
        echo "region $region: initdb $data" >&2
        # A new server: new passwords. initdb takes the superuser's from a file
        # that only postgres can read and that is gone right after.
        new_passfile "$dir" "$region"
        local pwfile="$rdir/initdb.pw"
        password_of "$pass" postgres >"$pwfile"
        if ((IS_ROOT)); then chown postgres:postgres -- "$pwfile"; fi
        if ! run_server "$PG_BINDIR/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
            -A scram-sha-256 -E UTF8 --locale=C >"$rdir/initdb.log" 2>&1; then
            rm -f -- "$pwfile"
            warn "initdb failed for region $region:"
            tail -n 30 -- "$rdir/initdb.log" >&2 || true
            exit 1
        fi
        rm -f -- "$pwfile"
        need_passwords=1
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
        local rp rl
        rp=$(running_port "$data")
        rl=$(running_listen "$data")
        if [[ -n "$rp" && "$rp" != "$port" ]]; then
            die "region $region is already running on port $rp, not $port; stop it first ($PROG stop $dir)"
        fi
        # A server started by an older cluster.sh: Unix socket and trust.
        if [[ "$rl" != "$LISTEN_ADDR" ]] || ! passfile_complete "$pass"; then
            die "region $region is running without TLS and passwords (made by an older cluster.sh: trust on a Unix socket). Stop it ('make stop', or '$PROG stop $dir') and start again: it will be migrated to TLS + scram-sha-256. Or remove it with 'make clean-var' (loses its data)."
        fi
    else
        if ! passfile_complete "$pass"; then
            # An existing data directory without our passfile: a cluster made
            # by an older cluster.sh (trust), or a lost passfile. New passwords.
            echo "region $region: no passwords in $pass: migrating to TLS + scram-sha-256 with new passwords" >&2
            new_passfile "$dir" "$region"
            need_passwords=1
        fi
        install_server_cert "$dir" "$rdir"
        # Passwords before the first start (launch_server then writes pg_hba.conf),
        # so that the server never accepts a connection with trust.
        if ((need_passwords)); then set_passwords "$region" "$data" "$pass"; fi
        launch_server "$region" "$rdir" "$port"
        started=1
    fi

    local admin
    admin=$(conninfo "$dir" "$region" "$port" postgres postgres)
    # Wait until the server accepts connections (pg_isready does not log in).
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$PG_BINDIR/pg_isready" -q -t 5 -d "$admin"; do
        if ! is_running "$data"; then
            if ((started)); then
                warn "region $region: server exited during startup"
                log_tail "$log"
                exit 1
            fi
            # It looked alive but was dying (e.g. just killed): start it.
            install_server_cert "$dir" "$rdir"
            launch_server "$region" "$rdir" "$port"
            started=1
            continue
        fi
        if ((SECONDS >= deadline)); then
            warn "region $region did not become ready within ${START_TIMEOUT}s ($LISTEN_ADDR:$port)"
            warn "if the server crashed and its PID was reused by another process, remove $data/postmaster.pid"
            log_tail "$log"
            exit 1
        fi
        sleep 0.2
    done

    # Ensure the geoledger database exists (as postgres, over TLS, with the passfile).
    local have
    if ! have=$(timeout "$CLIENT_TIMEOUT" "$PG_BINDIR/psql" -X -q -At -d "$admin" \
        -c "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'" 2>&1); then
        die "region $region: cannot query databases: $have"
    fi
    if [[ "$have" != 1 ]]; then
        timeout "$CLIENT_TIMEOUT" "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$admin" \
            -c "CREATE DATABASE $DBNAME" >/dev/null ||
            die "region $region: CREATE DATABASE $DBNAME failed"
    fi

    # New passwords: prove now that every role logs in with its passfile line,
    # rather than at the first ledgerctl call.
    if ((need_passwords)); then
        local role out
        for role in "${ROLES[@]:1}"; do
            if ! out=$(timeout "$CLIENT_TIMEOUT" "$PG_BINDIR/psql" -X -q -At \
                -d "$(conninfo "$dir" "$region" "$port" "$role")" -c "SELECT current_user" 2>&1) ||
                [[ "$out" != "$role" ]]; then
                die "region $region: $role cannot log in with $pass: $out"
            fi
        done
    fi

    echo "region $region: running, $LISTEN_ADDR:$port (TLS, scram-sha-256; passfile $pass)"
}

cmd_start() {
    (($# >= 2)) || die "start: usage: $PROG start DIR REGION:PORT [REGION:PORT ...]"
    need_bin initdb pg_ctl postgres pg_isready psql
    command -v openssl >/dev/null || die "openssl not found (scripts/deps.sh test)"
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
        [[ "$name" != ca && "$name" != secrets ]] || die "region name '$name' is reserved (DIR/$name holds the CA or the passfiles)"
        valid_port "$port" || die "bad port '$port' in '$spec' (1-65535)"
        port=$((10#$port))
        for seen in "${regions[@]}"; do
            [[ "$seen" != "$name" ]] || die "region '$name' given twice"
        done
        for seen in "${ports[@]}"; do
            [[ "$seen" != "$port" ]] || die "port $port given twice"
        done
        regions+=("$name")
        ports+=("$port")
    done

    prepare_dir "$dir"
    ensure_ca "$dir"
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
            echo "region $region: running, $LISTEN_ADDR:${port:-?}"
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

    local i n=${#names[@]} sep role key
    # The role of each key (indexes into ROLES: postgres is the admin role).
    local -a keys=(conninfo admin_conninfo recon_conninfo report_conninfo) key_role=(1 0 2 3)
    CONF_TMP=$(mktemp -- "${out}.XXXXXX") || die "cannot create a temporary file next to $out"
    trap 'rm -f -- "$CONF_TMP"' EXIT
    {
        echo "# generated by scripts/cluster.sh: TLS (verify-full against $dir/ca/ca.crt) and"
        echo "# scram-sha-256; the passwords are in the passfiles under $dir/secrets, never here."
        printf 'migrations_dir = "%s";\n' "$(libconfig_escape "$REPO_DIR/sql")"
        echo "regions = ("
        for ((i = 0; i < n; i++)); do
            printf '  { name = "%s"; code = %d;\n' "${names[$i]}" "${codes[$i]}"
            for key in 0 1 2 3; do
                role=${ROLES[${key_role[$key]}]}
                printf '    %s = "%s";\n' "${keys[$key]}" \
                    "$(libconfig_escape "$(conninfo "$dir" "${names[$i]}" "${ports[$i]}" "$role")")"
            done
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
