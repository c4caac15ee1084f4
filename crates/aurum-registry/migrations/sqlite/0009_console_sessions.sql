-- Web console sessions, one row per signed-in browser, shared by every process on this file so
-- that a restart signs nobody out. Keyed by the SHA-256 (lowercase hex) of the cookie's random
-- id, never the id itself; times are unix milliseconds. Not tied to the change epoch: nothing
-- caches a session, every console request reads its row.
CREATE TABLE console_sessions (
    session_hash  TEXT NOT NULL PRIMARY KEY,
    key_id        TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);

-- The purge of expired sessions and the eviction of the oldest beyond the cap.
CREATE INDEX console_sessions_expires ON console_sessions (expires_at_ms);
CREATE INDEX console_sessions_created ON console_sessions (created_at_ms);
