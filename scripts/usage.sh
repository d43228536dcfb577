#!/usr/bin/env bash
# Printed at the end of `make run`: how to use the local cluster that is now up.
set -euo pipefail
conf=$1
ctl=$2
port=${3:-8080}
cat <<MSG

geoledger is up: 3 regional PostgreSQL partitions (eu, us, sg) under ./var, migrated.

  export GEOLEDGER_CONFIG=$conf
  L=$ctl

  # two wallets in the eu region; the payer may not go below zero
  A=\$(\$L --json account create --region eu --currency EUR --owner app.rides | jq -r .id)
  B=\$(\$L --json account create --region eu --currency EUR --owner app.rides \\
        --flags debits_must_not_exceed_credits | jq -r .id)

  \$L transfer --from \$A --to \$B --amount 2500 --currency EUR --reference topup-1    # 25.00 EUR
  H=\$(\$L --json transfer --from \$B --to \$A --amount 1200 --currency EUR --pending --timeout 600 | jq -r .id)
  \$L post \$H --amount 900          # capture 9.00, release the rest
  \$L account show \$B
  \$L statement \$B
  \$L verify                         # ledger invariants on every region

The HTTP API (ledgerd) listens on 127.0.0.1:$port:

  TOKEN=\$(\$L token --sub app.rides)
  curl -s -H "Authorization: Bearer \$TOKEN" -d '{"currency":"EUR","region":"eu"}' \\
       http://127.0.0.1:$port/v1/accounts
  curl -s -H "Authorization: Bearer \$TOKEN" -H "Idempotency-Key: pay-1" \\
       -d '{"debit_account_id":"<id>","credit_account_id":"<id>","amount":500,"currency":"EUR","reference":"ride-1"}' \\
       http://127.0.0.1:$port/v1/transfers
  curl -s http://127.0.0.1:$port/readyz

  make stop                         # stop ledgerd and the cluster (data stays in ./var)

(jq is optional: without it, copy the ids from the output.)
MSG
