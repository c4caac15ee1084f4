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
//! anywhere else is corruption and refuses to load. Writes go "apply in memory, append, fsync,
//! answer": an event is acknowledged only after its record is on disk, and a failed write poisons
//! the engine (memory may be ahead of the disk), so the caller must recover.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

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

struct Writer {
    file: fs_err::File,
    segment: u64,
    poisoned: bool,
    since_snapshot: u64,
}

/// A [`FeatureEngine`] whose every acknowledged change is in a log on disk.
pub struct DurableEngine {
    engine: FeatureEngine,
    dir: PathBuf,
    writer: Mutex<Writer>,
    snapshot_every: Option<u64>,
}

impl std::fmt::Debug for DurableEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableEngine")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
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
    if payload.len() > MAX_RECORD {
        return Err(FraudError::input(
            "event",
            format!("{} bytes is larger than a log record may be", payload.len()),
        ));
    }
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&checksum(&payload));
    buf.extend_from_slice(&payload);
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
            poisoned: false,
            since_snapshot: 0,
        };
        Ok((
            DurableEngine {
                engine,
                dir: dir.to_path_buf(),
                writer: Mutex::new(writer),
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

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Scores and applies a batch of events with one fsync; per-event results in order. An event
    /// refused by validation is not logged and changes nothing. The outer error is an IO
    /// failure, after which the engine is poisoned.
    pub fn score_and_apply_batch(&self, events: &[Event]) -> Result<Vec<Result<Vec<f64>>>> {
        let mut w = self.writer();
        if w.poisoned {
            return Err(FraudError::Poisoned);
        }
        let mut buf = Vec::new();
        let mut out = Vec::with_capacity(events.len());
        let mut logged = 0;
        for e in events {
            let rec = LogRecord::Event(e.clone());
            let mut one = Vec::new();
            // Encode first: an event that cannot be logged must not be applied.
            let result = encode(&rec, &mut one).and_then(|()| self.engine.score_and_apply(e));
            if result.is_ok() {
                buf.extend_from_slice(&one);
                logged += 1;
            }
            out.push(result);
        }
        self.append(&mut w, &buf, logged)?;
        Ok(out)
    }

    /// Scores and applies one event; it is on disk when this returns `Ok`.
    pub fn score_and_apply(&self, e: &Event) -> Result<Vec<f64>> {
        self.score_and_apply_batch(std::slice::from_ref(e))?
            .pop()
            .unwrap_or(Err(FraudError::Poisoned))
    }

    /// Logs and applies a label.
    pub fn add_label(&self, target: &LabelRef, fraud: bool, known_at: i64) -> Result<LabelOutcome> {
        let mut w = self.writer();
        if w.poisoned {
            return Err(FraudError::Poisoned);
        }
        let mut buf = Vec::new();
        encode(
            &LogRecord::Label {
                target: target.clone(),
                fraud,
                known_at,
            },
            &mut buf,
        )?;
        let outcome = self.engine.add_label(target, fraud, known_at)?;
        self.append(&mut w, &buf, 1)?;
        Ok(outcome)
    }

    fn append(&self, w: &mut Writer, buf: &[u8], records: u64) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let written = w.file.write_all(buf).and_then(|()| w.file.sync_data());
        if let Err(e) = written {
            w.poisoned = true;
            return Err(e.into());
        }
        w.since_snapshot += records;
        if self
            .snapshot_every
            .is_some_and(|every| w.since_snapshot >= every)
        {
            self.snapshot_locked(w)?;
        }
        Ok(())
    }

    /// Writes a snapshot of the current state and drops the log segments it covers.
    pub fn snapshot(&self) -> Result<()> {
        let mut w = self.writer();
        if w.poisoned {
            return Err(FraudError::Poisoned);
        }
        self.snapshot_locked(&mut w)
    }

    fn snapshot_locked(&self, w: &mut Writer) -> Result<()> {
        let next = w.segment + 1;
        // On failure the old segment stays the write target and nothing it holds is dropped; a
        // next segment created before the failure is empty and replays as nothing.
        let file = self.write_snapshot(next)?;
        let old = w.segment;
        w.file = file;
        w.segment = next;
        w.since_snapshot = 0;
        for n in segments(&self.dir)?.into_iter().filter(|&n| n <= old) {
            fs_err::remove_file(segment_path(&self.dir, n))?;
        }
        Ok(())
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
