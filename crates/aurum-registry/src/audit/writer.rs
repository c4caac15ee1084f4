//! The single writer task: owns the write connection, the chain head, and group commit.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{SecondsFormat, SubsecRound as _, Utc};
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection as _, Row as _};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::anchor::Anchor;
use super::canonical::{HashedFields, canonical_json};
use super::{
    AuditEntry, AuditError, AuditRecord, AuditStats, ChainHead, FORMAT_VERSION, GENESIS_HASH, rows,
};

/// The most commands one batch takes from the queue (and so the most rows per transaction).
pub(super) const MAX_BATCH: usize = 512;

/// Where an appended record's outcome goes: `None` for [`AuditLog::append_nowait`](super::AuditLog::append_nowait).
pub(super) type Reply = Option<oneshot::Sender<Result<AuditRecord, AuditError>>>;

pub(super) enum Command {
    Append {
        entry: AuditEntry,
        reply: Reply,
    },
    /// Answered once every command queued before it has been committed or failed.
    Flush {
        reply: oneshot::Sender<Result<(), AuditError>>,
    },
}

/// Counters shared between the writer and every handle.
#[derive(Debug, Default)]
pub(super) struct Counters {
    batches_committed: AtomicU64,
    records_committed: AtomicU64,
    batches_failed: AtomicU64,
    nowait_lost: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> AuditStats {
        AuditStats {
            batches_committed: self.batches_committed.load(Ordering::Relaxed),
            records_committed: self.records_committed.load(Ordering::Relaxed),
            batches_failed: self.batches_failed.load(Ordering::Relaxed),
            nowait_lost: self.nowait_lost.load(Ordering::Relaxed),
        }
    }
}

/// The last committed record: the next one gets `seq + 1` and `prev_hash = hash`.
/// `seq == 0` with the genesis hash stands for an empty log.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub seq: u64,
    pub hash: String,
}

pub(super) async fn read_head(conn: &mut SqliteConnection) -> Result<Head, sqlx::Error> {
    let row = sqlx::query(rows::HEAD).fetch_optional(&mut *conn).await?;
    match row {
        None => Ok(Head {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }),
        Some(row) => {
            let seq: i64 = row.try_get(0)?;
            let seq = u64::try_from(seq).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok(Head {
                seq,
                hash: row.try_get(1)?,
            })
        }
    }
}

pub(super) struct Writer {
    pub conn: SqliteConnection,
    /// `None` after a failed batch: the database, not memory, then says where the chain is.
    pub head: Option<Head>,
    pub path: PathBuf,
    pub anchor: Arc<Anchor>,
    pub counters: Arc<Counters>,
    /// [`AuditOptions::anchor_interval`](super::AuditOptions::anchor_interval): zero anchors
    /// every batch before answering it; above zero the anchor follows within this interval.
    pub interval: Duration,
    pub lag: Lag,
}

/// The deferred anchor's state (an `anchor_interval` above zero).
#[derive(Debug)]
pub(super) struct Lag {
    /// The newest committed head that no anchor write (finished or running) covers yet.
    pending: Option<ChainHead>,
    /// The anchor write running on the blocking pool, and the head it covers.
    in_flight: Option<(JoinHandle<Result<(), String>>, ChainHead)>,
    /// When the last deferred write started.
    last_start: Instant,
    /// A deferred write failed: anchor before answering (as with a zero interval), failing the
    /// callers while it keeps failing, until one succeeds.
    failed: bool,
}

impl Lag {
    /// `failed` when the anchor was found missing or unauthentic at open: then appends fail
    /// from the first batch on, as they do with a zero interval.
    pub(super) fn new(failed: bool) -> Self {
        Self {
            pending: None,
            in_flight: None,
            last_start: Instant::now(),
            failed,
        }
    }
}

impl Writer {
    /// Runs until every handle is gone and the queue is empty, then moves the anchor over
    /// everything committed and closes the connection.
    pub(super) async fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // Everything that queued up while the previous batch was committing becomes the next
        // batch: this is the group commit, and it needs no timer. The only timer is the
        // deferred anchor's.
        loop {
            let mut in_flight = self.lag.in_flight.take();
            let due = (self.lag.pending.is_some() && in_flight.is_none())
                .then(|| self.lag.last_start + self.interval);
            tokio::select! {
                done = async { (&mut in_flight.as_mut().expect("guarded").0).await },
                    if in_flight.is_some() =>
                {
                    let (_, head) = in_flight.take().expect("guarded");
                    self.deferred_done(done, head);
                }
                // Built only when polled: a zero interval never needs the runtime's timer.
                () = async { tokio::time::sleep_until(due.expect("guarded")).await }, if due.is_some() => {
                    self.lag.in_flight = in_flight;
                    self.start_deferred();
                }
                received = queue.recv_many(&mut batch, MAX_BATCH) => {
                    self.lag.in_flight = in_flight;
                    if received == 0 {
                        break;
                    }
                    self.process(&mut batch).await;
                }
            }
        }
        if let Err(detail) = self.anchor_now().await {
            tracing::error!(
                path = %self.path.display(),
                detail = %detail,
                "the audit anchor could not be moved over the last records at shutdown"
            );
        }
        if let Err(error) = self.conn.close().await {
            tracing::warn!(path = %self.path.display(), error = %error, "closing the audit log failed");
        }
        tracing::debug!(path = %self.path.display(), "audit writer stopped");
    }

    /// Starts a background anchor write over the pending head (deferred mode).
    fn start_deferred(&mut self) {
        if self.lag.in_flight.is_some() {
            return;
        }
        if let Some(head) = self.lag.pending.take() {
            self.lag.last_start = Instant::now();
            let anchor = Arc::clone(&self.anchor);
            let covered = head.clone();
            let task = tokio::task::spawn_blocking(move || anchor.advance(&covered, false));
            self.lag.in_flight = Some((task, head));
        }
    }

    /// Records the outcome of a background anchor write.
    fn deferred_done(
        &mut self,
        done: Result<Result<(), String>, tokio::task::JoinError>,
        head: ChainHead,
    ) {
        let outcome = done.unwrap_or_else(|e| Err(format!("anchor task failed: {e}")));
        if let Err(detail) = outcome {
            tracing::error!(
                path = %self.path.display(),
                seq = head.seq,
                detail = %detail,
                "the deferred audit anchor could not be moved; anchoring before answering until it can"
            );
            self.lag.failed = true;
            if self.lag.pending.is_none() {
                self.lag.pending = Some(head);
            }
        }
    }

    /// Waits for a running anchor write, then moves the anchor over every committed record
    /// (flush, close). `Err` carries why it could not.
    async fn anchor_now(&mut self) -> Result<(), String> {
        if let Some((task, head)) = self.lag.in_flight.take() {
            let done = task.await;
            self.deferred_done(done, head);
        }
        let Some(head) = self.lag.pending.take() else {
            return Ok(());
        };
        let anchor = Arc::clone(&self.anchor);
        let covered = head.clone();
        let moved = tokio::task::spawn_blocking(move || anchor.advance(&covered, false))
            .await
            .unwrap_or_else(|e| Err(format!("anchor task failed: {e}")));
        match moved {
            Ok(()) => {
                self.lag.failed = false;
                Ok(())
            }
            Err(detail) => {
                self.lag.failed = true;
                if !self.interval.is_zero() {
                    // Deferred: its callers were answered, so the head stays owed to the anchor
                    // and flush and close report the problem. Anchoring before answering, the
                    // failed batch's own callers were told and the next batch anchors its head.
                    self.lag.pending = Some(head);
                }
                Err(detail)
            }
        }
    }

    async fn process(&mut self, batch: &mut Vec<Command>) {
        let mut entries = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for command in batch.drain(..) {
            match command {
                Command::Append { entry, reply } => {
                    entries.push(entry);
                    replies.push(reply);
                }
                Command::Flush { reply } => flushes.push(reply),
            }
        }
        if entries.is_empty() {
            let anchored = if flushes.is_empty() {
                Ok(())
            } else {
                self.anchor_now().await
            };
            for flush in flushes {
                let _ = flush.send(
                    anchored
                        .clone()
                        .map_err(|detail| AuditError::Anchor { detail }),
                );
            }
            return;
        }

        let size = entries.len();
        let committed = match self.commit(entries).await {
            Ok(records) => Ok(match self.anchor(records).await {
                // A flush also waits for the anchor to cover everything committed.
                Ok(records) if !flushes.is_empty() => self.anchor_now().await.map(|()| records),
                other => other,
            }),
            Err(source) => Err(source),
        };
        match committed {
            Ok(Ok(records)) => {
                tracing::debug!(
                    batch = size,
                    first_seq = records.first().map(|r| r.seq),
                    last_seq = records.last().map(|r| r.seq),
                    "audit batch committed"
                );
                for (record, reply) in records.into_iter().zip(replies) {
                    if let Some(reply) = reply {
                        // The caller may have gone away; the record is committed regardless.
                        let _ = reply.send(Ok(record));
                    }
                }
                for flush in flushes {
                    let _ = flush.send(Ok(()));
                }
            }
            Ok(Err(detail)) => {
                // Committed but not covered by the anchor: nobody is told it is safe.
                tracing::error!(
                    path = %self.path.display(),
                    batch = size,
                    detail = %detail,
                    "audit batch committed but the anchor was not moved; failing its callers"
                );
                let error = || AuditError::Anchor {
                    detail: detail.clone(),
                };
                for reply in replies.into_iter().flatten() {
                    let _ = reply.send(Err(error()));
                }
                for flush in flushes {
                    let _ = flush.send(Err(error()));
                }
            }
            Err(source) => {
                // Nothing of the batch is in the chain; the next batch re-reads the head.
                self.head = None;
                let source = Arc::new(source);
                let lost = replies.iter().filter(|reply| reply.is_none()).count();
                self.counters.batches_failed.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .nowait_lost
                    .fetch_add(lost as u64, Ordering::Relaxed);
                tracing::error!(
                    path = %self.path.display(),
                    batch = size,
                    nowait_lost = lost,
                    error = %source,
                    "audit batch failed; none of its records were written"
                );
                let error = || AuditError::Write {
                    path: self.path.clone(),
                    batch: size,
                    source: Arc::clone(&source),
                };
                for reply in replies.into_iter().flatten() {
                    let _ = reply.send(Err(error()));
                }
                for flush in flushes {
                    let _ = flush.send(Err(error()));
                }
            }
        }
    }

    /// Moves the signed anchor over the last of the committed `records` before anyone hears of
    /// them (a zero interval, or after a deferred write failed), or schedules it (deferred: at
    /// most `interval` after the previous anchor write started); `Err` carries why it could not.
    /// The counters count the batch as committed either way.
    async fn anchor(&mut self, records: Vec<AuditRecord>) -> Result<Vec<AuditRecord>, String> {
        self.counters
            .batches_committed
            .fetch_add(1, Ordering::Relaxed);
        self.counters
            .records_committed
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        let Some(last) = records.last() else {
            return Ok(records);
        };
        let head = ChainHead {
            seq: last.seq,
            hash: last.hash.clone(),
        };
        if self.interval.is_zero() || self.lag.failed {
            self.lag.pending = Some(head);
            return self.anchor_now().await.map(|()| records);
        }
        self.lag.pending = Some(head);
        if self.lag.last_start.elapsed() >= self.interval {
            self.start_deferred();
        }
        Ok(records)
    }

    /// Chains `entries` onto the head and writes them in one transaction. On success the head
    /// moves to the last record; on failure it is left untouched (and the caller forgets it).
    ///
    /// The head is read *inside* the write transaction (`BEGIN IMMEDIATE` holds SQLite's write
    /// lock), so another process appending to the same file — `aurum keys create` while
    /// `aurum serve` runs — cannot fork the chain or make this batch fail: each batch links to
    /// whatever record is last when it takes the lock. The cached head is only a fallback
    /// for logging; the database is always the authority.
    async fn commit(&mut self, entries: Vec<AuditEntry>) -> Result<Vec<AuditRecord>, sqlx::Error> {
        self.head = None;
        // IMMEDIATE takes the write lock up front rather than on the first INSERT.
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut head = read_head(&mut tx).await?;
        let chained: Vec<Chained> = entries
            .into_iter()
            .map(|entry| chain(&mut head, entry))
            .collect();
        for chunk in chained.chunks(rows::ROWS_PER_INSERT) {
            insert(&mut tx, chunk).await?;
        }
        // With WAL and synchronous=FULL, COMMIT returns after the WAL is fsynced.
        tx.commit().await?;

        self.head = Some(head);
        Ok(chained.into_iter().map(|c| c.record).collect())
    }
}

/// A record with the exact text stored (and hashed) for `ts` and `details`.
struct Chained {
    record: AuditRecord,
    ts: String,
    details: String,
}

/// Assigns seq, ts, prev_hash and hash to `entry`, advancing `head`.
fn chain(head: &mut Head, entry: AuditEntry) -> Chained {
    let seq = head.seq + 1;
    let ts = Utc::now().trunc_subsecs(6);
    let ts_text = ts.to_rfc3339_opts(SecondsFormat::Micros, true);
    let details_text = canonical_json(&entry.details);
    let hash = HashedFields {
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
        prev_hash: &head.hash,
    }
    .hash();
    let prev_hash = std::mem::replace(&mut head.hash, hash.clone());
    head.seq = seq;
    let record = AuditRecord {
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
        hash,
    };
    Chained {
        record,
        ts: ts_text,
        details: details_text,
    }
}

/// Inserts `chunk` (at most [`rows::ROWS_PER_INSERT`] records) with one statement.
async fn insert(conn: &mut SqliteConnection, chunk: &[Chained]) -> Result<(), sqlx::Error> {
    let mut statement = sqlx::query(rows::insert_rows(chunk.len()));
    for Chained {
        record,
        ts,
        details,
    } in chunk
    {
        let seq = i64::try_from(record.seq).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        statement = statement
            .bind(seq)
            .bind(FORMAT_VERSION)
            .bind(ts.as_str())
            .bind(record.event.as_str())
            .bind(record.actor.as_str())
            .bind(record.request_id.as_deref())
            .bind(record.model.as_deref())
            .bind(record.version.map(i64::from))
            .bind(record.input_sha256.as_deref())
            .bind(details.as_str())
            .bind(record.prev_hash.as_str())
            .bind(record.hash.as_str());
    }
    statement.execute(conn).await?;
    Ok(())
}
