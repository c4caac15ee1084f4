//! Key policies over the API: expiry, model scope and per-key rate limits, each refused with its
//! own status and error code, on `/v1` and on the Open Inference Protocol.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::common::*;

async fn create_key(f: &Fixture, body: serde_json::Value) -> Resp {
    post_json(&f.app, "/v1/keys", Some(&f.admin), &body).await
}

fn predict_body() -> serde_json::Value {
    json!({"records": [applicant()]})
}

#[tokio::test]
async fn a_scoped_key_reaches_only_its_models_on_every_route() {
    let f = trained().await;
    let other = create_key(
        &f,
        json!({"name": "fraud-client", "role": "client", "scopes": ["fraud-*", "limits"]}),
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.json);
    assert_eq!(other.json["scopes"], json!(["fraud-*", "limits"]));
    let other = other.json["key"].as_str().unwrap().to_string();

    // /v1 predict, model metadata, and OIP REST inference and metadata: 403 with its own code.
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&other),
        &predict_body(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert_eq!(r.json["code"], "key_out_of_scope", "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap().contains("credit"),
        "{}",
        r.json
    );
    let r = get(&f.app, "/v1/models/credit", Some(&other)).await;
    assert_eq!(r.json["code"], "key_out_of_scope", "{}", r.json);
    // A percent-encoded name is the same model.
    let r = get(&f.app, "/v1/models/cr%65dit", Some(&other)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    let r = get(&f.app, "/v2/models/credit", Some(&other)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert!(
        r.json["error"].as_str().unwrap().contains("not scoped"),
        "{}",
        r.json
    );
    let r = post_json(
        &f.app,
        "/v2/repository/models/credit/load",
        Some(&other),
        &json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);

    // Listings show only what the key may use.
    let r = get(&f.app, "/v1/models", Some(&other)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["models"], json!([]), "{}", r.json);
    let r = post_json(&f.app, "/v2/repository/index", Some(&other), &json!({})).await;
    assert_eq!(r.json, json!([]), "{}", r.json);
    let r = post_json(&f.app, "/v2/repository/index", Some(&f.client), &json!({})).await;
    assert_eq!(r.json.as_array().unwrap().len(), 1, "{}", r.json);

    // A prefix that covers the model lets the same requests through.
    let cred = create_key(
        &f,
        json!({"name": "credit-client", "role": "client", "scopes": ["cred*"]}),
    )
    .await;
    let cred = cred.json["key"].as_str().unwrap().to_string();
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&cred),
        &predict_body(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = get(&f.app, "/v1/models", Some(&cred)).await;
    assert_eq!(r.json["models"].as_array().unwrap().len(), 1, "{}", r.json);

    // An analyst scoped away from a model cannot train into it or batch-score it.
    let analyst = create_key(
        &f,
        json!({"name": "fraud-analyst", "role": "analyst", "scopes": ["fraud-*"]}),
    )
    .await;
    let analyst = analyst.json["key"].as_str().unwrap().to_string();
    let r = post_json(
        &f.app,
        "/v1/training-jobs",
        Some(&analyst),
        &json!({"dataset": "german", "target": "creditability", "kind": "logistic", "model": "credit"}),
    )
    .await;
    assert_eq!(r.json["code"], "key_out_of_scope", "{}", r.json);
    let r = post_json(
        &f.app,
        "/v1/batch-jobs",
        Some(&analyst),
        &json!({"model": "credit", "dataset": "german"}),
    )
    .await;
    assert_eq!(r.json["code"], "key_out_of_scope", "{}", r.json);
}

#[tokio::test]
async fn an_expired_key_is_refused_with_its_own_code() {
    let f = trained().await;
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let r = create_key(
        &f,
        json!({"name": "short", "role": "client", "expires_at": expires.to_rfc3339()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert!(r.json["expires_at"].is_string(), "{}", r.json);
    let key = r.json["key"].as_str().unwrap().to_string();
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&key),
        &predict_body(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);

    tokio::time::sleep(Duration::from_millis(1700)).await;
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&key),
        &predict_body(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.json);
    assert_eq!(r.json["code"], "key_expired", "{}", r.json);
    let r = get(&f.app, "/v2/models/credit", Some(&key)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.json);
    // Another key is unaffected.
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &predict_body(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn a_rate_limited_key_gets_429_and_recovers() {
    let f = trained().await;
    let r = create_key(
        &f,
        json!({"name": "metered", "role": "client", "rate_limit_per_s": 3}),
    )
    .await;
    assert_eq!(r.json["rate_limit_per_s"], 3, "{}", r.json);
    let key = r.json["key"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..6 {
        let r = get(&f.app, "/v1/models/credit", Some(&key)).await;
        statuses.push(r.status);
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            last = Some(r);
        }
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!((3..=4).contains(&ok), "{statuses:?}");
    let limited = last.expect("the key went over its limit");
    assert_eq!(limited.json["code"], "key_rate_limited", "{}", limited.json);
    assert!(limited.headers.contains_key("retry-after"));
    // Other keys are not limited by this one.
    for _ in 0..10 {
        let r = get(&f.app, "/v1/models/credit", Some(&f.client)).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = get(&f.app, "/v1/models/credit", Some(&key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn bad_key_policies_name_their_field() {
    let f = fixture().await;
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    for (body, code, field) in [
        (
            json!({"name": "a", "role": "client", "expires_at": past}),
            "invalid_expiry",
            "expires_at",
        ),
        (
            json!({"name": "b", "role": "client", "expires_at": "tomorrow"}),
            "invalid_expiry",
            "expires_at",
        ),
        (
            json!({"name": "c", "role": "client", "scopes": ["cr*dit"]}),
            "invalid_scope",
            "scopes",
        ),
        (
            json!({"name": "d", "role": "client", "scopes": ["../x"]}),
            "invalid_scope",
            "scopes",
        ),
        (
            json!({"name": "e", "role": "client", "rate_limit_per_s": 0}),
            "invalid_rate_limit",
            "rate_limit_per_s",
        ),
    ] {
        let r = create_key(&f, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.json);
        assert_eq!(r.json["code"], code, "{body}: {}", r.json);
        assert_eq!(r.json["details"]["field"], field, "{body}: {}", r.json);
    }
    // Nothing was created.
    let r = get(&f.app, "/v1/keys", Some(&f.admin)).await;
    assert_eq!(r.json["keys"].as_array().unwrap().len(), 3, "{}", r.json);
}

/// Masked personal fields: the audit record keeps only their last four characters, and an error
/// about one never echoes its value.
#[tokio::test]
async fn masked_fields_are_masked_in_audit_records_and_never_echoed() {
    let f = fixture_with(|c| {
        c.audit.fields_in_clear = vec!["age_in_years".into()];
        c.audit.masked_fields = vec!["credit_amount".into()];
    })
    .await;
    assert_eq!(import_german(&f).await.status, StatusCode::CREATED);
    let job = train(&f, "credit", json!({}), Some("champion")).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &predict_body(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let audit = get(&f.app, "/v1/audit?event=prediction", Some(&f.admin)).await;
    let recorded = &audit.json["records"][0]["details"]["inputs_in_clear"][0];
    assert_eq!(recorded["age_in_years"], 67, "{}", audit.json);
    assert_eq!(recorded["credit_amount"], "***1169", "{}", audit.json);

    let mut record = applicant();
    record["credit_amount"] = json!("acct-99-secret");
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &json!({"records": [record]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(
        r.json["details"]["field"], "records[0].credit_amount",
        "{}",
        r.json
    );
    assert!(!r.json.to_string().contains("secret"), "{}", r.json);

    let mut both = aurum_service::Config::default();
    both.audit.fields_in_clear = vec!["x".into()];
    both.audit.masked_fields = vec!["x".into()];
    let e = both.validate(Vec::new()).unwrap_err().to_string();
    assert!(e.contains("both"), "{e}");
}
