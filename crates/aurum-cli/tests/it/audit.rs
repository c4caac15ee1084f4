//! The audit log under the real binary: an acknowledged decision survives `kill -9` on every
//! protocol, and `audit verify` names a log whose newest records were removed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurum_server::grpc::proto::InferTensorContents;
use aurum_server::grpc::proto::ModelInferRequest;
use aurum_server::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use aurum_server::grpc::proto::model_infer_request::InferInputTensor;
use serde_json::{Map, Value, json};
use sqlx::Connection as _;

use crate::server::{applicant, start_server};
use crate::{GERMAN, aurum, ok, tamper_audit_db};

/// The applicant as OIP JSON tensors of shape [1]: INT64 for numbers, BYTES for strings.
fn json_tensors(record: &Map<String, Value>) -> Value {
    let inputs: Vec<Value> = record
        .iter()
        .map(|(k, v)| {
            let datatype = if v.is_i64() { "INT64" } else { "BYTES" };
            json!({"name": k, "datatype": datatype, "shape": [1], "data": [v]})
        })
        .collect();
    json!({ "inputs": inputs })
}

/// The applicant as a binary-tensor-extension body, and the length of its JSON header.
fn binary_body(record: &Map<String, Value>) -> (Vec<u8>, usize) {
    let mut inputs = Vec::new();
    let mut raw = Vec::new();
    for (k, v) in record {
        let (datatype, bytes) = match v {
            Value::Number(n) => ("INT64", n.as_i64().unwrap().to_le_bytes().to_vec()),
            Value::String(s) => {
                let mut b = (s.len() as u32).to_le_bytes().to_vec();
                b.extend_from_slice(s.as_bytes());
                ("BYTES", b)
            }
            other => panic!("unexpected {other}"),
        };
        inputs.push(json!({"name": k, "datatype": datatype, "shape": [1],
                           "parameters": {"binary_data_size": bytes.len()}}));
        raw.extend_from_slice(&bytes);
    }
    let mut body = serde_json::to_vec(&json!({ "inputs": inputs })).unwrap();
    let header_len = body.len();
    body.extend_from_slice(&raw);
    (body, header_len)
}

/// The applicant as gRPC typed tensors.
fn grpc_request(record: &Map<String, Value>) -> ModelInferRequest {
    let inputs = record
        .iter()
        .map(|(k, v)| {
            let (datatype, contents) = match v {
                Value::Number(n) => (
                    "INT64",
                    InferTensorContents {
                        int64_contents: vec![n.as_i64().unwrap()],
                        ..Default::default()
                    },
                ),
                Value::String(s) => (
                    "BYTES",
                    InferTensorContents {
                        bytes_contents: vec![s.as_bytes().to_vec()],
                        ..Default::default()
                    },
                ),
                other => panic!("unexpected {other}"),
            };
            InferInputTensor {
                name: k.clone(),
                datatype: datatype.into(),
                shape: vec![1],
                parameters: Default::default(),
                contents: Some(contents),
            }
        })
        .collect();
    ModelInferRequest {
        model_name: "credit".into(),
        inputs,
        ..Default::default()
    }
}

/// Request ids the server acknowledged (answered with success), across all workers.
type Acked = Arc<Mutex<Vec<String>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_decisions_survive_kill_9_on_every_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&aurum(
        &data,
        &["data", "import", GERMAN, "--name", "german"],
    ));
    ok(&aurum(
        &data,
        &[
            "train",
            "--dataset",
            "german",
            "--target",
            "creditability",
            "--kind",
            "logistic",
            "--model",
            "credit",
            "--alias",
            "champion",
        ],
    ));
    let created = ok(&aurum(
        &data,
        &["keys", "create", "--name", "client", "--role", "client"],
    ));
    let key = created.lines().last().unwrap().trim().to_owned();
    let mut server = start_server(&data, &[]);
    let base = server.base.clone();

    let channel = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match tonic::transport::Channel::from_shared(server.grpc.clone())
                .unwrap()
                .connect()
                .await
            {
                Ok(channel) => break channel,
                Err(e) if Instant::now() > deadline => panic!("gRPC did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    };
    let http = reqwest::Client::new();
    let record = applicant();
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    // Two workers per protocol: eight requests in flight at any time.
    let mut workers = Vec::new();
    for worker in 0..8usize {
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        let (acked, stop, record) = (Arc::clone(&acked), Arc::clone(&stop), record.clone());
        let mut grpc = GrpcInferenceServiceClient::new(channel.clone());
        workers.push(tokio::spawn(async move {
            let protocol = ["v1", "oip-json", "oip-binary", "grpc"][worker % 4];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = format!("{protocol}-{worker}-{n}");
                let answered = match protocol {
                    "grpc" => {
                        let mut request = tonic::Request::new(grpc_request(&record));
                        let metadata = request.metadata_mut();
                        metadata.insert("authorization", format!("Bearer {key}").parse().unwrap());
                        metadata.insert("x-request-id", id.parse().unwrap());
                        grpc.model_infer(request).await.is_ok()
                    }
                    _ => {
                        let request = match protocol {
                            "v1" => http
                                .post(format!("{base}/v1/models/credit/predict"))
                                .json(&json!({ "records": [record] })),
                            "oip-json" => http
                                .post(format!("{base}/v2/models/credit/infer"))
                                .json(&json_tensors(&record)),
                            _ => {
                                let (body, header_len) = binary_body(&record);
                                http.post(format!("{base}/v2/models/credit/infer"))
                                    .header("content-type", "application/octet-stream")
                                    .header("inference-header-content-length", header_len)
                                    .body(body)
                            }
                        };
                        match request
                            .bearer_auth(&key)
                            .header("x-request-id", &id)
                            .send()
                            .await
                        {
                            Ok(response) => {
                                let status = response.status();
                                // The whole answer must arrive for the decision to count.
                                let body = response.bytes().await;
                                if body.is_ok() && !status.is_success() {
                                    panic!("{id}: {status} {:?}", body);
                                }
                                body.is_ok() && status.is_success()
                            }
                            Err(_) => false,
                        }
                    }
                };
                if answered {
                    acked.lock().unwrap().push(id);
                } else {
                    // The server is gone: stop after this failure.
                    break;
                }
            }
        }));
    }

    // Let the stream run, then kill the server in the middle of it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().expect("SIGKILL the server");
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    let acked = acked.lock().unwrap().clone();
    for protocol in ["v1-", "oip-json-", "oip-binary-", "grpc-"] {
        assert!(
            acked.iter().filter(|id| id.starts_with(protocol)).count() >= 5,
            "too few {protocol} requests were answered to test anything"
        );
    }
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", data.join("audit.db").display()))
            .await
            .unwrap();
    let recorded: std::collections::HashSet<String> = sqlx::query_scalar::<_, Option<String>>(
        "SELECT request_id FROM audit_log WHERE event = 'prediction'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .flatten()
    .collect();
    conn.close().await.unwrap();
    let lost: Vec<&String> = acked.iter().filter(|id| !recorded.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged decisions have no audit record: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
    // The log a crash left behind verifies, anchor included.
    let verified = ok(&aurum(&data, &["audit", "verify"]));
    assert!(verified.contains("audit chain OK"), "{verified}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_log_whose_newest_records_were_removed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&aurum(
        &data,
        &["data", "import", GERMAN, "--name", "german"],
    ));
    for name in ["one", "two", "three"] {
        ok(&aurum(
            &data,
            &["keys", "create", "--name", name, "--role", "client"],
        ));
    }
    let verified = ok(&aurum(&data, &["audit", "verify"]));
    assert!(
        verified.contains("audit chain OK: 4 records verified, signed anchor at seq 4"),
        "{verified}"
    );
    tamper_audit_db(
        &data,
        &[
            "DROP TRIGGER audit_log_no_delete",
            "DELETE FROM audit_log WHERE seq > 2",
        ],
    )
    .await;
    let broken = aurum(&data, &["audit", "verify"]);
    let text = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(3), "{text}");
    assert!(
        text.contains("audit log truncated: anchor covers seq 4 but the log ends at 2"),
        "{text}"
    );
}

/// A training job whose process is killed is ended by the next process to open the data
/// directory once its heartbeat is stale, and that end is audited (it once left the log at
/// `training.submit`, with no record of the job's end).
#[test]
fn a_killed_training_job_is_ended_and_its_end_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&aurum(
        &data,
        &["data", "import", GERMAN, "--name", "german"],
    ));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aurum"))
        .arg("--data-dir")
        .arg(&data)
        .args([
            "train",
            "--dataset",
            "german",
            "--target",
            "creditability",
            "--kind",
            "gbdt",
            "--model",
            "slow",
            "--param",
            "n_estimators=20000",
            "--param",
            "early_stopping_rounds=20000",
            "--param",
            "learning_rate=0.001",
        ])
        .env_remove("AURUM_LOG")
        .env_remove("AURUM_DATA_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the job's submit record, then kill the process while it fits.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tail = ok(&aurum(&data, &["audit", "tail", "-n", "5", "--json"]));
        if tail.contains("training.submit") {
            break;
        }
        assert!(Instant::now() < deadline, "no training.submit: {tail}");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    // The job's heartbeat goes stale after 15 s; any command then ends the job.
    std::thread::sleep(Duration::from_secs(16));
    ok(&aurum(&data, &["models", "list"]));
    let tail: Value =
        serde_json::from_str(&ok(&aurum(&data, &["audit", "tail", "-n", "5", "--json"]))).unwrap();
    let finish = tail["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"] == "training.finish")
        .unwrap_or_else(|| panic!("no training.finish: {tail}"));
    assert_eq!(finish["details"]["state"], "failed", "{finish}");
    assert_eq!(finish["details"]["process_stopped"], true, "{finish}");
    assert_eq!(finish["model"], "slow", "{finish}");
    assert_eq!(finish["actor"], "aurum", "{finish}");
    assert!(
        finish["details"]["error"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{finish}"
    );
    ok(&aurum(&data, &["audit", "verify"]));
}

/// Removing the whole log and its anchor is found: a fresh log anchors itself at genesis, so
/// the chain alone verifies, but the registry still holds what the log recorded (it once
/// answered "audit chain OK: 0 records verified").
#[test]
fn a_removed_audit_log_and_anchor_fail_verification() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&aurum(
        &data,
        &["data", "import", GERMAN, "--name", "german"],
    ));
    ok(&aurum(&data, &["audit", "verify"]));
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("audit.db") || name == "audit.anchor" {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let out = aurum(&data, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("audit log emptied"), "{stdout}");
}
