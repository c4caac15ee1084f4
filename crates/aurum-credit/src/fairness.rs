//! Fairness of credit decisions across the groups of a protected attribute.
//!
//! For each group: its size, its **approval rate** (share of `approve` decisions, the
//! favourable outcome), its **adverse impact ratio** (its approval rate over the highest
//! group's, the "four-fifths rule" flags a ratio below 0.8), the **true and false positive
//! rates** of the model's positive label (the event it predicts, e.g. default) against the
//! realised target, the **AUC** within the group, and **calibration in the large** (mean
//! predicted probability against the observed rate). Differences between the highest and the
//! lowest group follow. The attribute need not be a model feature: the caller supplies it per
//! row.

use std::collections::BTreeMap;

use crate::metrics::auc;

/// Four-fifths rule: an adverse impact ratio below this flags the group.
pub const FOUR_FIFTHS: f64 = 0.8;

/// One scored row: its group, realised outcome, probability, label and decision.
#[derive(Clone, Debug)]
pub struct FairnessRow<'a> {
    pub group: &'a str,
    /// 1.0 when the realised outcome is the model's positive label.
    pub y: f64,
    pub probability: f64,
    /// Whether the model labelled it positive (at its threshold).
    pub predicted_positive: bool,
    pub approved: bool,
}

/// The figures of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupFairness {
    pub group: String,
    pub n: usize,
    pub approval_rate: f64,
    /// Approval rate over the most approved group's; `NaN` when no group is approved.
    pub adverse_impact_ratio: f64,
    pub passes_four_fifths: bool,
    pub true_positive_rate: Option<f64>,
    pub false_positive_rate: Option<f64>,
    pub auc: Option<f64>,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// Every group, the most approved one, and the spreads.
#[derive(Clone, Debug, PartialEq)]
pub struct FairnessReport {
    pub groups: Vec<GroupFairness>,
    /// The group with the highest approval rate (the reference of the ratios).
    pub reference_group: String,
    pub min_adverse_impact_ratio: f64,
    pub approval_rate_difference: f64,
    pub true_positive_rate_difference: Option<f64>,
    pub false_positive_rate_difference: Option<f64>,
}

/// Groups `rows` by their `group` (sorted by name) and measures each; `None` without rows.
pub fn fairness(rows: &[FairnessRow<'_>]) -> Option<FairnessReport> {
    let mut by_group: BTreeMap<&str, Vec<&FairnessRow<'_>>> = BTreeMap::new();
    for r in rows {
        by_group.entry(r.group).or_default().push(r);
    }
    if by_group.is_empty() {
        return None;
    }
    let mut groups: Vec<GroupFairness> = by_group
        .into_iter()
        .map(|(g, rs)| {
            let n = rs.len();
            let rate = |f: &dyn Fn(&FairnessRow<'_>) -> bool,
                        of: &dyn Fn(&FairnessRow<'_>) -> bool| {
                let denom = rs.iter().filter(|r| of(r)).count();
                (denom > 0)
                    .then(|| rs.iter().filter(|r| of(r) && f(r)).count() as f64 / denom as f64)
            };
            let y: Vec<f64> = rs.iter().map(|r| r.y).collect();
            let p: Vec<f64> = rs.iter().map(|r| r.probability).collect();
            GroupFairness {
                group: g.to_string(),
                n,
                approval_rate: rs.iter().filter(|r| r.approved).count() as f64 / n as f64,
                adverse_impact_ratio: f64::NAN,
                passes_four_fifths: true,
                true_positive_rate: rate(&|r| r.predicted_positive, &|r| r.y == 1.0),
                false_positive_rate: rate(&|r| r.predicted_positive, &|r| r.y == 0.0),
                auc: auc(&y, &p),
                mean_predicted: p.iter().sum::<f64>() / n as f64,
                observed_rate: y.iter().sum::<f64>() / n as f64,
            }
        })
        .collect();
    let best = groups
        .iter()
        .max_by(|a, b| a.approval_rate.total_cmp(&b.approval_rate))?
        .clone();
    for g in &mut groups {
        if best.approval_rate > 0.0 {
            g.adverse_impact_ratio = g.approval_rate / best.approval_rate;
            g.passes_four_fifths = g.adverse_impact_ratio >= FOUR_FIFTHS;
        }
    }
    let spread = |f: &dyn Fn(&GroupFairness) -> Option<f64>| {
        let v: Vec<f64> = groups.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| {
            v.iter().copied().fold(f64::MIN, f64::max) - v.iter().copied().fold(f64::MAX, f64::min)
        })
    };
    Some(FairnessReport {
        reference_group: best.group.clone(),
        min_adverse_impact_ratio: groups
            .iter()
            .map(|g| g.adverse_impact_ratio)
            .fold(f64::INFINITY, f64::min),
        approval_rate_difference: spread(&|g| Some(g.approval_rate)).unwrap_or(0.0),
        true_positive_rate_difference: spread(&|g| g.true_positive_rate),
        false_positive_rate_difference: spread(&|g| g.false_positive_rate),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(group: &str, y: f64, p: f64, approved: bool) -> FairnessRow<'_> {
        FairnessRow {
            group,
            y,
            probability: p,
            predicted_positive: p >= 0.5,
            approved,
        }
    }

    #[test]
    fn ratios_by_hand() {
        // a: 3 of 4 approved; b: 1 of 4 approved → AIR(b) = 0.25 / 0.75 = 1/3.
        let rows = vec![
            row("a", 0.0, 0.1, true),
            row("a", 0.0, 0.2, true),
            row("a", 1.0, 0.3, true),
            row("a", 1.0, 0.9, false),
            row("b", 0.0, 0.6, false),
            row("b", 1.0, 0.7, false),
            row("b", 1.0, 0.8, false),
            row("b", 0.0, 0.1, true),
        ];
        let r = fairness(&rows).unwrap();
        assert_eq!(r.reference_group, "a");
        let b = &r.groups[1];
        assert!((b.adverse_impact_ratio - 1.0 / 3.0).abs() < 1e-12);
        assert!(!b.passes_four_fifths);
        assert!(r.groups[0].passes_four_fifths);
        assert!((r.min_adverse_impact_ratio - 1.0 / 3.0).abs() < 1e-12);
        // a: positives {0.3, 0.9} → predicted positive 1 of 2; b: {0.7, 0.8} → 2 of 2.
        assert_eq!(r.groups[0].true_positive_rate, Some(0.5));
        assert_eq!(r.groups[1].true_positive_rate, Some(1.0));
        assert_eq!(r.true_positive_rate_difference, Some(0.5));
        assert_eq!(r.groups[1].false_positive_rate, Some(0.5));
        assert!((r.approval_rate_difference - 0.5).abs() < 1e-12);
        assert_eq!(r.groups[0].auc, Some(1.0));
        assert!(fairness(&[]).is_none());
    }
}
