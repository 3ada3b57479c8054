//! The expression AST. Placeholders are already resolved: attribute names are the real names
//! and values are the request's AttributeValues.

use std::fmt;

use crate::protocol::attr::AttributeValue;

/// One step of a document path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElem {
    Attr(String),
    Index(u32),
}

/// A document path such as `a.b[2].c`: never empty, and it always starts with an attribute name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElem>);

impl Path {
    /// A top-level attribute.
    pub fn attr(name: impl Into<String>) -> Path {
        Path(vec![PathElem::Attr(name.into())])
    }

    /// The top-level attribute name (empty only for a malformed, hand-built path).
    pub fn top(&self) -> &str {
        match self.0.first() {
            Some(PathElem::Attr(a)) => a,
            _ => "",
        }
    }

    /// True when `self` is a prefix of `other` (or equal to it).
    pub fn is_prefix_of(&self, other: &Path) -> bool {
        self.0.len() <= other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| a == b)
    }
}

/// DynamoDB's rendering of a path in messages: `[a, b, [2], c]`.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match e {
                PathElem::Attr(a) => f.write_str(a)?,
                PathElem::Index(n) => write!(f, "[{n}]")?,
            }
        }
        f.write_str("]")
    }
}

/// An operand of a condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Path(Path),
    Value(AttributeValue),
    /// `size(x)`: x is a path, a value or another size.
    Size(Box<Operand>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator with its operands swapped (`a < b` == `b > a`).
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            o => o,
        }
    }
}

/// A condition (ConditionExpression, FilterExpression, and the legacy forms).
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Cmp(CmpOp, Operand, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    AttributeExists(Path),
    AttributeNotExists(Path),
    /// `attribute_type(path, :t)`; the string is one of S SS N NS B BS BOOL NULL L M.
    AttributeType(Path, String),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

/// An operand on the right of `SET path = ...`.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdOperand {
    Path(Path),
    Value(AttributeValue),
    IfNotExists(Path, Box<UpdOperand>),
    ListAppend(Box<UpdOperand>, Box<UpdOperand>),
}

/// The right-hand side of one SET action.
#[derive(Clone, Debug, PartialEq)]
pub enum SetValue {
    Operand(UpdOperand),
    Plus(UpdOperand, UpdOperand),
    Minus(UpdOperand, UpdOperand),
}

/// Visit every path in a condition (for top-level attribute lists).
pub(crate) fn cond_paths<'a>(c: &'a Cond, out: &mut Vec<&'a Path>) {
    // Explicit stack: a condition tree can be a few hundred levels deep.
    let mut stack = vec![c];
    while let Some(c) = stack.pop() {
        match c {
            Cond::Cmp(_, a, b) | Cond::BeginsWith(a, b) | Cond::Contains(a, b) => {
                operand_paths(a, out);
                operand_paths(b, out);
            }
            Cond::Between(a, b, d) => {
                operand_paths(a, out);
                operand_paths(b, out);
                operand_paths(d, out);
            }
            Cond::In(a, list) => {
                operand_paths(a, out);
                for o in list {
                    operand_paths(o, out);
                }
            }
            Cond::AttributeExists(p) | Cond::AttributeNotExists(p) | Cond::AttributeType(p, _) => {
                out.push(p)
            }
            Cond::Not(x) => stack.push(x),
            Cond::And(x, y) | Cond::Or(x, y) => {
                stack.push(y);
                stack.push(x);
            }
        }
    }
}

fn operand_paths<'a>(o: &'a Operand, out: &mut Vec<&'a Path>) {
    let mut o = o;
    loop {
        match o {
            Operand::Path(p) => {
                out.push(p);
                return;
            }
            Operand::Value(_) => return,
            Operand::Size(inner) => o = inner,
        }
    }
}

pub(crate) fn upd_operand_paths<'a>(o: &'a UpdOperand, out: &mut Vec<&'a Path>) {
    match o {
        UpdOperand::Path(p) => out.push(p),
        UpdOperand::Value(_) => {}
        UpdOperand::IfNotExists(p, v) => {
            out.push(p);
            upd_operand_paths(v, out);
        }
        UpdOperand::ListAppend(a, b) => {
            upd_operand_paths(a, out);
            upd_operand_paths(b, out);
        }
    }
}

/// Sorted, deduplicated top-level names of `paths`.
pub(crate) fn top_levels<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Vec<String> {
    let mut v: Vec<String> = paths.into_iter().map(|p| p.top().to_string()).collect();
    v.sort();
    v.dedup();
    v
}
