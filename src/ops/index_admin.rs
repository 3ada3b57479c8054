//! UpdateTable's `GlobalSecondaryIndexUpdates`: online creation (with backfill) and deletion
//! of global secondary indexes. Called by `ops::update_table`.
//!
//! A Create persists the index as CREATING (maintained by every write from then on, refused to
//! readers), waits until no request still holds the table definition without it, then marks it
//! Backfilling and wakes the background worker (`backfill`), which fills in the entries of the
//! items written before and finally makes it ACTIVE. A Delete marks it DELETING (no longer
//! maintained), waits the same way, and the worker removes its rows and its definition.

pub mod backfill;

use serde::Deserialize;
use serde_json::Value;

use super::Services;
use crate::catalog::tables::{KeyAttr, ScalarType, TableDef, Throughput};
use crate::error::ApiError;
use crate::indexes::create::{
    check_projected_total, validate_index, IndexInput, TableShape, MAX_GSIS,
};
use crate::indexes::{IndexKind, IndexStatus};
use crate::protocol::input::{AttributeDefinition, ProvisionedThroughput};

/// DynamoDB: one index may be created or deleted per UpdateTable call, and only while no
/// other index of the table is being created or deleted.
const ONE_ONLINE_INDEX: &str =
    "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table";
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateAction {
    create: Option<IndexInput>,
    update: Option<UpdateInput>,
    delete: Option<DeleteInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateInput {
    index_name: Option<String>,
    provisioned_throughput: Option<ProvisionedThroughput>,
    /// Accepted and ignored (sealdb does not throttle).
    #[allow(dead_code)]
    on_demand_throughput: Option<Value>,
    #[allow(dead_code)]
    warm_throughput: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteInput {
    index_name: Option<String>,
}

fn invalid(msg: impl AsRef<str>) -> ApiError {
    ApiError::validation(format!(
        "One or more parameter values were invalid: {}",
        msg.as_ref()
    ))
}

fn not_null(at: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value null at '{at}' failed to satisfy constraint: Member must not be null"
    ))
}

fn index_not_found(name: &str) -> ApiError {
    ApiError::ResourceNotFound(format!(
        "Requested resource not found: Index: {name} not found"
    ))
}

/// The request's AttributeDefinitions merged into the table's: new names are added, a
/// redefinition must keep its type.
fn merged_attributes(def: &TableDef, raw: &[Value]) -> Result<Vec<KeyAttr>, ApiError> {
    let mut out = def.attribute_definitions.clone();
    for (i, v) in raw.iter().enumerate() {
        let d: AttributeDefinition = serde_json::from_value(v.clone())
            .map_err(|e| ApiError::Serialization(e.to_string()))?;
        let at = format!("attributeDefinitions.{}.member", i + 1);
        let name = d
            .attribute_name
            .ok_or_else(|| not_null(&format!("{at}.attributeName")))?;
        let ty_s = d
            .attribute_type
            .ok_or_else(|| not_null(&format!("{at}.attributeType")))?;
        let ty = ScalarType::parse(&ty_s).ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value '{ty_s}' at '{at}.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
            ))
        })?;
        match out.iter().find(|a| a.name == name) {
            Some(a) if a.ty != ty => {
                return Err(invalid(format!(
                    "Cannot change the type of an existing attribute definition: {name}"
                )))
            }
            Some(_) => {}
            None => out.push(KeyAttr { name, ty }),
        }
    }
    Ok(out)
}

/// Every AttributeDefinition must be a key of the table or of one of its indexes.
fn check_attributes_used(def: &TableDef) -> Result<(), ApiError> {
    let used = |n: &str| {
        crate::indexes::def::is_key_attr(&def.key_schema, n)
            || def
                .indexes
                .iter()
                .any(|i| crate::indexes::def::is_key_attr(&i.key_schema, n))
    };
    if def.attribute_definitions.iter().all(|a| used(&a.name)) {
        return Ok(());
    }
    Err(invalid(format!(
        "Some AttributeDefinitions are not used. AttributeDefinitions: [{}]",
        def.attribute_definitions
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The smallest index byte no index of the table uses (an index being deleted keeps its byte
/// until its rows are gone).
fn free_index_id(def: &TableDef) -> Result<u8, ApiError> {
    (1..=u8::MAX)
        .find(|id| def.indexes.iter().all(|i| i.id != *id))
        .ok_or_else(|| ApiError::LimitExceeded("no free index id".into()))
}

/// What one validated request does.
enum Change {
    Create(Box<crate::indexes::IndexDef>, Vec<KeyAttr>),
    Delete(String),
    Throughput(String, Throughput),
}

fn plan(
    def: &TableDef,
    attribute_definitions: &[Value],
    updates: &[Value],
) -> Result<Vec<Change>, ApiError> {
    let mut actions = Vec::with_capacity(updates.len());
    for v in updates {
        let a: UpdateAction = serde_json::from_value(v.clone())
            .map_err(|e| ApiError::Serialization(e.to_string()))?;
        let n = usize::from(a.create.is_some())
            + usize::from(a.update.is_some())
            + usize::from(a.delete.is_some());
        if n != 1 {
            return Err(invalid(
                "One of GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Update or GlobalSecondaryIndexUpdate.Delete must be specified",
            ));
        }
        actions.push(a);
    }
    let online = actions
        .iter()
        .filter(|a| a.create.is_some() || a.delete.is_some())
        .count();
    let busy = def
        .indexes
        .iter()
        .any(|i| matches!(i.status, IndexStatus::Creating | IndexStatus::Deleting));
    if online > 1 || (online == 1 && busy) {
        return Err(ApiError::LimitExceeded(ONE_ONLINE_INDEX.into()));
    }
    let attributes = merged_attributes(def, attribute_definitions)?;
    let mut out = Vec::with_capacity(actions.len());
    for (i, a) in actions.iter().enumerate() {
        if let Some(c) = &a.create {
            let shape = TableShape {
                key_schema: &def.key_schema,
                attributes: &attributes,
                billing_mode: &def.billing_mode,
            };
            let mut idx = validate_index(
                &shape,
                IndexKind::Global,
                "globalSecondaryIndexUpdates",
                i,
                c,
            )?;
            if def.indexes.iter().any(|x| x.name == idx.name) {
                return Err(invalid(format!(
                    "Attempting to create an index which already exists: {}",
                    idx.name
                )));
            }
            let gsis = def
                .indexes
                .iter()
                .filter(|x| x.kind == IndexKind::Global)
                .count();
            if gsis >= MAX_GSIS {
                return Err(ApiError::LimitExceeded(format!(
                    "GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GSIS}"
                )));
            }
            idx.id = free_index_id(def)?;
            idx.status = IndexStatus::Creating;
            idx.backfilling = false;
            let mut all = def.indexes.clone();
            all.push(idx.clone());
            check_projected_total(&all)?;
            out.push(Change::Create(Box::new(idx), attributes.clone()));
        } else if let Some(d) = &a.delete {
            let name = d.index_name.clone().ok_or_else(|| {
                not_null(&format!(
                    "globalSecondaryIndexUpdates.{}.member.delete.indexName",
                    i + 1
                ))
            })?;
            if !def
                .indexes
                .iter()
                .any(|x| x.name == name && x.kind == IndexKind::Global)
            {
                return Err(index_not_found(&name));
            }
            out.push(Change::Delete(name));
        } else if let Some(u) = &a.update {
            let at = format!("globalSecondaryIndexUpdates.{}.member.update", i + 1);
            let name = u
                .index_name
                .clone()
                .ok_or_else(|| not_null(&format!("{at}.indexName")))?;
            let Some(idx) = def
                .indexes
                .iter()
                .find(|x| x.name == name && x.kind == IndexKind::Global)
            else {
                return Err(index_not_found(&name));
            };
            let Some(t) = &u.provisioned_throughput else {
                // OnDemandThroughput / WarmThroughput only: accepted, nothing to record.
                continue;
            };
            if def.billing_mode == "PAY_PER_REQUEST" {
                return Err(invalid(format!(
                    "ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
                )));
            }
            let r = t.read_capacity_units.ok_or_else(|| {
                not_null(&format!("{at}.provisionedThroughput.readCapacityUnits"))
            })?;
            let w = t.write_capacity_units.ok_or_else(|| {
                not_null(&format!("{at}.provisionedThroughput.writeCapacityUnits"))
            })?;
            if r < 1 || w < 1 {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{}' at '{at}.provisionedThroughput.{}' failed to satisfy constraint: Member must have value greater than or equal to 1",
                    r.min(w),
                    if r < 1 { "readCapacityUnits" } else { "writeCapacityUnits" }
                )));
            }
            let _ = idx;
            out.push(Change::Throughput(
                name,
                Throughput {
                    read: r as u64,
                    write: w as u64,
                },
            ));
        }
    }
    if !out.iter().any(|c| matches!(c, Change::Create(..))) && !attribute_definitions.is_empty() {
        // Without a new index, new AttributeDefinitions would be unused.
        let mut probe = def.clone();
        probe.attribute_definitions = attributes;
        check_attributes_used(&probe)?;
    }
    Ok(out)
}

/// Applies validated changes to a copy of the definition (re-checked against the current one,
/// as the catalog serializes mutations). Returns whether an online index change started.
fn apply(def: &mut TableDef, changes: &[Change]) -> Result<bool, ApiError> {
    let mut online = false;
    for c in changes {
        match c {
            Change::Create(idx, attributes) => {
                if def
                    .indexes
                    .iter()
                    .any(|x| x.name == idx.name || x.id == idx.id)
                {
                    return Err(ApiError::LimitExceeded(ONE_ONLINE_INDEX.into()));
                }
                def.attribute_definitions = attributes.clone();
                def.indexes.push((**idx).clone());
                check_attributes_used(def)?;
                online = true;
            }
            Change::Delete(name) => {
                let idx = def
                    .indexes
                    .iter_mut()
                    .find(|x| &x.name == name)
                    .ok_or_else(|| index_not_found(name))?;
                idx.status = IndexStatus::Deleting;
                idx.backfilling = false;
                online = true;
            }
            Change::Throughput(name, t) => {
                let idx = def
                    .indexes
                    .iter_mut()
                    .find(|x| &x.name == name)
                    .ok_or_else(|| index_not_found(name))?;
                idx.throughput = Some(t.clone());
            }
        }
    }
    Ok(online)
}

/// Waits until every commit on the table built from the previous index set has landed or
/// failed: the commits that start from now on read the changed definition (`indexes::gate`).
/// Request-path commits release the gate once submitted (`commit::commit_async`), so the
/// store's queue is flushed too.
async fn drain(svc: &Services, keyspace: crate::crypto::keyring::Keyspace) -> Result<(), ApiError> {
    let store = svc.store.clone();
    super::blocking(move || {
        crate::indexes::gate::drain(&keyspace);
        store.flush_commits();
        Ok(())
    })
    .await
}

/// Validates and starts the requested GSI changes on `table`. `attribute_definitions` are the
/// request's AttributeDefinitions (raw JSON), `updates` its GlobalSecondaryIndexUpdates.
pub async fn apply_gsi_updates(
    svc: &Services,
    table: &str,
    attribute_definitions: &[Value],
    updates: &[Value],
) -> Result<(), ApiError> {
    if updates.is_empty() {
        return Ok(());
    }
    let old = svc.table(table)?;
    let changes = plan(&old.def, attribute_definitions, updates)?;
    let online: Vec<String> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Create(idx, _) => Some(idx.name.clone()),
            Change::Delete(n) => Some(n.clone()),
            Change::Throughput(..) => None,
        })
        .collect();
    // The worker must not start before writers all see the change.
    let guard = backfill::PendingGuard::new(old.def.keyspace, online);
    let (_, started) = svc
        .catalog
        .update_table(table, |def| apply(def, &changes))
        .await?;
    if started {
        drain(svc, old.def.keyspace).await?;
    }
    drop(guard);
    backfill::wake();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn action_needs_exactly_one_member() {
        let a: UpdateAction = serde_json::from_value(json!({})).unwrap();
        assert!(a.create.is_none() && a.update.is_none() && a.delete.is_none());
        let a: UpdateAction =
            serde_json::from_value(json!({"Delete": {"IndexName": "abc"}})).unwrap();
        assert_eq!(a.delete.unwrap().index_name.as_deref(), Some("abc"));
    }
}
