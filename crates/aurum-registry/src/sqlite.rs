//! [`MetadataStore`] on a single SQLite file.
//!
//! Why SQLite: a model server on one machine needs a durable, transactional store with zero
//! operations work. The file runs in WAL mode (readers never block the writer) with
//! `synchronous=FULL` (a committed alias move or key revocation survives power loss), foreign
//! keys on, and a busy timeout so that concurrent writers queue instead of failing.
//!
//! Every transaction that writes starts with `BEGIN IMMEDIATE`: it takes SQLite's write lock up
//! front, so a read-then-write sequence (next version number, current alias) cannot be
//! interleaved with another writer, and lock waits go through the busy timeout rather than
//! failing with `SQLITE_BUSY` on lock upgrade. The SQL itself sticks to what PostgreSQL also
//! accepts (`ON CONFLICT`, `RETURNING`, `COALESCE`), apart from the `?` placeholders.
//!
//! The schema is versioned by the migrations in `migrations/sqlite/`, embedded at compile time
//! and applied by [`SqliteStore::open`]. A database written by a newer aurum (with migrations
//! this build does not know) is refused rather than used.
//!
//! **Shadow scores live in a file of their own** (`<name>-shadow.db` beside the database,
//! [`shadow_path`]), written by one connection with `synchronous=OFF`: their commits and WAL
//! checkpoints never flush the disk, so they cannot queue a flush ahead of the audit log's or a
//! registry commit's (a checkpoint of the shared file flushed megabytes every few seconds while
//! shadow scoring ran, which is where the shadowed requests' p99 went; BENCHMARKS.md). A shadow
//! record may already be lost at a crash, never a decision or an audit record; `OFF` adds that
//! an operating-system crash or power loss can leave the shadow file damaged, which is why it is
//! a separate file: a damaged one is moved aside (`.damaged-<time>-<random>`) and the write
//! goes to a new one, and the registry never depends on it. The comparison joins it with the
//! outcomes of the main file in the store. Records written into the main file's `shadow_scores` table by earlier versions
//! are moved over at open.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};

use aurum_core::FamilyName;

use crate::backend::{
    DriftCountsRow, check_console_session, check_drift_counts, drift_counts_from_db,
    duplicate_console_session, format_timestamp as ts, now, outcome_attributes_from_db,
    outcome_attributes_to_db, parse_timestamp as parse_ts,
};
use crate::error::{Entity, RegistryError, Result, check_name, check_sha256};
use crate::keys::{self, StoredKeyHash};
use crate::metadata::{
    AliasHistoryRecord, AliasMove, AliasRecord, ConsoleSessionRecord, DatasetRecord,
    DriftCountsRecord, INTERRUPTED_AFTER_REGISTRATION, INTERRUPTED_JOB_ERROR, JobRecord, JobState,
    KeyCredential, KeyPolicy, KeyRecord, MetadataStore, ModelRecord, NewDataset, NewJob,
    NewVersion, OutcomeRecord, Role, ShadowRecord, VersionRecord, check_job_open,
};

/// The table that records applied migrations of this store. Not sqlx's default name, so that
/// other migrators sharing the file (the audit log) keep their own bookkeeping.
const MIGRATIONS_TABLE: &str = "_aurum_registry_migrations";
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: u32 = 8;

/// The SQLite metadata store. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection to the shadow file ([`shadow_path`]), opened on first use; replaced when
    /// the file is found damaged.
    shadow_pool: std::sync::Arc<std::sync::RwLock<SqlitePool>>,
    shadow_path: PathBuf,
}

/// The shadow scores' file beside the database at `path`: `registry.db` → `registry-shadow.db`.
pub fn shadow_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}-shadow.db"))
}

/// The shadow file's schema, created on its connection's first use (the same table as migration
/// 0006 created in the main file).
const SHADOW_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS shadow_scores (
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
CREATE INDEX IF NOT EXISTS shadow_scores_by_pair
    ON shadow_scores (model, champion_version, challenger_version);";

/// The shadow file's one lazily opened connection.
fn shadow_pool(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .busy_timeout(BUSY_TIMEOUT);
    SqlitePoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::raw_sql(SHADOW_SCHEMA).execute(conn).await?;
                Ok(())
            })
        })
        .connect_lazy_with(options)
}

/// Whether `e` says the file is damaged: `SQLITE_CORRUPT` (11) or `SQLITE_NOTADB` (26), in their
/// primary or extended codes.
fn is_damaged(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    d.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 11 | 26))
}

impl SqliteStore {
    /// Opens (creating it and its parent directory when missing) the database at `path` and
    /// applies pending migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs_err::create_dir_all(parent)?;
        }
        crate::private_file::prepare(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.clone())
            .await?;
        let mut migrator = sqlx_macros::migrate!("./migrations/sqlite");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&pool).await?;
        let shadow_path = shadow_path(path);
        crate::private_file::prepare(&shadow_path)?;
        let store = SqliteStore {
            pool,
            shadow_pool: std::sync::Arc::new(std::sync::RwLock::new(shadow_pool(&shadow_path))),
            shadow_path,
        };
        store.move_old_shadow_scores().await?;
        tracing::info!(path = %path.display(), "registry database opened");
        Ok(store)
    }

    /// Moves shadow scores an earlier version wrote into the main file over to the shadow file,
    /// a slice at a time (copy, then delete the copied rows; a crash in between copies them
    /// again, which replaces them with themselves).
    async fn move_old_shadow_scores(&self) -> Result<()> {
        const SLICE: i64 = 2_000;
        loop {
            let rows: Vec<(i64, ShadowRow)> = sqlx::query_as::<_, ShadowRowWithId>(
                "SELECT rowid, model, request_id, record, champion_version, challenger_version, \
                 champion_p, challenger_p, champion_decision, challenger_decision, scored_at, \
                 NULL AS positive FROM shadow_scores ORDER BY rowid LIMIT ?",
            )
            .bind(SLICE)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| (r.rowid, r.row))
            .collect();
            let Some(last) = rows.last().map(|(id, _)| *id) else {
                return Ok(());
            };
            let records = rows
                .into_iter()
                .map(|(_, r)| shadow_record(r).map(|(record, _)| record))
                .collect::<Result<Vec<_>>>()?;
            self.record_shadow_rows(&records).await?;
            sqlx::query("DELETE FROM shadow_scores WHERE rowid <= ?")
                .bind(last)
                .execute(&self.pool)
                .await?;
            tracing::info!(records = records.len(), path = %self.shadow_path.display(), "shadow scores moved to their own file");
        }
    }

    /// The shadow file's pool.
    fn shadow(&self) -> SqlitePool {
        self.shadow_pool
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Inserts shadow records into the shadow file; when the file is damaged, sets it aside and
    /// writes them into a new one.
    async fn record_shadow_rows(&self, rows: &[ShadowRecord]) -> Result<()> {
        match self.write_shadow(rows).await {
            Err(e) if is_damaged(&e) => {
                tracing::error!(path = %self.shadow_path.display(), error = %e, "shadow file damaged; moved aside, a new one is started");
                self.set_damaged_shadow_aside().await;
                Ok(self.write_shadow(rows).await?)
            }
            other => Ok(other?),
        }
    }

    /// Inserts shadow records into the shadow file in one transaction.
    async fn write_shadow(&self, rows: &[ShadowRecord]) -> std::result::Result<(), sqlx::Error> {
        let mut tx = self.shadow().begin_with("BEGIN IMMEDIATE").await?;
        for chunk in rows.chunks(crate::backend::SHADOW_ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT OR REPLACE INTO shadow_scores (model, request_id, record, champion_version, \
                 challenger_version, champion_p, challenger_p, champion_decision, \
                 challenger_decision, scored_at) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.model)
                    .push_bind(&r.request_id)
                    .push_bind(i64::from(r.record))
                    .push_bind(i64::from(r.champion_version))
                    .push_bind(i64::from(r.challenger_version))
                    .push_bind(r.champion_p)
                    .push_bind(r.challenger_p)
                    .push_bind(&r.champion_decision)
                    .push_bind(&r.challenger_decision)
                    .push_bind(ts(&r.scored_at));
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// Moves a damaged shadow file aside (with its WAL and shared-memory files) so the next
    /// write starts a new one.
    async fn set_damaged_shadow_aside(&self) {
        self.shadow().close().await;
        // Unique per setting aside: two processes that find the file damaged in the same second
        // must not rename one's fresh file over the other's damaged copy.
        let stamp = format!(
            "{}-{}",
            Utc::now().format("%Y%m%dT%H%M%S"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        for suffix in ["", "-wal", "-shm"] {
            let mut from = self.shadow_path.as_os_str().to_owned();
            from.push(suffix);
            let mut to = from.clone();
            to.push(format!(".damaged-{stamp}"));
            if std::path::Path::new(&from).exists()
                && let Err(e) = fs_err::rename(&from, &to)
            {
                tracing::error!(error = %e, "damaged shadow file not moved aside");
            }
        }
        if let Err(e) = crate::private_file::prepare(&self.shadow_path) {
            tracing::error!(error = %e, "new shadow file not created private");
        }
        *self
            .shadow_pool
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = shadow_pool(&self.shadow_path);
    }

    /// The connection pool, for components that keep their own tables in the same file
    /// (the audit log).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.shadow().close().await;
        self.pool.close().await;
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// `NotFound` unless the model exists. Takes the caller's connection: a caller inside a
    /// transaction must not wait for a second pooled connection.
    async fn ensure_model(conn: &mut SqliteConnection, name: &str) -> Result<()> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM models WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(RegistryError::not_found(Entity::Model, name)),
        }
    }

    async fn fetch_version(
        conn: &mut SqliteConnection,
        model: &str,
        version: u32,
    ) -> Result<Option<VersionRecord>> {
        let row: Option<VersionRow> = sqlx::query_as(
            "SELECT model, version, kind, artifact_key, artifact_sha256, dataset_name, \
             dataset_sha256, target, params_json, metrics_json, aurum_version, created_at, \
             created_by, job_id, archived_at FROM model_versions WHERE model = ? AND version = ?",
        )
        .bind(model)
        .bind(i64::from(version))
        .fetch_optional(&mut *conn)
        .await?;
        row.map(VersionRecord::try_from).transpose()
    }

    /// The version, or `NotFound` for the model or the version, whichever is missing.
    async fn require_version(
        conn: &mut SqliteConnection,
        model: &str,
        version: u32,
    ) -> Result<VersionRecord> {
        match Self::fetch_version(conn, model, version).await? {
            Some(record) => Ok(record),
            None => {
                Self::ensure_model(conn, model).await?;
                Err(RegistryError::not_found(
                    Entity::Version,
                    format!("{model}@v{version}"),
                ))
            }
        }
    }

    async fn fetch_aliases(&self, model: &str) -> Result<Vec<AliasRecord>> {
        let rows: Vec<AliasRow> = sqlx::query_as(
            "SELECT model, alias, version, updated_at, updated_by FROM model_aliases \
             WHERE model = ? ORDER BY alias",
        )
        .bind(model)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AliasRecord::try_from).collect()
    }

    async fn fetch_job(&self, id: &str) -> Result<Option<JobRecord>> {
        let row: Option<JobRow> = sqlx::query_as(
            "SELECT id, state, dataset, target, kind, model, params_json, progress, stage, error, \
             result_version, created_at, started_at, finished_at, created_by FROM jobs WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(JobRecord::try_from).transpose()
    }

    async fn fetch_key(conn: &mut SqliteConnection, id: &str) -> Result<Option<KeyRow>> {
        Ok(sqlx::query_as(
            "SELECT id, name, role, key_hash, created_at, revoked_at, expires_at, scopes, rate_limit_per_s FROM api_keys WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
    }
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn insert_dataset(&self, new: NewDataset) -> Result<(DatasetRecord, bool)> {
        check_name(&new.name)?;
        check_sha256("dataset sha256", &new.sha256)?;
        if new.format.is_empty() {
            return Err(RegistryError::InvalidInput(
                "dataset format must not be empty".into(),
            ));
        }
        let size_bytes = to_db_count("size_bytes", new.size_bytes)?;
        let rows = to_db_count("rows", new.rows)?;
        let columns = to_db_count("columns", new.columns)?;

        let mut tx = self.write_tx().await?;
        let existing: Option<DatasetRow> = sqlx::query_as(
            "SELECT name, sha256, format, size_bytes, row_count, column_count, schema_json, \
             profile_json, created_at, created_by FROM datasets WHERE name = ?",
        )
        .bind(&new.name)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(existing) = existing {
            let existing = DatasetRecord::try_from(existing)?;
            if existing.sha256 == new.sha256 {
                tracing::debug!(dataset = %new.name, "dataset already registered with this hash");
                return Ok((existing, false));
            }
            return Err(RegistryError::Conflict(format!(
                "dataset `{}` already exists with different content (sha256 {}, not {}); \
                 import it under another name",
                new.name, existing.sha256, new.sha256
            )));
        }

        let created_at = now();
        sqlx::query(
            "INSERT INTO datasets (name, sha256, format, size_bytes, row_count, column_count, \
             schema_json, profile_json, created_at, created_by) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.name)
        .bind(&new.sha256)
        .bind(&new.format)
        .bind(size_bytes)
        .bind(rows)
        .bind(columns)
        .bind(&new.schema_json)
        .bind(&new.profile_json)
        .bind(ts(&created_at))
        .bind(&new.created_by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(dataset = %new.name, sha256 = %new.sha256, rows = new.rows, "dataset registered");

        let NewDataset {
            name,
            sha256,
            format,
            size_bytes,
            rows,
            columns,
            schema_json,
            profile_json,
            created_by,
        } = new;
        Ok((
            DatasetRecord {
                name,
                sha256,
                format,
                size_bytes,
                rows,
                columns,
                schema_json,
                profile_json,
                created_at,
                created_by,
            },
            true,
        ))
    }

    async fn get_dataset(&self, name: &str) -> Result<DatasetRecord> {
        let row: Option<DatasetRow> = sqlx::query_as(
            "SELECT name, sha256, format, size_bytes, row_count, column_count, schema_json, \
             profile_json, created_at, created_by FROM datasets WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(DatasetRecord::try_from)
            .transpose()?
            .ok_or_else(|| RegistryError::not_found(Entity::Dataset, name))
    }

    async fn list_datasets(&self) -> Result<Vec<DatasetRecord>> {
        let rows: Vec<DatasetRow> = sqlx::query_as(
            "SELECT name, sha256, format, size_bytes, row_count, column_count, schema_json, \
             profile_json, created_at, created_by FROM datasets ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(DatasetRecord::try_from).collect()
    }

    async fn create_version(&self, new: NewVersion) -> Result<VersionRecord> {
        check_name(&new.model)?;
        check_sha256("artifact sha256", &new.artifact_sha256)?;
        check_sha256("dataset sha256", &new.dataset_sha256)?;
        crate::artifact::validate_key(&new.artifact_key)?;
        if new.aurum_version.is_empty() {
            return Err(RegistryError::InvalidInput(
                "aurum_version must not be empty".into(),
            ));
        }

        let mut tx = self.write_tx().await?;
        // An empty dataset name marks a version imported from outside aurum; its lineage is the
        // SHA-256 of the imported file (in `dataset_sha256`), not an aurum dataset.
        if !new.dataset_name.is_empty() {
            let dataset_sha: Option<String> =
                sqlx::query_scalar("SELECT sha256 FROM datasets WHERE name = ?")
                    .bind(&new.dataset_name)
                    .fetch_optional(&mut *tx)
                    .await?;
            match dataset_sha {
                None => return Err(RegistryError::not_found(Entity::Dataset, &new.dataset_name)),
                Some(sha) if sha != new.dataset_sha256 => {
                    return Err(RegistryError::Conflict(format!(
                        "dataset `{}` has sha256 {sha}, not {}",
                        new.dataset_name, new.dataset_sha256
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some(job_id) = &new.job_id {
            let state: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = ?")
                .bind(job_id)
                .fetch_optional(&mut *tx)
                .await?;
            match state {
                None => return Err(RegistryError::not_found(Entity::Job, job_id)),
                Some(state) => check_job_open(job_id, &state)?,
            }
        }

        let created_at = now();
        let created_at_text = ts(&created_at);
        sqlx::query(
            "INSERT INTO models (name, created_at, created_by) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&new.model)
        .bind(&created_at_text)
        .bind(&new.created_by)
        .execute(&mut *tx)
        .await?;
        let next: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model = ?",
        )
        .bind(&new.model)
        .fetch_one(&mut *tx)
        .await?;
        let version = from_db_version(next)?;
        sqlx::query(
            "INSERT INTO model_versions (model, version, kind, artifact_key, artifact_sha256, \
             dataset_name, dataset_sha256, target, params_json, metrics_json, aurum_version, \
             created_at, created_by, job_id, archived_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(&new.model)
        .bind(next)
        .bind(new.kind.as_str())
        .bind(&new.artifact_key)
        .bind(&new.artifact_sha256)
        .bind((!new.dataset_name.is_empty()).then_some(&new.dataset_name))
        .bind(&new.dataset_sha256)
        .bind(&new.target)
        .bind(&new.params_json)
        .bind(&new.metrics_json)
        .bind(&new.aurum_version)
        .bind(&created_at_text)
        .bind(&new.created_by)
        .bind(&new.job_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(model = %new.model, version, kind = %new.kind, "model version created");

        let NewVersion {
            model,
            kind,
            artifact_key,
            artifact_sha256,
            dataset_name,
            dataset_sha256,
            target,
            params_json,
            metrics_json,
            aurum_version,
            created_by,
            job_id,
        } = new;
        Ok(VersionRecord {
            model,
            version,
            kind,
            artifact_key,
            artifact_sha256,
            dataset_name,
            dataset_sha256,
            target,
            params_json,
            metrics_json,
            aurum_version,
            created_at,
            created_by,
            job_id,
            archived_at: None,
        })
    }

    async fn get_model(&self, name: &str) -> Result<ModelRecord> {
        let row: Option<ModelRow> = sqlx::query_as(
            "SELECT m.name, m.created_at, m.created_by, COALESCE(MAX(v.version), 0) AS latest \
             FROM models m LEFT JOIN model_versions v ON v.model = m.name \
             WHERE m.name = ? GROUP BY m.name, m.created_at, m.created_by",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let row = row.ok_or_else(|| RegistryError::not_found(Entity::Model, name))?;
        let aliases = self.fetch_aliases(name).await?;
        row.into_record(aliases)
    }

    async fn list_models(&self) -> Result<Vec<ModelRecord>> {
        let rows: Vec<ModelRow> = sqlx::query_as(
            "SELECT m.name, m.created_at, m.created_by, COALESCE(MAX(v.version), 0) AS latest \
             FROM models m LEFT JOIN model_versions v ON v.model = m.name \
             GROUP BY m.name, m.created_at, m.created_by ORDER BY m.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let alias_rows: Vec<AliasRow> = sqlx::query_as(
            "SELECT model, alias, version, updated_at, updated_by FROM model_aliases \
             ORDER BY model, alias",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut aliases: std::collections::HashMap<String, Vec<AliasRecord>> =
            std::collections::HashMap::new();
        for row in alias_rows {
            let model = row.model.clone();
            aliases
                .entry(model)
                .or_default()
                .push(AliasRecord::try_from(row)?);
        }
        rows.into_iter()
            .map(|row| {
                let model_aliases = aliases.remove(&row.name).unwrap_or_default();
                row.into_record(model_aliases)
            })
            .collect()
    }

    async fn get_version(&self, model: &str, version: u32) -> Result<VersionRecord> {
        let mut conn = self.pool.acquire().await?;
        Self::require_version(&mut conn, model, version).await
    }

    async fn list_versions(&self, model: &str) -> Result<Vec<VersionRecord>> {
        Self::ensure_model(&mut *self.pool.acquire().await?, model).await?;
        let rows: Vec<VersionRow> = sqlx::query_as(
            "SELECT model, version, kind, artifact_key, artifact_sha256, dataset_name, \
             dataset_sha256, target, params_json, metrics_json, aurum_version, created_at, \
             created_by, job_id, archived_at FROM model_versions WHERE model = ? ORDER BY version",
        )
        .bind(model)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(VersionRecord::try_from).collect()
    }

    async fn archive_version(&self, model: &str, version: u32) -> Result<VersionRecord> {
        let mut tx = self.write_tx().await?;
        let mut record = Self::require_version(&mut tx, model, version).await?;
        if record.is_archived() {
            return Ok(record);
        }
        let aliases: Vec<String> = sqlx::query_scalar(
            "SELECT alias FROM model_aliases WHERE model = ? AND version = ? ORDER BY alias",
        )
        .bind(model)
        .bind(i64::from(version))
        .fetch_all(&mut *tx)
        .await?;
        if !aliases.is_empty() {
            return Err(RegistryError::Conflict(format!(
                "version {version} of model `{model}` is the target of alias(es) {}; \
                 move them to another version before archiving it",
                aliases.join(", ")
            )));
        }
        let archived_at = now();
        sqlx::query("UPDATE model_versions SET archived_at = ? WHERE model = ? AND version = ?")
            .bind(ts(&archived_at))
            .bind(model)
            .bind(i64::from(version))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(model, version, "model version archived");
        record.archived_at = Some(archived_at);
        Ok(record)
    }

    async fn unarchive_version(&self, model: &str, version: u32) -> Result<VersionRecord> {
        let mut tx = self.write_tx().await?;
        let mut record = Self::require_version(&mut tx, model, version).await?;
        if !record.is_archived() {
            return Ok(record);
        }
        sqlx::query("UPDATE model_versions SET archived_at = NULL WHERE model = ? AND version = ?")
            .bind(model)
            .bind(i64::from(version))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(model, version, "model version unarchived");
        record.archived_at = None;
        Ok(record)
    }

    async fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: u32,
        moved_by: &str,
    ) -> Result<AliasMove> {
        check_name(alias)?;
        let mut tx = self.write_tx().await?;
        let target = Self::require_version(&mut tx, model, version).await?;
        if target.is_archived() {
            return Err(RegistryError::ArchivedVersion {
                model: model.to_string(),
                version,
            });
        }
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM model_aliases WHERE model = ? AND alias = ?")
                .bind(model)
                .bind(alias)
                .fetch_optional(&mut *tx)
                .await?;
        let from = current.map(from_db_version).transpose()?;
        if from == Some(version) {
            return Ok(AliasMove { from, to: version });
        }
        let moved_at = ts(&now());
        sqlx::query(
            "INSERT INTO model_aliases (model, alias, version, updated_at, updated_by) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(model)
        .bind(alias)
        .bind(i64::from(version))
        .bind(&moved_at)
        .bind(moved_by)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO alias_history (model, alias, from_version, to_version, moved_by, moved_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(model)
        .bind(alias)
        .bind(current)
        .bind(i64::from(version))
        .bind(moved_by)
        .bind(&moved_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(model, alias, from = ?from, to = version, moved_by, "alias moved");
        Ok(AliasMove { from, to: version })
    }

    async fn resolve_alias(&self, model: &str, alias: &str) -> Result<Option<u32>> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM model_aliases WHERE model = ? AND alias = ?")
                .bind(model)
                .bind(alias)
                .fetch_optional(&self.pool)
                .await?;
        match version {
            Some(v) => Ok(Some(from_db_version(v)?)),
            None => {
                Self::ensure_model(&mut *self.pool.acquire().await?, model).await?;
                Ok(None)
            }
        }
    }

    async fn list_aliases(&self, model: &str) -> Result<Vec<AliasRecord>> {
        let aliases = self.fetch_aliases(model).await?;
        if aliases.is_empty() {
            Self::ensure_model(&mut *self.pool.acquire().await?, model).await?;
        }
        Ok(aliases)
    }

    async fn alias_history(&self, model: &str) -> Result<Vec<AliasHistoryRecord>> {
        let rows: Vec<AliasHistoryRow> = sqlx::query_as(
            "SELECT alias, from_version, to_version, moved_by, moved_at FROM alias_history \
             WHERE model = ? ORDER BY id",
        )
        .bind(model)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            Self::ensure_model(&mut *self.pool.acquire().await?, model).await?;
        }
        rows.into_iter().map(AliasHistoryRecord::try_from).collect()
    }

    async fn create_job(&self, new: NewJob) -> Result<JobRecord> {
        check_name(&new.model)?;
        let dataset: Option<i64> = sqlx::query_scalar("SELECT 1 FROM datasets WHERE name = ?")
            .bind(&new.dataset)
            .fetch_optional(&self.pool)
            .await?;
        if dataset.is_none() {
            return Err(RegistryError::not_found(Entity::Dataset, &new.dataset));
        }
        let record = JobRecord {
            id: uuid::Uuid::new_v4().to_string(),
            state: JobState::Queued,
            dataset: new.dataset,
            target: new.target,
            kind: new.kind,
            model: new.model,
            params_json: new.params_json,
            progress: 0.0,
            stage: JobState::Queued.as_str().to_string(),
            error: None,
            result_version: None,
            created_at: now(),
            started_at: None,
            finished_at: None,
            created_by: new.created_by.clone(),
        };
        sqlx::query(
            "INSERT INTO jobs (id, state, dataset, target, kind, model, params_json, progress, \
             stage, error, result_version, created_at, started_at, finished_at, created_by, \
             owner, heartbeat_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, NULL, NULL, ?, ?, ?)",
        )
        .bind(&record.id)
        .bind(record.state.as_str())
        .bind(&record.dataset)
        .bind(&record.target)
        .bind(record.kind.as_str())
        .bind(&record.model)
        .bind(&record.params_json)
        .bind(record.progress)
        .bind(&record.stage)
        .bind(ts(&record.created_at))
        .bind(&record.created_by)
        .bind(&new.owner)
        .bind(ts(&record.created_at))
        .execute(&self.pool)
        .await?;
        tracing::info!(job = %record.id, model = %record.model, dataset = %record.dataset, "training job queued");
        Ok(record)
    }

    async fn get_job(&self, id: &str) -> Result<JobRecord> {
        self.fetch_job(id)
            .await?
            .ok_or_else(|| RegistryError::not_found(Entity::Job, id))
    }

    async fn list_jobs(&self, limit: u32) -> Result<Vec<JobRecord>> {
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT id, state, dataset, target, kind, model, params_json, progress, stage, error, \
             result_version, created_at, started_at, finished_at, created_by FROM jobs \
             ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(JobRecord::try_from).collect()
    }

    async fn update_job_progress(&self, id: &str, progress: f64, stage: &str) -> Result<bool> {
        if !(0.0..=1.0).contains(&progress) {
            return Err(RegistryError::InvalidInput(format!(
                "job progress must be between 0 and 1, got {progress}"
            )));
        }
        let updated = sqlx::query(
            "UPDATE jobs SET progress = ?, stage = ? WHERE id = ? AND state = 'running'",
        )
        .bind(progress)
        .bind(stage)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(true);
        }
        self.get_job(id).await.map(|_| false)
    }

    async fn transition_job(
        &self,
        id: &str,
        to: JobState,
        error: Option<String>,
        result_version: Option<u32>,
    ) -> Result<JobRecord> {
        // Compare-and-set on the state: if another caller moved the job between our read and our
        // write, the update matches no row and we re-check against the new state. States only
        // move forward, so this loops at most a few times.
        loop {
            let current = self.get_job(id).await?;
            if !current.state.can_transition_to(to) {
                return Err(RegistryError::InvalidTransition {
                    id: id.to_string(),
                    from: current.state,
                    to,
                });
            }
            let mut next = current.clone();
            let at = now();
            next.state = to;
            if to == JobState::Running {
                next.started_at = Some(at);
                next.stage = to.as_str().to_string();
            }
            if to.is_terminal() {
                next.finished_at = Some(at);
                next.stage = to.as_str().to_string();
            }
            if to == JobState::Succeeded {
                next.progress = 1.0;
            }
            if error.is_some() {
                next.error.clone_from(&error);
            }
            if result_version.is_some() {
                next.result_version = result_version;
            }
            let updated = sqlx::query(
                "UPDATE jobs SET state = ?, progress = ?, stage = ?, error = ?, result_version = ?, \
                 started_at = ?, finished_at = ? WHERE id = ? AND state = ?",
            )
            .bind(next.state.as_str())
            .bind(next.progress)
            .bind(&next.stage)
            .bind(&next.error)
            .bind(next.result_version.map(i64::from))
            .bind(next.started_at.as_ref().map(ts))
            .bind(next.finished_at.as_ref().map(ts))
            .bind(id)
            .bind(current.state.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected();
            if updated == 1 {
                tracing::info!(job = %id, from = %current.state, to = %to, "training job state changed");
                return Ok(next);
            }
        }
    }

    async fn fail_interrupted_jobs(&self, stale_after: Duration) -> Result<Vec<JobRecord>> {
        let stale = chrono::Duration::from_std(stale_after)
            .map_err(|e| RegistryError::InvalidInput(format!("stale_after: {e}")))?;
        let at = ts(&now());
        let cutoff = ts(&(now() - stale));
        let mut tx = self.write_tx().await?;
        // A job whose version was registered succeeded, whatever did not run after.
        let mut ids: Vec<String> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'succeeded', progress = 1.0, stage = 'succeeded', error = ?, \
             finished_at = ?, \
             result_version = (SELECT MAX(v.version) FROM model_versions v WHERE v.job_id = jobs.id) \
             WHERE state IN ('queued', 'running') \
             AND (heartbeat_at IS NULL OR heartbeat_at < ?) \
             AND EXISTS (SELECT 1 FROM model_versions v WHERE v.job_id = jobs.id) RETURNING id",
        )
        .bind(INTERRUPTED_AFTER_REGISTRATION)
        .bind(&at)
        .bind(&cutoff)
        .fetch_all(&mut *tx)
        .await?;
        ids.extend(
            sqlx::query_scalar::<_, String>(
                "UPDATE jobs SET state = 'failed', stage = 'failed', error = ?, finished_at = ? \
                 WHERE state IN ('queued', 'running') \
                 AND (heartbeat_at IS NULL OR heartbeat_at < ?) RETURNING id",
            )
            .bind(INTERRUPTED_JOB_ERROR)
            .bind(&at)
            .bind(&cutoff)
            .fetch_all(&mut *tx)
            .await?,
        );
        tx.commit().await?;
        let mut ended = Vec::with_capacity(ids.len());
        for id in &ids {
            ended.push(self.get_job(id).await?);
        }
        if !ended.is_empty() {
            tracing::warn!(count = ended.len(), jobs = ?ids, "ended jobs whose process stopped");
        }
        Ok(ended)
    }

    async fn heartbeat_jobs(&self, owner: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE jobs SET heartbeat_at = ? WHERE owner = ? AND state IN ('queued', 'running')",
        )
        .bind(ts(&now()))
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn change_epoch(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT epoch FROM registry_changes WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn record_outcomes(&self, outcomes: &[OutcomeRecord]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for o in outcomes {
            sqlx::query(
                "INSERT INTO outcomes (model, version, request_id, record, probability, decision, \
                 positive, scored_at, received_at, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (model, request_id, record) DO UPDATE SET positive = excluded.positive, \
                 received_at = excluded.received_at, \
                 attributes = COALESCE(excluded.attributes, outcomes.attributes)",
            )
            .bind(&o.model)
            .bind(i64::from(o.version))
            .bind(&o.request_id)
            .bind(i64::from(o.record))
            .bind(o.probability)
            .bind(&o.decision)
            .bind(i64::from(o.positive))
            .bind(ts(&o.scored_at))
            .bind(ts(&o.received_at))
            .bind(outcome_attributes_to_db(&o.attributes)?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_outcomes(&self, model: &str, version: u32) -> Result<Vec<OutcomeRecord>> {
        let rows: Vec<OutcomeRow> = sqlx::query_as(
            "SELECT model, version, request_id, record, probability, decision, positive, \
             scored_at, received_at, attributes FROM outcomes WHERE model = ? AND version = ? \
             ORDER BY scored_at, request_id, record",
        )
        .bind(model)
        .bind(i64::from(version))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(OutcomeRecord {
                    version: u32::try_from(r.version).map_err(|_| {
                        RegistryError::CorruptRecord(format!("outcome version {}", r.version))
                    })?,
                    record: u32::try_from(r.record).map_err(|_| {
                        RegistryError::CorruptRecord(format!("outcome record {}", r.record))
                    })?,
                    scored_at: parse_ts(&r.scored_at)?,
                    received_at: parse_ts(&r.received_at)?,
                    model: r.model,
                    request_id: r.request_id,
                    probability: r.probability,
                    attributes: outcome_attributes_from_db(r.attributes.as_deref())?,
                    decision: r.decision,
                    positive: r.positive != 0,
                })
            })
            .collect()
    }

    async fn put_challenger(&self, model: &str, config: Option<&str>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        Self::ensure_model(&mut tx, model).await?;
        match config {
            Some(config) => {
                sqlx::query(
                    "INSERT INTO challengers (model, config, updated_at) VALUES (?, ?, ?) \
                     ON CONFLICT (model) DO UPDATE SET config = excluded.config, \
                     updated_at = excluded.updated_at",
                )
                .bind(model)
                .bind(config)
                .bind(ts(&now()))
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM challengers WHERE model = ?")
                    .bind(model)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_challengers(&self) -> Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT model, config FROM challengers ORDER BY model")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn put_drift_counts(&self, counts: &DriftCountsRecord) -> Result<bool> {
        check_drift_counts(counts)?;
        let stored = sqlx::query(
            "INSERT INTO drift_counts (model, version, window_start, window_end, writer, seq, \
             rows_counted, counts, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (model, version, window_start, writer) DO UPDATE SET \
             window_end = excluded.window_end, seq = excluded.seq, \
             rows_counted = excluded.rows_counted, counts = excluded.counts, \
             updated_at = excluded.updated_at WHERE drift_counts.seq < excluded.seq",
        )
        .bind(&counts.model)
        .bind(i64::from(counts.version))
        .bind(counts.window_start)
        .bind(counts.window_end)
        .bind(&counts.writer)
        .bind(counts.seq)
        .bind(to_db_count("rows", counts.rows)?)
        .bind(&counts.counts)
        .bind(ts(&now()))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(stored > 0)
    }

    async fn list_drift_counts(
        &self,
        model: &str,
        version: u32,
        ends_after: i64,
    ) -> Result<Vec<DriftCountsRecord>> {
        let rows: Vec<DriftCountsRow> = sqlx::query_as(
            "SELECT model, version, window_start, window_end, writer, seq, rows_counted, counts \
             FROM drift_counts WHERE model = ? AND version = ? AND window_end > ? \
             ORDER BY window_start, writer",
        )
        .bind(model)
        .bind(i64::from(version))
        .bind(ends_after)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(drift_counts_from_db).collect()
    }

    async fn claim_drift_window(
        &self,
        model: &str,
        version: u32,
        window_start: i64,
        by: &str,
    ) -> Result<bool> {
        let claimed = sqlx::query(
            "INSERT INTO drift_claims (model, version, window_start, claimed_by, claimed_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(model)
        .bind(i64::from(version))
        .bind(window_start)
        .bind(by)
        .bind(ts(&now()))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed > 0)
    }

    async fn list_drift_claims(
        &self,
        model: &str,
        version: u32,
        starts_after: i64,
    ) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT window_start FROM drift_claims \
             WHERE model = ? AND version = ? AND window_start > ? ORDER BY window_start",
        )
        .bind(model)
        .bind(i64::from(version))
        .bind(starts_after)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn put_console_session(
        &self,
        session: &ConsoleSessionRecord,
        max_live: u32,
    ) -> Result<()> {
        check_console_session(session, max_live)?;
        // One transaction under the write lock: the purge, the count and the insert cannot
        // interleave with another sign-in, so the cap holds across processes.
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM console_sessions WHERE expires_at_ms <= ?")
            .bind(session.created_at_ms)
            .execute(&mut *tx)
            .await?;
        let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM console_sessions")
            .fetch_one(&mut *tx)
            .await?;
        let over = live - i64::from(max_live) + 1;
        if over > 0 {
            sqlx::query(
                "DELETE FROM console_sessions WHERE session_hash IN (SELECT session_hash \
                 FROM console_sessions ORDER BY created_at_ms, session_hash LIMIT ?)",
            )
            .bind(over)
            .execute(&mut *tx)
            .await?;
            tracing::warn!(
                evicted = over,
                max_live,
                "console session cap reached: oldest sessions ended"
            );
        }
        let inserted = sqlx::query(
            "INSERT INTO console_sessions \
             (session_hash, key_id, csrf, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (session_hash) DO NOTHING",
        )
        .bind(&session.session_hash)
        .bind(&session.key_id)
        .bind(&session.csrf)
        .bind(session.created_at_ms)
        .bind(session.expires_at_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(duplicate_console_session());
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_console_session(
        &self,
        session_hash: &str,
    ) -> Result<Option<ConsoleSessionRecord>> {
        let row: Option<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT session_hash, key_id, csrf, created_at_ms, expires_at_ms \
             FROM console_sessions WHERE session_hash = ?",
        )
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(session_hash, key_id, csrf, created_at_ms, expires_at_ms)| ConsoleSessionRecord {
                session_hash,
                key_id,
                csrf,
                created_at_ms,
                expires_at_ms,
            },
        ))
    }

    async fn delete_console_session(&self, session_hash: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM console_sessions WHERE session_hash = ?")
            .bind(session_hash)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn delete_expired_console_sessions(&self, now_ms: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM console_sessions WHERE expires_at_ms <= ?")
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn record_shadow(&self, rows: &[ShadowRecord]) -> Result<()> {
        self.record_shadow_rows(rows).await
    }

    async fn list_shadow(
        &self,
        model: &str,
        limit: u32,
    ) -> Result<Vec<(ShadowRecord, Option<bool>)>> {
        let pool = self.shadow();
        let rows: Vec<ShadowRow> = sqlx::query_as(
            "SELECT model, request_id, record, champion_version, challenger_version, champion_p, \
             challenger_p, champion_decision, challenger_decision, scored_at, NULL AS positive \
             FROM shadow_scores WHERE model = ? ORDER BY scored_at LIMIT ?",
        )
        .bind(model)
        .bind(i64::from(limit))
        .fetch_all(&pool)
        .await?;
        // Their outcomes, from the main file: by request id, a slice at a time.
        let mut outcomes: std::collections::HashMap<(String, i64), bool> =
            std::collections::HashMap::new();
        let mut ids: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        for slice in ids.chunks(crate::backend::SHADOW_ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new(
                "SELECT request_id, record, positive FROM outcomes WHERE model = ",
            );
            q.push_bind(model).push(" AND request_id IN (");
            let mut list = q.separated(", ");
            for id in slice {
                list.push_bind(*id);
            }
            q.push(")");
            let found: Vec<(String, i64, i64)> = q.build_query_as().fetch_all(&self.pool).await?;
            outcomes.extend(
                found
                    .into_iter()
                    .map(|(id, record, p)| ((id, record), p != 0)),
            );
        }
        rows.into_iter()
            .map(|mut r| {
                r.positive = outcomes
                    .get(&(r.request_id.clone(), r.record))
                    .map(|&p| i64::from(p));
                shadow_record(r)
            })
            .collect()
    }

    async fn create_key_with_policy(
        &self,
        name: &str,
        role: Role,
        policy: &KeyPolicy,
    ) -> Result<(KeyRecord, String)> {
        check_name(name)?;
        policy.validate()?;
        let duplicate = |name: &str| {
            RegistryError::Conflict(format!("an API key named `{name}` already exists"))
        };
        let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM api_keys WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        if taken.is_some() {
            return Err(duplicate(name));
        }
        let generated = keys::generate();
        let plaintext = generated.plaintext;
        let hash = keys::hash(&plaintext);
        let record = KeyRecord {
            id: generated.id,
            name: name.to_string(),
            role,
            created_at: now(),
            revoked_at: None,
            policy: policy.clone(),
        };
        let scopes = (!policy.scopes.is_empty())
            .then(|| serde_json::to_string(&policy.scopes))
            .transpose()
            .map_err(|e| RegistryError::Internal(format!("encoding key scopes: {e}")))?;
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, name, role, key_hash, created_at, revoked_at, expires_at, \
             scopes, rate_limit_per_s) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(record.role.as_str())
        .bind(&hash)
        .bind(ts(&record.created_at))
        .bind(policy.expires_at.as_ref().map(ts))
        .bind(scopes)
        .bind(policy.rate_limit_per_s.map(i64::from))
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(duplicate(name)),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(key_id = %record.id, name, role = %role, "API key created");
        Ok((record, plaintext))
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT id, name, role, key_hash, created_at, revoked_at, expires_at, scopes, rate_limit_per_s FROM api_keys \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(KeyRecord::try_from).collect()
    }

    async fn revoke_key(&self, name_or_id: &str) -> Result<KeyRecord> {
        let mut tx = self.write_tx().await?;
        let mut row = Self::fetch_key(&mut tx, name_or_id).await?;
        if row.is_none() {
            row = sqlx::query_as(
                "SELECT id, name, role, key_hash, created_at, revoked_at, expires_at, scopes, rate_limit_per_s FROM api_keys \
                 WHERE name = ?",
            )
            .bind(name_or_id)
            .fetch_optional(&mut *tx)
            .await?;
        }
        let mut record = row
            .map(KeyRecord::try_from)
            .transpose()?
            .ok_or_else(|| RegistryError::not_found(Entity::Key, name_or_id))?;
        if !record.is_active() {
            return Ok(record);
        }
        if record.role == Role::Admin {
            let admins: Vec<KeyRow> = sqlx::query_as(
                "SELECT id, name, role, key_hash, created_at, revoked_at, expires_at, scopes, rate_limit_per_s FROM api_keys \
                 WHERE role = 'admin' AND revoked_at IS NULL",
            )
            .fetch_all(&mut *tx)
            .await?;
            let admins = admins
                .into_iter()
                .map(KeyRecord::try_from)
                .collect::<Result<Vec<_>>>()?;
            crate::metadata::check_not_last_admin(&record, &admins)?;
        }
        let revoked_at = now();
        sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ?")
            .bind(ts(&revoked_at))
            .bind(&record.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(key_id = %record.id, name = %record.name, "API key revoked");
        record.revoked_at = Some(revoked_at);
        Ok(record)
    }

    async fn count_active_keys(&self) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        u64::try_from(count).map_err(|_| RegistryError::CorruptRecord("negative key count".into()))
    }

    async fn verify_key(&self, plaintext: &str) -> Result<Option<KeyRecord>> {
        let Some(id) = keys::parse_key_id(plaintext) else {
            return Ok(None);
        };
        let mut conn = self.pool.acquire().await?;
        let Some(row) = Self::fetch_key(&mut conn, id).await? else {
            return Ok(None);
        };
        drop(conn);
        if row.revoked_at.is_some() {
            tracing::debug!(key_id = %id, "revoked API key presented");
            return Ok(None);
        }
        let stored = StoredKeyHash::parse(&row.key_hash)?;
        let candidate = plaintext.to_string();
        let legacy = matches!(stored, StoredKeyHash::Argon2(_));
        let matches = if legacy {
            spawn_blocking(move || keys::verify(&candidate, &stored)).await??
        } else {
            keys::verify(&candidate, &stored)?
        };
        if !matches {
            tracing::debug!(key_id = %id, "API key with a wrong secret presented");
            return Ok(None);
        }
        if legacy {
            self.upgrade_key_hash(&row.id, &row.key_hash, &keys::hash(plaintext))
                .await?;
        }
        KeyRecord::try_from(row).map(Some)
    }

    async fn key_credentials(&self) -> Result<Vec<KeyCredential>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT id, name, role, key_hash, created_at, revoked_at, expires_at, scopes, rate_limit_per_s FROM api_keys \
             WHERE revoked_at IS NULL ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let hash = StoredKeyHash::parse(&row.key_hash)?;
                Ok(KeyCredential {
                    record: KeyRecord::try_from(row)?,
                    hash,
                })
            })
            .collect()
    }

    async fn upgrade_key_hash(&self, id: &str, from: &str, to: &str) -> Result<bool> {
        StoredKeyHash::parse(to)?;
        let updated = sqlx::query(
            "UPDATE api_keys SET key_hash = ? WHERE id = ? AND key_hash = ? AND revoked_at IS NULL",
        )
        .bind(to)
        .bind(id)
        .bind(from)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            tracing::info!(key_id = %id, "API key hash upgraded to the fast form");
        }
        Ok(updated == 1)
    }
}

// ---- conversions between rows and records ----

fn parse_opt_ts(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

fn from_db_version(v: i64) -> Result<u32> {
    u32::try_from(v)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| RegistryError::CorruptRecord(format!("bad version number {v}")))
}

fn from_db_count(what: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| RegistryError::CorruptRecord(format!("negative {what} {v}")))
}

fn to_db_count(what: &str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| RegistryError::InvalidInput(format!("{what} {v} is too large")))
}

fn parse_kind(text: &str) -> Result<FamilyName> {
    FamilyName::from_str(text).map_err(|e| RegistryError::CorruptRecord(e.to_string()))
}

fn parse_stored<T: FromStr<Err = RegistryError>>(text: &str) -> Result<T> {
    text.parse()
        .map_err(|e: RegistryError| RegistryError::CorruptRecord(e.to_string()))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

async fn spawn_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Internal(format!("blocking task failed: {e}")))
}

#[derive(sqlx_macros::FromRow)]
struct DatasetRow {
    name: String,
    sha256: String,
    format: String,
    size_bytes: i64,
    row_count: i64,
    column_count: i64,
    schema_json: String,
    profile_json: String,
    created_at: String,
    created_by: String,
}

impl TryFrom<DatasetRow> for DatasetRecord {
    type Error = RegistryError;
    fn try_from(row: DatasetRow) -> Result<Self> {
        Ok(DatasetRecord {
            size_bytes: from_db_count("size_bytes", row.size_bytes)?,
            rows: from_db_count("row count", row.row_count)?,
            columns: from_db_count("column count", row.column_count)?,
            created_at: parse_ts(&row.created_at)?,
            name: row.name,
            sha256: row.sha256,
            format: row.format,
            schema_json: row.schema_json,
            profile_json: row.profile_json,
            created_by: row.created_by,
        })
    }
}

#[derive(sqlx_macros::FromRow)]
struct ModelRow {
    name: String,
    created_at: String,
    created_by: String,
    latest: i64,
}

impl ModelRow {
    fn into_record(self, aliases: Vec<AliasRecord>) -> Result<ModelRecord> {
        Ok(ModelRecord {
            latest_version: u32::try_from(self.latest).map_err(|_| {
                RegistryError::CorruptRecord(format!("bad version number {}", self.latest))
            })?,
            created_at: parse_ts(&self.created_at)?,
            name: self.name,
            created_by: self.created_by,
            aliases,
        })
    }
}

#[derive(sqlx_macros::FromRow)]
struct VersionRow {
    model: String,
    version: i64,
    kind: String,
    artifact_key: String,
    artifact_sha256: String,
    dataset_name: Option<String>,
    dataset_sha256: String,
    target: String,
    params_json: String,
    metrics_json: String,
    aurum_version: String,
    created_at: String,
    created_by: String,
    job_id: Option<String>,
    archived_at: Option<String>,
}

impl TryFrom<VersionRow> for VersionRecord {
    type Error = RegistryError;
    fn try_from(row: VersionRow) -> Result<Self> {
        Ok(VersionRecord {
            version: from_db_version(row.version)?,
            kind: parse_kind(&row.kind)?,
            created_at: parse_ts(&row.created_at)?,
            archived_at: parse_opt_ts(row.archived_at)?,
            model: row.model,
            artifact_key: row.artifact_key,
            artifact_sha256: row.artifact_sha256,
            dataset_name: row.dataset_name.unwrap_or_default(),
            dataset_sha256: row.dataset_sha256,
            target: row.target,
            params_json: row.params_json,
            metrics_json: row.metrics_json,
            aurum_version: row.aurum_version,
            created_by: row.created_by,
            job_id: row.job_id,
        })
    }
}

#[derive(sqlx_macros::FromRow)]
struct AliasRow {
    model: String,
    alias: String,
    version: i64,
    updated_at: String,
    updated_by: String,
}

impl TryFrom<AliasRow> for AliasRecord {
    type Error = RegistryError;
    fn try_from(row: AliasRow) -> Result<Self> {
        Ok(AliasRecord {
            version: from_db_version(row.version)?,
            updated_at: parse_ts(&row.updated_at)?,
            alias: row.alias,
            updated_by: row.updated_by,
        })
    }
}

#[derive(sqlx_macros::FromRow)]
struct AliasHistoryRow {
    alias: String,
    from_version: Option<i64>,
    to_version: i64,
    moved_by: String,
    moved_at: String,
}

impl TryFrom<AliasHistoryRow> for AliasHistoryRecord {
    type Error = RegistryError;
    fn try_from(row: AliasHistoryRow) -> Result<Self> {
        Ok(AliasHistoryRecord {
            from_version: row.from_version.map(from_db_version).transpose()?,
            to_version: from_db_version(row.to_version)?,
            moved_at: parse_ts(&row.moved_at)?,
            alias: row.alias,
            moved_by: row.moved_by,
        })
    }
}

#[derive(sqlx_macros::FromRow)]
struct JobRow {
    id: String,
    state: String,
    dataset: String,
    target: String,
    kind: String,
    model: String,
    params_json: String,
    progress: f64,
    stage: String,
    error: Option<String>,
    result_version: Option<i64>,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    created_by: String,
}

impl TryFrom<JobRow> for JobRecord {
    type Error = RegistryError;
    fn try_from(row: JobRow) -> Result<Self> {
        Ok(JobRecord {
            state: parse_stored(&row.state)?,
            kind: parse_kind(&row.kind)?,
            result_version: row.result_version.map(from_db_version).transpose()?,
            created_at: parse_ts(&row.created_at)?,
            started_at: parse_opt_ts(row.started_at)?,
            finished_at: parse_opt_ts(row.finished_at)?,
            id: row.id,
            dataset: row.dataset,
            target: row.target,
            model: row.model,
            params_json: row.params_json,
            progress: row.progress,
            stage: row.stage,
            error: row.error,
            created_by: row.created_by,
        })
    }
}

/// A shadow row of the main file's old table, with its rowid.
#[derive(sqlx_macros::FromRow)]
struct ShadowRowWithId {
    rowid: i64,
    #[sqlx(flatten)]
    row: ShadowRow,
}

/// A stored shadow row as a record, with its outcome when known.
fn shadow_record(r: ShadowRow) -> Result<(ShadowRecord, Option<bool>)> {
    let num = |what: &str, v: i64| {
        u32::try_from(v).map_err(|_| RegistryError::CorruptRecord(format!("shadow {what} {v}")))
    };
    Ok((
        ShadowRecord {
            record: num("record", r.record)?,
            champion_version: num("version", r.champion_version)?,
            challenger_version: num("version", r.challenger_version)?,
            scored_at: parse_ts(&r.scored_at)?,
            model: r.model,
            request_id: r.request_id,
            champion_p: r.champion_p,
            challenger_p: r.challenger_p,
            champion_decision: r.champion_decision,
            challenger_decision: r.challenger_decision,
        },
        r.positive.map(|p| p != 0),
    ))
}

#[derive(sqlx_macros::FromRow)]
struct ShadowRow {
    model: String,
    request_id: String,
    record: i64,
    champion_version: i64,
    challenger_version: i64,
    champion_p: f64,
    challenger_p: f64,
    champion_decision: String,
    challenger_decision: String,
    scored_at: String,
    positive: Option<i64>,
}

#[derive(sqlx_macros::FromRow)]
struct OutcomeRow {
    model: String,
    version: i64,
    request_id: String,
    record: i64,
    probability: f64,
    decision: Option<String>,
    positive: i64,
    scored_at: String,
    received_at: String,
    attributes: Option<String>,
}

#[derive(sqlx_macros::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    role: String,
    key_hash: String,
    created_at: String,
    revoked_at: Option<String>,
    expires_at: Option<String>,
    scopes: Option<String>,
    rate_limit_per_s: Option<i64>,
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = RegistryError;
    fn try_from(row: KeyRow) -> Result<Self> {
        let scopes = match &row.scopes {
            Some(json) => serde_json::from_str(json).map_err(|e| {
                RegistryError::CorruptRecord(format!("key `{}` scopes: {e}", row.id))
            })?,
            None => Vec::new(),
        };
        let rate_limit_per_s = row
            .rate_limit_per_s
            .map(|r| {
                u32::try_from(r).map_err(|_| {
                    RegistryError::CorruptRecord(format!("key `{}` rate limit {r}", row.id))
                })
            })
            .transpose()?;
        Ok(KeyRecord {
            role: parse_stored(&row.role)?,
            created_at: parse_ts(&row.created_at)?,
            revoked_at: parse_opt_ts(row.revoked_at)?,
            policy: KeyPolicy {
                expires_at: parse_opt_ts(row.expires_at)?,
                scopes,
                rate_limit_per_s,
            },
            id: row.id,
            name: row.name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_sort() {
        let a = now();
        let text = ts(&a);
        assert_eq!(text.len(), "2025-01-01T00:00:00.000000Z".len());
        assert_eq!(parse_ts(&text).unwrap(), a);
        let later = a + chrono::Duration::microseconds(1);
        assert!(ts(&later) > text);
        assert!(parse_ts("yesterday").is_err());
    }

    #[test]
    fn db_numbers_are_checked() {
        assert_eq!(from_db_version(3).unwrap(), 3);
        assert!(from_db_version(0).is_err());
        assert!(from_db_version(-1).is_err());
        assert!(to_db_count("rows", u64::MAX).is_err());
        assert!(from_db_count("rows", -1).is_err());
    }
}
