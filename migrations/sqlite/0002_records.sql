-- Persons, their identifiers, and versioned facts. Versions and the change trail are
-- append-only: a change adds a version, it never rewrites one.

CREATE TABLE person (
    person_id         TEXT PRIMARY KEY NOT NULL,
    created_at        TEXT NOT NULL,
    created_by_system TEXT NOT NULL
);

-- One person per identifier key (nhs:..., pnc:..., local:<agency>:<namespace>:...).
CREATE TABLE person_identifier (
    identifier_key  TEXT PRIMARY KEY NOT NULL,
    scheme          TEXT NOT NULL,
    person_id       TEXT NOT NULL REFERENCES person (person_id),
    added_by_system TEXT NOT NULL,
    added_at        TEXT NOT NULL
);
CREATE INDEX person_identifier_by_person ON person_identifier (person_id);

-- The head of each fact: what it is, who owns it, its latest version.
CREATE TABLE record (
    record_id       TEXT PRIMARY KEY NOT NULL,
    category        TEXT NOT NULL,
    owner_agency    TEXT NOT NULL,
    owner_system    TEXT NOT NULL,
    current_version BIGINT NOT NULL,
    ended           BIGINT NOT NULL DEFAULT 0, -- 1 once the fact has ended
    created_at      TEXT NOT NULL
);

CREATE TABLE record_version (
    record_id                TEXT NOT NULL REFERENCES record (record_id),
    version                  BIGINT NOT NULL,
    change_kind              TEXT NOT NULL,
    payload                  TEXT NOT NULL,
    valid_from               TEXT NOT NULL,
    recorded_by_system       TEXT NOT NULL,
    recorded_by_practitioner TEXT NOT NULL,
    end_reason               TEXT,
    end_date                 TEXT,
    PRIMARY KEY (record_id, version)
);

-- Which persons each version names, and in what part: facts are found from either side.
CREATE TABLE record_person (
    record_id TEXT NOT NULL,
    version   BIGINT NOT NULL,
    person_id TEXT NOT NULL REFERENCES person (person_id),
    part      TEXT NOT NULL,
    PRIMARY KEY (record_id, version, part, person_id)
);
CREATE INDEX record_person_by_person ON record_person (person_id, record_id);

-- Idempotency: the first answer to each client request, per agency system.
CREATE TABLE client_request (
    system_id         TEXT NOT NULL,
    client_request_id TEXT NOT NULL,
    request_sha256    TEXT NOT NULL,
    response          TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    PRIMARY KEY (system_id, client_request_id)
);

-- Who changed which fact, when, and which fields; separate from the disclosure log.
CREATE TABLE change_trail (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at       TEXT NOT NULL,
    system_id         TEXT NOT NULL,
    agency            TEXT NOT NULL,
    practitioner_id   TEXT NOT NULL,
    role              TEXT NOT NULL,
    change_kind       TEXT NOT NULL,
    record_id         TEXT NOT NULL,
    version           BIGINT NOT NULL,
    category          TEXT NOT NULL,
    client_request_id TEXT NOT NULL,
    changed_fields    TEXT NOT NULL
);
CREATE INDEX change_trail_by_record ON change_trail (record_id, version);

CREATE TRIGGER record_version_no_update BEFORE UPDATE ON record_version
BEGIN SELECT RAISE(ABORT, 'record_version is append-only'); END;
CREATE TRIGGER record_version_no_delete BEFORE DELETE ON record_version
BEGIN SELECT RAISE(ABORT, 'record_version is append-only'); END;
CREATE TRIGGER change_trail_no_update BEFORE UPDATE ON change_trail
BEGIN SELECT RAISE(ABORT, 'change_trail is append-only'); END;
CREATE TRIGGER change_trail_no_delete BEFORE DELETE ON change_trail
BEGIN SELECT RAISE(ABORT, 'change_trail is append-only'); END;
