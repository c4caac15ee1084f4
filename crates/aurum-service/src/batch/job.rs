//! Batch jobs: an imported dataset scored in the background, with progress, cancellation and a
//! downloadable output.
//!
//! **Why the training jobs table, not a new one.** A batch job needs exactly what a training job
//! has: a queued → running → succeeded | failed | cancelled life cycle moved by compare-and-set,
//! persisted progress and stage, an owner and heartbeat so a process that dies leaves a `failed`
//! job rather than a `running` one forever (`fail_interrupted_jobs`), a dataset reference (a
//! foreign key) and a model. So a batch job is a row of `jobs` with `kind` =
//! [`BATCH_JOB_KIND`] (not a family name any build registers), an empty `target`, its options in
//! `params_json` and the scored version in `result_version`. No migration, and the heartbeat and
//! crash recovery come for free. The cost: `GET /v1/training-jobs` lists batch jobs too (with
//! their kind); `/v1/batch-jobs/{id}` answers only batch jobs.
//!
//! **Where the output lives.** The scoring replica writes
//! `<data_dir>/batch-jobs/<job-id>.<csv|parquet|jsonl>`, with `<job-id>.errors.csv` and the
//! run's summary `<job-id>.json`, as `….partial` files renamed when the job succeeds: the output
//! is streamed to disk as it is scored. Before the job is marked succeeded, the three files are
//! also copied into the `ArtifactStore` under `batch-jobs/<file>` (sealed when encryption at rest
//! is on), so that any replica sharing the store can answer for the job: a replica without the
//! local file fetches it once into its own `batch-jobs/` and streams it from there. The copy
//! holds one file in memory at a time (the store's trait moves whole byte vectors). A job whose
//! files cannot be stored is failed, never reported succeeded without them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurum_core::{CancelToken, FamilyName};
use aurum_registry::{JobRecord, JobState, NewJob};
use serde::{Deserialize, Serialize};

use super::{BatchOptions, BatchProgress, BatchSinks, BatchSource, FileFormat};
use crate::{CallContext, ModelRef, Platform, ServiceError};

/// The `kind` of a batch job in the jobs table.
pub const BATCH_JOB_KIND: &str = "batch_predict";

/// The stored summary's format version.
const RESULT_FORMAT_VERSION: u32 = 1;

/// What `POST /v1/batch-jobs` asks for.
#[derive(Clone, Debug)]
pub struct BatchJobRequest {
    pub model: ModelRef,
    /// An imported dataset.
    pub dataset: String,
    pub output_format: FileFormat,
    pub explain: bool,
    pub keep: Vec<String>,
    pub audit_rows: bool,
}

/// A finished run's figures, stored beside the output (`<job-id>.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchJobResult {
    pub format_version: u32,
    pub version: u32,
    pub output_format: String,
    pub rows_read: u64,
    pub rows_scored: u64,
    pub rows_refused: u64,
    pub input_sha256: String,
    pub output_sha256: String,
    pub output_bytes: u64,
    pub errors_sha256: String,
    pub audit_seq: Option<u64>,
}

/// A batch job: its row in the jobs table and, once it succeeded, its figures.
#[derive(Clone, Debug)]
pub struct BatchJob {
    pub job: JobRecord,
    pub output_format: FileFormat,
    pub result: Option<BatchJobResult>,
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// Persists progress about once a second; stops the run when the job is no longer running.
struct JobRows {
    platform: Platform,
    id: String,
    total: u64,
    last: Mutex<Instant>,
    cancel: CancelToken,
    handle: tokio::runtime::Handle,
}

impl BatchProgress for JobRows {
    fn rows(&self, read: u64, scored: u64, refused: u64) {
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < Duration::from_secs(1) {
                return;
            }
            *last = Instant::now();
        }
        let fraction = if self.total == 0 {
            0.0
        } else {
            (read as f64 / self.total as f64).min(1.0)
        };
        let stage = format!("scoring: {scored} scored, {refused} refused");
        let update = self.handle.block_on(
            self.platform
                .inner
                .meta
                .update_job_progress(&self.id, fraction, &stage),
        );
        if matches!(update, Ok(false)) {
            self.cancel.cancel();
        }
    }
}

impl Platform {
    fn batch_dir(&self) -> PathBuf {
        self.inner.config.data_dir.join("batch-jobs")
    }

    /// Validates and queues a batch job; it runs in the background. The model must answer
    /// binary decisions, and the dataset must hold every feature and kept column.
    pub async fn submit_batch_job(
        &self,
        ctx: &CallContext,
        req: BatchJobRequest,
    ) -> Result<JobRecord, ServiceError> {
        let (this, ctx) = (self.clone(), ctx.clone());
        self.detached(async move { this.submit_batch_job_now(&ctx, req).await })
            .await
    }

    async fn submit_batch_job_now(
        &self,
        ctx: &CallContext,
        req: BatchJobRequest,
    ) -> Result<JobRecord, ServiceError> {
        let model = self.resolve(&req.model).await?;
        model.check_scoring()?;
        model.binary()?;
        let (record, profile) = self.get_dataset(&req.dataset).await?;
        let missing: Vec<String> = model
            .input_schema()
            .fields
            .iter()
            .map(|f| f.name.clone())
            .chain(req.keep.iter().cloned())
            .filter(|w| !profile.columns.iter().any(|c| &c.name == w))
            .collect();
        if !missing.is_empty() {
            return Err(ServiceError::invalid(
                "missing_column",
                Some("dataset"),
                format!(
                    "dataset `{}` has no column {} (the model's features and `keep` columns must all be columns)",
                    req.dataset,
                    missing.join(", ")
                ),
            ));
        }
        let params = serde_json::json!({
            "version": model.version,
            "output_format": req.output_format.as_str(),
            "explain": req.explain,
            "keep": req.keep,
            "audit_rows": req.audit_rows,
        });
        let job = self
            .inner
            .meta
            .create_job(NewJob {
                dataset: req.dataset.clone(),
                target: String::new(),
                kind: FamilyName::new(BATCH_JOB_KIND).map_err(internal)?,
                model: model.name.clone(),
                params_json: params.to_string(),
                created_by: ctx.actor.clone(),
                owner: self.inner.instance.clone(),
            })
            .await?;
        self.audit(
            ctx,
            "batch_job.submit",
            Some((&model.name, Some(model.version))),
            serde_json::json!({"job_id": job.id, "dataset": req.dataset, "dataset_sha256": record.sha256, "params": params}),
        )
        .await?;
        let cancel = CancelToken::new();
        self.inner.jobs.insert(&job.id, cancel.clone());
        let (this, ctx, id) = (self.clone(), ctx.clone(), job.id.clone());
        let opts = BatchOptions {
            explain: req.explain,
            keep: req.keep,
            strict: false,
            audit_rows: req.audit_rows,
            ..BatchOptions::default()
        };
        tokio::spawn(async move {
            this.run_batch_job(&ctx, &id, model, record, req.output_format, opts, cancel)
                .await;
            this.inner.jobs.remove(&id);
        });
        Ok(job)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_batch_job(
        &self,
        ctx: &CallContext,
        id: &str,
        model: Arc<crate::LoadedModel>,
        dataset: aurum_registry::DatasetRecord,
        format: FileFormat,
        opts: BatchOptions,
        cancel: CancelToken,
    ) {
        let dir = self.batch_dir();
        let output = dir.join(format!("{id}.{}", format.as_str()));
        let errors = dir.join(format!("{id}.errors.csv"));
        let partial = |p: &PathBuf| PathBuf::from(format!("{}.partial", p.display()));
        let result = async {
            self.inner
                .meta
                .transition_job(id, JobState::Running, None, None)
                .await?;
            let key = format!("datasets/{}.{}", dataset.sha256, dataset.format);
            let bytes =
                aurum_registry::get_verified(self.inner.artifacts.as_ref(), &key, &dataset.sha256)
                    .await?;
            let source_format = FileFormat::from_name(&dataset.format).ok_or_else(|| {
                internal(format!(
                    "dataset format `{}` is not readable",
                    dataset.format
                ))
            })?;
            fs_err::create_dir_all(&dir).map_err(internal)?;
            let out = fs_err::File::create(partial(&output)).map_err(internal)?;
            let err = fs_err::File::create(partial(&errors)).map_err(internal)?;
            let sinks = BatchSinks {
                output: Box::new(std::io::BufWriter::with_capacity(1 << 20, out)),
                output_format: format,
                errors: Box::new(std::io::BufWriter::new(err)),
                errors_format: FileFormat::Csv,
            };
            let progress = Arc::new(JobRows {
                platform: self.clone(),
                id: id.to_string(),
                total: dataset.rows,
                last: Mutex::new(Instant::now()),
                cancel: cancel.clone(),
                handle: tokio::runtime::Handle::current(),
            });
            self.predict_batch(
                ctx,
                model.clone(),
                BatchSource::Bytes(bytes, source_format),
                sinks,
                opts,
                progress,
                cancel.clone(),
                Some(id),
            )
            .await
        }
        .await;
        let (state, error, version) = match &result {
            Ok(s) if s.end == super::BatchEnd::Cancelled => (
                JobState::Cancelled,
                Some("cancelled by request".to_string()),
                None,
            ),
            Ok(s) => {
                let stored = BatchJobResult {
                    format_version: RESULT_FORMAT_VERSION,
                    version: s.version,
                    output_format: format.as_str().into(),
                    rows_read: s.rows_read,
                    rows_scored: s.rows_scored,
                    rows_refused: s.rows_refused,
                    input_sha256: s.input_sha256.clone(),
                    output_sha256: s.output_sha256.clone(),
                    output_bytes: s.output_bytes,
                    errors_sha256: s.errors_sha256.clone(),
                    audit_seq: s.audit_seq,
                };
                let saved = serde_json::to_vec(&stored)
                    .map_err(internal)
                    .and_then(|b| {
                        crate::flows::write_atomic(&dir.join(format!("{id}.json")), &b)
                            .map_err(internal)
                    })
                    .and_then(|()| {
                        fs_err::rename(partial(&errors), &errors).map_err(internal)?;
                        fs_err::rename(partial(&output), &output).map_err(internal)
                    });
                let saved = match saved {
                    Ok(()) => self.store_batch_files(id, format).await,
                    Err(e) => Err(e),
                };
                match saved {
                    Ok(()) => (JobState::Succeeded, None, Some(s.version)),
                    Err(e) => (JobState::Failed, Some(format!("{}: {}", e.code(), e)), None),
                }
            }
            Err(e) => (
                JobState::Failed,
                Some(format!("{}: {}", e.code(), e.public_message())),
                None,
            ),
        };
        if state != JobState::Succeeded {
            let _ = std::fs::remove_file(partial(&output));
            let _ = std::fs::remove_file(partial(&errors));
        }
        match self
            .inner
            .meta
            .transition_job(id, state, error.clone(), version)
            .await
        {
            // Another process ended the job (its owner looked gone) and audited that end.
            Err(e @ aurum_registry::RegistryError::InvalidTransition { .. }) => {
                tracing::error!(job = id, error = %e, "the batch job was ended by another process");
                return;
            }
            Err(e) => tracing::error!(job = id, error = %e, "cannot record batch job outcome"),
            Ok(_) => {}
        }
        let details = serde_json::json!({"job_id": id, "state": state.as_str(), "error": error});
        if let Err(e) = self
            .audit(
                ctx,
                "batch_job.finish",
                Some((&model.name, Some(model.version))),
                details,
            )
            .await
        {
            tracing::error!(job = id, error = %e, "cannot audit batch job outcome");
        }
    }

    /// A batch job by id (a training job's id is `job_not_found` here).
    pub async fn get_batch_job(&self, id: &str) -> Result<BatchJob, ServiceError> {
        let job = self.inner.meta.get_job(id).await?;
        if job.kind.as_str() != BATCH_JOB_KIND {
            return Err(ServiceError::NotFound {
                resource: "job",
                name: id.to_string(),
            });
        }
        let params: serde_json::Value = serde_json::from_str(&job.params_json).map_err(internal)?;
        let output_format = params["output_format"]
            .as_str()
            .and_then(FileFormat::from_name)
            .ok_or_else(|| internal("batch job without an output format"))?;
        let result = if job.state == JobState::Succeeded {
            let path = self.batch_file(&format!("{id}.json")).await?;
            let bytes = fs_err::read(path).map_err(internal)?;
            Some(serde_json::from_slice(&bytes).map_err(internal)?)
        } else {
            None
        };
        Ok(BatchJob {
            job,
            output_format,
            result,
        })
    }

    /// Asks a queued or running batch job to stop. Finished jobs answer `Conflict`.
    pub async fn cancel_batch_job(
        &self,
        ctx: &CallContext,
        id: &str,
    ) -> Result<BatchJob, ServiceError> {
        let (this, ctx, id) = (self.clone(), ctx.clone(), id.to_string());
        self.detached(async move {
            let job = this.get_batch_job(&id).await?.job;
            this.stop_job(
                &ctx,
                &job,
                "batch_job.cancel",
                Some((&job.model, None)),
                serde_json::json!({"job_id": id}),
            )
            .await?;
            this.get_batch_job(&id).await
        })
        .await
    }

    /// The most recent batch jobs, newest first, at most `limit` (1..=1000) of them, among the
    /// last 5 000 jobs of any kind.
    pub async fn list_batch_jobs(&self, limit: u32) -> Result<Vec<BatchJob>, ServiceError> {
        let limit = limit.clamp(1, 1000) as usize;
        let mut out = Vec::new();
        for job in self.inner.meta.list_jobs(5_000).await? {
            if job.kind.as_str() != BATCH_JOB_KIND {
                continue;
            }
            out.push(self.get_batch_job(&job.id).await?);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// The error file of a succeeded batch job (CSV: line, column, code and message of every
    /// refused row; only the header when none was refused), for streaming to the caller.
    pub async fn batch_job_errors(&self, id: &str) -> Result<PathBuf, ServiceError> {
        let job = self.get_batch_job(id).await?;
        if job.job.state != JobState::Succeeded {
            return Err(ServiceError::Conflict(format!(
                "job {id} is {}; its error file is available once it has succeeded",
                job.job.state.as_str()
            )));
        }
        self.batch_file(&format!("{id}.errors.csv")).await
    }

    /// The scored file of a succeeded batch job, for streaming to the caller.
    pub async fn batch_job_output(&self, id: &str) -> Result<(PathBuf, FileFormat), ServiceError> {
        let job = self.get_batch_job(id).await?;
        if job.job.state != JobState::Succeeded {
            return Err(ServiceError::Conflict(format!(
                "job {id} is {}; its output is available once it has succeeded",
                job.job.state.as_str()
            )));
        }
        let path = self
            .batch_file(&format!("{id}.{}", job.output_format.as_str()))
            .await?;
        Ok((path, job.output_format))
    }

    /// Copies a finished job's output, error file and summary into the artifact store.
    async fn store_batch_files(&self, id: &str, format: FileFormat) -> Result<(), ServiceError> {
        for name in [
            format!("{id}.{}", format.as_str()),
            format!("{id}.errors.csv"),
            format!("{id}.json"),
        ] {
            let bytes = fs_err::read(self.batch_dir().join(&name)).map_err(internal)?;
            self.inner
                .artifacts
                .put(&format!("batch-jobs/{name}"), bytes)
                .await?;
        }
        Ok(())
    }

    /// The local path of a finished job's file `name`, fetched from the artifact store first when
    /// this replica did not score the job (written to a temporary file and renamed, so a reader
    /// never sees half of it).
    async fn batch_file(&self, name: &str) -> Result<PathBuf, ServiceError> {
        let path = self.batch_dir().join(name);
        if path.exists() {
            return Ok(path);
        }
        let bytes = self
            .inner
            .artifacts
            .get(&format!("batch-jobs/{name}"))
            .await?;
        fs_err::create_dir_all(self.batch_dir()).map_err(internal)?;
        let temp = self
            .batch_dir()
            .join(format!("{name}.{}.fetch", uuid::Uuid::new_v4().simple()));
        fs_err::write(&temp, bytes).map_err(internal)?;
        fs_err::rename(&temp, &path).map_err(internal)?;
        Ok(path)
    }
}
