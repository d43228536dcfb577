#!/usr/bin/env bash
# Appends a `ledgerd` group to a ledger.conf written by cluster.sh, with a
# development HS256 key (created once, mode 0600) for `ledgerctl token`.
# Usage: scripts/ledgerd-conf.sh CONF KEYFILE PORT
set -euo pipefail
conf=$1 key=$2 port=$3
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
  idempotency_ttl_hours = 24; log_level = "info";
  auth = { algorithm = "HS256"; key_file = "$(cd "$(dirname "$key")" && pwd)/$(basename "$key")";
           issuer = "geoledger-dev"; audience = "geoledger"; clock_skew_s = 60; };
};
CONF
