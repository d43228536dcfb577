-- A transfer row is its own event (ledger/README.md "The outbox").
--
-- 0011 wrote one `events` row per effect, so a batch of transfers wrote a
-- copy of every transfer into the outbox: a quarter more rows per batch and
-- about a fifth of the engine's throughput. A transfer row already says all
-- its event says (ids, amount, currency, kind, time, author) and is never
-- changed (0003), so it now carries its event's number instead: `event_seq`,
-- taken from event_head like every other number, in the same transaction.
-- `events` keeps the effects that have no immutable row of their own
-- (account.created/closed, mandate.created/revoked, and later the sagas').
-- Readers read `event_feed`, the union of the two, ordered by seq (or each
-- half, as ledger/events.c does).
--
-- Gap-free and commit-ordered as before: a writer reserves its numbers with
-- UPDATE event_head (the row lock is held to COMMIT) and writes each number
-- exactly once, on a transfer row or an events row.
ALTER TABLE transfers
    ADD COLUMN event_seq bigint CHECK (event_seq > 0),
    -- The mandate a charge was made under (its event names it; so can an audit).
    ADD COLUMN mandate_id uuid;
-- Unique: a number written twice on transfers is a bug the insert refuses
-- (across transfers and events, `ledgerctl verify` checks it: invariant 6).
-- Partial: rows of before this migration (and of `make bench`'s runs without
-- events) have none.
CREATE UNIQUE INDEX transfers_event_seq ON transfers (event_seq) WHERE event_seq IS NOT NULL;

-- Ids are derived from (region, seq, time) by event_id() below, not stored:
-- rows written before this migration keep the random ids they were given.
ALTER TABLE events ALTER COLUMN id DROP NOT NULL;

-- Retention (ledgerctl events prune) deletes `events` rows, but a transfer is
-- never deleted: the feed starts above `pruned_through` instead, so what was
-- pruned is gone for both kinds alike. A row of its own, not a column of
-- event_head: a prune must not take the head's lock, which every writer of
-- the region waits for (and which an audited writer takes after the audit
-- log's lock, while a prune audits after pruning).
CREATE TABLE event_horizon (
    id             smallint PRIMARY KEY CHECK (id = 1),
    pruned_through bigint NOT NULL CHECK (pruned_through >= 0)
);
-- Retention before this migration deleted old events by age up to the slowest
-- consumer, which need not leave a dense range: the feed starts after the
-- last hole (the largest number no row carries), so seq is dense above it.
INSERT INTO event_horizon
SELECT 1, coalesce((SELECT h.last_seq FROM event_head h WHERE h.last_seq > (SELECT max(seq) FROM events)),
                   (SELECT max(x.next_seq) - 1 FROM (SELECT seq, lead(seq) OVER (ORDER BY seq) AS next_seq
                                                     FROM events) x WHERE x.next_seq > x.seq + 1),
                   (SELECT min(seq) - 1 FROM events),
                   (SELECT last_seq FROM event_head WHERE id = 1));

-- The event type of a transfer, from its flags (0002: 1 pending, 2 post,
-- 4 void, 8 linked, 16 expire, 32 reversal).
CREATE FUNCTION transfer_event_type(flags integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN flags & 2 <> 0 THEN 'transfer.posted'
                WHEN flags & 16 <> 0 THEN 'transfer.expired'
                WHEN flags & 4 <> 0 THEN 'transfer.voided'
                WHEN flags & 32 <> 0 THEN 'transfer.reversed'
                WHEN flags & 1 <> 0 THEN 'transfer.pending'
                ELSE 'transfer.created' END
$$;

-- An event's id: a UUIDv7 (RFC 9562) of its time in milliseconds, a function
-- of (region, seq), so every reader and every retry (webhook-id) sees the same
-- id without one being drawn and stored per event. Layout after the 48-bit
-- time: version 7, seq bits 50..61; variant 10, marker 1111, seq bits 48..49;
-- the region code (byte 9, as in every id of the region, ledger/id.h); seq
-- bits 0..47. Unique in the region because seq is; the marker keeps it apart
-- from the random ids of gl_id_new in all but 1 in 16 of their byte 8 values.
CREATE FUNCTION event_id(region_code smallint, seq bigint, at timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0')
            || '7' || lpad(to_hex((seq >> 50) & 4095), 3, '0')
            || to_hex(188 | ((seq >> 48) & 3))
            || lpad(to_hex(region_code::integer), 2, '0')
            || lpad(to_hex(seq & 281474976710655), 12, '0'))::uuid
$$;

-- The events of the two kinds, with the same columns; event_feed is their
-- union. Owners: the debit side's, the credit side's, the author; NULL where
-- one repeats an earlier one. Read a seq range of each, ordered by seq with a
-- LIMIT (ledger/events.c does, then merges): each is then an index range
-- (events_pkey, transfers_event_seq) that stops at the LIMIT. (Over the union
-- the planner sorts the whole range first.) The accounts' owners are looked
-- up per transfer, in a subquery kept apart by OFFSET 0 and only when asked
-- for: a join would let the planner hash the whole accounts table for a
-- range it cannot size.
CREATE VIEW event_rows AS
SELECT e.seq, coalesce(e.id, event_id((SELECT region_code FROM partition_info), e.seq, e.created_at)) AS id,
       e.type, e.created_at, e.account_id, e.transfer_id, e.debit_account_id, e.credit_account_id, e.pending_id,
       e.reverses_id, e.mandate_id, e.amount, e.currency, e.owner1, e.owner2, e.owner3
FROM events e;

CREATE VIEW transfer_events AS
SELECT t.event_seq AS seq, event_id((SELECT region_code FROM partition_info), t.event_seq, t.created_at) AS id,
       transfer_event_type(t.flags) AS type, t.created_at, NULL::uuid AS account_id, t.id AS transfer_id,
       t.debit_account_id, t.credit_account_id, t.pending_id, t.reverses_id, t.mandate_id, t.amount,
       t.currency::char(3) AS currency, o.d AS owner1, nullif(o.c, o.d) AS owner2,
       CASE WHEN t.owner IN (o.d, o.c) THEN NULL ELSE t.owner::text END AS owner3
FROM transfers t
CROSS JOIN LATERAL (SELECT (SELECT owner::text FROM accounts WHERE id = t.debit_account_id) AS d,
                           (SELECT owner::text FROM accounts WHERE id = t.credit_account_id) AS c OFFSET 0) o
WHERE t.event_seq IS NOT NULL;

CREATE VIEW event_feed AS
SELECT * FROM event_rows UNION ALL SELECT * FROM transfer_events;

-- Every event's number and time and no more (no owner lookups): what
-- retention and `ledgerctl verify` look at.
CREATE VIEW event_times AS
SELECT seq, created_at FROM events
UNION ALL
SELECT event_seq, created_at FROM transfers WHERE event_seq IS NOT NULL;

REVOKE ALL ON event_horizon FROM PUBLIC;
GRANT SELECT, UPDATE ON event_horizon TO geoledger_service;
GRANT SELECT ON event_horizon, event_rows, transfer_events, event_feed, event_times
    TO geoledger_service, geoledger_report;
