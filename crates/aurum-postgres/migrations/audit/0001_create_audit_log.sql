-- The hash-chained audit log on PostgreSQL: the same table as the SQLite one (see
-- `aurum_registry::audit` for the hash-chain format), in its own schema `aurum_audit` so that its
-- migrations are versioned apart from the registry's. Text columns keep the exact stored text
-- that the chain hashes (`details` is canonical JSON as text, not jsonb).
CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY CHECK (seq >= 1),
    format_version BIGINT NOT NULL,
    ts             TEXT   NOT NULL,
    event          TEXT   NOT NULL,
    actor          TEXT   NOT NULL,
    request_id     TEXT,
    model          TEXT,
    model_version  BIGINT,
    input_sha256   TEXT,
    details        TEXT   NOT NULL,
    prev_hash      TEXT   NOT NULL,
    hash           TEXT   NOT NULL
);

CREATE INDEX audit_log_event_seq ON audit_log (event, seq);
CREATE INDEX audit_log_model_seq ON audit_log (model, seq);
CREATE INDEX audit_log_request_id ON audit_log (request_id);

-- Append-only at the SQL level: UPDATE, DELETE and TRUNCATE are refused for every role that does
-- not own the table. An owner can drop the trigger; the hash chain and the signed anchors are
-- what catch that. In production, run aurum as a role that was granted only SELECT and INSERT.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END
$$;

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
