//! The open model contract: what every model family shares, so that the job runner, the
//! registry, the model cache, the scoring path and the audit log work for any family without
//! knowing it.
//!
//! - [`Task`] says what a model predicts (binary, multiclass, regression, forecast, anomaly,
//!   ranking, sequence classification). A fit takes the [`Target`] its task needs; serving gives
//!   the [`Output`] of its task.
//! - [`ModelFamily`] is one family: its [`FamilySpec`] (name, aliases, task, parameters),
//!   parameter validation, `fit`, `load_payload` and, for families brought from elsewhere,
//!   `import`. [`Families`] is the registry keyed by family name; the application builds one at
//!   start-up from one registration line per family crate.
//! - [`FittedModel`] is the task-generic fitted model: schema, parameters, payload, generic row
//!   scoring. Task-specific capabilities are views: [`FittedModel::as_binary`] gives a
//!   [`BinaryClassifier`] (probabilities, threshold, credit decisions under a [`policy`],
//!   adverse-action [`reasons`]), [`FittedModel::as_forecaster`] a [`Forecaster`],
//!   [`FittedModel::as_ranker`] a [`Ranker`] (recommendations, similar items, ranking metrics).
//! - [`artifact`] is the task-generic envelope every version is stored in: a manifest (family,
//!   task, input schema, parameters, metrics, lineage, outputs) plus the family's payload.
//!
//! Why a crate of its own: a new family (fraud, neural, recommendation) depends on this crate
//! and on nothing else of aurum's upper layers; the service depends on this crate and never on a
//! family's internals. What this crate deliberately does not know: any concrete family, HTTP,
//! storage, async runtimes, logging.

mod error;

pub mod artifact;
pub mod families;
pub mod policy;
pub mod reasons;
pub mod text;

pub use aurum_core::{
    BinaryTarget, ClassTarget, FamilyName, NumericTarget, Params, Prediction, Target, Task,
};
use aurum_core::{CancelToken, Explanation, Metrics, Progress, Schema, Table, Value};

pub use artifact::{Manifest, ManifestInput, decode_artifact, encode_artifact};
pub use error::ModelError;
pub use families::{Families, FamilySpec};
pub use policy::ParamReader;

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
    /// [`ModelError::Cancelled`] once the job was cancelled.
    pub fn check_cancelled(&self) -> Result<(), ModelError> {
        if self.cancel.is_cancelled() {
            Err(ModelError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// The data a fit learns from: the candidate feature columns (target and excluded columns
/// removed) and the target in the form the family's task takes.
#[derive(Clone, Copy, Debug)]
pub struct TrainingData<'a> {
    pub features: &'a Table,
    pub target: &'a Target,
}

impl<'a> TrainingData<'a> {
    pub fn new(features: &'a Table, target: &'a Target) -> Self {
        Self { features, target }
    }

    /// The binary target, or [`ModelError::InvalidTarget`] naming the task it is not.
    pub fn binary(&self) -> Result<&'a BinaryTarget, ModelError> {
        match self.target {
            Target::Binary(t) => Ok(t),
            _ => Err(ModelError::InvalidTarget {
                reason: "this family needs a binary target (two classes)".into(),
            }),
        }
    }

    /// The numeric target, or [`ModelError::InvalidTarget`].
    pub fn numeric(&self) -> Result<&'a NumericTarget, ModelError> {
        match self.target {
            Target::Numeric(t) => Ok(t),
            _ => Err(ModelError::InvalidTarget {
                reason: "this family needs a numeric target".into(),
            }),
        }
    }

    /// The multiclass target, or [`ModelError::InvalidTarget`].
    pub fn classes(&self) -> Result<&'a ClassTarget, ModelError> {
        match self.target {
            Target::Classes(t) => Ok(t),
            _ => Err(ModelError::InvalidTarget {
                reason: "this family needs a class target".into(),
            }),
        }
    }
}

/// A model family: validates its parameters, fits models, and loads them back from payloads.
pub trait ModelFamily: Send + Sync {
    /// Name, aliases, task and parameter names.
    fn spec(&self) -> &FamilySpec;

    /// Validates raw `key=value` parameters and returns their canonical typed form (every key,
    /// defaults filled in). An unknown key is [`ModelError::UnknownParam`] listing the allowed
    /// keys; a bad value is [`ModelError::InvalidParam`] naming key, value and expectation.
    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError>;

    /// Fits a model. `data.target` is the target of [`FamilySpec::task`] (the job runner builds
    /// it from the task); a family that is only imported refuses with
    /// [`ModelError::InvalidParam`] on `kind`.
    fn fit(
        &self,
        data: &TrainingData<'_>,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError>;

    /// Whether the family, with these job parameters, reads free-text columns itself (a neural
    /// text encoder: the `mlp` or `sequence` with `text_encoder=transformer`). Otherwise the job
    /// runner puts a [`text::TextStep`] in front of it: the family sees each text column as
    /// hashed TF-IDF columns. Parameters the family would refuse may answer either way: the fit refuses them.
    fn reads_text(&self, params: &Params) -> bool {
        let _ = params;
        false
    }

    /// Whether the family takes its columns by position and needs every one, constant ones
    /// included (an image's pixels: a border pixel that is always 0 in the training set is
    /// still pixel 0 of every image served). Otherwise the job runner leaves constant columns
    /// out, as they carry no information.
    fn keeps_constant_columns(&self) -> bool {
        false
    }

    /// Rebuilds a model from the bytes its [`FittedModel::payload`] produced. Never panics on
    /// arbitrary bytes; anything unusable is [`ModelError::InvalidArtifact`].
    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError>;

    /// Turns a model file trained elsewhere into a servable model (families listed with
    /// [`FamilySpec::importable`]). By default the family imports nothing.
    fn import(&self, bytes: &[u8], params: &Params) -> Result<Box<dyn FittedModel>, ModelError> {
        let _ = (bytes, params);
        Err(ModelError::InvalidParam {
            name: "format".into(),
            value: self.spec().name.into(),
            expected: "a family that imports model files".into(),
        })
    }
}

/// What a model answers for one row, by task.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Binary classification.
    Binary(Prediction),
    /// Multiclass classification: the predicted label and one probability per class, in the
    /// order of [`OutputSpec::Classes`].
    Class {
        label: String,
        probabilities: Vec<f64>,
    },
    /// Regression.
    Value(f64),
    /// Anomaly scoring: higher is more unusual; `anomalous` at the model's own threshold.
    Anomaly { score: f64, anomalous: bool },
}

/// What a model's outputs are, as its artifact manifest records them.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputSpec {
    Binary {
        positive_label: String,
        negative_label: String,
        threshold: f64,
    },
    Classes(Vec<String>),
    Value,
    Anomaly,
    Forecast,
}

/// A fitted model of any task, ready to serve.
///
/// Rows are `&[Value]` aligned to [`FittedModel::input_schema`]. Task-specific capabilities are
/// reached through the `as_*` views; the job runner, registry and cache need nothing else.
pub trait FittedModel: Send + Sync + std::fmt::Debug {
    /// The family name this model was fitted (or imported) by, as registered in [`Families`].
    fn family(&self) -> &str;

    fn task(&self) -> Task;

    /// The raw feature columns the model consumes, in row order.
    fn input_schema(&self) -> &Schema;

    /// Canonical typed parameters, as [`ModelFamily::validate_params`] returned them.
    fn params(&self) -> serde_json::Value;

    /// A human-oriented description (coefficients, convergence, dropped columns). Informative
    /// only: not a stable format.
    fn summary(&self) -> serde_json::Value;

    /// Family-specific tables for reports: binning tables and points for scorecards, gain
    /// importance for trees. Informative only; `{}` when the family has nothing to add.
    fn details(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    /// The model's own serialisation, read back by [`ModelFamily::load_payload`].
    fn payload(&self) -> Result<Vec<u8>, ModelError>;

    /// What the outputs are (labels and threshold, classes, a value). By default the binary
    /// view's labels and threshold, [`OutputSpec::Forecast`] for forecasters and
    /// [`OutputSpec::Value`] otherwise.
    fn output_spec(&self) -> OutputSpec {
        if let Some(b) = self.as_binary() {
            let (p, n) = b.labels();
            OutputSpec::Binary {
                positive_label: p.to_string(),
                negative_label: n.to_string(),
                threshold: b.threshold(),
            }
        } else if self.as_forecaster().is_some() {
            OutputSpec::Forecast
        } else {
            OutputSpec::Value
        }
    }

    /// Scores rows into the outputs of the model's task. An invalid row fails the batch with an
    /// error naming the row and feature. By default the binary view's `predict`.
    fn predict_rows(&self, rows: &[Vec<Value>]) -> Result<Vec<Output>, ModelError> {
        match self.as_binary() {
            Some(b) => Ok(b.predict(rows)?.into_iter().map(Output::Binary).collect()),
            None => Err(ModelError::WrongTask {
                family: self.family().to_string(),
                task: self.task(),
                operation: "row scoring",
            }),
        }
    }

    /// Figures the fit itself produced (information criteria, in-sample or backtest errors),
    /// recorded beside the held-out metrics. Empty by default.
    fn fit_metrics(&self) -> Metrics {
        Metrics::new()
    }

    /// Training columns the model does not use, with the family's reason (`unsupported_type`,
    /// `all_missing`, `low_iv`, ...), read from the `dropped_columns` list a family puts in its
    /// [`FittedModel::summary`].
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

    /// The binary-classification view, for models of [`Task::Binary`].
    fn as_binary(&self) -> Option<&dyn BinaryClassifier> {
        None
    }

    /// The forecasting view, for models of [`Task::Forecast`].
    fn as_forecaster(&self) -> Option<&dyn Forecaster> {
        None
    }

    /// The ranking view, for models of [`Task::Ranking`].
    fn as_ranker(&self) -> Option<&dyn Ranker> {
        None
    }

    /// The owned binary view (tools and tests that keep a fitted binary model by itself).
    fn into_binary(self: Box<Self>) -> Option<Box<dyn BinaryClassifier>> {
        None
    }

    /// The text step in front of the family's model, for a [`text::TextModel`]; the artifact
    /// stores it in the manifest.
    fn text_step(&self) -> Option<&text::TextStep> {
        None
    }

    /// The model's concrete type, for a service module built for one kind of model (the fraud
    /// events route reads a fraud model's spec and decision rules). `None` by default.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// A fitted binary classifier: probabilities, a label threshold, and credit decisions.
///
/// How a category unseen in training is handled is the family's pipeline's business (it never
/// fails).
pub trait BinaryClassifier: FittedModel {
    /// Probability at or above which the positive label is predicted.
    fn threshold(&self) -> f64;

    /// `(positive, negative)` class labels.
    fn labels(&self) -> (&str, &str);

    /// Scores a batch. An invalid row fails the batch with an error naming the row and feature.
    /// The default scores row by row through [`BinaryClassifier::predict_proba_one`] and labels
    /// at [`BinaryClassifier::threshold`]; families with a faster batch path override it.
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
    /// the positive log-odds contributions of [`BinaryClassifier::explain`], with texts derived
    /// from the feature names.
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

    /// Everything served for one row: PD, score, decision under [`BinaryClassifier::policy`],
    /// the adverse reasons for refer and decline, and (when `explain`) the explanation. This is
    /// the serving path; it must agree exactly with [`BinaryClassifier::decide`] and
    /// [`BinaryClassifier::explain`].
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

    /// [`BinaryClassifier::assess`] for every row of a batch, in order: the same answers, an
    /// invalid row failing the batch with an error naming its index. The default assesses row
    /// by row. A family with a batch evaluation overrides it to walk the model once for the
    /// batch and attribute only the rows that need it (refer, decline, or `explain`); reasons
    /// are never skipped. Single-threaded: the caller splits large batches across threads.
    fn assess_batch(
        &self,
        rows: &[Vec<Value>],
        explain: bool,
    ) -> Result<Vec<Assessment>, ModelError> {
        rows.iter()
            .enumerate()
            .map(|(i, row)| self.assess(row, explain).map_err(|e| e.at_row(i)))
            .collect()
    }

    /// [`BinaryClassifier::score_points`] for every row of a table holding (at least) the input
    /// columns by name (the training job's report). The default goes row by row; families with
    /// a batch path override it with the same values.
    fn score_points_table(&self, table: &Table) -> Result<Option<Vec<f64>>, ModelError> {
        let inputs =
            table
                .select(self.input_schema().names())
                .map_err(|e| ModelError::InvalidInput {
                    feature: "table".into(),
                    row: None,
                    reason: e.to_string(),
                })?;
        (0..inputs.n_rows())
            .map(|i| self.score_points(&inputs.row(i)).map_err(|e| e.at_row(i)))
            .collect()
    }

    /// [`BinaryClassifier::predict_proba_table`] and [`BinaryClassifier::score_points_table`]
    /// of the same table together, bit for bit the same values: what the training job's report
    /// needs of the held-out rows. The default makes the two calls; a family whose points come
    /// from the same pass as its PDs overrides it to encode and walk the table once.
    fn score_table(&self, table: &Table) -> Result<TableScores, ModelError> {
        Ok(TableScores {
            pd: self.predict_proba_table(table)?,
            points: self.score_points_table(table)?,
        })
    }

    /// PD, score, decision under [`BinaryClassifier::policy`], and (for refer and decline) the
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

/// PDs and score points of every row of a table ([`BinaryClassifier::score_table`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TableScores {
    /// Probability of the positive class, one per row.
    pub pd: Vec<f64>,
    /// Score points, one per row; `None` for a family without a meaningful score.
    pub points: Option<Vec<f64>>,
}

impl TableScores {
    /// PDs with the points of the default [`ScoreScaling`], as the default
    /// [`BinaryClassifier::score_points`] maps each PD: for families without points of their own.
    pub fn from_pd(pd: Vec<f64>) -> TableScores {
        let points = Some(default_points(&pd));
        TableScores { pd, points }
    }
}

/// The points of the default [`ScoreScaling`] for each PD: the default
/// [`BinaryClassifier::score_points`] over a column of PDs.
pub fn default_points(pd: &[f64]) -> Vec<f64> {
    let scaling = ScoreScaling::default();
    pd.iter().map(|&pd| scaling.score_from_pd(pd)).collect()
}

/// What [`BinaryClassifier::assess`] gives for one row.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// PD, score, decision and reasons, as [`BinaryClassifier::decide`] gives them.
    pub decision: CreditDecision,
    /// The explanation, when it was asked for, as [`BinaryClassifier::explain`] gives it.
    pub explanation: Option<Explanation>,
}

/// A fitted forecasting model with its data window.
pub trait Forecaster: FittedModel {
    /// Forecasts `horizon` steps past the end of the data window, after updating the state with
    /// `new_values` (observations that follow the window; the parameters stay fixed), with
    /// intervals at each of `levels` (percent).
    fn forecast(
        &self,
        horizon: usize,
        levels: &[f64],
        new_values: &[f64],
    ) -> Result<SeriesForecast, ModelError>;
}

/// A forecast of a registered forecasting model.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesForecast {
    /// The fitted model, e.g. `ARIMA(0,1,1)(0,1,1)[12]`.
    pub model: String,
    pub frequency: String,
    /// The last observed timestamp (after the new observations).
    pub last_timestamp: chrono::NaiveDateTime,
    pub timestamps: Vec<chrono::NaiveDateTime>,
    pub mean: Vec<f64>,
    /// `(level, lower, upper)`.
    pub intervals: Vec<(f64, Vec<f64>, Vec<f64>)>,
    pub aicc: Option<f64>,
}

/// Who a ranking is for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RankQuery<'a> {
    /// A user the model was fitted on, by id.
    User(&'a str),
    /// A user the model does not know, by `(field, value)` attributes (cold start).
    Attributes(&'a [(String, String)]),
}

/// A predicate over item ids: `true` where the item may be offered.
pub type Eligibility = std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Which items a ranking may return. The default excludes what the user already holds.
#[derive(Clone, Default)]
pub struct RankFilter {
    /// Also return items the user already holds (default: never).
    pub include_held: bool,
    /// Only items whose attribute `field` is one of the values (every listed field must match).
    pub include_categories: Vec<(String, Vec<String>)>,
    /// Never items whose attribute `field` is one of the values.
    pub exclude_categories: Vec<(String, Vec<String>)>,
    /// Never these item ids.
    pub exclude_items: Vec<String>,
    /// Only items for which this is true: eligibility decided elsewhere (a credit decision).
    pub allow: Option<Eligibility>,
}

impl std::fmt::Debug for RankFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RankFilter")
            .field("include_held", &self.include_held)
            .field("include_categories", &self.include_categories)
            .field("exclude_categories", &self.exclude_categories)
            .field("exclude_items", &self.exclude_items)
            .field("allow", &self.allow.is_some())
            .finish()
    }
}

/// One ranked item, with the reasons behind it when they were asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct RankedItem {
    pub item: String,
    /// Higher ranks first; comparable within one answer only.
    pub score: f64,
    /// "Because you hold X" or "popular among job=admin", largest share first.
    pub reasons: Vec<RankReason>,
}

/// Why an item ranks where it does: a held item or an attribute and its share of the score.
#[derive(Clone, Debug, PartialEq)]
pub struct RankReason {
    pub because: String,
    pub contribution: f64,
}

/// A ranking and what produced it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranking {
    pub items: Vec<RankedItem>,
    /// The model's own algorithm (`als`), or `segment_popularity` / `popularity` when a user
    /// known only by attributes was answered by the popularity fallback.
    pub source: String,
}

/// A fitted ranking model: recommendations for a known or new user, similar items, and its own
/// ranking metrics on held-out interactions.
///
/// Ranking families read an interactions table (one row per user–item event) and name its
/// columns in their canonical parameters: `user_column`, `item_column` and optionally
/// `time_column` ([`ranking_columns`]), which the job runner reads to hold out each user's latest
/// interactions.
pub trait Ranker: FittedModel {
    /// How many items the model can rank.
    fn catalogue_size(&self) -> usize;

    /// The item attribute fields filters may name.
    fn category_fields(&self) -> Vec<String>;

    /// How many catalogue items have attribute `field` equal to `value` (0 for a value no item
    /// has); an unknown field is [`ModelError::InvalidInput`] naming it. Lets a configuration
    /// that names categories (a flow's lending products) be checked when it is saved.
    fn items_in_category(&self, field: &str, value: &str) -> Result<usize, ModelError>;

    /// Whether `item` is in the catalogue.
    fn knows_item(&self, item: &str) -> bool;

    /// The top `k` items for `query` after `filter`, with reasons when `explain`. An unknown
    /// user, attribute field, filter field or item is [`ModelError::InvalidInput`] naming the
    /// request field (`user`, `attributes.x`, `include_categories.x`, `exclude_items`).
    fn recommend(
        &self,
        query: RankQuery<'_>,
        k: usize,
        filter: &RankFilter,
        explain: bool,
    ) -> Result<Ranking, ModelError>;

    /// The `k` items most similar to `item` (never `item` itself).
    fn similar_items(&self, item: &str, k: usize) -> Result<Vec<RankedItem>, ModelError>;

    /// Ranking metrics at `k` on held-out interactions (rows of the table the model was fitted
    /// from, same columns), with a popularity baseline fitted on the same training data.
    fn evaluate(&self, held_out: &Table, k: usize) -> Result<Metrics, ModelError>;
}

/// The `(user_column, time_column)` a ranking family's canonical parameters name, or
/// [`ModelError::InvalidParam`] when `user_column` is missing.
pub fn ranking_columns(
    canonical: &serde_json::Value,
) -> Result<(String, Option<String>), ModelError> {
    let user = canonical["user_column"]
        .as_str()
        .ok_or_else(|| ModelError::InvalidParam {
            name: "user_column".into(),
            value: String::new(),
            expected: "the column holding user ids".into(),
        })?;
    let time = canonical["time_column"].as_str().map(str::to_string);
    Ok((user.to_string(), time))
}
