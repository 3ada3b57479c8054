//! PutItem, GetItem, DeleteItem.
//!
//! Every write is read-check-commit: read the sealed current value, open it, evaluate the
//! condition on the plaintext, then commit with "the value is still exactly what I read" as
//! the store-level check, retrying on a lost race. That makes conditional writes linearizable
//! per item without the store ever seeing plaintext.

use std::sync::Arc;

use serde_json::{json, Value};

use super::capacity::{self, Units};
use super::commit::{read_keyed, write_item_async};
use super::keys::{key_from_item, key_from_map};
use super::{blocking, detached, Services};
use crate::error::ApiError;
use crate::expr::{self, ConditionalOperator, ExprContext, Usage};
use crate::items::{self, BASE_INDEX};
use crate::protocol::attr::{item_size, Item, MAX_ITEM_SIZE};
use crate::protocol::input::{
    required, table_name, DeleteItemInput, Expected, GetItemInput, Names, PutItemInput, Values,
};

pub(crate) fn return_values(
    v: Option<String>,
    allowed: &[&str],
    message: &str,
) -> Result<String, ApiError> {
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

/// ReturnValuesOnConditionCheckFailure: true for ALL_OLD.
pub(crate) fn on_failure_old(v: &Option<String>) -> Result<bool, ApiError> {
    match v.as_deref() {
        None | Some("NONE") => Ok(false),
        Some("ALL_OLD") => Ok(true),
        Some(other) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]"
        ))),
    }
}

pub(crate) fn to_json(item: &Item) -> Result<Value, ApiError> {
    serde_json::to_value(item).map_err(|e| ApiError::Internal(e.to_string()))
}

/// DynamoDB refuses to mix the legacy parameters with expressions in one request, and
/// ExpressionAttributeNames/Values without any expression.
pub(crate) fn check_mix(
    legacy: &[(&str, bool)],
    expressions: &[(&str, bool)],
    names: Option<&Names>,
    values: Option<&Values>,
) -> Result<(), ApiError> {
    let used = |list: &[(&str, bool)]| -> Vec<String> {
        list.iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| n.to_string())
            .collect()
    };
    let (l, e) = (used(legacy), used(expressions));
    if !l.is_empty() && !e.is_empty() {
        return Err(ApiError::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            l.join(", "),
            e.join(", ")
        )));
    }
    if e.is_empty() {
        if names.is_some() {
            return Err(ApiError::validation(
                "ExpressionAttributeNames can only be specified when using expressions",
            ));
        }
        if values.is_some() {
            return Err(ApiError::validation(
                "ExpressionAttributeValues can only be specified when using expressions",
            ));
        }
    }
    Ok(())
}

/// `Expected`/`ConditionalOperator` as sent by PutItem/DeleteItem's loosely typed inputs.
fn legacy_expected(
    expected: Option<Value>,
    op: Option<String>,
) -> Result<(Option<Expected>, Option<ConditionalOperator>), ApiError> {
    let expected = match expected {
        Some(v) => Some(serde_json::from_value::<Expected>(v).map_err(|e| {
            let msg = e.to_string();
            match msg.strip_prefix(crate::protocol::attr::VALIDATION_PREFIX) {
                Some(m) => ApiError::validation(m),
                None => ApiError::Serialization(msg),
            }
        })?),
        None => None,
    };
    let op = match op.as_deref() {
        None => None,
        Some("AND") => Some(ConditionalOperator::And),
        Some("OR") => Some(ConditionalOperator::Or),
        Some(other) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]"
            )))
        }
    };
    Ok((expected, op))
}

/// The condition of a write: ConditionExpression or legacy Expected (+ ConditionalOperator).
pub(crate) fn write_condition(
    ctx: &ExprContext,
    usage: &mut Usage,
    condition: Option<&str>,
    expected: Option<&Expected>,
    op: Option<ConditionalOperator>,
) -> Result<Option<expr::Condition>, ApiError> {
    if let Some(src) = condition {
        return Ok(Some(expr::parse_condition(src, ctx, usage)?));
    }
    match expected {
        Some(e) => Ok(expr::expected_to_condition(e, op)?),
        None if op.is_some() => Err(ApiError::validation(
            "ConditionalOperator can only be used when Filter or Expected conditions have been specified",
        )),
        None => Ok(None),
    }
}

/// A write's condition parsed with every check: mixing, placeholders used.
fn parse_condition(
    condition: Option<&str>,
    names: Option<&Names>,
    values: Option<&Values>,
    expected: Option<Value>,
    op: Option<String>,
) -> Result<Option<expr::Condition>, ApiError> {
    let (expected, op) = legacy_expected(expected, op)?;
    check_mix(
        &[("Expected", expected.is_some())],
        &[("ConditionExpression", condition.is_some())],
        names,
        values,
    )?;
    let ctx = ExprContext { names, values };
    let mut usage = Usage::default();
    let parsed = write_condition(&ctx, &mut usage, condition, expected.as_ref(), op)?;
    usage.check_all_used(&ctx)?;
    Ok(parsed)
}

/// A projection from ProjectionExpression or legacy AttributesToGet (names/values checked by
/// the caller's [`Usage`]).
pub(crate) fn projection(
    ctx: &ExprContext,
    usage: &mut Usage,
    expression: Option<&str>,
    attributes_to_get: Option<&Vec<String>>,
) -> Result<Option<expr::Projection>, ApiError> {
    match (expression, attributes_to_get) {
        (Some(src), _) => Ok(Some(expr::parse_projection(src, ctx, usage)?)),
        (None, Some(names)) => Ok(Some(expr::attributes_to_get_to_projection(names)?)),
        (None, None) => Ok(None),
    }
}

pub(crate) fn check_condition(
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

/// ReturnItemCollectionMetrics=SIZE: the written item's collection, only for tables with local
/// secondary indexes (DynamoDB returns none for other tables). Read after the commit landed.
pub(crate) async fn collection_metrics(
    svc: &Arc<Services>,
    name: &str,
    pk: crate::protocol::attr::AttributeValue,
) -> Result<Option<Value>, ApiError> {
    use crate::indexes::collection;
    let entry = svc.table(name)?;
    if !collection::has_lsi(&entry.def) {
        return Ok(None);
    }
    let keys = svc.table_keys(&entry).await?;
    let svc2 = svc.clone();
    blocking(move || {
        let size = collection::size(svc2.store.as_ref(), &keys, &entry.def, &pk)?;
        collection::metrics(&entry.def, &pk, size).map(Some)
    })
    .await
}

pub async fn put_item(svc: &Arc<Services>, input: PutItemInput) -> Result<Value, ApiError> {
    let name = table_name(input.table_name)?;
    let item = required(input.item, "item")?;
    let rv = return_values(
        input.return_values,
        &["NONE", "ALL_OLD"],
        "ReturnValues can only be ALL_OLD or NONE",
    )?;
    let on_fail_old = on_failure_old(&input.return_values_on_condition_check_failure)?;
    let cap = capacity::mode(&input.return_consumed_capacity)?;
    let want_metrics =
        crate::indexes::collection::wants_metrics(input.return_item_collection_metrics.as_deref())?;
    let entry = svc.table(&name)?;
    let key = key_from_item(&entry.def, &item)?;
    let pk = key.pk.clone();
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
        input.expected,
        input.conditional_operator,
    )?;
    let keys = svc.table_keys(&entry).await?;
    let svc2 = svc.clone();
    let (old, _) = detached(async move {
        write_item_async(&svc2, &keys, &entry, &key, |old| {
            check_condition(&cond, old, on_fail_old)?;
            Ok(Some(item.clone()))
        })
        .await
    })
    .await?;
    let mut out = json!({});
    if rv == "ALL_OLD" {
        if let Some(old) = &old {
            out["Attributes"] = to_json(old)?;
        }
    }
    let write = capacity::write_units(old.as_ref().map(item_size).unwrap_or(0), size);
    if let Some(c) = capacity::one(&name, cap, Units { read: 0.0, write }) {
        out["ConsumedCapacity"] = c;
    }
    if want_metrics {
        if let Some(m) = collection_metrics(svc, &name, pk).await? {
            out["ItemCollectionMetrics"] = m;
        }
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
    let on_fail_old = on_failure_old(&input.return_values_on_condition_check_failure)?;
    let cap = capacity::mode(&input.return_consumed_capacity)?;
    let want_metrics =
        crate::indexes::collection::wants_metrics(input.return_item_collection_metrics.as_deref())?;
    let entry = svc.table(&name)?;
    let key = key_from_map(&entry.def, &key_map)?;
    let pk = key.pk.clone();
    let cond = parse_condition(
        input.condition_expression.as_deref(),
        input.expression_attribute_names.as_ref(),
        input.expression_attribute_values.as_ref(),
        input.expected,
        input.conditional_operator,
    )?;
    let keys = svc.table_keys(&entry).await?;
    let svc2 = svc.clone();
    let (old, _) = detached(async move {
        write_item_async(&svc2, &keys, &entry, &key, |old| {
            check_condition(&cond, old, on_fail_old)?;
            Ok(None)
        })
        .await
    })
    .await?;
    let mut out = json!({});
    if rv == "ALL_OLD" {
        if let Some(old) = &old {
            out["Attributes"] = to_json(old)?;
        }
    }
    let write = capacity::write_units(old.as_ref().map(item_size).unwrap_or(0), 0);
    if let Some(c) = capacity::one(&name, cap, Units { read: 0.0, write }) {
        out["ConsumedCapacity"] = c;
    }
    if want_metrics {
        if let Some(m) = collection_metrics(svc, &name, pk).await? {
            out["ItemCollectionMetrics"] = m;
        }
    }
    Ok(out)
}

/// GetItem; the answer is the response body, already serialized.
pub async fn get_item(svc: &Arc<Services>, input: GetItemInput) -> Result<Vec<u8>, ApiError> {
    let name = table_name(input.table_name)?;
    let key_map = required(input.key, "key")?;
    let cap = capacity::mode(&input.return_consumed_capacity)?;
    let entry = svc.table(&name)?;
    let key = key_from_map(&entry.def, &key_map)?;
    let names = input.expression_attribute_names.as_ref();
    check_mix(
        &[("AttributesToGet", input.attributes_to_get.is_some())],
        &[(
            "ProjectionExpression",
            input.projection_expression.is_some(),
        )],
        names,
        None,
    )?;
    let ctx = ExprContext {
        names,
        values: None,
    };
    let mut usage = Usage::default();
    let projection = projection(
        &ctx,
        &mut usage,
        input.projection_expression.as_deref(),
        input.attributes_to_get.as_ref(),
    )?;
    usage.check_all_used(&ctx)?;
    let keys = svc.table_keys(&entry).await?;
    // Point reads run inline: they hit the memtable or block cache in microseconds, and a
    // hand-off to the blocking pool costs more than the read (measured with perf).
    let at = items::KeyedAt::new(&keys, BASE_INDEX, &key)?;
    let item = read_keyed(svc, &keys, &entry, &at)?.1;
    let consistent = input.consistent_read.unwrap_or(false);
    let size = item.as_ref().map(item_size).unwrap_or(0);
    let shown = match (item, &projection) {
        (Some(item), Some(p)) => Some(p.apply(&item)),
        (item, _) => item,
    };
    let read = capacity::read_units(size, consistent);
    let consumed = capacity::one(&name, cap, Units { read, write: 0.0 });
    Ok(get_item_output(shown.as_ref(), consumed.as_ref(), size))
}

/// GetItem's response, written straight from the item (the hottest read path):
/// `{"Item":{...},"ConsumedCapacity":{...}}`, each member only when present. `size` (the item's
/// size, already computed for the capacity units) sizes the buffer.
fn get_item_output(item: Option<&Item>, consumed: Option<&Value>, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.saturating_add(128));
    out.push(b'{');
    if let Some(item) = item {
        out.extend_from_slice(b"\"Item\":");
        crate::protocol::attr::write_item(&mut out, item);
    }
    if let Some(c) = consumed {
        if item.is_some() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"ConsumedCapacity\":");
        // A Value always serializes; on the impossible error the member is an empty object.
        if serde_json::to_writer(&mut out, c).is_err() {
            out.extend_from_slice(b"{}");
        }
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::attr::AttributeValue;

    #[test]
    fn get_item_output_has_each_member_only_when_present() {
        let mut item = Item::new();
        item.insert("pk".into(), AttributeValue::S("a\"b".into()));
        let consumed = json!({"TableName": "T", "CapacityUnits": 0.5});
        let parse = |b: Vec<u8>| serde_json::from_slice::<Value>(&b).unwrap();
        let item_json = json!({"pk": {"S": "a\"b"}});
        assert_eq!(
            parse(get_item_output(Some(&item), Some(&consumed), 0)),
            json!({"Item": item_json, "ConsumedCapacity": consumed})
        );
        assert_eq!(
            parse(get_item_output(Some(&item), None, 0)),
            json!({ "Item": item_json })
        );
        assert_eq!(
            parse(get_item_output(None, Some(&consumed), 0)),
            json!({ "ConsumedCapacity": consumed })
        );
        assert_eq!(get_item_output(None, None, 0), b"{}");
    }
}
