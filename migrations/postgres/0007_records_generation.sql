-- One counter that every transaction changing the records bumps before it commits, so a
-- gateway process can tell with one small read whether the facts it holds in memory are
-- still current, whichever process made the change (src/store/read_cache.rs).
CREATE TABLE records_generation (
    id         BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO records_generation (id, generation) VALUES (1, 0);
