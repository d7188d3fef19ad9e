-- A leaner append (issue 14, item 6).
--
-- Merkle hashes are kept the way tlog tiles keep them: only tree levels 8, 16, 24, ...
-- are stored in merkle_node (one row per 256 entries), the leaves are each entry's own
-- leaf_hash, and every node in between is recomputed from at most 128 kept hashes.
DROP TRIGGER merkle_node_no_update;
DROP TRIGGER merkle_node_no_delete;
DELETE FROM merkle_node WHERE level = 0 OR level % 8 != 0;
CREATE TRIGGER merkle_node_no_update BEFORE UPDATE ON merkle_node
BEGIN SELECT RAISE(ABORT, 'merkle_node is append-only'); END;
CREATE TRIGGER merkle_node_no_delete BEFORE DELETE ON merkle_node
BEGIN SELECT RAISE(ABORT, 'merkle_node is append-only'); END;

-- One B-tree fewer per entry and per person named: `seq` becomes the table's rowid
-- (only INTEGER PRIMARY KEY is one in SQLite; BIGINT kept a separate index), and the
-- person index is clustered on its key (WITHOUT ROWID). The rows are copied unchanged.
--
-- Other tables name disclosure_log rows by foreign key, and foreign keys cannot be turned
-- off inside the transaction every migration runs in. Deferred, dropping the old table
-- counts each row that named it as a violation, and inserting the same rows into the new
-- table under the same name cancels each one; a row lost on the way fails the commit.
PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE disclosure_log_copy AS SELECT * FROM disclosure_log;
DROP TRIGGER disclosure_log_no_update;
DROP TRIGGER disclosure_log_no_delete;
DROP TABLE disclosure_log;
CREATE TABLE disclosure_log (
    seq               INTEGER PRIMARY KEY NOT NULL, -- 1-based; Merkle leaf index seq - 1
    entry_id          TEXT NOT NULL UNIQUE,
    recorded_at       TEXT NOT NULL,
    kind              TEXT NOT NULL,
    decision          TEXT NOT NULL,
    agency            TEXT NOT NULL,
    system_id         TEXT NOT NULL,
    practitioner_id   TEXT NOT NULL,
    purpose           TEXT NOT NULL,
    break_glass       BIGINT NOT NULL,
    subject_person_id TEXT NOT NULL,
    entry             TEXT NOT NULL, -- the canonical encoding that is hashed
    leaf_hash         TEXT NOT NULL, -- hex SHA-256(0x00 || entry)
    chain_hash        TEXT NOT NULL  -- hex SHA-256(previous chain_hash || leaf_hash)
);
INSERT INTO disclosure_log (seq, entry_id, recorded_at, kind, decision, agency,
    system_id, practitioner_id, purpose, break_glass, subject_person_id, entry, leaf_hash,
    chain_hash)
SELECT seq, entry_id, recorded_at, kind, decision, agency, system_id, practitioner_id,
    purpose, break_glass, subject_person_id, entry, leaf_hash, chain_hash
FROM disclosure_log_copy ORDER BY seq;
DROP TABLE disclosure_log_copy;
CREATE INDEX disclosure_log_by_time ON disclosure_log (recorded_at);
CREATE INDEX disclosure_log_by_system ON disclosure_log (system_id, seq);
CREATE INDEX disclosure_log_by_practitioner ON disclosure_log (practitioner_id, seq);
CREATE TRIGGER disclosure_log_no_update BEFORE UPDATE ON disclosure_log
BEGIN SELECT RAISE(ABORT, 'disclosure_log is append-only'); END;
CREATE TRIGGER disclosure_log_no_delete BEFORE DELETE ON disclosure_log
BEGIN SELECT RAISE(ABORT, 'disclosure_log is append-only'); END;

CREATE TEMP TABLE disclosure_person_copy AS SELECT * FROM disclosure_person;
DROP TRIGGER disclosure_person_no_update;
DROP TRIGGER disclosure_person_no_delete;
DROP TABLE disclosure_person;
CREATE TABLE disclosure_person (
    person_id TEXT NOT NULL,
    seq       BIGINT NOT NULL REFERENCES disclosure_log (seq),
    PRIMARY KEY (person_id, seq)
) WITHOUT ROWID;
INSERT INTO disclosure_person (person_id, seq) SELECT person_id, seq FROM disclosure_person_copy;
DROP TABLE disclosure_person_copy;
CREATE TRIGGER disclosure_person_no_update BEFORE UPDATE ON disclosure_person
BEGIN SELECT RAISE(ABORT, 'disclosure_person is append-only'); END;
CREATE TRIGGER disclosure_person_no_delete BEFORE DELETE ON disclosure_person
BEGIN SELECT RAISE(ABORT, 'disclosure_person is append-only'); END;
