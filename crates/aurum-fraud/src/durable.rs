//! Durable online state: an append-only event log plus periodic snapshots.
//!
//! Why a log and snapshots rather than writing the state itself on every event: the state of a
//! busy terminal is kilobytes, an event is a hundred bytes. The log makes each acknowledged event
//! durable with one sequential write and one `fsync` per batch; snapshots bound how much log a
//! recovery has to replay.
//!
//! Layout of a state directory:
//! - `log-<n>.wal` segments, `n` increasing. Each starts with the 8-byte magic `AURFLOG1`, then
//!   records `[u32 LE payload length][first 8 bytes of SHA-256(payload)][payload]`, the payload
//!   being the JSON of one [`LogRecord`] (an event or a label).
//! - `snapshot.json`: the engine state covering every segment before `segment_from`, written to a
//!   temporary file, fsynced, renamed over the old one, and the directory fsynced.
//!
//! Recovery ([`DurableEngine::recover`]) loads the snapshot and replays the later segments through
//! the same engine calls as live traffic. A torn tail in the last segment (a record cut short or
//! failing its checksum, as a crash mid-write leaves it) is cut off and reported; a bad record
//! anywhere else is corruption and refuses to load.
//!
//! Writes go "apply in memory and queue the record, then wait until the queue is on disk, then
//! answer": an event is acknowledged only after its record is on disk, and a failed write poisons
//! the engine (memory may be ahead of the disk), so the caller must recover. The wait is a group
//! commit: the first waiter to find no write in flight becomes the committer, takes everything
//! queued, writes it with one `write` and one `fsync`, and wakes every waiter it covered; what
//! was queued meanwhile goes in the next commit. Under load, concurrent calls share fsyncs
//! instead of each paying one while holding the state. Records are queued in the same critical
//! section that applies them, so the log holds them in application order and replays to the
//! same state. A call sees the events applied before it, durable or not yet: an answer computed
//! from a not-yet-durable event is itself queued behind it, so it is never acknowledged before
//! what it read.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::{EngineSnapshot, FeatureEngine, LabelOutcome, LabelRef};
use crate::error::{FraudError, Result};
use crate::event::Event;
use crate::replay::{TrainingLabel, replay_into};
use crate::spec::FeatureSpec;
use crate::store::ShardedStore;

const MAGIC: &[u8; 8] = b"AURFLOG1";
const HEADER: usize = 4 + 8;
/// A record larger than this is treated as damage, not an allocation request.
const MAX_RECORD: usize = 16 << 20;
const SNAPSHOT: &str = "snapshot.json";

/// One log record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogRecord {
    Event(Event),
    Label {
        target: LabelRef,
        fraud: bool,
        known_at: i64,
    },
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    /// Segments numbered below this are covered by `engine`.
    segment_from: u64,
    engine: EngineSnapshot,
}

/// What recovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub snapshot_loaded: bool,
    pub segments_replayed: usize,
    pub events_replayed: u64,
    pub labels_replayed: u64,
    /// Bytes cut from the end of the last segment (a write interrupted by a crash).
    pub torn_tail_bytes: u64,
}

/// The log's tail in memory: records applied to the engine and not yet handed to the file.
/// Held while an event is checked, applied and encoded, so the order of records here is the order
/// in which the engine applied them.
struct Pending {
    buf: Vec<u8>,
    records: u64,
    /// Number of the last record added (records are numbered from 1 since the engine opened).
    last: u64,
    poisoned: bool,
}

/// The file end of the log; held only by the committer (and by snapshots).
struct Writer {
    file: fs_err::File,
    segment: u64,
    since_snapshot: u64,
    /// The buffer being written, kept to reuse its allocation.
    spare: Vec<u8>,
}

/// How far the log is on disk, whether a committer is at work, and who is to be told when
/// their records are on disk ([`DurableEngine::when_durable`]).
#[derive(Default)]
struct Commit {
    durable: u64,
    committing: bool,
    failed: bool,
    waiters: Vec<(u64, Notify)>,
    /// Whether the background committer thread has been started.
    background: bool,
}

/// What [`DurableEngine::when_durable`] calls once its records are on disk (or cannot be).
pub type Notify = Box<dyn FnOnce(Result<()>) + Send>;

/// How long the background committer waits for work before it checks whether its engine is
/// still in use.
const COMMITTER_IDLE: std::time::Duration = std::time::Duration::from_millis(200);

/// A place in the log: the records applied up to a call. [`DurableEngine::wait_durable`] returns
/// once they are all on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[must_use = "a change is acknowledged only after `wait_durable` on its ticket"]
pub struct Ticket(u64);

impl Ticket {
    /// Nothing to wait for.
    pub const DONE: Ticket = Ticket(0);
}

/// A [`FeatureEngine`] whose every acknowledged change is in a log on disk.
pub struct DurableEngine {
    engine: FeatureEngine,
    dir: PathBuf,
    pending: Mutex<Pending>,
    writer: Mutex<Writer>,
    commit: Mutex<Commit>,
    committed: Condvar,
    snapshot_every: Option<u64>,
}

impl std::fmt::Debug for DurableEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableEngine")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The waiters whose records are now on disk (every waiter, when the log failed).
fn take_ready(c: &mut Commit) -> Vec<(u64, Notify)> {
    if c.failed {
        return std::mem::take(&mut c.waiters);
    }
    let durable = c.durable;
    let (ready, waiting) = std::mem::take(&mut c.waiters)
        .into_iter()
        .partition(|(t, _)| *t <= durable);
    c.waiters = waiting;
    ready
}

/// The background committer of [`DurableEngine::when_durable`]: whenever a waiter's records are
/// not on disk and no one else is committing, it commits up to the highest waiter. It holds its
/// engine only while there is work or for one idle wait, so it ends soon after the engine is
/// dropped.
fn background_committer(weak: &Weak<DurableEngine>) {
    loop {
        let Some(engine) = weak.upgrade() else {
            return;
        };
        let target = {
            let mut c = engine.commit_state();
            loop {
                let wanted = c
                    .waiters
                    .iter()
                    .map(|(t, _)| *t)
                    .max()
                    .filter(|&t| t > c.durable);
                // Another thread's commit tells the waiters it covers; a failed log told them all.
                if let Some(t) = wanted.filter(|_| !c.committing && !c.failed) {
                    break Some(t);
                }
                let (guard, waited) = engine
                    .committed
                    .wait_timeout(c, COMMITTER_IDLE)
                    .unwrap_or_else(|p| p.into_inner());
                c = guard;
                if waited.timed_out() && c.waiters.is_empty() {
                    break None;
                }
            }
        };
        if let Some(t) = target {
            // Every outcome has been handed to the waiters by `commit_until`.
            let _ = engine.commit_until(Ticket(t), true);
        }
    }
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("log-{n:012}.wal"))
}

fn segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in fs_err::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_prefix("log-")
            .and_then(|s| s.strip_suffix(".wal"))
            .and_then(|s| s.parse().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    let d = Sha256::digest(payload);
    let mut out = [0; 8];
    out.copy_from_slice(&d[..8]);
    out
}

fn encode(rec: &LogRecord, buf: &mut Vec<u8>) -> Result<()> {
    let payload = serde_json::to_vec(rec).map_err(|e| FraudError::input("event", e.to_string()))?;
    frame(&payload, buf)
}

/// [`encode`] of `LogRecord::Event(e)`, without cloning the event.
fn encode_event(e: &Event, buf: &mut Vec<u8>) -> Result<()> {
    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Borrowed<'a> {
        Event(&'a Event),
    }
    let payload = serde_json::to_vec(&Borrowed::Event(e))
        .map_err(|err| FraudError::input("event", err.to_string()))?;
    frame(&payload, buf)
}

/// Appends one record: header, then payload.
fn frame(payload: &[u8], buf: &mut Vec<u8>) -> Result<()> {
    if payload.len() > MAX_RECORD {
        return Err(FraudError::input(
            "event",
            format!("{} bytes is larger than a log record may be", payload.len()),
        ));
    }
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&checksum(payload));
    buf.extend_from_slice(payload);
    Ok(())
}

/// Parses a segment: the records, and the offset where the valid prefix ends.
fn decode(path: &Path, bytes: &[u8]) -> Result<(Vec<LogRecord>, usize)> {
    if bytes.len() < MAGIC.len() {
        return Ok((Vec::new(), 0));
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(FraudError::Corrupt {
            path: path.into(),
            message: "not an aurum-fraud log segment".into(),
        });
    }
    let mut at = MAGIC.len();
    let mut out = Vec::new();
    while bytes.len() - at >= HEADER {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        if len > MAX_RECORD || bytes.len() - at - HEADER < len {
            break;
        }
        let payload = &bytes[at + HEADER..at + HEADER + len];
        if bytes[at + 4..at + HEADER] != checksum(payload) {
            break;
        }
        let rec = serde_json::from_slice(payload).map_err(|e| FraudError::Corrupt {
            path: path.into(),
            message: format!("record at byte {at} has a valid checksum but does not parse: {e}"),
        })?;
        out.push(rec);
        at += HEADER + len;
    }
    Ok((out, at))
}

fn new_segment(dir: &Path, n: u64) -> Result<fs_err::File> {
    // Truncate rather than create_new: a segment left empty by a failed snapshot is reused.
    let mut f = fs_err::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(segment_path(dir, n))?;
    f.write_all(MAGIC)?;
    f.sync_all()?;
    sync_dir(dir)?;
    Ok(f)
}

impl DurableEngine {
    /// Opens the state in `dir` (created if missing): snapshot, then the log after it.
    /// `snapshot_every` writes a snapshot after that many logged records (`None`: only on
    /// [`DurableEngine::snapshot`]).
    pub fn recover(
        dir: &Path,
        spec: &FeatureSpec,
        snapshot_every: Option<u64>,
    ) -> Result<(DurableEngine, RecoveryReport)> {
        let compiled = spec.compile()?;
        fs_err::create_dir_all(dir)?;
        let mut report = RecoveryReport::default();
        let columns = compiled.schema().entities.len();
        let store = Box::new(ShardedStore::new(columns, 16));
        let snap_path = dir.join(SNAPSHOT);
        let (engine, segment_from) = if snap_path.exists() {
            let bytes = fs_err::read(&snap_path)?;
            let snap: SnapshotFile =
                serde_json::from_slice(&bytes).map_err(|e| FraudError::Corrupt {
                    path: snap_path.clone(),
                    message: format!("snapshot does not parse: {e}"),
                })?;
            report.snapshot_loaded = true;
            (
                FeatureEngine::from_snapshot(compiled, store, snap.engine)?,
                snap.segment_from,
            )
        } else {
            (FeatureEngine::with_store(compiled, store), 0)
        };
        let all = segments(dir)?;
        for &n in all.iter().filter(|&&n| n < segment_from) {
            // Covered by the snapshot; a crash after the snapshot's rename left it behind.
            fs_err::remove_file(segment_path(dir, n))?;
        }
        let live: Vec<u64> = all.into_iter().filter(|&n| n >= segment_from).collect();
        for (i, &n) in live.iter().enumerate() {
            let path = segment_path(dir, n);
            let bytes = fs_err::read(&path)?;
            let (records, valid) = decode(&path, &bytes)?;
            if valid < bytes.len() {
                if i + 1 != live.len() {
                    return Err(FraudError::Corrupt {
                        path,
                        message: format!(
                            "damaged record at byte {valid} in a segment that is not the last"
                        ),
                    });
                }
                report.torn_tail_bytes = (bytes.len() - valid) as u64;
                let f = fs_err::OpenOptions::new().write(true).open(&path)?;
                f.set_len(valid.max(MAGIC.len()) as u64)?;
                if valid < MAGIC.len() {
                    // Torn inside the magic itself: rewrite it.
                    let mut f = fs_err::OpenOptions::new().write(true).open(&path)?;
                    f.write_all(MAGIC)?;
                }
                f.sync_all()?;
            }
            report.segments_replayed += 1;
            for (k, rec) in records.into_iter().enumerate() {
                let bad = |e: FraudError| FraudError::Corrupt {
                    path: path.clone(),
                    message: format!("record {k} is refused: {e}"),
                };
                match rec {
                    LogRecord::Event(e) => {
                        engine.apply(&e).map_err(bad)?;
                        report.events_replayed += 1;
                    }
                    LogRecord::Label {
                        target,
                        fraud,
                        known_at,
                    } => {
                        engine.add_label(&target, fraud, known_at).map_err(bad)?;
                        report.labels_replayed += 1;
                    }
                }
            }
        }
        let segment = live.last().copied().unwrap_or(segment_from.max(1));
        let path = segment_path(dir, segment);
        let file = if path.exists() {
            fs_err::OpenOptions::new().append(true).open(&path)?
        } else {
            new_segment(dir, segment)?
        };
        let writer = Writer {
            file,
            segment,
            since_snapshot: 0,
            spare: Vec::new(),
        };
        let pending = Pending {
            buf: Vec::new(),
            records: 0,
            last: 0,
            poisoned: false,
        };
        Ok((
            DurableEngine {
                engine,
                dir: dir.to_path_buf(),
                pending: Mutex::new(pending),
                writer: Mutex::new(writer),
                commit: Mutex::new(Commit::default()),
                committed: Condvar::new(),
                snapshot_every,
            },
            report,
        ))
    }

    /// Replays history into a fresh state in `dir` (which must hold no state) and snapshots it.
    pub fn rebuild(
        dir: &Path,
        spec: &FeatureSpec,
        events: &[Event],
        labels: &[TrainingLabel],
        label_delay_s: i64,
        snapshot_every: Option<u64>,
    ) -> Result<DurableEngine> {
        if dir.join(SNAPSHOT).exists() || (dir.exists() && !segments(dir)?.is_empty()) {
            return Err(FraudError::input(
                "dir",
                format!("{} already holds state", dir.display()),
            ));
        }
        let (durable, _) = DurableEngine::recover(dir, spec, snapshot_every)?;
        replay_into(&durable.engine, events, labels, label_delay_s)?;
        durable.snapshot()?;
        Ok(durable)
    }

    /// The engine, for read-only feature computation.
    pub fn engine(&self) -> &FeatureEngine {
        &self.engine
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn commit_state(&self) -> MutexGuard<'_, Commit> {
        self.commit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Scores and applies a batch of events; per-event results in order. An event refused by
    /// validation is not logged and changes nothing. Every applied event is on disk when this
    /// returns; the outer error is an IO failure, after which the engine is poisoned.
    pub fn score_and_apply_batch(&self, events: &[Event]) -> Result<Vec<Result<Vec<f64>>>> {
        let (out, ticket) = self.score_and_apply_logged(events)?;
        self.wait_durable(ticket)?;
        Ok(out)
    }

    /// [`DurableEngine::score_and_apply_batch`] without the wait: the events are applied in
    /// memory (later calls see them) and queued for the log; they are durable, and may be
    /// acknowledged, once [`DurableEngine::wait_durable`] on the ticket returns `Ok`. Calls that
    /// wait at the same time share one write and one fsync (group commit).
    pub fn score_and_apply_logged(
        &self,
        events: &[Event],
    ) -> Result<(Vec<Result<Vec<f64>>>, Ticket)> {
        let mut p = self.pending();
        if p.poisoned {
            return Err(FraudError::Poisoned);
        }
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let at = p.buf.len();
            // Encode first: an event that cannot be logged must not be applied.
            let result = encode_event(e, &mut p.buf).and_then(|()| self.engine.score_and_apply(e));
            if result.is_ok() {
                p.records += 1;
                p.last += 1;
            } else {
                p.buf.truncate(at);
            }
            out.push(result);
        }
        Ok((out, Ticket(p.last)))
    }

    /// Scores and applies one event; it is on disk when this returns `Ok`.
    pub fn score_and_apply(&self, e: &Event) -> Result<Vec<f64>> {
        self.score_and_apply_batch(std::slice::from_ref(e))?
            .pop()
            .unwrap_or(Err(FraudError::Poisoned))
    }

    /// Logs and applies a label; it is on disk when this returns `Ok`.
    pub fn add_label(&self, target: &LabelRef, fraud: bool, known_at: i64) -> Result<LabelOutcome> {
        let (outcome, ticket) = self.add_label_logged(target, fraud, known_at)?;
        self.wait_durable(ticket)?;
        Ok(outcome)
    }

    /// [`DurableEngine::add_label`] without the wait, as [`DurableEngine::score_and_apply_logged`].
    pub fn add_label_logged(
        &self,
        target: &LabelRef,
        fraud: bool,
        known_at: i64,
    ) -> Result<(LabelOutcome, Ticket)> {
        let mut p = self.pending();
        if p.poisoned {
            return Err(FraudError::Poisoned);
        }
        let at = p.buf.len();
        encode(
            &LogRecord::Label {
                target: target.clone(),
                fraud,
                known_at,
            },
            &mut p.buf,
        )?;
        match self.engine.add_label(target, fraud, known_at) {
            Ok(outcome) => {
                p.records += 1;
                p.last += 1;
                Ok((outcome, Ticket(p.last)))
            }
            Err(e) => {
                p.buf.truncate(at);
                Err(e)
            }
        }
    }

    /// Calls `done` once every record up to `ticket` is on disk, without blocking the caller: the
    /// asynchronous form of [`DurableEngine::wait_durable`] for callers that must not hold a
    /// thread while the disk works (an async runtime's workers). A background committer thread,
    /// started on first use and holding the engine only weakly, commits for every waiter
    /// registered (one write and one fsync for all of them, as a blocking committer would) and
    /// calls each `done` outside the engine's locks. `done` gets `Err` when the log could not be
    /// written (the engine is then poisoned), or, for one caller of a commit, when the snapshot
    /// that commit took failed (the records are durable: [`DurableEngine::wait_durable`]'s rule).
    pub fn when_durable(self: &Arc<Self>, ticket: Ticket, done: Notify) {
        let mut c = self.commit_state();
        if c.durable >= ticket.0 {
            drop(c);
            return done(Ok(()));
        }
        if c.failed {
            drop(c);
            return done(Err(FraudError::Poisoned));
        }
        c.waiters.push((ticket.0, done));
        if !c.background {
            c.background = true;
            let weak = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("fraud-log-commit".into())
                .spawn(move || background_committer(&weak));
            if let Err(e) = spawned {
                c.background = false;
                let waiters = std::mem::take(&mut c.waiters);
                drop(c);
                for (_, done) in waiters {
                    done(Err(FraudError::Io(std::io::Error::new(
                        e.kind(),
                        format!("cannot start the log's committer thread: {e}"),
                    ))));
                }
                return;
            }
        }
        drop(c);
        self.committed.notify_all();
    }

    /// Blocks until every record up to `ticket` is on disk. One waiting thread at a time is the
    /// committer: it takes everything queued, writes it with one `write` and one `fsync`, and
    /// wakes every waiter it covered; records queued meanwhile go in the next commit. `Err`
    /// when the write failed: the engine is poisoned (memory is ahead of the disk) and must be
    /// recovered.
    pub fn wait_durable(&self, ticket: Ticket) -> Result<()> {
        self.commit_until(ticket, false)
    }

    /// [`DurableEngine::wait_durable`]'s loop. The caller that commits tells every
    /// [`DurableEngine::when_durable`] waiter its commit covered. A snapshot failure goes to the
    /// committing caller, or, when that is the background committer (`for_waiters`), to the
    /// first waiter the commit covered.
    fn commit_until(&self, ticket: Ticket, for_waiters: bool) -> Result<()> {
        let mut c = self.commit_state();
        loop {
            if c.durable >= ticket.0 {
                return Ok(());
            }
            if c.failed {
                return Err(FraudError::Poisoned);
            }
            if c.committing {
                c = self.committed.wait(c).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            c.committing = true;
            drop(c);
            let result = self.commit_pending();
            c = self.commit_state();
            c.committing = false;
            match &result {
                Ok((upto, _)) => c.durable = c.durable.max(*upto),
                Err(_) => c.failed = true,
            }
            let ready = take_ready(&mut c);
            let failed = c.failed;
            self.committed.notify_all();
            drop(c);
            // A failed snapshot leaves the log intact: the records are durable, but the
            // committer reports the failure to its caller, as a write failure would be.
            let mut outcome = match result {
                Ok((_, snapshot)) => snapshot,
                Err(e) => Err(e),
            };
            for (_, done) in ready {
                if failed {
                    done(Err(FraudError::Poisoned));
                } else if for_waiters && outcome.is_err() {
                    done(std::mem::replace(&mut outcome, Ok(())));
                } else {
                    done(Ok(()));
                }
            }
            outcome?;
            c = self.commit_state();
        }
    }

    /// Writes and fsyncs what is queued, then snapshots when one is due: the number of the last
    /// record now on disk, and how the snapshot went. `Err`: the log could not be written.
    fn commit_pending(&self) -> Result<(u64, Result<()>)> {
        let mut w = self.writer();
        let upto = self.flush_locked(&mut w)?;
        if self
            .snapshot_every
            .is_some_and(|every| w.since_snapshot >= every)
        {
            return self.snapshot_locked(&mut w);
        }
        Ok((upto, Ok(())))
    }

    /// Moves the queue to the file, with the writer held (so commits reach the file in queue
    /// order). The queue is taken under its lock and written outside it: events keep being
    /// applied while the fsync runs.
    fn flush_locked(&self, w: &mut Writer) -> Result<u64> {
        let (records, upto) = {
            let mut p = self.pending();
            if p.poisoned {
                return Err(FraudError::Poisoned);
            }
            std::mem::swap(&mut p.buf, &mut w.spare);
            (std::mem::take(&mut p.records), p.last)
        };
        if records > 0 {
            let written = w.file.write_all(&w.spare).and_then(|()| w.file.sync_data());
            w.spare.clear();
            if let Err(e) = written {
                self.pending().poisoned = true;
                return Err(e.into());
            }
            w.since_snapshot += records;
        }
        Ok(upto)
    }

    /// Writes a snapshot of the current state and drops the log segments it covers.
    pub fn snapshot(&self) -> Result<()> {
        let mut w = self.writer();
        let (upto, snapshot) = self.snapshot_locked(&mut w)?;
        let mut c = self.commit_state();
        c.durable = c.durable.max(upto);
        let ready = take_ready(&mut c);
        self.committed.notify_all();
        drop(c);
        for (_, done) in ready {
            done(Ok(()));
        }
        snapshot
    }

    /// With the writer held: the queue is written to the current segment, then, with the queue
    /// held (nothing is applied meanwhile), the snapshot is taken and later records go to a new
    /// segment. The number of the last record the disk now covers, and how the snapshot went;
    /// `Err`: the log could not be written.
    fn snapshot_locked(&self, w: &mut Writer) -> Result<(u64, Result<()>)> {
        // Most of the queue, without holding up the appliers.
        self.flush_locked(w)?;
        let mut p = self.pending();
        if p.poisoned {
            return Err(FraudError::Poisoned);
        }
        if p.records > 0 {
            // Applied since: into the old segment as well, before the snapshot covers them.
            let written = w.file.write_all(&p.buf).and_then(|()| w.file.sync_data());
            if let Err(e) = written {
                p.poisoned = true;
                return Err(e.into());
            }
            p.buf.clear();
            p.records = 0;
        }
        let upto = p.last;
        let next = w.segment + 1;
        // On failure the old segment stays the write target and nothing it holds is dropped; a
        // next segment created before the failure is empty and replays as nothing.
        let file = match self.write_snapshot(next) {
            Ok(file) => file,
            Err(e) => return Ok((upto, Err(e))),
        };
        drop(p);
        let old = w.segment;
        w.file = file;
        w.segment = next;
        w.since_snapshot = 0;
        let removed = segments(&self.dir).and_then(|all| {
            for n in all.into_iter().filter(|&n| n <= old) {
                fs_err::remove_file(segment_path(&self.dir, n))?;
            }
            Ok(())
        });
        Ok((upto, removed))
    }

    fn write_snapshot(&self, next: u64) -> Result<fs_err::File> {
        let file = new_segment(&self.dir, next)?;
        let snap = SnapshotFile {
            segment_from: next,
            engine: self.engine.snapshot(),
        };
        let bytes =
            serde_json::to_vec(&snap).map_err(|e| FraudError::input("snapshot", e.to_string()))?;
        let tmp = self.dir.join(format!("{SNAPSHOT}.tmp"));
        let mut f = fs_err::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs_err::rename(&tmp, self.dir.join(SNAPSHOT))?;
        sync_dir(&self.dir)?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_stop_at_damage() {
        let rec = LogRecord::Label {
            target: LabelRef::EventId("e1".into()),
            fraud: true,
            known_at: 5,
        };
        let mut bytes = MAGIC.to_vec();
        encode(&rec, &mut bytes).unwrap();
        let one = bytes.len();
        encode(&rec, &mut bytes).unwrap();
        let p = Path::new("x");
        assert_eq!(
            decode(p, &bytes).unwrap(),
            (vec![rec.clone(), rec.clone()], bytes.len())
        );
        for cut in MAGIC.len()..bytes.len() {
            let (recs, valid) = decode(p, &bytes[..cut]).unwrap();
            assert_eq!(recs.len(), usize::from(cut >= one), "cut at {cut}");
            assert!(valid <= cut);
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 1;
        assert_eq!(decode(p, &flipped).unwrap(), (vec![rec], one));
        assert_eq!(
            decode(p, b"NOTALOG!").unwrap_err().code(),
            "fraud_state_corrupt"
        );
    }
}
