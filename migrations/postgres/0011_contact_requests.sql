-- Contact requests: a practitioner shown a fact as an indicator asks the owning team to
-- get in touch. The request is never changed; answers and escalations are steps after
-- it. Each row is stored after the disclosure-log entry that records it (`log_entry_id`),
-- whose hashed encoding carries the same step.
CREATE TABLE contact_request (
    request_id             TEXT PRIMARY KEY NOT NULL,
    requester_system       TEXT NOT NULL,
    requester_practitioner TEXT NOT NULL,
    client_request_id      TEXT NOT NULL, -- '' when the system gave none
    owner_system           TEXT NOT NULL, -- the team asked first
    created_at             TEXT NOT NULL, -- RFC 3339 UTC
    due_at                 TEXT NOT NULL, -- RFC 3339 UTC, set by urgency (policies/contact.toml)
    payload                TEXT NOT NULL, -- the request (JSON)
    log_entry_id           TEXT NOT NULL
);
CREATE INDEX contact_request_by_requester
    ON contact_request (requester_system, requester_practitioner, created_at);
CREATE INDEX contact_request_by_owner ON contact_request (owner_system, created_at);
CREATE INDEX contact_request_by_due ON contact_request (due_at);
CREATE UNIQUE INDEX contact_request_by_client_id
    ON contact_request (requester_system, client_request_id) WHERE client_request_id <> '';

CREATE TABLE contact_step (
    seq          BIGSERIAL PRIMARY KEY,
    step_id      TEXT NOT NULL UNIQUE,
    request_id   TEXT NOT NULL REFERENCES contact_request (request_id),
    kind         TEXT NOT NULL, -- answered | escalated
    outcome      TEXT NOT NULL, -- contacted | declined | passed_on; '' for an escalation
    to_system    TEXT NOT NULL, -- for passed_on: the team it now sits with; else ''
    payload      TEXT NOT NULL, -- the step (JSON)
    recorded_at  TEXT NOT NULL,
    log_entry_id TEXT NOT NULL
);
CREATE INDEX contact_step_by_request ON contact_step (request_id, seq);
CREATE INDEX contact_step_by_to_system ON contact_step (to_system);

CREATE TRIGGER contact_request_append_only BEFORE UPDATE OR DELETE ON contact_request
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
CREATE TRIGGER contact_step_append_only BEFORE UPDATE OR DELETE ON contact_step
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
CREATE TRIGGER contact_request_no_truncate BEFORE TRUNCATE ON contact_request
    FOR EACH STATEMENT EXECUTE FUNCTION safegate_refuse_change();
CREATE TRIGGER contact_step_no_truncate BEFORE TRUNCATE ON contact_step
    FOR EACH STATEMENT EXECUTE FUNCTION safegate_refuse_change();
