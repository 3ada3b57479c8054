//! Item collections of tables with local secondary indexes: a partition key value's base
//! items plus their LSI entries. DynamoDB caps one collection at 10 GB and reports its size
//! (ReturnItemCollectionMetrics=SIZE) as a range in GB.
//!
//! Sizes are kept in a bounded in-memory cache keyed by the partition's storage prefix (a
//! token, never the key value), counted from storage on a miss (one pass over the partition
//! and its LSI partitions) and adjusted by every committed write. Like DynamoDB's
//! SizeEstimateRangeGB, the figure is an estimate.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};

use super::def::IndexKind;
use crate::catalog::tables::TableDef;
use crate::crypto::keyring::TableKeys;
use crate::error::ApiError;
use crate::items::{self, BASE_INDEX};
use crate::protocol::attr::AttributeValue;
use crate::storage::{Space, Store};

/// DynamoDB: "The maximum size of any item collection for a table which has one or more
/// local secondary indexes is 10 GB" (Developer Guide, Item collection size limit).
pub const MAX_ITEM_COLLECTION_BYTES: i64 = 10 * 1024 * 1024 * 1024;
/// Partitions whose size we remember (our choice: ~64 bytes each, a few MB at most); past it
/// the cache starts over and sizes are recounted on demand.
const CACHE_MAX: usize = 100_000;
const GB: f64 = 1024.0 * 1024.0 * 1024.0;

type Cache = Mutex<HashMap<Vec<u8>, i64>>;

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

pub fn has_lsi(def: &TableDef) -> bool {
    def.indexes
        .iter()
        .any(|i| i.kind == IndexKind::Local && i.maintained())
}

fn prefix_bytes(store: &dyn Store, prefix: &[u8]) -> Result<i64, ApiError> {
    let end = super::prefix_end(prefix);
    let mut start = prefix.to_vec();
    let mut total = 0i64;
    loop {
        let page = store.scan(Space::Items, &start, Some(&end), false, 1024)?;
        for (_, v) in &page.entries {
            total = total.saturating_add(items::approx_plain_len(v) as i64);
        }
        match (page.more, page.entries.last()) {
            (true, Some((k, _))) => {
                start = k.clone();
                start.push(0);
            }
            _ => return Ok(total),
        }
    }
}

/// The estimated size in bytes of the collection of partition key `pk`.
pub fn size(
    store: &dyn Store,
    keys: &TableKeys,
    def: &TableDef,
    pk: &AttributeValue,
) -> Result<i64, ApiError> {
    let base = items::partition_prefix(keys, BASE_INDEX, pk)?;
    if let Some(s) = cache().lock().ok().and_then(|c| c.get(&base).copied()) {
        return Ok(s);
    }
    let mut total = prefix_bytes(store, &base)?;
    for idx in def.indexes.iter().filter(|i| i.kind == IndexKind::Local) {
        let p = items::index_partition_prefix(keys, idx.id, pk)?;
        total = total.saturating_add(prefix_bytes(store, &p)?);
    }
    if let Ok(mut c) = cache().lock() {
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(base, total);
    }
    Ok(total)
}

/// Applies a committed change of `delta` bytes to the collection at `base_prefix` (the base
/// partition's storage prefix), if its size is cached.
pub fn adjust(base_prefix: &[u8], delta: i64) {
    if delta == 0 {
        return;
    }
    if let Ok(mut c) = cache().lock() {
        if let Some(s) = c.get_mut(base_prefix) {
            *s = s.saturating_add(delta).max(0);
        }
    }
}

/// DynamoDB's refusal of a write that would grow a collection beyond `limit` bytes (writes
/// that shrink or keep the size always pass).
pub fn check_limit(current: i64, delta: i64, limit: i64) -> Result<(), ApiError> {
    if delta > 0 && current.saturating_add(delta) > limit {
        return Err(ApiError::ItemCollectionSizeLimitExceeded(
            "Collection size exceeded.".into(),
        ));
    }
    Ok(())
}

/// `ItemCollectionMetrics` of one collection: its key and the size range in GB.
pub fn metrics(def: &TableDef, pk: &AttributeValue, size: i64) -> Result<Value, ApiError> {
    let gb = (size.max(0) as f64) / GB;
    let lower = gb.floor();
    let key = serde_json::to_value(pk).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json!({
        "ItemCollectionKey": { def.key_schema.hash.name.clone(): key },
        "SizeEstimateRangeGB": [lower, lower + 1.0],
    }))
}

/// The `ItemCollectionMetrics` of a multi-item write (BatchWriteItem, TransactWriteItems) for
/// one table: one entry per distinct partition key written, under the table's name, and only
/// for tables with local secondary indexes (DynamoDB reports no collections for the others).
/// Blocking: reads sizes from storage on a cache miss.
pub fn add_table_metrics(
    out: &mut serde_json::Map<String, Value>,
    store: &dyn Store,
    keys: &TableKeys,
    def: &TableDef,
    pks: &[&AttributeValue],
) -> Result<(), ApiError> {
    if !has_lsi(def) || pks.is_empty() {
        return Ok(());
    }
    let mut seen: Vec<&AttributeValue> = Vec::with_capacity(pks.len());
    let mut list = Vec::with_capacity(pks.len());
    for pk in pks {
        if seen.contains(pk) {
            continue;
        }
        seen.push(pk);
        let size = size(store, keys, def, pk)?;
        list.push(metrics(def, pk, size)?);
    }
    match out
        .entry(def.name.clone())
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(a) => a.extend(list),
        other => *other = Value::Array(list),
    }
    Ok(())
}

/// `ReturnItemCollectionMetrics`: true for SIZE, DynamoDB's enum error otherwise.
pub fn wants_metrics(v: Option<&str>) -> Result<bool, ApiError> {
    match v {
        None | Some("NONE") => Ok(false),
        Some("SIZE") => Ok(true),
        Some(other) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnItemCollectionMetrics' failed to satisfy constraint: Member must satisfy enum value set: [SIZE, NONE]"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_refuses_only_growth_past_the_cap() {
        assert!(check_limit(90, 10, 100).is_ok());
        assert!(matches!(
            check_limit(95, 10, 100),
            Err(ApiError::ItemCollectionSizeLimitExceeded(_))
        ));
        // Already over (e.g. a lowered limit): shrinking and same-size writes still pass.
        assert!(check_limit(150, -10, 100).is_ok());
        assert!(check_limit(150, 0, 100).is_ok());
        assert!(wants_metrics(Some("SIZE")).unwrap());
        assert!(!wants_metrics(None).unwrap());
        assert!(wants_metrics(Some("size")).is_err());
    }
}
