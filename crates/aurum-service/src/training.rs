//! Training jobs: validated up front, run off the request path, persisted at every state change.
//!
//! `submit_training` checks everything that can be checked cheaply and synchronously (dataset,
//! target column, binary target, model name, parameters) so the caller gets a 4xx at once rather
//! than a failed job later; the job itself then runs on the blocking pool under a concurrency
//! limit. A job is `queued → running → succeeded | failed | cancelled`; a succeeded job has
//! registered exactly one new version, measured on a stratified, seeded held-out split.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aurum_contract::{FitContext, FittedModel, ManifestInput, ModelError, Output, TrainingData};
use aurum_core::{
    CancelToken, FamilyName, Metrics, Params, Progress, Table, Target, Task, validate_name,
};
use aurum_credit::report::ExcludedColumn;
use aurum_registry::{JobRecord, JobState, NewJob, NewVersion, VersionRecord};

use crate::platform::{dataset_date_formats, internal, join_error};
use crate::{CallContext, Platform, ServiceError};

/// A request to train and register a new model version.
#[derive(Clone, Debug)]
pub struct TrainRequest {
    pub dataset: String,
    pub target: String,
    /// The family, by name or alias (see `aurum_families::builtin`).
    pub kind: FamilyName,
    /// The registered model the new version belongs to.
    pub model: String,
    pub params: Params,
    /// The target label to treat as the positive class (default: see `aurum_data::binary_target`).
    pub positive_label: Option<String>,
    /// An alias to point at the new version when the job succeeds (e.g. `champion`).
    pub alias: Option<String>,
    /// A date (or date-time, or integer period) column: the held-out split is then
    /// time-ordered (the latest rows are the test set) instead of stratified, and the column is
    /// not used as a feature.
    pub date_column: Option<String>,
    /// The free-text columns to use as features (through the hashed TF-IDF step of
    /// `aurum_contract::text`, or the family's own text encoder). `None`: every text column whose
    /// values repeat and whose words recur (see `candidate_features`); `Some([])`: none.
    pub text_columns: Option<Vec<String>>,
    /// Hashed TF-IDF buckets per text column (default `aurum_contract::text::DEFAULT_BUCKETS`).
    pub text_buckets: Option<usize>,
}

/// The cancel tokens of the jobs this process runs, of every kind (training, batch scoring,
/// synthesis), by job id: what [`Platform::stop_job`] cancels.
#[derive(Default)]
pub(crate) struct JobControl {
    tokens: Mutex<HashMap<String, CancelToken>>,
}

impl JobControl {
    pub(crate) fn insert(&self, id: &str, token: CancelToken) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), token);
    }
    pub(crate) fn remove(&self, id: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
    pub(crate) fn get(&self, id: &str) -> Option<CancelToken> {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

/// Progress shared between the fitting thread, the persister and an optional observer.
struct JobProgress {
    fraction_bits: AtomicU64,
    stage: Mutex<String>,
    observer: Option<Arc<dyn Progress>>,
}

impl JobProgress {
    fn new(observer: Option<Arc<dyn Progress>>) -> Self {
        JobProgress {
            fraction_bits: AtomicU64::new(0f64.to_bits()),
            stage: Mutex::new("queued".into()),
            observer,
        }
    }
    fn snapshot(&self) -> (f64, String) {
        let f = f64::from_bits(self.fraction_bits.load(Ordering::Relaxed));
        (
            f,
            self.stage.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        )
    }
}

impl Progress for JobProgress {
    fn report(&self, stage: &str, fraction: f64) {
        self.fraction_bits
            .store(fraction.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
        let mut s = self.stage.lock().unwrap_or_else(|p| p.into_inner());
        if s.as_str() != stage {
            *s = stage.to_string();
        }
        drop(s);
        if let Some(o) = &self.observer {
            o.report(stage, fraction);
        }
    }
}

/// Everything a job needs, checked before it is queued.
struct Prepared {
    req: TrainRequest,
    table: Table,
    target: Target,
    task: Task,
    dataset_sha256: String,
    canonical_params: serde_json::Value,
    /// Time-order keys when a date column was declared.
    order_keys: Option<Vec<i64>>,
    /// Dataset columns left out of `table` before fitting, with the reason.
    excluded: Vec<ExcludedColumn>,
    /// The dataset's explicit date formats (column → chrono format), for the model's manifest.
    date_formats: std::collections::BTreeMap<String, String>,
    /// The text columns kept as features, and the buckets of their TF-IDF step.
    text_columns: Vec<String>,
    text_buckets: usize,
}

/// What a finished fit produced (computed on the blocking pool).
struct Fitted {
    artifact: Vec<u8>,
    artifact_sha256: String,
    metrics_json: String,
    params_json: String,
    /// What the evaluation report is built from once the version number is known.
    report: Option<aurum_credit::report::ReportInput>,
}

impl Platform {
    async fn prepare(&self, req: TrainRequest) -> Result<Prepared, ServiceError> {
        validate_name(&req.model)
            .map_err(|e| ServiceError::invalid("invalid_name", Some("model"), e.to_string()))?;
        if let Some(a) = &req.alias {
            crate::models::validate_alias(a)?;
        }
        let mut req = req;
        let family = self.inner.families.get(req.kind.as_str()).map_err(|e| {
            ServiceError::invalid("unknown_model_kind", Some("kind"), e.to_string())
        })?;
        let spec = *family.spec();
        if !spec.trainable {
            return Err(ServiceError::invalid(
                "invalid_field",
                Some("kind"),
                format!(
                    "{} models are trained elsewhere and imported (aurum import --format {}), not trained here",
                    spec.name, spec.name
                ),
            ));
        }
        // Aliases (`gbm`) are accepted on input; the family's own name is what is stored.
        req.kind = FamilyName::new(spec.name).map_err(internal)?;
        let task = spec.task;
        let canonical_params = family.validate_params(&req.params)?;
        let record = self.dataset_record(&req.dataset).await?;
        let table = self.load_dataset(&record).await?;
        let date_formats = dataset_date_formats(&record)?;
        let positive = req.positive_label.clone();
        let target_name = req.target.clone();
        let date_column = req.date_column.clone();
        let text_request = req.text_columns.clone();
        let text_buckets = req
            .text_buckets
            .unwrap_or(aurum_contract::text::DEFAULT_BUCKETS);
        if !(2..=aurum_contract::text::MAX_BUCKETS).contains(&text_buckets) {
            return Err(ServiceError::invalid(
                "invalid_field",
                Some("text_buckets"),
                format!(
                    "text_buckets must be an integer from 2 to {}, got {text_buckets}",
                    aurum_contract::text::MAX_BUCKETS
                ),
            ));
        }
        let keep_constant = family.keeps_constant_columns();
        let (table, target, order_keys, excluded, text_columns) =
            tokio::task::spawn_blocking(move || {
                let target = match task {
                    Task::Binary => Target::Binary(aurum_data::binary_target(
                        &table,
                        &target_name,
                        positive.as_deref(),
                    )?),
                    Task::Multiclass | Task::SequenceClassification => {
                        Target::Classes(aurum_data::class_target(&table, &target_name)?)
                    }
                    Task::Regression | Task::Forecast => {
                        Target::Numeric(aurum_data::numeric_target(&table, &target_name)?)
                    }
                    Task::Anomaly | Task::Ranking => Target::None,
                };
                if task == Task::Ranking {
                    // An interactions table goes to the family whole: its parameters name the user,
                    // item and time columns, which are ids and times, never features.
                    return Ok::<_, ServiceError>((table, target, None, Vec::new(), Vec::new()));
                }
                let mut features = match target {
                    Target::None if table.column(&target_name).is_none() => table,
                    _ => table.drop_column(&target_name).map_err(internal)?,
                };
                let mut excluded = vec![excluded_column(&target_name, "target")];
                if task == Task::Forecast {
                    // A series is its time column and its values: nothing is profiled away.
                    return Ok::<_, ServiceError>((features, target, None, excluded, Vec::new()));
                }
                let order_keys = match date_column {
                    None => None,
                    Some(col) => {
                        let keys = order_keys(&features, &col)?;
                        features = features.drop_column(&col).map_err(internal)?;
                        excluded.push(excluded_column(&col, "split date column"));
                        Some(keys)
                    }
                };
                let kept = candidate_features(features, text_request.as_deref(), keep_constant)?;
                excluded.extend(kept.excluded);
                Ok::<_, ServiceError>((kept.features, target, order_keys, excluded, kept.text))
            })
            .await
            .map_err(join_error)??;
        Ok(Prepared {
            req,
            table,
            target,
            task,
            dataset_sha256: record.sha256,
            canonical_params,
            order_keys,
            excluded,
            date_formats,
            text_columns,
            text_buckets,
        })
    }

    /// Validates and queues a training job; it runs in the background.
    pub async fn submit_training(
        &self,
        ctx: &CallContext,
        req: TrainRequest,
    ) -> Result<JobRecord, ServiceError> {
        let (this, ctx) = (self.clone(), ctx.clone());
        self.detached(async move { this.submit_training_now(&ctx, req).await })
            .await
    }

    async fn submit_training_now(
        &self,
        ctx: &CallContext,
        req: TrainRequest,
    ) -> Result<JobRecord, ServiceError> {
        let prepared = self.prepare(req).await?;
        let job = self.create_job_row(ctx, &prepared).await?;
        let this = self.clone();
        let ctx = ctx.clone();
        let id = job.id.clone();
        let cancel = CancelToken::new();
        self.inner.jobs.insert(&id, cancel.clone());
        tokio::spawn(async move {
            let progress = Arc::new(JobProgress::new(None));
            let _ = this.execute(&ctx, &id, prepared, progress, cancel).await;
        });
        Ok(job)
    }

    /// Runs a training job to completion on the calling task (the CLI's `aurum train`),
    /// reporting progress to `observer`. The job is persisted like a submitted one.
    pub async fn run_training(
        &self,
        ctx: &CallContext,
        req: TrainRequest,
        observer: Arc<dyn Progress>,
    ) -> Result<(JobRecord, VersionRecord), ServiceError> {
        let prepared = self.prepare(req).await?;
        let job = self.create_job_row(ctx, &prepared).await?;
        let cancel = CancelToken::new();
        self.inner.jobs.insert(&job.id, cancel.clone());
        let progress = Arc::new(JobProgress::new(Some(observer)));
        let version = self
            .execute(ctx, &job.id, prepared, progress, cancel)
            .await?;
        Ok((self.get_job(&job.id).await?, version))
    }

    async fn create_job_row(
        &self,
        ctx: &CallContext,
        p: &Prepared,
    ) -> Result<JobRecord, ServiceError> {
        let job = self
            .inner
            .meta
            .create_job(NewJob {
                dataset: p.req.dataset.clone(),
                target: p.req.target.clone(),
                kind: p.req.kind.clone(),
                model: p.req.model.clone(),
                params_json: p.canonical_params.to_string(),
                created_by: ctx.actor.clone(),
                owner: self.inner.instance.clone(),
            })
            .await?;
        self.audit(
            ctx,
            "training.submit",
            Some((&p.req.model, None)),
            serde_json::json!({"job_id": job.id, "dataset": p.req.dataset, "dataset_sha256": p.dataset_sha256,
                               "target": p.req.target, "kind": p.req.kind.as_str(), "params": p.canonical_params}),
        )
        .await?;
        Ok(job)
    }

    async fn execute(
        &self,
        ctx: &CallContext,
        id: &str,
        prepared: Prepared,
        progress: Arc<JobProgress>,
        cancel: CancelToken,
    ) -> Result<VersionRecord, ServiceError> {
        let model = prepared.req.model.clone();
        let result = self
            .execute_inner(ctx, id, prepared, progress, cancel.clone())
            .await;
        self.inner.jobs.remove(id);
        // Once a version is registered the job has succeeded, whatever happens after (the
        // report, the alias): the job record must agree with the registry. A later step's
        // failure is recorded on the job and returned to the caller.
        let (result, after) = match result {
            Ok((v, after)) => (Ok(v), after),
            Err(e) => (Err(e), None),
        };
        let (state, error, version) = match &result {
            Ok(v) => (
                JobState::Succeeded,
                after.as_ref().map(|e| {
                    format!(
                        "registered as version {}, but then {}: {}",
                        v.version,
                        e.code(),
                        e.public_message()
                    )
                }),
                Some(v.version),
            ),
            Err(ServiceError::Model(e)) if e.code() == "cancelled" || cancel.is_cancelled() => (
                JobState::Cancelled,
                Some("cancelled by request".to_string()),
                None,
            ),
            Err(e) => (
                JobState::Failed,
                Some(format!("{}: {}", e.code(), e.public_message())),
                None,
            ),
        };
        match self
            .inner
            .meta
            .transition_job(id, state, error.clone(), version)
            .await
        {
            // Another process ended the job (its owner looked gone) and audited that end; this
            // one registered nothing (the registry refuses a version for an ended job).
            Err(e @ aurum_registry::RegistryError::InvalidTransition { .. }) => {
                tracing::error!(job = id, error = %e, "the job was ended by another process");
            }
            recorded => {
                if let Err(e) = recorded {
                    tracing::error!(job = id, error = %e, "cannot record job outcome");
                }
                let details = serde_json::json!({"job_id": id, "state": state.as_str(), "error": error, "version": version});
                if let Err(e) = self
                    .audit(ctx, "training.finish", Some((&model, version)), details)
                    .await
                {
                    tracing::error!(job = id, error = %e, "cannot audit job outcome");
                }
            }
        }
        match &result {
            Ok(v) => {
                tracing::info!(job = id, model = %v.model, version = v.version, "training job succeeded")
            }
            Err(e) => {
                tracing::warn!(job = id, code = e.code(), error = %e, "training job did not succeed")
            }
        }
        match after {
            Some(e) => Err(e),
            None => result,
        }
    }

    async fn execute_inner(
        &self,
        ctx: &CallContext,
        id: &str,
        prepared: Prepared,
        progress: Arc<JobProgress>,
        cancel: CancelToken,
    ) -> Result<(VersionRecord, Option<ServiceError>), ServiceError> {
        let _slot = self
            .inner
            .job_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(internal)?;
        if cancel.is_cancelled() {
            return Err(ServiceError::Model(ModelError::Cancelled));
        }
        self.inner
            .meta
            .transition_job(id, JobState::Running, None, None)
            .await?;
        // Persist progress about once a second while the fit runs.
        let persister = {
            let meta = self.inner.meta.clone();
            let progress = progress.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                let mut last = (-1.0, String::new());
                loop {
                    tokio::time::sleep(Duration::from_millis(1000)).await;
                    let now = progress.snapshot();
                    if now != last {
                        let _ = meta.update_job_progress(&id, now.0, &now.1).await;
                        last = now;
                    }
                }
            })
        };
        let req = prepared.req.clone();
        let cfg = self.inner.config.training.clone();
        let families = self.inner.families.clone();
        let dataset_sha = prepared.dataset_sha256.clone();
        let p = progress.clone();
        let fitted = tokio::task::spawn_blocking(move || {
            fit_and_evaluate(&families, prepared, &cfg, p.as_ref(), &cancel)
        })
        .await
        .map_err(join_error);
        persister.abort();
        let fitted = fitted??;
        let (f, stage) = progress.snapshot();
        let _ = self.inner.meta.update_job_progress(id, f, &stage).await;

        let key = format!("models/{}/{}.aurum", req.model, id);
        self.inner.artifacts.put(&key, fitted.artifact).await?;
        let registered = self
            .inner
            .meta
            .create_version(NewVersion {
                model: req.model.clone(),
                kind: req.kind.clone(),
                artifact_key: key.clone(),
                artifact_sha256: fitted.artifact_sha256.clone(),
                dataset_name: req.dataset.clone(),
                dataset_sha256: dataset_sha.clone(),
                target: req.target.clone(),
                params_json: fitted.params_json,
                metrics_json: fitted.metrics_json.clone(),
                aurum_version: aurum_core::AURUM_VERSION.to_string(),
                created_by: ctx.actor.clone(),
                job_id: Some(id.to_string()),
            })
            .await;
        let version = match registered {
            Ok(v) => v,
            Err(e) => {
                // Refused before anything was written (an ended job, a name or input the
                // registry refuses): no version names the artifact, so it would never be served
                // or cleaned up. Any other error (a connection lost at COMMIT) leaves the
                // artifact: the version may have been registered.
                use aurum_registry::RegistryError as R;
                let refused = matches!(
                    e,
                    R::Conflict(_)
                        | R::NotFound { .. }
                        | R::InvalidInput(_)
                        | R::InvalidName { .. }
                );
                if refused && let Err(del) = self.inner.artifacts.delete(&key).await {
                    tracing::warn!(key, error = %del, "cannot remove the artifact of an unregistered version");
                }
                return Err(e.into());
            }
        };
        self.audit(
            ctx,
            "model.register",
            Some((&req.model, Some(version.version))),
            serde_json::json!({"job_id": id, "kind": req.kind.as_str(), "dataset_sha256": dataset_sha,
                               "artifact_sha256": fitted.artifact_sha256,
                               "metrics": serde_json::from_str::<serde_json::Value>(&fitted.metrics_json).unwrap_or_default()}),
        )
        .await?;
        let after = self
            .after_registration(ctx, &req, fitted.report, &version)
            .await
            .err();
        Ok((version, after))
    }

    /// The steps after a version is registered: its evaluation report and the requested alias.
    async fn after_registration(
        &self,
        ctx: &CallContext,
        req: &TrainRequest,
        report: Option<aurum_credit::report::ReportInput>,
        version: &VersionRecord,
    ) -> Result<(), ServiceError> {
        if let Some(mut input) = report {
            input.model.version = version.version.to_string();
            match tokio::task::spawn_blocking(move || aurum_credit::report::credit_report(input))
                .await
            {
                Ok(Ok(report)) => {
                    let bytes = serde_json::to_vec(&report).map_err(internal)?;
                    self.inner
                        .artifacts
                        .put(&report_key(&version.artifact_key), bytes)
                        .await?;
                }
                Ok(Err(e)) => {
                    tracing::warn!(model = %req.model, version = version.version, error = %e, "no evaluation report for this version");
                }
                Err(e) => return Err(join_error(e)),
            }
        }
        if let Some(alias) = &req.alias {
            self.set_alias(ctx, &req.model, alias, version.version)
                .await?;
        }
        Ok(())
    }

    /// The stored evaluation report of a version.
    pub async fn version_report(
        &self,
        name: &str,
        version: u32,
    ) -> Result<aurum_credit::report::CreditReport, ServiceError> {
        let record = self.get_version(name, version).await?;
        let key = report_key(&record.artifact_key);
        if !self.inner.artifacts.exists(&key).await? {
            return Err(ServiceError::NotFound {
                resource: "report",
                name: format!("{name}/versions/{version}/report"),
            });
        }
        let bytes = self.inner.artifacts.get(&key).await?;
        serde_json::from_slice(&bytes).map_err(internal)
    }

    pub async fn get_job(&self, id: &str) -> Result<JobRecord, ServiceError> {
        Ok(self.inner.meta.get_job(id).await?)
    }

    pub async fn list_jobs(&self, limit: u32) -> Result<Vec<JobRecord>, ServiceError> {
        Ok(self.inner.meta.list_jobs(limit).await?)
    }

    /// Asks a queued or running job to stop. Finished jobs answer `Conflict`.
    pub async fn cancel_job(&self, ctx: &CallContext, id: &str) -> Result<JobRecord, ServiceError> {
        let (this, ctx, id) = (self.clone(), ctx.clone(), id.to_string());
        self.detached(async move { this.cancel_job_now(&ctx, &id).await })
            .await
    }

    async fn cancel_job_now(&self, ctx: &CallContext, id: &str) -> Result<JobRecord, ServiceError> {
        let job = self.get_job(id).await?;
        self.stop_job(
            ctx,
            &job,
            "training.cancel",
            Some((&job.model, None)),
            serde_json::json!({"job_id": id}),
        )
        .await?;
        self.get_job(id).await
    }

    /// Stops a queued or running job of any kind (training, batch, synthesis): its token when
    /// this process runs it, else the jobs table is moved to `cancelled` (the running process
    /// then finds the job no longer running at its next progress update and stops). Audited as
    /// `event`. Finished jobs answer `Conflict`.
    pub(crate) async fn stop_job(
        &self,
        ctx: &CallContext,
        job: &JobRecord,
        event: &str,
        subject: Option<(&str, Option<u32>)>,
        details: serde_json::Value,
    ) -> Result<(), ServiceError> {
        let id = &job.id;
        if !matches!(job.state, JobState::Queued | JobState::Running) {
            return Err(ServiceError::Conflict(format!(
                "job {id} is already {}; only queued or running jobs can be cancelled",
                job.state.as_str()
            )));
        }
        match self.inner.jobs.get(id) {
            Some(token) => token.cancel(),
            None => {
                self.inner
                    .meta
                    .transition_job(
                        id,
                        JobState::Cancelled,
                        Some("cancelled by request".into()),
                        None,
                    )
                    .await?;
            }
        }
        self.audit(ctx, event, subject, details).await?;
        Ok(())
    }
}

fn fit_and_evaluate(
    families: &aurum_contract::Families,
    p: Prepared,
    cfg: &crate::config::TrainingConfig,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<Fitted, ServiceError> {
    let family = families.get(p.req.kind.as_str())?;
    let ctx = FitContext {
        progress,
        cancel,
        seed: cfg.seed,
    };
    match p.task {
        Task::Binary => fit_binary(family, p, cfg, &ctx),
        // A forecaster is fitted on the whole series: its own backtest (in its fit metrics)
        // is the held-out measure.
        Task::Forecast => {
            let model = family.fit(&TrainingData::new(&p.table, &p.target), &p.req.params, &ctx)?;
            let metrics = model.fit_metrics();
            finish(&p, model.as_ref(), metrics, None, progress)
        }
        // Ranking: a per-user holdout and ranking metrics (crate::recommend).
        Task::Ranking => {
            let (model, metrics) = crate::recommend::fit_and_evaluate(
                family,
                &p.table,
                &p.req.params,
                &p.canonical_params,
                &ctx,
            )?;
            finish(&p, model.as_ref(), metrics, None, progress)
        }
        _ => fit_generic(family, p, cfg, &ctx),
    }
}

/// Encodes the artifact of a fitted model with its metrics.
fn finish(
    p: &Prepared,
    model: &dyn FittedModel,
    metrics: Metrics,
    report: Option<aurum_credit::report::ReportInput>,
    progress: &dyn Progress,
) -> Result<Fitted, ServiceError> {
    let (manifest, artifact) = aurum_contract::encode_artifact(
        ManifestInput {
            metrics: metrics.clone(),
            dataset_sha256: p.dataset_sha256.clone(),
            target: p.req.target.clone(),
            date_formats: p.date_formats.clone(),
        },
        model,
    )?;
    progress.report("done", 1.0);
    Ok(Fitted {
        report,
        artifact_sha256: aurum_core::sha256_hex(&artifact),
        artifact,
        metrics_json: serde_json::to_string(&metrics).map_err(internal)?,
        params_json: serde_json::to_string(&manifest.params).map_err(internal)?,
    })
}

/// Fits the family on the training rows. With text features and a family that does not read
/// text itself, a hashed TF-IDF step is fitted on the same rows, the family is fitted on its
/// output, and the model is wrapped so that it takes (and serves) the raw text column.
fn fit_family(
    family: &dyn aurum_contract::ModelFamily,
    p: &Prepared,
    train_x: &Table,
    train_y: &Target,
    ctx: &FitContext<'_>,
) -> Result<Box<dyn FittedModel>, ServiceError> {
    if p.text_columns.is_empty() || family.reads_text(&p.req.params) {
        return Ok(family.fit(&TrainingData::new(train_x, train_y), &p.req.params, ctx)?);
    }
    ctx.progress.report("text features", 0.0);
    let step = aurum_contract::text::TextStep::fit(train_x, &p.text_columns, p.text_buckets)?;
    let encoded = step.transform_table(train_x)?;
    let inner = family.fit(&TrainingData::new(&encoded, train_y), &p.req.params, ctx)?;
    Ok(Box::new(aurum_contract::text::TextModel::wrap(
        step,
        &train_x.schema(),
        inner,
    )?))
}

/// The held-out split of a non-binary task: time-ordered with a date column, else a seeded
/// random split.
fn plain_split(
    p: &Prepared,
    cfg: &crate::config::TrainingConfig,
) -> Result<aurum_data::Split, ServiceError> {
    Ok(match &p.order_keys {
        Some(keys) => aurum_data::time_ordered_split(keys, cfg.test_fraction)?,
        None => aurum_data::random_split(p.table.n_rows(), cfg.test_fraction, cfg.seed)?,
    })
}

/// Regression, multiclass, anomaly and other tasks: fit on the training rows, score the held-out
/// rows through the same generic row scoring serving uses, and measure by task.
fn fit_generic(
    family: &dyn aurum_contract::ModelFamily,
    p: Prepared,
    cfg: &crate::config::TrainingConfig,
    ctx: &FitContext<'_>,
) -> Result<Fitted, ServiceError> {
    ctx.progress.report("splitting", 0.0);
    let split = plain_split(&p, cfg)?;
    let train_x = p.table.take(&split.train);
    let train_y = p.target.take(&split.train);
    let test_x = p.table.take(&split.test);
    let test_y = p.target.take(&split.test);
    let model = fit_family(family, &p, &train_x, &train_y, ctx)?;
    ctx.progress.report("evaluating", 0.95);
    let test_x = test_x
        .select(model.input_schema().names())
        .map_err(internal)?;
    let rows: Vec<_> = (0..test_x.n_rows()).map(|i| test_x.row(i)).collect();
    let outputs = model.predict_rows(&rows)?;
    let mut metrics = model.fit_metrics();
    metrics.extend(task_metrics(&test_y, &outputs));
    metrics.insert("train_rows".into(), split.train.len() as f64);
    metrics.insert("test_rows".into(), split.test.len() as f64);
    metrics.insert("test_fraction".into(), cfg.test_fraction);
    metrics.retain(|_, v| v.is_finite());
    finish(&p, model.as_ref(), metrics, None, ctx.progress)
}

/// Held-out figures of a non-binary task: RMSE, MAE and R² for a numeric target; accuracy and
/// log loss for classes.
fn task_metrics(target: &Target, outputs: &[Output]) -> Metrics {
    let mut m = Metrics::new();
    match target {
        Target::Numeric(t) => {
            let pairs: Vec<(f64, f64)> =
                t.y.iter()
                    .zip(outputs)
                    .filter_map(|(y, o)| match o {
                        Output::Value(v) if y.is_finite() => Some((*y, *v)),
                        _ => None,
                    })
                    .collect();
            if pairs.is_empty() {
                return m;
            }
            let n = pairs.len() as f64;
            let mean = pairs.iter().map(|(y, _)| y).sum::<f64>() / n;
            let sse: f64 = pairs.iter().map(|(y, v)| (y - v).powi(2)).sum();
            let sst: f64 = pairs.iter().map(|(y, _)| (y - mean).powi(2)).sum();
            m.insert("rmse".into(), (sse / n).sqrt());
            m.insert(
                "mae".into(),
                pairs.iter().map(|(y, v)| (y - v).abs()).sum::<f64>() / n,
            );
            if sst > 0.0 {
                m.insert("r2".into(), 1.0 - sse / sst);
            }
        }
        Target::Classes(t) => {
            let mut correct = 0usize;
            let mut log_loss = 0.0;
            for (y, o) in t.y.iter().zip(outputs) {
                if let Output::Class {
                    label,
                    probabilities,
                } = o
                {
                    let truth = &t.classes[*y as usize];
                    correct += usize::from(label == truth);
                    let p = probabilities.get(*y as usize).copied().unwrap_or(0.0);
                    log_loss -= p.clamp(1e-15, 1.0).ln();
                }
            }
            let n = t.y.len().max(1) as f64;
            m.insert("accuracy".into(), correct as f64 / n);
            m.insert("log_loss".into(), log_loss / n);
        }
        Target::Binary(_) | Target::None => {}
    }
    m
}

fn fit_binary(
    family: &dyn aurum_contract::ModelFamily,
    p: Prepared,
    cfg: &crate::config::TrainingConfig,
    ctx: &FitContext<'_>,
) -> Result<Fitted, ServiceError> {
    let progress = ctx.progress;
    let Target::Binary(target) = &p.target else {
        return Err(internal("a binary family was given a non-binary target"));
    };
    progress.report("splitting", 0.0);
    let split =
        match &p.order_keys {
            Some(keys) => aurum_data::time_ordered_split(keys, cfg.test_fraction)?,
            None => aurum_data::stratified_split(&target.y, cfg.test_fraction, cfg.seed).map_err(
                |e| match e {
                    // The split sees 0/1; the caller knows the class by its label.
                    aurum_data::DataError::ClassTooSmall {
                        class,
                        count,
                        fraction,
                    } => aurum_data::DataError::ClassTooSmall {
                        class: match class.as_str() {
                            "1" => format!("`{}`", target.positive_label),
                            "0" => format!("`{}`", target.negative_label),
                            _ => class,
                        },
                        count,
                        fraction,
                    },
                    e => e,
                },
            )?,
        };
    let train_x = p.table.take(&split.train);
    let train_target = p.target.take(&split.train);
    let train_y = target.take(&split.train);
    let test_x = p.table.take(&split.test);
    let test_y = target.take(&split.test);
    let fitted = fit_family(family, &p, &train_x, &train_target, ctx)?;
    let model = fitted
        .as_binary()
        .ok_or_else(|| internal("a binary family fitted a model without a binary view"))?;
    progress.report("evaluating", 0.95);
    // Evaluation sees exactly what serving sees: the held-out rows projected to the model's
    // input schema, so a column the model left out can never shift a row's values.
    let inputs = || model.input_schema().names();
    let train_x = train_x.select(inputs()).map_err(internal)?;
    let test_x = test_x.select(inputs()).map_err(internal)?;
    let mut excluded = p.excluded.clone();
    let dropped = model.dropped_columns();
    for name in p.table.schema().names() {
        if model.input_schema().field(name).is_none() {
            let reason = dropped
                .iter()
                .find(|(n, _)| n == name)
                .map_or("not used by the model", |(_, r)| r.as_str());
            excluded.push(excluded_column(name, reason));
        }
    }
    let threshold = model.threshold();
    // The family's batch path (columnar encode, no per-row `Vec<Value>`).
    // The held-out rows' PDs and points come from one pass.
    let aurum_contract::TableScores {
        pd: test_p,
        points: scores_test,
    } = model.score_table(&test_x)?;
    let train_p = model.predict_proba_table(&train_x)?;
    let mut metrics = aurum_credit::metrics::evaluate_binary(&test_y.y, &test_p, threshold);
    let cutoff = match model.policy().cutoff {
        aurum_credit::policy::Cutoff::Pd(pd) => pd,
        aurum_credit::policy::Cutoff::Score(_) => threshold,
    };
    let train_metrics = aurum_credit::metrics::evaluate_binary(&train_y.y, &train_p, threshold);
    if let Some(auc) = train_metrics.get("auc") {
        metrics.insert("train_auc".into(), *auc);
    }
    metrics.insert("train_rows".into(), split.train.len() as f64);
    metrics.insert("test_rows".into(), split.test.len() as f64);
    metrics.insert("test_fraction".into(), cfg.test_fraction);
    // What the fit itself measured, as the contract promises; the held-out figures win a clash.
    for (k, v) in fitted.fit_metrics() {
        if v.is_finite() {
            metrics.entry(k).or_insert(v);
        }
    }
    let report = aurum_credit::report::ReportInput {
        model: aurum_credit::report::ModelInfo {
            name: p.req.model.clone(),
            version: String::new(),
            kind: p.req.kind.as_str().to_string(),
        },
        y_train: train_y.y.clone(),
        p_train: train_p,
        y_test: test_y.y.clone(),
        p_test: test_p,
        scores_test,
        threshold: cutoff,
        split: aurum_credit::report::SplitInfo {
            method: if p.order_keys.is_some() {
                aurum_credit::report::SplitMethod::TimeOrdered
            } else {
                aurum_credit::report::SplitMethod::Stratified
            },
            seed: p.order_keys.is_none().then_some(cfg.seed),
            train_fraction: 1.0 - cfg.test_fraction,
            test_fraction: cfg.test_fraction,
        },
        details: model.details(),
        features: model.input_schema().names().map(String::from).collect(),
        excluded_columns: excluded,
    };
    finish(&p, fitted.as_ref(), metrics, Some(report), progress)
}

/// Where a version's evaluation report is stored, next to its artifact.
fn report_key(artifact_key: &str) -> String {
    let stem = artifact_key.strip_suffix(".aurum").unwrap_or(artifact_key);
    format!("{stem}.report.json")
}

impl Platform {
    /// Registers a model trained elsewhere (LightGBM text or XGBoost JSON, by `kind`) as a new
    /// version of `model`. Its lineage is the SHA-256 of the imported file; an optional `alias`
    /// (e.g. `champion`) is moved to it.
    pub async fn import_model(
        &self,
        ctx: &CallContext,
        model: &str,
        format: &str,
        bytes: Vec<u8>,
        threshold: Option<f64>,
        alias: Option<&str>,
    ) -> Result<VersionRecord, ServiceError> {
        let mut params = Params::new();
        if let Some(t) = threshold {
            params.insert("threshold".into(), t.to_string());
        }
        self.import_model_with_params(ctx, model, format, bytes, params, alias)
            .await
    }

    /// [`Platform::import_model`] with the format's own import parameters (`key=value`, e.g.
    /// an ONNX model's `features`, `labels` or `task`), checked by the family. The version is
    /// registered under the family of the imported model (an `onnx` import of a regression
    /// graph is an `onnx_regression` version).
    pub async fn import_model_with_params(
        &self,
        ctx: &CallContext,
        model: &str,
        format: &str,
        bytes: Vec<u8>,
        params: Params,
        alias: Option<&str>,
    ) -> Result<VersionRecord, ServiceError> {
        let (this, ctx, model) = (self.clone(), ctx.clone(), model.to_string());
        let format = format.to_string();
        let alias = alias.map(str::to_string);
        self.detached(async move {
            this.import_model_now(&ctx, &model, &format, bytes, params, alias.as_deref())
                .await
        })
        .await
    }

    async fn import_model_now(
        &self,
        ctx: &CallContext,
        model: &str,
        format: &str,
        bytes: Vec<u8>,
        params: Params,
        alias: Option<&str>,
    ) -> Result<VersionRecord, ServiceError> {
        validate_name(model)
            .map_err(|e| ServiceError::invalid("invalid_name", Some("model"), e.to_string()))?;
        let families = self.inner.families.clone();
        let family = match families.get(format) {
            Ok(f) if f.spec().importable => f,
            _ => {
                let importable: Vec<String> = families
                    .specs()
                    .filter(|s| s.importable)
                    .map(|s| format!("`{}`", s.name))
                    .collect();
                return Err(ServiceError::invalid(
                    "invalid_field",
                    Some("format"),
                    format!("format `{format}` must be {}", importable.join(" or ")),
                ));
            }
        };
        let name = family.spec().name;
        let file_sha = aurum_core::sha256_hex(&bytes);
        let sha = file_sha.clone();
        let (kind, artifact, params_json) = tokio::task::spawn_blocking(move || {
            let family = families.get(name)?;
            let fitted = family.import(&bytes, &params)?;
            let kind = FamilyName::new(fitted.family()).map_err(internal)?;
            let (manifest, artifact) = aurum_contract::encode_artifact(
                ManifestInput {
                    metrics: Default::default(),
                    dataset_sha256: sha,
                    target: String::new(),
                    date_formats: Default::default(),
                },
                fitted.as_ref(),
            )?;
            Ok::<_, ServiceError>((kind, artifact, manifest.params.to_string()))
        })
        .await
        .map_err(join_error)??;
        let key = format!("models/{model}/import-{}.aurum", uuid::Uuid::new_v4());
        let artifact_sha256 = aurum_core::sha256_hex(&artifact);
        self.inner.artifacts.put(&key, artifact).await?;
        let version = self
            .inner
            .meta
            .create_version(NewVersion {
                model: model.to_string(),
                kind: kind.clone(),
                artifact_key: key,
                artifact_sha256: artifact_sha256.clone(),
                dataset_name: String::new(),
                dataset_sha256: file_sha.clone(),
                target: String::new(),
                params_json,
                metrics_json: "{}".into(),
                aurum_version: aurum_core::AURUM_VERSION.to_string(),
                created_by: ctx.actor.clone(),
                job_id: None,
            })
            .await?;
        self.audit(
            ctx,
            "model.import",
            Some((model, Some(version.version))),
            serde_json::json!({"format": kind.as_str(), "file_sha256": file_sha, "artifact_sha256": artifact_sha256}),
        )
        .await?;
        if let Some(alias) = alias {
            self.set_alias(ctx, model, alias, version.version).await?;
        }
        tracing::info!(
            model,
            version = version.version,
            format = kind.as_str(),
            "model imported"
        );
        Ok(version)
    }
}

fn excluded_column(name: &str, reason: impl Into<String>) -> ExcludedColumn {
    ExcludedColumn {
        column: name.to_string(),
        reason: reason.into(),
    }
}

/// What [`candidate_features`] keeps.
struct Candidates {
    features: Table,
    excluded: Vec<ExcludedColumn>,
    /// The kept text columns (a subset of `features`' columns).
    text: Vec<String>,
}

/// The columns that can be features, and the others with the reason. This is the one rule of
/// what is not a feature, applied before any family sees the table, so fit, held-out evaluation
/// and serving agree (the model's input schema is a subset of what is kept here):
///
/// * text columns are features through the text step when `text_columns` lists them, or, when
///   it is absent, when at least 5 % of the cells hold a word that recurs (in at least 3 cells,
///   or 0.1 % of them, and not in every one), unless the cells are short (under three words on
///   average) and nearly unique per row (90 % distinct): that is a name or an identifier, never
///   a feature unless listed, as names are no basis for a credit decision;
/// * datetime columns (dates are features, timestamps are not encoded);
/// * columns with no value at all, and constant columns (one value, never missing), unless
///   `keep_constant` (a family that takes its columns by position, such as an image's pixels:
///   [`aurum_contract::ModelFamily::keeps_constant_columns`]).
///
/// The target and the split date column are removed by the caller.
fn candidate_features(
    table: Table,
    text_request: Option<&[String]>,
    keep_constant: bool,
) -> Result<Candidates, ServiceError> {
    let profile = aurum_data::profile(&table);
    if let Some(list) = text_request {
        for name in list {
            let Some(c) = profile.columns.iter().find(|c| c.name == *name) else {
                return Err(ServiceError::invalid(
                    "unknown_column",
                    Some("text_columns"),
                    format!("text column `{name}` is not a feature column of the dataset"),
                ));
            };
            if !matches!(
                c.column_type,
                aurum_core::ColumnType::Text | aurum_core::ColumnType::Categorical
            ) {
                return Err(ServiceError::invalid(
                    "invalid_field",
                    Some("text_columns"),
                    format!(
                        "text column `{name}` is {}, not text",
                        c.column_type.as_str()
                    ),
                ));
            }
        }
    }
    let mut excluded = Vec::new();
    let mut text = Vec::new();
    for c in &profile.columns {
        let listed = text_request.map(|l| l.contains(&c.name));
        let reason = match c.column_type {
            _ if listed == Some(true) => {
                let cells = text_cells(&table, &c.name);
                let t = aurum_contract::text::profile(cells.iter().map(|c| c.as_deref()));
                if t.recurring_tokens == 0 {
                    return Err(ServiceError::invalid(
                        "invalid_field",
                        Some("text_columns"),
                        format!(
                            "text column `{}` has no word that recurs in at least {} cells: nothing to learn from",
                            c.name,
                            aurum_contract::text::min_token_rows(t.rows)
                        ),
                    ));
                }
                text.push(c.name.clone());
                None
            }
            aurum_core::ColumnType::Text => {
                let cells = text_cells(&table, &c.name);
                let t = aurum_contract::text::profile(cells.iter().map(|c| c.as_deref()));
                if listed == Some(false) {
                    Some(format!(
                        "text: {} distinct values, not in text_columns",
                        c.distinct_count
                    ))
                } else if t.looks_like_identifier() {
                    Some(format!(
                        "text: {} distinct values, short and unique per row (a name or an identifier)",
                        c.distinct_count
                    ))
                } else if t.recurring_tokens == 0 || t.covered < 0.05 {
                    Some(format!(
                        "text: {} distinct values and no recurring words",
                        c.distinct_count
                    ))
                } else {
                    text.push(c.name.clone());
                    None
                }
            }
            aurum_core::ColumnType::DateTime => Some("datetime: not encoded".to_string()),
            _ if c.distinct_count == 0 => Some("all missing".to_string()),
            _ if c.distinct_count == 1 && c.missing_count == 0 && !keep_constant => {
                Some("constant".to_string())
            }
            _ => None,
        };
        if let Some(reason) = reason {
            excluded.push(excluded_column(&c.name, reason));
        }
    }
    let kept: Vec<&str> = table
        .columns()
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| !excluded.iter().any(|e| e.column == *n))
        .collect();
    if kept.is_empty() {
        let list: Vec<String> = excluded
            .iter()
            .map(|e| format!("{} ({})", e.column, e.reason))
            .collect();
        return Err(ServiceError::invalid(
            "no_usable_features",
            None,
            format!(
                "no column can be a feature: {}",
                if list.is_empty() {
                    "the dataset has only the target".to_string()
                } else {
                    list.join(", ")
                }
            ),
        ));
    }
    let features = table.select(kept).map_err(internal)?;
    Ok(Candidates {
        features,
        excluded,
        text,
    })
}

/// The string cells of a text or categorical column (empty for other types).
fn text_cells<'a>(table: &'a Table, name: &str) -> &'a [Option<String>] {
    match table.column(name).map(|c| &c.data) {
        Some(aurum_core::ColumnData::Text(v) | aurum_core::ColumnData::Categorical(v)) => v,
        _ => &[],
    }
}

/// Sort keys for a time-ordered split from a date, date-time or integer column. A missing value
/// is an error naming the row: a row without a date has no place in time.
fn order_keys(table: &Table, column: &str) -> Result<Vec<i64>, ServiceError> {
    use aurum_core::ColumnData;
    let col = table.column(column).ok_or_else(|| {
        ServiceError::invalid(
            "unknown_column",
            Some("date_column"),
            format!("date column `{column}` does not exist"),
        )
    })?;
    let missing = |row: usize| {
        ServiceError::invalid(
            "missing_date",
            Some("date_column"),
            format!(
                "date column `{column}` is missing on data row {} (line {})",
                row + 1,
                row + 2
            ),
        )
    };
    match &col.data {
        ColumnData::Date(v) => v
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d.map(|d| i64::from(chrono::Datelike::num_days_from_ce(&d)))
                    .ok_or_else(|| missing(i))
            })
            .collect(),
        ColumnData::DateTime(v) => v
            .iter()
            .enumerate()
            .map(|(i, d)| d.map(|d| d.and_utc().timestamp()).ok_or_else(|| missing(i)))
            .collect(),
        ColumnData::Integer(v) => v
            .iter()
            .enumerate()
            .map(|(i, d)| d.ok_or_else(|| missing(i)))
            .collect(),
        other => Err(ServiceError::invalid(
            "invalid_field",
            Some("date_column"),
            format!(
                "date column `{column}` is {}, not a date, date-time or integer period",
                other.column_type()
            ),
        )),
    }
}
