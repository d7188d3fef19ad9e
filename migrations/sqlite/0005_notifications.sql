-- The durable notification outbox: notices are written in the same transaction as the
-- fact that triggers them, and delivered in `seq` order per receiving system until it
-- acknowledges them.
CREATE TABLE notice (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    notice_id         TEXT NOT NULL UNIQUE,
    recipient_system  TEXT NOT NULL,
    rule              TEXT NOT NULL,
    trigger_record_id TEXT NOT NULL,
    payload           TEXT NOT NULL, -- the shaped notice (JSON)
    created_at        TEXT NOT NULL
);
CREATE INDEX notice_by_recipient ON notice (recipient_system, seq);

-- How far each receiving system has acknowledged.
CREATE TABLE notice_ack (
    recipient_system TEXT PRIMARY KEY NOT NULL,
    acked_seq        BIGINT NOT NULL,
    acked_at         TEXT NOT NULL
);

CREATE TRIGGER notice_no_update BEFORE UPDATE ON notice
BEGIN SELECT RAISE(ABORT, 'notice is append-only'); END;
CREATE TRIGGER notice_no_delete BEFORE DELETE ON notice
BEGIN SELECT RAISE(ABORT, 'notice is append-only'); END;
