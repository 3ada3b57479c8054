//! Per-index ItemCount / IndexSizeBytes (approximate, as DynamoDB's).
//!
//! Kept in memory per (keyspace, index byte): adjusted by every committed write, and counted
//! once from the stored entries the first time DescribeTable needs them after a start (an
//! index's entries are one contiguous range of the items space). A write racing that first
//! count may be counted twice; DynamoDB's figures are approximate too (refreshed ~6 hours).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::crypto::keyring::Keyspace;
use crate::storage::{Space, Store, StoreError};

#[derive(Default)]
pub struct IndexStats {
    items: AtomicI64,
    bytes: AtomicI64,
    counted: AtomicBool,
}

impl IndexStats {
    pub fn adjust(&self, items: i64, bytes: i64) {
        self.items.fetch_add(items, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> (i64, i64) {
        (
            self.items.load(Ordering::Relaxed).max(0),
            self.bytes.load(Ordering::Relaxed).max(0),
        )
    }
}

type Registry = Mutex<HashMap<(Keyspace, u8), Arc<IndexStats>>>;

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| Mutex::new(HashMap::new()))
}

pub fn of(keyspace: &Keyspace, index: u8) -> Arc<IndexStats> {
    match registry().lock() {
        Ok(mut m) => m.entry((*keyspace, index)).or_default().clone(),
        // A poisoned registry only loses statistics.
        Err(_) => Arc::new(IndexStats::default()),
    }
}

/// Counts the index's stored entries once per process (blocking: call off the async path).
pub fn ensure_counted(store: &dyn Store, keyspace: &Keyspace, index: u8) -> Result<(), StoreError> {
    let s = of(keyspace, index);
    if s.counted.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    let mut prefix = keyspace.to_vec();
    prefix.push(index);
    let end = super::prefix_end(&prefix);
    let mut start = prefix;
    let (mut items, mut bytes) = (0i64, 0i64);
    loop {
        let page = store.scan(Space::Items, &start, Some(&end), false, 1024)?;
        for (_, v) in &page.entries {
            items += 1;
            bytes = bytes.saturating_add(crate::items::approx_plain_len(v) as i64);
        }
        match (page.more, page.entries.last()) {
            (true, Some((k, _))) => {
                start = k.clone();
                start.push(0);
            }
            _ => break,
        }
    }
    s.items.store(items, Ordering::Relaxed);
    s.bytes.store(bytes, Ordering::Relaxed);
    Ok(())
}

/// Forgets an index's figures (it was deleted; its byte may be reused).
pub fn forget(keyspace: &Keyspace, index: u8) {
    if let Ok(mut m) = registry().lock() {
        m.remove(&(*keyspace, index));
    }
}
