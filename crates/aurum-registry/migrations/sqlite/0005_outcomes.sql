-- Realised outcomes of past predictions: one row per scored record, keyed by the request that
-- scored it and the record's position in that request. `probability` and `decision` are copied
-- from the prediction's audit record when the outcome is recorded, so that performance reports
-- need not read the audit log. A later outcome for the same record replaces the earlier one.
CREATE TABLE outcomes (
    model         TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    request_id    TEXT    NOT NULL,
    record        INTEGER NOT NULL CHECK (record >= 0),
    probability   REAL    NOT NULL,
    decision      TEXT,
    positive      INTEGER NOT NULL CHECK (positive IN (0, 1)),
    scored_at     TEXT    NOT NULL,
    received_at   TEXT    NOT NULL,
    PRIMARY KEY (model, request_id, record)
);

CREATE INDEX outcomes_by_version ON outcomes (model, version, scored_at);
