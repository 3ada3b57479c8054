//! The DynamoDB authorization mapping: for each operation's typed input, the exact
//! (action, resource, condition keys) it must be allowed.

use super::context::{attributes, leading_keys_of, with_request_tags, with_resource_tags, Target};
use super::eval::ContextValue;
use crate::error::ApiError;
use crate::ops::tags::{self, ListTagsOfResourceInput, TagResourceInput, UntagResourceInput};
use crate::ops::ttl::UpdateTimeToLiveInput;
use crate::ops::update_table::UpdateTableInput;
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
    Ok(named_table_target(svc, action, &name))
}

/// The table ARN with `aws:ResourceTag/*` from the table's stored tags (none when the table
/// does not exist: CreateTable, or a request that will answer ResourceNotFound).
fn named_table_target(svc: &Services, action: &str, name: &str) -> Target {
    let table = svc.catalog.table(name);
    let mut t = Target::new(format!("dynamodb:{action}"), svc.config.table_arn(name));
    if let Some(entry) = &table {
        t = with_resource_tags(t, &entry.def.tags);
    }
    t.table = table;
    t
}

/// The target of a tag operation: the table its ResourceArn names (validated first).
fn tag_target(svc: &Services, action: &str, arn: Option<&str>) -> Result<Target, ApiError> {
    let name = tags::table_of_arn(svc, arn)?;
    Ok(named_table_target(svc, action, &name))
}

/// A request's well-formed tags (the operation rejects the rest after authorization).
fn request_tags(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone()?)))
        .collect()
}

fn return_values(v: &Option<String>) -> ContextValue {
    ContextValue::Str(v.clone().unwrap_or_else(|| "NONE".into()))
}

impl Targets for CreateTableInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let mut t = table_target(svc, "CreateTable", &self.table_name)?;
        if let Some(tags) = &self.tags {
            t = with_request_tags(t, &request_tags(tags));
        }
        Ok(vec![t])
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
            if let Some(h) = t.hash_key_name() {
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
        if let (Some(key), Some(h)) = (&self.key, t.hash_key_name()) {
            t = t.with("dynamodb:LeadingKeys", leading_keys_of(key, &h));
        }
        // ProjectionExpression names attributes too (after ExpressionAttributeNames).
        let proj = projected(
            &self.projection_expression,
            &self.attributes_to_get,
            &self.expression_attribute_names,
        )?;
        Ok(vec![with_projection(t, proj)])
    }
}

impl Targets for DeleteItemInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let mut t = table_target(svc, "DeleteItem", &self.table_name)?
            .with("dynamodb:ReturnValues", return_values(&self.return_values));
        if let (Some(key), Some(h)) = (&self.key, t.hash_key_name()) {
            t = t.with("dynamodb:LeadingKeys", leading_keys_of(key, &h));
        }
        Ok(vec![t])
    }
}

// ---- The rest of the item API ------------------------------------------------------------

use crate::expr::{self, ExprContext, Usage};
use crate::protocol::attr::Item;

const ENCLOSING: &str = "dynamodb:EnclosingOperation";

/// Top-level attributes a ProjectionExpression / AttributesToGet names, after resolving
/// ExpressionAttributeNames (a bad expression is the request's validation error).
fn projected(
    expression: &Option<String>,
    to_get: &Option<Vec<String>>,
    names: &Option<Names>,
) -> Result<Option<Vec<String>>, ApiError> {
    if let Some(src) = expression {
        let ctx = ExprContext {
            names: names.as_ref(),
            values: None,
        };
        let p = expr::parse_projection(src, &ctx, &mut Usage::default())?;
        return Ok(Some(p.top_level_attributes()));
    }
    Ok(to_get.clone())
}

/// GetItem, BatchGetItem and TransactGetItems have no Select parameter; the request context
/// carries what they read as Query and Scan spell it (DynamoDB: without Select or a projection a
/// read returns ALL_ATTRIBUTES, a projection alone means SPECIFIC_ATTRIBUTES). Without it the
/// documented attribute-restriction policy (ForAllValues on `dynamodb:Attributes` plus
/// StringEqualsIfExists `dynamodb:Select` SPECIFIC_ATTRIBUTES) would let a whole-item read
/// through: both conditions hold vacuously when their keys are absent.
fn with_projection(t: Target, proj: Option<Vec<String>>) -> Target {
    let t = t.with("dynamodb:Select", select_value(&None, proj.is_some()));
    match proj {
        Some(p) => t.with("dynamodb:Attributes", attributes(p.iter())),
        None => t,
    }
}

fn select_value(select: &Option<String>, projected: bool) -> ContextValue {
    ContextValue::Str(select.clone().unwrap_or_else(|| {
        if projected {
            "SPECIFIC_ATTRIBUTES".into()
        } else {
            "ALL_ATTRIBUTES".into()
        }
    }))
}

fn leading_of_all<'a>(items: impl Iterator<Item = &'a Item>, hash: &str) -> ContextValue {
    let mut v: Vec<String> = items
        .filter_map(|i| i.get(hash).and_then(super::context::leading_key))
        .collect();
    v.sort();
    v.dedup();
    ContextValue::List(v)
}

impl Targets for UpdateItemInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let mut t = table_target(svc, "UpdateItem", &self.table_name)?
            .with("dynamodb:ReturnValues", return_values(&self.return_values));
        if let (Some(key), Some(h)) = (&self.key, t.hash_key_name()) {
            t = t.with("dynamodb:LeadingKeys", leading_keys_of(key, &h));
        }
        let ctx = ExprContext {
            names: self.expression_attribute_names.as_ref(),
            values: self.expression_attribute_values.as_ref(),
        };
        let mut names: Vec<String> = Vec::new();
        if let Some(src) = &self.update_expression {
            names.extend(
                expr::parse_update(src, &ctx, &mut Usage::default())?.top_level_attributes(),
            );
        }
        if let Some(au) = &self.attribute_updates {
            names.extend(au.keys().cloned());
        }
        if let Some(src) = &self.condition_expression {
            names.extend(
                expr::parse_condition(src, &ctx, &mut Usage::default())?.top_level_attributes(),
            );
        }
        Ok(vec![t.with("dynamodb:Attributes", attributes(names.iter()))])
    }
}

/// Query and Scan: the table or index ARN, `dynamodb:Select`, and `dynamodb:Attributes` when
/// the request projects.
fn read_target(
    svc: &Services,
    action: &str,
    table: &Option<String>,
    index: &Option<String>,
    select: &Option<String>,
    projection: Option<Vec<String>>,
) -> Result<Target, ApiError> {
    let mut t = table_target(svc, action, table)?;
    if let Some(index) = index {
        t.resource = format!("{}/index/{index}", t.resource);
    }
    t = t.with(
        "dynamodb:Select",
        select_value(select, projection.is_some()),
    );
    if let Some(p) = &projection {
        t = t.with("dynamodb:Attributes", attributes(p.iter()));
    }
    Ok(t)
}

impl Targets for QueryInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let mut t = read_target(
            svc,
            "Query",
            &self.table_name,
            &self.index_name,
            &self.select,
            projected(
                &self.projection_expression,
                &self.attributes_to_get,
                &self.expression_attribute_names,
            )?,
        )?;
        let entry = self
            .table_name
            .as_deref()
            .and_then(|n| svc.catalog.table(n));
        // On an index the key condition names the index's keys (an unknown index fails later,
        // in the operation, with DynamoDB's message).
        let schema = entry.as_ref().and_then(|e| match &self.index_name {
            Some(i) => e.def.index(i).map(|x| x.key_schema.clone()),
            None => Some(e.def.key_schema.clone()),
        });
        if let Some(schema) = schema {
            let hash = schema.hash.name.as_str();
            let range = schema.range.as_ref().map(|r| r.name.as_str());
            let ctx = ExprContext {
                names: self.expression_attribute_names.as_ref(),
                values: self.expression_attribute_values.as_ref(),
            };
            let kc = match (&self.key_condition_expression, &self.key_conditions) {
                (Some(src), _) => Some(expr::parse_key_condition(
                    src,
                    &ctx,
                    &mut Usage::default(),
                    hash,
                    range,
                )?),
                (None, Some(k)) => Some(expr::key_conditions_to_key_condition(k, hash, range)?),
                (None, None) => None,
            };
            if let Some(kc) = kc {
                let v = super::context::leading_key(&kc.partition.1);
                t = t.with(
                    "dynamodb:LeadingKeys",
                    ContextValue::List(v.into_iter().collect()),
                );
            }
        }
        Ok(vec![t])
    }
}

impl Targets for ScanInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        Ok(vec![read_target(
            svc,
            "Scan",
            &self.table_name,
            &self.index_name,
            &self.select,
            projected(
                &self.projection_expression,
                &self.attributes_to_get,
                &self.expression_attribute_names,
            )?,
        )?])
    }
}

/// Tables of a batch in name order, so that the first denial is deterministic.
fn sorted_tables<V>(m: &Option<std::collections::HashMap<String, V>>) -> Vec<(&String, &V)> {
    let mut v: Vec<(&String, &V)> = m.iter().flat_map(|m| m.iter()).collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

impl Targets for BatchGetItemInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let mut out = Vec::new();
        for (name, r) in sorted_tables(&self.request_items) {
            let table = Some(name.clone());
            let mut t = table_target(svc, "BatchGetItem", &table)?;
            if let (Some(keys), Some(h)) = (&r.keys, t.hash_key_name()) {
                t = t.with("dynamodb:LeadingKeys", leading_of_all(keys.iter(), &h));
            }
            let proj = projected(
                &r.projection_expression,
                &r.attributes_to_get,
                &r.expression_attribute_names,
            )?;
            out.push(with_projection(t, proj));
        }
        Ok(out)
    }
}

impl Targets for BatchWriteItemInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let mut out = Vec::new();
        for (name, reqs) in sorted_tables(&self.request_items) {
            let table = Some(name.clone());
            let mut t = table_target(svc, "BatchWriteItem", &table)?;
            let keys = reqs.iter().filter_map(|r| {
                r.put_request
                    .as_ref()
                    .and_then(|p| p.item.as_ref())
                    .or_else(|| r.delete_request.as_ref().and_then(|d| d.key.as_ref()))
            });
            if let Some(h) = t.hash_key_name() {
                t = t.with("dynamodb:LeadingKeys", leading_of_all(keys, &h));
            }
            let attrs = reqs
                .iter()
                .filter_map(|r| r.put_request.as_ref().and_then(|p| p.item.as_ref()))
                .flat_map(|i| i.keys());
            out.push(t.with("dynamodb:Attributes", attributes(attrs)));
        }
        Ok(out)
    }
}

impl Targets for TransactWriteItemsInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let mut out = Vec::new();
        for m in self.transact_items.iter().flatten() {
            let members = [
                ("ConditionCheckItem", &m.condition_check),
                ("PutItem", &m.put),
                ("DeleteItem", &m.delete),
                ("UpdateItem", &m.update),
            ];
            for (action, a) in members {
                let Some(a) = a else { continue };
                let mut t = table_target(svc, action, &a.table_name)?
                    .with(ENCLOSING, ContextValue::Str("TransactWriteItems".into()));
                let key = a.item.as_ref().or(a.key.as_ref());
                if let (Some(k), Some(h)) = (key, t.hash_key_name()) {
                    t = t.with("dynamodb:LeadingKeys", leading_keys_of(k, &h));
                }
                let ctx = ExprContext {
                    names: a.expression_attribute_names.as_ref(),
                    values: a.expression_attribute_values.as_ref(),
                };
                let mut names: Vec<String> = Vec::new();
                if let Some(item) = &a.item {
                    names.extend(item.keys().cloned());
                }
                if let Some(src) = &a.update_expression {
                    names.extend(
                        expr::parse_update(src, &ctx, &mut Usage::default())?
                            .top_level_attributes(),
                    );
                }
                if !names.is_empty() {
                    t = t.with("dynamodb:Attributes", attributes(names.iter()));
                }
                out.push(t);
            }
        }
        Ok(out)
    }
}

impl Targets for TransactGetItemsInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let mut out = Vec::new();
        for g in self
            .transact_items
            .iter()
            .flatten()
            .filter_map(|m| m.get.as_ref())
        {
            let mut t = table_target(svc, "GetItem", &g.table_name)?
                .with(ENCLOSING, ContextValue::Str("TransactGetItems".into()));
            if let (Some(k), Some(h)) = (&g.key, t.hash_key_name()) {
                t = t.with("dynamodb:LeadingKeys", leading_keys_of(k, &h));
            }
            let proj = projected(
                &g.projection_expression,
                &None,
                &g.expression_attribute_names,
            )?;
            out.push(with_projection(t, proj));
        }
        Ok(out)
    }
}

// ---- The table API: UpdateTable, time to live, tags ----------------------------------------

impl Targets for UpdateTableInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let name = tags::table_name_or_arn(svc, self.table_name.clone())?;
        Ok(vec![named_table_target(svc, "UpdateTable", &name)])
    }
}

impl Targets for UpdateTimeToLiveInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let name = tags::table_name_or_arn(svc, self.table_name.clone())?;
        Ok(vec![named_table_target(svc, "UpdateTimeToLive", &name)])
    }
}

/// DescribeTimeToLive: its TableName may be the table's ARN.
pub fn describe_ttl_targets(svc: &Services, i: &TableNameInput) -> Result<Vec<Target>, ApiError> {
    let name = tags::table_name_or_arn(svc, i.table_name.clone())?;
    Ok(vec![named_table_target(svc, "DescribeTimeToLive", &name)])
}

impl Targets for TagResourceInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let t = tag_target(svc, "TagResource", self.resource_arn.as_deref())?;
        Ok(vec![match &self.tags {
            Some(tags) => with_request_tags(t, &request_tags(tags)),
            None => t,
        }])
    }
}

impl Targets for UntagResourceInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let t = tag_target(svc, "UntagResource", self.resource_arn.as_deref())?;
        // UntagResource names keys only: aws:TagKeys, no aws:RequestTag.
        Ok(vec![match &self.tag_keys {
            Some(keys) => t.with("aws:TagKeys", ContextValue::List(keys.clone())),
            None => t,
        }])
    }
}

impl Targets for ListTagsOfResourceInput {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        Ok(vec![tag_target(
            svc,
            "ListTagsOfResource",
            self.resource_arn.as_deref(),
        )?])
    }
}
