-- Coherence between processes sharing one data directory, and job ownership.
--
-- `registry_changes.epoch` grows with every change another process must see at once: an alias
-- move, a new or archived version, a created or revoked API key. Triggers bump it in the same
-- transaction as the change, so no writer can forget to; every process polls the one row and
-- refreshes its caches when the number moves. (A PostgreSQL twin uses LISTEN/NOTIFY instead.)
--
-- `jobs.owner` is the id of the process instance running the job and `jobs.heartbeat_at` the
-- last time that instance said it was alive; at start-up only jobs whose heartbeat is stale are
-- failed, so a server starting beside a CLI training job leaves that job alone.

CREATE TABLE registry_changes (
    id     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch  BIGINT  NOT NULL
);

INSERT INTO registry_changes (id, epoch) VALUES (1, 0);

CREATE TRIGGER registry_changes_alias_insert AFTER INSERT ON model_aliases
BEGIN UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER registry_changes_alias_update AFTER UPDATE ON model_aliases
BEGIN UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER registry_changes_alias_delete AFTER DELETE ON model_aliases
BEGIN UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER registry_changes_version_insert AFTER INSERT ON model_versions
BEGIN UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER registry_changes_version_update AFTER UPDATE ON model_versions
BEGIN UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER registry_changes_key_insert AFTER INSERT ON api_keys
BEGIN UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER registry_changes_key_update AFTER UPDATE ON api_keys
BEGIN UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER registry_changes_key_delete AFTER DELETE ON api_keys
BEGIN UPDATE registry_changes SET epoch = epoch + 1 WHERE id = 1; END;

ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN heartbeat_at TEXT;
