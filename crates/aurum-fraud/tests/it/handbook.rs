//! The handbook feature spec on the real (simulated) transaction file, checked against a
//! brute-force reference that recomputes every feature from the raw rows.

use std::collections::HashMap;
use std::path::PathBuf;

use aurum_fraud::{Event, FeatureSpec, labels_from_events, replay};
use serde_json::Value;

use crate::common::DAY;

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

/// The rows of the first `customers` customers (whole histories, in file order).
fn load(spec: &FeatureSpec, customers: u32) -> Vec<Event> {
    let compiled = spec.compile().unwrap();
    let mut rdr =
        csv::Reader::from_path(repo_file("data/fraud/handbook_sim_transactions.csv")).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let cust = header.iter().position(|h| h == "CUSTOMER_ID").unwrap();
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        if rec[cust].parse::<u32>().unwrap() >= customers {
            continue;
        }
        let values: Vec<Value> = rec.iter().map(|c| Value::String(c.to_string())).collect();
        out.push(
            Event::from_map(
                &compiled,
                header.iter().map(String::as_str).zip(values.iter()),
            )
            .unwrap(),
        );
    }
    out
}

#[test]
fn handbook_spec_names() {
    let c = handbook_spec().compile().unwrap();
    assert_eq!(
        c.feature_names(),
        [
            "tx_amount",
            "customer_id_count_1d",
            "customer_id_amount_mean_1d",
            "customer_id_count_7d",
            "customer_id_amount_mean_7d",
            "customer_id_count_30d",
            "customer_id_amount_mean_30d",
            "terminal_id_count_1d_delay_7d",
            "terminal_id_fraud_rate_1d_delay_7d",
            "terminal_id_count_7d_delay_7d",
            "terminal_id_fraud_rate_7d_delay_7d",
            "terminal_id_count_30d_delay_7d",
            "terminal_id_fraud_rate_30d_delay_7d",
        ]
    );
}

#[test]
fn handbook_features_match_a_brute_force_reference() {
    let spec = handbook_spec();
    let events = load(&spec, 160);
    assert!(events.len() > 7_000, "{}", events.len());
    let delay = 7 * DAY;
    let m = replay(&spec, &events, &labels_from_events(&events), delay).unwrap();
    let mut by_customer: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_terminal: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut frauds_seen = 0;
    for (i, e) in events.iter().enumerate() {
        let row = &m.rows[i];
        let t = e.ts;
        let mut expect = vec![e.amount.unwrap()];
        let prior_c = by_customer
            .get(e.keys[0].as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for w in [1, 7, 30] {
            let xs: Vec<f64> = prior_c
                .iter()
                .filter(|&&j| events[j].ts > t - w * DAY)
                .map(|&j| events[j].amount.unwrap())
                .collect();
            let sum: f64 = xs.iter().sum();
            expect.push(xs.len() as f64);
            expect.push(if xs.is_empty() {
                0.0
            } else {
                sum / xs.len() as f64
            });
        }
        let prior_t = by_terminal
            .get(e.keys[1].as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for w in [1, 7, 30] {
            let (lo, hi) = (t - delay - w * DAY, t - delay);
            let in_window: Vec<usize> = prior_t
                .iter()
                .copied()
                .filter(|&j| events[j].ts > lo && events[j].ts <= hi)
                .collect();
            // Every label in (lo, hi] is known by t: it arrived 7 days after its event.
            let frauds = in_window
                .iter()
                .filter(|&&j| events[j].label == Some(true))
                .count();
            frauds_seen += frauds;
            expect.push(in_window.len() as f64);
            expect.push(if in_window.is_empty() {
                0.0
            } else {
                frauds as f64 / in_window.len() as f64
            });
        }
        for (k, (a, b)) in row.iter().zip(&expect).enumerate() {
            assert!(
                (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                "row {i} ({}) {}: {a} vs {b}",
                e.id,
                m.names[k]
            );
        }
        by_customer.entry(e.keys[0].as_str()).or_default().push(i);
        by_terminal.entry(e.keys[1].as_str()).or_default().push(i);
    }
    assert!(frauds_seen > 50, "{frauds_seen}");
}

/// `fraud_gbdt` with its defaults on the handbook file: unweighted leaf-wise trees, whose scores
/// are probabilities on the training base rate (their mean over the rows stays near the fraud
/// rate), where `class_weight=balanced` lifts every score towards even odds. This is
/// what the default `review_at` / `block_at` are read against.
#[test]
fn fraud_gbdt_defaults_fit_unweighted_leaf_wise_trees_on_the_base_rate() {
    use aurum_contract::{FitContext, ModelFamily, TrainingData};
    use aurum_core::{BinaryTarget, CancelToken, Column, ColumnData, NoProgress, Table, Target};
    use aurum_fraud::gbdt_family::FRAUD_GBDT;

    let mut events = load(&handbook_spec(), 400);
    events.sort_by_key(|e| e.ts);
    let int = |name: &str, f: &dyn Fn(&Event) -> i64| Column {
        name: name.into(),
        data: ColumnData::Integer(events.iter().map(|e| Some(f(e))).collect()),
    };
    let raw = Table::new(vec![
        int("TRANSACTION_ID", &|e| e.id.parse().unwrap()),
        int("TX_TIME_SECONDS", &|e| e.ts),
        int("CUSTOMER_ID", &|e| e.keys[0].parse().unwrap()),
        int("TERMINAL_ID", &|e| e.keys[1].parse().unwrap()),
        Column {
            name: "TX_AMOUNT".into(),
            data: ColumnData::Float(events.iter().map(|e| e.amount).collect()),
        },
    ])
    .unwrap();
    let y: Vec<f64> = events
        .iter()
        .map(|e| f64::from(u8::from(e.label == Some(true))))
        .collect();
    let rate = y.iter().sum::<f64>() / y.len() as f64;
    assert!(rate > 0.001 && rate < 0.05, "{rate}");
    let target = Target::Binary(BinaryTarget {
        column: "TX_FRAUD".into(),
        y,
        positive_label: "1".into(),
        negative_label: "0".into(),
    });
    let cancel = CancelToken::new();
    let ctx = FitContext {
        progress: &NoProgress,
        cancel: &cancel,
        seed: 7,
    };
    let mean_score = |extra: &[(&str, &str)]| {
        let params: aurum_core::Params = [("n_estimators", "30")]
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let m = FRAUD_GBDT
            .fit(&TrainingData::new(&raw, &target), &params, &ctx)
            .unwrap();
        let p = m.as_binary().unwrap().predict_proba_table(&raw).unwrap();
        (m.params(), p.iter().sum::<f64>() / p.len() as f64)
    };
    let (params, unweighted) = mean_score(&[]);
    assert_eq!(params["class_weight"], "none", "{params}");
    assert_eq!(params["max_leaves"], 31, "{params}");
    assert_eq!(params["max_depth"], 16, "{params}");
    assert!(
        unweighted < 2.0 * rate,
        "mean score {unweighted}, fraud rate {rate}"
    );
    let (_, balanced) = mean_score(&[("class_weight", "balanced")]);
    assert!(balanced > 10.0 * rate, "{balanced}, fraud rate {rate}");

    // A payload written before the fraud families shared one module named the learner's
    // parameters and payload `gbdt`; it still loads and scores the same.
    let params: aurum_core::Params = [("n_estimators".to_string(), "10".to_string())].into();
    let m = FRAUD_GBDT
        .fit(&TrainingData::new(&raw, &target), &params, &ctx)
        .unwrap();
    let mut old: serde_json::Value = serde_json::from_slice(&m.payload().unwrap()).unwrap();
    let scorer = old.as_object_mut().unwrap().remove("scorer").unwrap();
    old["gbdt"] = scorer;
    let learner = old["params"]
        .as_object_mut()
        .unwrap()
        .remove("learner")
        .unwrap();
    old["params"]["gbdt"] = learner;
    let back = FRAUD_GBDT
        .load_payload(&serde_json::to_vec(&old).unwrap())
        .unwrap();
    assert_eq!(back.params(), m.params());
    let (a, b) = (
        m.as_binary().unwrap().predict_proba_table(&raw).unwrap(),
        back.as_binary().unwrap().predict_proba_table(&raw).unwrap(),
    );
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
}
