-- The double-entry ledger of one regional partition (DESIGN §5).

-- The partition's own identity: which region this database is. Residency checks
-- compare every row's id against it.
CREATE TABLE partition_info (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    region_code smallint NOT NULL CHECK (region_code BETWEEN 1 AND 255),
    region_name text NOT NULL
);

-- Domains rather than table CHECKs for the text columns: a domain is checked
-- when a value is written to it, while a table CHECK runs on every UPDATE of
-- the row, and accounts are updated on every transfer (regexes are not free).
CREATE DOMAIN currency_code AS char(3) CHECK (VALUE ~ '^[A-Z]{3}$');
CREATE DOMAIN owner_name AS text CHECK (length(VALUE) BETWEEN 1 AND 128);
CREATE DOMAIN account_kind AS text CHECK (VALUE ~ '^[a-z][a-z0-9_]{0,31}$');

CREATE TABLE accounts (
    id              uuid PRIMARY KEY,
    currency        currency_code NOT NULL,
    owner           owner_name NOT NULL,
    kind            account_kind NOT NULL,
    -- bit 1: debits_must_not_exceed_credits, bit 2: credits_must_not_exceed_debits, bit 4: closed
    flags           integer NOT NULL DEFAULT 0 CHECK (flags & ~7 = 0 AND flags & 3 <> 3),
    debits_pending  bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    debits_posted   bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_pending bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    credits_posted  bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    version         bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    metadata        jsonb,
    created_at      timestamptz NOT NULL,
    -- The flag limits hold in the database too, whatever a buggy writer does.
    -- Written as a subtraction of two non-negative bigints, which cannot overflow
    -- (a sum could), so no numeric arithmetic runs on every update.
    CONSTRAINT debits_within_credits CHECK (
        flags & 1 = 0 OR debits_posted <= credits_posted - debits_pending),
    CONSTRAINT credits_within_debits CHECK (
        flags & 2 = 0 OR credits_posted <= debits_posted - credits_pending)
) WITH (fillfactor = 80); -- room for HOT updates: counters change, indexed columns never do
CREATE INDEX accounts_owner ON accounts (owner, id);

CREATE TABLE transfers (
    id                uuid PRIMARY KEY,
    owner             owner_name NOT NULL,
    reference         text CHECK (length(reference) BETWEEN 1 AND 128),
    debit_account_id  uuid NOT NULL,
    credit_account_id uuid NOT NULL,
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          currency_code NOT NULL,
    -- 1 pending, 2 post, 4 void, 8 linked, 16 expire (void by timeout), 32 reversal
    flags             integer NOT NULL CHECK (flags & ~63 = 0),
    -- No foreign keys here: a per-row RI trigger costs about a quarter of the
    -- COPY. The engine only names transfers it has just read, and
    -- `ledgerctl verify` checks for dangling references.
    pending_id        uuid,
    reverses_id       uuid,
    expires_at        timestamptz,
    metadata          jsonb,
    created_at        timestamptz NOT NULL,
    CHECK (debit_account_id <> credit_account_id),
    CHECK ((pending_id IS NOT NULL) = (flags & 22 <> 0)),
    CHECK ((reverses_id IS NOT NULL) = (flags & 32 <> 0)),
    CHECK ((expires_at IS NOT NULL) <= (flags & 1 <> 0))
);
-- reference: unique per owner (idempotent replay).
CREATE UNIQUE INDEX transfers_owner_reference ON transfers (owner, reference) WHERE reference IS NOT NULL;
-- a pending transfer is resolved (posted, voided or expired) at most once: invariant 4.
CREATE UNIQUE INDEX transfers_pending_resolved_once ON transfers (pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX transfers_reverses ON transfers (reverses_id) WHERE reverses_id IS NOT NULL;
-- No per-account index on transfers: an account's transfers are found through
-- entries (primary key account_id, version), which saves two index inserts per transfer.

-- One entry per account per transfer, carrying the account's version and its
-- counters after the entry: statements and point-in-time balances without a scan.
CREATE TABLE entries (
    account_id      uuid NOT NULL,
    version         bigint NOT NULL CHECK (version > 0),
    transfer_id     uuid NOT NULL,
    side            "char" NOT NULL CHECK (side IN ('D', 'C')),
    pending_delta   bigint NOT NULL,
    posted_delta    bigint NOT NULL,
    debits_pending  bigint NOT NULL,
    debits_posted   bigint NOT NULL,
    credits_pending bigint NOT NULL,
    credits_posted  bigint NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (account_id, version)
);

-- Mutable state of a hold. transfers stays immutable; this row says whether the
-- hold is still open and how it ended.
CREATE TABLE pending_transfers (
    id            uuid PRIMARY KEY REFERENCES transfers (id),
    state         text NOT NULL CHECK (state IN ('pending', 'posted', 'voided', 'expired')),
    expires_at    timestamptz,
    amount_posted bigint NOT NULL DEFAULT 0 CHECK (amount_posted >= 0),
    resolved_by   uuid REFERENCES transfers (id),
    CHECK ((state = 'pending') = (resolved_by IS NULL))
);
CREATE INDEX pending_transfers_due ON pending_transfers (expires_at) WHERE state = 'pending';
