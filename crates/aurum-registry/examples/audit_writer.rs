//! The audit writer alone: records per second and append latency (the caller's wait for its
//! group commit) with the anchor moved on every commit (`anchor_interval` 0: the WAL's fsync and
//! the anchor slot's flush per commit) and deferred (`anchor_interval` 100 ms, one fsync per
//! commit), interleaved in one run on the same disk.
//!
//! ```text
//! cargo run --release -p aurum-registry --example audit_writer [-- <dir on the disk to test> [seconds per cell]]
//! ```
//!
//! Each cell runs `c` tasks that `append` prediction records (the service's shape: a request
//! id, model, input hash and a small details object) back to back for the given time, on a
//! fresh log. Figures are medians of three interleaved repeats.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aurum_registry::audit::{AnchorOptions, AuditEntry, AuditLog, AuditOptions, event, hash_input};
use serde_json::json;

struct Cell {
    records_per_s: f64,
    records_per_commit: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn entry(n: u64) -> AuditEntry {
    AuditEntry::new(event::PREDICTION, "bench-key")
        .with_request_id(format!("req-{n}"))
        .with_model("bench", Some(1))
        .with_input_sha256(hash_input(&json!({ "n": n })))
        .with_details(json!({
            "outputs": { "probability": 0.42, "label": "bad", "decision": "decline" },
            "reasons": ["checking_status", "duration", "credit_amount", "savings_status"],
            "latency_us": n % 1000,
        }))
}

async fn cell(dir: &Path, interval: Duration, concurrency: usize, seconds: f64) -> Cell {
    let run = tempfile::tempdir_in(dir).unwrap();
    let path = run.path().join("audit.db");
    let log = AuditLog::open_with_options(
        &path,
        AnchorOptions::beside(&path),
        AuditOptions {
            anchor_interval: interval,
        },
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|k| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = k as u64 * 1_000_000_000;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    log.append(entry(n)).await.unwrap();
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = log.stats();
    log.close().await.unwrap();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Cell {
        records_per_s: latencies.len() as f64 / elapsed,
        records_per_commit: stats.records_committed as f64 / stats.batches_committed.max(1) as f64,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/audit-bench"
            ))
        },
        PathBuf::from,
    );
    let seconds: f64 = args.next().map_or(3.0, |s| s.parse().expect("seconds"));
    std::fs::create_dir_all(&dir).unwrap();
    let modes = [
        ("every commit (interval 0)", Duration::ZERO),
        ("deferred (interval 100 ms)", Duration::from_millis(100)),
    ];
    println!(
        "| anchor | appenders | records/s | records per commit | append p50 ms | append p99 ms | append max ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut rates = Vec::new();
    for concurrency in [1, 8, 64] {
        let mut cells: Vec<Vec<Cell>> = vec![Vec::new(), Vec::new()];
        for _ in 0..3 {
            for (m, &(_, interval)) in modes.iter().enumerate() {
                cells[m].push(cell(&dir, interval, concurrency, seconds).await);
            }
        }
        let mut medians = Vec::new();
        for (m, &(name, _)) in modes.iter().enumerate() {
            let c = &cells[m];
            let pick = |f: fn(&Cell) -> f64| median(c.iter().map(f).collect());
            let rate = pick(|c| c.records_per_s);
            medians.push((rate, pick(|c| c.p99_ms)));
            println!(
                "| {name} | {concurrency} | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} |",
                rate,
                pick(|c| c.records_per_commit),
                pick(|c| c.p50_ms),
                pick(|c| c.p99_ms),
                pick(|c| c.max_ms),
            );
        }
        rates.push((concurrency, medians));
    }
    println!();
    for (concurrency, m) in rates {
        println!(
            "- {concurrency} appenders: deferred / every commit: records/s ×{:.2}, p99 ×{:.2}",
            m[1].0 / m[0].0,
            m[1].1 / m[0].1
        );
    }
}
