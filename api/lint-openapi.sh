#!/usr/bin/env bash
# Lints api/openapi.yaml with Redocly CLI (config: api/redocly.yaml).
#
# Redocly CLI is installed from the npm registry by scripts/npm-tool.sh (pinned
# version, installed once, reused afterwards). Exits non-zero on any lint
# error or warning, and when the tool cannot be installed or run.
#
# Usage: api/lint-openapi.sh        (from anywhere)
set -euo pipefail

REDOCLY_VERSION=2.77.0 # pinned: verified on Node 20.19+/22 with npm 10+

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The network is closed except for the npm registry: no usage data, no update
# check (Redocly CLI reads these at startup).
export REDOCLY_TELEMETRY=off
export REDOCLY_SUPPRESS_NOTIFICATIONS=true
export REDOCLY_SUPPRESS_UPDATE_NOTICE=true

die() { echo "lint-openapi: $*" >&2; exit 1; }

redocly=$("$here/../scripts/npm-tool.sh" @redocly/cli "$REDOCLY_VERSION" redocly) ||
    die "@redocly/cli@$REDOCLY_VERSION could not be installed (see above)"

lint() { (cd "$here" && "$redocly" lint --config redocly.yaml --max-problems 1000 "$@" openapi.yaml); }

# Machine-readable run first: its totals decide. Warnings fail the lint too:
# the spec must be clean, not merely valid. Problems silenced by a
# .redocly.lint-ignore.yaml count as well: rules are relaxed in redocly.yaml,
# with a reason, or not at all.
json=$(mktemp)
errs=$(mktemp)
trap 'rm -f "$json" "$errs"' EXIT
start=$(date +%s%N)
status=0
lint --format json >"$json" 2>"$errs" || status=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
totals=$(node -e '
    const t = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).totals;
    process.stdout.write(`${t.errors} ${t.warnings} ${t.ignored}`);' "$json" 2>/dev/null) || totals=""

if [ "$status" -eq 0 ] && [ "$totals" = "0 0 0" ]; then
    echo "lint-openapi: api/openapi.yaml is clean: 0 errors, 0 warnings" \
        "(redocly $REDOCLY_VERSION, ${elapsed_ms} ms)"
    exit 0
fi

# No report (unparsable YAML, bad config, crash): show what redocly said.
if [ -z "$totals" ]; then
    cat "$json" "$errs" >&2
    die "redocly lint failed (exit status $status) without a report; see the messages above"
fi
# Problems: show them in the readable format, then fail.
lint --format codeframe >&2 || true
read -r n_err n_warn n_ign <<<"$totals"
die "api/openapi.yaml: $n_err error(s), $n_warn warning(s), $n_ign ignored problem(s); fix the spec"
