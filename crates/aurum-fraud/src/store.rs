//! Online state: one [`EntityState`] per (entity key, value), behind the [`EntityStore`] trait.
//!
//! Why a trait with closure access instead of `get`/`put` of owned states: the in-process store
//! should not clone a customer's window on every event, and a remote store (Redis, later) can
//! implement the same two calls as GET, deserialise, run the closure, SET. The trait is
//! object-safe and says nothing about where the bytes live.
//!
//! Why shards of `Mutex<HashMap>`: readers of different customers rarely meet on one lock, the
//! critical sections are microseconds (a scan over one entity's window), and the standard library
//! is enough. A reader never holds two shard locks at once, so there is no lock order to get wrong.
//!
//! Why each state sits in an `Arc`: a snapshot must copy the whole state while appliers wait
//! (so that it matches one position of the event log). Sharing the states instead of copying
//! them makes that pause a matter of reference counts; an entity updated while the snapshot
//! still holds its state is copied then, by that update alone (copy on write).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

/// A label attached to an event in state: what it says and when it became known.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Mark {
    #[serde(rename = "f")]
    pub fraud: bool,
    #[serde(rename = "k")]
    pub known_at: i64,
}

/// One past event of an entity, as much as its features need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Rec {
    #[serde(rename = "t")]
    pub ts: i64,
    #[serde(rename = "a")]
    pub amount: f64,
    /// FNV-1a of the event id: finds the record when a label arrives.
    #[serde(rename = "i")]
    pub id: u64,
    /// FNV-1a of the values of the keys in `CompiledSpec::distinct_of` for this entity key.
    #[serde(rename = "o", default, skip_serializing_if = "<[u64]>::is_empty")]
    pub others: Box<[u64]>,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Mark>,
}

/// The state of one entity (one customer, one terminal).
///
/// `events` is sorted by timestamp and holds only what some window can still reach; `seen` maps
/// the hashed values of each first-seen key to the last time they were seen with this entity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityState {
    #[serde(rename = "e", default, skip_serializing_if = "VecDeque::is_empty")]
    pub(crate) events: VecDeque<Rec>,
    #[serde(rename = "last", default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_ts: Option<i64>,
    #[serde(rename = "seen", default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) seen: Vec<HashMap<u64, i64>>,
}

impl EntityState {
    /// Events currently held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.last_ts.is_none()
    }

    /// Estimated heap and inline bytes of this state (not counting the map slot holding it).
    pub fn estimated_bytes(&self) -> usize {
        let recs = self.events.capacity() * std::mem::size_of::<Rec>();
        let others: usize = self.events.iter().map(|r| r.others.len() * 8).sum();
        // hashbrown: one control byte per bucket, buckets ≈ capacity · 8/7.
        let seen: usize = self
            .seen
            .iter()
            .map(|m| m.capacity() * 8 / 7 * (16 + 1))
            .sum();
        std::mem::size_of::<Self>()
            + recs
            + others
            + seen
            + self.seen.capacity() * std::mem::size_of::<HashMap<u64, i64>>()
    }
}

/// Where entity states live. `column` is the index of the entity key in `schema.entities`.
pub trait EntityStore: Send + Sync {
    /// Runs `f` on the entity's state (`None` if the entity was never seen). Must not mutate.
    fn read(&self, column: usize, key: &str, f: &mut dyn FnMut(Option<&EntityState>));
    /// Runs `f` on the entity's state, creating an empty one first if needed.
    fn update(&self, column: usize, key: &str, f: &mut dyn FnMut(&mut EntityState));
    /// Visits every entity (for snapshots and memory estimates).
    fn for_each(&self, f: &mut dyn FnMut(usize, &str, &EntityState));
    /// Runs `f` on every entity (it may trim the state) and removes those for which it returns
    /// `false`.
    fn retain(&self, f: &mut dyn FnMut(usize, &mut EntityState) -> bool);
    /// Replaces an entity's state wholesale (loading a snapshot).
    fn insert(&self, column: usize, key: &str, state: EntityState);
    /// Every entity's state, for a snapshot: `(column, key, state)`. The default copies each
    /// state; a store that shares its states hands out references instead.
    fn share_all(&self) -> Vec<(usize, String, Arc<EntityState>)> {
        let mut out = Vec::new();
        self.for_each(&mut |c, key, st| out.push((c, key.to_string(), Arc::new(st.clone()))));
        out
    }
    /// Number of entities held.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

type Shard = Vec<HashMap<Box<str>, Arc<EntityState>>>;

/// The in-process store: `N` shards, each a mutex over one map per entity key.
pub struct ShardedStore {
    shards: Vec<Mutex<Shard>>,
    columns: usize,
}

impl ShardedStore {
    /// `shards` is rounded up to a power of two (at least 1).
    pub fn new(columns: usize, shards: usize) -> ShardedStore {
        let n = shards.max(1).next_power_of_two();
        ShardedStore {
            shards: (0..n)
                .map(|_| Mutex::new(vec![HashMap::new(); columns]))
                .collect(),
            columns,
        }
    }

    fn shard(&self, column: usize, key: &str) -> MutexGuard<'_, Shard> {
        let h = fnv1a(key.as_bytes()) ^ (column as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let i = (h as usize) & (self.shards.len() - 1);
        lock(&self.shards[i])
    }
}

/// A poisoned shard only means another thread panicked while holding it; the map itself is
/// still consistent because every update writes whole records.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl EntityStore for ShardedStore {
    fn read(&self, column: usize, key: &str, f: &mut dyn FnMut(Option<&EntityState>)) {
        if column >= self.columns {
            return f(None);
        }
        let shard = self.shard(column, key);
        f(shard[column].get(key).map(|st| &**st))
    }

    fn update(&self, column: usize, key: &str, f: &mut dyn FnMut(&mut EntityState)) {
        if column >= self.columns {
            return;
        }
        let mut shard = self.shard(column, key);
        match shard[column].get_mut(key) {
            Some(state) => f(Arc::make_mut(state)),
            None => {
                let mut state = EntityState::default();
                f(&mut state);
                shard[column].insert(key.into(), Arc::new(state));
            }
        }
    }

    fn for_each(&self, f: &mut dyn FnMut(usize, &str, &EntityState)) {
        for shard in &self.shards {
            let shard = lock(shard);
            for (column, map) in shard.iter().enumerate() {
                for (key, state) in map {
                    f(column, key, state);
                }
            }
        }
    }

    fn retain(&self, f: &mut dyn FnMut(usize, &mut EntityState) -> bool) {
        for shard in &self.shards {
            let mut shard = lock(shard);
            for (column, map) in shard.iter_mut().enumerate() {
                map.retain(|_, state| f(column, Arc::make_mut(state)));
            }
        }
    }

    fn insert(&self, column: usize, key: &str, state: EntityState) {
        if column < self.columns {
            self.shard(column, key)[column].insert(key.into(), Arc::new(state));
        }
    }

    fn share_all(&self) -> Vec<(usize, String, Arc<EntityState>)> {
        let mut out = Vec::with_capacity(self.len());
        for shard in &self.shards {
            let shard = lock(shard);
            for (column, map) in shard.iter().enumerate() {
                out.extend(
                    map.iter()
                        .map(|(k, st)| (column, k.to_string(), st.clone())),
                );
            }
        }
        out
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock(s).iter().map(HashMap::len).sum::<usize>())
            .sum()
    }
}

/// 64-bit FNV-1a: stable across platforms and Rust versions, so hashes can be stored.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn sharded_store_reads_what_it_wrote() {
        let store = ShardedStore::new(2, 6);
        assert_eq!(store.shards.len(), 8);
        store.update(0, "c1", &mut |s| s.last_ts = Some(5));
        store.update(1, "c1", &mut |s| s.last_ts = Some(9));
        let mut got = Vec::new();
        store.read(0, "c1", &mut |s| got.push(s.and_then(|s| s.last_ts)));
        store.read(1, "c1", &mut |s| got.push(s.and_then(|s| s.last_ts)));
        store.read(0, "c2", &mut |s| got.push(s.and_then(|s| s.last_ts)));
        assert_eq!(got, [Some(5), Some(9), None]);
        assert_eq!(store.len(), 2);
        store.retain(&mut |column, _| column == 1);
        assert_eq!(store.len(), 1);
    }
}
