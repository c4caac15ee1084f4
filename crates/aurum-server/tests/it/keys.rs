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

/// Two replicas on one Redis (`registry.limits_url`): a key's rate and a client's failed
/// authentications are limited once for both, not once per replica.
#[tokio::test]
async fn a_key_rate_and_the_failure_limit_hold_across_replicas() {
    let Some(redis) = std::env::var("AURUM_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "skipped a_key_rate_and_the_failure_limit_hold_across_replicas: AURUM_TEST_REDIS_URL not set"
        );
        return;
    };
    let prefix = format!("aurum-it:{}:limits", uuid::Uuid::new_v4().simple());
    let f = fixture_with(|c| {
        c.registry.limits_url = Some(redis.clone());
        c.registry.limits_prefix = prefix.clone();
        c.server.auth_failures_per_minute = 20;
    })
    .await;
    let r = create_key(
        &f,
        json!({"name": "metered", "role": "client", "rate_limit_per_s": 4}),
    )
    .await;
    let key = r.json["key"].as_str().unwrap().to_string();
    let r = create_key(
        &f,
        json!({"name": "busy", "role": "client", "rate_limit_per_s": 200}),
    )
    .await;
    let busy = r.json["key"].as_str().unwrap().to_string();
    // The second replica opens after the keys exist, so it knows them from the start.
    let other = aurum_backends::open_platform(f.config.clone())
        .await
        .unwrap();
    let other_app = aurum_server::router(aurum_server::AppState::new(other));
    let replicas = [&f.app, &other_app];

    // Eight requests, alternately on each replica: a bucket of 4 per replica would pass all
    // eight; the shared one passes 4, plus what refilled meanwhile (4 a second).
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(get(replicas[i % 2], "/v1/models", Some(&key)).await.status);
    }
    let refilled = (started.elapsed().as_secs_f64() * 4.0).floor() as usize;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(
        (4..=4 + refilled).contains(&ok),
        "{statuses:?} (refilled {refilled})"
    );
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );

    // A key limited to 200 a second takes leases of 2 from the shared bucket: 300 requests
    // alternately on both replicas pass the bucket's 200, plus the refill, plus at most one
    // lease per replica; a bucket per replica would pass all 300.
    let started = std::time::Instant::now();
    let mut ok = 0;
    for i in 0..300 {
        let status = get(replicas[i % 2], "/v1/models", Some(&busy)).await.status;
        assert!(
            status == StatusCode::OK || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        ok += usize::from(status == StatusCode::OK);
    }
    let refilled = (started.elapsed().as_secs_f64() * 200.0).ceil() as usize;
    let lease = aurum_service::lease_size(200) as usize;
    assert!(
        (200 - 2 * lease..=200 + refilled + 2 * lease).contains(&ok),
        "{ok} of 300 passed (refilled {refilled})"
    );

    // Failed authentications from one address, alternately on each replica, until one is
    // refused: the limit is 20 for both together (each replica adds its failures to the shared
    // count in batches of 2), not 20 each; then both replicas refuse the address.
    let peer = "192.0.2.9:40000";
    let last = if f.client.ends_with('0') { "1" } else { "0" };
    let wrong = format!("{}{last}", &f.client[..f.client.len() - 1]);
    let mut unauthorized = 0;
    loop {
        let (status, _) = get_from(replicas[unauthorized % 2], peer, "/v1/models", &wrong).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED, "failure {unauthorized}");
        unauthorized += 1;
        assert!(unauthorized <= 40, "never refused");
    }
    let batch = aurum_service::failure_batch(20) as usize;
    assert_eq!(batch, 2);
    assert!(
        (20..=20 + 2 * (batch - 1)).contains(&unauthorized),
        "{unauthorized} failures before the first refusal"
    );
    for app in replicas {
        let (status, headers) = get_from(app, peer, "/v1/models", &wrong).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(headers.contains_key("retry-after"));
    }
    // Sixty-four failures at once from another address on one replica: this replica counts the
    // ones on their way to Redis, so no more than the limit are answered 401.
    let flood = "192.0.2.12:40000";
    let statuses = futures_util::future::join_all(
        (0..64).map(|_| get_from(&f.app, flood, "/v1/models", &wrong)),
    )
    .await;
    let passed = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        (1..=20).contains(&passed)
            && statuses
                .iter()
                .all(|(s, _)| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{passed} of 64 concurrent failures answered 401"
    );
    // Another address has its own count; a valid key from the limited one still works.
    let (status, _) = get_from(&other_app, "192.0.2.10:40000", "/v1/models", &wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get_from(&other_app, peer, "/v1/models", &f.client).await;
    assert_eq!(status, StatusCode::OK);
}

/// With `registry.limits_url` on a Redis that stops answering, limits fall back to each
/// process's own instead of refusing every caller.
#[tokio::test]
async fn limits_fall_back_to_the_process_when_the_shared_store_is_gone() {
    // A port that answered nothing at connect would refuse to start: start on a live Redis
    // server of our own, then stop it.
    let Some(mut redis) = ScratchRedis::start() else {
        eprintln!(
            "skipped limits_fall_back_to_the_process_when_the_shared_store_is_gone: no redis-server"
        );
        return;
    };
    let url = redis.url();
    let f = fixture_with(|c| {
        c.registry.limits_url = Some(url.clone());
        c.server.auth_failures_per_minute = 2;
    })
    .await;
    let r = create_key(
        &f,
        json!({"name": "metered", "role": "client", "rate_limit_per_s": 2}),
    )
    .await;
    let key = r.json["key"].as_str().unwrap().to_string();
    redis.stop();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&f.app, "/v1/models", Some(&key)).await.status);
    }
    // The first check finds Redis gone (a 503 would be wrong: the caller did nothing wrong);
    // the process's own bucket of 2 takes over.
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!((2..=3).contains(&ok), "{statuses:?}");
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let peer = "192.0.2.11:40000";
    let last = if f.client.ends_with('0') { "1" } else { "0" };
    let wrong = format!("{}{last}", &f.client[..f.client.len() - 1]);
    let mut failures = Vec::new();
    for _ in 0..3 {
        failures.push(get_from(&f.app, peer, "/v1/models", &wrong).await.0);
    }
    assert_eq!(
        failures,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

/// A `redis-server` of the test's own on a free loopback port, stopped by the test.
struct ScratchRedis {
    child: Option<std::process::Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl ScratchRedis {
    fn start() -> Option<ScratchRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = tempfile::tempdir().ok()?;
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let started = ScratchRedis {
            child: Some(child),
            port,
            _dir: dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(started);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ScratchRedis {
    fn drop(&mut self) {
        self.stop();
    }
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
            json!({"name": "b2", "role": "client", "expires_at": "+11533-07-23T04:15:22Z"}),
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
