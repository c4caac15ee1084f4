//! The credit model families and what they share: logistic regression ([`logistic`]), the
//! scorecard on WoE binning ([`scorecard`], [`binning`]), monotone gradient-boosted trees
//! ([`gbdt`]), random forests ([`forest`]), calibrated linear SVMs ([`svm`]) and LightGBM /
//! XGBoost models trained elsewhere ([`imported`]); the preprocessing
//! [`pipeline`] stored inside every model; binary [`metrics`]; and the credit [`report`].
//!
//! Each family implements the open contract of [`aurum_contract`] (a [`ModelFamily`] whose
//! fitted models are [`FittedModel`]s with a [`BinaryClassifier`] view) and is registered by name
//! in `aurum-families`. They live in one crate because they share the pipeline, the binning and
//! the report, not because the contract needs them together: a new family is a crate of its own.
//!
//! Credit decisions sit on the contract: [`BinaryClassifier::decide`] turns a row into a PD, a
//! score (600 points at 50:1 good:bad odds, 20 points to double the odds, unless the model was
//! trained with other scaling), an approve / refer / decline decision under the policy stored
//! with the model, and adverse-action reason codes. The credit families store their own policy,
//! scaling and reason texts.
//!
//! What this crate deliberately does not know: HTTP, gRPC, wire formats, storage, async runtimes,
//! logging. Fitting is synchronous CPU work that reports progress and stops on a cancel token;
//! the caller decides which thread runs it.

pub mod binning;
pub mod fairness;
pub mod forest;
pub mod gbdt;
pub mod imported;
pub mod logistic;
pub mod metrics;
pub mod pipeline;
pub mod report;
pub mod scorecard;
pub mod svm;

pub use aurum_contract::{
    Assessment, BinaryClassifier, FitContext, FittedModel, ModelError, ModelFamily, TrainingData,
    policy, reasons,
};

/// The credit families, for tests and tools that need them without the full registry.
pub fn families() -> aurum_contract::Families {
    aurum_contract::Families::new()
        .with(logistic::LogisticFamily)
        .with(scorecard::ScorecardFamily)
        .with(gbdt::GbdtFamily)
        .with(imported::LIGHTGBM)
        .with(imported::XGBOOST)
        .with(forest::RandomForestFamily)
        .with(svm::LinearSvmFamily)
}

/// Fits the credit family `name` on a binary target and keeps the binary view (benchmarks and
/// tools that use a credit model by itself; the service goes through the family registry).
pub fn fit_binary(
    name: &str,
    features: &aurum_core::Table,
    target: &aurum_core::BinaryTarget,
    params: &aurum_core::Params,
    ctx: &FitContext<'_>,
) -> Result<Box<dyn BinaryClassifier>, ModelError> {
    let target = aurum_core::Target::Binary(target.clone());
    let model = families()
        .get(name)?
        .fit(&TrainingData::new(features, &target), params, ctx)?;
    model.into_binary().ok_or_else(|| ModelError::WrongTask {
        family: name.to_string(),
        task: aurum_core::Task::Binary,
        operation: "binary scoring",
    })
}
