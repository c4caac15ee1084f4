//! Batch scoring: `aurum predict --input FILE` (CSV, Parquet, JSON Lines) against REST, refused
//! rows and `--strict`, batch jobs over a real socket, and `--json` on every printing command.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::start_server;
use crate::{GERMAN, aurum, ok};

/// Imports German credit and trains `credit` (gbdt, champion).
fn trained(data: &Path) {
    ok(&aurum(
        data,
        &["data", "import", GERMAN, "--name", "german"],
    ));
    ok(&aurum(
        data,
        &[
            "train",
            "--dataset",
            "german",
            "--target",
            "creditability",
            "--kind",
            "gbdt",
            "--model",
            "credit",
            "--alias",
            "champion",
            "--param",
            "n_estimators=30",
        ],
    ));
}

/// The German credit file's header and data lines.
fn german() -> (String, Vec<String>) {
    let text = std::fs::read_to_string(GERMAN).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap();
    (header, lines.filter(|l| !l.trim().is_empty()).collect())
}

/// `rows` German credit rows with an `id` column in front and the credit amount varied, so
/// that most rows differ. The target column stays: a column that is not a feature is ignored.
fn generate(path: &Path, rows: usize) {
    use std::io::Write;
    let (header, lines) = german();
    let amount = header
        .split(',')
        .position(|h| h == "credit_amount")
        .unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "id,{header}").unwrap();
    let joined = lines.join("\n");
    let reader: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(joined.as_bytes())
        .into_records()
        .map(|r| r.unwrap())
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    for i in 0..rows {
        let r = &reader[i % reader.len()];
        let mut cells: Vec<String> = r.iter().map(str::to_string).collect();
        let base: i64 = cells[amount].parse().unwrap();
        cells[amount] = (base + (i / reader.len()) as i64 * 7).to_string();
        let mut rec = vec![format!("row-{i}")];
        rec.extend(cells);
        w.write_record(&rec).unwrap();
    }
    out.write_all(&w.into_inner().unwrap()).unwrap();
}

/// The CSV output's `id` → probability.
fn csv_probabilities(path: &Path) -> Vec<(String, f64)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    let id = headers.iter().position(|h| h == "id").unwrap();
    let p = headers.iter().position(|h| h == "probability").unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[id].to_string(), rec[p].parse().unwrap())
        })
        .collect()
}

fn parquet_probabilities(bytes: Vec<u8>) -> Vec<(String, f64)> {
    use arrow::array::{Array, Float64Array, StringArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let ids = batch
            .column_by_name("id")
            .map(|c| c.as_any().downcast_ref::<StringArray>().unwrap().clone());
        let p = batch.column_by_name("probability").unwrap();
        let p = p.as_any().downcast_ref::<Float64Array>().unwrap();
        for i in 0..p.len() {
            let id = ids
                .as_ref()
                .map(|c| c.value(i).to_string())
                .unwrap_or_default();
            out.push((id, p.value(i)));
        }
    }
    out
}

fn json_out(out: &std::process::Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// A 200 000-row CSV scores to CSV and to Parquet with exactly the probabilities the REST API
/// gives the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_csv_scores_to_csv_and_parquet_as_rest_does() {
    const ROWS: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    trained(&data);
    let input = dir.path().join("big.csv");
    generate(&input, ROWS);
    let scored_csv = dir.path().join("scored.csv");
    let scored_pq = dir.path().join("scored.parquet");
    let summary = json_out(&aurum(
        &data,
        &[
            "predict",
            "credit",
            "--input",
            input.to_str().unwrap(),
            "--output",
            scored_csv.to_str().unwrap(),
            "--keep",
            "id",
            "--json",
        ],
    ));
    assert_eq!(summary["rows_scored"], ROWS, "{summary}");
    assert_eq!(summary["rows_refused"], 0, "{summary}");
    assert_eq!(summary["end"], "completed");
    let summary_pq = json_out(&aurum(
        &data,
        &[
            "predict",
            "credit",
            "--input",
            input.to_str().unwrap(),
            "--output",
            scored_pq.to_str().unwrap(),
            "--keep",
            "id",
            "--json",
        ],
    ));
    // The same rows hash the same, whatever the output format.
    assert_eq!(summary_pq["input_sha256"], summary["input_sha256"]);
    let from_csv = csv_probabilities(&scored_csv);
    let from_pq = parquet_probabilities(std::fs::read(&scored_pq).unwrap());
    assert_eq!(from_csv.len(), ROWS);
    assert_eq!(from_csv, from_pq);
    for (i, (id, _)) in from_csv.iter().enumerate() {
        assert_eq!(id, &format!("row-{i}"));
    }

    // REST, in requests of 10 000 records (the per-request limit), cells sent as the file's text.
    let server = start_server(&data, &[]);
    let admin = std::fs::read_to_string(data.join("admin.key")).unwrap();
    let client = reqwest::Client::new();
    let mut reader = csv::Reader::from_path(&input).unwrap();
    let headers = reader.headers().unwrap().clone();
    let records: Vec<Value> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            Value::Object(
                headers
                    .iter()
                    .zip(r.iter())
                    .filter(|(h, _)| *h != "id" && *h != "creditability")
                    .map(|(h, v)| (h.to_string(), Value::String(v.to_string())))
                    .collect(),
            )
        })
        .collect();
    let mut rest = Vec::with_capacity(ROWS);
    for part in records.chunks(10_000) {
        let r: Value = client
            .post(format!("{}/v1/models/credit/predict", server.base))
            .bearer_auth(admin.trim())
            .json(&json!({ "records": part }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for p in r["predictions"].as_array().unwrap_or_else(|| panic!("{r}")) {
            rest.push(p["probability"].as_f64().unwrap());
        }
    }
    assert_eq!(rest.len(), ROWS);
    let mismatches = from_csv
        .iter()
        .zip(&rest)
        .filter(|((_, a), b)| a != *b)
        .count();
    assert_eq!(mismatches, 0, "probabilities differ from REST");

    // The run's audit record.
    let audit: Value = client
        .get(format!(
            "{}/v1/audit?event=batch_prediction&limit=10",
            server.base
        ))
        .bearer_auth(admin.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let records = audit["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{audit}");
    assert_eq!(records[0]["details"]["rows_scored"], ROWS);
    assert_eq!(records[0]["input_sha256"], summary["input_sha256"]);
}

/// Bad rows are refused into the error file with line, column and code; the run goes on and
/// exits 0, and only `--strict` stops (exit 4) at the first one.
#[test]
fn bad_rows_go_to_the_error_file_and_only_strict_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    trained(&data);
    let (header, lines) = german();
    let cols: Vec<&str> = header.split(',').collect();
    let age = cols.iter().position(|c| *c == "age_in_years").unwrap();
    let amount = cols.iter().position(|c| *c == "credit_amount").unwrap();
    let with = |line: &str, at: usize, value: &str| {
        let mut r: Vec<String> = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes())
            .records()
            .next()
            .unwrap()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect();
        r[at] = value.to_string();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&r).unwrap();
        String::from_utf8(w.into_inner().unwrap())
            .unwrap()
            .trim_end()
            .to_string()
    };
    // Lines 2–4 good, 5 bad age, 6 good, 7 short, 8 infinite amount, 9 good.
    let body = [
        lines[0].clone(),
        lines[1].clone(),
        lines[2].clone(),
        with(&lines[3], age, "forty"),
        lines[4].clone(),
        "... < 0 DM,6".to_string(),
        with(&lines[5], amount, "inf"),
        lines[6].clone(),
    ];
    let input = dir.path().join("bad.csv");
    std::fs::write(&input, format!("{header}\n{}\n", body.join("\n"))).unwrap();
    let output = dir.path().join("out.csv");
    let run = |strict: bool| {
        let mut args = vec![
            "predict",
            "credit",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--json",
        ];
        if strict {
            args.push("--strict");
        }
        aurum(&data, &args)
    };
    let out = run(false);
    let summary = json_out(&out);
    assert_eq!(summary["rows_read"], 8, "{summary}");
    assert_eq!(summary["rows_scored"], 5, "{summary}");
    assert_eq!(summary["rows_refused"], 3, "{summary}");
    assert_eq!(csv_like_rows(&output), 5);
    let errors = dir.path().join("out.errors.csv");
    let mut r = csv::Reader::from_path(&errors).unwrap();
    let refused: Vec<(String, String, String)> = r
        .records()
        .map(|x| {
            let x = x.unwrap();
            (x[0].to_string(), x[1].to_string(), x[2].to_string())
        })
        .collect();
    assert_eq!(
        refused,
        [
            ("5".into(), "age_in_years".into(), "invalid_type".into()),
            // A short line is ragged, not a row with missing features.
            ("7".into(), "".into(), "ragged_row".into()),
            (
                "8".into(),
                "credit_amount".into(),
                "non_finite_number".into()
            ),
        ]
    );

    // With --audit-rows the scored rows also get a `prediction` record, as on REST.
    let out = aurum(
        &data,
        &[
            "predict",
            "credit",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--audit-rows",
            "--json",
        ],
    );
    assert_eq!(json_out(&out)["rows_scored"], 5);
    let tail = json_out(&aurum(&data, &["audit", "tail", "-n", "2", "--json"]));
    let events: Vec<&str> = tail["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"prediction") && events.contains(&"batch_prediction"),
        "{tail}"
    );
    let prediction = tail["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"] == "prediction")
        .unwrap();
    assert_eq!(prediction["details"]["records"], 5, "{prediction}");

    let out = run(true);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["end"], "stopped_at_error");
    assert_eq!(summary["rows_scored"], 3);
    assert_eq!(summary["first_error"]["line"], 5);
    assert_eq!(csv_like_rows(&output), 3);

    // JSON Lines: a broken line and a missing key are refused the same way.
    let mut jl = String::new();
    let mut reader = csv::Reader::from_path(GERMAN).unwrap();
    let h = reader.headers().unwrap().clone();
    for (i, rec) in reader.records().take(4).enumerate() {
        let rec = rec.unwrap();
        let mut o: serde_json::Map<String, Value> = h
            .iter()
            .zip(rec.iter())
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        if i == 2 {
            o.remove("purpose");
        }
        jl.push_str(&Value::Object(o).to_string());
        jl.push('\n');
    }
    jl.push_str("{not json\n");
    // A repeated key refuses its line, as REST refuses the record (it once scored the last).
    let first = jl.lines().next().unwrap().to_string();
    jl.push_str(&format!(
        "{},\"age_in_years\":\"5\"}}\n",
        &first[..first.len() - 1]
    ));
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, jl).unwrap();
    let output = dir.path().join("out.jsonl");
    let summary = json_out(&aurum(
        &data,
        &[
            "predict",
            "credit",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--explain",
            "--json",
        ],
    ));
    assert_eq!(summary["rows_scored"], 3, "{summary}");
    assert_eq!(summary["rows_refused"], 3, "{summary}");
    let scored = std::fs::read_to_string(&output).unwrap();
    for line in scored.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(
            v["probability"].is_f64() && v["contributions"].is_object(),
            "{v}"
        );
    }
    let errors = std::fs::read_to_string(dir.path().join("out.errors.csv")).unwrap();
    assert!(errors.contains("3,purpose,missing_feature"), "{errors}");
    assert!(errors.contains("5,,malformed_json"), "{errors}");
    assert!(errors.contains("6,,duplicate_key"), "{errors}");

    // A repeated column name refuses the file, as dataset import does (it once read the
    // feature from the last of the two columns).
    let input = dir.path().join("dup.csv");
    std::fs::write(&input, format!("{header},age_in_years\n{},5\n", lines[0])).unwrap();
    let out = aurum(
        &data,
        &[
            "predict",
            "credit",
            "--input",
            input.to_str().unwrap(),
            "--output",
            dir.path().join("dup.out.csv").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("duplicate column name `age_in_years`"),
        "{stderr}"
    );
    assert!(!dir.path().join("dup.out.csv").exists());
}

/// Data rows of a CSV file.
fn csv_like_rows(path: &Path) -> usize {
    csv::Reader::from_path(path).unwrap().records().count()
}

async fn get_json(client: &reqwest::Client, url: &str, key: &str) -> Value {
    client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A batch job over a real socket: refused for a client key, followed to success and
/// downloaded (Parquet), and a long one cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_is_followed_cancelled_and_downloaded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    trained(&data);
    let big = dir.path().join("big.csv");
    generate(&big, 100_000);
    ok(&aurum(
        &data,
        &["data", "import", big.to_str().unwrap(), "--name", "big"],
    ));
    let key = |name: &str, role: &str| {
        let out = ok(&aurum(
            &data,
            &["keys", "create", "--name", name, "--role", role],
        ));
        out.lines().last().unwrap().trim().to_string()
    };
    let client_key = key("app", "client");
    let admin = key("ops", "admin");
    let admin = admin.as_str();
    let server = start_server(&data, &[]);
    let client = reqwest::Client::new();
    let submit = |body: Value, key: String| {
        let client = client.clone();
        let url = format!("{}/v1/batch-jobs", server.base);
        async move {
            let r = client
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = submit(json!({"model": "credit", "dataset": "german"}), client_key).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, body) = submit(
        json!({"model": "credit", "dataset": "german", "keep": ["nope"]}),
        admin.to_string(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("missing_column")),
        "{body}"
    );

    // Followed to success, downloaded.
    let (status, job) = submit(
        json!({"model": "credit", "version": 1, "dataset": "german", "output_format": "parquet", "keep": ["creditability"]}),
        admin.to_string(),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let url = format!("{}/v1/batch-jobs/{id}", server.base);
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let j = get_json(&client, &url, admin).await;
        if j["state"] == "succeeded" || j["state"] == "failed" {
            break j;
        }
        assert!(Instant::now() < deadline, "job did not finish: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"]["rows_scored"], 1000, "{done}");
    assert_eq!(done["progress"], 1.0);
    let r = client
        .get(format!("{url}/output"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap().to_vec();
    assert_eq!(
        aurum_core::sha256_hex(&bytes),
        done["result"]["output_sha256"].as_str().unwrap()
    );
    assert_eq!(parquet_probabilities(bytes).len(), 1000);
    // The job is listed, and its error file (no refused rows here: only the header) downloads.
    let listed = get_json(&client, &format!("{}/v1/batch-jobs", server.base), admin).await;
    let listed = listed["batch_jobs"].as_array().unwrap();
    assert!(listed.iter().any(|j| j["id"] == done["id"]), "{listed:?}");
    assert!(
        listed.iter().all(|j| j["output_format"].is_string()),
        "{listed:?}"
    );
    let r = client
        .get(format!("{url}/errors"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert_eq!(
        aurum_core::sha256_hex(text.as_bytes()),
        done["result"]["errors_sha256"].as_str().unwrap()
    );
    assert_eq!(text.trim_end(), "line,column,code,message");

    // A long job, cancelled while it runs; its output is then not available.
    let (status, job) = submit(
        json!({"model": "credit", "dataset": "big", "explain": true}),
        admin.to_string(),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let url = format!("{}/v1/batch-jobs/{id}", server.base);
    let r = client
        .post(format!("{url}/cancel"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(120);
    let end = loop {
        let j = get_json(&client, &url, admin).await;
        if j["state"] != "queued" && j["state"] != "running" {
            break j;
        }
        assert!(Instant::now() < deadline, "job did not stop: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(end["state"], "cancelled", "{end}");
    let r = client
        .get(format!("{url}/errors"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = client
        .get(format!("{url}/output"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = client
        .post(format!("{url}/cancel"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}

/// Every command that prints results prints parseable JSON with `--json`.
#[test]
fn json_output_parses_on_every_printing_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    trained(&data);
    let records = dir.path().join("one.json");
    std::fs::write(
        &records,
        json!({"records": [crate::server::applicant()]}).to_string(),
    )
    .unwrap();
    let series = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/timeseries/airline_passengers.csv"
    );
    let plot = dir.path().join("plot.html");
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "predict",
            "credit",
            "--input",
            records.to_str().unwrap(),
            "--json",
        ],
        vec!["models", "list", "--json"],
        vec!["models", "show", "credit", "--json"],
        vec!["data", "show", "german", "--json"],
        vec!["data", "list", "--json"],
        vec!["audit", "tail", "-n", "5", "--json"],
        vec!["keys", "list", "--json"],
        vec![
            "forecast",
            "--data",
            series,
            "--date",
            "Date",
            "--value",
            "Passengers",
            "--horizon",
            "3",
            "--model",
            "naive",
            "--out",
            plot.to_str().unwrap(),
            "--json",
        ],
    ];
    for args in cases {
        let v = json_out(&aurum(&data, &args));
        assert!(v.is_object(), "{args:?}: {v}");
    }
    let v = json_out(&aurum(&data, &["models", "show", "credit", "--json"]));
    assert_eq!(v["versions"][0]["version"], 1, "{v}");
    let v = json_out(&aurum(
        &data,
        &[
            "predict",
            "credit",
            "--input",
            records.to_str().unwrap(),
            "--json",
        ],
    ));
    assert!(v["predictions"][0]["probability"].is_f64(), "{v}");
}

/// A Parquet input with typed columns (integers as Int64, floats as Float64, strings as Utf8)
/// scores as the same rows in CSV do: its values reach the model through the same cell parser.
#[test]
fn parquet_input_scores_as_csv_input() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    trained(&data);
    let csv_in = dir.path().join("in.csv");
    generate(&csv_in, 3000);
    let mut reader = csv::Reader::from_path(&csv_in).unwrap();
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let columns: Vec<(String, ArrayRef)> = headers
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let cells: Vec<&str> = rows.iter().map(|r| &r[i]).collect();
            let array: ArrayRef = if name == "id" || cells.iter().any(|c| c.parse::<f64>().is_err())
            {
                Arc::new(StringArray::from(cells))
            } else if name == "duration_in_month" {
                // One numeric column as floats, to cover Float64 → integer feature.
                Arc::new(Float64Array::from(
                    cells
                        .iter()
                        .map(|c| c.parse::<f64>().unwrap())
                        .collect::<Vec<_>>(),
                ))
            } else {
                Arc::new(Int64Array::from(
                    cells
                        .iter()
                        .map(|c| c.parse::<i64>().unwrap())
                        .collect::<Vec<_>>(),
                ))
            };
            (name.to_string(), array)
        })
        .collect();
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let pq_in = dir.path().join("in.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&pq_in).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let score = |input: &Path, output: &Path| {
        json_out(&aurum(
            &data,
            &[
                "predict",
                "credit",
                "--input",
                input.to_str().unwrap(),
                "--output",
                output.to_str().unwrap(),
                "--keep",
                "id",
                "--json",
            ],
        ))
    };
    let a = score(&csv_in, &dir.path().join("a.csv"));
    let b = score(&pq_in, &dir.path().join("b.csv"));
    assert_eq!(b["rows_scored"], 3000, "{b}");
    assert_eq!(a["input_sha256"], b["input_sha256"]);
    assert_eq!(
        csv_probabilities(&dir.path().join("a.csv")),
        csv_probabilities(&dir.path().join("b.csv"))
    );

    // A feature stored as bytes is refused, as dataset import refuses it (it was read as hex
    // text: an unseen category that flipped decisions). A kept column may be any type.
    let purpose = batch.schema().index_of("purpose").unwrap();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let as_bytes: Vec<&[u8]> = rows.iter().map(|r| r[purpose].as_bytes()).collect();
    columns[purpose] = Arc::new(arrow::array::BinaryArray::from(as_bytes));
    let fields: Vec<arrow::datatypes::Field> = batch
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| arrow::datatypes::Field::new(f.name(), c.data_type().clone(), true))
        .collect();
    let binary =
        RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns).unwrap();
    let pq_bin = dir.path().join("binary.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&pq_bin).unwrap(),
        binary.schema(),
        None,
    )
    .unwrap();
    w.write(&binary).unwrap();
    w.close().unwrap();
    let out = aurum(
        &data,
        &[
            "predict",
            "credit",
            "--input",
            pq_bin.to_str().unwrap(),
            "--output",
            dir.path().join("c.csv").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("purpose") && stderr.contains("Binary"),
        "{stderr}"
    );
}
