//! The row cache: the latest sealed value of recently read or written item rows, in front of
//! RocksDB's memtable and block cache.
//!
//! Why: a GetItem's `get` walks the items memtable's skiplist (tens of cache-missing hops with
//! a full 64 MiB memtable), which was ~17% of the server's CPU per GetItem in the issue 2
//! profiles; a hash lookup here costs a fraction of that. It holds exactly what RocksDB holds,
//! sealed bytes under HMAC-token keys, so it adds no plaintext to memory.
//!
//! Coherence: the commit writer is the only writer of the items space (plus
//! [`RocksStore::delete_range`](super::RocksStore), which brackets itself with
//! [`RowCache::begin_clear`]/[`RowCache::end_clear`]; a group whose write overlaps a clear
//! stores nothing). For every key of a group it calls
//! [`RowCache::begin_writes`] before the group's RocksDB write, which marks the key pending
//! (readers miss, and nobody may fill it), and [`RowCache::end_writes`] after the write and
//! before any commit of the group is answered, which stores the new value (or drops the key)
//! and advances the shard's epoch. A reader that missed fills the cache with what it read from
//! RocksDB only if its shard's epoch has not moved since the miss and the key is not pending:
//! otherwise a write may have landed in between and its value could be stale. So an entry is
//! always the value RocksDB would return now, and a read never sees an older value than an
//! earlier read did.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

// 64 shards: on the 2-core target two request threads and the writer rarely meet on one lock.
const SHARDS: usize = 64;

// Bookkeeping per entry (map slot, boxed key and value headers), charged against the budget.
const ENTRY_OVERHEAD: usize = 64;

enum Slot {
    /// A write of this key is in flight: readers miss and may not fill.
    Pending,
    Value(Box<[u8]>),
}

/// Hashes a row key by its last eight bytes. Row keys end in HMAC tokens under the table's
/// secret token key: uniformly spread, and nobody without the key can choose them, so they need
/// no keyed hash (SipHash over the whole key was ~1% of a GetItem's CPU in perf).
#[derive(Default, Clone, Copy)]
struct TailHash(u64);

impl std::hash::Hasher for TailHash {
    fn write(&mut self, bytes: &[u8]) {
        let mut tail = [0u8; 8];
        let from = bytes.len().saturating_sub(8);
        if let (Some(src), Some(dst)) = (bytes.get(from..), tail.get_mut(..bytes.len() - from)) {
            dst.copy_from_slice(src);
        }
        // A multiply by an odd constant (2^64 / golden ratio) spreads the bits upwards too.
        self.0 = (self.0 ^ u64::from_le_bytes(tail)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type TailMap<V> = HashMap<Box<[u8]>, V, std::hash::BuildHasherDefault<TailHash>>;

#[derive(Default)]
struct Shard {
    map: TailMap<Slot>,
    /// Bytes held by `Value` entries (with [`ENTRY_OVERHEAD`]).
    bytes: usize,
    /// Advanced whenever a write to this shard lands (or a clear ends).
    epoch: u64,
    /// Clears in progress: no fills while non-zero.
    blocked: u32,
}

impl Shard {
    fn remove(&mut self, key: &[u8]) {
        if let Some(Slot::Value(v)) = self.map.remove(key) {
            self.bytes -= entry_bytes(key, &v);
        }
    }

    /// Stores `value` under `key`, replacing what is there. When the shard would pass its
    /// budget it is emptied first: bounded memory with O(1) amortized cost, and a working set
    /// that fits the budget stays cached.
    fn store(&mut self, key: &[u8], value: &[u8], budget: usize) {
        self.remove(key);
        let size = entry_bytes(key, value);
        if size > budget {
            return;
        }
        if self.bytes + size > budget {
            self.map.retain(|_, slot| matches!(slot, Slot::Pending));
            self.bytes = 0;
        }
        self.map.insert(key.into(), Slot::Value(value.into()));
        self.bytes += size;
    }
}

fn entry_bytes(key: &[u8], value: &[u8]) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

/// What a lookup found.
pub(super) enum Lookup {
    Hit(Vec<u8>),
    /// Read RocksDB, then hand the value to [`RowCache::fill`] with this ticket.
    Miss(Ticket),
}

/// The shard epoch seen at a miss.
pub(super) struct Ticket {
    epoch: u64,
}

/// The clear count seen when a group's keys went pending.
pub(super) struct GroupTicket {
    clears: u64,
}

pub(super) struct RowCache {
    shards: Box<[Mutex<Shard>]>,
    shard_budget: usize,
    /// Advanced at the start and at the end of every clear: a group whose write may have
    /// raced a range delete (which does not go through the writer) does not store its values.
    clears: AtomicU64,
}

impl RowCache {
    /// A cache holding at most about `budget_bytes` of keys and values.
    pub fn new(budget_bytes: usize) -> RowCache {
        RowCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_budget: budget_bytes / SHARDS,
            clears: AtomicU64::new(0),
        }
    }

    // A shard holds only plain data that no panic can leave half-changed.
    fn shard(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        self.shard_mutex(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn shard_mutex(&self, key: &[u8]) -> &Mutex<Shard> {
        // Keys end in HMAC tokens, so their last bytes are uniformly spread; FNV-1a over them
        // picks the shard without hashing the whole key twice.
        let tail = &key[key.len().saturating_sub(8)..];
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in tail {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let i = (h % SHARDS as u64) as usize;
        &self.shards[i]
    }

    pub fn lookup(&self, key: &[u8]) -> Lookup {
        match self.peek(key, <[u8]>::to_vec) {
            Ok(value) => Lookup::Hit(value),
            Err(ticket) => Lookup::Miss(ticket),
        }
    }

    /// `f` of the cached value, without copying it out; a miss gives the ticket to fill with.
    pub fn peek<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<R, Ticket> {
        let shard = self.shard(key);
        match shard.map.get(key) {
            Some(Slot::Value(v)) => Ok(f(v)),
            _ => Err(Ticket { epoch: shard.epoch }),
        }
    }

    /// Caches what a reader found after `ticket`'s miss, unless a write or clear touched the
    /// shard since (the value may be stale) or one is in flight for the key. Absent keys are
    /// not cached.
    pub fn fill(&self, key: &[u8], ticket: Ticket, value: Option<&[u8]>) {
        let Some(value) = value else { return };
        let mut shard = self.shard(key);
        if shard.epoch != ticket.epoch || shard.blocked > 0 || shard.map.contains_key(key) {
            return;
        }
        let budget = self.shard_budget;
        shard.store(key, value, budget);
    }

    /// Before a group's write: its keys go pending.
    pub fn begin_writes<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) -> GroupTicket {
        let ticket = GroupTicket {
            clears: self.clears.load(Ordering::SeqCst),
        };
        for key in keys {
            let mut shard = self.shard(key);
            shard.remove(key);
            shard.map.insert(key.into(), Slot::Pending);
        }
        ticket
    }

    /// After a group's write, before it is answered: each key's new value (`None`: deleted)
    /// when the write landed, else nothing (the next reader asks RocksDB). Nothing is stored
    /// either when a range delete ran or runs meanwhile: it may have landed after this write.
    pub fn end_writes<'k>(
        &self,
        ticket: GroupTicket,
        writes: impl Iterator<Item = (&'k [u8], Option<&'k [u8]>)>,
        landed: bool,
    ) {
        let budget = self.shard_budget;
        for (key, value) in writes {
            let mut shard = self.shard(key);
            shard.remove(key);
            shard.epoch = shard.epoch.wrapping_add(1);
            let unraced = shard.blocked == 0 && self.clears.load(Ordering::SeqCst) == ticket.clears;
            if let (true, true, Some(v)) = (landed, unraced, value) {
                shard.store(key, v, budget);
            }
        }
    }

    /// Before a write the cache cannot follow key by key (a range delete): empties every
    /// shard and stops fills until [`RowCache::end_clear`].
    pub fn begin_clear(&self) {
        self.clears.fetch_add(1, Ordering::SeqCst);
        for s in self.shards.iter() {
            let mut shard = s.lock().unwrap_or_else(PoisonError::into_inner);
            shard.blocked += 1;
            shard.map.retain(|_, slot| matches!(slot, Slot::Pending));
            shard.bytes = 0;
        }
    }

    pub fn end_clear(&self) {
        for s in self.shards.iter() {
            let mut shard = s.lock().unwrap_or_else(PoisonError::into_inner);
            shard.blocked = shard.blocked.saturating_sub(1);
            shard.map.retain(|_, slot| matches!(slot, Slot::Pending));
            shard.bytes = 0;
            shard.epoch = shard.epoch.wrapping_add(1);
        }
        self.clears.fetch_add(1, Ordering::SeqCst);
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys of one shard (same prefix, HMAC-like tails that share the shard) spread evenly
    /// over the buckets of the shard's map, in the low bits hashbrown indexes with and in the
    /// top seven bits it tags with.
    #[test]
    fn tail_hash_spreads_one_shards_keys() {
        use std::hash::BuildHasher;
        let cache = RowCache::new(1 << 20);
        let build = std::hash::BuildHasherDefault::<TailHash>::default();
        let target = &cache.shards[0] as *const _;
        let (mut low, mut top) = ([0u32; 64], [0u32; 128]);
        let mut n = 0u32;
        for i in 0..200_000u64 {
            let token = ring::digest::digest(&ring::digest::SHA256, &i.to_le_bytes());
            let mut key = b"prefix\x01".to_vec();
            key.extend_from_slice(token.as_ref());
            if !std::ptr::eq(cache.shard_mutex(&key), target) {
                continue;
            }
            let h = build.hash_one(key.as_slice());
            low[(h & 63) as usize] += 1;
            top[(h >> 57) as usize] += 1;
            n += 1;
        }
        assert!(n > 2000, "{n} keys in shard 0");
        // Pearson's chi-squared against even spread, bounded at five standard deviations
        // (a uniform hash stays far below; a hash correlated with the shard choice does not).
        for buckets in [&low[..], &top[..]] {
            let df = (buckets.len() - 1) as f64;
            let mean = f64::from(n) / buckets.len() as f64;
            let chi: f64 = buckets
                .iter()
                .map(|&c| (f64::from(c) - mean).powi(2) / mean)
                .sum();
            assert!(
                chi < df + 5.0 * (2.0 * df).sqrt(),
                "chi² {chi} with {df} df"
            );
        }
    }

    fn hit(c: &RowCache, key: &[u8]) -> Option<Vec<u8>> {
        match c.lookup(key) {
            Lookup::Hit(v) => Some(v),
            Lookup::Miss(_) => None,
        }
    }

    fn miss(c: &RowCache, key: &[u8]) -> Ticket {
        match c.lookup(key) {
            Lookup::Miss(t) => t,
            Lookup::Hit(_) => panic!("unexpected hit"),
        }
    }

    #[test]
    fn fill_then_hit() {
        let c = RowCache::new(1 << 20);
        let t = miss(&c, b"k");
        c.fill(b"k", t, Some(b"v1"));
        assert_eq!(hit(&c, b"k").as_deref(), Some(&b"v1"[..]));
        let t = miss(&c, b"absent");
        c.fill(b"absent", t, None);
        assert!(hit(&c, b"absent").is_none());
    }

    #[test]
    fn a_write_landing_after_a_miss_refuses_the_stale_fill() {
        let c = RowCache::new(1 << 20);
        let t = miss(&c, b"k");
        // The reader read "old" from RocksDB; meanwhile a write of "new" ran start to end.
        let g = c.begin_writes([&b"k"[..]].into_iter());
        c.end_writes(g, [(&b"k"[..], Some(&b"new"[..]))].into_iter(), true);
        c.fill(b"k", t, Some(b"old"));
        assert_eq!(hit(&c, b"k").as_deref(), Some(&b"new"[..]));
        // Same after a delete, where nothing is left to block the fill but the epoch.
        let t = miss(&c, b"d");
        let g = c.begin_writes([&b"d"[..]].into_iter());
        c.end_writes(g, [(&b"d"[..], None)].into_iter(), true);
        c.fill(b"d", t, Some(b"old"));
        assert!(hit(&c, b"d").is_none());
    }

    #[test]
    fn a_pending_key_is_neither_served_nor_filled() {
        let c = RowCache::new(1 << 20);
        let t = miss(&c, b"k");
        c.fill(b"k", t, Some(b"old"));
        let g = c.begin_writes([&b"k"[..]].into_iter());
        // A reader between begin and end misses, reads the old value and may not cache it.
        let t = miss(&c, b"k");
        c.fill(b"k", t, Some(b"old"));
        assert!(hit(&c, b"k").is_none());
        // A write that failed leaves nothing behind.
        c.end_writes(g, [(&b"k"[..], Some(&b"new"[..]))].into_iter(), false);
        assert!(hit(&c, b"k").is_none());
        let t = miss(&c, b"k");
        c.fill(b"k", t, Some(b"old"));
        assert_eq!(hit(&c, b"k").as_deref(), Some(&b"old"[..]));
    }

    #[test]
    fn clears_empty_the_cache_and_block_fills_until_they_end() {
        let c = RowCache::new(1 << 20);
        let t = miss(&c, b"k");
        c.fill(b"k", t, Some(b"v"));
        c.begin_clear();
        assert!(hit(&c, b"k").is_none());
        let t = miss(&c, b"k");
        c.fill(b"k", t, Some(b"v"));
        assert!(hit(&c, b"k").is_none());
        c.end_clear();
        assert!(hit(&c, b"k").is_none());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn a_group_that_raced_a_clear_stores_nothing() {
        let c = RowCache::new(1 << 20);
        let put = |k: &'static [u8]| [(k, Some(&b"new"[..]))].into_iter();
        // The range delete started before the group ended and is still running.
        let g = c.begin_writes([&b"a"[..]].into_iter());
        c.begin_clear();
        c.end_writes(g, put(b"a"), true);
        assert!(hit(&c, b"a").is_none());
        c.end_clear();
        assert!(hit(&c, b"a").is_none());
        // It ran entirely between the group's start and end.
        let g = c.begin_writes([&b"b"[..]].into_iter());
        c.begin_clear();
        c.end_clear();
        c.end_writes(g, put(b"b"), true);
        assert!(hit(&c, b"b").is_none());
        // It had started before the group and ended before the group did.
        c.begin_clear();
        let g = c.begin_writes([&b"c"[..]].into_iter());
        c.end_clear();
        c.end_writes(g, put(b"c"), true);
        assert!(hit(&c, b"c").is_none());
        // No clear: the value is stored.
        let g = c.begin_writes([&b"d"[..]].into_iter());
        c.end_writes(g, put(b"d"), true);
        assert_eq!(hit(&c, b"d").as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn memory_stays_within_the_budget() {
        let budget = SHARDS * 4096;
        let c = RowCache::new(budget);
        let value = vec![7u8; 1000];
        for i in 0u32..5000 {
            let key = i.to_be_bytes();
            let t = miss(&c, &key);
            c.fill(&key, t, Some(&value));
            assert!(c.bytes() <= budget);
        }
        // Writes go through the same budget.
        let keys: Vec<[u8; 4]> = (5000u32..6000).map(u32::to_be_bytes).collect();
        let g = c.begin_writes(keys.iter().map(|k| &k[..]));
        c.end_writes(g, keys.iter().map(|k| (&k[..], Some(&value[..]))), true);
        assert!(c.bytes() <= budget);
        assert!(c.bytes() > 0);
        // A value larger than a shard's share is not cached at all.
        let big = vec![0u8; budget];
        let t = miss(&c, b"big");
        c.fill(b"big", t, Some(&big));
        assert!(hit(&c, b"big").is_none());
    }

    /// A model run: readers (miss, read the store, fill), the writer's groups (pending, land,
    /// end) and range deletes (begin, land, end) interleaved in any order against a model
    /// store. Whatever the interleaving, a hit equals the store's current value.
    mod model {
        use super::*;
        use proptest::prelude::*;

        const KEYS: u8 = 4;
        const READERS: usize = 3;

        #[derive(Debug, Clone)]
        enum Op {
            Lookup(usize, u8),
            ReadStore(usize),
            Fill(usize),
            GroupBegin(Vec<(u8, Option<u8>)>),
            GroupLand,
            GroupEnd,
            ClearBegin,
            ClearLand,
            ClearEnd,
        }

        fn op() -> impl Strategy<Value = Op> {
            let write = (0..KEYS, proptest::option::of(any::<u8>()));
            prop_oneof![
                4 => (0..READERS, 0..KEYS).prop_map(|(r, k)| Op::Lookup(r, k)),
                3 => (0..READERS).prop_map(Op::ReadStore),
                3 => (0..READERS).prop_map(Op::Fill),
                2 => proptest::collection::vec(write, 1..3).prop_map(Op::GroupBegin),
                2 => Just(Op::GroupLand),
                2 => Just(Op::GroupEnd),
                1 => Just(Op::ClearBegin),
                1 => Just(Op::ClearLand),
                1 => Just(Op::ClearEnd),
            ]
        }

        /// The writer's open group: its ticket, its writes, and whether they landed.
        type Group = (GroupTicket, Vec<(u8, Option<u8>)>, bool);

        /// A reader after its miss: the key, its ticket, and what it read from the store.
        struct Reader {
            key: u8,
            ticket: Ticket,
            read: Option<Option<u8>>,
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn hits_always_equal_the_store(ops in proptest::collection::vec(op(), 1..80)) {
                let c = RowCache::new(1 << 20);
                let mut store: [Option<u8>; KEYS as usize] = [Some(0); KEYS as usize];
                // Every key starts cached, as after a write.
                let keys: Vec<[u8; 1]> = (0..KEYS).map(|k| [k]).collect();
                let g = c.begin_writes(keys.iter().map(|k| &k[..]));
                c.end_writes(g, keys.iter().map(|k| (&k[..], Some(&[0u8][..]))), true);
                let mut readers: Vec<Option<Reader>> = (0..READERS).map(|_| None).collect();
                // The writer's group (one at a time, as the writer thread runs them).
                let mut group: Option<Group> = None;
                let mut clear = 0u8; // 0 none, 1 begun, 2 landed
                for op in ops {
                    match op {
                        Op::Lookup(r, k) => match c.lookup(&[k]) {
                            Lookup::Hit(v) => {
                                prop_assert_eq!(Some(v), store[k as usize].map(|x| vec![x]));
                            }
                            Lookup::Miss(ticket) => {
                                readers[r] = Some(Reader { key: k, ticket, read: None });
                            }
                        },
                        Op::ReadStore(r) => {
                            if let Some(reader) = readers[r].as_mut() {
                                reader.read.get_or_insert(store[reader.key as usize]);
                            }
                        }
                        Op::Fill(r) => {
                            if let Some(Reader { key, ticket, read: Some(v) }) = readers[r].take() {
                                c.fill(&[key], ticket, v.map(|x| [x]).as_ref().map(|b| &b[..]));
                            }
                        }
                        Op::GroupBegin(writes) => {
                            if group.is_none() {
                                let ks: Vec<[u8; 1]> = writes.iter().map(|(k, _)| [*k]).collect();
                                let t = c.begin_writes(ks.iter().map(|k| &k[..]));
                                group = Some((t, writes, false));
                            }
                        }
                        Op::GroupLand => {
                            if let Some((_, writes, landed)) = group.as_mut() {
                                if !*landed {
                                    for (k, v) in writes.iter() {
                                        store[*k as usize] = *v;
                                    }
                                    *landed = true;
                                }
                            }
                        }
                        Op::GroupEnd => {
                            // A group that never landed is a failed write.
                            if let Some((t, writes, landed)) = group.take() {
                                let kv: Vec<([u8; 1], Option<[u8; 1]>)> =
                                    writes.iter().map(|(k, v)| ([*k], v.map(|x| [x]))).collect();
                                c.end_writes(
                                    t,
                                    kv.iter().map(|(k, v)| (&k[..], v.as_ref().map(|b| &b[..]))),
                                    landed,
                                );
                            }
                        }
                        Op::ClearBegin => {
                            if clear == 0 {
                                c.begin_clear();
                                clear = 1;
                            }
                        }
                        Op::ClearLand => {
                            if clear == 1 {
                                store = [None; KEYS as usize];
                                clear = 2;
                            }
                        }
                        Op::ClearEnd => {
                            if clear == 2 {
                                c.end_clear();
                                clear = 0;
                            }
                        }
                    }
                }
            }
        }
    }
}
