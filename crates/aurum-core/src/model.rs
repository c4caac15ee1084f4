use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What a model predicts. Every model family declares one task; the task decides which
/// target a fit takes, which outputs serving gives and how a held-out set is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Binary classification: a probability for the positive class and a label at a threshold
    /// (credit default, fraud).
    Binary,
    /// Multiclass classification: one probability per class (a rating grade A–G).
    Multiclass,
    /// Regression: one number per row (loss given default, an amount).
    Regression,
    /// Time-series forecasting: point forecasts with prediction intervals.
    Forecast,
    /// Anomaly scoring without labels: a score where higher is more unusual.
    Anomaly,
    /// Ranking and recommendation: items ordered for a user.
    Ranking,
    /// Classification of an entity's sequence of events.
    SequenceClassification,
}

impl Task {
    pub const ALL: [Task; 7] = [
        Task::Binary,
        Task::Multiclass,
        Task::Regression,
        Task::Forecast,
        Task::Anomaly,
        Task::Ranking,
        Task::SequenceClassification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
            Task::Regression => "regression",
            Task::Forecast => "forecast",
            Task::Anomaly => "anomaly",
            Task::Ranking => "ranking",
            Task::SequenceClassification => "sequence_classification",
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of a model family (`logistic`, `gbdt`, `forecast`, …): the key of the family
/// registry, stored on every version and training job.
///
/// The set of families is open: this type checks only the spelling (a lowercase ASCII letter,
/// then lowercase letters, digits or `_`, at most 40 characters). Whether a family of that name
/// exists is the family registry's answer, so a stored name whose family is not compiled in reads
/// back fine and fails only when the model is loaded, with a message naming the known families.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FamilyName(Arc<str>);

/// A family name that is not spelt as one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "`{0}` is not a model family name (a lowercase letter, then lowercase letters, digits or `_`, at most 40 characters)"
)]
pub struct InvalidFamilyName(pub String);

impl FamilyName {
    /// Checks the spelling of `name`.
    pub fn new(name: &str) -> Result<Self, InvalidFamilyName> {
        let ok = !name.is_empty()
            && name.len() <= 40
            && name.as_bytes()[0].is_ascii_lowercase()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(Arc::from(name)))
        } else {
            Err(InvalidFamilyName(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for FamilyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for FamilyName {
    type Err = InvalidFamilyName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for FamilyName {
    type Error = InvalidFamilyName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<FamilyName> for String {
    fn from(f: FamilyName) -> String {
        f.0.to_string()
    }
}

impl PartialEq<str> for FamilyName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for FamilyName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

/// Raw, unvalidated training parameters (`key=value` pairs from the CLI or the API).
///
/// Each model family validates these into its own typed parameter struct and rejects unknown keys.
pub type Params = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_names_are_checked_for_spelling_only() {
        assert_eq!(FamilyName::new("gbdt").unwrap().as_str(), "gbdt");
        assert!(FamilyName::new("isolation_forest2").is_ok());
        for bad in ["", "GBDT", "1x", "a-b", "a b", &"x".repeat(41)] {
            assert!(FamilyName::new(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&FamilyName::new("ets").unwrap()).unwrap();
        assert_eq!(json, "\"ets\"");
        assert!(serde_json::from_str::<FamilyName>("\"../x\"").is_err());
    }
}
