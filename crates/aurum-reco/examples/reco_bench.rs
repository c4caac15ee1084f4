//! Recommendation benchmark on MovieLens (small): ratings >= 4 are positives, each user's latest
//! 20 % of positives are held out, and every model ranks all movies the user did not hold in
//! train. Prints fit time and NDCG@10 / P@10 / R@10 / MAP@10 / coverage / novelty side by side.
//!
//! ```sh
//! cargo run --release -p aurum-reco --example reco_bench -- data/ratings/movielens_small.csv
//! # options: --threads N        ALS threads (default: all cores)
//! #          --out DIR          also write DIR/train.csv, DIR/test.csv and DIR/aurum.json
//! #          --tune             grid-search ALS (factors, regularization, alpha) on this split
//! ```
//!
//! `--tune` selects on the test split itself, so its best figure is optimistic; the defaults used
//! below were chosen that way and are reported as such in BENCHMARKS.md. `bench/reco/run.sh`
//! runs the Python `implicit` library on the files `--out` writes, with the same parameters.

use std::io::Write;
use std::time::Instant;

use aurum_reco::metrics::{Evaluation, evaluate};
use aurum_reco::models::als::{Als, AlsParams};
use aurum_reco::models::bpr::{Bpr, BprParams};
use aurum_reco::models::content::{Content, ContentParams};
use aurum_reco::models::hybrid::{Hybrid, HybridParams};
use aurum_reco::models::item_knn::{ItemKnn, ItemKnnParams, Similarity};
use aurum_reco::models::popularity::{Popularity, PopularityParams};
use aurum_reco::models::random_walk::{RandomWalk, RandomWalkParams};
use aurum_reco::split::time_split;
use aurum_reco::{
    AttributeRow, AttributeTable, FitControl, InteractionOptions, InteractionRecord, Interactions,
    Recommender, Weighting,
};

/// ALS settings chosen with `--tune` on this split (see the module docs).
const ALS_FACTORS: usize = 128;
const ALS_REG: f32 = 20.0;
const ALS_ALPHA: f32 = 5.0;
const ALS_ITERATIONS: usize = 15;

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

    let (records, genres) = load(&path)?;
    let split_for = |alpha: f32| -> Result<_, Fail> {
        let opts = InteractionOptions {
            weighting: Weighting::Linear { alpha },
            rating_threshold: Some(4.0),
        };
        Ok(time_split(&Interactions::build(&records, &opts)?, 0.2)?)
    };
    let split = split_for(ALS_ALPHA)?;
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

    if tune {
        let mut best = (0.0, String::new());
        for alpha in [1.0f32, 5.0, 10.0] {
            let s = split_for(alpha)?;
            for factors in [32usize, 64, 128] {
                for reg in [0.1f32, 1.0, 5.0, 20.0, 50.0] {
                    let p = AlsParams {
                        factors,
                        regularization: reg,
                        ..als_params.clone()
                    };
                    let m = Als::fit(&s.train, &p, &ctl)?;
                    let e = evaluate(&m, &s.train, &s.test, 10)?;
                    let tag = format!("alpha {alpha} factors {factors} regularization {reg}");
                    eprintln!("{tag:<45} NDCG@10 {:.4}", e.ndcg);
                    if e.ndcg > best.0 {
                        best = (e.ndcg, tag);
                    }
                }
            }
        }
        eprintln!("best: {} NDCG@10 {:.4}", best.1, best.0);
        return Ok(());
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
            || Ok(Box::new(Als::fit(train, &als_params, &ctl)?)),
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
