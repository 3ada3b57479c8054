//! Typed operation inputs (the JSON request bodies) and their decoding.
//!
//! Required members are `Option`s checked with [`required`] so that a missing one gets
//! DynamoDB's ValidationException wording instead of a serde message.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::attr::{AttributeValue, Item, VALIDATION_PREFIX};
use crate::error::ApiError;

pub use super::input_items::*;

/// Decodes a request body into an operation's input. Shape errors are
/// SerializationException, value errors (bad numbers, empty sets, ...) ValidationException.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let msg = full.strip_suffix(&suffix).unwrap_or(&full);
        match msg.strip_prefix(VALIDATION_PREFIX) {
            Some(v) => ApiError::Validation(v.to_string()),
            None if e.is_syntax() || e.is_eof() => {
                ApiError::Serialization("Unable to parse the request body as JSON".into())
            }
            None => ApiError::Serialization(msg.to_string()),
        }
    })
}

/// DynamoDB's wording for a missing required member (`member` in lowerCamelCase).
pub fn required<T>(v: Option<T>, member: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| {
        ApiError::Validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// DynamoDB table names: 3-255 characters of `[a-zA-Z0-9_.-]`.
pub fn table_name(v: Option<String>) -> Result<String, ApiError> {
    let name = required(v, "tableName")?;
    let mut problems = Vec::new();
    if name.len() < 3 {
        problems.push(format!("Value '{name}' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3"));
    }
    if name.len() > 255 {
        problems.push(format!("Value '{name}' at 'tableName' failed to satisfy constraint: Member must have length less than or equal to 255"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        problems.push(format!("Value '{name}' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"));
    }
    if problems.is_empty() {
        Ok(name)
    } else {
        Err(ApiError::Validation(format!(
            "{} validation error{} detected: {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("; ")
        )))
    }
}

pub type Names = HashMap<String, String>;
pub type Values = HashMap<String, AttributeValue>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeySchemaElement {
    pub attribute_name: Option<String>,
    pub key_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    pub attribute_name: Option<String>,
    pub attribute_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProvisionedThroughput {
    pub read_capacity_units: Option<i64>,
    pub write_capacity_units: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct SseSpecification {
    #[serde(rename = "Enabled")]
    pub enabled: Option<bool>,
    #[serde(rename = "SSEType")]
    pub sse_type: Option<String>,
    #[serde(rename = "KMSMasterKeyId")]
    pub kms_master_key_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateTableInput {
    pub table_name: Option<String>,
    pub key_schema: Option<Vec<KeySchemaElement>>,
    pub attribute_definitions: Option<Vec<AttributeDefinition>>,
    pub billing_mode: Option<String>,
    pub provisioned_throughput: Option<ProvisionedThroughput>,
    #[serde(rename = "SSESpecification")]
    pub sse_specification: Option<SseSpecification>,
    pub global_secondary_indexes: Option<serde_json::Value>,
    pub local_secondary_indexes: Option<serde_json::Value>,
    pub tags: Option<Vec<Tag>>,
    pub deletion_protection_enabled: Option<bool>,
    pub table_class: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableNameInput {
    pub table_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTablesInput {
    pub exclusive_start_table_name: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutItemInput {
    pub table_name: Option<String>,
    pub item: Option<Item>,
    pub return_values: Option<String>,
    pub return_consumed_capacity: Option<String>,
    pub return_item_collection_metrics: Option<String>,
    pub return_values_on_condition_check_failure: Option<String>,
    pub condition_expression: Option<String>,
    pub expression_attribute_names: Option<Names>,
    pub expression_attribute_values: Option<Values>,
    pub expected: Option<serde_json::Value>,
    pub conditional_operator: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetItemInput {
    pub table_name: Option<String>,
    pub key: Option<Item>,
    pub consistent_read: Option<bool>,
    pub projection_expression: Option<String>,
    pub expression_attribute_names: Option<Names>,
    pub attributes_to_get: Option<Vec<String>>,
    pub return_consumed_capacity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteItemInput {
    pub table_name: Option<String>,
    pub key: Option<Item>,
    pub return_values: Option<String>,
    pub return_consumed_capacity: Option<String>,
    pub return_item_collection_metrics: Option<String>,
    pub return_values_on_condition_check_failure: Option<String>,
    pub condition_expression: Option<String>,
    pub expression_attribute_names: Option<Names>,
    pub expression_attribute_values: Option<Values>,
    pub expected: Option<serde_json::Value>,
    pub conditional_operator: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_members_and_bad_names_use_dynamodb_wording() {
        let e = table_name(None).unwrap_err().to_string();
        assert!(e.contains("Value null at 'tableName'"));
        let e = table_name(Some("a!".into())).unwrap_err().to_string();
        assert!(e.starts_with("2 validation errors detected"), "{e}");
        assert!(table_name(Some("good_name-1.x".into())).is_ok());
    }

    #[test]
    fn decode_separates_shape_and_value_errors() {
        let e = decode::<PutItemInput>(b"{\"TableName\": 5}").unwrap_err();
        assert!(matches!(e, ApiError::Serialization(_)), "{e:?}");
        let e =
            decode::<PutItemInput>(b"{\"TableName\": \"t\", \"Item\": {\"a\": {}}}").unwrap_err();
        assert!(matches!(e, ApiError::Validation(_)), "{e:?}");
        let e = decode::<PutItemInput>(b"{not json").unwrap_err();
        assert!(matches!(e, ApiError::Serialization(_)), "{e:?}");
        assert!(decode::<ListTablesInput>(b"").is_ok());
    }
}
