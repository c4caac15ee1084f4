//! Replays the handbook's simulated card transactions through the feature engine.
//!
//! ```text
//! cargo run --release -p aurum-fraud --example fraud_features -- [features.csv] [spec.toml] [transactions.csv]
//! ```
//!
//! Prints the time for the whole file, events per second and the state's memory per entity, a
//! quick unsupervised baseline (isolation forest fitted on the first 70 % of the time span,
//! measured on the rest), and writes the feature matrix (id, ts, features, label) to the CSV path
//! given as the first argument, for LightGBM or aurum's GBDT.
//!
//! Then the supervised model on the same split: the `fraud_gbdt` family fitted as the job runner
//! fits it (raw events of the training period, replayed inside the fit), scored on the held-out
//! events' features from the full-stream replay (labels delivered a week late, as live), and an
//! ablation of the feature groups with the same GBDT settings.

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use aurum_fraud::metrics::{
    average_precision, card_precision_at_k, precision_recall_at_daily_k, roc_auc,
};
use aurum_fraud::{
    Event, FeatureEngine, FeatureSpec, IsolationForest, IsolationForestParams, labels_from_events,
    replay_into,
};
use serde_json::Value;

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out_path = args.first().map(PathBuf::from);
    let spec_path = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("data/fraud/handbook_features.toml"));
    let data_path = args
        .get(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("data/fraud/handbook_sim_transactions.csv"));
    let mut out = std::io::stdout().lock();

    let spec = FeatureSpec::from_toml_str(&std::fs::read_to_string(&spec_path)?)?;
    let compiled = spec.compile()?;

    let started = Instant::now();
    let mut rdr = csv::Reader::from_path(&data_path)?;
    let header: Vec<String> = rdr.headers()?.iter().map(str::to_string).collect();
    let mut events = Vec::new();
    let mut cells: Vec<Value> = Vec::with_capacity(header.len());
    for rec in rdr.records() {
        let rec = rec?;
        cells.clear();
        cells.extend(rec.iter().map(|c| Value::String(c.to_string())));
        events.push(Event::from_map(
            &compiled,
            header.iter().map(String::as_str).zip(cells.iter()),
        )?);
    }
    let parse_s = started.elapsed().as_secs_f64();

    let labels = labels_from_events(&events);
    let engine = FeatureEngine::new(&spec)?;
    let started = Instant::now();
    let matrix = replay_into(&engine, &events, &labels, 7 * 86_400)?;
    let replay_s = started.elapsed().as_secs_f64();
    let mem = engine.memory_estimate();
    engine.sweep();
    let swept = engine.memory_estimate();
    let stats = engine.stats();

    writeln!(
        out,
        "file            {} ({} events, {} features)",
        data_path.display(),
        events.len(),
        matrix.names.len()
    )?;
    writeln!(
        out,
        "parse + validate {parse_s:.3} s ({:.0} events/s)",
        events.len() as f64 / parse_s
    )?;
    writeln!(
        out,
        "replay          {replay_s:.3} s ({:.0} events/s, {:.2} µs/event)",
        events.len() as f64 / replay_s,
        replay_s * 1e6 / events.len() as f64
    )?;
    writeln!(
        out,
        "state at end    {} entities, {} events held, {:.0} bytes/entity ({:.1} MiB; label index {:.1} MiB)",
        mem.entities,
        mem.events_held,
        mem.bytes_per_entity(),
        (mem.entity_bytes + mem.index_bytes) as f64 / 1048576.0,
        mem.index_bytes as f64 / 1048576.0
    )?;
    writeln!(
        out,
        "after sweep     {} events held, {:.0} bytes/entity ({:.1} MiB)",
        swept.events_held,
        swept.bytes_per_entity(),
        (swept.entity_bytes + swept.index_bytes) as f64 / 1048576.0
    )?;
    writeln!(out, "stats           {stats:?}")?;
    // What a due snapshot holds live traffic up for: the in-memory copy of the state (writing
    // it out happens afterwards, on a background thread).
    let mut copies: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let snap = engine.snapshot();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            drop(snap);
            ms
        })
        .collect();
    copies.sort_by(f64::total_cmp);
    writeln!(
        out,
        "snapshot copy   {:.2} ms (median of 5; min {:.2}, max {:.2})",
        copies[2], copies[0], copies[4]
    )?;
    // What the background thread then spends encoding it: the state as JSON (the format before)
    // and as MessagePack with field names (the snapshot file's format), median of 5 each.
    let snap = engine.snapshot();
    let timed = |encode: &dyn Fn() -> Vec<u8>| {
        let mut runs: Vec<(f64, usize)> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let bytes = encode();
                (t.elapsed().as_secs_f64() * 1e3, bytes.len())
            })
            .collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        runs[2]
    };
    let (json_ms, json_bytes) = timed(&|| serde_json::to_vec(&snap).expect("JSON encodes"));
    let (mp_ms, mp_bytes) = timed(&|| rmp_serde::to_vec_named(&snap).expect("MessagePack encodes"));
    writeln!(
        out,
        "snapshot encode JSON {json_ms:.1} ms, {json_bytes} bytes; MessagePack {mp_ms:.1} ms, {mp_bytes} bytes"
    )?;
    drop(snap);

    // Unsupervised baseline: fit on the first 70 % of the time span, measure on the rest.
    let (t0, t1) = (matrix.ts[0], matrix.ts[matrix.ts.len() - 1]);
    let cut = t0 + (t1 - t0) * 7 / 10;
    let split = matrix.ts.partition_point(|&t| t <= cut);
    let started = Instant::now();
    let forest = IsolationForest::fit(
        &matrix.rows[..split],
        &IsolationForestParams {
            seed: 42,
            ..Default::default()
        },
    )?;
    let scores = forest.score_batch(&matrix.rows[split..])?;
    let y: Vec<bool> = matrix.labels[split..]
        .iter()
        .map(|l| l.unwrap_or(false))
        .collect();
    let days: Vec<i64> = matrix.ts[split..]
        .iter()
        .map(|t| t.div_euclid(86_400))
        .collect();
    let cards: Vec<&str> = events[split..].iter().map(|e| e.keys[0].as_str()).collect();
    let budget = precision_recall_at_daily_k(&days, &scores, &y, 100)?;
    let (cp, _) = card_precision_at_k(&days, &cards, &scores, &y, 100)?;
    writeln!(
        out,
        "iforest (test {} events, {:.2} s): ROC-AUC {:.3}, AP {:.3}, precision@100/day {:.3}, recall@100/day {:.3}, card precision@100 {:.3}",
        scores.len(),
        started.elapsed().as_secs_f64(),
        roc_auc(&scores, &y)?,
        average_precision(&scores, &y)?,
        budget.mean_precision,
        budget.recall,
        cp
    )?;

    supervised(&mut out, &events, &matrix, split, &days, &cards, &y)?;

    if let Some(path) = out_path {
        let started = Instant::now();
        let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        matrix.write_csv(file)?;
        writeln!(
            out,
            "wrote           {} ({:.2} s)",
            path.display(),
            started.elapsed().as_secs_f64()
        )?;
    } else {
        writeln!(
            out,
            "(give a CSV path as the first argument to write the feature matrix)"
        )?;
    }
    Ok(())
}

/// The `fraud_gbdt` family and the feature-group ablation on the time split.
fn supervised(
    out: &mut impl Write,
    events: &[Event],
    matrix: &aurum_fraud::FeatureMatrix,
    split: usize,
    days: &[i64],
    cards: &[&str],
    y: &[bool],
) -> Result<(), Box<dyn Error>> {
    use aurum_contract::{FitContext, ModelFamily, TrainingData};
    use aurum_core::{BinaryTarget, CancelToken, Column, ColumnData, NoProgress, Table, Target};
    use aurum_fraud::gbdt_family::FRAUD_GBDT;

    let train = &events[..split];
    let int = |name: &str, f: &dyn Fn(&Event) -> i64| Column {
        name: name.into(),
        data: ColumnData::Integer(train.iter().map(|e| Some(f(e))).collect()),
    };
    let raw = Table::new(vec![
        int("TRANSACTION_ID", &|e| e.id.parse().unwrap_or(0)),
        int("TX_TIME_SECONDS", &|e| e.ts),
        int("CUSTOMER_ID", &|e| e.keys[0].parse().unwrap_or(0)),
        int("TERMINAL_ID", &|e| e.keys[1].parse().unwrap_or(0)),
        Column {
            name: "TX_AMOUNT".into(),
            data: ColumnData::Float(train.iter().map(|e| e.amount).collect()),
        },
    ])?;
    let target = BinaryTarget {
        column: "TX_FRAUD".into(),
        y: train
            .iter()
            .map(|e| f64::from(u8::from(e.label == Some(true))))
            .collect(),
        positive_label: "1".into(),
        negative_label: "0".into(),
    };
    let cancel = CancelToken::new();
    let ctx = FitContext {
        progress: &NoProgress,
        cancel: &cancel,
        seed: 42,
    };
    let report = |out: &mut dyn Write,
                  name: &str,
                  scores: &[f64],
                  secs: f64|
     -> Result<(), Box<dyn Error>> {
        let budget = precision_recall_at_daily_k(days, scores, y, 100)?;
        let (cp, _) = card_precision_at_k(days, cards, scores, y, 100)?;
        writeln!(
            out,
            "{name:<28} fit {secs:6.1} s: ROC-AUC {:.3}, PR-AUC (AP) {:.3}, precision@100/day {:.3}, recall@100/day {:.3}, card precision@100 {:.3}",
            roc_auc(scores, y)?,
            average_precision(scores, y)?,
            budget.mean_precision,
            budget.recall,
            cp
        )?;
        Ok(())
    };

    let target_any = Target::Binary(target.clone());
    // The family's defaults, then the previous defaults (balanced weights, depth-wise depth 5)
    // and the step between them (unweighted, depth-wise depth 5).
    for (name, extra) in [
        ("fraud_gbdt (family defaults)", ""),
        (
            "fraud_gbdt previous defaults",
            "class_weight=balanced,max_leaves=0,max_depth=5",
        ),
        (
            "fraud_gbdt none, depth 5",
            "class_weight=none,max_leaves=0,max_depth=5",
        ),
    ] {
        let started = Instant::now();
        let mut params: aurum_core::Params = [("spec".to_string(), "handbook".to_string())].into();
        for kv in extra.split(',').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            params.insert(k.to_string(), v.to_string());
        }
        let fitted = FRAUD_GBDT.fit(&TrainingData::new(&raw, &target_any), &params, &ctx)?;
        let fit_s = started.elapsed().as_secs_f64();
        let model = FRAUD_GBDT.model_from_payload(&fitted.payload()?)?;
        let scores: Vec<f64> = matrix.rows[split..]
            .iter()
            .map(|x| model.score_features(x).map(|(p, _)| p))
            .collect::<Result<_, _>>()?;
        report(out, name, &scores, fit_s)?;
    }

    // Feature groups, the same GBDT settings as the family's defaults.
    let gbdt = aurum_credit::gbdt::GbdtParams::from_params(
        &aurum_fraud::gbdt_family::GBDT_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )?;
    type Keep = fn(&str) -> bool;
    let groups: [(&str, Keep); 3] = [
        ("amount only", |n| n == "tx_amount"),
        ("+ customer", |n| {
            n == "tx_amount" || n.starts_with("customer")
        }),
        ("+ terminal risk (all)", |_| true),
    ];
    for (name, keep) in groups {
        let cols: Vec<usize> = (0..matrix.names.len())
            .filter(|&j| keep(matrix.names[j].to_lowercase().as_str()))
            .collect();
        let table = |rows: &[Vec<f64>]| {
            Table::new(
                cols.iter()
                    .map(|&j| Column {
                        name: matrix.names[j].clone(),
                        data: ColumnData::Float(rows.iter().map(|r| Some(r[j])).collect()),
                    })
                    .collect(),
            )
        };
        let started = Instant::now();
        let m = aurum_credit::gbdt::fit(&table(&matrix.rows[..split])?, &target, &gbdt, &ctx)?;
        let fit_s = started.elapsed().as_secs_f64();
        let scores = aurum_contract::BinaryClassifier::predict_proba_table(
            &m,
            &table(&matrix.rows[split..])?,
        )?;
        report(out, &format!("ablation: {name}"), &scores, fit_s)?;
    }
    Ok(())
}
