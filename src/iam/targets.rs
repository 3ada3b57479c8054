//! The DynamoDB authorization mapping: for each operation's typed input, the exact
//! (action, resource, condition keys) it must be allowed.

use super::context::{attributes, leading_keys_of, Target};
use super::eval::ContextValue;
use crate::error::ApiError;
use crate::ops::Services;
use crate::protocol::input::*;
use crate::protocol::Operation;

pub trait Targets {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError>;
}

pub fn targets_for<T: Targets>(svc: &Services, input: &T) -> Result<Vec<Target>, ApiError> {
    input.targets(svc)
}

fn table_target(svc: &Services, action: &str, table: &Option<String>) -> Result<Target, ApiError> {
    let name = table_name(table.clone())?;
    Ok(Target::new(
        format!("dynamodb:{action}"),
        svc.config.table_arn(&name),
    ))
}

fn hash_key_name(svc: &Services, table: &Option<String>) -> Option<String> {
    let name = table.as_deref()?;
    svc.catalog
        .table(name)
        .map(|e| e.def.key_schema.hash.name.clone())
}

fn return_values(v: &Option<String>) -> ContextValue {
    ContextValue::Str(v.clone().unwrap_or_else(|| "NONE".into()))
}

impl Targets for CreateTableInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        Ok(vec![table_target(svc, "CreateTable", &self.table_name)?])
    }
}

impl Targets for (Operation, &TableNameInput) {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        Ok(vec![table_target(svc, self.0.name(), &self.1.table_name)?])
    }
}

impl Targets for ListTablesInput {
    fn targets(&self, _svc: &Services) -> Result<Vec<Target>, ApiError> {
        // IAM: ListTables has no resource type; it is authorized on "*".
        Ok(vec![Target::new("dynamodb:ListTables", "*")])
    }
}

impl Targets for PutItemInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let mut t = table_target(svc, "PutItem", &self.table_name)?
            .with("dynamodb:ReturnValues", return_values(&self.return_values));
        if let Some(item) = &self.item {
            if let Some(h) = hash_key_name(svc, &self.table_name) {
                t = t.with("dynamodb:LeadingKeys", leading_keys_of(item, &h));
            }
            t = t.with("dynamodb:Attributes", attributes(item.keys()));
        }
        Ok(vec![t])
    }
}

impl Targets for GetItemInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let mut t = table_target(svc, "GetItem", &self.table_name)?;
        if let (Some(key), Some(h)) = (&self.key, hash_key_name(svc, &self.table_name)) {
            t = t.with("dynamodb:LeadingKeys", leading_keys_of(key, &h));
        }
        if let Some(names) = &self.attributes_to_get {
            t = t.with("dynamodb:Attributes", attributes(names.iter()));
        }
        Ok(vec![t])
    }
}

impl Targets for DeleteItemInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let mut t = table_target(svc, "DeleteItem", &self.table_name)?
            .with("dynamodb:ReturnValues", return_values(&self.return_values));
        if let (Some(key), Some(h)) = (&self.key, hash_key_name(svc, &self.table_name)) {
            t = t.with("dynamodb:LeadingKeys", leading_keys_of(key, &h));
        }
        Ok(vec![t])
    }
}
