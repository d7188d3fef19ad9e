-- Which identity decisions reached the disclosure log: append-only like the decisions,
-- since verify proves each row against the entry that logged the decision.
CREATE TRIGGER identity_decision_logged_append_only
    BEFORE UPDATE OR DELETE ON identity_decision_logged
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
CREATE TRIGGER identity_decision_logged_no_truncate BEFORE TRUNCATE ON identity_decision_logged
    FOR EACH STATEMENT EXECUTE FUNCTION safegate_refuse_change();

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
CREATE TRIGGER checkpoint_cosignature_append_only
    BEFORE UPDATE OR DELETE ON checkpoint_cosignature
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
