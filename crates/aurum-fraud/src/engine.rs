//! The feature engine: per-entity state and the one function that turns it into features.
//!
//! Why exact windows (a sorted `VecDeque` of past events per entity) instead of bucketed or
//! decayed counters: the features must be identical in the training replay and live, to the bit,
//! and a model trained on exact windows must be served exact windows. Card streams are sparse
//! per entity (a customer makes a few payments a day), so a scan over one entity's 30-day window
//! costs far less than the model that reads the result.
//!
//! Memory bound: an event stays in an entity's window only while some feature can still reach
//! it (the longest window, plus the delay of label features, plus the out-of-order tolerance),
//! and never more than `constraints.max_events_per_entity` events per entity; past that the
//! oldest are dropped and counted in [`EngineStats::dropped_over_cap`] (the windows of that
//! entity are then no longer exact, which the stat makes visible). First-seen sets are bounded
//! the same way. Entities idle for longer than their horizon keep their window until touched or
//! until [`FeatureEngine::sweep`] runs.
//!
//! Concurrency: every method takes `&self`. [`FeatureEngine::features`] only takes shard locks
//! of the entities it reads. Writers (`apply`, `score_and_apply`, `add_label`) serialise on one
//! small mutex so that "check the timestamp, compute, apply" is one step.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::{FraudError, Result};
use crate::event::{Event, check_event};
use crate::index::{IdMap, TimeOrder};
use crate::spec::{Compiled, CompiledSpec, FeatureSpec, HistoryField, Stat};
use crate::store::{EntityState, EntityStore, Mark, Rec, ShardedStore, fnv1a};

/// Format of [`EngineSnapshot`]; a newer one is refused.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// Counters an operator watches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    pub events_applied: u64,
    pub labels_applied: u64,
    /// Labels whose event is unknown or already past every window.
    pub labels_unmatched: u64,
    /// Events or first-seen values dropped because an entity exceeded `max_events_per_entity`.
    pub dropped_over_cap: u64,
    /// Events removed because no window can reach them any more (normal operation).
    pub evicted: u64,
}

/// Which event a label is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelRef {
    /// By event id.
    EventId(String),
    /// By entity values (in `schema.entities` order) and event time; every event that matches
    /// both is labelled.
    Entities { ts: i64, keys: Vec<String> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelOutcome {
    /// The label is attached to this many event records (one per entity key that keeps events).
    Applied { records: usize },
    /// No event in state matches: unknown, or too old to reach any window.
    NotFound,
}

/// An event's entity values, in `schema.entities` order. Shared (`Arc`) so that copying the
/// index for a snapshot, which live traffic waits for, moves reference counts, not strings.
type Keys = Arc<[Box<str>]>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct IdEntry {
    ts: i64,
    keys: Keys,
}

/// Engine-wide state: the watermark and an index from event id to (time, keys) for labels.
/// An id is one allocation shared by `ids` and `order`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Meta {
    watermark: Option<i64>,
    ids: IdMap<IdEntry>,
    /// Ids in timestamp order, for eviction.
    order: TimeOrder,
    stats: EngineStats,
}

/// Estimated memory of the online state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryEstimate {
    pub entities: usize,
    pub events_held: usize,
    /// Entity keys, map slots and states.
    pub entity_bytes: usize,
    /// The event-id index used by labels.
    pub index_bytes: usize,
}

impl MemoryEstimate {
    pub fn bytes_per_entity(&self) -> f64 {
        if self.entities == 0 {
            0.0
        } else {
            (self.entity_bytes + self.index_bytes) as f64 / self.entities as f64
        }
    }
}

/// Everything an engine holds, as stored in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineSnapshot {
    pub format_version: u32,
    pub spec_fingerprint: String,
    pub(crate) meta: Meta,
    /// Shared with the live store until an update copies its own (see `store`).
    pub(crate) entities: Vec<(usize, String, Arc<EntityState>)>,
}

pub struct FeatureEngine {
    spec: Arc<CompiledSpec>,
    store: Box<dyn EntityStore>,
    meta: Mutex<Meta>,
}

impl std::fmt::Debug for FeatureEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureEngine")
            .field("features", &self.spec.names)
            .finish_non_exhaustive()
    }
}

/// Summary statistics of one window.
#[derive(Clone, Copy, Debug)]
struct Agg {
    n: usize,
    sum: f64,
    max: f64,
    mean: f64,
    std: f64,
}

impl Agg {
    /// `with_std`: the second pass for the standard deviation is skipped when no feature of the
    /// group reads it.
    fn of(recs: impl Iterator<Item = f64> + Clone, with_std: bool) -> Agg {
        let (mut n, mut sum, mut max) = (0usize, 0.0, f64::NEG_INFINITY);
        for a in recs.clone() {
            n += 1;
            sum += a;
            max = max.max(a);
        }
        let mean = if n > 0 { sum / n as f64 } else { 0.0 };
        let std = if n > 1 && with_std {
            (recs.map(|a| (a - mean) * (a - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Agg {
            n,
            sum,
            max: if n > 0 { max } else { 0.0 },
            mean,
            std,
        }
    }

    fn stat(&self, stat: Stat, amount: f64) -> f64 {
        match stat {
            Stat::Count => self.n as f64,
            Stat::Sum => self.sum,
            Stat::Mean => self.mean,
            Stat::Max => self.max,
            Stat::Std => self.std,
            Stat::ToMean => {
                if self.n > 0 && self.mean != 0.0 {
                    amount / self.mean
                } else {
                    1.0
                }
            }
            Stat::Zscore => {
                if self.n > 1 && self.std > 0.0 {
                    (amount - self.mean) / self.std
                } else {
                    0.0
                }
            }
        }
    }
}

/// The events of `st` with timestamps in `(lo, hi]`.
fn window(st: &EntityState, lo: i64, hi: i64) -> impl Iterator<Item = &Rec> + Clone {
    let a = st.events.partition_point(|r| r.ts <= lo);
    let b = st.events.partition_point(|r| r.ts <= hi).max(a);
    st.events.range(a..b)
}

impl FeatureEngine {
    /// An engine over the in-process [`ShardedStore`] (16 shards).
    pub fn new(spec: &FeatureSpec) -> Result<FeatureEngine> {
        let compiled = spec.compile()?;
        let columns = compiled.schema().entities.len();
        Ok(FeatureEngine::with_store(
            compiled,
            Box::new(ShardedStore::new(columns, 16)),
        ))
    }

    /// An engine over any store. The store should be empty or hold state written under the
    /// same spec.
    pub fn with_store(spec: CompiledSpec, store: Box<dyn EntityStore>) -> FeatureEngine {
        FeatureEngine {
            spec: Arc::new(spec),
            store,
            meta: Mutex::new(Meta::default()),
        }
    }

    pub fn spec(&self) -> &CompiledSpec {
        &self.spec
    }

    pub fn feature_names(&self) -> &[String] {
        &self.spec.names
    }

    fn meta(&self) -> MutexGuard<'_, Meta> {
        // Every writer updates `Meta` only after all checks passed, so a poisoned lock still
        // guards consistent data.
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> EngineStats {
        self.meta().stats.clone()
    }

    /// The latest applied event time.
    pub fn watermark(&self) -> Option<i64> {
        self.meta().watermark
    }

    /// Whether an event id is in the label index (applied, and not yet past every window).
    pub fn contains_event(&self, id: &str) -> bool {
        self.meta().ids.contains_key(id)
    }

    fn check(&self, meta: &Meta, e: &Event) -> Result<()> {
        check_event(&self.spec, e)?;
        let field = || self.spec.schema().timestamp.clone();
        if let Some(w) = meta.watermark
            && e.ts < w - self.spec.tolerance
        {
            return Err(FraudError::OutOfOrder {
                field: field(),
                timestamp: e.ts,
                watermark: w,
                behind_s: w - e.ts,
                tolerance_s: self.spec.tolerance,
            });
        }
        if meta.ids.contains_key(e.id.as_str()) {
            return Err(FraudError::DuplicateEvent {
                field: self.spec.schema().id.clone(),
                id: e.id.clone(),
            });
        }
        Ok(())
    }

    /// The event's features from the state strictly before it. Nothing is changed.
    pub fn features(&self, e: &Event) -> Result<Vec<f64>> {
        {
            let meta = self.meta();
            self.check(&meta, e)?;
        }
        Ok(self.compute(e))
    }

    /// Adds the event to the state (after the same checks as [`FeatureEngine::features`]).
    pub fn apply(&self, e: &Event) -> Result<()> {
        let mut meta = self.meta();
        self.check(&meta, e)?;
        self.apply_checked(&mut meta, e);
        Ok(())
    }

    /// Features of the event, then the event applied: the live path. On any error the state
    /// is unchanged.
    pub fn score_and_apply(&self, e: &Event) -> Result<Vec<f64>> {
        let mut meta = self.meta();
        self.check(&meta, e)?;
        let out = self.compute(e);
        self.apply_checked(&mut meta, e);
        Ok(out)
    }

    fn compute(&self, e: &Event) -> Vec<f64> {
        let spec = &*self.spec;
        let amount = e.amount.unwrap_or(0.0);
        let mut out = initial_features(spec, amount);
        for (c, feats) in spec.by_entity.iter().enumerate() {
            if feats.is_empty() {
                continue;
            }
            self.store.read(c, &e.keys[c], &mut |st| {
                fill(spec, c, st.unwrap_or(&EMPTY), e, amount, &mut out)
            });
        }
        out
    }

    fn apply_checked(&self, meta: &mut Meta, e: &Event) {
        let spec = &*self.spec;
        let wm = meta.watermark.map_or(e.ts, |w| w.max(e.ts));
        meta.watermark = Some(wm);
        meta.stats.events_applied += 1;
        let keys: Keys = e.keys.iter().map(|k| k.as_str().into()).collect();
        let id: Arc<str> = e.id.as_str().into();
        meta.ids.insert(id.clone(), IdEntry { ts: e.ts, keys });
        meta.order.insert(e.ts, id);
        let index_cutoff = wm - spec.tolerance - spec.max_horizon_s();
        while meta.order.front().is_some_and(|(t, _)| *t <= index_cutoff) {
            if let Some((_, id)) = meta.order.pop_front() {
                meta.ids.remove(&id);
            }
        }
        let stats = &mut meta.stats;
        for c in stateful_columns(spec) {
            self.store.update(c, &e.keys[c], &mut |st| {
                let n = apply_event_to_state(spec, c, st, e, wm);
                stats.evicted += n.evicted;
                stats.dropped_over_cap += n.dropped_over_cap;
            });
        }
    }

    /// Attaches a label to the event(s) it refers to. `known_at` is when the label became known;
    /// features of an event at time `t` use it only if `known_at <= t`.
    pub fn add_label(&self, target: &LabelRef, fraud: bool, known_at: i64) -> Result<LabelOutcome> {
        let mut meta = self.meta();
        let matches: Vec<(i64, Keys, u64)> = match target {
            LabelRef::EventId(id) => match meta.ids.get(id.as_str()) {
                Some(entry) => vec![(entry.ts, entry.keys.clone(), fnv1a(id.as_bytes()))],
                None => Vec::new(),
            },
            LabelRef::Entities { ts, keys } => {
                if keys.len() != self.spec.schema().entities.len() {
                    return Err(FraudError::SpecMismatch(format!(
                        "label has {} entity keys, the spec has {}",
                        keys.len(),
                        self.spec.schema().entities.len()
                    )));
                }
                meta.order
                    .at(*ts)
                    .filter_map(|(_, id)| meta.ids.get(id).map(|entry| (id, entry)))
                    .filter(|(_, entry)| entry.keys.iter().zip(keys).all(|(a, b)| **a == **b))
                    .map(|(id, entry)| (entry.ts, entry.keys.clone(), fnv1a(id.as_bytes())))
                    .collect()
            }
        };
        if matches.is_empty() {
            meta.stats.labels_unmatched += 1;
            return Ok(LabelOutcome::NotFound);
        }
        let mark = Mark { fraud, known_at };
        let mut records = 0;
        for (ts, keys, id_hash) in &matches {
            for c in 0..keys.len() {
                if !self.spec.keeps_events[c] {
                    continue;
                }
                self.store.update(c, &keys[c], &mut |st| {
                    records += mark_in_state(st, *ts, *id_hash, mark);
                });
            }
        }
        meta.stats.labels_applied += 1;
        Ok(LabelOutcome::Applied { records })
    }

    /// Evicts, in every entity, the events no window can reach any more. Returns how many.
    pub fn sweep(&self) -> u64 {
        let mut meta = self.meta();
        let Some(wm) = meta.watermark else { return 0 };
        let spec = &*self.spec;
        let mut evicted = 0;
        self.store.retain(&mut |c, st| {
            evicted += evict(st, wm - spec.tolerance - spec.horizon[c]);
            st.events.shrink_to_fit();
            true
        });
        meta.stats.evicted += evicted;
        evicted
    }

    /// An estimate of the state's memory from the sizes of what it holds.
    pub fn memory_estimate(&self) -> MemoryEstimate {
        let meta = self.meta();
        let (mut entities, mut events_held, mut entity_bytes) = (0, 0, 0);
        self.store.for_each(&mut |_, key, st| {
            entities += 1;
            events_held += st.len();
            // Map slot: the boxed key, the state inline, a control byte.
            entity_bytes += key.len() + std::mem::size_of::<Box<str>>() + 1 + st.estimated_bytes();
        });
        // Map slot (the shared id, the entry inline, a control byte), the id's allocation (two
        // reference counts and the text) and the keys' (two counts, a slice of boxed keys).
        let per_id = std::mem::size_of::<Arc<str>>() + std::mem::size_of::<IdEntry>() + 1 + 16 + 16;
        let index_bytes = meta
            .ids
            .iter()
            .map(|(id, e)| id.len() + per_id + e.keys.iter().map(|k| k.len() + 16).sum::<usize>())
            .sum::<usize>()
            + meta.order.capacity() * std::mem::size_of::<(i64, Arc<str>)>();
        MemoryEstimate {
            entities,
            events_held,
            entity_bytes,
            index_bytes,
        }
    }

    /// The whole state, for a snapshot.
    pub fn snapshot(&self) -> EngineSnapshot {
        let meta = self.meta();
        let mut entities = self.store.share_all();
        entities.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        EngineSnapshot {
            format_version: SNAPSHOT_FORMAT_VERSION,
            spec_fingerprint: self.spec.fingerprint.clone(),
            meta: meta.clone(),
            entities,
        }
    }

    /// An engine holding a snapshot's state, refused if it was written under another spec.
    pub fn from_snapshot(
        spec: CompiledSpec,
        store: Box<dyn EntityStore>,
        snap: EngineSnapshot,
    ) -> Result<FeatureEngine> {
        if snap.format_version > SNAPSHOT_FORMAT_VERSION {
            return Err(FraudError::SpecMismatch(format!(
                "snapshot format {} is newer than this build reads ({SNAPSHOT_FORMAT_VERSION})",
                snap.format_version
            )));
        }
        if snap.spec_fingerprint != spec.fingerprint {
            return Err(FraudError::SpecMismatch(
                "the snapshot was written under a different feature spec; rebuild the state from history".into(),
            ));
        }
        let columns = spec.schema().entities.len();
        for (c, key, st) in snap.entities {
            if c >= columns {
                return Err(FraudError::SpecMismatch(format!(
                    "snapshot entity `{key}` has key index {c}"
                )));
            }
            store.insert(c, &key, Arc::unwrap_or_clone(st));
        }
        Ok(FeatureEngine {
            spec: Arc::new(spec),
            store,
            meta: Mutex::new(snap.meta),
        })
    }
}

/// What adding one event to one entity's state removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    /// Events no window can reach any more.
    pub evicted: u64,
    /// Events or first-seen values dropped over `max_events_per_entity`.
    pub dropped_over_cap: u64,
}

/// The entity key columns whose state an event reads and updates (those some feature is
/// computed over), in `schema.entities` order.
pub fn stateful_columns(spec: &CompiledSpec) -> impl Iterator<Item = usize> + '_ {
    (0..spec.by_entity.len()).filter(|&c| !spec.by_entity[c].is_empty())
}

/// The entity key columns whose state keeps event records, and so can take labels.
pub fn labelled_columns(spec: &CompiledSpec) -> impl Iterator<Item = usize> + '_ {
    (0..spec.keeps_events.len()).filter(|&c| spec.keeps_events[c])
}

/// The event's features from the states of its entities (`states[c]` is the state of
/// `e.keys[c]`, `None` if never seen; columns outside [`stateful_columns`] are not read).
///
/// This is the function [`FeatureEngine`] computes with, for stores that load states
/// themselves (a shared store reads them in one round trip). The event must have passed
/// [`crate::check_event`].
pub fn features_from_states(
    spec: &CompiledSpec,
    e: &Event,
    states: &[Option<&EntityState>],
) -> Vec<f64> {
    let amount = e.amount.unwrap_or(0.0);
    let mut out = initial_features(spec, amount);
    for c in stateful_columns(spec) {
        let st = states.get(c).copied().flatten().unwrap_or(&EMPTY);
        fill(spec, c, st, e, amount, &mut out);
    }
    out
}

/// Adds event `e` to the state `st` of its entity in column `c`, then evicts what no window can
/// reach from `watermark` (the latest event time including `e`). The engine's own update.
pub fn apply_event_to_state(
    spec: &CompiledSpec,
    c: usize,
    st: &mut EntityState,
    e: &Event,
    watermark: i64,
) -> ApplyCounts {
    let mut counts = ApplyCounts::default();
    let amount = e.amount.unwrap_or(0.0);
    let cutoff = watermark - spec.tolerance - spec.horizon[c];
    if spec.keeps_events[c] {
        let others = spec.distinct_of[c]
            .iter()
            .map(|&o| fnv1a(e.keys[o].as_bytes()))
            .collect();
        let rec = Rec {
            ts: e.ts,
            amount,
            id: fnv1a(e.id.as_bytes()),
            others,
            label: None,
        };
        let at = st.events.partition_point(|r| r.ts <= e.ts);
        st.events.insert(at, rec);
        counts.evicted += evict(st, cutoff);
        while st.events.len() > spec.max_events {
            st.events.pop_front();
            counts.dropped_over_cap += 1;
        }
    }
    st.last_ts = Some(st.last_ts.map_or(e.ts, |l| l.max(e.ts)));
    let slots = &spec.first_seen_of[c];
    if st.seen.len() < slots.len() {
        st.seen.resize_with(slots.len(), HashMap::new);
    }
    for (slot, &o) in slots.iter().enumerate() {
        let seen = &mut st.seen[slot];
        let first = seen.entry(fnv1a(e.keys[o].as_bytes())).or_insert(e.ts);
        *first = (*first).min(e.ts);
        if seen.len() > spec.max_events
            && let Some((&oldest, _)) = seen.iter().min_by_key(|(h, t)| (**t, **h))
        {
            seen.remove(&oldest);
            counts.dropped_over_cap += 1;
        }
    }
    counts
}

/// Attaches a label to the records of event `event_id` at time `ts` in one entity's state;
/// returns how many records took it (0 when the event is no longer held).
pub fn label_in_state(
    st: &mut EntityState,
    ts: i64,
    event_id: &str,
    fraud: bool,
    known_at: i64,
) -> usize {
    mark_in_state(st, ts, fnv1a(event_id.as_bytes()), Mark { fraud, known_at })
}

fn mark_in_state(st: &mut EntityState, ts: i64, id_hash: u64, mark: Mark) -> usize {
    let a = st.events.partition_point(|r| r.ts < ts);
    let mut records = 0;
    for r in st.events.range_mut(a..).take_while(|r| r.ts == ts) {
        if r.id == id_hash {
            r.label = Some(mark);
            records += 1;
        }
    }
    records
}

/// Features that need no state (the amount itself); the rest start at zero.
fn initial_features(spec: &CompiledSpec, amount: f64) -> Vec<f64> {
    let mut out = vec![0.0; spec.features.len()];
    for (i, f) in spec.features.iter().enumerate() {
        if let Compiled::Amount = f {
            out[i] = amount;
        }
    }
    out
}

static EMPTY: EntityState = EntityState {
    events: VecDeque::new(),
    last_ts: None,
    seen: Vec::new(),
};

/// Removes events at or before `cutoff` from the front of the window.
fn evict(st: &mut EntityState, cutoff: i64) -> u64 {
    let mut n = 0;
    while st.events.front().is_some_and(|r| r.ts <= cutoff) {
        st.events.pop_front();
        n += 1;
    }
    n
}

/// Writes the features of entity key `c` into `out`.
fn fill(spec: &CompiledSpec, c: usize, st: &EntityState, e: &Event, amount: f64, out: &mut [f64]) {
    let t = e.ts;
    let mut aggs: Vec<(usize, Agg)> = Vec::new();
    // Per history window: the range of `st.events` inside it (found once, read by 3 × length
    // outputs).
    let mut spans: Vec<(i64, std::ops::Range<usize>)> = Vec::new();
    for &fi in &spec.by_entity[c] {
        out[fi] = match &spec.features[fi] {
            Compiled::Amount => amount,
            Compiled::Window { group, stat } => {
                let agg = match aggs.iter().find(|(g, _)| g == group) {
                    Some((_, a)) => *a,
                    None => {
                        let (_, w, d) = spec.groups[*group];
                        let a = Agg::of(
                            window(st, t - d - w, t - d).map(|r| r.amount),
                            spec.group_std[*group],
                        );
                        aggs.push((*group, a));
                        a
                    }
                };
                agg.stat(*stat, amount)
            }
            Compiled::Distinct {
                window: w, slot, ..
            } => window(st, t - w, t)
                .map(|r| r.others.get(*slot).copied().unwrap_or(0))
                .collect::<HashSet<u64>>()
                .len() as f64,
            Compiled::SinceLast => match st.last_ts {
                Some(last) => (t - last).max(0) as f64,
                None => -1.0,
            },
            Compiled::FirstSeen { slot, .. } => {
                let of = spec.first_seen_of[c][*slot];
                let h = fnv1a(e.keys[of].as_bytes());
                let seen_before = st
                    .seen
                    .get(*slot)
                    .and_then(|m| m.get(&h))
                    .is_some_and(|first| *first <= t);
                if seen_before { 0.0 } else { 1.0 }
            }
            Compiled::Fraud {
                window: w,
                delay,
                rate,
                ..
            } => {
                let end = t - delay;
                let (mut n, mut frauds) = (0usize, 0usize);
                for r in window(st, end - w, end) {
                    n += 1;
                    if r.label.is_some_and(|m| m.fraud && m.known_at <= t) {
                        frauds += 1;
                    }
                }
                match (rate, n) {
                    (false, _) => frauds as f64,
                    (true, 0) => 0.0,
                    (true, n) => frauds as f64 / n as f64,
                }
            }
            Compiled::History {
                window: w,
                back,
                field,
            } => {
                let span = match spans.iter().find(|(sw, _)| sw == w) {
                    Some((_, span)) => span.clone(),
                    None => {
                        let a = st.events.partition_point(|r| r.ts <= t - w);
                        let b = st.events.partition_point(|r| r.ts <= t).max(a);
                        spans.push((*w, a..b));
                        a..b
                    }
                };
                match (span.len() >= *back).then(|| &st.events[span.end - back]) {
                    Some(r) => match field {
                        HistoryField::Amount => r.amount,
                        HistoryField::SecondsAgo => (t - r.ts) as f64,
                        HistoryField::Fraud => {
                            if r.label.is_some_and(|m| m.fraud && m.known_at <= t) {
                                1.0
                            } else {
                                0.0
                            }
                        }
                    },
                    None => match field {
                        HistoryField::SecondsAgo => -1.0,
                        HistoryField::Amount | HistoryField::Fraud => 0.0,
                    },
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{SCHEMA, ev};

    const DAY: i64 = 86_400;

    fn engine(extra_constraints: &str) -> FeatureEngine {
        let text = format!(
            r#"{SCHEMA}
[constraints]
amount_min = 0.0
{extra_constraints}
[[features]]
kind = "count"
entity = "customer_id"
window = "1d"
[[features]]
kind = "mean"
entity = "customer_id"
window = "1d"
[[features]]
kind = "std"
entity = "customer_id"
window = "1d"
[[features]]
kind = "max"
entity = "customer_id"
window = "1d"
[[features]]
kind = "distinct"
entity = "customer_id"
of = "terminal_id"
window = "1d"
[[features]]
kind = "time_since_last"
entity = "customer_id"
[[features]]
kind = "amount_zscore"
entity = "customer_id"
window = "1d"
[[features]]
kind = "first_seen"
entity = "customer_id"
of = "terminal_id"
[[features]]
kind = "fraud_count"
entity = "terminal_id"
window = "1d"
delay = "1d"
"#
        );
        FeatureEngine::new(&FeatureSpec::from_toml_str(&text).unwrap()).unwrap()
    }

    #[test]
    fn windows_are_exact_and_exclude_the_event() {
        let eng = engine("");
        assert_eq!(
            eng.score_and_apply(&ev("1", 0, "c", "t1", 10.0)).unwrap(),
            [0., 0., 0., 0., 0., -1., 0., 1., 0.]
        );
        eng.apply(&ev("2", 100, "c", "t2", 20.0)).unwrap();
        eng.apply(&ev("3", 200, "c", "t1", 30.0)).unwrap();
        let f = eng.features(&ev("4", 300, "c", "t3", 40.0)).unwrap();
        let std = 10.0; // sample std of 10, 20, 30
        assert_eq!(f, [3., 20., std, 30., 2., 100., 2.0, 1., 0.]);
        // The first event leaves the 1-day window (t − w, t] exactly at t = w.
        let f = eng.features(&ev("5", DAY, "c", "t1", 40.0)).unwrap();
        assert_eq!(f[0], 2.0);
        assert_eq!(f[7], 0.0, "t1 was seen");
    }

    #[test]
    fn out_of_order_and_duplicates_leave_state_unchanged() {
        let eng = engine("out_of_order_tolerance = \"1m\"");
        eng.apply(&ev("1", 1000, "c", "t", 1.0)).unwrap();
        eng.apply(&ev("2", 950, "c", "t", 1.0)).unwrap();
        let before = eng.snapshot();
        let err = eng
            .score_and_apply(&ev("3", 900, "c", "t", 1.0))
            .unwrap_err();
        assert_eq!(err.code(), "fraud_out_of_order");
        assert!(err.to_string().starts_with("event field `ts`"), "{err}");
        let dup = eng
            .score_and_apply(&ev("2", 1000, "c", "t", 1.0))
            .unwrap_err();
        assert_eq!(dup.code(), "fraud_duplicate_event");
        let neg = eng
            .score_and_apply(&ev("4", 1000, "c", "t", -5.0))
            .unwrap_err();
        assert_eq!(
            neg.to_string(),
            "event field `amount`: -5 is below constraints.amount_min (0)"
        );
        let mut short = ev("5", 1000, "c", "t", 1.0);
        short.keys.pop();
        assert_eq!(
            eng.score_and_apply(&short).unwrap_err().code(),
            "fraud_spec_mismatch"
        );
        assert_eq!(eng.snapshot(), before);
        // Within tolerance a late event sees only what came before it in time: 950, not 1000.
        assert_eq!(eng.features(&ev("6", 990, "c", "t", 1.0)).unwrap()[0], 1.0);
    }

    /// The bounds on new events (`check_bounds`: timestamps within 0001..9999, amounts within
    /// ±1e15) are checked where events enter, not by the engine: a log written before they
    /// existed must still replay. Sums over amounts at the bound stay finite.
    #[test]
    fn the_engine_applies_what_earlier_logs_hold_and_sums_at_the_bound_stay_finite() {
        let eng = engine("");
        let max = crate::event::MAX_ABS_AMOUNT;
        eng.apply(&ev("1", 1000, "c", "t", 2.0 * max)).unwrap();
        eng.apply(&ev("2", 1001, "c", "t", max)).unwrap();
        let f = eng.features(&ev("3", 1002, "c", "t", max)).unwrap();
        assert!(f.iter().all(|v| v.is_finite()), "{f:?}");
        let bad =
            crate::event::check_bounds(eng.spec(), &ev("4", 1002, "c", "t", 1e308)).unwrap_err();
        assert!(
            bad.to_string()
                .starts_with("event field `amount`: 100000000000000000000"),
            "{bad}"
        );
        let far =
            crate::event::check_bounds(eng.spec(), &ev("5", i64::MAX, "c", "t", 1.0)).unwrap_err();
        assert!(
            far.to_string()
                .starts_with("event field `ts`: 9223372036854775807 is outside 0001-01-01"),
            "{far}"
        );
        crate::event::check_bounds(
            eng.spec(),
            &ev("6", crate::event::MAX_TIMESTAMP, "c", "t", max),
        )
        .unwrap();
    }

    #[test]
    fn labels_count_only_when_known_and_delayed() {
        let eng = engine("");
        eng.apply(&ev("a", 0, "c1", "T", 1.0)).unwrap();
        eng.apply(&ev("b", 10, "c2", "T", 1.0)).unwrap();
        assert_eq!(
            eng.add_label(&LabelRef::EventId("a".into()), true, DAY + 5)
                .unwrap(),
            LabelOutcome::Applied { records: 2 }
        );
        let by_keys = LabelRef::Entities {
            ts: 10,
            keys: vec!["c2".into(), "T".into()],
        };
        assert_eq!(
            eng.add_label(&by_keys, true, 2 * DAY).unwrap(),
            LabelOutcome::Applied { records: 2 }
        );
        assert_eq!(
            eng.add_label(&LabelRef::EventId("zz".into()), true, 0)
                .unwrap(),
            LabelOutcome::NotFound
        );
        let fraud_count = |t: i64| eng.features(&ev("x", t, "c3", "T", 1.0)).unwrap()[8];
        // The delayed window of t is (t − 2d, t − 1d].
        assert_eq!(
            fraud_count(DAY + 4),
            0.0,
            "a is in the window but its label is not known yet"
        );
        assert_eq!(fraud_count(DAY + 5), 1.0, "a's label is known at DAY + 5");
        assert_eq!(
            fraud_count(2 * DAY - 1),
            1.0,
            "b is in the window too, but its label is known only at 2 DAY"
        );
        assert_eq!(
            fraud_count(2 * DAY),
            1.0,
            "a left the window (0, DAY]; b's label is now known"
        );
        assert_eq!(
            fraud_count(DAY),
            0.0,
            "(−DAY, 0] holds a, whose label is not known yet"
        );
        assert_eq!(eng.stats().labels_unmatched, 1);
    }

    #[test]
    fn history_reads_the_previous_events_most_recent_first() {
        let spec = FeatureSpec::from_toml_str(
            r#"
[schema]
id = "id"
timestamp = "ts"
amount = "amount"
entities = ["customer_id", "terminal_id"]
[[features]]
kind = "history"
entity = "customer_id"
window = "1d"
length = 2
[[features]]
kind = "amount"
"#,
        )
        .unwrap();
        let eng = FeatureEngine::new(&spec).unwrap();
        let names = eng.feature_names();
        assert_eq!(names[0], "customer_id_prev1_amount_1d");
        assert_eq!(names[4], "customer_id_prev2_seconds_ago_1d");
        assert_eq!(names.len(), 7);
        let layout = eng.spec().histories();
        assert_eq!(layout.len(), 1);
        assert_eq!(layout[0].entity, "customer_id");
        assert_eq!(layout[0].steps, [[0, 1, 2], [3, 4, 5]]);
        // No history: amount 0, seconds −1, fraud 0 for every step.
        assert_eq!(
            eng.score_and_apply(&ev("a", 0, "c", "t", 10.0)).unwrap(),
            [0., -1., 0., 0., -1., 0., 10.]
        );
        eng.apply(&ev("b", 100, "c", "t", 20.0)).unwrap();
        eng.apply(&ev("o", 150, "other", "t", 99.0)).unwrap();
        assert_eq!(
            eng.features(&ev("c", 160, "c", "t", 30.0)).unwrap(),
            [20., 60., 0., 10., 160., 0., 30.]
        );
        // A label counts from the moment it is known, and the window bounds the history.
        eng.add_label(&LabelRef::EventId("a".into()), true, 500)
            .unwrap();
        assert_eq!(eng.features(&ev("d", 499, "c", "t", 1.0)).unwrap()[5], 0.0);
        assert_eq!(eng.features(&ev("d", 500, "c", "t", 1.0)).unwrap()[5], 1.0);
        let f = eng.features(&ev("d", DAY, "c", "t", 1.0)).unwrap();
        assert_eq!(f[..6], [20., (DAY - 100) as f64, 0., 0., -1., 0.]);
    }

    #[test]
    fn a_snapshot_keeps_its_state_while_the_live_state_moves_on() {
        let eng = engine("");
        eng.apply(&ev("1", 1000, "c", "t", 1.0)).unwrap();
        eng.apply(&ev("2", 2000, "c", "u", 2.0)).unwrap();
        let snap = eng.snapshot();
        let before = serde_json::to_string(&snap).unwrap();
        // Updates to entities the snapshot shares, a label, a new entity, a sweep.
        eng.apply(&ev("3", 3000, "c", "t", 3.0)).unwrap();
        eng.add_label(&LabelRef::EventId("1".into()), true, 3500)
            .unwrap();
        eng.apply(&ev("4", 4000, "d", "t", 4.0)).unwrap();
        eng.sweep();
        assert_eq!(serde_json::to_string(&snap).unwrap(), before);
        assert_ne!(serde_json::to_string(&eng.snapshot()).unwrap(), before);
        // And the snapshot still restores the state as it was when taken.
        let spec = eng.spec().clone();
        let back =
            FeatureEngine::from_snapshot(spec, Box::new(ShardedStore::new(2, 4)), snap).unwrap();
        assert_eq!(serde_json::to_string(&back.snapshot()).unwrap(), before);
        let fresh = engine("");
        fresh.apply(&ev("1", 1000, "c", "t", 1.0)).unwrap();
        fresh.apply(&ev("2", 2000, "c", "u", 2.0)).unwrap();
        let next = ev("5", 5000, "c", "t", 5.0);
        assert_eq!(
            back.features(&next).unwrap(),
            fresh.features(&next).unwrap()
        );
    }

    #[test]
    fn memory_is_bounded_by_horizon_and_cap() {
        let eng = engine("max_events_per_entity = 5");
        for i in 0..20 {
            eng.apply(&ev(&i.to_string(), i * 60, "c", &format!("t{i}"), 1.0))
                .unwrap();
        }
        let stats = eng.stats();
        assert!(stats.dropped_over_cap >= 15, "{stats:?}");
        eng.store.read(0, "c", &mut |st| {
            assert_eq!(st.map(EntityState::len), Some(5))
        });
        eng.apply(&ev("late", 10 * DAY, "c", "t0", 1.0)).unwrap();
        eng.store.read(0, "c", &mut |st| {
            assert_eq!(st.map(EntityState::len), Some(1))
        });
        assert!(eng.stats().evicted >= 5);
        let mem = eng.memory_estimate();
        assert!(mem.entities > 0 && mem.bytes_per_entity() > 0.0);
    }
}
