//! Decision-grade evaluation reports for binary credit models.
//!
//! A credit committee signs off a model on one document: how well it ranks applicants (AUC,
//! Gini, KS and where the KS gap sits, average precision), whether its probabilities can be taken
//! at face value (Brier score, log loss, observed against predicted by decile), what the policy
//! cut-off does (confusion matrix, accuracy, precision, recall, F1), how the riskiest deciles
//! concentrate the bads (lift and gains), and whether it will hold up (train–test AUC gap with an
//! overfitting flag, population stability between the train and test score distributions).
//! [`credit_report`] computes all of that, once, from labels and predictions into a
//! [`CreditReport`]; [`html`] turns the report into a standalone page.
//!
//! Why the report is a stored format: it is what gets archived next to a model version and
//! compared across versions, so [`CreditReport`] is `Serialize + Deserialize` with field names
//! that never change once released and a [`FORMAT_VERSION`] that does when the shape changes.
//! Its types are deliberately separate from the [`crate::metrics`] structs they are built from,
//! so refactoring a metric cannot silently change the archived format.
//!
//! Conventions are those of [`crate::metrics`]: the positive class (1.0) is the "bad" outcome
//! (default), `p` is the predicted probability of default (PD), and a row is declined (predicted
//! bad) when `p >= threshold`.
//!
//! What the report does not do: fit or score models (the caller passes predictions), read files,
//! or know model families: everything family-specific (WoE binning tables, points tables,
//! coefficients, feature importance) arrives as [`ReportInput::details`] and is embedded verbatim.

mod html;
mod svg;

use serde::{Deserialize, Serialize};

use crate::metrics;

/// Version of the [`CreditReport`] format; bumped on any change to its shape or meaning.
///
/// * 1: the first released shape.
/// * 2: adds [`CreditReport::features`] and [`CreditReport::excluded_columns`]. A version 1
///   report still loads, with both lists empty.
pub const FORMAT_VERSION: u32 = 2;

/// A train–test AUC gap above this sets [`Stability::overfitting_flag`].
pub const OVERFITTING_GAP: f64 = 0.05;

/// Curves are downsampled to at most this many points.
pub const MAX_CURVE_POINTS: usize = 101;

/// Bins of the score distribution histograms.
pub const HISTOGRAM_BINS: usize = 20;

/// Quantile bins of the train score distribution used for the PSI.
pub const PSI_BINS: usize = 10;

/// Everything [`credit_report`] needs: identity, labels and predictions of both samples, the
/// policy cut-off, how the samples were split, and model-specific tables.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportInput {
    pub model: ModelInfo,
    /// Training labels (1.0 = bad, 0.0 = good) and the model's PDs for them.
    pub y_train: Vec<f64>,
    pub p_train: Vec<f64>,
    /// Held-out labels and PDs: every figure except the train AUC and the PSI is computed here.
    pub y_test: Vec<f64>,
    pub p_test: Vec<f64>,
    /// Scorecard points for the test rows, when the model has them; the score histograms then use
    /// points instead of PDs.
    pub scores_test: Option<Vec<f64>>,
    /// Policy cut-off on the PD: applicants with `p >= threshold` are declined.
    pub threshold: f64,
    pub split: SplitInfo,
    /// Model-specific tables (WoE binning, points, coefficients, importance), embedded verbatim.
    /// [`html`] renders objects as key–value tables and arrays of objects as tables.
    pub details: serde_json::Value,
    /// The model's input features, in input order.
    pub features: Vec<String>,
    /// The dataset columns that are not features, with the reason.
    pub excluded_columns: Vec<ExcludedColumn>,
}

/// A dataset column the model does not take, and why (`{"column": "name", "reason": "text:
/// 20000 distinct values"}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedColumn {
    pub column: String,
    /// A short reason for a person: `target`, `split date column`, `text: 20000 distinct
    /// values`, `constant`, `all missing`, or the family's own (`low_iv`, ...).
    pub reason: String,
}

/// Which model the report is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    /// The model family, e.g. `logistic`.
    pub kind: String,
}

/// How the train and test samples were drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    pub method: SplitMethod,
    /// Seed of a random split; `None` for a time-ordered one.
    pub seed: Option<u64>,
    pub train_fraction: f64,
    pub test_fraction: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMethod {
    /// Random within each class, keeping the bad rate equal on both sides.
    Stratified,
    /// Earlier rows train, later rows test: the honest check for a model used on future applicants.
    TimeOrdered,
    /// Plain random split.
    Random,
}

/// The input [`credit_report`] refuses; every variant is the caller's fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ReportError {
    /// A sample is empty, its labels and predictions differ in length, a label is not 0/1, a PD
    /// is outside `[0, 1]`, or it holds only one class (AUC and KS are then undefined).
    #[error("invalid {sample} sample: {reason}")]
    InvalidSample {
        sample: &'static str,
        reason: String,
    },
    /// Any other field: the threshold, the split fractions or the scores.
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

/// The full evaluation of one model version. Field names are stable; see [`FORMAT_VERSION`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreditReport {
    pub format_version: u32,
    pub model: ModelInfo,
    pub split: SplitInfo,
    /// The policy cut-off on the PD the threshold figures are computed at.
    pub threshold: f64,
    pub sample: SampleSummary,
    /// Held-out figures.
    pub metrics: TestMetrics,
    pub stability: Stability,
    /// Test sample at [`CreditReport::threshold`].
    pub confusion_matrix: ConfusionMatrix,
    /// Test sample, deciles of PD from the lowest.
    pub calibration: Vec<CalibrationRow>,
    /// Test sample, deciles of PD from the riskiest.
    pub lift_gains: Vec<LiftRow>,
    /// Test sample, at most [`MAX_CURVE_POINTS`] points from `(0, 0)` to `(1, 1)`.
    pub roc_curve: Vec<RocCurvePoint>,
    /// Test sample, at most [`MAX_CURVE_POINTS`] points; always includes the KS point.
    pub ks_curve: Vec<KsCurvePoint>,
    /// Test sample, [`HISTOGRAM_BINS`] bins.
    pub score_distribution: ScoreDistribution,
    /// [`ReportInput::details`], verbatim.
    pub details: serde_json::Value,
    /// The model's input features, in input order (empty in a version 1 report).
    #[serde(default)]
    pub features: Vec<String>,
    /// The dataset columns that are not features, with the reason (empty in a version 1
    /// report).
    #[serde(default)]
    pub excluded_columns: Vec<ExcludedColumn>,
}

/// Sizes and bad rates of the two samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleSummary {
    pub n_train: usize,
    pub bads_train: usize,
    pub bad_rate_train: f64,
    pub n_test: usize,
    pub bads_test: usize,
    pub bad_rate_test: f64,
}

/// Held-out discrimination, calibration and threshold figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestMetrics {
    pub auc: f64,
    /// `2·auc − 1`.
    pub gini: f64,
    pub ks: f64,
    /// The PD at which the KS gap occurs (declining `p >= ks_cutoff` separates best).
    pub ks_cutoff: f64,
    /// Average precision (step-wise area under the precision–recall curve).
    pub pr_auc: f64,
    /// At [`CreditReport::threshold`].
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub brier: f64,
    pub log_loss: f64,
}

/// Does the model hold up beyond its training sample?
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stability {
    pub train_auc: f64,
    pub test_auc: f64,
    /// `train_auc − test_auc`.
    pub auc_gap: f64,
    /// `auc_gap > OVERFITTING_GAP`.
    pub overfitting_flag: bool,
    /// Population stability index of the test PDs against the train PDs ([`metrics::psi`],
    /// [`PSI_BINS`] quantile bins of the train PDs).
    pub psi: f64,
}

/// Confusion counts; positive = bad = declined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Bads declined.
    pub true_positive: usize,
    /// Goods declined.
    pub false_positive: usize,
    /// Goods approved.
    pub true_negative: usize,
    /// Bads approved.
    pub false_negative: usize,
}

/// See [`metrics::CalibrationBin`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRow {
    pub decile: usize,
    pub count: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// See [`metrics::LiftDecile`]; shares are fractions in `[0, 1]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiftRow {
    pub decile: usize,
    pub count: usize,
    pub bads: usize,
    pub bad_rate: f64,
    pub cum_bad_share: f64,
    pub cum_population_share: f64,
    pub lift: f64,
    pub cumulative_lift: f64,
    pub min_predicted: f64,
    pub max_predicted: f64,
}

/// See [`metrics::RocPoint`]; `threshold` is `None` at the starting point `(0, 0)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocCurvePoint {
    pub threshold: Option<f64>,
    pub fpr: f64,
    pub tpr: f64,
}

/// See [`metrics::KsPoint`]; `threshold` is `None` at the end point, where every row is below.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KsCurvePoint {
    pub threshold: Option<f64>,
    pub population_share: f64,
    pub cum_good: f64,
    pub cum_bad: f64,
}

/// What the score histograms are over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    /// Predicted probability of default.
    Probability,
    /// Scorecard points ([`ReportInput::scores_test`]).
    Points,
}

/// Histograms of the test scores of goods and bads over shared equal-width bins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreDistribution {
    pub score: ScoreKind,
    /// `bins + 1` ascending edges.
    pub edges: Vec<f64>,
    pub goods: Vec<usize>,
    pub bads: Vec<usize>,
}

/// Builds the report. Every figure is defined for valid input, so the report has no gaps.
///
/// # Errors
///
/// [`ReportError`] when a sample is empty, mismatched, has labels other than 0/1, PDs outside
/// `[0, 1]` or only one class; when the threshold is not in `[0, 1]`; when the split fractions are
/// not in `[0, 1]`; or when `scores_test` has the wrong length or a non-finite value.
pub fn credit_report(input: ReportInput) -> Result<CreditReport, ReportError> {
    let ReportInput {
        model,
        y_train,
        p_train,
        y_test,
        p_test,
        scores_test,
        threshold,
        split,
        details,
        features,
        excluded_columns,
    } = input;
    let (bads_train, _) = check_sample("train", &y_train, &p_train)?;
    let (bads_test, _) = check_sample("test", &y_test, &p_test)?;
    check_unit("threshold", threshold)?;
    check_unit("split.train_fraction", split.train_fraction)?;
    check_unit("split.test_fraction", split.test_fraction)?;
    if let Some(s) = &scores_test {
        if s.len() != y_test.len() {
            return Err(ReportError::InvalidField {
                field: "scores_test",
                reason: format!("{} scores for {} test rows", s.len(), y_test.len()),
            });
        }
        if let Some(i) = s.iter().position(|v| !v.is_finite()) {
            return Err(ReportError::InvalidField {
                field: "scores_test",
                reason: format!("row {i} is not a finite number"),
            });
        }
    }

    // The checks above make every metric defined; `defined` turns a broken invariant into a panic
    // naming the metric rather than a silently missing figure.
    let (y, p) = (&y_test[..], &p_test[..]);
    let train_auc = defined("train auc", metrics::auc(&y_train, &p_train));
    let test_auc = defined("auc", metrics::auc(y, p));
    let ks = defined("ks", metrics::ks_with_cutoff(y, p));
    let c = defined("confusion", metrics::confusion_matrix(y, p, threshold));
    let auc_gap = train_auc - test_auc;

    let ks_points: Vec<KsCurvePoint> = defined("ks curve", metrics::ks_curve(y, p))
        .into_iter()
        .map(|k| KsCurvePoint {
            threshold: k.threshold.is_finite().then_some(k.threshold),
            population_share: k.population_share,
            cum_good: k.cum_good,
            cum_bad: k.cum_bad,
        })
        .collect();
    let ks_at = ks_points
        .iter()
        .position(|k| k.threshold == Some(ks.cutoff));
    let roc_points: Vec<RocCurvePoint> = defined("roc curve", metrics::roc_curve(y, p))
        .into_iter()
        .map(|r| RocCurvePoint {
            threshold: r.threshold.is_finite().then_some(r.threshold),
            fpr: r.fpr,
            tpr: r.tpr,
        })
        .collect();

    let (kind, scores) = match &scores_test {
        Some(s) => (ScoreKind::Points, &s[..]),
        None => (ScoreKind::Probability, p),
    };
    let hist = defined(
        "score histogram",
        metrics::score_histogram(y, scores, HISTOGRAM_BINS),
    );

    Ok(CreditReport {
        format_version: FORMAT_VERSION,
        model,
        split,
        threshold,
        sample: SampleSummary {
            n_train: y_train.len(),
            bads_train,
            bad_rate_train: bads_train as f64 / y_train.len() as f64,
            n_test: y_test.len(),
            bads_test,
            bad_rate_test: bads_test as f64 / y_test.len() as f64,
        },
        metrics: TestMetrics {
            auc: test_auc,
            gini: 2.0 * test_auc - 1.0,
            ks: ks.statistic,
            ks_cutoff: ks.cutoff,
            pr_auc: defined("pr_auc", metrics::pr_auc(y, p)),
            accuracy: c.accuracy(),
            precision: c.precision(),
            recall: c.recall(),
            f1: c.f1(),
            brier: defined("brier", metrics::brier(y, p)),
            log_loss: defined("log_loss", metrics::log_loss(y, p)),
        },
        stability: Stability {
            train_auc,
            test_auc,
            auc_gap,
            overfitting_flag: auc_gap > OVERFITTING_GAP,
            psi: defined("psi", metrics::psi(&p_train, p, PSI_BINS)),
        },
        confusion_matrix: ConfusionMatrix {
            true_positive: c.tp,
            false_positive: c.fp,
            true_negative: c.tn,
            false_negative: c.fn_,
        },
        calibration: defined("calibration", metrics::calibration_by_decile(y, p))
            .into_iter()
            .map(|b| CalibrationRow {
                decile: b.decile,
                count: b.count,
                mean_predicted: b.mean_predicted,
                observed_rate: b.observed_rate,
            })
            .collect(),
        lift_gains: defined("lift", metrics::lift_gains_table(y, p))
            .into_iter()
            .map(|r| LiftRow {
                decile: r.decile,
                count: r.count,
                bads: r.bads,
                bad_rate: r.bad_rate,
                cum_bad_share: r.cum_bad_share,
                cum_population_share: r.cum_population_share,
                lift: r.lift,
                cumulative_lift: r.cumulative_lift,
                min_predicted: r.min_predicted,
                max_predicted: r.max_predicted,
            })
            .collect(),
        roc_curve: downsample(&roc_points, MAX_CURVE_POINTS, None),
        ks_curve: downsample(&ks_points, MAX_CURVE_POINTS, ks_at),
        score_distribution: ScoreDistribution {
            score: kind,
            edges: hist.edges,
            goods: hist.goods,
            bads: hist.bads,
        },
        details,
        features,
        excluded_columns,
    })
}

/// Renders the report as one standalone HTML page: inline CSS and SVG, no scripts, no external
/// resources, every text from the report escaped.
pub fn html(report: &CreditReport) -> String {
    html::render(report)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    html::escape(s)
}

fn defined<T>(what: &str, value: Option<T>) -> T {
    value.unwrap_or_else(|| panic!("{what} is defined for validated input"))
}

/// `(bads, goods)` of a valid sample with both classes.
fn check_sample(sample: &'static str, y: &[f64], p: &[f64]) -> Result<(usize, usize), ReportError> {
    let fail = |reason: String| Err(ReportError::InvalidSample { sample, reason });
    if y.is_empty() {
        return fail("no rows".into());
    }
    if y.len() != p.len() {
        return fail(format!("{} labels but {} predictions", y.len(), p.len()));
    }
    if let Some(i) = y.iter().position(|&v| v != 0.0 && v != 1.0) {
        return fail(format!("label of row {i} is {}, not 0 or 1", y[i]));
    }
    if let Some(i) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return fail(format!("prediction of row {i} is {}, not in [0, 1]", p[i]));
    }
    let bads = y.iter().filter(|&&v| v == 1.0).count();
    if bads == 0 || bads == y.len() {
        return fail(format!("only one class in {} rows", y.len()));
    }
    Ok((bads, y.len() - bads))
}

fn check_unit(field: &'static str, v: f64) -> Result<(), ReportError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(ReportError::InvalidField {
            field,
            reason: format!("{v} is not in [0, 1]"),
        })
    }
}

/// At most `max` points (`max >= 3`), evenly spaced by index, always keeping the first, the last
/// and `keep`.
fn downsample<T: Clone>(points: &[T], max: usize, keep: Option<usize>) -> Vec<T> {
    if points.len() <= max {
        return points.to_vec();
    }
    let slots = if keep.is_some() { max - 1 } else { max };
    let last = points.len() - 1;
    let mut idx: Vec<usize> = (0..slots)
        .map(|k| ((k * last) as f64 / (slots - 1) as f64).round() as usize)
        .chain(keep)
        .collect();
    idx.sort_unstable();
    idx.dedup();
    idx.into_iter().map(|i| points[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_keeps_ends_and_the_marked_point() {
        let points: Vec<usize> = (0..1000).collect();
        let d = downsample(&points, 101, None);
        assert_eq!(d.len(), 101);
        assert_eq!((d[0], d[1], d[100]), (0, 10, 999));
        let d = downsample(&points, 101, Some(537));
        assert!(d.len() <= 101 && d.contains(&537) && d[0] == 0 && d[d.len() - 1] == 999);
        assert_eq!(downsample(&points[..5], 101, Some(2)), [0, 1, 2, 3, 4]);
    }
}
