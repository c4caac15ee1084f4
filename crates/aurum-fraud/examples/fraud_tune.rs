//! Chooses GBDT settings for `fraud_gbdt` on a validation period carved from the training period
//! only, so the held-out period plays no part in the choice.
//!
//! ```text
//! cargo run --release -p aurum-fraud --example fraud_tune -- features.csv [k=v,k=v ...]
//! ```
//!
//! `features.csv` is the matrix `fraud_features` writes (id, ts, features, label). The split
//! rule is the benchmark's: the first 70 % of the time span is the training period. Rows after it
//! are dropped as soon as the file is read. Within the training period the first 80 % of its
//! time span fits each candidate and the last 20 % (the most recent weeks, as the held-out period
//! is to the training period) measures it, and so does a second fold one step back (fit on the
//! first 60 %, validate on the next 20 %): PR-AUC (average precision, the figure the target is
//! set on) and ROC-AUC. Each argument after the path is one candidate as comma-separated GBDT
//! parameters (`class_weight=none,max_leaves=31`); without any, a built-in grid over tree shape,
//! leaf size, L2 and class weighting runs.

use std::error::Error;
use std::io::Write;
use std::time::Instant;

use aurum_core::{BinaryTarget, CancelToken, Column, ColumnData, NoProgress, Params, Table};
use aurum_fraud::metrics::{average_precision, roc_auc};

/// The candidates when none is given: the current default, then one change at a time and the
/// LightGBM-like shapes.
const GRID: &[&str] = &[
    "class_weight=balanced",
    "class_weight=none",
    "class_weight=none,l2=0",
    "class_weight=none,max_depth=6",
    "class_weight=balanced,max_leaves=31,max_depth=16",
    "class_weight=none,max_leaves=31,max_depth=16",
    "class_weight=none,max_leaves=15,max_depth=16",
    "class_weight=none,max_leaves=63,max_depth=16",
];

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or("usage: fraud_tune features.csv [k=v,k=v ...]")?;
    let candidates: Vec<String> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        GRID.iter().map(|s| s.to_string()).collect()
    };

    let mut rdr = csv::Reader::from_path(path)?;
    let header: Vec<String> = rdr.headers()?.iter().map(str::to_string).collect();
    let names: Vec<String> = header[2..header.len() - 1].to_vec();
    let (mut ts, mut rows, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for rec in rdr.records() {
        let rec = rec?;
        ts.push(rec[1].parse::<i64>()?);
        rows.push(
            (2..header.len() - 1)
                .map(|j| rec[j].parse::<f64>())
                .collect::<Result<Vec<_>, _>>()?,
        );
        labels.push(&rec[header.len() - 1] == "1");
    }
    // The benchmark's training period; everything after it is dropped here.
    let (t0, t1) = (ts[0], ts[ts.len() - 1]);
    let cut = t0 + (t1 - t0) * 7 / 10;
    let train_end = ts.partition_point(|&t| t <= cut);
    ts.truncate(train_end);
    rows.truncate(train_end);
    labels.truncate(train_end);
    // Two folds within it, rolling forward: fit on the first 60 % of its time span and validate
    // on the next 20 %, then fit on the first 80 % and validate on the last 20 %.
    let at = |share: i64| ts[..train_end].partition_point(|&t| t <= t0 + (cut - t0) * share / 10);
    let folds = [(at(6), at(8)), (at(8), train_end)];

    let table = |lo: usize, hi: usize| {
        Table::new(
            names
                .iter()
                .enumerate()
                .map(|(j, n)| Column {
                    name: n.clone(),
                    data: ColumnData::Float(rows[lo..hi].iter().map(|r| Some(r[j])).collect()),
                })
                .collect(),
        )
    };
    let frauds = |lo: usize, hi: usize| labels[lo..hi].iter().filter(|&&l| l).count();
    let mut out = std::io::stdout().lock();
    let mut data = Vec::new();
    for (k, &(fit_end, valid_end)) in folds.iter().enumerate() {
        writeln!(
            out,
            "fold {k}: fit on {fit_end} rows ({} frauds), validate on {} ({} frauds)",
            frauds(0, fit_end),
            valid_end - fit_end,
            frauds(fit_end, valid_end)
        )?;
        let target = BinaryTarget {
            column: "label".into(),
            y: labels[..fit_end]
                .iter()
                .map(|&l| f64::from(u8::from(l)))
                .collect(),
            positive_label: "1".into(),
            negative_label: "0".into(),
        };
        data.push((
            table(0, fit_end)?,
            target,
            table(fit_end, valid_end)?,
            &labels[fit_end..valid_end],
        ));
    }

    let cancel = CancelToken::new();
    let ctx = aurum_contract::FitContext {
        progress: &NoProgress,
        cancel: &cancel,
        seed: 42,
    };
    for c in candidates {
        let params: Params = c
            .split(',')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let gbdt = aurum_credit::gbdt::GbdtParams::from_params(&params)?;
        let started = Instant::now();
        let (mut ap, mut auc, mut trees) = (Vec::new(), Vec::new(), Vec::new());
        let mut flagged = Vec::new();
        for (fit_x, target, valid_x, valid_y) in &data {
            let m = aurum_credit::gbdt::fit(fit_x, target, &gbdt, &ctx)?;
            let scores = aurum_contract::BinaryClassifier::predict_proba_table(&m, valid_x)?;
            ap.push(average_precision(&scores, valid_y)?);
            auc.push(roc_auc(&scores, valid_y)?);
            trees.push(m.n_trees().to_string());
            // What the family's default thresholds (review_at 0.5, block_at 0.9) would flag.
            for at in [0.5, 0.9] {
                let hit: Vec<bool> = scores.iter().map(|&p| p >= at).collect();
                let n = hit.iter().filter(|&&h| h).count();
                let tp = hit.iter().zip(*valid_y).filter(|&(&h, &y)| h && y).count();
                let frauds = valid_y.iter().filter(|&&y| y).count();
                flagged.push(format!("p>={at}: {n} events, {tp} frauds of {frauds}"));
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let each = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        writeln!(
            out,
            "{c:<64} validation PR-AUC mean {:.4} ({}), ROC-AUC mean {:.4} ({}); trees {}; {:.0} s",
            mean(&ap),
            each(&ap),
            mean(&auc),
            each(&auc),
            trees.join(" "),
            started.elapsed().as_secs_f64()
        )?;
        writeln!(out, "    flagged: {}", flagged.join("; "))?;
    }
    Ok(())
}
