//! Key lifecycle work on a table's keys (DESIGN.md section 4): switching the KMS key,
//! data-key rotation (on demand and by policy), the resumable re-encryption job, per-generation
//! row counts and retiring generations (crypto-shred of a DEK).
//!
//! Every change to a table's wrapped keys is made under the table's key-administration lock
//! (`KeySlot::admin`), persisted through `Catalog::update_table` with a check that the keys did
//! not change since they were read (fingerprint), and then installed in the table's key slot so
//! requests use the new keys at once.

mod lifecycle;
mod reencrypt;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use crate::catalog::CatalogError;
use crate::crypto::keyring::{KeyringError, Keyspace};
use crate::items::row_generation;
use crate::storage::{Space, Store, StoreError};

pub use lifecycle::{
    retire_generation, rotate_data_key, spawn_manager, status, switch_kms_key, TableStatus,
};
pub use reencrypt::{progress, run_reencrypt, start_reencrypt, stop_jobs, Progress};

pub use crate::config::{KeysConfig, DEFAULT_CHECK_INTERVAL_SECS, DEFAULT_REENCRYPT_ROWS_PER_SEC};

#[derive(Debug, thiserror::Error)]
pub enum KeyJobError {
    #[error("Table: {0} not found")]
    TableNotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// Retiring a generation that rows still use, or the active one.
    #[error("{0}")]
    Refused(String),
    #[error("the table's keys changed concurrently; retry")]
    Conflict,
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("background task failed: {0}")]
    Task(String),
}

/// Live state of a table's re-encryption job in this process, by keyspace (a table name can
/// be reused; a keyspace never is).
#[derive(Default)]
pub(crate) struct JobRegistry {
    jobs: Mutex<HashMap<Keyspace, Arc<reencrypt::JobHandle>>>,
}

pub(crate) fn registry() -> &'static JobRegistry {
    static JOBS: OnceLock<JobRegistry> = OnceLock::new();
    JOBS.get_or_init(JobRegistry::default)
}

impl JobRegistry {
    pub(crate) fn get(&self, ks: &Keyspace) -> Option<Arc<reencrypt::JobHandle>> {
        self.jobs.lock().ok()?.get(ks).cloned()
    }

    /// The handle for `ks`, and whether the caller created it (and so must run the job).
    pub(crate) fn claim(&self, ks: &Keyspace) -> Option<(Arc<reencrypt::JobHandle>, bool)> {
        let mut g = self.jobs.lock().ok()?;
        if let Some(h) = g.get(ks) {
            if h.is_running() {
                return Some((h.clone(), false));
            }
        }
        let h = Arc::new(reencrypt::JobHandle::default());
        h.set_running(true);
        g.insert(*ks, h.clone());
        Some((h, true))
    }
}

/// Rows of one data-key generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GenerationCounts {
    /// Base-table items (index byte 0).
    pub items: u64,
    /// Secondary-index entries (index bytes 1..N).
    pub index_rows: u64,
    /// Sort-index pages.
    pub pages: u64,
}

impl GenerationCounts {
    pub fn total(&self) -> u64 {
        self.items
            .saturating_add(self.index_rows)
            .saturating_add(self.pages)
    }
}

/// One pass over every sealed row of a keyspace, reading only clear headers (no decryption).
/// Rows whose header cannot be read are counted under generation 0.
pub fn count_generations(
    store: &dyn Store,
    keyspace: &Keyspace,
) -> Result<BTreeMap<u32, GenerationCounts>, StoreError> {
    let mut out: BTreeMap<u32, GenerationCounts> = BTreeMap::new();
    for space in [Space::Items, Space::SortIndex] {
        for_each_row(store, space, keyspace, None, |key, value| {
            let g = row_generation(value).unwrap_or(0);
            let c = out.entry(g).or_default();
            match (space, key.get(keyspace.len())) {
                (Space::SortIndex, _) => c.pages += 1,
                (_, Some(0)) => c.items += 1,
                _ => c.index_rows += 1,
            }
        })?;
    }
    Ok(out)
}

/// Rows scanned per store call.
pub(crate) const SCAN_BATCH: usize = 256;

/// Calls `f` on every row of the keyspace in `space`, after `after` when given.
pub(crate) fn for_each_row(
    store: &dyn Store,
    space: Space,
    keyspace: &Keyspace,
    after: Option<&[u8]>,
    mut f: impl FnMut(&[u8], &[u8]),
) -> Result<(), StoreError> {
    let prefix = crate::items::table_prefix(keyspace);
    let end = crate::catalog::prefix_end(&prefix);
    let mut start = match after {
        Some(k) => successor(k),
        None => prefix,
    };
    loop {
        let page = store.scan(space, &start, Some(&end), false, SCAN_BATCH)?;
        for (k, v) in &page.entries {
            f(k, v);
        }
        match (page.more, page.entries.last()) {
            (true, Some((k, _))) => start = successor(k),
            _ => return Ok(()),
        }
    }
}

/// The smallest key after `k`.
pub(crate) fn successor(k: &[u8]) -> Vec<u8> {
    let mut s = k.to_vec();
    s.push(0);
    s
}

#[cfg(test)]
mod tests;
