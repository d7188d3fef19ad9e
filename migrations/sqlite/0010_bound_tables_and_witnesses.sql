-- Which identity decisions reached the disclosure log: append-only like the decisions,
-- since verify proves each row against the entry that logged the decision.
CREATE TRIGGER identity_decision_logged_no_update BEFORE UPDATE ON identity_decision_logged
BEGIN SELECT RAISE(ABORT, 'identity_decision_logged is append-only'); END;
CREATE TRIGGER identity_decision_logged_no_delete BEFORE DELETE ON identity_decision_logged
BEGIN SELECT RAISE(ABORT, 'identity_decision_logged is append-only'); END;
