-- Each model's challenger setting (alias, mode, share; JSON in the service's format), one row per
-- model that has one. In the registry, not a file beside it, so that every process sharing the
-- registry shadows or splits the same way; a change bumps the change epoch like an alias move,
-- so other processes reload it at once.
CREATE TABLE challengers (
    model      TEXT NOT NULL PRIMARY KEY REFERENCES models (name),
    config     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TRIGGER registry_changes_challenger_insert AFTER INSERT ON challengers
BEGIN UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER registry_changes_challenger_update AFTER UPDATE ON challengers
BEGIN UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER registry_changes_challenger_delete AFTER DELETE ON challengers
BEGIN UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1; END;
