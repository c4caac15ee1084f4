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
