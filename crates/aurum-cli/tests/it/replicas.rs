//! Three `aurum serve` replicas on one PostgreSQL database, one S3-compatible store and one
//! Redis (fraud state and request limits), under load, while an alias moves on one replica,
//! another is killed with SIGKILL and restarted, and a training job runs on the third. Needs
//! `AURUM_TEST_DATABASE_URL`, `AURUM_TEST_S3_ENDPOINT`, `AURUM_TEST_S3_BUCKET` and
//! `AURUM_TEST_REDIS_URL` (`scripts/services/run.sh start`); without them it prints a notice and
//! passes.
//!
//! Beside the prediction load, one client streams card transactions (in time order, the spec
//! allows no reordering) to the replicas in turn: their live fraud state is in Redis, so every
//! replica must report the same state, holding every acknowledged event, after the kill.
//!
//! The load client plays the load balancer: requests go round-robin to the replicas it believes
//! are up; a request that cannot reach its replica (refused or reset by the kill) is retried on
//! the next one, as a balancer retries a connection failure. A request *fails* when its final
//! answer is not 200, and the test requires zero of those. Every request carries its own
//! `x-request-id`, so the audit log can be checked request by request: each acknowledged
//! prediction has exactly one audit record, and the only other prediction records belong to
//! attempts that were cut by the kill after the replica committed them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::ConnectOptions as _;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::{Mutex, RwLock};

use crate::server::{Server, applicant, start_server};
use crate::{GERMAN, ok};

/// The environment every process of the deployment shares, and the database to drop after.
struct Deployment {
    env: Vec<(String, String)>,
    admin_url: String,
    database: String,
}

impl Deployment {
    async fn create() -> Option<Deployment> {
        let (Ok(admin_url), Ok(endpoint), Ok(bucket), Ok(redis)) = (
            std::env::var("AURUM_TEST_DATABASE_URL"),
            std::env::var("AURUM_TEST_S3_ENDPOINT"),
            std::env::var("AURUM_TEST_S3_BUCKET"),
            std::env::var("AURUM_TEST_REDIS_URL"),
        ) else {
            eprintln!(
                "skipped replicas test: AURUM_TEST_DATABASE_URL / AURUM_TEST_S3_ENDPOINT / \
                 AURUM_TEST_REDIS_URL not set"
            );
            return None;
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("aurum_replicas_{id}");
        let mut conn = PgConnectOptions::from_str(&admin_url)
            .unwrap()
            .connect()
            .await
            .expect("the test PostgreSQL server answers");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = PgConnectOptions::from_str(&admin_url)
            .unwrap()
            .database(&database)
            .to_url_lossy()
            .to_string();
        let env = [
            ("AURUM_REGISTRY_BACKEND", "postgres".to_owned()),
            ("AURUM_DATABASE_URL", url),
            (
                "AURUM_ARTIFACT_STORE_URL",
                format!("s3://{bucket}/replicas-{id}"),
            ),
            ("AURUM_S3_ENDPOINT", endpoint),
            ("AURUM_S3_ALLOW_HTTP", "true".to_owned()),
            ("AURUM_S3_REGION", "us-east-1".to_owned()),
            ("AURUM_S3_ACCESS_KEY_ID", "test".to_owned()),
            ("AURUM_S3_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AURUM_FRAUD_STATE_URL", redis.clone()),
            ("AURUM_FRAUD_STATE_PREFIX", format!("aurum-replicas:{id}")),
            ("AURUM_LIMITS_URL", redis.clone()),
            ("AURUM_LIMITS_PREFIX", format!("aurum-replicas:{id}:limits")),
            // The load comes from one address; the failure limit is tested elsewhere.
            ("AURUM_AUTH_FAILURES_PER_MINUTE", "1000000".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Some(Deployment {
            env,
            admin_url,
            database,
        })
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Runs the CLI against the shared stores, with its own data directory.
    fn cli(&self, data: &Path, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_aurum"))
            .arg("--data-dir")
            .arg(data)
            .args(args)
            .env_remove("AURUM_LOG")
            .env_remove("AURUM_DATA_DIR")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run aurum")
    }

    async fn count_predictions(&self) -> BTreeMap<String, u32> {
        let url = self
            .env
            .iter()
            .find(|(k, _)| k == "AURUM_DATABASE_URL")
            .unwrap()
            .1
            .clone();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let rows: Vec<(Option<String>,)> = sqlx::query_as(
            "SELECT request_id FROM aurum_audit.audit_log WHERE event = 'prediction'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        let mut counts = BTreeMap::new();
        for (id,) in rows {
            *counts.entry(id.unwrap_or_default()).or_insert(0) += 1;
        }
        counts
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.database.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(mut conn) = PgConnectOptions::from_str(&admin).unwrap().connect().await {
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

/// What the load client saw.
#[derive(Default)]
struct Tally {
    /// Request ids answered 200, with the version that answered and when the request started
    /// (relative to the load's start).
    acked: Vec<(String, u64, Duration)>,
    /// Request ids of attempts cut by a connection failure (retried under a new id).
    cut: BTreeSet<String>,
    /// Final answers other than 200: `(status, body)`.
    failed: Vec<(u16, String)>,
    latencies_ms: Vec<f64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_survive_an_alias_move_a_sigkill_and_a_training_job_under_load() {
    let Some(deployment) = Deployment::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cli_data = dir.path().join("cli");
    // Set up through the CLI, on the shared stores.
    ok(&deployment.cli(&cli_data, &["data", "import", GERMAN, "--name", "german"]));
    for extra in [&["--alias", "champion"][..], &[][..]] {
        let mut args = vec![
            "train",
            "--dataset",
            "german",
            "--target",
            "creditability",
            "--kind",
            "logistic",
            "--model",
            "credit",
        ];
        args.extend_from_slice(extra);
        ok(&deployment.cli(&cli_data, &args));
    }
    let key = |name: &str, role: &str| {
        let out = ok(&deployment.cli(
            &cli_data,
            &["keys", "create", "--name", name, "--role", role],
        ));
        out.lines().last().unwrap().trim().to_owned()
    };
    let client_key = key("app", "client");
    let admin_key = key("ops", "admin");
    // Three requests a second in all, whichever replica gets them (checked at the end).
    let metered_key = {
        let out = ok(&deployment.cli(
            &cli_data,
            &[
                "keys",
                "create",
                "--name",
                "metered",
                "--role",
                "client",
                "--rate-limit",
                "3",
            ],
        ));
        out.lines().last().unwrap().trim().to_owned()
    };
    // A fraud model on the first 8 000 card transactions; the next ones are streamed live.
    let (header, rows) = handbook();
    let tx = dir.path().join("tx.csv");
    std::fs::write(&tx, format!("{header}\n{}\n", rows[..8_000].join("\n"))).unwrap();
    ok(&deployment.cli(
        &cli_data,
        &["data", "import", tx.to_str().unwrap(), "--name", "tx"],
    ));
    ok(&deployment.cli(
        &cli_data,
        &[
            "train",
            "--dataset",
            "tx",
            "--target",
            "TX_FRAUD",
            "--kind",
            "fraud_gbdt",
            "--model",
            "fraud",
            "--date-column",
            "TX_DATETIME",
            "--param",
            "spec=handbook",
            "--param",
            "n_estimators=20",
            "--alias",
            "champion",
        ],
    ));

    let env = deployment.env();
    let data: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("replica{i}")))
        .collect();
    let servers: Vec<Server> = data.iter().map(|d| start_server(d, &env)).collect();
    let bases: Arc<RwLock<Vec<Option<String>>>> = Arc::new(RwLock::new(
        servers.iter().map(|s| Some(s.base.clone())).collect(),
    ));
    let servers = Arc::new(Mutex::new(servers));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let next_id = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut clients = Vec::new();
    for worker in 0..6usize {
        let (http, bases, tally, stop, next_id, key) = (
            http.clone(),
            Arc::clone(&bases),
            Arc::clone(&tally),
            Arc::clone(&stop),
            Arc::clone(&next_id),
            client_key.clone(),
        );
        clients.push(tokio::spawn(async move {
            let body = json!({ "records": [applicant()] });
            let mut turn = worker;
            while !stop.load(Ordering::Relaxed) {
                let begun = Instant::now();
                let started = start.elapsed();
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let base = loop {
                        turn += 1;
                        let bases = bases.read().await;
                        if let Some(base) = &bases[turn % bases.len()] {
                            break base.clone();
                        }
                    };
                    let id = format!("load-{}", next_id.fetch_add(1, Ordering::Relaxed));
                    let sent = http
                        .post(format!("{base}/v1/models/credit/predict"))
                        .bearer_auth(&key)
                        .header("x-request-id", &id)
                        .json(&body)
                        .send()
                        .await;
                    match sent {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let text = r.text().await.unwrap_or_default();
                            let mut tally = tally.lock().await;
                            if status == 200 {
                                let v: Value = serde_json::from_str(&text).unwrap();
                                tally
                                    .acked
                                    .push((id, v["version"].as_u64().unwrap(), started));
                                tally.latencies_ms.push(begun.elapsed().as_secs_f64() * 1e3);
                            } else {
                                tally.failed.push((status, text));
                            }
                            break;
                        }
                        Err(e) if attempts < 10 && (e.is_connect() || e.is_request()) => {
                            tally.lock().await.cut.insert(id);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(e) => {
                            tally.lock().await.failed.push((0, e.to_string()));
                            break;
                        }
                    }
                }
            }
        }));
    }

    let fraud_stream = {
        let (http, bases, stop, key) = (
            http.clone(),
            Arc::clone(&bases),
            Arc::clone(&stop),
            client_key.clone(),
        );
        let live: Vec<Value> = rows[8_000..].iter().map(|l| event_json(l)).collect();
        tokio::spawn(async move { stream_events(http, bases, stop, key, live).await })
    };

    // 1. An alias move on replica 0; every replica must answer from version 2 within a second.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let base0 = bases.read().await[0].clone().unwrap();
    let r = http
        .put(format!("{base0}/v1/models/credit/aliases/champion"))
        .bearer_auth(&admin_key)
        .json(&json!({"version": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let moved_at = start.elapsed();

    // 2. SIGKILL replica 1, restart it on the same data directory a second later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        let mut servers = servers.lock().await;
        bases.write().await[1] = None;
        servers[1].child.kill().unwrap(); // SIGKILL
        servers[1].child.wait().unwrap();
    }
    let killed_at = start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = start_server(&data[1], &env);
    let restarted_base = restarted.base.clone();
    servers.lock().await[1] = restarted;
    bases.write().await[1] = Some(restarted_base);

    // 3. A training job on replica 2, while it serves.
    let base2 = bases.read().await[2].clone().unwrap();
    let r = http
        .post(format!("{base2}/v1/training-jobs"))
        .bearer_auth(&admin_key)
        .json(&json!({"dataset": "german", "target": "creditability", "kind": "scorecard", "model": "credit"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "training accepted");
    let job: Value = r.json().await.unwrap();
    let job_id = job["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let j: Value = http
            .get(format!("{base2}/v1/training-jobs/{job_id}"))
            .bearer_auth(&admin_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if j["state"] != "queued" && j["state"] != "running" {
            break j;
        }
        assert!(
            Instant::now() < deadline,
            "training job did not finish: {j}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["version"], 3, "{job}");
    // Version 3, registered by replica 2, loads on every replica (its artifact is in S3).
    for base in bases.read().await.iter().flatten() {
        let r = http
            .post(format!("{base}/v1/models/credit/versions/3/predict"))
            .bearer_auth(&client_key)
            .json(&json!({ "records": [applicant()] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{base}: {}", r.text().await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let elapsed = start.elapsed();
    let tally = Arc::try_unwrap(tally).ok().unwrap().into_inner();
    let events = fraud_stream.await.unwrap();
    assert!(
        events.failed.is_empty(),
        "failed events: {:?}",
        events.failed
    );
    assert!(events.acked > 50, "too few events: {}", events.acked);
    // One state for all: every replica reports every applied event (acknowledged, or committed
    // by the killed replica before its answer was cut), from Redis, with nothing on its disk.
    for (i, base) in bases.read().await.iter().flatten().enumerate() {
        let state: Value = http
            .get(format!("{base}/v1/models/fraud/events/state"))
            .bearer_auth(&client_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            state["events_applied"].as_u64(),
            Some(events.acked + events.committed_then_cut),
            "replica {i}: {state}"
        );
        assert!(
            state["backend"].as_str().unwrap().starts_with("redis "),
            "{state}"
        );
        assert!(
            !data[i].join("state").exists(),
            "replica {i} kept state on disk"
        );
    }

    // The metered key's limit holds across the replicas (AURUM_LIMITS_URL): nine requests
    // spread over three replicas pass three, plus what refilled meanwhile, not three per replica.
    let live: Vec<String> = bases.read().await.iter().flatten().cloned().collect();
    let started = Instant::now();
    let mut statuses = Vec::new();
    for i in 0..9 {
        let r = http
            .get(format!("{}/v1/models", live[i % live.len()]))
            .bearer_auth(&metered_key)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    let refilled = (started.elapsed().as_secs_f64() * 3.0).floor() as usize;
    let passed = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        (3..=3 + refilled).contains(&passed) && statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?} (refilled {refilled})"
    );

    // Zero failed requests.
    assert!(
        tally.failed.is_empty(),
        "failed requests: {:?}",
        tally.failed
    );
    let acked = tally.acked.len();
    assert!(acked > 100, "too little load to mean anything: {acked}");
    // The alias move reached every replica within a second.
    let stale: Vec<_> = tally
        .acked
        .iter()
        .filter(|(_, version, started)| {
            *version == 1 && *started > moved_at + Duration::from_secs(1)
        })
        .collect();
    assert!(
        stale.is_empty(),
        "version 1 served over a second after the move: {stale:?}"
    );

    // The audit log verifies against PostgreSQL, and its prediction records match the
    // acknowledged predictions one for one.
    let verified = ok(&deployment.cli(&cli_data, &["audit", "verify"]));
    assert!(verified.contains("audit chain OK"), "{verified}");
    let recorded = deployment.count_predictions().await;
    let acked_ids: BTreeSet<&str> = tally.acked.iter().map(|(id, _, _)| id.as_str()).collect();
    for id in &acked_ids {
        assert_eq!(
            recorded.get(*id).copied(),
            Some(1),
            "acknowledged prediction {id} has no single audit record"
        );
    }
    let extra: Vec<&String> = recorded
        .keys()
        .filter(|id| id.starts_with("load-") && !acked_ids.contains(id.as_str()))
        .collect();
    for id in &extra {
        assert!(
            tally.cut.contains(*id),
            "audit record {id} belongs to no acknowledged or cut request"
        );
    }
    let load_records = recorded.keys().filter(|id| id.starts_with("load-")).count();
    let mut latencies = tally.latencies_ms.clone();
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "replicas: fraud events {} acknowledged (+{} committed before a cut answer) in order across \
         the replicas, state identical on all three",
        events.acked, events.committed_then_cut
    );
    eprintln!(
        "replicas: {acked} acknowledged predictions in {:.1} s ({:.0} req/s), 0 failed, {} attempts \
         cut by the SIGKILL at {:.1} s and retried, {} of them committed before the kill; audit \
         prediction records {load_records} = acknowledged {acked} + committed-then-cut {}; latency \
         p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
        elapsed.as_secs_f64(),
        acked as f64 / elapsed.as_secs_f64(),
        tally.cut.len(),
        killed_at.as_secs_f64(),
        extra.len(),
        extra.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
    );
    assert_eq!(load_records, acked + extra.len());
}

const HANDBOOK: &str = include_str!("../../../../data/fraud/handbook_sim_transactions.csv");

/// The handbook file's header and data lines.
fn handbook() -> (&'static str, Vec<&'static str>) {
    let mut lines = HANDBOOK.lines();
    let header = lines.next().unwrap();
    (header, lines.collect())
}

/// A data line as a live event: the spec's fields, without the label.
fn event_json(line: &str) -> Value {
    let c: Vec<&str> = line.split(',').collect();
    json!({
        "TRANSACTION_ID": c[0].parse::<i64>().unwrap(),
        "TX_DATETIME": c[1],
        "CUSTOMER_ID": c[2].parse::<i64>().unwrap(),
        "TERMINAL_ID": c[3].parse::<i64>().unwrap(),
        "TX_AMOUNT": c[4].parse::<f64>().unwrap(),
        "TX_TIME_SECONDS": c[5].parse::<i64>().unwrap(),
    })
}

/// What the event client saw.
#[derive(Debug, Default)]
struct EventTally {
    acked: u64,
    /// Events whose answer was cut by the kill but which the replica had committed: the retry on
    /// the next replica is refused as a duplicate, which proves the state has them.
    committed_then_cut: u64,
    failed: Vec<(u16, String)>,
}

/// Sends `events` one per request, in order, to the replicas in turn until `stop`; a request cut
/// by a connection failure is retried on the next replica.
async fn stream_events(
    http: reqwest::Client,
    bases: Arc<RwLock<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
    key: String,
    events: Vec<Value>,
) -> EventTally {
    let mut tally = EventTally::default();
    let mut turn = 0usize;
    for event in events {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut cut = false;
        for attempt in 1.. {
            let base = loop {
                turn += 1;
                let bases = bases.read().await;
                if let Some(base) = &bases[turn % bases.len()] {
                    break base.clone();
                }
            };
            let sent = http
                .post(format!("{base}/v1/models/fraud/events"))
                .bearer_auth(&key)
                .json(&json!({ "event": event }))
                .send()
                .await;
            match sent {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    if status == 200 {
                        tally.acked += 1;
                    } else if cut && status == 400 && text.contains("duplicate_event") {
                        tally.committed_then_cut += 1;
                    } else {
                        tally.failed.push((status, text));
                    }
                    break;
                }
                Err(e) if attempt < 10 && (e.is_connect() || e.is_request()) => {
                    cut = true;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => {
                    tally.failed.push((0, e.to_string()));
                    break;
                }
            }
        }
    }
    tally
}
