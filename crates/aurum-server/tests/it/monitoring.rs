//! Drift monitoring through the API: the training population replayed through a served
//! version raises no alert; a population with two shifted features raises alerts for those two
//! features and no other.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

/// Every German credit applicant as a JSON record (without the target), with `edit` applied.
fn population(edit: impl Fn(&mut serde_json::Map<String, Value>)) -> Vec<Value> {
    let mut rdr = csv::Reader::from_reader(GERMAN);
    let headers = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|row| {
            let row = row.unwrap();
            let mut obj = serde_json::Map::new();
            for (h, v) in headers.iter().zip(row.iter()) {
                if h == "creditability" {
                    continue;
                }
                let value = match v.parse::<i64>() {
                    Ok(i) => json!(i),
                    Err(_) => json!(v),
                };
                obj.insert(h.to_string(), value);
            }
            edit(&mut obj);
            Value::Object(obj)
        })
        .collect()
}

/// The realised label (`creditability`) of each German credit row, in file order.
fn truth() -> Vec<String> {
    csv::Reader::from_reader(GERMAN)
        .records()
        .map(|r| r.unwrap().get(20).unwrap().to_string())
        .collect()
}

async fn replay(f: &Fixture, version: u32, records: &[Value]) {
    for chunk in records.chunks(250) {
        let r = post_json(
            &f.app,
            &format!("/v1/models/credit/versions/{version}/predict"),
            Some(&f.client),
            &json!({ "records": chunk }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    }
}

fn feature_alerts(report: &Value) -> Vec<String> {
    feature_alerts_of(report, 0)
}

/// The features at the alert level in window `i` (newest first) of a drift report, sorted.
fn feature_alerts_of(report: &Value, i: usize) -> Vec<String> {
    let window = &report["windows"][i];
    let mut names: Vec<String> = window["vs_reference"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "alert")
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shifted_population_raises_alerts_for_the_shifted_features_only() {
    let f = trained().await;
    // Version 2: the same model, monitored separately.
    let job = train(&f, "credit", json!({}), None).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    // Before any traffic: the reference is built, the open window is empty.
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/drift",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["reference_rows"], 1000, "{}", r.json);

    replay(&f, 1, &population(|_| {})).await;
    let shifted = population(|r| {
        let d = r["duration_in_month"].as_i64().unwrap();
        r.insert("duration_in_month".into(), json!(d * 3));
        let a = r["age_in_years"].as_i64().unwrap();
        r.insert("age_in_years".into(), json!(a + 25));
    });
    replay(&f, 2, &shifted).await;

    let same = get(
        &f.app,
        "/v1/models/credit/versions/1/drift",
        Some(&f.client),
    )
    .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.json);
    let window = &same.json["windows"][0];
    assert_eq!(window["rows"], 1000, "{}", same.json);
    assert_eq!(window["open"], true);
    assert_eq!(window["alerts"], json!([]), "{}", same.json);
    for feature in window["vs_reference"]["features"].as_array().unwrap() {
        assert!(feature["psi"].as_f64().unwrap() < 1e-9, "{feature}");
    }
    assert!(window["vs_reference"]["score"]["psi"].as_f64().unwrap() < 1e-9);

    let moved = get(
        &f.app,
        "/v1/models/credit/versions/2/drift",
        Some(&f.client),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.json);
    assert_eq!(
        feature_alerts(&moved.json),
        ["age_in_years", "duration_in_month"],
        "{}",
        moved.json
    );
    let duration = moved.json["windows"][0]["vs_reference"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "duration_in_month")
        .unwrap()
        .clone();
    assert!(duration["ks"].as_f64().unwrap() > 0.3, "{duration}");
}

/// Drift is not only for binary models: an anomaly scorer (isolation forest) served over `/v1`
/// is monitored the same way, its score being the anomaly score.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anomaly_model_is_monitored_like_a_binary_one() {
    let f = trained().await;
    for model in ["iso", "iso-shifted"] {
        let job = train_with(
            &f,
            &json!({"dataset": "german", "target": "creditability", "kind": "isolation_forest", "model": model}),
        )
        .await;
        assert_eq!(job["state"], "succeeded", "{job}");
    }
    // The forest reads the numeric columns only: send those.
    let meta = get(&f.app, "/v2/models/iso/versions/1", Some(&f.client)).await;
    let inputs: Vec<String> = meta.json["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert!(inputs.iter().any(|i| i == "age_in_years"), "{inputs:?}");
    let replay_to = |model: &'static str, mut records: Vec<Value>| {
        let f = &f;
        for r in &mut records {
            r.as_object_mut()
                .unwrap()
                .retain(|k, _| inputs.iter().any(|i| i == k));
        }
        async move {
            for chunk in records.chunks(250) {
                let r = post_json(
                    &f.app,
                    &format!("/v1/models/{model}/versions/1/predict"),
                    Some(&f.client),
                    &json!({ "records": chunk }),
                )
                .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.json);
            }
        }
    };
    // The references first (as a served version's first request would start them).
    for model in ["iso", "iso-shifted"] {
        let r = get(
            &f.app,
            &format!("/v1/models/{model}/versions/1/drift"),
            Some(&f.client),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    }
    replay_to("iso", population(|_| {})).await;
    replay_to(
        "iso-shifted",
        population(|r| {
            let a = r["age_in_years"].as_i64().unwrap();
            r.insert("age_in_years".into(), json!(a + 25));
        }),
    )
    .await;
    let same = get(&f.app, "/v1/models/iso/versions/1/drift", Some(&f.client)).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.json);
    assert_eq!(same.json["reference_rows"], 1000, "{}", same.json);
    let window = &same.json["windows"][0];
    assert_eq!(window["rows"], 1000, "{}", same.json);
    assert_eq!(window["alerts"], json!([]), "{}", same.json);
    assert!(window["vs_reference"]["score"]["psi"].as_f64().unwrap() < 1e-9);
    let moved = get(
        &f.app,
        "/v1/models/iso-shifted/versions/1/drift",
        Some(&f.client),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.json);
    assert_eq!(
        feature_alerts(&moved.json),
        ["age_in_years"],
        "{}",
        moved.json
    );
    // Older applicants are unusual to a forest that never saw them: the score moves too.
    assert!(
        moved.json["windows"][0]["vs_reference"]["score"]["psi"]
            .as_f64()
            .unwrap()
            > 0.1,
        "{}",
        moved.json
    );
}

/// Sleeps until just after the next multiple of `secs` since the epoch.
async fn until_next_window(secs: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let next = (now.as_secs() / secs + 1) * secs;
    let wait = std::time::Duration::from_secs(next) - now + std::time::Duration::from_millis(50);
    tokio::time::sleep(wait).await;
}

/// Rows of each window of a drift report, newest first.
fn window_rows(report: &Value) -> Vec<u64> {
    report["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["rows"].as_u64().unwrap())
        .collect()
}

/// Asks `app` for version 1's drift report until its windows hold `rows` (newest first), as they
/// do once every process has stored its counts; fails after 10 s.
async fn report_once_stored(app: &axum::Router, key: &str, rows: &[u64]) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = get(app, "/v1/models/credit/versions/1/drift", Some(key)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        if window_rows(&r.json) == rows {
            return r.json;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.json);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Waits (up to `secs`) for the first webhook call.
async fn first_webhook_call(received: &Received, secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while received.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no webhook call");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A webhook receiver on a real port: every POST's headers and body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

async fn webhook_receiver() -> (String, Received) {
    let got: Received = Default::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push((headers, body.to_vec()));
                    StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_window_is_judged_against_the_reference_and_the_previous_window_and_kept() {
    let (hook, received) = webhook_receiver().await;
    let f = fixture_with(|c| {
        c.monitoring.window_s = 3;
        c.monitoring.flush_ms = 200;
        c.monitoring.webhook_url = Some(hook);
        c.monitoring.webhook_secret = Some("hook-secret".into());
    })
    .await;
    assert_eq!(import_german(&f).await.status, StatusCode::CREATED);
    let job = train(&f, "credit", json!({}), Some("champion")).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/drift",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);

    // Window 1: the training population. Window 2: shifted. Window 3: one request closes 2.
    until_next_window(3).await;
    replay(&f, 1, &population(|_| {})).await;
    until_next_window(3).await;
    let shifted = population(|r| {
        let a = r["age_in_years"].as_i64().unwrap();
        r.insert("age_in_years".into(), json!(a + 25));
    });
    replay(&f, 1, &shifted).await;
    until_next_window(3).await;
    replay(&f, 1, &shifted[..1]).await;

    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/drift",
        Some(&f.client),
    )
    .await;
    let windows = r.json["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3, "{}", r.json);
    assert_eq!(windows[0]["open"], true);
    assert_eq!(windows[0]["rows"], 1);
    assert_eq!(windows[1]["open"], false);
    assert_eq!(windows[1]["rows"], 1000);
    assert_eq!(windows[1]["alerts"][0], "age_in_years", "{}", r.json);
    let vs_previous = &windows[1]["vs_previous"]["features"];
    let age = vs_previous
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "age_in_years")
        .unwrap();
    assert_eq!(age["level"], "alert", "{age}");
    assert_eq!(windows[2]["alerts"], json!([]), "{}", r.json);
    // A one-row window is too small to judge.
    assert_eq!(windows[0]["alerts"], json!([]), "{}", r.json);

    // The windows are in the registry: another process on it (a replica, or this one after a
    // restart) reports the same ones once this process has stored its counts.
    let other = aurum_backends::open_platform(f.config.clone())
        .await
        .unwrap();
    let other_app = aurum_server::router(aurum_server::AppState::new(other.clone()));
    let seen = report_once_stored(&other_app, &f.client, &[1, 1000, 1000]).await;
    assert_eq!(feature_alerts_of(&seen, 1), ["age_in_years"]);

    // The alert also reached the webhook, once, signed, naming the feature and its PSI.
    first_webhook_call(&received, 10).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let calls = received.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "one alerting window, one call");
    let (headers, body) = &calls[0];
    assert_eq!(headers["x-aurum-alert"], "drift");
    assert_eq!(
        headers["x-aurum-signature"].to_str().unwrap(),
        aurum_backends::webhook::signature("hook-secret", body)
    );
    let alert: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(alert["kind"], "drift");
    assert_eq!(alert["model"], "credit");
    assert_eq!(alert["version"], 1);
    assert_eq!(alert["details"]["rows"], 1000);
    assert_eq!(
        alert["details"]["features"][0]["name"], "age_in_years",
        "{alert}"
    );
    assert!(
        alert["details"]["features"][0]["psi"].as_f64().unwrap() >= 0.25,
        "{alert}"
    );
}

#[tokio::test]
async fn drift_of_a_missing_version_is_404_and_of_a_bad_version_400() {
    let f = trained().await;
    let r = get(
        &f.app,
        "/v1/models/credit/versions/9/drift",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    let r = get(
        &f.app,
        "/v1/models/credit/versions/x/drift",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
}

/// AUC by the Mann–Whitney statistic (ties count half), computed here independently of aurum.
fn auc_by_hand(labels: &[bool], p: &[f64]) -> f64 {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (i, li) in labels.iter().enumerate() {
        for (j, lj) in labels.iter().enumerate() {
            if *li && !*lj {
                pairs += 1.0;
                if p[i] > p[j] {
                    wins += 1.0;
                } else if p[i] == p[j] {
                    wins += 0.5;
                }
            }
        }
    }
    wins / pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_give_the_realised_auc_of_an_offline_computation_and_bad_ones_change_nothing() {
    let f = trained().await;
    let records = population(|_| {});
    let truth = truth();
    let mut outcomes = Vec::new();
    let mut probs = Vec::new();
    for (c, chunk) in records.chunks(100).take(6).enumerate() {
        let r = post_json(
            &f.app,
            "/v1/models/credit/predict",
            Some(&f.client),
            &json!({ "records": chunk }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let request_id = r.json["request_id"].as_str().unwrap().to_string();
        for (i, p) in r.json["predictions"].as_array().unwrap().iter().enumerate() {
            probs.push(p["probability"].as_f64().unwrap());
            outcomes
                .push(json!({"request_id": request_id, "record": i, "label": truth[c * 100 + i]}));
        }
    }
    let positive = f
        .platform
        .resolve(&aurum_service::ModelRef::champion("credit"))
        .await
        .unwrap();
    let positive_label = positive.binary().unwrap().labels().0.to_string();
    let labels: Vec<bool> = truth[..600].iter().map(|t| *t == positive_label).collect();

    // Bad outcomes are refused with the field named, and nothing of the call is stored.
    for (bad, field) in [
        (
            json!({"request_id": "no-such-request", "label": "bad"}),
            "outcomes[1].request_id",
        ),
        (
            json!({"request_id": outcomes[0]["request_id"], "record": 100, "label": "bad"}),
            "outcomes[1].record",
        ),
        (
            json!({"request_id": outcomes[0]["request_id"], "label": "maybe"}),
            "outcomes[1].label",
        ),
        (
            json!({"request_id": outcomes[0]["request_id"], "label": 7}),
            "outcomes[1].label",
        ),
    ] {
        let r = post_json(
            &f.app,
            "/v1/models/credit/outcomes",
            Some(&f.client),
            &json!({"outcomes": [outcomes[0], bad]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
        assert_eq!(r.json["details"]["field"], field, "{}", r.json);
    }
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/performance",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.json["overall"]["n"], 0, "{}", r.json);

    let r = post_json(
        &f.app,
        "/v1/models/credit/outcomes",
        Some(&f.client),
        &json!({ "outcomes": outcomes }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["recorded"], 600);
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/performance",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let overall = &r.json["overall"];
    assert_eq!(overall["n"], 600);
    let expected = auc_by_hand(&labels, &probs);
    let realised = overall["metrics"]["auc"].as_f64().unwrap();
    assert!(
        (realised - expected).abs() < 1e-9,
        "{realised} vs {expected}"
    );
    let bad_rate = labels.iter().filter(|l| **l).count() as f64 / 600.0;
    assert!((overall["bad_rate"].as_f64().unwrap() - bad_rate).abs() < 1e-12);
    assert_eq!(
        r.json["calibration"].as_array().unwrap().len(),
        10,
        "{}",
        r.json
    );
    assert_eq!(r.json["by_day"].as_array().unwrap().len(), 1, "{}", r.json);
    // The model ranks its own training data well: no alert.
    assert_eq!(r.json["alert"], false, "{}", r.json);
    // Re-posting the same outcomes replaces them; the count stays.
    let r = post_json(
        &f.app,
        "/v1/models/credit/outcomes",
        Some(&f.client),
        &json!({ "outcomes": &outcomes[..10] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/performance",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.json["overall"]["n"], 600);
}

/// The adverse impact ratio on German credit (a real data set) by sex and marital status, and by
/// age under and over 25, reproduced by hand from the decisions `/v1` predict returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fairness_reproduces_the_adverse_impact_ratio_computed_by_hand() {
    let f = trained().await;
    let records = population(|_| {});
    let mut decisions = Vec::new();
    for chunk in records.chunks(250) {
        let r = post_json(
            &f.app,
            "/v1/models/credit/predict",
            Some(&f.client),
            &json!({ "records": chunk }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        for p in r.json["predictions"].as_array().unwrap() {
            decisions.push(p["decision"].as_str().unwrap() == "approve");
        }
    }
    let by_hand = |group: &dyn Fn(&Value) -> String| {
        let mut rates: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
        for (r, approved) in records.iter().zip(&decisions) {
            let e = rates.entry(group(r)).or_default();
            e.0 += f64::from(u8::from(*approved));
            e.1 += 1.0;
        }
        let rates: std::collections::BTreeMap<String, f64> =
            rates.into_iter().map(|(g, (a, n))| (g, a / n)).collect();
        let best = rates.values().copied().fold(0.0, f64::max);
        rates
            .into_iter()
            .map(|(g, r)| (g, r / best))
            .collect::<std::collections::BTreeMap<_, _>>()
    };

    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/fairness?dataset=german&attribute=personal_status_and_sex",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let expected = by_hand(&|r| r["personal_status_and_sex"].as_str().unwrap().to_string());
    let groups = r.json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), expected.len(), "{}", r.json);
    for g in groups {
        let want = expected[g["group"].as_str().unwrap()];
        let got = g["adverse_impact_ratio"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-12, "{g}: {got} vs {want}");
        assert_eq!(g["passes_four_fifths"], want >= 0.8, "{g}");
    }
    assert_eq!(r.json["rows"], 1000);
    // The groups really differ: the ratio is a measurement, not 1 everywhere.
    let min_air = r.json["min_adverse_impact_ratio"].as_f64().unwrap();
    assert!(min_air < 0.999, "{}", r.json);
    eprintln!("fairness by personal_status_and_sex: {}", r.json["groups"]);

    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/fairness?dataset=german&attribute=age_in_years&cuts=25",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let expected = by_hand(&|r| {
        if r["age_in_years"].as_i64().unwrap() < 25 {
            "< 25".to_string()
        } else {
            ">= 25".to_string()
        }
    });
    for g in r.json["groups"].as_array().unwrap() {
        let want = expected[g["group"].as_str().unwrap()];
        assert!(
            (g["adverse_impact_ratio"].as_f64().unwrap() - want).abs() < 1e-12,
            "{g}"
        );
        assert!(g["auc"].as_f64().is_some(), "{g}");
    }
    eprintln!("fairness by age: {}", r.json["groups"]);

    // Bad requests name their parameter.
    for (query, field) in [
        ("dataset=german&attribute=nope", "attribute"),
        ("dataset=german&attribute=age_in_years&cuts=30,25", "cuts"),
        ("dataset=german&attribute=age_in_years&cuts=x", "cuts"),
        (
            "dataset=german&attribute=age_in_years&target=nope",
            "target",
        ),
    ] {
        let r = get(
            &f.app,
            &format!("/v1/models/credit/versions/1/fairness?{query}"),
            Some(&f.client),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.json);
        assert_eq!(r.json["details"]["field"], field, "{query}: {}", r.json);
    }
}

/// The validation document of a credit version has every section, with figures from its own
/// report (the held-out AUC) and audit log (the alias move and who made it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validation_document_has_every_section_with_the_versions_own_figures() {
    let f = trained().await;
    let records = population(|_| {});
    replay(&f, 1, &records[..300]).await;
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/document?dataset=german&attribute=age_in_years&cuts=25",
        Some(&f.analyst),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let html = r.json.as_str().unwrap().to_string();
    for id in [
        "purpose",
        "data",
        "method",
        "performance",
        "fairness",
        "limitations",
        "monitoring",
        "approvals",
    ] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "section {id} missing"
        );
    }
    let report = get(
        &f.app,
        "/v1/models/credit/versions/1/report",
        Some(&f.analyst),
    )
    .await;
    let auc = report.json["metrics"]["auc"].as_f64().unwrap();
    assert!(
        html.contains(&format!("{auc:.4}")),
        "held-out AUC {auc:.4} not in the document"
    );
    let n_test = report.json["sample"]["n_test"].as_u64().unwrap();
    assert!(
        html.contains(&format!("{n_test} rows")),
        "test size not in the document"
    );
    // Approvals: the champion move by the analyst key, from the alias history and audit log.
    assert!(html.contains("champion"), "alias move missing");
    assert!(
        html.contains("alias.move"),
        "audit record of the alias move missing"
    );
    assert!(html.contains("analyst"), "who moved the alias is missing");
    // Fairness by age, with the failing group flagged; monitoring of the current window.
    assert!(html.contains("&lt; 25"), "fairness groups missing");
    assert!(
        html.contains("fails"),
        "the four-fifths failure is not shown"
    );
    assert!(
        html.contains("300 rows"),
        "the monitored window is not shown"
    );
    assert!(
        !html.contains("<script"),
        "the document must not need scripts"
    );

    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/document?attribute=age_in_years",
        Some(&f.analyst),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["details"]["field"], "dataset", "{}", r.json);

    // The same document as PDF: every section, and the version's own figures.
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/document?dataset=german&attribute=age_in_years&cuts=25&format=pdf",
        Some(&f.analyst),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/pdf");
    let pdf = r.json.as_str().unwrap();
    assert!(pdf.starts_with("%PDF-"), "not a PDF");
    assert!(pdf.trim_end().ends_with("%%EOF"), "a truncated PDF");
    for section in [
        "1. Purpose and use",
        "2. Data and lineage",
        "3. Methodology and assumptions",
        "4. Performance and stability",
        "5. Fairness",
        "6. Limitations",
        "7. Monitoring plan",
        "8. Approvals",
    ] {
        assert!(
            pdf.contains(&format!("({section}) Tj")),
            "{section} missing"
        );
    }
    assert!(pdf.contains("analyst"), "who moved the alias is missing");
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/document?format=docx",
        Some(&f.analyst),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["details"]["field"], "format", "{}", r.json);
}

/// The trained fixture plus version 2, a scorecard behind the `challenger` alias.
async fn with_challenger() -> Fixture {
    let f = trained().await;
    let job = train_with(
        &f,
        &json!({"dataset": "german", "target": "creditability", "kind": "scorecard",
                "model": "credit", "alias": "challenger"}),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    f
}

/// Posts outcomes (all must be accepted), then reads the challenger report.
async fn post_outcomes_then_report(f: &Fixture, outcomes: &[Value]) -> Value {
    let r = post_json(
        &f.app,
        "/v1/models/credit/outcomes",
        Some(&f.client),
        &json!({ "outcomes": outcomes }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    get(&f.app, "/v1/models/credit/challenger", Some(&f.client))
        .await
        .json
}

/// Shadow scoring: with a challenger configured, clients get exactly the champion's answers;
/// the challenger's are stored and compared, with both AUCs once outcomes arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_challenger_never_changes_answers_and_is_compared_with_the_champion() {
    let f = with_challenger().await;
    let records = population(|_| {});
    let truth = truth();
    let predict = |chunk: &[Value]| {
        let body = json!({ "records": chunk });
        let app = f.app.clone();
        let key = f.client.clone();
        async move { post_json(&app, "/v1/models/credit/predict", Some(&key), &body).await }
    };
    let before = predict(&records[..200]).await;

    let r = crate::common::put_json(
        &f.app,
        "/v1/models/credit/challenger",
        Some(&f.analyst),
        &json!({"alias": "challenger"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let mut outcomes = Vec::new();
    for c in 0..2 {
        let after = predict(&records[c * 100..c * 100 + 100]).await;
        assert_eq!(after.status, StatusCode::OK, "{}", after.json);
        // The same answers as without a challenger.
        for (i, p) in after.json["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let was = &before.json["predictions"][c * 100 + i];
            assert_eq!(p["probability"], was["probability"]);
            assert_eq!(p["decision"], was["decision"]);
            assert_eq!(after.json["version"], 1);
            outcomes.push(json!({"request_id": after.json["request_id"], "record": i,
                                 "label": truth[c * 100 + i]}));
        }
    }
    // Shadow answers are written after the responses, by a worker at idle priority: wait for
    // them (a busy test machine gives it little CPU).
    let mut report = json!(null);
    for _ in 0..1200 {
        report = get(&f.app, "/v1/models/credit/challenger", Some(&f.client))
            .await
            .json;
        if report["comparisons"][0]["records"] == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let pair = &report["comparisons"][0];
    assert_eq!(pair["records"], 200, "{report}");
    assert_eq!(pair["champion_version"], 1);
    assert_eq!(pair["challenger_version"], 2);
    let agreement = pair["decision_agreement"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&agreement), "{report}");
    assert_ne!(
        pair["champion_mean_probability"], pair["challenger_mean_probability"],
        "two different models: {report}"
    );
    assert_eq!(pair["outcomes"], 0);

    let report = post_outcomes_then_report(&f, &outcomes).await;
    let pair = &report["comparisons"][0];
    assert_eq!(pair["outcomes"], 200, "{report}");
    assert!(pair["champion_auc"].as_f64().unwrap() > 0.6, "{report}");
    assert!(pair["challenger_auc"].as_f64().unwrap() > 0.6, "{report}");

    // Cleared: no more shadow answers.
    let r = call(
        &f.app,
        axum::http::Method::DELETE,
        "/v1/models/credit/challenger",
        Some(&f.analyst),
        axum::body::Body::empty(),
        "application/json",
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    predict(&records[500..510]).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let report = get(&f.app, "/v1/models/credit/challenger", Some(&f.client))
        .await
        .json;
    assert_eq!(report["comparisons"][0]["records"], 200, "{report}");
    assert_eq!(report["challenger"], json!(null));
}

/// A split: the challenger answers its share of the requests addressed to the champion (chosen
/// by request id, so a repeated id lands on the same side), never a request naming a version;
/// the report compares the two arms on their outcomes. Bad settings are 400s naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_challenger_answers_its_share_and_the_arms_are_compared_on_outcomes() {
    use tower::ServiceExt;
    let f = with_challenger().await;
    for (body, field) in [
        (json!({"mode": "split"}), "share"),
        (json!({"mode": "split", "share": 0.0}), "share"),
        (json!({"mode": "split", "share": 1.5}), "share"),
        (json!({"mode": "canary", "share": 0.5}), "mode"),
        (
            json!({"alias": "champion", "mode": "split", "share": 0.5}),
            "alias",
        ),
    ] {
        let r = crate::common::put_json(
            &f.app,
            "/v1/models/credit/challenger",
            Some(&f.analyst),
            &body,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.json);
        assert_eq!(r.json["details"]["field"], field, "{body}: {}", r.json);
    }
    let r = crate::common::put_json(
        &f.app,
        "/v1/models/credit/challenger",
        Some(&f.analyst),
        &json!({"alias": "challenger", "mode": "split", "share": 0.5}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["mode"], "split", "{}", r.json);

    let records = population(|_| {});
    let truth = truth();
    let predict = |uri: &'static str, id: String, record: Value| {
        let app = f.app.clone();
        let key = f.client.clone();
        async move {
            let req = axum::http::Request::builder()
                .method("POST")
                .uri(uri)
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {key}"))
                .header("x-request-id", id)
                .body(axum::body::Body::from(
                    json!({"record": record}).to_string(),
                ))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        }
    };
    let mut by_version = [0usize; 3];
    let mut answered = Vec::new();
    let mut outcomes = Vec::new();
    for (i, record) in records.iter().take(300).enumerate() {
        let id = format!("split-{i:04}");
        let out = predict("/v1/models/credit/predict", id.clone(), record.clone()).await;
        let v = out["version"].as_u64().unwrap() as usize;
        by_version[v] += 1;
        answered.push(v);
        // The same request id is answered by the same version.
        if i % 50 == 0 {
            let again = predict("/v1/models/credit/predict", id.clone(), record.clone()).await;
            assert_eq!(again["version"], out["version"], "{id}");
        }
        outcomes.push(json!({"request_id": id, "record": 0, "label": truth[i]}));
    }
    assert!(
        (90..=210).contains(&by_version[2]),
        "the challenger answered {} of 300 at share 0.5",
        by_version[2]
    );
    assert_eq!(by_version[1] + by_version[2], 300);
    // A request naming a version is never redirected.
    for (i, record) in records.iter().take(20).enumerate() {
        let out = predict(
            "/v1/models/credit/versions/1/predict",
            format!("pinned-{i}"),
            record.clone(),
        )
        .await;
        assert_eq!(out["version"], 1, "{out}");
    }
    // Each answer's audit record names the version that answered.
    let mut audited = std::collections::HashMap::new();
    let mut after = 0u64;
    loop {
        let page = get(
            &f.app,
            &format!("/v1/audit?event=prediction&model=credit&limit=1000&after={after}"),
            Some(&f.admin),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        let list = page.json["records"].as_array().unwrap().clone();
        if list.is_empty() {
            break;
        }
        for r in &list {
            after = r["seq"].as_u64().unwrap();
            if let Some(id) = r["request_id"].as_str() {
                audited.insert(id.to_string(), r["version"].clone());
            }
        }
    }
    for (i, answered) in answered.iter().enumerate() {
        assert_eq!(
            audited.get(&format!("split-{i:04}")),
            Some(&json!(answered)),
            "audit of split-{i:04}"
        );
    }

    let report = post_outcomes_then_report(&f, &outcomes).await;
    let arms = report["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2, "{report}");
    for arm in arms {
        let v = arm["version"].as_u64().unwrap() as usize;
        assert_eq!(arm["outcomes"]["n"], by_version[v], "{report}");
        assert!(
            arm["outcomes"]["metrics"]["auc"].as_f64().unwrap() > 0.6,
            "{report}"
        );
    }
    assert_eq!(arms[0]["alias"], "champion");
    // No shadow pairs in a split.
    assert_eq!(report["comparisons"], json!([]), "{report}");
}

/// Fairness over live decisions: outcomes recorded with an attribute that is not sent for
/// scoring; the report's approval rates and adverse impact ratio equal those computed by hand
/// from the answers clients received. Outcomes without the attribute are left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_fairness_reproduces_the_adverse_impact_ratio_of_the_answers_given() {
    let f = trained().await;
    let records = population(|_| {});
    let truth = truth();
    // (approved, under 25) of each answer.
    let mut answers = Vec::new();
    let mut outcomes = Vec::new();
    for c in 0..4 {
        let chunk = &records[c * 100..c * 100 + 100];
        let r = post_json(
            &f.app,
            "/v1/models/credit/predict",
            Some(&f.client),
            &json!({ "records": chunk }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        for (i, p) in r.json["predictions"].as_array().unwrap().iter().enumerate() {
            let age = chunk[i]["age_in_years"].as_i64().unwrap();
            let mut o = json!({"request_id": r.json["request_id"], "record": i,
                               "label": truth[c * 100 + i]});
            // The last chunk's outcomes come without the attribute.
            if c < 3 {
                o["attributes"] = json!({"age_in_years": age, "channel": "branch"});
                answers.push((p["decision"] == "approve", age < 25));
            }
            outcomes.push(o);
        }
    }
    let r = post_json(
        &f.app,
        "/v1/models/credit/outcomes",
        Some(&f.client),
        &json!({ "outcomes": outcomes }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);

    let rate = |young: bool| {
        let group: Vec<bool> = answers
            .iter()
            .filter(|(_, y)| *y == young)
            .map(|(a, _)| *a)
            .collect();
        group.iter().filter(|a| **a).count() as f64 / group.len() as f64
    };
    let (young, old) = (rate(true), rate(false));
    let by_hand = young.min(old) / young.max(old);

    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/fairness?attribute=age_in_years&cuts=25",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["source"], "outcomes", "{}", r.json);
    assert_eq!(r.json["rows"], 300, "{}", r.json);
    let groups = r.json["groups"].as_array().unwrap();
    let rate_of = |name: &str| {
        groups
            .iter()
            .find(|g| g["group"] == name)
            .unwrap_or_else(|| panic!("no group {name}: {}", r.json))["approval_rate"]
            .as_f64()
            .unwrap()
    };
    assert!((rate_of("< 25") - young).abs() < 1e-12, "{}", r.json);
    assert!((rate_of(">= 25") - old).abs() < 1e-12, "{}", r.json);
    let air = r.json["min_adverse_impact_ratio"].as_f64().unwrap();
    assert!((air - by_hand).abs() < 1e-12, "{air} vs {by_hand}");

    // An attribute no outcome was given, and a bad attribute value, name the field.
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/fairness?attribute=gender",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["details"]["field"], "attribute", "{}", r.json);
    let bad = json!({"outcomes": [{"request_id": outcomes[0]["request_id"], "record": 0,
        "label": truth[0], "attributes": {"age_in_years": [1, 2]}}]});
    let r = post_json(&f.app, "/v1/models/credit/outcomes", Some(&f.client), &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(
        r.json["details"]["field"], "outcomes[0].attributes.age_in_years",
        "{}",
        r.json
    );
}

/// A drift request that stops waiting while the version's reference is being built does not
/// cancel the build: the reference is built and stored, and the rows scored meanwhile are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drift_request_cut_off_during_the_reference_build_leaves_it_to_finish() {
    use aurum_service::ModelRef;
    use std::time::{Duration, Instant};
    let f = trained().await;
    let model = f
        .platform
        .resolve(&ModelRef::version("credit", 1))
        .await
        .unwrap();
    let stored = f
        .config
        .data_dir
        .join("monitoring")
        .join("credit")
        .join("v1.reference.json");
    assert!(!stored.exists());
    // Polled once (which hands the build to the blocking pool) and dropped.
    let mut report = Box::pin(f.platform.drift_report(&model));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(report.as_mut().poll(cx))).await;
    assert!(
        first.is_pending(),
        "the reference was built within one poll"
    );
    drop(report);
    replay(&f, 1, &population(|_| {})[..100]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stored.exists() {
        assert!(Instant::now() < deadline, "the reference was never built");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/drift",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["reference_rows"], 1000, "{}", r.json);
    assert_eq!(r.json["windows"][0]["rows"], 100, "{}", r.json);
}

async fn replay_on(app: &axum::Router, key: &str, records: &[Value]) {
    for chunk in records.chunks(250) {
        let r = post_json(
            app,
            "/v1/models/credit/versions/1/predict",
            Some(key),
            &json!({ "records": chunk }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    }
}

/// Two processes on one registry (replicas) scoring the same version in the same window: each
/// reports the window with every row either of them scored, and the closed window is judged
/// once, on all its rows, whichever process closes it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_count_into_one_window_and_it_is_judged_once() {
    let (hook, received) = webhook_receiver().await;
    let f = fixture_with(|c| {
        c.monitoring.window_s = 4;
        c.monitoring.flush_ms = 200;
        c.monitoring.webhook_url = Some(hook);
    })
    .await;
    assert_eq!(import_german(&f).await.status, StatusCode::CREATED);
    let job = train(&f, "credit", json!({}), Some("champion")).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let other = aurum_backends::open_platform(f.config.clone())
        .await
        .unwrap();
    let other_app = aurum_server::router(aurum_server::AppState::new(other.clone()));
    for app in [&f.app, &other_app] {
        let r = get(app, "/v1/models/credit/versions/1/drift", Some(&f.client)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    }

    until_next_window(4).await;
    let shifted = population(|r| {
        let a = r["age_in_years"].as_i64().unwrap();
        r.insert("age_in_years".into(), json!(a + 25));
    });
    replay_on(&f.app, &f.client, &shifted[..500]).await;
    replay_on(&other_app, &f.client, &shifted[500..]).await;

    // Each process sees the other's rows once they are stored (every 200 ms here).
    for app in [&f.app, &other_app] {
        let report = report_once_stored(app, &f.client, &[1000]).await;
        assert_eq!(feature_alerts(&report), ["age_in_years"], "{report}");
    }

    // The window ends with no further request: the periodic task of one process judges it.
    first_webhook_call(&received, 15).await;
    // Several more rounds of both processes' tasks: still one call.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let calls = received.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "one window, judged once");
    let alert: Value = serde_json::from_slice(&calls[0].1).unwrap();
    assert_eq!(alert["details"]["rows"], 1000, "{alert}");
    assert_eq!(alert["details"]["features"][0]["name"], "age_in_years");
}

/// The window files an earlier release kept on local disk are imported into the registry once,
/// then renamed: the report shows their counts, and a second import adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_files_of_an_earlier_release_are_imported_once() {
    let f = trained().await;
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/drift",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(window_rows(&r.json), Vec::<u64>::new());
    let dir = f.config.data_dir.join("monitoring").join("credit");
    // The reference profile (the training population's counts) stands in for a window.
    let profile: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("v1.reference.json")).unwrap())
            .unwrap();
    let now = chrono::Utc::now().timestamp();
    let open_start = now / 3600 * 3600;
    let window = |start: i64| {
        let at = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339();
        json!({"start": at(start), "end": at(start + 3600), "profile": profile})
    };
    let closed = format!(
        "{}\n{}\n",
        window(open_start - 7200),
        window(open_start - 3600)
    );
    std::fs::write(dir.join("v1.windows.jsonl"), closed).unwrap();
    std::fs::write(dir.join("v1.current.json"), window(open_start).to_string()).unwrap();

    // A process started after the upgrade imports them.
    for round in 0..2 {
        let next = aurum_backends::open_platform(f.config.clone())
            .await
            .unwrap();
        let app = aurum_server::router(aurum_server::AppState::new(next.clone()));
        let r = get(&app, "/v1/models/credit/versions/1/drift", Some(&f.client)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        assert_eq!(
            window_rows(&r.json),
            [1000, 1000, 1000],
            "round {round}: {}",
            r.json
        );
        assert_eq!(r.json["windows"][0]["open"], true);
        assert_eq!(r.json["windows"][1]["open"], false);
        assert!(!dir.join("v1.windows.jsonl").exists());
        assert!(!dir.join("v1.current.json").exists());
        assert!(dir.join("v1.windows.jsonl.imported").exists());
        assert!(dir.join("v1.current.json.imported").exists());
    }
}

/// A reference that could not be built for a reason that can pass (the training data
/// unreadable) is not remembered as unavailable: once the data is whole again, the next drift
/// request builds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_build_that_failed_for_a_passing_reason_is_tried_again() {
    let f = trained().await;
    let store = f.platform.artifact_store();
    let key = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.starts_with("datasets/"))
        .expect("the training data set");
    let whole = store.get(&key).await.unwrap();
    let mut damaged = whole.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x01;
    store.put(&key, damaged).await.unwrap();
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/drift",
        Some(&f.client),
    )
    .await;
    assert!(r.status.is_server_error(), "{} {}", r.status, r.json);

    store.put(&key, whole).await.unwrap();
    let r = get(
        &f.app,
        "/v1/models/credit/versions/1/drift",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["reference_rows"], 1000, "{}", r.json);
}
