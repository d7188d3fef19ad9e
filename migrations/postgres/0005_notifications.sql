-- The durable notification outbox: notices are written in the same transaction as the
-- fact that triggers them, and delivered in `seq` order per receiving system until it
-- acknowledges them.
CREATE TABLE notice (
    seq               BIGSERIAL PRIMARY KEY,
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

CREATE TRIGGER notice_append_only BEFORE UPDATE OR DELETE ON notice
    FOR EACH ROW EXECUTE FUNCTION safegate_refuse_change();
