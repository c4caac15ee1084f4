//! Test fixtures: a platform in a temporary data dir with the German credit data, a trained
//! champion and one key per role.

use std::time::Duration;

use aurum_server::AppState;
use aurum_service::{CallContext, Config, Platform, Role};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const GERMAN: &[u8] = include_bytes!("../../../../data/demo/german_credit.csv");

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    /// The PostgreSQL database and S3 prefix of a scale-out run, dropped after the test.
    pub _scale_out: Option<ScaleOut>,
    pub platform: Platform,
    /// The configuration the platform was opened with: another platform opened on it is another
    /// replica (or a restart) on the same stores.
    pub config: Config,
    pub app: Router,
    pub admin: String,
    pub analyst: String,
    pub client: String,
}

pub async fn fixture_with(edit: impl FnOnce(&mut Config)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    let scale_out = ScaleOut::create().await;
    if let Some(scale_out) = &scale_out {
        scale_out.configure(&mut config);
    }
    edit(&mut config);
    let platform = aurum_backends::open_platform(config.clone()).await.unwrap();
    let ctx = CallContext::cli();
    let admin = platform
        .create_key(&ctx, "admin", Role::Admin)
        .await
        .unwrap()
        .1;
    let analyst = platform
        .create_key(&ctx, "analyst", Role::Analyst)
        .await
        .unwrap()
        .1;
    let client = platform
        .create_key(&ctx, "client", Role::Client)
        .await
        .unwrap()
        .1;
    let app = aurum_server::router(AppState::new(platform.clone()));
    Fixture {
        _dir: dir,
        _scale_out: scale_out,
        platform,
        config,
        app,
        admin,
        analyst,
        client,
    }
}

impl Fixture {
    /// Flips one byte in the middle of the first stored model artifact (`models/credit/…aurum`)
    /// whose key `pick` accepts, on whichever store the platform runs (local disk or S3).
    pub async fn damage_artifact(&self, pick: impl Fn(&str) -> bool) {
        let store = self.platform.artifact_store();
        let key = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.starts_with("models/credit/") && k.ends_with(".aurum") && pick(k))
            .expect("a stored artifact to damage");
        let mut bytes = store.get(&key).await.unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        store.put(&key, bytes).await.unwrap();
    }
}

/// With `AURUM_TEST_BACKEND=scale-out`, every fixture runs on the scale-out backends: a fresh
/// PostgreSQL database (registry and audit log) and a fresh prefix in the S3 test bucket, named
/// by `AURUM_TEST_DATABASE_URL`, `AURUM_TEST_S3_ENDPOINT` and `AURUM_TEST_S3_BUCKET`
/// (`scripts/services/run.sh`), and live fraud state and request limits in Redis
/// (`AURUM_TEST_REDIS_URL`) under a fresh key prefix. The same tests then check both backends.
pub struct ScaleOut {
    admin_url: String,
    database: String,
    url: String,
    endpoint: String,
    artifacts: String,
    /// `AURUM_TEST_REDIS_URL` when set: live fraud state in Redis under a prefix of its own.
    redis: Option<(String, String)>,
}

impl ScaleOut {
    async fn create() -> Option<ScaleOut> {
        use sqlx::ConnectOptions as _;
        use std::str::FromStr as _;
        if std::env::var("AURUM_TEST_BACKEND").as_deref() != Ok("scale-out") {
            return None;
        }
        let var = |name: &str| {
            std::env::var(name)
                .unwrap_or_else(|_| panic!("AURUM_TEST_BACKEND=scale-out needs {name}"))
        };
        let admin_url = var("AURUM_TEST_DATABASE_URL");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("aurum_it_{id}");
        let options = sqlx::postgres::PgConnectOptions::from_str(&admin_url).unwrap();
        let mut conn = options.connect().await.expect("test PostgreSQL answers");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = options.database(&database).to_url_lossy().to_string();
        Some(ScaleOut {
            admin_url,
            database,
            url,
            endpoint: var("AURUM_TEST_S3_ENDPOINT"),
            artifacts: format!("s3://{}/it-{id}", var("AURUM_TEST_S3_BUCKET")),
            redis: std::env::var("AURUM_TEST_REDIS_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .map(|u| (u, format!("aurum-it:{id}"))),
        })
    }

    fn configure(&self, config: &mut Config) {
        let r = &mut config.registry;
        r.backend = "postgres".into();
        r.database_url = Some(self.url.clone());
        r.database_max_connections = 4;
        r.artifact_store_url = Some(self.artifacts.clone());
        r.s3_endpoint = Some(self.endpoint.clone());
        r.s3_region = Some("us-east-1".into());
        r.s3_allow_http = true;
        r.s3_access_key_id = Some("test".into());
        r.s3_secret_access_key = Some("test".into());
        if let Some((url, prefix)) = &self.redis {
            r.fraud_state_url = Some(url.clone());
            r.fraud_state_prefix = prefix.clone();
            r.limits_url = Some(url.clone());
            r.limits_prefix = format!("{prefix}:limits");
        }
    }
}

impl Drop for ScaleOut {
    fn drop(&mut self) {
        use sqlx::ConnectOptions as _;
        use std::str::FromStr as _;
        let admin = self.admin_url.clone();
        let name = self.database.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let options = sqlx::postgres::PgConnectOptions::from_str(&admin).unwrap();
                if let Ok(mut conn) = options.connect().await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

pub async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

pub struct Resp {
    pub status: StatusCode,
    pub json: serde_json::Value,
    pub headers: axum::http::HeaderMap,
}

pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    key: Option<&str>,
    body: Body,
    content_type: &str,
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    Resp {
        status,
        json,
        headers,
    }
}

/// GET `uri` with `key` as if from `peer`, the address the failed-authentication limit counts by.
pub async fn get_from(
    app: &Router,
    peer: &str,
    uri: &str,
    key: &str,
) -> (StatusCode, axum::http::HeaderMap) {
    let mut req = Request::builder()
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(
        peer.parse::<std::net::SocketAddr>().unwrap(),
    ));
    let resp = app.clone().oneshot(req).await.unwrap();
    (resp.status(), resp.headers().clone())
}

pub async fn get(app: &Router, uri: &str, key: Option<&str>) -> Resp {
    call(
        app,
        Method::GET,
        uri,
        key,
        Body::empty(),
        "application/json",
    )
    .await
}

pub async fn post_json(
    app: &Router,
    uri: &str,
    key: Option<&str>,
    body: &serde_json::Value,
) -> Resp {
    call(
        app,
        Method::POST,
        uri,
        key,
        Body::from(body.to_string()),
        "application/json",
    )
    .await
}

pub async fn put_json(
    app: &Router,
    uri: &str,
    key: Option<&str>,
    body: &serde_json::Value,
) -> Resp {
    call(
        app,
        Method::PUT,
        uri,
        key,
        Body::from(body.to_string()),
        "application/json",
    )
    .await
}

/// Imports German credit as `german` through the API.
pub async fn import_german(f: &Fixture) -> Resp {
    call(
        &f.app,
        Method::POST,
        "/v1/datasets?name=german",
        Some(&f.analyst),
        Body::from(GERMAN),
        "text/csv",
    )
    .await
}

/// Submits a training job with `body` and waits for it to finish; returns the final job JSON.
pub async fn train_with(f: &Fixture, body: &serde_json::Value) -> serde_json::Value {
    let r = post_json(&f.app, "/v1/training-jobs", Some(&f.analyst), body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_string();
    for _ in 0..1200 {
        let j = get(&f.app, &format!("/v1/training-jobs/{id}"), Some(&f.analyst))
            .await
            .json;
        match j["state"].as_str().unwrap() {
            "succeeded" | "failed" | "cancelled" => return j,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("training job {id} did not finish in 60 s");
}

/// Submits a training job and waits for it to finish; returns the final job JSON.
pub async fn train(
    f: &Fixture,
    model: &str,
    params: serde_json::Value,
    alias: Option<&str>,
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "dataset": "german", "target": "creditability", "kind": "logistic", "model": model, "params": params,
    });
    if let Some(a) = alias {
        body["alias"] = a.into();
    }
    let r = post_json(&f.app, "/v1/training-jobs", Some(&f.analyst), &body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_string();
    for _ in 0..600 {
        let j = get(&f.app, &format!("/v1/training-jobs/{id}"), Some(&f.analyst))
            .await
            .json;
        match j["state"].as_str().unwrap() {
            "succeeded" | "failed" | "cancelled" => return j,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("training job {id} did not finish in 30 s");
}

/// A ready fixture: data imported and `credit` v1 trained and set as champion.
pub async fn trained() -> Fixture {
    let f = fixture().await;
    assert_eq!(import_german(&f).await.status, StatusCode::CREATED);
    let job = train(&f, "credit", serde_json::json!({}), Some("champion")).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    f
}

/// The first German credit applicant, without the target, as a JSON record.
pub fn applicant() -> serde_json::Value {
    let mut rdr = csv::Reader::from_reader(GERMAN);
    let headers = rdr.headers().unwrap().clone();
    let row = rdr.records().next().unwrap().unwrap();
    let mut obj = serde_json::Map::new();
    for (h, v) in headers.iter().zip(row.iter()) {
        if h == "creditability" {
            continue;
        }
        let value = match v.parse::<i64>() {
            Ok(i) => serde_json::json!(i),
            Err(_) => serde_json::json!(v),
        };
        obj.insert(h.to_string(), value);
    }
    serde_json::Value::Object(obj)
}
