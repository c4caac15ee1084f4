//! Evaluation metrics for binary classifiers.
//!
//! Credit-risk practice reads a scorecard through a handful of figures: ranking power (AUC, its
//! rescaling Gini, and the Kolmogorov–Smirnov separation), calibration (log loss, Brier score) and
//! the confusion counts at the decision threshold. They are computed here, once, so the training
//! job, the CLI and reports agree on definitions.
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
/// negatives, `max_t |TPR(t) - FPR(t)|`, with tied scores moving together.
pub fn ks(y: &[f64], p: &[f64]) -> Option<f64> {
    if !valid(y, p) {
        return None;
    }
    let (n_pos, n_neg) = class_counts(y);
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let idx = order(p);
    let (mut tp, mut fp, mut best) = (0usize, 0usize, 0.0f64);
    let mut end = idx.len();
    while end > 0 {
        let mut start = end - 1;
        while start > 0 && p[idx[start - 1]] == p[idx[end - 1]] {
            start -= 1;
        }
        for &i in &idx[start..end] {
            if y[i] == 1.0 {
                tp += 1;
            } else {
                fp += 1;
            }
        }
        best = best.max((tp as f64 / n_pos as f64 - fp as f64 / n_neg as f64).abs());
        end = start;
    }
    Some(best)
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
                "precision",
                "recall"
            ]
        );
        assert_eq!(m["auc"], 0.75);
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
}
