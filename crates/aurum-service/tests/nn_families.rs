//! The neural families (aurum-nn) through the platform: trained by the job runner on bundled
//! data, served with decisions, reasons and explanations, and reloaded from their artifacts by
//! a new platform on the same data directory with bit-identical outputs.

use std::sync::Arc;

use aurum_contract::Output;
use aurum_core::{FamilyName, NoProgress, Schema, Value};
use aurum_service::{CallContext, Config, ModelRef, Platform, PredictOptions, TrainRequest};

const GERMAN: &[u8] = include_bytes!("../../../data/demo/german_credit.csv");
const DIGITS: &[u8] = include_bytes!("../../../data/images/digits_8x8.csv");

/// The first `n` rows of a CSV, parsed against a model's input schema by the serving parser.
fn rows_of(csv: &[u8], schema: &Schema, n: usize) -> Vec<Vec<Value>> {
    let mut reader = csv::Reader::from_reader(csv);
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .take(n)
        .map(|r| {
            let r = r.unwrap();
            schema
                .fields
                .iter()
                .map(|f| {
                    let i = header.iter().position(|h| h == f.name).unwrap();
                    aurum_data::parse_cell(&r[i], f.ty).unwrap()
                })
                .collect()
        })
        .collect()
}

async fn open(dir: &std::path::Path) -> Platform {
    Platform::open(Config {
        data_dir: dir.join("data"),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn train(
    platform: &Platform,
    dataset: &str,
    target: &str,
    kind: &str,
    params: &[(&str, &str)],
) -> u32 {
    let (job, version) = platform
        .run_training(
            &CallContext::cli(),
            TrainRequest {
                dataset: dataset.into(),
                target: target.into(),
                kind: FamilyName::new(kind).unwrap(),
                model: format!("{dataset}-{kind}"),
                params: params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                positive_label: None,
                alias: Some("champion".into()),
                date_column: None,
                text_columns: None,
                text_buckets: None,
            },
            Arc::new(NoProgress),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    assert_eq!(job.state.as_str(), "succeeded");
    assert_eq!(version.kind, kind);
    version.version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlp_trains_on_german_credit_serves_reasons_and_reloads_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let platform = open(dir.path()).await;
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
    let version = train(&platform, "german", "creditability", "mlp", &[]).await;
    let report = platform
        .version_report("german-mlp", version)
        .await
        .unwrap();
    assert!(
        report.metrics.auc > 0.72,
        "held-out AUC {}",
        report.metrics.auc
    );

    let model = platform
        .resolve(&ModelRef::champion("german-mlp"))
        .await
        .unwrap();
    let rows = rows_of(GERMAN, model.input_schema(), 60);
    let opts = || PredictOptions {
        explain: true,
        started: None,
    };
    let first = platform
        .predict(&ctx, model.clone(), rows.clone(), opts())
        .await
        .unwrap();
    // Explanations add up to the log-odds; declined applicants get adverse reasons.
    for r in &first.records {
        let e = r.explanation.as_ref().unwrap();
        let total = e.base_value + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
        let logit = (r.probability / (1.0 - r.probability)).ln();
        assert!((total - logit).abs() < 1e-9, "{total} vs {logit}");
        assert_eq!(e.contributions.len(), model.input_schema().len());
    }
    let declined: Vec<_> = first
        .records
        .iter()
        .filter(|r| r.decision.as_str() == "decline")
        .collect();
    assert!(!declined.is_empty(), "no declined applicant in 60 rows");
    for r in declined {
        assert!(!r.reasons.is_empty(), "a decline without reasons");
        assert!(r.reasons.len() <= 4);
    }
    // An unseen category is not an error.
    let mut unseen = rows[0].clone();
    let purpose = model.input_schema().index_of("purpose").unwrap();
    unseen[purpose] = Value::Str("a purpose nobody had".into());
    let p = model.binary().unwrap().predict_proba_one(&unseen).unwrap();
    assert!((0.0..=1.0).contains(&p));

    // A new platform on the same data directory loads the artifact and answers the same bits.
    platform.shutdown().await;
    drop((platform, model));
    let platform = open(dir.path()).await;
    let model = platform
        .resolve(&ModelRef::champion("german-mlp"))
        .await
        .unwrap();
    let second = platform.predict(&ctx, model, rows, opts()).await.unwrap();
    for (a, b) in first.records.iter().zip(&second.records) {
        assert_eq!(a.probability.to_bits(), b.probability.to_bits());
        assert_eq!(a.reasons, b.reasons);
        assert_eq!(a.explanation, b.explanation);
    }
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cnn_trains_on_digits_serves_classes_and_reloads_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let platform = open(dir.path()).await;
    let ctx = CallContext::cli();
    platform
        .import_dataset(
            &ctx,
            "digits",
            DIGITS.to_vec(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let version = train(
        &platform,
        "digits",
        "label",
        "cnn",
        &[("height", "8"), ("width", "8"), ("epochs", "15")],
    )
    .await;
    let v = platform
        .resolve(&ModelRef {
            name: "digits-cnn".into(),
            selector: aurum_service::Selector::Version(version),
        })
        .await
        .unwrap();
    // Every pixel is an input, the digits' always-blank corner pixels included: a client
    // sends whole images (a served model once refused `pixel_0` as "not a feature").
    assert_eq!(v.input_schema().fields.len(), 64);
    let rows = rows_of(DIGITS, v.input_schema(), 40);
    let first = platform
        .predict_outputs(&ctx, v.clone(), rows.clone())
        .await
        .unwrap();
    let mut labels = csv::Reader::from_reader(DIGITS);
    let truth: Vec<String> = labels
        .records()
        .take(40)
        .map(|r| r.unwrap()[64].to_string())
        .collect();
    let correct = first
        .outputs
        .iter()
        .zip(&truth)
        .filter(|(o, t)| matches!(o, Output::Class { label, .. } if label == *t))
        .count();
    assert!(correct >= 36, "{correct}/40 digits right");
    let Output::Class { probabilities, .. } = &first.outputs[0] else {
        panic!("{:?}", first.outputs[0])
    };
    assert_eq!(probabilities.len(), 10);
    assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);

    platform.shutdown().await;
    drop((platform, v));
    let platform = open(dir.path()).await;
    let v = platform
        .resolve(&ModelRef::champion("digits-cnn"))
        .await
        .unwrap();
    let second = platform.predict_outputs(&ctx, v, rows).await.unwrap();
    assert_eq!(first.outputs, second.outputs);
    platform.shutdown().await;
}
