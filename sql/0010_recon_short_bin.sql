-- The PAN guard shows fewer leading digits of a short card (reconciliation/pan.h:
-- first min(6, n - 10) and last 4, so at least 6 digits stay hidden, PCI DSS
-- 3.4.1): a 13..15-digit card's "BIN" is 3..5 digits. varchar, not char(6),
-- so a short one is stored as it is, not padded with spaces.
ALTER TABLE recon_breaks DROP CONSTRAINT IF EXISTS recon_breaks_card_bin_check;
ALTER TABLE recon_breaks ALTER COLUMN card_bin TYPE varchar(6);
ALTER TABLE recon_breaks ADD CONSTRAINT recon_breaks_card_bin_check CHECK (card_bin ~ '^[0-9]{3,6}$');
