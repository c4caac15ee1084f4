//! Model families behind one contract (fit, predict, explain, save, load), the preprocessing
//! pipeline they share, the versioned artifact format and evaluation metrics.
//!
//! Why one contract: the service layer trains, caches, serves and explains models without knowing
//! which family it holds. Each family ([`logistic`], [`scorecard`], [`gbdt`]) implements [`ModelFamily`] (validate
//! parameters, fit, load) and produces a [`FittedModel`] (predict, explain, serialise);
//! [`family`] maps a [`ModelKind`] to its implementation. Adding a family means one new module and
//! one new arm in [`family`].
//!
//! Why parameters are validated up front ([`ModelFamily::validate_params`]): a training job should
//! fail in milliseconds on `lamda=0.1`, not after ingesting a file, and the canonical typed form
//! it returns (every key, defaults filled in) is what gets recorded in the artifact manifest.
//!
//! Credit decisions sit on the same contract: [`FittedModel::decide`] turns a row into a PD, a
//! score ([`policy`]: 600 points at 50:1 good:bad odds, 20 points to double the odds, unless the
//! model was trained with other scaling), an approve / refer / decline decision under the policy
//! stored with the model, and adverse-action reason codes ([`reasons`]). The credit families
//! ([`scorecard`] on [`binning`], [`gbdt`]) store their own policy, scaling and reason texts;
//! every other family gets defaults from the trait, so it needs no code to take part.
//!
//! What this crate deliberately does not know: HTTP, gRPC, wire formats, storage, async runtimes,
//! logging. It turns tables into models and models into bytes ([`artifact`]); where the bytes go
//! is the registry's business. Fitting is synchronous CPU work that reports [`Progress`] and stops
//! on a [`CancelToken`]; the caller decides which thread runs it.

mod error;

pub mod artifact;
pub mod binning;
pub mod gbdt;
pub mod imported;
pub mod logistic;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod reasons;
pub mod report;
pub mod scorecard;

use aurum_core::{
    BinaryTarget, CancelToken, Explanation, ModelKind, Params, Prediction, Progress, Schema, Table,
    Value,
};

pub use artifact::{Manifest, ManifestInput, decode_artifact, encode_artifact};
pub use error::ModelError;

use crate::policy::{CreditDecision, Decision, DecisionPolicy, ScoreScaling};
use crate::reasons::{Reason, ReasonTable};

/// What a fit needs besides data and parameters.
pub struct FitContext<'a> {
    /// Receives `(stage, fraction)` reports while fitting.
    pub progress: &'a dyn Progress,
    /// Checked at every iteration; when set the fit returns [`ModelError::Cancelled`].
    pub cancel: &'a CancelToken,
    /// Seed for any randomness a family uses, so fits are reproducible.
    pub seed: u64,
}

impl FitContext<'_> {
    pub(crate) fn check_cancelled(&self) -> Result<(), ModelError> {
        if self.cancel.is_cancelled() {
            Err(ModelError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// A model family: validates its parameters, fits models, and loads them back from payloads.
pub trait ModelFamily: Send + Sync {
    fn kind(&self) -> ModelKind;

    /// The parameter names the family accepts.
    fn param_names(&self) -> &'static [&'static str];

    /// Validates raw `key=value` parameters and returns their canonical typed form (every key,
    /// defaults filled in). An unknown key is [`ModelError::UnknownParam`] listing the allowed
    /// keys; a bad value is [`ModelError::InvalidParam`] naming key, value and expectation.
    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError>;

    /// Fits a model on `features` (the input columns only, target removed) and `target`.
    fn fit(
        &self,
        features: &Table,
        target: &BinaryTarget,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError>;

    /// Rebuilds a model from the bytes its [`FittedModel::payload`] produced. Never panics on
    /// arbitrary bytes; anything unusable is [`ModelError::InvalidArtifact`].
    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError>;
}

/// A fitted binary classifier, ready to serve.
///
/// Rows are `&[Value]` aligned to [`FittedModel::input_schema`]; how a category unseen in training
/// is handled is documented in [`pipeline`] (it never fails).
pub trait FittedModel: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> ModelKind;

    /// The raw feature columns the model consumes, in row order.
    fn input_schema(&self) -> &Schema;

    /// Probability at or above which the positive label is predicted.
    fn threshold(&self) -> f64;

    /// `(positive, negative)` class labels.
    fn labels(&self) -> (&str, &str);

    /// Scores a batch. An invalid row fails the batch with an error naming the row and feature.
    /// The default scores row by row through [`FittedModel::predict_proba_one`] and labels at
    /// [`FittedModel::threshold`]; families with a faster batch path override it.
    fn predict(&self, rows: &[Vec<Value>]) -> Result<Vec<Prediction>, ModelError> {
        let threshold = self.threshold();
        let (positive_label, negative_label) = self.labels();
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                let probability = self.predict_proba_one(row).map_err(|e| e.at_row(i))?;
                let positive = probability >= threshold;
                let label = if positive {
                    positive_label
                } else {
                    negative_label
                };
                Ok(Prediction {
                    probability,
                    label: label.to_string(),
                    positive,
                })
            })
            .collect()
    }

    /// Probability of the positive class for one row.
    fn predict_proba_one(&self, row: &[Value]) -> Result<f64, ModelError>;

    /// Probabilities for every row of a table holding (at least) the input columns by name; the
    /// efficient path for evaluation and batch scoring.
    fn predict_proba_table(&self, table: &Table) -> Result<Vec<f64>, ModelError>;

    /// Additive per-feature explanation of one row.
    fn explain(&self, row: &[Value]) -> Result<Explanation, ModelError>;

    /// Canonical typed parameters, as [`ModelFamily::validate_params`] returned them.
    fn params(&self) -> serde_json::Value;

    /// A human-oriented description (coefficients, convergence, dropped columns). Informative
    /// only: not a stable format.
    fn summary(&self) -> serde_json::Value;

    /// The model's own serialisation, read back by [`ModelFamily::load_payload`].
    fn payload(&self) -> Result<Vec<u8>, ModelError>;

    /// Training columns the model does not use, with the family's reason (`unsupported_type`,
    /// `all_missing`, `low_iv`, ...), read from the `dropped_columns` list every family puts in
    /// its [`FittedModel::summary`].
    fn dropped_columns(&self) -> Vec<(String, String)> {
        let summary = self.summary();
        let Some(list) = summary["dropped_columns"].as_array() else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|d| {
                let name = d["name"].as_str()?;
                let reason = d["reason"].as_str().unwrap_or("not used by the model");
                Some((name.to_string(), reason.to_string()))
            })
            .collect()
    }

    /// Family-specific tables for reports: binning tables and points for scorecards, gain
    /// importance for trees. Informative only, not a stable format; `{}` when the family has
    /// nothing to add to [`FittedModel::summary`].
    fn details(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    /// The credit score of one row, in points (see [`policy`] for the scaling). Scorecards sum
    /// their attribute points; by default the PD is mapped through the default
    /// [`ScoreScaling`] (600 points at 50:1 good:bad odds, 20 points to double the odds).
    /// `None` for a family without a meaningful score.
    fn score_points(&self, row: &[Value]) -> Result<Option<f64>, ModelError> {
        let pd = self.predict_proba_one(row)?;
        Ok(Some(ScoreScaling::default().score_from_pd(pd)))
    }

    /// The decision policy stored with the model; by default decline at `PD >= threshold`, no
    /// refer band, 4 reasons.
    fn policy(&self) -> DecisionPolicy {
        DecisionPolicy::at_threshold(self.threshold())
    }

    /// Up to `max` adverse reasons for one row, most adverse first (see [`reasons`]). By default
    /// the positive log-odds contributions of [`FittedModel::explain`], with texts derived from
    /// the feature names.
    fn reasons(&self, row: &[Value], max: usize) -> Result<Vec<Reason>, ModelError> {
        let e = self.explain(row)?;
        Ok(reasons::rank_adverse(
            e.contributions
                .iter()
                .map(|c| (c.feature.as_str(), c.contribution)),
            &ReasonTable::new(),
            max,
        ))
    }

    /// Everything served for one row: PD, score, decision under [`FittedModel::policy`], the
    /// adverse reasons for refer and decline, and (when `explain`) the explanation. This is the
    /// serving path; it must agree exactly with [`FittedModel::decide`] and
    /// [`FittedModel::explain`].
    ///
    /// The default composes those two. A family whose reasons come from the same per-feature
    /// attribution as its explanation overrides it to encode the row once, walk the model once
    /// and attribute at most once (trees: one TreeSHAP pass shared by reasons and explanation).
    fn assess(&self, row: &[Value], explain: bool) -> Result<Assessment, ModelError> {
        let decision = self.decide(row)?;
        let explanation = if explain {
            Some(self.explain(row)?)
        } else {
            None
        };
        Ok(Assessment {
            decision,
            explanation,
        })
    }

    /// PD, score, decision under [`FittedModel::policy`], and (for refer and decline) the
    /// adverse reasons.
    fn decide(&self, row: &[Value]) -> Result<CreditDecision, ModelError> {
        let pd = self.predict_proba_one(row)?;
        let score = self.score_points(row)?;
        let policy = self.policy();
        let decision = policy.decide(pd, score);
        let reasons = match decision {
            Decision::Approve => Vec::new(),
            Decision::Refer | Decision::Decline => self.reasons(row, policy.max_reasons)?,
        };
        Ok(CreditDecision {
            pd,
            score,
            decision,
            reasons,
        })
    }
}

/// What [`FittedModel::assess`] gives for one row.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// PD, score, decision and reasons, as [`FittedModel::decide`] gives them.
    pub decision: CreditDecision,
    /// The explanation, when it was asked for, as [`FittedModel::explain`] gives it.
    pub explanation: Option<Explanation>,
}

/// The implementation of a model kind.
pub fn family(kind: ModelKind) -> &'static dyn ModelFamily {
    match kind {
        ModelKind::Logistic => &logistic::LogisticFamily,
        ModelKind::Scorecard => &scorecard::ScorecardFamily,
        ModelKind::Gbdt => &gbdt::GbdtFamily,
        ModelKind::Lightgbm => &imported::LIGHTGBM,
        ModelKind::Xgboost => &imported::XGBOOST,
        ModelKind::Forecast => &imported::NOT_TABULAR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_family() {
        for kind in ModelKind::ALL {
            assert_eq!(family(kind).kind(), kind);
        }
    }
}
