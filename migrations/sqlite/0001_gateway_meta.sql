-- Facts about this gateway's own database: what schema it holds and when it was created.
-- The health probe reads it, so SERVING means "the schema is there", not just "a socket answers".
CREATE TABLE gateway_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

INSERT INTO gateway_meta (key, value) VALUES ('schema', 'safegate');
INSERT INTO gateway_meta (key, value) VALUES ('created_at', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
