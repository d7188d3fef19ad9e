-- Most disclosure-log entries pass PostgreSQL's 2 kB TOAST threshold (a Query's entry
-- lists every fact it released), so every append compresses its entry. With pglz, the
-- default, that cost about 130 us of server CPU per 7 kB entry on the benchmark machine,
-- more than the rest of the insert; lz4 stored the same entries in as little space at
-- about a quarter of the cost, and reads them back faster for audit verify and export.
-- It applies to entries written from now on; earlier ones are read as they were stored.
-- A server built without lz4 keeps pglz: nothing else changes.
DO $$
BEGIN
    ALTER TABLE disclosure_log ALTER COLUMN entry SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'PostgreSQL without lz4: disclosure_log.entry stays compressed with pglz';
END
$$;
