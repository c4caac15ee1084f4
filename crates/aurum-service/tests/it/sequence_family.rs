//! The `sequence` family end to end: trained by the job runner from an imported dataset
//! (time-ordered split on the event step), registered as a version, served through `Platform`
//! with a request that is an entity's recent history, and served the same after the platform
//! is reopened from its data directory; and the same with each event's free-text memo read
//! through the hashed TF-IDF step or the family's own transformer text encoder.

use aurum_contract::{Output, Task};
use aurum_core::{FamilyName, NoProgress, Value};
use aurum_service::{CallContext, Config, ModelRef, Platform, TrainRequest};

/// Cards whose label is the previous event's channel: `alert` after a `web` event, `ok`
/// otherwise. A row's own values say nothing about its label; its card's history does.
fn dataset() -> String {
    let mut csv = String::from("card,step,channel,amount,label\n");
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for card in 0..80 {
        let mut previous_web = false;
        for step in 0..20 {
            let web = next().is_multiple_of(2);
            let amount = (next() % 10_000) as f64 / 100.0;
            let channel = if web { "web" } else { "store" };
            let label = if previous_web { "alert" } else { "ok" };
            csv.push_str(&format!("c{card},{step},{channel},{amount},{label}\n"));
            previous_web = web;
        }
    }
    csv
}

/// A xorshift64 stream: the generated files' only randomness.
fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// A `sequence` training job on `dataset` (split on `step`), aliased `champion`.
fn training(dataset: &str, model: &str, params: &[(&str, &str)]) -> TrainRequest {
    TrainRequest {
        dataset: dataset.into(),
        target: "label".into(),
        kind: FamilyName::new("sequence").unwrap(),
        model: model.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        positive_label: None,
        alias: Some("champion".into()),
        date_column: Some("step".into()),
        text_columns: None,
        text_buckets: None,
    }
}

fn event(card: &str, channel: &str, amount: f64) -> Vec<Value> {
    vec![
        Value::Str(card.into()),
        Value::Str(channel.into()),
        Value::Float(amount),
    ]
}

/// A platform on `dir` with `csv` imported as dataset `name`.
async fn open_with(dir: &std::path::Path, name: &str, csv: String) -> (Platform, CallContext) {
    let platform = open(dir).await;
    let ctx = CallContext::cli();
    platform
        .import_dataset(
            &ctx,
            name,
            csv.into_bytes(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    (platform, ctx)
}

async fn open(dir: &std::path::Path) -> Platform {
    Platform::open(Config {
        data_dir: dir.join("data"),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sequence_family_trains_registers_and_serves_histories() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, ctx) = open_with(dir.path(), "card_events", dataset()).await;
    let params = [
        ("entity", "card"),
        ("architecture", "cnn"),
        ("length", "4"),
        ("epochs", "25"),
    ];
    let (job, version) = platform
        .run_training(
            &ctx,
            training("card_events", "card_alerts", &params),
            std::sync::Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(job.state.as_str(), "succeeded");
    assert_eq!(version.kind, "sequence");
    let metrics: serde_json::Value = serde_json::from_str(&version.metrics_json).unwrap();
    // The held-out rows are every card's latest steps, scored as one request: all but each
    // card's first held-out row have their history in it.
    assert!(metrics["accuracy"].as_f64().unwrap() > 0.9, "{metrics}");

    let loaded = platform
        .resolve(&ModelRef::champion("card_alerts"))
        .await
        .unwrap();
    assert_eq!(loaded.task(), Task::SequenceClassification);
    assert_eq!(loaded.manifest.family, "sequence");
    assert_eq!(
        loaded.model.input_schema().names().collect::<Vec<_>>(),
        ["card", "channel", "amount"]
    );
    // Two cards' histories interleaved: each row is read after its own card's earlier rows.
    let request = vec![
        event("x1", "web", 12.0),
        event("x2", "store", 80.0),
        event("x1", "store", 40.0),
        event("x2", "web", 5.5),
        event("x2", "store", 61.0),
        event("x1", "web", 19.0),
    ];
    let out = platform
        .predict_outputs(&ctx, loaded, request.clone())
        .await
        .unwrap();
    let labels: Vec<&str> = out
        .outputs
        .iter()
        .map(|o| match o {
            Output::Class {
                label,
                probabilities,
            } => {
                assert_eq!(probabilities.len(), 2);
                label.as_str()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(labels, ["ok", "ok", "alert", "ok", "alert", "ok"]);

    // Reopened from its data directory, the platform serves the same bits.
    platform.shutdown().await;
    drop(platform);
    let reopened = open(dir.path()).await;
    let loaded = reopened
        .resolve(&ModelRef::champion("card_alerts"))
        .await
        .unwrap();
    let again = reopened
        .predict_outputs(&ctx, loaded, request)
        .await
        .unwrap();
    assert_eq!(again.outputs, out.outputs);
    reopened.shutdown().await;
}

/// Merchant memos; the first two are risky.
const MEMOS: &[&str] = &[
    "crypto exchange top up",
    "casino chips",
    "grocery store",
    "coffee shop downtown",
    "fuel station",
    "streaming subscription renewal",
];

/// Cards whose label is `alert` right after an event whose free-text memo names a risky
/// merchant: only the previous event's words carry the label. Memos carry a reference number,
/// so nearly every cell is unique (profiled as text, not a category); some are missing.
fn memo_dataset() -> String {
    let mut csv = String::from("card,step,memo,amount,label\n");
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for card in 0..80 {
        let mut previous_risky = false;
        for step in 0..20 {
            let k = (next() % (MEMOS.len() as u64 + 1)) as usize;
            let prefix = ["", "pos ", "card payment "][(next() % 3) as usize];
            // One event in seven has no memo.
            let memo = MEMOS.get(k).map_or(String::new(), |m| {
                format!("{prefix}{m} ref {}", 1000 + next() % 9000)
            });
            let amount = (next() % 10_000) as f64 / 100.0;
            let label = if previous_risky { "alert" } else { "ok" };
            csv.push_str(&format!("c{card},{step},{memo},{amount},{label}\n"));
            previous_risky = k < 2;
        }
    }
    csv
}

/// Trained by the job runner on the memo dataset, with the TF-IDF step (the default) and with
/// `text_encoder=transformer`: both read the previous event's words (held-out accuracy above
/// 0.9), serve the raw memo (its column typed `text`), and a reopened platform answers the same.
/// Only the first has a TF-IDF step in front; the second's model holds a text encoder instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_memos_are_read_through_tfidf_or_the_transformer_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, ctx) = open_with(dir.path(), "card_memos", memo_dataset()).await;
    let memo = |card: &str, text: &str| {
        vec![
            Value::Str(card.into()),
            Value::Str(text.into()),
            Value::Float(20.0),
        ]
    };
    let request = vec![
        memo("x1", "pos casino chips ref 1"),
        memo("x2", "fuel station"),
        memo("x1", "grocery store"),
        memo("x2", "card payment crypto exchange top up"),
        memo("x2", "coffee shop downtown"),
        memo("x1", ""),
    ];
    let mut answers = Vec::new();
    for encoder in ["tfidf", "transformer"] {
        let params = [
            ("entity", "card"),
            ("architecture", "cnn"),
            ("length", "3"),
            ("epochs", "25"),
            ("text_encoder", encoder),
            ("text_dim", "8"),
            ("text_length", "8"),
        ];
        let (_, version) = platform
            .run_training(
                &ctx,
                training("card_memos", &format!("memo_{encoder}"), &params),
                std::sync::Arc::new(NoProgress),
            )
            .await
            .unwrap();
        let metrics: serde_json::Value = serde_json::from_str(&version.metrics_json).unwrap();
        assert!(
            metrics["accuracy"].as_f64().unwrap() > 0.9,
            "{encoder}: {metrics}"
        );
        let loaded = platform
            .resolve(&ModelRef::champion(&format!("memo_{encoder}")))
            .await
            .unwrap();
        let schema = loaded.input_schema().clone();
        assert_eq!(
            schema.names().collect::<Vec<_>>(),
            ["card", "memo", "amount"],
            "{encoder}"
        );
        assert_eq!(
            schema.field("memo").map(|f| f.ty),
            Some(aurum_core::ColumnType::Text)
        );
        let summary = loaded.model.summary();
        if encoder == "tfidf" {
            assert!(loaded.model.text_step().is_some(), "{summary}");
        } else {
            assert!(loaded.model.text_step().is_none(), "{summary}");
            assert_eq!(summary["text_encoders"][0]["feature"], "memo", "{summary}");
        }
        let out = platform
            .predict_outputs(&ctx, loaded, request.clone())
            .await
            .unwrap();
        let labels: Vec<&str> = out
            .outputs
            .iter()
            .map(|o| match o {
                Output::Class { label, .. } => label.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            labels,
            ["ok", "ok", "alert", "ok", "alert", "ok"],
            "{encoder}"
        );
        answers.push(out.outputs);
    }
    platform.shutdown().await;
    drop(platform);
    let reopened = open(dir.path()).await;
    for (encoder, before) in ["tfidf", "transformer"].iter().zip(answers) {
        let loaded = reopened
            .resolve(&ModelRef::champion(&format!("memo_{encoder}")))
            .await
            .unwrap();
        let again = reopened
            .predict_outputs(&ctx, loaded, request.clone())
            .await
            .unwrap();
        assert_eq!(again.outputs, before, "{encoder}");
    }
    reopened.shutdown().await;
}
