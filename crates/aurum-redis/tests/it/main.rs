//! The Redis state against the in-process state on the same streams, and under replicas racing.
//!
//! Needs a Redis: `AURUM_TEST_REDIS_URL` (set by `scripts/services/run.sh env`). Without it each
//! test prints a skip line and returns. Every test uses its own key prefix.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aurum_fraud::{
    Event, FeatureSpec, FraudError, LabelOutcome, LabelRequest, LocalState, OnlineState,
    OnlineStateFactory,
};
use aurum_redis::{RedisOptions, RedisStateFactory};
use serde_json::Value;

mod limits;

const DAY: i64 = 86_400;

fn redis_url(test: &str) -> Option<String> {
    match std::env::var("AURUM_TEST_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("skipped {test}: AURUM_TEST_REDIS_URL not set");
            None
        }
    }
}

fn options() -> RedisOptions {
    RedisOptions {
        key_prefix: format!("aurum-test:{}", uuid::Uuid::new_v4().simple()),
        ..RedisOptions::default()
    }
}

/// A replica: its own connection pool on the shared prefix.
fn replica(
    url: &str,
    opts: &RedisOptions,
    model: &str,
    spec: &FeatureSpec,
) -> Arc<dyn OnlineState> {
    RedisStateFactory::connect(url, opts.clone())
        .unwrap()
        .open(model, spec)
        .unwrap()
}

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn handbook_spec() -> FeatureSpec {
    FeatureSpec::from_toml_str(
        &std::fs::read_to_string(repo_file("data/fraud/handbook_features.toml")).unwrap(),
    )
    .unwrap()
}

/// The bundled transactions of customers below `customers`, in file (time) order.
fn handbook_events(spec: &FeatureSpec, customers: u32) -> Vec<Event> {
    let compiled = spec.compile().unwrap();
    let text =
        std::fs::read_to_string(repo_file("data/fraud/handbook_sim_transactions.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let cust = header.iter().position(|h| *h == "CUSTOMER_ID").unwrap();
    lines
        .filter(|l| l.split(',').nth(cust).unwrap().parse::<u32>().unwrap() < customers)
        .map(|l| {
            let values: Vec<Value> = l.split(',').map(|c| Value::String(c.into())).collect();
            Event::from_map(&compiled, header.iter().copied().zip(values.iter())).unwrap()
        })
        .collect()
}

/// Every feature kind, with a wide out-of-order tolerance for racing writers.
fn rich_spec(tolerance: &str) -> FeatureSpec {
    FeatureSpec::from_toml_str(&format!(
        r#"
[schema]
id = "id"
timestamp = "ts"
amount = "amount"
entities = ["customer", "terminal"]
[constraints]
amount_min = 0.0
max_events_per_entity = 500
out_of_order_tolerance = "{tolerance}"
[[features]]
kind = "amount"
[[features]]
kind = "count"
entity = "customer"
window = "1d"
[[features]]
kind = "std"
entity = "customer"
window = "3d"
[[features]]
kind = "distinct"
entity = "customer"
of = "terminal"
window = "2d"
[[features]]
kind = "time_since_last"
entity = "customer"
[[features]]
kind = "amount_zscore"
entity = "customer"
window = "3d"
[[features]]
kind = "first_seen"
entity = "customer"
of = "terminal"
[[features]]
kind = "fraud_rate"
entity = "terminal"
window = "3d"
delay = "1d"
"#
    ))
    .unwrap()
}

fn event(id: &str, ts: i64, customer: &str, terminal: &str, amount: f64) -> Event {
    Event {
        id: id.into(),
        ts,
        keys: vec![customer.into(), terminal.into()],
        amount: Some(amount),
        label: None,
        extra: Default::default(),
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "aurum-redis-it-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Feeds `events` in batches of `batch` to the states in turn (batch k to `states[k % n]`),
/// labelling each fraudulent event a week after it happened, and returns every feature vector.
fn drive(states: &[&dyn OnlineState], events: &[Event], batch: usize) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    for (k, chunk) in events.chunks(batch).enumerate() {
        let s = states[k % states.len()];
        out.extend(s.score_and_apply(chunk).unwrap());
        let labels: Vec<LabelRequest> = chunk
            .iter()
            .filter(|e| e.label == Some(true))
            .map(|e| LabelRequest {
                event_id: e.id.clone(),
                fraud: true,
                known_at: Some(e.ts + 7 * DAY),
            })
            .collect();
        if !labels.is_empty() {
            let l = states[(k + 1) % states.len()];
            let applied = l.add_labels(&labels).unwrap();
            assert!(
                applied
                    .iter()
                    .all(|o| matches!(o, LabelOutcome::Applied { records } if *records > 0))
            );
        }
    }
    out
}

#[test]
fn two_redis_replicas_compute_the_handbook_features_of_one_process_to_the_bit() {
    let Some(url) = redis_url("handbook equivalence") else {
        return;
    };
    let spec = handbook_spec();
    let events = handbook_events(&spec, 50);
    assert!(events.len() > 2_500, "{} events", events.len());
    assert!(events.iter().any(|e| e.label == Some(true)));

    let dir = TempDir::new("handbook");
    let (local, _) = LocalState::recover(&dir.0, &spec, None).unwrap();
    let expected = drive(&[&local], &events, 37);

    let opts = options();
    let a = replica(&url, &opts, "cards", &spec);
    let b = replica(&url, &opts, "cards", &spec);
    let got = drive(&[a.as_ref(), b.as_ref()], &events, 37);
    assert_eq!(got.len(), expected.len());
    for (i, (g, x)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, x, "event {} ({}) differs", i, events[i].id);
    }
    // The label features carried something: some terminal risk is above zero.
    let names = local.spec().feature_names().to_vec();
    let risk = names.iter().position(|n| n.contains("fraud_rate")).unwrap();
    assert!(got.iter().any(|x| x[risk] > 0.0));

    let info_a = a.info().unwrap();
    let info_local = local.info().unwrap();
    assert_eq!(info_a.events_applied, events.len() as u64);
    assert_eq!(info_a.labels_applied, info_local.labels_applied);
    assert_eq!(info_a.entities, info_local.entities);
    assert_eq!(info_a.events_held, info_local.events_held);
    assert_eq!(info_a.watermark, info_local.watermark);
    assert!(info_a.backend.starts_with("redis "), "{}", info_a.backend);
    assert!(info_a.bytes_per_entity > 0.0);
}

#[test]
fn every_feature_kind_matches_the_local_state_one_event_at_a_time() {
    let Some(url) = redis_url("rich spec equivalence") else {
        return;
    };
    let spec = rich_spec("0s");
    let mut events = Vec::new();
    let mut x: u64 = 7;
    let mut ts = 1_700_000_000;
    for i in 0..600 {
        // A small linear congruential stream: customers 0..6, terminals shared across them.
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ts += (x >> 40) as i64 % 3_000;
        let c = (x >> 20) % 6;
        let t = (c + (x >> 30) % 3) % 5;
        let mut e = event(
            &format!("e{i}"),
            ts,
            &format!("c{c}"),
            &format!("t{t}"),
            ((x >> 8) % 20_000) as f64 / 100.0,
        );
        e.label = Some((x >> 50).is_multiple_of(9));
        events.push(e);
    }
    let dir = TempDir::new("rich");
    let (local, _) = LocalState::recover(&dir.0, &spec, None).unwrap();
    let expected = drive(&[&local], &events, 1);
    let opts = options();
    let a = replica(&url, &opts, "rich", &spec);
    let b = replica(&url, &opts, "rich", &spec);
    let got = drive(&[a.as_ref(), b.as_ref()], &events, 1);
    assert_eq!(got, expected);
}

#[test]
fn racing_replicas_lose_no_update_of_a_hot_card() {
    let Some(url) = redis_url("racing replicas") else {
        return;
    };
    let spec = rich_spec("30d");
    let opts = options();
    let replicas: Vec<Arc<dyn OnlineState>> =
        (0..2).map(|_| replica(&url, &opts, "hot", &spec)).collect();
    let t0 = 1_700_000_000;
    let threads = 8;
    let per_thread = 40;
    std::thread::scope(|s| {
        for th in 0..threads {
            let r = Arc::clone(&replicas[th % 2]);
            s.spawn(move || {
                for i in 0..per_thread {
                    let e = event(
                        &format!("t{th}-{i}"),
                        t0 + (i * threads + th) as i64,
                        "hot",
                        &format!("term{th}"),
                        10.0,
                    );
                    r.score_and_apply(std::slice::from_ref(&e)).unwrap();
                }
            });
        }
    });
    let n = threads * per_thread;
    let probe = event("probe", t0 + 3_600, "hot", "term0", 10.0);
    let x = replicas[1].score_and_apply(&[probe]).unwrap().remove(0);
    let names = spec.compile().unwrap().feature_names().to_vec();
    let count = names.iter().position(|f| f == "customer_count_1d").unwrap();
    let distinct = names
        .iter()
        .position(|f| f.starts_with("customer_distinct_terminal"))
        .unwrap();
    assert_eq!(
        x[count], n as f64,
        "every concurrent event is in the window"
    );
    assert_eq!(x[distinct], threads as f64);
    let info = replicas[0].info().unwrap();
    assert_eq!(info.events_applied, n as u64 + 1);
    assert_eq!(
        info.events_held,
        2 * (n + 1),
        "customer and terminal windows"
    );
}

#[test]
fn a_refused_batch_changes_nothing_on_any_replica() {
    let Some(url) = redis_url("refused batch") else {
        return;
    };
    let spec = rich_spec("1h");
    let opts = options();
    let a = replica(&url, &opts, "m", &spec);
    let b = replica(&url, &opts, "m", &spec);
    let t0 = 1_700_000_000;
    a.score_and_apply(&[event("x1", t0, "c1", "t1", 5.0)])
        .unwrap();

    // Duplicate id sent to the other replica, second in its batch.
    let err = b
        .score_and_apply(&[
            event("y1", t0 + 10, "c1", "t2", 5.0),
            event("x1", t0 + 20, "c1", "t1", 5.0),
        ])
        .unwrap_err();
    assert_eq!(err.index, Some(1));
    assert!(
        matches!(err.error, FraudError::DuplicateEvent { .. }),
        "{:?}",
        err.error
    );

    // Too far behind the watermark.
    a.score_and_apply(&[event("x2", t0 + 7_200, "c2", "t1", 5.0)])
        .unwrap();
    let err = b
        .score_and_apply(&[
            event("y2", t0 + 7_300, "c1", "t1", 5.0),
            event("y3", t0 + 10, "c1", "t1", 5.0),
        ])
        .unwrap_err();
    assert_eq!(err.index, Some(1));
    assert!(
        matches!(err.error, FraudError::OutOfOrder { .. }),
        "{:?}",
        err.error
    );

    // A negative amount where the spec forbids it.
    let err = b
        .score_and_apply(&[event("y4", t0 + 7_300, "c1", "t1", -1.0)])
        .unwrap_err();
    assert_eq!(err.index, Some(0));

    // Nothing of the refused batches is in state: c1 saw only x1.
    let info = a.info().unwrap();
    assert_eq!(info.events_applied, 2);
    let x = b
        .score_and_apply(&[event("y1", t0 + 7_400, "c1", "t2", 5.0)])
        .unwrap()
        .remove(0);
    let names = spec.compile().unwrap().feature_names().to_vec();
    let count = names.iter().position(|f| f == "customer_count_1d").unwrap();
    assert_eq!(x[count], 1.0);

    // Labels: unknown id, then a known one through the other replica.
    let out = a
        .add_labels(&[
            LabelRequest {
                event_id: "nope".into(),
                fraud: true,
                known_at: None,
            },
            LabelRequest {
                event_id: "x1".into(),
                fraud: true,
                known_at: Some(t0 + 60),
            },
        ])
        .unwrap();
    assert_eq!(out[0], LabelOutcome::NotFound);
    assert_eq!(out[1], LabelOutcome::Applied { records: 2 });
    let info = b.info().unwrap();
    assert_eq!((info.labels_applied, info.labels_unmatched), (1, 1));
}

#[test]
fn models_and_specs_never_share_state() {
    let Some(url) = redis_url("isolation") else {
        return;
    };
    let opts = options();
    let t0 = 1_700_000_000;
    let one = replica(&url, &opts, "one", &rich_spec("1h"));
    let two = replica(&url, &opts, "two", &rich_spec("1h"));
    let other_spec = replica(&url, &opts, "one", &rich_spec("2h"));
    one.score_and_apply(&[event("e1", t0, "c", "t", 1.0)])
        .unwrap();
    // The same id is new to another model and to another spec of the same model.
    two.score_and_apply(&[event("e1", t0, "c", "t", 1.0)])
        .unwrap();
    other_spec
        .score_and_apply(&[event("e1", t0, "c", "t", 1.0)])
        .unwrap();
    assert_eq!(one.info().unwrap().entities, 2);
    assert_eq!(two.info().unwrap().events_applied, 1);
}

#[test]
fn an_unreachable_redis_is_unavailable_not_a_panic() {
    // A port nothing listens on (bound then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = RedisOptions {
        timeout: Duration::from_millis(500),
        ..options()
    };
    let err = RedisStateFactory::connect(&format!("redis://127.0.0.1:{port}"), opts).unwrap_err();
    assert!(matches!(err, FraudError::Unavailable(_)), "{err:?}");
    let err = RedisStateFactory::connect("http://not-redis", RedisOptions::default()).unwrap_err();
    assert!(matches!(err, FraudError::InvalidInput { .. }), "{err:?}");
}
