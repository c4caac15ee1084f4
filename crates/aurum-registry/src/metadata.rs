//! The metadata store: what the registry knows about datasets, models, versions, aliases,
//! training jobs and API keys.
//!
//! Why a trait: the server runs on SQLite today ([`crate::SqliteStore`]) and will run on
//! PostgreSQL later; the service layer holds an `Arc<dyn MetadataStore>` and never sees a
//! database type. The trait therefore speaks only in typed records (`chrono` timestamps, enums,
//! `u32` version numbers), and every invariant lives behind it, enforced inside the backend's
//! own transactions:
//!
//! - a dataset name is bound to one content hash forever (re-importing the same bytes is a no-op);
//! - version numbers of a model are `1, 2, 3, ...` with no gaps or duplicates, even under
//!   concurrent writers;
//! - an alias never points at an archived version, and every alias move is recorded in a history;
//! - a training job only moves along `queued → running → succeeded | failed`, with `cancelled`
//!   reachable from either live state;
//! - an API key's secret is never stored: only an argon2id hash of the whole key.
//!
//! JSON payloads (`schema_json`, `params_json`, ...) are stored as text the registry does not
//! interpret; helpers on the records parse them back into `aurum_core` types.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use aurum_core::{FamilyName, Metrics, Params, Schema};

use crate::error::{RegistryError, Result};
use crate::keys::StoredKeyHash;

/// A registered dataset: an immutable, content-addressed import.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetRecord {
    pub name: String,
    /// SHA-256 (lowercase hex) of the imported bytes.
    pub sha256: String,
    /// Source format (`csv`, `parquet`).
    pub format: String,
    pub size_bytes: u64,
    pub rows: u64,
    pub columns: u64,
    /// The dataset's [`Schema`] as JSON.
    pub schema_json: String,
    /// The ingest profile (column statistics) as JSON.
    pub profile_json: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

impl DatasetRecord {
    /// Parses [`DatasetRecord::schema_json`].
    pub fn schema(&self) -> Result<Schema> {
        parse_json("dataset schema", &self.schema_json)
    }
}

/// What [`MetadataStore::insert_dataset`] needs; the store assigns `created_at`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDataset {
    pub name: String,
    pub sha256: String,
    pub format: String,
    pub size_bytes: u64,
    pub rows: u64,
    pub columns: u64,
    pub schema_json: String,
    pub profile_json: String,
    pub created_by: String,
}

/// A registered model: a name under which versions accumulate.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelRecord {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// The highest version number (archived or not).
    pub latest_version: u32,
    /// Aliases of this model, ordered by alias name.
    pub aliases: Vec<AliasRecord>,
}

/// One immutable trained version of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionRecord {
    pub model: String,
    pub version: u32,
    pub kind: FamilyName,
    /// Key of the artifact in the [`crate::ArtifactStore`].
    pub artifact_key: String,
    /// SHA-256 of the artifact bytes, checked on every load.
    pub artifact_sha256: String,
    /// The aurum dataset the version was trained on; empty for a version imported from outside
    /// aurum, whose `dataset_sha256` is then the SHA-256 of the imported model file.
    pub dataset_name: String,
    pub dataset_sha256: String,
    pub target: String,
    pub params_json: String,
    pub metrics_json: String,
    /// The aurum version that trained it.
    pub aurum_version: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// The training job that produced it, when there was one.
    pub job_id: Option<String>,
    pub archived_at: Option<DateTime<Utc>>,
}

impl VersionRecord {
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }

    /// Parses [`VersionRecord::params_json`].
    pub fn params(&self) -> Result<Params> {
        parse_json("version params", &self.params_json)
    }

    /// Parses [`VersionRecord::metrics_json`].
    pub fn metrics(&self) -> Result<Metrics> {
        parse_json("version metrics", &self.metrics_json)
    }
}

/// What [`MetadataStore::create_version`] needs; the store assigns the version number and
/// `created_at`, and creates the model on first use.
///
/// The version number is not known before the call, so artifact keys should not contain it:
/// content-addressed keys (`models/<name>/<sha256>`) fit.
#[derive(Clone, Debug, PartialEq)]
pub struct NewVersion {
    pub model: String,
    pub kind: FamilyName,
    pub artifact_key: String,
    pub artifact_sha256: String,
    /// Must name a registered dataset whose hash is `dataset_sha256`.
    pub dataset_name: String,
    pub dataset_sha256: String,
    pub target: String,
    pub params_json: String,
    pub metrics_json: String,
    pub aurum_version: String,
    pub created_by: String,
    pub job_id: Option<String>,
}

/// Where an alias points now.
#[derive(Clone, Debug, PartialEq)]
pub struct AliasRecord {
    pub alias: String,
    pub version: u32,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// The result of [`MetadataStore::set_alias`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AliasMove {
    /// The version the alias pointed at before, `None` when it is new.
    pub from: Option<u32>,
    pub to: u32,
}

/// One recorded alias move, oldest first in [`MetadataStore::alias_history`].
#[derive(Clone, Debug, PartialEq)]
pub struct AliasHistoryRecord {
    pub alias: String,
    pub from_version: Option<u32>,
    pub to_version: u32,
    pub moved_by: String,
    pub moved_at: DateTime<Utc>,
}

/// The life cycle of a training job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The stored and displayed form (`queued`, `running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job has finished (no transition leaves this state).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// The legal transitions: queued → running | cancelled, running → succeeded | failed |
    /// cancelled.
    pub fn can_transition_to(self, to: JobState) -> bool {
        matches!(
            (self, to),
            (JobState::Queued, JobState::Running | JobState::Cancelled)
                | (
                    JobState::Running,
                    JobState::Succeeded | JobState::Failed | JobState::Cancelled
                )
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| RegistryError::InvalidInput(format!("unknown job state `{s}`")))
    }
}

/// The error recorded by [`MetadataStore::fail_interrupted_jobs`].
pub const INTERRUPTED_JOB_ERROR: &str =
    "interrupted: the process running it stopped before the job finished";

/// The note [`MetadataStore::fail_interrupted_jobs`] records on a job whose version was
/// registered before its process stopped: the job succeeded, but the steps after registration
/// (the evaluation report, the requested alias) may not have run.
pub const INTERRUPTED_AFTER_REGISTRATION: &str = "registered, but the process running it stopped before the job finished: the version's report and requested alias may be missing";

/// Refuses a version for job `id` in stored state `state` unless the job is still queued or
/// running: once another process ended it (its owner looked gone), the owner must not register
/// anything for it, or a `failed` job would leave a version (and a moved alias) behind.
pub fn check_job_open(id: &str, state: &str) -> Result<()> {
    if matches!(state, "queued" | "running") {
        return Ok(());
    }
    Err(RegistryError::Conflict(format!(
        "job `{id}` is already {state} (another process ended it while this one was working); its version is not registered"
    )))
}

/// A training job as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    /// A UUID (v4) string.
    pub id: String,
    pub state: JobState,
    pub dataset: String,
    pub target: String,
    pub kind: FamilyName,
    /// The model the resulting version is registered under.
    pub model: String,
    pub params_json: String,
    /// Fraction done, in `[0, 1]`.
    pub progress: f64,
    /// A short human label of the current stage (`queued`, `fitting`, ...).
    pub stage: String,
    pub error: Option<String>,
    pub result_version: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_by: String,
}

impl JobRecord {
    /// Parses [`JobRecord::params_json`].
    pub fn params(&self) -> Result<Params> {
        parse_json("job params", &self.params_json)
    }
}

/// What [`MetadataStore::create_job`] needs; the store assigns the id, state `queued`, progress 0
/// and `created_at`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// Must name a registered dataset.
    pub dataset: String,
    pub target: String,
    pub kind: FamilyName,
    pub model: String,
    pub params_json: String,
    pub created_by: String,
    /// The id of the process instance that will run the job; it keeps the job's heartbeat.
    pub owner: String,
}

/// What an API key may do. The meaning of each role is enforced by the service layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including key management.
    Admin,
    /// Datasets, training, registry changes and predictions.
    Analyst,
    /// Predictions and read-only model information.
    Client,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Analyst, Role::Client];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Client => "client",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                RegistryError::InvalidInput(format!(
                    "unknown role `{s}` (expected admin, analyst or client)"
                ))
            })
    }
}

/// An API key as stored. It never contains the secret or its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyRecord {
    /// The 12-character public key id (the `<keyid>` in `aurum_<keyid>_<secret>`).
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// What the key may do beyond its role: expiry, model scope, rate limit.
    pub policy: KeyPolicy,
}

impl KeyRecord {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// Whether the key authenticates at `at`: not revoked and not expired.
    pub fn is_usable_at(&self, at: DateTime<Utc>) -> bool {
        self.is_active() && self.policy.expires_at.is_none_or(|t| t > at)
    }
}

/// The latest expiry a key may have, in Unix seconds: 9999-12-31T23:59:59Z, the last instant
/// every store writes as a four-digit year and reads back.
pub const LATEST_KEY_EXPIRY: i64 = 253_402_300_799;

/// The refusal to revoke `record` when no other admin key would still work (every backend's
/// `revoke_key` asks it inside its transaction): revoking an admin
/// key that is itself expired takes nothing away, and expired admin keys do not count as the
/// others.
pub fn check_not_last_admin(record: &KeyRecord, others: &[KeyRecord]) -> Result<()> {
    let now = Utc::now();
    if record.role != Role::Admin || !record.is_usable_at(now) {
        return Ok(());
    }
    if others
        .iter()
        .any(|k| k.id != record.id && k.role == Role::Admin && k.is_usable_at(now))
    {
        return Ok(());
    }
    Err(RegistryError::Conflict(format!(
        "`{}` is the last active admin key (expired admin keys do not count); create another \
         admin key before revoking it",
        record.name
    )))
}

/// The realised outcome of one scored record.
#[derive(Clone, Debug, PartialEq)]
pub struct OutcomeRecord {
    pub model: String,
    pub version: u32,
    pub request_id: String,
    /// The record's position in its request.
    pub record: u32,
    pub probability: f64,
    pub decision: Option<String>,
    /// Whether the realised label is the model's positive class.
    pub positive: bool,
    pub scored_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Attributes given with the outcome (for example a protected attribute that is not a
    /// feature), by name; empty when none.
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// What a challenger answered for a record the champion scored.
#[derive(Clone, Debug, PartialEq)]
pub struct ShadowRecord {
    pub model: String,
    pub request_id: String,
    pub record: u32,
    pub champion_version: u32,
    pub challenger_version: u32,
    pub champion_p: f64,
    pub challenger_p: f64,
    pub champion_decision: String,
    pub challenger_decision: String,
    pub scored_at: DateTime<Utc>,
}

/// One process's counts of one drift-monitoring window of a version. Every process scoring the
/// version keeps its own counts and stores them under its own `writer` id; a window's
/// population is the sum over its writers, so replicas (and a process and its successor after
/// a restart) never count a row twice or overwrite each other's counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftCountsRecord {
    pub model: String,
    pub version: u32,
    /// The window, `[start, end)` in unix seconds.
    pub window_start: i64,
    pub window_end: i64,
    /// The process that counted them.
    pub writer: String,
    /// The writer's copy number: a copy never replaces one with a higher number, so an older
    /// copy stored late cannot undo a newer one.
    pub seq: i64,
    /// Rows counted.
    pub rows: u64,
    /// The counts, JSON in the service's format (opaque to the store).
    pub counts: String,
}

/// A signed-in web console browser, stored under the SHA-256 of its cookie value (the value
/// itself is never stored: a copy of the table signs nobody in). Times are unix milliseconds of
/// the wall clock, so every process sharing the store reads them alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSessionRecord {
    /// SHA-256 (lowercase hex) of the session id the browser holds.
    pub session_hash: String,
    /// The API key's public id (never its secret).
    pub key_id: String,
    /// The token the console's sign-out form must carry.
    pub csrf: String,
    pub created_at_ms: i64,
    /// From this instant on the session is over.
    pub expires_at_ms: i64,
}

/// Limits on one API key beyond its role. The default (no expiry, every model, no rate limit)
/// is what keys created before policies existed have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPolicy {
    /// After this instant the key is refused (`key_expired`).
    pub expires_at: Option<DateTime<Utc>>,
    /// Model names the key may use; a trailing `*` makes a prefix (`credit-*`). Empty means
    /// every model.
    pub scopes: Vec<String>,
    /// Sustained requests per second the key may make on one replica; `None` is unlimited.
    pub rate_limit_per_s: Option<u32>,
}

impl KeyPolicy {
    /// Checks the policy's own values: scopes are model names (or name prefixes ending in `*`)
    /// and a rate limit is at least 1.
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self.expires_at
            && t.timestamp() > LATEST_KEY_EXPIRY
        {
            return Err(RegistryError::InvalidInput(format!(
                "expires_at {} is after 9999-12-31T23:59:59Z, the latest expiry a key may have",
                t.to_rfc3339()
            )));
        }
        for scope in &self.scopes {
            let name = scope.strip_suffix('*').unwrap_or(scope);
            if name.is_empty() && scope == "*" {
                continue;
            }
            if name.contains('*') {
                return Err(RegistryError::InvalidInput(format!(
                    "scope `{scope}`: `*` may only end a scope (a name prefix)"
                )));
            }
            let check = if scope.ends_with('*') {
                // A prefix need not be a whole valid name, but its characters must be.
                aurum_core::validate_name(&format!("{name}x"))
            } else {
                aurum_core::validate_name(name)
            };
            check.map_err(|e| RegistryError::InvalidInput(format!("scope `{scope}`: {e}")))?;
        }
        if self.rate_limit_per_s == Some(0) {
            return Err(RegistryError::InvalidInput(
                "rate_limit_per_s must be at least 1 (leave it out for no limit)".into(),
            ));
        }
        Ok(())
    }

    /// Whether the key may use `model`.
    pub fn covers(&self, model: &str) -> bool {
        self.scopes.is_empty()
            || self.scopes.iter().any(|s| match s.strip_suffix('*') {
                Some(prefix) => model.starts_with(prefix),
                None => s == model,
            })
    }

    /// Whether the key has expired at `now`.
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// An active key with its stored hash: what authentication compares a presented key against.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyCredential {
    pub record: KeyRecord,
    pub hash: StoredKeyHash,
}

/// The registry's metadata, behind one object-safe trait (`Arc<dyn MetadataStore>`).
///
/// Names (datasets, models, aliases, keys) are validated with [`aurum_core::validate_name`] on
/// every write. Lookups of unknown resources return [`RegistryError::NotFound`].
#[async_trait]
pub trait MetadataStore: Send + Sync {
    // ---- datasets ----

    /// Registers a dataset and returns `(record, created)`. The same name with the same hash
    /// returns the existing record unchanged with `created == false` (re-importing is a no-op);
    /// the same name with another hash is a [`RegistryError::Conflict`].
    async fn insert_dataset(&self, dataset: NewDataset) -> Result<(DatasetRecord, bool)>;
    async fn get_dataset(&self, name: &str) -> Result<DatasetRecord>;
    /// All datasets, by name.
    async fn list_datasets(&self) -> Result<Vec<DatasetRecord>>;

    // ---- models and versions ----

    /// Creates the next version of `new.model` (creating the model on first use) in one
    /// transaction: the number is the previous maximum plus one, safe under concurrent callers.
    async fn create_version(&self, new: NewVersion) -> Result<VersionRecord>;
    async fn get_model(&self, name: &str) -> Result<ModelRecord>;
    /// All models, by name, each with its latest version number and aliases.
    async fn list_models(&self) -> Result<Vec<ModelRecord>>;
    async fn get_version(&self, model: &str, version: u32) -> Result<VersionRecord>;
    /// All versions of a model, oldest first.
    async fn list_versions(&self, model: &str) -> Result<Vec<VersionRecord>>;
    /// Archives a version (idempotent). Refused with [`RegistryError::Conflict`] while an alias
    /// points at it, so that no alias ever resolves to an archived version.
    async fn archive_version(&self, model: &str, version: u32) -> Result<VersionRecord>;
    /// Makes an archived version usable again (idempotent).
    async fn unarchive_version(&self, model: &str, version: u32) -> Result<VersionRecord>;

    // ---- aliases ----

    /// Points `alias` at `version` and appends the move to the history, in one transaction.
    /// Setting an alias to the version it already points at changes nothing and records nothing.
    /// An archived version is refused with [`RegistryError::ArchivedVersion`].
    async fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: u32,
        moved_by: &str,
    ) -> Result<AliasMove>;
    /// The version `alias` points at, `None` when the model has no such alias.
    async fn resolve_alias(&self, model: &str, alias: &str) -> Result<Option<u32>>;
    /// The model's aliases, by alias name.
    async fn list_aliases(&self, model: &str) -> Result<Vec<AliasRecord>>;
    /// Every alias move of the model, oldest first.
    async fn alias_history(&self, model: &str) -> Result<Vec<AliasHistoryRecord>>;

    // ---- training jobs ----

    async fn create_job(&self, new: NewJob) -> Result<JobRecord>;
    async fn get_job(&self, id: &str) -> Result<JobRecord>;
    /// The `limit` most recent jobs, newest first.
    async fn list_jobs(&self, limit: u32) -> Result<Vec<JobRecord>>;
    /// Records progress (`0..=1`) and stage of a running job. Returns `false`, recording nothing,
    /// when the job is no longer running (a worker takes that as a signal to stop).
    async fn update_job_progress(&self, id: &str, progress: f64, stage: &str) -> Result<bool>;
    /// Moves a job to `to`, refusing illegal moves with [`RegistryError::InvalidTransition`]
    /// (see [`JobState::can_transition_to`]). Sets `started_at` on `running` and `finished_at`
    /// on terminal states; `error` and `result_version` are recorded when given.
    async fn transition_job(
        &self,
        id: &str,
        to: JobState,
        error: Option<String>,
        result_version: Option<u32>,
    ) -> Result<JobRecord>;
    /// Ends every queued or running job whose owner has not sent a heartbeat for `stale_after`
    /// (or never did): its process is gone. A job whose version was registered (a version names
    /// it in `job_id`) ends `succeeded` with that version and [`INTERRUPTED_AFTER_REGISTRATION`]
    /// (the registry and the job agree); the others end `failed` with
    /// [`INTERRUPTED_JOB_ERROR`]. Jobs of live processes (a CLI training job while a server
    /// starts) are left alone. Returns the jobs it ended, as they now are, for the caller's
    /// audit records.
    async fn fail_interrupted_jobs(
        &self,
        stale_after: std::time::Duration,
    ) -> Result<Vec<JobRecord>>;
    /// Records that `owner` is alive: refreshes the heartbeat of its queued and running jobs.
    async fn heartbeat_jobs(&self, owner: &str) -> Result<u64>;

    // ---- coherence ----

    /// A number that grows with every alias move, version registration or archive, and key
    /// creation or revocation, by any process sharing the store. Caches compare it to decide
    /// when to refresh.
    async fn change_epoch(&self) -> Result<i64>;

    /// A receiver whose value moves as soon as the change epoch does, for a backend that can push
    /// changes (PostgreSQL `LISTEN/NOTIFY`); `None` when the caller must poll
    /// [`MetadataStore::change_epoch`] (SQLite).
    async fn subscribe_changes(&self) -> Result<Option<tokio::sync::watch::Receiver<i64>>> {
        Ok(None)
    }

    // ---- outcomes ----

    /// Stores outcomes in one transaction, replacing earlier outcomes of the same records.
    async fn record_outcomes(&self, outcomes: &[OutcomeRecord]) -> Result<()>;
    /// The outcomes of a version, oldest scoring first.
    async fn list_outcomes(&self, model: &str, version: u32) -> Result<Vec<OutcomeRecord>>;

    /// Sets (`Some`) or clears (`None`) `model`'s challenger setting, an opaque JSON text the
    /// service reads. Bumps the change epoch. `NotFound` unless the model exists; clearing a
    /// model without one is a no-op.
    async fn put_challenger(&self, model: &str, config: Option<&str>) -> Result<()>;
    /// Every model's challenger setting, by model name.
    async fn list_challengers(&self) -> Result<Vec<(String, String)>>;

    /// Stores challenger answers (a repeated record replaces the earlier one).
    async fn record_shadow(&self, rows: &[ShadowRecord]) -> Result<()>;
    /// The challenger answers of `model`, oldest first, at most `limit`, each with the realised
    /// outcome (`Some(positive)`) when one was recorded for the same request and record.
    async fn list_shadow(
        &self,
        model: &str,
        limit: u32,
    ) -> Result<Vec<(ShadowRecord, Option<bool>)>>;

    // ---- drift windows ----

    /// Stores `counts` (replacing the same writer's earlier copy of the window) unless a copy
    /// with a higher `seq` is stored; `false` when it was not stored for that reason. An empty
    /// writer or model, a window that does not end after it starts, or a negative `seq` is
    /// [`RegistryError::InvalidInput`]. Does not bump the change epoch.
    async fn put_drift_counts(&self, counts: &DriftCountsRecord) -> Result<bool>;
    /// Every writer's counts of `model`'s `version` in windows that end after `ends_after`
    /// (unix seconds), by window start and then writer.
    async fn list_drift_counts(
        &self,
        model: &str,
        version: u32,
        ends_after: i64,
    ) -> Result<Vec<DriftCountsRecord>>;
    /// Claims the judging of a closed window (its alerts are raised once, whichever process
    /// closes it): `true` for exactly one caller per window.
    async fn claim_drift_window(
        &self,
        model: &str,
        version: u32,
        window_start: i64,
        by: &str,
    ) -> Result<bool>;
    /// The starts of `model`'s `version`'s windows claimed by [`MetadataStore::claim_drift_window`]
    /// that start after `starts_after`, ascending.
    async fn list_drift_claims(
        &self,
        model: &str,
        version: u32,
        starts_after: i64,
    ) -> Result<Vec<i64>>;

    // ---- console sessions ----

    /// Stores a new console session. In the same transaction it first removes every session
    /// expired at `session.created_at_ms`, then, while `max_live` or more remain, the oldest
    /// (by creation), so the table never holds more than `max_live` sessions whatever a caller
    /// signs in. A hash already stored is a [`RegistryError::Conflict`]; a hash that is not 64
    /// lowercase hex characters, an empty key id or token, an expiry before the creation or a
    /// `max_live` of zero is [`RegistryError::InvalidInput`]. Does not bump the change epoch
    /// (nothing caches sessions).
    async fn put_console_session(
        &self,
        session: &ConsoleSessionRecord,
        max_live: u32,
    ) -> Result<()>;
    /// The session stored under `session_hash`, expired or not; `None` when there is none.
    async fn get_console_session(&self, session_hash: &str)
    -> Result<Option<ConsoleSessionRecord>>;
    /// Removes the session under `session_hash`; `false` when there was none.
    async fn delete_console_session(&self, session_hash: &str) -> Result<bool>;
    /// Removes every session whose expiry is at or before `now_ms`; returns how many.
    async fn delete_expired_console_sessions(&self, now_ms: i64) -> Result<u64>;

    // ---- API keys ----

    /// Creates a key and returns its record and the plaintext `aurum_<keyid>_<secret>`, which
    /// is shown once and never stored. Key names are unique ([`RegistryError::Conflict`]).
    async fn create_key(&self, name: &str, role: Role) -> Result<(KeyRecord, String)> {
        self.create_key_with_policy(name, role, &KeyPolicy::default())
            .await
    }
    /// [`MetadataStore::create_key`] with an expiry, a model scope and a rate limit
    /// ([`KeyPolicy::validate`] is checked first).
    async fn create_key_with_policy(
        &self,
        name: &str,
        role: Role,
        policy: &KeyPolicy,
    ) -> Result<(KeyRecord, String)>;
    /// All keys, revoked ones included, oldest first.
    async fn list_keys(&self) -> Result<Vec<KeyRecord>>;
    /// Revokes the key with this id or name (idempotent); returns its record. Revoking the last
    /// active admin key is refused with [`RegistryError::Conflict`]: nobody could manage keys
    /// afterwards without shell access.
    async fn revoke_key(&self, name_or_id: &str) -> Result<KeyRecord>;
    async fn count_active_keys(&self) -> Result<u64>;
    /// The active key matching `plaintext`, `None` when the key is malformed, unknown, revoked
    /// or wrong. A legacy argon2 hash that matches is upgraded to the fast form.
    async fn verify_key(&self, plaintext: &str) -> Result<Option<KeyRecord>>;
    /// Every active key with its stored hash (the in-memory key ring of the service).
    async fn key_credentials(&self) -> Result<Vec<KeyCredential>>;
    /// Replaces key `id`'s stored hash `from` by `to` (compare-and-set; `false` when the row no
    /// longer holds `from`). Used to upgrade legacy argon2 hashes after a successful check.
    async fn upgrade_key_hash(&self, id: &str, from: &str, to: &str) -> Result<bool>;
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    serde_json::from_str(json)
        .map_err(|e| RegistryError::CorruptRecord(format!("{what} is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_transitions() {
        use JobState::*;
        let legal = [
            (Queued, Running),
            (Queued, Cancelled),
            (Running, Succeeded),
            (Running, Failed),
            (Running, Cancelled),
        ];
        for from in JobState::ALL {
            for to in JobState::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    legal.contains(&(from, to)),
                    "{from}->{to}"
                );
            }
        }
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>().unwrap(), state);
            assert_eq!(state.is_terminal(), !matches!(state, Queued | Running));
        }
    }

    #[test]
    fn roles_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
