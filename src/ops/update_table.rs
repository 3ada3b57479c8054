//! UpdateTable: billing mode and provisioned throughput (accepted and reported; sealdb does
//! not throttle), deletion protection, table class, and the hand-offs for a KMS key switch
//! (`key_admin::switch_table_kms_key`) and online GSI changes (`index_admin::apply_gsi_updates`).
//!
//! Validation follows DynamoDB's order: the request's shape, then which changes may be
//! combined, then the table, then the changes against the table's current settings.

use serde::Deserialize;
use serde_json::{json, Value};

use super::tags::table_name_or_arn;
use super::{index_admin, key_admin, tables, Services};
use crate::catalog::tables::{TableDef, Throughput};
use crate::error::ApiError;
use crate::protocol::input::ProvisionedThroughput;

/// DynamoDB's default per-table throughput quota (DescribeLimits reports the same).
const TABLE_MAX_CAPACITY_UNITS: i64 = 40_000;
const PROVISIONED: &str = "PROVISIONED";
const PAY_PER_REQUEST: &str = "PAY_PER_REQUEST";
/// DynamoDB's "nothing to update" message lists every member that counts as a change.
const NOTHING_TO_UPDATE: &str = "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates, SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, ReplicaTransitRoleArn, MultiRegionConsistency, DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput or TableClass is required";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateTableInput {
    pub table_name: Option<String>,
    /// Raw: only GlobalSecondaryIndexUpdates reads them (index_admin).
    pub attribute_definitions: Option<Vec<Value>>,
    pub billing_mode: Option<String>,
    pub provisioned_throughput: Option<ProvisionedThroughput>,
    pub global_secondary_index_updates: Option<Vec<Value>>,
    #[serde(rename = "SSESpecification")]
    pub sse_specification: Option<Value>,
    pub table_class: Option<String>,
    pub deletion_protection_enabled: Option<bool>,
    // Accepted members sealdb does not implement: named in a clear error.
    pub stream_specification: Option<Value>,
    pub replica_updates: Option<Value>,
    pub multi_region_consistency: Option<Value>,
    pub global_table_witness_updates: Option<Value>,
    pub on_demand_throughput: Option<Value>,
    pub warm_throughput: Option<Value>,
    pub global_table_settings_replication_mode: Option<Value>,
}

impl UpdateTableInput {
    fn unsupported(&self) -> Option<&'static str> {
        [
            ("StreamSpecification", self.stream_specification.is_some()),
            ("ReplicaUpdates", self.replica_updates.is_some()),
            (
                "MultiRegionConsistency",
                self.multi_region_consistency.is_some(),
            ),
            (
                "GlobalTableWitnessUpdates",
                self.global_table_witness_updates.is_some(),
            ),
            ("OnDemandThroughput", self.on_demand_throughput.is_some()),
            ("WarmThroughput", self.warm_throughput.is_some()),
            (
                "GlobalTableSettingsReplicationMode",
                self.global_table_settings_replication_mode.is_some(),
            ),
        ]
        .into_iter()
        .find(|(_, on)| *on)
        .map(|(n, _)| n)
    }

    fn gsi_updates(&self) -> &[Value] {
        self.global_secondary_index_updates
            .as_deref()
            .unwrap_or(&[])
    }
}

fn one_or_more(msg: &str) -> ApiError {
    ApiError::validation(format!("One or more parameter values were invalid: {msg}"))
}

/// The shape checks of ProvisionedThroughput: both members present, each at least 1
/// (DynamoDB lists write before read).
fn checked_throughput(t: &ProvisionedThroughput) -> Result<Throughput, ApiError> {
    let mut problems = Vec::new();
    for (v, member) in [
        (t.write_capacity_units, "writeCapacityUnits"),
        (t.read_capacity_units, "readCapacityUnits"),
    ] {
        match v {
            None => problems.push(format!(
                "Value null at 'provisionedThroughput.{member}' failed to satisfy constraint: Member must not be null"
            )),
            Some(v) if v < 1 => problems.push(format!(
                "Value '{v}' at 'provisionedThroughput.{member}' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(format!(
            "{} validation error{} detected: {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("; ")
        )));
    }
    let (r, w) = (
        t.read_capacity_units.unwrap_or(1),
        t.write_capacity_units.unwrap_or(1),
    );
    Ok(Throughput {
        read: r as u64,
        write: w as u64,
    })
}

/// What one UpdateTable request changes, validated against nothing but itself.
struct Plan {
    billing_mode: Option<String>,
    throughput: Option<Throughput>,
    table_class: Option<String>,
    deletion_protection: Option<bool>,
}

fn plan(input: &UpdateTableInput) -> Result<Plan, ApiError> {
    if let Some(mode) = &input.billing_mode {
        if mode != PROVISIONED && mode != PAY_PER_REQUEST {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{mode}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
            )));
        }
    }
    let throughput = match &input.provisioned_throughput {
        Some(t) => Some(checked_throughput(t)?),
        None => None,
    };
    if let Some(class) = &input.table_class {
        if class != "STANDARD" && class != "STANDARD_INFREQUENT_ACCESS" {
            return Err(ApiError::validation(
                "Invalid table-class parameter provided. Please try again with a valid table-class value: [STANDARD, STANDARD_INFREQUENT_ACCESS].",
            ));
        }
    }
    let sse = input.sse_specification.is_some();
    let gsi = !input.gsi_updates().is_empty();
    let class = input.table_class.is_some();
    let dp = input.deletion_protection_enabled.is_some();
    let capacity = input.billing_mode.is_some() || input.provisioned_throughput.is_some();
    let unsupported = input.unsupported();
    if !(sse || gsi || class || dp || capacity || unsupported.is_some()) {
        return Err(ApiError::validation(NOTHING_TO_UPDATE));
    }
    if let Some(member) = unsupported {
        return Err(ApiError::validation(format!(
            "sealdb does not support {member} in UpdateTable yet"
        )));
    }
    // DynamoDB runs these as separate workflows: each must be the request's only change.
    let count = [sse, gsi, class, dp, capacity]
        .iter()
        .filter(|on| **on)
        .count();
    if count > 1 {
        let which = if sse {
            "Server-Side Encryption modification"
        } else if class {
            "TableClass modification"
        } else if dp {
            "DeletionProtection modification"
        } else {
            ""
        };
        if !which.is_empty() {
            return Err(one_or_more(&format!(
                "{which} must be the only operation in the request"
            )));
        }
    }
    Ok(Plan {
        billing_mode: input.billing_mode.clone(),
        throughput,
        table_class: input.table_class.clone(),
        deletion_protection: input.deletion_protection_enabled,
    })
}

/// Applies the capacity part of a plan to a copy of the definition, with DynamoDB's checks
/// against the current settings. Returns whether anything changed.
fn apply_capacity(
    def: &mut TableDef,
    plan: &Plan,
    now: f64,
    region: &str,
) -> Result<bool, ApiError> {
    let mode = plan
        .billing_mode
        .clone()
        .unwrap_or_else(|| def.billing_mode.clone());
    match (mode.as_str(), &plan.throughput) {
        (PAY_PER_REQUEST, Some(_)) => Err(one_or_more(
            "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        )),
        (PAY_PER_REQUEST, None) => {
            let changed = def.billing_mode != PAY_PER_REQUEST;
            if changed {
                def.billing_mode = PAY_PER_REQUEST.to_string();
                def.throughput = None;
                def.pay_per_request_since = Some(now);
            }
            Ok(changed)
        }
        (_, None) if plan.billing_mode.is_some() => Err(one_or_more(
            "ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
        )),
        (_, None) => Ok(false),
        (_, Some(t)) => {
            for (v, what) in [(t.read, "ReadCapacityUnits"), (t.write, "WriteCapacityUnits")] {
                if v > TABLE_MAX_CAPACITY_UNITS as u64 {
                    return Err(ApiError::LimitExceeded(format!(
                        "The requested {what}, {v}, is above the per table maximum for the account in {region}. Per table maximum: {TABLE_MAX_CAPACITY_UNITS}."
                    )));
                }
            }
            if def.billing_mode == PROVISIONED {
                if let Some(cur) = &def.throughput {
                    if cur.read == t.read && cur.write == t.write {
                        return Err(ApiError::validation(format!(
                            "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: {}. Requested ReadCapacityUnits: {}. Current WriteCapacityUnits provisioned for the table: {}. Requested WriteCapacityUnits: {}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.",
                            cur.read, t.read, cur.write, t.write
                        )));
                    }
                }
            }
            def.billing_mode = PROVISIONED.to_string();
            def.throughput = Some(t.clone());
            Ok(true)
        }
    }
}

pub async fn update_table(svc: &Services, input: UpdateTableInput) -> Result<Value, ApiError> {
    let name = table_name_or_arn(svc, input.table_name.clone())?;
    let plan = plan(&input)?;
    if svc.catalog.table(&name).is_none() {
        return Err(ApiError::ResourceNotFound(format!(
            "Requested resource not found: Table: {name} not found"
        )));
    }
    if let Some(sse) = &input.sse_specification {
        key_admin::switch_table_kms_key(svc, &name, sse).await?;
        return respond(svc, &name, "ACTIVE");
    }
    let updates = input.gsi_updates();
    if !updates.is_empty() {
        let defs = input.attribute_definitions.as_deref().unwrap_or(&[]);
        index_admin::apply_gsi_updates(svc, &name, defs, updates).await?;
        return respond(svc, &name, "UPDATING");
    }
    let now = crate::util::epoch_seconds_f64();
    let (_, changed) = svc
        .catalog
        .update_table(&name, |def| {
            let mut changed = apply_capacity(def, &plan, now, &svc.config.region)?;
            if let Some(class) = &plan.table_class {
                changed |= def.table_class != *class;
                def.table_class = class.clone();
            }
            if let Some(dp) = plan.deletion_protection {
                def.deletion_protection = dp;
            }
            Ok::<bool, ApiError>(changed)
        })
        .await?;
    // DynamoDB answers UPDATING while a capacity or class change is applied (here: at once).
    respond(svc, &name, if changed { "UPDATING" } else { "ACTIVE" })
}

fn respond(svc: &Services, name: &str, status: &str) -> Result<Value, ApiError> {
    let entry = svc.table(name)?;
    Ok(json!({
        "TableDescription": tables::describe(svc, &entry.def, entry.stats.snapshot(), status)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(v: Value) -> UpdateTableInput {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn nothing_to_update_and_exclusive_changes() {
        let e = plan(&input(json!({"TableName": "t"}))).err().unwrap();
        assert_eq!(e.to_string(), NOTHING_TO_UPDATE);
        // AttributeDefinitions and an empty GSI update list change nothing.
        let e = plan(&input(json!({"TableName": "t", "AttributeDefinitions": [],
            "GlobalSecondaryIndexUpdates": []})))
        .err()
        .unwrap();
        assert_eq!(e.to_string(), NOTHING_TO_UPDATE);
        let e = plan(&input(
            json!({"TableName": "t", "DeletionProtectionEnabled": true,
            "BillingMode": "PAY_PER_REQUEST"}),
        ))
        .err()
        .unwrap();
        assert!(e
            .to_string()
            .contains("DeletionProtection modification must be the only"));
        let e = plan(&input(json!({"TableName": "t", "TableClass": "STANDARD",
            "SSESpecification": {"Enabled": true}})))
        .err()
        .unwrap();
        assert!(e
            .to_string()
            .contains("Server-Side Encryption modification"));
        assert!(plan(&input(
            json!({"TableName": "t", "BillingMode": "PROVISIONED",
            "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 2}})
        ))
        .is_ok());
        let e = plan(&input(json!({"TableName": "t", "TableClass": "COLD"})))
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("Invalid table-class parameter"));
        let e = plan(&input(json!({"TableName": "t",
            "ProvisionedThroughput": {"ReadCapacityUnits": 0}})))
        .err()
        .unwrap();
        assert!(
            e.to_string().starts_with("2 validation errors detected"),
            "{e}"
        );
    }
}
