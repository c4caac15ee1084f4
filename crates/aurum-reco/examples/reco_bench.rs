//! Recommendation benchmark on MovieLens (small): ratings >= 4 are positives, each user's latest
//! 20 % of positives are held out, and every model ranks all movies the user did not hold in
//! train. Prints fit time and NDCG@10 / P@10 / R@10 / MAP@10 / coverage / novelty side by side.
//!
//! ```sh
//! cargo run --release -p aurum-reco --example reco_bench -- data/ratings/movielens_small.csv
//! # options: --threads N        ALS threads (default: all cores)
//! #          --out DIR          also write DIR/train.csv, DIR/test.csv and DIR/aurum.json
//! #          --tune             grid-search EASE, ALS, BM25 item-item and the EASE + ALS blend
//! #                             on a validation split
//! #          --tune-blend       only the blend's weight, on the EASE and ALS constants below
//! #          --study            validation only: EASE recency half-lives, and four ways of
//! #                             normalising EASE and ALS scores before mixing them
//! ```
//!
//! `--tune` is honest: it carves a validation split out of the *training* data (each user's
//! latest 20 % of train positives), selects every model's hyper-parameters on it, refits the
//! winners on all of train and reports the test figure once. The EASE and ALS constants below
//! were chosen that way. `bench/reco/run.sh` runs the Python `implicit` library on the files
//! `--out` writes, with the same parameters.

use std::io::Write;
use std::time::Instant;

use aurum_reco::metrics::{Evaluation, evaluate};
use aurum_reco::models::als::{Als, AlsParams};
use aurum_reco::models::blend::{Blend, BlendParams};
use aurum_reco::models::bpr::{Bpr, BprParams};
use aurum_reco::models::content::{Content, ContentParams};
use aurum_reco::models::ease::{Ease, EaseParams};
use aurum_reco::models::hybrid::{Hybrid, HybridParams};
use aurum_reco::models::item_knn::{ItemKnn, ItemKnnParams, Similarity};
use aurum_reco::models::popularity::{Popularity, PopularityParams};
use aurum_reco::models::random_walk::{RandomWalk, RandomWalkParams};
use aurum_reco::split::time_split;
use aurum_reco::{
    AttributeRow, AttributeTable, FitControl, InteractionOptions, InteractionRecord, Interactions,
    Recommender, Weighting,
};

/// The confidence `1 + alpha` of the shared split, which item-item BM25, BPR and the hybrid read
/// (EASE reads presence only; ALS is fitted on its own alpha).
const SPLIT_ALPHA: f32 = 5.0;
/// ALS settings chosen with `--tune` on the validation split carved from train.
const ALS_FACTORS: usize = 64;
const ALS_REG: f32 = 20.0;
const ALS_ALPHA: f32 = 1.0;
const ALS_ITERATIONS: usize = 15;
/// The best ALS on the validation split once recency-faded confidences are in the grid.
const ALS_R_FACTORS: usize = 128;
const ALS_R_REG: f32 = 20.0;
const ALS_R_ALPHA: f32 = 10.0;
const ALS_R_RECENCY: f32 = 0.1;
/// EASE settings chosen with `--tune` on the validation split carved from train.
const EASE_REG: f32 = 100.0;
const EASE_NEIGHBOURS: usize = 50;
const EASE_DROPOUT: f32 = 0.25;
const EASE_RECENCY: f32 = 0.15;
/// The blend's EASE weight, chosen with `--tune` on the validation split carved from train
/// (the components keep the EASE and recency-ALS settings above).
const BLEND_EASE_WEIGHT: f32 = 0.55;

type Fail = Box<dyn std::error::Error>;

struct Row {
    name: String,
    fit_s: f64,
    eval: Evaluation,
}

fn load(path: &str) -> Result<(Vec<InteractionRecord>, AttributeTable), Fail> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| format!("{path}: {e}"))?;
    let h = rdr.headers()?.clone();
    let col = |name: &str| {
        h.iter()
            .position(|c| c == name)
            .ok_or_else(|| format!("{path}: no column {name}"))
    };
    let (mi, ui, ri, ti, gi) = (
        col("movieId")?,
        col("userId")?,
        col("rating")?,
        col("timestamp")?,
        col("genres")?,
    );
    let mut records = Vec::new();
    let mut genres = std::collections::BTreeMap::new();
    for (line, row) in rdr.records().enumerate() {
        let row = row?;
        let at = |i: usize| row.get(i).unwrap_or("");
        let rating: f32 = at(ri)
            .parse()
            .map_err(|_| format!("{path}: line {}: bad rating", line + 2))?;
        let ts: i64 = at(ti)
            .parse()
            .map_err(|_| format!("{path}: line {}: bad timestamp", line + 2))?;
        records.push(InteractionRecord::new(at(ui), at(mi)).weight(rating).at(ts));
        genres
            .entry(at(mi).to_string())
            .or_insert_with(|| at(gi).to_string());
    }
    let rows = genres
        .into_iter()
        .map(|(id, g)| {
            g.split('|')
                .filter(|g| !g.is_empty())
                .fold(AttributeRow::new(id), |r, g| r.with("genre", g))
        })
        .collect();
    Ok((records, AttributeTable::items(rows)?))
}

fn run(
    name: &str,
    train: &Interactions,
    test: &Interactions,
    fit: impl FnOnce() -> Result<Box<dyn Recommender>, Fail>,
) -> Result<Row, Fail> {
    let t = Instant::now();
    let model = fit()?;
    let fit_s = t.elapsed().as_secs_f64();
    let eval = evaluate(model.as_ref(), train, test, 10)?;
    eprintln!("{name:<28} fit {fit_s:>7.3} s  NDCG@10 {:.4}", eval.ndcg);
    Ok(Row {
        name: name.to_string(),
        fit_s,
        eval,
    })
}

/// Grid search on a validation split carved from train, then one refit on all of train per
/// model family and one test evaluation of each winner.
fn tune_on_validation(
    split_for: &dyn Fn(f32) -> Result<aurum_reco::split::Split, Fail>,
    ctl: &FitControl,
    threads: usize,
    blend_only: bool,
) -> Result<(), Fail> {
    // Validation: each user's latest 20 % of *train* positives; the test split is not read
    // until the winners are refitted.
    let valid_for =
        |alpha: f32| -> Result<_, Fail> { Ok(time_split(&split_for(alpha)?.train, 0.2)?) };
    let v = valid_for(SPLIT_ALPHA)?;
    eprintln!(
        "validation: {} fit / {} validation positives",
        v.train.nnz(),
        v.test.nnz()
    );
    let mut report = Vec::new();
    if blend_only {
        let ease = EaseParams {
            regularization: EASE_REG,
            dropout: EASE_DROPOUT,
            recency_half_life: EASE_RECENCY,
            neighbours: EASE_NEIGHBOURS,
            threads,
            ..Default::default()
        };
        let als = als_recency_params(threads);
        report.push(tune_blend(
            &valid_for,
            split_for,
            ctl,
            &ease,
            &als,
            ALS_R_ALPHA,
        )?);
        let mut out = std::io::stdout().lock();
        for line in report {
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }

    // (validation NDCG, regularization, dropout, recency half-life, weights kept per item)
    let mut best = (0.0, 0.0f32, 0.0f32, 0.0f32, 0usize);
    for dropout in [0.0f32, 0.1, 0.25] {
        for reg in [50.0f32, 100.0, 200.0, 300.0, 500.0] {
            let p = EaseParams {
                regularization: reg,
                dropout,
                neighbours: 30_000,
                threads,
                ..Default::default()
            };
            let mut m = Ease::fit(&v.train, &p, ctl)?;
            // Recency weights only change how a user's held items are summed: no refit.
            for h in [0.0f32, 0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5] {
                m = m.with_recency(&v.train, h)?;
                let e = evaluate(&m, &v.train, &v.test, 10)?;
                eprintln!(
                    "valid EASE dropout {dropout:<4} reg {reg:<6} recency {h:<4} (dense) NDCG@10 {:.4}",
                    e.ndcg
                );
                if e.ndcg > best.0 {
                    best = (e.ndcg, reg, dropout, h, 30_000);
                }
            }
        }
    }
    let dense = best.0;
    let (reg, dropout, recency) = (best.1, best.2, best.3);
    for keep in [50usize, 100, 200, 500] {
        let p = EaseParams {
            regularization: reg,
            dropout,
            recency_half_life: recency,
            neighbours: keep,
            threads,
            ..Default::default()
        };
        let e = evaluate(&Ease::fit(&v.train, &p, ctl)?, &v.train, &v.test, 10)?;
        eprintln!(
            "valid EASE dropout {dropout} reg {reg} recency {recency} {keep:>5} weights/item NDCG@10 {:.4}",
            e.ndcg
        );
        // The smallest model within 0.0005 of the dense figure.
        if e.ndcg >= dense - 0.0005 && keep < best.4 {
            best = (e.ndcg.max(best.0), reg, dropout, recency, keep);
        }
    }
    let keep = best.4;
    let s = split_for(SPLIT_ALPHA)?;
    let p = EaseParams {
        regularization: reg,
        dropout,
        recency_half_life: recency,
        neighbours: keep,
        threads,
        ..Default::default()
    };
    let e = evaluate(&Ease::fit(&s.train, &p, ctl)?, &s.train, &s.test, 10)?;
    report.push(format!("EASE reg={reg} dropout={dropout} recency_half_life={recency} neighbours={keep}: validation {dense:.4}, test NDCG@10 {:.4}", e.ndcg));
    let ease_winner = p;
    // (validation NDCG, alpha, factors, regularization, recency half-life): the best overall
    // and the best without recency (the setting `implicit` can be compared on).
    let mut best = (0.0, 0.0f32, 0usize, 0.0f32, 0.0f32);
    let mut best_plain = best;
    for alpha in [1.0f32, 5.0, 10.0, 20.0] {
        let vs = valid_for(alpha)?;
        for factors in [64usize, 128] {
            for reg in [1.0f32, 5.0, 20.0, 50.0] {
                for h in [0.0f32, 0.05, 0.1, 0.25, 0.5] {
                    let p = AlsParams {
                        factors,
                        regularization: reg,
                        iterations: ALS_ITERATIONS,
                        recency_half_life: h,
                        threads,
                        ..Default::default()
                    };
                    let e = evaluate(&Als::fit(&vs.train, &p, ctl)?, &vs.train, &vs.test, 10)?;
                    eprintln!(
                        "valid ALS alpha {alpha} factors {factors} reg {reg:<4} recency {h:<4} NDCG@10 {:.4}",
                        e.ndcg
                    );
                    if e.ndcg > best.0 {
                        best = (e.ndcg, alpha, factors, reg, h);
                    }
                    if h == 0.0 && e.ndcg > best_plain.0 {
                        best_plain = (e.ndcg, alpha, factors, reg, h);
                    }
                }
            }
        }
    }
    let mut als_winner = None;
    for (vbest, alpha, factors, reg, h) in [best_plain, best] {
        let s = split_for(alpha)?;
        let p = AlsParams {
            factors,
            regularization: reg,
            iterations: ALS_ITERATIONS,
            recency_half_life: h,
            threads,
            ..Default::default()
        };
        let e = evaluate(&Als::fit(&s.train, &p, ctl)?, &s.train, &s.test, 10)?;
        report.push(format!(
            "ALS alpha={alpha} factors={factors} reg={reg} recency_half_life={h}: validation {vbest:.4}, test NDCG@10 {:.4}",
            e.ndcg
        ));
        als_winner = Some((p, alpha));
    }
    let Some((p, alpha)) = als_winner else {
        return Err("no ALS winner".into());
    };
    report.push(tune_blend(
        &valid_for,
        split_for,
        ctl,
        &ease_winner,
        &p,
        alpha,
    )?);

    let mut best = (0.0, 0usize);
    for keep in [20usize, 50, 100, 200] {
        let p = ItemKnnParams {
            similarity: Similarity::Bm25 { k1: 1.2, b: 0.75 },
            neighbours: keep,
        };
        let e = evaluate(&ItemKnn::fit(&v.train, &p, ctl)?, &v.train, &v.test, 10)?;
        eprintln!("valid item-item BM25 {keep:>4} nn NDCG@10 {:.4}", e.ndcg);
        if e.ndcg > best.0 {
            best = (e.ndcg, keep);
        }
    }
    let s = split_for(SPLIT_ALPHA)?;
    let p = ItemKnnParams {
        similarity: Similarity::Bm25 { k1: 1.2, b: 0.75 },
        neighbours: best.1,
    };
    let e = evaluate(&ItemKnn::fit(&s.train, &p, ctl)?, &s.train, &s.test, 10)?;
    report.push(format!(
        "item-item BM25 {} nn: validation {:.4}, test NDCG@10 {:.4}",
        best.1, best.0, e.ndcg
    ));

    let mut out = std::io::stdout().lock();
    for line in report {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The recency-ALS constants as parameters.
fn als_recency_params(threads: usize) -> AlsParams {
    AlsParams {
        factors: ALS_R_FACTORS,
        regularization: ALS_R_REG,
        iterations: ALS_ITERATIONS,
        recency_half_life: ALS_R_RECENCY,
        threads,
        ..Default::default()
    }
}

/// The blend's EASE weight on the validation split, with the components' validation-selected
/// settings; then one refit on all of train and one test evaluation.
fn tune_blend(
    valid_for: &dyn Fn(f32) -> Result<aurum_reco::split::Split, Fail>,
    split_for: &dyn Fn(f32) -> Result<aurum_reco::split::Split, Fail>,
    ctl: &FitControl,
    ease: &EaseParams,
    als: &AlsParams,
    alpha: f32,
) -> Result<String, Fail> {
    // Both components are fitted on the ALS winner's confidences (EASE reads presence only).
    let v = valid_for(alpha)?;
    let e = Ease::fit(&v.train, ease, ctl)?;
    let a = Als::fit(&v.train, als, ctl)?;
    let mut blend = Blend::from_parts(e, a, 0.0)?;
    let mut best = (0.0, 0.0f32);
    for step in 0..=20 {
        let w = step as f32 / 20.0;
        blend = blend.with_ease_weight(w)?;
        let r = evaluate(&blend, &v.train, &v.test, 10)?;
        eprintln!("valid blend ease_weight {w:<4} NDCG@10 {:.4}", r.ndcg);
        if r.ndcg > best.0 {
            best = (r.ndcg, w);
        }
    }
    let s = split_for(alpha)?;
    let p = BlendParams {
        ease: ease.clone(),
        als: als.clone(),
        ease_weight: best.1,
    };
    let r = evaluate(&Blend::fit(&s.train, &p, ctl)?, &s.train, &s.test, 10)?;
    Ok(format!(
        "blend EASE (reg={} dropout={} recency_half_life={} neighbours={}) + ALS (alpha={alpha} factors={} reg={} recency_half_life={}), ease_weight={}: validation {:.4}, test NDCG@10 {:.4}",
        ease.regularization,
        ease.dropout,
        ease.recency_half_life,
        ease.neighbours,
        als.factors,
        als.regularization,
        als.recency_half_life,
        best.1,
        best.0,
        r.ndcg
    ))
}

/// Score fusions over fitted components, for the normalisation study (`--study`): mode 0 is
/// the z-score over all candidates that `Blend` uses, 1 the z-score over the top `param`
/// candidates, 2 reciprocal-rank fusion with constant `param`, 3 `(s − median) / (s_(param) −
/// median)`.
struct Fuse<'a> {
    parts: Vec<(&'a dyn Recommender, f32)>,
    mode: u8,
    param: f32,
}

fn norm(s: &[f32], held: &[u32], mode: u8, param: f32) -> Vec<f32> {
    let cand: Vec<f32> = s
        .iter()
        .enumerate()
        .filter(|(i, _)| held.binary_search(&(*i as u32)).is_err())
        .map(|(_, &x)| x)
        .collect();
    let mut sorted = cand.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    match mode {
        // z over the top `param` candidates
        1 => {
            let n = (param as usize).min(sorted.len()).max(2);
            let top = &sorted[..n];
            let m = top.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
            let sd =
                (top.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / n as f64).sqrt();
            s.iter()
                .map(|&x| ((f64::from(x) - m) / sd.max(1e-12)) as f32)
                .collect()
        }
        // reciprocal rank fusion with constant `param`
        2 => {
            let mut idx: Vec<usize> = (0..s.len()).collect();
            idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
            let mut out = vec![0f32; s.len()];
            for (r, &i) in idx.iter().enumerate() {
                out[i] = 1.0 / (param + r as f32 + 1.0);
            }
            out
        }
        // divide by the param-th largest candidate minus the median
        3 => {
            let k = (param as usize).min(sorted.len() - 1);
            let med = sorted[sorted.len() / 2];
            let d = (sorted[k] - med).max(1e-12);
            s.iter().map(|&x| (x - med) / d).collect()
        }
        // z over all candidates
        _ => {
            let n = cand.len() as f64;
            let m = cand.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
            let sd = (cand
                .iter()
                .map(|&x| (f64::from(x) - m).powi(2))
                .sum::<f64>()
                / n)
                .sqrt();
            s.iter()
                .map(|&x| ((f64::from(x) - m) / sd.max(1e-12)) as f32)
                .collect()
        }
    }
}

impl Recommender for Fuse<'_> {
    fn kind(&self) -> &'static str {
        "fuse"
    }
    fn history(&self) -> &aurum_reco::History {
        self.parts[0].0.history()
    }
    fn score_user(&self, user: u32) -> Vec<f32> {
        let held = self.history().user_items.row(user as usize).0;
        let mut out = vec![0f32; self.history().items.len()];
        for (m, w) in &self.parts {
            for (o, x) in out
                .iter_mut()
                .zip(norm(&m.score_user(user), held, self.mode, self.param))
            {
                *o += w * x;
            }
        }
        out
    }
}

fn study(
    valid_for: &dyn Fn(f32) -> Result<aurum_reco::split::Split, Fail>,
    ctl: &FitControl,
    threads: usize,
) -> Result<(), Fail> {
    let v = valid_for(ALS_ALPHA)?;
    let e = Ease::fit(
        &v.train,
        &EaseParams {
            regularization: EASE_REG,
            dropout: EASE_DROPOUT,
            recency_half_life: EASE_RECENCY,
            neighbours: EASE_NEIGHBOURS,
            threads,
            ..Default::default()
        },
        ctl,
    )?;
    let a = Als::fit(
        &v.train,
        &AlsParams {
            factors: ALS_FACTORS,
            regularization: ALS_REG,
            iterations: ALS_ITERATIONS,
            threads,
            ..Default::default()
        },
        ctl,
    )?;
    let mut e = e;
    for h in [0.0f32, 0.05, 0.1, 0.15, 0.25] {
        e = e.with_recency(&v.train, h)?;
        let x = evaluate(&e, &v.train, &v.test, 10)?;
        eprintln!("EASE recency half-life {h}: NDCG@10 {:.4}", x.ndcg);
    }
    let e = e.with_recency(&v.train, EASE_RECENCY)?;
    for alpha in [1.0f32, 5.0] {
        let va = valid_for(alpha)?;
        for h in [0.0f32, 0.1, 0.25, 0.5, 1.0] {
            for reg in [5.0f32, 20.0] {
                let d = va.train.with_recent_confidence("recency_half_life", h)?;
                let p = AlsParams {
                    factors: ALS_FACTORS,
                    regularization: reg,
                    iterations: ALS_ITERATIONS,
                    threads,
                    ..Default::default()
                };
                let m = Als::fit(&d, &p, ctl)?;
                let x = evaluate(&m, &va.train, &va.test, 10)?;
                eprintln!(
                    "ALS alpha {alpha} reg {reg} recency {h}: NDCG@10 {:.4}",
                    x.ndcg
                );
            }
        }
    }
    for (mode, params) in [
        (0u8, vec![0.0f32]),
        (1, vec![50.0, 200.0, 1000.0]),
        (2, vec![10.0, 60.0]),
        (3, vec![10.0, 50.0]),
    ] {
        for &param in &params {
            let mut line = format!("mode {mode} param {param:<5}:");
            for step in 0..=10 {
                let w = step as f32 / 10.0;
                let f = Fuse {
                    parts: vec![(&e, w), (&a, 1.0 - w)],
                    mode,
                    param,
                };
                let r = evaluate(&f, &v.train, &v.test, 10)?;
                line.push_str(&format!(" {w}:{:.4}", r.ndcg));
            }
            eprintln!("{line}");
        }
    }
    Ok(())
}

fn main() -> Result<(), Fail> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .cloned()
        .unwrap_or_else(|| "data/ratings/movielens_small.csv".into());
    let flag = |f: &str| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let threads: usize = flag("--threads")
        .map(|t| t.parse())
        .transpose()?
        .unwrap_or(0);
    let tune = args.iter().any(|a| a == "--tune");
    let tune_blend = args.iter().any(|a| a == "--tune-blend");

    let (records, genres) = load(&path)?;
    let split_for = |alpha: f32| -> Result<_, Fail> {
        let opts = InteractionOptions {
            weighting: Weighting::Linear { alpha },
            rating_threshold: Some(4.0),
        };
        Ok(time_split(&Interactions::build(&records, &opts)?, 0.2)?)
    };
    let split = split_for(SPLIT_ALPHA)?;
    let (train, test) = (&split.train, &split.test);
    let items_in_data: Vec<AttributeRow> = genres
        .rows()
        .iter()
        .filter(|r| train.items().get(&r.id).is_some())
        .cloned()
        .collect();
    let genres = AttributeTable::items(items_in_data)?;
    eprintln!(
        "{} users, {} items, {} train / {} test positives",
        train.users().len(),
        train.items().len(),
        train.nnz(),
        test.nnz()
    );
    let ctl = FitControl::default();
    let als_params = AlsParams {
        factors: ALS_FACTORS,
        regularization: ALS_REG,
        iterations: ALS_ITERATIONS,
        threads,
        ..Default::default()
    };

    if args.iter().any(|a| a == "--study") {
        let valid_for =
            |alpha: f32| -> Result<_, Fail> { Ok(time_split(&split_for(alpha)?.train, 0.2)?) };
        return study(&valid_for, &ctl, threads);
    }
    if tune || tune_blend {
        return tune_on_validation(&split_for, &ctl, threads, tune_blend);
    }

    let mut rows = vec![
        run("popularity", train, test, || {
            Ok(Box::new(Popularity::fit(
                train,
                None,
                &PopularityParams::default(),
                &ctl,
            )?))
        })?,
        run("item-item cosine (50 nn)", train, test, || {
            Ok(Box::new(ItemKnn::fit(
                train,
                &ItemKnnParams::default(),
                &ctl,
            )?))
        })?,
        run("item-item BM25 (50 nn)", train, test, || {
            let p = ItemKnnParams {
                similarity: Similarity::Bm25 { k1: 1.2, b: 0.75 },
                neighbours: 50,
            };
            Ok(Box::new(ItemKnn::fit(train, &p, &ctl)?))
        })?,
        run("ALS (implicit defaults)", train, test, || {
            let p = AlsParams {
                factors: 100,
                regularization: 0.01,
                threads,
                ..Default::default()
            };
            Ok(Box::new(Als::fit(&split_for(0.0)?.train, &p, &ctl)?))
        })?,
        run(
            &format!("ALS f={ALS_FACTORS} reg={ALS_REG} alpha={ALS_ALPHA}"),
            train,
            test,
            || {
                Ok(Box::new(Als::fit(
                    &split_for(ALS_ALPHA)?.train,
                    &als_params,
                    &ctl,
                )?))
            },
        )?,
        run(
            &format!(
                "EASE reg={EASE_REG} dropout={EASE_DROPOUT} recency={EASE_RECENCY} ({EASE_NEIGHBOURS} weights per item)"
            ),
            train,
            test,
            || {
                let p = EaseParams {
                    regularization: EASE_REG,
                    dropout: EASE_DROPOUT,
                    recency_half_life: EASE_RECENCY,
                    neighbours: EASE_NEIGHBOURS,
                    threads,
                    ..Default::default()
                };
                Ok(Box::new(Ease::fit(train, &p, &ctl)?))
            },
        )?,
        run(
            &format!(
                "ALS f={ALS_R_FACTORS} reg={ALS_R_REG} alpha={ALS_R_ALPHA} recency={ALS_R_RECENCY}"
            ),
            train,
            test,
            || {
                Ok(Box::new(Als::fit(
                    &split_for(ALS_R_ALPHA)?.train,
                    &als_recency_params(threads),
                    &ctl,
                )?))
            },
        )?,
        run(
            &format!("blend EASE + recency ALS above, ease_weight={BLEND_EASE_WEIGHT}"),
            train,
            test,
            || {
                let p = BlendParams {
                    ease: EaseParams {
                        regularization: EASE_REG,
                        dropout: EASE_DROPOUT,
                        recency_half_life: EASE_RECENCY,
                        neighbours: EASE_NEIGHBOURS,
                        threads,
                        ..Default::default()
                    },
                    als: als_recency_params(threads),
                    ease_weight: BLEND_EASE_WEIGHT,
                };
                Ok(Box::new(Blend::fit(
                    &split_for(ALS_R_ALPHA)?.train,
                    &p,
                    &ctl,
                )?))
            },
        )?,
        run("BPR (implicit defaults)", train, test, || {
            Ok(Box::new(Bpr::fit(train, &BprParams::default(), &ctl)?))
        })?,
        run("content (genres TF-IDF)", train, test, || {
            Ok(Box::new(Content::fit(
                train,
                &genres,
                &ContentParams::default(),
                &ctl,
            )?))
        })?,
        run("hybrid WARP (id + genres)", train, test, || {
            Ok(Box::new(Hybrid::fit(
                train,
                None,
                Some(&genres),
                &HybridParams::default(),
                &ctl,
            )?))
        })?,
        run("random walk (restart 0.3)", train, test, || {
            Ok(Box::new(RandomWalk::fit(
                train,
                &RandomWalkParams::default(),
                &ctl,
            )?))
        })?,
    ];
    // ALS with implicit's defaults is fitted on confidence 1 (alpha 0 here = implicit's alpha 1).
    rows[3].name = "ALS f=100 reg=0.01 alpha=0 (implicit defaults)".into();

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| model | fit s | NDCG@10 | P@10 | R@10 | MAP@10 | coverage | novelty |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    for r in &rows {
        let e = &r.eval;
        writeln!(
            out,
            "| {} | {:.3} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:.2} |",
            r.name, r.fit_s, e.ndcg, e.precision, e.recall, e.map, e.coverage, e.novelty
        )?;
    }
    writeln!(out, "\n{} test users, k = 10", rows[0].eval.users)?;

    if let Some(dir) = flag("--out") {
        std::fs::create_dir_all(&dir)?;
        for (name, part) in [("train", train), ("test", test)] {
            let mut w = csv::Writer::from_path(format!("{dir}/{name}.csv"))?;
            w.write_record(["user", "item", "confidence"])?;
            for u in 0..part.users().len() {
                let (items, conf) = part.user_items().row(u);
                for (&i, &c) in items.iter().zip(conf) {
                    w.write_record([
                        part.users().id(u as u32),
                        part.items().id(i),
                        &c.to_string(),
                    ])?;
                }
            }
            w.flush()?;
        }
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "model": r.name, "fit_s": r.fit_s, "ndcg": r.eval.ndcg, "precision": r.eval.precision,
                    "recall": r.eval.recall, "map": r.eval.map, "coverage": r.eval.coverage, "users": r.eval.users,
                })
            })
            .collect();
        let params = serde_json::json!({
            "als": {"factors": ALS_FACTORS, "regularization": ALS_REG, "alpha": ALS_ALPHA, "iterations": ALS_ITERATIONS},
            "bpr": {"factors": 100, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100},
            "threads": threads,
        });
        std::fs::write(
            format!("{dir}/aurum.json"),
            serde_json::to_vec_pretty(&serde_json::json!({"rows": json, "params": params}))?,
        )?;
        eprintln!("wrote {dir}/train.csv, {dir}/test.csv, {dir}/aurum.json");
    }
    Ok(())
}
