//! Layered configuration: built-in defaults → `aurum.toml` → `AURUM_*` environment → flags.
//!
//! Every layer is a partial overlay ([`ConfigLayer`]) applied on top of the previous one, so a
//! value set in the file survives unless the environment or a flag names it again. The result is
//! validated once, and every problem is reported together ([`ConfigError::Invalid`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What to do with request fields the model does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFields {
    /// Answer 400 `unknown_field` naming the field (default: a typo should not silently change a decision).
    Reject,
    /// Ignore fields the model does not use.
    Ignore,
}

/// The effective configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Where registry, audit log, artifacts and datasets live.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub training: TrainingConfig,
    pub audit: AuditConfig,
    pub log: LogConfig,
    pub registry: RegistryConfig,
    pub batching: BatchingConfig,
    #[serde(default)]
    pub monitoring: MonitoringConfig,
}

/// Population drift of live inputs and scores against the training population (see
/// `crate::monitoring`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonitoringConfig {
    /// Count live inputs and scores of binary models into drift windows.
    pub enabled: bool,
    /// Length of a drift window, in seconds.
    pub window_s: u64,
    /// How often this process stores its counts of the open window in the registry (shared by
    /// every process on it), in milliseconds; a closed window is judged once every process
    /// has had two such intervals to store its last counts of it.
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
    /// PSI at or above which a feature (or the score) is flagged `watch` / `alert`.
    pub psi_watch: f64,
    pub psi_alert: f64,
    /// Fewest rows a window needs before it is judged (and outcomes before performance is).
    pub min_rows: u64,
    /// A realised AUC below this fraction of the training AUC is a performance alert.
    #[serde(default = "default_auc_alert_ratio")]
    pub auc_alert_ratio: f64,
    /// Where drift and performance alerts are also POSTed as JSON (`http://` or `https://`);
    /// `None`: log and metrics only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Key of the `x-aurum-signature: sha256=<HMAC-SHA256 of the body>` header on each webhook
    /// call, from `AURUM_MONITORING_WEBHOOK_SECRET` only; a secret, never printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

fn default_flush_ms() -> u64 {
    10_000
}

fn default_auc_alert_ratio() -> f64 {
    0.9
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            enabled: true,
            window_s: 3600,
            flush_ms: default_flush_ms(),
            psi_watch: 0.1,
            psi_alert: 0.25,
            min_rows: 200,
            auc_alert_ratio: default_auc_alert_ratio(),
            webhook_url: None,
            webhook_secret: None,
        }
    }
}

/// Dynamic batching: concurrent predict calls to the listed models are coalesced into one
/// scoring call of up to `max_batch_size` rows, waiting at most `max_queue_delay_us` for
/// company. Off by default: for cheap models the wait costs more than the batch saves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchingConfig {
    /// Model names that batch; empty = none.
    pub models: Vec<String>,
    pub max_batch_size: usize,
    pub max_queue_delay_us: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Where the Open Inference Protocol gRPC server listens; `None` (default) serves no gRPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_listen: Option<SocketAddr>,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Per-request timeout, in milliseconds (answers 408 `request_timeout`).
    pub request_timeout_ms: u64,
    /// How long graceful shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_s: u64,
    pub unknown_fields: UnknownFields,
    /// Largest number of records in one predict call.
    pub max_batch_records: usize,
    /// How long a client may take to send a request's headers, in milliseconds; the connection
    /// is closed after it. Also bounds how long an idle keep-alive connection waits for its next
    /// request.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Failed authentications one client address may make per minute before it gets 429
    /// `too_many_requests` (with `Retry-After`) without any key check.
    #[serde(default = "default_auth_failures_per_minute")]
    pub auth_failures_per_minute: u32,
    /// Most model versions kept loaded in memory; the least recently used one is dropped first
    /// (versions behind an alias stay loaded through the alias).
    #[serde(default = "default_max_loaded_versions")]
    pub max_loaded_versions: usize,
    /// TLS for the REST and gRPC listeners: a PEM certificate chain and its private key. Both or
    /// neither; without them the listeners speak plain HTTP (put a TLS proxy in front).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// Mutual TLS: PEM certificates of the authorities client certificates must chain to; a
    /// client without such a certificate is refused during the handshake. Needs `tls_cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_ca_file: Option<PathBuf>,
}

fn default_header_read_timeout_ms() -> u64 {
    10_000
}

fn default_auth_failures_per_minute() -> u32 {
    60
}

fn default_max_loaded_versions() -> usize {
    32
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingConfig {
    /// Share of rows held out (stratified) to measure a new version's metrics.
    pub test_fraction: f64,
    /// Seed for the held-out split and any randomised fitting.
    pub seed: u64,
    /// Training jobs run at the same time; the rest wait queued.
    pub max_concurrent_jobs: usize,
}

/// When a prediction is acknowledged relative to its audit record reaching disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditDurability {
    /// Every protocol answers after the record is committed and fsynced (group commit), so an
    /// acknowledged decision survives a crash or a power loss. Default.
    #[default]
    Sync,
    /// The record is queued and committed with the writer's next batch; the answer does not wait
    /// for it. A crash (`kill -9`, OOM, power loss) loses the decisions of the last moments —
    /// those queued but not yet committed, typically one or two commit times (milliseconds), up to
    /// the 16 384 queued entries under overload — although their callers were answered.
    Buffered,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditConfig {
    /// Input fields stored in clear in prediction audit records. Empty (default): only the input
    /// hash is stored.
    pub fields_in_clear: Vec<String>,
    /// Personal data fields (account numbers, national ids) recorded in prediction audit
    /// records masked to their last four characters (`***6789`), and never echoed in error
    /// messages. A field cannot be both in clear and masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_fields: Vec<String>,
    /// When predictions are acknowledged: `sync` (default) or `buffered`.
    pub durability: AuditDurability,
    /// How often the signed anchor follows the chain head, in ms. `0` (default): after every
    /// committed batch, before any caller is answered. Above 0: callers are answered after the
    /// WAL commit alone and the anchor follows within the interval (always at shutdown), so the
    /// newest records of that window are protected by the hash chain only until it moves.
    #[serde(default)]
    pub anchor_interval_ms: u64,
    /// The signed anchor of the chain head; default `<data_dir>/audit.anchor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_file: Option<PathBuf>,
    /// The anchor's HMAC key as hex, created (mode 0600) on first use; default
    /// `<data_dir>/audit.key`. Keep it where whoever can edit the data directory cannot read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_key_file: Option<PathBuf>,
    /// The anchor key itself (at least 32 bytes), from `AURUM_AUDIT_ANCHOR_KEY` only; a secret,
    /// never printed. When set, `anchor_key_file` is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_key: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` env-filter directive, e.g. `info,aurum=debug`.
    pub level: String,
}

fn default_database_max_connections() -> u32 {
    8
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegistryConfig {
    /// `sqlite` (default: `registry.db` and `audit.db` in the data dir) or `postgres` (the
    /// registry, jobs, keys and the audit log in the database at `database_url`, shared by every
    /// replica).
    pub backend: String,
    /// Connection URL for a server database; a secret (it may hold a password), never printed.
    pub database_url: Option<String>,
    /// Connections each process may open to `database_url` (registry and audit pools each).
    #[serde(default = "default_database_max_connections")]
    pub database_max_connections: u32,
    /// Where datasets, model artifacts and reports are stored: `None` is `<data_dir>/artifacts`;
    /// `s3://bucket/prefix` an S3-compatible object store (replicas share it); `file:///path` a
    /// directory through the object-store client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_store_url: Option<String>,
    /// The S3 endpoint for a store that is not AWS (MinIO, Ceph, a test server), e.g.
    /// `http://127.0.0.1:9000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    /// The S3 region (default `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_region: Option<String>,
    /// Allow plain HTTP to the S3 endpoint (only for a store on loopback or a private network).
    #[serde(default)]
    pub s3_allow_http: bool,
    /// S3 credentials, from `AURUM_S3_ACCESS_KEY_ID` / `AURUM_S3_SECRET_ACCESS_KEY` only (or the
    /// standard `AWS_*` variables); secrets, never printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_secret_access_key: Option<String>,
    /// Encryption at rest of datasets, model artifacts and reports: a file of AES-256 keys, one
    /// `<id>:<64 hex digits>` per line, the first sealing new writes (see
    /// `aurum_registry::encrypted`). Keep it outside the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key_file: Option<PathBuf>,
    /// The same keys from `AURUM_ENCRYPTION_KEYS` (`;`-separated); a secret, environment only,
    /// never printed. When set, `encryption_key_file` is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_keys: Option<String>,
    /// Where live fraud state (card and terminal windows, applied event ids) lives: `None` in
    /// each process under `<data_dir>/state/`; `redis://[user:password@]host:port/db` in a Redis
    /// every replica shares. A secret (it may hold a password), never printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraud_state_url: Option<String>,
    /// First part of every fraud state key in `fraud_state_url`, so that deployments can share
    /// one Redis (default `aurum:fraud`).
    #[serde(default = "default_fraud_state_prefix")]
    pub fraud_state_prefix: String,
    /// Where the request limits replicas share live (each key's `rate_limit_per_s`, the failed
    /// authentications per client): `None` in each process; `redis://…` in a Redis every
    /// replica shares (it may be the fraud state's). A secret, never printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits_url: Option<String>,
    /// First part of every limit key in `limits_url` (default `aurum:limits`).
    #[serde(default = "default_limits_prefix")]
    pub limits_prefix: String,
}

fn default_fraud_state_prefix() -> String {
    "aurum:fraud".to_owned()
}

fn default_limits_prefix() -> String {
    "aurum:limits".to_owned()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./aurum-data"),
            server: ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                grpc_listen: None,
                body_limit_bytes: 16 * 1024 * 1024,
                request_timeout_ms: 30_000,
                shutdown_grace_s: 30,
                unknown_fields: UnknownFields::Reject,
                max_batch_records: 10_000,
                header_read_timeout_ms: default_header_read_timeout_ms(),
                auth_failures_per_minute: default_auth_failures_per_minute(),
                max_loaded_versions: default_max_loaded_versions(),
                tls_cert_file: None,
                tls_key_file: None,
                tls_client_ca_file: None,
            },
            training: TrainingConfig {
                test_fraction: 0.3,
                seed: 42,
                max_concurrent_jobs: 1,
            },
            audit: AuditConfig {
                fields_in_clear: Vec::new(),
                masked_fields: Vec::new(),
                durability: AuditDurability::Sync,
                anchor_interval_ms: 0,
                anchor_file: None,
                anchor_key_file: None,
                anchor_key: None,
            },
            log: LogConfig {
                format: "text".into(),
                level: "info".into(),
            },
            registry: RegistryConfig {
                backend: "sqlite".into(),
                database_url: None,
                database_max_connections: default_database_max_connections(),
                artifact_store_url: None,
                s3_endpoint: None,
                s3_region: None,
                s3_allow_http: false,
                s3_access_key_id: None,
                s3_secret_access_key: None,
                encryption_key_file: None,
                encryption_keys: None,
                fraud_state_url: None,
                fraud_state_prefix: default_fraud_state_prefix(),
                limits_url: None,
                limits_prefix: default_limits_prefix(),
            },
            batching: BatchingConfig {
                models: Vec::new(),
                max_batch_size: 256,
                max_queue_delay_us: 500,
            },
            monitoring: MonitoringConfig::default(),
        }
    }
}

/// A partial configuration: what one layer (file, environment, flags) sets.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub server: ServerLayer,
    #[serde(default)]
    pub training: TrainingLayer,
    #[serde(default)]
    pub audit: AuditLayer,
    #[serde(default)]
    pub log: LogLayer,
    #[serde(default)]
    pub registry: RegistryLayer,
    #[serde(default)]
    pub batching: BatchingLayer,
    #[serde(default)]
    pub monitoring: MonitoringLayer,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringLayer {
    pub enabled: Option<bool>,
    pub window_s: Option<u64>,
    pub flush_ms: Option<u64>,
    pub psi_watch: Option<f64>,
    pub psi_alert: Option<f64>,
    pub min_rows: Option<u64>,
    pub auc_alert_ratio: Option<f64>,
    pub webhook_url: Option<String>,
    /// Environment only: a secret does not belong in a config file.
    #[serde(skip)]
    pub webhook_secret: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchingLayer {
    pub models: Option<Vec<String>>,
    pub max_batch_size: Option<usize>,
    pub max_queue_delay_us: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerLayer {
    pub listen: Option<String>,
    pub grpc_listen: Option<String>,
    pub body_limit_bytes: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub shutdown_grace_s: Option<u64>,
    pub unknown_fields: Option<String>,
    pub max_batch_records: Option<usize>,
    pub header_read_timeout_ms: Option<u64>,
    pub auth_failures_per_minute: Option<u32>,
    pub max_loaded_versions: Option<usize>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub tls_client_ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingLayer {
    pub test_fraction: Option<f64>,
    pub seed: Option<u64>,
    pub max_concurrent_jobs: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLayer {
    pub fields_in_clear: Option<Vec<String>>,
    pub masked_fields: Option<Vec<String>>,
    pub durability: Option<String>,
    pub anchor_interval_ms: Option<u64>,
    pub anchor_file: Option<PathBuf>,
    pub anchor_key_file: Option<PathBuf>,
    /// Environment only: a secret does not belong in a config file.
    #[serde(skip)]
    pub anchor_key: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLayer {
    pub format: Option<String>,
    pub level: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryLayer {
    pub backend: Option<String>,
    pub database_url: Option<String>,
    pub database_max_connections: Option<u32>,
    pub artifact_store_url: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_allow_http: Option<bool>,
    /// Environment only: secrets do not belong in a config file.
    #[serde(skip)]
    pub s3_access_key_id: Option<String>,
    #[serde(skip)]
    pub s3_secret_access_key: Option<String>,
    pub encryption_key_file: Option<PathBuf>,
    pub fraud_state_url: Option<String>,
    pub fraud_state_prefix: Option<String>,
    pub limits_url: Option<String>,
    pub limits_prefix: Option<String>,
    /// Environment only: a secret does not belong in a config file.
    #[serde(skip)]
    pub encryption_keys: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// The environment variables read by [`ConfigLayer::from_env`], with the setting each one sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("AURUM_DATA_DIR", "data_dir"),
    ("AURUM_LISTEN", "server.listen"),
    ("AURUM_GRPC_LISTEN", "server.grpc_listen"),
    ("AURUM_TLS_CERT_FILE", "server.tls_cert_file"),
    ("AURUM_TLS_KEY_FILE", "server.tls_key_file"),
    ("AURUM_TLS_CLIENT_CA_FILE", "server.tls_client_ca_file"),
    ("AURUM_BODY_LIMIT_BYTES", "server.body_limit_bytes"),
    ("AURUM_REQUEST_TIMEOUT_MS", "server.request_timeout_ms"),
    ("AURUM_SHUTDOWN_GRACE_S", "server.shutdown_grace_s"),
    ("AURUM_UNKNOWN_FIELDS", "server.unknown_fields"),
    ("AURUM_MAX_BATCH_RECORDS", "server.max_batch_records"),
    (
        "AURUM_HEADER_READ_TIMEOUT_MS",
        "server.header_read_timeout_ms",
    ),
    (
        "AURUM_AUTH_FAILURES_PER_MINUTE",
        "server.auth_failures_per_minute",
    ),
    ("AURUM_MAX_LOADED_VERSIONS", "server.max_loaded_versions"),
    ("AURUM_TRAINING_TEST_FRACTION", "training.test_fraction"),
    ("AURUM_TRAINING_SEED", "training.seed"),
    (
        "AURUM_TRAINING_MAX_CONCURRENT_JOBS",
        "training.max_concurrent_jobs",
    ),
    ("AURUM_AUDIT_FIELDS_IN_CLEAR", "audit.fields_in_clear"),
    ("AURUM_AUDIT_MASKED_FIELDS", "audit.masked_fields"),
    ("AURUM_AUDIT_DURABILITY", "audit.durability"),
    ("AURUM_AUDIT_ANCHOR_INTERVAL_MS", "audit.anchor_interval_ms"),
    ("AURUM_AUDIT_ANCHOR_FILE", "audit.anchor_file"),
    ("AURUM_AUDIT_ANCHOR_KEY_FILE", "audit.anchor_key_file"),
    ("AURUM_AUDIT_ANCHOR_KEY", "audit.anchor_key"),
    ("AURUM_LOG_FORMAT", "log.format"),
    ("AURUM_MONITORING_WEBHOOK_URL", "monitoring.webhook_url"),
    (
        "AURUM_MONITORING_WEBHOOK_SECRET",
        "monitoring.webhook_secret",
    ),
    ("AURUM_LOG", "log.level"),
    ("AURUM_REGISTRY_BACKEND", "registry.backend"),
    ("AURUM_DATABASE_URL", "registry.database_url"),
    (
        "AURUM_DATABASE_MAX_CONNECTIONS",
        "registry.database_max_connections",
    ),
    ("AURUM_ARTIFACT_STORE_URL", "registry.artifact_store_url"),
    ("AURUM_S3_ENDPOINT", "registry.s3_endpoint"),
    ("AURUM_S3_REGION", "registry.s3_region"),
    ("AURUM_S3_ALLOW_HTTP", "registry.s3_allow_http"),
    ("AURUM_S3_ACCESS_KEY_ID", "registry.s3_access_key_id"),
    (
        "AURUM_S3_SECRET_ACCESS_KEY",
        "registry.s3_secret_access_key",
    ),
    ("AURUM_ENCRYPTION_KEY_FILE", "registry.encryption_key_file"),
    ("AURUM_FRAUD_STATE_URL", "registry.fraud_state_url"),
    ("AURUM_FRAUD_STATE_PREFIX", "registry.fraud_state_prefix"),
    ("AURUM_LIMITS_URL", "registry.limits_url"),
    ("AURUM_LIMITS_PREFIX", "registry.limits_prefix"),
    ("AURUM_ENCRYPTION_KEYS", "registry.encryption_keys"),
    ("AURUM_BATCHING_MODELS", "batching.models"),
    ("AURUM_BATCHING_MAX_BATCH_SIZE", "batching.max_batch_size"),
    (
        "AURUM_BATCHING_MAX_QUEUE_DELAY_US",
        "batching.max_queue_delay_us",
    ),
];

impl ConfigLayer {
    /// Parses a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Reads the `AURUM_*` variables from `vars` (pass `std::env::vars()`).
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("AURUM_"))
            .collect();
        let mut problems = Vec::new();
        let mut num = |key: &str| -> Option<u64> {
            let v = vars.get(key)?;
            match v.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    problems.push(format!("{key}={v:?} is not a non-negative integer"));
                    None
                }
            }
        };
        let mut layer = ConfigLayer::default();
        layer.server.body_limit_bytes = num("AURUM_BODY_LIMIT_BYTES").map(|n| n as usize);
        layer.server.request_timeout_ms = num("AURUM_REQUEST_TIMEOUT_MS");
        layer.server.shutdown_grace_s = num("AURUM_SHUTDOWN_GRACE_S");
        layer.server.max_batch_records = num("AURUM_MAX_BATCH_RECORDS").map(|n| n as usize);
        layer.server.header_read_timeout_ms = num("AURUM_HEADER_READ_TIMEOUT_MS");
        layer.audit.anchor_interval_ms = num("AURUM_AUDIT_ANCHOR_INTERVAL_MS");
        layer.server.auth_failures_per_minute =
            num("AURUM_AUTH_FAILURES_PER_MINUTE").map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        layer.server.max_loaded_versions = num("AURUM_MAX_LOADED_VERSIONS").map(|n| n as usize);
        layer.training.seed = num("AURUM_TRAINING_SEED");
        layer.registry.database_max_connections =
            num("AURUM_DATABASE_MAX_CONNECTIONS").map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        layer.batching.max_batch_size = num("AURUM_BATCHING_MAX_BATCH_SIZE").map(|n| n as usize);
        layer.batching.max_queue_delay_us = num("AURUM_BATCHING_MAX_QUEUE_DELAY_US");
        layer.training.max_concurrent_jobs =
            num("AURUM_TRAINING_MAX_CONCURRENT_JOBS").map(|n| n as usize);
        layer.data_dir = vars.get("AURUM_DATA_DIR").map(PathBuf::from);
        layer.server.listen = vars.get("AURUM_LISTEN").cloned();
        layer.server.grpc_listen = vars.get("AURUM_GRPC_LISTEN").cloned();
        layer.server.tls_cert_file = vars.get("AURUM_TLS_CERT_FILE").map(PathBuf::from);
        layer.server.tls_key_file = vars.get("AURUM_TLS_KEY_FILE").map(PathBuf::from);
        layer.server.tls_client_ca_file = vars.get("AURUM_TLS_CLIENT_CA_FILE").map(PathBuf::from);
        layer.server.unknown_fields = vars.get("AURUM_UNKNOWN_FIELDS").cloned();
        if let Some(v) = vars.get("AURUM_TRAINING_TEST_FRACTION") {
            match v.trim().parse::<f64>() {
                Ok(x) => layer.training.test_fraction = Some(x),
                Err(_) => problems.push(format!(
                    "AURUM_TRAINING_TEST_FRACTION={v:?} is not a number"
                )),
            }
        }
        layer.audit.masked_fields = vars.get("AURUM_AUDIT_MASKED_FIELDS").map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        });
        layer.audit.fields_in_clear = vars.get("AURUM_AUDIT_FIELDS_IN_CLEAR").map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        });
        layer.audit.durability = vars.get("AURUM_AUDIT_DURABILITY").cloned();
        layer.audit.anchor_file = vars.get("AURUM_AUDIT_ANCHOR_FILE").map(PathBuf::from);
        layer.audit.anchor_key_file = vars.get("AURUM_AUDIT_ANCHOR_KEY_FILE").map(PathBuf::from);
        layer.audit.anchor_key = vars.get("AURUM_AUDIT_ANCHOR_KEY").cloned();
        layer.batching.models = vars.get("AURUM_BATCHING_MODELS").map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        });
        layer.log.format = vars.get("AURUM_LOG_FORMAT").cloned();
        layer.monitoring.webhook_url = vars.get("AURUM_MONITORING_WEBHOOK_URL").cloned();
        layer.monitoring.webhook_secret = vars.get("AURUM_MONITORING_WEBHOOK_SECRET").cloned();
        layer.log.level = vars.get("AURUM_LOG").cloned();
        layer.registry.backend = vars.get("AURUM_REGISTRY_BACKEND").cloned();
        layer.registry.database_url = vars.get("AURUM_DATABASE_URL").cloned();
        layer.registry.artifact_store_url = vars.get("AURUM_ARTIFACT_STORE_URL").cloned();
        layer.registry.s3_endpoint = vars.get("AURUM_S3_ENDPOINT").cloned();
        layer.registry.s3_region = vars.get("AURUM_S3_REGION").cloned();
        layer.registry.s3_access_key_id = vars.get("AURUM_S3_ACCESS_KEY_ID").cloned();
        layer.registry.s3_secret_access_key = vars.get("AURUM_S3_SECRET_ACCESS_KEY").cloned();
        layer.registry.encryption_key_file =
            vars.get("AURUM_ENCRYPTION_KEY_FILE").map(PathBuf::from);
        layer.registry.encryption_keys = vars.get("AURUM_ENCRYPTION_KEYS").cloned();
        layer.registry.fraud_state_url = vars.get("AURUM_FRAUD_STATE_URL").cloned();
        layer.registry.fraud_state_prefix = vars.get("AURUM_FRAUD_STATE_PREFIX").cloned();
        layer.registry.limits_url = vars.get("AURUM_LIMITS_URL").cloned();
        layer.registry.limits_prefix = vars.get("AURUM_LIMITS_PREFIX").cloned();
        if let Some(v) = vars.get("AURUM_S3_ALLOW_HTTP") {
            match v.trim() {
                "1" | "true" | "yes" => layer.registry.s3_allow_http = Some(true),
                "0" | "false" | "no" => layer.registry.s3_allow_http = Some(false),
                _ => problems.push(format!("AURUM_S3_ALLOW_HTTP={v:?} is not true or false")),
            }
        }
        if problems.is_empty() {
            Ok(layer)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

/// A log filter as `log.level` takes it: comma-separated directives, each a level or
/// `target=level`. `Err` names the first directive that is neither: the subscriber would read
/// a bare word (`loud`) as a target to log everything for, and the server would log nothing
/// else.
fn check_log_level(level: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |s: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s.trim()));
    if level.trim().is_empty() {
        return Err(level.to_string());
    }
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let ok = match directive.rsplit_once('=') {
            Some((target, lvl)) => !target.trim().is_empty() && is_level(lvl),
            None => is_level(directive),
        };
        if !ok {
            return Err(directive.to_string());
        }
    }
    Ok(())
}

impl Config {
    /// Applies `layer` on top of `self`, collecting problems instead of stopping at the first.
    pub fn apply(&mut self, layer: ConfigLayer, problems: &mut Vec<String>) {
        if let Some(v) = layer.data_dir {
            self.data_dir = v;
        }
        let s = layer.server;
        if let Some(v) = s.listen {
            match v.parse() {
                Ok(addr) => self.server.listen = addr,
                Err(_) => problems.push(format!(
                    "server.listen: `{v}` is not an address like 127.0.0.1:8080"
                )),
            }
        }
        if let Some(v) = s.grpc_listen {
            match v.parse() {
                Ok(addr) => self.server.grpc_listen = Some(addr),
                Err(_) => problems.push(format!(
                    "server.grpc_listen: `{v}` is not an address like 127.0.0.1:8081"
                )),
            }
        }
        if let Some(v) = s.body_limit_bytes {
            self.server.body_limit_bytes = v;
        }
        if let Some(v) = s.request_timeout_ms {
            self.server.request_timeout_ms = v;
        }
        if let Some(v) = s.shutdown_grace_s {
            self.server.shutdown_grace_s = v;
        }
        if let Some(v) = s.max_batch_records {
            self.server.max_batch_records = v;
        }
        if let Some(v) = s.header_read_timeout_ms {
            self.server.header_read_timeout_ms = v;
        }
        if let Some(v) = s.auth_failures_per_minute {
            self.server.auth_failures_per_minute = v;
        }
        if let Some(v) = s.max_loaded_versions {
            self.server.max_loaded_versions = v;
        }
        if let Some(v) = s.tls_cert_file {
            self.server.tls_cert_file = Some(v);
        }
        if let Some(v) = s.tls_key_file {
            self.server.tls_key_file = Some(v);
        }
        if let Some(v) = s.tls_client_ca_file {
            self.server.tls_client_ca_file = Some(v);
        }
        if let Some(v) = s.unknown_fields {
            match v.as_str() {
                "reject" => self.server.unknown_fields = UnknownFields::Reject,
                "ignore" => self.server.unknown_fields = UnknownFields::Ignore,
                _ => problems.push(format!(
                    "server.unknown_fields: `{v}` must be `reject` or `ignore`"
                )),
            }
        }
        let t = layer.training;
        if let Some(v) = t.test_fraction {
            self.training.test_fraction = v;
        }
        if let Some(v) = t.seed {
            self.training.seed = v;
        }
        if let Some(v) = t.max_concurrent_jobs {
            self.training.max_concurrent_jobs = v;
        }
        if let Some(v) = layer.audit.masked_fields {
            self.audit.masked_fields = v;
        }
        if let Some(v) = layer.audit.fields_in_clear {
            self.audit.fields_in_clear = v;
        }
        if let Some(v) = layer.audit.durability {
            match v.trim() {
                "sync" => self.audit.durability = AuditDurability::Sync,
                "buffered" => self.audit.durability = AuditDurability::Buffered,
                _ => problems.push(format!(
                    "audit.durability: `{v}` must be `sync` or `buffered`"
                )),
            }
        }
        if let Some(v) = layer.audit.anchor_interval_ms {
            self.audit.anchor_interval_ms = v;
        }
        if let Some(v) = layer.audit.anchor_file {
            self.audit.anchor_file = Some(v);
        }
        if let Some(v) = layer.audit.anchor_key_file {
            self.audit.anchor_key_file = Some(v);
        }
        if let Some(v) = layer.audit.anchor_key {
            self.audit.anchor_key = Some(v);
        }
        if let Some(v) = layer.log.format {
            self.log.format = v;
        }
        if let Some(v) = layer.log.level {
            self.log.level = v;
        }
        if let Some(v) = layer.registry.backend {
            self.registry.backend = v;
        }
        let m = layer.monitoring;
        if let Some(v) = m.enabled {
            self.monitoring.enabled = v;
        }
        if let Some(v) = m.window_s {
            self.monitoring.window_s = v;
        }
        if let Some(v) = m.flush_ms {
            self.monitoring.flush_ms = v;
        }
        if let Some(v) = m.psi_watch {
            self.monitoring.psi_watch = v;
        }
        if let Some(v) = m.psi_alert {
            self.monitoring.psi_alert = v;
        }
        if let Some(v) = m.min_rows {
            self.monitoring.min_rows = v;
        }
        if let Some(v) = m.auc_alert_ratio {
            self.monitoring.auc_alert_ratio = v;
        }
        if let Some(v) = m.webhook_url {
            self.monitoring.webhook_url = Some(v);
        }
        if let Some(v) = m.webhook_secret {
            self.monitoring.webhook_secret = Some(v);
        }
        if let Some(v) = layer.registry.encryption_key_file {
            self.registry.encryption_key_file = Some(v);
        }
        if let Some(v) = layer.registry.encryption_keys {
            self.registry.encryption_keys = Some(v);
        }
        if let Some(v) = layer.registry.database_url {
            self.registry.database_url = Some(v);
        }
        if let Some(v) = layer.registry.database_max_connections {
            self.registry.database_max_connections = v;
        }
        if let Some(v) = layer.registry.artifact_store_url {
            self.registry.artifact_store_url = Some(v);
        }
        if let Some(v) = layer.registry.fraud_state_url {
            self.registry.fraud_state_url = Some(v);
        }
        if let Some(v) = layer.registry.fraud_state_prefix {
            self.registry.fraud_state_prefix = v;
        }
        if let Some(v) = layer.registry.limits_url {
            self.registry.limits_url = Some(v);
        }
        if let Some(v) = layer.registry.limits_prefix {
            self.registry.limits_prefix = v;
        }
        if let Some(v) = layer.registry.s3_endpoint {
            self.registry.s3_endpoint = Some(v);
        }
        if let Some(v) = layer.registry.s3_region {
            self.registry.s3_region = Some(v);
        }
        if let Some(v) = layer.registry.s3_allow_http {
            self.registry.s3_allow_http = v;
        }
        if let Some(v) = layer.registry.s3_access_key_id {
            self.registry.s3_access_key_id = Some(v);
        }
        if let Some(v) = layer.registry.s3_secret_access_key {
            self.registry.s3_secret_access_key = Some(v);
        }
        if let Some(v) = layer.batching.models {
            self.batching.models = v;
        }
        if let Some(v) = layer.batching.max_batch_size {
            self.batching.max_batch_size = v;
        }
        if let Some(v) = layer.batching.max_queue_delay_us {
            self.batching.max_queue_delay_us = v;
        }
    }

    /// Checks the whole configuration and reports every problem at once.
    pub fn validate(&self, mut problems: Vec<String>) -> Result<(), ConfigError> {
        if let Err(bad) = check_log_level(&self.log.level) {
            problems.push(format!(
                "log.level (AURUM_LOG): `{bad}` is not a level (trace, debug, info, warn, error, off) or `target=level`"
            ));
        }
        if self.server.body_limit_bytes < 1024 {
            problems.push("server.body_limit_bytes must be at least 1024".into());
        }
        if self.server.header_read_timeout_ms == 0 {
            problems.push("server.header_read_timeout_ms must be positive".into());
        }
        match (&self.server.tls_cert_file, &self.server.tls_key_file) {
            (Some(_), None) => problems
                .push("server.tls_cert_file is set without server.tls_key_file: give both".into()),
            (None, Some(_)) => problems
                .push("server.tls_key_file is set without server.tls_cert_file: give both".into()),
            _ => {}
        }
        if self.server.tls_client_ca_file.is_some() && self.server.tls_cert_file.is_none() {
            problems.push(
                "server.tls_client_ca_file (mutual TLS) needs server.tls_cert_file and server.tls_key_file"
                    .into(),
            );
        }
        for (name, file) in [
            ("server.tls_cert_file", &self.server.tls_cert_file),
            ("server.tls_key_file", &self.server.tls_key_file),
            ("server.tls_client_ca_file", &self.server.tls_client_ca_file),
        ] {
            if let Some(path) = file
                && !path.is_file()
            {
                problems.push(format!("{name}: {} is not a readable file", path.display()));
            }
        }
        if let Some(f) = self
            .audit
            .masked_fields
            .iter()
            .find(|f| self.audit.fields_in_clear.contains(f))
        {
            problems.push(format!(
                "audit: `{f}` is in both fields_in_clear and masked_fields; choose one"
            ));
        }
        let m = &self.monitoring;
        if m.window_s == 0 {
            problems.push("monitoring.window_s must be positive".into());
        }
        if !(100..=3_600_000).contains(&m.flush_ms) {
            problems.push(format!(
                "monitoring.flush_ms ({}) must be between 100 and 3600000",
                m.flush_ms
            ));
        }
        if !(m.psi_watch > 0.0 && m.psi_watch <= m.psi_alert && m.psi_alert.is_finite()) {
            problems.push(format!(
                "monitoring.psi_watch ({}) and psi_alert ({}) must satisfy 0 < psi_watch <= psi_alert",
                m.psi_watch, m.psi_alert
            ));
        }
        if self.server.max_loaded_versions == 0 {
            problems.push("server.max_loaded_versions must be positive".into());
        }
        if self.server.request_timeout_ms == 0 {
            problems.push("server.request_timeout_ms must be positive".into());
        }
        if self.server.max_batch_records == 0 {
            problems.push("server.max_batch_records must be positive".into());
        }
        if !(self.training.test_fraction > 0.0 && self.training.test_fraction < 1.0) {
            problems.push(format!(
                "training.test_fraction must be strictly between 0 and 1, got {}",
                self.training.test_fraction
            ));
        }
        if self.batching.max_batch_size == 0 {
            problems.push("batching.max_batch_size must be at least 1".into());
        }
        if self.batching.max_queue_delay_us > 1_000_000 {
            problems.push("batching.max_queue_delay_us must be at most 1000000 (1 s)".into());
        }
        if self.training.max_concurrent_jobs == 0 {
            problems.push("training.max_concurrent_jobs must be at least 1".into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problems.push(format!(
                "log.format must be `text` or `json`, got `{}`",
                self.log.format
            ));
        }
        if self
            .audit
            .anchor_key
            .as_ref()
            .is_some_and(|k| k.len() < aurum_registry::audit::MIN_KEY_BYTES)
        {
            problems.push(format!(
                "audit.anchor_key (AURUM_AUDIT_ANCHOR_KEY) must be at least {} bytes",
                aurum_registry::audit::MIN_KEY_BYTES
            ));
        }
        match self.registry.backend.as_str() {
            "sqlite" => {}
            "postgres" if self.registry.database_url.is_none() => problems.push(
                "registry.backend `postgres` needs registry.database_url (AURUM_DATABASE_URL)"
                    .to_owned(),
            ),
            "postgres" => {}
            other => problems.push(format!(
                "registry.backend `{other}` is unknown (supported: sqlite, postgres)"
            )),
        }
        if self.registry.database_max_connections < 2 {
            problems.push("registry.database_max_connections must be at least 2".to_owned());
        }
        if let Some(url) = &self.registry.artifact_store_url
            && !["s3://", "file:///", "memory://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
        {
            problems.push(format!(
                "registry.artifact_store_url `{url}` must start with s3://, file:/// or memory://"
            ));
        }
        for (name, url) in [
            ("fraud_state_url", &self.registry.fraud_state_url),
            ("limits_url", &self.registry.limits_url),
        ] {
            if let Some(url) = url
                && !url.starts_with("redis://")
            {
                // The URL may hold a password: name the scheme only.
                let scheme = url.split_once("://").map_or("(none)", |(s, _)| s);
                problems.push(format!(
                    "registry.{name} must be a redis:// URL (scheme `{scheme}`; TLS to Redis \
                     is not built in: reach it through a private network or a TLS sidecar)"
                ));
            }
        }
        if let Some(url) = &self.monitoring.webhook_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            problems.push("monitoring.webhook_url must be an http:// or https:// URL".to_owned());
        }
        for (name, prefix) in [
            ("fraud_state_prefix", &self.registry.fraud_state_prefix),
            ("limits_prefix", &self.registry.limits_prefix),
        ] {
            if prefix.is_empty()
                || prefix.len() > 128
                || prefix
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '{' | '}' | '*'))
            {
                problems.push(format!(
                    "registry.{name} `{prefix}` must be 1-128 characters without spaces, braces \
                     or `*`"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Builds the effective configuration from its layers, lowest priority first.
    pub fn from_layers(layers: Vec<ConfigLayer>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut problems = Vec::new();
        for layer in layers {
            config.apply(layer, &mut problems);
        }
        config.validate(problems)?;
        Ok(config)
    }

    /// The configuration as TOML with secrets replaced by `"<redacted>"`.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.registry.database_url.is_some() {
            shown.registry.database_url = Some("<redacted>".into());
        }
        if shown.registry.s3_access_key_id.is_some() {
            shown.registry.s3_access_key_id = Some("<redacted>".into());
        }
        if shown.registry.s3_secret_access_key.is_some() {
            shown.registry.s3_secret_access_key = Some("<redacted>".into());
        }
        if shown.audit.anchor_key.is_some() {
            shown.audit.anchor_key = Some("<redacted>".into());
        }
        if shown.registry.encryption_keys.is_some() {
            shown.registry.encryption_keys = Some("<redacted>".into());
        }
        if shown.monitoring.webhook_secret.is_some() {
            shown.monitoring.webhook_secret = Some("<redacted>".into());
        }
        if shown.registry.fraud_state_url.is_some() {
            shown.registry.fraud_state_url = Some("<redacted>".into());
        }
        if shown.registry.limits_url.is_some() {
            shown.registry.limits_url = Some("<redacted>".into());
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let file: ConfigLayer = toml::from_str(
            "data_dir = \"/from-file\"\n[server]\nlisten = \"127.0.0.1:9000\"\nbody_limit_bytes = 2048\n",
        )
        .unwrap();
        let env = ConfigLayer::from_env(env(&[("AURUM_LISTEN", "127.0.0.1:9100")])).unwrap();
        let flags = ConfigLayer {
            data_dir: Some("/from-flag".into()),
            ..Default::default()
        };
        let c = Config::from_layers(vec![file, env, flags]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from-flag"));
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(c.server.body_limit_bytes, 2048);
        assert_eq!(c.server.request_timeout_ms, 30_000);
    }

    #[test]
    fn every_problem_reported_together() {
        let env = ConfigLayer::from_env(env(&[
            ("AURUM_LISTEN", "nowhere"),
            ("AURUM_TRAINING_TEST_FRACTION", "1.5"),
            ("AURUM_UNKNOWN_FIELDS", "maybe"),
        ]))
        .unwrap();
        let err = Config::from_layers(vec![env]).unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");
        assert!(err.contains("test_fraction"), "{err}");
        assert!(err.contains("unknown_fields"), "{err}");
    }

    #[test]
    fn audit_durability_defaults_to_sync_and_layers() {
        assert_eq!(Config::default().audit.durability, AuditDurability::Sync);
        assert_eq!(Config::default().audit.anchor_interval_ms, 0);
        let file: ConfigLayer = toml::from_str("[audit]\nanchor_interval_ms = 100\n").unwrap();
        let env_ms =
            ConfigLayer::from_env(env(&[("AURUM_AUDIT_ANCHOR_INTERVAL_MS", "250")])).unwrap();
        let c = Config::from_layers(vec![file.clone()]).unwrap();
        assert_eq!(c.audit.anchor_interval_ms, 100);
        let c = Config::from_layers(vec![file, env_ms]).unwrap();
        assert_eq!(c.audit.anchor_interval_ms, 250);
        let file: ConfigLayer = toml::from_str("[audit]\ndurability = \"buffered\"\n").unwrap();
        let c = Config::from_layers(vec![file.clone()]).unwrap();
        assert_eq!(c.audit.durability, AuditDurability::Buffered);
        let sync = ConfigLayer::from_env(env(&[("AURUM_AUDIT_DURABILITY", "sync")])).unwrap();
        let c = Config::from_layers(vec![file, sync]).unwrap();
        assert_eq!(c.audit.durability, AuditDurability::Sync);
        let bad = ConfigLayer::from_env(env(&[("AURUM_AUDIT_DURABILITY", "eventually")])).unwrap();
        let err = Config::from_layers(vec![bad]).unwrap_err().to_string();
        assert!(err.contains("audit.durability"), "{err}");
    }

    #[test]
    fn log_levels_are_levels_or_target_directives() {
        for ok in [
            "info",
            "WARN",
            "aurum=debug,warn",
            "aurum_server=trace, info",
            "off",
        ] {
            let layer = ConfigLayer::from_env(env(&[("AURUM_LOG", ok)])).unwrap();
            assert!(Config::from_layers(vec![layer]).is_ok(), "{ok}");
        }
        // A bare word once passed and silenced every log line (it is read as a target name).
        for bad in ["loud", "aurum=loud", "", "info,verbose", "=debug"] {
            let layer = ConfigLayer::from_env(env(&[("AURUM_LOG", bad)])).unwrap();
            let err = Config::from_layers(vec![layer]).unwrap_err().to_string();
            assert!(err.contains("log.level (AURUM_LOG)"), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_redacted_and_unknown_file_keys_rejected() {
        let env =
            ConfigLayer::from_env(env(&[("AURUM_DATABASE_URL", "postgres://u:hunter2@h/db")]))
                .unwrap();
        let c = Config::from_layers(vec![env]);
        // sqlite backend with a URL is fine; the URL must never be shown.
        let shown = c.unwrap().to_redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(toml::from_str::<ConfigLayer>("[server]\nlisen = \"x\"\n").is_err());
        let secret = "s3cret-anchor-key-of-at-least-32-bytes";
        let keyed =
            ConfigLayer::from_env(self::env(&[("AURUM_AUDIT_ANCHOR_KEY", secret)])).unwrap();
        let shown = Config::from_layers(vec![keyed]).unwrap().to_redacted_toml();
        assert!(!shown.contains(secret), "{shown}");
        assert!(
            toml::from_str::<ConfigLayer>("[audit]\nanchor_key = \"x\"\n").is_err(),
            "the file cannot set the secret"
        );
        let short =
            ConfigLayer::from_env(self::env(&[("AURUM_AUDIT_ANCHOR_KEY", "short")])).unwrap();
        let err = Config::from_layers(vec![short]).unwrap_err().to_string();
        assert!(err.contains("anchor_key"), "{err}");
    }

    #[test]
    fn the_alert_webhook_takes_http_urls_and_a_redacted_secret() {
        let env = ConfigLayer::from_env(env(&[
            (
                "AURUM_MONITORING_WEBHOOK_URL",
                "https://alerts.example/hook",
            ),
            ("AURUM_MONITORING_WEBHOOK_SECRET", "hunter2-hook"),
        ]))
        .unwrap();
        let c = Config::from_layers(vec![env]).unwrap();
        assert_eq!(
            c.monitoring.webhook_url.as_deref(),
            Some("https://alerts.example/hook")
        );
        assert!(!c.to_redacted_toml().contains("hunter2-hook"));
        let bad =
            ConfigLayer::from_env(self::env(&[("AURUM_MONITORING_WEBHOOK_URL", "ftp://x/y")]))
                .unwrap();
        let err = Config::from_layers(vec![bad]).unwrap_err().to_string();
        assert!(err.contains("monitoring.webhook_url"), "{err}");
        assert!(
            toml::from_str::<ConfigLayer>("[monitoring]\nwebhook_secret = \"x\"\n").is_err()
                || toml::from_str::<ConfigLayer>("[monitoring]\nwebhook_secret = \"x\"\n")
                    .unwrap()
                    .monitoring
                    .webhook_secret
                    .is_none(),
            "the file cannot set the secret"
        );
    }

    #[test]
    fn fraud_state_url_is_a_redacted_redis_url() {
        let env = ConfigLayer::from_env(env(&[
            ("AURUM_FRAUD_STATE_URL", "redis://:hunter2@10.0.0.5:6379/2"),
            ("AURUM_FRAUD_STATE_PREFIX", "prod:fraud"),
        ]))
        .unwrap();
        let c = Config::from_layers(vec![env]).unwrap();
        assert_eq!(c.registry.fraud_state_prefix, "prod:fraud");
        let shown = c.to_redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        for (url, prefix) in [
            ("rediss://:hunter2@h:6380", "aurum:fraud"),
            ("redis://h", "bad {prefix}"),
        ] {
            let env = ConfigLayer::from_env(self::env(&[
                ("AURUM_FRAUD_STATE_URL", url),
                ("AURUM_FRAUD_STATE_PREFIX", prefix),
            ]))
            .unwrap();
            let err = Config::from_layers(vec![env]).unwrap_err().to_string();
            assert!(err.contains("registry.fraud_state_"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let env = ConfigLayer::from_env(self::env(&[
            ("AURUM_LIMITS_URL", "redis://:hunter3@10.0.0.5:6379/3"),
            ("AURUM_LIMITS_PREFIX", "prod:limits"),
        ]))
        .unwrap();
        let c = Config::from_layers(vec![env]).unwrap();
        assert_eq!(c.registry.limits_prefix, "prod:limits");
        assert!(!c.to_redacted_toml().contains("hunter3"));
        let env = ConfigLayer::from_env(self::env(&[("AURUM_LIMITS_URL", "http://h")])).unwrap();
        let err = Config::from_layers(vec![env]).unwrap_err().to_string();
        assert!(
            err.contains("registry.limits_url must be a redis:// URL"),
            "{err}"
        );
        let file: ConfigLayer =
            toml::from_str("[registry]\nfraud_state_url = \"redis://127.0.0.1:6379\"\n").unwrap();
        let c = Config::from_layers(vec![file]).unwrap();
        assert_eq!(
            c.registry.fraud_state_url.as_deref(),
            Some("redis://127.0.0.1:6379")
        );
    }
}
