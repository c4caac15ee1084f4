//! The audit log's rows in PostgreSQL, shared by every replica.
//!
//! # One chain, many writers
//!
//! Each replica runs its own [`AuditLog`](aurum_registry::audit::AuditLog) writer task with group
//! commit. A batch is one transaction that first takes a transaction-scoped advisory lock
//! ([`WRITE_LOCK`]), then reads the newest row, chains the batch onto it and inserts it. The
//! lock serialises batches across replicas, so the chain never forks, seq stays gapless and a
//! batch that fails leaves nothing behind (the transaction rolls back and the lock is released
//! with it). Readers never take the lock.
//!
//! # Durability
//!
//! `COMMIT` returns once PostgreSQL has flushed the WAL (`synchronous_commit = on`, the server
//! default; a server configured with `off` weakens the acknowledgement to what it promises).
//!
//! # Schema
//!
//! The table lives in the schema [`SCHEMA`] with its own migration history
//! (`migrations/audit`), apart from the registry's tables, so the two migration sets never see
//! each other's versions. `UPDATE`, `DELETE` and `TRUNCATE` are refused by a trigger.

use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use aurum_registry::audit::rows::{self, RawRow};
use aurum_registry::audit::{
    AuditEntry, AuditError, AuditRecord, AuditStore, Chained, ReadQuery, ScalarQuery, chain_batch,
};
use sqlx::Row as _;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};

/// The schema holding `audit_log` and its migration history (spelled out in the
/// `CREATE SCHEMA` statement too).
pub const SCHEMA: &str = "aurum_audit";
/// The advisory lock key every writer of the log takes for the length of its batch.
pub const WRITE_LOCK: i64 = 0x6175_7275_6d5f_6175; // "aurum_au"

/// The audit log's rows in a PostgreSQL database; see the module docs.
#[derive(Debug, Clone)]
pub struct PgAuditStore {
    pool: PgPool,
    location: PathBuf,
}

impl PgAuditStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`), creates the schema if
    /// needed and runs the audit migrations. `max_connections` bounds this process's pool (the
    /// writer uses one at a time; the rest serve reads).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, AuditError> {
        let options = PgConnectOptions::from_str(url).map_err(|source| AuditError::Open {
            path: PathBuf::from("postgres (the audit database URL cannot be parsed)"),
            source,
        })?;
        let location = PathBuf::from(format!(
            "postgres://{}:{}/{}#{SCHEMA}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("postgres")
        ));
        let open_error = |source| AuditError::Open {
            path: location.clone(),
            source,
        };
        // The schema must exist before a connection can put it on its search path; several
        // replicas may start at once, and the advisory lock orders their `CREATE SCHEMA`.
        let setup = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        {
            let mut tx = setup.begin().await.map_err(open_error)?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(open_error)?;
            sqlx::query("CREATE SCHEMA IF NOT EXISTS aurum_audit")
                .execute(&mut *tx)
                .await
                .map_err(open_error)?;
            tx.commit().await.map_err(open_error)?;
        }
        setup.close().await;

        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(
                options
                    .options([("search_path", SCHEMA)])
                    .application_name("aurum-audit"),
            )
            .await
            .map_err(open_error)?;
        sqlx::migrate!("./migrations/audit")
            .run(&pool)
            .await
            .map_err(|source| AuditError::Migrate {
                path: location.clone(),
                source,
            })?;
        tracing::info!(location = %location.display(), "audit store on PostgreSQL");
        Ok(Self { pool, location })
    }
}

/// Binds `chunk` (at most [`rows::ROWS_PER_INSERT`] records) to one insert statement.
fn bind_chunk(
    chunk: &[Chained],
) -> Result<sqlx::query::Query<'_, sqlx::Postgres, PgArguments>, sqlx::Error> {
    let mut statement = sqlx::query(rows::insert_rows(chunk.len()));
    for chained in chunk {
        let record = &chained.record;
        statement = statement
            .bind(chained.seq()?)
            .bind(chained.format_version())
            .bind(chained.ts.as_str())
            .bind(record.event.as_str())
            .bind(record.actor.as_str())
            .bind(record.request_id.as_deref())
            .bind(record.model.as_deref())
            .bind(record.version.map(i64::from))
            .bind(record.input_sha256.as_deref())
            .bind(chained.details.as_str())
            .bind(record.prev_hash.as_str())
            .bind(record.hash.as_str());
    }
    Ok(statement)
}

fn raw_row(row: &PgRow) -> Result<RawRow, sqlx::Error> {
    Ok(RawRow {
        seq: row.try_get(0)?,
        format_version: row.try_get(1)?,
        ts: row.try_get(2)?,
        event: row.try_get(3)?,
        actor: row.try_get(4)?,
        request_id: row.try_get(5)?,
        model: row.try_get(6)?,
        model_version: row.try_get(7)?,
        input_sha256: row.try_get(8)?,
        details: row.try_get(9)?,
        prev_hash: row.try_get(10)?,
        hash: row.try_get(11)?,
    })
}

#[async_trait]
impl AuditStore for PgAuditStore {
    fn location(&self) -> PathBuf {
        self.location.clone()
    }

    async fn append_batch(
        &self,
        entries: Vec<AuditEntry>,
    ) -> Result<Vec<AuditRecord>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK)
            .execute(&mut *tx)
            .await?;
        let head = sqlx::query(rows::HEAD)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| Ok::<_, sqlx::Error>((row.try_get(0)?, row.try_get(1)?)))
            .transpose()?;
        let chained = chain_batch(head, entries);
        for chunk in chained.chunks(rows::ROWS_PER_INSERT) {
            bind_chunk(chunk)?.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(chained.into_iter().map(|c| c.record).collect())
    }

    async fn head(&self) -> Result<Option<(i64, String)>, sqlx::Error> {
        sqlx::query(rows::HEAD)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    async fn read(&self, query: ReadQuery<'_>) -> Result<Vec<RawRow>, sqlx::Error> {
        let statement = match query {
            ReadQuery::Get { seq } => sqlx::query(rows::GET).bind(seq),
            ReadQuery::Tail { n } => sqlx::query(rows::TAIL).bind(n),
            ReadQuery::List {
                after,
                limit,
                event,
                model,
            } => match (event, model) {
                (None, None) => sqlx::query(rows::LIST).bind(after).bind(limit),
                (Some(event), None) => sqlx::query(rows::LIST_BY_EVENT)
                    .bind(after)
                    .bind(limit)
                    .bind(event),
                (None, Some(model)) => sqlx::query(rows::LIST_BY_MODEL)
                    .bind(after)
                    .bind(limit)
                    .bind(model),
                (Some(event), Some(model)) => sqlx::query(rows::LIST_BY_EVENT_AND_MODEL)
                    .bind(after)
                    .bind(limit)
                    .bind(event)
                    .bind(model),
            },
            ReadQuery::ByRequest { request_id, event } => {
                sqlx::query(rows::BY_REQUEST).bind(request_id).bind(event)
            }
            ReadQuery::VerifyPage { after, last, limit } => sqlx::query(rows::VERIFY_PAGE)
                .bind(after)
                .bind(last)
                .bind(limit),
        };
        statement
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(raw_row)
            .collect()
    }

    async fn scalar(&self, query: ScalarQuery) -> Result<i64, sqlx::Error> {
        let sql = match query {
            ScalarQuery::Count => rows::COUNT,
            ScalarQuery::MaxSeq => rows::MAX_SEQ,
        };
        let value: Option<i64> = sqlx::query(sql).fetch_one(&self.pool).await?.try_get(0)?;
        Ok(value.unwrap_or(0))
    }

    async fn hash_at(&self, seq: i64) -> Result<Option<String>, sqlx::Error> {
        sqlx::query(rows::HASH_AT)
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get(0))
            .transpose()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
