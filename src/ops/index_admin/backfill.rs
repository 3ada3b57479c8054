//! The background worker of online GSI changes: backfills CREATING indexes (resumably: the
//! cursor is persisted in the index definition after every page) and removes DELETING ones.
//!
//! A backfill writes, for each base row, the entry the index maintenance would have written,
//! in a commit that checks the row's exact sealed bytes: a concurrent writer (which maintains
//! the CREATING index itself) either committed before the read, or makes the commit fail and
//! the row is read again. The sort index's upsert is idempotent and removing an absent entry
//! changes nothing, so writers and the backfill can meet on any row in either order.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::catalog::tables::TableEntry;
use crate::crypto::keyring::{Keyspace, TableKeys};
use crate::error::ApiError;
use crate::indexes::{self, stats as index_stats, IndexDef, IndexKind, IndexStatus};
use crate::items::{self, IndexPages, ItemKey, BASE_INDEX, PARTITION_PREFIX_LEN};
use crate::ops::commit::{index_error, open_item, MAX_WRITE_ATTEMPTS};
use crate::ops::{blocking, Services};
use crate::protocol::attr::AttributeValue;
use crate::storage::sort_index::{self, Change, Entry, PartitionRef};
use crate::storage::{Check, CommitError, Space, Write};

/// Base rows per backfill commit and per persisted cursor (ours: small enough that a commit
/// stays well under a millisecond of sealing, large enough to amortize the catalog write).
const BACKFILL_PAGE: usize = 100;
/// The worker also looks for work this often, in case a wake-up came from another process
/// state (a restart resumes without one).
const POLL: Duration = Duration::from_secs(2);

fn notify() -> &'static Notify {
    static N: OnceLock<Notify> = OnceLock::new();
    N.get_or_init(Notify::new)
}

type Pending = Mutex<HashSet<(Keyspace, String)>>;

/// Indexes whose UpdateTable still waits for requests holding the previous definition: the
/// worker leaves them alone until then.
fn pending() -> &'static Pending {
    static P: OnceLock<Pending> = OnceLock::new();
    P.get_or_init(|| Mutex::new(HashSet::new()))
}

fn is_pending(ks: &Keyspace, name: &str) -> bool {
    pending()
        .lock()
        .map(|p| p.contains(&(*ks, name.to_string())))
        .unwrap_or(false)
}

/// Holds indexes out of the worker's reach while it lives.
pub(super) struct PendingGuard(Vec<(Keyspace, String)>);

impl PendingGuard {
    pub(super) fn new(ks: Keyspace, names: Vec<String>) -> PendingGuard {
        let entries: Vec<(Keyspace, String)> = names.into_iter().map(|n| (ks, n)).collect();
        if let Ok(mut p) = pending().lock() {
            p.extend(entries.iter().cloned());
        }
        PendingGuard(entries)
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Ok(mut p) = pending().lock() {
            for e in &self.0 {
                p.remove(e);
            }
        }
    }
}

/// Wakes every worker of this process (each looks at its own catalog).
pub fn wake() {
    notify().notify_waiters();
}

/// Starts the worker: a pass at once (resuming work a restart interrupted), then one per
/// wake-up or [`POLL`]. Runs until the services are dropped or the handle is aborted.
pub fn spawn_worker(svc: &Arc<Services>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(svc);
    tokio::spawn(async move {
        loop {
            let notified = notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let Some(svc) = weak.upgrade() else { return };
                run_once(&svc).await;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    })
}

/// One pass over every table's CREATING and DELETING global indexes.
pub async fn run_once(svc: &Arc<Services>) {
    // Names only: holding table entries would hold up UpdateTable's drain.
    let mut work: Vec<(String, String, IndexStatus)> = Vec::new();
    for entry in svc.catalog.tables() {
        work.extend(
            entry
                .def
                .indexes
                .iter()
                .filter(|i| i.kind == IndexKind::Global)
                .filter(|i| matches!(i.status, IndexStatus::Creating | IndexStatus::Deleting))
                .filter(|i| !is_pending(&entry.def.keyspace, &i.name))
                .map(|i| (entry.def.name.clone(), i.name.clone(), i.status)),
        );
    }
    for (table, name, status) in work {
        let r = match status {
            IndexStatus::Creating => backfill_index(svc, &table, &name).await,
            _ => drop_index(svc, &table, &name).await,
        };
        // A table whose key is unavailable (KMS down) is retried on a later pass.
        if let Err(e) = r {
            tracing::warn!(table = %table, index = %name, error = %e, "index job deferred");
        }
    }
}

fn current(entry: &TableEntry, name: &str, status: IndexStatus) -> Option<IndexDef> {
    entry
        .def
        .indexes
        .iter()
        .find(|i| i.name == name && i.status == status)
        .cloned()
}

/// Backfills one CREATING index to the end, then makes it ACTIVE.
async fn backfill_index(svc: &Arc<Services>, table: &str, name: &str) -> Result<(), ApiError> {
    svc.catalog
        .update_table(table, |def| {
            if let Some(i) = def
                .indexes
                .iter_mut()
                .find(|i| i.name == name && i.status == IndexStatus::Creating)
            {
                i.backfilling = true;
            }
            Ok::<(), ApiError>(())
        })
        .await?;
    loop {
        let entry = svc.table(table)?;
        // Deleted (or the table replaced) meanwhile: nothing more to do here.
        let Some(idx) = current(&entry, name, IndexStatus::Creating) else {
            return Ok(());
        };
        let keys = svc.table_keys(&entry).await?;
        let ks = entry.def.keyspace;
        let mut start = ks.to_vec();
        start.push(BASE_INDEX);
        if let Some(c) = idx
            .backfill_cursor
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
        {
            start = c;
        }
        let (svc2, idx2) = (svc.clone(), idx.clone());
        let (next, done) =
            blocking(move || backfill_page(&svc2, &keys, &entry, &idx2, &start)).await?;
        svc.catalog
            .update_table(table, |def| {
                if let Some(i) = def
                    .indexes
                    .iter_mut()
                    .find(|i| i.name == name && i.id == idx.id && i.status == IndexStatus::Creating)
                {
                    if done {
                        i.status = IndexStatus::Active;
                        i.backfilling = false;
                        i.backfill_cursor = None;
                    } else {
                        i.backfill_cursor = Some(hex::encode(&next));
                    }
                }
                Ok::<(), ApiError>(())
            })
            .await?;
        if done {
            // Writers and the backfill both counted some entries: count them again.
            index_stats::forget(&ks, idx.id);
            svc.audit.record(
                "index",
                serde_json::json!({"table": table, "index": name, "event": "backfilled"}),
            );
            return Ok(());
        }
    }
}

/// One page of base rows from `start`: (where the next page starts, whether this was the last).
fn backfill_page(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    idx: &IndexDef,
    start: &[u8],
) -> Result<(Vec<u8>, bool), ApiError> {
    let ks = entry.def.keyspace;
    let mut end = ks.to_vec();
    end.push(BASE_INDEX + 1);
    let page = svc
        .store
        .scan(Space::Items, start, Some(&end), false, BACKFILL_PAGE)?;
    // The whole page in one commit; if a writer got in between, row by row.
    if !commit_rows(svc, keys, entry, idx, &page.entries)? {
        for (sk, sealed) in &page.entries {
            backfill_row(svc, keys, entry, idx, sk, sealed.clone())?;
        }
    }
    let next = match page.entries.last() {
        Some((k, _)) => {
            let mut n = k.clone();
            n.push(0);
            n
        }
        None => start.to_vec(),
    };
    Ok((next, !page.more))
}

fn backfill_row(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    idx: &IndexDef,
    sk: &[u8],
    mut sealed: Vec<u8>,
) -> Result<(), ApiError> {
    for _ in 0..MAX_WRITE_ATTEMPTS {
        if commit_rows(svc, keys, entry, idx, &[(sk.to_vec(), sealed.clone())])? {
            return Ok(());
        }
        match svc.store.get(Space::Items, sk)? {
            Some(b) => sealed = b,
            // Deleted by a writer, which also removed any entry.
            None => return Ok(()),
        }
    }
    Err(ApiError::TransactionConflict(
        "backfill: the item kept changing".into(),
    ))
}

/// An index entry to write: (storage key, sealed entry, sort-index place).
type EntryWrite = (Vec<u8>, Vec<u8>, Option<(Vec<u8>, Entry)>);

fn is_empty_key(v: &AttributeValue) -> bool {
    match v {
        AttributeValue::S(s) => s.is_empty(),
        AttributeValue::B(b) => b.is_empty(),
        _ => false,
    }
}

/// The entry of one base row, or None when the item is not in this (sparse) index. Items
/// whose index key DynamoDB could not index (empty or oversized values, written before the
/// index existed) are left out, as DynamoDB's backfill does.
fn entry_of(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    idx: &IndexDef,
    sk: &[u8],
    sealed: &[u8],
) -> Result<Option<EntryWrite>, ApiError> {
    let item = open_item(svc, keys, entry, sk, sealed)?;
    let Some((h, r)) = idx.key_of(&item) else {
        return Ok(None);
    };
    if is_empty_key(&h) || r.as_ref().is_some_and(is_empty_key) {
        return Ok(None);
    }
    if indexes::check_key_size(idx, &idx.key_schema.hash, &h).is_err() {
        return Ok(None);
    }
    if let (Some(ra), Some(rv)) = (&idx.key_schema.range, &r) {
        if indexes::check_key_size(idx, ra, rv).is_err() {
            return Ok(None);
        }
    }
    let def = &entry.def;
    let malformed = || ApiError::Internal("base row without its key".into());
    let base = ItemKey {
        pk: item
            .get(&def.key_schema.hash.name)
            .cloned()
            .ok_or_else(malformed)?,
        sk: match &def.key_schema.range {
            Some(ra) => Some(item.get(&ra.name).cloned().ok_or_else(malformed)?),
            None => None,
        },
    };
    let at = items::index_storage_key(keys, idx.id, &h, r.as_ref(), &base)?;
    let proj = idx.project(&def.key_schema, &item);
    let (value, seq) = items::seal_versioned(keys, idx.id, &at, &proj)?;
    let sort = match r {
        Some(sort_key) => {
            let bad = || ApiError::Internal("malformed index storage key".into());
            Some((
                at.get(..PARTITION_PREFIX_LEN).ok_or_else(bad)?.to_vec(),
                Entry {
                    sort_key,
                    item_token: items::item_token_of(&at).ok_or_else(bad)?,
                    write_seq: seq,
                },
            ))
        }
        None => None,
    };
    Ok(Some((at, value, sort)))
}

/// Writes the entries of `rows` in one commit that checks each indexed row is unchanged.
/// `Ok(false)`: a check failed (a writer got in between).
fn commit_rows(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    idx: &IndexDef,
    rows: &[(Vec<u8>, Vec<u8>)],
) -> Result<bool, ApiError> {
    let mut checks = Vec::new();
    let mut writes = Vec::new();
    let mut groups: BTreeMap<Vec<u8>, Vec<Entry>> = BTreeMap::new();
    for (sk, sealed) in rows {
        let Some((at, value, sort)) = entry_of(svc, keys, entry, idx, sk, sealed)? else {
            continue;
        };
        checks.push(Check {
            space: Space::Items,
            key: sk.clone(),
            expect: Some(sealed.clone()),
        });
        writes.push(Write::Put {
            space: Space::Items,
            key: at,
            value,
        });
        if let Some((prefix, e)) = sort {
            groups.entry(prefix).or_default().push(e);
        }
    }
    if writes.is_empty() {
        return Ok(true);
    }
    let crypto = IndexPages {
        keys,
        index: idx.id,
    };
    for (prefix, entries) in &groups {
        let changes: Vec<Change<'_>> = entries.iter().map(Change::Upsert).collect();
        let plan = sort_index::plan(
            svc.store.as_ref(),
            &crypto,
            &PartitionRef { prefix },
            &changes,
        )
        .map_err(index_error)?;
        checks.extend(plan.checks);
        writes.extend(plan.writes);
    }
    match svc.store.commit(&checks, &writes) {
        Ok(()) => Ok(true),
        Err(CommitError::Conflict { .. }) => Ok(false),
        Err(CommitError::Store(e)) => Err(e.into()),
    }
}

/// Removes a DELETING index's entries and sort-index pages, then its definition.
async fn drop_index(svc: &Arc<Services>, table: &str, name: &str) -> Result<(), ApiError> {
    let entry = svc.table(table)?;
    let Some(idx) = current(&entry, name, IndexStatus::Deleting) else {
        return Ok(());
    };
    let ks = entry.def.keyspace;
    let mut prefix = ks.to_vec();
    prefix.push(idx.id);
    let end = indexes::prefix_end(&prefix);
    let store = svc.store.clone();
    blocking(move || {
        store.delete_range(Space::Items, &prefix, &end)?;
        store.delete_range(Space::SortIndex, &prefix, &end)?;
        Ok(())
    })
    .await?;
    svc.catalog
        .update_table(table, |def| {
            def.indexes.retain(|i| {
                !(i.name == name && i.id == idx.id && i.status == IndexStatus::Deleting)
            });
            // DynamoDB drops the definitions only that index used.
            let (schema, others) = (def.key_schema.clone(), def.indexes.clone());
            def.attribute_definitions.retain(|a| {
                indexes::def::is_key_attr(&schema, &a.name)
                    || others
                        .iter()
                        .any(|i| indexes::def::is_key_attr(&i.key_schema, &a.name))
            });
            Ok::<(), ApiError>(())
        })
        .await?;
    index_stats::forget(&ks, idx.id);
    Ok(())
}
