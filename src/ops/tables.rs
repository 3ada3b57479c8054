//! CreateTable, DescribeTable, ListTables, DeleteTable.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::Services;
use crate::catalog::tables::{KeyAttr, KeySchema, ScalarType, TableDef, Throughput};
use crate::crypto::keyring::create_table_keys;
use crate::crypto::secret::random_bytes;
use crate::error::ApiError;
use crate::kms::KeyState;
use crate::protocol::input::{
    required, table_name, CreateTableInput, ListTablesInput, TableNameInput,
};

/// DynamoDB: ListTables returns at most 100 names per call.
const LIST_TABLES_MAX: usize = 100;

fn enum_error(value: &str, member: &str, allowed: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: [{allowed}]"
    ))
}

fn validated_schema(input: &CreateTableInput) -> Result<(KeySchema, Vec<KeyAttr>), ApiError> {
    let schema = input
        .key_schema
        .as_ref()
        .ok_or_else(|| required::<()>(None, "keySchema").unwrap_err())?;
    let defs = input
        .attribute_definitions
        .as_ref()
        .ok_or_else(|| required::<()>(None, "attributeDefinitions").unwrap_err())?;
    if schema.is_empty() || schema.len() > 2 {
        let bound = if schema.is_empty() {
            "greater than or equal to 1"
        } else {
            "less than or equal to 2"
        };
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{}' at 'keySchema' failed to satisfy constraint: Member must have length {bound}",
            schema.len()
        )));
    }
    let mut attrs = Vec::with_capacity(defs.len());
    let mut seen = HashSet::new();
    for (i, d) in defs.iter().enumerate() {
        let name = required(
            d.attribute_name.clone(),
            &format!("attributeDefinitions.{}.member.attributeName", i + 1),
        )?;
        let ty_s = required(
            d.attribute_type.clone(),
            &format!("attributeDefinitions.{}.member.attributeType", i + 1),
        )?;
        let ty = ScalarType::parse(&ty_s).ok_or_else(|| {
            enum_error(
                &ty_s,
                &format!("attributeDefinitions.{}.member.attributeType", i + 1),
                "B, N, S",
            )
        })?;
        if !seen.insert(name.clone()) {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Duplicate AttributeName in AttributeDefinitions: {name}"
            )));
        }
        attrs.push(KeyAttr { name, ty });
    }
    let mut elems = Vec::with_capacity(schema.len());
    for (i, e) in schema.iter().enumerate() {
        let name = required(
            e.attribute_name.clone(),
            &format!("keySchema.{}.member.attributeName", i + 1),
        )?;
        let kt = required(
            e.key_type.clone(),
            &format!("keySchema.{}.member.keyType", i + 1),
        )?;
        if kt != "HASH" && kt != "RANGE" {
            return Err(enum_error(
                &kt,
                &format!("keySchema.{}.member.keyType", i + 1),
                "HASH, RANGE",
            ));
        }
        if name.is_empty() || name.len() > 255 {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{name}' at 'keySchema.{}.member.attributeName' failed to satisfy constraint: Member must have length between 1 and 255",
                i + 1
            )));
        }
        elems.push((name, kt));
    }
    if elems[0].1 != "HASH" {
        return Err(ApiError::validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ));
    }
    if let Some(second) = elems.get(1) {
        if second.1 != "RANGE" {
            return Err(ApiError::validation(
                "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
            ));
        }
        if second.0 == elems[0].0 {
            return Err(ApiError::validation(
                "Invalid KeySchema: Both the Hash Key and the Range Key element in the KeySchema have the same name",
            ));
        }
    }
    let find = |n: &str| attrs.iter().find(|a| a.name == n).cloned();
    let missing: Vec<&str> = elems
        .iter()
        .filter(|(n, _)| find(n).is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
            missing.join(", "),
            attrs.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    // With indexes, crate::indexes checks that every definition is used by some key.
    let indexed =
        input.global_secondary_indexes.is_some() || input.local_secondary_indexes.is_some();
    if attrs.len() != elems.len() && !indexed {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    let hash = find(&elems[0].0).ok_or_else(|| ApiError::Internal("hash key lookup".into()))?;
    let range = match elems.get(1) {
        Some((n, _)) => Some(find(n).ok_or_else(|| ApiError::Internal("range key lookup".into()))?),
        None => None,
    };
    Ok((KeySchema { hash, range }, attrs))
}

fn validated_billing(input: &CreateTableInput) -> Result<(String, Option<Throughput>), ApiError> {
    let mode = input
        .billing_mode
        .clone()
        .unwrap_or_else(|| "PROVISIONED".to_string());
    match mode.as_str() {
        "PROVISIONED" => {
            let t = input.provisioned_throughput.as_ref();
            let (Some(r), Some(w)) = (
                t.and_then(|t| t.read_capacity_units),
                t.and_then(|t| t.write_capacity_units),
            ) else {
                return Err(ApiError::validation(
                    "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
                ));
            };
            for (v, m) in [(r, "readCapacityUnits"), (w, "writeCapacityUnits")] {
                if v < 1 {
                    return Err(ApiError::validation(format!(
                        "1 validation error detected: Value '{v}' at 'provisionedThroughput.{m}' failed to satisfy constraint: Member must have value greater than or equal to 1"
                    )));
                }
            }
            Ok((
                mode,
                Some(Throughput {
                    read: r as u64,
                    write: w as u64,
                }),
            ))
        }
        "PAY_PER_REQUEST" => {
            if input.provisioned_throughput.is_some() {
                return Err(ApiError::validation(
                    "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            Ok((mode, None))
        }
        other => Err(enum_error(
            other,
            "billingMode",
            "PROVISIONED, PAY_PER_REQUEST",
        )),
    }
}

/// The KMS key a new table is sealed under, and whether the table named it.
pub(crate) async fn resolve_table_kms_key(
    svc: &Services,
    input: &CreateTableInput,
) -> Result<(String, bool), ApiError> {
    let Some(sse) = &input.sse_specification else {
        return Ok((svc.default_kms_key.clone(), false));
    };
    if let Some(t) = &sse.sse_type {
        if t != "KMS" && t != "AES256" {
            return Err(enum_error(t, "sSESpecification.sSEType", "AES256, KMS"));
        }
    }
    let explicit = sse.enabled == Some(true) || sse.sse_type.as_deref() == Some("KMS");
    if !explicit {
        if sse.kms_master_key_id.is_some() {
            return Err(ApiError::validation(
                "One or more parameter values were invalid: KMSMasterKeyId can only be specified when SSE is enabled and SSEType is KMS",
            ));
        }
        return Ok((svc.default_kms_key.clone(), false));
    }
    let key_id = sse
        .kms_master_key_id
        .clone()
        .unwrap_or_else(|| svc.default_kms_key.clone());
    let info = svc.kms.describe_key(&key_id).await.map_err(|e| {
        ApiError::validation(format!(
            "One or more parameter values were invalid: KMSMasterKeyId {key_id} is not usable: {e}"
        ))
    })?;
    if info.state != KeyState::Enabled {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: KMSMasterKeyId {} is {:?}",
            info.arn, info.state
        )));
    }
    Ok((info.arn, true))
}

pub async fn create_table(svc: &Services, input: CreateTableInput) -> Result<Value, ApiError> {
    let name = table_name(input.table_name.clone())?;
    let (key_schema, attribute_definitions) = validated_schema(&input)?;
    let (billing_mode, throughput) = validated_billing(&input)?;
    let indexes = crate::indexes::create::validated_indexes(
        &crate::indexes::create::TableShape {
            key_schema: &key_schema,
            attributes: &attribute_definitions,
            billing_mode: &billing_mode,
        },
        input.local_secondary_indexes.as_ref(),
        input.global_secondary_indexes.as_ref(),
    )?;
    if let Some(class) = &input.table_class {
        if class != "STANDARD" && class != "STANDARD_INFREQUENT_ACCESS" {
            return Err(enum_error(
                class,
                "tableClass",
                "STANDARD, STANDARD_INFREQUENT_ACCESS",
            ));
        }
    }
    let tags: std::collections::BTreeMap<String, String> =
        super::tags::validated_tags(input.tags.as_deref().unwrap_or(&[]))?
            .into_iter()
            .collect();
    if svc.catalog.table(&name).is_some() {
        return Err(ApiError::ResourceInUse(format!(
            "Table already exists: {name}"
        )));
    }
    let (kms_key, sse_explicit) = resolve_table_kms_key(svc, &input).await?;
    let keyspace: [u8; 16] = random_bytes().map_err(|e| ApiError::Internal(e.to_string()))?;
    let (wrapped, keys) = create_table_keys(svc.kms.as_ref(), &kms_key, &keyspace).await?;
    let def = TableDef {
        name,
        table_id: uuid_v4()?,
        keyspace,
        key_schema,
        attribute_definitions,
        billing_mode,
        throughput,
        created: crate::util::epoch_seconds_f64(),
        sse_explicit,
        keys: wrapped,
        deletion_protection: input.deletion_protection_enabled.unwrap_or(false),
        table_class: input
            .table_class
            .clone()
            .unwrap_or_else(|| "STANDARD".into()),
        tags,
        ttl_attribute: None,
        pay_per_request_since: None,
        resource_policy: None,
        indexes,
    };
    let entry = svc.catalog.create_table(def, keys).await?;
    Ok(json!({ "TableDescription": describe(svc, &entry.def, entry.stats.snapshot(), "ACTIVE") }))
}

pub async fn describe_table(svc: &Services, input: TableNameInput) -> Result<Value, ApiError> {
    let name = table_name(input.table_name)?;
    let entry = svc.catalog.table(&name).ok_or_else(|| {
        ApiError::ResourceNotFound(format!(
            "Requested resource not found: Table: {name} not found"
        ))
    })?;
    if !entry.def.indexes.is_empty() {
        let (store, ks) = (svc.store.clone(), entry.def.keyspace);
        let ids: Vec<u8> = entry.def.indexes.iter().map(|i| i.id).collect();
        super::blocking(move || {
            for id in ids {
                crate::indexes::stats::ensure_counted(store.as_ref(), &ks, id)?;
            }
            Ok(())
        })
        .await?;
    }
    let mut table = describe(svc, &entry.def, entry.stats.snapshot(), "ACTIVE");
    if let Some(since) = entry.keys.inaccessible_since() {
        // DynamoDB's state for a table whose KMS key is disabled or scheduled for deletion.
        table["TableStatus"] = json!("INACCESSIBLE_ENCRYPTION_CREDENTIALS");
        table["SSEDescription"] = json!({
            "Status": "ENABLED",
            "SSEType": "KMS",
            "KMSMasterKeyArn": entry.def.keys.kms_key_arn,
            "InaccessibleEncryptionDateTime": since,
        });
    }
    Ok(json!({ "Table": table }))
}

pub async fn list_tables(svc: &Services, input: ListTablesInput) -> Result<Value, ApiError> {
    let limit = match input.limit {
        None => LIST_TABLES_MAX,
        Some(l) if (1..=LIST_TABLES_MAX as i64).contains(&l) => l as usize,
        Some(l) => {
            let bound = if l < 1 {
                "greater than or equal to 1"
            } else {
                "less than or equal to 100"
            };
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value {bound}"
            )));
        }
    };
    let names = svc.catalog.table_names();
    let start = match &input.exclusive_start_table_name {
        Some(s) => names.partition_point(|n| n.as_str() <= s.as_str()),
        None => 0,
    };
    let page: Vec<&String> = names.iter().skip(start).take(limit).collect();
    let mut out = json!({ "TableNames": page });
    if start + page.len() < names.len() {
        if let Some(last) = page.last() {
            out["LastEvaluatedTableName"] = json!(last);
        }
    }
    Ok(out)
}

pub async fn delete_table(svc: &Services, input: TableNameInput) -> Result<Value, ApiError> {
    let name = table_name(input.table_name)?;
    let entry = svc.catalog.table(&name).ok_or_else(|| {
        ApiError::ResourceNotFound(format!(
            "Requested resource not found: Table: {name} not found"
        ))
    })?;
    if entry.def.deletion_protection {
        return Err(ApiError::validation(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first."
        ));
    }
    let entry = svc.catalog.delete_table(&name).await?;
    // Keyspaces are never reused, so the deleted table's commit gate can go.
    crate::indexes::gate::forget(&entry.def.keyspace);
    Ok(json!({ "TableDescription": describe(svc, &entry.def, entry.stats.snapshot(), "DELETING") }))
}

pub(crate) fn describe(svc: &Services, def: &TableDef, stats: (i64, i64), status: &str) -> Value {
    let mut key_schema =
        vec![json!({"AttributeName": def.key_schema.hash.name, "KeyType": "HASH"})];
    if let Some(r) = &def.key_schema.range {
        key_schema.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
    }
    let attrs: Vec<Value> = def
        .attribute_definitions
        .iter()
        .map(|a| json!({"AttributeName": a.name, "AttributeType": a.ty.as_str()}))
        .collect();
    let (read, write) = def
        .throughput
        .as_ref()
        .map(|t| (t.read, t.write))
        .unwrap_or((0, 0));
    let mut billing = json!({"BillingMode": def.billing_mode});
    if def.billing_mode == "PAY_PER_REQUEST" {
        billing["LastUpdateToPayPerRequestDateTime"] =
            json!(def.pay_per_request_since.unwrap_or(def.created));
    }
    let mut t = json!({
        "TableName": def.name,
        "TableId": def.table_id,
        "TableArn": def.arn(&svc.config.region, &svc.config.account_id),
        "TableStatus": status,
        "CreationDateTime": def.created,
        "KeySchema": key_schema,
        "AttributeDefinitions": attrs,
        "ItemCount": stats.0,
        "TableSizeBytes": stats.1,
        "ProvisionedThroughput": {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": read, "WriteCapacityUnits": write},
        "BillingModeSummary": billing,
        "DeletionProtectionEnabled": def.deletion_protection,
        "TableClassSummary": {"TableClass": def.table_class},
    });
    if def.sse_explicit {
        t["SSEDescription"] = json!({
            "Status": "ENABLED",
            "SSEType": "KMS",
            "KMSMasterKeyArn": def.keys.kms_key_arn,
        });
    }
    let arn = def.arn(&svc.config.region, &svc.config.account_id);
    let (lsis, gsis) = crate::indexes::describe::describe(def, &arn);
    if let Some(l) = lsis {
        t["LocalSecondaryIndexes"] = l;
    }
    if let Some(g) = gsis {
        t["GlobalSecondaryIndexes"] = g;
    }
    t
}

/// A random (version 4) UUID for TableId.
fn uuid_v4() -> Result<String, ApiError> {
    let mut b: [u8; 16] = random_bytes().map_err(|e| ApiError::Internal(e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// DynamoDB's default account and table throughput quotas (accepted and reported; sealdb does
/// not throttle).
pub fn describe_limits() -> Value {
    json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    })
}

/// The server's own address (the Host the client used), since SDKs with endpoint discovery
/// send their next requests there. DynamoDB: cache period 1440 minutes.
pub fn describe_endpoints(host: &str) -> Value {
    json!({ "Endpoints": [{ "Address": host, "CachePeriodInMinutes": 1440 }] })
}
