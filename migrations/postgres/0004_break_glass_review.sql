-- The IG officer's own records about disclosure-log entries: break-glass reviews and
-- releases of law-enforcement entries for subject access. Both are append-only: a later
-- review supersedes an earlier one by time and never overwrites it. Each row is written in
-- the same transaction as the disclosure-log entry that records the action (`log_entry_id`),
-- whose hashed encoding carries the same outcome and note, so the chain proves them too.

CREATE TABLE break_glass_review (
    review_id        TEXT PRIMARY KEY NOT NULL,
    entry_id         TEXT NOT NULL REFERENCES disclosure_log (entry_id), -- the entry reviewed
    outcome          TEXT NOT NULL,  -- appropriate | inappropriate
    note             TEXT NOT NULL,
    reviewer_system  TEXT NOT NULL,
    reviewer_id      TEXT NOT NULL,  -- the IG officer's practitioner id
    reviewed_at      TEXT NOT NULL,  -- RFC 3339 UTC, the recording entry's time
    log_entry_id     TEXT NOT NULL UNIQUE REFERENCES disclosure_log (entry_id)
);
CREATE INDEX break_glass_review_by_entry ON break_glass_review (entry_id, reviewed_at);

CREATE TABLE subject_access_release (
    release_id       TEXT PRIMARY KEY NOT NULL,
    entry_id         TEXT NOT NULL REFERENCES disclosure_log (entry_id), -- the entry released
    note             TEXT NOT NULL,
    released_by_system TEXT NOT NULL,
    released_by_id   TEXT NOT NULL,
    released_at      TEXT NOT NULL,
    log_entry_id     TEXT NOT NULL UNIQUE REFERENCES disclosure_log (entry_id)
);
CREATE INDEX subject_access_release_by_entry ON subject_access_release (entry_id);

CREATE TRIGGER break_glass_review_append_only BEFORE UPDATE OR DELETE ON break_glass_review
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
CREATE TRIGGER subject_access_release_append_only BEFORE UPDATE OR DELETE ON subject_access_release
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
-- TRUNCATE bypasses row triggers; refuse it too.
CREATE TRIGGER break_glass_review_no_truncate BEFORE TRUNCATE ON break_glass_review
    FOR EACH STATEMENT EXECUTE FUNCTION safegate_refuse_change();
CREATE TRIGGER subject_access_release_no_truncate BEFORE TRUNCATE ON subject_access_release
    FOR EACH STATEMENT EXECUTE FUNCTION safegate_refuse_change();
