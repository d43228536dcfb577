#!/usr/bin/env bash
# npm-tool.sh PACKAGE VERSION BIN — installs a pinned command-line tool from the
# npm registry (once; reused while the version matches) and prints the path of
# its executable BIN. The test and lint steps take their Node.js tools from here:
# @redocly/cli (api/lint-openapi.sh) and @stoplight/prism-cli (the contract proxy
# of tests/http.sh).
#
# Each package gets its own prefix, build/npm/<package>, because an `npm install
# --no-save` into a shared prefix prunes the packages installed before it.
# Node.js and npm come from Debian (apt-get install nodejs npm, as root) when
# the machine has none. Exits non-zero, saying why, when the tool cannot be
# installed (e.g. the npm registry is unreachable).
#
# Env: NPM_TOOL_PREFIX  the parent of the prefixes (default <repo>/build/npm)
set -euo pipefail

die() { echo "npm-tool: $*" >&2; exit 1; }
(($# == 3)) || die "usage: npm-tool.sh PACKAGE VERSION BIN"
pkg=$1 version=$2 bin=$3

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${NPM_TOOL_PREFIX:-$root/build/npm}/${pkg//[@\/]/_}
exe=$prefix/node_modules/.bin/$bin

# The network is closed except for the npm registry: no update checks.
export NO_UPDATE_NOTIFIER=1 npm_config_update_notifier=false

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    [[ $(id -u) == 0 ]] || die "node and npm not found: apt-get install nodejs npm"
    echo "npm-tool: installing nodejs and npm (Debian packages)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >&2 ||
        die "apt-get install nodejs npm failed"
fi

installed_version() {
    local manifest=$prefix/node_modules/$pkg/package.json
    [[ -f "$manifest" ]] || return 0
    node -e 'process.stdout.write(require(process.argv[1]).version)' "$manifest" 2>/dev/null || true
}

if [[ ! -x "$exe" || "$(installed_version)" != "$version" ]]; then
    echo "npm-tool: installing $pkg@$version into $prefix" >&2
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error "$pkg@$version" >&2 ||
        die "npm install of $pkg@$version failed (is the npm registry reachable?)"
    [[ -x "$exe" ]] || die "npm install of $pkg@$version did not provide $exe"
fi
printf '%s\n' "$exe"
