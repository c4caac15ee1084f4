//! Credit families end to end: scorecard and GBDT on German credit (UCI Statlog, 1000 rows) and
//! Lending Club (R modeldata, 9857 rows, 5% bad), each split 70/30 stratified with a fixed seed:
//! held-out AUC, decisions and reason codes, monotone constraints, and the artifact round trip.
use crate::{ModelKind, decode_artifact_with, family};

use std::sync::OnceLock;

use aurum_contract::{ManifestInput, encode_artifact};
use aurum_core::{
    BinaryTarget, CancelToken, Column, ColumnData, NoProgress, Params, Table, Value, sha256_hex,
};
use aurum_credit::gbdt::{GbdtModel, GbdtParams};
use aurum_credit::metrics::auc;
use aurum_credit::policy::{Cutoff, Decision};
use aurum_credit::reasons::default_text;
use aurum_credit::scorecard::{ScorecardModel, ScorecardParams};
use aurum_credit::{BinaryClassifier, FitContext, FittedModel};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::german_credit;

const LENDING_CLUB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/credit/lending_club.csv"
);

pub(crate) struct Data {
    pub(crate) train: Table,
    pub(crate) train_y: BinaryTarget,
    pub(crate) test: Table,
    pub(crate) test_y: BinaryTarget,
}

/// Columns whose every non-missing value parses as a number become Float, the rest Categorical;
/// empty cells and `NA` are missing.
fn load_csv(path: &str, target: &str, positive: &str) -> (Table, BinaryTarget) {
    let mut reader = csv::Reader::from_path(path).expect("open csv");
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for record in reader.records() {
        for (col, value) in cells.iter_mut().zip(record.unwrap().iter()) {
            col.push(value.to_string());
        }
    }
    let missing = |v: &str| v.is_empty() || v == "NA";
    let mut columns = Vec::new();
    let mut y = Vec::new();
    let mut negative = String::new();
    for (name, values) in headers.into_iter().zip(cells) {
        if name == target {
            negative = values.iter().find(|v| *v != positive).unwrap().clone();
            y = values
                .iter()
                .map(|v| f64::from(u8::from(v == positive)))
                .collect();
            continue;
        }
        let numbers: Option<Vec<Option<f64>>> = values
            .iter()
            .map(|v| {
                if missing(v) {
                    Some(None)
                } else {
                    v.parse().ok().map(Some)
                }
            })
            .collect();
        let data = match numbers {
            Some(x) => ColumnData::Float(x),
            None => ColumnData::Categorical(
                values
                    .into_iter()
                    .map(|v| (!missing(&v)).then_some(v))
                    .collect(),
            ),
        };
        columns.push(Column { name, data });
    }
    let t = BinaryTarget {
        column: target.into(),
        y,
        positive_label: positive.into(),
        negative_label: negative,
    };
    (Table::new(columns).unwrap(), t)
}

/// Stratified 70/30 with a seeded ChaCha8 (the German credit test's split).
fn stratified(table: &Table, target: &BinaryTarget, seed: u64) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in [0.0, 1.0] {
        let mut idx: Vec<usize> = (0..target.len())
            .filter(|&i| target.y[i] == class)
            .collect();
        idx.shuffle(&mut rng);
        let cut = (idx.len() as f64 * 0.7).round() as usize;
        train.extend_from_slice(&idx[..cut]);
        test.extend_from_slice(&idx[cut..]);
    }
    Data {
        train: table.take(&train),
        train_y: target.take(&train),
        test: table.take(&test),
        test_y: target.take(&test),
    }
}

pub(crate) fn lending_club() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let (t, y) = load_csv(LENDING_CLUB, "Class", "bad");
        stratified(&t, &y, 20240601)
    })
}

/// The German credit split of `german_credit.rs`.
pub(crate) fn german() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let s = german_credit::split();
        Data {
            train: s.train.clone(),
            train_y: s.train_y.clone(),
            test: s.test.clone(),
            test_y: s.test_y.clone(),
        }
    })
}

pub(crate) fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn fit(kind: ModelKind, data: &Data, p: &Params) -> Box<dyn BinaryClassifier> {
    let cancel = CancelToken::new();
    let ctx = FitContext {
        progress: &NoProgress,
        cancel: &cancel,
        seed: 7,
    };
    family(kind)
        .fit(&data.train, &data.train_y, p, &ctx)
        .unwrap()
}

pub(crate) fn test_auc(m: &dyn BinaryClassifier, data: &Data) -> f64 {
    let p = m.predict_proba_table(&data.test).unwrap();
    auc(&data.test_y.y, &p).unwrap()
}

fn ctx_fit<T>(f: impl FnOnce(&FitContext<'_>) -> T) -> T {
    let cancel = CancelToken::new();
    f(&FitContext {
        progress: &NoProgress,
        cancel: &cancel,
        seed: 7,
    })
}

fn scorecard(data: &Data, pairs: &[(&str, &str)]) -> ScorecardModel {
    let p = ScorecardParams::from_params(&params(pairs)).unwrap();
    ctx_fit(|ctx| aurum_credit::scorecard::fit(&data.train, &data.train_y, &p, ctx)).unwrap()
}

fn gbdt(data: &Data, pairs: &[(&str, &str)]) -> GbdtModel {
    let p = GbdtParams::from_params(&params(pairs)).unwrap();
    ctx_fit(|ctx| aurum_credit::gbdt::fit(&data.train, &data.train_y, &p, ctx)).unwrap()
}

/// Default-parameter models with a PD cutoff of 0.3 (so the test set has declines).
fn german_scorecard() -> &'static ScorecardModel {
    static M: OnceLock<ScorecardModel> = OnceLock::new();
    M.get_or_init(|| scorecard(german(), &[("policy_pd_cutoff", "0.3")]))
}

fn german_gbdt() -> &'static GbdtModel {
    static M: OnceLock<GbdtModel> = OnceLock::new();
    M.get_or_init(|| {
        gbdt(
            german(),
            &[
                ("policy_pd_cutoff", "0.3"),
                (
                    "reason_texts",
                    "duration_in_month:Loan term is long|credit_amount:Amount requested is high",
                ),
            ],
        )
    })
}

fn rows(t: &Table) -> Vec<Vec<Value>> {
    (0..t.n_rows()).map(|i| t.row(i)).collect()
}

fn log_odds(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

#[test]
fn german_scorecard_held_out_auc_is_at_least_075() {
    let d = german();
    let m = family(ModelKind::Scorecard).fit(
        &d.train,
        &d.train_y,
        &Params::new(),
        &FitContext {
            progress: &NoProgress,
            cancel: &CancelToken::new(),
            seed: 7,
        },
    );
    let m = m.unwrap();
    let a = test_auc(m.as_ref(), d);
    eprintln!("German credit scorecard held-out AUC: {a:.4}");
    assert!(a >= 0.75, "German scorecard AUC {a}");

    // The binning tables, points and scaling are in the details.
    let details = m.details();
    let tables = details["binning"].as_array().unwrap();
    assert_eq!(tables.len(), 20);
    for t in tables {
        for bin in t["bins"].as_array().unwrap() {
            for key in [
                "bin", "count", "goods", "bads", "bad_rate", "woe", "iv", "points",
            ] {
                assert!(!bin[key].is_null(), "{key} in {bin}");
            }
        }
    }
    let selected = tables.iter().filter(|t| t["selected"] == true).count();
    assert!(selected >= 5, "{selected} characteristics with points");
    assert!(!details["points"].as_array().unwrap().is_empty());
    assert_eq!(details["scaling"]["base_score"], 600.0);
    assert_eq!(details["scaling"]["pdo"], 20.0);
    // Low-IV characteristics are recorded as such.
    let dropped = details["dropped_columns"].as_array().unwrap();
    assert!(dropped.iter().all(|d| d["reason"] != "unsupported_type"));
    assert!(
        dropped.iter().any(|d| d["reason"] == "low_iv"),
        "{dropped:?}"
    );
}

#[test]
fn german_gbdt_held_out_auc_is_at_least_074() {
    let d = german();
    let m = fit(ModelKind::Gbdt, d, &Params::new());
    let a = test_auc(m.as_ref(), d);
    eprintln!(
        "German credit GBDT held-out AUC: {a:.4} ({} trees)",
        m.summary()["trees"]
    );
    assert!(a >= 0.74, "German GBDT AUC {a}");
    let details = m.details();
    let imp = details["gain_importance"].as_array().unwrap();
    assert_eq!(imp.len(), 20);
    let shares: Vec<f64> = imp.iter().map(|i| i["share"].as_f64().unwrap()).collect();
    assert!(shares.windows(2).all(|w| w[0] >= w[1]));
    assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert_eq!(imp[0]["feature"], "status_of_existing_checking_account");
    assert_eq!(details["early_stopping"], true);
    assert_eq!(
        details["categorical_encodings"].as_array().unwrap().len(),
        13
    );
}

#[test]
fn lending_club_gbdt_held_out_auc_is_at_least_070() {
    let d = lending_club();
    assert_eq!(d.train.n_rows() + d.test.n_rows(), 9857);
    let m = fit(ModelKind::Gbdt, d, &Params::new());
    let a = test_auc(m.as_ref(), d);
    eprintln!(
        "Lending Club GBDT held-out AUC: {a:.4} ({} trees)",
        m.summary()["trees"]
    );
    assert!(a >= 0.70, "Lending Club GBDT AUC {a}");
}

#[test]
fn scorecard_declines_carry_points_below_maximum_reasons() {
    let d = german();
    let m = german_scorecard();
    let table = m.points_table();
    let max_points = |f: &str| {
        table
            .iter()
            .filter(|p| p.feature == f)
            .map(|p| p.points)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let mut declines = 0;
    for row in rows(&d.test) {
        let dec = m.decide(&row).unwrap();
        assert_eq!(dec.decision == Decision::Decline, dec.pd >= 0.3);
        let score = dec.score.unwrap();
        assert!((score - m.scaling().score_from_pd(dec.pd)).abs() < 1e-6);
        if dec.decision == Decision::Approve {
            assert!(dec.reasons.is_empty());
            continue;
        }
        declines += 1;
        assert!((1..=4).contains(&dec.reasons.len()), "{:?}", dec.reasons);
        // The top reason has the largest shortfall below its characteristic's maximum.
        let points = m.row_points(&row).unwrap();
        let shortfalls: Vec<(String, f64)> = m
            .input_schema()
            .fields
            .iter()
            .zip(&points)
            .filter(|(f, _)| table.iter().any(|p| p.feature == f.name))
            .map(|(f, p)| (f.name.clone(), max_points(&f.name) - p))
            .collect();
        let largest = shortfalls.iter().map(|s| s.1).fold(0.0, f64::max);
        let top = &dec.reasons[0];
        assert!((top.contribution - largest).abs() < 1e-9);
        assert!(
            dec.reasons
                .windows(2)
                .all(|w| w[0].contribution >= w[1].contribution)
        );
        assert!(dec.reasons.iter().all(|r| r.contribution > 0.0));
        assert_eq!(top.code, top.feature);
        assert_eq!(top.text, default_text(&top.feature));
        // Moving the top feature to its best attribute recovers exactly the shortfall.
        let j = m.input_schema().index_of(&top.feature).unwrap();
        let mut moved = row.clone();
        moved[j] = m.reference_value(&top.feature).unwrap();
        let new = m.decide(&moved).unwrap();
        assert!((new.score.unwrap() - score - top.contribution).abs() < 1e-9);
        assert!(new.pd < dec.pd);
        assert!(new.reasons.iter().all(|r| r.feature != top.feature));
    }
    assert!(declines >= 30, "{declines} declines");
}

#[test]
fn gbdt_declines_carry_shap_reasons() {
    let d = german();
    let m = german_gbdt();
    let mut declines = 0;
    let mut custom_text = false;
    for row in rows(&d.test) {
        let dec = m.decide(&row).unwrap();
        if dec.decision == Decision::Approve {
            assert!(dec.reasons.is_empty());
            continue;
        }
        declines += 1;
        assert!((1..=4).contains(&dec.reasons.len()), "{:?}", dec.reasons);
        // The reasons are the largest positive TreeSHAP contributions, in order.
        let e = m.explain(&row).unwrap();
        let mut adverse: Vec<(String, f64)> = e
            .contributions
            .iter()
            .filter(|c| c.contribution > 0.0)
            .map(|c| (c.feature.clone(), c.contribution))
            .collect();
        adverse.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (r, (f, c)) in dec.reasons.iter().zip(&adverse) {
            assert_eq!(&r.feature, f);
            assert!((r.contribution - c).abs() < 1e-12);
        }
        let top = &dec.reasons[0];
        if top.feature == "duration_in_month" {
            assert_eq!(top.text, "Loan term is long");
            custom_text = true;
        }
        // Moving the top feature to its reference value lowers the PD.
        let j = m.input_schema().index_of(&top.feature).unwrap();
        let mut moved = row.clone();
        moved[j] = m.reference_value(&top.feature).unwrap();
        let pd = m.predict_proba_one(&moved).unwrap();
        assert!(pd < dec.pd, "{}: {pd} >= {}", top.feature, dec.pd);
    }
    assert!(declines >= 30, "{declines} declines");
    assert!(custom_text);
}

#[test]
fn refer_band_and_score_cutoff() {
    let d = german();
    // Decline below 560 points, refer in [560, 590).
    let m = scorecard(
        d,
        &[
            ("policy_score_cutoff", "560"),
            ("refer_low", "560"),
            ("refer_high", "590"),
            ("max_reasons", "2"),
        ],
    );
    let policy = m.policy();
    assert_eq!(policy.cutoff, Cutoff::Score(560.0));
    assert_eq!(policy.refer_band, Some((560.0, 590.0)));
    let mut seen = std::collections::HashSet::new();
    for row in rows(&d.test) {
        let dec = m.decide(&row).unwrap();
        let s = dec.score.unwrap();
        let want = if s < 560.0 {
            Decision::Decline
        } else if s < 590.0 {
            Decision::Refer
        } else {
            Decision::Approve
        };
        assert_eq!(dec.decision, want, "score {s}");
        seen.insert(want);
        match want {
            Decision::Approve => assert!(dec.reasons.is_empty()),
            _ => assert!((1..=2).contains(&dec.reasons.len())),
        }
    }
    assert_eq!(seen.len(), 3, "{seen:?}");

    // Logistic models decide too, with the default policy and scaling.
    let l = fit(ModelKind::Logistic, d, &Params::new());
    let row = d.test.row(0);
    let dec = l.decide(&row).unwrap();
    assert_eq!(dec.decision == Decision::Decline, dec.pd >= 0.5);
    assert!(dec.score.is_some());
}

/// PD along a sweep of `feature` for the first `n` test rows, everything else fixed.
fn sweeps(
    m: &dyn BinaryClassifier,
    data: &Data,
    feature: &str,
    grid: &[f64],
    n: usize,
) -> Vec<Vec<f64>> {
    let j = m.input_schema().index_of(feature).unwrap();
    (0..n)
        .map(|i| {
            let mut row = data.test.row(i);
            grid.iter()
                .map(|&x| {
                    row[j] = Value::Float(x);
                    m.predict_proba_one(&row).unwrap()
                })
                .collect()
        })
        .collect()
}

fn non_decreasing(s: &[f64]) -> bool {
    s.windows(2).all(|w| w[1] >= w[0])
}

#[test]
fn monotone_constraints_hold_over_sweeps() {
    let g = german();
    let months: Vec<f64> = (1..=80).map(f64::from).collect();
    let m = gbdt(g, &[("monotone", "duration_in_month:+1")]);
    for s in sweeps(&m, g, "duration_in_month", &months, 60) {
        assert!(non_decreasing(&s), "{s:?}");
    }
    // Without the constraint the same sweeps are not all monotone: the test has teeth.
    let free = gbdt(g, &[]);
    let s = sweeps(&free, g, "duration_in_month", &months, 60);
    assert!(s.iter().any(|s| !non_decreasing(s)));

    let lc = lending_club();
    let rates: Vec<f64> = (0..=100).map(|k| 5.0 + 0.25 * f64::from(k)).collect();
    let m = gbdt(lc, &[("monotone", "int_rate:+1")]);
    for s in sweeps(&m, lc, "int_rate", &rates, 60) {
        assert!(non_decreasing(&s), "{s:?}");
    }

    // A scorecard with ascending bad rates: WoE falls, its coefficient is negative, PD rises.
    let sc = scorecard(g, &[("monotonic", "ascending")]);
    let b = sc.binning("duration_in_month").unwrap();
    assert!(b.bins().len() >= 2, "{:?}", b.bins());
    assert!(b.bins().windows(2).all(|w| w[1].woe <= w[0].woe));
    let j = sc.input_schema().index_of("duration_in_month").unwrap();
    assert!(sc.coefficients()[j] < 0.0);
    for s in sweeps(&sc, g, "duration_in_month", &months, 60) {
        assert!(non_decreasing(&s), "{s:?}");
    }
    // The per-feature override works on top of monotonic=auto too.
    let sc = scorecard(g, &[("monotone", "age_in_years:-1")]);
    let b = sc.binning("age_in_years").unwrap();
    assert!(b.bins().windows(2).all(|w| w[1].woe >= w[0].woe));
}

#[test]
fn explanations_add_up_to_the_log_odds() {
    let d = german();
    let sc = german_scorecard();
    let gb = german_gbdt();
    for row in rows(&d.test) {
        for (m, tol) in [
            (sc as &dyn BinaryClassifier, 1e-9),
            (gb as &dyn BinaryClassifier, 1e-6),
        ] {
            let e = m.explain(&row).unwrap();
            assert_eq!(e.space, "log_odds");
            assert_eq!(e.contributions.len(), 20);
            let total = e.base_value + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
            let p = m.predict_proba_one(&row).unwrap();
            assert!(
                (total - log_odds(p)).abs() < tol,
                "{:?}: {total} vs {}",
                m.family(),
                log_odds(p)
            );
        }
    }
    let lc = lending_club();
    let m = fit(ModelKind::Gbdt, lc, &Params::new());
    for row in rows(&lc.test).iter().take(300) {
        let e = m.explain(row).unwrap();
        let total = e.base_value + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
        let p = m.predict_proba_one(row).unwrap();
        assert!((total - log_odds(p)).abs() < 1e-6);
    }
}

#[test]
fn artifacts_round_trip_both_families() {
    let d = german();
    let test_rows = rows(&d.test);
    for m in [
        german_scorecard() as &dyn BinaryClassifier,
        german_gbdt() as &dyn BinaryClassifier,
    ] {
        let p = m.predict_proba_table(&d.test).unwrap();
        let info = ManifestInput {
            metrics: [("auc".to_string(), auc(&d.test_y.y, &p).unwrap())].into(),
            dataset_sha256: sha256_hex(b"german"),
            target: "creditability".into(),
            date_formats: Default::default(),
        };
        let (manifest, bytes) = encode_artifact(info, m).unwrap();
        assert_eq!(manifest.family, m.family());
        let (back, loaded) = decode_artifact_with(&bytes).unwrap();
        assert_eq!(back, manifest);
        assert_eq!(loaded.params(), m.params());
        assert_eq!(
            loaded.predict(&test_rows).unwrap(),
            m.predict(&test_rows).unwrap()
        );
        assert_eq!(loaded.predict_proba_table(&d.test).unwrap(), p);
        for row in &test_rows {
            assert_eq!(loaded.explain(row).unwrap(), m.explain(row).unwrap());
            assert_eq!(loaded.decide(row).unwrap(), m.decide(row).unwrap());
        }
        assert_eq!(loaded.details(), m.details());
        assert_eq!(loaded.payload().unwrap(), m.payload().unwrap());
        let payload: serde_json::Value = serde_json::from_slice(&m.payload().unwrap()).unwrap();
        assert_eq!(payload["payload_version"], 1);
    }
}

#[test]
fn unseen_categories_and_missing_values_do_not_fail() {
    let d = german();
    for m in [
        german_scorecard() as &dyn BinaryClassifier,
        german_gbdt() as &dyn BinaryClassifier,
    ] {
        let schema = m.input_schema();
        let mut row = d.test.row(0);
        row[schema.index_of("purpose").unwrap()] = Value::Str("time machine".into());
        row[schema.index_of("housing").unwrap()] = Value::Null;
        row[schema.index_of("age_in_years").unwrap()] = Value::Null;
        let p = m.predict_proba_one(&row).unwrap();
        assert!(p > 0.0 && p < 1.0);
        let e = m.explain(&row).unwrap();
        let total = e.base_value + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
        assert!((total - log_odds(p)).abs() < 1e-6);
        m.decide(&row).unwrap();
        row[schema.index_of("age_in_years").unwrap()] = Value::Str("forty".into());
        let err = m.predict(&[row]).unwrap_err();
        assert!(err.to_string().contains("`age_in_years` (row 0)"), "{err}");
    }
    // Scorecards give unseen values WoE 0: no points, whatever the coefficient.
    let sc = german_scorecard();
    let mut row = d.test.row(0);
    let j = sc.input_schema().index_of("purpose").unwrap();
    row[j] = Value::Str("time machine".into());
    assert_eq!(sc.row_points(&row).unwrap()[j], 0.0);
}

#[test]
fn parameters_are_validated_up_front() {
    for kind in [ModelKind::Scorecard, ModelKind::Gbdt] {
        let f = family(kind);
        let e = f
            .validate_params(&params(&[("n_trees", "10")]))
            .unwrap_err();
        assert_eq!(e.code(), "unknown_param");
        assert!(
            e.to_string().contains("(allowed: base_odds, base_score"),
            "{e}"
        );
        let e = f
            .validate_params(&params(&[
                ("policy_pd_cutoff", "0.2"),
                ("policy_score_cutoff", "600"),
            ]))
            .unwrap_err();
        assert_eq!(e.code(), "invalid_param");
        let canonical = f.validate_params(&Params::new()).unwrap();
        assert_eq!(canonical["max_reasons"], 4);
        assert_eq!(canonical["base_odds"], 50.0);
    }
    let g = family(ModelKind::Gbdt)
        .validate_params(&Params::new())
        .unwrap();
    for (k, v) in [
        ("n_estimators", serde_json::json!(300)),
        ("learning_rate", serde_json::json!(0.05)),
        ("max_depth", serde_json::json!(5)),
        ("early_stopping_rounds", serde_json::json!(30)),
        ("validation_fraction", serde_json::json!(0.2)),
    ] {
        assert_eq!(g[k], v, "{k}");
    }
    // Names are checked against the data at fit time.
    let d = german();
    let e = ctx_fit(|ctx| {
        family(ModelKind::Gbdt).fit(
            &d.train,
            &d.train_y,
            &params(&[("monotone", "salary:+1")]),
            ctx,
        )
    })
    .unwrap_err();
    assert!(e.to_string().contains("`salary`"), "{e}");
    let e = ctx_fit(|ctx| {
        family(ModelKind::Scorecard).fit(
            &d.train,
            &d.train_y,
            &params(&[("monotone", "purpose:+1")]),
            ctx,
        )
    })
    .unwrap_err();
    assert!(e.to_string().contains("numeric feature"), "{e}");
}

#[test]
fn fits_are_seeded_cancellable_and_report_progress() {
    use std::sync::Mutex;

    use aurum_core::Progress;
    use aurum_credit::ModelError;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, f64)>>);
    impl Progress for Recorder {
        fn report(&self, stage: &str, fraction: f64) {
            self.0.lock().unwrap().push((stage.to_string(), fraction));
        }
    }
    let d = german();
    for (kind, stages) in [
        (ModelKind::Scorecard, &["binning", "fit"][..]),
        (ModelKind::Gbdt, &["boost", "refit"][..]),
    ] {
        let rec = Recorder::default();
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &rec,
            cancel: &cancel,
            seed: 11,
        };
        let p = params(&[("subsample", "0.8")]);
        let p = if kind == ModelKind::Gbdt {
            p
        } else {
            Params::new()
        };
        let a = family(kind).fit(&d.train, &d.train_y, &p, &ctx).unwrap();
        let reports = rec.0.lock().unwrap().clone();
        for stage in stages {
            assert!(reports.iter().any(|r| r.0 == *stage), "{kind:?} {stage}");
        }
        // Same seed, same model, byte for byte.
        let b = family(kind).fit(&d.train, &d.train_y, &p, &ctx).unwrap();
        assert_eq!(a.payload().unwrap(), b.payload().unwrap());
        cancel.cancel();
        let e = family(kind)
            .fit(&d.train, &d.train_y, &p, &ctx)
            .unwrap_err();
        assert_eq!(e, ModelError::Cancelled);
    }
}

#[test]
fn balanced_class_weight_raises_the_predicted_default_rate() {
    let d = german();
    let mean = |m: &dyn BinaryClassifier| {
        let p = m.predict_proba_table(&d.test).unwrap();
        p.iter().sum::<f64>() / p.len() as f64
    };
    let plain = german_gbdt();
    let balanced = gbdt(d, &[("class_weight", "balanced")]);
    // 30% bad: unweighted the mean PD is near 0.3, balanced it moves towards 0.5.
    assert!((mean(plain) - 0.3).abs() < 0.05, "{}", mean(plain));
    assert!(mean(&balanced) > mean(plain) + 0.1, "{}", mean(&balanced));
}

/// The GBDT's table-driven TreeSHAP gives the recursion's values on real models (German
/// credit and Lending Club, default parameters), every test row, to 1e-9; and every tree of
/// these models is tabled.
#[test]
fn gbdt_shap_tables_equal_the_recursion_on_german_credit_and_lending_club() {
    for (name, d) in [
        ("german_credit", german()),
        ("lending_club", lending_club()),
    ] {
        let m = gbdt(d, &[]);
        assert!((0..m.n_trees()).all(|t| m.is_tabled(t)), "{name}");
        let mut worst = 0.0f64;
        for row in rows(&d.test) {
            let new = m.contributions(&row).unwrap();
            let old = m.contributions_recursive(&row).unwrap();
            for (a, b) in new.iter().zip(&old) {
                worst = worst.max((a - b).abs());
            }
        }
        assert!(
            worst < 1e-9,
            "{name}: tables and recursion differ by {worst:e}"
        );
    }
}

/// The table paths the training job evaluates with (`predict_proba_table`, and `score_table`
/// for the held-out rows' PDs and points in one pass) on a table large enough to be spread over
/// several threads: bit for bit the row paths' PDs, the same on one thread as on all, and
/// `score_table` is exactly the two separate calls.
#[test]
fn table_scores_are_the_row_paths_on_every_thread_count() {
    let d = german();
    // 4 200 rows: several blocks and encoding tasks per call.
    let idx: Vec<usize> = (0..4_200).map(|i| (i * 7) % d.train.n_rows()).collect();
    let big = d.train.take(&idx);
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for name in [
        "logistic",
        "scorecard",
        "gbdt",
        "random_forest",
        "linear_svm",
    ] {
        let m = ctx_fit(|ctx| {
            aurum_credit::fit_binary(name, &d.train, &d.train_y, &Params::new(), ctx).unwrap()
        });
        let inputs = big.select(m.input_schema().names()).unwrap();
        let pd = m.predict_proba_table(&inputs).unwrap();
        let points = m.score_points_table(&inputs).unwrap();
        let both = m.score_table(&inputs).unwrap();
        assert_eq!(both.pd, pd, "{name}");
        assert_eq!(both.points, points, "{name}");
        assert_eq!(
            one_thread.install(|| m.score_table(&inputs)).unwrap(),
            both,
            "{name}: one thread"
        );
        let points = points.expect("every credit family scores in points");
        for (i, row) in rows(&inputs).iter().enumerate() {
            assert_eq!(m.predict_proba_one(row).unwrap(), pd[i], "{name} row {i}");
            let one = m.score_points(row).unwrap().unwrap();
            assert!(
                (one - points[i]).abs() <= 1e-9 * one.abs(),
                "{name} row {i}: {one} vs {}",
                points[i]
            );
        }
    }
}

/// A table with bad cells in two columns gets the error a single pass in input-column order
/// finds first, however the rows were split across threads, for every family whose table path
/// splits rows into blocks (logistic: column sums per block; scorecard: WoE per block; GBDT:
/// columns encoded in parallel).
#[test]
fn table_errors_do_not_depend_on_the_thread_split() {
    let d = german();
    let idx: Vec<usize> = (0..4_200).map(|i| i % d.train.n_rows()).collect();
    let big = d.train.take(&idx);
    // The earlier column is bad only in the last block, the later one in the first.
    let spoil = |t: &Table, column: &str, row: usize| {
        let columns = t
            .columns()
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if c.name == column
                    && let ColumnData::Float(v) = &mut c.data
                {
                    v[row] = Some(f64::INFINITY);
                }
                c
            })
            .collect();
        Table::new(columns).unwrap()
    };
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for name in ["logistic", "scorecard", "gbdt"] {
        let m = ctx_fit(|ctx| {
            aurum_credit::fit_binary(name, &d.train, &d.train_y, &Params::new(), ctx).unwrap()
        });
        let inputs = big.select(m.input_schema().names()).unwrap();
        let numeric: Vec<String> = inputs
            .columns()
            .iter()
            .filter(|c| matches!(c.data, ColumnData::Float(_)))
            .map(|c| c.name.clone())
            .collect();
        assert!(numeric.len() >= 2, "{name}");
        let bad = spoil(&spoil(&inputs, &numeric[0], 4_150), &numeric[1], 3);
        for err in [
            m.predict_proba_table(&bad).unwrap_err(),
            m.score_table(&bad).unwrap_err(),
            one_thread
                .install(|| m.predict_proba_table(&bad))
                .unwrap_err(),
            one_thread.install(|| m.score_table(&bad)).unwrap_err(),
        ] {
            let text = err.to_string();
            assert!(
                text.contains(&numeric[0]) && text.contains("4150"),
                "{name}: {text}"
            );
        }
    }
}

/// Every trainable family's batch paths give the row paths' answers: `assess_batch` is
/// `assess` row by row (decisions, reasons, explanations), and `score_points_table` is
/// `score_points` row by row.
#[test]
fn batch_assessment_and_scores_equal_the_row_paths() {
    let d = german();
    for kind in [ModelKind::Logistic, ModelKind::Scorecard, ModelKind::Gbdt] {
        // A low cut-off, so that the test rows hold declines (logistic declines at its threshold).
        let cutoff = if kind == ModelKind::Logistic {
            "threshold"
        } else {
            "policy_pd_cutoff"
        };
        let m = fit(kind, d, &params(&[(cutoff, "0.3")]));
        let inputs = d.test.select(m.input_schema().names()).unwrap();
        let rows = rows(&inputs);
        for explain in [false, true] {
            let batch = m.assess_batch(&rows, explain).unwrap();
            let mut declined = 0;
            for (row, b) in rows.iter().zip(&batch) {
                assert_eq!(*b, m.assess(row, explain).unwrap(), "{kind:?}");
                declined += usize::from(b.decision.decision == Decision::Decline);
            }
            assert!(declined > 0, "{kind:?}");
        }
        let table = m.score_points_table(&d.test).unwrap().unwrap();
        for (row, s) in rows.iter().zip(&table) {
            let one = m.score_points(row).unwrap().unwrap();
            assert!(
                (one - s).abs() <= 1e-9 * one.abs(),
                "{kind:?}: {one} vs {s}"
            );
        }
    }
}
