//! In-memory `Store` for unit tests: one ordered map per space behind one lock. Nothing is
//! durable; the single lock makes every commit trivially linearizable.

use super::{Check, CommitError, ScanPage, Space, Store, StoreError, Write};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Default)]
pub struct MemStore {
    spaces: RwLock<[Map; Space::ALL.len()]>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave a commit half-applied (checks run before any
    // write, and map inserts do not panic midway), so a poisoned lock is still consistent.
    fn read(&self) -> RwLockReadGuard<'_, [Map; Space::ALL.len()]> {
        self.spaces.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, [Map; Space::ALL.len()]> {
        self.spaces.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn space_map(maps: &[Map; Space::ALL.len()], space: Space) -> &Map {
    // `index()` is below `ALL.len()` by construction; `get` keeps the no-panic rule visible.
    static EMPTY: Map = BTreeMap::new();
    maps.get(space.index()).unwrap_or(&EMPTY)
}

fn page<'a>(mut iter: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>, limit: usize) -> ScanPage {
    let entries = iter
        .by_ref()
        .take(limit)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let more = iter.next().is_some();
    ScanPage { entries, more }
}

impl Store for MemStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(space_map(&self.read(), space).get(key).cloned())
    }

    fn multi_get(&self, keys: &[(Space, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let maps = self.read();
        Ok(keys
            .iter()
            .map(|(space, key)| space_map(&maps, *space).get(*key).cloned())
            .collect())
    }

    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        // BTreeMap::range panics on an inverted range; the trait defines it as empty.
        if end.is_some_and(|e| e <= start) {
            return Ok(ScanPage::default());
        }
        let maps = self.read();
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let range = space_map(&maps, space).range::<[u8], _>((Bound::Included(start), upper));
        Ok(if reverse {
            page(range.rev(), limit)
        } else {
            page(range, limit)
        })
    }

    fn commit(&self, checks: &[Check], writes: &[Write]) -> Result<(), CommitError> {
        let mut maps = self.write();
        if let Some(index) = checks
            .iter()
            .position(|c| space_map(&maps, c.space).get(&c.key) != c.expect.as_ref())
        {
            return Err(CommitError::Conflict { index });
        }
        for w in writes {
            let Some(map) = maps.get_mut(w.space().index()) else {
                continue;
            };
            match w {
                Write::Put { key, value, .. } => {
                    map.insert(key.clone(), value.clone());
                }
                Write::Delete { key, .. } => {
                    map.remove(key);
                }
            }
        }
        Ok(())
    }

    fn delete_range(&self, space: Space, start: &[u8], end: &[u8]) -> Result<(), StoreError> {
        if end <= start {
            return Ok(());
        }
        let mut maps = self.write();
        if let Some(map) = maps.get_mut(space.index()) {
            let doomed: Vec<Vec<u8>> = map
                .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
                .map(|(k, _)| k.clone())
                .collect();
            for k in doomed {
                map.remove(&k);
            }
        }
        Ok(())
    }

    fn flush_and_compact(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::suite;
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    #[test]
    fn get_put_delete() {
        suite::get_put_delete(&MemStore::new());
    }

    #[test]
    fn multi_get() {
        suite::multi_get(&MemStore::new());
    }

    #[test]
    fn scan() {
        suite::scan(&MemStore::new());
    }

    #[test]
    fn commit_checks() {
        suite::commit_checks(&MemStore::new());
    }

    #[test]
    fn delete_range() {
        suite::delete_range(&MemStore::new());
    }

    #[test]
    fn concurrent_cas() {
        suite::concurrent_cas(Arc::new(MemStore::new()), 8, 200);
    }

    #[test]
    fn async_commits_apply_in_submission_order() {
        suite::async_commits_apply_in_submission_order(&MemStore::new());
    }

    #[test]
    fn flush_commits_waits_for_submitted() {
        suite::flush_commits_waits_for_submitted(&MemStore::new());
    }

    #[test]
    fn concurrent_async_cas() {
        suite::concurrent_async_cas(Arc::new(MemStore::new()), 16, 50);
    }

    proptest! {
        #[test]
        fn matches_model(ops in proptest::collection::vec(suite::strategy::op(), 0..60)) {
            suite::run_against_model(&MemStore::new(), &ops);
        }
    }
}
