-- History is append-only (DESIGN §5): enforced twice, by grants and by a trigger
-- that also stops the table owner and TRUNCATE.
CREATE FUNCTION refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'corrections are new transfers (reversals), never edits';
END
$$;

CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();

REVOKE ALL ON partition_info, accounts, transfers, entries, pending_transfers FROM PUBLIC;
GRANT SELECT ON partition_info TO geoledger_service, geoledger_recon, geoledger_report;
GRANT SELECT, INSERT ON transfers, entries TO geoledger_service;
GRANT SELECT, INSERT, UPDATE ON accounts, pending_transfers TO geoledger_service;
GRANT SELECT ON accounts, transfers, entries, pending_transfers TO geoledger_recon, geoledger_report;
