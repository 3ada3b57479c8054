//! Applying a parsed UpdateExpression to an item.

use std::collections::BTreeSet;

use super::ast::{Path, SetValue, UpdOperand};
use super::parse::Update;
use super::path;
use super::ExprError;
use crate::protocol::attr::{AttributeValue, Item, Number};

/// What an update touched, for ReturnValues UPDATED_OLD / UPDATED_NEW.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateEffects {
    /// Every path the update wrote or removed, in SET, REMOVE, ADD, DELETE order.
    pub paths: Vec<Path>,
}

impl UpdateEffects {
    /// The touched parts of `item`: pass the old item for UPDATED_OLD, the new one for
    /// UPDATED_NEW.
    pub fn project(&self, item: &Item) -> Item {
        path::project(item, &self.paths)
    }

    /// Top-level attributes touched (sorted, unique).
    pub fn top_level_attributes(&self) -> Vec<String> {
        super::ast::top_levels(&self.paths)
    }
}

fn number_error(e: impl std::fmt::Display) -> ExprError {
    ExprError::Number(e.to_string())
}

fn eval_operand(o: &UpdOperand, item: &Item) -> Result<AttributeValue, ExprError> {
    match o {
        UpdOperand::Path(p) => path::get(item, p)
            .cloned()
            .ok_or(ExprError::MissingAttribute),
        UpdOperand::Value(v) => Ok(v.clone()),
        UpdOperand::IfNotExists(p, default) => match path::get(item, p) {
            Some(v) => Ok(v.clone()),
            None => eval_operand(default, item),
        },
        UpdOperand::ListAppend(a, b) => match (eval_operand(a, item)?, eval_operand(b, item)?) {
            (AttributeValue::L(mut x), AttributeValue::L(y)) => {
                x.extend(y);
                Ok(AttributeValue::L(x))
            }
            _ => Err(ExprError::IncorrectOperandType),
        },
    }
}

fn eval_set_value(v: &SetValue, item: &Item) -> Result<AttributeValue, ExprError> {
    let (a, b, plus) = match v {
        SetValue::Operand(o) => return eval_operand(o, item),
        SetValue::Plus(a, b) => (a, b, true),
        SetValue::Minus(a, b) => (a, b, false),
    };
    match (eval_operand(a, item)?, eval_operand(b, item)?) {
        (AttributeValue::N(x), AttributeValue::N(y)) => {
            let r = if plus { x.add(&y) } else { x.sub(&y) };
            r.map(AttributeValue::N).map_err(number_error)
        }
        _ => Err(ExprError::IncorrectOperandType),
    }
}

fn union<T: Ord + Clone>(mut a: Vec<T>, b: &[T]) -> Vec<T> {
    let present: BTreeSet<T> = a.iter().cloned().collect();
    let mut added = BTreeSet::new();
    for x in b {
        if !present.contains(x) && added.insert(x.clone()) {
            a.push(x.clone());
        }
    }
    a
}

fn difference<T: Ord>(mut a: Vec<T>, b: &[T]) -> Vec<T> {
    let gone: BTreeSet<&T> = b.iter().collect();
    a.retain(|x| !gone.contains(x));
    a
}

fn add(current: Option<&AttributeValue>, v: &AttributeValue) -> Result<AttributeValue, ExprError> {
    Ok(match (current, v) {
        (None, v) => v.clone(),
        (Some(AttributeValue::N(x)), AttributeValue::N(y)) => {
            AttributeValue::N(Number::add(x, y).map_err(number_error)?)
        }
        (Some(AttributeValue::Ss(x)), AttributeValue::Ss(y)) => {
            AttributeValue::Ss(union(x.clone(), y))
        }
        (Some(AttributeValue::Ns(x)), AttributeValue::Ns(y)) => {
            AttributeValue::Ns(union(x.clone(), y))
        }
        (Some(AttributeValue::Bs(x)), AttributeValue::Bs(y)) => {
            AttributeValue::Bs(union(x.clone(), y))
        }
        _ => return Err(ExprError::IncorrectOperandType),
    })
}

/// The set left after DELETE, or None when it became empty (the attribute is removed).
fn delete(
    current: &AttributeValue,
    v: &AttributeValue,
) -> Result<Option<AttributeValue>, ExprError> {
    let out = match (current, v) {
        (AttributeValue::Ss(x), AttributeValue::Ss(y)) => {
            AttributeValue::Ss(difference(x.clone(), y))
        }
        (AttributeValue::Ns(x), AttributeValue::Ns(y)) => {
            AttributeValue::Ns(difference(x.clone(), y))
        }
        (AttributeValue::Bs(x), AttributeValue::Bs(y)) => {
            AttributeValue::Bs(difference(x.clone(), y))
        }
        _ => return Err(ExprError::IncorrectOperandType),
    };
    let empty = match &out {
        AttributeValue::Ss(x) => x.is_empty(),
        AttributeValue::Ns(x) => x.is_empty(),
        AttributeValue::Bs(x) => x.is_empty(),
        _ => false,
    };
    Ok((!empty).then_some(out))
}

impl Update {
    /// Apply to `item` (pass an empty item for an upsert). All SET right-hand sides read the
    /// item as it was before the update. On error `item` is left unchanged. Item size and key
    /// protection are the caller's checks.
    pub fn apply(&self, item: &mut Item) -> Result<UpdateEffects, ExprError> {
        let mut values = Vec::with_capacity(self.set.len());
        for (_, v) in &self.set {
            values.push(eval_set_value(v, item)?);
        }
        let mut work = item.clone();
        for ((p, _), v) in self.set.iter().zip(values) {
            path::set(&mut work, p, v)?;
        }
        // Highest list index first, so that earlier removals do not shift later ones.
        let mut removes: Vec<&Path> = self.remove.iter().collect();
        removes.sort_by(|a, b| b.cmp(a));
        for p in removes {
            path::remove(&mut work, p)?;
        }
        for (p, v) in &self.add {
            path::check_parent(&mut work, p)?;
            let new = add(path::get(&work, p), v)?;
            path::set(&mut work, p, new)?;
        }
        for (p, v) in &self.delete {
            path::check_parent(&mut work, p)?;
            let Some(current) = path::get(&work, p) else {
                continue;
            };
            match delete(current, v)? {
                Some(rest) => path::set(&mut work, p, rest)?,
                None => {
                    path::remove(&mut work, p)?;
                }
            }
        }
        *item = work;
        Ok(UpdateEffects {
            paths: self.target_paths().into_iter().cloned().collect(),
        })
    }
}
