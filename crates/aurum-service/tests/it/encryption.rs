//! Encryption at rest through the platform: datasets, artifacts and reports are sealed on disk
//! and load normally; a wrong or missing key is a clear error; a key rotation re-seals
//! everything without a moment where stored data cannot be read.

use std::path::Path;

use aurum_core::NoProgress;
use aurum_service::{CallContext, Config, ModelRef, Platform, PredictOptions, TrainRequest};

const GERMAN: &[u8] = include_bytes!("../../../../data/demo/german_credit.csv");
const K1: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const K1_WRONG: &str = "k1:ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eff";
const K2: &str = "k2:202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

async fn open(dir: &Path, keys: Option<&str>) -> Result<Platform, aurum_service::ServiceError> {
    let mut config = Config {
        data_dir: dir.join("data"),
        ..Default::default()
    };
    config.registry.encryption_keys = keys.map(String::from);
    Platform::open(config).await
}

/// Every file under `artifacts/`, with its bytes.
fn stored_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("data/artifacts")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

async fn score(platform: &Platform) -> Result<Vec<f64>, aurum_service::ServiceError> {
    let loaded = platform.resolve(&ModelRef::champion("credit")).await?;
    let samples = platform.sample_rows("german", 5, "creditability").await?;
    let rows = samples
        .into_iter()
        .map(|pairs| {
            loaded
                .input_schema()
                .names()
                .map(|n| pairs.iter().find(|(k, _)| k == n).unwrap().1.clone())
                .collect()
        })
        .collect();
    let out = platform
        .predict(&CallContext::cli(), loaded, rows, PredictOptions::default())
        .await?;
    Ok(out.records.iter().map(|r| r.probability).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_sealed_on_disk_load_normally_and_survive_a_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let platform = open(dir.path(), Some(K1)).await.unwrap();
    let ctx = CallContext::cli();
    platform
        .import_dataset(
            &ctx,
            "german",
            GERMAN.to_vec(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let (job, _) = platform
        .run_training(
            &ctx,
            TrainRequest {
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
            },
            std::sync::Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(job.state.as_str(), "succeeded");
    let before = score(&platform).await.unwrap();
    platform.shutdown().await;
    drop(platform);

    // On disk: every file is sealed with k1; the dataset's header and the model's manifest are
    // nowhere in clear.
    let files = stored_files(dir.path());
    assert!(files.len() >= 3, "dataset, artifact and report: {files:?}");
    for (path, bytes) in &files {
        assert!(bytes.starts_with(b"AURUMENC"), "{path} is not sealed");
        assert_eq!(&bytes[10..12], b"k1", "{path}");
        for clear in [&b"creditability"[..], b"logistic", b"duration_in_month"] {
            assert!(
                !bytes.windows(clear.len()).any(|w| w == clear),
                "{path} leaks {clear:?}"
            );
        }
    }

    // Reopened with the key: identical answers.
    let platform = open(dir.path(), Some(K1)).await.unwrap();
    assert_eq!(score(&platform).await.unwrap(), before);
    platform.shutdown().await;
    drop(platform);

    // The wrong key material under the same id, or no key at all: a clear error, never a
    // model built from garbage.
    let platform = open(dir.path(), Some(K1_WRONG)).await.unwrap();
    let e = score(&platform).await.unwrap_err();
    assert_eq!(e.code(), "artifact_decrypt_failed", "{e}");
    assert!(e.to_string().contains("does not open it"), "{e}");
    assert!(
        !e.public_message().contains("k1:"),
        "{}",
        e.public_message()
    );
    platform.shutdown().await;
    drop(platform);
    let platform = open(dir.path(), Some(K2)).await.unwrap();
    let e = score(&platform).await.unwrap_err();
    assert!(e.to_string().contains("`k1`"), "{e}");
    platform.shutdown().await;
    drop(platform);

    // Rotation: k2 in front, k1 behind, everything still reads; re-seal; then k2 alone reads.
    let platform = open(dir.path(), Some(&format!("{K2};{K1}"))).await.unwrap();
    assert_eq!(score(&platform).await.unwrap(), before);
    let rewritten = platform.reencrypt_artifacts(&ctx).await.unwrap();
    assert_eq!(rewritten, files.len());
    assert_eq!(platform.reencrypt_artifacts(&ctx).await.unwrap(), 0);
    platform.shutdown().await;
    drop(platform);
    for (path, bytes) in stored_files(dir.path()) {
        assert_eq!(&bytes[10..12], b"k2", "{path}");
    }
    let platform = open(dir.path(), Some(K2)).await.unwrap();
    assert_eq!(score(&platform).await.unwrap(), before);
    // The audit chain is untouched by all of this.
    assert!(platform.audit_verify().await.unwrap().ok);
}

#[tokio::test]
async fn a_bad_key_configuration_stops_the_platform_from_opening() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), Some("k1:1234")).await.err().unwrap();
    assert!(e.to_string().contains("32"), "{e}");
    let e = open(dir.path(), Some("")).await.err().unwrap();
    assert!(e.to_string().contains("no encryption key"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audited_inputs_are_sealed_at_rest_and_open_after_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let open_with = |keys: Option<String>| {
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        config.registry.encryption_keys = keys;
        config.audit.fields_in_clear = vec!["credit_amount".into()];
        config.audit.masked_fields = vec!["age_in_years".into()];
        Platform::open(config)
    };
    let platform = open_with(Some(K1.into())).await.unwrap();
    let ctx = CallContext::cli();
    platform
        .import_dataset(
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
    platform
        .run_training(&ctx, request, std::sync::Arc::new(NoProgress))
        .await
        .unwrap();
    score(&platform).await.unwrap();
    let record = platform
        .audit_tail(10)
        .await
        .unwrap()
        .into_iter()
        .rfind(|r| r.event == "prediction")
        .unwrap();
    assert!(
        record.details.get("inputs_in_clear").is_none(),
        "{}",
        record.details
    );
    let sealed = record.details["inputs_sealed"].as_str().unwrap().to_owned();
    let opened = platform.audited_inputs(&record).unwrap().unwrap();
    let rows = opened.as_array().unwrap();
    assert_eq!(rows.len(), 5, "{opened}");
    assert!(rows[0]["credit_amount"].is_number(), "{opened}");
    assert!(
        rows[0]["age_in_years"].as_str().unwrap().starts_with("***"),
        "{opened}"
    );
    platform.shutdown().await;
    drop(platform);

    // Nothing of the kept inputs is in the audit file in clear.
    let clear_amount = rows[0]["credit_amount"].to_string();
    let db = std::fs::read(dir.path().join("data/audit.db")).unwrap();
    let wal = std::fs::read(dir.path().join("data/audit.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(16).any(|w| w == b"\"credit_amount\":"),
            "a kept input field is stored in clear"
        );
    }
    assert!(sealed.len() > clear_amount.len());

    // After a rotation (k2 first, k1 behind) the old record still opens; without keys it is a
    // clear error; the chain verifies either way (it hashes the sealed text).
    let platform = open_with(Some(format!("{K2};{K1}"))).await.unwrap();
    let record_again = platform.audit_list(aurum_service::types::AuditQuery {
        after_seq: record.seq - 1,
        limit: 1,
        event: None,
        model: None,
    });
    let record_again = record_again.await.unwrap().remove(0);
    assert_eq!(
        platform.audited_inputs(&record_again).unwrap().unwrap(),
        opened
    );
    assert!(platform.audit_verify().await.unwrap().ok);
    platform.shutdown().await;
    drop(platform);
    let platform = open_with(None).await.unwrap();
    let e = platform.audited_inputs(&record_again).unwrap_err();
    assert_eq!(e.code(), "encryption_not_configured", "{e}");
    assert!(platform.audit_verify().await.unwrap().ok);
}
