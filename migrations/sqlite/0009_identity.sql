-- Identity across agencies. A `person` stays what one agency's identifiers name; the
-- gateway's resolved person is the set of persons joined by active identity links.

-- The normalised demographics of each person-details record (its current version),
-- which the matcher compares; JSON of the domain's `Demographics`.
CREATE TABLE person_demographics (
    record_id    TEXT PRIMARY KEY NOT NULL REFERENCES record (record_id),
    person_id    TEXT NOT NULL REFERENCES person (person_id),
    demographics TEXT NOT NULL
);
CREATE INDEX person_demographics_by_person ON person_demographics (person_id);

-- Blocking keys: candidates for a match are the persons sharing a key, never all persons.
CREATE TABLE person_blocking_key (
    blocking_key TEXT NOT NULL,
    person_id    TEXT NOT NULL REFERENCES person (person_id),
    PRIMARY KEY (blocking_key, person_id)
);

-- How many person-details records carry each normalised name (term frequencies).
CREATE TABLE name_frequency (
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (field, value)
);

-- Each person's resolved person: derived from identity_decision (the active links'
-- connected components, named by their earliest person), kept so reads need one join.
CREATE TABLE person_resolution (
    person_id   TEXT PRIMARY KEY NOT NULL REFERENCES person (person_id),
    resolved_id TEXT NOT NULL
);
CREATE INDEX person_resolution_by_resolved ON person_resolution (resolved_id);
INSERT INTO person_resolution (person_id, resolved_id) SELECT person_id, person_id FROM person;

-- Every identity decision, append-only: an automatic link, a review task raised, a
-- steward's confirmation, rejection or split. A review task is its `review_raised` row;
-- its state is the confirmation or rejection naming it.
CREATE TABLE identity_decision (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    decision_id      TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL, -- auto_link | review_raised | confirmed | rejected | split
    person_id        TEXT NOT NULL, -- the person the decision is about (the newer record)
    other_person_id  TEXT NOT NULL, -- the person it was linked to or compared with
    task_id          TEXT NOT NULL, -- for confirmed / rejected: the review task
    link_id          TEXT NOT NULL, -- for split: the link undone
    probability      TEXT NOT NULL, -- the match probability, 6 decimals; empty for split
    rules_version    TEXT NOT NULL, -- SHA-256 of the matching rules that scored it
    detail           TEXT NOT NULL, -- JSON: the scores, reasons and candidates
    system_id        TEXT NOT NULL,
    practitioner_id  TEXT NOT NULL,
    note             TEXT NOT NULL,
    decided_at       TEXT NOT NULL
);
CREATE INDEX identity_decision_by_person ON identity_decision (person_id, kind);
CREATE INDEX identity_decision_by_other ON identity_decision (other_person_id, kind);
CREATE INDEX identity_decision_by_task ON identity_decision (task_id);
CREATE INDEX identity_decision_by_link ON identity_decision (link_id);

-- Which decisions have reached the disclosure log (written after the decision commits;
-- any not yet logged are logged at the next chance, so none is lost).
CREATE TABLE identity_decision_logged (
    decision_id TEXT PRIMARY KEY NOT NULL REFERENCES identity_decision (decision_id),
    entry_id    TEXT NOT NULL
);

CREATE TRIGGER identity_decision_no_update BEFORE UPDATE ON identity_decision
BEGIN SELECT RAISE(ABORT, 'identity_decision is append-only'); END;
CREATE TRIGGER identity_decision_no_delete BEFORE DELETE ON identity_decision
BEGIN SELECT RAISE(ABORT, 'identity_decision is append-only'); END;
