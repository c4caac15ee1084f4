//! What every fraud family shares: streaming features replayed point in time, a learner on
//! them, and the decision thresholds; the learner is the only part that differs.
//!
//! Why a family is its learner plus this module rather than a crate-to-crate copy: the features
//! are a function of the event stream, so a fraud model must carry the spec that computes them,
//! its training rows must come from [`replay_into`] (the live code path, never a second batch
//! implementation), and the service's events route must score any fraud family from the same
//! live state. A [`FraudFamily`] is a [`crate::spec`]-driven replay plus a [`ScorerLearner`]:
//! `fraud_gbdt` ([`crate::gbdt_family`]) plugs in aurum-credit's gradient-boosted trees, and
//! `fraud_sequence` (aurum-nn) a sequence network that reads each event's `history` features.
//!
//! A fit takes the dataset's raw events (the job runner's training rows, which a `date_column`
//! keeps in time order and before every held-out row), replays them in time order with each
//! label delivered `label_delay` after its event, and fits the learner on the feature table.
//! What the fitted [`FraudModel`] stores: the spec, the learner's scorer, the decision
//! thresholds (`review_at`, `block_at`) and the engine state at the end of the training stream.
//!
//! **Input schema: the event fields, not the features.** The job runner evaluates a binary model
//! by projecting its held-out rows to the model's input schema, and those rows are raw events.
//! So [`BinaryClassifier::predict_proba_table`] treats a table as a stream: a table that
//! continues the training stream (every event after its last one) is replayed from the stored
//! end-of-training state, any other table from an empty state, in time order, with no labels
//! (the runner passes none; a live process would receive them, so the terminal risk features
//! fade over the held-out period and the held-out figures are conservative).
//! [`BinaryClassifier::predict_proba_one`] (what `/v1` predict and OIP serve) scores one event
//! against the end-of-training state without changing it: a what-if. Scoring with state, where
//! every event updates the card's and the terminal's history, is [`FraudModel::decide`] on the
//! features a [`crate::OnlineState`] returns (the service's event route).
//!
//! The `handbook` built-in spec is `data/fraud/handbook_features.toml` with its timestamp read from
//! `TX_TIME_SECONDS` (integer seconds): the job runner leaves datetime columns out of the table a
//! family sees, so a family cannot read `TX_DATETIME`. The split is then driven by
//! `date_column=TX_DATETIME`, which is the same clock. `handbook_history` adds each customer's
//! last 16 events of the past week (a `history` feature) for sequence learners.

use aurum_contract::{
    BinaryClassifier, FamilySpec, FitContext, FittedModel, ModelError, ModelFamily, ParamReader,
    Params, Task, TrainingData,
};
use aurum_core::{BinaryTarget, Column, ColumnData, Explanation, Field, Schema, Table, Value};
use serde::{Deserialize, Serialize};

use crate::{
    Action, CompiledSpec, Decision, EngineSnapshot, Event, FeatureEngine, FeatureSpec, FraudError,
    RuleSet, ShardedStore, TrainingLabel, parse_duration, replay_into,
};

/// The parameters every fraud family takes; every other key is its learner's.
pub const OWN_PARAMS: &[&str] = &["block_at", "label_delay", "review_at", "spec"];

/// Scores one event's feature row (spec order) for a [`FraudModel`].
pub trait FeatureScorer: Send + Sync {
    /// The fraud probability.
    fn proba(&self, features: &[f64]) -> Result<f64, ModelError>;

    /// [`FeatureScorer::proba`] of the events of one call, in order (a scorer that walks
    /// several rows at once at less cost than one by one overrides it; the same values).
    fn proba_many(&self, features: &[&[f64]]) -> Result<Vec<f64>, ModelError> {
        features.iter().map(|x| self.proba(x)).collect()
    }

    /// Contributions to the score, named by spec features (or by a group of them, such as a
    /// `history` feature's outputs). Only `review` and `block` decisions ask for them.
    fn explain(&self, features: &[f64]) -> Result<Explanation, ModelError>;

    /// The positive and negative labels of the training target.
    fn labels(&self) -> (&str, &str);

    /// The label threshold of [`BinaryClassifier::threshold`].
    fn threshold(&self) -> f64;

    /// Informative description for the version's summary.
    fn summary(&self) -> serde_json::Value;

    /// Family-specific report tables (`{}` when none).
    fn details(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    /// The scorer's own serialisation, read back by [`ScorerLearner::load`].
    fn payload(&self) -> Result<serde_json::Value, ModelError>;
}

/// Fits and loads the [`FeatureScorer`] of one fraud family.
pub trait ScorerLearner: Send + Sync {
    /// Defaults the family sets where the learner's own differ (`key`, `value`).
    fn defaults(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Validates the learner's parameters (the family's own keys removed, [`Self::defaults`]
    /// filled in) and returns their canonical form, every key present.
    fn canonical(
        &self,
        params: &Params,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ModelError>;

    /// Whether the learner can work with this spec (a sequence learner needs a `history`
    /// feature); the error names `spec`.
    fn check_spec(&self, spec: &CompiledSpec) -> Result<(), ModelError> {
        let _ = spec;
        Ok(())
    }

    /// Fits on the replayed feature table (spec order, one row per training event in time order).
    fn fit(
        &self,
        spec: &CompiledSpec,
        x: &Table,
        y: &BinaryTarget,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FeatureScorer>, ModelError>;

    /// Rebuilds a scorer from its [`FeatureScorer::payload`], checked against the spec.
    fn load(
        &self,
        spec: &CompiledSpec,
        payload: &serde_json::Value,
    ) -> Result<Box<dyn FeatureScorer>, ModelError>;
}

const PAYLOAD_VERSION: u32 = 1;

/// The built-in handbook spec (see the module docs for the timestamp column).
const HANDBOOK_TOML: &str = include_str!("../../../data/fraud/handbook_features.toml");

/// The `handbook` spec as the families use it: timestamp `TX_TIME_SECONDS`, `TX_DATETIME` ignored.
pub fn handbook_spec() -> FeatureSpec {
    let mut spec = FeatureSpec::from_toml_str(HANDBOOK_TOML).expect("the bundled spec parses");
    spec.schema.timestamp = "TX_TIME_SECONDS".into();
    spec.schema.ignore = vec![
        "TX_DATETIME".into(),
        "TX_TIME_DAYS".into(),
        "TX_FRAUD_SCENARIO".into(),
    ];
    spec
}

/// Events of the customer's history in the `handbook_history` spec.
pub const HANDBOOK_HISTORY_LENGTH: usize = 16;

/// `handbook` plus the customer's last [`HANDBOOK_HISTORY_LENGTH`] events of the past 7 days.
pub fn handbook_history_spec() -> FeatureSpec {
    let mut spec = handbook_spec();
    spec.features.push(crate::FeatureDef {
        kind: crate::FeatureKind::History,
        entity: Some("CUSTOMER_ID".into()),
        window: Some("7d".into()),
        of: None,
        delay: None,
        length: Some(HANDBOOK_HISTORY_LENGTH),
    });
    spec
}

/// Resolves the `spec` parameter: `handbook`, `handbook_history`, or inline TOML or JSON text.
pub fn resolve_spec(text: &str) -> Result<FeatureSpec, ModelError> {
    resolve(text).map(|(spec, _)| spec)
}

/// [`resolve_spec`], with the spec compiled.
fn resolve(text: &str) -> Result<(FeatureSpec, CompiledSpec), ModelError> {
    let bad = |e: FraudError| ModelError::invalid_param("spec", "(inline spec)", e.to_string());
    let spec = match text.trim() {
        "handbook" => handbook_spec(),
        "handbook_history" => handbook_history_spec(),
        t if t.starts_with('{') => FeatureSpec::from_json_str(t).map_err(bad)?,
        t => FeatureSpec::from_toml_str(t).map_err(bad)?,
    };
    let compiled = spec.compile().map_err(bad)?;
    Ok((spec, compiled))
}

/// A fraud family: its name and parameters, its default spec, and its learner.
#[derive(Clone, Copy)]
pub struct FraudFamily {
    spec: &'static FamilySpec,
    default_spec: &'static str,
    learner: &'static dyn ScorerLearner,
}

impl std::fmt::Debug for FraudFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FraudFamily")
            .field("name", &self.spec.name)
            .finish_non_exhaustive()
    }
}

impl FraudFamily {
    /// `spec.params` must hold [`OWN_PARAMS`] and every learner key; `default_spec` is the
    /// `spec` parameter's default (`handbook`, `handbook_history` or inline text).
    pub const fn new(
        spec: &'static FamilySpec,
        default_spec: &'static str,
        learner: &'static dyn ScorerLearner,
    ) -> FraudFamily {
        FraudFamily {
            spec,
            default_spec,
            learner,
        }
    }

    /// Rebuilds a model of this family from its payload.
    pub fn model_from_payload(&self, payload: &[u8]) -> Result<FraudModel, ModelError> {
        FraudModel::from_payload(self, payload)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Typed {
    /// `handbook` or the inline text, as given.
    spec: String,
    label_delay: String,
    label_delay_s: i64,
    review_at: f64,
    block_at: f64,
    /// The learner's parameters as `key=value`, its family defaults filled in where not given.
    #[serde(alias = "gbdt")]
    learner: Params,
}

impl Typed {
    fn parse(
        family: &FraudFamily,
        params: &Params,
    ) -> Result<(Self, FeatureSpec, CompiledSpec), ModelError> {
        let r = ParamReader::new(family.spec.name, params, family.spec.params)?;
        let spec_text = r.str("spec").unwrap_or(family.default_spec).to_string();
        let (spec, compiled) = resolve(&spec_text)?;
        let label_delay = r.str("label_delay").unwrap_or("7d").to_string();
        let label_delay_s = parse_duration(&label_delay).ok_or_else(|| {
            ModelError::invalid_param("label_delay", &label_delay, "a duration such as 7d or 36h")
        })?;
        let share = |x: f64| (0.0..=1.0).contains(&x);
        let review_at = r
            .f64("review_at", share, "a probability in [0, 1]")?
            .unwrap_or(0.5);
        let block_at = r
            .f64("block_at", share, "a probability in [0, 1]")?
            .unwrap_or(0.9);
        if review_at > block_at {
            return Err(ModelError::invalid_param(
                "review_at",
                review_at,
                format!("at most block_at ({block_at})"),
            ));
        }
        let mut learner: Params = params
            .iter()
            .filter(|(k, _)| !OWN_PARAMS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in family.learner.defaults() {
            learner.entry((*k).into()).or_insert_with(|| (*v).into());
        }
        family.learner.canonical(&learner)?;
        family.learner.check_spec(&compiled)?;
        let typed = Typed {
            spec: spec_text,
            label_delay,
            label_delay_s,
            review_at,
            block_at,
            learner,
        };
        Ok((typed, spec, compiled))
    }

    fn to_json(&self, learner: &dyn ScorerLearner) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("spec".into(), self.spec.clone().into());
        m.insert("label_delay".into(), self.label_delay.clone().into());
        m.insert("review_at".into(), self.review_at.into());
        m.insert("block_at".into(), self.block_at.into());
        // The parameters were validated when the model was built.
        if let Ok(own) = learner.canonical(&self.learner) {
            m.extend(own);
        }
        serde_json::Value::Object(m)
    }
}

/// A fitted fraud model: spec, scorer, thresholds and the end-of-training state.
pub struct FraudModel {
    family: FraudFamily,
    typed: Typed,
    spec: FeatureSpec,
    /// The event fields, typed as in the training table.
    input: Schema,
    scorer: Box<dyn FeatureScorer>,
    end_state: EngineSnapshot,
    /// `end_state` loaded, for [`BinaryClassifier::predict_proba_one`] (never mutated).
    frozen: FeatureEngine,
}

impl std::fmt::Debug for FraudModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FraudModel")
            .field("family", &self.family.spec.name)
            .field("spec", &self.typed.spec)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    payload_version: u32,
    params: Typed,
    spec: FeatureSpec,
    input: Schema,
    #[serde(alias = "gbdt")]
    scorer: serde_json::Value,
    end_state: EngineSnapshot,
}

/// A [`FraudError`] about an event or spec as the contract's error.
pub fn fraud_err(e: FraudError) -> ModelError {
    match e {
        FraudError::MissingField { field }
        | FraudError::UnknownField { field }
        | FraudError::InvalidField { field, .. }
        | FraudError::OutOfOrder { field, .. }
        | FraudError::DuplicateEvent { field, .. } => ModelError::InvalidInput {
            feature: field.clone(),
            row: None,
            reason: format!("event field `{field}` is invalid for the feature spec"),
        },
        other => ModelError::InvalidInput {
            feature: "events".into(),
            row: None,
            reason: other.to_string(),
        },
    }
}

fn json_of(v: &Value) -> Option<serde_json::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Float(x) => serde_json::Number::from_f64(*x)?.into(),
        Value::Integer(i) => (*i).into(),
        Value::Boolean(b) => (*b).into(),
        Value::Str(s) => s.clone().into(),
        Value::Date(d) => d.format("%Y-%m-%d 00:00:00").to_string().into(),
        Value::DateTime(d) => d.format("%Y-%m-%d %H:%M:%S").to_string().into(),
    })
}

/// The event of a row aligned to `input`; a missing cell is a missing field.
fn event_of(spec: &CompiledSpec, input: &Schema, row: &[Value]) -> Result<Event, ModelError> {
    if row.len() != input.len() {
        return Err(ModelError::RowLength {
            row: None,
            expected: input.len(),
            got: row.len(),
        });
    }
    let cells: Vec<(&str, serde_json::Value)> = input
        .fields
        .iter()
        .zip(row)
        .filter_map(|(f, v)| json_of(v).map(|j| (f.name.as_str(), j)))
        .collect();
    Event::from_map(spec, cells.iter().map(|(k, v)| (*k, v))).map_err(fraud_err)
}

/// The event columns a spec reads, in schema order: id, timestamp, entities, amount.
pub fn event_columns(spec: &FeatureSpec) -> Vec<String> {
    let s = &spec.schema;
    let mut cols = vec![s.id.clone(), s.timestamp.clone()];
    cols.extend(s.entities.iter().cloned());
    cols.extend(s.amount.iter().cloned());
    cols
}

fn feature_table(names: &[String], rows: &[Vec<f64>]) -> Result<Table, ModelError> {
    let columns = names
        .iter()
        .enumerate()
        .map(|(j, n)| Column {
            name: n.clone(),
            data: ColumnData::Float(rows.iter().map(|r| Some(r[j])).collect()),
        })
        .collect();
    Table::new(columns).map_err(|e| ModelError::Numerical {
        reason: e.to_string(),
    })
}

fn store_for(spec: &CompiledSpec) -> Box<ShardedStore> {
    Box::new(ShardedStore::new(spec.schema().entities.len(), 16))
}

impl ModelFamily for FraudFamily {
    fn spec(&self) -> &FamilySpec {
        self.spec
    }

    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        let (typed, _, _) = Typed::parse(self, params)?;
        Ok(typed.to_json(self.learner))
    }

    fn fit(
        &self,
        data: &TrainingData<'_>,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError> {
        let (typed, spec, compiled) = Typed::parse(self, params)?;
        let target = data.binary()?;
        let t = data.features;
        let mut fields = Vec::new();
        for name in event_columns(&spec) {
            let col = t
                .column(&name)
                .ok_or_else(|| ModelError::NoUsableFeatures {
                    reason: format!(
                        "the feature spec reads `{name}`, which is not among the training columns \
                     (the job runner leaves out the target, the split date column, datetime and \
                     text columns: give event times as integer seconds)"
                    ),
                })?;
            fields.push(Field::new(name, col.data.column_type()));
        }
        let input = Schema { fields };
        let table = t
            .select(input.names())
            .map_err(|e| ModelError::NoUsableFeatures {
                reason: e.to_string(),
            })?;
        ctx.progress.report("replay", 0.0);
        let mut events = Vec::with_capacity(table.n_rows());
        for i in 0..table.n_rows() {
            let e = event_of(&compiled, &input, &table.row(i)).map_err(|e| e.at_row(i))?;
            events.push((e, i));
        }
        events.sort_by_key(|(e, i)| (e.ts, *i));
        let labels: Vec<TrainingLabel> = events
            .iter()
            .map(|(e, i)| TrainingLabel {
                event_id: e.id.clone(),
                fraud: target.y[*i] >= 0.5,
                known_at: None,
            })
            .collect();
        let order: Vec<usize> = events.iter().map(|(_, i)| *i).collect();
        let events: Vec<Event> = events.into_iter().map(|(e, _)| e).collect();
        ctx.check_cancelled()?;
        let engine = FeatureEngine::with_store(compiled.clone(), store_for(&compiled));
        let matrix =
            replay_into(&engine, &events, &labels, typed.label_delay_s).map_err(fraud_err)?;
        ctx.check_cancelled()?;
        ctx.progress.report("fit", 0.2);
        let x = feature_table(&matrix.names, &matrix.rows)?;
        let y = BinaryTarget {
            column: target.column.clone(),
            y: order.iter().map(|&i| target.y[i]).collect(),
            positive_label: target.positive_label.clone(),
            negative_label: target.negative_label.clone(),
        };
        let scorer = self.learner.fit(&compiled, &x, &y, &typed.learner, ctx)?;
        let end_state = engine.snapshot();
        let frozen =
            FeatureEngine::from_snapshot(compiled.clone(), store_for(&compiled), end_state.clone())
                .map_err(fraud_err)?;
        Ok(Box::new(FraudModel {
            family: *self,
            typed,
            spec,
            input,
            scorer,
            end_state,
            frozen,
        }))
    }

    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError> {
        Ok(Box::new(FraudModel::from_payload(self, payload)?))
    }
}

impl FraudModel {
    /// Rebuilds a model of `family` from its payload, checking it against itself.
    fn from_payload(family: &FraudFamily, payload: &[u8]) -> Result<FraudModel, ModelError> {
        let name = family.spec.name;
        let bad = |r: String| ModelError::invalid_artifact(format!("{name} payload: {r}"));
        let p: Payload = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
        if p.payload_version != PAYLOAD_VERSION {
            return Err(bad(format!(
                "version {} (this build reads {PAYLOAD_VERSION})",
                p.payload_version
            )));
        }
        let compiled = p.spec.compile().map_err(|e| bad(e.to_string()))?;
        if p.input.names().collect::<Vec<_>>() != event_columns(&p.spec) {
            return Err(bad("the spec and the input schema disagree".into()));
        }
        family
            .learner
            .canonical(&p.params.learner)
            .map_err(|e| bad(e.to_string()))?;
        let scorer = family.learner.load(&compiled, &p.scorer)?;
        let frozen = FeatureEngine::from_snapshot(
            compiled.clone(),
            store_for(&compiled),
            p.end_state.clone(),
        )
        .map_err(|e| bad(e.to_string()))?;
        Ok(FraudModel {
            family: *family,
            typed: p.params,
            spec: p.spec,
            input: p.input,
            scorer,
            end_state: p.end_state,
            frozen,
        })
    }

    /// The feature spec the model was trained with.
    pub fn feature_spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// The label delay the training replay used, in seconds.
    pub fn label_delay_s(&self) -> i64 {
        self.typed.label_delay_s
    }

    /// The decision thresholds as a rule set (no rules or lists of its own).
    pub fn rules(&self) -> RuleSet {
        RuleSet {
            rules: Vec::new(),
            allow: Vec::new(),
            deny: Vec::new(),
            review_at: self.typed.review_at,
            block_at: self.typed.block_at,
            top_features: 3,
        }
    }

    /// The fraud probability of one feature row (spec order).
    pub fn score(&self, features: &[f64]) -> Result<f64, ModelError> {
        self.check_width(features)?;
        self.scorer.proba(features)
    }

    /// The fraud probability of one feature row (spec order) and its explanation.
    pub fn score_features(&self, features: &[f64]) -> Result<(f64, Explanation), ModelError> {
        self.check_width(features)?;
        Ok((self.scorer.proba(features)?, self.scorer.explain(features)?))
    }

    /// Score, decision under [`FraudModel::rules`] and reasons for one event's features.
    ///
    /// The contributions only name the top features of a `review` or `block`, so they are
    /// computed (the costly part) only for those; an `allow` is decided on the score.
    pub fn decide(&self, event: &Event, features: &[f64]) -> Result<Decision, ModelError> {
        self.check_width(features)?;
        let p = self.scorer.proba(features)?;
        self.decide_scored(event, features, p)
    }

    /// [`FraudModel::decide`] for the events of one call, each with its features, in order:
    /// their scores in one [`FeatureScorer::proba_many`], then each decided as `decide` would.
    pub fn decide_many(&self, events: &[(&Event, &[f64])]) -> Result<Vec<Decision>, ModelError> {
        for (_, x) in events {
            self.check_width(x)?;
        }
        let rows: Vec<&[f64]> = events.iter().map(|(_, x)| *x).collect();
        let scores = self.scorer.proba_many(&rows)?;
        events
            .iter()
            .zip(scores)
            .map(|((e, x), p)| self.decide_scored(e, x, p))
            .collect()
    }

    /// The decision for an event whose features scored `p`.
    fn decide_scored(
        &self,
        event: &Event,
        features: &[f64],
        p: f64,
    ) -> Result<Decision, ModelError> {
        let rules = self.rules();
        let spec = self.frozen.spec();
        let decision = rules
            .decide(spec, event, features, p, &[])
            .map_err(fraud_err)?;
        if decision.action == Action::Allow {
            return Ok(decision);
        }
        let e = self.scorer.explain(features)?;
        rules
            .decide(spec, event, features, p, &e.contributions)
            .map_err(fraud_err)
    }

    fn check_width(&self, features: &[f64]) -> Result<(), ModelError> {
        let n = self.frozen.feature_names().len();
        if features.len() != n {
            return Err(ModelError::RowLength {
                row: None,
                expected: n,
                got: features.len(),
            });
        }
        Ok(())
    }

    fn features_frozen(&self, row: &[Value]) -> Result<Vec<f64>, ModelError> {
        let e = event_of(self.frozen.spec(), &self.input, row)?;
        self.frozen.features(&e).map_err(fraud_err)
    }
}

impl FittedModel for FraudModel {
    fn family(&self) -> &str {
        self.family.spec.name
    }

    fn task(&self) -> Task {
        Task::Binary
    }

    fn input_schema(&self) -> &Schema {
        &self.input
    }

    fn params(&self) -> serde_json::Value {
        self.typed.to_json(self.family.learner)
    }

    fn summary(&self) -> serde_json::Value {
        let stats = self.frozen.stats();
        serde_json::json!({
            "features": self.frozen.feature_names(),
            "label_delay_s": self.typed.label_delay_s,
            "review_at": self.typed.review_at,
            "block_at": self.typed.block_at,
            "training_events": stats.events_applied,
            "training_labels": stats.labels_applied,
            "scorer": self.scorer.summary(),
        })
    }

    fn details(&self) -> serde_json::Value {
        self.scorer.details()
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        serde_json::to_vec(&Payload {
            payload_version: PAYLOAD_VERSION,
            params: self.typed.clone(),
            spec: self.spec.clone(),
            input: self.input.clone(),
            scorer: self.scorer.payload()?,
            end_state: self.end_state.clone(),
        })
        .map_err(|e| ModelError::Serialization {
            reason: e.to_string(),
        })
    }

    fn as_binary(&self) -> Option<&dyn BinaryClassifier> {
        Some(self)
    }

    fn into_binary(self: Box<Self>) -> Option<Box<dyn BinaryClassifier>> {
        Some(self)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl BinaryClassifier for FraudModel {
    fn threshold(&self) -> f64 {
        self.scorer.threshold()
    }

    fn labels(&self) -> (&str, &str) {
        self.scorer.labels()
    }

    fn predict_proba_one(&self, row: &[Value]) -> Result<f64, ModelError> {
        let x = self.features_frozen(row)?;
        self.scorer.proba(&x)
    }

    fn predict_proba_table(&self, table: &Table) -> Result<Vec<f64>, ModelError> {
        let t = table
            .select(self.input.names())
            .map_err(|e| ModelError::InvalidInput {
                feature: "table".into(),
                row: None,
                reason: e.to_string(),
            })?;
        let spec = self.frozen.spec();
        let mut events = Vec::with_capacity(t.n_rows());
        for i in 0..t.n_rows() {
            events.push((
                event_of(spec, &self.input, &t.row(i)).map_err(|e| e.at_row(i))?,
                i,
            ));
        }
        events.sort_by_key(|(e, i)| (e.ts, *i));
        let continues = match (self.frozen.watermark(), events.first()) {
            (Some(w), Some((first, _))) => {
                first.ts >= w
                    && events
                        .iter()
                        .all(|(e, _)| !self.frozen.contains_event(&e.id))
            }
            _ => false,
        };
        let engine = if continues {
            FeatureEngine::from_snapshot(spec.clone(), store_for(spec), self.end_state.clone())
                .map_err(fraud_err)?
        } else {
            FeatureEngine::with_store(spec.clone(), store_for(spec))
        };
        let mut out = vec![0.0; events.len()];
        for (e, i) in &events {
            let x = engine
                .score_and_apply(e)
                .map_err(|err| fraud_err(err).at_row(*i))?;
            out[*i] = self.scorer.proba(&x).map_err(|err| err.at_row(*i))?;
        }
        Ok(out)
    }

    fn explain(&self, row: &[Value]) -> Result<Explanation, ModelError> {
        let x = self.features_frozen(row)?;
        self.scorer.explain(&x)
    }

    /// Fraud scores have no credit points.
    fn score_points(&self, _row: &[Value]) -> Result<Option<f64>, ModelError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handbook_spec_reads_integer_seconds_and_never_the_scenario() {
        let spec = handbook_spec();
        assert_eq!(spec.schema.timestamp, "TX_TIME_SECONDS");
        assert!(spec.schema.ignore.iter().any(|c| c == "TX_FRAUD_SCENARIO"));
        assert_eq!(
            event_columns(&spec),
            [
                "TRANSACTION_ID",
                "TX_TIME_SECONDS",
                "CUSTOMER_ID",
                "TERMINAL_ID",
                "TX_AMOUNT"
            ]
        );
        let history = handbook_history_spec().compile().unwrap();
        let layout = history.histories();
        assert_eq!(layout.len(), 1);
        assert_eq!(layout[0].entity, "CUSTOMER_ID");
        assert_eq!(layout[0].steps.len(), HANDBOOK_HISTORY_LENGTH);
        assert!(resolve_spec("handbook_history").is_ok());
    }
}
