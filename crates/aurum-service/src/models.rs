//! Registered models: the loaded-model cache, alias resolution and atomic alias moves.
//!
//! A model version is loaded (artifact fetched, SHA-256 checked, decoded) once and shared as
//! `Arc<LoadedModel>`; requests never copy a model. Aliases resolve through a copy-on-write map
//! held in an [`ArcSwap`]: a request reads the map without locking, and an alias move loads and
//! verifies the new version *before* it publishes a new map, so every request is answered by
//! either the old or the new version and none fails during the swap. A version whose artifact
//! fails its integrity check is never published.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use aurum_contract::{BinaryClassifier, FittedModel, Forecaster, Manifest, ModelError, Task};
use aurum_core::{Schema, validate_name};
use aurum_registry::{AliasHistoryRecord, ModelRecord, VersionRecord, get_verified};

use crate::platform::join_error;
use crate::{CallContext, Platform, ServiceError};

/// Which version of a model a request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Version(u32),
    Alias(String),
}

/// A model name plus a selector. The bare model name means the `champion` alias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRef {
    pub name: String,
    pub selector: Selector,
}

impl ModelRef {
    pub fn champion(name: &str) -> Self {
        ModelRef {
            name: name.into(),
            selector: Selector::Alias("champion".into()),
        }
    }
    pub fn version(name: &str, v: u32) -> Self {
        ModelRef {
            name: name.into(),
            selector: Selector::Version(v),
        }
    }
    pub fn alias(name: &str, alias: &str) -> Self {
        ModelRef {
            name: name.into(),
            selector: Selector::Alias(alias.into()),
        }
    }
    /// Whether this addresses the `champion` alias (what a bare model name means).
    pub fn is_champion(&self) -> bool {
        matches!(&self.selector, Selector::Alias(a) if a == "champion")
    }
}

/// A verified, decoded model version ready to serve.
#[derive(Debug)]
pub struct LoadedModel {
    pub name: String,
    pub version: u32,
    pub manifest: Manifest,
    pub model: Box<dyn FittedModel>,
    /// Feature name → position in the input schema.
    pub feature_index: HashMap<String, usize>,
    /// Rows this loaded version has scored (an operational counter; scoring that stops because
    /// its caller went away stops counting too).
    pub rows_scored: std::sync::atomic::AtomicU64,
    /// The audited input hash against [`LoadedModel::input_schema`], its prefixes built once.
    pub input_hasher: crate::InputHasher,
    /// The version was archived (seen at load, at an archive by this process, or at a registry
    /// change another process made): it no longer scores ([`LoadedModel::check_scoring`]).
    pub archived: std::sync::atomic::AtomicBool,
}

impl LoadedModel {
    /// The model's input schema as its manifest records it: the model's columns, with the
    /// explicit date format of each date feature imported with one.
    pub fn input_schema(&self) -> &Schema {
        &self.manifest.input_schema
    }

    pub fn task(&self) -> Task {
        self.manifest.task
    }

    /// 409 `version_archived` once the version is archived: every scoring path (predict on
    /// `/v1` and the Open Inference Protocol, batch jobs, recommendations, events, forecasts)
    /// asks before it scores, so an archived version answers nothing, as its readiness says.
    pub fn check_scoring(&self) -> Result<(), ServiceError> {
        if self.archived.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(ServiceError::VersionArchived {
                model: self.name.clone(),
                version: self.version,
            });
        }
        Ok(())
    }

    /// The binary-classification view, or a 400 `wrong_model_kind` saying where this model's
    /// task is served.
    pub fn binary(&self) -> Result<&dyn BinaryClassifier, ServiceError> {
        self.model
            .as_binary()
            .ok_or_else(|| self.wrong_task("predict"))
    }

    /// The forecasting view, or a 400 `wrong_model_kind`.
    pub fn forecaster(&self) -> Result<&dyn Forecaster, ServiceError> {
        self.model
            .as_forecaster()
            .ok_or_else(|| self.wrong_task("forecast"))
    }

    /// `Ok` for a model that scores rows; for a forecaster or a recommender the 400
    /// `wrong_task` that scoring would give, so that a caller hears it before its records are
    /// checked against a schema they were never meant for.
    pub fn check_scores_rows(&self) -> Result<(), ServiceError> {
        match self.task() {
            Task::Forecast | Task::Ranking => Err(ServiceError::Model(ModelError::WrongTask {
                family: self.manifest.family.to_string(),
                task: self.task(),
                operation: "scoring records",
            })),
            _ => Ok(()),
        }
    }

    fn wrong_task(&self, operation: &str) -> ServiceError {
        let (name, version, task) = (&self.name, self.version, self.manifest.task);
        let hint = match task {
            Task::Forecast => format!(": use POST /v1/models/{name}/forecast"),
            Task::Binary => format!(": use POST /v1/models/{name}/predict"),
            _ => String::new(),
        };
        ServiceError::invalid(
            "wrong_model_kind",
            Some("model"),
            format!("{name} v{version} is a {task} model and cannot {operation}{hint}"),
        )
    }
}

/// Whether a version can answer, as model status endpoints report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionState {
    /// Not archived, and its artifact verifies.
    Ready,
    /// Archived: it keeps its record and artifact but does not serve.
    Archived,
    /// Its artifact is missing or fails its SHA-256 check; the reason says which.
    Failed(String),
}

/// Loaded versions (bounded, least recently used dropped first) and published aliases.
pub(crate) struct ModelCache {
    versions: Mutex<VersionCache>,
    /// One gate per version being loaded: the first caller loads, callers that arrive meanwhile
    /// wait at its gate and then find the version in the cache, so a cold version is read,
    /// verified and decoded once however many requests want it at once (at start-up, or after
    /// an eviction under load), not once per request.
    loading: Mutex<HashMap<(String, u32), LoadGate>>,
    aliases: ArcSwap<HashMap<(String, String), Arc<LoadedModel>>>,
    /// Serialises alias publications so two concurrent moves cannot lose one another's update.
    publish: tokio::sync::Mutex<()>,
}

/// Held while one caller loads a version (see `ModelCache::loading`).
type LoadGate = Arc<tokio::sync::Mutex<()>>;

struct VersionCache {
    entries: HashMap<(String, u32), (Arc<LoadedModel>, u64)>,
    tick: u64,
    capacity: usize,
}

impl VersionCache {
    /// Every cached version (without touching their use order).
    fn all(&self) -> Vec<Arc<LoadedModel>> {
        self.entries.values().map(|(m, _)| m.clone()).collect()
    }

    fn get(&mut self, key: &(String, u32)) -> Option<Arc<LoadedModel>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(m, used)| {
            *used = tick;
            m.clone()
        })
    }

    /// Inserts (or returns the entry another caller inserted first), then drops least recently
    /// used versions over capacity. A version still published under an alias is kept alive by
    /// the alias map anyway, so only versions nobody addresses by alias are worth dropping.
    fn insert(
        &mut self,
        key: (String, u32),
        model: Arc<LoadedModel>,
        aliased: &HashMap<(String, String), Arc<LoadedModel>>,
    ) -> Arc<LoadedModel> {
        self.tick += 1;
        let tick = self.tick;
        let model = self.entries.entry(key).or_insert((model, tick)).0.clone();
        while self.entries.len() > self.capacity {
            let victim = self
                .entries
                .iter()
                .filter(|(_, (m, _))| !aliased.values().any(|a| Arc::ptr_eq(a, m)))
                .filter(|(_, (m, _))| !Arc::ptr_eq(m, &model))
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    self.entries.remove(&k);
                    tracing::info!(model = %k.0, version = k.1, "model version evicted from the cache");
                    metrics::counter!("aurum_model_evictions_total").increment(1);
                }
                None => break,
            }
        }
        model
    }
}

impl ModelCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ModelCache {
            versions: Mutex::new(VersionCache {
                entries: HashMap::new(),
                tick: 0,
                capacity: capacity.max(1),
            }),
            loading: Mutex::new(HashMap::new()),
            aliases: ArcSwap::from_pointee(HashMap::new()),
            publish: tokio::sync::Mutex::new(()),
        }
    }

    /// How many versions are loaded in the version cache.
    pub(crate) fn loaded_versions(&self) -> usize {
        self.versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .len()
    }
}

impl Platform {
    pub async fn list_models(&self) -> Result<Vec<ModelRecord>, ServiceError> {
        Ok(self.inner.meta.list_models().await?)
    }

    pub async fn get_model(&self, name: &str) -> Result<ModelRecord, ServiceError> {
        Ok(self.inner.meta.get_model(name).await?)
    }

    pub async fn list_versions(&self, name: &str) -> Result<Vec<VersionRecord>, ServiceError> {
        self.get_model(name).await?;
        Ok(self.inner.meta.list_versions(name).await?)
    }

    pub async fn get_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<VersionRecord, ServiceError> {
        Ok(self.inner.meta.get_version(name, version).await?)
    }

    pub async fn alias_history(&self, name: &str) -> Result<Vec<AliasHistoryRecord>, ServiceError> {
        self.get_model(name).await?;
        Ok(self.inner.meta.alias_history(name).await?)
    }

    /// Checks a version's artifact now (read and SHA-256, no decode) and reports whether the
    /// version can answer. A version loaded earlier keeps serving from memory, but a corrupt
    /// artifact on disk means the next process cannot load it, so it is reported `Failed`.
    /// This reads the whole artifact: call it for one version or a repository index, not on
    /// the scoring path.
    pub async fn version_state(
        &self,
        record: &VersionRecord,
    ) -> Result<VersionState, ServiceError> {
        use aurum_registry::RegistryError;
        if record.is_archived() {
            return Ok(VersionState::Archived);
        }
        match get_verified(
            self.inner.artifacts.as_ref(),
            &record.artifact_key,
            &record.artifact_sha256,
        )
        .await
        {
            Ok(_) => Ok(VersionState::Ready),
            Err(RegistryError::ArtifactCorrupt { .. }) => Ok(VersionState::Failed(
                "the artifact failed its SHA-256 check".into(),
            )),
            Err(RegistryError::NotFound { .. } | RegistryError::Io(_)) => {
                Ok(VersionState::Failed("the artifact cannot be read".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves a reference to its loaded model, loading and verifying it on first use.
    pub async fn resolve(&self, r: &ModelRef) -> Result<Arc<LoadedModel>, ServiceError> {
        match &r.selector {
            Selector::Version(v) => self.load_version(&r.name, *v).await,
            Selector::Alias(alias) => {
                let key = (r.name.clone(), alias.clone());
                if let Some(m) = self.inner.models.aliases.load().get(&key) {
                    return Ok(m.clone());
                }
                let version = self.alias_target(&r.name, alias).await?;
                let loaded = self.load_version(&r.name, version).await?;
                let _guard = self.inner.models.publish.lock().await;
                // Publish only if nobody moved the alias meanwhile.
                if self.inner.meta.resolve_alias(&r.name, alias).await? == Some(version) {
                    self.publish_alias(&r.name, alias, loaded.clone());
                }
                Ok(loaded)
            }
        }
    }

    async fn alias_target(&self, name: &str, alias: &str) -> Result<u32, ServiceError> {
        if let Some(v) = self.inner.meta.resolve_alias(name, alias).await? {
            return Ok(v);
        }
        self.get_model(name).await?;
        Err(ServiceError::AliasNotFound {
            model: name.to_string(),
            alias: alias.to_string(),
        })
    }

    fn publish_alias(&self, name: &str, alias: &str, loaded: Arc<LoadedModel>) {
        let current = self.inner.models.aliases.load();
        let mut next: HashMap<_, _> = (**current).clone();
        next.insert((name.to_string(), alias.to_string()), loaded);
        self.inner.models.aliases.store(Arc::new(next));
    }

    /// Loads (or returns the cached) version, checking the artifact's SHA-256 first. Concurrent
    /// callers for a version not yet cached load it once: the others wait for that load (see
    /// `ModelCache::loading`). If it fails, or its caller goes away (a request timeout drops
    /// the future), the next waiter loads it instead.
    pub(crate) async fn load_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Arc<LoadedModel>, ServiceError> {
        let key = (name.to_string(), version);
        let cached = || {
            self.inner
                .models
                .versions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
        };
        if let Some(m) = cached() {
            return Ok(m);
        }
        let gate = self
            .inner
            .models
            .loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let _turn = gate.lock().await;
        if let Some(m) = cached() {
            return Ok(m);
        }
        let loaded = self.load_uncached(name, version).await;
        // The gate goes once a load is over; a caller that took it before this still waits on
        // it and then finds the version cached (or loads it itself after a failure).
        let mut loading = self
            .inner
            .models
            .loading
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if loading.get(&key).is_some_and(|g| Arc::ptr_eq(g, &gate)) {
            loading.remove(&key);
        }
        loaded
    }

    /// Reads, verifies and decodes a version's artifact and puts it in the cache.
    async fn load_uncached(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Arc<LoadedModel>, ServiceError> {
        let key = (name.to_string(), version);
        let record = self.get_version(name, version).await?;
        let bytes = get_verified(
            self.inner.artifacts.as_ref(),
            &record.artifact_key,
            &record.artifact_sha256,
        )
        .await?;
        if !bytes.starts_with(aurum_contract::artifact::MAGIC) && record.kind == "forecast" {
            return Err(ServiceError::invalid(
                "unsupported_artifact",
                Some("version"),
                format!(
                    "{name} v{version} is a forecasting model stored by an earlier aurum in a form \
                     that is no longer served; train it again (aurum forecast train)"
                ),
            ));
        }
        let families = self.inner.families.clone();
        let (manifest, model) =
            tokio::task::spawn_blocking(move || aurum_contract::decode_artifact(&bytes, &families))
                .await
                .map_err(join_error)??;
        let feature_index = model
            .input_schema()
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        let input_hasher = crate::InputHasher::new(&manifest.input_schema);
        let loaded = Arc::new(LoadedModel {
            name: name.to_string(),
            version,
            input_hasher,
            archived: record.is_archived().into(),
            manifest,
            model,
            feature_index,
            rows_scored: Default::default(),
        });
        tracing::info!(model = name, version, "model version loaded");
        metrics::counter!("aurum_model_loads_total").increment(1);
        let aliased = self.inner.models.aliases.load();
        let mut versions = self
            .inner
            .models
            .versions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Ok(versions.insert(key, loaded, &aliased))
    }

    /// How many model versions this process holds loaded (bounded by
    /// `server.max_loaded_versions`, plus versions published under an alias).
    pub fn loaded_version_count(&self) -> usize {
        self.inner.models.loaded_versions()
    }

    /// Re-resolves every published alias against the registry: an alias moved by another
    /// process is loaded and republished, one that no longer exists is dropped. A version that
    /// fails to load is dropped too (the next request resolves it again and gets the error).
    pub(crate) async fn refresh_aliases(&self) -> Result<(), ServiceError> {
        let published: Vec<((String, String), u32)> = self
            .inner
            .models
            .aliases
            .load()
            .iter()
            .map(|(k, m)| (k.clone(), m.version))
            .collect();
        for ((name, alias), cached) in published {
            let current = self.inner.meta.resolve_alias(&name, &alias).await?;
            if current == Some(cached) {
                continue;
            }
            let loaded = match current {
                Some(v) => match self.load_version(&name, v).await {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::warn!(model = %name, alias = %alias, version = v, error = %e,
                            "alias moved elsewhere to a version that cannot be loaded");
                        None
                    }
                },
                None => None,
            };
            let _guard = self.inner.models.publish.lock().await;
            // Re-check under the publication lock: a move in this process may have won.
            if self.inner.meta.resolve_alias(&name, &alias).await? != current {
                continue;
            }
            let mut next: HashMap<_, _> = (**self.inner.models.aliases.load()).clone();
            match loaded {
                Some(m) => {
                    tracing::info!(model = %name, alias = %alias, from = cached, to = m.version,
                        "alias moved by another process; now serving the new version");
                    next.insert((name.clone(), alias.clone()), m);
                }
                None => {
                    next.remove(&(name.clone(), alias.clone()));
                }
            }
            self.inner.models.aliases.store(Arc::new(next));
        }
        Ok(())
    }

    /// Points `alias` at `version`. The new version is loaded and verified before the alias
    /// moves, and in-flight requests keep the model they resolved.
    pub async fn set_alias(
        &self,
        ctx: &CallContext,
        name: &str,
        alias: &str,
        version: u32,
    ) -> Result<Option<u32>, ServiceError> {
        let (this, ctx) = (self.clone(), ctx.clone());
        let (name, alias) = (name.to_string(), alias.to_string());
        self.detached(async move { this.set_alias_now(&ctx, &name, &alias, version).await })
            .await
    }

    async fn set_alias_now(
        &self,
        ctx: &CallContext,
        name: &str,
        alias: &str,
        version: u32,
    ) -> Result<Option<u32>, ServiceError> {
        validate_alias(alias)?;
        let record = self.get_version(name, version).await?;
        if record.is_archived() {
            return Err(ServiceError::Conflict(format!(
                "version {version} of `{name}` is archived and cannot take an alias"
            )));
        }
        let loaded = self.load_version(name, version).await?;
        let _guard = self.inner.models.publish.lock().await;
        let moved = self
            .inner
            .meta
            .set_alias(name, alias, version, &ctx.actor)
            .await?;
        self.publish_alias(name, alias, loaded);
        if moved.from == Some(version) {
            // Already there: the registry recorded nothing, and neither does the audit log.
            return Ok(moved.from);
        }
        metrics::counter!("aurum_alias_moves_total").increment(1);
        self.audit(
            ctx,
            "alias.move",
            Some((name, Some(version))),
            serde_json::json!({"alias": alias, "from": moved.from, "to": moved.to}),
        )
        .await?;
        tracing::info!(model = name, alias, from = ?moved.from, to = version, "alias moved");
        Ok(moved.from)
    }

    pub async fn archive_version(
        &self,
        ctx: &CallContext,
        name: &str,
        version: u32,
    ) -> Result<(), ServiceError> {
        let (this, ctx, name) = (self.clone(), ctx.clone(), name.to_string());
        self.detached(async move { this.archive_version_now(&ctx, &name, version).await })
            .await
    }

    async fn archive_version_now(
        &self,
        ctx: &CallContext,
        name: &str,
        version: u32,
    ) -> Result<(), ServiceError> {
        self.get_version(name, version).await?;
        let aliases = self.list_aliases(name).await?;
        if let Some((alias, _)) = aliases.iter().find(|(_, v)| *v == version) {
            return Err(ServiceError::Conflict(format!(
                "version {version} of `{name}` is the target of alias `{alias}`; move the alias first"
            )));
        }
        self.inner.meta.archive_version(name, version).await?;
        self.mark_archived(name, version);
        self.audit(
            ctx,
            "model.archive",
            Some((name, Some(version))),
            serde_json::json!({}),
        )
        .await?;
        Ok(())
    }

    /// Marks a cached version archived, so that it stops scoring at once in this process.
    fn mark_archived(&self, name: &str, version: u32) {
        let mut cache = self
            .inner
            .models
            .versions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(m) = cache.get(&(name.to_string(), version)) {
            m.archived.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// After a registry change by any process: marks the cached versions that were archived
    /// meanwhile (another process archived them).
    pub(crate) async fn refresh_archived(&self) -> Result<(), ServiceError> {
        let cached: Vec<Arc<LoadedModel>> = self
            .inner
            .models
            .versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .all();
        for m in cached {
            if !m.archived.load(std::sync::atomic::Ordering::Relaxed)
                && self.get_version(&m.name, m.version).await?.is_archived()
            {
                m.archived.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Aliases of a model as `(alias, version)`.
    pub async fn list_aliases(&self, name: &str) -> Result<Vec<(String, u32)>, ServiceError> {
        let aliases = self.inner.meta.list_aliases(name).await?;
        Ok(aliases.into_iter().map(|a| (a.alias, a.version)).collect())
    }
}

/// An alias name: a valid name that is not all digits, since `model@2` and
/// `/v2/models/{name}/versions/2` read digits as a version number and would never reach it.
pub(crate) fn validate_alias(alias: &str) -> Result<(), ServiceError> {
    validate_name(alias)
        .map_err(|e| ServiceError::invalid("invalid_name", Some("alias"), e.to_string()))?;
    if alias.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ServiceError::invalid(
            "invalid_name",
            Some("alias"),
            format!(
                "alias `{alias}` is all digits, which reads as a version number; \
                 use a word such as `champion` or `v{alias}-candidate`"
            ),
        ));
    }
    Ok(())
}
