//! The `sequence` family end to end: trained by the job runner from an imported dataset
//! (time-ordered split on the event step), registered as a version, served through `Platform`
//! with a request that is an entity's recent history, and served the same after the platform
//! is reopened from its data directory.

use aurum_contract::{Output, Task};
use aurum_core::{FamilyName, NoProgress, Value};
use aurum_service::{CallContext, Config, ModelRef, Platform, TrainRequest};

/// Cards whose label is the previous event's channel: `alert` after a `web` event, `ok`
/// otherwise. A row's own values say nothing about its label; its card's history does.
fn dataset() -> String {
    let mut csv = String::from("card,step,channel,amount,label\n");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for card in 0..80 {
        let mut previous_web = false;
        for step in 0..20 {
            let web = next() % 2 == 0;
            let amount = (next() % 10_000) as f64 / 100.0;
            let channel = if web { "web" } else { "store" };
            let label = if previous_web { "alert" } else { "ok" };
            csv.push_str(&format!("c{card},{step},{channel},{amount},{label}\n"));
            previous_web = web;
        }
    }
    csv
}

fn event(card: &str, channel: &str, amount: f64) -> Vec<Value> {
    vec![
        Value::Str(card.into()),
        Value::Str(channel.into()),
        Value::Float(amount),
    ]
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
    let platform = open(dir.path()).await;
    let ctx = CallContext::cli();
    platform
        .import_dataset(
            &ctx,
            "card_events",
            dataset().into_bytes(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let params = [
        ("entity", "card"),
        ("architecture", "cnn"),
        ("length", "4"),
        ("epochs", "25"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (job, version) = platform
        .run_training(
            &ctx,
            TrainRequest {
                dataset: "card_events".into(),
                target: "label".into(),
                kind: FamilyName::new("sequence").unwrap(),
                model: "card_alerts".into(),
                params,
                positive_label: None,
                alias: Some("champion".into()),
                date_column: Some("step".into()),
                text_columns: None,
                text_buckets: None,
            },
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
