#!/usr/bin/env bash
# shellcheck disable=SC2034 # SUMMARY_DONE and CLEANUP_PIDS are read by the exit trap of tests/lib.sh
# recon.sh — end-to-end test of reconciliation (`ledgerctl recon run|decrypt`,
# reconciliation/README.md, FORMATS.md) against the cluster that tests/run.sh
# started and migrated, with the real binaries.
#
#   GEOLEDGER_CONFIG=DIR/ledger.conf BUILD=build TEST_DIR=DIR tests/recon.sh
#
# It writes known ledger transfers into region eu (references and owners carry
# this run's id, so the test can run again on the same cluster), crafts
# settlement files and checks, in this order:
#   - every break class in each format (stripe, adyen, generic), a match by PSP
#     id and a refund matched by amount: exact counts of the --json summary,
#     exit 4 with unexplained breaks, the same at --memory-mb 8; a clean file
#     whose only break is timing (explained) exits 0; recon_breaks/recon_runs;
#   - malformed rows (bad amount, unknown currency, short row) are reported at
#     their physical line in recon_malformed, and alone make the exit 4;
#   - PCI: card numbers seeded in every column (and in a ledger reference)
#     leave no full PAN in the recon part of a pg_dump of eu, the command
#     output, the decrypted reports or the sealed files (a Luhn scanner written
#     here, itself checked first, plus a literal search of the seeded numbers
#     over the whole dump); the report has BIN + last 4 + the HMAC token;
#   - PCI, the spelling corpus: fresh random cards of 13, 14, 15, 16 and 19
#     digits spelled with every separator of pan.h (repeated, mixed, UTF-8
#     spaces and dashes, groups in brackets, glued to letters) in every text
#     column of every format and the header: every spelling counted as masked,
#     no row lost, each break keeps first min(6, n-10) + last 4; then the
#     pg_dump of eu, us and sg, the servers' logs, every stdout/stderr and the
#     decrypted reports, with every non-digit but '*' removed, hold none of
#     the cards;
#   - sealed reports: round trip (also through a rotated key ring); flipped,
#     cut (also exactly at a chunk boundary), extended copies, a changed header,
#     another key and a group-readable key ring are refused, leaving no file;
#   - the reconciliation role cannot change the ledger, only add runs;
#   - usage errors exit 2; a run that cannot read its file exits 3 and is
#     recorded as failed;
#   - a 50,000-line file (bin/recon-seed writes 50,000 transfers through the
#     engine and the file), padded to ~40 MiB, in each format at --memory-mb 8
#     (~10 partitions): exact counts, the same as with the default budget, no
#     work file left, peak RSS (with GNU time, not under ASan);
#   - the audit log has one recon.run event per run (actor, source host/pid,
#     outcome, the file's SHA-256), the failed run as a failure, and verifies.
# One line per check, `ok NAME` or `FAIL NAME: details`; the last line is
# "N passed, N failed"; exit 1 on any failure.
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
: "${GEOLEDGER_CONFIG:?set GEOLEDGER_CONFIG to the ledger.conf of a migrated cluster}"
: "${TEST_DIR:?set TEST_DIR to the cluster directory}"
export GEOLEDGER_CONFIG
export TZ=UTC
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
L="$BUILD/bin/ledgerctl"
SEEDER="$BUILD/bin/recon-seed"
PSQL="$PG_BINDIR/psql"
PG_DUMP="$PG_BINDIR/pg_dump"

# shellcheck source=lib.sh
source tests/lib.sh
require recon.sh jq perl od dd sha256sum openssl "$L" "$SEEDER" "$PSQL" "$PG_DUMP"
check() { # check NAME COMMAND...: ok if the command succeeds
    local name=$1
    shift
    if "$@"; then ok "$name"; else fail "$name" "'$*' failed"; fi
}

W=$(mktemp -d /tmp/geoledger-recon.XXXXXX)
chmod 700 "$W"
exit_trap recon.sh

START=$SECONDS
RUN="recon-sh-$$-$RANDOM"
OUT=$W/out       # sealed reports
WORK=$W/work     # the job's partition files
LOGS=$W/logs     # every recon command's stdout and stderr (scanned for PANs)
FILES=$W/files   # settlement files
mkdir -p "$OUT" "$WORK" "$LOGS" "$FILES"

# ---------------------------------------------------------------- cluster access

ADMIN_CI=$(conf_value eu admin_conninfo) # (conf_value: tests/lib.sh)
RECON_CI=$(conf_value eu recon_conninfo)
# regions.h: without recon_conninfo, the job uses conninfo with user=geoledger_recon
# (libpq: the last value of a repeated keyword wins).
[[ -n "$RECON_CI" ]] || RECON_CI="$(conf_value eu conninfo) user=geoledger_recon"
if [[ -z "$ADMIN_CI" ]]; then
    fail "setup" "region eu has no admin_conninfo in $GEOLEDGER_CONFIG"
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
# q SQL: the rows of a query as the admin role, '|'-separated ("error: ..." on failure).
q() { admin_sql "$1" 2>&1 || echo "error: $1"; }

# ---------------------------------------------------------------- PAN scanner (written here, checked first)

# luhn_scan FILE...: prints one line per card number found (digits masked in
# the middle, with the file and byte offset) and exits 1 if there is any.
# A card number as reconciliation/pan.h defines it: 13..19 digits joined by
# optional single ' ' or '-', passing Luhn; a longer run counts if any 13..19
# digit window passes. UUIDs are blanked first, and runs touching an ASCII
# letter are left out: they are hex (hashes, tokens), where random 13+ digit
# stretches pass Luhn one time in ten. The seeded numbers are
# also searched for literally (pan_grep), letters or not, so nothing seeded can
# hide there.
cat >"$W/luhn_scan.pl" <<'PERL'
use strict;
use warnings;
sub luhn {
    my @d = reverse split //, $_[0];
    my $s = 0;
    for my $i (0 .. $#d) {
        my $v = $d[$i];
        if ($i % 2) { $v *= 2; $v -= 9 if $v > 9 }
        $s += $v;
    }
    return $s % 10 == 0;
}
sub holds_pan {
    my $d = shift;
    my $n = length $d;
    return 0 if $n < 13;
    return luhn($d) if $n <= 19;
    for my $len (13 .. 19) {
        for my $i (0 .. $n - $len) { return 1 if luhn(substr($d, $i, $len)) }
    }
    return 0;
}
my $hits = 0;
local $/;
for my $f (@ARGV) {
    open(my $fh, '<:raw', $f) or die "$f: $!\n";
    my $t = <$fh>;
    close $fh;
    $t = '' unless defined $t;
    # UUIDs (ids in the dump, the output, the reports) are not card numbers.
    $t =~ s/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/'U' x 36/ge;
    while ($t =~ /(?<![0-9])([0-9](?:[ -]?[0-9]){12,})(?![0-9])/g) {
        my ($run, $s, $e) = ($1, $-[1], $+[1]);
        my $before = $s > 0 ? substr($t, $s - 1, 1) : '';
        my $after = $e < length($t) ? substr($t, $e, 1) : '';
        next if $before =~ /[A-Za-z]/ || $after =~ /[A-Za-z]/;
        (my $d = $run) =~ s/[ -]//g;
        next unless holds_pan($d);
        $hits++;
        my $shown = substr($d, 0, 6) . '...' . substr($d, -4);
        print "$f\@$s: $shown (" . length($d) . " digits)\n" if $hits <= 20;
    }
}
print "($hits in all)\n" if $hits > 20;
exit($hits ? 1 : 0);
PERL
luhn_scan() { perl "$W/luhn_scan.pl" "$@"; }

# The card numbers seeded below (test numbers of the card schemes).
PANS=(4111111111111111 5555555555554444 378282246310005 4012888888881881 6011111111111117)
# A card number kept in a ledger reference (next to a letter): the ledger has it,
# the reconciliation outputs must not.
LEDGER_PAN=4000056655665556
# pan_re PAN: a regex for the card's digits in any ' '/'-' spelling
pan_re() { sed 's/./&[ -]\\{0,1\\}/g; s/\[ -\]\\{0,1\\}$//' <<<"$1"; }
# pan_grep PAN FILE...: the files holding the card anywhere (exit 0 = found)
pan_grep() {
    local re
    re=$(pan_re "$1")
    shift
    grep -a -l -e "$re" -- "$@"
}

printf 'a,4111111111111111,x\nb,5555-5555-5555-4444\nc,"3782 822463 10005"\nd 4012 8888 8888 1881.\ne,12344111111111111111,f\n' >"$W/with_pans.txt"
# masked forms, a BIN/last 4, hex, a UUID, a timestamp, amounts: no card number
printf '411111******1111,5555-55**-****-4444\ntoken pan1:0123456789012345abc1234567890123456789012\n01a21388-8a1c-728b-ab01-68bce9160ad0\n2026-11-25 16:27:20.000000+00\t1000\t-9223372036854775807\n' >"$W/without_pans.txt"
scan=$(luhn_scan "$W/with_pans.txt" || true)
if [[ $(grep -c '@' <<<"$scan") == 5 ]]; then
    ok "scanner: finds the 5 card numbers of a sample (plain, dashes, spaces, glued to digits)"
else
    fail "scanner: finds the 5 card numbers of a sample" "found: $scan"
fi
if scan=$(luhn_scan "$W/without_pans.txt"); then
    ok "scanner: no false alarm on masked numbers, hex, UUIDs, times, amounts"
else
    fail "scanner: no false alarm on masked numbers, hex, UUIDs, times, amounts" "$scan"
fi
if pan_grep 4111111111111111 "$W/with_pans.txt" >/dev/null && pan_grep 378282246310005 "$W/with_pans.txt" >/dev/null &&
    ! pan_grep 4111111111111111 "$W/without_pans.txt" >/dev/null; then
    ok "scanner: the literal search finds a seeded card in any spelling"
else
    fail "scanner: the literal search finds a seeded card in any spelling" "pan_grep misses or misfires"
fi

# ---------------------------------------------------------------- keys

hex32() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
PAN_KEY=$(hex32)
(
    umask 077
    printf '# recon.sh PAN key ring\npan1 %s\n' "$PAN_KEY" >"$W/pan.keys"
    printf '# recon.sh seal key ring\nseal1 %s\nseal0 %s\n' "$(hex32)" "$(hex32)" >"$W/seal.keys"
    printf 'other1 %s\n' "$(hex32)" >"$W/other.keys"     # another key id
    printf 'seal1 %s\n' "$(hex32)" >"$W/samename.keys"   # the same id, another key
)

# ---------------------------------------------------------------- time

NOW=$(date +%s)
FROM=$(date -u -d "@$((NOW - 3600))" +%Y-%m-%dT%H:%M:%SZ) # the period: [now - 1 h, now + 3 h)
TO=$(date -u -d "@$((NOW + 3 * 3600))" +%Y-%m-%dT%H:%M:%SZ)
AHEAD=$((NOW + 10 * 86400))                              # outside the period, both ways
BACK=$((NOW - 10 * 86400))
# tfmt FORMAT EPOCH: a time as the format writes it ("" for an empty EPOCH)
tfmt() {
    [[ -n "$2" ]] || return 0
    if [[ "$1" == generic ]]; then printf '%(%Y-%m-%dT%H:%M:%SZ)T' "$2"; else printf '%(%Y-%m-%d %H:%M:%S)T' "$2"; fi
}
# dec MINOR: minor units as a decimal of major units (EUR/USD: 2 places)
dec() {
    local v=$1 s=""
    if ((v < 0)); then s=-; v=$((-v)); fi
    printf '%s%d.%02d' "$s" $((v / 100)) $((v % 100))
}

# ---------------------------------------------------------------- settlement files

HDR_stripe='automatic_payout_id,automatic_payout_effective_at,balance_transaction_id,created_utc,available_on_utc,currency,gross,fee,net,reporting_category,source_id,description,charge_created_utc,payment_intent_id,card_brand,payment_metadata[reference]'
HDR_adyen='Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,Net Currency,Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),Payment Method Variant,Batch Number'
HDR_generic='reference,psp_id,type,currency,gross,fee,net,created_at,settled_at,note'

# row FORMAT REF PSP_ID CURRENCY GROSS FEE CREATED [SETTLED]: one data row (amounts
# in minor units, times as epoch seconds). Charges are positive, refunds negative.
# Adyen has no settlement time per row: its settlement time is CREATED.
row() {
    local f=$1 ref=$2 psp=$3 cur=$4 gross=$5 fee=$6 created=$7 settled=${8:-}
    local net=$((gross - fee)) c s
    c=$(tfmt "$f" "$created")
    s=$(tfmt "$f" "$settled")
    case $f in
    stripe)
        local type=charge
        ((gross >= 0)) || type=refund
        printf 'po_%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,src_%s,Ride,%s,pi_%s,visa,%s\n' "$psp" "$s" "$psp" "$c" "$s" \
            "${cur,,}" "$(dec "$gross")" "$(dec "$fee")" "$(dec "$net")" "$type" "$psp" "$c" "$psp" "$ref"
        ;;
    adyen)
        local type=Settled gd="" gc="" nd="" nc=""
        if ((gross >= 0)); then gc=$(dec "$gross"); else type=Refunded gd=$(dec $((-gross))); fi
        if ((net >= 0)); then nc=$(dec "$net"); else nd=$(dec $((-net))); fi
        printf 'GeoLedgerCo,GeoLedgerEU,%s,%s,visa,%s,UTC,%s,mod-%s,%s,%s,%s,1,%s,%s,%s,%s,,,,visacredit,7\n' "$psp" \
            "$ref" "$c" "$type" "$psp" "$cur" "$gd" "$gc" "$cur" "$nd" "$nc" "$(dec "$fee")"
        ;;
    generic)
        local type=charge
        ((gross >= 0)) || type=refund
        printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,note\n' "$ref" "$psp" "$type" "$cur" "$(dec "$gross")" "$(dec "$fee")" \
            "$(dec "$net")" "$c" "$s"
        ;;
    esac
}
hdr() { local h="HDR_$1"; printf '%s\n' "${!h}"; }

# ---------------------------------------------------------------- ledger data in eu

RUN_IDS=()   # every run id printed, for the audit checks
SETUP_ERR="" # what went wrong while writing the ledger data
# acct VAR KIND: creates an EUR account of this run in eu, its id into VAR
acct() {
    local out
    out=$("$L" --json account create --region eu --currency EUR --owner "$RUN" --kind "$2" 2>&1) || true
    printf -v "$1" '%s' "$(jq -r '.id // empty' <<<"$out" 2>/dev/null || true)"
    [[ -n "${!1}" ]] || SETUP_ERR+="account $2: $out; "
}
# pay FROM TO AMOUNT REFERENCE [PSP_FEE] [OWNER]: one transfer (from = debited)
pay() {
    local out args=(--json transfer --from "$1" --to "$2" --amount "$3" --currency EUR --reference "$4" --owner "${6:-$RUN}")
    [[ -z "${5:-}" ]] || args+=(--metadata "{\"psp_fee\": $5}")
    out=$("$L" "${args[@]}" 2>&1) || true
    [[ "$(jq -r '.result // empty' <<<"$out" 2>/dev/null || true)" == ok ]] || SETUP_ERR+="transfer $4: $out; "
}

acct MERCHANT merchant
declare -A CLEARING
for f in stripe adyen generic; do
    acct c psp_clearing
    CLEARING[$f]=$c
    p="$RUN-$f"
    pay "$c" "$MERCHANT" 1000 "$p-clean" 30
    pay "$c" "$MERCHANT" 1100 "$p-pspkey" 20
    pay "$c" "$MERCHANT" 2000 "$p-amount" 50
    pay "$c" "$MERCHANT" 3000 "$p-fee" 60
    pay "$c" "$MERCHANT" 4000 "$p-currency" 70
    pay "$c" "$MERCHANT" 5000 "$p-dup" 80
    pay "$c" "$MERCHANT" 5100 "$p-ldup" 10
    pay "$c" "$MERCHANT" 5100 "$p-ldup" 10 "$RUN-b" # the same reference twice (another owner)
    pay "$c" "$MERCHANT" 6000 "$p-timing" 90
    pay "$c" "$MERCHANT" 8000 "$p-nosettle"         # no psp_fee: no fee to compare
    pay "$MERCHANT" "$c" 900 "$p-refund"            # credits the clearing account: -900
done
acct CLEAN psp_clearing
pay "$CLEAN" "$MERCHANT" 1200 "$RUN-k" 25
pay "$CLEAN" "$MERCHANT" 1300 "$RUN-t" 15
pay "$MERCHANT" "$CLEAN" 500 "$RUN-k-refund"
acct PCI psp_clearing
pay "$PCI" "$MERCHANT" 1500 "$RUN-panA$LEDGER_PAN" 40 # a card-like reference, with a settlement line
pay "$PCI" "$MERCHANT" 1600 "$RUN-panB$LEDGER_PAN" 40 # and one without
if [[ -z "$SETUP_ERR" ]]; then
    ok "setup: 6 accounts and 38 transfers written in eu"
else
    fail "setup: accounts and transfers written in eu" "$(head -c 2000 <<<"$SETUP_ERR")"
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

# ---------------------------------------------------------------- running the job

# recon NAME ARGS...: `ledgerctl --json recon run` on eu over the period; stdout in
# $LOGS/NAME.out, stderr in $LOGS/NAME.err, exit status in RC.
RC=0
recon() {
    local name=$1
    shift
    RC=0
    "$L" --json recon run --region eu --pan-keys "$W/pan.keys" --seal-keys "$W/seal.keys" --out "$OUT" \
        --work-dir "$WORK" --from "$FROM" --to "$TO" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || RC=$?
    local id
    id=$(jq -r '.run_id // empty' "$LOGS/$name.out" 2>/dev/null || true)
    [[ -z "$id" ]] || RUN_IDS+=("$id")
}
# summary FILE: the counts of a --json summary on one line (classes that are not 0)
summary() {
    jq -r '"lines=\(.lines) malformed=\(.malformed_lines) ledger=\(.ledger_transfers) matched=\(.matched) by_amount=\(.matched_by_amount) breaks=\(.breaks) unexplained=\(.unexplained) |" +
           ([.by_class | to_entries[] | select(.value != 0) | " \(.key)=\(.value)"] | join(""))' "$1" 2>/dev/null ||
        echo "(no summary: $(head -c 300 "$1"))"
}
# expect NAME EXIT "COUNTS": checks the exit status and the exact counts of run NAME
expect() {
    local name=$1 want_rc=$2 want=$3 got
    if ((RC == want_rc)); then
        ok "$name: exit $want_rc"
    else
        fail "$name: exit $want_rc" "exit $RC; stderr: $(head -c 600 "$LOGS/$name.err")"
    fi
    got=$(summary "$LOGS/$name.out")
    if [[ "$got" == "$want" ]]; then
        ok "$name: $want"
    else
        fail "$name: exact counts" "want '$want', got '$got'"
    fi
}

# ---------------------------------------------------------------- every break class, in each format

BREAKS_WANT='lines=11 malformed=0 ledger=11 matched=4 by_amount=1 breaks=8 unexplained=7 | missing_in_ledger=1 missing_in_settlement=1 amount_mismatch=1 fee_mismatch=1 currency_mismatch=1 duplicate=2 timing=1'
for f in stripe adyen generic; do
    p="$RUN-$f"
    timing_at=$AHEAD
    [[ $f != adyen ]] || timing_at=$BACK # (Adyen: the creation date is the settlement time)
    {
        hdr $f
        row $f "$p-clean" "psp-$p-1" EUR 1000 30 "$NOW" "$NOW"            # matched
        row $f "" "$p-pspkey" EUR 1100 20 "$NOW" "$NOW"                   # matched, keyed by the PSP id
        row $f "$p-amount" "psp-$p-2" EUR 2001 50 "$NOW" "$NOW"           # amount_mismatch
        row $f "$p-fee" "psp-$p-3" EUR 3000 61 "$NOW" "$NOW"              # fee_mismatch
        row $f "$p-currency" "psp-$p-4" USD 4000 70 "$NOW" "$NOW"         # currency_mismatch
        row $f "$p-dup" "psp-$p-5" EUR 5000 80 "$NOW" "$NOW"              # matched
        row $f "$p-dup" "psp-$p-5" EUR 5000 80 "$NOW" "$NOW"              # duplicate (file side)
        row $f "$p-ldup" "psp-$p-6" EUR 5100 10 "$NOW" "$NOW"             # matched + duplicate (ledger side)
        row $f "$p-timing" "psp-$p-7" EUR 6000 90 "$timing_at" "$AHEAD"   # timing
        row $f "$p-noledger" "psp-$p-8" EUR 7000 100 "$NOW" "$NOW"        # missing_in_ledger
        row $f "$p-clean" "$p-refund-psp" EUR -900 0 "$NOW" "$NOW"        # refund: matched by amount
    } >"$FILES/breaks.$f.csv"                                            # (the ledger's "$p-nosettle": missing_in_settlement)
    recon "breaks-$f" --source $f --file "$FILES/breaks.$f.csv" --account "${CLEARING[$f]}"
    expect "breaks-$f" 4 "$BREAKS_WANT"
    # the same file, the same answer with the smallest memory budget
    recon "breaks-$f-8mb" --source $f --file "$FILES/breaks.$f.csv" --account "${CLEARING[$f]}" --memory-mb 8
    expect "breaks-$f-8mb" 4 "$BREAKS_WANT"

    # A clean file: a charge, a refund (by amount) and a payment settling in the
    # next period (timing: explained): exit 0.
    {
        hdr $f
        row $f "$RUN-k" "psp-$RUN-k-$f" EUR 1200 25 "$NOW" "$NOW"
        row $f "$RUN-t" "psp-$RUN-t-$f" EUR 1300 15 "$timing_at" "$AHEAD"
        row $f "$RUN-k" "psp-$RUN-kr-$f" EUR -500 0 "$NOW" "$NOW"
    } >"$FILES/clean.$f.csv"
    recon "clean-$f" --source $f --file "$FILES/clean.$f.csv" --account "$CLEAN"
    expect "clean-$f" 0 'lines=3 malformed=0 ledger=3 matched=1 by_amount=1 breaks=1 unexplained=0 | timing=1'
done

id=$(jq -r .run_id "$LOGS/clean-generic.out" 2>/dev/null || echo none)
got=$(q "SELECT status || ' ' || unexplained || ' ' || breaks FROM recon_runs WHERE id = '$id'")
check "clean-generic: the run's status is 'clean' (got '$got')" test "$got" = "clean 0 1"

# Where each break is, in the generic run's table rows (admin view).
id=$(jq -r .run_id "$LOGS/breaks-generic.out" 2>/dev/null || echo none)
got=$(q "SELECT string_agg(class || ':' || coalesce(line_no::text, '-') || ':' || explained, ' ' ORDER BY class, line_no)
         FROM recon_breaks WHERE run_id = '$id'")
want='amount_mismatch:4:false currency_mismatch:6:false duplicate:8:false duplicate:-:false fee_mismatch:5:false missing_in_ledger:11:false missing_in_settlement:-:false timing:10:true'
if [[ "$got" == "$want" ]]; then
    ok "breaks-generic: recon_breaks holds each class at its line (timing explained)"
else
    fail "breaks-generic: recon_breaks holds each class at its line" "want '$want', got '$got'"
fi
got=$(q "SELECT ledger_amount || '/' || settlement_amount || '/' || ledger_currency || '/' || settlement_currency
         FROM recon_breaks WHERE run_id = '$id' AND class IN ('amount_mismatch', 'currency_mismatch') ORDER BY class")
if [[ "$got" == $'2000/2001/EUR/EUR\n4000/4000/EUR/USD' ]]; then
    ok "breaks-generic: both sides' amounts and currencies are stored"
else
    fail "breaks-generic: both sides' amounts and currencies are stored" "got '$got'"
fi
got=$(q "SELECT status || ' ' || lines || ' ' || breaks || ' ' || unexplained || ' ' || (finished_at IS NOT NULL) || ' ' || operator
         FROM recon_runs WHERE id = '$id'")
if [[ "$got" == "breaks 11 8 7 true $(id -un)" ]]; then
    ok "breaks-generic: recon_runs records the finished run"
else
    fail "breaks-generic: recon_runs records the finished run" "got '$got'"
fi

# ---------------------------------------------------------------- malformed rows

# A quoted line break in row 2 (lines 2-3): the rows after it are reported at
# their physical line. Bad rows at lines 4 (12.345 EUR), 6 (currency XYZ), 7 (short).
{
    hdr generic
    printf '%s,psp-%s-mk,charge,EUR,12.00,0.25,11.75,%s,%s,"two\nlines"\n' "$RUN-k" "$RUN" "$(tfmt generic "$NOW")" "$(tfmt generic "$NOW")"
    printf '%s-x1,psp-x1,charge,EUR,12.345,0.00,12.345,%s,,bad amount\n' "$RUN" "$(tfmt generic "$NOW")"
    row generic "$RUN-t" "psp-$RUN-mt" EUR 1300 15 "$NOW" "$AHEAD"
    printf '%s-x2,psp-x2,charge,XYZ,1.00,0.00,1.00,%s,,unknown currency\n' "$RUN" "$(tfmt generic "$NOW")"
    printf '%s-x3,psp-x3,charge\n' "$RUN"
    row generic "$RUN-k" "psp-$RUN-mr" EUR -500 0 "$NOW" "$NOW"
} >"$FILES/malformed.generic.csv"
{
    hdr stripe
    printf 'po_1,,txn_%s_mk,%s,%s,eur,12.00,0.25,11.75,charge,ch_1,"two\nlines",%s,pi_1,visa,%s\n' "$RUN" "$(tfmt stripe "$NOW")" "$(tfmt stripe "$NOW")" "$(tfmt stripe "$NOW")" "$RUN-k"
    printf 'po_1,,txn_x1,%s,,eur,12.345,0.00,12.345,charge,ch_2,bad,%s,pi_2,visa,%s-x1\n' "$(tfmt stripe "$NOW")" "$(tfmt stripe "$NOW")" "$RUN"
    row stripe "$RUN-t" "txn_$RUN-mt" EUR 1300 15 "$NOW" "$AHEAD"
    printf 'po_1,,txn_x2,%s,,xyz,1.00,0.00,1.00,charge,ch_3,bad,%s,pi_3,visa,%s-x2\n' "$(tfmt stripe "$NOW")" "$(tfmt stripe "$NOW")" "$RUN"
    printf 'po_1,,txn_x3,%s\n' "$(tfmt stripe "$NOW")"
    row stripe "$RUN-k" "txn_$RUN-mr" EUR -500 0 "$NOW" "$NOW"
} >"$FILES/malformed.stripe.csv"
{
    hdr adyen
    printf 'GeoLedgerCo,GeoLedgerEU,%s-mk,%s,visa,%s,UTC,Settled,"two\nlines",EUR,,12.00,1,EUR,,11.75,0.25,,,,visacredit,7\n' "$RUN" "$RUN-k" "$(tfmt adyen "$NOW")"
    printf 'GeoLedgerCo,GeoLedgerEU,x1,%s-x1,visa,%s,UTC,Settled,m,EUR,,12.345,1,EUR,,12.345,,,,,visacredit,7\n' "$RUN" "$(tfmt adyen "$NOW")"
    row adyen "$RUN-t" "$RUN-mt" EUR 1300 15 "$AHEAD"
    printf 'GeoLedgerCo,GeoLedgerEU,x2,%s-x2,visa,%s,UTC,Settled,m,XYZ,,1.00,1,XYZ,,1.00,,,,,visacredit,7\n' "$RUN" "$(tfmt adyen "$NOW")"
    printf 'GeoLedgerCo,GeoLedgerEU,x3\n'
    row adyen "$RUN-k" "$RUN-mr" EUR -500 0 "$NOW"
} >"$FILES/malformed.adyen.csv"
for f in generic stripe adyen; do
    recon "malformed-$f" --source $f --file "$FILES/malformed.$f.csv" --account "$CLEAN"
    # Malformed lines alone make the run non-clean: exit 4 with no unexplained break.
    expect "malformed-$f" 4 'lines=6 malformed=3 ledger=3 matched=1 by_amount=1 breaks=1 unexplained=0 | timing=1'
    id=$(jq -r .run_id "$LOGS/malformed-$f.out" 2>/dev/null || echo none)
    got=$(q "SELECT string_agg(line_no::text, ',' ORDER BY line_no) FROM recon_malformed WHERE run_id = '$id'")
    if [[ "$got" == "4,6,7" ]]; then
        ok "malformed-$f: recon_malformed has lines 4, 6 and 7"
    else
        fail "malformed-$f: recon_malformed has lines 4, 6 and 7" "got '$got'"
    fi
    reasons=$(q "SELECT string_agg(line_no || ': ' || reason, ' | ' ORDER BY line_no) FROM recon_malformed WHERE run_id = '$id'")
    if [[ "$reasons" == *"4: "*"decimal places"*"6: "*"unknown currency"*"7: "*"fields, the header has"* ]]; then
        ok "malformed-$f: each line has its reason"
    else
        fail "malformed-$f: each line has its reason" "$reasons"
    fi
    got=$(q "SELECT status FROM recon_runs WHERE id = '$id'")
    check "malformed-$f: the run's status is 'breaks'" test "$got" = breaks
done

# ---------------------------------------------------------------- PCI: card numbers in every column

# Valid rows carry card numbers in every text column (reference, PSP id, type,
# description...); other rows have one in an amount, date or currency column
# and are malformed. The header has one too. The first card of a row (column
# order) is the one described in the break.
N4=4111111111111111 N4S="4111 1111 1111 1111" N4D="4111-1111-1111-1111"
N5=5555555555554444 N5D="5555-5555-5555-4444" N3=378282246310005 N40=4012888888881881 N6=6011111111111117
NG="1234$N4" # glued to other digits: 20 digits, masked whole
tg=$(tfmt generic "$NOW")
{
    echo "reference,psp_id,type,currency,gross,fee,net,created_at,settled_at,note,card $N4"
    echo "ord $N4,psp $N5D,charge $N40,EUR,1.11,0.00,1.11,$tg,$tg,card $N4S,$N3"       # 5 cards, line 2
    echo "ord $N5D,psp-$N5,refund $N4D,EUR,-1.12,0.00,-1.12,$tg,$tg,$N6,x"             # 4, line 3
    echo "ord-g $NG,psp-g $N4S,charge,EUR,1.13,0.00,1.13,$tg,$tg,\"$N4,$N5\",$N40"     # 5, line 4
    echo "ord-m1,psp-m1,charge,EUR,$N4,0.00,$N4,$tg,,amount,"                          # 2, line 5: malformed
    echo "ord-m2,psp-m2,charge,EUR,1.00,0.00,1.00,$N4D,,date,"                         # 1, line 6: malformed
    echo "ord-m3,psp-m3,charge,$N5,1.00,0.00,1.00,$tg,,currency,"                      # 1, line 7: malformed
    echo "ord-m4,psp-m4,charge,EUR,1.00,$N4S,1.00,$tg,$N6,fee and settled_at,"          # 2, line 8: malformed
    echo "$RUN-panA$LEDGER_PAN,psp-pa,charge,EUR,15.00,0.41,14.59,$tg,$tg,ledger card-like reference," # 1, line 9
} >"$FILES/pci.generic.csv"
ts=$(tfmt stripe "$NOW")
{
    echo "$HDR_stripe,note $N4"
    echo "po_$N4,$ts,txn_$N5,$ts,$ts,eur,2.11,0.00,2.11,charge $N40,src $N3,Paid with $N4S,$ts,pi $N6,visa $N4D,ord $N4,x"  # 9, line 2
    echo "po_1,$ts,txn $N4D,$ts,$ts,eur,-2.12,0.00,-2.12,refund,re_1,refund $N5D,$ts,pi_1,visa,ord $N4,y"                  # 3, line 3
    echo "po_1,$ts,txn_m1,$ts,$ts,eur,$N4,0.00,$N4,charge,ch_1,x,$ts,pi_1,visa,m1,"                                         # 2, line 4: malformed
    echo "po_1,$ts,txn_m2,$N4S,$ts,eur,1.00,0.00,1.00,charge,ch_1,x,$N5D,pi_1,visa,m2,"                                    # 2, line 5: malformed
    echo "po_1,$ts,txn_m3,$ts,$ts,$N4,1.00,0.00,1.00,charge,ch_1,x,$ts,pi_1,visa,m3,"                                      # 1, line 6: malformed
} >"$FILES/pci.stripe.csv"
ta=$(tfmt adyen "$NOW")
{
    echo "$HDR_adyen,Shopper $N4"
    echo "Co $N4,Acct $N5,psp $N4S,ord $N4D,visa $N3,$ta,UTC,Settled $N40,mod $N6,EUR,,3.11,1,EUR,,3.11,,,,,variant $N4,7,x" # 9, line 2
    echo "Co,Acct,psp $N5D,ord $N4,mc,$ta,UTC,Refunded,mod,EUR,3.12,,1,EUR,3.12,,,,,,v,7,$N4"                               # 3, line 3
    echo "Co,Acct,psp-m1,m1,visa,$ta,UTC,Settled,mod,EUR,,$N4,1,EUR,,$N4,,,,,v,7,"                                            # 2, line 4: malformed
    echo "Co,Acct,psp-m2,m2,visa,$N4D,UTC,Settled,mod,EUR,,1.00,1,EUR,,1.00,,,,,v,7,"                                         # 1, line 5: malformed
    echo "Co,Acct,psp-m3,m3,visa,$ta,$N5,Settled,mod,EUR,,1.00,1,EUR,,1.00,$N4S,,,,v,7,"                                      # 2, line 6: malformed
} >"$FILES/pci.adyen.csv"
for f in generic stripe adyen; do
    n=$(luhn_scan "$FILES/pci.$f.csv" | grep -c '@' || true)
    if ((n >= 10)); then ok "pci-$f: the scanner sees $n card numbers in the file"; else fail "pci-$f: the scanner sees the file's card numbers" "only $n"; fi
done

recon pci-generic --source generic --file "$FILES/pci.generic.csv" --account "$PCI"
# 4 bad rows; the ledger's card-like references are masked like the file's, so
# panA pairs by reference (fee 41 vs 40) and panB is missing from the file.
expect pci-generic 4 'lines=8 malformed=4 ledger=2 matched=0 by_amount=0 breaks=5 unexplained=5 | missing_in_ledger=3 missing_in_settlement=1 fee_mismatch=1'
got=$(jq -r .pans_masked "$LOGS/pci-generic.out" 2>/dev/null || echo none)
check "pci-generic: pans_masked counts every card of the file (22)" test "$got" = 22
recon pci-stripe --source stripe --file "$FILES/pci.stripe.csv" --account "$PCI"
expect pci-stripe 4 'lines=5 malformed=3 ledger=2 matched=0 by_amount=0 breaks=4 unexplained=4 | missing_in_ledger=2 missing_in_settlement=2'
recon pci-adyen --source adyen --file "$FILES/pci.adyen.csv" --account "$PCI"
expect pci-adyen 4 'lines=5 malformed=3 ledger=2 matched=0 by_amount=0 breaks=4 unexplained=4 | missing_in_ledger=2 missing_in_settlement=2'

# ---------------------------------------------------------------- sealed reports

# decrypt NAME FILE [ARGS...]: `recon decrypt FILE ARGS`, stdout/stderr in $LOGS/NAME.*, status in RC
decrypt() {
    local name=$1 file=$2
    shift 2
    RC=0
    "$L" recon decrypt "$file" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || RC=$?
}
PLAIN=$W/plain # decrypted reports (scanned for PANs below)
# jq: the report's list of breaks (its one top-level array, whatever its key is called)
LIST='def list: [.[] | arrays][0] // []; '

mkdir -p "$PLAIN"
for name in breaks-generic breaks-stripe breaks-adyen clean-generic malformed-generic pci-generic pci-stripe pci-adyen; do
    for kind in json csv; do
        sealed=$(jq -r ".report_$kind // empty" "$LOGS/$name.out" 2>/dev/null || true)
        if [[ -z "$sealed" || ! -s "$sealed" ]]; then
            fail "$name: a sealed $kind report" "no file '$sealed'"
            continue
        fi
        decrypt "decrypt-$name-$kind" "$sealed" --seal-keys "$W/seal.keys" --out "$PLAIN/$name.$kind"
        if ((RC != 0)) || [[ ! -s "$PLAIN/$name.$kind" ]]; then
            fail "$name: the $kind report decrypts" "exit $RC: $(head -c 300 "$LOGS/decrypt-$name-$kind.err")"
        fi
    done
done
# one round trip through stdout too (the rest used --out)
decrypt decrypt-stdout "$(jq -r .report_json "$LOGS/breaks-generic.out")" --seal-keys "$W/seal.keys"
if ((RC == 0)) && cmp -s "$LOGS/decrypt-stdout.out" "$PLAIN/breaks-generic.json"; then
    ok "sealed: decrypt to stdout gives the same bytes as --out"
else
    fail "sealed: decrypt to stdout gives the same bytes as --out" "exit $RC: $(head -c 300 "$LOGS/decrypt-stdout.err")"
fi
J=$PLAIN/breaks-generic.json
if jq -e --slurpfile s "$LOGS/breaks-generic.out" "$LIST"'
      .run_id == $s[0].run_id and .source == "generic" and .lines == 11 and ((.breaks | numbers) // 8) == 8 and .unexplained == 7 and .by_class == $s[0].by_class
      and (list | length) == 8
      and ([list[] | select(.class == "timing")] | length == 1 and .[0].explained == true)
      and ([list[] | select(.explained)] | length == 1)
      and ([list[] | select(.class == "amount_mismatch")][0] | .settlement.amount == 2001 and .ledger.amount == 2000 and .settlement.line == 4)
      and ([list[] | select(.class == "fee_mismatch")][0] | .settlement.fee == 61 and .ledger.fee == 60)
      and ([list[] | select(.class == "missing_in_settlement")][0] | .settlement == null and .ledger.amount == 8000 and (.ledger | has("fee") | not))' \
    "$J" >/dev/null 2>&1; then
    ok "sealed: the JSON report has the run's summary and its 8 breaks, both sides"
else
    fail "sealed: the JSON report has the run's summary and its 8 breaks" "$(head -c 1500 "$J")"
fi
# Keys must be unique: a parser keeps one of two equal keys (jq, Python: the
# last), so a repeated key loses a value. --stream shows every key as written.
dups=$(jq -r --stream 'select(length == 2 and (.[0] | length) >= 1) | .[0][0] | strings' "$J" 2>/dev/null | uniq | sort | uniq -d | tr '\n' ' ')
if [[ -z "$dups" ]]; then
    ok "sealed: the JSON report has no repeated top-level key"
else
    fail "sealed: the JSON report has no repeated top-level key" "repeated: $dups(the summary's count and the array of breaks are both \"breaks\")"
fi
CSV_HEADER='n,class,explained,reference,psp_id,transfer_id,line,ledger_amount,settlement_amount,ledger_fee,settlement_fee,ledger_currency,settlement_currency,ledger_at,settlement_at,card_bin,card_last4,card_token'
if [[ "$(head -n 1 "$PLAIN/breaks-generic.csv")" == "$CSV_HEADER" && $(wc -l <"$PLAIN/breaks-generic.csv") == 9 ]] &&
    grep -q '^[0-9]*,timing,true,' "$PLAIN/breaks-generic.csv"; then
    ok "sealed: the CSV report has its header and one row per break"
else
    fail "sealed: the CSV report has its header and one row per break" "$(head -c 1500 "$PLAIN/breaks-generic.csv")"
fi
modes=$(stat -c %a "$OUT"/*.sealed | sort -u | tr '\n' ' ')
check "sealed: report files are mode 600 (got $modes)" test "$modes" = "600 "
if [[ -z "$(find "$OUT" -name '*.tmp')" ]]; then ok "sealed: no temporary file left in the report directory"; else fail "sealed: no temporary file left" "$(find "$OUT" -name '*.tmp')"; fi
if head -c 8 "$(jq -r .report_json "$LOGS/breaks-generic.out")" | grep -q '^GLSEAL1$' &&
    ! grep -q -a "$RUN" "$OUT"/*.sealed; then
    ok "sealed: files start with GLSEAL1 and hold no plaintext reference"
else
    fail "sealed: files start with GLSEAL1 and hold no plaintext reference" "$(head -c 8 "$(jq -r .report_json "$LOGS/breaks-generic.out")" | od -c | head -2)"
fi

# Damaged copies: every one refused, with no --out file (nor its .tmp) left.
SEALED=$(jq -r '.report_json // empty' "$LOGS/breaks-generic.out" 2>/dev/null || true)
if [[ -z "$SEALED" || ! -s "$SEALED" ]]; then # (the checks below would be meaningless)
    fail "sealed: a report to damage" "breaks-generic has no sealed JSON report"
    SEALED=$W/missing.sealed
    printf 'GLSEAL1\n' >"$SEALED"
fi
size=$(stat -c %s "$SEALED")
refused() { # refused NAME COPY WORD [KEYS]: decrypt must fail, name WORD, leave no output
    local name=$1 copy=$2 word=$3 keys=${4:-$W/seal.keys}
    rm -f "$W/damaged.out" "$W/damaged.out.tmp"
    decrypt "$name" "$copy" --seal-keys "$keys" --out "$W/damaged.out"
    if ((RC != 0)) && grep -qi -- "$word" "$LOGS/$name.err" && [[ ! -e "$W/damaged.out" && ! -e "$W/damaged.out.tmp" ]]; then
        ok "$name: refused (exit $RC, '$word'), no output file"
    else
        fail "$name: refused, naming '$word', no output file" "exit $RC, out file: $(ls "$W"/damaged.out* 2>/dev/null | tr '\n' ' '); stderr: $(head -c 300 "$LOGS/$name.err")"
    fi
}
cp "$SEALED" "$W/flipped.sealed"
off=$((size / 2))
byte=$(od -An -tu1 -j "$off" -N1 "$SEALED" | tr -d ' ')
printf "\\$(printf '%03o' $((byte ^ 1)))" | dd of="$W/flipped.sealed" bs=1 seek="$off" conv=notrunc status=none
check "sealed: the flipped copy differs in one byte" test "$(cmp -l "$SEALED" "$W/flipped.sealed" | wc -l)" = 1
refused "sealed: one bit flipped in the middle" "$W/flipped.sealed" tampered
cp "$SEALED" "$W/header.sealed"
printf 'X' | dd of="$W/header.sealed" bs=1 seek=12 conv=notrunc status=none # key id seal1 -> seXl1
refused "sealed: key id changed in the header (to an unknown one)" "$W/header.sealed" seXl1
cp "$SEALED" "$W/header0.sealed"
printf '0' | dd of="$W/header0.sealed" bs=1 seek=14 conv=notrunc status=none # key id seal1 -> seal0, in the ring
refused "sealed: key id changed in the header (to another key of the ring)" "$W/header0.sealed" tampered
head -c $((size - 1)) "$SEALED" >"$W/cut.sealed"
refused "sealed: last byte cut off" "$W/cut.sealed" tampered
head -c $((size / 2)) "$SEALED" >"$W/half.sealed"
refused "sealed: cut in half" "$W/half.sealed" tampered
{ cat "$SEALED"; printf 'x'; } >"$W/longer.sealed"
refused "sealed: one byte appended" "$W/longer.sealed" tampered
refused "sealed: a key ring without its key id" "$SEALED" seal1 "$W/other.keys"
refused "sealed: the same key id with another key" "$SEALED" tampered "$W/samename.keys"
cp "$W/seal.keys" "$W/open.keys"
chmod 640 "$W/open.keys"
refused "sealed: a group-readable key ring" "$SEALED" "$W/open.keys" "$W/open.keys"
# The key ring's second key still opens files sealed with it: rotation.
(umask 077; { grep '^seal0 ' "$W/seal.keys"; grep '^seal1 ' "$W/seal.keys"; } >"$W/rotated.keys")
decrypt decrypt-rotated "$SEALED" --seal-keys "$W/rotated.keys" --out "$W/rotated.json"
if ((RC == 0)) && cmp -s "$W/rotated.json" "$J"; then
    ok "sealed: an old key further down a rotated ring still decrypts"
else
    fail "sealed: an old key further down a rotated ring still decrypts" "exit $RC: $(head -c 300 "$LOGS/decrypt-rotated.err")"
fi

# ---------------------------------------------------------------- no full card number anywhere

# masked forms in the decrypted reports: BIN + last 4 + token, the reference masked
tok=$(printf '%s' "$N4" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$PAN_KEY" | sed 's/.*= *//')
if jq -e --arg tok "pan1:$tok" "$LIST"'[list[] | select(.settlement.card.bin == "411111" and .settlement.card.last4 == "1111")] |
        length >= 1 and all(.settlement.card.token == $tok)' "$PLAIN/pci-generic.json" >/dev/null 2>&1; then
    ok "pci: the report describes the card as BIN 411111, last 4 1111 and its HMAC-SHA256 token"
else
    fail "pci: the report describes the card as BIN 411111, last 4 1111 and its token" "$(jq -c "$LIST"'[list[].settlement.card]' "$PLAIN/pci-generic.json" 2>&1 | head -c 600)"
fi
if grep -q 'ord 411111\*\*\*\*\*\*1111' "$PLAIN/pci-generic.json" && grep -q 'psp 5555-55\*\*-\*\*\*\*-4444' "$PLAIN/pci-generic.csv" &&
    grep -q "panA400005\*\*\*\*\*\*5556" "$PLAIN/pci-generic.json" && grep -q "panB400005\*\*\*\*\*\*5556" "$PLAIN/pci-generic.json"; then
    ok "pci: references and PSP ids are masked in place (first 6, last 4 kept)"
else
    fail "pci: references and PSP ids are masked in place" "$(jq -c "$LIST"'[list[] | [.reference, .settlement.psp_id]]' "$PLAIN/pci-generic.json" 2>&1 | head -c 800)"
fi
got=$(q "SELECT count(*) FROM recon_breaks WHERE card_bin = '411111' AND card_last4 = '1111' AND card_token = 'pan1:$tok'")
if [[ "$got" =~ ^[0-9]+$ ]] && ((got >= 3)); then ok "pci: recon_breaks keeps BIN, last 4 and token ($got rows)"; else fail "pci: recon_breaks keeps BIN, last 4 and token" "got '$got'"; fi

DUMP=$W/eu.sql
if "$PG_DUMP" --no-owner -d "$ADMIN_CI" -f "$DUMP" 2>"$W/dump.err" && [[ -s "$DUMP" ]]; then
    ok "pci: pg_dump of eu ($(($(stat -c %s "$DUMP") / 1024)) KiB)"
else
    fail "pci: pg_dump of eu" "$(head -c 500 "$W/dump.err")"
fi
# The dump as it stands after every run of this test (the big runs below add
# no card). The Luhn scan reads the part of it the reconciliation role can
# write (the recon tables, its audit events: the role checks below show it can
# write nothing else) plus every output; the ledger tables hold what other
# tests wrote, card-like ids included (e.g. a bench owner "x-1795624668-10516"
# passes Luhn), which is not this job's doing. The seeded numbers are searched
# for in the whole dump.
perl -ne 'if (/^COPY public\.(\w+) /) { $t = $1 } elsif (/^\\\.$/) { $t = "" }
          elsif ($t =~ /^recon_/ || ($t eq "audit_log" && /\trecon\.run\t/)) { print }' "$DUMP" >"$W/eu-recon-part.sql"
rows=$(wc -l <"$W/eu-recon-part.sql")
if ((rows == 0)); then
    fail "pci: the recon tables found in the dump" "no COPY rows of recon_* or recon.run in $DUMP"
elif found=$(luhn_scan "$W/eu-recon-part.sql" "$LOGS"/* "$PLAIN"/* "$OUT"/*); then
    ok "pci: no card number (Luhn) in the recon tables and recon.run events of the dump ($rows rows), the command output, the reports, the sealed files"
else
    fail "pci: no card number (Luhn) in the recon tables and recon.run events of the dump, the command output, the reports, the sealed files" "$found"
fi
SCAN_FILES=("$DUMP" "$LOGS"/* "$PLAIN"/* "$OUT"/*)
leaks=""
res=()
for pan in "${PANS[@]}"; do res+=(-e "$(pan_re "$pan")"); done
if grep -a -q "${res[@]}" -- "${SCAN_FILES[@]}"; then # one pass; then which card, where
    for pan in "${PANS[@]}"; do
        hit=$(pan_grep "$pan" "${SCAN_FILES[@]}" || true)
        [[ -z "$hit" ]] || leaks+="${pan:0:6}...${pan: -4} in $(tr '\n' ' ' <<<"$hit"); "
    done
fi
# The ledger keeps its own card-like reference; only the ledger tables may hold it.
perl -ne 'print unless /^COPY public\.(transfers|entries) / .. /^\\\.$/' "$DUMP" >"$W/eu-recon.sql"
hit=$(pan_grep "$LEDGER_PAN" "$W/eu-recon.sql" "$LOGS"/* "$PLAIN"/* "$OUT"/* || true)
[[ -z "$hit" ]] || leaks+="${LEDGER_PAN:0:6}...${LEDGER_PAN: -4} (ledger reference) in $(tr '\n' ' ' <<<"$hit"); "
if [[ -z "$leaks" ]]; then
    ok "pci: none of the seeded card numbers, in any spelling, outside the ledger's own tables"
else
    fail "pci: none of the seeded card numbers, in any spelling, outside the ledger's own tables" "$leaks"
fi

# A card number with other digits next to it (an expiry after it, a quantity
# before it) is still a full card number in the text. (Numbers of their own,
# so that a leak here shows only in this check.)
{
    echo "$HDR_generic"
    echo "exp 4242 4242 4242 4242 12/26,qty 2 5105105105105100,charge,EUR,1.21,0.00,1.21,$tg,$tg,x"
} >"$FILES/pci-adjacent.generic.csv"
recon pci-adjacent --source generic --file "$FILES/pci-adjacent.generic.csv" --account "$CLEAN"
decrypt decrypt-pci-adjacent "$(jq -r '.report_json // "none"' "$LOGS/pci-adjacent.out" 2>/dev/null)" --seal-keys "$W/seal.keys"
id=$(jq -r .run_id "$LOGS/pci-adjacent.out" 2>/dev/null || echo none)
q "SELECT reference, psp_id FROM recon_breaks WHERE run_id = '$id'" >"$W/adjacent.rows"
hit=""
for pan in 4242424242424242 5105105105105100; do
    if pan_grep "$pan" "$LOGS/decrypt-pci-adjacent.out" "$W/adjacent.rows" >/dev/null; then hit+="${pan:0:6}...${pan: -4} "; fi
done
if ((RC == 0)) && [[ -s "$LOGS/decrypt-pci-adjacent.out" && -z "$hit" ]]; then
    ok "pci: a card number next to other digits ('4242 4242 4242 4242 12/26', 'qty 2 5105...') is masked too"
else
    fail "pci: a card number next to other digits ('4242 4242 4242 4242 12/26', 'qty 2 5105...') is masked too" \
        "full number kept for ${hit:-?}: $(jq -c "$LIST"'[list[] | select(.settlement) | [.reference, .settlement.psp_id]]' "$LOGS/decrypt-pci-adjacent.out" 2>&1 | head -c 300)"
fi

# ---------------------------------------------------------------- PCI: the spelling corpus (issue 11)

# Random Luhn-valid cards of each length (13, 14, 15, 16, 19: fresh each run,
# so a chance concatenation of other digits cannot look like one), written with
# every separator pan.h lists (alone, repeated, mixed, UTF-8 spaces and dashes,
# each group in brackets), glued to letters or inside words, in every text
# column of every format (and the header). Then every output is scanned with
# all non-digits removed ('*', the mask, kept as a break): no card's digits may
# appear in a row, whatever separators were between them.
cat >"$W/corpus.pl" <<'PERL'
use strict;
use warnings;
my ($fmt, $ts, $file, $expect) = @ARGV;
sub luhn_digit { # the check digit that makes PREFIX+digit pass Luhn
    my @d = reverse split //, $_[0];
    my $s = 0;
    for my $i (0 .. $#d) { my $v = $d[$i]; if ($i % 2 == 0) { $v *= 2; $v -= 9 if $v > 9 } $s += $v }
    return (10 - $s % 10) % 10;
}
sub card { my ($pre, $n) = @_; my $p = $pre; $p .= int(rand(10)) while length($p) < $n - 1; return $p . luhn_digit($p) }
my @cards = (card('4', 13), card('36', 14), card('37', 15), card('4', 16), card('51', 16), card('62', 19));
my %groups = (13 => [4, 4, 5], 14 => [4, 6, 4], 15 => [4, 6, 5], 16 => [4, 4, 4, 4], 19 => [4, 4, 4, 4, 3]);
my @seps = (' ', '-', '.', '/', '_', ':', '+', '  ', '   ', ' - ', '--', '..', ' / ', '-.-', '_:_',
            "\xc2\xa0", "\xe2\x80\xaf", "\xe2\x80\x87", "\xe2\x80\x89", "\xe2\x80\x8b", "\xe2\x80\x90",
            "\xe2\x80\x91", "\xe2\x80\x93", "\xe2\x80\x94", "\xe2\x88\x92", "\xe3\x80\x80", "\xc2\xa0-\xc2\xa0",
            'PAREN', 'BRACKET', 'BRACE');
my @ascii = grep { !/[\x80-\xff]/ && !/^[A-Z]/ } @seps; # for `type` (at most 64 bytes)
my ($k, $cells, @exp) = (0, 0);
sub spelling { # the k-th (card, separator) pair of the corpus, spelled
    my ($ascii_only) = @_;
    my @s = $ascii_only ? @ascii : @seps;
    my $c = $cards[$k % @cards];
    my $sep = $s[int($k / @cards) % @s];
    $k++;
    my ($off, @g) = (0);
    for my $len (@{ $groups{length $c} }) { push @g, substr($c, $off, $len); $off += $len }
    $cells++;
    return '(' . join(') (', @g) . ')' if $sep eq 'PAREN';
    return '[' . join('][', @g) . ']' if $sep eq 'BRACKET';
    return '{' . join('} {', @g) . '}' if $sep eq 'BRACE';
    return join($sep, @g);
}
my %hdr = (
    generic => 'reference,psp_id,type,currency,gross,fee,net,created_at,settled_at,note',
    stripe => 'automatic_payout_id,automatic_payout_effective_at,balance_transaction_id,created_utc,available_on_utc,currency,gross,fee,net,reporting_category,source_id,description,charge_created_utc,payment_intent_id,card_brand,payment_metadata[reference]',
    adyen => 'Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,Net Currency,Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),Payment Method Variant,Batch Number');
open(my $out, '>:raw', $file) or die "$file: $!";
print $out $hdr{$fmt}, ',extra ', spelling(0), "\n";
my $rows = int(@cards * @seps / 6) + 1; # every pair at least once over the file's cells
for my $r (1 .. $rows) {
    my $amt = sprintf('%d.%02d', 1 + $r, $r % 100);
    my $first = $cards[$k % @cards]; # the row's first card, in column order: the one described
    my @f;
    if ($fmt eq 'generic') {
        @f = ('ref ' . spelling(0), 'psp' . spelling(0) . 'x', 'charge' . spelling(1), 'EUR', $amt, '0.00', $amt, $ts, $ts,
              'note: card no. ' . spelling(0) . ' thanks');
    } elsif ($fmt eq 'stripe') {
        my $a = 'po_' . spelling(0);
        @f = ($a, $ts, 'txn_' . spelling(0), $ts, $ts, 'eur', $amt, '0.00', $amt, 'charge' . spelling(1),
              'src ' . spelling(0), 'Paid with ' . spelling(0) . '.', $ts, 'pi' . spelling(0), 'visa ' . spelling(0),
              'ord ' . spelling(0));
    } else {
        @f = ('Co ' . spelling(0), 'Acct' . spelling(0), 'psp ' . spelling(0), 'ord' . spelling(0) . 'x',
              'visa ' . spelling(0), $ts, 'UTC', 'settled' . spelling(1), 'mod ' . spelling(0), 'EUR', '', $amt, '1',
              'EUR', '', $amt, '', '', '', '', 'v ' . spelling(0), '7');
    }
    push @f, spelling(0);
    print $out join(',', @f), "\n";
    my $bin = substr($first, 0, length($first) - 10 < 6 ? length($first) - 10 : 6);
    push @exp, ($r + 1) . "|$bin|" . substr($first, -4);
}
close $out;
open(my $e, '>', $expect) or die;
print $e "rows $rows\ncells $cells\n", map({ "card $_\n" } @cards), map({ "line $_\n" } @exp);
close $e;
PERL
# digit_scan FILE...: the files holding a card of $W/corpus.cards in any spelling
# (every byte but digits and '*' removed, then a plain search): exit 0 = found
cat >"$W/digit_scan.pl" <<'PERL'
use strict;
use warnings;
my $cards = shift;
open(my $c, '<', $cards) or die;
my @cards = map { chomp; $_ } <$c>;
my $hits = 0;
local $/;
for my $f (@ARGV) {
    open(my $fh, '<:raw', $f) or next;
    my $t = <$fh> // '';
    $t =~ s/[^0-9*]//g;
    for my $p (@cards) {
        next if index($t, $p) < 0;
        $hits++;
        print "$f: " . substr($p, 0, 6) . '...' . substr($p, -4) . ' (' . length($p) . " digits)\n";
    }
}
exit($hits ? 0 : 1);
PERL
acct CORPUS psp_clearing
[[ -z "$SETUP_ERR" ]] || fail "corpus: a clearing account" "$SETUP_ERR"
: >"$W/corpus.cards"
# the scanner, checked first: it sees a card hidden by any separator and misses a masked one
printf 'a 4111\xc2\xa01111 (1111) 1111 b\n' >"$W/scan-yes.txt"
printf 'a 411111******1111 b 4111 11** **** 1111\n' >"$W/scan-no.txt"
echo 4111111111111111 >"$W/scan.cards"
if perl "$W/digit_scan.pl" "$W/scan.cards" "$W/scan-yes.txt" >/dev/null && ! perl "$W/digit_scan.pl" "$W/scan.cards" "$W/scan-no.txt" >/dev/null; then
    ok "corpus scanner: finds a card through NBSP and brackets, not a masked one"
else
    fail "corpus scanner: finds a card through NBSP and brackets, not a masked one" "digit_scan.pl misfires"
fi
CORPUS_IDS=()
for f in generic stripe adyen; do
    perl "$W/corpus.pl" "$f" "$(tfmt "$f" "$NOW")" "$FILES/corpus.$f.csv" "$W/corpus.$f.expect"
    grep '^card ' "$W/corpus.$f.expect" | cut -d' ' -f2 >>"$W/corpus.cards"
    rows=$(awk '$1 == "rows" {print $2}' "$W/corpus.$f.expect")
    cells=$(awk '$1 == "cells" {print $2}' "$W/corpus.$f.expect")
    if perl "$W/digit_scan.pl" "$W/corpus.cards" "$FILES/corpus.$f.csv" >/dev/null; then
        ok "corpus-$f: the file holds the corpus ($rows rows, $cells cards spelled)"
    else
        fail "corpus-$f: the file holds the corpus" "the scanner sees no card in it"
    fi
    recon "corpus-$f" --source "$f" --file "$FILES/corpus.$f.csv" --account "$CORPUS"
    # every row is read (no date or amount masked by mistake) and is a break:
    # missing_in_ledger, or duplicate where two rows spell a card alike (same masked key)
    got=$(summary "$LOGS/corpus-$f.out")
    if ((RC == 4)) && jq -e --argjson n "$rows" '.lines == $n and .malformed_lines == 0 and .breaks == $n and
            .by_class.missing_in_ledger + .by_class.duplicate == $n' "$LOGS/corpus-$f.out" >/dev/null 2>&1; then
        ok "corpus-$f: exit 4, $rows lines read, none malformed, $rows breaks ($got)"
    else
        fail "corpus-$f: exit 4, $rows lines read, none malformed, $rows breaks" "exit $RC: $got $(head -c 300 "$LOGS/corpus-$f.err")"
    fi
    got=$(jq -r .pans_masked "$LOGS/corpus-$f.out" 2>/dev/null || echo none)
    check "corpus-$f: pans_masked counts every spelling of the file ($cells)" test "$got" = "$cells"
    id=$(jq -r '.run_id // "none"' "$LOGS/corpus-$f.out" 2>/dev/null || echo none)
    CORPUS_IDS+=("$id")
    got=$(q "SELECT string_agg(line_no || '|' || card_bin || '|' || card_last4, ' ' ORDER BY line_no) FROM recon_breaks WHERE run_id = '$id'")
    want=$(grep '^line ' "$W/corpus.$f.expect" | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//')
    if [[ "$got" == "$want" ]]; then
        ok "corpus-$f: each break keeps first min(6, n-10) + last 4 of its row's first card"
    else
        fail "corpus-$f: each break keeps first min(6, n-10) + last 4 of its row's first card" "got '$got', want '$want'"
    fi
    for kind in json csv; do
        sealed=$(jq -r ".report_$kind // empty" "$LOGS/corpus-$f.out" 2>/dev/null || true)
        decrypt "decrypt-corpus-$f-$kind" "${sealed:-none}" --seal-keys "$W/seal.keys" --out "$PLAIN/corpus-$f.$kind"
        if ((RC != 0)) || [[ ! -s "$PLAIN/corpus-$f.$kind" ]]; then
            fail "corpus-$f: the $kind report decrypts" "exit $RC: $(head -c 300 "$LOGS/decrypt-corpus-$f-$kind.err")"
        fi
    done
done
# every region's dump (the job writes eu only; the others prove nothing leaked elsewhere)
CORPUS_SCAN=("$LOGS"/* "$PLAIN"/* "$OUT"/*)
for region in eu us sg; do
    ci=$(conf_value "$region" admin_conninfo)
    if [[ -n "$ci" ]] && "$PG_DUMP" --no-owner -d "$ci" -f "$W/corpus-$region.sql" 2>"$W/dump-$region.err" && [[ -s "$W/corpus-$region.sql" ]]; then
        CORPUS_SCAN+=("$W/corpus-$region.sql")
    else
        fail "corpus: pg_dump of $region" "$(head -c 300 "$W/dump-$region.err" 2>/dev/null)"
    fi
done
# the PostgreSQL servers' logs (a failed COPY would quote its row there)
while IFS= read -r -d '' log; do CORPUS_SCAN+=("$log"); done < <(find "$TEST_DIR" -maxdepth 4 -type f \( -name '*.log' -o -path '*/log/*' \) -print0 2>/dev/null)
n_files=${#CORPUS_SCAN[@]}
if found=$(perl "$W/digit_scan.pl" "$W/corpus.cards" "${CORPUS_SCAN[@]}"); then
    fail "corpus: no card of the corpus, in any spelling, in the dumps of eu/us/sg, server logs, stdout/stderr, reports" "$found"
else
    ok "corpus: no card of the corpus, in any spelling, in the dumps of eu/us/sg, server logs, stdout/stderr, reports ($n_files files, $(wc -l <"$W/corpus.cards") cards)"
fi

# ---------------------------------------------------------------- the reconciliation role

# as_recon SQL: the statement as geoledger_recon (stdout + stderr)
as_recon() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$RECON_CI" -c "$1" 2>&1; }
got=$(as_recon "SELECT current_user")
check "role: psql connects as geoledger_recon" test "$got" = geoledger_recon
for sql in "UPDATE accounts SET metadata = metadata WHERE false" \
    "DELETE FROM transfers WHERE false" \
    "DELETE FROM entries WHERE false" \
    "INSERT INTO transfers SELECT * FROM transfers WHERE false" \
    "TRUNCATE accounts" \
    "UPDATE recon_breaks SET explained = true WHERE false" \
    "DELETE FROM recon_runs WHERE false" \
    "DELETE FROM recon_malformed WHERE false" \
    "UPDATE recon_runs SET operator = 'x' WHERE false" \
    "DELETE FROM audit_log WHERE false"; do
    got=$(as_recon "$sql" || true)
    if [[ "$got" == *"permission denied"* ]]; then
        ok "role: refused: $sql"
    else
        fail "role: refused: $sql" "got '$got'"
    fi
done
got=$(as_recon "SELECT count(*) >= 0 FROM transfers" || true)
check "role: reads the ledger" test "$got" = t
got=$(as_recon "BEGIN; INSERT INTO recon_runs (id, source, file_name, clearing_account, period_from, period_to, operator, host)
                VALUES (gen_random_uuid(), 'generic', 'f', gen_random_uuid(), now(), now() + interval '1 day', 'recon.sh', 'h');
                UPDATE recon_runs SET status = 'failed' WHERE false; ROLLBACK; SELECT 'inserted'" || true)
check "role: may insert a run and update its status (rolled back)" test "$got" = inserted

# ---------------------------------------------------------------- usage and failed runs

recon usage-memory --source generic --file "$FILES/clean.generic.csv" --account "$CLEAN" --memory-mb 4
check "usage: --memory-mb 4 exits 2" test "$RC" -eq 2
recon usage-source --source paypal --file "$FILES/clean.generic.csv" --account "$CLEAN"
check "usage: --source paypal exits 2" test "$RC" -eq 2
US_ACCT=$("$L" --json account create --region us --currency EUR --owner "$RUN" --kind psp_clearing 2>&1 | jq -r '.id // "none"' 2>/dev/null || true)
recon usage-region --source generic --file "$FILES/clean.generic.csv" --account "$US_ACCT"
check "usage: an account of another region exits 2" test "$RC" -eq 2
recon failed-nofile --source generic --file "$FILES/no-such-file.csv" --account "$CLEAN"
if ((RC == 3)) && grep -q 'no-such-file' "$LOGS/failed-nofile.err"; then
    ok "failed run: a missing file exits 3 and says which"
else
    fail "failed run: a missing file exits 3 and says which" "exit $RC: $(head -c 300 "$LOGS/failed-nofile.err")"
fi
printf 'reference,psp_id,type\n' >"$FILES/noheader.csv"
recon failed-header --source generic --file "$FILES/noheader.csv" --account "$CLEAN"
if ((RC == 3)) && grep -qi 'currency' "$LOGS/failed-header.err"; then
    ok "failed run: a missing required column exits 3 and names it"
else
    fail "failed run: a missing required column exits 3 and names it" "exit $RC: $(head -c 300 "$LOGS/failed-header.err")"
fi
got=$(q "SELECT count(*) FILTER (WHERE status = 'failed' AND error IS NOT NULL AND finished_at IS NOT NULL) || '/' || count(*)
         FROM recon_runs WHERE file_name IN ('$FILES/no-such-file.csv', '$FILES/noheader.csv')")
check "failed run: both recorded as failed in recon_runs, with the error ($got)" test "$got" = 2/2

# ---------------------------------------------------------------- a large file, many partitions

seed_out=$("$SEEDER" --config "$GEOLEDGER_CONFIG" --region eu --transfers 50000 --breaks 300 --file "$FILES/big.csv" 2>"$W/seed.err" || true)
BIG_ACCT=$(sed -n 's/.*clearing_account=\([0-9a-f-]*\).*/\1/p' <<<"$seed_out")
if [[ -n "$BIG_ACCT" && -s "$FILES/big.csv" ]]; then
    ok "large: recon-seed wrote 50000 transfers and their file ($seed_out)"
    kv() { sed -n "s/.* $1=\\([0-9]*\\).*/\\1/p" <<<" $seed_out"; }
    mil=$(kv missing_in_ledger) mis=$(kv missing_in_settlement) am=$(kv amount_mismatch)
    fm=$(kv fee_mismatch) cm=$(kv currency_mismatch) dup=$(kv duplicate)
    # every seeded transfer but the ones the ledger lacks; every line but the ones the file lacks, plus the repeats
    blines=$((50000 - mis + dup)) bledger=$((50000 - mil)) bmatched=$((50000 - mil - mis - am - fm - cm))
    bbreaks=$((mil + mis + am + fm + cm + dup))
    BIG_WANT="lines=$blines malformed=0 ledger=$bledger matched=$bmatched by_amount=0 breaks=$bbreaks unexplained=$bbreaks | missing_in_ledger=$mil missing_in_settlement=$mis amount_mismatch=$am fee_mismatch=$fm currency_mismatch=$cm duplicate=$dup"
    # A wide note column (800 bytes a line: a 40 MB file) makes the job cut it
    # into ~10 partitions at --memory-mb 8 (recon.c: file size / half the budget).
    pad=$(printf '%0800d' 0 | tr 0 n)
    awk -F, -v OFS=, -v pad="$pad" 'NR == 1 { print $0, "note"; next } { print $0, pad }' "$FILES/big.csv" >"$FILES/big.generic.csv"
    # The same lines as Stripe and Adyen reports (generic: reference,psp_id,type,currency,gross,fee,net,created_at,settled_at).
    awk -F, -v OFS=, -v h="$HDR_stripe,note" -v pad="$pad" 'NR == 1 { print h; next }
        { t = $8; sub(/T/, " ", t); sub(/\..*/, "", t)
          print "po_1", "", $2, t, t, tolower($4), $5, $6, $7, $3, "ch_" NR, "Ride", t, "pi_" NR, "visa", $1, pad }' \
        "$FILES/big.csv" >"$FILES/big.stripe.csv"
    awk -F, -v OFS=, -v h="$HDR_adyen,note" -v pad="$pad" 'NR == 1 { print h; next }
        { t = $8; sub(/T/, " ", t); sub(/\..*/, "", t)
          print "GeoLedgerCo", "GeoLedgerEU", $2, $1, "visa", t, "UTC", "Settled", "m" NR, $4, "", $5, 1, $4, "", $7, $6, "", "", "", "visacredit", 9, pad }' \
        "$FILES/big.csv" >"$FILES/big.adyen.csv"
    for f in generic stripe adyen; do
        t0=$(date +%s%N)
        recon "large-$f-8mb" --source $f --file "$FILES/big.$f.csv" --account "$BIG_ACCT" --memory-mb 8
        ms=$((($(date +%s%N) - t0) / 1000000))
        expect "large-$f-8mb" 4 "$BIG_WANT"
        echo "    ($f: $(($(stat -c %s "$FILES/big.$f.csv") / 1048576)) MiB in $ms ms at --memory-mb 8)"
    done
    # A report of several 64 KiB chunks: it opens, and a copy cut exactly at
    # the end of its first chunk (header 27 bytes + 65536 + a 16-byte tag) is refused.
    big_sealed=$(jq -r '.report_json // empty' "$LOGS/large-generic-8mb.out" 2>/dev/null || true)
    decrypt decrypt-large "${big_sealed:-none}" --seal-keys "$W/seal.keys" --out "$W/large.json"
    n=$(jq "$LIST"'list | length' "$W/large.json" 2>/dev/null || echo none)
    if ((RC == 0)) && [[ "$n" == "$bbreaks" ]] && (($(stat -c %s "$big_sealed") > 27 + 65552 + 16 + 1000)); then
        ok "large: the $(($(stat -c %s "$big_sealed") / 1024)) KiB sealed report (several chunks) opens, with its $n breaks"
    else
        fail "large: the sealed report (several chunks) opens, with its breaks" "exit $RC, $n breaks: $(head -c 300 "$LOGS/decrypt-large.err")"
    fi
    if [[ -n "$big_sealed" && -s "$big_sealed" ]]; then
        head -c $((27 + 65536 + 16)) "$big_sealed" >"$W/boundary.sealed"
        refused "sealed: cut exactly at a chunk boundary" "$W/boundary.sealed" tampered
        cp "$big_sealed" "$W/chunk1.sealed"
        off=$((27 + 65552 + 1000))
        byte=$(od -An -tu1 -j "$off" -N1 "$big_sealed" | tr -d ' ')
        printf "\\$(printf '%03o' $((byte ^ 128)))" | dd of="$W/chunk1.sealed" bs=1 seek="$off" conv=notrunc status=none
        refused "sealed: one bit flipped in the second chunk" "$W/chunk1.sealed" "chunk 1"
    fi
    recon large-generic-default --source generic --file "$FILES/big.generic.csv" --account "$BIG_ACCT"
    expect large-generic-default 4 "$BIG_WANT"
    if [[ -z "$(find "$WORK" -mindepth 1 2>/dev/null)" ]]; then
        ok "large: no work file left after the runs"
    else
        fail "large: no work file left after the runs" "$(find "$WORK" -mindepth 1 | head -5 | tr '\n' ' ')"
    fi
    # Peak memory with GNU time where it is installed (not under ASan, whose shadow memory dominates).
    if [[ -x /usr/bin/time && "$BUILD" != *asan* ]] && /usr/bin/time -f %M true >/dev/null 2>&1; then
        rss() { # rss MEMORY_MB -> peak RSS in KiB
            /usr/bin/time -f 'rss=%M' -o "$W/time.$1" "$L" --json recon run --region eu --pan-keys "$W/pan.keys" \
                --seal-keys "$W/seal.keys" --out "$OUT" --work-dir "$WORK" --from "$FROM" --to "$TO" --source generic \
                --file "$FILES/big.generic.csv" --account "$BIG_ACCT" --memory-mb "$1" >"$LOGS/rss-$1.out" 2>&1 || true
            jq -r '.run_id // empty' "$LOGS/rss-$1.out" 2>/dev/null >>"$W/rss-ids" || true
            sed -n 's/^rss=//p' "$W/time.$1"
        }
        r8=$(rss 8)
        if [[ "$r8" =~ ^[0-9]+$ ]] && ((r8 < 64 * 1024)); then
            ok "large: peak RSS at --memory-mb 8 is $((r8 / 1024)) MiB for a $(($(stat -c %s "$FILES/big.generic.csv") / 1048576)) MiB file"
        else
            fail "large: peak RSS at --memory-mb 8 under 64 MiB" "got '${r8}' KiB"
        fi
        while read -r x; do RUN_IDS+=("$x"); done <"$W/rss-ids"
    fi
else
    fail "large: recon-seed wrote 50000 transfers and their file" "$seed_out $(head -c 500 "$W/seed.err")"
fi

# ---------------------------------------------------------------- audit

"$L" --json audit show --region eu --limit 1000 >"$W/audit.json" 2>"$W/audit.err" || true
ACTOR=$(id -un)
HOST=$(uname -n)
missing=""
for id in "${RUN_IDS[@]}"; do
    if ! jq -e --arg id "$id" --arg actor "$ACTOR" --arg host "$HOST/" '
            [.rows[] | select(.action == "recon.run" and .object == $id)] | length == 1 and
            (.[0] | .actor == $actor and .outcome == "success" and (.source | startswith($host)) and
             (.source | ltrimstr($host) | test("^[0-9]+$")) and .detail.run_id == $id)' "$W/audit.json" >/dev/null 2>&1; then
        missing+="$id "
    fi
done
if ((${#RUN_IDS[@]} >= 20)) && [[ -z "$missing" ]]; then
    ok "audit: one recon.run event per run (${#RUN_IDS[@]}), actor $ACTOR, source $HOST/<pid>, outcome success"
else
    fail "audit: one recon.run event per run" "${#RUN_IDS[@]} runs; not found or wrong: $missing $(head -c 300 "$W/audit.err")"
fi
id=$(jq -r .run_id "$LOGS/breaks-generic.out" 2>/dev/null || echo none)
sha=$(sha256sum "$FILES/breaks.generic.csv" | cut -d' ' -f1)
if jq -e --arg id "$id" --arg sha "$sha" --arg file "$FILES/breaks.generic.csv" '
        [.rows[] | select(.object == $id)][0].detail |
        .file == $file and .file_sha256 == $sha and .status == "breaks" and .lines == 11 and .breaks == 8 and .unexplained == 7' \
    "$W/audit.json" >/dev/null 2>&1; then
    ok "audit: the event's detail has the file, its SHA-256 and the counts"
else
    fail "audit: the event's detail has the file, its SHA-256 and the counts" "$(jq -c --arg id "$id" '[.rows[] | select(.object == $id)][0]' "$W/audit.json" 2>&1 | head -c 800)"
fi
n=$(jq --arg f "$FILES/no-such-file.csv" '[.rows[] | select(.action == "recon.run" and .outcome == "failure" and .detail.file == $f and .detail.status == "failed")] | length' "$W/audit.json" 2>/dev/null || echo none)
check "audit: the failed run is audited as a failure" test "$n" = 1
rc=0
"$L" audit verify --region eu >"$W/verify.out" 2>&1 || rc=$?
if ((rc == 0)); then ok "audit: ledgerctl audit verify --region eu exits 0"; else fail "audit: ledgerctl audit verify --region eu exits 0" "exit $rc: $(tail -c 600 "$W/verify.out")"; fi

echo "    (recon.sh: $((SECONDS - START)) s)"
SUMMARY_DONE=1
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
