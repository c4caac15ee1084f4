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
use aurum_registry::audit::rows::{self, Arg, RawRow};
use aurum_registry::audit::{
    AuditEntry, AuditError, AuditRecord, AuditStore, ReadQuery, ScalarQuery, chain_batch,
    insert_statement,
};
use sqlx::Row as _;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions};

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
        sqlx_macros::migrate!("./migrations/audit")
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

/// `sql` with `args` bound, for PostgreSQL.
fn bind<'q>(
    sql: &'static str,
    args: Vec<Arg<'q>>,
) -> sqlx::query::Query<'q, sqlx::Postgres, PgArguments> {
    args.into_iter().fold(sqlx::query(sql), |q, arg| match arg {
        Arg::Int(v) => q.bind(v),
        Arg::Text(v) => q.bind(v),
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
            let (sql, args) = insert_statement(chunk)?;
            bind(sql, args).execute(&mut *tx).await?;
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
        let (sql, args) = query.statement();
        bind(sql, args)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(RawRow::decode)
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
