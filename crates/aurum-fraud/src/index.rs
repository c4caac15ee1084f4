//! The engine's event-id index, in pieces shared copy-on-write with snapshots.
//!
//! A snapshot copies the index while every applier waits (see `durable`). Held as one map and
//! one deque, that copy touched every entry: on the handbook state, 81 000 ids, about 4 ms in a
//! loaded server. Here the index is split into pieces behind `Arc`s: a copy clones the pieces'
//! pointers, and the first change to a piece after a snapshot copies that piece alone
//! (`Arc::make_mut`), so the cost is spread over the next events, one piece each at most.
//!
//! Both types serialise exactly as the single map and the single sequence they replace, so
//! snapshots keep their format.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde::de::Deserializer;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::store::fnv1a;

/// Pieces of an [`IdMap`]; an id's piece is chosen by its FNV-1a hash.
const ID_SHARDS: usize = 64;
/// Entries per block of a [`TimeOrder`] when it grows at its end; a block that grows past twice
/// this in the middle is split.
const ORDER_BLOCK: usize = 2048;

/// A map from id to `V` in [`ID_SHARDS`] pieces.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct IdMap<V> {
    shards: Vec<Arc<HashMap<Arc<str>, V>>>,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap {
            shards: (0..ID_SHARDS).map(|_| Arc::new(HashMap::new())).collect(),
        }
    }
}

fn shard_of(id: &str) -> usize {
    (fnv1a(id.as_bytes()) % ID_SHARDS as u64) as usize
}

impl<V: Clone> IdMap<V> {
    pub(crate) fn contains_key(&self, id: &str) -> bool {
        self.shards[shard_of(id)].contains_key(id)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&V> {
        self.shards[shard_of(id)].get(id)
    }

    pub(crate) fn insert(&mut self, id: Arc<str>, value: V) {
        Arc::make_mut(&mut self.shards[shard_of(&id)]).insert(id, value);
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<V> {
        let shard = &mut self.shards[shard_of(id)];
        if !shard.contains_key(id) {
            // Not copied for nothing when it is shared with a snapshot.
            return None;
        }
        Arc::make_mut(shard).remove(id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }
}

impl<V: Serialize> Serialize for IdMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = self.shards.iter().map(|s| s.len()).sum();
        let mut map = serializer.serialize_map(Some(len))?;
        for (k, v) in self.shards.iter().flat_map(|s| s.iter()) {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de> + Clone> Deserialize<'de> for IdMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let flat = HashMap::<Arc<str>, V>::deserialize(deserializer)?;
        let mut out = IdMap::default();
        for (k, v) in flat {
            out.insert(k, v);
        }
        Ok(out)
    }
}

/// One block of a [`TimeOrder`].
type Block = VecDeque<(i64, Arc<str>)>;

/// `(time, id)` pairs sorted by time (equal times in insertion order), in blocks.
#[derive(Clone, Debug, Default)]
pub(crate) struct TimeOrder {
    blocks: VecDeque<Arc<Block>>,
}

impl PartialEq for TimeOrder {
    /// Equal when the sequences are, however they are cut into blocks.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl TimeOrder {
    pub(crate) fn len(&self) -> usize {
        self.blocks.iter().map(|b| b.len()).sum()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(i64, Arc<str>)> {
        self.blocks.iter().flat_map(|b| b.iter())
    }

    /// Entries the blocks have room for (for the memory estimate).
    pub(crate) fn capacity(&self) -> usize {
        self.blocks.iter().map(|b| b.capacity()).sum()
    }

    pub(crate) fn front(&self) -> Option<&(i64, Arc<str>)> {
        self.blocks.front().and_then(|b| b.front())
    }

    pub(crate) fn pop_front(&mut self) -> Option<(i64, Arc<str>)> {
        let first = self.blocks.front_mut()?;
        let out = Arc::make_mut(first).pop_front();
        if first.is_empty() {
            self.blocks.pop_front();
        }
        out
    }

    /// Inserts after every entry at or before `ts`.
    pub(crate) fn insert(&mut self, ts: i64, id: Arc<str>) {
        // The first block holding a later time; every block before it ends at or before `ts`.
        let b = self
            .blocks
            .partition_point(|blk| blk.back().is_some_and(|(t, _)| *t <= ts));
        if b == self.blocks.len() {
            match self.blocks.back_mut() {
                Some(last) if last.len() < ORDER_BLOCK => Arc::make_mut(last).push_back((ts, id)),
                _ => {
                    let mut block = Block::with_capacity(ORDER_BLOCK);
                    block.push_back((ts, id));
                    self.blocks.push_back(Arc::new(block));
                }
            }
            return;
        }
        let block = Arc::make_mut(&mut self.blocks[b]);
        let at = block.partition_point(|(t, _)| *t <= ts);
        block.insert(at, (ts, id));
        if block.len() > 2 * ORDER_BLOCK {
            let tail = block.split_off(block.len() / 2);
            self.blocks.insert(b + 1, Arc::new(tail));
        }
    }

    /// The entries at exactly `ts`, in order.
    pub(crate) fn at(&self, ts: i64) -> impl Iterator<Item = &(i64, Arc<str>)> {
        let b = self
            .blocks
            .partition_point(|blk| blk.back().is_some_and(|(t, _)| *t < ts));
        self.blocks
            .range(b..)
            .flat_map(|blk| blk.iter())
            .skip_while(move |(t, _)| *t < ts)
            .take_while(move |(t, _)| *t == ts)
    }
}

impl Serialize for TimeOrder {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for entry in self.iter() {
            seq.serialize_element(entry)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for TimeOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let flat = Vec::<(i64, Arc<str>)>::deserialize(deserializer)?;
        let mut out = TimeOrder::default();
        // Written in order; inserting keeps it sorted should a file not be.
        for (ts, id) in flat {
            out.insert(ts, id);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `TimeOrder` behaves as the sorted deque it replaces, through inserts in and out of
    /// order, pops, block splits and a shared copy taken midway that must not move.
    #[test]
    fn time_order_matches_a_sorted_deque_and_copies_stay_put() {
        let mut order = TimeOrder::default();
        let mut model: Block = VecDeque::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut kept = None;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly increasing times, some late, many equal.
            let ts = (i / 3) as i64 - (x % 50) as i64 * i64::from(x.is_multiple_of(7));
            let id: Arc<str> = format!("e{i}").into();
            let pos = model.partition_point(|(t, _)| *t <= ts);
            model.insert(pos, (ts, id.clone()));
            order.insert(ts, id);
            if x.is_multiple_of(5) {
                assert_eq!(order.pop_front(), model.pop_front());
            }
            if i == 9_000 {
                kept = Some((order.clone(), model.clone()));
            }
            if i % 4_999 == 0 {
                let probe = ts - 3;
                let a: Vec<_> = order.at(probe).cloned().collect();
                let b: Vec<_> = model.iter().filter(|(t, _)| *t == probe).cloned().collect();
                assert_eq!(a, b);
            }
        }
        assert!(
            order.blocks.len() > 3,
            "the test never left the first block"
        );
        assert_eq!(order.len(), model.len());
        assert!(order.iter().eq(model.iter()));
        assert_eq!(order.front(), model.front());
        let (copy, then) = kept.unwrap();
        assert!(
            copy.iter().eq(then.iter()),
            "the copy moved with the live order"
        );
        // Serialised as the plain sequence, and read back the same.
        let json = serde_json::to_string(&order).unwrap();
        assert_eq!(json, serde_json::to_string(&model).unwrap());
        let back: TimeOrder = serde_json::from_str(&json).unwrap();
        assert!(back == order);
    }

    /// An `IdMap` copy keeps its entries while the original changes, and it serialises as one
    /// map.
    #[test]
    fn id_map_copies_stay_put_and_serialise_as_one_map() {
        let mut ids: IdMap<i64> = IdMap::default();
        for i in 0..1_000 {
            ids.insert(format!("e{i}").into(), i);
        }
        let copy = ids.clone();
        for i in 0..500 {
            assert_eq!(ids.remove(&format!("e{i}")), Some(i));
        }
        assert_eq!(ids.remove("e0"), None);
        ids.insert("new".into(), -1);
        assert_eq!((ids.len(), copy.len()), (501, 1_000));
        assert!((0..1_000).all(|i| copy.get(&format!("e{i}")) == Some(&i)));
        assert!(!copy.contains_key("new") && ids.contains_key("new"));
        let json = serde_json::to_value(&copy).unwrap();
        assert_eq!(json.as_object().map(|m| m.len()), Some(1_000));
        let back: IdMap<i64> = serde_json::from_value(json).unwrap();
        assert!(back == copy);
    }
}
