use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aurum_fraud::{DurableEngine, DurableOptions, FeatureEngine, LabelRef};

use crate::common::{DAY, TempDir, event, rich_spec};

const CHILD_ENV: &str = "AURUM_FRAUD_CRASH_CHILD_DIR";

fn nth_event(i: usize) -> aurum_fraud::Event {
    event(
        &format!("e{i}"),
        i as i64 * 30,
        &format!("c{}", i % 7),
        &format!("t{}", i % 5),
        1.0 + (i % 13) as f64,
    )
}

fn last_segment(dir: &Path) -> PathBuf {
    all_segments(dir).pop().unwrap()
}

/// Offsets at which each complete record of a segment ends (the documented record format).
fn record_ends(bytes: &[u8]) -> Vec<usize> {
    let mut at = 8;
    let mut ends = Vec::new();
    while at + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 12 + len;
        if at > bytes.len() {
            break;
        }
        ends.push(at);
    }
    ends
}

/// Write N events (with snapshots on the way), cut the log mid-record, recover: exactly the
/// fully written events are back, the state equals a reference engine's, and writing resumes.
#[test]
fn recovery_after_a_torn_write_keeps_every_complete_event() {
    let spec = rich_spec();
    let n = 230;
    for cut_from_end in [1usize, 7, 40, 200, 900] {
        let dir = TempDir::new("torn");
        {
            let (d, report) = DurableEngine::recover(&dir.0, &spec, Some(64)).unwrap();
            assert_eq!(report.events_replayed, 0);
            for i in 0..n {
                d.score_and_apply(&nth_event(i)).unwrap();
            }
            d.add_label(&LabelRef::EventId("e200".into()), true, 200 * 30 + 5)
                .unwrap();
        }
        let seg = last_segment(&dir.0);
        let bytes = std::fs::read(&seg).unwrap();
        let ends = record_ends(&bytes);
        let cut = bytes.len() - cut_from_end;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut as u64)
            .unwrap();
        let complete_in_segment = ends.iter().filter(|&&e| e <= cut).count();
        let (d, report) = DurableEngine::recover(&dir.0, &spec, Some(64)).unwrap();
        assert!(
            report.snapshot_loaded && report.torn_tail_bytes > 0,
            "{report:?}"
        );
        assert_eq!(
            report.events_replayed + report.labels_replayed,
            complete_in_segment as u64
        );
        // The segment holds the last `ends.len()` records: events, then the label.
        let lost = ends.len() - complete_in_segment;
        let events_lost = lost.saturating_sub(1);
        assert!(
            cut_from_end < 200 || events_lost > 0,
            "the cut at {cut_from_end} should reach an event"
        );
        let kept = n - events_lost;
        for i in 0..n {
            assert_eq!(
                d.engine().contains_event(&format!("e{i}")),
                i < kept,
                "cut {cut_from_end}: e{i}"
            );
        }
        let reference = FeatureEngine::new(&spec).unwrap();
        for i in 0..kept {
            reference.apply(&nth_event(i)).unwrap();
        }
        if lost == 0 {
            reference
                .add_label(&LabelRef::EventId("e200".into()), true, 200 * 30 + 5)
                .unwrap();
        }
        let probe = event("probe", n as i64 * 30 + 3 * DAY, "c1", "t1", 5.0);
        assert_eq!(
            d.engine().features(&probe).unwrap(),
            reference.features(&probe).unwrap()
        );
        // Writing resumes after the cut, and a second recovery sees it.
        d.score_and_apply(&nth_event(n + 1)).unwrap();
        drop(d);
        let (again, report) = DurableEngine::recover(&dir.0, &spec, None).unwrap();
        assert_eq!(report.torn_tail_bytes, 0);
        assert!(again.engine().contains_event(&format!("e{}", n + 1)));
    }
}

/// The child half of the SIGKILL test: appends until killed, printing each acknowledged id.
/// Without the environment variable (a normal test run) it has nothing to do.
#[test]
fn crash_child_appends_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    // Preallocated segments: the kill lands in records written over zeros, with the next
    // segment prepared beside the current one.
    let options = DurableOptions {
        snapshot_every: Some(100),
        preallocate: 24 << 10,
    };
    let (d, _) = DurableEngine::recover_with(Path::new(&dir), &rich_spec(), options).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0..1_000_000 {
        d.score_and_apply(&nth_event(i)).unwrap();
        writeln!(out, "acked e{i}").unwrap();
        out.flush().unwrap();
    }
}

/// A child process appends and is killed with SIGKILL mid-stream; recovery has every event
/// whose append returned.
#[test]
fn sigkill_during_appends_loses_no_acknowledged_event() {
    let dir = TempDir::new("kill");
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "durable::crash_child_appends_until_killed",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &dir.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = HashSet::new();
    while acked.len() < 450 {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(id) = line.strip_prefix("acked ") {
                    acked.insert(id.to_string());
                }
            }
            _ => panic!("the child stopped after {} acknowledgements", acked.len()),
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Acknowledgements already in the pipe count too: their appends had returned.
    for line in lines.map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("acked ") {
            acked.insert(id.to_string());
        }
    }
    let (d, report) = DurableEngine::recover(&dir.0, &rich_spec(), None).unwrap();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !d.engine().contains_event(id))
        .collect();
    assert!(
        missing.is_empty(),
        "lost acknowledged events {missing:?} ({report:?})"
    );
    assert!(report.snapshot_loaded, "{report:?}");
}

const GROUP_CHILD_ENV: &str = "AURUM_FRAUD_GROUP_CRASH_CHILD_DIR";
const WRITERS: usize = 4;

/// Event `i` of writer `w`: every writer's events share one timestamp, so concurrent writers
/// never fall behind the watermark, and spread over a few cards and terminals, so they meet in
/// the same entities.
fn writer_event(w: usize, i: usize) -> aurum_fraud::Event {
    event(
        &format!("w{w}-{i}"),
        1_000,
        &format!("c{}", (w + i) % 5),
        &format!("t{}", i % 3),
        1.0 + (i % 11) as f64,
    )
}

/// The child half of the concurrent SIGKILL test: `WRITERS` threads append until killed, each
/// printing the ids its call acknowledged (events and labels, with snapshots on the way).
#[test]
fn group_crash_child_appends_until_killed() {
    let Some(dir) = std::env::var_os(GROUP_CHILD_ENV) else {
        return;
    };
    let (d, _) = DurableEngine::recover(Path::new(&dir), &rich_spec(), Some(150)).unwrap();
    let out = std::sync::Mutex::new(std::io::stdout());
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (d, out) = (&d, &out);
            s.spawn(move || {
                for i in 0..1_000_000 {
                    let e = writer_event(w, i);
                    d.score_and_apply(&e).unwrap();
                    let mut line = format!("acked {}\n", e.id);
                    if i % 10 == 9 {
                        let target = format!("w{w}-{}", i - 1);
                        d.add_label(&LabelRef::EventId(target.clone()), true, 1_000)
                            .unwrap();
                        line.push_str(&format!("labelled {target}\n"));
                    }
                    let mut out = out.lock().unwrap();
                    out.write_all(line.as_bytes()).unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
}

/// Several threads append at once (their fsyncs shared by group commit) and the process is
/// killed with SIGKILL: recovery has every event and label whose call returned.
#[test]
fn sigkill_during_concurrent_appends_loses_no_acknowledged_event() {
    let dir = TempDir::new("group-kill");
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "durable::group_crash_child_appends_until_killed",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(GROUP_CHILD_ENV, &dir.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut acked, mut labelled) = (HashSet::new(), HashSet::new());
    // `split_once`, not `strip_prefix`: the harness's `test ... ` line has no newline, so the
    // first acknowledgement shares its line.
    let record = |line: &str, acked: &mut HashSet<String>, labelled: &mut HashSet<String>| {
        if let Some((_, id)) = line.split_once("acked ") {
            acked.insert(id.to_string());
        } else if let Some((_, id)) = line.split_once("labelled ") {
            labelled.insert(id.to_string());
        }
    };
    // Kill once every writer has been acknowledged (the appends really are concurrent) and
    // plenty have.
    let mut seen = 0;
    while seen < 900 || (0..WRITERS).any(|w| !acked.contains(&format!("w{w}-0"))) {
        match lines.next() {
            Some(Ok(line)) => {
                record(&line, &mut acked, &mut labelled);
                seen += 1;
            }
            _ => panic!("the child stopped after {seen} acknowledgements"),
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    for line in lines.map_while(Result::ok) {
        record(&line, &mut acked, &mut labelled);
    }
    let (d, report) = DurableEngine::recover(&dir.0, &rich_spec(), None).unwrap();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !d.engine().contains_event(id))
        .collect();
    assert!(
        missing.is_empty(),
        "lost acknowledged events {missing:?} ({report:?})"
    );
    assert!(report.snapshot_loaded, "{report:?}");
    // Each label names a different event, so every acknowledged one counts in the replayed
    // state (a few more may have reached the disk without being acknowledged).
    assert!(
        d.engine().stats().labels_applied >= labelled.len() as u64,
        "{} labels applied, {} acknowledged ({report:?})",
        d.engine().stats().labels_applied,
        labelled.len()
    );
}

/// Concurrent writers sharing commits leave a log that replays to exactly the state they
/// built in memory, snapshots included.
#[test]
fn concurrent_appends_replay_to_the_same_state() {
    let dir = TempDir::new("group-replay");
    let spec = rich_spec();
    let live = {
        let (d, _) = DurableEngine::recover(&dir.0, &spec, Some(97)).unwrap();
        std::thread::scope(|s| {
            for w in 0..WRITERS {
                let d = &d;
                s.spawn(move || {
                    for i in 0..120 {
                        d.score_and_apply(&writer_event(w, i)).unwrap();
                        if i % 10 == 9 {
                            let target = LabelRef::EventId(format!("w{w}-{i}"));
                            d.add_label(&target, true, 1_000).unwrap();
                        }
                    }
                });
            }
        });
        assert_eq!(d.engine().stats().events_applied, (WRITERS * 120) as u64);
        d.engine().snapshot()
    };
    let (d, report) = DurableEngine::recover(&dir.0, &spec, None).unwrap();
    assert!(report.snapshot_loaded, "{report:?}");
    assert!(d.engine().snapshot() == live, "the replayed state differs");
}

#[test]
fn a_snapshot_under_another_spec_is_refused() {
    let dir = TempDir::new("spec");
    {
        let (d, _) = DurableEngine::recover(&dir.0, &rich_spec(), None).unwrap();
        d.score_and_apply(&nth_event(0)).unwrap();
        d.snapshot().unwrap();
    }
    let mut other = rich_spec();
    other.features.pop();
    let err = DurableEngine::recover(&dir.0, &other, None).unwrap_err();
    assert_eq!(err.code(), "fraud_spec_mismatch");
    assert!(
        err.to_string().contains("rebuild the state from history"),
        "{err}"
    );
    // Rebuilding from history into a fresh directory works and matches live.
    let fresh = TempDir::new("rebuild");
    let events: Vec<_> = (0..50).map(nth_event).collect();
    let rebuilt = DurableEngine::rebuild(&fresh.0, &other, &events, &[], DAY, None).unwrap();
    let live = FeatureEngine::new(&other).unwrap();
    for e in &events {
        live.apply(e).unwrap();
    }
    let probe = nth_event(60);
    assert_eq!(
        rebuilt.engine().features(&probe).unwrap(),
        live.features(&probe).unwrap()
    );
    drop(rebuilt);
    let (reopened, report) = DurableEngine::recover(&fresh.0, &other, None).unwrap();
    assert!(report.snapshot_loaded && report.events_replayed == 0);
    assert_eq!(
        reopened.engine().features(&probe).unwrap(),
        live.features(&probe).unwrap()
    );
}

#[test]
fn refused_events_are_not_logged() {
    let dir = TempDir::new("refused");
    let spec = rich_spec();
    {
        let (d, _) = DurableEngine::recover(&dir.0, &spec, None).unwrap();
        let results = d
            .score_and_apply_batch(&[
                nth_event(5),
                nth_event(1),
                event("neg", 200, "c", "t", -1.0),
            ])
            .unwrap();
        assert!(results[0].is_ok());
        assert_eq!(
            results[1].as_ref().unwrap_err().code(),
            "fraud_out_of_order"
        );
        assert_eq!(
            results[2].as_ref().unwrap_err().code(),
            "fraud_invalid_field"
        );
    }
    let (d, report) = DurableEngine::recover(&dir.0, &spec, None).unwrap();
    assert_eq!(report.events_replayed, 1);
    assert!(d.engine().contains_event("e5") && !d.engine().contains_event("e1"));
}

/// `when_durable` tells each waiter exactly once, only when its record is in the log file, with
/// blocking waiters committing beside the background committer; and the engine can be dropped
/// and reopened afterwards.
#[test]
fn asynchronous_waiters_are_told_once_their_records_are_on_disk() {
    use std::sync::Arc;
    use std::sync::mpsc;
    let dir = TempDir::new("when-durable");
    let spec = rich_spec();
    let d = Arc::new(DurableEngine::recover(&dir.0, &spec, None).unwrap().0);
    let (tx, rx) = mpsc::channel();
    const N: usize = 400;
    std::thread::scope(|s| {
        for w in 0..4usize {
            let (d, tx) = (&d, tx.clone());
            let dir = dir.0.clone();
            s.spawn(move || {
                for i in (w..N).step_by(4) {
                    // One writer at a time applies (the ticket is then the record count).
                    let ticket = {
                        static GATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
                        let _g = GATE.lock().unwrap();
                        let (r, t) = d.score_and_apply_logged(&[writer_event(w, i)]).unwrap();
                        r.into_iter().next().unwrap().unwrap();
                        (t, d.engine().stats().events_applied as usize)
                    };
                    let (t, applied) = ticket;
                    if w == 0 {
                        // A blocking waiter commits on its own thread meanwhile.
                        d.wait_durable(t).unwrap();
                        tx.send((
                            applied,
                            Ok(()),
                            record_ends(&std::fs::read(last_segment(&dir)).unwrap()).len(),
                        ))
                        .unwrap();
                    } else {
                        let (tx, dir) = (tx.clone(), dir.clone());
                        d.when_durable(
                            t,
                            Box::new(move |done| {
                                let on_disk =
                                    record_ends(&std::fs::read(last_segment(&dir)).unwrap()).len();
                                tx.send((applied, done, on_disk)).unwrap();
                            }),
                        );
                    }
                }
            });
        }
    });
    drop(tx);
    let mut told = HashSet::new();
    while let Ok((applied, done, on_disk)) = rx.recv_timeout(std::time::Duration::from_secs(20)) {
        done.unwrap();
        assert!(
            on_disk >= applied,
            "told at record {applied} with {on_disk} on disk"
        );
        assert!(told.insert(applied), "record {applied} told twice");
    }
    assert_eq!(told.len(), N, "every waiter is told");
    // The background committer holds the engine for at most one idle wait after its last work;
    // the directory is free once the engine is gone.
    let engine = Arc::downgrade(&d);
    drop(d);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while engine.strong_count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine outlived its committer's idle wait"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (again, report) = DurableEngine::recover(&dir.0, &spec, None).unwrap();
    assert_eq!(
        again.engine().stats().events_applied,
        N as u64,
        "{report:?}"
    );
}

/// Segment files in `dir`, in order.
fn all_segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segs.sort();
    segs
}

/// Where the records of a segment end (the documented format; a zero length is unused space).
fn records_end(bytes: &[u8]) -> usize {
    let mut at = 8;
    while at + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 || at + 12 + len > bytes.len() {
            break;
        }
        at += 12 + len;
    }
    at
}

/// Preallocated segments: records are written over zeros, the zeros after them are not
/// damage, a record torn inside them is cut off (even with the next segment already prepared
/// after it), and the state replays to a reference engine's.
#[test]
fn preallocated_segments_replay_and_cut_a_torn_record() {
    let spec = rich_spec();
    let dir = TempDir::new("prealloc");
    let prealloc = 32 << 10;
    let options = DurableOptions {
        snapshot_every: Some(50),
        preallocate: prealloc,
    };
    let n = 180;
    {
        let (d, _) = DurableEngine::recover_with(&dir.0, &spec, options).unwrap();
        for i in 0..n {
            d.score_and_apply(&nth_event(i)).unwrap();
            // Let the background work (the next segment, snapshots) keep up, so that every
            // move finds its segment prepared.
            if i % 10 == 0 {
                d.settle();
            }
        }
        // Dropping the engine waits for its background work.
    }
    let segs = all_segments(&dir.0);
    assert!(segs.len() >= 2, "{segs:?}");
    for s in &segs {
        assert_eq!(std::fs::metadata(s).unwrap().len(), prealloc, "{s:?}");
    }
    // The current segment: records over zeros; after it, the prepared next one, empty.
    let current_path = segs[segs.len() - 2].clone();
    let current = std::fs::read(&current_path).unwrap();
    let end = records_end(&current);
    assert!(end > 8, "the current segment holds records");
    assert!(current[end..].iter().all(|&b| b == 0));
    assert_eq!(
        records_end(&std::fs::read(&segs[segs.len() - 1]).unwrap()),
        8
    );

    let reference = FeatureEngine::new(&spec).unwrap();
    for i in 0..n {
        reference.apply(&nth_event(i)).unwrap();
    }
    let probe = event("probe", n as i64 * 30 + DAY, "c2", "t3", 7.0);
    {
        let (d, report) = DurableEngine::recover_with(&dir.0, &spec, options).unwrap();
        assert!(report.snapshot_loaded, "{report:?}");
        assert_eq!(report.torn_tail_bytes, 0, "zeros are not a torn tail");
        assert!(report.events_replayed > 0, "{report:?}");
        assert_eq!(
            d.engine().features(&probe).unwrap(),
            reference.features(&probe).unwrap()
        );
    }

    // A record cut short over the zeros of the current segment, the prepared one after it.
    let mut torn = current.clone();
    let payload = br#"{"event":{"id":"torn","#;
    torn[end..end + 4].copy_from_slice(&500u32.to_le_bytes());
    torn[end + 4..end + 12].copy_from_slice(&[7; 8]);
    torn[end + 12..end + 12 + payload.len()].copy_from_slice(payload);
    std::fs::write(&current_path, &torn).unwrap();
    let (d, report) = DurableEngine::recover_with(&dir.0, &spec, options).unwrap();
    assert!(report.torn_tail_bytes > 0, "{report:?}");
    assert_eq!(std::fs::metadata(&current_path).unwrap().len(), end as u64);
    assert_eq!(
        d.engine().features(&probe).unwrap(),
        reference.features(&probe).unwrap()
    );
    // Writing resumes in the prepared segment, and a second recovery finds it whole.
    d.score_and_apply(&nth_event(n)).unwrap();
    drop(d);
    let (again, report) = DurableEngine::recover_with(&dir.0, &spec, options).unwrap();
    assert_eq!(report.torn_tail_bytes, 0, "{report:?}");
    assert!(again.engine().contains_event(&format!("e{n}")));
    assert!(!again.engine().contains_event("torn"));

    // Damage in a segment that later records follow is corruption, not a torn tail: the cut
    // segment (its records, to `end`) is followed by the one holding e{n}.
    drop(again);
    let mut bytes = std::fs::read(&current_path).unwrap();
    assert_eq!(bytes.len(), end);
    bytes[end - 2] ^= 0x55;
    std::fs::write(&current_path, &bytes).unwrap();
    let err = DurableEngine::recover_with(&dir.0, &spec, options).unwrap_err();
    assert_eq!(err.code(), "fraud_state_corrupt", "{err}");
    assert!(
        err.to_string().contains("followed by later records"),
        "{err}"
    );
}

/// A fresh log starts on a plain segment and moves to the prepared one; a preallocated
/// segment that is full moves to the next, so no segment file grows past its preallocation;
/// the log replays across every move.
#[test]
fn a_full_preallocated_segment_moves_to_the_next() {
    let spec = rich_spec();
    let dir = TempDir::new("prealloc-roll");
    let prealloc = 1 << 10;
    let options = DurableOptions {
        snapshot_every: None,
        preallocate: prealloc,
    };
    let n = 60;
    {
        let (d, _) = DurableEngine::recover_with(&dir.0, &spec, options).unwrap();
        for i in 0..n {
            d.settle();
            d.score_and_apply(&nth_event(i)).unwrap();
        }
    }
    let segs = all_segments(&dir.0);
    // Events of about 150 bytes, a kibibyte per segment: several moves.
    assert!(segs.len() > 5, "{segs:?}");
    let first = std::fs::read(&segs[0]).unwrap();
    assert_eq!(
        records_end(&first),
        first.len(),
        "the first segment is not preallocated"
    );
    for s in &segs[1..] {
        assert_eq!(std::fs::metadata(s).unwrap().len(), prealloc, "{s:?}");
    }
    let (d, report) = DurableEngine::recover_with(&dir.0, &spec, options).unwrap();
    assert_eq!(report.events_replayed, n as u64, "{report:?}");
    assert_eq!(report.torn_tail_bytes, 0);
    let reference = FeatureEngine::new(&spec).unwrap();
    for i in 0..n {
        reference.apply(&nth_event(i)).unwrap();
    }
    let probe = event("probe", n as i64 * 30 + DAY, "c3", "t1", 2.0);
    assert_eq!(
        d.engine().features(&probe).unwrap(),
        reference.features(&probe).unwrap()
    );
}

/// A background snapshot that cannot be written leaves the log whole: every commit succeeds,
/// the failure is kept for the operator, no segment is dropped, and recovery replays every
/// event.
#[test]
fn a_failed_background_snapshot_keeps_the_log() {
    let spec = rich_spec();
    let dir = TempDir::new("snapfail");
    // The snapshot's temporary file cannot be created where a directory stands.
    std::fs::create_dir_all(dir.0.join("snapshot.bin.tmp")).unwrap();
    let n = 120;
    {
        let (d, _) = DurableEngine::recover(&dir.0, &spec, Some(20)).unwrap();
        for i in 0..n {
            d.score_and_apply(&nth_event(i)).unwrap();
        }
        // The explicit snapshot waits for the background one, then fails the same way.
        let err = d.snapshot().unwrap_err();
        assert!(err.to_string().contains("snapshot.bin.tmp"), "{err}");
        assert!(d.last_snapshot_error().is_some());
    }
    assert!(!dir.0.join("snapshot.bin").exists());
    assert!(
        all_segments(&dir.0).len() > 1,
        "every switched segment is kept"
    );
    let (d, report) = DurableEngine::recover(&dir.0, &spec, None).unwrap();
    assert!(!report.snapshot_loaded);
    assert_eq!(report.events_replayed, n as u64);
    for i in 0..n {
        assert!(d.engine().contains_event(&format!("e{i}")), "e{i}");
    }
}

/// A state directory has one writer: a second engine on it, in the same process or another, is
/// refused while the first lives (it would remove the first one's segment in preparation and
/// write segments the first also writes), and opens once the first is gone.
#[test]
fn a_second_writer_on_a_directory_is_refused() {
    let dir = TempDir::new("one-writer");
    let spec = rich_spec();
    let options = DurableOptions {
        snapshot_every: None,
        preallocate: 64 << 10,
    };
    let (first, _) = DurableEngine::recover_with(&dir.0, &spec, options).unwrap();
    for i in 0..20 {
        first.score_and_apply(&nth_event(i)).unwrap();
    }
    let err = DurableEngine::recover_with(&dir.0, &spec, options).unwrap_err();
    assert_eq!(err.code(), "fraud_state_in_use", "{err}");
    assert!(err.to_string().contains("one writer"), "{err}");
    // The refused engine changed nothing: the first one goes on, and everything it acknowledged
    // is there once it is gone.
    for i in 20..40 {
        first.score_and_apply(&nth_event(i)).unwrap();
    }
    let live = first.engine().snapshot();
    drop(first);
    let (second, report) = DurableEngine::recover_with(&dir.0, &spec, options).unwrap();
    assert_eq!(report.events_replayed, 40, "{report:?}");
    assert!(
        second.engine().snapshot() == live,
        "the replayed state differs"
    );
}
