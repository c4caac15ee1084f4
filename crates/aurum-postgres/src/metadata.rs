//! [`MetadataStore`] on PostgreSQL, shared by several replicas.
//!
//! Why PostgreSQL: SQLite serves one machine; replicas behind a load balancer need one store they
//! can all write to. This store keeps the SQLite store's schema shape (TEXT timestamps in the
//! same fixed-width RFC 3339 format, natural TEXT keys, JSON as TEXT) and its validation, key
//! material and messages (through [`aurum_registry::backend`]), so the two return identical
//! records and errors; the shared suite `aurum_registry::testing` runs on both.
//!
//! **Concurrency.** Transactions run at PostgreSQL's default READ COMMITTED level. Where SQLite
//! takes its one global write lock (`BEGIN IMMEDIATE`), this store takes the narrowest lock that
//! makes the read-then-write sequence atomic across processes:
//!
//! - *version numbering* (`create_version`): the model row is created with
//!   `INSERT … ON CONFLICT DO NOTHING` and then locked with `SELECT … FOR UPDATE`, so writers of
//!   one model queue on its row and each reads the previous maximum only after the one before it
//!   committed: numbers stay `1, 2, 3, …` without gaps or duplicates. The `(model, version)`
//!   primary key backs this up.
//! - *alias moves, archive and unarchive*: the same model-row lock, so the current alias, the
//!   history row, the archived flag and the aliases pointing at a version are read and written
//!   as one step (no alias can end up on an archived version, and the history is one chain).
//! - *dataset registration*: `INSERT … ON CONFLICT (name) DO NOTHING`, then the stored row is
//!   compared; the primary key decides which of two racing imports wins.
//! - *key creation*: the `api_keys_name_unique` constraint decides; its violation becomes the
//!   same [`RegistryError::Conflict`] as a sequential duplicate.
//! - *console sign-in*: `pg_advisory_xact_lock` on [`SESSIONS_LOCK`] around the purge of expired
//!   sessions, the count against the cap and the insert, so two replicas signing people in at
//!   once cannot both find room under the cap.
//! - *key revocation*: `pg_advisory_xact_lock` on [`KEYS_LOCK`], so two replicas revoking the
//!   last two admin keys at once cannot both see "another admin remains".
//! - *job state changes*: the job row is locked (`SELECT … FOR NO KEY UPDATE`) before the
//!   transition is checked and written; progress, heartbeats and the start-up sweep of
//!   interrupted jobs are single conditional `UPDATE`s.
//! - *outcomes and shadow scores*: `ON CONFLICT … DO UPDATE` upserts, applied in key order so
//!   that two overlapping batches cannot deadlock.
//!
//! Every lock is taken in the order model row (or advisory lock) → `registry_changes` row (by
//! the change-epoch trigger, at the end of the write), so lock waits cannot form a cycle.
//!
//! **Change notification.** The change-epoch triggers also `pg_notify` the new epoch on
//! [`CHANGES_CHANNEL`] at commit. [`PgStore::subscribe_changes`] turns that into a
//! [`tokio::sync::watch`] channel, so a replica refreshes its caches as soon as another one
//! moves an alias instead of at its next poll of [`MetadataStore::change_epoch`].
//!
//! **Migrations** live in `migrations/registry/`, are embedded at compile time and applied by
//! [`PgStore::connect`]. sqlx holds a session-level `pg_advisory_lock` (one per database) around
//! them, so replicas starting together apply them once; they run on a dedicated connection that
//! is closed afterwards, so a failed migration cannot leave that lock held by a pooled
//! connection. A database migrated by a newer aurum is refused rather than used.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, Transaction};
use tokio::sync::watch;

use aurum_core::FamilyName;
use aurum_registry::backend::{
    DriftCountsRow, check_console_session, check_drift_counts, check_name, check_sha256,
    drift_counts_from_db, duplicate_console_session, format_timestamp as ts, generate_key,
    hash_key, now, outcome_attributes_from_db, outcome_attributes_to_db,
    parse_timestamp as parse_ts, verify_key_hash,
};
use aurum_registry::{
    AliasHistoryRecord, AliasMove, AliasRecord, ConsoleSessionRecord, DatasetRecord,
    DriftCountsRecord, Entity, INTERRUPTED_AFTER_REGISTRATION, INTERRUPTED_JOB_ERROR, JobRecord,
    JobState, KeyCredential, KeyPolicy, KeyRecord, MetadataStore, ModelRecord, NewDataset, NewJob,
    NewVersion, OutcomeRecord, RegistryError, Result, Role, ShadowRecord, StoredKeyHash,
    VersionRecord, check_job_open,
};

/// The channel the change-epoch triggers notify, with the new epoch as payload.
pub const CHANGES_CHANNEL: &str = "aurum_registry_changes";

/// The table that records applied migrations of this store (the SQLite store's name too), so
/// that other migrators sharing the database keep their own bookkeeping.
const MIGRATIONS_TABLE: &str = "_aurum_registry_migrations";

/// The transaction-level advisory lock that serialises key revocations (ASCII `aurumkey`).
/// Advisory locks are scoped to one database, so this cannot collide with another database's.
const KEYS_LOCK: i64 = 0x6175_7275_6d6b_6579;

/// The transaction-level advisory lock that serialises console sign-ins (ASCII `aurumses`), so
/// the session cap holds across replicas.
const SESSIONS_LOCK: i64 = 0x6175_7275_6d73_6573;

/// The longest wait between two attempts to re-establish the change listener.
const MAX_LISTEN_RETRY: Duration = Duration::from_secs(5);

// Column lists, as macros so that `concat!` builds every query as a `&'static str` (sqlx takes
// only static SQL without an explicit assertion that it is safe).
macro_rules! dataset_columns {
    () => {
        "name, sha256, format, size_bytes, row_count, column_count, schema_json, profile_json, \
         created_at, created_by"
    };
}
macro_rules! version_columns {
    () => {
        "model, version, kind, artifact_key, artifact_sha256, dataset_name, dataset_sha256, \
         target, params_json, metrics_json, aurum_version, created_at, created_by, job_id, \
         archived_at"
    };
}
macro_rules! job_columns {
    () => {
        "id, state, dataset, target, kind, model, params_json, progress, stage, error, \
         result_version, created_at, started_at, finished_at, created_by"
    };
}
macro_rules! key_columns {
    () => {
        "id, name, role, key_hash, created_at, revoked_at, expires_at, scopes, rate_limit_per_s"
    };
}

/// The PostgreSQL metadata store. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:pass@host:port/db?sslmode=…`) with a
    /// pool of at most `max_connections`, and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<PgStore> {
        let options = PgConnectOptions::from_str(url)?;
        Self::connect_with(options, max_connections).await
    }

    /// [`PgStore::connect`] with parsed connection options.
    pub async fn connect_with(options: PgConnectOptions, max_connections: u32) -> Result<PgStore> {
        if max_connections == 0 {
            return Err(RegistryError::InvalidInput(
                "max_connections must be at least 1".into(),
            ));
        }
        // A one-connection pool of its own, closed afterwards: closing ends the session, which
        // releases sqlx's migration lock even when a migration failed.
        let migration_pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let mut migrator = sqlx_macros::migrate!("./migrations/registry");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        let migrated = migrator.run(&migration_pool).await;
        migration_pool.close().await;
        migrated?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options.clone())
            .await?;
        tracing::info!(
            host = options.get_host(),
            database = options.get_database().unwrap_or(""),
            max_connections,
            "registry database connected"
        );
        Ok(PgStore { pool })
    }

    /// The connection pool, for components that keep their own tables in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection; later calls fail and change subscriptions end.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A receiver of the change epoch ([`MetadataStore::change_epoch`]) that moves as soon as any
    /// process commits a change, through `LISTEN` on [`CHANGES_CHANNEL`].
    ///
    /// The initial value is read after the listener is in place, so no change falls between the
    /// two. A background task keeps one dedicated connection; when it is lost the task
    /// reconnects (backing off up to 5 s) and re-reads the epoch, so changes made while it was
    /// away are not missed either. The value only grows. The task ends when every receiver is
    /// dropped or the store is closed.
    pub async fn subscribe_changes(&self) -> Result<watch::Receiver<i64>> {
        let options = (*self.pool.connect_options()).clone();
        let listener = listen(&options).await?;
        let epoch = self.change_epoch().await?;
        let (tx, rx) = watch::channel(epoch);
        tokio::spawn(watch_changes(self.pool.clone(), options, listener, tx));
        Ok(rx)
    }

    /// Locks the model row until the transaction ends; `NotFound` when there is no such model.
    /// Every write that reads a model's versions or aliases before writing them takes this lock
    /// first, which serialises them across processes.
    async fn lock_model(tx: &mut PgConnection, model: &str) -> Result<()> {
        let found: Option<bool> =
            sqlx::query_scalar("SELECT TRUE FROM models WHERE name = $1 FOR UPDATE")
                .bind(model)
                .fetch_optional(&mut *tx)
                .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(not_found(Entity::Model, model)),
        }
    }

    /// `NotFound` unless the model exists.
    async fn ensure_model(&self, name: &str) -> Result<()> {
        let found: Option<bool> = sqlx::query_scalar("SELECT TRUE FROM models WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(not_found(Entity::Model, name)),
        }
    }

    async fn fetch_version(
        conn: &mut PgConnection,
        model: &str,
        version: u32,
    ) -> Result<Option<VersionRecord>> {
        let row: Option<VersionRow> = sqlx::query_as(concat!(
            "SELECT ",
            version_columns!(),
            " FROM model_versions WHERE model = $1 AND version = $2"
        ))
        .bind(model)
        .bind(i64::from(version))
        .fetch_optional(&mut *conn)
        .await?;
        row.map(VersionRecord::try_from).transpose()
    }

    /// Locks the model, then reads the version: `NotFound` for the model or the version,
    /// whichever is missing.
    async fn lock_version(
        tx: &mut PgConnection,
        model: &str,
        version: u32,
    ) -> Result<VersionRecord> {
        Self::lock_model(tx, model).await?;
        Self::fetch_version(tx, model, version)
            .await?
            .ok_or_else(|| not_found(Entity::Version, format!("{model}@v{version}")))
    }

    async fn fetch_aliases(&self, model: &str) -> Result<Vec<AliasRecord>> {
        let rows: Vec<AliasRow> = sqlx::query_as(
            "SELECT model, alias, version, updated_at, updated_by FROM model_aliases \
             WHERE model = $1 ORDER BY alias",
        )
        .bind(model)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AliasRecord::try_from).collect()
    }

    /// The job, locked until the transaction ends when `lock` (for a state change).
    async fn fetch_job(conn: &mut PgConnection, id: &str, lock: bool) -> Result<JobRecord> {
        let sql = if lock {
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM jobs WHERE id = $1 FOR NO KEY UPDATE"
            )
        } else {
            concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1")
        };
        let row: Option<JobRow> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(JobRecord::try_from)
            .transpose()?
            .ok_or_else(|| not_found(Entity::Job, id))
    }

    async fn fetch_key_by_id(conn: &mut PgConnection, id: &str) -> Result<Option<KeyRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
    }

    async fn fetch_key_by_name(conn: &mut PgConnection, name: &str) -> Result<Option<KeyRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?)
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

#[async_trait]
impl MetadataStore for PgStore {
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

        // The primary key decides between racing imports; the loser compares with the winner.
        let created_at = now();
        let inserted = sqlx::query(
            "INSERT INTO datasets (name, sha256, format, size_bytes, row_count, column_count, \
             schema_json, profile_json, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (name) DO NOTHING",
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
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            let existing = self.get_dataset(&new.name).await?;
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
        let row: Option<DatasetRow> = sqlx::query_as(concat!(
            "SELECT ",
            dataset_columns!(),
            " FROM datasets WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(DatasetRecord::try_from)
            .transpose()?
            .ok_or_else(|| not_found(Entity::Dataset, name))
    }

    async fn list_datasets(&self) -> Result<Vec<DatasetRecord>> {
        let rows: Vec<DatasetRow> = sqlx::query_as(concat!(
            "SELECT ",
            dataset_columns!(),
            " FROM datasets ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(DatasetRecord::try_from).collect()
    }

    async fn create_version(&self, new: NewVersion) -> Result<VersionRecord> {
        check_name(&new.model)?;
        check_sha256("artifact sha256", &new.artifact_sha256)?;
        check_sha256("dataset sha256", &new.dataset_sha256)?;
        aurum_registry::validate_key(&new.artifact_key)?;
        if new.aurum_version.is_empty() {
            return Err(RegistryError::InvalidInput(
                "aurum_version must not be empty".into(),
            ));
        }

        let mut tx = self.begin().await?;
        // An empty dataset name marks a version imported from outside aurum; its lineage is the
        // SHA-256 of the imported file (in `dataset_sha256`), not an aurum dataset.
        if !new.dataset_name.is_empty() {
            let dataset_sha: Option<String> =
                sqlx::query_scalar("SELECT sha256 FROM datasets WHERE name = $1")
                    .bind(&new.dataset_name)
                    .fetch_optional(&mut *tx)
                    .await?;
            match dataset_sha {
                None => return Err(not_found(Entity::Dataset, &new.dataset_name)),
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
            // The row stays locked until this transaction ends, so a process ending the job as
            // interrupted waits and then sees the version (and records the job succeeded).
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1 FOR UPDATE")
                    .bind(job_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            match state {
                None => return Err(not_found(Entity::Job, job_id)),
                Some(state) => check_job_open(job_id, &state)?,
            }
        }

        let created_at = now();
        let created_at_text = ts(&created_at);
        sqlx::query(
            "INSERT INTO models (name, created_at, created_by) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&new.model)
        .bind(&created_at_text)
        .bind(&new.created_by)
        .execute(&mut *tx)
        .await?;
        // Writers of this model queue here; the maximum is read after the previous one committed.
        Self::lock_model(&mut tx, &new.model).await?;
        let next: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model = $1",
        )
        .bind(&new.model)
        .fetch_one(&mut *tx)
        .await?;
        let version = from_db_version(next)?;
        sqlx::query(
            "INSERT INTO model_versions (model, version, kind, artifact_key, artifact_sha256, \
             dataset_name, dataset_sha256, target, params_json, metrics_json, aurum_version, \
             created_at, created_by, job_id, archived_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL)",
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
             WHERE m.name = $1 GROUP BY m.name, m.created_at, m.created_by",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let row = row.ok_or_else(|| not_found(Entity::Model, name))?;
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
        match Self::fetch_version(&mut conn, model, version).await? {
            Some(record) => Ok(record),
            None => {
                drop(conn);
                self.ensure_model(model).await?;
                Err(not_found(Entity::Version, format!("{model}@v{version}")))
            }
        }
    }

    async fn list_versions(&self, model: &str) -> Result<Vec<VersionRecord>> {
        self.ensure_model(model).await?;
        let rows: Vec<VersionRow> = sqlx::query_as(concat!(
            "SELECT ",
            version_columns!(),
            " FROM model_versions WHERE model = $1 ORDER BY version"
        ))
        .bind(model)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(VersionRecord::try_from).collect()
    }

    async fn archive_version(&self, model: &str, version: u32) -> Result<VersionRecord> {
        let mut tx = self.begin().await?;
        let mut record = Self::lock_version(&mut tx, model, version).await?;
        if record.is_archived() {
            return Ok(record);
        }
        let aliases: Vec<String> = sqlx::query_scalar(
            "SELECT alias FROM model_aliases WHERE model = $1 AND version = $2 ORDER BY alias",
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
        sqlx::query("UPDATE model_versions SET archived_at = $1 WHERE model = $2 AND version = $3")
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
        let mut tx = self.begin().await?;
        let mut record = Self::lock_version(&mut tx, model, version).await?;
        if !record.is_archived() {
            return Ok(record);
        }
        sqlx::query(
            "UPDATE model_versions SET archived_at = NULL WHERE model = $1 AND version = $2",
        )
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
        let mut tx = self.begin().await?;
        let target = Self::lock_version(&mut tx, model, version).await?;
        if target.is_archived() {
            return Err(RegistryError::ArchivedVersion {
                model: model.to_string(),
                version,
            });
        }
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM model_aliases WHERE model = $1 AND alias = $2")
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
             VALUES ($1, $2, $3, $4, $5) \
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
            "INSERT INTO alias_history (model, alias, from_version, to_version, moved_by, \
             moved_at) VALUES ($1, $2, $3, $4, $5, $6)",
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
            sqlx::query_scalar("SELECT version FROM model_aliases WHERE model = $1 AND alias = $2")
                .bind(model)
                .bind(alias)
                .fetch_optional(&self.pool)
                .await?;
        match version {
            Some(v) => Ok(Some(from_db_version(v)?)),
            None => {
                self.ensure_model(model).await?;
                Ok(None)
            }
        }
    }

    async fn list_aliases(&self, model: &str) -> Result<Vec<AliasRecord>> {
        let aliases = self.fetch_aliases(model).await?;
        if aliases.is_empty() {
            self.ensure_model(model).await?;
        }
        Ok(aliases)
    }

    async fn alias_history(&self, model: &str) -> Result<Vec<AliasHistoryRecord>> {
        let rows: Vec<AliasHistoryRow> = sqlx::query_as(
            "SELECT alias, from_version, to_version, moved_by, moved_at FROM alias_history \
             WHERE model = $1 ORDER BY id",
        )
        .bind(model)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            self.ensure_model(model).await?;
        }
        rows.into_iter().map(AliasHistoryRecord::try_from).collect()
    }

    async fn create_job(&self, new: NewJob) -> Result<JobRecord> {
        check_name(&new.model)?;
        let dataset: Option<bool> = sqlx::query_scalar("SELECT TRUE FROM datasets WHERE name = $1")
            .bind(&new.dataset)
            .fetch_optional(&self.pool)
            .await?;
        if dataset.is_none() {
            return Err(not_found(Entity::Dataset, &new.dataset));
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
            created_by: new.created_by,
        };
        sqlx::query(
            "INSERT INTO jobs (id, state, dataset, target, kind, model, params_json, progress, \
             stage, error, result_version, created_at, started_at, finished_at, created_by, \
             owner, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10, NULL, NULL, $11, $12, $10)",
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
        .execute(&self.pool)
        .await?;
        tracing::info!(job = %record.id, model = %record.model, dataset = %record.dataset, "training job queued");
        Ok(record)
    }

    async fn get_job(&self, id: &str) -> Result<JobRecord> {
        let mut conn = self.pool.acquire().await?;
        Self::fetch_job(&mut conn, id, false).await
    }

    async fn list_jobs(&self, limit: u32) -> Result<Vec<JobRecord>> {
        let rows: Vec<JobRow> = sqlx::query_as(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs ORDER BY created_at DESC, id DESC LIMIT $1"
        ))
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
            "UPDATE jobs SET progress = $1, stage = $2 WHERE id = $3 AND state = 'running'",
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
        // The row lock makes check-then-write one step: a second process trying the same move
        // waits here and then sees the state the first one left.
        let mut tx = self.begin().await?;
        let current = Self::fetch_job(&mut tx, id, true).await?;
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
            next.error = error;
        }
        if result_version.is_some() {
            next.result_version = result_version;
        }
        sqlx::query(
            "UPDATE jobs SET state = $1, progress = $2, stage = $3, error = $4, \
             result_version = $5, started_at = $6, finished_at = $7 WHERE id = $8",
        )
        .bind(next.state.as_str())
        .bind(next.progress)
        .bind(&next.stage)
        .bind(&next.error)
        .bind(next.result_version.map(i64::from))
        .bind(next.started_at.as_ref().map(ts))
        .bind(next.finished_at.as_ref().map(ts))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(job = %id, from = %current.state, to = %to, "training job state changed");
        Ok(next)
    }

    async fn fail_interrupted_jobs(&self, stale_after: Duration) -> Result<Vec<JobRecord>> {
        let stale = chrono::Duration::from_std(stale_after)
            .map_err(|e| RegistryError::InvalidInput(format!("stale_after: {e}")))?;
        let at = now();
        let cutoff = ts(&(at - stale));
        let mut tx = self.begin().await?;
        // Lock the stale jobs first: a `create_version` in flight holds its job's row, so this
        // waits for it to commit, and the statements below (each a new snapshot under READ
        // COMMITTED) then see its version. Without the lock, the `succeeded` update's snapshot
        // could miss an uncommitted version and the `failed` update would then wait and fail a
        // job that had just registered one.
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state IN ('queued', 'running') \
             AND (heartbeat_at IS NULL OR heartbeat_at < $1) ORDER BY id FOR UPDATE",
        )
        .bind(&cutoff)
        .fetch_all(&mut *tx)
        .await?;
        // A job whose version was registered succeeded, whatever did not run after.
        let mut ids: Vec<String> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'succeeded', progress = 1.0, stage = 'succeeded', error = $1, \
             finished_at = $2, \
             result_version = (SELECT MAX(v.version) FROM model_versions v WHERE v.job_id = jobs.id) \
             WHERE id = ANY($3) AND state IN ('queued', 'running') \
             AND EXISTS (SELECT 1 FROM model_versions v WHERE v.job_id = jobs.id) RETURNING id",
        )
        .bind(INTERRUPTED_AFTER_REGISTRATION)
        .bind(ts(&at))
        .bind(&stale)
        .fetch_all(&mut *tx)
        .await?;
        ids.extend(
            sqlx::query_scalar::<_, String>(
                "UPDATE jobs SET state = 'failed', stage = 'failed', error = $1, finished_at = $2 \
                 WHERE id = ANY($3) AND state IN ('queued', 'running') \
                 AND NOT EXISTS (SELECT 1 FROM model_versions v WHERE v.job_id = jobs.id) \
                 RETURNING id",
            )
            .bind(INTERRUPTED_JOB_ERROR)
            .bind(ts(&at))
            .bind(&stale)
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
            "UPDATE jobs SET heartbeat_at = $1 WHERE owner = $2 AND state IN ('queued', 'running')",
        )
        .bind(ts(&now()))
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn subscribe_changes(&self) -> Result<Option<watch::Receiver<i64>>> {
        PgStore::subscribe_changes(self).await.map(Some)
    }

    async fn change_epoch(&self) -> Result<i64> {
        read_epoch(&self.pool).await
    }

    async fn record_outcomes(&self, outcomes: &[OutcomeRecord]) -> Result<()> {
        // Key order (stable, so a repeated record's last occurrence still wins): two batches
        // that overlap lock their common rows in the same order and cannot deadlock.
        let mut sorted: Vec<&OutcomeRecord> = outcomes.iter().collect();
        sorted.sort_by(|a, b| {
            (&a.model, &a.request_id, a.record).cmp(&(&b.model, &b.request_id, b.record))
        });
        let mut tx = self.begin().await?;
        for o in sorted {
            sqlx::query(
                "INSERT INTO outcomes (model, version, request_id, record, probability, decision, \
                 positive, scored_at, received_at, attributes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
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
            .bind(o.positive)
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
             scored_at, received_at, attributes FROM outcomes WHERE model = $1 AND version = $2 \
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
                    positive: r.positive,
                })
            })
            .collect()
    }

    async fn put_challenger(&self, model: &str, config: Option<&str>) -> Result<()> {
        self.ensure_model(model).await?;
        match config {
            Some(config) => {
                sqlx::query(
                    "INSERT INTO challengers (model, config, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (model) DO UPDATE SET config = excluded.config, \
                     updated_at = excluded.updated_at",
                )
                .bind(model)
                .bind(config)
                .bind(ts(&now()))
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM challengers WHERE model = $1")
                    .bind(model)
                    .execute(&self.pool)
                    .await?;
            }
        }
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
             rows_counted, counts, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
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
             FROM drift_counts WHERE model = $1 AND version = $2 AND window_end > $3 \
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
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
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
             WHERE model = $1 AND version = $2 AND window_start > $3 ORDER BY window_start",
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
        let mut tx = self.begin().await?;
        // One sign-in at a time across every replica: the count below and the insert must not
        // interleave with another sign-in, or two could both see room under the cap.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SESSIONS_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM console_sessions WHERE expires_at_ms <= $1")
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
                 FROM console_sessions ORDER BY created_at_ms, session_hash LIMIT $1)",
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
             (session_hash, key_id, csrf, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_hash) DO NOTHING",
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
             FROM console_sessions WHERE session_hash = $1",
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
        let deleted = sqlx::query("DELETE FROM console_sessions WHERE session_hash = $1")
            .bind(session_hash)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn delete_expired_console_sessions(&self, now_ms: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM console_sessions WHERE expires_at_ms <= $1")
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn record_shadow(&self, rows: &[ShadowRecord]) -> Result<()> {
        // A repeated record replaces the earlier answer entirely (SQLite's INSERT OR REPLACE):
        // keep the last of each key (one statement may not update a row twice), in key order
        // so concurrent writers lock rows in the same order.
        let mut last: std::collections::BTreeMap<(&str, &str, u32), &ShadowRecord> =
            std::collections::BTreeMap::new();
        for r in rows {
            last.insert((r.model.as_str(), r.request_id.as_str(), r.record), r);
        }
        let sorted: Vec<&ShadowRecord> = last.into_values().collect();
        let mut tx = self.begin().await?;
        // Shadow records may be lost at a crash (they are a sample); their commit need not wait
        // for the WAL flush that decisions and audit records wait for.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        for chunk in sorted.chunks(aurum_registry::backend::SHADOW_ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<Postgres>::new(
                "INSERT INTO shadow_scores (model, request_id, record, champion_version, \
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
            q.push(
                " ON CONFLICT (model, request_id, record) DO UPDATE SET \
                 champion_version = excluded.champion_version, \
                 challenger_version = excluded.challenger_version, \
                 champion_p = excluded.champion_p, challenger_p = excluded.challenger_p, \
                 champion_decision = excluded.champion_decision, \
                 challenger_decision = excluded.challenger_decision, \
                 scored_at = excluded.scored_at",
            );
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_shadow(
        &self,
        model: &str,
        limit: u32,
    ) -> Result<Vec<(ShadowRecord, Option<bool>)>> {
        let rows: Vec<ShadowRow> = sqlx::query_as(
            "SELECT s.model, s.request_id, s.record, s.champion_version, s.challenger_version, \
             s.champion_p, s.challenger_p, s.champion_decision, s.challenger_decision, \
             s.scored_at, o.positive FROM shadow_scores s LEFT JOIN outcomes o \
             ON o.model = s.model AND o.request_id = s.request_id AND o.record = s.record \
             WHERE s.model = $1 ORDER BY s.scored_at, s.request_id, s.record LIMIT $2",
        )
        .bind(model)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let num = |what: &str, v: i64| {
            u32::try_from(v).map_err(|_| RegistryError::CorruptRecord(format!("shadow {what} {v}")))
        };
        rows.into_iter()
            .map(|r| {
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
                    r.positive,
                ))
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
        let duplicate =
            || RegistryError::Conflict(format!("an API key named `{name}` already exists"));
        let taken: Option<bool> = sqlx::query_scalar("SELECT TRUE FROM api_keys WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        if taken.is_some() {
            return Err(duplicate());
        }
        let generated = generate_key();
        let plaintext = generated.plaintext;
        let hash = hash_key(&plaintext);
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
        // The unique constraint decides between replicas creating the same name at once.
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, name, role, key_hash, created_at, revoked_at, expires_at, \
             scopes, rate_limit_per_s) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8)",
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
            Err(e) if violates(&e, "api_keys_name_unique") => return Err(duplicate()),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(key_id = %record.id, name, role = %role, "API key created");
        Ok((record, plaintext))
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        let rows: Vec<KeyRow> = sqlx::query_as(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(KeyRecord::try_from).collect()
    }

    async fn revoke_key(&self, name_or_id: &str) -> Result<KeyRecord> {
        let mut tx = self.begin().await?;
        // One revocation at a time across every replica: the last-admin check below must not
        // race with another revocation.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEYS_LOCK)
            .execute(&mut *tx)
            .await?;
        let mut row = Self::fetch_key_by_id(&mut tx, name_or_id).await?;
        if row.is_none() {
            row = Self::fetch_key_by_name(&mut tx, name_or_id).await?;
        }
        let mut record = row
            .map(KeyRecord::try_from)
            .transpose()?
            .ok_or_else(|| not_found(Entity::Key, name_or_id))?;
        if !record.is_active() {
            return Ok(record);
        }
        if record.role == Role::Admin {
            let admins: Vec<KeyRow> = sqlx::query_as(concat!(
                "SELECT ",
                key_columns!(),
                " FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL"
            ))
            .fetch_all(&mut *tx)
            .await?;
            let admins = admins
                .into_iter()
                .map(KeyRecord::try_from)
                .collect::<Result<Vec<_>>>()?;
            aurum_registry::check_not_last_admin(&record, &admins)?;
        }
        let revoked_at = now();
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
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
        let Some(id) = aurum_registry::parse_key_id(plaintext) else {
            return Ok(None);
        };
        let mut conn = self.pool.acquire().await?;
        let Some(row) = Self::fetch_key_by_id(&mut conn, id).await? else {
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
            tokio::task::spawn_blocking(move || verify_key_hash(&candidate, &stored))
                .await
                .map_err(|e| RegistryError::Internal(format!("blocking task failed: {e}")))??
        } else {
            verify_key_hash(&candidate, &stored)?
        };
        if !matches {
            tracing::debug!(key_id = %id, "API key with a wrong secret presented");
            return Ok(None);
        }
        if legacy {
            self.upgrade_key_hash(&row.id, &row.key_hash, &hash_key(plaintext))
                .await?;
        }
        KeyRecord::try_from(row).map(Some)
    }

    async fn key_credentials(&self) -> Result<Vec<KeyCredential>> {
        let rows: Vec<KeyRow> = sqlx::query_as(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id"
        ))
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
            "UPDATE api_keys SET key_hash = $1 \
             WHERE id = $2 AND key_hash = $3 AND revoked_at IS NULL",
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

// ---- change notification ----

async fn read_epoch(pool: &PgPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT epoch FROM registry_changes WHERE id = 1")
            .fetch_one(pool)
            .await?,
    )
}

/// A listener on [`CHANGES_CHANNEL`] over its own one-connection pool (so it takes nothing from
/// the store's pool, and a broken connection is not handed to anyone else).
async fn listen(options: &PgConnectOptions) -> Result<PgListener> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    Ok(listener)
}

/// Moves the published epoch forward (never back: notifications of concurrent commits may
/// arrive out of order).
fn advance(tx: &watch::Sender<i64>, epoch: i64) {
    tx.send_if_modified(|current| {
        if epoch > *current {
            *current = epoch;
            true
        } else {
            false
        }
    });
}

async fn watch_changes(
    pool: PgPool,
    options: PgConnectOptions,
    mut listener: PgListener,
    tx: watch::Sender<i64>,
) {
    loop {
        let event = tokio::select! {
            () = tx.closed() => return,
            event = listener.try_recv() => event,
        };
        match event {
            Ok(Some(notification)) => match notification.payload().parse::<i64>() {
                Ok(epoch) => advance(&tx, epoch),
                Err(_) => tracing::warn!(
                    payload = notification.payload(),
                    "ignoring a malformed registry change notification"
                ),
            },
            Ok(None) | Err(_) => {
                if pool.is_closed() {
                    return;
                }
                if let Err(e) = event {
                    tracing::warn!(error = %e, "registry change listener failed; reconnecting");
                } else {
                    tracing::warn!("registry change listener lost its connection; reconnecting");
                }
                drop(listener);
                match relisten(&pool, &options, &tx).await {
                    Some(fresh) => listener = fresh,
                    None => return,
                }
            }
        }
    }
}

/// Re-establishes the listener, backing off between attempts, then re-reads the epoch: whatever
/// changed while no one was listening is published at once. `None` when there is no one left to
/// tell or the store was closed.
async fn relisten(
    pool: &PgPool,
    options: &PgConnectOptions,
    tx: &watch::Sender<i64>,
) -> Option<PgListener> {
    let mut delay = Duration::from_millis(100);
    loop {
        tokio::select! {
            () = tx.closed() => return None,
            () = tokio::time::sleep(delay) => {}
        }
        if pool.is_closed() {
            return None;
        }
        let attempt = async {
            let listener = listen(options).await?;
            let epoch = read_epoch(pool).await?;
            Ok::<_, RegistryError>((listener, epoch))
        };
        match attempt.await {
            Ok((listener, epoch)) => {
                advance(tx, epoch);
                tracing::info!(epoch, "registry change listener reconnected");
                return Some(listener);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "registry change listener cannot reconnect");
                delay = (delay * 2).min(MAX_LISTEN_RETRY);
            }
        }
    }
}

// ---- conversions between rows and records ----

fn not_found(kind: Entity, name: impl Into<String>) -> RegistryError {
    RegistryError::NotFound {
        kind,
        name: name.into(),
    }
}

/// Whether `e` is a unique violation of the named constraint.
fn violates(e: &sqlx::Error, constraint: &str) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.is_unique_violation() && db.constraint() == Some(constraint))
}

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
    positive: Option<bool>,
}

#[derive(sqlx_macros::FromRow)]
struct OutcomeRow {
    model: String,
    version: i64,
    request_id: String,
    record: i64,
    probability: f64,
    decision: Option<String>,
    positive: bool,
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
    fn db_numbers_are_checked() {
        assert_eq!(from_db_version(3).unwrap(), 3);
        assert!(from_db_version(0).is_err());
        assert!(from_db_version(-1).is_err());
        assert!(to_db_count("rows", u64::MAX).is_err());
        assert!(from_db_count("rows", -1).is_err());
    }

    #[test]
    fn the_migration_notifies_the_channel_this_crate_listens_on() {
        let sql = include_str!("../migrations/registry/0001_init.sql");
        assert!(sql.contains(&format!("pg_notify('{CHANGES_CHANNEL}'")));
        assert!(sql.contains("CONSTRAINT api_keys_name_unique UNIQUE (name)"));
    }
}
