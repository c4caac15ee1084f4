//! The open contract, exercised by a family that exists only in this file: an ordinary
//! least-squares line on one numeric feature (task `regression`). Registering it is one line
//! (`builtin().with(LineFamily)`); nothing in the service, registry or data layers knows it, yet
//! it trains through the job runner, is versioned with lineage, resolves through an alias,
//! loads through the model cache from its artifact, and answers audited predictions.

use aurum_contract::{
    FamilySpec, FitContext, FittedModel, ModelError, ModelFamily, Output, Params, Task,
    TrainingData,
};
use aurum_core::{ColumnType, FamilyName, Field, NoProgress, Schema, Value};
use aurum_service::{CallContext, Config, ModelRef, Platform, TrainRequest};

const SPEC: FamilySpec = FamilySpec {
    name: "toy_line",
    aliases: &[],
    task: Task::Regression,
    summary: "y = a + b·x by least squares on the one feature `x`",
    params: &[],
    trainable: true,
    importable: false,
};

struct LineFamily;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Line {
    a: f64,
    b: f64,
    #[serde(skip, default = "schema")]
    schema: Schema,
}

fn schema() -> Schema {
    Schema::new(vec![Field::new("x", ColumnType::Float)]).unwrap()
}

impl ModelFamily for LineFamily {
    fn spec(&self) -> &FamilySpec {
        &SPEC
    }

    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        aurum_contract::ParamReader::new("toy_line", params, &[])?;
        Ok(serde_json::json!({}))
    }

    fn fit(
        &self,
        data: &TrainingData<'_>,
        _params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError> {
        let y = &data.numeric()?.y;
        let x: Vec<f64> = (0..data.features.n_rows())
            .map(|i| match data.features.column("x").map(|c| c.data.get(i)) {
                Some(Value::Float(v)) => Ok(v),
                Some(Value::Integer(v)) => Ok(v as f64),
                _ => Err(ModelError::NoUsableFeatures {
                    reason: "the toy line needs a numeric column `x`".into(),
                }),
            })
            .collect::<Result<_, _>>()?;
        ctx.check_cancelled()?;
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let sxy: f64 = x.iter().zip(y).map(|(x, y)| (x - mx) * (y - my)).sum();
        let sxx: f64 = x.iter().map(|x| (x - mx).powi(2)).sum();
        let b = sxy / sxx;
        Ok(Box::new(Line {
            a: my - b * mx,
            b,
            schema: schema(),
        }))
    }

    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError> {
        let line: Line =
            serde_json::from_slice(payload).map_err(|e| ModelError::InvalidArtifact {
                reason: e.to_string(),
            })?;
        Ok(Box::new(line))
    }
}

impl FittedModel for Line {
    fn family(&self) -> &str {
        SPEC.name
    }
    fn task(&self) -> Task {
        Task::Regression
    }
    fn input_schema(&self) -> &Schema {
        &self.schema
    }
    fn params(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn summary(&self) -> serde_json::Value {
        serde_json::json!({"a": self.a, "b": self.b})
    }
    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        serde_json::to_vec(self).map_err(|e| ModelError::Serialization {
            reason: e.to_string(),
        })
    }
    fn predict_rows(&self, rows: &[Vec<Value>]) -> Result<Vec<Output>, ModelError> {
        rows.iter()
            .enumerate()
            .map(|(i, r)| match r.first() {
                Some(Value::Float(x)) => Ok(Output::Value(self.a + self.b * x)),
                _ => Err(ModelError::InvalidInput {
                    feature: "x".into(),
                    row: Some(i),
                    reason: "needs a number".into(),
                }),
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_defined_outside_the_platform_trains_registers_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let families = aurum_families::builtin().with(LineFamily);
    let platform = Platform::open_with_families(
        Config {
            data_dir: dir.path().join("data"),
            ..Default::default()
        },
        families,
    )
    .await
    .unwrap();
    let ctx = CallContext::cli();
    // y = 1 + 2x with a deterministic wiggle, and an id column that is not a feature.
    let mut csv = String::from("id,x,y\n");
    for i in 0..200 {
        let x = f64::from(i) / 10.0;
        let wiggle = if i % 2 == 0 { 0.05 } else { -0.05 };
        csv.push_str(&format!("row-{i},{x},{}\n", 1.0 + 2.0 * x + wiggle));
    }
    platform
        .import_dataset(
            &ctx,
            "line",
            csv.into_bytes(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let (job, version) = platform
        .run_training(
            &ctx,
            TrainRequest {
                dataset: "line".into(),
                target: "y".into(),
                kind: FamilyName::new("toy_line").unwrap(),
                model: "lgd".into(),
                params: Default::default(),
                positive_label: None,
                alias: Some("champion".into()),
                date_column: None,
                text_columns: None,
                text_buckets: None,
            },
            std::sync::Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(job.state.as_str(), "succeeded");
    assert_eq!(version.kind, "toy_line");
    let metrics: serde_json::Value = serde_json::from_str(&version.metrics_json).unwrap();
    assert!(metrics["rmse"].as_f64().unwrap() < 0.06, "{metrics}");
    assert!(metrics["r2"].as_f64().unwrap() > 0.999, "{metrics}");

    // Served through the alias, from the artifact the job stored.
    let loaded = platform.resolve(&ModelRef::champion("lgd")).await.unwrap();
    assert_eq!(loaded.task(), Task::Regression);
    assert_eq!(loaded.manifest.family, "toy_line");
    assert!(
        loaded.binary().is_err(),
        "a regression model has no binary view"
    );
    let out = platform
        .predict_outputs(&ctx, loaded, vec![vec![Value::Float(3.0)]])
        .await
        .unwrap();
    let Output::Value(v) = out.outputs[0] else {
        panic!("{:?}", out.outputs)
    };
    assert!((v - 7.0).abs() < 0.05, "{v}");
    let audit = platform.audit_tail(1).await.unwrap();
    assert_eq!(audit[0].event, "prediction");
    assert_eq!(
        audit[0].input_sha256.as_deref(),
        Some(out.input_sha256.as_str())
    );
    assert_eq!(audit[0].details["outputs"][0]["value"].as_f64(), Some(v));

    // A platform without the registration cannot load the version, and says why.
    platform.shutdown().await;
    drop(platform);
    let plain = Platform::open(Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    })
    .await
    .unwrap();
    let e = plain.resolve(&ModelRef::champion("lgd")).await.unwrap_err();
    assert_eq!(e.code(), "unknown_family", "{e}");
}
