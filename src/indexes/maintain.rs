//! Index maintenance: what one item change (old -> new) does to every secondary index.
//!
//! The changes are computed next to the base item's own write in `ops::commit::build`, so the
//! entries, their sort-index plans and the item land in one atomic `Store::commit`. The base
//! item's exact-bytes check serializes all writers of that item, and an entry's storage key
//! covers the base key, so only writers of that item ever write its entries: entries need no
//! checks of their own (the sort-index plans check their pages).

use super::def::IndexDef;
use crate::catalog::tables::TableDef;
use crate::crypto::keyring::TableKeys;
use crate::error::ApiError;
use crate::items::{self, ItemKey};
use crate::protocol::attr::{item_size, AttributeValue, Item};
use crate::storage::sort_index::{Entry, Token};

/// One change of index rows caused by an item change.
#[derive(Debug)]
pub enum IndexChange {
    /// An entry (new, or rewritten because its projection changed).
    Put { key: Vec<u8>, value: Vec<u8> },
    /// An entry that disappears (item deleted, index key changed or removed).
    Delete { key: Vec<u8> },
    /// A new entry's place in its index partition's sort index.
    SortUpsert {
        prefix: Vec<u8>,
        index: u8,
        entry: Entry,
    },
    /// A removed entry's place in its index partition's sort index.
    SortRemove {
        prefix: Vec<u8>,
        index: u8,
        sort_key: AttributeValue,
        token: Token,
    },
}

/// Per-index statistics deltas of one change (entries, bytes), applied after the commit.
#[derive(Debug, Clone, Copy)]
pub struct StatDelta {
    pub index: u8,
    pub items: i64,
    pub bytes: i64,
}

/// DynamoDB rejects a write whose index key attribute has the wrong type or an empty value;
/// an absent attribute just leaves the item out of that (sparse) index.
pub fn validate_item(def: &TableDef, item: &Item) -> Result<(), ApiError> {
    for idx in def.indexes.iter().filter(|i| i.maintained()) {
        for attr in std::iter::once(&idx.key_schema.hash).chain(idx.key_schema.range.iter()) {
            let Some(v) = item.get(&attr.name) else {
                continue;
            };
            if !attr.ty.matches(v) {
                return Err(ApiError::validation(format!(
                    "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                    attr.name,
                    attr.ty.as_str(),
                    v.type_name(),
                    idx.name
                )));
            }
            let empty = match v {
                AttributeValue::S(s) => s.is_empty().then_some("string"),
                AttributeValue::B(b) => b.is_empty().then_some("binary"),
                _ => None,
            };
            if let Some(kind) = empty {
                return Err(ApiError::validation(format!(
                    "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty {kind} value. IndexName: {}, IndexKey: {}",
                    idx.name, attr.name
                )));
            }
            super::check_key_size(idx, attr, v)?;
        }
    }
    Ok(())
}

fn malformed() -> ApiError {
    ApiError::Internal("malformed index storage key".into())
}

/// Appends the index changes of `base` going from `old` to `new` (None: absent) to `out`, and
/// the statistics deltas to `stats`.
pub fn changes(
    keys: &TableKeys,
    def: &TableDef,
    base: &ItemKey,
    old: Option<&Item>,
    new: Option<&Item>,
    out: &mut Vec<IndexChange>,
    stats: &mut Vec<StatDelta>,
) -> Result<(), ApiError> {
    for idx in def.indexes.iter().filter(|i| i.maintained()) {
        one_index(keys, def, idx, base, old, new, out, stats)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn one_index(
    keys: &TableKeys,
    def: &TableDef,
    idx: &IndexDef,
    base: &ItemKey,
    old: Option<&Item>,
    new: Option<&Item>,
    out: &mut Vec<IndexChange>,
    stats: &mut Vec<StatDelta>,
) -> Result<(), ApiError> {
    let old_k = old.and_then(|o| idx.key_of(o));
    let new_k = new.and_then(|n| idx.key_of(n));
    if old_k.is_none() && new_k.is_none() {
        return Ok(());
    }
    let storage = |k: &(AttributeValue, Option<AttributeValue>)| {
        items::index_storage_key(keys, idx.id, &k.0, k.1.as_ref(), base)
    };
    let old_at = old_k.as_ref().map(storage).transpose()?;
    let new_at = new_k.as_ref().map(storage).transpose()?;
    let moved = old_at != new_at;
    let old_proj = old
        .filter(|_| old_k.is_some())
        .map(|o| idx.project(&def.key_schema, o));
    let new_proj = new
        .filter(|_| new_k.is_some())
        .map(|n| idx.project(&def.key_schema, n));
    let mut delta = StatDelta {
        index: idx.id,
        items: 0,
        bytes: 0,
    };
    if let (Some(at), Some((_, old_sk)), true) = (&old_at, &old_k, moved) {
        out.push(IndexChange::Delete { key: at.clone() });
        if let Some(sk) = old_sk {
            out.push(IndexChange::SortRemove {
                prefix: at
                    .get(..items::PARTITION_PREFIX_LEN)
                    .ok_or_else(malformed)?
                    .to_vec(),
                index: idx.id,
                sort_key: sk.clone(),
                token: items::item_token_of(at).ok_or_else(malformed)?,
            });
        }
        delta.items -= 1;
    }
    if let Some(p) = &old_proj {
        delta.bytes -= item_size(p) as i64;
    }
    if let (Some(at), Some((_, new_sk)), Some(proj)) = (&new_at, &new_k, &new_proj) {
        delta.bytes += item_size(proj) as i64;
        // Same place and same projected attributes: the stored entry is already right.
        if moved || old_proj.as_ref() != Some(proj) {
            let (value, seq) = items::seal_versioned(keys, idx.id, at, proj)?;
            out.push(IndexChange::Put {
                key: at.clone(),
                value,
            });
            if let (true, Some(sk)) = (moved, new_sk) {
                out.push(IndexChange::SortUpsert {
                    prefix: at
                        .get(..items::PARTITION_PREFIX_LEN)
                        .ok_or_else(malformed)?
                        .to_vec(),
                    index: idx.id,
                    entry: Entry {
                        sort_key: sk.clone(),
                        item_token: items::item_token_of(at).ok_or_else(malformed)?,
                        write_seq: seq,
                    },
                });
            }
        }
        if moved {
            delta.items += 1;
        }
    }
    stats.push(delta);
    Ok(())
}
