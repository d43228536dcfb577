#!/usr/bin/env bash
# Appends a `ledgerd` group to a ledger.conf written by cluster.sh, with a
# development HS256 key (created once, mode 0600) for `ledgerctl token`, and
# HTTPS: a development CA and a localhost server certificate in
# $(dirname CONF)/ca (scripts/dev-ca.sh; clients use --cacert DIR/ca/ca.crt).
# Usage: scripts/ledgerd-conf.sh CONF KEYFILE PORT
# Env: LEDGERD_RATE_PER_S, LEDGERD_RATE_BURST (per principal; 0 = no limit), LEDGERD_LOG_LEVEL,
# LEDGERD_SHUTDOWN_TIMEOUT_MS (how long SIGTERM waits for queued work; default 5000),
# LEDGERD_CLIENT_CERTS (off | optional | required: client certificates signed by the dev CA;
# default off), LEDGERD_PLAIN_HTTP=1 (no TLS: plain_http = true, for a test that needs raw HTTP),
# LEDGERD_WEBHOOKS (the settings of the webhooks group; default: allow_private_targets = true, so a
# development receiver on localhost works — never in production), LEDGERD_BENCH_WITHOUT_EVENTS=1
# (make bench: no outbox, to measure what it costs).
set -euo pipefail
conf=$1 key=$2 port=$3
scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ "${LEDGERD_PLAIN_HTTP:-0}" == 1 ]]; then
    tls='plain_http = true;   # explicitly: no TLS (LEDGERD_PLAIN_HTTP=1)'
else
    ca=$(cd "$(dirname "$conf")" && pwd)/ca
    "$scripts/dev-ca.sh" "$ca"
    client_certs=${LEDGERD_CLIENT_CERTS:-off}
    [[ "$client_certs" =~ ^(off|optional|required)$ ]] || { echo "ledgerd-conf.sh: LEDGERD_CLIENT_CERTS must be off, optional or required" >&2; exit 2; }
    tls="tls = { cert_file = \"$ca/server.crt\"; key_file = \"$ca/server.key\";
          client_ca_file = \"$ca/ca.crt\"; client_certs = \"$client_certs\"; };"
fi
if [[ ! -s "$key" ]]; then
    umask 077
    openssl rand -hex 32 >"$key"
fi
chmod 600 "$key"
cat >>"$conf" <<CONF

# ledgerd (the HTTP API); the key is a development key made by scripts/ledgerd-conf.sh
ledgerd = {
  listen = "127.0.0.1"; port = $port; threads = 4;
  body_limit = 1048576; batch_max = 8189; queue_depth = 10000;
  idempotency_ttl_hours = 24; log_level = "${LEDGERD_LOG_LEVEL:-info}";
  shutdown_timeout_ms = ${LEDGERD_SHUTDOWN_TIMEOUT_MS:-5000};
  rate_per_s = ${LEDGERD_RATE_PER_S:-1000}; rate_burst = ${LEDGERD_RATE_BURST:-10000};
  auth = { algorithm = "HS256"; key_file = "$(cd "$(dirname "$key")" && pwd)/$(basename "$key")";
           issuer = "geoledger-dev"; audience = "geoledger"; clock_skew_s = 60; };
  $tls
  webhooks = { ${LEDGERD_WEBHOOKS:-allow_private_targets = true;} };
  $([[ "${LEDGERD_BENCH_WITHOUT_EVENTS:-0}" == 1 ]] && echo 'bench_without_events = true;   # make bench: the outbox off, measured')
};
CONF
