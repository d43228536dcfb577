#!/usr/bin/env bash
# deps.sh — check (and, as root, install) the Debian packages geoledger needs.
# Silent and fast when everything is installed: it runs on every make.
# See scripts/README.md.
set -euo pipefail

PROG=deps.sh

usage() {
    cat <<EOF
Usage: $PROG [build|test|bench|lint|all]   (default: all)

Checks that the Debian packages for the given purpose are installed.
Prints nothing and exits 0 if they all are. Otherwise, as root, installs the
missing ones with apt-get; as another user, prints the apt-get command to run
and exits 1.

  build  gcc make pkg-config libpq-dev libssl-dev uuid-dev libconfig-dev
         libjansson-dev libmicrohttpd-dev libgnutls28-dev (ledgerd's client
         certificate check) check libsubunit-dev
         libcurl4-openssl-dev (every `make` also builds the test programs,
         which link Check; the chaos client speaks HTTP through libcurl)
         libhiredis-dev (ledgerd's Redis stream publisher)
  test   postgresql-15 postgresql-client-15 curl jq openssl gnutls-bin (gnutls-cli:
         the TLS tests) prometheus (promtool)
         chromium (headless render of the HTML compliance report)
         redis-server redis-tools (the Redis stream: make run, tests/streams.sh)
         python3 (the webhook receiver of tests/webhooks.sh and make bench)
  bench  postgresql-15 wrk bc jq openssl time (GNU time: peak RSS of the recon run) python3 curl
  lint   cppcheck clang-tidy
EOF
}

BUILD_PKGS=(gcc make pkg-config libpq-dev libssl-dev uuid-dev libconfig-dev libjansson-dev libmicrohttpd-dev libgnutls28-dev check libsubunit-dev libcurl4-openssl-dev libhiredis-dev)
TEST_PKGS=(postgresql-15 postgresql-client-15 curl jq openssl gnutls-bin prometheus chromium redis-server redis-tools python3)
BENCH_PKGS=(postgresql-15 wrk bc jq openssl time python3 curl)
LINT_PKGS=(cppcheck clang-tidy)

if (($# > 1)); then
    usage >&2
    exit 2
fi

case "${1:-all}" in
    build) want=("${BUILD_PKGS[@]}") ;;
    test) want=("${TEST_PKGS[@]}") ;;
    bench) want=("${BENCH_PKGS[@]}") ;;
    lint) want=("${LINT_PKGS[@]}") ;;
    all) want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}" "${LINT_PKGS[@]}") ;;
    -h | --help | help)
        usage
        exit 0
        ;;
    *)
        printf '%s: unknown target %s\n' "$PROG" "$1" >&2
        usage >&2
        exit 2
        ;;
esac

command -v dpkg-query >/dev/null 2>&1 || {
    printf '%s: dpkg-query not found; this script supports Debian/Ubuntu only\n' "$PROG" >&2
    exit 1
}

# One dpkg-query call for all packages; packages dpkg has never heard of
# produce no line (and an error on stderr), so anything not reported as
# "install ok installed" is missing.
declare -A seen=()
declare -A installed=()
while IFS=' ' read -r pkg want_st err_st status; do
    if [[ "$want_st $err_st $status" == "install ok installed" ]]; then
        installed[$pkg]=1
    fi
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${want[@]}" 2>/dev/null || true)

missing=()
for pkg in "${want[@]}"; do
    [[ -z "${seen[$pkg]:-}" ]] || continue
    seen[$pkg]=1
    [[ -n "${installed[$pkg]:-}" ]] || missing+=("$pkg")
done

((${#missing[@]} == 0)) && exit 0

if [[ $EUID -ne 0 ]]; then
    echo "Missing packages. Run: sudo apt-get install -y ${missing[*]}"
    exit 1
fi

echo "$PROG: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update; then
    printf '%s: apt-get update failed\n' "$PROG" >&2
    exit 1
fi
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    printf '%s: apt-get install failed for: %s\n' "$PROG" "${missing[*]}" >&2
    exit 1
fi
