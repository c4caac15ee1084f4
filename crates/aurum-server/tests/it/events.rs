//! Live fraud scoring with state: a `fraud_gbdt` model trained by the job runner on the first
//! weeks of the handbook file, then the following transactions streamed to `/events`.

use aurum_fraud::event_family::{handbook_history_spec, handbook_spec};
use aurum_fraud::{Event, replay};
use axum::body::Body;
use axum::http::{Method, StatusCode};

use crate::common::*;

const HANDBOOK: &str = include_str!("../../../../data/fraud/handbook_sim_transactions.csv");
/// Transactions the model is trained on (about 17 days).
const TRAIN_ROWS: usize = 20_000;
/// Transactions streamed live after them.
const STREAM_ROWS: usize = 300;

fn lines() -> (&'static str, Vec<&'static str>) {
    let mut it = HANDBOOK.lines();
    let header = it.next().unwrap();
    (header, it.collect())
}

/// A data row as a live event: the spec's fields, without the label.
fn event_json(line: &str) -> serde_json::Value {
    let c: Vec<&str> = line.split(',').collect();
    serde_json::json!({
        "TRANSACTION_ID": c[0].parse::<i64>().unwrap(),
        "TX_DATETIME": c[1],
        "CUSTOMER_ID": c[2].parse::<i64>().unwrap(),
        "TERMINAL_ID": c[3].parse::<i64>().unwrap(),
        "TX_AMOUNT": c[4].parse::<f64>().unwrap(),
        "TX_TIME_SECONDS": c[5].parse::<i64>().unwrap(),
    })
}

async fn trained_fraud() -> Fixture {
    trained(
        "fraud_gbdt",
        serde_json::json!({"spec": "handbook", "n_estimators": "40", "review_at": "0.3", "block_at": "0.8"}),
    )
    .await
}

/// A fraud model `fraud` of family `kind`, trained by the job runner on the first
/// [`TRAIN_ROWS`] transactions.
async fn trained(kind: &str, params: serde_json::Value) -> Fixture {
    let f = fixture().await;
    let (header, rows) = lines();
    let csv = format!("{header}\n{}\n", rows[..TRAIN_ROWS].join("\n"));
    let r = call(
        &f.app,
        Method::POST,
        "/v1/datasets?name=tx",
        Some(&f.analyst),
        Body::from(csv),
        "text/csv",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let job = train_with(
        &f,
        &serde_json::json!({
            "dataset": "tx", "target": "TX_FRAUD", "kind": kind, "model": "fraud",
            "date_column": "TX_DATETIME", "alias": "champion", "params": params,
        }),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    f
}

/// The version behind `fraud@champion`.
async fn fraud_champion(f: &Fixture) -> std::sync::Arc<aurum_service::LoadedModel> {
    f.platform
        .resolve(&aurum_service::ModelRef::champion("fraud"))
        .await
        .unwrap()
}

/// Waits (15 s at most) until what the state took, `taken()`, equals what the audit records of
/// `event` account for (`count` of each record's details), then asserts it: work that outlived
/// its caller finishes on its own.
async fn assert_every_change_audited<F, Fut>(
    f: &Fixture,
    event: &str,
    taken: F,
    count: impl Fn(&serde_json::Value) -> u64,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    use aurum_service::types::AuditQuery;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let taken = taken().await;
        let audited: u64 = f
            .platform
            .audit_list(AuditQuery {
                after_seq: 0,
                limit: 10_000,
                event: Some(event.into()),
                model: None,
            })
            .await
            .unwrap()
            .iter()
            .map(|r| count(&r.details))
            .sum();
        if taken == audited || std::time::Instant::now() > deadline {
            assert!(taken > 0, "some changes were made");
            assert_eq!(
                taken, audited,
                "every change has its audit record ({event})"
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(f.platform.audit_verify().await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_scored_with_state_labels_fed_back_and_bad_events_change_nothing() {
    let f = trained_fraud().await;
    let (_, rows) = lines();
    let stream = &rows[TRAIN_ROWS..TRAIN_ROWS + STREAM_ROWS];

    // The version's metrics come from the runner's time-ordered held-out split.
    let v = get(&f.app, "/v1/models/fraud/versions/1", Some(&f.client)).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.json);

    // A client (predict permission) streams one event, then a batch.
    let one = post_json(
        &f.app,
        "/v1/models/fraud/events",
        Some(&f.client),
        &serde_json::json!({"event": event_json(stream[0])}),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.json);
    let r0 = &one.json["results"][0];
    assert!(matches!(
        r0["decision"].as_str(),
        Some("allow" | "review" | "block")
    ));
    assert!(r0["score"].as_f64().unwrap() >= 0.0);
    assert_eq!(r0["features"].as_object().unwrap().len(), 13);
    assert_eq!(one.json["input_sha256"].as_str().unwrap().len(), 64);
    assert!(one.json["audit_seq"].as_u64().is_some());

    let batch: Vec<_> = stream[1..100].iter().map(|l| event_json(l)).collect();
    let r = post_json(
        &f.app,
        "/v1/models/fraud/events",
        Some(&f.client),
        &serde_json::json!({ "events": batch }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["results"].as_array().unwrap().len(), 99);
    // Reviewed or blocked events say why.
    for res in r.json["results"].as_array().unwrap() {
        if res["decision"] != "allow" {
            assert!(!res["reasons"].as_array().unwrap().is_empty(), "{res}");
        }
    }
    let state = get(&f.app, "/v1/models/fraud/events/state", Some(&f.client)).await;
    assert_eq!(state.json["events_applied"], 100, "{}", state.json);

    // Labels: a known event takes it; an unknown id does not.
    let first_id = event_json(stream[0])["TRANSACTION_ID"].clone();
    let l = post_json(
        &f.app,
        "/v1/models/fraud/labels",
        Some(&f.client),
        &serde_json::json!({"labels": [{"event_id": first_id, "fraud": true}, {"event_id": "no-such", "fraud": false}]}),
    )
    .await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.json);
    assert_eq!(l.json["applied"], serde_json::json!([true, false]));

    // Bad events: 400 naming the field, and the state does not move.
    let next = event_json(stream[100]);
    let mut missing = next.clone();
    missing.as_object_mut().unwrap().remove("CUSTOMER_ID");
    let mut unknown = next.clone();
    unknown["colour"] = "red".into();
    let mut negative = next.clone();
    negative["TX_AMOUNT"] = (-3.0).into();
    let mut old = next.clone();
    old["TX_TIME_SECONDS"] = 0.into();
    old["TRANSACTION_ID"] = 99_999_999.into();
    let duplicate = event_json(stream[5]);
    // One event dated past the calendar, or ten days ahead of the clock, would hold back every
    // later event (the watermark only moves forward); an amount of 1e308 would make the card's
    // sums infinite. All refused before anything moves.
    let mut past_calendar = next.clone();
    past_calendar["TX_TIME_SECONDS"] = i64::MAX.into();
    let mut ahead = next.clone();
    ahead["TX_TIME_SECONDS"] = (chrono::Utc::now().timestamp() + 10 * 86_400).into();
    let mut huge = next.clone();
    huge["TX_AMOUNT"] = 1e308.into();
    for (bad, field, code) in [
        (missing, "events[1].CUSTOMER_ID", "missing_field"),
        (unknown, "events[1].colour", "unknown_field"),
        (negative, "events[1].TX_AMOUNT", "invalid_field"),
        (past_calendar, "events[1].TX_TIME_SECONDS", "invalid_field"),
        (ahead, "events[1].TX_TIME_SECONDS", "invalid_field"),
        (huge, "events[1].TX_AMOUNT", "invalid_field"),
        (old, "events[1].TX_TIME_SECONDS", "out_of_order"),
        (duplicate, "events[1].TRANSACTION_ID", "duplicate_event"),
    ] {
        // A valid event first: it must not be applied either.
        let r = post_json(
            &f.app,
            "/v1/models/fraud/events",
            Some(&f.client),
            &serde_json::json!({"events": [event_json(stream[101]), bad]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
        assert_eq!(r.json["code"], code, "{}", r.json);
        assert!(
            r.json["message"].as_str().unwrap().contains(field),
            "{}",
            r.json
        );
    }
    let state = get(&f.app, "/v1/models/fraud/events/state", Some(&f.client)).await;
    assert_eq!(state.json["events_applied"], 100, "{}", state.json);

    // Without a key: 401; the events route is not open to anyone.
    let r = post_json(
        &f.app,
        "/v1/models/fraud/events",
        None,
        &serde_json::json!({"event": next}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// The features the server returns for each streamed event equal the replay's row for that
/// event on the same stream: one code path for training and live traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_features_equal_the_training_replay_on_the_same_stream() {
    let f = trained_fraud().await;
    served_features_equal_the_replay(&f, &handbook_spec()).await;
}

/// A `fraud_sequence` version reads each card's recent events from the same live state: its
/// history features are the replay's, and its decisions name the inputs that drove them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_network_scores_events_from_the_live_entity_history() {
    let f = trained(
        "fraud_sequence",
        serde_json::json!({"architecture": "cnn", "epochs": "3", "review_at": "0.3", "block_at": "0.8"}),
    )
    .await;
    let v = get(&f.app, "/v1/models/fraud/versions/1", Some(&f.client)).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.json);
    assert_eq!(v.json["kind"], "fraud_sequence", "{}", v.json);
    let served = served_features_equal_the_replay(&f, &handbook_history_spec()).await;
    // The card's previous event is the history's first step.
    let (_, rows) = lines();
    let stream = &rows[TRAIN_ROWS..TRAIN_ROWS + STREAM_ROWS];
    let mut seen = 0;
    for (i, s) in served.iter().enumerate() {
        let customer = event_json(stream[i])["CUSTOMER_ID"].clone();
        if let Some(j) = (0..i)
            .rev()
            .find(|&j| event_json(stream[j])["CUSTOMER_ID"] == customer)
        {
            let prev = event_json(stream[j])["TX_AMOUNT"].as_f64().unwrap();
            assert_eq!(
                s["features"]["customer_id_prev1_amount_7d"].as_f64(),
                Some(prev)
            );
            seen += 1;
        }
        let score = s["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{s}");
        if s["decision"] != "allow" {
            assert!(
                s["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["type"] == "feature"),
                "{s}"
            );
        }
    }
    assert!(
        seen > 10,
        "{seen} events with a previous event in the stream"
    );
}

/// Streams [`STREAM_ROWS`] events in batches of 50 and 100 in turn (a small batch is scored on
/// the calling task, a large one on the blocking pool) and checks every served feature against
/// a replay of the same stream under `spec`; returns the served results.
async fn served_features_equal_the_replay(
    f: &Fixture,
    spec: &aurum_fraud::FeatureSpec,
) -> Vec<serde_json::Value> {
    let (_, rows) = lines();
    let stream = &rows[TRAIN_ROWS..TRAIN_ROWS + STREAM_ROWS];
    let mut served: Vec<serde_json::Value> = Vec::new();
    let mut rest = stream;
    for size in [50, 100].into_iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, after) = rest.split_at(size.min(rest.len()));
        rest = after;
        let events: Vec<_> = chunk.iter().map(|l| event_json(l)).collect();
        let r = post_json(
            &f.app,
            "/v1/models/fraud/events",
            Some(&f.client),
            &serde_json::json!({ "events": events }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        served.extend(r.json["results"].as_array().unwrap().iter().cloned());
    }
    let compiled = spec.compile().unwrap();
    let events: Vec<Event> = stream
        .iter()
        .map(|l| {
            let j = event_json(l);
            Event::from_map(
                &compiled,
                j.as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v)),
            )
            .unwrap()
        })
        .collect();
    let matrix = replay(spec, &events, &[], 7 * 86_400).unwrap();
    assert_eq!(served.len(), matrix.rows.len());
    for (i, (s, row)) in served.iter().zip(&matrix.rows).enumerate() {
        assert_eq!(s["id"], matrix.ids[i].as_str());
        for (name, x) in matrix.names.iter().zip(row) {
            // JSON carries the shortest round-trip form; allow its last-digit parsing error.
            let got = s["features"][name].as_f64().unwrap();
            assert!(
                (got - x).abs() <= 1e-12 * x.abs().max(1.0),
                "event {i} feature {name}: served {got}, replay {x}"
            );
        }
    }
    served
}

/// An events call cut off by a timeout (or a dropped connection) at any point still leaves every
/// batch it applied with its audit record: the events the state applied are exactly the events
/// the `fraud.events` records count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_batches_cut_off_by_a_timeout_still_have_their_audit_records() {
    use aurum_service::CallContext;
    use std::time::Duration;
    let f = trained_fraud().await;
    let (_, rows) = lines();
    let ctx = CallContext::cli();
    let model = fraud_champion(&f).await;
    for (i, chunk) in rows[TRAIN_ROWS..TRAIN_ROWS + 160].chunks(4).enumerate() {
        let batch = chunk
            .iter()
            .map(|l| event_json(l).as_object().unwrap().clone())
            .collect();
        let _ = tokio::time::timeout(
            Duration::from_micros(i as u64 * 150),
            f.platform.score_events(&ctx, model.clone(), batch),
        )
        .await;
    }
    let applied = || async {
        let info = f.platform.event_state(model.clone()).await.unwrap();
        info.events_applied
    };
    assert_every_change_audited(&f, "fraud.events", applied, |d| {
        d["events"].as_u64().unwrap()
    })
    .await;
}

/// A model's event state is opened once per process: callers that arrive together, and callers
/// that stop waiting while it opens, share the one opening (a second engine on the directory
/// would be refused, and before the directory's lock it wrote segments the first also wrote).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_state_is_opened_once_however_callers_arrive_and_leave() {
    use aurum_service::CallContext;
    let f = trained_fraud().await;
    let model = fraud_champion(&f).await;
    // The first caller gives up as soon as the opening has started: polled once (which hands the
    // opening, with its fsyncs, to a blocking thread) and dropped.
    let mut opening = Box::pin(f.platform.event_state(model.clone()));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(opening.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "the opening finished within one poll");
    drop(opening);
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (platform, model) = (f.platform.clone(), model.clone());
            tokio::spawn(async move { platform.event_state(model).await })
        })
        .collect();
    let mut before = None;
    for c in callers {
        let info = c.await.unwrap().expect("every caller gets the one state");
        let first = before.get_or_insert((info.events_applied, info.backend.clone()));
        assert_eq!(*first, (info.events_applied, info.backend));
    }
    // And the state takes events as usual.
    let (_, rows) = lines();
    let batch = rows[TRAIN_ROWS..TRAIN_ROWS + 3]
        .iter()
        .map(|l| event_json(l).as_object().unwrap().clone())
        .collect();
    let out = f
        .platform
        .score_events(&CallContext::cli(), model.clone(), batch)
        .await
        .unwrap();
    assert_eq!(out.outcomes.len(), 3);
    assert_eq!(
        f.platform.event_state(model).await.unwrap().events_applied,
        before.unwrap().0 + 3
    );
}

/// An opening that fails answers every caller that waited for it, and is not remembered: once
/// the cause is gone the next caller opens the state. (A local state only: the directory is made
/// unusable by a file in its place.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_opening_answers_its_waiters_and_the_next_caller_tries_again() {
    let f = trained_fraud().await;
    if f.config.registry.fraud_state_url.is_some() {
        return;
    }
    let model = fraud_champion(&f).await;
    let dir = f.config.data_dir.join("state").join("fraud");
    assert!(!dir.exists(), "the state is opened at first use");
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (platform, model) = (f.platform.clone(), model.clone());
            tokio::spawn(async move { platform.event_state(model).await })
        })
        .collect();
    for c in callers {
        let err = c.await.unwrap().expect_err("the state cannot open");
        assert!(err.to_string().contains("state/fraud"), "{err}");
    }
    std::fs::remove_file(&dir).unwrap();
    let info = f.platform.event_state(model).await.unwrap();
    assert_eq!(info.backend, "local");
    assert!(dir.is_dir());
}

/// Labels cut off by a timeout at many points: every label the state took has its audit record
/// (the labels call runs detached once the state is open, like the events call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_calls_cut_off_by_a_timeout_still_have_their_audit_records() {
    use aurum_service::{CallContext, LabelInput};
    use std::time::Duration;
    let f = trained_fraud().await;
    let (_, rows) = lines();
    let ctx = CallContext::cli();
    let model = fraud_champion(&f).await;
    let stream = &rows[TRAIN_ROWS..TRAIN_ROWS + 60];
    let batch = stream
        .iter()
        .map(|l| event_json(l).as_object().unwrap().clone())
        .collect();
    f.platform
        .score_events(&ctx, model.clone(), batch)
        .await
        .unwrap();
    let before = f.platform.event_state(model.clone()).await.unwrap();
    let ids: Vec<&str> = stream
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    // Calls large enough to outlast the runtime's timer (a millisecond), cut off after 0–10 ms:
    // some before they reach the state, some while it applies them, some after.
    for i in 0..20u64 {
        let labels = (0..2_000)
            .map(|k| LabelInput {
                event_id: ids[k % ids.len()].to_owned(),
                fraud: k % 3 == 0,
                known_at: None,
            })
            .collect();
        let _ = tokio::time::timeout(
            Duration::from_micros(i * 500),
            f.platform.add_labels(&ctx, model.clone(), labels),
        )
        .await;
    }
    let taken = || async {
        let info = f.platform.event_state(model.clone()).await.unwrap();
        info.labels_applied - before.labels_applied
    };
    assert_every_change_audited(&f, "fraud.labels", taken, |d| {
        let applied = d["applied"].as_array().unwrap();
        applied.iter().filter(|a| a.as_bool() == Some(true)).count() as u64
    })
    .await;
}
