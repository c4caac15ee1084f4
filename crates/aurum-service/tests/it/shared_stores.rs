//! Two platforms ("replicas") with data directories of their own over one set of stores: what
//! one registers, runs or writes, the other serves.

use std::sync::Arc;

use aurum_core::NoProgress;
use aurum_registry::audit::SqliteAuditStore;
use aurum_registry::{LocalArtifactStore, SqliteStore};
use aurum_service::batch::{BatchJobRequest, FileFormat};
use aurum_service::{CallContext, Config, ModelRef, Platform, Stores, TrainRequest};

const GERMAN: &[u8] = include_bytes!("../../../../data/demo/german_credit.csv");

async fn replica(shared: &std::path::Path, own: &std::path::Path) -> Platform {
    let config = Config {
        data_dir: own.to_path_buf(),
        ..Default::default()
    };
    let stores = Stores {
        meta: Arc::new(
            SqliteStore::open(&shared.join("registry.db"))
                .await
                .unwrap(),
        ),
        audit: Arc::new(
            SqliteAuditStore::open_file(shared.join("audit.db"))
                .await
                .unwrap(),
        ),
        artifacts: Arc::new(LocalArtifactStore::new(shared.join("artifacts")).unwrap()),
    };
    Platform::open_with_stores(config, aurum_families::builtin(), stores)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_scored_on_one_replica_is_downloaded_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let a = replica(&shared, &dir.path().join("a")).await;
    let b = replica(&shared, &dir.path().join("b")).await;
    let ctx = CallContext::cli();
    a.import_dataset(
        &ctx,
        "german",
        GERMAN.to_vec(),
        Default::default(),
        Default::default(),
    )
    .await
    .unwrap();
    let request = TrainRequest {
        dataset: "german".into(),
        target: "creditability".into(),
        kind: "logistic".parse().unwrap(),
        model: "credit".into(),
        params: Default::default(),
        positive_label: None,
        alias: Some("champion".into()),
        date_column: None,
    };
    a.run_training(&ctx, request, Arc::new(NoProgress))
        .await
        .unwrap();
    let job = a
        .submit_batch_job(
            &ctx,
            BatchJobRequest {
                model: ModelRef::champion("credit"),
                dataset: "german".into(),
                output_format: FileFormat::Csv,
                explain: false,
                keep: vec![],
                audit_rows: false,
            },
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let done = loop {
        let j = a.get_batch_job(&job.id).await.unwrap();
        if j.result.is_some() {
            break j;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", j.job.state);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let result = done.result.unwrap();
    assert_eq!(result.rows_scored, 1000);

    // Replica b never scored it: its summary, output and error file come from the store.
    assert!(!dir.path().join("b/batch-jobs").exists());
    let seen = b.get_batch_job(&job.id).await.unwrap();
    assert_eq!(seen.result.unwrap().output_sha256, result.output_sha256);
    let (path, format) = b.batch_job_output(&job.id).await.unwrap();
    assert_eq!(format, FileFormat::Csv);
    assert!(path.starts_with(dir.path().join("b")), "{}", path.display());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(aurum_core::sha256_hex(&bytes), result.output_sha256);
    let errors = std::fs::read(b.batch_job_errors(&job.id).await.unwrap()).unwrap();
    assert_eq!(aurum_core::sha256_hex(&errors), result.errors_sha256);
    // Both list it.
    for p in [&a, &b] {
        let listed = p.list_batch_jobs(10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].job.id, job.id);
    }
    a.shutdown().await;
    b.shutdown().await;
}
