//! `POST /v1/datasets/{name}/synthesize`: bad input is a 400 naming the field; a good request
//! registers a dataset with lineage that training can use.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn synthesize_refuses_each_bad_field_with_a_400_naming_it() {
    let f = fixture().await;
    import_german(&f).await;
    let url = "/v1/datasets/german/synthesize";
    let base = json!({"target": "creditability", "class": "bad", "rows": 50, "method": "smote"});
    let cases = [
        ("target", json!("nope"), "unknown_column"),
        ("class", json!("average"), "class_absent"),
        ("rows", json!(0), "invalid_rows"),
        ("rows", json!(-5), "invalid_rows"),
        ("rows", json!(1_000_001), "invalid_rows"),
        ("method", json!("gan"), "unknown_method"),
        ("name", json!("../escape"), "invalid_name"),
    ];
    for (field, value, code) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let r = post_json(&f.app, url, Some(&f.analyst), &body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{field}={value}: {}",
            r.json
        );
        assert_eq!(r.json["code"], code, "{field}={value}: {}", r.json);
        assert_eq!(
            r.json["details"]["field"], field,
            "{field}={value}: {}",
            r.json
        );
    }
    // A VAE parameter out of range is named.
    let mut body = base.clone();
    body["method"] = json!("vae");
    body["epochs"] = json!(0);
    let r = post_json(&f.app, url, Some(&f.analyst), &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["details"]["field"], "epochs", "{}", r.json);
    // A missing field and a field of the wrong JSON type are named too.
    let r = post_json(
        &f.app,
        url,
        Some(&f.analyst),
        &json!({"target": "creditability", "class": "bad", "method": "smote"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap().contains("rows"),
        "{}",
        r.json
    );
    let r = post_json(
        &f.app,
        url,
        Some(&f.analyst),
        &json!({"target": "creditability", "class": "bad", "rows": "many", "method": "smote"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap().contains("rows"),
        "{}",
        r.json
    );
    // Unknown source: 404; a client key may not: 403. Nothing was registered.
    let r = post_json(
        &f.app,
        "/v1/datasets/nope/synthesize",
        Some(&f.analyst),
        &base,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    let r = post_json(&f.app, url, Some(&f.client), &base).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    let list = get(&f.app, "/v1/datasets", Some(&f.analyst)).await;
    assert_eq!(
        list.json["datasets"].as_array().unwrap().len(),
        1,
        "{}",
        list.json
    );
}

#[tokio::test]
async fn synthesize_registers_a_dataset_with_lineage_that_trains() {
    let f = fixture().await;
    let imported = import_german(&f).await;
    let body = json!({"target": "creditability", "class": "bad", "rows": 120, "method": "smote",
                      "seed": 5, "name": "german-plus"});
    let r = post_json(
        &f.app,
        "/v1/datasets/german/synthesize",
        Some(&f.analyst),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["dataset"]["name"], "german-plus");
    assert_eq!(r.json["dataset"]["rows"], 1120);
    assert_eq!(r.json["lineage"]["source"], "german");
    assert_eq!(r.json["lineage"]["source_sha256"], imported.json["sha256"]);
    assert_eq!(r.json["lineage"]["method"], "smote");
    assert_eq!(r.json["lineage"]["seed"], 5);
    assert_eq!(r.json["lineage"]["synthetic_rows"], 120);
    // The new dataset keeps the source schema and shows its lineage.
    let d = get(&f.app, "/v1/datasets/german-plus", Some(&f.analyst)).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.json["schema"], imported.json["schema"]);
    assert_eq!(d.json["lineage"]["lineage"]["class"], "bad");
    let bad = d.json["profile"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "creditability")
        .cloned()
        .unwrap();
    assert!(
        bad["top_values"]
            .as_array()
            .unwrap()
            .contains(&json!(["bad", 420])),
        "300 + 120 bad rows: {bad}"
    );
    // The same request again: the same bytes, nothing new (200).
    let again = post_json(
        &f.app,
        "/v1/datasets/german/synthesize",
        Some(&f.analyst),
        &body,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.json);
    assert_eq!(again.json["dataset"]["sha256"], r.json["dataset"]["sha256"]);
    // Training uses it like any dataset.
    let job = train_with(
        &f,
        &json!({"dataset": "german-plus", "target": "creditability", "kind": "logistic",
                "model": "synth"}),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
}

#[tokio::test]
async fn a_synthesis_job_checks_at_once_runs_in_the_background_and_matches_the_request_route() {
    let f = fixture().await;
    import_german(&f).await;
    let url = "/v1/datasets/german/synthesis-jobs";
    // Refusals come at submission, naming the field, and queue nothing.
    let r = post_json(
        &f.app,
        url,
        Some(&f.analyst),
        &json!({"target": "creditability", "class": "average", "rows": 40, "method": "vae"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["details"]["field"], "class", "{}", r.json);
    let jobs = get(&f.app, "/v1/training-jobs", Some(&f.analyst)).await;
    assert_eq!(
        jobs.json["jobs"].as_array().unwrap().len(),
        0,
        "{}",
        jobs.json
    );
    let r = post_json(
        &f.app,
        "/v1/datasets/nope/synthesis-jobs",
        Some(&f.analyst),
        &json!({"target": "creditability", "class": "bad", "rows": 40, "method": "vae"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);

    // A VAE with its report, as a job.
    let body = json!({"target": "creditability", "class": "bad", "rows": 60, "method": "vae",
                      "seed": 9, "epochs": 20, "report": true, "name": "german-vae-job"});
    let r = post_json(&f.app, url, Some(&f.analyst), &body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json["job"]["kind"], "synthesize_data", "{}", r.json);
    assert_eq!(r.json["job"]["dataset"], "german", "{}", r.json);
    assert_eq!(r.json["dataset_created"], "german-vae-job", "{}", r.json);
    let id = r.json["job"]["id"].as_str().unwrap().to_string();
    let mut done = None;
    for _ in 0..2400 {
        let j = get(
            &f.app,
            &format!("/v1/synthesis-jobs/{id}"),
            Some(&f.analyst),
        )
        .await;
        assert_eq!(j.status, StatusCode::OK, "{}", j.json);
        match j.json["job"]["state"].as_str().unwrap() {
            "succeeded" | "failed" | "cancelled" => {
                done = Some(j.json);
                break;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    let done = done.expect("the synthesis job finishes within 120 s");
    assert_eq!(done["job"]["state"], "succeeded", "{done}");
    assert_eq!(done["job"]["progress"], 1.0, "{done}");
    assert_eq!(done["lineage"]["method"], "vae", "{done}");
    assert_eq!(done["lineage"]["seed"], 9, "{done}");
    let utility = done["report"]["utility"]
        .as_array()
        .unwrap_or_else(|| panic!("{done}"));
    assert_eq!(utility.len(), 3, "{done}");
    // The dataset is registered, and is the same bytes the request route makes.
    let d = get(&f.app, "/v1/datasets/german-vae-job", Some(&f.analyst)).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.json);
    assert_eq!(d.json["rows"], 1060, "{}", d.json);
    let mut same = body.clone();
    same["name"] = json!("german-vae-request");
    same["report"] = json!(false);
    let r = post_json(
        &f.app,
        "/v1/datasets/german/synthesize",
        Some(&f.analyst),
        &same,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["dataset"]["sha256"], d.json["sha256"], "{}", r.json);
    // A training job's id is not a synthesis job.
    let job = train_with(
        &f,
        &json!({"dataset": "german-vae-job", "target": "creditability", "kind": "logistic",
                "model": "from-job"}),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let other = get(
        &f.app,
        &format!("/v1/synthesis-jobs/{}", job["id"].as_str().unwrap()),
        Some(&f.analyst),
    )
    .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.json);
    // Submission and outcome are in the audit log.
    let audit = get(&f.app, "/v1/audit?limit=1000", Some(&f.analyst)).await;
    let actions: Vec<&str> = audit.json["records"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", audit.json))
        .iter()
        .filter_map(|r| r["event"].as_str())
        .collect();
    for a in [
        "synthesis_job.submit",
        "synthesis_job.finish",
        "dataset.synthesize",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn a_cancelled_synthesis_job_registers_nothing() {
    let f = fixture().await;
    import_german(&f).await;
    let body = json!({"target": "creditability", "class": "bad", "rows": 500, "method": "vae",
                      "epochs": 2000, "report": true, "name": "german-cancelled"});
    let r = post_json(
        &f.app,
        "/v1/datasets/german/synthesis-jobs",
        Some(&f.analyst),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let id = r.json["job"]["id"].as_str().unwrap().to_string();
    let c = post_json(
        &f.app,
        &format!("/v1/synthesis-jobs/{id}/cancel"),
        Some(&f.analyst),
        &json!({}),
    )
    .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.json);
    let mut last = serde_json::Value::Null;
    for _ in 0..1200 {
        last = get(
            &f.app,
            &format!("/v1/synthesis-jobs/{id}"),
            Some(&f.analyst),
        )
        .await
        .json;
        if last["job"]["state"] != "queued" && last["job"]["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(last["job"]["state"], "cancelled", "{last}");
    assert!(last.get("lineage").is_none(), "{last}");
    let d = get(&f.app, "/v1/datasets/german-cancelled", Some(&f.analyst)).await;
    assert_eq!(d.status, StatusCode::NOT_FOUND, "{}", d.json);
    // A finished job cannot be cancelled again; an unknown one is not found.
    let again = post_json(
        &f.app,
        &format!("/v1/synthesis-jobs/{id}/cancel"),
        Some(&f.analyst),
        &json!({}),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.json);
    let none = post_json(
        &f.app,
        "/v1/synthesis-jobs/00000000-0000-0000-0000-000000000000/cancel",
        Some(&f.analyst),
        &json!({}),
    )
    .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.json);

    // Cancelled while it runs (inside the VAE fit or the report's learners): it stops there.
    let mut running = body.clone();
    running["name"] = json!("german-cancelled-running");
    let r = post_json(
        &f.app,
        "/v1/datasets/german/synthesis-jobs",
        Some(&f.analyst),
        &running,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let id = r.json["job"]["id"].as_str().unwrap().to_string();
    let url = format!("/v1/synthesis-jobs/{id}");
    for _ in 0..2000 {
        let j = get(&f.app, &url, Some(&f.analyst)).await.json;
        if j["job"]["stage"] == "generating" || j["job"]["stage"] == "report" {
            break;
        }
        assert!(
            matches!(j["job"]["state"].as_str(), Some("queued" | "running")),
            "the job ended before it could be cancelled: {j}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let c = post_json(
        &f.app,
        &format!("{url}/cancel"),
        Some(&f.analyst),
        &json!({}),
    )
    .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.json);
    let mut last = serde_json::Value::Null;
    for _ in 0..1200 {
        last = get(&f.app, &url, Some(&f.analyst)).await.json;
        if last["job"]["state"] != "queued" && last["job"]["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(last["job"]["state"], "cancelled", "{last}");
    let d = get(
        &f.app,
        "/v1/datasets/german-cancelled-running",
        Some(&f.analyst),
    )
    .await;
    assert_eq!(d.status, StatusCode::NOT_FOUND, "{}", d.json);
}
