//! Adverse-action reason codes: which features pushed one applicant towards the worse outcome.
//!
//! Why they live next to the models: a lender that declines (or refers) an applicant must say
//! why, and the reasons must come from the same model that decided, computed the same way every
//! time. Each family ranks features by their contribution towards default *relative to a
//! documented reference*:
//!
//! * **scorecards** use *points below maximum*: for each feature, the most points any of its
//!   attributes (bins) can earn minus the points the applicant's attribute earned. The largest
//!   shortfalls come first; a feature already in its best bin has no shortfall and is never a
//!   reason. Contributions are in score points.
//! * **gradient-boosted trees and logistic regression** use their additive explanation
//!   ([`crate::FittedModel::explain`]) against the model's baseline (the training-average
//!   prediction for logistic, the cover-weighted expected tree output for trees): features with a
//!   positive log-odds contribution towards default come first. Contributions are in log-odds.
//!
//! Only adverse contributions (strictly positive) are reasons, at most
//! [`crate::policy::DecisionPolicy::max_reasons`] of them (4 by default, the usual adverse-action
//! limit). The positive class of the target is taken to be the adverse event (default, `bad`).
//!
//! A reason's `code` is the feature name (stable across retrainings of the same data); its `text`
//! comes from a [`ReasonTable`] given at training time (parameter `reason_texts`), or is derived
//! from the feature name (`credit_amount` → "Credit amount").

use std::collections::BTreeMap;

use crate::ModelError;

/// One reason of a decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    /// Stable machine code: the feature name.
    pub code: String,
    /// The raw input feature.
    pub feature: String,
    /// Human-readable text for notices.
    pub text: String,
    /// How much this feature moved the applicant towards default, `> 0`: score points below the
    /// feature's maximum for scorecards, log-odds for other families.
    pub contribution: f64,
}

/// Reason texts per feature; features without an entry get [`default_text`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReasonTable {
    texts: BTreeMap<String, String>,
}

/// Separates entries of the `reason_texts` parameter.
pub const ENTRY_SEPARATOR: char = '|';

impl ReasonTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the text of `feature`'s reason.
    pub fn insert(&mut self, feature: impl Into<String>, text: impl Into<String>) {
        self.texts.insert(feature.into(), text.into());
    }

    /// Parses the `reason_texts` parameter: `feature:text` entries separated by `|`, e.g.
    /// `credit_amount:Amount requested is high|age_in_years:Length of credit history`. The text
    /// is everything after the first `:` (trimmed, non-empty).
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let mut table = Self::new();
        for entry in s.split(ENTRY_SEPARATOR).map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let bad = || {
                ModelError::invalid_param(
                    "reason_texts",
                    entry,
                    "`feature:text` entries separated by `|`, each with a non-empty feature and text",
                )
            };
            let (feature, text) = entry.split_once(':').ok_or_else(bad)?;
            let (feature, text) = (feature.trim(), text.trim());
            if feature.is_empty() || text.is_empty() {
                return Err(bad());
            }
            if table.texts.contains_key(feature) {
                return Err(ModelError::invalid_param(
                    "reason_texts",
                    feature,
                    "each feature at most once",
                ));
            }
            table.insert(feature, text);
        }
        Ok(table)
    }

    /// The canonical parameter form ([`ReasonTable::parse`] reads it back): entries sorted by
    /// feature, empty when there are none.
    pub fn to_param(&self) -> String {
        self.texts
            .iter()
            .map(|(f, t)| format!("{f}:{t}"))
            .collect::<Vec<_>>()
            .join(&ENTRY_SEPARATOR.to_string())
    }

    /// Features with an explicit text.
    pub fn features(&self) -> impl Iterator<Item = &str> {
        self.texts.keys().map(String::as_str)
    }

    /// The text for `feature`: its entry, or [`default_text`].
    pub fn text(&self, feature: &str) -> String {
        self.texts
            .get(feature)
            .cloned()
            .unwrap_or_else(|| default_text(feature))
    }

    /// A reason for `feature` with `contribution`.
    pub fn reason(&self, feature: &str, contribution: f64) -> Reason {
        Reason {
            code: feature.to_string(),
            feature: feature.to_string(),
            text: self.text(feature),
            contribution,
        }
    }
}

/// A readable text from a feature name: separators (`_`, `.`, `-`) become spaces and the first
/// letter is capitalised (`credit_amount` → "Credit amount").
pub fn default_text(feature: &str) -> String {
    let words: Vec<&str> = feature
        .split(['_', '.', '-', ' '])
        .filter(|w| !w.is_empty())
        .collect();
    let joined = words.join(" ");
    let mut chars = joined.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => feature.to_string(),
    }
}

/// The adverse reasons among `(feature, contribution)` pairs: contributions `> 0`, largest first
/// (ties keep the input order), at most `max`.
pub fn rank_adverse<'a>(
    contributions: impl IntoIterator<Item = (&'a str, f64)>,
    table: &ReasonTable,
    max: usize,
) -> Vec<Reason> {
    let mut adverse: Vec<(&str, f64)> = contributions
        .into_iter()
        .filter(|(_, c)| *c > 0.0 && c.is_finite())
        .collect();
    adverse.sort_by(|a, b| b.1.total_cmp(&a.1));
    adverse
        .into_iter()
        .take(max)
        .map(|(f, c)| table.reason(f, c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_texts() {
        assert_eq!(default_text("credit_amount"), "Credit amount");
        assert_eq!(default_text("age_in_years"), "Age in years");
        assert_eq!(default_text("int_rate"), "Int rate");
        assert_eq!(default_text("x"), "X");
        assert_eq!(default_text("__"), "__");
    }

    #[test]
    fn table_parse_and_canonical_form() {
        let t = ReasonTable::parse(" b_feature: Text: with colon | a:Alpha ||").unwrap();
        assert_eq!(t.text("b_feature"), "Text: with colon");
        assert_eq!(t.text("other_thing"), "Other thing");
        assert_eq!(t.to_param(), "a:Alpha|b_feature:Text: with colon");
        assert_eq!(ReasonTable::parse(&t.to_param()).unwrap(), t);
        assert_eq!(ReasonTable::parse("").unwrap(), ReasonTable::new());
        for bad in ["a", "a:", ":text", "a:x|a:y"] {
            let e = ReasonTable::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_param", "{bad}");
        }
    }

    #[test]
    fn ranking_keeps_adverse_only_largest_first() {
        let t = ReasonTable::new();
        let r = rank_adverse(
            [
                ("a", 0.1),
                ("b", -2.0),
                ("c", 0.5),
                ("d", 0.0),
                ("e", 0.1),
                ("f", 0.3),
                ("g", f64::NAN),
            ],
            &t,
            3,
        );
        let got: Vec<_> = r
            .iter()
            .map(|r| (r.feature.as_str(), r.contribution))
            .collect();
        assert_eq!(got, [("c", 0.5), ("f", 0.3), ("a", 0.1)]);
        assert_eq!(r[0].code, "c");
        assert_eq!(r[0].text, "C");
        assert!(rank_adverse([("a", -1.0)], &t, 4).is_empty());
    }
}
