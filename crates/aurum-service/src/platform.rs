//! [`Platform`]: opening the stores and the dataset operations.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use aurum_core::{ColumnType, Schema, Table, sha256_hex, validate_name};
use aurum_data::{DatasetProfile, Format, ReadOptions};
use aurum_registry::audit::{AnchorKey, AnchorOptions, AuditEntry, AuditLog, AuditStore};
use aurum_registry::{
    ArtifactStore, DatasetRecord, LocalArtifactStore, MetadataStore, NewDataset, RegistryError,
    SqliteStore, get_verified,
};
use tokio::sync::Semaphore;

use crate::keys::KeyRing;
use crate::models::ModelCache;
use crate::training::JobControl;
use crate::{Config, ServiceError};

/// A job whose owner has not sent a heartbeat for this long is taken as interrupted.
pub const JOB_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(15);

/// Who is calling and under which request id; recorded in every audit record.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// The API key name, or `cli` for local commands.
    pub actor: String,
    pub request_id: Option<String>,
}

impl CallContext {
    pub fn cli() -> Self {
        CallContext {
            actor: "cli".into(),
            request_id: None,
        }
    }

    /// What the process does on its own (ending jobs whose process stopped): actor `aurum`.
    pub fn recovery() -> Self {
        CallContext {
            actor: "aurum".into(),
            request_id: None,
        }
    }
}

/// The result of a dataset import.
#[derive(Clone, Debug)]
pub struct DatasetImport {
    pub record: DatasetRecord,
    /// `false` when the same bytes were already registered under this name (a no-op).
    pub created: bool,
}

/// The three stores a platform runs on. [`Stores::embedded`] builds the single-machine ones;
/// the `aurum` binary builds PostgreSQL and object-store ones for replicas.
pub struct Stores {
    /// Datasets, models, versions, aliases, jobs, keys, outcomes.
    pub meta: Arc<dyn MetadataStore>,
    /// The audit log's rows (the log itself, its writer and anchor, are built over it).
    pub audit: Arc<dyn AuditStore>,
    /// Dataset, artifact and report bytes, before the encryption layer (added from the config).
    pub artifacts: Arc<dyn ArtifactStore>,
    /// Where live fraud state lives when replicas share it (Redis); `None`: in this process,
    /// under `<data_dir>/state/<model>/`.
    pub fraud_state: Option<Arc<dyn aurum_fraud::OnlineStateFactory>>,
    /// Request limits every replica shares (Redis, `registry.limits_url`); `None`: each
    /// process keeps its own.
    pub limits: Option<Arc<dyn crate::keys::SharedLimits>>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("audit", &self.audit.location())
            .finish_non_exhaustive()
    }
}

impl Stores {
    /// The embedded stores in the data directory: `registry.db`, `audit.db` (SQLite) and
    /// `artifacts/`. Refused when the configuration asks for a server backend, which only the
    /// `aurum` binary links.
    pub async fn embedded(config: &Config) -> Result<Stores, ServiceError> {
        if config.registry.backend != "sqlite"
            || config.registry.artifact_store_url.is_some()
            || config.registry.fraud_state_url.is_some()
            || config.registry.limits_url.is_some()
        {
            return Err(ServiceError::Internal(format!(
                "registry.backend `{}` / registry.artifact_store_url / registry.fraud_state_url / \
                 registry.limits_url are \
                 opened by the aurum binary (aurum-server's open_platform), not by the embedded \
                 stores",
                config.registry.backend
            )));
        }
        let (meta, audit) = Self::embedded_registry(config).await?;
        Ok(Stores {
            meta,
            audit,
            artifacts: Arc::new(LocalArtifactStore::new(config.data_dir.join("artifacts"))?),
            fraud_state: None,
            limits: None,
        })
    }

    /// The embedded registry and audit log alone (`registry.db`, `audit.db`), for a process that
    /// keeps its artifacts elsewhere.
    pub async fn embedded_registry(
        config: &Config,
    ) -> Result<(Arc<dyn MetadataStore>, Arc<dyn AuditStore>), ServiceError> {
        let dir = &config.data_dir;
        fs_err::create_dir_all(dir)
            .map_err(|e| ServiceError::Internal(format!("cannot create data dir: {e}")))?;
        let meta = SqliteStore::open(&dir.join("registry.db")).await?;
        let audit =
            aurum_registry::audit::SqliteAuditStore::open_file(dir.join("audit.db")).await?;
        Ok((Arc::new(meta), Arc::new(audit)))
    }
}

/// The platform: stores, caches and the operations over them. Cheap to clone.
#[derive(Clone)]
pub struct Platform {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    /// Every model family this process can train, import and load, by name.
    pub(crate) families: Arc<aurum_contract::Families>,
    pub(crate) meta: Arc<dyn MetadataStore>,
    pub(crate) artifacts: Arc<dyn ArtifactStore>,
    /// The same store without the encryption layer (for re-sealing after a key rotation).
    pub(crate) raw_artifacts: Arc<dyn ArtifactStore>,
    /// The encryption-at-rest keys, when configured: they also seal the prediction inputs an
    /// audit record keeps (`audit.fields_in_clear`, `audit.masked_fields`).
    pub(crate) sealer: Option<aurum_registry::EncryptionKeys>,
    pub(crate) audit: AuditLog,
    pub(crate) models: ModelCache,
    pub(crate) keys: KeyRing,
    pub(crate) jobs: JobControl,
    /// This process instance's id: the owner recorded on the jobs it runs.
    pub(crate) instance: String,
    pub(crate) job_slots: Arc<Semaphore>,
    pub(crate) batchers: crate::batching::Batchers,
    pub(crate) monitors: crate::monitoring::Monitors,
    pub(crate) challengers: crate::challenger::Challengers,
    /// Shared fraud state (see [`Stores::fraud_state`]).
    pub(crate) fraud_state: Option<Arc<dyn aurum_fraud::OnlineStateFactory>>,
    /// Where alerts go besides the log (see `crate::alerts`).
    pub(crate) alert_sink: std::sync::OnceLock<Arc<dyn crate::alerts::AlertSink>>,
    /// The shadow-record writer's queue (see `crate::challenger`).
    pub(crate) shadow_queue: crate::challenger::ShadowQueue,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("data_dir", &self.inner.config.data_dir)
            .finish()
    }
}

/// Where the audit anchor lives and where its key comes from: the secret if one was given, else
/// the key file (both default to the data directory).
fn anchor_options(config: &Config) -> AnchorOptions {
    let audit = &config.audit;
    let dir = &config.data_dir;
    AnchorOptions {
        path: audit
            .anchor_file
            .clone()
            .unwrap_or_else(|| dir.join("audit.anchor")),
        key: match &audit.anchor_key {
            Some(secret) => AnchorKey::Secret(secret.as_bytes().to_vec()),
            None => AnchorKey::File(
                audit
                    .anchor_key_file
                    .clone()
                    .unwrap_or_else(|| dir.join("audit.key")),
            ),
        },
    }
}

/// For a re-import of the same bytes under the same name: 409 unless every type override and
/// date format the call gives is what the stored schema already has. A dataset is read once, at
/// import; reading it another way is a new dataset.
fn check_same_reading(
    name: &str,
    stored: &aurum_core::Schema,
    overrides: &BTreeMap<String, ColumnType>,
    date_formats: &BTreeMap<String, String>,
) -> Result<(), ServiceError> {
    let field = |col: &str| stored.fields.iter().find(|f| f.name == col);
    let differs = |what: String| {
        Err(ServiceError::Conflict(format!(
            "dataset `{name}` already holds these bytes with {what}; a dataset is read once, when \
             it is imported: import under a new name to read it another way"
        )))
    };
    let unknown = |col: &str, context: &'static str| {
        Err(ServiceError::Data(aurum_data::DataError::UnknownColumn {
            name: col.to_string(),
            context,
            available: stored.fields.iter().map(|f| f.name.clone()).collect(),
        }))
    };
    for (col, ty) in overrides {
        match field(col) {
            Some(f) if f.ty == *ty => {}
            Some(f) => {
                return differs(format!("`{col}` as {}, not {}", f.ty.as_str(), ty.as_str()));
            }
            None => return unknown(col, "type override"),
        }
    }
    for (col, fmt) in date_formats {
        match field(col) {
            Some(f) if f.format.as_deref() == Some(fmt.as_str()) => {}
            Some(f) => {
                return differs(format!(
                    "`{col}` read {}, not with the date format `{fmt}`",
                    f.format.as_deref().map_or_else(
                        || format!("as {}", f.ty.as_str()),
                        |g| format!("with the date format `{g}`")
                    )
                ));
            }
            None => return unknown(col, "date format"),
        }
    }
    Ok(())
}

impl Platform {
    /// Opens (creating if needed) the data directory: registry, audit log and artifact store.
    ///
    /// Jobs left queued or running by a process that is gone (no heartbeat for
    /// [`JOB_STALE_AFTER`]) are marked failed; jobs of live processes are left alone. A
    /// background task then keeps this process coherent with the others sharing the data dir
    /// (see [`crate::coherence`]).
    pub async fn open(config: Config) -> Result<Platform, ServiceError> {
        Self::open_with_families(config, aurum_families::builtin()).await
    }

    /// [`Platform::open`] with an explicit family registry (the built-in families plus others,
    /// or a subset).
    pub async fn open_with_families(
        config: Config,
        families: aurum_contract::Families,
    ) -> Result<Platform, ServiceError> {
        let stores = Stores::embedded(&config).await?;
        Self::open_with_stores(config, families, stores).await
    }

    /// Opens the platform over stores built by the caller: the embedded ones
    /// ([`Stores::embedded`]) or the scale-out backends (PostgreSQL, S3-compatible storage),
    /// which the binary builds so that this crate never links their clients. The data directory
    /// still holds this process's own files (the audit anchor, monitoring windows).
    pub async fn open_with_stores(
        config: Config,
        families: aurum_contract::Families,
        stores: Stores,
    ) -> Result<Platform, ServiceError> {
        let dir = config.data_dir.clone();
        fs_err::create_dir_all(&dir)
            .map_err(|e| ServiceError::Internal(format!("cannot create data dir: {e}")))?;
        let Stores {
            meta,
            audit,
            artifacts: raw_artifacts,
            fraud_state,
            limits,
        } = stores;
        let sealer = encryption_keys(&config)?;
        let artifacts: Arc<dyn ArtifactStore> = match &sealer {
            Some(keys) => {
                tracing::info!(keys = ?keys.ids(), "artifacts and audited inputs are encrypted at rest");
                Arc::new(aurum_registry::EncryptedArtifactStore::new(
                    Arc::clone(&raw_artifacts),
                    keys.clone(),
                ))
            }
            None => Arc::clone(&raw_artifacts),
        };
        let audit = AuditLog::open_store(
            audit,
            anchor_options(&config),
            aurum_registry::audit::AuditOptions {
                anchor_interval: std::time::Duration::from_millis(config.audit.anchor_interval_ms),
            },
        )
        .await?;
        let interrupted = meta.fail_interrupted_jobs(JOB_STALE_AFTER).await?;
        let slots = config.training.max_concurrent_jobs.max(1);
        let epoch = meta.change_epoch().await?;
        let keys = KeyRing::new(config.server.auth_failures_per_minute, limits);
        let models = ModelCache::new(config.server.max_loaded_versions);
        let platform = Platform {
            inner: Arc::new(Inner {
                config,
                families: Arc::new(families),
                meta,
                artifacts,
                raw_artifacts,
                sealer,
                audit,
                models,
                keys,
                jobs: JobControl::default(),
                instance: uuid::Uuid::new_v4().to_string(),
                job_slots: Arc::new(Semaphore::new(slots)),
                batchers: Default::default(),
                monitors: Default::default(),
                challengers: Default::default(),
                fraud_state,
                alert_sink: std::sync::OnceLock::new(),
                shadow_queue: Default::default(),
            }),
        };
        platform.audit_ended_jobs(interrupted).await;
        platform.reload_keys().await?;
        platform.import_legacy_challengers().await?;
        platform.reload_challengers().await?;
        let pushed = match platform.inner.meta.subscribe_changes().await {
            Ok(pushed) => pushed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to registry changes; polling only");
                None
            }
        };
        crate::coherence::spawn(&platform, epoch, pushed);
        crate::monitoring::spawn(&platform);
        Ok(platform)
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The model families this process knows.
    pub fn families(&self) -> &aurum_contract::Families {
        &self.inner.families
    }

    /// The artifact store as bytes are stored (below the encryption layer): for tools that
    /// inspect or repair stored objects, and for tests that damage one.
    pub fn artifact_store(&self) -> Arc<dyn ArtifactStore> {
        Arc::clone(&self.inner.raw_artifacts)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.inner.config.data_dir.clone()
    }

    /// Flushes the audit log; call before the process exits.
    pub async fn shutdown(&self) {
        self.flush_monitors().await;
        if let Err(e) = self.inner.audit.flush().await {
            tracing::error!(error = %e, "cannot flush the audit log");
        }
    }

    /// Runs `work` (a state change and its audit record) as its own task and waits for it. If
    /// the caller stops waiting (a request timeout, a dropped connection), the work still runs to
    /// the end, so a state change is never left without its audit record.
    pub(crate) async fn detached<T, F>(&self, work: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, ServiceError>> + Send + 'static,
    {
        tokio::spawn(work).await.map_err(join_error)?
    }

    /// Writes the `training.finish` or `batch_job.finish` record of each job that
    /// [`MetadataStore::fail_interrupted_jobs`](aurum_registry::MetadataStore::fail_interrupted_jobs)
    /// ended (its own process stopped before it could), so that every job's end is audited.
    pub(crate) async fn audit_ended_jobs(&self, jobs: Vec<aurum_registry::JobRecord>) {
        for job in jobs {
            tracing::warn!(job = %job.id, kind = %job.kind, state = %job.state, "ended a job whose process stopped");
            // The finish record each kind of job writes itself (a synthesis job's `model` is
            // the dataset it would create: no model subject).
            let (event, subject) = match job.kind.as_str() {
                crate::batch::BATCH_JOB_KIND => (
                    "batch_job.finish",
                    Some((job.model.as_str(), job.result_version)),
                ),
                crate::synthesis::SYNTHESIS_JOB_KIND => ("synthesis_job.finish", None),
                _ => (
                    "training.finish",
                    Some((job.model.as_str(), job.result_version)),
                ),
            };
            let details = serde_json::json!({"job_id": job.id, "state": job.state.as_str(),
                "error": job.error, "version": job.result_version, "process_stopped": true});
            if let Err(e) = self
                .audit(&CallContext::recovery(), event, subject, details)
                .await
            {
                tracing::error!(job = %job.id, error = %e, "cannot audit the end of an interrupted job");
            }
        }
    }

    pub(crate) async fn audit(
        &self,
        ctx: &CallContext,
        event: &str,
        model: Option<(&str, Option<u32>)>,
        details: serde_json::Value,
    ) -> Result<(), ServiceError> {
        let entry = AuditEntry {
            event: event.to_string(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            model: model.map(|(m, _)| m.to_string()),
            version: model.and_then(|(_, v)| v),
            input_sha256: None,
            details,
        };
        self.inner.audit.append(entry).await?;
        Ok(())
    }

    // ----- datasets -----

    /// Imports a CSV or Parquet file under `name`, with type overrides and explicit date formats
    /// (column → chrono format). The formats are stored in the dataset's schema, so re-reading
    /// the file and serving a model trained on it use them. Importing the same bytes under the
    /// same name again returns the existing dataset without change.
    pub async fn import_dataset(
        &self,
        ctx: &CallContext,
        name: &str,
        bytes: Vec<u8>,
        overrides: BTreeMap<String, ColumnType>,
        date_formats: BTreeMap<String, String>,
    ) -> Result<DatasetImport, ServiceError> {
        let (this, ctx, name) = (self.clone(), ctx.clone(), name.to_string());
        self.detached(async move {
            this.import_dataset_now(&ctx, &name, bytes, overrides, date_formats)
                .await
        })
        .await
    }

    pub(crate) async fn import_dataset_now(
        &self,
        ctx: &CallContext,
        name: &str,
        bytes: Vec<u8>,
        overrides: BTreeMap<String, ColumnType>,
        date_formats: BTreeMap<String, String>,
    ) -> Result<DatasetImport, ServiceError> {
        validate_name(name)
            .map_err(|e| ServiceError::invalid("invalid_name", Some("name"), e.to_string()))?;
        let sha = sha256_hex(&bytes);
        let existing = match self.inner.meta.get_dataset(name).await {
            Ok(record) => Some(record),
            Err(RegistryError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(existing) = existing {
            if existing.sha256 == sha {
                // The same bytes again: a no-op, unless the call asks to read them differently
                // (it once answered `created: false` and kept the old types silently).
                check_same_reading(name, &existing.schema()?, &overrides, &date_formats)?;
                return Ok(DatasetImport {
                    record: existing,
                    created: false,
                });
            }
            return Err(ServiceError::Conflict(format!(
                "dataset `{name}` already exists with different content (sha256 {}); datasets are \
                 immutable: import under a new name",
                existing.sha256
            )));
        }
        let format = Format::detect(&bytes);
        let (schema, table, profile, bytes) = tokio::task::spawn_blocking(move || {
            let opts = ReadOptions {
                overrides,
                date_formats,
                ..ReadOptions::default()
            };
            let (table, formats) = aurum_data::read_auto_with_formats(&bytes, &opts)?;
            let profile = aurum_data::profile_with_formats(&table, &formats);
            let mut schema = table.schema();
            for field in &mut schema.fields {
                field.format = opts.date_formats.get(&field.name).cloned();
            }
            Ok::<_, ServiceError>((schema, table, profile, bytes))
        })
        .await
        .map_err(join_error)??;
        let ext = match format {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        };
        let key = format!("datasets/{sha}.{ext}");
        if !self.inner.artifacts.exists(&key).await? {
            self.inner.artifacts.put(&key, bytes.clone()).await?;
        }
        let new = NewDataset {
            name: name.to_string(),
            sha256: sha.clone(),
            format: ext.to_string(),
            size_bytes: bytes.len() as u64,
            rows: table.n_rows() as u64,
            columns: table.n_cols() as u64,
            schema_json: serde_json::to_string(&schema).map_err(internal)?,
            profile_json: serde_json::to_string(&profile).map_err(internal)?,
            created_by: ctx.actor.clone(),
        };
        let (record, created) = self.inner.meta.insert_dataset(new).await?;
        if !created && record.schema()? != schema {
            // Another import of the same bytes won the race with another reading of them.
            return Err(ServiceError::Conflict(format!(
                "dataset `{name}` was just imported from these bytes with other column types or \
                 date formats; a dataset is read once, when it is imported: import under a new \
                 name to read it another way"
            )));
        }
        if created {
            self.audit(
                ctx,
                "dataset.import",
                None,
                serde_json::json!({"dataset": name, "sha256": sha, "rows": record.rows,
                                   "columns": record.columns, "format": ext}),
            )
            .await?;
            tracing::info!(dataset = name, sha256 = %sha, rows = record.rows, "dataset imported");
        }
        Ok(DatasetImport { record, created })
    }

    pub async fn get_dataset(
        &self,
        name: &str,
    ) -> Result<(DatasetRecord, DatasetProfile), ServiceError> {
        let record = self.dataset_record(name).await?;
        let profile: DatasetProfile =
            serde_json::from_str(&record.profile_json).map_err(internal)?;
        Ok((record, profile))
    }

    pub async fn list_datasets(&self) -> Result<Vec<DatasetRecord>, ServiceError> {
        Ok(self.inner.meta.list_datasets().await?)
    }

    pub(crate) async fn dataset_record(&self, name: &str) -> Result<DatasetRecord, ServiceError> {
        Ok(self.inner.meta.get_dataset(name).await?)
    }

    /// Loads a stored dataset back into a table with exactly its recorded schema.
    pub(crate) async fn load_dataset(&self, record: &DatasetRecord) -> Result<Table, ServiceError> {
        let key = format!("datasets/{}.{}", record.sha256, record.format);
        let bytes = get_verified(self.inner.artifacts.as_ref(), &key, &record.sha256).await?;
        let schema: Schema = serde_json::from_str(&record.schema_json).map_err(internal)?;
        tokio::task::spawn_blocking(move || {
            let opts = ReadOptions {
                schema: Some(schema),
                ..ReadOptions::default()
            };
            Ok(aurum_data::read_auto(&bytes, &opts)?)
        })
        .await
        .map_err(join_error)?
    }
}

/// The explicit date formats recorded in a dataset's stored schema (column → chrono format).
pub(crate) fn dataset_date_formats(
    record: &DatasetRecord,
) -> Result<std::collections::BTreeMap<String, String>, ServiceError> {
    let schema: Schema = serde_json::from_str(&record.schema_json).map_err(internal)?;
    Ok(schema
        .fields
        .into_iter()
        .filter_map(|f| Some((f.name, f.format?)))
        .collect())
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

pub(crate) fn join_error(e: tokio::task::JoinError) -> ServiceError {
    if e.is_panic() {
        ServiceError::Internal("a worker task panicked".into())
    } else {
        ServiceError::Internal("a worker task was cancelled".into())
    }
}

impl Platform {
    /// The first `n` rows of a dataset as `(column, value)` pairs, without `skip` (e.g. the target).
    /// Used to print ready-to-paste examples.
    pub async fn sample_rows(
        &self,
        dataset: &str,
        n: usize,
        skip: &str,
    ) -> Result<Vec<Vec<(String, aurum_core::Value)>>, ServiceError> {
        let record = self.dataset_record(dataset).await?;
        let table = self.load_dataset(&record).await?;
        let names: Vec<String> = table.columns().iter().map(|c| c.name.clone()).collect();
        Ok((0..n.min(table.n_rows()))
            .map(|i| {
                names
                    .iter()
                    .cloned()
                    .zip(table.row(i))
                    .filter(|(name, _)| name != skip)
                    .collect()
            })
            .collect())
    }
}

/// The encryption keys the configuration names (`AURUM_ENCRYPTION_KEYS` first, then
/// `registry.encryption_key_file`), or `None` when artifacts are stored in clear.
fn encryption_keys(
    config: &Config,
) -> Result<Option<aurum_registry::EncryptionKeys>, ServiceError> {
    let text = match (
        &config.registry.encryption_keys,
        &config.registry.encryption_key_file,
    ) {
        (Some(keys), _) => keys.clone(),
        (None, Some(path)) => fs_err::read_to_string(path).map_err(|e| {
            ServiceError::Internal(format!("cannot read the encryption key file: {e}"))
        })?,
        (None, None) => return Ok(None),
    };
    aurum_registry::EncryptionKeys::parse(&text)
        .map(Some)
        .map_err(|e| ServiceError::Internal(format!("registry.encryption_key_file: {e}")))
}

impl Platform {
    /// Re-seals every stored artifact with the current encryption key (after a rotation, or
    /// after turning encryption on); returns how many were rewritten. Refused when encryption
    /// is not configured.
    pub async fn reencrypt_artifacts(&self, ctx: &CallContext) -> Result<usize, ServiceError> {
        let Some(keys) = encryption_keys(self.config())? else {
            return Err(ServiceError::invalid(
                "encryption_not_configured",
                Some("registry.encryption_key_file"),
                "encryption at rest is not configured: set registry.encryption_key_file or AURUM_ENCRYPTION_KEYS",
            ));
        };
        let store = aurum_registry::EncryptedArtifactStore::new(
            Arc::clone(&self.inner.raw_artifacts),
            keys.clone(),
        );
        let rewritten = store.reseal_all().await?;
        self.audit(
            ctx,
            "artifacts.reencrypt",
            None,
            serde_json::json!({"rewritten": rewritten, "key_id": keys.ids()[0]}),
        )
        .await?;
        Ok(rewritten)
    }
}
