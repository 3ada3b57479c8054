//! BatchGetItem and BatchWriteItem.
//!
//! BatchGetItem reads each table's keys from one snapshot (`Store::multi_get`) and stops adding
//! items once the response reaches 16 MB; the rest go back as UnprocessedKeys.
//! BatchWriteItem applies each put/delete through the shared commit path (so every item keeps
//! its sort-index entry); like DynamoDB's, a batch is not a transaction. We process every
//! request, so UnprocessedItems is always empty.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::capacity::{self, PerTable};
use super::commit::{open_item, write_item};
use super::items::{check_mix, projection, to_json};
use super::keys::{key_from_item, key_from_map};
use super::{blocking, Services};
use crate::error::ApiError;
use crate::expr::{ExprContext, Projection, Usage};
use crate::indexes::collection;
use crate::items::{self, ItemKey, BASE_INDEX};
use crate::protocol::attr::{item_size, Item, MAX_ITEM_SIZE};
use crate::protocol::input::{
    required, table_name, BatchGetItemInput, BatchWriteItemInput, KeysAndAttributes,
};
use crate::storage::Space;

/// DynamoDB: BatchGetItem reads at most 100 items.
pub const MAX_BATCH_GET_KEYS: usize = 100;
/// DynamoDB: BatchGetItem returns at most 16 MB.
pub const MAX_BATCH_GET_BYTES: usize = 16 * 1024 * 1024;
/// DynamoDB: BatchWriteItem takes at most 25 put or delete requests.
pub const MAX_BATCH_WRITES: usize = 25;

fn duplicates() -> ApiError {
    ApiError::validation("Provided list of item keys contains duplicates")
}

/// One table's validated part of a BatchGetItem.
struct GetPlan {
    name: String,
    request: KeysAndAttributes,
    keys: Vec<ItemKey>,
    projection: Option<Projection>,
    consistent: bool,
}

pub async fn batch_get_item(
    svc: &Arc<Services>,
    input: BatchGetItemInput,
) -> Result<Value, ApiError> {
    let request_items = required(input.request_items, "requestItems")?;
    let cap = capacity::mode(&input.return_consumed_capacity)?;
    if request_items.is_empty() {
        return Err(ApiError::validation(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    let total: usize = request_items
        .values()
        .map(|r| r.keys.as_ref().map_or(0, Vec::len))
        .sum();
    if total > MAX_BATCH_GET_KEYS {
        return Err(ApiError::validation(
            "Too many items requested for the BatchGetItem call",
        ));
    }
    let mut plans = Vec::new();
    let mut names: Vec<&String> = request_items.keys().collect();
    names.sort();
    for name in names {
        let Some(request) = request_items.get(name) else {
            continue;
        };
        let name = table_name(Some(name.clone()))?;
        let entry = svc.table(&name)?;
        let key_maps = request.keys.clone().unwrap_or_default();
        if key_maps.is_empty() {
            return Err(ApiError::validation(
                "1 validation error detected: Value null at 'requestItems.keys' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        let mut keys = Vec::with_capacity(key_maps.len());
        for k in &key_maps {
            let key = key_from_map(&entry.def, k)?;
            if keys.contains(&key) {
                return Err(duplicates());
            }
            keys.push(key);
        }
        let enames = request.expression_attribute_names.as_ref();
        check_mix(
            &[("AttributesToGet", request.attributes_to_get.is_some())],
            &[(
                "ProjectionExpression",
                request.projection_expression.is_some(),
            )],
            enames,
            None,
        )?;
        let ctx = ExprContext {
            names: enames,
            values: None,
        };
        let mut usage = Usage::default();
        let projection = projection(
            &ctx,
            &mut usage,
            request.projection_expression.as_deref(),
            request.attributes_to_get.as_ref(),
        )?;
        usage.check_all_used(&ctx)?;
        plans.push(GetPlan {
            name,
            consistent: request.consistent_read.unwrap_or(false),
            request: request.clone(),
            keys,
            projection,
        });
    }
    let mut responses = Map::new();
    let mut unprocessed = Map::new();
    let mut per_table = PerTable::default();
    let mut bytes = 0usize;
    for plan in plans {
        let entry = svc.table(&plan.name)?;
        let tkeys = svc.table_keys(&entry).await?;
        let svc2 = svc.clone();
        let plan_keys = plan.keys.clone();
        let e2 = entry.clone();
        let found: Vec<(usize, Option<Item>)> = blocking(move || {
            let sks: Vec<Vec<u8>> = plan_keys
                .iter()
                .map(|k| items::storage_key(&tkeys, BASE_INDEX, k))
                .collect::<Result<_, _>>()?;
            let lookups: Vec<(Space, &[u8])> =
                sks.iter().map(|k| (Space::Items, k.as_slice())).collect();
            let values = svc2.store.multi_get(&lookups)?;
            let mut out = Vec::with_capacity(values.len());
            for (i, (sk, v)) in sks.iter().zip(values).enumerate() {
                let item = match v {
                    Some(b) => Some(open_item(&svc2, &tkeys, &e2, sk, &b)?),
                    None => None,
                };
                out.push((i, item));
            }
            Ok(out)
        })
        .await?;
        let mut shown = Vec::new();
        let mut left = Vec::new();
        for (i, item) in found {
            let size = item.as_ref().map(item_size).unwrap_or(0);
            if bytes.saturating_add(size) > MAX_BATCH_GET_BYTES {
                if let Some(k) = plan.keys.get(i) {
                    left.push(to_json(&k.to_item(&entry.def))?);
                }
                continue;
            }
            bytes = bytes.saturating_add(size);
            per_table.read(&plan.name, capacity::read_units(size, plan.consistent));
            if let Some(item) = item {
                let item = match &plan.projection {
                    Some(p) => p.apply(&item),
                    None => item,
                };
                shown.push(to_json(&item)?);
            }
        }
        if !left.is_empty() {
            let mut u = json!({"Keys": left});
            if let Some(p) = &plan.request.projection_expression {
                u["ProjectionExpression"] = json!(p);
            }
            if let Some(a) = &plan.request.attributes_to_get {
                u["AttributesToGet"] = json!(a);
            }
            if let Some(n) = &plan.request.expression_attribute_names {
                u["ExpressionAttributeNames"] = json!(n);
            }
            if let Some(c) = plan.request.consistent_read {
                u["ConsistentRead"] = json!(c);
            }
            unprocessed.insert(plan.name.clone(), u);
        }
        responses.insert(plan.name, Value::Array(shown));
    }
    let mut out = json!({"Responses": responses, "UnprocessedKeys": unprocessed});
    if let Some(c) = per_table.list(cap) {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}

/// One validated write of a batch.
enum BatchWrite {
    Put(ItemKey, Item),
    Delete(ItemKey),
}

pub async fn batch_write_item(
    svc: &Arc<Services>,
    input: BatchWriteItemInput,
) -> Result<Value, ApiError> {
    let request_items = required(input.request_items, "requestItems")?;
    let cap = capacity::mode(&input.return_consumed_capacity)?;
    let want_metrics = collection::wants_metrics(input.return_item_collection_metrics.as_deref())?;
    if request_items.is_empty() {
        return Err(ApiError::validation(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    let total: usize = request_items.values().map(Vec::len).sum();
    if total > MAX_BATCH_WRITES {
        return Err(ApiError::validation(
            "Too many items requested for the BatchWriteItem call",
        ));
    }
    let mut work: HashMap<String, Vec<BatchWrite>> = HashMap::new();
    for (name, requests) in request_items {
        let name = table_name(Some(name))?;
        let entry = svc.table(&name)?;
        if requests.is_empty() {
            return Err(ApiError::validation(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
            ));
        }
        let mut writes = Vec::with_capacity(requests.len());
        let mut seen: Vec<ItemKey> = Vec::new();
        for r in requests {
            let w = match (r.put_request, r.delete_request) {
                (Some(p), None) => {
                    let item = required(p.item, "item")?;
                    let key = key_from_item(&entry.def, &item)?;
                    if item_size(&item) > MAX_ITEM_SIZE {
                        return Err(ApiError::validation(
                            "Item size has exceeded the maximum allowed size",
                        ));
                    }
                    BatchWrite::Put(key, item)
                }
                (None, Some(d)) => {
                    let key = key_from_map(&entry.def, &required(d.key, "key")?)?;
                    BatchWrite::Delete(key)
                }
                _ => {
                    return Err(ApiError::validation(
                        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                    ))
                }
            };
            let key = match &w {
                BatchWrite::Put(k, _) | BatchWrite::Delete(k) => k.clone(),
            };
            if seen.contains(&key) {
                return Err(duplicates());
            }
            seen.push(key);
            writes.push(w);
        }
        work.insert(name, writes);
    }
    let mut per_table = PerTable::default();
    let mut metrics = Map::new();
    for (name, writes) in work {
        let entry = svc.table(&name)?;
        let keys = svc.table_keys(&entry).await?;
        let svc2 = svc.clone();
        let (units, table_metrics) = blocking(move || {
            let mut units = 0.0;
            for w in &writes {
                let (key, new) = match w {
                    BatchWrite::Put(k, item) => (k, Some(item)),
                    BatchWrite::Delete(k) => (k, None),
                };
                let (old, _) = write_item(&svc2, &keys, &entry, key, |_| Ok(new.cloned()))?;
                units += capacity::write_units(
                    old.as_ref().map(item_size).unwrap_or(0),
                    new.map(item_size).unwrap_or(0),
                );
            }
            // Sizes read after every write of the table landed, as PutItem's are.
            let mut m = Map::new();
            if want_metrics {
                let pks: Vec<_> = writes
                    .iter()
                    .map(|w| match w {
                        BatchWrite::Put(k, _) | BatchWrite::Delete(k) => &k.pk,
                    })
                    .collect();
                collection::add_table_metrics(
                    &mut m,
                    svc2.store.as_ref(),
                    &keys,
                    &entry.def,
                    &pks,
                )?;
            }
            Ok((units, m))
        })
        .await?;
        per_table.write(&name, units);
        metrics.extend(table_metrics);
    }
    let mut out = json!({"UnprocessedItems": {}});
    if let Some(c) = per_table.list(cap) {
        out["ConsumedCapacity"] = c;
    }
    if !metrics.is_empty() {
        out["ItemCollectionMetrics"] = Value::Object(metrics);
    }
    Ok(out)
}
