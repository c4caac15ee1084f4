//! The audit log over PostgreSQL: several writers (replicas) on one chain.

use std::sync::Arc;

use aurum_postgres::PgAuditStore;
use aurum_registry::audit::{
    AnchorKey, AnchorOptions, AuditEntry, AuditLog, AuditOptions, AuditQuery, BreakReason,
};
use serde_json::json;

use crate::support::TestDb;

/// An audit log over `url`, as one replica opens it: its own anchor in its own directory.
async fn replica(url: &str, dir: &std::path::Path) -> AuditLog {
    let store = PgAuditStore::connect(url, 4).await.expect("connect");
    AuditLog::open_store(
        Arc::new(store),
        AnchorOptions {
            path: dir.join("audit.anchor"),
            key: AnchorKey::Secret(b"a test anchor key of enough length!!".to_vec()),
        },
        AuditOptions::default(),
    )
    .await
    .expect("open the audit log")
}

fn entry(actor: &str, i: usize) -> AuditEntry {
    AuditEntry::new("prediction", actor)
        .with_request_id(format!("{actor}-{i}"))
        .with_model("credit", Some(1))
        .with_details(json!({"i": i, "actor": actor}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_append_concurrently_to_one_gapless_chain() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut logs = Vec::new();
    for dir in &dirs {
        logs.push(replica(&db.url, dir.path()).await);
    }
    let mut tasks = Vec::new();
    for (r, log) in logs.iter().enumerate() {
        for i in 0..100 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                log.append(entry(&format!("replica{r}"), i)).await
            }));
        }
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().expect("append acknowledged").seq);
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=300).collect::<Vec<u64>>(),
        "seq is gapless and unique"
    );
    for log in &logs {
        assert_eq!(log.count().await.unwrap(), 300);
        let report = log.verify().await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records_checked, 300);
    }
    let mine = logs[1]
        .by_request("replica2-7", "prediction")
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].details["i"], 7);
    for log in logs {
        log.close().await.unwrap();
    }
}

#[tokio::test]
async fn chain_continues_after_reopen_and_reads_match() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = replica(&db.url, dir.path()).await;
    for i in 0..40 {
        log.append(entry("a", i)).await.unwrap();
    }
    log.close().await.unwrap();
    let log = replica(&db.url, dir.path()).await;
    let next = log.append(entry("a", 40)).await.unwrap();
    assert_eq!(next.seq, 41);
    assert_eq!(log.head().await.unwrap().unwrap().seq, 41);
    let page = log
        .list(&AuditQuery {
            after_seq: 10,
            limit: 5,
            event: Some("prediction".into()),
            model: Some("credit".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [11, 12, 13, 14, 15]
    );
    assert_eq!(log.tail(3).await.unwrap().last().unwrap().seq, 41);
    assert_eq!(log.get(7).await.unwrap().unwrap().details["i"], 6);
    for record in log.tail(41).await.unwrap() {
        assert_eq!(record.compute_hash(), record.hash);
    }
    log.close().await.unwrap();
}

#[tokio::test]
async fn edits_are_refused_and_a_forced_edit_breaks_the_chain() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = replica(&db.url, dir.path()).await;
    for i in 0..10 {
        log.append(entry("a", i)).await.unwrap();
    }
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let refused = sqlx::query("UPDATE aurum_audit.audit_log SET actor = 'mallory' WHERE seq = 4")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    let refused = sqlx::query("DELETE FROM aurum_audit.audit_log WHERE seq = 10")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    // The owner can drop the protection; the chain still names the edited record.
    sqlx::query("ALTER TABLE aurum_audit.audit_log DISABLE TRIGGER USER")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE aurum_audit.audit_log SET actor = 'mallory' WHERE seq = 4")
        .execute(&pool)
        .await
        .unwrap();
    let report = log.verify().await.unwrap();
    assert!(!report.ok);
    let broken = report.first_broken.expect("a broken record");
    assert_eq!(broken.seq, 4);
    assert!(
        matches!(broken.reason, BreakReason::HashMismatch),
        "{:?}",
        broken.reason
    );
    pool.close().await;
    log.close().await.unwrap();
}
