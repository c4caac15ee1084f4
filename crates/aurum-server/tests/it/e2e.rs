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

/// Serves `f` on a real socket; returns the address and a shutdown sender.
async fn serve_real(
    f: &Fixture,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
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
    (addr, tx, server)
}

/// Reads until the server closes the connection; returns how long that took.
async fn time_to_close(stream: &mut tokio::net::TcpStream, limit: Duration) -> Duration {
    use tokio::io::AsyncReadExt;
    let start = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection was still open after {limit:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_and_idle_sockets_are_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let f = fixture_with(|c| c.server.header_read_timeout_ms = 400).await;
    let (addr, tx, server) = serve_real(&f).await;

    // A client trickling its headers one byte every 100 ms is disconnected.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (mut read_half, mut write_half) = slow.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write_half.write_all(b"X").await.is_err() {
                return;
            }
        }
    });
    let start = std::time::Instant::now();
    let mut buf = [0u8; 256];
    let closed = loop {
        use tokio::io::AsyncReadExt;
        match tokio::time::timeout(Duration::from_secs(5), read_half.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("a slow-header client was still connected after 5 s"),
        }
    };
    trickle.abort();
    assert!(
        closed >= Duration::from_millis(250) && closed < Duration::from_secs(3),
        "closed after {closed:?}"
    );

    // A connection that never sends anything is closed too.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let closed = time_to_close(&mut idle, Duration::from_secs(5)).await;
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");

    // A keep-alive connection idle after one request is closed; normal requests still work.
    let mut kept = tokio::net::TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let closed = time_to_close(&mut kept, Duration::from_secs(5)).await;
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    let ok = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_limited_per_client_while_valid_keys_keep_working() {
    let f = fixture_with(|c| c.server.auth_failures_per_minute = 3).await;
    let (addr, tx, server) = serve_real(&f).await;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/models");
    // A known key id with a wrong secret, and an unknown id: both plain 401s at first.
    let known_id = f.client.split('_').nth(1).unwrap().to_string();
    let wrong = format!("aurum_{known_id}_{}", "0".repeat(64));
    let unknown = format!("aurum_zzzzzzzzzzzz_{}", "0".repeat(64));
    for key in [&wrong, &unknown, &wrong] {
        let r = client.get(&url).bearer_auth(key).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "unauthenticated");
    }
    // Over the limit: 429 with Retry-After, in the documented error shape.
    let r = client.get(&url).bearer_auth(&unknown).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "too_many_requests");
    // The valid key from the same address still works.
    let r = client
        .get(&url)
        .bearer_auth(&f.client)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
