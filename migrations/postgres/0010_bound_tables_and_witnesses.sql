-- Which identity decisions reached the disclosure log: append-only like the decisions,
-- since verify proves each row against the entry that logged the decision.
CREATE TRIGGER identity_decision_logged_append_only
    BEFORE UPDATE OR DELETE ON identity_decision_logged
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
CREATE TRIGGER identity_decision_logged_no_truncate BEFORE TRUNCATE ON identity_decision_logged
    FOR EACH STATEMENT EXECUTE FUNCTION safegate_refuse_change();
