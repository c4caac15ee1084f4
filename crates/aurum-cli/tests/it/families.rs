//! The families beyond the credit models, end to end on a real server: an MLP, a random forest,
//! a linear SVM and a fraud sequence network trained from the CLI, a CNN and a second random
//! forest trained through the API, an ONNX graph imported from the CLI. Each registers a version with a report, answers the
//! same over `/v1`, the Open Inference Protocol (REST JSON, REST binary tensors, gRPC), and
//! after a restart of the server answers bit for bit as before.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::scoring::{Answer, grpc, oip_binary, oip_json, output, v1};
use crate::server::{Server, applicant, start_server};
use crate::{GERMAN, aurum, ok};

const DIGITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/images/digits_8x8.csv"
);
const HANDBOOK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/fraud/handbook_sim_transactions.csv"
);
const ONNX_MLP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crates/aurum-onnx/tests/fixtures/mlp_binary.onnx"
);

/// The first fixture row of the ONNX model, by input feature.
fn onnx_record() -> Map<String, Value> {
    let names = ["duration", "amount", "rate", "residence", "age", "credits"];
    let row = [
        -1.2364760637283325,
        -0.7451315522193909,
        0.9184777736663818,
        1.0469846725463867,
        2.7664568424224854,
        1.027077078819275,
    ];
    names
        .iter()
        .zip(row)
        .map(|(n, x)| (n.to_string(), json!(x)))
        .collect()
}

/// A transaction after the fraud model's training rows, as `/v1` and OIP take it (the event
/// fields; scored against the end-of-training state).
fn transaction() -> Map<String, Value> {
    json!({"TRANSACTION_ID": 999_999_999, "TX_TIME_SECONDS": 1_530_000, "CUSTOMER_ID": 927,
           "TERMINAL_ID": 9906, "TX_AMOUNT": 250.5})
    .as_object()
    .unwrap()
    .clone()
}

/// Every protocol's answer for `record`, checked equal to `/v1`'s; returns `/v1`'s.
async fn same_on_every_protocol(
    http: &reqwest::Client,
    s: &Server,
    key: &str,
    model: &str,
    record: &Map<String, Value>,
) -> Answer {
    let first = v1(http, s, key, model, record).await;
    assert!(
        (0.0..=1.0).contains(&first.probability),
        "{model}: {first:?}"
    );
    for (protocol, a) in [
        ("oip-json", oip_json(http, s, key, model, record).await),
        ("oip-binary", oip_binary(http, s, key, model, record).await),
        ("grpc", grpc(s, key, model, record).await),
    ] {
        assert_eq!(a, first, "{model}: {protocol} differs from /v1");
    }
    first
}

/// `/v1` predictions of the CNN on the first rows of the digits file (label and probabilities).
async fn digits_answers(http: &reqwest::Client, s: &Server, key: &str) -> Vec<Value> {
    // The version's inputs (pixels that never vary, such as the corners, are not features).
    let version: Value = http
        .get(format!("{}/v2/models/digits", s.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inputs: Vec<&str> = version["inputs"]
        .as_array()
        .unwrap_or_else(|| panic!("{version}"))
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(inputs.len() > 50, "{inputs:?}");
    let text = std::fs::read_to_string(DIGITS).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let records: Vec<Map<String, Value>> = lines
        .take(20)
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .filter(|(h, _)| inputs.contains(h))
                .map(|(h, v)| (h.to_string(), json!(v.parse::<i64>().unwrap())))
                .collect()
        })
        .collect();
    let r: Value = http
        .post(format!("{}/v1/models/digits/predict", s.base))
        .bearer_auth(key)
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outputs = r["outputs"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .clone();
    // The Open Inference Protocol answers a multiclass model with its label and the predicted
    // class's probability, the same as /v1.
    let inputs: Vec<Value> = inputs
        .iter()
        .map(|name| {
            let data: Vec<Value> = records.iter().map(|r| r[*name].clone()).collect();
            json!({"name": name, "datatype": "INT64", "shape": [records.len()], "data": data})
        })
        .collect();
    let oip: Value = http
        .post(format!("{}/v2/models/digits/infer", s.base))
        .bearer_auth(key)
        .json(&json!({ "inputs": inputs }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let column =
        |name: &str| -> Vec<Value> { output(&oip, name)["data"].as_array().unwrap().clone() };
    let labels: Vec<Value> = outputs.iter().map(|o| o["label"].clone()).collect();
    assert_eq!(column("label"), labels, "{oip}");
    for (p, o) in column("probability").iter().zip(&outputs) {
        let best = o["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .fold(0.0, f64::max);
        assert_eq!(p.as_f64().unwrap(), best);
    }
    // Every class's probability: a [rows, classes] tensor, row-major, in the class order its
    // `classes` parameter gives, equal to /v1's; the metadata gives the same shape.
    let all = output(&oip, "probabilities");
    let classes: Vec<String> =
        serde_json::from_str(all["parameters"]["classes"].as_str().unwrap()).unwrap();
    assert_eq!(classes.len(), 10, "{all}");
    assert_eq!(all["shape"], json!([records.len(), 10]), "{all}");
    let flat: Vec<Value> = outputs
        .iter()
        .flat_map(|o| o["probabilities"].as_array().unwrap().clone())
        .collect();
    assert_eq!(all["data"].as_array().unwrap(), &flat);
    for (o, row) in outputs.iter().zip(flat.chunks(10)) {
        let best = (0..10)
            .max_by(|&a, &b| {
                row[a]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&row[b].as_f64().unwrap())
            })
            .unwrap();
        assert_eq!(o["label"].as_str().unwrap(), classes[best]);
    }
    assert!(
        version["outputs"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "probabilities", "datatype": "FP64", "shape": [-1, 10]})),
        "{version}"
    );
    outputs
}

async fn train_through_api(http: &reqwest::Client, s: &Server, key: &str, body: Value) -> Value {
    let r = http
        .post(format!("{}/v1/training-jobs", s.base))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let j: Value = http
            .get(format!("{}/v1/training-jobs/{id}", s.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if j["state"] != "queued" && j["state"] != "running" {
            assert_eq!(j["state"], "succeeded", "{j}");
            return j;
        }
        assert!(Instant::now() < deadline, "training did not finish: {j}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_families_train_from_cli_and_api_serve_on_every_protocol_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&aurum(
        &data,
        &["data", "import", GERMAN, "--name", "german"],
    ));
    ok(&aurum(
        &data,
        &["data", "import", DIGITS, "--name", "digits"],
    ));
    // The first 20 000 handbook transactions, for the fraud sequence network.
    let tx = dir.path().join("tx.csv");
    let text = std::fs::read_to_string(HANDBOOK).unwrap();
    let head: Vec<&str> = text.lines().take(20_001).collect();
    std::fs::write(&tx, head.join("\n") + "\n").unwrap();
    ok(&aurum(
        &data,
        &["data", "import", tx.to_str().unwrap(), "--name", "tx"],
    ));
    let out = ok(&aurum(
        &data,
        &[
            "train",
            "--dataset",
            "tx",
            "--target",
            "TX_FRAUD",
            "--kind",
            "fraud_sequence",
            "--model",
            "fraud",
            "--date-column",
            "TX_DATETIME",
            "--alias",
            "champion",
            "--param",
            "architecture=cnn",
            "--param",
            "epochs=2",
        ],
    ));
    assert!(out.contains("version 1"), "fraud_sequence: {out}");
    for (model, kind, params) in [
        ("nn", "mlp", &["epochs=30"][..]),
        ("forest", "random_forest", &["n_trees=30"][..]),
        ("svm", "linear_svm", &[][..]),
    ] {
        let mut args = vec![
            "train",
            "--dataset",
            "german",
            "--target",
            "creditability",
            "--kind",
            kind,
            "--model",
            model,
            "--alias",
            "champion",
        ];
        for p in params {
            args.extend(["--param", p]);
        }
        let out = ok(&aurum(&data, &args));
        assert!(out.contains("version 1"), "{kind}: {out}");
    }
    ok(&aurum(
        &data,
        &[
            "import",
            ONNX_MLP,
            "--format",
            "onnx",
            "--model",
            "imported",
            "--alias",
            "champion",
            "--param",
            "features=duration,amount,rate,residence,age,credits",
        ],
    ));
    let created = ok(&aurum(
        &data,
        &["keys", "create", "--name", "ops", "--role", "admin"],
    ));
    let key = created.lines().last().unwrap().trim().to_string();

    let server = start_server(&data, &[]);
    let http = reqwest::Client::new();
    // Through the API: the CNN on the digits, and a forest with other parameters.
    let cnn = train_through_api(
        &http,
        &server,
        &key,
        json!({"dataset": "digits", "target": "label", "kind": "cnn", "model": "digits",
               "alias": "champion", "params": {"height": "8", "width": "8", "epochs": "15"}}),
    )
    .await;
    assert_eq!(cnn["version"], 1, "{cnn}");
    let forest = train_through_api(
        &http,
        &server,
        &key,
        json!({"dataset": "german", "target": "creditability", "kind": "random_forest",
               "model": "forest", "alias": "champion", "params": {"n_trees": "20", "max_depth": "6"}}),
    )
    .await;
    assert_eq!(forest["version"], 2, "{forest}");

    let models = [
        ("nn", applicant()),
        ("forest", applicant()),
        ("svm", applicant()),
        ("imported", onnx_record()),
        ("fraud", transaction()),
    ];
    let mut before = Vec::new();
    for (model, record) in &models {
        before.push(same_on_every_protocol(&http, &server, &key, model, record).await);
        // Every trained version has its evaluation report (an imported graph has no held-out
        // data to report on).
        if *model == "imported" {
            continue;
        }
        let r = http
            .get(format!(
                "{}/v1/models/{model}/versions/1/report",
                server.base
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{model}: {}", r.text().await.unwrap());
    }
    let digits_before = digits_answers(&http, &server, &key).await;
    let right = digits_before
        .iter()
        .zip(std::fs::read_to_string(DIGITS).unwrap().lines().skip(1))
        .filter(|(p, line)| p["label"].as_str() == line.rsplit(',').next())
        .count();
    assert!(right >= 17, "{right}/20 digits right: {digits_before:?}");

    // A restart: every model loads again from the registry and answers bit for bit the same.
    drop(server);
    let server = start_server(&data, &[]);
    for ((model, record), was) in models.iter().zip(&before) {
        let now = same_on_every_protocol(&http, &server, &key, model, record).await;
        assert_eq!(
            now.probability.to_bits(),
            was.probability.to_bits(),
            "{model}"
        );
        assert_eq!(&now, was, "{model}");
    }
    assert_eq!(digits_answers(&http, &server, &key).await, digits_before);
}
