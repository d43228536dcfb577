-- State of the HTTP API (ledgerd) that must commit with the ledger effect.

-- Idempotency keys (API.md): stored per principal in the region that executed
-- the request, in the same transaction as the effect; replayed byte for byte.
CREATE TABLE idempotency_keys (
    principal     owner_name NOT NULL,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    method        text NOT NULL,
    path          text NOT NULL,
    request_hash  bytea NOT NULL CHECK (length(request_hash) = 32), -- SHA-256 of method, path, body
    status        smallint NOT NULL CHECK (status BETWEEN 200 AND 599),
    response_body text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

GRANT SELECT, INSERT, DELETE ON idempotency_keys TO geoledger_service;
GRANT SELECT ON idempotency_keys TO geoledger_report;
