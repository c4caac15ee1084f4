//! The tamper-evident audit log: every state change and every prediction, append-only and
//! hash-chained, in its own SQLite file (the service opens `<data_dir>/audit.db`).
//!
//! # Why a hash chain
//!
//! Regulators and incident reviews ask "which model scored this input, when, for whom, and was
//! anything changed afterwards?". The log answers the first three; the chain answers the last.
//! Each [`AuditRecord`] stores `prev_hash`, the `hash` of the record before it, and its own
//! `hash` covers every other field including `prev_hash`. Altering, inserting or deleting a record
//! in the middle therefore breaks the chain at that point, and [`AuditLog::verify`] names the first
//! broken record and why. SQL triggers also refuse `UPDATE` and `DELETE` on the table, but they
//! only stop accidents: anyone who can write the file can drop them, and the chain is what catches
//! that. What the chain cannot catch on its own is *truncation* of the newest records, or a
//! rewrite that recomputes every hash after an edited record (the chain has no secret): the
//! signed anchor outside the database catches both (see [`anchor`](self::anchor) and
//! [`AnchorOptions`]), and [`AuditLog::verify`] checks it.
//!
//! # Hash-chain format (format version 1)
//!
//! `seq` runs 1, 2, 3… without gaps; record 1 has `prev_hash` = 64 zeros. `hash` is the
//! lowercase hex SHA-256 of the canonical JSON array
//! `[1, seq, ts, event, actor, request_id, model, version, input_sha256, details, prev_hash]`
//! (absent optional fields as `null`, `ts` as stored: RFC 3339 UTC with microseconds and `Z`).
//! Canonical means no whitespace, object keys sorted recursively, one spelling per number and
//! string; see [`canonical_json`]. `details` is hashed in canonical form, so key order (in the
//! caller's `Value` or in storage) never matters. The leading `1` is the format version, also
//! stored per row: a future change of encoding bumps it, and verification refuses versions it does
//! not know instead of reporting false tampering. The schema is versioned by the migrations in
//! `migrations/audit`; a binary older than the file refuses to open it ([`AuditError::Migrate`]).
//!
//! # Durability and batching
//!
//! One writer task owns the only write connection (WAL, `synchronous=FULL`) and the chain head.
//! [`AuditLog::append`] queues the entry with a reply channel; the writer takes everything queued
//! (up to 512 entries), assigns seq, ts, `prev_hash` and `hash` in queue order, inserts the whole
//! batch in **one** transaction and commits, and only then answers every waiter. Entries that
//! arrive while a commit is in flight form the next batch, so under load many appends share one
//! fsync (group commit) and an idle log commits each entry immediately, without any timer.
//!
//! - **`append(..).await` returned `Ok`**: the record is committed and the WAL fsynced. It
//!   survives a process crash, and a power loss to the extent SQLite and the disk honour fsync.
//!   It is visible to every connection opened afterwards. With the default
//!   [`AuditOptions::anchor_interval`] (zero) the signed anchor covers it too; with an interval,
//!   the anchor follows within that interval, at [`AuditLog::flush`] / [`AuditLog::close`], or
//!   at the next open (see [`AuditOptions`] for the window this leaves).
//! - **`append` returned [`AuditError::Anchor`]**: the record was committed but the anchor could
//!   not be moved over it (it is missing or not authentic, or the disk failed); the caller must
//!   not treat the record as acknowledged.
//! - **`append` returned `Err`**: the record was not written (the whole batch was rolled back) and
//!   the chain did not advance; the next batch continues from the last committed record.
//! - **[`AuditLog::append_nowait`] returned `Ok`**: the entry is queued, nothing more. It is
//!   usually committed within one commit time (milliseconds), but it is lost if the process dies
//!   first, and if its batch fails it is dropped, logged at `error` and counted in
//!   [`AuditStats::nowait_lost`]. It becomes durable when a later [`AuditLog::flush`] (or
//!   [`AuditLog::close`]) returns `Ok`. The queue holds 16 384 entries; when it is full,
//!   `append_nowait` refuses with [`AuditError::QueueFull`] instead of blocking or dropping.
//! - **Shutdown**: `close().await` flushes; when it is the last handle it also waits for the
//!   writer to finish and close the file. Dropping the last handle lets the writer drain the queue
//!   in the background, which only completes if the Tokio runtime keeps running, so call `close`.
//!
//! # Input privacy
//!
//! By default a prediction record stores only [`hash_input`] of the input, never the input
//! itself. [`mask_fields`] builds the part an operator explicitly allowed in clear (none by
//! default) for `details`.
//!
//! # Backends
//!
//! SQLite today. The SQL in `rows` is standard with `$n` placeholders, seq is assigned by the
//! single writer rather than by the database, and the hash does not depend on how the database
//! stores JSON, so a PostgreSQL backend needs its own migration (a PL/pgSQL trigger instead of
//! `RAISE(ABORT)`) and connection setup, not a different design.

mod anchor;
pub mod canonical;
pub mod rows;
mod store;
mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use anchor::{AnchorKey, AnchorOptions, MIN_KEY_BYTES};
pub use canonical::{canonical_json, hash_input, mask_fields};
pub use store::{
    AuditStore, Chained, ReadQuery, ScalarQuery, SqliteAuditStore, chain_batch, insert_statement,
};
pub use verify::{AnchorProblem, BreakReason, BrokenRecord, VerifyReport};

use self::anchor::{Anchor, Found};

use self::rows::RawRow;
use self::store::{ReadQuery as Read, ScalarQuery as Scalar};
use self::verify::ChainChecker;
use self::writer::{Command, Counters, Writer};

/// Format version of the records this code writes (see the module docs).
const FORMAT_VERSION: i64 = 1;
/// `prev_hash` of record 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Entries that may wait for the writer before [`AuditLog::append_nowait`] refuses.
const QUEUE_CAPACITY: usize = 16_384;
/// The most records one read ([`AuditLog::list`], [`AuditLog::tail`]) returns.
pub const MAX_READ: u32 = 10_000;
/// Rows per page while verifying: memory stays flat however long the log is.
const VERIFY_PAGE: i64 = 256;
/// Read connections of the SQLite store; reads never block the writer (WAL).
const READERS: u32 = 4;

/// Event names used by aurum. The log accepts any dotted lowercase name; these are the ones the
/// service writes.
pub mod event {
    pub const DATASET_IMPORT: &str = "dataset.import";
    pub const TRAINING_START: &str = "training.start";
    pub const TRAINING_FINISH: &str = "training.finish";
    pub const MODEL_REGISTER: &str = "model.register";
    pub const ALIAS_MOVE: &str = "alias.move";
    pub const KEY_CREATE: &str = "key.create";
    pub const KEY_REVOKE: &str = "key.revoke";
    pub const PREDICTION: &str = "prediction";
}

/// The actor recorded for actions taken through the command line rather than with an API key.
pub const ACTOR_CLI: &str = "cli";

/// Errors of the audit log, grouped by who is at fault.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The caller's entry is malformed. Caller's fault; retrying will not help.
    #[error("invalid audit entry: {0}")]
    InvalidEntry(String),
    /// The writer cannot keep up: `capacity` entries are already waiting. Back off or `append`.
    #[error("audit queue is full ({capacity} entries waiting)")]
    QueueFull { capacity: usize },
    /// The writer has stopped (the runtime is shutting down). Nothing was written.
    #[error("audit log is closed")]
    Closed,
    /// The directory that should hold the file could not be created.
    #[error("cannot create the directory of audit log {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file could not be opened or configured.
    #[error("cannot open audit log {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate audit log {}", path.display())]
    Migrate {
        path: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A read failed.
    #[error("reading audit log {} failed", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    /// The batch this entry was in could not be committed; none of it was written.
    #[error("writing a batch of {batch} records to audit log {} failed", path.display())]
    Write {
        path: PathBuf,
        batch: usize,
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// The anchor key could not be read or created, or is too short.
    #[error("audit anchor key: {detail}")]
    AnchorKey { detail: String },
    /// The batch was committed, but the signed anchor could not be moved over it: it is missing or
    /// not authentic (refused rather than replaced), or writing it failed. Not acknowledged.
    #[error("audit anchor: {detail}")]
    Anchor { detail: String },
    /// A stored record cannot be decoded (edited file, or a newer format).
    #[error("audit log {}: record {seq} cannot be decoded: {detail}", path.display())]
    Corrupt {
        path: PathBuf,
        seq: i64,
        detail: String,
    },
}

/// What a caller records; the log adds seq, ts and the hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Dotted lowercase name, for example [`event::PREDICTION`].
    pub event: String,
    /// API key name, or [`ACTOR_CLI`].
    pub actor: String,
    pub request_id: Option<String>,
    pub model: Option<String>,
    pub version: Option<u32>,
    /// [`hash_input`] of the prediction input, or of an imported dataset.
    pub input_sha256: Option<String>,
    /// A JSON object: outputs, reasons, `latency_us`, masked fields…
    pub details: Value,
}

impl AuditEntry {
    /// An entry with no optional fields and empty `details`.
    pub fn new(event: impl Into<String>, actor: impl Into<String>) -> Self {
        Self {
            event: event.into(),
            actor: actor.into(),
            request_id: None,
            model: None,
            version: None,
            input_sha256: None,
            details: Value::Object(serde_json::Map::new()),
        }
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    pub fn with_model(mut self, model: impl Into<String>, version: Option<u32>) -> Self {
        self.model = Some(model.into());
        self.version = version;
        self
    }

    pub fn with_input_sha256(mut self, input_sha256: impl Into<String>) -> Self {
        self.input_sha256 = Some(input_sha256.into());
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    fn validate(&self) -> Result<(), AuditError> {
        let invalid = |message: String| Err(AuditError::InvalidEntry(message));
        let dotted_name = self.event.len() <= 64
            && self.event.split('.').all(|part| {
                part.starts_with(|c: char| c.is_ascii_lowercase())
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        if !dotted_name {
            return invalid(format!(
                "event {:?} must be dotted lowercase words (a-z, 0-9, _), at most 64 bytes",
                self.event
            ));
        }
        if self.actor.is_empty() || self.actor.len() > 256 {
            return invalid("actor must be 1 to 256 bytes".to_owned());
        }
        if self
            .request_id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > 256)
        {
            return invalid("request_id must be 1 to 256 bytes".to_owned());
        }
        if self
            .model
            .as_ref()
            .is_some_and(|model| model.is_empty() || model.len() > 256)
        {
            return invalid("model must be 1 to 256 bytes".to_owned());
        }
        let is_sha256 =
            |h: &String| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if self.input_sha256.as_ref().is_some_and(|h| !is_sha256(h)) {
            return invalid("input_sha256 must be 64 lowercase hex digits".to_owned());
        }
        if !self.details.is_object() {
            return invalid("details must be a JSON object".to_owned());
        }
        Ok(())
    }
}

/// One committed record of the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub seq: u64,
    /// When the writer chained the record, UTC, microsecond precision.
    pub ts: DateTime<Utc>,
    pub event: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub model: Option<String>,
    pub version: Option<u32>,
    pub input_sha256: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record's contents call for; equals `hash` unless the record was altered.
    pub fn compute_hash(&self) -> String {
        canonical::HashedFields {
            format_version: FORMAT_VERSION,
            seq: self.seq,
            ts: &self.ts.to_rfc3339_opts(SecondsFormat::Micros, true),
            event: &self.event,
            actor: &self.actor,
            request_id: self.request_id.as_deref(),
            model: self.model.as_deref(),
            version: self.version.map(i64::from),
            input_sha256: self.input_sha256.as_deref(),
            details: &canonical_json(&self.details),
            prev_hash: &self.prev_hash,
        }
        .hash()
    }
}

/// Filter for [`AuditLog::list`]: records with `seq > after_seq`, ascending, at most `limit`
/// (capped at [`MAX_READ`]; 0 returns nothing), optionally only one `event` and/or one `model`.
/// Page by passing the last seq received as the next `after_seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub after_seq: u64,
    pub limit: u32,
    pub event: Option<String>,
    pub model: Option<String>,
}

/// The newest record's position in the chain: the value to keep elsewhere to detect truncation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

/// Writer counters since this log was opened, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Committed transactions; each holds one or more records.
    pub batches_committed: u64,
    pub records_committed: u64,
    pub batches_failed: u64,
    /// [`AuditLog::append_nowait`] entries dropped because their batch failed.
    pub nowait_lost: u64,
}

/// How an audit log is run; [`AuditLog::open_with_options`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditOptions {
    /// How far the signed anchor may lag behind the committed records.
    ///
    /// - **Zero (the default)**: the anchor is moved after every committed batch and before its
    ///   callers are answered, so every acknowledged record is anchored. A commit costs three
    ///   fsyncs: the WAL, the anchor's temporary file and its directory.
    /// - **Above zero**: callers are answered once the WAL is fsynced (the record survives a
    ///   crash exactly as before); the anchor is moved in the background at most this long
    ///   after the previous anchor write started, by [`AuditLog::flush`] and [`AuditLog::close`],
    ///   and at the next open. A commit costs one fsync. While the process runs, the anchor
    ///   covers every record committed more than about one interval (plus one anchor write)
    ///   ago; records inside that window are protected by the chain only, so removing them or
    ///   rewriting them with recomputed hashes is not detected until the anchor has moved over
    ///   them. After a crash the window is whatever was committed in the last interval; the next
    ///   open checks that the chain continues intact from the anchored record to the head before
    ///   it anchors the head.
    pub anchor_interval: Duration,
}

/// Handle to an open audit log. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    anchor: Arc<Anchor>,
    queue: mpsc::Sender<Command>,
    store: Arc<dyn AuditStore>,
    counters: Arc<Counters>,
    writer: JoinHandle<()>,
}

impl AuditLog {
    /// Opens (creating it and its directory if needed) the audit log at `path`, migrates it,
    /// reads the chain head and starts the writer task, anchored with the defaults of
    /// [`AnchorOptions::beside`]. Must be called inside a Tokio runtime.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let anchor = AnchorOptions::beside(path.as_ref());
        Self::open_with(path, anchor).await
    }

    /// [`AuditLog::open`] with the anchor's file and key given. The database and its `-wal` and
    /// `-shm` files are made private to the owner (mode 0600). A new log is anchored at seq 0; a
    /// log that was never anchored (no anchor, no lock file) is anchored at its head once its
    /// chain verified. A missing or unauthentic anchor is logged, not repaired: appends then fail
    /// with [`AuditError::Anchor`] and [`AuditLog::verify`] names the problem.
    pub async fn open_with(
        path: impl AsRef<Path>,
        anchor: AnchorOptions,
    ) -> Result<Self, AuditError> {
        Self::open_with_options(path, anchor, AuditOptions::default()).await
    }

    /// [`AuditLog::open_with`] with [`AuditOptions`] (how far the anchor may lag).
    pub async fn open_with_options(
        path: impl AsRef<Path>,
        anchor: AnchorOptions,
        options: AuditOptions,
    ) -> Result<Self, AuditError> {
        let store = SqliteAuditStore::open_file(path.as_ref().to_path_buf()).await?;
        Self::open_store(Arc::new(store), anchor, options).await
    }

    /// Starts an audit log over any [`AuditStore`] (the SQLite file of
    /// [`AuditLog::open_with_options`], or a PostgreSQL database): reads the chain head, opens
    /// the anchor and starts the writer task. Several processes may open the same store at once;
    /// each keeps its own anchor, and every anchor covers a prefix of the one chain.
    pub async fn open_store(
        store: Arc<dyn AuditStore>,
        anchor: AnchorOptions,
        options: AuditOptions,
    ) -> Result<Self, AuditError> {
        let path = store.location();
        let opened = tokio::task::spawn_blocking(move || Anchor::open(&anchor))
            .await
            .map_err(|_| AuditError::Closed)?
            .map_err(|detail| AuditError::AnchorKey { detail })?;
        let anchor = Arc::new(opened.anchor);
        let head = match store.head().await {
            Ok(Some((seq, hash))) => ChainHead {
                seq: u64::try_from(seq).unwrap_or(0),
                hash,
            },
            Ok(None) => anchor::genesis(),
            Err(source) => return Err(AuditError::Open { path, source }),
        };

        tracing::info!(
            path = %path.display(),
            head_seq = head.seq,
            head_hash = %head.hash,
            "audit log opened"
        );
        let counters = Arc::new(Counters::default());
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let head_seq = head.seq;
        let writer = Writer {
            store: Arc::clone(&store),
            path: path.clone(),
            anchor: Arc::clone(&anchor),
            counters: Arc::clone(&counters),
            interval: options.anchor_interval,
            // Not authentic, or missing from a log with records: the first batch anchors before
            // answering (and fails while the problem stands), whatever the interval.
            lag: writer::Lag::new(match opened.found {
                Found::Valid(_) => false,
                Found::Missing => head_seq > 0,
                Found::Invalid(_) => true,
            }),
        };
        let writer = tokio::spawn(writer.run(receiver));
        let log = Self {
            inner: Arc::new(Inner {
                path,
                anchor,
                queue,
                store,
                counters,
                writer,
            }),
        };
        log.check_anchor_at_open(opened.found, opened.first_use, head_seq)
            .await?;
        Ok(log)
    }

    /// Anchors a new log, or an old one that never was; moves a lagging anchor over an intact
    /// chain ([`AuditLog::catch_up`]); reports (does not repair) anything else.
    async fn check_anchor_at_open(
        &self,
        found: Found,
        first_use: bool,
        head_seq: u64,
    ) -> Result<(), AuditError> {
        let anchor_path = self.inner.anchor.path().display().to_string();
        match found {
            Found::Valid(anchored) if anchored.seq > head_seq => tracing::error!(
                path = %self.inner.path.display(),
                anchor_seq = anchored.seq,
                head_seq,
                "audit log is shorter than its signed anchor: records were removed"
            ),
            Found::Valid(anchored) if anchored.seq < head_seq => self.catch_up(anchored).await?,
            Found::Valid(_) => {}
            Found::Invalid(detail) => tracing::error!(
                anchor = %anchor_path,
                detail = %detail,
                "audit anchor is not authentic; appends will fail until it is investigated"
            ),
            Found::Missing if head_seq == 0 => self.advance_anchor(anchor::genesis(), true).await?,
            Found::Missing if first_use => {
                // A log written before anchoring existed: anchor what verifies, once.
                let report = self.verify_chain().await?.0;
                match (report.ok, report.head) {
                    (true, Some(head)) => {
                        self.advance_anchor(
                            ChainHead {
                                seq: head.seq,
                                hash: head.hash,
                            },
                            true,
                        )
                        .await?;
                        tracing::warn!(
                            anchor = %anchor_path,
                            seq = head.seq,
                            "existing audit log verified and anchored for the first time"
                        );
                    }
                    _ => tracing::error!(
                        anchor = %anchor_path,
                        "existing audit log does not verify; not anchoring it (appends will fail)"
                    ),
                }
            }
            Found::Missing => tracing::error!(
                anchor = %anchor_path,
                head_seq,
                "audit anchor is missing although this log was anchored before; appends will fail"
            ),
        }
        Ok(())
    }

    /// Moves an anchor that lags behind the head (a crash before a deferred or synchronous
    /// anchor write) over the records after it, once the record at the anchored seq has the
    /// anchored hash and the chain continues intact from there to the head. Otherwise leaves it
    /// where it is, for [`AuditLog::verify`] to name.
    async fn catch_up(&self, anchored: ChainHead) -> Result<(), AuditError> {
        if anchored.seq > 0 && self.hash_at(anchored.seq).await?.as_deref() != Some(&anchored.hash)
        {
            tracing::error!(
                seq = anchored.seq,
                "audit record at the anchored seq does not have the anchored hash; not moving the anchor"
            );
            return Ok(());
        }
        let hash = if anchored.seq == 0 {
            GENESIS_HASH
        } else {
            &anchored.hash
        };
        let mut checker = ChainChecker::after(anchored.seq, hash);
        let after = i64::try_from(anchored.seq).unwrap_or(i64::MAX);
        let last = self.max_seq().await?;
        let mut page = self.verify_page(after, last).await?;
        while let Some(next) = page.last().map(|row| row.seq) {
            if !checker.check_page(&page) {
                break;
            }
            page = self.verify_page(next, last).await?;
        }
        let report = checker.into_report();
        match (report.ok, report.head) {
            (true, Some(head)) => {
                let from = anchored.seq;
                self.advance_anchor(head.clone(), false).await?;
                tracing::warn!(
                    from,
                    to = head.seq,
                    "audit anchor was behind the log (the process stopped before moving it); moved over the intact records"
                );
            }
            _ => tracing::error!(
                seq = anchored.seq,
                "audit chain after the anchored record does not verify; not moving the anchor"
            ),
        }
        Ok(())
    }

    async fn advance_anchor(&self, head: ChainHead, create: bool) -> Result<(), AuditError> {
        let anchor = Arc::clone(&self.inner.anchor);
        tokio::task::spawn_blocking(move || anchor.advance(&head, create))
            .await
            .map_err(|_| AuditError::Closed)?
            .map_err(|detail| AuditError::Anchor { detail })
    }

    /// The file this log writes.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Appends `entry` and returns the committed record once it is durable on disk.
    /// See the module docs for the exact guarantee and for batching. Dropping the future after
    /// the entry was queued does not withdraw it: it is still written.
    pub async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, AuditError> {
        entry.validate()?;
        let (reply, answer) = oneshot::channel();
        self.inner
            .queue
            .send(Command::Append {
                entry,
                reply: Some(reply),
            })
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// Queues `entry` without waiting for it to be written. `Ok` means queued, not durable:
    /// see the module docs. Never blocks; refuses with [`AuditError::QueueFull`] under overload.
    pub fn append_nowait(&self, entry: AuditEntry) -> Result<(), AuditError> {
        entry.validate()?;
        self.inner
            .queue
            .try_send(Command::Append { entry, reply: None })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => AuditError::QueueFull {
                    capacity: QUEUE_CAPACITY,
                },
                mpsc::error::TrySendError::Closed(_) => AuditError::Closed,
            })
    }

    /// Returns once every entry queued before this call (by any handle) has been processed: after
    /// `Ok`, those entries are durable, except `append_nowait` entries whose batch failed, which
    /// are counted in [`AuditStats::nowait_lost`]. `Err` when the batch this flush rode in failed.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .queue
            .send(Command::Flush { reply })
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// Flushes, then gives up this handle. When it is the last one, also waits for the writer to
    /// finish and close the file.
    pub async fn close(self) -> Result<(), AuditError> {
        let flushed = self.flush().await;
        if let Ok(inner) = Arc::try_unwrap(self.inner) {
            let Inner {
                path,
                queue,
                store,
                writer,
                ..
            } = inner;
            drop(queue);
            if let Err(error) = writer.await
                && error.is_panic()
            {
                std::panic::resume_unwind(error.into_panic());
            }
            store.close().await;
            tracing::debug!(path = %path.display(), "audit log closed");
        }
        flushed
    }

    /// Writer counters since open.
    pub fn stats(&self) -> AuditStats {
        self.inner.counters.snapshot()
    }

    /// The record with this seq.
    pub async fn get(&self, seq: u64) -> Result<Option<AuditRecord>, AuditError> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        Ok(self.read(Read::Get { seq }).await?.into_iter().next())
    }

    /// The newest `n` records (at most [`MAX_READ`]), in ascending seq.
    pub async fn tail(&self, n: u32) -> Result<Vec<AuditRecord>, AuditError> {
        self.read(Read::Tail {
            n: i64::from(n.min(MAX_READ)),
        })
        .await
    }

    /// Records matching `query`, in ascending seq.
    pub async fn list(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, AuditError> {
        self.read(Read::List {
            after: i64::try_from(query.after_seq).unwrap_or(i64::MAX),
            limit: i64::from(query.limit.min(MAX_READ)),
            event: query.event.as_deref(),
            model: query.model.as_deref(),
        })
        .await
    }

    /// The records of `event` written for `request_id` (oldest first, at most 16).
    pub async fn by_request(
        &self,
        request_id: &str,
        event: &str,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        self.read(Read::ByRequest { request_id, event }).await
    }

    /// Number of records stored.
    pub async fn count(&self) -> Result<u64, AuditError> {
        let count = self
            .inner
            .store
            .scalar(Scalar::Count)
            .await
            .map_err(|source| self.read_error(source))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The newest committed record's seq and hash; `None` for an empty log.
    pub async fn head(&self) -> Result<Option<ChainHead>, AuditError> {
        let head = self
            .inner
            .store
            .head()
            .await
            .map_err(|source| self.read_error(source))?;
        head.map(|(seq, hash)| {
            let seq =
                u64::try_from(seq).map_err(|_| self.corrupt(seq, "negative seq".to_owned()))?;
            Ok(ChainHead { seq, hash })
        })
        .transpose()
    }

    /// Rows of `query`, decoded.
    async fn read(&self, query: Read<'_>) -> Result<Vec<AuditRecord>, AuditError> {
        let rows = self
            .inner
            .store
            .read(query)
            .await
            .map_err(|source| self.read_error(source))?;
        rows.into_iter()
            .map(|raw| {
                let seq = raw.seq;
                raw.into_record()
                    .map_err(|detail| self.corrupt(seq, detail))
            })
            .collect()
    }

    /// The largest stored seq, 0 for an empty log.
    async fn max_seq(&self) -> Result<i64, AuditError> {
        self.inner
            .store
            .scalar(Scalar::MaxSeq)
            .await
            .map_err(|source| self.read_error(source))
    }

    /// Checks the whole chain, from seq 1 to the newest record at the time of the call, a page at
    /// a time: memory does not grow with the log, hashing runs on the blocking pool (off the async
    /// threads) while the next page is read. Stops at the first broken record. Records appended
    /// during verification are not checked.
    ///
    /// Then checks the signed anchor (read *before* the chain, so that a concurrent append cannot
    /// make it look ahead of the log): it must be authentic, the log must reach its seq, and the
    /// record there must have its hash. A problem is in [`VerifyReport::anchor_problem`].
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        let anchor = Arc::clone(&self.inner.anchor);
        let found = tokio::task::spawn_blocking(move || anchor.read())
            .await
            .map_err(|_| AuditError::Closed)?;
        let (mut report, last) = self.verify_chain().await?;
        let last = u64::try_from(last).unwrap_or(0);
        report.anchor_problem = match found {
            Found::Missing if last == 0 => None,
            Found::Missing => Some(AnchorProblem::Missing {
                path: self.inner.anchor.path().to_path_buf(),
                last_seq: last,
            }),
            Found::Invalid(detail) => Some(AnchorProblem::Invalid { detail }),
            Found::Valid(anchored) => {
                let problem = if anchored.seq > last {
                    Some(AnchorProblem::Truncated {
                        anchor_seq: anchored.seq,
                        last_seq: last,
                    })
                } else if anchored.seq == 0 {
                    None
                } else {
                    let stored = self.hash_at(anchored.seq).await?;
                    (stored.as_deref() != Some(anchored.hash.as_str()))
                        .then_some(AnchorProblem::Rewritten { seq: anchored.seq })
                };
                report.anchor = Some(anchored);
                problem
            }
        };
        if let Some(problem) = &report.anchor_problem {
            report.ok = false;
            tracing::warn!(
                path = %self.inner.path.display(),
                problem = %problem,
                "audit anchor check failed"
            );
        }
        Ok(report)
    }

    /// The stored hash of record `seq`, as text, without decoding the rest of the row.
    async fn hash_at(&self, seq: u64) -> Result<Option<String>, AuditError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.inner
            .store
            .hash_at(seq)
            .await
            .map_err(|source| self.read_error(source))
    }

    /// The chain part of [`AuditLog::verify`], and the last seq it covered.
    async fn verify_chain(&self) -> Result<(VerifyReport, i64), AuditError> {
        let last = self.max_seq().await?;
        let mut checker = ChainChecker::new();
        let mut page = self.verify_page(0, last).await?;
        while let Some(after) = page.last().map(|row| row.seq) {
            let check = tokio::task::spawn_blocking(move || {
                let intact = checker.check_page(&page);
                (checker, intact)
            });
            let (checked, next) = tokio::join!(check, self.verify_page(after, last));
            let intact;
            (checker, intact) = match checked {
                Ok(result) => result,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => return Err(AuditError::Closed),
            };
            if !intact {
                break;
            }
            page = next?;
        }
        let report = checker.into_report();
        match &report.first_broken {
            None => tracing::info!(
                path = %self.inner.path.display(),
                records = report.records_checked,
                "audit chain verified"
            ),
            Some(broken) => tracing::warn!(
                path = %self.inner.path.display(),
                seq = broken.seq,
                reason = %broken.reason,
                "audit chain broken"
            ),
        }
        Ok((report, last))
    }

    /// Up to [`VERIFY_PAGE`] rows with `after < seq <= last`, ascending.
    async fn verify_page(&self, after: i64, last: i64) -> Result<Vec<RawRow>, AuditError> {
        if after >= last {
            return Ok(Vec::new());
        }
        self.inner
            .store
            .read(Read::VerifyPage {
                after,
                last,
                limit: VERIFY_PAGE,
            })
            .await
            .map_err(|source| self.read_error(source))
    }

    fn read_error(&self, source: sqlx::Error) -> AuditError {
        AuditError::Read {
            path: self.inner.path.clone(),
            source,
        }
    }

    fn corrupt(&self, seq: i64, detail: String) -> AuditError {
        AuditError::Corrupt {
            path: self.inner.path.clone(),
            seq,
            detail,
        }
    }
}

/// Creates `path` if needed and makes it and its `-wal` / `-shm` companions mode 0600 (SQLite
/// creates the companions with the database's mode, so a private database keeps them private).
pub(crate) fn make_private(path: &Path) -> std::io::Result<()> {
    drop(
        anchor::private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
    );
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                    Ok(()) => {}
                    // SQLite removes `-wal` and `-shm` when another connection (another
                    // process) closes the database last: a file that is gone needs nothing.
                    Err(e) if !suffix.is_empty() && e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(std::io::Error::new(
                            e.kind(),
                            format!("{}: {e}", file.display()),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
