//! Per-table ordering between commits and online index changes.
//!
//! Every commit holds its tables' gates shared from reading the catalog's index set to
//! landing (or, on the request path, to its submission to the store, whose queue the index
//! change then flushes: `ops::index_admin`); an online index change takes its table's gate exclusively once, after updating
//! the catalog, so that afterwards no commit built from the previous index set can still land.
//! Gates are per table so that an index change on one table never waits for (or blocks)
//! writers of another.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard};

use arc_swap::ArcSwap;

use crate::crypto::keyring::Keyspace;

/// The gates themselves guard no data; poisoning only means a holder panicked.
type Gate = Arc<RwLock<()>>;
/// Read by every commit without a lock; copied and replaced when a table's gate is created
/// (its first commit) or forgotten (its deletion).
type Gates = ArcSwap<HashMap<Keyspace, Gate>>;

fn gates() -> &'static Gates {
    static G: OnceLock<Gates> = OnceLock::new();
    G.get_or_init(|| ArcSwap::from_pointee(HashMap::new()))
}

/// The gate of the table with keyspace `ks` (created on first use; a keyspace is never reused,
/// so an entry outlives its table only as a few dozen bytes until [`forget`]).
pub fn of(ks: &Keyspace) -> Gate {
    if let Some(g) = gates().load().get(ks) {
        return g.clone();
    }
    // `rcu` retries the edit when another thread replaced the map meanwhile; the gate of the
    // edit that was stored is the one every later lookup finds.
    let mut gate = Gate::default();
    gates().rcu(|current| {
        let mut next = HashMap::clone(current);
        gate = next.entry(*ks).or_default().clone();
        next
    });
    gate
}

/// Drops a deleted table's gate.
pub fn forget(ks: &Keyspace) {
    gates().rcu(|current| {
        let mut next = HashMap::clone(current);
        next.remove(ks);
        next
    });
}

/// The gates of a commit's tables, to be held shared for the whole commit.
pub struct Held {
    gates: Vec<Gate>,
}

impl Held {
    /// The gates of `keyspaces` (any order, duplicates allowed), taken in keyspace order so
    /// that commits spanning tables cannot deadlock with each other and an exclusive waiter.
    pub fn new(keyspaces: impl IntoIterator<Item = Keyspace>) -> Held {
        let mut ks: Vec<Keyspace> = keyspaces.into_iter().collect();
        ks.sort_unstable();
        ks.dedup();
        Held {
            gates: ks.iter().map(of).collect(),
        }
    }

    /// Takes every gate shared; the guards live as long as the borrow of `self`.
    pub fn read(&self) -> Vec<RwLockReadGuard<'_, ()>> {
        self.gates
            .iter()
            .map(|g| g.read().unwrap_or_else(PoisonError::into_inner))
            .collect()
    }
}

/// Waits until every commit on table `ks` that holds its gate has landed or failed
/// (blocking: call off the async path).
pub fn drain(ks: &Keyspace) {
    let gate = of(ks);
    drop(gate.write().unwrap_or_else(PoisonError::into_inner));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Concurrent first uses of a table's gate agree on one gate, and other tables' gates
    /// created meanwhile are not lost.
    #[test]
    fn first_uses_racing_agree_on_one_gate() {
        let ks = [7u8; 16];
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                std::thread::spawn(move || {
                    let other = [100 + i; 16];
                    let g = of(&ks);
                    (g, other, of(&other))
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (g, other, og) in &results {
            assert!(Arc::ptr_eq(g, &of(&ks)));
            assert!(Arc::ptr_eq(og, &of(other)));
            forget(other);
        }
        forget(&ks);
    }

    #[test]
    fn drain_waits_for_its_table_only() {
        let (a, b) = ([1u8; 16], [2u8; 16]);
        let held = Held::new([a, a]);
        let guards = held.read();
        assert_eq!(guards.len(), 1);
        // Another table's change does not wait for commits on this one.
        drain(&b);
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            drain(&a);
            tx.send(()).unwrap();
        });
        // Not a timing assertion: the drain must not have finished while the guard is held,
        // however long we look.
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        drop(guards);
        rx.recv().unwrap();
        t.join().unwrap();
        forget(&a);
        forget(&b);
    }
}
