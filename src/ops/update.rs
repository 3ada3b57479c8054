//! UpdateItem: UpdateExpression or legacy AttributeUpdates, ConditionExpression or legacy
//! Expected, every ReturnValues, upsert (a missing item starts as its key), and the
//! key-attribute protections. Runs through the shared read-decide-commit loop, so it is
//! linearizable per item like PutItem.

use std::sync::Arc;

use serde_json::{json, Value};

use super::capacity::{self, Units};
use super::commit::write_item_async;
use super::items::{
    check_condition, check_mix, on_failure_old, return_values, to_json, write_condition,
};
use super::keys::key_from_map;
use super::{detached, Services};
use crate::catalog::tables::TableDef;
use crate::error::ApiError;
use crate::expr::{self, ExprContext, Update, UpdateEffects, Usage};
use crate::protocol::attr::{item_size, Item, MAX_ITEM_SIZE};
use crate::protocol::input::{required, table_name, UpdateItemInput};

const ALL_RETURN_VALUES: [&str; 5] = ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"];

/// DynamoDB refuses any update (SET, REMOVE, ADD, DELETE, nested or not) of a key attribute.
pub(crate) fn protect_key(def: &TableDef, update: &Update) -> Result<(), ApiError> {
    let mut key_names = vec![def.key_schema.hash.name.as_str()];
    if let Some(r) = &def.key_schema.range {
        key_names.push(r.name.as_str());
    }
    for a in update.modified_attributes() {
        if key_names.contains(&a.as_str()) {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Cannot update attribute {a}. This attribute is part of the key"
            )));
        }
    }
    Ok(())
}

/// The item after `update` (None: no update, the item is kept or created as its key), with
/// DynamoDB's size check.
pub(crate) fn apply_update(
    def: &TableDef,
    key: &crate::items::ItemKey,
    update: Option<&Update>,
    old: Option<&Item>,
) -> Result<(Item, Option<UpdateEffects>), ApiError> {
    let mut item = old.cloned().unwrap_or_else(|| key.to_item(def));
    let effects = match update {
        Some(u) => Some(u.apply(&mut item)?),
        None => None,
    };
    if item_size(&item) > MAX_ITEM_SIZE {
        return Err(ApiError::validation(
            "Item size to update has exceeded the maximum allowed size",
        ));
    }
    Ok((item, effects))
}

pub async fn update_item(svc: &Arc<Services>, input: UpdateItemInput) -> Result<Value, ApiError> {
    let name = table_name(input.table_name)?;
    let key_map = required(input.key, "key")?;
    let rv = return_values(input.return_values, &ALL_RETURN_VALUES, "")?;
    let on_fail_old = on_failure_old(&input.return_values_on_condition_check_failure)?;
    let cap = capacity::mode(&input.return_consumed_capacity)?;
    let want_metrics =
        crate::indexes::collection::wants_metrics(input.return_item_collection_metrics.as_deref())?;
    let entry = svc.table(&name)?;
    let key = key_from_map(&entry.def, &key_map)?;
    let pk = key.pk.clone();
    let names = input.expression_attribute_names.as_ref();
    let values = input.expression_attribute_values.as_ref();
    check_mix(
        &[
            ("AttributeUpdates", input.attribute_updates.is_some()),
            ("Expected", input.expected.is_some()),
        ],
        &[
            ("UpdateExpression", input.update_expression.is_some()),
            ("ConditionExpression", input.condition_expression.is_some()),
        ],
        names,
        values,
    )?;
    let ctx = ExprContext { names, values };
    let mut usage = Usage::default();
    let update = match (&input.update_expression, &input.attribute_updates) {
        (Some(src), _) => Some(expr::parse_update(src, &ctx, &mut usage)?),
        (None, Some(au)) => Some(expr::attribute_updates_to_update(au)?),
        (None, None) => None,
    };
    let cond = write_condition(
        &ctx,
        &mut usage,
        input.condition_expression.as_deref(),
        input.expected.as_ref(),
        input.conditional_operator,
    )?;
    usage.check_all_used(&ctx)?;
    if let Some(u) = &update {
        protect_key(&entry.def, u)?;
    }
    let keys = svc.table_keys(&entry).await?;
    let svc2 = svc.clone();
    let (old, new, effects) = detached(async move {
        let mut effects = None;
        let (old, new) = write_item_async(&svc2, &keys, &entry, &key, |old| {
            check_condition(&cond, old, on_fail_old)?;
            let (item, e) = apply_update(&entry.def, &key, update.as_ref(), old)?;
            effects = e;
            Ok(Some(item))
        })
        .await?;
        Ok((old, new, effects))
    })
    .await?;
    let mut out = json!({});
    let shown = match (rv.as_str(), &effects) {
        ("ALL_OLD", _) => old.clone(),
        ("ALL_NEW", _) => new.clone(),
        ("UPDATED_OLD", Some(e)) => old.as_ref().map(|o| e.project(o)),
        ("UPDATED_NEW", Some(e)) => new.as_ref().map(|n| e.project(n)),
        _ => None,
    };
    if let Some(item) = shown.filter(|i| !i.is_empty()) {
        out["Attributes"] = to_json(&item)?;
    }
    let write = capacity::write_units(
        old.as_ref().map(item_size).unwrap_or(0),
        new.as_ref().map(item_size).unwrap_or(0),
    );
    if let Some(c) = capacity::one(&name, cap, Units { read: 0.0, write }) {
        out["ConsumedCapacity"] = c;
    }
    if want_metrics {
        if let Some(m) = super::items::collection_metrics(svc, &name, pk).await? {
            out["ItemCollectionMetrics"] = m;
        }
    }
    Ok(out)
}
