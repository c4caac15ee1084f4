//! Opens a [`Platform`] over the stores its configuration names.
//!
//! Why this crate exists: `aurum-service` composes the product over three traits
//! (`MetadataStore`, `AuditStore`, `ArtifactStore`) and never links a database or object-store
//! client. The binary decides which implementations to build, here:
//!
//! | `registry.backend` | registry, jobs, keys | audit log |
//! |---|---|---|
//! | `sqlite` (default) | `<data_dir>/registry.db` | `<data_dir>/audit.db` |
//! | `postgres` | `registry.database_url` | the same database, schema `aurum_audit` |
//!
//! and, independently, `registry.artifact_store_url`: unset for `<data_dir>/artifacts`, or
//! `s3://bucket/prefix` (an S3-compatible store shared by replicas), `file:///path`,
//! `memory://`. Replicas must share all three: a PostgreSQL registry with artifacts on each
//! replica's local disk would register versions that other replicas cannot load, so that
//! combination is refused.
//!
//! Live fraud state is a fourth, optional store: with `registry.fraud_state_url`
//! (`redis://…`) every replica reads and writes the same card and terminal windows through
//! `aurum-redis`; without it each process keeps its own under `<data_dir>/state/`.
//!
//! Request limits are a fifth: with `registry.limits_url` (`redis://…`, it may be the same
//! Redis) every replica takes from one bucket per key and counts one failed-authentication window
//! per client (`aurum_redis::RedisLimits` behind `aurum_service::SharedLimits`); without it each
//! process keeps its own.

use std::sync::Arc;
use std::time::Duration;

pub mod webhook;

use aurum_objstore::{ObjectArtifactStore, S3Options};
use aurum_postgres::{PgAuditStore, PgStore};
use aurum_registry::{ArtifactStore, LocalArtifactStore};
use aurum_service::{Config, Platform, ServiceError, SharedLimits, SharedTake, Stores};

/// Opens the platform with the built-in families over the configured stores.
pub async fn open_platform(config: Config) -> Result<Platform, ServiceError> {
    open_platform_with_families(config, aurum_families::builtin()).await
}

/// [`open_platform`] with an explicit family registry.
pub async fn open_platform_with_families(
    config: Config,
    families: aurum_contract::Families,
) -> Result<Platform, ServiceError> {
    let stores = open_stores(&config).await?;
    let webhook = config
        .monitoring
        .webhook_url
        .clone()
        .map(|url| (url, config.monitoring.webhook_secret.clone()));
    let platform = Platform::open_with_stores(config, families, stores).await?;
    if let Some((url, secret)) = webhook {
        let sink = webhook::WebhookSink::start(url, secret).map_err(ServiceError::Internal)?;
        platform.set_alert_sink(sink);
        tracing::info!("drift and performance alerts are also sent to monitoring.webhook_url");
    }
    Ok(platform)
}

/// Builds the stores `config` names; see the crate docs.
pub async fn open_stores(config: &Config) -> Result<Stores, ServiceError> {
    let mut stores = registry_stores(config).await?;
    if let Some(url) = config.registry.fraud_state_url.clone() {
        let options = aurum_redis::RedisOptions {
            key_prefix: config.registry.fraud_state_prefix.clone(),
            ..aurum_redis::RedisOptions::default()
        };
        let factory = tokio::task::spawn_blocking(move || {
            aurum_redis::RedisStateFactory::connect(&url, options)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("fraud state connect task: {e}")))?
        .map_err(|e| ServiceError::Internal(format!("registry.fraud_state_url: {e}")))?;
        tracing::info!(state = %aurum_fraud::OnlineStateFactory::describe(&factory),
                       "live fraud state shared in Redis");
        stores.fraud_state = Some(Arc::new(factory));
    }
    if let Some(url) = config.registry.limits_url.clone() {
        let options = aurum_redis::RedisOptions {
            key_prefix: config.registry.limits_prefix.clone(),
            // A check sits on the request path: a Redis that does not answer quickly is
            // treated as down (the process keeps to its own limits for a second).
            timeout: LIMITS_TIMEOUT,
            ..aurum_redis::RedisOptions::default()
        };
        let limits =
            tokio::task::spawn_blocking(move || aurum_redis::RedisLimits::connect(&url, &options))
                .await
                .map_err(|e| ServiceError::Internal(format!("limits connect task: {e}")))?
                .map_err(|e| ServiceError::Internal(format!("registry.limits_url: {e}")))?;
        tracing::info!(limits = %limits.describe(), "request limits shared in Redis");
        stores.limits = Some(Arc::new(SharedRedisLimits(limits)));
    }
    Ok(stores)
}

/// How long a shared limit check may wait for Redis.
const LIMITS_TIMEOUT: Duration = Duration::from_millis(250);

/// [`aurum_redis::RedisLimits`] as the platform's [`SharedLimits`].
struct SharedRedisLimits(aurum_redis::RedisLimits);

impl SharedLimits for SharedRedisLimits {
    fn take(&self, key_id: &str, limit_per_s: u32, want: u32) -> Result<SharedTake, String> {
        match self.0.take(key_id, limit_per_s, want) {
            Ok(aurum_redis::Taken::Granted(n)) => Ok(SharedTake::Granted(n)),
            Ok(aurum_redis::Taken::Wait(wait)) => Ok(SharedTake::Wait(wait)),
            Err(e) => Err(e.to_string()),
        }
    }

    fn count_failures(
        &self,
        client: &str,
        failures: u32,
        window: Duration,
    ) -> Result<(u32, Duration), String> {
        self.0
            .count_failures(client, failures, window)
            .map_err(|e| e.to_string())
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// The registry, audit and artifact stores.
async fn registry_stores(config: &Config) -> Result<Stores, ServiceError> {
    let registry = &config.registry;
    let artifacts: Arc<dyn ArtifactStore> = match &registry.artifact_store_url {
        Some(url) => Arc::new(
            ObjectArtifactStore::from_url(url, &s3_options(config)).map_err(ServiceError::from)?,
        ),
        None if registry.backend == "postgres" => {
            return Err(ServiceError::Internal(
                "registry.backend `postgres` needs a shared registry.artifact_store_url \
                 (AURUM_ARTIFACT_STORE_URL, e.g. s3://bucket/prefix): replicas cannot load \
                 versions stored on another replica's disk"
                    .to_owned(),
            ));
        }
        None => Arc::new(LocalArtifactStore::new(config.data_dir.join("artifacts"))?),
    };
    match registry.backend.as_str() {
        "postgres" => {
            let url = registry.database_url.as_deref().ok_or_else(|| {
                ServiceError::Internal("registry.database_url is not set".to_owned())
            })?;
            let connections = registry.database_max_connections;
            let meta = PgStore::connect(url, connections).await?;
            let audit = PgAuditStore::connect(url, connections).await?;
            tracing::info!("registry and audit log on PostgreSQL");
            Ok(Stores {
                meta: Arc::new(meta),
                audit: Arc::new(audit),
                artifacts,
                fraud_state: None,
                limits: None,
            })
        }
        _ => {
            let (meta, audit) = Stores::embedded_registry(config).await?;
            Ok(Stores {
                meta,
                audit,
                artifacts,
                fraud_state: None,
                limits: None,
            })
        }
    }
}

/// The S3 settings of the configuration.
fn s3_options(config: &Config) -> S3Options {
    let r = &config.registry;
    S3Options {
        endpoint: r.s3_endpoint.clone(),
        region: r.s3_region.clone(),
        access_key_id: r.s3_access_key_id.clone(),
        secret_access_key: r.s3_secret_access_key.clone(),
        allow_http: r.s3_allow_http,
        ..S3Options::default()
    }
}
