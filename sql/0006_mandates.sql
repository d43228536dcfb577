-- Mandates (API.md POST/DELETE /v1/mandates, DESIGN §6): a wallet's owner lets a
-- grantee (a mini-app principal) debit the wallet, in one currency, within a
-- per-charge and a per-day cap, until expires_at or revocation.
--
-- The engine locks a mandate row (FOR UPDATE, after the accounts) in the same
-- transaction as the charge that uses it: the caps hold under concurrency and a
-- revocation is never overtaken by a charge that read the mandate earlier.
CREATE TABLE mandates (
    id                    uuid PRIMARY KEY,
    wallet_account_id     uuid NOT NULL REFERENCES accounts (id),
    grantee               owner_name NOT NULL,
    currency              currency_code NOT NULL,
    max_amount_per_charge bigint NOT NULL CHECK (max_amount_per_charge > 0),
    max_amount_per_day    bigint NOT NULL CHECK (max_amount_per_day >= max_amount_per_charge),
    expires_at            timestamptz NOT NULL,
    created_by            owner_name NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    revoked_at            timestamptz,
    revoked_by            owner_name,
    -- Usage of one UTC day: rolled over by the engine on the first charge of a new day.
    usage_day             date NOT NULL DEFAULT date '1970-01-01',
    spent_on_usage_day    bigint NOT NULL DEFAULT 0
        CHECK (spent_on_usage_day >= 0 AND spent_on_usage_day <= max_amount_per_day),
    CHECK (expires_at > created_at),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
-- At most one live mandate per wallet, grantee and currency: a charge finds
-- its mandate without choosing between several.
CREATE UNIQUE INDEX mandates_live ON mandates (wallet_account_id, grantee, currency) WHERE revoked_at IS NULL;

REVOKE ALL ON mandates FROM PUBLIC;
GRANT SELECT, INSERT ON mandates TO geoledger_service;
GRANT UPDATE (revoked_at, revoked_by, usage_day, spent_on_usage_day) ON mandates TO geoledger_service;
GRANT SELECT ON mandates TO geoledger_recon, geoledger_report;
