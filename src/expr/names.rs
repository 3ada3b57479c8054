//! ExpressionAttributeNames / ExpressionAttributeValues: resolution and the "unused" check.

use std::collections::BTreeSet;

use super::{ExprContext, ExprError};
use crate::protocol::attr::AttributeValue;

/// Which placeholders the expressions of one request used. Parse every expression of the
/// request with the same `Usage`, then call [`Usage::check_all_used`].
#[derive(Clone, Debug, Default)]
pub struct Usage {
    names: BTreeSet<String>,
    values: BTreeSet<String>,
}

impl Usage {
    pub fn new() -> Usage {
        Usage::default()
    }

    pub(crate) fn use_name(&mut self, key: &str) {
        if !self.names.contains(key) {
            self.names.insert(key.to_string());
        }
    }

    pub(crate) fn use_value(&mut self, key: &str) {
        if !self.values.contains(key) {
            self.values.insert(key.to_string());
        }
    }

    /// DynamoDB rejects a request whose ExpressionAttributeNames or ExpressionAttributeValues
    /// hold a key that none of its expressions used. Names are checked first.
    pub fn check_all_used(&self, ctx: &ExprContext) -> Result<(), ExprError> {
        if let Some(names) = ctx.names {
            let unused: BTreeSet<&str> = names
                .keys()
                .filter(|k| !self.names.contains(k.as_str()))
                .map(String::as_str)
                .collect();
            if !unused.is_empty() {
                return Err(ExprError::UnusedNames(join(unused)));
            }
        }
        if let Some(values) = ctx.values {
            let unused: BTreeSet<&str> = values
                .keys()
                .filter(|k| !self.values.contains(k.as_str()))
                .map(String::as_str)
                .collect();
            if !unused.is_empty() {
                return Err(ExprError::UnusedValues(join(unused)));
            }
        }
        Ok(())
    }
}

fn join(keys: BTreeSet<&str>) -> String {
    keys.into_iter().collect::<Vec<_>>().join(", ")
}

pub(crate) fn lookup_name<'a>(ctx: &ExprContext<'a>, key: &str) -> Option<&'a str> {
    ctx.names.and_then(|m| m.get(key)).map(String::as_str)
}

pub(crate) fn lookup_value<'a>(ctx: &ExprContext<'a>, key: &str) -> Option<&'a AttributeValue> {
    ctx.values.and_then(|m| m.get(key))
}
