//! UpdateExpression and KeyConditionExpression grammars (built on the shared parser).

use std::cmp::Ordering;

use super::ast::{upd_operand_paths, CmpOp, Cond, Operand, Path, PathElem, SetValue, UpdOperand};
use super::eval::compare_values;
use super::lexer::Tok;
use super::names::Usage;
use super::parse::{overlap_error, parse_key_condition_tree, Parser, Rank};
use super::{ExprContext, ExprError, ExprKind};
use crate::protocol::attr::AttributeValue;

/// A parsed UpdateExpression (or legacy AttributeUpdates).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    pub(crate) set: Vec<(Path, SetValue)>,
    pub(crate) remove: Vec<Path>,
    pub(crate) add: Vec<(Path, AttributeValue)>,
    pub(crate) delete: Vec<(Path, AttributeValue)>,
}

impl Update {
    /// Build from actions (used by the legacy translation and by tests).
    pub fn from_actions(
        set: Vec<(Path, SetValue)>,
        remove: Vec<Path>,
        add: Vec<(Path, AttributeValue)>,
        delete: Vec<(Path, AttributeValue)>,
    ) -> Update {
        Update {
            set,
            remove,
            add,
            delete,
        }
    }

    /// The paths this update writes, in SET, REMOVE, ADD, DELETE order.
    pub fn target_paths(&self) -> Vec<&Path> {
        self.set
            .iter()
            .map(|(p, _)| p)
            .chain(self.remove.iter())
            .chain(self.add.iter().map(|(p, _)| p))
            .chain(self.delete.iter().map(|(p, _)| p))
            .collect()
    }

    /// Top-level attributes this update writes (sorted, unique): the caller rejects key
    /// attributes here ("Cannot update attribute pk. This attribute is part of the key").
    pub fn modified_attributes(&self) -> Vec<String> {
        super::ast::top_levels(self.target_paths())
    }

    /// Every top-level attribute the update reads or writes (sorted, unique), for IAM's
    /// `dynamodb:Attributes`.
    pub fn top_level_attributes(&self) -> Vec<String> {
        let mut paths = self.target_paths();
        for (_, v) in &self.set {
            match v {
                SetValue::Operand(a) => upd_operand_paths(a, &mut paths),
                SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
                    upd_operand_paths(a, &mut paths);
                    upd_operand_paths(b, &mut paths);
                }
            }
        }
        super::ast::top_levels(paths)
    }
}

const SECTIONS: [&str; 4] = ["SET", "REMOVE", "ADD", "DELETE"];

/// Parse an UpdateExpression.
pub fn parse_update(src: &str, ctx: &ExprContext, usage: &mut Usage) -> Result<Update, ExprError> {
    let mut p = Parser::new(src, ExprKind::Update, ctx, usage)?;
    let mut seen = [false; 4];
    let mut upd = Update::default();
    let mut targets: Vec<Path> = Vec::new();
    loop {
        let Some(section) = SECTIONS.iter().position(|s| p.at_kw(s)) else {
            return Err(p.syntax_error());
        };
        p.bump();
        if let Some(slot) = seen.get_mut(section) {
            if *slot {
                let name = SECTIONS.get(section).copied().unwrap_or("");
                p.defer(
                    Rank::Parens,
                    format!(
                        "The \"{name}\" section can only be used once in an update expression;"
                    ),
                );
            }
            *slot = true;
        }
        loop {
            let path = p.path()?;
            targets.push(path.clone());
            match section {
                0 => {
                    p.expect(Tok::Eq)?;
                    let v = set_value(&mut p)?;
                    upd.set.push((path, v));
                }
                1 => upd.remove.push(path),
                _ => {
                    let v = p.value()?;
                    p.count_op();
                    let (op, ok) = if section == 2 {
                        ("ADD", matches!(v, AttributeValue::N(_)) || is_set(&v))
                    } else {
                        ("DELETE", is_set(&v))
                    };
                    if !ok {
                        p.defer(
                            Rank::Semantic,
                            format!(
                                "Incorrect operand type for operator or function; operator: {op}, operand type: {}",
                                long_type_name(&v)
                            ),
                        );
                    }
                    if section == 2 {
                        upd.add.push((path, v));
                    } else {
                        upd.delete.push((path, v));
                    }
                }
            }
            if *p.cur() == Tok::Comma {
                p.bump();
            } else {
                break;
            }
        }
        if *p.cur() == Tok::Eof {
            break;
        }
    }
    if let Some(detail) = overlap_error(&targets) {
        p.defer(Rank::Semantic, detail);
    }
    p.finish()?;
    Ok(upd)
}

pub(crate) fn is_set(v: &AttributeValue) -> bool {
    matches!(
        v,
        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
    )
}

/// The type names DynamoDB uses in ADD/DELETE operand messages.
fn long_type_name(v: &AttributeValue) -> &'static str {
    match v {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::Bool(_) => "BOOLEAN",
        AttributeValue::Null => "NULL",
        AttributeValue::M(_) => "MAP",
        AttributeValue::L(_) => "LIST",
        AttributeValue::Ss(_) => "STRING_SET",
        AttributeValue::Ns(_) => "NUMBER_SET",
        AttributeValue::Bs(_) => "BINARY_SET",
    }
}

fn set_value(p: &mut Parser) -> Result<SetValue, ExprError> {
    let a = upd_operand(p)?;
    let op = match p.cur() {
        Tok::Plus => "+",
        Tok::Minus => "-",
        _ => return Ok(SetValue::Operand(a)),
    };
    p.bump();
    p.count_op();
    let b = upd_operand(p)?;
    for o in [&a, &b] {
        if let Some(t) = upd_static_type(o) {
            if t != "N" {
                p.operand_type_error(op, t);
            }
        }
    }
    Ok(if op == "+" {
        SetValue::Plus(a, b)
    } else {
        SetValue::Minus(a, b)
    })
}

/// The type of an update operand known at parse time.
fn upd_static_type(o: &UpdOperand) -> Option<&'static str> {
    match o {
        UpdOperand::Value(v) => Some(v.type_name()),
        UpdOperand::ListAppend(..) => Some("L"),
        UpdOperand::IfNotExists(_, v) => upd_static_type(v),
        UpdOperand::Path(_) => None,
    }
}

fn upd_operand(p: &mut Parser) -> Result<UpdOperand, ExprError> {
    match p.cur() {
        Tok::Value => Ok(UpdOperand::Value(p.value()?)),
        Tok::Ident if p.at_call() => upd_call(p),
        Tok::Ident | Tok::Name => Ok(UpdOperand::Path(p.path()?)),
        _ => Err(p.syntax_error()),
    }
}

fn upd_call(p: &mut Parser) -> Result<UpdOperand, ExprError> {
    let name = p.cur_text();
    p.bump();
    p.expect(Tok::LParen)?;
    p.enter()?;
    let mut args = vec![upd_operand(p)?];
    while *p.cur() == Tok::Comma {
        p.bump();
        args.push(upd_operand(p)?);
    }
    p.leave();
    p.expect(Tok::RParen)?;
    p.count_op();
    let dummy = UpdOperand::Value(AttributeValue::Null);
    match name {
        "if_not_exists" | "list_append" => {}
        "attribute_exists"
        | "attribute_not_exists"
        | "attribute_type"
        | "begins_with"
        | "contains"
        | "size" => {
            p.defer(
                Rank::UnknownFunction,
                format!("The function is not allowed in an update expression; function: {name}"),
            );
            return Ok(dummy);
        }
        _ => {
            p.defer(
                Rank::UnknownFunction,
                format!("Invalid function name; function: {name}"),
            );
            return Ok(dummy);
        }
    }
    if args.len() != 2 {
        p.defer(
            Rank::Semantic,
            format!(
                "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
                args.len()
            ),
        );
        return Ok(dummy);
    }
    let mut it = args.into_iter();
    let (Some(a), Some(b)) = (it.next(), it.next()) else {
        return Ok(dummy);
    };
    if name == "if_not_exists" {
        return Ok(match a {
            UpdOperand::Path(path) => UpdOperand::IfNotExists(path, Box::new(b)),
            _ => {
                p.defer(
                    Rank::Semantic,
                    "Operator or function requires a document path; operator or function: if_not_exists".into(),
                );
                dummy
            }
        });
    }
    for o in [&a, &b] {
        if let Some(t) = upd_static_type(o) {
            if t != "L" {
                p.operand_type_error("list_append", t);
            }
        }
    }
    Ok(UpdOperand::ListAppend(Box::new(a), Box::new(b)))
}

// ---- KeyConditionExpression ---------------------------------------------------------------

/// The sort key part of a key condition.
#[derive(Clone, Debug, PartialEq)]
pub enum SortCondition {
    Eq(AttributeValue),
    Lt(AttributeValue),
    Le(AttributeValue),
    Gt(AttributeValue),
    Ge(AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

impl SortCondition {
    /// Does a sort key value satisfy the condition? Values of another type never match.
    pub fn matches(&self, v: &AttributeValue) -> bool {
        let cmp = |x: &AttributeValue| compare_values(v, x);
        match self {
            SortCondition::Eq(x) => cmp(x) == Some(Ordering::Equal),
            SortCondition::Lt(x) => cmp(x) == Some(Ordering::Less),
            SortCondition::Le(x) => matches!(cmp(x), Some(Ordering::Less | Ordering::Equal)),
            SortCondition::Gt(x) => cmp(x) == Some(Ordering::Greater),
            SortCondition::Ge(x) => matches!(cmp(x), Some(Ordering::Greater | Ordering::Equal)),
            SortCondition::Between(lo, hi) => {
                matches!(cmp(lo), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(cmp(hi), Some(Ordering::Less | Ordering::Equal))
            }
            SortCondition::BeginsWith(x) => match (v, x) {
                (AttributeValue::S(s), AttributeValue::S(pre)) => s.starts_with(pre.as_str()),
                (AttributeValue::B(s), AttributeValue::B(pre)) => s.starts_with(pre),
                _ => false,
            },
        }
    }

    /// The values the condition compares with (for key type validation by the caller).
    pub fn values(&self) -> Vec<&AttributeValue> {
        match self {
            SortCondition::Eq(x)
            | SortCondition::Lt(x)
            | SortCondition::Le(x)
            | SortCondition::Gt(x)
            | SortCondition::Ge(x)
            | SortCondition::BeginsWith(x) => vec![x],
            SortCondition::Between(a, b) => vec![a, b],
        }
    }
}

/// A parsed KeyConditionExpression (or legacy KeyConditions).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyCondition {
    /// Partition key attribute name and the value it must equal.
    pub partition: (String, AttributeValue),
    /// Sort key attribute name and its condition.
    pub sort: Option<(String, SortCondition)>,
}

impl KeyCondition {
    pub fn top_level_attributes(&self) -> Vec<String> {
        let mut v = vec![self.partition.0.clone()];
        if let Some((s, _)) = &self.sort {
            v.push(s.clone());
        }
        v.sort();
        v.dedup();
        v
    }
}

fn key_err(detail: impl Into<String>) -> ExprError {
    ExprError::KeyCondition(detail.into())
}

fn bad_operator(op: &str) -> ExprError {
    ExprError::invalid(
        ExprKind::KeyCondition,
        format!("Invalid operator used in KeyConditionExpression: {op}"),
    )
}

/// Parse a KeyConditionExpression for a table (or index) keyed on `hash_key` [+ `range_key`].
/// Key value types are the caller's to check against the schema.
pub fn parse_key_condition(
    src: &str,
    ctx: &ExprContext,
    usage: &mut Usage,
    hash_key: &str,
    range_key: Option<&str>,
) -> Result<KeyCondition, ExprError> {
    let tree = parse_key_condition_tree(src, ctx, usage)?;
    let mut leaves = Vec::new();
    let mut stack = vec![tree];
    while let Some(c) = stack.pop() {
        match c {
            Cond::And(a, b) => {
                stack.push(*b);
                stack.push(*a);
            }
            Cond::Or(..) => return Err(bad_operator("OR")),
            Cond::Not(..) => return Err(bad_operator("NOT")),
            Cond::In(..) => return Err(bad_operator("IN")),
            Cond::Cmp(CmpOp::Ne, ..) => return Err(bad_operator("<>")),
            Cond::AttributeExists(_) => return Err(bad_operator("attribute_exists")),
            Cond::AttributeNotExists(_) => return Err(bad_operator("attribute_not_exists")),
            Cond::AttributeType(..) => return Err(bad_operator("attribute_type")),
            Cond::Contains(..) => return Err(bad_operator("contains")),
            leaf => leaves.push(leaf),
        }
    }
    if leaves.len() > 2 {
        return Err(key_err("Conditions can be of length 1 or 2 only"));
    }
    let mut partition = None;
    let mut sort = None;
    for leaf in leaves {
        let (path, cond) = key_leaf(leaf)?;
        let name = match path.0.as_slice() {
            [PathElem::Attr(n)] => n.clone(),
            _ => return Err(key_err("Query key condition not supported")),
        };
        if name == hash_key && partition.is_none() {
            match cond {
                SortCondition::Eq(v) => partition = Some((name, v)),
                _ => return Err(key_err("Query key condition not supported")),
            }
        } else if Some(name.as_str()) == range_key && sort.is_none() {
            sort = Some((name, cond));
        } else if name == hash_key || Some(name.as_str()) == range_key {
            return Err(key_err(
                "KeyConditionExpressions must only contain one condition per key",
            ));
        } else if partition.is_none() {
            return Err(key_err(format!(
                "Query condition missed key schema element: {hash_key}"
            )));
        } else {
            return Err(key_err("Query key condition not supported"));
        }
    }
    match partition {
        Some(partition) => Ok(KeyCondition { partition, sort }),
        None => Err(key_err(format!(
            "Query condition missed key schema element: {hash_key}"
        ))),
    }
}

fn key_leaf(c: Cond) -> Result<(Path, SortCondition), ExprError> {
    let unsupported = || key_err("Query key condition not supported");
    match c {
        Cond::Cmp(op, a, b) => {
            let (path, v, op) = match (a, b) {
                (Operand::Path(p), Operand::Value(v)) => (p, v, op),
                (Operand::Value(v), Operand::Path(p)) => (p, v, op.flipped()),
                _ => return Err(unsupported()),
            };
            let sc = match op {
                CmpOp::Eq => SortCondition::Eq(v),
                CmpOp::Lt => SortCondition::Lt(v),
                CmpOp::Le => SortCondition::Le(v),
                CmpOp::Gt => SortCondition::Gt(v),
                CmpOp::Ge => SortCondition::Ge(v),
                CmpOp::Ne => return Err(bad_operator("<>")),
            };
            Ok((path, sc))
        }
        Cond::Between(Operand::Path(p), Operand::Value(lo), Operand::Value(hi)) => {
            Ok((p, SortCondition::Between(lo, hi)))
        }
        Cond::BeginsWith(Operand::Path(p), Operand::Value(v)) => {
            Ok((p, SortCondition::BeginsWith(v)))
        }
        _ => Err(unsupported()),
    }
}
