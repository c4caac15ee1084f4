//! Real-socket tests: the server bound on 127.0.0.1:0, driven by an HTTP client.

use std::time::Duration;

use aurum_server::AppState;
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_over_a_real_socket_and_drain_on_shutdown() {
    let f = trained().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(aurum_server::serve(
        listener,
        AppState::new(f.platform.clone()),
        async move {
            let _ = rx.await;
        },
    ));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/models/credit/predict");
    let r = client
        .post(&url)
        .bearer_auth(&f.client)
        .json(&json!({"records": [applicant()]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["version"], 1);
    assert!(body["predictions"][0]["probability"].as_f64().is_some());
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Requests in flight when shutdown starts still complete.
    let inflight: Vec<_> = (0..16)
        .map(|_| {
            let (client, url, key) = (client.clone(), url.clone(), f.client.clone());
            tokio::spawn(async move {
                client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"records": [applicant()]}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    tx.send(()).unwrap();
    for t in inflight {
        // A request either completed with 200 or was never accepted (connection refused): none fails mid-way.
        if let Ok(status) = t.await.unwrap() {
            assert_eq!(status, 200);
        }
    }
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err(),
        "the listener is closed"
    );
}
