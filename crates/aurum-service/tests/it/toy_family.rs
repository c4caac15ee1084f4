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
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const SPEC: FamilySpec = FamilySpec {
    name: "toy_line",
    aliases: &[],
    task: Task::Regression,
    summary: "y = a + b·x by least squares on the one feature `x`",
    params: &[],
    trainable: true,
    importable: false,
};

/// Counts the artifacts it decodes (`load_payload`), each taking `load_delay`: long enough
/// for concurrent callers to overlap.
#[derive(Default)]
struct LineFamily {
    loads: Arc<AtomicUsize>,
    load_delay: Duration,
}

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
        self.loads.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.load_delay);
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
    let platform = open(dir.path(), LineFamily::default(), Config::default()).await;
    let ctx = CallContext::cli();
    let (job, version) = train(&platform, Some("champion")).await;
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

async fn open(dir: &std::path::Path, family: LineFamily, config: Config) -> Platform {
    let families = aurum_families::builtin().with(family);
    let config = Config {
        data_dir: dir.join("data"),
        ..config
    };
    Platform::open_with_families(config, families)
        .await
        .unwrap()
}

/// Imports the line data set (on the first call) and trains a version of model `lgd` on it.
async fn train(
    platform: &Platform,
    alias: Option<&str>,
) -> (aurum_registry::JobRecord, aurum_registry::VersionRecord) {
    let ctx = CallContext::cli();
    // y = 1 + 2x with a deterministic wiggle, and an id column that is not a feature.
    let mut csv = String::from("id,x,y\n");
    for i in 0..200 {
        let x = f64::from(i) / 10.0;
        let wiggle = if i % 2 == 0 { 0.05 } else { -0.05 };
        csv.push_str(&format!("row-{i},{x},{}\n", 1.0 + 2.0 * x + wiggle));
    }
    if platform.get_dataset("line").await.is_err() {
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
    }
    platform
        .run_training(
            &ctx,
            TrainRequest {
                dataset: "line".into(),
                target: "y".into(),
                kind: FamilyName::new("toy_line").unwrap(),
                model: "lgd".into(),
                params: Default::default(),
                positive_label: None,
                alias: alias.map(String::from),
                date_column: None,
                text_columns: None,
                text_buckets: None,
            },
            Arc::new(NoProgress),
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_a_cold_version_decode_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let platform = open(dir.path(), LineFamily::default(), Config::default()).await;
    train(&platform, Some("champion")).await;
    platform.shutdown().await;
    drop(platform);

    // A fresh process: nothing loaded. Sixteen requests at once, through the alias and by
    // version, while the one decode takes 200 ms.
    let family = LineFamily {
        load_delay: Duration::from_millis(200),
        ..LineFamily::default()
    };
    let loads = family.loads.clone();
    let platform = open(dir.path(), family, Config::default()).await;
    let refs = (0..16).map(|i| {
        if i % 2 == 0 {
            ModelRef::champion("lgd")
        } else {
            ModelRef::version("lgd", 1)
        }
    });
    let tasks: Vec<_> = refs
        .map(|r| {
            let platform = platform.clone();
            tokio::spawn(async move { platform.resolve(&r).await })
        })
        .collect();
    let mut models = Vec::new();
    for task in tasks {
        models.push(task.await.unwrap().unwrap());
    }
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "one decode for sixteen callers"
    );
    assert!(models.iter().all(|m| Arc::ptr_eq(m, &models[0])));
    assert_eq!(platform.loaded_version_count(), 1);

    // A caller that goes away mid-load (a request timeout) does not strand the next one.
    platform.shutdown().await;
    drop(platform);
    let slow = LineFamily {
        load_delay: Duration::from_millis(300),
        ..LineFamily::default()
    };
    let platform = open(dir.path(), slow, Config::default()).await;
    let first = tokio::time::timeout(
        Duration::from_millis(50),
        platform.resolve(&ModelRef::version("lgd", 1)),
    )
    .await;
    assert!(first.is_err(), "the first caller gave up");
    let m = platform
        .resolve(&ModelRef::version("lgd", 1))
        .await
        .unwrap();
    assert_eq!(m.version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loaded_versions_are_bounded_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let platform = open(dir.path(), LineFamily::default(), Config::default()).await;
    for _ in 0..3 {
        train(&platform, None).await;
    }
    platform.shutdown().await;
    drop(platform);

    let family = LineFamily::default();
    let loads = family.loads.clone();
    let mut config = Config::default();
    config.server.max_loaded_versions = 2;
    let platform = open(dir.path(), family, config).await;
    let get = |v: u32| {
        let platform = platform.clone();
        async move {
            let m = platform
                .resolve(&ModelRef::version("lgd", v))
                .await
                .unwrap();
            assert_eq!(m.version, v);
        }
    };
    get(1).await;
    get(2).await;
    get(1).await; // cached; version 2 is now the least recently used
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    get(3).await; // evicts version 2
    assert_eq!(platform.loaded_version_count(), 2);
    get(1).await;
    assert_eq!(loads.load(Ordering::SeqCst), 3, "version 1 stayed loaded");
    get(2).await; // loaded again
    assert_eq!(loads.load(Ordering::SeqCst), 4);
    assert_eq!(platform.loaded_version_count(), 2);
}
