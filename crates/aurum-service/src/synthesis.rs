//! Synthetic minority data: new datasets that add generated rows of one class to a source
//! dataset, with lineage, and the report that says whether the rows help and how close they
//! come to real rows.
//!
//! Why the output is an ordinary dataset: training, profiles, and every later step then use it
//! like any import (same registry row, same content addressing, same type-forced re-read); what
//! makes it synthetic is its lineage, stored beside it as `datasets/<name>.lineage.json` and
//! shown by `GET /v1/datasets/{name}`. The synthetic rows are a pure function of the source
//! bytes, the parameters and the seed, so synthesizing again gives the same bytes.
//!
//! The generators: SMOTE (`aurum_data::synth::smote`) and a tabular VAE
//! (`aurum_nn::vae`), both fitted on the feature columns of the class rows only (the target
//! column is set to the class). The report (optional, it fits everything twice more) holds out
//! a stratified, seeded share of the source, fits both generators on the training part's class
//! rows, and trains one fixed learner (the credit GBDT at its defaults) on real rows, real +
//! SMOTE rows and real + VAE rows, each measured on the same real held-out rows (AUC, PR-AUC).
//! Its privacy part measures each synthetic row's distance to the closest real training row
//! (standardised numbers plus one per categorical mismatch) against the same distance for the
//! held-out rows of the class, which are real rows the generators never saw.

use std::collections::BTreeMap;
use std::time::Instant;

use aurum_contract::FitContext;
use aurum_core::{
    BinaryTarget, CancelToken, Column, ColumnType, FamilyName, NoProgress, Params, Schema, Table,
    Value, validate_name,
};
use aurum_data::synth::{self, EncodedRows, MixedLayout, SmoteParams};
use aurum_nn::vae::{VaeLog, VaeParams, fit_vae};
use aurum_registry::{JobRecord, JobState, NewJob, RegistryError};
use serde::Serialize;

use crate::platform::{internal, join_error};
use crate::{CallContext, DatasetImport, Platform, ServiceError};

/// The `kind` of a synthesis job in the jobs table (not a family name any build registers; the
/// batch jobs' precedent, see `batch::job`).
pub const SYNTHESIS_JOB_KIND: &str = "synthesize_data";

/// A synthesis job: its row in the jobs table (the new dataset's name in `model`) and, once it
/// succeeded, the dataset's lineage document (`{"lineage": …, "report": …}`).
#[derive(Clone, Debug)]
pub struct SynthesisJob {
    pub job: JobRecord,
    pub lineage: Option<serde_json::Value>,
}

/// The most synthetic rows one request may ask for.
pub const MAX_SYNTHETIC_ROWS: i64 = 1_000_000;
/// The share of the source held out by the report.
pub const REPORT_HOLDOUT: f64 = 0.25;
/// Neighbours SMOTE interpolates towards.
pub const SMOTE_K: usize = 5;
/// The report measures privacy on at most this many synthetic rows of each generator (the
/// distance to the closest training row costs rows × training rows).
pub const PRIVACY_ROWS: usize = 5000;

/// A generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SynthesisMethod {
    Vae,
    Smote,
}

impl SynthesisMethod {
    /// Parses `vae` or `smote`; the error names the `method` field.
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vae" => Ok(Self::Vae),
            "smote" => Ok(Self::Smote),
            other => Err(ServiceError::invalid(
                "unknown_method",
                Some("method"),
                format!("unknown synthesis method `{other}` (expected vae or smote)"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vae => "vae",
            Self::Smote => "smote",
        }
    }
}

/// A request to synthesize rows of one class of a dataset.
#[derive(Clone, Debug)]
pub struct SynthesisRequest {
    /// The new dataset's name (default `<source>-<method>-<rows>-s<seed>`, `-only` appended
    /// with `synthetic_only`).
    pub name: Option<String>,
    pub target: String,
    /// The class whose rows are generated, as its cells print (`bad`, `1`, `true`).
    pub class: String,
    /// How many synthetic rows, 1..=[`MAX_SYNTHETIC_ROWS`].
    pub rows: i64,
    /// `vae` or `smote`.
    pub method: String,
    pub seed: u64,
    /// Write only the synthetic rows (default: the source rows, then the synthetic rows).
    pub synthetic_only: bool,
    /// Also compute the utility and privacy report.
    pub report: bool,
    /// VAE training epochs (default [`VaeParams::default`]).
    pub epochs: Option<usize>,
}

/// Where a synthetic dataset comes from.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Lineage {
    pub source: String,
    pub source_sha256: String,
    pub method: String,
    pub target: String,
    pub class: String,
    pub seed: u64,
    pub synthetic_rows: u64,
    /// Source rows copied in (0 with `synthetic_only`).
    pub real_rows: u64,
    /// The generator's parameters.
    pub params: serde_json::Value,
}

/// What [`Platform::synthesize_dataset`] did.
#[derive(Clone, Debug)]
pub struct SynthesisOutcome {
    pub import: DatasetImport,
    pub lineage: Lineage,
    pub report: Option<SynthesisReport>,
}

/// One training set of the utility comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UtilityRow {
    /// `real`, `real+smote` or `real+vae`.
    pub training: String,
    pub rows: usize,
    pub class_rows: usize,
    pub auc: Option<f64>,
    pub pr_auc: Option<f64>,
}

/// Closest-real-row distances of one set of rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DistanceSummary {
    /// `real_holdout`, `smote` or `vae`.
    pub rows_from: String,
    pub rows: usize,
    pub p5: f64,
    pub median: f64,
    /// Share of rows closer to a training row than the 5th percentile of the real held-out
    /// rows' distances (about 0.05 for rows that are no closer than real unseen rows).
    pub share_below_real_p5: f64,
    /// Share of rows identical to a training row (distance 0).
    pub exact_copies: f64,
}

/// The utility and privacy report of a synthesis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SynthesisReport {
    pub source: String,
    pub target: String,
    pub class: String,
    pub seed: u64,
    pub holdout_fraction: f64,
    pub train_rows: usize,
    pub train_class_rows: usize,
    pub holdout_rows: usize,
    pub holdout_class_rows: usize,
    pub synthetic_rows: usize,
    /// The learner every utility row trains: family and parameters.
    pub learner: serde_json::Value,
    pub utility: Vec<UtilityRow>,
    pub privacy: Vec<DistanceSummary>,
    pub vae: VaeLog,
    pub seconds: f64,
}

fn rows_invalid(message: String) -> ServiceError {
    ServiceError::invalid("invalid_rows", Some("rows"), message)
}

/// The checked request, with the source table split into features and the class.
struct Plan {
    method: SynthesisMethod,
    rows: usize,
    /// Source rows of the class.
    class_rows: Vec<usize>,
    /// The target cell of the class (written into every synthetic row).
    class_value: Value,
}

fn plan(table: &Table, req: &SynthesisRequest) -> Result<Plan, ServiceError> {
    let method = SynthesisMethod::parse(&req.method)?;
    let col = table.column(&req.target).ok_or_else(|| {
        ServiceError::invalid(
            "unknown_column",
            Some("target"),
            format!(
                "the dataset has no column `{}` (columns: {})",
                req.target,
                table
                    .columns()
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    if !(1..=MAX_SYNTHETIC_ROWS).contains(&req.rows) {
        return Err(rows_invalid(format!(
            "rows must be between 1 and {MAX_SYNTHETIC_ROWS}, got {}",
            req.rows
        )));
    }
    let class_rows: Vec<usize> = (0..table.n_rows())
        .filter(|&i| !col.data.is_missing(i) && col.data.get(i).to_string() == req.class)
        .collect();
    let Some(&first) = class_rows.first() else {
        let seen: Vec<String> = (0..table.n_rows())
            .filter(|&i| !col.data.is_missing(i))
            .map(|i| col.data.get(i).to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .take(20)
            .collect();
        return Err(ServiceError::invalid(
            "class_absent",
            Some("class"),
            format!(
                "no row of `{}` has the class `{}` (values: {})",
                req.target,
                req.class,
                seen.join(", ")
            ),
        ));
    };
    let needed = match method {
        SynthesisMethod::Smote => 2,
        SynthesisMethod::Vae => 10,
    };
    if class_rows.len() < needed {
        return Err(ServiceError::invalid(
            "not_enough_rows",
            Some("class"),
            format!(
                "{} rows have the class `{}`; {} needs at least {needed}",
                class_rows.len(),
                req.class,
                method.as_str()
            ),
        ));
    }
    Ok(Plan {
        method,
        rows: req.rows as usize,
        class_value: col.data.get(first),
        class_rows,
    })
}

fn vae_params(req: &SynthesisRequest) -> VaeParams {
    let mut p = VaeParams::default();
    if let Some(e) = req.epochs {
        p.epochs = e;
    }
    p
}

/// A generator's refusal as a 400 naming the field: the parameter for a bad parameter,
/// `field` otherwise.
fn model_error(field: &str, e: aurum_contract::ModelError) -> ServiceError {
    if let aurum_contract::ModelError::InvalidParam { name, .. } = &e {
        let name = name.clone();
        return ServiceError::invalid(e.code(), Some(&name), e.to_string());
    }
    if e.is_user_error() {
        ServiceError::invalid(e.code(), Some(field), e.to_string())
    } else {
        ServiceError::Model(e)
    }
}

/// Generates `rows` rows from the feature table `features` (class rows only).
fn generate(
    method: SynthesisMethod,
    features: &Table,
    rows: usize,
    seed: u64,
    vae: &VaeParams,
    cancel: &CancelToken,
) -> Result<(Table, Option<VaeLog>), ServiceError> {
    match method {
        SynthesisMethod::Smote => {
            let params = SmoteParams {
                k: SMOTE_K,
                rows,
                seed,
            };
            let t = synth::smote(features, &params).map_err(|e| {
                ServiceError::invalid("invalid_synthesis", Some(e.field()), e.to_string())
            })?;
            Ok((t, None))
        }
        SynthesisMethod::Vae => {
            let ctx = FitContext {
                progress: &NoProgress,
                cancel,
                seed,
            };
            let model = fit_vae(features, vae, &ctx).map_err(|e| model_error("class", e))?;
            Ok((
                model.sample(rows, seed.wrapping_add(1)),
                Some(model.log().clone()),
            ))
        }
    }
}

/// `synthetic` (feature columns) with the target column set to `class_value`, in `schema`'s
/// column order.
fn with_target(
    synthetic: &Table,
    schema: &Schema,
    target: &str,
    class_value: &Value,
) -> Result<Table, ServiceError> {
    let n = synthetic.n_rows();
    let columns = schema
        .fields
        .iter()
        .map(|f| {
            if f.name == target {
                Ok(Column {
                    name: f.name.clone(),
                    data: synth::column_of(f.ty, vec![class_value.clone(); n]),
                })
            } else {
                synthetic
                    .column(&f.name)
                    .cloned()
                    .ok_or_else(|| internal(format!("generated rows lack column `{}`", f.name)))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Table::new(columns).map_err(internal)
}

/// The CSV bytes of `tables` (same columns) one after the other. Dates and date-times with an
/// explicit format are written in it, so the re-import with the source schema reads them back.
fn to_csv(tables: &[&Table], schema: &Schema) -> Result<Vec<u8>, ServiceError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(schema.fields.iter().map(|f| f.name.as_str()))
        .map_err(internal)?;
    let mut record: Vec<String> = Vec::with_capacity(schema.fields.len());
    for t in tables {
        let cols: Vec<&Column> = schema
            .fields
            .iter()
            .map(|f| {
                t.column(&f.name)
                    .ok_or_else(|| internal(format!("missing column `{}`", f.name)))
            })
            .collect::<Result<_, _>>()?;
        for i in 0..t.n_rows() {
            record.clear();
            for (c, f) in cols.iter().zip(&schema.fields) {
                record.push(match (c.data.get(i), &f.format) {
                    (Value::Date(d), Some(fmt)) => d.format(fmt).to_string(),
                    (Value::DateTime(d), Some(fmt)) => d.format(fmt).to_string(),
                    (Value::Float(x), _) if !x.is_finite() => String::new(),
                    (v, _) => v.to_string(),
                });
            }
            w.write_record(&record).map_err(internal)?;
        }
    }
    w.into_inner().map_err(|e| internal(e.to_string()))
}

/// The closest-real-row distances of `from`, summarised against the real held-out 5th
/// percentile `real_p5`.
fn summarise(
    rows_from: &str,
    from: &EncodedRows,
    train: &EncodedRows,
    real_p5: Option<f64>,
) -> DistanceSummary {
    let d = synth::closest_distances(from, train);
    let p5 = synth::quantile(&d, 0.05);
    let threshold = real_p5.unwrap_or(p5);
    let n = d.len().max(1) as f64;
    DistanceSummary {
        rows_from: rows_from.to_string(),
        rows: d.len(),
        p5,
        median: synth::quantile(&d, 0.5),
        share_below_real_p5: d.iter().filter(|&&x| x < threshold).count() as f64 / n,
        exact_copies: d.iter().filter(|&&x| x == 0.0).count() as f64 / n,
    }
}

/// The report: see the module documentation.
fn report(
    source: &str,
    table: &Table,
    req: &SynthesisRequest,
    plan: &Plan,
    cancel: &CancelToken,
) -> Result<SynthesisReport, ServiceError> {
    let started = Instant::now();
    let col = table
        .column(&req.target)
        .ok_or_else(|| internal("target vanished"))?;
    let y: Vec<f64> = (0..table.n_rows())
        .map(|i| f64::from(u8::from(plan.class_rows.binary_search(&i).is_ok())))
        .collect();
    let split = aurum_data::stratified_split(&y, REPORT_HOLDOUT, req.seed)?;
    let features = table.drop_column(&req.target).map_err(internal)?;
    let train = features.take(&split.train);
    let holdout = features.take(&split.test);
    let y_train: Vec<f64> = split.train.iter().map(|&i| y[i]).collect();
    let y_holdout: Vec<f64> = split.test.iter().map(|&i| y[i]).collect();
    let train_class: Vec<usize> = (0..train.n_rows()).filter(|&i| y_train[i] > 0.5).collect();
    let holdout_class: Vec<usize> = (0..holdout.n_rows())
        .filter(|&i| y_holdout[i] > 0.5)
        .collect();
    let class_train = train.take(&train_class);
    let vae = vae_params(req);
    let (smote_rows, _) = generate(
        SynthesisMethod::Smote,
        &class_train,
        plan.rows,
        req.seed,
        &vae,
        cancel,
    )?;
    let (vae_rows, vae_log) = generate(
        SynthesisMethod::Vae,
        &class_train,
        plan.rows,
        req.seed,
        &vae,
        cancel,
    )?;
    let negative_label = (0..table.n_rows())
        .find(|&i| y[i] < 0.5 && !col.data.is_missing(i))
        .map(|i| col.data.get(i).to_string())
        .unwrap_or_else(|| "other".into());
    let learner_params = Params::new();
    let mut utility = Vec::new();
    for (name, extra) in [
        ("real", None),
        ("real+smote", Some(&smote_rows)),
        ("real+vae", Some(&vae_rows)),
    ] {
        let (x, yy) = match extra {
            None => (train.clone(), y_train.clone()),
            Some(s) => {
                let s = s
                    .select(train.columns().iter().map(|c| c.name.as_str()))
                    .map_err(internal)?;
                let x = concat(&train, &s)?;
                let mut yy = y_train.clone();
                yy.extend(std::iter::repeat_n(1.0, s.n_rows()));
                (x, yy)
            }
        };
        let target = BinaryTarget {
            column: req.target.clone(),
            y: yy.clone(),
            positive_label: req.class.clone(),
            negative_label: negative_label.clone(),
        };
        let ctx = FitContext {
            progress: &NoProgress,
            cancel,
            seed: req.seed,
        };
        let model = aurum_credit::fit_binary("gbdt", &x, &target, &learner_params, &ctx)?;
        let p = model.predict_proba_table(&holdout)?;
        utility.push(UtilityRow {
            training: name.to_string(),
            rows: x.n_rows(),
            class_rows: yy.iter().filter(|&&v| v > 0.5).count(),
            auc: aurum_credit::metrics::auc(&y_holdout, &p),
            pr_auc: aurum_credit::metrics::pr_auc(&y_holdout, &p),
        });
    }
    // Privacy: distances in the training rows' layout.
    let layout = MixedLayout::fit(&train).map_err(|e| internal(e.to_string()))?;
    let train_enc = layout.encode(&train);
    let real = summarise(
        "real_holdout",
        &layout.encode(&holdout.take(&holdout_class)),
        &train_enc,
        None,
    );
    let real_p5 = Some(real.p5);
    // The generated rows are independent draws, so the first ones are a fair sample.
    let first = |t: &Table| t.take(&(0..t.n_rows().min(PRIVACY_ROWS)).collect::<Vec<_>>());
    let privacy = vec![
        summarise(
            "smote",
            &layout.encode(&first(&smote_rows)),
            &train_enc,
            real_p5,
        ),
        summarise(
            "vae",
            &layout.encode(&first(&vae_rows)),
            &train_enc,
            real_p5,
        ),
        real,
    ];
    Ok(SynthesisReport {
        source: source.to_string(),
        target: req.target.clone(),
        class: req.class.clone(),
        seed: req.seed,
        holdout_fraction: REPORT_HOLDOUT,
        train_rows: train.n_rows(),
        train_class_rows: train_class.len(),
        holdout_rows: holdout.n_rows(),
        holdout_class_rows: holdout_class.len(),
        synthetic_rows: plan.rows,
        learner: serde_json::json!({"family": "gbdt", "params": "defaults", "seed": req.seed}),
        utility,
        privacy,
        vae: vae_log.ok_or_else(|| internal("the VAE left no log"))?,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `a`'s rows then `b`'s (same columns and types).
fn concat(a: &Table, b: &Table) -> Result<Table, ServiceError> {
    let columns = a
        .columns()
        .iter()
        .zip(b.columns())
        .map(|(ca, cb)| {
            let ty = ca.data.column_type();
            let values: Vec<Value> = (0..a.n_rows())
                .map(|i| ca.data.get(i))
                .chain((0..b.n_rows()).map(|i| cb.data.get(i)))
                .collect();
            Column {
                name: ca.name.clone(),
                data: synth::column_of(ty, values),
            }
        })
        .collect();
    Table::new(columns).map_err(internal)
}

/// What the blocking part produces.
struct Generated {
    bytes: Vec<u8>,
    overrides: BTreeMap<String, ColumnType>,
    date_formats: BTreeMap<String, String>,
    lineage_params: serde_json::Value,
    real_rows: u64,
    report: Option<SynthesisReport>,
}

/// A validated synthesis, ready to run: everything a refusal could come from is checked.
struct Prepared {
    source: String,
    record: aurum_registry::DatasetRecord,
    method: SynthesisMethod,
    name: String,
    table: Table,
    schema: Schema,
    plan: Plan,
    req: SynthesisRequest,
}

/// Where a synthesis reports its stages: nowhere (in a request or the CLI), or to its job row.
#[derive(Clone)]
struct Stages {
    /// The job's row, and the token its run watches: a job found no longer running when a
    /// stage is recorded (cancelled through another process) is stopped.
    job: Option<(Platform, String, tokio::runtime::Handle, CancelToken)>,
}

impl Stages {
    fn none() -> Self {
        Stages { job: None }
    }

    /// Records `stage` and `fraction` on the job. Called from blocking threads (from a task
    /// through [`Stages::stage_async`]); a failed update is logged, never fatal, and a job found
    /// no longer running is stopped.
    fn stage(&self, stage: &str, fraction: f64) {
        if let Some((platform, id, handle, cancel)) = &self.job {
            let update =
                handle.block_on(platform.inner.meta.update_job_progress(id, fraction, stage));
            Self::outcome(id, cancel, update);
        }
    }

    async fn stage_async(&self, stage: &str, fraction: f64) {
        if let Some((platform, id, _, cancel)) = &self.job {
            let update = platform
                .inner
                .meta
                .update_job_progress(id, fraction, stage)
                .await;
            Self::outcome(id, cancel, update);
        }
    }

    fn outcome(id: &str, cancel: &CancelToken, update: Result<bool, RegistryError>) {
        match update {
            Ok(true) => {}
            Ok(false) => cancel.cancel(),
            Err(e) => tracing::warn!(job = %id, error = %e, "cannot record synthesis progress"),
        }
    }
}

impl Platform {
    /// Generates synthetic rows of one class of the dataset `source` and registers them as a
    /// new dataset (the source rows, then the synthetic rows; only the synthetic rows with
    /// `synthetic_only`) whose lineage names the source, the method, its parameters and the
    /// seed; optionally with the utility and privacy report. Refusals name the field: `target`
    /// (unknown column), `class` (absent, or too few rows), `rows` (outside 1..=1,000,000),
    /// `method` (not `vae` or `smote`), `name`. Runs on the calling task (a request, the CLI);
    /// [`Platform::submit_synthesis_job`] runs the same synthesis in the background.
    pub async fn synthesize_dataset(
        &self,
        ctx: &CallContext,
        source: &str,
        req: SynthesisRequest,
    ) -> Result<SynthesisOutcome, ServiceError> {
        let prepared = self.prepare_synthesis(source, req).await?;
        self.run_synthesis(ctx, prepared, Stages::none(), CancelToken::new())
            .await
    }

    async fn prepare_synthesis(
        &self,
        source: &str,
        req: SynthesisRequest,
    ) -> Result<Prepared, ServiceError> {
        let record = self.dataset_record(source).await?;
        let method = SynthesisMethod::parse(&req.method)?;
        let name = req
            .name
            .clone()
            .unwrap_or_else(|| default_name(source, method, &req));
        validate_name(&name)
            .map_err(|e| ServiceError::invalid("invalid_name", Some("name"), e.to_string()))?;
        let table = self.load_dataset(&record).await?;
        let schema: Schema = serde_json::from_str(&record.schema_json).map_err(internal)?;
        let plan = plan(&table, &req)?;
        Ok(Prepared {
            source: source.to_string(),
            record,
            method,
            name,
            table,
            schema,
            plan,
            req,
        })
    }

    async fn run_synthesis(
        &self,
        ctx: &CallContext,
        prepared: Prepared,
        stages: Stages,
        cancel: CancelToken,
    ) -> Result<SynthesisOutcome, ServiceError> {
        let Prepared {
            source,
            record,
            method,
            name,
            table,
            schema,
            plan,
            req,
        } = prepared;
        let _slot = self
            .inner
            .job_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Unavailable("the platform is shutting down".into()))?;
        if cancel.is_cancelled() {
            return Err(ServiceError::Model(aurum_contract::ModelError::Cancelled));
        }
        stages.stage_async("generating", 0.05).await;
        let started = Instant::now();
        let (source_name, req2, stages2, cancel2) =
            (source.clone(), req.clone(), stages.clone(), cancel.clone());
        let generated = tokio::task::spawn_blocking(move || {
            let req = req2;
            let features = table.drop_column(&req.target).map_err(internal)?;
            let class_features = features.take(&plan.class_rows);
            let vae = vae_params(&req);
            let (rows, _) = generate(
                plan.method,
                &class_features,
                plan.rows,
                req.seed,
                &vae,
                &cancel2,
            )?;
            let synthetic = with_target(&rows, &schema, &req.target, &plan.class_value)?;
            let real_rows = if req.synthetic_only {
                0
            } else {
                table.n_rows()
            };
            stages2.stage("writing", 0.4);
            let bytes = if req.synthetic_only {
                to_csv(&[&synthetic], &schema)?
            } else {
                to_csv(&[&table, &synthetic], &schema)?
            };
            let lineage_params = match plan.method {
                SynthesisMethod::Smote => serde_json::json!({"k": SMOTE_K}),
                SynthesisMethod::Vae => serde_json::to_value(&vae).map_err(internal)?,
            };
            let report = if req.report {
                stages2.stage("report", 0.5);
                Some(report(&source_name, &table, &req, &plan, &cancel2)?)
            } else {
                None
            };
            Ok::<_, ServiceError>(Generated {
                bytes,
                overrides: schema
                    .fields
                    .iter()
                    .map(|f| (f.name.clone(), f.ty))
                    .collect(),
                date_formats: schema
                    .fields
                    .iter()
                    .filter_map(|f| Some((f.name.clone(), f.format.clone()?)))
                    .collect(),
                lineage_params,
                real_rows: real_rows as u64,
                report,
            })
        })
        .await
        .map_err(join_error)??;
        if cancel.is_cancelled() {
            return Err(ServiceError::Model(aurum_contract::ModelError::Cancelled));
        }
        stages.stage_async("importing", 0.95).await;
        let lineage = Lineage {
            source: source.clone(),
            source_sha256: record.sha256.clone(),
            method: method.as_str().to_string(),
            target: req.target.clone(),
            class: req.class.clone(),
            seed: req.seed,
            synthetic_rows: req.rows as u64,
            real_rows: generated.real_rows,
            params: generated.lineage_params,
        };
        let (this, ctx2, name2, lineage2, report2) = (
            self.clone(),
            ctx.clone(),
            name.clone(),
            lineage.clone(),
            generated.report.clone(),
        );
        let import = self
            .detached(async move {
                let import = this
                    .import_dataset_now(
                        &ctx2,
                        &name2,
                        generated.bytes,
                        generated.overrides,
                        generated.date_formats,
                    )
                    .await?;
                let doc = serde_json::json!({"lineage": lineage2, "report": report2});
                this.inner
                    .artifacts
                    .put(
                        &lineage_key(&name2),
                        serde_json::to_vec_pretty(&doc).map_err(internal)?,
                    )
                    .await?;
                if import.created {
                    this.audit(
                        &ctx2,
                        "dataset.synthesize",
                        None,
                        serde_json::json!({"dataset": name2, "lineage": lineage2}),
                    )
                    .await?;
                }
                Ok(import)
            })
            .await?;
        tracing::info!(
            dataset = %name,
            source = %source,
            method = method.as_str(),
            rows = req.rows,
            seed = req.seed,
            seconds = started.elapsed().as_secs_f64(),
            "synthetic dataset registered"
        );
        Ok(SynthesisOutcome {
            import,
            lineage,
            report: generated.report,
        })
    }

    /// Validates a synthesis (the same refusals as [`Platform::synthesize_dataset`], answered
    /// now) and queues it as a job: a row of the jobs table with kind [`SYNTHESIS_JOB_KIND`],
    /// the source as its dataset, the new dataset's name as its `model`, the request as its
    /// parameters. It runs in the background under the same concurrency limit as training;
    /// [`Platform::get_synthesis_job`] follows it.
    pub async fn submit_synthesis_job(
        &self,
        ctx: &CallContext,
        source: &str,
        req: SynthesisRequest,
    ) -> Result<JobRecord, ServiceError> {
        let (this, ctx, source) = (self.clone(), ctx.clone(), source.to_string());
        self.detached(async move { this.submit_synthesis_job_now(&ctx, &source, req).await })
            .await
    }

    async fn submit_synthesis_job_now(
        &self,
        ctx: &CallContext,
        source: &str,
        req: SynthesisRequest,
    ) -> Result<JobRecord, ServiceError> {
        let prepared = self.prepare_synthesis(source, req).await?;
        let params = serde_json::json!({
            "name": prepared.name,
            "target": prepared.req.target,
            "class": prepared.req.class,
            "rows": prepared.req.rows,
            "method": prepared.method.as_str(),
            "seed": prepared.req.seed,
            "synthetic_only": prepared.req.synthetic_only,
            "report": prepared.req.report,
            "epochs": prepared.req.epochs,
        });
        let job = self
            .inner
            .meta
            .create_job(NewJob {
                dataset: source.to_string(),
                target: prepared.req.target.clone(),
                kind: FamilyName::new(SYNTHESIS_JOB_KIND).map_err(internal)?,
                model: prepared.name.clone(),
                params_json: params.to_string(),
                created_by: ctx.actor.clone(),
                owner: self.inner.instance.clone(),
            })
            .await?;
        self.audit(
            ctx,
            "synthesis_job.submit",
            None,
            serde_json::json!({"job_id": job.id, "dataset": source, "dataset_sha256": prepared.record.sha256, "params": params}),
        )
        .await?;
        let cancel = CancelToken::new();
        self.inner.jobs.insert(&job.id, cancel.clone());
        let (this, ctx, id) = (self.clone(), ctx.clone(), job.id.clone());
        tokio::spawn(async move {
            let stages = Stages {
                job: Some((
                    this.clone(),
                    id.clone(),
                    tokio::runtime::Handle::current(),
                    cancel.clone(),
                )),
            };
            let result = async {
                this.inner
                    .meta
                    .transition_job(&id, JobState::Running, None, None)
                    .await?;
                this.run_synthesis(&ctx, prepared, stages, cancel.clone())
                    .await
            }
            .await;
            this.inner.jobs.remove(&id);
            let (state, error) = match &result {
                Ok(_) => (JobState::Succeeded, None),
                Err(_) if cancel.is_cancelled() => (
                    JobState::Cancelled,
                    Some("cancelled by request".to_string()),
                ),
                Err(e) => (
                    JobState::Failed,
                    Some(format!("{}: {}", e.code(), e.public_message())),
                ),
            };
            match this
                .inner
                .meta
                .transition_job(&id, state, error.clone(), None)
                .await
            {
                // Another process ended the job (its owner looked gone) and audited that end.
                Err(e @ aurum_registry::RegistryError::InvalidTransition { .. }) => {
                    tracing::error!(job = %id, error = %e, "the synthesis job was ended by another process");
                    return;
                }
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "cannot record synthesis job outcome")
                }
                Ok(_) => {}
            }
            let dataset = result.as_ref().ok().map(|o| o.import.record.name.clone());
            let details = serde_json::json!({"job_id": id, "state": state.as_str(), "error": error, "dataset": dataset});
            if let Err(e) = this
                .audit(&ctx, "synthesis_job.finish", None, details)
                .await
            {
                tracing::error!(job = %id, error = %e, "cannot audit synthesis job outcome");
            }
        });
        Ok(job)
    }

    /// A synthesis job by id, with the new dataset's lineage (and report, when one was asked
    /// for) once it succeeded. Another kind of job's id is `job_not_found` here.
    pub async fn get_synthesis_job(&self, id: &str) -> Result<SynthesisJob, ServiceError> {
        let job = self.inner.meta.get_job(id).await?;
        if job.kind.as_str() != SYNTHESIS_JOB_KIND {
            return Err(ServiceError::NotFound {
                resource: "job",
                name: id.to_string(),
            });
        }
        let lineage = if job.state == JobState::Succeeded {
            self.dataset_lineage(&job.model).await?
        } else {
            None
        };
        Ok(SynthesisJob { job, lineage })
    }

    /// Asks a queued or running synthesis job to stop: it stops at the next VAE or learner epoch
    /// (or before it starts, or before the import) and registers nothing. Finished jobs answer
    /// `Conflict`. A job run by another process is marked cancelled in the jobs table; that
    /// process stops at its next stage, when it finds the job no longer running.
    pub async fn cancel_synthesis_job(
        &self,
        ctx: &CallContext,
        id: &str,
    ) -> Result<SynthesisJob, ServiceError> {
        let (this, ctx, id) = (self.clone(), ctx.clone(), id.to_string());
        self.detached(async move {
            let job = this.get_synthesis_job(&id).await?.job;
            this.stop_job(
                &ctx,
                &job,
                "synthesis_job.cancel",
                None,
                serde_json::json!({"job_id": id, "dataset": job.dataset, "creates": job.model}),
            )
            .await?;
            this.get_synthesis_job(&id).await
        })
        .await
    }

    /// The lineage (and report, when one was asked for) of a synthesized dataset; `None` for an
    /// imported one.
    pub async fn dataset_lineage(
        &self,
        name: &str,
    ) -> Result<Option<serde_json::Value>, ServiceError> {
        let key = lineage_key(name);
        match self.inner.artifacts.get(&key).await {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(internal)?)),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// `<source>-<method>-<rows>-s<seed>`, with `-only` for synthetic rows only.
fn default_name(source: &str, method: SynthesisMethod, req: &SynthesisRequest) -> String {
    let only = if req.synthetic_only { "-only" } else { "" };
    format!(
        "{source}-{}-{}-s{}{only}",
        method.as_str(),
        req.rows,
        req.seed
    )
}

fn lineage_key(name: &str) -> String {
    format!("datasets/{name}.lineage.json")
}
