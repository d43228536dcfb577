-- expect_rows() names its check as the error's constraint (PG_DIAG_CONSTRAINT_NAME),
-- so that callers recognise it from the error's fields, never from its text
-- (ledgerd reruns a batch whose idempotency insert met a stored key).
CREATE OR REPLACE FUNCTION expect_rows(actual bigint, expected integer, what text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF actual IS DISTINCT FROM expected THEN
        RAISE EXCEPTION '%: % rows, expected %', what, actual, expected
            USING ERRCODE = 'P0001', CONSTRAINT = what;
    END IF;
    RETURN actual;
END
$$;
