-- no-transaction
-- Versions imported from outside aurum (LightGBM and XGBoost models trained elsewhere) have no
-- aurum dataset: `dataset_name` becomes nullable. For such a version `dataset_sha256` holds the
-- SHA-256 of the imported model file, so its lineage still names exactly what was imported.
-- SQLite cannot drop a column constraint in place, so the table is rebuilt following SQLite's
-- documented procedure (foreign keys off outside the transaction, checked again before commit).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE model_versions_new (
    model            TEXT    NOT NULL REFERENCES models (name),
    version          INTEGER NOT NULL CHECK (version >= 1),
    kind             TEXT    NOT NULL,
    artifact_key     TEXT    NOT NULL,
    artifact_sha256  TEXT    NOT NULL,
    dataset_name     TEXT    REFERENCES datasets (name),
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
INSERT INTO model_versions_new SELECT * FROM model_versions;
DROP TABLE model_versions;
ALTER TABLE model_versions_new RENAME TO model_versions;
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
