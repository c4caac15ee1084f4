//! Live fraud state shared by every replica, in Redis; and the request limits replicas share
//! ([`RedisLimits`], see the `limits` module).
//!
//! Why Redis: a card's velocity features must see every event of that card, whichever replica
//! scored it. The in-process state ([`aurum_fraud::LocalState`]) is exact for one process; with
//! several replicas behind a load balancer each would see a fraction of the card's history. Redis
//! holds each entity's state under one key, and a batch is checked and applied in one optimistic
//! transaction, so replicas agree on every window.
//!
//! Why optimistic transactions (`WATCH` / `MULTI` / `EXEC`) rather than a Lua script: the
//! features are computed by the same Rust functions as in process
//! ([`aurum_fraud::features_from_states`], [`aurum_fraud::apply_event_to_state`]), which is what
//! keeps training (a replay) and serving equal; a script would be a second implementation. A
//! batch reads its entities' states and ids while watching them, validates, computes, and writes
//! everything in one `MULTI`; if another replica changed one of the watched keys in between,
//! `EXEC` applies nothing and the batch is retried from the read (up to
//! [`RedisOptions::max_attempts`] times, then the call is refused with nothing changed). Cards
//! rarely meet in two concurrent batches, so retries are rare; a hot terminal serialises its own
//! events, as it must.
//!
//! Keys, all under one hash tag per model (`{model}`) so a model's keys share a Redis Cluster
//! slot and a transaction can span them:
//! - `<prefix>:{<model>}:<spec>:e:<column>:<value>`: an entity's state (JSON of
//!   [`aurum_fraud::EntityState`]); `<spec>` is the first 16 hex digits of the feature spec's
//!   fingerprint, so states built under different specs never mix;
//! - `…:id:<event id>`: an applied event's time and entity values, for duplicate detection and
//!   labels; it expires after the spec's longest horizon plus its tolerance plus a day (wall
//!   clock);
//! - `…:wm`: the watermark (latest event time), raised with a `max` script inside the
//!   transaction; `…:stats`: counters (hash).
//!
//! Consistency: entity windows and duplicate ids are exact across replicas (watched). The
//! watermark is read without watching it, so two replicas racing may each accept an event up to
//! the spec's tolerance behind the other's latest; watching it would make every batch conflict
//! with every other. Durability: an event is acknowledged after `EXEC` returned, so it survives
//! the crash of any aurum process; surviving a Redis crash is Redis's own setting
//! (`appendonly yes`, `appendfsync always` for no loss; `everysec` loses up to a second). A
//! warning is logged at connect when persistence is off.

mod limits;

pub use limits::{LimitsUnavailable, RedisLimits, Taken};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aurum_fraud::{
    BatchError, CompiledSpec, EntityState, Event, FeatureSpec, FraudError, LabelOutcome,
    LabelRequest, OnlineState, OnlineStateFactory, StateInfo, apply_event_to_state,
    features_from_states, label_in_state, labelled_columns, stateful_columns, validate_batch,
};
use redis::{Connection, RedisError, Value};
use serde::{Deserialize, Serialize};

type Result<T> = std::result::Result<T, FraudError>;

/// A value as `GET`/`MGET` return it: absent, or bytes.
type Raw = Option<Vec<u8>>;

/// Raises the watermark key to `ARGV[1]` if it is lower (or absent).
const RAISE_WATERMARK: &str = "local w = redis.call('GET', KEYS[1]) \
     if (not w) or tonumber(w) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end \
     return 0";

/// Connection and retry settings.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Connections kept open for reuse (more are opened under load and closed after).
    pub pool_size: usize,
    /// Connect, read and write timeout of each command.
    pub timeout: Duration,
    /// Attempts of one batch when concurrent writers keep changing its entities.
    pub max_attempts: u32,
    /// First part of every key (lets several deployments share one Redis).
    pub key_prefix: String,
    /// Entity states idle this long (wall clock) are dropped by Redis; `None` keeps them, as the
    /// in-process state does (first-seen flags then remember every terminal a card used).
    pub entity_ttl: Option<Duration>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            pool_size: 16,
            timeout: Duration::from_secs(2),
            max_attempts: 16,
            key_prefix: "aurum:fraud".into(),
            entity_ttl: None,
        }
    }
}

fn unavailable(e: RedisError) -> FraudError {
    FraudError::Unavailable(e.to_string())
}

/// A small pool of synchronous connections. A connection that saw an error is dropped, never
/// reused: it may hold a half-read reply or a `WATCH`.
struct Pool {
    client: redis::Client,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
    timeout: Duration,
}

impl Pool {
    /// A pool on `url` (nothing connected yet) and the location it names, without the password.
    fn open(url: &str, options: &RedisOptions) -> redis::RedisResult<(Pool, String)> {
        let client = redis::Client::open(url)?;
        let info = client.get_connection_info();
        let location = format!(
            "redis {}/{} {}",
            info.addr(),
            info.redis_settings().db(),
            options.key_prefix
        );
        let pool = Pool {
            client,
            idle: Mutex::new(Vec::new()),
            keep: options.pool_size.max(1),
            timeout: options.timeout,
        };
        Ok((pool, location))
    }

    fn get(&self) -> Result<Conn<'_>> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => {
                let c = self
                    .client
                    .get_connection_with_timeout(self.timeout)
                    .map_err(unavailable)?;
                c.set_read_timeout(Some(self.timeout))
                    .map_err(unavailable)?;
                c.set_write_timeout(Some(self.timeout))
                    .map_err(unavailable)?;
                c
            }
        };
        Ok(Conn {
            pool: self,
            conn: Some(conn),
        })
    }
}

struct Conn<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Conn<'_> {
    /// Runs `f` on the connection; on a Redis error the connection is discarded.
    fn run<T>(&mut self, f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>) -> Result<T> {
        let Some(c) = self.conn.as_mut() else {
            return Err(FraudError::Unavailable("connection already failed".into()));
        };
        f(c).map_err(|e| {
            self.conn = None;
            unavailable(e)
        })
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < self.pool.keep {
                idle.push(c);
            }
        }
    }
}

/// Stripes of the in-process lock (see [`Stripes`]).
const STRIPES: usize = 256;

/// In-process serialisation of batches that touch the same entities: a batch holds the stripes
/// of its entity keys (in index order, so two batches never wait on each other crosswise) while
/// it runs its transaction. Writers on one replica then queue instead of invalidating each
/// other's `WATCH`; optimistic retries are left for writers on different replicas.
struct Stripes(Vec<Mutex<()>>);

impl Stripes {
    fn new() -> Stripes {
        Stripes((0..STRIPES).map(|_| Mutex::new(())).collect())
    }

    fn index(key: &str) -> usize {
        // FNV-1a: stable and cheap; only the spread matters.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (h % STRIPES as u64) as usize
    }

    fn lock(&self, keys: &[String]) -> Vec<std::sync::MutexGuard<'_, ()>> {
        let mut idx: Vec<usize> = keys.iter().map(|k| Self::index(k)).collect();
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter()
            .map(|i| self.0[i].lock().unwrap_or_else(|p| p.into_inner()))
            .collect()
    }
}

/// Sleep before retry `attempt` (1-based): exponential from 100 µs, capped at 20 ms, with
/// jitter so that two replicas that collided do not collide again in step.
fn backoff(attempt: u32) {
    let cap_us = (100u64 << attempt.min(8)).min(20_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = u64::from(nanos) % cap_us.max(1);
    std::thread::sleep(Duration::from_micros(cap_us / 2 + jitter / 2));
}

/// Opens models' states in one Redis (a standalone server or a primary, `redis://` URL).
pub struct RedisStateFactory {
    pool: Arc<Pool>,
    stripes: Arc<Stripes>,
    options: RedisOptions,
    location: String,
}

impl std::fmt::Debug for RedisStateFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStateFactory")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl RedisStateFactory {
    /// Connects (one `PING`) and reports whether Redis persists what it is given.
    pub fn connect(url: &str, options: RedisOptions) -> Result<RedisStateFactory> {
        let (pool, location) = Pool::open(url, &options).map_err(|e| FraudError::InvalidInput {
            field: "fraud_state_url".into(),
            message: format!("not a Redis URL: {e}"),
        })?;
        let pool = Arc::new(pool);
        {
            let mut conn = pool.get()?;
            conn.run(|c| redis::cmd("PING").query::<String>(c))?;
            // Managed services may refuse CONFIG; then nothing is known and nothing is said.
            let persistence: Option<Vec<String>> = conn
                .run(|c| {
                    redis::cmd("CONFIG")
                        .arg("GET")
                        .arg("appendonly")
                        .query::<Vec<String>>(c)
                })
                .ok();
            if let Some(v) = persistence
                && v.get(1).is_some_and(|s| s == "no")
            {
                tracing::warn!(redis = %location,
                    "Redis has appendonly off: acknowledged fraud events survive an aurum crash but not a Redis restart");
            }
        }
        Ok(RedisStateFactory {
            pool,
            stripes: Arc::new(Stripes::new()),
            options,
            location,
        })
    }
}

impl OnlineStateFactory for RedisStateFactory {
    fn open(&self, model: &str, spec: &FeatureSpec) -> Result<Arc<dyn OnlineState>> {
        let spec = spec.compile()?;
        let fp = spec.fingerprint();
        let base = format!(
            "{}:{{{}}}:{}",
            self.options.key_prefix,
            model,
            &fp[..fp.len().min(16)]
        );
        let id_ttl_s = (spec.max_horizon_s() + spec.tolerance_s()).max(0) as u64 + 86_400;
        Ok(Arc::new(RedisState {
            pool: Arc::clone(&self.pool),
            stripes: Arc::clone(&self.stripes),
            options: self.options.clone(),
            location: self.location.clone(),
            base,
            id_ttl_s,
            spec,
        }))
    }

    fn describe(&self) -> String {
        self.location.clone()
    }
}

/// What the id key of an applied event holds.
#[derive(Serialize, Deserialize)]
struct IdRecord {
    ts: i64,
    keys: Vec<String>,
}

/// One model's state in Redis.
pub struct RedisState {
    pool: Arc<Pool>,
    stripes: Arc<Stripes>,
    options: RedisOptions,
    location: String,
    base: String,
    id_ttl_s: u64,
    spec: CompiledSpec,
}

impl RedisState {
    fn entity_key(&self, column: usize, value: &str) -> String {
        format!("{}:e:{column}:{value}", self.base)
    }

    fn id_key(&self, id: &str) -> String {
        format!("{}:id:{id}", self.base)
    }

    fn wm_key(&self) -> String {
        format!("{}:wm", self.base)
    }

    fn stats_key(&self) -> String {
        format!("{}:stats", self.base)
    }

    fn decode_state(&self, key: &str, bytes: &[u8]) -> Result<EntityState> {
        serde_json::from_slice(bytes).map_err(|e| corrupt(key, e))
    }

    /// Adds the write of one entity's state (with the entity TTL, if any) to a transaction.
    fn set_state(&self, tx: &mut redis::Pipeline, key: &str, st: &EntityState) -> Result<()> {
        let bytes = serde_json::to_vec(st)
            .map_err(|e| FraudError::Unavailable(format!("encode state: {e}")))?;
        let cmd = tx.cmd("SET").arg(key).arg(bytes);
        if let Some(ttl) = self.options.entity_ttl {
            cmd.arg("EX").arg(ttl.as_secs().max(1));
        }
        cmd.ignore();
        Ok(())
    }

    /// One attempt at a batch. `Ok(None)`: another writer changed a watched key, nothing applied.
    fn try_batch(
        &self,
        events: &[Event],
        entities: &[(usize, String)],
        entity_keys: &[String],
        id_keys: &[String],
    ) -> std::result::Result<Option<Vec<Vec<f64>>>, BatchError> {
        let spec = &self.spec;
        let mut conn = self.pool.get()?;
        let watched: Vec<&String> = entity_keys.iter().chain(id_keys).collect();
        conn.run(|c| redis::cmd("WATCH").arg(&watched).exec(c))?;
        let (raw_states, raw_ids, wm): (Vec<Raw>, Vec<Raw>, Option<i64>) = conn.run(|c| {
            redis::pipe()
                .cmd("MGET")
                .arg(entity_keys)
                .cmd("MGET")
                .arg(id_keys)
                .cmd("GET")
                .arg(self.wm_key())
                .query(c)
        })?;
        let mut states: HashMap<(usize, &str), EntityState> = HashMap::new();
        for (((c, value), key), raw) in entities.iter().zip(entity_keys).zip(raw_states) {
            if let Some(bytes) = raw {
                states.insert((*c, value.as_str()), self.decode_state(key, &bytes)?);
            }
        }
        let applied: HashSet<&str> = events
            .iter()
            .zip(&raw_ids)
            .filter(|(_, raw)| raw.is_some())
            .map(|(e, _)| e.id.as_str())
            .collect();
        if let Err(refused) = validate_batch(spec, events, wm, |id| applied.contains(id)) {
            conn.run(|c| redis::cmd("UNWATCH").exec(c))?;
            return Err(refused);
        }
        let mut out = Vec::with_capacity(events.len());
        let mut watermark = wm;
        let (mut evicted, mut dropped) = (0u64, 0u64);
        let columns = spec.schema().entities.len();
        for e in events {
            let x = {
                let refs: Vec<Option<&EntityState>> = (0..columns)
                    .map(|c| states.get(&(c, e.keys[c].as_str())))
                    .collect();
                features_from_states(spec, e, &refs)
            };
            out.push(x);
            let w = watermark.map_or(e.ts, |w| w.max(e.ts));
            watermark = Some(w);
            for c in stateful_columns(spec) {
                let st = states.entry((c, e.keys[c].as_str())).or_default();
                let n = apply_event_to_state(spec, c, st, e, w);
                evicted += n.evicted;
                dropped += n.dropped_over_cap;
            }
        }
        let mut tx = redis::pipe();
        tx.atomic();
        for ((c, value), key) in entities.iter().zip(entity_keys) {
            if let Some(st) = states.get(&(*c, value.as_str())) {
                self.set_state(&mut tx, key, st)?;
            }
        }
        for (e, key) in events.iter().zip(id_keys) {
            let record = serde_json::to_vec(&IdRecord {
                ts: e.ts,
                keys: e.keys.clone(),
            })
            .map_err(|err| FraudError::Unavailable(format!("encode id: {err}")))?;
            tx.cmd("SET")
                .arg(key)
                .arg(record)
                .arg("EX")
                .arg(self.id_ttl_s)
                .ignore();
        }
        if let Some(w) = watermark {
            tx.cmd("EVAL")
                .arg(RAISE_WATERMARK)
                .arg(1)
                .arg(self.wm_key())
                .arg(w)
                .ignore();
        }
        let stats = self.stats_key();
        tx.cmd("HINCRBY")
            .arg(&stats)
            .arg("events_applied")
            .arg(events.len())
            .ignore();
        if evicted > 0 {
            tx.cmd("HINCRBY")
                .arg(&stats)
                .arg("evicted")
                .arg(evicted)
                .ignore();
        }
        if dropped > 0 {
            tx.cmd("HINCRBY")
                .arg(&stats)
                .arg("dropped_over_cap")
                .arg(dropped)
                .ignore();
        }
        let committed: Option<Value> = conn.run(|c| tx.query(c))?;
        Ok(committed.map(|_| out))
    }

    /// One attempt at one label. `Ok(None)`: a watched key changed, nothing applied.
    fn try_label(&self, label: &LabelRequest) -> Result<Option<LabelOutcome>> {
        let mut conn = self.pool.get()?;
        let id_key = self.id_key(&label.event_id);
        conn.run(|c| redis::cmd("WATCH").arg(&id_key).exec(c))?;
        let (raw, wm): (Option<Vec<u8>>, Option<i64>) = conn.run(|c| {
            redis::pipe()
                .cmd("GET")
                .arg(&id_key)
                .cmd("GET")
                .arg(self.wm_key())
                .query(c)
        })?;
        let Some(raw) = raw else {
            conn.run(|c| {
                redis::pipe()
                    .cmd("UNWATCH")
                    .ignore()
                    .cmd("HINCRBY")
                    .arg(self.stats_key())
                    .arg("labels_unmatched")
                    .arg(1)
                    .ignore()
                    .exec(c)
            })?;
            return Ok(Some(LabelOutcome::NotFound));
        };
        let record: IdRecord = serde_json::from_slice(&raw).map_err(|e| corrupt(&id_key, e))?;
        if record.keys.len() != self.spec.schema().entities.len() {
            return Err(corrupt(&id_key, "wrong number of entity values"));
        }
        let columns: Vec<usize> = labelled_columns(&self.spec).collect();
        let keys: Vec<String> = columns
            .iter()
            .map(|&c| self.entity_key(c, &record.keys[c]))
            .collect();
        if !keys.is_empty() {
            conn.run(|c| redis::cmd("WATCH").arg(&keys).exec(c))?;
        }
        let raw_states: Vec<Option<Vec<u8>>> = if keys.is_empty() {
            Vec::new()
        } else {
            conn.run(|c| redis::cmd("MGET").arg(&keys).query(c))?
        };
        let known_at = label.known_at.unwrap_or(wm.unwrap_or(0));
        let mut tx = redis::pipe();
        tx.atomic();
        let mut records = 0;
        for (key, raw) in keys.iter().zip(raw_states) {
            let Some(bytes) = raw else { continue };
            let mut st = self.decode_state(key, &bytes)?;
            let n = label_in_state(&mut st, record.ts, &label.event_id, label.fraud, known_at);
            if n > 0 {
                records += n;
                self.set_state(&mut tx, key, &st)?;
            }
        }
        tx.cmd("HINCRBY")
            .arg(self.stats_key())
            .arg("labels_applied")
            .arg(1)
            .ignore();
        let committed: Option<Value> = conn.run(|c| tx.query(c))?;
        Ok(committed.map(|_| LabelOutcome::Applied { records }))
    }
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> FraudError {
    FraudError::Unavailable(format!("Redis key `{key}` does not hold valid state: {e}"))
}

impl OnlineState for RedisState {
    fn spec(&self) -> &CompiledSpec {
        &self.spec
    }

    fn score_and_apply(&self, events: &[Event]) -> std::result::Result<Vec<Vec<f64>>, BatchError> {
        // Shape first: the keys below index `e.keys` by column.
        for (i, e) in events.iter().enumerate() {
            aurum_fraud::check_event(&self.spec, e).map_err(|err| BatchError::at(i, err))?;
        }
        let mut entities: Vec<(usize, String)> = Vec::new();
        let mut seen = HashSet::new();
        for e in events {
            for c in stateful_columns(&self.spec) {
                if seen.insert((c, e.keys[c].as_str())) {
                    entities.push((c, e.keys[c].clone()));
                }
            }
        }
        let entity_keys: Vec<String> = entities
            .iter()
            .map(|(c, v)| self.entity_key(*c, v))
            .collect();
        let id_keys: Vec<String> = events.iter().map(|e| self.id_key(&e.id)).collect();
        let _held = self.stripes.lock(&entity_keys);
        for attempt in 1..=self.options.max_attempts.max(1) {
            if let Some(out) = self.try_batch(events, &entities, &entity_keys, &id_keys)? {
                return Ok(out);
            }
            tracing::debug!(
                attempt,
                events = events.len(),
                "fraud state batch conflicted; retrying"
            );
            backoff(attempt);
        }
        Err(BatchError::whole(FraudError::Contended(format!(
            "the entities of this batch kept changing under {} attempts; nothing was applied",
            self.options.max_attempts
        ))))
    }

    fn add_labels(
        &self,
        labels: &[LabelRequest],
    ) -> std::result::Result<Vec<LabelOutcome>, BatchError> {
        let mut out = Vec::with_capacity(labels.len());
        'labels: for (i, label) in labels.iter().enumerate() {
            for attempt in 1..=self.options.max_attempts.max(1) {
                if let Some(outcome) = self.try_label(label).map_err(|e| BatchError::at(i, e))? {
                    out.push(outcome);
                    continue 'labels;
                }
                backoff(attempt);
            }
            return Err(BatchError::at(
                i,
                FraudError::Contended(format!(
                    "the event's entities kept changing under {} attempts",
                    self.options.max_attempts
                )),
            ));
        }
        Ok(out)
    }

    fn info(&self) -> Result<StateInfo> {
        let mut conn = self.pool.get()?;
        let (stats, wm): (HashMap<String, u64>, Option<i64>) = conn.run(|c| {
            redis::pipe()
                .cmd("HGETALL")
                .arg(self.stats_key())
                .cmd("GET")
                .arg(self.wm_key())
                .query(c)
        })?;
        // Counting walks the model's entity keys (SCAN, then MGET in pages): an operator's
        // call, linear in the number of entities.
        let pattern = format!("{}:e:*", escape_glob(&self.base));
        let mut cursor: u64 = 0;
        let (mut entities, mut events_held, mut bytes) = (0usize, 0usize, 0usize);
        loop {
            let (next, keys): (u64, Vec<String>) = conn.run(|c| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query(c)
            })?;
            if !keys.is_empty() {
                let raw: Vec<Option<Vec<u8>>> =
                    conn.run(|c| redis::cmd("MGET").arg(&keys).query(c))?;
                for (key, raw) in keys.iter().zip(raw) {
                    let Some(b) = raw else { continue };
                    entities += 1;
                    bytes += key.len() + b.len();
                    events_held += self.decode_state(key, &b)?.len();
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let stat = |k: &str| stats.get(k).copied().unwrap_or(0);
        Ok(StateInfo {
            backend: self.location.clone(),
            events_applied: stat("events_applied"),
            labels_applied: stat("labels_applied"),
            labels_unmatched: stat("labels_unmatched"),
            entities,
            events_held,
            bytes_per_entity: if entities == 0 {
                0.0
            } else {
                bytes as f64 / entities as f64
            },
            watermark: wm,
        })
    }
}

/// `pattern` for SCAN MATCH matching `text` literally.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}
