//! One scoring path: the same applicant, sent through `/v1` JSON, the Open Inference Protocol
//! (REST JSON, REST binary tensors, gRPC) and `aurum predict`, gets the same probability, score
//! and decision under the version's policy, and the same audited input hash, on every protocol.

use std::path::Path;
use std::time::{Duration, Instant};

use aurum_server::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use aurum_server::grpc::proto::model_infer_request::InferInputTensor;
use aurum_server::grpc::proto::{InferTensorContents, ModelInferRequest};
use serde_json::{Map, Value, json};

use crate::server::{Server, applicant, start_server};
use crate::{GERMAN, aurum, ok};

/// What one protocol answered for a record. `score` is `None` for a model without points.
#[derive(Debug, PartialEq)]
pub(crate) struct Answer {
    pub probability: f64,
    pub score: Option<f64>,
    pub decision: String,
}

/// A record field as an OIP tensor type: integers `INT64`, other numbers `FP64`, text `BYTES`.
fn datatype(v: &Value) -> &'static str {
    if v.is_i64() {
        "INT64"
    } else if v.is_number() {
        "FP64"
    } else {
        "BYTES"
    }
}

/// The score output: `None` where the model has none (NaN, `null` in JSON).
fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|x| !x.is_nan())
}

/// `aurum predict` on `model` (before the server starts: one process writes the audit log at a
/// time here). Returns the decision line's fields and the printed input hash.
fn cli_predict(data: &Path, dir: &Path, model: &str) -> (f64, String, String) {
    let input = dir.join("applicant.json");
    std::fs::write(
        &input,
        serde_json::to_vec(&json!({ "records": [applicant()] })).unwrap(),
    )
    .unwrap();
    let out = ok(&aurum(
        data,
        &["predict", model, "--input", input.to_str().unwrap()],
    ));
    let line = out.lines().find(|l| l.starts_with("[0]")).unwrap();
    let field = |name: &str| {
        let rest = &line[line.find(name).unwrap_or_else(|| panic!("{out}")) + name.len()..];
        rest.split_whitespace().next().unwrap().to_string()
    };
    let hash = out
        .lines()
        .find_map(|l| {
            l.split_once("input_sha256 ")
                .map(|(_, h)| h.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no input hash printed:\n{out}"));
    (
        field("probability ").parse().unwrap(),
        field("decision "),
        hash,
    )
}

pub(crate) async fn v1(
    client: &reqwest::Client,
    s: &Server,
    key: &str,
    model: &str,
    record: &Map<String, Value>,
) -> Answer {
    let r: Value = client
        .post(format!("{}/v1/models/{model}/predict", s.base))
        .bearer_auth(key)
        .json(&json!({ "record": record }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p = &r["predictions"][0];
    Answer {
        probability: p["probability"].as_f64().unwrap_or_else(|| panic!("{r}")),
        score: finite(p["score"].as_f64()),
        decision: p["decision"].as_str().unwrap().to_string(),
    }
}

/// The output tensor `name` of an OIP JSON response.
pub(crate) fn output<'a>(resp: &'a Value, name: &str) -> &'a Value {
    resp["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no output {name}: {resp}"))
}

pub(crate) async fn oip_json(
    client: &reqwest::Client,
    s: &Server,
    key: &str,
    model: &str,
    record: &Map<String, Value>,
) -> Answer {
    let inputs: Vec<Value> = record
        .iter()
        .map(|(k, v)| json!({"name": k, "datatype": datatype(v), "shape": [1], "data": [v]}))
        .collect();
    let r: Value = client
        .post(format!("{}/v2/models/{model}/infer", s.base))
        .bearer_auth(key)
        .json(&json!({ "inputs": inputs }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Answer {
        probability: output(&r, "probability")["data"][0].as_f64().unwrap(),
        score: finite(output(&r, "score")["data"][0].as_f64()),
        decision: output(&r, "decision")["data"][0]
            .as_str()
            .unwrap()
            .to_string(),
    }
}

pub(crate) async fn oip_binary(
    client: &reqwest::Client,
    s: &Server,
    key: &str,
    model: &str,
    record: &Map<String, Value>,
) -> Answer {
    let mut inputs = Vec::new();
    let mut raw = Vec::new();
    for (k, v) in record {
        let datatype = datatype(v);
        let bytes = match datatype {
            "INT64" => v.as_i64().unwrap().to_le_bytes().to_vec(),
            "FP64" => v.as_f64().unwrap().to_le_bytes().to_vec(),
            _ => {
                let s = v.as_str().unwrap().as_bytes();
                let mut b = (s.len() as u32).to_le_bytes().to_vec();
                b.extend_from_slice(s);
                b
            }
        };
        inputs.push(json!({"name": k, "datatype": datatype, "shape": [1, 1],
                           "parameters": {"binary_data_size": bytes.len()}}));
        raw.extend_from_slice(&bytes);
    }
    let mut body = serde_json::to_vec(&json!({
        "inputs": inputs,
        "parameters": {"binary_data_output": true},
    }))
    .unwrap();
    let json_len = body.len();
    body.extend_from_slice(&raw);
    let r = client
        .post(format!("{}/v2/models/{model}/infer", s.base))
        .bearer_auth(key)
        .header("inference-header-content-length", json_len.to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let header_len: usize = r.headers()["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = r.bytes().await.unwrap();
    let head: Value = serde_json::from_slice(&bytes[..header_len]).unwrap();
    // Outputs come in the protocol's order, each with its size.
    let mut at = header_len;
    let mut parts = std::collections::HashMap::new();
    for o in head["outputs"].as_array().unwrap() {
        let n = o["parameters"]["binary_data_size"].as_u64().unwrap() as usize;
        parts.insert(o["name"].as_str().unwrap().to_string(), &bytes[at..at + n]);
        at += n;
    }
    let f64_of = |b: &[u8]| f64::from_le_bytes(b[..8].try_into().unwrap());
    let decision = &parts["decision"];
    Answer {
        probability: f64_of(parts["probability"]),
        score: finite(Some(f64_of(parts["score"]))),
        decision: String::from_utf8(decision[4..].to_vec()).unwrap(),
    }
}

pub(crate) async fn grpc(
    s: &Server,
    key: &str,
    model: &str,
    record: &Map<String, Value>,
) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut client = loop {
        let endpoint = tonic::transport::Channel::from_shared(s.grpc.clone()).unwrap();
        match endpoint.connect().await {
            Ok(channel) => break GrpcInferenceServiceClient::new(channel),
            Err(e) => {
                assert!(Instant::now() < deadline, "gRPC never came up: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let inputs = record
        .iter()
        .map(|(k, v)| {
            let datatype = datatype(v);
            let contents = match datatype {
                "INT64" => InferTensorContents {
                    int64_contents: vec![v.as_i64().unwrap()],
                    ..Default::default()
                },
                "FP64" => InferTensorContents {
                    fp64_contents: vec![v.as_f64().unwrap()],
                    ..Default::default()
                },
                _ => InferTensorContents {
                    bytes_contents: vec![v.as_str().unwrap().as_bytes().to_vec()],
                    ..Default::default()
                },
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
    let mut req = tonic::Request::new(ModelInferRequest {
        model_name: model.into(),
        model_version: String::new(),
        id: "one-path".into(),
        parameters: Default::default(),
        inputs,
        outputs: Vec::new(),
        raw_input_contents: Vec::new(),
    });
    req.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    let resp = client.model_infer(req).await.unwrap().into_inner();
    let out = |name: &str| {
        resp.outputs
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.contents.clone())
            .unwrap_or_else(|| panic!("no output {name}"))
    };
    Answer {
        probability: out("probability").fp64_contents[0],
        score: finite(Some(out("score").fp64_contents[0])),
        decision: String::from_utf8(out("decision").bytes_contents[0].clone()).unwrap(),
    }
}

/// The prediction records of `model` in the audit log, oldest first.
async fn audited(client: &reqwest::Client, s: &Server, key: &str, model: &str) -> Vec<Value> {
    let r: Value = client
        .get(format!(
            "{}/v1/audit?event=prediction&model={model}&limit=100",
            s.base
        ))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["records"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .clone()
}

/// The documented canonical input form, recomputed by hand from the applicant and the version's
/// input schema (`[{name, type}]` in schema order).
fn expected_hash(schema: &[Value], applicant: &Map<String, Value>) -> String {
    let cells: Vec<Value> = schema
        .iter()
        .map(|f| {
            let name = f["name"].as_str().unwrap();
            json!([name, f["type"], applicant[name]])
        })
        .collect();
    // Integers and strings only: serde_json's compact form is the canonical form here.
    let text = serde_json::to_string(&json!([cells])).unwrap();
    aurum_core::sha256_hex(text.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_applicant_scores_decides_and_audits_the_same_on_every_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&aurum(
        &data,
        &["data", "import", GERMAN, "--name", "german"],
    ));
    let train = |model: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--dataset",
            "german",
            "--target",
            "creditability",
            "--kind",
            "gbdt",
            "--model",
            model,
            "--alias",
            "champion",
            "--param",
            "n_estimators=30",
        ];
        for p in extra {
            args.extend(["--param", p]);
        }
        ok(&aurum(&data, &args))
    };
    // Without a band, to find the applicant's PD; then the same fit (seeded) with a refer band
    // around it and a cut-off above it, so the policy alone turns the answer into `refer`.
    train("plain", &[]);
    let (pd, plain_decision, _) = cli_predict(&data, dir.path(), "plain");
    assert_ne!(plain_decision, "refer");
    let (low, high) = ((pd - 0.05).max(0.0), (pd + 0.05).min(0.999));
    let band = [
        format!("refer_low={low}"),
        format!("refer_high={high}"),
        format!("policy_pd_cutoff={}", (high + 0.0005).min(1.0)),
    ];
    train(
        "banded",
        &band.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let (cli_pd, cli_decision, cli_hash) = cli_predict(&data, dir.path(), "banded");
    assert_eq!(cli_decision, "refer");
    assert!((cli_pd - pd).abs() < 1e-6, "{cli_pd} vs {pd}");

    let created = ok(&aurum(
        &data,
        &["keys", "create", "--name", "ops", "--role", "admin"],
    ));
    let key = created.lines().last().unwrap().trim().to_string();
    let server = start_server(&data, &[]);
    let client = reqwest::Client::new();
    let record = applicant();

    for (model, decision) in [("plain", plain_decision.as_str()), ("banded", "refer")] {
        let answers = [
            ("v1", v1(&client, &server, &key, model, &record).await),
            (
                "oip-json",
                oip_json(&client, &server, &key, model, &record).await,
            ),
            (
                "oip-binary",
                oip_binary(&client, &server, &key, model, &record).await,
            ),
            ("grpc", grpc(&server, &key, model, &record).await),
        ];
        for (protocol, a) in &answers {
            assert_eq!(a, &answers[0].1, "{model}: {protocol} differs from v1");
            assert_eq!(a.decision, decision, "{model}: {protocol}");
            assert!((a.probability - pd).abs() < 1e-6, "{model}: {protocol}");
            assert!(a.score.is_some_and(f64::is_finite), "{model}: {protocol}");
        }

        // Five audit records (the CLI's first), each with the same input hash, the decision
        // under the policy and the same probability and score.
        let records = audited(&client, &server, &key, model).await;
        assert_eq!(records.len(), 5, "{model}: {records:?}");
        let version: Value = client
            .get(format!("{}/v1/models/{model}/versions/1", server.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let schema = version["input_schema"].as_array().unwrap();
        assert!(schema.iter().all(|f| f["type"] != "float"), "{schema:?}");
        let expected = expected_hash(schema, &applicant());
        for r in &records {
            assert_eq!(r["input_sha256"], expected, "{model}: {r}");
            let out = &r["details"]["outputs"][0];
            assert_eq!(out["decision"], decision, "{model}: {r}");
            assert_eq!(out["probability"].as_f64(), Some(answers[0].1.probability));
            assert_eq!(out["score"].as_f64(), answers[0].1.score);
        }
        if model == "banded" {
            assert_eq!(cli_hash, expected);
            let reasons = records[0]["details"]["outputs"][0]["reasons"]
                .as_array()
                .unwrap();
            assert!(!reasons.is_empty(), "a referral gives its reasons");
            assert!(
                records
                    .iter()
                    .all(|r| r["details"]["outputs"][0]["reasons"].as_array().unwrap() == reasons)
            );
        }
    }
}
