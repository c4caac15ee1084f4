-- aurum registry schema on PostgreSQL, version 1: the equivalent of SQLite migrations 0001-0006
-- (`crates/aurum-registry/migrations/sqlite/`) in one step.
--
-- Kept deliberately close to the SQLite schema so that both stores return identical records:
-- natural TEXT keys, timestamps as fixed-width RFC 3339 UTC text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`,
-- which sorts chronologically), JSON as TEXT. Differences, all invisible through the trait:
--
-- - every integer is BIGINT (the store reads them as i64, as it does from SQLite);
-- - text that is compared or sorted uses COLLATE "C" (byte order, as SQLite's BINARY), so
--   listings and timestamp comparisons do not depend on the database's locale;
-- - `outcomes.positive` is a BOOLEAN rather than a 0/1 INTEGER;
-- - `alias_history.id` is an identity column;
-- - the change-epoch triggers also `pg_notify('aurum_registry_changes', <epoch>)`, delivered
--   when (and only if) the changing transaction commits, so replicas can wake at once instead
--   of polling.
--
-- Never edit this file once released: add 0002_*.sql instead.

CREATE TABLE datasets (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    sha256        TEXT             NOT NULL,
    format        TEXT             NOT NULL,
    size_bytes    BIGINT           NOT NULL,
    row_count     BIGINT           NOT NULL,
    column_count  BIGINT           NOT NULL,
    schema_json   TEXT             NOT NULL,
    profile_json  TEXT             NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    created_by    TEXT             NOT NULL
);

CREATE TABLE models (
    name        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    created_at  TEXT COLLATE "C" NOT NULL,
    created_by  TEXT             NOT NULL
);

-- `owner` is the id of the process instance running the job and `heartbeat_at` the last time it
-- said it was alive: at start-up only jobs whose heartbeat is stale are failed.
CREATE TABLE jobs (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    state           TEXT             NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    dataset         TEXT COLLATE "C" NOT NULL REFERENCES datasets (name),
    target          TEXT             NOT NULL,
    kind            TEXT             NOT NULL,
    model           TEXT COLLATE "C" NOT NULL,
    params_json     TEXT             NOT NULL,
    progress        DOUBLE PRECISION NOT NULL,
    stage           TEXT             NOT NULL,
    error           TEXT,
    result_version  BIGINT,
    created_at      TEXT COLLATE "C" NOT NULL,
    started_at      TEXT COLLATE "C",
    finished_at     TEXT COLLATE "C",
    created_by      TEXT             NOT NULL,
    owner           TEXT,
    heartbeat_at    TEXT COLLATE "C"
);

CREATE INDEX jobs_by_created_at ON jobs (created_at);
CREATE INDEX jobs_by_state ON jobs (state);
CREATE INDEX jobs_by_owner ON jobs (owner);

-- `dataset_name` is NULL for a version imported from outside aurum; its `dataset_sha256` is then
-- the SHA-256 of the imported model file.
CREATE TABLE model_versions (
    model            TEXT COLLATE "C" NOT NULL REFERENCES models (name),
    version          BIGINT           NOT NULL CHECK (version >= 1),
    kind             TEXT             NOT NULL,
    artifact_key     TEXT             NOT NULL,
    artifact_sha256  TEXT             NOT NULL,
    dataset_name     TEXT COLLATE "C" REFERENCES datasets (name),
    dataset_sha256   TEXT             NOT NULL,
    target           TEXT             NOT NULL,
    params_json      TEXT             NOT NULL,
    metrics_json     TEXT             NOT NULL,
    aurum_version    TEXT             NOT NULL,
    created_at       TEXT COLLATE "C" NOT NULL,
    created_by       TEXT             NOT NULL,
    job_id           TEXT COLLATE "C" REFERENCES jobs (id),
    archived_at      TEXT COLLATE "C",
    PRIMARY KEY (model, version)
);

CREATE TABLE model_aliases (
    model       TEXT COLLATE "C" NOT NULL,
    alias       TEXT COLLATE "C" NOT NULL,
    version     BIGINT           NOT NULL,
    updated_at  TEXT COLLATE "C" NOT NULL,
    updated_by  TEXT             NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);

CREATE INDEX model_aliases_by_version ON model_aliases (model, version);

CREATE TABLE alias_history (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model         TEXT COLLATE "C" NOT NULL REFERENCES models (name),
    alias         TEXT COLLATE "C" NOT NULL,
    from_version  BIGINT,
    to_version    BIGINT           NOT NULL,
    moved_by      TEXT             NOT NULL,
    moved_at      TEXT COLLATE "C" NOT NULL
);

CREATE INDEX alias_history_by_model ON alias_history (model, id);

-- Per-key policy: `expires_at` (NULL = never), `scopes` (a JSON array of model names or
-- `prefix*`, NULL = every model) and `rate_limit_per_s` (NULL = unlimited).
CREATE TABLE api_keys (
    id                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name              TEXT COLLATE "C" NOT NULL,
    role              TEXT             NOT NULL CHECK (role IN ('admin', 'analyst', 'client')),
    key_hash          TEXT             NOT NULL,
    created_at        TEXT COLLATE "C" NOT NULL,
    revoked_at        TEXT COLLATE "C",
    expires_at        TEXT COLLATE "C",
    scopes            TEXT,
    rate_limit_per_s  BIGINT,
    CONSTRAINT api_keys_name_unique UNIQUE (name)
);

-- Realised outcomes of past predictions, one row per scored record; a later outcome for the
-- same record replaces the earlier one.
CREATE TABLE outcomes (
    model         TEXT COLLATE "C" NOT NULL,
    version       BIGINT           NOT NULL,
    request_id    TEXT COLLATE "C" NOT NULL,
    record        BIGINT           NOT NULL CHECK (record >= 0),
    probability   DOUBLE PRECISION NOT NULL,
    decision      TEXT,
    positive      BOOLEAN          NOT NULL,
    scored_at     TEXT COLLATE "C" NOT NULL,
    received_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model, request_id, record)
);

CREATE INDEX outcomes_by_version ON outcomes (model, version, scored_at);

-- Challenger (shadow) answers for records the champion scored.
CREATE TABLE shadow_scores (
    model               TEXT COLLATE "C" NOT NULL,
    request_id          TEXT COLLATE "C" NOT NULL,
    record              BIGINT           NOT NULL CHECK (record >= 0),
    champion_version    BIGINT           NOT NULL,
    challenger_version  BIGINT           NOT NULL,
    champion_p          DOUBLE PRECISION NOT NULL,
    challenger_p        DOUBLE PRECISION NOT NULL,
    champion_decision   TEXT             NOT NULL,
    challenger_decision TEXT             NOT NULL,
    scored_at           TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model, request_id, record)
);

CREATE INDEX shadow_scores_by_pair ON shadow_scores (model, champion_version, challenger_version);
CREATE INDEX shadow_scores_by_time ON shadow_scores (model, scored_at);

-- `registry_changes.epoch` grows with every change another process must see at once: an alias
-- move, a new or archived version, a created or revoked API key. The trigger bumps it in the
-- same transaction as the change, so no writer can forget to, and announces the new value on
-- the `aurum_registry_changes` channel (delivered at commit; dropped on rollback).
CREATE TABLE registry_changes (
    id     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch  BIGINT  NOT NULL
);

INSERT INTO registry_changes (id, epoch) VALUES (1, 0);

CREATE FUNCTION aurum_registry_bump_epoch() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    new_epoch BIGINT;
BEGIN
    UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch INTO new_epoch;
    PERFORM pg_notify('aurum_registry_changes', new_epoch::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER registry_changes_alias
    AFTER INSERT OR UPDATE OR DELETE ON model_aliases
    FOR EACH ROW EXECUTE FUNCTION aurum_registry_bump_epoch();
CREATE TRIGGER registry_changes_version
    AFTER INSERT OR UPDATE ON model_versions
    FOR EACH ROW EXECUTE FUNCTION aurum_registry_bump_epoch();
CREATE TRIGGER registry_changes_key
    AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION aurum_registry_bump_epoch();
