//! The `fraud_sequence` family (task `binary`): the `sequence` network (causal CNN or
//! transformer encoder) over a card's recent events as the fraud engine keeps them.
//!
//! Why a fraud family and not the `sequence` family on a sorted table: in live fraud scoring the
//! entity's history is the fraud engine's state, not rows of the request. The spec declares a
//! `history` feature (`kind = "history"`, an entity, a window and a length); the engine computes
//! it on its one feature path, so it is replayed point in time for training, durable and
//! recovered after a crash, shared by replicas through the shared state store, and read by the
//! events route exactly as the trees of `fraud_gbdt` read their window counts. Everything but
//! the learner is [`aurum_fraud::event_family`]'s: the replay, the thresholds `review_at` /
//! `block_at`, the event input schema, the what-if scoring of `/v1` and OIP.
//!
//! **The window.** An event's instance is its entity's previous events within the history window
//! (oldest first, at most the history's `length`), then the event itself. A previous event's
//! vector is `[ln(1 + amount), ln(1 + seconds since it), known fraud (0/1), 0, 0…]`; the current
//! event's is `[0, 0, 0, 1, every other feature of the spec…]` (the handbook's window counts,
//! means and terminal risks), so the network sees what the trees see plus the raw history. Each
//! channel is standardised with the training instances' mean and standard deviation (stored).
//! The window is `length + 1` long; a missing history is padding, masked.
//!
//! **Explanations** (asked for only by `review` and `block` decisions): occlusion in log-odds.
//! Each feature of the current event is set to its training mean, and the history is removed
//! (the event scored alone); the change in log-odds is that input's contribution, the history
//! named `{entity}_history_{window}`. The contributions are not additive the way TreeSHAP's are,
//! so `base_value` takes the remainder (`output − Σ contributions`).

use aurum_contract::{FamilySpec, FitContext, ModelError, Params, Task};
use aurum_core::{BinaryTarget, Contribution, Explanation, Table, Value};
use aurum_fraud::CompiledSpec;
use aurum_fraud::event_family::{FeatureScorer, FraudFamily, ScorerLearner};
use serde::{Deserialize, Serialize};

use crate::dense::Perceptron;
use crate::sequence::{Body, Instances, SequenceParams, SequenceTrainingLog, Weights};
use crate::tabular::EncodedRow;

/// Every parameter name, sorted: the fraud families' own and the `sequence` network's (the
/// entity and window length come from the spec's `history` feature).
pub const PARAM_NAMES: &[&str] = &[
    "architecture",
    "batch_size",
    "block_at",
    "channels",
    "class_weight",
    "d_model",
    "dense",
    "dropout",
    "epochs",
    "heads",
    "kernel",
    "label_delay",
    "layers",
    "learning_rate",
    "patience",
    "review_at",
    "seed",
    "spec",
    "validation_fraction",
    "weight_decay",
];

/// What the `fraud_sequence` family is.
pub const SPEC: FamilySpec = FamilySpec {
    name: "fraud_sequence",
    aliases: &[],
    task: Task::Binary,
    summary: "Card fraud: a causal CNN or transformer encoder (burn) over the card's recent events \
              from the fraud engine's state (a `history` feature), with the spec's other \
              streaming features; replayed point in time like fraud_gbdt.",
    params: PARAM_NAMES,
    trainable: true,
    importable: false,
};

/// The `fraud_sequence` family (default spec `handbook_history`).
pub const FRAUD_SEQUENCE: FraudFamily =
    FraudFamily::new(&SPEC, "handbook_history", &SequenceLearner);

/// Channels of a history step before the current event's features.
const STEP_CHANNELS: usize = 4;

/// The `sequence` network as a fraud learner.
#[derive(Clone, Copy, Debug, Default)]
pub struct SequenceLearner;

/// The keys of `sequence` that the spec decides here.
const FROM_SPEC: &[&str] = &["entity", "length", "embedding_dim", "min_frequency"];

/// The network's parameters for this spec's history.
fn network_params(params: &Params, history: Option<&Layout>) -> Result<SequenceParams, ModelError> {
    let mut p = params.clone();
    p.insert(
        "entity".into(),
        history.map_or("history".into(), |h| h.entity.clone()),
    );
    p.insert(
        "length".into(),
        history.map_or(2, |h| h.steps.len() + 1).to_string(),
    );
    SequenceParams::from_params(&p)
}

/// Where the spec's features sit: the history's steps and the current event's features.
#[derive(Clone, Debug, PartialEq)]
struct Layout {
    entity: String,
    /// Per step, most recent first: amount, seconds-ago and fraud indices.
    steps: Vec<[usize; 3]>,
    /// The features of the current event (every output outside the history), spec order.
    current: Vec<usize>,
    /// The history's contribution name.
    history_name: String,
    /// Every feature name of the spec, for explanations.
    names: Vec<String>,
}

impl Layout {
    fn of(spec: &CompiledSpec) -> Result<Layout, ModelError> {
        let histories = spec.histories();
        let [h] = histories.as_slice() else {
            return Err(ModelError::invalid_param(
                "spec",
                "(spec)",
                format!(
                    "exactly one feature of kind \"history\" (the events the network reads); this spec has {}",
                    histories.len()
                ),
            ));
        };
        let in_history: std::collections::HashSet<usize> =
            h.steps.iter().flatten().copied().collect();
        let names = spec.feature_names();
        let current = (0..names.len())
            .filter(|j| !in_history.contains(j))
            .collect();
        let first = &names[h.steps[0][0]];
        let history_name = first.replacen("_prev1_amount_", "_history_", 1);
        Ok(Layout {
            entity: h.entity.clone(),
            steps: h.steps.clone(),
            current,
            history_name,
            names: names.to_vec(),
        })
    }

    fn width(&self) -> usize {
        STEP_CHANNELS + self.current.len()
    }

    /// The raw (unstandardised) step vectors of one feature row, oldest first, the current
    /// event last; `with_history = false` keeps the current event only.
    fn raw_window(&self, x: &[f64], with_history: bool) -> Vec<Vec<f64>> {
        let width = self.width();
        let mut out = Vec::with_capacity(self.steps.len() + 1);
        if with_history {
            for s in self.steps.iter().rev() {
                let secs = x[s[1]];
                if secs < 0.0 {
                    continue;
                }
                let mut v = vec![0.0; width];
                v[0] = x[s[0]].max(0.0).ln_1p();
                v[1] = secs.ln_1p();
                v[2] = x[s[2]];
                out.push(v);
            }
        }
        let mut v = vec![0.0; width];
        v[3] = 1.0;
        for (k, &j) in self.current.iter().enumerate() {
            v[STEP_CHANNELS + k] = x[j];
        }
        out.push(v);
        out
    }
}

/// Per channel mean and standard deviation: history channels over the training history steps,
/// current-event channels over the training events; the marker channel is left as is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Scaling {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Scaling {
    fn fit(windows: &[Vec<Vec<f64>>], width: usize) -> Scaling {
        let mut sum = vec![0.0; width];
        let mut sq = vec![0.0; width];
        let mut n = vec![0usize; width];
        for w in windows {
            let (current, history) = w.split_last().expect("a window holds its event");
            for v in history {
                for c in 0..3 {
                    sum[c] += v[c];
                    sq[c] += v[c] * v[c];
                    n[c] += 1;
                }
            }
            for c in STEP_CHANNELS..width {
                sum[c] += current[c];
                sq[c] += current[c] * current[c];
                n[c] += 1;
            }
        }
        let mut mean = vec![0.0; width];
        let mut std = vec![1.0; width];
        for c in (0..3).chain(STEP_CHANNELS..width) {
            if n[c] > 0 {
                let m = sum[c] / n[c] as f64;
                let var = (sq[c] / n[c] as f64 - m * m).max(0.0);
                mean[c] = m;
                std[c] = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
            }
        }
        Scaling { mean, std }
    }

    /// Standardises the step vectors in place; the current event's history channels and the
    /// history's feature channels stay 0.
    fn apply(&self, window: &mut [Vec<f64>]) {
        let last = window.len() - 1;
        for (t, v) in window.iter_mut().enumerate() {
            let channels = if t == last {
                STEP_CHANNELS..v.len()
            } else {
                0..3
            };
            for c in channels {
                v[c] = (v[c] - self.mean[c]) / self.std[c];
            }
        }
    }

    fn check(&self, width: usize) -> Result<(), String> {
        if self.mean.len() != width
            || self.std.len() != width
            || self.mean.iter().chain(&self.std).any(|x| !x.is_finite())
            || self.std.iter().any(|&s| s <= 0.0)
        {
            return Err("the scaling does not match the spec's features".into());
        }
        Ok(())
    }
}

/// A fitted network on the spec's history.
struct SequenceScorer {
    params: SequenceParams,
    layout: Layout,
    scaling: Scaling,
    weights: Weights,
    labels: (String, String),
    log: SequenceTrainingLog,
}

const PAYLOAD_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    payload_version: u32,
    params: serde_json::Value,
    scaling: Scaling,
    body: Body,
    head: Perceptron,
    positive_label: String,
    negative_label: String,
    training: SequenceTrainingLog,
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    (p / (1.0 - p)).ln()
}

impl SequenceScorer {
    fn window(&self, x: &[f64], with_history: bool) -> Vec<Vec<f64>> {
        let mut w = self.layout.raw_window(x, with_history);
        self.scaling.apply(&mut w);
        w
    }

    fn proba_of(&self, window: &[Vec<f64>]) -> f64 {
        let refs: Vec<&[f64]> = window.iter().map(Vec::as_slice).collect();
        self.weights.proba(&refs, self.params.length)[1]
    }

    fn check(&self) -> Result<(), String> {
        let width = self.layout.width();
        self.scaling.check(width)?;
        if self.params.length != self.layout.steps.len() + 1 {
            return Err("the window length does not match the spec's history".into());
        }
        if !self.weights.embeddings.is_empty() {
            return Err("a fraud sequence network has no embeddings".into());
        }
        self.weights.body.check(&self.params, width)?;
        self.weights.head.check()?;
        if self.weights.head.d_in() != self.params.pooled_width()
            || self.weights.head.hidden.len() != self.params.dense.len()
            || self.weights.head.output.d_out != 2
        {
            return Err("the dense head does not match the network".into());
        }
        Ok(())
    }
}

fn check_width(x: &[f64], layout: &Layout) -> Result<(), ModelError> {
    let expected = layout.steps.len() * 3 + layout.current.len();
    if x.len() != expected || x.iter().any(|v| !v.is_finite()) {
        return Err(ModelError::InvalidInput {
            feature: "features".into(),
            row: None,
            reason: format!(
                "{} values (finite numbers expected, {expected} of them)",
                x.len()
            ),
        });
    }
    Ok(())
}

impl FeatureScorer for SequenceScorer {
    fn proba(&self, features: &[f64]) -> Result<f64, ModelError> {
        check_width(features, &self.layout)?;
        Ok(self.proba_of(&self.window(features, true)))
    }

    fn explain(&self, features: &[f64]) -> Result<Explanation, ModelError> {
        check_width(features, &self.layout)?;
        let full = logit(self.proba_of(&self.window(features, true)));
        let mut contributions = Vec::with_capacity(self.layout.current.len() + 1);
        let held = self
            .layout
            .steps
            .iter()
            .filter(|s| features[s[1]] >= 0.0)
            .count();
        contributions.push(Contribution {
            feature: self.layout.history_name.clone(),
            value: Value::Integer(held as i64),
            contribution: full - logit(self.proba_of(&self.window(features, false))),
        });
        let mut w = self.window(features, true);
        let last = w.len() - 1;
        for (k, &j) in self.layout.current.iter().enumerate() {
            let c = STEP_CHANNELS + k;
            let kept = w[last][c];
            // The training mean, standardised.
            w[last][c] = 0.0;
            let p = self.proba_of(&w);
            w[last][c] = kept;
            contributions.push(Contribution {
                feature: self.layout.names[j].clone(),
                value: Value::Float(features[j]),
                contribution: full - logit(p),
            });
        }
        let total: f64 = contributions.iter().map(|c| c.contribution).sum();
        contributions.sort_by(|a, b| {
            b.contribution
                .abs()
                .total_cmp(&a.contribution.abs())
                .then_with(|| a.feature.cmp(&b.feature))
        });
        Ok(Explanation {
            space: "log_odds".into(),
            base_value: full - total,
            contributions,
        })
    }

    fn labels(&self) -> (&str, &str) {
        (&self.labels.0, &self.labels.1)
    }

    fn threshold(&self) -> f64 {
        0.5
    }

    fn summary(&self) -> serde_json::Value {
        let mut training = serde_json::json!(self.log);
        if let Some(t) = training.as_object_mut() {
            // The `sequence` family's count of entities in its table; not known here.
            t.remove("entities");
        }
        serde_json::json!({
            "network": learner_json(&self.params),
            "history_entity": self.layout.entity,
            "history_length": self.layout.steps.len(),
            "event_features": self.layout.current.len(),
            "training": training,
        })
    }

    fn payload(&self) -> Result<serde_json::Value, ModelError> {
        serde_json::to_value(Stored {
            payload_version: PAYLOAD_VERSION,
            params: learner_json(&self.params),
            scaling: self.scaling.clone(),
            body: self.weights.body.clone(),
            head: self.weights.head.clone(),
            positive_label: self.labels.0.clone(),
            negative_label: self.labels.1.clone(),
            training: self.log.clone(),
        })
        .map_err(|e| ModelError::Serialization {
            reason: e.to_string(),
        })
    }
}

/// The canonical learner parameters: the network's, less what the spec decides and the text
/// parameters (fraud events carry no free text: the spec's features are numbers).
fn learner_json(p: &SequenceParams) -> serde_json::Value {
    let mut v = p.to_json();
    if let serde_json::Value::Object(m) = &mut v {
        for k in FROM_SPEC.iter().chain(crate::text::PARAM_NAMES) {
            m.remove(*k);
        }
    }
    v
}

impl ScorerLearner for SequenceLearner {
    fn canonical(
        &self,
        params: &Params,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ModelError> {
        if let Some(k) = FROM_SPEC.iter().find(|k| params.contains_key(**k)) {
            return Err(ModelError::invalid_param(
                k,
                &params[*k],
                "nothing: the spec's history feature decides it",
            ));
        }
        match learner_json(&network_params(params, None)?) {
            serde_json::Value::Object(m) => Ok(m),
            _ => Ok(serde_json::Map::new()),
        }
    }

    fn check_spec(&self, spec: &CompiledSpec) -> Result<(), ModelError> {
        Layout::of(spec).map(|_| ())
    }

    fn fit(
        &self,
        spec: &CompiledSpec,
        x: &Table,
        y: &BinaryTarget,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FeatureScorer>, ModelError> {
        let layout = Layout::of(spec)?;
        let params = network_params(params, Some(&layout))?;
        let n = x.n_rows();
        let width = layout.width();
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                x.row(i)
                    .iter()
                    .map(|v| match v {
                        Value::Float(f) => *f,
                        Value::Integer(k) => *k as f64,
                        _ => 0.0,
                    })
                    .collect()
            })
            .collect();
        let mut raw: Vec<Vec<Vec<f64>>> = rows.iter().map(|r| layout.raw_window(r, true)).collect();
        let scaling = Scaling::fit(&raw, width);
        let mut events = Vec::new();
        let mut windows = Vec::with_capacity(n);
        for w in &mut raw {
            scaling.apply(w);
            let start = events.len();
            events.extend(w.drain(..).map(|numeric| EncodedRow {
                numeric,
                ..EncodedRow::default()
            }));
            windows.push((start..events.len()).collect());
        }
        let classes: Vec<u32> = y.y.iter().map(|&v| u32::from(v >= 0.5)).collect();
        if classes.iter().all(|&c| c == classes[0]) {
            return Err(ModelError::NotEnoughData {
                reason: "the training events hold one class only".into(),
            });
        }
        let trained = crate::sequence::train_network(
            &Instances {
                events: &events,
                windows: &windows,
                y: &classes,
                n_classes: 2,
            },
            &params,
            |_, _| (Vec::new(), width),
            ctx,
        )?;
        let scorer = SequenceScorer {
            params,
            layout,
            scaling,
            weights: trained.weights,
            labels: (y.positive_label.clone(), y.negative_label.clone()),
            log: trained.log,
        };
        scorer
            .check()
            .map_err(|reason| ModelError::Numerical { reason })?;
        Ok(Box::new(scorer))
    }

    fn load(
        &self,
        spec: &CompiledSpec,
        payload: &serde_json::Value,
    ) -> Result<Box<dyn FeatureScorer>, ModelError> {
        let bad = |r: String| ModelError::invalid_artifact(format!("fraud_sequence payload: {r}"));
        let stored: Stored =
            serde_json::from_value(payload.clone()).map_err(|e| bad(e.to_string()))?;
        if stored.payload_version != PAYLOAD_VERSION {
            return Err(bad(format!(
                "version {} (this build reads {PAYLOAD_VERSION})",
                stored.payload_version
            )));
        }
        let layout = Layout::of(spec).map_err(|e| bad(e.to_string()))?;
        let raw = aurum_contract::policy::params_from_json("fraud_sequence", &stored.params)?;
        let params = network_params(&raw, Some(&layout)).map_err(|e| bad(e.to_string()))?;
        let scorer = SequenceScorer {
            params,
            layout,
            scaling: stored.scaling,
            weights: Weights {
                embeddings: Vec::new(),
                texts: Vec::new(),
                body: stored.body,
                head: stored.head,
            },
            labels: (stored.positive_label, stored.negative_label),
            log: stored.training,
        };
        scorer.check().map_err(bad)?;
        Ok(Box::new(scorer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurum_contract::{FittedModel, ModelFamily, TrainingData};
    use aurum_core::{CancelToken, NoProgress, Target};
    use aurum_fraud::event_family::handbook_history_spec;
    use aurum_fraud::{Event, FeatureEngine, TrainingLabel, replay_into};

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The handbook transactions of the first `customers` customers in time order, as the job
    /// runner shows them to a fraud family (event fields), with the label and the day.
    fn handbook(customers: i64) -> (Table, BinaryTarget, Vec<i64>) {
        let bytes = include_bytes!("../../../data/fraud/handbook_sim_transactions.csv");
        let table = aurum_data::read_csv(bytes, &Default::default()).unwrap();
        let int = |name: &str, i: usize| match table.column(name).unwrap().data.get(i) {
            Value::Integer(v) => v,
            other => panic!("{name}: {other:?}"),
        };
        let mut order: Vec<usize> = (0..table.n_rows())
            .filter(|&i| int("CUSTOMER_ID", i) < customers)
            .collect();
        order.sort_by_key(|&i| (int("TX_TIME_SECONDS", i), i));
        let days = order.iter().map(|&i| int("TX_TIME_DAYS", i)).collect();
        let y = order.iter().map(|&i| int("TX_FRAUD", i) as f64).collect();
        let table = table
            .take(&order)
            .select([
                "TRANSACTION_ID",
                "TX_TIME_SECONDS",
                "CUSTOMER_ID",
                "TERMINAL_ID",
                "TX_AMOUNT",
            ])
            .unwrap();
        let target = BinaryTarget {
            column: "TX_FRAUD".into(),
            y,
            positive_label: "1".into(),
            negative_label: "0".into(),
        };
        (table, target, days)
    }

    fn fit(table: &Table, y: &BinaryTarget, pairs: &[(&str, &str)]) -> Box<dyn FittedModel> {
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 7,
        };
        let target = Target::Binary(y.clone());
        FRAUD_SEQUENCE
            .fit(&TrainingData::new(table, &target), &params(pairs), &ctx)
            .unwrap()
    }

    fn auc(scores: &[f64], positive: &[bool]) -> f64 {
        aurum_fraud::metrics::roc_auc(scores, positive).unwrap()
    }

    #[test]
    fn parameters_and_specs_are_checked_by_name() {
        let canonical = FRAUD_SEQUENCE.validate_params(&params(&[])).unwrap();
        assert_eq!(canonical["spec"], "handbook_history");
        assert_eq!(canonical["architecture"], "transformer");
        assert!(canonical.get("entity").is_none() && canonical.get("length").is_none());
        let err = |pairs: &[(&str, &str)]| FRAUD_SEQUENCE.validate_params(&params(pairs));
        let e = err(&[("entity", "CUSTOMER_ID")]).unwrap_err();
        assert_eq!(e.code(), "unknown_param", "{e}");
        let e = err(&[("spec", "handbook")]).unwrap_err();
        assert!(
            e.to_string().contains("spec") && e.to_string().contains("history"),
            "{e}"
        );
        let e = err(&[("heads", "3")]).unwrap_err();
        assert!(e.to_string().contains("heads"), "{e}");
        assert!(
            FRAUD_SEQUENCE
                .load_payload(b"{\"payload_version\": 1}")
                .is_err()
        );
    }

    /// Trained on the first 120 days of the customers numbered below 1500 (166 of them). Scored on the rest from a full-stream
    /// replay with labels known a week late (as a live process that receives its labels sees
    /// the events), the network ranks frauds better than the amount alone. Scored as the events
    /// route scores (end-of-training state, every event scored then applied), the scores equal
    /// the model's own table scoring to the bit, and a reload gives the same bits.
    #[test]
    fn reads_the_engine_history_learns_and_scores_live_like_the_replay() {
        let (table, y, days) = handbook(1500);
        let split = days.iter().position(|&d| d >= 120).unwrap();
        let train_idx: Vec<usize> = (0..split).collect();
        let test_idx: Vec<usize> = (split..table.n_rows()).collect();
        let train_y = BinaryTarget {
            y: y.y[..split].to_vec(),
            ..y.clone()
        };
        let test = table.take(&test_idx);
        let fraud: Vec<bool> = test_idx.iter().map(|&i| y.y[i] >= 0.5).collect();
        assert!(fraud.iter().filter(|&&f| f).count() >= 30);
        let spec = handbook_history_spec().compile().unwrap();
        let (all, all_labels) = labelled(&spec, &table, &y.y);
        let matrix = aurum_fraud::replay(spec.source(), &all, &all_labels, 7 * 86_400).unwrap();
        let amount: Vec<f64> = all[split..].iter().map(|e| e.amount.unwrap()).collect();
        let amount_auc = auc(&amount, &fraud);
        for arch in ["cnn", "transformer"] {
            let m = fit(
                &table.take(&train_idx),
                &train_y,
                &[
                    ("architecture", arch),
                    ("epochs", "5"),
                    ("class_weight", "balanced"),
                ],
            );
            let model = m
                .as_any()
                .and_then(|a| a.downcast_ref::<aurum_fraud::event_family::FraudModel>())
                .unwrap();
            assert_eq!(model.feature_spec(), spec.source());
            let replayed: Vec<f64> = matrix.rows[split..]
                .iter()
                .map(|x| model.score(x).unwrap())
                .collect();
            let model_auc = auc(&replayed, &fraud);
            eprintln!(
                "fraud_sequence {arch}: held-out ROC-AUC {model_auc:.4} (amount {amount_auc:.4}); {}",
                m.summary()["scorer"]["training"]
            );
            assert!(
                model_auc > amount_auc + 0.1,
                "{arch}: ROC-AUC {model_auc} against the amount's {amount_auc}"
            );
            let p = m.as_binary().unwrap().predict_proba_table(&test).unwrap();

            // Live: the end-of-training state (the training replay, labels known a week late),
            // then every held-out event scored and applied as the events route does; the same
            // scores, to the bit.
            let live = FeatureEngine::new(spec.source()).unwrap();
            let (history, labels) = labelled(&spec, &table, &train_y.y);
            replay_into(&live, &history, &labels, 7 * 86_400).unwrap();
            for (k, i) in test_idx.iter().enumerate().take(400) {
                let e = event(&spec, &table, *i);
                let x = live.score_and_apply(&e).unwrap();
                let d = model.decide(&e, &x).unwrap();
                assert_eq!(d.score.to_bits(), p[k].to_bits(), "event {k}");
                if k == 0 || d.action != aurum_fraud::Action::Allow {
                    let (_, ex) = model.score_features(&x).unwrap();
                    assert!(
                        ex.contributions
                            .iter()
                            .any(|c| c.feature == "customer_id_history_7d")
                    );
                    let total: f64 = ex.contributions.iter().map(|c| c.contribution).sum();
                    let lo = (d.score / (1.0 - d.score)).ln();
                    assert!((ex.base_value + total - lo).abs() < 1e-9);
                }
            }

            let payload = m.payload().unwrap();
            let back = FRAUD_SEQUENCE.load_payload(&payload).unwrap();
            let again = back
                .as_binary()
                .unwrap()
                .predict_proba_table(&test)
                .unwrap();
            assert!(
                again
                    .iter()
                    .zip(&p)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
        }
    }

    /// The rows of `table` as events of `spec`, and each one's label from `y` (known when the
    /// replay's label delay says).
    fn labelled(spec: &CompiledSpec, table: &Table, y: &[f64]) -> (Vec<Event>, Vec<TrainingLabel>) {
        let events: Vec<Event> = (0..y.len()).map(|i| event(spec, table, i)).collect();
        let labels = events
            .iter()
            .zip(y)
            .map(|(e, &v)| TrainingLabel {
                event_id: e.id.clone(),
                fraud: v >= 0.5,
                known_at: None,
            })
            .collect();
        (events, labels)
    }

    fn event(spec: &CompiledSpec, table: &Table, i: usize) -> Event {
        let row = table.row(i);
        let names = [
            "TRANSACTION_ID",
            "TX_TIME_SECONDS",
            "CUSTOMER_ID",
            "TERMINAL_ID",
            "TX_AMOUNT",
        ];
        let cells: Vec<(&str, serde_json::Value)> = names
            .iter()
            .zip(&row)
            .map(|(n, v)| {
                let j = match v {
                    Value::Integer(k) => serde_json::json!(k),
                    Value::Float(x) => serde_json::json!(x),
                    other => panic!("{other:?}"),
                };
                (*n, j)
            })
            .collect();
        Event::from_map(spec, cells.iter().map(|(k, v)| (*k, v))).unwrap()
    }

    #[test]
    fn same_seed_same_payload() {
        let (table, y, days) = handbook(60);
        let split = days.iter().position(|&d| d >= 60).unwrap();
        let idx: Vec<usize> = (0..split).collect();
        let train_y = BinaryTarget {
            y: y.y[..split].to_vec(),
            ..y.clone()
        };
        let t = table.take(&idx);
        // The network's part of the payload (the end-of-training state is a snapshot of hash
        // maps, whose order is not fixed).
        let network = |m: &dyn FittedModel| {
            let v: serde_json::Value = serde_json::from_slice(&m.payload().unwrap()).unwrap();
            v["scorer"].to_string()
        };
        let a = fit(&t, &train_y, &[("epochs", "2"), ("architecture", "cnn")]);
        let b = fit(&t, &train_y, &[("epochs", "2"), ("architecture", "cnn")]);
        assert_eq!(network(a.as_ref()), network(b.as_ref()));
        let c = fit(
            &t,
            &train_y,
            &[("epochs", "2"), ("architecture", "cnn"), ("seed", "99")],
        );
        assert_ne!(network(a.as_ref()), network(c.as_ref()));
    }

    /// The handbook benchmark: the first 70 % of the time span trains (days 0–127), the rest is
    /// scored from one full-stream replay with every label known 7 days after its transaction,
    /// as `bench/fraud/run.sh` scores `fraud_gbdt` (BENCHMARKS.md). Run with
    /// `cargo test -p aurum-nn --lib fraud_sequence_benchmark -- --ignored --nocapture`.
    #[test]
    #[ignore = "benchmark: several minutes"]
    fn fraud_sequence_benchmark() {
        use aurum_fraud::event_family::{FraudModel, handbook_spec};
        use aurum_fraud::metrics::{average_precision, precision_recall_at_daily_k};
        let (table, y, days) = handbook(i64::MAX);
        let split = days.iter().position(|&d| d >= 128).unwrap();
        let train_y = BinaryTarget {
            y: y.y[..split].to_vec(),
            ..y.clone()
        };
        let train = table.take(&(0..split).collect::<Vec<_>>());
        let fraud: Vec<bool> = y.y[split..].iter().map(|&v| v >= 0.5).collect();
        let test_days = &days[split..];
        eprintln!(
            "{} training events, {} held out ({} frauds)",
            split,
            fraud.len(),
            fraud.iter().filter(|&&f| f).count()
        );
        let threads = rayon::current_num_threads();
        for (family, spec, pairs) in [
            (
                &aurum_fraud::gbdt_family::FRAUD_GBDT,
                handbook_spec(),
                vec![("spec", "handbook")],
            ),
            (
                &FRAUD_SEQUENCE,
                handbook_history_spec(),
                vec![("architecture", "cnn")],
            ),
            (
                &FRAUD_SEQUENCE,
                handbook_history_spec(),
                vec![("architecture", "transformer")],
            ),
        ] {
            let (events, labels) = labelled(&spec.compile().unwrap(), &table, &y.y);
            let matrix = aurum_fraud::replay(&spec, &events, &labels, 7 * 86_400).unwrap();
            let cancel = CancelToken::new();
            let ctx = FitContext {
                progress: &NoProgress,
                cancel: &cancel,
                seed: 42,
            };
            let target = Target::Binary(train_y.clone());
            let started = std::time::Instant::now();
            let m = family
                .fit(&TrainingData::new(&train, &target), &params(&pairs), &ctx)
                .unwrap();
            let fit_s = started.elapsed().as_secs_f64();
            let model = m
                .as_any()
                .and_then(|a| a.downcast_ref::<FraudModel>())
                .unwrap();
            let started = std::time::Instant::now();
            let scores: Vec<f64> = matrix.rows[split..]
                .iter()
                .map(|x| model.score(x).unwrap())
                .collect();
            let per_event_us = started.elapsed().as_secs_f64() * 1e6 / scores.len() as f64;
            let budget = precision_recall_at_daily_k(test_days, &scores, &fraud, 100).unwrap();
            eprintln!(
                "{} {:?}: ROC-AUC {:.3}, PR-AUC {:.3}, precision@100/day {:.3}, recall@100/day {:.3}; fit {fit_s:.0} s, scoring {per_event_us:.1} µs/event ({threads} threads); {}",
                m.family(),
                pairs,
                auc(&scores, &fraud),
                average_precision(&scores, &fraud).unwrap(),
                budget.mean_precision,
                budget.recall,
                m.summary()["scorer"]["training"]
            );
        }
    }
}
