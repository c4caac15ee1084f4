//! API keys: creation, revocation and authentication against an in-memory key ring.
//!
//! Keys are 256-bit random secrets stored as a domain-separated SHA-256 (see the registry's key
//! module for why a slow password hash is the wrong tool here). Checking one costs a hash and a
//! constant-time comparison, microseconds, so there is no verification cache to expire and no
//! herd of re-verifications when it does.
//!
//! - **Key ring.** Every active key's id, role and stored hash sit in a copy-on-write map
//!   ([`ArcSwap`]): a request reads it without locking and without touching the database. The
//!   ring is reloaded when this process creates or revokes a key and whenever the registry's
//!   change epoch moves (another process did), which the platform polls several times a second.
//! - **Constant shape.** Every presented key is hashed and compared, whether its id is
//!   malformed, unknown, revoked or known: the work, and so the time, does not tell an attacker
//!   which key ids exist.
//! - **Legacy argon2 hashes** (keys created by earlier versions) are checked on a bounded pool:
//!   at most [`LEGACY_VERIFY_PERMITS`] run at once and at most [`LEGACY_VERIFY_QUEUE`] wait;
//!   beyond that the caller gets 429 with `Retry-After`. The first successful check stores the
//!   fast hash instead, so a legacy key pays argon2 once.
//! - **Failed-authentication limit.** Each client address may fail
//!   `server.auth_failures_per_minute` times a minute; after that its failures answer 429 with
//!   `Retry-After` and legacy checks are refused before any argon2 work. A valid key from the
//!   same address keeps working.
//! - **Late refusals.** A failure over the limit is answered only after [`OVER_LIMIT_DELAY`].
//!   Refusing costs microseconds, but a client that ignores `Retry-After` and resends at once
//!   would still take a core's worth of them from the valid keys (`bench/auth/run.sh` measured a
//!   128-connection flood at 50 000 refusals a second pushing a legitimate client's p99 from
//!   22 ms to 146 ms on two cores). Held back, each of its connections costs one request a
//!   second; a waiting refusal is a sleeping task, bounded by the number of connections.
//! - **Limits shared by replicas.** Both limits above, and each key's `rate_limit_per_s`, are
//!   kept per process unless the stores carry [`SharedLimits`] (`registry.limits_url`, Redis):
//!   then every process takes from one bucket per key and adds to one failure count per client,
//!   so `n` replicas do not multiply a limit by `n`. A refusal learnt from the shared store is
//!   remembered here until it expires, so a client that keeps going over costs no round trips.
//!   A key with a high limit leases a slice of its bucket per round trip ([`lease_size`], a
//!   hundredth of the limit, at most 1 000) and spends it here. Leased requests were taken from
//!   the shared bucket when leased, so whenever they are spent the rate across replicas exceeds
//!   the limit by at most one lease per replica; a lease lapses after [`LEASE_LIFE`], and what a
//!   replica leased and did not spend is lost to the others until then.
//!   Failed authentications are added to the shared count in batches of a tenth of the limit
//!   ([`failure_batch`]), and at once when this process's view (the shared count last seen,
//!   plus its own failures waiting or on their way there) reaches the limit, so an address can
//!   fail about the limit plus one batch per replica before every replica refuses it.
//!   When the shared store cannot be asked, the process falls back to its own buckets for
//!   [`SHARED_RETRY`] (logged, `aurum_shared_limits_errors_total`): limits then hold per
//!   process, as without it, instead of refusing every caller or none.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aurum_core::validate_name;
use aurum_registry::{KeyRecord, StoredKeyHash, digests_equal, key_digest, parse_key_id};

pub use aurum_registry::KeyPolicy;
use tokio::sync::Semaphore;

pub use aurum_registry::Role;

use crate::platform::join_error;
use crate::{CallContext, Platform, ServiceError};

/// Legacy (argon2) verifications that may run at once.
pub const LEGACY_VERIFY_PERMITS: usize = 2;
/// Legacy verifications that may wait for a permit; more get 429.
pub const LEGACY_VERIFY_QUEUE: usize = 8;
/// How long a failed authentication over the client's limit waits before its 429.
pub const OVER_LIMIT_DELAY: Duration = Duration::from_secs(1);
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
const MAX_TRACKED_CLIENTS: usize = 100_000;
/// How long a process may spend a lease of a key's shared bucket before it lapses.
pub const LEASE_LIFE: Duration = Duration::from_secs(1);

/// What a [`SharedLimits::take`] got from a key's bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedTake {
    /// This many requests, at least one and at most the number asked for.
    Granted(u32),
    /// None: the bucket is empty for this long.
    Wait(Duration),
}

/// Requests a key with `limit` a second takes from the shared bucket per round trip: a
/// hundredth of the limit, at least 1, at most 1 000.
pub fn lease_size(limit: u32) -> u32 {
    (limit / 100).clamp(1, 1000)
}

/// Failed authentications of one address a process counts before it adds them to the shared
/// count, for a limit of `per_minute`: a tenth of the limit, at least 1 (every failure) and
/// never past the limit (see [`KeyRing::unsent_failures`]).
pub fn failure_batch(per_minute: u32) -> u32 {
    (per_minute / 10).max(1)
}

/// How long a process keeps to its own limits after the shared store failed to answer.
pub const SHARED_RETRY: Duration = Duration::from_secs(1);

/// Limits every replica shares (`registry.limits_url`). Calls block (network I/O): the platform
/// makes them on the blocking pool. Errors are the store's message.
pub trait SharedLimits: Send + Sync {
    /// Takes up to `want` requests from `key_id`'s bucket (`limit_per_s` a second, bursts of as
    /// many): as many as the bucket holds, or how long until one would pass.
    fn take(&self, key_id: &str, limit_per_s: u32, want: u32) -> Result<SharedTake, String>;
    /// Adds `failures` failed authentications of `client` to its count in its window of length
    /// `window` (started by its first failure): the count, these included, and the time left.
    fn count_failures(
        &self,
        client: &str,
        failures: u32,
        window: Duration,
    ) -> Result<(u32, Duration), String>;
    /// Where the limits live, for logs (no secrets).
    fn describe(&self) -> String;
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub role: Role,
    /// The key's expiry, model scope and rate limit.
    pub policy: Arc<KeyPolicy>,
}

impl Principal {
    /// Whether this principal may act with `needed`'s permissions (admin may do everything).
    pub fn allows(&self, needed: Role) -> bool {
        self.role == Role::Admin || self.role == needed
    }

    /// `OutOfScope` (403, `key_out_of_scope`) unless the key's scope covers `model`.
    pub fn check_model(&self, model: &str) -> Result<(), ServiceError> {
        if self.policy.covers(model) {
            Ok(())
        } else {
            Err(ServiceError::OutOfScope {
                key: self.name.clone(),
                model: model.to_string(),
            })
        }
    }

    /// A principal for in-process callers (the CLI): every model, no limits.
    pub fn local(name: &str, role: Role) -> Principal {
        Principal {
            key_id: String::new(),
            name: name.to_string(),
            role,
            policy: Arc::new(KeyPolicy::default()),
        }
    }
}

/// A client address's failures this process has not yet seen in the shared count.
struct Unsent {
    /// When the first of `waiting` was counted.
    since: Instant,
    /// Counted here, waiting for the rest of their batch.
    waiting: u32,
    /// Sent to the shared count, no answer yet.
    in_flight: u32,
}

/// What [`KeyRing::unsent_failures`] says to do with a failed authentication.
enum FailureStep {
    Wait,
    Send(u32),
    Refuse,
}

/// What this process holds of a key's shared bucket, until `until`.
enum Held {
    Lease { requests: u32, until: Instant },
    Refused { until: Instant },
}

/// A token bucket: `limit` requests a second sustained, bursts of up to `limit`.
struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Credential {
    principal: Principal,
    hash: StoredKeyHash,
}

pub(crate) struct KeyRing {
    by_id: ArcSwap<HashMap<String, Arc<Credential>>>,
    /// Serialises reloads so that a slow one cannot overwrite a newer one.
    reload: tokio::sync::Mutex<()>,
    legacy: Semaphore,
    legacy_waiting: AtomicUsize,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
    failures_per_minute: u32,
    /// Per-key token buckets of keys with a rate limit, by key id.
    buckets: Mutex<HashMap<String, Bucket>>,
    /// The limits every replica shares, when configured.
    shared: Option<Arc<dyn SharedLimits>>,
    /// Per key with a limit, what this process holds of the shared bucket: a lease of requests
    /// it may spend, or a refusal until its next request would pass.
    held: Mutex<HashMap<String, Held>>,
    /// Until when the shared store is left alone after it failed.
    shared_down_until: Mutex<Option<Instant>>,
    /// Per client address, failures counted here and not yet in the shared count.
    unsent: Mutex<HashMap<String, Unsent>>,
}

impl KeyRing {
    pub(crate) fn new(failures_per_minute: u32, shared: Option<Arc<dyn SharedLimits>>) -> Self {
        KeyRing {
            by_id: ArcSwap::from_pointee(HashMap::new()),
            reload: tokio::sync::Mutex::new(()),
            legacy: Semaphore::new(LEGACY_VERIFY_PERMITS),
            legacy_waiting: AtomicUsize::new(0),
            failures: Mutex::new(HashMap::new()),
            failures_per_minute,
            buckets: Mutex::new(HashMap::new()),
            shared,
            held: Mutex::new(HashMap::new()),
            shared_down_until: Mutex::new(None),
            unsent: Mutex::new(HashMap::new()),
        }
    }

    /// The shared limits, unless absent or resting after a failure.
    fn shared(&self) -> Option<Arc<dyn SharedLimits>> {
        let shared = self.shared.as_ref()?;
        let mut down = self
            .shared_down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match *down {
            Some(until) if Instant::now() < until => None,
            Some(_) => {
                *down = None;
                Some(Arc::clone(shared))
            }
            None => Some(Arc::clone(shared)),
        }
    }

    /// The shared store did not answer: this process keeps to its own limits for a while.
    fn shared_failed(&self, error: &str) {
        metrics::counter!("aurum_shared_limits_errors_total").increment(1);
        *self
            .shared_down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + SHARED_RETRY);
        tracing::warn!(
            error,
            retry_in_ms = SHARED_RETRY.as_millis() as u64,
            "shared limits unavailable; limits hold per process meanwhile"
        );
    }

    /// Answers from what this process holds of `key_id`'s shared bucket: `Some(true)` spends
    /// one request of its lease, `Some(false)` repeats a refusal whose wait is not over, `None`
    /// asks the shared store.
    fn take_held(&self, key_id: &str) -> Option<bool> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let answer = match held.get_mut(key_id)? {
            Held::Lease { requests, until } if now < *until && *requests > 0 => {
                *requests -= 1;
                Some(true)
            }
            Held::Refused { until } if now < *until => Some(false),
            _ => None,
        };
        if answer.is_none() {
            held.remove(key_id);
        }
        answer
    }

    /// Keeps what the shared store answered: the rest of a lease (`granted - 1`, for
    /// [`LEASE_LIFE`]), or a refusal for `wait`.
    fn hold(&self, key_id: &str, taken: SharedTake) {
        let now = Instant::now();
        let new = match taken {
            SharedTake::Granted(n) if n > 1 => Held::Lease {
                requests: n - 1,
                until: now + LEASE_LIFE,
            },
            SharedTake::Granted(_) => return,
            SharedTake::Wait(wait) => Held::Refused { until: now + wait },
        };
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.len() >= MAX_TRACKED_CLIENTS {
            held.retain(|_, h| match h {
                Held::Lease { until, .. } | Held::Refused { until } => *until > now,
            });
        }
        match (held.get_mut(key_id), new) {
            // Two requests of this process leased at once: keep both leases.
            (
                Some(Held::Lease { requests, until }),
                Held::Lease {
                    requests: more,
                    until: later,
                },
            ) if now < *until => {
                *requests += more;
                *until = (*until).max(later);
            }
            (_, new) => {
                held.insert(key_id.to_string(), new);
            }
        }
    }

    /// Takes one request from the key's bucket; `false` when it is empty.
    fn take_token(&self, key_id: &str, limit: u32) -> bool {
        let limit = f64::from(limit);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(key_id.to_string()).or_insert(Bucket {
            tokens: limit,
            last: now,
        });
        let refill = now.duration_since(bucket.last).as_secs_f64() * limit;
        bucket.tokens = (bucket.tokens + refill).min(limit);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Seconds until `client` may fail again, when it is over its limit.
    fn blocked_for(&self, client: Option<&str>) -> Option<u64> {
        let client = client?;
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = failures.get(client)?;
        let elapsed = start.elapsed();
        (elapsed < FAILURE_WINDOW && *count >= self.failures_per_minute)
            .then(|| (FAILURE_WINDOW - elapsed).as_secs().max(1))
    }

    fn record_failure(&self, client: Option<&str>) {
        let Some(client) = client else { return };
        self.with_failures(client, |entry| {
            if entry.0.elapsed() >= FAILURE_WINDOW {
                *entry = (Instant::now(), 0);
            }
            entry.1 = entry.1.saturating_add(1);
        });
    }

    /// Takes the shared store's count of `client`'s failures as this process's own, so that
    /// [`KeyRing::blocked_for`] refuses it here once every replica together reached the limit.
    /// Answers that arrive out of order never lower the count within a window.
    fn note_shared_failures(&self, client: &str, count: u32, left: Duration) {
        let elapsed = FAILURE_WINDOW.saturating_sub(left);
        let start = Instant::now()
            .checked_sub(elapsed)
            .unwrap_or_else(Instant::now);
        self.with_failures(client, |entry| {
            let count = if entry.0.elapsed() < FAILURE_WINDOW {
                count.max(entry.1)
            } else {
                count
            };
            *entry = (start, count);
        });
    }

    /// Counts one more failure of `client` here and says what to do with it: wait for the rest
    /// of its batch, add the batch to the shared count now (a batch is full, or with the shared
    /// count last seen and the failures on their way there it reaches the limit), or refuse it
    /// (this process alone knows of more failures than the limit, so it is over everywhere).
    fn unsent_failures(&self, client: &str) -> FailureStep {
        let seen = {
            let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            failures
                .get(client)
                .filter(|(start, _)| start.elapsed() < FAILURE_WINDOW)
                .map_or(0, |(_, count)| *count)
        };
        let mut unsent = self.unsent.lock().unwrap_or_else(|p| p.into_inner());
        if unsent.len() >= MAX_TRACKED_CLIENTS {
            unsent.retain(|_, u| u.since.elapsed() < FAILURE_WINDOW || u.in_flight > 0);
            if unsent.len() >= MAX_TRACKED_CLIENTS {
                unsent.clear();
            }
        }
        let u = unsent.entry(client.to_string()).or_insert(Unsent {
            since: Instant::now(),
            waiting: 0,
            in_flight: 0,
        });
        if u.since.elapsed() >= FAILURE_WINDOW {
            u.since = Instant::now();
            u.waiting = 0;
        }
        let known = seen
            .saturating_add(u.in_flight)
            .saturating_add(u.waiting)
            .saturating_add(1);
        if known > self.failures_per_minute {
            return FailureStep::Refuse;
        }
        u.waiting += 1;
        if u.waiting >= failure_batch(self.failures_per_minute) || known >= self.failures_per_minute
        {
            let n = std::mem::take(&mut u.waiting);
            u.in_flight = u.in_flight.saturating_add(n);
            FailureStep::Send(n)
        } else {
            FailureStep::Wait
        }
    }

    /// `n` failures of `client` sent to the shared count have an answer (or none).
    fn failures_sent(&self, client: &str, n: u32) {
        let mut unsent = self.unsent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = unsent.get_mut(client) {
            u.in_flight = u.in_flight.saturating_sub(n);
        }
    }

    fn with_failures(&self, client: &str, f: impl FnOnce(&mut (Instant, u32))) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED_CLIENTS {
            failures.retain(|_, (start, _)| start.elapsed() < FAILURE_WINDOW);
            if failures.len() >= MAX_TRACKED_CLIENTS {
                failures.clear();
            }
        }
        f(failures
            .entry(client.to_string())
            .or_insert((Instant::now(), 0)));
    }
}

/// Compared against when the presented key id is unknown, so that the work is the same.
const DUMMY_DIGEST: [u8; 32] = [0x5a; 32];

impl Platform {
    /// Resolves a presented API key to its principal, or `Unauthenticated`.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal, ServiceError> {
        self.authenticate_from(presented, None).await
    }

    /// [`Platform::authenticate`] for a request from `client` (an address), which is subject to
    /// the failed-authentication limit.
    pub async fn authenticate_from(
        &self,
        presented: &str,
        client: Option<&str>,
    ) -> Result<Principal, ServiceError> {
        let ring = &self.inner.keys;
        let digest = key_digest(presented);
        let cred = parse_key_id(presented).and_then(|id| ring.by_id.load().get(id).cloned());
        let verified = match cred.as_deref() {
            Some(Credential {
                hash: StoredKeyHash::Sha256(stored),
                ..
            }) => digests_equal(&digest, stored),
            Some(Credential {
                hash: StoredKeyHash::Argon2(phc),
                principal,
            }) => {
                if let Some(retry) = ring.blocked_for(client) {
                    return Err(refuse_over_limit(retry).await);
                }
                self.verify_legacy(presented, phc, &principal.key_id)
                    .await?
            }
            None => {
                let _ = digests_equal(&digest, &DUMMY_DIGEST);
                false
            }
        };
        match (verified, cred) {
            (true, Some(cred)) => {
                let policy = &cred.principal.policy;
                if policy.expired_at(chrono::Utc::now()) {
                    metrics::counter!("aurum_auth_expired_total").increment(1);
                    return Err(ServiceError::KeyExpired {
                        key: cred.principal.name.clone(),
                        expired_at: policy
                            .expires_at
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                            .unwrap_or_default(),
                    });
                }
                if let Some(limit) = policy.rate_limit_per_s
                    && !self.take_token(&cred.principal.key_id, limit).await
                {
                    metrics::counter!("aurum_key_rate_limited_total").increment(1);
                    return Err(ServiceError::KeyRateLimited {
                        key: cred.principal.name.clone(),
                        limit,
                    });
                }
                Ok(cred.principal.clone())
            }
            _ => {
                // Over the limit already: this failure is refused. Checked before counting it,
                // so that the limit's own failures are all answered 401.
                if let Some(retry) = ring.blocked_for(client) {
                    metrics::counter!("aurum_auth_failures_limited_total").increment(1);
                    return Err(refuse_over_limit(retry).await);
                }
                if let Some(retry) = self.count_failure(client).await {
                    metrics::counter!("aurum_auth_failures_limited_total").increment(1);
                    return Err(refuse_over_limit(retry).await);
                }
                metrics::counter!("aurum_auth_failures_total").increment(1);
                Err(ServiceError::Unauthenticated(
                    "invalid or revoked API key".into(),
                ))
            }
        }
    }

    /// Takes one request from the key's bucket, the replicas' shared one when configured;
    /// `false` when it is empty.
    async fn take_token(&self, key_id: &str, limit: u32) -> bool {
        let ring = &self.inner.keys;
        if let Some(shared) = ring.shared() {
            if let Some(answer) = ring.take_held(key_id) {
                return answer;
            }
            let (id, want) = (key_id.to_string(), lease_size(limit));
            match ask_shared(move || shared.take(&id, limit, want)).await {
                Ok(taken) => {
                    ring.hold(key_id, taken);
                    return matches!(taken, SharedTake::Granted(_));
                }
                Err(e) => ring.shared_failed(&e),
            }
        }
        ring.take_token(key_id, limit)
    }

    /// Counts a failed authentication of `client`, in the replicas' shared count when
    /// configured (in batches, see [`failure_batch`]). `Some(retry)` when this failure is
    /// already over the limit (other replicas' failures filled it since this process last
    /// looked).
    async fn count_failure(&self, client: Option<&str>) -> Option<u64> {
        let ring = &self.inner.keys;
        if let (Some(shared), Some(client)) = (ring.shared(), client) {
            let batch = match ring.unsent_failures(client) {
                // Counted here, added with the rest of its batch.
                FailureStep::Wait => return None,
                FailureStep::Refuse => return Some(ring.blocked_for(Some(client)).unwrap_or(1)),
                FailureStep::Send(batch) => batch,
            };
            let who = client.to_string();
            let counted =
                ask_shared(move || shared.count_failures(&who, batch, FAILURE_WINDOW)).await;
            if let Ok((count, left)) = counted {
                ring.note_shared_failures(client, count, left);
            }
            ring.failures_sent(client, batch);
            match counted {
                Ok((count, left)) => {
                    return (count > ring.failures_per_minute).then(|| left.as_secs().max(1));
                }
                Err(e) => ring.shared_failed(&e),
            }
        }
        ring.record_failure(client);
        None
    }

    /// Checks a key against a legacy argon2 hash on the bounded pool, and on success stores the
    /// fast hash in its place.
    async fn verify_legacy(
        &self,
        presented: &str,
        phc: &str,
        key_id: &str,
    ) -> Result<bool, ServiceError> {
        let ring = &self.inner.keys;
        if ring.legacy_waiting.fetch_add(1, Ordering::SeqCst) >= LEGACY_VERIFY_QUEUE {
            ring.legacy_waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ServiceError::RateLimited {
                message: "too many key checks in progress; retry shortly".into(),
                retry_after_s: 1,
            });
        }
        let permit = ring.legacy.acquire().await;
        ring.legacy_waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = permit.map_err(|_| ServiceError::Unavailable("shutting down".into()))?;
        let (candidate, stored) = (presented.to_string(), phc.to_string());
        let ok =
            tokio::task::spawn_blocking(move || aurum_registry::verify_argon2(&candidate, &stored))
                .await
                .map_err(join_error)??;
        if ok {
            let fast = StoredKeyHash::Sha256(key_digest(presented)).to_stored();
            self.inner.meta.upgrade_key_hash(key_id, phc, &fast).await?;
            self.reload_keys().await?;
        }
        Ok(ok)
    }

    /// Reloads the key ring from the store.
    pub(crate) async fn reload_keys(&self) -> Result<(), ServiceError> {
        let ring = &self.inner.keys;
        let _guard = ring.reload.lock().await;
        let creds = self.inner.meta.key_credentials().await?;
        let map: HashMap<String, Arc<Credential>> = creds
            .into_iter()
            .map(|c| {
                (
                    c.record.id.clone(),
                    Arc::new(Credential {
                        principal: principal(&c.record),
                        hash: c.hash,
                    }),
                )
            })
            .collect();
        {
            // Buckets of keys that are gone (revoked) would otherwise stay forever.
            let mut buckets = ring.buckets.lock().unwrap_or_else(|p| p.into_inner());
            buckets.retain(|id, _| map.contains_key(id));
        }
        ring.by_id.store(Arc::new(map));
        Ok(())
    }

    /// Creates a key; the plaintext is returned once and never stored.
    pub async fn create_key(
        &self,
        ctx: &CallContext,
        name: &str,
        role: Role,
    ) -> Result<(KeyRecord, String), ServiceError> {
        self.create_key_with_policy(ctx, name, role, KeyPolicy::default())
            .await
    }

    /// Creates a key with an expiry, a model scope and a rate limit.
    pub async fn create_key_with_policy(
        &self,
        ctx: &CallContext,
        name: &str,
        role: Role,
        policy: KeyPolicy,
    ) -> Result<(KeyRecord, String), ServiceError> {
        let (this, ctx, name) = (self.clone(), ctx.clone(), name.to_string());
        self.detached(async move { this.create_key_now(&ctx, &name, role, &policy).await })
            .await
    }

    async fn create_key_now(
        &self,
        ctx: &CallContext,
        name: &str,
        role: Role,
        policy: &KeyPolicy,
    ) -> Result<(KeyRecord, String), ServiceError> {
        validate_name(name)
            .map_err(|e| ServiceError::invalid("invalid_name", Some("name"), e.to_string()))?;
        check_policy(policy)?;
        let (record, plaintext) = self
            .inner
            .meta
            .create_key_with_policy(name, role, policy)
            .await?;
        self.reload_keys().await?;
        self.audit(
            ctx,
            "key.create",
            None,
            serde_json::json!({
                "key_id": record.id,
                "name": record.name,
                "role": role.as_str(),
                "expires_at": policy.expires_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                "scopes": policy.scopes,
                "rate_limit_per_s": policy.rate_limit_per_s,
            }),
        )
        .await?;
        tracing::info!(key = %record.name, role = role.as_str(), "API key created");
        Ok((record, plaintext))
    }

    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, ServiceError> {
        Ok(self.inner.meta.list_keys().await?)
    }

    /// Revokes a key by name or id; it stops working in this process at once and in every other
    /// process sharing the registry within the change-poll interval.
    pub async fn revoke_key(
        &self,
        ctx: &CallContext,
        name_or_id: &str,
    ) -> Result<KeyRecord, ServiceError> {
        let (this, ctx, key) = (self.clone(), ctx.clone(), name_or_id.to_string());
        self.detached(async move { this.revoke_key_now(&ctx, &key).await })
            .await
    }

    async fn revoke_key_now(
        &self,
        ctx: &CallContext,
        name_or_id: &str,
    ) -> Result<KeyRecord, ServiceError> {
        // A key already revoked is answered as it is, and nothing is recorded again. Decided
        // before the change (by id first, then name, as the registry looks it up), so that a
        // revocation made here is always recorded; two concurrent calls may both record one.
        let keys = self.inner.meta.list_keys().await?;
        let before = keys
            .iter()
            .find(|k| k.id == name_or_id)
            .or_else(|| keys.iter().find(|k| k.name == name_or_id));
        if let Some(k) = before
            && !k.is_active()
        {
            return Ok(k.clone());
        }
        let record = self.inner.meta.revoke_key(name_or_id).await?;
        self.reload_keys().await?;
        self.audit(
            ctx,
            "key.revoke",
            None,
            serde_json::json!({"key_id": record.id, "name": record.name}),
        )
        .await?;
        tracing::info!(key = %record.name, "API key revoked");
        Ok(record)
    }

    /// On a data dir without any active key, creates an `admin` key, writes it to
    /// `<data_dir>/admin.key` with mode 0600 and returns it. Otherwise returns `None`.
    pub async fn ensure_bootstrap_admin(&self) -> Result<Option<String>, ServiceError> {
        if self.inner.meta.count_active_keys().await? > 0 {
            return Ok(None);
        }
        let mut name = "admin".to_string();
        let existing = self.inner.meta.list_keys().await?;
        if existing.iter().any(|k| k.is_active()) {
            // Another process starting on the same registry created one since the count.
            return Ok(None);
        }
        let mut n = 1;
        while existing.iter().any(|k| k.name == name) {
            n += 1;
            name = format!("admin-{n}");
        }
        let plaintext = match self
            .create_key(&CallContext::cli(), &name, Role::Admin)
            .await
        {
            Ok((_, plaintext)) => plaintext,
            // Another process starting on the same registry created it between the count and
            // here: the registry has its admin key, and that process wrote and printed it.
            Err(
                ServiceError::Conflict(_)
                | ServiceError::Registry(aurum_registry::RegistryError::Conflict(_)),
            ) => return Ok(None),
            Err(e) => return Err(e),
        };
        let path = self.data_dir().join("admin.key");
        aurum_registry::atomic_file::write(
            &path,
            format!("{plaintext}\n").as_bytes(),
            aurum_registry::atomic_file::Access::Private,
        )
        .map_err(|e| ServiceError::Internal(format!("cannot write {}: {e}", path.display())))?;
        Ok(Some(plaintext))
    }
}

/// The error for a failure over the client's limit, given after [`OVER_LIMIT_DELAY`].
/// Runs a call to the shared limits on the blocking pool; a task that died is an error like the
/// store's own.
async fn ask_shared<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or_else(|e| Err(format!("shared limits task: {e}")))
}

async fn refuse_over_limit(retry_after_s: u64) -> ServiceError {
    tokio::time::sleep(OVER_LIMIT_DELAY).await;
    too_many_failures(retry_after_s)
}

fn too_many_failures(retry_after_s: u64) -> ServiceError {
    ServiceError::RateLimited {
        message: "too many failed authentications from this client; retry later".into(),
        retry_after_s,
    }
}

fn principal(record: &KeyRecord) -> Principal {
    Principal {
        key_id: record.id.clone(),
        name: record.name.clone(),
        role: record.role,
        policy: Arc::new(record.policy.clone()),
    }
}

/// A policy a caller asked for, checked field by field before anything is stored.
fn check_policy(policy: &KeyPolicy) -> Result<(), ServiceError> {
    if let Some(t) = policy.expires_at
        && t <= chrono::Utc::now()
    {
        return Err(ServiceError::invalid(
            "invalid_expiry",
            Some("expires_at"),
            format!("expires_at {} is not in the future", t.to_rfc3339()),
        ));
    }
    if let Some(t) = policy.expires_at
        && t.timestamp() > aurum_registry::LATEST_KEY_EXPIRY
    {
        return Err(ServiceError::invalid(
            "invalid_expiry",
            Some("expires_at"),
            format!(
                "expires_at {} is after 9999-12-31T23:59:59Z, the latest expiry a key may have \
                 (leave it out for a key that does not expire)",
                t.to_rfc3339()
            ),
        ));
    }
    if policy.rate_limit_per_s == Some(0) {
        return Err(ServiceError::invalid(
            "invalid_rate_limit",
            Some("rate_limit_per_s"),
            "rate_limit_per_s must be at least 1 (leave it out for no limit)",
        ));
    }
    policy
        .validate()
        .map_err(|e| ServiceError::invalid("invalid_scope", Some("scopes"), e.to_string()))
}
