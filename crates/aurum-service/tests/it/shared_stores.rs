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
    open(own, replica_stores(shared).await).await
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
        text_columns: None,
        text_buckets: None,
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

const HANDBOOK: &str = include_str!("../../../../data/fraud/handbook_sim_transactions.csv");

/// A data row of the handbook file as a live event (its label left out).
fn event_fields(line: &str) -> aurum_service::EventFields {
    let c: Vec<&str> = line.split(',').collect();
    let v = serde_json::json!({
        "TRANSACTION_ID": c[0], "TX_DATETIME": c[1], "CUSTOMER_ID": c[2], "TERMINAL_ID": c[3],
        "TX_AMOUNT": c[4].parse::<f64>().unwrap(), "TX_TIME_SECONDS": c[5],
    });
    v.as_object().unwrap().clone()
}

/// Two replicas keep one card history in Redis: events sent to either, in turns, get exactly
/// the answers one process with its own state gives, and each sees the other's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fraud_events_on_two_replicas_share_one_state_in_redis() {
    let Ok(url) = std::env::var("AURUM_TEST_REDIS_URL") else {
        eprintln!(
            "skipped fraud_events_on_two_replicas_share_one_state_in_redis: AURUM_TEST_REDIS_URL not set"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let redis = aurum_redis::RedisStateFactory::connect(
        &url,
        aurum_redis::RedisOptions {
            key_prefix: format!("aurum-it:{}", uuid::Uuid::new_v4().simple()),
            ..Default::default()
        },
    )
    .unwrap();
    let redis: Arc<dyn aurum_fraud::OnlineStateFactory> = Arc::new(redis);
    let with_redis = |own: &str| {
        let (shared, own, redis) = (shared.clone(), dir.path().join(own), Arc::clone(&redis));
        async move {
            let mut p = replica_stores(&shared).await;
            p.fraud_state = Some(redis);
            open(&own, p).await
        }
    };
    let a = with_redis("a").await;
    let b = with_redis("b").await;
    // The reference: the same registry, its state in its own process.
    let local = open(&dir.path().join("local"), replica_stores(&shared).await).await;

    let ctx = CallContext::cli();
    let mut lines = HANDBOOK.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let train = format!("{header}\n{}\n", rows[..8_000].join("\n"));
    a.import_dataset(
        &ctx,
        "tx",
        train.into_bytes(),
        Default::default(),
        Default::default(),
    )
    .await
    .unwrap();
    let request = TrainRequest {
        dataset: "tx".into(),
        target: "TX_FRAUD".into(),
        kind: "fraud_gbdt".parse().unwrap(),
        model: "fraud".into(),
        params: [("spec", "handbook"), ("n_estimators", "20")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        positive_label: None,
        alias: Some("champion".into()),
        date_column: Some("TX_DATETIME".into()),
        text_columns: None,
        text_buckets: None,
    };
    a.run_training(&ctx, request, Arc::new(NoProgress))
        .await
        .unwrap();

    let live = &rows[8_000..8_400];
    for (k, chunk) in live.chunks(25).enumerate() {
        let events: Vec<_> = chunk.iter().map(|l| event_fields(l)).collect();
        let replica = if k % 2 == 0 { &a } else { &b };
        let model = replica.resolve(&ModelRef::champion("fraud")).await.unwrap();
        let got = replica
            .score_events(&ctx, model, events.clone())
            .await
            .unwrap();
        let model = local.resolve(&ModelRef::champion("fraud")).await.unwrap();
        let want = local.score_events(&ctx, model, events).await.unwrap();
        for (g, w) in got.outcomes.iter().zip(&want.outcomes) {
            assert_eq!(g.id, w.id);
            assert_eq!(g.features, w.features, "event {}", g.id);
            assert_eq!(g.score, w.score, "event {}", g.id);
        }
    }
    // Either replica refuses an event the other applied, and both report one state.
    let model = b.resolve(&ModelRef::champion("fraud")).await.unwrap();
    let err = b
        .score_events(&ctx, model.clone(), vec![event_fields(live[0])])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already applied"), "{err}");
    let sa = a
        .event_state(a.resolve(&ModelRef::champion("fraud")).await.unwrap())
        .await
        .unwrap();
    let sb = b.event_state(model).await.unwrap();
    assert_eq!(sa.events_applied, 400);
    assert_eq!((sa.entities, sa.events_held), (sb.entities, sb.events_held));
    assert!(sa.backend.starts_with("redis "), "{}", sa.backend);
    assert!(
        !dir.path().join("a/state").exists(),
        "nothing kept on the replica's disk"
    );
    for p in [a, b, local] {
        p.shutdown().await;
    }
}

async fn replica_stores(shared: &std::path::Path) -> Stores {
    Stores {
        fraud_state: None,
        limits: None,
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
    }
}

async fn open(own: &std::path::Path, stores: Stores) -> Platform {
    let config = Config {
        data_dir: own.to_path_buf(),
        ..Default::default()
    };
    Platform::open_with_stores(config, aurum_families::builtin(), stores)
        .await
        .unwrap()
}
