-- The audit log of one regional partition (PCI DSS 10.2, 10.3.4; DESIGN §6):
-- who did what, to what, when, from where, and with what outcome.
--
-- Rows are written only by ledger/audit.c (gl_audit_append), which:
--   * takes pg_advisory_xact_lock(7349005), reads the last (seq, hash) and
--     appends seq = last + 1: not a sequence, so seq is gap-free and a deleted
--     row shows up as a gap;
--   * chooses `at` itself (microseconds) and stores `detail` as the exact
--     compact JSON text it hashed (text, not jsonb: jsonb would re-encode it);
--   * sets hash = SHA-256(prev_hash || length-prefixed seq, at, actor, action,
--     object, source, outcome, detail), prev_hash = the previous row's hash
--     (32 zero bytes for seq 1), so `ledgerctl audit verify` recomputes the
--     chain in C, independently of this database.
-- See ledger/audit.h for the exact encoding.
CREATE TABLE audit_log (
    seq       bigint PRIMARY KEY CHECK (seq > 0),
    at        timestamptz NOT NULL,
    actor     text NOT NULL CHECK (length(actor) BETWEEN 1 AND 256),
    action    text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' AND length(action) <= 64),
    object    text NOT NULL DEFAULT '' CHECK (length(object) <= 512),
    source    text NOT NULL CHECK (length(source) BETWEEN 1 AND 256),
    outcome   text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    detail    text NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail::jsonb) = 'object'),
    prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash      bytea NOT NULL CHECK (length(hash) = 32)
);

-- Append-only, twice over: no role but the owner holds UPDATE, DELETE or
-- TRUNCATE, and a trigger refuses them to the owner too. (A superuser can
-- still switch triggers off: that is what the hash chain is for.)
CREATE FUNCTION refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the audit log is never edited; record a new event instead';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change();

REVOKE ALL ON audit_log FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM geoledger_service, geoledger_recon, geoledger_report;
-- The service (API, ledgerctl) and the reconciliation jobs record what they do;
-- the report job reads (and verifies) the log.
GRANT SELECT, INSERT ON audit_log TO geoledger_service, geoledger_recon;
GRANT SELECT ON audit_log TO geoledger_report;
