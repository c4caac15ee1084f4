//! The single writer task of a process: owns the queue, group commit and the anchor; the store
//! owns the rows and the chain head.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::anchor::Anchor;
use super::store::AuditStore;
use super::{AuditEntry, AuditError, AuditRecord, AuditStats, ChainHead};

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

pub(super) struct Writer {
    pub store: Arc<dyn AuditStore>,
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

    /// Chains `entries` onto the head and writes them in one transaction.
    ///
    /// The head is read *inside* the store's exclusive write transaction, so another process
    /// appending to the same log — `aurum keys create` while `aurum serve` runs, or another
    /// replica on the same database — cannot fork the chain or make this batch fail: each batch
    /// links to whatever record is last when it takes the lock. The database is the authority.
    async fn commit(&mut self, entries: Vec<AuditEntry>) -> Result<Vec<AuditRecord>, sqlx::Error> {
        self.store.append_batch(entries).await
    }
}
