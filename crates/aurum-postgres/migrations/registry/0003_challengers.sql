-- Each model's challenger setting (alias, mode, share; JSON in the service's format), one row per
-- model that has one, shared by every replica; a change bumps (and notifies) the change epoch
-- like an alias move, so every replica reloads it at once.
CREATE TABLE challengers (
    model      TEXT NOT NULL PRIMARY KEY REFERENCES models (name),
    config     TEXT NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);

CREATE TRIGGER registry_changes_challenger
    AFTER INSERT OR UPDATE OR DELETE ON challengers
    FOR EACH ROW EXECUTE FUNCTION aurum_registry_bump_epoch();
