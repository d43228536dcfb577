-- The outbox of one regional partition (DESIGN §3a, API.md GET /v1/events):
-- one row per committed effect, written in the transaction of the effect by
-- ledger/events.c (ledger_events_write).
--
-- Gap-free, commit-ordered `seq`: every writer takes its numbers from the one
-- row of event_head (UPDATE ... RETURNING, in the same statement as its
-- INSERT, the last statement before COMMIT). The row lock is held until the
-- writer commits, so a later writer gets higher numbers only after the earlier
-- one's rows are visible: a reader that follows `seq > cursor` can never see
-- seq 8 while seq 7 is still in flight (the classic outbox pitfall of
-- sequences and serials, which hand out numbers in start order, not commit
-- order). Portable: a row lock, no advisory lock, no sequence.
CREATE TABLE event_head (
    id       smallint PRIMARY KEY CHECK (id = 1),
    last_seq bigint NOT NULL CHECK (last_seq >= 0)
);
INSERT INTO event_head VALUES (1, 0);

-- What an event says, and no more (no metadata, references or other personal
-- data): the objects' ids, the amount and currency, and the principals it
-- concerns (owner1..3), which decide who may read it.
--
-- Lean on purpose: the engine writes one row per effect inside its batches,
-- so every index and check here is paid per transfer. `id` is unique by
-- construction (a UUIDv7 of the region: time, counter, random) and nothing
-- looks an event up by it, so it has no index; `currency` comes from the
-- checked transfer, account or mandate, so it is a plain char(3); the owners
-- are three columns, not an array (no array to build and take apart per row).
CREATE TABLE events (
    seq               bigint PRIMARY KEY CHECK (seq > 0),
    id                uuid NOT NULL,
    type              text NOT NULL CHECK (type IN ('account.created', 'account.closed', 'transfer.created',
                          'transfer.pending', 'transfer.posted', 'transfer.voided', 'transfer.expired',
                          'transfer.reversed', 'mandate.created', 'mandate.revoked')),
    created_at        timestamptz NOT NULL,
    account_id        uuid,   -- account.*, and the wallet of mandate.*
    transfer_id       uuid,   -- transfer.*: the new transfer (the capture, release or reversal)
    debit_account_id  uuid,
    credit_account_id uuid,
    pending_id        uuid,   -- transfer.posted/voided/expired: the hold
    reverses_id       uuid,   -- transfer.reversed: the transfer refunded
    mandate_id        uuid,   -- mandate.*, and a transfer charged under a mandate
    amount            bigint CHECK (amount > 0),
    currency          char(3),
    owner1            text NOT NULL,
    owner2            text,
    owner3            text
);

-- Where each consumer of the outbox has got to (the Redis stream publisher,
-- the webhook dispatcher, later the saga runners): advanced in the
-- transaction that hands the events on, so a crash re-reads, never skips.
-- Retention never drops an event a consumer has not passed.
CREATE TABLE event_consumers (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
    position   bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Append-only but for retention (ledgerctl events prune: only events every
-- consumer has passed): no UPDATE for anyone, and a trigger stops the owner too.
CREATE FUNCTION refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'an event is never edited; a correction is a new effect with its own event';
END
$$;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_event_change();

REVOKE ALL ON event_head, events, event_consumers FROM PUBLIC;
GRANT SELECT, UPDATE ON event_head TO geoledger_service;
GRANT SELECT, INSERT, UPDATE ON event_consumers TO geoledger_service;
GRANT SELECT, INSERT, DELETE ON events TO geoledger_service;
GRANT SELECT ON event_head, events, event_consumers TO geoledger_report;
