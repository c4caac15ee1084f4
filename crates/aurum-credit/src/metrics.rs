//! Evaluation metrics for binary classifiers.
//!
//! Credit-risk practice reads a scorecard through a handful of figures: ranking power (AUC, its
//! rescaling Gini, the Kolmogorov–Smirnov separation and where it occurs, average precision),
//! calibration (log loss, Brier score, observed against predicted by decile), the confusion counts
//! at the decision threshold, how the riskiest deciles concentrate the bads (lift and gains), and
//! whether the score distribution has moved (population stability index). They are computed here,
//! once, so the training job, the CLI and [`crate::report`] agree on definitions. The curve
//! functions ([`roc_curve`], [`ks_curve`], [`score_histogram`]) return the points behind the
//! figures, for plotting.
//!
//! Tied scores always move together: every threshold-based figure is evaluated between distinct
//! scores, and decile tables never split a group of equal scores, so results do not depend on row
//! order.
//!
//! Conventions: `y` holds 0.0 / 1.0 (1 = positive class, e.g. default), `p` the predicted
//! probability of the positive class, and a row is predicted positive when `p >= threshold`.
//! The single-metric functions return `None` when the metric is undefined for their input (empty
//! input, lengths that differ, a `y` other than 0/1, a `p` outside `[0, 1]`, or — for AUC and KS —
//! only one class present). Precision, recall and F1 are 0 when their denominator is 0.

use aurum_core::Metrics;

/// Probabilities are clipped to `[EPS, 1 - EPS]` before taking logarithms in [`log_loss`].
pub const LOG_LOSS_EPS: f64 = 1e-15;

fn valid(y: &[f64], p: &[f64]) -> bool {
    !y.is_empty()
        && y.len() == p.len()
        && y.iter().all(|&v| v == 0.0 || v == 1.0)
        && p.iter().all(|&v| (0.0..=1.0).contains(&v))
}

fn class_counts(y: &[f64]) -> (usize, usize) {
    let pos = y.iter().filter(|&&v| v == 1.0).count();
    (pos, y.len() - pos)
}

/// Indices of `p` sorted by increasing score.
fn order(p: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_unstable_by(|&a, &b| p[a].total_cmp(&p[b]));
    idx
}

/// `(positives, negatives)` when the input is valid and holds both classes.
fn both_classes(y: &[f64], p: &[f64]) -> Option<(usize, usize)> {
    if !valid(y, p) {
        return None;
    }
    let (n_pos, n_neg) = class_counts(y);
    (n_pos > 0 && n_neg > 0).then_some((n_pos, n_neg))
}

/// Rows sharing one score.
struct TiedGroup {
    score: f64,
    pos: usize,
    neg: usize,
}

/// The distinct scores, highest first, each with its counts of positives and negatives.
fn groups_desc(y: &[f64], p: &[f64]) -> Vec<TiedGroup> {
    let mut groups: Vec<TiedGroup> = Vec::new();
    for &i in order(p).iter().rev() {
        let is_pos = y[i] == 1.0;
        match groups.last_mut() {
            Some(g) if g.score == p[i] => {}
            _ => groups.push(TiedGroup {
                score: p[i],
                pos: 0,
                neg: 0,
            }),
        }
        let g = groups.last_mut().expect("just pushed");
        if is_pos {
            g.pos += 1;
        } else {
            g.neg += 1;
        }
    }
    groups
}

/// Area under the ROC curve, by the Mann–Whitney U statistic with tied scores given their average
/// rank (so a tie between a positive and a negative counts one half).
pub fn auc(y: &[f64], p: &[f64]) -> Option<f64> {
    if !valid(y, p) {
        return None;
    }
    let (n_pos, n_neg) = class_counts(y);
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let idx = order(p);
    let mut rank_sum_pos = 0.0;
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && p[idx[end]] == p[idx[start]] {
            end += 1;
        }
        // Ranks start+1 ..= end share their average.
        let avg_rank = (start + 1 + end) as f64 / 2.0;
        let pos_in_group = idx[start..end].iter().filter(|&&i| y[i] == 1.0).count();
        rank_sum_pos += avg_rank * pos_in_group as f64;
        start = end;
    }
    let (np, nn) = (n_pos as f64, n_neg as f64);
    Some((rank_sum_pos - np * (np + 1.0) / 2.0) / (np * nn))
}

/// Kolmogorov–Smirnov statistic: the largest gap between the score distributions of positives and
/// negatives, `max_t |TPR(t) - FPR(t)|`, with tied scores moving together. [`ks_with_cutoff`] also
/// says where the gap occurs.
pub fn ks(y: &[f64], p: &[f64]) -> Option<f64> {
    ks_with_cutoff(y, p).map(|k| k.statistic)
}

/// The KS statistic and the cut-off at which it occurs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KsStatistic {
    /// `max_t |TPR(t) - FPR(t)|`.
    pub statistic: f64,
    /// The score `t` attaining the maximum: predicting positive every row with `p >= t` separates
    /// the classes best. When several cut-offs attain it, the highest (fewest positives).
    pub cutoff: f64,
}

/// [`ks`] together with its cut-off: `Confusion::at(y, p, cutoff)` has `recall - FPR` equal to
/// `±statistic`.
pub fn ks_with_cutoff(y: &[f64], p: &[f64]) -> Option<KsStatistic> {
    let (n_pos, n_neg) = both_classes(y, p)?;
    // Gaps are compared exactly, as |tp·n_neg − fp·n_pos| (the gap times n_pos·n_neg), so that
    // "the highest cut-off among equal gaps" does not depend on rounding.
    let (mut tp, mut fp) = (0u128, 0u128);
    let (np, nn) = (n_pos as u128, n_neg as u128);
    let (mut best_gap, mut cutoff) = (None, f64::NAN);
    for g in groups_desc(y, p) {
        tp += g.pos as u128;
        fp += g.neg as u128;
        let gap = (tp * nn).abs_diff(fp * np);
        if best_gap.is_none_or(|b| gap > b) {
            (best_gap, cutoff) = (Some(gap), g.score);
        }
    }
    Some(KsStatistic {
        statistic: best_gap? as f64 / (np * nn) as f64,
        cutoff,
    })
}

/// Mean negative log-likelihood, with `p` clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`.
pub fn log_loss(y: &[f64], p: &[f64]) -> Option<f64> {
    if !valid(y, p) {
        return None;
    }
    let total: f64 = y
        .iter()
        .zip(p)
        .map(|(&y, &p)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        })
        .sum();
    Some(total / y.len() as f64)
}

/// Brier score: mean squared difference between probability and outcome.
pub fn brier(y: &[f64], p: &[f64]) -> Option<f64> {
    if !valid(y, p) {
        return None;
    }
    Some(y.iter().zip(p).map(|(y, p)| (p - y) * (p - y)).sum::<f64>() / y.len() as f64)
}

/// Confusion counts at a threshold (`p >= threshold` is predicted positive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    pub fn_: usize,
}

impl Confusion {
    pub fn at(y: &[f64], p: &[f64], threshold: f64) -> Option<Confusion> {
        if !valid(y, p) {
            return None;
        }
        let mut c = Confusion {
            tp: 0,
            fp: 0,
            tn: 0,
            fn_: 0,
        };
        for (&y, &p) in y.iter().zip(p) {
            match (p >= threshold, y == 1.0) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        Some(c)
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn_)
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

pub fn accuracy(y: &[f64], p: &[f64], threshold: f64) -> Option<f64> {
    Confusion::at(y, p, threshold).map(|c| c.accuracy())
}

pub fn precision(y: &[f64], p: &[f64], threshold: f64) -> Option<f64> {
    Confusion::at(y, p, threshold).map(|c| c.precision())
}

pub fn recall(y: &[f64], p: &[f64], threshold: f64) -> Option<f64> {
    Confusion::at(y, p, threshold).map(|c| c.recall())
}

pub fn f1(y: &[f64], p: &[f64], threshold: f64) -> Option<f64> {
    Confusion::at(y, p, threshold).map(|c| c.f1())
}

/// Every metric at once, keyed `auc`, `gini`, `ks`, `log_loss`, `brier`, `accuracy`,
/// `precision`, `recall`, `f1`, `n` (row count) and `positive_rate` (share of actual positives).
///
/// Every value is finite, so the map can be stored as is: metrics undefined for the input are
/// left out rather than set to NaN. `auc`, `gini` and `ks` need both classes; when the input is
/// invalid (lengths differ, empty, a `y` other than 0/1, a `p` outside `[0, 1]`) only `n` is
/// returned.
pub fn evaluate_binary(y: &[f64], p: &[f64], threshold: f64) -> Metrics {
    let mut m = Metrics::new();
    m.insert("n".into(), y.len() as f64);
    let Some(c) = Confusion::at(y, p, threshold) else {
        return m;
    };
    if let Some(a) = auc(y, p) {
        m.insert("auc".into(), a);
        m.insert("gini".into(), 2.0 * a - 1.0);
    }
    let defined = [
        ("ks", ks(y, p)),
        ("pr_auc", pr_auc(y, p)),
        ("log_loss", log_loss(y, p)),
        ("brier", brier(y, p)),
    ];
    for (k, v) in defined {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    m.insert("accuracy".into(), c.accuracy());
    m.insert("precision".into(), c.precision());
    m.insert("recall".into(), c.recall());
    m.insert("f1".into(), c.f1());
    m.insert(
        "positive_rate".into(),
        class_counts(y).0 as f64 / y.len() as f64,
    );
    m
}

/// Gini coefficient (accuracy ratio), `2·AUC − 1`: 0 for a random ranking, 1 for a perfect one.
pub fn gini(y: &[f64], p: &[f64]) -> Option<f64> {
    auc(y, p).map(|a| 2.0 * a - 1.0)
}

/// Confusion counts at `threshold` (`p >= threshold` is predicted positive); the same as
/// [`Confusion::at`].
pub fn confusion_matrix(y: &[f64], p: &[f64], threshold: f64) -> Option<Confusion> {
    Confusion::at(y, p, threshold)
}

/// Area under the precision–recall curve as average precision, the step-wise sum
/// `AP = Σₙ (Rₙ − Rₙ₋₁)·Pₙ` over the distinct scores from the highest down (tied scores enter
/// together), as scikit-learn's `average_precision_score`. Unlike a trapezoidal area it never
/// interpolates between operating points, so it is not optimistic.
///
/// Needs at least one positive (recall is undefined without); negatives are not needed.
pub fn pr_auc(y: &[f64], p: &[f64]) -> Option<f64> {
    if !valid(y, p) {
        return None;
    }
    let n_pos = class_counts(y).0;
    if n_pos == 0 {
        return None;
    }
    let (mut tp, mut fp, mut ap, mut prev_recall) = (0usize, 0usize, 0.0, 0.0);
    for g in groups_desc(y, p) {
        tp += g.pos;
        fp += g.neg;
        let recall = tp as f64 / n_pos as f64;
        ap += (recall - prev_recall) * (tp as f64 / (tp + fp) as f64);
        prev_recall = recall;
    }
    Some(ap)
}

/// One point of [`roc_curve`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RocPoint {
    /// Rows with `p >= threshold` are predicted positive; `+∞` for the starting point (0, 0).
    pub threshold: f64,
    /// False positive rate, the share of negatives predicted positive.
    pub fpr: f64,
    /// True positive rate (recall), the share of positives predicted positive.
    pub tpr: f64,
}

/// The ROC curve: `(0, 0)` at threshold `+∞`, then one point per distinct score from the highest
/// down, ending at `(1, 1)`. Needs both classes.
pub fn roc_curve(y: &[f64], p: &[f64]) -> Option<Vec<RocPoint>> {
    let (n_pos, n_neg) = both_classes(y, p)?;
    let mut points = vec![RocPoint {
        threshold: f64::INFINITY,
        fpr: 0.0,
        tpr: 0.0,
    }];
    let (mut tp, mut fp) = (0usize, 0usize);
    for g in groups_desc(y, p) {
        tp += g.pos;
        fp += g.neg;
        points.push(RocPoint {
            threshold: g.score,
            fpr: fp as f64 / n_neg as f64,
            tpr: tp as f64 / n_pos as f64,
        });
    }
    Some(points)
}

/// One point of [`ks_curve`]: the shares of rows scoring strictly below a cut-off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KsPoint {
    /// The cut-off; `+∞` for the final point, where every row is below.
    pub threshold: f64,
    /// Share of all rows with `p < threshold`.
    pub population_share: f64,
    /// Cumulative distribution of the negatives ("goods"): share with `p < threshold`.
    pub cum_good: f64,
    /// Cumulative distribution of the positives ("bads"): share with `p < threshold`.
    pub cum_bad: f64,
}

/// The two cumulative score distributions behind KS, one point per distinct score from the lowest
/// up (starting at `(0, 0)`) plus a final point at `+∞` (`(1, 1)`). At every point
/// `cum_good − cum_bad = TPR − FPR` at that threshold, so the largest absolute gap is [`ks`] and
/// sits at [`ks_with_cutoff`]'s cut-off. Needs both classes.
pub fn ks_curve(y: &[f64], p: &[f64]) -> Option<Vec<KsPoint>> {
    let (n_pos, n_neg) = both_classes(y, p)?;
    let n = y.len() as f64;
    let mut points = Vec::new();
    let (mut bads, mut goods) = (0usize, 0usize);
    let mut push = |threshold: f64, bads: usize, goods: usize| {
        points.push(KsPoint {
            threshold,
            population_share: (bads + goods) as f64 / n,
            cum_good: goods as f64 / n_neg as f64,
            cum_bad: bads as f64 / n_pos as f64,
        });
    };
    for g in groups_desc(y, p).iter().rev() {
        push(g.score, bads, goods);
        bads += g.pos;
        goods += g.neg;
    }
    push(f64::INFINITY, bads, goods);
    Some(points)
}

/// Decile index (0..10) of every row, `⌊10·r/n⌋` where `r` counts the rows ranked strictly
/// before it (lower scores when `descending` is false, higher when true). Tied rows therefore
/// share a decile, and with heavy ties a decile can hold more than a tenth of the rows while
/// another is empty; without ties and with `n` a multiple of 10 every decile holds `n/10`.
fn deciles(p: &[f64], descending: bool) -> Vec<usize> {
    let n = p.len();
    let idx = order(p);
    let mut decile = vec![0; n];
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && p[idx[end]] == p[idx[start]] {
            end += 1;
        }
        let before = if descending { n - end } else { start };
        for &i in &idx[start..end] {
            decile[i] = 10 * before / n;
        }
        start = end;
    }
    decile
}

/// One bin of [`calibration_by_decile`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationBin {
    /// 1 (lowest predicted probabilities) to 10 (highest).
    pub decile: usize,
    pub count: usize,
    /// Mean predicted probability in the bin.
    pub mean_predicted: f64,
    /// Share of actual positives in the bin.
    pub observed_rate: f64,
}

/// Calibration table: rows binned into deciles of predicted probability (lowest first; tied
/// probabilities stay in one bin, so a decile can be empty and is then left out), each with its
/// mean prediction and observed positive rate. A calibrated model has the two close in every bin.
pub fn calibration_by_decile(y: &[f64], p: &[f64]) -> Option<Vec<CalibrationBin>> {
    if !valid(y, p) {
        return None;
    }
    let mut sums = [(0usize, 0.0f64, 0.0f64); 10];
    for (i, d) in deciles(p, false).into_iter().enumerate() {
        sums[d].0 += 1;
        sums[d].1 += p[i];
        sums[d].2 += y[i];
    }
    Some(
        sums.iter()
            .enumerate()
            .filter(|(_, s)| s.0 > 0)
            .map(|(d, &(count, sum_p, sum_y))| CalibrationBin {
                decile: d + 1,
                count,
                mean_predicted: sum_p / count as f64,
                observed_rate: sum_y / count as f64,
            })
            .collect(),
    )
}

/// One row of [`lift_gains_table`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LiftDecile {
    /// 1 (riskiest tenth: highest predicted probabilities) to 10 (safest).
    pub decile: usize,
    pub count: usize,
    /// Actual positives ("bads") in the decile.
    pub bads: usize,
    /// `bads / count`.
    pub bad_rate: f64,
    /// Share of all bads found in deciles 1..=this one (the gains curve).
    pub cum_bad_share: f64,
    /// Share of all rows in deciles 1..=this one.
    pub cum_population_share: f64,
    /// `bad_rate / overall bad rate`: how much richer in bads the decile is than the population.
    pub lift: f64,
    /// `cum_bad_share / cum_population_share`.
    pub cumulative_lift: f64,
    /// Lowest and highest predicted probability in the decile.
    pub min_predicted: f64,
    pub max_predicted: f64,
}

/// Lift and gains table: rows ranked by predicted probability, riskiest first, cut into deciles
/// (tied probabilities stay in one decile; an empty decile is left out). Needs at least one
/// positive, since lift divides by the overall bad rate.
pub fn lift_gains_table(y: &[f64], p: &[f64]) -> Option<Vec<LiftDecile>> {
    if !valid(y, p) {
        return None;
    }
    let (n_pos, _) = class_counts(y);
    if n_pos == 0 {
        return None;
    }
    let n = y.len();
    let overall = n_pos as f64 / n as f64;
    let mut acc = [(0usize, 0usize, f64::INFINITY, f64::NEG_INFINITY); 10];
    for (i, d) in deciles(p, true).into_iter().enumerate() {
        let a = &mut acc[d];
        a.0 += 1;
        a.1 += usize::from(y[i] == 1.0);
        a.2 = a.2.min(p[i]);
        a.3 = a.3.max(p[i]);
    }
    let (mut cum_rows, mut cum_bads) = (0usize, 0usize);
    let mut rows = Vec::new();
    for (d, &(count, bads, min_p, max_p)) in acc.iter().enumerate() {
        if count == 0 {
            continue;
        }
        cum_rows += count;
        cum_bads += bads;
        let bad_rate = bads as f64 / count as f64;
        let cum_bad_share = cum_bads as f64 / n_pos as f64;
        let cum_population_share = cum_rows as f64 / n as f64;
        rows.push(LiftDecile {
            decile: d + 1,
            count,
            bads,
            bad_rate,
            cum_bad_share,
            cum_population_share,
            lift: bad_rate / overall,
            cumulative_lift: cum_bad_share / cum_population_share,
            min_predicted: min_p,
            max_predicted: max_p,
        });
    }
    Some(rows)
}

/// Floor for bin shares in [`psi`], so an empty bin contributes a large but finite term.
pub const PSI_EPS: f64 = 1e-4;

/// Population stability index of `actual` against `expected`:
///
/// `PSI = Σᵢ (aᵢ − eᵢ)·ln(aᵢ / eᵢ)`
///
/// where `eᵢ` and `aᵢ` are the shares of `expected` and `actual` falling in bin `i`, each floored
/// at [`PSI_EPS`] (epsilon smoothing). The bins come from `expected` alone: the cut points are its
/// empirical `k/bins` quantiles (`k = 1..bins`, the smallest value with at least `k/bins` of the
/// sample at or below it), duplicates removed, and bin `i` is `(cutᵢ₋₁, cutᵢ]` with the outer
/// bins open. Every term is ≥ 0 and `psi(x, x, b) = 0`. Rule of thumb: below 0.1 stable,
/// 0.1–0.25 a shift worth a look, above 0.25 a significant shift.
///
/// Works on any finite scores (probabilities or points). `None` when a side is empty, a value is
/// not finite, or `bins` is 0.
pub fn psi(expected: &[f64], actual: &[f64], bins: usize) -> Option<f64> {
    if expected.is_empty()
        || actual.is_empty()
        || bins == 0
        || !expected.iter().chain(actual).all(|v| v.is_finite())
    {
        return None;
    }
    let mut sorted = expected.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let n = sorted.len();
    let mut cuts: Vec<f64> = (1..bins)
        .map(|k| sorted[(k * n).div_ceil(bins) - 1])
        .collect();
    cuts.dedup();
    let shares = |values: &[f64]| {
        let mut counts = vec![0usize; cuts.len() + 1];
        for &v in values {
            counts[cuts.partition_point(|&c| c < v)] += 1;
        }
        counts
            .into_iter()
            .map(|c| (c as f64 / values.len() as f64).max(PSI_EPS))
            .collect::<Vec<_>>()
    };
    let (e, a) = (shares(expected), shares(actual));
    Some(
        e.iter()
            .zip(&a)
            .map(|(&e, &a)| (a - e) * (a / e).ln())
            .sum(),
    )
}

/// Score histograms of negatives ("goods") and positives ("bads") over shared bins.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreHistogram {
    /// `bins + 1` ascending edges; bin `i` is `[edges[i], edges[i+1])`, the last one closed.
    pub edges: Vec<f64>,
    pub goods: Vec<usize>,
    pub bads: Vec<usize>,
}

/// Histograms of `scores` (probabilities or points, any finite values) for goods and bads, over
/// `bins` equal-width bins spanning the observed range (`min ± 0.5` when every score is equal).
/// `None` for empty or mismatched input, a `y` other than 0/1, a non-finite score, or `bins == 0`.
pub fn score_histogram(y: &[f64], scores: &[f64], bins: usize) -> Option<ScoreHistogram> {
    if y.is_empty()
        || y.len() != scores.len()
        || bins == 0
        || !y.iter().all(|&v| v == 0.0 || v == 1.0)
        || !scores.iter().all(|v| v.is_finite())
    {
        return None;
    }
    let (mut lo, mut hi) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &s| {
            (lo.min(s), hi.max(s))
        });
    if lo == hi {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let width = (hi - lo) / bins as f64;
    let mut edges: Vec<f64> = (0..bins).map(|i| lo + i as f64 * width).collect();
    edges.push(hi);
    let (mut goods, mut bads) = (vec![0; bins], vec![0; bins]);
    for (&y, &s) in y.iter().zip(scores) {
        let bin = (((s - lo) / width) as usize).min(bins - 1);
        if y == 1.0 {
            bads[bin] += 1;
        } else {
            goods[bin] += 1;
        }
    }
    Some(ScoreHistogram { edges, goods, bads })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn auc_by_hand() {
        // Positives score 0.35 and 0.8, negatives 0.1 and 0.4. Of the 4 (pos, neg) pairs the
        // positive wins 3 (0.35>0.1, 0.8>0.1, 0.8>0.4) and loses 1 → 3/4.
        assert_eq!(
            auc(&[0.0, 0.0, 1.0, 1.0], &[0.1, 0.4, 0.35, 0.8]),
            Some(0.75)
        );
        // Ties: positives 0.5, 0.9; negatives 0.5, 0.2. Pairs: tie (½), 0.5>0.2, 0.9>0.5,
        // 0.9>0.2 → 3.5/4. By ranks: 0.2→1, 0.5,0.5→2.5, 0.9→4; R+ = 6.5; (6.5-3)/4 = 0.875.
        assert_eq!(
            auc(&[0.0, 1.0, 0.0, 1.0], &[0.5, 0.5, 0.2, 0.9]),
            Some(0.875)
        );
        // All scores equal → every pair ties → ½.
        assert_eq!(auc(&[0.0, 1.0, 1.0], &[0.3, 0.3, 0.3]), Some(0.5));
        assert_eq!(auc(&[1.0, 1.0], &[0.3, 0.4]), None);
        assert_eq!(auc(&[1.0, 0.0], &[0.3]), None);
        assert_eq!(auc(&[], &[]), None);
    }

    #[test]
    fn ks_by_hand() {
        // Descending scores: 0.8(+) → TPR ½, FPR 0 → gap ½; 0.4(−) → ½,½ → 0; 0.35(+) → 1,½ → ½;
        // 0.1(−) → 1,1 → 0. KS = ½.
        assert_eq!(ks(&[0.0, 0.0, 1.0, 1.0], &[0.1, 0.4, 0.35, 0.8]), Some(0.5));
        // Perfect separation → 1; a tie between a positive and a negative moves them together:
        // scores 0.5(+), 0.5(−), 0.2(−): after the 0.5 group TPR 1, FPR ½ → ½; then 1,1 → 0.
        assert_eq!(ks(&[0.0, 1.0], &[0.1, 0.9]), Some(1.0));
        assert_eq!(ks(&[1.0, 0.0, 0.0], &[0.5, 0.5, 0.2]), Some(0.5));
    }

    #[test]
    fn log_loss_and_brier_by_hand() {
        // −(ln 0.8 + ln 0.6)/2 = (0.2231435513 + 0.5108256238)/2 = 0.3669845875.
        let ll = log_loss(&[1.0, 0.0], &[0.8, 0.4]).unwrap();
        assert!((ll - 0.366_984_587_5).abs() < 1e-10, "{ll}");
        // p = 0 for a positive is clipped to 1e-15: −ln(1e-15) = 15 ln 10 = 34.5387763949.
        let ll = log_loss(&[1.0], &[0.0]).unwrap();
        assert!((ll - 34.538_776_394_9).abs() < 1e-6, "{ll}");
        // ((0.8−1)² + (0.4−0)²)/2 = (0.04 + 0.16)/2 = 0.1.
        assert!(close(brier(&[1.0, 0.0], &[0.8, 0.4]).unwrap(), 0.1));
        assert_eq!(brier(&[2.0], &[0.5]), None);
        assert_eq!(log_loss(&[1.0], &[1.5]), None);
    }

    #[test]
    fn threshold_metrics_by_hand() {
        // y = 1 1 0 0 1, p = .9 .4 .6 .2 .5 at 0.5: predicted positive .9(+) .6(−) .5(+) →
        // tp 2, fp 1; predicted negative .4(+) .2(−) → fn 1, tn 1.
        // accuracy 3/5; precision 2/3; recall 2/3; f1 = 2·2/(2·2+1+1) = 2/3.
        let (y, p) = ([1.0, 1.0, 0.0, 0.0, 1.0], [0.9, 0.4, 0.6, 0.2, 0.5]);
        assert_eq!(
            Confusion::at(&y, &p, 0.5),
            Some(Confusion {
                tp: 2,
                fp: 1,
                tn: 1,
                fn_: 1
            })
        );
        assert!(close(accuracy(&y, &p, 0.5).unwrap(), 0.6));
        assert!(close(precision(&y, &p, 0.5).unwrap(), 2.0 / 3.0));
        assert!(close(recall(&y, &p, 0.5).unwrap(), 2.0 / 3.0));
        assert!(close(f1(&y, &p, 0.5).unwrap(), 2.0 / 3.0));
        // Nothing predicted positive → precision, recall and F1 are 0 rather than undefined.
        assert_eq!(precision(&y, &p, 0.95), Some(0.0));
        assert_eq!(f1(&y, &p, 0.95), Some(0.0));
    }

    #[test]
    fn evaluate_binary_collects_everything() {
        let (y, p) = ([0.0, 0.0, 1.0, 1.0], [0.1, 0.4, 0.35, 0.8]);
        let m = evaluate_binary(&y, &p, 0.5);
        let keys: Vec<_> = m.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "accuracy",
                "auc",
                "brier",
                "f1",
                "gini",
                "ks",
                "log_loss",
                "n",
                "positive_rate",
                "pr_auc",
                "precision",
                "recall"
            ]
        );
        assert_eq!(m["auc"], 0.75);
        assert_eq!(Some(m["pr_auc"]), pr_auc(&y, &p));
        assert_eq!(m["gini"], 0.5);
        assert_eq!(m["n"], 4.0);
        assert_eq!(m["positive_rate"], 0.5);
        // Only 0.8 is ≥ 0.5: tp 1, fn 1, tn 2 → accuracy 3/4, precision 1, recall ½, f1 2/3.
        assert_eq!(m["accuracy"], 0.75);
        assert_eq!(m["precision"], 1.0);
        assert_eq!(m["recall"], 0.5);
        assert!(close(m["f1"], 2.0 / 3.0));

        let one_class = evaluate_binary(&[1.0, 1.0], &[0.2, 0.9], 0.5);
        assert!(!one_class.contains_key("auc") && !one_class.contains_key("ks"));
        assert!(one_class.contains_key("log_loss"));
        assert!(one_class.values().all(|v| v.is_finite()));

        for (y, p) in [
            (&[1.0][..], &[0.2, 0.3][..]),
            (&[], &[]),
            (&[2.0], &[0.3]),
            (&[1.0], &[f64::NAN]),
        ] {
            let m = evaluate_binary(y, p, 0.5);
            assert_eq!(m.keys().collect::<Vec<_>>(), ["n"]);
        }
    }

    fn near(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn gini_by_hand() {
        // Positives 0.35, 0.8; negatives 0.1, 0.4. Of the 4 pairs 3 are concordant and 1
        // discordant: Gini (Somers' D) = (3 − 1)/4 = ½ = 2·¾ − 1.
        assert_eq!(
            gini(&[0.0, 0.0, 1.0, 1.0], &[0.1, 0.4, 0.35, 0.8]),
            Some(0.5)
        );
        // Perfectly inverted ranking → −1; one class → undefined.
        assert_eq!(gini(&[1.0, 0.0], &[0.1, 0.9]), Some(-1.0));
        assert_eq!(gini(&[1.0, 1.0], &[0.1, 0.9]), None);
    }

    #[test]
    fn ks_cutoff_by_hand() {
        // Descending: 0.8(+) gap ½ → best so far, cut-off 0.8; 0.4(−) 0; 0.35(+) ½ again, not
        // larger, so the highest cut-off is kept; 0.1(−) 0.
        let (y, p) = ([0.0, 0.0, 1.0, 1.0], [0.1, 0.4, 0.35, 0.8]);
        let k = ks_with_cutoff(&y, &p).unwrap();
        assert_eq!(
            k,
            KsStatistic {
                statistic: 0.5,
                cutoff: 0.8
            }
        );
        // At the cut-off: tp 1, fn 1 → recall ½; fp 0 → FPR 0; ½ − 0 = KS.
        let c = confusion_matrix(&y, &p, k.cutoff).unwrap();
        assert_eq!((c.tp, c.fn_, c.fp, c.tn), (1, 1, 0, 2));

        // Bads 0.9, 0.8, 0.6; goods 0.7, 0.3, 0.2 (3 each). Descending gaps TPR − FPR:
        // 0.9 → ⅓; 0.8 → ⅔; 0.7 → ⅔ − ⅓ = ⅓; 0.6 → 1 − ⅓ = ⅔ (tie, kept 0.8); 0.3 → ⅓; 0.2 → 0.
        let k = ks_with_cutoff(
            &[1.0, 1.0, 0.0, 1.0, 0.0, 0.0],
            &[0.9, 0.8, 0.7, 0.6, 0.3, 0.2],
        )
        .unwrap();
        near(k.statistic, 2.0 / 3.0);
        assert_eq!(k.cutoff, 0.8);
        // A tie moves together: 0.5(+) and 0.5(−) enter at once → 1 − ½ = ½ at 0.5.
        assert_eq!(
            ks_with_cutoff(&[1.0, 0.0, 0.0], &[0.5, 0.5, 0.2]),
            Some(KsStatistic {
                statistic: 0.5,
                cutoff: 0.5
            })
        );
        assert_eq!(ks_with_cutoff(&[0.0, 0.0], &[0.5, 0.2]), None);
    }

    #[test]
    fn pr_auc_by_hand() {
        // scikit-learn's documented example, average_precision_score → 0.8333:
        // 0.8(+): R ½, P 1 → ½·1; 0.4(−): R ½ (ΔR 0); 0.35(+): R 1, P ⅔ → ½·⅔ = ⅓; 0.1(−): ΔR 0.
        // AP = ½ + ⅓ = ⅚.
        near(
            pr_auc(&[0.0, 0.0, 1.0, 1.0], &[0.1, 0.4, 0.35, 0.8]).unwrap(),
            5.0 / 6.0,
        );
        // Tie: 0.9(+): R ½, P 1 → ½; then 0.5(+) and 0.5(−) together: R 1, P ⅔ → ⅓. AP = ⅚.
        near(
            pr_auc(&[1.0, 0.0, 1.0, 0.0], &[0.5, 0.5, 0.9, 0.1]).unwrap(),
            5.0 / 6.0,
        );
        // Inverted: 0.9(−): ΔR 0; 0.1(+): R 1, P ½ → ½.
        assert_eq!(pr_auc(&[0.0, 1.0], &[0.9, 0.1]), Some(0.5));
        // Only positives: precision 1 everywhere. No positives: undefined.
        assert_eq!(pr_auc(&[1.0, 1.0], &[0.2, 0.3]), Some(1.0));
        assert_eq!(pr_auc(&[0.0, 0.0], &[0.2, 0.3]), None);
    }

    #[test]
    fn roc_and_ks_curves_by_hand() {
        let (y, p) = ([0.0, 0.0, 1.0, 1.0], [0.1, 0.4, 0.35, 0.8]);
        // Descending: start (0,0); 0.8(+) → TPR ½; 0.4(−) → FPR ½; 0.35(+) → TPR 1; 0.1(−) → FPR 1.
        // Trapezoids: 0 + ½·½ + 0 + ½·1 = ¾ = AUC.
        let roc: Vec<_> = roc_curve(&y, &p)
            .unwrap()
            .iter()
            .map(|r| (r.threshold, r.fpr, r.tpr))
            .collect();
        assert_eq!(
            roc,
            [
                (f64::INFINITY, 0.0, 0.0),
                (0.8, 0.0, 0.5),
                (0.4, 0.5, 0.5),
                (0.35, 0.5, 1.0),
                (0.1, 1.0, 1.0)
            ]
        );
        // Ascending, shares strictly below each cut-off (population, goods, bads):
        // 0.1 → nothing; 0.35 → {0.1−} ¼, ½, 0; 0.4 → {0.1−, 0.35+} ½, ½, ½;
        // 0.8 → three rows ¾, 1, ½; +∞ → everything. Gaps ½ at 0.35 and at 0.8 = KS.
        let ks_points: Vec<_> = ks_curve(&y, &p)
            .unwrap()
            .iter()
            .map(|k| (k.threshold, k.population_share, k.cum_good, k.cum_bad))
            .collect();
        assert_eq!(
            ks_points,
            [
                (0.1, 0.0, 0.0, 0.0),
                (0.35, 0.25, 0.5, 0.0),
                (0.4, 0.5, 0.5, 0.5),
                (0.8, 0.75, 1.0, 0.5),
                (f64::INFINITY, 1.0, 1.0, 1.0)
            ]
        );
        assert_eq!(roc_curve(&[1.0], &[0.5]), None);
        assert_eq!(ks_curve(&[0.0], &[0.5]), None);
    }

    #[test]
    fn calibration_by_hand() {
        // p = 0, 0.05, …, 0.95 (i/20); bads at i = 3, 9, 13, 15, 16, 17, 18, 19. No ties, n = 20:
        // decile d holds i = 2d, 2d+1, mean prediction (4d+1)/40, observed rate = bads/2.
        let p: Vec<f64> = (0..20).map(|i| f64::from(i) / 20.0).collect();
        let bads = [3, 9, 13, 15, 16, 17, 18, 19];
        let y: Vec<f64> = (0..20)
            .map(|i| if bads.contains(&i) { 1.0 } else { 0.0 })
            .collect();
        let observed = [0.0, 0.5, 0.0, 0.0, 0.5, 0.0, 0.5, 0.5, 1.0, 1.0];
        let table = calibration_by_decile(&y, &p).unwrap();
        assert_eq!(table.len(), 10);
        for (d, bin) in table.iter().enumerate() {
            assert_eq!((bin.decile, bin.count), (d + 1, 2));
            near(bin.mean_predicted, (4 * d + 1) as f64 / 40.0);
            assert_eq!(bin.observed_rate, observed[d]);
        }
        // Row order does not matter.
        let (mut yr, mut pr) = (y.clone(), p.clone());
        yr.reverse();
        pr.reverse();
        assert_eq!(calibration_by_decile(&yr, &pr).unwrap(), table);

        // Ties stay together. n = 10; decile = ⌊10·(rows strictly lower)/10⌋:
        // 0.1 ×4 → 0 lower → decile 1 (bads 1/4); 0.2 ×2 → 4 lower → decile 5 (1/2);
        // 0.3 → 6 lower → decile 7 (1/1); 0.4 ×3 → 7 lower → decile 8 (2/3). Others empty.
        let p = [0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.3, 0.4, 0.4, 0.4];
        let y = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0];
        let got: Vec<_> = calibration_by_decile(&y, &p)
            .unwrap()
            .iter()
            .map(|b| (b.decile, b.count, b.observed_rate))
            .collect();
        assert_eq!(
            got,
            [(1, 4, 0.25), (5, 2, 0.5), (7, 1, 1.0), (8, 3, 2.0 / 3.0)]
        );
        assert_eq!(calibration_by_decile(&[1.0], &[1.5]), None);
    }

    #[test]
    fn lift_gains_by_hand() {
        // Ten rows, one per decile, riskiest first; 4 bads of 10 → overall bad rate 0.4, so a
        // decile with its one row bad has lift 1/0.4 = 2.5.
        // decile  bad  cum bads  cum pop  cum lift
        //   1      1     ¼        0.1      2.5
        //   2      1     ½        0.2      2.5
        //   3      0     ½        0.3      5/3
        //   4      1     ¾        0.4      1.875
        //   7      1     1        0.7      1/0.7
        //  10      0     1        1.0      1
        let p = [0.05, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];
        let y = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let t = lift_gains_table(&y, &p).unwrap();
        assert_eq!(t.len(), 10);
        assert_eq!(t.iter().map(|r| r.bads).sum::<usize>(), 4);
        let pick = |d: usize| {
            let r = t[d - 1];
            assert_eq!((r.decile, r.count), (d, 1));
            (r.bads, r.cum_bad_share, r.cum_population_share, r.lift)
        };
        assert_eq!(pick(1), (1, 0.25, 0.1, 2.5));
        assert_eq!(pick(3), (0, 0.5, 0.3, 0.0));
        assert_eq!(pick(4), (1, 0.75, 0.4, 2.5));
        assert_eq!(pick(10), (0, 1.0, 1.0, 0.0));
        near(t[2].cumulative_lift, 5.0 / 3.0);
        near(t[3].cumulative_lift, 1.875);
        near(t[6].cumulative_lift, 1.0 / 0.7);
        assert_eq!((t[0].min_predicted, t[0].max_predicted), (0.9, 0.9));
        assert_eq!(t[0].bad_rate, 1.0);

        // All scores tied → one decile holding everyone, lift 1.
        let t = lift_gains_table(&[1.0, 0.0, 0.0, 0.0], &[0.3; 4]).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].decile, t[0].count, t[0].lift), (1, 4, 1.0));
        assert_eq!(lift_gains_table(&[0.0, 0.0], &[0.3, 0.4]), None);
    }

    #[test]
    fn psi_by_hand() {
        // expected 1..=10, 5 bins: cuts at sorted[⌈k·10/5⌉ − 1] = sorted[1, 3, 5, 7] = 2, 4, 6, 8;
        // bins (−∞,2] (2,4] (4,6] (6,8] (8,∞) hold 0.2 of expected each.
        // actual 1 1 1 1 | 3 3 | 5 | 7 | 9 9 → 0.4, 0.2, 0.1, 0.1, 0.2.
        // PSI = (0.4−0.2)·ln 2 + 0 + 2·(0.1−0.2)·ln ½ + 0 = 0.4·ln 2 = 0.2772588722.
        let expected: Vec<f64> = (1..=10).map(f64::from).collect();
        let actual = [1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 5.0, 7.0, 9.0, 9.0];
        let v = psi(&expected, &actual, 5).unwrap();
        assert!((v - 0.277_258_872_2).abs() < 1e-10, "{v}");

        // Empty actual bins are floored at 1e-4: a = 1, 1e-4 ×4 against e = 0.2 ×5:
        // (1−0.2)·ln 5 + 4·(1e-4 − 0.2)·ln(1e-4/0.2) = 1.2875503299 + 6.0776816066 = 7.3652319366.
        let v = psi(&expected, &[1.0; 10], 5).unwrap();
        assert!((v - 7.365_231_936_6).abs() < 1e-9, "{v}");

        // Tied expected values merge cuts: expected 1 ×6, 2, 3, 4, 5; cuts sorted[1,3,5,7] =
        // 1, 1, 1, 3 → {1, 3}; bins (−∞,1] (1,3] (3,∞) hold 0.6, 0.2, 0.2.
        // actual 1 | 2 2 | 4 5 → 0.2, 0.4, 0.4.
        // PSI = (0.2−0.6)·ln ⅓ + 2·(0.4−0.2)·ln 2 = 0.4·ln 3 + 0.4·ln 2 = 0.4·ln 6 = 0.7167037877.
        let expected = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let v = psi(&expected, &[1.0, 2.0, 2.0, 4.0, 5.0], 5).unwrap();
        assert!((v - 0.716_703_787_7).abs() < 1e-10, "{v}");

        assert_eq!(psi(&expected, &expected, 10), Some(0.0));
        assert_eq!(psi(&[], &[1.0], 10), None);
        assert_eq!(psi(&[1.0], &[1.0], 0), None);
        assert_eq!(psi(&[1.0], &[f64::NAN], 10), None);
    }

    #[test]
    fn score_histogram_by_hand() {
        // Scores 0..=4 over 4 bins of width 1: edges 0,1,2,3,4; the maximum 4 falls in the last
        // (closed) bin. Goods at 0, 1, 4 → 1,1,0,1; bads at 2, 3 → 0,0,1,1.
        let h = score_histogram(&[0.0, 0.0, 1.0, 1.0, 0.0], &[0.0, 1.0, 2.0, 3.0, 4.0], 4).unwrap();
        assert_eq!(h.edges, [0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(h.goods, [1, 1, 0, 1]);
        assert_eq!(h.bads, [0, 0, 1, 1]);
        // One distinct score: the range widens to ±0.5 around it.
        let h = score_histogram(&[1.0, 0.0], &[0.3, 0.3], 2).unwrap();
        assert_eq!(h.edges, [-0.2, 0.3, 0.8]);
        assert_eq!((h.goods, h.bads), (vec![0, 1], vec![0, 1]));
        assert_eq!(score_histogram(&[1.0], &[f64::INFINITY], 2), None);
        assert_eq!(score_histogram(&[1.0], &[0.5], 0), None);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// Labelled scores on a grid of 101 values, so ties are common.
        fn sample() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
            prop::collection::vec((any::<bool>(), 0u32..=100), 1..80).prop_map(|rows| {
                rows.into_iter()
                    .map(|(bad, k)| (f64::from(u8::from(bad)), f64::from(k) / 100.0))
                    .unzip()
            })
        }

        /// (concordant − discordant) and the number of (positive, negative) pairs, by brute force.
        fn pairs(y: &[f64], p: &[f64]) -> (f64, f64) {
            let (mut diff, mut n) = (0.0, 0.0);
            for i in (0..y.len()).filter(|&i| y[i] == 1.0) {
                for j in (0..y.len()).filter(|&j| y[j] == 0.0) {
                    n += 1.0;
                    diff += (p[i] - p[j]).signum() * f64::from(u8::from(p[i] != p[j]));
                }
            }
            (diff, n)
        }

        proptest! {
            #[test]
            fn gini_is_twice_auc_minus_one((y, p) in sample()) {
                match (auc(&y, &p), gini(&y, &p)) {
                    (Some(a), Some(g)) => {
                        prop_assert!((g - (2.0 * a - 1.0)).abs() < 1e-12);
                        // …and Somers' D computed pair by pair.
                        let (diff, n) = pairs(&y, &p);
                        prop_assert!((g - diff / n).abs() < 1e-9, "{} vs {}", g, diff / n);
                    }
                    (None, None) => prop_assert!(y.iter().all(|&v| v == y[0])),
                    other => prop_assert!(false, "{:?}", other),
                }
            }

            #[test]
            fn ranking_metrics_ignore_monotone_transforms((y, p) in sample()) {
                for f in [|x: f64| x * x * x, f64::sqrt, |x: f64| x.exp_m1() / 1f64.exp_m1()] {
                    let q: Vec<f64> = p.iter().map(|&x| f(x).clamp(0.0, 1.0)).collect();
                    prop_assert_eq!(auc(&y, &p), auc(&y, &q));
                    prop_assert_eq!(ks(&y, &p), ks(&y, &q));
                    prop_assert_eq!(pr_auc(&y, &p), pr_auc(&y, &q));
                }
            }

            #[test]
            fn psi_of_a_sample_against_itself_is_zero(
                x in prop::collection::vec(-1e6f64..1e6, 1..100),
                other in prop::collection::vec(-1e6f64..1e6, 1..100),
                bins in 1usize..20,
            ) {
                prop_assert_eq!(psi(&x, &x, bins), Some(0.0));
                prop_assert!(psi(&x, &other, bins).unwrap() >= 0.0);
            }

            #[test]
            fn curves_agree_with_the_scalar_metrics((y, p) in sample()) {
                let (Some(roc), Some(ksc), Some(k)) =
                    (roc_curve(&y, &p), ks_curve(&y, &p), ks_with_cutoff(&y, &p))
                else {
                    return Ok(());
                };
                // Trapezoidal area under the ROC points is the rank AUC.
                let area: f64 = roc
                    .windows(2)
                    .map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0)
                    .sum();
                prop_assert!((area - auc(&y, &p).unwrap()).abs() < 1e-12);
                // The largest KS-curve gap is KS, and it occurs at the cut-off.
                let gap = |q: &KsPoint| (q.cum_good - q.cum_bad).abs();
                let max = ksc.iter().map(gap).fold(0.0, f64::max);
                prop_assert!((max - k.statistic).abs() < 1e-12);
                let at = ksc.iter().find(|q| q.threshold == k.cutoff).unwrap();
                prop_assert!((gap(at) - k.statistic).abs() < 1e-12);
            }

            #[test]
            fn deciles_partition_the_sample((y, p) in sample()) {
                let cal = calibration_by_decile(&y, &p).unwrap();
                prop_assert_eq!(cal.iter().map(|b| b.count).sum::<usize>(), y.len());
                let observed: f64 = cal.iter().map(|b| b.observed_rate * b.count as f64).sum();
                prop_assert!((observed - y.iter().sum::<f64>()).abs() < 1e-9);
                if let Some(lift) = lift_gains_table(&y, &p) {
                    let last = lift.last().unwrap();
                    prop_assert!((last.cum_bad_share - 1.0).abs() < 1e-12);
                    prop_assert!((last.cum_population_share - 1.0).abs() < 1e-12);
                    prop_assert!(lift.windows(2).all(|w| w[0].min_predicted > w[1].max_predicted));
                }
            }
        }
    }
}
