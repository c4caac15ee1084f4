//! Models trained elsewhere: LightGBM text models and XGBoost JSON models, evaluated by
//! [`aurum_trees`] exactly as the libraries do, behind the same [`FittedModel`] contract as
//! native families (predict, TreeSHAP explanations, reasons, decisions, versioned artifacts).
//!
//! Inputs: one numeric feature per model feature, named as in the model file; a missing value
//! (`null`) is NaN and takes the tree's default direction, exactly as in the library. Categorical
//! features of such models take their integer category codes. Only binary-objective models are
//! imported (the predicted probability is of class `1`).

use aurum_core::{
    ColumnType, Contribution, Explanation, Field, Params, Prediction, Schema, Table, Value,
};
use aurum_trees::{Objective, TreeModel};
use serde::{Deserialize, Serialize};

use crate::policy::{CreditDecision, Decision, ScoreScaling};
use crate::reasons::{ReasonTable, rank_adverse};
use crate::{Assessment, FitContext, FittedModel, ModelError, ModelFamily};
use aurum_contract::{
    BinaryClassifier, FamilySpec, TableScores, Task, TrainingData, default_points,
};

const PAYLOAD_VERSION: u32 = 1;
const PARAM_NAMES: &[&str] = &["threshold"];

/// The library a tree ensemble was trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Library {
    /// LightGBM, text model format.
    Lightgbm,
    /// XGBoost, JSON model format.
    Xgboost,
}

impl Library {
    /// The family name of this library's imported models.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    fn spec(self) -> &'static FamilySpec {
        match self {
            Library::Lightgbm => &LIGHTGBM_SPEC,
            Library::Xgboost => &XGBOOST_SPEC,
        }
    }
}

const LIGHTGBM_SPEC: FamilySpec = FamilySpec {
    name: "lightgbm",
    aliases: &[],
    task: Task::Binary,
    summary: "A LightGBM binary model trained elsewhere, imported from its text format.",
    params: PARAM_NAMES,
    trainable: false,
    importable: true,
};

const XGBOOST_SPEC: FamilySpec = FamilySpec {
    name: "xgboost",
    aliases: &[],
    task: Task::Binary,
    summary: "An XGBoost binary model trained elsewhere, imported from its JSON format.",
    params: PARAM_NAMES,
    trainable: false,
    importable: true,
};

/// The family of imported LightGBM models.
pub const LIGHTGBM: ImportedFamily = ImportedFamily(Library::Lightgbm);
/// The family of imported XGBoost models.
pub const XGBOOST: ImportedFamily = ImportedFamily(Library::Xgboost);

/// Imported tree ensembles of one library.
#[derive(Clone, Copy, Debug)]
pub struct ImportedFamily(pub Library);

/// Parses a model file of `library` (LightGBM: text format; XGBoost: JSON) into a servable
/// model with label threshold `threshold`.
pub fn import_tree_model(
    library: Library,
    bytes: &[u8],
    threshold: f64,
) -> Result<Box<dyn FittedModel>, ModelError> {
    check_threshold(threshold)?;
    let trees = match library {
        Library::Lightgbm => {
            let text = std::str::from_utf8(bytes).map_err(|e| ModelError::InvalidInput {
                feature: "model file".into(),
                row: None,
                reason: format!("a LightGBM text model must be UTF-8: {e}"),
            })?;
            TreeModel::from_lightgbm_text(text)
        }
        Library::Xgboost => TreeModel::from_xgboost_json(bytes),
    }
    .map_err(|e| ModelError::InvalidInput {
        feature: "model file".into(),
        row: None,
        reason: e.to_string(),
    })?;
    Ok(Box::new(ImportedModel::new(library, trees, threshold)?))
}

fn check_threshold(t: f64) -> Result<(), ModelError> {
    if t.is_finite() && t > 0.0 && t < 1.0 {
        Ok(())
    } else {
        Err(ModelError::InvalidParam {
            name: "threshold".into(),
            value: t.to_string(),
            expected: "a number strictly between 0 and 1".into(),
        })
    }
}

fn parse_threshold(params: &Params) -> Result<f64, ModelError> {
    if let Some(k) = params.keys().find(|k| !PARAM_NAMES.contains(&k.as_str())) {
        return Err(ModelError::UnknownParam {
            model: "imported",
            name: k.clone(),
            allowed: PARAM_NAMES.to_vec(),
        });
    }
    let t = match params.get("threshold") {
        None => 0.5,
        Some(v) => v
            .trim()
            .parse::<f64>()
            .map_err(|_| ModelError::InvalidParam {
                name: "threshold".into(),
                value: v.clone(),
                expected: "a number strictly between 0 and 1".into(),
            })?,
    };
    check_threshold(t)?;
    Ok(t)
}

impl ModelFamily for ImportedFamily {
    fn spec(&self) -> &FamilySpec {
        self.0.spec()
    }

    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        Ok(serde_json::json!({ "threshold": parse_threshold(params)? }))
    }

    fn import(&self, bytes: &[u8], params: &Params) -> Result<Box<dyn FittedModel>, ModelError> {
        import_tree_model(self.0, bytes, parse_threshold(params)?)
    }

    fn fit(
        &self,
        _data: &TrainingData<'_>,
        _params: &Params,
        _ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError> {
        Err(ModelError::InvalidParam {
            name: "kind".into(),
            value: self.0.name().into(),
            expected: "a family aurum trains (logistic, scorecard, gbdt); bring LightGBM and \
                       XGBoost models trained elsewhere with `aurum import`"
                .into(),
        })
    }

    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError> {
        let stored: StoredImported =
            serde_json::from_slice(payload).map_err(|e| ModelError::InvalidArtifact {
                reason: format!("imported model payload: {e}"),
            })?;
        if stored.payload_version != PAYLOAD_VERSION {
            return Err(ModelError::InvalidArtifact {
                reason: format!(
                    "imported model payload version {} is not supported (this aurum reads {PAYLOAD_VERSION})",
                    stored.payload_version
                ),
            });
        }
        let bytes = serde_json::to_vec(&stored.trees).map_err(|e| ModelError::InvalidArtifact {
            reason: e.to_string(),
        })?;
        let trees = TreeModel::from_bytes(&bytes).map_err(|e| ModelError::InvalidArtifact {
            reason: e.to_string(),
        })?;
        check_threshold(stored.threshold).map_err(|e| ModelError::InvalidArtifact {
            reason: e.to_string(),
        })?;
        Ok(Box::new(
            ImportedModel::new(self.0, trees, stored.threshold).map_err(|e| {
                ModelError::InvalidArtifact {
                    reason: e.to_string(),
                }
            })?,
        ))
    }
}

#[derive(Serialize, Deserialize)]
struct StoredImported {
    payload_version: u32,
    threshold: f64,
    trees: serde_json::Value,
}

/// A servable imported tree ensemble.
#[derive(Debug)]
pub struct ImportedModel {
    library: Library,
    trees: TreeModel,
    schema: Schema,
    threshold: f64,
}

impl ImportedModel {
    fn new(library: Library, trees: TreeModel, threshold: f64) -> Result<Self, ModelError> {
        if trees.objective() != Objective::Binary {
            return Err(ModelError::InvalidInput {
                feature: "model file".into(),
                row: None,
                reason: "only binary-classification models can be imported (this one is a regression model)".into(),
            });
        }
        let fields = trees
            .feature_names()
            .iter()
            .map(|n| Field::new(n.clone(), ColumnType::Float))
            .collect();
        let schema = Schema::new(fields).map_err(|e| ModelError::InvalidInput {
            feature: "model file".into(),
            row: None,
            reason: e.to_string(),
        })?;
        // The TreeSHAP tables are built now, at load, not by the first declined applicant.
        trees.prepare_contributions();
        Ok(ImportedModel {
            library,
            trees,
            schema,
            threshold,
        })
    }

    /// The underlying evaluator (for batch scoring of numeric matrices).
    pub fn trees(&self) -> &TreeModel {
        &self.trees
    }

    fn numeric_row(&self, row: &[Value], out: &mut Vec<f64>) -> Result<(), ModelError> {
        if row.len() != self.schema.len() {
            return Err(ModelError::RowLength {
                row: None,
                expected: self.schema.len(),
                got: row.len(),
            });
        }
        out.clear();
        for (v, f) in row.iter().zip(&self.schema.fields) {
            out.push(match v {
                Value::Null => f64::NAN,
                Value::Float(x) if x.is_finite() => *x,
                Value::Integer(i) => *i as f64,
                Value::Boolean(b) => f64::from(u8::from(*b)),
                Value::Float(_) => {
                    return Err(ModelError::InvalidInput {
                        feature: f.name.clone(),
                        row: None,
                        reason: "must be a finite number (send null for missing)".into(),
                    });
                }
                Value::Str(_) | Value::Date(_) | Value::DateTime(_) => {
                    return Err(ModelError::InvalidInput {
                        feature: f.name.clone(),
                        row: None,
                        reason: "must be a number (imported models take category codes)".into(),
                    });
                }
            });
        }
        Ok(())
    }

    /// TreeSHAP log-odds contributions of a converted row, the bias last.
    fn contributions(&self, x: &[f64]) -> Result<Vec<f64>, ModelError> {
        self.trees
            .contributions(x)
            .map_err(|e| ModelError::InvalidInput {
                feature: "row".into(),
                row: None,
                reason: e.to_string(),
            })
    }

    /// The explanation of `row` from its contributions `phi` (bias last), largest first.
    fn explanation_of(&self, row: &[Value], phi: &[f64]) -> Explanation {
        let base_value = phi.last().copied().unwrap_or(0.0);
        let mut contributions: Vec<Contribution> = self
            .schema
            .fields
            .iter()
            .zip(row)
            .zip(phi)
            .map(|((f, v), c)| Contribution {
                feature: f.name.clone(),
                value: v.clone(),
                contribution: *c,
            })
            .collect();
        contributions.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        Explanation {
            space: "log_odds".into(),
            base_value,
            contributions,
        }
    }

    fn proba(&self, x: &[f64]) -> Result<f64, ModelError> {
        self.trees.predict(x).map_err(|e| ModelError::InvalidInput {
            feature: "row".into(),
            row: None,
            reason: e.to_string(),
        })
    }
}

impl FittedModel for ImportedModel {
    fn family(&self) -> &str {
        self.library.name()
    }

    fn task(&self) -> Task {
        Task::Binary
    }

    fn input_schema(&self) -> &Schema {
        &self.schema
    }

    fn params(&self) -> serde_json::Value {
        serde_json::json!({ "threshold": self.threshold })
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "library": self.library.name(),
            "trees": self.trees.n_trees(),
            "features": self.trees.n_features(),
        })
    }

    fn details(&self) -> serde_json::Value {
        self.summary()
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        let bytes = self
            .trees
            .to_bytes()
            .map_err(|e| ModelError::Serialization {
                reason: e.to_string(),
            })?;
        let trees: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| ModelError::Serialization {
                reason: e.to_string(),
            })?;
        serde_json::to_vec(&StoredImported {
            payload_version: PAYLOAD_VERSION,
            threshold: self.threshold,
            trees,
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
}

impl BinaryClassifier for ImportedModel {
    fn threshold(&self) -> f64 {
        self.threshold
    }

    fn labels(&self) -> (&str, &str) {
        ("1", "0")
    }

    fn predict(&self, rows: &[Vec<Value>]) -> Result<Vec<Prediction>, ModelError> {
        let mut buf = Vec::with_capacity(self.schema.len());
        rows.iter()
            .map(|row| {
                self.numeric_row(row, &mut buf)?;
                let p = self.proba(&buf)?;
                let positive = p >= self.threshold;
                Ok(Prediction {
                    probability: p,
                    label: if positive { "1" } else { "0" }.to_string(),
                    positive,
                })
            })
            .collect()
    }

    fn predict_proba_one(&self, row: &[Value]) -> Result<f64, ModelError> {
        let mut buf = Vec::with_capacity(self.schema.len());
        self.numeric_row(row, &mut buf)?;
        self.proba(&buf)
    }

    fn predict_proba_table(&self, table: &Table) -> Result<Vec<f64>, ModelError> {
        (0..table.n_rows())
            .map(|i| self.predict_proba_one(&table.row(i)))
            .collect()
    }

    fn explain(&self, row: &[Value]) -> Result<Explanation, ModelError> {
        let mut buf = Vec::with_capacity(self.schema.len());
        self.numeric_row(row, &mut buf)?;
        Ok(self.explanation_of(row, &self.contributions(&buf)?))
    }

    /// One conversion, one walk through the trees, and one TreeSHAP pass shared by the reasons
    /// and the explanation, only when either is needed: the answer of `decide` and `explain`
    /// (tested), without scoring the row twice and explaining it a third time.
    fn assess(&self, row: &[Value], explain: bool) -> Result<Assessment, ModelError> {
        let mut x = Vec::with_capacity(self.schema.len());
        self.numeric_row(row, &mut x)?;
        let pd = self.proba(&x)?;
        let (decision, attribute) = self.decision_of(pd, explain);
        let phi = if attribute {
            Some(self.contributions(&x)?)
        } else {
            None
        };
        Ok(self.assessment(row, decision, phi.as_deref(), explain))
    }

    /// [`ImportedModel::assess`] for a batch: the rows converted into one row-major matrix,
    /// one [`TreeModel::predict_batch`], then one [`TreeModel::contributions_batch`] over the
    /// rows that need attributions (refer, decline, or `explain`). Both batch calls give the
    /// row calls' values bit for bit, so the answers are `assess`'s (tested).
    fn assess_batch(
        &self,
        rows: &[Vec<Value>],
        explain: bool,
    ) -> Result<Vec<Assessment>, ModelError> {
        let p = self.schema.len();
        if p == 0 {
            return rows
                .iter()
                .enumerate()
                .map(|(i, row)| self.assess(row, explain).map_err(|e| e.at_row(i)))
                .collect();
        }
        let mut x = Vec::with_capacity(rows.len() * p);
        let mut buf = Vec::with_capacity(p);
        for (i, row) in rows.iter().enumerate() {
            self.numeric_row(row, &mut buf).map_err(|e| e.at_row(i))?;
            x.extend_from_slice(&buf);
        }
        let mut pd = vec![0.0; rows.len()];
        self.trees
            .predict_batch(&x, p, &mut pd)
            .map_err(tree_error)?;
        let decisions: Vec<(CreditDecision, bool)> =
            pd.iter().map(|&pd| self.decision_of(pd, explain)).collect();
        let attributed: Vec<usize> = (0..rows.len()).filter(|&i| decisions[i].1).collect();
        let mut selected = Vec::with_capacity(attributed.len() * p);
        for &i in &attributed {
            selected.extend_from_slice(&x[i * p..(i + 1) * p]);
        }
        let mut phi = vec![0.0; attributed.len() * (p + 1)];
        self.trees
            .contributions_batch(&selected, p, &mut phi)
            .map_err(tree_error)?;
        let mut phi_rows = phi.chunks_exact(p + 1);
        Ok(rows
            .iter()
            .zip(decisions)
            .map(|(row, (decision, attribute))| {
                let phi = if attribute { phi_rows.next() } else { None };
                self.assessment(row, decision, phi, explain)
            })
            .collect())
    }

    fn score_points_table(&self, table: &Table) -> Result<Option<Vec<f64>>, ModelError> {
        Ok(Some(default_points(&self.predict_proba_table(table)?)))
    }

    /// One pass over the table: the points are the default scaling of the PDs.
    fn score_table(&self, table: &Table) -> Result<TableScores, ModelError> {
        Ok(TableScores::from_pd(self.predict_proba_table(table)?))
    }
}

fn tree_error(e: aurum_trees::TreeError) -> ModelError {
    ModelError::InvalidInput {
        feature: "row".into(),
        row: None,
        reason: e.to_string(),
    }
}

impl ImportedModel {
    /// The decision for PD `pd` (no reasons yet), and whether the row needs attributions.
    fn decision_of(&self, pd: f64, explain: bool) -> (CreditDecision, bool) {
        let score = Some(ScoreScaling::default().score_from_pd(pd));
        let decision = self.policy().decide(pd, score);
        let adverse = decision != Decision::Approve;
        (
            CreditDecision {
                pd,
                score,
                decision,
                reasons: Vec::new(),
            },
            explain || adverse,
        )
    }

    /// Completes `decision` with the reasons (refer, decline) and the explanation (`explain`)
    /// from the row's contributions `phi` (bias last), present when either is needed.
    fn assessment(
        &self,
        row: &[Value],
        mut decision: CreditDecision,
        phi: Option<&[f64]>,
        explain: bool,
    ) -> Assessment {
        if let Some(phi) = phi
            && decision.decision != Decision::Approve
        {
            decision.reasons = rank_adverse(
                self.schema
                    .fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .zip(phi.iter().copied()),
                &ReasonTable::new(),
                self.policy().max_reasons,
            );
        }
        let explanation = match phi {
            Some(phi) if explain => Some(self.explanation_of(row, phi)),
            _ => None,
        };
        Assessment {
            decision,
            explanation,
        }
    }
}
