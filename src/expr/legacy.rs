//! The legacy (pre-expression) parameters, translated into the expression AST so that one
//! evaluator serves both: Expected + ConditionalOperator, QueryFilter / ScanFilter,
//! KeyConditions, AttributeUpdates and AttributesToGet. Attribute names here are literal
//! (no placeholders, no reserved-word check), as in DynamoDB.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::ast::{CmpOp, Cond, Operand, Path, SetValue, UpdOperand};
use super::eval::compare_values;
use super::parse::{Condition as ExprCondition, Projection};
use super::parse_update::{is_set, KeyCondition, SortCondition, Update};
use super::ExprError;
use crate::protocol::attr::AttributeValue;

/// One entry of `Expected`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ExpectedAttributeValue {
    pub value: Option<AttributeValue>,
    pub exists: Option<bool>,
    pub comparison_operator: Option<String>,
    pub attribute_value_list: Option<Vec<AttributeValue>>,
}

/// One entry of `KeyConditions`, `QueryFilter` or `ScanFilter`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Condition {
    pub comparison_operator: String,
    pub attribute_value_list: Option<Vec<AttributeValue>>,
}

/// One entry of `AttributeUpdates`. `Action` defaults to PUT.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeValueUpdate {
    pub value: Option<AttributeValue>,
    pub action: Option<String>,
}

/// `ConditionalOperator`: how several legacy conditions combine (default AND).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConditionalOperator {
    #[default]
    And,
    Or,
}

fn invalid(detail: impl Into<String>) -> ExprError {
    ExprError::InvalidParameter(detail.into())
}

fn is_scalar(v: &AttributeValue) -> bool {
    matches!(
        v,
        AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_)
    )
}

/// One legacy comparison on attribute `name`.
fn legacy_cond(name: &str, op: &str, args: &[AttributeValue]) -> Result<Cond, ExprError> {
    let path = || Operand::Path(Path::attr(name));
    let val = |v: &AttributeValue| Operand::Value(v.clone());
    let arity_ok = match op {
        "NULL" | "NOT_NULL" => args.is_empty(),
        "BETWEEN" => args.len() == 2,
        "IN" => !args.is_empty(),
        "EQ" | "NE" | "LE" | "LT" | "GE" | "GT" | "CONTAINS" | "NOT_CONTAINS" | "BEGINS_WITH" => {
            args.len() == 1
        }
        _ => {
            return Err(invalid(format!(
                "Unsupported ComparisonOperator: {op} for AttributeValueList"
            )))
        }
    };
    if !arity_ok {
        return Err(invalid(format!(
            "Invalid number of argument(s) for the {op} ComparisonOperator"
        )));
    }
    let not_valid = |v: &AttributeValue| {
        invalid(format!(
            "ComparisonOperator {op} is not valid for {} AttributeValue type",
            v.type_name()
        ))
    };
    let cmp = |o: CmpOp| -> Result<Cond, ExprError> {
        let v = args.first().ok_or_else(|| invalid("missing value"))?;
        if !matches!(o, CmpOp::Eq | CmpOp::Ne) && !is_scalar(v) {
            return Err(not_valid(v));
        }
        Ok(Cond::Cmp(o, path(), val(v)))
    };
    match (op, args) {
        ("EQ", _) => cmp(CmpOp::Eq),
        ("NE", _) => cmp(CmpOp::Ne),
        ("LE", _) => cmp(CmpOp::Le),
        ("LT", _) => cmp(CmpOp::Lt),
        ("GE", _) => cmp(CmpOp::Ge),
        ("GT", _) => cmp(CmpOp::Gt),
        ("NULL", _) => Ok(Cond::AttributeNotExists(Path::attr(name))),
        ("NOT_NULL", _) => Ok(Cond::AttributeExists(Path::attr(name))),
        ("CONTAINS" | "NOT_CONTAINS", [v]) => {
            if !is_scalar(v) {
                return Err(not_valid(v));
            }
            let c = Cond::Contains(path(), val(v));
            Ok(if op == "CONTAINS" {
                c
            } else {
                // The legacy NOT_CONTAINS needs the attribute to exist.
                Cond::And(
                    Box::new(Cond::AttributeExists(Path::attr(name))),
                    Box::new(Cond::Not(Box::new(c))),
                )
            })
        }
        ("BEGINS_WITH", [v]) => {
            if !matches!(v, AttributeValue::S(_) | AttributeValue::B(_)) {
                return Err(not_valid(v));
            }
            Ok(Cond::BeginsWith(path(), val(v)))
        }
        ("IN", list) => {
            if let Some(v) = list.iter().find(|v| !is_scalar(v)) {
                return Err(not_valid(v));
            }
            Ok(Cond::In(path(), list.iter().map(val).collect()))
        }
        ("BETWEEN", [lo, hi]) => {
            if let Some(v) = [lo, hi].into_iter().find(|v| !is_scalar(v)) {
                return Err(not_valid(v));
            }
            if lo.type_name() != hi.type_name() {
                return Err(invalid(
                    "AttributeValues inside AttributeValueList must be of same type",
                ));
            }
            if compare_values(lo, hi) == Some(std::cmp::Ordering::Greater) {
                return Err(invalid(
                    "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
                ));
            }
            Ok(Cond::Between(path(), val(lo), val(hi)))
        }
        _ => Err(invalid(format!(
            "Invalid number of argument(s) for the {op} ComparisonOperator"
        ))),
    }
}

fn combine(conds: Vec<Cond>, op: ConditionalOperator) -> Option<ExprCondition> {
    let mut it = conds.into_iter();
    let first = it.next()?;
    let root = it.fold(first, |acc, c| match op {
        ConditionalOperator::And => Cond::And(Box::new(acc), Box::new(c)),
        ConditionalOperator::Or => Cond::Or(Box::new(acc), Box::new(c)),
    });
    Some(ExprCondition::from_cond(root))
}

fn sorted<V>(m: &HashMap<String, V>) -> BTreeMap<&str, &V> {
    m.iter().map(|(k, v)| (k.as_str(), v)).collect()
}

/// `Expected` (+ `ConditionalOperator`) as a condition; None when `expected` is empty.
pub fn expected_to_condition(
    expected: &HashMap<String, ExpectedAttributeValue>,
    op: Option<ConditionalOperator>,
) -> Result<Option<ExprCondition>, ExprError> {
    let mut conds = Vec::new();
    for (name, e) in sorted(expected) {
        let c = if let Some(cmp) = &e.comparison_operator {
            if e.value.is_some() {
                return Err(invalid(format!(
                    "Value and ComparisonOperator cannot be used together for Attribute: {name}"
                )));
            }
            if e.exists.is_some() {
                return Err(invalid(format!(
                    "Exists and ComparisonOperator cannot be used together for Attribute: {name}"
                )));
            }
            legacy_cond(name, cmp, e.attribute_value_list.as_deref().unwrap_or(&[]))?
        } else if e.attribute_value_list.is_some() {
            return Err(invalid(format!(
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
            )));
        } else {
            match (e.exists, &e.value) {
                (Some(false), Some(_)) => {
                    return Err(invalid(format!(
                        "Value cannot be used when Exists is false for Attribute: {name}"
                    )))
                }
                (Some(false), None) => Cond::AttributeNotExists(Path::attr(name)),
                (_, Some(v)) => Cond::Cmp(
                    CmpOp::Eq,
                    Operand::Path(Path::attr(name)),
                    Operand::Value(v.clone()),
                ),
                (None, None) => {
                    return Err(invalid(format!(
                        "Value must be provided when Exists is null for Attribute: {name}"
                    )))
                }
                (Some(true), None) => {
                    return Err(invalid(format!(
                        "Value must be provided when Exists is true for Attribute: {name}"
                    )))
                }
            }
        };
        conds.push(c);
    }
    Ok(combine(conds, op.unwrap_or_default()))
}

/// `QueryFilter` / `ScanFilter` (+ `ConditionalOperator`) as a condition.
pub fn filter_to_condition(
    filter: &HashMap<String, Condition>,
    op: Option<ConditionalOperator>,
) -> Result<Option<ExprCondition>, ExprError> {
    let mut conds = Vec::new();
    for (name, c) in sorted(filter) {
        conds.push(legacy_cond(
            name,
            &c.comparison_operator,
            c.attribute_value_list.as_deref().unwrap_or(&[]),
        )?);
    }
    Ok(combine(conds, op.unwrap_or_default()))
}

/// `KeyConditions` for a table (or index) keyed on `hash_key` [+ `range_key`].
pub fn key_conditions_to_key_condition(
    kc: &HashMap<String, Condition>,
    hash_key: &str,
    range_key: Option<&str>,
) -> Result<KeyCondition, ExprError> {
    if kc.is_empty() || kc.len() > 2 {
        return Err(ExprError::KeyCondition(
            "Conditions can be of length 1 or 2 only".into(),
        ));
    }
    let mut partition = None;
    let mut sort = None;
    for (name, c) in sorted(kc) {
        let args = c.attribute_value_list.as_deref().unwrap_or(&[]);
        let cond = legacy_cond(name, &c.comparison_operator, args)?;
        let one = || args.first().cloned().unwrap_or(AttributeValue::Null);
        let sc = match (&cond, c.comparison_operator.as_str()) {
            (_, "EQ") => SortCondition::Eq(one()),
            (_, "LT") => SortCondition::Lt(one()),
            (_, "LE") => SortCondition::Le(one()),
            (_, "GT") => SortCondition::Gt(one()),
            (_, "GE") => SortCondition::Ge(one()),
            (_, "BEGINS_WITH") => SortCondition::BeginsWith(one()),
            (Cond::Between(_, Operand::Value(lo), Operand::Value(hi)), _) => {
                SortCondition::Between(lo.clone(), hi.clone())
            }
            _ => {
                return Err(ExprError::KeyCondition(
                    "Attempted conditional constraint is not an indexable operation".into(),
                ))
            }
        };
        if name == hash_key {
            match sc {
                SortCondition::Eq(v) => partition = Some((name.to_string(), v)),
                _ => {
                    return Err(ExprError::KeyCondition(
                        "Query key condition not supported".into(),
                    ))
                }
            }
        } else if Some(name) == range_key {
            sort = Some((name.to_string(), sc));
        } else {
            return Err(ExprError::KeyCondition(
                "Query key condition not supported".into(),
            ));
        }
    }
    match partition {
        Some(partition) => Ok(KeyCondition { partition, sort }),
        None => Err(ExprError::KeyCondition(format!(
            "Query condition missed key schema element: {hash_key}"
        ))),
    }
}

/// `AttributesToGet` as a projection.
pub fn attributes_to_get_to_projection(names: &[String]) -> Result<Projection, ExprError> {
    let mut seen = std::collections::BTreeSet::new();
    for n in names {
        if !seen.insert(n.as_str()) {
            return Err(invalid(format!("Duplicate value in attribute name: {n}")));
        }
    }
    Ok(Projection::from_paths(
        names.iter().map(|n| Path::attr(n.as_str())).collect(),
    ))
}

/// `AttributeUpdates` as an update.
pub fn attribute_updates_to_update(
    updates: &HashMap<String, AttributeValueUpdate>,
) -> Result<Update, ExprError> {
    let mut set = Vec::new();
    let mut remove = Vec::new();
    let mut add = Vec::new();
    let mut delete = Vec::new();
    for (name, u) in sorted(updates) {
        let path = Path::attr(name);
        let action = u.action.as_deref().unwrap_or("PUT");
        match (action, &u.value) {
            ("DELETE", None) => remove.push(path),
            ("DELETE", Some(v)) if is_set(v) => delete.push((path, v.clone())),
            ("DELETE", Some(v)) => {
                return Err(invalid(format!(
                    "DELETE action with value is not supported for the type {}",
                    v.type_name()
                )))
            }
            ("PUT" | "ADD", None) => {
                return Err(invalid(
                    "Only DELETE action is allowed when no attribute value is specified",
                ))
            }
            ("PUT", Some(v)) => set.push((path, SetValue::Operand(UpdOperand::Value(v.clone())))),
            ("ADD", Some(v @ AttributeValue::L(_))) => {
                // Legacy ADD appends to a list (creating it when absent).
                let existing = UpdOperand::IfNotExists(
                    path.clone(),
                    Box::new(UpdOperand::Value(AttributeValue::L(Vec::new()))),
                );
                set.push((
                    path,
                    SetValue::Operand(UpdOperand::ListAppend(
                        Box::new(existing),
                        Box::new(UpdOperand::Value(v.clone())),
                    )),
                ));
            }
            ("ADD", Some(v)) if matches!(v, AttributeValue::N(_)) || is_set(v) => {
                add.push((path, v.clone()))
            }
            ("ADD", Some(v)) => {
                return Err(invalid(format!(
                    "ADD action is not supported for the type {}",
                    v.type_name()
                )))
            }
            (other, _) => {
                return Err(invalid(format!(
                    "Unsupported AttributeValueUpdate Action: {other}"
                )))
            }
        }
    }
    Ok(Update::from_actions(set, remove, add, delete))
}
