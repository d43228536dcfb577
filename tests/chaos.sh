#!/usr/bin/env bash
# shellcheck disable=SC2034 # KEEP_W is read by the exit trap of tests/lib.sh
# chaos.sh — fault injection against ledgerd under a Jepsen-style bank workload
# (tests/tools/chaos_bank.c). Self-contained: it starts its own 3-region
# PostgreSQL cluster (eu, us, sg) and its own ledgerd in a temp dir, and stops
# and removes everything on every exit (a SIGSTOPped server is SIGCONTed first).
#
#   BUILD=build tests/chaos.sh            # needs make build (ledgerd, ledgerctl, tests/chaos_bank)
#
# Scenarios (each bounded; every wait has a limit):
#   a. kill -9 ledgerd every 3 s for 20 s (restarted at once) under the bank
#      workload; then the bank checks.
#   b. `pg_ctl -m immediate stop` of region us, 2 s down, started again, twice:
#      b1 under load on every region; b2 while us is idle (load on eu and sg
#      only; us's connections sit unused while its server dies), then writes
#      to us. Each time the first acknowledged us write must come <= 30 s after
#      pg_isready (target printed: 5 s); then, with no workload, ledgerd must
#      use < 0.3 s of CPU over 3 s (no spinning writers); the bank checks.
#   c. region sg hung for 15 s (SIGSTOP of its postmaster and every child)
#      under load on all regions: /healthz answers within 2 s during the hang,
#      the healthy regions keep >= 50% of their throughput with every attempt
#      < 5 s, sg's requests are answered (503) without a client timeout, and all
#      regions serve again within 30 s of SIGCONT; the bank checks. The stricter
#      targets (>= 90%, < 1 s) are printed, and asserted with CHAOS_STRICT=1.
#   d. SIGTERM to a ledgerd (shutdown_timeout_ms 1000) while region sg is hung
#      and a write to it is in flight: ledgerd exits 0 within 5 s and the write
#      is answered 503 region_unavailable.
# The workload: 8 clients posting transfers (client i serves region i mod 3,
# retrying the same request until a definitive answer) and 6 readers reading
# bank accounts (two per region: reads are what a hung region's database holds
# HTTP threads with). The bank checks: no account read below zero; every
# acknowledged transfer exists once with its key, no phantom or refused write;
# per region the bank + funding accounts sum to 0, the bank accounts still
# hold the initial funding, none is below zero, every balance equals its
# transfers; then `ledgerctl verify` exits 0.
#
# Environment: BUILD (default build), CHAOS_PG_PORT_BASE (default 5451: eu,
# us, sg on 5451-5453), CHAOS_PORT (default 18300: ledgerd on the first free
# port from there), CHAOS_CLIENTS (default 8), CHAOS_READERS (default 6),
# CHAOS_SOAK=1 (5x the durations), CHAOS_STRICT=1, CHAOS_ONLY (e.g. "bc": only
# those scenarios), CHAOS_KEEP=1 (keep the temp dir), PG_BINDIR.
# One line per check, `ok NAME` or `FAIL NAME: details`; figures on `  figure`
# lines; the last line is "N passed, N failed"; exit 1 on any failure.
set -uo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." || exit 1
REPO=$PWD
BUILD=${BUILD:-build}
[[ "$BUILD" == /* ]] || BUILD=$REPO/$BUILD
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
X=1
[[ "${CHAOS_SOAK:-0}" == 1 ]] && X=5
STRICT=${CHAOS_STRICT:-0}
ONLY=${CHAOS_ONLY:-abcd}
CLIENTS=${CHAOS_CLIENTS:-8}
READERS=${CHAOS_READERS:-6}
PG_BASE=${CHAOS_PG_PORT_BASE:-5451}
P1=$PG_BASE P2=$((PG_BASE + 1)) P3=$((PG_BASE + 2))
BANK=$BUILD/tests/chaos_bank
LEDGERD=$BUILD/bin/ledgerd
LEDGERCTL=$BUILD/bin/ledgerctl

# shellcheck source=lib.sh
source tests/lib.sh
summary() {
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
}

missing=""
for tool in curl jq timeout pgrep getconf; do command -v "$tool" >/dev/null 2>&1 || missing+=" $tool"; done
for bin in "$BANK" "$LEDGERD" "$LEDGERCTL" "$PG_BINDIR/pg_ctl" "$PG_BINDIR/pg_isready"; do
    [[ -x "$bin" ]] || missing+=" $bin"
done
if [[ -n "$missing" ]]; then
    fail "chaos.sh" "missing:$missing (make build; scripts/deps.sh test)"
    summary
    exit 1
fi
[[ "$CLIENTS" =~ ^[0-9]+$ && "$READERS" =~ ^[0-9]+$ && "$PG_BASE" =~ ^[0-9]+$ ]] ||
    { echo "chaos.sh: bad CHAOS_CLIENTS, CHAOS_READERS or CHAOS_PG_PORT_BASE" >&2; exit 2; }

W=$(mktemp -d /tmp/geoledger-chaos.XXXXXX)
chmod 755 "$W" # the postgres user must reach $W/pg
DIR=$W/pg
CONF=$W/ledger.conf
export GEOLEDGER_CONFIG=$CONF
RUN="r$$x$RANDOM"
LPID=""
BANK_PIDS=() # running chaos_bank runs
STOPPED=()
CLK_TCK=$(getconf CLK_TCK)

now_ms() { date +%s%3N; }
ms2s() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
sec() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; } # ms -> "1.23"
fig() { echo "  figure $*"; }
postmaster_pid() { sed -n 1p "$DIR/$1/data/postmaster.pid" 2>/dev/null; }

# SIGCONT every process of our cluster (whatever stopped it).
cont_cluster() {
    local pm
    ((${#STOPPED[@]} == 0)) || kill -CONT "${STOPPED[@]}" 2>/dev/null
    STOPPED=()
    for r in eu us sg; do
        pm=$(postmaster_pid "$r")
        [[ "$pm" =~ ^[0-9]+$ ]] || continue
        kill -CONT "$pm" 2>/dev/null
        # shellcheck disable=SC2046
        kill -CONT $(pgrep -P "$pm") 2>/dev/null
    done
}

stop_bank() { # SIGTERM every run; SIGKILL after 15 s
    ((${#BANK_PIDS[@]})) || return 0
    kill -TERM "${BANK_PIDS[@]}" 2>/dev/null
    for _ in $(seq 150); do
        local alive=0 p
        for p in "${BANK_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    kill -KILL "${BANK_PIDS[@]}" 2>/dev/null
    wait "${BANK_PIDS[@]}" 2>/dev/null
    BANK_PIDS=()
}

# stop_ledgerd: SIGTERM, SIGKILL after 10 s; sets LSTOP ("TERM in N s" or "KILL").
LSTOP=""
stop_ledgerd() {
    LSTOP=""
    [[ -n "$LPID" ]] || return 0
    if kill -0 "$LPID" 2>/dev/null; then
        local t0
        t0=$(now_ms)
        kill -TERM "$LPID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$LPID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$LPID" 2>/dev/null; then
            kill -KILL "$LPID" 2>/dev/null
            LSTOP="SIGKILL (SIGTERM ignored for 10 s)"
        else
            LSTOP="SIGTERM in $(sec $(($(now_ms) - t0))) s"
        fi
    fi
    wait "$LPID" 2>/dev/null
    LPID=""
}

force_stop_cluster() {
    local d
    for d in "$DIR"/*/data; do
        [[ -f "$d/postmaster.pid" ]] || continue
        pg_ctl_as 40 -D "$d" -m immediate stop -w -t 30 >/dev/null 2>&1
    done
}

show_log() {
    if [[ -s "$W/ledgerd.log" ]]; then
        echo "---- ledgerd log: the last 15 lines ----"
        tail -n 15 "$W/ledgerd.log" | cut -c1-400
        echo "----"
    fi
}

on_exit() {
    cont_cluster
    stop_bank
    stop_ledgerd
    if [[ -d "$DIR" ]]; then
        timeout 90 scripts/cluster.sh stop "$DIR" >/dev/null 2>&1 || force_stop_cluster
    fi
}
on_early_exit() { show_log; }
KEEP_W=${CHAOS_KEEP:-0}
exit_trap chaos.sh

# ---------------------------------------------------------------- cluster and ledgerd

echo "== cluster: eu:$P1 us:$P2 sg:$P3 in $DIR"
if ! timeout 180 scripts/cluster.sh start "$DIR" "eu:$P1" "us:$P2" "sg:$P3" >"$W/cluster.log" 2>&1 ||
    ! scripts/cluster.sh conf "$DIR" "$CONF" "eu:$P1:1" "us:$P2:2" "sg:$P3:3" >>"$W/cluster.log" 2>&1 ||
    ! timeout 120 "$LEDGERCTL" --config "$CONF" migrate >>"$W/cluster.log" 2>&1; then
    fail "cluster" "could not start, configure or migrate: $(tail -n 5 "$W/cluster.log" | tr '\n' ' ')"
    summary
    exit 1
fi
ok "cluster: 3 regions started and migrated"

if ! PORT=$(free_port "${CHAOS_PORT:-18300}"); then
    fail "ledgerd" "no free port from ${CHAOS_PORT:-18300}"
    summary
    exit 1
fi
# HTTPS with the development CA that ledgerd-conf.sh makes next to the config.
BASE="https://localhost:$PORT"
CA="$(dirname "$CONF")/ca/ca.crt"
# No rate limit (the workload is one principal per scenario); warn: no line per request.
cp "$CONF" "$W/cluster.conf" # before the ledgerd group: scenario d writes its own
LEDGERD_RATE_PER_S=0 LEDGERD_RATE_BURST=0 LEDGERD_LOG_LEVEL=warn scripts/ledgerd-conf.sh "$CONF" "$W/dev.key" "$PORT"

# wait_healthz LIMIT_S: /healthz (curl --max-time 1) until 200; HZ_MS = how long it took.
HZ_MS=0
wait_healthz() {
    local t0 code
    t0=$(now_ms)
    while :; do
        kill -0 "$LPID" 2>/dev/null || return 1
        code=$(curl -s --cacert "$CA" -o /dev/null -w '%{http_code}' --max-time 1 "$BASE/healthz" 2>/dev/null)
        if [[ "$code" == 200 ]]; then
            HZ_MS=$(($(now_ms) - t0))
            return 0
        fi
        (($(now_ms) - t0 < $1 * 1000)) || return 1
        sleep 0.05
    done
}

start_ledgerd() {
    "$LEDGERD" --config "$CONF" >>"$W/ledgerd.log" 2>&1 &
    LPID=$!
    wait_healthz 15
}

# ---------------------------------------------------------------- the workload

# bank_setup NAME: a principal, its token and its funded accounts in every region.
TOKEN=""
bank_setup() {
    local principal="chaos-$1-$RUN"
    RUNS=""
    TOKEN=$("$LEDGERCTL" --config "$CONF" token --sub "$principal" --ttl 7200 \
        --scope "accounts:read accounts:write accounts:issue transfers:read transfers:write") || return 1
    timeout 90 "$BANK" setup --port "$PORT" --cacert "$CA" --token "$TOKEN" --principal "$principal" --state "$W/$1.state" \
        --regions eu,us,sg --accounts 5 --fund 100000 >"$W/$1.setup.log" 2>&1
}

# bank_start NAME RUN SECONDS [REGIONS]: a run of NAME's workload in the background,
# its files $W/RUN.*; CLIENTS and READERS are per 3 regions. Ended by stop_bank
# (SIGTERM: requests in flight become "unknown") or by its own end.
RUNS="" # the runs of the current scenario, for bank_checks
bank_start() {
    local regions=${4:-eu,us,sg} n c
    n=$(tr ',' '\n' <<<"$regions" | wc -l)
    c=$((CLIENTS * n / 3))
    ((c > 0)) || c=1
    timeout -k 5 $(($3 + 30)) "$BANK" run --port "$PORT" --cacert "$CA" --token "$TOKEN" --state "$W/$1.state" --seconds "$3" \
        --regions "$regions" --clients "$c" --readers $((READERS * n / 3)) --acks "$W/$2.acks" \
        --series "$W/$2.series" --unknown "$W/$2.unknown" --seed "$RANDOM" >"$W/$2.run.log" 2>&1 &
    BANK_PIDS+=($!)
    RUNS+=" $2"
}
bank_alive() {
    local p
    for p in "${BANK_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done
    return 1
}
bank_wait() { # every run to its end (each is bounded by the timeout around it)
    ((${#BANK_PIDS[@]} == 0)) || wait "${BANK_PIDS[@]}" 2>/dev/null
    BANK_PIDS=()
}

count_lines() { # FILE [PATTERN]
    if [[ ! -f "$1" ]]; then echo 0; elif [[ -n "${2-}" ]]; then grep -c -- "$2" "$1"; else wc -l <"$1"; fi
}

bank_figures() { # RUN
    sed -n "s/^  region/  figure $1: region/p" "$W/$1.run.log"
    fig "$1: acknowledged $(count_lines "$W/$1.acks"), unknown (in flight at the end) $(count_lines "$W/$1.unknown" '"status":"unknown"'), refused $(count_lines "$W/$1.unknown" '"status":"refused"')"
}

# bank_checks NAME: chaos_bank check over the acks of every run of NAME on every
# region's database, the reads of every run, then ledgerctl verify.
bank_checks() {
    local out rc r bad="" n
    : >"$W/$1.all.acks"
    : >"$W/$1.all.unknown"
    for r in $RUNS; do
        cat "$W/$r.acks" >>"$W/$1.all.acks" 2>/dev/null
        cat "$W/$r.unknown" >>"$W/$1.all.unknown" 2>/dev/null
        n=$(sed -n 's/^chaos_bank run: .* bad-reads \([0-9]*\)$/\1/p' "$W/$r.run.log" 2>/dev/null)
        [[ "$n" == 0 ]] || bad+=" $r: ${n:-no summary from chaos_bank run} $(grep -m3 'BAD READ' "$W/$r.run.log" | tr '\n' ' ')"
    done
    out=$(timeout 120 "$BANK" check --state "$W/$1.state" --acks "$W/$1.all.acks" --unknown "$W/$1.all.unknown" \
        --db "eu=$(conf_value eu admin_conninfo)" --db "us=$(conf_value us admin_conninfo)" \
        --db "sg=$(conf_value sg admin_conninfo)" 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed 's/^/    /'
    if ((rc == 0)); then
        ok "$1: bank checks (acknowledged exactly once, no phantom or refused write, money conserved, no overdraft)"
    else
        fail "$1: bank checks" "chaos_bank check exit status $rc (see the lines above)"
    fi
    if [[ -z "$bad" ]]; then ok "$1: no account read below zero"; else fail "$1: account reads" "bad reads:$bad"; fi
    out=$(timeout 120 "$LEDGERCTL" --config "$CONF" verify 2>&1)
    rc=$?
    if ((rc == 0)); then ok "$1: ledgerctl verify"; else fail "$1: ledgerctl verify" "exit $rc: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"; fi
}

# stats RUN FROM_MS TO_MS: one JSON line per region for the whole seconds inside the window.
stats() { "$BANK" stats --series "$W/$1.series" --from "$(ms2s "$2")" --to "$(ms2s "$3")"; }
# field STATS REGION FIELD ("n/a" when the region has no second in the window)
field() {
    local v
    v=$(jq -r --arg r "$2" --arg f "$3" 'select(.region == $r) | .[$f]' <<<"$1")
    echo "${v:-n/a}"
}
fle() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a ~ /^[0-9.]+$/ && a + 0 <= b + 0) }'; } # a <= b
flt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a ~ /^[0-9.]+$/ && a + 0 < b + 0) }'; } # a < b
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }

# The start (epoch s) of the first second with an acknowledged write of REGION ending after AFTER_MS.
series_ack_after() { # RUN REGION AFTER_MS
    jq -r --arg r "$2" --argjson t "$(ms2s "$3")" 'select(.region == $r and .acked > 0 and .ts + 1 > $t) | .ts' \
        "$W/$1.series" 2>/dev/null | head -n 1
}
# wait_ack_after RUN REGION AFTER_MS LIMIT_S: 0 once REGION acknowledged a write after AFTER_MS.
wait_ack_after() {
    local deadline=$(($(now_ms) + $4 * 1000))
    while (($(now_ms) < deadline)); do
        [[ -n "$(series_ack_after "$1" "$2" "$3")" ]] && return 0
        bank_alive || break
        sleep 0.5
    done
    [[ -n "$(series_ack_after "$1" "$2" "$3")" ]]
}
# first_ack_ms RUN REGION AFTER_MS: the exact time (epoch ms) of the first acknowledgement after AFTER_MS.
first_ack_ms() {
    jq -r --arg r "$2" --argjson t "$3" 'select(.region == $r and .t_ms > $t) | .t_ms' "$W/$1.acks" 2>/dev/null |
        sort -n | head -n 1
}

cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; } # utime + stime

fresh_ledgerd() {
    stop_ledgerd
    [[ -z "$LSTOP" ]] || fig "$1: the previous ledgerd stopped by $LSTOP"
    if start_ledgerd; then return 0; fi
    fail "$1: ledgerd start" "no /healthz within 15 s"
    show_log
    return 1
}

# ---------------------------------------------------------------- a. kill -9 ledgerd

scenario_a() {
    local dur=$((20 * X)) t0 kills=0 max_hz=0 down=0 acked
    echo "== a: kill -9 ledgerd every 3 s for ${dur} s under the bank workload"
    fresh_ledgerd a || return
    if ! bank_setup a; then
        fail "a: setup" "$(tail -n 3 "$W/a.setup.log" | tr '\n' ' ')"
        return
    fi
    bank_start a a $((dur + 6))
    t0=$(now_ms)
    while (($(now_ms) - t0 + 3000 <= dur * 1000)); do
        sleep 3
        kill -KILL "$LPID" 2>/dev/null
        wait "$LPID" 2>/dev/null
        kills=$((kills + 1))
        "$LEDGERD" --config "$CONF" >>"$W/ledgerd.log" 2>&1 &
        LPID=$!
        if ! wait_healthz 15; then
            down=1
            break
        fi
        ((HZ_MS > max_hz)) && max_hz=$HZ_MS
    done
    if ((down)); then
        fail "a: ledgerd restarts after kill -9" "no /healthz within 15 s after kill $kills"
        show_log
        stop_bank
    else
        ok "a: ledgerd killed $kills times, back on /healthz each time (slowest $(sec "$max_hz") s)"
        bank_wait
    fi
    bank_figures a
    fig "a: acknowledged by a replay (Idempotent-Replayed) $(count_lines "$W/a.acks" '"replayed":true'), after more than one attempt $(grep -vc '"attempts":1,' "$W/a.acks")"
    acked=$(count_lines "$W/a.acks")
    if ((acked > 0)); then ok "a: $acked transfers acknowledged across the kills"; else fail "a: workload" "nothing acknowledged"; fi
    bank_checks a
}

# ---------------------------------------------------------------- b. immediate PostgreSQL restart

# restart_region REGION PORT TAG: pg_ctl -m immediate stop, 2 s down, cluster.sh start;
# sets T_STOP and T_BACK (epoch ms; T_BACK = the first pg_isready ok). Returns 1 on failure.
T_STOP=0
T_BACK=0
restart_region() {
    local R=$1 port=$2 cpid rc
    T_STOP=$(now_ms)
    if ! pg_ctl_as 60 -D "$DIR/$R/data" -m immediate stop -w -t 30 >"$W/$3.stop.log" 2>&1; then
        fail "$3: immediate stop of $R" "$(tail -n 3 "$W/$3.stop.log" | tr '\n' ' ')"
        return 1
    fi
    sleep 2
    timeout 90 scripts/cluster.sh start "$DIR" "$R:$port" >"$W/$3.start.log" 2>&1 &
    cpid=$!
    T_BACK=0
    for _ in $(seq 600); do # at most ~60 s, and no longer than cluster.sh runs
        if "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1; then
            T_BACK=$(now_ms)
            break
        fi
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    wait "$cpid"
    rc=$?
    if ((T_BACK == 0 || rc != 0)); then
        fail "$3: $R started again" "cluster.sh start exit $rc: $(tail -n 3 "$W/$3.start.log" | tr '\n' ' ')"
        return 1
    fi
    fig "$3: $R down $(sec $((T_BACK - T_STOP))) s (immediate stop, 2 s, start, pg_isready ok)"
}

# recovery_check TAG RUN REGION: the first acknowledged write of REGION after T_BACK; <= 30 s.
recovery_check() {
    local first rec
    first=$(first_ack_ms "$2" "$3" "$T_BACK")
    if [[ -n "$first" ]]; then
        rec=$((first - T_BACK))
        fig "$1: first acknowledged $3 write $(sec "$rec") s after pg_isready (target <= 5 s)"
        if ((rec <= 30000)); then
            ok "$1: $3 serves writes again $(sec "$rec") s after its restart (<= 30 s)"
            return 0
        fi
        fail "$1: $3 serves writes again within 30 s of its restart" "first write after $(sec "$rec") s"
    else
        fig "$1: no acknowledged $3 write in the $(sec $(($(now_ms) - T_BACK))) s after pg_isready (target <= 5 s)"
        fail "$1: $3 serves writes again within 30 s of its restart" "none"
    fi
    return 1
}

scenario_b() {
    local R=us port=$P2 warm=$((4 * X)) post=$((3 * X)) sb sa r c1 c2 cpu recovered=0
    echo "== b: pg_ctl -m immediate stop of region $R, 2 s down, started again: under load (b1), then while $R is idle (b2)"
    fresh_ledgerd b || return
    if ! bank_setup b; then
        fail "b: setup" "$(tail -n 3 "$W/b.setup.log" | tr '\n' ' ')"
        return
    fi
    # b1: under load on every region, us included
    bank_start b b1 $((warm + 2 + 60 + 30 + post))
    sleep "$warm"
    if restart_region "$R" "$port" b1; then
        wait_ack_after b1 "$R" "$T_BACK" 30 && sleep "$post"
        stop_bank
        bank_figures b1
        recovery_check b1 b1 "$R" && recovered=1
        if kill -0 "$LPID" 2>/dev/null; then # a figure; the assertion comes after b2
            c1=$(cpu_ticks "$LPID")
            sleep 2
            c2=$(cpu_ticks "$LPID")
            fig "b1: ledgerd CPU over 2 s idle after the first restart: $(awk -v a="$c1" -v b="$c2" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }') s"
        fi
        sb=$(stats b1 $((T_STOP - warm * 1000 + 1000)) "$T_STOP")
        sa=$(stats b1 "$T_STOP" "$T_BACK")
        for r in eu us sg; do
            fig "b1: $r throughput before $(field "$sb" "$r" rate)/s, while $R was down $(field "$sa" "$r" rate)/s (503 $(field "$sa" "$r" e503), client timeouts $(field "$sa" "$r" timeouts))"
        done
    else
        stop_bank
    fi
    # b2: us idle (its writers' and readers' connections unused) while its server
    # restarts, eu and sg under load; then writes to us again
    if ((recovered)); then
        bank_start b b2o $((2 + 2 + 60 + 30 + post + 5)) eu,sg
        sleep 2
        if restart_region "$R" "$port" b2; then
            bank_start b b2u $((30 + post)) "$R"
            wait_ack_after b2u "$R" "$T_BACK" 30 && sleep "$post"
            stop_bank
            bank_figures b2o
            bank_figures b2u
            recovery_check b2 b2u "$R"
        else
            stop_bank
        fi
    else
        fig "b2: not run ($R did not recover after b1)"
    fi
    fig "b: /readyz after the runs: $(curl -s --cacert "$CA" --max-time 2 "$BASE/readyz" | tr -d '\n' | cut -c1-300)"
    # no spinning: the workload is stopped, ledgerd should be idle
    sleep 1
    if ! kill -0 "$LPID" 2>/dev/null; then
        fail "b: ledgerd idle after the restarts" "ledgerd is not running"
    else
        c1=$(cpu_ticks "$LPID")
        sleep 3
        c2=$(cpu_ticks "$LPID")
        cpu=$(awk -v a="$c1" -v b="$c2" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
        fig "b: ledgerd CPU over 3 s idle after the restarts: $cpu s"
        if flt "$cpu" 0.3; then
            ok "b: ledgerd idle after the restarts (CPU $cpu s over 3 s < 0.3 s)"
        else
            fail "b: ledgerd idle after the restarts" "ledgerd used $cpu s of CPU over 3 s with no requests (threads spinning)"
        fi
    fi
    bank_checks b
}

# ---------------------------------------------------------------- c. one region hung

hang_region() { # REGION: SIGSTOP its postmaster, then every child (the postmaster forks no more)
    local pm kids
    pm=$(postmaster_pid "$1")
    [[ "$pm" =~ ^[0-9]+$ ]] || return 1
    kill -STOP "$pm" || return 1
    STOPPED=("$pm")
    kids=$(pgrep -P "$pm")
    # shellcheck disable=SC2206
    STOPPED+=($kids)
    # shellcheck disable=SC2086
    [[ -z "$kids" ]] || kill -STOP $kids
}

scenario_c() {
    local R=sg warm=$((5 * X)) hang=$((15 * X)) post=$((8 * X)) t_load t_hang t_cont t_rec t_end i target code dt
    local probes="" probe_bad=0 probe_max=0 ready_mid=""
    echo "== c: region $R hung for ${hang} s (SIGSTOP) under load on all regions"
    fresh_ledgerd c || return
    if ! bank_setup c; then
        fail "c: setup" "$(tail -n 3 "$W/c.setup.log" | tr '\n' ' ')"
        return
    fi
    bank_start c c $((warm + hang + 30 + post + 10))
    t_load=$(now_ms)
    sleep "$warm"
    t_hang=$(now_ms)
    if ! hang_region "$R"; then
        fail "c: hang $R" "no postmaster pid"
        stop_bank
        return
    fi
    fig "c: stopped $R's postmaster and ${#STOPPED[@]} processes in all"
    for i in 1 2 3 4 5; do
        target=$((t_hang + i * hang * 1000 / 6))
        while (($(now_ms) < target)); do sleep 0.1; done
        local t
        t=$(now_ms)
        code=$(curl -s --cacert "$CA" -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/healthz" 2>/dev/null)
        dt=$(($(now_ms) - t))
        probes+=" ${code:-none}/$(sec "$dt")s"
        [[ "$code" == 200 ]] || probe_bad=$((probe_bad + 1))
        ((dt > probe_max)) && probe_max=$dt
        if ((i == 3)); then ready_mid=$(curl -s --cacert "$CA" --max-time 2 "$BASE/readyz" 2>/dev/null | tr -d '\n' | cut -c1-200); fi
    done
    while (($(now_ms) < t_hang + hang * 1000)); do sleep 0.1; done
    t_cont=$(now_ms)
    cont_cluster
    fig "c: /healthz during the hang (status/time):$probes"
    fig "c: /readyz in the middle of the hang: ${ready_mid:-no answer within 2 s}"
    if ((probe_bad == 0)); then ok "c: /healthz answered 200 within 2 s during the hang (5 probes, slowest $(sec "$probe_max") s)"; else fail "c: /healthz within 2 s during the hang" "$probe_bad of 5 probes failed:$probes"; fi

    local all_back=1 r
    for r in eu us sg; do
        wait_ack_after c "$r" "$t_cont" $((30 - ($(now_ms) - t_cont) / 1000)) || all_back=0
    done
    t_rec=$(now_ms)
    ((all_back)) && sleep "$post"
    stop_bank
    t_end=$(now_ms)
    bank_figures c

    local sb sd sa healthy="eu us" first
    sb=$(stats c $((t_load + 2000)) "$t_hang")
    sd=$(stats c "$t_hang" "$t_cont")
    sa=$(stats c "$t_rec" "$t_end")
    for r in eu us sg; do
        fig "c: $r throughput before $(field "$sb" "$r" rate)/s, during the hang $(field "$sd" "$r" rate)/s, after $(field "$sa" "$r" rate)/s"
    done
    for r in $healthy; do
        local rb rd ratio_ p99 mx tmo
        rb=$(field "$sb" "$r" rate)
        rd=$(field "$sd" "$r" rate)
        ratio_=$(ratio "$rd" "$rb")
        p99=$(field "$sd" "$r" p99_ms)
        mx=$(field "$sd" "$r" max_attempt_ms)
        tmo=$(field "$sd" "$r" timeouts)
        fig "c: $r during the hang: $ratio_ of its throughput before (target >= 0.90), ack p99 $p99 ms, max attempt $mx ms (target < 1000), reads $(field "$sd" "$r" reads), client timeouts $tmo, conn errors $(field "$sd" "$r" conn)"
        if [[ "$ratio_" != n/a ]] && fle 0.5 "$ratio_"; then
            ok "c: $r keeps $ratio_ of its throughput during the hang (>= 0.5)"
        else
            fail "c: $r keeps >= 50% of its throughput during the hang" "before $rb/s, during $rd/s"
        fi
        if flt "$mx" 5000 && [[ "$tmo" == 0 ]]; then
            ok "c: $r answers every attempt in < 5 s during the hang (max $mx ms)"
        else
            fail "c: $r answers every attempt in < 5 s during the hang" "max attempt $mx ms, $tmo client timeouts (5 s)"
        fi
        if ((STRICT)); then
            if fle 0.9 "${ratio_/n\/a/0}" && flt "$mx" 1000; then ok "c: strict: $r >= 90% and < 1 s"; else fail "c: strict: $r >= 90% of throughput and every attempt < 1 s" "ratio $ratio_, max $mx ms"; fi
        fi
    done
    local e503 m503 htmo hconn hmax
    e503=$(field "$sd" "$R" e503)
    m503=$(field "$sd" "$R" max_503_ms)
    htmo=$(field "$sd" "$R" timeouts)
    hconn=$(field "$sd" "$R" conn)
    hmax=$(field "$sd" "$R" max_attempt_ms)
    fig "c: $R during the hang: $e503 answers 503 (slowest $m503 ms), other errors $(field "$sd" "$R" e5xx), 409 $(field "$sd" "$R" e409), client timeouts (5 s) $htmo, conn errors $hconn, max attempt $hmax ms"
    if [[ "$e503" =~ ^[0-9]+$ ]] && ((e503 > 0)) && [[ "$htmo" == 0 && "$hconn" == 0 ]] && flt "$hmax" 10000; then
        ok "c: $R's requests answered 503 during the hang, none left without an answer (slowest $hmax ms < 10 s)"
    else
        fail "c: $R's requests answered 503 in < 10 s during the hang" "$e503 x 503, $htmo client timeouts (no answer in 5 s), $hconn conn errors, max attempt $hmax ms"
    fi
    if ((all_back)); then
        local worst=0 fr
        for r in eu us sg; do
            first=$(first_ack_ms c "$r" "$t_cont")
            [[ -n "$first" ]] && fr=$((first - t_cont)) && ((fr > worst)) && worst=$fr
        done
        ok "c: every region serves again after SIGCONT (slowest $(sec "$worst") s <= 30 s)"
    else
        local missing_r=""
        for r in eu us sg; do [[ -n "$(first_ack_ms c "$r" "$t_cont")" ]] || missing_r+=" $r"; done
        fail "c: every region serves again within 30 s of SIGCONT" "no acknowledged write from:$missing_r"
    fi
    bank_checks c
}

# ---------------------------------------------------------------- d. SIGTERM while a region is hung

# ledgerd with shutdown_timeout_ms = 1000, shorter than the region's request
# deadline (2 s): a write in flight to the hung region cannot finish in time,
# so the shutdown deadline itself must cut it (503) and let the process exit.
scenario_d() {
    local R=sg t_term dt code
    echo "== d: SIGTERM while region $R is hung, a write in flight (shutdown_timeout_ms 1000)"
    stop_ledgerd
    cp "$W/cluster.conf" "$W/d.conf"
    LEDGERD_SHUTDOWN_TIMEOUT_MS=1000 LEDGERD_LOG_LEVEL=warn scripts/ledgerd-conf.sh "$W/d.conf" "$W/dev.key" "$PORT"
    "$LEDGERD" --config "$W/d.conf" >>"$W/ledgerd.log" 2>&1 &
    LPID=$!
    if ! wait_healthz 15; then
        fail "d: ledgerd start" "no /healthz within 15 s"
        return
    fi
    local tok a b
    tok=$("$LEDGERCTL" --config "$W/d.conf" token --sub "chaos-d-$RUN")
    a=$(curl -s --cacert "$CA" --max-time 10 -H "Authorization: Bearer $tok" -d "{\"currency\":\"EUR\",\"region\":\"$R\"}" "$BASE/v1/accounts" | jq -r .id)
    b=$(curl -s --cacert "$CA" --max-time 10 -H "Authorization: Bearer $tok" -d "{\"currency\":\"EUR\",\"region\":\"$R\"}" "$BASE/v1/accounts" | jq -r .id)
    if [[ ! "$a" =~ ^[0-9a-f-]{36}$ || ! "$b" =~ ^[0-9a-f-]{36}$ ]]; then
        fail "d: setup" "accounts '$a' '$b'"
        return
    fi
    # A read first, so that the request in flight waits on an open connection
    # (a connect in progress is bounded by timeouts.connect_s instead).
    curl -s --cacert "$CA" -o /dev/null --max-time 10 -H "Authorization: Bearer $tok" "$BASE/v1/accounts/$a"
    hang_region "$R" || { fail "d: hang $R" "no postmaster pid"; return; }
    curl -s --cacert "$CA" -o "$W/d.body" -w '%{http_code}' --max-time 20 -H "Authorization: Bearer $tok" -H "Idempotency-Key: d-$RUN" \
        -d "{\"debit_account_id\":\"$a\",\"credit_account_id\":\"$b\",\"amount\":1,\"currency\":\"EUR\",\"reference\":\"d-$RUN\"}" \
        "$BASE/v1/transfers" >"$W/d.code" 2>/dev/null &
    local cpid=$!
    sleep 0.3
    t_term=$(now_ms)
    kill -TERM "$LPID"
    for _ in $(seq 100); do kill -0 "$LPID" 2>/dev/null || break; sleep 0.05; done
    dt=$(($(now_ms) - t_term))
    local alive=0
    kill -0 "$LPID" 2>/dev/null && alive=1
    wait "$cpid" 2>/dev/null
    code=$(cat "$W/d.code" 2>/dev/null)
    cont_cluster
    if ((alive)); then
        kill -KILL "$LPID" 2>/dev/null
        fail "d: ledgerd exits within 5 s of SIGTERM with a region hung" "still running after $(sec "$dt") s"
    else
        local rc=0
        wait "$LPID" 2>/dev/null || rc=$?
        fig "d: ledgerd exited $(sec "$dt") s after SIGTERM (status $rc), the write in flight got $code"
        if flt "$dt" 5000; then ok "d: ledgerd exits $(sec "$dt") s after SIGTERM with a region hung (< 5 s)"; else fail "d: ledgerd exits within 5 s of SIGTERM" "$(sec "$dt") s"; fi
        if [[ "$rc" == 0 ]]; then ok "d: exit status 0"; else fail "d: exit status 0" "status $rc"; fi
    fi
    LPID=""
    if [[ "$code" == 503 && "$(jq -r .error.code "$W/d.body" 2>/dev/null)" == region_unavailable ]]; then
        ok "d: the write in flight answered 503 region_unavailable"
    else
        fail "d: the write in flight answered 503 region_unavailable" "status '$code', body $(head -c 200 "$W/d.body" 2>/dev/null)"
    fi
}

# ---------------------------------------------------------------- main

for s in a b c d; do
    [[ "$ONLY" == *$s* ]] || continue
    t0=$SECONDS
    "scenario_$s"
    fig "$s: the scenario took $((SECONDS - t0)) s"
done
stop_ledgerd
[[ -z "$LSTOP" ]] || fig "ledgerd stopped at the end by $LSTOP"
if ((FAILED)); then show_log; fi
summary
((FAILED == 0))
