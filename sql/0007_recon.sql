-- Reconciliation runs and their breaks (issue: reconciliation in PCI-DSS scope).
-- Written only by the reconciliation role (geoledger_recon), which reads the
-- ledger and writes nothing else (PCI DSS 7.2.6). No card number is ever stored:
-- the parser reduces any PAN to BIN + last 4 + a keyed HMAC token first.
CREATE TABLE recon_runs (
    id               uuid PRIMARY KEY,
    source           text NOT NULL CHECK (source IN ('stripe', 'adyen', 'generic')),
    file_name        text NOT NULL CHECK (length(file_name) BETWEEN 1 AND 1024),
    file_sha256      bytea CHECK (length(file_sha256) = 32),
    clearing_account uuid NOT NULL,
    period_from      timestamptz NOT NULL,
    period_to        timestamptz NOT NULL CHECK (period_to > period_from),
    operator         text NOT NULL,
    host             text NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    status           text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'clean', 'breaks', 'failed')),
    lines            bigint NOT NULL DEFAULT 0,
    malformed_lines  bigint NOT NULL DEFAULT 0,
    ledger_transfers bigint NOT NULL DEFAULT 0,
    matched          bigint NOT NULL DEFAULT 0,
    matched_by_amount bigint NOT NULL DEFAULT 0,
    breaks           bigint NOT NULL DEFAULT 0,
    unexplained      bigint NOT NULL DEFAULT 0,
    pans_masked      bigint NOT NULL DEFAULT 0,
    error            text
);

CREATE TABLE recon_breaks (
    run_id            uuid NOT NULL REFERENCES recon_runs (id),
    n                 bigint NOT NULL,
    class             text NOT NULL CHECK (class IN ('missing_in_ledger', 'missing_in_settlement', 'amount_mismatch',
                                                     'fee_mismatch', 'currency_mismatch', 'duplicate', 'timing')),
    explained         boolean NOT NULL, -- timing breaks settle in the neighbouring period
    reference         text,
    psp_id            text,
    transfer_id       uuid,
    line_no           bigint,
    ledger_amount     bigint,
    settlement_amount bigint,
    ledger_fee        bigint,
    settlement_fee    bigint,
    ledger_currency   char(3),
    settlement_currency char(3),
    ledger_at         timestamptz,
    settlement_at     timestamptz,
    card_bin          char(6) CHECK (card_bin ~ '^[0-9]{6}$'),
    card_last4        char(4) CHECK (card_last4 ~ '^[0-9]{4}$'),
    card_token        text CHECK (card_token ~ '^[A-Za-z0-9_-]{1,32}:[0-9a-f]{64}$'),
    PRIMARY KEY (run_id, n)
);

-- Rows the parser could not read: reported by line number, never skipped silently.
CREATE TABLE recon_malformed (
    run_id  uuid NOT NULL REFERENCES recon_runs (id),
    line_no bigint NOT NULL,
    reason  text NOT NULL CHECK (length(reason) <= 256),
    PRIMARY KEY (run_id, line_no)
);

REVOKE ALL ON recon_runs, recon_breaks, recon_malformed FROM PUBLIC;
GRANT SELECT, INSERT ON recon_runs, recon_breaks, recon_malformed TO geoledger_recon;
GRANT UPDATE (finished_at, status, lines, malformed_lines, ledger_transfers, matched, matched_by_amount, breaks,
              unexplained, pans_masked, error) ON recon_runs TO geoledger_recon;
GRANT SELECT ON recon_runs, recon_breaks, recon_malformed TO geoledger_report;
