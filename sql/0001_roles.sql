-- Least-privilege roles for one regional partition (PostgreSQL roles are per
-- server, and each region is its own server).
--   geoledger_service  the ledger writer (ledgerctl, ledgerd): appends transfers and
--                      entries, updates account counters; never UPDATE/DELETE history
--   geoledger_recon    reconciliation jobs: read the ledger, write recon tables only
--   geoledger_report   compliance reports: read-only
-- Tables are owned by the migrating (admin) role, so no runtime role can ALTER/DROP.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'geoledger_service') THEN
        CREATE ROLE geoledger_service LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'geoledger_recon') THEN
        CREATE ROLE geoledger_recon LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'geoledger_report') THEN
        CREATE ROLE geoledger_report LOGIN;
    END IF;
END
$$;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO geoledger_service, geoledger_recon, geoledger_report;
