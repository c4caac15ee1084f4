-- The hash-chained audit log. One row per audited event; see `aurum_registry::audit` for the
-- hash-chain format. Plain, portable column types: a PostgreSQL backend would use the same table
-- with BIGINT seq and a PL/pgSQL trigger instead of RAISE(ABORT).
CREATE TABLE audit_log (
    seq            INTEGER PRIMARY KEY CHECK (seq >= 1),
    format_version INTEGER NOT NULL,
    ts             TEXT    NOT NULL,
    event          TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    request_id     TEXT,
    model          TEXT,
    model_version  INTEGER,
    input_sha256   TEXT,
    details        TEXT    NOT NULL,
    prev_hash      TEXT    NOT NULL,
    hash           TEXT    NOT NULL
);

CREATE INDEX audit_log_event_seq ON audit_log (event, seq);
CREATE INDEX audit_log_model_seq ON audit_log (model, seq);

-- Append-only at the SQL level as well. This stops bugs and casual edits through the
-- application's own connections; someone who can edit the file can drop these triggers, and the
-- hash chain is what catches that.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
