-- aurum registry schema, version 1.
--
-- Portable on purpose (a PostgreSQL twin will follow): TEXT / INTEGER / BIGINT / DOUBLE PRECISION
-- columns, natural TEXT keys, timestamps as fixed-width RFC 3339 UTC text
-- (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, which sorts chronologically), JSON as TEXT.
-- The one SQLite-specific habit: `INTEGER PRIMARY KEY` for alias_history.id
-- (BIGINT GENERATED ALWAYS AS IDENTITY on PostgreSQL).
-- Never edit this file once released: add 0002_*.sql instead.

CREATE TABLE datasets (
    name          TEXT    NOT NULL PRIMARY KEY,
    sha256        TEXT    NOT NULL,
    format        TEXT    NOT NULL,
    size_bytes    BIGINT  NOT NULL,
    row_count     BIGINT  NOT NULL,
    column_count  BIGINT  NOT NULL,
    schema_json   TEXT    NOT NULL,
    profile_json  TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    created_by    TEXT    NOT NULL
);

CREATE TABLE models (
    name        TEXT NOT NULL PRIMARY KEY,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);

CREATE TABLE jobs (
    id              TEXT             NOT NULL PRIMARY KEY,
    state           TEXT             NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    dataset         TEXT             NOT NULL REFERENCES datasets (name),
    target          TEXT             NOT NULL,
    kind            TEXT             NOT NULL,
    model           TEXT             NOT NULL,
    params_json     TEXT             NOT NULL,
    progress        DOUBLE PRECISION NOT NULL,
    stage           TEXT             NOT NULL,
    error           TEXT,
    result_version  INTEGER,
    created_at      TEXT             NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    created_by      TEXT             NOT NULL
);

CREATE INDEX jobs_by_created_at ON jobs (created_at);
CREATE INDEX jobs_by_state ON jobs (state);

CREATE TABLE model_versions (
    model            TEXT    NOT NULL REFERENCES models (name),
    version          INTEGER NOT NULL CHECK (version >= 1),
    kind             TEXT    NOT NULL,
    artifact_key     TEXT    NOT NULL,
    artifact_sha256  TEXT    NOT NULL,
    dataset_name     TEXT    NOT NULL REFERENCES datasets (name),
    dataset_sha256   TEXT    NOT NULL,
    target           TEXT    NOT NULL,
    params_json      TEXT    NOT NULL,
    metrics_json     TEXT    NOT NULL,
    aurum_version    TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    created_by       TEXT    NOT NULL,
    job_id           TEXT    REFERENCES jobs (id),
    archived_at      TEXT,
    PRIMARY KEY (model, version)
);

CREATE TABLE model_aliases (
    model       TEXT    NOT NULL,
    alias       TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL,
    updated_by  TEXT    NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);

CREATE TABLE alias_history (
    id            INTEGER NOT NULL PRIMARY KEY,
    model         TEXT    NOT NULL REFERENCES models (name),
    alias         TEXT    NOT NULL,
    from_version  INTEGER,
    to_version    INTEGER NOT NULL,
    moved_by      TEXT    NOT NULL,
    moved_at      TEXT    NOT NULL
);

CREATE INDEX alias_history_by_model ON alias_history (model, id);

CREATE TABLE api_keys (
    id          TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'client')),
    key_hash    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
