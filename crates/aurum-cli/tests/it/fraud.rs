//! Fraud event state under the real binary: every event whose call was acknowledged is in the
//! model's state after `kill -9` and a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::server::start_server;
use crate::{aurum, ok};

const HANDBOOK: &str = include_str!("../../../../data/fraud/handbook_sim_transactions.csv");
const TRAIN_ROWS: usize = 8_000;

fn event_json(line: &str) -> serde_json::Value {
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

/// A data directory with `fraud` trained on the first rows, a client key, and the rows after
/// them as events.
fn trained(dir: &std::path::Path) -> (std::path::PathBuf, String, Vec<serde_json::Value>) {
    let data = dir.join("data");
    let mut lines = HANDBOOK.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let train = dir.join("train.csv");
    std::fs::write(
        &train,
        format!("{header}\n{}\n", rows[..TRAIN_ROWS].join("\n")),
    )
    .unwrap();
    ok(&aurum(
        &data,
        &["data", "import", train.to_str().unwrap(), "--name", "tx"],
    ));
    ok(&aurum(
        &data,
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
            "--alias",
            "champion",
            "--param",
            "n_estimators=20",
        ],
    ));
    let created = ok(&aurum(
        &data,
        &["keys", "create", "--name", "client", "--role", "client"],
    ));
    let key = created.lines().last().unwrap().trim().to_owned();
    let stream = rows[TRAIN_ROWS..].iter().map(|l| event_json(l)).collect();
    (data, key, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (data, key, stream) = trained(dir.path());
    let mut server = start_server(&data, &[]);
    let http = reqwest::Client::new();

    // One client streams batches of 10 in time order until the server dies.
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (http, base, key, stop) =
            (http.clone(), server.base.clone(), key.clone(), stop.clone());
        let stream = stream.clone();
        tokio::spawn(async move {
            let mut acked: Vec<serde_json::Value> = Vec::new();
            for batch in stream.chunks(10) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let answer = http
                    .post(format!("{base}/v1/models/fraud/events"))
                    .bearer_auth(&key)
                    .json(&json!({ "events": batch }))
                    .send()
                    .await;
                let Ok(response) = answer else { break };
                let status = response.status();
                let Ok(body) = response.bytes().await else {
                    break;
                };
                assert!(
                    status.is_success(),
                    "{status}: {}",
                    String::from_utf8_lossy(&body)
                );
                acked.extend(batch.iter().cloned());
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(2000)).await;
    server.child.kill().expect("SIGKILL the server");
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let acked = client.await.unwrap();
    assert!(
        acked.len() >= 50,
        "only {} events were acknowledged",
        acked.len()
    );

    let server = start_server(&data, &[]);
    let state: serde_json::Value = http
        .get(format!("{}/v1/models/fraud/events/state", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let applied = state["events_applied"].as_u64().unwrap() as usize;
    assert!(
        applied >= acked.len(),
        "{applied} events in state, {} acknowledged",
        acked.len()
    );
    // Each acknowledged event is in the state: sending it again is a duplicate.
    for e in &acked {
        let r = http
            .post(format!("{}/v1/models/fraud/events", server.base))
            .bearer_auth(&key)
            .json(&json!({ "event": e }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "duplicate_event", "{body}");
    }
    // And the stream goes on after the last event the state holds.
    let next = &stream[applied];
    let r = http
        .post(format!("{}/v1/models/fraud/events", server.base))
        .bearer_auth(&key)
        .json(&json!({ "event": next }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Eight clients post at once, so their event-log records share commits (group commit), and the
/// server is killed with SIGKILL mid-stream: after a restart every acknowledged event is in the
/// state. Clients take batches from one time-ordered stream, so a batch that falls too far behind
/// the others is refused as out of order; a refused batch is not acknowledged and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrently_acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (data, key, stream) = trained(dir.path());
    let mut server = start_server(&data, &[]);
    let http = reqwest::Client::new();
    let stream = Arc::new(stream);
    let cursor = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (http, base, key) = (http.clone(), server.base.clone(), key.clone());
            let (stream, cursor) = (stream.clone(), cursor.clone());
            tokio::spawn(async move {
                let mut acked: Vec<serde_json::Value> = Vec::new();
                loop {
                    let at = cursor.fetch_add(2, Ordering::Relaxed);
                    let Some(batch) = stream.get(at..at + 2) else {
                        break;
                    };
                    let answer = http
                        .post(format!("{base}/v1/models/fraud/events"))
                        .bearer_auth(&key)
                        .json(&json!({ "events": batch }))
                        .send()
                        .await;
                    let Ok(response) = answer else { break };
                    let status = response.status();
                    let Ok(body) = response.bytes().await else {
                        break;
                    };
                    if status.is_success() {
                        acked.extend(batch.iter().cloned());
                    } else {
                        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        assert_eq!(body["code"], "out_of_order", "{status}: {body}");
                    }
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    server.child.kill().expect("SIGKILL the server");
    server.child.wait().unwrap();
    let mut acked = Vec::new();
    let mut clients_acked = 0;
    for c in clients {
        let mine = c.await.unwrap();
        clients_acked += usize::from(!mine.is_empty());
        acked.extend(mine);
    }
    assert!(
        acked.len() >= 50 && clients_acked >= 2,
        "only {} events were acknowledged, by {clients_acked} clients",
        acked.len()
    );

    let server = start_server(&data, &[]);
    for e in &acked {
        let r = http
            .post(format!("{}/v1/models/fraud/events", server.base))
            .bearer_auth(&key)
            .json(&json!({ "event": e }))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap();
        // The duplicate check comes before the out-of-order one, so an event in the state is a
        // duplicate however far behind the watermark it is.
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "duplicate_event", "{body}");
    }
}

/// A second server process on the same data directory cannot write the model's local event state
/// while the first one holds it: its events call is refused with 503 naming the directory, and
/// nothing it was sent reaches the state. Once the first process is gone the second one opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_event_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, key, stream) = trained(dir.path());
    let mut first = start_server(&data, &[]);
    let second = start_server(&data, &[]);
    let http = reqwest::Client::new();
    let post = |base: String, events: &[serde_json::Value]| {
        http.post(format!("{base}/v1/models/fraud/events"))
            .bearer_auth(&key)
            .json(&json!({ "events": events }))
            .send()
    };
    let r = post(first.base.clone(), &stream[..2]).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = post(second.base.clone(), &stream[2..4]).await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("state/fraud"),
        "{body}"
    );
    // The refused call changed nothing: the first process takes the same events.
    let r = post(first.base.clone(), &stream[2..4]).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    // The lock went with the process: the second one recovers the state and sees all four.
    let r = post(second.base.clone(), &stream[..1]).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "duplicate_event", "{body}");
    let r = post(second.base.clone(), &stream[4..5]).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}
