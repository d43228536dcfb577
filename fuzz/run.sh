#!/usr/bin/env bash
# fuzz/run.sh — build and run the libFuzzer harnesses (fuzz/README.md).
#
# Usage: fuzz/run.sh [harness...]        (default: every fuzz/fuzz_*.c)
# Environment: BUILD (build), FUZZ_SECONDS (20, per harness), FUZZ_MERGE (0;
# 1 merges new interesting inputs into fuzz/corpus/<name>), FUZZ_CC (clang),
# MAKE (make). Normally run by `make fuzz`.
#
# Per harness: builds build/fuzz/bin/fuzz_<name>, copies fuzz/corpus/<name>
# into build/fuzz/work/<name>/corpus (the committed corpus is not grown), runs
# libFuzzer for FUZZ_SECONDS with -print_final_stats=1, and prints the
# executions and whether it found anything (crash, leak, timeout, OOM: the
# input is kept in build/fuzz/work/<name>/artifacts/). Last line:
# "N passed, N failed". Exit status 1 if a harness failed to build or found
# something, 2 when the tools cannot be installed.
set -uo pipefail

PROG=run.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_MERGE=${FUZZ_MERGE:-0}
FUZZ_CC=${FUZZ_CC:-clang}
MAKE=${MAKE:-make}
FUZZ_DIR=$BUILD/fuzz

if ! [[ $FUZZ_SECONDS =~ ^[0-9]+$ ]] || ((FUZZ_SECONDS < 1)); then
    printf '%s: FUZZ_SECONDS must be a positive integer (got "%s")\n' "$PROG" "$FUZZ_SECONDS" >&2
    exit 2
fi

# ---- tools: the library's build packages (scripts/deps.sh), clang and its fuzzer runtime ----

PKGS=(libpq libconfig openssl uuid jansson libmicrohttpd) # the Makefile's PKGS
if ! scripts/deps.sh build; then
    if pkg-config --exists "${PKGS[@]}" 2>/dev/null; then
        printf '%s: warning: scripts/deps.sh build failed, but the libraries are installed: going on\n' "$PROG" >&2
    else
        printf '%s: the build packages are missing (scripts/deps.sh build)\n' "$PROG" >&2
        exit 2
    fi
fi

fuzzer_link_ok() {
    local tmp
    tmp=$(mktemp -d) || return 1
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$tmp/t.c"
    "$FUZZ_CC" -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" >/dev/null 2>&1
    local rc=$?
    rm -rf "$tmp"
    return $rc
}

if ! command -v "$FUZZ_CC" >/dev/null 2>&1 || ! fuzzer_link_ok || ! command -v llvm-symbolizer >/dev/null 2>&1; then
    pkgs=(clang libclang-rt-dev llvm)
    if [[ $EUID -ne 0 ]]; then
        printf '%s: clang with its fuzzer runtime is missing. Run: sudo apt-get install -y %s\n' "$PROG" "${pkgs[*]}" >&2
        exit 2
    fi
    echo "$PROG: installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${pkgs[@]}"; then
        if ! { apt-get update && apt-get install -y --no-install-recommends "${pkgs[@]}"; }; then
            printf '%s: apt-get install failed for: %s\n' "$PROG" "${pkgs[*]}" >&2
            exit 2
        fi
    fi
    fuzzer_link_ok || {
        printf '%s: %s cannot link a -fsanitize=fuzzer program\n' "$PROG" "$FUZZ_CC" >&2
        exit 2
    }
fi

# ---- harnesses ----

if (($# > 0)); then
    harnesses=("$@")
else
    harnesses=()
    for f in fuzz/fuzz_*.c; do
        n=${f#fuzz/fuzz_}
        harnesses+=("${n%.c}")
    done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:symbolize=1}
command -v llvm-symbolizer >/dev/null 2>&1 && export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}

jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
summary=()

for h in "${harnesses[@]}"; do
    bin=$FUZZ_DIR/bin/fuzz_$h
    work=$FUZZ_DIR/work/$h
    mkdir -p "$work"
    echo "== fuzz_$h: build"
    if ! $MAKE --no-print-directory -j"$jobs" BUILD="$BUILD" FUZZ_CC="$FUZZ_CC" "$bin" >"$work/build.log" 2>&1; then
        tail -n 30 "$work/build.log" >&2
        summary+=("fuzz_$h: BUILD FAILED (see $work/build.log)")
        failed=$((failed + 1))
        continue
    fi

    rm -rf "$work/corpus" "$work/artifacts"
    mkdir -p "$work/corpus" "$work/artifacts"
    if [[ -d fuzz/corpus/$h ]]; then
        cp -p fuzz/corpus/"$h"/* "$work/corpus/" 2>/dev/null || true
    fi

    echo "== fuzz_$h: ${FUZZ_SECONDS}s"
    start=$(date +%s)
    "$bin" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048 \
        -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/fuzz.log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    ((secs > 0)) || secs=1

    execs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$work/fuzz.log" | tail -n 1)
    per_s=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$work/fuzz.log" | tail -n 1)
    execs=${execs:-?}
    per_s=${per_s:-?}
    artifacts=$(find "$work/artifacts" -type f | sort)

    if ((rc == 0)) && [[ -z $artifacts ]]; then
        line="fuzz_$h: $execs executions in ${secs}s ($per_s exec/s), no crash"
        passed=$((passed + 1))
    else
        kind=$(grep -m1 -oE 'fuzz_[a-z0-9_]+\.c:[0-9]+: invariant violated|ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer): [a-zA-Z-]+|runtime error: .*|ERROR: libFuzzer: [a-z -]+' "$work/fuzz.log" || true)
        line="fuzz_$h: $execs executions in ${secs}s ($per_s exec/s), FOUND: ${kind:-exit status $rc}"
        [[ -n $artifacts ]] && line+=" -> $(echo "$artifacts" | tr '\n' ' ')"
        line+="(log: $work/fuzz.log)"
        failed=$((failed + 1))
        grep -m1 -B2 -A25 -E 'invariant violated|^==[0-9]+==ERROR|runtime error:|deadly signal' "$work/fuzz.log" >&2 || tail -n 40 "$work/fuzz.log" >&2
    fi
    echo "$line"
    summary+=("$line")

    if [[ $FUZZ_MERGE == 1 ]] && ((rc == 0)); then
        mkdir -p fuzz/corpus/"$h"
        "$bin" -merge=1 fuzz/corpus/"$h" "$work/corpus" >"$work/merge.log" 2>&1 &&
            echo "fuzz_$h: merged into fuzz/corpus/$h ($(find fuzz/corpus/"$h" -type f | wc -l) files)"
    fi
done

echo
echo "== summary"
for line in "${summary[@]}"; do echo "$line"; done
echo "$passed passed, $failed failed"
((failed == 0))
