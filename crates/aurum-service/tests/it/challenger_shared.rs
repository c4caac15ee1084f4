//! The challenger setting lives in the registry: a second process on the same registry splits
//! and shadows as the first one set it, and sees it cleared; a setting kept in a file by an
//! earlier release moves into the registry at start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aurum_core::{FamilyName, NoProgress};
use aurum_service::{
    CallContext, ChallengerMode, Config, ModelRef, Platform, Selector, TrainRequest,
};

const GERMAN: &[u8] = include_bytes!("../../../../data/demo/german_credit.csv");

fn caller(request_id: &str) -> CallContext {
    CallContext {
        actor: "test".into(),
        request_id: Some(request_id.into()),
    }
}

async fn train(platform: &Platform, kind: &str, alias: &str) -> u32 {
    let (_, v) = platform
        .run_training(
            &CallContext::cli(),
            TrainRequest {
                dataset: "german".into(),
                target: "creditability".into(),
                kind: FamilyName::new(kind).unwrap(),
                model: "credit".into(),
                params: Default::default(),
                positive_label: None,
                alias: Some(alias.into()),
                date_column: None,
                text_columns: None,
                text_buckets: None,
            },
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    v.version
}

/// The version `platform` answers a champion request with, for request id `id`.
async fn answering(platform: &Platform, id: &str) -> u32 {
    let champion = ModelRef {
        name: "credit".into(),
        selector: Selector::Alias("champion".into()),
    };
    platform
        .resolve_serving(&caller(id), &champion)
        .await
        .unwrap()
        .version
}

/// Waits (up to 5 s: the coherence poll is 200 ms) until `f` holds.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < Duration::from_secs(5), "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenger_set_by_one_process_is_applied_by_every_other() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    let a = Platform::open(config.clone()).await.unwrap();
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
    let champion = train(&a, "logistic", "champion").await;
    let challenger = train(&a, "scorecard", "challenger").await;
    let b = Platform::open(config.clone()).await.unwrap();
    assert_eq!(answering(&b, "r-1").await, champion);

    a.set_challenger(&ctx, "credit", "challenger", ChallengerMode::Split, 1.0)
        .await
        .unwrap();
    eventually("the other process splits", || async {
        answering(&b, "r-2").await == challenger
    })
    .await;
    let report = b.challenger_report("credit").await.unwrap();
    let seen = report.challenger.unwrap();
    assert_eq!((seen.mode, seen.share), (ChallengerMode::Split, 1.0));

    // Set from the second process, half the traffic: both processes pick the same side for a
    // request id.
    b.set_challenger(&ctx, "credit", "challenger", ChallengerMode::Split, 0.5)
        .await
        .unwrap();
    eventually("the first process follows", || async {
        a.challenger_report("credit")
            .await
            .unwrap()
            .challenger
            .is_some_and(|c| c.share == 0.5)
    })
    .await;
    let mut sides = [0usize; 2];
    for i in 0..200 {
        let id = format!("req-{i}");
        let (x, y) = (answering(&a, &id).await, answering(&b, &id).await);
        assert_eq!(x, y, "{id}");
        sides[usize::from(x == challenger)] += 1;
    }
    assert!(sides[0] > 60 && sides[1] > 60, "{sides:?}");

    a.clear_challenger(&ctx, "credit").await.unwrap();
    eventually("the other process stops splitting", || async {
        b.challenger_report("credit")
            .await
            .unwrap()
            .challenger
            .is_none()
    })
    .await;
    assert_eq!(answering(&b, "r-2").await, champion);
    drop((a, b));

    // An earlier release's file moves into the registry when a process starts.
    let legacy = dir.path().join("data/challengers");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::write(
        legacy.join("credit.json"),
        r#"{"alias":"challenger","mode":"shadow","share":0.25}"#,
    )
    .unwrap();
    let c = Platform::open(config).await.unwrap();
    let moved = c
        .challenger_report("credit")
        .await
        .unwrap()
        .challenger
        .unwrap();
    assert_eq!((moved.mode, moved.share), (ChallengerMode::Shadow, 0.25));
    assert!(!legacy.join("credit.json").exists());
}
