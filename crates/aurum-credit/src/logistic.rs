//! Regularised logistic regression, the workhorse of credit scoring.
//!
//! Why it is the first family: its coefficients are auditable, its probabilities are reasonably
//! calibrated out of the box, and its explanations are exact (the log-odds are a sum of
//! per-feature terms), which is what model-risk reviewers ask for.
//!
//! # Objective
//!
//! On the encoded features of the [`Pipeline`] (standardised numerics, one-hot categories) the
//! fit minimises
//!
//! ```text
//! (1 / Σ s_i) · Σ s_i · [log(1 + e^{η_i}) − y_i η_i]  +  λ · R(β),    η_i = β_0 + x_i · β
//! ```
//!
//! with `R(β) = ½‖β‖²` for `penalty=l2`, `‖β‖₁` for `penalty=l1` and `0` for `penalty=none`.
//! The intercept `β_0` is never penalised. The loss is an *average*, so `lambda` does not need
//! rescaling with the number of rows, and because numeric features are standardised it weighs
//! every numeric feature alike. `s_i` is 1, or `n / (2 · n_class)` with `class_weight=balanced`.
//!
//! # Solver
//!
//! A proximal Newton method (the `newGLMNET` scheme of Yuan, Ho and Lin, 2012, also used by
//! liblinear and glmnet): each outer iteration builds the quadratic model of the loss at the
//! current point, minimises quadratic + penalty by cyclic coordinate descent (closed-form
//! coordinate updates: soft-thresholding for L1, a shrunk Newton step for L2), then takes the
//! largest step `1, ½, ¼, …` satisfying an Armijo condition on the true objective. It is exact
//! for both penalties, converges quadratically near the optimum and needs no step-size tuning.
//! It stops when the minimum-norm subgradient is below `tol` in every coordinate (intercept
//! included), i.e. at a certified optimum, or after `max_iter` outer iterations (recorded as
//! `converged: false` in the model summary). Progress is reported and the cancel token checked at
//! every outer iteration and every coordinate-descent sweep.

use aurum_core::{
    BinaryTarget, Contribution, Explanation, Params, Prediction, Schema, Table, Value,
};
use serde::{Deserialize, Serialize};

use crate::pipeline::{Pipeline, PipelineOptions, StoredPipeline};
use crate::policy::{CreditDecision, Decision, ScoreScaling};
use crate::reasons::{ReasonTable, rank_adverse};
use crate::{Assessment, FitContext, FittedModel, ModelError, ModelFamily};
use aurum_contract::{
    BinaryClassifier, FamilySpec, TableScores, Task, TrainingData, default_points,
};

/// Parameter names, sorted.
pub const PARAM_NAMES: &[&str] = &[
    "class_weight",
    "date_parts",
    "lambda",
    "max_iter",
    "min_frequency",
    "penalty",
    "threshold",
    "tol",
];

/// Default regularisation strength (L2 on standardised features, average loss).
///
/// Chosen on German credit (700 training rows, 61 encoded columns): over ten stratified 70/30
/// splits the mean held-out AUC is 0.789 at 0.01, 0.788 at 0.03, 0.783 at 0.001 and 0.778 at
/// 1e-4, with the lowest log loss at 0.01–0.03. Because the loss is averaged, the same λ shrinks
/// equally at any row count; very large datasets may prefer a smaller one.
pub const DEFAULT_LAMBDA: f64 = 0.01;

/// The regularisation term `R(β)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Penalty {
    /// `½‖β‖²` (ridge).
    L2,
    /// `‖β‖₁` (lasso): drives weak coefficients to exactly zero.
    L1,
    /// No penalty: the maximum-likelihood fit.
    None,
}

impl Penalty {
    pub fn as_str(self) -> &'static str {
        match self {
            Penalty::L2 => "l2",
            Penalty::L1 => "l1",
            Penalty::None => "none",
        }
    }
}

/// Per-row weights of the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassWeight {
    /// Every row weighs 1.
    None,
    /// Each class weighs half of the total, whatever its frequency.
    Balanced,
}

impl ClassWeight {
    pub fn as_str(self) -> &'static str {
        match self {
            ClassWeight::None => "none",
            ClassWeight::Balanced => "balanced",
        }
    }
}

/// Typed, validated parameters of a logistic regression.
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticParams {
    pub penalty: Penalty,
    /// Regularisation strength `λ ≥ 0` (0 when `penalty` is `None`).
    pub lambda: f64,
    /// Maximum outer (Newton) iterations, at least 1.
    pub max_iter: u32,
    /// Convergence tolerance on the largest subgradient component, `> 0`.
    pub tol: f64,
    /// Decision threshold in `[0, 1]` on the positive-class probability.
    pub threshold: f64,
    pub class_weight: ClassWeight,
    /// Pipeline: categories rarer than this fold into `__other__` (at least 1).
    pub min_frequency: usize,
    /// Pipeline: date features also give their year and month (default off).
    pub date_parts: bool,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self {
            penalty: Penalty::L2,
            lambda: DEFAULT_LAMBDA,
            max_iter: 1000,
            tol: 1e-6,
            threshold: 0.5,
            class_weight: ClassWeight::None,
            min_frequency: 1,
            date_parts: false,
        }
    }
}

const MAX_ITER_LIMIT: u32 = 1_000_000;

impl LogisticParams {
    /// Validates raw `key=value` parameters; missing keys take their defaults.
    pub fn from_params(params: &Params) -> Result<Self, ModelError> {
        if let Some(name) = params.keys().find(|k| !PARAM_NAMES.contains(&k.as_str())) {
            return Err(ModelError::UnknownParam {
                model: "logistic",
                name: name.clone(),
                allowed: PARAM_NAMES.to_vec(),
            });
        }
        let mut p = Self::default();
        let get = |k: &str| params.get(k).map(|v| v.trim());
        if let Some(v) = get("penalty") {
            p.penalty = match v.to_ascii_lowercase().as_str() {
                "l2" => Penalty::L2,
                "l1" => Penalty::L1,
                "none" => Penalty::None,
                _ => {
                    return Err(ModelError::invalid_param(
                        "penalty",
                        v,
                        "one of l2, l1, none",
                    ));
                }
            };
        }
        if let Some(v) = get("class_weight") {
            p.class_weight = match v.to_ascii_lowercase().as_str() {
                "none" => ClassWeight::None,
                "balanced" => ClassWeight::Balanced,
                _ => {
                    return Err(ModelError::invalid_param(
                        "class_weight",
                        v,
                        "one of none, balanced",
                    ));
                }
            };
        }
        let float = |k: &str, v: &str, ok: fn(f64) -> bool, expected: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && ok(*x))
                .ok_or_else(|| ModelError::invalid_param(k, v, expected))
        };
        if let Some(v) = get("lambda") {
            p.lambda = float("lambda", v, |x| x >= 0.0, "a number >= 0")?;
            if p.penalty == Penalty::None && p.lambda != 0.0 {
                return Err(ModelError::invalid_param(
                    "lambda",
                    v,
                    "0 or unset when penalty=none",
                ));
            }
        }
        if p.penalty == Penalty::None {
            p.lambda = 0.0;
        }
        if let Some(v) = get("tol") {
            p.tol = float("tol", v, |x| x > 0.0, "a number > 0")?;
        }
        if let Some(v) = get("threshold") {
            p.threshold = float(
                "threshold",
                v,
                |x| (0.0..=1.0).contains(&x),
                "a number in [0, 1]",
            )?;
        }
        if let Some(v) = get("max_iter") {
            p.max_iter = v
                .parse::<u32>()
                .ok()
                .filter(|x| (1..=MAX_ITER_LIMIT).contains(x))
                .ok_or_else(|| {
                    ModelError::invalid_param(
                        "max_iter",
                        v,
                        format!("an integer in 1..={MAX_ITER_LIMIT}"),
                    )
                })?;
        }
        if let Some(v) = get("min_frequency") {
            p.min_frequency =
                v.parse::<usize>().ok().filter(|x| *x >= 1).ok_or_else(|| {
                    ModelError::invalid_param("min_frequency", v, "an integer >= 1")
                })?;
        }
        if let Some(v) = get("date_parts") {
            p.date_parts = match v.trim() {
                "true" => true,
                "false" => false,
                _ => return Err(ModelError::invalid_param("date_parts", v, "true or false")),
            };
        }
        Ok(p)
    }

    /// Re-checks typed parameters built by hand rather than by [`LogisticParams::from_params`].
    pub(crate) fn check(&self) -> Result<(), ModelError> {
        let bad =
            |k: &str, v: &dyn std::fmt::Display, e: &str| Err(ModelError::invalid_param(k, v, e));
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return bad("lambda", &self.lambda, "a number >= 0");
        }
        if self.penalty == Penalty::None && self.lambda != 0.0 {
            return bad("lambda", &self.lambda, "0 or unset when penalty=none");
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return bad("tol", &self.tol, "a number > 0");
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return bad("threshold", &self.threshold, "a number in [0, 1]");
        }
        if !(1..=MAX_ITER_LIMIT).contains(&self.max_iter) {
            return bad("max_iter", &self.max_iter, "an integer in 1..=1000000");
        }
        if self.min_frequency == 0 {
            return bad("min_frequency", &0, "an integer >= 1");
        }
        Ok(())
    }

    /// The canonical form recorded in manifests: every key, defaults filled in.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "penalty": self.penalty.as_str(),
            "lambda": self.lambda,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "threshold": self.threshold,
            "class_weight": self.class_weight.as_str(),
            "min_frequency": self.min_frequency,
            "date_parts": self.date_parts,
        })
    }

    /// Reads back [`LogisticParams::to_json`] through the same validation as user input.
    fn from_json(v: &serde_json::Value) -> Result<Self, ModelError> {
        let obj = v
            .as_object()
            .ok_or_else(|| ModelError::invalid_artifact("params are not an object"))?;
        let mut params = Params::new();
        for (k, v) in obj {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ModelError::invalid_artifact(format!(
                        "parameter `{k}` is not a scalar"
                    )));
                }
            };
            params.insert(k.clone(), s);
        }
        Self::from_params(&params).map_err(|e| ModelError::invalid_artifact(format!("params: {e}")))
    }
}

/// The `logistic` family.
/// What the `logistic` family is.
pub const SPEC: FamilySpec = FamilySpec {
    name: "logistic",
    aliases: &["logistic_regression", "logreg"],
    task: Task::Binary,
    summary: "Regularised (L1 / L2) logistic regression on the preprocessed features.",
    params: PARAM_NAMES,
    trainable: true,
    importable: false,
};

#[derive(Clone, Copy, Debug, Default)]
pub struct LogisticFamily;

impl ModelFamily for LogisticFamily {
    fn spec(&self) -> &FamilySpec {
        &SPEC
    }

    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        LogisticParams::from_params(params).map(|p| p.to_json())
    }

    fn fit(
        &self,
        data: &TrainingData<'_>,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError> {
        let (features, target) = (data.features, data.binary()?);
        let params = LogisticParams::from_params(params)?;
        Ok(Box::new(fit(features, target, &params, ctx)?))
    }

    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError> {
        Ok(Box::new(LogisticModel::from_payload(payload)?))
    }
}

/// A fitted logistic regression: the pipeline plus an intercept and one coefficient per encoded
/// column.
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticModel {
    params: LogisticParams,
    pipeline: Pipeline,
    intercept: f64,
    coefficients: Vec<f64>,
    positive_label: String,
    negative_label: String,
    iterations: u32,
    converged: bool,
}

/// Fits a logistic regression on `features` (input columns only) and `target`.
pub fn fit(
    features: &Table,
    target: &BinaryTarget,
    params: &LogisticParams,
    ctx: &FitContext<'_>,
) -> Result<LogisticModel, ModelError> {
    params.check()?;
    let (n_pos, n_neg) = check_target(features, target)?;
    ctx.check_cancelled()?;
    ctx.progress.report("preprocess", 0.0);
    let options = PipelineOptions {
        min_frequency: params.min_frequency,
        date_parts: params.date_parts,
    };
    let (pipeline, matrix) = Pipeline::fit_transform(features, &options)?;
    ctx.check_cancelled()?;

    let n = matrix.n_rows();
    let weights: Vec<f64> = match params.class_weight {
        ClassWeight::None => vec![1.0 / n as f64; n],
        ClassWeight::Balanced => target
            .y
            .iter()
            .map(|&y| 1.0 / (2.0 * if y == 1.0 { n_pos } else { n_neg } as f64))
            .collect(),
    };
    let design = Design::from_rows(&matrix, pipeline.one_hot_groups());
    let sol = solve(&design, &target.y, &weights, params, ctx)?;
    if !sol.intercept.is_finite() || sol.beta.iter().any(|b| !b.is_finite()) {
        return Err(ModelError::Numerical {
            reason: "coefficients are not finite".into(),
        });
    }
    ctx.progress.report("fit", 1.0);
    Ok(LogisticModel {
        params: params.clone(),
        pipeline,
        intercept: sol.intercept,
        coefficients: sol.beta,
        positive_label: target.positive_label.clone(),
        negative_label: target.negative_label.clone(),
        iterations: sol.iterations,
        converged: sol.converged,
    })
}

/// The coefficients of a logistic fit on a dense design (see [`fit_dense`]).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DenseFit {
    pub(crate) intercept: f64,
    pub(crate) coefficients: Vec<f64>,
    pub(crate) iterations: u32,
    pub(crate) converged: bool,
}

/// Fits the logistic objective of the module docs on an already encoded design `x` (no one-hot
/// groups, no standardisation): the solver shared with families that build their own columns,
/// such as the scorecard on WoE values. `params.threshold` and `params.min_frequency` are
/// ignored; `y` must hold both classes (see [`check_target`]).
pub(crate) fn fit_dense(
    x: &crate::pipeline::Matrix,
    y: &[f64],
    params: &LogisticParams,
    ctx: &FitContext<'_>,
) -> Result<DenseFit, ModelError> {
    params.check()?;
    let n = x.n_rows();
    let n_pos = y.iter().filter(|&&v| v == 1.0).count();
    let n_neg = n - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Err(ModelError::NotEnoughData {
            reason: "the target needs both classes".into(),
        });
    }
    let weights: Vec<f64> = match params.class_weight {
        ClassWeight::None => vec![1.0 / n as f64; n],
        ClassWeight::Balanced => y
            .iter()
            .map(|&y| 1.0 / (2.0 * if y == 1.0 { n_pos } else { n_neg } as f64))
            .collect(),
    };
    let design = Design::from_rows(x, Vec::new());
    let sol = solve(&design, y, &weights, params, ctx)?;
    if !sol.intercept.is_finite() || sol.beta.iter().any(|b| !b.is_finite()) {
        return Err(ModelError::Numerical {
            reason: "coefficients are not finite".into(),
        });
    }
    Ok(DenseFit {
        intercept: sol.intercept,
        coefficients: sol.beta,
        iterations: sol.iterations,
        converged: sol.converged,
    })
}

/// Returns the class counts `(positives, negatives)`.
pub(crate) fn check_target(
    features: &Table,
    target: &BinaryTarget,
) -> Result<(usize, usize), ModelError> {
    if target.len() != features.n_rows() {
        return Err(ModelError::InvalidTarget {
            reason: format!(
                "the target has {} values but the feature table has {} rows",
                target.len(),
                features.n_rows()
            ),
        });
    }
    if let Some(i) = target.y.iter().position(|&y| y != 0.0 && y != 1.0) {
        return Err(ModelError::InvalidTarget {
            reason: format!("value {} at row {i} is not 0 or 1", target.y[i]),
        });
    }
    if target.positive_label == target.negative_label {
        return Err(ModelError::InvalidTarget {
            reason: format!(
                "positive and negative labels are both `{}`",
                target.positive_label
            ),
        });
    }
    let n_pos = target.y.iter().filter(|&&y| y == 1.0).count();
    let n_neg = target.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        let only = if n_pos == 0 {
            &target.negative_label
        } else {
            &target.positive_label
        };
        return Err(ModelError::NotEnoughData {
            reason: format!(
                "target `{}` needs both classes but has only `{only}` ({} rows)",
                target.column,
                target.len()
            ),
        });
    }
    Ok((n_pos, n_neg))
}

impl LogisticModel {
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    pub fn logistic_params(&self) -> &LogisticParams {
        &self.params
    }

    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    /// One coefficient per encoded column ([`Pipeline::encoded_names`]), on the standardised
    /// scale.
    pub fn coefficients(&self) -> &[f64] {
        &self.coefficients
    }

    /// Outer iterations the solver ran.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Whether the solver reached `tol` within `max_iter`.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// The log-odds of the positive class for one row.
    pub fn decision_function(&self, row: &[Value]) -> Result<f64, ModelError> {
        let mut x = Vec::with_capacity(self.pipeline.n_encoded());
        self.pipeline.transform_row(row, &mut x)?;
        Ok(self.linear(&x))
    }

    #[inline]
    fn linear(&self, x: &[f64]) -> f64 {
        self.intercept + dot(&self.coefficients, x)
    }

    /// The explanation of `row` from its encoded form `x` (see [`FittedModel::explain`]).
    fn explanation_of(&self, row: &[Value], x: &[f64]) -> Explanation {
        let means = self.pipeline.encoded_means();
        let base_value = self.intercept + dot(&self.coefficients, means);
        let mut per_feature = vec![0.0; row.len()];
        for (j, &raw) in self.pipeline.encoded_to_raw().iter().enumerate() {
            per_feature[raw] += self.coefficients[j] * (x[j] - means[j]);
        }
        let mut contributions: Vec<Contribution> = self
            .pipeline
            .input_schema()
            .fields
            .iter()
            .zip(row)
            .zip(per_feature)
            .map(|((field, value), contribution)| Contribution {
                feature: field.name.clone(),
                value: value.clone(),
                contribution,
            })
            .collect();
        // Stable: ties keep input order.
        contributions.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        Explanation {
            space: "log_odds".into(),
            base_value,
            contributions,
        }
    }

    /// Rebuilds a model from [`FittedModel::payload`] bytes, checking every invariant serving
    /// relies on.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, ModelError> {
        let bad =
            |reason: String| ModelError::invalid_artifact(format!("logistic payload: {reason}"));
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        match value
            .get("payload_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(PAYLOAD_VERSION) => {}
            Some(v) => {
                return Err(bad(format!(
                    "payload version {v} is not supported (this aurum reads {PAYLOAD_VERSION})"
                )));
            }
            None => return Err(bad("no payload_version".into())),
        }
        let stored: StoredLogistic =
            serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let params = LogisticParams::from_json(&stored.params)?;
        let pipeline = Pipeline::from_stored(stored.pipeline)?;
        if stored.coefficients.len() != pipeline.n_encoded() {
            return Err(bad(format!(
                "{} coefficients for {} encoded columns",
                stored.coefficients.len(),
                pipeline.n_encoded()
            )));
        }
        if !stored.intercept.is_finite() || stored.coefficients.iter().any(|c| !c.is_finite()) {
            return Err(bad("non-finite coefficient".into()));
        }
        if stored.positive_label.is_empty() || stored.positive_label == stored.negative_label {
            return Err(bad("positive and negative labels must differ".into()));
        }
        Ok(LogisticModel {
            params,
            pipeline,
            intercept: stored.intercept,
            coefficients: stored.coefficients,
            positive_label: stored.positive_label,
            negative_label: stored.negative_label,
            iterations: stored.iterations,
            converged: stored.converged,
        })
    }
}

impl FittedModel for LogisticModel {
    fn family(&self) -> &str {
        "logistic"
    }

    fn task(&self) -> Task {
        Task::Binary
    }

    fn input_schema(&self) -> &Schema {
        self.pipeline.input_schema()
    }

    fn params(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn summary(&self) -> serde_json::Value {
        let coefficients: Vec<_> = self
            .pipeline
            .encoded_names()
            .iter()
            .zip(&self.coefficients)
            .map(|(name, c)| serde_json::json!({ "name": name, "coefficient": c }))
            .collect();
        let dropped: Vec<_> = self
            .pipeline
            .dropped()
            .iter()
            .map(|d| {
                serde_json::json!({ "name": d.name, "type": d.ty.as_str(), "reason": d.reason.as_str() })
            })
            .collect();
        serde_json::json!({
            "intercept": self.intercept,
            "coefficients": coefficients,
            "nonzero_coefficients": self.coefficients.iter().filter(|c| **c != 0.0).count(),
            "iterations": self.iterations,
            "converged": self.converged,
            "dropped_columns": dropped,
        })
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        let stored = StoredLogistic {
            payload_version: PAYLOAD_VERSION,
            params: self.params.to_json(),
            pipeline: self.pipeline.to_stored(),
            intercept: self.intercept,
            coefficients: self.coefficients.clone(),
            positive_label: self.positive_label.clone(),
            negative_label: self.negative_label.clone(),
            iterations: self.iterations,
            converged: self.converged,
        };
        serde_json::to_vec(&stored).map_err(|e| ModelError::Serialization {
            reason: e.to_string(),
        })
    }

    fn as_binary(&self) -> Option<&dyn BinaryClassifier> {
        Some(self)
    }

    fn into_binary(self: Box<Self>) -> Option<Box<dyn BinaryClassifier>> {
        Some(self)
    }
}

impl BinaryClassifier for LogisticModel {
    fn threshold(&self) -> f64 {
        self.params.threshold
    }

    fn labels(&self) -> (&str, &str) {
        (&self.positive_label, &self.negative_label)
    }

    fn predict(&self, rows: &[Vec<Value>]) -> Result<Vec<Prediction>, ModelError> {
        let mut x = Vec::with_capacity(self.pipeline.n_encoded());
        let mut out = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            self.pipeline
                .transform_row(row, &mut x)
                .map_err(|e| e.at_row(i))?;
            let probability = sigmoid(self.linear(&x));
            let positive = probability >= self.params.threshold;
            let label = if positive {
                &self.positive_label
            } else {
                &self.negative_label
            };
            out.push(Prediction {
                probability,
                label: label.clone(),
                positive,
            });
        }
        Ok(out)
    }

    fn predict_proba_one(&self, row: &[Value]) -> Result<f64, ModelError> {
        self.decision_function(row).map(sigmoid)
    }

    fn predict_proba_table(&self, table: &Table) -> Result<Vec<f64>, ModelError> {
        // `linear`'s terms in its order, less the `coef · 0` ones (they add a signed zero, so
        // change at most the sign of a zero log-odds: PD 0.5 either way).
        Ok(self
            .pipeline
            .linear_table(table, &self.coefficients)?
            .into_iter()
            .map(|s| sigmoid(self.intercept + s))
            .collect())
    }

    /// The default scaling of [`BinaryClassifier::predict_proba_table`]'s PDs.
    fn score_points_table(&self, table: &Table) -> Result<Option<Vec<f64>>, ModelError> {
        Ok(Some(default_points(&self.predict_proba_table(table)?)))
    }

    /// One encode of the table: the points are the default scaling of the PDs.
    fn score_table(&self, table: &Table) -> Result<TableScores, ModelError> {
        Ok(TableScores::from_pd(self.predict_proba_table(table)?))
    }

    /// Per raw feature `f`: `Σ_{j ∈ f} coef_j · (x_j − mean_j)` over its encoded columns, where
    /// `mean_j` is the training mean of encoded column `j`; the base value is
    /// `intercept + Σ_j coef_j · mean_j`, so base + contributions = log-odds exactly.
    fn explain(&self, row: &[Value]) -> Result<Explanation, ModelError> {
        let mut x = Vec::with_capacity(self.pipeline.n_encoded());
        self.pipeline.transform_row(row, &mut x)?;
        Ok(self.explanation_of(row, &x))
    }

    /// One encode for the PD, the score (the default scaling of the PD) and, when reasons or an
    /// explanation are needed, one explanation shared by both.
    fn assess(&self, row: &[Value], explain: bool) -> Result<Assessment, ModelError> {
        let mut x = Vec::with_capacity(self.pipeline.n_encoded());
        self.pipeline.transform_row(row, &mut x)?;
        let pd = sigmoid(self.linear(&x));
        let score = Some(ScoreScaling::default().score_from_pd(pd));
        let policy = self.policy();
        let decision = policy.decide(pd, score);
        let adverse = decision != Decision::Approve;
        let explanation = (explain || adverse).then(|| self.explanation_of(row, &x));
        let reasons = match &explanation {
            Some(e) if adverse => rank_adverse(
                e.contributions
                    .iter()
                    .map(|c| (c.feature.as_str(), c.contribution)),
                &ReasonTable::new(),
                policy.max_reasons,
            ),
            _ => Vec::new(),
        };
        Ok(Assessment {
            decision: CreditDecision {
                pd,
                score,
                decision,
                reasons,
            },
            explanation: explanation.filter(|_| explain),
        })
    }
}

/// Version of [`StoredLogistic`], independent of the artifact container's format version.
const PAYLOAD_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredLogistic {
    payload_version: u32,
    params: serde_json::Value,
    pipeline: StoredPipeline,
    intercept: f64,
    coefficients: Vec<f64>,
    positive_label: String,
    negative_label: String,
    iterations: u32,
    converged: bool,
}

// ---- numerics ---------------------------------------------------------------------------------

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub use aurum_contract::policy::sigmoid;

/// `log(1 + e^z)` without overflow.
#[inline]
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

fn soft_threshold(z: f64, t: f64) -> f64 {
    if z > t {
        z - t
    } else if z < -t {
        z + t
    } else {
        0.0
    }
}

/// The encoded training matrix, column-major (coordinate descent walks columns), and its one-hot
/// groups (each sums to 1 on every row).
struct Design {
    n: usize,
    p: usize,
    cols: Vec<f64>,
    groups: Vec<std::ops::Range<usize>>,
}

impl Design {
    fn from_rows(m: &crate::pipeline::Matrix, groups: Vec<std::ops::Range<usize>>) -> Self {
        let (n, p) = (m.n_rows(), m.n_cols());
        let mut cols = vec![0.0; n * p];
        for (i, row) in m.rows().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                cols[j * n + i] = x;
            }
        }
        Design { n, p, cols, groups }
    }

    fn col(&self, j: usize) -> &[f64] {
        &self.cols[j * self.n..(j + 1) * self.n]
    }
}

struct Solution {
    intercept: f64,
    beta: Vec<f64>,
    iterations: u32,
    converged: bool,
}

/// `λ · R(β + t·d)`.
fn penalty_at(penalty: Penalty, lambda: f64, beta: &[f64], d: &[f64], t: f64) -> f64 {
    match penalty {
        Penalty::None => 0.0,
        Penalty::L2 => {
            0.5 * lambda
                * beta
                    .iter()
                    .zip(d)
                    .map(|(b, d)| (b + t * d).powi(2))
                    .sum::<f64>()
        }
        Penalty::L1 => {
            lambda
                * beta
                    .iter()
                    .zip(d)
                    .map(|(b, d)| (b + t * d).abs())
                    .sum::<f64>()
        }
    }
}

/// Weighted average loss at linear predictor `eta`.
fn loss(eta: &[f64], y: &[f64], w: &[f64]) -> f64 {
    eta.iter()
        .zip(y)
        .zip(w)
        .map(|((&e, &y), &w)| w * (softplus(e) - y * e))
        .sum()
}

/// Largest component of the minimum-norm subgradient of loss + penalty in `β` (not intercept).
fn optimality_violation(penalty: Penalty, lambda: f64, g: &[f64], beta: &[f64]) -> f64 {
    g.iter()
        .zip(beta)
        .map(|(&g, &b)| match penalty {
            Penalty::None => g.abs(),
            Penalty::L2 => (g + lambda * b).abs(),
            Penalty::L1 if b != 0.0 => (g + lambda * b.signum()).abs(),
            Penalty::L1 => (g.abs() - lambda).max(0.0),
        })
        .fold(0.0, f64::max)
}

/// Moves each one-hot group's coefficients and the intercept in opposite directions by the shift
/// that minimises the penalty.
///
/// On the training rows exactly one column of a group is 1, so adding `c` to the intercept and
/// subtracting it from every coefficient of the group leaves every linear predictor (and `u`)
/// unchanged: the loss is flat along that direction and only the penalty moves. Coordinate
/// descent crawls along such flat directions (their curvature is just `λ`), so the exact
/// minimiser is applied after every sweep instead: the mean of the group's coefficients for L2
/// (and, as the canonical choice among equal fits, for no penalty), their median for L1. At the
/// optimum each group's L2 coefficients therefore sum to zero, which is what makes the all-zero
/// encoding of an unseen category the average level effect.
fn recentre_groups(
    x: &Design,
    penalty: Penalty,
    beta: &[f64],
    d: &mut [f64],
    d0: &mut f64,
    scratch: &mut Vec<f64>,
) {
    for g in &x.groups {
        scratch.clear();
        scratch.extend(
            beta[g.clone()]
                .iter()
                .zip(&d[g.clone()])
                .map(|(b, d)| b + d),
        );
        let c = match penalty {
            Penalty::L1 => {
                scratch.sort_unstable_by(f64::total_cmp);
                let k = scratch.len();
                if k == 0 {
                    continue;
                }
                if k % 2 == 1 {
                    scratch[k / 2]
                } else {
                    0.5 * (scratch[k / 2 - 1] + scratch[k / 2])
                }
            }
            Penalty::L2 | Penalty::None => {
                scratch.iter().sum::<f64>() / scratch.len().max(1) as f64
            }
        };
        if c != 0.0 && c.is_finite() {
            d[g.clone()].iter_mut().for_each(|d| *d -= c);
            *d0 += c;
        }
    }
}

/// Armijo sufficient-decrease constant and step-halving limit of the line search.
const ARMIJO_SIGMA: f64 = 0.01;
const MAX_HALVINGS: usize = 50;
/// Coordinate-descent sweeps per outer iteration at most.
const MAX_SWEEPS: usize = 200;

/// Proximal Newton with coordinate descent (see the module docs). `w` sums to 1.
fn solve(
    x: &Design,
    y: &[f64],
    w: &[f64],
    params: &LogisticParams,
    ctx: &FitContext<'_>,
) -> Result<Solution, ModelError> {
    let (n, p) = (x.n, x.p);
    let (penalty, lambda) = (params.penalty, params.lambda);
    let l2 = if penalty == Penalty::L2 { lambda } else { 0.0 };

    let mut beta = vec![0.0; p];
    // Start from the intercept-only optimum: the log-odds of the weighted base rate.
    let ybar: f64 = y.iter().zip(w).map(|(y, w)| y * w).sum();
    let mut b0 = (ybar / (1.0 - ybar)).ln();
    let mut eta = vec![b0; n];
    let mut trial = vec![0.0; n];
    let mut resid = vec![0.0; n];
    let mut h = vec![0.0; n];
    let mut g = vec![0.0; p];
    let mut a = vec![0.0; p];
    let mut d = vec![0.0; p];
    let mut u = vec![0.0; n];
    let mut scratch = Vec::new();
    let mut f = loss(&eta, y, w) + penalty_at(penalty, lambda, &beta, &d, 0.0);
    let mut converged = false;
    let mut iterations = 0;

    for iter in 0..params.max_iter {
        ctx.check_cancelled()?;
        ctx.progress
            .report("fit", f64::from(iter) / f64::from(params.max_iter));
        for i in 0..n {
            let pi = sigmoid(eta[i]);
            resid[i] = w[i] * (pi - y[i]);
            h[i] = w[i] * pi * (1.0 - pi);
        }
        let g0: f64 = resid.iter().sum();
        let a0: f64 = h.iter().sum();
        for j in 0..p {
            let col = x.col(j);
            g[j] = dot(col, &resid);
            a[j] = col.iter().zip(&h).map(|(x, h)| h * x * x).sum();
        }
        let violation = g0
            .abs()
            .max(optimality_violation(penalty, lambda, &g, &beta));
        if !violation.is_finite() {
            return Err(ModelError::Numerical {
                reason: format!("gradient is {violation}"),
            });
        }
        if violation <= params.tol {
            converged = true;
            break;
        }
        iterations = iter + 1;

        // Minimise the quadratic model + penalty over the direction (d0, d) by coordinate descent.
        // `u = d0 + X·d` is kept up to date so each coordinate costs O(n).
        d.fill(0.0);
        u.fill(0.0);
        let mut d0 = 0.0;
        let inner_tol = 0.1 * violation;
        for _ in 0..MAX_SWEEPS {
            ctx.check_cancelled()?;
            let mut largest = 0.0f64;
            if a0 > 0.0 {
                let b = g0 + dot(&h, &u);
                let step = -b / a0;
                d0 += step;
                u.iter_mut().for_each(|u| *u += step);
                largest = largest.max(a0 * step.abs());
            }
            for j in 0..p {
                let col = x.col(j);
                let aj = a[j];
                let curvature = aj + l2;
                if curvature <= 0.0 {
                    continue;
                }
                let b = g[j]
                    + col
                        .iter()
                        .zip(&h)
                        .zip(&u)
                        .map(|((x, h), u)| x * h * u)
                        .sum::<f64>();
                let current = beta[j] + d[j];
                let next = match penalty {
                    Penalty::None | Penalty::L2 => (aj * current - b) / curvature,
                    Penalty::L1 => soft_threshold(aj * current - b, lambda) / aj,
                };
                let step = next - current;
                if step != 0.0 {
                    d[j] += step;
                    u.iter_mut().zip(col).for_each(|(u, x)| *u += step * x);
                    largest = largest.max(curvature * step.abs());
                }
            }
            recentre_groups(x, penalty, &beta, &mut d, &mut d0, &mut scratch);
            if largest <= inner_tol {
                break;
            }
        }

        // Backtracking line search on the true objective.
        let predicted = g0 * d0 + dot(&g, &d) + penalty_at(penalty, lambda, &beta, &d, 1.0)
            - penalty_at(penalty, lambda, &beta, &d, 0.0);
        if predicted.is_nan() || predicted >= 0.0 {
            break; // no descent direction left at floating-point precision
        }
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..MAX_HALVINGS {
            trial
                .iter_mut()
                .zip(&eta)
                .zip(&u)
                .for_each(|((tr, e), u)| *tr = e + t * u);
            let ft = loss(&trial, y, w) + penalty_at(penalty, lambda, &beta, &d, t);
            if ft <= f + ARMIJO_SIGMA * t * predicted {
                accepted = Some(ft);
                break;
            }
            t *= 0.5;
        }
        let Some(ft) = accepted else { break };
        f = ft;
        b0 += t * d0;
        beta.iter_mut().zip(&d).for_each(|(b, d)| *b += t * d);
        std::mem::swap(&mut eta, &mut trial);
    }
    Ok(Solution {
        intercept: b0,
        beta,
        iterations,
        converged,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aurum_core::{CancelToken, Column, ColumnData, NoProgress, Progress};

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ctx<'a>(cancel: &'a CancelToken) -> FitContext<'a> {
        FitContext {
            progress: &NoProgress,
            cancel,
            seed: 0,
        }
    }

    fn target(y: Vec<f64>) -> BinaryTarget {
        BinaryTarget {
            column: "y".into(),
            y,
            positive_label: "bad".into(),
            negative_label: "good".into(),
        }
    }

    /// Spector & Mazzeo (1980): does the PSI teaching method improve grades? 32 students: GPA,
    /// TUCE score, PSI (0/1) and GRADE (1 = grade improved). Shipped with statsmodels as
    /// `statsmodels.datasets.spector`.
    const SPECTOR: [[f64; 4]; 32] = [
        [2.66, 20.0, 0.0, 0.0],
        [2.89, 22.0, 0.0, 0.0],
        [3.28, 24.0, 0.0, 0.0],
        [2.92, 12.0, 0.0, 0.0],
        [4.00, 21.0, 0.0, 1.0],
        [2.86, 17.0, 0.0, 0.0],
        [2.76, 17.0, 0.0, 0.0],
        [2.87, 21.0, 0.0, 0.0],
        [3.03, 25.0, 0.0, 0.0],
        [3.92, 29.0, 0.0, 1.0],
        [2.63, 20.0, 0.0, 0.0],
        [3.32, 23.0, 0.0, 0.0],
        [3.57, 23.0, 0.0, 0.0],
        [3.26, 25.0, 0.0, 1.0],
        [3.53, 26.0, 0.0, 0.0],
        [2.74, 19.0, 0.0, 0.0],
        [2.75, 25.0, 0.0, 0.0],
        [2.83, 19.0, 0.0, 0.0],
        [3.12, 23.0, 1.0, 0.0],
        [3.16, 25.0, 1.0, 1.0],
        [2.06, 22.0, 1.0, 0.0],
        [3.62, 28.0, 1.0, 1.0],
        [2.89, 14.0, 1.0, 0.0],
        [3.51, 26.0, 1.0, 0.0],
        [3.54, 24.0, 1.0, 1.0],
        [2.83, 27.0, 1.0, 1.0],
        [3.39, 17.0, 1.0, 1.0],
        [2.67, 24.0, 1.0, 0.0],
        [3.65, 21.0, 1.0, 1.0],
        [4.00, 23.0, 1.0, 1.0],
        [3.10, 21.0, 1.0, 0.0],
        [2.39, 19.0, 1.0, 1.0],
    ];

    fn spector() -> (Table, BinaryTarget) {
        let column = |j: usize, name: &str| Column {
            name: name.into(),
            data: ColumnData::Float(SPECTOR.iter().map(|r| Some(r[j])).collect()),
        };
        let t = Table::new(vec![column(0, "gpa"), column(1, "tuce"), column(2, "psi")]).unwrap();
        (t, target(SPECTOR.iter().map(|r| r[3]).collect()))
    }

    /// Plain Newton–Raphson on the raw (unstandardised) design `[1, gpa, tuce, psi]`, solving the
    /// 4×4 normal equations by Gaussian elimination: an independent reference implementation.
    #[allow(
        clippy::needless_range_loop,
        reason = "index form mirrors the textbook algebra"
    )]
    fn newton_reference() -> [f64; 4] {
        let rows: Vec<[f64; 4]> = SPECTOR.iter().map(|r| [1.0, r[0], r[1], r[2]]).collect();
        let mut b = [0.0; 4];
        for _ in 0..50 {
            let mut grad = [0.0; 4];
            let mut hess = [[0.0; 4]; 4];
            for (x, r) in rows.iter().zip(&SPECTOR) {
                let eta: f64 = x.iter().zip(&b).map(|(x, b)| x * b).sum();
                let p = 1.0 / (1.0 + (-eta).exp());
                for i in 0..4 {
                    grad[i] += (r[3] - p) * x[i];
                    for k in 0..4 {
                        hess[i][k] += p * (1.0 - p) * x[i] * x[k];
                    }
                }
            }
            // Solve hess · step = grad.
            let mut m = hess;
            let mut v = grad;
            for c in 0..4 {
                let piv = (c..4)
                    .max_by(|&i, &k| m[i][c].abs().total_cmp(&m[k][c].abs()))
                    .unwrap();
                m.swap(c, piv);
                v.swap(c, piv);
                for r in c + 1..4 {
                    let f = m[r][c] / m[c][c];
                    for k in c..4 {
                        m[r][k] -= f * m[c][k];
                    }
                    v[r] -= f * v[c];
                }
            }
            let mut step = [0.0; 4];
            for c in (0..4).rev() {
                let s: f64 = (c + 1..4).map(|k| m[c][k] * step[k]).sum();
                step[c] = (v[c] - s) / m[c][c];
            }
            for i in 0..4 {
                b[i] += step[i];
            }
        }
        b
    }

    /// Our coefficients live on the standardised scale; map them back to raw units:
    /// `β_raw_j = β_j / s_j`, `β_0,raw = β_0 − Σ β_j m_j / s_j`.
    fn raw_coefficients(model: &LogisticModel) -> [f64; 4] {
        // With no missing values every numeric feature encodes to one column.
        let m = &model.pipeline;
        let stored = m.to_stored();
        let json = serde_json::to_value(&stored).unwrap();
        let mut out = [model.intercept, 0.0, 0.0, 0.0];
        for j in 0..3 {
            let f = &json["features"][j];
            let (mean, std) = (f["mean"].as_f64().unwrap(), f["std"].as_f64().unwrap());
            out[j + 1] = model.coefficients[j] / std;
            out[0] -= model.coefficients[j] * mean / std;
        }
        out
    }

    #[test]
    fn unpenalised_fit_matches_statsmodels_and_newton_on_spector() {
        let (t, y) = spector();
        let p =
            LogisticParams::from_params(&params(&[("penalty", "none"), ("tol", "1e-10")])).unwrap();
        let cancel = CancelToken::new();
        let model = fit(&t, &y, &p, &ctx(&cancel)).unwrap();
        assert!(model.converged());
        let ours = raw_coefficients(&model);
        // Published statsmodels `Logit(spector.endog, add_constant(spector.exog)).fit()` summary
        // (statsmodels documentation, "Discrete choice models" example): const −13.0213,
        // GPA 2.8261, TUCE 0.0952, PSI 2.3787 (4 decimals as printed).
        let published = [-13.0213, 2.8261, 0.0952, 2.3787];
        for (o, p) in ours.iter().zip(published) {
            assert!(
                (o - p).abs() < 6e-5,
                "{ours:?} vs statsmodels {published:?}"
            );
        }
        let reference = newton_reference();
        for (o, r) in ours.iter().zip(reference) {
            assert!(
                (o - r).abs() < 1e-6 * r.abs().max(1.0),
                "{ours:?} vs Newton {reference:?}"
            );
        }
    }

    #[test]
    fn l1_with_large_lambda_zeroes_every_coefficient() {
        let (t, y) = spector();
        let cancel = CancelToken::new();
        // At β = 0 with the intercept at its optimum, |∂loss/∂β_j| ≤ max|x_j|·max|p − y| is well
        // below 1 on standardised features, so λ = 1 keeps every coefficient at exactly 0.
        let p =
            LogisticParams::from_params(&params(&[("penalty", "l1"), ("lambda", "1")])).unwrap();
        let model = fit(&t, &y, &p, &ctx(&cancel)).unwrap();
        assert!(
            model.coefficients().iter().all(|c| *c == 0.0),
            "{:?}",
            model.coefficients()
        );
        // The intercept is unpenalised: it is the log-odds of the base rate 11/32.
        assert!((model.intercept() - (11.0f64 / 21.0).ln()).abs() < 1e-6);
        // KKT: β = 0 is optimal exactly when λ ≥ λ_max = max_j |∂loss/∂β_j| at β = 0, where the
        // intercept-only fit predicts the base rate ȳ: ∂loss/∂β_j = mean((ȳ − y_i)·x_ij).
        let (_, m) = Pipeline::fit_transform(&t, &PipelineOptions::default()).unwrap();
        let ybar = 11.0 / 32.0;
        let lambda_max = (0..3)
            .map(|j| {
                m.rows()
                    .zip(&y.y)
                    .map(|(x, yi)| (ybar - yi) * x[j])
                    .sum::<f64>()
                    / 32.0
            })
            .fold(0.0, |a: f64, g| a.max(g.abs()));
        let nonzero = |lambda: f64| {
            let p = LogisticParams {
                penalty: Penalty::L1,
                lambda,
                tol: 1e-9,
                ..Default::default()
            };
            let m = fit(&t, &y, &p, &ctx(&cancel)).unwrap();
            m.coefficients().iter().filter(|c| **c != 0.0).count()
        };
        assert_eq!(nonzero(lambda_max * 1.001), 0);
        assert_eq!(nonzero(lambda_max * 0.98), 1);
        // Sparsity grows with λ: TUCE (the weakest predictor) is the first to go.
        assert_eq!(nonzero(0.1), 2);
        assert_eq!(nonzero(1e-4), 3);
    }

    #[test]
    fn l2_optimum_satisfies_stationarity() {
        // At the L2 optimum ∇loss + λβ = 0 and ∂loss/∂β0 = 0; check it independently.
        let (t, y) = spector();
        let cancel = CancelToken::new();
        let p =
            LogisticParams::from_params(&params(&[("lambda", "0.05"), ("tol", "1e-9")])).unwrap();
        let model = fit(&t, &y, &p, &ctx(&cancel)).unwrap();
        let (pipeline, m) = Pipeline::fit_transform(&t, &PipelineOptions::default()).unwrap();
        assert_eq!(&pipeline, model.pipeline());
        let mut grad = [0.0; 4];
        for (x, yi) in m.rows().zip(&y.y) {
            let r = (sigmoid(model.linear(x)) - yi) / 32.0;
            grad[0] += r;
            for j in 0..3 {
                grad[j + 1] += r * x[j];
            }
        }
        assert!(grad[0].abs() < 1e-9);
        for j in 0..3 {
            assert!(
                (grad[j + 1] + 0.05 * model.coefficients()[j]).abs() < 1e-9,
                "{grad:?}"
            );
        }
        // Shrinkage: every coefficient is smaller in magnitude than the unpenalised one.
        let none = LogisticParams {
            penalty: Penalty::None,
            lambda: 0.0,
            ..p
        };
        let free = fit(&t, &y, &none, &ctx(&cancel)).unwrap();
        for (r, f) in model.coefficients().iter().zip(free.coefficients()) {
            assert!(r.abs() < f.abs());
        }
    }

    #[test]
    fn balanced_class_weight_raises_the_minority_probability() {
        let (t, y) = spector();
        let cancel = CancelToken::new();
        let plain = fit(&t, &y, &LogisticParams::default(), &ctx(&cancel)).unwrap();
        let balanced = LogisticParams {
            class_weight: ClassWeight::Balanced,
            ..Default::default()
        };
        let balanced = fit(&t, &y, &balanced, &ctx(&cancel)).unwrap();
        let mean =
            |m: &LogisticModel| m.predict_proba_table(&t).unwrap().iter().sum::<f64>() / 32.0;
        // Unweighted, the mean probability reproduces the base rate (the intercept's score
        // equation); balanced it moves towards ½.
        assert!((mean(&plain) - 11.0 / 32.0).abs() < 1e-6);
        assert!(mean(&balanced) > mean(&plain) + 0.05);
    }

    #[test]
    fn explanation_adds_up_to_the_log_odds() {
        let (t, y) = spector();
        let cancel = CancelToken::new();
        let model = fit(&t, &y, &LogisticParams::default(), &ctx(&cancel)).unwrap();
        for i in 0..t.n_rows() {
            let row = t.row(i);
            let e = model.explain(&row).unwrap();
            assert_eq!(e.space, "log_odds");
            let total = e.base_value + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
            let p = model.predict_proba_one(&row).unwrap();
            assert!((total - (p / (1.0 - p)).ln()).abs() < 1e-9);
            assert!((total - model.decision_function(&row).unwrap()).abs() < 1e-12);
            let abs: Vec<f64> = e
                .contributions
                .iter()
                .map(|c| c.contribution.abs())
                .collect();
            assert!(abs.windows(2).all(|w| w[0] >= w[1]));
            assert_eq!(e.contributions.len(), 3);
        }
    }

    #[test]
    fn assess_matches_decide_and_explain() {
        let (t, y) = spector();
        let cancel = CancelToken::new();
        let model = fit(&t, &y, &LogisticParams::default(), &ctx(&cancel)).unwrap();
        let mut declined = 0;
        for i in 0..t.n_rows() {
            let row = t.row(i);
            let a = model.assess(&row, true).unwrap();
            assert_eq!(a.decision, model.decide(&row).unwrap());
            assert_eq!(a.explanation, Some(model.explain(&row).unwrap()));
            assert_eq!(model.assess(&row, false).unwrap().explanation, None);
            declined += usize::from(!a.decision.reasons.is_empty());
        }
        assert!(declined > 0);
    }

    /// `date_parts=true` is stored with the model: the reloaded model encodes dates with their
    /// parts and predicts the same; a bad value is refused by name.
    #[test]
    fn date_parts_are_stored_and_applied_at_serving() {
        let day = |k: i64| {
            chrono::NaiveDate::from_ymd_opt(2018, 1, 1).unwrap() + chrono::Duration::days(k * 37)
        };
        let n = 120;
        let t = Table::new(vec![
            Column {
                name: "opened".into(),
                data: ColumnData::Date((0..n).map(|k| Some(day(k))).collect()),
            },
            Column {
                name: "x".into(),
                data: ColumnData::Float((0..n).map(|k| Some((k % 7) as f64)).collect()),
            },
        ])
        .unwrap();
        // Bad in the winter months and with x.
        let y: Vec<f64> = (0..n)
            .map(|k| {
                use chrono::Datelike;
                let m = day(k).month();
                f64::from(u8::from(m <= 2 || m == 12 || k % 7 == 6))
            })
            .collect();
        let cancel = CancelToken::new();
        let fam = LogisticFamily;
        let target = aurum_core::Target::Binary(target(y));
        let model = fam
            .fit(
                &TrainingData::new(&t, &target),
                &params(&[("date_parts", "true")]),
                &ctx(&cancel),
            )
            .unwrap();
        assert_eq!(model.params()["date_parts"], true);
        let summary = model.summary().to_string();
        assert!(summary.contains("opened__month"), "{summary}");
        let back = fam.load_payload(&model.payload().unwrap()).unwrap();
        let (a, b) = (model.as_binary().unwrap(), back.as_binary().unwrap());
        for k in 0..n {
            let row = t.row(k as usize);
            assert_eq!(a.predict_proba_one(&row), b.predict_proba_one(&row));
        }
        let plain = fam
            .fit(
                &TrainingData::new(&t, &target),
                &Params::new(),
                &ctx(&cancel),
            )
            .unwrap();
        assert_eq!(plain.params()["date_parts"], false);
        assert!(!plain.summary().to_string().contains("opened__month"));
        let e = fam
            .validate_params(&params(&[("date_parts", "yes")]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value `yes` for parameter `date_parts`: expected true or false"
        );
    }

    #[test]
    fn params_are_validated_up_front() {
        let fam = LogisticFamily;
        let canonical = fam.validate_params(&Params::new()).unwrap();
        assert_eq!(
            canonical,
            serde_json::json!({"penalty": "l2", "lambda": DEFAULT_LAMBDA, "max_iter": 1000,
                "tol": 1e-6, "threshold": 0.5, "class_weight": "none", "min_frequency": 1,
                "date_parts": false})
        );
        let e = fam
            .validate_params(&params(&[("lamda", "0.1")]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown parameter `lamda` for logistic (allowed: class_weight, date_parts, lambda, max_iter, \
             min_frequency, penalty, threshold, tol)"
        );
        let cases = [
            (
                "lambda",
                "-1",
                "invalid value `-1` for parameter `lambda`: expected a number >= 0",
            ),
            (
                "lambda",
                "abc",
                "invalid value `abc` for parameter `lambda`: expected a number >= 0",
            ),
            (
                "penalty",
                "l3",
                "invalid value `l3` for parameter `penalty`: expected one of l2, l1, none",
            ),
            (
                "threshold",
                "1.5",
                "invalid value `1.5` for parameter `threshold`: expected a number in [0, 1]",
            ),
            (
                "max_iter",
                "0",
                "invalid value `0` for parameter `max_iter`: expected an integer in 1..=1000000",
            ),
            (
                "tol",
                "NaN",
                "invalid value `NaN` for parameter `tol`: expected a number > 0",
            ),
            (
                "min_frequency",
                "0",
                "invalid value `0` for parameter `min_frequency`: expected an integer >= 1",
            ),
            (
                "class_weight",
                "auto",
                "invalid value `auto` for parameter `class_weight`: expected one of none, balanced",
            ),
        ];
        for (k, v, msg) in cases {
            let e = fam.validate_params(&params(&[(k, v)])).unwrap_err();
            assert_eq!(e.code(), "invalid_param");
            assert_eq!(e.to_string(), msg);
        }
        let e = fam
            .validate_params(&params(&[("penalty", "none"), ("lambda", "0.1")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("0 or unset when penalty=none"),
            "{e}"
        );
        let v = fam
            .validate_params(&params(&[
                ("penalty", "L1"),
                ("lambda", " 0.01 "),
                ("max_iter", "50"),
            ]))
            .unwrap();
        assert_eq!(v["penalty"], "l1");
        assert_eq!(v["lambda"], 0.01);
        assert_eq!(v["max_iter"], 50);
        assert_eq!(
            fam.validate_params(&params(&[("penalty", "none")]))
                .unwrap()["lambda"],
            0.0
        );
    }

    #[test]
    fn fit_honours_cancel_and_reports_progress() {
        #[derive(Default)]
        struct Recorder(Mutex<Vec<(String, f64)>>);
        impl Progress for Recorder {
            fn report(&self, stage: &str, fraction: f64) {
                self.0.lock().unwrap().push((stage.to_string(), fraction));
            }
        }
        let (t, y) = spector();
        let rec = Recorder::default();
        let cancel = CancelToken::new();
        let c = FitContext {
            progress: &rec,
            cancel: &cancel,
            seed: 0,
        };
        let y = aurum_core::Target::Binary(y);
        let data = TrainingData::new(&t, &y);
        LogisticFamily.fit(&data, &Params::new(), &c).unwrap();
        let reports = rec.0.lock().unwrap().clone();
        assert_eq!(reports.first().map(|r| r.0.as_str()), Some("preprocess"));
        assert_eq!(reports.last(), Some(&("fit".to_string(), 1.0)));
        assert!(reports.iter().filter(|r| r.0 == "fit").count() >= 3);
        assert!(reports.windows(2).all(|w| w[0].1 <= w[1].1));

        cancel.cancel();
        let e = LogisticFamily.fit(&data, &Params::new(), &c).unwrap_err();
        assert_eq!(e, ModelError::Cancelled);
    }

    #[test]
    fn bad_targets_are_refused() {
        let (t, y) = spector();
        let cancel = CancelToken::new();
        let p = LogisticParams::default();
        let e = fit(&t, &target(vec![0.0; 32]), &p, &ctx(&cancel)).unwrap_err();
        assert_eq!(e.code(), "not_enough_data");
        assert!(e.to_string().contains("only `good`"), "{e}");
        let e = fit(&t, &target(vec![0.0, 1.0]), &p, &ctx(&cancel)).unwrap_err();
        assert_eq!(e.code(), "invalid_target");
        let mut y2 = y.clone();
        y2.y[3] = 2.0;
        assert_eq!(
            fit(&t, &y2, &p, &ctx(&cancel)).unwrap_err().code(),
            "invalid_target"
        );
        let bad = LogisticParams { lambda: -1.0, ..p };
        assert_eq!(
            fit(&t, &y, &bad, &ctx(&cancel)).unwrap_err().code(),
            "invalid_param"
        );
    }

    #[test]
    fn payload_round_trips_and_refuses_inconsistency() {
        let (t, y) = spector();
        let cancel = CancelToken::new();
        let model = fit(&t, &y, &LogisticParams::default(), &ctx(&cancel)).unwrap();
        let bytes = model.payload().unwrap();
        let back = LogisticModel::from_payload(&bytes).unwrap();
        assert_eq!(back, model);

        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["coefficients"].as_array_mut().unwrap().push(1.0.into());
        let e = LogisticModel::from_payload(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(e.code(), "invalid_artifact");
        assert!(
            e.to_string()
                .contains("4 coefficients for 3 encoded columns"),
            "{e}"
        );

        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["payload_version"] = 2.into();
        let e = LogisticModel::from_payload(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("payload version 2 is not supported"),
            "{e}"
        );

        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["params"]["threshold"] = 3.into();
        assert!(LogisticModel::from_payload(&serde_json::to_vec(&v).unwrap()).is_err());
        assert!(LogisticModel::from_payload(b"not json").is_err());
    }

    #[test]
    fn predict_labels_at_threshold_and_names_bad_rows() {
        let (t, y) = spector();
        let cancel = CancelToken::new();
        let p = LogisticParams {
            threshold: 0.3,
            ..Default::default()
        };
        let model = fit(&t, &y, &p, &ctx(&cancel)).unwrap();
        let rows: Vec<Vec<Value>> = (0..t.n_rows()).map(|i| t.row(i)).collect();
        let preds = model.predict(&rows).unwrap();
        let probs = model.predict_proba_table(&t).unwrap();
        for (pr, p) in preds.iter().zip(&probs) {
            assert_eq!(pr.probability, *p);
            assert_eq!(pr.positive, *p >= 0.3);
            assert_eq!(pr.label, if pr.positive { "bad" } else { "good" });
        }
        let mut bad = rows[..3].to_vec();
        bad[2][1] = Value::Str("twenty".into());
        let e = model.predict(&bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value for feature `tuce` (row 2): expected a number (float feature), got a string"
        );
    }

    #[test]
    fn unseen_category_scores_the_average_level_effect() {
        // 60 rows: a 3-level category with different event rates and a numeric feature.
        let n = 60;
        let level = |i: usize| ["north", "south", "west"][i % 3];
        let t = Table::new(vec![
            Column {
                name: "region".into(),
                data: ColumnData::Categorical((0..n).map(|i| Some(level(i).to_string())).collect()),
            },
            Column {
                name: "x".into(),
                data: ColumnData::Float((0..n).map(|i| Some((i % 7) as f64)).collect()),
            },
        ])
        .unwrap();
        let y = target(
            (0..n)
                .map(|i| f64::from(u8::from((i % 3 == 0) ^ (i % 5 == 0))))
                .collect(),
        );
        let cancel = CancelToken::new();
        for penalty in [Penalty::L2, Penalty::None] {
            let lambda = if penalty == Penalty::L2 { 0.05 } else { 0.0 };
            let p = LogisticParams {
                penalty,
                lambda,
                tol: 1e-10,
                ..Default::default()
            };
            let model = fit(&t, &y, &p, &ctx(&cancel)).unwrap();
            // The one-hot coefficients of the group sum to zero (the solver's recentring)...
            let group_sum: f64 = model.coefficients()[..3].iter().sum();
            assert!(
                group_sum.abs() < 1e-9,
                "{penalty:?}: {:?}",
                model.coefficients()
            );
            // ...so the all-zero encoding of an unseen region scores the average of the levels.
            let logit = |r: &str| {
                model
                    .decision_function(&[Value::Str(r.into()), Value::Float(3.0)])
                    .unwrap()
            };
            let average = (logit("north") + logit("south") + logit("west")) / 3.0;
            assert!((logit("atlantis") - average).abs() < 1e-9);
            assert!(
                (model
                    .decision_function(&[Value::Null, Value::Float(3.0)])
                    .unwrap()
                    - average)
                    .abs()
                    < 1e-9
            );
        }
    }
}
