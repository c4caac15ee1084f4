//! The audit log against a real SQLite file: group commit, reopening, tampering, durability.

use std::path::{Path, PathBuf};

use std::time::Duration;

use aurum_registry::audit::{
    AnchorKey, AnchorOptions, AnchorProblem, AuditEntry, AuditError, AuditLog, AuditOptions,
    AuditQuery, BreakReason, GENESIS_HASH, canonical_json, event, hash_input, mask_fields,
};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection as _, Row as _};

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("audit.db")
}

fn prediction(n: u64) -> AuditEntry {
    AuditEntry::new(event::PREDICTION, "ops-key")
        .with_request_id(format!("req-{n}"))
        .with_model("churn", Some(3))
        .with_input_sha256(hash_input(&json!({ "n": n })))
        .with_details(json!({ "outputs": { "score": 0.25 }, "latency_us": n }))
}

/// A connection that bypasses `AuditLog`: what someone with access to the file can do.
async fn raw_connection(path: &Path) -> SqliteConnection {
    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .expect("raw connection")
}

/// A raw connection that has added a trigger refusing every `test.poison` entry.
async fn poison_trigger(path: &Path) -> SqliteConnection {
    let mut raw = raw_connection(path).await;
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON audit_log WHEN NEW.event = 'test.poison' \
         BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    raw
}

async fn log_with(path: &Path, records: u64) -> AuditLog {
    let log = AuditLog::open(path).await.expect("open");
    for n in 1..=records {
        log.append(prediction(n)).await.expect("append");
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_are_gapless_share_commits_and_verify() {
    const TASKS: u64 = 16;
    const APPENDS: u64 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(db_path(&dir)).await.unwrap();

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            let mut n = task;
            while n < APPENDS {
                seqs.push(log.append(prediction(n)).await.unwrap().seq);
                n += TASKS;
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=APPENDS).collect::<Vec<_>>(),
        "every append got its own seq, no gaps"
    );

    let stats = log.stats();
    assert_eq!(stats.records_committed, APPENDS);
    assert_eq!(stats.batches_failed, 0);
    assert!(
        stats.batches_committed < APPENDS / 2,
        "group commit should share transactions, got {} batches for {APPENDS} appends",
        stats.batches_committed
    );

    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records_checked, APPENDS);
    assert_eq!(report.head.unwrap().seq, APPENDS);
    assert_eq!(log.count().await.unwrap(), APPENDS);
    log.close().await.unwrap();
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("audit.db");
    let log = log_with(&path, 10).await;
    let before = log.get(10).await.unwrap().unwrap();
    log.close().await.unwrap();

    let log = AuditLog::open(&path).await.unwrap();
    assert_eq!(log.head().await.unwrap().unwrap().hash, before.hash);
    let next = log.append(prediction(11)).await.unwrap();
    assert_eq!(next.seq, 11);
    assert_eq!(next.prev_hash, before.hash);
    for n in 12..=15 {
        log.append(prediction(n)).await.unwrap();
    }
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records_checked, 15);
    log.close().await.unwrap();
}

#[tokio::test]
async fn first_record_links_to_genesis_and_hashes_recompute() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(&db_path(&dir), 2).await;
    let records = log.tail(10).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].prev_hash, GENESIS_HASH);
    assert_eq!(records[1].prev_hash, records[0].hash);
    for record in &records {
        assert_eq!(record.compute_hash(), record.hash);
        let ts = record
            .ts
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        assert_eq!(ts.len(), "2025-01-02T03:04:05.123456Z".len(), "{ts}");
    }
    log.close().await.unwrap();
}

#[tokio::test]
async fn altered_details_are_named_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(&db_path(&dir), 12).await;

    let mut raw = raw_connection(&db_path(&dir)).await;
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query(r#"UPDATE audit_log SET details = '{"outputs":{"score":0.99}}' WHERE seq = 7"#)
        .execute(&mut raw)
        .await
        .unwrap();

    let report = log.verify().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.records_checked, 6);
    let broken = report.first_broken.unwrap();
    assert_eq!(broken.seq, 7);
    assert_eq!(broken.reason, BreakReason::HashMismatch);
    assert_eq!(
        broken.reason.to_string(),
        "hash mismatch: record contents were altered"
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn altered_record_with_recomputed_hash_breaks_the_next_link() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(&db_path(&dir), 8).await;
    let mut forged = log.get(4).await.unwrap().unwrap();
    forged.actor = "mallory".to_owned();
    let forged_hash = forged.compute_hash();

    let mut raw = raw_connection(&db_path(&dir)).await;
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor = $1, hash = $2 WHERE seq = 4")
        .bind("mallory")
        .bind(&forged_hash)
        .execute(&mut raw)
        .await
        .unwrap();

    let broken = log.verify().await.unwrap().first_broken.unwrap();
    assert_eq!(broken.seq, 5);
    assert_eq!(
        broken.reason.to_string(),
        "prev_hash does not match record 4"
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn deleted_middle_record_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(&db_path(&dir), 9).await;

    let mut raw = raw_connection(&db_path(&dir)).await;
    sqlx::query("DROP TRIGGER audit_log_no_delete")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE seq = 5")
        .execute(&mut raw)
        .await
        .unwrap();

    let report = log.verify().await.unwrap();
    assert_eq!(report.records_checked, 4);
    let broken = report.first_broken.unwrap();
    assert_eq!(broken.seq, 5);
    assert_eq!(broken.reason, BreakReason::Gap { first: 5, last: 5 });
    assert_eq!(broken.reason.to_string(), "gap: record 5 missing");
    log.close().await.unwrap();
}

#[tokio::test]
async fn newest_records_deleted_behind_the_writer_show_as_a_gap_after_its_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_the_newest_two_deleted(&dir).await;
    // The writer chains onto the head its own last commit left (seq 8), not onto what is left.
    let next = log.append(prediction(9)).await.unwrap();
    assert_eq!(next.seq, 9);
    let report = log.verify().await.unwrap();
    let broken = report.first_broken.unwrap();
    assert_eq!(broken.reason, BreakReason::Gap { first: 7, last: 8 });
    log.close().await.unwrap();
}

#[tokio::test]
async fn update_and_delete_are_refused_while_the_triggers_stand() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(&db_path(&dir), 3).await;

    let mut raw = raw_connection(&db_path(&dir)).await;
    let update = sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        .execute(&mut raw)
        .await
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(&mut raw)
        .await
        .unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");

    assert!(log.verify().await.unwrap().ok);
    assert_eq!(log.count().await.unwrap(), 3);
    log.close().await.unwrap();
}

#[tokio::test]
async fn hashes_do_not_depend_on_key_order() {
    let a: Value = serde_json::from_str(r#"{"z":1,"a":{"y":[1,{"k":2,"b":3}],"x":0.5}}"#).unwrap();
    let b: Value = serde_json::from_str(r#"{"a":{"x":0.5,"y":[1,{"b":3,"k":2}]},"z":1}"#).unwrap();
    assert_eq!(hash_input(&a), hash_input(&b));
    assert_eq!(canonical_json(&a), canonical_json(&b));

    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(db_path(&dir)).await.unwrap();
    let record = log
        .append(AuditEntry::new(event::MODEL_REGISTER, "cli").with_details(a))
        .await
        .unwrap();
    let mut reordered = record.clone();
    reordered.details = b;
    assert_eq!(reordered.compute_hash(), record.hash);

    // Storage may re-order keys too (as PostgreSQL jsonb does): the chain still verifies.
    let mut raw = raw_connection(&db_path(&dir)).await;
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query(r#"UPDATE audit_log SET details = '{ "z": 1, "a": {"y": [1, {"k": 2, "b": 3}], "x": 0.5} }'"#)
        .execute(&mut raw)
        .await
        .unwrap();
    assert!(log.verify().await.unwrap().ok);
    log.close().await.unwrap();
}

#[tokio::test]
async fn append_returns_only_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(db_path(&dir)).await.unwrap();
    let mut check = raw_connection(&db_path(&dir)).await;
    let journal: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut check)
        .await
        .unwrap()
        .get(0);
    assert_eq!(journal, "wal");
    for n in 1..=5 {
        let record = log.append(prediction(n)).await.unwrap();
        // A fresh, independent connection sees the record as soon as append returns.
        let mut reader = raw_connection(&db_path(&dir)).await;
        let row = sqlx::query("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(i64::try_from(record.seq).unwrap())
            .fetch_one(&mut reader)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>(0), record.hash);
        reader.close().await.unwrap();
    }
    log.close().await.unwrap();
}

/// A batch that cannot be written fails every waiter in it and does not advance the chain.
/// Single-threaded runtime: the writer cannot run until this task yields, so the four entries
/// below are deterministically one batch.
#[tokio::test(flavor = "current_thread")]
async fn failing_batch_fails_every_waiter_and_keeps_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(&db_path(&dir), 3).await;
    let head = log.head().await.unwrap().unwrap();

    let mut raw = poison_trigger(&db_path(&dir)).await;

    log.append_nowait(prediction(4)).unwrap();
    log.append_nowait(prediction(5)).unwrap();
    let (healthy, poisoned) = tokio::join!(
        log.append(prediction(6)),
        log.append(AuditEntry::new("test.poison", "cli")),
    );
    assert!(
        matches!(healthy, Err(AuditError::Write { batch: 4, .. })),
        "{healthy:?}"
    );
    assert!(
        matches!(poisoned, Err(AuditError::Write { batch: 4, .. })),
        "{poisoned:?}"
    );
    let stats = log.stats();
    assert_eq!((stats.batches_failed, stats.nowait_lost), (1, 2));
    assert_eq!(log.head().await.unwrap().unwrap(), head);

    sqlx::query("DROP TRIGGER poison")
        .execute(&mut raw)
        .await
        .unwrap();
    let next = log.append(prediction(7)).await.unwrap();
    assert_eq!(next.seq, 4);
    assert_eq!(next.prev_hash, head.hash);
    assert!(log.verify().await.unwrap().ok);
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_batch_failing_after_its_first_insert_leaves_nothing_and_the_log_goes_on() {
    // Batches over 32 entries are inserted in several statements; the poisoned entry sits past
    // the first, so a batch holding it has rows inserted before the failure, which must go.
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(&db_path(&dir), 3).await;
    let mut raw = poison_trigger(&db_path(&dir)).await;
    for n in 4..=80 {
        let entry = if n == 60 {
            AuditEntry::new("test.poison", "cli")
        } else {
            prediction(n)
        };
        log.append_nowait(entry).unwrap();
    }
    // `Err` when the flush rode in the failed batch; the counts below say what happened.
    let _ = log.flush().await;
    let stats = log.stats();
    assert!(stats.batches_failed >= 1, "{stats:?}");
    assert!(stats.nowait_lost >= 1, "{stats:?}");
    assert_eq!(stats.records_committed + stats.nowait_lost, 80, "{stats:?}");
    assert_eq!(log.count().await.unwrap(), stats.records_committed);
    sqlx::query("DROP TRIGGER poison")
        .execute(&mut raw)
        .await
        .unwrap();
    let next = log.append(prediction(81)).await.unwrap();
    assert_eq!(next.seq, stats.records_committed + 1);
    assert!(log.verify().await.unwrap().ok);
    log.close().await.unwrap();
}

#[tokio::test]
async fn nowait_entries_are_durable_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(db_path(&dir)).await.unwrap();
    let other = log.clone();
    for n in 1..=100 {
        other.append_nowait(prediction(n)).unwrap();
    }
    other.close().await.unwrap(); // not the last handle: flushes only
    assert_eq!(log.count().await.unwrap(), 100);
    for n in 101..=150 {
        log.append_nowait(prediction(n)).unwrap();
    }
    log.close().await.unwrap();
    // The last handle's close waited for the writer: the WAL is checkpointed and gone.
    assert!(!dir.path().join("audit.db-wal").exists());

    let reopened = AuditLog::open(db_path(&dir)).await.unwrap();
    assert_eq!(reopened.count().await.unwrap(), 150);
    assert!(reopened.verify().await.unwrap().ok);
    reopened.close().await.unwrap();
}

#[tokio::test]
async fn reads_filter_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(db_path(&dir)).await.unwrap();
    for n in 1..=6 {
        log.append(prediction(n)).await.unwrap();
        log.append(
            AuditEntry::new(event::ALIAS_MOVE, "cli")
                .with_model(if n % 2 == 0 { "churn" } else { "fraud" }, Some(1))
                .with_details(json!({ "alias": "prod" })),
        )
        .await
        .unwrap();
    }
    assert_eq!(log.count().await.unwrap(), 12);
    assert_eq!(log.get(0).await.unwrap(), None);
    assert_eq!(log.get(13).await.unwrap(), None);
    assert_eq!(log.get(2).await.unwrap().unwrap().event, event::ALIAS_MOVE);

    let seqs = |records: Vec<aurum_registry::audit::AuditRecord>| {
        records.into_iter().map(|r| r.seq).collect::<Vec<_>>()
    };
    assert_eq!(seqs(log.tail(3).await.unwrap()), [10, 11, 12]);
    assert_eq!(seqs(log.tail(100).await.unwrap()).len(), 12);

    let page = |after_seq, event: Option<&str>, model: Option<&str>| AuditQuery {
        after_seq,
        limit: 4,
        event: event.map(str::to_owned),
        model: model.map(str::to_owned),
    };
    assert_eq!(
        seqs(log.list(&page(0, None, None)).await.unwrap()),
        [1, 2, 3, 4]
    );
    assert_eq!(
        seqs(log.list(&page(4, None, None)).await.unwrap()),
        [5, 6, 7, 8]
    );
    assert_eq!(
        seqs(
            log.list(&page(0, Some(event::ALIAS_MOVE), None))
                .await
                .unwrap()
        ),
        [2, 4, 6, 8]
    );
    assert_eq!(
        seqs(log.list(&page(0, None, Some("fraud"))).await.unwrap()),
        [2, 6, 10]
    );
    assert_eq!(
        seqs(
            log.list(&page(0, Some(event::PREDICTION), Some("churn")))
                .await
                .unwrap()
        ),
        [1, 3, 5, 7]
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn invalid_entries_are_refused_before_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(db_path(&dir)).await.unwrap();
    let refused = [
        AuditEntry::new("Prediction", "cli"),
        AuditEntry::new("model..register", "cli"),
        AuditEntry::new(event::PREDICTION, ""),
        AuditEntry::new(event::PREDICTION, "cli").with_details(json!([1, 2])),
        AuditEntry::new(event::PREDICTION, "cli").with_input_sha256("not-a-hash"),
    ];
    for entry in refused {
        let error = log.append(entry.clone()).await.unwrap_err();
        assert!(
            matches!(error, AuditError::InvalidEntry(_)),
            "{entry:?}: {error:?}"
        );
        assert!(matches!(
            log.append_nowait(entry),
            Err(AuditError::InvalidEntry(_))
        ));
    }
    assert_eq!(log.count().await.unwrap(), 0);
    assert_eq!(log.head().await.unwrap(), None);
    let report = log.verify().await.unwrap();
    assert!(report.ok && report.records_checked == 0);
    log.close().await.unwrap();
}

#[tokio::test]
async fn prediction_records_store_the_input_hash_and_only_allowed_fields() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(db_path(&dir)).await.unwrap();
    let input = json!({ "age": 41, "income": 52000.0, "name": "Ada Lovelace" });
    let entry = AuditEntry::new(event::PREDICTION, "ops-key")
        .with_input_sha256(hash_input(&input))
        .with_details(json!({ "input": mask_fields(&input, &["age".to_owned()]) }));
    log.append(entry).await.unwrap();

    let mut raw = raw_connection(&db_path(&dir)).await;
    let stored: String = sqlx::query("SELECT details FROM audit_log WHERE seq = 1")
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, r#"{"input":{"age":41}}"#);
    assert!(!stored.contains("Ada"));
    log.close().await.unwrap();
}

/// Two independent writers on one file (a running server and a CLI command, say) interleave
/// without forking the chain or failing an append.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_on_one_file_share_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let a = AuditLog::open(&path).await.expect("open a");
    let b = AuditLog::open(&path).await.expect("open b");
    let mut tasks = Vec::new();
    for (i, log) in [a.clone(), b.clone()].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for n in 0..50u64 {
                log.append(prediction(i as u64 * 1000 + n))
                    .await
                    .expect("no append fails");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = a.verify().await.unwrap();
    assert!(
        report.ok,
        "{:?} {:?}",
        report.first_broken, report.anchor_problem
    );
    assert_eq!(report.records_checked, 100);
    assert_eq!(b.count().await.unwrap(), 100);
    // Each writer moved the anchor after its own batches; it only ever moved forward, so it ends
    // on the newest record whichever process committed it.
    assert_eq!(report.anchor, report.head);
    assert_eq!(report.anchor.unwrap().seq, 100);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A log of 8 records whose newest two (7 and 8) were deleted behind its back.
async fn log_with_the_newest_two_deleted(dir: &tempfile::TempDir) -> AuditLog {
    let log = log_with(&db_path(dir), 8).await;
    let mut raw = raw_connection(&db_path(dir)).await;
    drop_trigger(&mut raw, "audit_log_no_delete").await;
    sqlx::query("DELETE FROM audit_log WHERE seq > 6")
        .execute(&mut raw)
        .await
        .unwrap();
    log
}

/// Drops a trigger the way someone with write access to the file would.
async fn drop_trigger(raw: &mut SqliteConnection, name: &'static str) {
    let sql = match name {
        "audit_log_no_delete" => "DROP TRIGGER audit_log_no_delete",
        _ => "DROP TRIGGER audit_log_no_update",
    };
    sqlx::query(sql).execute(raw).await.unwrap();
}

#[tokio::test]
async fn untampered_log_verifies_against_its_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(&db_path(&dir), 5).await;
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{:?}", report.anchor_problem);
    assert_eq!(
        report.anchor,
        Some(log.head().await.unwrap().unwrap()),
        "the anchor covers the newest acknowledged record"
    );
    let text = std::fs::read_to_string(dir.path().join("audit.anchor")).unwrap();
    assert!(text.starts_with("aurum-audit-anchor v1\nseq "), "{text}");
    assert_eq!(anchored_seq(&dir), 5);
    log.close().await.unwrap();
}

#[tokio::test]
async fn deleting_the_newest_records_is_named_as_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_the_newest_two_deleted(&dir).await;

    let report = log.verify().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_broken, None, "what is left is a valid chain");
    assert_eq!(
        report.anchor_problem,
        Some(AnchorProblem::Truncated {
            anchor_seq: 8,
            last_seq: 6
        })
    );
    assert_eq!(
        report.anchor_problem.unwrap().to_string(),
        "audit log truncated: anchor covers seq 8 but the log ends at 6"
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn editing_a_record_and_rehashing_the_rest_is_named_as_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(&db_path(&dir), 8).await;
    let mut raw = raw_connection(&db_path(&dir)).await;
    drop_trigger(&mut raw, "audit_log_no_update").await;
    // Edit record 4, then recompute every hash after it: a chain with no secret cannot tell.
    let mut prev_hash = log.get(3).await.unwrap().unwrap().hash;
    for seq in 4..=8 {
        let mut record = log.get(seq).await.unwrap().unwrap();
        if seq == 4 {
            record.actor = "mallory".to_owned();
        }
        record.prev_hash = prev_hash;
        record.hash = record.compute_hash();
        sqlx::query("UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&record.actor)
            .bind(&record.prev_hash)
            .bind(&record.hash)
            .bind(i64::try_from(seq).unwrap())
            .execute(&mut raw)
            .await
            .unwrap();
        prev_hash = record.hash;
    }

    let report = log.verify().await.unwrap();
    assert_eq!(
        report.first_broken, None,
        "the rewritten chain is self-consistent"
    );
    assert_eq!(report.records_checked, 8);
    assert!(!report.ok);
    let problem = report.anchor_problem.unwrap();
    assert_eq!(problem, AnchorProblem::Rewritten { seq: 8 });
    assert!(problem.to_string().contains("rewritten"), "{problem}");
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_forged_anchor_is_named_and_appends_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(&db_path(&dir), 6).await;
    // Truncate and move the anchor back to match, without the key.
    let anchor = dir.path().join("audit.anchor");
    let text = std::fs::read_to_string(&anchor).unwrap();
    let hash4 = log.get(4).await.unwrap().unwrap().hash;
    let hash6 = log.get(6).await.unwrap().unwrap().hash;
    std::fs::write(
        &anchor,
        text.replace("seq 6", "seq 4").replace(&hash6, &hash4),
    )
    .unwrap();

    let problem = log.verify().await.unwrap().anchor_problem.unwrap();
    assert!(
        matches!(problem, AnchorProblem::Invalid { .. }),
        "{problem:?}"
    );
    assert!(
        problem
            .to_string()
            .starts_with("audit anchor forged or corrupt"),
        "{problem}"
    );
    // The writer does not paper over it: the record is committed but not acknowledged.
    let refused = log.append(prediction(7)).await.unwrap_err();
    assert!(matches!(refused, AuditError::Anchor { .. }), "{refused:?}");
    assert_eq!(log.count().await.unwrap(), 7);
    assert_eq!(
        std::fs::read_to_string(&anchor).unwrap(),
        text.replace("seq 6", "seq 4").replace(&hash6, &hash4),
        "the evidence is left as found"
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_deleted_anchor_is_named_and_not_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    log_with(&path, 3).await.close().await.unwrap();
    std::fs::remove_file(dir.path().join("audit.anchor")).unwrap();

    let log = AuditLog::open(&path).await.unwrap();
    let problem = log.verify().await.unwrap().anchor_problem.unwrap();
    assert!(
        matches!(problem, AnchorProblem::Missing { last_seq: 3, .. }),
        "{problem:?}"
    );
    assert!(
        matches!(
            log.append(prediction(4)).await,
            Err(AuditError::Anchor { .. })
        ),
        "appends fail rather than anchor a log that may have been cut"
    );
    assert!(!dir.path().join("audit.anchor").exists());
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_log_from_before_anchoring_is_anchored_once_it_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    log_with(&path, 4).await.close().await.unwrap();
    // What a data directory written before anchoring looks like.
    for name in ["audit.anchor", "audit.anchor.lock", "audit.key"] {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }

    let log = AuditLog::open(&path).await.unwrap();
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{:?}", report.anchor_problem);
    assert_eq!(report.anchor.map(|a| a.seq), Some(4));
    log.append(prediction(5)).await.unwrap();
    assert_eq!(log.verify().await.unwrap().anchor.map(|a| a.seq), Some(5));
    log.close().await.unwrap();
}

#[tokio::test]
async fn an_anchor_key_from_the_environment_must_be_the_same_to_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let options = |secret: &[u8]| AnchorOptions {
        path: dir.path().join("elsewhere.anchor"),
        key: AnchorKey::Secret(secret.to_vec()),
    };
    let secret = [b'k'; 32];
    let log = AuditLog::open_with(&path, options(&secret)).await.unwrap();
    log.append(prediction(1)).await.unwrap();
    assert!(log.verify().await.unwrap().ok);
    log.close().await.unwrap();
    assert!(
        !dir.path().join("audit.key").exists(),
        "no key file with a secret"
    );

    let other = AuditLog::open_with(&path, options(&[b'x'; 32]))
        .await
        .unwrap();
    let problem = other.verify().await.unwrap().anchor_problem.unwrap();
    assert!(
        matches!(problem, AnchorProblem::Invalid { .. }),
        "{problem:?}"
    );
    other.close().await.unwrap();
    assert!(matches!(
        AuditLog::open_with(&path, options(b"too short")).await,
        Err(AuditError::AnchorKey { .. })
    ));
}

#[cfg(unix)]
#[tokio::test]
async fn the_log_and_its_anchor_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(&db_path(&dir), 2).await;
    for name in [
        "audit.db",
        "audit.db-wal",
        "audit.db-shm",
        "audit.key",
        "audit.anchor",
        "audit.anchor.lock",
    ] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} is mode {:o}", mode & 0o777);
    }
    log.close().await.unwrap();
    // A file left world-readable by an older version is tightened at the next open.
    let db = db_path(&dir);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    AuditLog::open(&db).await.unwrap().close().await.unwrap();
    let mode = std::fs::metadata(&db).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

// ---- deferred anchor (`AuditOptions::anchor_interval` above zero) ----------------------------

/// A log whose anchor moves at most every `interval`.
async fn deferred(path: &Path, interval: Duration) -> AuditLog {
    let options = AuditOptions {
        anchor_interval: interval,
    };
    AuditLog::open_with_options(path, AnchorOptions::beside(path), options)
        .await
        .expect("open")
}

/// The seq the anchor file holds: the higher of its two slots' (4 096 bytes each).
fn anchored_seq(dir: &tempfile::TempDir) -> u64 {
    let text = std::fs::read_to_string(dir.path().join("audit.anchor")).unwrap();
    assert_eq!(text.len(), 8192, "two slots");
    let seq = |slot: &str| -> u64 {
        let line = slot.lines().nth(1).unwrap();
        line.strip_prefix("seq ").unwrap().parse().unwrap()
    };
    seq(&text[..4096]).max(seq(&text[4096..]))
}

const LONG: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_deferred_anchor_lags_and_covers_everything_at_flush_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let log = deferred(&path, LONG).await;
    for n in 1..=5 {
        log.append(prediction(n)).await.unwrap();
    }
    assert_eq!(anchored_seq(&dir), 0, "acknowledged before anchored");
    let report = log.verify().await.unwrap();
    assert!(report.ok, "an anchor behind the head verifies: {report:?}");
    log.flush().await.unwrap();
    assert_eq!(anchored_seq(&dir), 5, "flush anchors");
    log.append(prediction(6)).await.unwrap();
    log.append_nowait(prediction(7)).unwrap();
    log.close().await.unwrap();
    assert_eq!(anchored_seq(&dir), 7, "close anchors");
    let log = AuditLog::open(&path).await.unwrap();
    assert!(log.verify().await.unwrap().ok);
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_deferred_anchor_follows_within_its_interval_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let log = deferred(&db_path(&dir), Duration::from_millis(20)).await;
    for n in 1..=3 {
        log.append(prediction(n)).await.unwrap();
    }
    let mut waited = Duration::ZERO;
    while anchored_seq(&dir) < 3 && waited < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    assert_eq!(anchored_seq(&dir), 3, "the timer moved the anchor");
    let commits = log.stats().batches_committed;
    assert!(commits >= 1);
    log.close().await.unwrap();
}

#[tokio::test]
async fn truncation_below_a_lagging_anchor_is_detected_and_inside_its_window_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = deferred(&db_path(&dir), LONG).await;
    for n in 1..=4 {
        log.append(prediction(n)).await.unwrap();
    }
    log.flush().await.unwrap();
    for n in 5..=8 {
        log.append(prediction(n)).await.unwrap();
    }
    assert_eq!(anchored_seq(&dir), 4);
    let mut raw = raw_connection(&db_path(&dir)).await;
    drop_trigger(&mut raw, "audit_log_no_delete").await;

    // The documented window: records the anchor does not cover yet are protected by the chain
    // alone, so cutting them off leaves a log that verifies.
    sqlx::query("DELETE FROM audit_log WHERE seq > 6")
        .execute(&mut raw)
        .await
        .unwrap();
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.anchor.map(|a| a.seq), Some(4));

    // Below the anchor: named.
    sqlx::query("DELETE FROM audit_log WHERE seq > 3")
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        log.verify().await.unwrap().anchor_problem,
        Some(AnchorProblem::Truncated {
            anchor_seq: 4,
            last_seq: 3
        })
    );
    drop(log);
}

#[tokio::test]
async fn a_forged_anchor_stops_deferred_acknowledgements() {
    let dir = tempfile::tempdir().unwrap();
    let log = deferred(&db_path(&dir), Duration::from_millis(10)).await;
    log.append(prediction(1)).await.unwrap();
    log.flush().await.unwrap();
    let anchor = dir.path().join("audit.anchor");
    let forged = std::fs::read_to_string(&anchor)
        .unwrap()
        .replace("seq 1", "seq 0");
    std::fs::write(&anchor, &forged).unwrap();
    assert!(matches!(
        log.verify().await.unwrap().anchor_problem,
        Some(AnchorProblem::Invalid { .. })
    ));
    // The next deferred write finds it; from then on appends are refused, as without a window.
    let mut refused = None;
    for n in 2..200 {
        match log.append(prediction(n)).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(refused, Some(AuditError::Anchor { .. })),
        "{refused:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&anchor).unwrap(),
        forged,
        "left as found"
    );
    assert!(matches!(log.flush().await, Err(AuditError::Anchor { .. })));
    drop(log);
}

/// What a kill -9 between a commit and its deferred anchor write leaves: the anchor behind the
/// head. The next open moves it over the records only if the chain from it is intact.
#[tokio::test]
async fn a_lagging_anchor_is_caught_up_at_open_only_over_an_intact_chain() {
    async fn crashed_with_anchor_at_3(dir: &tempfile::TempDir) -> String {
        let path = db_path(dir);
        let log = deferred(&path, LONG).await;
        for n in 1..=3 {
            log.append(prediction(n)).await.unwrap();
        }
        log.flush().await.unwrap();
        let at_3 = std::fs::read_to_string(dir.path().join("audit.anchor")).unwrap();
        for n in 4..=6 {
            log.append(prediction(n)).await.unwrap();
        }
        log.close().await.unwrap();
        // The anchor write over 4..=6 never happened.
        std::fs::write(dir.path().join("audit.anchor"), &at_3).unwrap();
        at_3
    }

    let dir = tempfile::tempdir().unwrap();
    crashed_with_anchor_at_3(&dir).await;
    let log = AuditLog::open(&db_path(&dir)).await.unwrap();
    assert_eq!(anchored_seq(&dir), 6, "caught up");
    assert!(log.verify().await.unwrap().ok);
    log.close().await.unwrap();

    // Rewritten below the anchor with every later hash recomputed: not anchored over.
    let dir = tempfile::tempdir().unwrap();
    let at_3 = crashed_with_anchor_at_3(&dir).await;
    let path = db_path(&dir);
    {
        let log = AuditLog::open_with_options(
            &path,
            AnchorOptions::beside(&path),
            AuditOptions::default(),
        )
        .await
        .unwrap();
        let records = log
            .list(&AuditQuery {
                after_seq: 0,
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        log.close().await.unwrap();
        std::fs::write(dir.path().join("audit.anchor"), &at_3).unwrap();
        let mut raw = raw_connection(&path).await;
        drop_trigger(&mut raw, "audit_log_no_update").await;
        let mut prev_hash = GENESIS_HASH.to_owned();
        for mut record in records {
            if record.seq == 2 {
                record.actor = "mallory".to_owned();
            }
            record.prev_hash = prev_hash;
            record.hash = record.compute_hash();
            sqlx::query(
                "UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
            )
            .bind(&record.actor)
            .bind(&record.prev_hash)
            .bind(&record.hash)
            .bind(i64::try_from(record.seq).unwrap())
            .execute(&mut raw)
            .await
            .unwrap();
            prev_hash = record.hash;
        }
    }
    let log = AuditLog::open(&path).await.unwrap();
    assert_eq!(anchored_seq(&dir), 3, "not moved over a rewritten chain");
    assert_eq!(
        log.verify().await.unwrap().anchor_problem,
        Some(AnchorProblem::Rewritten { seq: 3 })
    );
    drop(log);
}
