-- The disclosure log: append-only, hash-chained, and the leaves of an RFC 6962 Merkle
-- tree whose signed checkpoints let anyone prove no entry was changed or removed.

CREATE TABLE disclosure_log (
    seq               BIGINT PRIMARY KEY NOT NULL, -- 1-based; Merkle leaf index seq - 1
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
CREATE INDEX disclosure_log_by_time ON disclosure_log (recorded_at);
CREATE INDEX disclosure_log_by_system ON disclosure_log (system_id, seq);
CREATE INDEX disclosure_log_by_practitioner ON disclosure_log (practitioner_id, seq);

-- Every person an entry is about (subject, linked persons, persons whose facts were released).
CREATE TABLE disclosure_person (
    person_id TEXT NOT NULL,
    seq       BIGINT NOT NULL REFERENCES disclosure_log (seq),
    PRIMARY KEY (person_id, seq)
);

-- Perfect subtrees of the Merkle tree: (level, index) covers leaves index*2^level ...
CREATE TABLE merkle_node (
    level BIGINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE checkpoint (
    tree_size BIGINT PRIMARY KEY NOT NULL,
    root_hash TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    signature TEXT NOT NULL, -- base64 Ed25519 over the signed text (see checkpoint.rs)
    key_id    TEXT NOT NULL
);

CREATE TRIGGER disclosure_log_append_only BEFORE UPDATE OR DELETE ON disclosure_log
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
CREATE TRIGGER disclosure_person_append_only BEFORE UPDATE OR DELETE ON disclosure_person
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
CREATE TRIGGER merkle_node_append_only BEFORE UPDATE OR DELETE ON merkle_node
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
CREATE TRIGGER checkpoint_append_only BEFORE UPDATE OR DELETE ON checkpoint
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
-- TRUNCATE bypasses row triggers; refuse it too.
CREATE TRIGGER disclosure_log_no_truncate BEFORE TRUNCATE ON disclosure_log
    FOR EACH STATEMENT EXECUTE FUNCTION safegate_refuse_change();
