//! The credit report end to end on a small seeded synthetic portfolio: the whole JSON report is
//! pinned by an insta snapshot (floats rounded to 6 decimals so that a last-digit difference in
//! `ln` between platforms cannot fail it), and the HTML page is checked for its plots, its key
//! figures and its escaping of user-supplied text.

use aurum_credit::report::{
    CreditReport, ExcludedColumn, MAX_CURVE_POINTS, ModelInfo, ReportError, ReportInput, ScoreKind,
    SplitInfo, SplitMethod, credit_report, html,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

const HOSTILE: &str = "<script>alert('owned')</script>";

/// `n` applicants: a risk driver `x`, a true PD `sigmoid(-1.2 + 2.2·x)`, an outcome drawn from
/// it, and the model's PD, which sees `x` with noise and is `shift` too high on the log-odds.
fn portfolio(rng: &mut ChaCha8Rng, n: usize, shift: f64) -> (Vec<f64>, Vec<f64>) {
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    (0..n)
        .map(|_| {
            let x: f64 = rng.random_range(-1.5..1.5);
            let bad = rng.random::<f64>() < sigmoid(-1.2 + 2.2 * x);
            let noise: f64 = rng.random_range(-0.6..0.6);
            let pd = sigmoid(-1.2 + 2.2 * (x + noise) + shift);
            // Two decimals, like a rounded PD feed: ties exercise the tie handling.
            (f64::from(u8::from(bad)), (pd * 100.0).round() / 100.0)
        })
        .unzip()
}

fn input(n_train: usize, n_test: usize) -> ReportInput {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let (y_train, p_train) = portfolio(&mut rng, n_train, 0.0);
    let (y_test, p_test) = portfolio(&mut rng, n_test, 0.3);
    // Scorecard convention: 600 points at odds 30:1 good:bad, 20 points to double the odds.
    let scores_test = p_test
        .iter()
        .map(|&p: &f64| {
            let p = p.clamp(0.005, 0.995);
            (600.0 + 20.0 / 2f64.ln() * (((1.0 - p) / p).ln() - 30f64.ln())).round()
        })
        .collect();
    ReportInput {
        model: ModelInfo {
            name: "retail <PD> & co".into(),
            version: "3".into(),
            kind: "logistic".into(),
        },
        y_train,
        p_train,
        y_test,
        p_test,
        scores_test: Some(scores_test),
        threshold: 0.4,
        split: SplitInfo {
            method: SplitMethod::Stratified,
            seed: Some(42),
            train_fraction: 0.7,
            test_fraction: 0.3,
        },
        details: json!({
            "intercept": -1.2,
            "converged": true,
            "coefficients": [
                { "feature": "age", "coefficient": 0.42, "woe_bins": 5 },
                { "feature": HOSTILE, "coefficient": -1.5, "woe_bins": 3 }
            ],
        }),
        features: vec!["age".into(), HOSTILE.into()],
        excluded_columns: vec![ExcludedColumn {
            column: "name".into(),
            reason: "text: 20000 distinct values".into(),
        }],
    }
}

fn report() -> CreditReport {
    credit_report(input(140, 60)).unwrap()
}

/// Every float rounded to 6 decimals (and −0 folded into 0).
fn rounded(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = (n.as_f64().unwrap() * 1e6).round() / 1e6;
            json!(if x == 0.0 { 0.0 } else { x })
        }
        Value::Array(items) => Value::Array(items.into_iter().map(rounded).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, rounded(v))).collect())
        }
        other => other,
    }
}

#[test]
fn version_1_reports_still_load() {
    let mut v = serde_json::to_value(report()).unwrap();
    assert_eq!(v["format_version"], 2);
    assert_eq!(
        v["excluded_columns"],
        json!([{"column": "name", "reason": "text: 20000 distinct values"}])
    );
    let map = v.as_object_mut().unwrap();
    map.remove("features");
    map.remove("excluded_columns");
    map.insert("format_version".into(), json!(1));
    let old: CreditReport = serde_json::from_value(v).unwrap();
    assert_eq!(old.format_version, 1);
    assert!(old.features.is_empty() && old.excluded_columns.is_empty());
}

#[test]
fn report_json_snapshot() {
    let r = report();
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!("credit_report", rounded(serde_json::to_value(&r).unwrap()));
    });
}

#[test]
fn report_round_trips_through_json() {
    let r = report();
    let back: CreditReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn report_figures_hang_together() {
    let r = report();
    let m = &r.metrics;
    assert!((m.gini - (2.0 * m.auc - 1.0)).abs() < 1e-12);
    assert_eq!(r.stability.test_auc, m.auc);
    assert_eq!(
        r.stability.overfitting_flag,
        r.stability.train_auc - r.stability.test_auc > 0.05
    );
    assert_eq!(r.score_distribution.score, ScoreKind::Points);
    assert_eq!(r.score_distribution.edges.len(), 21);
    let c = &r.confusion_matrix;
    assert_eq!(
        c.true_positive + c.false_positive + c.true_negative + c.false_negative,
        60
    );
    // Curves run from (0, 0) to (1, 1).
    let (first, last) = (&r.roc_curve[0], r.roc_curve.last().unwrap());
    assert_eq!((first.threshold, first.fpr, first.tpr), (None, 0.0, 0.0));
    assert_eq!((last.fpr, last.tpr), (1.0, 1.0));
    assert_eq!(r.ks_curve.last().unwrap().threshold, None);
}

#[test]
fn curves_are_downsampled_and_keep_the_ks_point() {
    let r = credit_report(input(3000, 2000)).unwrap();
    assert!(r.roc_curve.len() <= MAX_CURVE_POINTS && r.ks_curve.len() <= MAX_CURVE_POINTS);
    let at = r
        .ks_curve
        .iter()
        .find(|k| k.threshold == Some(r.metrics.ks_cutoff))
        .expect("KS point kept");
    assert!((at.cum_good - at.cum_bad - r.metrics.ks).abs() < 1e-12);
}

#[test]
fn invalid_input_is_refused_with_a_reason() {
    let mut one_class = input(40, 20);
    one_class.y_test = vec![0.0; 20];
    let err = credit_report(one_class).unwrap_err();
    assert!(
        matches!(err, ReportError::InvalidSample { sample: "test", .. }),
        "{err}"
    );

    let mut short_scores = input(40, 20);
    short_scores.scores_test = Some(vec![600.0; 3]);
    assert_eq!(
        credit_report(short_scores).unwrap_err().to_string(),
        "invalid scores_test: 3 scores for 20 test rows"
    );

    let mut bad_p = input(40, 20);
    bad_p.p_train[7] = f64::NAN;
    assert_eq!(
        credit_report(bad_p).unwrap_err().to_string(),
        "invalid train sample: prediction of row 7 is NaN, not in [0, 1]"
    );

    let mut bad_threshold = input(40, 20);
    bad_threshold.threshold = 1.5;
    assert!(matches!(
        credit_report(bad_threshold).unwrap_err(),
        ReportError::InvalidField {
            field: "threshold",
            ..
        }
    ));
}

#[test]
fn html_page_is_standalone_with_four_plots_and_escaped_text() {
    let mut input = input(140, 60);
    input.excluded_columns.push(ExcludedColumn {
        column: "<b>notes</b>".into(),
        reason: "text: \"free\" & <i>long</i>".into(),
    });
    let r = credit_report(input).unwrap();
    let page = html(&r);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 4);
    for title in [
        "<title>ROC curve</title>",
        "<title>KS curve</title>",
        "<title>Score distributions of goods and bads</title>",
        "<title>Calibration by decile</title>",
    ] {
        assert!(page.contains(title), "missing {title}");
    }
    // User text is escaped everywhere: nothing executable, no raw markup from the data.
    assert!(!page.to_lowercase().contains("<script"));
    assert!(page.contains("&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;"));
    assert!(page.contains("retail &lt;PD&gt; &amp; co"));
    // No external resources.
    for attr in ["src=", "href=", "@import", "url("] {
        assert!(!page.contains(attr), "page references {attr}");
    }
    // Key figures as shown on the page.
    let m = &r.metrics;
    for figure in [
        format!("{:.3}", m.auc),
        format!("{:.3}", m.gini),
        format!("{:.3}", m.ks),
        format!("{:.3}", m.pr_auc),
        format!("{:.3}", r.stability.psi),
        format!("{:.3}", r.stability.train_auc),
    ] {
        assert!(page.contains(&format!(">{figure}<")), "missing {figure}");
    }
    assert!(page.contains(&format!("at PD {:.3}", m.ks_cutoff)));
    assert!(page.contains("Confusion matrix at PD ≥ 0.400"));
    assert!(page.contains("Lift and gains by risk decile"));
    assert!(page.contains("<th>Feature</th>"));
    // The excluded columns with their reasons, escaped.
    assert!(page.contains("<h3>Excluded columns</h3>"));
    assert!(page.contains("<tr><td>name</td><td>text: 20000 distinct values</td></tr>"));
    assert!(page.contains(
        "<tr><td>&lt;b&gt;notes&lt;/b&gt;</td><td>text: &quot;free&quot; &amp; \
         &lt;i&gt;long&lt;/i&gt;</td></tr>"
    ));
    assert!(!page.contains("<b>notes"));
}
