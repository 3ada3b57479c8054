//! CreateTable's LocalSecondaryIndexes and GlobalSecondaryIndexes: decoding and DynamoDB's
//! validation rules and messages (also used for UpdateTable's GSI Create).

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use super::def::{IndexDef, IndexKind, IndexStatus, ProjectionType};
use crate::catalog::tables::{KeyAttr, KeySchema, Throughput};
use crate::error::ApiError;
use crate::protocol::input::{KeySchemaElement, ProvisionedThroughput};

/// DynamoDB: at most 5 local secondary indexes per table.
pub const MAX_LSIS: usize = 5;
/// DynamoDB: at most 20 global secondary indexes per table (default quota).
pub const MAX_GSIS: usize = 20;
/// DynamoDB: "The maximum number of projected attributes in all secondary indexes of a table"
/// (NonKeyAttributes summed over every INCLUDE index) is 100.
pub const MAX_PROJECTED_ATTRIBUTES: usize = 100;
/// DynamoDB: NonKeyAttributes holds at most 20 names per index (API reference, Projection).
pub const MAX_NON_KEY_ATTRIBUTES: usize = 20;
/// DynamoDB: index names are 3 to 255 characters of `[a-zA-Z0-9_.-]`.
const INDEX_NAME_MIN: usize = 3;
const INDEX_NAME_MAX: usize = 255;

const INVALID: &str = "One or more parameter values were invalid: ";

fn invalid(msg: impl AsRef<str>) -> ApiError {
    ApiError::validation(format!("{INVALID}{}", msg.as_ref()))
}

fn constraint(value: &str, at: &str, rule: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value {value} at '{at}' failed to satisfy constraint: {rule}"
    ))
}

fn not_null(at: &str) -> ApiError {
    constraint("null", at, "Member must not be null")
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionInput {
    pub projection_type: Option<String>,
    pub non_key_attributes: Option<Vec<String>>,
}

/// One element of LocalSecondaryIndexes / GlobalSecondaryIndexes (or a GSI Create action).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexInput {
    pub index_name: Option<String>,
    pub key_schema: Option<Vec<KeySchemaElement>>,
    pub projection: Option<ProjectionInput>,
    pub provisioned_throughput: Option<ProvisionedThroughput>,
    /// Accepted and ignored (sealdb does not throttle).
    pub on_demand_throughput: Option<Value>,
    pub warm_throughput: Option<Value>,
}

/// Decodes a list member that arrived as raw JSON (shape errors are SerializationException).
pub fn decode_list(v: &Value) -> Result<Vec<IndexInput>, ApiError> {
    serde_json::from_value(v.clone()).map_err(|e| ApiError::Serialization(e.to_string()))
}

/// Where a member sits in the request, for DynamoDB's "at '...'" wording.
fn member_path(list: &str, i: usize, field: &str) -> String {
    format!("{list}.{}.member.{field}", i + 1)
}

/// What [`validate_index`] needs to know about the table.
pub struct TableShape<'a> {
    pub key_schema: &'a KeySchema,
    pub attributes: &'a [KeyAttr],
    pub billing_mode: &'a str,
}

/// Validates one index (everything that concerns it alone) into a definition with id 0;
/// the caller assigns ids and checks the cross-index rules.
pub fn validate_index(
    table: &TableShape<'_>,
    kind: IndexKind,
    list: &str,
    i: usize,
    input: &IndexInput,
) -> Result<IndexDef, ApiError> {
    let name = input
        .index_name
        .clone()
        .ok_or_else(|| not_null(&member_path(list, i, "indexName")))?;
    let at = member_path(list, i, "indexName");
    if name.len() < INDEX_NAME_MIN {
        return Err(constraint(
            &format!("'{name}'"),
            &at,
            "Member must have length greater than or equal to 3",
        ));
    }
    if name.len() > INDEX_NAME_MAX {
        return Err(constraint(
            &format!("'{name}'"),
            &at,
            "Member must have length less than or equal to 255",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(constraint(
            &format!("'{name}'"),
            &at,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    let schema = input
        .key_schema
        .as_ref()
        .ok_or_else(|| not_null(&member_path(list, i, "keySchema")))?;
    if schema.is_empty() || schema.len() > 2 {
        let bound = if schema.is_empty() {
            "Member must have length greater than or equal to 1"
        } else {
            "Member must have length less than or equal to 2"
        };
        return Err(constraint(
            &format!("'{}'", schema.len()),
            &member_path(list, i, "keySchema"),
            bound,
        ));
    }
    let mut elems = Vec::with_capacity(2);
    for (j, e) in schema.iter().enumerate() {
        let base = format!("{}.{}.member", member_path(list, i, "keySchema"), j + 1);
        let n = e
            .attribute_name
            .clone()
            .ok_or_else(|| not_null(&format!("{base}.attributeName")))?;
        let kt = e
            .key_type
            .clone()
            .ok_or_else(|| not_null(&format!("{base}.keyType")))?;
        if kt != "HASH" && kt != "RANGE" {
            return Err(constraint(
                &format!("'{kt}'"),
                &format!("{base}.keyType"),
                "Member must satisfy enum value set: [HASH, RANGE]",
            ));
        }
        elems.push((n, kt));
    }
    let projection = input
        .projection
        .as_ref()
        .ok_or_else(|| not_null(&member_path(list, i, "projection")))?;
    let ptype = match &projection.projection_type {
        None => return Err(invalid("Unknown ProjectionType: null")),
        Some(p) => ProjectionType::parse(p).ok_or_else(|| {
            constraint(
                &format!("'{p}'"),
                &format!("{}.projectionType", member_path(list, i, "projection")),
                "Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]",
            )
        })?,
    };
    let names: Vec<&str> = elems.iter().map(|(n, _)| n.as_str()).collect();
    let undefined = names
        .iter()
        .any(|n| !table.attributes.iter().any(|a| a.name == *n));
    if undefined {
        return Err(invalid(format!(
            "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
            names.join(", "),
            table
                .attributes
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if elems.len() == 2 && elems[0].0 == elems[1].0 {
        return Err(ApiError::validation(
            "Invalid KeySchema: Both the Hash Key and the Range Key element in the KeySchema have the same name",
        ));
    }
    if elems[0].1 != "HASH" {
        return Err(ApiError::validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ));
    }
    if elems.get(1).is_some_and(|e| e.1 != "RANGE") {
        return Err(ApiError::validation(
            "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
        ));
    }
    if kind == IndexKind::Local {
        if table.key_schema.range.is_none() {
            return Err(invalid(
                "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
            ));
        }
        if elems.len() != 2 {
            return Err(invalid(format!(
                "Index KeySchema does not have a range key for index: {name}"
            )));
        }
        if elems[0].0 != table.key_schema.hash.name {
            return Err(invalid(format!(
                "Index KeySchema does not have the same leading hash key as table KeySchema for index: {name}. index hash key: {}, table hash key: {}",
                elems[0].0, table.key_schema.hash.name
            )));
        }
    }
    let non_key = match (&projection.non_key_attributes, ptype) {
        (Some(_), ProjectionType::KeysOnly | ProjectionType::All) => {
            return Err(invalid(format!(
                "ProjectionType is {}, but NonKeyAttributes is specified",
                ptype.as_str()
            )))
        }
        (None, ProjectionType::Include) => {
            return Err(invalid(
                "ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
            ))
        }
        (Some(list_), _) => {
            let at = format!("{}.nonKeyAttributes", member_path(list, i, "projection"));
            if list_.is_empty() {
                return Err(constraint(
                    "'[]'",
                    &at,
                    "Member must have length greater than or equal to 1",
                ));
            }
            if list_.len() > MAX_NON_KEY_ATTRIBUTES {
                return Err(constraint(
                    &format!("'[{}]'", list_.join(", ")),
                    &at,
                    "Member must have length less than or equal to 20",
                ));
            }
            let mut seen = BTreeSet::new();
            for a in list_ {
                if !seen.insert(a.as_str()) {
                    return Err(invalid(format!(
                        "Duplicate element in NonKeyAttributes: {a}"
                    )));
                }
            }
            list_.clone()
        }
        (None, _) => Vec::new(),
    };
    let throughput = match (kind, table.billing_mode, &input.provisioned_throughput) {
        (IndexKind::Local, _, _) => None,
        (IndexKind::Global, "PAY_PER_REQUEST", Some(_)) => {
            return Err(invalid(format!(
                "ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
            )))
        }
        (IndexKind::Global, "PAY_PER_REQUEST", None) => None,
        (IndexKind::Global, _, None) => {
            return Err(invalid(format!(
                "ProvisionedThroughput must be specified for index: {name}"
            )))
        }
        (IndexKind::Global, _, Some(t)) => {
            let at = member_path(list, i, "provisionedThroughput");
            let r = t
                .read_capacity_units
                .ok_or_else(|| not_null(&format!("{at}.readCapacityUnits")))?;
            let w = t
                .write_capacity_units
                .ok_or_else(|| not_null(&format!("{at}.writeCapacityUnits")))?;
            for (v, m) in [(r, "readCapacityUnits"), (w, "writeCapacityUnits")] {
                if v < 1 {
                    return Err(constraint(
                        &format!("'{v}'"),
                        &format!("{at}.{m}"),
                        "Member must have value greater than or equal to 1",
                    ));
                }
            }
            Some(Throughput {
                read: r as u64,
                write: w as u64,
            })
        }
    };
    let find = |n: &str| {
        table
            .attributes
            .iter()
            .find(|a| a.name == n)
            .cloned()
            .ok_or_else(|| ApiError::Internal("index key lookup".into()))
    };
    let hash = find(&elems[0].0)?;
    let range = match elems.get(1) {
        Some((n, _)) => Some(find(n)?),
        None => None,
    };
    Ok(IndexDef {
        name,
        id: 0,
        kind,
        key_schema: KeySchema { hash, range },
        projection: ptype,
        non_key_attributes: non_key,
        status: IndexStatus::Active,
        backfilling: false,
        throughput,
        backfill_cursor: None,
    })
}

/// Every index of a CreateTable request, validated, with ids 1..=N (LSIs first), plus the
/// table-wide rules: counts, duplicate names, the projected-attribute total and that every
/// AttributeDefinition is a key of the table or of an index.
pub fn validated_indexes(
    table: &TableShape<'_>,
    lsis: Option<&Value>,
    gsis: Option<&Value>,
) -> Result<Vec<IndexDef>, ApiError> {
    let mut out: Vec<IndexDef> = Vec::new();
    for (kind, raw, list, label, max) in [
        (
            IndexKind::Local,
            lsis,
            "localSecondaryIndexes",
            "LocalSecondaryIndex",
            MAX_LSIS,
        ),
        (
            IndexKind::Global,
            gsis,
            "globalSecondaryIndexes",
            "GlobalSecondaryIndex",
            MAX_GSIS,
        ),
    ] {
        let Some(raw) = raw else { continue };
        let inputs = decode_list(raw)?;
        if inputs.is_empty() {
            return Err(invalid(format!("List of {label}es is empty")));
        }
        for (i, input) in inputs.iter().enumerate() {
            let idx = validate_index(table, kind, list, i, input)?;
            if out.iter().any(|o| o.name == idx.name) {
                return Err(invalid(format!("Duplicate index name: {}", idx.name)));
            }
            out.push(idx);
        }
        if inputs.len() > max {
            return Err(invalid(format!(
                "{label} count exceeds the per-table limit of {max}"
            )));
        }
    }
    check_projected_total(&out)?;
    let mut used: BTreeSet<&str> = BTreeSet::new();
    used.insert(&table.key_schema.hash.name);
    if let Some(r) = &table.key_schema.range {
        used.insert(&r.name);
    }
    for idx in &out {
        used.insert(idx.hash_name());
        if let Some(r) = idx.range_name() {
            used.insert(r);
        }
    }
    let defined: BTreeSet<&str> = table.attributes.iter().map(|a| a.name.as_str()).collect();
    if defined.len() > used.len() {
        return Err(invalid(format!(
            "Some AttributeDefinitions are not used. AttributeDefinitions: [{}], keys used: [{}]",
            defined.iter().copied().collect::<Vec<_>>().join(", "),
            used.iter().copied().collect::<Vec<_>>().join(", ")
        )));
    }
    for (n, idx) in out.iter_mut().enumerate() {
        idx.id = u8::try_from(n + 1).map_err(|_| ApiError::Internal("index ids".into()))?;
    }
    Ok(out)
}

/// DynamoDB's limit on NonKeyAttributes summed over all indexes of a table (the same name in
/// two indexes counts twice).
pub fn check_projected_total(indexes: &[IndexDef]) -> Result<(), ApiError> {
    let total: usize = indexes.iter().map(|i| i.non_key_attributes.len()).sum();
    if total > MAX_PROJECTED_ATTRIBUTES {
        return Err(invalid(format!(
            "The number of projected attributes in all indexes exceeds the limit of {MAX_PROJECTED_ATTRIBUTES}: {total}"
        )));
    }
    Ok(())
}
