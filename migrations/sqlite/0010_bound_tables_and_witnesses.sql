-- Which identity decisions reached the disclosure log: append-only like the decisions,
-- since verify proves each row against the entry that logged the decision.
CREATE TRIGGER identity_decision_logged_no_update BEFORE UPDATE ON identity_decision_logged
BEGIN SELECT RAISE(ABORT, 'identity_decision_logged is append-only'); END;
CREATE TRIGGER identity_decision_logged_no_delete BEFORE DELETE ON identity_decision_logged
BEGIN SELECT RAISE(ABORT, 'identity_decision_logged is append-only'); END;

-- Witnesses' cosignatures of the log's checkpoints (C2SP cosignature/v1 lines), gathered
-- in the background after each checkpoint. Verify does not rest on this table (whoever
-- owns the database could remove rows): it asks the witnesses themselves.
CREATE TABLE checkpoint_cosignature (
    witness     TEXT NOT NULL,   -- the witness's key name
    tree_size   BIGINT NOT NULL,
    root_hash   TEXT NOT NULL,   -- hex, as checkpoint.root_hash
    cosignature TEXT NOT NULL,   -- the signature line, with its newline
    cosigned_at BIGINT NOT NULL, -- the cosignature's timestamp, seconds since the epoch
    PRIMARY KEY (witness, tree_size)
);
CREATE TRIGGER checkpoint_cosignature_no_update BEFORE UPDATE ON checkpoint_cosignature
BEGIN SELECT RAISE(ABORT, 'checkpoint_cosignature is append-only'); END;
CREATE TRIGGER checkpoint_cosignature_no_delete BEFORE DELETE ON checkpoint_cosignature
BEGIN SELECT RAISE(ABORT, 'checkpoint_cosignature is append-only'); END;
