//! PutItem, GetItem, DeleteItem.
//!
//! Every write is read-check-commit: read the sealed current value, open it, evaluate the
//! condition on the plaintext, then commit with "the value is still exactly what I read" as
//! the store-level check, retrying on a lost race. That makes conditional writes linearizable
//! per item without the store ever seeing plaintext.

use std::sync::Arc;

use serde_json::{json, Value};

use super::keys::{key_from_item, key_from_map};
use super::{blocking, Services};
use crate::catalog::tables::TableEntry;
use crate::crypto::keyring::TableKeys;
use crate::error::ApiError;
use crate::expr::{self, ExprContext, Usage};
use crate::items::{self, ItemKey, BASE_INDEX};
use crate::protocol::attr::{item_size, Item, MAX_ITEM_SIZE};
use crate::protocol::input::{required, table_name, DeleteItemInput, GetItemInput, PutItemInput};
use crate::storage::{Check, CommitError, Space, Write};

/// A single-item write retries this often when another writer changed the item between
/// our read and our commit; each retry means someone else made progress.
const MAX_WRITE_ATTEMPTS: usize = 64;

fn return_values(v: Option<String>, allowed: &[&str], message: &str) -> Result<String, ApiError> {
    let v = v.unwrap_or_else(|| "NONE".into());
    if allowed.contains(&v.as_str()) {
        Ok(v)
    } else if ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"].contains(&v.as_str()) {
        Err(ApiError::validation(message))
    } else {
        Err(ApiError::validation(format!(
            "1 validation error detected: Value '{v}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
        )))
    }
}

fn consumed(table: &str, mode: &Option<String>, units: f64) -> Option<Value> {
    match mode.as_deref() {
        Some("TOTAL") | Some("INDEXES") => {
            Some(json!({"TableName": table, "CapacityUnits": units}))
        }
        _ => None,
    }
}

/// DynamoDB: one write unit per started KB of the larger of the old and new item.
fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// DynamoDB: one read unit per started 4 KB (strongly consistent), half for eventual.
fn read_units(size: usize, consistent: bool) -> f64 {
    let u = size.div_ceil(4096).max(1) as f64;
    if consistent {
        u
    } else {
        u / 2.0
    }
}

/// A parsed ConditionExpression with its names/values checked for use.
fn parse_condition(
    condition: Option<&str>,
    names: Option<&crate::protocol::input::Names>,
    values: Option<&crate::protocol::input::Values>,
    legacy_expected: bool,
) -> Result<Option<expr::Condition>, ApiError> {
    if legacy_expected {
        if condition.is_some() {
            return Err(ApiError::validation(
                "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}",
            ));
        }
        return Err(ApiError::validation(
            "sealdb does not support the legacy Expected parameter yet; use ConditionExpression",
        ));
    }
    let ctx = ExprContext { names, values };
    let mut usage = Usage::default();
    let parsed = match condition {
        Some(src) => Some(expr::parse_condition(src, &ctx, &mut usage)?),
        None => None,
    };
    if condition.is_none() && (names.is_some() || values.is_some()) {
        if names.is_some() {
            return Err(ApiError::validation(
                "ExpressionAttributeNames can only be specified when using expressions",
            ));
        }
        return Err(ApiError::validation(
            "ExpressionAttributeValues can only be specified when using expressions",
        ));
    }
    usage.check_all_used(&ctx)?;
    Ok(parsed)
}

/// Reads and opens the current item.
fn read_current(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    sk: &[u8],
) -> Result<(Option<Vec<u8>>, Option<Item>), ApiError> {
    let sealed = svc.store.get(Space::Items, sk)?;
    let item = match &sealed {
        Some(bytes) => Some(open_item(svc, keys, entry, sk, bytes)?),
        None => None,
    };
    Ok((sealed, item))
}

fn open_item(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    sk: &[u8],
    bytes: &[u8],
) -> Result<Item, ApiError> {
    items::open(keys, &entry.def, BASE_INDEX, sk, bytes).map_err(|e| {
        svc.audit.record(
            "integrity",
            json!({"table": entry.def.name, "keyspace": hex::encode(entry.def.keyspace),
                   "storage_key": hex::encode(sk), "error": e.to_string()}),
        );
        ApiError::from(e)
    })
}

/// One conditional single-item write: `decide` sees the current item and returns the new one
/// (None = delete) or an error; the commit only lands if the item did not change meanwhile.
fn write_item(
    svc: &Services,
    keys: &TableKeys,
    entry: &TableEntry,
    key: &ItemKey,
    decide: impl Fn(Option<&Item>) -> Result<Option<Item>, ApiError>,
) -> Result<(Option<Item>, Option<Item>), ApiError> {
    let sk = items::storage_key(keys, BASE_INDEX, key)?;
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let (sealed, old) = read_current(svc, keys, entry, &sk)?;
        let new = decide(old.as_ref())?;
        let write = match &new {
            Some(item) => Write::Put {
                space: Space::Items,
                key: sk.clone(),
                value: items::seal(keys, BASE_INDEX, &sk, item)?,
            },
            None if sealed.is_none() => return Ok((None, None)),
            None => Write::Delete {
                space: Space::Items,
                key: sk.clone(),
            },
        };
        let check = Check {
            space: Space::Items,
            key: sk.clone(),
            expect: sealed,
        };
        match svc.store.commit(&[check], &[write]) {
            Ok(()) => {
                let old_size = old.as_ref().map(item_size).unwrap_or(0) as i64;
                let new_size = new.as_ref().map(item_size).unwrap_or(0) as i64;
                entry.stats.adjust(
                    i64::from(new.is_some()) - i64::from(old.is_some()),
                    new_size - old_size,
                );
                return Ok((old, new));
            }
            Err(CommitError::Conflict { .. }) => continue,
            Err(CommitError::Store(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::TransactionConflict(
        "Transaction is ongoing for the item".into(),
    ))
}

fn check_condition(
    cond: &Option<expr::Condition>,
    old: Option<&Item>,
    return_old: bool,
) -> Result<(), ApiError> {
    if let Some(c) = cond {
        if !c.evaluate(old)? {
            return Err(ApiError::ConditionalCheckFailed {
                item: if return_old { old.cloned() } else { None },
            });
        }
    }
    Ok(())
}

pub async fn put_item(svc: &Arc<Services>, input: PutItemInput) -> Result<Value, ApiError> {
    let name = table_name(input.table_name)?;
    let item = required(input.item, "item")?;
    let rv = return_values(
        input.return_values,
        &["NONE", "ALL_OLD"],
        "ReturnValues can only be ALL_OLD or NONE",
    )?;
    let on_fail_old = input.return_values_on_condition_check_failure.as_deref() == Some("ALL_OLD");
    let entry = svc.table(&name)?;
    let key = key_from_item(&entry.def, &item)?;
    let size = item_size(&item);
    if size > MAX_ITEM_SIZE {
        return Err(ApiError::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    let cond = parse_condition(
        input.condition_expression.as_deref(),
        input.expression_attribute_names.as_ref(),
        input.expression_attribute_values.as_ref(),
        input.expected.is_some(),
    )?;
    let keys = svc.table_keys(&entry).await?;
    let svc2 = svc.clone();
    let (old, _) = blocking(move || {
        write_item(&svc2, &keys, &entry, &key, |old| {
            check_condition(&cond, old, on_fail_old)?;
            Ok(Some(item.clone()))
        })
    })
    .await?;
    let mut out = json!({});
    if rv == "ALL_OLD" {
        if let Some(old) = &old {
            out["Attributes"] =
                serde_json::to_value(old).map_err(|e| ApiError::Internal(e.to_string()))?;
        }
    }
    let units = write_units(size.max(old.as_ref().map(item_size).unwrap_or(0)));
    if let Some(c) = consumed(&name, &input.return_consumed_capacity, units) {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}

pub async fn delete_item(svc: &Arc<Services>, input: DeleteItemInput) -> Result<Value, ApiError> {
    let name = table_name(input.table_name)?;
    let key_map = required(input.key, "key")?;
    let rv = return_values(
        input.return_values,
        &["NONE", "ALL_OLD"],
        "Return values set to invalid value",
    )?;
    let on_fail_old = input.return_values_on_condition_check_failure.as_deref() == Some("ALL_OLD");
    let entry = svc.table(&name)?;
    let key = key_from_map(&entry.def, &key_map)?;
    let cond = parse_condition(
        input.condition_expression.as_deref(),
        input.expression_attribute_names.as_ref(),
        input.expression_attribute_values.as_ref(),
        input.expected.is_some(),
    )?;
    let keys = svc.table_keys(&entry).await?;
    let svc2 = svc.clone();
    let (old, _) = blocking(move || {
        write_item(&svc2, &keys, &entry, &key, |old| {
            check_condition(&cond, old, on_fail_old)?;
            Ok(None)
        })
    })
    .await?;
    let mut out = json!({});
    if rv == "ALL_OLD" {
        if let Some(old) = &old {
            out["Attributes"] =
                serde_json::to_value(old).map_err(|e| ApiError::Internal(e.to_string()))?;
        }
    }
    let units = write_units(old.as_ref().map(item_size).unwrap_or(0));
    if let Some(c) = consumed(&name, &input.return_consumed_capacity, units) {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}

pub async fn get_item(svc: &Arc<Services>, input: GetItemInput) -> Result<Value, ApiError> {
    let name = table_name(input.table_name)?;
    let key_map = required(input.key, "key")?;
    let entry = svc.table(&name)?;
    let key = key_from_map(&entry.def, &key_map)?;
    if input.projection_expression.is_some() && input.attributes_to_get.is_some() {
        return Err(ApiError::validation(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
        ));
    }
    let names = input.expression_attribute_names.as_ref();
    let projection = match &input.projection_expression {
        Some(src) => {
            let ctx = ExprContext {
                names,
                values: None,
            };
            let mut usage = Usage::default();
            let p = expr::parse_projection(src, &ctx, &mut usage)?;
            usage.check_all_used(&ctx)?;
            Some(p)
        }
        None if names.is_some() => {
            return Err(ApiError::validation(
                "ExpressionAttributeNames can only be specified when using expressions",
            ))
        }
        None => None,
    };
    let keys = svc.table_keys(&entry).await?;
    // Point reads run inline: they hit the memtable or block cache in microseconds, and a
    // hand-off to the blocking pool costs more than the read (measured with perf).
    let sk = items::storage_key(&keys, BASE_INDEX, &key)?;
    let item = read_current(svc, &keys, &entry, &sk)?.1;
    let consistent = input.consistent_read.unwrap_or(false);
    let size = item.as_ref().map(item_size).unwrap_or(0);
    let mut out = json!({});
    if let Some(item) = item {
        let shown = match (&projection, &input.attributes_to_get) {
            (Some(p), _) => p.apply(&item),
            (None, Some(names)) => item
                .into_iter()
                .filter(|(k, _)| names.contains(k))
                .collect(),
            (None, None) => item,
        };
        out["Item"] =
            serde_json::to_value(&shown).map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    if let Some(c) = consumed(
        &name,
        &input.return_consumed_capacity,
        read_units(size, consistent),
    ) {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}
