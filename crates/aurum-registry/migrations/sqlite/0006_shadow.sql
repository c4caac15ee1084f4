-- Challenger (shadow) answers: for each record the champion scored while a challenger was
-- configured, what the challenger would have answered. Never returned to the caller; compared
-- with the champion's answers, and with outcomes when they arrive (same request id and record).
CREATE TABLE shadow_scores (
    model               TEXT    NOT NULL,
    request_id          TEXT    NOT NULL,
    record              INTEGER NOT NULL CHECK (record >= 0),
    champion_version    INTEGER NOT NULL,
    challenger_version  INTEGER NOT NULL,
    champion_p          REAL    NOT NULL,
    challenger_p        REAL    NOT NULL,
    champion_decision   TEXT    NOT NULL,
    challenger_decision TEXT    NOT NULL,
    scored_at           TEXT    NOT NULL,
    PRIMARY KEY (model, request_id, record)
);

CREATE INDEX shadow_scores_by_pair ON shadow_scores (model, champion_version, challenger_version);
