-- A witness's whole state: for each log it witnesses (by origin line), the latest
-- checkpoint it verified and cosigned. A newer one replaces it only after a consistency
-- proof from it, checked in the same transaction that stores the new one.
CREATE TABLE witnessed_log (
    origin      TEXT PRIMARY KEY NOT NULL,
    tree_size   BIGINT NOT NULL,
    root_hash   TEXT NOT NULL, -- base64, as in the checkpoint
    note        TEXT NOT NULL, -- the checkpoint as submitted, with the log's signatures
    cosignature TEXT NOT NULL, -- this witness's cosignature/v1 line on it
    updated_at  TEXT NOT NULL
);
