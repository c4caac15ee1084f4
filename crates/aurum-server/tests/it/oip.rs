//! The Open Inference Protocol (v2): REST in process, gRPC over a real socket.

use std::time::Duration;

use aurum_server::AppState;
use aurum_server::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use aurum_server::grpc::proto::model_infer_request::{
    InferInputTensor, InferRequestedOutputTensor,
};
use aurum_server::grpc::proto::{
    InferTensorContents, ModelInferRequest, ModelMetadataRequest, ServerLiveRequest,
};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tonic::transport::Channel;
use tower::ServiceExt;

use crate::common::*;

/// The first `n` German credit applicants, without the target, as JSON records (CSV order).
fn applicants(n: usize) -> Vec<serde_json::Map<String, Value>> {
    let mut rdr = csv::Reader::from_reader(GERMAN);
    let headers = rdr.headers().unwrap().clone();
    rdr.records()
        .take(n)
        .map(|row| {
            let row = row.unwrap();
            headers
                .iter()
                .zip(row.iter())
                .filter(|(h, _)| *h != "creditability")
                .map(|(h, v)| {
                    let value = match v.parse::<i64>() {
                        Ok(i) => json!(i),
                        Err(_) => json!(v),
                    };
                    (h.to_string(), value)
                })
                .collect()
        })
        .collect()
}

/// Per-feature JSON tensors for `records`: INT64 for numbers, BYTES for strings, shape [n].
fn feature_tensors(records: &[serde_json::Map<String, Value>]) -> Vec<Value> {
    records[0]
        .keys()
        .map(|k| {
            let data: Vec<Value> = records.iter().map(|r| r[k].clone()).collect();
            let datatype = if data[0].is_i64() { "INT64" } else { "BYTES" };
            json!({"name": k, "datatype": datatype, "shape": [records.len()], "data": data})
        })
        .collect()
}

/// Probabilities and labels from `/v1` for the same records.
async fn v1_predict(
    f: &Fixture,
    records: &[serde_json::Map<String, Value>],
) -> (Vec<f64>, Vec<String>) {
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &json!({ "records": records }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let preds = r.json["predictions"].as_array().unwrap();
    (
        preds
            .iter()
            .map(|p| p["probability"].as_f64().unwrap())
            .collect(),
        preds
            .iter()
            .map(|p| p["label"].as_str().unwrap().to_string())
            .collect(),
    )
}

struct RawResp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

async fn raw_post(
    app: &axum::Router,
    uri: &str,
    key: Option<&str>,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> RawResp {
    let mut req = Request::builder().method(Method::POST).uri(uri);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    for (h, v) in headers {
        req = req.header(*h, v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    RawResp {
        status,
        headers,
        body,
    }
}

fn fp64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn raw_strings(mut bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let n = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        out.push(String::from_utf8(bytes[4..4 + n].to_vec()).unwrap());
        bytes = &bytes[4 + n..];
    }
    out
}

/// Raw little-endian bytes of one feature column (INT64 or length-prefixed BYTES).
fn raw_column(records: &[serde_json::Map<String, Value>], k: &str) -> (&'static str, Vec<u8>) {
    if records[0][k].is_i64() {
        let bytes = records
            .iter()
            .flat_map(|r| r[k].as_i64().unwrap().to_le_bytes())
            .collect();
        ("INT64", bytes)
    } else {
        let mut bytes = Vec::new();
        for r in records {
            let s = r[k].as_str().unwrap().as_bytes();
            bytes.extend_from_slice(&(s.len() as u32).to_le_bytes());
            bytes.extend_from_slice(s);
        }
        ("BYTES", bytes)
    }
}

/// A binary-extension request: the JSON header, then every input's raw bytes.
fn binary_request(records: &[serde_json::Map<String, Value>], extra: Value) -> (Vec<u8>, usize) {
    let mut inputs = Vec::new();
    let mut binary = Vec::new();
    for k in records[0].keys() {
        let (datatype, bytes) = raw_column(records, k);
        inputs.push(
            json!({"name": k, "datatype": datatype, "shape": [records.len(), 1],
                           "parameters": {"binary_data_size": bytes.len()}}),
        );
        binary.extend_from_slice(&bytes);
    }
    let mut header = json!({ "inputs": inputs });
    if let Value::Object(extra) = extra {
        header.as_object_mut().unwrap().extend(extra);
    }
    let mut body = serde_json::to_vec(&header).unwrap();
    let json_len = body.len();
    body.extend_from_slice(&binary);
    (body, json_len)
}

fn at<'a>(inputs: &'a mut [Value], name: &str) -> &'a mut Value {
    inputs.iter_mut().find(|t| t["name"] == name).unwrap()
}

fn output<'a>(resp: &'a Value, name: &str) -> &'a Value {
    resp["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no output {name} in {resp}"))
}

#[tokio::test]
async fn health_metadata_and_repository() {
    let f = trained().await;
    // Health is open; everything else needs a key.
    assert_eq!(
        get(&f.app, "/v2/health/live", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&f.app, "/v2/health/ready", None).await.status,
        StatusCode::OK
    );
    let server = get(&f.app, "/v2", Some(&f.client)).await;
    assert_eq!(server.status, StatusCode::OK, "{}", server.json);
    assert_eq!(server.json["name"], "aurum");
    assert_eq!(
        server.json["extensions"],
        json!(["binary_tensor_data", "model_repository"])
    );
    assert!(server.json["version"].is_string());

    // Model metadata: the 20 features in input-schema order with their datatypes.
    let meta = get(&f.app, "/v2/models/credit", Some(&f.client)).await;
    assert_eq!(meta.status, StatusCode::OK, "{}", meta.json);
    assert_eq!(meta.json["name"], "credit");
    assert_eq!(meta.json["versions"], json!(["1"]));
    let inputs = meta.json["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 20);
    let columns: Vec<String> = csv::Reader::from_reader(GERMAN)
        .headers()
        .unwrap()
        .iter()
        .filter(|h| *h != "creditability")
        .map(String::from)
        .collect();
    let record = &applicants(1)[0];
    for (input, name) in inputs.iter().zip(&columns) {
        assert_eq!(input["name"], name.as_str(), "input-schema order");
        let expected = if record[name].is_i64() {
            "INT64"
        } else {
            "BYTES"
        };
        assert_eq!(input["datatype"], expected, "{input}");
        assert_eq!(input["shape"], json!([-1]));
    }
    assert_eq!(
        inputs.iter().filter(|i| i["datatype"] == "INT64").count(),
        7
    );
    assert_eq!(
        meta.json["outputs"],
        json!([{"name": "probability", "datatype": "FP64", "shape": [-1]},
               {"name": "label", "datatype": "BYTES", "shape": [-1]},
               {"name": "decision", "datatype": "BYTES", "shape": [-1]},
               {"name": "score", "datatype": "FP64", "shape": [-1]}])
    );
    let v1 = get(&f.app, "/v2/models/credit/versions/1", Some(&f.client)).await;
    assert_eq!(v1.json, meta.json);
    let missing = get(&f.app, "/v2/models/credit/versions/7", Some(&f.client)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.json["error"].is_string(), "{}", missing.json);

    // Readiness of models.
    let ready = get(&f.app, "/v2/models/credit/ready", Some(&f.client)).await;
    assert_eq!(ready.status, StatusCode::OK);
    let ready = get(
        &f.app,
        "/v2/models/credit/versions/1/ready",
        Some(&f.client),
    )
    .await;
    assert_eq!(ready.status, StatusCode::OK);
    let nope = get(&f.app, "/v2/models/nope/ready", Some(&f.client)).await;
    assert_eq!(nope.status, StatusCode::NOT_FOUND);
    assert!(
        nope.json["error"].as_str().unwrap().contains("nope"),
        "{}",
        nope.json
    );

    // Model repository extension.
    let index = post_json(&f.app, "/v2/repository/index", Some(&f.client), &json!({})).await;
    assert_eq!(index.status, StatusCode::OK, "{}", index.json);
    assert_eq!(
        index.json,
        json!([{"name": "credit", "version": "1", "state": "READY"}])
    );
    let empty_body = call(
        &f.app,
        Method::POST,
        "/v2/repository/index",
        Some(&f.client),
        Body::empty(),
        "application/json",
    )
    .await;
    assert_eq!(empty_body.json, index.json);
    let load = post_json(
        &f.app,
        "/v2/repository/models/credit/load",
        Some(&f.client),
        &json!({}),
    )
    .await;
    assert_eq!(load.status, StatusCode::OK);
    let load = post_json(
        &f.app,
        "/v2/repository/models/nope/load",
        Some(&f.client),
        &json!({}),
    )
    .await;
    assert_eq!(load.status, StatusCode::NOT_FOUND);
    let unload = post_json(
        &f.app,
        "/v2/repository/models/credit/unload",
        Some(&f.client),
        &json!({}),
    )
    .await;
    assert_eq!(unload.status, StatusCode::OK);
    assert_eq!(unload.json["unloaded"], false);

    // Keys: 401 in the protocol's error format, for metadata as for inference.
    let anon = get(&f.app, "/v2/models/credit", None).await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert!(
        anon.json["error"].as_str().unwrap().contains("API key"),
        "{}",
        anon.json
    );
    assert_eq!(anon.headers["www-authenticate"], "Bearer");
    let bad = get(&f.app, "/v2", Some("aurum_nope")).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.json["error"].is_string());
}

#[tokio::test]
async fn json_infer_matches_v1_exactly() {
    let f = trained().await;
    let records = applicants(5);
    let (probs, labels) = v1_predict(&f, &records).await;

    let mut inputs = feature_tensors(&records);
    // One tensor as [batch, 1] with nested data, as some clients send.
    inputs[1]["shape"] = json!([5, 1]);
    inputs[1]["data"] = Value::Array(
        inputs[1]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| json!([v]))
            .collect(),
    );
    let body = json!({"id": "req-7", "inputs": inputs});
    let r = post_json(&f.app, "/v2/models/credit/infer", Some(&f.client), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["model_name"], "credit");
    assert_eq!(r.json["model_version"], "1");
    assert_eq!(r.json["id"], "req-7");
    let p = output(&r.json, "probability");
    assert_eq!(p["datatype"], "FP64");
    assert_eq!(p["shape"], json!([5]));
    let got: Vec<f64> = p["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got, probs, "exactly the /v1 probabilities");
    let l = output(&r.json, "label");
    assert_eq!(l["datatype"], "BYTES");
    assert_eq!(l["data"], json!(labels));

    // Version path, requested outputs (only label), no id echoed when none was sent.
    let body = json!({"inputs": feature_tensors(&records), "outputs": [{"name": "label"}]});
    let r = post_json(
        &f.app,
        "/v2/models/credit/versions/1/infer",
        Some(&f.client),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["outputs"][0]["data"], json!(labels));
    assert!(r.json.get("id").is_none());

    // Numeric features as FP32 and FP64 score the same integers identically.
    let mut inputs = feature_tensors(&records);
    for (i, t) in inputs.iter_mut().enumerate() {
        if t["datatype"] == "INT64" {
            t["datatype"] = json!(if i % 2 == 0 { "FP64" } else { "FP32" });
        }
    }
    let r = post_json(
        &f.app,
        "/v2/models/credit/infer",
        Some(&f.client),
        &json!({"inputs": inputs}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let got: Vec<f64> = output(&r.json, "probability")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got, probs);

    // Audited like /v1 (buffered: on disk once the writer commits its next batch), with the
    // same input hash: the audited input is the records, whatever protocol or layout carried them.
    f.platform.shutdown().await;
    let predictions: Vec<_> = f
        .platform
        .audit_tail(50)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event == "prediction")
        .collect();
    assert_eq!(predictions.len(), 4);
    assert!(predictions.iter().all(|r| r.actor == "client"));
    let hashes: std::collections::BTreeSet<_> = predictions
        .iter()
        .map(|r| r.input_sha256.clone().unwrap())
        .collect();
    assert_eq!(hashes.len(), 1, "{hashes:?}");
}

#[tokio::test]
async fn binary_tensors_in_and_out() {
    let f = trained().await;
    let records = applicants(4);
    let (probs, labels) = v1_predict(&f, &records).await;

    // Binary inputs, probability as binary output, label as JSON.
    let (body, json_len) = binary_request(
        &records,
        json!({"outputs": [{"name": "probability", "parameters": {"binary_data": true}},
                           {"name": "label", "parameters": {"binary_data": false}}]}),
    );
    let r = raw_post(
        &f.app,
        "/v2/models/credit/infer",
        Some(&f.client),
        &[("inference-header-content-length", json_len.to_string())],
        body,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let header_len: usize = r.headers["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let head: Value = serde_json::from_slice(&r.body[..header_len]).unwrap();
    let p = output(&head, "probability");
    assert_eq!(p["parameters"]["binary_data_size"], 32);
    assert!(p.get("data").is_none());
    assert_eq!(fp64s(&r.body[header_len..]), probs);
    assert_eq!(output(&head, "label")["data"], json!(labels));

    // Request-wide binary_data_output with no outputs named: every output binary, in order.
    let (body, json_len) = binary_request(
        &records,
        json!({"parameters": {"binary_data_output": true}}),
    );
    let r = raw_post(
        &f.app,
        "/v2/models/credit/infer",
        Some(&f.client),
        &[("inference-header-content-length", json_len.to_string())],
        body,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let header_len: usize = r.headers["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let head: Value = serde_json::from_slice(&r.body[..header_len]).unwrap();
    let p_size = output(&head, "probability")["parameters"]["binary_data_size"]
        .as_u64()
        .unwrap() as usize;
    let l_size = output(&head, "label")["parameters"]["binary_data_size"]
        .as_u64()
        .unwrap() as usize;
    let d_size = output(&head, "decision")["parameters"]["binary_data_size"]
        .as_u64()
        .unwrap() as usize;
    let s_size = output(&head, "score")["parameters"]["binary_data_size"]
        .as_u64()
        .unwrap() as usize;
    let rest = &r.body[header_len..];
    assert_eq!(rest.len(), p_size + l_size + d_size + s_size);
    assert_eq!(fp64s(&rest[..p_size]), probs);
    assert_eq!(raw_strings(&rest[p_size..p_size + l_size]), labels);
    assert_eq!(s_size, 8 * labels.len());

    // Binary inputs without binary outputs answer plain JSON.
    let (body, json_len) = binary_request(&records, json!({}));
    let r = raw_post(
        &f.app,
        "/v2/models/credit/infer",
        Some(&f.client),
        &[("inference-header-content-length", json_len.to_string())],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("inference-header-content-length").is_none());
    let head: Value = serde_json::from_slice(&r.body).unwrap();
    let got: Vec<f64> = output(&head, "probability")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got, probs);
}

#[tokio::test]
async fn bad_inputs_are_400_with_an_error_message() {
    let f = trained().await;
    let records = applicants(2);
    let good = feature_tensors(&records);
    let with = |edit: &dyn Fn(&mut Vec<Value>)| {
        let mut inputs = good.clone();
        edit(&mut inputs);
        json!({ "inputs": inputs })
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "shape/data mismatch",
            with(&|i| i[0]["shape"] = json!([3])),
            "3 elements",
        ),
        (
            "unknown datatype",
            with(&|i| i[0]["datatype"] = json!("FP128")),
            "unknown datatype `FP128`",
        ),
        (
            "unknown tensor",
            with(&|i| {
                i.push(json!({"name": "bogus", "datatype": "FP64", "shape": [2], "data": [1, 2]}))
            }),
            "`bogus` is not an input",
        ),
        (
            "missing input",
            with(&|i| {
                i.retain(|t| t["name"] != "purpose");
            }),
            "missing: purpose (BYTES)",
        ),
        (
            "wrong datatype",
            with(&|i| {
                *at(i, "purpose") =
                    json!({"name": "purpose", "datatype": "INT64", "shape": [2], "data": [1, 2]})
            }),
            "must be BYTES",
        ),
        (
            "data kind vs datatype",
            with(&|i| at(i, "credit_amount")["datatype"] = json!("BYTES")),
            "holds numbers",
        ),
        (
            "batch mismatch",
            with(&|i| {
                i[0]["shape"] = json!([1]);
                let first = i[0]["data"][0].clone();
                i[0]["data"] = json!([first]);
            }),
            "same batch size",
        ),
        (
            "integer out of range",
            with(&|i| at(i, "credit_amount")["datatype"] = json!("INT8")),
            "outside the range",
        ),
        (
            "beyond half precision",
            with(&|i| {
                let t = at(i, "credit_amount");
                t["datatype"] = json!("FP16");
                t["data"] = json!([1e10, 1]);
            }),
            "finite",
        ),
        (
            "matrix needs numeric model",
            json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 20], "data": vec![1.0; 20]}]}),
            "send one tensor per feature",
        ),
        ("no inputs", json!({"inputs": []}), "no inputs"),
        (
            "unknown output",
            json!({"inputs": good.clone(), "outputs": [{"name": "reasons"}]}),
            "unknown output `reasons`",
        ),
        (
            "missing field",
            json!({"inputs": [{"name": "x", "datatype": "FP64"}]}),
            "missing field `shape`",
        ),
        (
            "no data",
            with(&|i| {
                i[0].as_object_mut().unwrap().remove("data");
            }),
            "has no `data`",
        ),
        (
            "binary size without header",
            with(&|i| {
                i[0]["parameters"] = json!({"binary_data_size": 8});
                i[0].as_object_mut().unwrap().remove("data");
            }),
            "no inference-header-content-length",
        ),
    ];
    for (what, body, needle) in cases {
        let r = post_json(&f.app, "/v2/models/credit/infer", Some(&f.client), &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.json);
        let msg = r.json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {}", r.json));
        assert!(msg.contains(needle), "{what}: {msg}");
    }
    let r = call(
        &f.app,
        Method::POST,
        "/v2/models/credit/infer",
        Some(&f.client),
        Body::from("{not json"),
        "application/json",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json["error"]
            .as_str()
            .unwrap()
            .contains("invalid inference request"),
        "{}",
        r.json
    );

    // Binary size mismatches: more declared than sent, and bytes left over.
    let (mut body, json_len) = binary_request(&records, json!({}));
    body.pop();
    let r = raw_post(
        &f.app,
        "/v2/models/credit/infer",
        Some(&f.client),
        &[("inference-header-content-length", json_len.to_string())],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let err: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("binary_data_size"),
        "{err}"
    );
    let (mut body, json_len) = binary_request(&records, json!({}));
    body.extend_from_slice(&[0, 0, 0]);
    let r = raw_post(
        &f.app,
        "/v2/models/credit/infer",
        Some(&f.client),
        &[("inference-header-content-length", json_len.to_string())],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let err: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("add up to"),
        "{err}"
    );
    // A fixed-size tensor whose raw bytes do not fit its shape.
    let header = json!({"inputs": [{"name": "duration_in_month", "datatype": "INT64", "shape": [2], "parameters": {"binary_data_size": 12}}]});
    let mut body = serde_json::to_vec(&header).unwrap();
    let json_len = body.len();
    body.extend_from_slice(&[0; 12]);
    let r = raw_post(
        &f.app,
        "/v2/models/credit/infer",
        Some(&f.client),
        &[("inference-header-content-length", json_len.to_string())],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let err: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("take 16 bytes"),
        "{err}"
    );

    // Over the body limit: 413 in the protocol's format.
    let big = vec![b' '; 20 * 1024 * 1024];
    let r = raw_post(&f.app, "/v2/models/credit/infer", Some(&f.client), &[], big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let err: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(err["error"].as_str().unwrap().contains("limit"), "{err}");

    // Auth and addressing.
    let body = json!({"inputs": good.clone()});
    let r = post_json(&f.app, "/v2/models/credit/infer", None, &body).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json["error"].is_string(), "{}", r.json);
    let r = post_json(&f.app, "/v2/models/credit/infer", Some(&f.analyst), &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.json["error"].as_str().unwrap().contains("role"),
        "{}",
        r.json
    );
    let r = post_json(&f.app, "/v2/models/nope/infer", Some(&f.client), &body).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json["error"].is_string(), "{}", r.json);
    let r = post_json(
        &f.app,
        "/v2/models/credit/versions/9/infer",
        Some(&f.client),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// A model whose features are all numeric accepts one `[batch, n_features]` matrix.
#[tokio::test]
async fn matrix_tensor_for_an_all_numeric_model() {
    let f = fixture().await;
    let numeric = [
        "duration_in_month",
        "credit_amount",
        "installment_rate_in_percentage_of_disposable_income",
        "present_residence_since",
        "age_in_years",
        "number_of_existing_credits_at_this_bank",
        "number_of_people_being_liable_to_provide_maintenance_for",
    ];
    let mut rdr = csv::Reader::from_reader(GERMAN);
    let headers = rdr.headers().unwrap().clone();
    let keep: Vec<usize> = numeric
        .iter()
        .chain(["creditability"].iter())
        .map(|c| {
            headers
                .iter()
                .position(|h| h == *c)
                .unwrap_or_else(|| panic!("{c}"))
        })
        .collect();
    let mut csv_out = csv::Writer::from_writer(Vec::new());
    csv_out
        .write_record(keep.iter().map(|&i| &headers[i]))
        .unwrap();
    for row in rdr.records() {
        let row = row.unwrap();
        csv_out.write_record(keep.iter().map(|&i| &row[i])).unwrap();
    }
    let bytes = csv_out.into_inner().unwrap();
    let r = call(
        &f.app,
        Method::POST,
        "/v1/datasets?name=numeric",
        Some(&f.analyst),
        Body::from(bytes),
        "text/csv",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let job = post_json(
        &f.app,
        "/v1/training-jobs",
        Some(&f.analyst),
        &json!({"dataset": "numeric", "target": "creditability", "kind": "logistic", "model": "num", "alias": "champion"}),
    )
    .await;
    assert_eq!(job.status, StatusCode::ACCEPTED, "{}", job.json);
    let id = job.json["id"].as_str().unwrap().to_string();
    for _ in 0..600 {
        let j = get(&f.app, &format!("/v1/training-jobs/{id}"), Some(&f.analyst))
            .await
            .json;
        if j["state"] == "succeeded" {
            break;
        }
        assert!(j["state"] == "queued" || j["state"] == "running", "{j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let records: Vec<Value> = applicants(3)
        .into_iter()
        .map(|r| {
            Value::Object(
                numeric
                    .iter()
                    .map(|c| (c.to_string(), r[*c].clone()))
                    .collect(),
            )
        })
        .collect();
    let v1 = post_json(
        &f.app,
        "/v1/models/num/predict",
        Some(&f.client),
        &json!({"records": records}),
    )
    .await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.json);
    let probs: Vec<f64> = v1.json["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .collect();
    let matrix: Vec<Vec<f64>> = records
        .iter()
        .map(|r| numeric.iter().map(|c| r[*c].as_f64().unwrap()).collect())
        .collect();
    let body =
        json!({"inputs": [{"name": "input", "datatype": "FP64", "shape": [3, 7], "data": matrix}]});
    let r = post_json(&f.app, "/v2/models/num/infer", Some(&f.client), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let got: Vec<f64> = output(&r.json, "probability")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got, probs);
    // Wrong width, wrong type.
    let body = json!({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}]});
    let r = post_json(&f.app, "/v2/models/num/infer", Some(&f.client), &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json["error"].as_str().unwrap().contains("6 columns"),
        "{}",
        r.json
    );
    let body = json!({"inputs": [{"name": "input", "datatype": "INT64", "shape": [1, 7], "data": [1, 2, 3, 4, 5, 6, 7]}]});
    let r = post_json(&f.app, "/v2/models/num/infer", Some(&f.client), &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json["error"].as_str().unwrap().contains("FP32 or FP64"),
        "{}",
        r.json
    );
}

// ----- gRPC -----

async fn start_grpc(
    state: AppState,
) -> (
    GrpcInferenceServiceClient<Channel>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(aurum_server::grpc::serve(listener, state, async move {
        let _ = rx.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = GrpcInferenceServiceClient::new(channel).max_decoding_message_size(64 << 20);
    (client, tx, server)
}

fn with_key<T>(msg: T, key: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(k) = key {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {k}").parse().unwrap());
    }
    req
}

/// Per-feature gRPC tensors with typed contents (INT64 / BYTES).
fn typed_inputs(records: &[serde_json::Map<String, Value>]) -> Vec<InferInputTensor> {
    records[0]
        .keys()
        .map(|k| {
            let numeric = records[0][k].is_i64();
            let contents = if numeric {
                InferTensorContents {
                    int64_contents: records.iter().map(|r| r[k].as_i64().unwrap()).collect(),
                    ..Default::default()
                }
            } else {
                InferTensorContents {
                    bytes_contents: records
                        .iter()
                        .map(|r| r[k].as_str().unwrap().as_bytes().to_vec())
                        .collect(),
                    ..Default::default()
                }
            };
            InferInputTensor {
                name: k.clone(),
                datatype: if numeric { "INT64" } else { "BYTES" }.into(),
                shape: vec![records.len() as i64],
                parameters: Default::default(),
                contents: Some(contents),
            }
        })
        .collect()
}

/// The same tensors for `raw_input_contents`.
fn raw_inputs(
    records: &[serde_json::Map<String, Value>],
) -> (Vec<InferInputTensor>, Vec<prost::bytes::Bytes>) {
    let mut tensors = Vec::new();
    let mut raw = Vec::new();
    for k in records[0].keys() {
        let (datatype, bytes) = raw_column(records, k);
        tensors.push(InferInputTensor {
            name: k.clone(),
            datatype: datatype.into(),
            shape: vec![records.len() as i64, 1],
            parameters: Default::default(),
            contents: None,
        });
        raw.push(bytes.into());
    }
    (tensors, raw)
}

fn infer_request(
    inputs: Vec<InferInputTensor>,
    raw: Vec<prost::bytes::Bytes>,
) -> ModelInferRequest {
    ModelInferRequest {
        model_name: "credit".into(),
        model_version: String::new(),
        id: "g-1".into(),
        parameters: Default::default(),
        inputs,
        outputs: Vec::new(),
        raw_input_contents: raw,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_infer_matches_v1_and_maps_errors() {
    let f = trained().await;
    let records = applicants(3);
    let (probs, labels) = v1_predict(&f, &records).await;
    let (mut client, stop, server) = start_grpc(AppState::new(f.platform.clone())).await;

    // Liveness is open; metadata lists the features.
    assert!(
        client
            .server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    let meta = client
        .model_metadata(with_key(
            ModelMetadataRequest {
                name: "credit".into(),
                version: String::new(),
            },
            Some(&f.client),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.inputs.len(), 20);
    assert_eq!(meta.versions, ["1"]);

    // Typed contents in, typed contents out.
    let resp = client
        .model_infer(with_key(
            infer_request(typed_inputs(&records), Vec::new()),
            Some(&f.client),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.model_name, "credit");
    assert_eq!(resp.model_version, "1");
    assert_eq!(resp.id, "g-1");
    assert!(resp.raw_output_contents.is_empty());
    let p = resp
        .outputs
        .iter()
        .find(|o| o.name == "probability")
        .unwrap();
    assert_eq!(p.datatype, "FP64");
    assert_eq!(p.shape, [3]);
    assert_eq!(p.contents.as_ref().unwrap().fp64_contents, probs);
    let l = resp.outputs.iter().find(|o| o.name == "label").unwrap();
    let got: Vec<String> = l
        .contents
        .as_ref()
        .unwrap()
        .bytes_contents
        .iter()
        .map(|b| String::from_utf8(b.clone()).unwrap())
        .collect();
    assert_eq!(got, labels);

    // Raw contents in, raw contents out (what tritonclient sends and reads), requested output.
    let (tensors, raw) = raw_inputs(&records);
    let mut req = infer_request(tensors, raw);
    req.outputs = vec![InferRequestedOutputTensor {
        name: "probability".into(),
        parameters: Default::default(),
    }];
    let resp = client
        .model_infer(with_key(req, Some(&f.client)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.outputs.len(), 1);
    assert!(resp.outputs[0].contents.is_none());
    assert_eq!(fp64s(&resp.raw_output_contents[0]), probs);
    let (tensors, raw) = raw_inputs(&records);
    let resp = client
        .model_infer(with_key(infer_request(tensors, raw), Some(&f.client)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(raw_strings(&resp.raw_output_contents[1]), labels);

    // Bad input → InvalidArgument; keys and roles; unknown model.
    let bad: Vec<(&str, ModelInferRequest)> = vec![
        ("shape mismatch", {
            let mut r = infer_request(typed_inputs(&records), Vec::new());
            r.inputs[0].shape = vec![4];
            r
        }),
        ("unknown datatype", {
            let mut r = infer_request(typed_inputs(&records), Vec::new());
            r.inputs[0].datatype = "FP128".into();
            r
        }),
        ("unknown tensor", {
            let mut r = infer_request(typed_inputs(&records), Vec::new());
            r.inputs[0].name = "bogus".into();
            r
        }),
        ("missing input", {
            let mut r = infer_request(typed_inputs(&records), Vec::new());
            r.inputs.retain(|t| t.name != "purpose");
            r
        }),
        ("wrong datatype", {
            let mut r = infer_request(typed_inputs(&records), Vec::new());
            let t = r.inputs.iter_mut().find(|t| t.name == "purpose").unwrap();
            t.datatype = "INT64".into();
            t.contents = Some(InferTensorContents {
                int64_contents: vec![1, 2, 3],
                ..Default::default()
            });
            r
        }),
        ("raw size mismatch", {
            let (t, mut raw) = raw_inputs(&records);
            raw[1] = raw[1].slice(1..);
            infer_request(t, raw)
        }),
        ("raw count mismatch", {
            let (t, mut raw) = raw_inputs(&records);
            raw.pop();
            infer_request(t, raw)
        }),
        ("raw and typed", {
            let (mut t, raw) = raw_inputs(&records);
            t[0].contents = Some(InferTensorContents::default());
            infer_request(t, raw)
        }),
        ("unknown output", {
            let mut r = infer_request(typed_inputs(&records), Vec::new());
            r.outputs = vec![InferRequestedOutputTensor {
                name: "reasons".into(),
                parameters: Default::default(),
            }];
            r
        }),
    ];
    for (what, req) in bad {
        let status = client
            .model_infer(with_key(req, Some(&f.client)))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status:?}"
        );
        assert!(!status.message().is_empty(), "{what}");
    }
    let anon = client
        .model_infer(with_key(
            infer_request(typed_inputs(&records), Vec::new()),
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(anon.code(), tonic::Code::Unauthenticated, "{anon:?}");
    let wrong = client
        .model_infer(with_key(
            infer_request(typed_inputs(&records), Vec::new()),
            Some("aurum_bad"),
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    let analyst = client
        .model_infer(with_key(
            infer_request(typed_inputs(&records), Vec::new()),
            Some(&f.analyst),
        ))
        .await
        .unwrap_err();
    assert_eq!(analyst.code(), tonic::Code::PermissionDenied);
    let mut req = infer_request(typed_inputs(&records), Vec::new());
    req.model_name = "nope".into();
    let missing = client
        .model_infer(with_key(req, Some(&f.client)))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert_eq!(
        missing.metadata().get("aurum-error-code").unwrap(),
        "model_not_found"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_message_over_the_body_limit_is_resource_exhausted() {
    let f = fixture_with(|c| c.server.body_limit_bytes = 64 * 1024).await;
    let (mut client, stop, server) = start_grpc(AppState::new(f.platform.clone())).await;
    let mut req = infer_request(Vec::new(), vec![vec![0u8; 100 * 1024].into()]);
    req.model_name = "credit".into();
    let status = client
        .model_infer(with_key(req, Some(&f.client)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// `aurum_server::serve` starts gRPC beside HTTP when `server.grpc_listen` is set, and stops both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_and_stops_grpc_with_http() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let f = fixture_with(|c| c.server.grpc_listen = Some(port)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(aurum_server::serve(
        listener,
        AppState::new(f.platform.clone()),
        async move {
            let _ = rx.await;
        },
    ));
    let mut connected = None;
    for _ in 0..100 {
        if let Ok(c) = Channel::from_shared(format!("http://{port}"))
            .unwrap()
            .connect()
            .await
        {
            connected = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut client = GrpcInferenceServiceClient::new(connected.expect("gRPC server up"));
    assert!(
        client
            .server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    drop(client);
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(port).await.is_err(),
        "the gRPC listener is closed"
    );
}

/// Under `/v2`, unknown routes, wrong methods and bad path parameters answer in the protocol's
/// `{"error": ...}` shape, and a repeated key in an inference request is 400 `duplicate_key`.
#[tokio::test]
async fn v2_rejections_use_the_protocol_shape_and_duplicate_keys_are_refused() {
    let f = trained().await;
    let r = get(&f.app, "/v2/nothing", Some(&f.client)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    assert_eq!(r.json["code"], "route_not_found");
    assert!(r.json["error"].is_string(), "{}", r.json);
    let r = get(&f.app, "/v2/models/credit/infer", Some(&f.client)).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.json);
    assert_eq!(r.json["code"], "method_not_allowed");
    assert!(r.json["error"].is_string(), "{}", r.json);
    assert_eq!(r.headers["allow"], "POST");
    let r = get(&f.app, "/v2/models/%FF", Some(&f.client)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["code"], "invalid_path");
    assert!(r.json["error"].is_string(), "{}", r.json);
    // Version 0 is no version, as on /v1 (it was a 404).
    let r = get(&f.app, "/v2/models/credit/versions/0", Some(&f.client)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["code"], "invalid_version", "{}", r.json);

    let records = applicants(1);
    let inputs = feature_tensors(&records);
    let good = json!({"inputs": inputs}).to_string();
    let ok = raw_post(
        &f.app,
        "/v2/models/credit/infer",
        Some(&f.client),
        &[],
        good.into(),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    // `datatype` twice in the first input: the second would win without the check.
    let first = inputs[0].to_string();
    let repeated = first.replacen("\"datatype\"", "\"datatype\":\"FP64\",\"datatype\"", 1);
    let mut body = json!({"inputs": inputs}).to_string();
    body = body.replacen(&first, &repeated, 1);
    let r = raw_post(
        &f.app,
        "/v2/models/credit/infer",
        Some(&f.client),
        &[],
        body.into(),
    )
    .await;
    let j: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{j}");
    assert_eq!(j["code"], "duplicate_key", "{j}");
    assert!(
        j["error"].as_str().unwrap().contains("inputs[0].datatype"),
        "{j}"
    );
    let body = format!(r#"{{"id": "a", "inputs": {}, "id": "b"}}"#, json!(inputs));
    let r = raw_post(
        &f.app,
        "/v2/models/credit/infer",
        Some(&f.client),
        &[],
        body.into(),
    )
    .await;
    let j: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(j["code"], "duplicate_key", "{j}");
    // A body that is not an object is refused (an array was read by position), and serde's
    // Rust type names are spelled in JSON terms.
    for body in [
        json!([inputs]).to_string(),
        "\"x\"".to_string(),
        json!({"inputs": [{"name": "a", "shape": [1], "datatype": "FP32",
                           "parameters": {"binary_data_size": -1}, "data": [1]}]})
        .to_string(),
    ] {
        let r = raw_post(
            &f.app,
            "/v2/models/credit/infer",
            Some(&f.client),
            &[],
            body.clone().into(),
        )
        .await;
        let j: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {j}");
        let text = j["error"].as_str().unwrap();
        for rust in ["struct ", "u64", "InferRequest"] {
            assert!(!text.contains(rust), "{body}: {text}");
        }
    }
}

/// A version whose artifact fails its SHA-256 check is reported not ready everywhere the
/// model status is read: `/v2/models/{name}/ready`, the repository index and `/v1` version.
#[tokio::test]
async fn a_corrupt_artifact_is_reported_not_ready() {
    let f = trained().await;
    let ready = get(
        &f.app,
        "/v2/models/credit/versions/1/ready",
        Some(&f.client),
    )
    .await;
    assert_eq!(ready.status, StatusCode::OK);
    // Flip one byte of version 1's stored artifact (after it was loaded and served).
    f.damage_artifact(|_| true).await;

    for uri in [
        "/v2/models/credit/ready",
        "/v2/models/credit/versions/1/ready",
    ] {
        let r = get(&f.app, uri, Some(&f.client)).await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{uri}: {}",
            r.json
        );
        assert_eq!(r.json["code"], "unavailable", "{uri}");
        assert!(
            r.json["error"].as_str().unwrap().contains("SHA-256"),
            "{}",
            r.json
        );
    }
    let index = raw_post(&f.app, "/v2/repository/index", Some(&f.client), &[], vec![]).await;
    let j: Value = serde_json::from_slice(&index.body).unwrap();
    assert_eq!(j[0]["state"], "UNAVAILABLE", "{j}");
    assert!(j[0]["reason"].as_str().unwrap().contains("SHA-256"), "{j}");
    let ready_only = raw_post(
        &f.app,
        "/v2/repository/index",
        Some(&f.client),
        &[],
        br#"{"ready": true}"#.to_vec(),
    )
    .await;
    let j: Value = serde_json::from_slice(&ready_only.body).unwrap();
    assert_eq!(j, json!([]));
    let v = get(&f.app, "/v1/models/credit/versions/1", Some(&f.client)).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.json);
    assert_eq!(v.json["status"], "failed", "{}", v.json);
    assert!(
        v.json["status_reason"]
            .as_str()
            .unwrap()
            .contains("SHA-256")
    );
}

/// Finance-system spellings read the same on every path: BYTES tensor cells (`NA`, `$1,169.00`,
/// a `dd-Mon-yy` date, a day-first date in the column's imported format) score exactly as the
/// same strings sent to `/v1` and as the typed values the CSV importer reads from those cells.
#[tokio::test]
async fn bytes_cells_parse_like_v1_strings_and_csv_import() {
    let f = fixture().await;
    let start = chrono::NaiveDate::from_ymd_opt(1995, 1, 1).unwrap();
    let mut csv = String::from("amount,opened,settled,grade,default\n");
    for i in 0..300i64 {
        let amount = if i % 17 == 0 {
            "NA".to_string()
        } else {
            format!("\"${},{:03}.00\"", 1 + i % 9, (i * 37) % 1000)
        };
        let opened = start + chrono::Duration::days(i * 11);
        let settled = opened + chrono::Duration::days(30 + i % 50);
        csv.push_str(&format!(
            "{amount},{},{},{},{}\n",
            opened.format("%d-%b-%y"),
            settled.format("%d.%m.%Y"),
            ["A", "B", "C"][(i % 3) as usize],
            u8::from((i * 7919) % 100 < 15 + i / 10)
        ));
    }
    let import = |query: &str| {
        let (uri, body) = (format!("/v1/datasets?name=loans&{query}"), csv.clone());
        let (app, key) = (f.app.clone(), f.analyst.clone());
        async move {
            call(
                &app,
                Method::POST,
                &uri,
                Some(&key),
                Body::from(body),
                "text/csv",
            )
            .await
        }
    };
    // Day-first dates need the column's format; an unusable one is a 400 naming the column.
    let r = import("date_format=settled:%25Q").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["code"], "invalid_date_format", "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap().contains("settled"),
        "{}",
        r.json
    );
    let r = import("date_format=settled").await;
    assert_eq!(r.json["code"], "invalid_date_format", "{}", r.json);
    let r = import("date_format=settled:%25d.%25m.%25Y").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let job = train_with(
        &f,
        &json!({"dataset": "loans", "target": "default", "kind": "logistic", "model": "loans", "alias": "champion"}),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let meta = get(&f.app, "/v2/models/loans", Some(&f.client)).await;
    assert_eq!(meta.status, StatusCode::OK, "{}", meta.json);

    let cells = [
        ("amount", ["$1,169.00", "NA"]),
        ("opened", ["28-Feb-97", "3-Mar-04"]),
        ("settled", ["28.02.1997", "03.04.2004"]),
        ("grade", ["A", "NA"]),
    ];
    let probabilities = |r: &Resp, at: &str| -> Vec<f64> {
        assert_eq!(r.status, StatusCode::OK, "{at}: {}", r.json);
        let data = if at == "oip" {
            output(&r.json, "probability")["data"].clone()
        } else {
            Value::Array(
                r.json["predictions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["probability"].clone())
                    .collect(),
            )
        };
        data.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let strings: Vec<Value> = (0..2)
        .map(|i| {
            Value::Object(
                cells
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v[i])))
                    .collect(),
            )
        })
        .collect();
    let v1 = post_json(
        &f.app,
        "/v1/models/loans/predict",
        Some(&f.client),
        &json!({ "records": strings }),
    )
    .await;
    let v1 = probabilities(&v1, "v1");

    // What the CSV importer reads from the same cells: 1169, null, ISO dates (a JSON string for
    // `settled` is read with its format only, so it is sent as the file spells it).
    let typed = json!({"records": [
        {"amount": 1169.0, "opened": "1997-02-28", "settled": "28.02.1997", "grade": "A"},
        {"amount": null, "opened": "2004-03-03", "settled": "03.04.2004", "grade": null},
    ]});
    let csv_typed = post_json(&f.app, "/v1/models/loans/predict", Some(&f.client), &typed).await;
    assert_eq!(probabilities(&csv_typed, "typed"), v1);
    let iso = json!({"records": [{"amount": 1, "opened": "1997-02-28", "settled": "1997-02-28", "grade": "A"}]});
    let r = post_json(&f.app, "/v1/models/loans/predict", Some(&f.client), &iso).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap().contains("%d.%m.%Y"),
        "{}",
        r.json
    );

    let inputs: Vec<Value> = cells
        .iter()
        .map(|(k, v)| json!({"name": k, "datatype": "BYTES", "shape": [2], "data": v}))
        .collect();
    let oip = post_json(
        &f.app,
        "/v2/models/loans/infer",
        Some(&f.client),
        &json!({ "inputs": inputs }),
    )
    .await;
    assert_eq!(
        probabilities(&oip, "oip"),
        v1,
        "BYTES cells score as /v1 strings"
    );
    assert_ne!(v1[0], v1[1]);
}

/// A free-text column trained through the text step is sent as text on every protocol: `/v1`
/// JSON strings and OIP `BYTES` cells give the same probabilities, and the job names a bad
/// `text_columns` entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_text_feature_scores_the_same_over_v1_and_oip() {
    let f = fixture().await;
    let notes = [
        "late payments on two cards",
        "steady job, paid off car loan",
        "missed payment last month",
        "first home, stable income",
        "collections account, late rent",
        "long employment, no debt",
    ];
    let mut csv = String::from("note,amount,default\n");
    for i in 0..400usize {
        let note = notes[(i * 7) % notes.len()];
        let risky =
            note.contains("late") || note.contains("missed") || note.contains("collections");
        let amount = 1_000 + (i * 373) % 9_000;
        let default = if risky {
            (i * 31) % 10 < 6
        } else {
            (i * 31) % 10 < 1
        };
        csv.push_str(&format!(
            "\"{note} (ref {i})\",{amount},{}\n",
            u8::from(default)
        ));
    }
    let r = call(
        &f.app,
        Method::POST,
        "/v1/datasets?name=notes",
        Some(&f.analyst),
        Body::from(csv),
        "text/csv",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let r = post_json(
        &f.app,
        "/v1/training-jobs",
        Some(&f.analyst),
        &json!({"dataset": "notes", "target": "default", "kind": "logistic", "model": "notes", "text_columns": ["nope"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["details"]["field"], "text_columns", "{}", r.json);
    let job = train_with(
        &f,
        &json!({"dataset": "notes", "target": "default", "kind": "gbdt", "model": "notes",
                "alias": "champion", "text_columns": ["note"], "text_buckets": 32}),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let meta = get(&f.app, "/v2/models/notes", Some(&f.client)).await;
    let inputs = meta.json["inputs"].as_array().unwrap();
    let note = inputs.iter().find(|i| i["name"] == "note").unwrap();
    assert_eq!(note["datatype"], "BYTES", "{}", meta.json);

    let cells = ["missed payment, late fees", "stable income and no debt"];
    let v1 = post_json(
        &f.app,
        "/v1/models/notes/predict?explain=true",
        Some(&f.client),
        &json!({"records": [{"note": cells[0], "amount": 5000}, {"note": cells[1], "amount": 5000}]}),
    )
    .await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.json);
    let preds = v1.json["predictions"].as_array().unwrap();
    let p: Vec<f64> = preds
        .iter()
        .map(|x| x["probability"].as_f64().unwrap())
        .collect();
    assert!(p[0] > p[1] + 0.1, "{p:?}");
    let text = serde_json::to_string(&v1.json).unwrap();
    assert!(!text.contains("__tfidf"), "{text}");
    let oip = post_json(
        &f.app,
        "/v2/models/notes/infer",
        Some(&f.client),
        &json!({"inputs": [
            {"name": "note", "datatype": "BYTES", "shape": [2], "data": cells},
            {"name": "amount", "datatype": "FP64", "shape": [2], "data": [5000.0, 5000.0]},
        ]}),
    )
    .await;
    assert_eq!(oip.status, StatusCode::OK, "{}", oip.json);
    let q: Vec<f64> = output(&oip.json, "probability")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(p, q);
}

/// A model of another task answers its own outputs on every protocol, the same as `/v1`: an
/// isolation forest gives `score` (FP64) and `anomalous` (BOOL) over OIP REST JSON, REST binary
/// outputs, gRPC typed and gRPC raw contents; a binary model's output is refused naming the
/// forest's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anomaly_model_answers_its_outputs_on_every_protocol() {
    let f = trained().await;
    let job = train_with(
        &f,
        &json!({"dataset": "german", "target": "creditability", "kind": "isolation_forest",
                "model": "iso", "alias": "champion"}),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let meta = get(&f.app, "/v2/models/iso", Some(&f.client)).await;
    assert_eq!(meta.status, StatusCode::OK, "{}", meta.json);
    assert_eq!(
        meta.json["outputs"],
        json!([{"name": "score", "datatype": "FP64", "shape": [-1]},
               {"name": "anomalous", "datatype": "BOOL", "shape": [-1]}]),
        "{}",
        meta.json
    );
    let inputs: Vec<String> = meta.json["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    let mut records = applicants(40);
    for r in &mut records {
        r.retain(|k, _| inputs.contains(k));
    }
    let v1 = post_json(
        &f.app,
        "/v1/models/iso/predict",
        Some(&f.client),
        &json!({ "records": records }),
    )
    .await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.json);
    let outs = v1.json["outputs"].as_array().unwrap();
    let scores: Vec<f64> = outs.iter().map(|o| o["score"].as_f64().unwrap()).collect();
    let flags: Vec<bool> = outs
        .iter()
        .map(|o| o["anomalous"].as_bool().unwrap())
        .collect();

    let oip = post_json(
        &f.app,
        "/v2/models/iso/infer",
        Some(&f.client),
        &json!({ "inputs": feature_tensors(&records) }),
    )
    .await;
    assert_eq!(oip.status, StatusCode::OK, "{}", oip.json);
    let got: Vec<f64> = output(&oip.json, "score")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got, scores);
    assert_eq!(output(&oip.json, "anomalous")["data"], json!(flags));
    assert_eq!(output(&oip.json, "anomalous")["datatype"], "BOOL");

    let wrong = post_json(
        &f.app,
        "/v2/models/iso/infer",
        Some(&f.client),
        &json!({ "inputs": feature_tensors(&records), "outputs": [{"name": "probability"}] }),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.json);
    let message = wrong.json["error"].as_str().unwrap_or_default();
    assert!(message.contains("score, anomalous"), "{}", wrong.json);

    // Binary outputs: the JSON header, then the FP64 and BOOL data.
    let body = serde_json::to_vec(&json!({
        "inputs": feature_tensors(&records),
        "parameters": {"binary_data_output": true},
    }))
    .unwrap();
    let r = raw_post(&f.app, "/v2/models/iso/infer", Some(&f.client), &[], body).await;
    assert_eq!(r.status, StatusCode::OK);
    let header_len: usize = r.headers["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let data = &r.body[header_len..];
    assert_eq!(fp64s(&data[..scores.len() * 8]), scores);
    let bools: Vec<bool> = data[scores.len() * 8..].iter().map(|b| *b == 1).collect();
    assert_eq!(bools, flags);

    let (mut client, stop, server) = start_grpc(AppState::new(f.platform.clone())).await;
    let mut typed = infer_request(typed_inputs(&records), Vec::new());
    typed.model_name = "iso".into();
    let resp = client
        .model_infer(with_key(typed, Some(&f.client)))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = resp.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["score", "anomalous"]);
    let contents = |i: usize| resp.outputs[i].contents.clone().unwrap();
    assert_eq!(contents(0).fp64_contents, scores);
    assert_eq!(contents(1).bool_contents, flags);
    let (tensors, raw) = raw_inputs(&records);
    let mut raw_request = infer_request(tensors, raw);
    raw_request.model_name = "iso".into();
    let resp = client
        .model_infer(with_key(raw_request, Some(&f.client)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fp64s(&resp.raw_output_contents[0]), scores);
    let raw_flags: Vec<bool> = resp.raw_output_contents[1]
        .iter()
        .map(|b| *b == 1)
        .collect();
    assert_eq!(raw_flags, flags);
    let _ = stop.send(());
    let _ = server.await;
}

/// A key scoped to other models is refused over gRPC as over REST: `PermissionDenied` naming the
/// model, for metadata and inference alike; the same key's in-scope calls work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_a_key_outside_its_scope() {
    let f = trained().await;
    let key = |scopes: &[&str], name: &str| {
        let platform = f.platform.clone();
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let name = name.to_string();
        async move {
            let policy = aurum_service::KeyPolicy {
                scopes,
                ..Default::default()
            };
            platform
                .create_key_with_policy(
                    &aurum_service::CallContext::cli(),
                    &name,
                    aurum_service::Role::Client,
                    policy,
                )
                .await
                .unwrap()
                .1
        }
    };
    let outside = key(&["fraud"], "grpc-fraud").await;
    let inside = key(&["credit"], "grpc-credit").await;
    let (mut client, stop, server) = start_grpc(AppState::new(f.platform.clone())).await;
    let meta = |k: &str| {
        with_key(
            ModelMetadataRequest {
                name: "credit".into(),
                version: String::new(),
            },
            Some(k),
        )
    };
    let status = client.model_metadata(meta(&outside)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("credit"), "{status:?}");
    let records = applicants(1);
    let mut req = infer_request(typed_inputs(&records), Vec::new());
    req.model_name = "credit".into();
    let status = client
        .model_infer(with_key(req.clone(), Some(&outside)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    client.model_metadata(meta(&inside)).await.unwrap();
    client
        .model_infer(with_key(req, Some(&inside)))
        .await
        .unwrap();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// An archived version makes no more decisions on any route (its OIP readiness already said
/// `archived`, while pinned `/v1` and `/v2` calls and batch jobs were still answered), but
/// keeps its record and reports; the champion is unaffected.
#[tokio::test]
async fn an_archived_version_scores_on_no_route_but_keeps_its_records() {
    let f = trained().await;
    let job = train(&f, "credit", json!({}), None).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let records = applicants(1);
    let v1_body = json!({"record": records[0]});
    let oip_body = json!({"inputs": feature_tensors(&records)});
    let r = post_json(
        &f.app,
        "/v1/models/credit/versions/2/predict",
        Some(&f.client),
        &v1_body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let archive = call(
        &f.app,
        Method::POST,
        "/v1/models/credit/versions/2/archive",
        Some(&f.admin),
        Body::empty(),
        "",
    )
    .await;
    assert!(archive.status.is_success(), "{}", archive.json);
    for (uri, body) in [
        ("/v1/models/credit/versions/2/predict", &v1_body),
        ("/v2/models/credit/versions/2/infer", &oip_body),
    ] {
        let r = post_json(&f.app, uri, Some(&f.client), body).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{uri}: {}", r.json);
        assert_eq!(r.json["code"], "version_archived", "{uri}: {}", r.json);
    }
    let batch = post_json(
        &f.app,
        "/v1/batch-jobs",
        Some(&f.admin),
        &json!({"model": "credit", "version": 2, "dataset": "german"}),
    )
    .await;
    assert_eq!(batch.status, StatusCode::CONFLICT, "{}", batch.json);
    assert_eq!(batch.json["code"], "version_archived", "{}", batch.json);
    // Its record and report stay readable; the champion (version 1) still answers.
    let v2 = get(&f.app, "/v1/models/credit/versions/2", Some(&f.client)).await;
    assert_eq!(v2.status, StatusCode::OK, "{}", v2.json);
    let report = get(
        &f.app,
        "/v1/models/credit/versions/2/report?format=json",
        Some(&f.client),
    )
    .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.json);
    let r = post_json(
        &f.app,
        "/v1/models/credit/predict",
        Some(&f.client),
        &v1_body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}
