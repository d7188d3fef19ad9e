-- Contact rows are bound to the disclosure-log entries that carry them whole: found by
-- entry, so a logged step with no row (the gateway stopped between logging and storing)
-- is found and derived again from its entry.
CREATE INDEX contact_request_by_log_entry ON contact_request (log_entry_id);
CREATE INDEX contact_step_by_log_entry ON contact_step (log_entry_id);

-- Overdue escalation runs in one gateway process at a time across the deployment: the
-- sweeping process holds this lease (RFC 3339 UTC `until`; '' when free), so two
-- processes on one database never escalate the same request twice.
CREATE TABLE contact_sweep_lease (
    lease  TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    until  TEXT NOT NULL
);
INSERT INTO contact_sweep_lease (lease, holder, until) VALUES ('escalation', '', '');
