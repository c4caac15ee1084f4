//! The `isolation_forest` model family (task `anomaly`): unsupervised scoring of rows for
//! cold-start fraud screening, registered on the open contract like every family.
//!
//! Features are the numeric columns of the dataset (float, integer and boolean); a missing cell
//! takes the training median, so serving never fails on a gap. The score is the isolation
//! forest's `2^(−E[h]/c(ψ))`, in `(0, 1]`, higher for rows that isolate quickly; `anomalous` is
//! set at the training scores' `1 − contamination` quantile.

use aurum_contract::{
    FamilySpec, FitContext, FittedModel, ModelError, ModelFamily, Output, OutputSpec, ParamReader,
    Params, Task, TrainingData,
};
use aurum_core::{ColumnData, ColumnType, Field, Schema, Value};
use serde::{Deserialize, Serialize};

use crate::{IsolationForest, IsolationForestParams};

/// The parameters the family accepts.
pub const PARAM_NAMES: &[&str] = &["n_trees", "sample_size", "contamination"];

/// What the `isolation_forest` family is.
pub const SPEC: FamilySpec = FamilySpec {
    name: "isolation_forest",
    aliases: &["iforest"],
    task: Task::Anomaly,
    summary: "Isolation forest on the numeric columns: unsupervised anomaly scores for \
              cold-start fraud screening.",
    params: PARAM_NAMES,
    trainable: true,
    importable: false,
};

const PAYLOAD_VERSION: u32 = 1;

/// The `isolation_forest` family.
#[derive(Clone, Copy, Debug, Default)]
pub struct IsolationForestFamily;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Typed {
    n_trees: usize,
    sample_size: usize,
    contamination: f64,
}

impl Typed {
    fn parse(params: &Params) -> Result<Self, ModelError> {
        let r = ParamReader::new("isolation_forest", params, PARAM_NAMES)?;
        Ok(Typed {
            n_trees: r.usize("n_trees", 1..=10_000)?.unwrap_or(100),
            sample_size: r.usize("sample_size", 2..=1_000_000)?.unwrap_or(256),
            contamination: r
                .f64(
                    "contamination",
                    |c| c > 0.0 && c < 0.5,
                    "a share in (0, 0.5)",
                )?
                .unwrap_or(0.01),
        })
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A fitted isolation forest with its imputation medians and flag threshold.
#[derive(Debug, Serialize, Deserialize)]
pub struct IsolationForestModel {
    payload_version: u32,
    params: Typed,
    schema: Schema,
    medians: Vec<f64>,
    threshold: f64,
    forest: IsolationForest,
}

fn from_fraud(e: crate::FraudError) -> ModelError {
    ModelError::InvalidInput {
        feature: "rows".into(),
        row: None,
        reason: e.to_string(),
    }
}

fn cell(v: &Value) -> Option<f64> {
    match v {
        Value::Float(x) if x.is_finite() => Some(*x),
        Value::Integer(i) => Some(*i as f64),
        Value::Boolean(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

impl ModelFamily for IsolationForestFamily {
    fn spec(&self) -> &FamilySpec {
        &SPEC
    }

    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        Typed::parse(params).map(|t| t.to_json())
    }

    fn fit(
        &self,
        data: &TrainingData<'_>,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError> {
        let typed = Typed::parse(params)?;
        let t = data.features;
        let mut fields = Vec::new();
        let mut columns: Vec<Vec<Option<f64>>> = Vec::new();
        for c in t.columns() {
            let values: Vec<Option<f64>> = match &c.data {
                ColumnData::Float(v) => v.iter().map(|x| x.filter(|x| x.is_finite())).collect(),
                ColumnData::Integer(v) => v.iter().map(|x| x.map(|i| i as f64)).collect(),
                ColumnData::Boolean(v) => v
                    .iter()
                    .map(|x| x.map(|b| f64::from(u8::from(b))))
                    .collect(),
                _ => continue,
            };
            fields.push(Field::new(c.name.clone(), c.data.column_type()));
            columns.push(values);
        }
        if fields.is_empty() {
            return Err(ModelError::NoUsableFeatures {
                reason: "an isolation forest needs at least one numeric column".into(),
            });
        }
        let medians: Vec<f64> = columns
            .iter()
            .map(|c| {
                let mut v: Vec<f64> = c.iter().flatten().copied().collect();
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied().unwrap_or(0.0)
            })
            .collect();
        let rows: Vec<Vec<f64>> = (0..t.n_rows())
            .map(|i| {
                columns
                    .iter()
                    .zip(&medians)
                    .map(|(c, m)| c[i].unwrap_or(*m))
                    .collect()
            })
            .collect();
        ctx.check_cancelled()?;
        let forest = IsolationForest::fit(
            &rows,
            &IsolationForestParams {
                n_trees: typed.n_trees,
                sample_size: typed.sample_size,
                seed: ctx.seed,
            },
        )
        .map_err(from_fraud)?;
        let mut scores = forest.score_batch(&rows).map_err(from_fraud)?;
        scores.sort_by(f64::total_cmp);
        let at = ((1.0 - typed.contamination) * scores.len() as f64) as usize;
        let threshold = scores[at.min(scores.len() - 1)];
        ctx.progress.report("fit", 1.0);
        Ok(Box::new(IsolationForestModel {
            payload_version: PAYLOAD_VERSION,
            params: typed,
            schema: Schema { fields },
            medians,
            threshold,
            forest,
        }))
    }

    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError> {
        let m: IsolationForestModel =
            serde_json::from_slice(payload).map_err(|e| ModelError::InvalidArtifact {
                reason: format!("isolation forest payload: {e}"),
            })?;
        if m.payload_version != PAYLOAD_VERSION
            || m.medians.len() != m.schema.len()
            || m.forest.n_features != m.schema.len()
            || m.schema.fields.iter().any(|f| {
                !matches!(
                    f.ty,
                    ColumnType::Float | ColumnType::Integer | ColumnType::Boolean
                )
            })
        {
            return Err(ModelError::InvalidArtifact {
                reason: "isolation forest payload is inconsistent or of another version".into(),
            });
        }
        Ok(Box::new(m))
    }
}

impl FittedModel for IsolationForestModel {
    fn family(&self) -> &str {
        SPEC.name
    }

    fn task(&self) -> Task {
        Task::Anomaly
    }

    fn input_schema(&self) -> &Schema {
        &self.schema
    }

    fn params(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "n_trees": self.params.n_trees,
            "features": self.schema.names().collect::<Vec<_>>(),
            "threshold": self.threshold,
        })
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        serde_json::to_vec(self).map_err(|e| ModelError::Serialization {
            reason: e.to_string(),
        })
    }

    fn output_spec(&self) -> OutputSpec {
        OutputSpec::Anomaly
    }

    fn predict_rows(&self, rows: &[Vec<Value>]) -> Result<Vec<Output>, ModelError> {
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                if row.len() != self.medians.len() {
                    return Err(ModelError::RowLength {
                        row: Some(i),
                        expected: self.medians.len(),
                        got: row.len(),
                    });
                }
                let x: Vec<f64> = row
                    .iter()
                    .zip(&self.medians)
                    .map(|(v, m)| cell(v).unwrap_or(*m))
                    .collect();
                let score = self.forest.score(&x).map_err(from_fraud)?;
                Ok(Output::Anomaly {
                    score,
                    anomalous: score >= self.threshold,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use aurum_core::{CancelToken, Column, NoProgress, Table, Target};

    use super::*;

    #[test]
    fn outliers_are_flagged_and_the_model_round_trips() {
        let n = 400;
        let amount: Vec<Option<f64>> = (0..n)
            .map(|i| {
                Some(if i % 100 == 7 {
                    5_000.0
                } else {
                    40.0 + f64::from(i % 13)
                })
            })
            .collect();
        let count: Vec<Option<i64>> = (0..n).map(|i| Some(i64::from(i % 5))).collect();
        let table = Table::new(vec![
            Column {
                name: "amount".into(),
                data: ColumnData::Float(amount),
            },
            Column {
                name: "count".into(),
                data: ColumnData::Integer(count),
            },
            Column {
                name: "note".into(),
                data: ColumnData::Text((0..n).map(|i| Some(format!("n{i}"))).collect()),
            },
        ])
        .unwrap();
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 3,
        };
        let target = Target::None;
        let mut params = Params::new();
        params.insert("contamination".into(), "0.02".into());
        let m = IsolationForestFamily
            .fit(&TrainingData::new(&table, &target), &params, &ctx)
            .unwrap();
        assert_eq!(
            m.input_schema().names().collect::<Vec<_>>(),
            ["amount", "count"]
        );
        let rows = vec![
            vec![Value::Float(5_000.0), Value::Integer(1)],
            vec![Value::Float(45.0), Value::Integer(2)],
            vec![Value::Null, Value::Integer(2)],
        ];
        let out = m.predict_rows(&rows).unwrap();
        let flags: Vec<bool> = out
            .iter()
            .map(|o| {
                matches!(
                    o,
                    Output::Anomaly {
                        anomalous: true,
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(flags, [true, false, false]);
        let back = IsolationForestFamily
            .load_payload(&m.payload().unwrap())
            .unwrap();
        assert_eq!(back.predict_rows(&rows).unwrap(), out);
        let e =
            Typed::parse(&[("contamination".to_string(), "0.7".to_string())].into()).unwrap_err();
        assert_eq!(e.code(), "invalid_param");
        assert!(IsolationForestFamily.load_payload(b"{}").is_err());
    }
}
