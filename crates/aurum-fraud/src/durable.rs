//! Durable online state: an append-only event log plus periodic snapshots.
//!
//! Why a log and snapshots rather than writing the state itself on every event: the state of a
//! busy terminal is kilobytes, an event is a hundred bytes. The log makes each acknowledged event
//! durable with one sequential write and one `fsync` per batch; snapshots bound how much log a
//! recovery has to replay.
//!
//! Layout of a state directory:
//! - `LOCK`: empty; an engine holds an exclusive advisory lock (`flock`) on it from recovery until
//!   it is dropped, so that a second engine on the directory, in this process or another, is
//!   refused ([`FraudError::InUse`]) instead of writing segments the first one also writes. The
//!   lock goes with the process, however it ends.
//! - `log-<n>.wal` segments, `n` increasing. Each starts with the 8-byte magic `AURFLOG1`, then
//!   records `[u32 LE payload length][first 8 bytes of SHA-256(payload)][payload]`, the payload
//!   being the JSON of one [`LogRecord`] (an event or a label).
//!   A segment may be preallocated: written full of zeros ahead of use (as a temporary file,
//!   fsynced and renamed into place), so that appending a record overwrites bytes the file
//!   already has and its `fdatasync` flushes the data alone, not the inode's new size as well
//!   (half the disk round trips of a commit). Zeros after the last record are unused space, not
//!   damage.
//! - `snapshot.bin`: the engine state covering every segment before `segment_from`: the 8-byte
//!   magic `AURFSNP1`, then the state as MessagePack (structs as maps with their field names, so
//!   fields added later with a default still read older files). Written to a temporary file,
//!   fsynced, renamed over the old one, and the directory fsynced. A directory written before
//!   this format holds `snapshot.json` (the same state as JSON): it is read when there is no
//!   `snapshot.bin`, and removed once a `snapshot.bin` is in place. MessagePack rather than JSON
//!   because a snapshot is written by a background thread that shares the cores with live
//!   traffic: on the live benchmark's state it is smaller and cheaper to write and to read.
//!
//! A snapshot that is due is taken in two steps so that it holds up live traffic only for an
//! in-memory copy: with the queue held, the records queued since the last commit are taken and
//! the state is copied; with the queue released, those records go to the old segment and the log
//! switches to the next one; then a background thread writes the copy, drops the segments it
//! covers and preallocates the segment after next. A crash at any point leaves either the old snapshot and
//! every segment after it, or the new snapshot and the segments after it.
//!
//! Recovery ([`DurableEngine::recover`]) loads the snapshot and replays the later segments through
//! the same engine calls as live traffic. A torn tail in the last segment that holds records (a
//! record cut short or failing its checksum, as a crash mid-write leaves it) is cut off and
//! reported; a bad record anywhere else is corruption and refuses to load.
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

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

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
const SNAPSHOT: &str = "snapshot.bin";
/// The file whose lock marks the directory's one writer.
const LOCK: &str = "LOCK";
const SNAPSHOT_MAGIC: &[u8; 8] = b"AURFSNP1";
/// The snapshot as earlier versions wrote it (JSON, no magic); read when no `snapshot.bin` is there.
const LEGACY_SNAPSHOT: &str = "snapshot.json";
/// A batch logged and applied: each event's features (or why it was refused), and the ticket
/// to wait for before acknowledging them.
pub type Logged = (Vec<Result<Vec<f64>>>, Ticket);

/// How the background thread writes a large file (the zeros of a preallocated segment, a
/// snapshot): a chunk at a time, each flushed before the next after a short pause, so that the
/// live log's commits wait behind at most one chunk on the disk rather than the whole file (in
/// the live benchmark, 16 MiB of zeros written in one piece went with a p99.9 of 17–24 ms against
/// 9–13 ms without preallocation; in chunks, 13.5–14 ms; a 7 MB snapshot written in one piece
/// stalled paced traffic for 30–60 ms).
const PACED_CHUNK: usize = 256 << 10;
const PACED_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// What [`write_paced`] writes.
enum Paced<'a> {
    Bytes(&'a [u8]),
    Zeros(u64),
}

/// Writes `data` at the file's cursor in [`PACED_CHUNK`] pieces, `fdatasync` and a
/// [`PACED_PAUSE`] between two pieces; the caller syncs the last one.
fn write_paced(f: &mut fs_err::File, data: Paced<'_>) -> std::io::Result<()> {
    let (total, bytes, zeros) = match data {
        Paced::Bytes(b) => (b.len() as u64, Some(b), Vec::new()),
        Paced::Zeros(n) => (n, None, vec![0u8; PACED_CHUNK]),
    };
    let mut at = 0u64;
    while at < total {
        let k = (total - at).min(PACED_CHUNK as u64) as usize;
        match bytes {
            Some(b) => f.write_all(&b[at as usize..at as usize + k])?,
            None => f.write_all(&zeros[..k])?,
        }
        at += k as u64;
        if at < total {
            f.sync_data()?;
            std::thread::sleep(PACED_PAUSE);
        }
    }
    Ok(())
}

/// How a [`DurableEngine`] keeps its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DurableOptions {
    /// Take a snapshot after this many logged records (`None`: only on
    /// [`DurableEngine::snapshot`]).
    pub snapshot_every: Option<u64>,
    /// Bytes of zeros each new segment is written with ahead of use (0: none; segments grow as
    /// records are appended). A commit inside them flushes one block instead of two. A segment
    /// that outgrows them keeps growing as an unpreallocated one would.
    pub preallocate: u64,
}

impl DurableOptions {
    /// Snapshots every `snapshot_every` records, segments not preallocated.
    pub const fn unpreallocated(snapshot_every: Option<u64>) -> DurableOptions {
        DurableOptions {
            snapshot_every,
            preallocate: 0,
        }
    }
}

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
pub(crate) struct Pending {
    buf: Vec<u8>,
    records: u64,
    /// Number of the last record added (records are numbered from 1 since the engine opened).
    last: u64,
    poisoned: bool,
}

/// The file end of the log; held only by the committer (and by snapshots).
struct Writer {
    /// Written at its cursor, `len`: the end of the records, which a preallocated segment has
    /// zeros after.
    file: fs_err::File,
    segment: u64,
    /// Bytes of the segment in use (magic and records).
    len: u64,
    /// Bytes the segment file has: writing past them grows the file (a commit then flushes the
    /// inode's size too).
    capacity: u64,
    since_snapshot: u64,
    /// The buffer being written, kept to reuse its allocation.
    spare: Vec<u8>,
}

/// Work the log hands to a background thread, one piece at a time: writing a snapshot, and
/// preallocating the segment after the current one.
#[derive(Default)]
struct Background {
    /// A piece of work is running (at most one at a time).
    running: bool,
    handle: Option<JoinHandle<()>>,
    /// A preallocated segment, fsynced and in place, numbered for the next switch.
    ready: Option<(u64, fs_err::File)>,
    /// What the last snapshot failed with, if it did.
    last_error: Option<String>,
    /// The segment whose preparation last failed: not retried on every commit.
    prepare_failed: Option<u64>,
}

struct BackgroundShared {
    state: Mutex<Background>,
    done: Condvar,
    /// `state.running`, readable by every commit without the lock.
    running: AtomicBool,
    /// The segment the log writes to; changes only while no background work runs.
    current: AtomicU64,
    dir: PathBuf,
    preallocate: u64,
}

impl BackgroundShared {
    fn lock(&self) -> MutexGuard<'_, Background> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims the right to run background work; `false` when some is running.
    fn try_begin(&self) -> bool {
        let mut s = self.lock();
        if s.running {
            return false;
        }
        s.running = true;
        self.running.store(true, Ordering::Release);
        true
    }

    /// Waits for running work, then claims the right to run some.
    fn begin(&self) {
        let mut s = self.settled();
        s.running = true;
        self.running.store(true, Ordering::Release);
    }

    /// The state once no background work runs.
    fn settled(&self) -> MutexGuard<'_, Background> {
        let mut s = self.lock();
        while s.running {
            s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s
    }

    /// Ends the claimed work; `snapshot` is the outcome of a snapshot, when it was one.
    fn finish(&self, snapshot: Option<std::result::Result<(), String>>) {
        let mut s = self.lock();
        s.running = false;
        if let Some(outcome) = snapshot {
            s.last_error = outcome.err();
        }
        self.running.store(false, Ordering::Release);
        drop(s);
        self.done.notify_all();
    }

    /// The prepared segment numbered `n`, when it is ready.
    fn take_ready(&self, n: u64) -> Option<fs_err::File> {
        let mut s = self.lock();
        match s.ready.take() {
            Some((m, file)) if m == n => Some(file),
            other => {
                s.ready = other;
                None
            }
        }
    }

    /// Whether the segment after `segment` is to be prepared: segments are preallocated, it is
    /// not ready, and its preparation has not already failed.
    fn wants_next(&self, segment: u64) -> bool {
        let next = segment + 1;
        let s = self.lock();
        self.preallocate > 0
            && !matches!(&s.ready, Some((n, _)) if *n == next)
            && s.prepare_failed != Some(next)
    }

    /// Preallocates the segment after the current one, unless it is ready (or segments are not
    /// preallocated).
    fn prepare_next(&self) -> Result<()> {
        let current = self.current.load(Ordering::Acquire);
        if !self.wants_next(current) {
            return Ok(());
        }
        let next = current + 1;
        match preallocated_segment(&self.dir, next, self.preallocate) {
            Ok(file) => {
                self.lock().ready = Some((next, file));
                Ok(())
            }
            Err(e) => {
                self.lock().prepare_failed = Some(next);
                Err(e)
            }
        }
    }

    /// Runs a claimed piece of work: the snapshot, if any, then the next segment's preparation.
    fn run(&self, snapshot: Option<SnapshotJob>) -> Result<()> {
        let written = snapshot.map(|job| job.write(&self.dir));
        if let Some(Err(e)) = &written {
            tracing::error!(error = %e, "fraud state snapshot failed; the log is kept and replays in full");
        }
        if let Err(e) = self.prepare_next() {
            tracing::warn!(error = %e, "cannot preallocate the next fraud log segment; the current one grows");
        }
        self.finish(
            written
                .as_ref()
                .map(|r| r.as_ref().map(|_| ()).map_err(|e| e.to_string())),
        );
        written.unwrap_or(Ok(()))
    }
}

/// The second step of a snapshot, run without the engine's locks: the copy taken at the switch
/// to segment `segment_from` is written and the segments before it are dropped.
struct SnapshotJob {
    segment_from: u64,
    engine: EngineSnapshot,
    /// How long appliers waited for the copy.
    copy: std::time::Duration,
    /// How long the switch held the log's writer (commits waited), the copy included.
    switch: std::time::Duration,
}

impl SnapshotJob {
    fn write(self, dir: &Path) -> Result<()> {
        let SnapshotJob {
            segment_from,
            engine,
            copy,
            switch,
        } = self;
        let started = std::time::Instant::now();
        let snap = SnapshotFile {
            segment_from,
            engine,
        };
        let bytes = encode_snapshot(&snap)?;
        drop(snap);
        let encoded = started.elapsed();
        let tmp = dir.join(format!("{SNAPSHOT}.tmp"));
        let mut f = fs_err::File::create(&tmp)?;
        write_paced(&mut f, Paced::Bytes(&bytes))?;
        f.sync_all()?;
        fs_err::rename(&tmp, dir.join(SNAPSHOT))?;
        remove_legacy_snapshot(dir)?;
        sync_dir(dir)?;
        let written = started.elapsed() - encoded;
        for n in segments(dir)?.into_iter().filter(|&n| n < segment_from) {
            fs_err::remove_file(segment_path(dir, n))?;
        }
        tracing::info!(
            segment_from,
            bytes = bytes.len(),
            copy_ms = copy.as_secs_f64() * 1e3,
            switch_ms = switch.as_secs_f64() * 1e3,
            encode_ms = encoded.as_secs_f64() * 1e3,
            write_ms = written.as_secs_f64() * 1e3,
            background_ms = started.elapsed().as_secs_f64() * 1e3,
            "fraud state snapshot written"
        );
        Ok(())
    }
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
    options: DurableOptions,
    background: Arc<BackgroundShared>,
    /// The directory's lock, held while the engine lives (declared last: released after the
    /// background work is joined and the files are closed).
    _lock: std::fs::File,
}

impl Drop for DurableEngine {
    /// Waits for background work: the directory is whole when the engine is gone, and a new
    /// engine may open it.
    fn drop(&mut self) {
        let handle = self.background.lock().handle.take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
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
            let _ = engine.commit_until(Ticket(t));
        }
    }
}

fn encode_snapshot(snap: &SnapshotFile) -> Result<Vec<u8>> {
    let mut bytes = SNAPSHOT_MAGIC.to_vec();
    rmp_serde::encode::write_named(&mut bytes, snap)
        .map_err(|e| FraudError::input("snapshot", e.to_string()))?;
    Ok(bytes)
}

/// Reads the snapshot in `dir`, if there is one: `snapshot.bin`, else a `snapshot.json` from
/// before the binary format.
fn read_snapshot(dir: &Path) -> Result<Option<SnapshotFile>> {
    let corrupt = |path: &Path, message: String| FraudError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let path = dir.join(SNAPSHOT);
    if path.exists() {
        let bytes = fs_err::read(&path)?;
        let body = bytes
            .strip_prefix(SNAPSHOT_MAGIC.as_slice())
            .ok_or_else(|| corrupt(&path, "not a snapshot: the magic is missing".into()))?;
        let snap = rmp_serde::from_slice(body)
            .map_err(|e| corrupt(&path, format!("snapshot does not decode: {e}")))?;
        return Ok(Some(snap));
    }
    let legacy = dir.join(LEGACY_SNAPSHOT);
    if legacy.exists() {
        let bytes = fs_err::read(&legacy)?;
        let snap = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(&legacy, format!("snapshot does not parse: {e}")))?;
        return Ok(Some(snap));
    }
    Ok(None)
}

/// Removes a `snapshot.json` left from before the binary format, once `snapshot.bin` replaces it
/// (the caller syncs the directory).
fn remove_legacy_snapshot(dir: &Path) -> Result<()> {
    match fs_err::remove_file(dir.join(LEGACY_SNAPSHOT)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => Ok(other?),
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

/// Takes the exclusive lock of the state directory `dir`, or says who has it.
fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(LOCK);
    let with_path = |e: std::io::Error| {
        FraudError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot lock {}: {e}", path.display()),
        ))
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(with_path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(FraudError::InUse {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(with_path(e)),
    }
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

/// Whether the bytes after a segment's records are preallocated space (zeros), not a record
/// cut short or damaged.
fn unused_tail(rest: &[u8]) -> bool {
    rest.iter().all(|&b| b == 0)
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

/// Segment `n` written with the magic and zeros up to `size` bytes, under a temporary name
/// until it is on disk, so that it appears whole or not at all; the file's cursor is after
/// the magic.
fn preallocated_segment(dir: &Path, n: u64, size: u64) -> Result<fs_err::File> {
    let path = segment_path(dir, n);
    let tmp = path.with_extension("wal.tmp");
    let mut f = fs_err::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(MAGIC)?;
    write_paced(
        &mut f,
        Paced::Zeros(size.saturating_sub(MAGIC.len() as u64)),
    )?;
    f.sync_all()?;
    fs_err::rename(&tmp, &path)?;
    sync_dir(dir)?;
    f.seek(SeekFrom::Start(MAGIC.len() as u64))?;
    Ok(f)
}

impl DurableEngine {
    /// Opens the state in `dir` (created if missing): snapshot, then the log after it.
    /// `snapshot_every` writes a snapshot after that many logged records (`None`: only on
    /// [`DurableEngine::snapshot`]); segments are not preallocated.
    pub fn recover(
        dir: &Path,
        spec: &FeatureSpec,
        snapshot_every: Option<u64>,
    ) -> Result<(DurableEngine, RecoveryReport)> {
        DurableEngine::recover_with(dir, spec, DurableOptions::unpreallocated(snapshot_every))
    }

    /// [`DurableEngine::recover`] with every option.
    pub fn recover_with(
        dir: &Path,
        spec: &FeatureSpec,
        options: DurableOptions,
    ) -> Result<(DurableEngine, RecoveryReport)> {
        let compiled = spec.compile()?;
        fs_err::create_dir_all(dir)?;
        // Before anything is read or removed: a second writer would remove the first one's
        // segment in preparation, and each would write segments the other writes too.
        let lock = lock_dir(dir)?;
        // A segment being preallocated when the process stopped never got its name.
        for entry in fs_err::read_dir(dir)? {
            let path = entry?.path();
            if path.to_string_lossy().ends_with(".wal.tmp") {
                fs_err::remove_file(&path)?;
            }
        }
        let mut report = RecoveryReport::default();
        let columns = compiled.schema().entities.len();
        let store = Box::new(ShardedStore::new(columns, 16));
        let (engine, segment_from) = match read_snapshot(dir)? {
            Some(snap) => {
                report.snapshot_loaded = true;
                (
                    FeatureEngine::from_snapshot(compiled, store, snap.engine)?,
                    snap.segment_from,
                )
            }
            None => (FeatureEngine::with_store(compiled, store), 0),
        };
        let all = segments(dir)?;
        for &n in all.iter().filter(|&&n| n < segment_from) {
            // Covered by the snapshot; a crash after the snapshot's rename left it behind.
            fs_err::remove_file(segment_path(dir, n))?;
        }
        let live: Vec<u64> = all.into_iter().filter(|&n| n >= segment_from).collect();
        // Read every segment first: a record torn by a crash is a clean end only when no later
        // segment holds anything (a preallocated next segment may already exist, empty).
        let mut decoded = Vec::with_capacity(live.len());
        for &n in &live {
            let path = segment_path(dir, n);
            let bytes = fs_err::read(&path)?;
            let (records, valid) = decode(&path, &bytes)?;
            let damaged =
                valid < bytes.len() && !(valid >= MAGIC.len() && unused_tail(&bytes[valid..]));
            decoded.push((path, bytes.len(), records, valid, damaged));
        }
        let last_used = decoded
            .iter()
            .rposition(|(_, _, records, _, damaged)| !records.is_empty() || *damaged);
        // Where the last segment's records end: writing resumes there.
        let mut end = MAGIC.len() as u64;
        // And how many bytes its file has (zeros after `end` when it was preallocated).
        let mut capacity = end;
        for (i, (path, len, records, valid, damaged)) in decoded.into_iter().enumerate() {
            end = valid.max(MAGIC.len()) as u64;
            capacity = if damaged { end } else { (len as u64).max(end) };
            if damaged {
                if Some(i) != last_used {
                    return Err(FraudError::Corrupt {
                        path,
                        message: format!(
                            "damaged record at byte {valid} in a segment followed by later records"
                        ),
                    });
                }
                report.torn_tail_bytes = (len - valid) as u64;
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
            let mut f = fs_err::OpenOptions::new().write(true).open(&path)?;
            f.seek(SeekFrom::Start(end))?;
            f
        } else {
            // A fresh log starts unpreallocated (opening stays quick); the next segment is
            // prepared in the background and the log moves to it when it is ready.
            (end, capacity) = (MAGIC.len() as u64, MAGIC.len() as u64);
            new_segment(dir, segment)?
        };
        let writer = Writer {
            file,
            segment,
            len: end,
            capacity,
            since_snapshot: 0,
            spare: Vec::new(),
        };
        let pending = Pending {
            buf: Vec::new(),
            records: 0,
            last: 0,
            poisoned: false,
        };
        let durable = DurableEngine {
            engine,
            dir: dir.to_path_buf(),
            pending: Mutex::new(pending),
            writer: Mutex::new(writer),
            commit: Mutex::new(Commit::default()),
            committed: Condvar::new(),
            options,
            background: Arc::new(BackgroundShared {
                state: Mutex::new(Background::default()),
                done: Condvar::new(),
                running: AtomicBool::new(false),
                current: AtomicU64::new(segment),
                dir: dir.to_path_buf(),
                preallocate: options.preallocate,
            }),
            _lock: lock,
        };
        if options.preallocate > 0 && durable.background.try_begin() {
            durable.spawn_background(None);
        }
        Ok((durable, report))
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
        if dir.join(SNAPSHOT).exists()
            || dir.join(LEGACY_SNAPSHOT).exists()
            || (dir.exists() && !segments(dir)?.is_empty())
        {
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

    pub(crate) fn pending(&self) -> MutexGuard<'_, Pending> {
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
    pub fn score_and_apply_logged(&self, events: &[Event]) -> Result<Logged> {
        self.apply_queued(self.pending(), events)
    }

    /// [`DurableEngine::score_and_apply_logged`] only if the queue is free: `None`, and nothing
    /// done, while another caller holds it (a snapshot copying the state holds it for
    /// milliseconds; the committer, to take what is queued). Otherwise `check` runs first, with
    /// the queue held, and the events are applied only when it passes. Never waits for a lock
    /// another caller holds, so an async runtime's worker may call it.
    pub fn try_score_and_apply_logged<E: From<FraudError>>(
        &self,
        events: &[Event],
        check: impl FnOnce(&FeatureEngine) -> std::result::Result<(), E>,
    ) -> Option<std::result::Result<Logged, E>> {
        let p = match self.pending.try_lock() {
            Ok(p) => p,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        if let Err(e) = check(&self.engine) {
            return Some(Err(e));
        }
        Some(self.apply_queued(p, events).map_err(E::from))
    }

    /// Logs and applies `events` with the queue held.
    fn apply_queued(&self, mut p: MutexGuard<'_, Pending>, events: &[Event]) -> Result<Logged> {
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
    /// written (the engine is then poisoned).
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
        self.commit_until(ticket)
    }

    /// [`DurableEngine::wait_durable`]'s loop. The caller that commits tells every
    /// [`DurableEngine::when_durable`] waiter its commit covered.
    fn commit_until(&self, ticket: Ticket) -> Result<()> {
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
                Ok(upto) => c.durable = c.durable.max(*upto),
                Err(_) => c.failed = true,
            }
            let ready = take_ready(&mut c);
            let failed = c.failed;
            self.committed.notify_all();
            drop(c);
            for (_, done) in ready {
                done(if failed {
                    Err(FraudError::Poisoned)
                } else {
                    Ok(())
                });
            }
            result?;
            c = self.commit_state();
        }
    }

    /// Writes and fsyncs what is queued, then, when a snapshot is due and no background work
    /// runs, switches segments and hands the snapshot to a background thread: the number of the
    /// last record now on disk. `Err`: the log could not be written.
    fn commit_pending(&self) -> Result<u64> {
        let mut w = self.writer();
        let upto = self.flush_locked(&mut w)?;
        let due = self
            .options
            .snapshot_every
            .is_some_and(|every| w.since_snapshot >= every);
        if !due || self.background.running.load(Ordering::Acquire) || !self.background.try_begin() {
            return Ok(upto);
        }
        let (upto, job) = match self.switch_locked(&mut w) {
            Ok(switched) => switched,
            Err(e) => {
                self.background.finish(Some(Err(e.to_string())));
                return Err(e);
            }
        };
        drop(w);
        match job {
            Ok(job) => self.spawn_background(Some(job)),
            Err(e) => self.background.finish(Some(Err(e.to_string()))),
        }
        Ok(upto)
    }

    /// Runs claimed background work ([`BackgroundShared::run`]) on its own thread.
    fn spawn_background(&self, snapshot: Option<SnapshotJob>) {
        let shared = self.background.clone();
        let spawned = std::thread::Builder::new()
            .name("fraud-log-background".into())
            .spawn(move || {
                // Failures are logged and kept by `run`: there is no caller to tell.
                let _ = shared.run(snapshot);
            });
        match spawned {
            Ok(handle) => {
                let previous = self.background.lock().handle.replace(handle);
                if let Some(h) = previous {
                    // Finished: no work was running when this one was claimed.
                    let _ = h.join();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the fraud log's background thread");
                self.background.finish(Some(Err(format!(
                    "cannot start the background thread: {e}"
                ))));
            }
        }
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
            let mut spare = std::mem::take(&mut w.spare);
            let written = self.write_locked(w, &spare);
            spare.clear();
            w.spare = spare;
            if let Err(e) = written {
                self.pending().poisoned = true;
                return Err(e);
            }
            w.since_snapshot += records;
        }
        Ok(upto)
    }

    /// Writes `bytes` to the log and fsyncs them. When they do not fit in what the current
    /// segment file has and the next segment is prepared, the log moves to it first (a
    /// preallocated segment's commits flush the data only); the one after is then prepared in
    /// the background.
    fn write_locked(&self, w: &mut Writer, bytes: &[u8]) -> Result<()> {
        if w.len + bytes.len() as u64 > w.capacity
            && let Some(file) = self.background.take_ready(w.segment + 1)
        {
            w.file = file;
            w.segment += 1;
            w.len = MAGIC.len() as u64;
            w.capacity = self.options.preallocate.max(w.len);
            self.background.current.store(w.segment, Ordering::Release);
        }
        w.file.write_all(bytes)?;
        w.file.sync_data()?;
        w.len += bytes.len() as u64;
        // The segment after this one is prepared ahead of need (checked after every commit, as
        // a move above may have happened while other background work ran).
        if !self.background.running.load(Ordering::Acquire)
            && self.background.wants_next(w.segment)
            && self.background.try_begin()
        {
            self.spawn_background(None);
        }
        Ok(())
    }

    /// Writes a snapshot of the current state and drops the log segments it covers; returns
    /// once it is on disk (after any background work in progress).
    pub fn snapshot(&self) -> Result<()> {
        self.background.begin();
        let mut w = self.writer();
        let switched = self.switch_locked(&mut w);
        drop(w);
        let (upto, job) = match switched {
            Ok(s) => s,
            Err(e) => {
                self.background.finish(Some(Err(e.to_string())));
                return Err(e);
            }
        };
        let mut c = self.commit_state();
        c.durable = c.durable.max(upto);
        let ready = take_ready(&mut c);
        self.committed.notify_all();
        drop(c);
        for (_, done) in ready {
            done(Ok(()));
        }
        match job {
            Ok(job) => self.background.run(Some(job)),
            Err(e) => {
                self.background.finish(Some(Err(e.to_string())));
                Err(e)
            }
        }
    }

    /// What the last snapshot failed with, when it did (a background snapshot has no caller to
    /// tell; the log it would have dropped is kept and replays in full).
    pub fn last_snapshot_error(&self) -> Option<String> {
        self.background.lock().last_error.clone()
    }

    /// Waits until no background work (a snapshot being written, a segment being prepared)
    /// runs: for an orderly shutdown, and for tests that look at the files.
    pub fn settle(&self) {
        drop(self.background.settled());
    }

    /// The first step of a snapshot, with the writer held: the queue is written to the current
    /// segment; then, with the queue held (nothing is applied meanwhile), what was queued since
    /// is taken and the state is copied in memory; once the queue is released, what was taken is
    /// written to the current segment too and later records are directed to the next segment
    /// (the prepared one when it is ready). The number of the last record the disk now covers, and the rest of the
    /// snapshot to run, or why there is none (no next segment could be created: the log stays
    /// on the current one). `Err`: the log could not be written.
    fn switch_locked(&self, w: &mut Writer) -> Result<(u64, Result<SnapshotJob>)> {
        let switching = std::time::Instant::now();
        // Most of the queue, without holding up the appliers.
        let flushed = self.flush_locked(w)?;
        let next = w.segment + 1;
        let file = match self.background.take_ready(next) {
            Some(file) => Ok((file, self.options.preallocate.max(MAGIC.len() as u64))),
            None => new_segment(&self.dir, next).map(|f| (f, MAGIC.len() as u64)),
        };
        let mut p = self.pending();
        if p.poisoned {
            return Err(FraudError::Poisoned);
        }
        let (file, capacity) = match file {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a new fraud log segment; no snapshot this time");
                w.since_snapshot = 0;
                // What was applied since the flush stays queued for the next commit.
                return Ok((flushed, Err(e)));
            }
        };
        let upto = p.last;
        // Applied since the flush: they belong to the old segment, which the snapshot covers.
        // They are taken with the queue held and written after it is released, with the writer
        // still held, so appliers never wait for a disk write: what they apply meanwhile is
        // queued behind them and reaches the new segment at the next commit.
        let mut rest = std::mem::take(&mut w.spare);
        std::mem::swap(&mut p.buf, &mut rest);
        let rest_records = std::mem::take(&mut p.records);
        let copying = std::time::Instant::now();
        let engine = self.engine.snapshot();
        let copy = copying.elapsed();
        drop(p);
        if rest_records > 0 {
            let written = w.file.write_all(&rest).and_then(|()| w.file.sync_data());
            if let Err(e) = written {
                self.pending().poisoned = true;
                return Err(e.into());
            }
            w.len += rest.len() as u64;
            w.since_snapshot += rest_records;
        }
        rest.clear();
        w.spare = rest;
        w.file = file;
        w.segment = next;
        w.len = MAGIC.len() as u64;
        w.capacity = capacity;
        w.since_snapshot = 0;
        self.background.current.store(next, Ordering::Release);
        Ok((
            upto,
            Ok(SnapshotJob {
                segment_from: next,
                engine,
                copy,
                switch: switching.elapsed(),
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_writes_put_every_byte_in_place() {
        let dir = std::env::temp_dir().join(format!("aurum-paced-{}", std::process::id()));
        fs_err::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        // Not a multiple of the chunk, so the last piece is short; distinct bytes per position.
        let bytes: Vec<u8> = (0..PACED_CHUNK * 2 + 1234)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut f = fs_err::File::create(&path).unwrap();
        write_paced(&mut f, Paced::Bytes(&bytes)).unwrap();
        write_paced(&mut f, Paced::Zeros(PACED_CHUNK as u64 + 5)).unwrap();
        write_paced(&mut f, Paced::Bytes(b"end")).unwrap();
        drop(f);
        let back = fs_err::read(&path).unwrap();
        assert_eq!(back.len(), bytes.len() + PACED_CHUNK + 5 + 3);
        assert_eq!(&back[..bytes.len()], &bytes[..]);
        assert!(back[bytes.len()..back.len() - 3].iter().all(|&b| b == 0));
        assert_eq!(&back[back.len() - 3..], b"end");
        fs_err::remove_dir_all(&dir).unwrap();
    }

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

#[cfg(test)]
mod snapshot_format {
    use super::*;
    use crate::testing::{SCHEMA, ev};

    fn spec() -> FeatureSpec {
        FeatureSpec::from_toml_str(&format!(
            r#"{SCHEMA}
[[features]]
kind = "mean"
entity = "customer_id"
window = "1d"
[[features]]
kind = "distinct"
entity = "customer_id"
of = "terminal_id"
window = "7d"
[[features]]
kind = "first_seen"
entity = "customer_id"
of = "terminal_id"
[[features]]
kind = "fraud_rate"
entity = "terminal_id"
window = "7d"
delay = "1h"
"#
        ))
        .unwrap()
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("aurum-snapfmt-{name}-{}", std::process::id()));
        let _ = fs_err::remove_dir_all(&dir);
        dir
    }

    /// A state directory from before the binary snapshot (`snapshot.json`) recovers to the
    /// same state, and the next snapshot replaces the JSON file with `snapshot.bin`.
    #[test]
    fn a_json_snapshot_from_before_still_recovers_and_is_replaced() {
        let dir = temp("legacy");
        let spec = spec();
        let live = {
            let (d, _) = DurableEngine::recover(&dir, &spec, None).unwrap();
            for i in 0..40 {
                let e = ev(
                    &format!("e{i}"),
                    1_000 + i * 600,
                    &format!("c{}", i % 3),
                    &format!("t{}", i % 7),
                    10.0 + i as f64 * 0.1,
                );
                d.score_and_apply(&e).unwrap();
            }
            d.add_label(&LabelRef::EventId("e5".into()), true, 30_000)
                .unwrap();
            d.snapshot().unwrap();
            // Two more after the snapshot: they replay from the log.
            for i in 40..42 {
                d.score_and_apply(&ev(&format!("e{i}"), 1_000 + i * 600, "c1", "t9", 1.5))
                    .unwrap();
            }
            d.engine().snapshot()
        };
        // Rewrite the binary snapshot as the JSON file an earlier version wrote.
        let bin = dir.join(SNAPSHOT);
        let snap = read_snapshot(&dir).unwrap().unwrap();
        fs_err::write(
            dir.join(LEGACY_SNAPSHOT),
            serde_json::to_vec(&snap).unwrap(),
        )
        .unwrap();
        fs_err::remove_file(&bin).unwrap();
        {
            let (d, report) = DurableEngine::recover(&dir, &spec, None).unwrap();
            assert!(report.snapshot_loaded, "{report:?}");
            assert_eq!(report.events_replayed, 2, "{report:?}");
            assert!(
                d.engine().snapshot() == live,
                "the JSON snapshot recovers another state"
            );
            d.snapshot().unwrap();
        }
        assert!(bin.exists());
        assert!(
            !dir.join(LEGACY_SNAPSHOT).exists(),
            "the JSON snapshot is left behind"
        );
        let (d, report) = DurableEngine::recover(&dir, &spec, None).unwrap();
        assert!(
            report.snapshot_loaded && report.events_replayed == 0,
            "{report:?}"
        );
        assert!(d.engine().snapshot() == live);
        drop(d);
        fs_err::remove_dir_all(&dir).unwrap();
    }

    /// A snapshot file that is not one (no magic, or a body that does not decode) is reported as
    /// corruption naming the file, never read as an empty state.
    #[test]
    fn a_damaged_snapshot_is_refused_with_its_path() {
        let dir = temp("damaged");
        let spec = spec();
        {
            let (d, _) = DurableEngine::recover(&dir, &spec, None).unwrap();
            d.score_and_apply(&ev("e0", 1_000, "c0", "t0", 3.0))
                .unwrap();
            d.snapshot().unwrap();
        }
        let path = dir.join(SNAPSHOT);
        let good = fs_err::read(&path).unwrap();
        for bad in [
            b"{\"segment_from\":1}".to_vec(),
            good[..good.len() - 3].to_vec(),
        ] {
            fs_err::write(&path, &bad).unwrap();
            let err = DurableEngine::recover(&dir, &spec, None).unwrap_err();
            assert!(matches!(err, FraudError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains("snapshot.bin"), "{err}");
        }
        fs_err::remove_dir_all(&dir).unwrap();
    }
}
