//! Switching a table's KMS key, rotating and retiring data-key generations, the status report,
//! and the background manager (encryption counts, rotation policy, resuming jobs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::{count_generations, GenerationCounts, KeyJobError, KeysConfig};
use crate::catalog::tables::TableEntry;
use crate::catalog::CatalogError;
use crate::crypto::keyring::{
    add_generation, decrypt_table_key, rewrap_under_new_kms_key, unwrap_children,
    unwrap_table_keys, TableKeys, WrappedTableKeys,
};
use crate::crypto::secret::{mlock_status, MlockStatus};
use crate::ops::Services;

/// Between adding a generation and making it active for writes: long enough for requests that
/// fetched the previous keys (which cannot open the new generation) to finish, so no reader
/// meets a row sealed under a generation it does not know. Requests last milliseconds.
const ROTATE_SETTLE: Duration = Duration::from_millis(500);

fn entry(svc: &Services, table: &str) -> Result<Arc<TableEntry>, KeyJobError> {
    svc.catalog
        .table(table)
        .ok_or_else(|| KeyJobError::TableNotFound(table.to_string()))
}

/// The table's current plaintext children: the cached ones when they match the persisted
/// definition (no KMS call, so a switch works while the old KMS key is already failing),
/// else one KMS Decrypt.
async fn current_children(
    svc: &Services,
    entry: &TableEntry,
) -> Result<Arc<TableKeys>, KeyJobError> {
    let w = &entry.def.keys;
    if let Some(k) = entry.keys.cached() {
        let mut have = k.generations();
        let mut want: Vec<u32> = w.generations.iter().map(|g| g.generation).collect();
        have.sort_unstable();
        want.sort_unstable();
        if have == want && k.active_generation() == w.active_generation {
            return Ok(k);
        }
    }
    Ok(Arc::new(
        unwrap_table_keys(svc.kms.as_ref(), w, &entry.def.keyspace).await?,
    ))
}

/// Persists `change` of the table's wrapped keys if they are still those read as `expected`,
/// returning the new definition's keys.
async fn update_keys(
    svc: &Services,
    table: &str,
    expected: [u8; 32],
    change: impl FnOnce(&mut WrappedTableKeys) -> Result<(), KeyJobError>,
) -> Result<WrappedTableKeys, KeyJobError> {
    let (entry, ()) = svc
        .catalog
        .update_table(table, |def| {
            if def.keys.fingerprint() != expected {
                return Err(KeyJobError::Conflict);
            }
            change(&mut def.keys)
        })
        .await?;
    Ok(entry.def.keys.clone())
}

/// Switches `table` to the KMS key `new_key_arn` (already resolved and checked enabled): a
/// new table key from that KMS key wraps the existing children; no row is rewritten. The old
/// KMS key is not needed afterwards. `explicit`: the table now names its key (DescribeTable
/// shows SSEDescription).
pub async fn switch_kms_key(
    svc: &Services,
    table: &str,
    new_key_arn: &str,
    explicit: bool,
) -> Result<(), KeyJobError> {
    let e = entry(svc, table)?;
    let _admin = e.keys.admin.lock().await;
    let e = entry(svc, table)?;
    let old_arn = e.def.keys.kms_key_arn.clone();
    if old_arn == new_key_arn {
        if e.def.sse_explicit != explicit {
            svc.catalog
                .update_table(table, |def| {
                    def.sse_explicit = explicit;
                    Ok::<(), CatalogError>(())
                })
                .await?;
        }
        return Ok(());
    }
    let children = current_children(svc, &e).await?;
    let ks = e.def.keyspace;
    let (fresh, tk_new) =
        rewrap_under_new_kms_key_from(svc, new_key_arn, &children, &e.def.keys, &ks).await?;
    let expected = e.def.keys.fingerprint();
    let (updated, ()) = svc
        .catalog
        .update_table(table, |def| {
            if def.keys.fingerprint() != expected {
                return Err(KeyJobError::Conflict);
            }
            // Only the wrapping changes; counters and the job record are kept as they are now.
            let k = &mut def.keys;
            k.kms_key_arn = fresh.kms_key_arn.clone();
            k.table_key_blob = fresh.table_key_blob.clone();
            k.token_key = fresh.token_key.clone();
            for g in k.generations.iter_mut() {
                let w = fresh
                    .generation(g.generation)
                    .ok_or(KeyJobError::Conflict)?;
                g.wrapped = w.wrapped.clone();
            }
            def.sse_explicit = explicit;
            Ok(())
        })
        .await?;
    let keys = unwrap_children(&tk_new, &updated.def.keys, &ks)?;
    drop(tk_new);
    e.keys.install(&updated.def.keys, keys).await;
    svc.audit.record(
        "key_lifecycle",
        json!({"event": "SwitchKmsKey", "table": table, "from_key_arn": old_arn,
               "to_key_arn": updated.def.keys.kms_key_arn}),
    );
    tracing::info!(table, to = %updated.def.keys.kms_key_arn, "table switched to a new KMS key");
    Ok(())
}

/// [`rewrap_under_new_kms_key`] from already-unwrapped children.
async fn rewrap_under_new_kms_key_from(
    svc: &Services,
    new_key_arn: &str,
    children: &TableKeys,
    wrapped: &WrappedTableKeys,
    ks: &crate::crypto::keyring::Keyspace,
) -> Result<(WrappedTableKeys, crate::crypto::Key32), KeyJobError> {
    Ok(rewrap_under_new_kms_key(svc.kms.as_ref(), new_key_arn, children, wrapped, ks).await?)
}

/// Adds a data-key generation and makes it active for writes; returns its number. Older
/// generations keep opening their rows until re-encrypted and retired.
pub async fn rotate_data_key(svc: &Services, table: &str) -> Result<u32, KeyJobError> {
    let e = entry(svc, table)?;
    let _admin = e.keys.admin.lock().await;
    let e = entry(svc, table)?;
    let ks = e.def.keyspace;
    let tk = decrypt_table_key(svc.kms.as_ref(), &e.def.keys, &ks).await?;
    let pending = e.keys.take_encryptions();
    let mut new_gen = 0;
    // Phase 1: the new generation exists (every reader can open it) but is not used yet.
    let staged = update_keys(svc, table, e.def.keys.fingerprint(), |k| {
        let active = k.active_generation;
        if let Some(g) = k.generations.iter_mut().find(|g| g.generation == active) {
            g.encryptions = g.encryptions.saturating_add(pending);
        }
        new_gen = add_generation(&tk, k, &ks, false)?;
        Ok(())
    })
    .await
    .inspect_err(|_| e.keys.return_encryptions(pending))?;
    e.keys
        .install(&staged, unwrap_children(&tk, &staged, &ks)?)
        .await;
    tokio::time::sleep(ROTATE_SETTLE).await;
    // Phase 2: writes use it.
    let active = update_keys(svc, table, staged.fingerprint(), |k| {
        k.active_generation = new_gen;
        Ok(())
    })
    .await?;
    e.keys
        .install(&active, unwrap_children(&tk, &active, &ks)?)
        .await;
    drop(tk);
    svc.audit.record(
        "key_lifecycle",
        json!({"event": "RotateDataKey", "table": table, "generation": new_gen}),
    );
    tracing::info!(table, generation = new_gen, "data key rotated");
    Ok(new_gen)
}

/// Removes generation `generation`'s wrapped DEK (crypto-shred). Refused for the active
/// generation and while any row of the table still uses it.
pub async fn retire_generation(
    svc: &Services,
    table: &str,
    generation: u32,
) -> Result<(), KeyJobError> {
    let e = entry(svc, table)?;
    let _admin = e.keys.admin.lock().await;
    let e = entry(svc, table)?;
    let ks = e.def.keyspace;
    if e.def.keys.generation(generation).is_none() {
        return Err(KeyJobError::Invalid(format!(
            "table {table} has no data key generation {generation}"
        )));
    }
    if generation == e.def.keys.active_generation {
        return Err(KeyJobError::Refused(format!(
            "generation {generation} is the active data key of table {table}; rotate first"
        )));
    }
    let store = svc.store.clone();
    let counts = tokio::task::spawn_blocking(move || count_generations(store.as_ref(), &ks))
        .await
        .map_err(|e| KeyJobError::Task(e.to_string()))??;
    if let Some(c) = counts.get(&generation).filter(|c| c.total() > 0) {
        return Err(KeyJobError::Refused(format!(
            "generation {generation} of table {table} is still used by {} items, {} index entries and {} sort-index pages; run `sealdb keys reencrypt` first",
            c.items, c.index_rows, c.pages
        )));
    }
    let tk = decrypt_table_key(svc.kms.as_ref(), &e.def.keys, &ks).await?;
    let updated = update_keys(svc, table, e.def.keys.fingerprint(), |k| {
        k.generations.retain(|g| g.generation != generation);
        Ok(())
    })
    .await?;
    e.keys
        .install(&updated, unwrap_children(&tk, &updated, &ks)?)
        .await;
    drop(tk);
    svc.audit.record(
        "key_lifecycle",
        json!({"event": "RetireGeneration", "table": table, "generation": generation}),
    );
    tracing::info!(
        table,
        generation,
        "data key generation retired (its key destroyed)"
    );
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerationStatus {
    pub generation: u32,
    pub active: bool,
    pub created: f64,
    /// Approximate (persisted periodically, plus what this process counted since).
    pub encryptions: u64,
    pub items: u64,
    pub index_rows: u64,
    pub pages: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableStatus {
    pub table_name: String,
    pub kms_key_arn: String,
    pub kms_key_state: String,
    pub inaccessible_since: Option<f64>,
    pub cache_age_seconds: Option<f64>,
    pub active_generation: u32,
    pub generations: Vec<GenerationStatus>,
    /// Rows whose header names a generation the table no longer has (should be none).
    pub unknown_generation_rows: u64,
    pub reencrypt: Option<super::Progress>,
}

/// `sealdb keys status`: one entry per table (or the named one), plus whether key pages are
/// locked in RAM. Counting reads every row's clear header (no decryption): O(rows).
pub async fn status(
    svc: &Services,
    table: Option<&str>,
) -> Result<(Vec<TableStatus>, MlockStatus), KeyJobError> {
    let entries = match table {
        Some(t) => vec![entry(svc, t)?],
        None => {
            let mut v = svc.catalog.tables();
            v.sort_by(|a, b| a.def.name.cmp(&b.def.name));
            v
        }
    };
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        out.push(table_status(svc, &e).await?);
    }
    Ok((out, mlock_status()))
}

async fn table_status(svc: &Services, e: &TableEntry) -> Result<TableStatus, KeyJobError> {
    let w = &e.def.keys;
    let state = match svc.kms.describe_key(&w.kms_key_arn).await {
        Ok(info) => format!("{:?}", info.state),
        Err(err) => format!("Unknown ({err})"),
    };
    let store = svc.store.clone();
    let ks = e.def.keyspace;
    let counts: BTreeMap<u32, GenerationCounts> =
        tokio::task::spawn_blocking(move || count_generations(store.as_ref(), &ks))
            .await
            .map_err(|e| KeyJobError::Task(e.to_string()))??;
    let pending = e.keys.pending_encryptions();
    let generations = w
        .generations
        .iter()
        .map(|g| {
            let c = counts.get(&g.generation).copied().unwrap_or_default();
            let active = g.generation == w.active_generation;
            GenerationStatus {
                generation: g.generation,
                active,
                created: g.created,
                encryptions: g
                    .encryptions
                    .saturating_add(if active { pending } else { 0 }),
                items: c.items,
                index_rows: c.index_rows,
                pages: c.pages,
            }
        })
        .collect();
    let unknown_generation_rows = counts
        .iter()
        .filter(|(g, _)| w.generation(**g).is_none())
        .map(|(_, c)| c.total())
        .sum();
    Ok(TableStatus {
        table_name: e.def.name.clone(),
        kms_key_arn: w.kms_key_arn.clone(),
        kms_key_state: state,
        inaccessible_since: e.keys.inaccessible_since(),
        cache_age_seconds: e.keys.age().map(|a| a.as_secs_f64()),
        active_generation: w.active_generation,
        generations,
        unknown_generation_rows,
        reencrypt: super::reencrypt::progress_of(e),
    })
}

/// Background work of a serving process: resumes unfinished re-encryption jobs, persists the
/// encryption counts and applies the rotation policy. Stops when the services are dropped.
pub fn spawn_manager(svc: &Arc<Services>, config: KeysConfig) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(svc);
    let m = mlock_status();
    if m.all_locked() {
        tracing::info!(
            locked_pages = m.locked_pages,
            "key pages locked in RAM (mlock)"
        );
    } else {
        tracing::warn!(
            failures = m.failures,
            memlock_limit_bytes = ?m.limit_bytes,
            "some key pages could not be locked in RAM: raise RLIMIT_MEMLOCK (ulimit -l)"
        );
    }
    tokio::spawn(async move {
        if let Some(svc) = weak.upgrade() {
            for e in svc.catalog.tables() {
                let unfinished = e
                    .def
                    .keys
                    .reencrypt
                    .as_ref()
                    .is_some_and(|r| r.finished.is_none());
                if unfinished {
                    tracing::info!(table = %e.def.name, "resuming re-encryption job");
                    if let Err(err) =
                        super::reencrypt::resume(&svc, &e.def.name, config.clone()).await
                    {
                        tracing::warn!(table = %e.def.name, error = %err, "cannot resume re-encryption");
                    }
                }
            }
        }
        loop {
            tokio::time::sleep(config.check_interval()).await;
            let Some(svc) = weak.upgrade() else { return };
            for e in svc.catalog.tables() {
                if let Err(err) = tick(&svc, &e, &config).await {
                    tracing::warn!(table = %e.def.name, error = %err, "key policy check failed");
                }
            }
        }
    })
}

async fn tick(svc: &Services, e: &TableEntry, config: &KeysConfig) -> Result<(), KeyJobError> {
    let pending = e.keys.take_encryptions();
    let mut persisted = e
        .def
        .keys
        .generation(e.def.keys.active_generation)
        .map(|g| g.encryptions)
        .unwrap_or(0);
    if pending > 0 {
        let r = svc
            .catalog
            .update_table(&e.def.name, |def| {
                let active = def.keys.active_generation;
                if let Some(g) = def
                    .keys
                    .generations
                    .iter_mut()
                    .find(|g| g.generation == active)
                {
                    g.encryptions = g.encryptions.saturating_add(pending);
                    persisted = g.encryptions;
                }
                Ok::<(), CatalogError>(())
            })
            .await;
        if let Err(err) = r {
            e.keys.return_encryptions(pending);
            return Err(err.into());
        }
    }
    if e.keys.inaccessible_since().is_some() {
        return Ok(());
    }
    let Some(active) = e.def.keys.generation(e.def.keys.active_generation) else {
        return Ok(());
    };
    let age = crate::util::epoch_seconds_f64() - active.created;
    let too_old = config
        .rotate_max_age_secs
        .is_some_and(|max| age >= max as f64);
    let too_used = config
        .rotate_max_encryptions
        .is_some_and(|max| persisted >= max);
    if too_old || too_used {
        let why = if too_old { "age" } else { "encryptions" };
        let g = rotate_data_key(svc, &e.def.name).await?;
        tracing::info!(table = %e.def.name, generation = g, reason = why, "data key rotated by policy");
    }
    Ok(())
}
