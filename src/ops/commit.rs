//! The one commit builder of every write path (PutItem, UpdateItem, DeleteItem, batches,
//! transactions): item checks and writes plus the sort-index plans of the partitions they
//! touch, so that an item and its index entry land in the same `Store::commit` or not at all.
//!
//! The index changes only when an item appears or disappears: an overwrite keeps the entry
//! (its sort key and token cannot change, as both are the item's key), so updates of existing
//! items never touch index pages and do not contend with other writers of the partition.
//! Every item write checks the exact sealed bytes it read (or absence), so "the entry exists
//! iff the item exists" holds after every commit.
//!
//! Secondary indexes (crate::indexes) are maintained here too: the old item (opened from the
//! bytes read) and the new one give each index's entry changes and their sort-index changes,
//! which join the same commit; LSI item collections are checked against their size limit.

use std::collections::BTreeMap;

use serde_json::json;

use super::Services;
use crate::catalog::tables::TableEntry;
use crate::crypto::keyring::Keyspace;
use crate::crypto::keyring::TableKeys;
use crate::error::ApiError;
use crate::indexes::maintain::{self, IndexChange, StatDelta};
use crate::indexes::{collection, gate, stats as index_stats};
use crate::items::{self, IndexPages, ItemKey, KeyedAt, BASE_INDEX, PARTITION_PREFIX_LEN};
use crate::protocol::attr::{item_size, AttributeValue, Item};
use crate::storage::sort_index::{self, Change, Entry, PartitionRef, Position, SortIndexError};
use crate::storage::{Check, CommitError, Space, Write};

/// A single-item write retries this often when another writer changed the item (or its
/// partition's index pages) between our read and our commit; each retry means someone else
/// made progress.
pub const MAX_WRITE_ATTEMPTS: usize = 64;

/// What a commit does to one item.
pub enum Effect<'a> {
    Put(&'a Item),
    Delete,
    /// ConditionCheck: only the read is checked.
    Check,
}

/// One item's part in a commit: where it lives, the sealed bytes read (the check), the effect.
pub struct Staged<'a> {
    pub entry: &'a TableEntry,
    pub keys: &'a TableKeys,
    pub key: ItemKey,
    pub sk: Vec<u8>,
    pub read: Option<Vec<u8>>,
    pub effect: Effect<'a>,
}

/// Sort-index failures as wire errors: damaged or moved pages are integrity failures.
pub fn index_error(e: SortIndexError) -> ApiError {
    match e {
        SortIndexError::Integrity | SortIndexError::Corrupt(_) | SortIndexError::Inconsistent => {
            ApiError::Integrity
        }
        SortIndexError::Store(s) => s.into(),
        other => ApiError::Internal(other.to_string()),
    }
}

/// The changes of one partition's index (one `plan` call per partition).
struct Group<'a> {
    keys: &'a TableKeys,
    index: u8,
    upserts: Vec<Entry>,
    removes: Vec<(AttributeValue, [u8; 16])>,
}

fn group<'g, 'a>(
    groups: &'g mut BTreeMap<Vec<u8>, Group<'a>>,
    prefix: Vec<u8>,
    keys: &'a TableKeys,
    index: u8,
) -> &'g mut Group<'a> {
    groups.entry(prefix).or_insert_with(|| Group {
        keys,
        index,
        upserts: Vec::new(),
        removes: Vec::new(),
    })
}

/// What a commit changes beyond its rows, applied once it landed: index statistics and LSI
/// item-collection sizes.
#[derive(Default)]
struct After {
    stats: Vec<(Keyspace, StatDelta)>,
    collections: Vec<(Vec<u8>, i64)>,
}

impl After {
    fn apply(&self) {
        for (ks, d) in &self.stats {
            index_stats::of(ks, d.index).adjust(d.items, d.bytes);
        }
        for (prefix, delta) in &self.collections {
            collection::adjust(prefix, *delta);
        }
    }
}

/// Builds the checks and writes of one atomic commit.
pub fn build(svc: &Services, staged: &[Staged<'_>]) -> Result<(Vec<Check>, Vec<Write>), ApiError> {
    build_all(svc, staged).map(|(c, w, _)| (c, w))
}

/// The secondary-index part of one staged item change: entry writes, sort-index changes
/// (into `groups`), statistics and the LSI collection check.
fn stage_indexes<'a>(
    svc: &Services,
    def: &crate::catalog::tables::TableDef,
    s: &Staged<'a>,
    prefix: &[u8],
    writes: &mut Vec<Write>,
    groups: &mut BTreeMap<Vec<u8>, Group<'a>>,
    after: &mut After,
) -> Result<(), ApiError> {
    let new = match &s.effect {
        Effect::Put(item) => Some(*item),
        Effect::Delete if s.read.is_some() => None,
        _ => return Ok(()),
    };
    if let Some(item) = new {
        maintain::validate_item(def, item)?;
    }
    let old = match &s.read {
        Some(bytes) => Some(open_item(svc, s.keys, s.entry, &s.sk, bytes)?),
        None => None,
    };
    let mut changes = Vec::new();
    let mut deltas = Vec::new();
    maintain::changes(
        s.keys,
        def,
        &s.key,
        old.as_ref(),
        new,
        &mut changes,
        &mut deltas,
    )?;
    for c in changes {
        match c {
            IndexChange::Put { key, value } => writes.push(Write::Put {
                space: Space::Items,
                key,
                value,
            }),
            IndexChange::Delete { key } => writes.push(Write::Delete {
                space: Space::Items,
                key,
            }),
            IndexChange::SortUpsert {
                prefix,
                index,
                entry,
            } => group(groups, prefix, s.keys, index).upserts.push(entry),
            IndexChange::SortRemove {
                prefix,
                index,
                sort_key,
                token,
            } => group(groups, prefix, s.keys, index)
                .removes
                .push((sort_key, token)),
        }
    }
    if collection::has_lsi(def) {
        let lsi_bytes: i64 = deltas
            .iter()
            .filter(|d| {
                def.indexes
                    .iter()
                    .any(|i| i.id == d.index && i.kind == crate::indexes::IndexKind::Local)
            })
            .map(|d| d.bytes)
            .sum();
        let delta = new.map(item_size).unwrap_or(0) as i64
            - old.as_ref().map(item_size).unwrap_or(0) as i64
            + lsi_bytes;
        if delta > 0 {
            let current = collection::size(svc.store.as_ref(), s.keys, def, &s.key.pk)?;
            collection::check_limit(current, delta, collection::MAX_ITEM_COLLECTION_BYTES)?;
        }
        after.collections.push((prefix.to_vec(), delta));
    }
    after
        .stats
        .extend(deltas.into_iter().map(|d| (def.keyspace, d)));
    Ok(())
}

fn build_all(
    svc: &Services,
    staged: &[Staged<'_>],
) -> Result<(Vec<Check>, Vec<Write>, After), ApiError> {
    let mut after = After::default();
    let mut checks = Vec::with_capacity(staged.len());
    let mut writes = Vec::with_capacity(staged.len());
    let mut groups: BTreeMap<Vec<u8>, Group<'_>> = BTreeMap::new();
    for s in staged {
        checks.push(Check {
            space: Space::Items,
            key: s.sk.clone(),
            expect: s.read.clone(),
        });
        let indexed = s.entry.def.key_schema.range.is_some();
        let token = items::item_token_of(&s.sk)
            .ok_or_else(|| ApiError::Internal("malformed storage key".into()))?;
        let prefix =
            s.sk.get(..PARTITION_PREFIX_LEN)
                .ok_or_else(|| ApiError::Internal("malformed storage key".into()))?
                .to_vec();
        // The catalog's current indexes, not those of the (possibly older) entry the request
        // started with: an index added or dropped online (ops::index_admin) takes effect for
        // every commit that starts after the change (see `indexes::gate`).
        let live = svc
            .catalog
            .table(&s.entry.def.name)
            .filter(|e| e.def.keyspace == s.entry.def.keyspace);
        let def = live.as_ref().map(|e| &e.def).unwrap_or(&s.entry.def);
        if !def.indexes.is_empty() {
            stage_indexes(svc, def, s, &prefix, &mut writes, &mut groups, &mut after)?;
        }
        match &s.effect {
            Effect::Put(item) => {
                let (value, seq) = items::seal_versioned(s.keys, BASE_INDEX, &s.sk, item)?;
                writes.push(Write::Put {
                    space: Space::Items,
                    key: s.sk.clone(),
                    value,
                });
                if indexed && s.read.is_none() {
                    if let Some(sort_key) = s.key.sk.clone() {
                        group(&mut groups, prefix, s.keys, BASE_INDEX)
                            .upserts
                            .push(Entry {
                                sort_key,
                                item_token: token,
                                write_seq: seq,
                            });
                    }
                }
            }
            Effect::Delete => {
                if s.read.is_some() {
                    writes.push(Write::Delete {
                        space: Space::Items,
                        key: s.sk.clone(),
                    });
                    if let (true, Some(sort_key)) = (indexed, s.key.sk.clone()) {
                        group(&mut groups, prefix, s.keys, BASE_INDEX)
                            .removes
                            .push((sort_key, token));
                    }
                }
            }
            Effect::Check => {}
        }
    }
    for (prefix, g) in &groups {
        let mut changes: Vec<Change<'_>> = g.upserts.iter().map(Change::Upsert).collect();
        changes.extend(g.removes.iter().map(|(sk, t)| {
            Change::Remove(Position {
                sort_key: sk,
                item_token: t,
            })
        }));
        let crypto = IndexPages {
            keys: g.keys,
            index: g.index,
        };
        let plan = sort_index::plan(
            svc.store.as_ref(),
            &crypto,
            &PartitionRef { prefix },
            &changes,
        )
        .map_err(|e| {
            svc.audit.record(
                "integrity",
                json!({"what": "sort index", "error": e.to_string()}),
            );
            index_error(e)
        })?;
        checks.extend(plan.checks);
        writes.extend(plan.writes);
    }
    Ok((checks, writes, after))
}

/// Commits what [`build`] built. `Ok(false)`: a check failed (someone else wrote): re-read
/// and re-decide. Blocking: for callers on the blocking pool or their own threads.
pub fn commit(svc: &Services, staged: &[Staged<'_>]) -> Result<bool, ApiError> {
    // Held from reading the catalog's index set (in `build_all`) until the commit landed.
    let gates = gate::Held::new(staged.iter().map(|s| s.entry.def.keyspace));
    let _shared = gates.read();
    let Some(b) = built(svc, staged)? else {
        return Ok(true);
    };
    landed(svc.store.commit(&b.checks, &b.writes), &b.after)
}

/// [`commit`] for the request path: waits for durability without holding a thread.
pub async fn commit_async(svc: &Services, staged: &[Staged<'_>]) -> Result<bool, ApiError> {
    let (pending, after) = {
        // The gates are held while the commit is built and submitted, not while it is awaited:
        // `indexes::gate::drain` is followed by `Store::flush_commits`, which waits for every
        // commit submitted before it, so "landed or failed" still holds once the drain returns.
        let gates = gate::Held::new(staged.iter().map(|s| s.entry.def.keyspace));
        let _shared = gates.read();
        let Some(b) = built(svc, staged)? else {
            return Ok(true);
        };
        (svc.store.commit_async(b.checks, b.writes), b.after)
    };
    landed(pending.await, &after)
}

/// One commit, ready for the store.
struct Built {
    checks: Vec<Check>,
    writes: Vec<Write>,
    after: After,
}

/// The commit of `staged`, or `None` for a pure check (a consistent read is all it needs).
fn built(svc: &Services, staged: &[Staged<'_>]) -> Result<Option<Built>, ApiError> {
    let (checks, writes, after) = build_all(svc, staged)?;
    if writes.is_empty() && staged.iter().all(|s| matches!(s.effect, Effect::Check)) {
        return Ok(None);
    }
    Ok(Some(Built {
        checks,
        writes,
        after,
    }))
}

fn landed(outcome: Result<(), CommitError>, after: &After) -> Result<bool, ApiError> {
    match outcome {
        Ok(()) => {
            after.apply();
            Ok(true)
        }
        Err(CommitError::Conflict { .. }) => Ok(false),
        Err(CommitError::Store(e)) => Err(e.into()),
    }
}

/// Table statistics after a committed change of one item.
pub fn account(entry: &TableEntry, old: Option<&Item>, new: Option<&Item>) {
    let old_size = old.map(item_size).unwrap_or(0) as i64;
    let new_size = new.map(item_size).unwrap_or(0) as i64;
    entry.stats.adjust(
        i64::from(new.is_some()) - i64::from(old.is_some()),
        new_size - old_size,
    );
}

/// Reads and opens the current item at a storage key computed from its primary key.
pub fn read_keyed(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    at: &KeyedAt<'_>,
) -> Result<(Option<Vec<u8>>, Option<Item>), ApiError> {
    let sealed = svc.store.get(Space::Items, at.storage_key())?;
    let item = match &sealed {
        Some(bytes) => Some(
            at.open(keys, &entry.def, bytes)
                .map_err(|e| integrity_failure(svc, entry, at.storage_key(), e))?,
        ),
        None => None,
    };
    Ok((sealed, item))
}

/// Opens sealed item bytes; failures are audited with where they happened.
pub fn open_item(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    sk: &[u8],
    bytes: &[u8],
) -> Result<Item, ApiError> {
    items::open(keys, &entry.def, BASE_INDEX, sk, bytes)
        .map_err(|e| integrity_failure(svc, entry, sk, e))
}

fn integrity_failure(
    svc: &Services,
    entry: &TableEntry,
    sk: &[u8],
    e: items::ItemsError,
) -> ApiError {
    svc.audit.record(
        "integrity",
        json!({"table": entry.def.name, "keyspace": hex::encode(entry.def.keyspace),
               "storage_key": hex::encode(sk), "error": e.to_string()}),
    );
    ApiError::from(e)
}

/// One attempt of a single-item write: what was read, and what `decide` made of it.
struct Attempt {
    sealed: Option<Vec<u8>>,
    old: Option<Item>,
    new: Option<Item>,
}

impl Attempt {
    fn read(
        svc: &Services,
        keys: &TableKeys,
        entry: &TableEntry,
        at: &KeyedAt<'_>,
        decide: &mut impl FnMut(Option<&Item>) -> Result<Option<Item>, ApiError>,
    ) -> Result<Attempt, ApiError> {
        let (sealed, old) = read_keyed(svc, keys, entry, at)?;
        let new = decide(old.as_ref())?;
        Ok(Attempt { sealed, old, new })
    }

    /// Deleting an absent item writes nothing.
    fn is_noop(&self) -> bool {
        self.new.is_none() && self.sealed.is_none()
    }

    /// The commit of this attempt. The sealed bytes read move into its check (a retry reads
    /// afresh), so the item is not copied once more on the write path.
    fn staged<'a>(
        &'a mut self,
        entry: &'a TableEntry,
        keys: &'a TableKeys,
        key: &ItemKey,
        sk: &[u8],
    ) -> [Staged<'a>; 1] {
        let Attempt { sealed, new, .. } = self;
        [Staged {
            entry,
            keys,
            key: key.clone(),
            sk: sk.to_vec(),
            read: sealed.take(),
            effect: match new {
                Some(item) => Effect::Put(item),
                None => Effect::Delete,
            },
        }]
    }

    fn finish(self, entry: &TableEntry) -> (Option<Item>, Option<Item>) {
        account(entry, self.old.as_ref(), self.new.as_ref());
        (self.old, self.new)
    }
}

fn write_conflict() -> ApiError {
    ApiError::TransactionConflict("Transaction is ongoing for the item".into())
}

/// One conditional single-item write: `decide` sees the current item and returns the new one
/// (None = delete) or an error; the commit only lands if the item (and the index pages its
/// plan read) did not change meanwhile. Returns (old, new). Blocking.
pub fn write_item(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    key: &ItemKey,
    mut decide: impl FnMut(Option<&Item>) -> Result<Option<Item>, ApiError>,
) -> Result<(Option<Item>, Option<Item>), ApiError> {
    let at = KeyedAt::new(keys, BASE_INDEX, key)?;
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let mut a = Attempt::read(svc, keys, entry, &at, &mut decide)?;
        if a.is_noop() {
            return Ok((None, None));
        }
        if commit(svc, &a.staged(entry, keys, key, at.storage_key()))? {
            return Ok(a.finish(entry));
        }
    }
    Err(write_conflict())
}

/// [`write_item`] for the request path (PutItem, UpdateItem, DeleteItem). The read and the
/// sealing run inline, like GetItem's read (memtable or block cache, microseconds; a hand-off
/// to the blocking pool costs more); the commit is awaited without holding a thread.
pub async fn write_item_async(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    key: &ItemKey,
    mut decide: impl FnMut(Option<&Item>) -> Result<Option<Item>, ApiError>,
) -> Result<(Option<Item>, Option<Item>), ApiError> {
    let at = KeyedAt::new(keys, BASE_INDEX, key)?;
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let mut a = Attempt::read(svc, keys, entry, &at, &mut decide)?;
        if a.is_noop() {
            return Ok((None, None));
        }
        if commit_async(svc, &a.staged(entry, keys, key, at.storage_key())).await? {
            return Ok(a.finish(entry));
        }
    }
    Err(write_conflict())
}
