//! In-process router tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use std::time::Instant;

use aurum_service::OVER_LIMIT_DELAY;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn import_profiles_german_credit_and_is_idempotent() {
    let f = fixture().await;
    let r = import_german(&f).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["rows"], 1000);
    assert_eq!(r.json["columns"], 21);
    assert_eq!(
        r.json["sha256"],
        "01f2981fc8f44de5ed05b904318afb1e78390c34def2cb46015e0c3f99be286c"
    );
    let cols = r.json["profile"]["columns"].as_array().unwrap();
    let amount = cols.iter().find(|c| c["name"] == "credit_amount").unwrap();
    assert_eq!(amount["column_type"], "integer");
    assert_eq!(amount["numeric"]["min"].as_f64(), Some(250.0));
    assert_eq!(amount["numeric"]["max"].as_f64(), Some(18424.0));
    let purpose = cols.iter().find(|c| c["name"] == "purpose").unwrap();
    assert_eq!(purpose["column_type"], "categorical");
    // Same bytes again: 200, not created, same dataset.
    let again = import_german(&f).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json["created"], false);
    // The same bytes read another way are another dataset: 409 naming the column (the call
    // once answered `created: false` and kept the first types). The same reading again is fine.
    let bytes = crate::common::GERMAN.to_vec();
    for (query, status) in [
        ("types=purpose:text", StatusCode::CONFLICT),
        ("types=purpose:categorical", StatusCode::OK),
        ("types=nope:integer", StatusCode::BAD_REQUEST),
    ] {
        let r = call(
            &f.app,
            Method::POST,
            &format!("/v1/datasets?name=german&{query}"),
            Some(&f.analyst),
            Body::from(bytes.clone()),
            "text/csv",
        )
        .await;
        assert_eq!(r.status, status, "{query}: {}", r.json);
        if status == StatusCode::CONFLICT {
            let msg = r.json["message"].as_str().unwrap();
            assert!(msg.contains("import under a new name"), "{query}: {msg}");
        }
        if status == StatusCode::BAD_REQUEST {
            // As on a first import: the column is unknown, named under its parameter.
            assert_eq!(r.json["code"], "unknown_column", "{query}: {}", r.json);
            assert_eq!(r.json["details"]["field"], "types", "{query}: {}", r.json);
        }
    }
    // Different bytes under the same name: 409.
    let other = call(
        &f.app,
        Method::POST,
        "/v1/datasets?name=german",
        Some(&f.analyst),
        Body::from("a,b\n1,2\n"),
        "text/csv",
    )
    .await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.json);
    let shown = get(&f.app, "/v1/datasets/german", Some(&f.analyst)).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.json["schema"].as_array().unwrap().len(), 21);
}

#[tokio::test]
async fn bad_files_name_line_and_column() {
    let f = fixture().await;
    let cases: &[(&str, &[u8], &str, &str)] = &[
        ("ragged", b"a,b,c\n1,2,3\n4,5\n", "ragged_row", "line 3"),
        ("empty", b"", "empty_file", ""),
        ("duphdr", b"a,b,a\n1,2,3\n", "duplicate_header", "a"),
        ("utf8", b"a,b\n1,\xff\xfe\n", "invalid_utf8", "line 2"),
    ];
    for (name, bytes, code, needle) in cases {
        let r = call(
            &f.app,
            Method::POST,
            &format!("/v1/datasets?name={name}"),
            Some(&f.analyst),
            Body::from(bytes.to_vec()),
            "text/csv",
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.json);
        assert_eq!(r.json["code"], *code, "{name}: {}", r.json);
        assert!(
            r.json["message"].as_str().unwrap().contains(needle),
            "{name}: {}",
            r.json
        );
    }
    // Nothing was registered by the failures.
    let list = get(&f.app, "/v1/datasets", Some(&f.analyst)).await;
    assert_eq!(list.json["datasets"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn training_registers_a_version_with_held_out_metrics_and_lineage() {
    let f = trained().await;
    let v = get(&f.app, "/v1/models/credit/versions/1", Some(&f.client)).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.json);
    let auc = v.json["metrics"]["auc"].as_f64().unwrap();
    assert!(auc > 0.70, "held-out AUC {auc}");
    assert_eq!(v.json["metrics"]["test_rows"].as_f64(), Some(300.0));
    assert_eq!(
        v.json["lineage"]["dataset_sha256"],
        "01f2981fc8f44de5ed05b904318afb1e78390c34def2cb46015e0c3f99be286c"
    );
    assert_eq!(v.json["lineage"]["target"], "creditability");
    assert_eq!(v.json["aliases"], json!(["champion"]));
    assert_eq!(v.json["input_schema"].as_array().unwrap().len(), 20);
    let m = get(&f.app, "/v1/models", Some(&f.client)).await;
    assert_eq!(m.json["models"][0]["aliases"]["champion"], 1);
}

#[tokio::test]
async fn training_input_errors_are_400_before_any_job() {
    let f = fixture().await;
    import_german(&f).await;
    let base =
        json!({"dataset": "german", "target": "creditability", "kind": "logistic", "model": "m"});
    let mut no_target = base.clone();
    no_target["target"] = "nope".into();
    let r = post_json(&f.app, "/v1/training-jobs", Some(&f.analyst), &no_target).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap().contains("nope"),
        "{}",
        r.json
    );
    assert_eq!(r.json["details"]["field"], "target", "{}", r.json);
    // A type override or date format naming no column names its query parameter.
    for (query, field) in [
        ("types=nope:integer", "types"),
        ("date_format=nope:%25d.%25m.%25Y", "date_format"),
    ] {
        let r = call(
            &f.app,
            Method::POST,
            &format!("/v1/datasets?name=other&{query}"),
            Some(&f.analyst),
            Body::from(crate::common::GERMAN.to_vec()),
            "text/csv",
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.json);
        assert_eq!(r.json["code"], "unknown_column", "{query}: {}", r.json);
        assert_eq!(r.json["details"]["field"], field, "{query}: {}", r.json);
    }
    let mut non_binary = base.clone();
    non_binary["target"] = "purpose".into();
    let r = post_json(&f.app, "/v1/training-jobs", Some(&f.analyst), &non_binary).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["code"], "non_binary_target", "{}", r.json);
    assert_eq!(r.json["details"]["field"], "target", "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap().contains("line"),
        "{}",
        r.json
    );
    let mut bad_param = base.clone();
    bad_param["params"] = json!({"penalty": "l3"});
    let r = post_json(&f.app, "/v1/training-jobs", Some(&f.analyst), &bad_param).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["details"]["field"], "params.penalty", "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap().contains("penalty"),
        "{}",
        r.json
    );
    let mut unknown_param = base.clone();
    unknown_param["params"] = json!({"penalti": "l2"});
    let r = post_json(
        &f.app,
        "/v1/training-jobs",
        Some(&f.analyst),
        &unknown_param,
    )
    .await;
    assert_eq!(r.json["code"], "unknown_param", "{}", r.json);
    assert_eq!(r.json["details"]["field"], "params.penalti", "{}", r.json);
    let mut bad_kind = base.clone();
    bad_kind["kind"] = "forest".into();
    let r = post_json(&f.app, "/v1/training-jobs", Some(&f.analyst), &bad_kind).await;
    assert_eq!(r.json["code"], "unknown_model_kind");
    let r = post_json(
        &f.app,
        "/v1/training-jobs",
        Some(&f.analyst),
        &json!({"dataset": "missing", "target": "x", "kind": "logistic", "model": "m"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["code"], "dataset_not_found");
    let jobs = get(&f.app, "/v1/training-jobs", Some(&f.analyst)).await;
    assert_eq!(
        jobs.json["jobs"].as_array().unwrap().len(),
        0,
        "no job was created for invalid requests"
    );
}

#[tokio::test]
async fn string_cells_are_read_as_the_training_file_was() {
    let f = trained().await;
    let with = |purpose: serde_json::Value, amount: serde_json::Value| {
        let mut a = applicant();
        a["purpose"] = purpose;
        a["credit_amount"] = amount;
        a
    };
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &json!({"records": [
            with(json!(null), json!(1169)),
            with(json!("NA"), json!("$1,169.00")),
            with(json!(" "), json!(" 1169 ")),
        ]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let p: Vec<f64> = r.json["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .collect();
    // A missing token is missing in a categorical column, as at training; an amount is a number.
    assert_eq!(p[0], p[1]);
    assert_eq!(p[0], p[2]);
}

#[tokio::test]
async fn predict_answers_with_probability_label_and_version() {
    let f = trained().await;
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &json!({"records": [applicant(), applicant()], "explain": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["model"], "credit");
    assert_eq!(r.json["version"], 1);
    let preds = r.json["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 2);
    let p = preds[0]["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    let label = preds[0]["label"].as_str().unwrap();
    assert!(label == "good" || label == "bad");
    assert_eq!(
        preds[0]["positive"],
        p >= r.json["threshold"].as_f64().unwrap()
    );
    // The explanation adds up to the log-odds.
    let e = &preds[0]["explanation"];
    let sum: f64 = e["base_value"].as_f64().unwrap()
        + e["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["contribution"].as_f64().unwrap())
            .sum::<f64>();
    assert!(
        (sum - (p / (1.0 - p)).ln()).abs() < 1e-6,
        "{sum} vs logit({p})"
    );
    // Version and alias routes answer the same.
    let by_v = post_json(
        &f.app,
        "/v1/models/credit/versions/1/predict",
        Some(&f.client),
        &json!({"record": applicant()}),
    )
    .await;
    assert_eq!(by_v.json["predictions"][0]["probability"].as_f64(), Some(p));
    let by_a = post_json(
        &f.app,
        "/v1/models/credit/aliases/champion/predict",
        Some(&f.client),
        &json!({"record": applicant()}),
    )
    .await;
    assert_eq!(by_a.json["predictions"][0]["probability"].as_f64(), Some(p));
    // An unseen category does not fail.
    let mut odd = applicant();
    odd["purpose"] = "spaceship".into();
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &json!({"record": odd}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn bad_predict_input_gets_documented_4xx() {
    let f = trained().await;
    let url = "/v1/models/credit/predict";
    let key = Some(f.client.as_str());
    let send = |body: String| {
        let app = f.app.clone();
        async move {
            call(
                &app,
                Method::POST,
                url,
                key,
                Body::from(body),
                "application/json",
            )
            .await
        }
    };
    let with = |field: &str, v: serde_json::Value| {
        let mut a = applicant();
        a[field] = v;
        json!({"records": [a]}).to_string()
    };
    let mut missing = applicant();
    missing.as_object_mut().unwrap().remove("age_in_years");
    let mut extra = applicant();
    extra["favourite_colour"] = "blue".into();
    let cases: Vec<(String, StatusCode, &str, Option<&str>)> = vec![
        (
            "{\"records\": [".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            json!({"records": [missing]}).to_string(),
            StatusCode::BAD_REQUEST,
            "missing_feature",
            Some("records[0].age_in_years"),
        ),
        (
            with("credit_amount", "abc".into()),
            StatusCode::BAD_REQUEST,
            "invalid_type",
            Some("records[0].credit_amount"),
        ),
        (
            // "NaN" is a missing-value token, as in a training file; infinities are errors.
            with("credit_amount", "-inf".into()),
            StatusCode::BAD_REQUEST,
            "non_finite_number",
            Some("records[0].credit_amount"),
        ),
        (
            with("credit_amount", "Infinity".into()),
            StatusCode::BAD_REQUEST,
            "non_finite_number",
            Some("records[0].credit_amount"),
        ),
        (
            json!({"records": [extra]}).to_string(),
            StatusCode::BAD_REQUEST,
            "unknown_field",
            Some("records[0].favourite_colour"),
        ),
        (
            json!({"records": []}).to_string(),
            StatusCode::BAD_REQUEST,
            "empty_batch",
            Some("records"),
        ),
        (
            "{\"records\": [{\"a\": NaN}]}".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            json!({"records": [1]}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_type",
            Some("records[0]"),
        ),
        (
            json!({"explain": true}).to_string(),
            StatusCode::BAD_REQUEST,
            "missing_field",
            Some("records"),
        ),
    ];
    for (body, status, code, field) in cases {
        let r = send(body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.json);
        assert_eq!(r.json["code"], code, "{body}: {}", r.json);
        assert_eq!(r.json["type"], "invalid_request");
        if let Some(field) = field {
            assert_eq!(r.json["details"]["field"], field, "{body}: {}", r.json);
            assert!(
                r.json["message"]
                    .as_str()
                    .unwrap()
                    .contains(field.rsplit('.').next().unwrap())
            );
        }
    }
    let r = post_json(
        &f.app,
        "/v1/models/nope/predict",
        key,
        &json!({"record": applicant()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["code"], "model_not_found");
    let r = post_json(
        &f.app,
        "/v1/models/credit/versions/9/predict",
        key,
        &json!({"record": applicant()}),
    )
    .await;
    assert_eq!(r.json["code"], "version_not_found");
    let r = post_json(
        &f.app,
        "/v1/models/credit/aliases/shadow/predict",
        key,
        &json!({"record": applicant()}),
    )
    .await;
    assert_eq!(r.json["code"], "alias_not_found");
}

#[tokio::test]
async fn oversized_body_is_413_and_unknown_fields_can_be_ignored() {
    let f = fixture_with(|c| {
        c.server.body_limit_bytes = 64 * 1024;
        c.server.unknown_fields = aurum_service::UnknownFields::Ignore;
    })
    .await;
    import_german(&f).await; // ~267 KB: over the limit
    let list = get(&f.app, "/v1/datasets", Some(&f.analyst)).await;
    assert_eq!(list.json["datasets"].as_array().unwrap().len(), 0);
    let big = "x".repeat(100 * 1024);
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &json!({"record": {"a": big}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.json);
    assert_eq!(r.json["code"], "payload_too_large");
    // Small enough dataset to train with the limit, then an extra field is ignored.
    let small: Vec<&str> = std::str::from_utf8(GERMAN)
        .unwrap()
        .lines()
        .take(200)
        .collect();
    let r = call(
        &f.app,
        Method::POST,
        "/v1/datasets?name=german",
        Some(&f.analyst),
        Body::from(small.join("\n")),
        "text/csv",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let job = train(&f, "credit", json!({}), Some("champion")).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let mut extra = applicant();
    extra["favourite_colour"] = "blue".into();
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &json!({"record": extra}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn failures_over_the_limit_are_answered_late_and_a_valid_key_is_not() {
    let f = fixture_with(|c| c.server.auth_failures_per_minute = 2).await;
    let peer = "192.0.2.7:40000";
    // The client key's id with a wrong secret.
    let last = if f.client.ends_with('0') { "1" } else { "0" };
    let wrong = format!("{}{last}", &f.client[..f.client.len() - 1]);
    for _ in 0..2 {
        let t = Instant::now();
        let (status, _) = get_from(&f.app, peer, "/v1/models", &wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(t.elapsed() < OVER_LIMIT_DELAY, "{:?}", t.elapsed());
    }
    let t = Instant::now();
    let (status, headers) = get_from(&f.app, peer, "/v1/models", &wrong).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
    assert!(t.elapsed() >= OVER_LIMIT_DELAY, "{:?}", t.elapsed());
    // The valid key from the same address is answered at once, and other addresses are unaffected.
    let t = Instant::now();
    let (status, _) = get_from(&f.app, peer, "/v1/models", &f.client).await;
    assert_eq!(status, StatusCode::OK);
    assert!(t.elapsed() < OVER_LIMIT_DELAY / 2, "{:?}", t.elapsed());
    let (status, _) = get_from(&f.app, "192.0.2.8:40000", "/v1/models", &wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn authentication_and_roles() {
    let f = trained().await;
    let pred = json!({"record": applicant()});
    // 401 without a key and with a wrong key.
    let r = post_json(&f.app, "/v1/models/credit/predict", None, &pred).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["code"], "unauthenticated");
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some("aurum_xxxxxxxxxxxx_nottherightsecret"),
        &pred,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Health, readiness and metrics are open.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            get(&f.app, path, None).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    assert_eq!(
        get(&f.app, "/openapi.json", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Role matrix: (key, method, path, expected).
    let cases = [
        (&f.client, "GET", "/v1/datasets", StatusCode::FORBIDDEN),
        (&f.client, "GET", "/v1/models/credit", StatusCode::OK),
        (&f.client, "GET", "/v1/audit", StatusCode::FORBIDDEN),
        (&f.client, "GET", "/v1/keys", StatusCode::FORBIDDEN),
        (&f.client, "GET", "/v1/training-jobs", StatusCode::FORBIDDEN),
        (&f.analyst, "GET", "/v1/datasets", StatusCode::OK),
        (&f.analyst, "GET", "/v1/audit", StatusCode::OK),
        (&f.analyst, "GET", "/v1/keys", StatusCode::FORBIDDEN),
        (
            &f.analyst,
            "POST",
            "/v1/models/credit/predict",
            StatusCode::FORBIDDEN,
        ),
        (&f.admin, "GET", "/v1/keys", StatusCode::OK),
        (
            &f.admin,
            "POST",
            "/v1/models/credit/predict",
            StatusCode::OK,
        ),
        (&f.admin, "GET", "/v1/audit", StatusCode::OK),
    ];
    for (key, method, path, expected) in cases {
        let r = if method == "GET" {
            get(&f.app, path, Some(key)).await
        } else {
            post_json(&f.app, path, Some(key), &pred).await
        };
        assert_eq!(r.status, expected, "{method} {path}: {}", r.json);
        if expected == StatusCode::FORBIDDEN {
            assert_eq!(r.json["code"], "forbidden");
        }
    }
    // Revocation takes effect at once.
    let created = post_json(
        &f.app,
        "/v1/keys",
        Some(&f.admin),
        &json!({"name": "temp", "role": "client"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let temp = created.json["key"].as_str().unwrap().to_string();
    assert_eq!(
        post_json(&f.app, "/v1/models/credit/predict", Some(&temp), &pred)
            .await
            .status,
        StatusCode::OK
    );
    let revoke_temp = || {
        call(
            &f.app,
            Method::DELETE,
            "/v1/keys/temp",
            Some(&f.admin),
            Body::empty(),
            "application/json",
        )
    };
    let r = revoke_temp().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        post_json(&f.app, "/v1/models/credit/predict", Some(&temp), &pred)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let listed = get(&f.app, "/v1/keys", Some(&f.admin)).await;
    assert!(
        !listed.json.to_string().contains(&temp),
        "key secrets are never listed"
    );
    // Revoking again answers the same record and records nothing new.
    let revokes = || async {
        f.platform
            .audit_list(aurum_service::types::AuditQuery {
                after_seq: 0,
                limit: 10_000,
                event: Some("key.revoke".into()),
                model: None,
            })
            .await
            .unwrap()
            .len()
    };
    assert_eq!(revokes().await, 1);
    let again = revoke_temp().await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.json);
    assert_eq!(
        again.json["revoked_at"], r.json["revoked_at"],
        "{}",
        again.json
    );
    assert_eq!(revokes().await, 1);
}

#[tokio::test]
async fn alias_move_under_concurrent_requests_fails_nothing() {
    let f = trained().await;
    let job = train(&f, "credit", json!({"penalty": "l1", "lambda": 0.05}), None).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, key, stop, failures, seen) = (
            f.app.clone(),
            f.client.clone(),
            stop.clone(),
            failures.clone(),
            seen.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) || n < 5 {
                let r = post_json(
                    &app,
                    "/v1/models/credit/predict",
                    Some(&key),
                    &json!({"record": applicant()}),
                )
                .await;
                if r.status != StatusCode::OK {
                    failures.fetch_add(1, Ordering::SeqCst);
                } else {
                    let v = r.json["version"].as_u64().unwrap() as usize;
                    seen[v - 1].fetch_add(1, Ordering::SeqCst);
                }
                n += 1;
            }
        }));
    }
    for i in 0..10 {
        let v = if i % 2 == 0 { 2 } else { 1 };
        let r = put_json(
            &f.app,
            "/v1/models/credit/aliases/champion",
            Some(&f.analyst),
            &json!({"version": v}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    assert!(
        seen[0].load(Ordering::SeqCst) > 0 && seen[1].load(Ordering::SeqCst) > 0,
        "both versions answered"
    );
    let history = get(&f.app, "/v1/models/credit/aliases", Some(&f.analyst)).await;
    let moves = history.json["history"].as_array().unwrap();
    assert_eq!(moves.len(), 11, "the initial move plus ten");
    assert_eq!(moves[1]["from_version"], 1);
    assert_eq!(moves[1]["to_version"], 2);
    // An alias of digits would read as a version number (`/versions/2`): refused, nothing moved.
    let r = put_json(
        &f.app,
        "/v1/models/credit/aliases/2",
        Some(&f.analyst),
        &json!({"version": 1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["code"], "invalid_name", "{}", r.json);
    assert_eq!(r.json["details"]["field"], "alias", "{}", r.json);
    let history = get(&f.app, "/v1/models/credit/aliases", Some(&f.analyst)).await;
    assert_eq!(history.json["history"].as_array().unwrap().len(), 11);
}

#[tokio::test]
async fn corrupted_artifact_is_refused_and_never_served() {
    let f = trained().await;
    let job = train(&f, "credit", json!({"lambda": 0.1}), None).await;
    assert_eq!(job["state"], "succeeded");
    // Flip one byte of version 2's stored artifact before anything loaded it.
    let job_id = job["id"].as_str().unwrap().to_owned();
    f.damage_artifact(|key| key.contains(&job_id)).await;
    let r = post_json(
        &f.app,
        "/v1/models/credit/versions/2/predict",
        Some(&f.client),
        &json!({"record": applicant()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.json);
    assert_eq!(r.json["code"], "artifact_corrupt");
    assert!(r.json["message"].as_str().unwrap().contains("integrity"));
    let r = put_json(
        &f.app,
        "/v1/models/credit/aliases/champion",
        Some(&f.analyst),
        &json!({"version": 2}),
    )
    .await;
    assert_eq!(r.json["code"], "artifact_corrupt", "{}", r.json);
    // The champion still answers with version 1.
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &json!({"record": applicant()}),
    )
    .await;
    assert_eq!(r.json["version"], 1);
}

#[tokio::test]
async fn audit_chain_records_predictions_and_verifies() {
    let f = trained().await;
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &json!({"record": applicant()}),
    )
    .await;
    let rid = r.headers["x-request-id"].to_str().unwrap().to_string();
    let audit = get(&f.app, "/v1/audit?event=prediction", Some(&f.analyst)).await;
    let recs = audit.json["records"].as_array().unwrap();
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(rec["actor"], "client");
    assert_eq!(rec["request_id"], rid.as_str());
    assert_eq!(rec["model"], "credit");
    assert_eq!(rec["version"], 1);
    assert_eq!(rec["input_sha256"].as_str().unwrap().len(), 64);
    assert!(rec["details"]["latency_us"].as_u64().is_some());
    assert!(
        !rec.to_string().contains("critical account"),
        "inputs are not stored in clear by default"
    );
    let events: Vec<String> = get(&f.app, "/v1/audit?limit=1000", Some(&f.analyst))
        .await
        .json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"].as_str().unwrap().to_string())
        .collect();
    for e in [
        "key.create",
        "dataset.import",
        "training.submit",
        "model.register",
        "alias.move",
        "training.finish",
        "prediction",
    ] {
        assert!(events.iter().any(|x| x == e), "missing {e} in {events:?}");
    }
    let v = get(&f.app, "/v1/audit/verify", Some(&f.analyst)).await;
    assert_eq!(v.json["ok"], true, "{}", v.json);
}

#[tokio::test]
async fn openapi_document_is_generated_from_the_routes() {
    let f = fixture().await;
    let r = get(&f.app, "/openapi.json", Some(&f.client)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json["openapi"].as_str().unwrap().starts_with("3.1"));
    for p in [
        "/v1/models/{name}/predict",
        "/v1/datasets",
        "/v1/training-jobs/{id}",
        "/v1/models/{name}/aliases/{alias}",
        "/v1/audit/verify",
    ] {
        assert!(
            r.json["paths"].get(p).is_some(),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(r.json["components"]["schemas"].get("ErrorBody").is_some());
    assert!(
        r.json["components"]["schemas"]
            .get("OipErrorBody")
            .is_some()
    );
    // The /v2 routes are described too.
    for p in [
        "/v2",
        "/v2/health/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/repository/index",
    ] {
        assert!(r.json["paths"].get(p).is_some(), "{p} missing");
    }
    // Every operation lists the statuses its shape implies.
    let mut operations = 0;
    for (path, item) in r.json["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let codes = op["responses"].as_object().unwrap();
            let has = |c: &str| codes.contains_key(c);
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let in_path = params.iter().any(|p| p["in"] == "path");
            let body = op.get("requestBody").is_some();
            let at = format!("{method} {path}");
            assert!(has("408") && has("500"), "{at}: {codes:?}");
            assert_eq!(
                secured,
                path != "/healthz" && path != "/readyz" && !path.starts_with("/v2/health"),
                "{at}"
            );
            if secured {
                assert!(has("401") && has("403"), "{at}");
            }
            if in_path {
                assert!(has("400") && has("404"), "{at}");
            }
            if body {
                assert!(has("400") && has("413"), "{at}");
            }
            let error_schema = if path.starts_with("/v2") {
                "OipErrorBody"
            } else {
                "ErrorBody"
            };
            if secured {
                assert_eq!(
                    codes["401"]["content"]["application/json"]["schema"]["$ref"],
                    format!("#/components/schemas/{error_schema}"),
                    "{at}"
                );
            }
        }
    }
    assert!(operations >= 43, "{operations} operations");
}

async fn boom() -> &'static str {
    panic!("boom")
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_500_with_the_request_id() {
    let f = fixture().await;
    let state = aurum_server::AppState::new(f.platform.clone());
    let app = axum::Router::new()
        .route("/boom", axum::routing::get(boom))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            aurum_server::middleware::outer,
        ))
        .with_state(state);
    let r = get(&app, "/boom", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let rid = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(r.json["details"]["request_id"], rid);
    assert!(
        !r.json["message"].as_str().unwrap().contains("boom"),
        "panic text is not shown to the client"
    );
}

#[tokio::test]
async fn unknown_routes_and_cancel_of_finished_job() {
    let f = trained().await;
    let r = get(&f.app, "/v1/nothing", Some(&f.admin)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let jobs = get(&f.app, "/v1/training-jobs", Some(&f.analyst)).await;
    let id = jobs.json["jobs"][0]["id"].as_str().unwrap().to_string();
    let r = post_json(
        &f.app,
        &format!("/v1/training-jobs/{id}/cancel"),
        Some(&f.analyst),
        &json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    let r = get(
        &f.app,
        "/v1/training-jobs/00000000-0000-0000-0000-000000000000",
        Some(&f.analyst),
    )
    .await;
    assert_eq!(r.json["code"], "job_not_found");
}

#[tokio::test]
async fn credit_families_decide_with_reasons_and_serve_their_report() {
    let f = fixture().await;
    import_german(&f).await;
    for (model, kind) in [("card", "scorecard"), ("trees", "gbdt")] {
        let body = json!({"dataset": "german", "target": "creditability", "kind": kind, "model": model,
                          "alias": "champion", "params": {"policy_pd_cutoff": 0.3}});
        let job = train_with(&f, &body).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        let v = get(
            &f.app,
            &format!("/v1/models/{model}/versions/1"),
            Some(&f.client),
        )
        .await;
        let auc = v.json["metrics"]["auc"].as_f64().unwrap();
        assert!(auc > 0.70, "{kind} held-out AUC {auc}");
        // Score many applicants: every decline carries 1..=4 reasons, approvals none.
        let mut rdr = csv::Reader::from_reader(GERMAN);
        let headers = rdr.headers().unwrap().clone();
        let records: Vec<serde_json::Value> = rdr
            .records()
            .take(60)
            .map(|row| {
                let row = row.unwrap();
                let mut o = serde_json::Map::new();
                for (h, v) in headers.iter().zip(row.iter()) {
                    if h != "creditability" {
                        let value = v
                            .parse::<i64>()
                            .map(|i| json!(i))
                            .unwrap_or_else(|_| json!(v));
                        o.insert(h.to_string(), value);
                    }
                }
                serde_json::Value::Object(o)
            })
            .collect();
        let r = post_json(
            &f.app,
            &format!("/v1/models/{model}/predict"),
            Some(&f.client),
            &json!({"records": records}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let mut declines = 0;
        for p in r.json["predictions"].as_array().unwrap() {
            let pd = p["probability"].as_f64().unwrap();
            let reasons = p["reasons"].as_array().unwrap();
            match p["decision"].as_str().unwrap() {
                "decline" => {
                    declines += 1;
                    assert!(pd >= 0.3, "{p}");
                    assert!((1..=4).contains(&reasons.len()), "{p}");
                    let c: Vec<f64> = reasons
                        .iter()
                        .map(|x| x["contribution"].as_f64().unwrap())
                        .collect();
                    assert!(
                        c.windows(2).all(|w| w[0] >= w[1]) && c[0] > 0.0,
                        "most adverse first: {p}"
                    );
                    assert!(!reasons[0]["text"].as_str().unwrap().is_empty());
                }
                "approve" => {
                    assert!(pd < 0.3, "{p}");
                    assert!(reasons.is_empty(), "{p}");
                }
                other => panic!("unexpected decision {other}"),
            }
            if kind == "scorecard" {
                assert!(p["score"].as_f64().is_some(), "scorecards give points: {p}");
            }
        }
        assert!(
            declines > 0,
            "{kind}: some of 60 applicants are declined at PD >= 0.3"
        );
        // The prediction's audit record carries the decisions and reasons.
        let audit = get(
            &f.app,
            &format!("/v1/audit?event=prediction&model={model}"),
            Some(&f.analyst),
        )
        .await;
        let outputs = &audit.json["records"][0]["details"]["outputs"];
        assert!(outputs.as_array().unwrap().iter().any(|o| o["decision"] == "decline" && !o["reasons"].as_array().unwrap().is_empty()), "{outputs}");
        // The report, as JSON and HTML.
        let rep = get(
            &f.app,
            &format!("/v1/models/{model}/versions/1/report"),
            Some(&f.client),
        )
        .await;
        assert_eq!(rep.status, StatusCode::OK, "{}", rep.json);
        assert_eq!(rep.json["model"]["kind"], kind);
        assert!(
            (rep.json["metrics"]["auc"].as_f64().unwrap() - auc).abs() < 1e-9,
            "report and registry agree"
        );
        for key in [
            "calibration",
            "lift_gains",
            "roc_curve",
            "ks_curve",
            "confusion_matrix",
            "stability",
        ] {
            assert!(rep.json.get(key).is_some(), "{key} missing");
        }
        let html = call(
            &f.app,
            Method::GET,
            &format!("/v1/models/{model}/versions/1/report?format=html"),
            Some(&f.client),
            Body::empty(),
            "text/html",
        )
        .await;
        assert_eq!(html.status, StatusCode::OK);
        let page = html.json.as_str().unwrap();
        assert_eq!(
            page.matches("<svg").count(),
            4,
            "ROC, KS, score distributions, calibration"
        );
    }
    let r = get(
        &f.app,
        "/v1/models/card/versions/1/report?format=pdf",
        Some(&f.client),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn imported_lightgbm_model_serves_the_library_probabilities() {
    let f = fixture().await;
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aurum-trees/tests/fixtures/"
    );
    let model = std::fs::read(format!("{dir}lgb_binary.txt")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{dir}lgb_binary.expected.json")).unwrap())
            .unwrap();
    let r = call(
        &f.app,
        Method::POST,
        "/v1/models/lgb/import?format=lightgbm&alias=champion",
        Some(&f.analyst),
        Body::from(model.clone()),
        "application/octet-stream",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["kind"], "lightgbm");
    assert_eq!(
        r.json["lineage"]["dataset_sha256"],
        aurum_service::types::sha256_hex(&model)
    );
    let names: Vec<String> = expected["feature_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let records: Vec<serde_json::Value> = expected["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            serde_json::Value::Object(
                names
                    .iter()
                    .cloned()
                    .zip(row.as_array().unwrap().iter().cloned())
                    .collect(),
            )
        })
        .collect();
    let r = post_json(
        &f.app,
        "/v1/models/lgb/predict",
        Some(&f.client),
        &json!({"records": records}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    for (p, want) in r.json["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected["predict"].as_array().unwrap())
    {
        assert!((p["probability"].as_f64().unwrap() - want.as_f64().unwrap()).abs() <= 1e-6);
    }
    let bad = call(
        &f.app,
        Method::POST,
        "/v1/models/lgb/import?format=lightgbm",
        Some(&f.analyst),
        Body::from("not a model"),
        "application/octet-stream",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.json);
    let bad = call(
        &f.app,
        Method::POST,
        "/v1/models/lgb/import?format=pmml",
        Some(&f.analyst),
        Body::from("x"),
        "application/octet-stream",
    )
    .await;
    assert_eq!(bad.json["details"]["field"], "format");
    // ONNX is a format now: garbage bytes are a 400, not a model.
    let bad = call(
        &f.app,
        Method::POST,
        "/v1/models/lgb/import?format=onnx",
        Some(&f.analyst),
        Body::from("x"),
        "application/octet-stream",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.json);
}

fn airline() -> (Vec<String>, Vec<f64>) {
    let text = include_str!("../../../../data/timeseries/airline_passengers.csv");
    let mut ts = Vec::new();
    let mut vs = Vec::new();
    for line in text.lines().skip(1) {
        let (t, v) = line.split_once(',').unwrap();
        let t = t.trim_matches('"');
        ts.push(if t.len() == 7 {
            format!("{t}-01")
        } else {
            t.to_string()
        });
        vs.push(v.trim().parse::<f64>().unwrap());
    }
    (ts, vs)
}

#[tokio::test]
async fn one_shot_forecast_decomposition_and_registered_forecasting_models() {
    let f = fixture().await;
    let (ts, vs) = airline();
    let body = json!({"series": {"timestamps": ts, "values": vs}, "horizon": 12, "model": "auto_arima", "transform": "log"});
    let r = post_json(&f.app, "/v1/forecast", Some(&f.client), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(
        r.json["model"]
            .as_str()
            .unwrap()
            .contains("(0,1,1)(0,1,1)[12]"),
        "{}",
        r.json["model"]
    );
    assert_eq!(r.json["frequency"], "monthly");
    assert_eq!(r.json["timestamps"][0], "1961-01-01");
    assert_eq!(r.json["mean"].as_array().unwrap().len(), 12);
    let ivs = r.json["intervals"].as_array().unwrap();
    assert_eq!(ivs.len(), 2);
    #[allow(clippy::needless_range_loop)]
    for i in 0..12 {
        let m = r.json["mean"][i].as_f64().unwrap();
        let (l80, u80) = (
            ivs[0]["lower"][i].as_f64().unwrap(),
            ivs[0]["upper"][i].as_f64().unwrap(),
        );
        let (l95, u95) = (
            ivs[1]["lower"][i].as_f64().unwrap(),
            ivs[1]["upper"][i].as_f64().unwrap(),
        );
        assert!(
            l95 < l80 && l80 < m && m < u80 && u80 < u95,
            "nested intervals at step {i}"
        );
    }
    // auto selects by backtest and reports the candidates.
    let auto = post_json(
        &f.app,
        "/v1/forecast",
        Some(&f.client),
        &json!({"series": {"timestamps": ts, "values": vs}, "horizon": 6}),
    )
    .await;
    assert_eq!(auto.status, StatusCode::OK, "{}", auto.json);
    assert!(auto.json["candidates"].as_array().unwrap().len() >= 3);
    // Bad input gets a 4xx naming the problem.
    let mut unordered = ts.clone();
    unordered.swap(10, 11);
    let mut missing = serde_json::to_value(&vs).unwrap();
    missing[5] = serde_json::Value::Null;
    let cases = [
        (
            json!({"series": {"timestamps": ts, "values": vs}, "horizon": 0}),
            "invalid_field",
            "horizon",
        ),
        (
            json!({"series": {"timestamps": unordered, "values": vs}, "horizon": 3}),
            "forecast_non_monotonic_timestamps",
            "",
        ),
        (
            json!({"series": {"timestamps": ts, "values": missing}, "horizon": 3}),
            "forecast_missing_value",
            "",
        ),
        (
            json!({"series": {"timestamps": ts[..10].to_vec(), "values": vs[..10].to_vec()}, "horizon": 3, "model": "seasonal_naive", "season_period": 12}),
            "forecast_too_few_points",
            "",
        ),
    ];
    // The neural forecasters (aurum-nn) are reached by name, with their own options, and
    // refuse a bad option by name.
    let lstm = post_json(
        &f.app,
        "/v1/forecast",
        Some(&f.client),
        &json!({"series": {"timestamps": ts, "values": vs}, "horizon": 12,
                "model": "lstm:hidden=8,epochs=30,seed=1", "transform": "log"}),
    )
    .await;
    assert_eq!(lstm.status, StatusCode::OK, "{}", lstm.json);
    assert_eq!(lstm.json["mean"].as_array().unwrap().len(), 12);
    assert!(
        lstm.json["model"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("lstm"),
        "{}",
        lstm.json
    );
    let bad = post_json(
        &f.app,
        "/v1/forecast",
        Some(&f.client),
        &json!({"series": {"timestamps": ts, "values": vs}, "horizon": 12, "model": "gru:hidden=0"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.json);
    assert!(
        bad.json["message"].as_str().unwrap().contains("hidden"),
        "{}",
        bad.json
    );
    for (body, code, field) in cases {
        let r = post_json(&f.app, "/v1/forecast", Some(&f.client), &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{code}: {}", r.json);
        assert_eq!(r.json["code"], code, "{}", r.json);
        if !field.is_empty() {
            assert_eq!(r.json["details"]["field"], field);
        }
    }
    // With a fill policy, the missing value is filled and reported.
    let filled = post_json(&f.app, "/v1/forecast", Some(&f.client), &json!({"series": {"timestamps": ts, "values": missing}, "horizon": 3, "model": "naive", "fill": "linear"})).await;
    assert_eq!(filled.status, StatusCode::OK, "{}", filled.json);
    assert_eq!(filled.json["filled_points"], 1);
    // Rolling-origin backtest of several models.
    let bt = post_json(&f.app, "/v1/backtest", Some(&f.client), &json!({"series": {"timestamps": ts, "values": vs}, "horizon": 12, "windows": 3, "models": ["seasonal_naive", "auto_arima"], "transform": "log"})).await;
    assert_eq!(bt.status, StatusCode::OK, "{}", bt.json);
    let res = bt.json["results"].as_array().unwrap();
    assert_eq!(res.len(), 2);
    assert_eq!(res[0]["windows"], 3);
    let (snaive, arima) = (
        res[0]["mase"].as_f64().unwrap(),
        res[1]["mase"].as_f64().unwrap(),
    );
    assert!(
        arima < snaive,
        "auto-ARIMA beats seasonal naive on airline: {arima} vs {snaive}"
    );
    assert_eq!(res[1]["coverage"].as_array().unwrap().len(), 2);
    // Prices to log returns for market series.
    let rets = post_json(&f.app, "/v1/forecast", Some(&f.client), &json!({"series": {"timestamps": ts, "values": vs}, "horizon": 3, "model": "mean", "returns": "log"})).await;
    assert_eq!(rets.status, StatusCode::OK, "{}", rets.json);
    assert!(
        rets.json["mean"][0].as_f64().unwrap().abs() < 0.1,
        "a mean log return, not a price: {}",
        rets.json["mean"]
    );
    // Decomposition.
    let d = post_json(
        &f.app,
        "/v1/decompose",
        Some(&f.client),
        &json!({"series": {"timestamps": ts, "values": vs}}),
    )
    .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.json);
    assert_eq!(d.json["periods"], json!([12]));
    let i = 40;
    let sum = d.json["trend"][i].as_f64().unwrap()
        + d.json["seasonal"][0][i].as_f64().unwrap()
        + d.json["remainder"][i].as_f64().unwrap();
    assert!(
        (sum - vs[i]).abs() < 1e-6,
        "trend + seasonal + remainder = series"
    );
    // A registered forecasting model: fitted on an imported dataset, forecast with new observations.
    let csv = std::iter::once("month,passengers".to_string())
        .chain(
            ts.iter()
                .zip(&vs)
                .take(132)
                .map(|(t, v)| format!("{t},{v}")),
        )
        .collect::<Vec<_>>()
        .join("\n");
    let r = call(
        &f.app,
        Method::POST,
        "/v1/datasets?name=air",
        Some(&f.analyst),
        Body::from(csv),
        "text/csv",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let r = post_json(&f.app, "/v1/forecast-models", Some(&f.analyst), &json!({"name": "air", "model": "auto_arima", "dataset": "air", "date_column": "month", "value_column": "passengers", "horizon": 12, "transform": "log", "alias": "champion"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["version"], 1);
    let base = post_json(
        &f.app,
        "/v1/models/air/forecast",
        Some(&f.client),
        &json!({"horizon": 12}),
    )
    .await;
    assert_eq!(base.status, StatusCode::OK, "{}", base.json);
    assert_eq!(base.json["timestamps"][0], "1960-01-01");
    let updated = post_json(
        &f.app,
        "/v1/models/air/forecast",
        Some(&f.client),
        &json!({"horizon": 6, "new_observations": vs[132..].to_vec()}),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.json);
    assert_eq!(
        updated.json["timestamps"][0], "1961-01-01",
        "the state moved past the new observations"
    );
    let bad = post_json(
        &f.app,
        "/v1/models/air/forecast",
        Some(&f.client),
        &json!({"horizon": -1}),
    )
    .await;
    assert_eq!(bad.json["details"]["field"], "horizon");
    // An observation too large to fit is named where the caller sent it.
    let huge = post_json(
        &f.app,
        "/v1/models/air/forecast",
        Some(&f.client),
        &json!({"horizon": 3, "new_observations": [500.0, 1e101]}),
    )
    .await;
    assert_eq!(huge.status, StatusCode::BAD_REQUEST, "{}", huge.json);
    assert_eq!(
        huge.json["code"], "forecast_value_too_large",
        "{}",
        huge.json
    );
    assert_eq!(
        huge.json["details"]["field"], "new_observations[1]",
        "{}",
        huge.json
    );
    let wrong = post_json(
        &f.app,
        "/v1/models/air/predict",
        Some(&f.client),
        &json!({"record": {}}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.json);
    assert_eq!(wrong.json["code"], "wrong_model_kind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamic_batching_answers_each_caller_exactly() {
    let f = fixture_with(|c| {
        c.batching.models = vec!["credit".into()];
        c.batching.max_queue_delay_us = 20_000;
    })
    .await;
    import_german(&f).await;
    let job = train(&f, "credit", json!({}), Some("champion")).await;
    assert_eq!(job["state"], "succeeded");
    let mut rdr = csv::Reader::from_reader(GERMAN);
    let headers = rdr.headers().unwrap().clone();
    let records: Vec<serde_json::Value> = rdr
        .records()
        .take(24)
        .map(|row| {
            let row = row.unwrap();
            serde_json::Value::Object(
                headers
                    .iter()
                    .zip(row.iter())
                    .filter(|(h, _)| *h != "creditability")
                    .map(|(h, v)| {
                        (
                            h.to_string(),
                            v.parse::<i64>()
                                .map(|i| json!(i))
                                .unwrap_or_else(|_| json!(v)),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    // The unbatched answer for all 24 in one call.
    let whole = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &json!({"records": records}),
    )
    .await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.json);
    // 24 concurrent single-record calls, coalesced by the batcher.
    let mut tasks = Vec::new();
    for r in &records {
        let r = r.clone();
        let (app, key) = (f.app.clone(), f.client.clone());
        tasks.push(tokio::spawn(async move {
            post_json(
                &app,
                "/v1/models/credit/predict",
                Some(&key),
                &json!({"record": r}),
            )
            .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        assert_eq!(
            r.json["predictions"][0]["probability"], whole.json["predictions"][i]["probability"],
            "call {i} got its own answer"
        );
    }
    let metrics = get(&f.app, "/metrics", None).await;
    assert!(
        metrics
            .json
            .as_str()
            .unwrap()
            .contains("aurum_dynamic_batch_rows"),
        "batches were formed"
    );
}

#[tokio::test]
async fn a_declared_date_column_makes_the_held_out_split_time_ordered() {
    let f = fixture().await;
    // German credit with an application date: row i applied on day i.
    let text = std::str::from_utf8(GERMAN).unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    let dated: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                format!("application_date,{line}")
            } else {
                format!("{},{line}", start + chrono::Days::new(i as u64))
            }
        })
        .collect();
    let r = call(
        &f.app,
        Method::POST,
        "/v1/datasets?name=dated",
        Some(&f.analyst),
        Body::from(dated.join("\n")),
        "text/csv",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let body = json!({"dataset": "dated", "target": "creditability", "kind": "scorecard", "model": "dated", "date_column": "application_date"});
    let job = train_with(&f, &body).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let rep = get(
        &f.app,
        "/v1/models/dated/versions/1/report",
        Some(&f.client),
    )
    .await;
    assert_eq!(
        rep.json["split"]["method"], "time_ordered",
        "{}",
        rep.json["split"]
    );
    assert_eq!(rep.json["split"]["seed"], serde_json::Value::Null);
    let v = get(&f.app, "/v1/models/dated/versions/1", Some(&f.client)).await;
    let schema: Vec<&str> = v.json["input_schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        !schema.contains(&"application_date"),
        "the date column is not a feature"
    );
    let mut bad = body.clone();
    bad["date_column"] = "purpose".into();
    let r = post_json(&f.app, "/v1/training-jobs", Some(&f.analyst), &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["details"]["field"], "date_column");
}

/// Every rejection outside a handler (unknown route, wrong method, bad query string, bad path
/// parameter) has the documented JSON body with a stable code naming the problem.
#[tokio::test]
async fn transport_rejections_have_the_documented_error_shape() {
    let f = fixture().await;
    let shape = |r: &Resp, status: StatusCode, code: &str, field: Option<&str>| {
        assert_eq!(r.status, status, "{}", r.json);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{:?}",
            r.headers
        );
        assert_eq!(r.json["code"], code, "{}", r.json);
        assert!(r.json["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(r.json["type"].is_string(), "{}", r.json);
        assert_eq!(r.json["details"]["field"].as_str(), field, "{}", r.json);
    };
    // Unknown routes.
    let r = get(&f.app, "/v1/nothing", Some(&f.admin)).await;
    shape(&r, StatusCode::NOT_FOUND, "route_not_found", None);
    let r = get(&f.app, "/nothing", None).await;
    shape(&r, StatusCode::NOT_FOUND, "route_not_found", None);
    // A route that exists, with the wrong method: 405 with `Allow`.
    let r = call(
        &f.app,
        Method::DELETE,
        "/v1/datasets",
        Some(&f.admin),
        Body::empty(),
        "application/json",
    )
    .await;
    shape(
        &r,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        None,
    );
    let allow = r.headers["allow"].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let r = call(
        &f.app,
        Method::PUT,
        "/healthz",
        None,
        Body::empty(),
        "application/json",
    )
    .await;
    shape(
        &r,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        None,
    );
    // Query strings: a value of the wrong type, and a required parameter missing.
    let r = get(&f.app, "/v1/audit?limit=lots", Some(&f.admin)).await;
    shape(&r, StatusCode::BAD_REQUEST, "invalid_query", Some("limit"));
    let r = get(&f.app, "/v1/training-jobs?limit=-1", Some(&f.admin)).await;
    shape(&r, StatusCode::BAD_REQUEST, "invalid_query", Some("limit"));
    // Out of range is refused, not clamped (a batch-job list of `limit=0` once gave one job).
    for uri in [
        "/v1/training-jobs?limit=0",
        "/v1/batch-jobs?limit=0",
        "/v1/batch-jobs?limit=1001",
    ] {
        let r = get(&f.app, uri, Some(&f.admin)).await;
        shape(&r, StatusCode::BAD_REQUEST, "invalid_query", Some("limit"));
    }
    let r = call(
        &f.app,
        Method::POST,
        "/v1/models/m/import",
        Some(&f.admin),
        Body::from("x"),
        "application/octet-stream",
    )
    .await;
    shape(&r, StatusCode::BAD_REQUEST, "invalid_query", Some("format"));
    // Endpoints without query parameters refuse one instead of ignoring it.
    for uri in [
        "/v1/models?bogus=1",
        "/v1/datasets?limt=5",
        "/v1/keys?bogus",
        "/v1/audit/verify?full=true",
        "/v1/models/m/versions?bogus=1",
    ] {
        let r = get(&f.app, uri, Some(&f.admin)).await;
        let name = uri.split('?').nth(1).unwrap().split('=').next().unwrap();
        shape(&r, StatusCode::BAD_REQUEST, "invalid_query", Some(name));
    }
    let r = get(&f.app, "/v1/models?bogus=1", None).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "auth comes first: {}",
        r.json
    );
    // A path parameter that is not UTF-8 once decoded.
    let r = get(&f.app, "/v1/datasets/%FF%FE", Some(&f.admin)).await;
    shape(&r, StatusCode::BAD_REQUEST, "invalid_path", Some("name"));
    // JSON bodies: the shape error names the field.
    let r = put_json(
        &f.app,
        "/v1/models/m/aliases/champion",
        Some(&f.admin),
        &json!({"version": "one"}),
    )
    .await;
    shape(
        &r,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("version"),
    );
    let r = post_json(
        &f.app,
        "/v1/keys",
        Some(&f.admin),
        &json!({"role": "client"}),
    )
    .await;
    shape(&r, StatusCode::BAD_REQUEST, "missing_field", Some("name"));
}

/// Duplicate keys anywhere in a JSON body are refused with the path of the repeat, and a
/// predict body's unknown top-level fields follow `server.unknown_fields`.
#[tokio::test]
async fn duplicate_keys_and_unknown_predict_fields_are_400() {
    let f = trained().await;
    let rec = applicant().to_string();
    let first_key = applicant()
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let send = |body: String| {
        let app = f.app.clone();
        let key = f.client.clone();
        async move {
            call(
                &app,
                Method::POST,
                "/v1/models/credit/predict",
                Some(&key),
                Body::from(body),
                "application/json",
            )
            .await
        }
    };
    // Sanity: the record as sent is fine.
    let ok = send(format!(r#"{{"records": [{rec}]}}"#)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    // A repeated feature inside a record.
    let inner = rec.trim_end_matches('}');
    let dup = format!(r#"{{"records": [{rec}, {inner}, "{first_key}": 99}}]}}"#);
    let r = send(dup).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["code"], "duplicate_key", "{}", r.json);
    assert_eq!(
        r.json["details"]["field"],
        format!("records[1].{first_key}"),
        "{}",
        r.json
    );
    // A repeated top-level field.
    let r = send(format!(
        r#"{{"explain": false, "records": [{rec}], "explain": true}}"#
    ))
    .await;
    assert_eq!(r.json["code"], "duplicate_key", "{}", r.json);
    assert_eq!(r.json["details"]["field"], "explain");
    // Other JSON bodies too.
    let r = call(
        &f.app,
        Method::POST,
        "/v1/keys",
        Some(&f.admin),
        Body::from(r#"{"name": "a", "role": "client", "name": "b"}"#),
        "application/json",
    )
    .await;
    assert_eq!(r.json["code"], "duplicate_key", "{}", r.json);
    // A body that is not an object says so, without the server's type names.
    for (body, got) in [("[]", "an array"), ("null", "null"), ("3", "a number")] {
        let r = call(
            &f.app,
            Method::PUT,
            "/v1/models/credit/aliases/x",
            Some(&f.admin),
            Body::from(body),
            "application/json",
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
        let text = r.json["message"].as_str().unwrap();
        assert!(
            text.ends_with(&format!("must be a JSON object, not {got}")),
            "{text}"
        );
        assert!(!text.contains("AliasIn"), "{text}");
    }
    // An array is not read as a struct by position: `["name", "role"]` once created a key.
    let r = call(
        &f.app,
        Method::POST,
        "/v1/keys",
        Some(&f.admin),
        Body::from(r#"["from-an-array", "client"]"#),
        "application/json",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .ends_with("must be a JSON object, not an array"),
        "{}",
        r.json
    );
    let keys = call(
        &f.app,
        Method::GET,
        "/v1/keys",
        Some(&f.admin),
        Body::empty(),
        "",
    )
    .await;
    assert!(
        !keys.json.to_string().contains("from-an-array"),
        "{}",
        keys.json
    );
    let r = call(
        &f.app,
        Method::PUT,
        "/v1/models/credit/aliases/x",
        Some(&f.admin),
        Body::from("[1]"),
        "application/json",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    // Numbers of the wrong range are described in JSON terms, not Rust's.
    let r = call(
        &f.app,
        Method::PUT,
        "/v1/models/credit/aliases/x",
        Some(&f.admin),
        Body::from(r#"{"version": -1}"#),
        "application/json",
    )
    .await;
    assert_eq!(r.json["code"], "invalid_field", "{}", r.json);
    assert_eq!(r.json["details"]["field"], "version", "{}", r.json);
    let text = r.json["message"].as_str().unwrap();
    assert!(
        text.contains("a non-negative integer") && !text.contains("u32"),
        "{text}"
    );
    // An unknown field elsewhere is named once (it once read `foo.foo`).
    let r = call(
        &f.app,
        Method::POST,
        "/v1/keys",
        Some(&f.admin),
        Body::from(r#"{"name": "a", "role": "client", "foo": 2}"#),
        "application/json",
    )
    .await;
    assert_eq!(r.json["code"], "unknown_field", "{}", r.json);
    assert_eq!(r.json["details"]["field"], "foo", "{}", r.json);
    // A caller's key is named as sent, even one that reads like serde's type phrase.
    let r = call(
        &f.app,
        Method::POST,
        "/v1/keys",
        Some(&f.admin),
        Body::from(r#"{"name": "a", "role": "client", "construct x": 1}"#),
        "application/json",
    )
    .await;
    assert_eq!(r.json["details"]["field"], "construct x", "{}", r.json);
    // Unknown top-level predict fields are refused by default...
    let r = send(format!(r#"{{"records": [{rec}], "explian": true}}"#)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["code"], "unknown_field");
    assert_eq!(r.json["details"]["field"], "explian");
    // ...and ignored when the server is configured to ignore unknown fields.
    let g = fixture_with(|c| c.server.unknown_fields = aurum_service::UnknownFields::Ignore).await;
    assert_eq!(import_german(&g).await.status, StatusCode::CREATED);
    let job = train(&g, "credit", json!({}), Some("champion")).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let r = post_json(
        &g.app,
        "/v1/models/credit/predict",
        Some(&g.client),
        &json!({"records": [applicant()], "explian": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

/// A caller without the permission gets 403 before anything about the request is checked:
/// every mutating route, with a key whose role lacks it and an invalid body, path and query.
#[tokio::test]
async fn permission_is_checked_before_the_request_is_validated() {
    let f = fixture().await;
    let bad = "{not json";
    let routes: &[(Method, &str, &str)] = &[
        (Method::POST, "/v1/datasets?types=nonsense", "client"),
        (Method::POST, "/v1/training-jobs", "client"),
        (Method::POST, "/v1/training-jobs/nope/cancel", "client"),
        (Method::POST, "/v1/models/m/import?threshold=x", "client"),
        (Method::POST, "/v1/forecast-models", "client"),
        (Method::POST, "/v1/models/m/versions/zero/archive", "client"),
        (Method::PUT, "/v1/models/m/aliases/champion", "client"),
        (Method::POST, "/v1/keys", "client"),
        (Method::POST, "/v1/keys", "analyst"),
        (Method::DELETE, "/v1/keys/%FF", "analyst"),
        (Method::GET, "/v1/audit?limit=x", "client"),
        (Method::POST, "/v1/models/m/predict", "analyst"),
        (
            Method::POST,
            "/v1/models/m/versions/zero/predict",
            "analyst",
        ),
        (Method::POST, "/v1/models/m/aliases/a/predict", "analyst"),
        (Method::POST, "/v1/models/m/forecast", "analyst"),
        (Method::POST, "/v1/forecast", "analyst"),
        (Method::POST, "/v1/decompose", "analyst"),
        (Method::POST, "/v1/backtest", "analyst"),
    ];
    for (method, uri, role) in routes {
        let key = if *role == "client" {
            &f.client
        } else {
            &f.analyst
        };
        let r = call(
            &f.app,
            method.clone(),
            uri,
            Some(key),
            Body::from(bad),
            "application/json",
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {uri}: {}",
            r.json
        );
        assert_eq!(r.json["code"], "forbidden", "{method} {uri}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_change_cut_off_by_a_timeout_still_has_its_audit_record() {
    use aurum_service::{CallContext, Role};
    let f = trained().await;
    let job = train(&f, "credit", json!({"penalty": "l1", "lambda": 0.02}), None).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let ctx = CallContext::cli();
    // Cut alias moves and key creations off at many points, from before their first await to
    // after their end, as a request timeout or a dropped connection would.
    for i in 0..40u64 {
        let target = if i % 2 == 0 { 2 } else { 1 };
        let cutoff = Duration::from_micros(i * 150);
        let _ = tokio::time::timeout(
            cutoff,
            f.platform.set_alias(&ctx, "credit", "challenger", target),
        )
        .await;
        let _ = tokio::time::timeout(
            cutoff,
            f.platform
                .create_key(&ctx, &format!("cut-{i}"), Role::Client),
        )
        .await;
    }
    // Work that outlived its caller finishes on its own; wait for it (bounded), then every
    // change must have its record. Without detached state changes the counts never meet.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (moves, audited_moves, keys, audited_keys) = change_and_audit_counts(&f).await;
        let done = moves == audited_moves && keys == audited_keys;
        if done || std::time::Instant::now() > deadline {
            assert!(moves > 0);
            assert_eq!(
                moves, audited_moves,
                "every alias move has its audit record"
            );
            assert_eq!(keys, audited_keys, "every created key has its audit record");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(f.platform.audit_verify().await.unwrap().ok);
}

/// `(alias moves of challenger, their audit records, keys named cut-*, their audit records)`.
async fn change_and_audit_counts(f: &Fixture) -> (usize, usize, usize, usize) {
    use aurum_service::types::AuditQuery;
    let moves = f
        .platform
        .alias_history("credit")
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.alias == "challenger")
        .count();
    let audit = f
        .platform
        .audit_list(AuditQuery {
            after_seq: 0,
            limit: 10_000,
            event: None,
            model: None,
        })
        .await
        .unwrap();
    let audited_moves = audit
        .iter()
        .filter(|r| r.event == "alias.move" && r.details["alias"] == "challenger")
        .count();
    let keys = f
        .platform
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.name.starts_with("cut-"))
        .count();
    let audited_keys = audit
        .iter()
        .filter(|r| {
            r.event == "key.create"
                && r.details["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("cut-"))
        })
        .count();
    (moves, audited_moves, keys, audited_keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_stops_when_its_caller_stops_waiting() {
    use aurum_service::{CallContext, ModelRef, PredictOptions, UnknownFields};
    let f = fixture().await;
    assert_eq!(import_german(&f).await.status, StatusCode::CREATED);
    // GBDT explanations (TreeSHAP on every row) make a 10 000-row request take a while.
    let job = train_with(
        &f,
        &json!({"dataset": "german", "target": "creditability", "kind": "gbdt",
                "model": "trees", "params": {"n_estimators": 300}}),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let model = f
        .platform
        .resolve(&ModelRef::version("trees", 1))
        .await
        .unwrap();
    let records: Vec<serde_json::Value> = (0..10_000).map(|_| applicant()).collect();
    let rows = aurum_server::routes::predict::records_to_rows(
        &model,
        &records,
        "records",
        false,
        UnknownFields::Reject,
        &[],
    )
    .unwrap();
    // Measure how long the whole request takes when nobody gives up...
    let started = std::time::Instant::now();
    let full = f
        .platform
        .predict(
            &CallContext::cli(),
            model.clone(),
            rows.clone(),
            PredictOptions {
                explain: true,
                started: None,
            },
        )
        .await
        .unwrap();
    let full_time = started.elapsed();
    assert_eq!(full.records.len(), 10_000);
    let before = model.rows_scored.load(std::sync::atomic::Ordering::Relaxed);
    // ...then cut the same request off early, as a request timeout does.
    let cut = tokio::time::timeout(
        full_time / 10,
        f.platform.predict(
            &CallContext::cli(),
            model.clone(),
            rows,
            PredictOptions {
                explain: true,
                started: None,
            },
        ),
    )
    .await;
    assert!(cut.is_err(), "the call was cut off");
    // Give abandoned work more than the full run's time to show itself.
    tokio::time::sleep(full_time + Duration::from_millis(200)).await;
    let scored = model.rows_scored.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(
        scored < 10_000,
        "scoring went on after its caller left: {scored} of 10000 rows in {full_time:?}"
    );
}
