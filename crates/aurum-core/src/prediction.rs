use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Value;

/// Named evaluation figures (`auc`, `log_loss`, `accuracy`, ...).
pub type Metrics = BTreeMap<String, f64>;

/// The answer for one record of a binary model.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Probability of the positive class, in `[0, 1]`.
    pub probability: f64,
    /// The predicted class label (positive label when `probability >= threshold`).
    pub label: String,
    /// Whether the predicted label is the positive class.
    pub positive: bool,
}

/// One feature's share of a prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Input feature name (a raw input column, not an encoded column).
    pub feature: String,
    /// The value the record had (after nothing: as the caller sent it).
    pub value: Value,
    /// Additive contribution in the model's explanation space (log-odds for logistic models).
    pub contribution: f64,
}

/// An additive explanation: `base_value + Σ contributions = raw model output` (in `space`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The explanation space, e.g. `"log_odds"`.
    pub space: String,
    /// The model output for the reference record.
    pub base_value: f64,
    /// One entry per input feature, sorted by decreasing absolute contribution.
    pub contributions: Vec<Contribution>,
}

/// A binary target encoded as 0/1, with the labels it came from.
///
/// Built by `aurum-data` (which validates the column and names the offending line when it is not
/// binary) and consumed by model families at fit time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BinaryTarget {
    /// Name of the target column.
    pub column: String,
    /// 1.0 for the positive class, 0.0 for the negative class; one per row.
    pub y: Vec<f64>,
    /// The label mapped to 1 (the event the model predicts, e.g. `bad` / default).
    pub positive_label: String,
    /// The label mapped to 0.
    pub negative_label: String,
}

impl BinaryTarget {
    pub fn len(&self) -> usize {
        self.y.len()
    }
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
    /// Rows at `indices`, in order.
    pub fn take(&self, indices: &[usize]) -> BinaryTarget {
        BinaryTarget {
            y: indices.iter().map(|&i| self.y[i]).collect(),
            ..self.clone()
        }
    }
    /// The label for a class indicator.
    pub fn label(&self, positive: bool) -> &str {
        if positive {
            &self.positive_label
        } else {
            &self.negative_label
        }
    }
}

/// A multiclass target: one class index per row into `classes` (sorted labels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassTarget {
    /// Name of the target column.
    pub column: String,
    /// The class labels, sorted; `y[i]` indexes into it.
    pub classes: Vec<String>,
    pub y: Vec<u32>,
}

/// A numeric target (regression, forecasting): one finite value per row, or NaN where the
/// cell was missing (families that cannot use a missing target refuse it by name).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NumericTarget {
    /// Name of the target column.
    pub column: String,
    pub y: Vec<f64>,
}

/// What a fit learns from, by task.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Binary(BinaryTarget),
    Classes(ClassTarget),
    Numeric(NumericTarget),
    /// Unsupervised tasks (anomaly scoring) fit on the features alone.
    None,
}

impl Target {
    /// The target column, if there is one.
    pub fn column(&self) -> Option<&str> {
        match self {
            Target::Binary(t) => Some(&t.column),
            Target::Classes(t) => Some(&t.column),
            Target::Numeric(t) => Some(&t.column),
            Target::None => None,
        }
    }

    /// Rows at `indices`, in order.
    pub fn take(&self, indices: &[usize]) -> Target {
        match self {
            Target::Binary(t) => Target::Binary(t.take(indices)),
            Target::Classes(t) => Target::Classes(ClassTarget {
                y: indices.iter().map(|&i| t.y[i]).collect(),
                ..t.clone()
            }),
            Target::Numeric(t) => Target::Numeric(NumericTarget {
                y: indices.iter().map(|&i| t.y[i]).collect(),
                column: t.column.clone(),
            }),
            Target::None => Target::None,
        }
    }
}
