-- Row-count checks inside the statement that writes the rows. A pipelined batch
-- (ledger/engine.c) sends its writes and COMMIT together, so a count that the
-- client checked between the two would come too late: the statement itself
-- fails instead, and the COMMIT queued after it does not run.
CREATE FUNCTION expect_rows(actual bigint, expected integer, what text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF actual IS DISTINCT FROM expected THEN
        RAISE EXCEPTION '%: % rows, expected %', what, actual, expected USING ERRCODE = 'P0001';
    END IF;
    RETURN actual;
END
$$;

-- ledgerd replaces an expired idempotency key that housekeeping has not deleted
-- yet (INSERT ... ON CONFLICT DO UPDATE ... WHERE expired) instead of failing
-- its reuse.
GRANT UPDATE ON idempotency_keys TO geoledger_service;
