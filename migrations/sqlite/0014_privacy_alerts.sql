-- Privacy alerts over the disclosure log (policies/alerts.toml). Each alert is a case: the
-- alert row says why, which rule (and which version of the rules file) raised it and which
-- log entries it rests on; its history (assigned, closed with an outcome and a note) is a
-- separate append-only table. Every row is written in the same transaction as the
-- disclosure-log entry that records it, whose hashed encoding carries the same values, so
-- verify proves these rows as it proves break-glass reviews.

CREATE TABLE privacy_alert (
    alert_id       TEXT PRIMARY KEY NOT NULL,
    alert_key      TEXT NOT NULL UNIQUE,  -- what the alert is about: one alert per key
    rule_id        TEXT NOT NULL,
    rules_version  TEXT NOT NULL,          -- SHA-256 of policies/alerts.toml
    raised_at      TEXT NOT NULL,          -- RFC 3339 UTC, the recording entry's time
    system_id      TEXT NOT NULL,          -- the agency system the alert is about
    practitioner_id TEXT NOT NULL,         -- the practitioner the alert is about
    summary        TEXT NOT NULL,          -- why, in words (never personal data)
    entry_ids      TEXT NOT NULL,          -- the log entries it rests on, comma-separated
    log_entry_id   TEXT NOT NULL UNIQUE REFERENCES disclosure_log (entry_id)
);
CREATE INDEX privacy_alert_by_time ON privacy_alert (raised_at);

CREATE TABLE privacy_alert_event (
    event_id       TEXT PRIMARY KEY NOT NULL,
    alert_id       TEXT NOT NULL REFERENCES privacy_alert (alert_id),
    step           BIGINT NOT NULL,        -- 1, 2, ... within the alert
    action         TEXT NOT NULL,          -- assigned | closed
    assignee       TEXT NOT NULL,          -- the IG officer the case is assigned to
    outcome        TEXT NOT NULL,          -- for closed: explained | breach | false_positive
    note           TEXT NOT NULL,
    by_system      TEXT NOT NULL,
    by_id          TEXT NOT NULL,          -- the IG officer's practitioner id
    at             TEXT NOT NULL,          -- RFC 3339 UTC, the recording entry's time
    log_entry_id   TEXT NOT NULL UNIQUE REFERENCES disclosure_log (entry_id),
    UNIQUE (alert_id, step)
);

CREATE TRIGGER privacy_alert_no_update BEFORE UPDATE ON privacy_alert
BEGIN SELECT RAISE(ABORT, 'privacy_alert is append-only'); END;
CREATE TRIGGER privacy_alert_no_delete BEFORE DELETE ON privacy_alert
BEGIN SELECT RAISE(ABORT, 'privacy_alert is append-only'); END;
CREATE TRIGGER privacy_alert_event_no_update BEFORE UPDATE ON privacy_alert_event
BEGIN SELECT RAISE(ABORT, 'privacy_alert_event is append-only'); END;
CREATE TRIGGER privacy_alert_event_no_delete BEFORE DELETE ON privacy_alert_event
BEGIN SELECT RAISE(ABORT, 'privacy_alert_event is append-only'); END;

-- Which gateway process evaluates the rules (one at a time over a shared database: a lease
-- it renews), and how far into the log it has evaluated. Operational state, not evidence:
-- the alerts themselves are unique by key whoever raises them.
CREATE TABLE alert_evaluator (
    id           BIGINT PRIMARY KEY NOT NULL,
    holder       TEXT NOT NULL,
    lease_until  TEXT NOT NULL,
    evaluated_seq BIGINT NOT NULL
);
INSERT INTO alert_evaluator (id, holder, lease_until, evaluated_seq) VALUES (1, '', '', 0);

-- The rules ask when systems recorded or ended the facts by which they work with a person.
CREATE INDEX change_trail_by_category_time ON change_trail (category, change_kind, recorded_at);
CREATE INDEX record_by_owner_system ON record (owner_system, category, created_at);
