use std::path::PathBuf;

use aurum_fraud::{Event, FeatureSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const DAY: i64 = 86_400;

/// A spec that uses every feature kind, with windows short enough for small streams.
pub fn rich_spec() -> FeatureSpec {
    FeatureSpec::from_toml_str(
        r#"
[schema]
id = "id"
timestamp = "ts"
amount = "amount"
entities = ["customer", "terminal"]
label = "fraud"
[constraints]
amount_min = 0.0
max_events_per_entity = 60
[[features]]
kind = "amount"
[[features]]
kind = "count"
entity = "customer"
window = "1d"
[[features]]
kind = "sum"
entity = "customer"
window = "3d"
[[features]]
kind = "mean"
entity = "customer"
window = "3d"
[[features]]
kind = "max"
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
kind = "amount_to_mean"
entity = "customer"
window = "3d"
[[features]]
kind = "amount_zscore"
entity = "customer"
window = "3d"
[[features]]
kind = "first_seen"
entity = "customer"
of = "terminal"
[[features]]
kind = "count"
entity = "terminal"
window = "2d"
delay = "1d"
[[features]]
kind = "fraud_count"
entity = "terminal"
window = "3d"
delay = "2d"
[[features]]
kind = "fraud_rate"
entity = "terminal"
window = "3d"
delay = "2d"
[[features]]
kind = "fraud_rate"
entity = "customer"
window = "2d"
delay = "12h"
"#,
    )
    .unwrap()
}

pub fn event(id: &str, ts: i64, customer: &str, terminal: &str, amount: f64) -> Event {
    Event {
        id: id.into(),
        ts,
        keys: vec![customer.into(), terminal.into()],
        amount: Some(amount),
        label: None,
        extra: Default::default(),
    }
}

/// `n` events over about `days` days, sorted by time, with ties, and labels (about 12 % fraud).
pub fn stream(n: usize, days: i64, seed: u64) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ts: Vec<i64> = (0..n)
        .map(|_| rng.random_range(0..days * DAY) / 600 * 600)
        .collect();
    ts.sort_unstable();
    ts.into_iter()
        .enumerate()
        .map(|(i, t)| {
            let c = rng.random_range(0..8);
            let term = (c + rng.random_range(0..3)) % 6;
            let mut e = event(
                &format!("e{i}"),
                t,
                &format!("c{c}"),
                &format!("t{term}"),
                (rng.random_range(1.0..200.0f64) * 100.0).round() / 100.0,
            );
            e.label = Some(rng.random_bool(0.12));
            e
        })
        .collect()
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "aurum-fraud-it-{}-{name}-{nanos}",
            std::process::id()
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
