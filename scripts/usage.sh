#!/usr/bin/env bash
# Printed at the end of `make run`: how to use the local cluster that is now up.
set -euo pipefail
conf=$1
ctl=$2
port=${3:-8080}
ca=$(dirname "$conf")/ca/ca.crt
cat <<MSG

geoledger is up: 3 regional PostgreSQL partitions (eu, us, sg) under ./var, migrated.
They take TLS (verify-full, CA in $(dirname "$conf")/pg/ca) and scram-sha-256 only; the passwords are in
$(dirname "$conf")/pg/secrets/*.pgpass (mode 0600), never in ledger.conf.

  export GEOLEDGER_CONFIG=$conf
  L=$ctl

  # a funding account (money enters there: it may go below zero) and a wallet (never below zero)
  A=\$(\$L --json account create --region eu --currency EUR --owner treasury --kind funding | jq -r .id)
  B=\$(\$L --json account create --region eu --currency EUR --owner app.rides | jq -r .id)

  \$L transfer --from \$A --to \$B --amount 2500 --currency EUR --reference topup-1    # 25.00 EUR
  H=\$(\$L --json transfer --from \$B --to \$A --amount 1200 --currency EUR --pending --timeout 600 | jq -r .id)
  \$L post \$H --amount 900          # capture 9.00, release the rest
  \$L account show \$B
  \$L statement \$B
  \$L verify                         # ledger invariants on every region

The HTTP API (ledgerd) serves HTTPS on https://localhost:$port (TLS 1.2/1.3), with a certificate
for localhost signed by a development CA made for this checkout ($ca):

  CA=$ca
  ISSUER=\$(\$L token --sub treasury --scope "accounts:read accounts:write accounts:issue transfers:write")
  TOKEN=\$(\$L token --sub app.rides)
  # money enters the ledger through a funding account: only accounts:issue may open one
  F=\$(curl -s --cacert \$CA -H "Authorization: Bearer \$ISSUER" -d '{"currency":"EUR","region":"eu","kind":"funding"}' \\
       https://localhost:$port/v1/accounts | jq -r .id)
  # a mini-app's accounts (wallet by default, merchant, ...) never go below zero
  W=\$(curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" -d '{"currency":"EUR","region":"eu"}' \\
       https://localhost:$port/v1/accounts | jq -r .id)
  M=\$(curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" -d '{"currency":"EUR","region":"eu","kind":"merchant"}' \\
       https://localhost:$port/v1/accounts | jq -r .id)
  curl -s --cacert \$CA -H "Authorization: Bearer \$ISSUER" -H "Idempotency-Key: topup-1" \\
       -d '{"debit_account_id":"'\$F'","credit_account_id":"'\$W'","amount":5000,"currency":"EUR","reference":"topup-1"}' \\
       https://localhost:$port/v1/transfers
  curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" -H "Idempotency-Key: pay-1" \\
       -d '{"debit_account_id":"'\$W'","credit_account_id":"'\$M'","amount":500,"currency":"EUR","reference":"ride-1"}' \\
       https://localhost:$port/v1/transfers          # a retry with the same key replays the same bytes
  curl -s --cacert \$CA https://localhost:$port/readyz

  # mandates: let another principal (a mini-app) charge a wallet within caps
  curl -s --cacert \$CA -H "Authorization: Bearer \$TOKEN" -d '{"wallet_account_id":"'\$W'","grantee":"app.shop","currency":"EUR",
       "max_amount_per_charge":5000,"max_amount_per_day":20000,"expires_at":"2027-01-01T00:00:00Z"}' \\
       https://localhost:$port/v1/mandates

  # mutual TLS for a service principal: a client certificate whose CN is the token's sub
  # (make run's ledger.conf has client_certs = "optional": a certificate is asked for, not required)
  scripts/dev-ca.sh $(dirname "$ca") client app.rides
  curl -s --cacert \$CA --cert $(dirname "$ca")/client-app.rides.crt --key $(dirname "$ca")/client-app.rides.key \\
       -H "Authorization: Bearer \$TOKEN" -d '{"currency":"EUR","region":"eu"}' https://localhost:$port/v1/accounts
  # the same with another principal's certificate is 401 client_certificate_mismatch

Reconciliation, compliance report and audit log (keys for dev in $(dirname "$conf")):

  export GEOLEDGER_PAN_KEYS=$(dirname "$conf")/pan.keys GEOLEDGER_SEAL_KEYS=$(dirname "$conf")/seal.keys
  C=\$(\$L --json account create --region eu --currency EUR --owner psp --kind psp_clearing | jq -r .id)
  \$L recon run --region eu --source generic --file tests/data/recon/generic_small.csv --account \$C \\
      --from 2026-11-01 --to 2026-12-01 --out /tmp      # exit 4: the sample's lines have no ledger transfers
  \$L recon decrypt /tmp/recon-<run id>.json.sealed | jq "del(.items)"
  \$L report regional --region eu --from \$(date -u +%F) --to \$(date -u -d tomorrow +%F) --format html --out /tmp/eu.html
  \$L audit anchor                   # each region's audit head into the others' logs (schedule it)
  \$L audit verify                   # the hash-chained audit log of every region, and the anchors

Events: the outbox of each region, its feed and its Redis stream:

  \$L events tail --region eu --after 0 --limit 20   # one line per event (--json: the event's JSON)
  \$L events tail --follow                           # every region, as they commit; Ctrl-C ends it
  \$L events prune --older-than 30 --dry-run         # retention: only events every consumer has passed
MSG
if grep -Eq '^[[:space:]]*redis[[:space:]]*=' "$conf"; then
    redis_port=$(grep -Eo 'port = [0-9]+; password_file' "$conf" | grep -Eo '[0-9]+' | head -n 1)
    redis_pass=$(grep -Eo 'password_file = "[^"]+"' "$conf" | sed 's/.*"\(.*\)"/\1/' | head -n 1)
    cat <<MSG
  # ledgerd appends each region's events to the Redis stream geoledger:events:<region>,
  # stream id = the event's seq (redis-server on 127.0.0.1:${redis_port:-6390}, password in ${redis_pass:-var/redis/redis.pass})
  export REDISCLI_AUTH=\$(cat ${redis_pass:-var/redis/redis.pass})
  redis-cli -p ${redis_port:-6390} XRANGE geoledger:events:eu - + COUNT 10
  redis-cli -p ${redis_port:-6390} XREAD BLOCK 0 STREAMS geoledger:events:eu \$   # waits for the next event
  curl -s --cacert \$CA https://localhost:$port/metrics | grep -E '^geoledger_(outbox|stream)_'
MSG
fi
cat <<MSG

  make stop                         # stop ledgerd, Redis and the cluster (data stays in ./var)

(jq is optional: without it, copy the ids from the output.)
MSG
