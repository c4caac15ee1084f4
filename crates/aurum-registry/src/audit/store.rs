//! Where the audit log's rows live: the [`AuditStore`] trait, and its SQLite implementation.
//!
//! [`AuditLog`](super::AuditLog) owns everything that makes the log an audit log — the writer
//! task and its group commit, the hash chain, the signed anchor, verification — and asks a store
//! only to keep rows. A store does three things:
//!
//! - [`AuditStore::append_batch`]: in one transaction that excludes every other writer of the
//!   same log, in any process, read the newest row, chain the entries onto it with
//!   [`chain_batch`] and insert them. Because the head is read inside the exclusive transaction,
//!   several processes (a server and a CLI command on one SQLite file, or several replicas on
//!   one PostgreSQL database) append to one chain without forking it. (The SQLite store skips
//!   the read when its own connection made the last commit: it chains onto the head that commit
//!   left, and if any other writer appended since, that writer took the next seq, the primary
//!   key, so the insert fails and the batch is chained again onto the head read in the
//!   transaction.)
//! - [`AuditStore::read`]: the fixed set of reads in [`ReadQuery`], returning rows exactly as
//!   stored ([`RawRow`]), so that verification hashes stored text.
//! - [`AuditStore::scalar`]: counts and the hash or seq of one row.
//!
//! Both backends run the SQL text in [`super::rows`]; a backend adds its connection setup, its
//! migration (including the trigger that refuses `UPDATE` and `DELETE`) and its way of taking
//! the exclusive write lock. The PostgreSQL store lives in the `aurum-postgres` crate.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{SecondsFormat, SubsecRound as _, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection as _, Row as _};
use tokio::sync::Mutex;

use super::canonical::{HashedFields, canonical_json};
use super::rows::{self, Arg, RawRow};
use super::{AuditEntry, AuditError, AuditRecord, FORMAT_VERSION, GENESIS_HASH, READERS};

/// The reads an [`AuditStore`] answers with rows. Limits are already capped by the caller.
#[derive(Debug, Clone, Copy)]
pub enum ReadQuery<'a> {
    /// The row with this seq ([`rows::GET`]).
    Get { seq: i64 },
    /// The newest `n` rows, ascending ([`rows::TAIL`]).
    Tail { n: i64 },
    /// Rows after `after`, ascending, at most `limit`, optionally one event and/or one model
    /// ([`rows::LIST`] and its filtered forms).
    List {
        after: i64,
        limit: i64,
        event: Option<&'a str>,
        model: Option<&'a str>,
    },
    /// The rows of `event` for `request_id` ([`rows::BY_REQUEST`]).
    ByRequest { request_id: &'a str, event: &'a str },
    /// Rows with `after < seq <= last`, ascending, at most `limit` ([`rows::VERIFY_PAGE`]).
    VerifyPage { after: i64, last: i64, limit: i64 },
}

impl ReadQuery<'_> {
    /// The statement and its arguments, in placeholder order: what every backend runs.
    pub fn statement(&self) -> (&'static str, Vec<Arg<'_>>) {
        let int = |v: i64| Arg::Int(Some(v));
        fn text(v: &str) -> Arg<'_> {
            Arg::Text(Some(v))
        }
        match *self {
            ReadQuery::Get { seq } => (rows::GET, vec![int(seq)]),
            ReadQuery::Tail { n } => (rows::TAIL, vec![int(n)]),
            ReadQuery::List {
                after,
                limit,
                event,
                model,
            } => match (event, model) {
                (None, None) => (rows::LIST, vec![int(after), int(limit)]),
                (Some(e), None) => (rows::LIST_BY_EVENT, vec![int(after), int(limit), text(e)]),
                (None, Some(m)) => (rows::LIST_BY_MODEL, vec![int(after), int(limit), text(m)]),
                (Some(e), Some(m)) => (
                    rows::LIST_BY_EVENT_AND_MODEL,
                    vec![int(after), int(limit), text(e), text(m)],
                ),
            },
            ReadQuery::ByRequest { request_id, event } => {
                (rows::BY_REQUEST, vec![text(request_id), text(event)])
            }
            ReadQuery::VerifyPage { after, last, limit } => {
                (rows::VERIFY_PAGE, vec![int(after), int(last), int(limit)])
            }
        }
    }
}

/// The insert of `chunk` (at most [`rows::ROWS_PER_INSERT`] records) and its arguments, in
/// [`rows::COLUMNS`] order per record.
pub fn insert_statement(chunk: &[Chained]) -> Result<(&'static str, Vec<Arg<'_>>), sqlx::Error> {
    let mut args = Vec::with_capacity(chunk.len() * 12);
    for chained in chunk {
        let record = &chained.record;
        args.extend([
            Arg::Int(Some(chained.seq()?)),
            Arg::Int(Some(FORMAT_VERSION)),
            Arg::Text(Some(&chained.ts)),
            Arg::Text(Some(&record.event)),
            Arg::Text(Some(&record.actor)),
            Arg::Text(record.request_id.as_deref()),
            Arg::Text(record.model.as_deref()),
            Arg::Int(record.version.map(i64::from)),
            Arg::Text(record.input_sha256.as_deref()),
            Arg::Text(Some(&chained.details)),
            Arg::Text(Some(&record.prev_hash)),
            Arg::Text(Some(&record.hash)),
        ]);
    }
    Ok((rows::insert_rows(chunk.len()), args))
}

/// The single-value reads of an [`AuditStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarQuery {
    /// Number of rows ([`rows::COUNT`]).
    Count,
    /// The largest seq, `None` when empty ([`rows::MAX_SEQ`]).
    MaxSeq,
}

/// Storage of audit rows; see the module docs. Object-safe so that the log holds
/// `Arc<dyn AuditStore>` and never learns which database sits underneath.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Where the rows are, for logs and errors: a file path, or a URL without credentials.
    fn location(&self) -> PathBuf;
    /// Chains `entries` onto the newest stored row and inserts them, all in one transaction
    /// that no other writer of this log (in any process) can interleave with. On `Err`, nothing
    /// was written. Returns the committed records, in order.
    async fn append_batch(&self, entries: Vec<AuditEntry>)
    -> Result<Vec<AuditRecord>, sqlx::Error>;
    /// The newest row's seq and hash, `None` for an empty log.
    async fn head(&self) -> Result<Option<(i64, String)>, sqlx::Error>;
    /// Rows as stored.
    async fn read(&self, query: ReadQuery<'_>) -> Result<Vec<RawRow>, sqlx::Error>;
    /// A count or the largest seq (0 when empty).
    async fn scalar(&self, query: ScalarQuery) -> Result<i64, sqlx::Error>;
    /// The stored hash of row `seq`.
    async fn hash_at(&self, seq: i64) -> Result<Option<String>, sqlx::Error>;
    /// Closes the connections; called once, after the writer has stopped.
    async fn close(&self);
}

/// A record chained onto the log, with the exact text stored (and hashed) for `ts` and
/// `details`: what a backend binds in [`rows::insert_rows`] order.
#[derive(Debug, Clone)]
pub struct Chained {
    pub record: AuditRecord,
    pub ts: String,
    pub details: String,
}

impl Chained {
    /// The record's seq as the database stores it.
    pub fn seq(&self) -> Result<i64, sqlx::Error> {
        i64::try_from(self.record.seq).map_err(|e| sqlx::Error::Encode(Box::new(e)))
    }

    /// The format version column.
    pub fn format_version(&self) -> i64 {
        FORMAT_VERSION
    }

    /// The entry this record was chained from, to chain it again onto another head.
    pub fn into_entry(self) -> AuditEntry {
        let r = self.record;
        AuditEntry {
            event: r.event,
            actor: r.actor,
            request_id: r.request_id,
            model: r.model,
            version: r.version,
            input_sha256: r.input_sha256,
            details: r.details,
        }
    }
}

/// Assigns seq, ts, `prev_hash` and `hash` to each entry, continuing from `head` (the newest
/// stored row's seq and hash; `None` for an empty log). Call it inside the exclusive write
/// transaction, with the head read in that same transaction.
pub fn chain_batch(head: Option<(i64, String)>, entries: Vec<AuditEntry>) -> Vec<Chained> {
    let (mut seq, mut hash) = match head {
        Some((seq, hash)) => (u64::try_from(seq).unwrap_or(0), hash),
        None => (0, GENESIS_HASH.to_owned()),
    };
    entries
        .into_iter()
        .map(|entry| {
            seq += 1;
            let ts = Utc::now().trunc_subsecs(6);
            let ts_text = ts.to_rfc3339_opts(SecondsFormat::Micros, true);
            let details_text = canonical_json(&entry.details);
            let next = HashedFields {
                format_version: FORMAT_VERSION,
                seq,
                ts: &ts_text,
                event: &entry.event,
                actor: &entry.actor,
                request_id: entry.request_id.as_deref(),
                model: entry.model.as_deref(),
                version: entry.version.map(i64::from),
                input_sha256: entry.input_sha256.as_deref(),
                details: &details_text,
                prev_hash: &hash,
            }
            .hash();
            let prev_hash = std::mem::replace(&mut hash, next.clone());
            Chained {
                record: AuditRecord {
                    seq,
                    ts,
                    event: entry.event,
                    actor: entry.actor,
                    request_id: entry.request_id,
                    model: entry.model,
                    version: entry.version,
                    input_sha256: entry.input_sha256,
                    details: entry.details,
                    prev_hash,
                    hash: next,
                },
                ts: ts_text,
                details: details_text,
            }
        })
        .collect()
}

/// The audit log in its own SQLite file: one write connection (WAL, `synchronous=FULL`) and a
/// small pool of read-only connections. Writers in other processes are excluded by SQLite's
/// write lock, taken up front with `BEGIN IMMEDIATE`.
pub struct SqliteAuditStore {
    path: PathBuf,
    writer: Mutex<Option<Writer>>,
    readers: SqlitePool,
}

impl std::fmt::Debug for SqliteAuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteAuditStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteAuditStore {
    /// Opens the audit file at `path`, creating it and its directory if needed, private to the
    /// owner (mode 0600, with its `-wal` and `-shm` companions), and migrates it.
    pub async fn open_file(path: PathBuf) -> Result<Self, AuditError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs_err::create_dir_all(parent).map_err(|source| AuditError::CreateDir {
                path: path.clone(),
                source,
            })?;
        }
        super::make_private(&path).map_err(|e| AuditError::Open {
            path: path.clone(),
            source: sqlx::Error::Io(e),
        })?;
        Self::open(path).await
    }

    /// Opens (creating if missing) and migrates the file at `path`.
    async fn open(path: PathBuf) -> Result<Self, AuditError> {
        let open_error = |source| AuditError::Open {
            path: path.clone(),
            source,
        };
        let write_options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let mut conn = SqliteConnection::connect_with(&write_options)
            .await
            .map_err(open_error)?;
        sqlx_macros::migrate!("./migrations/audit")
            .run(&mut conn)
            .await
            .map_err(|source| AuditError::Migrate {
                path: path.clone(),
                source,
            })?;
        // Readers are read-only: the writer's connection is the only one that can change the file.
        let read_options = SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(read_options)
            .await
            .map_err(open_error)?;
        Ok(Self {
            path,
            writer: Mutex::new(Some(Writer { conn, head: None })),
            readers,
        })
    }
}

/// `sql` with `args` bound, for SQLite.
fn bind<'q>(
    sql: &'static str,
    args: Vec<Arg<'q>>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    args.into_iter().fold(sqlx::query(sql), |q, arg| match arg {
        Arg::Int(v) => q.bind(v),
        Arg::Text(v) => q.bind(v),
    })
}

#[async_trait]
impl AuditStore for SqliteAuditStore {
    fn location(&self) -> PathBuf {
        self.path.clone()
    }

    async fn append_batch(
        &self,
        entries: Vec<AuditEntry>,
    ) -> Result<Vec<AuditRecord>, sqlx::Error> {
        let mut guard = self.writer.lock().await;
        let writer = guard.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        writer.append(entries).await
    }

    async fn head(&self) -> Result<Option<(i64, String)>, sqlx::Error> {
        let mut conn = self.readers.acquire().await?;
        read_head(&mut conn).await
    }

    async fn read(&self, query: ReadQuery<'_>) -> Result<Vec<RawRow>, sqlx::Error> {
        let (sql, args) = query.statement();
        bind(sql, args)
            .fetch_all(&self.readers)
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
        let value: Option<i64> = sqlx::query(sql)
            .fetch_one(&self.readers)
            .await?
            .try_get(0)?;
        Ok(value.unwrap_or(0))
    }

    async fn hash_at(&self, seq: i64) -> Result<Option<String>, sqlx::Error> {
        sqlx::query(rows::HASH_AT)
            .bind(seq)
            .fetch_optional(&self.readers)
            .await?
            .map(|row| row.try_get(0))
            .transpose()
    }

    async fn close(&self) {
        // Readers first, so that the writer's connection is the last one open and can
        // checkpoint the WAL into the main file as it closes.
        self.readers.close().await;
        if let Some(writer) = self.writer.lock().await.take()
            && let Err(error) = writer.conn.close().await
        {
            tracing::warn!(path = %self.path.display(), error = %error, "closing the audit log failed");
        }
    }
}

/// The write connection, and the chain head its own last commit left.
struct Writer {
    conn: SqliteConnection,
    /// The seq and hash of the newest row this connection committed; `None` before its first
    /// commit and after a failed batch (then the head is read).
    head: Option<(i64, String)>,
}

impl Writer {
    /// One batch in one transaction, opened and closed by statement text rather than sqlx's
    /// transaction calls: each call to the connection is a round trip to its worker thread (two
    /// thread wake-ups). A batch of up to [`rows::ROWS_PER_INSERT`] entries takes one round trip
    /// when this connection made the last commit (`BEGIN IMMEDIATE`, the insert and `COMMIT` in
    /// one statement list, chained onto the head it remembers), two otherwise (`BEGIN IMMEDIATE`
    /// with the head read, then the insert with `COMMIT`). Another writer (a second process on
    /// the file) that appended meanwhile took the next seq, the primary key: the insert fails,
    /// and the batch is chained again onto the head read inside the transaction. On any other
    /// failure the transaction is rolled back and nothing of the batch stays.
    async fn append(
        &mut self,
        mut entries: Vec<AuditEntry>,
    ) -> Result<Vec<AuditRecord>, sqlx::Error> {
        if let Some(head) = self.head.take() {
            let chained = chain_batch(Some(head.clone()), entries);
            match insert_chained(&mut self.conn, &chained, true).await {
                Ok(()) => {
                    self.head = Some(last_head(&chained)?.unwrap_or(head));
                    return Ok(chained.into_iter().map(|c| c.record).collect());
                }
                Err(e) => {
                    rollback(&mut self.conn).await;
                    if !e
                        .as_database_error()
                        .is_some_and(|d| d.is_unique_violation())
                    {
                        return Err(e);
                    }
                    entries = chained.into_iter().map(Chained::into_entry).collect();
                }
            }
        }
        let written = async {
            let head = sqlx::query(BEGIN_AND_HEAD.as_str())
                .fetch_optional(&mut self.conn)
                .await?
                .map(|row| Ok::<_, sqlx::Error>((row.try_get(0)?, row.try_get(1)?)))
                .transpose()?;
            let chained = chain_batch(head.clone(), entries);
            insert_chained(&mut self.conn, &chained, false).await?;
            Ok::<_, sqlx::Error>((last_head(&chained)?.or(head), chained))
        }
        .await;
        match written {
            Ok((head, chained)) => {
                self.head = head;
                Ok(chained.into_iter().map(|c| c.record).collect())
            }
            Err(e) => {
                rollback(&mut self.conn).await;
                Err(e)
            }
        }
    }
}

/// Rolls back whatever part of a transaction is open (an error only means none is).
async fn rollback(conn: &mut SqliteConnection) {
    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
}

/// The seq and hash of the batch's newest record; `None` for an empty batch.
fn last_head(chained: &[Chained]) -> Result<Option<(i64, String)>, sqlx::Error> {
    chained
        .last()
        .map(|c| Ok((c.seq()?, c.record.hash.clone())))
        .transpose()
}

/// `BEGIN IMMEDIATE` and the head read, as one statement list. IMMEDIATE takes the write lock up
/// front rather than on the first INSERT, so the head read is still the head when the rows go in.
static BEGIN_AND_HEAD: LazyLock<String> =
    LazyLock::new(|| format!("BEGIN IMMEDIATE; {}", rows::HEAD));

/// `INSERTS[begin][commit][k - 1]`: the insert of `k` rows ([`rows::insert_rows_anonymous`]), after
/// `BEGIN IMMEDIATE` when `begin`, followed by `COMMIT` when `commit`.
static INSERTS: LazyLock<[[Vec<String>; 2]; 2]> = LazyLock::new(|| {
    let variant = |begin: bool, commit: bool| {
        (1..=rows::ROWS_PER_INSERT)
            .map(|k| {
                format!(
                    "{}{}{}",
                    if begin { "BEGIN IMMEDIATE; " } else { "" },
                    rows::insert_rows_anonymous(k),
                    if commit { "; COMMIT" } else { "" }
                )
            })
            .collect()
    };
    [
        [variant(false, false), variant(false, true)],
        [variant(true, false), variant(true, true)],
    ]
});

/// Inserts `chained` and commits: its first statement opens the transaction when `begin` (else
/// the caller has), its last one commits. With WAL and synchronous=FULL, COMMIT returns after the
/// WAL is fsynced. An empty batch with `begin` runs nothing.
async fn insert_chained(
    conn: &mut SqliteConnection,
    chained: &[Chained],
    begin: bool,
) -> Result<(), sqlx::Error> {
    let chunks = chained.chunks(rows::ROWS_PER_INSERT);
    let count = chunks.len();
    if count == 0 && !begin {
        sqlx::query("COMMIT").execute(&mut *conn).await?;
    }
    for (i, chunk) in chunks.enumerate() {
        let (_, args) = insert_statement(chunk)?;
        let first = usize::from(begin && i == 0);
        let last = usize::from(i + 1 == count);
        let sql = INSERTS[first][last][chunk.len() - 1].as_str();
        bind(sql, args).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn read_head(conn: &mut SqliteConnection) -> Result<Option<(i64, String)>, sqlx::Error> {
    let row = sqlx::query(rows::HEAD).fetch_optional(&mut *conn).await?;
    row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .transpose()
}
