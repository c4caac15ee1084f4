use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Binary classification: a probability for the positive class and a label at a threshold.
    Binary,
    /// Time-series forecasting: point forecasts with prediction intervals.
    Forecast,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Forecast => "forecast",
        }
    }
}

/// A model family. The string forms (`as_str`) are the public names used by the CLI and API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Regularised (L1 / L2) logistic regression on the preprocessed features.
    Logistic,
    /// Credit scorecard: optimal WoE binning, logistic regression on the WoE values, and points
    /// scaled by base score, base odds and points-to-double-odds.
    Scorecard,
    /// Gradient-boosted decision trees on the log-odds.
    Gbdt,
    /// A LightGBM model trained elsewhere and imported from its text format.
    Lightgbm,
    /// An XGBoost model trained elsewhere and imported from its JSON format.
    Xgboost,
    /// A fitted time-series forecasting model (ARIMA, ETS, baselines) with its data window.
    Forecast,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown model kind `{0}` (known kinds: logistic, scorecard, gbdt, lightgbm, xgboost, forecast)"
)]
pub struct UnknownModelKind(pub String);

impl ModelKind {
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Logistic,
        ModelKind::Scorecard,
        ModelKind::Gbdt,
        ModelKind::Lightgbm,
        ModelKind::Xgboost,
        ModelKind::Forecast,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Logistic => "logistic",
            ModelKind::Scorecard => "scorecard",
            ModelKind::Gbdt => "gbdt",
            ModelKind::Lightgbm => "lightgbm",
            ModelKind::Xgboost => "xgboost",
            ModelKind::Forecast => "forecast",
        }
    }

    pub fn task(self) -> Task {
        match self {
            ModelKind::Logistic
            | ModelKind::Scorecard
            | ModelKind::Gbdt
            | ModelKind::Lightgbm
            | ModelKind::Xgboost => Task::Binary,
            ModelKind::Forecast => Task::Forecast,
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ModelKind {
    type Err = UnknownModelKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "logistic" | "logistic_regression" | "logreg" => Ok(ModelKind::Logistic),
            "scorecard" => Ok(ModelKind::Scorecard),
            "gbdt" | "gbm" | "gradient_boosting" => Ok(ModelKind::Gbdt),
            "lightgbm" => Ok(ModelKind::Lightgbm),
            "xgboost" => Ok(ModelKind::Xgboost),
            "forecast" => Ok(ModelKind::Forecast),
            _ => Err(UnknownModelKind(s.to_string())),
        }
    }
}

/// Raw, unvalidated training parameters (`key=value` pairs from the CLI or the API).
///
/// Each model family validates these into its own typed parameter struct and rejects unknown keys.
pub type Params = BTreeMap<String, String>;
